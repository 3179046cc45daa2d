package io.hintgrpo.trainer.checkpoint;

import io.hintgrpo.trainer.data.AtomicFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.PeftAdapter;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.trainer.loop.OptimizerSettings;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Training checkpoints in a run's {@code checkpoints/} folder. Each holds what trains: a model
 * directory (config.json, model.safetensors, tokenizer.json), or with LoRA the base's config.json
 * and the adapter in PEFT's format (adapter_config.json, adapter_model.safetensors: adapters and
 * projectors; the frozen base is the run's starting model, not copied), plus optimizer.safetensors
 * (AdamW moments per trained tensor), trainer_state.json (step, data position, the run's
 * fingerprint) and checksums.json (SHA-256 of every other file). A checkpoint is written into a
 * temporary folder, every file fsynced, then renamed into place, so a crash mid-write leaves the previous ones
 * intact; index.json (also replaced atomically) names the latest and the best. Older ones beyond
 * keepLast are deleted, never the best.
 */
public final class Checkpoints {
    public static final String OPTIMIZER = "optimizer.safetensors", STATE = "trainer_state.json",
            CHECKSUMS = "checksums.json", TOKENIZER = "tokenizer.json", INDEX = "index.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Where training stands: optimizer steps done, the next micro-batch (epoch, position), skipped
     * steps, and a fingerprint of what must match on resume (seed, data, batch shape).
     */
    public record State(int step, int epoch, int position, int skippedSteps, Map<String, String> fingerprint) {}

    /** A loaded checkpoint: the model on a backend, its optimizer with restored moments, and the state. */
    public record Loaded(Path dir, Model model, AdamW optimizer, State state) {}

    private final Path root;

    public Checkpoints(Path runDir) {
        this.root = runDir.resolve("checkpoints");
    }

    public Path root() {
        return root;
    }

