#!/usr/bin/env python3
"""Checks a wick-trained tokenizer against the Hugging Face `tokenizers` library and writes the
fixture that tests/unit/tokenizer_train_test.cpp compares with:
tests/fixtures/tokenizers/wick-bpe/expected.json.

The committed tokenizer in that folder was made by wick from the committed corpus:

    wick tokenizer train --input tests/fixtures/tokenizers/wick-bpe/corpus.txt --vocab-size 500 \
        --special-tokens "<|endoftext|>,<|im_start|>,<|im_end|>" --chat-template chatml \
        --output tests/fixtures/tokenizers/wick-bpe

The fixture holds
  - cases: every text of tests/fixtures/tokenizers/texts.jsonl and a few more, with the ids of
    Tokenizer.from_file(tokenizer.json).encode(text, add_special_tokens=False) and the decoded
    strings (with and without skip_special_tokens);
  - trainer_merges: the merges the library's own BpeTrainer learns from corpus.txt through the
    same tokenizer (its pre-tokenizer) after deleting the special tokens from it, with
    min_frequency 0 and a vocabulary large enough to train until no pair is left. (The library
    counts each special token in the text as a word and learns merges inside it, which wick
    does not.) The library reads the file line by line; wick, given the same lines as texts,
    must learn the same merges in the same order.

Needs the `tokenizers` python package (no network):

    python3 tests/tools/check_bpe_tokenizer.py [path/to/tokenizer-folder]

tests/tools/check_bpe_tokenizer_node.mjs writes the same file with the library's Node binding.
"""
import json
import os
import sys
import tempfile

import tokenizers
from tokenizers.trainers import BpeTrainer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizers")
DEFAULT_DIR = os.path.join(FIXTURES, "wick-bpe")

# Beyond texts.jsonl: chat turns, special tokens next to text, corpus-like verses.
EXTRA = [
    ("chatml", "<|im_start|>user\nWho made the heaven?<|im_end|>\n<|im_start|>assistant\n"),
    ("specials_glued", "a<|endoftext|>b<|im_start|><|im_end|>c"),
    ("verse", "Ge1:1 In the beginning God created the heaven and the earth."),
    ("verse_unseen", "Re22:21 The grace of our Lord Jesus Christ be with you all. Amen."),
    ("digits", "Ge12:345 and 6789 years"),
    ("upper_contractions", "IT'S THE LORD'S, we'll see; they're here"),
    ("spaces_newlines", "  and  \n\n\tthe   earth \r\n"),
]


def main(argv):
    folder = argv[1] if len(argv) > 1 else DEFAULT_DIR
    tok_path = os.path.join(folder, "tokenizer.json")
    corpus_path = os.path.join(folder, "corpus.txt")
    with open(os.path.join(FIXTURES, "texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    texts += [{"name": n, "text": t} for n, t in EXTRA]

    tok = tokenizers.Tokenizer.from_file(tok_path)
    cases = []
    for t in texts:
        ids = tok.encode(t["text"], add_special_tokens=False).ids
        cases.append({
            "name": t["name"],
            "text": t["text"],
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })

    with open(tok_path, encoding="utf-8") as f:
        specials = [t["content"] for t in json.load(f)["added_tokens"]]
    with open(corpus_path, encoding="utf-8") as f:
        corpus = f.read()
    for s in specials:
        corpus = corpus.replace(s, "")
    trained = tokenizers.Tokenizer.from_file(tok_path)
    trainer = BpeTrainer(vocab_size=1 << 20, min_frequency=0, show_progress=False)
    with tempfile.TemporaryDirectory() as d:
        plain = os.path.join(d, "corpus.txt")
        with open(plain, "w", encoding="utf-8", newline="") as f:
            f.write(corpus)
        trained.train([plain], trainer)
        p = os.path.join(d, "trained.json")
        trained.save(p)
        with open(p, encoding="utf-8") as f:
            merges = json.load(f)["model"]["merges"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in merges]

    out = {
        "tokenizer": os.path.relpath(tok_path, ROOT),
        "generator": f"tokenizers {tokenizers.__version__} (python)",
        "cases": cases,
        "trainer_merges": merges,
    }
    text = json.dumps(out, ensure_ascii=True, separators=(",", ":"))
    text = text.replace('},{"name"', '},\n{"name"').replace('],["', '],\n["') + "\n"
    dest = os.path.join(folder, "expected.json")
    with open(dest + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(dest + ".tmp", dest)
    print(f"{dest}: {len(cases)} cases, {len(merges)} trainer merges ({out['generator']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
