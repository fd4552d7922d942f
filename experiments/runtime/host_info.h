// What a timing line says about the machine it ran on: the CPU model and the load average, read
// from /proc (a timing on a loaded machine says so next to its numbers).
//
// Usage:
//   std::cout << "host: " << CpuName() << ", load average " << LoadAverage() << "\n";

#ifndef KVGATE_EXPERIMENTS_RUNTIME_HOST_INFO_H_
#define KVGATE_EXPERIMENTS_RUNTIME_HOST_INFO_H_

#include <string>

namespace kvgate::runtime {

// "0.52 (1 min), 0.40 (5 min)", or "unknown" without /proc/loadavg.
std::string LoadAverage();

// The first "model name" of /proc/cpuinfo, or "unknown CPU".
std::string CpuName();

}  // namespace kvgate::runtime

#endif  // KVGATE_EXPERIMENTS_RUNTIME_HOST_INFO_H_
