//===- MoeOps.cpp - moe dialect operations ---------------------------------===//
//
// The verifiers here are the invariants every later pass and the lowering
// rely on; a model that breaks one gets a diagnostic naming the operand and
// the sizes that disagree, never an assert further down.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Dialect/Moe/IR/Moe.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

#include <numeric>

using namespace mlir;
using namespace mlir::moe;

namespace {

/// One expected dimension: its symbolic name (E, H, ...) and size.
struct Dim {
  const char *name;
  int64_t size;
};

/// Checks that `value` (named `name`) is a static tensor of `expected` dims,
/// naming each dim in the message so users see which size disagrees.
LogicalResult checkShape(Operation *op, StringRef name, Value value,
                         ArrayRef<Dim> expected) {
  auto type = cast<RankedTensorType>(value.getType());
  bool matches = type.getRank() == static_cast<int64_t>(expected.size()) &&
                 llvm::all_of(llvm::zip(type.getShape(), expected),
                              [](auto pair) {
                                return std::get<0>(pair) ==
                                       std::get<1>(pair).size;
                              });
  if (matches)
    return success();
  InFlightDiagnostic diag = op->emitOpError()
                            << "operand '" << name << "' has shape ";
  if (type.getRank() == 0)
    diag << "()";
  llvm::interleave(
      type.getShape(), diag,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          diag << "?";
        else
          diag << d;
      },
      "x");
  diag << " but expected ";
  llvm::interleave(
      expected, diag, [&](const Dim &d) { diag << d.name << "=" << d.size; },
      "x");
  return diag;
}

/// Every weight's logical element type must be the tokens' one: storage
/// precision is the business of #moe.quant encodings, not of mixed types.
LogicalResult verifyElementTypes(Operation *op, Type tokensElement) {
  for (OpOperand &operand : op->getOpOperands()) {
    auto type = cast<RankedTensorType>(operand.get().getType());
    if (type.getElementType() != tokensElement)
      return op->emitOpError()
             << "operand #" << operand.getOperandNumber() << " has element type "
             << type.getElementType() << " but tokens have " << tokensElement;
  }
  return success();
}

/// Sizes shared by both layer ops, read off tokens and router.
struct LayerDims {
  int64_t experts, hidden;
};

/// Checks what both layer ops share: tokens, router, result and element
/// types; returns the sizes they fix.
FailureOr<LayerDims> verifyLayerPrologue(Operation *op, Value tokens,
                                         Value router, Value routerBias,
                                         Value result) {
  auto tokensType = cast<RankedTensorType>(tokens.getType());
  auto routerType = cast<RankedTensorType>(router.getType());
  if (tokensType.getRank() != 2)
    return op->emitOpError() << "operand 'tokens' must be a T x H matrix, got "
                                "rank "
                             << tokensType.getRank();
  int64_t hidden = tokensType.getDimSize(1);
  if (ShapedType::isDynamic(hidden))
    return op->emitOpError()
           << "operand 'tokens' must have a static hidden size (dim 1)";
  if (routerType.getRank() != 2 || routerType.isDynamicDim(0) ||
      routerType.getDimSize(0) < 1)
    return op->emitOpError() << "operand 'router_weight' must be a static "
                                "E x H matrix with E >= 1";
  int64_t experts = routerType.getDimSize(0);
  if (failed(checkShape(op, "router_weight", router,
                        {{"E", experts}, {"H", hidden}})))
    return failure();
  if (routerBias && failed(checkShape(op, "router_bias", routerBias,
                                      {{"E", experts}})))
    return failure();
  if (result.getType() != tokens.getType())
    return op->emitOpError() << "result type " << result.getType()
                             << " must equal the tokens type "
                             << tokens.getType();
  if (failed(verifyElementTypes(op, tokensType.getElementType())))
    return failure();
  return LayerDims{experts, hidden};
}


