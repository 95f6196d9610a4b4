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