    /**
     * Writes checkpoint {@code step-NNNNNN}; metric (lower is better, NaN = none) decides the best.
     * Returns its folder.
     */
    public Path write(Model model, AdamW opt, Path tokenizerJson, State state, double metric, int keepLast) {
        try {
            Files.createDirectories(root);
            sweepLeftovers();
            String name = String.format("step-%07d", state.step());
            Path tmp = Files.createTempDirectory(root, "." + name + ".tmp-");
            AtomicFiles.readableByAll(tmp);
            try {
                if (model.lora() != null) {
                    Files.writeString(tmp.resolve(ModelDir.CONFIG), model.config.toJson()); // the shape of the base it adapts
                    PeftAdapter.save(model.lora(), tmp, null);
                } else {
                    ModelDir.save(model, tmp, Safetensors.Dtype.F32);
                }
                if (tokenizerJson != null) Files.copy(tokenizerJson, tmp.resolve(TOKENIZER));
                Map<String, int[]> shapes = new LinkedHashMap<>();
                for (ParamLayout.Entry e : opt.layout().entries()) {
                    shapes.put("exp_avg." + e.name(), e.shape());
                    shapes.put("exp_avg_sq." + e.name(), e.shape());
                }
                Safetensors.write(tmp.resolve(OPTIMIZER), Safetensors.Dtype.F32, shapes, t -> {
                    int dot = t.indexOf('.');
                    return opt.downloadMoment(t.substring(0, dot), t.substring(dot + 1));
                });
                ObjectNode s = JSON.createObjectNode();
                s.put("step", state.step());
                s.put("epoch", state.epoch());
                s.put("position", state.position());
                s.put("skipped_steps", state.skippedSteps());
                s.put("optimizer_steps", opt.steps());
                s.put("metric", Double.isFinite(metric) ? metric : null);
                ObjectNode fp = s.putObject("fingerprint");
                state.fingerprint().forEach(fp::put);
                Files.writeString(tmp.resolve(STATE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(s));
                ObjectNode sums = JSON.createObjectNode();
                try (Stream<Path> files = Files.list(tmp)) {
                    for (Path f : files.sorted().toList()) {
                        fsync(f);
                        sums.put(f.getFileName().toString(), sha256(f));
                    }
                }
                Files.writeString(tmp.resolve(CHECKSUMS), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(sums));
                fsync(tmp.resolve(CHECKSUMS));
                Path dest = root.resolve(name);
                if (Files.exists(dest)) discard(dest); // a stale one from an abandoned run after an older resume point
                Files.move(tmp, dest, StandardCopyOption.ATOMIC_MOVE);
                fsync(root);
                updateIndex(name, metric, keepLast);
                return dest;
            } finally {
                if (Files.exists(tmp)) deleteTree(tmp);
            }
        } catch (IOException e) {
            throw BadInputException.io(root, "cannot write a checkpoint", e);
        } catch (UncheckedIOException e) {
            throw BadInputException.io(root, "cannot write a checkpoint", e.getCause());
        }
    }

    private void updateIndex(String latest, double metric, int keepLast) throws IOException {
        ObjectNode index = readIndex();
        String best = index.path("best").asText(null);
        double bestMetric = index.path("best_metric").isNumber() ? index.get("best_metric").asDouble() : Double.NaN;
        if (Double.isFinite(metric) && (best == null || !Double.isFinite(bestMetric) || metric < bestMetric)) {
            best = latest;
            bestMetric = metric;
        }
        ObjectNode out = JSON.createObjectNode();
        out.put("latest", latest);
        if (best != null) out.put("best", best);
        if (Double.isFinite(bestMetric)) out.put("best_metric", bestMetric);
        Path tmp = Files.createTempFile(root, ".index-", ".json");
        AtomicFiles.readableByAll(tmp);
        Files.writeString(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out));
        fsync(tmp);
        Files.move(tmp, root.resolve(INDEX), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        List<String> all = list();
        for (int i = 0; i < all.size() - Math.max(1, keepLast); i++)
            if (!all.get(i).equals(best) && !all.get(i).equals(latest)) discard(root.resolve(all.get(i)));
    }

    /**
     * Removes a checkpoint folder so that a crash part-way never leaves a half-deleted
     * {@code step-N} behind: it is first renamed to a hidden name (atomic), then deleted.
     */
    private void discard(Path dir) throws IOException {
        Path hidden = root.resolve("." + dir.getFileName() + ".del-" + System.nanoTime());
        Files.move(dir, hidden, StandardCopyOption.ATOMIC_MOVE);
        deleteTree(hidden);
    }

    /** Hidden leftovers of a process killed while writing or deleting a checkpoint ({@code .step-N.tmp-…}, {@code .step-N.del-…}, {@code .index-….json}). */
    private void sweepLeftovers() throws IOException {
        try (Stream<Path> s = Files.list(root)) {
            for (Path p : s.filter(p -> p.getFileName().toString().matches("\\.step-\\d+\\.(tmp|del)-.*|\\.index-.*\\.json")).toList()) deleteTree(p);
        }
    }

    private ObjectNode readIndex() {
        Path f = root.resolve(INDEX);
        try {
            if (Files.exists(f) && JSON.readTree(f.toFile()) instanceof ObjectNode o) return o;
        } catch (IOException e) {
            // an unreadable index is rebuilt from the folders on the next write
        }
        return JSON.createObjectNode();
    }

    /** Checkpoint folder names, oldest first. */
    public List<String> list() throws IOException {
        if (!Files.isDirectory(root)) return List.of();
        try (Stream<Path> s = Files.list(root)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.matches("step-\\d+")).sorted().toList();
        }
    }

    /** The latest checkpoint (the index's, else the newest folder), or null when there is none. */
    public Path latest() throws IOException {
        Path named = named("latest");
        if (named != null) return named;
        List<String> all = new ArrayList<>(list());
        return all.isEmpty() ? null : inside(root.resolve(all.get(all.size() - 1)));
    }

    /** The best checkpoint by metric, or the latest when none was ranked. */
    public Path best() throws IOException {
        Path named = named("best");
        return named != null ? named : latest();
    }

    /**
     * The checkpoint index.json names as latest or best, when it exists. The index may only name a
     * checkpoint folder of this run: another name (a path into another run, {@code ..}) is refused.
     */
    private Path named(String which) throws IOException {
        String named = readIndex().path(which).asText(null);
        if (named == null) return null;
        if (!named.matches("step-\\d+"))
            throw new BadInputException(root.resolve(INDEX).toString(), "names \"" + named + "\" as " + which
                    + ", which is not a checkpoint folder of this run (step-N)");
        Path p = root.resolve(named);
        return Files.isDirectory(p) ? inside(p) : null;
    }

    /** A checkpoint folder must be inside this run's checkpoints folder after links are followed. */
    private Path inside(Path p) throws IOException {
        return directlyIn(p, root, root + "; a run's checkpoints stay in it");
    }

    /** p, after links are followed, sits directly in folder (named {@code what} in the error): nothing is read from elsewhere. */
    private static Path directlyIn(Path p, Path folder, String what) throws IOException {
        Path real = p.toRealPath();
        if (!real.getParent().equals(folder.toRealPath())) throw new BadInputException(p.toString(), "links to " + real + ", outside " + what);
        return p;
    }

