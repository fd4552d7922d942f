"""Regenerates the reference data the runtime tests compare against, from Python libraries.

Not run by the build: the outputs are committed. Run it once in a throwaway virtual environment:
  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tokenizers==0.23.3 gguf==0.19.0 jinja2 numpy
  /tmp/venv/bin/python experiments/runtime/testdata/make_references.py \
      --gguf $(bazel info output_base)/external/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
      [--qwen25_template qwen25_template.jinja]  # chat_template of Qwen2.5-7B-Instruct's tokenizer_config.json

Writes, next to this script:
  smollm2_tokens.json       token ids of test strings from the real SmolLM2 tokenizer, rebuilt in
                            Hugging Face `tokenizers` from the GGUF's vocabulary, merges and special
                            tokens with SmolLM2's tokenizer.json pipeline (Digits(individual_digits)
                            then ByteLevel(use_regex), ByteLevel decoder)
  tiny_{gpt2,smollm,qwen2,llama3}.tokenizer.json
                            small byte-level BPE tokenizers trained here on the Apache-2.0 license
                            text with each model family's pre-tokenizer (and Qwen2's NFC normalizer)
  tiny_tokenizers_expected.json   their token ids for the test strings and random strings
  nfc_expected.json         unicodedata.normalize("NFC") of tricky strings
  smollm2_dequant.json      the `gguf` package's dequantization of a few SmolLM2 tensors
  chat_template_expected.json     jinja2 renderings of SmolLM2's (from the GGUF) and Qwen2.5's
                            templates, as transformers' apply_chat_template renders them
"""
import argparse
import json
import os
import random
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")

TEXTS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say we've done what's right; don't you think? WE'LL SEE. It'S ok",
    "Numbers: 0 7 42 123 2024 3.14159 1,000,000 and -17e-3.",
    "a  b   c    d\t\te\n\nf\n \n g   ",
    "   leading and trailing   ",
    "\n\n\n",
    "tabs\tand\r\nwindows\r\nlines\r\n",
    "Café, naïve, Zürich, São Paulo, Ångström, façade.",
    "日本語のテキストと中文文本。한국어 텍스트.",
    "Emoji: 🤗🚀👍🏽 and flags 🇫🇷.",
    "Русский текст и Ελληνικά γράμματα.",
    "العربية: مرحبا بالعالم ١٢٣",
    "हिन्दी पाठ (Devanagari) ५६",
    "Superscripts x² and ½ fractions, Ⅻ Roman, fullwidth ５６.",
    "def square(x):\n    return x ** 2  # squared\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><|im_start|><|im_end|>",
    "<|im_start", 
    "https://example.com/path?query=1&b=2#frag",
    "email: someone@example.org, price $19.99, 50% off!!!",
    "Long words: antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "'s 'S 'll 'LL 'Re ſ 'ſ",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "combining: e\u0301 a\u0308 n\u0303 \u1e9b\u0323",
    "mixed123abc456def 7up 3D 4K",
    "control\x04\x06 bytes\x13\x14 without tokens\x1d",
]

ALPHABET = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
            list(" \t\n\r.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`") +
            [" ", " ", " ", "  ", "\n\n", "'s", "'LL", "'re"] +
            list("éüñçÅßøœ") + ["e\u0301", "a\u0308", "\u0301", "\u0323\u0307"] +
            list("日本語中文한국어") + list("Привет") + list("αβγΩ") +
            list("٣٤٥५６²½Ⅻ") + ["🤗", "🚀", "👍🏽"] +
            ["\u00a0", "\u2003", "\u3000", "\u0085", "\u200b", "ſ", "\u212a"] +
            ["<|im_start|>", "<|im_end|>"])


def random_texts(count, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30))) for _ in range(count)]


def smollm2_tokenizer(reader):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    fields = reader.fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ")) for m in fields["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok


