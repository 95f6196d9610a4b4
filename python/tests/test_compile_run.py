"""moe-compile + moe-run end to end, checked by numbers.

- Every MoE fixture of the import tests, compiled with ``--no-compress`` and
  with ``--bits=none --base-bits=32 --rank=full``, run by moe-run on 1, 7, 64
  and 513 tokens, equals onnxruntime on the same ONNX file (rel L2 <= 1e-5
  over each flattened output, float64).
- Compressed artifacts (the default and three other settings) equal the
  float64 evaluator on the layer moe-opt dumps after the same compression
  (<= 1e-4); the ``--report`` states the error against the original weights.
- Random com.microsoft.MoE models and torch-style loops compile and match
  onnxruntime.
- The compiled host code imports nothing beyond libc, libm and the runtime's
  hooks (``nm -D --undefined-only`` on the shared object in the artifact).
- Bad inputs, damaged artifacts and bad compiler flags are one clear error
  and a non-zero exit, never a signal.
- ``moe-run --profile`` on a two-layer model writes a consistent routing
  profile that ``moe-compile --profile`` reads back; an artifact built for
  x86-64-v4 runs only where the CPU has AVX-512.

Each model is compiled once per flag set (module-scoped cache). Python: the
``python3`` on PATH (numpy, onnx, onnxruntime); needs build/bin/moe-compile,
moe-run, moe-translate and moe-opt.
"""

import json
import os
import re
import shutil
import subprocess
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import record_error
from moe_mlir import onnx_models, torch_graphs
from moe_mlir import reference as ref
from moe_mlir.synth import random_layer, structured_layer
from tools import (REPO, artifact_layout, moe_compile, moe_opt, moe_run, moe_translate,
                   rel_l2)

INPUTS = os.path.join(REPO, "test", "Import", "Inputs")
ORT_FIXTURES = ["ort_moe_relu", "ort_moe_swiglu", "ort_qmoe_int4", "ort_qmoe_int8_zp"]
TORCH_FIXTURES = ["mixtral_top2", "switch_top1_gelu", "qwen_moe_shared", "mixtral_stack2",
                  "mixtral_router_logits_out", "near_miss_softmax_after_topk",
                  "near_miss_no_renorm", "near_miss_trap_expert", "hit_experts_list"]
# hit_experts_tensor.onnx is left out: onnxruntime itself fails on it for
# token counts other than the traced one.
MULTI_LAYER = {"mixtral_stack2"}
TOKENS = (1, 7, 64, 513)

NO_COMPRESS = ("--no-compress",)
FULL_PRECISION = ("--bits=none", "--base-bits=32", "--rank=full")
DEFAULT = ()
QUANTISE_ONLY = ("--clusters=none", "--base-bits=4")
BF16_BASES = ("--base-bits=bf16",)
SMALL = ("--clusters=2", "--rank=2", "--bits=8", "--base-bits=16")


def fixture_path(name):
    if name in ORT_FIXTURES:
        return os.path.join(INPUTS, name + ".onnx")
    return os.path.join(INPUTS, "torch", name + ".onnx")


def model_io(path):
    """(input name, input rank, hidden size, output names) of a one-input
    ONNX model."""
    graph = onnx.load(path).graph
    inits = {i.name for i in graph.initializer}
    (inp,) = [i for i in graph.input if i.name not in inits]
    dims = inp.type.tensor_type.shape.dim
    return inp.name, len(dims), dims[-1].dim_value, [o.name for o in graph.output]


def tokens_for(label, rank, hidden, t, batch=1):
    """Standard-normal float32 tokens, seeded by ``label`` and the shape:
    (T, H) for rank-2 inputs, (batch, T, H) for rank-3 ones."""
    seed = zlib.crc32(f"{label}:{batch}x{t}x{hidden}".encode())
    x = np.random.default_rng(seed).standard_normal((batch * t, hidden)).astype(np.float32)
    return x if rank == 2 else x.reshape(batch, t, hidden)


_SESSIONS = {}


