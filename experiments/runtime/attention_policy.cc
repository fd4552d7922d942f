#include "experiments/runtime/attention_policy.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvgate::runtime {

AttentionResult Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& keep, bool want_probs) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3, "Attend: q ", q.sizes(), " and k ", k.sizes(),
              " must be [tokens, heads, head_dim]");
  TORCH_CHECK(v.sizes() == k.sizes(), "Attend: v ", v.sizes(), " != k ", k.sizes());
  const int64_t t = q.size(0), heads = q.size(1), d = q.size(2);
  const int64_t s = k.size(0), kv_heads = k.size(1);
  TORCH_CHECK(k.size(2) == d, "Attend: head_dim of k ", k.size(2), " != q's ", d);
  TORCH_CHECK(kv_heads > 0 && heads % kv_heads == 0, "Attend: ", heads, " heads over ", kv_heads,
              " kv heads");
  TORCH_CHECK(t >= 1 && t <= s, "Attend: ", t, " queries over a history of ", s);
  const int64_t group = heads / kv_heads;
  const int64_t position = s - t;  // of the first query
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));

  if (t > 1 && position == 0 && !keep.defined() && !want_probs) {
    // A plain causal prefill: LibTorch's fused kernel. Layout [1, heads, T, D] (views).
    torch::Tensor out = at::scaled_dot_product_attention(
        q.transpose(0, 1).unsqueeze(0), k.transpose(0, 1).unsqueeze(0),
        v.transpose(0, 1).unsqueeze(0), /*attn_mask=*/{}, /*dropout_p=*/0.0,
        /*is_causal=*/true, scale, /*enable_gqa=*/group > 1);  // [1, heads, T, D]
    return {out.squeeze(0).transpose(0, 1), {}};               // [T, heads, D]
  }

  // Queries grouped by the kv head they read: row g * T + i of group kv is head kv * group + g.
  const torch::Tensor q_g =
      q.view({t, kv_heads, group, d}).permute({1, 2, 0, 3}).reshape({kv_heads, group * t, d});
  const torch::Tensor k_h = k.permute({1, 0, 2});  // [kv_heads, S, D], a view of the cache
  const torch::Tensor v_h = v.permute({1, 0, 2});  // [kv_heads, S, D]
  torch::Tensor scores = torch::matmul(q_g, k_h.transpose(1, 2));  // [kv_heads, group * T, S]
  scores.mul_(scale);
  scores = scores.view({kv_heads, group, t, s});

  torch::Tensor allowed;  // bool, broadcasts to [kv_heads, group, T, S]
  if (t > 1) {            // query i (position + i) sees keys [0, position + i]
    const auto idx = torch::TensorOptions().dtype(torch::kLong).device(q.device());
    allowed = (torch::arange(s, idx).unsqueeze(0) <= torch::arange(position, s, idx).unsqueeze(1))
                  .view({1, 1, t, s});
  }
  if (keep.defined()) {
    TORCH_CHECK(keep.scalar_type() == torch::kBool && keep.dim() == 2 && keep.size(1) == s,
                "Attend: keep must be bool [R, ", s, "], got ", keep.scalar_type(), " ",
                keep.sizes());
    const int64_t rows = keep.size(0);
    torch::Tensor keep_b;
    if (rows == 1) {
      keep_b = keep.view({1, 1, 1, s});
    } else if (rows == kv_heads) {
      keep_b = keep.view({kv_heads, 1, 1, s});
    } else if (rows == heads) {
      keep_b = keep.view({kv_heads, group, 1, s});
    } else {
      TORCH_CHECK(false, "Attend: keep has ", rows, " rows; expected 1, ", kv_heads, " or ", heads);
    }
    keep_b = keep_b.to(q.device());
    allowed = allowed.defined() ? allowed.logical_and(keep_b) : keep_b;
  }
  if (allowed.defined()) {
    scores.masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  }
  const torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat);  // [kv, group, T, S]
  torch::Tensor out = torch::matmul(probs.to(v.scalar_type()).view({kv_heads, group * t, s}), v_h);
  out = out.view({kv_heads, group, t, d}).permute({2, 0, 1, 3}).reshape({t, heads, d});
  AttentionResult result{out, {}};
  if (want_probs) result.probs = probs.permute({2, 0, 1, 3}).reshape({t, heads, s});
  return result;
}

AttentionPolicy DenseAttention() {
  return [](const AttentionCall& call) -> absl::StatusOr<AttentionResult> {
    return Attend(call.q, call.k, call.v, /*keep=*/{}, call.want_probs);
  };
}

absl::StatusOr<torch::Tensor> KvRoundTrip(const kernels::KvFormat& format, const torch::Tensor& x,
                                          kernels::KvRole role, const torch::Tensor& like) {
  absl::StatusOr<kernels::EncodedKv> encoded = format.Encode(x.to(torch::kCPU).contiguous(), role);
  if (!encoded.ok()) return encoded.status();
  absl::StatusOr<torch::Tensor> decoded = format.Decode(*encoded);  // float32 [tokens, kv_heads, D]
  if (!decoded.ok()) return decoded.status();
  if (decoded->sizes() != x.sizes()) {
    return absl::InternalError(absl::StrCat(format.name(), " decoded a different shape"));
  }
  return decoded->to(like.options());
}

namespace {

// What a layer's history was at its last call, raw and round-tripped, for formats that encode
// tokens independently.
struct LayerHistory {
  torch::Tensor raw[2];      // K, V as the cache held them [len, kv_heads, D], on the CPU
  torch::Tensor decoded[2];  // their round trip, q's dtype and device
};

}  // namespace

