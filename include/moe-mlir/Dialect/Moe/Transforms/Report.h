//===- Report.h - The compression report ------------------------*- C++ -*-===//
//
// JSON, versioned; schema in docs/compression-report.md.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_DIALECT_MOE_TRANSFORMS_REPORT_H
#define MOE_MLIR_DIALECT_MOE_TRANSFORMS_REPORT_H

#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"

#include "llvm/Support/JSON.h"

namespace mlir::moe {

constexpr int64_t kReportVersion = 1;

/// Parameters and bytes of a layer by component: "router", "gate", "up",
/// "down" (each {"base", "residual"} once clustered) and "bias".
llvm::json::Object accountParams(Operation *layer, bool bytes);

/// What calibration tokens tell about a compressed layer.
struct CalibrationResult {
  int64_t tokens = 0;
  double exactSetMatch = 0; ///< tokens whose expert set is unchanged
  double meanOverlap = 0;   ///< mean |S ∩ S'| / k over tokens
  double outputRelativeError = 0;
  /// Measured on synthetic tokens (no calibration was given).
  bool synthetic = false;
};

/// Compares the routing and output of a compressed layer with the original
/// on the same tokens.
CalibrationResult compareOnCalibration(const method::Routed &original,
                                       const method::Matrix &originalOut,
                                       const method::Routed &compressed,
                                       const method::Matrix &compressedOut,
                                       int64_t topK);

/// One layer's entry of the report.
llvm::json::Object layerReport(int64_t index, ClusteredLayerOp op,
                               llvm::json::Object paramsBefore,
                               llvm::json::Object bytesBefore,
                               const CompressStats &stats,
                               const std::optional<CalibrationResult> &calib);

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECT_MOE_TRANSFORMS_REPORT_H
