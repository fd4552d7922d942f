// The permission to implement (the rule README.md states): implementation work on an idea is permitted only when
// the committed records show, on one target (model, context, dtype, device), a passing speed
// ceiling AND a passing oracle-quality gate. A speed ceiling alone only permits running the
// quality gate.
//
// The decision re-judges everything (evidence.h, verdict.h) and trusts no stored verdict:
//   - any problem in the evidence (a torn file, a stored verdict that disagrees, a spec changed
//     under a record, an unknown spec) refuses;
//   - each gate is judged at its latest registered version;
//   - a configuration passes a gate when every valid run of it on the target passes
//     (JudgeConfigurations);
//   - with same_variant (the default), one variant must pass every gate: a speed ceiling met by a
//     tiny selection does not combine with quality met by a large one.
// gates/gated.bzl turns a refusal into a build failure of the gated library.
//
// Usage:
//   PermitDecision d = kvgate::gates::DecidePermit(evidence, request);
//   if (!d.permitted) std::cerr << d.message;

#ifndef KVGATE_GATES_PERMIT_H_
#define KVGATE_GATES_PERMIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "gates/evidence.h"

namespace kvgate::gates {

struct PermitRequest {
  std::string label;  // what asks, for the message, e.g. "//kernels/select:select"
  std::string model;
  int64_t context = 0;
  std::string dtype;
  std::string device;
  std::vector<std::string> gates = {"speed_ceiling", "work_reduction_oracle"};
  bool same_variant = true;
};

struct PermitDecision {
  bool permitted = false;
  std::string message;  // several lines: the target, per variant each gate's verdict and numbers
};

PermitDecision DecidePermit(const Evidence& evidence, const PermitRequest& request);

// The C++ header a permitted gated_cc_library carries: the decision's message as
// kvgate::permits::<label as an identifier>::kEvidence, e.g. for //kernels/select:select,
// kvgate::permits::kernels_select_select::kEvidence.
std::string PermitHeader(const std::string& label, const std::string& message);

}  // namespace kvgate::gates

#endif  // KVGATE_GATES_PERMIT_H_
