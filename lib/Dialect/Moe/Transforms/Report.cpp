//===- Report.cpp - The compression report ---------------------------------===//

#include "moe-mlir/Dialect/Moe/Transforms/Report.h"

#include <cmath>
#include <set>

using namespace mlir;
using namespace mlir::moe;

namespace {
int64_t numElements(Value v) {
  return v ? cast<RankedTensorType>(v.getType()).getNumElements() : 0;
}

/// Bytes a weight occupies as stored: its storage tensors when quantised.
int64_t storedBytes(Value v) {
  if (!v)
    return 0;
  auto bytesOf = [](Value t) -> int64_t {
    if (!t)
      return 0;
    auto type = cast<RankedTensorType>(t.getType());
    return type.getNumElements() * type.getElementTypeBitWidth() / 8;
  };
  if (auto q = v.getDefiningOp<QuantizedWeightOp>())
    return bytesOf(q.getData()) + bytesOf(q.getScales()) +
           bytesOf(q.getZeroPoints());
  return bytesOf(v);
}

int64_t measure(Value v, bool bytes) {
  return bytes ? storedBytes(v) : numElements(v);
}

int64_t total(const llvm::json::Object &parts) {
  int64_t sum = 0;
  for (const auto &kv : parts) {
    if (auto n = kv.second.getAsInteger())
      sum += *n;
    else if (const llvm::json::Object *inner = kv.second.getAsObject())
      sum += total(*inner);
  }
  return sum;
}
} // namespace

llvm::json::Object mlir::moe::accountParams(Operation *layer, bool bytes) {
  llvm::json::Object parts;
  if (auto whole = dyn_cast<LayerOp>(layer)) {
    LayerOp op = whole;
    parts["router"] = measure(op.getRouterWeight(), bytes) +
                      measure(op.getRouterBias(), bytes);
    if (op.isGlu())
      parts["gate"] = measure(op.getGateWeight(), bytes);
    parts["up"] = measure(op.getUpWeight(), bytes);
    parts["down"] = measure(op.getDownWeight(), bytes);
    parts["bias"] = measure(op.getGateBias(), bytes) +
                    measure(op.getUpBias(), bytes) +
                    measure(op.getDownBias(), bytes);
  } else {
    auto op = cast<ClusteredLayerOp>(layer);
    parts["router"] = measure(op.getRouterWeight(), bytes) +
                      measure(op.getRouterBias(), bytes);
    auto kind = [&](Value base, Value u, Value v) {
      return llvm::json::Object{
          {"base", measure(base, bytes)},
          {"residual", measure(u, bytes) + measure(v, bytes)}};
    };
    if (op.isGlu())
      parts["gate"] = kind(op.getGateBase(), op.getGateU(), op.getGateV());
    parts["up"] = kind(op.getUpBase(), op.getUpU(), op.getUpV());
    parts["down"] = kind(op.getDownBase(), op.getDownU(), op.getDownV());
    parts["bias"] = measure(op.getGateBias(), bytes) +
                    measure(op.getUpBias(), bytes) +
                    measure(op.getDownBias(), bytes);
  }
  int64_t sum = total(parts);
  parts["total"] = sum;
  return parts;
}

CalibrationResult mlir::moe::compareOnCalibration(
    const method::Routed &original, const method::Matrix &originalOut,
    const method::Routed &compressed, const method::Matrix &compressedOut,
    int64_t topK) {
  CalibrationResult result;
  result.tokens = originalOut.rows;
  double matches = 0, overlap = 0;
  for (int64_t t = 0; t < result.tokens; ++t) {
    std::set<int64_t> a(original.experts.begin() + t * topK,
                        original.experts.begin() + (t + 1) * topK);
    std::set<int64_t> b(compressed.experts.begin() + t * topK,
                        compressed.experts.begin() + (t + 1) * topK);
    int64_t common = 0;
    for (int64_t e : a)
      common += b.count(e);
    matches += common == topK;
    overlap += static_cast<double>(common) / topK;
  }
  double diff = 0, norm = 0;
  for (size_t k = 0; k < originalOut.data.size(); ++k) {
    double d = double(originalOut.data[k]) - compressedOut.data[k];
    diff += d * d;
    norm += double(originalOut.data[k]) * originalOut.data[k];
  }
  if (result.tokens > 0) {
    result.exactSetMatch = matches / result.tokens;
    result.meanOverlap = overlap / result.tokens;
  }
  result.outputRelativeError = norm > 0 ? std::sqrt(diff / norm) : 0.0;
  return result;
}

