#!/usr/bin/env python3
"""onnxruntime against moe-run on the same transformers 5 `batched_mm` export
of a Mixtral-layer-sized MoE block (issue 13; docs/benchmarks.md, "transformers
5 batched_mm export").

The model: transformers' own MixtralSparseMoeBlock, MixtralConfig(hidden_size=1024,
intermediate_size=2816, num_local_experts=8, num_experts_per_tok=2), experts
implementation `batched_mm` (config._experts_implementation), weights as
scripts/make_hf_fixtures.py initialises them (its ``build_block`` and
``randomize_``, the mixtral seed), exported with both exporters by that
script's ``export``: `torchscript` (torch.onnx.export(dynamo=False,
opset_version=17)) and `dynamo` (torch.onnx.export(dynamo=True), default
opset), dynamic batch and seq, input `hidden_states` (batch, seq, H), output
`output`. About 280 MB each, cached outside the repository (``--cache``,
default ~/.cache/moe-mlir/bench-hf/); the export runs once, inside the venv
that make_hf_fixtures.py creates ($MOE_HF_VENV or ~/.cache/moe-mlir/hf-venv;
make_hf_fixtures.py makes or updates it), and is skipped when the files exist.

transformers' batched_mm gathers each (token, slot)'s expert matrices, so
onnxruntime materialises T*k copies of the (2I x H) and (H x I) matrices;
moe-compile raises the same graph to one moe.layer. For each file and
T in 1, 16, 512 tokens (input (1, T, H), N(0, 1), fixed seed):
- onnxruntime (CPU EP, intra_op_num_threads = --threads, ORT_ENABLE_ALL,
  sequential) in a separate child process per (file, T) whose address space
  is capped (RLIMIT_AS, --ort-limit-gib, default 16) so that a run that needs
  more fails cleanly: the median over RUNS timed runs after warm-up, and the
  child's peak RSS (VmHWM), or the first line of its error;
- moe-run on the artifact of ``moe-compile FILE --no-compress`` (compile
  time recorded): the median of ``moe-run --bench RUNS --threads N``, and
  the peak RSS of the moe-run process (os.wait4).
At T = 1 and 16 moe-run's output is checked against onnxruntime's and both
against torch's own output (computed at export time), so the two do the same
work. Prints a Markdown table and writes it, with the command, machine,
versions and date, as the section "## transformers 5 batched_mm export: ..."
of ``--out`` (default docs/benchmarks.md; the section is replaced, the rest of
the page kept).

Run from the repository root with the pyenv ``python3`` (numpy, onnx,
onnxruntime) after building (scripts/build.sh):

    python3 bench/hf_batched.py                # full size; about 2 minutes once exported
    python3 bench/hf_batched.py --quick        # H=64, I=128 smoke run; prints only
    python3 bench/hf_batched.py --export-only  # export (if needed) and a 1-token onnxruntime check

``--quick`` writes no docs unless ``--out`` is given (and then labels the
section a smoke run).
"""

import argparse
import datetime
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAKE_HF = os.path.join(REPO, "scripts", "make_hf_fixtures.py")
DOC = os.path.join(REPO, "docs", "benchmarks.md")
SECTION = "## transformers 5 batched_mm export: onnxruntime vs moe-run on the same file (issue 13)"

FULL = dict(hidden=1024, inter=2816)
QUICK = dict(hidden=64, inter=128)
EXPERTS, TOP_K = 8, 2
EXPORTERS = ("torchscript", "dynamo")
TOKENS = (1, 16, 512)
CHECK_T = (1, 16)           # moe-run vs onnxruntime vs torch at these token counts
RUNS = {1: 20, 16: 10, 512: 3}  # timed runs (both runners), after warm-up


def runs_of(t):
    return RUNS.get(t, 10 if t <= 16 else 3)


def warmup_of(t):
    return 3 if t <= 16 else 1  # onnxruntime; moe-run --bench always warms up 3 times


def stem(hidden, inter):
    return "mixtral_h%d_i%d" % (hidden, inter)


def tokens(t, hidden):
    """The benchmark input (1, t, hidden): N(0, 1), seeded by t."""
    return np.random.default_rng(20261213 + t).standard_normal((1, t, hidden)).astype(np.float32)


def run_bench():
    """bench/run_bench.py's helpers (tool, compile_model, machine, rel_l2),
    imported only in the measuring process: not in the onnxruntime child,
    whose peak RSS is measured, nor in the export venv."""
    sys.path.insert(0, HERE)
    import run_bench as rb

    return rb


