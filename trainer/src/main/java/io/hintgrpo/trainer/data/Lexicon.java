package io.hintgrpo.trainer.data;

import io.hintgrpo.trainer.format.Polarity;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The synthetic corpus's sentiment lexicon: words graded by strength, modifiers that scale them,
 * and negation that flips and damps them. {@link #score} is the sentiment a text-only reader gets
 * from the words; the generator picks phrases by it, and tests use it to show that part of the
 * corpus cannot be scored from the text alone.
 */
public final class Lexicon {
    private Lexicon() {}

    public static final float WEAK = 1.0f, MEDIUM = 2.0f, STRONG = 2.8f;
    /** Modifier → factor on the word it precedes. */
    static final Map<String, Float> MODIFIERS = orderedMap("somewhat", 0.6f, "very", 1.25f, "extremely", 1.5f);
    static final String NEGATION = "not";
    /** "not good" is mildly negative, "not terrible" mildly positive. */
    static final float NEGATION_FACTOR = -0.4f;

    /** Sentiment words every domain uses: word → signed strength. */
    static final Map<String, Float> SHARED_WORDS = orderedMap(
            "nice", WEAK, "decent", WEAK, "pleasant", WEAK,
            "good", MEDIUM, "enjoyable", MEDIUM, "solid", MEDIUM,
            "excellent", STRONG, "wonderful", STRONG, "fantastic", STRONG,
            "mediocre", -WEAK, "dull", -WEAK, "weak", -WEAK,
            "bad", -MEDIUM, "poor", -MEDIUM, "disappointing", -MEDIUM,
            "terrible", -STRONG, "awful", -STRONG, "horrible", -STRONG);
    /** Words with no sentiment that still fill the adjective slot. */
    static final List<String> SHARED_NEUTRAL = List.of("okay", "average", "ordinary", "normal");

    /** Every sentiment word of every domain (domains never disagree on a word's strength). */
    static final Map<String, Float> ALL_WORDS = new LinkedHashMap<>();

    static {
        ALL_WORDS.putAll(SHARED_WORDS);
        for (SynthDomain d : SynthDomain.ALL) ALL_WORDS.putAll(d.sentimentWords());
    }

    /** A sentiment phrase that can fill a template's adjective slot, with its lexicon score. */
    public record Phrase(String text, float score) {
        public Polarity polarity() {
            return Polarity.of(score);
        }
    }

    /** Every phrase a domain can say: neutral words, each sentiment word bare, modified and negated. */
    static List<Phrase> phrases(SynthDomain domain) {
        List<Phrase> out = new ArrayList<>();
        List<String> neutral = new ArrayList<>(SHARED_NEUTRAL);
        neutral.addAll(domain.neutralWords());
        for (String w : neutral) out.add(new Phrase(w, 0f));
        Map<String, Float> words = new LinkedHashMap<>(SHARED_WORDS);
        words.putAll(domain.sentimentWords());
        words.forEach((w, s) -> {
            out.add(new Phrase(w, s));
            if (Math.abs(s) <= MEDIUM) out.add(new Phrase("somewhat " + w, clamp(s * MODIFIERS.get("somewhat"))));
            out.add(new Phrase("very " + w, clamp(s * MODIFIERS.get("very"))));
            if (Math.abs(s) >= MEDIUM) out.add(new Phrase("extremely " + w, clamp(s * MODIFIERS.get("extremely"))));
            out.add(new Phrase(NEGATION + " " + w, clamp(s * NEGATION_FACTOR)));
        });
        return out;
    }

    /**
     * Sentiment of a text from its words alone: each sentiment word's strength, scaled by a
     * modifier right before it and flipped/damped by a "not" before that, summed and clipped to [-3, 3].
     */
    public static float score(String text) {
        String[] words = text.toLowerCase(Locale.ROOT).split("[^a-z]+");
        float total = 0;
        for (int i = 0; i < words.length; i++) {
            Float s = ALL_WORDS.get(words[i]);
            if (s == null) continue;
            float v = s;
            int before = i - 1;
            if (before >= 0 && MODIFIERS.containsKey(words[before])) v *= MODIFIERS.get(words[before--]);
            if (before >= 0 && words[before].equals(NEGATION)) v *= NEGATION_FACTOR;
            total += v;
        }
        return clamp(total);
    }

    static float clamp(float v) {
        return Math.max(-3f, Math.min(3f, v));
    }

    @SuppressWarnings("unchecked")
    static <V> Map<String, V> orderedMap(Object... kv) {
        Map<String, V> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], (V) kv[i + 1]);
        return java.util.Collections.unmodifiableMap(m);
    }
}
