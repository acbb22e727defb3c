#!/usr/bin/env python3
"""Golden files for kvcanary's C++ tokenizer and chat templates (tests/io/test_tokenizer.cpp,
tests/io/test_chat_template.cpp).

Everything here is produced by the reference implementations: HF `tokenizers` (ids, decode)
and `transformers.apply_chat_template` (chat rendering). The C++ library must reproduce them
exactly. How it ran (documented for reproduction):

    /opt/kvref/bin/python scripts/golden/make_tokenizer_goldens.py \
        --smollm2 models/smollm2-135m-instruct/tokenizer.json

with tokenizers 0.23.3, transformers 5.24.0, jinja2 3.1.6. If the converted model directory is
not there yet, `scripts/golden/make_smollm2_dev_tokenizer.py GGUF DIR` rebuilds an equivalent
tokenizer.json from the SmolLM2-135M-Instruct GGUF; pass that one to --smollm2.

Outputs (all under tests/data/):
  tokenizer/smollm2_goldens.jsonl        {"text", "ids", "decoded", "decoded_skip_special"}
  tokenizer/smollm2_decode_goldens.jsonl {"ids", "decoded", "decoded_skip_special"}
  tokenizer/<fixture>.tokenizer.json     small synthetic tokenizers trained here (< 100 KB)
  tokenizer/<fixture>.goldens.jsonl      {"text", "ids", "ids_with_special", "decoded"}
  ("decoded", "decoded_skip_special", "ids_with_special" are omitted where equal to "text"/"ids")
  chat/<family>.tokenizer_config.json    tokenizer_config.json carrying the chat template
  chat/<family>.goldens.json             {"family", "cases": [{"messages", "add_generation_prompt", "rendered"}]}
"""
import argparse
import gzip
import json
import random
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

