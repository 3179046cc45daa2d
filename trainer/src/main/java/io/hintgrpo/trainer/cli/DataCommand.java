package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;

import com.fasterxml.jackson.databind.JsonNode;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.MmsaImport;
import io.hintgrpo.trainer.data.RemoteTeacher;
import io.hintgrpo.trainer.data.TeacherFilter;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.Polarity;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code hintgrpo data}: make the embedded corpus, import an MMSA pickle, or check a corpus file. */
@Command(name = "data", mixinStandardHelpOptions = true,
        description = "Corpus files: make the embedded synthetic corpus (synth), import an MMSA feature pickle (import-mmsa) "
                + "or check a JSONL corpus (check).",
        subcommands = {DataCommand.Synth.class, DataCommand.ImportMmsa.class, DataCommand.Teacher.class, DataCommand.Check.class})
final class DataCommand {

    @Command(name = "synth", mixinStandardHelpOptions = true,
            description = "Writes the embedded multimodal sentiment corpus: per domain train/valid/test JSONL with .npy "
                    + "features and filtered teacher DC chains, tokenizer.json and the corpus.json manifest.")
    static final class Synth implements Callable<Integer> {
        @Spec CommandSpec spec;

        @CommandLine.Mixin(name = "configFile")
        ConfigFile.Mixin configFile;

        @Option(names = "--out", required = true, description = "Output folder (must not exist or be empty).")
        Path out;

        @Option(names = "--seed", defaultValue = "1234", description = "Seed; the same seed gives bit-identical files (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--size", defaultValue = "2000", description = "Utterances over all domains (default: ${DEFAULT-VALUE}).")
        int size;

        @Option(names = "--teacher-error-rate", defaultValue = "0.1", description = "Share of teacher chains made wrong (default: ${DEFAULT-VALUE}).")
        double teacherErrorRate;

        @Option(names = "--conflict-rate", defaultValue = "0.25", description = "Share of utterances whose words disagree with face and voice (default: ${DEFAULT-VALUE}).")
        double conflictRate;

        @Option(names = "--frames-audio", defaultValue = "6", description = "Audio frames per utterance (default: ${DEFAULT-VALUE}).")
        int framesAudio;

        @Option(names = "--frames-vision", defaultValue = "6", description = "Vision frames per utterance (default: ${DEFAULT-VALUE}).")
        int framesVision;

        @Option(names = "--filter-tolerance", defaultValue = "0.5", description = "Largest |answer - label| of a kept teacher chain (default: ${DEFAULT-VALUE}).")
        double filterTolerance;

        @Option(names = "--teacher-blind-spot", defaultValue = "0", description = "Share of the hard (conflict) training utterances "
                + "on which the teacher follows the words, so its chain is wrong and filtered out (default: ${DEFAULT-VALUE}).")
        double teacherBlindSpot;

        @Option(names = "--eval-size", defaultValue = "0", description = "Valid and test utterances per domain, e.g. 1000 for "
                + "≥ 200 hard test items per domain; --size then decides the training split alone (80 %% of it) and the training "
                + "records stay the same (default: ${DEFAULT-VALUE} = 10 %% of each domain each).")
        int evalSize;

        @Override
        public Integer call() throws IOException {
            SynthCorpus.Options o = new SynthCorpus.Options(seed, size, teacherErrorRate, framesAudio, framesVision,
                    conflictRate, filterTolerance, teacherBlindSpot, evalSize);
            SynthCorpus.Summary s = SynthCorpus.write(out, o);
            PrintWriter w = spec.commandLine().getOut();
            JsonNode m = s.manifest();
            int total = 0;
            for (JsonNode d : m.path("splits")) for (JsonNode n : d) total += n.asInt();
            w.printf("wrote %s: %d utterances in %s, vocabulary %d tokens%n", out, total, SynthCorpus.domains(), m.path("vocab_size").asInt());
            w.printf("classes: %s; conflicts: %s%n", m.path("classes"), m.path("conflicts"));
            JsonNode t = m.path("teacher");
            w.printf("teacher chains: %d errors injected, %d in the blind spot, filter kept %d and dropped %d%n",
                    t.path("injected_errors").asInt(), t.path("blind_spot_chains").asInt(), t.path("kept").asInt(), t.path("dropped").asInt());
            w.printf("hard subset: %s%n", m.path("hard_subset"));
            JsonNode x = m.path("text_only");
            w.printf("test MAE: text-only %.3f vs multimodal linear probe %.3f%n",
                    x.path("text_only_test_mae").asDouble(), x.path("multimodal_probe_test_mae").asDouble());
            return 0;
        }
    }

