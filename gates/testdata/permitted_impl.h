// A stand-in implementation behind gated_cc_library, built over the `permitted` fixture records.
#ifndef KVGATE_GATES_TESTDATA_PERMITTED_IMPL_H_
#define KVGATE_GATES_TESTDATA_PERMITTED_IMPL_H_

namespace kvgate::gates::testdata {

// The share of history a selector keeps: the variant the fixture records permit.
double PermittedActiveFraction();

}  // namespace kvgate::gates::testdata

#endif  // KVGATE_GATES_TESTDATA_PERMITTED_IMPL_H_
