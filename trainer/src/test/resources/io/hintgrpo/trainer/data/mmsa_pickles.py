"""Writes small MMSA-style feature pickles for MmsaImportTest, and what the importer must make of them.

Run with Debian's /usr/bin/python3 (python3-numpy). Usage:

    mmsa_pickles.py OUT_DIR NAME=OPTION,OPTION,... [NAME=...]

writes OUT_DIR/NAME.pkl and OUT_DIR/NAME.expected.json for each NAME. Options:

    proto=2|3|4|5         pickle protocol (default 4; 5 stores arrays in-band through _frombuffer + BYTEARRAY8)
    np2                   numpy 2 module paths (numpy._core.*) although this is numpy 1
    text=list|object|unicode, ids=list|object|unicode
                          raw_text / id as a Python list, an object array or a '<U' array (default list)
    lengths               store audio_lengths / vision_lengths (the last record of each split has no real frames)
    pad=right|left|both   where the zero padding goes (default right; left with lengths is a mislabelled export)
    nan                   put NaN, -inf and +inf into real frames
    sims                  CH-SIMS: labels in [-1, 1] and regression_labels_T/A/V
    extra                 an unknown extra key in every split
    f64                   features as float64; bigendian: features as '>f4'
    pool=N                the expected output pooled to at most N frames (the importer gets --pool-frames N)
    drop=SPLIT            leave a split out; dropkey=KEY: leave KEY out of train
    wrongshape            train's audio is 2-D; shortrows: train's vision has one row too few
    evil                  train holds an object that unpickles by calling os.system
    labels2d              regression_labels as [N, 1]; badlabel: train's second label is 7
    big                   long sequences (arrays over 64 KiB, which the reader leaves in the file until used)
"""
import json, os, pickle, sys, types, zlib
import numpy as np

SPLITS = {'train': 6, 'valid': 3, 'test': 3}


def numpy2_names():
    """A pickler that writes numpy 2's module paths (numpy._core.*): numpy 2 is not installed here, so the
    reduce functions are swapped for stand-ins registered under those names."""
    stand_ins = {}
    for mod, fn in (('multiarray', '_reconstruct'), ('numeric', '_frombuffer'), ('multiarray', 'scalar')):
        full = 'numpy._core.' + mod
        m = sys.modules.setdefault(full, types.ModuleType(full))
        f = types.FunctionType((lambda *a: None).__code__, {}, fn)
        f.__module__, f.__qualname__ = full, fn
        setattr(m, fn, f)
        stand_ins[fn] = f
    sys.modules.setdefault('numpy._core', types.ModuleType('numpy._core'))

    class Pickler(pickle.Pickler):
        def __init__(self, f, protocol):
            super().__init__(f, protocol=protocol)
            self.protocol = protocol

        def reducer_override(self, obj):
            if isinstance(obj, (np.ndarray, np.generic)):
                rv = obj.__reduce_ex__(self.protocol)
                return (stand_ins[rv[0].__name__],) + tuple(rv[1:])
            return NotImplemented
    return Pickler


class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def cut(x, length, zero_ends):
    if length is not None:
        x = x[:length]
    elif zero_ends:
        nz = np.flatnonzero(np.any(x != 0, axis=1))
        x = x[nz[0]:nz[-1] + 1] if len(nz) else x[:0]
    return x


def pool(x, frames):
    if frames is None or len(x) <= frames:
        return x
    return np.stack([c.mean(axis=0, dtype=np.float64) for c in np.array_split(x, frames)]).astype(np.float32)


