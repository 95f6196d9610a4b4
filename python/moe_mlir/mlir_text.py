"""``moe.layer`` as MLIR text with its weights in ``dense_resource`` blobs.

Weights are dump-named arrays (float32, float16, or bfloat16 as uint16 bits
named in ``meta["dtypes"]``); the layer's attributes come from the dump meta.
The syntax is the moe dialect's custom assembly:

    %y = moe.layer %x, %rw [router_bias %rb] [selection_bias %sb] [gate %g]
           up %u down %d
           [gate_bias %gb] [up_bias %ub] [down_bias %db] {attrs} : (types) -> type

A ``dense_resource`` blob is hex: a 4-byte little-endian alignment (the
element size) followed by the raw little-endian data.
"""

import numpy as np

# Keyword operands in the order the op prints them.
_OPERANDS = (("router_bias", "rb"), ("selection_bias", "sb"), ("gate_weight", "g"), ("up_weight", "u"),
             ("down_weight", "d"), ("gate_bias", "gb"), ("up_bias", "ub"),
             ("down_bias", "db"))
_KEYWORDS = {"router_bias": "router_bias", "selection_bias": "selection_bias",
             "gate_weight": "gate", "up_weight": "up",
             "down_weight": "down", "gate_bias": "gate_bias", "up_bias": "up_bias",
             "down_bias": "down_bias"}


def float_literal(v):
    """A float as MLIR reads it: the lexer needs a '.' before any exponent."""
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"{v} has no MLIR float literal")
    s = repr(v)
    if "e" in s and "." not in s.split("e")[0]:
        mant, exp = s.split("e")
        s = f"{mant}.0e{exp}"
    return s


def _elem(arrays, meta, name):
    """(MLIR element type, little-endian bytes, element size)."""
    arr = np.asarray(arrays[name])
    if (meta.get("dtypes") or {}).get(name) == "bfloat16":
        if arr.dtype != np.uint16:
            raise ValueError(f"{name}: bfloat16 must be uint16 bits")
        return "bf16", arr.astype("<u2").tobytes(), 2
    if arr.dtype == np.float32:
        return "f32", arr.astype("<f4").tobytes(), 4
    if arr.dtype == np.float16:
        return "f16", arr.astype("<f2").tobytes(), 2
    raise ValueError(f"{name}: dtype {arr.dtype} has no MLIR writer here")


def _tensor_type(shape, elem):
    dims = "x".join("?" if d is None else str(d) for d in shape)
    return f"tensor<{dims}x{elem}>"


def resource_blob(data, align):
    return "0x" + int(align).to_bytes(4, "little").hex().upper() + data.hex().upper()


def activation_attr(act):
    kind = act["kind"]
    if kind != "swiglu":
        return f"#moe.activation<{kind}>"
    alpha = 1.0 if act.get("alpha") is None else act["alpha"]
    beta = 0.0 if act.get("beta") is None else act["beta"]
    params = f"alpha = {float_literal(alpha)}, beta = {float_literal(beta)}"
    if act.get("limit") is not None:
        params += f", limit = {float_literal(act['limit'])}"
    return f"#moe.activation<swiglu, {params}>"


# The parameters of #moe.routing past normalize, in declaration order, with
# their defaults (omitted from the text, as the dialect prints them).
_ROUTING_EXTRA = (("groups", 1, int), ("groups_kept", 1, int), ("scale", 1.0, float),
                  ("norm_epsilon", 0.0, float), ("norm_floor", 0.0, float),
                  ("mixer_epsilon", 0.0, float), ("weights_on_input", False, bool))


def routing_attr(r):
    params = [f"top_k = {int(r['top_k'])}", f"scoring = {r['scoring']}",
              f"order = {r['order']}", f"normalize = {'true' if r['normalize'] else 'false'}"]
    for name, default, kind in _ROUTING_EXTRA:
        v = r.get(name)
        if v is None or kind(v) == default:
            continue
        if kind is bool:
            params.append(f"{name} = true")
        elif kind is int:
            params.append(f"{name} = {int(v)}")
        else:
            params.append(f"{name} = {float_literal(v)}")
    return f"#moe.routing<{', '.join(params)}>"


def layer_func(arrays, meta, func_name, resource_prefix=""):
    """``func.func`` text of one layer and its resources ``{name: blob}``."""
    hidden = int(meta["hidden"])
    x_elem = _elem(arrays, meta, "router_weight")[0]
    x_type = _tensor_type((None, hidden), x_elem)
    lines, resources = [], {}

    def constant(name, value):
        elem, data, align = _elem(arrays, meta, name)
        res = resource_prefix + name
        resources[res] = resource_blob(data, align)
        ty = _tensor_type(np.shape(arrays[name]), elem)
        lines.append(f"    %{value} = arith.constant dense_resource<{res}> : {ty}")
        return ty

    types = [x_type, constant("router_weight", "rw")]
    operands = ["%x, %rw"]
    for name, value in _OPERANDS:
        if name in arrays:
            types.append(constant(name, value))
            operands.append(f"{_KEYWORDS[name]} %{value}")
    attrs = [f"activation = {activation_attr(meta['activation'])}",
             f"routing = {routing_attr(meta['routing'])}"]
    absent = [bool(a) for a in (meta.get("absent") or [])]
    if any(absent):
        attrs.append("absent = array<i1: " + ", ".join("true" if a else "false" for a in absent) + ">")
    lines.append(f"    %y = moe.layer {' '.join(operands)} {{{', '.join(attrs)}}} : "
                 f"({', '.join(types)}) -> {x_type}")
    lines.append(f"    return %y : {x_type}")
    text = (f"  func.func @{func_name}(%x: {x_type}) -> {x_type} {{\n"
            + "\n".join(lines) + "\n  }\n")
    return text, resources


def module_text(funcs, resources):
    """A module holding ``funcs`` (texts) and the ``resources`` they use."""
    body = "module {\n" + "".join(funcs) + "}\n"
    if not resources:
        return body
    entries = ",\n".join(f"      {name}: \"{blob}\"" for name, blob in resources.items())
    return body + "{-#\n  dialect_resources: {\n    builtin: {\n" + entries + "\n    }\n  }\n#-}\n"


def layer_to_mlir(arrays, meta, func_name="moe_layer", resource_prefix=""):
    """Module text of one ``moe.layer`` with ``dense_resource`` weights."""
    text, resources = layer_func(arrays, meta, func_name, resource_prefix)
    return module_text([text], resources)


def parse_resources(text):
    """``{name: (alignment, bytes)}`` from a module's ``dialect_resources``
    (for tests and round trips; not a general MLIR parser)."""
    import re

    out = {}
    for name, blob in re.findall(r"^\s*([A-Za-z_][\w.$-]*): \"0x([0-9A-Fa-f]*)\"", text, re.M):
        raw = bytes.fromhex(blob)
        out[name] = (int.from_bytes(raw[:4], "little"), raw[4:])
    return out
