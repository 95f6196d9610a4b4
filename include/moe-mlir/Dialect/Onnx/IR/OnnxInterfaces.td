//===- OnnxInterfaces.td - onnx dialect interfaces ---------*- tablegen -*-===//

#ifndef MOE_DIALECT_ONNX_IR_ONNXINTERFACES_TD
#define MOE_DIALECT_ONNX_IR_ONNXINTERFACES_TD

include "mlir/IR/OpBase.td"

def Onnx_ShapeInferenceOpInterface : OpInterface<"OnnxShapeInference"> {
  let cppNamespace = "::mlir::onnx";
  let description = [{
    Refines the op's result types in place from its operand types and,
    where they matter, the values of constant operands (`onnx.Constant`
    results, and shape computations whose values are known: `onnx.Shape`
    of a ranked tensor and Gather/Slice/Concat/Unsqueeze/... of those).
    Inferred types are met with the declared ones: a declared static size
    is kept, a dynamic one takes the inferred size; an unranked declared
    type is a placeholder and is replaced, element type included. A result
    that cannot be inferred stays as it is. Fails, with an error naming the
    op and the sizes, only on a real inconsistency.
  }];
  let methods = [
    InterfaceMethod<
      "refine the result types in place; fail only on an inconsistency",
      "::llvm::LogicalResult", "inferShapes", (ins)>
  ];
}

#endif // MOE_DIALECT_ONNX_IR_ONNXINTERFACES_TD