from gpt2_bytes import bytes_to_unicode

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
OUT_TOK = ROOT / "tests" / "data" / "tokenizer"
OUT_CHAT = ROOT / "tests" / "data" / "chat"

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def test_strings():
    s = [
        "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "\t\t\tx", "a", "A", "Hello",
        "Hello, world!", "Hello world", " Hello world", "Hello world ", "  Hello   world  ",
        "hello\tworld", "hello\r\nworld\r\n", "line one\nline two\n\nline four",
        "The quick brown fox jumps over the lazy dog.",
        "I'm sure they'll say it's what we've done; he'd ask: isn't it?",
        "IT'S ALL CAPS, DON'T YOU THINK? WE'LL SEE.", "'s 't 're 've 'm 'll 'd",
        "1234567", "3.14159", "0", "007", "1,000,000", "-42", "+1e-9", "2024-11-29T18:05:00Z",
        "v1.2.3", "call 555-0100 now", "x1y2z3", "１２３ full-width digits", "٣٤٥ Arabic-Indic digits",
        "Ⅻ roman numeral", "½ ¾ ² ³", "$19.99 / €5,00 / ¥100 / £3",
        "def f(x):\n    return x * 2\n",
        "class A:\n    def __init__(self):\n        self.x = 1\n\n    def go(self, n=3):\n        for i in range(n):\n            yield i ** 2\n",
        "if (a && b) { return c; } else { return d; }",
        "#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\treturn v.size();\n}\n",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
        "<div class=\"x\">Hi &amp; bye</div>", "https://example.com/path?q=1&r=two#frag",
        "user@example.org", "C:\\Program Files\\x.exe", "~/.config/app/settings.toml",
        '{"name": "kvcanary", "version": [0, 1, 0], "ok": true, "n": null}',
        '{"a":{"b":[1,2,{"c":"d"}]}}', '[{"role": "user", "content": "hi"}]',
        "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "I ❤️ NY", "emoji at end 🚀",
        "日本語のテキスト", "中文测试，包含标点。", "한국어 문장입니다", "汉字123漢字",
        "café", "cafe\u0301", "e\u0301\u0301", "naïve résumé", "Zoë Brontë", "ñ vs n\u0303",
        "\u1100\u1161\u11a8", "A\u030a vs \u00c5 vs \u212b", "\u0958 \u2126 \u00e9",
        "مرحبا بالعالم", "السلام عليكم ورحمة الله", "नमस्ते दुनिया", "हिन्दी में लिखा गया वाक्य",
        "Ελληνικά κείμενα", "Русский текст, ёж.", "עברית", "ไทย ภาษา", "Tiếng Việt có dấu",
        "<|im_start|>user\nhi<|im_end|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
        "text<|endoftext|>more", "<|endoftext|><|endoftext|>", "<|im_start|><|im_end|>",
        "<|im_start|> spaced <|im_end|>", "<|im_start", "im_end|>", "<|im_start|x", "<<|im_end|>>",
        "<repo_name>kvcanary<file_sep>main.cpp", "<filename>a.py\n<gh_stars>10",
        "<jupyter_start><jupyter_code>print(1)<jupyter_output>1", "<|begin_of_text|>not special here",
        "<|eot_id|> <|start_header_id|>user<|end_header_id|>", "[MASK] <mask> <s> </s>",
        "a" * 300, "ab" * 150, "supercalifragilisticexpialidocious" * 4, "x" * 1000,
        " " * 20 + "indented", "\n" * 5 + "after newlines", "trailing   ", "   leading",
        "tab\tseparated\tvalues\t1\t2", "mixed \t \n \r\n whitespace", "word\u00a0nbsp", "zero\u200bwidth",
        "ideographic\u3000space", "em\u2003space", "line\u2028separator", "mongolian\u180evowel",
        "\u0000nul", "bell\u0007", "esc\u001b[0m", "del\u007f", "soft\u00adhyphen",
        "!!!", "???", "...", "---", "***bold***", "__init__", "a_b_c", "snake_case_name", "camelCaseName",
        "PascalCaseName", "kebab-case-name", "SCREAMING_SNAKE", "x.y.z", "a->b", "a=>b", "a::b", "a!=b",
        "a<=b>=c", "i++", "--flag=value", "-v", "@decorator", "#hashtag", "$var", "%d%%", "^caret", "&&||",
        "(parens)", "[brackets]", "{braces}", "\"quoted\"", "'single'", "`backtick`", "a/b\\c",
        "Mr. Smith's dog's bone", "rock 'n' roll", "don't", "DON'T", "o'clock", "the '90s",
        "“smart quotes” and ‘single’", "en–dash em—dash", "ellipsis…", "« guillemets »", "§ ¶ † ‡ • ·",
        "©2024 ®™", "→ ← ↑ ↓ ⇒", "∑ ∫ √ ∞ ≈ ≠ ≤ ≥", "α β γ δ ε", "ℕ ℤ ℚ ℝ ℂ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math",
        "x² + y² = z²", "H₂O", "½ + ⅓", "°C °F", "µs", "Ω", "Å", "ﬁ ligature", "Ｆｕｌｌｗｉｄｔｈ",
        "ｶﾀｶﾅ", "カタカナ ひらがな", "ガギグゲゴ", "か\u3099", "Ⓐⓑⓒ", "🄰🄱", "¿Qué? ¡Sí!",
        "Ça va? Ôtez-vous.", "Straße", "İstanbul ıi", "ǅ ǈ", "ᾼ ῌ", "ꙮ", "𓀀 hieroglyph", "🧑🏿‍💻",
    ]
    # Indented Python code from HumanEval prompts (tabs/spaces/docstrings/digits).
    with gzip.open(SHARED / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 20:
                break
            rec = json.loads(line)
            s.append(rec["prompt"])
            s.append(rec["canonical_solution"].replace("    ", "\t"))
    # Prose with CRLF line ends from WikiText-2 (read without newline translation).
    with open(SHARED / "wikitext-2-raw-test.txt", encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    rng = random.Random(1234)
    picked = [l for l in lines if len(l.strip()) > 40]
    for l in rng.sample(picked, 25):
        s.append(l + "\n")
    # Digit runs and numbers of every length.
    for n in range(1, 13):
        s.append("".join(str((7 * k + n) % 10) for k in range(n)))
    s += [f"{n} apples" for n in (1, 12, 123, 1234, 12345)]
    # Random mixtures of the hard characters, fixed seed.
    pool = list("ab Z9 \t\n\r'’_-.,;:!?()[]{}<>\"\\/") + ["é", "ß", "中", "😀", "‍", "\u0301", "  ", "\r\n",
                                                         "<|im_end|>", "’s", "'s", "12", "١٢"]
    for _ in range(30):
        s.append("".join(rng.choice(pool) for _ in range(rng.randint(5, 40))))
    seen, out = set(), []
    for x in s:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def dump_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def smollm2_goldens(tok_path, strings):
    tok = Tokenizer.from_file(str(tok_path))
    rows = []
    for s in strings:
        ids = tok.encode(s, add_special_tokens=False).ids
        row = {"text": s, "ids": ids}
        # Omitted when equal to "text", to keep the file small.
        decoded = tok.decode(ids, skip_special_tokens=False)
        if decoded != s:
            row["decoded"] = decoded
        skipped = tok.decode(ids, skip_special_tokens=True)
        if skipped != s:
            row["decoded_skip_special"] = skipped
        rows.append(row)
    dump_jsonl(OUT_TOK / "smollm2_goldens.jsonl", rows)
    # Decode goldens: single tokens (incl. partial UTF-8 bytes), special tokens, unknown ids,
    # random id sequences.
    rng = random.Random(99)
    vocab = tok.get_vocab_size()
    drows = []
    for ids in ([0], [1], [2], [1, 9226, 2], [3000], [10813], [10813, 242], [242, 218, 294], [99999999],
                [28, 99999999, 28], [], [216], [216, 216], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]):
        drows.append({"ids": ids})
    for _ in range(60):
        drows.append({"ids": [rng.randrange(vocab) for _ in range(rng.randint(1, 12))]})
    for i in range(256):  # every byte token alone (bytes that never occur in UTF-8 may be absent)
        byte_id = tok.token_to_id(bytes_to_unicode()[i])
        if byte_id is not None:
            drows.append({"ids": [byte_id]})
    for r in drows:
        r["decoded"] = tok.decode(r["ids"], skip_special_tokens=False)
        r["decoded_skip_special"] = tok.decode(r["ids"], skip_special_tokens=True)
    dump_jsonl(OUT_TOK / "smollm2_decode_goldens.jsonl", drows)
    # Whole WikiText-2 test file (raw bytes, CRLF kept): id count + FNV-1a of "id id ... ".
    with open(SHARED / "wikitext-2-raw-test.txt", encoding="utf-8", newline="") as f:
        wiki = f.read()
    wiki_ids = tok.encode(wiki, add_special_tokens=False).ids
    h = 1469598103934665603
    for c in "".join(f"{i} " for i in wiki_ids).encode():
        h = ((h ^ c) * 1099511628211) % (1 << 64)
    (OUT_TOK / "smollm2_wikitext2.json").write_text(json.dumps(
        {"bytes": len(wiki.encode("utf-8")), "n_ids": len(wiki_ids), "fnv1a64": str(h)}) + "\n")
    return len(rows), len(drows)


def training_corpus():
    with open(SHARED / "wikitext-2-raw-test.txt", encoding="utf-8", newline="") as f:
        text = f.read()[:200_000]
    extra = []
    with gzip.open(SHARED / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 40:
                break
            rec = json.loads(line)
            extra.append(rec["prompt"] + rec["canonical_solution"])
    extra.append("日本語のテキスト 中文测试 한국어 مرحبا नमस्ते café naïve 😀👍 1234567 3.14159 " * 20)
    return [text[i:i + 2000] for i in range(0, len(text), 2000)] + extra


def train(pre_tokenizer, normalizer, vocab_size, specials):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    return tok


def save_fixture(name, tok, strings, legacy_merges=False, edit=None):
    path = OUT_TOK / f"{name}.tokenizer.json"
    tok.save(str(path))
    d = json.loads(path.read_text(encoding="utf-8"))
    if legacy_merges:
        d["model"]["merges"] = [" ".join(m) for m in d["model"]["merges"]]
    if edit:
        edit(d)
    path.write_text(json.dumps(d, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tok = Tokenizer.from_file(str(path))  # reload: goldens come from exactly the committed file
    rows = []
    for s in strings:
        enc = tok.encode(s, add_special_tokens=False).ids
        row = {"text": s, "ids": enc}
        with_special = tok.encode(s, add_special_tokens=True).ids
        if with_special != enc:
            row["ids_with_special"] = with_special
        decoded = tok.decode(enc, skip_special_tokens=False)
        if decoded != s:
            row["decoded"] = decoded
        rows.append(row)
    dump_jsonl(OUT_TOK / f"{name}.goldens.jsonl", rows)
    size = path.stat().st_size
    assert size < 100_000, (name, size)
    return name, size, len(rows)


def fixtures(strings):
    made = []
    # Qwen2-style: NFC, Split(regex, Isolated), ByteLevel without its own regex, legacy "a b" merges.
    qwen_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = train(qwen_pre, normalizers.NFC(), 2000, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    made.append(save_fixture("qwen2_style", tok, strings, legacy_merges=True))

    # Llama-3-style: \p{N}{1,3} split, ignore_merges, BOS template, pair-form merges.
    llama_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = train(llama_pre, None, 2000, specials)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])

    def ignore_merges(d):
        d["model"]["ignore_merges"] = True
    made.append(save_fixture("llama3_style", tok, strings, edit=ignore_merges))

    # GPT-2-style ByteLevel(add_prefix_space) + added tokens with every matching flag.
    tok = train(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), None, 1500, ["<s>", "</s>"])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, single_word=False, normalized=False),
                            AddedToken("[R]", lstrip=False, rstrip=True, normalized=False),
                            AddedToken("[BOTH]", lstrip=True, rstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("ony", single_word=True, normalized=True),
                    AddedToken("hello world", normalized=True),
                    AddedToken("<|im_end|>", normalized=False),
                    AddedToken("<|im", normalized=False),
                    AddedToken("café", normalized=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                      ("<s>", tok.token_to_id("<s>")))
    extra = ["<mask> My name <mask> A<mask> <mask>ony <mask>", "Hi <mask> there\t<mask>\t<mask>\u2000",
             "x [R]   y [R]\n\nz", "a  [BOTH]  b[BOTH][BOTH] c", "ony phony ony, (ony) _ony ony_ 1ony",
             "say hello world twice: hello worldhello world", "<|im_end|> <|im <|im_start|>", "café cafe\u0301"]
    made.append(save_fixture("gpt2_added", tok, strings + extra))

    # Split behaviours and Digits(individual=false) on one small vocabulary.
    base = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), None, 1500, [])

    def pipeline(pre):
        def edit(d):
            d["pre_tokenizer"] = pre
        return edit

    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    variants = {
        "split_removed": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"\s+"}, "behavior": "Removed", "invert": False}, bl]},
        "split_merged_prev": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False}, bl]},
        "split_merged_next": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"[^\p{L}\p{N}]"}, "behavior": "MergedWithNext", "invert": False}, bl]},
        "split_contiguous_invert": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"\p{L}"}, "behavior": "Contiguous", "invert": True}, bl]},
        "digits_grouped": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": False},
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]},
    }
    for name, pre in variants.items():
        made.append(save_fixture(name, base, strings, edit=pipeline(pre)))
    return made


