//===- DumpLayers.cpp - Write moe layers as .npz --------------------------===//
//
// The dumps are how every numeric test reaches the float64 reference
// evaluator: they must carry the weights exactly as stored (no conversion),
// and every attribute the evaluator needs to compute the layer.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Dialect/Moe/IR/Moe.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"
#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"
#include "moe-runtime/Npz.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEDUMPLAYERSPASS
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// NumPy's descr and name for an element type as the dump stores it.
struct NumpyType {
  const char *descr;
  const char *name;
};

FailureOr<NumpyType> numpyTypeOf(Type type) {
  if (type.isF32())
    return NumpyType{"<f4", "float32"};
  if (type.isF16())
    return NumpyType{"<f2", "float16"};
  // NumPy has no bfloat16: keep the bits, say what they are in meta.
  if (type.isBF16())
    return NumpyType{"<u2", "bfloat16"};
  // Quantised codes and zero points are unsigned bytes by definition.
  if (type.isSignlessInteger(8))
    return NumpyType{"|u1", "uint8"};
  return failure();
}

class LayerWriter {
public:
  LayerWriter(Operation *op) : op(op) {}

  /// Adds operand `value` under `name`, seeing through moe.quantized_weight.
  LogicalResult addWeight(StringRef name, Value value) {
    if (!value)
      return success();
    if (auto quantized = value.getDefiningOp<QuantizedWeightOp>()) {
      QuantAttr quant = quantized.getQuant();
      llvm::json::Object entry;
      entry["storage"] = stringifyQuantStorage(quant.getStorage());
      entry["group_size"] = quant.getGroupSize();
      entry["symmetric"] = quant.getSymmetric();
      entry["scale_dtype"] = typeName(quant.getScaleType());
      entry["zero_point_dtype"] = typeName(quant.getZeroPointType());
      entry["packing"] = stringifyNibbleOrder(quant.getPacking());
      entry["shape"] = llvm::json::Array(quantized.getType().getShape());
      quantMeta[name] = std::move(entry);
      return failure(
          failed(addConstant((name + ".data").str(), quantized.getData())) ||
          failed(
              addOptional((name + ".scales").str(), quantized.getScales())) ||
          failed(addOptional((name + ".zero_points").str(),
                             quantized.getZeroPoints())));
    }
    return addConstant(name.str(), value);
  }

  llvm::json::Object &meta() { return metaObject; }

  LogicalResult write(StringRef path) {
    if (!quantMeta.empty())
      metaObject["quant"] = std::move(quantMeta);
    metaObject["dtypes"] = std::move(dtypes);
    std::string json;
    llvm::raw_string_ostream os(json);
    os << llvm::json::Value(std::move(metaObject));
    os.flush();
    ::moe::rt::NpyArray metaArray{
        "meta",
        "|u1",
        {static_cast<int64_t>(json.size())},
        std::vector<uint8_t>(json.begin(), json.end())};
    arrays.push_back(std::move(metaArray));
    std::string error = ::moe::rt::writeNpz(path.str(), arrays);
    if (!error.empty())
      return op->emitError() << "cannot write layer dump: " << error;
    return success();
  }

private:
  static llvm::json::Value typeName(Type type) {
    if (!type)
      return nullptr;
    FailureOr<NumpyType> t = numpyTypeOf(type);
    return succeeded(t) ? llvm::json::Value(t->name)
                        : llvm::json::Value(nullptr);
  }

  LogicalResult addOptional(const std::string &name, Value value) {
    return value ? addConstant(name, value) : success();
  }

  LogicalResult addConstant(const std::string &name, Value value) {
    auto type = cast<RankedTensorType>(value.getType());
    FailureOr<NumpyType> npType = numpyTypeOf(type.getElementType());
    if (failed(npType))
      return op->emitError()
             << "cannot dump operand '" << name << "': element type "
             << type.getElementType() << " has no NumPy equivalent";
    std::vector<char> storage;
    FailureOr<ArrayRef<char>> raw = readConstantBytes(value, op, name, storage);
    if (failed(raw))
      return failure();
    std::vector<uint8_t> data(raw->begin(), raw->end());
    dtypes[name] = npType->name;
    arrays.push_back(::moe::rt::NpyArray{
        name, npType->descr,
        std::vector<int64_t>(type.getShape().begin(), type.getShape().end()),
        std::move(data)});
    return success();
  }

  Operation *op;
  std::vector<::moe::rt::NpyArray> arrays;
  llvm::json::Object metaObject, quantMeta, dtypes;
};

