#!/usr/bin/env python3
"""Writes the PEFT training-parity fixture into tests/fixtures/lora/peft-train/ (needs torch,
transformers and PEFT: run it on the GPU machine, on its CPU, in f32):

    data.jsonl         20 records {"input_ids": [...]} of lengths 5..24 over the tiny Qwen2's vocab
    initial/           the PEFT adapter both trainers start from: LoRA r 4, alpha 8 on q_proj and
                       v_proj of tests/fixtures/models/qwen2-tied, A from PEFT's init, B drawn
                       N(0, 0.02) so both matrices get gradients from the first step
    final/             the adapter after training (PEFT's save_pretrained)
    losses.json        {"losses": [...]} the loss of each of the 20 steps

Training: batch 1, the records in file order, model(input_ids, labels=input_ids).loss (transformers'
causal-LM loss), torch.optim.AdamW(lr 1e-3, weight decay 0.01, default betas and eps) over the
adapter's parameters, no clipping, no schedule. wick's trainer_test runs `wick::train` with the
same settings from initial/ and compares every step's loss and the final adapter.

    python3 tests/tools/make_peft_train_fixture.py
"""
import json
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "tests", "fixtures", "models", "qwen2-tied")
OUT = os.path.join(ROOT, "tests", "fixtures", "lora", "peft-train")
STEPS = 20


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)

    g = torch.Generator().manual_seed(11)
    records = []
    for i in range(STEPS):
        n = 5 + int(torch.randint(0, 20, (1,), generator=g))
        records.append([int(t) for t in torch.randint(3, 256, (n,), generator=g)])
    with open(os.path.join(OUT, "data.jsonl"), "w") as f:
        for r in records:
            f.write(json.dumps({"input_ids": r}) + "\n")

    base = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                     task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    model.save_pretrained(os.path.join(OUT, "initial"))

    # Train a fresh load of the saved initial adapter: exactly what wick starts from.
    base = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, os.path.join(OUT, "initial"), is_trainable=True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    losses = []
    for r in records:
        ids = torch.tensor([r])
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    model.save_pretrained(os.path.join(OUT, "final"))
    with open(os.path.join(OUT, "losses.json"), "w") as f:
        json.dump({"losses": losses, "torch": torch.__version__,
                   "peft": __import__("peft").__version__,
                   "transformers": __import__("transformers").__version__}, f, indent=1)
    print("wrote", OUT, "losses", [round(x, 4) for x in losses[:3]], "...", round(losses[-1], 4))


if __name__ == "__main__":
    main()
