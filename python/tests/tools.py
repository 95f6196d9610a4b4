"""Finding and running the project's C++ tools from pytest.

The tools are part of the project, so a missing tool is a failure, not a
skip: MOE_OPT names moe-opt, else MOE_MLIR_BUILD (set by ctest) or the
repository's build/ folder holds it in bin/.
"""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tool(name):
    env = os.environ.get(name.upper().replace("-", "_"))
    if env:
        return env
    build = os.environ.get("MOE_MLIR_BUILD") or os.path.join(REPO, "build")
    path = os.path.join(build, "bin", name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f"{path} not found: build the project first (scripts/build.sh)")
    return path


def run_tool(name, *args, check=True):
    """Runs one of the project's tools; returns the CompletedProcess
    (stdout/stderr as text), raising with its stderr when check fails."""
    proc = subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def moe_opt(*args, check=True):
    return run_tool("moe-opt", *args, check=check)


def moe_translate(*args, check=True):
    return run_tool("moe-translate", *args, check=check)


def import_and_raise(tmp_path, model_path, *passes):
    """Imports the ONNX file with moe-translate, runs moe-opt with
    ``passes`` and dumps the layers; returns moe-opt's CompletedProcess
    (the IR on stdout, diagnostics on stderr) and the dumps, in order."""
    mlir = tmp_path / "imported.mlir"
    moe_translate("--import-onnx", model_path, "-o", mlir)
    dump = tmp_path / "dump"
    proc = moe_opt(mlir, *passes, f"--moe-dump-layers={dump}")
    layers = list(dump.glob("layer_*.npz")) if dump.exists() else []
    return proc, sorted(layers, key=lambda p: int(p.stem.split("_")[-1]))


def rel_l2(got, want):
    """Relative L2 error of ``got`` against ``want`` (same number of
    elements), in float64; the absolute error where ``want`` is zero."""
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64).reshape(got.shape)
    den = float(np.linalg.norm(want))
    num = float(np.linalg.norm(got - want))
    return num / den if den else num
