#!/usr/bin/env bash
# Runs `wick bench embed --json` and the PyTorch peer (embed_torch.py --bench --json) one after
# the other on this machine (CPU, 2 threads each) and prints docs/s side by side with the ratio.
#
#   bash bench/peers/compare_embed.sh [--quick] [--shape bert-base|minilm-l6]
#
# WICK: the wick binary (default build/tools/wick/wick). PYTHON: a python3 with torch (default:
# the first of python3, /usr/bin/python3 that imports torch). OpenBLAS is forced to its AVX-512
# kernels (OPENBLAS_CORETYPE=SkylakeX) unless already set: see engine_torch.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

WICK=${WICK:-build/tools/wick/wick}
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ARGS+=(--quick); shift ;;
    --shape) ARGS+=(--shape "$2"); shift 2 ;;
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

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
w=$("$WICK" bench embed --json "${ARGS[@]}")
t=$("$PYTHON" bench/peers/embed_torch.py --bench --json "${ARGS[@]}")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$w" "$t" <<'PY'
import json, sys
w = {r["shape"] + "/" + str(r["batch"]): r for r in map(json.loads, sys.argv[1].splitlines())}
t = {r["shape"] + "/" + str(r["batch"]): r for r in map(json.loads, sys.argv[2].splitlines())}
peer = next(iter(t.values()))["peer"] if t else "torch"
print(f"{'work':<22} {'wick docs/s':>12} {peer + ' docs/s':>22} {'wick/peer':>10}")
for k in w:
    if k in t:
        a, b = w[k]["docs_per_s"], t[k]["docs_per_s"]
        print(f"{k.replace('/', ' batch '):<22} {a:>12.1f} {b:>22.1f} {a / b:>9.2f}x")
PY
