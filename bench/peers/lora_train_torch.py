#!/usr/bin/env python3
"""PyTorch peer of a `wick train` LoRA run (PEFT is not installed on this machine, so the LoRA
layers are PEFT's formula written out: y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ, A ~ U(±1/√in), B = 0):
the decoder of decoder_torch.py (same math as transformers), LoRA on every linear layer of the
blocks, causal-LM loss, backward, clipping at 1.0, torch.optim.AdamW on the adapter. Prints one
JSON line with the steady-state tokens/s (median over steps after the first two).

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/peers/lora_train_torch.py \
        (--model DIR | --shape qwen2-100m) [--batch 8] [--seq 128] [--rank 16] [--steps 8] [--threads 2]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decoder_torch as dt  # noqa: E402

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoraDecoder(dt.Decoder):
    def __init__(self, cfg, weights, rank, alpha):
        super().__init__(cfg, weights)
        self.scale = alpha / rank
        self.lora = {}
        g = torch.Generator().manual_seed(0)
        for name, w in self.w.items():
            if name.endswith(".weight") and name.split(".")[-2] in TARGETS:
                out_f, in_f = w.shape
                a = ((torch.rand(rank, in_f, generator=g) * 2 - 1) / math.sqrt(in_f)).requires_grad_()
                b = torch.zeros(out_f, rank, requires_grad=True)
                self.lora[name[: -len(".weight")]] = (a, b)

    def lin(self, x, name, bias):
        y = super().lin(x, name, bias)
        ab = self.lora.get(name)
        return y if ab is None else y + self.scale * F.linear(F.linear(x, ab[0]), ab[1])


def main():
    ap = argparse.ArgumentParser()
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model")
    src.add_argument("--shape", choices=sorted(dt.SHAPES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab-limit", type=int, default=4096, help="token ids drawn below this")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.model:
        with open(os.path.join(a.model, "config.json")) as f:
            cfg = dt.Config(json.load(f))
        weights = dt.read_weights(a.model)
        name = os.path.basename(os.path.normpath(a.model))
    else:
        cfg = dt.Config(dt.SHAPES[a.shape])
        weights = dt.random_weights(cfg)
        name = a.shape
    model = LoraDecoder(cfg, weights, a.rank, 2.0 * a.rank)
    params = [t for pair in model.lora.values() for t in pair]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    vocab = min(a.vocab_limit, cfg.vocab_size)
    times = []
    for _ in range(a.steps):
        ids = torch.randint(0, vocab, (a.batch, a.seq), generator=g)
        t0 = time.perf_counter()
        logits = model.forward(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    steady = times[2:] if len(times) > 3 else times
    med = statistics.median(steady)
    print(json.dumps({"name": "torch/lora_train/" + name, "tok_s": a.batch * a.seq / med,
                      "step_ms": med * 1e3, "steps": len(times), "threads": a.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
