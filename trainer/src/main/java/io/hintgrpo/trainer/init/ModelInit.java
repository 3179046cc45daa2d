package io.hintgrpo.trainer.init;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.tokenizer.SpecialTokens;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Turns a Hugging Face Qwen2/Qwen2.5 directory (config.json, model.safetensors or shards,
 * tokenizer.json) into a hintgrpo starting model, the Java API behind {@code hintgrpo init}:
 *
 * <ol>
 * <li>every token of {@link SpecialTokens#REQUIRED} the tokenizer lacks (DC tags, modality
 *     placeholders, end of turn where missing) is appended to tokenizer.json's added_tokens as a
 *     special token, with ids after the current highest;</li>
 * <li>vocab_size grows where the new ids need it (kept a multiple of 64 if it was one); the
 *     embedding and untied LM-head rows of the new ids are the mean of the rows of the original
 *     tokenizer's ids, every other existing row is kept as is;</li>
 * <li>the modality fields (feature sizes, placeholder ids, projector type) are set and the
 *     projectors initialised from the seed;</li>
 * <li>the other files are copied unchanged (tokenizer_config.json keeps its chat template), except
 *     that the files listing special tokens list the new ones; old weight formats are left out.</li>
 * </ol>
 *
 * {@link #preset} starts without a checkpoint instead: a named shape of {@link Presets}, a
 * tokenizer.json given the same special tokens, every tensor from the seed, written tensor by
 * tensor (fp32, or bf16 for shapes whose fp32 weights pass {@link #F32_LIMIT_BYTES}).
 *
 * <p>The directory is built under a temporary name beside {@code out} and renamed into place, so
 * {@code out} either holds the whole model or nothing. {@value #MANIFEST} records what init did,
 * including that the chat template was kept: hintgrpo itself prompts with {@code DcFormat}.
 */
public final class ModelInit {
    private ModelInit() {}

    /** What init did, written beside the model. */
    public static final String MANIFEST = "hintgrpo.json";
    private static final String TOKENIZER = "tokenizer.json";
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The files beside a tokenizer.json that belong to it; --preset carries them along (chat template included). */
    private static final List<String> TOKENIZER_FILES = List.of("tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "chat_template.jinja", "chat_template.json");
    /**
     * --preset writes fp32 weights up to this size and bf16 above it. Every preset is written tensor by
     * tensor; the size decides the dtype: the 1.5B (6.2 GB of fp32) and 7B (30 GB) shapes do not fit
     * the default JVM heap of the 24 GiB development machine (6 GiB), the 7B not even its memory, so
     * they are written as Qwen publishes them, in bf16; the 0.5B shape (2 GB) and the smaller stay fp32.
     * A fixed size, not the heap, so the same command writes the same bytes on every machine.
     */
    static final long F32_LIMIT_BYTES = 4L << 30;
    /** Weights in formats init does not rewrite: copying them would leave stale tensors with the old vocabulary. */
    private static final List<String> WEIGHT_SUFFIXES = List.of(".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack",
            ".ckpt", ".gguf", ".onnx");

    /** Modality feature widths (0 = modality absent), projector type ("mlp" or "linear") and the seed (of the projectors; with {@link #preset} of every weight). */
    public record Options(int audioDim, int visionDim, String projector, long seed) {
        /** The synthetic corpus's feature widths, MLP projectors, seed 0. */
        public static Options defaults() {
            return new Options(SynthCorpus.AUDIO_DIM, SynthCorpus.VISION_DIM, "mlp", 0);
        }

        public Options {
            if (audioDim < 0) throw new BadInputException("--audio-dim", "must be ≥ 0, got " + audioDim);
            if (visionDim < 0) throw new BadInputException("--vision-dim", "must be ≥ 0, got " + visionDim);
            if (!"mlp".equals(projector) && !"linear".equals(projector))
                throw new BadInputException("--projector", "expected mlp or linear, got \"" + projector + "\"");
        }
    }

    /**
     * @param config      the written model's config
     * @param addedTokens the special tokens added, with their ids (empty when the tokenizer had them all)
     * @param vocabBefore vocab_size of the original config.json (of the preset's shape for {@link #preset})
     * @param chatTemplate the file that holds the (unchanged) chat template, or null when the source has none
     */
    public record Result(Path dir, ModelConfig config, Map<String, Integer> addedTokens, int vocabBefore, String chatTemplate) {}

    /**
     * A new model of a named shape ({@link Presets#all}) for a tokenizer: the special tokens of
     * {@link SpecialTokens#REQUIRED} the tokenizer lacks are added as {@link #run} adds them;
     * vocab_size is the tokenizer's size after that, rounded up to a multiple of 64, and never below
     * a Qwen2.5 shape's published one; every tensor (new token rows included) comes from the seed as
     * {@link Model#initialize} makes it. The tensors are computed and written one at a time, so the
     * heap holds one tensor, never the model. {@code tokenizer} is a tokenizer.json or a folder
     * holding one (a corpus of data synth, a model directory); the files of {@link #TOKENIZER_FILES}
     * beside it come along.
     */
    public static Result preset(String name, Path tokenizer, Path out, Options opt, Consumer<String> log) throws IOException {
        return preset(name, tokenizer, out, opt, log, F32_LIMIT_BYTES);
    }

    /** As above, with the fp32 limit as a parameter so a test can force the bf16 path on a tiny shape. */
    static Result preset(String name, Path tokenizer, Path out, Options opt, Consumer<String> log, long f32LimitBytes)
            throws IOException {
        if (log == null) log = s -> { };
        Presets.Named preset = Presets.named(name);
        Path tokenizerFile = Files.isDirectory(tokenizer) ? tokenizer.resolve(TOKENIZER) : tokenizer;
        if (!Files.isRegularFile(tokenizerFile))
            throw new BadInputException(tokenizerFile.toString(), "file not found (--tokenizer takes a tokenizer.json or a "
                    + "folder holding one: a corpus of data synth, a model directory)");
        requireNewOutput(out);

        NewTokens nt = newTokens(tokenizerFile);
        ModelConfig shape = preset.shape();
        int vocab = presetVocab(preset, nt.tokensAfter());
        ModelConfig cfg = new ModelConfig(shape.hiddenSize(), shape.intermediateSize(), shape.numHeads(), shape.numKvHeads(),
                shape.numLayers(), vocab, shape.rmsNormEps(), shape.ropeTheta(), shape.tieWordEmbeddings(),
                shape.maxPositionEmbeddings(), opt.audioDim(), opt.visionDim(),
                opt.audioDim() > 0 ? nt.audioId() : -1, opt.visionDim() > 0 ? nt.visionId() : -1, opt.projector());
        ParamLayout layout = new ParamLayout(cfg);
        long params = layout.count();
        Safetensors.Dtype dtype = params * 4 <= f32LimitBytes ? Safetensors.Dtype.F32 : Safetensors.Dtype.BF16;
        requireRoom(out, layout, params * dtype.bytes);
        log.accept(String.format(Locale.ROOT, "preset %s: %,d parameters, vocab_size %,d; adding %d special tokens %s; "
                        + "writing %s (%s) tensor by tensor from seed %d",
                name, params, vocab, nt.added().size(), nt.added().keySet(), dtype, bytesText(params * dtype.bytes), opt.seed()));

        Path tmp = newTempDir(out);
        try {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (ParamLayout.Entry e : layout.entries()) shapes.put(e.name(), e.shape());
            boolean big = params * dtype.bytes > (1L << 30);
            Consumer<String> progress = log;
            Safetensors.write(tmp.resolve(ModelDir.WEIGHTS), dtype, shapes, tensor -> {
                if (big && tensor.endsWith(".mlp.down_proj.weight")) progress.accept("writing " + tensor);
                return Model.initialValues(layout.get(tensor), opt.seed());
            });
            Files.writeString(tmp.resolve(ModelDir.CONFIG), cfg.toJson(dtype == Safetensors.Dtype.BF16 ? "bfloat16" : "float32"));
            writeTokenizer(tokenizerFile, tmp.resolve(TOKENIZER), nt.added());
            String chatTemplate = copyOtherFiles(tokenizerFile.toAbsolutePath().getParent(), tmp, nt.added(), TOKENIZER_FILES, log);
            ObjectNode m = JSON.createObjectNode();
            m.put("preset", name);
            m.put("tokenizer", tokenizerFile.toAbsolutePath().normalize().toString());
            m.put("seed", opt.seed());
            m.put("parameters", params);
            m.put("dtype", dtype.name());
            writeJson(tmp.resolve(MANIFEST), describe(m, opt, shape.vocabSize(), vocab, nt.added(), chatTemplate));
            AtomicFiles.moveIntoPlace(tmp, out);
            log.accept("wrote " + out);
            return new Result(out, cfg, Collections.unmodifiableMap(nt.added()), shape.vocabSize(), chatTemplate);
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
    }

    /** The tokenizer's ids rounded up to a multiple of 64, and never below a published vocab_size. */
    static int presetVocab(Presets.Named preset, int tokens) {
        return Math.max(preset.publishedVocab() ? preset.shape().vocabSize() : 0, (tokens + 63) / 64 * 64);
    }

    /**
     * Before the long write: the largest tensor fits the heap as floats, and the disk holds the
     * weights; either failing names the sizes.
     */
    private static void requireRoom(Path out, ParamLayout layout, long weightBytes) throws IOException {
        ParamLayout.Entry largest = layout.entries().stream().max(Comparator.comparingLong(ParamLayout.Entry::size)).orElseThrow();
        long heap = Runtime.getRuntime().maxMemory();
        if (largest.size() * 4 > heap * 3 / 4)
            throw new BadInputException("--preset", "its largest tensor " + largest.name() + " needs " + bytesText(largest.size() * 4)
                    + " as floats, more than the JVM's heap of " + bytesText(heap) + " allows; raise it (HINTGRPO_JAVA_OPTS=-Xmx…)");
        Path parent = out.toAbsolutePath().getParent();
        AtomicFiles.probeFolder(parent);
        long free = Files.getFileStore(parent).getUsableSpace();
        if (weightBytes > free)
            throw new BadInputException(out.toString(), "the weights need " + bytesText(weightBytes) + ", the disk has " + bytesText(free) + " free");
    }

    private static String bytesText(long bytes) {
        return bytes >= 1e9 ? String.format(Locale.ROOT, "%.2f GB", bytes / 1e9) : String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }

    public static Result run(Path from, Path out, Options opt, Consumer<String> log) throws IOException {
        if (log == null) log = s -> { };
        if (!Files.exists(from)) throw new BadInputException(from.toString(), "does not exist");
        if (!Files.isDirectory(from)) throw new BadInputException(from.toString(), "not a directory (expected a Hugging Face model directory)");
        requireNewOutput(out);

        Path configFile = from.resolve(ModelDir.CONFIG);
        ModelConfig source = ModelConfig.load(configFile);
        ObjectNode configJson = (ObjectNode) JSON.readTree(Files.readString(configFile));
        String modelType = configJson.path("model_type").asText("qwen2");
        if (!modelType.equals("qwen2"))
            throw new BadInputException(configFile.toString(), "model_type \"" + modelType + "\" is not supported (Qwen2 / Qwen2.5 only)");

        Path tokenizerFile = from.resolve(TOKENIZER);
        if (!Files.isRegularFile(tokenizerFile))
            throw new BadInputException(tokenizerFile.toString(), "file not found (init needs the model's fast tokenizer, tokenizer.json)");
        NewTokens nt = newTokens(tokenizerFile);
        Map<String, Integer> added = nt.added();
        if (nt.tokensBefore() > source.vocabSize())
            throw new BadInputException(configFile.toString(), "vocab_size " + source.vocabSize() + " is smaller than the "
                    + nt.tokensBefore() + " token ids of " + tokenizerFile);
        int multiple = source.vocabSize() % 64 == 0 ? 64 : 1;
        int vocab = Math.max(source.vocabSize(), (nt.tokensAfter() + multiple - 1) / multiple * multiple);
        ModelConfig cfg = new ModelConfig(source.hiddenSize(), source.intermediateSize(), source.numHeads(), source.numKvHeads(),
                source.numLayers(), vocab, source.rmsNormEps(), source.ropeTheta(), source.tieWordEmbeddings(),
                source.maxPositionEmbeddings(), opt.audioDim(), opt.visionDim(),
                opt.audioDim() > 0 ? nt.audioId() : -1, opt.visionDim() > 0 ? nt.visionId() : -1, opt.projector());
        log.accept("adding " + added.size() + " special tokens " + added.keySet() + "; vocab_size " + source.vocabSize() + " → " + vocab);

        Path tmp = newTempDir(out);
        try {
            Safetensors.Dtype dtype;
            try (CpuKernels cpu = new CpuKernels(); Model model = new Model(cpu, cfg)) {
                dtype = fill(model, from, source.vocabSize(), nt.tokensBefore(), added.values(), opt.seed(), log);
                ModelDir.save(model, tmp, dtype);
            }
            // config.json: the original fields (token ids, generation defaults, ...) with ours over them
            String dtypeName = dtype == Safetensors.Dtype.BF16 ? "bfloat16" : "float32";
            configJson.setAll((ObjectNode) JSON.readTree(cfg.toJson(dtypeName)));
            if (configJson.has("dtype")) configJson.put("dtype", dtypeName); // transformers 5's name for torch_dtype
            writeJson(tmp.resolve(ModelDir.CONFIG), configJson);
            writeTokenizer(tokenizerFile, tmp.resolve(TOKENIZER), added);
            String chatTemplate = copyOtherFiles(from, tmp, added, null, log);
            ObjectNode m = JSON.createObjectNode();
            m.put("initialized_from", from.toAbsolutePath().normalize().toString());
            m.put("seed", opt.seed());
            describe(m, opt, source.vocabSize(), vocab, added, chatTemplate);
            m.put("new_rows", "mean of the embedding (and untied lm_head) rows of the original tokenizer's " + nt.tokensBefore() + " ids");
            writeJson(tmp.resolve(MANIFEST), m);
            AtomicFiles.moveIntoPlace(tmp, out);
            log.accept("wrote " + out);
            return new Result(out, cfg, Collections.unmodifiableMap(added), source.vocabSize(), chatTemplate);
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
    }

    /**
     * The tokens of {@link SpecialTokens#REQUIRED} a tokenizer lacks, with the ids they get (after
     * its highest, in that order), and the ids the modality placeholders will have.
     */
    private record NewTokens(int tokensBefore, Map<String, Integer> added, int audioId, int visionId) {
        int tokensAfter() {
            return tokensBefore + added.size();
        }
    }

    private static NewTokens newTokens(Path tokenizerFile) {
        try (Tokenizer tok = Tokenizer.load(tokenizerFile)) {
            Map<String, Integer> added = new LinkedHashMap<>();
            int next = tok.vocabSize();
            for (String t : SpecialTokens.REQUIRED) if (tok.idOf(t) < 0) added.put(t, next++);
            int audio = added.containsKey(SpecialTokens.AUDIO) ? added.get(SpecialTokens.AUDIO) : tok.idOf(SpecialTokens.AUDIO);
            int vision = added.containsKey(SpecialTokens.VISION) ? added.get(SpecialTokens.VISION) : tok.idOf(SpecialTokens.VISION);
            return new NewTokens(tok.vocabSize(), added, audio, vision);
        }
    }

    /** init writes a new model directory: {@code out} must not exist or be empty. */
    private static void requireNewOutput(Path out) throws IOException {
        if (Files.exists(out) && !isEmptyDirectory(out))
            throw new BadInputException(out.toString(), "already exists and is not an empty directory; init writes a new model directory");
    }

    /** The hidden folder beside {@code out} that the model is built in before the rename. */
    private static Path newTempDir(Path out) throws IOException {
        Path parent = out.toAbsolutePath().getParent();
        AtomicFiles.probeFolder(parent);
        Path tmp = parent.resolve("." + out.getFileName() + ".init-" + Long.toHexString(System.nanoTime()) + ".tmp");
        Files.createDirectory(tmp);
        return tmp;
    }

    /**
     * Fills every parameter: transformer tensors from the checkpoint (whose embedding and LM head
     * have {@code vocabBefore} rows), those two grown to the new vocabulary, projectors from the
     * seed. Returns the dtype to save in: BF16 for a BF16 checkpoint, F32 otherwise.
     */
    private static Safetensors.Dtype fill(Model model, Path from, int vocabBefore, int tokensBefore, Collection<Integer> newIds,
                                          long seed, Consumer<String> log) {
        ModelConfig cfg = model.config;
        try (ModelDir.Tensors tensors = ModelDir.Tensors.open(from)) {
            String source = tensors.source().toString();
            int projectors = 0;
            for (ParamLayout.Entry e : model.layout.entries()) {
                String name = e.name();
                if (name.startsWith("multi_modal_projector.")) {
                    model.initialize(name, seed);
                    projectors++;
                    continue;
                }
                if (!tensors.has(name)) throw new BadInputException(source, "tensor " + name + " required by config.json is missing");
                boolean rows = name.equals("model.embed_tokens.weight") || name.equals(model.lmHeadName());
                int[] shape = tensors.info(name).shape();
                int[] expected = rows ? new int[]{vocabBefore, cfg.hiddenSize()} : e.shape();
                if (!Arrays.equals(shape, expected))
                    throw new BadInputException(tensors.fileOf(name).toString(), "tensor " + name + " has shape "
                            + Arrays.toString(shape) + ", config.json expects " + Arrays.toString(expected));
                float[] values = tensors.read(name);
                if (rows) values = grow(values, vocabBefore, cfg.vocabSize(), cfg.hiddenSize(), tokensBefore, newIds);
                model.upload(name, values);
            }
            log.accept("initialised " + projectors + " projector tensors from seed " + seed + "; copied the rest from " + source);
            boolean bf16 = tensors.info("model.embed_tokens.weight").dtype().equals("BF16");
            return bf16 ? Safetensors.Dtype.BF16 : Safetensors.Dtype.F32;
        }
    }

    /** The matrix with rows up to {@code vocab}; new token rows and new padding rows = mean of the first {@code meanRows} rows. */
    static float[] grow(float[] old, int oldRows, int vocab, int hidden, int meanRows, Collection<Integer> newIds) {
        double[] sum = new double[hidden];
        for (int r = 0; r < meanRows; r++)
            for (int j = 0; j < hidden; j++) sum[j] += old[r * hidden + j];
        float[] mean = new float[hidden];
        for (int j = 0; j < hidden; j++) mean[j] = (float) (sum[j] / meanRows);
        float[] out = Arrays.copyOf(old, vocab * hidden);
        for (int r = oldRows; r < vocab; r++) System.arraycopy(mean, 0, out, r * hidden, hidden);
        for (int id : newIds) System.arraycopy(mean, 0, out, id * hidden, hidden);
        return out;
    }

    /**
     * tokenizer.json into the new model: copied byte for byte when nothing is added, else with the
     * new tokens appended, checked to encode to the ids their rows were given.
     */
    private static void writeTokenizer(Path source, Path target, Map<String, Integer> added) throws IOException {
        if (added.isEmpty()) {
            Files.copy(source, target);
            return;
        }
        writeJson(target, withAddedTokens((ObjectNode) JSON.readTree(Files.readString(source)), added));
        checkAddedIds(target, source, added);
    }

    /** tokenizer.json with the new tokens appended to added_tokens as special tokens; everything else as it was. */
    private static ObjectNode withAddedTokens(ObjectNode tokenizer, Map<String, Integer> added) {
        JsonNode list = tokenizer.get("added_tokens");
        ArrayNode tokens = list instanceof ArrayNode a ? a : tokenizer.putArray("added_tokens");
        added.forEach((content, id) -> {
            ObjectNode t = tokens.addObject();
            t.put("id", id);
            t.put("content", content);
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        });
        return tokenizer;
    }

    /**
     * The tokenizers library numbers added tokens after the model's vocabulary whatever ids the file
     * gives them, so a vocabulary with gaps in its ids would encode the new tokens to other ids
     * than the rows init filled: refuse it.
     */
    private static void checkAddedIds(Path written, Path source, Map<String, Integer> added) {
        try (Tokenizer tok = Tokenizer.load(written)) {
            for (Map.Entry<String, Integer> e : added.entrySet()) {
                int[] ids = tok.encode(e.getKey());
                if (ids.length != 1 || ids[0] != e.getValue())
                    throw new BadInputException(source.toString(), "after adding " + e.getKey() + " as id " + e.getValue()
                            + " the tokenizer encodes it as " + Arrays.toString(ids) + " (are the model.vocab ids contiguous from 0?)");
            }
        }
    }

    /**
     * Copies the source's other top-level files ({@code only} null), or just those named in
     * {@code only}. The ones that list special tokens (tokenizer_config.json's added_tokens_decoder
     * and additional_special_tokens, special_tokens_map.json, added_tokens.json,
     * generation_config.json's eos_token_id where the end of turn is new) get the new tokens; the
     * rest, chat template included, is copied byte for byte. Returns the file that holds the chat
     * template, or null.
     */
    private static String copyOtherFiles(Path from, Path to, Map<String, Integer> added, List<String> only, Consumer<String> log)
            throws IOException {
        String chatTemplate = null;
        List<String> skipped = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(from)) {
            files = s.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path f : files) {
            String name = f.getFileName().toString();
            if (only != null && !only.contains(name)) continue;
            if (Set.of(ModelDir.CONFIG, ModelDir.INDEX, TOKENIZER, MANIFEST).contains(name) || name.startsWith(".")) continue;
            if (WEIGHT_SUFFIXES.stream().anyMatch(name::endsWith)) {
                if (!name.startsWith("model") || !name.endsWith(".safetensors")) skipped.add(name);
                continue;
            }
            Path target = to.resolve(name);
            if (name.equals("chat_template.jinja") || name.equals("chat_template.json")) chatTemplate = name;
            if (name.equals("tokenizer_config.json") && JSON.readTree(Files.readString(f)).has("chat_template")) chatTemplate = name;
            boolean lists = List.of("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json").contains(name)
                    || name.equals("generation_config.json") && added.containsKey(SpecialTokens.IM_END);
            if (added.isEmpty() || !lists) {
                Files.copy(f, target);
                continue;
            }
            JsonNode root = JSON.readTree(Files.readString(f));
            if (!(root instanceof ObjectNode o)) throw new BadInputException(f.toString(), "expected a JSON object");
            switch (name) {
                case "tokenizer_config.json" -> {
                    if (o.get("added_tokens_decoder") instanceof ObjectNode dec)
                        added.forEach((content, id) -> dec.putObject(String.valueOf(id)).put("content", content).put("lstrip", false)
                                .put("normalized", false).put("rstrip", false).put("single_word", false).put("special", true));
                    if (o.get("additional_special_tokens") instanceof ArrayNode extra) added.keySet().forEach(extra::add);
                }
                case "special_tokens_map.json" -> {
                    if (o.get("additional_special_tokens") instanceof ArrayNode extra) added.keySet().forEach(extra::add);
                }
                case "added_tokens.json" -> added.forEach(o::put);
                default -> { // generation_config.json, the end of turn being new
                    Integer imEnd = added.get(SpecialTokens.IM_END);
                    if (o.has("eos_token_id")) {
                        JsonNode eos = o.get("eos_token_id");
                        ArrayNode ids = JSON.createArrayNode();
                        if (eos.isArray()) ids.addAll((ArrayNode) eos);
                        else if (!eos.isNull()) ids.add(eos);
                        ids.add(imEnd);
                        o.set("eos_token_id", ids);
                    }
                }
            }
            writeJson(target, o);
        }
        if (!skipped.isEmpty()) log.accept("left out weights in other formats (stale after init): " + String.join(", ", skipped));
        return chatTemplate;
    }

    /** The manifest's fields common to both ways of init: modalities, vocabulary, added tokens, chat template, prompt. */
    private static ObjectNode describe(ObjectNode m, Options opt, int vocabBefore, int vocab, Map<String, Integer> added,
                                       String chatTemplate) {
        m.put("audio_feature_size", opt.audioDim());
        m.put("vision_feature_size", opt.visionDim());
        m.put("projector_type", opt.projector());
        m.put("vocab_size_before", vocabBefore);
        m.put("vocab_size", vocab);
        ObjectNode tokens = m.putObject("added_tokens");
        added.forEach(tokens::put);
        m.put("chat_template_kept", chatTemplate != null);
        if (chatTemplate != null) m.put("chat_template_file", chatTemplate);
        m.put("prompt", "hintgrpo trains and evaluates with DcFormat's prompt (ChatML user turn, no system message), "
                + "not the chat template; the template is kept unchanged for use outside hintgrpo");
        return m;
    }

    private static void writeJson(Path file, JsonNode node) throws IOException {
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node) + "\n");
    }

    private static boolean isEmptyDirectory(Path p) throws IOException {
        if (!Files.isDirectory(p)) return false;
        try (Stream<Path> s = Files.list(p)) {
            return s.findAny().isEmpty();
        }
    }

    private static void deleteTree(Path root) {
        try {
            AtomicFiles.deleteTree(root);
        } catch (IOException ignored) {
            // best effort: the original error matters more than a leftover hidden folder
        }
    }
}
