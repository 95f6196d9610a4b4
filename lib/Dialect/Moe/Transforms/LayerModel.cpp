//===- LayerModel.cpp - A layer op as a method::LayerSpec -----------------===//

#include "moe-mlir/Dialect/Moe/Transforms/LayerModel.h"
#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"

#include <cblas.h>
#include <cstring>

using namespace mlir;
using namespace mlir::moe;

namespace {
method::RoutingSpec routingSpec(RoutingAttr routing) {
  method::RoutingSpec spec;
  spec.topK = routing.getTopK();
  spec.sigmoid = routing.getScoring() == Scoring::sigmoid;
  spec.sparsemixer = routing.getScoring() == Scoring::sparsemixer;
  spec.topkThenScore = routing.getOrder() == RoutingOrder::topk_then_score;
  spec.normalize = routing.getNormalize();
  spec.groups = routing.getGroups();
  spec.groupsKept = routing.getGroupsKept();
  spec.scale = routing.getScale().convertToDouble();
  spec.normEpsilon = routing.getNormEpsilon().convertToDouble();
  spec.normFloor = routing.getNormFloor().convertToDouble();
  spec.mixerEpsilon = routing.getMixerEpsilon().convertToDouble();
  spec.weightsOnInput = routing.getWeightsOnInput();
  return spec;
}

method::ActivationSpec activationSpec(ActivationAttr act) {
  method::ActivationSpec spec;
  switch (act.getKind()) {
  case ActivationKind::silu:
    spec.kind = method::Activation::Silu;
    break;
  case ActivationKind::gelu:
    spec.kind = method::Activation::Gelu;
    break;
  case ActivationKind::gelu_tanh:
    spec.kind = method::Activation::GeluTanh;
    break;
  case ActivationKind::relu:
    spec.kind = method::Activation::Relu;
    break;
  case ActivationKind::identity:
    spec.kind = method::Activation::Identity;
    break;
  case ActivationKind::swiglu:
    spec.kind = method::Activation::Swiglu;
    break;
  }
  spec.alpha = act.getAlpha().convertToDouble();
  spec.beta = act.getBeta().convertToDouble();
  if (act.getLimit())
    spec.limit = act.getLimit()->getValueAsDouble();
  return spec;
}

/// One weight kind of a clustered layer: bases and stacked factors.
struct ClusteredKind {
  FloatWeight base, u, v;
  std::vector<int64_t> offsets; // first factor row of each expert, E + 1
  std::vector<float> rebuilt;   // expert being served, out x in
};
} // namespace

struct LayerModel::Impl {
  FloatWeight router, routerBias, selectionBias, gateBias, upBias, downBias;
  bool hasRouterBias = false, hasSelectionBias = false, hasGateBias = false,
       hasUpBias = false, hasDownBias = false;
  // Whole layer: stacked E x out x in weights.
  std::optional<FloatWeight> gate, up, down;
  // Clustered layer.
  std::vector<int64_t> assignment;
  std::optional<ClusteredKind> cGate, cUp, cDown;
};

LayerModel::~LayerModel() = default;

namespace {
LogicalResult readOptional(Value value, Operation *op, StringRef name,
                           FloatWeight &out, bool &present) {
  present = static_cast<bool>(value);
  if (!value)
    return success();
  FailureOr<FloatWeight> w = FloatWeight::read(value, op, name);
  if (failed(w))
    return failure();
  out = std::move(*w);
  return success();
}

FailureOr<ClusteredKind> readKind(Operation *op, StringRef kind, Value base,
                                  Value u, Value v, ArrayRef<int64_t> ranks) {
  ClusteredKind k;
  FailureOr<FloatWeight> b =
      FloatWeight::read(base, op, (kind + "_base").str());
  FailureOr<FloatWeight> uu = FloatWeight::read(u, op, (kind + "_u").str());
  FailureOr<FloatWeight> vv = FloatWeight::read(v, op, (kind + "_v").str());
  if (failed(b) || failed(uu) || failed(vv))
    return failure();
  k.base = std::move(*b);
  k.u = std::move(*uu);
  k.v = std::move(*vv);
  k.offsets.assign(1, 0);
  for (int64_t r : ranks)
    k.offsets.push_back(k.offsets.back() + r);
  return k;
}

/// W = base[cluster] + U[rows]^T V[rows], into kind.rebuilt.
method::ConstMatrixRef rebuild(ClusteredKind &kind, int64_t expert,
                               int64_t cluster) {
  int64_t out = kind.base.shape()[1], in = kind.base.shape()[2];
  kind.rebuilt.resize(out * in);
  std::memcpy(kind.rebuilt.data(), kind.base.data() + cluster * out * in,
              out * in * sizeof(float));
  int64_t first = kind.offsets[expert];
  int64_t rank = kind.offsets[expert + 1] - first;
  if (rank > 0)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rank, 1.0f,
                kind.u.data() + first * out, out, kind.v.data() + first * in,
                in, 1.0f, kind.rebuilt.data(), in);
  return {kind.rebuilt.data(), out, in};
}
} // namespace

