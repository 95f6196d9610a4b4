"""--convert-onnx-to-linalg checked by numbers without the compiler driver:
ONNX backend node tests the importer accepts are imported, lowered to
linalg, bufferized and lowered to the LLVM dialect with moe-opt, compiled
to a shared object with LLVM 22's mlir-translate and clang, called through
its C interface (ctypes) on the test's inputs and compared with the test's
expected outputs (relative L2 <= 1e-5 for floats, exact for integers and
booleans); the torch-exported fixtures, not raised, against onnxruntime.

Python: the ``python3`` on PATH (onnx, numpy, onnxruntime). Run alone as
a script for a report on all backend tests:
``python3 python/tests/test_onnx_lowering_jit.py [NAME...]`` (``--torch``
for the fixtures).
"""

import ctypes
import glob
import os
import pickle
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools import REPO, rel_l2, tool  # noqa: E402

DATA = "/usr/share/libonnx-testdata/data/node"
LLVM_BIN = "/usr/lib/llvm-22/bin"
LLVM_LIB = "/usr/lib/llvm-22/lib"

# The lowering after convert-onnx-to-linalg, to the LLVM dialect.
RAISE = ["--onnx-shape-inference", "--moe-raise-experts"]
LOWER_TO_LLVM = [
    "--convert-onnx-to-linalg", "--canonicalize", "--cse",
    "--one-shot-bufferize=bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map",
    "--cse", "--canonicalize",
    "--llvm-request-c-wrappers",
    "--convert-linalg-to-loops", "--expand-strided-metadata", "--lower-affine",
    "--convert-scf-to-cf", "--arith-expand=include-bf16", "--convert-math-to-llvm",
    "--convert-math-to-libm", "--convert-arith-to-llvm", "--finalize-memref-to-llvm",
    "--convert-func-to-llvm", "--convert-cf-to-llvm", "--reconcile-unrealized-casts",
]

ELEMENT = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "bf16": np.uint16,
           "i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32,
           "i64": np.int64, "ui8": np.uint8, "ui16": np.uint16, "ui32": np.uint32,
           "ui64": np.uint64}


def eligible_tests():
    """The backend node tests scripts/onnx_backend_survey.py counts."""
    import onnx

    sys.path.insert(0, os.path.join(REPO, "scripts"))
    from onnx_backend_survey import SUPPORTED

    names = []
    for name in sorted(os.listdir(DATA)):
        path = os.path.join(DATA, name, "model.onnx")
        if not os.path.exists(path):
            continue
        model = onnx.load(path, load_external_data=False)
        ops = {n.op_type for n in model.graph.node}
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if ops <= SUPPORTED and all(n.domain in ("", "ai.onnx") for n in model.graph.node) \
                and 13 <= opset <= 28:
            names.append(name)
    return names


def parse_type(text):
    """'tensor<2x?x3xf32>' -> (rank, element, shape with -1 for ?)."""
    m = re.fullmatch(r"tensor<(.*)>", text.strip())
    parts = m.group(1).split("x")
    shape = [-1 if p == "?" else int(p) for p in parts[:-1]]
    return len(parts) - 1, parts[-1], shape


def signature(mlir_text):
    """Argument and result types of @main_graph: lists of (rank, element)."""
    m = re.search(r"func\.func @main_graph\((.*?)\)\s*(?:->\s*\((.*?)\)|->\s*(tensor<[^>]*>))?\s*"
                  r"(?:attributes.*?)?\{\n", mlir_text, re.S)
    args = [parse_type(t) for t in re.findall(r"%arg\d+: (tensor<[^>]*>)", m.group(1))]
    results_text = m.group(2) or m.group(3) or ""
    results = [parse_type(t) for t in re.findall(r"tensor<[^>]*>", results_text)]
    return args, results


def descriptor(rank):
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p),
              ("offset", ctypes.c_int64)]
    if rank:
        fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    return type(f"Memref{rank}", (ctypes.Structure,), {"_fields_": fields})


def to_descriptor(array, rank):
    d = descriptor(rank)()
    d.allocated = d.aligned = array.ctypes.data
    d.offset = 0
    for i in range(rank):
        d.sizes[i] = array.shape[i]
        d.strides[i] = array.strides[i] // array.itemsize
    return d


def from_descriptor(d, rank, dtype):
    shape = tuple(d.sizes[i] for i in range(rank)) if rank else ()
    strides = tuple(d.strides[i] for i in range(rank)) if rank else ()
    itemsize = np.dtype(dtype).itemsize
    if any(s == 0 for s in shape):
        return np.zeros(shape, dtype)
    extent = 1 + sum((n - 1) * abs(s) for n, s in zip(shape, strides))
    base = d.aligned + d.offset * itemsize
    buf = (ctypes.c_char * (extent * itemsize)).from_address(base)
    flat = np.frombuffer(buf, dtype=dtype, count=extent)
    return np.lib.stride_tricks.as_strided(
        flat, shape, tuple(s * itemsize for s in strides)).copy()


