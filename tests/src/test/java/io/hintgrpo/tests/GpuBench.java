package io.hintgrpo.tests;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.MemoryPlan;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Precision;
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
 * toy shapes that run anywhere in a second ("small", to check the harness itself); and the
 * model-level sections, each against torch in the same run where there is a reference (sections,
 * in order, {@link Options#ALL}; docs/gpu-check.md has the table): attention forward and
 * forward+backward vs SDPA in fp32 and bf16 ({@code scripts/torch_attention_bench.py}), memory per
 * component and training steps vs a PyTorch eager step with MFU ({@link TrainBench},
 * {@code scripts/torch_train_bench.py}), a GRPO step in phases
 * ({@link GrpoPhases}). It ends with the targets as ratios of
 * this run ({@link #computeTargets}).
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
 *                                           [-Dhintgrpo.bench.sections=kernels,gemm,attention,decode,memory,train,grpo]
 *                                           [-Dhintgrpo.bench.python=python3 -Dhintgrpo.bench.scripts=scripts]
 *                                           [-Dhintgrpo.bench.torchScript=scripts/torch_gemm_bench.py] [-Dhintgrpo.bench.peakTflops=989]
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

    /** One attention timing pair: ours (fp32 kernels) and the torch reference at a dtype; NaN where not run. */
    record AttentionShape(int b, int t, int heads, int kvHeads, int headDim) {
        String shape() {
            return "b" + b + " t" + t + " h" + heads + "/" + kvHeads + " d" + headDim;
        }

        /** Causal forward FLOPs: q·kᵀ and p·v over the lower triangle. */
        double forwardFlops() {
            return 4.0 * b * heads * ((double) t * (t + 1) / 2) * headDim;
        }
    }

    /** A target of the CUDA backend II issue: ratio (higher is better) against goal, measured in this run. */
    record Target(String what, String row, double ratio, double goal, String against) {
        boolean met() {
            return ratio >= goal;
        }
    }

    static final int ROUNDS = 5;
    /** Student's t at 99.9 % two-sided for ROUNDS − 1 degrees of freedom (JMH's scoreError). */
    static final double T_999 = 8.610;
    /** Student's t at 99.9 % two-sided for 1..9 degrees of freedom. */
    private static final double[] T_999_DF = {636.62, 31.599, 12.924, 8.610, 6.869, 5.959, 5.408, 5.041, 4.781};

    final Kernels k;
    private final SplittableRandom rng = new SplittableRandom(42);
    private final List<Buf> held = new ArrayList<>();
    final List<Result> results = new ArrayList<>();
    final List<Decode> decode = new ArrayList<>();
    final List<TrainBench.Step> train = new ArrayList<>();
    final List<TrainBench.Memory> memory = new ArrayList<>();
    final List<Target> targets = new ArrayList<>();
    /** GRPO phases: generate, reference, update, step; with the rollout shape. */
    final List<Result> grpo = new ArrayList<>();
    boolean full;
    String device = "";
    double peakFlops = Double.NaN, seconds;
    /** Device-to-device copy bandwidth of this run, GB/s (bytes read + written). */
    double copyGbps = Double.NaN;

    GpuBench(Kernels k) {
        this.k = k;
    }

    /** What to run and where to write: the system properties of the class comment. */
    record Options(String backend, boolean full, Path out, Path jmh, String python, Path scripts, Path gemmScript,
                   java.util.Set<String> sections) {
        static final List<String> ALL = List.of("kernels", "gemm", "attention", "decode", "memory", "train", "grpo");
        /** Sections run only when named (-Dhintgrpo.bench.sections=scale): minutes at the full size. */
        static final List<String> ON_REQUEST = List.of("scale");

        static Options fromProperties() {
            Path scripts = Path.of(System.getProperty("hintgrpo.bench.scripts", "scripts"));
            String gemm = System.getProperty("hintgrpo.bench.torchScript");
            String out = System.getProperty("hintgrpo.bench.out"), jmh = System.getProperty("hintgrpo.bench.jmh");
            String sections = System.getProperty("hintgrpo.bench.sections", String.join(",", ALL));
            return new Options(System.getProperty("hintgrpo.bench.backend", "cuda"),
                    !System.getProperty("hintgrpo.bench.size", "full").equals("small"),
                    out == null ? null : Path.of(out), jmh == null ? null : Path.of(jmh), System.getProperty("hintgrpo.bench.python"),
                    scripts, gemm == null ? scripts.resolve("torch_gemm_bench.py") : Path.of(gemm),
                    new java.util.LinkedHashSet<>(List.of(sections.split(","))));
        }

        boolean has(String section) {
            return sections.contains(section);
        }
    }

    public static void main(String[] args) throws IOException {
        run(Options.fromProperties());
    }

    /**
     * Runs the chosen sections in order (kernels, gemm, attention, decode, memory, train, grpo),
     * writing the JSON files after each so a run cut short keeps what it measured, then prints the
     * tables, the targets table last.
     */
    static GpuBench run(Options o) throws IOException {
        for (String sec : o.sections)
            if (!Options.ALL.contains(sec) && !Options.ON_REQUEST.contains(sec))
                throw new IllegalArgumentException("unknown bench section " + sec + "; known: " + Options.ALL + " and " + Options.ON_REQUEST);
        try (Kernels k = Backends.open(o.backend)) {
            GpuBench bench = new GpuBench(k);
            bench.full = o.full;
            bench.device = TrainBench.deviceName(k);
            bench.peakFlops = TrainBench.peakFlops(k);
            long start = System.nanoTime();
            bench.runCopy(o.full);
            if (o.has("kernels")) bench.section("kernels", o, () -> bench.run(o.full));
            if (o.has("gemm")) bench.section("gemm", o, () -> {
                List<GemmShape> shapes = bench.runGemmBf16(o.full);
                if (o.python != null) bench.torchReference(o.python, o.gemmScript.toString(), shapes);
            });
            if (o.has("attention")) bench.section("attention", o, () -> {
                List<AttentionShape> shapes = bench.runAttention(o.full);
                if (o.python != null) bench.torchAttention(o.python, o.scripts.resolve("torch_attention_bench.py").toString(), shapes);
            });
            if (o.has("decode")) bench.section("decode", o, () -> bench.runDecode(o.full));
            TrainBench train = new TrainBench(bench);
            if (o.has("memory")) bench.section("memory", o, () -> {
                // GRPO's rollouts: 4 prompts × G 8 of 64 + 256 tokens (toy sizes in small)
                bench.memory.addAll(o.full ? train.memory(Presets.qwen25_05b(), 4, 2048, 32, 320)
                        : train.memory(tinyConfig(), 2, 32, 4, 24));
            });
            if (o.has("train")) bench.section("train", o, () -> {
                List<TrainBench.Config> configs = TrainBench.configs(o.full);
                bench.train.addAll(train.runOurs(configs));
                if (o.python != null) bench.train.addAll(train.runTorch(o.python, o.scripts.resolve("torch_train_bench.py").toString(), configs));
                for (TrainBench.Step st : bench.train) {
                    boolean torch = st.who().startsWith("torch");
                    String op = torch ? "train step bf16" : "train step " + st.who().substring("hintgrpo ".length());
                    bench.results.add(new Result(torch ? "torch" : "hintgrpo", op, st.config().shape(), st.ms(), st.error(),
                            6.0 * st.params() * st.tokensPerSecond() / 1e9, 0));
                }
            });
            if (o.has("grpo")) bench.section("grpo", o, () -> bench.runGrpo(o.full));
            if (o.has("scale")) bench.section("scale", o, () -> bench.runScale(o.full));
            bench.seconds = (System.nanoTime() - start) / 1e9;
            bench.computeTargets();
            bench.save(o);
            bench.printTables();
            Result slowest = bench.results.stream().max((a, b) -> Double.compare(a.ms, b.ms)).orElse(null);
            System.out.printf(Locale.ROOT, "GpuBench: %d timings on %s (%s shapes, %.0f s)%s; targets met %d of %d%n",
                    bench.results.size(), k.name(), o.full ? "full" : "small", bench.seconds,
                    slowest == null ? "" : String.format(Locale.ROOT, "; slowest %s %.3f ms", slowest.op, slowest.ms),
                    bench.targets.stream().filter(Target::met).count(), bench.targets.size());
            return bench;
        }
    }

    /** Runs one section, logs its time, writes the JSON files so far. */
    void section(String name, Options o, Runnable body) throws IOException {
        long t0 = System.nanoTime();
        body.run();
        trim();
        System.err.printf(Locale.ROOT, "GpuBench: section %s done in %.1f s%n", name, (System.nanoTime() - t0) / 1e9);
        save(o);
    }

    void save(Options o) throws IOException {
        if (o.out != null) Files.writeString(o.out, json(k.name(), o.full));
        if (o.jmh != null) Files.writeString(o.jmh, jmhJson());
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
                () -> k.crossEntropy(logits, logprob, entropy, null, targets, weights, ceRows, vocab, 1f, true));
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
        double[] rounds = timeRounds(call, 1, 3, 0.04);
        double ms = mean(rounds);
        results.add(new Result("hintgrpo", op, shape, ms, error(rounds), flops / ms / 1e6, bytes / ms / 1e6));
    }

    /**
     * Milliseconds per call in each of {@value #ROUNDS} rounds: warmups calls first (module load,
     * first touch, caches), then rounds of max(minIters, enough calls for about target seconds
     * judged from one call), at most 200, each ended by a synchronisation.
     */
    double[] timeRounds(Runnable call, int warmups, int minIters, double targetSeconds) {
        for (int i = 0; i < warmups; i++) call.run();
        k.synchronize();
        long t0 = System.nanoTime();
        call.run();
        k.synchronize();
        double once = Math.max(System.nanoTime() - t0, 1);
        int iters = (int) Math.max(minIters, Math.min(200, targetSeconds * 1e9 / once));
        double[] rounds = new double[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) call.run();
            k.synchronize();
            rounds[r] = (System.nanoTime() - t0) / 1e6 / iters;
        }
        return rounds;
    }

    /** Returns the CUDA allocator's cached blocks to the driver (before torch runs, and between model sections). */
    void trim() {
        k.synchronize();
        if (k instanceof io.hintgrpo.engine.cuda.CudaKernels c) c.memory().trim();
    }

    public static double mean(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s / v.length;
    }

    /** The 99.9 % confidence half-width of the mean of the rounds (Student's t, as JMH); 0 for one round. */
    public static double error(double[] v) {
        if (v.length < 2) return 0;
        double m = mean(v), ss = 0;
        for (double x : v) ss += (x - m) * (x - m);
        double t = v.length - 1 <= T_999_DF.length ? T_999_DF[v.length - 2] : 3.291; // normal limit beyond
        return t * Math.sqrt(ss / (v.length - 1)) / Math.sqrt(v.length);
    }

    /** The toy model of the "small" size: hidden 64, 2 layers, GQA 4/2, vocab 500, tied. */
    static ModelConfig tinyConfig() {
        return new ModelConfig(64, 96, 4, 2, 2, 500, 1e-6f, 10000f, true, 512, 0, 0, -1, -1, "linear");
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

    // ---- device-to-device copy: the bandwidth every memory-bound row is read against ----

    void runCopy(boolean full) {
        long n = full ? 64L << 20 : 1L << 16; // 256 MiB: far past L2
        Buf src = k.allocF32(n), dst = k.allocF32(n);
        k.fill(src, 1f);
        time("copy d2d", Long.toString(n), 0, 8.0 * n, () -> k.copy(dst, src));
        copyGbps = results.get(results.size() - 1).gbps();
        k.free(src);
        k.free(dst);
    }

    // ---- batched decode, graphs on and off ----

    void runDecode(boolean full) {
        ModelConfig cfg = full ? Presets.qwen25_05b() : tinyConfig();
        int prompt = full ? 32 : 8, shortRun = full ? 8 : 2, longRun = full ? 40 : 18;
        int[] batches = full ? new int[]{8, 16, 64} : new int[]{2, 4};

        double copyBytesPerMs = copyGbps * 1e6;
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
                    double[] rounds = new double[ROUNDS], longRuns = new double[ROUNDS];
                    for (int r = 0; r < ROUNDS; r++) {
                        long t0 = System.nanoTime();
                        g.generate(prompts, longOpt);
                        long t1 = System.nanoTime();
                        g.generate(prompts, shortOpt);
                        long t2 = System.nanoTime();
                        rounds[r] = ((t1 - t0) - (t2 - t1)) / 1e6 / (longRun - shortRun);
                        longRuns[r] = (t1 - t0) / 1e6 / longRun;
                    }
                    String shape = "b" + b + " ctx" + prompt + "+" + shortRun + ".." + longRun;
                    double ms = mean(rounds);
                    if (!(ms > 0)) { // noise beyond the extra tokens' time (toy sizes on a busy cpu): no difference to report
                        System.out.printf(Locale.ROOT, "GpuBench: decode %s: the long and short runs' difference is not positive;"
                                + " reporting the long run's time per token (prefill included)%n", shape);
                        rounds = longRuns;
                        ms = mean(rounds);
                    }
                    results.add(new Result("hintgrpo", graphs ? "decode graphs" : "decode eager", shape, ms, error(rounds),
                            2.0 * (weightBytes / 4.0) * b / ms / 1e6, bytes / ms / 1e6));
                    decode.add(new Decode(b, graphs, ms, bytes / copyBytesPerMs, bytes));
                }
            }
        }
    }

    /** Weights for timing only: a random tile repeated over each matrix, norms at 1 (decode time does not depend on the values). */
    void randomize(Model m) {
        long largest = m.layout.entries().stream().mapToLong(ParamLayout.Entry::size).max().orElse(1);
        int tileN = (int) Math.min(1 << 20, largest);
        float[] v = new float[tileN];
        for (int i = 0; i < tileN; i++) v[i] = (float) (0.02 * (rng.nextDouble() * 2 - 1)); // small, so 24 layers stay finite
        Buf tile = k.allocF32(tileN), tile16 = k.allocBf16(tileN); // a frozen bf16 base's matrices take the bf16 tile
        k.upload(tile, v);
        k.castF32ToBf16(tile16, tile, tileN);
        for (ParamLayout.Entry e : m.layout.entries()) {
            Buf p = m.param(e.name());
            if (e.shape().length == 1) {
                k.fill(p, e.name().endsWith("norm.weight") ? 1f : 0f);
                continue;
            }
            Buf from = p.type == Buf.Type.BF16 ? tile16 : tile;
            for (long off = 0; off < p.length; off += tileN) {
                long len = Math.min(tileN, p.length - off);
                k.copy(p.slice(off, len), from.slice(0, len));
            }
        }
        k.free(tile);
        k.free(tile16);
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
     * Runs {@code python script} with one request per line on stdin and returns the lines of its
     * stdout that have exactly {@code fields} fields (torch's own chatter is skipped; its stderr
     * goes to ours). A script that fails costs its reference rows only: an empty list and a line
     * on stderr.
     */
    static List<String[]> runScript(String python, String script, List<String> lines, int fields) {
        List<String[]> out = new ArrayList<>();
        try {
            Process p = new ProcessBuilder(python, script).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            try (var w = new java.io.PrintWriter(p.getOutputStream(), true, java.nio.charset.StandardCharsets.UTF_8)) {
                for (String line : lines) w.println(line);
            }
            List<String> got = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).lines().toList();
            int rc = p.waitFor();
            if (rc != 0) {
                System.err.println("GpuBench: " + script + " exited with " + rc + ": no torch reference from it");
                return out;
            }
            for (String line : got) {
                String[] f = line.trim().split("\\s+");
                if (f.length == fields) out.add(f);
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            System.err.println("GpuBench: " + script + " failed (" + e + "): no torch reference from it");
        }
        return out;
    }

    /**
     * Times the same shapes with torch.matmul (scripts/torch_gemm_bench.py: "LAYOUT M N K" lines
     * in, "LAYOUT M N K MS ERROR" lines out).
     */
    void torchReference(String python, String script, List<GemmShape> shapes) {
        trim();
        List<String> lines = shapes.stream().map(g -> g.layout + " " + g.m + " " + g.n + " " + g.k).toList();
        for (String[] f : runScript(python, script, lines, 6)) {
            for (GemmShape g : shapes)
                if (g.layout.name().equals(f[0]) && g.m == Integer.parseInt(f[1]) && g.n == Integer.parseInt(f[2])
                        && g.k == Integer.parseInt(f[3])) {
                    double ms = Double.parseDouble(f[4]);
                    results.add(new Result("torch", g.op(), g.shape(), ms, Double.parseDouble(f[5]),
                            g.flops() / ms / 1e6, (g.bytes() - 2.0 * g.m * g.n) / ms / 1e6));
                    break;
                }
        }
    }

    // ---- attention forward and forward+backward, and torch's SDPA ----

    /** The 0.5B attention (14 heads on 2 KV heads of 64) on 4 sequences of 512 and of 2048 tokens. */
    static List<AttentionShape> attentionShapes(boolean full) {
        return full ? List.of(new AttentionShape(4, 512, 14, 2, 64), new AttentionShape(4, 2048, 14, 2, 64))
                : List.of(new AttentionShape(2, 16, 4, 2, 16), new AttentionShape(1, 32, 4, 2, 16));
    }

    /**
     * Ours (fp32, Kernels.attention and attentionBackward) per shape: rows "attention fwd" (saves
     * the log-sum-exp, as training does) and "attention fwd+bwd" (forward then backward, the
     * training step's cost). GFLOP/s from the causal forward FLOPs and 2.5× that for the backward.
     */
    List<AttentionShape> runAttention(boolean full) {
        List<AttentionShape> shapes = attentionShapes(full);
        for (AttentionShape a : shapes) {
            int m = a.b() * a.t(), qkvDim = (a.heads() + 2 * a.kvHeads()) * a.headDim(), qDim = a.heads() * a.headDim();
            Buf qkv = rand((long) m * qkvDim), dqkv = rand((long) m * qkvDim), att = rand((long) m * qDim), datt = rand((long) m * qDim);
            Buf lse = rand((long) a.b() * a.heads() * a.t());
            Buf lengths = ints(java.util.stream.IntStream.range(0, a.b()).map(i -> a.t()).toArray());
            double bytes = 4.0 * ((long) m * qkvDim + (long) m * qDim);
            time("attention fwd", a.shape(), a.forwardFlops(), bytes,
                    () -> k.attention(att, lse, qkv, lengths, a.b(), a.t(), a.heads(), a.kvHeads(), a.headDim()));
            time("attention fwd+bwd", a.shape(), 3.5 * a.forwardFlops(), 4 * bytes, () -> {
                k.attention(att, lse, qkv, lengths, a.b(), a.t(), a.heads(), a.kvHeads(), a.headDim());
                k.attentionBackward(dqkv, datt, qkv, att, lse, lengths, a.b(), a.t(), a.heads(), a.kvHeads(), a.headDim());
            });
            for (Buf buf : held) k.free(buf);
            held.clear();
        }
        return shapes;
    }

    /**
     * SDPA on the same shapes (scripts/torch_attention_bench.py), fp32 and bf16. The fp32 rows carry
     * our op names (the paired reference of bench compare: same precision as our kernels); the bf16
     * rows are named "… bf16" and stand alone.
     */
    void torchAttention(String python, String script, List<AttentionShape> shapes) {
        trim();
        List<String> lines = shapes.stream().map(a -> a.b() + " " + a.t() + " " + a.heads() + " " + a.kvHeads() + " " + a.headDim()).toList();
        for (String[] f : runScript(python, script, lines, 10)) {
            AttentionShape a = new AttentionShape(Integer.parseInt(f[2]), Integer.parseInt(f[3]), Integer.parseInt(f[4]),
                    Integer.parseInt(f[5]), Integer.parseInt(f[6]));
            if (!shapes.contains(a)) continue;
            boolean bwd = f[1].equals("fwdbwd");
            String op = (bwd ? "attention fwd+bwd" : "attention fwd") + (f[0].equals("bf16") ? " bf16" : "");
            double ms = Double.parseDouble(f[7]);
            results.add(new Result("torch", op, a.shape(), ms, Double.parseDouble(f[8]),
                    (bwd ? 3.5 : 1.0) * a.forwardFlops() / ms / 1e6, 0));
            attentionImpl = f[9];
        }
    }

    /** How torch ran GQA in SDPA ("sdpa-gqa", "sdpa-repeat" or "manual"), once known. */
    String attentionImpl = "";

    // ---- a GRPO step on the 0.5B shape: generation, reference log-probs, update ----

    /**
     * 4 prompts of 64 random tokens × G = 8 rollouts of 256 tokens, the policy in bf16 with AdamW,
     * a bf16 reference model; 1 warm-up and 3 timed steps (GrpoPhases).
     */
    void runGrpo(boolean full) {
        ModelConfig cfg = full ? Presets.qwen25_05b() : tinyConfig();
        int prompts = full ? 4 : 2, g = full ? 8 : 2, promptLen = full ? 64 : 8, completion = full ? 256 : 8, rounds = 3;
        GrpoPhases.Phases ph;
        try (Model policy = new Model(k, cfg); Model reference = new Model(k, cfg);
             AdamW opt = new AdamW(policy, 1e-6f, 0.9f, 0.99f, 1e-8f, 0f)) {
            randomize(policy);
            randomize(reference);
            policy.setPrecision(Precision.BF16);
            reference.setPrecision(Precision.BF16);
            ph = GrpoPhases.run(policy, reference, opt, prompts, g, promptLen, completion, rounds, 5);
        }
        String shape = (full ? "0.5b" : "tiny") + " " + prompts + "x" + g + " p" + promptLen + "+" + completion;
        double[] step = new double[rounds];
        for (int r = 0; r < rounds; r++) step[r] = ph.generate()[r] + ph.reference()[r] + ph.update()[r];
        String[] names = {"grpo generate", "grpo reference logprobs", "grpo update", "grpo step"};
        double[][] phases = {ph.generate(), ph.reference(), ph.update(), step};
        for (int i = 0; i < names.length; i++) {
            Result r = new Result("hintgrpo", names[i], shape, mean(phases[i]), error(phases[i]), 0, 0);
            grpo.add(r);
            results.add(r);
        }
        grpoTokens = (long) ph.sequences() * ph.completionTokens();
    }

    /** Completion tokens generated per GRPO step. */
    long grpoTokens;

    /**
     * The paper's scale (memory plan issue, item 4): one LoRA GRPO step (generation, reference
     * log-probs with the adapters off, update) of Qwen2.5-7B's shape (a toy shape in small) on a
     * frozen bf16 base with rank-16 adapters on all seven Linears and activation recompute; random
     * weights made on the device. Rows in the memory table: each phase's peak device bytes against
     * {@link MemoryPlan}; rows in the timings: each phase's time. One warm-up and one timed step.
     */
    void runScale(boolean full) {
        ModelConfig cfg = full ? Presets.qwen25_7b() : tinyConfig();
        int prompts = full ? 8 : 2, g = full ? 8 : 2, promptLen = full ? 256 : 8, completion = full ? 112 : 8;
        LoraConfig lora = LoraConfig.of(16, 32, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));
        trim();
        long before = k instanceof io.hintgrpo.engine.cuda.CudaKernels c ? c.memory().bytesInUse() : 0;
        GrpoPhases.Phases ph;
        try (Model policy = Model.frozenBf16(k, cfg)) {
            randomize(policy);
            policy.attachLora(lora, 3);
            policy.setRecompute(true);
            try (AdamW opt = new AdamW(policy, 1e-6f, 0.9f, 0.99f, 1e-8f, 0f)) {
                ph = GrpoPhases.run(policy, policy, opt, prompts, g, promptLen, completion, 1, 7);
            }
        }
        MemoryPlan.Setup s = new MemoryPlan.Setup(cfg, lora, Precision.BF16, true, true, k.logitChunkFloats());
        List<MemoryPlan.Phase> plan = MemoryPlan.grpo(s, new MemoryPlan.Grpo(prompts, g, promptLen, completion, 1, false), MemoryPlan.Features.NONE);
        String shape = (full ? "7b" : "tiny") + " lora16 bf16-base recompute " + prompts + "x" + g + " p" + promptLen + "+" + completion;
        boolean measured = k instanceof io.hintgrpo.engine.cuda.CudaKernels;
        memory.add(new TrainBench.Memory("scale " + shape + ": generation peak", plan.get(0).total(),
                measured ? ph.peakBytes()[0] - before : Double.NaN, "MemoryPlan.grpo generation phase vs the allocator's peak"));
        memory.add(new TrainBench.Memory("scale " + shape + ": reference forward peak", Double.NaN,
                measured ? ph.peakBytes()[1] - before : Double.NaN, "the policy with its adapters off, forward only"));
        memory.add(new TrainBench.Memory("scale " + shape + ": update peak", plan.get(1).total(),
                measured ? ph.peakBytes()[2] - before : Double.NaN, "MemoryPlan.grpo update phase (β = 0) vs the allocator's peak"));
        String[] names = {"scale generate", "scale reference logprobs", "scale update"};
        double[][] phases = {ph.generate(), ph.reference(), ph.update()};
        for (int i = 0; i < names.length; i++) results.add(new Result("hintgrpo", names[i], shape, mean(phases[i]), error(phases[i]), 0, 0));
    }

    // ---- targets, tables ----

    /** Ops whose speed is bandwidth: read against the copy bandwidth of the same run. */
    static final java.util.Set<String> MEMORY_BOUND = java.util.Set.of("rmsnorm", "rmsnormBackward", "add", "swiglu",
            "swigluBackward", "rope", "crossEntropy fwd+bwd", "adamw", "sumSquares");

    Result find(String source, String op, String shape) {
        for (Result r : results) if (r.source.equals(source) && r.op.equals(op) && r.shape.equals(shape)) return r;
        return null;
    }

    /**
     * The targets, each as a ratio measured in this run (higher is better): bf16 GEMM ≥ 0.7×
     * cuBLAS (torch.matmul) per shape; attention fwd+bwd ≥ 0.6× SDPA (against fp32 and bf16 SDPA,
     * both listed); training step ≥ 1.0× PyTorch eager tokens/s (every config listed, the 0.5B bf16
     * row is the target); memory-bound kernels ≥ 0.7× the copy bandwidth; decode ≥ 0.5× its
     * bandwidth bound.
     */
    void computeTargets() {
        targets.clear();
        for (Result r : results) {
            if (!r.source.equals("hintgrpo")) continue;
            if (r.op.startsWith("gemmBf16 ")) {
                Result t = find("torch", r.op, r.shape);
                if (t != null) targets.add(new Target("gemm >= 0.7x cuBLAS", r.op + " " + r.shape, t.ms / r.ms, 0.7, "torch.matmul bf16"));
            } else if (r.op.equals("attention fwd+bwd")) {
                Result t32 = find("torch", r.op, r.shape), t16 = find("torch", r.op + " bf16", r.shape);
                if (t32 != null) targets.add(new Target("attention >= 0.6x SDPA", "fwd+bwd fp32 " + r.shape, t32.ms / r.ms, 0.6, "SDPA fp32"));
                if (t16 != null) targets.add(new Target("attention >= 0.6x SDPA", "fwd+bwd fp32 " + r.shape, t16.ms / r.ms, 0.6, "SDPA bf16"));
            } else if (r.op.startsWith("train step ")) {
                Result t = find("torch", "train step bf16", r.shape);
                if (t != null) targets.add(new Target("train step >= 1.0x eager", r.op + " " + r.shape, t.ms / r.ms, 1.0, "torch bf16 autocast"));
            } else if (MEMORY_BOUND.contains(r.op) && copyGbps > 0) {
                targets.add(new Target("memory-bound >= 0.7x copy", r.op + " " + r.shape, r.gbps / copyGbps, 0.7, "copy d2d"));
            }
        }
        for (Decode d : decode)
            targets.add(new Target("decode >= 0.5x bound", "b=" + d.batch + " graphs " + (d.graphs ? "on" : "off"), d.boundMs / d.msPerStep, 0.5,
                    "weights+KV / copy bw"));
    }

    void printTables() {
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "%-8s %-26s %-28s %10s %9s %9s%n",
                "source", "op", "shape", "ms", "GFLOP/s", "GB/s"));
        for (Result r : results)
            s.append(String.format(Locale.ROOT, "%-8s %-26s %-28s %10.4f %9.1f %9.1f%n", r.source, r.op, r.shape, r.ms, r.gflops, r.gbps));
        if (!decode.isEmpty()) {
            s.append(String.format(Locale.ROOT, "%n%-8s %-7s %10s %10s %10s %12s%n", "decode", "graphs", "ms/step", "tokens/s", "bound ms", "bound tok/s"));
            for (Decode d : decode)
                s.append(String.format(Locale.ROOT, "b=%-6d %-7s %10.3f %10.0f %10.3f %12.0f%n", d.batch, d.graphs ? "on" : "off",
                        d.msPerStep, d.tokensPerSecond(), d.boundMs, d.batch / d.boundMs * 1e3));
        }
        if (!train.isEmpty()) {
            s.append(String.format(Locale.ROOT, "%ntraining step (MFU against %s)%n%-22s %-20s %12s %10s %12s %7s %10s%n",
                    peakFlops > 0 ? String.format(Locale.ROOT, "%.0f TFLOP/s dense bf16, %s", peakFlops / 1e12, device) : "no known peak: " + device,
                    "config", "who", "params", "ms/step", "tokens/s", "MFU", "peak MiB"));
            for (TrainBench.Step st : train)
                s.append(String.format(Locale.ROOT, "%-22s %-20s %12d %10.2f %12.0f %7s %10s%n", st.config().shape(), st.who(), st.params(),
                        st.ms(), st.tokensPerSecond(), peakFlops > 0 ? String.format(Locale.ROOT, "%.1f%%", 100 * st.mfu(peakFlops)) : "n/a",
                        Double.isNaN(st.peakMiB()) ? "" : String.format(Locale.ROOT, "%.0f", st.peakMiB())));
        }
        if (!grpo.isEmpty()) {
            double total = grpo.get(grpo.size() - 1).ms;
            s.append(String.format(Locale.ROOT, "%nGRPO step %s (%d completion tokens)%n", grpo.get(0).shape, grpoTokens));
            for (Result r : grpo)
                s.append(String.format(Locale.ROOT, "%-26s %10.1f ms  %5.1f%%%n", r.op, r.ms, 100 * r.ms / total));
        }
        if (!memory.isEmpty()) {
            s.append(String.format(Locale.ROOT, "%n%-36s %12s %12s  %s%n", "memory", "computed MiB", "measured MiB", "note"));
            for (TrainBench.Memory m : memory)
                s.append(String.format(Locale.ROOT, "%-36s %12s %12s  %s%n", m.component(), mib(m.computed()), mib(m.measured()), m.note()));
        }
        if (!targets.isEmpty()) {
            s.append(String.format(Locale.ROOT, "%n%-28s %-44s %7s %5s  %-6s %s%n", "target", "row", "ratio", "goal", "", "against"));
            for (Target t : targets)
                s.append(String.format(Locale.ROOT, "%-28s %-44s %7.2f %5.2f  %-6s %s%n", t.what(), t.row(), t.ratio(), t.goal(),
                        t.met() ? "met" : "BELOW", t.against()));
        }
        System.out.print(s);
    }

    static String mib(double bytes) {
        return Double.isNaN(bytes) ? "-" : String.format(Locale.ROOT, "%.1f", bytes / (1 << 20));
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
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "{\"backend\": \"%s\", \"device\": %s, \"shapes\": \"%s\", \"seconds\": %.1f, "
                + "\"copy_gbps\": %s, \"peak_bf16_tflops\": %s, \"sdpa\": %s, \"results\": [%n",
                backend, quote(device), full ? "full" : "small", seconds, num(copyGbps), num(peakFlops / 1e12), quote(attentionImpl)));
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            s.append(String.format(Locale.ROOT, "  {\"source\": \"%s\", \"op\": \"%s\", \"shape\": \"%s\", \"ms\": %.6f, \"error\": %.6f, \"gflops\": %.2f, \"gbps\": %.2f}%s%n",
                    r.source, r.op, r.shape, r.ms, r.error, r.gflops, r.gbps, i + 1 < results.size() ? "," : ""));
        }
        s.append("], \"decode\": [\n");
        for (int i = 0; i < decode.size(); i++) {
            Decode d = decode.get(i);
            s.append(String.format(Locale.ROOT, "  {\"batch\": %d, \"graphs\": %b, \"ms_per_step\": %.6f, \"tokens_per_s\": %.1f, "
                            + "\"bytes_per_step\": %.0f, \"bound_ms\": %.6f, \"bound_tokens_per_s\": %.1f}%s%n",
                    d.batch, d.graphs, d.msPerStep, d.tokensPerSecond(), d.bytesPerStep, d.boundMs, d.batch / d.boundMs * 1e3,
                    i + 1 < decode.size() ? "," : ""));
        }
        s.append("], \"train\": [\n");
        for (int i = 0; i < train.size(); i++) {
            TrainBench.Step st = train.get(i);
            s.append(String.format(Locale.ROOT, "  {\"config\": \"%s\", \"batch\": %d, \"seq\": %d, \"who\": \"%s\", \"params\": %d, \"ms\": %.6f, "
                            + "\"error\": %.6f, \"tokens_per_s\": %.1f, \"mfu\": %s, \"peak_mib\": %s}%s%n",
                    st.config().name(), st.config().batch(), st.config().seq(), st.who(), st.params(), st.ms(), st.error(),
                    st.tokensPerSecond(), num(st.mfu(peakFlops)), num(st.peakMiB()), i + 1 < train.size() ? "," : ""));
        }
        s.append("], \"grpo\": [\n");
        for (int i = 0; i < grpo.size(); i++) {
            Result r = grpo.get(i);
            s.append(String.format(Locale.ROOT, "  {\"phase\": \"%s\", \"shape\": \"%s\", \"ms\": %.6f, \"error\": %.6f}%s%n",
                    r.op, r.shape, r.ms, r.error, i + 1 < grpo.size() ? "," : ""));
        }
        s.append("], \"memory\": [\n");
        for (int i = 0; i < memory.size(); i++) {
            TrainBench.Memory m = memory.get(i);
            s.append(String.format(Locale.ROOT, "  {\"component\": %s, \"computed_bytes\": %s, \"measured_bytes\": %s, \"note\": %s}%s%n",
                    quote(m.component()), num(m.computed()), num(m.measured()), quote(m.note()), i + 1 < memory.size() ? "," : ""));
        }
        s.append("], \"targets\": [\n");
        for (int i = 0; i < targets.size(); i++) {
            Target t = targets.get(i);
            s.append(String.format(Locale.ROOT, "  {\"target\": %s, \"row\": %s, \"ratio\": %s, \"goal\": %.2f, \"met\": %b, \"against\": %s}%s%n",
                    quote(t.what()), quote(t.row()), num(t.ratio()), t.goal(), t.met(), quote(t.against()), i + 1 < targets.size() ? "," : ""));
        }
        return s.append("]}\n").toString();
    }

    /** A JSON number, or null for NaN and infinities. */
    static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null";
    }

    static String quote(String v) {
        return "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
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
