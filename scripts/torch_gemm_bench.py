#!/usr/bin/env python3
"""torch.matmul on bf16 tensors (cuBLAS): the in-run reference of Kernels.gemmBf16 in GpuBench
(scripts/gpu-check.sh --bench).

Reads lines "LAYOUT M N K" on stdin (layouts of Kernels.Gemm: NT out = a[m,k]·b[n,k]ᵀ,
NN a[m,k]·b[k,n], TN a[k,m]ᵀ·b[k,n]) and writes "LAYOUT M N K MS ERROR" per line: milliseconds
per call, timed as GpuBench.time does (one warm-up call, 5 rounds of enough calls for about
0.04 s between two synchronisations, the mean of the rounds) and the 99.9 % confidence
half-width of that mean. Operands are stored as our kernel reads them; torch.matmul takes the
transposed views as they are (cuBLAS transposes for free), into a preallocated bf16 output.
"""
import sys

import torch

from torch_timing import time_ms


def operands(layout, m, n, k, device):
    def rand(*shape):
        return torch.rand(shape, device=device, dtype=torch.float32).mul_(2).sub_(1).to(torch.bfloat16)

    if layout == "NT":
        a, b = rand(m, k), rand(n, k)
        return a, b.t()
    if layout == "NN":
        return rand(m, k), rand(k, n)
    if layout == "TN":
        a, b = rand(k, m), rand(k, n)
        return a.t(), b
    raise ValueError(f"unknown layout {layout}")


def main():
    if not torch.cuda.is_available():
        sys.exit("torch_gemm_bench: torch sees no CUDA device")
    device = torch.device("cuda")
    torch.manual_seed(0)
    for line in sys.stdin:
        if not line.strip():
            continue
        layout, m, n, k = line.split()
        m, n, k = int(m), int(n), int(k)
        a, b = operands(layout, m, n, k, device)
        out = torch.empty((m, n), device=device, dtype=torch.bfloat16)
        ms, err = time_ms(lambda: torch.matmul(a, b, out=out), torch.device("cuda"))
        print(f"{layout} {m} {n} {k} {ms:.6f} {err:.6f}", flush=True)
        del a, b, out
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
