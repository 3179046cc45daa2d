package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.ModelConfig;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * Causal GQA attention of one layer, forward (which also saves the log-sum-exp) and backward, on the
 * cpu backend at the config's heads / KV heads / head dim over a training batch of 8 × 128 tokens;
 * and decode attention: 16 rows, each one query against its 256 cached positions. Time per call; a
 * model step runs one of each per layer.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class AttentionBench {
    static final int B = BenchModels.BATCH, T = BenchModels.LENGTH;

    @State(Scope.Benchmark)
    public static class Data {
        @Param({"embedded", "25m"})
        public String config;

        Kernels k;
        ModelConfig cfg;
        Buf qkv, out, lse, lengths, dout, dqkv;
        Buf decodeRows, kCache, vCache, decodeLengths, decodeOut;

        @Setup(Level.Trial)
        public void setUp() {
            cfg = BenchModels.config(config);
            k = new CpuKernels();
            int m = B * T;
            qkv = k.allocF32((long) m * cfg.qkvDim());
            k.upload(qkv, BenchModels.random(m * cfg.qkvDim(), 1));
            out = k.allocF32((long) m * cfg.qDim());
            lse = k.allocF32((long) B * cfg.numHeads() * T);
            lengths = k.allocI32(B);
            int[] full = new int[B];
            java.util.Arrays.fill(full, T);
            k.upload(lengths, full);
            dout = k.allocF32((long) m * cfg.qDim());
            k.upload(dout, BenchModels.random(m * cfg.qDim(), 2));
            dqkv = k.allocF32((long) m * cfg.qkvDim());
            // the backward reads the forward's out and lse
            k.attention(out, lse, qkv, lengths, B, T, cfg.numHeads(), cfg.numKvHeads(), cfg.headDim());
            long cache = (long) DECODE_ROWS * cfg.numKvHeads() * DECODE_CONTEXT * cfg.headDim();
            decodeRows = k.allocF32((long) DECODE_ROWS * cfg.qkvDim());
            k.upload(decodeRows, BenchModels.random(DECODE_ROWS * cfg.qkvDim(), 3));
            kCache = k.allocF32(cache);
            k.upload(kCache, BenchModels.random((int) cache, 4));
            vCache = k.allocF32(cache);
            k.upload(vCache, BenchModels.random((int) cache, 5));
            decodeLengths = k.allocI32(DECODE_ROWS);
            int[] context = new int[DECODE_ROWS];
            java.util.Arrays.fill(context, DECODE_CONTEXT);
            k.upload(decodeLengths, context);
            decodeOut = k.allocF32((long) DECODE_ROWS * cfg.qDim());
        }
    }

    static final int DECODE_ROWS = 16, DECODE_CONTEXT = 256;

    @Benchmark
    public Buf decode(Data d) {
        d.k.decodeAttention(d.decodeOut, d.decodeRows, d.kCache, d.vCache, d.decodeLengths, DECODE_ROWS, DECODE_CONTEXT,
                d.cfg.numHeads(), d.cfg.numKvHeads(), d.cfg.headDim());
        return d.decodeOut;
    }

    @Benchmark
    public Buf forward(Data d) {
        d.k.attention(d.out, d.lse, d.qkv, d.lengths, B, T, d.cfg.numHeads(), d.cfg.numKvHeads(), d.cfg.headDim());
        return d.out;
    }

    @Benchmark
    public Buf backward(Data d) {
        d.k.attentionBackward(d.dqkv, d.dout, d.qkv, d.out, d.lse, d.lengths, B, T,
                d.cfg.numHeads(), d.cfg.numKvHeads(), d.cfg.headDim());
        return d.dqkv;
    }
}
