"""transformers 5 exports (test/Import/Inputs/hf, made by
scripts/make_hf_fixtures.py with torch 2.15 and transformers 5.24): the
files still reproduce torch under onnxruntime, and every one compiles with
``moe-compile --no-compress`` and runs with ``moe-run`` to torch's own
outputs (rel L2 <= 1e-5) at every stored token count. They run through the
ordinary op lowering today: raising the ``batched_mm`` form to moe.layer is
issue 13's.

Python: the ``python3`` on PATH (numpy, onnx, onnxruntime); needs
build/bin/moe-compile and build/bin/moe-run.
"""

import glob
import os
import sys

import numpy as np
import onnx
import pytest

from conftest import record_error
from tools import REPO, moe_compile, moe_run, rel_l2

HF = os.path.join(REPO, "test", "Import", "Inputs", "hf")
sys.path.insert(0, os.path.join(REPO, "scripts"))
import check_hf_fixtures  # noqa: E402

NAMES = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(HF, "*.onnx")))

# Known lowering bugs, each with what goes wrong; strict, so a fix shows.
KNOWN = {}


def test_fixtures_reproduce_torch_under_onnxruntime():
    assert check_hf_fixtures.check() == []


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
