"""ONNX graphs of a ``moe.layer`` written node for node the way
``torch.onnx.export`` (TorchScript exporter, torch 1.13, opset 17) writes
transformers' MoE blocks, to test raising such exports without torch.

Python: the ``python3`` on PATH (numpy, onnx; running the graphs needs
onnxruntime). The patterns are copied from the checked-in exports in
test/Import/Inputs/torch/ (their README lists them):

- :func:`torch_loop_model`: MixtralSparseMoeBlock's loop (softmax, top-k,
  one_hot mask, ``where(mask[e])`` per expert, ``index_add_``), with the
  ``index_add_`` either as torch 1.13 writes it (ScatterElements into zeros,
  then Add) or as newer torch does (ScatterElements reduction=add).
- :func:`torch_dense_model`: the dense per-expert form,
  ``routing = zeros_like(logits).scatter(1, selected, weights)`` and
  ``out = sum_e expert_e(x) * routing[:, e:e+1]``.

Both take the layer as dump-named float32 arrays plus meta (see
:mod:`moe_mlir.synth`). The graph input is ``hidden_states`` (batch, seq, H)
with symbolic batch and seq, viewed as (-1, H) inside and reshaped back;
the output is ``output`` (batch, seq, H). Weights are initializers (no-bias
Linears pre-transposed to (in, out) for MatMul, Linears with a bias as
Gemm(transB=1) of the (out, in) weight); every other constant is a
``Constant`` node, as the exporter writes them.
"""

import copy
import math

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .onnx_models import FLOAT, _f32, _Graph
from .synth import random_layer

INT64_MAX = np.iinfo(np.int64).max
SCATTER_FORMS = ("none_add", "add")
ACTIVATIONS = ("silu", "gelu", "relu", "identity")


class _TorchGraph(_Graph):
    """A :class:`_Graph` that writes small constants as ``Constant`` nodes
    and names pre-transposed weights ``onnx::MatMul_<n>`` like the exporter."""

    def __init__(self):
        super().__init__()
        self._matmuls = 0

    def c(self, value, dtype=np.int64):
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype))
        return self.op("Constant", [], value=tensor)

    def matmul_weight(self, w_t):
        self._matmuls += 1
        return self.init(f"onnx::MatMul_{self._matmuls}", np.ascontiguousarray(w_t))

    def reshape(self, x, shape):
        return self.op("Reshape", [x, shape], allowzero=0)

    def zeros(self, shape):
        return self.op("ConstantOfShape", [shape],
                       value=helper.make_tensor("zero", FLOAT, [1], [0.0]))

    def torch_model(self, name, hidden):
        return self.model(name, hidden, [], input_name="hidden_states", lead=("batch", "seq"))


def with_absent(meta, experts):
    """A copy of ``meta`` whose ``absent`` marks every expert not in
    ``experts`` (the ones a loop over ``experts`` loses), for the reference
    evaluator."""
    meta = copy.deepcopy(meta)
    visited = set(int(e) for e in experts)
    meta["absent"] = [e not in visited for e in range(meta["num_experts"])]
    return meta


def _visited(meta, experts):
    """The expert ids the graph computes, in order (default: every expert
    meta does not mark absent)."""
    absent = meta.get("absent") or [False] * meta["num_experts"]
    if experts is None:
        return [e for e in range(meta["num_experts"]) if not absent[e]]
    experts = [int(e) for e in experts]
    if not experts or len(set(experts)) != len(experts):
        raise ValueError("experts must be a non-empty list of distinct ids")
    for e in experts:
        if not 0 <= e < meta["num_experts"] or absent[e]:
            raise ValueError(f"expert {e} does not exist or is absent in meta")
    return experts


def _check(meta):
    kind = meta["activation"]["kind"]
    if kind not in ACTIVATIONS:
        raise ValueError(f"no torch export pattern for activation {kind!r}")
    if meta["routing"].get("scoring", "softmax") != "softmax":
        raise ValueError("the torch MoE blocks score with softmax")
    from .reference import ROUTING_DEFAULTS
    extra = [n for n, d in ROUTING_DEFAULTS.items() if meta["routing"].get(n) not in (None, d)]
    if extra:
        raise ValueError(f"the torch MoE blocks here have no routing {', '.join(extra)}")


def _shapes(g, views):
    """``batch, seq, hidden = x.shape`` (three Shape/Gather chains) and
    ``views`` copies of the ``(-1, hidden)`` shape, all computed up front
    as the exporter does (one per ``view(-1, hidden)`` of the code)."""
    dims = [g.op("Gather", [g.op("Shape", ["hidden_states"]), g.c(axis)], axis=0)
            for axis in range(3)]
    flat = [g.op("Concat", [g.c([-1]), g.op("Unsqueeze", [dims[2], g.c([0])])], axis=0)
            for _ in range(views)]
    return dims, flat


def _unflatten(g, acc, dims):
    """``final.reshape(batch, seq, hidden)``: the graph's last node."""
    shape = g.op("Concat", [g.op("Unsqueeze", [d, g.c([0])]) for d in dims], axis=0)
    return g.reshape(acc, shape)


