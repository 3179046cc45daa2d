#!/usr/bin/python3
"""PyTorch oracle for hintgrpo (tier 2 of the test plan in DESIGN.md).

Usage:  /usr/bin/python3 scripts/oracle.py CASE_DIR [--dtype float64|float32]

Run it with Debian's system python (python3-torch); the pyenv python3 first on PATH has no torch.

CASE_DIR holds
  config.json        Hugging Face Qwen2 config plus our fields audio_feature_size,
                     vision_feature_size, audio_token_id, vision_token_id, projector_type
                     ("linear" | "mlp").
  model.safetensors  every parameter by its Hugging Face name (F32, F64, F16 or BF16);
                     no lm_head.weight when tie_word_embeddings; projector tensors
                     multi_modal_projector.{audio,vision}.linear_1.{weight,bias} (+ linear_2 for "mlp").
  inputs.json        {"ids": [[...], ...],            one list per sequence (unequal lengths allowed)
                      "weights": [[...], ...],        weights[b][t] = signed loss weight of predicting
                                                      ids[b][t+1]; same length as ids[b]; the last is ignored
                      "temperature": 1.0,
                      "audio":  [ T_a x D_a rows, or [] , ... per sequence ]   (optional)
                      "vision": [ T_v x D_v rows, or [] , ... per sequence ]   (optional)
                      "adam": {"lr", "beta1", "beta2", "eps", "weight_decay", "steps",
                               "max_grad_norm"}}       (optional; steps = 0 when absent)

and optionally a PEFT LoRA adapter beside them:
  adapter_config.json        peft_type "LORA", task_type "CAUSAL_LM", r, lora_alpha, target_modules (a list of
                             q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj), modules_to_save
                             (null or ["multi_modal_projector"]); rsLoRA, DoRA, fan_in_fan_out, LoRA biases and
                             per-layer patterns are refused
  adapter_model.safetensors  read by PEFT's saved names: base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight
                             [r, in] and ...lora_B.weight [out, r] (mlp.* for gate/up/down), and with modules_to_save
                             the projectors as base_model.model.multi_modal_projector.{audio,vision}.linear_{1,2}.{weight,bias}
With an adapter every target Linear computes y = x W^T (+ b) + (lora_alpha / r) (x A^T) B^T, the projectors are
the adapter's (the base's without modules_to_save), the base is frozen, and the gradients and AdamW steps are
those of the adapter's tensors only (named as in adapter_model.safetensors).

and the script writes CASE_DIR/outputs.safetensors (all F32):
  logits            [B, T, V]  raw logits (no temperature); rows t >= len(ids[b]) are zero
  logprobs          [B, T]     log softmax(logits / temperature)[target], 0 where target < 0
  loss              [1]        L = -sum_{b,t} weights[b][t] * logprobs[b,t]
  grad.<name>       dL/d<name> for every parameter in model.safetensors (with an adapter: for every tensor
                    of adapter_model.safetensors instead)
  adam_losses       [steps]    the loss before each AdamW step (forward re-run every step)
  adam_grad_norms   [steps]    the global gradient norm before clipping, each step
  (T = the longest sequence; B = the number of sequences)

Every op is written here from torch primitives, following DESIGN.md's pinned conventions, so the
script is an independent check of the Java engine (it does not use transformers):
  * the batch is right-padded; positions run 0..len-1 per sequence; a padding row is fed token 0
    at position t and its outputs are never used (its logits are written as zeros);
  * modality rows: per modality a projector, "linear": x W1^T + b1, "mlp":
    gelu_tanh(x W1^T + b1) W2^T + b2; its outputs replace, in order, the embedding rows of the
    placeholder tokens (ids == audio_token_id / vision_token_id) of that sequence, so the
    placeholder's own embedding row gets no gradient from those positions;
  * RMSNorm  w * x / sqrt(mean(x^2) + eps)  (w, not 1 + w);
  * q/k/v projections with bias, o/gate/up/down without;
  * RoPE, rotate-half: element i pairs with i + d/2; inv_freq = 1 / theta^(arange(0, d, 2) / d)
    computed in float32 and angle = position * inv_freq in float32 (then cos/sin in the working
    dtype);
  * causal GQA attention: query head h reads kv head h // (heads / kv_heads), scale 1/sqrt(d),
    query row i sees keys j <= i with j < len;
  * SwiGLU MLP  down(silu(gate(x)) * up(x)); final RMSNorm; LM head = lm_head.weight, or
    model.embed_tokens.weight when tie_word_embeddings;
  * AdamW by hand: global grad-norm clipping over all parameters (coefficient
    min(1, max_norm / (norm + 1e-6)); max_grad_norm <= 0 or null disables it), then
    m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p),
    with bias correction and weight decay only on 2-D tensors (matrices).

Precision: the reference runs in float64 by default (torch.set_default_dtype(torch.float64), the
F32 weights and inputs are widened exactly), so its own rounding is negligible next to the fp32
engine it checks; only the RoPE inverse frequencies and angles are rounded to float32 on purpose,
because that is the pinned convention. --dtype float32 runs everything in float32 instead (to see
how much of a difference fp32 rounding alone explains).

Exit status: 0 on success, 2 with a message "oracle.py: error: ..." on bad input.
"""

