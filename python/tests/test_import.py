"""ONNX import and raising, checked by numbers: a model imported with
moe-translate --import-onnx and raised with moe-opt --moe-raise-experts
holds exactly one moe.layer per MoE node, and the float64 evaluator on its
dump equals onnxruntime on the original file.

Python: the ``python3`` on PATH (numpy, onnx, onnxruntime); needs
build/bin/moe-translate and build/bin/moe-opt.
"""

import os

import numpy as np
import onnx
import pytest

from conftest import record_error
from moe_mlir import onnx_models, quant, reference as ref
from moe_mlir.synth import random_layer, random_tokens
from tools import REPO, import_and_raise, moe_opt, moe_translate

INPUTS = os.path.join(REPO, "test", "Import", "Inputs")
# Import, fold the constant Transposes of router weights, raise, dump.
PREPARE = ["--onnx-shape-inference"]
RAISE = "--moe-raise-experts"


def raise_and_dump(tmp_path, model_path, raise_pass=RAISE):
    proc, layers = import_and_raise(tmp_path, model_path, *PREPARE, raise_pass)
    return proc.stdout, layers


def ort_output(model, x):
    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(model)
    return onnx_models.run_model(model, x)[0]


def check_equal(tmp_path, model, x, want=None, label="raised vs onnxruntime",
                raise_pass=RAISE):
    path = tmp_path / "model.onnx"
    onnx.save(model, path) if not isinstance(model, (str, os.PathLike)) else None
    src = path if not isinstance(model, (str, os.PathLike)) else model
    text, layers = raise_and_dump(tmp_path, src, raise_pass)
    assert len(layers) == 1, text
    assert "onnx.MoE" not in text and "onnx.QMoE" not in text
    got = ref.evaluate(ref.load_layer(layers[0]), x)
    want = ort_output(model, x) if want is None else want
    err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    record_error(label, err)
    assert err <= 1e-5, err


@pytest.mark.parametrize("name", ["ort_moe_swiglu", "ort_moe_relu", "ort_qmoe_int4",
                                  "ort_qmoe_int8_zp"])
def test_fixture_raises_and_matches(tmp_path, name):
    path = os.path.join(INPUTS, name + ".onnx")
    h = onnx.load(path).graph.input[0].type.tensor_type.shape.dim[1].dim_value
    for t in (1, 7, 64):
        check_equal(tmp_path, path, random_tokens(t, t, h), label=f"{name} vs onnxruntime")


def test_legacy_layout_equals_current_twin(tmp_path):
    x = random_tokens(5, 9, 16)
    want = ort_output(os.path.join(INPUTS, "ort_moe_relu.onnx"), x)
    check_equal(tmp_path, os.path.join(INPUTS, "ort_moe_relu_legacy.onnx"), x, want=want,
                label="legacy layout vs current twin")


def _configs():
    rng = np.random.default_rng(2026)
    for n in range(12):
        e = int(rng.integers(2, 9))
        act = ["relu", "silu", "identity", "gelu_tanh", "swiglu"][n % 5]
        glu = act == "swiglu" or (act == "silu" and n % 2 == 0)
        yield dict(seed=100 + n, num_experts=e, top_k=int(rng.integers(1, min(e, 4) + 1)),
                   hidden=int(rng.choice([8, 16, 24])), inter=int(rng.choice([4, 8, 12])),
                   activation="swiglu" if glu and act == "silu" else act, glu=glu,
                   normalize=bool(n % 3), biases=True if n % 4 == 0 else (),
                   router_bias=bool(n % 2))


@pytest.mark.parametrize("config", list(_configs()), ids=lambda c: f"seed{c['seed']}")
def test_random_ort_moe(tmp_path, config):
    seed = config.pop("seed")
    arrays, meta = random_layer(seed, **config)
    model = onnx_models.ort_moe_model(arrays, meta)
    # H = I makes the layout ambiguous by shapes; these models are current.
    check_equal(tmp_path, model, random_tokens(seed, 13, meta["hidden"]),
                label="random com.microsoft.MoE vs onnxruntime",
                raise_pass="--moe-raise-experts=ort-moe-layout=current")


