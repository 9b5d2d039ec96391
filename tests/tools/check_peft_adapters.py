#!/usr/bin/env python3
"""Loads what wick wrote into the real peers and records their logits:

    tests/fixtures/lora/wick-written/{qv,all-linear-rslora,from-mlx}/
        PEFT adapter folders written by wick (save_peft_adapter; from-mlx via import_mlx_adapter),
        for tests/fixtures/models/qwen2-tied. Each is loaded with peft.PeftModel.from_pretrained;
        every LoRA tensor PEFT ends up with must equal the file's, and every tensor of the file
        must have been used.
    tests/fixtures/lora/wick-written/merged-qv/
        `wick merge` of the qv adapter into the model, loaded with
        transformers.AutoModelForCausalLM.from_pretrained; no missing, unexpected or mis-shaped
        weight is allowed.

and writes tests/fixtures/lora/wick-written/peft_logits.safetensors:

    adapter/<name>/logits_<i>   [T_i, vocab] f32, PEFT model with the adapter
    merged-qv/logits_<i>        [T_i, vocab] f32, transformers on the merged folder

for the sequences of tests/fixtures/models/qwen2-tied/expected.json. tests/unit/peft_parity_test.cpp
compares wick's logits with them. Needs torch, transformers, peft and safetensors; no network;
runs on the CPU in float32.

    python3 tests/tools/check_peft_adapters.py
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL = os.path.join(ROOT, "tests", "fixtures", "models", "qwen2-tied")
WRITTEN = os.path.join(ROOT, "tests", "fixtures", "lora", "wick-written")
ADAPTERS = ["qv", "all-linear-rslora", "from-mlx"]
OUT = os.path.join(WRITTEN, "peft_logits.safetensors")


def load_base(path):
    import transformers as tf
    model, info = tf.AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    problems = {}
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        v = list(info.get(k) or [])
        if k == "missing_keys" and model.config.tie_word_embeddings:
            v = [n for n in v if n != "lm_head.weight"]  # the embedding is the head
        if v:
            problems[k] = v
    if problems:
        sys.exit("%s: transformers reports %s" % (path, problems))
    return model.float().eval()


def check_adapter_weights(pm, folder):
    """Every LoRA tensor of the PEFT model equals the file's, and the file has no other tensor."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file
    file = load_file(os.path.join(folder, "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(pm)
    if set(file) != set(loaded):
        sys.exit("%s: PEFT's adapter tensors differ from the file's:\n  only in file: %s\n  only in PEFT: %s" %
                 (folder, sorted(set(file) - set(loaded)), sorted(set(loaded) - set(file))))
    for k, t in file.items():
        if not torch.equal(loaded[k].float().cpu(), t.float()):
            sys.exit("%s: %s was not loaded as written" % (folder, k))
    return len(file)


def main():
    import peft
    import transformers as tf
    from peft import PeftModel
    from safetensors.torch import save_file

    torch.manual_seed(0)
    with open(os.path.join(MODEL, "expected.json")) as f:
        sequences = json.load(f)["sequences"]
    out = {}
    for name in ADAPTERS:
        folder = os.path.join(WRITTEN, name)
        pm = PeftModel.from_pretrained(load_base(MODEL), folder).eval()
        n = check_adapter_weights(pm, folder)
        with torch.no_grad():
            for i, s in enumerate(sequences):
                out["adapter/%s/logits_%d" % (name, i)] = pm(input_ids=torch.tensor([s])).logits[0].float().contiguous()
        print("%s: PEFT loaded %d tensors" % (name, n))
    merged = load_base(os.path.join(WRITTEN, "merged-qv"))
    with torch.no_grad():
        for i, s in enumerate(sequences):
            out["merged-qv/logits_%d" % i] = merged(input_ids=torch.tensor([s])).logits[0].float().contiguous()
    print("merged-qv: transformers loaded it with no missing or unexpected weights")
    source = "peft %s, transformers %s, torch %s" % (peft.__version__, tf.__version__, torch.__version__)
    save_file(out, OUT, metadata={"source": source, "format": "pt"})
    print("wrote %s (%s)" % (os.path.relpath(OUT, ROOT), source))


if __name__ == "__main__":
    main()
