#!/usr/bin/env python3
"""Writes tiny random decoder models and their expected outputs into tests/fixtures/models/<name>/:

    config.json, model.safetensors      the model, as a Hugging Face folder
    expected.safetensors                 logits_<i> [T_i, vocab] f32 for each sequence i, and
                                         padded_logits [n, T_max, vocab] for all sequences as one
                                         left-padded batch (padding_mask [n, T_max] i64)
    expected.json                        the sequences, the greedy continuation (24 tokens) of
                                         sequence 0, its smallest top-1/top-2 logit margin, and
                                         which implementation made the file

When `transformers` is importable (the GPU machine), the models are built and evaluated by
transformers itself (Qwen2ForCausalLM / LlamaForCausalLM / MistralForCausalLM from a config,
parameters redrawn with a fixed seed, save_pretrained(safe_serialization=True), eager attention,
f32). Otherwise bench/peers/decoder_torch.py (plain PyTorch) writes the same files.

    python3 tests/tools/make_tiny_models.py [--out tests/fixtures/models] [--only NAME]
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
import decoder_torch as dt  # noqa: E402

try:
    import transformers  # noqa: F401
    HAVE_TRANSFORMERS = True
except ImportError:
    HAVE_TRANSFORMERS = False

GREEDY = 24
SEQUENCES = [
    [5, 17, 101, 3, 250, 42, 7],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
    [200, 13, 77, 9, 128, 64, 31, 190, 2, 255, 18, 100],
]
PAD_ID = 0

# name -> (model_type, config fields, rope (type, theta, scaling fields), storage dtype, seed)
SPECS = {
    # Qwen2 with tied embeddings (q/k/v bias fixed by the architecture), 2:1 GQA.
    "qwen2-tied": ("qwen2", dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                 rms_norm_eps=1e-6, tie_word_embeddings=True),
                   ("default", 10000.0, {}), "float32", 1),
    # Qwen2 with 8:1 GQA, an untied head and bf16 weights on disk.
    "qwen2-gqa-bf16": ("qwen2", dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=8, num_key_value_heads=1, max_position_embeddings=512,
                                     rms_norm_eps=1e-6, tie_word_embeddings=False),
                       ("default", 1000000.0, {}), "bfloat16", 2),
    # Llama with Llama 3.1 RoPE scaling (original context 64 so that all three frequency bands
    # occur at head_dim 16) and attention/MLP biases off.
    "llama3-rope": ("llama", dict(vocab_size=256, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                  rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False,
                                  mlp_bias=False),
                    ("llama3", 500000.0, dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                              original_max_position_embeddings=64)), "float32", 3),
    # Mistral with a sliding window of 6 positions (shorter than the sequences).
    "mistral-swa": ("mistral", dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=512,
                                    rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=6),
                    ("default", 10000.0, {}), "float32", 4),
}
STD = 0.1


def redraw(named_params, seed):
    """Fixed-seed values for every parameter, in name order: norms 1 + 0.1·N(0,1), others STD·N(0,1)
    (biases included, so that loading them is tested)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(named_params):
        shape = tuple(named_params[name].shape)
        if name.endswith("norm.weight"):
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[name] = STD * torch.randn(shape, generator=g)
    return out


def bf16_round(t):
    return t.bfloat16().float()


# ---- the two implementations ---------------------------------------------------------------------

class TransformersModel:
    def __init__(self, name, spec, seed):
        import transformers as tf
        model_type, fields, (rope_type, theta, scaling), storage, _ = spec
        kw = dict(fields, hidden_act="silu", bos_token_id=1, eos_token_id=2)
        if int(tf.__version__.split(".")[0]) >= 5:
            kw["rope_parameters"] = dict(rope_type=rope_type, rope_theta=theta, **scaling)
        else:
            kw["rope_theta"] = theta
            if rope_type != "default":
                kw["rope_scaling"] = dict(rope_type=rope_type, **scaling)
        cls_cfg = {"qwen2": tf.Qwen2Config, "llama": tf.LlamaConfig, "mistral": tf.MistralConfig}[model_type]
        torch.manual_seed(seed)
        # Eager attention: the plain softmax path, with sliding windows and padding as masks.
        self.model = tf.AutoModelForCausalLM.from_config(cls_cfg(**kw), attn_implementation="eager").float().eval()
        params = dict(self.model.named_parameters())
        values = redraw(params, seed)
        with torch.no_grad():
            for n, v in values.items():
                params[n].copy_(bf16_round(v) if storage == "bfloat16" else v)
        self.storage = storage
        self.source = "transformers " + tf.__version__ + ", torch " + torch.__version__

    def logits(self, ids, mask=None):
        # position_ids from the mask as generate() derives them (the forward alone would not).
        pos = None
        if mask is not None:
            pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
        return out.logits.float()

    def greedy(self, prompt, n):
        """Greedy continuation through transformers' KV cache."""
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([prompt]), use_cache=True)
            past, logits = out.past_key_values, out.logits[0, -1]
            toks, margins = [], []
            for _ in range(n):
                top = torch.topk(logits.float(), 2).values
                margins.append(float(top[0] - top[1]))
                nxt = int(logits.argmax())
                toks.append(nxt)
                out = self.model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[0, -1]
        return toks, min(margins)

    def save(self, folder):
        # safetensors is save_pretrained's default format (and, from transformers 5, its only one).
        m = self.model.to(torch.bfloat16) if self.storage == "bfloat16" else self.model
        m.save_pretrained(folder)
        self.model.float()

    def inv_freq(self):
        return self.model.model.rotary_emb.inv_freq.float()


