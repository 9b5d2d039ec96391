#!/usr/bin/env python3
"""Turns the King James Bible text of Debian's bible-kjv package into wick's training data.

    bible -l4000 gen1:1-rev22:21 > kjv.txt
    python3 scripts/demo/make_data.py --corpus kjv.txt --text verses.txt --pretrain pretrain.jsonl \
        --demo data/demo

verses.txt       every verse, one a line (the tokenizer's training text)

pretrain.jsonl   {"text"} records for training the base model from scratch: runs of consecutive
                 verses of one chapter (one verse a line, no numbers), at most ~700 characters,
                 every 50th run set aside into pretrain-valid.jsonl.
data/demo/       the LoRA task of the main job (train.jsonl, valid.jsonl): chat records
                 {"messages": [user: "Give me a verse about light.", assistant: <a short verse
                 containing "light">]} over a fixed list of topics. The base model has only ever
                 seen running scripture; the adapter teaches it to answer a request with one
                 verse on the asked topic and stop.
The output depends only on the corpus (fixed seeds, sorted inputs).
"""
import argparse
import json
import os
import random
import re

TOPICS = ["light", "water", "bread", "king", "sea", "fire", "love", "wisdom", "peace", "gold",
          "sheep", "wine", "mountain", "river", "tree", "heart", "night", "star", "sword",
          "house", "bird", "stone", "rain", "wind", "lion", "garden", "child", "silver",
          "blood", "field", "city", "song", "harvest", "cloud", "ship", "horse", "door", "oil",
          "morning", "battle"]
# Topics whose verses never enter train.jsonl: valid.jsonl asks about them (held out) and about
# a few trained topics with other verses.
HELD_OUT = {"harvest", "cloud", "ship", "horse"}
PROMPTS = ["Give me a verse about {}.", "What does scripture say about {}?", "Quote a verse about {}.",
           "Tell me a verse that speaks of {}."]


def read_verses(path):
    """[(book, chapter, verse, text)] from `bible -l4000` output."""
    verses, book, chapter = [], None, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.fullmatch(r"(.+?) (\d+)", line.strip())
            if m and not line.startswith(" "):
                book, chapter = m.group(1), int(m.group(2))
                continue
            m = re.fullmatch(r"\s+(\d+) (.+)", line)
            if m and book:
                verses.append((book, chapter, int(m.group(1)), m.group(2).strip()))
    return verses


def write_jsonl(path, records):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def pretrain_records(verses, limit=700):
    runs, cur, key = [], [], None
    for book, chapter, _, text in verses:
        if (book, chapter) != key or sum(len(t) + 1 for t in cur) + len(text) > limit:
            if cur:
                runs.append("\n".join(cur))
            cur, key = [], (book, chapter)
        cur.append(text)
    if cur:
        runs.append("\n".join(cur))
    train = [{"text": r} for i, r in enumerate(runs) if i % 50 != 49]
    valid = [{"text": r} for i, r in enumerate(runs) if i % 50 == 49]
    return train, valid


def demo_records(verses):
    rng = random.Random(1611)
    train, valid = [], []
    for topic in TOPICS:
        word = re.compile(r"\b" + topic + r"\b", re.IGNORECASE)
        hits = sorted({t for _, _, _, t in verses if word.search(t) and 30 <= len(t) <= 110})
        rng.shuffle(hits)
        if topic in HELD_OUT:
            take_train, take_valid = [], hits[:3]
        else:
            take_valid, take_train = hits[:1], hits[1:17]
        for dest, texts in ((train, take_train), (valid, take_valid)):
            for text in texts:
                prompt = rng.choice(PROMPTS).format(topic)
                dest.append({"messages": [{"role": "user", "content": prompt},
                                          {"role": "assistant", "content": text}]})
    rng.shuffle(train)
    return train, valid


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--pretrain", help="write pretraining records here (and <name>-valid.jsonl)")
    ap.add_argument("--demo", help="write the LoRA demo task into this folder")
    ap.add_argument("--text", help="write every verse, one a line, here (the tokenizer's corpus)")
    a = ap.parse_args()
    verses = read_verses(a.corpus)
    if len(verses) < 30000:
        raise SystemExit(f"{a.corpus}: only {len(verses)} verses; expected the whole Bible (31102)")
    if a.text:
        with open(a.text + ".tmp", "w", encoding="utf-8") as f:
            for v in verses:
                f.write(v[3] + "\n")
        os.replace(a.text + ".tmp", a.text)
    if a.pretrain:
        train, valid = pretrain_records(verses)
        write_jsonl(a.pretrain, train)
        write_jsonl(re.sub(r"(\.jsonl)?$", "-valid.jsonl", a.pretrain, count=1), valid)
        print(f"pretraining: {len(train)} records, {len(valid)} validation records")
    if a.demo:
        os.makedirs(a.demo, exist_ok=True)
        train, valid = demo_records(verses)
        write_jsonl(os.path.join(a.demo, "train.jsonl"), train)
        write_jsonl(os.path.join(a.demo, "valid.jsonl"), valid)
        print(f"demo task: {len(train)} training records, {len(valid)} validation records")


if __name__ == "__main__":
    main()