def dequantised_reference(arrays, meta, x, bits, block, zp):
    """The layer on weights quantised and dequantised in NumPy exactly as
    the QMoE model stores them: an independent float64 reference."""
    layer = {"meta": meta}
    for name, value in arrays.items():
        layer[name] = np.asarray(value, np.float64)
    for name in ("gate_weight", "up_weight", "down_weight"):
        w = arrays[name]
        e, n, k = w.shape
        d, s, z = quant.quantize(w.reshape(e * n, k), bits, group_size=block,
                                 symmetric=not zp, scale_dtype="float32")
        qmeta = {"storage": f"i{bits}", "group_size": block, "symmetric": not zp,
                 "packing": "low_nibble_first", "shape": [e * n, k]}
        layer[name] = quant.dequantize(d, s, z, qmeta).reshape(e, n, k)
    return ref.evaluate(layer, x)


@pytest.mark.parametrize("bits,block,zp", [(4, 16, False), (4, 32, True), (8, 0, False),
                                           (8, 16, True), (4, 0, False)])
def test_random_ort_qmoe(tmp_path, bits, block, zp):
    arrays, meta = random_layer(7 + bits + block, num_experts=4, hidden=32, inter=16, top_k=2)
    model = onnx_models.ort_qmoe_model(arrays, meta, bits=bits, block_size=block, zero_points=zp)
    x = random_tokens(3, 11, 32)
    want = dequantised_reference(arrays, meta, x, bits, block, zp)
    if not (bits == 8 and block):
        # onnxruntime agrees with the reference to float rounding...
        ort = ort_output(model, x)
        assert np.linalg.norm(ort - want) / np.linalg.norm(want) <= 1e-5
    # ...except for 8-bit block-wise weights, where its MLAS path differs by
    # about 1e-2 (int8 activations); the NumPy reference is used alone there.
    check_equal(tmp_path, model, x, want=want, label="random QMoE vs dequantised reference")


def test_ambiguous_layout_needs_the_option(tmp_path):
    path = os.path.join(INPUTS, "ort_moe_ambiguous.onnx")
    mlir = tmp_path / "imported.mlir"
    moe_translate("--import-onnx", path, "-o", mlir)
    proc = moe_opt(mlir, *PREPARE, RAISE, check=False)
    assert proc.returncode != 0 and "is ambiguous" in proc.stderr
    x = random_tokens(4, 6, 8)
    text, layers = raise_and_dump(tmp_path, path, "--moe-raise-experts=ort-moe-layout=current")
    got = ref.evaluate(ref.load_layer(layers[0]), x)
    want = ort_output(path, x)
    assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 1e-5


@pytest.mark.parametrize("bits,block,zp", [(4, 16, False), (8, 0, True)])
def test_raised_qmoe_compresses_losslessly(tmp_path, bits, block, zp):
    """Compression reads quantised weights through the C++ dequantiser; at
    full rank without quantisation it must reproduce the raised layer that
    the Python evaluator dequantises on its own."""
    arrays, meta = random_layer(40 + bits, num_experts=8, hidden=32, inter=16, top_k=2)
    path = tmp_path / "q.onnx"
    onnx.save(onnx_models.ort_qmoe_model(arrays, meta, bits=bits, block_size=block,
                                         zero_points=zp), path)
    mlir = tmp_path / "q.mlir"
    moe_translate("--import-onnx", path, "-o", mlir)
    moe_opt(mlir, *PREPARE, RAISE, f"--moe-dump-layers={tmp_path / 'raised'}",
            "--moe-compress-pipeline=bits=none base-bits=32 rank=full",
            f"--moe-dump-layers={tmp_path / 'compressed'}", "-o", os.devnull)
    x = random_tokens(41, 17, 32)
    want = ref.evaluate(ref.load_layer(tmp_path / "raised" / "layer_0.npz"), x)
    got = ref.evaluate(ref.load_layer(tmp_path / "compressed" / "layer_0.npz"), x)
    err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    record_error("compressed raised QMoE (full rank, f32) vs raised", err)
    assert err <= 1e-6
