package io.hintgrpo.tests;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Tier 2 of the GPU check: per-kernel timings of the training step's and decode's ops on one
 * backend, at the shapes of one Qwen2.5-0.5B layer on a batch of 4 × 512 tokens ("full") or at
 * toy shapes that run anywhere in a second ("small", to check the harness itself).
 *
 * <p>Each op runs once to warm up, then enough times to fill about 0.2 s between two
 * synchronisations; the time per call includes launch overhead, as the training step pays it.
 * GFLOP/s and GB/s come from the op's nominal work (2·m·n·k for a GEMM, bytes read + written
 * once each for the rest), to compare against the device's ceilings.
 *
 * <pre>
 *   java -cp … io.hintgrpo.tests.GpuBench   [-Dhintgrpo.bench.backend=cuda] [-Dhintgrpo.bench.size=full]
 *                                           [-Dhintgrpo.bench.out=bench.json]
 * </pre>
 * Not a test (no JUnit annotations): scripts/gpu-check.sh --bench runs it.
 */
public final class GpuBench {
    record Result(String op, String shape, double ms, double gflops, double gbps) {}

    private final Kernels k;
    private final SplittableRandom rng = new SplittableRandom(42);
    private final List<Buf> held = new ArrayList<>();
    final List<Result> results = new ArrayList<>();

    GpuBench(Kernels k) {
        this.k = k;
    }

    public static void main(String[] args) throws IOException {
        String backend = System.getProperty("hintgrpo.bench.backend", "cuda");
        boolean full = !System.getProperty("hintgrpo.bench.size", "full").equals("small");
        String out = System.getProperty("hintgrpo.bench.out");
        try (Kernels k = Backends.open(backend)) {
            GpuBench bench = new GpuBench(k);
            bench.run(full);
            StringBuilder table = new StringBuilder(String.format(Locale.ROOT, "%-22s %-28s %10s %9s %9s%n", "op", "shape", "ms", "GFLOP/s", "GB/s"));
            for (Result r : bench.results)
                table.append(String.format(Locale.ROOT, "%-22s %-28s %10.4f %9.1f %9.1f%n", r.op, r.shape, r.ms, r.gflops, r.gbps));
            System.out.print(table);
            if (out != null) Files.writeString(Path.of(out), bench.json(k.name(), full));
            Result slowest = bench.results.stream().max((a, b) -> Double.compare(a.ms, b.ms)).orElseThrow();
            System.out.printf(Locale.ROOT, "GpuBench: %d ops timed on %s (%s shapes); slowest %s %.3f ms%n",
                    bench.results.size(), k.name(), full ? "full" : "small", slowest.op, slowest.ms);
        }
    }

