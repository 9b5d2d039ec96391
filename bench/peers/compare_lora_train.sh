#!/usr/bin/env bash
# LoRA training throughput, wick vs PyTorch on this machine (2 threads each), run back to back on
# the same shapes: batch 8 x 128 random tokens, LoRA r 16 on all 7 linear layers of every block,
# AdamW, clipping at 1.0. Models: the embedded models/wick-kjv (5.8M) and a ~100M Qwen2 shape with
# random weights. wick's figure is the median tokens/s of `wick train` steps after the first two
# (the first traces the compiled step); the peer's is measured the same way.
#
#   bash bench/peers/compare_lora_train.sh [STEPS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
STEPS=${1:-8}
WICK=${WICK:-build/tools/wick/wick}
TMP=$(mktemp -d /tmp/wick-lora-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive OPENBLAS_CORETYPE=SkylakeX
/usr/bin/python3 - "$TMP" <<'PY'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1] + "/data.jsonl", "w") as f:
    for _ in range(64):
        f.write(json.dumps({"input_ids": [r.randrange(3, 4096) for _ in range(128)]}) + "\n")
cfg = dict(model_type="qwen2", vocab_size=32000, hidden_size=768, intermediate_size=2048,
           num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=3,
           max_position_embeddings=4096, rope_theta=1000000.0, rms_norm_eps=1e-6,
           tie_word_embeddings=True, hidden_act="silu")
import os
os.makedirs(sys.argv[1] + "/qwen2-100m")
json.dump(cfg, open(sys.argv[1] + "/qwen2-100m/config.json", "w"))
PY
cp models/wick-kjv/tokenizer.json "$TMP/qwen2-100m/"

wick_run() {  # wick_run NAME MODEL [flags]
  local name=$1 model=$2
  shift 2
  "$WICK" train --model "$model" "$@" --data "$TMP/data.jsonl" --output "$TMP/out-$name" --steps "$STEPS" \
    --batch-size 8 --targets all-linear --rank 16 --alpha 32 --max-grad-norm 1.0 --no-shuffle --quiet
  /usr/bin/python3 - "$TMP/out-$name/metrics.jsonl" "$name" <<'PY'
import json, statistics, sys
rates = [json.loads(l)["tok_s"] for l in open(sys.argv[1])][2:]
print(json.dumps({"name": "wick/lora_train/" + sys.argv[2], "tok_s": statistics.median(rates)}))
PY
}
{
  wick_run wick-kjv models/wick-kjv
  /usr/bin/python3 bench/peers/lora_train_torch.py --model models/wick-kjv --steps "$STEPS"
  wick_run qwen2-100m "$TMP/qwen2-100m" --init-random
  /usr/bin/python3 bench/peers/lora_train_torch.py --shape qwen2-100m --steps "$STEPS"
} | tee "$TMP/all.jsonl"
/usr/bin/python3 - "$TMP/all.jsonl" <<'PY'
import json, sys
r = {json.loads(l)["name"]: json.loads(l)["tok_s"] for l in open(sys.argv[1]) if l.startswith("{")}
for m in ("wick-kjv", "qwen2-100m"):
    w, t = r["wick/lora_train/" + m], r["torch/lora_train/" + m]
    print(f"{m}: wick {w:.0f} tok/s, torch {t:.0f} tok/s, wick/torch {w / t:.2f}x")
PY
