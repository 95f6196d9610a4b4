//===- CompressPipeline.cpp - The method end to end, layer by layer --------===//
//
// One pass rather than a pipeline of passes: each layer goes through every
// step before the next layer starts, so only one layer's weights (and one
// residual) are live beyond the IR, and the report can compare the
// compressed layer with the original on calibration tokens while the
// original still exists.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/Calibration.h"
#include "moe-mlir/Dialect/Moe/Transforms/LayerModel.h"
#include "moe-mlir/Dialect/Moe/Transforms/Options.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"
#include "moe-mlir/Dialect/Moe/Transforms/Report.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <numeric>
#include <random>

namespace mlir::moe {
#define GEN_PASS_DEF_MOECOMPRESSPIPELINEPASS
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
constexpr int64_t kSyntheticTokens = 256;

/// `rows` tokens of `cols` standard normal features, always the same.
method::Matrix syntheticTokens(int64_t rows, int64_t cols) {
  method::Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(rows * cols);
  std::mt19937_64 rng(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float &v : m.data)
    v = normal(rng);
  return m;
}
} // namespace

namespace {
struct MoeCompressPipelinePass
    : public mlir::moe::impl::MoeCompressPipelinePassBase<
          MoeCompressPipelinePass> {
  using Base::Base;

  struct Config {
    bool noClustering = false;
    ClusterConfig cluster;
    CompressConfig compress;
    QuantizeConfig quantize;
    ClusterRoutingAttr routing;
  };

  FailureOr<Config> parse() {
    Operation *module = getOperation();
    Config config;
    if (clusters == "none") {
      config.noClustering = true;
    } else if (!clusters.empty() &&
               (StringRef(clusters).getAsInteger(10, config.cluster.clusters) ||
                config.cluster.clusters < 1)) {
      return module->emitError() << "clusters must be a positive integer or "
                                    "'none', got '"
                                 << clusters << "'";
    }
    config.cluster.clusterSize = clusterSize;
    config.cluster.alpha = alpha;
    config.cluster.beta = beta;
    config.cluster.gamma = gamma;
    config.cluster.seed = seed;
    FailureOr<method::ClusterMethod> m = parseClusterMethod(module, method);
    if (failed(m))
      return failure();
    config.cluster.method = *m;
    if (failed(parseRankOptions(module, rank, energy, config.compress)) ||
        failed(parseSvdOptions(module, svd, oversample, powerIterations, seed,
                               config.compress)))
      return failure();
    FailureOr<QuantizeConfig> q =
        parseQuantizeOptions(module, bits, baseBits, groupSize, symmetric);
    FailureOr<ClusterRoutingAttr> r = parseRoutingOptions(
        module, routing, clustersPerToken, clusterScore);
    if (failed(q) || failed(r))
      return failure();
    config.quantize = *q;
    config.routing = *r;
    return config;
  }

  llvm::json::Object describe() {
    std::string clusterText = clusters.empty() ? "auto" : clusters.getValue();
    std::string rankText =
        rank.empty() ? (energy == 0 ? "16" : "") : rank.getValue();
    return llvm::json::Object{
        {"clusters", clusterText},
        {"cluster_size", clusterSize.getValue()},
        {"alpha", alpha.getValue()},
        {"beta", beta.getValue()},
        {"gamma", gamma.getValue()},
        {"method", method.getValue()},
        {"seed", static_cast<int64_t>(seed)},
        {"rank", rankText},
        {"energy", energy.getValue()},
        {"svd", svd.getValue()},
        {"bits", bits.getValue()},
        {"base_bits", baseBits.getValue()},
        {"group_size", groupSize.getValue()},
        {"symmetric", symmetric.getValue()},
        {"routing", routing.getValue()},
        {"clusters_per_token", clustersPerToken.getValue()},
        {"cluster_score", clusterScore.getValue()},
        {"calibration", calibration.getValue()},
        {"profile", profile.getValue()}};
  }

  FailureOr<llvm::json::Object> compressOne(LayerOp op, int64_t index,
                                            const Config &config) {
    std::optional<method::Matrix> tokens;
    if (!calibration.empty()) {
      FailureOr<method::Matrix> loaded = loadTokens(op, calibration, index);
      if (failed(loaded))
        return failure();
      if (loaded->cols != op.getHiddenSize())
        return op.emitError()
               << "calibration tokens have " << loaded->cols
               << " features but the layer's hidden size is "
               << op.getHiddenSize();
      tokens = std::move(*loaded);
    }
    // Without calibration the report still states the error against the
    // original, on standard normal tokens (fixed seed) instead.
    std::optional<method::Matrix> probe = tokens;
    bool synthetic = false;
    if (!probe && !report.empty()) {
      probe = syntheticTokens(kSyntheticTokens, op.getHiddenSize());
      synthetic = true;
    }
    // The original's answers on those tokens, while it exists.
    std::optional<method::Matrix> originalOut;
    method::Routed originalRouted;
    std::unique_ptr<LayerModel> original;
    if (probe) {
      FailureOr<std::unique_ptr<LayerModel>> model = LayerModel::build(op);
      if (failed(model))
        return failure();
      original = std::move(*model);
      originalOut = original->evaluate(probe->ref());
      originalRouted = original->route(probe->ref());
    }
    llvm::json::Object paramsBefore = accountParams(op, /*bytes=*/false);
    llvm::json::Object bytesBefore = accountParams(op, /*bytes=*/true);

    std::vector<int64_t> assignment(op.getNumExperts());
    if (config.noClustering) {
      std::iota(assignment.begin(), assignment.end(), 0);
    } else {
      FailureOr<ClusterResult> clustered =
          clusterLayer(op, config.cluster, tokens ? &*tokens : nullptr,
                       tokens ? original.get() : nullptr);
      if (failed(clustered))
        return failure();
      recordClustering(op, *clustered);
      assignment = clustered->assignment;
    }
    // Widened copies of the original weights are not needed past here.
    original.reset();
    CompressConfig compress = config.compress;
    if (!profile.empty()) {
      FailureOr<std::vector<double>> frequency =
          loadExpertFrequency(op, profile, index, op.getNumExperts());
      if (failed(frequency))
        return failure();
      compress.expertFrequency = std::move(*frequency);
    }
    CompressStats stats;
    FailureOr<ClusteredLayerOp> layer =
        compressLayer(op, assignment, compress, &stats);
    if (failed(layer) || failed(quantizeLayer(*layer, config.quantize)) ||
        failed(fuseRouting(*layer, config.routing)))
      return failure();

    std::optional<CalibrationResult> calib;
    if (probe) {
      FailureOr<std::unique_ptr<LayerModel>> model =
          LayerModel::build(*layer);
      if (failed(model))
        return failure();
      method::Matrix out = (*model)->evaluate(probe->ref());
      method::Routed routed = (*model)->route(probe->ref());
      calib = compareOnCalibration(originalRouted, *originalOut, routed, out,
                                   layer->getRouting().getTopK());
      calib->synthetic = synthetic;
    }
    return layerReport(index, *layer, std::move(paramsBefore),
                       std::move(bytesBefore), stats, calib);
  }

  void runOnOperation() override {
    FailureOr<Config> config = parse();
    if (failed(config))
      return signalPassFailure();
    SmallVector<LayerOp> layers;
    getOperation().walk([&](LayerOp op) { layers.push_back(op); });
    llvm::json::Array entries;
    for (auto [index, op] : llvm::enumerate(layers)) {
      FailureOr<llvm::json::Object> entry =
          compressOne(op, static_cast<int64_t>(index), *config);
      if (failed(entry))
        return signalPassFailure();
      entries.push_back(std::move(*entry));
    }
    if (report.empty())
      return;
    std::error_code ec;
    llvm::raw_fd_ostream os(report, ec, llvm::sys::fs::OF_Text);
    if (ec) {
      getOperation().emitError()
          << "cannot write report '" << report << "': " << ec.message();
      return signalPassFailure();
    }
    llvm::json::Object root{{"format", "moe-compression-report"},
                            {"version", kReportVersion},
                            {"config", describe()},
                            {"layers", std::move(entries)}};
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  }
};
} // namespace
