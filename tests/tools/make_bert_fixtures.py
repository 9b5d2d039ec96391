#!/usr/bin/env python3
"""Writes tiny random BERT-family encoders, their WordPiece tokenizer and expected outputs into
tests/fixtures/models/<name>/:

    bert-tiny/            BertModel (hidden 32, 2 layers, 4 heads, intermediate 64, 64 positions),
                          f32, bare names; config.json, model.safetensors, tokenizer.json, vocab.txt,
                          tokenizer_config.json, expected.json, expected.safetensors
    bert-tiny-prefixed/   the same encoder saved as BertForPreTraining: "bert." prefix, a pooler
                          and the pre-training heads beside it (expected outputs: bert-tiny's)
    bert-tiny-bf16/       the same encoder stored in bf16, with expected outputs of the bf16-rounded
                          weights computed in f32
    roberta-tiny/         a RobertaModel (positions after padding_idx + 1, pad id 0, gelu_new) with
                          the same tokenizer

expected.safetensors: ids and attention_mask [N, T] (i64, the sentences as one right-padded
batch), last_hidden_state [N, T, 32], mean / mean_normalized / cls / max [N, 32] (pooling as
sentence-transformers: mean and max over real tokens), and truncated8_ids / truncated8 (mean,
normalised) for the sentences cut to 8 tokens, long_ids / long_mean_normalized for a text longer
than the 64 positions cut to 64. expected.json: the sentences, their token ids, and the generator.

When `transformers` is importable (the GPU machine), the tokenizer is transformers'
BertTokenizerFast built from the vocabulary below (its tokenizer.json is saved), the models are
transformers' BertModel / BertForPreTraining / RobertaModel (eager attention) with parameters
redrawn from a fixed seed, and the outputs are theirs. Otherwise a plain-PyTorch BERT
(bench/peers/embed_torch.py) and a small WordPiece tokenizer written here make the same files,
with a hand-written tokenizer.json of the same structure.

    python3 tests/tools/make_bert_fixtures.py [--out tests/fixtures/models]
"""
import argparse
import json
import os
import shutil
import sys
import unicodedata

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
import embed_torch as et  # noqa: E402
from decoder_torch import write_safetensors  # noqa: E402

try:
    import transformers  # noqa: F401
    HAVE_TRANSFORMERS = True
except ImportError:
    HAVE_TRANSFORMERS = False

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ("the quick brown fox jumps over lazy dog hello world embed ##ding ##dings with wick are fast , "
         "aren ' t they ? . ! cafe naive resume un ##believ ##able token ##ization of a b c sentence "
         "vectors search query passage : short longer one two three four five six seven eight nine ten "
         "is this and an example for retrieval").split()
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
VOCAB = SPECIALS + sorted(set(WORDS)) + LETTERS + ["##" + c for c in LETTERS]

SENTENCES = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "Embeddings with wick are fast, aren't they?",
    "Café naïve RÉSUMÉ",
    "unbelievable tokenization of xyzzy \u2603",
    "query: a b c",
    "This is one longer sentence for retrieval, and an example of search with vectors: two three four five.",
]
LONG_TEXT = " ".join(["one two three four five six seven eight nine ten"] * 9)  # > 64 tokens
CONFIG = dict(vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
              hidden_act="gelu", pad_token_id=0)
ROBERTA = dict(CONFIG, max_position_embeddings=66, hidden_act="gelu_new", type_vocab_size=1)
STD = 0.2
SEED = 7


def redraw(shapes, seed):
    """Fixed-seed values in name order: LayerNorm weights 1 + 0.1·N(0,1), the rest STD·N(0,1)
    (biases included, so that loading them is tested)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        if name.endswith("LayerNorm.weight"):
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[name] = STD * torch.randn(shape, generator=g)
    return out


def encoder_shapes(cfg):
    return {k: tuple(v.shape) for k, v in et.random_weights(et.Config(cfg)).items()}


# ---- tokenizer without the tokenizers library -----------------------------------------------------

def _is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def py_wordpiece(text, vocab, max_len=None):
    """BertNormalizer (lowercase, accents stripped), BertPreTokenizer, WordPiece, [CLS] .. [SEP];
    enough for the ASCII/Latin/symbol sentences above (no CJK, no control characters)."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, cur = [], ""
    for ch in text:
        if ch.isspace():
            if cur:
                words.append(cur)
            cur = ""
        elif _is_punct(ch):
            if cur:
                words.append(cur)
            words.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    ids = []
    for w in words:
        pieces, start, bad = [], 0, False
        while start < len(w):
            end, found = len(w), None
            while start < end:
                sub = ("##" if start > 0 else "") + w[start:end]
                if sub in vocab:
                    found = sub
                    break
                end -= 1
            if found is None:
                bad = True
                break
            pieces.append(vocab[found])
            start = end
        ids.extend([vocab["[UNK]"]] if bad else pieces)
    if max_len is not None:
        ids = ids[:max_len - 2]
    return [vocab["[CLS]"]] + ids + [vocab["[SEP]"]]


