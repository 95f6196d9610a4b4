"""Raising torch-exported MoE loops and dense forms, checked by numbers:
moe-opt --onnx-shape-inference --moe-raise-experts turns each MoE block of
the checked-in torch exports (test/Import/Inputs/torch/) and of the graphs
moe_mlir.torch_graphs builds into one moe.layer, leaves no expert MatMul
behind, and the float64 evaluator on the layer dump equals what the graph
computes (torch's stored outputs, or onnxruntime); loops that are not a
MoE layer stay as they are, with a remark.

Python: the ``python3`` on PATH (numpy, onnx, onnxruntime); needs
build/bin/moe-translate and build/bin/moe-opt.
"""

import copy
import os
import re
from collections import defaultdict

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import record_error
from moe_mlir import reference as ref
from moe_mlir.onnx_models import FLOAT, run_model
from moe_mlir.torch_graphs import with_absent
from moe_mlir.synth import random_layer
from test_import import PREPARE, RAISE
from test_torch_graphs import (CONFIGS, FIXTURE_LAYERS, SHAPES, TOL, TORCH_INPUTS, build,
                               config_id, hidden_states)
from tools import import_and_raise, rel_l2

# MatMul/Gemm ops a correct raise leaves in each fixture: the router when
# the graph also outputs its logits; Qwen's shared expert (3) and its gate.
KEPT_LINEAR = {"mixtral_top2": 0, "switch_top1_gelu": 0, "qwen_moe_shared": 4,
               "mixtral_stack2": 0, "mixtral_router_logits_out": 1,
               "near_miss_softmax_after_topk": 0, "near_miss_no_renorm": 0,
               "hit_experts_list": 0}
LINEAR_OP = re.compile(r'"onnx\.(MatMul|Gemm)"')


def raise_file(tmp_path, path):
    return import_and_raise(tmp_path, path, *PREPARE, RAISE)


def linear_ops(ir):
    return len(LINEAR_OP.findall(ir))


def _activation_kind(act):
    """silu GLU may be written as swiglu with alpha 1, beta 0, no limit."""
    if (act["kind"] == "swiglu" and act.get("alpha") in (None, 1.0)
            and act.get("beta") in (None, 0.0) and act.get("limit") is None):
        return "silu"
    return act["kind"]


def check_layer(dump, meta, arrays):
    """The dump's routing, activation, absent experts and arrays are the
    layer's."""
    got = dump["meta"]
    assert got["num_experts"] == meta["num_experts"] and got["glu"] == meta["glu"]
    r, want = got["routing"], meta["routing"]
    assert (r["top_k"], r.get("scoring", "softmax"), r["order"]) == \
        (want["top_k"], want["scoring"], want["order"]), r
    # After softmax over the k selected logits, renormalising is a no-op:
    # either value is right for topk_then_score.
    if want["order"] == "score_then_topk":
        assert r["normalize"] == want["normalize"], r
    assert _activation_kind(got["activation"]) == meta["activation"]["kind"], got["activation"]
    absent = got.get("absent") or [False] * meta["num_experts"]
    assert list(absent) == list(meta["absent"])
    assert sorted(k for k in dump if k != "meta") == sorted(arrays)


def fixture_layer(name):
    """``(meta, arrays)`` a fixture's layer should have (weights random: for
    the meta and the array names only)."""
    config = dict(FIXTURE_LAYERS[name])
    experts = config.pop("experts", None)
    arrays, meta = random_layer(0, **config)
    return with_absent(meta, experts if experts is not None else range(meta["num_experts"])), arrays


def fixture_cases(npz):
    """``(case, input, output)`` of every stored input (trace included)."""
    yield "trace", npz["trace_input"], npz["trace_output"]
    for key in sorted(npz.files):
        if key.startswith("input_"):
            case = key[len("input_"):]
            yield case, npz[key], npz["output_" + case]


def moe_taps(model):
    """Per MoE block, in graph order: the router weight (E, H), the value
    the block routes (T, H) and the loop's final accumulator (T, H), the
    MoE branch alone (before a shared expert is added, before the reshape
    back to (batch, seq, H))."""
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    users = defaultdict(list)
    for n in g.node:
        for i in n.input:
            users[i].append(n)
    routers = [n for n in g.node if n.op_type in ("MatMul", "Gemm")
               and any(u.op_type in ("Softmax", "TopK") for u in users[n.output[0]])]
    # The accumulator starts as zeros of shape Concat(T, H); the per-expert
    # zeros of index_add_ have shape Shape(acc).
    starts = [n.output[0] for n in g.node if n.op_type == "ConstantOfShape"
              and producer[n.input[0]].op_type == "Concat"]
    assert len(routers) == len(starts)

    def step(acc, n):
        if n.op_type == "ScatterElements":
            return n.input[0] == acc
        src = producer.get(n.input[1]) if n.op_type == "Add" and n.input[0] == acc else None
        return src is not None and src.op_type == "ScatterElements"

    taps = []
    for router, acc in zip(routers, starts):
        while True:
            nxt = [n for n in users[acc] if step(acc, n)]
            if not nxt:
                break
            acc = nxt[0].output[0]
        w = inits[router.input[1]]
        taps.append((w.T if router.op_type == "MatMul" else w, router.input[0], acc))
    return taps


