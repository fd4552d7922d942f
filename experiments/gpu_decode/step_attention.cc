#include "experiments/gpu_decode/step_attention.h"

#include <c10/cuda/CUDAStream.h>

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/gpu_decode/step_kernels_launch.h"
#include "kernels/attention/decode_attention_cuda.h"
#include "kernels/int4/int4.h"
#include "kernels/int4/int4_attention_cuda.h"
#include "kernels/int4/int4_cuda.h"
#include "kernels/turboquant/codebook_attention_cuda.h"
#include "kernels/turboquant/turboquant.h"

namespace kvgate::gpu_decode {
namespace {

using torch::indexing::None;
using torch::indexing::Slice;

Bf16Bits* Bits(const torch::Tensor& t) { return reinterpret_cast<Bf16Bits*>(t.data_ptr()); }

absl::Status CheckFill(const AttentionShape& s, int64_t layer, const torch::Tensor& k,
                       const torch::Tensor& v) {
  if (layer < 0 || layer >= s.layers || !k.defined() || !v.defined() || k.dim() != 3 ||
      k.sizes() != v.sizes() || k.size(0) > s.capacity || k.size(1) != s.kv_heads ||
      k.size(2) != s.head_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step attention Fill: layer ", layer, " of ", s.layers, ", k and v must be [<= ",
        s.capacity, ", ", s.kv_heads, ", ", s.head_dim, "]"));
  }
  return absl::OkStatus();
}

// softmax(q K^T / sqrt(D)) V with LibTorch's SDPA over k, v [tokens, kv_heads, D] (any row
// stride), q [heads, D]. Grouped-query through enable_gqa; the [1, kv_heads, tokens, D] views are
// strided, the last dimension contiguous.
torch::Tensor SdpaAttend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t heads = q.size(0), d = q.size(1);
  const torch::Tensor out = at::scaled_dot_product_attention(
      q.view({1, heads, 1, d}), k.permute({1, 0, 2}).unsqueeze(0),
      v.permute({1, 0, 2}).unsqueeze(0), /*attn_mask=*/{}, /*dropout_p=*/0.0,
      /*is_causal=*/false, /*scale=*/std::nullopt, /*enable_gqa=*/true);
  return out.reshape({heads, d}).contiguous();
}

// The bf16 cache [layers, capacity, kv_heads, D] of the dense backends.
class DenseAttention : public StepAttention {
 public:
  // kernel 0: SDPA; else the DecodeAttentionCudaInto variant.
  DenseAttention(const AttentionShape& s, const torch::Device& device, int kernel)
      : s_(s), kernel_(kernel) {
    const auto o = torch::dtype(torch::kBFloat16).device(device);
    k_ = torch::empty({s.layers, s.capacity, s.kv_heads, s.head_dim}, o);
    v_ = torch::empty_like(k_);
    out_ = torch::empty({s.heads, s.head_dim}, o);
  }
  std::string Name() const override {
    return kernel_ == 0 ? "dense_sdpa" : absl::StrCat("dense_kernel", kernel_);
  }
  int64_t HistoryBytes(int64_t tokens) const override {
    return 2 * s_.layers * tokens * s_.kv_heads * s_.head_dim * 2;
  }
  absl::Status Fill(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) override {
    if (absl::Status st = CheckFill(s_, layer, k, v); !st.ok()) return st;
    k_[layer].narrow(0, 0, k.size(0)).copy_(k);
    v_[layer].narrow(0, 0, v.size(0)).copy_(v);
    return absl::OkStatus();
  }
  KvSlot Slot(int64_t layer, int64_t position) override {
    return {k_[layer][position], v_[layer][position], s_.head_dim};
  }
  absl::Status Append(int64_t, const KvSlot&, int64_t) override {
    return absl::OkStatus();  // the step wrote straight into the cache
  }
  absl::StatusOr<torch::Tensor> Attend(int64_t layer, const torch::Tensor& q,
                                       int64_t position) override {
    const torch::Tensor k = k_[layer].narrow(0, 0, position + 1);
    const torch::Tensor v = v_[layer].narrow(0, 0, position + 1);
    if (kernel_ == 0) return SdpaAttend(q, k, v);
    torch::Tensor& ws = workspaces_[position];
    if (!ws.defined()) {  // first call at this length: before any graph capture (warm-up)
      absl::StatusOr<torch::Tensor> w = kernels::DecodeAttentionCudaWorkspace(q, k, kernel_);
      if (!w.ok()) return w.status();
      ws = *w;
    }
    if (absl::Status st = kernels::DecodeAttentionCudaInto(q, k, v, out_, ws, 0.0, kernel_);
        !st.ok()) {
      return st;
    }
    return out_;
  }

