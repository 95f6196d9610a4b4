#!/usr/bin/env python3
"""Checks the transformers 5 MoE exports (test/Import/Inputs/hf/, written by
scripts/make_hf_fixtures.py) with onnxruntime and onnx.checker, no torch
needed: every kept <name>.onnx runs on the inputs stored in <name>.npz and
must reproduce the stored torch outputs (rel L2 <= 1e-5) in every case that
expected_ort.json lists; every model passes onnx.checker (full_check); the
exports recorded as failed have no files. Python: the `python3` on PATH with
numpy, onnx and onnxruntime.

    python3 scripts/check_hf_fixtures.py [--dir DIR] [--only NAME ...]

From pytest (python/tests/), with scripts/ on sys.path:

    import check_hf_fixtures
    def test_hf_fixtures():
        assert check_hf_fixtures.check() == []
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "..", "test", "Import", "Inputs", "hf")
TOL = 1e-5


def rel_l2(got, want):
    want = want.astype(np.float64)
    den = float(np.linalg.norm(want))
    num = float(np.linalg.norm(got.astype(np.float64) - want))
    return num / den if den else num


def load_expected(folder=DEFAULT_DIR):
    with open(os.path.join(folder, "expected_ort.json")) as f:
        return json.load(f)


def run_cases(path, npz):
    """{case: (status, rel L2 or message)} for every input_<case> in npz."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    out = {}
    for key in sorted(npz.files):
        if not key.startswith("input_"):
            continue
        case = key[len("input_"):]
        try:
            got = sess.run(None, {in_name: npz[key]})[0]
        except Exception as e:  # noqa: BLE001 - onnxruntime raises several kinds
            out[case] = ("error", str(e).strip().splitlines()[0][:300])
            continue
        want = npz["output_" + case]
        if got.shape != want.shape:
            out[case] = ("mismatch", "shape %s, torch %s" % (got.shape, want.shape))
            continue
        err = rel_l2(got, want)
        out[case] = ("match" if err <= TOL else "mismatch", err)
    return out


def check_one(name, entry, folder=DEFAULT_DIR, log=None):
    """Problems (strings) with one expected_ort.json entry."""
    problems = []
    path = os.path.join(folder, name + ".onnx")
    npz_path = os.path.join(folder, name + ".npz")
    if entry["status"] != "kept":
        for p in (path, npz_path):
            if os.path.exists(p):
                problems.append("%s: recorded as failed (%s) but %s exists" % (name, entry["stage"], p))
        if log:
            log("%-30s failed at %s (recorded): %s" % (name, entry["stage"], entry["message"][:120]))
        return problems
    for p in (path, npz_path):
        if not os.path.exists(p):
            return ["%s: %s is missing" % (name, p)]
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
    except Exception as e:  # noqa: BLE001
        problems.append("%s: onnx.checker: %s" % (name, str(e).splitlines()[0]))
    with np.load(npz_path) as npz:
        if "config" not in npz.files or "spec" not in npz.files:
            problems.append("%s: .npz lacks config/spec" % name)
        res = run_cases(path, npz)
    want = entry["cases"]
    for case in sorted(set(want) | set(res), key=lambda c: (len(c), c)):
        status, detail = res.get(case, ("absent", "not in the .npz"))
        exp = want.get(case, "not expected")
        ok = status == exp
        if not ok:
            problems.append("%s T=%s: %s (%s), expected %s" % (name, case, status, detail, exp))
        if log:
            log("%-30s T=%-4s %-8s %s%s" % (name, case, status,
                                            "rel L2 %.2e" % detail if isinstance(detail, float) else detail,
                                            "" if ok else "   <-- expected %s" % exp))
    return problems


def check(folder=DEFAULT_DIR, only=None, log=None):
    """Checks every entry of expected_ort.json (or those named in only);
    returns the list of problems (empty when all is as recorded)."""
    expected = load_expected(folder)
    problems = []
    for name in sorted(expected):
        if only and name not in only:
            continue
        problems += check_one(name, expected[name], folder, log)
    listed = {n + ext for n in expected for ext in (".onnx", ".npz")}
    for f in sorted(os.listdir(folder)):
        if f.endswith((".onnx", ".npz", ".data")) and f not in listed:
            problems.append("%s: not in expected_ort.json" % f)
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=DEFAULT_DIR)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    print("onnxruntime %s, onnx %s, numpy %s" % (ort.__version__, onnx.__version__, np.__version__))
    problems = check(args.dir, args.only, log=print)
    for p in problems:
        print("PROBLEM: " + p)
    if problems:
        print("FAILED: %d problem(s)" % len(problems))
        return 1
    print("all outcomes as recorded in expected_ort.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