def ort_outputs(path, feeds):
    """onnxruntime (CPU, one thread) on the model file ``path`` (one session
    per path): {output name: array}."""
    path = str(path)
    if path not in _SESSIONS:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        _SESSIONS[path] = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    sess = _SESSIONS[path]
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def run_artifact(artifact, feeds, outputs, work, *extra):
    """moe-run ``artifact`` on ``feeds`` ({name: array}); returns
    ({output name: array}, CompletedProcess)."""
    args = []
    for name, value in feeds.items():
        path = work / f"in_{name}.npy"
        np.save(path, value)
        args += ["--input", f"{name}={path}"]
    for name in outputs:
        (work / f"out_{name}.npy").unlink(missing_ok=True)  # no stale result
        args += ["--output", f"{name}={work / f'out_{name}.npy'}"]
    proc = moe_run(artifact, *args, *extra)
    return {name: np.load(work / f"out_{name}.npy") for name in outputs}, proc


class Artifacts:
    """Compiles each (model, flags) once; compressed artifacts get their
    --report next to them (``report(...)``)."""

    def __init__(self, root):
        self.root = root
        self.cache = {}
        self.dumps = {}

    def get(self, model, flags=NO_COMPRESS):
        key = (str(model), tuple(flags))
        if key not in self.cache:
            out = self.root / f"a{len(self.cache)}.moe"
            report = [] if "--no-compress" in flags else [f"--report={out.with_suffix('.json')}"]
            moe_compile(model, "-o", out, *flags, *report)
            self.cache[key] = out
        return self.cache[key]

    def report(self, model, flags):
        return json.loads(self.get(model, flags).with_suffix(".json").read_text())

    def dumped_layers(self, model, flags):
        """The layers moe-opt dumps after raising and compressing ``model``
        with the compiler's options ``flags`` (None: no compression)."""
        key = (str(model), None if flags is None else tuple(flags))
        if key not in self.dumps:
            n = len(self.dumps)
            mlir = self.root / f"imported{n}.mlir"
            moe_translate("--import-onnx", model, "-o", mlir)
            out = self.root / f"dump{n}"
            compress = "" if flags is None else \
                "moe-compress-pipeline{" + " ".join(f.lstrip("-") for f in flags) + "},"
            moe_opt(mlir, "--pass-pipeline=builtin.module(func.func(onnx-shape-inference),"
                    f"moe-raise-experts,canonicalize,{compress}moe-dump-layers{{dir={out}}})",
                    "-o", os.devnull)
            layers = sorted(out.glob("layer_*.npz"), key=lambda p: int(p.stem.split("_")[-1]))
            self.dumps[key] = [ref.load_layer(p) for p in layers]
        return self.dumps[key]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return Artifacts(tmp_path_factory.mktemp("artifacts"))


# ------------------------------------------------------- vs onnxruntime

MATCH_CASES = [(name, "no-compress") for name in ORT_FIXTURES + TORCH_FIXTURES] + \
    [(name, "full-precision") for name in ORT_FIXTURES + TORCH_FIXTURES if name not in MULTI_LAYER]


@pytest.mark.parametrize("name,mode", MATCH_CASES, ids=lambda v: v)
def test_matches_onnxruntime(artifacts, tmp_path, name, mode):
    path = fixture_path(name)
    flags = NO_COMPRESS if mode == "no-compress" else FULL_PRECISION
    artifact = artifacts.get(path, flags)
    inp, rank, hidden, outs = model_io(path)
    shapes = [(t, 1) for t in TOKENS] + ([(5, 3)] if rank == 3 else [])
    for t, batch in shapes:
        x = tokens_for(name, rank, hidden, t, batch)
        got, _ = run_artifact(artifact, {inp: x}, outs, tmp_path)
        want = ort_outputs(path, {inp: x})
        for out in outs:
            assert got[out].dtype == np.float32
            assert got[out].shape == want[out].shape, (out, t, got[out].shape, want[out].shape)
            err = rel_l2(got[out], want[out])
            record_error(f"moe-run {mode} vs onnxruntime", err)
            assert err <= 1e-5, (out, t, batch, err)


