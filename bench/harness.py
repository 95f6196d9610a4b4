#!/usr/bin/env python3
"""Issue 8's benchmark harness: moe-mlir against onnxruntime, IREE and
PyTorch eager on the same MoE layers and the same inputs, with the
machine's bandwidth and GEMM ceilings next to every figure
(docs/benchmarks.md, "Harness (issue 8)").

Per model size (``--sizes``; weights ``synth.structured_layer(0, groups=2,
noise=0.05)``: trained-like experts, SiLU GLU, top-2, float32) it writes
the layer once as ONNX in every form a peer needs (cached under
``--work``), then measures each system in its own child process (its peak
RSS is that child's), one at a time:

- ``moe-nc``, ``moe-default``, ``moe-b8``, ``moe-q4``: moe-mlir,
  ``moe-compile`` of the torch-export form (``torch_graphs.torch_loop_model``)
  with ``--no-compress``, the default compression, ``--base-bits=8`` and the
  quantise-only ``--clusters=none --base-bits=4``, run by ``moe-run --batches
  --bench`` (``--threads`` = cores, ``--no-checksums``): one process per token
  count cycles through the same batches as the in-process peers.
- ``ort-loop``, ``ort-moe``, ``ort-qmoe``: onnxruntime (CPU EP, intra-op
  threads = cores, sequential) on the torch-export form, on a
  ``com.microsoft.MoE`` version and on a ``com.microsoft.QMoE`` INT4 version
  (block 32, asymmetric: zero points, as moe-mlir's INT4); every graph
  optimisation level (``--ort-levels``), the best per token count.
- ``iree``, ``iree-dense``: IREE (``iree-import-onnx``, ``iree-compile``
  llvm-cpu, ``--iree-llvmcpu-target-cpu=host``, runtime ``local-task``) on the
  torch-export form, and on ``onnx_models.dense_reference_model`` (standard
  ops, every expert on every token: E/k times the expert work) where the
  former fails; a failure is recorded with its first error line.
- ``torch``: PyTorch eager (Debian's ``/usr/bin/python3``, ``--torch-python``)
  on the same weights: router softmax top-k, SwiGLU per expert on its routed
  tokens, ``index_add_``; ``torch.set_num_threads(cores)``, no grad.

Inputs: N(0, 1) tokens with fixed seeds; decode token counts (T <= 16) cycle
through 32 distinct batches, prefill counts use one batch. Each in-process
peer warms up on every batch, then times ``runs`` calls cycling through the
batches; the figure is the median. Every output is checked against a
float64 NumPy reference of the uncompressed layer (rel L2); compressed
settings report their error separately.

Ceilings: the machine's read bandwidth (a C STREAM-like kernel built at run
time with ``cc -O3 -fopenmp``, all cores, arrays of 256 MiB; NumPy fallback)
and its GEMM peak (NumPy float32 matmul, OpenBLAS, all cores, best of
several). Decode: bytes the batch touches (router + the experts its tokens
select, counted from the reference routing, at the system's storage
precision; for clustered settings the bases of the clusters touched plus the
residual factors of the experts touched) / bandwidth. Prefill: the routed
FLOPs (2 T k 3 H I + router) / GEMM peak. Each result is shown as a fraction
of its ceiling.

Run from the repository root with the pyenv ``python3`` (numpy, onnx,
onnxruntime; pip: matplotlib, iree-base-compiler, iree-base-runtime) after
building (scripts/build.sh):

    python3 bench/harness.py --quick                      # smoke test, < 2 minutes
    python3 bench/harness.py --sizes small medium --write-docs
    python3 bench/harness.py --sizes mixtral mixtral32 --systems moe-mlir onnxruntime

``--write-docs`` replaces this harness's section of docs/benchmarks.md and
writes docs/bench-tokens-per-second.png.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DOC = os.path.join(REPO, "docs", "benchmarks.md")
PLOT = os.path.join(REPO, "docs", "bench-tokens-per-second.png")
SECTION = "## Harness (issue 8): moe-mlir vs onnxruntime, IREE and PyTorch"

# name: (hidden, inter, experts, top_k, runs {T: timed runs}, child timeout s)
SIZES = {
    "quick": dict(hidden=64, inter=128, experts=8, top_k=2, tokens=[1, 16, 128],
                  runs={1: 32, 16: 32, 128: 5}),
    "small": dict(hidden=256, inter=704, experts=8, top_k=2, runs={512: 10, 2048: 5}),
    "medium": dict(hidden=1024, inter=2816, experts=8, top_k=2, runs={512: 5, 2048: 3}),
    # Mixtral-8x7B's layer: 5.64 GB of float32 weights.
    "mixtral": dict(hidden=4096, inter=14336, experts=8, top_k=2, runs={512: 2, 2048: 1},
                    decode_runs=32, big=True),
    # 32 experts at the same total bytes: I = 14336 / 4, so E * I is unchanged.
    "mixtral32": dict(hidden=4096, inter=3584, experts=32, top_k=2, runs={512: 2, 2048: 1},
                      decode_runs=32, big=True),
}
TOKENS = [1, 4, 16, 512, 2048]
DECODE_MAX = 16          # T <= this: decode (32 distinct batches, bandwidth ceiling)
DECODE_INPUTS = 32
DECODE_RUNS = 64         # timed calls per decode T (two cycles of the 32 batches)
EXTERNAL_DATA_BYTES = 1 << 30  # ONNX files past this keep their weights outside

MOE_SETTINGS = {  # system: (moe-compile flags, label)
    "moe-nc": (["--no-compress"], "moe-mlir --no-compress"),
    "moe-default": ([], "moe-mlir default compression"),
    "moe-b8": (["--base-bits=8"], "moe-mlir --base-bits=8"),
    "moe-q4": (["--clusters=none", "--base-bits=4"], "moe-mlir --clusters=none --base-bits=4"),
}
LABELS = dict({k: v[1] for k, v in MOE_SETTINGS.items()},
              **{"ort-loop": "onnxruntime, torch-export graph",
                 "ort-moe": "onnxruntime com.microsoft.MoE",
                 "ort-qmoe": "onnxruntime com.microsoft.QMoE INT4",
                 "iree": "IREE, torch-export graph",
                 "iree-dense": "IREE, dense standard-op graph (all experts)",
                 "torch": "PyTorch eager"})
GROUPS = {"moe-mlir": list(MOE_SETTINGS), "onnxruntime": ["ort-loop", "ort-moe", "ort-qmoe"],
          "iree": ["iree", "iree-dense"], "torch": ["torch"]}
ALL_SYSTEMS = [s for g in GROUPS.values() for s in g]
EXACT = ("moe-nc", "ort-loop", "ort-moe", "iree", "iree-dense", "torch")  # float32: must match float64
WRONG = 1e-3  # rel L2 past which a float32 peer's output counts as wrong
ORT_LEVELS = ["disable_all", "basic", "extended", "all"]


def log(*a):
    print(*a, flush=True)


def first_line(text):
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    for ln in lines:  # the first line that says "error", else the first
        if "error" in ln.lower():
            return ln[:400]
    return (lines[0] if lines else "")[:400]


def tool(name):
    build = os.environ.get("MOE_MLIR_BUILD") or os.path.join(REPO, "build")
    return os.path.join(build, "bin", name)


def peak_rss_mb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


TIME = "/usr/bin/time"


def run_measured(cmd, timeout=None, **kw):
    """(exit code, stdout, stderr, the child's peak RSS in MB, seconds).
    The peak RSS comes from GNU time where it exists: wait4's ru_maxrss of a
    child forked from this process starts at this process's own peak."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        if os.access(TIME, os.X_OK):
            cmd = [TIME, "-f", "%M", "-o", rss.name] + list(cmd)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **kw)
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        rc = os.waitstatus_to_exitcode(status)
        if deadline and time.perf_counter() > deadline and rc < 0:
            rc = 124
        peak = usage.ru_maxrss / 1024
        if cmd[0] == TIME:
            lines = [ln for ln in rss.read().split() if ln.isdigit()]
            peak = int(lines[-1]) / 1024 if lines else 0.0
            if rc == 127 and not os.path.exists(cmd[5]):
                raise FileNotFoundError(cmd[5])
        out.seek(0)
        err.seek(0)
        return (rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                peak, time.perf_counter() - start)


