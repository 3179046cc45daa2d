package io.hintgrpo.trainer.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** One hintgrpo command line run in this JVM: its exit code and what it printed. */
public record CliRun(int code, String out, String err) {
    public static CliRun of(String... args) {
        StringWriter o = new StringWriter(), e = new StringWriter();
        int code = Main.run(new PrintWriter(o, true), new PrintWriter(e, true), args);
        return new CliRun(code, o.toString(), e.toString());
    }
}