# ------------------------------------------- compressed vs the evaluator

EVAL_FIXTURES = ["ort_moe_swiglu", "ort_qmoe_int8_zp", "mixtral_top2", "switch_top1_gelu",
                 "hit_experts_list"]
HIERARCHICAL = ("--clusters=2", "--routing=hierarchical")
SETTINGS = {"default": DEFAULT, "quantise-only": QUANTISE_ONLY, "bf16-bases": BF16_BASES,
            "clusters2-rank2-int8": SMALL, "hierarchical": HIERARCHICAL}


def check_report(report, layers):
    """The report describes every layer and states its error against the
    original: per expert the weights' ``reconstruction_error`` (of the float
    factors, before quantisation) and the layer's output error after
    quantisation, on calibration tokens or, without them, on synthetic ones
    (``synthetic_check``; docs/compression-report.md)."""
    assert report["format"] == "moe-compression-report"
    assert len(report["layers"]) == len(layers)
    for entry, layer in zip(report["layers"], layers):
        e = layer["meta"]["num_experts"]
        assert entry["num_experts"] == e
        kinds = ("gate", "up", "down") if entry["glu"] else ("up", "down")
        for kind in kinds:
            errors = np.asarray(entry["reconstruction_error"][kind], dtype=np.float64)
            assert errors.shape == (e,) and np.isfinite(errors).all() and (errors >= 0).all()
        assert entry["bytes"]["after"]["total"] > 0
        check = entry["calibration"] or entry["synthetic_check"]
        assert 0 < check["output_relative_error"] < 1, check
        assert check["tokens"] > 0


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("name", EVAL_FIXTURES)
def test_compressed_matches_evaluator(artifacts, tmp_path, name, setting):
    path = fixture_path(name)
    flags = SETTINGS[setting]
    artifact = artifacts.get(path, flags)
    (layer,) = artifacts.dumped_layers(path, flags)
    assert layer["meta"]["op"] == "moe.clustered_layer"
    check_report(artifacts.report(path, flags), [layer])
    inp, rank, hidden, outs = model_io(path)
    for t in TOKENS:
        x = tokens_for(name + setting, rank, hidden, t)
        got, _ = run_artifact(artifact, {inp: x}, outs[:1], tmp_path)
        want = ref.evaluate(layer, x.reshape(-1, hidden))
        err = rel_l2(got[outs[0]], want)
        record_error("moe-run compressed vs evaluator on its dump", err)
        assert err <= 1e-4, (t, err)


def test_calibration_tokens_reach_the_report(tmp_path):
    """--calibration runs the uncompressed model on the model's inputs and
    reports each layer's output error on the tokens that reach it."""
    path = fixture_path("mixtral_top2")
    inp, rank, hidden, outs = model_io(path)
    x = tokens_for("calibration", rank, hidden, 48, batch=2)
    np.save(tmp_path / "cal.npy", x)
    out, report = tmp_path / "cal.moe", tmp_path / "cal.json"
    moe_compile(path, "-o", out, f"--calibration={tmp_path / 'cal.npy'}", f"--report={report}")
    (entry,) = json.loads(report.read_text())["layers"]
    assert entry["calibration"]["tokens"] == 96
    assert 0 < entry["calibration"]["output_relative_error"] < 1
    assert entry["calibration"]["routing_agreement"]["exact_set_match"] == 1
    got, _ = run_artifact(out, {inp: x}, outs, tmp_path)
    assert np.isfinite(got[outs[0]]).all()


def test_quantise_only_keeps_one_cluster_per_expert(artifacts):
    path = fixture_path("mixtral_top2")
    (layer,) = artifacts.dumped_layers(path, QUANTISE_ONLY)
    (entry,) = artifacts.report(path, QUANTISE_ONLY)["layers"]
    assert entry["num_clusters"] in (0, layer["meta"]["num_experts"]), entry["num_clusters"]


# ---------------------------------------------------- randomised models

