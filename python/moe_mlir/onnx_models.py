"""ONNX models computing a ``moe.layer``, to check the reference evaluator
against onnxruntime (needs ``onnx``; running them needs ``onnxruntime``).

- :func:`ort_moe_model`: the router as MatMul(+Add) feeding one
  ``com.microsoft.MoE`` node, the fused operator peers ship.
- :func:`dense_reference_model`: standard ONNX ops only; every expert runs on
  every token (batched MatMul) and a (T, E) weight matrix built with
  ScatterElements zeroes the unselected ones.

Both take the layer as dump-named float32 arrays plus meta (see
:mod:`moe_mlir.synth`) and keep those names for the initializers; the
``make_*`` wrappers draw a random layer from a seed and return
``(model, arrays, meta)``. The graph input is ``tokens`` (T, H), T dynamic;
the output is ``output`` (T, H).

What onnxruntime 1.32.0's CPU ``MoE`` kernel accepts (measured, float32):
- activation_type relu, silu, identity, swiglu: match the semantics (rel L2
  ~1e-7); ``gelu`` is the *tanh* approximation (matches our ``gelu_tanh`` to
  ~1e-7, differs from erf-``gelu`` by ~2e-4), so only ``gelu_tanh`` maps.
- fc1/fc2 biases: work. fc3 (a separate up projection): fails at run time,
  "FC3 is not implemented for CPU MoE", so a GLU layer runs only as swiglu.
- swiglu needs ``swiglu_fusion=1`` (fc1 rows interleave gate and up: row 2j
  is gate row j, row 2j+1 up row j); 0 and 2 fail at session creation ("CPU
  MoE only supports interleaved SwiGLU format"). alpha, beta and
  swiglu_limit work. silu GLU is swiglu with alpha 1, beta 0, no limit.
- Routing: router_probs are logits, softmax is always applied, so sigmoid
  scoring has no mapping. ``topk_then_score`` + softmax equals
  ``score_then_topk`` + softmax + normalize, so it maps to
  normalize_routing_weights=1. k from 1 to 8 with E up to 16 work.
- Absent experts map to all-zero fc2 weights and bias rows.
"""

import contextlib
import math
import os

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .synth import random_layer

OPSET = 17
# IR version 10 (onnx 1.16): what the newest onnx would stamp (IR 11+) is
# refused by older onnxruntimes (1.30 on the device machine: "Unsupported
# model IR version"), and opset 17 needs nothing newer.
IR_VERSION = 10
FLOAT = TensorProto.FLOAT


def extended_routing(routing):
    """The #moe.routing parameters beyond Mixtral's router that ``routing``
    (dump meta) sets, by name: none of the models here express them."""
    from .reference import ROUTING_DEFAULTS
    names = [n for n, d in ROUTING_DEFAULTS.items() if routing.get(n) not in (None, d)]
    if routing.get("scoring") == "sparsemixer":
        names.append("scoring = sparsemixer")
    return names


def ort_moe_unsupported(meta):
    """Why onnxruntime's CPU MoE cannot run this layer, or None if it can."""
    act = meta["activation"]["kind"]
    extended = extended_routing(meta["routing"])
    if extended:
        return f"MoE has no mapping for routing {', '.join(extended)}"
    if meta["routing"].get("scoring", "softmax") != "softmax":
        return "MoE applies softmax to router_probs; no sigmoid scoring"
    if meta["glu"] and act not in ("silu", "swiglu"):
        return f"{act} GLU needs fc3, which the CPU MoE kernel does not implement"
    if act == "gelu":
        return "the CPU MoE 'gelu' is the tanh approximation; erf gelu has no mapping"
    return None


_EXTERNAL = None  # (open data file, its name) while external_initializers is active


@contextlib.contextmanager
def external_initializers(data_path):
    """Initializers of 1 KiB or more built inside go straight to
    ``data_path`` as ONNX external data (save the model next to it, with
    plain ``onnx.save``), so that layers over protobuf's 2 GB limit can be
    built at all: the ModelProto only holds references."""
    global _EXTERNAL
    with open(data_path, "wb") as f:
        _EXTERNAL = (f, os.path.basename(data_path))
        try:
            yield
        finally:
            _EXTERNAL = None


