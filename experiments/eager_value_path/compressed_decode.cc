#include "experiments/eager_value_path/compressed_decode.h"

#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/runtime/attention_policy.h"
#include "experiments/runtime/decode.h"
#include "experiments/runtime/kv_cache.h"
#include "gates/metrics.h"
#include "kernels/attention/attention.h"
#include "kernels/kv_format/kv_format.h"
#include "kernels/kv_format/kv_format_registry.h"
#include "kernels/turboquant/codebook_attention.h"
#include "kernels/turboquant/turboquant.h"
#include "kernels/turboquant/turboquant_kv_format.h"

namespace kvgate::experiments {
namespace {

using Clock = std::chrono::steady_clock;
using kernels::TurboQuant;
using kernels::TurboQuantTensor;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One layer's encoded K or V: TurboQuant tensors in buffers of a fixed token capacity, so a decode
// step appends one token's codes in place. View() is the filled prefix (contiguous narrows).
class PackedKv {
 public:
  static absl::StatusOr<PackedKv> Make(const TurboQuantTensor& prefix, int64_t capacity) {
    if (prefix.outlier_mask.defined()) {
      return absl::InvalidArgumentError("PackedKv: split formats are not supported");
    }
    PackedKv p;
    p.meta_ = prefix;
    p.length_ = prefix.shape[0];
    for (auto& g : p.meta_.groups) {
      for (torch::Tensor* f : Fields(g)) {
        if (!f->defined()) continue;
        std::vector<int64_t> sizes = f->sizes().vec();
        sizes[0] = capacity;
        torch::Tensor buf = torch::empty(sizes, f->options());
        buf.narrow(0, 0, p.length_).copy_(*f);
        *f = buf;
      }
    }
    return p;
  }

  absl::Status Append(const TurboQuantTensor& t) {
    const int64_t n = t.shape[0];
    if (t.groups.size() != meta_.groups.size()) return absl::InternalError("PackedKv: groups");
    for (size_t g = 0; g < t.groups.size(); ++g) {
      auto dst = Fields(meta_.groups[g]);
      auto src = Fields(const_cast<kernels::TurboQuantGroupCodes&>(t.groups[g]));
      for (size_t i = 0; i < dst.size(); ++i) {
        if (dst[i]->defined() != src[i]->defined()) return absl::InternalError("PackedKv: fields");
        if (!dst[i]->defined()) continue;
        if (length_ + n > dst[i]->size(0)) {
          return absl::OutOfRangeError("PackedKv: encoded cache capacity exceeded");
        }
        dst[i]->narrow(0, length_, n).copy_(*src[i]);
      }
    }
    length_ += n;
    return absl::OkStatus();
  }

  TurboQuantTensor View() const {
    TurboQuantTensor v = meta_;
    v.shape[0] = length_;
    for (auto& g : v.groups) {
      for (torch::Tensor* f : Fields(g)) {
        if (f->defined()) *f = f->narrow(0, 0, length_);
      }
    }
    return v;
  }

  int64_t length() const { return length_; }

 private:
  static std::vector<torch::Tensor*> Fields(kernels::TurboQuantGroupCodes& g) {
    return {&g.codes, &g.norms, &g.qjl, &g.residual_norms, &g.rotated};
  }
  TurboQuantTensor meta_;
  int64_t length_ = 0;
};

// A compressed run's state: its format, its encoded cache, the attention time of the current step.
struct CompressedState {
  KvPath path = KvPath::kEager;
  TurboQuant tq;
  std::shared_ptr<const kernels::KvFormat> format;  // the eager path's decoder
  std::vector<PackedKv> k, v;
  double attention_seconds = 0;

