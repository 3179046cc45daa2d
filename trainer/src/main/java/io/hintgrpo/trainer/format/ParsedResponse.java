package io.hintgrpo.trainer.format;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * What {@link DcParser} found in a model's response. {@code problem} is null exactly when the
 * response follows the grammar; the polarity, score and segments are reported whenever they can be
 * read, valid or not (a truncated response may still name its polarity).
 *
 * @param polarity the class the disc phase names, or null
 * @param score    the answer in [-3, 3], or NaN when missing, non-numeric or out of range
 * @param disc     text inside {@code <disc>…</disc>} (to the end where unterminated), or null; likewise calib and answer
 */
public record ParsedResponse(boolean formatValid, String problem, Polarity polarity, float score,
                             String disc, String calib, String answer) {
    public boolean hasScore() {
        return !Float.isNaN(score);
    }

    /**
     * format_valid, polarity (its word or null), score (or null) and problem (or null) into out:
     * the "parsed" of hintgrpo generate's lines and the "hintgrpo" extension of serve's choices.
     */
    public ObjectNode writeTo(ObjectNode out) {
        out.put("format_valid", formatValid);
        if (polarity == null) out.putNull("polarity");
        else out.put("polarity", polarity.word());
        if (hasScore()) out.put("score", score);
        else out.putNull("score");
        if (problem == null) out.putNull("problem");
        else out.put("problem", problem);
        return out;
    }

    /** The disc polarity agrees with the answer's class (both present). */
    public boolean dcConsistent() {
        return polarity != null && hasScore() && Polarity.of(score) == polarity;
    }
}
