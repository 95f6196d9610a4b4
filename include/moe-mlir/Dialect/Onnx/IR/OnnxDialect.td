//===- OnnxDialect.td - The onnx dialect -------------------*- tablegen -*-===//

#ifndef MOE_DIALECT_ONNX_IR_ONNXDIALECT_TD
#define MOE_DIALECT_ONNX_IR_ONNXDIALECT_TD

include "mlir/IR/OpBase.td"

def Onnx_Dialect : Dialect {
  let name = "onnx";
  let summary = "ONNX operators as the importer reads them";
  let description = [{
    One op per ONNX operator, named `onnx.<OpType>` with the exact ONNX
    spelling (`onnx.MatMul`, `onnx.LayerNormalization`), with the semantics
    of the latest opset up to 21; the onnxruntime contrib ops
    `com.microsoft.MoE` and `QMoE` are `onnx.MoE` and `onnx.QMoE`.

    Conventions, which the importer relies on:
    - every declared input is an operand, in ONNX order and named as in the
      ONNX spec (`A`, `B`, `X`, `data`, ...); an absent optional input is
      the value of `onnx.None` (type `none`). Only truly variadic inputs
      (Concat, Einsum, Max, Min, Sum) are variadic operands;
    - every declared output is a result (Split's are variadic);
    - attributes keep their ONNX names; INT is `i64`, FLOAT `f32`, STRING a
      string, INTS `array<i64>`, FLOATS `array<f32>`, TENSOR an elements
      attribute (`dense` or `dense_resource`). Attributes with an ONNX
      default may be left out;
    - inputs that older opsets had as attributes (ReduceMean axes, Squeeze
      and Unsqueeze axes, Split split, Clip min/max, Slice starts/ends) are
      operands, as in the latest opset.

    Every op implements `OnnxShapeInference`; `--onnx-shape-inference`
    refines result types and folds shape computations on static shapes.
  }];
  let cppNamespace = "::mlir::onnx";
  let hasConstantMaterializer = 1;
}

#endif // MOE_DIALECT_ONNX_IR_ONNXDIALECT_TD