    @Command(name = "import-mmsa", mixinStandardHelpOptions = true,
            description = "Converts an MMSA feature pickle (CMU-MOSI, CMU-MOSEI aligned_50.pkl / unaligned_50.pkl, CH-SIMS "
                    + "unaligned_39.pkl) into the corpus format: OUT/NAME/{train,valid,test}.jsonl with .npy features and the "
                    + "OUT/mmsa.json manifest. Padding frames are cut, non-finite values become 0 (counted), CH-SIMS labels are "
                    + "scaled by 3 (docs/data.md).")
    static final class ImportMmsa implements Callable<Integer> {
        @Spec CommandSpec spec;

        @CommandLine.Mixin(name = "configFile")
        ConfigFile.Mixin configFile;

        @Option(names = "--pkl", required = true, description = "The MMSA pickle (a dict of train, valid, test).")
        Path pkl;

        @Option(names = "--out", required = true, description = "Output folder (must not exist or be empty).")
        Path out;

        @Option(names = "--name", description = "Dataset name: the domain and the folder inside OUT (default: mosi, mosei or sims "
                + "when the pickle's path names one).")
        String name;

        @Option(names = "--pool-frames", defaultValue = "0", description = "Average consecutive frames down to at most N per "
                + "utterance and modality; 0 keeps every frame (default: ${DEFAULT-VALUE}).")
        int poolFrames;

        @Override
        public Integer call() throws IOException {
            PrintWriter err = spec.commandLine().getErr();
            MmsaImport.Summary s = MmsaImport.run(new MmsaImport.Options(pkl, out, name, poolFrames), msg -> err.println("hintgrpo: " + msg));
            PrintWriter w = spec.commandLine().getOut();
            w.print(s.report());
            w.flush(); // print does not flush an autoflush writer; the JVM exits next
            return 0;
        }
    }

    @Command(name = "teacher", mixinStandardHelpOptions = true,
            description = "Asks an OpenAI-compatible chat server (vLLM, SGLang, llama.cpp, Ollama, hintgrpo serve) for a DC "
                    + "teacher chain per record and keeps it as \"cot\" where the distillation filter keeps it. Appends to --out "
                    + "as records finish; a rerun skips the ids already there. The API key comes from the environment "
                    + "variable --api-key-env names (default OPENAI_API_KEY), never from a flag.")
    static final class Teacher implements Callable<Integer> {
        @Spec CommandSpec spec;

        @CommandLine.Mixin(name = "configFile")
        ConfigFile.Mixin configFile;

        @Option(names = "--endpoint", required = true, description = "The server's API base, e.g. http://127.0.0.1:8000/v1 (requests go to ENDPOINT/chat/completions).")
        java.net.URI endpoint;

        @Option(names = "--model", description = "The model name the server serves (sent as \"model\"; omitted when not given).")
        String model;

        @Option(names = "--in", required = true, description = "JSONL records with labels (the corpus format).")
        Path in;

        @Option(names = "--out", required = true, description = "JSONL written as records finish: each input record, with \"cot\" where a chain was kept.")
        Path out;

        @Option(names = "--prompts", description = "JSON {\"system\": …, \"user\": …} templates; {text}, {label}, {polarity}, {id}, {domain} are filled in (default: docs/data.md).")
        Path prompts;

        @Option(names = "--concurrency", defaultValue = "4", description = "Requests in flight (default: ${DEFAULT-VALUE}).")
        int concurrency;

        @Option(names = "--retries", defaultValue = "5", description = "Retries of a request after 429, 5xx, a timeout or a refused connection (default: ${DEFAULT-VALUE}).")
        int retries;

