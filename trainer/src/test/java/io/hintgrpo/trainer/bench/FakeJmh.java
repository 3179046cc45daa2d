package io.hintgrpo.trainer.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Stands in for benchmarks.jar in {@link BenchRunTest} (packed into a jar there): answers -l with
 * two benchmarks whatever the filter, except "none"; a run does what the filter names: "ok" writes
 * both results, "missing" one of them, "garbage" a broken file, "fail" exits 3.
 */
public final class FakeJmh {
    public static void main(String[] args) throws Exception {
        List<String> a = List.of(args);
        String filter = a.get(a.indexOf("-l") >= 0 ? a.indexOf("-l") + 1 : 0);
        if (a.contains("-l")) {
            System.out.println("Benchmarks: ");
            if (!filter.equals("none")) System.out.println("x.FwdBench.ours\nx.FwdBench.ort");
            return;
        }
        System.out.println("# fake JMH: " + String.join(" ", args));
        Path json = Path.of(a.get(a.indexOf("-rff") + 1));
        String ours = entry("x.FwdBench.ours", 250, 5), ort = entry("x.FwdBench.ort", 1000, 20);
        switch (filter) {
            case "ok" -> Files.writeString(json, "[" + ours + "," + ort + "]");
            case "missing" -> Files.writeString(json, "[" + ort + "]");
            case "garbage" -> Files.writeString(json, "[{\"benchmark\": ");
            default -> System.exit(3);
        }
    }

    private static String entry(String name, double score, double error) {
        return "{\"benchmark\": \"" + name + "\", \"mode\": \"thrpt\", \"params\": {\"config\": \"embedded\"},"
                + " \"primaryMetric\": {\"score\": " + score + ", \"scoreError\": " + error + ", \"scoreUnit\": \"ops/s\"}}";
    }
}
