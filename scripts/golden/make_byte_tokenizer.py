"""Writes tests/data/tiny/byte_tokenizer.json: a byte-level BPE tokenizer with exactly the 256
byte tokens and no merges, so every id fits the tiny test models' 256-token vocabulary. The CLI
tests pair it with the tiny models. Checked by loading it with HF `tokenizers`.

Run: /opt/kvref/bin/python scripts/golden/make_byte_tokenizer.py
"""
import json
import pathlib

from tokenizers import Tokenizer

from gpt2_bytes import bytes_to_unicode


vocab = {ch: b for b, ch in sorted(bytes_to_unicode().items())}
spec = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": None,
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": []},
}
out = pathlib.Path(__file__).resolve().parents[2] / "tests/data/tiny/byte_tokenizer.json"
out.write_text(json.dumps(spec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
tok = Tokenizer.from_file(str(out))
ids = tok.encode("héllo 123").ids
assert ids == list("héllo 123".encode()), ids
assert tok.decode(ids) == "héllo 123"
print("wrote", out, "vocab", tok.get_vocab_size())
