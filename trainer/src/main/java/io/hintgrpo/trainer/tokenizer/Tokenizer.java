package io.hintgrpo.trainer.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.io.JsonFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} (word-level, BPE, ...) run by the Rust tokenizers library
 * through DJL. Its native library ships inside the DJL jar and is extracted on first use to
 * {@code ~/.djl.ai} (or {@code $DJL_CACHE_DIR}); nothing is downloaded. Encoding adds no special
 * tokens of its own and never truncates; decoding keeps special tokens, so for the word-level
 * tokenizers this project writes {@code decode(encode(x)).equals(x)} for any x made of known words.
 */
public final class Tokenizer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HuggingFaceTokenizer hf;
    private final Map<String, Integer> idOfToken;
    private final int vocabSize;
    private final String where;

    /** Ids of the tokens in {@link SpecialTokens#REQUIRED}. */
    public record Specials(int pad, int imStart, int imEnd, int audio, int vision,
                           int discOpen, int discClose, int calibOpen, int calibClose, int answerOpen, int answerClose) {
        /** Where a response ends: the answer's closing tag, or the end of the turn (kept in the completion). */
        public int[] responseStops() {
            return new int[]{answerClose, imEnd};
        }
    }

    private Tokenizer(HuggingFaceTokenizer hf, Map<String, Integer> idOfToken, int vocabSize, String where) {
        this.hf = hf;
        this.idOfToken = idOfToken;
        this.vocabSize = vocabSize;
        this.where = where;
    }

    /** Loads a tokenizer.json file, or the tokenizer.json inside a model directory. */
    public static Tokenizer load(Path fileOrModelDir) {
        Path file = Files.isDirectory(fileOrModelDir) ? fileOrModelDir.resolve("tokenizer.json") : fileOrModelDir;
        String where = file.toString();
        JsonNode root = JsonFiles.read(file);
        Map<String, Integer> ids = tokenIds(root, where);
        int size = 0;
        for (int id : ids.values()) size = Math.max(size, id + 1);
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(file)
                    .optAddSpecialTokens(false)
                    .optTruncation(false) // DJL truncates to 512 tokens unless told not to
                    .optPadding(false)
                    .build();
        } catch (IOException | RuntimeException e) {
            throw new BadInputException(where, "not a usable tokenizer.json: " + e.getMessage());
        }
        return new Tokenizer(hf, ids, size, where);
    }

    /** Token → id over the model's vocabulary and the added tokens. */
    private static Map<String, Integer> tokenIds(JsonNode root, String where) {
        if (root == null || !root.isObject()) throw new BadInputException(where, "expected a JSON object");
        Map<String, Integer> ids = new HashMap<>();
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) {
            for (Map.Entry<String, JsonNode> e : vocab.properties()) ids.put(e.getKey(), e.getValue().asInt());
        } else if (vocab.isArray()) { // Unigram: [[piece, score], ...], the id is the position
            for (int i = 0; i < vocab.size(); i++) ids.put(vocab.get(i).path(0).asText(), i);
        } else {
            throw new BadInputException(where, "no model.vocab in tokenizer.json");
        }
        for (JsonNode t : root.path("added_tokens")) ids.put(t.path("content").asText(), t.path("id").asInt());
        return ids;
    }

    public int[] encode(String text) {
        Encoding enc = hf.encode(text, false, false);
        long[] ids = enc.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = (int) ids[i];
        return out;
    }

    /** Text of the ids, special tokens included; ids outside the vocabulary (a model's padding rows) decode to nothing. */
    public String decode(int[] ids) {
        List<Long> known = new ArrayList<>(ids.length);
        for (int id : ids) if (id >= 0 && id < vocabSize) known.add((long) id);
        long[] arr = new long[known.size()];
        for (int i = 0; i < arr.length; i++) arr[i] = known.get(i);
        return hf.decode(arr, false);
    }

    /** A response's text: its tokens decoded, a final end-of-turn token left out (it ends the turn, it is not text). */
    public String responseText(int[] ids, int count) {
        int n = count > 0 && ids[count - 1] == idOf(SpecialTokens.IM_END) ? count - 1 : count;
        return decode(java.util.Arrays.copyOf(ids, n));
    }

    /** One more than the largest token id (the model's vocab_size must be at least this). */
    public int vocabSize() {
        return vocabSize;
    }

    /** Id of a token (e.g. a special token), or −1 where the tokenizer lacks it. */
    public int idOf(String token) {
        Integer id = idOfToken.get(token);
        return id == null ? -1 : id;
    }

    /** Whether every token in {@link SpecialTokens#REQUIRED} is present. */
    public boolean hasSpecials() {
        for (String t : SpecialTokens.REQUIRED) if (idOf(t) < 0) return false;
        return true;
    }

    /** Ids of the special tokens; fails naming the missing ones (a raw Qwen tokenizer lacks the DC tags until init adds them). */
    public Specials specials() {
        List<String> missing = new ArrayList<>();
        for (String t : SpecialTokens.REQUIRED) if (idOf(t) < 0) missing.add(t);
        if (!missing.isEmpty()) throw new BadInputException(where, "tokenizer lacks special tokens " + missing);
        return new Specials(idOf(SpecialTokens.PAD), idOf(SpecialTokens.IM_START), idOf(SpecialTokens.IM_END),
                idOf(SpecialTokens.AUDIO), idOf(SpecialTokens.VISION),
                idOf(SpecialTokens.DISC_OPEN), idOf(SpecialTokens.DISC_CLOSE),
                idOf(SpecialTokens.CALIB_OPEN), idOf(SpecialTokens.CALIB_CLOSE),
                idOf(SpecialTokens.ANSWER_OPEN), idOf(SpecialTokens.ANSWER_CLOSE));
    }

    @Override
    public void close() {
        hf.close();
    }
}
