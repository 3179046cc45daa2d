package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;

import io.hintgrpo.trainer.loop.DivergedException;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.Collections;
import java.util.List;

/** The {@code hintgrpo} command line: one subcommand per job. */
@Command(name = "hintgrpo", mixinStandardHelpOptions = true, version = "hintgrpo 0.1.0",
        description = "Trains multimodal sentiment models that reason before they score (SFT, Hint-GRPO).")
public final class Main {
    /** The subcommands, in the order --help lists them. */
    static final Class<?>[] COMMANDS = {DemoCommand.class, DataCommand.class, InitCommand.class, SftCommand.class, GrpoCommand.class,
            ExperimentCommand.class, EvalCommand.class, GenerateCommand.class, ServeCommand.class, ScoreCommand.class, MergeCommand.class, ExportCommand.class, PlanCommand.class, BenchCommand.class,
            CommandLine.HelpCommand.class};

    /** Exit code for bad input (file, config, flag) and failed writes: one line on stderr, nothing half-written. */
    public static final int EXIT_BAD_INPUT = 2;
    /** Exit code when training stopped because too many steps in a row were not finite (the last good checkpoint stays). */
    public static final int EXIT_DIVERGED = 3;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String... args) {
        return run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args);
    }

    /** Runs one command line with the given streams; returns the exit code. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = commands(args);
        cli.setOverwrittenOptionsAllowed(true); // a flag given twice: the last wins, as a config file's value loses to a flag
        cli.setOut(out);
        cli.setErr(err);
        try {
            cli.setDefaultValueProvider(ConfigFile.defaults(args, cli));
        } catch (BadInputException e) {
            err.println("hintgrpo: error: " + e.getMessage());
            return EXIT_BAD_INPUT;
        }
        cli.setParameterExceptionHandler((e, given) -> {
            String name = qualifiedName(e.getCommandLine());
            e.getCommandLine().getErr().println("hintgrpo: error: " + parameterProblem(e) + " (see 'hintgrpo "
                    + (name.isEmpty() ? "" : name + " ") + "--help')");
            return EXIT_BAD_INPUT;
        });
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            Throwable io = ioCause(e);
            if (e instanceof BadInputException) {
                cmd.getErr().println("hintgrpo: error: " + e.getMessage());
                return EXIT_BAD_INPUT;
            }
            if (e instanceof DivergedException) {
                cmd.getErr().println("hintgrpo: error: training diverged: " + e.getMessage());
                return EXIT_DIVERGED;
            }
            if (io instanceof IOException x) { // a file operation no one wrapped: still one line with the path and the OS's reason
                String line = x instanceof java.nio.file.FileSystemException f && f.getFile() != null
                        ? f.getFile() + ": " + BadInputException.osReason(x)
                        : e instanceof java.io.UncheckedIOException && e.getMessage() != null ? e.getMessage() : BadInputException.osReason(x);
                cmd.getErr().println("hintgrpo: error: " + line.lines().findFirst().orElse(""));
                return EXIT_BAD_INPUT;
            }
            throw e;
        });
        return cli.execute(args);
    }

    /**
     * The command tree for args. Picocli reflects on every field of a command it builds and runs its
     * model transformer (a settings record's flags), which is most of a short command's start time; so
     * only the commands args name are built, the others are stubs with the name and description the
     * top-level help lists. A subcommand runs only when its name is an argument; --config checks its
     * keys against every command, and an @file may name any: both build them all.
     */
    static CommandLine commands(String... args) {
        for (String a : args) if (a.equals("--config") || a.startsWith("--config=") || a.startsWith("@")) return allCommands();
        return commands(List.of(args));
    }

    /** The whole command tree, every subcommand built. */
    static CommandLine allCommands() {
        return commands((List<String>) null);
    }

    /** The tree with the subcommands whose name (or an alias) is among names built, the rest stubs; null builds all. */
    private static CommandLine commands(List<String> names) {
        CommandLine cli = new CommandLine(new Main());
        for (Class<?> c : COMMANDS) {
            Command a = c.getAnnotation(Command.class);
            if (names == null || names.contains(a.name()) || !Collections.disjoint(names, List.of(a.aliases()))) {
                cli.addSubcommand(new CommandLine(c)); // this constructor, not addSubcommand(c), runs the model transformer
            } else {
                CommandSpec stub = CommandSpec.create().name(a.name()).aliases(a.aliases());
                stub.usageMessage().header(a.header()).description(a.description()).hidden(a.hidden());
                cli.addSubcommand(stub);
            }
        }
        return cli;
    }

    private static Throwable ioCause(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) if (c instanceof IOException) return c;
        return null;
    }

    private static String qualifiedName(CommandLine cmd) {
        String q = cmd.getCommandSpec().qualifiedName(" ");
        return q.startsWith("hintgrpo") ? q.substring("hintgrpo".length()).strip() : q;
    }

    /** picocli's message in our words, one line: {@code --steps: "abc" is not a whole number}. */
    private static String parameterProblem(CommandLine.ParameterException e) {
        String m = e.getMessage().lines().findFirst().orElse("").strip();
        java.util.regex.Matcher v = java.util.regex.Pattern.compile("Invalid value for option '([^']+)'(?: \\([^)]*\\))?: '(.*)' is not an? (\\w+)").matcher(m);
        if (v.find()) {
            String kind = switch (v.group(3)) {
                case "int", "long", "short", "byte" -> "a whole number";
                case "float", "double" -> "a number";
                default -> "a " + v.group(3);
            };
            return v.group(1) + ": \"" + v.group(2) + "\" is not " + kind;
        }
        return m;
    }
}
