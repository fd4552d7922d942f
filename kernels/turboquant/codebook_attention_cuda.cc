#include "kernels/turboquant/codebook_attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/turboquant/codebook_attention_launch.h"

namespace kvgate::kernels {
namespace {

constexpr int64_t kD = cuda::kCodebookHeadDim;

std::string Describe(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  return absl::StrCat(t.toString(), " ", std::string(c10::str(t.sizes())), " on ",
                      t.device().str(), t.is_contiguous() ? "" : " (not contiguous)");
}

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, what));
}

// t must be a contiguous tensor of `dtype` and `sizes` on `device`, 16-byte aligned.
absl::Status CheckTensor(const std::string& where, const std::string& name, const torch::Tensor& t,
                         torch::ScalarType dtype, const std::vector<int64_t>& sizes,
                         const torch::Device& device) {
  if (!t.defined() || t.scalar_type() != dtype || t.sizes() != c10::IntArrayRef(sizes) ||
      !t.is_contiguous() || t.device() != device ||
      reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 != 0) {
    return Bad(where, absl::StrCat(name, " must be a contiguous 16-byte aligned ",
                                   c10::toString(dtype), " tensor ", std::string(c10::str(sizes)),
                                   " on ", device.str(), ", got ", Describe(t)));
  }
  return absl::OkStatus();
}

absl::Status CheckQuery(const std::string& where, const torch::Tensor& q) {
  if (!q.defined() || !q.is_cuda() || q.scalar_type() != torch::kBFloat16 || q.dim() != 2 ||
      q.size(1) != kD || q.size(0) < 1 || !q.is_contiguous()) {
    return Bad(where, absl::StrCat("q must be a contiguous bf16 CUDA tensor [heads, 128], got ",
                                   Describe(q)));
  }
  return absl::OkStatus();
}

// Checks a TurboQuantTensor of `format` (named `name`) on `device` and returns its device rows.
absl::StatusOr<cuda::CodebookRows> RowsOf(const std::string& where, const std::string& name,
                                          const CodebookCudaFormat& format,
                                          const TurboQuantTensor& t, const torch::Device& device) {
  if (t.format != format.name) {
    return Bad(where, absl::StrCat(name, " is encoded as '", t.format, "' but its format is '",
                                   format.name, "'"));
  }
  if (t.exact_cleanup || t.groups.size() != 1 || t.shape.size() != 3 || t.shape[2] != kD ||
      t.shape[0] < 1 || t.shape[1] < 1) {
    return Bad(where, absl::StrCat(name, " must be one group of codes of shape [tokens >= 1, "
                                         "kv_heads, 128] (no split, no exact cleanup)"));
  }
  const int64_t rows = t.shape[0], heads = t.shape[1];
  const TurboQuantGroupCodes& g = t.groups[0];
  cuda::CodebookRows out;
  if (format.mse_bits > 0) {
    if (absl::Status s = CheckTensor(where, name + ".codes", g.codes, torch::kUInt8,
                                     {rows, heads, 16 * format.mse_bits}, device);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            CheckTensor(where, name + ".norms", g.norms, torch::kFloat16, {rows, heads}, device);
        !s.ok()) {
      return s;
    }
    out.codes = g.codes.data_ptr<uint8_t>();
    out.norms = reinterpret_cast<const uint16_t*>(g.norms.data_ptr());
  }
  if (format.prod) {
    if (absl::Status s =
            CheckTensor(where, name + ".qjl", g.qjl, torch::kUInt8, {rows, heads, 16}, device);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckTensor(where, name + ".residual_norms", g.residual_norms,
                                     torch::kFloat16, {rows, heads}, device);
        !s.ok()) {
      return s;
    }
    out.qjl = g.qjl.data_ptr<uint8_t>();
    out.rnorms = reinterpret_cast<const uint16_t*>(g.residual_norms.data_ptr());
  }
  return out;
}