def _external_tensor(name, a):
    f, location = _EXTERNAL
    offset = f.tell()
    f.write(memoryview(a).cast("B"))
    t = TensorProto()
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(a.dtype)
    t.dims.extend(a.shape)
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(a.nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


class _Graph:
    """Collects nodes and initializers, naming intermediate values."""

    def __init__(self):
        self.nodes, self.inits, self._n = [], [], 0

    def init(self, name, array):
        a = np.ascontiguousarray(array)
        if _EXTERNAL is not None and a.nbytes >= 1024:
            self.inits.append(_external_tensor(name, a))
        else:
            self.inits.append(numpy_helper.from_array(a, name))
        return name

    def const(self, value, dtype=np.float32):
        self._n += 1
        return self.init(f"const_{self._n}", np.asarray(value, dtype=dtype))

    def op(self, op_type, inputs, n_out=1, domain=None, **attrs):
        self._n += 1
        outs = [f"{op_type.lower()}_{self._n}" + (f"_{j}" if n_out > 1 else "")
                for j in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, name, hidden, outputs, extra_opsets=(), input_name="tokens", lead=("T",)):
        """The last node's output becomes ``output``; the input and output
        are (*lead, hidden) with symbolic ``lead`` dims."""
        self.nodes[-1].output[0] = "output"
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(input_name, FLOAT, [*lead, hidden])],
            [helper.make_tensor_value_info("output", FLOAT, [*lead, hidden])] + list(outputs),
            self.inits)
        opsets = [helper.make_opsetid("", OPSET)] + list(extra_opsets)
        return helper.make_model(graph, opset_imports=opsets, producer_name="moe_mlir",
                                 ir_version=IR_VERSION)


def _param(act, key, default):
    return float(default if act.get(key) is None else act[key])


def _f32(arrays, name):
    return None if name not in arrays else np.asarray(arrays[name], dtype=np.float32)


def _router_logits(g, arrays):
    g.init("router_weight", _f32(arrays, "router_weight"))
    logits = g.op("MatMul", ["tokens", g.op("Transpose", ["router_weight"], perm=[1, 0])])
    if "router_bias" in arrays:
        logits = g.op("Add", [logits, g.init("router_bias", _f32(arrays, "router_bias"))])
    return logits


def ort_moe_model(arrays, meta):
    """Router + one ``com.microsoft.MoE`` node. Raises ValueError for layers
    the CPU kernel cannot express (see :func:`ort_moe_unsupported`)."""
    why = ort_moe_unsupported(meta)
    if not why and "selection_bias" in arrays:
        why = "MoE has no selection bias"
    if why:
        raise ValueError(why)
    e, h, i = meta["num_experts"], meta["hidden"], meta["inter"]
    act = meta["activation"]
    routing = meta["routing"]
    g = _Graph()
    logits = _router_logits(g, arrays)
    attrs = {"k": int(routing["top_k"]),
             # softmax over the k selected logits == renormalised softmax.
             "normalize_routing_weights": int(routing["normalize"]
                                              or routing["order"] == "topk_then_score")}
    up, up_b = _f32(arrays, "up_weight"), _f32(arrays, "up_bias")
    if meta["glu"]:
        gate, gate_b = _f32(arrays, "gate_weight"), _f32(arrays, "gate_bias")
        fc1 = np.empty((e, 2 * i, h), np.float32)
        fc1[:, 0::2], fc1[:, 1::2] = gate, up
        fc1_b = None
        if gate_b is not None or up_b is not None:
            fc1_b = np.zeros((e, 2 * i), np.float32)
            fc1_b[:, 0::2] = 0 if gate_b is None else gate_b
            fc1_b[:, 1::2] = 0 if up_b is None else up_b
        swiglu = act["kind"] == "swiglu"
        attrs.update(activation_type="swiglu", swiglu_fusion=1,
                     activation_alpha=_param(act, "alpha", 1.0) if swiglu else 1.0,
                     activation_beta=_param(act, "beta", 0.0) if swiglu else 0.0)
        if act["kind"] == "swiglu" and act.get("limit") is not None:
            attrs["swiglu_limit"] = float(act["limit"])
    else:
        fc1, fc1_b = up, up_b
        attrs["activation_type"] = {"gelu_tanh": "gelu"}.get(act["kind"], act["kind"])
    fc2, fc2_b = _f32(arrays, "down_weight").copy(), _f32(arrays, "down_bias")
    absent = np.asarray(meta.get("absent") or [False] * e, dtype=bool)
    fc2[absent] = 0  # an absent expert contributes nothing
    if fc2_b is not None:
        fc2_b = fc2_b.copy()
        fc2_b[absent] = 0
    inputs = ["tokens", logits, g.init("fc1_experts_weights", fc1),
              g.init("fc1_experts_bias", fc1_b) if fc1_b is not None else "",
              g.init("fc2_experts_weights", fc2)]
    if fc2_b is not None:
        inputs.append(g.init("fc2_experts_bias", fc2_b))
    g.op("MoE", inputs, domain="com.microsoft", **attrs)
    return g.model("moe_ort", h, [], [helper.make_opsetid("com.microsoft", 1)])


