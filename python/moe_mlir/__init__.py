"""Python side of moe-mlir: a float64 reference evaluator for ``moe.layer`` and
``moe.clustered_layer`` (NumPy only), the ``.npz`` layer-dump format, weight
quantisation helpers, and an MLIR text writer.

Runs on the ``python3`` on PATH (CPython 3.11 via pyenv here). Only
:mod:`moe_mlir.onnx_models` needs ``onnx``/``onnxruntime``; it is not imported
here so that the evaluator works with NumPy alone.
"""

from .npz import save_layer, read_dump, bf16_bits_to_float, float_to_bf16_bits
from .quant import quantize, dequantize, pack_int4, unpack_int4, quantize_entry

# The evaluator is imported on first use, not here, so that
# `python3 -m moe_mlir.reference` runs it as __main__ without runpy's
# double-import warning.
_LAZY = {"load_layer", "evaluate", "routing", "expert_weights"}


def __getattr__(name):
    if name in _LAZY:
        from . import reference
        return getattr(reference, name)
    raise AttributeError(f"module 'moe_mlir' has no attribute {name!r}")


__all__ = [
    "save_layer", "read_dump", "bf16_bits_to_float", "float_to_bf16_bits",
    "quantize", "dequantize", "pack_int4", "unpack_int4", "quantize_entry",
    "load_layer", "evaluate", "routing", "expert_weights",
]
