// DeviceLabel: how a record names the device an experiment ran on. "cpu" for the CPU; for a CUDA
// device in a CUDA build (--config=cuda) the card's own name, e.g. "NVIDIA H100 80GB HBM3", so
// records from different cards never share one label. Records are compared only within a device.
//
//   target.device = DeviceLabel(torch::Device("cuda:0"));  // "NVIDIA H200" on an H200

#ifndef KVGATE_EXPERIMENTS_COMMON_DEVICE_LABEL_H_
#define KVGATE_EXPERIMENTS_COMMON_DEVICE_LABEL_H_

#include <c10/core/Device.h>

#include <string>

namespace kvgate::experiments {

// "cpu", the CUDA card's name (device index, or the current device when it has none), or, in a
// build without CUDA, the device's string ("cuda:0"), which such a build cannot run on anyway.
std::string DeviceLabel(const c10::Device& device);

}  // namespace kvgate::experiments

#endif  // KVGATE_EXPERIMENTS_COMMON_DEVICE_LABEL_H_
