package io.hintgrpo.trainer.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The command tree Main builds for a command line: stubs for the commands it does not name, the same help as the whole tree. */
class MainTest {
    /** The top-level help from stubs is the whole tree's, and lists every subcommand. */
    @Test
    void helpListsEverySubcommandAsTheWholeTreeDoes() {
        CliRun r = CliRun.of("--help");
        assertEquals(0, r.code(), r.err());
        assertEquals(Main.allCommands().getUsageMessage(), r.out());
        for (Class<?> c : Main.COMMANDS) {
            String name = c.getAnnotation(CommandLine.Command.class).name();
            assertTrue(r.out().contains("\n  " + name + " "), name + " in --help:\n" + r.out());
        }
        assertEquals(r.out(), CliRun.of("help").out());
    }

    /** Every (sub)command's --help, and `help NAME` for the top-level ones, is what the whole tree prints. */
    @Test
    void everyCommandsHelpStillWorks() {
        List<List<String>> paths = new ArrayList<>();
        collect(Main.allCommands(), new ArrayList<>(), paths);
        assertTrue(paths.size() >= Main.COMMANDS.length, paths.toString());
        for (List<String> path : paths) {
            CommandLine whole = Main.allCommands();
            for (String p : path) whole = whole.getSubcommands().get(p);
            List<String> args = new ArrayList<>(path);
            args.add("--help");
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, r.code(), path + ": " + r.err());
            assertEquals(whole.getUsageMessage(), r.out(), String.join(" ", path) + " --help");
            if (path.size() == 1 && !path.get(0).equals("help"))
                assertEquals(r.out(), CliRun.of("help", path.get(0)).out(), "help " + path.get(0));
        }
    }

    /** A command line builds the commands it names; the others are stubs (no options, no fields reflected on, no settings loaded). */
    @Test
    void onlyTheNamedCommandsAreBuilt() {
        Map<String, CommandLine> subs = Main.commands("data", "check", "x.jsonl").getSubcommands();
        assertFalse(subs.get("data").getCommandSpec().subcommands().isEmpty(), "data is built");
        for (String stub : List.of("sft", "grpo", "demo", "eval")) assertTrue(subs.get(stub).getCommandSpec().options().isEmpty(), stub);
        // --config checks its keys against every command: all are built
        assertFalse(Main.commands("data", "check", "--config", "c.json", "x.jsonl").getSubcommands().get("sft").getCommandSpec().options().isEmpty());
    }

    private static void collect(CommandLine cmd, List<String> path, List<List<String>> out) {
        for (Map.Entry<String, CommandLine> e : cmd.getSubcommands().entrySet()) {
            List<String> p = new ArrayList<>(path);
            p.add(e.getKey());
            out.add(p);
            collect(e.getValue(), p, out);
        }
    }
}