LogicalResult verifyRoutingCommon(Operation *op, RoutingAttr routing,
                                  ActivationAttr activation, bool glu,
                                  int64_t experts, Value selectionBias,
                                  bool inputBiases,
                                  std::optional<ArrayRef<bool>> absent) {
  int64_t k = routing.getTopK();
  if (k > experts)
    return op->emitOpError() << "top_k (" << k
                             << ") exceeds the number of experts (" << experts
                             << ")";
  if (activation.getKind() == ActivationKind::swiglu && !glu)
    return op->emitOpError()
           << "swiglu activation needs GLU experts (a gate weight)";
  if (absent && static_cast<int64_t>(absent->size()) != experts)
    return op->emitOpError() << "absent mask has " << absent->size()
                             << " entries but the layer has " << experts
                             << " experts";
  if (selectionBias &&
      failed(checkShape(op, "selection_bias", selectionBias, {{"E", experts}})))
    return failure();
  bool topkFirst = routing.getOrder() == RoutingOrder::topk_then_score;
  if (selectionBias && topkFirst)
    return op->emitOpError() << "a selection bias needs order = "
                                "score_then_topk (it shifts scores, and "
                                "topk_then_score selects on logits)";
  if (routing.getScoring() == Scoring::sparsemixer) {
    if (k != 2 || topkFirst || selectionBias || routing.getGroups() != 1 ||
        routing.getNormalize())
      return op->emitOpError()
             << "sparsemixer routing takes top_k = 2, order = "
                "score_then_topk, no selection bias, no groups and no "
                "normalize (got top_k = "
             << k << ")";
  } else if (!routing.getMixerEpsilon().isZero()) {
    return op->emitOpError() << "mixer_epsilon applies to sparsemixer "
                                "scoring only";
  }
  int64_t groups = routing.getGroups();
  if (groups != 1) {
    if (topkFirst)
      return op->emitOpError() << "group-limited routing needs order = "
                                  "score_then_topk";
    if (experts % groups != 0 || experts / groups < 2)
      return op->emitOpError()
             << "groups (" << groups << ") must divide the " << experts
             << " experts into groups of at least 2";
    int64_t kept = routing.getGroupsKept();
    if (kept > groups)
      return op->emitOpError() << "groups_kept (" << kept
                               << ") exceeds groups (" << groups << ")";
    if (kept * (experts / groups) < k)
      return op->emitOpError()
             << "the " << kept << " kept groups hold " << kept * (experts / groups)
             << " experts, fewer than top_k (" << k << ")";
  }
  if (!routing.getNormalize() &&
      (!routing.getNormEpsilon().isZero() || !routing.getNormFloor().isZero()))
    return op->emitOpError() << "norm_epsilon and norm_floor need normalize";
  if (routing.getWeightsOnInput() && inputBiases)
    return op->emitOpError() << "weights_on_input routing needs experts "
                                "without gate or up biases (the weight "
                                "scales the input's linear images)";
  return success();
}