absl::Status CheckFormat(const std::string& where, const std::string& name,
                         const CodebookCudaFormat& f, const torch::Device& device) {
  const bool ok = f.rotation.defined() && f.rotation.device() == device &&
                  f.rotation_t.defined() && f.rotation_t.device() == device &&
                  (f.mse_bits == 0 || (f.pair_table.defined() && f.pair_table.device() == device)) &&
                  (!f.prod || (f.sketch_t.defined() && f.sketch_t.device() == device)) &&
                  (!f.signs.defined() || f.signs.device() == device);
  if (!ok) {
    return Bad(where, absl::StrCat(name, " format '", f.name, "' is not on ", device.str(),
                                   " (make it with CodebookCudaFormat::Make for that device)"));
  }
  return absl::OkStatus();
}

cuda::CodebookFormatDevice DeviceFormat(const CodebookCudaFormat& f) {
  cuda::CodebookFormatDevice d;
  d.mse_bits = f.mse_bits;
  d.prod = f.prod;
  d.qjl_scale = f.qjl_scale;
  d.rotation = f.rotation.data_ptr<float>();
  d.rotation_t = f.rotation_t.data_ptr<float>();
  d.sketch_t = f.prod ? f.sketch_t.data_ptr<float>() : nullptr;
  d.signs = f.signs.defined() ? f.signs.data_ptr<float>() : nullptr;
  d.pair_table =
      f.mse_bits > 0 ? reinterpret_cast<const uint32_t*>(f.pair_table.data_ptr<int32_t>()) : nullptr;
  return d;
}

int Multiprocessors(const torch::Device& device) {
  return at::cuda::getDeviceProperties(device.index())->multiProcessorCount;
}

absl::StatusOr<int64_t> TokensOf(const std::string& where, const TurboQuantTensor& k,
                                 int64_t tokens) {
  const int64_t rows = k.shape.size() == 3 ? k.shape[0] : 0;
  const int64_t t = tokens < 0 ? rows : tokens;
  if (t < 1 || t > rows) {
    return Bad(where, absl::StrCat("tokens (", tokens, ") must be in [1, ", rows, "], the rows of k"));
  }
  return t;
}

absl::Status CheckOut(const std::string& where, const torch::Tensor& out,
                      const std::vector<int64_t>& sizes, const torch::Device& device) {
  if (!out.defined() ||
      (out.scalar_type() != torch::kFloat32 && out.scalar_type() != torch::kBFloat16) ||
      out.sizes() != c10::IntArrayRef(sizes) || !out.is_contiguous() || out.device() != device) {
    return Bad(where, absl::StrCat("out must be a contiguous float32 or bf16 tensor ",
                                   std::string(c10::str(sizes)), " on ", device.str(), ", got ",
                                   Describe(out)));
  }
  return absl::OkStatus();
}

absl::Status CheckWorkspace(const std::string& where, const torch::Tensor& w, int64_t floats,
                            const torch::Device& device) {
  if (!w.defined() || w.scalar_type() != torch::kFloat32 || !w.is_contiguous() ||
      w.device() != device || w.numel() < floats) {
    return Bad(where, absl::StrCat("workspace must be contiguous float32 of at least ", floats,
                                   " values on ", device.str(),
                                   " (CodebookCudaWorkspace), got ", Describe(w)));
  }
  return absl::OkStatus();
}

absl::Status LaunchStatus(const std::string& where, cudaError_t status) {
  if (status == cudaErrorInvalidValue) {
    return Bad(where, "unsupported shape or format (query groups 1..8, values kMse)");
  }
  if (status != cudaSuccess) {
    return absl::InternalError(absl::StrCat(where, "launch failed: ", cudaGetErrorString(status)));
  }
  return absl::OkStatus();
}

uint16_t HalfBitsOf(float x) {
  const c10::Half h(x);
  return h.x;
}

}  // namespace

