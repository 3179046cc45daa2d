package io.hintgrpo.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A model directory as Hugging Face lays it out: {@code config.json}, the weights as
 * {@code model.safetensors} or as shards listed in {@code model.safetensors.index.json}, and
 * {@code tokenizer.json} (read by the trainer, never touched here). A real Qwen2/Qwen2.5
 * checkpoint loads as is.
 */
public final class ModelDir {
    public static final String CONFIG = "config.json";
    public static final String WEIGHTS = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";
    static final String PROJECTOR_PREFIX = "multi_modal_projector.";

    private ModelDir() {
    }

    /**
     * Reads config.json, builds the model on {@code kernels} and fills every parameter from the
     * checkpoint, one tensor at a time. A text-only checkpoint (no projector tensors at all) gets
     * its projectors initialised from {@code seed}; that, an ignored lm_head.weight of a tied
     * model, and tensors the config does not use are said through {@code report}. Anything else
     * that does not match the config fails with a {@link BadInputException} naming the file.
     */
    public static Model load(Kernels kernels, Path dir, long seed, Consumer<String> report) {
        return load(kernels, dir, seed, report, false);
    }

    /** As {@link #load(Kernels, Path, long, Consumer)}; frozenBf16: into a {@link Model#frozenBf16} base (matrices rounded to bf16 as they load). */
    public static Model load(Kernels kernels, Path dir, long seed, Consumer<String> report, boolean frozenBf16) {
        if (report == null) report = s -> { };
        ModelConfig config = ModelConfig.load(dir.resolve(CONFIG));
        try (Tensors tensors = Tensors.open(dir)) {
            Model model = frozenBf16 ? Model.frozenBf16(kernels, config) : new Model(kernels, config);
            try {
                fill(model, tensors, seed, report);
                return model;
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
        }
    }

    private static void fill(Model model, Tensors tensors, long seed, Consumer<String> report) {
        String source = tensors.source().toString();
        ParamLayout layout = model.layout;
        boolean textOnly = tensors.names().stream().noneMatch(n -> n.startsWith(PROJECTOR_PREFIX));
        int initialised = 0;
        long values = 0;
        for (ParamLayout.Entry e : layout.entries()) {
            String name = e.name();
            if (!tensors.has(name)) {
                if (textOnly && name.startsWith(PROJECTOR_PREFIX)) {
                    model.initialize(name, seed);
                    initialised++;
                    continue;
                }
                if (name.equals("lm_head.weight"))
                    throw new BadInputException(source, "lm_head.weight is missing, and config.json has tie_word_embeddings false"
                            + " (an untied model needs its own LM head)");
                throw new BadInputException(source, "tensor " + name + " required by config.json is missing");
            }
            Safetensors.Info t = tensors.info(name);
            if (!Arrays.equals(t.shape(), e.shape()))
                throw new BadInputException(tensors.fileOf(name).toString(), "tensor " + name + " has shape "
                        + Arrays.toString(t.shape()) + ", config.json expects " + Arrays.toString(e.shape()));
            float[] v = tensors.read(name);
            requireFinite(v, tensors.fileOf(name).toString(), name);
            model.upload(name, v);
            values += e.size();
        }
        if (initialised > 0)
            report.accept("text-only checkpoint: initialised " + initialised + " projector tensors from seed " + seed);

        List<String> unused = new ArrayList<>();
        for (String name : tensors.names()) {
            if (layout.has(name)) continue;
            if (name.equals("lm_head.weight") && model.config.tieWordEmbeddings())
                report.accept(source + ": ignoring lm_head.weight, config.json ties it to model.embed_tokens.weight");
            else if (!name.endsWith("rotary_emb.inv_freq")) // a recomputed buffer some exporters save
                unused.add(name);
        }
        if (!unused.isEmpty())
            report.accept(source + ": " + unused.size() + " tensor(s) not used by this config: " + String.join(", ", unused));
        report.accept("loaded " + values + " parameters from " + source);
    }

    /** A tensor with NaN or ±Inf is refused at load, naming it: training or scoring from it would only spread the poison. */
    public static void requireFinite(float[] values, String file, String tensor) {
        for (int i = 0; i < values.length; i++)
            if (!Float.isFinite(values[i]))
                throw new BadInputException(file, "tensor " + tensor + " holds " + values[i] + " at flat index " + i
                        + " (a model or checkpoint with non-finite weights cannot be used)");
    }

    /**
     * The files a model directory's weights consist of: config.json, then model.safetensors, or
     * the shard index and its shards (sorted), for comparing models by content.
     */
    public static List<Path> files(Path dir) {
        List<Path> out = new ArrayList<>(List.of(dir.resolve(CONFIG)));
        try (Tensors t = Tensors.open(dir)) {
            java.util.TreeSet<Path> weights = new java.util.TreeSet<>();
            for (Safetensors f : t.files) weights.add(f.file());
            if (!t.source().equals(dir.resolve(WEIGHTS))) out.add(t.source());
            out.addAll(weights);
        }
        return out;
    }

    /**
     * Writes config.json and model.safetensors (every layout tensor, so no lm_head.weight when
     * tied) in F32 or BF16. Each file is written to a temporary file in the same directory and
     * moved over the old one atomically, so a failure leaves the previous checkpoint intact.
     * Other files (tokenizer.json, an older index and its shards) are left alone; loading
     * prefers model.safetensors, as Hugging Face does.
     */
    public static void save(Model model, Path dir, Safetensors.Dtype dtype) {
        save(model, dir, dtype, model::download);
    }

    /**
     * As {@link #save}, with the attached LoRA adapter merged into the tensors on the host
     * ({@link Model#downloadMerged}), tensor by tensor, the model left as it was: how a frozen
     * bf16 base (which cannot hold the merge) and a run's export write base + adapter as one model.
     */
    public static void saveMerged(Model model, Path dir, Safetensors.Dtype dtype) {
        save(model, dir, dtype, model::downloadMerged);
    }

    private static void save(Model model, Path dir, Safetensors.Dtype dtype, java.util.function.Function<String, float[]> values) {
        if (dtype == Safetensors.Dtype.F16) throw new IllegalArgumentException("save writes F32 or BF16, not F16");
        Path weightsTmp = null, configTmp = null;
        try {
            Files.createDirectories(dir);
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (ParamLayout.Entry e : model.layout.entries()) shapes.put(e.name(), e.shape());
            weightsTmp = tempFile(dir, WEIGHTS);
            Safetensors.write(weightsTmp, dtype, shapes, values);
            configTmp = tempFile(dir, CONFIG);
            try (FileChannel ch = FileChannel.open(configTmp, StandardOpenOption.WRITE)) {
                ch.write(java.nio.ByteBuffer.wrap(model.config.toJson(dtype == Safetensors.Dtype.BF16 ? "bfloat16" : "float32").getBytes(StandardCharsets.UTF_8)));
                ch.force(true);
            }
            // weights first: a crash between the two moves leaves new weights with the old config,
            // which a shape change makes fail loudly on load rather than load wrongly
            Files.move(weightsTmp, dir.resolve(WEIGHTS), StandardCopyOption.ATOMIC_MOVE);
            weightsTmp = null;
            Files.move(configTmp, dir.resolve(CONFIG), StandardCopyOption.ATOMIC_MOVE);
            configTmp = null;
        } catch (IOException e) {
            throw new UncheckedIOException("saving model to " + dir + ": " + e.getMessage(), e);
        } finally {
            deleteQuietly(weightsTmp);
            deleteQuietly(configTmp);
        }
    }

    /** A new hidden file next to the one it will replace (same file system, so the move is atomic);
     *  unlike Files.createTempFile it gets the usual permissions, which the moved file keeps. */
    static Path tempFile(Path dir, String name) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path p = dir.resolve("." + name + "." + Long.toHexString(System.nanoTime() ^ ProcessHandle.current().pid()) + ".tmp");
            try {
                return Files.createFile(p);
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (attempt == 10) throw e;
            }
        }
    }

    static void deleteQuietly(Path p) {
        if (p == null) return;
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a leftover hidden .tmp file is harmless; the original error matters more
        }
    }

    /**
     * The tensors of a model directory by name, from model.safetensors or from the shards of
     * model.safetensors.index.json. Opening validates every header and, for shards, that each
     * tensor of the index is in the shard it names.
     */
    public static final class Tensors implements AutoCloseable {
        private static final ObjectMapper JSON = new ObjectMapper();

        private final Path source;
        private final Map<String, Safetensors> byName;
        private final List<Safetensors> files;

        private Tensors(Path source, Map<String, Safetensors> byName, List<Safetensors> files) {
            this.source = source;
            this.byName = byName;
            this.files = files;
        }

        public static Tensors open(Path dir) {
            Path single = dir.resolve(WEIGHTS), index = dir.resolve(INDEX);
            if (Files.exists(single)) {
                requireInside(dir, single, single.toString());
                Safetensors st = Safetensors.open(single);
                Map<String, Safetensors> byName = new LinkedHashMap<>();
                for (String name : st.tensors().keySet()) byName.put(name, st);
                return new Tensors(single, byName, List.of(st));
            }
            if (Files.exists(index)) return openSharded(dir, index);
            throw new BadInputException(dir.toString(), "no " + WEIGHTS + " or " + INDEX + " in this directory");
        }

        private static Tensors openSharded(Path dir, Path index) {
            String where = index.toString();
            JsonNode root;
            try {
                root = JSON.readTree(Files.readString(index));
            } catch (NoSuchFileException e) {
                throw new BadInputException(where, "file not found");
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new BadInputException(where, "not valid JSON: " + e.getOriginalMessage());
            } catch (IOException e) {
                throw new BadInputException(where, "cannot read: " + e);
            }
            JsonNode map = root == null ? null : root.get("weight_map");
            if (map == null || !map.isObject()) throw new BadInputException(where, "no \"weight_map\" object");

            Map<String, Safetensors> shards = new LinkedHashMap<>();
            Map<String, Safetensors> byName = new LinkedHashMap<>();
            try {
                for (Map.Entry<String, JsonNode> f : map.properties()) {
                    String tensor = f.getKey();
                    if (!f.getValue().isTextual())
                        throw new BadInputException(where, "weight_map entry for " + tensor + " is not a file name");
                    String shardName = f.getValue().textValue();
                    Safetensors shard = shards.get(shardName);
                    if (shard == null) {
                        Path p = dir.resolve(shardName).normalize();
                        if (!p.startsWith(dir.normalize()) || p.equals(dir.normalize()))
                            throw new BadInputException(where, "shard \"" + shardName + "\" of tensor " + tensor + " is outside the directory");
                        if (!Files.isRegularFile(p))
                            throw new BadInputException(where, "shard file " + shardName + " (listed for tensor " + tensor + ") does not exist");
                        requireInside(dir, p, where);
                        shard = Safetensors.open(p);
                        shards.put(shardName, shard);
                    }
                    if (!shard.has(tensor))
                        throw new BadInputException(where, "tensor " + tensor + " is listed in shard " + shardName
                                + " but " + shard.file() + " has no such tensor");
                    byName.put(tensor, shard);
                }
            } catch (RuntimeException e) {
                shards.values().forEach(Safetensors::close);
                throw e;
            }
            return new Tensors(index, byName, new ArrayList<>(shards.values()));
        }

        /**
         * A shard must stay inside the model directory after links are followed. The one exception is
         * Hugging Face's cache layout, whose snapshot files link into the repository's blobs folder
         * ({@code models--x/snapshots/REV/f → ../../blobs/SHA}): links there are allowed.
         */
        private static void requireInside(Path dir, Path file, String where) {
            try {
                Path real = file.toRealPath(), home = dir.toRealPath();
                if (real.startsWith(home)) return;
                Path abs = dir.toAbsolutePath().normalize(), parent = abs.getParent();
                if (parent != null && parent.getFileName() != null && parent.getFileName().toString().equals("snapshots")) {
                    Path blobs = parent.resolveSibling("blobs");
                    if (Files.isDirectory(blobs) && real.startsWith(blobs.toRealPath())) return;
                }
                throw new BadInputException(where, "shard " + file.getFileName() + " links to " + real + ", outside the model directory " + dir);
            } catch (IOException e) {
                throw BadInputException.io(file, "cannot read", e);
            }
        }

        /** The file errors about the whole checkpoint name: model.safetensors or the index. */
        public Path source() {
            return source;
        }

        public Set<String> names() {
            return Collections.unmodifiableSet(byName.keySet());
        }

        public boolean has(String name) {
            return byName.containsKey(name);
        }

        public Safetensors.Info info(String name) {
            return shard(name).info(name);
        }

        /** The file holding this tensor. */
        public Path fileOf(String name) {
            return shard(name).file();
        }

        public float[] read(String name) {
            return shard(name).read(name);
        }

        private Safetensors shard(String name) {
            Safetensors s = byName.get(name);
            if (s == null) throw new BadInputException(source.toString(), "no tensor named " + name);
            return s;
        }

        @Override
        public void close() {
            files.forEach(Safetensors::close);
        }
    }
}
