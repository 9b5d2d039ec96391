#!/usr/bin/env python3
"""Plain-PyTorch peer of wick's BERT-family sentence embeddings: the same math as transformers'
BertModel / RobertaModel in eager mode (word + position + token-type embeddings, LayerNorm,
post-norm blocks, GELU, padded keys masked out of attention), then mean / cls / max pooling and
optional L2 normalisation as sentence-transformers does, computed in f32.

It loads a Hugging Face folder (config.json + model.safetensors) without transformers, and either
embeds token ids or times the same work as `wick bench embed`:

    /usr/bin/python3 bench/peers/embed_torch.py --model DIR --ids 2,15,9,3 [--pooling mean] [--normalize]
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/peers/embed_torch.py --bench [--quick] [--json] \
        [--shape bert-base|minilm-l6] [--threads 2]

Benchmark work (the same in `wick bench embed`): random weights of the shape; a corpus of 100
documents whose lengths cycle through 24..40 tokens (mean 32), random ids; batch 100 = the whole
corpus as one padded batch with its attention mask; batch 1 = the 32-token document alone. Each
timed run goes from token ids to mean-pooled, L2-normalised vectors, under torch.no_grad() with
2 threads (CPU PyTorch is synchronous, so every timed call returns finished tensors).

Debian's python3-torch (1.13) does its GEMMs through OpenBLAS, which identifies this virtual CPU
as "Prescott" and then runs ~5x slower: set OPENBLAS_CORETYPE=SkylakeX (see engine_torch.py).
Also imported by tests/tools/make_bert_fixtures.py as the reference when transformers is absent.
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
from decoder_torch import read_weights  # noqa: E402

SHAPES = {
    "bert-base": dict(model_type="bert", vocab_size=30522, hidden_size=768, intermediate_size=3072,
                      num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=512,
                      type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu"),
    "minilm-l6": dict(model_type="bert", vocab_size=30522, hidden_size=384, intermediate_size=1536,
                      num_hidden_layers=6, num_attention_heads=12, max_position_embeddings=512,
                      type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu"),
}


class Config:
    def __init__(self, d):
        self.model_type = d.get("model_type", "bert")
        if self.model_type not in ("bert", "roberta", "xlm-roberta"):
            raise ValueError("unsupported model_type " + self.model_type)
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_attention_heads = d["num_attention_heads"]
        self.max_position_embeddings = d.get("max_position_embeddings", 512)
        self.type_vocab_size = d.get("type_vocab_size", 2)
        self.layer_norm_eps = d.get("layer_norm_eps", 1e-12)
        self.hidden_act = d.get("hidden_act", "gelu")
        # RoBERTa numbers positions from padding_idx + 1.
        self.position_offset = d.get("pad_token_id", 1) + 1 if self.model_type != "bert" else 0


def gelu(x, act):
    if act == "gelu":
        return F.gelu(x)
    if act in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    raise ValueError("unsupported hidden_act " + act)


def strip_prefix(weights):
    """BertModel names, whether the file has them bare or under bert. / roberta. / model."""
    for p in ("bert.", "roberta.", "model."):
        if any(k.startswith(p + "embeddings.") for k in weights):
            return {k[len(p):]: v for k, v in weights.items() if k.startswith(p)}
    return dict(weights)


class Bert:
    def __init__(self, config, weights):
        self.c = config
        self.w = {k: v.float() for k, v in strip_prefix(weights).items()}

    @staticmethod
    def load(folder):
        with open(os.path.join(folder, "config.json")) as f:
            c = Config(json.load(f))
        return Bert(c, read_weights(folder))

    def lin(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def ln(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.w[name + ".weight"], self.w[name + ".bias"], self.c.layer_norm_eps)

    def forward(self, ids, attention_mask=None):
        """last_hidden_state [B, T, hidden] of ids [B, T] (right padding; mask 1 = token)."""
        c, w = self.c, self.w
        B, T = ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(B, T, dtype=torch.long)
        if c.position_offset:
            # As transformers: cumulative count of real tokens, offset by padding_idx.
            pos = torch.cumsum(attention_mask, 1) * attention_mask + (c.position_offset - 1)
        else:
            pos = torch.arange(T).unsqueeze(0).expand(B, T)
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos]
             + w["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)])
        x = self.ln(x, "embeddings.LayerNorm")
        H = c.num_attention_heads
        D = c.hidden_size // H
        # Additive mask as transformers' eager path: the dtype's minimum on padded keys.
        add = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in range(c.num_hidden_layers):
            p = "encoder.layer.%d." % i

            def heads(y):
                return y.view(B, T, H, D).transpose(1, 2)
            q = heads(self.lin(x, p + "attention.self.query"))
            k = heads(self.lin(x, p + "attention.self.key"))
            v = heads(self.lin(x, p + "attention.self.value"))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D) + add
            o = torch.matmul(torch.softmax(s, -1), v).transpose(1, 2).reshape(B, T, H * D)
            x = self.ln(self.lin(o, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = gelu(self.lin(x, p + "intermediate.dense"), c.hidden_act)
            x = self.ln(self.lin(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x


def pool(h, attention_mask, mode):
    """Sentence vectors [B, hidden] as sentence-transformers' Pooling computes them."""
    m = attention_mask.unsqueeze(-1).to(h.dtype)
    if mode == "mean":
        return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if mode == "cls":
        return h[:, 0]
    if mode == "max":
        return h.masked_fill(m == 0, -1e9).max(1).values
    raise ValueError("unknown pooling " + mode)