absl::StatusOr<CodebookCudaFormat> CodebookCudaFormat::Make(const TurboQuant& tq,
                                                            const torch::Device& device) {
  const std::string where = "CodebookCudaFormat::Make: ";
  if (tq.num_groups() != 1 || tq.head_dim() != kD) {
    return Bad(where, absl::StrCat("'", tq.name(), "' with head_dim ", tq.head_dim(),
                                   ": the CUDA kernels take head_dim 128 without the split"));
  }
  if (!device.is_cuda()) return Bad(where, "device must be CUDA");
  const TurboQuantCodec& c = tq.codec(0);
  CodebookCudaFormat f;
  f.name = tq.name();
  f.mse_bits = c.mse_bits();
  f.prod = c.kind() == TurboQuantKind::kProd;
  f.qjl_scale = c.qjl_scale();
  const auto floats = torch::dtype(torch::kFloat32);
  const torch::Tensor r =
      torch::from_blob(const_cast<float*>(c.rotation().matrix().data()), {kD, kD}, floats).clone();
  f.rotation = r.to(device);
  f.rotation_t = r.t().contiguous().to(device);
  if (c.rotation().kind() == RotationKind::kHadamard) {
    std::vector<float> signs(c.rotation().signs1());
    signs.insert(signs.end(), c.rotation().signs2().begin(), c.rotation().signs2().end());
    f.signs = torch::from_blob(signs.data(), {2, kD}, floats).clone().to(device);
  }
  if (f.prod) {
    const torch::Tensor s =
        torch::from_blob(const_cast<float*>(c.sketch().data()), {kD, kD}, floats).clone();
    f.sketch_t = s.t().contiguous().to(device);
  }
  if (f.mse_bits > 0) {
    const int b = f.mse_bits, mask = (1 << b) - 1;
    torch::Tensor table = torch::empty({1 << (2 * b)}, torch::dtype(torch::kInt32));
    int32_t* p = table.data_ptr<int32_t>();
    for (int field = 0; field < (1 << (2 * b)); ++field) {
      const uint32_t lo = HalfBitsOf(c.centroids()[field & mask]);
      const uint32_t hi = HalfBitsOf(c.centroids()[field >> b]);
      const uint32_t word = lo | (hi << 16);
      std::memcpy(&p[field], &word, 4);
    }
    f.pair_table = table.to(device);
  }
  return f;
}

absl::StatusOr<TurboQuantTensor> TurboQuantTensorToCuda(const TurboQuantTensor& t,
                                                        const torch::Device& device) {
  if (t.exact_cleanup) {
    return absl::InvalidArgumentError(
        "TurboQuantTensorToCuda: exact cleanup tensors have no CUDA kernel");
  }
  TurboQuantTensor out = t;
  auto move = [&](torch::Tensor& x) {
    if (x.defined()) x = x.contiguous().to(device);
  };
  move(out.outlier_mask);
  for (TurboQuantGroupCodes& g : out.groups) {
    move(g.codes);
    move(g.norms);
    move(g.qjl);
    move(g.residual_norms);
  }
  return out;
}

absl::StatusOr<torch::Tensor> CodebookCudaWorkspace(const torch::Tensor& q, int64_t kv_heads,
                                                    int64_t tokens) {
  const std::string where = "CodebookCudaWorkspace: ";
  if (absl::Status s = CheckQuery(where, q); !s.ok()) return s;
  if (kv_heads < 1 || tokens < 1) return Bad(where, "kv_heads and tokens must be >= 1");
  const cuda::CodebookShape shape{static_cast<int>(q.size(0)), static_cast<int>(kv_heads), tokens};
  return torch::empty(
      {cuda::CodebookAttentionWorkspaceFloats(shape, Multiprocessors(q.device()))},
      torch::dtype(torch::kFloat32).device(q.device()));
}

