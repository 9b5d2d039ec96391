#!/usr/bin/env python3
"""Writes LoRA reference data into tests/fixtures/lora/:

    linear.safetensors     one LoRA linear layer (PEFT layout) and its forward and gradients:
                           x [2,5,24], weight [10,24], bias [10], lora_A [4,24], lora_B [10,4],
                           cotangent g [2,5,10]; y = layer(x); loss = sum(y·g);
                           grad_x, grad_lora_A, grad_lora_B; the same with rsLoRA as y_rslora,
                           grad_*_rslora. Metadata: r, alpha.
    qwen2-tied-adapter/    a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)
                           for tests/fixtures/models/qwen2-tied, targets q_proj, v_proj, down_proj,
                           r 4, alpha 8, with random A and B;
    adapter_expected.safetensors   logits_<i> [T_i, vocab] of that model with the adapter, for the
                           sequences of tests/fixtures/models/qwen2-tied/expected.json.

With PEFT + transformers importable (the GPU machine), PEFT's own LoRA layer
(peft.tuners.lora.Linear) and get_peft_model / save_pretrained make everything. Otherwise the same
files come from plain PyTorch formulas (y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ) and a hand-written adapter
folder, evaluated with bench/peers/decoder_torch.py on merged weights.

    python3 tests/tools/make_lora_fixture.py [--out tests/fixtures/lora]
"""
import argparse
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
import decoder_torch as dt  # noqa: E402

try:
    import peft  # noqa: F401
    import transformers  # noqa: F401
    HAVE_PEFT = True
except ImportError:
    HAVE_PEFT = False

R, ALPHA = 4, 8.0
TARGETS = ["q_proj", "v_proj", "down_proj"]
MODEL = os.path.join(ROOT, "tests", "fixtures", "models", "qwen2-tied")


