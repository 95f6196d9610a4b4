//===- Passes.td - moe-mlir conversions ---------------------*- tablegen -*-===//

#ifndef MOE_CONVERSION_PASSES_TD
#define MOE_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoeRaiseExpertsPass : Pass<"moe-raise-experts", "mlir::ModuleOp"> {
  let summary = "replace every MoE layer of an imported graph by moe.layer";
  let description = [{
    Finds the MoE layers of an imported ONNX graph and replaces each by one
    `moe.layer`: onnxruntime's `com.microsoft.MoE` and `QMoE` nodes (current
    and legacy weight layouts, told apart by shapes; `ort-moe-layout`
    decides when shapes cannot), with their router `MatMul`/`Gemm` (+ bias)
    folded in; torch-exported expert loops (chains of `index_add_` steps,
    `ScatterElements` with or without `reduction = add`) and dense sums
    (every expert's output times a column of the scattered routing
    matrix), each step proved to be one expert's contribution. Experts an
    export lost are marked `absent`, with a warning. A candidate the
    matcher cannot prove equivalent stays as it is, with a remark saying
    why.
  }];
  let options = [
    Option<"ortMoeLayout", "ort-moe-layout", "std::string", "\"auto\"",
           "weight layout of com.microsoft.MoE: auto, current "
           "(fc1 (E, f*I, H), fc2 (E, H, I)) or legacy (fc1 (E, H, f*I), "
           "fc2 (E, I, H))">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

def ConvertOnnxToLinalgPass
    : Pass<"convert-onnx-to-linalg", "mlir::ModuleOp"> {
  let summary = "lower onnx dialect ops to linalg, tensor, arith and math";
  let description = [{
    Replaces every `onnx` op by builtin-tensor IR in the linalg, tensor,
    arith, math and scf dialects with the same value semantics (ONNX
    broadcasting, dynamic dimensions read with `tensor.dim`, shape
    computations on small `i64` tensors). Runs after `onnx-shape-inference`:
    an op whose result is still unranked, or that has no lowering, is an
    error naming the node.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
}

def ConvertMoeToLinalgPass
    : Pass<"convert-moe-to-linalg", "mlir::ModuleOp"> {
  let summary = "lower moe.layer and moe.clustered_layer to linalg and scf";
  let description = [{
    Expands each MoE layer into routing (gate product, scoring, top-k,
    normalisation), token dispatch (per-expert counts, offsets and row
    lists: no capacity, no dropped tokens), one grouped GEMM chain per
    expert over its rows only, and the weighted combine. Clustered layers
    compute each (token, cluster) base product once and each expert's
    residual as `U^T (V x)`; quantised weights are dequantised inside the
    products. With `record-routing`, each layer calls the runtime's
    `moe_rt_record_routing` hook with its expert choices; with
    `record-tokens`, `moe_rt_record_tokens` with its input tokens.
  }];
  let options = [
    Option<"recordRouting", "record-routing", "bool", "false",
           "call moe_rt_record_routing(layer, selected, tokens, k) after "
           "each layer's routing (for moe-run --profile)">,
    Option<"recordTokens", "record-tokens", "bool", "false",
           "call moe_rt_record_tokens(layer, tokens, T, H) with each "
           "layer's input (moe-compile --calibration collects them)">
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect"];
}

#endif // MOE_CONVERSION_PASSES_TD
