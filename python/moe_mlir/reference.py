#!/usr/bin/env python3
"""Float64 reference evaluator for ``moe.layer`` / ``moe.clustered_layer``.

Runs on the ``python3`` on PATH (CPython 3.11, NumPy only). It implements
docs/semantics.md literally, expert by expert, in float64 from the stored
weights widened exactly; every lowering is checked against it.

CLI (from ``python/``, or with it on ``PYTHONPATH``)::

    python3 -m moe_mlir.reference LAYER.npz TOKENS.npy -o OUT.npy
"""

import argparse
import math
import os
import sys

import numpy as np

from .npz import bf16_bits_to_float, read_dump
from .quant import dequantize

KINDS = ("gate", "up", "down")
_SUFFIXES = (".data", ".scales", ".zero_points")


# ---------------------------------------------------------------- loading

def load_layer(path):
    """Read a dump: ``{"meta": meta, name: float64 array, ...}``.

    Quantised weights (``NAME.data/.scales/.zero_points``) come back as one
    dequantised ``NAME`` array in their logical shape; bfloat16 (uint16 bits)
    is decoded. Everything is float64.
    """
    raw, meta = read_dump(path)
    dtypes = meta.get("dtypes") or {}
    quant = meta.get("quant") or {}

    def widen(name):
        arr = raw[name]
        if dtypes.get(name) == "bfloat16":
            arr = bf16_bits_to_float(arr)
        return arr

    layer = {"meta": meta}
    for name in raw:
        if name.endswith(_SUFFIXES):
            continue
        layer[name] = np.asarray(widen(name), dtype=np.float64)
    for name, q in quant.items():
        if name + ".data" not in raw:
            raise ValueError(f"{path}: meta.quant names {name} but {name}.data is missing")
        scales = widen(name + ".scales") if name + ".scales" in raw else None
        zps = raw.get(name + ".zero_points")
        data = raw[name + ".data"]
        if dtypes.get(name + ".data") == "bfloat16":
            data = bf16_bits_to_float(data)
        layer[name] = dequantize(data, scales, zps, q)
    orphans = {n.rsplit(".", 1)[0] for n in raw if n.endswith(_SUFFIXES)} - set(quant)
    if orphans:
        raise ValueError(f"{path}: {sorted(orphans)} stored quantised but not in meta.quant")
    return layer


def _as_layer(layer):
    return load_layer(layer) if isinstance(layer, (str, os.PathLike)) else layer


def _f64(layer, name):
    arr = layer.get(name)
    return None if arr is None else np.asarray(arr, dtype=np.float64)


# ---------------------------------------------------------------- routing

