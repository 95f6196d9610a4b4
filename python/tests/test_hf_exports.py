"""transformers 5 exports (test/Import/Inputs/hf, made by
scripts/make_hf_fixtures.py with torch 2.15 and transformers 5.24): the
files still reproduce torch under onnxruntime; ``--moe-raise-experts``
turns every MoE block of every file into exactly one moe.layer with no
expert-weight gather, batched expert MatMul or router op left; every file
compiles with ``moe-compile --no-compress`` and runs with ``moe-run`` to
torch's own outputs (rel L2 <= 1e-5) at every stored token count; and the
default compression compiles and runs each.

Python: the ``python3`` on PATH (numpy, onnx, onnxruntime); needs
build/bin/moe-compile and build/bin/moe-run.
"""

import glob
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest

from conftest import record_error
from tools import REPO, moe_compile, moe_run, rel_l2, tool

HF = os.path.join(REPO, "test", "Import", "Inputs", "hf")
sys.path.insert(0, os.path.join(REPO, "scripts"))
import check_hf_fixtures  # noqa: E402

NAMES = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(HF, "*.onnx")))

# Known lowering bugs, each with what goes wrong; strict, so a fix shows.
KNOWN = {}

# MoE blocks per file: one per block fixture; the LMs have two decoder
# layers, DeepSeek-V3's first one with a dense MLP.
BLOCKS = {"mixtral_lm": 2, "qwen3_moe_lm": 2, "deepseek_v3_lm": 1}

# What each family's router is, as #moe.routing parameters beyond top_k
# (and selection_bias when the layer has one).
ROUTING = {
    "mixtral": "scoring = softmax, order = score_then_topk, normalize = true>",
    "minimax": "scoring = softmax, order = score_then_topk, normalize = true>",
    "olmoe": "scoring = softmax, order = score_then_topk, normalize = false>",
    "qwen2_moe": "scoring = softmax, order = score_then_topk, normalize = false>",
    "qwen3_moe": "scoring = softmax, order = score_then_topk, normalize = true>",
    "hunyuan_v1_moe": "scoring = softmax, order = score_then_topk, normalize = true>",
    "granitemoe": "scoring = softmax, order = topk_then_score, normalize = false>",
    "gpt_oss": "scoring = softmax, order = topk_then_score, normalize = false>",
    "jetmoe": "scoring = softmax, order = topk_then_score, normalize = false>",
    "ernie4_5_moe": "selection_bias scoring = softmax, order = score_then_topk, "
                    "normalize = true, norm_floor = 9.999999960041972E-13>",
    "deepseek_v3": "selection_bias scoring = sigmoid, order = score_then_topk, "
                   "normalize = true, groups = 4, groups_kept = 2, scale = 2.500000e+00",
    # n_group 2, topk_group 1 (the default groups_kept, not printed).
    "glm4_moe": "selection_bias scoring = sigmoid, order = score_then_topk, "
                "normalize = true, groups = 2, scale = 2.500000e+00",
    "phimoe": "scoring = sparsemixer, order = score_then_topk, normalize = false, "
              "mixer_epsilon = 0.0099999997764825821>",
    "llama4": "scoring = sigmoid, order = topk_then_score, normalize = false, "
              "weights_on_input = true>",
}


def family(name):
    return name.rsplit("_", 1)[0]


def raised(tmp_path, name):
    mlir = tmp_path / "m.mlir"
    subprocess.run([tool("moe-translate"), "--import-onnx",
                    os.path.join(HF, name + ".onnx"), "-o", str(mlir)], check=True)
    proc = subprocess.run(
        [tool("moe-opt"), str(mlir),
         "--pass-pipeline=builtin.module(func.func(onnx-shape-inference),moe-raise-experts)",
         "--mlir-elide-elementsattrs-if-larger=16"],
        capture_output=True, text=True, check=True)
    return proc.stdout, proc.stderr


# Operand types of the expert forms: a gathered (T*k, out, in) stack, rows
# as (T*k, in, 1) or (T*k, 1, in), an (E, T, H) stack of scaled tokens.
EXPERT_OPERAND = re.compile(r"tensor<(\?x\d+x1|\?x1x\d+|\d+x\?x\d+)xf32>")


@pytest.mark.parametrize("name", NAMES)
def test_every_moe_block_raises_to_one_layer(tmp_path, name):
    text, diagnostics = raised(tmp_path, name)
    assert "not raised" not in diagnostics, diagnostics
    layers = re.findall(r"moe\.layer .*", text)
    fam = family(name)
    assert len(layers) == BLOCKS.get(fam, 1), diagnostics
    want = ROUTING[fam[:-3] if fam.endswith("_lm") else fam]
    biased = want.startswith("selection_bias ")
    want = want[len("selection_bias "):] if biased else want
    for layer in layers:
        assert (" selection_bias " in layer) == biased, layer
        routing = re.search(r"routing = #moe.routing<top_k = \d+, (.*?>)", layer)
        assert routing and routing.group(1).startswith(want), (layer, want)
    # Nothing of the experts or routers is left.
    assert '"onnx.TopK"' not in text and '"onnx.ArgMax"' not in text
    for line in text.splitlines():
        if re.search(r'"onnx\.(Gather|GatherND|MatMul)"', line):
            operands = line.rsplit(" : (", 1)[-1]
            assert not re.search(r"tensor<\d+x\d+x\d+xf32>", operands.split(") ->")[0]) \
                or '"onnx.MatMul"' in line, line
            assert '"onnx.MatMul"' not in line or not EXPERT_OPERAND.search(operands), line


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN[n], strict=True)) if n in KNOWN
    else n for n in NAMES])
def test_compiles_and_runs_to_torch_outputs(tmp_path, name):
    path = os.path.join(HF, name + ".onnx")
    model = onnx.load(path, load_external_data=False)
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    artifact = tmp_path / "m.moe"
    moe_compile(path, "-o", artifact, "--no-compress")
    data = np.load(os.path.join(HF, name + ".npz"))
    cases = [k[len("input_"):] for k in data.files if k.startswith("input_")]
    assert cases
    for case in cases:
        np.save(tmp_path / "x.npy", data["input_" + case])
        moe_run(artifact, "--input", f"{inp}={tmp_path / 'x.npy'}",
                "--output", f"{out}={tmp_path / 'y.npy'}")
        err = rel_l2(np.load(tmp_path / "y.npy"), data["output_" + case])
        record_error("hf export, moe-run vs torch", err)
        assert err <= 1e-5, (case, err)


@pytest.mark.parametrize("name", [n for n in NAMES if not family(n).endswith("_lm")])
def test_default_compression_compiles_and_runs(tmp_path, name):
    path = os.path.join(HF, name + ".onnx")
    model = onnx.load(path, load_external_data=False)
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    artifact = tmp_path / "m.moe"
    moe_compile(path, "-o", artifact)
    data = np.load(os.path.join(HF, name + ".npz"))
    np.save(tmp_path / "x.npy", data["input_7"])
    moe_run(artifact, "--input", f"{inp}={tmp_path / 'x.npy'}",
            "--output", f"{out}={tmp_path / 'y.npy'}")
    y = np.load(tmp_path / "y.npy")
    assert y.shape == data["output_7"].shape and np.isfinite(y).all()
    record_error("hf export, default compression vs torch (not bounded)",
                 rel_l2(y, data["output_7"]))
