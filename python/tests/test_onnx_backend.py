"""The ONNX backend node tests (Debian's libonnx-testdata) whose ops the
importer supports all import, except those that use types it refuses by
design (strings, complex numbers, sequences) — and those are refused with
that reason. Python: the ``python3`` on PATH (onnx)."""

import json
import os
import subprocess
import sys

from tools import REPO, tool

DATA = "/usr/share/libonnx-testdata/data/node"
REFUSED_BY_DESIGN = ("unsupported ONNX element type", "only tensor values are supported")


def test_backend_node_tests_import(tmp_path):
    assert os.path.isdir(DATA), "libonnx-testdata missing: run scripts/setup.sh"
    out = tmp_path / "survey.json"
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "onnx_backend_survey.py"),
                    tool("moe-translate"), "--json", str(out)], check=True,
                   capture_output=True)
    survey = json.loads(out.read_text())
    unexpected = {name: why for name, why in survey["failures"].items()
                  if not any(r in why for r in REFUSED_BY_DESIGN)}
    assert not unexpected, unexpected
    assert survey["eligible"] >= 400 and survey["imported"] >= 425
