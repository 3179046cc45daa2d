package io.hintgrpo.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.trainer.rl.GrpoObjective;
import io.hintgrpo.trainer.rl.GrpoObjective.Aggregation;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The GRPO objective against PyTorch autograd (scripts/grpo_oracle.py, float64): from the same
 * rewards, packed rows (prompt, hint, completion, padding) and log-probs, the cpu backend's
 * {@code grpoAdvantages}, {@link GrpoObjective}'s per-token advantage and scale arrays and
 * {@code grpoPolicyLoss} must give the oracle's advantages and group stats, the minibatch loss
 * (Σ loss[t], ≤ 1e-5 relative) and its gradient w.r.t. every logp (weight = −grad, ≤ 1e-5
 * relative), for every aggregation and both advantage kinds, with and without the KL term.
 * Ratios stay ≥ 0.01 away from the clip edges (autograd and the kernel agree on ties, but a
 * float rounding could move a token across an edge).
 *
 * <p>Torch missing: skipped, except under CI=true, where that is a failure (as {@link OracleTest}).
 */
class GrpoOracleTest {
    static final double TOL = 1e-5;
    static final float ADV_EPS = 1e-4f;

    static Path script;
    static String unavailable;

    @TempDir
    Path tmp;

    @BeforeAll
    static void findOracle() {
        script = OracleTest.findScript().resolveSibling("grpo_oracle.py");
        assertTrue(Files.isRegularFile(script), script + " is missing");
        String problem = OracleTest.torchProblem();
        if (problem != null) unavailable = OracleTest.INSTALL_HINT + " (" + problem + ")";
    }

    @BeforeEach
    void requireTorch() {
        if (unavailable == null) return;
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail(unavailable);
        Assumptions.assumeTrue(false, unavailable);
    }

