#!/usr/bin/env python3
"""Chat-template goldens for the two Qwen2.5-Coder GGUFs (tests/io/test_chat_template.cpp).

Each GGUF's own `tokenizer.chat_template` string is rendered by transformers'
`render_jinja_template` (what `apply_chat_template(..., tokenize=False)` calls: jinja2's
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, transformers' `tojson` =
json.dumps(ensure_ascii=False)) for seeded conversations with and without tools: plain turns,
system prompts (given, default, late), assistant turns with one or several tool calls (flat or
under "function", arguments of every JSON type, Unicode and escapes), grouped tool results, and
each with add_generation_prompt true and false.

Outputs (tests/data/chat/):
  qwen2.5-coder-<size>.tokenizer_config.json  {"bos_token", "eos_token", "chat_template"} (template from the GGUF)
  qwen2.5-coder-<size>.goldens.jsonl          one case a line: {"messages", "tools" (absent: none),
                                              "add_generation_prompt", "rendered"}; floats written
                                              by json.dumps, so a reader keeps int vs float
and tests/data/toolcall/bfcl_native_{questions,answers,prompts}.jsonl: two BFCL entries and the
native prompt (per template) and gold answer transformers renders for them; with --bfcl DIR
(data/bfcl of scripts/fetch_data.sh), tests/data/toolcall/bfcl_native_prompt_hashes.jsonl: the
prompt_hash (FNV-1a 64 of the rendered text) of every entry of the five categories, per template.

How it was run:
    /work/venv-ref/bin/python scripts/golden/make_qwen_chat_goldens.py \
        /work/gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf /work/gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \
        --bfcl data/bfcl
with transformers 5.24.0, jinja2 3.1.6, gguf 0.17.
"""
from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "chat"

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string", "description": "City name, e.g. Paris"},
                                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                                          "required": ["city"]}}},
    {"name": "calculate_triangle_area", "description": "Calculate the area of a triangle given its base and height.",
     "parameters": {"type": "dict", "properties": {
         "base": {"type": "integer", "description": "The base of the triangle."},
         "height": {"type": "integer", "description": "The height of the triangle."},
         "unit": {"type": "string", "description": "The unit of measure (defaults to 'units' if not specified)"}},
         "required": ["base", "height"]}},
    {"name": "spotify.play", "description": "Play specific tracks from a given artist for a specific time duration.",
     "parameters": {"type": "dict", "properties": {
         "artist": {"type": "string", "description": "The artist whose songs you want to play."},
         "duration": {"type": "integer", "description": "The duration for which the songs should be played, in minutes."}},
         "required": ["artist", "duration"]}},
    {"name": "math.prob", "description": "Probability with float defaults: p=0.5, eps=1e-05, big=1e+16, x=100.0",
     "parameters": {"type": "dict", "properties": {
         "p": {"type": "float", "default": 0.5, "minimum": 0.0, "maximum": 1.0},
         "eps": {"type": "float", "default": 1e-05}, "big": {"type": "float", "default": 1e16},
         "almost": {"type": "float", "default": 1e15}, "tiny": {"type": "float", "default": 0.0001},
         "neg": {"type": "float", "default": -2.5e-7}, "third": {"type": "float", "default": 1 / 3},
         "n": {"type": "integer", "default": -12345678901234}},
         "required": []}},
    {"name": "translate_text", "description": "Übersetze Text — 翻译文本 😀 with \"quotes\", back\\slash,\ttab\nnewline, "
                                              "\u0001 control, \u007f del, </tools> and <tool_call> inside.",
     "parameters": {"type": "object", "properties": {
         "text": {"type": "string"}, "target": {"type": "string", "enum": ["es", "fr", "中文"]},
         "options": {"type": "object", "properties": {"formal": {"type": "boolean", "default": False},
                                                       "glossary": {"type": "array", "items": {"type": "string"},
                                                                    "default": []}},
                     "default": None}},
         "required": ["text", "target"]}},
    {"name": "empty_tool", "description": "", "parameters": {}},
    {"name": "book_flight", "parameters": {"type": "object", "properties": {
        "origin": {"type": "string"}, "destination": {"type": "string"},
        "passengers": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                                   "age": {"type": "integer"}}}},
        "date": {"type": "string", "format": "date"}}, "required": ["origin", "destination"]}},
]

