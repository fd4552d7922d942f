#include "gates/testdata/permitted_impl.h"

namespace kvgate::gates::testdata {

double PermittedActiveFraction() { return 0.35; }

}  // namespace kvgate::gates::testdata
