// SecondsSince: wall time since a steady_clock point, for progress lines and the seconds records
// carry (not for benchmarks: those use Google Benchmark or CUDA events).
//
//   const std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
//   ... work ...
//   double seconds = SecondsSince(start);

#ifndef KVGATE_EXPERIMENTS_RUNTIME_WALL_CLOCK_H_
#define KVGATE_EXPERIMENTS_RUNTIME_WALL_CLOCK_H_

#include <chrono>

namespace kvgate {

inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace kvgate

#endif  // KVGATE_EXPERIMENTS_RUNTIME_WALL_CLOCK_H_
