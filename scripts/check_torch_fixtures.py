#!/usr/bin/env python3
"""Checks the torch-exported MoE fixtures (test/Import/Inputs/torch/, written
by scripts/make_torch_fixtures.py) with onnxruntime: runs every <name>.onnx
on the inputs stored in <name>.npz and compares with the stored torch
outputs (rel L2 <= 1e-5). What each fixture is expected to do (which inputs
onnxruntime runs, which it reproduces) is in expected_ort.json next to the
fixtures; the exit status is non-zero when any outcome differs from it.
Every model also goes through onnx.checker (full_check).
Python: the `python3` on PATH with numpy, onnx and onnxruntime (no torch).

    python3 scripts/check_torch_fixtures.py [--dir DIR] [--report]

--report prints every outcome without comparing with expected_ort.json.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "..", "test", "Import", "Inputs", "torch")
TOL = 1e-5


def rel_l2(got, want):
    den = float(np.linalg.norm(want.astype(np.float64)))
    num = float(np.linalg.norm(got.astype(np.float64) - want.astype(np.float64)))
    return num / den if den else num


def outcomes(path, npz):
    """{case: ("match" | "mismatch" | "error", detail)} for every stored input;
    case is the token count as a string, or "trace"."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    cases = [("trace", "trace_input", {"output": "trace_output"})]
    for key in sorted(npz.files):
        if key.startswith("input_"):
            t = key[len("input_"):]
            want = {"output": "output_" + t}
            if "router_logits" in out_names:
                want["router_logits"] = "router_logits_" + t
            cases.append((t, key, want))
    result = {}
    for case, in_key, want in cases:
        try:
            got = dict(zip(out_names, sess.run(None, {"hidden_states": npz[in_key]})))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises several kinds
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            result[case] = ("error", msg[:300])
            continue
        errs = {name: rel_l2(got[name], npz[key]) for name, key in want.items()}
        worst = max(errs.values())
        detail = ", ".join("%s rel L2 %.2e" % kv for kv in errs.items())
        result[case] = ("match" if worst <= TOL else "mismatch", detail)
    return result


def case_order(case):
    return (case != "trace", not case.isdigit(), int(case) if case.isdigit() else 0, case)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=DEFAULT_DIR)
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    with open(os.path.join(args.dir, "expected_ort.json")) as f:
        expected = json.load(f)
    print("onnxruntime %s, onnx %s, numpy %s" % (ort.__version__, onnx.__version__, np.__version__))
    bad = 0
    for name in sorted(expected):
        path = os.path.join(args.dir, name + ".onnx")
        try:
            onnx.checker.check_model(onnx.load(path), full_check=True)
        except Exception as e:  # noqa: BLE001
            print("%-30s onnx.checker: %s" % (name, e))
            bad += 1
        with np.load(os.path.join(args.dir, name + ".npz")) as npz:
            res = outcomes(path, npz)
        want = expected[name]
        for case in sorted(res, key=case_order):
            status, detail = res[case]
            exp = want.get(case, "match")
            flag = "" if (args.report or status == exp) else "   <-- expected %s" % exp
            bad += bool(flag)
            print("%-30s %-10s %-8s %s%s" % (name, case, status, detail, flag))
        missing = sorted(set(want) - set(res))
        if missing and not args.report:
            print("%-32s expected cases not in the .npz: %s" % (name, missing))
            bad += 1
    if bad and not args.report:
        print("FAILED: %d outcome(s) differ from expected_ort.json" % bad)
        return 1
    print("all outcomes as expected" if not args.report else "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