import argparse
import json
import math
import os
import struct
import sys

try:
    import numpy as np
except ImportError:  # reported in main() with the install hint
    np = None


class BadInput(Exception):
    pass


def fail(msg):
    raise BadInput(msg)


# ---------------------------------------------------------------------------------------------
# safetensors, pure Python: 8-byte little-endian header length, JSON header
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, raw bytes.
# ---------------------------------------------------------------------------------------------

_NP_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    if len(blob) < 8:
        fail(f"{path}: too short to be a safetensors file ({len(blob)} bytes)")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        fail(f"{path}: header length {hlen} runs past the end of the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"{path}: header is not valid JSON: {e}")
    if not isinstance(header, dict):
        fail(f"{path}: header is not a JSON object")
    data = memoryview(blob)[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            fail(f"{path}: tensor {name}: header entry needs dtype, shape and data_offsets [begin, end]")
        count = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                fail(f"{path}: tensor {name}: bad shape {shape}")
            count *= d
        if dtype == "BF16":
            itemsize = 2
        elif dtype in _NP_DTYPES:
            itemsize = np.dtype(_NP_DTYPES[dtype]).itemsize
        else:
            fail(f"{path}: tensor {name}: unsupported dtype {dtype} (expected F32, F64, F16 or BF16)")
        if not (0 <= begin <= end <= len(data)) or end - begin != count * itemsize:
            fail(f"{path}: tensor {name}: data_offsets [{begin}, {end}] do not hold {count} x {dtype} "
                 f"inside the {len(data)} data bytes")
        raw = bytes(data[begin:end])
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_NP_DTYPES[dtype])
        out[name] = arr.astype(np.float64).reshape(shape)
    return out


def write_safetensors(path, tensors):
    """tensors: name -> numpy array; written as F32, with __metadata__ {"format": "pt"}."""
    header = {"__metadata__": {"format": "pt"}}
    chunks, offset = [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# config and inputs
# ---------------------------------------------------------------------------------------------

def load_json(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        fail(f"{path}: file not found")
    except json.JSONDecodeError as e:
        fail(f"{path}: not valid JSON: {e}")


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Config:
    def __init__(self, raw, where):
        if not isinstance(raw, dict):
            fail(f"{where}: expected a JSON object")

        def req_int(k, default=None, minimum=1):
            v = raw.get(k, default)
            if v is None:
                fail(f"{where}: missing required field \"{k}\"")
            if not is_int(v) or v < minimum:
                fail(f"{where}: field \"{k}\" must be an integer >= {minimum}, got {v!r}")
            return v

        def num(k, default):
            v = raw.get(k, default)
            if v is None:
                v = default
            if not is_num(v) or not (v > 0) or not math.isfinite(v):
                fail(f"{where}: field \"{k}\" must be a positive number, got {v!r}")
            return float(v)

        self.hidden = req_int("hidden_size")
        self.inter = req_int("intermediate_size")
        self.heads = req_int("num_attention_heads")
        self.kv_heads = req_int("num_key_value_heads", self.heads)
        self.layers = req_int("num_hidden_layers")
        self.vocab = req_int("vocab_size")
        self.eps = num("rms_norm_eps", 1e-6)
        self.theta = num("rope_theta", 10000.0)
        tie = raw.get("tie_word_embeddings", False)
        if not isinstance(tie, bool):
            fail(f"{where}: field \"tie_word_embeddings\" must be true or false, got {tie!r}")
        self.tie = tie
        if self.hidden % self.heads:
            fail(f"{where}: hidden_size {self.hidden} is not divisible by num_attention_heads {self.heads}")
        if self.heads % self.kv_heads:
            fail(f"{where}: num_key_value_heads {self.kv_heads} does not divide num_attention_heads {self.heads}")
        self.head_dim = self.hidden // self.heads
        if "head_dim" in raw and raw["head_dim"] != self.head_dim:
            fail(f"{where}: head_dim {raw['head_dim']!r} differs from hidden_size / num_attention_heads = {self.head_dim}")
        if self.head_dim % 2:
            fail(f"{where}: head dimension {self.head_dim} is odd; rotary embedding needs it even")
        self.audio_dim = req_int("audio_feature_size", 0, minimum=0)
        self.vision_dim = req_int("vision_feature_size", 0, minimum=0)
        self.projector = raw.get("projector_type", "linear")
        if self.projector not in ("linear", "mlp"):
            fail(f"{where}: projector_type must be \"linear\" or \"mlp\", got {self.projector!r}")
        self.token_id = {}
        for mod, dim in (("audio", self.audio_dim), ("vision", self.vision_dim)):
            if dim > 0:
                tid = raw.get(f"{mod}_token_id")
                if not is_int(tid) or not (0 <= tid < self.vocab):
                    fail(f"{where}: {mod}_token_id must be a token id in [0, {self.vocab}), got {tid!r}")
                self.token_id[mod] = tid
        if len(self.token_id) == 2 and self.token_id["audio"] == self.token_id["vision"]:
            fail(f"{where}: audio_token_id and vision_token_id are both {self.token_id['audio']}")
        self.feature_dim = {"audio": self.audio_dim, "vision": self.vision_dim}

    def modalities(self):
        return [m for m in ("audio", "vision") if self.feature_dim[m] > 0]

    def expected_shapes(self):
        c, i, q, kv = self.hidden, self.inter, self.heads * self.head_dim, self.kv_heads * self.head_dim
        s = {"model.embed_tokens.weight": (self.vocab, c)}
        for l in range(self.layers):
            p = f"model.layers.{l}."
            s[p + "self_attn.q_proj.weight"] = (q, c)
            s[p + "self_attn.q_proj.bias"] = (q,)
            s[p + "self_attn.k_proj.weight"] = (kv, c)
            s[p + "self_attn.k_proj.bias"] = (kv,)
            s[p + "self_attn.v_proj.weight"] = (kv, c)
            s[p + "self_attn.v_proj.bias"] = (kv,)
            s[p + "self_attn.o_proj.weight"] = (c, q)
            s[p + "mlp.gate_proj.weight"] = (i, c)
            s[p + "mlp.up_proj.weight"] = (i, c)
            s[p + "mlp.down_proj.weight"] = (c, i)
            s[p + "input_layernorm.weight"] = (c,)
            s[p + "post_attention_layernorm.weight"] = (c,)
        s["model.norm.weight"] = (c,)
        if not self.tie:
            s["lm_head.weight"] = (self.vocab, c)
        for mod in self.modalities():
            p = f"multi_modal_projector.{mod}."
            s[p + "linear_1.weight"] = (c, self.feature_dim[mod])
            s[p + "linear_1.bias"] = (c,)
            if self.projector == "mlp":
                s[p + "linear_2.weight"] = (c, c)
                s[p + "linear_2.bias"] = (c,)
        return s


class Inputs:
    def __init__(self, raw, cfg, where):
        if not isinstance(raw, dict):
            fail(f"{where}: expected a JSON object")
        ids, weights = raw.get("ids"), raw.get("weights")
        if not isinstance(ids, list) or not ids:
            fail(f"{where}: \"ids\" must be a non-empty list of token-id lists")
        if not isinstance(weights, list) or len(weights) != len(ids):
            fail(f"{where}: \"weights\" must be a list with one weight list per sequence ({len(ids)})")
        self.ids, self.weights = [], []
        for b, (seq, w) in enumerate(zip(ids, weights)):
            if not isinstance(seq, list) or not seq:
                fail(f"{where}: ids[{b}] must be a non-empty list of token ids")
            for t, tok in enumerate(seq):
                if not is_int(tok) or not (0 <= tok < cfg.vocab):
                    fail(f"{where}: ids[{b}][{t}] = {tok!r} is not a token id in [0, {cfg.vocab})")
            if not isinstance(w, list) or len(w) != len(seq):
                fail(f"{where}: weights[{b}] must have one weight per token ({len(seq)}), got "
                     f"{len(w) if isinstance(w, list) else w!r}")
            for t, x in enumerate(w):
                if not is_num(x) or not math.isfinite(x):
                    fail(f"{where}: weights[{b}][{t}] = {x!r} is not a finite number")
            self.ids.append(seq)
            self.weights.append([float(x) for x in w])
        temp = raw.get("temperature", 1.0)
        if not is_num(temp) or not (temp > 0) or not math.isfinite(temp):
            fail(f"{where}: \"temperature\" must be a positive number, got {temp!r}")
        self.temperature = float(temp)

        self.features = {}
        for mod in ("audio", "vision"):
            feats = raw.get(mod)
            enabled = cfg.feature_dim[mod] > 0
            per_seq = []
            for b in range(len(self.ids)):
                rows = None
                if feats is not None:
                    if not isinstance(feats, list) or len(feats) != len(self.ids):
                        fail(f"{where}: \"{mod}\" must be a list with one entry per sequence ({len(self.ids)})")
                    rows = feats[b]
                    if rows is not None and not isinstance(rows, list):
                        fail(f"{where}: {mod}[{b}] must be a list of feature rows, [] or null")
                    if rows == []:
                        rows = None
                n_place = sum(1 for tok in self.ids[b] if enabled and tok == cfg.token_id[mod])
                if rows is None:
                    if n_place:
                        fail(f"{where}: sequence {b} has {n_place} {mod} placeholder tokens "
                             f"(id {cfg.token_id[mod]}) but no {mod} feature rows")
                    per_seq.append(None)
                    continue
                if not enabled:
                    fail(f"{where}: {mod}[{b}] has feature rows but the config has no {mod} modality "
                         f"({mod}_feature_size is 0)")
                d = cfg.feature_dim[mod]
                for r, row in enumerate(rows):
                    if not isinstance(row, list) or len(row) != d or not all(is_num(x) and math.isfinite(x) for x in row):
                        fail(f"{where}: {mod}[{b}][{r}] must be a list of {d} finite numbers ({mod}_feature_size)")
                if len(rows) != n_place:
                    fail(f"{where}: sequence {b} has {n_place} {mod} placeholder tokens (id {cfg.token_id[mod]}) "
                         f"but {len(rows)} {mod} feature rows")
                per_seq.append(np.asarray(rows, dtype=np.float64))
            self.features[mod] = per_seq

        adam = raw.get("adam")
        self.adam = None
        if adam is not None:
            if not isinstance(adam, dict):
                fail(f"{where}: \"adam\" must be an object")
            a = {}
            for k, default in (("lr", None), ("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8),
                               ("weight_decay", 0.0), ("steps", None), ("max_grad_norm", None)):
                v = adam.get(k, default)
                if k == "max_grad_norm" and v is None:
                    a[k] = 0.0
                    continue
                if v is None:
                    fail(f"{where}: adam.{k} is required")
                if not is_num(v) or not math.isfinite(v):
                    fail(f"{where}: adam.{k} must be a finite number, got {v!r}")
                a[k] = v
            if not is_int(a["steps"]) or a["steps"] < 0:
                fail(f"{where}: adam.steps must be an integer >= 0, got {a['steps']!r}")
            if not (a["lr"] >= 0) or not (0 <= a["beta1"] < 1) or not (0 <= a["beta2"] < 1) or not (a["eps"] > 0):
                fail(f"{where}: adam needs lr >= 0, 0 <= beta1, beta2 < 1 and eps > 0, got {adam}")
            self.adam = a


# ---------------------------------------------------------------------------------------------
# the model, op by op
# ---------------------------------------------------------------------------------------------

def rmsnorm(torch, x, w, eps):
    return w * x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps)


def rope_cos_sin(torch, positions, head_dim, theta, dtype):
    # pinned: inv_freq and angle in float32, cos/sin in the working dtype
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float32) / head_dim))
    angle = positions.to(torch.float32)[..., None] * inv_freq  # [B, T, d/2] float32
    angle = torch.cat([angle, angle], dim=-1).to(dtype)         # element i and i + d/2 share a frequency
    return torch.cos(angle), torch.sin(angle)