def _router(g, arrays, meta, x2d):
    """Router logits, routing weights (T, k) and selected experts (T, k):
    ``softmax(gate(x), dim=1, dtype=float)``, ``topk``, optional ``/= sum``
    and ``.to(x.dtype)`` (or top-k on the logits, then softmax)."""
    routing = meta["routing"]
    if "router_bias" in arrays:
        logits = g.op("Gemm", [x2d, g.init("block.gate.weight", _f32(arrays, "router_weight")),
                               g.init("block.gate.bias", _f32(arrays, "router_bias"))],
                      alpha=1.0, beta=1.0, transB=1)
    else:
        logits = g.op("MatMul", [x2d, g.matmul_weight(_f32(arrays, "router_weight").T)])
    k = g.c([int(routing["top_k"])])
    topk = dict(n_out=2, axis=-1, largest=1, sorted=1)
    if routing["order"] == "score_then_topk":
        probs = g.op("Cast", [g.op("Softmax", [logits], axis=1)], to=FLOAT)
        weights, selected = g.op("TopK", [probs, k], **topk)
    elif routing["order"] == "topk_then_score":
        values, selected = g.op("TopK", [logits, k], **topk)
        weights = g.op("Cast", [g.op("Softmax", [values], axis=-1)], to=FLOAT)
    else:
        raise ValueError(f"unknown order {routing['order']!r}")
    if routing["normalize"]:
        total = g.op("ReduceSum", [weights, g.c([-1])], keepdims=1)
        weights = g.op("Div", [weights, total])
    return logits, g.op("Cast", [weights], to=FLOAT), selected


def _linear(g, arrays, kind, e, x):
    """``nn.Linear``: MatMul by the pre-transposed weight without a bias,
    Gemm(transB=1) with one."""
    w = _f32(arrays, kind + "_weight")[e]
    if kind + "_bias" not in arrays:
        return g.op("MatMul", [x, g.matmul_weight(w.T)])
    b = _f32(arrays, kind + "_bias")[e]
    return g.op("Gemm", [x, g.init(f"block.experts.{e}.{kind}.weight", w),
                         g.init(f"block.experts.{e}.{kind}.bias", b)],
                alpha=1.0, beta=1.0, transB=1)


def _activation(g, kind, a):
    if kind == "silu":  # x * sigmoid(x)
        return g.op("Mul", [a, g.op("Sigmoid", [a])])
    if kind == "gelu":  # torch's erf GELU export
        t = g.op("Erf", [g.op("Div", [a, g.c(math.sqrt(2.0), np.float32)])])
        t = g.op("Add", [t, g.c(1.0, np.float32)])
        return g.op("Mul", [g.op("Mul", [a, t]), g.c(0.5, np.float32)])
    if kind == "relu":
        return g.op("Relu", [a])
    return a  # identity


def _expert(g, arrays, meta, e, x):
    """Expert e on x (n, H): ``down(act(gate(x)) * up(x))`` or
    ``down(act(up(x)))``."""
    kind = meta["activation"]["kind"]
    if meta["glu"]:
        gate = _activation(g, kind, _linear(g, arrays, "gate", e, x))
        hidden = g.op("Mul", [gate, _linear(g, arrays, "up", e, x)])
    else:
        hidden = _activation(g, kind, _linear(g, arrays, "up", e, x))
    return _linear(g, arrays, "down", e, hidden)


def _routing_weight(g, weights3, idx, top_x):
    """``routing_weights[top_x, idx, None]`` (n, 1): a flat Gather at
    ``idx + top_x * k`` of ``Flatten(weights[..., None], 2)``."""
    shape = g.op("Shape", [weights3])
    k = g.op("Gather", [shape, g.c([1])], axis=0)
    last = g.op("Gather", [shape, g.c([2])], axis=0)
    flat = g.op("Flatten", [weights3], axis=2)
    index = g.op("Add", [idx, g.op("Mul", [top_x, k])])
    w = g.op("Gather", [flat, index], axis=0)
    index_shape = g.op("Shape", [index])
    w = g.reshape(w, g.op("Concat", [g.c([-1]), last], axis=0))
    return g.reshape(w, g.op("Concat", [index_shape, last], axis=0))


def _index_add(g, acc, top_x, out, scatter):
    """``acc.index_add_(0, top_x, out)``: the source and index expanded to
    (n, H), then torch 1.13's ScatterElements into zeros plus Add, or newer
    torch's ScatterElements(reduction=add)."""
    row = g.op("Slice", [acc, g.c([0, 0]), g.c([1, INT64_MAX]), g.c([0, 1])])
    src = g.op("Expand", [out, g.op("Shape", [row])])
    index = g.op("Unsqueeze", [top_x, g.c([1])])
    index = g.op("Expand", [index, g.op("Shape", [src])])
    if scatter == "add":
        return g.op("ScatterElements", [acc, index, src], axis=0, reduction="add")
    zeros = g.zeros(g.op("Shape", [acc]))
    return g.op("Add", [acc, g.op("ScatterElements", [zeros, index, src], axis=0)])