  absl::StatusOr<TurboQuantTensor> Encode(const torch::Tensor& x) const {
    return path == KvPath::kFusedExactCleanup ? tq.EncodeExactCleanup(x) : tq.Encode(x);
  }
};

absl::StatusOr<runtime::AttentionResult> CompressedAttend(CompressedState& s,
                                                          const runtime::AttentionCall& call) {
  const auto t0 = Clock::now();
  if (call.q.size(0) != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("compressed policy: decode steps only (T = 1), got T = ", call.q.size(0)));
  }
  const int64_t layer = call.layer, history = call.k.size(0);
  PackedKv& pk = s.k[layer];
  PackedKv& pv = s.v[layer];
  if (pk.length() == history - 1) {  // the new token: encode and append
    absl::StatusOr<TurboQuantTensor> nk = s.Encode(call.k.narrow(0, history - 1, 1));
    if (!nk.ok()) return nk.status();
    absl::StatusOr<TurboQuantTensor> nv = s.Encode(call.v.narrow(0, history - 1, 1));
    if (!nv.ok()) return nv.status();
    if (absl::Status st = pk.Append(*nk); !st.ok()) return st;
    if (absl::Status st = pv.Append(*nv); !st.ok()) return st;
  } else if (pk.length() != history) {
    return absl::FailedPreconditionError(absl::StrCat("compressed policy: layer ", layer,
                                                      " holds ", pk.length(),
                                                      " encoded tokens, history is ", history));
  }
  const torch::Tensor q = call.q[0].to(torch::kFloat32).contiguous();  // [heads, D]
  torch::Tensor out;
  if (s.path == KvPath::kEager) {
    absl::StatusOr<kernels::EncodedKv> ek =
        kernels::TurboQuantTensorToEncodedKv(pk.View(), kernels::KvRole::kKey);
    if (!ek.ok()) return ek.status();
    absl::StatusOr<kernels::EncodedKv> ev =
        kernels::TurboQuantTensorToEncodedKv(pv.View(), kernels::KvRole::kValue);
    if (!ev.ok()) return ev.status();
    absl::StatusOr<kernels::AttentionOutput> o =
        kernels::EagerDecodeAttention(q, *s.format, *ek, *ev);
    if (!o.ok()) return o.status();
    out = o->out;
  } else {
    const float scale = 1.0f / std::sqrt(static_cast<float>(q.size(1)));
    absl::StatusOr<torch::Tensor> o =
        kernels::CodebookAttention(q, s.tq, pk.View(), s.tq, pv.View(), scale);
    if (!o.ok()) return o.status();
    out = *o;
  }
  runtime::AttentionResult result;
  result.out = out.to(call.q.dtype()).unsqueeze(0);
  s.attention_seconds += Since(t0);
  return result;
}

struct Run {
  std::string name;
  std::shared_ptr<CompressedState> state;  // null for dense
  runtime::AttentionPolicy policy;
  std::shared_ptr<double> attention_seconds;  // dense: the timer of the wrapped DenseAttention
  runtime::KvCache cache;
  std::vector<torch::Tensor> logits;  // per step, float32 [vocab] on the CPU
  std::vector<double> step_s, attention_s;
  double encode_s = 0;
  double kv_ratio = 1;
};

std::vector<float> AsVector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kFloat32).contiguous().cpu();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

absl::StatusOr<std::vector<PathVariant>> StandardVariants(KvPath path, int64_t seed) {
  std::vector<PathVariant> out;
  for (const char* kind : {"turboquant_mse", "turboquant_prod"}) {
    for (int bits : {2, 3, 4}) {
      absl::StatusOr<std::unique_ptr<kernels::KvFormat>> f =
          kernels::MakeKvFormat(absl::StrCat(kind, ":bits=", bits, ":seed=", seed));
      if (!f.ok()) return f.status();
      const KvPath p = path == KvPath::kFusedExactCleanup ? KvPath::kFused : path;
      out.push_back({(*f)->name(), p, (*f)->name()});
    }
  }
  if (path != KvPath::kEager) {
    for (const char* kind : {"turboquant_mse", "turboquant_prod"}) {
      absl::StatusOr<std::unique_ptr<kernels::KvFormat>> f =
          kernels::MakeKvFormat(absl::StrCat(kind, ":bits=4:seed=", seed));
      if (!f.ok()) return f.status();
      out.push_back({(*f)->name(), KvPath::kFusedExactCleanup,
                     absl::StrCat("exact_cleanup(", (*f)->name(), ")")});
    }
  }
  return out;
}

absl::Status CheckRunFlags(int64_t context, int64_t decode_steps, const std::string& dtype,
                           const std::string& device, int64_t seed) {
  if (context < 1) return absl::InvalidArgumentError(absl::StrCat("--context must be >= 1, got ", context));
  if (decode_steps < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--decode_steps must be >= 1, got ", decode_steps));
  }
  if (dtype != "float32" && dtype != "bfloat16" && dtype != "float16") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype must be float32, bfloat16 or float16, got '", dtype, "'"));
  }
  if (device != "cpu") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--device must be cpu (the eager and fused TurboQuant primitives are CPU only), got '",
        device, "'"));
  }
  if (seed < 0) return absl::InvalidArgumentError(absl::StrCat("--seed must be >= 0, got ", seed));
  return absl::OkStatus();
}