AttentionPolicy KvRoundTripAttention(std::shared_ptr<const kernels::KvFormat> format) {
  TORCH_CHECK(format != nullptr, "KvRoundTripAttention: no format");
  struct State {
    std::mutex mutex;
    std::map<int64_t, LayerHistory> by_layer;
  };
  auto state = std::make_shared<State>();
  const bool incremental = format->EncodesTokensIndependently();
  return
      [format, state, incremental](const AttentionCall& call) -> absl::StatusOr<AttentionResult> {
        const kernels::KvRole roles[2] = {kernels::KvRole::kKey, kernels::KvRole::kValue};
        if (!incremental) {
          absl::StatusOr<torch::Tensor> k = KvRoundTrip(*format, call.k, roles[0], call.q);
          if (!k.ok()) return k.status();
          absl::StatusOr<torch::Tensor> v = KvRoundTrip(*format, call.v, roles[1], call.q);
          if (!v.ok()) return v.status();
          return Attend(call.q, *k, *v, /*keep=*/{}, call.want_probs);
        }
        // Per-token formats: encode only the rows after the ones this layer has already encoded, as
        // a cache that encodes each token when it is written would. That equals re-encoding the
        // whole history (EncodesTokensIndependently's promise) as long as those rows are unchanged,
        // which is checked: a different history (another window, a rewound cache) is encoded from
        // scratch. The comparison runs on the CPU, where the rows go anyway, so a GPU model pays
        // the two copies a layer the full round trip pays and no extra synchronization.
        std::lock_guard<std::mutex> lock(state->mutex);
        LayerHistory& seen = state->by_layer[call.layer];
        const int64_t s = call.k.size(0);
        const torch::Tensor history[2] = {call.k.to(torch::kCPU), call.v.to(torch::kCPU)};
        int64_t len = seen.raw[0].defined() ? seen.raw[0].size(0) : 0;
        for (int i = 0; i < 2 && len > 0; ++i) {
          if (len > s || !torch::equal(history[i].narrow(0, 0, len), seen.raw[i])) len = 0;
        }
        for (int i = 0; i < 2; ++i) {
          const torch::Tensor fresh = history[i].narrow(0, len, s - len);
          absl::StatusOr<torch::Tensor> x = KvRoundTrip(*format, fresh, roles[i], call.q);
          if (!x.ok()) return x.status();
          if (len == 0) {
            seen.raw[i] = fresh.clone();
            seen.decoded[i] = *std::move(x);
          } else {
            seen.raw[i] = torch::cat({seen.raw[i], fresh});
            seen.decoded[i] = torch::cat({seen.decoded[i], *x});
          }
        }
        return Attend(call.q, seen.decoded[0], seen.decoded[1], /*keep=*/{}, call.want_probs);
      };
}

AttentionPolicy SelectedHistoryAttention(HistorySelector selector) {
  TORCH_CHECK(selector != nullptr, "SelectedHistoryAttention: no selector");
  return [selector](const AttentionCall& call) -> absl::StatusOr<AttentionResult> {
    absl::StatusOr<torch::Tensor> keep = selector(call);
    if (!keep.ok()) return keep.status();
    if (!keep->defined()) return Attend(call.q, call.k, call.v, /*keep=*/{}, call.want_probs);
    const int64_t s = call.k.size(0), heads = call.q.size(1), kv_heads = call.k.size(1);
    const int64_t rows = keep->dim() == 2 ? keep->size(0) : -1;
    if (keep->scalar_type() != torch::kBool || keep->dim() != 2 || keep->size(1) != s ||
        (rows != 1 && rows != kv_heads && rows != heads)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", call.layer, " step ", call.step, ": a selection must be bool [1, ",
                       kv_heads, " or ", heads, ", ", s, "], got ",
                       c10::toString(keep->scalar_type()), " ", c10::str(keep->sizes())));
    }
    // The first query sees the fewest positions, [0, position]; every row must keep one of them.
    if (!keep->narrow(1, 0, call.position + 1).any(1).all().item<bool>()) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", call.layer, " step ", call.step,
                                                     ": a selection leaves a head nothing to "
                                                     "attend at position ",
                                                     call.position));
    }
    return Attend(call.q, call.k, call.v, *keep, call.want_probs);
  };
}

torch::Tensor KeepTokens(const torch::Tensor& indices, int64_t history) {
  TORCH_CHECK(indices.dim() == 1 || indices.dim() == 2,
              "KeepTokens: indices must be [n] or [R, n]");
  const torch::Tensor idx = (indices.dim() == 1 ? indices.unsqueeze(0) : indices).to(torch::kLong);
  if (idx.numel() > 0) {
    TORCH_CHECK(idx.min().item<int64_t>() >= 0 && idx.max().item<int64_t>() < history,
                "KeepTokens: an index is outside [0, ", history, ")");
  }
  torch::Tensor keep = torch::zeros({idx.size(0), history}, idx.options().dtype(torch::kBool));
  return keep.scatter_(1, idx, true);
}

torch::Tensor KeepBlocks(const torch::Tensor& block_mask, int64_t block_size, int64_t history) {
  TORCH_CHECK(block_size > 0, "KeepBlocks: block_size ", block_size);
  const int64_t blocks = (history + block_size - 1) / block_size;
  const torch::Tensor mask = block_mask.dim() == 1 ? block_mask.unsqueeze(0) : block_mask;
  TORCH_CHECK(mask.dim() == 2 && mask.size(1) == blocks && mask.scalar_type() == torch::kBool,
              "KeepBlocks: block_mask must be bool [R, ", blocks, "] for ", history,
              " positions in blocks of ", block_size, ", got ", mask.sizes());
  return mask.repeat_interleave(block_size, 1).narrow(1, 0, history);
}

}  // namespace kvgate::runtime
