#!/usr/bin/env bash
# Issue 6's training benchmark, side by side on one GPU: transformers + PEFT
# (lora_train_gpu.py, which also writes the random Qwen2.5-0.5B-shaped model and the token
# batches) and `wick train --device cuda` on the same model and data. LoRA r 8, alpha 16, AdamW
# lr 1e-4, no clipping or weight decay, batch 8 x 512; q,v and then all 7 linear layers.
#
#   bash bench/peers/compare_lora_train_gpu.sh [WICK_BINARY] [STEPS] [HEAD_DIM]
#
# HEAD_DIM 128 (default 64) runs the same width as 7 heads of 128 (see lora_train_gpu.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
WICK=${1:-build/tools/wick/wick}
STEPS=${2:-10}
HEAD_DIM=${3:-64}
WARMUP=3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PYTHONUNBUFFERED=1 python3 bench/peers/lora_train_gpu.py --out "$work/model" --steps "$STEPS" --warmup "$WARMUP" --head-dim "$HEAD_DIM"
prompt=$(python3 -c "import json; print(','.join(map(str, json.loads(open('$work/model/data.jsonl').readline())['input_ids'][:16])))")
"$WICK" generate --model "$work/model" --device cuda --tokens "$prompt" --max-tokens 128 --ignore-eos --json |
  tail -1 | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({'peer': 'wick', 'work': 'decode_b1 (generate)', 'tok_s': r['decode_tok_s']}))"
# Forward of 8 x 512 (prefill of the last logits) and the decode loop against the GPU's copy bound.
"$WICK" bench decode --model "$work/model" --device cuda --batch 8 --prompt 512 --steps 64 --json |
  python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({'peer': 'wick', 'work': 'forward', 'tok_s': r['prefill_tok_s'], 'decode_tok_s': r['decode_tok_s'], 'decode_fraction_of_bound': r['decode_fraction_of_bound'], 'copy_bandwidth_gbs': r['copy_bandwidth_gbs']}))"
for targets in q_proj,v_proj all-linear; do
  out="$work/out-$targets"
  "$WICK" train --model "$work/model" --data "$work/model/data.jsonl" --output "$out" --device cuda \
    --targets "$targets" --rank 8 --alpha 16 --lr 1e-4 --max-grad-norm 0 --weight-decay 0 --batch-size 8 \
    --steps $((STEPS + WARMUP)) --no-shuffle --quiet --json > "$work/summary.json"
  python3 - "$out/metrics.jsonl" "$targets" "$WARMUP" "$work/summary.json" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steady = [r["tok_s"] for r in rows[int(sys.argv[3]):] if "tok_s" in r]
peak = json.load(open(sys.argv[4]))["peak_memory_bytes"] / 2**30
print(json.dumps({"peer": "wick", "work": "lora_" + ("qv" if sys.argv[2].startswith("q_") else "all"),
                  "tok_s": statistics.median(steady), "peak_gib": peak, "first_losses": [r["loss"] for r in rows[:3]]}))
PY
done
