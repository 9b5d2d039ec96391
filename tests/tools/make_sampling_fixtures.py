#!/usr/bin/env python3
"""Writes tests/fixtures/sampling/expected.json: what transformers' logits processors make of a
few fixed rows of logits, for tests/unit/sampler_test.cpp.

Two parts:

  "rows"      fixed logit rows (ties at the top-k boundary, tied groups across the top-p
              threshold, -inf entries, negative logits under a repetition penalty, top_p = 1,
              top_k >= vocab, min_p = 0, ...) run through RepetitionPenaltyLogitsProcessor,
              TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper and MinPLogitsWarper,
              built and chained in the order generate() uses (penalty, temperature, top-k, top-p,
              min-p; each only when generate() would add it).
  "generate"  model.generate(do_sample=True, ...) on the tiny Qwen2 fixture
              (tests/fixtures/models/qwen2-tied) with output_logits and output_scores: the raw
              and the processed logits of every step and the sampled tokens, which checks the
              order and the parameters' plumbing inside generate() itself.

Processed values are f32 numbers; filtered entries (-inf) are written as null.

Needs torch and transformers (the GPU machine; no network):

    python3 tests/tools/make_sampling_fixtures.py [--out tests/fixtures/sampling]
"""
import argparse
import json
import math
import os

import torch
import transformers
from transformers import (MinPLogitsWarper, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                          TopKLogitsWarper, TopPLogitsWarper)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NEG = float("-inf")


def row_from_probs(probs):
    return [math.log(p) if p > 0 else NEG for p in probs]


def random_row(seed, n, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=g) * scale).tolist()


# name -> (logits, context ids, params). Params use generate()'s names and defaults.
ROWS = {
    "topk_tie_at_boundary": ([1.0, 3.0, 3.0, 2.0, 0.5, 3.0], [], dict(top_k=2)),
    "topk_tie_keeps_all": ([1.0, 3.0, 3.0, 3.0, 2.0], [], dict(top_k=2)),
    "topk_ge_vocab": ([0.1, -0.2, 0.3, 0.0], [], dict(top_k=10)),
    "topk_equal_vocab": ([0.1, -0.2, 0.3, 0.0], [], dict(top_k=4)),
    "topk_1": (random_row(1, 16), [], dict(top_k=1)),
    "topp_simple_065": (row_from_probs([0.1, 0.2, 0.3, 0.4]), [], dict(top_p=0.65)),
    "topp_simple_075": (row_from_probs([0.1, 0.2, 0.3, 0.4]), [], dict(top_p=0.75)),
    "topp_tied_group": ([0.0, 1.0, 1.0, 1.0, 2.0, 0.0], [], dict(top_p=0.5)),
    "topp_tied_low": ([0.0, 0.0, 0.0, 0.0, 3.0, 2.5], [], dict(top_p=0.97)),
    "topp_one": (random_row(2, 12), [], dict(top_p=1.0)),
    "topp_zero": (random_row(3, 12), [], dict(top_p=0.0)),
    "topp_with_neg_inf": ([NEG, 0.5, 1.5, NEG, 0.0, 2.0], [], dict(top_p=0.8)),
    "minp_simple": (row_from_probs([0.5, 0.25, 0.15, 0.1]), [], dict(min_p=0.25)),
    "minp_zero": (random_row(4, 10), [], dict(min_p=0.0)),
    "minp_one": ([0.5, 2.0, 2.0, 1.0], [], dict(min_p=1.0)),
    "minp_random": (random_row(5, 32), [], dict(min_p=0.05)),
    "temperature_half": (random_row(6, 8), [], dict(temperature=0.5)),
    "temperature_high": (random_row(7, 8), [], dict(temperature=1.7)),
    "penalty_signs": ([2.0, -2.0, 1.0, 0.0, -0.5, 3.0], [0, 1, 1, 3, 4], dict(repetition_penalty=2.0)),
    "penalty_reward": ([2.0, -2.0, 1.0, 0.0], [0, 1], dict(repetition_penalty=0.5)),
    "chain_all": (random_row(8, 40), [3, 3, 7, 11, 39, 0],
                  dict(repetition_penalty=1.3, temperature=0.7, top_k=12, top_p=0.9, min_p=0.05)),
    "chain_topk_topp": (random_row(9, 40), [], dict(temperature=1.2, top_k=20, top_p=0.8)),
    "chain_topp_minp": (random_row(10, 64), [5, 6], dict(repetition_penalty=1.1, top_p=0.95, min_p=0.1)),
    "greedy_penalty": ([1.0, 4.0, 3.9, -1.0], [1], dict(do_sample=False, repetition_penalty=1.1)),
}


