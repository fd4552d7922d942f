// CUDA kernels for the int4 KV format of int4.h (blocks of 32 along the last dimension, two codes a
// byte, fp16 scale and, for affine, fp16 zero point).
//
// Variants (llm.c style: a record names the variant it measured):
//   dequantize_int4_kernel1: one thread per block of 32; 16-byte code load, eight float4 stores.
//
// This launcher takes raw device pointers and includes no LibTorch, so nvcc compiles it alone;
// int4_cuda.h adapts it to an Int4Tensor on a CUDA device.

#ifndef KVGATE_KERNELS_INT4_INT4_LAUNCH_H_
#define KVGATE_KERNELS_INT4_INT4_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kvgate::kernels::cuda {

// Dequantizes num_blocks blocks of 32 codes into out (float32, 32 * num_blocks values).
// codes: 16 * num_blocks bytes; scales, zeros: fp16 bit patterns, one per block; zeros is null
// for the symmetric scheme. All pointers on the current device. Returns the launch status.
cudaError_t LaunchDequantizeInt4(const std::uint8_t* codes, const std::uint16_t* scales,
                                 const std::uint16_t* zeros, float* out, std::int64_t num_blocks,
                                 cudaStream_t stream);

}  // namespace kvgate::kernels::cuda

#endif  // KVGATE_KERNELS_INT4_INT4_LAUNCH_H_