absl::Status CodebookLogitsCudaInto(const torch::Tensor& q, const CodebookCudaFormat& k_format,
                                    const TurboQuantTensor& k, torch::Tensor& out,
                                    torch::Tensor& workspace, int64_t tokens) {
  const std::string where = "codebook logits (CUDA): ";
  if (absl::Status s = CheckQuery(where, q); !s.ok()) return s;
  const torch::Device device = q.device();
  if (absl::Status s = CheckFormat(where, "k", k_format, device); !s.ok()) return s;
  absl::StatusOr<cuda::CodebookRows> rows = RowsOf(where, "k", k_format, k, device);
  if (!rows.ok()) return rows.status();
  // The same shape checks in both entry points (logits, and attention below), each naming its call.
  absl::StatusOr<int64_t> t = TokensOf(where, k, tokens);
  if (!t.ok()) return t.status();
  const cuda::CodebookShape shape{static_cast<int>(q.size(0)), static_cast<int>(k.shape[1]), *t};
  if (shape.heads % shape.kv_heads != 0 || shape.heads / shape.kv_heads > 8) {
    return Bad(where, absl::StrCat("q's heads (", shape.heads, ") must be 1..8 times k's kv_heads (",
                                   shape.kv_heads, ")"));
  }
  if (absl::Status s = CheckOut(where, out, {shape.heads, *t}, device); !s.ok()) return s;
  if (absl::Status s =
          CheckWorkspace(where, workspace, cuda::CodebookLogitsWorkspaceFloats(shape), device);
      !s.ok()) {
    return s;
  }
  const c10::cuda::CUDAGuard guard(device);
  return LaunchStatus(
      where, cuda::LaunchCodebookLogits(reinterpret_cast<const uint16_t*>(q.data_ptr()),
                                        DeviceFormat(k_format), *rows, shape, out.data_ptr(),
                                        out.scalar_type() == torch::kBFloat16,
                                        workspace.data_ptr<float>(), Multiprocessors(device),
                                        at::cuda::getCurrentCUDAStream(device.index())));
}

absl::StatusOr<torch::Tensor> CodebookLogitsCuda(const torch::Tensor& q,
                                                 const CodebookCudaFormat& k_format,
                                                 const TurboQuantTensor& k) {
  const std::string where = "codebook logits (CUDA): ";
  if (absl::Status s = CheckQuery(where, q); !s.ok()) return s;
  absl::StatusOr<int64_t> t = TokensOf(where, k, -1);
  if (!t.ok()) return t.status();
  absl::StatusOr<torch::Tensor> workspace = CodebookCudaWorkspace(q, k.shape[1], *t);
  if (!workspace.ok()) return workspace.status();
  torch::Tensor out =
      torch::empty({q.size(0), *t}, torch::dtype(torch::kFloat32).device(q.device()));
  if (absl::Status s = CodebookLogitsCudaInto(q, k_format, k, out, *workspace); !s.ok()) return s;
  return out;
}

absl::Status CodebookAttentionCudaInto(const torch::Tensor& q, const CodebookCudaFormat& k_format,
                                       const TurboQuantTensor& k,
                                       const CodebookCudaFormat& v_format,
                                       const TurboQuantTensor& v, torch::Tensor& out,
                                       torch::Tensor& workspace, double scale, int64_t tokens) {
  const std::string where = "codebook attention (CUDA): ";
  if (absl::Status s = CheckQuery(where, q); !s.ok()) return s;
  const torch::Device device = q.device();
  if (absl::Status s = CheckFormat(where, "k", k_format, device); !s.ok()) return s;
  if (absl::Status s = CheckFormat(where, "v", v_format, device); !s.ok()) return s;
  if (v_format.prod || v_format.mse_bits < 1) {
    return Bad(where, absl::StrCat("v's format '", v_format.name,
                                   "' must be turboquant_mse (the CUDA value path has no QJL)"));
  }
  absl::StatusOr<cuda::CodebookRows> k_rows = RowsOf(where, "k", k_format, k, device);
  if (!k_rows.ok()) return k_rows.status();
  absl::StatusOr<cuda::CodebookRows> v_rows = RowsOf(where, "v", v_format, v, device);
  if (!v_rows.ok()) return v_rows.status();
  if (v.shape != k.shape) {
    return Bad(where, "v must have k's shape [tokens, kv_heads, 128]");
  }
  absl::StatusOr<int64_t> t = TokensOf(where, k, tokens);
  if (!t.ok()) return t.status();
  const cuda::CodebookShape shape{static_cast<int>(q.size(0)), static_cast<int>(k.shape[1]), *t};
  if (shape.heads % shape.kv_heads != 0 || shape.heads / shape.kv_heads > 8) {
    return Bad(where, absl::StrCat("q's heads (", shape.heads, ") must be 1..8 times k's kv_heads (",
                                   shape.kv_heads, ")"));
  }
  if (absl::Status s = CheckOut(where, out, {shape.heads, kD}, device); !s.ok()) return s;
  const int sms = Multiprocessors(device);
  if (absl::Status s = CheckWorkspace(where, workspace,
                                      cuda::CodebookAttentionWorkspaceFloats(shape, sms), device);
      !s.ok()) {
    return s;
  }
  const float softmax_scale =
      scale > 0.0 ? static_cast<float>(scale) : 1.0f / std::sqrt(static_cast<float>(kD));
  const c10::cuda::CUDAGuard guard(device);
  return LaunchStatus(
      where, cuda::LaunchCodebookAttention(
                 reinterpret_cast<const uint16_t*>(q.data_ptr()), DeviceFormat(k_format), *k_rows,
                 DeviceFormat(v_format), *v_rows, shape, softmax_scale, out.data_ptr(),
                 out.scalar_type() == torch::kBFloat16, workspace.data_ptr<float>(), sms,
                 at::cuda::getCurrentCUDAStream(device.index())));
}