 private:
  AttentionShape s_;
  int kernel_;
  torch::Tensor k_, v_, out_;
  std::map<int64_t, torch::Tensor> workspaces_;
};

class NewestOnlyAttention : public StepAttention {
 public:
  NewestOnlyAttention(const AttentionShape& s, const torch::Device& device) : s_(s) {
    const auto o = torch::dtype(torch::kBFloat16).device(device);
    k_ = torch::empty({s.kv_heads, s.head_dim}, o);
    v_ = torch::empty_like(k_);
    out_ = torch::empty({s.heads, s.head_dim}, o);
  }
  std::string Name() const override { return "newest_only"; }
  int64_t HistoryBytes(int64_t) const override {
    return 2 * s_.layers * s_.kv_heads * s_.head_dim * 2;
  }
  absl::Status Fill(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) override {
    return CheckFill(s_, layer, k, v);  // keeps no history
  }
  KvSlot Slot(int64_t, int64_t) override { return {k_, v_, s_.head_dim}; }
  absl::Status Append(int64_t, const KvSlot&, int64_t) override { return absl::OkStatus(); }
  absl::StatusOr<torch::Tensor> Attend(int64_t, const torch::Tensor&, int64_t) override {
    const cudaError_t e =
        LaunchNewestOnly(Bits(v_), s_.head_dim, static_cast<int>(s_.heads),
                         static_cast<int>(s_.kv_heads), static_cast<int>(s_.head_dim), Bits(out_),
                         c10::cuda::getCurrentCUDAStream());
    if (e != cudaSuccess) return absl::InternalError(cudaGetErrorString(e));
    return out_;
  }

 private:
  AttentionShape s_;
  torch::Tensor k_, v_, out_;
};

// Packs codes [N, D] (values 0..15, uint8) two a byte, element 2j in the low nibble of byte j:
// the layout of kernels/int4 and of kernels/turboquant at 4 bits.
torch::Tensor PackNibbles(const torch::Tensor& codes) {
  const int64_t d = codes.size(-1);
  return torch::bitwise_or(codes.slice(-1, 0, d, 2),
                           torch::bitwise_left_shift(codes.slice(-1, 1, d, 2), 4));
}

// The history of a packed backend: per layer and K/V, codes [capacity, kv_heads, code_bytes] and
// one fp16 side tensor [capacity, kv_heads, side], staging slots for the new token, and bf16
// scratch for the dequantized history.
class PackedEagerAttention : public StepAttention {
 public:
  PackedEagerAttention(const AttentionShape& s, const torch::Device& device, int64_t code_bytes,
                       int64_t side)
      : s_(s) {
    const auto bf = torch::dtype(torch::kBFloat16).device(device);
    for (int kv = 0; kv < 2; ++kv) {
      codes_[kv] = torch::empty({s.layers, s.capacity, s.kv_heads, code_bytes},
                                torch::dtype(torch::kUInt8).device(device));
      // One allocation a layer: a layer's slice of one [layers, ...] fp16 tensor starts at
      // layer * capacity * kv_heads * side * 2 bytes, not 16-byte aligned for every capacity,
      // and the fused TurboQuant kernels require 16-byte aligned norms.
      for (int64_t l = 0; l < s.layers; ++l) {
        side_[kv].push_back(torch::empty({s.capacity, s.kv_heads, side},
                                         torch::dtype(torch::kHalf).device(device)));
      }
      staging_[kv] = torch::empty({s.kv_heads, s.head_dim}, bf);
      scratch_[kv] = torch::empty({s.capacity, s.kv_heads, s.head_dim}, bf);
    }
  }
  int64_t HistoryBytes(int64_t tokens) const override {
    return 2 * s_.layers * tokens * s_.kv_heads *
           (codes_[0].size(3) + side_[0][0].size(2) * 2);
  }
  absl::Status Fill(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) override {
    if (absl::Status st = CheckFill(s_, layer, k, v); !st.ok()) return st;
    const torch::Tensor* src[2] = {&k, &v};
    for (int kv = 0; kv < 2; ++kv) {
      const int64_t n = src[kv]->size(0);
      // In slices, so the float32 intermediates stay small at 128K tokens.
      for (int64_t t0 = 0; t0 < n; t0 += 8192) {
        const int64_t len = std::min<int64_t>(8192, n - t0);
        Quantize(src[kv]->narrow(0, t0, len), codes_[kv][layer].narrow(0, t0, len),
                 side_[kv][layer].narrow(0, t0, len));
      }
    }
    return absl::OkStatus();
  }
  KvSlot Slot(int64_t, int64_t) override { return {staging_[0], staging_[1], s_.head_dim}; }
  absl::Status Append(int64_t layer, const KvSlot& written, int64_t position) override {
    Quantize(written.k.unsqueeze(0), codes_[0][layer].narrow(0, position, 1),
             side_[0][layer].narrow(0, position, 1));
    Quantize(written.v.unsqueeze(0), codes_[1][layer].narrow(0, position, 1),
             side_[1][layer].narrow(0, position, 1));
    return absl::OkStatus();
  }
  absl::StatusOr<torch::Tensor> Attend(int64_t layer, const torch::Tensor& q,
                                       int64_t position) override {
    const int64_t n = position + 1;
    for (int kv = 0; kv < 2; ++kv) {
      if (absl::Status st = Dequantize(codes_[kv][layer].narrow(0, 0, n),
                                       side_[kv][layer].narrow(0, 0, n),
                                       scratch_[kv].narrow(0, 0, n));
          !st.ok()) {
        return st;
      }
    }
    return SdpaAttend(q, scratch_[0].narrow(0, 0, n), scratch_[1].narrow(0, 0, n));
  }

