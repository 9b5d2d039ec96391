#!/usr/bin/env python3
"""Writes the seed corpus of safetensors_fuzz (fuzz/corpus/safetensors/): small valid files that
between them use every dtype, metadata, empty and scalar tensors, gaps, and a misaligned data
block. Built with struct from the format description; run from the repository root."""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def st(entries, data, metadata=None, align=8, compact=True):
    """entries: name -> (dtype, shape, begin, end)."""
    header = {n: {"dtype": d, "shape": s, "data_offsets": [b, e]} for n, (d, s, b, e) in entries.items()}
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":") if compact else None).encode()
    while (8 + len(text)) % align:
        text += b" "
    return struct.pack("<Q", len(text)) + text + data


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    data = (struct.pack("<6f", 1, 2, 3, 4, 5, 6) + struct.pack("<2q", -5, 1 << 40)
            + struct.pack("<3H", 0x3C00, 0xC000, 0x7BFF) + struct.pack("<3H", 0x3F80, 0xC040, 0x3EC0)
            + bytes([1, 0, 0, 1]) + struct.pack("<2i", 7, -8) + struct.pack("<d", 0.1))
    seeds["all_dtypes"] = st({"w": ("F32", [2, 3], 0, 24), "ids": ("I64", [2], 24, 40),
                              "h": ("F16", [3], 40, 46), "b": ("BF16", [3], 46, 52),
                              "m": ("BOOL", [4], 52, 56), "i": ("I32", [2], 56, 64),
                              "d": ("F64", [], 64, 72)}, data, {"format": "pt"})
    seeds["unsupported"] = st({"q": ("I8", [4], 0, 4), "u": ("U8", [2], 4, 6), "s": ("I16", [1], 6, 8),
                               "e4": ("F8_E4M3", [2], 8, 10), "e5": ("F8_E5M2", [2], 10, 12),
                               "ok": ("F32", [1], 12, 16)}, bytes(12) + struct.pack("<f", 2.5))
    seeds["empty_header"] = st({}, b"")
    seeds["metadata_only"] = st({}, b"", {"format": "pt", "note": "h\u00e9llo"}, compact=False)
    seeds["misaligned"] = st({"w": ("F32", [3], 0, 12), "d": ("F64", [1], 12, 20)},
                             struct.pack("<3f", 1, 2, 3) + struct.pack("<d", -0.5), align=1)
    seeds["empty_and_gaps"] = st({"e": ("F32", [0, 5], 4, 4), "a": ("BF16", [2, 1], 0, 4),
                                  "z": ("F16", [1, 1, 1], 8, 10)}, bytes(12))
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
