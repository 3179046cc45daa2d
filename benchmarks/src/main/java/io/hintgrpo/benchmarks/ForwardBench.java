package io.hintgrpo.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.export.OnnxExport;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The model's forward over a text-only batch of 8 × 128 tokens: ours ({@link Model#forward}: layers,
 * then the LM head and cross-entropy chunk by chunk, on the cpu backend) against ONNX Runtime
 * running the same model with the same weights (the graph {@code hintgrpo export onnx} writes,
 * {@link OnnxExport}; method {@code ort}, the in-run reference that {@code hintgrpo bench} and
 * {@code bench compare} use). ORT writes the full logits into a pinned output instead of reducing
 * them to log-probs; both use 2 threads. Tokens/s.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 4, time = 2) // at 25m the first call alone takes ~4 s and the JIT is not done after 6 s
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx6g"})
public class ForwardBench {
    static final int B = BenchModels.BATCH, T = BenchModels.LENGTH;

    @State(Scope.Benchmark)
    public static class Data {
        @Param({"embedded", "25m"})
        public String config;

        Model model;
        Batch batch;

        @Setup(Level.Trial)
        public void setUp() {
            model = BenchModels.cpuModel(config);
            batch = BenchModels.textBatch(model.config, B, T, 2);
        }
    }

    @State(Scope.Benchmark)
    public static class Ort {
        OrtEnvironment env;
        OrtSession session;
        OnnxTensor logits;
        Map<String, OnnxTensor> inputs, outputs;

        @Setup(Level.Trial)
        public void setUp(Data d) throws OrtException {
            env = OrtEnvironment.getEnvironment();
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
                opts.setIntraOpNumThreads(2);
                opts.setInterOpNumThreads(1);
                opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
                session = env.createSession(OnnxExport.graph(d.model), opts);
            }
            // the graph computes what our model does, before any timing
            double err = OnnxExport.relativeError(env, session, d.model, d.batch);
            if (!(err < OnnxExport.TOLERANCE))
                throw new IllegalStateException("ORT and Model.logits disagree on config " + d.config + ": relative error " + err);
            inputs = OnnxExport.inputs(env, d.model.config, d.batch);
            long n = (long) B * T * d.model.config.vocabSize();
            logits = OnnxTensor.createTensor(env, ByteBuffer.allocateDirect(Math.toIntExact(4 * n)).order(ByteOrder.nativeOrder()).asFloatBuffer(),
                    new long[]{B, T, d.model.config.vocabSize()}); // pinned output: no allocation per run
            outputs = Map.of("logits", logits);
        }

        @TearDown(Level.Trial)
        public void close() throws OrtException {
            logits.close();
            for (OnnxTensor t : inputs.values()) t.close();
            session.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(B * T)
    public double ours(Data d) {
        return d.model.forward(d.batch, 1f).loss();
    }

    @Benchmark
    @OperationsPerInvocation(B * T)
    public OnnxTensor ort(Ort o) throws OrtException {
        o.session.run(o.inputs, o.outputs).close();
        return o.logits;
    }
}
