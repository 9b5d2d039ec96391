#!/usr/bin/env python3
"""Writes safetensors files made by Hugging Face's own writers into tests/fixtures/safetensors/,
so that wick's reader is checked against real files (tests/unit/safetensors_hf_test.cpp):

    hf_dtypes.safetensors   written by safetensors.torch.save_file: one tensor per dtype (F64 F32
                            F16 BF16 I64 I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2), a scalar, an empty
                            tensor, special float values; metadata {"format": "pt", ...}
    hf_dtypes.json          for each tensor: dtype, shape, the values (row-major; floats exactly
                            as stored, widened to double), and the raw 16-bit patterns of F16/BF16
    hf_sharded/             a tiny LlamaForCausalLM (bf16) saved by transformers'
                            save_pretrained(max_shard_size=...) as several shards with
                            model.safetensors.index.json
    hf_sharded.json         per tensor: dtype, shape, the f64 sum of its values, its first values

Needs torch and safetensors (and transformers for hf_sharded/); no network.

    python3 tests/tools/make_safetensors_fixture.py [--out tests/fixtures/safetensors]
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# torch dtype -> safetensors name
ST_NAME = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
if hasattr(torch, "float8_e4m3fn"):
    ST_NAME[torch.float8_e4m3fn] = "F8_E4M3"
    ST_NAME[torch.float8_e5m2] = "F8_E5M2"


def values_of(t):
    """Row-major values as JSON numbers (floats widened exactly to double; inf/nan as strings)."""
    flat = t.reshape(-1)
    if t.dtype == torch.bool:
        return [bool(v) for v in flat.tolist()]
    if t.dtype.is_floating_point:
        out = []
        for v in flat.to(torch.float64).tolist():
            out.append(v if v == v and abs(v) != float("inf") else repr(v))
        return out
    return [int(v) for v in flat.tolist()]


def write_dtypes(out):
    g = torch.Generator().manual_seed(1234)
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, 1e-3,
                            float("inf"), float("-inf"), float("nan")])
    tensors = {
        "f64": torch.tensor([[0.1, -1e300], [2.0 ** -1074, 3.0]], dtype=torch.float64),
        "f32": torch.randn(3, 5, generator=g),
        "f32_special": special.to(torch.float32),
        "f16": special.to(torch.float16),
        "f16_matrix": torch.randn(4, 3, generator=g).to(torch.float16),
        "bf16": torch.tensor([1.0, -3.0, 0.375, 1e30, 3.14159, 1e-30, float("inf")]).to(torch.bfloat16),
        "bf16_matrix": torch.randn(2, 3, 4, generator=g).to(torch.bfloat16),
        "i64": torch.tensor([-5, 1 << 40, 0, -(1 << 62)], dtype=torch.int64),
        "i32": torch.tensor([[7, -8], [2147483647, -2147483648]], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-1, 2, 127], dtype=torch.int8),
        "u8": torch.tensor([255, 0, 17], dtype=torch.uint8),
        "bool": torch.tensor([[True, False, True], [False, False, True]]),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        # save_file needs contiguous tensors: a transpose made contiguous.
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t().contiguous(),
    }
    if hasattr(torch, "float8_e4m3fn"):
        tensors["f8_e4m3"] = torch.tensor([1.0, -2.0, 0.5]).to(torch.float8_e4m3fn)
        tensors["f8_e5m2"] = torch.tensor([1.0, -2.0, 0.5]).to(torch.float8_e5m2)
    metadata = {"format": "pt", "made_by": "safetensors.torch.save_file", "unicode": "h\u00e9llo \u2713"}
    save_file(tensors, os.path.join(out, "hf_dtypes.safetensors"), metadata=metadata)

    expected = {"metadata": metadata, "tensors": {}}
    for name, t in tensors.items():
        e = {"dtype": ST_NAME[t.dtype], "shape": list(t.shape)}
        if ST_NAME[t.dtype] in ("F64", "F32", "F16", "BF16", "I64", "I32", "BOOL"):
            e["values"] = values_of(t)
        if t.dtype in (torch.float16, torch.bfloat16):
            e["bits"] = [int(v) & 0xFFFF for v in t.reshape(-1).view(torch.int16).tolist()]
        expected["tensors"][name] = e
    with open(os.path.join(out, "hf_dtypes.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print(f"wrote {out}/hf_dtypes.safetensors ({len(tensors)} tensors) and hf_dtypes.json")


def write_sharded(out):
    try:
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError:
        print("transformers is not importable: hf_sharded/ not written")
        return
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    folder = os.path.join(out, "hf_sharded")
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="2KB")
    files = sorted(os.listdir(folder))
    if "model.safetensors.index.json" not in files:
        raise SystemExit(f"save_pretrained wrote no index (files: {files}); lower max_shard_size")
    expected = {"transformers": transformers.__version__, "tensors": {}}
    for name, t in model.state_dict().items():
        t = t.detach()
        expected["tensors"][name] = {
            "dtype": ST_NAME[t.dtype], "shape": list(t.shape),
            "sum": float(t.to(torch.float64).sum()),
            "first": values_of(t.reshape(-1)[:4]),
        }
    with open(os.path.join(out, "hf_sharded.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    shards = [f for f in files if f.endswith(".safetensors")]
    print(f"wrote {folder}/ ({len(shards)} shards + index) and hf_sharded.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "safetensors"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    write_dtypes(args.out)
    write_sharded(args.out)


if __name__ == "__main__":
    main()