absl::StatusOr<torch::Tensor> CodebookAttentionCuda(const torch::Tensor& q,
                                                    const CodebookCudaFormat& k_format,
                                                    const TurboQuantTensor& k,
                                                    const CodebookCudaFormat& v_format,
                                                    const TurboQuantTensor& v, double scale) {
  const std::string where = "codebook attention (CUDA): ";
  if (absl::Status s = CheckQuery(where, q); !s.ok()) return s;
  absl::StatusOr<int64_t> t = TokensOf(where, k, -1);
  if (!t.ok()) return t.status();
  absl::StatusOr<torch::Tensor> workspace = CodebookCudaWorkspace(q, k.shape[1], *t);
  if (!workspace.ok()) return workspace.status();
  torch::Tensor out = torch::empty_like(q);
  if (absl::Status s = CodebookAttentionCudaInto(q, k_format, k, v_format, v, out, *workspace, scale);
      !s.ok()) {
    return s;
  }
  return out;
}

absl::Status DenseLogitsCudaInto(const torch::Tensor& q, const torch::Tensor& k,
                                 torch::Tensor& out) {
  const std::string where = "dense logits (CUDA): ";
  if (absl::Status s = CheckQuery(where, q); !s.ok()) return s;
  const torch::Device device = q.device();
  if (!k.defined() || k.dim() != 3 || k.size(0) < 1 || k.size(1) < 1) {
    return Bad(where, absl::StrCat("k must be bf16 [tokens, kv_heads, 128], got ", Describe(k)));
  }
  if (absl::Status s = CheckTensor(where, "k", k, torch::kBFloat16, {k.size(0), k.size(1), kD},
                                   device);
      !s.ok()) {
    return s;
  }
  const cuda::CodebookShape shape{static_cast<int>(q.size(0)), static_cast<int>(k.size(1)),
                                  k.size(0)};
  if (shape.heads % shape.kv_heads != 0 || shape.heads / shape.kv_heads > 8) {
    return Bad(where, "q's heads must be 1..8 times k's kv_heads");
  }
  if (absl::Status s = CheckOut(where, out, {shape.heads, shape.tokens}, device); !s.ok()) return s;
  const c10::cuda::CUDAGuard guard(device);
  return LaunchStatus(
      where, cuda::LaunchDenseLogits(reinterpret_cast<const uint16_t*>(q.data_ptr()),
                                     reinterpret_cast<const uint16_t*>(k.data_ptr()), shape,
                                     out.data_ptr(), out.scalar_type() == torch::kBFloat16,
                                     Multiprocessors(device),
                                     at::cuda::getCurrentCUDAStream(device.index())));
}

}  // namespace kvgate::kernels
