"""moe-run through its command line, on the runtime's fixture artifact.

``runtime-fixture DIR`` (built with the runtime's unit tests) compiles
unittests/Runtime/fixture_model.c with the system C compiler and wraps it
as DIR/model.moe, so these tests need no compiler. The fixture computes,
for x f32 [tokens, 8] and offset i64 [tokens]:
y = x * w + 1 + offset (w[h] = 0.5 (h + 1)), yt = 2 y^T, count = tokens,
and records routing: layer 0 picks experts t % 4 and (3t + 1) % 4 (clusters
{0, 1} and {2, 3}), layer 1 picks t % 3.
"""

import json
import os
import struct
import subprocess

import numpy as np
import pytest

from tools import run_tool, tool

HIDDEN = 8
W = (0.5 * (np.arange(HIDDEN) + 1)).astype(np.float32)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    d = tmp_path_factory.mktemp("moe-run")
    run_tool("runtime-fixture", d)
    return d


def moe_run(*args):
    return run_tool("moe-run", *args, check=False)


def inputs(d, tokens, name="in"):
    t = np.arange(tokens, dtype=np.float32)[:, None]
    h = np.arange(HIDDEN, dtype=np.float32)[None, :]
    x = (t - h / np.float32(4)).astype(np.float32)
    offset = np.arange(tokens, dtype=np.int64) % 5
    xp, op = d / f"{name}_x.npy", d / f"{name}_offset.npy"
    np.save(xp, x)
    np.save(op, offset)
    return x, offset, ["--input", f"x={xp}", "--input", f"offset={op}"]


def expected_y(x, offset):
    return (x * W + np.float32(1)) + offset.astype(np.float32)[:, None]


