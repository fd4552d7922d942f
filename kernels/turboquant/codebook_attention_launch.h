// TurboQuant fused codebook kernels on CUDA (codebook_attention.cu): decode-step logits straight
// from packed codes, and fused attention whose value sum stays in the rotated domain and is
// unrotated once. Raw device pointers, no LibTorch, so nvcc compiles it alone;
// codebook_attention_cuda.h adapts it to tensors and TurboQuantTensors.
//
// Format (turboquant.h), one group (no outlier split), head_dim 128, rows r = t * kv_heads + h:
//   codes  uint8 [rows, 16 * mse_bits]   code j at bits j*b .. j*b+b-1, little-endian bit stream
//   norms  fp16  [rows]                  nu
//   qjl    uint8 [rows, 16]              kProd: bit i = 1 when (S r)_i >= 0
//   rnorms fp16  [rows]                  kProd: rho
// logit[h][t] = nu_t <R q_h, c[code_t]> + rho_t sqrt(pi/2)/m <S q_h, s_t>.
//
// Variants (records name the one measured):
//   kernel1 (commit dabd83c, measured in the first H100 run): tensor cores (mma.m16n8k16, fp16 in,
//     float32 accumulate), keys as the mma's A rows (16 tokens a tile), the group's query heads as
//     its 8 columns. Each lane owns 32 consecutive coordinates of a key row (the contraction order
//     of the mma is free, so the query's coordinates are permuted to match), reads them as 4b bytes
//     and expands each pair of codes by one shared-memory lookup in a 2^(2b)-entry table of fp16
//     pairs. The query was rotated (R q and S q, scaled to max |.| = 1, fp16) by a kernel launched
//     before. Attention: split-K over chunks of at most 512 tokens (about 2 CTAs an SM): logits of
//     a chunk into shared memory, its softmax, then out^T += V^T P^T by mma with V's codes as A
//     (coordinates as rows, owned in runs of 16 a lane) and p * nu as B; a merge kernel combines
//     chunks and applies R^T once.
//   kernel2 (this file): kernel1's tiles without the query kernel: every CTA rotates its group's
//     query itself (signs and a shared-memory FWHT for rotation=hadamard, a dense product
//     otherwise; S q as a dense product); the grid fills the card once (one CTA a resident slot,
//     from the occupancy calculator); logits warps issue the loads of 4 tiles before the first
//     mma; attention CTAs take a span in sub-chunks of 512 with an online softmax across them, two
//     tiles of loads in flight a warp; a merge that reads the spans in parallel.
//   dense_logits_kernel1: the logits loop over a bf16 [tokens, kv_heads, 128] cache (bf16 mma),
//     the like-for-like dense baseline of the logits benchmark.
// Values must be kMse (bits 1..4); keys kMse (1..4) or kProd (bits 1..4: 0..3 codebook bits).
// Query groups (heads / kv_heads) 1..8.

#ifndef KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_LAUNCH_H_
#define KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kvgate::kernels::cuda {

inline constexpr int kCodebookHeadDim = 128;

// Device constants of one format.
struct CodebookFormatDevice {
  int mse_bits = 0;        // 0..4
  bool prod = false;       // QJL sketch present
  float qjl_scale = 0.0f;  // sqrt(pi/2) / m
  const float* rotation = nullptr;      // R, row-major 128 x 128
  const float* rotation_t = nullptr;    // R^T
  const float* signs = nullptr;         // Hadamard rotation: D1 then D2 (+-1), 2 x 128; else null
  const float* sketch_t = nullptr;      // S^T (prod)
  const std::uint32_t* pair_table = nullptr;  // 2^(2 mse_bits) fp16 pairs (lo: even code)
};

// One TurboQuant tensor on the device (rows may exceed tokens: a preallocated cache).
struct CodebookRows {
  const std::uint8_t* codes = nullptr;
  const std::uint16_t* norms = nullptr;   // fp16 bits
  const std::uint8_t* qjl = nullptr;
  const std::uint16_t* rnorms = nullptr;  // fp16 bits
};

struct CodebookShape {
  int heads = 0;
  int kv_heads = 0;
  std::int64_t tokens = 0;
};

// The span of history a CTA takes (chunk: a multiple of 64 tokens) and the count of spans: about
// one CTA a resident slot (ctas_per_sm a multiprocessor), so the card is filled once.
struct CodebookSplit {
  int chunk = 0;
  int splits = 0;
};
CodebookSplit PlanCodebookAttention(const CodebookShape& shape, int multiprocessors,
                                    int ctas_per_sm);

// Floats of workspace: logits need none; attention the spans' partial sums. A workspace sized for
// tokens T serves any tokens <= T.
std::int64_t CodebookLogitsWorkspaceFloats(const CodebookShape& shape);
std::int64_t CodebookAttentionWorkspaceFloats(const CodebookShape& shape, int multiprocessors);

// logits [heads, tokens] (float32, or bf16 when out_bf16), unscaled. q bf16 [heads, 128].
cudaError_t LaunchCodebookLogits(const std::uint16_t* q, const CodebookFormatDevice& format,
                                 const CodebookRows& k, const CodebookShape& shape, void* out,
                                 bool out_bf16, float* workspace, int multiprocessors,
                                 cudaStream_t stream);

// out [heads, 128] (float32, or bf16 when out_bf16) = softmax(scale q.k) v from the codes.
cudaError_t LaunchCodebookAttention(const std::uint16_t* q, const CodebookFormatDevice& k_format,
                                    const CodebookRows& k, const CodebookFormatDevice& v_format,
                                    const CodebookRows& v, const CodebookShape& shape, float scale,
                                    void* out, bool out_bf16, float* workspace,
                                    int multiprocessors, cudaStream_t stream);

// The dense baseline: logits [heads, tokens] from a bf16 cache k [rows, kv_heads, 128].
cudaError_t LaunchDenseLogits(const std::uint16_t* q, const std::uint16_t* k,
                              const CodebookShape& shape, void* out, bool out_bf16,
                              int multiprocessors, cudaStream_t stream);

}  // namespace kvgate::kernels::cuda

#endif  // KVGATE_KERNELS_TURBOQUANT_CODEBOOK_ATTENTION_LAUNCH_H_
