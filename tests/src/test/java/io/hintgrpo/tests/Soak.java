package io.hintgrpo.tests;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.rl.GrpoRun;
import io.hintgrpo.trainer.rl.Reward;
import io.hintgrpo.trainer.rl.Rewards;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The soak (scripts/soak.sh, not in CI): a tiny-model Hint-GRPO run of many steps on cpu through
 * the Java API, sampling every 100 steps the process's resident set (VmRSS of /proc/self/status)
 * and the JVM's allocator statistics (heap used and committed, direct and mapped buffers, threads).
 * The claim: no leak, RSS at the last step within 5 % of the step-200 sample. Writes soak.json and
 * soak.md into the output folder; exit 1 when the claim fails.
 *
 * <p>Arguments: {@code [steps (2000)] [output folder (soak-out)]}.
 */
public final class Soak {
    private Soak() {}

    public static void main(String[] args) throws Exception {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
        Path out = Path.of(args.length > 1 ? args[1] : "soak-out");
        if (Files.exists(out.resolve("run"))) throw new IllegalStateException(out + "/run exists: choose a new output folder");
        Path model = Children.corpusAndModel(out, 32, 2);
        ModelConfig cfg = ModelConfig.load(model.resolve("config.json"));
        List<Utterance> train = Jsonl.read(Path.of(Children.train(out)), Jsonl.Expect.of(cfg));
        GrpoConfig grpo = GrpoConfig.defaults().with(Map.of("steps", steps, "prompts_per_step", 2, "group_size", 4,
                "max_completion_tokens", 8, "checkpoint_every", 500, "eval_every", steps, "keep_last", 1, "beta", 0.04));
        ObjectMapper json = new ObjectMapper();
        ArrayNode samples = json.createArrayNode();
        long t0 = System.nanoTime();
        // a random tiny model's rollouts all score alike under the built-in rewards; a term on the response length keeps
        // the groups' rewards apart, so every step has advantages and a real update
        Rewards rewards = new Rewards(List.of(new Rewards.Term(Rewards.format(), 0.2), new Rewards.Term(Rewards.polarity(), 0.4),
                new Rewards.Term(new Reward() {
                    public String name() { return "length"; }
                    public double score(Utterance u, String response, ParsedResponse parsed) { return response.length() % 5 / 4.0; }
                }, 1.0)));
        GrpoRun.Job job = GrpoRun.Job.of(model, train, List.of(), grpo).rewards(rewards).onStep(m -> {
            if (m.step() % 100 != 0) return;
            ObjectNode s = samples.addObject();
            MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
            s.put("step", m.step());
            s.put("seconds", (System.nanoTime() - t0) / 1e9);
            s.put("rss_mib", rssKib() / 1024.0);
            s.put("heap_used_mib", heap.getUsed() / 1048576.0);
            s.put("heap_committed_mib", heap.getCommitted() / 1048576.0);
            for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class))
                s.put(b.getName().replaceAll("[^a-z]+", "_") + "_buffers_mib", b.getMemoryUsed() / 1048576.0);
            s.put("threads", ManagementFactory.getThreadMXBean().getThreadCount());
            System.err.printf(Locale.ROOT, "soak: step %d  rss %.1f MiB  heap %.1f / %.1f MiB%n", m.step(), s.get("rss_mib").asDouble(),
                    s.get("heap_used_mib").asDouble(), s.get("heap_committed_mib").asDouble());
        });
        try (CpuKernels cpu = new CpuKernels()) {
            GrpoRun.run(cpu, job, Run.in(out.resolve("run")).log(msg -> {}).stopWhen(() -> false));
        }
        double at200 = rss(samples, 200), last = rss(samples, steps);
        double change = (last - at200) / at200;
        boolean ok = Math.abs(change) <= 0.05;
        ObjectNode result = json.createObjectNode();
        result.put("steps", steps);
        result.put("minutes", (System.nanoTime() - t0) / 6e10);
        result.put("java", System.getProperty("java.version"));
        result.put("rss_mib_at_200", at200);
        result.put("rss_mib_at_end", last);
        result.put("rss_change", change);
        result.put("within_5_percent", ok);
        result.set("samples", samples);
        AtomicFiles.writeString(out.resolve("soak.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(result));
        StringBuilder md = new StringBuilder("| step | minutes | RSS MiB | heap used MiB | heap committed MiB | direct MiB | mapped MiB | threads |\n"
                + "|---|---|---|---|---|---|---|---|\n");
        samples.forEach(s -> md.append(String.format(Locale.ROOT, "| %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %d |%n",
                s.get("step").asInt(), s.get("seconds").asDouble() / 60, s.get("rss_mib").asDouble(), s.get("heap_used_mib").asDouble(),
                s.get("heap_committed_mib").asDouble(), s.path("direct_buffers_mib").asDouble(), s.path("mapped_buffers_mib").asDouble(),
                s.get("threads").asInt())));
        md.append(String.format(Locale.ROOT, "%nRSS at step 200: %.1f MiB; at step %d: %.1f MiB (%+.1f %%): %s.%n", at200, steps, last,
                100 * change, ok ? "within 5 %" : "NOT within 5 %"));
        AtomicFiles.writeString(out.resolve("soak.md"), md.toString());
        System.out.print(md);
        System.exit(ok ? 0 : 1);
    }

    private static double rss(ArrayNode samples, int step) {
        for (var s : samples) if (s.get("step").asInt() == step) return s.get("rss_mib").asDouble();
        throw new IllegalStateException("no sample at step " + step);
    }

    private static long rssKib() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        } catch (java.io.IOException e) {
            // not Linux: no RSS to report
        }
        return -1;
    }
}
