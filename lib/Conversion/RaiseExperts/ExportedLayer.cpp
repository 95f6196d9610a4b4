//===- ExportedLayer.cpp - Router and layer of an exported MoE ------------===//

#include "ExportedLayer.h"

#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"

#include <cstring>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {
/// Softmax or Sigmoid over the last axis of a matrix: the scoring and its
/// input.
std::optional<std::pair<Scoring, Value>> matchScoring(Value v) {
  v = skipNoops(v);
  if (Operation *softmax = defOp(v, "Softmax")) {
    int64_t axis = intAttr(softmax, "axis", -1);
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || (axis != -1 && axis != type.getRank() - 1))
      return std::nullopt;
    return std::make_pair(Scoring::softmax, skipNoops(softmax->getOperand(0)));
  }
  if (Operation *sigmoid = defOp(v, "Sigmoid"))
    return std::make_pair(Scoring::sigmoid, skipNoops(sigmoid->getOperand(0)));
  return std::nullopt;
}

bool isLastAxis(const SmallVector<int64_t> &axes, int64_t rank) {
  return axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1);
}
} // namespace

FailureOr<RouterMatch> raise::matchRouter(Value weights, Value selected,
                                          Operation *user, Why &why) {
  RouterMatch r;
  Value w = skipNoops(weights);
  // Renormalisation: w / w.sum(-1, keepdim=True).
  if (Operation *div = defOp(w, "Div")) {
    Operation *sum = defOp(skipNoops(div->getOperand(1)), "ReduceSum");
    std::optional<SmallVector<int64_t>> axes =
        sum && sum->getNumOperands() > 1 ? intConstant(sum->getOperand(1))
                                         : std::nullopt;
    if (!sum ||
        skipNoops(sum->getOperand(0)) != skipNoops(div->getOperand(0)) ||
        !axes || !isLastAxis(*axes, 2) || intAttr(sum, "keepdims", 1) != 1)
      return why.decline("the routing weights are divided by something else "
                         "than their sum over the selected experts");
    r.normalize = true;
    w = skipNoops(div->getOperand(0));
  }
  Operation *topk = nullptr;
  Value logits;
  if (w.getDefiningOp() &&
      w.getDefiningOp()->getName().getStringRef() == "onnx.TopK") {
    // Score, then top-k of the scores.
    topk = w.getDefiningOp();
    if (cast<OpResult>(w).getResultNumber() != 0)
      return why.decline("the routing weights are top-k indices");
    std::optional<std::pair<Scoring, Value>> s =
        matchScoring(topk->getOperand(0));
    if (!s)
      return why.decline("top-k does not select from a Softmax or Sigmoid "
                         "of router logits");
    r.scoring = s->first;
    logits = s->second;
  } else if (std::optional<std::pair<Scoring, Value>> s = matchScoring(w);
             s && s->first == Scoring::softmax) {
    // Top-k of the logits, then softmax over the k selected.
    topk = s->second.getDefiningOp();
    if (!topk || topk->getName().getStringRef() != "onnx.TopK" ||
        cast<OpResult>(s->second).getResultNumber() != 0)
      return why.decline("the routing weights are a softmax of something "
                         "else than top-k router logits");
    r.order = RoutingOrder::topk_then_score;
    logits = skipNoops(topk->getOperand(0));
  } else {
    return why.decline("the routing weights are not top-k router scores");
  }
  r.topk = topk;
  if (skipNoops(selected) != topk->getResult(1))
    return why.decline("the experts are selected by another top-k than the "
                       "one that gives the routing weights");
  auto logitsType = dyn_cast<RankedTensorType>(logits.getType());
  std::optional<SmallVector<int64_t>> k = intConstant(topk->getOperand(1));
  if (!logitsType || logitsType.getRank() != 2 || logitsType.isDynamicDim(1) ||
      (intAttr(topk, "axis", -1) != -1 && intAttr(topk, "axis", -1) != 1) ||
      intAttr(topk, "largest", 1) != 1 || !k || k->size() != 1)
    return why.decline("the top-k is not a constant-k largest selection over "
                       "the experts of (T, E) logits");
  r.experts = logitsType.getDimSize(1);
  r.k = (*k)[0];
  if (r.k < 1 || r.k > r.experts)
    return why.decline("top-k's k is outside [1, E]");
  FailureOr<Linear> router = matchLinear(logits, user, why);
  if (failed(router)) {
    if (why.declined())
      why.text = "the router logits: " + why.text;
    return failure();
  }
  r.router = std::move(*router);
  r.tokens = skipNoops(r.router.input);
  return r;
}

RoutingAttr RouterMatch::attr(MLIRContext *ctx) const {
  return RoutingAttr::get(ctx, k, scoring, order, normalize, groups,
                          groupsKept, APFloat(scale), APFloat(normEpsilon),
                          APFloat(normFloor), APFloat(mixerEpsilon),
                          weightsOnInput);
}