    /**
     * Verifies the checksums, checks the fingerprint against {@code expected} (each key present in
     * both must agree), and loads model, optimizer moments and state. A LoRA checkpoint's adapter
     * is attached to the model {@code base} supplies (the run's frozen starting model; it must have
     * the checkpoint's config); base may be null where the run trains every parameter. Anything off
     * is one clear error.
     */
    public static Loaded load(Path dir, Kernels kernels, Map<String, String> expected, OptimizerSettings optimizer,
                              Supplier<Model> base, Consumer<String> report) {
        verify(dir);
        JsonNode s;
        try {
            s = JSON.readTree(dir.resolve(STATE).toFile());
        } catch (IOException e) {
            throw new BadInputException(dir.resolve(STATE).toString(), "not valid JSON");
        }
        Map<String, String> fp = new LinkedHashMap<>();
        s.path("fingerprint").fields().forEachRemaining(e -> fp.put(e.getKey(), e.getValue().asText()));
        java.util.Set<String> keys = new java.util.TreeSet<>(java.util.Comparator.comparing((String k) -> !k.equals("command"))
                .thenComparing(java.util.Comparator.naturalOrder())); // another command first: it explains every other difference
        keys.addAll(fp.keySet());
        keys.addAll(expected.keySet());
        for (String key : keys) {
            String saved = fp.get(key), now = expected.get(key);
            if (!java.util.Objects.equals(saved, now))
                throw new BadInputException(dir.toString(), "checkpoint was written with " + key + " = " + (saved == null ? "(none)" : saved)
                        + ", this run has " + (now == null ? "(none)" : now) + " (resume with the same settings, or start a new run folder)");
        }
        State state = new State(s.path("step").asInt(), s.path("epoch").asInt(), s.path("position").asInt(),
                s.path("skipped_steps").asInt(), fp);
        boolean lora = PeftAdapter.isAdapter(dir);
        Model model;
        if (lora) {
            if (base == null)
                throw new BadInputException(dir.toString(), "holds a LoRA adapter, and this run trains every parameter (lora_rank 0)");
            model = base.get();
            ModelConfig saved = ModelConfig.load(dir.resolve(ModelDir.CONFIG));
            if (!saved.equals(model.config))
                throw new BadInputException(dir.resolve(ModelDir.CONFIG).toString(), "the adapter was trained on a base of another shape "
                        + "than this run's starting model (resume from the same --model)");
            PeftAdapter.load(model, dir);
        } else {
            model = ModelDir.load(kernels, dir, 0, report);
        }
        AdamW opt = optimizer.adamw(model);
        try (Safetensors moments = Safetensors.open(dir.resolve(OPTIMIZER))) {
            for (ParamLayout.Entry e : opt.layout().entries())
                for (String which : new String[]{"exp_avg", "exp_avg_sq"}) {
                    String name = which + "." + e.name();
                    if (!moments.has(name))
                        throw new BadInputException(dir.resolve(OPTIMIZER).toString(), "optimizer state lacks " + name + " (written for another model?)");
                    if (moments.info(name).elements() != e.size())
                        throw new BadInputException(dir.resolve(OPTIMIZER).toString(), name + " has " + moments.info(name).elements()
                                + " values, the model's tensor has " + e.size());
                    float[] m = moments.read(name);
                    ModelDir.requireFinite(m, dir.resolve(OPTIMIZER).toString(), name);
                    opt.uploadMoment(which, e.name(), m);
                }
        } catch (RuntimeException e) {
            opt.close();
            if (lora) model.detachLora(); // the base is the caller's
            else model.close();
            throw e;
        }
        opt.setSteps(s.path("optimizer_steps").asInt());
        return new Loaded(dir, model, opt, state);
    }

    /** What a finished run hands on: the best checkpoint as a model directory, and with LoRA its adapter (else null). */
    public record Exported(Path model, Path adapter) {}

