#!/usr/bin/env python3
"""Writes the expected token ids and decoded strings of the Hugging Face `tokenizers` library
for every text in tests/fixtures/tokenizers/texts.jsonl, one file per tokenizer:
tests/fixtures/tokenizers/<name>_expected.json. wick's tokenizer tests compare with these.

Needs the `tokenizers` python package (no network). The real tokenizer files come from
scripts/fetch-tokenizers.sh (.cache/tokenizers/<name>/tokenizer.json); the small hand-made
ones live in tests/fixtures/tokenizers/<name>/tokenizer.json.

    python3 tests/tools/make_tokenizer_fixtures.py [name ...]

Names default to every tokenizer found. Uses Tokenizer.encode(text, add_special_tokens) and
Tokenizer.decode(ids, skip_special_tokens): the `tokenizers` library itself, not transformers
(whose decode may also clean up spaces).
"""
import json
import os
import sys

import tokenizers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizers")
CACHE = os.path.join(ROOT, ".cache", "tokenizers")
REAL = ["qwen3", "llama3", "gemma3"]
HANDMADE = ["bert_tiny"]


def tokenizer_path(name):
    for base in (CACHE, FIXTURES):
        p = os.path.join(base, name, "tokenizer.json")
        if os.path.isfile(p):
            return p
    return None


def main(argv):
    names = argv[1:] or REAL + HANDMADE
    with open(os.path.join(FIXTURES, "texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    written = 0
    for name in names:
        path = tokenizer_path(name)
        if path is None:
            print(f"{name}: no tokenizer.json (run scripts/fetch-tokenizers.sh)", file=sys.stderr)
            if argv[1:]:
                return 1
            continue
        tok = tokenizers.Tokenizer.from_file(path)
        cases = []
        for t in texts:
            ids = tok.encode(t["text"], add_special_tokens=True).ids
            plain = tok.encode(t["text"], add_special_tokens=False).ids
            cases.append({
                "name": t["name"],
                "text": t["text"],
                "ids": ids,
                "ids_no_special": plain,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            })
        out = {"tokenizer": name, "generator": f"tokenizers {tokenizers.__version__}", "cases": cases}
        text = json.dumps(out, ensure_ascii=True, separators=(",", ":"))
        text = text.replace('},{"name"', '},\n{"name"') + "\n"
        dest = os.path.join(FIXTURES, f"{name}_expected.json")
        with open(dest + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(dest + ".tmp", dest)
        print(f"{dest}: {len(cases)} cases ({out['generator']})")
        written += 1
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