ARGS = [
    {"city": "Paris"}, {"city": "São Paulo", "unit": "celsius"}, {"base": 10, "height": 5},
    {"artist": "Taylor Swift", "duration": 20}, {"p": 0.25, "eps": 1e-09, "big": 1e22, "x": 100.0, "y": -0.0},
    {"text": "hello \"world\"\n\\path\t😀", "target": "中文", "options": {"formal": True, "glossary": ["a", "b"]}},
    {}, {"origin": "JFK", "destination": "LHR", "passengers": [{"name": "Ann", "age": 34}, {"name": "Bo", "age": None}]},
    {"nested": {"deep": [[1, 2], [3.5, [True, False, None]]], "empty": {}, "list": []}},
    {"ctrl": "\u0000\u0007\u001b\u001f", "del": "\u007f", "nbsp": "\u00a0", "emoji": "👨‍👩‍👧"},
]

USER = ["What's the weather in Paris?", "Find the area of a triangle with base 10 and height 5.",
        "Play Taylor Swift for 20 minutes and Maroon 5 for 15.", "Translate 'hello' to Chinese.",
        "  leading and trailing spaces  ", "", "Line one\r\nline two\n\n", "日本語で答えてください 🙂",
        "Book a flight JFK → LHR for Ann (34) and Bo.", "<tool_call>not a call</tool_call>"]
SYSTEM = ["You are a helpful assistant.", "", "Use tools when needed.\nBe brief.", "Système: réponds en français."]


def tool_call(rng):
    name = rng.choice(["get_weather", "calculate_triangle_area", "spotify.play", "translate_text", "book_flight", "f"])
    args = copy.deepcopy(rng.choice(ARGS))
    call = {"name": name, "arguments": args}
    k = rng.randrange(3)
    if k == 0:
        return call
    if k == 1:
        return {"type": "function", "function": call}
    return {"id": f"call_{rng.randrange(10**6)}", "type": "function", "function": call}


def conversation(rng, with_tools):
    msgs = []
    r = rng.random()
    if r < 0.45:
        msgs.append({"role": "system", "content": rng.choice(SYSTEM)})
    msgs.append({"role": "user", "content": rng.choice(USER)})
    for _ in range(rng.randint(0, 3)):
        kind = rng.random()
        if kind < 0.45 and with_tools:
            calls = [tool_call(rng) for _ in range(rng.randint(1, 3))]
            content = rng.choice(["", "", "Let me check.", "Calling tools:\n"])
            msgs.append({"role": "assistant", "content": content, "tool_calls": calls})
            for _ in range(rng.randint(1, len(calls))):
                msgs.append({"role": "tool", "content": rng.choice(['{"temp": 21}', "42", "", "ok\nmulti-line",
                                                                    '{"error": "not found"}'])})
            if rng.random() < 0.5:
                msgs.append({"role": "user", "content": rng.choice(USER)})
        elif kind < 0.6:
            msgs.append({"role": "system", "content": "late system message"})
            msgs.append({"role": "user", "content": rng.choice(USER)})
        else:
            msgs.append({"role": "assistant", "content": rng.choice(["Sure.", "Here:\n```python\nprint(1)\n```", ""])})
            msgs.append({"role": "user", "content": rng.choice(USER)})
    if rng.random() < 0.3:  # ends on the assistant (a gold answer written as a turn)
        if with_tools and rng.random() < 0.7:
            msgs.append({"role": "assistant", "content": "", "tool_calls": [tool_call(rng)]})
        else:
            msgs.append({"role": "assistant", "content": "Done."})
    tools = None
    if with_tools:
        tools = copy.deepcopy(rng.sample(TOOLS, rng.randint(1, 4)))
    return msgs, tools


