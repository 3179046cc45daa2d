#!/usr/bin/env python3
"""Checks that safetensors files written by hintgrpo load the way Hugging Face loads them.

Usage: check_hf_load.py EXPECTED.json

EXPECTED.json: {"files": [{"path": ..., "dtype": "F32" | "BF16",
                           "tensors": {name: {"shape": [...], "bits": [fp32 bit patterns as int32]}}}]}

Each file is parsed by a strict pure-Python reader that enforces the rules of Hugging Face's
safetensors library (data contiguous from offset 0 to the end of the file, sizes matching
shapes) plus the "format": "pt" metadata transformers asks for, then turned into torch
tensors. F32 tensors must equal the expected values bit for bit; BF16 tensors must equal
torch's own fp32 -> bf16 rounding of them (NaN only needs to stay NaN). Where the
`safetensors` package is installed its loader must agree too. Needs Debian's python3 with
python3-torch. Exit status 0 when everything matches.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "BF16": (torch.bfloat16, 2), "F16": (torch.float16, 2)}


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in header")
    return dict(pairs)


def read_strict(path):
    """Returns (metadata, {name: tensor}) or raises ValueError saying what is wrong."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or 8 + n > len(data):
        raise ValueError(f"header length {n} implausible for a {len(data)}-byte file")
    if n % 8 != 0:
        raise ValueError(f"header length {n} is not a multiple of 8")
    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("__metadata__ must map strings to strings")
    if metadata.get("format") != "pt":
        raise ValueError(f"__metadata__ {metadata} lacks format=pt, which transformers requires")
    body = data[8 + n:]
    tensors = {}
    expected_begin = 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        dtype, size = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        if begin != expected_begin:
            raise ValueError(f"{name}: data starts at {begin}, expected {expected_begin} (gap or overlap)")
        count = 1
        for d in e["shape"]:
            count *= d
        if end - begin != count * size:
            raise ValueError(f"{name}: {end - begin} bytes for shape {e['shape']} of {e['dtype']}")
        expected_begin = end
        raw = bytearray(body[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"])
    if expected_begin != len(body):
        raise ValueError(f"tensor data ends at {expected_begin} but the body holds {len(body)} bytes")
    return metadata, tensors


def compare(name, dtype, got, spec):
    want = torch.tensor(spec["bits"], dtype=torch.int32).view(torch.float32).reshape(spec["shape"])
    if list(got.shape) != spec["shape"]:
        return f"{name}: shape {list(got.shape)}, expected {spec['shape']}"
    if dtype == "F32":
        if got.dtype != torch.float32 or not torch.equal(got.view(torch.int32), want.view(torch.int32)):
            return f"{name}: F32 values differ from the expected bits"
        return None
    ref = want.to(torch.bfloat16)  # torch rounds to nearest even
    if got.dtype != torch.bfloat16:
        return f"{name}: dtype {got.dtype}, expected bfloat16"
    nan = torch.isnan(ref)
    if not torch.equal(torch.isnan(got), nan):
        return f"{name}: NaN positions differ"
    if not torch.equal(got.view(torch.int16)[~nan], ref.view(torch.int16)[~nan]):
        bad = (got.view(torch.int16) != ref.view(torch.int16)) & ~nan
        i = bad.flatten().nonzero()[0].item()
        return (f"{name}: BF16 rounding differs from torch at flat index {i}: "
                f"fp32 bits {spec['bits'][i] & 0xFFFFFFFF:#010x} -> ours {got.view(torch.int16).flatten()[i].item() & 0xFFFF:#06x}, "
                f"torch {ref.view(torch.int16).flatten()[i].item() & 0xFFFF:#06x}")
    return None


def main():
    with open(sys.argv[1]) as f:
        expected = json.load(f)
    try:
        import safetensors.torch as st  # optional: the real loader, where installed
    except ImportError:
        st = None
    errors, count = [], 0
    for spec in expected["files"]:
        path = spec["path"]
        try:
            _, tensors = read_strict(path)
        except (ValueError, KeyError, json.JSONDecodeError) as e:
            errors.append(f"{path}: {e}")
            continue
        if set(tensors) != set(spec["tensors"]):
            errors.append(f"{path}: tensors {sorted(set(tensors) ^ set(spec['tensors']))} differ from the expected set")
            continue
        if st is not None:
            official = st.load_file(path)
            for name, t in tensors.items():
                if not torch.equal(official[name].view(torch.uint8), t.view(torch.uint8)):
                    errors.append(f"{path}: {name} differs between safetensors.torch and the strict reader")
        for name, t in tensors.items():
            e = compare(name, spec["dtype"], t, spec["tensors"][name])
            if e:
                errors.append(f"{path}: {e}")
            count += 1
    for e in errors:
        print("FAIL", e)
    print(f"{'ok' if not errors else 'FAILED'}: {count} tensors in {len(expected['files'])} files"
          f" (safetensors package: {'used' if st else 'not installed'})")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
