"""Random ``moe.layer`` weights and dump metadata for tests and examples
(NumPy only; every draw comes from an explicit seed)."""

import numpy as np

ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "relu", "identity", "swiglu")


def layer_meta(num_experts, hidden, inter, top_k, *, glu=True, activation="silu",
               alpha=None, beta=None, limit=None, scoring="softmax",
               order="score_then_topk", normalize=True, absent=None, routing_extra=None):
    """``meta`` of a ``moe.layer`` dump (docs/layer-dump.md); dtypes are
    filled in by :func:`moe_mlir.npz.save_layer`. ``routing_extra`` sets
    #moe.routing parameters past ``normalize`` (groups, groups_kept, scale,
    norm_epsilon, norm_floor, mixer_epsilon, weights_on_input); the others
    get their defaults, as moe-opt's dumps write them all."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    if activation == "swiglu" and not glu:
        raise ValueError("swiglu exists in the GLU form only")
    if not 1 <= top_k <= num_experts:
        raise ValueError("need 1 <= top_k <= num_experts")
    if activation == "swiglu":
        alpha = 1.0 if alpha is None else float(alpha)
        beta = 0.0 if beta is None else float(beta)
    absent = [False] * num_experts if absent is None else [bool(a) for a in absent]
    routing = {"top_k": int(top_k), "scoring": scoring, "order": order,
               "normalize": bool(normalize), "groups": 1, "groups_kept": 1, "scale": 1.0,
               "norm_epsilon": 0.0, "norm_floor": 0.0, "mixer_epsilon": 0.0,
               "weights_on_input": False}
    for name, value in (routing_extra or {}).items():
        if name not in routing or name in ("top_k", "scoring", "order", "normalize"):
            raise ValueError(f"unknown routing parameter {name!r}")
        routing[name] = type(routing[name])(value)
    return {
        "format": "moe-layer-dump", "version": 1, "op": "moe.layer",
        "index": 0, "location": "loc(unknown)",
        "num_experts": int(num_experts), "hidden": int(hidden), "inter": int(inter),
        "glu": bool(glu),
        "routing": routing,
        "activation": {"kind": activation, "alpha": alpha, "beta": beta,
                       "limit": None if limit is None else float(limit)},
        "absent": absent,
    }


def random_layer(seed=0, *, num_experts=4, hidden=16, inter=32, top_k=2,
                 activation="silu", glu=True, scoring="softmax",
                 order="score_then_topk", normalize=True, router_bias=False,
                 biases=(), absent=None, alpha=None, beta=None, limit=None,
                 selection_bias=False, routing_extra=None):
    """Float32 weights in dump naming plus meta.

    ``selection_bias`` adds a ``selection_bias`` (E,) array (of the size of
    sigmoid/softmax scores); ``routing_extra`` goes to :func:`layer_meta`.

    ``biases``: the expert kinds ("gate", "up", "down") that get a bias, or
    True for all. Weights are scaled by 1/sqrt(fan_in) so activations stay
    O(1) whatever the sizes; the router is scaled up so routing is decisive
    (no near-ties that float32 rounding could flip).
    """
    rng = np.random.default_rng(seed)
    e, h, i = num_experts, hidden, inter
    if biases is True:
        biases = ("gate", "up", "down")

    def rand(*shape, fan_in=1):
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    arrays = {"router_weight": rand(e, h, fan_in=h) * np.float32(2.0)}
    if router_bias:
        arrays["router_bias"] = rand(e) * np.float32(0.5)
    if selection_bias:
        arrays["selection_bias"] = rand(e) * np.float32(0.1)
    if glu:
        arrays["gate_weight"] = rand(e, i, h, fan_in=h)
    arrays["up_weight"] = rand(e, i, h, fan_in=h)
    arrays["down_weight"] = rand(e, h, i, fan_in=i)
    for kind, n in (("gate", i), ("up", i), ("down", h)):
        if kind in biases and (kind != "gate" or glu):
            arrays[kind + "_bias"] = rand(e, n) * np.float32(0.5)
    meta = layer_meta(e, h, i, top_k, glu=glu, activation=activation, alpha=alpha,
                      beta=beta, limit=limit, scoring=scoring, order=order,
                      normalize=normalize, absent=absent, routing_extra=routing_extra)
    return arrays, meta


def random_tokens(seed, num_tokens, hidden):
    """Float32 tokens, standard normal: never zeros, so every path is live."""
    return np.random.default_rng(seed).standard_normal((num_tokens, hidden)).astype(np.float32)


def structured_layer(seed=0, *, num_experts=8, groups=2, hidden=32, inter=64, top_k=2,
                     noise=0.05, decay=None, **config):
    """A layer whose experts share structure, as trained experts do: each
    weight kind of expert e is the base of its (hidden, shuffled) group plus
    a residual that is either noise (``decay=None``) or a full-rank term
    with singular values ``noise * decay**i``. Returns ``(arrays, meta,
    groups_of_experts)``."""
    arrays, meta = random_layer(seed, num_experts=num_experts, hidden=hidden, inter=inter,
                                top_k=top_k, **config)
    rng = np.random.default_rng(seed + 1)
    truth = rng.permutation(np.arange(num_experts) % groups)
    for kind in ("gate_weight", "up_weight", "down_weight"):
        if kind not in arrays:
            continue
        w = arrays[kind]
        out, inn = w.shape[1:]
        bases = rng.standard_normal((groups, out, inn)) / np.sqrt(inn)
        for e in range(num_experts):
            if decay is None:
                residual = noise * rng.standard_normal((out, inn)) / np.sqrt(inn)
            else:
                n = min(out, inn)
                u = np.linalg.qr(rng.standard_normal((out, n)))[0]
                v = np.linalg.qr(rng.standard_normal((inn, n)))[0]
                residual = (u * (noise * decay ** np.arange(n))) @ v.T
            w[e] = (bases[truth[e]] + residual).astype(np.float32)
    return arrays, meta, truth
