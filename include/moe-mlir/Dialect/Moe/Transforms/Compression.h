//===- Compression.h - The method's steps on one layer ----------*- C++ -*-===//
//
// Each step of the method as a function on one layer op, shared by the
// single-step passes (moe-cluster-experts, moe-compress-experts,
// moe-quantize, moe-fuse-routing) and by moe-compress-pipeline, which runs
// them layer by layer so only one layer's weights are live at a time.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_DIALECT_MOE_TRANSFORMS_COMPRESSION_H
#define MOE_MLIR_DIALECT_MOE_TRANSFORMS_COMPRESSION_H

#include "moe-mlir/Dialect/Moe/IR/Moe.h"
#include "moe-mlir/Method/Clustering.h"
#include "moe-mlir/Method/LayerEval.h"
#include "moe-mlir/Method/LowRank.h"

#include <memory>
#include <optional>

namespace mlir::moe {

class LayerModel;

//===----------------------------------------------------------------------===//
// Clustering
//===----------------------------------------------------------------------===//

/// Discardable attributes the clustering step leaves on a moe.layer for
/// the compression step (and the report).
constexpr StringLiteral kAssignmentAttr = "moe.assignment";
constexpr StringLiteral kSimilarityAttr = "moe.similarity";

struct ClusterConfig {
  /// Number of clusters; 0: ceil(E / clusterSize).
  int64_t clusters = 0;
  int64_t clusterSize = 4;
  /// Weights of parameter, router and activation similarity. gamma only
  /// counts when calibration tokens are given.
  double alpha = 0.7, beta = 0.3, gamma = 0.3;
  method::ClusterMethod method = method::ClusterMethod::KMeans;
  uint64_t seed = 0;
};

struct ClusterResult {
  std::vector<int64_t> assignment;
  method::Similarity fused;
};

/// Clusters the experts of `op`; `calibration` (T x H tokens of this
/// layer) enables activation similarity, computed with `model` when the
/// caller already holds one for `op` (else one is built).
FailureOr<ClusterResult> clusterLayer(LayerOp op, const ClusterConfig &config,
                                      const method::Matrix *calibration,
                                      LayerModel *model = nullptr);

/// Records a clustering on the op as kAssignmentAttr / kSimilarityAttr.
void recordClustering(LayerOp op, const ClusterResult &result);

//===----------------------------------------------------------------------===//
// Base + low-rank residual
//===----------------------------------------------------------------------===//

struct CompressConfig {
  /// Fixed rank per expert; nullopt: full rank (lossless up to rounding).
  std::optional<int64_t> rank = 16;
  /// Energy threshold in (0, 1]; when set, chooses each expert's rank and
  /// `rank` is ignored.
  std::optional<double> energy;
  method::SvdOptions svd;
  /// Tokens routed to each expert (a routing profile); when given, a
  /// cluster's base is the frequency-weighted mean of its members.
  std::vector<double> expertFrequency;
};

/// Per weight kind: each expert's rank and relative reconstruction error
/// ||W_e - base - U^T V||_F / ||W_e||_F.
struct KindStats {
  std::vector<int64_t> ranks;
  std::vector<double> relativeError;
};

struct CompressStats {
  std::optional<KindStats> gate;
  KindStats up, down;
};

/// Replaces `op` by a moe.clustered_layer with float bases and factors in
/// the layer's element type and exact routing. Weights are read in place;
/// one expert's residual is the only full-size temporary.
FailureOr<ClusteredLayerOp> compressLayer(LayerOp op,
                                          ArrayRef<int64_t> assignment,
                                          const CompressConfig &config,
                                          CompressStats *stats);

//===----------------------------------------------------------------------===//
// Quantisation
//===----------------------------------------------------------------------===//

/// How a group of weights is stored (the `bits` / `base-bits` options).
enum class Storage { None, F32, F16, BF16, I8, I4 };

/// Parses 4 | 8 | 16 | bf16 | 32 | none.
std::optional<Storage> parseStorage(StringRef text);

struct QuantizeConfig {
  Storage residual = Storage::I4;
  Storage base = Storage::F16;
  int64_t groupSize = 32;
  bool symmetric = false;
};

/// Replaces the float base and factor operands of `op` by
/// moe.quantized_weight values in the requested storage. Operands that are
/// already quantised, or whose requested storage is their own float type,
/// stay as they are.
LogicalResult quantizeLayer(ClusteredLayerOp op, const QuantizeConfig &config);

//===----------------------------------------------------------------------===//
// Routing
//===----------------------------------------------------------------------===//

/// Sets the cluster routing of `op`, with a diagnostic when it cannot hold
/// (too few experts in the kept clusters for top_k).
LogicalResult fuseRouting(ClusteredLayerOp op, ClusterRoutingAttr routing);

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECT_MOE_TRANSFORMS_COMPRESSION_H