/// Biases are plain float tensors: per expert, one per output row.
LogicalResult verifyBiases(Operation *op, bool glu, Value gateBias,
                           Value upBias, Value downBias, int64_t experts,
                           int64_t inter, int64_t hidden) {
  if (gateBias && !glu)
    return op->emitOpError() << "operand 'gate_bias' needs a gate weight";
  if (gateBias && failed(checkShape(op, "gate_bias", gateBias,
                                    {{"E", experts}, {"I", inter}})))
    return failure();
  if (upBias &&
      failed(checkShape(op, "up_bias", upBias, {{"E", experts}, {"I", inter}})))
    return failure();
  if (downBias && failed(checkShape(op, "down_bias", downBias,
                                    {{"E", experts}, {"H", hidden}})))
    return failure();
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// LayerOp
//===----------------------------------------------------------------------===//

LogicalResult LayerOp::verify() {
  Operation *op = getOperation();
  FailureOr<LayerDims> dims = verifyLayerPrologue(
      op, getTokens(), getRouterWeight(), getRouterBias(), getResult());
  if (failed(dims))
    return failure();
  int64_t e = dims->experts, h = dims->hidden;
  auto upType = getUpWeight().getType();
  if (upType.getRank() != 3 || upType.isDynamicDim(1) ||
      upType.getDimSize(1) < 1)
    return emitOpError() << "operand 'up_weight' must be a static E x I x H "
                            "tensor with I >= 1";
  int64_t i = upType.getDimSize(1);
  if (failed(checkShape(op, "up_weight", getUpWeight(),
                        {{"E", e}, {"I", i}, {"H", h}})))
    return failure();
  if (getGateWeight() &&
      failed(checkShape(op, "gate_weight", getGateWeight(),
                        {{"E", e}, {"I", i}, {"H", h}})))
    return failure();
  if (failed(checkShape(op, "down_weight", getDownWeight(),
                        {{"E", e}, {"H", h}, {"I", i}})))
    return failure();
  if (failed(verifyBiases(op, isGlu(), getGateBias(), getUpBias(),
                          getDownBias(), e, i, h)))
    return failure();
  return verifyRoutingCommon(op, getRouting(), getActivation(), isGlu(), e,
                             getSelectionBias(),
                             getGateBias() || getUpBias(), getAbsent());
}

//===----------------------------------------------------------------------===//
// ClusteredLayerOp
//===----------------------------------------------------------------------===//

namespace {
/// Checks one weight kind's base and factors against its ranks.
LogicalResult verifyWeightKind(Operation *op, StringRef kind, Value base,
                               Value u, Value v, ArrayRef<int64_t> ranks,
                               int64_t experts, int64_t clusters, Dim out,
                               Dim in) {
  std::string baseName = (kind + "_base").str();
  std::string ranksName = (kind + "_ranks").str();
  if (failed(checkShape(op, baseName, base,
                        {{"G", clusters}, out, in})))
    return failure();
  if (static_cast<int64_t>(ranks.size()) != experts)
    return op->emitOpError() << "'" << ranksName << "' has " << ranks.size()
                             << " entries but the layer has " << experts
                             << " experts";
  int64_t maxRank = std::min(out.size, in.size);
  for (auto [expert, rank] : llvm::enumerate(ranks))
    if (rank < 0 || rank > maxRank)
      return op->emitOpError()
             << "'" << ranksName << "' gives expert " << expert << " rank "
             << rank << ", outside [0, " << maxRank << "]";
  int64_t total = std::accumulate(ranks.begin(), ranks.end(), int64_t{0});
  if (failed(checkShape(op, (kind + "_u").str(), u, {{"R", total}, out})) ||
      failed(checkShape(op, (kind + "_v").str(), v, {{"R", total}, in})))
    return failure();
  for (Value w : {base, u, v}) {
    Attribute encoding = cast<RankedTensorType>(w.getType()).getEncoding();
    if (encoding && !isa<QuantAttr>(encoding))
      return op->emitOpError()
             << "weights of kind '" << kind
             << "' may carry only a #moe.quant encoding, got " << encoding;
  }
  return success();
}
} // namespace

LogicalResult ClusteredLayerOp::verify() {
  Operation *op = getOperation();
  FailureOr<LayerDims> dims = verifyLayerPrologue(
      op, getTokens(), getRouterWeight(), getRouterBias(), getResult());
  if (failed(dims))
    return failure();
  int64_t e = dims->experts, h = dims->hidden;

  auto upType = getUpBase().getType();
  if (upType.getRank() != 3 || upType.isDynamicDim(0) ||
      upType.isDynamicDim(1) || upType.getDimSize(0) < 1 ||
      upType.getDimSize(1) < 1)
    return emitOpError() << "operand 'up_base' must be a static G x I x H "
                            "tensor with G >= 1 and I >= 1";
  int64_t g = upType.getDimSize(0), i = upType.getDimSize(1);

  ArrayRef<int64_t> assignment = getAssignment();
  if (static_cast<int64_t>(assignment.size()) != e)
    return emitOpError() << "assignment has " << assignment.size()
                         << " entries but the layer has " << e << " experts";
  SmallVector<int64_t> clusterSizes(g, 0);
  for (auto [expert, cluster] : llvm::enumerate(assignment)) {
    if (cluster < 0 || cluster >= g)
      return emitOpError() << "assignment puts expert " << expert
                           << " in cluster " << cluster << ", outside [0, "
                           << g << ")";
    ++clusterSizes[cluster];
  }
  for (auto [cluster, size] : llvm::enumerate(clusterSizes))
    if (size == 0)
      return emitOpError() << "cluster " << cluster << " has no experts";

  bool gluParts = getGateBase() && getGateU() && getGateV() && getGateRanks();
  bool noGluParts =
      !getGateBase() && !getGateU() && !getGateV() && !getGateRanks();
  if (!gluParts && !noGluParts)
    return emitOpError() << "gate_base, gate_u, gate_v and gate_ranks must be "
                            "given together or not at all";
  if (gluParts && failed(verifyWeightKind(op, "gate", getGateBase(),
                                          getGateU(), getGateV(),
                                          *getGateRanks(), e, g, {"I", i},
                                          {"H", h})))
    return failure();
  if (failed(verifyWeightKind(op, "up", getUpBase(), getUpU(), getUpV(),
                              getUpRanks(), e, g, {"I", i}, {"H", h})) ||
      failed(verifyWeightKind(op, "down", getDownBase(), getDownU(),
                              getDownV(), getDownRanks(), e, g, {"H", h},
                              {"I", i})))
    return failure();
  if (failed(verifyBiases(op, isGlu(), getGateBias(), getUpBias(),
                          getDownBias(), e, i, h)))
    return failure();
  if (failed(verifyRoutingCommon(op, getRouting(), getActivation(), isGlu(), e,
                                 getSelectionBias(),
                                 getGateBias() || getUpBias(), getAbsent())))
    return failure();

  ClusterRoutingAttr clusterRouting = getClusterRouting();
  if (clusterRouting.getMode() == ClusterRoutingMode::hierarchical) {
    int64_t perToken = clusterRouting.getClustersPerToken();
    if (perToken > g)
      return emitOpError() << "clusters_per_token (" << perToken
                           << ") exceeds the number of clusters (" << g << ")";
    // Stage 2 must always find top_k candidates, whichever clusters win.
    llvm::sort(clusterSizes);
    int64_t worst = std::accumulate(clusterSizes.begin(),
                                    clusterSizes.begin() + perToken, int64_t{0});
    if (worst < getRouting().getTopK())
      return emitOpError() << "the " << perToken
                           << " smallest clusters hold " << worst
                           << " experts, fewer than top_k ("
                           << getRouting().getTopK() << ")";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// QuantizedWeightOp
//===----------------------------------------------------------------------===//

LogicalResult QuantizedWeightOp::verify() {
  auto resultType = getResult().getType();
  auto quant = dyn_cast_or_null<QuantAttr>(resultType.getEncoding());
  if (!quant)
    return emitOpError() << "result must carry a #moe.quant encoding";
  ArrayRef<int64_t> shape = resultType.getShape();

  auto expectTensor = [&](StringRef name, Value value,
                          ArrayRef<int64_t> wantShape,
                          Type wantElement) -> LogicalResult {
    auto type = cast<RankedTensorType>(value.getType());
    if (type.getShape() == wantShape && type.getElementType() == wantElement)
      return success();
    InFlightDiagnostic diag = emitOpError()
                              << "operand '" << name << "' is " << type
                              << " but the encoding needs ";
    diag << RankedTensorType::get(wantShape, wantElement);
    return diag;
  };

  if (failed(expectTensor("data", getData(), quant.getDataShape(shape),
                          quant.getDataElementType())))
    return failure();
  if (!quant.isInteger()) {
    if (getScales() || getZeroPoints())
      return emitOpError() << "float storage takes no scales or zero points";
    return success();
  }
  if (!getScales())
    return emitOpError() << "integer storage needs a 'scales' operand";
  SmallVector<int64_t> scaleShape = quant.getScaleShape(shape);
  if (failed(expectTensor("scales", getScales(), scaleShape,
                          quant.getScaleType())))
    return failure();
  if (quant.getSymmetric()) {
    if (getZeroPoints())
      return emitOpError() << "symmetric storage takes no zero points";
    return success();
  }
  if (!getZeroPoints())
    return emitOpError() << "asymmetric storage needs a 'zero_points' operand";
  return expectTensor("zero_points", getZeroPoints(), scaleShape,
                      quant.getZeroPointType());
}

#define GET_OP_CLASSES
#include "moe-mlir/Dialect/Moe/IR/MoeOps.cpp.inc"
