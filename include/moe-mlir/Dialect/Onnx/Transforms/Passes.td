//===- Passes.td - onnx dialect passes ----------------------*- tablegen -*===//

#ifndef MOE_DIALECT_ONNX_TRANSFORMS_PASSES_TD
#define MOE_DIALECT_ONNX_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def OnnxShapeInferencePass
    : Pass<"onnx-shape-inference", "mlir::func::FuncOp"> {
  let summary = "refine onnx result types and fold shape computations";
  let description = [{
    Visits the onnx ops of each function in order, calling
    `OnnxShapeInference::inferShapes` (ranked types, static sizes where the
    operand types and known operand values fix them; a result it cannot
    infer keeps its type) and, with `fold` (the default), folding each op
    right after: `onnx.Shape` of a tensor whose requested dimensions are
    static becomes an `onnx.Constant`, and so do Gather, Slice, Concat,
    Unsqueeze, Squeeze, Reshape, Cast, Add, Mul, ... of known values, so
    the Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains exported
    graphs carry fold away and the Reshape gets a static type. Constants
    are deduplicated and hoisted to the function entry; onnx ops left
    without uses are erased. Finally the function's result types are set to
    those of its return. Fails on an inconsistency (a Reshape to the wrong
    element count, an inferred type conflicting with a declared one).
  }];
  let options = [
    Option<"fold", "fold", "bool", "true",
           "fold shape computations and erase the onnx ops left unused">
  ];
  let dependentDialects = ["::mlir::onnx::OnnxDialect"];
}

#endif // MOE_DIALECT_ONNX_TRANSFORMS_PASSES_TD
