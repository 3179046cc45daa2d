#!/usr/bin/env python3
"""torch.nn.functional.scaled_dot_product_attention (causal, GQA): the in-run reference of
Kernels.attention / attentionBackward in GpuBench (scripts/gpu-check.sh --bench).

Reads lines "B T HEADS KV_HEADS HEAD_DIM" on stdin and writes, per line, four lines
"DTYPE PASS B T HEADS KV_HEADS HEAD_DIM MS ERROR IMPL": DTYPE fp32 or bf16, PASS fwd (forward
only, no autograd) or fwdbwd (forward, then the gradients of q, k and v for a given output
gradient), milliseconds per call timed as GpuBench.time does (one warm-up call, 5 rounds of
enough calls for about 0.04 s between two synchronisations, the mean of the rounds) and the
99.9 % confidence half-width of that mean. IMPL says how GQA ran: "sdpa-gqa" (enable_gqa=True,
torch >= 2.5), "sdpa-repeat" (K and V expanded to every query head with repeat_interleave, inside
the timing, as HF repeat_kv does) or "manual" (no SDPA at all, torch < 2.0: softmax(q·kᵀ/√d +
causal mask)·v written out; only to check this script on an old CPU torch).

Tensors are [B, heads, T, head_dim] as SDPA takes them; query head h reads KV head
h / (heads / kv_heads), as our kernels and HF's repeat_kv. Every sequence is full length (no
padding), as in GpuBench's rows. --device cpu runs on the CPU (to check the script anywhere).
"""
import argparse
import math
import sys

import torch
import torch.nn.functional as F

from torch_timing import time_ms

def manual_attention(q, k, v):
    t = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return torch.matmul(torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1), v)


def pick_impl(device):
    """The attention function and its name: native GQA where this torch has it."""
    if not hasattr(F, "scaled_dot_product_attention"):
        return "manual", lambda q, k, v: manual_attention(q, k.repeat_interleave(q.shape[1] // k.shape[1], dim=1),
                                                           v.repeat_interleave(q.shape[1] // v.shape[1], dim=1))
    q = torch.zeros(1, 4, 8, 16, device=device)
    kv = torch.zeros(1, 2, 8, 16, device=device)
    try:
        F.scaled_dot_product_attention(q, kv, kv, is_causal=True, enable_gqa=True)
        return "sdpa-gqa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    except TypeError:  # torch < 2.5: no enable_gqa
        def repeat(q, k, v):
            rep = q.shape[1] // k.shape[1]
            return F.scaled_dot_product_attention(q, k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1),
                                                  is_causal=True)
        return "sdpa-repeat", repeat


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_attention_bench: torch sees no CUDA device")
    torch.manual_seed(0)
    impl, attend = pick_impl(device)
    for line in sys.stdin:
        if not line.strip():
            continue
        b, t, h, kvh, d = (int(x) for x in line.split())
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            q = torch.randn(b, h, t, d, device=device, dtype=dtype, requires_grad=True)
            k = torch.randn(b, kvh, t, d, device=device, dtype=dtype, requires_grad=True)
            v = torch.randn(b, kvh, t, d, device=device, dtype=dtype, requires_grad=True)
            dout = torch.randn(b, h, t, d, device=device, dtype=dtype)

            def forward():
                with torch.no_grad():
                    attend(q, k, v)

            def forward_backward():
                torch.autograd.grad(attend(q, k, v), (q, k, v), dout)

            for pass_name, call in (("fwd", forward), ("fwdbwd", forward_backward)):
                ms, err = time_ms(call, device)
                print(f"{name} {pass_name} {b} {t} {h} {kvh} {d} {ms:.6f} {err:.6f} {impl}", flush=True)
            del q, k, v, dout
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
