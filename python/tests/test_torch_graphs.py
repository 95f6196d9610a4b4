"""The torch-export graph builders (moe_mlir.torch_graphs), checked without
the C++ tools: onnxruntime on each built graph equals the float64 reference
evaluator on the layer (lost experts marked absent), and the builders
rebuild the checked-in torch exports (test/Import/Inputs/torch/) node for
node, up to names and node order.

Python: the ``python3`` on PATH (numpy, onnx, onnxruntime); no torch.
The configurations here are also raised by test_raise_torch.py.
"""

import collections
import hashlib
import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import record_error
from moe_mlir import reference as ref
from moe_mlir import torch_graphs as tg
from moe_mlir.onnx_models import run_model
from moe_mlir.synth import random_layer, random_tokens
from tools import REPO, rel_l2

TORCH_INPUTS = os.path.join(REPO, "test", "Import", "Inputs", "torch")
TOL = 1e-5
# (batch, seq) shapes every graph runs on; (1, 1) leaves most experts empty.
SHAPES = ((2, 7), (1, 1), (3, 5))

# The layer of each torch fixture, as random_layer arguments (see the
# fixtures' README), plus the experts its loop visits.
FIXTURE_LAYERS = {
    "mixtral_top2": dict(num_experts=8, top_k=2, hidden=32, inter=24),
    "switch_top1_gelu": dict(num_experts=8, top_k=1, hidden=16, inter=48, activation="gelu",
                             glu=False, biases=("up", "down"), normalize=False),
    "qwen_moe_shared": dict(num_experts=8, top_k=4, hidden=32, inter=16, normalize=False),
    "mixtral_stack2": dict(num_experts=4, top_k=2, hidden=16, inter=32),
    "mixtral_router_logits_out": dict(num_experts=4, top_k=2, hidden=16, inter=24),
    "near_miss_softmax_after_topk": dict(num_experts=8, top_k=2, hidden=16, inter=24,
                                         order="topk_then_score", normalize=False),
    "near_miss_no_renorm": dict(num_experts=8, top_k=2, hidden=16, inter=24, normalize=False),
    "hit_experts_list": dict(num_experts=8, top_k=2, hidden=16, inter=24, experts=[0, 1, 6]),
}
# Fixtures that are exactly one loop (the others add ops around it).
PLAIN_FIXTURES = ["mixtral_top2", "switch_top1_gelu", "mixtral_router_logits_out",
                  "near_miss_softmax_after_topk", "near_miss_no_renorm", "hit_experts_list"]


