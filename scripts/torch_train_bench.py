#!/usr/bin/env python3
"""A PyTorch eager training step of a Qwen2-shaped decoder: the in-run reference of our training
step (Model.forwardBackward + AdamW) in GpuBench (scripts/gpu-check.sh --bench).

Reads lines "NAME HIDDEN INTERMEDIATE HEADS KV_HEADS LAYERS VOCAB TIED BATCH SEQ" on stdin and
writes one line per config "NAME BATCH SEQ MS ERROR PARAMS PEAK_MIB": milliseconds per step (the
mean of 5 rounds after two warm-up steps; a round is enough steps for about 0.2 s) with the
99.9 % confidence half-width of that mean, the parameter count and the peak of
torch.cuda.max_memory_allocated over the steps (0 on the CPU).

The model is transformers' Qwen2ForCausalLM built from a Qwen2Config (no download, random init,
made on the device directly), attention through SDPA. Like our bf16 precision it keeps fp32
master weights and AdamW state and runs its matmuls in bf16: torch.autocast(bfloat16). One step
is what ours does: zero the gradients, forward with the loss on every next-token prediction of
random tokens, backward, clip the global gradient norm to 1, AdamW (lr 1e-4, betas 0.9/0.95,
weight decay 0.1; torch's default implementation, foreach on CUDA). --device cpu runs on the CPU
(to check the script anywhere; autocast bf16 there too).
"""
import argparse
import contextlib
import sys

import torch

from torch_timing import time_ms

def build(hidden, inter, heads, kv_heads, layers, vocab, tied, device):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=32768,
                         rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=tied, use_cache=False)
    config._attn_implementation = "sdpa"
    # torch >= 2.0: parameters initialised on the device, not made on the CPU and copied
    where = device if hasattr(torch.device, "__enter__") else contextlib.nullcontext()
    with where:
        model = Qwen2ForCausalLM(config)
    return model.to(device=device, dtype=torch.float32).train()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_train_bench: torch sees no CUDA device")
    torch.manual_seed(0)
    for line in sys.stdin:
        if not line.strip():
            continue
        f = line.split()
        name = f[0]
        hidden, inter, heads, kv_heads, layers, vocab = (int(x) for x in f[1:7])
        tied = f[7].lower() in ("1", "true", "yes")
        batch, seq = int(f[8]), int(f[9])
        model = build(hidden, inter, heads, kv_heads, layers, vocab, tied, device)
        params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
        ids = torch.randint(0, vocab, (batch, seq), device=device)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        mean, err = time_ms(step, device, warmups=2, target_s=0.2, min_iters=1, max_iters=50)
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0
        print(f"{name} {batch} {seq} {mean:.6f} {err:.6f} {params} {peak:.1f}", flush=True)
        del model, opt, ids
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
