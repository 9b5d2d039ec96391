#!/usr/bin/env bash
# Installs what building and testing wick need on Debian 12 (bookworm). Idempotent: when every
# package is already installed it touches nothing (no apt-get update), so reruns take a moment.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build g++   # toolchain (C++20: g++ 12)
  libdnnl-dev                             # oneDNN: CPU GEMM
  ocl-icd-opencl-dev                      # OpenCL, which Debian's dnnl-config.cmake requires
  nlohmann-json3-dev                      # JSON (configs, safetensors headers)
  libcli11-dev                            # the wick command line
  libfmt-dev                              # formatting
  libpcre2-dev pkg-config                 # Unicode regex for tokenizers (found via pkg-config)
  libutf8proc-dev                         # Unicode normalisation + categories for tokenizers
  libgtest-dev libgmock-dev               # unit tests
  libbenchmark-dev                        # micro-benchmarks
  python3                                 # helper scripts (benchmark tables, fixtures)
  clang libclang-rt-14-dev libomp-dev     # fuzzing (scripts/fuzz.sh, run briefly by test.sh):
                                          # libFuzzer + sanitizer runtimes, OpenMP for clang
)

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg -s exits 0 for a package that is known but not installed (config-files), so check the
  # status line itself.
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
