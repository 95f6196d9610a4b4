//===- RaiseExperts.h - Matchers behind moe-raise-experts -------*- C++ -*-===//

#ifndef MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_H
#define MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_H

#include "mlir/IR/Operation.h"

namespace mlir::moe {

enum class OrtMoeLayout { Auto, Current, Legacy };

/// What a matcher concluded about one candidate.
enum class RaiseResult {
  Raised,   ///< replaced by moe.layer
  Declined, ///< left as it was; a remark says why
  Error,    ///< a diagnostic was emitted; the pass fails
};

/// Raises one onnx.MoE or onnx.QMoE op (com.microsoft) to moe.layer.
RaiseResult raiseOrtMoe(Operation *op, OrtMoeLayout layout);

/// Raises every torch-exported expert loop (index_add_ chains) under
/// `root`; sets `failedAny` when one reported an error.
void raiseTorchLoops(Operation *root, bool &failedAny);

/// Raises every block whose experts multiply gathered expert weights in a
/// batch (transformers 5's batched_mm) under `root`.
void raiseBatchedExperts(Operation *root, bool &failedAny);

/// Raises every dense block whose experts see tokens scaled by their
/// router score (Llama 4) under `root`.
void raiseInputScaled(Operation *root, bool &failedAny);

/// Raises every block that sorts (token, slot) pairs by expert and runs
/// one group per expert (JetMoE) under `root`.
void raiseSortedExperts(Operation *root, bool &failedAny);

/// Raises every dense MoE sum (each expert on every token, weighted by a
/// column of the scattered routing matrix) under `root`.
void raiseTorchDense(Operation *root, bool &failedAny);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_H