def _softmax(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(z - m)
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(z):
    # Two branches so neither exp overflows.
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _logsumexp(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis) + np.log(np.exp(z - m).sum(axis=axis))


def _top(scores, k):
    """Indices of the k largest per row, ties to the lower index. A stable
    sort of the negated scores keeps equal scores in index order."""
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


# Defaults of the #moe.routing parameters beyond top_k/scoring/order/normalize.
ROUTING_DEFAULTS = {"groups": 1, "groups_kept": 1, "scale": 1.0, "norm_epsilon": 0.0,
                    "norm_floor": 0.0, "mixer_epsilon": 0.0, "weights_on_input": False}


def routing_param(routing_meta, name):
    """``routing_meta[name]``, or its default when absent (older dumps)."""
    v = routing_meta.get(name)
    return ROUTING_DEFAULTS[name] if v is None else v


def _sparsemixer(z, eps):
    """PhiMoE's sparsemixer in eval mode (top 2): picks (i1, i2) and weights
    (w1, w2), docs/semantics.md."""
    def one(masked_in, m, i):
        f = np.maximum(np.abs(z), m)
        with np.errstate(invalid="ignore", divide="ignore"):
            q = (m - z) / f
        # A NaN quotient is not > (as torch's comparison).
        drop = np.greater(q, 2.0 * eps, where=~np.isnan(q), out=np.zeros_like(q, dtype=bool))
        masked = np.where(drop, -np.inf, masked_in)
        return np.take_along_axis(_softmax(masked), i, axis=-1)

    i1 = np.argmax(z, axis=-1)[:, None]  # first index on ties
    m1 = np.take_along_axis(z, i1, axis=-1)
    w1 = one(z, m1, i1)
    l2 = z.copy()
    np.put_along_axis(l2, i1, -np.inf, axis=-1)
    i2 = np.argmax(l2, axis=-1)[:, None]
    m2 = np.take_along_axis(l2, i2, axis=-1)
    w2 = one(l2, m2, i2)
    return np.concatenate([i1, i2], axis=-1), np.concatenate([w1, w2], axis=-1)


def _group_mask(keys, groups, kept):
    """(T, E) bool: experts of the ``kept`` best of ``groups`` contiguous
    groups, a group scored by the sum of its two largest keys (ties to the
    lower group)."""
    t, e = keys.shape
    g = keys.reshape(t, groups, e // groups)
    top2 = -np.sort(-g, axis=-1)[..., :2]
    with np.errstate(invalid="ignore"):
        score = top2.sum(axis=-1)
    best = _top(score, kept)
    keep = np.zeros((t, groups), dtype=bool)
    np.put_along_axis(keep, best, True, axis=-1)
    return np.repeat(keep, e // groups, axis=-1)


def route_logits(z, routing_meta, allowed=None, selection_bias=None):
    """Apply ``#moe.routing`` to logits ``z`` (T, E); ``selection_bias``
    (E,) is the layer's optional operand of that name.

    ``allowed`` (T, E) bool restricts the candidates (hierarchical stage 2):
    the others can be neither selected nor part of a softmax.

    Selection is done on the logits whenever it can be: softmax and sigmoid
    are strictly increasing, so in exact arithmetic "top-k of score(z)" and
    "top-k of z" pick the same experts; selecting on z avoids the false ties
    that float rounding creates in the scores (sigmoid(40) == sigmoid(50) ==
    1.0 in float64), which would otherwise fall to the lower index. With a
    selection bias or expert groups the key is ``score(z) + bias``, which
    the logits do not order, so selection is on the keys then.
    """
    k = int(routing_meta["top_k"])
    scoring = routing_meta.get("scoring", "softmax")
    order = routing_meta.get("order", "score_then_topk")
    groups = int(routing_param(routing_meta, "groups"))
    z = np.asarray(z, dtype=np.float64)
    zc = z if allowed is None else np.where(allowed, z, -np.inf)
    if scoring not in ("softmax", "sigmoid", "sparsemixer"):
        raise ValueError(f"unknown scoring {scoring!r}")
    if order not in ("score_then_topk", "topk_then_score"):
        raise ValueError(f"unknown order {order!r}")
    if scoring == "sparsemixer":
        if k != 2 or order != "score_then_topk" or groups != 1 or selection_bias is not None:
            raise ValueError("sparsemixer takes top_k = 2, score_then_topk, no groups, no selection bias")
        sel, w = _sparsemixer(zc, float(routing_param(routing_meta, "mixer_epsilon")))
    elif order == "score_then_topk":
        scores = _softmax(zc) if scoring == "softmax" else _sigmoid(z)
        if selection_bias is None and groups == 1:
            sel = _top(zc, k)
        else:
            keys = scores if selection_bias is None else scores + np.asarray(selection_bias, np.float64)
            if allowed is not None:
                keys = np.where(allowed, keys, -np.inf)
            if groups > 1:
                mask = _group_mask(keys, groups, int(routing_param(routing_meta, "groups_kept")))
                keys = np.where(mask, keys, -np.inf)
            sel = _top(keys, k)
        w = np.take_along_axis(scores, sel, axis=-1)
    else:
        if selection_bias is not None or groups != 1:
            raise ValueError("topk_then_score takes neither a selection bias nor groups")
        sel = _top(zc, k)
        zs = np.take_along_axis(z, sel, axis=-1)
        w = _softmax(zs) if scoring == "softmax" else _sigmoid(zs)
    if routing_meta.get("normalize", False):
        denom = w.sum(axis=-1, keepdims=True) + float(routing_param(routing_meta, "norm_epsilon"))
        w = w / np.maximum(denom, float(routing_param(routing_meta, "norm_floor")))
    return sel, w * float(routing_param(routing_meta, "scale"))


def router_logits(layer, x):
    z = x @ _f64(layer, "router_weight").T
    b = _f64(layer, "router_bias")
    return z if b is None else z + b


def _cluster_scores(layer, x, z):
    meta = layer["meta"]
    assign = np.asarray(meta["assignment"])
    groups = int(meta.get("num_clusters", assign.max() + 1))
    score = meta["cluster_routing"].get("score", "mass")
    s = np.full((x.shape[0], groups), -np.inf)
    wr, br = _f64(layer, "router_weight"), _f64(layer, "router_bias")
    for c in range(groups):
        members = np.flatnonzero(assign == c)
        if members.size == 0:
            continue  # an empty cluster has no mass and no prototype row: never useful
        if score == "mass":
            s[:, c] = _logsumexp(z[:, members])
        elif score == "mean_row":
            s[:, c] = x @ wr[members].mean(axis=0)
            if br is not None:
                s[:, c] += br[members].mean()
        else:
            raise ValueError(f"unknown cluster score {score!r}")
    return s


def routing(layer, tokens):
    """Selected experts (T, k) and their routing weights (T, k), float64.

    Absent experts are included: they are routed to like any other and only
    contribute nothing in :func:`evaluate`.
    """
    layer = _as_layer(layer)
    meta = layer["meta"]
    x = np.asarray(tokens, dtype=np.float64).reshape(-1, _f64(layer, "router_weight").shape[1])
    z = router_logits(layer, x)
    allowed = None
    cr = meta.get("cluster_routing")
    if meta.get("op") == "moe.clustered_layer" and cr and cr.get("mode", "exact") == "hierarchical":
        s = _cluster_scores(layer, x, z)
        kept = _top(s, int(cr["clusters_per_token"]))
        assign = np.asarray(meta["assignment"])
        allowed = (assign[None, None, :] == kept[:, :, None]).any(axis=1)
        if (allowed.sum(axis=1) < int(meta["routing"]["top_k"])).any():
            raise ValueError("kept clusters hold fewer than top_k experts (the verifier forbids this)")
        if int(routing_param(meta["routing"], "groups")) > 1 or "selection_bias" in layer:
            raise ValueError("hierarchical cluster routing of a layer with expert groups or a "
                             "selection bias (moe-fuse-routing refuses it)")
    return route_logits(z, meta["routing"], allowed, _f64(layer, "selection_bias"))


# ---------------------------------------------------------------- experts

def _erf(v):
    return np.frompyfunc(math.erf, 1, 1)(v).astype(np.float64)


def activate(kind, v):
    """Elementwise activations of ``#moe.activation`` (swiglu is handled in
    :func:`expert_forward`, it needs both halves)."""
    if kind == "silu":
        return v * _sigmoid(v)
    if kind == "gelu":
        return 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)))
    if kind == "gelu_tanh":
        return 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))
    if kind == "relu":
        return np.maximum(v, 0.0)
    if kind == "identity":
        return v
    raise ValueError(f"unknown activation {kind!r}")


