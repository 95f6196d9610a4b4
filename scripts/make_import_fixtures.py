#!/usr/bin/env python3
"""Writes the small ONNX models the importer's lit tests read
(test/Import/Inputs/). Python: the `python3` on PATH (numpy, onnx).
Deterministic: the same files on every run. Run from the repository root:

    python3 scripts/make_import_fixtures.py
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from moe_mlir import onnx_models, torch_graphs  # noqa: E402
from moe_mlir.synth import random_layer  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "Import", "Inputs")


def save(model, name):
    onnx.save(model, os.path.join(OUT, name))


def tiny_graph(nodes, inputs, outputs, inits=(), opset=17, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="moe_mlir")
    model.ir_version = 8
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    # onnxruntime contrib MoE, current layout: swiglu (interleaved), biases.
    arrays, meta = random_layer(1, num_experts=4, hidden=16, inter=8, top_k=2,
                                activation="swiglu", alpha=1.702, beta=1.0, limit=7.0,
                                biases=True, router_bias=True)
    save(onnx_models.ort_moe_model(arrays, meta), "ort_moe_swiglu.onnx")
    # Plain relu experts, top-1, no renormalisation.
    arrays, meta = random_layer(2, num_experts=4, hidden=16, inter=8, top_k=1, glu=False,
                                activation="relu", normalize=False, biases=("up", "down"))
    save(onnx_models.ort_moe_model(arrays, meta), "ort_moe_relu.onnx")
    save(onnx_models.ort_moe_legacy_model(arrays, meta), "ort_moe_relu_legacy.onnx")
    # H = I: the layouts cannot be told apart by shapes.
    arrays, meta = random_layer(3, num_experts=4, hidden=8, inter=8, top_k=2, glu=False,
                                activation="relu")
    save(onnx_models.ort_moe_model(arrays, meta), "ort_moe_ambiguous.onnx")
    # QMoE int4 (block 16, symmetric) and int8 (per row, zero points).
    arrays, meta = random_layer(4, num_experts=4, hidden=32, inter=16, top_k=2)
    save(onnx_models.ort_qmoe_model(arrays, meta, bits=4, block_size=16), "ort_qmoe_int4.onnx")
    save(onnx_models.ort_qmoe_model(arrays, meta, bits=8, block_size=0, zero_points=True),
         "ort_qmoe_int8_zp.onnx")

    # Near misses: each must stay an onnx.MoE, with a remark saying why.
    base = onnx.load(os.path.join(OUT, "ort_moe_relu.onnx"))
    other = onnx.ModelProto()
    other.CopyFrom(base)  # the router reads 2 * tokens, not the MoE input
    mm = next(n for n in other.graph.node if n.op_type == "MatMul")
    other.graph.node.insert(0, helper.make_node("Add", ["tokens", "tokens"], ["tokens2"]))
    mm.input[0] = "tokens2"
    save(other, "near_miss_router_input.onnx")
    sparse = onnx.ModelProto()
    sparse.CopyFrom(base)  # sparsemixer routing
    moe = next(n for n in sparse.graph.node if n.op_type == "MoE")
    moe.attribute.append(helper.make_attribute("use_sparse_mixer", 1))
    save(sparse, "near_miss_sparse_mixer.onnx")
    logits = onnx.ModelProto()
    logits.CopyFrom(base)  # router logits given as a graph input
    moe = next(n for n in logits.graph.node if n.op_type == "MoE")
    moe.input[1] = "router_logits"
    logits.graph.input.append(helper.make_tensor_value_info("router_logits", TensorProto.FLOAT,
                                                            ["T", 4]))
    save(logits, "near_miss_router_logits.onnx")

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    # Three unsupported constructs in one model: two ops and an attribute.
    save(tiny_graph([helper.make_node("Add", ["x", "x"], ["a"], name="add0"),
                     helper.make_node("Mod", ["a", "a"], ["b"], name="mod0"),
                     helper.make_node("HardSigmoid", ["b"], ["c"], name="hs0"),
                     helper.make_node("Relu", ["c"], ["y"], name="relu0", bogus=1)],
                    [x], [y]), "unsupported_ops.onnx")
    # torch-export forms built node for node (moe_mlir.torch_graphs): the
    # loop with newer torch's ScatterElements(reduction=add), plain GELU
    # experts with biases; the dense form with expert 2 lost.
    model, _, _ = torch_graphs.make_torch_loop(11, scatter="add", num_experts=4, hidden=16,
                                               inter=8, top_k=1, activation="gelu",
                                               glu=False, biases=True, normalize=False)
    save(model, "torch_loop_scatter_add.onnx")
    model, _, _ = torch_graphs.make_torch_dense(12, experts=[0, 1, 3], num_experts=4,
                                                hidden=16, inter=8, top_k=2)
    save(model, "torch_dense.onnx")
    # An input nobody produces.
    save(tiny_graph([helper.make_node("Add", ["x", "ghost"], ["y"], name="add_ghost")],
                    [x], [y]), "dangling_input.onnx")
    # An opset older than 13.
    save(tiny_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y], opset=11),
         "opset11.onnx")
    # Weights in an external file, and two broken variants.
    w = numpy_helper.from_array(np.arange(16 * 4, dtype=np.float32).reshape(16, 4) / 64, "w")
    wv = helper.make_tensor_value_info("w_out", TensorProto.FLOAT, ["N", 4])
    base = tiny_graph([helper.make_node("MatMul", ["x16", "w"], ["w_out"], name="mm")],
                      [helper.make_tensor_value_info("x16", TensorProto.FLOAT, ["N", 16])],
                      [wv], [w])
    onnx.save(base, os.path.join(OUT, "external_data.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="external_data.bin", size_threshold=0)
    for name, location in (("external_escape.onnx", "../outside.bin"),
                           ("external_missing.onnx", "no_such_file.bin")):
        m = onnx.load(os.path.join(OUT, "external_data.onnx"), load_external_data=False)
        for entry in m.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        onnx.save(m, os.path.join(OUT, name))


if __name__ == "__main__":
    main()
