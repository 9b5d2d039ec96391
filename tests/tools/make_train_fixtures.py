#!/usr/bin/env python3
"""Writes tests/fixtures/train/torch_reference.json: AdamW, SGD, gradient clipping, cross-entropy
and learning-rate schedules computed by PyTorch, for tests/unit/train_test.cpp.

Runs with any PyTorch >= 1.13 (Debian's python3-torch here). The schedules come from
transformers when it is importable (transformers.get_*_schedule_with_warmup); otherwise from
torch's LambdaLR driven by the same formulas, which the file records in "schedule_source".
"""
import json
import math
import os
import sys

import torch

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "train", "torch_reference.json")


def tolist(t):
    return t.detach().double().reshape(-1).tolist()


def adamw_case():
    shapes = [(3, 4), (5,)]
    params = [torch.randn(s, dtype=torch.float32, requires_grad=True) for s in shapes]
    init = [tolist(p) for p in params]
    opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    lrs = [1e-2, 5e-3, 2e-2, 1e-2, 1e-3]
    steps = []
    for lr in lrs:
        for g in opt.param_groups:
            g["lr"] = lr
        grads = [torch.randn(s, dtype=torch.float32) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        steps.append({"lr": lr, "grads": [tolist(g) for g in grads], "params": [tolist(p) for p in params]})
    return {"shapes": [list(s) for s in shapes], "init": init, "steps": steps,
            "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}


def sgd_case():
    shape = (4, 3)
    p = torch.randn(shape, requires_grad=True)
    init = tolist(p)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.05, nesterov=True)
    steps = []
    for _ in range(3):
        g = torch.randn(shape)
        p.grad = g.clone()
        opt.step()
        steps.append({"grad": tolist(g), "param": tolist(p)})
    return {"shape": list(shape), "init": init, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.05,
            "nesterov": True, "steps": steps}


def clip_case(max_norm, scale):
    shapes = [(2, 3), (4,)]
    grads = [torch.randn(s) * scale for s in shapes]
    ps = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p, g in zip(ps, grads):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
    return {"shapes": [list(s) for s in shapes], "grads": [tolist(g) for g in grads], "max_norm": max_norm,
            "norm": float(norm), "clipped": [tolist(p.grad) for p in ps]}


def ce_case(smoothing, reduction):
    n, v = 7, 11
    logits = (torch.randn(n, v) * 3).requires_grad_(True)
    labels = torch.randint(0, v, (n,))
    labels[2] = -100
    labels[5] = -100
    loss = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, label_smoothing=smoothing,
                                             reduction=reduction)
    weights = torch.randn(loss.shape) if reduction == "none" else torch.tensor(1.0)
    (loss * weights).sum().backward()
    return {"n": n, "v": v, "logits": tolist(logits), "labels": labels.tolist(), "smoothing": smoothing,
            "reduction": reduction, "loss": tolist(loss), "weights": tolist(weights), "grad": tolist(logits.grad)}


def schedules():
    total, warmup, base, min_lr = 20, 4, 1e-3, 1e-4
    try:
        import transformers as tf
        source = "transformers " + tf.__version__

        def make(kind, opt):
            if kind == "constant":
                return tf.get_constant_schedule_with_warmup(opt, warmup)
            if kind == "linear":
                return tf.get_linear_schedule_with_warmup(opt, warmup, total)
            return tf.get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr=min_lr)
    except ImportError:
        source = "torch LambdaLR with the transformers formulas"

        def make(kind, opt):
            def lam(step):
                if step < warmup:
                    return step / max(1, warmup)
                if kind == "constant":
                    return 1.0
                progress = (step - warmup) / max(1, total - warmup)
                if kind == "linear":
                    return max(0.0, 1.0 - progress)
                f = 0.5 * (1.0 + math.cos(math.pi * progress))
                return f * (1 - min_lr / base) + min_lr / base
            return torch.optim.lr_scheduler.LambdaLR(opt, lam)
    out = {"total": total, "warmup": warmup, "base": base, "min_lr": min_lr, "schedule_source": source}
    for kind in ["constant", "linear", "cosine"]:
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=base)
        sched = make(kind, opt)
        lrs = []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[kind] = lrs
    return out


data = {
    "torch_version": torch.__version__,
    "adamw": adamw_case(),
    "sgd": sgd_case(),
    "clip": [clip_case(1.0, 3.0), clip_case(100.0, 1.0)],
    "cross_entropy": [ce_case(0.0, "mean"), ce_case(0.1, "mean"), ce_case(0.0, "sum"), ce_case(0.2, "none")],
    "schedules": schedules(),
}
with open(OUT, "w") as f:
    json.dump(data, f)
print("wrote", os.path.normpath(OUT), file=sys.stderr)
