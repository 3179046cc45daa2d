#!/usr/bin/python3
"""PyTorch autograd oracle for the GRPO objective (DESIGN.md "Trainer", issue 5).

Usage:  /usr/bin/python3 scripts/grpo_oracle.py CASE_DIR

Run it with Debian's system python (python3-torch); the pyenv python3 first on PATH has no torch.

CASE_DIR/inputs.json holds
  groups, group_size       the rollout batch: groups of G completions of one prompt each
  rewards                  [groups * G], group after group
  adv_eps                  the epsilon of (r - mean) / (std + eps)
  eps_low, eps_high, beta  the clip range and the k3 weight; "ref" is null when beta = 0
  max_completion_length    the Dr.GRPO normaliser
  t                        the packed row width (B = groups * G rows)
  prompt_len, hint_len, completion_len   [B] each: row b holds prompt, hint (forced prefix, no
                           loss), completion, then padding up to t
  logp, logp_old, ref      [B][t]: position p holds the log-prob of predicting token p + 1, as
                           the engine's rows do (values at non-completion positions are arbitrary)

and the script writes CASE_DIR/outputs.json:
  advantages.{std,dr}      [B]  (r - mean)/(std + eps) with the population std, and r - mean
  stats                    [groups][2]  (mean, std)
  loss.<agg>.<adv>         the minibatch loss for agg in token-mean, sequence-mean, dr-grpo and
                           adv in std, dr
  grad.<agg>.<adv>         [B][t]  d loss / d logp by autograd (0 where no completion token is predicted)

Everything is float64 torch primitives written from the formulas, independent of the Java code:
  rho = exp(logp - logp_old); L = -min(rho A, clamp(rho, 1 - eps_low, 1 + eps_high) A) + beta k3,
  k3 = exp(ref - logp) - (ref - logp) - 1; mask[b, p] = 1 iff token p + 1 is a completion token,
  i.e. prompt + hint <= p + 1 < prompt + hint + completion;
  token-mean  sum(L mask) / sum(mask);  sequence-mean  mean_b( sum_p(L mask) / sum_p(mask) );
  dr-grpo  sum(L mask) / (B * max_completion_length).
"""
import json
import sys

import torch


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    case = sys.argv[1]
    with open(f"{case}/inputs.json") as f:
        x = json.load(f)
    torch.set_default_dtype(torch.float64)
    groups, g = x["groups"], x["group_size"]
    b, t = groups * g, x["t"]

    rewards = torch.tensor(x["rewards"]).reshape(groups, g)
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, unbiased=False, keepdim=True)
    adv = {"std": ((rewards - mean) / (std + x["adv_eps"])).reshape(b), "dr": (rewards - mean).reshape(b)}

    start = torch.tensor(x["prompt_len"]) + torch.tensor(x["hint_len"])
    end = start + torch.tensor(x["completion_len"])
    target = torch.arange(t).unsqueeze(0) + 1  # the token position p predicts
    mask = ((target >= start.unsqueeze(1)) & (target < end.unsqueeze(1))).double()

    logp_old = torch.tensor(x["logp_old"])
    ref = None if x["ref"] is None else torch.tensor(x["ref"])
    out = {"advantages": {k: v.tolist() for k, v in adv.items()},
           "stats": torch.cat([mean, std], dim=1).tolist(), "loss": {}, "grad": {}}
    for agg in ("token-mean", "sequence-mean", "dr-grpo"):
        for kind, a in adv.items():
            logp = torch.tensor(x["logp"], requires_grad=True)
            rho = torch.exp(logp - logp_old)
            a_tok = a.unsqueeze(1)
            clipped = torch.clamp(rho, 1 - x["eps_low"], 1 + x["eps_high"])
            per_token = -torch.minimum(rho * a_tok, clipped * a_tok)
            if ref is not None:
                d = ref - logp
                per_token = per_token + x["beta"] * (torch.exp(d) - d - 1)
            masked = per_token * mask
            if agg == "token-mean":
                loss = masked.sum() / mask.sum().clamp(min=1)
            elif agg == "sequence-mean":
                loss = (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
            else:
                loss = masked.sum() / (b * x["max_completion_length"])
            loss.backward()
            out["loss"][f"{agg}.{kind}"] = loss.item()
            out["grad"][f"{agg}.{kind}"] = logp.grad.tolist()
    with open(f"{case}/outputs.json", "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