class TorchPeerModel:
    def __init__(self, name, spec, seed):
        model_type, fields, (rope_type, theta, scaling), storage, _ = spec
        self.config_json = dict(fields, model_type=model_type, hidden_act="silu", bos_token_id=1, eos_token_id=2,
                                rope_theta=theta, torch_dtype=storage,
                                architectures=[{"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM",
                                                "mistral": "MistralForCausalLM"}[model_type]])
        if rope_type != "default":
            self.config_json["rope_scaling"] = dict(rope_type=rope_type, **scaling)
        cfg = dt.Config(self.config_json)
        shapes = dt.random_weights(cfg, seed)  # names and shapes only
        if cfg.o_bias or cfg.mlp_bias:
            raise ValueError("the peer route does not generate o/mlp biases")
        values = redraw(shapes, seed)
        if storage == "bfloat16":
            values = {k: bf16_round(v) for k, v in values.items()}
        self.values = values
        self.dec = dt.Decoder(cfg, values)
        self.storage = storage
        self.source = "bench/peers/decoder_torch.py, torch " + torch.__version__

    def logits(self, ids, mask=None):
        with torch.no_grad():
            return self.dec.forward(ids, None, mask)

    def greedy(self, prompt, n):
        with torch.no_grad():
            cache = [None] * self.dec.c.num_hidden_layers
            logits = self.dec.forward(torch.tensor([prompt]), cache)[0, -1]
            toks, margins = [], []
            for _ in range(n):
                top = torch.topk(logits, 2).values
                margins.append(float(top[0] - top[1]))
                nxt = int(logits.argmax())
                toks.append(nxt)
                logits = self.dec.forward(torch.tensor([[nxt]]), cache)[0, -1]
        return toks, min(margins)

    def save(self, folder):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(self.config_json, f, indent=2, sort_keys=True)
            f.write("\n")
        dtype = torch.bfloat16 if self.storage == "bfloat16" else torch.float32
        dt.write_safetensors(os.path.join(folder, "model.safetensors"),
                             {k: v.to(dtype) for k, v in self.values.items()}, {"format": "pt"})


# ---- fixtures ------------------------------------------------------------------------------------

def make(name, out_dir):
    spec = SPECS[name]
    seed = spec[4]
    for attempt in range(50):
        m = (TransformersModel if HAVE_TRANSFORMERS else TorchPeerModel)(name, spec, seed + 1000 * attempt)
        greedy, margin = m.greedy(SEQUENCES[0], GREEDY)
        if margin > 2e-3:
            break
    else:
        raise RuntimeError(name + ": no seed gave a clear greedy continuation")
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    m.save(folder)

    tensors = {}
    for i, seq in enumerate(SEQUENCES):
        tensors["logits_%d" % i] = m.logits(torch.tensor([seq]))[0].contiguous()
    t_max = max(len(s) for s in SEQUENCES)
    ids = torch.full((len(SEQUENCES), t_max), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(SEQUENCES), t_max), dtype=torch.long)
    for i, seq in enumerate(SEQUENCES):
        ids[i, t_max - len(seq):] = torch.tensor(seq)
        mask[i, t_max - len(seq):] = 1
    tensors["padded_logits"] = m.logits(ids, mask).contiguous()
    tensors["padding_mask"] = mask
    # Sanity: the greedy tokens are the argmax of a full recompute too.
    full = m.logits(torch.tensor([SEQUENCES[0] + greedy[:-1]]))[0]
    recomputed = full[len(SEQUENCES[0]) - 1:].argmax(-1).tolist()
    if recomputed != greedy:
        raise RuntimeError(name + ": cached greedy decode differs from a full recompute")
    if HAVE_TRANSFORMERS:
        # The config written must mean what was built (a RoPE field transformers ignored would
        # make a fixture that tests the wrong thing), and the plain-PyTorch peer should agree.
        with open(os.path.join(folder, "config.json")) as f:
            written = dt.Config(json.load(f))
        if not torch.allclose(written.inv_freq(), m.inv_freq(), rtol=1e-6, atol=0):
            raise RuntimeError(name + ": RoPE frequencies in config.json differ from the model's")
        peer = dt.Decoder.load(folder)
        with torch.no_grad():
            diff = max(float((peer.forward(torch.tensor([s]))[0] - tensors["logits_%d" % i]).abs().max())
                       for i, s in enumerate(SEQUENCES))
        print("%s: decoder_torch.py peer vs transformers: max |logit diff| %.2e%s"
              % (name, diff, "" if diff < 1e-4 else "  <-- the peer disagrees"))
    dt.write_safetensors(os.path.join(folder, "expected.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump({"source": m.source, "sequences": SEQUENCES, "greedy_prompt": 0, "greedy": greedy,
                   "min_greedy_margin": margin, "pad_id": PAD_ID}, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder))
    print("%s: %s, %d bytes, greedy margin %.4f" % (folder, m.source, size, margin))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "models"))
    ap.add_argument("--only", choices=sorted(SPECS))
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name in ([a.only] if a.only else SPECS):
        make(name, a.out)


if __name__ == "__main__":
    main()
