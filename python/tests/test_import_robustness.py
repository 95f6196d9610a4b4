"""Damaged ONNX files never crash the importer: each of many randomly
corrupted or truncated copies of the fixtures either imports or is refused
with an error, and exits normally (no signal, no assertion).

Python: the ``python3`` on PATH; needs build/bin/moe-translate.
"""

import os
import signal

import numpy as np
import pytest

from tools import REPO, run_tool

INPUTS = os.path.join(REPO, "test", "Import", "Inputs")
FIXTURES = ["ort_moe_swiglu.onnx", "ort_qmoe_int4.onnx", "unsupported_ops.onnx"]


def damaged(data, rng, kind):
    b = bytearray(data)
    if kind == "flip":
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 8))):
            b[pos] ^= int(rng.integers(1, 256))
    elif kind == "truncate":
        b = b[: int(rng.integers(0, len(b)))]
    else:  # splice: a block of random bytes over the file
        start = int(rng.integers(0, len(b)))
        b[start:start + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
    return bytes(b)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_damaged_files_fail_cleanly(tmp_path, fixture):
    data = open(os.path.join(INPUTS, fixture), "rb").read()
    rng = np.random.default_rng(len(fixture))
    outcomes = {"imported": 0, "refused": 0}
    for n in range(40):
        path = tmp_path / f"damaged_{n}.onnx"
        path.write_bytes(damaged(data, rng, ("flip", "truncate", "splice")[n % 3]))
        proc = run_tool("moe-translate", "--import-onnx", path, "-o", os.devnull, check=False)
        # A negative return code is a signal: a crash.
        assert proc.returncode in (0, 1), (n, proc.returncode, proc.stderr[-500:])
        assert -proc.returncode not in (signal.SIGSEGV, signal.SIGABRT)
        if proc.returncode:
            assert "error:" in proc.stderr, proc.stderr[-500:]
            outcomes["refused"] += 1
        else:
            outcomes["imported"] += 1
    assert outcomes["refused"] > 0
