package io.hintgrpo.trainer.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.eval.Metrics.Scores;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Metrics overall, per domain and per subset (hard, easy: where the corpus marks them; empty
 * otherwise), as JSON (undefined values such as the correlation of constant predictions are written
 * as null) and as a markdown table (rates in percent, "n/a" where undefined).
 */
public record EvalReport(Scores overall, Map<String, Scores> byDomain, Map<String, Scores> bySubset) {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] FIELDS = {"n", "mae", "corr", "acc2_has0", "f1_has0", "n_non0", "acc2_non0", "f1_non0",
            "acc5", "acc7", "format_valid_rate", "disc_accuracy", "dc_consistency", "unparseable"};

    public EvalReport {
        byDomain = java.util.Collections.unmodifiableMap(new TreeMap<>(byDomain));
        bySubset = java.util.Collections.unmodifiableMap(new TreeMap<>(bySubset));
    }

    /** Without subsets. */
    public EvalReport(Scores overall, Map<String, Scores> byDomain) {
        this(overall, byDomain, Map.of());
    }

    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.set("overall", scoresJson(overall));
        ObjectNode domains = root.putObject("domains");
        new TreeMap<>(byDomain).forEach((d, s) -> domains.set(d, scoresJson(s)));
        if (!bySubset.isEmpty()) {
            ObjectNode subsets = root.putObject("subsets");
            bySubset.forEach((d, s) -> subsets.set(d, scoresJson(s)));
        }
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static EvalReport fromJson(String json, String where) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new BadInputException(where, "not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.path("overall").isObject()) throw new BadInputException(where, "no \"overall\" metrics");
        Map<String, Scores> domains = new TreeMap<>();
        for (Map.Entry<String, JsonNode> e : root.path("domains").properties()) domains.put(e.getKey(), scoresFrom(e.getValue(), where));
        Map<String, Scores> subsets = new TreeMap<>();
        for (Map.Entry<String, JsonNode> e : root.path("subsets").properties()) subsets.put(e.getKey(), scoresFrom(e.getValue(), where));
        return new EvalReport(scoresFrom(root.get("overall"), where), domains, subsets);
    }

    /** One row per domain, one per subset ("hard subset"), then the overall row. */
    public String toMarkdown() {
        StringBuilder sb = new StringBuilder();
        sb.append("| domain | n | MAE | Corr | Acc-2 (has-0) | F1 (has-0) | Acc-2 (non-0) | F1 (non-0) | Acc-5 | Acc-7 "
                + "| format valid | disc acc | DC consistency | unparseable |\n");
        sb.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        new TreeMap<>(byDomain).forEach((d, s) -> row(sb, d, s));
        bySubset.forEach((d, s) -> row(sb, d + " subset", s));
        row(sb, "**all**", overall);
        return sb.toString();
    }

    private static void row(StringBuilder sb, String name, Scores s) {
        sb.append("| ").append(name).append(" | ").append(s.n())
                .append(" | ").append(num(s.mae())).append(" | ").append(num(s.corr()))
                .append(" | ").append(pct(s.acc2Has0())).append(" | ").append(pct(s.f1Has0()))
                .append(" | ").append(pct(s.acc2Non0())).append(" | ").append(pct(s.f1Non0()))
                .append(" | ").append(pct(s.acc5())).append(" | ").append(pct(s.acc7()))
                .append(" | ").append(pct(s.formatValidRate())).append(" | ").append(pct(s.discAccuracy()))
                .append(" | ").append(pct(s.dcConsistency())).append(" | ").append(s.unparseable()).append(" |\n");
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%.3f", v);
    }

    private static String pct(double v) {
        return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%.1f", 100 * v);
    }

    private static ObjectNode scoresJson(Scores s) {
        ObjectNode o = JSON.createObjectNode();
        double[] values = values(s);
        for (int i = 0; i < FIELDS.length; i++) {
            boolean count = FIELDS[i].equals("n") || FIELDS[i].equals("n_non0") || FIELDS[i].equals("unparseable");
            if (count) o.put(FIELDS[i], (int) values[i]);
            else if (Double.isNaN(values[i])) o.putNull(FIELDS[i]);
            else o.put(FIELDS[i], values[i]);
        }
        return o;
    }

    private static double[] values(Scores s) {
        return new double[]{s.n(), s.mae(), s.corr(), s.acc2Has0(), s.f1Has0(), s.nNon0(), s.acc2Non0(), s.f1Non0(),
                s.acc5(), s.acc7(), s.formatValidRate(), s.discAccuracy(), s.dcConsistency(), s.unparseable()};
    }

    private static Scores scoresFrom(JsonNode o, String where) {
        double[] v = new double[FIELDS.length];
        for (int i = 0; i < FIELDS.length; i++) {
            JsonNode n = o.get(FIELDS[i]);
            if (n == null) throw new BadInputException(where, "metrics lack \"" + FIELDS[i] + "\"");
            v[i] = n.isNull() ? Double.NaN : n.asDouble();
        }
        return new Scores((int) v[0], v[1], v[2], v[3], v[4], (int) v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], (int) v[13]);
    }
}
