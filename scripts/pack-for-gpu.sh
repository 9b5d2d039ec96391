#!/usr/bin/env bash
# Packs a CUDA build of wick (built here, where the dependencies are installed) for a GPU machine
# that has the CUDA runtime but none of wick's other libraries: the library, the named programs
# and every shared library they load except the C runtime's and CUDA's own.
#
#   bash scripts/pack-for-gpu.sh BUILD_DIR OUT.tar.xz PROGRAM...
#
# On the GPU machine, from the repository root:
#   mkdir -p /tmp/wick && tar -xJf OUT.tar.xz -C /tmp/wick && export LD_LIBRARY_PATH=/tmp/wick/lib
#   mkdir -p "$(dirname "$BUILD_ROOT")" && ln -sfn "$PWD" "$BUILD_ROOT"  # tests find fixtures by path
# BUILD_ROOT (printed at the end) is the source path the programs were built with.
set -euo pipefail
build=$1 out=$2
shift 2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/bin"
for p in "$@"; do cp "$build/$p" "$stage/bin/"; done
cp -P "$build"/src/libwick.so* "$stage/lib/"
# Libraries to carry: whatever ldd resolves, minus glibc, the compiler runtime and CUDA.
ldd "$build"/src/libwick.so "$stage"/bin/* | awk '/=> \// {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas[^/]*|libnvrtc[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
tar -cJf "$out" -C "$stage" lib bin
echo "packed $(du -h "$out" | cut -f1) into $out; BUILD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