FailureOr<std::unique_ptr<LayerModel>> LayerModel::build(Operation *op) {
  auto model = std::unique_ptr<LayerModel>(new LayerModel());
  model->impl = std::make_unique<Impl>();
  Impl &impl = *model->impl;
  method::LayerSpec &spec = model->layerSpec;

  auto common = [&](auto layer) -> LogicalResult {
    spec.numExperts = layer.getNumExperts();
    spec.hidden = layer.getHiddenSize();
    spec.inter = layer.getInterSize();
    spec.routing = routingSpec(layer.getRouting());
    spec.activation = activationSpec(layer.getActivation());
    if (auto absent = layer.getAbsent())
      spec.absent.assign(absent->begin(), absent->end());
    FailureOr<FloatWeight> router =
        FloatWeight::read(layer.getRouterWeight(), op, "router_weight");
    if (failed(router))
      return failure();
    impl.router = std::move(*router);
    spec.router = impl.router.matrix(0, spec.numExperts);
    if (failed(readOptional(layer.getRouterBias(), op, "router_bias",
                            impl.routerBias, impl.hasRouterBias)) ||
        failed(readOptional(layer.getSelectionBias(), op, "selection_bias",
                            impl.selectionBias, impl.hasSelectionBias)) ||
        failed(readOptional(layer.getGateBias(), op, "gate_bias", impl.gateBias,
                            impl.hasGateBias)) ||
        failed(readOptional(layer.getUpBias(), op, "up_bias", impl.upBias,
                            impl.hasUpBias)) ||
        failed(readOptional(layer.getDownBias(), op, "down_bias", impl.downBias,
                            impl.hasDownBias)))
      return failure();
    if (impl.hasRouterBias)
      spec.routerBias = impl.routerBias.data();
    if (impl.hasSelectionBias)
      spec.selectionBias = impl.selectionBias.data();
    return success();
  };

  if (auto layer = dyn_cast<LayerOp>(op)) {
    if (failed(common(layer)))
      return failure();
    auto read = [&](Value v, StringRef name,
                    std::optional<FloatWeight> &out) -> LogicalResult {
      if (!v)
        return success();
      FailureOr<FloatWeight> w = FloatWeight::read(v, op, name);
      if (failed(w))
        return failure();
      out = std::move(*w);
      return success();
    };
    if (failed(read(layer.getGateWeight(), "gate_weight", impl.gate)) ||
        failed(read(layer.getUpWeight(), "up_weight", impl.up)) ||
        failed(read(layer.getDownWeight(), "down_weight", impl.down)))
      return failure();
    return model;
  }

  auto layer = cast<ClusteredLayerOp>(op);
  if (failed(common(layer)))
    return failure();
  impl.assignment.assign(layer.getAssignment().begin(),
                         layer.getAssignment().end());
  if (layer.isGlu()) {
    FailureOr<ClusteredKind> k =
        readKind(op, "gate", layer.getGateBase(), layer.getGateU(),
                 layer.getGateV(), *layer.getGateRanks());
    if (failed(k))
      return failure();
    impl.cGate = std::move(*k);
  }
  FailureOr<ClusteredKind> up =
      readKind(op, "up", layer.getUpBase(), layer.getUpU(), layer.getUpV(),
               layer.getUpRanks());
  FailureOr<ClusteredKind> down =
      readKind(op, "down", layer.getDownBase(), layer.getDownU(),
               layer.getDownV(), layer.getDownRanks());
  if (failed(up) || failed(down))
    return failure();
  impl.cUp = std::move(*up);
  impl.cDown = std::move(*down);
  ClusterRoutingAttr cr = layer.getClusterRouting();
  if (cr.getMode() == ClusterRoutingMode::hierarchical) {
    method::HierarchicalSpec h;
    h.assignment = impl.assignment;
    h.numClusters = layer.getNumClusters();
    h.clustersPerToken = cr.getClustersPerToken();
    h.meanRow = cr.getScore() == ClusterScore::mean_row;
    spec.hierarchical = std::move(h);
  }
  return model;
}

method::ExpertWeights LayerModel::expert(int64_t e) {
  Impl &impl = *this->impl;
  int64_t h = layerSpec.hidden, i = layerSpec.inter;
  method::ExpertWeights w;
  if (impl.up) {
    if (impl.gate)
      w.gate = {impl.gate->data() + e * i * h, i, h};
    w.up = {impl.up->data() + e * i * h, i, h};
    w.down = {impl.down->data() + e * h * i, h, i};
  } else {
    int64_t cluster = impl.assignment[e];
    if (impl.cGate)
      w.gate = rebuild(*impl.cGate, e, cluster);
    w.up = rebuild(*impl.cUp, e, cluster);
    w.down = rebuild(*impl.cDown, e, cluster);
  }
  if (impl.hasGateBias)
    w.gateBias = impl.gateBias.data() + e * i;
  if (impl.hasUpBias)
    w.upBias = impl.upBias.data() + e * i;
  if (impl.hasDownBias)
    w.downBias = impl.downBias.data() + e * h;
  return w;
}

method::Matrix LayerModel::evaluate(method::ConstMatrixRef tokens) {
  return method::evaluateLayer(layerSpec, tokens,
                               [this](int64_t e) { return expert(e); });
}