def _random_configs():
    """Eight layers: (form, seed, random_layer config, extra). Sizes are
    drawn; H != I so com.microsoft.MoE's layout is never ambiguous."""
    rng = np.random.default_rng(55)
    shapes = [(16, 40), (24, 8), (32, 48), (8, 24), (40, 16), (16, 64), (48, 32), (24, 56)]
    cases = [
        ("ort", dict(num_experts=4, top_k=2, activation="swiglu", glu=True, biases=True,
                     normalize=True, router_bias=True)),
        ("ort", dict(num_experts=8, top_k=1, activation="relu", glu=False,
                     biases=("up", "down"), normalize=False)),
        ("ort", dict(num_experts=6, top_k=3, activation="gelu_tanh", glu=False, normalize=True)),
        ("ort", dict(num_experts=16, top_k=4, activation="identity", glu=False,
                     normalize=False, router_bias=True)),
        ("torch", dict(num_experts=8, top_k=2, activation="silu", glu=True, normalize=True)),
        ("torch", dict(num_experts=4, top_k=1, activation="gelu", glu=False, biases=True,
                       normalize=False)),
        ("torch", dict(num_experts=6, top_k=3, activation="relu", glu=True, normalize=False,
                       router_bias=True)),
        ("torch", dict(num_experts=5, top_k=2, activation="identity", glu=False,
                       normalize=True, biases=("up",))),
    ]
    for n, ((form, config), (h, i)) in enumerate(zip(cases, shapes)):
        seed = int(rng.integers(1, 10**6))
        extra = {}
        if form == "torch":
            extra["scatter"] = torch_graphs.SCATTER_FORMS[n % 2]
            if n == 6:
                extra["experts"] = [0, 2, 3, 5]  # a loop that lost experts 1 and 4
        yield form, seed, dict(config, hidden=h, inter=i), extra


RANDOM_CONFIGS = list(_random_configs())


@pytest.mark.parametrize("form,seed,config,extra", RANDOM_CONFIGS,
                         ids=[f"{c[0]}-E{c[2]['num_experts']}k{c[2]['top_k']}-"
                              f"{c[2]['activation']}" for c in RANDOM_CONFIGS])
def test_random_model_matches_onnxruntime(tmp_path, form, seed, config, extra):
    if form == "ort":
        arrays, meta = random_layer(seed, **config)
        model = onnx_models.ort_moe_model(arrays, meta)
    else:
        model, _, meta = torch_graphs.make_torch_loop(seed, **extra, **config)
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    artifact = tmp_path / "model.moe"
    moe_compile(path, "-o", artifact, "--no-compress")
    inp, rank, hidden, outs = model_io(str(path))
    for t in TOKENS:
        x = tokens_for(f"random{seed}", rank, hidden, t)
        got, _ = run_artifact(artifact, {inp: x}, outs, tmp_path)
        want = ort_outputs(path, {inp: x})
        for out in outs:
            err = rel_l2(got[out], want[out])
            record_error(f"moe-run random {form} model vs onnxruntime", err)
            assert err <= 1e-5, (t, out, err)


# ------------------------------------------------ what the code imports

ALLOWED_IMPORTS = {
    # libc
    "malloc", "free", "calloc", "realloc", "aligned_alloc", "posix_memalign",
    "memcpy", "memset", "memmove", "memcmp", "abort",
    # libm
    "expf", "exp", "exp2f", "expm1f", "logf", "log", "log1pf", "erff", "erf", "tanhf",
    "tanh", "sqrtf", "sqrt", "powf", "pow", "fmaf", "fmaxf", "fminf", "floorf", "ceilf",
    "roundf", "roundevenf", "truncf", "rintf", "nearbyintf", "fabsf", "sinf", "cosf",
    "tanf", "atanf", "atan2f", "acosf", "asinf", "coshf", "sinhf", "cbrtf", "fmodf",
    # the runtime's hooks (docs/artifact.md, moe_runtime.h)
    "moe_rt_record_routing", "moe_rt_parallel_for", "moe_rt_fail",
}
# Weak references the C runtime's startup files put in every shared object.
ALLOWED_WEAK = {"__cxa_finalize", "__gmon_start__", "_ITM_deregisterTMCloneTable",
                "_ITM_registerTMCloneTable"}


