package io.hintgrpo.trainer.cli;

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
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code hintgrpo eval}: generate and score a model on labelled utterances (MMSA metrics per domain). */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Generates a DC response per utterance (greedy by default) and reports MAE, Corr, Acc-2/F1 (has-0, non-0), "
                + "Acc-5, Acc-7, format validity, discrimination accuracy and DC consistency, overall and per domain.")
final class EvalCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @CommandLine.Mixin(name = "configFile")
    ConfigFile.Mixin configFile;

    @Option(names = "--model", required = true, description = "Model directory with tokenizer.json.")
    Path model;

    @CommandLine.Mixin(name = "adapter")
    AdapterOption adapter;

    @Option(names = "--data", required = true, split = ",", description = "JSONL file(s) with labels.")
    List<Path> data;

    @Option(names = "--out", description = "Write the report as JSON here (and the markdown table beside it, .md).")
    Path out;

    @Option(names = "--drop-modality", defaultValue = "none", description = "none | audio | vision | both: zero those inputs (default: ${DEFAULT-VALUE}).")
    String drop;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--batch-size", defaultValue = "32", description = "Utterances generated together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--max-new-tokens", defaultValue = "128", description = "Longest response (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--skip-bad", description = "Skip malformed records (counted and reported).")
    boolean skipBad;

    @Override
    public Integer call() throws Exception {
        Evaluation.Drop d = Evaluation.Drop.parse(drop);
        if (batchSize < 1) throw new BadInputException("--batch-size", "must be ≥ 1, got " + batchSize);
        if (maxNewTokens < 1) throw new BadInputException("--max-new-tokens", "must be ≥ 1, got " + maxNewTokens);
        if (out != null) {
            ConfigFile.checkOutput(out, "--out", data);
            ConfigFile.checkOutput(markdownBeside(out), "--out", data);
        }
        try (Kernels kernels = Backends.open(backend);
             Model m = ModelDir.load(kernels, model, 0, msg -> System.err.println("hintgrpo: " + msg));
             Tokenizer tok = Tokenizer.load(model)) {
            adapter.attachTo(m);
            GenerateCommand.checkMaxNewTokens(maxNewTokens, m.config);
            List<Utterance> all = new ArrayList<>();
            for (Path f : data) {
                Jsonl.Loaded l = Jsonl.read(f, d.expect(m.config), skipBad); // a dropped modality may have any width
                if (l.skipped() > 0) System.err.println("hintgrpo: " + f + ": skipped " + l.skipped() + " malformed records (--skip-bad)");
                all.addAll(l.utterances());
            }
            Evaluation.Options opt = new Evaluation.Options(maxNewTokens, 0f, 0, 1f, batchSize, 0, d);
            Evaluation.Outcome o = Evaluation.run(m, tok, all, opt, msg -> System.err.print("\rhintgrpo: " + msg));
            System.err.println();
            String md = o.report().toMarkdown();
            spec.commandLine().getOut().println(md);
            if (out != null) {
                AtomicFiles.writeString(out, o.report().toJson());
                ConfigFile.writeEffectiveBeside(spec, out);
                AtomicFiles.writeString(markdownBeside(out), md);
            }
        }
        return 0;
    }

    /** The markdown table beside the JSON report: report.json → report.md. */
    private static Path markdownBeside(Path out) {
        return out.resolveSibling(out.getFileName().toString().replaceFirst("\\.json$", "") + ".md");
    }
}
