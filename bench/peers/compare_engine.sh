#!/usr/bin/env bash
# Runs `wick bench engine --json` and the PyTorch peer (engine_torch.py) one after the other in
# this one run, on this machine, and prints a side-by-side table with wick/torch per case.
#
#   bash bench/peers/compare_engine.sh [--quick] [--min-time SEC]
#
# WICK: the wick binary (default build/tools/wick/wick). PYTHON: a python3 with torch (default:
# the first of python3, /usr/bin/python3 that imports torch). OpenBLAS is forced to its AVX-512
# kernels (OPENBLAS_CORETYPE=SkylakeX) unless already set: see engine_torch.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

WICK=${WICK:-build/tools/wick/wick}
if [ ! -x "$WICK" ]; then
  echo "compare_engine: $WICK not found; build first (cmake --build build --target wick_cli)" >&2
  exit 1
fi
if [ -z "${PYTHON:-}" ]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
if [ -z "${PYTHON:-}" ]; then
  echo "compare_engine: no python3 with torch found (Debian: apt-get install python3-torch)" >&2
  exit 1
fi
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}

tmp=$(mktemp -d /tmp/wick-compare.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "running wick bench engine --json $* ..." >&2
"$WICK" bench engine --json "$@" > "$tmp/wick.jsonl"
echo "running engine_torch.py $* ..." >&2
"$PYTHON" bench/peers/engine_torch.py "$@" > "$tmp/torch.jsonl"

python3 - "$tmp/wick.jsonl" "$tmp/torch.jsonl" <<'PY'
import json, sys

def load(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line:
            r = json.loads(line)
            out[r["name"]] = r
    return out

wick, torch = load(sys.argv[1]), load(sys.argv[2])
# wick entry -> the torch entry doing the same work (torch on CPU is eager and unfused).
pairs = [
    ("lora_linear/fused", "torch/lora_linear"),
    ("lora_linear/unfused_lazy", "torch/lora_linear"),
    ("lora_linear/unfused_eager", "torch/lora_linear"),
    ("lora_linear/fused_eager", "torch/lora_linear"),
    ("lora_delta/lazy", "torch/lora_delta"),
    ("lora_delta/eager", "torch/lora_delta"),
    ("softmax/4x16x1024", "torch/softmax/4x16x1024"),
    ("rms_norm/4x16x1024", "torch/rms_norm/4x16x1024"),
    ("matmul/1024/engine", "torch/matmul/1024"),
]
print(f"{'case':<28} {'wick µs':>10} {'torch µs':>10} {'wick/torch':>11}")
print("-" * 62)
for w, t in pairs:
    if w not in wick or t not in torch:
        continue
    a, b = wick[w]["median_us"], torch[t]["median_us"]
    print(f"{w:<28} {a:>10.1f} {b:>10.1f} {a / b:>10.2f}x")
print("\n(medians; wick/torch < 1 means wick is faster)")
others = [r for n, r in wick.items() if n not in {p[0] for p in pairs}]
if others:
    print("\nwick-only entries:")
    for r in others:
        extra = f"  ({r['ratio']:.3f}x of {r['baseline']})" if r.get('ratio') is not None else ""
        print(f"  {r['name']:<40} {r['median_us']:>10.1f} µs{extra}")
PY
