//===- CompressExperts.cpp - Cluster bases and low-rank residuals ---------===//
//
// Per cluster and weight kind: base = (weighted) mean of the members; per
// expert: truncated SVD of W_e - base. Expert matrices are read in place
// from the IR; the only full-size temporary is one expert's residual.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Dialect/Moe/Transforms/Calibration.h"
#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/Options.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"
#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_MOECOMPRESSEXPERTSPASS
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
/// Exact full-rank factors of an out x in residual: with out <= in,
/// U = I (out x out) and V = R; otherwise U = R^T and V = I (in x in).
void appendIdentityFactors(const std::vector<float> &residual, int64_t out,
                           int64_t in, std::vector<float> &u,
                           std::vector<float> &v) {
  int64_t rank = std::min(out, in);
  size_t u0 = u.size(), v0 = v.size();
  u.resize(u0 + rank * out, 0.0f);
  v.resize(v0 + rank * in, 0.0f);
  for (int64_t k = 0; k < rank; ++k) {
    if (out <= in) {
      u[u0 + k * out + k] = 1.0f;
      std::copy_n(residual.data() + k * in, in, v.data() + v0 + k * in);
    } else {
      v[v0 + k * in + k] = 1.0f;
      for (int64_t row = 0; row < out; ++row)
        u[u0 + k * out + row] = residual[row * in + k];
    }
  }
}

struct KindResult {
  std::vector<float> bases, u, v;
  KindStats stats;
};

FailureOr<KindResult> compressKind(LayerOp op, StringRef name, Value weight,
                                   ArrayRef<int64_t> assignment,
                                   int64_t clusters,
                                   const CompressConfig &config) {
  FailureOr<FloatWeight> w = FloatWeight::read(weight, op, name);
  if (failed(w))
    return failure();
  int64_t experts = static_cast<int64_t>(assignment.size());
  int64_t out = w->shape()[1], in = w->shape()[2], size = out * in;
  KindResult result;

  // Bases: a member's weight is its routing frequency when a profile is
  // given (the base then sits where most tokens go), else 1.
  result.bases.assign(clusters * size, 0.0f);
  std::vector<double> mass(clusters, 0.0);
  for (int64_t e = 0; e < experts; ++e) {
    double weightOfE =
        config.expertFrequency.empty() ? 1.0 : config.expertFrequency[e] + 1e-6;
    mass[assignment[e]] += weightOfE;
  }
  for (int64_t e = 0; e < experts; ++e) {
    double weightOfE =
        config.expertFrequency.empty() ? 1.0 : config.expertFrequency[e] + 1e-6;
    float f = static_cast<float>(weightOfE / mass[assignment[e]]);
    float *base = result.bases.data() + assignment[e] * size;
    const float *we = w->data() + e * size;
    for (int64_t k = 0; k < size; ++k)
      base[k] += f * we[k];
  }

  int64_t maxRank = std::min(out, in);
  std::vector<int64_t> clusterSize(clusters, 0);
  for (int64_t c : assignment)
    ++clusterSize[c];
  // One workspace for the layer: the SVD's matrix-sized scratch and test
  // matrix are mapped once, not once per expert.
  method::SvdWorkspace workspace;
  method::SvdOptions svd = config.svd;
  svd.workspace = &workspace;
  std::vector<float> residual;
  for (int64_t e = 0; e < experts; ++e) {
    const float *we = w->data() + e * size;
    const float *base = result.bases.data() + assignment[e] * size;
    if (clusterSize[assignment[e]] == 1) {
      // The expert is its own base (a weight of 1 is exact): no residual.
      result.stats.ranks.push_back(0);
      result.stats.relativeError.push_back(0.0);
      continue;
    }
    double weightEnergy = 0;
    for (int64_t k = 0; k < size; ++k)
      weightEnergy += double(we[k]) * we[k];
    int64_t rank = config.rank ? std::min(*config.rank, maxRank) : maxRank;
    if (!config.energy && rank == maxRank) {
      // Full rank needs no SVD: R = I^T R (or R^T^T I) is exact in float,
      // where an SVD would add its own rounding to a "lossless" setting.
      residual.resize(size);
      for (int64_t k = 0; k < size; ++k)
        residual[k] = we[k] - base[k];
      appendIdentityFactors(residual, out, in, result.u, result.v);
      result.stats.ranks.push_back(maxRank);
      result.stats.relativeError.push_back(0.0);
      continue;
    }
    method::ConstMatrixRef a(we, out, in), b(base, out, in);
    method::LowRankFactors factors =
        config.energy
            ? method::truncatedSvdByEnergy(a, b, *config.energy, 0, svd)
            : method::truncatedSvd(a, b, rank, svd);
    if (!factors.valid)
      return op.emitError() << "the SVD of expert " << e << "'s '" << name
                            << "' residual failed (non-finite weights?)";
    result.u.insert(result.u.end(), factors.u.data.begin(),
                    factors.u.data.end());
    result.v.insert(result.v.end(), factors.v.data.begin(),
                    factors.v.data.end());
    result.stats.ranks.push_back(factors.rank);
    double error2 = factors.relativeError * factors.totalEnergy;
    result.stats.relativeError.push_back(
        weightEnergy > 0 ? std::sqrt(std::max(error2, 0.0) / weightEnergy)
                         : 0.0);
  }
  return result;
}
} // namespace

