package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.serve.Server;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code hintgrpo serve}: the model behind an OpenAI-compatible chat-completions endpoint with
 * continuous batching (docs/serving.md). Prints one line with the URL once it listens; SIGTERM or
 * Ctrl-C finishes the requests in flight (up to --shutdown-grace seconds), then exits.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serves a model over HTTP: OpenAI-compatible chat completions (streamed or not) with continuous batching; "
                + "the DC parse of every answer as a response extension (docs/serving.md).")
final class ServeCommand implements Callable<Integer> {
    /** Longest context a batch row gets unless --max-context says otherwise: a 32k-position cache per slot would be gigabytes. */
    static final int DEFAULT_MAX_CONTEXT = 4096;

    @Spec CommandSpec spec;

    @CommandLine.Mixin(name = "configFile")
    ConfigFile.Mixin configFile;

    @Option(names = "--model", required = true, description = "Model directory with tokenizer.json.")
    Path model;

    @CommandLine.Mixin(name = "adapter")
    AdapterOption adapter;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on (default: ${DEFAULT-VALUE}; 0.0.0.0 for every interface).")
    String host;

    @Option(names = "--port", defaultValue = "8000", description = "Port; 0 picks a free one and prints it (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--served-model-name", description = "The name requests and responses use (default: the model directory's name).")
    String servedName;

    @Option(names = "--allow-paths", description = "Let requests name .npy feature files on this machine (off: features inline only).")
    boolean allowPaths;

    @Option(names = "--batch-size", defaultValue = "8", description = "Rows per decode batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--max-batches", defaultValue = "4", description = "Decode batches open at once, one per sampling setting in use (default: ${DEFAULT-VALUE}).")
    int maxBatches;

    @Option(names = "--max-context", defaultValue = "0", description = "Positions per row, prompt + response; 0 = the model's max_position_embeddings, at most "
            + DEFAULT_MAX_CONTEXT + " (default: ${DEFAULT-VALUE}).")
    int maxContext;

    @Option(names = "--max-tokens", defaultValue = "512", description = "Most tokens a request may ask for, and its default (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--max-body-bytes", defaultValue = "16777216", description = "Largest request body; larger ones get 413 (default: ${DEFAULT-VALUE}).")
    long maxBodyBytes;

    @Option(names = "--max-queue", defaultValue = "64", description = "Most requests waiting or running at once; more get 429 (default: ${DEFAULT-VALUE}).")
    int maxQueue;

    @Option(names = "--shutdown-grace", defaultValue = "30", description = "Seconds the requests in flight get to finish on SIGTERM (default: ${DEFAULT-VALUE}).")
    int shutdownGrace;

    @Option(names = "--seed", defaultValue = "0", description = "Initialises projectors a text-only model lacks; requests bring their own sampling seeds (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws IOException {
        if (port < 0 || port > 65535) throw new BadInputException("--port", "must be in [0, 65535], got " + port);
        if (batchSize < 1) throw new BadInputException("--batch-size", "must be ≥ 1, got " + batchSize);
        if (maxBatches < 1) throw new BadInputException("--max-batches", "must be ≥ 1, got " + maxBatches);
        if (maxContext < 0) throw new BadInputException("--max-context", "must be ≥ 0 (0 = the model's), got " + maxContext);
        if (maxTokens < 1) throw new BadInputException("--max-tokens", "must be ≥ 1, got " + maxTokens);
        if (maxBodyBytes < 1024) throw new BadInputException("--max-body-bytes", "must be ≥ 1024, got " + maxBodyBytes);
        if (maxQueue < 1) throw new BadInputException("--max-queue", "must be ≥ 1, got " + maxQueue);
        if (shutdownGrace < 0) throw new BadInputException("--shutdown-grace", "must be ≥ 0, got " + shutdownGrace);
        if (!Files.isDirectory(model)) throw new BadInputException(model.toString(), "not a model directory");
        String name = servedName != null ? servedName : model.toAbsolutePath().normalize().getFileName().toString();
        PrintWriter out = spec.commandLine().getOut();
        try (Kernels kernels = Backends.open(backend);
             Model m = ModelDir.load(kernels, model, seed, msg -> System.err.println("hintgrpo: " + msg));
             Tokenizer tok = Tokenizer.load(model)) {
            adapter.attachTo(m);
            tok.specials(); // a tokenizer without the DC tags fails here, not on the first request
            int context = m.config.maxPositionEmbeddings();
            if (maxContext > context)
                throw new BadInputException("--max-context", maxContext + " is beyond the model's context of " + context + " positions (max_position_embeddings)");
            int rowContext = maxContext > 0 ? maxContext : Math.min(context, DEFAULT_MAX_CONTEXT);
            Server.Settings settings = new Server.Settings(host, port, name, batchSize, maxBatches, rowContext, maxTokens, maxBodyBytes,
                    maxQueue, allowPaths, shutdownGrace);
            Server server = Server.start(m, tok, settings, msg -> System.err.println("hintgrpo: serve: " + msg));
            // SIGTERM and Ctrl-C run the hook: no new requests, those in flight finish, then the JVM exits
            Thread hook = new Thread(server::stop, "hintgrpo-serve-stop");
            Runtime.getRuntime().addShutdownHook(hook);
            out.println("hintgrpo: serving " + name + " on " + server.url() + " (backend " + kernels.name() + ", batch " + batchSize
                    + ", context " + rowContext + ")");
            out.flush();
            server.awaitStopped();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is already exiting (the hook stopped the server)
            }
        }
        return 0;
    }
}
