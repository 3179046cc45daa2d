package io.hintgrpo.trainer.cli;

import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.TextLines;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.data.Jsonl;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code hintgrpo score}: per input line {"ids":[…]} (optionally "audio"/"vision" feature rows),
 * the log-probability of each token after the first given its prefix, written as "logprobs".
 */
@Command(name = "score", mixinStandardHelpOptions = true,
        description = "Log-probability of every token given its prefix (perplexity, model checks).")
final class ScoreCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @CommandLine.Mixin(name = "configFile")
    ConfigFile.Mixin configFile;

    @Option(names = "--model", required = true, description = "Model directory: config.json + model.safetensors (or sharded).")
    Path modelDir;

    @CommandLine.Mixin(name = "adapter")
    AdapterOption adapter;

    @Option(names = "--input", required = true, description = "JSONL, one {\"ids\": [...], \"audio\": [[...]], \"vision\": [[...]]} per line.")
    Path input;

    @Option(names = "--output", required = true, description = "JSONL written atomically: each input line plus \"logprobs\".")
    Path output;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--batch-size", defaultValue = "8", description = "Sequences per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--temperature", defaultValue = "1.0", description = "Softmax temperature (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--seed", defaultValue = "0", description = "Seed for tensors a checkpoint lacks (projectors of a text-only model).")
    long seed;

    @Override
    public Integer call() throws IOException {
        if (batchSize < 1) throw new BadInputException("--batch-size", "must be ≥ 1, got " + batchSize);
        if (!(temperature > 0) || !Float.isFinite(temperature))
            throw new BadInputException("--temperature", "must be a positive number, got " + temperature);
        if (!Files.isRegularFile(input)) throw new BadInputException(input.toString(), "input file not found");
        ConfigFile.checkOutput(output, "--output", List.of(input));
        ObjectMapper json = new ObjectMapper();
        try (Kernels kernels = Backends.open(backend);
             Model model = ModelDir.load(kernels, modelDir, seed, msg -> System.err.println("hintgrpo: " + msg))) {
            adapter.attachTo(model);
            List<ObjectNode> records = new ArrayList<>();
            List<Sequence> seqs = new ArrayList<>();
            TextLines.forEach(input, (lineNo, line) -> {
                if (line.isBlank()) return;
                String where = input + ":" + lineNo;
                ObjectNode rec = parseLine(json, line, where);
                Sequence seq = toSequence(rec, model.config, where);
                Batch.validate(model.config, seq, where);
                records.add(rec);
                seqs.add(seq);
            });
            AtomicFiles.write(output, stream -> {
                BufferedWriter out = new BufferedWriter(new OutputStreamWriter(stream, StandardCharsets.UTF_8));
                long start = System.nanoTime();
                for (int s0 = 0; s0 < seqs.size(); s0 += batchSize) {
                    List<Sequence> chunk = seqs.subList(s0, Math.min(seqs.size(), s0 + batchSize));
                    Model.ForwardResult result = model.forward(Batch.pack(model.config, chunk), temperature);
                    for (int s = 0; s < chunk.size(); s++) {
                        ObjectNode rec = records.get(s0 + s);
                        ArrayNode lp = rec.putArray("logprobs");
                        for (float v : result.logprobs(s)) lp.add(v);
                        out.write(json.writeValueAsString(rec));
                        out.newLine();
                    }
                    int done = Math.min(seqs.size(), s0 + batchSize);
                    double secs = (System.nanoTime() - start) / 1e9;
                    System.err.printf("\rscored %d/%d sequences (%.1f s)", done, seqs.size(), secs);
                }
                if (!seqs.isEmpty()) System.err.println();
                out.flush();
            });
            ConfigFile.writeEffectiveBeside(spec, output);
        }
        return 0;
    }

    private static ObjectNode parseLine(ObjectMapper json, String line, String where) {
        JsonNode node;
        try {
            node = json.readTree(line);
        } catch (IOException e) {
            throw new BadInputException(where, "not valid JSON");
        }
        if (!(node instanceof ObjectNode obj)) throw new BadInputException(where, "expected a JSON object");
        return obj;
    }

    private static Sequence toSequence(ObjectNode rec, ModelConfig cfg, String where) {
        JsonNode ids = rec.get("ids");
        if (ids == null || !ids.isArray() || ids.isEmpty())
            throw new BadInputException(where, "\"ids\" must be a non-empty array of token ids");
        int[] tokens = new int[ids.size()];
        for (int i = 0; i < tokens.length; i++) {
            JsonNode t = ids.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt())
                throw new BadInputException(where, "\"ids\"[" + i + "] is not an integer: " + t);
            tokens[i] = t.intValue();
        }
        return new Sequence(tokens, null, rows(rec, "audio", where), rows(rec, "vision", where));
    }

    /** Inline feature rows [[…], …], or null where the field is absent. */
    private static float[][] rows(ObjectNode rec, String field, String where) {
        JsonNode n = rec.get(field);
        if (n == null || n.isNull()) return null;
        if (!n.isArray()) throw new BadInputException(where, "\"" + field + "\" must be an array of feature rows");
        return Jsonl.inlineRows((ArrayNode) n, field, where);
    }
}
