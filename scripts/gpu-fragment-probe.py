#!/usr/bin/env python3
"""Checks the tensor-core wrappers of kernels/common/ptx.cuh on a real GPU against the per-lane
fragment layouts of the PTX ISA (the layouts the CUDA emulator implements).

    gpu-fragment-probe.py BUNDLE OUTDIR        (scripts/gpu-check.sh runs it)
    gpu-fragment-probe.py --selftest           (checks this checker on synthetic dumps, no GPU)

Runs BUNDLE/bin/gpu-fragment-probe (built by gpu-bundle.sh from scripts/gpu-fragment-probe.cu); if
that binary cannot run here, compiles the source with this machine's nvcc. The probe loads each
fragment from row-major matrices by the documented rule and dumps every lane's registers; this
script computes what each register must then hold, independently of the probe:

  with g = lane >> 2, t = lane & 3, and two 16-bit elements per 32-bit register, first in the low half,
  mma.m16n8k16 bf16: A regs {A[g][2t..], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]},
                     B regs {B[2t..][g], B[2t+8..][g]}, C/D {C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]}
  mma.m16n8k8 tf32:  A {A[g][t], A[g+8][t], A[g][t+4], A[g+8][t+4]}, B {B[t][g], B[t+4][g]}, C/D as above
  ldmatrix (.trans): r[i] = {M_i[g][2t], M_i[g][2t+1]}  ({M_i[2t][g], M_i[2t+1][g]})
The products are exact (small integers), so D must equal A·B + C exactly at each lane's positions.
Writes OUTDIR/fragment-probe.json (the raw dump) and prints one line per wrapper, the summary last.
"""
import json
import os
import shutil
import subprocess
import sys


def expected_mma(a, b, c, m, n, k):
    """d[lane][i] for D = A·B + C (row-major lists) laid out by the C/D fragment rule."""
    d = [[c[r * n + col] + sum(a[r * k + kk] * b[kk * n + col] for kk in range(k)) for col in range(n)] for r in range(m)]
    out = []
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for i in range(4):
            out.append(d[g + (i >> 1) * 8][2 * t + (i & 1)])
    return out


def expected_ldmatrix():
    """[variant][lane][4] for x1, x2, x4, x1.trans, x2.trans, x4.trans; M_i[r][c] = i*64 + r*8 + c."""
    out = []
    for v in range(6):
        n, trans = 1 << (v % 3), v >= 3
        for lane in range(32):
            g, t = lane >> 2, lane & 3
            for i in range(4):
                if i >= n:
                    out.append(0)
                    continue
                m = lambda r, col: i * 64 + r * 8 + col
                lo, hi = (m(2 * t, g), m(2 * t + 1, g)) if trans else (m(g, 2 * t), m(g, 2 * t + 1))
                out.append(hi << 16 | lo)
    return out


def expected_cp_async():
    src = [(i * 5 + 1) & 0xff for i in range(48)]
    return src[0:16] + src[16:21] + [0] * 11 + src[32:40] + src[40:44] + [0xee] * 4


def compare(name, got, want, describe):
    if len(got) != len(want):
        return False, f"{name}: {len(got)} values, expected {len(want)}"
    bad = [i for i, (x, y) in enumerate(zip(got, want)) if x != y]
    if not bad:
        return True, f"{name}: ok ({len(want)} values)"
    i = bad[0]
    return False, f"{name}: {len(bad)} of {len(want)} wrong; first at {describe(i)}: got {got[i]}, expected {want[i]}"


def check(dump):
    lane_reg = lambda i: f"lane {i // 4} register {i % 4}"
    variants = ["x1", "x2", "x4", "x1.trans", "x2.trans", "x4.trans"]
    results = [
        compare("mma_bf16_16816", dump["mma_bf16_16816"], expected_mma(dump["A16"], dump["B16"], dump["C"], 16, 8, 16), lane_reg),
        compare("mma_tf32_1688", dump["mma_tf32_1688"], expected_mma(dump["A8"], dump["B8"], dump["C"], 16, 8, 8), lane_reg),
        compare("ldmatrix", dump["ldmatrix"], expected_ldmatrix(),
                lambda i: f"ldmatrix_{variants[i // 128]} lane {i // 4 % 32} register {i % 4}"),
        compare("cp_async", dump["cp_async"], expected_cp_async(), lambda i: f"shared byte {i}"),
    ]
    return results