def apply_rope(torch, x, cos, sin):
    # x [B, H, T, d]; cos/sin [B, T, d]; rotate-half: (x1, x2) -> (-x2, x1)
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def silu(torch, x):
    return x * torch.sigmoid(x)


class Adapter:
    """A PEFT LoRA adapter: per target path (model.layers.{l}.self_attn.q_proj) its (A, B), the scaling, the projectors."""

    def __init__(self, case_dir, cfg):
        where = os.path.join(case_dir, "adapter_config.json")
        raw = load_json(where)
        if not isinstance(raw, dict):
            fail(f"{where}: expected a JSON object")
        if raw.get("peft_type") != "LORA" or raw.get("task_type") != "CAUSAL_LM":
            fail(f"{where}: only peft_type \"LORA\" with task_type \"CAUSAL_LM\" is supported")
        for key in ("use_rslora", "use_dora", "fan_in_fan_out", "lora_bias"):
            if raw.get(key):
                fail(f"{where}: {key} is set; only plain LoRA is supported")
        for key in ("layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern"):
            if raw.get(key):
                fail(f"{where}: {key} is set; only the same rank and alpha on every layer are supported")
        if raw.get("bias", "none") != "none":
            fail(f"{where}: bias must be \"none\"")
        r, alpha, targets = raw.get("r"), raw.get("lora_alpha"), raw.get("target_modules")
        if not is_int(r) or r < 1 or not is_num(alpha) or not alpha > 0:
            fail(f"{where}: r must be an integer >= 1 and lora_alpha a positive number")
        known = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
                 "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
        if not isinstance(targets, list) or not targets or any(t not in known for t in targets):
            fail(f"{where}: target_modules must be a list of {sorted(known)}, got {targets!r}")
        saved = raw.get("modules_to_save") or []
        if any(m != "multi_modal_projector" for m in saved):
            fail(f"{where}: modules_to_save may only name multi_modal_projector, got {saved!r}")
        self.scaling = alpha / r  # PEFT's LoRA: lora_alpha / r (not rsLoRA's / sqrt(r))

        st_path = os.path.join(case_dir, "adapter_model.safetensors")
        if not os.path.exists(st_path):
            fail(f"{st_path}: file not found")
        raw_t = read_safetensors(st_path)
        c, i, q, kv = cfg.hidden, cfg.inter, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        dims = {"q_proj": (c, q), "k_proj": (c, kv), "v_proj": (c, kv), "o_proj": (q, c),
                "gate_proj": (c, i), "up_proj": (c, i), "down_proj": (i, c)}  # (in, out)
        self.expected = {}  # saved name -> shape
        self.modules = {}   # target path -> (saved name of A, saved name of B)
        for l in range(cfg.layers):
            for t in targets:
                path = f"model.layers.{l}.{known[t]}.{t}"
                a, b = f"base_model.model.{path}.lora_A.weight", f"base_model.model.{path}.lora_B.weight"
                self.expected[a] = (r, dims[t][0])
                self.expected[b] = (dims[t][1], r)
                self.modules[path] = (a, b)
        self.projectors = {}  # base name -> saved name
        if saved:
            for n, shape in cfg.expected_shapes().items():
                if n.startswith("multi_modal_projector."):
                    self.projectors[n] = "base_model.model." + n
                    self.expected["base_model.model." + n] = shape
        missing = [n for n in self.expected if n not in raw_t]
        extra = [n for n in raw_t if n not in self.expected]
        if missing or extra:
            fail(f"{st_path}: missing tensors {missing[:4]}, unexpected tensors {extra[:4]}")
        for n, shape in self.expected.items():
            if tuple(raw_t[n].shape) != shape:
                fail(f"{st_path}: {n} has shape {list(raw_t[n].shape)}, expected {list(shape)}")
        self.raw = raw_t