absl::StatusOr<CompressedDecodeOutput> RunCompressedDecode(
    const runtime::Model& model, const std::vector<int64_t>& prompt,
    const std::vector<PathVariant>& variants, const CompressedDecodeOptions& options) {
  auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  if (prompt.empty()) return absl::InvalidArgumentError("RunCompressedDecode: empty prompt");
  if (options.decode_steps < 1) return absl::InvalidArgumentError("decode_steps must be >= 1");
  const runtime::ModelConfig& config = model.config();
  const int64_t context = static_cast<int64_t>(prompt.size());
  const int64_t steps = options.decode_steps;
  const int64_t capacity = context + steps;
  const int64_t layers = config.num_hidden_layers, kv_heads = config.num_key_value_heads,
                head_dim = config.head_dim;

  CompressedDecodeOutput output;
  runtime::KvCache prefilled = model.NewCache(capacity);
  auto t0 = Clock::now();
  absl::StatusOr<torch::Tensor> prefill_logits = runtime::Prefill(model, prefilled, prompt);
  if (!prefill_logits.ok()) return prefill_logits.status();
  output.prefill_seconds = Since(t0);
  say(absl::StrFormat("prefill: %d tokens, %.2f s (dense)", context, output.prefill_seconds));

  auto clone_cache = [&]() {
    runtime::KvCache c;
    for (int64_t l = 0; l < layers; ++l) {
      c.k.push_back(prefilled.k[l].clone());
      c.v.push_back(prefilled.v[l].clone());
    }
    c.length = prefilled.length;
    return c;
  };
  const double bf16_bytes = 2.0 * context * kv_heads * head_dim * 2.0;  // K + V, one layer

  std::vector<Run> runs;
  {  // dense reference: the model's DenseAttention, timed
    Run dense;
    dense.name = "dense";
    dense.attention_seconds = std::make_shared<double>(0);
    runtime::AttentionPolicy inner = runtime::DenseAttention();
    std::shared_ptr<double> timer = dense.attention_seconds;
    dense.policy = [inner, timer](const runtime::AttentionCall& call)
        -> absl::StatusOr<runtime::AttentionResult> {
      const auto a0 = Clock::now();
      absl::StatusOr<runtime::AttentionResult> r = inner(call);
      *timer += Since(a0);
      return r;
    };
    dense.cache = clone_cache();
    runs.push_back(std::move(dense));
  }
  for (const PathVariant& pv : variants) {
    Run run;
    run.name = pv.variant;
    auto state = std::make_shared<CompressedState>();
    state->path = pv.path;
    absl::StatusOr<TurboQuant> tq = kernels::TurboQuantForSpec(pv.spec, head_dim);
    if (!tq.ok()) return tq.status();
    state->tq = *tq;
    absl::StatusOr<std::unique_ptr<kernels::KvFormat>> format = kernels::MakeKvFormat(pv.spec);
    if (!format.ok()) return format.status();
    state->format = std::shared_ptr<const kernels::KvFormat>(std::move(*format));
    run.cache = clone_cache();
    const auto e0 = Clock::now();
    int64_t bytes_layer0 = 0;
    for (int64_t l = 0; l < layers; ++l) {
      absl::StatusOr<TurboQuantTensor> k = state->Encode(run.cache.Keys(l));
      if (!k.ok()) return k.status();
      absl::StatusOr<TurboQuantTensor> v = state->Encode(run.cache.Values(l));
      if (!v.ok()) return v.status();
      if (l == 0) bytes_layer0 = k->bytes() + v->bytes();
      absl::StatusOr<PackedKv> pk = PackedKv::Make(*k, capacity);
      if (!pk.ok()) return pk.status();
      absl::StatusOr<PackedKv> pvv = PackedKv::Make(*v, capacity);
      if (!pvv.ok()) return pvv.status();
      state->k.push_back(std::move(*pk));
      state->v.push_back(std::move(*pvv));
    }
    run.encode_s = Since(e0);
    run.kv_ratio = bytes_layer0 / bf16_bytes;
    run.state = state;
    run.policy = [state](const runtime::AttentionCall& call) {
      return CompressedAttend(*state, call);
    };
    say(absl::StrFormat("encoded %s: %d layers x K,V of %d tokens in %.1f ms, kv_ratio %.4f",
                        run.name, layers, context, run.encode_s * 1e3, run.kv_ratio));
    runs.push_back(std::move(run));
  }

  // Interleaved, teacher-forced decode.
  int64_t token = prefill_logits->argmax().item<int64_t>();
  const size_t n_runs = runs.size();
  std::vector<int64_t> dense_tokens;  // fed at each step, for locating a non-finite reference
  for (int64_t step = 0; step < steps; ++step) {
    dense_tokens.push_back(token);
    int64_t next_token = -1;
    for (size_t j = 0; j < n_runs; ++j) {
      Run& run = runs[(j + static_cast<size_t>(step)) % n_runs];
      if (run.state) run.state->attention_seconds = 0;
      if (run.attention_seconds) *run.attention_seconds = 0;
      runtime::ForwardHooks hooks;
      hooks.policy = run.policy;
      hooks.step = step;
      const auto s0 = Clock::now();
      absl::StatusOr<torch::Tensor> logits = runtime::DecodeOne(model, run.cache, token, hooks);
      if (!logits.ok()) {
        return absl::Status(logits.status().code(),
                            absl::StrCat(run.name, " step ", step, ": ", logits.status().message()));
      }
      const int64_t argmax = logits->argmax().item<int64_t>();
      run.step_s.push_back(Since(s0));
      run.attention_s.push_back(run.state ? run.state->attention_seconds : *run.attention_seconds);
      run.logits.push_back(logits->to(torch::kFloat32).cpu().contiguous());
      if (!run.state) next_token = argmax;
    }
    say(absl::StrFormat("step %d/%d: dense %.1f ms (attention %.2f ms)", step + 1, steps,
                        runs[0].step_s.back() * 1e3, runs[0].attention_s.back() * 1e3));
    token = next_token;
  }

  const Run& dense = runs[0];
  const double dense_step_ms = Median(dense.step_s) * 1e3;
  const double dense_attn_ms = Median(dense.attention_s) * 1e3;
  const std::vector<float> ref0 = AsVector(dense.logits[0]);
  std::map<std::string, double> nonfinite_metrics;
  if (!gates::AllFinite(ref0)) {
    // Numerical guard: replay the dense run to name where it first went non-finite.
    absl::StatusOr<std::optional<runtime::NonFiniteAt>> at =
        runtime::LocateNonFinite(model, prompt, dense_tokens);
    if (!at.ok()) return at.status();
    const runtime::NonFiniteAt where = at->value_or(runtime::NonFiniteAt{0, layers + 1});
    output.reference_nonfinite = where.Describe(layers);
    nonfinite_metrics = {{runtime::kReferenceNonfiniteStep, static_cast<double>(where.step)},
                         {runtime::kReferenceNonfiniteLayer, static_cast<double>(where.layer)}};
    say("dense reference NON-FINITE from " + output.reference_nonfinite +
        ": every quality row is invalid");
  }
  std::vector<std::vector<float>> ref_all;
  for (const auto& l : dense.logits) ref_all.push_back(AsVector(l));
  for (size_t r = 1; r < n_runs; ++r) {
    const Run& run = runs[r];
    const std::vector<float> test0 = AsVector(run.logits[0]);
    gates::Record q;
    q.experiment = options.experiment;
    q.variant = run.name;
    q.target = options.target;
    q.step = 0;
    absl::StatusOr<double> mse = gates::DecodeLogitMse(ref0, test0);
    absl::StatusOr<double> top10 = gates::TopKOverlap(ref0, test0, 10);
    absl::StatusOr<double> agree = gates::ArgmaxAgreement(ref0, test0);
    absl::StatusOr<double> kl = gates::KlDivergence(ref0, test0);
    for (const auto* s : {&mse, &top10, &agree, &kl}) {
      if (!s->ok()) return s->status();
    }
    std::vector<std::vector<float>> test_all;
    for (const auto& l : run.logits) test_all.push_back(AsVector(l));
    std::vector<gates::Values> ref_rows, test_rows;
    for (size_t i = 0; i < ref_all.size(); ++i) {
      ref_rows.emplace_back(ref_all[i]);
      test_rows.emplace_back(test_all[i]);
    }
    absl::StatusOr<gates::Fidelity> fid = gates::FidelityOverPositions(ref_rows, test_rows);
    if (!fid.ok()) return fid.status();
    q.metrics = {{gates::kDecodeLogitMse, *mse},
                 {gates::kTop10Overlap, *top10},
                 {gates::kArgmaxAgreement, *agree},
                 {gates::kKlDivergence, *kl},
                 {gates::kKvRatio, run.kv_ratio},
                 {gates::kReferenceFinite, gates::AllFinite(ref0) ? 1.0 : 0.0},
                 {"mean_kl_divergence_all_steps", fid->mean_kl_divergence},
                 {gates::kMeanAbsDeltaP, fid->mean_abs_delta_p},
                 {gates::kSameTopPRate, fid->same_top_p_rate}};
    q.metrics.insert(nonfinite_metrics.begin(), nonfinite_metrics.end());
    output.quality.push_back(std::move(q));

    gates::Record t;
    t.experiment = options.experiment;
    t.variant = run.name;
    t.target = options.target;
    t.step = std::nullopt;
    t.metrics = {{"dense_decode_step_ms", dense_step_ms},
                 {"compressed_decode_step_ms", Median(run.step_s) * 1e3},
                 {"dense_attention_ms", dense_attn_ms},
                 {"compressed_attention_ms", Median(run.attention_s) * 1e3},
                 {"encode_prefix_ms", run.encode_s * 1e3},
                 {gates::kKvRatio, run.kv_ratio},
                 {"decode_steps", static_cast<double>(steps)}};
    output.latency.push_back(std::move(t));
  }
  return output;
}

}  // namespace kvgate::experiments
