"""The timing the torch reference scripts of GpuBench share, measured as GpuBench measures ours:
warm-up calls, then ROUNDS rounds of enough calls for about target_s seconds each; the mean
milliseconds per call and the 99.9 % confidence half-width of that mean."""
import math
import time

import torch

ROUNDS = 5
T_999 = 8.610  # Student's t, 99.9 % two-sided, 4 degrees of freedom (as GpuBench)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ms(call, device, warmups=1, target_s=0.04, min_iters=3, max_iters=200):
    for _ in range(warmups):  # kernel selection, library handles, workspaces, optimizer state
        call()
    synchronize(device)
    t0 = time.perf_counter()
    call()
    synchronize(device)
    once = max(time.perf_counter() - t0, 1e-9)
    iters = int(max(min_iters, min(max_iters, target_s / once)))
    rounds = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        synchronize(device)
        rounds.append((time.perf_counter() - t0) * 1e3 / iters)
    mean = sum(rounds) / ROUNDS
    sd = math.sqrt(sum((x - mean) ** 2 for x in rounds) / (ROUNDS - 1))
    return mean, T_999 * sd / math.sqrt(ROUNDS)
