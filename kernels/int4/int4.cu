// CUDA kernels of the int4 KV format; see int4_launch.h for the variants and the layout.
#include <cuda_fp16.h>

#include "kernels/int4/int4_launch.h"

namespace kvgate::kernels::cuda {
namespace {

constexpr int kBlock = 32;  // values per quantization block
constexpr int kThreadsPerCta = 256;

// One thread per block: the block's 16 code bytes in one 16-byte load, then 32 values written as
// eight float4. Symmetric codes are stored offset by 8; affine codes are unsigned.
__global__ void dequantize_int4_kernel1(const uint4* __restrict__ codes,
                                        const __half* __restrict__ scales,
                                        const __half* __restrict__ zeros, float4* __restrict__ out,
                                        std::int64_t num_blocks) {
  const std::int64_t block = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (block >= num_blocks) return;
  const uint4 packed = codes[block];
  const float scale = __half2float(scales[block]);
  const bool affine = zeros != nullptr;
  const float zero = affine ? __half2float(zeros[block]) : 0.0f;
  const float offset = affine ? 0.0f : 8.0f;
  const unsigned words[4] = {packed.x, packed.y, packed.z, packed.w};
  float4* dst = out + block * (kBlock / 4);
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      // Byte b of the word holds element 2b in its low nibble and 2b + 1 in its high nibble,
      // so nibble i of the little-endian word is element i.
      const float q = static_cast<float>((words[w] >> (4 * i)) & 0xFu) - offset;
      v[i] = q * scale + zero;
    }
    dst[2 * w] = make_float4(v[0], v[1], v[2], v[3]);
    dst[2 * w + 1] = make_float4(v[4], v[5], v[6], v[7]);
  }
}

}  // namespace

cudaError_t LaunchDequantizeInt4(const std::uint8_t* codes, const std::uint16_t* scales,
                                 const std::uint16_t* zeros, float* out, std::int64_t num_blocks,
                                 cudaStream_t stream) {
  if (num_blocks == 0) return cudaSuccess;
  const std::int64_t ctas = (num_blocks + kThreadsPerCta - 1) / kThreadsPerCta;
  dequantize_int4_kernel1<<<static_cast<unsigned>(ctas), kThreadsPerCta, 0, stream>>>(
      reinterpret_cast<const uint4*>(codes), reinterpret_cast<const __half*>(scales),
      reinterpret_cast<const __half*>(zeros), reinterpret_cast<float4*>(out), num_blocks);
  return cudaGetLastError();
}

}  // namespace kvgate::kernels::cuda