FailureOr<ClusteredLayerOp>
mlir::moe::compressLayer(LayerOp op, ArrayRef<int64_t> assignment,
                         const CompressConfig &config, CompressStats *stats) {
  int64_t experts = op.getNumExperts();
  if (static_cast<int64_t>(assignment.size()) != experts)
    return op.emitError() << "cluster assignment has " << assignment.size()
                          << " entries but the layer has " << experts
                          << " experts";
  int64_t clusters = 0;
  for (int64_t c : assignment) {
    if (c < 0 || c >= experts)
      return op.emitError() << "cluster assignment holds " << c
                            << ", outside [0, " << experts << ")";
    clusters = std::max(clusters, c + 1);
  }
  // Clusters of a layer with group-limited routing stay inside its groups
  // (docs/method.md), whoever made the assignment.
  int64_t groups = op.getRouting().getGroups();
  if (groups > 1) {
    int64_t size = experts / groups;
    std::vector<int64_t> groupOf(clusters, -1);
    for (int64_t e = 0; e < experts; ++e) {
      int64_t &g = groupOf[assignment[e]];
      if (g >= 0 && g != e / size)
        return op.emitError()
               << "cluster " << assignment[e] << " holds experts of groups "
               << g << " and " << e / size << " of the layer's " << groups
               << " expert groups: clusters must not cross a group boundary";
      g = e / size;
    }
  }
  if (config.rank && *config.rank < 0)
    return op.emitError() << "rank must be non-negative, got " << *config.rank;
  if (config.energy && !(*config.energy > 0 && *config.energy <= 1))
    return op.emitError() << "energy must be in (0, 1], got " << *config.energy;
  if (!config.expertFrequency.empty() &&
      static_cast<int64_t>(config.expertFrequency.size()) != experts)
    return op.emitError() << "routing profile has "
                          << config.expertFrequency.size()
                          << " expert counts but the layer has " << experts
                          << " experts";

  OpBuilder builder(op);
  Location loc = op.getLoc();
  Type element = op.getTokens().getType().getElementType();
  int64_t h = op.getHiddenSize(), i = op.getInterSize();

  struct Built {
    Value base, u, v;
    DenseI64ArrayAttr ranks;
  };
  auto build = [&](StringRef kind, Value weight, int64_t out,
                   int64_t in) -> FailureOr<Built> {
    FailureOr<KindResult> r = compressKind(op, (kind + "_weight").str(), weight,
                                           assignment, clusters, config);
    if (failed(r))
      return failure();
    int64_t total = static_cast<int64_t>(r->u.size()) / out;
    Built b;
    b.base = makeFloatConstant(
        builder, loc, RankedTensorType::get({clusters, out, in}, element),
        std::move(r->bases), (kind + "_base").str());
    b.u = makeFloatConstant(builder, loc,
                            RankedTensorType::get({total, out}, element),
                            std::move(r->u), (kind + "_u").str());
    b.v = makeFloatConstant(builder, loc,
                            RankedTensorType::get({total, in}, element),
                            std::move(r->v), (kind + "_v").str());
    b.ranks = builder.getDenseI64ArrayAttr(r->stats.ranks);
    if (stats) {
      if (kind == "gate")
        stats->gate = r->stats;
      else if (kind == "up")
        stats->up = r->stats;
      else
        stats->down = r->stats;
    }
    return b;
  };

  std::optional<Built> gate;
  if (op.isGlu()) {
    FailureOr<Built> g = build("gate", op.getGateWeight(), i, h);
    if (failed(g))
      return failure();
    gate = *g;
  }
  FailureOr<Built> up = build("up", op.getUpWeight(), i, h);
  if (failed(up))
    return failure();
  FailureOr<Built> down = build("down", op.getDownWeight(), h, i);
  if (failed(down))
    return failure();

  auto clustered = ClusteredLayerOp::create(
      builder, loc, op.getType(), op.getTokens(), op.getRouterWeight(),
      op.getRouterBias(), op.getSelectionBias(), gate ? gate->base : Value(),
      gate ? gate->u : Value(), gate ? gate->v : Value(), up->base, up->u,
      up->v, down->base, down->u, down->v, op.getGateBias(), op.getUpBias(),
      op.getDownBias(), op.getRouting(), op.getActivation(),
      ClusterRoutingAttr::get(op.getContext(), ClusterRoutingMode::exact, 1,
                              ClusterScore::mass),
      builder.getDenseI64ArrayAttr(assignment),
      gate ? gate->ranks : DenseI64ArrayAttr(), up->ranks, down->ranks,
      op.getAbsentAttr());
  // Keep the similarity (and anything else the earlier steps recorded) for
  // the report.
  if (Attribute similarity = op->getAttr(kSimilarityAttr))
    clustered->setAttr(kSimilarityAttr, similarity);
  op.replaceAllUsesWith(clustered.getResult());
  op.erase();
  return clustered;
}