/// Meta entries common to both layer ops.
template <typename OpTy>
void describeLayer(LayerWriter &writer, OpTy op, int64_t index) {
  llvm::json::Object &meta = writer.meta();
  meta["format"] = "moe-layer-dump";
  meta["version"] = 1;
  meta["op"] = op->getName().getStringRef();
  meta["index"] = index;
  std::string loc;
  llvm::raw_string_ostream locStream(loc);
  op.getLoc().print(locStream);
  meta["location"] = locStream.str();
  meta["num_experts"] = op.getNumExperts();
  meta["hidden"] = op.getHiddenSize();
  meta["inter"] = op.getInterSize();
  meta["glu"] = op.isGlu();

  RoutingAttr routing = op.getRouting();
  meta["routing"] = llvm::json::Object{
      {"top_k", routing.getTopK()},
      {"scoring", stringifyScoring(routing.getScoring())},
      {"order", stringifyRoutingOrder(routing.getOrder())},
      {"normalize", routing.getNormalize()},
      {"groups", routing.getGroups()},
      {"groups_kept", routing.getGroupsKept()},
      {"scale", routing.getScale().convertToDouble()},
      {"norm_epsilon", routing.getNormEpsilon().convertToDouble()},
      {"norm_floor", routing.getNormFloor().convertToDouble()},
      {"mixer_epsilon", routing.getMixerEpsilon().convertToDouble()},
      {"weights_on_input", routing.getWeightsOnInput()}};

  ActivationAttr act = op.getActivation();
  llvm::json::Value limit = nullptr;
  if (act.getLimit())
    limit = act.getLimit()->getValueAsDouble();
  meta["activation"] =
      llvm::json::Object{{"kind", stringifyActivationKind(act.getKind())},
                         {"alpha", act.getAlpha().convertToDouble()},
                         {"beta", act.getBeta().convertToDouble()},
                         {"limit", std::move(limit)}};

  llvm::json::Array absent;
  std::optional<ArrayRef<bool>> mask = op.getAbsent();
  for (int64_t e = 0; e < op.getNumExperts(); ++e)
    absent.push_back(mask ? (*mask)[e] : false);
  meta["absent"] = std::move(absent);
}

LogicalResult dumpLayer(LayerOp op, int64_t index, StringRef path) {
  LayerWriter writer(op);
  describeLayer(writer, op, index);
  if (failed(writer.addWeight("router_weight", op.getRouterWeight())) ||
      failed(writer.addWeight("router_bias", op.getRouterBias())) ||
      failed(writer.addWeight("selection_bias", op.getSelectionBias())) ||
      failed(writer.addWeight("gate_weight", op.getGateWeight())) ||
      failed(writer.addWeight("up_weight", op.getUpWeight())) ||
      failed(writer.addWeight("down_weight", op.getDownWeight())) ||
      failed(writer.addWeight("gate_bias", op.getGateBias())) ||
      failed(writer.addWeight("up_bias", op.getUpBias())) ||
      failed(writer.addWeight("down_bias", op.getDownBias())))
    return failure();
  return writer.write(path);
}

LogicalResult dumpLayer(ClusteredLayerOp op, int64_t index, StringRef path) {
  LayerWriter writer(op);
  describeLayer(writer, op, index);
  llvm::json::Object &meta = writer.meta();
  meta["num_clusters"] = op.getNumClusters();
  meta["assignment"] = llvm::json::Array(op.getAssignment());
  llvm::json::Object ranks;
  if (op.getGateRanks())
    ranks["gate"] = llvm::json::Array(*op.getGateRanks());
  ranks["up"] = llvm::json::Array(op.getUpRanks());
  ranks["down"] = llvm::json::Array(op.getDownRanks());
  meta["ranks"] = std::move(ranks);
  ClusterRoutingAttr cr = op.getClusterRouting();
  meta["cluster_routing"] =
      llvm::json::Object{{"mode", stringifyClusterRoutingMode(cr.getMode())},
                         {"clusters_per_token", cr.getClustersPerToken()},
                         {"score", stringifyClusterScore(cr.getScore())}};

  struct Named {
    const char *name;
    Value value;
  };
  Named weights[] = {{"router_weight", op.getRouterWeight()},
                     {"router_bias", op.getRouterBias()},
                     {"selection_bias", op.getSelectionBias()},
                     {"gate_base", op.getGateBase()},
                     {"gate_u", op.getGateU()},
                     {"gate_v", op.getGateV()},
                     {"up_base", op.getUpBase()},
                     {"up_u", op.getUpU()},
                     {"up_v", op.getUpV()},
                     {"down_base", op.getDownBase()},
                     {"down_u", op.getDownU()},
                     {"down_v", op.getDownV()},
                     {"gate_bias", op.getGateBias()},
                     {"up_bias", op.getUpBias()},
                     {"down_bias", op.getDownBias()}};
  for (const Named &w : weights)
    if (failed(writer.addWeight(w.name, w.value)))
      return failure();
  return writer.write(path);
}

struct MoeDumpLayersPass
    : public mlir::moe::impl::MoeDumpLayersPassBase<MoeDumpLayersPass> {
  using Base::Base;

  void runOnOperation() override {
    if (dir.empty()) {
      getOperation().emitError()
          << "moe-dump-layers needs a directory: --moe-dump-layers=dir=DIR";
      return signalPassFailure();
    }
    if (std::error_code ec = llvm::sys::fs::create_directories(dir)) {
      getOperation().emitError()
          << "cannot create directory '" << dir << "': " << ec.message();
      return signalPassFailure();
    }
    int64_t index = 0;
    WalkResult result = getOperation().walk([&](Operation *op) {
      SmallString<128> path(dir);
      llvm::sys::path::append(path, "layer_" + std::to_string(index) + ".npz");
      LogicalResult written = success();
      if (auto layer = dyn_cast<LayerOp>(op))
        written = dumpLayer(layer, index++, path);
      else if (auto clustered = dyn_cast<ClusteredLayerOp>(op))
        written = dumpLayer(clustered, index++, path);
      return failed(written) ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
