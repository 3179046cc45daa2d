package io.hintgrpo.tests;

import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cuda.CudaKernels;
import io.hintgrpo.engine.cuda.JCudaDriver;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.engine.model.Sequence;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * GpuBench's model-level sections: whole training steps (tokens/s and MFU, ours in bf16 and fp32
 * against a PyTorch eager step of the same config and batch) and the device memory of a training
 * step per component.
 *
 * <p>A training step is what {@code hintgrpo sft} runs: zero the gradients,
 * {@link Model#forwardBackward} with the loss on every next-token prediction of random tokens,
 * {@link AdamW#step} with the global gradient norm clipped to 1. Timed as one warm-up step, then
 * {@value GpuBench#ROUNDS} rounds of enough steps for about 0.2 s (at least one). MFU =
 * 6 · parameters · tokens/s / the device's dense bf16 peak ({@link #peakFlops}): the matmul FLOPs of
 * a step (attention's own FLOPs not counted, as is usual), so it reads the same for both sides.
 */
final class TrainBench {
    /** A config timed at batch × seq tokens per step. */
    record Config(String name, ModelConfig model, int batch, int seq) {
        String shape() {
            return name + " b" + batch + "xt" + seq;
        }
    }

    /** One timed training step: who ran it ("hintgrpo bf16", "hintgrpo fp32", "torch bf16 autocast"). */
    record Step(Config config, String who, long params, double ms, double error, double peakMiB) {
        double tokensPerSecond() {
            return config.batch * (double) config.seq / ms * 1e3;
        }

        double mfu(double peak) {
            return 6.0 * params * tokensPerSecond() / peak;
        }
    }

    /**
     * One component of the memory table: bytes computed from the sizes our code allocates
     * (closed form; NaN where there is none), and measured as the change of the CUDA allocator's
     * bytes in use ({@code DeviceMemory.bytesInUse}, NaN on cpu) or, for the driver rows, from
     * cuMemGetInfo.
     */
    record Memory(String component, double computed, double measured, String note) {}

    private final GpuBench bench;
    private final Kernels k;

    TrainBench(GpuBench bench) {
        this.bench = bench;
        this.k = bench.k;
    }

    /** About 125M parameters: hidden 768, 12 layers, GQA 12/4, vocab 32000, untied (as Presets.small125m). */
    static List<Config> configs(boolean full) {
        if (!full) return List.of(new Config("tiny", GpuBench.tinyConfig(), 2, 16));
        return List.of(new Config("embedded", Presets.embeddedDefault(), 4, 1024),
                new Config("125m", Presets.small125m(), 4, 1024),
                new Config("0.5b", Presets.qwen25_05b(), 4, 1024));
    }

    /** Random tokens below the modality placeholders, every position a target of weight 1/(tokens). */
    static Batch textBatch(ModelConfig cfg, int b, int t, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int textVocab = cfg.hasAudio() ? Math.min(cfg.audioTokenId(), cfg.visionTokenId()) : cfg.vocabSize();
        List<Sequence> seqs = new ArrayList<>();
        for (int s = 0; s < b; s++) {
            int[] ids = new int[t];
            float[] w = new float[t];
            for (int i = 0; i < t; i++) {
                ids[i] = rng.nextInt(textVocab);
                w[i] = 1f / (b * (t - 1));
            }
            seqs.add(new Sequence(ids, w, null, null));
        }
        return Batch.pack(cfg, seqs);
    }

    /** Ours, per config, in bf16 then fp32. */
    List<Step> runOurs(List<Config> configs) {
        List<Step> steps = new ArrayList<>();
        for (Config c : configs) {
            for (Precision p : new Precision[]{Precision.BF16, Precision.FP32}) {
                try (Model m = new Model(k, c.model); AdamW opt = new AdamW(m, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f)) {
                    bench.randomize(m);
                    m.setPrecision(p);
                    Batch batch = textBatch(c.model, c.batch, c.seq, 7);
                    double[] rounds = bench.timeRounds(() -> {
                        m.zeroGrad();
                        m.forwardBackward(batch, 1f);
                        opt.step(1f);
                    }, 1, 1, 0.2);
                    steps.add(new Step(c, "hintgrpo " + p.flag(), m.layout.size(), GpuBench.mean(rounds), GpuBench.error(rounds), Double.NaN));
                }
                bench.trim();
            }
        }
        return steps;
    }

    /** The PyTorch eager step of the same configs (scripts/torch_train_bench.py); empty when the script fails. */
    List<Step> runTorch(String python, String script, List<Config> configs) {
        List<String> lines = new ArrayList<>();
        for (Config c : configs) {
            ModelConfig m = c.model;
            lines.add(String.format(Locale.ROOT, "%s %d %d %d %d %d %d %b %d %d", c.name, m.hiddenSize(), m.intermediateSize(),
                    m.numHeads(), m.numKvHeads(), m.numLayers(), m.vocabSize(), m.tieWordEmbeddings(), c.batch, c.seq));
        }
        List<Step> steps = new ArrayList<>();
        for (String[] f : GpuBench.runScript(python, script, lines, 7)) {
            for (Config c : configs)
                if (c.name.equals(f[0]) && c.batch == Integer.parseInt(f[1]) && c.seq == Integer.parseInt(f[2]))
                    steps.add(new Step(c, "torch bf16 autocast", Long.parseLong(f[5]), Double.parseDouble(f[3]),
                            Double.parseDouble(f[4]), Double.parseDouble(f[6])));
        }
        return steps;
    }

    /**
     * The device's dense bf16 tensor-core peak in FLOP/s, from its name: H100 SXM and H200 989
     * TFLOP/s, H100 NVL 835, H100 PCIe 756, A100 312; {@code -Dhintgrpo.bench.peakTflops} overrides;
     * NaN where unknown (cpu, the emulator, other GPUs): then no MFU is printed.
     */
    static double peakFlops(Kernels k) {
        String override = System.getProperty("hintgrpo.bench.peakTflops");
        if (override != null) return Double.parseDouble(override) * 1e12;
        String name = deviceName(k);
        if (name.contains("H200")) return 989e12;
        if (name.contains("H100")) return name.contains("PCIe") ? 756e12 : name.contains("NVL") ? 835e12 : 989e12;
        if (name.contains("A100")) return 312e12;
        return Double.NaN;
    }

    static String deviceName(Kernels k) {
        if (k instanceof CudaKernels c && c.driver() instanceof JCudaDriver d) return d.info().name();
        return k.name();
    }

    // ---- memory per component ----

    /**
     * The training step of {@code cfg} at b × t in bf16, component by component: fp32 master
     * weights, their bf16 copy, gradients, AdamW moments, the step's activations (the arena and the
     * bf16 casts of activation operands, which stay allocated between steps), what the step held
     * only while it ran, and for GRPO the rollouts' KV cache (rolloutSeqs × rolloutLen, fp32) and a
     * reference model (fp32 weights, bf16 copy and its forward's activations at the rollout batch).
     * Each model component is allocated on its own so the allocator's bytes in use measure it.
     */
    List<Memory> memory(ModelConfig cfg, int b, int t, int rolloutSeqs, int rolloutLen) {
        List<Memory> rows = new ArrayList<>();
        bench.trim();
        DeviceMemoryView mem = DeviceMemoryView.of(k);
        long driverBefore = mem.driverUsed();
        long params;
        long decayEnd;
        long at = mem.inUse();
        try (Model m = new Model(k, cfg)) {
            params = m.layout.size();
            decayEnd = m.layout.decayEnd();
            rows.add(new Memory("weights fp32 (master)", 4.0 * params, mem.delta(at), params + " parameters"));
            bench.randomize(m);
            at = mem.inUse();
            m.setPrecision(Precision.BF16);
            rows.add(new Memory("weights bf16 copy", 2.0 * decayEnd, mem.delta(at), "the matrices"));
            at = mem.inUse();
            m.grads();
            rows.add(new Memory("gradients fp32", 4.0 * params, mem.delta(at), ""));
            at = mem.inUse();
            try (AdamW opt = new AdamW(m, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f)) {
                rows.add(new Memory("AdamW moments fp32", 8.0 * params, mem.delta(at), "exp_avg + exp_avg_sq"));
                Batch batch = textBatch(cfg, b, t, 11);
                at = mem.inUse();
                mem.resetPeak();
                m.zeroGrad();
                m.forwardBackward(batch, 1f);
                opt.step(1f);
                k.synchronize();
                rows.add(new Memory("activations b" + b + "xt" + t, Double.NaN, mem.delta(at), "arena + bf16 activation casts, kept between steps"));
                long peak = mem.peak();
                rows.add(new Memory("transient within the step", Double.NaN, mem.memory == null ? Double.NaN : peak - mem.inUse(),
                        "peak in use during the step minus in use after it"));
                rows.add(new Memory("peak of the training step", Double.NaN, mem.memory == null ? Double.NaN : peak - mem.base,
                        "allocator peak during the step over the section's start"));
                rows.add(new Memory("driver: used after the step", Double.NaN,
                        mem.driver == null ? Double.NaN : mem.driverUsed() - driverBefore,
                        "cuMemGetInfo, over the section's start (allocator cache included)"));
            }
            long kvPerSeq = 2L * cfg.numLayers() * cfg.numKvHeads() * cfg.headDim() * 4L * rolloutLen;
            rows.add(new Memory("KV cache, " + rolloutSeqs + " rollouts x " + rolloutLen, (double) kvPerSeq * rolloutSeqs, Double.NaN,
                    "k and v fp32 per layer (Generator.Cache), computed"));
        }
        bench.trim();
        at = mem.inUse();
        try (Model ref = new Model(k, cfg)) {
            bench.randomize(ref);
            ref.setPrecision(Precision.BF16);
            rows.add(new Memory("reference model weights", 4.0 * params + 2.0 * decayEnd, mem.delta(at), "fp32 + bf16 copy"));
            Batch rollouts = textBatch(cfg, rolloutSeqs, rolloutLen, 13);
            at = mem.inUse();
            ref.forward(rollouts, 1f);
            k.synchronize();
            rows.add(new Memory("reference forward activations", Double.NaN, mem.delta(at),
                    "arena at the rollout batch " + rolloutSeqs + " x " + rolloutLen));
        }
        bench.trim();
        return rows;
    }

    /** The CUDA allocator's and driver's counters where the backend has them; NaN/0 on cpu. */
    static final class DeviceMemoryView {
        final io.hintgrpo.engine.cuda.DeviceMemory memory;
        final JCudaDriver driver;
        final long base;

        private DeviceMemoryView(io.hintgrpo.engine.cuda.DeviceMemory memory, JCudaDriver driver) {
            this.memory = memory;
            this.driver = driver;
            this.base = memory == null ? 0 : memory.bytesInUse();
        }

        static DeviceMemoryView of(Kernels k) {
            if (k instanceof CudaKernels c) return new DeviceMemoryView(c.memory(), c.driver() instanceof JCudaDriver d ? d : null);
            return new DeviceMemoryView(null, null);
        }

        long inUse() {
            return memory == null ? 0 : memory.bytesInUse();
        }

        long peak() {
            return memory == null ? 0 : memory.peakBytes();
        }

        void resetPeak() {
            if (memory != null) memory.resetPeak();
        }

        double delta(long at) {
            return memory == null ? Double.NaN : memory.bytesInUse() - at;
        }

        /** total − free as the driver reports it (other processes included); 0 where there is no driver. */
        long driverUsed() {
            if (driver == null) return 0;
            driver.synchronize();
            return driver.totalMemory() - driver.freeMemory();
        }
    }
}
