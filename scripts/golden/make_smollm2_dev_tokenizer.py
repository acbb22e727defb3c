#!/usr/bin/env python3
"""Rebuild SmolLM2-135M-Instruct's HF tokenizer.json + tokenizer_config.json from the GGUF.

Development stand-in for the GGUF->HF converter's output (models/smollm2-135m-instruct/):
the GGUF carries the vocabulary, merges, token types and chat template; the pipeline around
them is SmolLM2's published one (GGUF `tokenizer.ggml.pre == "smollm"`):
  normalizer null; pre_tokenizer Sequence[Digits(individual_digits), ByteLevel(no prefix
  space, GPT-2 regex)]; post_processor ByteLevel; decoder ByteLevel; control-type tokens are
  special added tokens (normalized=false).

Usage: /opt/kvref/bin/python scripts/golden/make_smollm2_dev_tokenizer.py GGUF OUT_DIR
"""
import json
import sys
from pathlib import Path

from gguf import GGUFReader


def field(reader, key):
    return reader.fields[key].contents()


def main():
    gguf_path, out_dir = sys.argv[1], Path(sys.argv[2])
    r = GGUFReader(gguf_path)
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    assert field(r, "tokenizer.ggml.pre") == "smollm"
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = field(r, "tokenizer.ggml.merges")
    CONTROL = 3
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, (t, ty) in enumerate(zip(tokens, types)) if ty == CONTROL
    ]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": True},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ") for m in merges]},
    }
    bos = tokens[field(r, "tokenizer.ggml.bos_token_id")]
    eos = tokens[field(r, "tokenizer.ggml.eos_token_id")]
    unk = tokens[field(r, "tokenizer.ggml.unknown_token_id")]
    pad = tokens[field(r, "tokenizer.ggml.padding_token_id")]
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"}
                                 for a in added},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": bos, "eos_token": eos, "unk_token": unk, "pad_token": pad,
        "chat_template": field(r, "tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False,
        "model_max_length": 8192,
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": len(tokens),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, indent=2))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2))
    # Round-trip through `tokenizers` so a malformed file fails here, not in the C++ tests.
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    print("ok", t.get_vocab_size(), t.encode("Hello, world! 1234").ids)


if __name__ == "__main__":
    main()
