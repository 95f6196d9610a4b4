//===- ClusterExperts.cpp - Expert similarity and clustering ---------------===//
//
// Similarity fuses three views of an expert (docs/method.md): its weights
// (cosine per weight kind, averaged over kinds), its router row, and its
// outputs on calibration tokens. Weights stream through the accumulator in
// column blocks straight from the IR's storage.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Dialect/Moe/Transforms/Calibration.h"
#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/LayerModel.h"
#include "moe-mlir/Dialect/Moe/Transforms/Options.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"
#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"

#include "mlir/IR/BuiltinAttributes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOECLUSTEREXPERTSPASS
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
/// Columns per accumulator block: big enough for BLAS, small enough that
/// the float partial sums stay accurate before they reach double.
constexpr int64_t kBlockColumns = 1 << 14;

method::Similarity weightSimilarity(const FloatWeight &weight,
                                    int64_t experts) {
  int64_t perExpert = weight.size() / experts;
  method::CosineAccumulator acc(experts);
  for (int64_t col = 0; col < perExpert; col += kBlockColumns) {
    int64_t width = std::min(kBlockColumns, perExpert - col);
    acc.add({weight.data() + col, experts, width, perExpert});
  }
  return acc.finish();
}

/// Cosine of expert outputs on the calibration tokens, computed a token
/// block at a time so E x T x H outputs never exist at once.
method::Similarity activationSimilarity(LayerModel &model,
                                        const method::Matrix &tokens) {
  const method::LayerSpec &spec = model.spec();
  int64_t experts = spec.numExperts, hidden = spec.hidden;
  constexpr int64_t kTokenBlock = 64;
  method::CosineAccumulator acc(experts);
  method::Matrix outputs(experts, kTokenBlock * hidden);
  for (int64_t t = 0; t < tokens.rows; t += kTokenBlock) {
    int64_t count = std::min(kTokenBlock, tokens.rows - t);
    method::ConstMatrixRef block(tokens.row(t), count, hidden);
    for (int64_t e = 0; e < experts; ++e)
      method::expertForward(spec, model.expert(e), block, outputs.row(e));
    acc.add({outputs.data.data(), experts, count * hidden, outputs.cols});
  }
  return acc.finish();
}
} // namespace

