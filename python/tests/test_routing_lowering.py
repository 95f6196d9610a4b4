"""--convert-moe-to-linalg's routing checked by numbers: for each router
setting of ``#moe.routing`` beyond Mixtral's (sparsemixer; sigmoid with a
selection bias, expert groups, an epsilon and a scale; softmax with a
selection bias and a floor; top-1 sigmoid with the weight on the input;
Mixtral's own as a control), a small ``moe.layer`` with random weights as
dense constants is lowered with moe-opt, compiled with LLVM 22's
mlir-translate and clang, run through its C interface (the helpers of
test_onnx_lowering_jit.py) on random tokens, and compared with a float64
NumPy transcription of the routing formulas (relative L2 <= 1e-5). The
same check covers experts stored as INT4 and INT8 codes (both nibble
orders, with and without zero points, by groups and whole rows), the
storage whose single rows take the per-group-scaled decode kernel.

Python: the ``python3`` on PATH (numpy).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import record_error  # noqa: E402
from test_onnx_lowering_jit import LLVM_BIN, LLVM_LIB, run_compiled, signature  # noqa: E402
from tools import rel_l2, tool  # noqa: E402

H, I = 32, 16
TOKENS = (1, 7, 64)

# From moe.layer to the LLVM dialect (the host code's passes, without the
# runtime's thread pool: foralls become plain loops).
LOWER = [
    "--convert-moe-to-linalg", "--canonicalize", "--cse",
    "--one-shot-bufferize=bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map",
    "--cse", "--canonicalize", "--scf-forall-to-for",
    "--llvm-request-c-wrappers",
    "--convert-linalg-to-loops", "--convert-vector-to-scf", "--expand-strided-metadata",
    "--lower-affine", "--convert-scf-to-cf", "--arith-expand",
    "--convert-math-to-llvm", "--convert-math-to-libm", "--convert-vector-to-llvm",
    "--convert-arith-to-llvm", "--finalize-memref-to-llvm", "--convert-func-to-llvm",
    "--convert-cf-to-llvm", "--convert-ub-to-llvm", "--reconcile-unrealized-casts",
]

# name -> (experts, routing parameters, selection bias scale, extras)
CONFIGS = {
    # PhiMoE (eval).
    "sparsemixer": dict(E=16, routing=dict(top_k=2, scoring="sparsemixer",
                                           order="score_then_topk", normalize=False,
                                           mixer_epsilon=0.05)),
    # DeepSeek-V3: sigmoid, bias, 4 groups of 4, 2 kept, top 4.
    "deepseek": dict(E=16, bias=0.1,
                     routing=dict(top_k=4, scoring="sigmoid", order="score_then_topk",
                                  normalize=True, groups=4, groups_kept=2, scale=2.5,
                                  norm_epsilon=1e-20)),
    # Ernie 4.5: softmax, bias, floor.
    "ernie": dict(E=8, bias=0.1,
                  routing=dict(top_k=2, scoring="softmax", order="score_then_topk",
                               normalize=True, norm_floor=1e-12)),
    # Llama 4: top-1 sigmoid, the weight scales the input; a down bias.
    "llama4": dict(E=16, down_bias=True,
                   routing=dict(top_k=1, scoring="sigmoid", order="topk_then_score",
                                normalize=False, weights_on_input=True)),
    # Mixtral, the control.
    "mixtral": dict(E=8, router_bias=True,
                    routing=dict(top_k=2, scoring="softmax", order="score_then_topk",
                                 normalize=True)),
}


def make_layer(name, seed=0):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    e = cfg["E"]
    f32 = np.float32
    w = {
        # Logits of a few units, so scores spread over (0, 1).
        "router": (rng.standard_normal((e, H)) * 2.0 / np.sqrt(H)).astype(f32),
        "gate": (rng.standard_normal((e, I, H)) / np.sqrt(H)).astype(f32),
        "up": (rng.standard_normal((e, I, H)) / np.sqrt(H)).astype(f32),
        "down": (rng.standard_normal((e, H, I)) / np.sqrt(I)).astype(f32),
    }
    if cfg.get("router_bias"):
        w["router_bias"] = (rng.standard_normal(e) * 0.5).astype(f32)
    if cfg.get("bias"):
        # Of the size of the differences between scores: it moves picks.
        w["selection_bias"] = (rng.standard_normal(e) * cfg["bias"]).astype(f32)
    if cfg.get("down_bias"):
        w["down_bias"] = (rng.standard_normal((e, H)) * 0.5).astype(f32)
    return w


def tensor_type(a):
    return "tensor<" + "x".join(map(str, a.shape)) + "xf32>"


def dense(a):
    return f'arith.constant dense<"0x{np.ascontiguousarray(a, "<f4").tobytes().hex().upper()}"> : ' \
        + tensor_type(a)


def routing_attr(params):
    parts = []
    for key, value in params.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, float):
            value = f"{value:.17e}"
        parts.append(f"{key} = {value}")
    return "#moe.routing<" + ", ".join(parts) + ">"


def module_text(name, w):
    routing = CONFIGS[name]["routing"]
    lines = ["func.func @main_graph(%arg0: tensor<?x32xf32>) -> tensor<?x32xf32> {"]
    for key, a in w.items():
        lines.append(f"  %{key} = {dense(a)}")
    operands = ["%arg0", "%router"]
    types = ["tensor<?x32xf32>", tensor_type(w["router"])]
    for key, word in (("router_bias", "router_bias"), ("selection_bias", "selection_bias"),
                      ("gate", "gate"), ("up", "up"), ("down", "down"),
                      ("down_bias", "down_bias")):
        if key in w:
            operands.append(f"{word} %{key}")
            types.append(tensor_type(w[key]))
    lines.append(f"  %y = moe.layer {operands[0]}, {' '.join(operands[1:2])} "
                 f"{' '.join(operands[2:])} {{activation = #moe.activation<silu>, "
                 f"routing = {routing_attr(routing)}}} : ({', '.join(types)}) -> tensor<?x32xf32>")
    lines.append("  return %y : tensor<?x32xf32>")
    lines.append("}")
    return "\n".join(lines) + "\n"


def compile_module(text, work):
    mlir, llvm_mlir = work / "layer.mlir", work / "layer.llvm.mlir"
    ll, so = work / "layer.ll", work / "layer.so"
    mlir.write_text(text)
    steps = [
        [tool("moe-opt"), mlir, *LOWER, "-o", llvm_mlir],
        [os.path.join(LLVM_BIN, "mlir-translate"), "--mlir-to-llvmir", llvm_mlir, "-o", ll],
        [os.path.join(LLVM_BIN, "clang"), "-O1", "-shared", "-fPIC", "-w", ll, "-o", so,
         "-L" + LLVM_LIB, "-Wl,-rpath," + LLVM_LIB, "-lmlir_c_runner_utils", "-lm"],
    ]
    for step in steps:
        proc = subprocess.run([str(s) for s in step], capture_output=True, text=True)
        assert proc.returncode == 0, f"{os.path.basename(str(step[0]))}: {proc.stderr[:3000]}"
    return str(so), signature(text)


RANK = 2


def clustered(w, cluster_size=4, seed=2):
    """The layer as a moe.clustered_layer: clusters of `cluster_size`
    experts, random bases and rank-2 factors per expert; returns the
    operands and the float64 expert weights they stand for."""
    rng = np.random.default_rng(seed)
    e = w["router"].shape[0]
    assignment = [i // cluster_size for i in range(e)]
    ops, dense_w = {}, {}
    for kind, (out, inn) in (("gate", (I, H)), ("up", (I, H)), ("down", (H, I))):
        base = (rng.standard_normal((e // cluster_size, out, inn)) / np.sqrt(inn)).astype(np.float32)
        u = (rng.standard_normal((e * RANK, out)) * 0.5).astype(np.float32)
        v = (rng.standard_normal((e * RANK, inn)) * 0.5 / np.sqrt(inn)).astype(np.float32)
        ops[kind] = (base, u, v)
        b64, u64, v64 = (a.astype(np.float64) for a in (base, u, v))
        dense_w[kind] = np.stack([b64[assignment[x]] + u64[RANK * x:RANK * (x + 1)].T
                                  @ v64[RANK * x:RANK * (x + 1)] for x in range(e)])
    return assignment, ops, dense_w


def clustered_module_text(name, w, assignment, ops,
                          cluster_routing="#moe.cluster_routing<mode = exact>"):
    routing = CONFIGS[name]["routing"]
    e = len(assignment)
    lines = ["func.func @main_graph(%arg0: tensor<?x32xf32>) -> tensor<?x32xf32> {"]
    operands, types = ["%arg0, %router"], ["tensor<?x32xf32>", tensor_type(w["router"])]
    lines.append(f"  %router = {dense(w['router'])}")
    for key in ("router_bias", "selection_bias"):
        if key in w:
            lines.append(f"  %{key} = {dense(w[key])}")
            operands.append(f"{key} %{key}")
            types.append(tensor_type(w[key]))
    for kind, arrays in ops.items():
        names = []
        for part, a in zip(("base", "u", "v"), arrays):
            lines.append(f"  %{kind}_{part} = {dense(a)}")
            names.append(f"%{kind}_{part}")
            types.append(tensor_type(a))
        operands.append(f"{kind} " + ", ".join(names))
    if "down_bias" in w:
        lines.append(f"  %down_bias = {dense(w['down_bias'])}")
        operands.append("down_bias %down_bias")
        types.append(tensor_type(w["down_bias"]))
    ranks = "array<i64: " + ", ".join([str(RANK)] * e) + ">"
    lines.append(
        f"  %y = moe.clustered_layer {' '.join(operands)} {{activation = #moe.activation<silu>, "
        f"assignment = array<i64: {', '.join(map(str, assignment))}>, "
        f"cluster_routing = {cluster_routing}, routing = {routing_attr(routing)}, "
        f"gate_ranks = {ranks}, up_ranks = {ranks}, down_ranks = {ranks}}} "
        f": ({', '.join(types)}) -> tensor<?x32xf32>")
    lines.append("  return %y : tensor<?x32xf32>")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- The float64 reference, transcribed from the routing formulas. ---

def softmax(v):
    v = np.asarray(v, np.float64)
    ex = np.exp(v - np.max(v))
    return ex / ex.sum()


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, np.float64)))


def top(values, k):
    """Indices of the k largest values, ties to the lower index."""
    return [int(i) for i in np.argsort(-np.asarray(values), kind="stable")[:k]]


def route(z, p, bias=None, use_groups=True):
    """Selected experts and weights of one token with logits z (float64)."""
    e = len(z)
    k = p["top_k"]
    if p["scoring"] == "sparsemixer":
        eps = p.get("mixer_epsilon", 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            m1, i1 = np.max(z), int(np.argmax(z))
            f1 = np.maximum(np.abs(z), m1)
            masked1 = np.where((m1 - z) / f1 > 2 * eps, -np.inf, z)
            w1 = softmax(masked1)[i1]
            l2 = z.copy()
            l2[i1] = -np.inf
            m2, i2 = np.max(l2), int(np.argmax(l2))
            f2 = np.maximum(np.abs(z), m2)
            masked2 = np.where((m2 - z) / f2 > 2 * eps, -np.inf, l2)
            w2 = softmax(masked2)[i2]
        ids, w = [i1, i2], np.array([w1, w2])
    elif p["order"] == "topk_then_score":
        ids = top(z, k)
        w = softmax(z[ids]) if p["scoring"] == "softmax" else sigmoid(z[ids])
    else:
        s = softmax(z) if p["scoring"] == "softmax" else sigmoid(z)
        groups = p.get("groups", 1) if use_groups else 1
        if bias is None and groups == 1:
            ids = top(z, k)
        else:
            c = s + (0.0 if bias is None else bias)
            allowed = np.ones(e, bool)
            if groups > 1:
                n = e // groups
                score = [np.sum(np.sort(c[g * n:(g + 1) * n])[-2:]) for g in range(groups)]
                kept = top(score, p["groups_kept"])
                allowed = np.isin(np.arange(e) // n, kept)
            ids = top(np.where(allowed, c, -np.inf), k)
        w = s[ids]
    if p.get("normalize"):
        w = w / max(w.sum() + p.get("norm_epsilon", 0.0), p.get("norm_floor", 0.0))
    return ids, w * p.get("scale", 1.0)


def silu(v):
    return v / (1.0 + np.exp(-v))


def reference(x, w, p, keep_clusters=None):
    """y (float64) and the logits; `keep_clusters` = (assignment, count):
    hierarchical routing, the `count` clusters of largest log-sum-exp of
    their logits kept, the others' experts at -inf logits."""
    x = x.astype(np.float64)
    wd = {key: a.astype(np.float64) for key, a in w.items()}
    logits = x @ wd["router"].T + wd.get("router_bias", 0.0)
    bias = wd.get("selection_bias")
    y = np.zeros_like(x)
    for t in range(x.shape[0]):
        z = logits[t]
        if keep_clusters:
            assignment, count = keep_clusters
            a = np.asarray(assignment)
            mass = [np.logaddexp.reduce(z[a == c]) for c in range(a.max() + 1)]
            z = np.where(np.isin(a, top(mass, count)), z, -np.inf)
        ids, weights = route(z, p, bias)
        for e, wt in zip(ids, weights):
            inp, outw = (wt * x[t], 1.0) if p.get("weights_on_input") else (x[t], wt)
            h = silu(wd["gate"][e] @ inp) * (wd["up"][e] @ inp)
            o = wd["down"][e] @ h
            if "down_bias" in wd:
                o = o + wd["down_bias"][e]
            y[t] += outw * o
    return y, logits


