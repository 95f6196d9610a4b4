//===- Options.h - Parsing the method's pass options ----------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECT_MOE_TRANSFORMS_OPTIONS_H
#define MOE_MLIR_DIALECT_MOE_TRANSFORMS_OPTIONS_H

#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"

namespace mlir::moe {

//===----------------------------------------------------------------------===//
// Pass options, shared by the single-step passes and the pipeline
//===----------------------------------------------------------------------===//

FailureOr<method::ClusterMethod> parseClusterMethod(Operation *op,
                                                    StringRef method);
/// `rank` ("" = 16, N, or "full") and `energy` (0 = unset) into `config`.
LogicalResult parseRankOptions(Operation *op, StringRef rank, double energy,
                               CompressConfig &config);
/// `svd` (exact | randomized) and its tuning into `config`.
LogicalResult parseSvdOptions(Operation *op, StringRef svd, int64_t oversample,
                              int64_t powerIterations, uint64_t seed,
                              CompressConfig &config);
FailureOr<QuantizeConfig> parseQuantizeOptions(Operation *op, StringRef bits,
                                               StringRef baseBits,
                                               int64_t groupSize,
                                               bool symmetric);
FailureOr<ClusterRoutingAttr> parseRoutingOptions(Operation *op,
                                                  StringRef routing,
                                                  int64_t clustersPerToken,
                                                  StringRef clusterScore);

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECT_MOE_TRANSFORMS_OPTIONS_H