def linear(P, adapter, x, path, bias):
    """x W^T (+ b) of the Linear at path, plus its LoRA delta (alpha / r) (x A^T) B^T when the adapter targets it."""
    y = x @ P[path + ".weight"].T
    if bias:
        y = y + P[path + ".bias"]
    if adapter is not None and path in adapter.modules:
        a, b = adapter.modules[path]
        y = y + adapter.scaling * ((x @ P[a].T) @ P[b].T)
    return y


def projector(P, adapter, name):
    """A projector tensor as the forward reads it: the adapter's copy (modules_to_save) where it has one, else the base's."""
    if adapter is not None and name in adapter.projectors:
        return P[adapter.projectors[name]]
    return P[name]


def forward(torch, F, cfg, P, batch, adapter=None):
    """Returns raw logits [B, T, V]. P holds the base's tensors, and with an adapter its tensors by their saved names."""
    ids, lengths, positions, feats, slots = batch
    B, T = ids.shape
    c, H, KV, d = cfg.hidden, cfg.heads, cfg.kv_heads, cfg.head_dim

    x = P["model.embed_tokens.weight"][ids]  # [B, T, c]
    for mod in cfg.modalities():
        if feats[mod] is None:
            continue
        pre = f"multi_modal_projector.{mod}."
        h = feats[mod] @ projector(P, adapter, pre + "linear_1.weight").T + projector(P, adapter, pre + "linear_1.bias")
        if cfg.projector == "mlp":
            h = (F.gelu(h, approximate="tanh") @ projector(P, adapter, pre + "linear_2.weight").T
                 + projector(P, adapter, pre + "linear_2.bias"))
        bi, ti = slots[mod]
        x = x.index_put((bi, ti), h)  # out of place: the replaced rows carry no embedding gradient

    cos, sin = rope_cos_sin(torch, positions, d, cfg.theta, x.dtype)
    i = torch.arange(T)
    allowed = (i[None, :] <= i[:, None])[None, :, :] & (i[None, None, :] < lengths[:, None, None])  # [B, Ti, Tj]
    group = H // KV
    kv_of_head = torch.arange(H) // group  # query head h reads kv head h // (H / KV)

    for l in range(cfg.layers):
        p = f"model.layers.{l}."
        hn = rmsnorm(torch, x, P[p + "input_layernorm.weight"], cfg.eps)
        q = linear(P, adapter, hn, p + "self_attn.q_proj", True)
        k = linear(P, adapter, hn, p + "self_attn.k_proj", True)
        v = linear(P, adapter, hn, p + "self_attn.v_proj", True)
        q = q.view(B, T, H, d).transpose(1, 2)   # [B, H, T, d]
        k = k.view(B, T, KV, d).transpose(1, 2)  # [B, KV, T, d]
        v = v.view(B, T, KV, d).transpose(1, 2)
        q = apply_rope(torch, q, cos, sin)
        k = apply_rope(torch, k, cos, sin)
        k = k[:, kv_of_head]  # [B, H, T, d]
        v = v[:, kv_of_head]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)  # [B, H, Ti, Tj]
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
        att = torch.softmax(scores, dim=-1) @ v  # [B, H, T, d]
        att = att.transpose(1, 2).reshape(B, T, H * d)
        x = x + linear(P, adapter, att, p + "self_attn.o_proj", False)
        hn = rmsnorm(torch, x, P[p + "post_attention_layernorm.weight"], cfg.eps)
        gate = linear(P, adapter, hn, p + "mlp.gate_proj", False)
        up = linear(P, adapter, hn, p + "mlp.up_proj", False)
        x = x + linear(P, adapter, silu(torch, gate) * up, p + "mlp.down_proj", False)

    x = rmsnorm(torch, x, P["model.norm.weight"], cfg.eps)
    head = P["model.embed_tokens.weight"] if cfg.tie else P["lm_head.weight"]
    return x @ head.T