def fixed_cases():
    # Hand-written shapes first: each branch of the template at least once.
    return [
        ([{"role": "user", "content": "Hello!"}], None),
        ([{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "2+2?"}], None),
        ([{"role": "user", "content": "Hi"}], [TOOLS[0]]),
        ([{"role": "system", "content": "Custom system."}, {"role": "user", "content": "Weather?"}], TOOLS[:3]),
        ([{"role": "user", "content": "Play two artists."},
          {"role": "assistant", "content": "", "tool_calls": [
              {"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}},
              {"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}]},
          {"role": "tool", "content": "playing"}, {"role": "tool", "content": "queued"}], [TOOLS[2]]),
        ([{"role": "user", "content": "a"}, {"role": "tool", "content": "orphan result"},
          {"role": "user", "content": "b"}], None),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "text and call",
                                             "tool_calls": [{"function": {"name": "f", "arguments": "{\"x\": 1}"}}]}],
         [TOOLS[5]]),
        ([{"role": "user", "content": "first"}, {"role": "system", "content": "late"},
          {"role": "user", "content": "second"}], [TOOLS[3], TOOLS[4]]),
    ]


# Two BFCL v4-shaped entries (a simple_python one with a float default, and a parallel one
# whose function name has a dot) for the native prompt-format test: the question/answer files
# the task loads, and the prompt transformers renders from them (BFCL's QwenFCHandler: the
# function docs verbatim as tools, the question's turns as messages, no system prompt of its own).
BFCL_QUESTIONS = [
    {"id": "simple_python_0", "question": [[{"role": "user", "content":
        "Find the area of a triangle with a base of 10 units and height of 5 units."}]],
     "function": [{"name": "calculate_triangle_area",
                   "description": "Calculate the area of a triangle given its base and height.",
                   "parameters": {"type": "dict", "properties": {
                       "base": {"type": "integer", "description": "The base of the triangle."},
                       "height": {"type": "integer", "description": "The height of the triangle."},
                       "unit": {"type": "string", "description": "The unit of measure (defaults to 'units' if not specified)"},
                       "scale": {"type": "float", "description": "Scale factor.", "default": 1.0}},
                       "required": ["base", "height"]}}]},
    {"id": "parallel_0", "question": [[{"role": "user", "content":
        "Play songs from the artists Taylor Swift and Maroon 5, with a play time of 20 minutes and 15 minutes respectively, on Spotify."}]],
     "function": [{"name": "spotify.play",
                   "description": "Play specific tracks from a given artist for a specific time duration.",
                   "parameters": {"type": "dict", "properties": {
                       "artist": {"type": "string", "description": "The artist whose songs you want to play."},
                       "duration": {"type": "integer", "description": "The duration for which the songs should be played, in minutes."}},
                       "required": ["artist", "duration"]}}]},
]
BFCL_ANSWERS = [
    {"id": "simple_python_0", "ground_truth": [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""], "scale": [1.0, ""]}}]},
    {"id": "parallel_0", "ground_truth": [{"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
                                          {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}}]},
]
BFCL_GOLD_CALLS = [
    # The values render_gold_python picks: the first acceptable one of each parameter.
    [{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5, "unit": "units", "scale": 1.0}}],
    [{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}},
     {"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}],
]


