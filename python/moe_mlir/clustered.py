"""Build ``moe.clustered_layer`` dumps from a ``moe.layer`` (NumPy only).

Each cluster's base is the mean of its members' weights and each expert keeps
a truncated SVD of its residual, ``W_e - base_c ~= U_e^T V_e``: the
compression of arXiv 2510.02345, used here to make test inputs.
"""

import numpy as np

from .reference import KINDS


def _svd_factors(residual, rank):
    p, s, qt = np.linalg.svd(residual, full_matrices=False)
    root = np.sqrt(s[:rank])
    # Splitting sqrt(S) over both factors keeps their magnitudes alike, which
    # suits per-row quantisation of U and V.
    return (p[:, :rank] * root).T, root[:, None] * qt[:rank]


def decompose_layer(arrays, meta, assignment, ranks, num_clusters=None,
                    mode="exact", clusters_per_token=1, score="mass",
                    dtype=np.float64):
    """Clustered-layer arrays and meta equivalent (up to the truncation) to
    the ``moe.layer`` given by ``arrays``/``meta`` in dump naming.

    ``ranks``: an int for every expert and kind, or ``{kind: [rank per
    expert]}``; a rank above ``min(out, in)`` is capped there (which makes the
    decomposition exact). Factors and bases are stored as ``dtype``.
    """
    assignment = [int(c) for c in assignment]
    groups = num_clusters if num_clusters is not None else max(assignment) + 1
    assign = np.asarray(assignment)
    out = {}
    rank_meta = {}
    for kind in KINDS:
        name = kind + "_weight"
        if name not in arrays:
            continue
        w = np.asarray(arrays[name], dtype=np.float64)
        full = min(w.shape[1:])
        r = ranks[kind] if isinstance(ranks, dict) else [ranks] * w.shape[0]
        r = [min(int(v), full) for v in r]
        base = np.zeros((groups,) + w.shape[1:])
        for c in range(groups):
            if (assign == c).any():
                base[c] = w[assign == c].mean(axis=0)
        us, vs = [], []
        for e in range(w.shape[0]):
            u, v = _svd_factors(w[e] - base[assign[e]], r[e])
            us.append(u)
            vs.append(v)
        out[kind + "_base"] = base.astype(dtype)
        out[kind + "_u"] = np.concatenate(us).reshape(-1, w.shape[1]).astype(dtype)
        out[kind + "_v"] = np.concatenate(vs).reshape(-1, w.shape[2]).astype(dtype)
        rank_meta[kind] = r
    for name in ("router_weight", "router_bias", "selection_bias", "gate_bias", "up_bias", "down_bias"):
        if name in arrays:
            out[name] = arrays[name]
    cmeta = {k: v for k, v in meta.items() if k not in ("dtypes", "quant")}
    cmeta.update({
        "op": "moe.clustered_layer", "num_clusters": int(groups),
        "assignment": assignment, "ranks": rank_meta,
        "cluster_routing": {"mode": mode, "clusters_per_token": int(clusters_per_token),
                            "score": score},
    })
    return out, cmeta
