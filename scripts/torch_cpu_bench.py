#!/usr/bin/python3
"""In-run PyTorch CPU reference for `hintgrpo bench`: the same model-level benchmarks as our JMH
classes, in eager fp32 torch on the same cores, so results.md can say ours/torch.

Usage (Debian's /usr/bin/python3 with python3-torch; the pyenv python3 first on PATH has no torch):

  torch_cpu_bench.py --list                  the JMH benchmarks this script has a twin of
  torch_cpu_bench.py --probe                 one JSON line: torch version, BLAS, threads
  torch_cpu_bench.py REF_DIR --check         the logits check alone
  torch_cpu_bench.py REF_DIR [--bench A,B] [--warmup S] [--iterations N] [--time S] [--rounds R] [--paired]

REF_DIR is what `java -cp benchmarks.jar io.hintgrpo.benchmarks.TorchReference OUT CONFIG` writes
into OUT/CONFIG: config.json + model.safetensors (our model, Hugging Face Qwen2 names), the
benchmark batch (tokens.i32, little-endian int32 [batch, length]), our logits for it (logits.f32,
f32 [batch·length, vocab]) and reference.json {"batch", "length"}.

Every run first checks the torch model against ours: ‖torch − ours‖ / ‖ours‖ over all logits
(relative L2, the measure of ForwardBench's ONNX check) must be ≤ 1e-4, else exit 1. Then each
round times every benchmark JMH-style (warm-up for --warmup seconds, then --iterations iterations
of at least --time seconds each) and prints one JSON line {"round", "results": [...]} on stdout
with scores in the JMH unit of its twin (tokens/s or µs per call). With --paired, round r > 1 starts
only when a line arrives on stdin (EOF ends the run): `hintgrpo bench` runs a torch round right
before and right after our JMH fork of the same benchmarks (see docs/benchmarks.md).

The model is a plain functional Qwen2 decoder (the conventions of DESIGN.md, as in oracle.py, but
written for speed): RMSNorm, q|k|v and gate|up fused into one GEMM each like our parameter layout,
RoPE rotate-half with rope_theta from config.json, causal GQA attention as matmul-softmax-matmul
(torch 1.13 has no scaled_dot_product_attention) with the query heads of a KV head stacked as rows
of one GEMM, so K and V are never copied per query head; SwiGLU; final RMSNorm; LM head tied or not
as config.json says; fp32 throughout.

Exit status: 0 done; 1 the logits check failed; 2 bad input or no torch.
"""

import argparse
import json
import os
import sys
import time

# numpy and torch are imported in main(), after tune() has set what OpenBLAS reads when it loads
np = torch = F = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # oracle.py

# Short names of the JMH benchmarks (io.hintgrpo.benchmarks.<name>) this script mirrors.
BENCHMARKS = ["TrainStepBench.trainStep", "ForwardBench.ours", "LmHeadBench.forward", "LmHeadBench.forwardBackward",
              "AttentionBench.forward", "AttentionBench.backward", "DecodeBench.batch8", "DecodeBench.batch16"]
CHECK_TOL = 1e-4


def tune(threads):
    """Environment OpenBLAS and OpenMP read when torch loads them, so before `import torch`."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        flags = []
    # Debian's OpenBLAS 0.3.21 does not recognise newer Xeons and falls back to its generic
    # Prescott kernels (~30 GFLOP/s instead of ~150 at 1024³ on the 2-core dev machine); the
    # AVX-512 SkylakeX kernels run on any CPU that has these four extensions.
    if all(f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl")):
        os.environ.setdefault("OPENBLAS_CORETYPE", "SKYLAKEX")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    # idle OpenMP workers sleep instead of spinning, so they do not take a core from the JVM
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def blas_library():
    """The BLAS shared library this process mapped (the reference libblas is ~50× slower than OpenBLAS)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {l.split()[-1] for l in f if "blas" in l.lower() and l.split()[-1].startswith("/")}
    except OSError:
        return "?"
    openblas = [p for p in libs if "openblas" in os.path.basename(p)]
    return ", ".join(sorted(os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in openblas or libs)) or "?"


# ---------------------------------------------------------------------------------------------
# the reference directory
# ---------------------------------------------------------------------------------------------