@pytest.mark.parametrize("name", list(CONFIGS))
def test_routing_matches_reference(tmp_path, name):
    w = make_layer(name)
    p = CONFIGS[name]["routing"]
    so, sig = compile_module(module_text(name, w), tmp_path)
    rng = np.random.default_rng(1)
    for t in TOKENS:
        x = rng.standard_normal((t, H)).astype(np.float32)
        got = run_compiled(so, sig, [x])[0]
        want, _ = reference(x, w, p)
        err = rel_l2(got, want)
        record_error(f"routing lowering {name}", err)
        assert err <= 1e-5, f"{name}, T={t}: rel L2 {err:.3g}"


def picks(logits, p, bias, use_groups=True):
    return [tuple(route(z, p, bias, use_groups)[0]) for z in logits]


@pytest.mark.parametrize("name", ["deepseek", "ernie"])
def test_selection_bias_changes_picks(name):
    """The settings above exercise the bias: without it some token would
    pick other experts."""
    w = make_layer(name)
    p = CONFIGS[name]["routing"]
    x = np.random.default_rng(1).standard_normal((64, H)).astype(np.float32)
    _, logits = reference(x, w, p)
    with_bias = picks(logits, p, w["selection_bias"].astype(np.float64))
    assert with_bias != picks(logits, p, None)


