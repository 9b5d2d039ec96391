#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/<name>_fuzz.cpp; clang, library and targets under
# ASan + UBSan, in build-fuzz/) and runs each for SECONDS on its committed seed corpus
# (fuzz/corpus/<name>/) plus a scratch corpus under build-fuzz/, so runs never touch the repo.
# Exits non-zero when any target finds a crash, sanitizer report, leak, timeout or OOM; the
# input that caused it is kept in build-fuzz/artifacts/<name>/ and its path printed.
#
#   bash scripts/fuzz.sh [TARGET|all] [SECONDS]      e.g.  bash scripts/fuzz.sh safetensors 600
#
# Environment: JOBS (default 2), FUZZ_BUILD_DIR (default build-fuzz), FUZZ_ARGS (extra libFuzzer
# flags, e.g. "-jobs=2 -workers=2").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=${1:-all}
RUN_SECONDS=${2:-60}
JOBS=${JOBS:-2}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}

bash scripts/install-deps.sh

targets=()
if [ "$TARGET" = all ]; then
  for src in fuzz/*_fuzz.cpp; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .cpp)
    targets+=("${name%_fuzz}")
  done
else
  targets=("${TARGET%_fuzz}")
  if [ ! -f "fuzz/${targets[0]}_fuzz.cpp" ]; then
    echo "fuzz: no fuzz/${targets[0]}_fuzz.cpp" >&2
    exit 2
  fi
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets in fuzz/"
  exit 0
fi

# A tree already configured for fuzzing (scripts/test.sh's sanitizer tree, with its tests) is
# used as it is; otherwise a fuzzing-only tree is configured.
if ! grep -q '^WICK_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWICK_FUZZ=ON -DWICK_CUDA=OFF -DWICK_BUILD_TESTS=OFF -DWICK_BUILD_TOOLS=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]/%/_fuzz}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  scratch="$BUILD/corpus/$t"
  artifacts="$BUILD/artifacts/$t"
  mkdir -p "$scratch" "$artifacts"
  args=(-max_total_time="$RUN_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
  # New inputs go to the first corpus folder only: the scratch one.
  corpora=("$scratch")
  [ -d "fuzz/corpus/$t" ] && corpora+=("fuzz/corpus/$t")
  echo "fuzz: $t for ${RUN_SECONDS}s (corpus: ${corpora[*]})"
  # shellcheck disable=SC2086
  if ! "$BUILD/fuzz/${t}_fuzz" "${args[@]}" ${FUZZ_ARGS:-} "${corpora[@]}" 2>"$BUILD/$t.log"; then
    tail -n 60 "$BUILD/$t.log" >&2
    echo "fuzz: $t FOUND A PROBLEM; inputs in $artifacts/: $(ls "$artifacts")" >&2
    failed+=("$t")
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$BUILD/$t.log" \
      | sed "s/^/fuzz: $t: /"
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no findings"
