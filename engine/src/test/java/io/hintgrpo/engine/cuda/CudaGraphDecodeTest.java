package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.engine.model.TestModels;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Decode through CUDA graphs: the captured-and-replayed step gives exactly the tokens and
 * log-probs of the step launched op by op (same kernels, same buffers), and both match cpu.
 * The driver is chosen as in {@link CudaParityTest} and wrapped to count graph calls.
 */
class CudaGraphDecodeTest {

    private static String backend() {
        return CudaParityTest.driverKind().equals("cuda") ? "cuda" : "cuda-emu";
    }

    /** The run's driver, counting the calls made through it by name. */
    private static Driver counting(Driver d, Map<String, Integer> calls) {
        return (Driver) Proxy.newProxyInstance(Driver.class.getClassLoader(), new Class<?>[]{Driver.class}, (proxy, m, args) -> {
            calls.merge(m.getName(), 1, Integer::sum);
            try {
                return m.invoke(d, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    @Test
    void graphDecodeEqualsEagerDecodeEqualsCpu() {
        ModelConfig cfg = TestModels.textConfig();
        Map<String, Integer> calls = new TreeMap<>();
        try (CudaKernels gpu = new CudaKernels(counting(CudaParityTest.openDriver("forward"), calls), backend())) {
            Model cpu = new Model(new CpuKernels(), cfg);
            cpu.initialize(5);
            Model dev = new Model(gpu, cfg);
            for (ParamLayout.Entry e : cpu.layout.entries()) dev.upload(e.name(), cpu.download(e.name()));
            List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(8), 7, 3, 5);
            int maxNew = 6;

            // a stop token that ends some sequences early: one the free-running greedy decode draws mid-way
            List<Generator.Completion> free = new Generator(cpu).generate(prompts, new Generator.Options(maxNew, 0f, 0, 1f, 1, null));
            int stop = free.get(1).tokens()[1];

            for (Generator.Options opt : List.of(
                    new Generator.Options(maxNew, 0f, 0, 1f, 1, new int[]{stop}).withLogprobs(),
                    new Generator.Options(maxNew, 0.9f, 8, 0.95f, 17, null).withLogprobs(),
                    new Generator.Options(maxNew, 1.2f, 0, 1f, 23, new int[]{stop}).withLogprobs())) {
                String what = "T=" + opt.temperature() + " seed " + opt.seed();
                calls.clear();
                List<Generator.Completion> eager = new Generator(dev, false).generate(prompts, opt);
                assertNull(calls.get("captureGraph"), what + ": graphs off");
                List<Generator.Completion> graph = new Generator(dev, true).generate(prompts, opt);
                assertEquals(1, calls.get("captureGraph"), what + ": one capture per generate call");
                List<Generator.Completion> want = new Generator(cpu).generate(prompts, opt);

                int longest = 0;
                for (int s = 0; s < prompts.size(); s++) {
                    Generator.Completion g = graph.get(s), e = eager.get(s), c = want.get(s);
                    assertArrayEquals(e.tokens(), g.tokens(), what + ", sequence " + s + ": graph vs eager tokens");
                    assertArrayEquals(e.logprobs(), g.logprobs(), what + ", sequence " + s + ": graph vs eager log-probs, bit for bit");
                    assertEquals(e.stopped(), g.stopped());
                    assertArrayEquals(c.tokens(), g.tokens(), what + ", sequence " + s + ": tokens vs cpu");
                    assertEquals(c.stopped(), g.stopped());
                    for (int n = 0; n < c.logprobs().length; n++)
                        assertEquals(c.logprobs()[n], g.logprobs()[n], 1e-4 * Math.max(1, Math.abs(c.logprobs()[n])),
                                what + ", sequence " + s + " token " + n + ": log-prob vs cpu");
                    longest = Math.max(longest, g.tokens().length);
                }
                // the first token comes from the prefill; every later one from a replay
                assertEquals(longest - 1, calls.get("launchGraph"), what + ": replays");
                if (opt.temperature() == 0f) {
                    assertTrue(graph.get(1).stopped() && graph.get(1).tokens().length < maxNew, what + ": sequence 1 stops early");
                }
            }
            // a stream per prompt (sampleRows, per-row steps from the device): graph = eager = cpu
            long[] keys = new long[prompts.size()];
            for (int s = 0; s < keys.length; s++) keys[s] = io.hintgrpo.engine.Kernels.streamKey(41, s);
            Generator.Options keyed = new Generator.Options(maxNew, 1.1f, 0, 0.9f, 0, null);
            List<Generator.Completion> eager = new Generator(dev, false).generate(prompts, keyed, keys);
            List<Generator.Completion> graph = new Generator(dev, true).generate(prompts, keyed, keys);
            List<Generator.Completion> want = new Generator(cpu).generate(prompts, keyed, keys);
            for (int s = 0; s < prompts.size(); s++) {
                assertArrayEquals(eager.get(s).tokens(), graph.get(s).tokens(), "keyed, sequence " + s + ": graph vs eager");
                assertArrayEquals(want.get(s).tokens(), graph.get(s).tokens(), "keyed, sequence " + s + ": vs cpu");
            }
            // continuous batching: rows admitted mid-run; the step is captured once and replayed
            int[][] devTokens = decodeBatch(dev, prompts, calls), cpuTokens = decodeBatch(cpu, prompts, null);
            for (int s = 0; s < prompts.size(); s++) assertArrayEquals(cpuTokens[s], devTokens[s], "decode batch, request " + s + ": vs cpu");
            assertEquals(calls.get("captureGraph"), calls.get("destroyGraph"), "each graph is destroyed with its generate call");
            dev.close();
        }
    }

    /** Each prompt's tokens through a 2-slot DecodeBatch that admits a request whenever a slot is free. */
    private static int[][] decodeBatch(Model m, List<Sequence> prompts, Map<String, Integer> calls) {
        int[][] out = new int[prompts.size()][];
        List<List<Integer>> got = new java.util.ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) got.add(new java.util.ArrayList<>());
        int[] requestOf = new int[2];
        int next = 0;
        int captures = calls == null ? 0 : calls.getOrDefault("captureGraph", 0);
        try (Generator.DecodeBatch batch = new Generator(m, true).new DecodeBatch(2, 16, new Generator.Options(4, 1.1f, 0, 0.9f, 0, null))) {
            while (next < prompts.size() || batch.active() > 0) {
                if (next < prompts.size() && batch.freeSlot() >= 0) {
                    Generator.Token t = batch.admit(prompts.get(next), io.hintgrpo.engine.Kernels.streamKey(3, next), 2 + next % 3, null);
                    requestOf[t.slot()] = next;
                    got.get(next++).add(t.token());
                }
                for (Generator.Token t : batch.step()) got.get(requestOf[t.slot()]).add(t.token());
            }
        }
        if (calls != null) assertEquals(captures + 1, calls.get("captureGraph"), "one capture per decode batch");
        for (int i = 0; i < out.length; i++) out[i] = got.get(i).stream().mapToInt(Integer::intValue).toArray();
        return out;
    }

    @Test
    void theSamplerReadsItsStepFromTheDeviceAsItWouldTakeIt() {
        int b = 3, v = 300;
        float[] logits = EmuTesting.gaussian(9, b * v);
        try (CudaKernels gpu = new CudaKernels(CudaParityTest.openDriver("forward"), backend())) {
            for (Kernels k : List.of(gpu, new CpuKernels())) {
                Buf lg = k.allocF32((long) b * v), tok = k.allocI32(b), step = k.allocI32(1), none = k.allocI32(1);
                k.upload(lg, logits);
                for (int s : new int[]{0, 1, 41}) {
                    int[] scalar = new int[b], device = new int[b];
                    k.sample(tok, lg, b, v, 1.1f, 50, 0.9f, 5, s, none, 0);
                    k.download(tok, scalar);
                    k.upload(step, new int[]{s});
                    k.sample(tok, lg, b, v, 1.1f, 50, 0.9f, 5, step, none, 0);
                    k.download(tok, device);
                    assertArrayEquals(scalar, device, k.name() + " step " + s);
                }
                for (Buf x : List.of(lg, tok, step, none)) k.free(x);
            }
        }
    }

    @Test
    void aCaptureRefusesHostOpsAndTheCpuBackendHasNoGraphs() {
        try (CudaKernels gpu = new CudaKernels(CudaParityTest.openDriver("forward"), backend())) {
            assertTrue(gpu.supportsGraphs());
            Buf x = gpu.allocF32(8);
            IllegalStateException alloc = assertThrows(IllegalStateException.class, () -> gpu.captureGraph(() -> gpu.allocF32(4)));
            assertTrue(alloc.getMessage().startsWith("allocF32 during a graph capture"), alloc.getMessage());
            IllegalStateException upload = assertThrows(IllegalStateException.class,
                    () -> gpu.captureGraph(() -> gpu.upload(x, new float[8])));
            assertTrue(upload.getMessage().startsWith("copyHostToDevice during the graph capture"), upload.getMessage());
            IllegalStateException download = assertThrows(IllegalStateException.class,
                    () -> gpu.captureGraph(() -> gpu.download(x, new float[8])));
            assertTrue(download.getMessage().startsWith("synchronize during the graph capture"), download.getMessage());

            // after the failures, a capture works and its replay fills x
            gpu.fill(x, 0f);
            try (Kernels.Graph g = gpu.captureGraph(() -> gpu.fill(x, 3f))) {
                float[] back = new float[8];
                gpu.download(x, back);
                assertEquals(0f, back[0], "captured, not run");
                g.launch();
                gpu.download(x, back);
                for (float f : back) assertEquals(3f, f);
            }
            gpu.free(x);
        }
        CpuKernels cpu = new CpuKernels();
        assertFalse(cpu.supportsGraphs());
        assertThrows(UnsupportedOperationException.class, () -> cpu.captureGraph(() -> {}));
    }
}