def normalize(v):
    return F.normalize(v, p=2, dim=1)


def pad_batch(seqs, pad_id=0):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def random_weights(c, seed=0, std=0.02):
    g = torch.Generator().manual_seed(seed)
    h, i = c.hidden_size, c.intermediate_size
    shapes = {"embeddings.word_embeddings.weight": (c.vocab_size, h),
              "embeddings.position_embeddings.weight": (c.max_position_embeddings, h),
              "embeddings.token_type_embeddings.weight": (c.type_vocab_size, h),
              "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,)}
    for l in range(c.num_hidden_layers):
        p = "encoder.layer.%d." % l
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[p + n + ".weight"] = (h, h)
            shapes[p + n + ".bias"] = (h,)
        shapes[p + "intermediate.dense.weight"] = (i, h)
        shapes[p + "intermediate.dense.bias"] = (i,)
        shapes[p + "output.dense.weight"] = (h, i)
        shapes[p + "output.dense.bias"] = (h,)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + n + ".weight"] = (h,)
            shapes[p + n + ".bias"] = (h,)
    w = {}
    for name in sorted(shapes):
        if name.endswith("LayerNorm.weight"):
            w[name] = torch.ones(shapes[name])
        elif name.endswith(".bias"):
            w[name] = torch.zeros(shapes[name])
        else:
            w[name] = torch.randn(shapes[name], generator=g) * std
    return w


def bench_corpus(vocab, n=100):
    """The benchmark documents: lengths 24 + (7·i mod 17) (mean 32), ids as `wick bench embed`."""
    docs = []
    for d in range(n):
        length = 24 + (7 * d) % 17
        docs.append([(d * 7919 + t * 104729 + 13) % (vocab - 1000) + 1000 for t in range(length)])
    return docs


def measure(fn, min_time, min_iters, warmup):
    for _ in range(warmup):
        fn()
    samples = []
    total = 0.0
    while total < min_time or len(samples) < min_iters:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt)
        total += dt
    samples.sort()
    pos = 0.1 * (len(samples) - 1)  # p10 as wick's bench_util interpolates it
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(samples) - 1)
    p10 = samples[lo] + (samples[hi] - samples[lo]) * (pos - lo)
    return statistics.median(samples), len(samples), p10


def run_bench(a):
    shapes = [a.shape] if a.shape else list(SHAPES)
    min_time = 1.0 if a.quick else 3.0
    for shape in shapes:
        c = Config(SHAPES[shape])
        model = Bert(c, random_weights(c))
        docs = bench_corpus(c.vocab_size)
        one = [d for d in docs if len(d) == 32][:1]
        for batch, seqs in ((1, one), (100, docs)):
            ids, mask = pad_batch(seqs)

            def work():
                return normalize(pool(model.forward(ids, mask), mask, "mean"))
            med, iters, p10 = measure(work, min_time, 3 if a.quick else 5, 1 if a.quick else 2)
            r = {"name": "torch/%s/batch%d" % (shape, batch), "shape": shape, "batch": batch,
                 "tokens": int(mask.sum()), "padded_tokens": int(mask.numel()), "median_s": med, "p10_s": p10,
                 "docs_per_s": batch / med, "iters": iters, "threads": torch.get_num_threads(),
                 "peer": "torch %s" % torch.__version__}
            if a.json:
                print(json.dumps(r), flush=True)
            else:
                print("%-26s %8.2f ms  %9.1f docs/s  (%d iters)" % (r["name"], med * 1e3, r["docs_per_s"], iters),
                      flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="Hugging Face folder (config.json + model.safetensors)")
    ap.add_argument("--ids", action="append", help="comma-separated token ids of one input (repeat for a batch)")
    ap.add_argument("--pooling", default="mean", choices=["mean", "cls", "max"])
    ap.add_argument("--normalize", action="store_true")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--shape", choices=list(SHAPES), help="benchmark only this shape")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.bench and not os.environ.get("OPENBLAS_CORETYPE"):
        print("embed_torch.py: WARNING: OPENBLAS_CORETYPE is not set; OpenBLAS may mis-detect this CPU "
              "and run ~5x slower (use OPENBLAS_CORETYPE=SkylakeX)", file=sys.stderr)
    with torch.no_grad():
        if a.bench:
            run_bench(a)
            return
        if not a.model or not a.ids:
            ap.error("--model and --ids are required without --bench")
        model = Bert.load(a.model)
        ids, mask = pad_batch([[int(t) for t in s.split(",")] for s in a.ids])
        v = pool(model.forward(ids, mask), mask, a.pooling)
        if a.normalize:
            v = normalize(v)
        for row in v.tolist():
            print(json.dumps(row))


if __name__ == "__main__":
    main()