def compile_test(model, workdir, front=RAISE):
    """Imports, runs `front` (shape inference and raising), lowers and
    compiles; returns (so path, signature) or raises with the failing
    step's stderr."""
    mlir = os.path.join(workdir, "model.mlir")
    llvm_mlir = os.path.join(workdir, "model.llvm.mlir")
    ll = os.path.join(workdir, "model.ll")
    so = os.path.join(workdir, "model.so")
    steps = [
        [tool("moe-translate"), "--import-onnx", model, "--mlir-print-debuginfo", "-o", mlir],
        [tool("moe-opt"), mlir, *front, *LOWER_TO_LLVM, "-o", llvm_mlir],
        [os.path.join(LLVM_BIN, "mlir-translate"), "--mlir-to-llvmir", llvm_mlir, "-o", ll],
        # memrefCopy (strided memref.copy) comes from MLIR's runner utils.
        [os.path.join(LLVM_BIN, "clang"), "-O1", "-shared", "-fPIC", "-w", ll, "-o", so,
         "-L" + LLVM_LIB, "-Wl,-rpath," + LLVM_LIB, "-lmlir_c_runner_utils", "-lm"],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{os.path.basename(step[0])}: {proc.stderr.strip()[:2000]}")
    with open(mlir) as f:
        return so, signature(f.read())


def run_compiled(so, sig, inputs):
    args, results = sig
    lib = ctypes.CDLL(so)
    fn = lib._mlir_ciface_main_graph
    descs = []
    keep = []
    for (rank, elem, shape), value in zip(args, inputs):
        a = np.asarray(value, dtype=ELEMENT[elem])
        if rank == 0:
            a = a.reshape(())
        if list(a.shape) != shape and -1 not in shape:
            # A few tests' data disagree with the declared shape of an input
            # only its type is read from (CastLike's target_type).
            a = np.broadcast_to(a, shape)
        a = np.ascontiguousarray(a)
        keep.append(a)
        descs.append(to_descriptor(a, rank))
    result_types = [descriptor(r[0]) for r in results]
    if len(results) == 1:
        out = result_types[0]()
    else:
        out = type("Results", (ctypes.Structure,),
                   {"_fields_": [(f"r{i}", t) for i, t in enumerate(result_types)]})()
    fn.restype = None
    fn(ctypes.byref(out), *[ctypes.byref(d) for d in descs])
    descs_out = [out] if len(results) == 1 else [getattr(out, f"r{i}") for i in range(len(results))]
    return [from_descriptor(d, r[0], ELEMENT[r[1]]) for d, r in zip(descs_out, results)]


def load_case(name):
    import onnx
    from onnx import numpy_helper

    case = sorted(glob.glob(os.path.join(DATA, name, "test_data_set_*")))[0]

    def read(kind):
        arrays = []
        for path in sorted(glob.glob(os.path.join(case, f"{kind}_*.pb")),
                           key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1))):
            t = onnx.TensorProto()
            with open(path, "rb") as f:
                t.ParseFromString(f.read())
            arrays.append(numpy_helper.to_array(t))
        return arrays

    return read("input"), read("output")


def compare(got, want, elem):
    """None when equal enough, else a message."""
    if elem == "bf16":
        def widen(raw):
            return (np.asarray(raw).astype(np.uint32) << 16).view(np.float32)
        got = widen(got)
        # The test data hold bfloat16 as its raw bits (uint16).
        want = widen(want) if np.asarray(want).dtype == np.uint16 else \
            np.asarray(want, dtype=np.float32)
    want = np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    if np.issubdtype(want.dtype, np.floating):
        finite = np.isfinite(want)
        if not np.array_equal(np.isnan(got), np.isnan(want)) or \
                not np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)]):
            return "non-finite values differ"
        if want[finite].size:
            err = rel_l2(got[finite], want[finite])
            # bfloat16 results: one bf16 ulp (ONNX 1.12's data truncate
            # float to bfloat16, onnxruntime and we round to nearest even).
            if not err <= (2.0 ** -7 if elem == "bf16" else 1e-5):
                return f"rel L2 {err:.3g}"
        return None
    if not np.array_equal(got, want.astype(got.dtype)):
        return f"values differ: got {got.ravel()[:8]} want {want.ravel()[:8]}"
    return None


def check(name):
    """None on success, else why it failed."""
    with tempfile.TemporaryDirectory() as work:
        try:
            so, sig = compile_test(os.path.join(DATA, name, "model.onnx"), work)
        except RuntimeError as e:
            return str(e)
        inputs, expected = load_case(name)
        if len(inputs) != len(sig[0]):
            return f"{len(inputs)} inputs for {len(sig[0])} arguments"

        def execute():
            outputs = run_compiled(so, sig, inputs)
            for i, (got, want, result) in enumerate(zip(outputs, expected, sig[1])):
                why = compare(got, want, result[1])
                if why and result[1].startswith("f"):
                    # A few stored outputs are less accurate than float32
                    # (the window functions); onnxruntime decides.
                    ort = onnxruntime_outputs(name, inputs)
                    if ort is not None and not compare(got, ort[i], result[1]):
                        why = None
                if why:
                    return f"output {i}: {why}"
            return None

        return isolated(execute)


