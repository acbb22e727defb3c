#!/usr/bin/env python3
"""Tokenizer goldens for the Qwen2.5-Coder vocabulary (tests/io/test_tokenizer_qwen2.cpp).

The reference is HF `tokenizers` on a tokenizer.json built here from the GGUF's own vocabulary
exactly as transformers' `Qwen2Tokenizer` declares the pipeline (models/qwen2/tokenization_qwen2.py):
NFC normalizer; pre-tokenizer Sequence[Split(Qwen2 regex, Isolated), ByteLevel(add_prefix_space
false, use_regex false)]; ByteLevel decoder and post-processor; BPE with the file's merges. The
added tokens are the GGUF's: token type 3 (control: <|endoftext|>, <|im_start|>, <|fim_*|>, ...)
as special tokens, type 4 (user-defined: <tool_call>, </tool_call>) as non-special ones, both
matched whole in raw text (normalized false). Type 5 ([PAD151665]...) are padding rows of the
embedding, not tokens. transformers' own GGUF path (`AutoTokenizer.from_pretrained(dir,
gguf_file=...)`) needs torch for its metadata reader, so it is not used; its
integrations/gguf/gguf_tokenizer_mapping.py builds the same vocabulary, merges and added tokens,
but leaves out the NFC normalizer that the HF Qwen2 tokenizer.json declares.

Strings (deterministic, written to the goldens): check_tokenizer_vs_llamacpp.py's hand-picked
cases, the Qwen chat / tool-call / FIM special tokens in context, chunks of this repository's own
sources (C++, Python, shell, Markdown) with LF and CRLF line ends, numbers, multilingual prose
(CJK, Hangul, Arabic, Devanagari, combining marks for NFC), emoji sequences and seeded random
code points from 24 Unicode blocks.

Output: tests/data/tokenizer/qwen2.5-coder.goldens.jsonl, one row per string:
  {"text", "n": id count, "h": FNV-1a 64 of "id id ... " (decimal ids, each followed by a space)}
  plus "ids" on the first EXPLICIT rows, and "decoded" where decode(ids) != text.
and --ref-dir DIR/tokenizer.json (the reference file itself; not committed, 7 MB).

How it was run:
    /work/venv-ref/bin/python scripts/golden/make_qwen2_tokenizer_goldens.py \
        --gguf /work/gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --ref-dir /work/qwen-ref/tok-0.5b
with gguf 0.17, tokenizers 0.23.3. Both Qwen2.5-Coder GGUFs (0.5B, 1.5B) carry the same vocabulary,
merges and token types (--check-same GGUF verifies that and writes nothing).
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_tokenizer_vs_llamacpp import HAND, POOL  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "tokenizer" / "qwen2.5-coder.goldens.jsonl"
EXPLICIT = 400

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def read_gguf_vocab(path):
    import gguf
    r = gguf.GGUFReader(path)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    ty = r.fields["tokenizer.ggml.token_type"]
    types = [int(ty.parts[i][0]) for i in ty.data]
    pre = bytes(r.fields["tokenizer.ggml.pre"].parts[-1]).decode()
    return strings("tokenizer.ggml.tokens"), types, strings("tokenizer.ggml.merges"), pre


def build_reference(tokens, types, merges):
    vocab = {t: i for i, t in enumerate(tokens) if types[i] in (1, 3, 4)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges], dropout=None,
                               unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                               fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    added = [AddedToken(t, special=types[i] == 3, normalized=False) for i, t in enumerate(tokens) if types[i] in (3, 4)]
    tok.add_special_tokens([a for a in added if a.special])
    tok.add_tokens([a for a in added if not a.special])
    for i, t in enumerate(tokens):
        if types[i] in (3, 4):
            assert tok.token_to_id(t) == i, (t, i, tok.token_to_id(t))
    return tok


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
                "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]


def special_strings(rng):
    out = [
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>",
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n"
        "{\"name\": \"g\", \"arguments\": {\"x\": [1, 2.5, null, true]}}\n</tool_call><|im_end|>\n",
        "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n",
        "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n    return c<|fim_middle|>",
        "<|repo_name|>kvcanary\n<|file_sep|>include/a.hpp\n#pragma once\n<|file_sep|>README.md\n# kvcanary",
        "<tool_call><tool_call></tool_call>", "<tool_call >", "< tool_call>", "<tool_call", "tool_call>",
        "</tool_call", "<|fim_prefix|", "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a "
        "helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.<|im_end|>",
        "[PAD151665]", "[PAD151935] <|endoftext|>", "<<|im_end|>>", "<|<|im_start|>|>", "<|IM_END|>",
    ]
    seps = ["", " ", "\n", "  ", "\t", "\r\n", "x", "é", "中"]
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(rng.choice(QWEN_SPECIAL) if rng.random() < 0.5 else rng.choice(POOL))
            parts.append(rng.choice(seps))
        out.append("".join(parts))
    return out


def repo_chunks(rng, n):
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "include", "scripts", "docs", "tools", "tests/io",
                            "tests/task", "examples"], capture_output=True, text=True, check=True).stdout.split()
    files = sorted(f for f in files if f.endswith((".hpp", ".cpp", ".py", ".sh", ".md", ".toml", ".cmake")))
    texts = [(ROOT / f).read_text(encoding="utf-8") for f in files]
    out = []
    while len(out) < n:
        t = rng.choice(texts)
        if not t:
            continue
        start = rng.randrange(len(t))
        start = t.rfind("\n", 0, start) + 1  # chunks start at a line start
        chunk = t[start:start + rng.randint(10, 400)]
        if rng.random() < 0.35:
            chunk = chunk.replace("\n", "\r\n")
        if rng.random() < 0.1:
            chunk = chunk.replace("    ", "\t")
        out.append(chunk)
    return out


def number_strings(rng, n):
    out = []
    for _ in range(n):
        k = rng.randrange(8)
        if k == 0:
            s = str(rng.randrange(10 ** rng.randint(1, 25)))
        elif k == 1:
            s = f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 9)}f}"
        elif k == 2:
            s = f"{rng.uniform(1e-12, 1e12):e}"
        elif k == 3:
            s = ",".join(str(rng.randrange(1000)).zfill(3) for _ in range(rng.randint(1, 5)))
        elif k == 4:
            s = " ".join(str(rng.randrange(100000)) for _ in range(rng.randint(2, 8)))
        elif k == 5:
            s = f"x{rng.randrange(100)} = {rng.randrange(10**6)} + 0x{rng.randrange(16**8):x}; // {rng.randrange(99)}%"
        elif k == 6:
            s = "".join(rng.choice("0123456789０１２٣٤५६①½²³.,:-+ ") for _ in range(rng.randint(1, 30)))
        else:
            s = f"{rng.randrange(2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00Z"
        out.append(s)
    return out


WORDS = {
    "zh": "的 一 是 在 不 了 有 和 人 这 中 大 为 上 个 国 我 以 要 他 时 来 用 们 生 到 作 地 于 出 函数 变量 返回 代码 测试 数据 模型 压缩 缓存".split(),
    "ja": "これ は テスト です 日本語 の 文章 を 書き ます 関数 変数 カタカナ ひらがな 漢字 東京 コード".split(),
    "ko": "안녕하세요 세계 한국어 문장 입니다 함수 변수 코드 테스트 데이터".split(),
    "ar": "مرحبا بالعالم هذا نص عربي مع بعض الكلمات الدالة المتغير".split(),
    "hi": "नमस्ते दुनिया यह एक परीक्षण वाक्य है फ़ंक्शन चर".split(),
    "ru": "Привет мир это тестовое предложение функция переменная ёжик".split(),
    "el": "Γειά σου Κόσμε ελληνικά κείμενα συνάρτηση".split(),
    "vi": "Tiếng Việt có dấu hàm biến mã nguồn".split(),
    "nfc": ["cafe\u0301", "e\u0301\u0301", "A\u030a", "\u212b", "\u2126", "n\u0303", "\u1100\u1161\u11a8", "\u0958",
            "o\u0308\u0304", "\u1e9b\u0323", "\u0344", "\u00c5", "\uac00\u11a8", "\u304b\u3099", "\u0915\u093c",
            "\u0f73", "\u2000", "\u2126hm", "Ö", "O\u0308", "\u01d5", "u\u0308\u0304"],
    "emoji": ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "❤️", "🧑🏿‍💻", "🚀", "✨", "🤖", "🔥", "🫠", "🐍", "☕", "⚡"],
}


def multilingual(rng, n):
    out = []
    keys = list(WORDS)
    for _ in range(n):
        k = rng.choice(keys)
        mix = rng.random() < 0.3
        parts = []
        for _ in range(rng.randint(1, 25)):
            pool = WORDS[rng.choice(keys)] if mix else WORDS[k]
            parts.append(rng.choice(pool))
            parts.append(rng.choice(["", " ", " ", "，", "。", ", ", ".", "\n", "、", "!", " 123 ", "  "]))
        out.append("".join(parts))
    return out


BLOCKS = [(0x20, 0x7E), (0x9, 0xD), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
          (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F),
          (0x2070, 0x218F), (0x2460, 0x24FF), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
          (0xF900, 0xFAFF), (0xFB00, 0xFDFF), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF),
          (0x1D400, 0x1D7FF), (0x10000, 0x1007F)]


def random_unicode(rng, n):
    return ["".join(chr(rng.randint(*rng.choice(BLOCKS))) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def make_strings():
    rng = random.Random(20261201)
    s = list(HAND) + special_strings(rng) + repo_chunks(rng, 1700) + number_strings(rng, 600)
    s += multilingual(rng, 900) + random_unicode(rng, 1200)
    for _ in range(300):  # mixtures of everything above
        s.append("".join(rng.choice(s) for _ in range(rng.randint(2, 4)))[:500])
    seen, out = set(), []
    for x in s:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def fnv(ids):
    h = 1469598103934665603
    for c in "".join(f"{i} " for i in ids).encode():
        h = ((h ^ c) * 1099511628211) % (1 << 64)
    return str(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--ref-dir", required=True, help="where to write the reference tokenizer.json")
    ap.add_argument("--check-same", help="a second GGUF that must carry the same tokenizer")
    args = ap.parse_args()
    tokens, types, merges, pre = read_gguf_vocab(args.gguf)
    assert pre == "qwen2", pre
    if args.check_same:
        other = read_gguf_vocab(args.check_same)
        same = other == (tokens, types, merges, pre)
        print("same tokenizer:", same)
        return 0 if same else 1
    tok = build_reference(tokens, types, merges)
    ref = Path(args.ref_dir)
    ref.mkdir(parents=True, exist_ok=True)
    tok.save(str(ref / "tokenizer.json"))
    tok = Tokenizer.from_file(str(ref / "tokenizer.json"))  # goldens come from exactly the saved file
    strings = make_strings()
    rows = []
    total = 0
    for k, s in enumerate(strings):
        ids = tok.encode(s, add_special_tokens=False).ids
        total += len(ids)
        row = {"text": s, "n": len(ids), "h": fnv(ids)}
        if k < EXPLICIT:
            row["ids"] = ids
        d = tok.decode(ids, skip_special_tokens=False)
        if d != s:
            row["decoded"] = d
        rows.append(row)
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} strings, {total} ids, {OUT.stat().st_size} bytes -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
