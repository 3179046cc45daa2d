package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;

/** The {@code hintgrpo} command line: one subcommand per job. */
@Command(name = "hintgrpo", mixinStandardHelpOptions = true, version = "hintgrpo 0.1.0",
        description = "Trains multimodal sentiment models that reason before they score (SFT, Hint-GRPO).",
        subcommands = {DemoCommand.class, DataCommand.class, InitCommand.class, SftCommand.class, GrpoCommand.class, ExperimentCommand.class, EvalCommand.class,
                GenerateCommand.class, ScoreCommand.class, BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main {
    /** Exit code for bad input (file, config, flag): one line on stderr, nothing half-written. */
    public static final int EXIT_BAD_INPUT = 2;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String... args) {
        return run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args);
    }

    /** Runs one command line with the given streams; returns the exit code. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setOut(out);
        cli.setErr(err);
        try {
            cli.setDefaultValueProvider(ConfigFile.defaults(args, cli));
        } catch (BadInputException e) {
            err.println("hintgrpo: error: " + e.getMessage());
            return EXIT_BAD_INPUT;
        }
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof BadInputException) {
                cmd.getErr().println("hintgrpo: error: " + e.getMessage());
                return EXIT_BAD_INPUT;
            }
            throw e;
        });
        return cli.execute(args);
    }
}