def tiny_tokenizers():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    with open("/usr/share/common-licenses/Apache-2.0", encoding="utf-8") as f:
        corpus = f.read()
    corpus += "\n" + "\n".join(TEXTS)
    kinds = {
        "gpt2": (None, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)),
        "smollm": (None, pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])),
        "qwen2": (normalizers.NFC(), pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])),
        "llama3": (None, pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])),
    }
    out = {}
    for name, (normalizer, pre) in kinds.items():
        tok = Tokenizer(models.BPE(ignore_merges=(name == "llama3")))
        if normalizer is not None:
            tok.normalizer = normalizer
        tok.pre_tokenizer = pre
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=600, min_frequency=2, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        tok.train_from_iterator([corpus], trainer=trainer)
        path = os.path.join(HERE, "tiny_%s.tokenizer.json" % name)
        tok.save(path, pretty=False)
        out[name] = Tokenizer.from_file(path)
    return out


def encode_all(tok, texts):
    rows = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        rows.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    return rows


def dequant_reference(reader):
    from gguf import quants
    rows = []
    for name in ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.ffn_down.weight",
                 "token_embd.weight", "blk.0.attn_norm.weight"]:
        t = next(t for t in reader.tensors if t.name == name)
        values = quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        picks = sorted({i for i in [0, 1, 2, 15, 16, 17, 31, 32, 33, 1000, 12345, values.size // 2,
                                    values.size - 1] if i < values.size})
        rows.append({
            "name": name,
            "type": t.tensor_type.name,
            "torch_shape": [int(x) for x in reversed(t.shape.tolist())],
            "numel": int(values.size),
            "sum": float(values.astype(np.float64).sum()),
            "sum_squares": float((values.astype(np.float64) ** 2).sum()),
            "min": float(values.min()),
            "max": float(values.max()),
            "picks": [{"index": int(i), "value": float(values[i]),
                       "bits": int(values[i:i + 1].view(np.uint32)[0])} for i in picks],
            "first_block_bytes": bytes(t.data.reshape(-1).view(np.uint8)[:34]).hex(),
        })
    return rows


def chat_references(smollm2_template, qwen25_template):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    conversations = [
        [{"role": "user", "content": "Hello!"}],
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
         {"role": "user", "content": "And 3+3?\nExplain."}],
        [{"role": "system", "content": "S1"}, {"role": "user", "content": "u"},
         {"role": "system", "content": "S2"}, {"role": "assistant", "content": ""}],
        [{"role": "user", "content": "Unicode: café 日本 🤗"}],
    ]
    rows = []
    for name, source in [("smollm2", smollm2_template), ("qwen2.5", qwen25_template)]:
        if source is None:
            continue
        template = env.from_string(source)
        for messages in conversations:
            for gen in (False, True):
                rows.append({"template": name, "messages": messages, "add_generation_prompt": gen,
                             "text": template.render(messages=messages, add_generation_prompt=gen)})
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--qwen25_template")
    args = parser.parse_args()
    from gguf import GGUFReader
    reader = GGUFReader(args.gguf)

    def dump(name, value):
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=True, indent=1)
            f.write("\n")

    fuzz = random_texts(300, seed=20261127)
    smol = smollm2_tokenizer(reader)
    dump("smollm2_tokens.json", {"texts": encode_all(smol, TEXTS), "random": encode_all(smol, fuzz)})
    tiny = tiny_tokenizers()
    dump("tiny_tokenizers_expected.json",
         {name: {"texts": encode_all(tok, TEXTS), "random": encode_all(tok, fuzz)}
          for name, tok in tiny.items()})
    nfc_inputs = TEXTS + fuzz + ["\u212b", "\u1e0a\u0323", "\u1e0c\u0307", "q\u0307\u0323",
                                 "\u0344", "\uac00\u11a8", "\u1100\u1161\u11a8", "\u0958",
                                 "\u2126", "a\u0328\u0301", "\u00c5\u0301"]
    dump("nfc_expected.json", [{"text": t, "nfc": unicodedata.normalize("NFC", t)} for t in nfc_inputs])
    dump("smollm2_dequant.json", dequant_reference(reader))
    smol_template = reader.fields["tokenizer.chat_template"].contents()
    qwen_template = None
    if args.qwen25_template:
        with open(args.qwen25_template, encoding="utf-8") as f:
            qwen_template = f.read()
    dump("chat_template_expected.json", chat_references(smol_template, qwen_template))


if __name__ == "__main__":
    main()
