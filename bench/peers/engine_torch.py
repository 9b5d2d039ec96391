#!/usr/bin/env python3
"""PyTorch peer of `wick bench engine`: the same work, shapes and timing method.

Prints one JSON object per line, like `wick bench engine --json`, with names prefixed
`torch/`: {"name", "median_us", "p10_us", "p90_us", "iters"[, "baseline", "ratio"]}.

Debian's python3-torch (1.13) does its GEMMs through OpenBLAS, which identifies some virtual
CPUs (this one included) as "Prescott" and then runs ~5x slower. Force the right kernels:

    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/peers/engine_torch.py [--quick]

Everything runs under torch.no_grad() (wick's engine has no autograd bookkeeping either) with
2 threads. Inputs are created before timing; every timed call returns a finished tensor (CPU
PyTorch is synchronous).
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


def percentile(sorted_samples, p):
    pos = p * (len(sorted_samples) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_samples) - 1)
    return sorted_samples[lo] + (sorted_samples[hi] - sorted_samples[lo]) * (pos - lo)


def measure(fn, min_time, min_iters, warmup):
    """Same method as wick's bench_util: warm-up, then sample until min_time and min_iters."""
    for _ in range(warmup):
        fn()
    samples = []
    total = 0.0
    while total < min_time or len(samples) < min_iters:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt * 1e6)
        total += dt
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 3),
        "p10_us": round(percentile(samples, 0.1), 3),
        "p90_us": round(percentile(samples, 0.9), 3),
        "iters": len(samples),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (noisier)")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per benchmark")
    ap.add_argument("--filter", default="", help="only names containing this text")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    if not os.environ.get("OPENBLAS_CORETYPE"):
        print("engine_torch.py: WARNING: OPENBLAS_CORETYPE is not set; OpenBLAS may mis-detect "
              "this CPU and run its GEMMs ~5x slower. Run with OPENBLAS_CORETYPE=SkylakeX "
              "(AVX-512) for a fair comparison.", file=sys.stderr)
    torch.set_num_threads(args.threads)
    print(f"engine_torch.py: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", file=sys.stderr)

    min_time = args.min_time if args.min_time is not None else (0.05 if args.quick else 0.5)
    min_iters = 5 if args.quick else 10
    warmup = 2 if args.quick else 3
    results = {}

    def run(name, fn, baseline=None, flops=None):
        full = "torch/" + name
        if args.filter and args.filter not in full:
            return
        r = {"name": full}
        r.update(measure(fn, min_time, min_iters, warmup))
        if baseline is not None and ("torch/" + baseline) in results:
            r["baseline"] = "torch/" + baseline
            r["ratio"] = round(r["median_us"] / results["torch/" + baseline]["median_us"], 4)
        if flops:
            r["gflops"] = round(flops / (r["median_us"] * 1e3), 2)
        results[full] = r
        print(json.dumps(r), flush=True)

    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # LoRA: x [4,16,512], W 512x512, r 8, alpha 16 (scale 2), as PEFT computes it.
        s = 16.0 / 8.0
        x = torch.randn(4, 16, 512, generator=g)
        w = torch.randn(512, 512, generator=g) / math.sqrt(512)
        a = torch.randn(8, 512, generator=g) / math.sqrt(512)
        b = torch.randn(512, 8, generator=g) * 0.1
        flops = 2.0 * 64 * 512 * 512 + 2 * 2.0 * 64 * 512 * 8
        run("lora_linear", lambda: F.linear(x, w) + s * F.linear(F.linear(x, a), b), flops=flops)
        run("lora_delta", lambda: s * F.linear(F.linear(x, a), b))

        # softmax and RMSNorm (HF form, written out: torch 1.13 has no fused rms_norm).
        x2 = torch.randn(4, 16, 1024, generator=g)
        gw = torch.rand(1024, generator=g) + 0.5
        run("softmax/4x16x1024", lambda: torch.softmax(x2, -1))
        run("rms_norm/4x16x1024",
            lambda: x2 * torch.rsqrt(x2.pow(2).mean(-1, keepdim=True) + 1e-6) * gw)

        # GEMM 1024^3.
        n = 1024
        ma = torch.randn(n, n, generator=g)
        mb = torch.randn(n, n, generator=g)
        mc = torch.empty(n, n)
        run("matmul/1024", lambda: torch.mm(ma, mb, out=mc), flops=2.0 * n ** 3)


if __name__ == "__main__":
    main()