def test_groups_change_picks():
    w = make_layer("deepseek")
    p = CONFIGS["deepseek"]["routing"]
    x = np.random.default_rng(1).standard_normal((64, H)).astype(np.float32)
    _, logits = reference(x, w, p)
    bias = w["selection_bias"].astype(np.float64)
    assert picks(logits, p, bias) != picks(logits, p, bias, use_groups=False)


def test_sparsemixer_mask_is_exercised():
    """Some tokens share the first weight with a near-maximal logit, others
    keep it alone (weight 1)."""
    w = make_layer("sparsemixer")
    p = CONFIGS["sparsemixer"]["routing"]
    x = np.random.default_rng(1).standard_normal((64, H)).astype(np.float32)
    _, logits = reference(x, w, p)
    first = np.array([route(z, p)[1][0] for z in logits])
    assert np.any(first == 1.0) and np.any(first < 1.0)


@pytest.mark.parametrize("name", ["llama4", "deepseek", "sparsemixer"])
def test_clustered_routing_matches_reference(tmp_path, name):
    """The same routers on a moe.clustered_layer (bases shared by clusters
    of 4, rank-2 residuals): the selection bias comes through, and the
    input weight scales base plus residual products."""
    w = make_layer(name)
    p = CONFIGS[name]["routing"]
    assignment, ops, dense_w = clustered(w)
    so, sig = compile_module(clustered_module_text(name, w, assignment, ops), tmp_path)
    want_w = dict(w, **dense_w)
    rng = np.random.default_rng(3)
    for t in TOKENS:
        x = rng.standard_normal((t, H)).astype(np.float32)
        got = run_compiled(so, sig, [x])[0]
        want, _ = reference(x, want_w, p)
        err = rel_l2(got, want)
        record_error(f"routing lowering clustered {name}", err)
        assert err <= 1e-5, f"clustered {name}, T={t}: rel L2 {err:.3g}"