def torch_loop_model(arrays, meta, experts=None, scatter="none_add"):
    """MixtralSparseMoeBlock's loop as the TorchScript exporter writes it.

    ``experts``: the expert ids the loop visits, in that order (default:
    all that meta does not mark absent); the others are lost, as in a
    trace-time ``for e in experts_hit`` loop: give the reference
    ``with_absent(meta, experts)``. ``scatter``: ``"none_add"`` (torch
    1.13) or ``"add"`` (newer torch) for ``index_add_``.
    """
    _check(meta)
    if scatter not in SCATTER_FORMS:
        raise ValueError(f"scatter must be one of {SCATTER_FORMS}")
    visited = _visited(meta, experts)
    g = _TorchGraph()
    dims, flat = _shapes(g, 1 + len(visited))
    x2d = g.reshape("hidden_states", flat[0])
    _, weights, selected = _router(g, arrays, meta, x2d)
    tokens = g.op("Unsqueeze", [g.op("Mul", [dims[0], dims[1]]), g.c([0])])
    acc_shape = g.op("Concat", [tokens, g.op("Unsqueeze", [dims[2], g.c([0])])], axis=0)
    one_hot = g.op("OneHot", [selected, g.c(meta["num_experts"]), g.c([0, 1])], axis=-1)
    mask = g.op("Transpose", [one_hot], perm=[2, 1, 0])  # (E, k, T)
    x3 = w3 = acc = pending = None
    for j, e in enumerate(visited):
        hit = g.op("Cast", [g.op("Gather", [mask, g.c(e)], axis=0)], to=TensorProto.BOOL)
        pairs = g.op("Transpose", [g.op("NonZero", [hit])], perm=[1, 0])  # (n, 2)
        idx, top_x = (g.op("Squeeze", [half, g.c([1])])
                      for half in g.op("Split", [pairs, g.c([1, 1])], n_out=2, axis=1))
        if x3 is None:
            x3 = g.op("Unsqueeze", [x2d, g.c([0])])
        x = g.reshape(g.op("Gather", [x3, top_x], axis=1), flat[1 + j])
        y = _expert(g, arrays, meta, e, x)
        # The in-place renormalisation (/=) keeps the exporter from sharing
        # this Unsqueeze between experts.
        if w3 is None or meta["routing"]["normalize"]:
            w3 = g.op("Unsqueeze", [weights, g.c([2])])
        out = g.op("Cast", [g.op("Mul", [y, _routing_weight(g, w3, idx, top_x)])], to=FLOAT)
        # The exporter writes each index_add_ after the next expert's
        # output (and the zeros after the first one); any order is valid.
        if acc is None:
            acc = g.zeros(acc_shape)
        if pending is not None:
            acc = _index_add(g, acc, *pending, scatter)
        pending = (top_x, out)
    acc = _index_add(g, acc, *pending, scatter)
    _unflatten(g, acc, dims)
    return g.torch_model("moe_torch_loop", meta["hidden"])


def torch_dense_model(arrays, meta, experts=None, column="slice"):
    """The dense form as the TorchScript exporter writes it: every visited
    expert on every token, weighted by column e of
    ``zeros_like(logits).scatter(1, selected, weights)`` (``column``:
    ``"slice"`` for ``routing[:, e:e+1]``, ``"gather"`` for
    ``routing[:, e, None]``), summed in an Add chain from the first term."""
    _check(meta)
    if column not in ("slice", "gather"):
        raise ValueError("column must be 'slice' or 'gather'")
    visited = _visited(meta, experts)
    g = _TorchGraph()
    dims, flat = _shapes(g, 1)
    x2d = g.reshape("hidden_states", flat[0])
    logits, weights, selected = _router(g, arrays, meta, x2d)
    zeros = g.zeros(g.op("Shape", [logits]))
    routing = g.op("ScatterElements", [zeros, selected, weights], axis=1)  # (T, E)
    total = None
    for e in visited:
        y = _expert(g, arrays, meta, e, x2d)
        if column == "slice":
            col = g.op("Slice", [routing, g.c([e]), g.c([e + 1]), g.c([1]), g.c([1])])
        else:
            col = g.op("Unsqueeze", [g.op("Gather", [routing, g.c(e)], axis=1), g.c([1])])
        term = g.op("Mul", [y, col])
        total = term if total is None else g.op("Add", [total, term])
    _unflatten(g, total, dims)
    return g.torch_model("moe_torch_dense", meta["hidden"])


def make_torch_loop(seed=0, experts=None, scatter="none_add", **config):
    """Random layer (``synth.random_layer(seed, **config)``) as a torch loop
    export: ``(model, arrays, meta)``, meta marking the experts the loop
    leaves out absent."""
    arrays, meta = random_layer(seed, **config)
    model = torch_loop_model(arrays, meta, experts, scatter)
    return model, arrays, with_absent(meta, _visited(meta, experts))


def make_torch_dense(seed=0, experts=None, column="slice", **config):
    """Random layer as the torch dense form: ``(model, arrays, meta)``."""
    arrays, meta = random_layer(seed, **config)
    model = torch_dense_model(arrays, meta, experts, column)
    return model, arrays, with_absent(meta, _visited(meta, experts))