 protected:
  // x [n, kv_heads, D] (any float dtype) into codes [n, kv_heads, code_bytes] and side.
  virtual void Quantize(const torch::Tensor& x, torch::Tensor codes, torch::Tensor side) = 0;
  // codes, side of n tokens into out bf16 [n, kv_heads, D].
  virtual absl::Status Dequantize(const torch::Tensor& codes, const torch::Tensor& side,
                                  torch::Tensor out) = 0;

  AttentionShape s_;
  torch::Tensor codes_[2], staging_[2], scratch_[2];
  std::vector<torch::Tensor> side_[2];  // per layer [capacity, kv_heads, side]
};

// kernels/int4 symmetric, block 32: side = the fp16 scales [n, kv_heads, D / 32].
// fused: kernels/int4's Int4DecodeAttentionCudaInto reads the packed blocks directly.
class Int4Attention : public PackedEagerAttention {
 public:
  Int4Attention(const AttentionShape& s, const torch::Device& device, bool fused)
      : PackedEagerAttention(s, device, s.head_dim / 2, s.head_dim / kernels::kInt4BlockSize),
        fused_(fused) {
    if (!fused) {
      f32_ = torch::empty({s.capacity, s.kv_heads, s.head_dim},
                          torch::dtype(torch::kFloat32).device(device));
    }
    out_ = torch::empty({s.heads, s.head_dim}, torch::dtype(torch::kBFloat16).device(device));
  }
  std::string Name() const override { return fused_ ? "int4_fused" : "int4_eager"; }
  absl::StatusOr<torch::Tensor> Attend(int64_t layer, const torch::Tensor& q,
                                       int64_t position) override {
    if (!fused_) return PackedEagerAttention::Attend(layer, q, position);
    const int64_t n = position + 1;
    kernels::Int4Tensor k = Packed(0, layer, n), v = Packed(1, layer, n);
    torch::Tensor& ws = workspaces_[position];
    if (!ws.defined()) {  // first call at this length: before any graph capture (warm-up)
      absl::StatusOr<torch::Tensor> w =
          kernels::Int4DecodeAttentionCudaWorkspace(q, n, s_.kv_heads);
      if (!w.ok()) return w.status();
      ws = *w;
    }
    if (absl::Status st = kernels::Int4DecodeAttentionCudaInto(q, k, v, out_, ws); !st.ok()) {
      return st;
    }
    return out_;
  }

 protected:
  // kernels/int4's symmetric rule in LibTorch ops: scale = fp16(absmax / 7), nibble =
  // clamp(round_half_even(x / scale), -7, 7) + 8 (8 where the scale is 0).
  void Quantize(const torch::Tensor& x, torch::Tensor codes, torch::Tensor side) override {
    const int64_t n = x.size(0), b = kernels::kInt4BlockSize;
    const torch::Tensor xb = x.to(torch::kFloat32).reshape({n, s_.kv_heads, s_.head_dim / b, b});
    const torch::Tensor scale = (xb.abs().amax(-1) / 7.0).to(torch::kHalf);
    const torch::Tensor sf = scale.to(torch::kFloat32).unsqueeze(-1);
    const torch::Tensor q =
        torch::where(sf > 0, torch::round(xb / sf).clamp(-7, 7), torch::zeros_like(xb)) + 8;
    codes.copy_(PackNibbles(q.to(torch::kUInt8).reshape({n, s_.kv_heads, s_.head_dim})));
    side.copy_(scale);
  }
  absl::Status Dequantize(const torch::Tensor& codes, const torch::Tensor& side,
                          torch::Tensor out) override {
    kernels::Int4Tensor t;
    t.scheme = kernels::Int4Scheme::kSymmetric;
    t.codes = codes;
    t.scales = side;
    torch::Tensor f32 = f32_.narrow(0, 0, codes.size(0));
    if (absl::Status st = kernels::DequantizeInt4CudaInto(t, f32); !st.ok()) return st;
    out.copy_(f32);
    return absl::OkStatus();
  }

