package io.hintgrpo.trainer.data;

import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.format.Polarity;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * The distillation filter: a teacher chain is kept for SFT only if it follows the DC grammar, its
 * disc polarity is the label's class, and its answer has the label's class and lies within
 * {@code tolerance} of the label. A dropped chain leaves the utterance without a {@code cot}
 * (it still serves evaluation and RL).
 */
public final class TeacherFilter {
    private TeacherFilter() {}

    /** Default largest |answer − label| a kept chain may have. */
    public static final double DEFAULT_TOLERANCE = 0.5;
    /** Slack for answers and labels that are decimal strings read as floats (0.8 − 1.3 is not exactly −0.5). */
    private static final double EPS = 1e-4;

    public enum Verdict { KEPT, NO_CHAIN, INVALID_FORMAT, WRONG_POLARITY, WRONG_ANSWER }

    /** The utterances (dropped chains removed), chains kept, dropped, and the count per verdict. */
    public record Result(List<Utterance> utterances, int kept, int dropped, Map<Verdict, Integer> counts) {}

    public static Verdict judge(Utterance u, double tolerance) {
        if (u.cot() == null) return Verdict.NO_CHAIN;
        ParsedResponse r = DcParser.parse(u.cot());
        if (!r.formatValid()) return Verdict.INVALID_FORMAT;
        Polarity truth = Polarity.of(u.label());
        if (r.polarity() != truth) return Verdict.WRONG_POLARITY;
        if (Polarity.of(r.score()) != truth || Math.abs(r.score() - u.label()) > tolerance + EPS) return Verdict.WRONG_ANSWER;
        return Verdict.KEPT;
    }

    public static Result apply(List<Utterance> utterances, double tolerance) {
        List<Utterance> out = new ArrayList<>(utterances.size());
        Map<Verdict, Integer> counts = new EnumMap<>(Verdict.class);
        for (Verdict v : Verdict.values()) counts.put(v, 0);
        int kept = 0, dropped = 0;
        for (Utterance u : utterances) {
            Verdict v = judge(u, tolerance);
            counts.merge(v, 1, Integer::sum);
            if (v == Verdict.KEPT) kept++;
            else if (v != Verdict.NO_CHAIN) dropped++;
            out.add(v == Verdict.KEPT || v == Verdict.NO_CHAIN ? u : u.withCot(null));
        }
        return new Result(List.copyOf(out), kept, dropped, counts);
    }
}