def _configs():
    """~20 loop exports and 4 dense forms covering every option: E 2..8,
    k 1..E, H and I in {8, 16, 24}, silu/gelu/relu, GLU or not, biases,
    router bias, renormalisation, both orders, both index_add_ forms, and
    loops that visit a shuffled subset of the experts."""
    rng = np.random.default_rng(1913)
    orders = ("score_then_topk", "topk_then_score")
    for n in range(24):
        e = int(rng.integers(2, 9))
        layer = dict(num_experts=e, top_k=int(rng.integers(1, e + 1)),
                     hidden=int(rng.choice([8, 16, 24])), inter=int(rng.choice([8, 16, 24])),
                     activation=("silu", "gelu", "relu")[n % 3], glu=(n // 3) % 2 == 0,
                     order=orders[(n // 2) % 2], normalize=(n // 4) % 2 == 0,
                     biases={1: True, 3: True, 4: ("down",)}.get(n % 5, ()),
                     router_bias=n % 7 in (2, 5))
        config = dict(seed=500 + n, layer=layer, experts=None)
        if n % 4 == 3 and e > 2:  # a trace-time loop that lost experts
            config["experts"] = [int(x) for x in rng.permutation(e)[:int(rng.integers(1, e))]]
        if n < 20:
            config.update(form="loop", scatter=tg.SCATTER_FORMS[n % 2])
        else:
            layer["normalize"] = n % 2 == 1
            config.update(form="dense", column=("slice", "gather")[n % 2])
        yield config


CONFIGS = list(_configs())


def config_id(config):
    layer = config["layer"]
    parts = [f"{config['form']}{config['seed'] - 500}",
             f"E{layer['num_experts']}k{layer['top_k']}H{layer['hidden']}I{layer['inter']}",
             layer["activation"] + ("-glu" if layer["glu"] else ""),
             "topk-first" if layer["order"] == "topk_then_score" else "score-first",
             "renorm" if layer["normalize"] else "raw",
             config.get("scatter") or config.get("column")]
    if layer["biases"]:
        parts.append("bias")
    if layer["router_bias"]:
        parts.append("rbias")
    if config["experts"] is not None:
        parts.append("experts" + ".".join(map(str, config["experts"])))
    return "-".join(parts)


def build(config):
    """``(model, arrays, meta)`` of a configuration, meta marking the
    experts the graph leaves out absent."""
    if config["form"] == "loop":
        return tg.make_torch_loop(config["seed"], config["experts"], config["scatter"],
                                  **config["layer"])
    return tg.make_torch_dense(config["seed"], config["experts"], config["column"],
                               **config["layer"])


def hidden_states(seed, shape, hidden):
    """Random (batch, seq, H) inputs."""
    return random_tokens(seed, shape[0] * shape[1], hidden).reshape(*shape, hidden)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_graph_equals_reference(config):
    model, arrays, meta = build(config)
    onnx.checker.check_model(model, full_check=True)
    h = meta["hidden"]
    layer = {"meta": meta, **arrays}
    for n, shape in enumerate(SHAPES):
        x = hidden_states(config["seed"] * 10 + n, shape, h)
        got = run_model(model, x)[0]
        assert got.shape == x.shape
        err = rel_l2(got.reshape(-1, h), ref.evaluate(layer, x.reshape(-1, h)))
        record_error(f"torch {config['form']} graph (onnxruntime) vs reference", err)
        assert err <= TOL, (shape, err)


def test_lost_experts_change_the_output():
    """A loop over a subset differs from the full layer (the check above
    would not notice absent being ignored otherwise)."""
    model, arrays, meta = tg.make_torch_loop(3, experts=[2, 0], num_experts=4, top_k=2)
    assert meta["absent"] == [False, True, False, True]
    x = hidden_states(4, (2, 8), meta["hidden"])
    got = run_model(model, x)[0].reshape(-1, meta["hidden"])
    full = ref.evaluate({**arrays, "meta": dict(meta, absent=[False] * 4)}, x)
    assert rel_l2(got, full) > 0.1


def _signatures(model):
    """Each node as a hash of its op, attributes and operands' hashes
    (initializers by shape, Constant nodes by value): a multiset that two
    graphs share when they are the same DAG up to names and node order."""
    sig = {i.name: ("init", tuple(i.dims)) for i in model.graph.initializer}
    sig.update({i.name: ("input",) for i in model.graph.input})
    nodes = collections.Counter()
    for node in model.graph.node:
        attrs = []
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, onnx.TensorProto):
                arr = numpy_helper.to_array(v)
                v = (str(arr.dtype), arr.shape, tuple(np.round(arr.astype(np.float64).ravel(), 6)))
            attrs.append((a.name, v if not isinstance(v, list) else tuple(v)))
        key = repr((node.op_type, sorted(attrs), [sig.get(i, "") for i in node.input]))
        digest = hashlib.sha1(key.encode()).hexdigest()
        sig.update({o: (digest, j) for j, o in enumerate(node.output)})
        nodes[(node.op_type, digest)] += 1
    return nodes


@pytest.mark.parametrize("name", PLAIN_FIXTURES)
def test_builder_rebuilds_fixture(name):
    config = dict(FIXTURE_LAYERS[name])
    experts = config.pop("experts", None)
    arrays, meta = random_layer(0, **config)
    mine = _signatures(tg.torch_loop_model(arrays, meta, experts))
    theirs = _signatures(onnx.load(os.path.join(TORCH_INPUTS, name + ".onnx")))
    extra = collections.Counter(op for op, _ in (mine - theirs).elements())
    missing = collections.Counter(op for op, _ in (theirs - mine).elements())
    assert not extra and not missing, f"builder has extra {dict(extra)}, lacks {dict(missing)}"
