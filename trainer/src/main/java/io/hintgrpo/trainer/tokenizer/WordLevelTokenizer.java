package io.hintgrpo.trainer.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Writes a word-level Hugging Face {@code tokenizer.json} for a closed vocabulary (the synthetic
 * corpus) and mirrors its pre-tokenizer in Java so the vocabulary can be collected from text.
 *
 * <p>Splitting rules, in order: special tokens are matched first and kept whole; a newline is a
 * piece of its own; a space becomes {@code ▁} and starts a new piece ({@code "very good"} →
 * {@code very ▁good}; a space before punctuation or a digit is a lone {@code ▁}); every
 * punctuation character and every digit is a piece of its own, so any score such as
 * {@code -1.8} tokenizes as {@code - 1 . 8}. Decoding concatenates the pieces and turns {@code ▁}
 * back into a space, so decode(encode(x)) == x exactly whenever every piece of x is in the
 * vocabulary (no normalization: case and every space are kept). Other whitespace (tabs, \r) is
 * not split and only round-trips inside known words.
 */
public final class WordLevelTokenizer {
    private WordLevelTokenizer() {}

    public static final String SPACE = "\u2581"; // ▁, as sentencepiece and HF's Metaspace write it
    private static final String ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Special tokens of a word-level tokenizer, ids 0.. in this order. */
    public static List<String> specialTokens() {
        List<String> out = new ArrayList<>();
        out.add(SpecialTokens.PAD);
        out.add(SpecialTokens.IM_START);
        out.add(SpecialTokens.IM_END);
        out.add(SpecialTokens.UNK);
        for (String t : SpecialTokens.REQUIRED) if (!out.contains(t)) out.add(t);
        return out;
    }

    /** The pieces the written tokenizer's pre-tokenizer cuts {@code text} into (special tokens kept whole). */
    public static List<String> pieces(String text) {
        List<String> out = new ArrayList<>();
        List<String> specials = specialTokens();
        int i = 0, plainStart = 0;
        while (i < text.length()) {
            String special = null;
            for (String s : specials) if (text.startsWith(s, i)) { special = s; break; }
            if (special == null) { i++; continue; }
            splitPlain(text.substring(plainStart, i), out);
            out.add(special);
            i += special.length();
            plainStart = i;
        }
        splitPlain(text.substring(plainStart), out);
        return out;
    }

    private static void splitPlain(String text, List<String> out) {
        StringBuilder piece = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == ' ') {
                flush(piece, out);
                piece.append(SPACE); // the space opens the next piece
            } else if (c == '\n' || isPunctuation(c) || Character.isDigit(c)) {
                flush(piece, out);
                out.add(String.valueOf(c));
            } else {
                piece.append(c);
            }
        }
        flush(piece, out);
    }

    private static void flush(StringBuilder piece, List<String> out) {
        if (piece.length() > 0) out.add(piece.toString());
        piece.setLength(0);
    }

    /** Punctuation as the HF pre-tokenizer sees it: ASCII punctuation or a Unicode P* category. */
    static boolean isPunctuation(char c) {
        if (ASCII_PUNCTUATION.indexOf(c) >= 0) return true;
        return switch (Character.getType(c)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                    Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                    Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }

    /**
     * The vocabulary for a set of texts: special tokens, then newline, {@code ▁}, ASCII
     * punctuation and digits (always pieces of their own), then every word piece of the
     * texts, each both bare and with a leading {@code ▁}, sorted. Token → id.
     */
    public static Map<String, Integer> vocabulary(Collection<String> texts) {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String s : specialTokens()) vocab.put(s, vocab.size());
        vocab.put("\n", vocab.size());
        vocab.put(SPACE, vocab.size());
        for (char c : ASCII_PUNCTUATION.toCharArray()) vocab.put(String.valueOf(c), vocab.size());
        for (char c = '0'; c <= '9'; c++) vocab.put(String.valueOf(c), vocab.size());
        TreeSet<String> words = new TreeSet<>();
        for (String text : texts)
            for (String p : pieces(text)) {
                if (vocab.containsKey(p) || p.equals(SPACE)) continue;
                String bare = p.startsWith(SPACE) ? p.substring(SPACE.length()) : p;
                if (bare.isEmpty() || vocab.containsKey(bare)) continue;
                words.add(bare);
            }
        for (String w : words) {
            vocab.put(w, vocab.size());
            vocab.put(SPACE + w, vocab.size());
        }
        return vocab;
    }

    /** The tokenizer.json text for a vocabulary from {@link #vocabulary}. */
    public static String json(Map<String, Integer> vocab) {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (String s : specialTokens()) {
            ObjectNode t = added.addObject();
            t.put("id", vocab.get(s));
            t.put("content", s);
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Sequence");
        ArrayNode steps = pre.putArray("pretokenizers");
        ObjectNode newline = steps.addObject();
        newline.put("type", "Split");
        newline.putObject("pattern").put("String", "\n");
        newline.put("behavior", "Isolated");
        newline.put("invert", false);
        steps.add(metaspace());
        steps.addObject().put("type", "Punctuation").put("behavior", "Isolated");
        steps.addObject().put("type", "Digits").put("individual_digits", true);
        root.putNull("post_processor");
        root.set("decoder", metaspace());
        ObjectNode model = root.putObject("model");
        model.put("type", "WordLevel");
        ObjectNode v = model.putObject("vocab");
        vocab.forEach(v::put);
        model.put("unk_token", SpecialTokens.UNK);
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static ObjectNode metaspace() {
        ObjectNode m = JSON.createObjectNode();
        m.put("type", "Metaspace");
        m.put("replacement", SPACE);
        m.put("prepend_scheme", "never");
        m.put("split", true);
        return m;
    }
}
