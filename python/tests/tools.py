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


def moe_opt(*args, check=True):
    """Runs moe-opt; returns the CompletedProcess (stdout/stderr as text)."""
    proc = subprocess.run([tool("moe-opt"), *map(str, args)],
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"moe-opt {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def moe_translate(*args, check=True):
    """Runs moe-translate; returns the CompletedProcess."""
    proc = subprocess.run([tool("moe-translate"), *map(str, args)],
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"moe-translate {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc
