#!/usr/bin/env python3
"""Summarises a kernel_trace.cpp CSV: the graph replayed most often, replay by replay.

For each kernel name: how many run in one replay, their mean duration, and the mean time from
the previous kernel's end to their start (negative where they overlap it). Then the first
and last kernels of the median replay, one line each, to show a layer's sequence."""
import collections
import csv
import statistics
import sys


def main(path, shown=16):
    rows = [(int(r["start_ns"]), int(r["end_ns"]), int(r["graph"]), r["kernel"]) for r in csv.DictReader(open(path))]
    graphs = collections.Counter(g for _, _, g, _ in rows if g)
    if not graphs:
        sys.exit(f"{path}: no kernel ran inside a CUDA graph")
    graph = graphs.most_common(1)[0][0]
    ks = sorted(r for r in rows if r[2] == graph)
    # A replay starts where the GPU sat idle for more than 10 µs (the host reads the token).
    replays, cur = [], [ks[0]]
    for prev, k in zip(ks, ks[1:]):
        if k[0] - max(p[1] for p in cur) > 10_000:
            replays.append(cur)
            cur = []
        cur.append(k)
    replays.append(cur)
    size = collections.Counter(len(r) for r in replays).most_common(1)[0][0]
    replays = [r for r in replays if len(r) == size][1:]  # the first may still be warming up
    spans = [r[-1][1] - r[0][0] for r in replays]
    print(f"graph {graph}: {len(replays)} replays of {size} kernels, "
          f"median {statistics.median(spans) / 1e3:.1f} us (min {min(spans) / 1e3:.1f})")
    per = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for r in replays:
        for i, k in enumerate(r):
            e = per[k[3]]
            e[0] += 1
            e[1] += k[1] - k[0]
            e[2] += k[0] - r[i - 1][1] if i else 0
    n = len(replays)
    print(f"{'kernel':40s} {'per replay':>10s} {'mean us':>8s} {'gap us':>8s} {'total us':>9s}")
    for name, (c, d, g) in sorted(per.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:40s} {c / n:10.0f} {d / c / 1e3:8.2f} {g / c / 1e3:8.2f} {d / n / 1e3:9.1f}")
    med = sorted(replays, key=lambda r: r[-1][1] - r[0][0])[len(replays) // 2]
    t0 = med[0][0]
    for i, k in enumerate(med):
        if i < shown or i >= len(med) - shown // 2:
            print(f"  {i:4d} {(k[0] - t0) / 1e3:8.2f} .. {(k[1] - t0) / 1e3:8.2f} {(k[1] - k[0]) / 1e3:7.2f}  {k[3]}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
