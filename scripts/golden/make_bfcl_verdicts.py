#!/usr/bin/env python3
"""BFCL's own verdicts on deliberately wrong (and some deliberately right) tool calls.

For every entry of the five BFCL v4 categories kvcanary uses, this renders the ground
truth as a Python-syntax model output, applies a few seeded perturbations (wrong
function, missing required argument, unknown argument, wrong value, wrong type, int for
float, case/punctuation variants, other acceptable value, swapped or missing parallel
calls), and asks bfcl-eval itself -- its prompting-mode decoder and ast_checker -- for the
verdict. The C++ checker must reproduce these verdicts (tests/task/test_tool_call.cpp).

  /opt/kvref/bin/pip install bfcl-eval
  /opt/kvref/bin/python scripts/golden/make_bfcl_verdicts.py \
      --data /work/shared/data/bfcl --out tests/data/toolcall/bfcl_verdicts.jsonl
"""
import argparse
import copy
import json
import random

from bfcl_eval.constants.enums import Language, ReturnFormat
from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
from bfcl_eval.model_handler.utils import default_decode_ast_prompting

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"]
# A prompting-mode model: names keep their dots, as in the question files.
MODEL = "DeepSeek-V3.2-Exp"
PER_ENTRY = 3  # perturbations kept per entry, chosen by a seeded draw


def render(calls):
    """calls: list of (name, [(param, value)]) -> BFCL's Python-call syntax."""
    parts = []
    for name, params in calls:
        parts.append(name + "(" + ", ".join(f"{k}={v!r}" for k, v in params) + ")")
    return "[" + ", ".join(parts) + "]"


def resolve(v):
    """A dict inside an acceptable value holds acceptable values per key (BFCL's dict_checker):
    take each key's first non-empty one, leaving out keys that may be omitted."""
    if isinstance(v, dict):
        out = {}
        for k, vals in v.items():
            if isinstance(vals, list) and vals:
                if vals[0] == "":
                    continue
                out[k] = resolve(vals[0])
            else:
                out[k] = vals
        return out
    if isinstance(v, list):
        return [resolve(x) for x in v]
    return v


def gold_calls(ground_truth, functions, pick=0):
    """The first acceptable value of each parameter (or the `pick`-th where it exists).
    A parameter whose first value is "" (may be omitted) is left out, unless the function
    doc requires it: then its first non-empty value, or "" itself when that is all."""
    calls = []
    for g in ground_truth:
        (name, params), = g.items()
        required = doc_for(functions, name)["parameters"].get("required", [])
        out = []
        for k, vals in params.items():
            if not vals:
                continue
            v = vals[pick] if pick < len(vals) else vals[0]
            if v == "":
                if k not in required:
                    continue
                v = next((x for x in vals if x != ""), "")
            out.append((k, resolve(v)))
        calls.append((name, out))
    return calls


def doc_for(functions, name):
    for f in functions:
        if f["name"] == name:
            return f
    return functions[0]


def wrong_value(v):
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 7
    if isinstance(v, float):
        return v + 0.5
    if isinstance(v, str):
        return v + " zq"
    if isinstance(v, list):
        return v[:-1] if v else ["zq"]
    if isinstance(v, dict):
        d = dict(v)
        d["zq_key"] = "zq"
        return d
    return "zq"


def wrong_type(v):
    if isinstance(v, bool):
        return "yes"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return 12345
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return json.dumps(v)
    return 1