FailureOr<ClusterResult>
mlir::moe::clusterLayer(LayerOp op, const ClusterConfig &config,
                        const method::Matrix *calibration, LayerModel *model) {
  int64_t experts = op.getNumExperts();
  int64_t clusters =
      config.clusters > 0
          ? config.clusters
          : (experts + std::max<int64_t>(config.clusterSize, 1) - 1) /
                std::max<int64_t>(config.clusterSize, 1);
  if (config.clusters <= 0 && config.clusterSize < 1)
    return op.emitError() << "cluster-size must be at least 1, got "
                          << config.clusterSize;
  if (clusters < 1 || clusters > experts)
    return op.emitError() << "cannot make " << clusters
                          << " clusters of a layer with " << experts
                          << " experts";
  // A layer with group-limited routing keeps its groups: by default they
  // are the clusters; an explicit count clusters within each group.
  int64_t groups = op.getRouting().getGroups();
  if (groups > 1) {
    if (config.clusters <= 0)
      clusters = groups;
    else if (clusters % groups != 0)
      return op.emitError()
             << "the layer routes among " << groups
             << " expert groups and clusters never cross a group boundary: "
                "the cluster count must be a multiple of "
             << groups << ", got " << clusters;
  }

  std::vector<method::Similarity> kinds;
  for (auto [name, value] :
       {std::pair<StringRef, Value>{"gate_weight", op.getGateWeight()},
        {"up_weight", op.getUpWeight()},
        {"down_weight", op.getDownWeight()}}) {
    if (!value)
      continue;
    FailureOr<FloatWeight> w = FloatWeight::read(value, op, name);
    if (failed(w))
      return failure();
    kinds.push_back(weightSimilarity(*w, experts));
  }
  method::Similarity parameter =
      method::fuseSimilarities(kinds, std::vector<double>(kinds.size(), 1.0));

  FailureOr<FloatWeight> router =
      FloatWeight::read(op.getRouterWeight(), op, "router_weight");
  if (failed(router))
    return failure();
  method::Similarity routerSim = weightSimilarity(*router, experts);

  std::vector<method::Similarity> parts = {parameter, routerSim};
  std::vector<double> weights = {config.alpha, config.beta};
  if (calibration && config.gamma > 0) {
    if (calibration->cols != op.getHiddenSize())
      return op.emitError() << "calibration tokens have " << calibration->cols
                            << " features but the layer's hidden size is "
                            << op.getHiddenSize();
    std::unique_ptr<LayerModel> built;
    if (!model) {
      FailureOr<std::unique_ptr<LayerModel>> fresh = LayerModel::build(op);
      if (failed(fresh))
        return failure();
      built = std::move(*fresh);
      model = built.get();
    }
    parts.push_back(activationSimilarity(*model, *calibration));
    weights.push_back(config.gamma);
  }
  if (llvm::all_of(weights, [](double w) { return w <= 0; }))
    return op.emitError() << "similarity weights alpha, beta (and gamma with "
                             "calibration) are all zero";

  ClusterResult result;
  result.fused = method::fuseSimilarities(parts, weights);
  method::ClusterOptions options;
  options.method = config.method;
  options.seed = config.seed;
  if (groups <= 1) {
    options.numClusters = clusters;
    result.assignment = method::clusterExperts(result.fused, options);
    return result;
  }
  // Group g's experts are [g * size, (g + 1) * size); its clusters are
  // [g * per, (g + 1) * per), found on the group's own similarities.
  int64_t size = experts / groups, per = clusters / groups;
  result.assignment.resize(experts);
  options.numClusters = per;
  method::Similarity local;
  local.size = size;
  for (int64_t g = 0; g < groups; ++g) {
    std::vector<int64_t> inGroup(size, 0);
    if (per > 1) {
      local.values.resize(size * size);
      for (int64_t i = 0; i < size; ++i)
        for (int64_t j = 0; j < size; ++j)
          local.values[i * size + j] =
              result.fused.at(g * size + i, g * size + j);
      inGroup = method::clusterExperts(local, options);
    }
    for (int64_t i = 0; i < size; ++i)
      result.assignment[g * size + i] = g * per + inGroup[i];
  }
  return result;
}

void mlir::moe::recordClustering(LayerOp op, const ClusterResult &result) {
  MLIRContext *ctx = op.getContext();
  op->setAttr(kAssignmentAttr, DenseI64ArrayAttr::get(ctx, result.assignment));
  std::vector<float> values(result.fused.values.begin(),
                            result.fused.values.end());
  auto type = RankedTensorType::get({result.fused.size, result.fused.size},
                                    Float32Type::get(ctx));
  op->setAttr(kSimilarityAttr,
              DenseElementsAttr::get(type, ArrayRef<float>(values)));
}

namespace {
struct MoeClusterExpertsPass
    : public mlir::moe::impl::MoeClusterExpertsPassBase<MoeClusterExpertsPass> {
  using Base::Base;

  void runOnOperation() override {
    FailureOr<ClusterConfig> config = parseConfig();
    if (failed(config))
      return signalPassFailure();
    int64_t index = 0;
    WalkResult walk = getOperation().walk([&](LayerOp op) {
      std::optional<method::Matrix> tokens;
      if (!calibration.empty()) {
        FailureOr<method::Matrix> loaded = loadTokens(op, calibration, index);
        if (failed(loaded))
          return WalkResult::interrupt();
        tokens = std::move(*loaded);
      }
      ++index;
      FailureOr<ClusterResult> result =
          clusterLayer(op, *config, tokens ? &*tokens : nullptr);
      if (failed(result))
        return WalkResult::interrupt();
      recordClustering(op, *result);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }

  FailureOr<ClusterConfig> parseConfig() {
    ClusterConfig config;
    config.clusters = clusters;
    config.clusterSize = clusterSize;
    config.alpha = alpha;
    config.beta = beta;
    config.gamma = gamma;
    config.seed = seed;
    FailureOr<method::ClusterMethod> m =
        parseClusterMethod(getOperation(), method);
    if (failed(m))
      return failure();
    config.method = *m;
    return config;
  }
};
} // namespace
