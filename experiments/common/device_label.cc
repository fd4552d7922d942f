// DeviceLabel of a build without CUDA (device_label_cuda.cc is the CUDA build's).
#include "experiments/common/device_label.h"

namespace kvgate::experiments {

std::string DeviceLabel(const c10::Device& device) {
  return device.is_cpu() ? "cpu" : device.str();
}

}  // namespace kvgate::experiments
