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
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
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
 * The directory is built under a temporary name beside {@code out} and renamed into place, so
 * {@code out} either holds the whole model or nothing. {@value #MANIFEST} records what init did,
 * including that the chat template was kept: hintgrpo itself prompts with {@code DcFormat}.
 */
public final class ModelInit {
    private ModelInit() {}

    /** What init did, written beside the model. */
    public static final String MANIFEST = "hintgrpo.json";
    private static final String TOKENIZER = "tokenizer.json";
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Weights in formats init does not rewrite: copying them would leave stale tensors with the old vocabulary. */
    private static final List<String> WEIGHT_SUFFIXES = List.of(".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack",
            ".ckpt", ".gguf", ".onnx");

    /** Modality feature widths (0 = modality absent), projector type ("mlp" or "linear") and the projectors' seed. */
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
     * @param vocabBefore vocab_size of the original config.json
     * @param chatTemplate the file that holds the (unchanged) chat template, or null when the source has none
     */
    public record Result(Path dir, ModelConfig config, Map<String, Integer> addedTokens, int vocabBefore, String chatTemplate) {}

    /**
     * The embedded default model (the demo's shape: {@link SynthCorpus#modelConfig}) for a corpus's
     * tokenizer, initialised from seed, written with the tokenizer as a new model directory.
     */
    public static Path embedded(Path tokenizerJson, Path out, long seed, Consumer<String> log) throws IOException {
        if (Files.exists(out) && !isEmptyDirectory(out))
            throw new BadInputException(out.toString(), "already exists and is not an empty directory; init writes a new model directory");
        if (!Files.isRegularFile(tokenizerJson)) throw new BadInputException(tokenizerJson.toString(), "file not found (a corpus of data synth has one)");
        Path parent = out.toAbsolutePath().getParent();
        AtomicFiles.probeFolder(parent);
        Path tmp = parent.resolve("." + out.getFileName() + ".init-" + Long.toHexString(System.nanoTime()) + ".tmp");
        Files.createDirectory(tmp);
        try (Tokenizer tok = Tokenizer.load(tokenizerJson); CpuKernels cpu = new CpuKernels();
             Model model = new Model(cpu, SynthCorpus.modelConfig(tok))) {
            model.initialize(seed);
            ModelDir.save(model, tmp, Safetensors.Dtype.F32);
            Files.copy(tokenizerJson, tmp.resolve(TOKENIZER));
            if (Files.exists(out)) Files.delete(out); // empty, checked above
            AtomicFiles.moveIntoPlace(tmp, out);
            log.accept(String.format(java.util.Locale.ROOT, "wrote %s: the embedded default model, %,d parameters, seed %d",
                    out, model.layout.count(), seed));
            return out;
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
    }

    public static Result run(Path from, Path out, Options opt, Consumer<String> log) throws IOException {
        if (log == null) log = s -> { };
        if (!Files.exists(from)) throw new BadInputException(from.toString(), "does not exist");
        if (!Files.isDirectory(from)) throw new BadInputException(from.toString(), "not a directory (expected a Hugging Face model directory)");
        if (Files.exists(out) && !isEmptyDirectory(out))
            throw new BadInputException(out.toString(), "already exists and is not an empty directory; init writes a new model directory");

        Path configFile = from.resolve(ModelDir.CONFIG);
        ModelConfig source = ModelConfig.load(configFile);
        ObjectNode configJson = (ObjectNode) JSON.readTree(Files.readString(configFile));
        String modelType = configJson.path("model_type").asText("qwen2");
        if (!modelType.equals("qwen2"))
            throw new BadInputException(configFile.toString(), "model_type \"" + modelType + "\" is not supported (Qwen2 / Qwen2.5 only)");

        Path tokenizerFile = from.resolve(TOKENIZER);
        if (!Files.isRegularFile(tokenizerFile))
            throw new BadInputException(tokenizerFile.toString(), "file not found (init needs the model's fast tokenizer, tokenizer.json)");
        Map<String, Integer> added = new LinkedHashMap<>();
        int tokensBefore, audioId, visionId;
        try (Tokenizer tok = Tokenizer.load(tokenizerFile)) {
            tokensBefore = tok.vocabSize();
            if (tokensBefore > source.vocabSize())
                throw new BadInputException(configFile.toString(), "vocab_size " + source.vocabSize() + " is smaller than the "
                        + tokensBefore + " token ids of " + tokenizerFile);
            int next = tokensBefore;
            for (String t : SpecialTokens.REQUIRED) if (tok.idOf(t) < 0) added.put(t, next++);
            audioId = added.containsKey(SpecialTokens.AUDIO) ? added.get(SpecialTokens.AUDIO) : tok.idOf(SpecialTokens.AUDIO);
            visionId = added.containsKey(SpecialTokens.VISION) ? added.get(SpecialTokens.VISION) : tok.idOf(SpecialTokens.VISION);
        }
        int tokensAfter = tokensBefore + added.size();
        int multiple = source.vocabSize() % 64 == 0 ? 64 : 1;
        int vocab = Math.max(source.vocabSize(), (tokensAfter + multiple - 1) / multiple * multiple);
        ModelConfig cfg = new ModelConfig(source.hiddenSize(), source.intermediateSize(), source.numHeads(), source.numKvHeads(),
                source.numLayers(), vocab, source.rmsNormEps(), source.ropeTheta(), source.tieWordEmbeddings(),
                source.maxPositionEmbeddings(), opt.audioDim(), opt.visionDim(),
                opt.audioDim() > 0 ? audioId : -1, opt.visionDim() > 0 ? visionId : -1, opt.projector());
        log.accept("adding " + added.size() + " special tokens " + added.keySet() + "; vocab_size " + source.vocabSize() + " → " + vocab);

        Path parent = out.toAbsolutePath().getParent();
        AtomicFiles.probeFolder(parent);
        Path tmp = parent.resolve("." + out.getFileName() + ".init-" + Long.toHexString(System.nanoTime()) + ".tmp");
        Files.createDirectory(tmp);
        try {
            Safetensors.Dtype dtype;
            try (CpuKernels cpu = new CpuKernels(); Model model = new Model(cpu, cfg)) {
                dtype = fill(model, from, source.vocabSize(), tokensBefore, added.values(), opt.seed(), log);
                ModelDir.save(model, tmp, dtype);
            }
            // config.json: the original fields (token ids, generation defaults, ...) with ours over them
            String dtypeName = dtype == Safetensors.Dtype.BF16 ? "bfloat16" : "float32";
            configJson.setAll((ObjectNode) JSON.readTree(cfg.toJson(dtypeName)));
            if (configJson.has("dtype")) configJson.put("dtype", dtypeName); // transformers 5's name for torch_dtype
            writeJson(tmp.resolve(ModelDir.CONFIG), configJson);
            writeJson(tmp.resolve(TOKENIZER), withAddedTokens((ObjectNode) JSON.readTree(Files.readString(tokenizerFile)), added));
            checkAddedIds(tmp.resolve(TOKENIZER), tokenizerFile, added);
            String chatTemplate = copyOtherFiles(from, tmp, added, log);
            writeJson(tmp.resolve(MANIFEST), manifest(from, opt, source.vocabSize(), vocab, tokensBefore, added, chatTemplate));
            AtomicFiles.moveIntoPlace(tmp, out);
            log.accept("wrote " + out);
            return new Result(out, cfg, java.util.Collections.unmodifiableMap(added), source.vocabSize(), chatTemplate);
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
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
     * Copies the source's other top-level files. The ones that list special tokens
     * (tokenizer_config.json's added_tokens_decoder and additional_special_tokens,
     * special_tokens_map.json, added_tokens.json, generation_config.json's eos_token_id where the end
     * of turn is new) get the new tokens; the rest, chat template included, is copied byte for byte.
     * Returns the file that holds the chat template, or null.
     */
    private static String copyOtherFiles(Path from, Path to, Map<String, Integer> added, Consumer<String> log) throws IOException {
        String chatTemplate = null;
        List<String> skipped = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(from)) {
            files = s.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path f : files) {
            String name = f.getFileName().toString();
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

    private static ObjectNode manifest(Path from, Options opt, int vocabBefore, int vocab, int tokensBefore,
                                       Map<String, Integer> added, String chatTemplate) {
        ObjectNode m = JSON.createObjectNode();
        m.put("initialized_from", from.toAbsolutePath().normalize().toString());
        m.put("seed", opt.seed());
        m.put("audio_feature_size", opt.audioDim());
        m.put("vision_feature_size", opt.visionDim());
        m.put("projector_type", opt.projector());
        m.put("vocab_size_before", vocabBefore);
        m.put("vocab_size", vocab);
        ObjectNode tokens = m.putObject("added_tokens");
        added.forEach(tokens::put);
        m.put("new_rows", "mean of the embedding (and untied lm_head) rows of the original tokenizer's " + tokensBefore + " ids");
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
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort: the original error matters more than a leftover hidden folder
        }
    }
}
