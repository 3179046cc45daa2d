package io.hintgrpo.engine.model;

/**
 * Named model shapes used by benchmarks, tests and the demo. The embedded default is sized so the
 * CPU demo (synth → SFT → Hint-GRPO → eval) fits in minutes on 2 cores; the trainer issue may
 * retune it together with its tokenizer's vocabulary.
 */
public final class Presets {
    private Presets() {}

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

    /** The Qwen2.5-0.5B shape (hidden 896, 14 heads, 2 KV heads, 24 layers, vocab 151936, tied). */
    public static ModelConfig qwen25_05b() {
        return new ModelConfig(896, 4864, 14, 2, 24, 151936, 1e-6f, 1000000f, true, 32768,
                0, 0, -1, -1, "linear");
    }
}