def load_reference(ref_dir):
    """Config, our tensors as float32 torch tensors by HF name, tokens [b, t] and our logits [b·t, vocab]."""
    from oracle import Config, fail, load_json, read_safetensors
    cfg_path = os.path.join(ref_dir, "config.json")
    cfg = Config(load_json(cfg_path), cfg_path)
    ref = load_json(os.path.join(ref_dir, "reference.json"))
    b, t = ref.get("batch"), ref.get("length")
    if not (isinstance(b, int) and isinstance(t, int) and b > 0 and t > 0):
        fail(f"{ref_dir}/reference.json: needs positive integers \"batch\" and \"length\", got {ref!r}")
    st_path = os.path.join(ref_dir, "model.safetensors")
    raw = read_safetensors(st_path)
    expected = cfg.expected_shapes()
    for name, shape in expected.items():
        if name not in raw:
            fail(f"{st_path}: missing tensor {name}")
        if tuple(raw[name].shape) != shape:
            fail(f"{st_path}: {name} has shape {list(raw[name].shape)}, config says {list(shape)}")
    tensors = {n: torch.tensor(raw[n], dtype=torch.float32) for n in expected}
    tokens = read_raw(os.path.join(ref_dir, "tokens.i32"), "<i4", b * t).reshape(b, t)
    if tokens.min() < 0 or tokens.max() >= cfg.vocab:
        fail(f"{ref_dir}/tokens.i32: token ids must lie in [0, {cfg.vocab})")
    logits = read_raw(os.path.join(ref_dir, "logits.f32"), "<f4", b * t * cfg.vocab).reshape(b * t, cfg.vocab)
    return cfg, tensors, torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(logits.astype(np.float32))


def read_raw(path, dtype, count):
    from oracle import fail
    try:
        a = np.fromfile(path, dtype=dtype)
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    if a.size != count:
        fail(f"{path}: expected {count} values, found {a.size}")
    return a


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------