def loss_of(torch, logits, targets, weights, temperature):
    logp_all = torch.log_softmax(logits / temperature, dim=-1)
    valid = targets >= 0
    logp = torch.gather(logp_all, -1, targets.clamp(min=0)[..., None])[..., 0]
    logp = torch.where(valid, logp, torch.zeros_like(logp))
    return -(weights * logp).sum(), logp


def run(case_dir, dtype_name):
    import torch
    import torch.nn.functional as F

    dtype = {"float64": torch.float64, "float32": torch.float32}[dtype_name]
    torch.set_default_dtype(dtype)

    cfg = Config(load_json(os.path.join(case_dir, "config.json")), os.path.join(case_dir, "config.json"))
    inp = Inputs(load_json(os.path.join(case_dir, "inputs.json")), cfg, os.path.join(case_dir, "inputs.json"))
    st_path = os.path.join(case_dir, "model.safetensors")
    if not os.path.exists(st_path):
        fail(f"{st_path}: file not found")
    raw = read_safetensors(st_path)

    expected = cfg.expected_shapes()
    missing = [n for n in expected if n not in raw]
    extra = [n for n in raw if n not in expected]
    if missing:
        fail(f"{st_path}: missing tensors {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if extra:
        hint = " (the config ties the LM head, so lm_head.weight must be absent)" if "lm_head.weight" in extra else ""
        fail(f"{st_path}: unexpected tensors {extra[:8]}{hint}")
    for n, shape in expected.items():
        if tuple(raw[n].shape) != shape:
            fail(f"{st_path}: {n} has shape {list(raw[n].shape)}, config says {list(shape)}")

    # what trains: every parameter, or with an adapter its tensors alone (the base frozen)
    adapter = None
    if os.path.exists(os.path.join(case_dir, "adapter_config.json")):
        adapter = Adapter(case_dir, cfg)
    P = {n: torch.tensor(raw[n], dtype=dtype, requires_grad=adapter is None) for n in expected}
    if adapter is None:
        names = list(expected)
    else:
        names = list(adapter.expected)
        P.update({n: torch.tensor(adapter.raw[n], dtype=dtype, requires_grad=True) for n in names})

    # the padded batch
    B = len(inp.ids)
    lens = [len(s) for s in inp.ids]
    T = max(lens)
    ids = torch.zeros(B, T, dtype=torch.long)
    targets = torch.full((B, T), -1, dtype=torch.long)
    weights = torch.zeros(B, T, dtype=dtype)
    for b, s in enumerate(inp.ids):
        ids[b, :len(s)] = torch.tensor(s)
        targets[b, :len(s) - 1] = torch.tensor(s[1:])
        weights[b, :len(s) - 1] = torch.tensor(inp.weights[b][:len(s) - 1], dtype=dtype)
    lengths = torch.tensor(lens)
    positions = torch.arange(T)[None, :].expand(B, T)  # 0..len-1 on the real rows
    feats, slots = {}, {}
    for mod in cfg.modalities():
        rows, bi, ti = [], [], []
        for b in range(B):
            if inp.features[mod][b] is None:
                continue
            where_t = [t for t, tok in enumerate(inp.ids[b]) if tok == cfg.token_id[mod]]
            rows.append(inp.features[mod][b])
            bi += [b] * len(where_t)
            ti += where_t
        if rows:
            feats[mod] = torch.tensor(np.concatenate(rows, axis=0), dtype=dtype)
            slots[mod] = (torch.tensor(bi, dtype=torch.long), torch.tensor(ti, dtype=torch.long))
        else:
            feats[mod] = None
    batch = (ids, lengths, positions, feats, slots)

    # forward, loss, gradients
    logits = forward(torch, F, cfg, P, batch, adapter)
    loss, logp = loss_of(torch, logits, targets, weights, inp.temperature)
    loss.backward()
    pad = (torch.arange(T)[None, :] >= lengths[:, None])
    out = {
        "logits": logits.detach().masked_fill(pad[..., None], 0.0).numpy(),
        "logprobs": logp.detach().numpy(),
        "loss": np.array([loss.item()]),
    }
    for n in names:
        out["grad." + n] = P[n].grad.detach().numpy().copy()

    # AdamW steps, each re-running forward + backward from the updated parameters
    adam_losses, adam_norms = [], []
    if inp.adam is not None and inp.adam["steps"] > 0:
        a = inp.adam
        m = {n: torch.zeros_like(P[n]) for n in names}
        v = {n: torch.zeros_like(P[n]) for n in names}
        for step in range(1, a["steps"] + 1):
            for n in names:
                P[n].grad = None
            logits = forward(torch, F, cfg, P, batch, adapter)
            loss, _ = loss_of(torch, logits, targets, weights, inp.temperature)
            loss.backward()
            adam_losses.append(loss.item())
            with torch.no_grad():
                norm = math.sqrt(sum(float((P[n].grad * P[n].grad).sum()) for n in names))
                adam_norms.append(norm)
                coef = 1.0
                if a["max_grad_norm"] > 0:
                    coef = min(1.0, a["max_grad_norm"] / (norm + 1e-6))
                bc1 = 1.0 - a["beta1"] ** step
                bc2 = 1.0 - a["beta2"] ** step
                for n in names:
                    g = P[n].grad * coef
                    m[n].mul_(a["beta1"]).add_((1.0 - a["beta1"]) * g)
                    v[n].mul_(a["beta2"]).add_((1.0 - a["beta2"]) * g * g)
                    update = (m[n] / bc1) / (torch.sqrt(v[n] / bc2) + a["eps"])
                    if P[n].dim() == 2:
                        update = update + a["weight_decay"] * P[n]
                    P[n].sub_(a["lr"] * update)
    out["adam_losses"] = np.array(adam_losses, dtype=np.float64)
    out["adam_grad_norms"] = np.array(adam_norms, dtype=np.float64)

    write_safetensors(os.path.join(case_dir, "outputs.safetensors"), out)
    return loss_summary(out, adam_losses)


def loss_summary(out, adam_losses):
    s = f"loss {out['loss'][0]:.9g}"
    if adam_losses:
        s += "; adam losses " + ", ".join(f"{x:.9g}" for x in adam_losses)
    return s


def main(argv):
    ap = argparse.ArgumentParser(prog="oracle.py", description="PyTorch oracle for the hintgrpo engine: "
                                 "writes CASE_DIR/outputs.safetensors from config.json, model.safetensors, inputs.json")
    ap.add_argument("case_dir")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="working precision (default float64, the reference)")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.case_dir):
        print(f"oracle.py: error: {args.case_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        import torch  # noqa: F401
        if np is None:
            raise ImportError("numpy")
    except ImportError:
        print(f"oracle.py: error: {sys.executable} cannot import torch (or numpy); run it with Debian's /usr/bin/python3 "
              "after `apt-get install -y python3-torch`", file=sys.stderr)
        return 2
    try:
        summary = run(args.case_dir, args.dtype)
    except BadInput as e:
        print(f"oracle.py: error: {e}", file=sys.stderr)
        return 2
    print(f"oracle.py: wrote {os.path.join(args.case_dir, 'outputs.safetensors')} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