# ---- chat templates ---------------------------------------------------------------------

# Reconstructed from the published Qwen2.5-Instruct tokenizer_config.json (not available offline).
QWEN25_TEMPLATE = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n")

# Reconstructed from the published Meta-Llama-3-8B-Instruct tokenizer_config.json.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")

# The ChatML template without a default system prompt (as shipped by many fine-tunes).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def conversations(family):
    conv = [
        [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "What is 2+2?"}],
        [{"role": "user", "content": "Hello!"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
         {"role": "user", "content": "Tell me a joke."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "One"},
         {"role": "assistant", "content": "1"}, {"role": "user", "content": "Two"},
         {"role": "assistant", "content": "2"}, {"role": "user", "content": "Three"}],
        [{"role": "user", "content": "  padded content with spaces \n\n"},
         {"role": "assistant", "content": "\nanswer\t"}],
        [{"role": "user", "content": "Unicode: café 😀 日本語\r\nCRLF line"}],
        [{"role": "user", "content": ""}],
        [{"role": "user", "content": "first"}, {"role": "system", "content": "late system message"},
         {"role": "user", "content": "second"}],
    ]
    if family == "qwen2.5":
        conv.append([{"role": "user", "content": "Weather in Paris?"},
                     {"role": "assistant", "content": "Let me check."},
                     {"role": "tool", "content": "{\"temp\": 21}"}, {"role": "tool", "content": "{\"sky\": \"clear\"}"},
                     {"role": "user", "content": "Thanks"}])
    return conv


