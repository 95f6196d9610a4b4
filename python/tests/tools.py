"""Finding and running the project's C++ tools from pytest.

The tools are part of the project, so a missing tool is a failure, not a
skip: MOE_OPT names moe-opt, else MOE_MLIR_BUILD (set by ctest) or the
repository's build/ folder holds it in bin/.
"""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tool(name):
    env = os.environ.get(name.upper().replace("-", "_"))
    if env:
        return env
    build = os.environ.get("MOE_MLIR_BUILD") or os.path.join(REPO, "build")
    path = os.path.join(build, "bin", name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f"{path} not found: build the project first (scripts/build.sh)")
    return path


def run_tool(name, *args, check=True):
    """Runs one of the project's tools; returns the CompletedProcess
    (stdout/stderr as text), raising with its stderr when check fails."""
    proc = subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def moe_opt(*args, check=True):
    return run_tool("moe-opt", *args, check=check)


def moe_translate(*args, check=True):
    return run_tool("moe-translate", *args, check=check)


def import_and_raise(tmp_path, model_path, *passes):
    """Imports the ONNX file with moe-translate, runs moe-opt with
    ``passes`` and dumps the layers; returns moe-opt's CompletedProcess
    (the IR on stdout, diagnostics on stderr) and the dumps, in order."""
    mlir = tmp_path / "imported.mlir"
    moe_translate("--import-onnx", model_path, "-o", mlir)
    dump = tmp_path / "dump"
    proc = moe_opt(mlir, *passes, f"--moe-dump-layers={dump}")
    layers = list(dump.glob("layer_*.npz")) if dump.exists() else []
    return proc, sorted(layers, key=lambda p: int(p.stem.split("_")[-1]))


def rel_l2(got, want):
    """Relative L2 error of ``got`` against ``want`` (same number of
    elements), in float64; the absolute error where ``want`` is zero."""
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64).reshape(got.shape)
    den = float(np.linalg.norm(want))
    num = float(np.linalg.norm(got - want))
    return num / den if den else num


def moe_compile(*args, check=True):
    return run_tool("moe-compile", *args, check=check)


def moe_run(*args, check=True):
    return run_tool("moe-run", *args, check=check)


def _protobuf_fields(data):
    """The (field number, value) pairs of one protobuf message, in order:
    varints as int, length-delimited fields as bytes, fixed64/fixed32 as
    bytes. Enough wire format to read an artifact's manifest without
    generated code."""

    def varint(i):
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, i

    fields, i = [], 0
    while i < len(data):
        key, i = varint(i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        elif wire == 2:
            size, i = varint(i)
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def artifact_layout(path):
    """The header and the manifest's sections and weights of an artifact
    (docs/artifact.md): ``{"header": {...}, "sections": [...],
    "weights": [...]}``, each section ``{kind, name, offset, size}`` (kind
    1 = HOST_CODE, 2 = WEIGHTS; offset from the start of the file), each
    weight ``{name, section, offset, size, role}`` (offset within its
    section)."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    magic, version, header_size, m_off, m_size, m_sum, file_size = struct.unpack_from(
        "<8sIIQQQQ", data, 0)
    header = {"magic": magic, "format_version": version, "header_size": header_size,
              "manifest_offset": m_off, "manifest_size": m_size, "file_size": file_size}
    sections, weights = [], []
    for number, value in _protobuf_fields(data[m_off:m_off + m_size]):
        if number == 7:
            f = dict(_protobuf_fields(value))
            sections.append({"kind": f.get(1, 0), "name": f.get(2, b"").decode(),
                             "offset": f.get(3, 0), "size": f.get(4, 0)})
        elif number == 8:
            f = dict(_protobuf_fields(value))
            weights.append({"name": f.get(1, b"").decode(), "section": f.get(4, 0),
                            "offset": f.get(5, 0), "size": f.get(6, 0),
                            "role": f.get(10, b"").decode()})
    return {"header": header, "sections": sections, "weights": weights}
