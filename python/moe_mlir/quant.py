"""Weight quantisation as ``#moe.quant`` defines it (docs/semantics.md).

Codes are unsigned, ``q`` in ``[0, 2^bits)``; value ``(q - zp) * scale`` with
one scale (and zero point) per group of ``group_size`` consecutive elements of
the last axis (``group_size = 0``: the whole row is one group; a last group
may be shorter when the row length is not a multiple). ``symmetric`` means no
stored zero point and ``zp = 2^(bits-1)``, as onnxruntime's QMoE defaults.

Layout choices the docs leave open, fixed here (and in the C++ dump):
- ``scales`` and ``zero_points`` have shape ``shape[:-1] + (n_groups,)``,
  the trailing axis kept even when ``n_groups == 1``;
- zero points are one ``uint8`` per group, never nibble-packed.
"""

import math

import numpy as np

from .npz import bf16_bits_to_float, float_to_bf16_bits

FLOAT_STORAGE = {"f16": "float16", "bf16": "bfloat16", "f32": "float32"}
INT_STORAGE = {"i4": 4, "i8": 8}
PACKINGS = ("low_nibble_first", "high_nibble_first")


def pack_int4(codes, packing="low_nibble_first"):
    """Pack 4-bit codes two per byte along the last axis.

    Element ``2j`` goes to the low nibble of byte ``j`` (``low_nibble_first``,
    onnxruntime's MatMulNBits/QMoE order) or the high nibble; an odd length is
    padded with a 0 code. ``[1, 2, 3] -> [0x21, 0x03]``.
    """
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() > 15):
        raise ValueError("int4 codes must lie in [0, 15]")
    codes = codes.astype(np.uint8)
    if codes.shape[-1] % 2:
        pad = [(0, 0)] * (codes.ndim - 1) + [(0, 1)]
        codes = np.pad(codes, pad)
    first, second = codes[..., 0::2], codes[..., 1::2]
    if packing == "low_nibble_first":
        return (first | (second << 4)).astype(np.uint8)
    if packing == "high_nibble_first":
        return ((first << 4) | second).astype(np.uint8)
    raise ValueError(f"unknown packing {packing!r}")


def unpack_int4(data, length, packing="low_nibble_first"):
    """Inverse of :func:`pack_int4`: ``length`` codes along the last axis."""
    data = np.asarray(data, dtype=np.uint8)
    if data.shape[-1] != (length + 1) // 2:
        raise ValueError(f"{data.shape[-1]} bytes cannot hold {length} int4 codes")
    if packing not in PACKINGS:
        raise ValueError(f"unknown packing {packing!r}")
    lo, hi = data & 0x0F, data >> 4
    first, second = (lo, hi) if packing == "low_nibble_first" else (hi, lo)
    out = np.stack([first, second], axis=-1).reshape(data.shape[:-1] + (-1,))
    return out[..., :length]


def _num_groups(length, group_size):
    return 1 if group_size == 0 else math.ceil(length / group_size)


def _group_index(length, group_size):
    # Element i of a row belongs to group i // group_size.
    if group_size == 0:
        return np.zeros(length, dtype=np.intp)
    return np.arange(length) // group_size


def _round_scale_up(scale, scale_dtype):
    """Store ``scale`` in ``scale_dtype`` without going below it, so the codes
    computed with the stored scale still cover the group's range and the
    rounding error stays within half a step. Returns (stored, as float64)."""
    if scale_dtype == "bfloat16":
        bits = float_to_bf16_bits(scale)
        val = bf16_bits_to_float(bits).astype(np.float64)
        low = val < scale
        bits = np.where(low, bits + 1, bits).astype(np.uint16)  # next bf16 up (scales > 0)
        return bits, bf16_bits_to_float(bits).astype(np.float64)
    dt = np.dtype(scale_dtype)
    stored = scale.astype(dt)
    low = stored.astype(np.float64) < scale
    stored = np.where(low, np.nextafter(stored, dt.type(np.inf)), stored).astype(dt)
    return stored, stored.astype(np.float64)


