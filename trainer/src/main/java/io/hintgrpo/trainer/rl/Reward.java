package io.hintgrpo.trainer.rl;

import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.ParsedResponse;

/**
 * One term of a rollout's reward; implement it to plug in your own. {@code response} is the
 * whole response text (a Hint-GRPO re-roll's forced prefix included, the end-of-turn token not),
 * {@code parsed} what {@link io.hintgrpo.trainer.format.DcParser} read from it. Must be a pure
 * function of its arguments (runs are repeatable) and finite.
 */
public interface Reward {
    /** Short name: the key of this term in the logged breakdown. */
    String name();

    double score(Utterance utterance, String response, ParsedResponse parsed);
}
