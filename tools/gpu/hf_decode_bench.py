#!/usr/bin/env python3
"""Hugging Face transformers' decode step on the GPU: the baseline gpu_decode compares against.

Qwen2.5-7B-Instruct's exact config (experiments/runtime/model_configs.cc: "qwen2.5-7b") with a
seeded random bf16 init created directly on the GPU (`with torch.device("cuda")`), batch 1, eager
(no torch.compile), attention "sdpa", a StaticCache of exactly `context` tokens whose history is
filled with seeded N(0, 1) values. Every timed step decodes one token at position context - 1 (so
it attends to all `context` tokens) and is repeated there; CUDA events around each model call,
median of --steps.

Per context it measures:
  step_ms              the eager decode step (model forward of one token, logits included)
  ablated_step_ms      the same with attention replaced by "attend to the newest token only"
  attention_kernel_ms  the step's own 28 attention calls (transformers' sdpa_attention_forward on
                       the exact q/k/v/mask tensors one real step passed it), captured in a CUDA
                       graph and replayed: their kernel time without Python launch gaps
and writes them as JSON (--out), which gpu_decode --hf_json reads for the records.

    python3 tools/gpu/hf_decode_bench.py --contexts 8192,32768,131072 --out $OUT/hf.json
"""

import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

try:  # transformers >= 4.48
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
except ImportError:  # pragma: no cover
    AttentionInterface = None


def qwen25_7b_config(max_positions):
    return Qwen2Config(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=max_positions,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
        hidden_act="silu", attn_implementation="sdpa")


def make_static_cache(config, context):
    from transformers import StaticCache
    try:
        return StaticCache(config=config, max_cache_len=context)
    except TypeError:  # transformers 4.4x signature
        return StaticCache(config=config, max_batch_size=1, max_cache_len=context, device="cuda",
                           dtype=torch.bfloat16)


def cache_tensors(cache):
    """(keys, values) of every layer, [1, kv_heads, context, head_dim] each."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


# The attention function transformers calls for "sdpa" is swapped by wrapping the registered one.
_MODE = {"mode": "sdpa", "captured": None}


def kvgate_attention(module, query, key, value, attention_mask, **kwargs):
    mode = _MODE["mode"]
    if mode == "newest_only":  # ablation: out[h] = v_newest[h / group]
        groups = query.shape[1] // value.shape[1]
        out = value[:, :, -1:, :].repeat_interleave(groups, dim=1)
        return out.transpose(1, 2).contiguous(), None
    if mode == "capture":
        _MODE["captured"].append((module, query, key, value, attention_mask, kwargs))
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def time_ms(fn, repeats):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    out = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        out.append(start.elapsed_time(stop))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contexts", default="8192")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    contexts = [int(c) for c in args.contexts.split(",") if c]
    if AttentionInterface is None:
        sys.exit("hf_decode_bench: this transformers has no AttentionInterface")
    AttentionInterface.register("sdpa", kvgate_attention)

    torch.manual_seed(args.seed)
    torch.set_default_dtype(torch.bfloat16)
    config = qwen25_7b_config(max(contexts) + 16)
    t0 = time.time()
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config)
    model.eval()
    torch.set_default_dtype(torch.float32)
    print(f"hf_decode_bench: transformers {transformers.__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name(0)}; model built on the GPU in {time.time() - t0:.1f} s, "
          f"attn {model.config._attn_implementation}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters", flush=True)

    result = {"transformers_version": transformers.__version__, "torch_version": torch.__version__,
              "cuda_version": torch.version.cuda, "device": torch.cuda.get_device_name(0),
              "seed": args.seed, "contexts": {}}
    gen = torch.Generator(device="cuda")
    with torch.inference_mode():
        for context in contexts:
            cache = make_static_cache(model.config, context)
            pos = context - 1
            token = torch.tensor([[pos % config.vocab_size]], device="cuda")
            # One call at position 0 allocates the cache's tensors; then the history is random.
            model(input_ids=token, past_key_values=cache, use_cache=True,
                  cache_position=torch.tensor([0], device="cuda"),
                  position_ids=torch.tensor([[0]], device="cuda"))
            gen.manual_seed(args.seed * 1000003 + context)
            for k, v in cache_tensors(cache):
                k.normal_(generator=gen)
                v.normal_(generator=gen)
            kwargs = dict(input_ids=token, past_key_values=cache, use_cache=True,
                          cache_position=torch.tensor([pos], device="cuda"),
                          position_ids=torch.tensor([[pos]], device="cuda"))
            step = lambda: model(**kwargs)
            row = {}
            for mode, key in (("sdpa", "step_ms"), ("newest_only", "ablated_step_ms")):
                _MODE["mode"] = mode
                for _ in range(3):
                    step()
                times = time_ms(step, args.steps)
                row[key] = statistics.median(times)
                if mode == "sdpa":
                    row["step_ms_all"] = times
                    logits = step().logits
                    row["logits_finite"] = bool(torch.isfinite(logits).all())
            # The step's own attention calls, replayed in a CUDA graph.
            _MODE["mode"], _MODE["captured"] = "capture", []
            step()
            calls = _MODE["captured"]
            _MODE["mode"] = "sdpa"
            run_calls = lambda: [sdpa_attention_forward(m, q, k, v, mask, **kw)
                                 for (m, q, k, v, mask, kw) in calls]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    run_calls()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                run_calls()
            row["attention_kernel_ms"] = statistics.median(time_ms(graph.replay, args.steps))
            row["attention_calls"] = len(calls)
            row["timed_steps"] = args.steps
            print(f"hf_decode_bench: context {context}: step {row['step_ms']:.3f} ms, newest-only "
                  f"step {row['ablated_step_ms']:.3f} ms, {len(calls)} attention calls "
                  f"{row['attention_kernel_ms']:.3f} ms (graph-replayed), logits finite "
                  f"{row['logits_finite']}", flush=True)
            result["contexts"][str(context)] = row
            del graph, calls, cache, step, kwargs
            _MODE["captured"] = None
            torch.cuda.empty_cache()
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