def _activation(g, kind, v):
    if kind == "silu":
        return g.op("Mul", [v, g.op("Sigmoid", [v])])
    if kind == "gelu":
        inner = g.op("Erf", [g.op("Mul", [v, g.const(1.0 / math.sqrt(2.0))])])
        return g.op("Mul", [g.op("Mul", [v, g.const(0.5)]), g.op("Add", [inner, g.const(1.0)])])
    if kind == "gelu_tanh":
        cube = g.op("Mul", [g.op("Mul", [v, v]), v])
        poly = g.op("Add", [v, g.op("Mul", [cube, g.const(0.044715)])])
        t = g.op("Tanh", [g.op("Mul", [poly, g.const(math.sqrt(2.0 / math.pi))])])
        return g.op("Mul", [g.op("Mul", [v, g.const(0.5)]), g.op("Add", [t, g.const(1.0)])])
    if kind == "relu":
        return g.op("Relu", [v])
    if kind == "identity":
        return v
    raise ValueError(f"unknown activation {kind!r}")


def dense_reference_model(arrays, meta, routing_outputs=False):
    """The layer in standard ONNX ops, every expert on every token.

    ``routing_outputs`` adds outputs ``selected`` (T, k) int64 and
    ``routing_weights`` (T, k) for comparing expert choices.
    """
    e, h, i = meta["num_experts"], meta["hidden"], meta["inter"]
    routing, act = meta["routing"], meta["activation"]
    if extended_routing(routing) or "selection_bias" in arrays:
        raise ValueError("dense_reference_model covers Mixtral-style routing only, not "
                         + ", ".join(extended_routing(routing) or ["a selection bias"]))
    k = int(routing["top_k"])
    g = _Graph()
    logits = _router_logits(g, arrays)
    # TopK on the logits for both orders: scores are a strictly increasing
    # function of them, and it avoids float32 ties among saturated scores
    # (same choice as the reference evaluator). ONNX TopK breaks ties
    # towards the lower index.
    top_vals, selected = g.op("TopK", [logits, g.const([k], np.int64)], n_out=2,
                              axis=-1, largest=1, sorted=1)
    score_op = "Softmax" if routing["scoring"] == "softmax" else "Sigmoid"
    sattrs = {"axis": -1} if score_op == "Softmax" else {}
    if routing["order"] == "score_then_topk":
        scores = g.op(score_op, [logits], **sattrs)
        w = g.op("GatherElements", [scores, selected], axis=-1)
    else:
        w = g.op(score_op, [top_vals], **sattrs)
    if routing["normalize"]:
        w = g.op("Div", [w, g.op("ReduceSum", [w, g.const([-1], np.int64)], keepdims=1)])
    if routing_outputs:
        g.nodes.append(helper.make_node("Identity", [selected], ["selected"]))
        g.nodes.append(helper.make_node("Identity", [w], ["routing_weights"]))
    zeros = g.op("ConstantOfShape", [g.op("Shape", [logits])],
                 value=helper.make_tensor("zero", FLOAT, [1], [0.0]))
    dense_w = g.op("ScatterElements", [zeros, selected, w], axis=1)  # (T, E)
    absent = np.asarray(meta.get("absent") or [False] * e, dtype=bool)
    if absent.any():
        dense_w = g.op("Mul", [dense_w, g.const((~absent).astype(np.float32))])

    x3 = g.op("Unsqueeze", ["tokens", g.const([0], np.int64)])  # (1, T, H)

    def linear(kind, inp):
        name = kind + "_weight"
        w_t = g.op("Transpose", [g.init(name, _f32(arrays, name))], perm=[0, 2, 1])
        y = g.op("MatMul", [inp, w_t])  # (E, T, out)
        if kind + "_bias" in arrays:
            b = g.init(kind + "_bias", _f32(arrays, kind + "_bias"))
            y = g.op("Add", [y, g.op("Unsqueeze", [b, g.const([1], np.int64)])])
        return y

    up = linear("up", x3)
    if meta["glu"]:
        gate = linear("gate", x3)
        if act["kind"] == "swiglu":
            alpha, beta = _param(act, "alpha", 1.0), _param(act, "beta", 0.0)
            if act.get("limit") is not None:
                lim = float(act["limit"])
                gate = g.op("Min", [gate, g.const(lim)])
                up = g.op("Clip", [up, g.const(-lim), g.const(lim)])
            sig = g.op("Sigmoid", [g.op("Mul", [gate, g.const(alpha)])])
            hid = g.op("Mul", [g.op("Mul", [gate, sig]), g.op("Add", [up, g.const(beta)])])
        else:
            hid = g.op("Mul", [_activation(g, act["kind"], gate), up])
    else:
        if act["kind"] == "swiglu":
            raise ValueError("swiglu needs the GLU form")
        hid = _activation(g, act["kind"], up)
    out = linear("down", hid)  # (E, T, H)
    w_et = g.op("Unsqueeze", [g.op("Transpose", [dense_w], perm=[1, 0]),
                              g.const([2], np.int64)])  # (E, T, 1)
    g.op("ReduceSum", [g.op("Mul", [out, w_et]), g.const([0], np.int64)], keepdims=0)
    extra = []
    if routing_outputs:
        # ReduceSum must stay the last node (it becomes "output"): move the
        # Identity nodes to the end after renaming.
        last = g.nodes.pop()
        ids = [n for n in g.nodes if n.op_type == "Identity" and n.output[0] in ("selected", "routing_weights")]
        g.nodes = [n for n in g.nodes if n not in ids] + ids + [last]
        extra = [helper.make_tensor_value_info("selected", TensorProto.INT64, ["T", k]),
                 helper.make_tensor_value_info("routing_weights", FLOAT, ["T", k])]
    return g.model("moe_dense", h, extra)