def onnxruntime_outputs(name, inputs):
    """onnxruntime's outputs for the test's model and inputs, or None."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(os.path.join(DATA, name, "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    feed = {i.name: v for i, v in zip(session.get_inputs(), inputs)}
    return session.run(None, feed)


def isolated(fn):
    """fn() in a forked child, so that a crash of compiled code is a
    failure of one test: its result, or why it died."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        # An abort is an expected outcome here, not a reason for a dump.
        import faulthandler
        faulthandler.disable()
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001
            result = f"{type(e).__name__}: {e}"
        with os.fdopen(write, "wb") as f:
            pickle.dump(result, f)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"crashed with signal {os.WTERMSIG(status)}"
    return pickle.loads(data) if data else "no result"


def survey(names, jobs=2):
    with ProcessPoolExecutor(jobs) as pool:
        return dict(zip(names, pool.map(check, names)))


# Tests that fail for reasons outside the lowering (recorded in
# docs/lowering.md): refused by the importer by design.
REFUSED_BY_DESIGN = ("unsupported ONNX element type", "only tensor values are supported")


def test_backend_node_tests_run(tmp_path):
    """Every eighth eligible test (test_onnx_lowering.py runs them all
    through moe-compile; all of them here take 2.5 minutes: run this file
    as a script for that)."""
    assert os.path.isdir(DATA), "libonnx-testdata missing: run scripts/setup.sh"
    results = survey(eligible_tests()[::8])
    failures = {n: why for n, why in results.items()
                if why and not any(r in why for r in REFUSED_BY_DESIGN)}
    assert not failures, failures


def report(results):
    """Prints each failure and the count of passes."""
    failed = {n: w for n, w in results.items() if w}
    for n, w in sorted(failed.items()):
        print(f"FAIL {n}: {w.splitlines()[0][:300]}")
    print(f"{len(results) - len(failed)} of {len(results)} pass")


TORCH = os.path.join(REPO, "test", "Import", "Inputs", "torch")


def check_torch_fixture(name):
    """The torch-exported fixture, not raised (every op of the export
    lowered, dynamic batch and seq), against onnxruntime on each stored
    input: the largest rel L2 over cases and outputs, or why it failed.
    Where onnxruntime refuses an input (hit_experts_tensor's Split fixed at
    trace time), the compiled code must stop with its run-time check.
    Inputs: the stored cases (T = 1, 7, 12, 64, the trace) and 513 random
    tokens."""
    model = os.path.join(TORCH, name + ".onnx")
    data = np.load(os.path.join(TORCH, name + ".npz"))
    cases = sorted(k for k in data.files if k.startswith("input_")) + ["trace_input"]
    with tempfile.TemporaryDirectory() as work:
        try:
            so, sig = compile_test(model, work, front=["--onnx-shape-inference"])
        except RuntimeError as e:
            return str(e)
        # 513 tokens too (one more than a power of two), random.
        rng = np.random.default_rng(513)
        h = data[cases[0]].shape[-1]
        inputs = {case: data[case] for case in cases}
        inputs["513 random tokens"] = rng.standard_normal((1, 513, h)).astype(np.float32)
        worst = 0.0
        for case, x in inputs.items():
            try:
                want = onnxruntime_outputs_for(model, [x])
            except Exception:  # noqa: BLE001 - onnxruntime refuses the input
                want = None
            got = isolated(lambda: run_compiled(so, sig, [x]))
            if want is None:
                if got != "crashed with signal 6":
                    return f"{case}: onnxruntime refuses it, the compiled code gave {got!r:.200}"
                continue
            if isinstance(got, str):
                return f"{case}: {got}"
            for g, w in zip(got, want):
                if g.shape != w.shape:
                    return f"{case}: shape {g.shape} != {w.shape}"
                worst = max(worst, rel_l2(g, w))
        return worst


def onnxruntime_outputs_for(model, inputs):
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: v for i, v in zip(session.get_inputs(), inputs)})


def test_torch_exports_unraised():
    names = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(TORCH, "*.onnx")))
    with ProcessPoolExecutor(2) as pool:
        results = dict(zip(names, pool.map(check_torch_fixture, names)))
    bad = {n: r for n, r in results.items() if not (isinstance(r, float) and r <= 1e-5)}
    assert not bad, bad


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch"]:
        for p in sorted(glob.glob(os.path.join(TORCH, "*.onnx"))):
            n = os.path.basename(p)[:-5]
            print(n, check_torch_fixture(n))
        sys.exit(0)
    report(survey(sys.argv[1:] or eligible_tests()))
