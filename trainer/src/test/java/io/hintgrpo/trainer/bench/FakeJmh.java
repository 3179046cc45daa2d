package io.hintgrpo.trainer.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Stands in for benchmarks.jar in {@link BenchRunTest} (packed into a jar there): answers -lp with
 * two benchmarks whatever the filter, except "none"; a run does what the filter names: "ok" writes
 * both results, "missing" one of them, "garbage" a broken file, "fail" exits 3. Filter "torch"
 * lists io.hintgrpo.benchmarks.FwdBench.ours and .ort at configs embedded and 25m (ours has a torch
 * twin in the test's fake script): a run writes all four entries, with -e only the ort ones, and a
 * run of an exact pattern the ours entry of its -p config, with two iterations (0.8 and 1.2 times
 * its score), the n-th such run of a config in a folder scoring n times the first, and the ort
 * entry of that config where the pattern names it.
 */
public final class FakeJmh {
    static final String TWIN = "io.hintgrpo.benchmarks.FwdBench";

    public static void main(String[] args) throws Exception {
        List<String> a = List.of(args);
        String filter = a.get(a.indexOf("-lp") >= 0 ? a.indexOf("-lp") + 1 : 0);
        if (a.contains("-lp")) {
            System.out.println("Benchmarks: ");
            if (filter.equals("torch"))
                System.out.println(TWIN + ".ort\n  param \"config\" = {embedded, 25m}\n" + TWIN + ".ours\n  param \"config\" = {embedded, 25m}");
            else if (!filter.equals("none"))
                System.out.println("x.FwdBench.ours\n  param \"config\" = {embedded}\nx.FwdBench.ort\n  param \"config\" = {embedded}");
            return;
        }
        System.out.println("# fake JMH: " + String.join(" ", args));
        System.out.println("# jmh.ignoreLock=" + System.getProperty("jmh.ignoreLock"));
        Path json = Path.of(a.get(a.indexOf("-rff") + 1));
        if (filter.equals("torch")) {       // with -e, everything but the twin
            String ort = entry(TWIN + ".ort", "embedded", 1000, 20) + "," + entry(TWIN + ".ort", "25m", 100, 2);
            String ours = entry(TWIN + ".ours", "embedded", 250, 5) + "," + entry(TWIN + ".ours", "25m", 25, 5);
            Files.writeString(json, "[" + ort + (a.contains("-e") ? "" : "," + ours) + "]");
            return;
        }
        if (filter.startsWith("^(")) {      // one block: the twin at one config
            List<String> configs = new ArrayList<>();
            for (int i = 0; i < a.size() - 1; i++) if (a.get(i).equals("-p") && a.get(i + 1).startsWith("config=")) configs.add(a.get(i + 1).substring(7));
            String c = configs.get(configs.size() - 1);
            // the n-th fork of a config scores n times its base (a counter file beside the result: pairs run several)
            Path forks = json.resolveSibling(".fake-forks-" + c);
            int n = Files.exists(forks) ? Integer.parseInt(Files.readString(forks).strip()) + 1 : 1;
            Files.writeString(forks, String.valueOf(n));
            double score = n * (c.equals("25m") ? 25 : 250);
            String ours = withRaw(entry(TWIN + ".ours", c, score, 5), score);
            double ref = c.equals("25m") ? 100 : 1000;   // the in-run reference runs in the block too
            Files.writeString(json, "[" + ours + (filter.contains(".ort") ? "," + withRaw(entry(TWIN + ".ort", c, ref, ref / 50), ref) : "") + "]");
            return;
        }
        String ours = entry("x.FwdBench.ours", "embedded", 250, 5), ort = entry("x.FwdBench.ort", "embedded", 1000, 20);
        switch (filter) {
            case "ok" -> Files.writeString(json, "[" + ours + "," + ort + "]");
            case "missing" -> Files.writeString(json, "[" + ort + "]");
            case "garbage" -> Files.writeString(json, "[{\"benchmark\": ");
            default -> System.exit(3);
        }
    }

    /** The entry with two iterations, 0.8 and 1.2 times its score. */
    private static String withRaw(String entry, double score) {
        return entry.replace("}}", ", \"rawData\": [[" + 0.8 * score + ", " + 1.2 * score + "]]}}");
    }

    private static String entry(String name, String config, double score, double error) {
        return "{\"benchmark\": \"" + name + "\", \"mode\": \"thrpt\", \"params\": {\"config\": \"" + config + "\"},"
                + " \"primaryMetric\": {\"score\": " + score + ", \"scoreError\": " + error + ", \"scoreUnit\": \"ops/s\"}}";
    }
}
