#!/usr/bin/env python3
"""Summarises a kernel_trace.cpp CSV: the graph replayed most often, replay by replay.

For each kernel name: how many run in one replay, their mean duration, and the mean time from
the previous kernel's end to their start (negative where they overlap it). Then the first
and last kernels of the median replay, one line each, to show a layer's sequence, and what ran
between it and the replays before and after it (copies, sets, kernels outside the graph)."""
import collections
import csv
import statistics
import sys


def main(path, shown=16):
    everything = sorted((int(r["start_ns"]), int(r["end_ns"]), int(r["graph"]), r["kernel"], int(r["stream"]))
                        for r in csv.DictReader(open(path)))
    rows = [r[:4] for r in everything if not r[3].startswith(("memcpy_", "memset_"))]
    graphs = collections.Counter(g for _, _, g, _ in rows if g)
    if not graphs:
        sys.exit(f"{path}: no kernel ran inside a CUDA graph")
    graph = graphs.most_common(1)[0][0]
    # A replay ends where something outside the graph runs on its stream (the copies between
    # replays) or the GPU sits idle for more than 10 us.
    stream = next(r[4] for r in everything if r[2] == graph)
    replays, cur = [], []
    for r in everything:
        if r[4] != stream:
            continue
        if r[2] != graph:
            if cur:
                replays.append(cur)
            cur = []
            continue
        if cur and r[0] - max(p[1] for p in cur) > 10_000:
            replays.append(cur)
            cur = []
        cur.append(r[:4])
    if cur:
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

    def show(label, k):
        stream = f"  (stream {k[4]})" if len(k) > 4 else ""
        print(f"  {label:>4} {(k[0] - t0) / 1e3:8.2f} .. {(k[1] - t0) / 1e3:8.2f} {(k[1] - k[0]) / 1e3:7.2f}  {k[3]}{stream}")

    # What ran on the GPU between this replay and its neighbours, outside the graph.
    first = everything.index(next(r for r in everything if r[:4] == med[0]))
    last = everything.index(next(r for r in everything if r[:4] == med[-1]))
    before = first
    while before > 0 and everything[before - 1][2] != graph:
        before -= 1
    after = last + 1
    while after < len(everything) and everything[after][2] != graph:
        after += 1
    for k in everything[before:first]:
        show("pre", k)
    for i, k in enumerate(med):
        if i < shown or i >= len(med) - shown // 2:
            show(str(i), k)
    for k in everything[last + 1:after + 1]:
        show("post", k)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