def chat_goldens(smollm2_config):
    from transformers import PreTrainedTokenizerFast
    OUT_CHAT.mkdir(parents=True, exist_ok=True)
    smol_cfg = json.loads(Path(smollm2_config).read_text(encoding="utf-8"))
    families = {
        "smollm2": (smol_cfg["chat_template"], "<|im_start|>", "<|im_end|>", OUT_TOK / "qwen2_style.tokenizer.json"),
        "qwen2.5": (QWEN25_TEMPLATE, None, "<|im_end|>", OUT_TOK / "qwen2_style.tokenizer.json"),
        "chatml": (CHATML_TEMPLATE, None, "<|im_end|>", OUT_TOK / "qwen2_style.tokenizer.json"),
        "llama3": (LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>", OUT_TOK / "llama3_style.tokenizer.json"),
    }
    counts = {}
    for family, (template, bos, eos, tok_file) in families.items():
        cfg = {"bos_token": bos, "eos_token": eos, "chat_template": template,
               "tokenizer_class": "PreTrainedTokenizerFast"}
        if family == "qwen2.5":
            cfg["reconstructed"] = "template written from the published Qwen2.5-Instruct config; not fetched"
        if family == "llama3":
            cfg["reconstructed"] = "template written from the published Meta-Llama-3-Instruct config; not fetched"
        (OUT_CHAT / f"{family}.tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2),
                                                                   encoding="utf-8")
        hf = PreTrainedTokenizerFast(tokenizer_file=str(tok_file), bos_token=bos, eos_token=eos)
        hf.chat_template = template
        cases = []
        for msgs in conversations(family):
            for agp in (True, False):
                cases.append({"messages": msgs, "add_generation_prompt": agp,
                              "rendered": hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp)})
        (OUT_CHAT / f"{family}.goldens.json").write_text(
            json.dumps({"family": family, "cases": cases}, ensure_ascii=False, indent=1), encoding="utf-8")
        counts[family] = len(cases)
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", default=str(ROOT / "models" / "smollm2-135m-instruct" / "tokenizer.json"))
    args = ap.parse_args()
    OUT_TOK.mkdir(parents=True, exist_ok=True)
    strings = test_strings()
    print("strings:", len(strings))
    print("smollm2 goldens (encode, decode):", smollm2_goldens(args.smollm2, strings))
    for name, size, n in fixtures(strings):
        print(f"fixture {name}: {size} bytes, {n} goldens")
    print("chat goldens:", chat_goldens(Path(args.smollm2).with_name("tokenizer_config.json")))


if __name__ == "__main__":
    main()
