package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.DcFormat;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Sampling and scoring of rollouts: completions of a prompt from the policy, optionally forced to
 * start with the ground-truth discrimination prefix (a Hint-GRPO re-roll). Generation stops at
 * {@code </answer>} or the end of turn, as evaluation does; a completion that reaches the token
 * limit first is truncated. The sampler's own log-probs are not kept: the update recomputes them
 * in the training forward (DESIGN.md).
 */
public final class Rollouts {
    /** Most sequences generated together (bounds the KV cache). */
    static final int MAX_BATCH = 128;

    /**
     * One completion. hint: the forced prefix ids (empty for a free rollout); tokens: the
     * generated ids after it (a stop token included); response: hint + generated text without the
     * end of turn, as the reward and the parser see it.
     */
    public record Rollout(int[] hint, int[] tokens, boolean truncated, String response, ParsedResponse parsed,
                          Rewards.Scored reward) {
        public boolean hinted() {
            return hint.length > 0;
        }

        /** Response length in tokens, hint included. */
        public int length() {
            return hint.length + tokens.length;
        }
    }

    /** The rollouts of one prompt. */
    public static final class Group {
        public final Utterance utterance;
        public final Examples.Prompt prompt;
        public final List<Rollout> rollouts = new ArrayList<>();

        Group(Utterance utterance, Examples.Prompt prompt) {
            this.utterance = utterance;
            this.prompt = prompt;
        }

        public double[] rewards() {
            return rollouts.stream().mapToDouble(r -> r.reward().total()).toArray();
        }

        public int hinted() {
            return (int) rollouts.stream().filter(Rollout::hinted).count();
        }
    }

    /** A request for n completions of a group, free or after a hint. */
    record Request(Group group, int[] hint, int n) {}

    private final Model model;
    private final Tokenizer tok;
    private final Rewards rewards;
    private final Tokenizer.Specials specials;
    private final int maxCompletionTokens;
    private final GrpoConfig.Sampling sampling;

    public Rollouts(Model model, Tokenizer tok, Rewards rewards, int maxCompletionTokens, GrpoConfig.Sampling sampling) {
        this.model = model;
        this.tok = tok;
        this.rewards = rewards;
        this.specials = tok.specials();
        this.maxCompletionTokens = maxCompletionTokens;
        this.sampling = sampling;
    }

    /**
     * The one layout of a rollout row: prompt ++ hint ++ completion, with the prompt's feature rows.
     * Generation is fed the row without its completion; the update trains on the whole row.
     */
    public static Sequence row(Sequence prompt, int[] hint, int[] completion) {
        return new Sequence(concat(prompt.ids(), hint, completion), null, prompt.audio(), prompt.vision());
    }

    private static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    public Group group(Utterance u) {
        return new Group(u, Examples.prompt(u, tok, model.config));
    }

    /** The ids of the ground-truth discrimination prefix of an utterance. */
    public int[] hintIds(Utterance u) {
        return tok.encode(DcFormat.hintPrefix(Polarity.of(u.label())));
    }

    /**
     * Generates every request's completions (batched, seeded: the same seed gives the same
     * rollouts), scores them and returns them in request order, n per request.
     */
    List<Rollout> sample(List<Request> requests, long seed) {
        List<Sequence> prompts = new ArrayList<>();
        List<Request> owner = new ArrayList<>();
        for (Request r : requests) {
            Sequence input = row(r.group().prompt.sequence(), r.hint(), new int[0]);
            for (int i = 0; i < r.n(); i++) {
                prompts.add(input);
                owner.add(r);
            }
        }
        List<Rollout> out = new ArrayList<>();
        Generator gen = new Generator(model);
        // one generate call per distinct hint length keeps every row's token budget exact
        for (int from = 0; from < prompts.size(); ) {
            int hintLength = owner.get(from).hint().length;
            int to = from;
            while (to < prompts.size() && to - from < MAX_BATCH && owner.get(to).hint().length == hintLength) to++;
            Generator.Options opt = new Generator.Options(Math.max(1, maxCompletionTokens - hintLength), sampling.temperature(),
                    sampling.topK(), sampling.topP(),
                    seed * 0x9E3779B97F4A7C15L + from, specials.responseStops());
            List<Generator.Completion> done = gen.generate(prompts.subList(from, to), opt);
            for (int i = from; i < to; i++) out.add(score(owner.get(i).group().utterance, owner.get(i).hint(), done.get(i - from)));
            from = to;
        }
        return out;
    }

    private Rollout score(Utterance u, int[] hint, Generator.Completion c) {
        int[] tokens = c.tokens();
        int[] shown = tokens.length > 0 && tokens[tokens.length - 1] == specials.imEnd() ? Arrays.copyOf(tokens, tokens.length - 1) : tokens;
        String response = tok.decode(concat(hint, shown));
        ParsedResponse parsed = DcParser.parse(response);
        return new Rollout(hint, tokens, !c.stopped(), response, parsed, rewards.score(u, response, parsed));
    }
}
