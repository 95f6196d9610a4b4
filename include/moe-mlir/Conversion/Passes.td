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

#endif // MOE_CONVERSION_PASSES_TD
