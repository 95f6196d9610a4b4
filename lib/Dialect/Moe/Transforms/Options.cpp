//===- Options.cpp - Parsing the method's pass options ---------------------===//

#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/Options.h"

using namespace mlir;
using namespace mlir::moe;

FailureOr<method::ClusterMethod>
mlir::moe::parseClusterMethod(Operation *op, StringRef method) {
  if (method == "kmeans")
    return method::ClusterMethod::KMeans;
  if (method == "agglomerative")
    return method::ClusterMethod::Agglomerative;
  return op->emitError() << "unknown clustering method '" << method
                         << "' (expected kmeans or agglomerative)";
}

LogicalResult mlir::moe::parseRankOptions(Operation *op, StringRef rank,
                                          double energy,
                                          CompressConfig &config) {
  if (energy != 0) {
    if (!rank.empty())
      return op->emitError() << "rank and energy are mutually exclusive";
    if (!(energy > 0 && energy <= 1))
      return op->emitError() << "energy must be in (0, 1], got " << energy;
    config.energy = energy;
    return success();
  }
  if (rank.empty()) {
    config.rank = 16;
    return success();
  }
  if (rank == "full") {
    config.rank.reset();
    return success();
  }
  int64_t value;
  if (rank.getAsInteger(10, value) || value < 0)
    return op->emitError() << "rank must be a non-negative integer or 'full', "
                              "got '"
                           << rank << "'";
  config.rank = value;
  return success();
}

LogicalResult mlir::moe::parseSvdOptions(Operation *op, StringRef svd,
                                         int64_t oversample,
                                         int64_t powerIterations,
                                         uint64_t seed,
                                         CompressConfig &config) {
  if (svd == "exact")
    config.svd.method = method::SvdMethod::Exact;
  else if (svd == "randomized")
    config.svd.method = method::SvdMethod::Randomized;
  else if (svd == "krylov")
    config.svd.method = method::SvdMethod::BlockKrylov;
  else
    return op->emitError() << "unknown svd '" << svd
                           << "' (expected exact, krylov or randomized)";
  if (oversample < -1 || powerIterations < -1)
    return op->emitError() << "oversample and power-iters must be "
                              "non-negative (or -1: the method's default)";
  config.svd.oversample = oversample;
  config.svd.powerIterations = powerIterations;
  config.svd.seed = seed;
  return success();
}

FailureOr<QuantizeConfig>
mlir::moe::parseQuantizeOptions(Operation *op, StringRef bits,
                                StringRef baseBits, int64_t groupSize,
                                bool symmetric) {
  std::optional<Storage> residual = parseStorage(bits);
  std::optional<Storage> base = parseStorage(baseBits);
  if (!residual || (*residual != Storage::None && *residual != Storage::I4 &&
                    *residual != Storage::I8))
    return op->emitError() << "bits must be 4, 8 or none, got '" << bits
                           << "'";
  if (!base || *base == Storage::None)
    return op->emitError() << "base-bits must be 32, 16, bf16, 8 or 4, got '"
                           << baseBits << "'";
  if (groupSize < 0)
    return op->emitError() << "group-size must be 0 (one group per row) or "
                              "positive, got "
                           << groupSize;
  QuantizeConfig config;
  config.residual = *residual;
  config.base = *base;
  config.groupSize = groupSize;
  config.symmetric = symmetric;
  return config;
}

FailureOr<ClusterRoutingAttr>
mlir::moe::parseRoutingOptions(Operation *op, StringRef routing,
                               int64_t clustersPerToken,
                               StringRef clusterScore) {
  std::optional<ClusterRoutingMode> mode =
      symbolizeClusterRoutingMode(routing);
  if (!mode)
    return op->emitError() << "routing must be exact or hierarchical, got '"
                           << routing << "'";
  std::optional<ClusterScore> score =
      clusterScore == "mean-row" ? std::optional(ClusterScore::mean_row)
                                 : symbolizeClusterScore(clusterScore);
  if (!score)
    return op->emitError() << "cluster-score must be mass or mean-row, got '"
                           << clusterScore << "'";
  if (clustersPerToken < 1)
    return op->emitError() << "clusters-per-token must be at least 1, got "
                           << clustersPerToken;
  return ClusterRoutingAttr::get(op->getContext(), *mode, clustersPerToken,
                                 *score);
}
