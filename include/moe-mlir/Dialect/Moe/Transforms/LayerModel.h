//===- LayerModel.h - A layer op as a LayerSpec ---------------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECT_MOE_TRANSFORMS_LAYERMODEL_H
#define MOE_MLIR_DIALECT_MOE_TRANSFORMS_LAYERMODEL_H

#include "moe-mlir/Method/LayerEval.h"

#include "mlir/IR/Operation.h"

#include <memory>

namespace mlir::moe {

//===----------------------------------------------------------------------===//
// Evaluation on calibration tokens
//===----------------------------------------------------------------------===//

/// A layer op's weights read as float32 and its routing as a
/// method::LayerSpec, ready for method::evaluateLayer.
class LayerModel {
public:
  static FailureOr<std::unique_ptr<LayerModel>> build(Operation *op);
  const method::LayerSpec &spec() const { return layerSpec; }
  /// Expert e's weights (a clustered layer reconstructs base + U^T V).
  method::ExpertWeights expert(int64_t e);
  method::Matrix evaluate(method::ConstMatrixRef tokens);
  method::Routed route(method::ConstMatrixRef tokens) const {
    return method::route(layerSpec, tokens);
  }
  ~LayerModel();

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
  method::LayerSpec layerSpec;
};

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECT_MOE_TRANSFORMS_LAYERMODEL_H