 private:
  // Tokens [0, n) of K (kv = 0) or V (kv = 1) of a layer.
  kernels::Int4Tensor Packed(int kv, int64_t layer, int64_t n) const {
    kernels::Int4Tensor t;
    t.scheme = kernels::Int4Scheme::kSymmetric;
    t.codes = codes_[kv][layer].narrow(0, 0, n);
    t.scales = side_[kv][layer].narrow(0, 0, n);
    return t;
  }

  bool fused_;
  torch::Tensor f32_, out_;
  std::map<int64_t, torch::Tensor> workspaces_;
};

// TurboQuant_mse at 4 bits: side = the fp16 norm [n, kv_heads, 1].
// fused: kernels/turboquant's CodebookAttentionCudaInto computes logits from the codes and
// integrates the values without a dequantized copy.
class TurboQuantAttention : public PackedEagerAttention {
 public:
  TurboQuantAttention(const AttentionShape& s, const torch::Device& device,
                      const kernels::TurboQuant& tq, bool fused)
      : PackedEagerAttention(s, device, s.head_dim / 2, 1), fused_(fused) {
    const kernels::TurboQuantCodec& codec = tq.codec(0);
    const auto f = torch::dtype(torch::kFloat32);
    const int64_t d = s.head_dim;
    if (fused) {
      for (int64_t l = 0; l < s.layers; ++l) {
        for (int kv = 0; kv < 2; ++kv) {
          kernels::TurboQuantTensor t;
          t.format = tq.name();
          t.shape = {s.capacity, s.kv_heads, d};
          kernels::TurboQuantGroupCodes g;
          g.codes = codes_[kv][l];
          g.norms = side_[kv][l].squeeze(-1);
          t.groups.push_back(g);
          packed_[kv].push_back(t);
        }
      }
      out_ = torch::empty({s.heads, d}, torch::dtype(torch::kBFloat16).device(device));
    }
    rotation_ = torch::from_blob(const_cast<float*>(codec.rotation().matrix().data()), {d, d}, f)
                    .to(device);
    centroids_ = torch::from_blob(const_cast<float*>(codec.centroids().data()),
                                  {static_cast<int64_t>(codec.centroids().size())}, f)
                     .to(device);
    boundaries_ = torch::from_blob(const_cast<float*>(codec.boundaries().data()),
                                   {static_cast<int64_t>(codec.boundaries().size())}, f)
                      .to(device);
  }
  std::string Name() const override { return fused_ ? "turboquant_fused" : "turboquant_eager"; }

