#!/usr/bin/env bash
# The main job: installs dependencies, builds the wick CLI (Release), and fine-tunes the embedded
# model models/wick-kjv (a 5.8M-parameter Qwen2-style model that wick trained from scratch on the
# King James Bible, see models/wick-kjv/README.md) with LoRA on the task in data/demo/: answer
# "Give me a verse about X." with one verse about X. Shows the model's answers before and after,
# the adapter's files and the loss curve.
#
#   bash scripts/main.sh
#
# Environment: JOBS (build parallelism, default 2), BUILD_DIR (default build), OUT_DIR (default
# out/demo-adapter), STEPS (LoRA steps, default 240).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS=${JOBS:-2}
BUILD=${BUILD_DIR:-build}
OUT=${OUT_DIR:-out/demo-adapter}
STEPS=${STEPS:-240}
MODEL=models/wick-kjv
START=$SECONDS
# libgomp's spinning workers fight each other on a busy 2-core machine; passive waiting does not.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

banner() { printf '\n==================== %s ====================\n' "$1"; }

banner "dependencies"
bash scripts/install-deps.sh

banner "release build of the wick CLI ($BUILD/)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target wick_cli
WICK="$BUILD/tools/wick/wick"
"$WICK" --version

# Two topics the adapter was trained on and two it never saw (data/demo/valid.jsonl).
PROMPTS=("Give me a verse about water." "Tell me a verse that speaks of love."
         "Quote a verse about horse." "What does scripture say about ship?")
ask() {  # ask LABEL [extra generate flags...]
  local label=$1
  shift
  for p in "${PROMPTS[@]}"; do
    printf '\n[%s] user: %s\n[%s] model: ' "$label" "$p" "$label"
    "$WICK" generate --model "$MODEL" --chat --prompt "$p" --max-tokens 48 --seed 7 --skip-special-tokens "$@" 2>/dev/null
    echo
  done
}

banner "before: the base model answers with whatever scripture comes next"
"$WICK" info --model "$MODEL" | head -n 8
ask base

banner "LoRA fine-tuning ($STEPS steps, all linear layers, rank 16)"
rm -rf "$OUT"
"$WICK" train --model "$MODEL" --data data/demo/train.jsonl --valid data/demo/valid.jsonl --output "$OUT" \
  --targets all-linear --rank 16 --alpha 32 --lr 3e-3 --lr-schedule cosine --warmup-steps 10 \
  --steps "$STEPS" --batch-size 8 --mask-prompt --eval-every 80 --save-every 120 --seed 0

banner "after: the same prompts with the adapter"
ask lora --adapter "$OUT"

banner "the adapter ($OUT)"
ls -la "$OUT"
"$WICK" adapter info "$OUT"
"$WICK" plot --metrics "$OUT/metrics.jsonl" --output "$OUT/loss.svg" --title "LoRA on data/demo (wick-kjv)"
echo "loss curve: $OUT/loss.svg"

printf '\n==================== done in %dm%02ds ====================\n' \
  $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60))
