#!/usr/bin/env bash
# Rebuilds the embedded base model models/wick-kjv/ from nothing but Debian's bible-kjv package:
# wick trains its BPE tokenizer and then the model itself (--full from random weights).
# These are the exact commands that made the committed model; see models/wick-kjv/README.md.
#
#   bash scripts/demo/make-base-model.sh            (uses build/tools/wick/wick)
#
# Environment: WICK (the wick binary), WORK (scratch folder, default .cache/kjv), EPOCHS (default
# 2), THREADS (OMP_NUM_THREADS for the run; default: all cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
WICK=${WICK:-build/tools/wick/wick}
WORK=${WORK:-.cache/kjv}
EPOCHS=${EPOCHS:-2}
mkdir -p "$WORK"

if ! command -v bible >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bible-kjv
fi
# The whole King James Version (public domain), one verse a line under each chapter heading.
bible -l4000 gen1:1-rev22:21 > "$WORK/kjv.txt"
python3 scripts/demo/make_data.py --corpus "$WORK/kjv.txt" --text "$WORK/verses.txt" \
  --pretrain "$WORK/pretrain.jsonl" --demo data/demo

# Byte-level BPE with 4096 tokens; <|endoftext|> (0) ends documents and pads, ChatML tokens for chat.
"$WICK" tokenizer train --input "$WORK/verses.txt" --vocab-size 4096 \
  --special-tokens "<|endoftext|>,<|im_start|>,<|im_end|>" --chat-template chatml --output "$WORK/init"
cp scripts/demo/base-config.json "$WORK/init/config.json"
cp scripts/demo/generation_config.json "$WORK/init/generation_config.json"

# Pretraining: every weight, from random initialisation, on running scripture.
"$WICK" train --model "$WORK/init" --init-random --full \
  --data "$WORK/pretrain.jsonl" --valid "$WORK/pretrain-valid.jsonl" --output "$WORK/base" \
  --epochs "$EPOCHS" --batch-size 16 --max-seq-len 512 --lr 2e-3 --lr-schedule cosine \
  --warmup-steps 100 --min-lr 1e-4 --weight-decay 0.1 --max-grad-norm 1.0 --seed 0 \
  --eval-every 100 --save-every 100 --save-dtype bf16 ${RESUME:+--resume "$WORK/base"}

mkdir -p models/wick-kjv
for f in model.safetensors config.json tokenizer.json tokenizer_config.json generation_config.json metrics.jsonl; do
  cp "$WORK/base/$f" models/wick-kjv/
done
"$WICK" plot --metrics models/wick-kjv/metrics.jsonl --output models/wick-kjv/loss.svg
ls -la models/wick-kjv