llvm::json::Object mlir::moe::layerReport(
    int64_t index, ClusteredLayerOp op, llvm::json::Object paramsBefore,
    llvm::json::Object bytesBefore, const CompressStats &stats,
    const std::optional<CalibrationResult> &calib) {
  llvm::json::Object entry;
  entry["index"] = index;
  std::string loc;
  llvm::raw_string_ostream locStream(loc);
  op.getLoc().print(locStream);
  entry["location"] = locStream.str();
  entry["num_experts"] = op.getNumExperts();
  entry["num_clusters"] = op.getNumClusters();
  entry["hidden"] = op.getHiddenSize();
  entry["inter"] = op.getInterSize();
  entry["glu"] = op.isGlu();
  entry["top_k"] = op.getRouting().getTopK();
  ClusterRoutingAttr cr = op.getClusterRouting();
  entry["routing"] = llvm::json::Object{
      {"mode", stringifyClusterRoutingMode(cr.getMode())},
      {"clusters_per_token", cr.getClustersPerToken()},
      {"score", stringifyClusterScore(cr.getScore())}};
  entry["assignment"] = llvm::json::Array(op.getAssignment());

  llvm::json::Value similarity = nullptr;
  if (auto sim = op->getAttrOfType<DenseElementsAttr>(kSimilarityAttr)) {
    int64_t n = op.getNumExperts();
    llvm::json::Array rows;
    auto values = llvm::to_vector(sim.getValues<float>());
    for (int64_t i = 0; i < n; ++i) {
      llvm::json::Array row;
      for (int64_t j = 0; j < n; ++j)
        row.push_back(static_cast<double>(values[i * n + j]));
      rows.push_back(std::move(row));
    }
    similarity = std::move(rows);
  }
  entry["similarity"] = std::move(similarity);

  llvm::json::Object ranks, errors;
  auto addKind = [&](StringRef name, const KindStats &k) {
    ranks[name] = llvm::json::Array(k.ranks);
    errors[name] = llvm::json::Array(k.relativeError);
  };
  if (stats.gate)
    addKind("gate", *stats.gate);
  addKind("up", stats.up);
  addKind("down", stats.down);
  entry["ranks"] = std::move(ranks);
  entry["reconstruction_error"] = std::move(errors);

  llvm::json::Object paramsAfter = accountParams(op, /*bytes=*/false);
  llvm::json::Object bytesAfter = accountParams(op, /*bytes=*/true);
  double ratioParams = double(*paramsBefore.getInteger("total")) /
                       std::max<int64_t>(*paramsAfter.getInteger("total"), 1);
  double ratioBytes = double(*bytesBefore.getInteger("total")) /
                      std::max<int64_t>(*bytesAfter.getInteger("total"), 1);
  entry["params"] = llvm::json::Object{{"before", std::move(paramsBefore)},
                                       {"after", std::move(paramsAfter)}};
  entry["bytes"] = llvm::json::Object{{"before", std::move(bytesBefore)},
                                      {"after", std::move(bytesAfter)}};
  entry["compression_ratio"] =
      llvm::json::Object{{"params", ratioParams}, {"bytes", ratioBytes}};
  entry["calibration"] = nullptr;
  if (calib)
    entry[calib->synthetic ? "synthetic_check" : "calibration"] =
        llvm::json::Object{
            {"tokens", calib->tokens},
            {"routing_agreement",
             llvm::json::Object{{"exact_set_match", calib->exactSetMatch},
                                {"mean_overlap", calib->meanOverlap}}},
            {"output_relative_error", calib->outputRelativeError}};
  return entry;
}