def handwritten_tokenizer_json(vocab):
    added = [dict(id=vocab[t], content=t, single_word=False, lstrip=False, rstrip=False, normalized=False,
                  special=True) for t in SPECIALS]
    tmpl = lambda toks: [({"SpecialToken": {"id": t, "type_id": ty}} if t.startswith("[") else
                          {"Sequence": {"id": t, "type_id": ty}}) for t, ty in toks]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": tmpl([("[CLS]", 0), ("A", 0), ("[SEP]", 0)]),
                           "pair": tmpl([("[CLS]", 0), ("A", 0), ("[SEP]", 0), ("B", 1), ("[SEP]", 1)]),
                           "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }


class Tokenizer:
    """transformers' BertTokenizerFast when available, else py_wordpiece."""

    def __init__(self, folder):
        self.vocab = {t: i for i, t in enumerate(VOCAB)}
        os.makedirs(folder, exist_ok=True)
        vocab_file = os.path.join(folder, "vocab.txt")
        with open(vocab_file, "w") as f:
            f.write("".join(t + "\n" for t in VOCAB))
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(dict(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
                           mask_token="[MASK]", do_lower_case=True, tokenizer_class="BertTokenizer",
                           model_max_length=64), f, indent=1)
            f.write("\n")
        if HAVE_TRANSFORMERS:
            # The fast tokenizer transformers converts from vocab.txt, saved as its tokenizer.json.
            import transformers as tf
            try:
                self.tok = tf.AutoTokenizer.from_pretrained(folder)
                self.tok.save_pretrained(folder)
            except Exception as e:  # a transformers without the vocab.txt conversion
                print("AutoTokenizer failed (%s); using tokenizers' BertWordPieceTokenizer" % e, file=sys.stderr)
                from tokenizers.implementations import BertWordPieceTokenizer
                bw = BertWordPieceTokenizer(vocab_file, lowercase=True)
                bw.save(os.path.join(folder, "tokenizer.json"))
                self.tok = tf.PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"),
                                                      unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                                      sep_token="[SEP]", mask_token="[MASK]")
        else:
            self.tok = None
            with open(os.path.join(folder, "tokenizer.json"), "w") as f:
                json.dump(handwritten_tokenizer_json(self.vocab), f, indent=1)
                f.write("\n")

    def encode(self, text, max_len=None):
        if self.tok is not None:
            kw = dict(truncation=True, max_length=max_len) if max_len else {}
            return self.tok(text, **kw)["input_ids"]
        return py_wordpiece(text, self.vocab, max_len)


# ---- models ---------------------------------------------------------------------------------------

def transformers_model(kind, cfg, values):
    import transformers as tf
    config = (tf.RobertaConfig if kind == "roberta" else tf.BertConfig)(**cfg)
    # Eager attention: the plain softmax path with the padding mask added to the scores.
    model = tf.AutoModel.from_config(config, attn_implementation="eager").float().eval()
    missing, unexpected = model.load_state_dict(values, strict=False)
    missing = [k for k in missing if not k.startswith("pooler.")]  # the pooler is not used here
    if missing or unexpected:
        raise RuntimeError("state dict mismatch: missing %s, unexpected %s" % (missing, unexpected))
    return model


