package io.hintgrpo.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.trainer.bench.BenchCompare;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The GPU harness (tier 2 of scripts/gpu-check.sh) at toy sizes, where no GPU is: every section
 * runs end to end, the JSON it writes holds what docs/gpu-check.md says, and bench compare reads
 * its JMH file with the torch rows as references. The torch side is a stand-in: shell scripts
 * that answer the real scripts' protocol with fixed timings (so the ratios are known); the real
 * python scripts are compiled, and the attention one run on the CPU where a torch is installed.
 */
class GpuBenchTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The stand-ins' milliseconds: torch attention, training step. */
    private static final double TORCH_ATTENTION_MS = 0.5, TORCH_STEP_MS = 10.0;

    private static Path standIns(Path dir, boolean failing) throws Exception {
        Files.writeString(dir.resolve("torch_gemm_bench.py"), failing ? "exit 3\n"
                : "while read l m n k; do echo \"$l $m $n $k 1.0 0.01\"; done\n");
        Files.writeString(dir.resolve("torch_attention_bench.py"), failing ? "echo 'torch: no CUDA' >&2; exit 1\n"
                : "while read b t h kv d; do for dt in fp32 bf16; do for p in fwd fwdbwd; do\n"
                + "  echo \"$dt $p $b $t $h $kv $d " + TORCH_ATTENTION_MS + " 0.01 stand-in\"; done; done; done\n");
        Files.writeString(dir.resolve("torch_train_bench.py"), failing ? "exit 1\n"
                : "echo 'some chatter from transformers'\n"
                + "while read name hid inter h kv l v tied b t; do echo \"$name $b $t " + TORCH_STEP_MS + " 0.1 12345 64.0\"; done\n");
        return dir;
    }

    private static GpuBench.Options options(String backend, Path dir, Path scripts, String sections) {
        return new GpuBench.Options(backend, false, dir.resolve("bench.json"), dir.resolve("bench-jmh.json"), "/bin/sh",
                scripts, scripts.resolve("torch_gemm_bench.py"), new java.util.LinkedHashSet<>(List.of(sections.split(","))));
    }

    private static List<JsonNode> list(JsonNode array) {
        List<JsonNode> out = new ArrayList<>();
        array.forEach(out::add);
        return out;
    }

    @Test
    void everySectionRunsOnCpuAndWritesWhatCompareReads(@TempDir Path dir) throws Exception {
        assumeTrue(new File("/bin/sh").canExecute(), "the torch stand-ins are shell scripts");
        Path scripts = standIns(Files.createDirectory(dir.resolve("scripts")), false);
        GpuBench bench = GpuBench.run(options("cpu", dir, scripts, String.join(",", GpuBench.Options.ALL)));

        JsonNode root = JSON.readTree(Files.readString(dir.resolve("bench.json")));
        assertEquals("cpu", root.get("backend").asText());
        assertTrue(root.get("copy_gbps").asDouble() > 0);
        assertTrue(root.get("peak_bf16_tflops").isNull(), "no bf16 peak is known for the cpu: no MFU");
        assertEquals("stand-in", root.get("sdpa").asText());
        for (String section : List.of("results", "decode", "train", "grpo", "memory", "targets"))
            assertFalse(root.get(section).isEmpty(), section + " is empty");

        // attention: ours fwd and fwd+bwd per shape, torch fp32 under the same names, bf16 apart
        for (GpuBench.AttentionShape a : GpuBench.attentionShapes(false))
            for (String op : List.of("attention fwd", "attention fwd+bwd")) {
                assertNotNull(bench.find("hintgrpo", op, a.shape()), op + " " + a.shape());
                assertEquals(TORCH_ATTENTION_MS, bench.find("torch", op, a.shape()).ms());
                assertEquals(TORCH_ATTENTION_MS, bench.find("torch", op + " bf16", a.shape()).ms());
            }

        // training steps: ours in bf16 and fp32, torch's with its own parameter count and peak
        List<JsonNode> train = list(root.get("train"));
        assertEquals(Set.of("hintgrpo bf16", "hintgrpo fp32", "torch bf16 autocast"),
                Set.copyOf(train.stream().map(t -> t.get("who").asText()).toList()));
        for (JsonNode t : train) {
            double tokens = t.get("batch").asInt() * t.get("seq").asDouble();
            assertEquals(tokens / t.get("ms").asDouble() * 1e3, t.get("tokens_per_s").asDouble(), 0.1 + 1e-3 * t.get("tokens_per_s").asDouble());
            assertTrue(t.get("mfu").isNull());
            if (t.get("who").asText().startsWith("torch")) {
                assertEquals(12345, t.get("params").asLong());
                assertEquals(64.0, t.get("peak_mib").asDouble());
            } else {
                assertEquals(new io.hintgrpo.engine.model.ParamLayout(GpuBench.tinyConfig()).size(), t.get("params").asLong());
            }
        }

        // GRPO: the three phases and their sum, positive
        List<JsonNode> grpo = list(root.get("grpo"));
        assertEquals(List.of("grpo generate", "grpo reference logprobs", "grpo update", "grpo step"),
                grpo.stream().map(g -> g.get("phase").asText()).toList());
        double sum = 0;
        for (int i = 0; i < 3; i++) {
            assertTrue(grpo.get(i).get("ms").asDouble() > 0);
            sum += grpo.get(i).get("ms").asDouble();
        }
        assertEquals(sum, grpo.get(3).get("ms").asDouble(), 1e-3 * sum);

        // memory on cpu: the closed forms, no measurement (no device allocator)
        JsonNode weights = list(root.get("memory")).stream().filter(m -> m.get("component").asText().startsWith("weights fp32")).findFirst().orElseThrow();
        assertEquals(4.0 * new io.hintgrpo.engine.model.ParamLayout(GpuBench.tinyConfig()).size(), weights.get("computed_bytes").asDouble());
        assertTrue(weights.get("measured_bytes").isNull());

        // targets: every kind, each ratio the one the rows imply
        Set<String> kinds = new java.util.HashSet<>();
        for (GpuBench.Target t : bench.targets) kinds.add(t.what());
        assertEquals(Set.of("gemm >= 0.7x cuBLAS", "attention >= 0.6x SDPA", "train step >= 1.0x eager",
                "memory-bound >= 0.7x copy", "decode >= 0.5x bound"), kinds);
        GpuBench.AttentionShape first = GpuBench.attentionShapes(false).get(0);
        double ours = bench.find("hintgrpo", "attention fwd+bwd", first.shape()).ms();
        assertTrue(bench.targets.stream().anyMatch(t -> t.against().equals("SDPA bf16") && t.row().endsWith(first.shape())
                && Math.abs(t.ratio() - TORCH_ATTENTION_MS / ours) < 1e-9 * t.ratio()));
        assertEquals(bench.targets.size(), root.get("targets").size());

        // the JMH file: bench compare reads it, and compares ours relative to torch where both ran
        Path jmh = dir.resolve("bench-jmh.json");
        Map<String, BenchCompare.Result> read = BenchCompare.read(jmh);
        assertEquals(bench.results.size(), read.size());
        BenchCompare.Report report = BenchCompare.compare(jmh, jmh, 0.10);
        assertFalse(report.hasRegression());
        for (String op : List.of("attention fwd+bwd", "train step bf16", "gemmBf16 NT q|k|v"))
            assertTrue(report.rows().stream().anyMatch(r -> r.benchmark().endsWith(".hintgrpo") && r.params().contains("op=" + op) && r.ratio()),
                    op + " is compared relative to torch");
        assertTrue(report.rows().stream().anyMatch(r -> r.params().contains("op=train step fp32") && !r.ratio()),
                "no torch fp32 step: raw comparison");
    }

    @Test
    void aFailingTorchScriptCostsOnlyItsRows(@TempDir Path dir) throws Exception {
        assumeTrue(new File("/bin/sh").canExecute(), "the torch stand-ins are shell scripts");
        Path scripts = standIns(Files.createDirectory(dir.resolve("scripts")), true);
        GpuBench bench = GpuBench.run(options("cpu", dir, scripts, "attention,train"));
        assertTrue(bench.results.stream().noneMatch(r -> r.source().equals("torch")));
        assertEquals(2 * GpuBench.attentionShapes(false).size(), bench.results.stream().filter(r -> r.op().startsWith("attention")).count());
        assertEquals(2, bench.train.size(), "ours in bf16 and fp32");
        assertTrue(bench.targets.stream().noneMatch(t -> t.what().startsWith("attention") || t.what().startsWith("train")));
        assertEquals(bench.results.size(), BenchCompare.read(dir.resolve("bench-jmh.json")).size());
    }

    /** On the CUDA emulator the allocator measures each component: it must match the closed forms exactly. */
    @Test
    void memoryTableOnTheEmulatorMeasuresWhatItComputes(@TempDir Path dir) throws Exception {
        GpuBench bench = GpuBench.run(options("cuda-emu", dir, dir, "memory"));
        assertFalse(bench.memory.isEmpty());
        for (TrainBench.Memory m : bench.memory) {
            if (m.component().startsWith("driver") || m.component().startsWith("KV cache")) {
                assertTrue(Double.isNaN(m.measured()), m.component() + ": the emulator has no cuMemGetInfo; the cache is computed");
            } else if (!Double.isNaN(m.computed())) {
                assertEquals(m.computed(), m.measured(), m.component());
            } else {
                assertTrue(m.measured() >= 0, m.component() + " = " + m.measured());
            }
        }
        double peak = bench.memory.stream().filter(m -> m.component().startsWith("peak")).findFirst().orElseThrow().measured();
        double held = bench.memory.stream().limit(5).mapToDouble(TrainBench.Memory::measured).sum(); // weights … activations
        assertTrue(peak >= held, "the step's peak " + peak + " holds at least weights, grads, moments and activations " + held);
        assertTrue(bench.memory.stream().anyMatch(m -> m.component().startsWith("activations") && m.measured() > 0));
    }

    /**
     * The scale section (asked for by name) at the toy size on the emulator: a LoRA GRPO step on a
     * frozen bf16 base with recompute, each phase's measured peak within 5 % of the memory plan, and
     * its three timings; on cpu it runs too, with nothing to measure.
     */
    @Test
    void scaleSectionMatchesTheMemoryPlanOnTheEmulator(@TempDir Path dir) throws Exception {
        GpuBench bench = GpuBench.run(options("cuda-emu", dir, dir, "scale"));
        List<TrainBench.Memory> planned = bench.memory.stream().filter(m -> !Double.isNaN(m.computed())).toList();
        assertEquals(2, planned.size(), bench.memory.toString());
        for (TrainBench.Memory m : planned) {
            double ratio = m.computed() / m.measured();
            System.out.printf(java.util.Locale.ROOT, "GpuBenchTest scale: %s plan %.0f measured %.0f ratio %.4f%n", m.component(), m.computed(),
                    m.measured(), ratio);
            assertTrue(Math.abs(ratio - 1) <= 0.05, m.component() + ": plan " + m.computed() + " vs measured " + m.measured());
        }
        for (String op : List.of("scale generate", "scale reference logprobs", "scale update"))
            assertTrue(bench.results.stream().anyMatch(r -> r.op().equals(op) && r.ms() > 0), op);
        GpuBench cpu = GpuBench.run(options("cpu", Files.createDirectories(dir.resolve("cpu")), dir, "scale"));
        assertTrue(cpu.memory.stream().allMatch(m -> Double.isNaN(m.measured())), "nothing measured on cpu");
    }

    /** The torch scripts GpuBench runs on the GPU machine: valid python, and the attention one runs on a CPU torch. */
    @Test
    void torchScriptsCompileAndTheAttentionOneRunsOnTheCpu(@TempDir Path dir) throws Exception {
        String python = "/usr/bin/python3";
        assumeTrue(new File(python).canExecute(), "no " + python);
        Path root = Path.of(System.getProperty("user.dir")).getParent().resolve("scripts");
        List<String> scripts = List.of("torch_gemm_bench.py", "torch_attention_bench.py", "torch_train_bench.py");
        for (String s : scripts) {
            Process p = new ProcessBuilder(python, "-c", "import sys, py_compile; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
                    root.resolve(s).toString(), dir.resolve(s + "c").toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, s + ": " + out);
        }
        Process hasTorch = new ProcessBuilder(python, "-c", "import torch").redirectErrorStream(true).start();
        hasTorch.getInputStream().readAllBytes();
        assumeTrue(hasTorch.waitFor(120, TimeUnit.SECONDS) && hasTorch.exitValue() == 0, "no torch for " + python);
        Process p = new ProcessBuilder(python, root.resolve("torch_attention_bench.py").toString(), "--device", "cpu")
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (var w = p.getOutputStream()) {
            w.write("2 16 4 2 16\n".getBytes());
        }
        List<String> lines = new String(p.getInputStream().readAllBytes()).lines().toList();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0);
        assertEquals(4, lines.size(), String.join("\n", lines));
        for (String line : lines) {
            String[] f = line.split(" ");
            assertEquals(10, f.length, line);
            assertTrue(Double.parseDouble(f[7]) > 0, line);
            assertTrue(Set.of("sdpa-gqa", "sdpa-repeat", "manual").contains(f[9]), line);
        }
    }
}