def first_line(text):
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[0] if lines else "")[:600]


def short_error(error):
    """onnxruntime's first line, condensed for the table: the node and the
    status message without its source location; an allocation's size in GB."""
    m = re.search(r"running (\w+) node\. Name:'([^']*)' Status Message: (.*)", error)
    if m:
        status = re.sub(r"^/\S+:\d+ [^(]*\([^)]*\)\s*", "", m.group(3))
        error = "%s node %s: %s" % (m.group(1), m.group(2), status)
    size = re.search(r"size (\d{7,})", error)
    if size:
        n = int(size.group(1))
        error += " (%.1f GB)" % (n / 1e9) if n >= 1e9 else " (%.0f MB)" % (n / 1e6)
    return error[:300]


def default_venv():
    # The same rule as make_hf_fixtures.venv_dir.
    return os.environ.get("MOE_HF_VENV") or os.path.expanduser("~/.cache/moe-mlir/hf-venv")


# --------------------------------------------- export (inside the hf venv) ---

def export_in_venv(cache, hidden, inter):
    """Runs in make_hf_fixtures.py's venv: builds the block with that
    script's functions, writes torch's reference outputs and each missing
    export with a metadata JSON."""
    sys.path.insert(0, os.path.dirname(MAKE_HF))
    import logging

    import make_hf_fixtures as mhf  # imports torch, transformers, onnx, onnxruntime
    import onnx
    import onnxruntime as ort
    import torch
    import transformers

    torch.set_num_threads(2)
    for name in ("torch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    mixtral = mhf.FAMILIES[0]
    assert mixtral["block"] == "MixtralSparseMoeBlock", mixtral["block"]
    spec = dict(mixtral, kw=dict(mixtral["kw"], hidden_size=hidden, intermediate_size=inter,
                                 num_local_experts=EXPERTS, num_experts_per_tok=TOP_K))
    model, cfg = mhf.build_block(spec)  # batched_mm, make_hf_fixtures' weights and seed
    assert cfg._experts_implementation == "batched_mm"
    versions = dict(torch=torch.__version__, transformers=transformers.__version__,
                    onnx=onnx.__version__, onnxscript=mhf.onnxscript_version(),
                    onnxruntime=ort.__version__)
    base = os.path.join(cache, stem(hidden, inter))
    ref = {}
    with torch.no_grad():
        for t in CHECK_T:
            x = tokens(t, hidden)
            ref["input_%d" % t] = x
            ref["output_%d" % t] = model(torch.from_numpy(x)).float().numpy()
    np.savez(base + "_torch.npz", **ref)
    example = torch.randn(2, 5, hidden, generator=torch.Generator().manual_seed(mhf.seed_of("mixtral")))
    for ex in EXPORTERS:
        path = "%s_%s.onnx" % (base, ex)
        if os.path.exists(path) and os.path.exists(path[:-5] + ".json"):
            continue
        print("exporting %s (%s)..." % (os.path.basename(path), ex), flush=True)
        tmp = path[:-5] + ".tmp.onnx"
        start = time.perf_counter()
        opset = mhf.export(model, example, tmp, ex, "hidden_states", "output")
        export_s = time.perf_counter() - start
        sess = mhf.session(tmp)
        got = sess.run(None, {"hidden_states": ref["input_1"]})[0]
        err = mhf.rel_l2(got, ref["output_1"])
        del sess
        if err > 1e-4:
            raise SystemExit("%s: onnxruntime vs torch at 1 token: rel L2 %.3g" % (tmp, err))
        os.replace(tmp, path)
        meta = dict(exporter=ex, opset=opset, bytes=os.path.getsize(path), export_s=export_s,
                    ort_vs_torch_1=err, versions=versions, config=mhf.config_json(cfg))
        with open(path[:-5] + ".json", "w") as f:
            json.dump(meta, f, indent=1)
        print("  %s: opset %d, %.1f MB, exported in %.1f s, onnxruntime vs torch at 1 token %.2e"
              % (os.path.basename(path), opset, meta["bytes"] / 1e6, export_s, err), flush=True)


def ensure_exports(cache, hidden, inter, venv):
    base = os.path.join(cache, stem(hidden, inter))
    want = [base + "_torch.npz"] + ["%s_%s%s" % (base, ex, s) for ex in EXPORTERS for s in (".onnx", ".json")]
    if all(os.path.exists(p) for p in want):
        return
    os.makedirs(cache, exist_ok=True)
    # make_hf_fixtures.py creates or updates its venv (idempotent), re-executes
    # itself there and stops at --help: its bootstrap, not a copy of it.
    subprocess.run([sys.executable, MAKE_HF, "--venv", venv, "--help"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([os.path.join(venv, "bin", "python"), os.path.abspath(__file__), "--export-in-venv",
                    "--cache", cache, "--hidden", str(hidden), "--inter", str(inter)], check=True)


# ------------------------------------------------------------ measuring ---

def run_measured(cmd, **kw):
    """Runs cmd; (exit code, stdout, stderr, the process's peak RSS in MB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **kw)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                usage.ru_maxrss / 1024)


def ort_child(spec):
    """In the child: caps the address space, runs onnxruntime, prints one JSON line."""
    limit = int(spec["limit_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    res = dict(ok=False)
    stage = "import"
    try:
        import onnxruntime as ort

        stage = "session"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = spec["threads"]
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        start = time.perf_counter()
        sess = ort.InferenceSession(spec["model"], opts, providers=["CPUExecutionProvider"])
        res["session_s"] = time.perf_counter() - start
        x = np.load(spec["x"])
        stage = "run"
        for _ in range(spec["warmup"]):
            y = sess.run(None, {"hidden_states": x})[0]
        ms = []
        for _ in range(spec["runs"]):
            start = time.perf_counter()
            y = sess.run(None, {"hidden_states": x})[0]
            ms.append((time.perf_counter() - start) * 1000)
        if spec.get("y"):
            np.save(spec["y"], y)
        res.update(ok=True, median_ms=statistics.median(ms), runs=len(ms), warmup=spec["warmup"])
    except BaseException as e:  # noqa: BLE001 - onnxruntime raises several kinds; MemoryError
        res.update(stage=stage, error="%s: %s" % (type(e).__name__, first_line(e)))
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                res["peak_rss_mb"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    print(json.dumps(res), flush=True)


def ort_measure(model, x_path, y_path, t, threads, limit_gib, runs=None, warmup=None):
    spec = dict(model=model, x=x_path, y=y_path, threads=threads, limit_bytes=int(limit_gib * 2**30),
                runs=runs_of(t) if runs is None else runs, warmup=warmup_of(t) if warmup is None else warmup)
    rc, out, err, peak = run_measured([sys.executable, os.path.abspath(__file__), "--ort-child",
                                       json.dumps(spec)])
    lines = out.strip().splitlines()
    try:
        res = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = [ln for ln in err.strip().splitlines() if ln.strip()]
        res = dict(ok=False, stage="child", error="child exited with %d: %s" % (rc, (tail[-1] if tail else "")[:300]))
    res["peak_rss_mb"] = max(res.get("peak_rss_mb", 0), peak)
    return res


def moe_run_measure(artifact, x_path, y_path, t, threads):
    rc, out, err, peak = run_measured([run_bench().tool("moe-run"), artifact, "--input", "hidden_states=%s" % x_path,
                                       "--output", "output=%s" % y_path, "--bench", str(runs_of(t)),
                                       "--threads", str(threads)])
    if rc != 0:
        return dict(ok=False, error="moe-run exited with %d: %s" % (rc, first_line(err)), peak_rss_mb=peak)
    res = json.loads(out.strip().splitlines()[-1])
    res.update(ok=True, peak_rss_mb=peak)
    return res


# --------------------------------------------------------------- report ---

def fmt_ms(ms):
    return "%.3g ms" % ms if ms < 100 else "%.0f ms" % ms


def ort_cell(r):
    if r["ok"]:
        return fmt_ms(r["median_ms"])
    return "fails: %s" % short_error(r["error"]).replace("|", "\\|")


def table(rows):
    out = ["| file (exporter) | T | onnxruntime | onnxruntime peak RSS | moe-run | moe-run peak RSS"
           " | speed-up | moe-run vs onnxruntime / torch (rel L2) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, m = r["ort"], r["moe_run"]
        speed = "%.1fx" % (o["median_ms"] / m["median_ms"]) if o["ok"] and m["ok"] else "-"
        check = "-"
        if "err_vs_ort" in r or "err_vs_torch" in r:
            check = "%s / %s" % tuple("%.1e" % r[k] if k in r else "-" for k in ("err_vs_ort", "err_vs_torch"))
        out.append("| %s | %d | %s | %.0f MB | %s | %.0f MB | %s | %s |" % (
            r["file"], r["tokens"], ort_cell(o), o["peak_rss_mb"],
            fmt_ms(m["median_ms"]) if m["ok"] else "fails: " + m["error"], m["peak_rss_mb"], speed, check))
    return "\n".join(out)


def wrap(paragraph):
    return textwrap.fill(paragraph, 75, break_long_words=False, break_on_hyphens=False)


def section(result, command):
    info, cfg = result["machine"], result["config"]
    v = result["versions"]
    files = result["files"]
    smoke = ("**Smoke run (`--quick`, H = %d, I = %d): checks the script, not a measurement.**\n\n"
             % (cfg["hidden"], cfg["inter"])) if result["quick"] else ""
    lines = [SECTION, "", smoke.rstrip("\n") if smoke else None, "" if smoke else None,
             wrap("transformers' own `MixtralSparseMoeBlock` (H = %d, I = %d, E = %d, top-%d, SwiGLU, float32),"
             " experts implementation `batched_mm`, weights as `scripts/make_hf_fixtures.py` initialises"
             " them, exported by that script's `export` with both exporters (`torchscript`:"
             " `torch.onnx.export(dynamo=False, opset_version=17)`; `dynamo`: `torch.onnx.export(dynamo=True)`,"
             " default opset), dynamic batch and seq. `batched_mm` gathers each (token, slot)'s expert"
             " matrices, so onnxruntime materialises T*k copies of them; moe-compile raises the same file"
             " to one `moe.layer`. Per file and token count (input (1, T, H), N(0, 1)): onnxruntime %s (CPU"
             " EP, `intra_op_num_threads` = %d, ORT_ENABLE_ALL, sequential) in its own process with the"
             " address space capped at %g GiB (RLIMIT_AS), median of %s timed runs after %s warm-up"
             " runs, and that process's peak RSS (VmHWM); moe-run on the artifact of `moe-compile FILE"
             " --no-compress` (`--bench`, `--threads %d`, 3 warm-up runs), and the peak RSS of the"
             " moe-run process. moe-run's output is checked against onnxruntime's and torch's at T = %s."
             % (cfg["hidden"], cfg["inter"], EXPERTS, TOP_K, v.get("onnxruntime"), result["threads"],
                result["ort_limit_gib"], "/".join(str(runs_of(t)) for t in result["tokens"]),
                "/".join(str(warmup_of(t)) for t in result["tokens"]), result["threads"],
                " and ".join(str(t) for t in CHECK_T))),
             "", "    " + command, "",
             wrap("Machine: %s, %s cores (%s), %s. torch %s, transformers %s, onnx %s, onnxscript %s (export,"
             " in make_hf_fixtures.py's venv); onnxruntime %s, numpy %s, Python %s (measurement); moe-mlir"
             " %s. 5-minute load average %.2f at the end." % (
                 info.get("Model name", "?"), info["cores"],
                 "VM, %s" % info["Hypervisor vendor"] if info.get("Hypervisor vendor") else "bare metal",
                 result["date"],
                 v.get("torch"), v.get("transformers"), v.get("onnx"), v.get("onnxscript"),
                 info["onnxruntime"], np.__version__, info["python"], info["commit"],
                 info["load_average"][1])),
             "", table(result["rows"]), "",
             wrap("Files: " + "; ".join(
                 "`%s`: opset %d, %.0f MB, moe-compile --no-compress %.1f s (artifact %.0f MB)" % (
                     f["exporter"], f["opset"], f["bytes"] / 1e6, f["compile_s"], f["artifact_bytes"] / 1e6)
                 for f in files) + ". Speed-up: onnxruntime's median over moe-run's."), ""]
    return "\n".join(ln for ln in lines if ln is not None)


# ----------------------------------------------------------------- main ---

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--ort-child"]:
        ort_child(json.loads(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="H=64, I=128: a smoke run")
    parser.add_argument("--out", default=None,
                        help="Markdown file whose section is replaced (default docs/benchmarks.md; "
                        "with --quick none); '-' writes none")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/moe-mlir/bench-hf"),
                        help="where the exports, artifacts and results go")
    parser.add_argument("--venv", default=default_venv(), help="make_hf_fixtures.py's venv")
    parser.add_argument("--tokens", type=int, nargs="+", default=list(TOKENS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ort-limit-gib", type=float, default=16.0)
    parser.add_argument("--export-only", action="store_true",
                        help="export (if needed) and check each file loads in onnxruntime at 1 token")
    parser.add_argument("--export-in-venv", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hidden", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--inter", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.export_in_venv:
        export_in_venv(args.cache, args.hidden, args.inter)
        return 0

    command = "python3 bench/hf_batched.py" + "".join(" " + shlex.quote(a) for a in argv)
    ensure_exports(args.cache, cfg["hidden"], cfg["inter"], args.venv)
    base = os.path.join(args.cache, stem(cfg["hidden"], cfg["inter"]))
    work = os.path.join(args.cache, "work_" + stem(cfg["hidden"], cfg["inter"]))
    os.makedirs(work, exist_ok=True)
    ref = np.load(base + "_torch.npz")
    metas = {ex: json.load(open("%s_%s.json" % (base, ex))) for ex in EXPORTERS}

    if args.export_only:
        x_path = os.path.join(work, "x1.npy")
        np.save(x_path, tokens(1, cfg["hidden"]))
        for ex in EXPORTERS:
            y_path = os.path.join(work, "ort_%s_1.npy" % ex)
            r = ort_measure("%s_%s.onnx" % (base, ex), x_path, y_path, 1, args.threads, args.ort_limit_gib,
                            runs=1, warmup=1)
            err = run_bench().rel_l2(np.load(y_path), ref["output_1"]) if r["ok"] else None
            print("%s: %s, peak RSS %.0f MB%s" % (
                ex, ("loads and runs, %.2f ms" % r["median_ms"]) if r["ok"] else "FAILS: " + r["error"],
                r["peak_rss_mb"], ", vs torch rel L2 %.2e" % err if err is not None else ""))
        return 0

    rows, files = [], []
    for ex in EXPORTERS:
        model = "%s_%s.onnx" % (base, ex)
        artifact = os.path.join(work, "%s.moe" % ex)
        compile_s = run_bench().compile_model(model, artifact, "--no-compress")
        files.append(dict(metas[ex], compile_s=compile_s, artifact_bytes=os.path.getsize(artifact)))
        for t in args.tokens:
            x_path = os.path.join(work, "x%d.npy" % t)
            x = tokens(t, cfg["hidden"])
            np.save(x_path, x)
            y_ort, y_moe = (os.path.join(work, "%s_%s_%d.npy" % (who, ex, t)) for who in ("ort", "moe"))
            for p in (y_ort, y_moe):
                if os.path.exists(p):
                    os.remove(p)
            print("%s, T=%d: onnxruntime..." % (ex, t), end="", flush=True)
            o = ort_measure(model, x_path, y_ort if t in CHECK_T else None, t, args.threads, args.ort_limit_gib)
            print(" %s, %.0f MB; moe-run..." % (ort_cell(o), o["peak_rss_mb"]), end="", flush=True)
            m = moe_run_measure(artifact, x_path, y_moe, t, args.threads)
            print(" %s, %.0f MB" % (fmt_ms(m["median_ms"]) if m["ok"] else m["error"], m["peak_rss_mb"]),
                  flush=True)
            row = dict(file=ex, tokens=t, ort=o, moe_run=m)
            if m["ok"] and t in CHECK_T:
                got = np.load(y_moe)
                if o["ok"]:
                    row["err_vs_ort"] = run_bench().rel_l2(got, np.load(y_ort))
                if "output_%d" % t in ref and np.array_equal(ref["input_%d" % t], x):
                    row["err_vs_torch"] = run_bench().rel_l2(got, ref["output_%d" % t])
            rows.append(row)

    info = run_bench().machine()  # the load average here covers the measurement
    versions = dict(metas[EXPORTERS[0]]["versions"], onnxruntime=info["onnxruntime"])
    result = dict(config=dict(cfg, experts=EXPERTS, top_k=TOP_K), quick=args.quick, threads=args.threads,
                  ort_limit_gib=args.ort_limit_gib, tokens=args.tokens, machine=info, versions=versions,
                  date=datetime.date.today().isoformat(), command=command, files=files, rows=rows)
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    text = section(result, command)
    print()
    print(text)
    out = args.out if args.out is not None else ("-" if args.quick else DOC)
    if out != "-":
        run_bench().write_section(out, SECTION, text)
        print("wrote the section into %s" % out)
    print("results: %s" % os.path.join(work, "results.json"))
    bad = [r for r in rows if not r["moe_run"]["ok"] or r.get("err_vs_ort", 0) > 1e-4
           or r.get("err_vs_torch", 0) > 1e-4]
    if bad:
        print("moe-run failed or disagrees at: %s" % ", ".join("%s T=%d" % (r["file"], r["tokens"]) for r in bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
