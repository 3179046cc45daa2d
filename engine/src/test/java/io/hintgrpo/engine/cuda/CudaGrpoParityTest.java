package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.cpu.CpuGrpoTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The GRPO kernels (kernels/grpo.cu) against their cpu twins, in the style of
 * {@link CudaParityTest} (same driver choice, thread orders and report): random inputs, odd
 * sizes, device outputs poisoned with NaN, every device buffer a slice between guard elements
 * that must survive. Float outputs ≤ 1e-5 relative; the clip flags exact (the inputs keep every
 * ratio ≥ 0.01 away from the clip edges, so no token sits on a tie); all-equal groups give
 * exactly zero std and advantages on the device too.
 */
class CudaGrpoParityTest extends GuardedTwins {

    private static final Suite SUITE = new Suite("CudaGrpoParityTest");

    static List<String> orders() {
        return CudaParityTest.orders();
    }

    @AfterAll
    static void closeAndReport() {
        SUITE.closeAndReport();
    }

    CudaGrpoParityTest() {
        super(SUITE);
    }

    /** Like {@link GuardedTwins#check}, with this suite's shorter messages; returns {ref, got} for exact checks. */
    private float[][] check(String op, Buf[] out, double tolerance) {
        float[] ref = read(out[0]), got = read(out[1]);
        for (float x : got) assertFalse(Float.isNaN(x), op + ": an output was left unwritten (NaN)");
        double err = CudaParityTest.relativeError(got, ref);
        record(op, err);
        assertTrue(err <= tolerance, op + ": relative error " + err + " > " + tolerance);
        return new float[][]{ref, got};
    }

    @ParameterizedTest
    @MethodSource("orders")
    void advantages(String order) {
        begin(order, 21);
        for (int[] s : new int[][]{{1, 1}, {3, 1}, {5, 7}, {4, 8}, {3, 33}, {2, 70}}) {
            int groups = s[0], g = s[1];
            float[] r = new float[groups * g];
            for (int i = 0; i < r.length; i++) r[i] = (float) (rng.nextBoolean() ? rng.nextInt(3) * 0.5 : rng.nextDouble() - 0.3);
            if (groups > 2) Arrays.fill(r, 2 * g, 3 * g, 0.3f); // an all-equal group
            Buf[] rewards = twin(r);
            for (boolean drGrpo : new boolean[]{false, true}) {
                Buf[] adv = output(r.length), stats = output(2 * groups);
                cpu.grpoAdvantages(adv[0], stats[0], rewards[0], groups, g, drGrpo, 1e-4f);
                gpu.grpoAdvantages(adv[1], stats[1], rewards[1], groups, g, drGrpo, 1e-4f);
                float[] a = check("grpo_advantages.advantages", adv, 1e-5)[1];
                float[] st = check("grpo_advantages.stats", stats, 1e-5)[1];
                if (groups > 2) {
                    assertEquals(0f, st[2 * 2 + 1], "all-equal group: std exactly 0");
                    for (int i = 2 * g; i < 3 * g; i++) assertEquals(0f, a[i], "all-equal group: advantage exactly 0");
                }
                if (g == 1) for (float x : a) assertEquals(0f, x, "G = 1: advantage exactly 0");
            }
        }
        end();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void policyLoss(String order) {
        begin(order, 22);
        // {m, epsLow, epsHigh, beta, with reference}
        Object[][] cases = {{1, 0.2f, 0.2f, 0.04f, true}, {37, 0.2f, 0.28f, 0f, false}, {1001, 0.2f, 0.28f, 0.04f, true},
                {300, 0.1f, 0.3f, 0f, true}, {4099, 0.2f, 0.2f, 0.5f, true}};
        for (Object[] c : cases) {
            int m = (int) c[0];
            float epsLow = (float) c[1], epsHigh = (float) c[2], beta = (float) c[3];
            boolean withRef = (boolean) c[4];
            float[][] in = CpuGrpoTest.policyInputs(rng, m, epsLow, epsHigh);
            Buf[] logp = twin(in[0]), old = twin(in[1]), ref = withRef ? twin(in[2]) : new Buf[2], adv = twin(in[3]), scale = twin(in[4]);
            Buf[] loss = output(m), weight = output(m), clipped = output(m), kl = output(m);
            cpu.grpoPolicyLoss(loss[0], weight[0], clipped[0], kl[0], logp[0], old[0], ref[0], adv[0], scale[0], m, epsLow, epsHigh, beta);
            gpu.grpoPolicyLoss(loss[1], weight[1], clipped[1], kl[1], logp[1], old[1], ref[1], adv[1], scale[1], m, epsLow, epsHigh, beta);
            check("grpo_policy_loss.loss", loss, 1e-5);
            check("grpo_policy_loss.weight", weight, 1e-5);
            check("grpo_policy_loss.kl", kl, 1e-5);
            float[][] flags = check("grpo_policy_loss.clipped", clipped, 0);
            assertArrayEquals(flags[0], flags[1], "clip flags m=" + m);
        }
        end();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void argumentChecks(String order) {
        begin(order);
        Buf[] small = twin(new float[]{1, 2, 3, 4, 5});
        Buf d = small[1];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.grpoAdvantages(d, d, d, 2, 3, false, 1e-4f));
        assertTrue(e.getMessage().contains("grpoAdvantages: advantages holds 5 elements, needs 6"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.grpoAdvantages(d, d, d, 1, 0, false, 1e-4f));
        assertTrue(e.getMessage().contains("groupSize"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> gpu.grpoPolicyLoss(d, d, d, d, d, d, null, d, d, 5, 0.2f, 0.2f, 0.04f));
        assertTrue(e.getMessage().contains("ref is null"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> gpu.grpoPolicyLoss(d, d, d, d, d, d, null, d, cpu.allocF32(5), 5, 0.2f, 0.2f, 0f));
        assertTrue(e.getMessage().contains("not a device buffer"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> gpu.grpoPolicyLoss(d, d, d, d, d, d, d, d, d, 6, 0.2f, 0.2f, 0f));
        assertTrue(e.getMessage().contains("grpoPolicyLoss: ref holds 5 elements, needs 6"), e.getMessage());
        end();
    }
}