    @ParameterizedTest
    @CsvSource({"3, 4, 0.2, 0.2, 0.04, 11", "4, 8, 0.2, 0.28, 0.0, 12", "2, 5, 0.1, 0.3, 0.3, 13", "5, 1, 0.2, 0.28, 0.04, 14"})
    void matchesAutograd(int groups, int g, float epsLow, float epsHigh, float beta, long seed) throws Exception {
        SplittableRandom rng = new SplittableRandom(seed);
        int b = groups * g, maxCompletion = 9;
        boolean withRef = beta != 0f;

        // rewards in [0, 1] (format/polarity/score-like), group 1 all equal; the last group is hinted
        float[] rewards = new float[b];
        for (int i = 0; i < b; i++) rewards[i] = (float) (rng.nextBoolean() ? rng.nextInt(3) * 0.5 : rng.nextDouble());
        if (groups > 1) for (int i = g; i < 2 * g; i++) rewards[i] = 0.5f;
        int[] prompt = new int[b], hint = new int[b], completion = new int[b];
        int t = 0;
        for (int i = 0; i < b; i++) {
            prompt[i] = 1 + rng.nextInt(5);
            hint[i] = i / g == groups - 1 ? 3 : 0;
            completion[i] = 1 + rng.nextInt(maxCompletion);
            t = Math.max(t, prompt[i] + hint[i] + completion[i]);
        }
        t += 2; // every row has padding
        int m = b * t;
        float[] logp = new float[m], old = new float[m], ref = new float[m];
        for (int p = 0; p < m; p++) {
            logp[p] = (float) (-3 * Math.abs(rng.nextGaussian()) - 0.01);
            double logRatio;
            do logRatio = p % 4 == 0 ? 0 : 0.3 * rng.nextGaussian();
            while (Math.abs(Math.exp(logRatio) - (1 - epsLow)) < 0.01 || Math.abs(Math.exp(logRatio) - (1 + epsHigh)) < 0.01);
            old[p] = (float) (logp[p] - logRatio);
            ref[p] = (float) (logp[p] + 0.4 * rng.nextGaussian());
        }

        Path dir = Files.createDirectories(tmp.resolve("case"));
        ObjectNode in = OracleTest.JSON.createObjectNode();
        in.put("groups", groups).put("group_size", g).put("adv_eps", (double) ADV_EPS).put("eps_low", (double) epsLow)
                .put("eps_high", (double) epsHigh).put("beta", (double) beta).put("max_completion_length", maxCompletion).put("t", t);
        floats(in.putArray("rewards"), rewards, 0, b);
        ints(in.putArray("prompt_len"), prompt);
        ints(in.putArray("hint_len"), hint);
        ints(in.putArray("completion_len"), completion);
        rows(in.putArray("logp"), logp, b, t);
        rows(in.putArray("logp_old"), old, b, t);
        if (withRef) rows(in.putArray("ref"), ref, b, t);
        else in.putNull("ref");
        Files.writeString(dir.resolve("inputs.json"), OracleTest.JSON.writeValueAsString(in));
        OracleTest.ProcessResult r = OracleTest.exec(List.of(OracleTest.PYTHON, script.toString(), dir.toString()), 300);
        if (r.exitCode() != 0) fail("grpo_oracle.py failed (exit " + r.exitCode() + "):\n" + r.output());
        JsonNode out = OracleTest.JSON.readTree(dir.resolve("outputs.json").toFile());

        Kernels k = new CpuKernels();
        StringBuilder report = new StringBuilder(String.format(Locale.ROOT,
                "grpo oracle: %d groups of %d, t %d, eps %.2f/%.2f, beta %.2f%n", groups, g, t, epsLow, epsHigh, beta));
        List<String> failures = new ArrayList<>();
        Buf rewardsBuf = upload(k, rewards), logpBuf = upload(k, logp), oldBuf = upload(k, old);
        Buf refBuf = withRef ? upload(k, ref) : null;
        for (String kind : new String[]{"std", "dr"}) {
            Buf adv = k.allocF32(b), stats = k.allocF32(2L * groups);
            k.fill(adv, Float.NaN);
            k.fill(stats, Float.NaN);
            k.grpoAdvantages(adv, stats, rewardsBuf, groups, g, kind.equals("dr"), ADV_EPS);
            float[] a = download(k, adv), st = download(k, stats);
            compare(report, failures, "advantages." + kind, a, flat(out.get("advantages").get(kind)));
            compare(report, failures, "stats." + kind, st, flat(out.get("stats")));
            if (groups > 1) assertEquals(0f, st[3], "the all-equal group has std 0");

            List<GrpoObjective.Row> rowList = new ArrayList<>();
            for (int i = 0; i < b; i++) rowList.add(new GrpoObjective.Row(prompt[i], hint[i], completion[i], a[i]));
            for (Aggregation agg : Aggregation.values()) {
                String name = switch (agg) {
                    case TOKEN_MEAN -> "token-mean";
                    case SEQUENCE_MEAN -> "sequence-mean";
                    case DR_GRPO -> "dr-grpo";
                } + "." + kind;
                GrpoObjective.TokenInputs ti = GrpoObjective.tokenInputs(rowList, t, agg, maxCompletion);
                Buf loss = k.allocF32(m), weight = k.allocF32(m), clipped = k.allocF32(m), kl = k.allocF32(m);
                k.grpoPolicyLoss(loss, weight, clipped, kl, logpBuf, oldBuf, refBuf, upload(k, ti.advantage()),
                        upload(k, ti.scale()), m, epsLow, epsHigh, beta);
                double total = 0;
                for (float x : download(k, loss)) total += x;
                double want = out.get("loss").get(name).asDouble();
                double lossErr = Math.abs(total - want) / Math.abs(want);
                report.append(String.format(Locale.ROOT, "  %-28s %.3e  (java %.9g, torch %.9g)%n", "loss " + name, lossErr, total, want));
                if (!(lossErr <= TOL)) failures.add(String.format(Locale.ROOT, "loss %s: rel err %.3e", name, lossErr));
                float[] negGrad = flat(out.get("grad").get(name));
                for (int p = 0; p < m; p++) negGrad[p] = -negGrad[p];
                compare(report, failures, "weight = -grad " + name, download(k, weight), negGrad);
            }
        }
        System.out.print(report);
        if (!failures.isEmpty()) fail("GRPO objective disagrees with PyTorch autograd:\n  " + String.join("\n  ", failures) + "\n" + report);
    }

    static void compare(StringBuilder report, List<String> failures, String what, float[] java, float[] torch) {
        if (java.length != torch.length) {
            failures.add(what + ": java has " + java.length + " values, torch " + torch.length);
            return;
        }
        double err = OracleTest.relErr(java, torch);
        report.append(String.format(Locale.ROOT, "  %-28s %.3e%n", what, err));
        if (!(err <= TOL)) failures.add(String.format(Locale.ROOT, "%s: rel err %.3e > %.0e", what, err, TOL));
    }

    static Buf upload(Kernels k, float[] v) {
        Buf buf = k.allocF32(v.length);
        k.upload(buf, v);
        return buf;
    }

    static float[] download(Kernels k, Buf buf) {
        float[] v = new float[Math.toIntExact(buf.length)];
        k.download(buf, v);
        return v;
    }

    /** A nested JSON array of numbers, flattened in order. */
    static float[] flat(JsonNode node) {
        List<Float> values = new ArrayList<>();
        collect(node, values);
        float[] v = new float[values.size()];
        for (int i = 0; i < v.length; i++) v[i] = values.get(i);
        return v;
    }

    private static void collect(JsonNode node, List<Float> out) {
        if (node.isArray()) node.forEach(n -> collect(n, out));
        else out.add((float) node.asDouble());
    }

    static void floats(ArrayNode out, float[] v, int from, int n) {
        for (int i = from; i < from + n; i++) out.add((double) v[i]);
    }

    static void ints(ArrayNode out, int[] v) {
        for (int x : v) out.add(x);
    }

    static void rows(ArrayNode out, float[] v, int b, int t) {
        for (int i = 0; i < b; i++) floats(out.addArray(), v, i * t, t);
    }
}
