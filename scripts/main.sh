#!/usr/bin/env bash
# The main job: installs dependencies, builds wick (Release), runs the LoRA engine example and
# the engine benchmark. (When LoRA fine-tuning lands, this runs a fine-tuning job instead.)
#
#   bash scripts/main.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS=${JOBS:-2}
BUILD=${BUILD_DIR:-build}
START=$SECONDS

banner() { printf '\n==================== %s ====================\n' "$1"; }

banner "dependencies"
bash scripts/install-deps.sh

banner "release build ($BUILD/)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$JOBS" --target wick_cli example_lora_engine

banner "example: LoRA linear layer on the engine (examples/lora_engine.cpp)"
"$BUILD"/examples/example_lora_engine

banner "wick bench engine"
"$BUILD"/tools/wick/wick --version
"$BUILD"/tools/wick/wick bench engine

printf '\n==================== done in %dm%02ds ====================\n' \
  $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60))
