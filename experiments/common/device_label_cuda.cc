// DeviceLabel of a CUDA build: the card's name from its device properties.
#include <ATen/cuda/CUDAContext.h>

#include "experiments/common/device_label.h"

namespace kvgate::experiments {

std::string DeviceLabel(const c10::Device& device) {
  if (!device.is_cuda()) return device.is_cpu() ? "cpu" : device.str();
  const int index = device.has_index() ? device.index() : at::cuda::current_device();
  return at::cuda::getDeviceProperties(index)->name;
}

}  // namespace kvgate::experiments
