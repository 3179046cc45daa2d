package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.cuda.CudaKernels;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.MemoryPlan;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.loop.LoraSettings;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * hintgrpo plan: the device memory an SFT step and a GRPO step (generation, update) need, by
 * component, from the engine's own allocation sizes ({@link MemoryPlan}), and whether each fits
 * the card (docs/scale.md).
 */
@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Device memory of an SFT step and of a GRPO step (generation and update phases) on a CUDA backend, component "
                + "by component (weights, gradients, optimizer state, activations, logits chunk, KV cache, scratch), and whether "
                + "each fits --gpu-mem (docs/scale.md). Reads only config.json (or a preset's shape); nothing is allocated.")
final class PlanCommand implements Callable<Integer> {
    private static final double GIB = 1L << 30;

    @Spec CommandSpec spec;

    static final class Shape {
        @Option(names = "--model", required = true, description = "Model directory (its config.json).")
        Path model;

        @Option(names = "--preset", required = true, paramLabel = "NAME", description = "A named shape instead of --model: "
                + "embedded, 25m, 125m, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b.")
        String preset;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Shape shape;

    @Option(names = "--gpu-mem", defaultValue = "80G", description = "Device memory to fit in: a number with G (GiB) or M (MiB) "
            + "(default: ${DEFAULT-VALUE}).")
    String gpuMem;

    @Option(names = "--precision", defaultValue = "fp32", description = "fp32 | bf16, as sft and grpo take it; with --lora-rank, "
            + "bf16 stores the frozen base in bf16 (default: ${DEFAULT-VALUE}).")
    String precision;

    @Option(names = "--lora-rank", defaultValue = "0", description = "LoRA rank (0: full training) (default: ${DEFAULT-VALUE}).")
    int loraRank;

    @Option(names = "--lora-alpha", defaultValue = "16", description = "LoRA alpha (default: ${DEFAULT-VALUE}).")
    double loraAlpha;

    @Option(names = "--lora-targets", defaultValue = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
            description = "Linears with adapters (default: all seven).")
    String loraTargets;

    @Option(names = "--recompute", description = "Plan with activation recompute (sft and grpo --recompute).")
    boolean recompute;

    @Option(names = "--batch-size", defaultValue = "8", description = "SFT sequences per step (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--seq-len", defaultValue = "512", description = "SFT positions per sequence (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--prompts-per-step", defaultValue = "8", description = "GRPO prompts per step (default: ${DEFAULT-VALUE}).")
    int prompts;

    @Option(names = "--group-size", defaultValue = "8", description = "GRPO rollouts per prompt, G (default: ${DEFAULT-VALUE}).")
    int groupSize;

    @Option(names = "--max-prompt-tokens", defaultValue = "256", description = "GRPO prompt positions (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--max-completion-tokens", defaultValue = "112", description = "GRPO completion tokens (default: ${DEFAULT-VALUE}).")
    int completionTokens;

    @Option(names = "--minibatches", defaultValue = "1", description = "GRPO optimizer steps per rollout batch (default: ${DEFAULT-VALUE}).")
    int minibatches;

    @Option(names = "--beta", defaultValue = "0.04", description = "GRPO KL coefficient: > 0 keeps a reference (default: ${DEFAULT-VALUE}).")
    double beta;

    @Option(names = "--feature-rows", defaultValue = "0", description = "Audio and vision feature rows per sequence each "
            + "(where the model has those projectors) (default: ${DEFAULT-VALUE}).")
    int featureRows;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the plan as JSON (atomically).")
    Path json;

