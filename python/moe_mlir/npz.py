"""Reading and writing layer dumps (docs/layer-dump.md) without the C++ tool.

A dump is an uncompressed ``.npz``: one ``.npy`` per array plus ``meta``, a
``uint8`` array holding UTF-8 JSON. bfloat16 has no NumPy dtype, so it travels
as ``uint16`` bit patterns and ``meta["dtypes"][name] == "bfloat16"``.
"""

import json

import numpy as np

FORMAT = "moe-layer-dump"
VERSION = 1


def bf16_bits_to_float(bits):
    """uint16 bfloat16 bit patterns -> float32 (exact: bf16 is a truncated f32)."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float_to_bf16_bits(x):
    """float -> uint16 bfloat16 bit patterns, round to nearest even (as
    torch/LLVM do); NaNs stay quiet NaNs instead of rounding into infinity."""
    f = np.asarray(x, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(f)
    if nan.any():
        out[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def _dtype_name(arr):
    return np.dtype(arr.dtype).name


def save_layer(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray, dump naming, e.g. ``up_base.data``)
    and ``meta`` (dict) in the dump format.

    ``meta["dtypes"]`` is completed from the arrays; an entry already saying
    ``"bfloat16"`` is kept (its array must then be ``uint16`` bits), because
    that is the one dtype the array itself cannot tell.
    """
    meta = dict(meta)
    meta.setdefault("format", FORMAT)
    meta.setdefault("version", VERSION)
    given = dict(meta.get("dtypes") or {})
    dtypes = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if given.get(name) == "bfloat16":
            if arr.dtype != np.uint16:
                raise ValueError(f"{name}: bfloat16 must be stored as uint16 bits")
            dtypes[name] = "bfloat16"
        else:
            dtypes[name] = _dtype_name(arr)
    meta["dtypes"] = dtypes
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    # np.savez (not savez_compressed): the format is specified uncompressed.
    with open(path, "wb") as f:
        np.savez(f, meta=blob, **{k: np.asarray(v) for k, v in arrays.items()})


def read_dump(path):
    """Raw contents of a dump: (arrays as stored, meta dict)."""
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ValueError(f"{path}: no 'meta' array; not a layer dump")
        meta = json.loads(bytes(z["meta"]).decode("utf-8"))
        arrays = {name: z[name] for name in z.files if name != "meta"}
    if meta.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version", VERSION) != VERSION:
        raise ValueError(f"{path}: dump version {meta.get('version')} unsupported")
    return arrays, meta
