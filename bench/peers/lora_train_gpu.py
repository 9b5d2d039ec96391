#!/usr/bin/env python3
"""The GPU peer of `wick train --device cuda` (issue 6's benchmark): transformers + PEFT LoRA on
a Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14 heads / 2 KV heads, SwiGLU 4864, vocab
151936, tied embeddings) with random bf16 weights, AdamW, batch 8 x 512 random tokens, SDPA.
It also writes that model (safetensors, bf16) and the same token batches as a JSONL dataset, so
wick trains on identical data. Prints one JSON line per configuration: steady-state tokens/s
(median over the steps after the warm-up ones), peak GPU memory, and the forward-only rate.

    python3 bench/peers/lora_train_gpu.py --out /tmp/qwen05 [--steps 12] [--warmup 3] [--head-dim 128]

--head-dim 128 regroups the same width into 7 heads and 1 KV head of 128 (the Llama-family head
size; 0.5B's own is 64), so the attention kernels of that size run.
"""
import argparse
import json
import os
import shutil
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

SHAPE = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
             intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=4096,
             rms_norm_eps=1e-6, rope_theta=1000000.0, torch_dtype="bfloat16")
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="folder for the model and data wick will use")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128, help="tokens of the greedy decode")
    ap.add_argument("--model-only", action="store_true", help="write the model and data, run nothing")
    ap.add_argument("--head-dim", type=int, default=64, choices=[64, 128], help="attention head size")
    ap.add_argument("--tokenizer", default="models/wick-kjv/tokenizer.json",
                    help="any tokenizer.json (the data are token ids; wick only needs the file)")
    args = ap.parse_args()
    torch.manual_seed(0)
    shape = dict(SHAPE)
    if args.head_dim != 64:
        shape.update(num_attention_heads=SHAPE["hidden_size"] // args.head_dim, num_key_value_heads=1)
    cfg = Qwen2Config(**shape)
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    shutil.copy(args.tokenizer, os.path.join(args.out, "tokenizer.json"))
    n = args.steps + args.warmup
    g = torch.Generator().manual_seed(1)
    # Ids below the tokenizer's size (wick checks them against it); the cost does not depend on them.
    batches = [torch.randint(0, 4096, (args.batch, args.seq), generator=g) for _ in range(n)]
    with open(os.path.join(args.out, "data.jsonl"), "w") as f:
        for b in batches:
            for row in b.tolist():
                f.write(json.dumps({"input_ids": row}) + "\n")
    if args.model_only:
        return
    model = model.cuda()
    tokens = args.batch * args.seq

    # Forward only (inference mode), as the prefill figure.
    model.eval()
    with torch.inference_mode():
        times = []
        for i in range(n):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(input_ids=batches[i].cuda())
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    print(json.dumps({"peer": "transformers", "work": "forward", "tok_s": tokens / statistics.median(times[args.warmup:])}),
          flush=True)

    # Greedy decode at batch 1, as transformers' generate does it.
    with torch.inference_mode():
        prompt = batches[0][:1, :16].cuda()
        model.generate(prompt, max_new_tokens=8, do_sample=False, min_new_tokens=8)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.generate(prompt, max_new_tokens=args.decode, do_sample=False, min_new_tokens=args.decode)
        torch.cuda.synchronize()
        print(json.dumps({"peer": "transformers", "work": "decode_b1", "tok_s": args.decode / (time.perf_counter() - t0)}),
              flush=True)

    from peft import LoraConfig, get_peft_model
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, targets in (("lora_qv", ["q_proj", "v_proj"]), ("lora_all", ALL)):
        model.load_state_dict(base_state)
        pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets))
        pm.train()
        opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4)
        torch.cuda.reset_peak_memory_stats()
        times, losses = [], []
        for i in range(n):
            x = batches[i].cuda()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = pm(input_ids=x, labels=x).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            losses.append(loss.item())
        print(json.dumps({"peer": "peft", "work": name, "tok_s": tokens / statistics.median(times[args.warmup:]),
                          "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "first_losses": losses[:3]}),
              flush=True)
        model = pm.unload()
        del opt, pm
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
