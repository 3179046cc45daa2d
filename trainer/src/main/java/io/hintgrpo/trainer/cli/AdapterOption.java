package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.io.PeftAdapter;
import io.hintgrpo.engine.model.Lora;
import io.hintgrpo.engine.model.Model;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code --adapter DIR} of the commands that run a model: a PEFT LoRA adapter on top of --model (docs/lora.md). */
final class AdapterOption {
    @Option(names = "--adapter", paramLabel = "DIR", description = "A PEFT LoRA adapter directory (adapter_config.json, "
            + "adapter_model.safetensors, e.g. a run's adapter/) applied on top of --model (docs/lora.md).")
    Path dir;

    /** Attaches the adapter to the loaded base, when one was given. */
    void attachTo(Model model) {
        if (dir == null) return;
        Lora lora = PeftAdapter.load(model, dir);
        System.err.println("hintgrpo: LoRA adapter " + dir + ": rank " + lora.config.rank() + ", alpha " + lora.config.alpha() + " on "
                + String.join(",", lora.config.targetNames()));
    }
}
