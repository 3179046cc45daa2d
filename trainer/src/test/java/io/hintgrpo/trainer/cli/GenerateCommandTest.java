package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** hintgrpo generate on a small random model with the corpus tokenizer. */
class GenerateCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    Path modelDir, input;
    List<Utterance> utterances;
    String err;

    @BeforeEach
    void writeModelAndInput() throws Exception {
        modelDir = dir.resolve("model");
        io.hintgrpo.trainer.TinyModels.write(modelDir, 4);
        utterances = new ArrayList<>();
        for (SynthCorpus.Sample s : SynthCorpus.generate(SynthCorpus.Options.defaults(2, 20)).subList(0, 5)) utterances.add(s.utterance());
        input = dir.resolve("in.jsonl");
        Jsonl.write(input, utterances, Jsonl.Features.INLINE);
        // the third line without its label: generation does not need one
        List<String> lines = new ArrayList<>(Files.readAllLines(input));
        ObjectNode third = (ObjectNode) JSON.readTree(lines.get(2));
        third.remove("label");
        lines.set(2, JSON.writeValueAsString(third));
        Files.write(input, lines);
    }

    private int run(String... args) {
        CliRun r = CliRun.of(args);
        err = r.err();
        return r.code();
    }

    private List<JsonNode> generate(String name, String... extra) throws Exception {
        Path out = dir.resolve(name);
        List<String> args = new ArrayList<>(List.of("generate", "--model", modelDir.toString(), "--input", input.toString(),
                "--output", out.toString(), "--backend", "cpu", "--max-new-tokens", "12", "--batch-size", "2"));
        args.addAll(List.of(extra));
        assertEquals(0, run(args.toArray(String[]::new)), err);
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(out)) rows.add(JSON.readTree(line));
        return rows;
    }

    @Test
    void eachInputLineGetsItsGreedyResponseAndWhatTheParserFound() throws Exception {
        List<JsonNode> rows = generate("greedy.jsonl");
        assertEquals(utterances.size(), rows.size());
        List<String> inputs = Files.readAllLines(input);
        List<Evaluation.Row> expected;
        try (Model m = ModelDir.load(new CpuKernels(), modelDir, 0, msg -> {}); Tokenizer tok = Tokenizer.load(modelDir)) {
            expected = Evaluation.generate(m, tok, utterances, new Evaluation.Options(12, 0f, 0, 1f, 5, 0, Evaluation.Drop.NONE), null);
        }
        for (int i = 0; i < rows.size(); i++) {
            JsonNode row = rows.get(i), in = JSON.readTree(inputs.get(i));
            in.fieldNames().forEachRemaining(f -> assertEquals(in.get(f), row.get(f), "input field " + f + " is kept"));
            assertEquals(i == 2, !row.has("label"));
            assertEquals(expected.get(i).response(), row.get("response").asText(), "greedy output = Evaluation.generate");
            assertEquals(expected.get(i).tokens(), row.get("tokens").asInt());
            assertTrue(row.get("tokens").asInt() >= 1 && row.get("tokens").asInt() <= 12);
            JsonNode parsed = row.get("parsed");
            assertEquals(expected.get(i).parsed().formatValid(), parsed.get("format_valid").asBoolean());
            for (String f : List.of("polarity", "score", "problem")) assertTrue(parsed.has(f), f);
            assertFalse(parsed.get("format_valid").asBoolean() && !parsed.get("problem").isNull());
        }
        assertEquals(rows, generate("greedy2.jsonl"), "greedy is deterministic");
    }

    @Test
    void aSeedReproducesSampledResponses() throws Exception {
        List<JsonNode> a = generate("a.jsonl", "--temperature", "1.5", "--top-p", "0.95", "--seed", "3");
        List<JsonNode> b = generate("b.jsonl", "--temperature", "1.5", "--top-p", "0.95", "--seed", "3");
        List<JsonNode> c = generate("c.jsonl", "--temperature", "1.5", "--top-p", "0.95", "--seed", "4");
        assertEquals(a, b, "same seed, same responses");
        assertNotEquals(a, c, "another seed samples other responses");
        // a line's draws come from (seed, line index): the batch it falls in does not matter
        List<JsonNode> one = generate("one.jsonl", "--temperature", "1.5", "--top-p", "0.95", "--seed", "3", "--batch-size", "1");
        List<JsonNode> many = generate("many.jsonl", "--temperature", "1.5", "--top-p", "0.95", "--seed", "3", "--batch-size", "32");
        assertEquals(a, one, "batch size 1");
        assertEquals(a, many, "one batch for all");
    }

    @Test
    void aBadLineFailsNamingFileAndLineAndWritesNothing() throws Exception {
        List<String> lines = new ArrayList<>(Files.readAllLines(input));
        lines.set(3, "{\"id\": \"x\", \"text\": 5}");
        Files.write(input, lines);
        Path out = dir.resolve("out.jsonl");
        assertEquals(Main.EXIT_BAD_INPUT, run("generate", "--model", modelDir.toString(), "--input", input.toString(),
                "--output", out.toString(), "--backend", "cpu"));
        assertTrue(err.contains("hintgrpo: error: " + input + ":4: \"text\" must be a string"), err);
        assertFalse(Files.exists(out));

        assertEquals(Main.EXIT_BAD_INPUT, run("generate", "--model", modelDir.toString(), "--input", dir.resolve("none.jsonl").toString(),
                "--output", out.toString(), "--backend", "cpu"));
        assertTrue(err.contains("none.jsonl: file not found"), err);
        assertEquals(Main.EXIT_BAD_INPUT, run("generate", "--model", modelDir.toString(), "--input", input.toString(),
                "--output", out.toString(), "--top-p", "0"));
        assertTrue(err.contains("hintgrpo: error: --top-p: must be in (0, 1], got 0.0"), err);
        assertFalse(Files.exists(out));
    }
}
