package io.hintgrpo.tests;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.engine.model.Sequence;

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
 * <p>Each op runs once to warm up, then in {@value #ROUNDS} rounds of enough calls to fill about
 * 0.04 s between two synchronisations; the time per call (the mean of the rounds) includes launch
 * overhead, as the training step pays it. GFLOP/s and GB/s come from the op's nominal work
 * (2·m·n·k for a GEMM, bytes read + written once each for the rest), to compare against the
 * device's ceilings.
 *
 * <p>The bf16 tensor-core GEMM ({@code Kernels.gemmBf16}) runs on every projection of the model at
 * m = 4096 tokens ("full"): the forward (NT), the input gradient (NN) and the weight gradient (TN)
 * of q|k|v, o, gate|up, down and the LM head. With {@code -Dhintgrpo.bench.python} (a python with
 * torch and CUDA) the same shapes are timed in the same run with torch.matmul on bf16 tensors
 * (cuBLAS; bf16 output) by {@code scripts/torch_gemm_bench.py}, the same way: the in-run
 * reference.
 *
 * <p>Batched decode ({@link Generator}) on the Qwen2.5-0.5B shape with random fp32 weights, at 8, 16
 * and 64 sequences, with CUDA graphs on and off: milliseconds per decode step (rows "decode graphs"
 * and "decode eager"), from the difference of two generate calls of different lengths so that
 * prefill, capture and set-up cancel out, and the step's bandwidth bound: the bytes a step must
 * read (every weight once, the embedding table only where it is the tied LM head, plus the KV
 * cache at the mean length) over the device-to-device copy bandwidth measured in the same run
 * (row "copy d2d", counting bytes read + written). Tokens/s and the bound are printed as a table
 * and written under "decode" in the JSON output.
 *
 * <p>{@code -Dhintgrpo.bench.jmh=FILE} also writes every timing as a JMH result array, which
 * {@code hintgrpo bench compare} reads: benchmark {@code io.hintgrpo.tests.GpuBench.hintgrpo} (ours)
 * or {@code ….torch} (the reference, {@code BenchCompare.REFERENCES}), params {@code op} and
 * {@code shape}, mode avgt in ms/op, scoreError the 99.9 % confidence half-width over the rounds
 * (Student's t, as JMH computes it).
 *
 * <pre>
 *   java -cp … io.hintgrpo.tests.GpuBench   [-Dhintgrpo.bench.backend=cuda] [-Dhintgrpo.bench.size=full]
 *                                           [-Dhintgrpo.bench.out=bench.json] [-Dhintgrpo.bench.jmh=bench-jmh.json]
 *                                           [-Dhintgrpo.bench.python=python3 -Dhintgrpo.bench.torchScript=scripts/torch_gemm_bench.py]
 * </pre>
 * Not a test (no JUnit annotations): scripts/gpu-check.sh --bench runs it.
 */
public final class GpuBench {
    /** One timing; source "hintgrpo" (our kernels) or "torch" (the in-run reference). */
    record Result(String source, String op, String shape, double ms, double error, double gflops, double gbps) {}

    /** One decode timing: batch, graphs on or off, time per step, and the bandwidth bound of a step. */
    record Decode(int batch, boolean graphs, double msPerStep, double boundMs, double bytesPerStep) {
        double tokensPerSecond() { return batch / msPerStep * 1e3; }
    }

    static final int ROUNDS = 5;
    /** Student's t at 99.9 % two-sided for ROUNDS − 1 degrees of freedom (JMH's scoreError). */
    static final double T_999 = 8.610;

    private final Kernels k;
    private final SplittableRandom rng = new SplittableRandom(42);
    private final List<Buf> held = new ArrayList<>();
    final List<Result> results = new ArrayList<>();
    final List<Decode> decode = new ArrayList<>();

    GpuBench(Kernels k) {
        this.k = k;
    }

    public static void main(String[] args) throws IOException {
        String backend = System.getProperty("hintgrpo.bench.backend", "cuda");
        boolean full = !System.getProperty("hintgrpo.bench.size", "full").equals("small");
        String out = System.getProperty("hintgrpo.bench.out"), jmh = System.getProperty("hintgrpo.bench.jmh");
        String python = System.getProperty("hintgrpo.bench.python");
        String torchScript = System.getProperty("hintgrpo.bench.torchScript", "scripts/torch_gemm_bench.py");
        try (Kernels k = Backends.open(backend)) {
            GpuBench bench = new GpuBench(k);
            bench.run(full);
            List<GemmShape> shapes = bench.runGemmBf16(full);
            bench.runDecode(full);
            if (python != null) bench.torchReference(python, torchScript, shapes);
            StringBuilder table = new StringBuilder(String.format(Locale.ROOT, "%-8s %-26s %-28s %10s %9s %9s%n",
                    "source", "op", "shape", "ms", "GFLOP/s", "GB/s"));
            for (Result r : bench.results)
                table.append(String.format(Locale.ROOT, "%-8s %-26s %-28s %10.4f %9.1f %9.1f%n", r.source, r.op, r.shape, r.ms, r.gflops, r.gbps));
            System.out.print(table);
            if (!bench.decode.isEmpty()) {
                System.out.printf(Locale.ROOT, "%n%-8s %-7s %10s %10s %10s %12s%n", "decode", "graphs", "ms/step", "tokens/s", "bound ms", "bound tok/s");
                for (Decode d : bench.decode)
                    System.out.printf(Locale.ROOT, "b=%-6d %-7s %10.3f %10.0f %10.3f %12.0f%n", d.batch, d.graphs ? "on" : "off",
                            d.msPerStep, d.tokensPerSecond(), d.boundMs, d.batch / d.boundMs * 1e3);
            }
            if (out != null) Files.writeString(Path.of(out), bench.json(k.name(), full));
            if (jmh != null) Files.writeString(Path.of(jmh), bench.jmhJson());
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
        int iters = (int) Math.max(3, Math.min(200, 0.04e9 / once));
        double[] rounds = new double[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) call.run();
            k.synchronize();
            rounds[r] = (System.nanoTime() - t0) / 1e6 / iters;
        }
        double ms = mean(rounds);
        results.add(new Result("hintgrpo", op, shape, ms, error(rounds), flops / ms / 1e6, bytes / ms / 1e6));
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s / v.length;
    }

    /** The 99.9 % confidence half-width of the mean of the rounds. */
    static double error(double[] v) {
        double m = mean(v), ss = 0;
        for (double x : v) ss += (x - m) * (x - m);
        return T_999 * Math.sqrt(ss / (v.length - 1)) / Math.sqrt(v.length);
    }

    // ---- the bf16 tensor-core GEMM and its torch reference ----

    /** One gemmBf16 call: layout and out[m,n], inner dimension k. */
    record GemmShape(String name, Gemm layout, int m, int n, int k) {
        String op() { return "gemmBf16 " + layout + " " + name; }

        String shape() { return m + "x" + n + "x" + k; }

        double flops() { return 2.0 * m * n * k; }

        /** bf16 operands read once, fp32 out written once. */
        double bytes() { return 2.0 * ((long) m * k + (long) n * k) + 4.0 * m * n; }
    }

    /**
     * Per projection (in → out features, weights stored [out, in]) on m tokens: forward NT
     * (out[m, out] = x · Wᵀ), input gradient NN (dx[m, in] = dy · W), weight gradient TN
     * (dW[out, in] = dyᵀ · x, k = m).
     */
    static List<GemmShape> gemmShapes(boolean full) {
        int m = full ? 4096 : 64, c = full ? 896 : 64, kv = full ? 128 : 16, inter = full ? 4864 : 96, vocab = full ? 151936 : 500;
        int[][] proj = {{c, c + 2 * kv}, {c, c}, {c, 2 * inter}, {inter, c}, {c, vocab}};
        String[] names = {"q|k|v", "o", "gate|up", "down", "lm_head"};
        List<GemmShape> shapes = new ArrayList<>();
        for (int i = 0; i < proj.length; i++) {
            int in = proj[i][0], out = proj[i][1];
            shapes.add(new GemmShape(names[i], Gemm.NT, m, out, in));
            shapes.add(new GemmShape(names[i], Gemm.NN, m, in, out));
            shapes.add(new GemmShape(names[i], Gemm.TN, out, in, m));
        }
        return shapes;
    }

    List<GemmShape> runGemmBf16(boolean full) {
        List<GemmShape> shapes = gemmShapes(full);
        long maxA = 0, maxB = 0, maxOut = 0;
        for (GemmShape g : shapes) {
            maxA = Math.max(maxA, (long) g.m * g.k);
            maxB = Math.max(maxB, (long) g.n * g.k);
            maxOut = Math.max(maxOut, (long) g.m * g.n);
        }
        Buf a = randBf16(maxA), b = randBf16(maxB), out = k.allocF32(maxOut);
        held.add(out);
        for (GemmShape g : shapes)
            time(g.op(), g.shape(), g.flops(), g.bytes(),
                    () -> k.gemmBf16(g.layout, out, a, b, null, g.m, g.n, g.k, false));
        for (Buf buf : held) k.free(buf);
        held.clear();
        return shapes;
    }

    // ---- batched decode, graphs on and off ----

    void runDecode(boolean full) {
        ModelConfig cfg = full ? Presets.qwen25_05b()
                : new ModelConfig(64, 96, 4, 2, 2, 500, 1e-6f, 10000f, true, 512, 0, 0, -1, -1, "linear");
        int prompt = full ? 32 : 8, shortRun = full ? 8 : 2, longRun = full ? 40 : 6;
        int[] batches = full ? new int[]{8, 16, 64} : new int[]{2, 4};

        long n = full ? 64L << 20 : 1L << 16; // 256 MiB: far past L2
        Buf src = k.allocF32(n), dst = k.allocF32(n);
        k.fill(src, 1f);
        time("copy d2d", Long.toString(n), 0, 8.0 * n, () -> k.copy(dst, src));
        double copyBytesPerMs = results.get(results.size() - 1).gbps() * 1e6;
        k.free(src);
        k.free(dst);

        try (Model m = new Model(k, cfg)) {
            randomize(m);
            long weightBytes = 4L * m.layout.size();
            double kvBytesPerToken = 2.0 * cfg.numLayers() * cfg.numKvHeads() * cfg.headDim() * 4;
            double meanLength = prompt + (shortRun + longRun) / 2.0;
            for (int b : batches) {
                List<Sequence> prompts = new ArrayList<>();
                for (int s = 0; s < b; s++) {
                    int[] ids = new int[prompt];
                    for (int i = 0; i < prompt; i++) ids[i] = rng.nextInt(cfg.vocabSize());
                    prompts.add(Sequence.text(ids));
                }
                // the embedding table is read whole only as the tied LM head; else just b rows of it
                long embed = (long) cfg.vocabSize() * cfg.hiddenSize();
                double bytes = weightBytes - (cfg.tieWordEmbeddings() ? 0 : 4.0 * (embed - (long) b * cfg.hiddenSize()))
                        + b * meanLength * kvBytesPerToken;
                for (boolean graphs : k.supportsGraphs() ? new boolean[]{false, true} : new boolean[]{false}) {
                    Generator g = new Generator(m, graphs);
                    // sampling at T = 1 without stop tokens: every sequence runs to the end
                    Generator.Options shortOpt = new Generator.Options(shortRun, 1f, 0, 1f, 3, null);
                    Generator.Options longOpt = new Generator.Options(longRun, 1f, 0, 1f, 3, null);
                    g.generate(prompts, shortOpt); // warm-up
                    double[] rounds = new double[ROUNDS];
                    for (int r = 0; r < ROUNDS; r++) {
                        long t0 = System.nanoTime();
                        g.generate(prompts, longOpt);
                        long t1 = System.nanoTime();
                        g.generate(prompts, shortOpt);
                        long t2 = System.nanoTime();
                        rounds[r] = ((t1 - t0) - (t2 - t1)) / 1e6 / (longRun - shortRun);
                    }
                    double ms = mean(rounds);
                    String shape = "b" + b + " ctx" + prompt + "+" + shortRun + ".." + longRun;
                    results.add(new Result("hintgrpo", graphs ? "decode graphs" : "decode eager", shape, ms, error(rounds),
                            2.0 * (weightBytes / 4.0) * b / ms / 1e6, bytes / ms / 1e6));
                    decode.add(new Decode(b, graphs, ms, bytes / copyBytesPerMs, bytes));
                }
            }
        }
    }

    /** Weights for timing only: a random tile repeated over each matrix, norms at 1 (decode time does not depend on the values). */
    void randomize(Model m) {
        int tileN = 1 << 20;
        float[] v = new float[tileN];
        for (int i = 0; i < tileN; i++) v[i] = (float) (0.02 * (rng.nextDouble() * 2 - 1)); // small, so 24 layers stay finite
        Buf tile = k.allocF32(tileN);
        k.upload(tile, v);
        for (ParamLayout.Entry e : m.layout.entries()) {
            Buf p = m.param(e.name());
            if (e.shape().length == 1) {
                k.fill(p, e.name().endsWith("norm.weight") ? 1f : 0f);
                continue;
            }
            for (long off = 0; off < p.length; off += tileN) {
                long len = Math.min(tileN, p.length - off);
                k.copy(p.slice(off, len), tile.slice(0, len));
            }
        }
        k.free(tile);
    }

    /**
     * n bf16 values uniform in [-1, 1): one random tile of at most 2^20, cast on the backend and
     * repeated (the LM head's operands hold over 600 M elements; timings do not care).
     */
    Buf randBf16(long n) {
        long tileN = Math.min(n, 1 << 20);
        Buf f = rand(tileN), tile = k.allocBf16(tileN), h = k.allocBf16(n);
        k.castF32ToBf16(tile, f, tileN);
        for (long off = 0; off < n; off += tileN) {
            long len = Math.min(tileN, n - off);
            k.copy(h.slice(off, len), tile.slice(0, len));
        }
        held.remove(f);
        k.free(f);
        k.free(tile);
        held.add(h);
        return h;
    }

    /**
     * Times the same shapes with torch.matmul (scripts/torch_gemm_bench.py: "LAYOUT M N K" lines
     * in, "LAYOUT M N K MS ERROR" lines out). A failing script costs the reference rows only.
     */
    void torchReference(String python, String script, List<GemmShape> shapes) {
        try {
            Process p = new ProcessBuilder(python, script).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            try (var w = new java.io.PrintWriter(p.getOutputStream(), true, java.nio.charset.StandardCharsets.UTF_8)) {
                for (GemmShape g : shapes) w.println(g.layout + " " + g.m + " " + g.n + " " + g.k);
            }
            List<String> lines = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).lines().toList();
            int rc = p.waitFor();
            if (rc != 0) {
                System.err.println("GpuBench: " + script + " exited with " + rc + ": no torch reference");
                return;
            }
            for (String line : lines) {
                String[] f = line.trim().split("\\s+");
                if (f.length != 6) continue; // torch's own chatter
                for (GemmShape g : shapes)
                    if (g.layout.name().equals(f[0]) && g.m == Integer.parseInt(f[1]) && g.n == Integer.parseInt(f[2])
                            && g.k == Integer.parseInt(f[3])) {
                        double ms = Double.parseDouble(f[4]);
                        results.add(new Result("torch", g.op(), g.shape(), ms, Double.parseDouble(f[5]),
                                g.flops() / ms / 1e6, (g.bytes() - 2.0 * g.m * g.n) / ms / 1e6));
                        break;
                    }
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            System.err.println("GpuBench: torch reference failed (" + e + ")");
        }
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
            s.append(String.format(Locale.ROOT, "  {\"source\": \"%s\", \"op\": \"%s\", \"shape\": \"%s\", \"ms\": %.6f, \"gflops\": %.2f, \"gbps\": %.2f}%s%n",
                    r.source, r.op, r.shape, r.ms, r.gflops, r.gbps, i + 1 < results.size() ? "," : ""));
        }
        s.append("], \"decode\": [\n");
        for (int i = 0; i < decode.size(); i++) {
            Decode d = decode.get(i);
            s.append(String.format(Locale.ROOT, "  {\"batch\": %d, \"graphs\": %b, \"ms_per_step\": %.6f, \"tokens_per_s\": %.1f, "
                            + "\"bytes_per_step\": %.0f, \"bound_ms\": %.6f, \"bound_tokens_per_s\": %.1f}%s%n",
                    d.batch, d.graphs, d.msPerStep, d.tokensPerSecond(), d.bytesPerStep, d.boundMs, d.batch / d.boundMs * 1e3,
                    i + 1 < decode.size() ? "," : ""));
        }
        return s.append("]}\n").toString();
    }

    /** Every timing as a JMH result array (what BenchCompare reads; see the class comment). */
    String jmhJson() {
        StringBuilder s = new StringBuilder("[\n");
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            s.append(String.format(Locale.ROOT, "  {\"benchmark\": \"%s.%s\", \"mode\": \"avgt\", \"params\": {\"op\": \"%s\", \"shape\": \"%s\"}, "
                            + "\"primaryMetric\": {\"score\": %.6f, \"scoreError\": %.6f, \"scoreUnit\": \"ms/op\"}}%s%n",
                    GpuBench.class.getName(), r.source, r.op, r.shape, r.ms, r.error, i + 1 < results.size() ? "," : ""));
        }
        return s.append("]\n").toString();
    }
}