class Qwen2:
    """Our model's tensors, fused like our parameter layout (q|k|v, gate|up), and its forward."""

    def __init__(self, cfg, tensors):
        self.cfg = cfg
        self.embed = tensors["model.embed_tokens.weight"]
        self.norm = tensors["model.norm.weight"]
        self.head = self.embed if cfg.tie else tensors["lm_head.weight"]
        self.layers = []
        for l in range(cfg.layers):
            p = f"model.layers.{l}."
            a, m = p + "self_attn.", p + "mlp."
            self.layers.append({
                "ln1": tensors[p + "input_layernorm.weight"],
                "wqkv": torch.cat([tensors[a + "q_proj.weight"], tensors[a + "k_proj.weight"], tensors[a + "v_proj.weight"]]),
                "bqkv": torch.cat([tensors[a + "q_proj.bias"], tensors[a + "k_proj.bias"], tensors[a + "v_proj.bias"]]),
                "wo": tensors[a + "o_proj.weight"],
                "ln2": tensors[p + "post_attention_layernorm.weight"],
                "wgu": torch.cat([tensors[m + "gate_proj.weight"], tensors[m + "up_proj.weight"]]),
                "wdown": tensors[m + "down_proj.weight"],
            })
        # the modality projectors take no part in a text batch, but ours keeps them in the
        # optimizer (zero gradients, weight decay): so does the train step here
        self.extra = [v for n, v in tensors.items() if n.startswith("multi_modal_projector.")]
        d = cfg.head_dim
        # pinned: inverse frequencies theta^(-2i/d) and angles in float32
        inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, d, 2, dtype=torch.int64).to(torch.float32) / d))
        angle = torch.arange(4096, dtype=torch.float32)[:, None] * inv_freq
        angle = torch.cat([angle, angle], dim=-1)  # element i pairs with i + d/2 (rotate-half)
        self.cos, self.sin = torch.cos(angle), torch.sin(angle)

    def params(self):
        out = [self.embed, self.norm] + ([] if self.cfg.tie else [self.head])
        for L in self.layers:
            out += list(L.values())
        return out + self.extra

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.eps) * w

    def rope(self, x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def qkv(self, L, x):
        """x [b, t, c] → roped q [b, H, t, d], k and v [b, KV, t, d] (positions from start)."""
        cfg = self.cfg
        b, t, _ = x.shape
        H, KV, d = cfg.heads, cfg.kv_heads, cfg.head_dim
        q, k, v = F.linear(self.rmsnorm(x, L["ln1"]), L["wqkv"], L["bqkv"]).split([H * d, KV * d, KV * d], dim=-1)
        return q.view(b, t, H, d).transpose(1, 2), k.view(b, t, KV, d).transpose(1, 2), v.view(b, t, KV, d).transpose(1, 2)

    def mlp(self, L, x):
        g, u = F.linear(self.rmsnorm(x, L["ln2"]), L["wgu"]).chunk(2, dim=-1)
        return x + F.linear(F.silu(g) * u, L["wdown"])

    def hidden(self, ids, cache=None):
        """Final-normed hidden states [b, t, c] of full sequences; with a cache, their k and v go into it."""
        b, t = ids.shape
        cos, sin = self.cos[:t], self.sin[:t]
        x = F.embedding(ids, self.embed)
        for l, L in enumerate(self.layers):
            q, k, v = self.qkv(L, x)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            if cache is not None:
                cache.k[l][:, :, :t] = k
                cache.v[l][:, :, :t] = v
            a = causal_attention(q, k, v)
            x = self.mlp(L, x + F.linear(a.transpose(1, 2).reshape(b, t, -1), L["wo"]))
        return self.rmsnorm(x, self.norm)


_masks = {}


def causal_attention(q, k, v):
    """q [b, H, t, d], k, v [b, KV, t, d] → [b, H, t, d]; query head h reads KV head h // (H / KV)."""
    b, H, t, d = q.shape
    KV = k.shape[1]
    rep = H // KV
    mask = _masks.get((rep, t))
    if mask is None:  # causal mask of the rep·t stacked query rows against the t keys, made once
        i = torch.arange(t)
        causal = torch.zeros(t, t).masked_fill(i[None, :] > i[:, None], float("-inf"))
        mask = _masks[(rep, t)] = causal.repeat(rep, 1)
    # the rep query heads of a KV head are consecutive, so [b, KV, rep·t, d] is one GEMM per KV head
    qs = q.reshape(b * KV, rep * t, d)
    s = torch.baddbmm(mask, qs, k.reshape(b * KV, t, d).transpose(1, 2), alpha=1.0 / d ** 0.5)
    o = torch.bmm(torch.softmax(s, dim=-1), v.reshape(b * KV, t, d))
    return o.view(b, H, t, d)


def log_probs(logits, targets):
    """Per-row log-prob of the target and entropy, as our crossEntropy kernel hands them back."""
    logp = torch.log_softmax(logits, dim=-1)
    lp = logp.gather(1, targets.clamp(min=0)[:, None])[:, 0]
    with torch.no_grad():
        ent = -(logp.exp() * logp).sum(-1)
    return lp, ent


class Cache:
    def __init__(self, cfg, b, max_t):
        shape = (b, cfg.kv_heads, max_t, cfg.head_dim)
        self.k = [torch.zeros(shape) for _ in range(cfg.layers)]
        self.v = [torch.zeros(shape) for _ in range(cfg.layers)]


def generate(model, prompts, new_tokens, banned):
    """Greedy batched generation with a KV cache, as Generator.generate runs it: one prefill over the
    prompts, the first token from its last rows, then one step per further token."""
    cfg = model.cfg
    b, t = prompts.shape
    H, KV, d = cfg.heads, cfg.kv_heads, cfg.head_dim
    rep = H // KV
    cache = Cache(cfg, b, t + new_tokens)

    def next_token(h):  # h [b, c], final-normed
        logits = F.linear(h, model.head)
        logits[:, banned] = float("-inf")  # modality placeholders are never sampled
        return logits.argmax(-1)

    tok = next_token(model.hidden(prompts, cache)[:, -1])
    out = [tok]
    for n in range(1, new_tokens):
        pos = t + n - 1  # the position of tok
        cos, sin = model.cos[pos], model.sin[pos]
        x = F.embedding(tok, model.embed)[:, None]  # [b, 1, c]
        for l, L in enumerate(model.layers):
            q, k, v = model.qkv(L, x)
            q, k = model.rope(q, cos, sin), model.rope(k, cos, sin)
            cache.k[l][:, :, pos] = k[:, :, 0]
            cache.v[l][:, :, pos] = v[:, :, 0]
            kc, vc = cache.k[l][:, :, :pos + 1], cache.v[l][:, :, :pos + 1]
            s = torch.matmul(q.reshape(b, KV, rep, d), kc.transpose(-1, -2)) * (1.0 / d ** 0.5)
            a = torch.matmul(torch.softmax(s, dim=-1), vc)  # [b, KV, rep, d]
            x = model.mlp(L, x + F.linear(a.reshape(b, 1, H * d), L["wo"]))
        tok = next_token(model.rmsnorm(x[:, 0], model.norm))
        out.append(tok)
    return torch.stack(out, dim=1)


# ---------------------------------------------------------------------------------------------
# the benchmarks: shapes and inputs as the JMH classes (BenchModels: batch 8 × 128)
# ---------------------------------------------------------------------------------------------

def uniform(gen, *shape):
    """Uniform in [−0.5, 0.5) like BenchModels.random: inputs must not be zeros."""
    return torch.rand(*shape, generator=gen) - 0.5


def setup(name, cfg, model, tokens):
    """(call, mode, ops per call): mode "thrpt" scores ops/s, "avgt" µs per call, like the twin."""
    b, t = tokens.shape
    gen = torch.Generator().manual_seed(1)

    if name in ("TrainStepBench.trainStep", "ForwardBench.ours"):
        # every next-token prediction weighted 1/(b·(t−1)); the last row of a sequence has none
        targets = torch.cat([tokens[:, 1:], torch.full((b, 1), -1)], dim=1).reshape(-1)
        weights = (targets >= 0).float() / (b * (t - 1))

        def loss_of():
            h = model.hidden(tokens).reshape(b * t, -1)
            lp, _ = log_probs(F.linear(h, model.head), targets)
            return -(weights * lp).sum()

        if name == "ForwardBench.ours":
            def forward():
                with torch.no_grad():
                    return loss_of().item()
            return forward, "thrpt", b * t

        params = model.params()
        for p in params:
            p.requires_grad_(True)
            p.grad = torch.zeros_like(p)  # projector tensors get no gradient from a text batch: zeros, as ours
        decay = [p for p in params if p.dim() == 2]  # weight decay on matrices only, as ours
        rest = [p for p in params if p.dim() != 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)

        def train_step():  # TrainStepBench: zeroGrad, forwardBackward, AdamW.step(max norm 1)
            opt.zero_grad(set_to_none=False)
            loss = loss_of()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss.item()
        return train_step, "thrpt", b * t

    if name.startswith("LmHeadBench."):
        m, c, v = b * t, cfg.hidden, cfg.vocab
        x = uniform(gen, m, c)
        head = uniform(gen, v, c) * 0.04  # ~ the init's std 0.02
        targets = (torch.arange(m, dtype=torch.int64) * 2654435761) % v
        w = torch.full((m,), 1.0 / m)
        if name == "LmHeadBench.forward":
            def forward():
                with torch.no_grad():
                    return log_probs(F.linear(x, head), targets)
            return forward, "avgt", 1
        x.requires_grad_(True)
        head.requires_grad_(True)

        def forward_backward():  # dX overwritten, dW accumulated, as the JMH method does
            x.grad = None
            lp, _ = log_probs(F.linear(x, head), targets)
            (-(w * lp).sum()).backward()
        return forward_backward, "avgt", 1

    if name.startswith("AttentionBench."):
        m, H, KV, d = b * t, cfg.heads, cfg.kv_heads, cfg.head_dim
        qkv = uniform(gen, m, (H + 2 * KV) * d)

        def attention():
            q, k, v = qkv.view(b, t, H + 2 * KV, d).split([H, KV, KV], dim=2)
            return causal_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2).reshape(m, H * d)
        if name == "AttentionBench.forward":
            def forward():
                with torch.no_grad():
                    return attention()
            return forward, "avgt", 1
        qkv.requires_grad_(True)
        out = attention()  # one forward; each call runs its backward again
        dout = uniform(gen, m, H * d)

        def backward():
            return torch.autograd.grad(out, qkv, dout, retain_graph=True)
        return backward, "avgt", 1

    if name.startswith("DecodeBench.batch"):
        n = int(name[len("DecodeBench.batch"):])
        gen_prompts = torch.Generator().manual_seed(5)
        text_vocab = min(cfg.token_id.values()) if cfg.token_id else cfg.vocab
        prompts = torch.randint(0, text_vocab, (n, 32), generator=gen_prompts)
        banned = torch.tensor(sorted(cfg.token_id.values()), dtype=torch.int64)

        def decode():  # 32-token prompts, 32 new tokens each, greedy; the prefill is inside the timing
            with torch.inference_mode():
                return generate(model, prompts, 32, banned)
        return decode, "thrpt", n * 32

    raise ValueError(name)