        @Option(names = "--timeout", defaultValue = "120", description = "Seconds to wait for one answer (default: ${DEFAULT-VALUE}).")
        double timeoutSeconds;

        @Option(names = "--tolerance", defaultValue = "" + TeacherFilter.DEFAULT_TOLERANCE, description = "Largest |answer − label| of a kept chain (default: ${DEFAULT-VALUE}).")
        double tolerance;

        @Option(names = "--temperature", defaultValue = "0.7", description = "Sampling temperature asked of the server (default: ${DEFAULT-VALUE}).")
        double temperature;

        @Option(names = "--max-tokens", defaultValue = "256", description = "Longest chain asked for (default: ${DEFAULT-VALUE}).")
        int maxTokens;

        @Option(names = "--api-key-env", defaultValue = "OPENAI_API_KEY", description = "Environment variable holding the API key; unset or empty: no key (default: ${DEFAULT-VALUE}).")
        String apiKeyEnv;

        @Override
        public Integer call() throws IOException {
            if (!(timeoutSeconds > 0) || Double.isInfinite(timeoutSeconds)) // before it becomes a Duration
                throw new BadInputException("--timeout", "must be a positive number of seconds, got " + timeoutSeconds);
            if (!java.nio.file.Files.isRegularFile(in)) throw new BadInputException(in.toString(), "input file not found");
            io.hintgrpo.trainer.data.AtomicFiles.refuseInput(out, "--out", List.of(in));
            io.hintgrpo.trainer.data.AtomicFiles.probeFile(out);
            PrintWriter err = spec.commandLine().getErr();
            RemoteTeacher.Report r = RemoteTeacher.run(new RemoteTeacher.Settings(endpoint, model, in, out, prompts, concurrency, retries,
                    java.time.Duration.ofMillis((long) (timeoutSeconds * 1000)), tolerance, temperature, maxTokens, apiKeyEnv),
                    msg -> err.println("hintgrpo: " + msg));
            PrintWriter w = spec.commandLine().getOut();
            w.print(r.table());
            w.println(r.json());
            w.flush();
            return 0;
        }
    }

    @Command(name = "check", mixinStandardHelpOptions = true,
            description = "Reads JSONL corpus files as training would and prints counts per domain and class.")
    static final class Check implements Callable<Integer> {
        @Spec CommandSpec spec;

        @CommandLine.Mixin(name = "configFile")
        ConfigFile.Mixin configFile;

        @Parameters(arity = "1..*", paramLabel = "FILE", description = "JSONL files.")
        List<Path> files;

        @Option(names = "--audio-dim", defaultValue = "-1", description = "Required audio features per frame (-1: any).")
        int audioDim;

        @Option(names = "--vision-dim", defaultValue = "-1", description = "Required vision features per frame (-1: any).")
        int visionDim;

        @Option(names = "--skip-bad", description = "Skip malformed records and count them instead of failing.")
        boolean skipBad;

        @Override
        public Integer call() {
            if (audioDim < -1) throw new BadInputException("--audio-dim", "must be ≥ 0, or -1 for any, got " + audioDim);
            if (visionDim < -1) throw new BadInputException("--vision-dim", "must be ≥ 0, or -1 for any, got " + visionDim);
            PrintWriter w = spec.commandLine().getOut();
            for (Path f : files) {
                Jsonl.Loaded l = Jsonl.read(f, new Jsonl.Expect(audioDim, visionDim), skipBad);
                Map<String, int[]> perDomain = new TreeMap<>();
                int withCot = 0;
                for (Utterance u : l.utterances()) {
                    perDomain.computeIfAbsent(u.domain(), d -> new int[3])[Polarity.of(u.label()).ordinal()]++;
                    if (u.cot() != null) withCot++;
                }
                w.printf("%s: %d records (%d with a teacher chain)%s%n", f, l.utterances().size(), withCot,
                        skipBad ? ", skipped " + l.skipped() + " malformed" : "");
                perDomain.forEach((d, c) -> w.printf("  %s: negative %d, neutral %d, positive %d%n", d, c[0], c[1], c[2]));
                for (String p : l.problems()) w.println("  skipped: " + p);
            }
            return 0;
        }
    }
}
