package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.format.Polarity;

import java.util.ArrayList;
import java.util.List;

/**
 * A weighted sum of reward terms with its per-term breakdown, and the built-in terms of
 * DESIGN.md: format, polarity, score and DC consistency.
 */
public final class Rewards {
    public record Term(Reward reward, double weight) {}

    /** A rollout's total reward and each term's unweighted value, in the order of {@link #names()}. */
    public record Scored(double total, double[] components) {}

    private final List<Term> terms;

    public Rewards(List<Term> terms) {
        if (terms.isEmpty()) throw new BadInputException("rewards", "no reward terms");
        for (Term t : terms)
            if (!Double.isFinite(t.weight())) throw new BadInputException("rewards", t.reward().name() + " has weight " + t.weight());
        this.terms = List.copyOf(terms);
    }

    /** The built-ins weighted as the settings say; terms with weight 0 are left out. */
    public static Rewards of(GrpoConfig.RewardWeights w) {
        List<Term> t = new ArrayList<>();
        if (w.formatWeight() != 0) t.add(new Term(format(), w.formatWeight()));
        if (w.polarityWeight() != 0) t.add(new Term(polarity(), w.polarityWeight()));
        if (w.scoreWeight() != 0) t.add(new Term(w.scoreBand() > 0 ? bandedScore(w.scoreBand()) : score(w.scoreDelta()), w.scoreWeight()));
        if (w.consistencyWeight() != 0) t.add(new Term(consistency(), w.consistencyWeight()));
        return new Rewards(t);
    }

    public List<String> names() {
        return terms.stream().map(t -> t.reward().name()).toList();
    }

    public Scored score(Utterance u, String response, ParsedResponse parsed) {
        double total = 0;
        double[] c = new double[terms.size()];
        for (int i = 0; i < c.length; i++) {
            Term t = terms.get(i);
            c[i] = t.reward().score(u, response, parsed);
            if (!Double.isFinite(c[i]))
                throw new IllegalStateException("reward " + t.reward().name() + " gave " + c[i] + " for utterance " + u.id());
            total += t.weight() * c[i];
        }
        return new Scored(total, c);
    }

    /** 1 when the response follows the DC grammar exactly, else 0. */
    public static Reward format() {
        return named("format", (u, r, p) -> p.formatValid() ? 1 : 0);
    }

    /** 1 when the disc phase names the label's polarity class, else 0. */
    public static Reward polarity() {
        return named("polarity", (u, r, p) -> p.polarity() == Polarity.of(u.label()) ? 1 : 0);
    }

    /** 1 − min(|ŷ − y|, Δ)/Δ for a readable answer ŷ, 0 without one. */
    public static Reward score(double delta) {
        if (!(delta > 0)) throw new BadInputException("rewards", "score delta must be > 0, got " + delta);
        return named("score", (u, r, p) -> p.hasScore() ? 1 - Math.min(Math.abs(p.score() - u.label()), delta) / delta : 0);
    }

    /** The sparse score: 1 for a readable answer within band of the label (|ŷ − y| ≤ band), else 0. */
    public static Reward bandedScore(double band) {
        if (!(band > 0)) throw new BadInputException("rewards", "score band must be > 0, got " + band);
        return named("score", (u, r, p) -> p.hasScore() && Math.abs(p.score() - u.label()) <= band + 1e-6 ? 1 : 0); // scores and labels are tenths held in floats
    }

    /** 1 when the disc polarity agrees with the answer's class (the chain is self-consistent), else 0. */
    public static Reward consistency() {
        return named("consistency", (u, r, p) -> p.dcConsistent() ? 1 : 0);
    }

    private interface Fn {
        double apply(Utterance u, String response, ParsedResponse parsed);
    }

    private static Reward named(String name, Fn fn) {
        return new Reward() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public double score(Utterance u, String response, ParsedResponse parsed) {
                return fn.apply(u, response, parsed);
            }
        };
    }
}