def host_code(artifact, out):
    """Writes the artifact's HOST_CODE section to ``out``."""
    layout = artifact_layout(artifact)
    (section,) = [s for s in layout["sections"] if s["kind"] == 1]
    with open(artifact, "rb") as f:
        f.seek(section["offset"])
        out.write_bytes(f.read(section["size"]))
    return out


IMPORT_CASES = [("mixtral_top2", NO_COMPRESS), ("mixtral_stack2", NO_COMPRESS),
                ("ort_qmoe_int4", NO_COMPRESS), ("switch_top1_gelu", NO_COMPRESS),
                ("mixtral_top2", DEFAULT), ("ort_moe_swiglu", QUANTISE_ONLY),
                ("switch_top1_gelu", BF16_BASES), ("ort_qmoe_int8_zp", SMALL)]


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm (binutils)")
@pytest.mark.parametrize("name,flags", IMPORT_CASES,
                         ids=[f"{n}-{'-'.join(f.strip('-') for f in fl) or 'default'}"
                              for n, fl in IMPORT_CASES])
def test_host_code_imports_only_libc_libm_and_hooks(artifacts, tmp_path, name, flags):
    so = host_code(artifacts.get(fixture_path(name), flags), tmp_path / "host.so")
    assert so.read_bytes()[:4] == b"\x7fELF"
    defined = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True,
                             text=True, check=True).stdout
    assert re.search(r"\bT moe_entry$", defined, re.M), defined
    undefined = subprocess.run(["nm", "-D", "--undefined-only", so], capture_output=True,
                               text=True, check=True).stdout
    bad = []
    for line in undefined.splitlines():
        kind, symbol = line.split()[-2:]
        symbol = symbol.split("@")[0]
        if symbol in ALLOWED_IMPORTS or (kind in "wv" and symbol in ALLOWED_WEAK):
            continue
        bad.append(line.strip())
    assert not bad, f"the compiled code imports {bad}"


# ------------------------------------------------------------- errors