  // The device constants and workspace of the fused kernels: made once, before any capture.
  absl::Status PrepareFused(const kernels::TurboQuant& tq, const torch::Device& device) {
    absl::StatusOr<kernels::CodebookCudaFormat> f = kernels::CodebookCudaFormat::Make(tq, device);
    if (!f.ok()) return f.status();
    format_ = *f;
    const torch::Tensor q =
        torch::empty({s_.heads, s_.head_dim}, torch::dtype(torch::kBFloat16).device(device));
    absl::StatusOr<torch::Tensor> w = kernels::CodebookCudaWorkspace(q, s_.kv_heads, s_.capacity);
    if (!w.ok()) return w.status();
    workspace_ = *w;
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> Attend(int64_t layer, const torch::Tensor& q,
                                       int64_t position) override {
    if (!fused_) return PackedEagerAttention::Attend(layer, q, position);
    if (absl::Status st = kernels::CodebookAttentionCudaInto(
            q, format_, packed_[0][layer], format_, packed_[1][layer], out_, workspace_,
            /*scale=*/0.0, /*tokens=*/position + 1);
        !st.ok()) {
      return st;
    }
    return out_;
  }

 protected:
  // nu = fp16(||x||), y = R (x / ||x||), code_j = #{k : y_j > t_k} (bucketize, right=false).
  void Quantize(const torch::Tensor& x, torch::Tensor codes, torch::Tensor side) override {
    const int64_t n = x.size(0);
    const torch::Tensor xf = x.to(torch::kFloat32).reshape({n * s_.kv_heads, s_.head_dim});
    const torch::Tensor norm = xf.norm(2, -1, /*keepdim=*/true);
    const torch::Tensor u = torch::where(norm > 0, xf / norm, torch::zeros_like(xf));
    const torch::Tensor y = u.matmul(rotation_.t());
    const torch::Tensor code = torch::bucketize(y, boundaries_).to(torch::kUInt8);
    codes.copy_(PackNibbles(code).reshape(codes.sizes()));
    side.copy_(norm.to(torch::kHalf).reshape(side.sizes()));
  }
  // x = nu * R^T c[code]: unpack, look up, scale, rotate back, cast.
  absl::Status Dequantize(const torch::Tensor& codes, const torch::Tensor& side,
                          torch::Tensor out) override {
    const int64_t rows = codes.size(0) * s_.kv_heads;
    const torch::Tensor c = codes.reshape({rows, s_.head_dim / 2});
    const torch::Tensor idx =
        torch::stack({torch::bitwise_and(c, 15), torch::bitwise_right_shift(c, 4)}, -1)
            .reshape({rows * s_.head_dim})
            .to(torch::kInt64);
    const torch::Tensor y = centroids_.index_select(0, idx).reshape({rows, s_.head_dim}) *
                            side.reshape({rows, 1}).to(torch::kFloat32);
    out.copy_(y.matmul(rotation_).reshape(out.sizes()));
    return absl::OkStatus();
  }

 private:
  bool fused_;
  torch::Tensor rotation_, centroids_, boundaries_, out_, workspace_;
  std::vector<kernels::TurboQuantTensor> packed_[2];  // per layer, K and V: views of the history
  kernels::CodebookCudaFormat format_;
};

}  // namespace

absl::StatusOr<kernels::TurboQuant> StepTurboQuant(int64_t head_dim) {
  kernels::TurboQuantOptions o;
  o.kind = kernels::TurboQuantKind::kMse;
  o.bits = 4;
  o.seed = 0;
  o.rotation = kernels::RotationKind::kHadamard;
  return kernels::TurboQuant::Make(o, head_dim);
}

std::vector<std::string> StepAttentionNames() {
  return {"dense_sdpa",       "dense_kernel1", "dense_kernel3", "dense_kernel4", "newest_only",
          "int4_eager",       "int4_fused",    "turboquant_eager",
          "turboquant_fused"};
}

absl::StatusOr<std::unique_ptr<StepAttention>> MakeStepAttention(const std::string& name,
                                                                 const AttentionShape& shape,
                                                                 const torch::Device& device) {
  if (shape.layers < 1 || shape.kv_heads < 1 || shape.heads % shape.kv_heads != 0 ||
      shape.head_dim < 2 || shape.capacity < 1) {
    return absl::InvalidArgumentError("step attention: layers, heads (a multiple of kv_heads), "
                                      "head_dim and capacity must be positive");
  }
  if (name == "dense_sdpa") return std::make_unique<DenseAttention>(shape, device, 0);
  for (int kernel : {1, 3, 4}) {
    if (name == absl::StrCat("dense_kernel", kernel)) {
      return std::make_unique<DenseAttention>(shape, device, kernel);
    }
  }
  if (name == "newest_only") return std::make_unique<NewestOnlyAttention>(shape, device);
  if (name == "int4_eager" || name == "int4_fused") {
    if (shape.head_dim % kernels::kInt4BlockSize != 0) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": head_dim must be a multiple of 32"));
    }
    return std::make_unique<Int4Attention>(shape, device, name == "int4_fused");
  }
  if (name == "turboquant_eager" || name == "turboquant_fused") {
    absl::StatusOr<kernels::TurboQuant> tq = StepTurboQuant(shape.head_dim);
    if (!tq.ok()) return tq.status();
    auto a = std::make_unique<TurboQuantAttention>(shape, device, *tq, name == "turboquant_fused");
    if (name == "turboquant_fused") {
      if (absl::Status st = a->PrepareFused(*tq, device); !st.ok()) return st;
    }
    return a;
  }
  return absl::InvalidArgumentError(absl::StrCat("step attention '", name, "': one of ",
                                                 absl::StrJoin(StepAttentionNames(), ", ")));
}

}  // namespace kvgate::gpu_decode
