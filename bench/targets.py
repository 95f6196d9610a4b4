#!/usr/bin/env python3
"""Issue 8's ratio targets, back to back: moe-mlir and onnxruntime in
alternating rounds on the same inputs, each ratio taken within one round.

The harness (bench/harness.py) times every system once, one after another;
on a machine whose speed drifts (a VM: 15-20% between minutes), the ratio of
two figures taken minutes apart carries that drift. Here every round runs
each system once on the harness's artifacts, models and inputs, so each
ratio compares neighbours in time, and the table gives the median ratio
over the rounds with its range.

    python3 bench/targets.py [--size medium] [--rounds 5] [--work out/harness]

Needs a harness run of the same size in --work first (its artifacts
moe-*.moe, the ONNX forms, the inputs). onnxruntime runs at two graph
optimisation levels each round, the faster counting (its fastest setting).
Python: the python3 on PATH (numpy, onnxruntime), as for the harness.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# (label, T, moe system, peer systems, wanted ratio): peer / moe >= wanted;
# several peers: the fastest of them in the round.
TARGETS = [
    ("1 token: default compression vs onnxruntime MoE", 1, "moe-default", ["ort-moe"], 2.5),
    ("1 token: --base-bits=8 vs onnxruntime MoE", 1, "moe-b8", ["ort-moe"], 4.0),
    ("1 token: quantise-only INT4 vs QMoE INT4", 1, "moe-q4", ["ort-qmoe"], 1.0),
    ("16 tokens: default compression vs onnxruntime MoE", 16, "moe-default", ["ort-moe"], 5.0),
    ("16 tokens: default compression vs QMoE INT4", 16, "moe-default", ["ort-qmoe"], 1.5),
    ("512 tokens: uncompressed vs onnxruntime", 512, "moe-nc", ["ort-moe", "ort-loop"], 1.0),
    ("512 tokens: default compression vs onnxruntime", 512, "moe-default", ["ort-moe", "ort-loop"], 1.3),
    ("2048 tokens: uncompressed vs onnxruntime", 2048, "moe-nc", ["ort-moe", "ort-loop"], 1.0),
    ("2048 tokens: default compression vs onnxruntime", 2048, "moe-default", ["ort-moe", "ort-loop"], 1.3),
]
LEVELS = ["disable_all", "all"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="medium", choices=["small", "medium", "mixtral", "mixtral32"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--tokens", type=int, nargs="+", help="only the targets at these token counts")
    parser.add_argument("--work", default=os.path.join(harness.REPO, "out", "harness"))
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    cfg = harness.SIZES[args.size]
    work = os.path.join(args.work, args.size)
    targets = [t for t in TARGETS if not args.tokens or t[1] in args.tokens]
    if not targets:
        parser.error("no target at those token counts")

    def inputs_of(system, t):
        files = ["xb%d.npy" % t] if system.startswith("moe-") else ["x%d.npy" % t]
        if system.startswith("moe-"):
            files.append(system + ".moe")
        else:
            files.append({"ort-loop": "loop", "ort-moe": "ort", "ort-qmoe": "qmoe"}[system] + ".onnx")
        return [f for f in files if not os.path.exists(os.path.join(work, f))]

    # A target whose artifact, model or inputs the harness did not make (the
    # Mixtral size has no QMoE model) is left out and named.
    skipped = []
    for target in list(targets):
        _, t, moe, peers, _ = target
        missing = sorted({f for s in [moe, *peers] for f in inputs_of(s, t)})
        if missing:
            targets.remove(target)
            skipped.append("%s (no %s)" % (target[0], ", ".join(missing)))
    if not targets:
        sys.exit("targets.py: run the harness for --sizes %s in %s first (%s)"
                 % (args.size, args.work, "; ".join(skipped)))
    # Per system, the token counts it is timed at.
    need = {}
    for _, t, moe, peers, _ in targets:
        for s in [moe, *peers]:
            need.setdefault(s, set()).add(t)
    runs = {str(t): harness.runs_for(cfg, t) for ts in need.values() for t in ts}
    ort_args = argparse.Namespace(ort_levels=LEVELS)
    times = {s: {t: [] for t in ts} for s, ts in need.items()}
    t0 = time.perf_counter()
    for r in range(args.rounds):
        for s, ts in need.items():
            ts = sorted(ts)
            if s.startswith("moe-"):
                rows, _, _, _ = harness.run_moe(s, work, ts, runs, args.threads, args.timeout, prebuilt=work)
            else:
                rows, _, _ = harness.run_ort(s, work, ts, runs, args.threads, args.timeout, ort_args)
            for t in ts:
                row = rows[t]
                if not row.get("ok"):
                    sys.exit("targets.py: %s at T=%d failed: %s" % (s, t, row.get("error")))
                times[s][t].append(row["median_ms"])
        harness.log("round %d of %d: %.0f s" % (r + 1, args.rounds, time.perf_counter() - t0))

    lines = ["| target | wanted | median ratio | range over rounds | moe-mlir ms (median) | peer ms (median) | met |",
             "|---|---|---|---|---|---|---|"]
    for label, t, moe, peers, wanted in targets:
        ratios, peer_ms = [], []
        for r in range(args.rounds):
            peer = min(times[p][t][r] for p in peers)
            peer_ms.append(peer)
            ratios.append(peer / times[moe][t][r])
        med = statistics.median(ratios)
        lines.append("| %s | >= %.1fx | %.2fx | %.2f-%.2fx | %.3g | %.3g | %s |" % (
            label, wanted, med, min(ratios), max(ratios), statistics.median(times[moe][t]),
            statistics.median(peer_ms), "yes" if med >= wanted else "no"))
    print("\n".join(lines))
    for why in skipped:
        print("\nnot run: " + why)
    print("\n%d rounds, %d threads, %s layer; %.0f s. Command: python3 bench/targets.py %s"
          % (args.rounds, args.threads, args.size, time.perf_counter() - t0,
             " ".join(argv if argv is not None else sys.argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