def perturbations(category, entry, answer, rng):
    gt = answer["ground_truth"]
    base = gold_calls(gt, entry["function"])
    cases = []

    def add(kind, calls):
        cases.append((kind, render(calls)))

    # Every perturbation edits the first call unless it is about the list of calls.
    name0, params0 = base[0]
    doc0 = doc_for(entry["function"], name0)
    required = doc0["parameters"].get("required", [])
    props = doc0["parameters"]["properties"]

    c = copy.deepcopy(base); c[0] = (name0 + "_v2", params0); add("wrong_function", c)
    if "." in name0:
        c = copy.deepcopy(base); c[0] = (name0.replace(".", "_"), params0); add("underscored_name", c)
    present_required = [k for k, _ in params0 if k in required]
    if present_required:
        drop = rng.choice(present_required)
        c = copy.deepcopy(base); c[0] = (name0, [(k, v) for k, v in params0 if k != drop]); add("missing_required", c)
    c = copy.deepcopy(base); c[0] = (name0, params0 + [("zq_unknown", 1)]); add("extra_argument", c)
    optional_absent = [k for k in props if k not in dict(params0) and k not in required]
    if optional_absent:
        k = rng.choice(optional_absent)
        c = copy.deepcopy(base); c[0] = (name0, params0 + [(k, "zq")]); add("unlisted_optional", c)
    if params0:
        i = rng.randrange(len(params0))
        k, v = params0[i]
        p = list(params0); p[i] = (k, wrong_value(v))
        c = copy.deepcopy(base); c[0] = (name0, p); add("wrong_value", c)
        p = list(params0); p[i] = (k, wrong_type(v))
        c = copy.deepcopy(base); c[0] = (name0, p); add("wrong_type", c)
        strs = [j for j, (_, v) in enumerate(params0) if isinstance(v, str) and v]
        if strs:
            j = rng.choice(strs)
            k, v = params0[j]
            p = list(params0); p[j] = (k, "  " + v.upper().replace(" ", "_") + ".")
            c = copy.deepcopy(base); c[0] = (name0, p); add("string_variant", c)
        floats = [j for j, (k, v) in enumerate(params0)
                  if isinstance(v, float) and v == int(v) and props.get(k, {}).get("type") == "float"]
        if floats:
            j = floats[0]
            p = list(params0); p[j] = (params0[j][0], int(params0[j][1]))
            c = copy.deepcopy(base); c[0] = (name0, p); add("int_for_float", c)
        ints = [j for j, (k, v) in enumerate(params0) if type(v) is int]
        if ints:
            j = ints[0]
            p = list(params0); p[j] = (params0[j][0], float(params0[j][1]))
            c = copy.deepcopy(base); c[0] = (name0, p); add("float_for_int", c)
        lists = [j for j, (k, v) in enumerate(params0) if isinstance(v, list) and v]
        if lists:
            j = lists[0]
            p = list(params0); p[j] = (params0[j][0], tuple(params0[j][1]))
            c = copy.deepcopy(base); c[0] = (name0, p); add("tuple_for_list", c)
            p = list(params0); p[j] = (params0[j][0], list(reversed(params0[j][1])))
            c = copy.deepcopy(base); c[0] = (name0, p); add("list_reordered", c)
    if any(len(v) > 1 for g in gt for v in next(iter(g.values())).values()):
        add("other_acceptable", gold_calls(gt, entry["function"], pick=1))
    optional_given = [k for k, _ in params0 if k not in required]
    if optional_given:
        k = rng.choice(optional_given)
        c = copy.deepcopy(base); c[0] = (name0, [(a, b) for a, b in params0 if a != k]); add("optional_dropped", c)
    if len(base) > 1:
        add("calls_reversed", list(reversed(base)))
        add("call_missing", base[:-1])
        add("call_duplicated", base[:-1] + [base[0]])
    else:
        add("call_repeated", base + base)
    rng.shuffle(cases)
    return cases[:PER_ENTRY]


def verdict(category, entry, answer, output):
    try:
        decoded = default_decode_ast_prompting(output, ReturnFormat.PYTHON)
    except Exception as e:  # noqa: BLE001 -- BFCL counts a decode failure as invalid
        return False, "ast_decoder:decoder_failed"
    r = ast_checker(entry["function"], decoded, answer["ground_truth"], Language.PYTHON, category, MODEL)
    return bool(r["valid"]), r.get("error_type", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    assert not MODEL_CONFIG_MAPPING[MODEL].underscore_to_dot
    rows, gt_pass, gt_total = [], 0, 0
    for cat in CATEGORIES:
        entries = [json.loads(l) for l in open(f"{args.data}/BFCL_v4_{cat}.json")]
        answers = {a["id"]: a for a in (json.loads(l) for l in open(f"{args.data}/possible_answer/BFCL_v4_{cat}.json"))}
        for e in entries:
            a = answers[e["id"]]
            out = render(gold_calls(a["ground_truth"], e["function"]))
            ok, et = verdict(cat, e, a, out)
            gt_total += 1
            gt_pass += ok
            rows.append({"category": cat, "id": e["id"], "kind": "ground_truth", "output": out,
                         "valid": ok, "error_type": "" if ok else et})
            rng = random.Random(e["id"])
            for kind, out in perturbations(cat, e, a, rng):
                ok, et = verdict(cat, e, a, out)
                rows.append({"category": cat, "id": e["id"], "kind": kind, "output": out,
                             "valid": ok, "error_type": "" if ok else et})
    with open(args.out, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"ground truth rendered: {gt_pass}/{gt_total} valid under bfcl-eval")
    pert = [r for r in rows if r["kind"] != "ground_truth"]
    print(f"{len(pert)} perturbed outputs, {sum(r['valid'] for r in pert)} valid")


if __name__ == "__main__":
    main()
