#!/usr/bin/env python3
"""moe-run against onnxruntime on one medium MoE layer: a first measurement
(not a timed test; docs/benchmarks.md, "moe-run vs onnxruntime").

The model: one Mixtral-shaped layer, H=1024, I=2816, E=8, top-2, SwiGLU,
float32 weights whose experts share structure as trained ones do (two
groups, 5% noise: ``synth.structured_layer(0, ...)``), as a
``com.microsoft.MoE`` model (``onnx_models.ort_moe_model``), or with
``--form torch`` as the loop a torch export writes
(``torch_graphs.torch_loop_model``). It is compiled with
``moe-compile --no-compress`` and at the default compression, and, per token
count, moe-run (``--bench``, ``--threads`` = all cores) and onnxruntime (CPU
execution provider, intra-op threads = all cores, every graph optimisation
level, the best one reported) run back to back on the same tokens. That
is repeated ``--rounds`` times and each runner's best median is reported
with the spread of its medians (the lowest median is the least disturbed
by other load on a shared machine). Prints a Markdown table, the machine
and versions, and writes everything as JSON.

Run from the repository root with the pyenv ``python3`` (numpy, onnx,
onnxruntime) after building (scripts/build.sh):

    python3 bench/run_bench.py [--tokens 1 16 512] [--work out/bench]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))

from moe_mlir import onnx_models, torch_graphs  # noqa: E402
from moe_mlir.synth import structured_layer  # noqa: E402

# SiLU GLU: "swiglu" (alpha 1, beta 0) in com.microsoft.MoE, SiLU(gate) * up in torch.
CONFIG = dict(num_experts=8, hidden=1024, inter=2816, top_k=2, activation="silu", glu=True)
# Timed runs per token count (after 3 warm-up runs), for both runners.
RUNS = {1: 50, 16: 20, 512: 5}


def tool(name):
    build = os.environ.get("MOE_MLIR_BUILD") or os.path.join(REPO, "build")
    return os.path.join(build, "bin", name)


def write_section(path, section, text):
    """Replaces the docs section that starts with heading `section` (or
    appends it), keeping the rest of the page."""
    page = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    start = page.find(section + "\n")
    if start < 0:
        page = page.rstrip("\n") + "\n\n" + text
    else:
        nxt = page.find("\n## ", start + len(section))
        rest = page[nxt + 1:] if nxt >= 0 else ""
        page = page[:start] + text + ("\n" + rest if rest else "")
    with open(path, "w") as f:
        f.write(page.rstrip("\n") + "\n")


def machine():
    info = {"cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": os.getloadavg()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Thread(s) per core", "Core(s) per socket",
                               "Socket(s)", "L2 cache", "L3 cache", "Hypervisor vendor"):
                info[key.strip()] = value.strip()
        flags = open("/proc/cpuinfo").read()
        info["avx512f"] = " avx512f" in flags
    except OSError:
        pass
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    info["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()
    return info


def build_model(path, form):
    import onnx

    arrays, meta, _ = structured_layer(0, groups=2, noise=0.05, **CONFIG)
    if form == "ort":
        model = onnx_models.ort_moe_model(arrays, meta)
    else:
        model = torch_graphs.torch_loop_model(arrays, meta)
    onnx.save(model, path)


def compile_model(model, out, *flags):
    start = time.perf_counter()
    subprocess.run([tool("moe-compile"), model, "-o", out, *flags], check=True)
    return time.perf_counter() - start


def moe_run_bench(artifact, name, x_path, runs, threads, out_path):
    proc = subprocess.run([tool("moe-run"), artifact, "--input", f"{name}={x_path}",
                           "--output", f"output={out_path}", "--bench", str(runs),
                           "--threads", str(threads)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ort_bench(model, name, x, runs, threads):
    """The best (lowest median) over onnxruntime's graph optimisation
    levels: (level, median ms, output)."""
    import onnxruntime as ort

    levels = {"disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    results = {}
    for level, value in levels.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = value
        opts.log_severity_level = 3
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        for _ in range(3):
            y = sess.run(None, {name: x})[0]
        ms = []
        for _ in range(runs):
            start = time.perf_counter()
            sess.run(None, {name: x})
            ms.append((time.perf_counter() - start) * 1000)
        results[level] = statistics.median(ms)
        del sess
    best = min(results, key=results.get)
    return best, results, y


def rel_l2(got, want):
    want = np.asarray(want, np.float64)
    return float(np.linalg.norm(np.asarray(got, np.float64) - want) / np.linalg.norm(want))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 16, 512])
    parser.add_argument("--work", default=os.path.join(REPO, "out", "bench"))
    parser.add_argument("--form", choices=["ort", "torch"], default="ort")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    work = lambda name: os.path.join(args.work, name)  # noqa: E731

    model = work(f"medium_{args.form}.onnx")
    if not os.path.exists(model):
        build_model(model, args.form)
    name = "tokens" if args.form == "ort" else "hidden_states"
    compile_s = {"no-compress": compile_model(model, work("medium_nc.moe"), "--no-compress"),
                 "default": compile_model(model, work("medium_c.moe"),
                                          f"--report={work('medium_c.json')}")}
    report = json.load(open(work("medium_c.json")))["layers"][0]
    sizes = {"no-compress": report["bytes"]["before"]["total"],
             "default": report["bytes"]["after"]["total"]}

    rows = []
    for t in args.tokens:
        runs = RUNS.get(t, 10)
        x = np.random.default_rng(t).standard_normal((t, CONFIG["hidden"])).astype(np.float32)
        if args.form == "torch":
            x = x.reshape(1, t, -1)
        x_path = work(f"x{t}.npy")
        np.save(x_path, x)
        medians = {"no-compress": [], "default": [], "onnxruntime": []}
        levels_seen = []
        for _ in range(args.rounds):
            nc = moe_run_bench(work("medium_nc.moe"), name, x_path, runs, args.threads,
                               work(f"y_nc{t}.npy"))
            c = moe_run_bench(work("medium_c.moe"), name, x_path, runs, args.threads,
                              work(f"y_c{t}.npy"))
            level, levels, want = ort_bench(model, name, x, runs, args.threads)
            medians["no-compress"].append(nc["median_ms"])
            medians["default"].append(c["median_ms"])
            medians["onnxruntime"].append(levels[level])
            levels_seen.append(levels)
        y_nc, y_c = np.load(work(f"y_nc{t}.npy")), np.load(work(f"y_c{t}.npy"))
        best = {k: min(v) for k, v in medians.items()}
        best_round = int(np.argmin(medians["onnxruntime"]))
        rows.append({"tokens": t, "runs": runs, "rounds": args.rounds, "medians_ms": medians,
                     "best_ms": best,
                     "tokens_per_s": {k: t / v * 1000 for k, v in best.items()},
                     "onnxruntime_levels_ms": levels_seen,
                     "onnxruntime_best_level": min(levels_seen[best_round],
                                                   key=levels_seen[best_round].get),
                     "err_no_compress_vs_ort": rel_l2(y_nc, want),
                     "err_default_vs_no_compress": rel_l2(y_c, y_nc)})

    info = machine()  # the load average here covers the measurement
    result = {"config": CONFIG, "form": args.form, "threads": args.threads,
              "compile_s": compile_s, "weight_bytes": sizes, "machine": info, "rows": rows}
    with open(work("results.json"), "w") as f:
        json.dump(result, f, indent=1)

    print(f"machine: {info.get('Model name', '?')}, {info['cores']} cores"
          f" (avx512f: {info.get('avx512f')}), onnxruntime {info['onnxruntime']},"
          f" moe-mlir {info['commit']}, load average {info['load_average'][1]:.2f} (5 min)")
    print(f"model: {args.form} form, E=8, k=2, H=1024, I=2816, SiLU GLU; weights"
          f" {sizes['no-compress'] / 2**20:.1f} MiB uncompressed,"
          f" {sizes['default'] / 2**20:.1f} MiB at the default compression;"
          f" compile {compile_s['no-compress']:.1f} s / {compile_s['default']:.1f} s")
    print()
    print("| tokens | moe-run --no-compress | moe-run, default compression"
          " | onnxruntime (best level) | no-compress vs ORT | default vs no-compress |")
    print("|---|---|---|---|---|---|")
    cell = lambda r, k: (f"{r['best_ms'][k]:.2f} ms ({min(r['medians_ms'][k]):.2f}-"  # noqa: E731
                         f"{max(r['medians_ms'][k]):.2f}), {r['tokens_per_s'][k]:.0f} tok/s")
    for r in rows:
        print(f"| {r['tokens']} | {cell(r, 'no-compress')} | {cell(r, 'default')}"
              f" | {cell(r, 'onnxruntime')}, {r['onnxruntime_best_level']}"
              f" | {r['err_no_compress_vs_ort']:.1e} | {r['err_default_vs_no_compress']:.1e} |")
    print()
    print(f"Each cell: the best of {args.rounds} rounds' medians (range of the medians),"
          f" tokens/s at the best; runs per median: "
          + ", ".join(f"{r['runs']} at T={r['tokens']}" for r in rows) + ".")
    print(f"results: {work('results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
