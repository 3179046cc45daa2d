package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ParamLayout;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;

/**
 * What scripts/torch_cpu_bench.py (the in-run PyTorch reference of {@code hintgrpo bench}) reads to
 * build its model and check it against ours before timing anything. For each config, OUT/CONFIG/:
 * config.json and model.safetensors ({@link ModelDir#save}, F32, Hugging Face names),
 * reference.json {"batch", "length"}, the benchmark batch ({@link BenchModels#textBatch}, seed 2, as
 * ForwardBench and TrainStepBench use) as tokens.i32 and our logits for it as logits.f32 (raw
 * little-endian int32 [batch, length] and f32 [batch·length, vocab]).
 *
 * <p>The weights are not the benchmarks' initialisation (N(0, 0.02) matrices, zero biases, unit
 * norms), under which attention is nearly uniform and a missing bias or a wrong RoPE would barely
 * move the logits: matrices N(0, 1/columns), biases N(0, 0.1²), norm weights 1 + N(0, 0.1²). Values
 * do not change how long anything takes.
 *
 * <p>Usage: {@code java -cp benchmarks.jar io.hintgrpo.benchmarks.TorchReference OUT CONFIG...}
 * (configs as {@link BenchModels#config}: embedded, 25m).
 */
public final class TorchReference {
    private TorchReference() {}

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: TorchReference OUT CONFIG...   (CONFIG: embedded or 25m)");
            System.exit(2);
        }
        for (int i = 1; i < args.length; i++) write(Path.of(args[0], args[i]), args[i]);
    }

    /** Writes dir for one config. */
    static void write(Path dir, String config) {
        try (Model model = BenchModels.cpuModel(config)) {
            randomize(model, 11);
            Batch batch = BenchModels.textBatch(model.config, BenchModels.BATCH, BenchModels.LENGTH, 2);
            ModelDir.save(model, dir, Safetensors.Dtype.F32);
            Files.writeString(dir.resolve("reference.json"), "{\"batch\": " + batch.b + ", \"length\": " + batch.t + "}\n");
            ByteBuffer ids = ByteBuffer.allocate(4 * batch.rows()).order(ByteOrder.LITTLE_ENDIAN);
            for (int id : batch.embedIds) ids.putInt(id);
            writeRaw(dir.resolve("tokens.i32"), ids.flip());
            float[] logits = model.logits(batch);
            ByteBuffer lg = ByteBuffer.allocate(4 * logits.length).order(ByteOrder.LITTLE_ENDIAN);
            lg.asFloatBuffer().put(logits);
            writeRaw(dir.resolve("logits.f32"), lg);
        } catch (IOException e) {
            throw new UncheckedIOException("writing the torch reference for " + config + " into " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Matrices N(0, 1/columns) (activations stay O(1) and attention is far from uniform), biases N(0, 0.1²), norms 1 + N(0, 0.1²). */
    static void randomize(Model model, long seed) {
        Random rng = new Random(seed);
        for (ParamLayout.Entry e : model.layout.entries()) {
            float[] x = new float[Math.toIntExact(e.size())];
            boolean norm = e.name().endsWith("layernorm.weight") || e.name().equals("model.norm.weight");
            double std = e.shape().length == 2 ? 1 / Math.sqrt(e.shape()[1]) : 0.1;
            for (int i = 0; i < x.length; i++) x[i] = (float) ((norm ? 1 : 0) + std * rng.nextGaussian());
            model.upload(e.name(), x);
        }
    }

    private static void writeRaw(Path file, ByteBuffer data) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            while (data.hasRemaining()) ch.write(data);
        }
    }
}
