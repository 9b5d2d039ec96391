#!/usr/bin/env python3
"""Plain-PyTorch peer of wick's decoder family (qwen2 / llama / mistral): same math as
transformers (RMSNorm in f32, rotate-half RoPE with Llama 3 scaling, GQA, causal attention with
an optional sliding window, SiLU-gated MLP), computed in f32.

Loads a Hugging Face folder (config.json + model.safetensors or a sharded index) with a small
safetensors reader (the `safetensors` package is not needed), and either prints logits or times
prefill and greedy decode like `wick bench decode`:

    /usr/bin/python3 bench/peers/decoder_torch.py --model DIR --tokens 1,2,3 [--greedy 24] [--json]
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/peers/decoder_torch.py --bench \
        [--model DIR | --shape qwen2-100m] [--prompt 128] [--decode 64] [--threads 2]

Runs with PyTorch 1.13 (Debian) and newer. Also imported by tests/tools/make_tiny_models.py.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

# ---- safetensors ---------------------------------------------------------------------------------

_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def read_safetensors(path):
    """All tensors of a safetensors file, as a dict name -> tensor (copies, CPU)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dt = _ST_DTYPES[info["dtype"]]
        raw = bytearray(data[base + begin:base + end])
        if dt == torch.bfloat16:  # frombuffer has no bf16 on older torch: go through int16
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.empty(0, dtype=dt)
        else:
            t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors, metadata=None):
    """Writes a dict name -> tensor as safetensors (sorted names, 8-byte aligned header)."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_weights(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        out = {}
        for fn in files:
            out.update(read_safetensors(os.path.join(folder, fn)))
        return out
    return read_safetensors(os.path.join(folder, "model.safetensors"))


# ---- config --------------------------------------------------------------------------------------

class Config:
    def __init__(self, d):
        self.model_type = d["model_type"]
        if self.model_type not in ("qwen2", "llama", "mistral"):
            raise ValueError("unsupported model_type " + self.model_type)
        if d.get("hidden_act", "silu") not in ("silu", "swish"):
            raise ValueError("unsupported hidden_act")
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_attention_heads = d["num_attention_heads"]
        self.num_key_value_heads = d.get("num_key_value_heads") or self.num_attention_heads
        self.head_dim = d.get("head_dim") or self.hidden_size // self.num_attention_heads
        self.rms_norm_eps = d.get("rms_norm_eps", 1e-6)
        self.tie_word_embeddings = d.get("tie_word_embeddings", False)
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        self.rope_theta = (d.get("rope_parameters") or {}).get("rope_theta", d.get("rope_theta", 10000.0))
        self.rope_type = rope.get("rope_type", rope.get("type", "default"))
        self.rope = rope
        ab = d.get("attention_bias", False)
        self.qkv_bias = True if self.model_type == "qwen2" else ab
        self.o_bias = ab if self.model_type == "llama" else False
        self.mlp_bias = d.get("mlp_bias", False) if self.model_type == "llama" else False
        L = self.num_hidden_layers
        window = d.get("sliding_window")
        if d.get("layer_types"):
            self.windows = [window if t == "sliding_attention" else 0 for t in d["layer_types"]]
        elif window and self.model_type == "mistral":
            self.windows = [window] * L
        elif window and self.model_type == "qwen2" and d.get("use_sliding_window", False):
            first = d.get("max_window_layers", L)
            self.windows = [window if i >= first else 0 for i in range(L)]
        else:
            self.windows = [0] * L

    def inv_freq(self):
        d = self.head_dim
        inv = 1.0 / (self.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        if self.rope_type == "default":
            return inv
        if self.rope_type != "llama3":
            raise ValueError("unsupported rope type " + self.rope_type)
        r = self.rope
        factor, low, high = r["factor"], r["low_freq_factor"], r["high_freq_factor"]
        old = r["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, scaled)


# ---- model ---------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Decoder:
    """The decoder as plain tensor code over a name -> tensor dict (f32)."""

    def __init__(self, config, weights):
        self.c = config
        self.w = {k: v.float() for k, v in weights.items()}
        if config.tie_word_embeddings or "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.inv_freq = config.inv_freq()

    @staticmethod
    def load(folder):
        with open(os.path.join(folder, "config.json")) as f:
            cfg = Config(json.load(f))
        return Decoder(cfg, read_weights(folder))

    def lin(self, x, name, bias):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"] if bias else None)

    def forward(self, ids, cache=None, attention_mask=None, last_only=False):
        """ids [B, T] -> logits [B, T, V] ([B, 1, V] with last_only). cache: list of (k, v) per
        layer, extended in place. attention_mask [B, past + T] (1 token, 0 padding)."""
        c = self.c
        B, T = ids.shape
        past = cache[0][0].shape[2] if cache and cache[0] is not None else 0
        S = past + T
        if attention_mask is None:
            attention_mask = torch.ones(B, S, dtype=torch.long)
        pos_all = attention_mask.long().cumsum(-1) - 1
        pos_all = pos_all.masked_fill(attention_mask == 0, 1)
        pos = pos_all[:, past:].float()  # [B, T]
        freqs = pos[:, :, None] * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B, 1, T, D]
        q_idx = torch.arange(past, S)[:, None]
        k_idx = torch.arange(S)[None, :]
        keep_base = (k_idx <= q_idx)[None] & attention_mask.bool()[:, None, :]  # [B, T, S]

        x = self.w["model.embed_tokens.weight"][ids]
        H, Hkv, D = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        for i in range(c.num_hidden_layers):
            p = "model.layers.%d." % i
            h = rms_norm(x, self.w[p + "input_layernorm.weight"], c.rms_norm_eps)
            q = self.lin(h, p + "self_attn.q_proj", c.qkv_bias).view(B, T, H, D).transpose(1, 2)
            k = self.lin(h, p + "self_attn.k_proj", c.qkv_bias).view(B, T, Hkv, D).transpose(1, 2)
            v = self.lin(h, p + "self_attn.v_proj", c.qkv_bias).view(B, T, Hkv, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                if cache[i] is not None:
                    k = torch.cat((cache[i][0], k), dim=2)
                    v = torch.cat((cache[i][1], v), dim=2)
                cache[i] = (k, v)
            keep = keep_base
            if c.windows[i]:
                keep = keep & ((q_idx - k_idx) < c.windows[i])[None]
            kk = k.repeat_interleave(H // Hkv, dim=1)
            vv = v.repeat_interleave(H // Hkv, dim=1)
            scores = (q @ kk.transpose(-1, -2)) * (D ** -0.5)
            scores = scores.masked_fill(~keep[:, None], float("-inf"))
            probs = torch.softmax(scores, dim=-1)
            probs = torch.nan_to_num(probs, nan=0.0)  # fully masked (padding) rows
            o = (probs @ vv).transpose(1, 2).reshape(B, T, H * D)
            x = x + self.lin(o, p + "self_attn.o_proj", c.o_bias)
            h = rms_norm(x, self.w[p + "post_attention_layernorm.weight"], c.rms_norm_eps)
            g = self.lin(h, p + "mlp.gate_proj", c.mlp_bias)
            u = self.lin(h, p + "mlp.up_proj", c.mlp_bias)
            x = x + self.lin(F.silu(g) * u, p + "mlp.down_proj", c.mlp_bias)
        x = rms_norm(x, self.w["model.norm.weight"], c.rms_norm_eps)
        if last_only:
            x = x[:, -1:]
        return F.linear(x, self.w["lm_head.weight"])

    def greedy(self, prompt, n):
        """Greedy continuation of a 1-d prompt by n tokens (with a KV cache)."""
        cache = [None] * self.c.num_hidden_layers
        logits = self.forward(torch.tensor([prompt]), cache)
        out = []
        for _ in range(n):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            logits = self.forward(torch.tensor([[nxt]]), cache)
        return out


# ---- shapes for benchmarks -------------------------------------------------------------------------

SHAPES = {
    # ~100M parameters, the Qwen2 layout (tied embeddings, q/k/v bias, 4:1 GQA).
    "qwen2-100m": dict(model_type="qwen2", vocab_size=32000, hidden_size=768, intermediate_size=2048,
                       num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=3,
                       max_position_embeddings=4096, rope_theta=1000000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, hidden_act="silu"),
}


def random_weights(cfg, seed=0, std=0.02):
    g = torch.Generator().manual_seed(seed)
    c = cfg
    h, q, kv = c.hidden_size, c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
    shapes = {"model.embed_tokens.weight": (c.vocab_size, h), "model.norm.weight": (h,)}
    for i in range(c.num_hidden_layers):
        p = "model.layers.%d." % i
        shapes.update({p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
                       p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
                       p + "mlp.gate_proj.weight": (c.intermediate_size, h),
                       p + "mlp.up_proj.weight": (c.intermediate_size, h),
                       p + "mlp.down_proj.weight": (h, c.intermediate_size),
                       p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,)})
        if c.qkv_bias:
            shapes.update({p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,),
                           p + "self_attn.v_proj.bias": (kv,)})
    if not c.tie_word_embeddings:
        shapes["lm_head.weight"] = (c.vocab_size, h)
    w = {}
    for name in sorted(shapes):
        if name.endswith("norm.weight"):
            w[name] = torch.ones(shapes[name])
        else:
            w[name] = torch.randn(shapes[name], generator=g) * std
    return w


def bench(dec, prompt_len, decode_len, reps):
    torch.manual_seed(0)
    V = dec.c.vocab_size
    prompt = torch.randint(0, V, (1, prompt_len))
    # Prefill: the whole prompt through the model, logits of the last position (median of reps).
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        dec.forward(prompt, [None] * dec.c.num_hidden_layers, last_only=True)
        times.append(time.perf_counter() - t0)
    prefill = sorted(times[1:])[len(times[1:]) // 2]
    # Decode: greedy steps after the prompt, one token at a time with the cache.
    cache = [None] * dec.c.num_hidden_layers
    logits = dec.forward(prompt, cache, last_only=True)
    steps = []
    nxt = int(logits[0, -1].argmax())
    for _ in range(decode_len + 2):
        t0 = time.perf_counter()
        logits = dec.forward(torch.tensor([[nxt]]), cache)
        nxt = int(logits[0, -1].argmax())
        steps.append(time.perf_counter() - t0)
    steps = sorted(steps[2:])
    step = steps[len(steps) // 2]
    return {"prefill_tokens": prompt_len, "prefill_s": prefill, "prefill_tok_s": prompt_len / prefill,
            "decode_tokens": decode_len, "decode_step_s": step, "decode_tok_s": 1.0 / step}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="Hugging Face model folder")
    ap.add_argument("--shape", default="qwen2-100m", help="random-weight shape for --bench without --model")
    ap.add_argument("--tokens", help="comma-separated token ids")
    ap.add_argument("--greedy", type=int, default=0, help="also print a greedy continuation of N tokens")
    ap.add_argument("--bench", action="store_true", help="time prefill and decode")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with torch.no_grad():
        if a.model:
            dec = Decoder.load(a.model)
        else:
            cfg = Config(SHAPES[a.shape])
            dec = Decoder(cfg, random_weights(cfg))
        if a.bench:
            r = bench(dec, a.prompt, a.decode, a.reps)
            r["peer"] = "torch " + torch.__version__
            r["threads"] = a.threads
            if a.json:
                print(json.dumps(r))
            else:
                print("torch %s, %d threads: prefill %d tokens %.1f tok/s; decode %.2f ms/token = %.1f tok/s"
                      % (torch.__version__, a.threads, a.prompt, r["prefill_tok_s"], r["decode_step_s"] * 1e3,
                         r["decode_tok_s"]))
            return
        if not a.tokens:
            ap.error("--tokens or --bench is required")
        ids = [int(t) for t in a.tokens.split(",")]
        logits = dec.forward(torch.tensor([ids]))[0]
        out = {"tokens": ids, "argmax": logits.argmax(-1).tolist()}
        if a.greedy:
            out["greedy"] = dec.greedy(ids, a.greedy)
        if a.json:
            out["logits"] = logits.tolist()
            print(json.dumps(out))
        else:
            print(out)
            print(logits)


if __name__ == "__main__":
    main()
