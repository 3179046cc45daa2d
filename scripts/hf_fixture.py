#!/usr/bin/env python3
"""Golden fixture from Hugging Face transformers' own Qwen2: a tiny random Qwen2ForCausalLM saved
with save_pretrained, and its logits, loss and per-parameter gradients on fixed inputs.

    python3 scripts/hf_fixture.py OUTDIR      # writes OUTDIR/ (a model directory plus the outputs)

Our oracle (scripts/oracle.py) re-implements Qwen2 in PyTorch; this one asks the reference
implementation itself, so a convention both of ours got wrong the same way (RoPE pairing, GQA
head mapping, RMSNorm form, bias placement, tied head) still shows. It runs on the GPU machine
(the only one with transformers) and computes on the CPU in float64 from the float32 weights it
saved, so the numbers do not depend on the GPU. tests/.../HfFixtureTest.java reads the result
from tests/fixtures/hf-qwen2-tiny/ once committed.

Files written:
  config.json, model.safetensors (+ whatever else save_pretrained writes)  the model, as HF saves it
  inputs.json        token ids per sequence (unpadded), and the settings the model was built with
  outputs.safetensors  F32: logits [B, T, V] (zero on padding rows), loss [1] (sum of next-token
                     cross-entropies over every sequence), grad.<parameter name> per parameter
"""
import json
import os
import sys

import torch


def main():
    if len(sys.argv) != 2:
        print("usage: hf_fixture.py OUTDIR", file=sys.stderr)
        return 2
    out = sys.argv[1]
    try:
        import transformers
        from safetensors.torch import save_file
        from transformers import Qwen2Config, Qwen2ForCausalLM
    except ImportError as e:
        print(f"hf_fixture: needs transformers and safetensors: {e}", file=sys.stderr)
        return 3

    # Small, but every convention shows: GQA (4 query heads on 2 KV heads, head_dim 8), q/k/v
    # biases, a tied head (as Qwen2.5-0.5B), rope_theta not the default, eps not the default.
    settings = dict(hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
                    num_hidden_layers=2, vocab_size=96, rms_norm_eps=1e-5, rope_theta=1000000.0,
                    tie_word_embeddings=True, max_position_embeddings=64, hidden_act="silu",
                    use_sliding_window=False)
    torch.manual_seed(1234)
    config = Qwen2Config(**settings)
    try:
        config._attn_implementation = "eager"  # plain softmax attention: the definition, not a fused kernel
    except (AttributeError, ValueError):
        pass  # sdpa in float64 on the CPU computes the same within rounding
    model = Qwen2ForCausalLM(config).float().eval()
    # HF initialises biases to 0 and norm weights to 1; move everything so each op leaves a mark
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif p.dim() == 2:
                p.copy_(0.2 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    os.makedirs(out, exist_ok=True)
    try:
        model.save_pretrained(out, safe_serialization=True)
    except TypeError:  # releases where safetensors is the only format drop the flag
        model.save_pretrained(out)
    if not os.path.exists(os.path.join(out, "model.safetensors")):
        print(f"hf_fixture: save_pretrained wrote no model.safetensors in {out}: {sorted(os.listdir(out))}", file=sys.stderr)
        return 1

    # Right-padded batch of unequal lengths; HF's default positions are 0..T-1, so each sequence's
    # real tokens sit at 0..len-1 as ours do.
    lengths = [12, 7, 16]
    b, t, v = len(lengths), max(lengths), settings["vocab_size"]
    g = torch.Generator().manual_seed(99)
    ids = torch.randint(0, v, (b, t), generator=g)
    mask = torch.zeros(b, t, dtype=torch.long)
    for s, n in enumerate(lengths):
        mask[s, :n] = 1
        ids[s, n:] = 0

    model = model.double()
    logits = model(input_ids=ids, attention_mask=mask).logits  # [b, t, v], float64
    # loss: the sum over sequences of the next-token cross-entropies of the real tokens (weight 1
    # on every row that has a next token), which is what Model.forwardBackward computes
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
    has_target = torch.zeros(b, t - 1, dtype=torch.bool)
    for s, n in enumerate(lengths):
        has_target[s, : n - 1] = True
    loss = nll[has_target].sum()
    loss.backward()

    outputs = {"loss": loss.detach().float().reshape(1)}
    kept = logits.detach().clone()
    for s, n in enumerate(lengths):
        kept[s, n:] = 0
    outputs["logits"] = kept.float().contiguous()
    for name, p in model.named_parameters():
        outputs["grad." + name] = p.grad.detach().float().contiguous()
    save_file(outputs, os.path.join(out, "outputs.safetensors"), metadata={"format": "pt"})

    with open(os.path.join(out, "inputs.json"), "w") as f:
        json.dump({"ids": [ids[s, :n].tolist() for s, n in enumerate(lengths)],
                   "settings": settings,
                   "transformers": transformers.__version__, "torch": torch.__version__}, f, indent=1)
    print(f"hf_fixture: wrote {out}: transformers {transformers.__version__}, torch {torch.__version__}, "
          f"loss {loss.item():.6f}, {len(outputs) - 2} gradients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