namespace {
struct MoeCompressExpertsPass
    : public mlir::moe::impl::MoeCompressExpertsPassBase<
          MoeCompressExpertsPass> {
  using Base::Base;

  void runOnOperation() override {
    CompressConfig config;
    Operation *module = getOperation();
    if (failed(parseRankOptions(module, rank, energy, config)) ||
        failed(parseSvdOptions(module, svd, oversample, powerIterations, seed,
                               config)))
      return signalPassFailure();

    SmallVector<LayerOp> layers;
    getOperation().walk([&](LayerOp op) { layers.push_back(op); });
    for (auto [index, op] : llvm::enumerate(layers)) {
      auto assignment = op->getAttrOfType<DenseI64ArrayAttr>(kAssignmentAttr);
      if (!assignment) {
        op.emitError() << "moe-compress-experts needs a cluster assignment "
                          "('"
                       << kAssignmentAttr << "'): run moe-cluster-experts "
                       << "first";
        return signalPassFailure();
      }
      CompressConfig layerConfig = config;
      if (!profile.empty()) {
        FailureOr<std::vector<double>> frequency = loadExpertFrequency(
            op, profile, static_cast<int64_t>(index), op.getNumExperts());
        if (failed(frequency))
          return signalPassFailure();
        layerConfig.expertFrequency = std::move(*frequency);
      }
      if (failed(
              compressLayer(op, assignment.asArrayRef(), layerConfig, nullptr)))
        return signalPassFailure();
    }
  }
};
} // namespace
