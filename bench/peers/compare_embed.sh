#!/usr/bin/env bash
# Runs `wick bench embed --json` and the PyTorch peer (embed_torch.py --bench --json) one after
# the other on this machine (CPU, 2 threads each), --rounds times alternating, and prints docs/s
# side by side with the ratio: from the median time of the best round, and from the best p10.
# (On a shared machine other processes only ever slow a run down; the best of several rounds is
# the figure least disturbed by them.)
#
#   bash bench/peers/compare_embed.sh [--quick] [--rounds N] [--shape bert-base|minilm-l6] [--dtype f32|bf16]
#
# WICK: the wick binary (default build/tools/wick/wick). PYTHON: a python3 with torch (default:
# the first of python3, /usr/bin/python3 that imports torch). OpenBLAS is forced to its AVX-512
# kernels (OPENBLAS_CORETYPE=SkylakeX) unless already set: see engine_torch.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

WICK=${WICK:-build/tools/wick/wick}
ARGS=()
WARGS=()
ROUNDS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ARGS+=(--quick); shift ;;
    --shape) ARGS+=(--shape "$2"); shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --dtype) WARGS+=(--dtype "$2"); shift 2 ;;
    *) echo "compare_embed: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ! -x "$WICK" ]; then
  echo "compare_embed: $WICK not found; build first (cmake --build build --target wick_cli)" >&2
  exit 1
fi
if [ -z "${PYTHON:-}" ]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
if [ -z "${PYTHON:-}" ]; then
  echo "compare_embed: no python3 with torch found (Debian: apt-get install python3-torch)" >&2
  exit 1
fi
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}

w=""
t=""
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  w+=$("$WICK" bench embed --json "${ARGS[@]}" "${WARGS[@]}")$'\n'
  t+=$("$PYTHON" bench/peers/embed_torch.py --bench --json "${ARGS[@]}")$'\n'
done
echo "after: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$w" "$t" <<'PY'
import json, sys
def best(text):
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        k = r["shape"] + " batch " + str(r["batch"])
        b = out.setdefault(k, {"median_s": r["median_s"], "p10_s": r["p10_s"], "peer": r.get("peer", ""),
                               "dtype": r.get("dtype", "f32")})
        b["median_s"] = min(b["median_s"], r["median_s"])
        b["p10_s"] = min(b["p10_s"], r["p10_s"])
    return out
w, t = best(sys.argv[1]), best(sys.argv[2])
peer = next(iter(t.values()))["peer"] if t else "torch"
dtype = next(iter(w.values()))["dtype"] if w else "f32"
print(f"docs/s: wick ({dtype}) vs {peer} (f32); median of the best round, and best p10")
print(f"{'work':<22} {'wick':>10} {'peer':>10} {'ratio':>7}   {'wick p10':>10} {'peer p10':>10} {'ratio':>7}")
for k in w:
    if k in t:
        n = int(k.rsplit(" ", 1)[1])
        a, b = n / w[k]["median_s"], n / t[k]["median_s"]
        c, d = n / w[k]["p10_s"], n / t[k]["p10_s"]
        print(f"{k:<22} {a:>10.1f} {b:>10.1f} {a / b:>6.2f}x   {c:>10.1f} {d:>10.1f} {c / d:>6.2f}x")
PY
