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
 * run of an exact pattern the ours entry of its -p config.
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
            Files.writeString(json, "[" + entry(TWIN + ".ours", c, c.equals("25m") ? 25 : 250, 5) + "]");
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

    private static String entry(String name, String config, double score, double error) {
        return "{\"benchmark\": \"" + name + "\", \"mode\": \"thrpt\", \"params\": {\"config\": \"" + config + "\"},"
                + " \"primaryMetric\": {\"score\": " + score + ", \"scoreError\": " + error + ", \"scoreUnit\": \"ops/s\"}}";
    }
}