def run_model(kind, cfg, values, ids, mask):
    with torch.no_grad():
        if HAVE_TRANSFORMERS:
            m = transformers_model(kind, cfg, values)
            return m(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        c = dict(cfg, model_type="roberta" if kind == "roberta" else "bert")
        return et.Bert(et.Config(c), values).forward(ids, mask)


def outputs(kind, cfg, values, tok, sentence_ids):
    ids, mask = et.pad_batch(sentence_ids)
    h = run_model(kind, cfg, values, ids, mask)
    out = {"ids": ids, "attention_mask": mask, "last_hidden_state": h}
    mean = et.pool(h, mask, "mean")
    out.update(mean=mean, mean_normalized=et.normalize(mean), cls=et.pool(h, mask, "cls"), max=et.pool(h, mask, "max"))
    t8 = [tok.encode(s, 8) for s in SENTENCES]
    ids8, mask8 = et.pad_batch(t8)
    out["truncated8_ids"] = ids8
    out["truncated8"] = et.normalize(et.pool(run_model(kind, cfg, values, ids8, mask8), mask8, "mean"))
    limit = cfg["max_position_embeddings"] - (cfg["pad_token_id"] + 1 if kind == "roberta" else 0)
    long_ids, long_mask = et.pad_batch([tok.encode(LONG_TEXT, limit)])
    out["long_ids"] = long_ids
    out["long_mean_normalized"] = et.normalize(et.pool(run_model(kind, cfg, values, long_ids, long_mask),
                                                       long_mask, "mean"))
    return out


def source():
    if HAVE_TRANSFORMERS:
        import transformers as tf
        return "transformers %s, torch %s" % (tf.__version__, torch.__version__)
    return "bench/peers/embed_torch.py + tests/tools/make_bert_fixtures.py WordPiece, torch " + torch.__version__


def write_folder(folder, cfg, model_type, weights, storage, expected, sentence_ids, extra_json=None):
    os.makedirs(folder, exist_ok=True)
    config = dict(cfg, model_type=model_type, torch_dtype=storage,
                  architectures=["RobertaModel" if model_type == "roberta" else "BertModel"])
    if extra_json:
        config.update(extra_json)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    dt = torch.bfloat16 if storage == "bfloat16" else torch.float32
    write_safetensors(os.path.join(folder, "model.safetensors"), {k: v.to(dt) for k, v in weights.items()},
                      {"format": "pt"})
    if expected is not None:
        write_safetensors(os.path.join(folder, "expected.safetensors"),
                          {k: v.contiguous() for k, v in expected.items()})
        with open(os.path.join(folder, "expected.json"), "w") as f:
            json.dump({"generator": source(), "sentences": SENTENCES, "ids": sentence_ids, "long_text": LONG_TEXT,
                       "storage": storage}, f, indent=1)
            f.write("\n")


def copy_tokenizer(src, dst):
    os.makedirs(dst, exist_ok=True)
    for fn in os.listdir(src):
        if fn.startswith("tokenizer") or fn in ("vocab.txt", "special_tokens_map.json"):
            shutil.copy(os.path.join(src, fn), os.path.join(dst, fn))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "models"))
    a = ap.parse_args()
    torch.manual_seed(0)
    base = os.path.join(a.out, "bert-tiny")
    tok = Tokenizer(base)
    sentence_ids = [tok.encode(s) for s in SENTENCES]

    weights = redraw(encoder_shapes(CONFIG), SEED)
    expected = outputs("bert", CONFIG, weights, tok, sentence_ids)
    write_folder(base, CONFIG, "bert", weights, "float32", expected, sentence_ids)

    # BertForPreTraining layout: encoder under "bert.", plus pooler and heads (ignored by wick).
    pre = os.path.join(a.out, "bert-tiny-prefixed")
    copy_tokenizer(base, pre)
    g = torch.Generator().manual_seed(SEED + 1)
    h, v = CONFIG["hidden_size"], CONFIG["vocab_size"]
    heads = {"bert.pooler.dense.weight": (h, h), "bert.pooler.dense.bias": (h,),
             "cls.predictions.bias": (v,), "cls.predictions.transform.dense.weight": (h, h),
             "cls.predictions.transform.dense.bias": (h,), "cls.predictions.transform.LayerNorm.weight": (h,),
             "cls.predictions.transform.LayerNorm.bias": (h,), "cls.seq_relationship.weight": (2, h),
             "cls.seq_relationship.bias": (2,)}
    prefixed = {"bert." + k: t for k, t in weights.items()}
    prefixed.update({k: STD * torch.randn(s, generator=g) for k, s in heads.items()})
    write_folder(pre, CONFIG, "bert", prefixed, "float32", None, sentence_ids,
                 {"architectures": ["BertForPreTraining"]})

    # bf16 storage: the reference runs in f32 on the rounded weights (as wick loads them).
    b16 = os.path.join(a.out, "bert-tiny-bf16")
    copy_tokenizer(base, b16)
    rounded = {k: t.bfloat16().float() for k, t in weights.items()}
    write_folder(b16, CONFIG, "bert", rounded, "bfloat16", outputs("bert", CONFIG, rounded, tok, sentence_ids),
                 sentence_ids)

    # RoBERTa-style positions (padding_idx + 1 onwards) and the tanh GELU.
    rob = os.path.join(a.out, "roberta-tiny")
    copy_tokenizer(base, rob)
    rweights = redraw(encoder_shapes(dict(ROBERTA, model_type="roberta")), SEED + 2)
    write_folder(rob, ROBERTA, "roberta", rweights, "float32",
                 outputs("roberta", ROBERTA, rweights, tok, sentence_ids), sentence_ids)
    print("wrote bert-tiny, bert-tiny-prefixed, bert-tiny-bf16, roberta-tiny under %s (%s)" % (a.out, source()))


if __name__ == "__main__":
    main()