def assert_run_error(proc, *parts):
    """moe-run failed cleanly: exit 1 (no signal), one line naming
    ``parts``."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moe-run: error: "), proc.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.fixture(scope="module")
def real_artifact(artifacts):
    return artifacts.get(fixture_path("mixtral_top2"), NO_COMPRESS)


def run_with(artifact, tmp_path, *bindings):
    args = []
    for name, value in bindings:
        path = tmp_path / f"{name}.npy"
        np.save(path, value)
        args += ["--input", f"{name}={path}"]
    return moe_run(artifact, *args, "--output", f"output={tmp_path / 'y.npy'}", check=False)


@pytest.mark.parametrize("case", ["name", "dtype", "rank", "dim", "missing"])
def test_bad_inputs_are_refused(real_artifact, tmp_path, case):
    x = tokens_for("bad", 3, 32, 7)
    bindings, parts = {
        "name": ([("tokens", x)], ["unknown input 'tokens'", "hidden_states"]),
        "dtype": ([("hidden_states", x.astype(np.float64))], ["dtype f64, expected f32"]),
        "rank": ([("hidden_states", x[0])], ["rank 2, expected 3"]),
        "dim": ([("hidden_states", x[..., :16])], ["dim 2 is 16, expected 32"]),
        "missing": ([], ["missing input 'hidden_states'"]),
    }[case]
    assert_run_error(run_with(real_artifact, tmp_path, *bindings), *parts)
    assert not (tmp_path / "y.npy").exists()


def damaged(artifact, out, offset=None, truncate=None):
    data = bytearray(open(artifact, "rb").read())
    if offset is not None:
        data[offset] ^= 0x10
    if truncate is not None:
        del data[len(data) - truncate:]
    out.write_bytes(bytes(data))
    return out


def test_damaged_artifacts_are_refused(real_artifact, tmp_path):
    layout = artifact_layout(real_artifact)
    size = os.path.getsize(real_artifact)
    x = tokens_for("damaged", 3, 32, 7)
    (code,) = [s for s in layout["sections"] if s["kind"] == 1]
    weight = max(layout["weights"], key=lambda w: w["size"])
    weight_at = layout["sections"][weight["section"]]["offset"] + weight["offset"]
    cases = {
        "truncated": (dict(truncate=100), ["is truncated", f"says {size} bytes"]),
        "weight": (dict(offset=weight_at + weight["size"] // 2),
                   [f"checksum mismatch in weight '{weight['name']}'", "damaged"]),
        "code": (dict(offset=code["offset"] + code["size"] // 2),
                 ["checksum mismatch in section 'host_code'", "damaged"]),
        "magic": (dict(offset=0), ["not a moe-mlir artifact"]),
        "manifest": (dict(offset=layout["header"]["manifest_offset"] + 3), ["manifest"]),
    }
    for case, (how, parts) in cases.items():
        path = damaged(real_artifact, tmp_path / f"{case}.moe", **how)
        assert_run_error(run_with(path, tmp_path, ("hidden_states", x)), str(path), *parts)
    # The undamaged file still runs.
    assert run_with(real_artifact, tmp_path, ("hidden_states", x)).returncode == 0


COMPILE_ERRORS = {
    "garbage": (["GARBAGE"], "not a valid ONNX model"),
    "missing-file": (["MISSING"], "cannot read"),
    "energy-and-rank": (["--energy=0.9", "--rank=4"], "--energy and --rank exclude each other"),
    "no-compress-and-rank": (["--no-compress", "--rank=4"],
                             "--no-compress takes no compression flags"),
    "unknown-cpu": (["--cpu=pentium9"], "unknown --cpu 'pentium9'"),
    "unknown-target": (["--target=gpu"], "unknown --target 'gpu'"),
    "bad-bits": (["--bits=3"], "bits must be 4, 8 or none"),
    "bad-base-bits": (["--base-bits=bf15"], "base-bits must be 32, 16, bf16, 8 or 4"),
    "bad-energy": (["--energy=1.5"], "energy must be in (0, 1]"),
    "calibration-missing": (["--calibration=no_such.npy"], "--calibration: cannot open"),
    "calibration-shape": (["--calibration=CAL"], "dim 1 is 7, expected 16"),
}


def compile_failing(tmp_path, case):
    args, message = COMPILE_ERRORS[case]
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model\n" * 8)
    model = fixture_path("ort_moe_relu")
    if args[0] == "GARBAGE":
        model, args = garbage, args[1:]
    elif args[0] == "MISSING":
        model, args = tmp_path / "no_such.onnx", args[1:]
    elif args[0] == "--calibration=CAL":
        np.save(tmp_path / "cal.npy", np.zeros((4, 7), np.float32))
        args = [f"--calibration={tmp_path / 'cal.npy'}"]
    out = tmp_path / "out.moe"
    return moe_compile(model, "-o", out, *args, check=False), message, out


@pytest.mark.parametrize("case", list(COMPILE_ERRORS))
def test_compile_errors(tmp_path, case):
    proc, message, out = compile_failing(tmp_path, case)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[:2000])
    first = proc.stderr.splitlines()[0]
    assert "error: " in first and message in first, proc.stderr[:2000]
    assert not out.exists()


@pytest.mark.parametrize("case", ["unknown-cpu", "bad-bits", "bad-energy"])
def test_compile_errors_are_short(tmp_path, case):
    """No dump of the module after the message."""
    proc, _, _ = compile_failing(tmp_path, case)
    assert len(proc.stderr.splitlines()) <= 2, proc.stderr[:400]


# ----------------------------------------------------------- profiles

def check_profile(profile, layers, tokens):
    """``layers``: the (num_experts, top_k) of each layer."""
    assert profile["format"] == "moe-routing-profile" and profile["version"] == 1
    assert profile["runs"] == 1 and profile["ignored_selections"] == 0
    assert [l["index"] for l in profile["layers"]] == list(range(len(layers)))
    for entry, (e, k) in zip(profile["layers"], layers):
        assert (entry["num_experts"], entry["top_k"], entry["tokens"]) == (e, k, tokens)
        per = np.asarray(entry["tokens_per_expert"])
        co = np.asarray(entry["coselection"])
        assert per.shape == (e,) and per.sum() == tokens * k
        assert co.shape == (e, e) and (co == co.T).all()
        assert (np.diag(co) == per).all()
        assert (co.sum(axis=1) == per * k).all()  # each token picks k distinct experts
        assert entry["expert_load_cv"] == pytest.approx(per.std() / per.mean(), rel=1e-9)
        if entry["num_clusters"]:
            cl = np.asarray(entry["tokens_per_cluster"])
            assert cl.shape == (entry["num_clusters"],)
            assert tokens <= cl.sum() <= tokens * k and (cl <= tokens).all()
            assert entry["cluster_load_cv"] == pytest.approx(
                cl.std() / cl.mean() if cl.mean() else 0.0, rel=1e-9, abs=1e-12)
        else:
            assert entry["tokens_per_cluster"] is None and entry["cluster_load_cv"] is None


@pytest.mark.parametrize("flags", [NO_COMPRESS, DEFAULT], ids=["no-compress", "default"])
def test_profile_of_two_layer_model(artifacts, tmp_path, flags):
    path = fixture_path("mixtral_stack2")
    inp, rank, hidden, outs = model_io(path)
    t = 96
    x = tokens_for("profile", rank, hidden, t)
    profile = tmp_path / "p.json"
    got, _ = run_artifact(artifacts.get(path, flags), {inp: x}, outs, tmp_path,
                          "--profile", profile)
    data = json.loads(profile.read_text())
    check_profile(data, [(4, 2), (4, 2)], t)
    if flags == NO_COMPRESS:
        assert rel_l2(got[outs[0]], ort_outputs(path, {inp: x})[outs[0]]) <= 1e-5
    else:
        assert all(l["num_clusters"] >= 1 for l in data["layers"])

    # The compiler reads the profile back.
    out = tmp_path / "guided.moe"
    moe_compile(path, "-o", out, f"--profile={profile}", f"--report={tmp_path / 'r.json'}")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["config"]["profile"] == str(profile)
    guided, _ = run_artifact(out, {inp: x}, outs, tmp_path)
    assert guided[outs[0]].shape == x.shape and np.isfinite(guided[outs[0]]).all()


def test_profile_counts_the_routing(artifacts, tmp_path):
    """Single layer: the profile counts exactly the experts the float64
    evaluator's router picks."""
    path = fixture_path("mixtral_top2")
    inp, rank, hidden, outs = model_io(path)
    x = tokens_for("routing", rank, hidden, 64)
    profile = tmp_path / "p.json"
    run_artifact(artifacts.get(path, NO_COMPRESS), {inp: x}, outs, tmp_path,
                 "--profile", profile)
    (layer,) = artifacts.dumped_layers(path, None)
    selected, _ = ref.routing(layer, x.reshape(-1, hidden))
    e = layer["meta"]["num_experts"]
    want = np.bincount(selected.ravel(), minlength=e)
    (entry,) = json.loads(profile.read_text())["layers"]
    assert entry["tokens_per_expert"] == want.tolist()