def assert_error(proc, *parts, code=1):
    """A failure: exit code `code`, one line on stderr naming `parts`."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("moe-run: error: "), lines[0]
    for part in parts:
        assert part in lines[0], (part, lines[0])


def test_describe(fixture):
    proc = moe_run(fixture / "model.moe", "--describe")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "producer: runtime fixture" in out
    assert "entry: moe_entry" in out
    for line in ["x       f32   [tokens, 8]", "offset  i64   [tokens]",
                 "y       f32   [tokens, 8]", "yt      f32   [8, tokens]",
                 "count   i64   []", "weights: 2 (36 bytes)"]:
        assert line in out, (line, out)


@pytest.mark.parametrize("tokens", [0, 1, 7, 64, 513])
def test_run_writes_exact_outputs(fixture, tmp_path, tokens):
    x, offset, args = inputs(tmp_path, tokens)
    proc = moe_run(fixture / "model.moe", *args,
                   "--output", f"y={tmp_path / 'y.npy'}",
                   f"--output=yt={tmp_path / 'yt.npy'}",
                   "--output", f"count={tmp_path / 'count.npy'}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and y.shape == (tokens, HIDDEN)
    np.testing.assert_array_equal(y, expected_y(x, offset))
    yt = np.load(tmp_path / "yt.npy")
    np.testing.assert_array_equal(yt, 2 * expected_y(x, offset).T)
    count = np.load(tmp_path / "count.npy")
    assert count.dtype == np.int64 and count.shape == () and count == tokens


def test_outputs_not_asked_for_are_still_computed(fixture, tmp_path):
    _, _, args = inputs(tmp_path, 5)
    proc = moe_run(fixture / "model.moe", *args,
                   "--output", f"count={tmp_path / 'count.npy'}")
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "count.npy") == 5
    assert sorted(os.listdir(tmp_path)) == ["count.npy", "in_offset.npy", "in_x.npy"]


@pytest.mark.parametrize("threads", ["0", "1", "2", "64"])
def test_threads(fixture, tmp_path, threads):
    x, offset, args = inputs(tmp_path, 100)
    proc = moe_run(fixture / "model.moe", *args, "--threads", threads,
                   "--output", f"y={tmp_path / 'y.npy'}")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected_y(x, offset))


def test_bench_prints_one_json_line_last(fixture, tmp_path):
    _, _, args = inputs(tmp_path, 33)
    proc = moe_run(fixture / "model.moe", *args, "--bench", "7")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    bench = json.loads(line)
    assert set(bench) == {"runs", "batches", "tokens", "median_ms", "p90_ms", "min_ms",
                          "tokens_per_s"}
    assert bench["runs"] == 7 and bench["tokens"] == 33 and bench["batches"] == 1
    assert 0 < bench["min_ms"] <= bench["median_ms"] <= bench["p90_ms"]
    assert bench["tokens_per_s"] == pytest.approx(33 / (bench["median_ms"] / 1000), rel=1e-3)


def test_batches_run_each_slice_and_stack_the_outputs(fixture, tmp_path):
    """--batches: every input's first axis indexes separate runs (here 5
    batches of 3 tokens); each output file stacks the 5 results, and
    --bench cycles over the batches."""
    xs, offsets = [], []
    for b in range(5):
        x, offset, _ = inputs(tmp_path, 3)
        xs.append(x + np.float32(10 * b))
        offsets.append(offset + b)
    xp, op = tmp_path / "xs.npy", tmp_path / "offsets.npy"
    np.save(xp, np.stack(xs))
    np.save(op, np.stack(offsets))
    proc = moe_run(fixture / "model.moe", "--batches", "--input", f"x={xp}",
                   "--input", f"offset={op}", "--output", f"y={tmp_path / 'y.npy'}",
                   "--output", f"count={tmp_path / 'count.npy'}",
                   "--bench", "4", "--warmup", "0")
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (5, 3, HIDDEN)
    for b in range(5):
        np.testing.assert_array_equal(y[b], expected_y(xs[b], offsets[b]))
    np.testing.assert_array_equal(np.load(tmp_path / "count.npy"), [3] * 5)
    bench = json.loads(proc.stdout.strip().splitlines()[-1])
    assert bench["batches"] == 5 and bench["tokens"] == 3 and bench["runs"] == 4


def test_batch_errors(fixture, tmp_path):
    model = fixture / "model.moe"
    x, offset, _ = inputs(tmp_path, 3)
    xp, op, scalar = tmp_path / "xs.npy", tmp_path / "os.npy", tmp_path / "s.npy"
    np.save(xp, np.stack([x, x]))
    np.save(op, np.stack([offset] * 3))
    np.save(scalar, np.float32(1))
    assert_error(moe_run(model, "--batches", "--input", f"x={xp}", "--input", f"offset={op}"),
                 "--batches: --input offset has 3 batches, --input x 2")
    assert_error(moe_run(model, "--batches", "--input", f"x={scalar}", "--input", f"offset={op}"),
                 "--input x", "has no batches")
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 3, HIDDEN), np.float32))
    assert_error(moe_run(model, "--batches", "--input", f"x={empty}", "--input", f"offset={op}"),
                 "--input x", "has no batches")
    assert_error(moe_run(model, "--warmup", "-1"), "--warmup wants an integer >= 0", code=2)


def cv(counts):
    counts = np.asarray(counts, dtype=np.float64)
    return 0.0 if counts.mean() == 0 else counts.std() / counts.mean()


def test_profile_json(fixture, tmp_path):
    tokens = 10
    _, _, args = inputs(tmp_path, tokens)
    path = tmp_path / "profile.json"
    proc = moe_run(fixture / "model.moe", *args, "--profile", path, "--bench", "2")
    assert proc.returncode == 0, proc.stderr
    profile = json.loads(path.read_text())
    assert profile["format"] == "moe-routing-profile"
    assert profile["version"] == 1
    assert profile["runs"] == 1  # the first run only, not the bench runs
    assert profile["ignored_selections"] == 1  # layer 7 is not in the model
    l0, l1 = profile["layers"]
    t = np.arange(tokens)
    picks = np.stack([t % 4, (3 * t + 1) % 4], axis=1)
    per_expert = np.bincount(picks.ravel(), minlength=4)
    assert l0["index"] == 0 and l0["name"] == "block0.moe"
    assert (l0["num_experts"], l0["top_k"], l0["num_clusters"]) == (4, 2, 2)
    assert l0["tokens"] == tokens
    assert l0["tokens_per_expert"] == per_expert.tolist()
    cluster = np.array([0, 0, 1, 1])
    per_cluster = [int(sum((cluster[p] == c).any() for p in picks)) for c in (0, 1)]
    assert l0["tokens_per_cluster"] == per_cluster
    co = np.zeros((4, 4), dtype=int)
    for p in picks:
        for i in p:
            for j in p:
                co[i, j] += 1
    assert l0["coselection"] == co.tolist()
    assert l0["expert_load_cv"] == pytest.approx(cv(per_expert), rel=1e-12)
    assert l0["cluster_load_cv"] == pytest.approx(cv(per_cluster), rel=1e-12)
    assert l1["tokens_per_expert"] == np.bincount(t % 3, minlength=3).tolist()
    assert l1["tokens_per_cluster"] is None and l1["cluster_load_cv"] is None
    assert l1["expert_load_cv"] == pytest.approx(cv(np.bincount(t % 3)), rel=1e-12)


# ---------------------------------------------------------------- errors


def bad_input(tmp_path, name, array):
    path = tmp_path / f"bad_{name}.npy"
    np.save(path, array)
    return path


def test_input_errors(fixture, tmp_path):
    model = fixture / "model.moe"
    x, offset, args = inputs(tmp_path, 4)
    xp, op = args[1].split("=", 1)[1], args[3].split("=", 1)[1]
    assert_error(moe_run(model, "--input", f"z={xp}", "--input", f"offset={op}"),
                 "unknown input 'z'", "x, offset")
    assert_error(moe_run(model, "--input", f"x={bad_input(tmp_path, 'f64', x.astype(np.float64))}",
                         "--input", f"offset={op}"),
                 "input 'x': dtype f64, expected f32")
    assert_error(moe_run(model, "--input", f"x={bad_input(tmp_path, 'r3', x[None])}",
                         "--input", f"offset={op}"),
                 "input 'x': rank 3, expected 2")
    assert_error(moe_run(model, "--input", f"x={bad_input(tmp_path, 'd9', np.zeros((4, 9), np.float32))}",
                         "--input", f"offset={op}"),
                 "input 'x': dim 1 is 9, expected 8")
    assert_error(moe_run(model, "--input", f"x={xp}",
                         "--input", f"offset={bad_input(tmp_path, 'o5', np.zeros(5, np.int64))}"),
                 "input 'offset': dim 0 (tokens) is 5", "tokens 4")
    assert_error(moe_run(model, "--input", f"x={xp}"), "missing input 'offset'")
    assert_error(moe_run(model, *args, "--input", f"x={xp}"), "input 'x' is given twice")
    assert_error(moe_run(model, "--input", f"x={tmp_path / 'nope.npy'}", "--input", f"offset={op}"),
                 "--input x", "nope.npy")
    assert_error(moe_run(model, "--input", f"x={bad_input(tmp_path, 'c8', np.zeros((4, 8), np.complex64))}",
                         "--input", f"offset={op}"),
                 "'<c8'", "does not read")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy")
    assert_error(moe_run(model, "--input", f"x={garbage}", "--input", f"offset={op}"),
                 "not a valid .npy file")


def test_output_and_usage_errors(fixture, tmp_path):
    model = fixture / "model.moe"
    _, _, args = inputs(tmp_path, 4)
    assert_error(moe_run(model, *args, "--output", f"nope={tmp_path / 'n.npy'}"),
                 "--output nope: the model has no such output", "y, yt, count", code=2)
    assert_error(moe_run(model, *args, "--output", "y=a.npy", "--output", "y=b.npy"),
                 "--output y is given twice", code=2)
    assert_error(moe_run(model, *args, "--output", f"y={tmp_path / 'no' / 'dir.npy'}"),
                 "--output y", "cannot open")
    assert_error(moe_run(model, *args, "--bench", "0"), "--bench wants an integer >= 1", code=2)
    assert_error(moe_run(model, *args, "--threads", "x"), "--threads", code=2)
    assert_error(moe_run(model, "--input", "x"), "--input wants NAME=FILE.npy", code=2)
    assert_error(moe_run(model, "--frobnicate"), "unknown option '--frobnicate'", code=2)
    assert_error(moe_run(model, "--bench"), "--bench needs a value", code=2)
    assert_error(moe_run(), "no model given", code=2)
    assert_error(moe_run(model, model), "more than one model", code=2)
    help_ = moe_run("--help")
    assert help_.returncode == 0 and "usage: moe-run" in help_.stdout


def header(data):
    magic, version, size, moff, msize, mcheck, fsize = struct.unpack_from("<8sIIQQQQ", data)
    return dict(version=version, manifest_offset=moff, manifest_size=msize, file_size=fsize)


def damaged(fixture, tmp_path, edit):
    data = bytearray((fixture / "model.moe").read_bytes())
    edit(data)
    path = tmp_path / "damaged.moe"
    path.write_bytes(bytes(data))
    return path


def test_damaged_artifacts(fixture, tmp_path):
    _, _, args = inputs(tmp_path, 4)
    h = header((fixture / "model.moe").read_bytes())
    code_size = (fixture / "fixture.so").stat().st_size
    weights_at = (4096 + code_size + 4095) // 4096 * 4096  # section "weights", w first

    def flip(at):
        def edit(d):
            d[at] ^= 0x04
        return edit

    cases = [
        (flip(h["manifest_offset"] + 3), ["checksum mismatch in the manifest"]),
        (flip(4096 + 200), ["checksum mismatch in section 'host_code'"]),
        (flip(weights_at + 1), ["checksum mismatch in weight 'w'"]),
        (lambda d: d.__delitem__(slice(len(d) - 10, None)), ["is truncated", "its header says"]),
        (lambda d: d.__setitem__(slice(0, 3), b"ELF"), ["not a moe-mlir artifact", "bad magic"]),
        (lambda d: struct.pack_into("<I", d, 8, 7), ["format version 7", "newer than this runtime"]),
        (lambda d: struct.pack_into("<Q", d, 16, h["file_size"]), ["the manifest", "outside the file"]),
    ]
    for edit, parts in cases:
        path = damaged(fixture, tmp_path, edit)
        assert_error(moe_run(path, *args), "damaged.moe", *parts)
        assert_error(moe_run(path, "--describe"), *parts)
    # --no-checksums takes a damaged weight as it is.
    path = damaged(fixture, tmp_path, flip(weights_at + 1))
    assert moe_run(path, *args, "--no-checksums").returncode == 0
    assert_error(moe_run(tmp_path / "missing.moe", *args), "cannot open")
    assert_error(moe_run(tmp_path, *args), "not a regular file")


def test_cpu_feature_the_host_lacks(fixture, tmp_path):
    _, _, args = inputs(tmp_path, 4)
    assert_error(moe_run(fixture / "needs-feature.moe", *args),
                 "compiled for x86-64-v9", "moe-imaginary-feature")


def test_moe_run_is_self_contained():
    """moe-run needs glibc only: no LLVM, MLIR, protobuf or libstdc++."""
    proc = subprocess.run(["ldd", tool("moe-run")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for lib in ["LLVM", "MLIR", "protobuf", "libstdc++"]:
        assert lib not in proc.stdout, proc.stdout
