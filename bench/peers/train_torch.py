#!/usr/bin/env python3
"""PyTorch peer of `wick bench train`: the same work, shapes and timing method.

Prints one JSON object per line like `wick bench train --json`, names prefixed `torch/`.

  lora_linear/fwd_bwd  x [4,16,512] (requires grad), W 512x512 frozen, LoRA A [8,512], B [512,8]
                       (PEFT layout, scaling 2): y = x W^T + 2 (x A^T) B^T; y.sum().backward().
  train_step/eager     one step (zero_grad, forward, causal-LM cross-entropy, backward, AdamW on
                       every parameter) of the Qwen2-shaped decoder of bench_train.cpp.

Run with OPENBLAS_CORETYPE=SkylakeX (see engine_torch.py) and 2 threads.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

from engine_torch import measure  # same sampling method as wick's bench_util


class Block(torch.nn.Module):
    def __init__(self, hidden, heads, kv_heads, inter):
        super().__init__()
        hd = hidden // heads
        self.heads, self.kv_heads, self.hd = heads, kv_heads, hd
        self.input_layernorm = torch.nn.Parameter(torch.ones(hidden))
        self.post_attention_layernorm = torch.nn.Parameter(torch.ones(hidden))
        self.q_proj = torch.nn.Linear(hidden, hidden)
        self.k_proj = torch.nn.Linear(hidden, kv_heads * hd)
        self.v_proj = torch.nn.Linear(hidden, kv_heads * hd)
        self.o_proj = torch.nn.Linear(hidden, hidden, bias=False)
        self.gate_proj = torch.nn.Linear(hidden, inter, bias=False)
        self.up_proj = torch.nn.Linear(hidden, inter, bias=False)
        self.down_proj = torch.nn.Linear(inter, hidden, bias=False)


def rms_norm(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, theta=1e6):
    t, d = x.shape[-2], x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d)
    f = torch.outer(torch.arange(t, dtype=torch.float32), inv)
    emb = torch.cat([f, f], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * emb.cos() + torch.cat([-x2, x1], -1) * emb.sin()


class Decoder(torch.nn.Module):
    def __init__(self, vocab=4096, hidden=256, layers=4, heads=4, kv_heads=2, inter=704):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        torch.nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = torch.nn.ModuleList([Block(hidden, heads, kv_heads, inter) for _ in range(layers)])
        self.norm = torch.nn.Parameter(torch.ones(hidden))

    def forward(self, ids):
        b, t = ids.shape
        h = self.embed(ids)
        for blk in self.blocks:
            x = rms_norm(h, blk.input_layernorm)
            q = rope(blk.q_proj(x).view(b, t, blk.heads, blk.hd).transpose(1, 2))
            k = rope(blk.k_proj(x).view(b, t, blk.kv_heads, blk.hd).transpose(1, 2))
            v = blk.v_proj(x).view(b, t, blk.kv_heads, blk.hd).transpose(1, 2)
            rep = blk.heads // blk.kv_heads
            k = k.repeat_interleave(rep, 1)
            v = v.repeat_interleave(rep, 1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") \
                else torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(blk.hd) +
                                   torch.full((t, t), float("-inf")).triu(1), -1) @ v
            h = h + blk.o_proj(a.transpose(1, 2).reshape(b, t, -1))
            y = rms_norm(h, blk.post_attention_layernorm)
            h = h + blk.down_proj(F.silu(blk.gate_proj(y)) * blk.up_proj(y))
        h = rms_norm(h, self.norm)
        return h @ self.embed.weight.t()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    mt, mi, wu = (0.05, 3, 1) if args.quick else (2.0, 10, 3)

    def emit(name, t, baseline=None, extra=None):
        row = {"name": "torch/" + name, **t}
        if extra:
            row.update(extra)
        print(json.dumps(row), flush=True)

    if "lora_linear/fwd_bwd".find(args.filter) >= 0 or args.filter in "lora_linear/fwd_bwd":
        x = torch.randn(4, 16, 512, requires_grad=True)
        w = torch.randn(512, 512) * 0.04
        a = (torch.rand(8, 512) * 2 - 1).div_(math.sqrt(512)).requires_grad_(True)
        b = (torch.randn(512, 8) * 0.01).requires_grad_(True)

        def lora():
            for t in (x, a, b):
                t.grad = None
            y = F.linear(x, w) + 2.0 * F.linear(F.linear(x, a), b)
            y.sum().backward()
        emit("lora_linear/fwd_bwd", measure(lora, mt, mi, wu))

    if args.filter in "train_step/eager":
        model = Decoder()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(0, 4096, (4, 128))
        labels = torch.randint(0, 4096, (4, 128))

        def step():
            opt.zero_grad(set_to_none=True)
            logits = model(ids)
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
            loss.backward()
            opt.step()
        t = measure(step, mt, mi, wu)
        emit("train_step/eager", t, extra={"tok_s": 512 / (t["median_us"] * 1e-6)})


if __name__ == "__main__":
    main()
