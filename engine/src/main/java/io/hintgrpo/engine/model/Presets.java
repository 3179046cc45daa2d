package io.hintgrpo.engine.model;

import java.util.List;

/**
 * Named model shapes used by benchmarks, tests, the demo and {@code hintgrpo init --preset}. The
 * embedded default is sized so the CPU demo (synth → SFT → Hint-GRPO → eval) fits in minutes on 2
 * cores. The Qwen2.5 shapes are the published configs (rope theta 1e6, RMS eps 1e-6, q/k/v
 * biases, max_position_embeddings 32768 as the Instruct configs say).
 */
public final class Presets {
    private Presets() {}

    /**
     * A shape by the name {@code init --preset} takes. {@code publishedVocab}: the vocab_size is the
     * released model's and is kept (grown only where a tokenizer needs more ids); otherwise the
     * vocabulary follows the tokenizer.
     */
    public record Named(String name, ModelConfig shape, boolean publishedVocab) {}

    /** Every named shape, smallest first. */
    /** The preset of that name; an unknown name is a {@link io.hintgrpo.engine.BadInputException} naming --preset and the known ones. */
    public static Named named(String name) {
        return all().stream().filter(p -> p.name().equals(name)).findFirst()
                .orElseThrow(() -> new io.hintgrpo.engine.BadInputException("--preset", "unknown preset \"" + name + "\"; known: "
                        + String.join(", ", all().stream().map(Named::name).toList())));
    }

    public static List<Named> all() {
        return List.of(new Named("embedded", embeddedDefault(), false),
                new Named("25m", small25m(), false),
                new Named("125m", small125m(), false),
                new Named("qwen2.5-0.5b", qwen25_05b(), true),
                new Named("qwen2.5-1.5b", qwen25_15b(), true),
                new Named("qwen2.5-7b", qwen25_7b(), true));
    }

    /** About 3.5M parameters: hidden 256, 4 layers, GQA 4/2, tied head, audio and vision projectors. */
    public static ModelConfig embeddedDefault() {
        return new ModelConfig(256, 704, 4, 2, 4, 2048, 1e-6f, 10000f, true, 1024,
                16, 16, 2046, 2047, "mlp");
    }

    /** About 26M parameters: hidden 512, 6 layers, GQA 8/4, untied head, text only. */
    public static ModelConfig small25m() {
        return new ModelConfig(512, 1408, 8, 4, 6, 8192, 1e-6f, 10000f, false, 2048,
                0, 0, -1, -1, "linear");
    }

    /** About 125M parameters: hidden 768, 12 layers, GQA 12/4, MLP 2048, vocab 32000, untied head, text only. */
    public static ModelConfig small125m() {
        return new ModelConfig(768, 2048, 12, 4, 12, 32000, 1e-6f, 10000f, false, 4096,
                0, 0, -1, -1, "linear");
    }

    /** The Qwen2.5-0.5B shape (hidden 896, 14 heads, 2 KV heads, 24 layers, MLP 4864, vocab 151936, tied). */
    public static ModelConfig qwen25_05b() {
        return new ModelConfig(896, 4864, 14, 2, 24, 151936, 1e-6f, 1000000f, true, 32768,
                0, 0, -1, -1, "linear");
    }

    /** The Qwen2.5-1.5B shape (hidden 1536, 12 heads, 2 KV heads, 28 layers, MLP 8960, vocab 151936, tied). */
    public static ModelConfig qwen25_15b() {
        return new ModelConfig(1536, 8960, 12, 2, 28, 151936, 1e-6f, 1000000f, true, 32768,
                0, 0, -1, -1, "linear");
    }

    /** The Qwen2.5-7B shape (hidden 3584, 28 heads, 4 KV heads, 28 layers, MLP 18944, vocab 152064, untied). */
    public static ModelConfig qwen25_7b() {
        return new ModelConfig(3584, 18944, 28, 4, 28, 152064, 1e-6f, 1000000f, false, 32768,
                0, 0, -1, -1, "linear");
    }
}
