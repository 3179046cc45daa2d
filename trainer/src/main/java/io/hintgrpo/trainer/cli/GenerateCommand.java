package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code hintgrpo generate}: a DC response for every utterance of a JSONL file (the corpus format,
 * label optional). Each output line is the input line's fields plus "response", "parsed"
 * (format_valid, polarity, score, problem) and "tokens" (how many were generated).
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generates a DC response per utterance (greedy, or sampled with --temperature > 0) and writes it "
                + "with what the parser found, one JSON line per input line.")
final class GenerateCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @CommandLine.Mixin(name = "configFile")
    ConfigFile.Mixin configFile;

    @Option(names = "--model", required = true, description = "Model directory with tokenizer.json.")
    Path model;

    @CommandLine.Mixin(name = "adapter")
    AdapterOption adapter;

    @Option(names = "--input", required = true, description = "JSONL of utterances: id, text, audio/vision as in a corpus; label optional.")
    Path input;

    @Option(names = "--output", required = true, description = "JSONL written atomically: each input line plus response, parsed, tokens.")
    Path output;

    @Option(names = "--temperature", defaultValue = "0", description = "Sampling temperature; 0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "Sample among the k likeliest tokens; 0 = off (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling mass in (0, 1]; 1 = off (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed; also initialises projectors a text-only model lacks (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--max-new-tokens", defaultValue = "128", description = "Longest response (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--batch-size", defaultValue = "32", description = "Utterances generated together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--drop-modality", defaultValue = "none", description = "none | audio | vision | both: zero those inputs (default: ${DEFAULT-VALUE}).")
    String drop;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Override
    public Integer call() throws IOException {
        if (batchSize < 1) throw new BadInputException("--batch-size", "must be ≥ 1, got " + batchSize);
        if (maxNewTokens < 1) throw new BadInputException("--max-new-tokens", "must be ≥ 1, got " + maxNewTokens);
        if (!(temperature >= 0) || !Float.isFinite(temperature))
            throw new BadInputException("--temperature", "must be a number ≥ 0, got " + temperature);
        if (!(topP > 0 && topP <= 1)) throw new BadInputException("--top-p", "must be in (0, 1], got " + topP);
        if (topK < 0) throw new BadInputException("--top-k", "must be ≥ 0 (0 = off), got " + topK);
        ConfigFile.checkOutput(output, "--output", List.of(input));
        Evaluation.Options opt = new Evaluation.Options(maxNewTokens, temperature, topK, topP, batchSize, seed, Evaluation.Drop.parse(drop));
        try (Kernels kernels = Backends.open(backend);
             Model m = ModelDir.load(kernels, model, seed, msg -> System.err.println("hintgrpo: " + msg));
             Tokenizer tok = Tokenizer.load(model)) {
            adapter.attachTo(m);
            checkMaxNewTokens(maxNewTokens, m.config);
            List<Jsonl.Record> records = Jsonl.readPrompts(input, opt.drop().expect(m.config));
            List<Utterance> utterances = new ArrayList<>(records.size());
            for (Jsonl.Record r : records) utterances.add(r.utterance());
            List<Evaluation.Row> rows = Evaluation.generate(m, tok, utterances, opt, msg -> System.err.print("\rhintgrpo: " + msg));
            if (!rows.isEmpty()) System.err.println();
            List<String> lines = new ArrayList<>(rows.size());
            ObjectMapper json = new ObjectMapper();
            for (int i = 0; i < rows.size(); i++) lines.add(json.writeValueAsString(outputRecord(records.get(i).json(), rows.get(i))));
            AtomicFiles.write(output, out -> {
                Writer w = new OutputStreamWriter(out, StandardCharsets.UTF_8);
                for (String line : lines) w.write(line + "\n");
                w.flush();
            });
            ConfigFile.writeEffectiveBeside(spec, output);
            System.err.println("hintgrpo: wrote " + lines.size() + " responses to " + output);
        }
        return 0;
    }

    /** --max-new-tokens beyond the model's context is refused before any generation. */
    static void checkMaxNewTokens(int maxNewTokens, io.hintgrpo.engine.model.ModelConfig cfg) {
        if (maxNewTokens > cfg.maxPositionEmbeddings())
            throw new BadInputException("--max-new-tokens", maxNewTokens + " is beyond the model's context of "
                    + cfg.maxPositionEmbeddings() + " positions (max_position_embeddings)");
    }

    /** The input fields as written, then the response, what the parser found, and the generated token count. */
    static ObjectNode outputRecord(ObjectNode input, Evaluation.Row row) {
        ObjectNode rec = input.deepCopy();
        rec.put("response", row.response());
        row.parsed().writeTo(rec.putObject("parsed"));
        rec.put("tokens", row.tokens());
        return rec;
    }
}