def test_hierarchical_sparsemixer_matches_reference(tmp_path):
    """Hierarchical cluster routing (2 of 4 clusters by mass) before
    sparsemixer: experts outside the kept clusters count as -inf logits."""
    w = make_layer("sparsemixer")
    p = CONFIGS["sparsemixer"]["routing"]
    assignment, ops, dense_w = clustered(w)
    text = clustered_module_text(
        "sparsemixer", w, assignment, ops,
        "#moe.cluster_routing<mode = hierarchical, clusters_per_token = 2, score = mass>")
    so, sig = compile_module(text, tmp_path)
    want_w = dict(w, **dense_w)
    rng = np.random.default_rng(4)
    for t in TOKENS:
        x = rng.standard_normal((t, H)).astype(np.float32)
        got = run_compiled(so, sig, [x])[0]
        want, _ = reference(x, want_w, p, keep_clusters=(assignment, 2))
        err = rel_l2(got, want)
        record_error("routing lowering hierarchical sparsemixer", err)
        assert err <= 1e-5, f"T={t}: rel L2 {err:.3g}"
        if t == 64:
            # Stage 1 matters: without it some token routes elsewhere.
            flat, _ = reference(x, want_w, p)
            assert rel_l2(flat, want) > 1e-3


# --- Integer codes: the decode kernel's deferred per-group scaling. ---