def linear_case(rslora):
    """Forward and gradients of one LoRA linear; returns (tensors, source)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 5, 24, generator=g)
    w = torch.randn(10, 24, generator=g) * 0.2
    b = torch.randn(10, generator=g) * 0.2
    a = (torch.rand(R, 24, generator=g) * 2 - 1) / math.sqrt(24)
    bb = torch.randn(10, R, generator=g) * 0.2
    cot = torch.randn(2, 5, 10, generator=g)
    if HAVE_PEFT:
        from peft.tuners.lora import Linear as PeftLinear
        base = torch.nn.Linear(24, 10)
        with torch.no_grad():
            base.weight.copy_(w)
            base.bias.copy_(b)
        layer = PeftLinear(base, "default", r=R, lora_alpha=ALPHA, lora_dropout=0.0, use_rslora=rslora)
        with torch.no_grad():
            layer.lora_A["default"].weight.copy_(a)
            layer.lora_B["default"].weight.copy_(bb)
        xg = x.clone().requires_grad_(True)
        y = layer(xg)
        (y * cot).sum().backward()
        grads = (xg.grad, layer.lora_A["default"].weight.grad, layer.lora_B["default"].weight.grad)
        source = "peft " + peft.__version__ + ", torch " + torch.__version__
    else:
        s = ALPHA / math.sqrt(R) if rslora else ALPHA / R
        xg, ag, bg = (t.clone().requires_grad_(True) for t in (x, a, bb))
        y = torch.nn.functional.linear(xg, w, b) + s * ((xg @ ag.t()) @ bg.t())
        (y * cot).sum().backward()
        grads = (xg.grad, ag.grad, bg.grad)
        source = "torch " + torch.__version__ + " formula"
    out = {"x": x, "weight": w, "bias": b, "lora_A": a, "lora_B": bb, "cotangent": cot}
    sfx = "_rslora" if rslora else ""
    out["y" + sfx] = y.detach()
    for n, t in zip(("grad_x", "grad_lora_A", "grad_lora_B"), grads):
        out[n + sfx] = t.detach()
    return out, source


def adapter_values(shapes):
    """Random A and B for every adapted module (fixed seed, name order)."""
    g = torch.Generator().manual_seed(9)
    vals = {}
    for name in sorted(shapes):
        vals[name] = torch.randn(shapes[name], generator=g) * 0.2
    return vals


def make_adapter(out_dir, sequences):
    folder = os.path.join(out_dir, "qwen2-tied-adapter")
    os.makedirs(folder, exist_ok=True)
    if HAVE_PEFT:
        import transformers as tf
        from peft import LoraConfig, get_peft_model
        model = tf.AutoModelForCausalLM.from_pretrained(MODEL).float().eval()
        cfg = LoraConfig(r=R, lora_alpha=ALPHA, target_modules=TARGETS, lora_dropout=0.0, bias="none",
                         task_type="CAUSAL_LM")
        pm = get_peft_model(model, cfg)
        params = {n: p for n, p in pm.named_parameters() if "lora_" in n}
        vals = adapter_values({n: tuple(p.shape) for n, p in params.items()})
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(vals[n])
        pm.save_pretrained(folder)  # adapter_config.json + adapter_model.safetensors
        logits = []
        with torch.no_grad():
            for s in sequences:
                logits.append(pm(input_ids=torch.tensor([s])).logits[0].float())
        source = "peft " + peft.__version__ + ", transformers " + tf.__version__
    else:
        with open(os.path.join(MODEL, "config.json")) as f:
            cfg = dt.Config(json.load(f))
        weights = dt.read_weights(MODEL)
        shapes = {}
        for i in range(cfg.num_hidden_layers):
            for t in TARGETS:
                sub = "mlp" if t == "down_proj" else "self_attn"
                w = weights["model.layers.%d.%s.%s.weight" % (i, sub, t)]
                key = "base_model.model.model.layers.%d.%s.%s" % (i, sub, t)
                shapes[key + ".lora_A.weight"] = (R, w.shape[1])
                shapes[key + ".lora_B.weight"] = (w.shape[0], R)
        vals = adapter_values(shapes)
        dt.write_safetensors(os.path.join(folder, "adapter_model.safetensors"), vals, {"format": "pt"})
        with open(os.path.join(folder, "adapter_config.json"), "w") as f:
            json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": R, "lora_alpha": ALPHA,
                       "lora_dropout": 0.0, "target_modules": TARGETS, "bias": "none", "use_rslora": False,
                       "fan_in_fan_out": False, "modules_to_save": None, "layers_to_transform": None,
                       "rank_pattern": {}, "alpha_pattern": {}, "base_model_name_or_path": "qwen2-tied"},
                      f, indent=2)
        merged = dict(weights)
        s = ALPHA / R
        for key in shapes:
            if key.endswith(".lora_A.weight"):
                mod = key[len("base_model.model."):-len(".lora_A.weight")]
                a = vals[key]
                b = vals[key.replace(".lora_A.", ".lora_B.")]
                merged[mod + ".weight"] = weights[mod + ".weight"].float() + s * (b @ a)
        dec = dt.Decoder(cfg, merged)
        with torch.no_grad():
            logits = [dec.forward(torch.tensor([s_]))[0] for s_ in sequences]
        source = "bench/peers/decoder_torch.py on merged weights, torch " + torch.__version__
    tensors = {"logits_%d" % i: l.contiguous() for i, l in enumerate(logits)}
    dt.write_safetensors(os.path.join(out_dir, "adapter_expected.safetensors"), tensors,
                         {"format": "pt", "source": source})
    return source


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "lora"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    tensors, source = linear_case(False)
    rs, _ = linear_case(True)
    tensors.update({k: v for k, v in rs.items() if k.endswith("_rslora")})
    dt.write_safetensors(os.path.join(a.out, "linear.safetensors"), {k: v.contiguous() for k, v in tensors.items()},
                         {"format": "pt", "r": str(R), "alpha": str(ALPHA), "source": source})
    with open(os.path.join(MODEL, "expected.json")) as f:
        sequences = json.load(f)["sequences"]
    src2 = make_adapter(a.out, sequences)
    print("%s: linear from %s; adapter from %s" % (a.out, source, src2))


if __name__ == "__main__":
    main()
