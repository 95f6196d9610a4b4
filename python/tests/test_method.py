"""The method passes (moe-cluster-experts, moe-compress-experts,
moe-quantize, moe-fuse-routing, moe-compress-pipeline) checked by numbers
against NumPy and the float64 reference evaluator.

Python: the ``python3`` on PATH (NumPy); needs build/bin/moe-opt.
"""

import json

import numpy as np
import pytest

from conftest import record_error
from moe_mlir import mlir_text, reference as ref
from moe_mlir.synth import random_layer, random_tokens, structured_layer
from tools import moe_opt


def rel_l2(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def write_layer(tmp_path, arrays, meta, name="layer.mlir"):
    path = tmp_path / name
    path.write_text(mlir_text.layer_to_mlir(arrays, meta))
    return path


def compress(tmp_path, src, options, tag="out", pipeline="moe-compress-pipeline"):
    """Runs a pass (or pass list) on src; returns (dump dir, report or None)."""
    out = tmp_path / tag
    report = tmp_path / f"{tag}.json"
    opts = options + (f" report={report}" if pipeline == "moe-compress-pipeline" else "")
    moe_opt(src, f"--{pipeline}={opts}" if opts.strip() else f"--{pipeline}",
            f"--moe-dump-layers={out}", "-o", tmp_path / f"{tag}.mlir")
    rep = json.loads(report.read_text()) if report.exists() else None
    return out, rep


def planted_layer(seed, num_experts, groups, hidden=24, inter=40, noise=0.05, decay=None):
    """Experts = base of their (hidden, shuffled) group + a small residual."""
    return structured_layer(seed, num_experts=num_experts, groups=groups, hidden=hidden,
                            inter=inter, noise=noise, decay=decay)


def same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return all((a == a[i]).tolist() == (b == b[i]).tolist() for i in range(len(a)))


# ------------------------------------------------------------- lossless

def test_full_rank_f32_is_lossless(tmp_path):
    arrays, meta = random_layer(1, num_experts=8, hidden=24, inter=40, biases=True,
                                router_bias=True)
    src = write_layer(tmp_path, arrays, meta)
    out, rep = compress(tmp_path, src, "bits=none base-bits=32 rank=full")
    x = random_tokens(2, 33, 24)
    want = ref.evaluate(ref.load_layer(_dump_of(tmp_path, src)), x)
    got = ref.evaluate(ref.load_layer(out / "layer_0.npz"), x)
    err = rel_l2(got, want)
    record_error("full rank, f32 bases vs original", err)
    assert err <= 1e-6
    assert rep["layers"][0]["num_clusters"] == 2


def _dump_of(tmp_path, src):
    d = tmp_path / "orig"
    moe_opt(src, f"--moe-dump-layers={d}", "-o", tmp_path / "orig.mlir")
    return d / "layer_0.npz"


def test_fp16_bases_error_is_fp16_rounding(tmp_path):
    """With FP16 bases the error is what rounding the exact bases to FP16
    predicts: the f32 run's bases, rounded in NumPy, evaluate like the f16
    run's dump."""
    arrays, meta = random_layer(3, num_experts=8, hidden=24, inter=40)
    src = write_layer(tmp_path, arrays, meta)
    f32_dir, _ = compress(tmp_path, src, "bits=none base-bits=32 rank=full", "f32")
    f16_dir, _ = compress(tmp_path, src, "bits=none base-bits=16 rank=full", "f16")
    x = random_tokens(4, 40, 24)
    original = ref.evaluate(ref.load_layer(_dump_of(tmp_path, src)), x)
    predicted = ref.load_layer(f32_dir / "layer_0.npz")
    for kind in ("gate", "up", "down"):
        predicted[kind + "_base"] = predicted[kind + "_base"].astype(np.float16).astype(np.float64)
    got = ref.evaluate(ref.load_layer(f16_dir / "layer_0.npz"), x)
    want = ref.evaluate(predicted, x)
    assert rel_l2(got, want) <= 1e-6
    err, predicted_err = rel_l2(got, original), rel_l2(want, original)
    record_error("fp16 bases vs original", err)
    assert err > 0 and abs(err - predicted_err) <= 0.01 * predicted_err


# ------------------------------------------------------------- SVD

def residuals(dump):
    """Per kind: (E, out, in) residuals W_e - base, and U^T V per expert."""
    layer = ref.load_layer(dump)
    meta = layer["meta"]
    a = np.asarray(meta["assignment"])
    out = {}
    for kind in ("gate", "up", "down"):
        ranks = meta["ranks"][kind]
        offs = np.concatenate([[0], np.cumsum(ranks)]).astype(int)
        u, v = layer[kind + "_u"], layer[kind + "_v"]
        approx = np.stack([u[offs[e]:offs[e + 1]].T @ v[offs[e]:offs[e + 1]]
                           for e in range(len(a))])
        out[kind] = (layer[kind + "_base"][a], approx, ranks)
    return out


def test_exact_svd_meets_eckart_young(tmp_path):
    arrays, meta, _ = planted_layer(5, 8, 2)
    src = write_layer(tmp_path, arrays, meta)
    out, _ = compress(tmp_path, src, "bits=none base-bits=32 rank=4 svd=exact")
    a = np.asarray(json.loads(bytes(np.load(out / "layer_0.npz")["meta"]))["assignment"])
    for kind, (base, approx, ranks) in residuals(out / "layer_0.npz").items():
        w = arrays[kind + "_weight"].astype(np.float64)
        # The base is the mean of the cluster's members.
        for c in set(a.tolist()):
            np.testing.assert_allclose(base[a == c][0], w[a == c].mean(axis=0), atol=1e-6)
        for e in range(len(a)):
            r = w[e] - base[e]
            s = np.linalg.svd(r, compute_uv=False)
            optimum = np.sqrt(np.sum(s[4:] ** 2))
            achieved = np.linalg.norm(r - approx[e])
            assert ranks[e] == 4
            assert abs(achieved - optimum) <= 1e-4 * optimum


@pytest.mark.parametrize("decay", [0.8, 0.9])
def test_randomized_svd_within_two_percent(tmp_path, decay):
    arrays, meta, _ = planted_layer(6, 8, 2, hidden=48, inter=96, decay=decay, noise=1.0)
    src = write_layer(tmp_path, arrays, meta)
    out, _ = compress(tmp_path, src, "bits=none base-bits=32 rank=6 svd=randomized")
    worst = 0.0
    for kind, (base, approx, _) in residuals(out / "layer_0.npz").items():
        w = arrays[kind + "_weight"].astype(np.float64)
        for e in range(w.shape[0]):
            r = w[e] - base[e]
            s = np.linalg.svd(r, compute_uv=False)
            optimum = np.sqrt(np.sum(s[6:] ** 2))
            worst = max(worst, np.linalg.norm(r - approx[e]) / optimum)
    record_error(f"randomized SVD error / optimum - 1 (decay {decay})", worst - 1)
    assert worst <= 1.02


def test_energy_picks_smallest_rank(tmp_path):
    arrays, meta, _ = planted_layer(7, 8, 2, hidden=32, inter=48, decay=0.7, noise=1.0)
    src = write_layer(tmp_path, arrays, meta)
    out, _ = compress(tmp_path, src, "bits=none base-bits=32 energy=0.95 svd=exact")
    for kind, (base, _, ranks) in residuals(out / "layer_0.npz").items():
        w = arrays[kind + "_weight"].astype(np.float64)
        for e in range(w.shape[0]):
            s2 = np.linalg.svd(w[e] - base[e], compute_uv=False) ** 2
            kept = np.cumsum(s2) / s2.sum()
            assert ranks[e] == int(np.argmax(kept >= 0.95 - 1e-9)) + 1


# ------------------------------------------------------------- quantisation

def test_int4_factors_within_half_step(tmp_path):
    arrays, meta = random_layer(8, num_experts=8, hidden=64, inter=96)
    src = write_layer(tmp_path, arrays, meta)
    f_dir, _ = compress(tmp_path, src, "bits=none base-bits=32", "float")
    q_dir, _ = compress(tmp_path, src, "bits=4 base-bits=32", "int4")
    fl = ref.load_layer(f_dir / "layer_0.npz")
    q = ref.load_layer(q_dir / "layer_0.npz")
    raw = np.load(q_dir / "layer_0.npz")
    qmeta = q["meta"]["quant"]
    for name in ("gate_u", "gate_v", "up_u", "up_v", "down_u", "down_v"):
        assert qmeta[name]["storage"] == "i4" and qmeta[name]["group_size"] == 32
        scales = raw[name + ".scales"].astype(np.float64)
        cols = fl[name].shape[-1]
        step = np.repeat(scales, 32, axis=-1)[..., :cols]
        assert np.all(np.abs(q[name] - fl[name]) <= step / 2 + 1e-12)


def test_int4_packing_low_nibble_first(tmp_path):
    """The codes in the dump, unpacked low nibble first, are the ones that
    dequantise to the evaluator's values."""
    arrays, meta = random_layer(9, num_experts=4, hidden=32, inter=32)
    src = write_layer(tmp_path, arrays, meta)
    q_dir, _ = compress(tmp_path, src, "bits=4 base-bits=4 clusters=2")
    raw = np.load(q_dir / "layer_0.npz")
    q = ref.load_layer(q_dir / "layer_0.npz")
    data = raw["up_base.data"]
    low, high = data & 0xF, data >> 4
    codes = np.stack([low, high], axis=-1).reshape(data.shape[:-1] + (-1,))
    scales = np.repeat(raw["up_base.scales"].astype(np.float64), 32, axis=-1)
    zps = np.repeat(raw["up_base.zero_points"].astype(np.float64), 32, axis=-1)
    np.testing.assert_allclose((codes - zps) * scales, q["up_base"], rtol=0, atol=0)


# ------------------------------------------------------------- clustering

@pytest.mark.parametrize("experts,groups,method", [
    (8, 2, "kmeans"), (16, 4, "kmeans"), (12, 3, "kmeans"), (32, 8, "kmeans"),
    (8, 2, "agglomerative"), (16, 4, "agglomerative")])
def test_clustering_recovers_planted_clusters(tmp_path, experts, groups, method):
    arrays, meta, truth = planted_layer(10 + experts, experts, groups, hidden=16, inter=24)
    src = write_layer(tmp_path, arrays, meta)
    runs = []
    for tag in ("a", "b"):
        out, _ = compress(tmp_path, src, f"clusters={groups} method={method} seed=3",
                          tag, pipeline="moe-cluster-experts")
        text = (tmp_path / f"{tag}.mlir").read_text()
        line = next(l for l in text.splitlines() if "moe.assignment" in l)
        runs.append([int(v) for v in line.split("moe.assignment = array<i64: ")[1].split(">")[0].split(",")])
    assert runs[0] == runs[1], "clustering must be deterministic for a seed"
    assert same_partition(runs[0], truth)
    sizes = np.bincount(runs[0])
    assert sizes.max() - sizes.min() <= 1


def test_clustering_is_balanced_when_uneven(tmp_path):
    arrays, meta = random_layer(11, num_experts=10, hidden=16, inter=24)
    src = write_layer(tmp_path, arrays, meta)
    _, rep = compress(tmp_path, src, "clusters=3")
    sizes = np.bincount(rep["layers"][0]["assignment"])
    assert sorted(sizes.tolist()) == [3, 3, 4]


def _assignment(text):
    line = next(l for l in text.splitlines() if "moe.assignment" in l)
    return [int(v) for v in line.split("moe.assignment = array<i64: ")[1].split(">")[0].split(",")]


def test_clusters_keep_the_models_expert_groups(tmp_path):
    """A DeepSeek-V3-style layer (sigmoid, selection bias, 2 groups of 4):
    the default clusters are its groups, an explicit count clusters inside
    them (whatever the planted structure across groups), and the report's
    C++ evaluation of the routing agrees with the reference's."""
    arrays, meta, _ = structured_layer(
        41, num_experts=8, groups=4, hidden=16, inter=24, top_k=2, scoring="sigmoid",
        selection_bias=True, routing_extra={"groups": 2, "groups_kept": 1, "scale": 2.5,
                                            "norm_epsilon": 1e-20})
    src = write_layer(tmp_path, arrays, meta)
    compress(tmp_path, src, "", "dflt", pipeline="moe-cluster-experts")
    assert _assignment((tmp_path / "dflt.mlir").read_text()) == [0, 0, 0, 0, 1, 1, 1, 1]
    compress(tmp_path, src, "clusters=4", "four", pipeline="moe-cluster-experts")
    four = _assignment((tmp_path / "four.mlir").read_text())
    assert all(c // 2 == e // 4 for e, c in enumerate(four)) and sorted(set(four)) == [0, 1, 2, 3]
    calib = tmp_path / "calib.npy"
    x = random_tokens(42, 128, 16)
    np.save(calib, x)
    out, rep = compress(tmp_path, src, f"clusters=4 rank=2 bits=none calibration={calib}")
    entry = rep["layers"][0]
    assert entry["assignment"] == four
    orig_layer = ref.load_layer(_dump_of(tmp_path, src))
    assert "selection_bias" in orig_layer and orig_layer["meta"]["routing"]["groups"] == 2
    orig = ref.evaluate(orig_layer, x)
    comp = ref.evaluate(ref.load_layer(out / "layer_0.npz"), x)
    assert abs(entry["calibration"]["output_relative_error"] - rel_l2(comp, orig)) <= 1e-3
    want, _ = ref.routing(orig_layer, x)
    got, _ = ref.routing(ref.load_layer(out / "layer_0.npz"), x)
    same = np.mean([set(a) == set(b) for a, b in zip(want.tolist(), got.tolist())])
    assert same == 1.0
    assert entry["calibration"]["routing_agreement"]["exact_set_match"] == 1.0


# ------------------------------------------------------------- routing

def test_exact_routing_keeps_expert_choice(tmp_path):
    arrays, meta = random_layer(12, num_experts=8, hidden=32, inter=48, top_k=2)
    src = write_layer(tmp_path, arrays, meta)
    out, _ = compress(tmp_path, src, "")
    x = random_tokens(13, 200, 32)
    want, _ = ref.routing(ref.load_layer(_dump_of(tmp_path, src)), x)
    got, _ = ref.routing(ref.load_layer(out / "layer_0.npz"), x)
    np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(want, axis=1))


@pytest.mark.parametrize("score", ["mass", "mean-row"])
def test_hierarchical_agreement_is_reported(tmp_path, score):
    arrays, meta = random_layer(14, num_experts=8, hidden=32, inter=48, top_k=2)
    src = write_layer(tmp_path, arrays, meta)
    calib = tmp_path / "calib.npy"
    x = random_tokens(15, 128, 32)
    np.save(calib, x)
    out, rep = compress(tmp_path, src, f"routing=hierarchical cluster-score={score} "
                                       f"calibration={calib}")
    entry = rep["layers"][0]
    assert entry["routing"]["mode"] == "hierarchical"
    # The reported agreement is what the evaluator measures on the dumps.
    want, _ = ref.routing(ref.load_layer(_dump_of(tmp_path, src)), x)
    got, _ = ref.routing(ref.load_layer(out / "layer_0.npz"), x)
    same = np.mean([set(a) == set(b) for a, b in zip(want.tolist(), got.tolist())])
    agreement = entry["calibration"]["routing_agreement"]["exact_set_match"]
    assert abs(agreement - same) <= 1.5 / len(x)
    # ... and so is the output error.
    orig = ref.evaluate(ref.load_layer(_dump_of(tmp_path, src)), x)
    comp = ref.evaluate(ref.load_layer(out / "layer_0.npz"), x)
    assert abs(entry["calibration"]["output_relative_error"] - rel_l2(comp, orig)) <= 1e-3


# ------------------------------------------------------------- report

def test_report_parameter_counts(tmp_path):
    arrays, meta = random_layer(16, num_experts=8, hidden=32, inter=48, biases=True)
    src = write_layer(tmp_path, arrays, meta)
    _, rep = compress(tmp_path, src, "rank=5")
    layer = rep["layers"][0]
    assert rep["format"] == "moe-compression-report" and rep["version"] == 1
    g, h, i = layer["num_clusters"], 32, 48
    for kind, (dout, din) in (("gate", (i, h)), ("up", (i, h)), ("down", (h, i))):
        after = layer["params"]["after"][kind]
        assert after["base"] == g * dout * din
        assert after["residual"] == sum(layer["ranks"][kind]) * (din + dout)
        assert layer["params"]["before"][kind] == 8 * dout * din
        assert all(0 <= e < 1 for e in layer["reconstruction_error"][kind])
    assert layer["params"]["before"]["router"] == 8 * h
    assert layer["params"]["before"]["bias"] == 8 * (i + i + h)
    # Default storage: fp16 bases (2 bytes), int4 factors with f16 scales and
    # uint8 zero points per 32-element group.
    assert layer["bytes"]["after"]["up"]["base"] == 2 * g * i * h
    assert len(layer["similarity"]) == 8