# ------------------------------------------------- threads, bench, ISA

def test_threads_and_bench(artifacts, tmp_path):
    path = fixture_path("mixtral_top2")
    artifact = artifacts.get(path, NO_COMPRESS)
    inp, rank, hidden, outs = model_io(path)
    x = tokens_for("threads", rank, hidden, 171, batch=3)
    one, _ = run_artifact(artifact, {inp: x}, outs, tmp_path, "--threads", "1")
    two, proc = run_artifact(artifact, {inp: x}, outs, tmp_path, "--threads", "2",
                             "--bench", "3")
    assert np.array_equal(one[outs[0]], two[outs[0]])
    bench = json.loads(proc.stdout.strip().splitlines()[-1])
    assert bench["runs"] == 3 and bench["tokens"] == 513
    assert bench["median_ms"] > 0 and bench["p90_ms"] >= bench["median_ms"]
    assert bench["tokens_per_s"] == pytest.approx(513 / bench["median_ms"] * 1000, rel=1e-3)


AVX512 = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def test_x86_64_v4_runs_or_is_refused(tmp_path):
    path = fixture_path("mixtral_top2")
    artifact = tmp_path / "v4.moe"
    moe_compile(path, "-o", artifact, "--no-compress", "--cpu=x86-64-v4")
    missing = [f for f in AVX512 if f not in cpu_flags()]
    # Describing runs nothing, so it works whatever the host.
    described = moe_run(artifact, "--describe")
    assert "x86-64-v4" in described.stdout and "avx512f" in described.stdout
    inp, rank, hidden, outs = model_io(path)
    x = tokens_for("v4", rank, hidden, 64)
    np.save(tmp_path / "x.npy", x)
    proc = moe_run(artifact, "--input", f"{inp}={tmp_path / 'x.npy'}",
                   "--output", f"{outs[0]}={tmp_path / 'y.npy'}", check=False)
    if missing:
        assert_run_error(proc, "compiled for x86-64-v4", "this CPU lacks", *missing)
    else:
        assert proc.returncode == 0, proc.stderr
        want = ort_outputs(path, {inp: x})[outs[0]]
        assert rel_l2(np.load(tmp_path / "y.npy"), want) <= 1e-5


