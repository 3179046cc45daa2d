package io.hintgrpo.trainer.data;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.hintgrpo.trainer.data.Lexicon.MEDIUM;
import static io.hintgrpo.trainer.data.Lexicon.STRONG;
import static io.hintgrpo.trainer.data.Lexicon.WEAK;

/**
 * One domain of the synthetic corpus: what people talk about and how (aspects, sentence templates,
 * fillers, domain-only sentiment and neutral words) and how its recordings differ (feature offsets,
 * scales and noise), so a model trained on one domain meets a shift on the other.
 * Templates hold {@code {aspect}} and {@code {phrase}} slots.
 */
record SynthDomain(String name, List<String> aspects, List<String> templates, String extraClause,
                   List<String> openers, List<String> closers,
                   Map<String, Float> sentimentWords, List<String> neutralWords, FeatureStyle style) {

    /**
     * Recording statistics: pitch and energy baselines, how strongly energy and smiles show,
     * a resting brow offset, per-frame noise, per-speaker spread of the informative dimensions,
     * and the mean of the pure-noise dimensions.
     */
    record FeatureStyle(float pitchOffset, float energyOffset, float energyScale, float smileScale, float browOffset,
                        float frameNoise, float speakerSpread, float noiseDimMean) {}

    static final SynthDomain REVIEWS = new SynthDomain("reviews",
            List.of("movie", "plot", "acting", "ending", "soundtrack", "script", "cast", "dialogue", "pacing", "camera work"),
            List.of("the {aspect} was {phrase}", "i thought the {aspect} was {phrase}",
                    "honestly the {aspect} is {phrase}", "the {aspect} felt {phrase} to me"),
            "and the {aspect} was {phrase}",
            List.of("well", "so", "um", "you know", "overall"),
            List.of("i guess", "to be fair", "in the end", "this time"),
            words("charming", WEAK, "gripping", MEDIUM, "brilliant", STRONG,
                    "bland", -WEAK, "boring", -MEDIUM, "dreadful", -STRONG),
            List.of("standard", "conventional"),
            new FeatureStyle(0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.25f, 0.25f, 0.0f));

    static final SynthDomain INTERVIEWS = new SynthDomain("interviews",
            List.of("job", "week", "team", "project", "commute", "manager", "schedule", "workload", "office", "interview"),
            List.of("my {aspect} has been {phrase}", "i feel my {aspect} is {phrase}",
                    "to be honest the {aspect} was {phrase}", "working on the {aspect} is {phrase}"),
            "and my {aspect} is {phrase}",
            List.of("well", "so", "um", "you know", "lately"),
            List.of("i guess", "to be fair", "in the end", "these days"),
            words("calm", WEAK, "rewarding", MEDIUM, "thrilling", STRONG,
                    "tiring", -WEAK, "stressful", -MEDIUM, "miserable", -STRONG),
            List.of("routine", "usual"),
            new FeatureStyle(0.6f, 0.3f, 0.7f, 0.8f, 0.2f, 0.35f, 0.30f, 0.5f));

    static final List<SynthDomain> ALL = List.of(REVIEWS, INTERVIEWS);

    private static Map<String, Float> words(Object... kv) {
        Map<String, Float> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], (Float) kv[i + 1]);
        return Collections.unmodifiableMap(m);
    }
}