FailureOr<Value> raise::buildLayer(OpBuilder &builder, Operation *anchor,
                                   const RouterMatch &r,
                                   ArrayRef<std::optional<ExpertMlp>> experts,
                                   Why &why) {
  Location loc = anchor->getLoc();
  auto tokensType = cast<RankedTensorType>(r.tokens.getType());
  int64_t h = tokensType.getDimSize(1);
  Type element = tokensType.getElementType();
  if (tokensType.isDynamicDim(1) || r.router.in != h ||
      r.router.weight.type.getElementType() != element)
    return why.decline("the router's hidden size or element type differs "
                       "from the tokens'");
  const ExpertMlp *first = nullptr;
  size_t firstIndex = 0;
  for (auto [index, e] : llvm::enumerate(experts))
    if (e && !first) {
      first = &*e;
      firstIndex = index;
    }
  if (!first)
    return why.decline("no expert is present");
  bool glu = first->gate.has_value();
  int64_t inter = first->up.out;
  bool hasBias[3] = {false, false, false};
  for (auto [index, e] : llvm::enumerate(experts)) {
    if (!e)
      continue;
    const Linear *parts[3] = {e->gate ? &*e->gate : nullptr, &e->up, &e->down};
    if (e->gate.has_value() != glu || e->kind != first->kind)
      return why.decline("expert " + Twine(index) +
                         " has another activation or MLP form than expert " +
                         Twine(firstIndex));
    for (int p = 0; p < 3; ++p) {
      if (!parts[p])
        continue;
      int64_t in = p == 2 ? inter : h, out = p == 2 ? h : inter;
      if (parts[p]->in != in || parts[p]->out != out ||
          parts[p]->weight.type.getElementType() != element)
        return why.decline("expert " + Twine(index) +
                           "'s weights differ in shape or element type from "
                           "the other experts'");
      hasBias[p] |= parts[p]->bias.has_value();
    }
  }

  int64_t count = experts.size();
  size_t elementBytes = element.getIntOrFloatBitWidth() / 8;
  auto stack = [&](int part, bool bias, StringRef name) {
    int64_t in = part == 2 ? inter : h, out = part == 2 ? h : inter;
    size_t each = (bias ? out : out * in) * elementBytes;
    std::vector<char> data(count * each, 0);
    for (auto [index, e] : llvm::enumerate(experts)) {
      if (!e)
        continue;
      const Linear &lin = part == 0 ? *e->gate : part == 1 ? e->up : e->down;
      if (bias && !lin.bias)
        continue;
      const std::vector<char> &src = bias ? lin.bias->data : lin.weight.data;
      std::memcpy(data.data() + index * each, src.data(), each);
    }
    SmallVector<int64_t> shape = {count, out};
    if (!bias)
      shape.push_back(in);
    return makeResourceConstant(builder, loc,
                                RankedTensorType::get(shape, element),
                                std::move(data), name);
  };
  Value routerW = makeResourceConstant(builder, loc, r.router.weight.type,
                                       r.router.weight.data, "router_weight");
  Value routerB;
  if (r.router.bias)
    routerB = makeResourceConstant(builder, loc, r.router.bias->type,
                                   r.router.bias->data, "router_bias");
  Value gateW = glu ? stack(0, false, "gate_weight") : Value();
  Value upW = stack(1, false, "up_weight");
  Value downW = stack(2, false, "down_weight");
  Value gateB = hasBias[0] ? stack(0, true, "gate_bias") : Value();
  Value upB = hasBias[1] ? stack(1, true, "up_bias") : Value();
  Value downB = hasBias[2] ? stack(2, true, "down_bias") : Value();

  MLIRContext *ctx = builder.getContext();
  SmallVector<bool> absent;
  for (const std::optional<ExpertMlp> &e : experts)
    absent.push_back(!e.has_value());
  DenseBoolArrayAttr absentAttr;
  if (llvm::is_contained(absent, true))
    absentAttr = DenseBoolArrayAttr::get(ctx, absent);
  Value selectionB;
  if (r.selectionBias)
    selectionB = makeResourceConstant(builder, loc, r.selectionBias->type,
                                      r.selectionBias->data, "selection_bias");
  RoutingAttr routing = r.attr(ctx);
  auto act = ActivationAttr::get(ctx, first->kind, APFloat(1.0), APFloat(0.0),
                                 std::nullopt);
  auto layer = LayerOp::create(builder, loc, tokensType, r.tokens, routerW,
                               routerB, selectionB, gateW, upW, downW, gateB,
                               upB, downB,
                               routing, act, absentAttr);
  if (failed(layer.verify()))
    return failure();
  SmallVector<int64_t> lost;
  for (auto [e, mlp] : llvm::enumerate(experts))
    if (!mlp)
      lost.push_back(e);
  if (!lost.empty()) {
    InFlightDiagnostic w = anchor->emitWarning()
                           << "the export lost experts: the graph computes "
                           << count - (int64_t)lost.size() << " of " << count
                           << " experts; "
                           << (lost.size() == 1 ? "expert " : "experts ");
    llvm::interleaveComma(lost, w);
    w << (lost.size() == 1 ? " is" : " are")
      << " marked absent (tokens routed there get nothing from it, as in "
         "the exported graph)";
  }
  return layer.getResult();
}