def processors(params):
    """generate()'s processors for these parameters, in generate()'s order."""
    out = []
    if params.get("repetition_penalty", 1.0) != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(float(params["repetition_penalty"])))
    if not params.get("do_sample", True):
        return out
    if params.get("temperature", 1.0) != 1.0:
        out.append(TemperatureLogitsWarper(float(params["temperature"])))
    if params.get("top_k", 0) != 0:
        out.append(TopKLogitsWarper(int(params["top_k"])))
    if params.get("top_p", 1.0) < 1.0:
        out.append(TopPLogitsWarper(float(params["top_p"])))
    if "min_p" in params:
        out.append(MinPLogitsWarper(float(params["min_p"])))
    return out


def as_json_row(t):
    return [None if v == NEG else v for v in t.tolist()]


def run_rows():
    cases = []
    for name, (logits, context, params) in ROWS.items():
        scores = torch.tensor([logits], dtype=torch.float32)
        # Every case with a repetition penalty has a context; the placeholder id is never read.
        ids = torch.tensor([context if context else [0]], dtype=torch.long)
        for p in processors(params):
            scores = p(ids, scores)
        kept = [i for i, v in enumerate(scores[0].tolist()) if v != NEG]
        cases.append({"name": name, "logits": [None if v == NEG else float(torch.tensor(v, dtype=torch.float32))
                                               for v in logits],
                      "context": context, "params": params, "processed": as_json_row(scores[0]), "kept": kept})
    return cases


def run_generate():
    folder = os.path.join(ROOT, "tests", "fixtures", "models", "qwen2-tied")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32,
                                                              attn_implementation="eager").eval()
    runs = []
    # Every parameter explicit: the defaults of GenerationConfig differ between versions.
    settings = [
        dict(temperature=0.8, top_k=20, top_p=0.9, min_p=0.02, repetition_penalty=1.2),
        dict(temperature=1.3, top_k=0, top_p=0.7, min_p=None, repetition_penalty=0.9),
        dict(temperature=1.0, top_k=5, top_p=1.0, min_p=None, repetition_penalty=1.0),
    ]
    prompt = [5, 17, 101, 3, 250, 42, 7]
    for i, params in enumerate(settings):
        torch.manual_seed(100 + i)
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=True, max_new_tokens=6, pad_token_id=0, output_logits=True, output_scores=True, return_dict_in_generate=True,
                             **params)
        # (It may end early on the config's EOS id: the steps are what it ran.)
        steps = [{"logits": as_json_row(out.logits[s][0]), "processed": as_json_row(out.scores[s][0])}
                 for s in range(len(out.scores))]
        tokens = out.sequences[0, len(prompt):len(prompt) + len(steps)].tolist()
        used = {k: v for k, v in params.items() if v is not None}
        runs.append({"prompt": prompt, "params": dict(used, do_sample=True), "tokens": tokens, "steps": steps})
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "sampling"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    doc = {"source": "transformers %s, torch %s" % (transformers.__version__, torch.__version__),
           "rows": run_rows(), "generate": run_generate()}
    path = os.path.join(a.out, "expected.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)
    print("wrote %s: %d rows, %d generate runs" % (path, len(doc["rows"]), len(doc["generate"])))


if __name__ == "__main__":
    main()