def test_zero_tokens_com_microsoft_moe(artifacts, tmp_path):
    path = fixture_path("ort_moe_swiglu")
    inp, rank, hidden, outs = model_io(path)
    x = np.zeros((0, hidden), np.float32)
    got, _ = run_artifact(artifacts.get(path, NO_COMPRESS), {inp: x}, outs, tmp_path)
    assert got[outs[0]].shape == ort_outputs(path, {inp: x})[outs[0]].shape == (0, hidden)


def test_zero_tokens_torch_export_is_refused_or_empty(artifacts, tmp_path):
    """The export's final Reshape (allowzero=0) turns (1, 0, H) into
    (1, H, H), which onnxruntime refuses (element counts differ): moe-run
    must refuse it too (or return an empty output), never return values."""
    path = fixture_path("mixtral_top2")
    inp, rank, hidden, outs = model_io(path)
    x = np.zeros((1, 0, hidden), np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = moe_run(artifacts.get(path, NO_COMPRESS), "--input", f"{inp}={tmp_path / 'x.npy'}",
                   "--output", f"{outs[0]}={tmp_path / 'y.npy'}", check=False)
    if proc.returncode == 0:
        assert np.load(tmp_path / "y.npy").shape == x.shape
    else:
        assert_run_error(proc, "Reshape", "number of elements")


def test_layer_built_into_external_data_compiles_and_runs(tmp_path):
    """onnx_models.external_initializers (how bench/harness.py writes
    Mixtral-sized layers past protobuf's 2 GB) gives a model that
    onnxruntime and moe-compile both read."""
    arrays, meta, _ = structured_layer(0, groups=2, noise=0.05, num_experts=4, hidden=64,
                                       inter=96, top_k=2, activation="silu", glu=True)
    path = tmp_path / "m.onnx"
    with onnx_models.external_initializers(str(path) + ".data"):
        model = onnx_models.ort_moe_model(arrays, meta)
    onnx.save(model, path)
    assert path.stat().st_size < 4096 < (tmp_path / "m.onnx.data").stat().st_size
    x = np.random.default_rng(3).standard_normal((7, 64)).astype(np.float32)
    want = ort.InferenceSession(str(path)).run(None, {"tokens": x})[0]
    moe_compile(path, "-o", tmp_path / "m.moe", "--no-compress")
    np.save(tmp_path / "x.npy", x)
    moe_run(tmp_path / "m.moe", "--input", f"tokens={tmp_path / 'x.npy'}",
            "--output", f"output={tmp_path / 'y.npy'}")
    assert rel_l2(np.load(tmp_path / "y.npy"), want) <= 1e-5
