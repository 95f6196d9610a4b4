#!/usr/bin/env python3
"""Imports every ONNX backend node test (Debian's
libonnx-testdata, /usr/share/libonnx-testdata/data/node) whose ops the importer supports, and reports
how many import cleanly and why the others fail.

Python: the `python3` on PATH (onnx). Usage:
    python3 scripts/onnx_backend_survey.py [build/bin/moe-translate] [--json OUT]
"""
import collections
import json
import os
import subprocess
import sys

import onnx

SUPPORTED = set("""Add Sub Mul Div Pow Sqrt Reciprocal Neg Exp Log Erf Tanh Sigmoid Relu Gelu Sin Cos
Abs Softmax LogSoftmax MatMul Gemm Reshape Transpose Squeeze Unsqueeze Concat Split Slice Gather
GatherElements GatherND ScatterElements ScatterND Expand Tile Shape Size ConstantOfShape Constant
Cast CastLike Where Equal Greater Less GreaterOrEqual LessOrEqual Not And Or TopK ReduceSum
ReduceMean ReduceMax ReduceMin OneHot NonZero CumSum Range Trilu LayerNormalization Identity
Flatten Clip Min Max Sum ArgMax ArgMin Einsum Softplus Sign Floor Ceil""".split())


def main():
    tool = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "bin", "moe-translate")
    # Debian's libonnx-testdata (scripts/setup.sh installs it); the onnx
    # wheel ships no node tests.
    root = "/usr/share/libonnx-testdata/data/node"
    results = {"eligible": 0, "imported": 0, "failures": {}}
    reasons = collections.Counter()
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "model.onnx")
        if not os.path.exists(path):
            continue
        model = onnx.load(path, load_external_data=False)
        ops = {n.op_type for n in model.graph.node}
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if not ops <= SUPPORTED or any(n.domain not in ("", "ai.onnx") for n in model.graph.node) \
                or not 13 <= opset <= 28:
            continue
        results["eligible"] += 1
        proc = subprocess.run([tool, "--import-onnx", path, "-o", os.devnull],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            results["imported"] += 1
        else:
            msg = proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else "?"
            msg = msg.split("error: ", 1)[-1]
            results["failures"][name] = msg
            reasons[msg.split(":")[-1].strip()[:80]] += 1
    print(f"{results['imported']} of {results['eligible']} eligible backend node tests import cleanly")
    for reason, count in reasons.most_common(25):
        print(f"  {count:4d}  {reason}")
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
