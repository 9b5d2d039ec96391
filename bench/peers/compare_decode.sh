#!/usr/bin/env bash
# Runs `wick bench decode --json` and the PyTorch peer (decoder_torch.py --bench --json) on the
# same ~100M Qwen2 shape one after the other, on this machine, and prints them side by side with
# the memory-bandwidth bound that wick measured in the same run.
#
#   bash bench/peers/compare_decode.sh [--prompt N] [--steps N]
#
# WICK: the wick binary (default build/tools/wick/wick). PYTHON: a python3 with torch (default:
# the first of python3, /usr/bin/python3 that imports torch). OpenBLAS is forced to its AVX-512
# kernels (OPENBLAS_CORETYPE=SkylakeX) unless already set: see engine_torch.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

WICK=${WICK:-build/tools/wick/wick}
PROMPT=128
STEPS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --prompt) PROMPT=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    *) echo "compare_decode: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ! -x "$WICK" ]; then
  echo "compare_decode: $WICK not found; build first (cmake --build build --target wick_cli)" >&2
  exit 1
fi
if [ -z "${PYTHON:-}" ]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
if [ -z "${PYTHON:-}" ]; then
  echo "compare_decode: no python3 with torch found (Debian: apt-get install python3-torch)" >&2
  exit 1
fi
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
w=$("$WICK" bench decode --json --prompt "$PROMPT" --steps "$STEPS")
t=$("$PYTHON" bench/peers/decoder_torch.py --bench --json --prompt "$PROMPT" --decode "$STEPS")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$w" "$t" <<'PY'
import json, sys
w, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"model: {w['model']}, {w['parameters'] / 1e6:.1f}M parameters, {w['weight_bytes'] / 2**20:.0f} MiB f32")
print(f"memory: copy {w['copy_bandwidth_gbs']:.1f} GB/s, read {w['read_bandwidth_gbs']:.1f} GB/s; "
      f"decode bound {w['decode_bound_tok_s']:.1f} tok/s")
print(f"{'':<22} {'wick':>10} {t['peer']:>16} {'wick/peer':>10}")
print(f"{'prefill tok/s':<22} {w['prefill_tok_s']:>10.1f} {t['prefill_tok_s']:>16.1f} {w['prefill_tok_s'] / t['prefill_tok_s']:>9.2f}x")
print(f"{'decode tok/s':<22} {w['decode_tok_s']:>10.1f} {t['decode_tok_s']:>16.1f} {w['decode_tok_s'] / t['decode_tok_s']:>9.2f}x")
print(f"decode: wick at {100 * w['decode_fraction_of_bound']:.0f}% of the bandwidth bound, "
      f"torch at {100 * w['decode_fraction_of_bound'] * t['decode_tok_s'] / w['decode_tok_s']:.0f}%")
PY