def modality(rng, n, t, d, o, nonfinite):
    """Padded features [n, t, d], real lengths, and per record the expected frames (cut, cleaned, pooled)."""
    x = np.zeros((n, t, d), dtype=np.float32)
    lengths = rng.integers(1, t + 1, size=n)
    lengths[-1] = 0 if 'lengths' in o else lengths[-1]  # a record with no real frames
    pad = o.get('pad', 'right')
    starts = [{'right': 0, 'left': t - L, 'both': (t - L) // 2}[pad] for L in lengths]
    for i, L in enumerate(lengths):
        x[i, starts[i]:starts[i] + L] = rng.normal(size=(L, d)).astype(np.float32) + 0.5
    if 'nan' in o:  # inside the real frames only: padding is never counted
        for i, L in enumerate(lengths):
            if L > 0:
                x[i, starts[i] + rng.integers(0, L), rng.integers(0, d)] = [np.nan, -np.inf, np.inf][i % 3]
    expected = []
    for i in range(n):
        f = cut(x[i], int(lengths[i]) if 'lengths' in o else None, 'lengths' not in o)
        bad = ~np.isfinite(f)
        nonfinite += bad.sum(axis=0)
        f = np.where(bad, 0, f).astype(np.float32)
        if len(f) == 0:
            f = np.zeros((1, d), dtype=np.float32)
        expected.append(pool(f, o.get('pool')))
    return x, lengths, expected


def make(path, o):
    T_A, D_A, T_V, D_V = (300, 60, 200, 40) if 'big' in o else (7, 5, 6, 4)
    rng = np.random.default_rng(zlib.crc32(os.path.basename(path).encode()))
    data, expected = {}, {'splits': {}, 'non_finite': {}, 'train_stats': {}}
    words = ['good', 'bad', 'fine', 'so so', 'really great', '很好', 'nope 🙂', '']
    for split, n in SPLITS.items():
        nf_a, nf_v = np.zeros(D_A, dtype=np.int64), np.zeros(D_V, dtype=np.int64)
        a, la, ea = modality(rng, n, T_A, D_A, o, nf_a)
        v, lv, ev = modality(rng, n, T_V, D_V, o, nf_v)
        texts = [words[(i + len(split)) % len(words)] for i in range(n)]
        ids = [f'{split}_vid{i}$_${i + 1}' for i in range(n)]
        if 'sims' in o:
            labels = (rng.integers(-5, 6, size=n) / 5).astype(np.float32)
        else:
            labels = rng.uniform(-3, 3, size=n).astype(np.float32)
            labels[0] = 3.0
            if 'badlabel' in o and split == 'train':
                labels[1] = 7
        d = {'raw_text': as_strings(texts, o.get('text', 'list')), 'id': as_strings(ids, o.get('ids', 'list')),
             'audio': a, 'vision': v, 'regression_labels': labels.reshape(n, 1) if 'labels2d' in o else labels,
             'text': rng.normal(size=(n, 3, 8)).astype(np.float32), 'text_bert': np.ones((n, 3, 3), dtype=np.float32),
             'classification_labels': np.sign(labels).astype(np.float32), 'annotations': ['Positive'] * n}
        if 'lengths' in o:
            d['audio_lengths'], d['vision_lengths'] = la.astype(np.int64), list(int(x) for x in lv)
        scale = 3 if 'sims' in o else 1
        extra = {}
        if 'sims' in o:
            for k, name in (('T', 'label_text'), ('A', 'label_audio'), ('V', 'label_vision')):
                u = (rng.integers(-5, 6, size=n) / 5).astype(np.float32)
                d['regression_labels_' + k] = u
                extra[name] = [float(np.float32(float(y) * scale)) for y in u]
        if 'extra' in o:
            d['speaker'] = np.arange(n)
        if 'f64' in o:
            d['audio'], d['vision'] = a.astype(np.float64), v.astype(np.float64)
        if 'bigendian' in o:
            d['audio'], d['vision'] = a.astype('>f4'), v.astype('>f4')
        data[split] = d
        recs = []
        for i in range(n):
            r = {'id': ids[i], 'text': texts[i], 'label': float(np.float32(float(labels[i]) * scale)),
                 'audio': ea[i].tolist(), 'vision': ev[i].tolist()}
            for k, vals in extra.items():
                r[k] = vals[i]
            recs.append(r)
        expected['splits'][split] = recs
        expected['non_finite'][split] = {'audio': nf_a.tolist(), 'vision': nf_v.tolist()}
        if split == 'train':
            for m, e in (('audio', ea), ('vision', ev)):
                allf = np.concatenate(e).astype(np.float64)
                expected['train_stats'][m] = {'frames': len(allf), 'mean': allf.mean(axis=0).tolist(), 'std': allf.std(axis=0).tolist()}
    if 'drop' in o:
        del data[o['drop']]
    if 'dropkey' in o:
        del data['train'][o['dropkey']]
    if 'wrongshape' in o:
        data['train']['audio'] = data['train']['audio'].mean(axis=1)
    if 'shortrows' in o:
        data['train']['vision'] = data['train']['vision'][:-1]
    if 'evil' in o:
        data['train']['x'] = Evil()
    proto = int(o.get('proto', 4))
    with open(path + '.pkl', 'wb') as f:
        (numpy2_names() if 'np2' in o else pickle.Pickler)(f, protocol=proto).dump(data)
    with open(path + '.expected.json', 'w') as f:
        json.dump(expected, f, ensure_ascii=False)


def as_strings(values, how):
    if how == 'list':
        return list(values)
    if how == 'object':
        return np.array(values, dtype=object)
    return np.array(values)  # '<U'


def options(spec):
    o = {}
    for part in filter(None, spec.split(',')):
        k, _, v = part.partition('=')
        o[k] = (int(v) if v.isdigit() else v) if v else True
    return o


if __name__ == '__main__':
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for arg in sys.argv[2:]:
        name, _, spec = arg.partition('=')
        make(os.path.join(out, name), options(spec))