def check_taps(model_path, layers, npz, label):
    """Each dump on its block's input equals its block's MoE branch, both
    read from onnxruntime on a copy of the model that outputs them."""
    model = onnx.load(model_path)
    taps = moe_taps(model)
    tapped = copy.deepcopy(model)
    for _, x, acc in taps:
        tapped.graph.output.extend([helper.make_tensor_value_info(x, FLOAT, None),
                                    helper.make_tensor_value_info(acc, FLOAT, None)])
    dumps = [ref.load_layer(p) for p in layers]
    first = len(model.graph.output)
    for case, x, _ in fixture_cases(npz):
        values = run_model(tapped, x)[first:]
        for dump in dumps:
            found = [j for j, (w, _, _) in enumerate(taps)
                     if w.shape == dump["router_weight"].shape
                     and np.array_equal(w, dump["router_weight"])]
            assert len(found) == 1, "the dump's router weight is no block's"
            tokens, want = values[2 * found[0]], values[2 * found[0] + 1]
            err = rel_l2(ref.evaluate(dump, tokens), want)
            record_error(label, err)
            assert err <= TOL, (case, err)


@pytest.mark.parametrize("name", sorted(KEPT_LINEAR))
def test_fixture_raises(tmp_path, name):
    path = os.path.join(TORCH_INPUTS, name + ".onnx")
    proc, layers = raise_file(tmp_path, path)
    assert len(layers) == (2 if name == "mixtral_stack2" else 1), proc.stderr
    assert linear_ops(proc.stdout) == KEPT_LINEAR[name], "expert MatMul/Gemm left"
    meta, arrays = fixture_layer(name)
    for layer in layers:
        check_layer(ref.load_layer(layer), meta, arrays)
    npz = np.load(os.path.join(TORCH_INPUTS, name + ".npz"))
    if name in ("qwen_moe_shared", "mixtral_stack2"):
        # The dumps are not the whole output (shared expert; LayerNorms and
        # residuals): compare each with its block's MoE branch instead.
        check_taps(path, layers, npz, "torch fixture MoE branch (onnxruntime) vs raised")
        return
    dump = ref.load_layer(layers[0])
    h = meta["hidden"]
    for case, x, want in fixture_cases(npz):
        # hit_experts_list: the stored output is what the graph computes
        # (the untraced experts contribute nothing).
        err = rel_l2(ref.evaluate(dump, x.reshape(-1, h)), want.reshape(-1, h))
        record_error("torch fixture output (torch) vs raised", err)
        assert err <= TOL, (case, err)


@pytest.mark.parametrize("name", ["near_miss_trap_expert", "hit_experts_tensor"])
def test_fixture_stays_unraised(tmp_path, name):
    path = os.path.join(TORCH_INPUTS, name + ".onnx")
    proc, layers = raise_file(tmp_path, path)
    assert not layers, proc.stderr
    assert "not raised" in proc.stderr, proc.stderr
    matmuls = sum(n.op_type == "MatMul" for n in onnx.load(path).graph.node)
    assert linear_ops(proc.stdout) == matmuls, "a partial raise"


def test_lost_experts_warn(tmp_path):
    proc, layers = raise_file(tmp_path, os.path.join(TORCH_INPUTS, "hit_experts_list.onnx"))
    assert len(layers) == 1
    assert "warning" in proc.stderr and "absent" in proc.stderr, proc.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_built_graph_raises(tmp_path, config):
    model, arrays, meta = build(config)
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    proc, layers = raise_file(tmp_path, path)
    assert len(layers) == 1, proc.stderr
    assert linear_ops(proc.stdout) == 0, "expert or router MatMul/Gemm left"
    if any(meta["absent"]):
        assert "absent" in proc.stderr
    dump = ref.load_layer(layers[0])
    check_layer(dump, meta, arrays)
    h = meta["hidden"]
    for n, shape in enumerate(SHAPES):
        x = hidden_states(config["seed"] * 10 + n, shape, h)
        want = run_model(model, x)[0]
        err = rel_l2(ref.evaluate(dump, x.reshape(-1, h)), want.reshape(-1, h))
        record_error(f"torch {config['form']} graph (onnxruntime) vs raised", err)
        assert err <= TOL, (shape, err)