    /**
     * The best (else latest) checkpoint as a plain model directory at modelDest, atomically. A
     * full checkpoint's model files (config, weights, tokenizer) are copied. A LoRA checkpoint's
     * adapter replaces the one attached to {@code trained} (the run's model: its frozen base
     * with an adapter), goes to adapterDest in PEFT's format (base_model_name_or_path baseModel,
     * null when unknown), and modelDest gets base + adapter merged on the host as one model that
     * every command reads ({@link ModelDir#saveMerged}); trained ends with the best adapter
     * attached, unmerged (a frozen bf16 base could not hold the merge). Returns null when there is
     * no checkpoint.
     */
    public Exported exportBest(Path modelDest, Path adapterDest, Model trained, String baseModel) throws IOException {
        Path best = best();
        if (best == null) return null;
        if (!PeftAdapter.isAdapter(best)) {
            replaceFolder(modelDest, tmp -> {
                for (String f : new String[]{ModelDir.CONFIG, ModelDir.WEIGHTS, TOKENIZER})
                    if (Files.exists(best.resolve(f))) Files.copy(best.resolve(f), tmp.resolve(f));
            });
            return new Exported(modelDest, null);
        }
        if (trained.lora() == null) throw new IllegalStateException("a LoRA checkpoint needs the run's model with its adapter to export");
        trained.detachLora();
        PeftAdapter.load(trained, best);
        replaceFolder(adapterDest, tmp -> PeftAdapter.save(trained.lora(), tmp, baseModel));
        replaceFolder(modelDest, tmp -> {
            ModelDir.saveMerged(trained, tmp, Safetensors.Dtype.F32);
            if (Files.exists(best.resolve(TOKENIZER))) Files.copy(best.resolve(TOKENIZER), tmp.resolve(TOKENIZER));
        });
        return new Exported(modelDest, adapterDest);
    }

    private interface FolderContent {
        void writeInto(Path tmp) throws IOException;
    }

    /** Fills a temporary folder beside dest and renames it onto dest, replacing what was there. */
    private static void replaceFolder(Path dest, FolderContent content) throws IOException {
        Path tmp = Files.createTempDirectory(dest.toAbsolutePath().getParent(), "." + dest.getFileName() + "-");
        AtomicFiles.readableByAll(tmp);
        try {
            content.writeInto(tmp);
            if (Files.exists(dest)) deleteTree(dest);
            Files.move(tmp, dest, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            if (Files.exists(tmp)) deleteTree(tmp);
        }
    }

    /** Every file listed in checksums.json exists and hashes to its recorded SHA-256. */
    public static void verify(Path dir) {
        Path sums = dir.resolve(CHECKSUMS);
        if (!Files.isRegularFile(sums))
            throw new BadInputException(dir.toString(), "not a complete checkpoint (no " + CHECKSUMS + ")");
        JsonNode recorded;
        try {
            recorded = JSON.readTree(sums.toFile());
        } catch (IOException e) {
            throw new BadInputException(sums.toString(), "not valid JSON");
        }
        boolean lora = recorded.has(PeftAdapter.CONFIG);
        for (String required : List.of(ModelDir.CONFIG, lora ? PeftAdapter.WEIGHTS : ModelDir.WEIGHTS, OPTIMIZER, STATE))
            if (!recorded.has(required)) throw new BadInputException(sums.toString(), "does not list " + required);
        recorded.fields().forEachRemaining(e -> {
            if (!e.getKey().matches("[A-Za-z0-9_.-]+") || e.getKey().startsWith("."))
                throw new BadInputException(sums.toString(), "lists \"" + e.getKey() + "\", which is not a file of the checkpoint folder");
            Path f = dir.resolve(e.getKey());
            if (!Files.isRegularFile(f)) throw new BadInputException(f.toString(), "missing from the checkpoint");
            try {
                directlyIn(f, dir, "the checkpoint folder");
            } catch (IOException io) {
                throw BadInputException.io(f, "cannot read", io);
            }
            try {
                if (!sha256(f).equals(e.getValue().asText()))
                    throw new BadInputException(f.toString(), "checksum mismatch: the file is corrupt or was changed after the checkpoint was written");
            } catch (IOException io) {
                throw new BadInputException(f.toString(), "cannot read: " + io.getMessage());
            }
        });
    }

    /**
     * One SHA-256 over the contents of files, in order (each with its length, so the boundaries
     * count): runs compare their corpus and starting model by content, not by path.
     */
    public static String contentHash(List<Path> files) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (Path f : files) {
                md.update(java.nio.ByteBuffer.allocate(8).putLong(Files.size(f)).array());
                try (InputStream in = Files.newInputStream(f)) {
                    for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw BadInputException.io(files.isEmpty() ? Path.of(".") : files.get(0), "cannot read", e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String sha256(Path f) throws IOException {
        try (InputStream in = Files.newInputStream(f)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void fsync(Path p) throws IOException {
        if (Files.isDirectory(p)) {
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                ch.force(true);
            } catch (IOException e) {
                // some file systems refuse fsync on a directory; the renames are still atomic
            }
            return;
        }
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }

    private static void deleteTree(Path p) throws IOException {
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        }
    }
}