def quantized(a, storage, group, packing, zero_points, rng):
    """Random codes for a stacked (E, out, in) weight: (text of the
    moe.quantized_weight operands, their types, the attribute, the float64
    weight they stand for)."""
    e, out, inn = a.shape
    levels = 16 if storage == "i4" else 256
    groups = -(-inn // group) if group else 1  # a group may outlast the row
    codes = rng.integers(0, levels, size=(e, out, inn)).astype(np.uint8)
    scales = (rng.uniform(0.5, 1.5, size=(e, out, groups)) / levels).astype(np.float16)
    zps = (rng.integers(0, levels, size=(e, out, groups)) if zero_points
           else np.full((e, out, groups), levels // 2)).astype(np.uint8)
    per_col = np.arange(inn) // group if group else np.zeros(inn, np.intp)
    value = (codes.astype(np.float64) - zps[..., per_col]) * scales[..., per_col].astype(np.float64)
    if storage == "i4":
        lo, hi = codes[..., 0::2], codes[..., 1::2]
        data = (lo | (hi << 4)) if packing == "low" else (hi | (lo << 4))
    else:
        data = codes
    arrays = [("i8", data), ("f16", scales)] + ([("i8", zps)] if zero_points else [])
    attr = (f"#moe.quant<storage = {storage}, group_size = {group}, "
            f"symmetric = {'false' if zero_points else 'true'}, scale_type = f16"
            + (", zero_point_type = i8" if zero_points else "")
            + (", packing = high_nibble_first" if packing == "high" else "") + ">")
    return arrays, attr, value


def quantized_module_text(w, specs):
    lines = ["func.func @main_graph(%arg0: tensor<?x32xf32>) -> tensor<?x32xf32> {",
             f"  %router = {dense(w['router'])}"]
    types = ["tensor<?x32xf32>", tensor_type(w["router"])]
    for kind, (arrays, attr, value) in specs.items():
        names, in_types = [], []
        for i, (elem, a) in enumerate(arrays):
            raw = np.ascontiguousarray(a).view(np.uint8 if elem == "i8" else np.float16)
            ty = "tensor<" + "x".join(map(str, a.shape)) + f"x{elem}>"
            lines.append(f'  %{kind}{i} = arith.constant dense<"0x{raw.tobytes().hex().upper()}"> : {ty}')
            names.append(f"%{kind}{i}")
            in_types.append(ty)
        words = [names[0], "scales", names[1]] + (["zero_points", names[2]] if len(names) > 2 else [])
        ty = "tensor<" + "x".join(map(str, value.shape)) + f"xf32, {attr}>"
        lines.append(f"  %{kind} = moe.quantized_weight {' '.join(words)} : "
                     f"({', '.join(in_types)}) -> {ty}")
        types.append(ty)
    routing = routing_attr(CONFIGS["mixtral"]["routing"])
    lines.append(f"  %y = moe.layer %arg0, %router gate %gate up %up down %down "
                 f"{{activation = #moe.activation<silu>, routing = {routing}}} : "
                 f"({', '.join(types)}) -> tensor<?x32xf32>")
    lines += ["  return %y : tensor<?x32xf32>", "}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("storage,group,packing,zero_points", [
    ("i4", 16, "low", True), ("i4", 16, "high", True), ("i4", 0, "low", False),
    ("i8", 8, "low", True), ("i8", 0, "low", False), ("i4", 8, "low", True),
    ("i4", 32, "low", True), ("i8", 32, "low", True)])
def test_quantized_experts_match_reference(tmp_path, storage, group, packing, zero_points):
    """Experts stored as INT4 (both nibble orders) or INT8 codes, with and
    without zero points, by groups or whole rows: single rows (decode) take
    the kernel that scales once per group; groups of 8 INT4 codes are too
    small for it and take the per-code path. Groups of 32 are longer than
    the down projection's rows (16): one group per row there."""
    w = make_layer("mixtral")
    del w["router_bias"]  # the module below has none
    rng = np.random.default_rng(5)
    specs = {kind: quantized(w[kind], storage, group, packing, zero_points, rng)
             for kind in ("gate", "up", "down")}
    so, sig = compile_module(quantized_module_text(w, specs), tmp_path)
    want_w = dict(w, **{kind: spec[2] for kind, spec in specs.items()})
    for t in TOKENS:
        x = rng.standard_normal((t, H)).astype(np.float32)
        got = run_compiled(so, sig, [x])[0]
        want, _ = reference(x, want_w, CONFIGS["mixtral"]["routing"])
        err = rel_l2(got, want)
        record_error(f"quantized lowering {storage} g{group} {packing}", err)
        assert err <= 1e-5, f"{storage} group {group} {packing}, T={t}: rel L2 {err:.3g}"


def test_deep_products_match_reference(tmp_path, monkeypatch):
    """Products deeper than the panel kernel's block of 256 inputs: the down
    projection reads I = 520 inputs (two whole blocks and one of 8), gate
    and up write 520 outputs (a last output tile of 8, clamped duplicate
    rows in the last block of 6), and 200 tokens give the experts whole
    panels of 16 rows."""
    monkeypatch.setattr(sys.modules[__name__], "I", 520)
    w = make_layer("mixtral")
    so, sig = compile_module(module_text("mixtral", w), tmp_path)
    rng = np.random.default_rng(6)
    for t in (7, 200):
        x = rng.standard_normal((t, H)).astype(np.float32)
        got = run_compiled(so, sig, [x])[0]
        want, _ = reference(x, w, CONFIGS["mixtral"]["routing"])
        err = rel_l2(got, want)
        record_error("routing lowering deep products", err)
        assert err <= 1e-5, f"T={t}: rel L2 {err:.3g}"