    void run(boolean full) {
        // Qwen2.5-0.5B: hidden 896, 14 query heads on 2 KV heads of 64, MLP 4864, vocab 151936
        int b = full ? 4 : 2, t = full ? 512 : 16, m = b * t;
        int c = full ? 896 : 64, heads = full ? 14 : 4, kvHeads = 2, hd = c / heads, inter = full ? 4864 : 96;
        int vocab = full ? 151936 : 500, ceRows = full ? 512 : 16;
        long nParams = full ? 100_000_000L : 100_000L;
        int qkvDim = (heads + 2 * kvHeads) * hd;

        Buf x = rand(m * c), y = rand(m * c), out = rand(m * c), w = rand(c), rstd = rand(m);
        Buf qkv = rand((long) m * qkvDim), dqkv = rand((long) m * qkvDim), wqkv = rand((long) qkvDim * c), bqkv = rand(qkvDim);
        Buf gateUp = rand(2L * m * inter), act = rand((long) m * inter), wGateUp = rand(2L * inter * c), wDown = rand((long) c * inter);
        Buf dW = rand(2L * inter * c);
        Buf lengths = ints(java.util.Collections.nCopies(b, t).stream().mapToInt(Integer::intValue).toArray());
        Buf positions = ints(java.util.stream.IntStream.range(0, m).map(i -> i % t).toArray());
        Buf lse = rand((long) b * heads * t), attOut = rand((long) m * heads * hd);

        time("gemm NT qkv+bias", m + "x" + qkvDim + "x" + c, 2.0 * m * qkvDim * c, 4.0 * ((long) m * c + (long) qkvDim * c + (long) m * qkvDim),
                () -> k.gemm(Gemm.NT, qkv, x, wqkv, bqkv, m, qkvDim, c, false));
        time("gemm NT gate|up", m + "x" + 2 * inter + "x" + c, 2.0 * m * 2 * inter * c, 4.0 * ((long) m * c + 2L * inter * c + 2L * m * inter),
                () -> k.gemm(Gemm.NT, gateUp, x, wGateUp, null, m, 2 * inter, c, false));
        time("gemm NN down dx", m + "x" + inter + "x" + c, 2.0 * m * inter * c, 4.0 * ((long) m * c + (long) c * inter + (long) m * inter),
                () -> k.gemm(Gemm.NN, act, x, wDown, null, m, inter, c, false));
        time("gemm TN gate|up dW", 2 * inter + "x" + c + "x" + m, 2.0 * m * 2 * inter * c, 4.0 * (2L * m * inter + (long) m * c + 2L * inter * c),
                () -> k.gemm(Gemm.TN, dW, gateUp, x, null, 2 * inter, c, m, true));
        time("rmsnorm", m + "x" + c, 0, 4.0 * (2L * m * c + c),
                () -> k.rmsnorm(out, rstd, x, w, m, c, 1e-6f));
        Buf dw = rand(c);
        time("rmsnormBackward", m + "x" + c, 0, 4.0 * (4L * m * c + 2L * c),
                () -> k.rmsnormBackward(y, dw, out, x, w, rstd, m, c));
        time("add", m + "x" + c, 0, 4.0 * 3 * m * c, () -> k.add(out, x, y, (long) m * c));
        time("swiglu", m + "x" + inter, 0, 4.0 * 3 * m * inter, () -> k.swiglu(act, gateUp, m, inter));
        Buf dGateUp = rand(2L * m * inter);
        time("swigluBackward", m + "x" + inter, 0, 4.0 * 5 * m * inter, () -> k.swigluBackward(dGateUp, act, gateUp, m, inter));
        time("rope", m + "x" + (heads + kvHeads) + "x" + hd, 0, 4.0 * 2 * m * (heads + kvHeads) * hd,
                () -> k.rope(qkv, positions, m, heads, kvHeads, hd, 1e6f, false));
        double attFlops = 4.0 * b * heads * ((double) t * (t + 1) / 2) * hd;
        time("attention", b + "x" + t + " h" + heads + "/" + kvHeads + " d" + hd, attFlops, 4.0 * ((long) m * qkvDim + (long) m * heads * hd),
                () -> k.attention(attOut, lse, qkv, lengths, b, t, heads, kvHeads, hd));
        time("attentionBackward", b + "x" + t + " h" + heads + "/" + kvHeads + " d" + hd, 2.5 * attFlops, 4.0 * (3L * m * qkvDim + 2L * m * heads * hd),
                () -> k.attentionBackward(dqkv, attOut, qkv, attOut, lse, lengths, b, t, heads, kvHeads, hd));

        Buf logits = rand((long) ceRows * vocab), logprob = rand(ceRows), entropy = rand(ceRows), weights = rand(ceRows);
        Buf targets = randInts(ceRows, vocab);
        time("crossEntropy fwd+bwd", ceRows + "x" + vocab, 0, 4.0 * 2 * ceRows * vocab,
                () -> k.crossEntropy(logits, logprob, entropy, targets, weights, ceRows, vocab, 1f, true));
        Buf tokens = randInts(b, vocab), banned = ints(new int[]{vocab - 1});
        Buf sampleLogits = rand((long) b * vocab);
        time("sample top-p", b + "x" + vocab, 0, 4.0 * b * vocab,
                () -> k.sample(tokens, sampleLogits, b, vocab, 0.8f, 50, 0.9f, 7, 0, banned, 1));

        Buf p = rand(nParams), g = rand(nParams), mm = rand(nParams), vv = rand(nParams);
        // v must stay positive for AdamW's sqrt
        k.fill(vv, 0.01f);
        time("adamw", Long.toString(nParams), 0, 4.0 * 7 * nParams,
                () -> k.adamw(p, g, mm, vv, nParams, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1f, 1));
        time("sumSquares", Long.toString(nParams), 0, 4.0 * nParams, () -> k.sumSquares(g, nParams));

        for (Buf buf : held) k.free(buf);
        held.clear();
    }

    void time(String op, String shape, double flops, double bytes, Runnable call) {
        call.run();  // warm-up: module load, first-touch, caches
        k.synchronize();
        long t0 = System.nanoTime();
        call.run();
        k.synchronize();
        double once = Math.max(System.nanoTime() - t0, 1);
        int iters = (int) Math.max(3, Math.min(1000, 0.2e9 / once));
        t0 = System.nanoTime();
        for (int i = 0; i < iters; i++) call.run();
        k.synchronize();
        double ms = (System.nanoTime() - t0) / 1e6 / iters;
        results.add(new Result(op, shape, ms, flops / ms / 1e6, bytes / ms / 1e6));
    }

    Buf rand(long n) {
        Buf buf = k.allocF32(n);
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextDouble() * 2 - 1);
        k.upload(buf, v);
        held.add(buf);
        return buf;
    }

    Buf ints(int[] v) {
        Buf buf = k.allocI32(v.length);
        k.upload(buf, v);
        held.add(buf);
        return buf;
    }

    Buf randInts(int n, int bound) {
        int[] v = new int[n];
        for (int i = 0; i < n; i++) v[i] = rng.nextInt(bound);
        return ints(v);
    }

    String json(String backend, boolean full) {
        StringBuilder s = new StringBuilder("{\"backend\": \"" + backend + "\", \"shapes\": \"" + (full ? "full" : "small") + "\", \"results\": [\n");
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            s.append(String.format(Locale.ROOT, "  {\"op\": \"%s\", \"shape\": \"%s\", \"ms\": %.6f, \"gflops\": %.2f, \"gbps\": %.2f}%s%n",
                    r.op, r.shape, r.ms, r.gflops, r.gbps, i + 1 < results.size() ? "," : ""));
        }
        return s.append("]}\n").toString();
    }
}
