package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.export.OnnxExport;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code hintgrpo export}: the trained model in formats other runtimes read. */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Writes a model in another format: onnx (token ids + audio/vision frames → logits, checked in ONNX Runtime).",
        subcommands = ExportCommand.Onnx.class)
final class ExportCommand {

    @Command(name = "onnx", mixinStandardHelpOptions = true,
            description = "The model's forward as a standard-operator ONNX graph (opset 17, dynamic batch and length); "
                    + "ONNX Runtime's logits are checked against ours (relative error ≤ 1e-4) before the file appears.")
    static final class Onnx implements Callable<Integer> {
        @Spec CommandSpec spec;

        @CommandLine.Mixin(name = "configFile")
        ConfigFile.Mixin configFile;

        @Option(names = "--model", required = true, description = "Model directory: config.json + model.safetensors (or sharded).")
        Path modelDir;

        @Option(names = "--out", required = true, description = "The .onnx file; weights over 1 GiB go to FILE.data beside it.")
        Path out;

        @Option(names = "--seed", defaultValue = "0", description = "Seed for tensors a checkpoint lacks (projectors of a text-only model).")
        long seed;

        @Override
        public Integer call() throws IOException {
            ConfigFile.checkOutput(out, "--out", java.util.List.of(modelDir));
            PrintWriter err = spec.commandLine().getErr();
            try (Kernels kernels = Backends.open("cpu");
                 Model model = ModelDir.load(kernels, modelDir, seed, msg -> err.println("hintgrpo: " + msg))) {
                OnnxExport.Result r;
                try {
                    r = OnnxExport.export(model, out, msg -> err.println("hintgrpo: " + msg));
                } catch (OnnxExport.CheckFailed e) {
                    err.println("hintgrpo: error: " + e.getMessage() + "; nothing written");
                    return 1;
                }
                PrintWriter w = spec.commandLine().getOut();
                w.printf("wrote %s%s: %.1f MB of weights; ONNX Runtime agrees with the model on %d probe sequences (%d tokens): "
                                + "relative error %.2e (≤ %.0e)%n", r.model(), r.data() == null ? "" : " and " + r.data(),
                        r.weightBytes() / 1e6, r.probeSequences(), r.probeTokens(), r.relativeError(), OnnxExport.TOLERANCE);
                ConfigFile.writeEffectiveBeside(spec, out);
            }
            return 0;
        }
    }
}
