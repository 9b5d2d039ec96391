#!/usr/bin/env python3
"""GPU peers of `wick bench embed`: transformers' BertModel and sentence-transformers on the same
card, for the BERT-base (110M) and MiniLM-L6 (22M) shapes with random weights.

Work, as in `wick bench embed` and embed_torch.py: a corpus of 100 documents whose lengths cycle
through 24..40 tokens (mean 32); batch 100 = the whole corpus as one padded batch, batch 1 = the
32-token document alone; ids -> mean-pooled, L2-normalised vectors. Each timed call ends with
torch.cuda.synchronize() (and sentence-transformers returns host arrays), so the work is done.

  transformers/<shape>/<dtype>/batch<N>   BertModel(input_ids, attention_mask) + pooling from
                                          token ids (tokenization not timed), SDPA attention
  st/<shape>/<dtype>/batch<N>             SentenceTransformer.encode(texts, batch_size=N,
                                          normalize_embeddings=True): texts whose tokenization
                                          gives the same ids (one vocabulary word per id), so this
                                          figure includes tokenization, as a user pays it

Run on the GPU machine (nothing is downloaded; the random models are written to a temp folder):

    python3 bench/peers/embed_gpu.py [--quick] [--json] [--dtype fp32,fp16,bf16] [--shape bert-base]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from embed_torch import SHAPES, bench_corpus  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def measure(fn, min_time, min_iters, warmup):
    for _ in range(warmup):
        fn()
    samples, total = [], 0.0
    while total < min_time or len(samples) < min_iters:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt)
        total += dt
    return statistics.median(samples), len(samples)


def write_model(folder, shape):
    """A random BertModel of the shape plus a WordPiece tokenizer whose vocabulary is one word per id
    ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", then w5, w6, ...), so that "w1005 w2070" tokenizes
    to [CLS] 1005 2070 [SEP]."""
    import transformers as tf
    cfg = dict(SHAPES[shape])
    cfg.pop("model_type")
    torch.manual_seed(0)
    model = tf.BertModel(tf.BertConfig(**cfg))
    model.save_pretrained(folder)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["w%d" % i for i in range(5, cfg["vocab_size"])]
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("".join(v + "\n" for v in vocab))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}, f)
    try:
        tok = tf.AutoTokenizer.from_pretrained(folder)
        tok.save_pretrained(folder)
    except Exception as e:  # a transformers without the vocab.txt conversion: build tokenizer.json directly
        print("AutoTokenizer failed (%s); using tokenizers' BertWordPieceTokenizer" % e, file=sys.stderr)
        from tokenizers.implementations import BertWordPieceTokenizer
        BertWordPieceTokenizer(os.path.join(folder, "vocab.txt"), lowercase=True).save(
            os.path.join(folder, "tokenizer.json"))
    return model


def pool_normalize(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(v.float(), p=2, dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--shape", choices=list(SHAPES))
    ap.add_argument("--dtype", default="fp32,fp16,bf16", help="comma-separated: fp32, fp16, bf16")
    ap.add_argument("--no-st", action="store_true", help="skip sentence-transformers")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("embed_gpu.py: no CUDA device")
    import transformers as tf
    dev = torch.device("cuda")
    min_time, min_iters, warmup = (0.5, 5, 3) if a.quick else (2.0, 10, 5)
    versions = "torch %s, transformers %s" % (torch.__version__, tf.__version__)
    try:
        import sentence_transformers as st
        versions += ", sentence-transformers %s" % st.__version__
    except ImportError:
        st = None
    print("embed_gpu.py: %s on %s" % (versions, torch.cuda.get_device_name()), file=sys.stderr)

    def report(name, shape, dtype, batch, med, iters):
        r = {"name": name, "shape": shape, "dtype": dtype, "batch": batch, "median_s": med,
             "docs_per_s": batch / med, "iters": iters, "device": torch.cuda.get_device_name(), "peer": versions}
        print(json.dumps(r) if a.json else "%-34s %9.3f ms  %10.1f docs/s  (%d iters)" %
              (name, med * 1e3, batch / med, iters), flush=True)

    for shape in ([a.shape] if a.shape else list(SHAPES)):
        docs = bench_corpus(SHAPES[shape]["vocab_size"])
        one = [d for d in docs if len(d) == 32][:1]
        with tempfile.TemporaryDirectory() as folder:
            base = write_model(folder, shape)
            for dname in a.dtype.split(","):
                dt = DTYPES[dname]
                model = base.to(dev, dt).eval()
                for batch, seqs in ((1, one), (100, docs)):
                    T = max(len(s) for s in seqs)
                    ids = torch.zeros(len(seqs), T, dtype=torch.long)
                    mask = torch.zeros(len(seqs), T, dtype=torch.long)
                    for i, s in enumerate(seqs):
                        ids[i, :len(s)] = torch.tensor(s)
                        mask[i, :len(s)] = 1
                    ids, mask = ids.to(dev), mask.to(dev)

                    def work():
                        with torch.inference_mode():
                            v = pool_normalize(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
                        torch.cuda.synchronize()
                        return v
                    med, it = measure(work, min_time, min_iters, warmup)
                    report("transformers/%s/%s/batch%d" % (shape, dname, batch), shape, dname, batch, med, it)
                if st is None or a.no_st:
                    continue
                # No modules.json: sentence-transformers builds Transformer + mean Pooling itself.
                stm = st.SentenceTransformer(folder, device="cuda").to(dt)
                for batch, seqs in ((1, one), (100, docs)):
                    texts = [" ".join("w%d" % t for t in s) for s in seqs]

                    def st_work():
                        return stm.encode(texts, batch_size=batch, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
                    med, it = measure(st_work, min_time, min_iters, warmup)
                    report("st/%s/%s/batch%d" % (shape, dname, batch), shape, dname, batch, med, it)
                del stm
            base.cpu()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
