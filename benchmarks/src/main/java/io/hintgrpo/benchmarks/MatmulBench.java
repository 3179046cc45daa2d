package io.hintgrpo.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.engine.cpu.CpuGemm;
import io.hintgrpo.engine.cpu.Parallel;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Our CPU gemm against ONNX Runtime's CPU MatMul/Gemm (MLAS) on the same shapes, in the same run.
 * A shape is "LAYOUT:m:n:k" (see {@link Gemm}); GFLOP/s = 2·m·n·k / time ({@link MatmulSuite}
 * prints the table). Both sides use 2 threads: {@link Parallel}'s default is the core count (2
 * here) and ORT gets 2 intra-op threads.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx4g"})
public class MatmulBench {

    /** Square sizes, per-layer shapes of the two model configs, decode shapes (labels: {@link MatmulSuite#SHAPES}). */
    @State(Scope.Benchmark)
    public static class Data {
        @Param({
                "NN:512:512:512", "NN:1024:1024:1024", "NN:2048:2048:2048",
                "NT:1024:512:256", "NT:1024:256:256", "NT:1024:1408:256", "NT:1024:256:704", "NT:1024:2048:256",
                "NN:1024:256:1408", "NN:1024:704:256", "TN:1408:256:1024", "TN:256:704:1024",
                "NT:1024:1024:512", "NT:1024:512:512", "NT:1024:2816:512", "NT:1024:512:1408", "NT:1024:8192:512",
                "NN:1024:512:2816", "NN:1024:1408:512", "TN:2816:512:1024", "TN:512:1408:1024",
                "NT:1:1408:256", "NT:8:2048:256", "NT:8:2816:512", "NT:1:8192:512",
        })
        public String shape;

        Gemm layout;
        int m, n, k;
        float[] a, b, out;

        @Setup(Level.Trial)
        public void setup() {
            String[] f = shape.split(":");
            layout = Gemm.valueOf(f[0]);
            m = Integer.parseInt(f[1]);
            n = Integer.parseInt(f[2]);
            k = Integer.parseInt(f[3]);
            SplittableRandom rnd = new SplittableRandom(1);
            a = new float[m * k];
            b = new float[n * k];
            out = new float[m * n];
            for (int i = 0; i < a.length; i++) a[i] = (float) (rnd.nextDouble() - 0.5);
            for (int i = 0; i < b.length; i++) b[i] = (float) (rnd.nextDouble() - 0.5);
            if (!CpuGemm.vectorized()) throw new IllegalStateException("the SIMD path is off: run with --add-modules jdk.incubator.vector");
        }
    }

    /**
     * The first calls of our gemm run before C2 has compiled the vector kernels (seconds for big
     * shapes): get that out of the way before JMH's warmup iterations.
     */
    @State(Scope.Benchmark)
    public static class Ours {
        @Setup(Level.Trial)
        public void warm(Data d) {
            long end = System.nanoTime() + 3_000_000_000L;
            for (int i = 0; i < 3 || System.nanoTime() < end; i++)
                CpuGemm.gemm(d.layout, d.out, 0, d.a, 0, d.b, 0, null, 0, d.m, d.n, d.k, false);
        }
    }

    @State(Scope.Benchmark)
    public static class Ort {
        OrtEnvironment env;
        OrtSession session;
        OnnxTensor a, b, y;
        Map<String, OnnxTensor> inputs, outputs;

        @Setup(Level.Trial)
        public void setup(Data d) throws OrtException {
            env = OrtEnvironment.getEnvironment();
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
                opts.setIntraOpNumThreads(2);
                opts.setInterOpNumThreads(1);
                opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
                session = env.createSession(OnnxGemmModel.build(d.layout, d.m, d.n, d.k), opts);
            }
            a = OnnxTensor.createTensor(env, FloatBuffer.wrap(d.a), OnnxGemmModel.shapeA(d.layout, d.m, d.n, d.k));
            b = OnnxTensor.createTensor(env, FloatBuffer.wrap(d.b), OnnxGemmModel.shapeB(d.layout, d.m, d.n, d.k));
            FloatBuffer yBuf = ByteBuffer.allocateDirect(4 * d.m * d.n).order(ByteOrder.nativeOrder()).asFloatBuffer();
            y = OnnxTensor.createTensor(env, yBuf, new long[]{d.m, d.n}); // pinned output: no allocation per run
            inputs = Map.of("A", a, "B", b);
            outputs = Map.of("Y", y);

            // the model computes what our gemm does
            session.run(inputs, outputs).close();
            CpuGemm.gemm(d.layout, d.out, 0, d.a, 0, d.b, 0, null, 0, d.m, d.n, d.k, false);
            double num = 0, den = 0;
            for (int i = 0; i < d.m * d.n; i++) {
                double diff = yBuf.get(i) - d.out[i];
                num += diff * diff;
                den += (double) d.out[i] * d.out[i];
            }
            if (!(Math.sqrt(num / den) < 1e-4))
                throw new IllegalStateException("ORT and CpuGemm disagree on " + d.shape + ": relative error " + Math.sqrt(num / den));
        }

        @TearDown(Level.Trial)
        public void close() throws OrtException {
            y.close();
            b.close();
            a.close();
            session.close();
        }
    }

    @Benchmark
    public float[] ours(Data d, Ours warm) {
        CpuGemm.gemm(d.layout, d.out, 0, d.a, 0, d.b, 0, null, 0, d.m, d.n, d.k, false);
        return d.out;
    }

    @Benchmark
    public OnnxTensor ort(Ort o) throws OrtException {
        o.session.run(o.inputs, o.outputs).close();
        return o.y;
    }
}