def run_probe(bundle, outdir):
    """The probe's JSON dump: the prebuilt binary, else one compiled here."""
    tried = []
    binary = os.path.join(bundle, "bin", "gpu-fragment-probe")
    candidates = [binary] if os.access(binary, os.X_OK) else []
    for exe in candidates + [None]:
        if exe is None:
            nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
            if nvcc is None:
                break
            exe = os.path.join(outdir, "gpu-fragment-probe")
            cmd = [nvcc, "-std=c++17", "-O2", "-I", os.path.join(bundle, "kernels"), "-arch=native",
                   "-o", exe, os.path.join(bundle, "scripts", "gpu-fragment-probe.cu")]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                tried.append(f"nvcc failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
                break
        try:
            r = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        except OSError as e:
            tried.append(f"{exe}: {e}")
            continue
        try:
            dump = json.loads(r.stdout)
        except json.JSONDecodeError:
            tried.append(f"{exe}: exit {r.returncode}, no JSON: {(r.stderr or r.stdout).strip()[:200]}")
            continue
        if "error" in dump:
            tried.append(f"{exe}: {dump['error']}")
            continue
        dump["probe"] = exe
        return dump, tried
    return None, tried


def selftest():
    """The checker passes a dump made by the rule and fails dumps with a swapped pair of lanes."""
    a16 = [float((i * 7 + k * 3) % 11 - 5) for i in range(16) for k in range(16)]
    b16 = [float((k * 5 + j * 3 + 1) % 9 - 4) for k in range(16) for j in range(8)]
    c = [0.5 * (i * 8 + j) for i in range(16) for j in range(8)]
    a8 = [float((i * 5 + k * 7 + 2) % 13 - 6) for i in range(16) for k in range(8)]
    b8 = [float((k * 3 + j * 5) % 7 - 3) for k in range(8) for j in range(8)]
    good = {"A16": a16, "B16": b16, "C": c, "A8": a8, "B8": b8,
            "mma_bf16_16816": expected_mma(a16, b16, c, 16, 8, 16), "mma_tf32_1688": expected_mma(a8, b8, c, 16, 8, 8),
            "ldmatrix": expected_ldmatrix(), "cp_async": expected_cp_async()}
    assert all(ok for ok, _ in check(good)), check(good)
    for key in ("mma_bf16_16816", "mma_tf32_1688", "ldmatrix"):
        bad = dict(good)
        v = list(bad[key])
        v[4:8], v[8:12] = v[8:12], v[4:8]  # lanes 1 and 2 swapped
        bad[key] = v
        assert not dict((n.split(":")[0], ok) for ok, n in check(bad))[key], key
    print("gpu-fragment-probe.py: selftest ok")
    return 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    if len(sys.argv) != 3:
        print("usage: gpu-fragment-probe.py BUNDLE OUTDIR | --selftest", file=sys.stderr)
        return 2
    bundle, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    dump, tried = run_probe(bundle, outdir)
    if dump is None:
        print("fragment probe could not run: " + "; ".join(tried) if tried else "no probe binary and no nvcc")
        return 1
    with open(os.path.join(outdir, "fragment-probe.json"), "w") as f:
        json.dump(dump, f)
    results = check(dump)
    for _, line in results:
        print(line)
    failed = [line.split(":")[0] for ok, line in results if not ok]
    where = f"{dump.get('device', '?')} (cc {dump.get('cc', '?')})"
    if failed:
        print(f"fragment layouts DIFFER from the PTX rule on {where}: {', '.join(failed)}")
        return 1
    print(f"fragment layouts match the PTX rule on {where}: mma bf16 m16n8k16, mma tf32 m16n8k8, ldmatrix x1/x2/x4 (.trans), cp.async")
    return 0


if __name__ == "__main__":
    sys.exit(main())