    @Override
    public Integer call() throws Exception {
        long gpuBytes = parseBytes(gpuMem);
        atLeast("--batch-size", batchSize, 1);
        atLeast("--seq-len", seqLen, 1);
        atLeast("--prompts-per-step", prompts, 1);
        atLeast("--group-size", groupSize, 1);
        atLeast("--max-prompt-tokens", promptTokens, 1);
        atLeast("--max-completion-tokens", completionTokens, 1);
        atLeast("--minibatches", minibatches, 1);
        atLeast("--feature-rows", featureRows, 0);
        ModelConfig cfg = shape.model != null ? ModelConfig.load(shape.model.resolve("config.json")) : Presets.named(shape.preset).shape();
        String name = shape.model != null ? shape.model.toString() : shape.preset;
        LoraSettings loraSettings = new LoraSettings(loraRank, loraAlpha, loraTargets);
        LoraConfig lora = loraSettings.enabled() ? loraSettings.config() : null;
        Precision p = Precision.parse(precision);
        MemoryPlan.Setup setup = new MemoryPlan.Setup(cfg, lora, p, recompute, true, CudaKernels.LOGIT_CHUNK_FLOATS);
        int audio = cfg.hasAudio() ? featureRows : 0, vision = cfg.hasVision() ? featureRows : 0;
        List<MemoryPlan.Phase> phases = new ArrayList<>();
        phases.add(MemoryPlan.trainingStep(setup, batchSize, seqLen, new MemoryPlan.Features(audio * batchSize, vision * batchSize)));
        phases.addAll(MemoryPlan.grpo(setup, new MemoryPlan.Grpo(prompts, groupSize, promptTokens, completionTokens, minibatches, beta > 0),
                new MemoryPlan.Features(audio, vision)));

        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "hintgrpo plan: %s (%,d parameters), %s, %s%s; GPU %.1f GiB%n", name, new io.hintgrpo.engine.model.ParamLayout(cfg).count(),
                lora == null ? "full training" : "LoRA r" + lora.rank() + " on " + String.join(",", lora.targetNames()),
                p.flag(), recompute ? ", recompute" : "", gpuBytes / GIB);
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("model", name).put("gpu_bytes", gpuBytes).put("precision", p.flag()).put("lora_rank", loraRank).put("recompute", recompute);
        ArrayNode jsonPhases = root.putArray("phases");
        for (int i = 0; i < phases.size(); i++) {
            MemoryPlan.Phase ph = phases.get(i);
            String title = i == 0 ? "SFT " + ph.name() : ph.name();
            long total = ph.total();
            out.printf(Locale.ROOT, "%n%s: %.2f GiB, %s%n%n| component | GiB |%n|---|---:|%n", title, total / GIB,
                    total <= gpuBytes ? String.format(Locale.ROOT, "fits (%.2f GiB left)", (gpuBytes - total) / GIB)
                            : String.format(Locale.ROOT, "does NOT fit (%.2f GiB over)", (total - gpuBytes) / GIB));
            ObjectNode jp = jsonPhases.addObject().put("phase", title).put("total_bytes", total).put("fits", total <= gpuBytes);
            ArrayNode items = jp.putArray("components");
            for (MemoryPlan.Item it : ph.items()) {
                out.printf(Locale.ROOT, "| %s | %.3f |%n", it.component(), it.bytes() / GIB);
                items.addObject().put("component", it.component()).put("bytes", it.bytes());
            }
            out.printf(Locale.ROOT, "| **total** | **%.3f** |%n", total / GIB);
        }
        out.println();
        out.println("Sizes are the engine's allocations on a CUDA backend (checked against cuda-emu's measured peak within 5 %); the "
                + "driver's context, the CUDA graph and fragmentation come on top.");
        out.flush();
        if (json != null) AtomicFiles.writeString(json, mapper.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
        return 0;
    }

    private static void atLeast(String option, int value, int least) {
        if (value < least) throw new BadInputException(option, "must be ≥ " + least + ", got " + value);
    }

    /** "80G", "80GiB", "81920M" → bytes (binary units); anything else names --gpu-mem. */
    static long parseBytes(String s) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)\\s*([0-9]+(?:\\.[0-9]+)?)\\s*(g|gb|gib|m|mb|mib)\\s*").matcher(s);
        if (!m.matches()) throw new BadInputException("--gpu-mem", "\"" + s + "\" is not a size like 80G or 40960M");
        double v = Double.parseDouble(m.group(1));
        double unit = m.group(2).toLowerCase(Locale.ROOT).startsWith("g") ? GIB : 1 << 20;
        if (!(v > 0)) throw new BadInputException("--gpu-mem", "must be positive, got " + s);
        return (long) (v * unit);
    }
}