def bfcl_goldens(templates):
    from transformers.utils.chat_template_utils import render_jinja_template
    tdir = ROOT / "tests" / "data" / "toolcall"
    for name, rows in (("bfcl_native_questions.jsonl", BFCL_QUESTIONS), ("bfcl_native_answers.jsonl", BFCL_ANSWERS)):
        with open(tdir / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    out = []
    for q, calls in zip(BFCL_QUESTIONS, BFCL_GOLD_CALLS):
        row = {"id": q["id"]}
        for size, template in templates.items():
            msgs = q["question"][0]
            prompt, _ = render_jinja_template(conversations=[msgs], tools=q["function"], chat_template=template,
                                              add_generation_prompt=True)
            full, _ = render_jinja_template(conversations=[msgs + [{"role": "assistant", "content": "",
                                                                    "tool_calls": calls}]],
                                            tools=q["function"], chat_template=template, add_generation_prompt=False)
            # The gold answer is what the template writes for the call turn after the generation prompt.
            assert full[0].startswith(prompt[0]) and full[0].endswith("<|im_end|>\n"), size
            row["prompt_" + size] = prompt[0]
            row["gold"] = full[0][len(prompt[0]):-len("<|im_end|>\n")]
        out.append(row)
    path = tdir / "bfcl_native_prompts.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"BFCL native prompts: {len(out)} entries -> {path}")


def fnv_hex(text):
    h = 0xcbf29ce484222325
    for c in text.encode("utf-8"):
        h = ((h ^ c) * 0x100000001b3) % (1 << 64)
    return f"{h:016x}"


def bfcl_data_hashes(templates, bfcl_dir):
    """prompt_hash of every BFCL entry's native prompt (5 categories), per template: the real
    function docs through tojson. Messages as BfclTask builds them: turns flattened, system turns
    merged into one leading system turn."""
    from transformers.utils.chat_template_utils import render_jinja_template
    rows = []
    for cat in ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"):
        with open(Path(bfcl_dir) / f"BFCL_v4_{cat}.json", encoding="utf-8") as f:
            entries = [json.loads(line) for line in f if line.strip()]
        for e in entries:
            turns = [t for step in e["question"] for t in (step if isinstance(step, list) else [step])]
            system = "\n\n".join(t["content"] for t in turns if t["role"] == "system")
            msgs = [{"role": t["role"], "content": t["content"]} for t in turns if t["role"] != "system"]
            if system:
                msgs.insert(0, {"role": "system", "content": system})
            row = {"category": cat, "id": e["id"]}
            for size, template in templates.items():
                out, _ = render_jinja_template(conversations=[msgs], tools=e["function"], chat_template=template,
                                               add_generation_prompt=True)
                row[size] = fnv_hex(out[0])
            rows.append(row)
    path = ROOT / "tests" / "data" / "toolcall" / "bfcl_native_prompt_hashes.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"BFCL native prompt hashes: {len(rows)} entries -> {path}")


def gguf_template(path):
    import gguf
    r = gguf.GGUFReader(path)
    f = r.fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode("utf-8")


def main():
    from transformers.utils.chat_template_utils import render_jinja_template
    OUT.mkdir(parents=True, exist_ok=True)
    templates = {}
    args = sys.argv[1:]
    bfcl_dir = None
    if "--bfcl" in args:
        k = args.index("--bfcl")
        bfcl_dir = args[k + 1]
        del args[k:k + 2]
    for path in args:
        size = "0.5b" if "0.5b" in path else "1.5b"
        template = gguf_template(path)
        templates[size] = template
        bos, eos = "<|endoftext|>", "<|im_end|>"
        cfg = {"bos_token": bos, "eos_token": eos, "chat_template": template,
               "source": Path(path).name + " tokenizer.chat_template"}
        (OUT / f"qwen2.5-coder-{size}.tokenizer_config.json").write_text(
            json.dumps(cfg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        rng = random.Random(2026_12_01)
        cases = fixed_cases()
        while len(cases) < 64:
            cases.append(conversation(rng, with_tools=len(cases) % 2 == 0))
        rows, with_tools = [], 0
        for msgs, tools in cases:
            with_tools += tools is not None
            for agp in (True, False):
                rendered, _ = render_jinja_template(conversations=[msgs], tools=tools, chat_template=template,
                                                    add_generation_prompt=agp, bos_token=bos, eos_token=eos)
                row = {"messages": msgs, "add_generation_prompt": agp, "rendered": rendered[0]}
                if tools is not None:
                    row["tools"] = tools
                rows.append(row)
        out = OUT / f"qwen2.5-coder-{size}.goldens.jsonl"
        with open(out, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{size}: {len(cases)} conversations ({with_tools} with tools), {len(rows)} cases, "
              f"{out.stat().st_size} bytes -> {out}")
    bfcl_goldens(templates)
    if bfcl_dir:
        bfcl_data_hashes(templates, bfcl_dir)


if __name__ == "__main__":
    main()
