#!/usr/bin/env bash
# THE test command: installs dependencies, builds and tests wick, then checks it under
# AddressSanitizer + UndefinedBehaviorSanitizer, runs each fuzz target briefly (scripts/fuzz.sh),
# checks the installed CMake package with an out-of-tree consumer, and smoke-runs the engine
# benchmark. Budget: < 30 minutes on 2 cores.
#
#   bash scripts/test.sh
#
# Environment: JOBS (default 2) build parallelism; BUILD_DIR / ASAN_BUILD_DIR (default build,
# build-asan) the build trees; WICK_TEST_SKIP_ASAN=1 skips the sanitizer build (for quick local
# iterations only; the job runs everything); WICK_TEST_SKIP_FUZZ=1 skips the fuzzing section and
# FUZZ_SECONDS (default 10) sets its run time per fuzz target.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS=${JOBS:-2}
BUILD=${BUILD_DIR:-build}
BUILD_ASAN=${ASAN_BUILD_DIR:-build-asan}
START=$SECONDS
section_start=$SECONDS

LAST_SECTION=""
banner() {
  if [ -n "$LAST_SECTION" ]; then
    printf '    (%s: %ds)\n' "$LAST_SECTION" $((SECONDS - section_start))
  fi
  section_start=$SECONDS
  LAST_SECTION=$1
  printf '\n==================== %s ====================\n' "$1"
}

banner "dependencies"
bash scripts/install-deps.sh

banner "release build ($BUILD/)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$JOBS"

banner "tokenizer files (scripts/fetch-tokenizers.sh)"
# Real tokenizer.json files for the tokenizer parity tests and benchmarks (pinned, checksummed).
bash scripts/fetch-tokenizers.sh

banner "unit tests (release)"
# Every test carries a label: cpu tests run here; cuda tests skip themselves without a GPU.
ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS"

if [ "${WICK_TEST_SKIP_ASAN:-0}" != 1 ]; then
  banner "sanitizer build ($BUILD_ASAN/: clang, ASan + UBSan, library + tests + fuzz targets)"
  # One clang tree serves the sanitizer tests and the fuzzing below (WICK_FUZZ instruments the
  # library with ASan + UBSan and libFuzzer's coverage, which the tests do not mind): the
  # builds dominate this job, and a second instrumented library was a third full build.
  # The CUDA backend and its tests are left out: no GPU here runs them, and the Release build
  # compiled both. -O1 -g1 (as ASan's own docs suggest): line tables are enough for the stack
  # traces.
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_ASAN" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWICK_FUZZ=ON \
    -DWICK_CUDA=OFF -DWICK_GPU_TESTS=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DWICK_BUILD_TOOLS=OFF
  cmake --build "$BUILD_ASAN" -j "$JOBS"

  banner "unit tests (ASan + UBSan)"
  # Leak checking stays on: LeakSanitizer runs cleanly with libgomp's thread pool and oneDNN's
  # JIT caches here (their memory stays reachable from globals, so it is not reported).
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir "$BUILD_ASAN" --output-on-failure -j "$JOBS"
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ "${WICK_TEST_SKIP_FUZZ:-0}" != 1 ]; then
  banner "fuzzing, ${FUZZ_SECONDS:-10}s per target (libFuzzer + ASan + UBSan, the sanitizer tree)"
  # A short run on the committed corpora: catches regressions in the parsers of untrusted files.
  # Longer runs: bash scripts/fuzz.sh all 600.
  FUZZ_BUILD_DIR=$([ "${WICK_TEST_SKIP_ASAN:-0}" != 1 ] && echo "$BUILD_ASAN" || echo build-fuzz) \
    bash scripts/fuzz.sh all "${FUZZ_SECONDS:-10}"
fi

banner "install + out-of-tree consumer (find_package(wick))"
PREFIX=$(mktemp -d /tmp/wick-install.XXXXXX)
trap 'rm -rf "$PREFIX"' EXIT
cmake --install "$BUILD" --prefix "$PREFIX/usr"
cmake -S tests/consumer -B "$PREFIX/consumer-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PREFIX/usr"
cmake --build "$PREFIX/consumer-build" -j "$JOBS"
"$PREFIX/consumer-build/app"

banner "wick bench engine / train / tokenize / generate --quick --json (smoke)"
"$BUILD"/tools/wick/wick --version
for suite in engine train tokenize generate; do
  "$BUILD"/tools/wick/wick bench "$suite" --quick --json | tee "$PREFIX/bench-$suite.jsonl"
  # The output must be one well-formed JSON object per line with the documented keys.
  python3 - "$PREFIX/bench-$suite.jsonl" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines, "no benchmark output"
for l in lines:
    r = json.loads(l)
    for k in ("name", "median_us", "p10_us", "p90_us", "iters"):
        assert k in r, f"missing {k} in {l}"
    assert r["median_us"] is not None and r["median_us"] > 0, l
print(f"bench smoke {sys.argv[1]}: {len(lines)} results OK")
PY
done
banner "wick generate --json (smoke, tiny fixture model)"
"$BUILD"/tools/wick/wick generate --model tests/fixtures/models/qwen2-tied --tokens 5,17,101 --max-tokens 6 \
  --temperature 0.8 --top-k 20 --seed 1 --ignore-eos --json | tee "$PREFIX/generate.jsonl"
python3 - "$PREFIX/generate.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
*tokens, last = lines
assert len(tokens) == 6 and all(set(t) == {"id", "text", "logprob"} for t in tokens), lines
assert last["tokens"] == [t["id"] for t in tokens] and last["stop_reason"] == "max_tokens", last
assert last["prefill_tok_s"] > 0 and last["decode_tok_s"] > 0, last
print("generate smoke OK")
PY
printf '    (%s: %ds)\n' "$LAST_SECTION" $((SECONDS - section_start))
printf '\n==================== all passed in %dm%02ds ====================\n' \
  $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60))
