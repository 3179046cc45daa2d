package io.hintgrpo.trainer.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.hintgrpo.engine.BadInputException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * TRL {@code GRPOConfig} names in config files: one table row per TRL key that has a setting
 * here, naming our key and mapping the value where TRL's values differ (loss_type, scale_rewards,
 * bf16, a null top_k). A file written for TRL's GRPOTrainer with these keys runs {@code grpo};
 * the effective config written beside the run shows our names. Our defaults stay ours (TRL's
 * differ, e.g. beta). A TRL key we have nothing for, or a TRL value we do not implement, is a
 * clear error.
 */
public final class TrlNames {
    private TrlNames() {}

    /** How a TRL value becomes ours; where names the file for errors. */
    interface ValueMap {
        JsonNode apply(JsonNode value, String where);
    }

    /** One TRL key: the setting it sets here, what its values mean here (for docs), and the value map. */
    public record Row(String trl, String ours, String values, ValueMap map) {}

    private static final ValueMap SAME = (v, where) -> v;

    /** TRL's epsilon also sets the upper clip when epsilon_high is absent (TRL: "defaults to epsilon"); see {@link #map}. */
    public static final List<Row> TABLE = List.of(
            new Row("num_generations", "group_size", "", SAME),
            new Row("max_completion_length", "max_completion_tokens", "", SAME),
            new Row("learning_rate", "lr", "", SAME),
            new Row("beta", "beta", "", SAME),
            new Row("epsilon", "eps_low", "also eps_high when epsilon_high is not given", SAME),
            new Row("epsilon_high", "eps_high", "", SAME),
            new Row("temperature", "temperature", "", SAME),
            new Row("top_p", "top_p", "", SAME),
            new Row("top_k", "top_k", "null → 0 (off)", (v, where) -> v.isNull() ? IntNode.valueOf(0) : v),
            new Row("loss_type", "aggregation", "grpo → sequence-mean; bnpo, dapo → token-mean; dr_grpo → dr-grpo",
                    (v, where) -> TextNode.valueOf(switch (v.asText()) {
                        case "grpo" -> "sequence-mean";
                        case "bnpo", "dapo" -> "token-mean";
                        case "dr_grpo" -> "dr-grpo";
                        default -> throw new BadInputException(where, "loss_type " + v + " (TRL) has no equivalent here; "
                                + "use grpo, bnpo, dapo or dr_grpo, or set aggregation");
                    })),
            new Row("scale_rewards", "advantage", "true, group → std; false, none → mean",
                    (v, where) -> TextNode.valueOf(switch (v.asText()) {
                        case "true", "group" -> "std";
                        case "false", "none" -> "mean";
                        default -> throw new BadInputException(where, "scale_rewards " + v + " (TRL) has no equivalent here "
                                + "(advantages are normalised per group or not at all); use group, none, true or false");
                    })),
            new Row("num_iterations", "mu", "", SAME),
            new Row("mask_truncated_completions", "mask_truncated", "", SAME),
            new Row("max_steps", "steps", "", SAME),
            new Row("seed", "seed", "", SAME),
            new Row("warmup_steps", "warmup_steps", "", SAME),
            new Row("weight_decay", "weight_decay", "", SAME),
            new Row("adam_beta1", "beta1", "", SAME),
            new Row("adam_beta2", "beta2", "", SAME),
            new Row("adam_epsilon", "adam_epsilon", "", SAME),
            new Row("max_grad_norm", "max_grad_norm", "", SAME),
            new Row("eval_steps", "eval_every", "", SAME),
            new Row("save_steps", "checkpoint_every", "", SAME),
            new Row("save_total_limit", "keep_last", "", SAME),
            new Row("output_dir", "out", "", SAME),
            new Row("bf16", "precision", "true → bf16, false → fp32",
                    (v, where) -> {
                        if (!v.isBoolean()) throw new BadInputException(where, "bf16 (TRL) must be true or false, got " + v);
                        return TextNode.valueOf(v.booleanValue() ? "bf16" : "fp32");
                    }));

    /** TRL GRPOConfig keys that commonly appear in TRL files and have no equivalent here: refused with a pointer to the docs. */
    static final Set<String> UNSUPPORTED = Set.of("per_device_train_batch_size", "gradient_accumulation_steps", "generation_batch_size",
            "steps_per_generation", "num_train_epochs", "logging_steps", "max_prompt_length", "use_vllm", "vllm_mode", "report_to",
            "lr_scheduler_type", "reward_weights", "gradient_checkpointing", "fp16", "importance_sampling_level", "sync_ref_model",
            "log_completions", "repetition_penalty", "min_p", "shuffle_dataset", "run_name", "push_to_hub", "top_entropy_quantile",
            "delta", "num_completions_to_print", "logging_strategy", "save_strategy", "eval_strategy");

    /**
     * The settings of one object of a config file with TRL's names replaced by ours and their values
     * mapped; our own keys pass unchanged. A TRL key and our key for the same setting in one object
     * is an error (which would win is not obvious), as is a TRL key with no equivalent here.
     */
    public static ObjectNode map(ObjectNode settings, String where) {
        Map<String, Row> byTrl = new LinkedHashMap<>();
        for (Row r : TABLE) byTrl.put(r.trl(), r);
        ObjectNode out = settings.objectNode();
        settings.fields().forEachRemaining(e -> {
            String key = e.getKey();
            Row r = byTrl.get(key);
            if (UNSUPPORTED.contains(key))
                throw new BadInputException(where, "\"" + key + "\" is a TRL GRPOConfig setting with no equivalent here "
                        + "(docs/config.md lists the TRL names that map)");
            if (r == null || r.trl().equals(r.ours())) {
                out.set(key, r == null ? e.getValue() : r.map().apply(e.getValue(), where));
                return;
            }
            if (settings.has(r.ours()))
                throw new BadInputException(where, "\"" + key + "\" (TRL's name for " + r.ours() + ") and \"" + r.ours()
                        + "\" are both set; keep one");
            out.set(r.ours(), r.map().apply(e.getValue(), where));
            if (key.equals("epsilon") && !settings.has("epsilon_high") && !settings.has("eps_high")) out.set("eps_high", e.getValue());
        });
        return out;
    }
}
