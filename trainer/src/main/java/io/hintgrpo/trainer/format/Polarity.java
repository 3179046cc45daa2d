package io.hintgrpo.trainer.format;

/**
 * The discrimination phase's coarse class: negative (y < −0.5), neutral (−0.5 ≤ y ≤ 0.5),
 * positive (y > 0.5), i.e. Acc-7's class 0 (round half to even) is neutral.
 */
public enum Polarity {
    NEGATIVE("negative"), NEUTRAL("neutral"), POSITIVE("positive");

    /** |y| at or below this is neutral. */
    public static final double NEUTRAL_BOUND = 0.5;

    private final String word;

    Polarity(String word) {
        this.word = word;
    }

    /** The word the DC grammar writes. */
    public String word() {
        return word;
    }

    public static Polarity of(double y) {
        if (y < -NEUTRAL_BOUND) return NEGATIVE;
        if (y > NEUTRAL_BOUND) return POSITIVE;
        return NEUTRAL;
    }

    /** The class a word names, or null. */
    public static Polarity fromWord(String w) {
        for (Polarity p : values()) if (p.word.equals(w)) return p;
        return null;
    }
}