def expert_weights(layer):
    """Per-expert weights, float64: ``{gate?, up, down}`` (E, out, in) and
    ``{gate_bias?, up_bias?, down_bias?}``. For a clustered layer the
    matrices are reconstructed as ``base[assignment[e]] + U_e^T V_e``."""
    layer = _as_layer(layer)
    meta = layer["meta"]
    out = {}
    if meta.get("op") == "moe.clustered_layer":
        assign = np.asarray(meta["assignment"])
        for kind in KINDS:
            base = _f64(layer, kind + "_base")
            if base is None:
                continue
            u, v = _f64(layer, kind + "_u"), _f64(layer, kind + "_v")
            ranks = np.asarray(meta["ranks"][kind], dtype=np.int64)
            offs = np.concatenate([[0], np.cumsum(ranks)])
            if u.shape[0] != offs[-1] or v.shape[0] != offs[-1]:
                raise ValueError(f"{kind}: U/V have {u.shape[0]}/{v.shape[0]} rows, ranks sum to {offs[-1]}")
            w = base[assign].copy()
            for e in range(len(assign)):
                rows = slice(offs[e], offs[e + 1])
                w[e] += u[rows].T @ v[rows]  # rank 0: empty product, zeros
            out[kind] = w
    else:
        for kind in KINDS:
            w = _f64(layer, kind + "_weight")
            if w is not None:
                out[kind] = w
    for kind in KINDS:
        b = _f64(layer, kind + "_bias")
        if b is not None:
            out[kind + "_bias"] = b
    if "up" not in out or "down" not in out:
        raise ValueError("a layer needs up and down weights")
    return out


