#!/usr/bin/env python3
"""Times the Rust `tokenizers` library (python binding) on the corpus of `wick bench tokenize`,
with the same entries and the same JSON line format, so the two can be compared side by side:

    ./build/tools/wick/wick bench tokenize --write-text /tmp/corpus.txt --threads 16 --json
    python3 bench/peers/tokenize_hf.py --text /tmp/corpus.txt --threads 16 --json

Single-thread entries run with RAYON_NUM_THREADS=1 (set before the library is imported) so that
encode_batch stays on one thread; encode_batch_mt uses a second process with the thread count
given. Tokenizers default to .cache/tokenizers/{qwen3,llama3,gemma3}/tokenizer.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def measure(fn, min_time, min_iters, warmup=1):
    for _ in range(warmup):
        fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < min_iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
        if len(samples) >= 1000:
            break
    samples.sort()

    def pct(p):
        k = (len(samples) - 1) * p
        lo = int(k)
        hi = min(lo + 1, len(samples) - 1)
        return samples[lo] + (samples[hi] - samples[lo]) * (k - lo)

    return {"median_us": statistics.median(samples), "p10_us": pct(0.1), "p90_us": pct(0.9),
            "iters": len(samples)}


def report(name, timing, mb, tokens, as_json, baseline=None, results=None):
    s = timing["median_us"] * 1e-6
    row = {"name": name, **timing}
    if baseline and results and baseline in results:
        row["baseline"] = baseline
        row["ratio"] = timing["median_us"] / results[baseline]["median_us"]
    row.update({"mb_per_s": mb / s, "tokens_per_s": tokens / s, "tokens": tokens})
    if as_json:
        print(json.dumps(row), flush=True)
    else:
        extra = f"mb_per_s={row['mb_per_s']:.2f}; tokens_per_s={row['tokens_per_s']:.4g}"
        print(f"{name:<44} {timing['median_us']:11.1f} {timing['p10_us']:11.1f} "
              f"{timing['p90_us']:11.1f} {timing['iters']:8d}  {extra}", flush=True)
    if results is not None:
        results[name] = row


def run(args, mode):
    import tokenizers  # after RAYON_NUM_THREADS is set

    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    mb = len(text.encode("utf-8")) / 1e6
    min_time, min_iters = (0.2, 2) if args.quick else (2.0, 5)
    results = {}
    for path in args.tokenizer:
        name = "tokenize_hf/" + os.path.basename(os.path.dirname(os.path.abspath(path)))
        tok = tokenizers.Tokenizer.from_file(path)
        if mode == "mt":
            n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
            t = measure(lambda: tok.encode_batch(lines, add_special_tokens=False), min_time, min_iters)
            report(name + "/encode_batch_mt", t, mb, n, args.json)
            continue
        ids = tok.encode(text, add_special_tokens=False).ids
        t = measure(lambda: tok.encode(text, add_special_tokens=False), min_time, min_iters)
        report(name + "/encode_text_1t", t, mb, len(ids), args.json, results=results)
        n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
        t = measure(lambda: tok.encode_batch(lines, add_special_tokens=False), min_time, min_iters)
        report(name + "/encode_batch_1t", t, mb, n, args.json, results=results)
        t = measure(lambda: tok.decode(ids, skip_special_tokens=False), min_time, min_iters)
        report(name + "/decode_1t", t, mb, len(ids), args.json, results=results)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, help="corpus written by wick bench tokenize --write-text")
    p.add_argument("--tokenizer", action="append", help="tokenizer.json (repeatable)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for encode_batch_mt")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--quick", action="store_true", help="short runs")
    p.add_argument("--mode", choices=["1t", "mt", "both"], default="both", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.tokenizer:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        args.tokenizer = [os.path.join(root, ".cache", "tokenizers", n, "tokenizer.json")
                          for n in ("qwen3", "llama3", "gemma3")]
        args.tokenizer = [t for t in args.tokenizer if os.path.isfile(t)]
    if not args.tokenizer:
        sys.exit("no tokenizer.json found: pass --tokenizer or run scripts/fetch-tokenizers.sh")
    if args.mode != "both":
        run(args, args.mode)
        return
    # Each thread setting in its own process: rayon reads RAYON_NUM_THREADS once.
    base = [sys.executable, os.path.abspath(__file__), "--text", args.text]
    for t in args.tokenizer:
        base += ["--tokenizer", t]
    if args.json:
        base.append("--json")
    if args.quick:
        base.append("--quick")
    env1 = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    subprocess.run(base + ["--mode", "1t"], env=env1, check=True)
    envn = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="true")
    subprocess.run(base + ["--mode", "mt"], env=envn, check=True)


if __name__ == "__main__":
    main()