def rel_l2(got, want):
    want = np.asarray(want, np.float64)
    return float(np.linalg.norm(np.asarray(got, np.float64) - want) / np.linalg.norm(want))


# ------------------------------------------------------------ children ---
# Each runs in its own process; prints one JSON line per token count.

def _time_loop(fn, xs, runs, warm_extra):
    """Warm-up on every batch (their outputs are kept), warm_extra more
    calls, then runs timed calls cycling the batches: (outputs, ms)."""
    outs = [np.array(fn(x), dtype=np.float32, copy=True) for x in xs]
    for j in range(warm_extra):
        fn(xs[j % len(xs)])
    ms = []
    for r in range(runs):
        x = xs[r % len(xs)]
        start = time.perf_counter()
        fn(x)
        ms.append((time.perf_counter() - start) * 1000)
    return outs, ms


def child_main(spec):
    kind = spec["kind"]
    threads = spec["threads"]
    setup = time.perf_counter()
    if kind == "ort":
        import onnxruntime as ort
        levels = {"disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = levels[spec["level"]]
        opts.log_severity_level = 3
        sess = ort.InferenceSession(spec["model"], opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        fn = lambda x: sess.run(None, {name: x})[0]  # noqa: E731
    elif kind == "iree":
        import iree.runtime as rt
        config = rt.Config("local-task")
        ctx = rt.SystemContext(config=config)
        if spec.get("params"):
            index = rt.ParameterIndex()
            index.load(spec["params"])
            ctx.add_vm_module(rt.create_io_parameters_module(
                config.vm_instance, index.create_provider(scope="model")))
        vm_module = rt.VmModule.mmap(config.vm_instance, spec["vmfb"])
        ctx.add_vm_module(vm_module)
        f = ctx.modules[vm_module.name][spec["function"]]
        fn = lambda x: f(x).to_host()  # noqa: E731
    elif kind == "torch":
        import torch
        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)
        w = {k: torch.from_numpy(np.ascontiguousarray(np.load(os.path.join(spec["weights"], k + ".npy"))))
             for k in ("router_weight", "gate_weight", "up_weight", "down_weight")}
        k_top, n_exp = spec["top_k"], spec["experts"]
        F = torch.nn.functional

        def moe(x):
            x = torch.from_numpy(x)
            probs = torch.softmax(F.linear(x, w["router_weight"]), dim=-1)
            weights, selected = torch.topk(probs, k_top, dim=-1)
            weights = weights / weights.sum(dim=-1, keepdim=True)
            out = torch.zeros_like(x)
            hits = torch.bincount(selected.flatten(), minlength=n_exp).tolist()
            for e in range(n_exp):
                if not hits[e]:
                    continue
                tok, slot = torch.where(selected == e)
                xe = x[tok]
                h = F.silu(F.linear(xe, w["gate_weight"][e])) * F.linear(xe, w["up_weight"][e])
                y = F.linear(h, w["down_weight"][e]) * weights[tok, slot, None]
                out.index_add_(0, tok, y)
            return out.numpy()
        fn = moe
    else:
        raise SystemExit("unknown child kind %r" % kind)
    setup_s = time.perf_counter() - setup
    print(json.dumps(dict(setup=True, setup_s=setup_s)), flush=True)
    for t in spec["tokens"]:
        res = dict(tokens=t)
        try:
            xs = np.load(os.path.join(spec["work"], "x%d.npy" % t))  # (n, T, H)
            if spec.get("lead3"):
                xs = xs[:, None]  # (n, 1, T, H)
            xs = [np.ascontiguousarray(x) for x in xs]
            runs = spec["runs"][str(t)]
            outs, ms = _time_loop(fn, xs, runs, 0 if t <= DECODE_MAX else spec.get("warm_extra", 0))
            np.save(spec["out"] % t, np.stack([o.reshape(t, -1) for o in outs]))
            res.update(ok=True, median_ms=statistics.median(ms), runs=len(ms), inputs=len(xs))
        except BaseException as e:  # noqa: BLE001 - onnxruntime/IREE raise several kinds
            res.update(ok=False, error="%s: %s" % (type(e).__name__, first_line(e)))
        res["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(res), flush=True)


def reference_main(spec):
    """float64 outputs and routing of the uncompressed layer."""
    wd = spec["weights"]
    W = {k: np.load(os.path.join(wd, k + ".npy"), mmap_mode="r")
         for k in ("router_weight", "gate_weight", "up_weight", "down_weight")}
    k_top, n_exp = spec["top_k"], spec["experts"]
    routing = {}
    for t in spec["tokens"]:
        xs = np.load(os.path.join(spec["work"], "x%d.npy" % t)).astype(np.float64)  # (n, T, H)
        n = xs.shape[0]
        x = xs.reshape(n * t, -1)
        logits = x @ np.asarray(W["router_weight"], np.float64).T
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        sel = np.argsort(-probs, axis=-1, kind="stable")[:, :k_top]
        wts = np.take_along_axis(probs, sel, -1)
        wts /= wts.sum(-1, keepdims=True)
        out = np.zeros_like(x)
        for e in range(n_exp):
            tok, slot = np.nonzero(sel == e)
            if not len(tok):
                continue
            xe = x[tok]
            g = xe @ np.asarray(W["gate_weight"][e], np.float64).T
            u = xe @ np.asarray(W["up_weight"][e], np.float64).T
            h = g / (1 + np.exp(-g)) * u
            y = h @ np.asarray(W["down_weight"][e], np.float64).T
            np.add.at(out, tok, y * wts[tok, slot, None])
        np.save(os.path.join(spec["work"], "ref%d.npy" % t), out.reshape(n, t, -1))
        routing[str(t)] = [sorted(set(sel.reshape(n, t * k_top)[b].tolist())) for b in range(n)]
    with open(os.path.join(spec["work"], "routing.json"), "w") as f:
        json.dump(routing, f)


FORMS = ("loop", "ort", "qmoe", "dense")
# The ONNX form each system reads (moe-mlir compiles the torch-export loop).
FORM_OF = {"moe-nc": "loop", "moe-default": "loop", "moe-b8": "loop", "moe-q4": "loop",
           "ort-loop": "loop", "ort-moe": "ort", "ort-qmoe": "qmoe", "iree": "loop",
           "iree-dense": "dense", "torch": "loop"}


def prepare_main(spec):
    """Writes weights (.npy) and the ONNX forms of one size into spec['work']."""
    sys.path.insert(0, os.path.join(REPO, "python"))
    import onnx
    from moe_mlir import onnx_models, torch_graphs
    from moe_mlir.synth import structured_layer

    cfg = spec["config"]
    wd = spec["work"]
    arrays, meta, _ = structured_layer(0, groups=2, noise=0.05, num_experts=cfg["experts"],
                                       hidden=cfg["hidden"], inter=cfg["inter"], top_k=cfg["top_k"],
                                       activation="silu", glu=True)
    os.makedirs(os.path.join(wd, "weights"), exist_ok=True)
    if spec.get("weights", True):
        for k, v in arrays.items():
            np.save(os.path.join(wd, "weights", k + ".npy"), v)
    total = sum(v.nbytes for v in arrays.values())
    info_path = os.path.join(wd, "models.json")
    info = json.load(open(info_path)) if os.path.exists(info_path) and not spec.get("weights", True) else {}
    forms = spec.get("forms", FORMS)
    for form, build in (("loop", lambda: torch_graphs.torch_loop_model(arrays, meta)),
                        ("ort", lambda: onnx_models.ort_moe_model(arrays, meta)),
                        ("qmoe", lambda: onnx_models.ort_qmoe_model(arrays, meta, bits=4, block_size=32,
                                                                    zero_points=True)),
                        ("dense", lambda: onnx_models.dense_reference_model(arrays, meta))):
        if form not in forms:
            continue
        start = time.perf_counter()
        path = os.path.join(wd, form + ".onnx")
        external = total > EXTERNAL_DATA_BYTES
        if external and form != "loop":
            # Built straight into external data: one (E, I, H) stack each
            # would push the ModelProto past protobuf's 2 GB.
            with onnx_models.external_initializers(path + ".data"):
                model = build()
            init_bytes = sum(int(dict((e.key, e.value) for e in i.external_data).get("length", 0))
                             + len(i.raw_data) for i in model.graph.initializer)
            onnx.save(model, path)
        else:
            model = build()
            init_bytes = sum(len(i.raw_data) for i in model.graph.initializer)
            onnx.save(model, path, save_as_external_data=external, all_tensors_to_one_file=True,
                      location=form + ".onnx.data", size_threshold=1024)
        info[form] = dict(initializer_bytes=init_bytes, external_data=external,
                          build_s=time.perf_counter() - start)
        del model
    info["weight_bytes"] = total
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)


# ------------------------------------------------------------ ceilings ---

STREAM_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
#define N (1L << 25)
int main(void) {
  double *a = malloc(N * 8), *b = malloc(N * 8), *c = malloc(N * 8);
  #pragma omp parallel for
  for (long i = 0; i < N; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.5; }
  double best[3] = {1e30, 1e30, 1e30}, sink = 0;
  for (int r = 0; r < 10; r++) {
    double t0 = omp_get_wtime();
    #pragma omp parallel for
    for (long i = 0; i < N; i++) c[i] = a[i];
    double t1 = omp_get_wtime();
    #pragma omp parallel for
    for (long i = 0; i < N; i++) a[i] = b[i] + 3.0 * c[i];
    double t2 = omp_get_wtime();
    double s = 0;
    #pragma omp parallel for reduction(+ : s)
    for (long i = 0; i < N; i++) s += a[i] + b[i];
    double t3 = omp_get_wtime();
    sink += s;
    if (t1 - t0 < best[0]) best[0] = t1 - t0;
    if (t2 - t1 < best[1]) best[1] = t2 - t1;
    if (t3 - t2 < best[2]) best[2] = t3 - t2;
  }
  printf("{\"copy\": %.3f, \"triad\": %.3f, \"read\": %.3f, \"sink\": %g}\n",
         2.0 * N * 8 / best[0] / 1e9, 3.0 * N * 8 / best[1] / 1e9, 2.0 * N * 8 / best[2] / 1e9, sink);
  return 0;
}
"""


def measure_ceilings(work, threads):
    res = {}
    src, exe = os.path.join(work, "stream.c"), os.path.join(work, "stream")
    with open(src, "w") as f:
        f.write(STREAM_C)
    try:
        cc = subprocess.run(["cc", "-O3", "-march=native", "-fopenmp", src, "-o", exe],
                            capture_output=True, text=True)
    except OSError as e:  # no C compiler on this machine
        cc = subprocess.CompletedProcess([], 127, "", str(e))
    if cc.returncode == 0:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_PROC_BIND="spread")
        out = subprocess.run([exe], capture_output=True, text=True, env=env)
        bw = json.loads(out.stdout)
        res["bandwidth_gbs"] = {k: bw[k] for k in ("copy", "triad", "read")}
        res["bandwidth_method"] = "C (cc -O3 -march=native -fopenmp), %d threads, 3 x 256 MiB" % threads
    else:
        n = 1 << 26
        a, b = np.ones(n, np.float32), np.ones(n, np.float32)
        best = min(_timed(lambda: np.copyto(b, a)) for _ in range(5))
        best_r = min(_timed(lambda: a.sum()) for _ in range(5))
        res["bandwidth_gbs"] = {"copy": 2 * a.nbytes / best / 1e9, "read": a.nbytes / best_r / 1e9}
        res["bandwidth_method"] = "NumPy, one thread (cc -fopenmp failed: %s)" % first_line(cc.stderr)
    res["bandwidth_ceiling_gbs"] = max(res["bandwidth_gbs"].values())
    n = 4096
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    res["gemm_gflops"] = 2 * n ** 3 / best / 1e9
    res["gemm_method"] = "NumPy %s float32 matmul %dx%d, best of 5" % (np.__version__, n, n)
    return res


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------- bytes ---

def touched_bytes(system, cfg, models, report, experts_hit):
    """Weight bytes one batch reads, at the system's storage precision."""
    e, h, i = cfg["experts"], cfg["hidden"], cfg["inter"]
    router = e * h * 4
    fp32_expert = 3 * h * i * 4
    n = len(experts_hit)
    if system in ("moe-default", "moe-b8", "moe-q4") and report:
        after = report["bytes"]["after"]
        assign = report["assignment"]
        groups = report["num_clusters"]
        clusters = len({assign[x] for x in experts_hit})
        total = after.get("router", router)
        for kind in ("gate", "up", "down"):
            total += after[kind]["base"] / groups * clusters + after[kind]["residual"] / e * n
        return total
    if system == "ort-qmoe":
        q = models["qmoe"]["initializer_bytes"] - router
        return router + q / e * n
    return router + fp32_expert * n  # float32 peers (iree-dense reads all: the task's ceiling still)


def storage_bytes(system, cfg, models, reports):
    if system in ("moe-default", "moe-b8", "moe-q4") and reports.get(system):
        return reports[system]["bytes"]["after"]["total"]
    if system == "ort-qmoe":
        return models["qmoe"]["initializer_bytes"]
    return models["weight_bytes"]


def flops(cfg, t):
    return 2 * t * (cfg["top_k"] * 3 * cfg["hidden"] * cfg["inter"] + cfg["hidden"] * cfg["experts"])


# ---------------------------------------------------------------- size ---

def runs_for(cfg, t):
    if t <= DECODE_MAX:
        return cfg.get("decode_runs", DECODE_RUNS) if "runs" not in cfg or t not in cfg["runs"] else cfg["runs"][t]
    return cfg["runs"].get(t, 3)


def bench_size(name, cfg, args, ceilings):
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    stamp = dict(hidden=cfg["hidden"], inter=cfg["inter"], experts=cfg["experts"], top_k=cfg["top_k"], v=1)
    stamp_path = os.path.join(work, "stamp.json")
    timing = {}
    # The ONNX forms the chosen systems read, each built in its own process
    # (a Mixtral-sized layer is 5.6 GB per form; several in one process
    # exhaust 24 GiB).
    needed = sorted({FORM_OF[s] for s in args.systems if s in FORM_OF} | {"loop"})
    models_path = os.path.join(work, "models.json")
    have = json.load(open(models_path)) if os.path.exists(models_path) else {}
    if not (os.path.exists(stamp_path) and json.load(open(stamp_path)) == stamp
            and all(f in have for f in needed)):
        log("[%s] writing weights and ONNX models (%s)..." % (name, ", ".join(needed)))
        start = time.perf_counter()
        for i, form in enumerate(needed):
            rc, out, err, _, _ = run_measured([
                sys.executable, os.path.abspath(__file__), "--prepare",
                json.dumps(dict(config=cfg, work=work, forms=[form], weights=(i == 0)))])
            if rc:
                raise SystemExit("prepare failed (%s, exit %d): %s" % (form, rc, err[-2000:]))
        json.dump(stamp, open(stamp_path, "w"))
        timing["prepare_s"] = time.perf_counter() - start
    models = json.load(open(os.path.join(work, "models.json")))
    tokens = args.tokens or cfg.get("tokens") or TOKENS
    h = cfg["hidden"]
    for t in tokens:
        n = DECODE_INPUTS if t <= DECODE_MAX else 1
        xs = np.random.default_rng(1000 + t).standard_normal((n, t, h)).astype(np.float32)
        np.save(os.path.join(work, "x%d.npy" % t), xs)
        np.save(os.path.join(work, "xb%d.npy" % t), xs[:, None])  # moe-run --batches
    log("[%s] float64 reference..." % name)
    start = time.perf_counter()
    rc, out, err, _, _ = run_measured([sys.executable, os.path.abspath(__file__), "--reference",
                                       json.dumps(dict(weights=os.path.join(work, "weights"), work=work,
                                                       tokens=tokens, top_k=cfg["top_k"],
                                                       experts=cfg["experts"]))])
    if rc:
        raise SystemExit("reference failed: %s" % err[-2000:])
    timing["reference_s"] = time.perf_counter() - start
    routing = json.load(open(os.path.join(work, "routing.json")))
    refs = {t: np.load(os.path.join(work, "ref%d.npy" % t)) for t in tokens}
    runs = {str(t): runs_for(cfg, t) for t in tokens}

    results, reports, notes, compile_s = {}, {}, {}, {}
    threads = args.threads
    timeout = args.timeout * (4 if cfg.get("big") else 1)
    for system in args.systems:
        log("[%s] %s..." % (name, system))
        start = time.perf_counter()
        per_t, peak, setup = {}, 0.0, {}
        if system in MOE_SETTINGS:
            per_t, peak, setup, reports[system] = run_moe(system, work, tokens, runs, threads, timeout,
                                                          args.prebuilt)
        elif system.startswith("ort-"):
            per_t, peak, setup = run_ort(system, work, tokens, runs, threads, timeout, args)
        elif system.startswith("iree"):
            per_t, peak, setup = run_iree(system, work, tokens, runs, threads, timeout, models, cfg)
        elif system == "torch":
            per_t, peak, setup = run_torch(work, tokens, runs, threads, timeout, cfg, args)
        timing[system + "_s"] = time.perf_counter() - start
        compile_s[system] = setup
        for t, r in per_t.items():
            if r.get("ok"):
                y = np.load(r.pop("out_path"))
                r["rel_l2"] = rel_l2(y.reshape(refs[t].shape), refs[t])
                if system in EXACT and not r["rel_l2"] < WRONG:
                    r.update(ok=False, error="wrong output: rel L2 %.2g against float64 (its %.3g ms dropped)"
                             % (r["rel_l2"], r["median_ms"]))
        results[system] = dict(rows=per_t, peak_rss_mb=peak)
        log("   " + ", ".join("T=%d: %s" % (t, ("%.3g ms (rel L2 %.1e)" % (r["median_ms"], r["rel_l2"]))
                                            if r.get("ok") else "FAILED " + r.get("error", "?")[:120])
                              for t, r in per_t.items()) + "; peak RSS %.0f MB" % peak)

    distinct = {t: float(np.mean([len(x) for x in routing[str(t)]])) for t in tokens}
    return dict(config=dict(cfg, tokens=tokens), results=results, compile_s=compile_s, models=models,
                timing=timing, distinct_experts=distinct, runs=runs, notes=notes, routing=routing,
                full_reports=reports,
                reports={k: dict(bytes_after=v["bytes"]["after"]["total"],
                                 bytes_before=v["bytes"]["before"]["total"],
                                 num_clusters=v["num_clusters"])
                         for k, v in reports.items() if v})


def apply_ceilings(res, ceilings):
    """Ceiling time and fraction of it for every (system, T) of one size."""
    cfg, models, reports, routing = res["config"], res["models"], res.pop("full_reports"), res.pop("routing")
    bw = ceilings["bandwidth_ceiling_gbs"] * 1e9
    peak_flops = ceilings["gemm_gflops"] * 1e9
    for system, sres in res["results"].items():
        sres["storage_bytes"] = storage_bytes(system, cfg, models, reports)
        for t, r in sres["rows"].items():
            if t <= DECODE_MAX:
                tb = [touched_bytes(system, cfg, models, reports.get(system), hit) for hit in routing[str(t)]]
                r["touched_bytes"] = float(np.mean(tb))
                r["ceiling_ms"] = r["touched_bytes"] / bw * 1000
                r["ceiling_kind"] = "bandwidth"
            else:
                r["flops"] = flops(cfg, t)
                r["ceiling_ms"] = r["flops"] / peak_flops * 1000
                r["ceiling_kind"] = "gemm"
            if r.get("ok"):
                r["fraction"] = r["ceiling_ms"] / r["median_ms"]
                r["tokens_per_s"] = t / r["median_ms"] * 1000


def run_moe(system, work, tokens, runs, threads, timeout, prebuilt=None):
    flags, _ = MOE_SETTINGS[system]
    artifact = os.path.join(prebuilt or work, system + ".moe")
    report_path = os.path.join(prebuilt or work, system + ".json")
    if prebuilt:
        # Compiled elsewhere from the same loop.onnx (a machine without
        # LLVM); the float64 check below still holds it to the weights here.
        rc, out, err, setup = (0, "", "", {}) if os.path.exists(artifact) else \
            (1, "", "error: no prebuilt %s" % artifact, {})
    else:
        cmd = [tool("moe-compile"), os.path.join(work, "loop.onnx"), "-o", artifact, *flags]
        if "--no-compress" not in flags:
            cmd.append("--report=" + report_path)
        rc, out, err, cpeak, secs = run_measured(cmd, timeout=timeout)
        setup = dict(compile_s=secs, compile_peak_rss_mb=cpeak)
    if rc:
        e = "moe-compile exited with %d: %s" % (rc, first_line(err or out))
        return {t: dict(ok=False, error=e) for t in tokens}, 0.0, setup, None
    report = json.load(open(report_path))["layers"][0] if "--no-compress" not in flags else None
    per_t, peak = {}, 0.0
    for t in tokens:
        # One process per T, warmed and timed as the in-process peers are
        # (_time_loop): a first pass over every batch (kept as the output),
        # for prefill 1 more warm-up, then the runs cycling the batches.
        x = os.path.join(work, "xb%d.npy" % t)
        y = os.path.join(work, "y_%s_%d.npy" % (system, t))
        cmd = [tool("moe-run"), artifact, "--batches", "--input", "hidden_states=" + x,
               "--output", "output=" + y, "--bench", str(int(runs[str(t)])),
               "--warmup", "0" if t <= DECODE_MAX else "1", "--threads", str(threads),
               "--no-checksums"]
        for attempt in range(3):  # the binary may be being relinked by a build
            try:
                rc, out, err, p, _ = run_measured(cmd, timeout=timeout)
            except OSError as e:
                rc, out, err, p = 127, "", str(e), 0.0
            if rc not in (126, 127):
                break
            time.sleep(10)
        peak = max(peak, p)
        if rc:
            per_t[t] = dict(ok=False, error="moe-run exited with %d: %s" % (rc, first_line(err or out)))
            continue
        bench = json.loads(out.strip().splitlines()[-1])
        got = np.load(y)
        np.save(y, got.reshape(got.shape[0], t, -1))
        per_t[t] = dict(ok=True, median_ms=bench["median_ms"], inputs=bench["batches"],
                        runs=bench["runs"], out_path=y)
    return per_t, peak, setup, report


def run_child(cmd, spec, timeout):
    """Runs a child; (setup info, {T: row}, peak RSS MB)."""
    rc, out, err, peak, _ = run_measured(cmd + [json.dumps(spec)], timeout=timeout)
    rows, setup = {}, {}
    for line in out.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("setup"):
            setup = d
        elif "tokens" in d:
            d["out_path"] = spec["out"] % d["tokens"]
            rows[d["tokens"]] = d
            peak = max(peak, d.get("peak_rss_mb", 0))
    for t in spec["tokens"]:
        if t not in rows:
            why = ("timed out after %d s" % timeout if rc == 124 else
                   "child exited with %d: %s" % (rc, first_line(err) or "(no message)"))
            rows[t] = dict(ok=False, error=why)
    return setup, rows, peak


def run_ort(system, work, tokens, runs, threads, timeout, args):
    form = {"ort-loop": "loop", "ort-moe": "ort", "ort-qmoe": "qmoe"}[system]
    best, peak, setup = {}, 0.0, {}
    for level in args.ort_levels:
        spec = dict(kind="ort", model=os.path.join(work, form + ".onnx"), level=level, threads=threads,
                    work=work, tokens=tokens, runs=runs, warm_extra=1, lead3=(form == "loop"),
                    out=os.path.join(work, "y_%s_%s_%%d.npy" % (system, level)))
        s, rows, p = run_child([sys.executable, os.path.abspath(__file__), "--child"], spec, timeout)
        peak = max(peak, p)
        setup["session_s_" + level] = s.get("setup_s")
        for t, r in rows.items():
            r["level"] = level
            if t not in best or (r.get("ok") and (not best[t].get("ok") or r["median_ms"] < best[t]["median_ms"])):
                best[t] = r
            best[t].setdefault("levels_ms", {})
        for t, r in rows.items():
            best[t]["levels_ms"][level] = r.get("median_ms")
    return best, peak, setup


def iree_compile(work, form, model_bytes, timeout):
    """Imports and compiles one ONNX form; (vmfb, params or None, info)."""
    info = {}
    mlir = os.path.join(work, "iree_%s.mlir" % form)
    vmfb = os.path.join(work, "iree_%s.vmfb" % form)
    params = os.path.join(work, "iree_%s.irpa" % form) if model_bytes > EXTERNAL_DATA_BYTES else None
    cmd = [shutil.which("iree-import-onnx") or "iree-import-onnx", os.path.join(work, form + ".onnx"), "-o", mlir]
    if params:
        cmd += ["--externalize-params", "--save-params-to", params, "--large-model"]
    rc, out, err, p1, s1 = run_measured(cmd, timeout=timeout)
    info.update(import_s=s1, import_peak_rss_mb=p1)
    if rc:
        info["error"] = "iree-import-onnx exited with %d: %s" % (rc, first_line(err or out))
        return None, None, info
    cmd = [shutil.which("iree-compile") or "iree-compile", mlir, "--iree-hal-target-device=local",
           "--iree-hal-local-target-device-backends=llvm-cpu", "--iree-llvmcpu-target-cpu=host", "-o", vmfb]
    rc, out, err, p2, s2 = run_measured(cmd, timeout=timeout)
    info.update(compile_s=s2, compile_peak_rss_mb=p2)
    if rc:
        info["error"] = "iree-compile exited with %d: %s" % (rc, first_line(err or out))
        return None, None, info
    return vmfb, params, info


def run_iree(system, work, tokens, runs, threads, timeout, models, cfg):
    form = "loop" if system == "iree" else "dense"
    try:
        import iree.compiler  # noqa: F401
        import iree.runtime  # noqa: F401
    except ImportError as e:
        err = "IREE not installed (pip install iree-base-compiler iree-base-runtime): %s" % e
        return {t: dict(ok=False, error=err) for t in tokens}, 0.0, {}
    vmfb, params, info = iree_compile(work, form, models["weight_bytes"], timeout)
    if not vmfb:
        return {t: dict(ok=False, error=info["error"]) for t in tokens}, 0.0, info
    spec = dict(kind="iree", vmfb=vmfb, params=params, function="moe_torch_loop" if form == "loop" else "moe_dense", threads=threads, work=work,
                tokens=tokens, runs=runs, warm_extra=1, lead3=(form == "loop"),
                out=os.path.join(work, "y_%s_%%d.npy" % system))
    s, rows, peak = run_child([sys.executable, os.path.abspath(__file__), "--child"], spec, timeout)
    info["load_s"] = s.get("setup_s")
    return rows, peak, info


def run_torch(work, tokens, runs, threads, timeout, cfg, args):
    py = shutil.which(args.torch_python) or args.torch_python
    probe = subprocess.run([py, "-c", "import torch, numpy; print(torch.__version__)"],
                           capture_output=True, text=True) if py and os.path.exists(py) else None
    if not probe or probe.returncode:
        err = "torch not available under %s%s" % (py, (": " + first_line(probe.stderr)) if probe else "")
        return {t: dict(ok=False, error=err) for t in tokens}, 0.0, {}
    spec = dict(kind="torch", weights=os.path.join(work, "weights"), threads=threads, work=work, tokens=tokens,
                runs=runs, warm_extra=1, top_k=cfg["top_k"], experts=cfg["experts"],
                out=os.path.join(work, "y_torch_%d.npy"))
    s, rows, peak = run_child([py, os.path.abspath(__file__), "--child"], spec, timeout)
    return rows, peak, dict(load_s=s.get("setup_s"), torch=probe.stdout.strip())


# ------------------------------------------------------------- machine ---

def machine_info(args):
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model name", "Hypervisor vendor", "L3 cache"):
            info[key.strip()] = value.strip()
    try:
        info["avx512f"] = " avx512f" in open("/proc/cpuinfo").read()
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                info["ram_gib"] = int(line.split()[1]) / 2**20
    except OSError:
        pass
    info["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()
    info["load_average"] = os.getloadavg()
    for mod in ("onnxruntime", "onnx", "matplotlib"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        from importlib.metadata import version
        info["iree"] = "compiler %s, runtime %s" % (version("iree-base-compiler"), version("iree-base-runtime"))
    except Exception:  # noqa: BLE001
        info["iree"] = None
    if args.torch_python and os.path.exists(args.torch_python):
        p = subprocess.run([args.torch_python, "-c",
                            "import torch, numpy, platform; print('%s (NumPy %s, Python %s)' % (torch.__version__,"
                            " numpy.__version__, platform.python_version()))"], capture_output=True, text=True)
        info["torch"] = p.stdout.strip() if p.returncode == 0 else None
    return info


# -------------------------------------------------------------- report ---

def fmt_ms(ms):
    return "%.3g" % ms if ms < 1000 else "%.0f" % ms


def fmt_bytes(b):
    return "%.1f MB" % (b / 1e6) if b < 1e9 else "%.2f GB" % (b / 1e9)


def size_table(name, res):
    cfg = res["config"]
    tokens = cfg["tokens"]
    head = ("| system | weights | peak RSS | "
            + " | ".join("T=%d" % t for t in tokens) + " | rel L2 vs float64 |")
    lines = ["**%s** (H = %d, I = %d, E = %d, top-%d; float32 weights %s)" % (
        name, cfg["hidden"], cfg["inter"], cfg["experts"], cfg["top_k"], fmt_bytes(res["models"]["weight_bytes"])),
        "", head, "|" + "---|" * (len(tokens) + 4)]
    for system, r in res["results"].items():
        cells, errs = [], []
        for t in tokens:
            row = r["rows"].get(t)
            if not row:
                cells.append("-")
                continue
            if row.get("ok"):
                c = "%s ms, %s tok/s, %.0f%%" % (fmt_ms(row["median_ms"]), "%.0f" % row["tokens_per_s"],
                                                 100 * row["fraction"])
                if system.startswith("ort-"):
                    c += " (%s)" % row["level"]
                cells.append(c)
                errs.append(row["rel_l2"])
            else:
                cells.append("fails: " + row.get("error", "?").replace("|", "\\|")[:160])
        err = ("%.1e" % min(errs) if min(errs) == max(errs) else "%.1e-%.1e" % (min(errs), max(errs))) if errs else "-"
        lines.append("| %s | %s | %s | %s | %s |" % (LABELS.get(system, system), fmt_bytes(r["storage_bytes"]),
                                                     "%.0f MB" % r["peak_rss_mb"] if r["peak_rss_mb"] else "-",
                                                     " | ".join(cells), err))
    lines += ["", "Ceilings (ms): " + "; ".join(
        "T=%d: %s" % (t, ", ".join(sorted({"%.3g" % r["rows"][t]["ceiling_ms"] for r in res["results"].values()
                                           if t in r["rows"]}, key=float)))
        for t in tokens) + ". Distinct experts per decode batch (mean over the 32): " + ", ".join(
        "T=%d: %.2f" % (t, d) for t, d in res["distinct_experts"].items() if t <= DECODE_MAX) + "."]
    return "\n".join(lines)


def wrap(p):
    return textwrap.fill(p, 75, break_long_words=False, break_on_hyphens=False)


def section(result):
    info, ceil = result["machine"], result["ceilings"]
    partial = result.get("partial")
    lines = [SECTION, ""]
    if result["quick"]:
        lines += ["**Smoke run (`--quick`): checks the script, not a measurement.**", ""]
    if partial:
        lines += ["**Partial: %s.**" % partial, ""]
    lines += [wrap("One command measures every peer on the same layer and inputs: moe-mlir (`moe-compile`"
                   " of the torch-export ONNX form with `--no-compress`, the default compression,"
                   " `--base-bits=8`, and quantise-only `--clusters=none --base-bits=4`; `moe-run --bench"
                   " --threads %d --no-checksums`), onnxruntime %s (CPU EP, intra-op threads = %d, sequential;"
                   " on the torch-export graph, a `com.microsoft.MoE` graph and a `com.microsoft.QMoE` INT4"
                   " graph, block 32 with zero points; the best of the graph optimisation levels %s per T,"
                   " named in brackets), IREE %s (llvm-cpu, `--iree-llvmcpu-target-cpu=host`, `local-task`)"
                   " and PyTorch eager %s (`torch.set_num_threads(%d)`, no grad, a plain routed MoE"
                   " forward). Weights `synth.structured_layer(0, groups=2, noise=0.05)` (SiLU GLU, top-2);"
                   " tokens N(0, 1), fixed seeds. Decode (T <= %d) cycles through %d distinct batches: the"
                   " peers (moe-run with `--batches`) warm up on all of them and time %s calls cycling"
                   " through them. Prefill uses one batch: 1 extra warm-up, then the runs listed. Cells: median"
                   " latency, tokens/s, and the fraction of the ceiling (ceiling time / measured time)."
                   " Peak RSS: the measuring child process (Python + runtime for the in-process peers; the"
                   " largest moe-run process), over all T. Rel L2: against a float64 NumPy evaluation of the"
                   " uncompressed layer, over all T."
                   % (result["threads"], info.get("onnxruntime"), result["threads"], "/".join(result["ort_levels"]),
                      info.get("iree"), info.get("torch"), result["threads"], DECODE_MAX, DECODE_INPUTS,
                      "/".join(sorted({str(v) for s in result["sizes"].values() for t, v in s["runs"].items()
                                       if int(t) <= DECODE_MAX})))),
              "", "    " + result["command"], "",
              wrap("Machine: %s, %d cores (%s), %.1f GiB RAM, L3 %s; %s. Python %s, NumPy %s, onnx %s;"
                   " moe-mlir %s. 5-minute load average %.2f at the end." % (
                       info.get("Model name", "?"), info["cores"],
                       "VM, %s" % info["Hypervisor vendor"] if info.get("Hypervisor vendor") else "bare metal",
                       info.get("ram_gib", 0), info.get("L3 cache", "?"), result["date"], info["python"],
                       info["numpy"], info.get("onnx"), info["commit"], info["load_average"][1])),
              "",
              wrap("Ceilings: streaming read bandwidth %.1f GB/s (%s; copy %.1f, triad %.1f GB/s), GEMM peak %.0f"
                   " GFLOP/s (%s). Decode ceiling = weight bytes the batch touches (router + the experts its"
                   " tokens select, from the reference routing, at the system's storage precision; clustered"
                   " settings: the bases of the clusters touched + the touched experts' residual factors) /"
                   " bandwidth; prefill ceiling = routed FLOPs (2 T k 3 H I + router) / GEMM peak. Small layers"
                   " fit in the L3 cache, so decode can beat the DRAM ceiling (> 100%%)." % (
                       ceil["bandwidth_ceiling_gbs"], ceil["bandwidth_method"], ceil["bandwidth_gbs"].get("copy", 0),
                       ceil["bandwidth_gbs"].get("triad", 0), ceil["gemm_gflops"], ceil["gemm_method"])),
              ""]
    for name, res in result["sizes"].items():
        lines += [size_table(name, res), ""]
        q4, qm = res["results"].get("moe-q4"), res["results"].get("ort-qmoe")
        if q4 and qm:
            lines += [wrap("Quantise-only vs QMoE at (nearly) equal bytes: moe-mlir INT4 %s, QMoE INT4 %s (QMoE"
                           " keeps float32 scales, moe-mlir f16)." % (fmt_bytes(q4["storage_bytes"]),
                                                                      fmt_bytes(qm["storage_bytes"]))), ""]
        comp = ["%s %.1f s" % (s, v["compile_s"]) for s, v in res["compile_s"].items() if v.get("compile_s")]
        iree_err = ["%s: %s" % (s, r["rows"][res["config"]["tokens"][0]]["error"])
                    for s, r in res["results"].items() if s.startswith("iree")
                    and not r["rows"][res["config"]["tokens"][0]].get("ok")]
        lines += [wrap("Compile: " + ", ".join(comp) + ". Wall time per system (compile + all runs): "
                       + ", ".join("%s %.0f s" % (k[:-2], v) for k, v in res["timing"].items()) + "."), ""]
        iree_bad = ["%s at T=%d" % (s, t) for s, r in res["results"].items() if s.startswith("iree")
                    for t, row in r["rows"].items() if "wrong output" in row.get("error", "")]
        if iree_err or iree_bad:
            text = "IREE: " + "; ".join(iree_err)
            if any("Expected dim size > 0" in e for e in iree_err):
                text += (" (at every T where some expert gets no token of the batch: the loop's per-expert"
                         " NonZero/Gather then yields an empty tensor, which IREE's runtime refuses)")
            if iree_bad:
                text += ". It runs but computes a wrong result (rel L2 > %g against float64) at %s." % (
                    WRONG, ", ".join(iree_bad))
            lines += [wrap(text), ""]
    if result.get("plot"):
        lines += ["![tokens/s by batch size](%s)" % os.path.relpath(result["plot"], os.path.dirname(DOC)), ""]
    return "\n".join(lines)


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = list(result["sizes"].items())
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.8), squeeze=False)
    for ax, (name, res) in zip(axes[0], sizes):
        for system, r in res["results"].items():
            pts = [(t, row["tokens_per_s"]) for t, row in sorted(r["rows"].items()) if row.get("ok")]
            if pts:
                style = "-o" if system.startswith("moe") else "--s"
                ax.plot(*zip(*pts), style, label=LABELS.get(system, system), markersize=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tokens per call")
        ax.set_ylabel("tokens/s")
        c = res["config"]
        ax.set_title("%s (H=%d, I=%d, E=%d, k=%d)" % (name, c["hidden"], c["inter"], c["experts"], c["top_k"]))
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle("tokens/s by batch size (%s, %d cores, %s)" % (result["machine"].get("Model name", "?"),
                                                               result["machine"]["cores"], result["date"]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main ---

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child_main(json.loads(argv[1]))
        return 0
    if argv[:1] == ["--reference"]:
        reference_main(json.loads(argv[1]))
        return 0
    if argv[:1] == ["--prepare"]:
        prepare_main(json.loads(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=[s for s in SIZES if s != "quick"],
                        default=["small", "medium"])
    parser.add_argument("--tokens", type=int, nargs="+", help="token counts (default 1 4 16 512 2048)")
    parser.add_argument("--systems", nargs="+", default=ALL_SYSTEMS,
                        help="systems or groups: %s; %s" % (", ".join(GROUPS), ", ".join(ALL_SYSTEMS)))
    parser.add_argument("--quick", action="store_true", help="tiny model, few runs: a smoke test")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--ort-levels", nargs="+", choices=ORT_LEVELS, default=None,
                        help="graph optimisation levels to try (default all; 'basic all' for the Mixtral sizes)")
    parser.add_argument("--torch-python", default="/usr/bin/python3")
    parser.add_argument("--timeout", type=float, default=600, help="per child process, s (x4 for Mixtral sizes)")
    parser.add_argument("--work", default=os.path.join(REPO, "out", "harness"))
    parser.add_argument("--prebuilt", default=None,
                        help="folder of <system>.moe (and .json reports) compiled elsewhere from the same"
                             " size's loop.onnx: run them instead of compiling (a machine without LLVM)")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the section in docs/benchmarks.md and write the plot")
    parser.add_argument("--partial", default=None, help="a note that marks the docs section as partial")
    args = parser.parse_args(argv)
    systems = []
    for s in args.systems:
        for x in GROUPS.get(s, [s]):
            if x not in ALL_SYSTEMS:
                parser.error("unknown system %r" % x)
            if x not in systems:
                systems.append(x)
    args.systems = systems
    sizes = ["quick"] if args.quick else args.sizes
    big = any(SIZES[s].get("big") for s in sizes)
    if args.ort_levels is None:
        args.ort_levels = ["basic", "all"] if big else list(ORT_LEVELS)
    if args.quick:
        args.ort_levels = args.ort_levels if "--ort-levels" in argv else ["all"]
    command = "python3 bench/harness.py" + "".join(" " + shlex.quote(a) for a in argv)
    os.makedirs(args.work, exist_ok=True)
    t0 = time.perf_counter()
    log("measuring ceilings...")
    ceilings = measure_ceilings(args.work, args.threads)
    log("  read bandwidth %.1f GB/s, GEMM %.0f GFLOP/s" % (ceilings["bandwidth_ceiling_gbs"], ceilings["gemm_gflops"]))
    ceil_s = time.perf_counter() - t0
    result = dict(command=command, quick=args.quick, threads=args.threads, ort_levels=args.ort_levels,
                  date=datetime.date.today().isoformat(), ceilings=dict(ceilings, measure_s=ceil_s), sizes={},
                  partial=args.partial)
    for name in sizes:
        cfg = dict(SIZES[name])
        result["sizes"][name] = bench_size(name, cfg, args, ceilings)
        for r in result["sizes"][name]["results"].values():  # JSON keys
            r["rows"] = {int(t): v for t, v in r["rows"].items()}
    log("measuring ceilings again...")
    t1 = time.perf_counter()
    again = measure_ceilings(args.work, args.threads)  # the better of two: load only lowers them
    for key in ("bandwidth_gbs",):
        ceilings[key] = {k: max(v, again[key].get(k, 0)) for k, v in ceilings[key].items()}
    ceilings["bandwidth_ceiling_gbs"] = max(ceilings["bandwidth_gbs"].values())
    ceilings["gemm_gflops"] = max(ceilings["gemm_gflops"], again["gemm_gflops"])
    result["ceilings"] = dict(ceilings, measure_s=ceil_s + time.perf_counter() - t1)
    log("  read bandwidth %.1f GB/s, GEMM %.0f GFLOP/s (the better of two)"
        % (ceilings["bandwidth_ceiling_gbs"], ceilings["gemm_gflops"]))
    for res in result["sizes"].values():
        apply_ceilings(res, ceilings)
    result["machine"] = machine_info(args)  # the load average covers the measurement
    result["total_s"] = time.perf_counter() - t0
    out_json = os.path.join(args.work, "results%s.json" % ("_quick" if args.quick else ""))
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1, default=str)
    if args.write_docs:
        result["plot"] = PLOT
        plot(result, PLOT)
    else:
        plot(result, os.path.join(args.work, "tokens-per-second.png"))
    text = section(result)
    print()
    print(text)
    if args.write_docs:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import run_bench

        run_bench.write_section(DOC, SECTION, text)
        log("wrote %s and %s" % (DOC, PLOT))
    log("results: %s (total %.0f s)" % (out_json, result["total_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