def expert_forward(weights, e, x, act):
    """Output of expert ``e`` on tokens ``x`` (n, H), float64."""
    def lin(kind, inp):
        y = inp @ weights[kind][e].T
        b = weights.get(kind + "_bias")
        return y if b is None else y + b[e]

    kind = act.get("kind", "silu")
    up = lin("up", x)
    if "gate" in weights:
        g = lin("gate", x)
        if kind == "swiglu":
            alpha = float(act.get("alpha") if act.get("alpha") is not None else 1.0)
            beta = float(act.get("beta") if act.get("beta") is not None else 0.0)
            limit = act.get("limit")
            if limit is not None:
                g = np.minimum(g, float(limit))
                up = np.clip(up, -float(limit), float(limit))
            h = g * _sigmoid(alpha * g) * (up + beta)
        else:
            h = activate(kind, g) * up
    else:
        if kind == "swiglu":
            raise ValueError("swiglu needs the GLU form (a gate weight)")
        h = activate(kind, up)
    return lin("down", h)


def evaluate(layer, tokens):
    """Output of the layer on ``tokens`` (T, H) (or (..., H)), float64."""
    layer = _as_layer(layer)
    meta = layer["meta"]
    tokens = np.asarray(tokens)
    hidden = _f64(layer, "router_weight").shape[1]
    x = tokens.astype(np.float64).reshape(-1, hidden)
    sel, w = routing(layer, x)
    weights = expert_weights(layer)
    num_experts = weights["up"].shape[0]
    absent = np.asarray(meta.get("absent") or [False] * num_experts, dtype=bool)
    act = meta.get("activation") or {"kind": "silu"}
    on_input = bool(routing_param(meta["routing"], "weights_on_input"))
    y = np.zeros((x.shape[0], weights["down"].shape[1]))
    for e in range(num_experts):
        if absent[e]:
            continue
        rows, slots = np.nonzero(sel == e)
        if rows.size == 0:
            continue
        we = w[rows, slots][:, None]
        if on_input:  # y = sum_j expert_j(w_j x) (Llama 4)
            np.add.at(y, rows, expert_forward(weights, e, we * x[rows], act))
        else:
            np.add.at(y, rows, we * expert_forward(weights, e, x[rows], act))
    return y.reshape(tokens.shape[:-1] + (y.shape[-1],))


# ---------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m moe_mlir.reference",
                                 description="Evaluate a layer dump in float64.")
    ap.add_argument("layer", help="layer dump .npz (moe-opt --moe-dump-layers)")
    ap.add_argument("tokens", help=".npy of tokens, shape (T, H) or (..., H)")
    ap.add_argument("-o", "--output", required=True, help="output .npy (float64)")
    args = ap.parse_args(argv)
    y = evaluate(load_layer(args.layer), np.load(args.tokens))
    np.save(args.output, y)
    print(f"{args.output}: shape {tuple(y.shape)} float64")
    return 0


if __name__ == "__main__":
    sys.exit(main())
