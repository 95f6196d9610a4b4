//===- Calibration.h - Calibration tokens, profiles -----------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECT_MOE_TRANSFORMS_CALIBRATION_H
#define MOE_MLIR_DIALECT_MOE_TRANSFORMS_CALIBRATION_H

#include "moe-mlir/Method/Matrix.h"

#include "mlir/IR/Operation.h"

#include <vector>

namespace mlir::moe {

//===----------------------------------------------------------------------===//
// Calibration tokens and routing profiles
//===----------------------------------------------------------------------===//

/// Tokens of layer `layerIndex` from `path`: a .npy file (any float dtype,
/// shape (..., H), used for every layer) or a directory holding
/// layer_<N>.npy per layer. Diagnostics go to `op`.
FailureOr<method::Matrix> loadTokens(Operation *op, StringRef path,
                                     int64_t layerIndex);

/// Tokens per expert of layer `layerIndex` from a routing profile written
/// by moe-run --profile (docs/routing-profile.md).
FailureOr<std::vector<double>> loadExpertFrequency(Operation *op,
                                                   StringRef path,
                                                   int64_t layerIndex,
                                                   int64_t numExperts);

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECT_MOE_TRANSFORMS_CALIBRATION_H