def measure(call, warmup_s, iterations, time_s):
    """JMH-style: calls for warmup_s, then iterations of whole calls lasting ≥ time_s; seconds per call each."""
    t_end = time.perf_counter() + warmup_s
    while time.perf_counter() < t_end:
        call()
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        n = 0
        while True:
            call()
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= time_s:
                break
        samples.append(elapsed / n)
    return samples


def check(model, tokens, ours):
    with torch.no_grad():
        logits = F.linear(model.hidden(tokens), model.head).reshape(ours.shape)
    diff = (logits.double() - ours.double())
    rel = (diff.norm() / ours.double().norm()).item()
    return {"rel_l2": rel, "max_abs": diff.abs().max().item(), "max_abs_ours": ours.abs().max().item(), "tol": CHECK_TOL}


# ---------------------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(prog="torch_cpu_bench.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("ref_dir", nargs="?", help="a TorchReference output directory for one config")
    ap.add_argument("--list", action="store_true", help="print the benchmarks this script mirrors and exit")
    ap.add_argument("--probe", action="store_true", help="print torch's version, BLAS and threads as JSON and exit")
    ap.add_argument("--check", action="store_true", help="only the logits check")
    ap.add_argument("--bench", default=",".join(BENCHMARKS), help="comma-separated short names (default: all)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="torch and OpenBLAS threads (default: the CPUs this process may use, like ours)")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per benchmark and round (default 2)")
    ap.add_argument("--iterations", type=int, default=3, help="measured iterations per benchmark and round (default 3)")
    ap.add_argument("--time", type=float, default=1.0, help="seconds per iteration, at least one call (default 1)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of every benchmark (default 1)")
    ap.add_argument("--paired", action="store_true", help="before each round after the first, wait for a line on stdin")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    if args.threads < 1 or args.iterations < 1 or args.rounds < 1 or args.warmup < 0 or args.time < 0:
        ap.error("--threads, --iterations and --rounds must be ≥ 1; --warmup and --time ≥ 0")
    names = [n for n in args.bench.split(",") if n]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if not args.probe and args.ref_dir is None:
        ap.error("REF_DIR is required (or --list / --probe)")

    tune(args.threads)
    global torch, F, np
    try:
        import numpy as np
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"torch_cpu_bench.py: error: {sys.executable} cannot import {e.name}: use Debian's /usr/bin/python3 after "
              "`apt-get install -y python3-torch libopenblas0-pthread`", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.ones(8, 8) @ torch.ones(8, 8)  # loads BLAS, so the probe can name it
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")}
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_library(), "env": env}
    if args.probe:
        print(json.dumps(info))
        return 0

    from oracle import BadInput
    try:
        cfg, tensors, tokens, ours = load_reference(args.ref_dir)
    except BadInput as e:
        print(f"torch_cpu_bench.py: error: {e}", file=sys.stderr)
        return 2
    model = Qwen2(cfg, tensors)
    c = check(model, tokens, ours)
    print(json.dumps({"check": c}), flush=True)
    verdict = f"‖torch − ours‖/‖ours‖ = {c['rel_l2']:.2e} (max |Δ| {c['max_abs']:.2e} of max |logit| {c['max_abs_ours']:.2f})"
    if not c["rel_l2"] <= CHECK_TOL:
        print(f"torch_cpu_bench.py: error: {args.ref_dir}: torch and our logits disagree: {verdict} > {CHECK_TOL:g}",
              file=sys.stderr)
        return 1
    print(f"torch_cpu_bench.py: logits check ok, {verdict} ≤ {CHECK_TOL:g}; torch {torch.__version__}, "
          f"{args.threads} threads, BLAS {info['blas']}", file=sys.stderr, flush=True)
    if args.check:
        return 0

    calls = {n: setup(n, cfg, model, tokens) for n in names}
    for r in range(1, args.rounds + 1):
        if r > 1 and args.paired and not sys.stdin.readline():
            break  # EOF: the caller wants no more rounds
        results = []
        for n in names:
            call, mode, ops = calls[n]
            secs = measure(call, args.warmup, args.iterations, args.time)
            scores = [ops / s for s in secs] if mode == "thrpt" else [s * 1e6 for s in secs]
            results.append({"benchmark": n, "mode": mode, "unit": "ops/s" if mode == "thrpt" else "us/op",
                            "scores": scores, "score": sum(scores) / len(scores)})
        print(json.dumps({"round": r, "results": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