def make_ort_moe(seed=0, **config):
    """Random layer (``synth.random_layer(seed, **config)``) as a
    ``com.microsoft.MoE`` model: ``(model, arrays, meta)``."""
    arrays, meta = random_layer(seed, **config)
    return ort_moe_model(arrays, meta), arrays, meta


def make_dense_reference(seed=0, routing_outputs=False, **config):
    """Random layer as a standard-op dense model: ``(model, arrays, meta)``."""
    arrays, meta = random_layer(seed, **config)
    return dense_reference_model(arrays, meta, routing_outputs), arrays, meta


def run_model(model, tokens, threads=1):
    """Run ``model`` on the CPU, ``tokens`` fed to its (only) input: all
    outputs, in graph order."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Tests run beside builds on a shared machine: stay on one core.
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: np.asarray(tokens, dtype=np.float32)})


def ort_moe_legacy_model(arrays, meta):
    """The plain (non-GLU) layer as ``com.microsoft.MoE`` in the legacy
    weight layout, fc1 (E, H, I) and fc2 (E, I, H). Current onnxruntime
    refuses it; it exists to check that the importer still reads such
    models (the current-layout twin gives the reference output)."""
    if meta["glu"]:
        raise ValueError("the legacy layout fixture is for plain experts")
    g = _Graph()
    logits = _router_logits(g, arrays)
    kind = {"gelu_tanh": "gelu"}.get(meta["activation"]["kind"], meta["activation"]["kind"])
    fc1 = np.ascontiguousarray(_f32(arrays, "up_weight").transpose(0, 2, 1))
    fc2 = np.ascontiguousarray(_f32(arrays, "down_weight").transpose(0, 2, 1))
    fc1_b, fc2_b = _f32(arrays, "up_bias"), _f32(arrays, "down_bias")
    inputs = ["tokens", logits, g.init("fc1_experts_weights", fc1),
              g.init("fc1_experts_bias", fc1_b) if fc1_b is not None else "",
              g.init("fc2_experts_weights", fc2)]
    if fc2_b is not None:
        inputs.append(g.init("fc2_experts_bias", fc2_b))
    g.op("MoE", inputs, domain="com.microsoft",
         k=int(meta["routing"]["top_k"]), activation_type=kind,
         normalize_routing_weights=int(meta["routing"]["normalize"]))
    return g.model("moe_ort_legacy", meta["hidden"], [],
                   [helper.make_opsetid("com.microsoft", 1)])


def _quantize_ort(w, bits, block_size, zero_points):
    """onnxruntime's QMoE storage of w (E, N, K): codes packed low nibble
    first along K, scales (E, N, K/block) (or (E, N) without blocks), and
    optional uint8 zero points (4-bit: packed two per byte)."""
    from .quant import quantize
    e, n, k = w.shape
    data, scales, zps = quantize(w.reshape(e * n, k), bits, group_size=block_size or 0,
                                 symmetric=not zero_points, scale_dtype="float32")
    data = data.reshape(e, n, -1)
    groups = scales.shape[-1]
    scales = scales.reshape(e, n, groups)
    if not block_size:
        scales = scales.reshape(e, n)
    zp = None
    if zero_points:
        zp = zps.reshape(e, n, groups).astype(np.uint8)
        if bits == 4:
            if groups % 2:
                zp = np.concatenate([zp, np.zeros((e, n, 1), np.uint8)], axis=-1)
            zp = (zp[..., 0::2] | (zp[..., 1::2] << 4)).astype(np.uint8)
        if not block_size:
            zp = zp.reshape(e, n)
    return data, scales.astype(np.float32), zp


def ort_qmoe_model(arrays, meta, bits=4, block_size=32, zero_points=False):
    """The layer as ``com.microsoft.QMoE`` (swiglu, fc1 rows interleaved, as
    ORT GenAI writes it)."""
    if not meta["glu"]:
        raise ValueError("the QMoE fixture is a GLU (swiglu) layer")
    e, h, i = meta["num_experts"], meta["hidden"], meta["inter"]
    fc1 = np.empty((e, 2 * i, h), np.float32)
    fc1[:, 0::2], fc1[:, 1::2] = _f32(arrays, "gate_weight"), _f32(arrays, "up_weight")
    fc2 = _f32(arrays, "down_weight")
    g = _Graph()
    logits = _router_logits(g, arrays)
    q1 = _quantize_ort(fc1, bits, block_size, zero_points)
    q2 = _quantize_ort(fc2, bits, block_size, zero_points)
    zp_inputs = []
    if zero_points:
        zp_inputs = ["", "", "", g.init("fc1_zero_points", q1[2]), g.init("fc2_zero_points", q2[2])]
    inputs = ["tokens", logits, g.init("fc1_experts_weights", q1[0]), g.init("fc1_scales", q1[1]), "",
              g.init("fc2_experts_weights", q2[0]), g.init("fc2_scales", q2[1])]
    if zp_inputs:
        inputs += ["", "", "", ""] + zp_inputs[3:]
    attrs = dict(k=int(meta["routing"]["top_k"]), activation_type="swiglu", swiglu_fusion=1,
                 expert_weight_bits=bits,
                 normalize_routing_weights=int(meta["routing"]["normalize"]))
    if block_size:
        attrs["block_size"] = block_size
    g.op("QMoE", inputs, domain="com.microsoft", **attrs)
    model = g.model("qmoe_ort", h, [], [helper.make_opsetid("com.microsoft", 1)])
    return model
