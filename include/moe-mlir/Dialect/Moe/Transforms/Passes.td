//===- Passes.td - moe dialect passes -----------------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
#define MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoeDumpLayersPass : Pass<"moe-dump-layers", "mlir::ModuleOp"> {
  let summary = "write every moe layer's weights and attributes as .npz";
  let description = [{
    Writes each `moe.layer` and `moe.clustered_layer`, in walk order, to
    `<dir>/layer_<N>.npz`: every weight in its stored dtype, quantisation
    storage and parameters, the cluster assignment, ranks and every
    attribute as JSON metadata (docs/layer-dump.md). The IR is unchanged.
    Weights must be constants (`dense` or `dense_resource`), possibly
    through `moe.quantized_weight`.
  }];
  let options = [
    Option<"dir", "dir", "std::string", "\"\"",
           "directory to write layer_<N>.npz files into (created if needed)">
  ];
}

#endif // MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
