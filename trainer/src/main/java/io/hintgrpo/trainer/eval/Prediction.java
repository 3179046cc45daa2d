package io.hintgrpo.trainer.eval;

import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.format.Polarity;

/**
 * One evaluated utterance: its domain and label, the predicted score (NaN = no parseable answer),
 * the polarity the disc phase named (null = none), whether the response followed the grammar, and
 * the utterance's subset (hard, easy, or null where the corpus does not say).
 */
public record Prediction(String domain, float label, float score, Polarity disc, boolean formatValid, String subset) {
    /** From a parsed model response. */
    public static Prediction of(String domain, float label, ParsedResponse r) {
        return of(domain, label, r, null);
    }

    public static Prediction of(String domain, float label, ParsedResponse r, String subset) {
        return new Prediction(domain, label, r.score(), r.polarity(), r.formatValid(), subset);
    }

    /** A bare score (a regression baseline such as the training mean): a valid response whose polarity is the score's class. */
    public static Prediction ofScore(String domain, float label, float score) {
        return ofScore(domain, label, score, null);
    }

    public static Prediction ofScore(String domain, float label, float score, String subset) {
        return new Prediction(domain, label, score, Float.isNaN(score) ? null : Polarity.of(score), !Float.isNaN(score), subset);
    }

    public boolean parsed() {
        return !Float.isNaN(score);
    }

    /** What every regression metric uses: the score, or 0 where the answer was unparseable. */
    public double scoreOrZero() {
        return parsed() ? score : 0.0;
    }
}