def quantize(w, bits, group_size=0, symmetric=False, scale_dtype="float16",
             packing="low_nibble_first"):
    """Quantise ``w`` along its last axis.

    Returns ``(data, scales, zero_points)``: ``data`` uint8 (nibble-packed for
    4 bits), ``scales`` in ``scale_dtype`` (uint16 bits for ``"bfloat16"``),
    ``zero_points`` uint8 or ``None`` when symmetric. Every element dequantises
    to within half a step (``scale / 2``) of ``w``.
    """
    if bits not in (4, 8):
        raise ValueError("bits must be 4 or 8")
    w = np.asarray(w, dtype=np.float64)
    length = w.shape[-1]
    ng = _num_groups(length, group_size)
    gs = length if group_size == 0 else group_size
    # Pad with copies of the row's last element: they never change a group's
    # min/max, so a short last group is handled like the others.
    padded = np.pad(w, [(0, 0)] * (w.ndim - 1) + [(0, ng * gs - length)], mode="edge")
    groups = padded.reshape(w.shape[:-1] + (ng, gs))
    qmax = 2 ** bits - 1
    if symmetric:
        zp = 2 ** (bits - 1)
        # zp - (2^(bits-1) - 1) .. zp + (2^(bits-1) - 1) keeps both signs
        # representable; the extra negative code goes unused, as in ORT.
        scale = np.abs(groups).max(axis=-1) / (2 ** (bits - 1) - 1)
    else:
        # Include 0 in the range so the zero point is a valid code.
        lo = np.minimum(groups.min(axis=-1), 0.0)
        hi = np.maximum(groups.max(axis=-1), 0.0)
        scale = (hi - lo) / qmax
    scale = np.where(scale > 0, scale, 1.0)  # all-zero group: any scale works
    stored, scale64 = _round_scale_up(scale, scale_dtype)
    if symmetric:
        zp_arr = None
        zp64 = np.full(scale.shape, float(zp))
    else:
        zp64 = np.clip(np.round(-lo / scale64), 0, qmax)
        zp_arr = zp64.astype(np.uint8)
    gidx = _group_index(length, group_size)
    codes = np.clip(np.round(w / scale64[..., gidx]) + zp64[..., gidx], 0, qmax)
    codes = codes.astype(np.uint8)
    data = pack_int4(codes, packing) if bits == 4 else codes
    return data, stored, zp_arr


def dequantize(data, scales, zero_points, qmeta):
    """Value of a ``#moe.quant`` weight as float64 in its logical shape.

    ``qmeta`` is one ``meta["quant"]`` entry (storage, group_size, symmetric,
    packing, shape, scale_dtype). ``scales`` must already be a float array
    (bf16 bits decoded by the caller, which knows the dtypes table).
    """
    storage = qmeta["storage"]
    shape = tuple(qmeta["shape"])
    if storage in FLOAT_STORAGE:
        arr = np.asarray(data)
        if FLOAT_STORAGE[storage] == "bfloat16" and arr.dtype == np.uint16:
            arr = bf16_bits_to_float(arr)
        return arr.astype(np.float64).reshape(shape)
    if storage not in INT_STORAGE:
        raise ValueError(f"unknown storage {storage!r}")
    bits = INT_STORAGE[storage]
    length = shape[-1]
    data = np.asarray(data, dtype=np.uint8)
    if bits == 4:
        packed_shape = shape[:-1] + ((length + 1) // 2,)
        codes = unpack_int4(data.reshape(packed_shape), length,
                            qmeta.get("packing", "low_nibble_first"))
    else:
        codes = data.reshape(shape)
    group_size = int(qmeta.get("group_size", 0))
    ng = _num_groups(length, group_size)
    gshape = shape[:-1] + (ng,)
    scales = np.asarray(scales, dtype=np.float64).reshape(gshape)
    if qmeta.get("symmetric", False):
        zp = np.full(gshape, float(2 ** (bits - 1)))
    else:
        if zero_points is None:
            raise ValueError("asymmetric quantisation needs zero_points")
        zp = np.asarray(zero_points, dtype=np.float64).reshape(gshape)
    gidx = _group_index(length, group_size)
    return (codes.astype(np.float64) - zp[..., gidx]) * scales[..., gidx]


def quantize_entry(name, w, storage, group_size=0, symmetric=False,
                   scale_dtype="float16", packing="low_nibble_first"):
    """Dump arrays and ``meta["quant"][name]`` entry for weight ``name``.

    Returns ``(arrays, qmeta, dtypes)``: ``arrays`` keyed ``name.data`` /
    ``name.scales`` / ``name.zero_points``; ``dtypes`` names bfloat16 arrays,
    to be merged into ``meta["dtypes"]`` before :func:`save_layer`.
    """
    w = np.asarray(w)
    qmeta = {"storage": storage, "group_size": int(group_size),
             "symmetric": bool(symmetric), "scale_dtype": None,
             "zero_point_dtype": None, "packing": packing,
             "shape": list(w.shape)}
    arrays, dtypes = {}, {}
    if storage in FLOAT_STORAGE:
        kind = FLOAT_STORAGE[storage]
        if kind == "bfloat16":
            arrays[name + ".data"] = float_to_bf16_bits(w)
            dtypes[name + ".data"] = "bfloat16"
        else:
            arrays[name + ".data"] = np.asarray(w, dtype=kind)
        qmeta["symmetric"] = False
        qmeta["group_size"] = 0
        return arrays, qmeta, dtypes
    data, scales, zps = quantize(w, INT_STORAGE[storage], group_size, symmetric,
                                 scale_dtype, packing)
    arrays[name + ".data"] = data
    arrays[name + ".scales"] = scales
    if scale_dtype == "bfloat16":
        dtypes[name + ".scales"] = "bfloat16"
    qmeta["scale_dtype"] = scale_dtype
    if zps is not None:
        arrays[name + ".zero_points"] = zps
        qmeta["zero_point_dtype"] = "uint8"
    return arrays, qmeta, dtypes
