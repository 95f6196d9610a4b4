//===- ExportedLayer.cpp - Router and layer of an exported MoE ------------===//

#include "ExportedLayer.h"

#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

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

namespace {
bool isLastAxisOf(Value axes, int64_t rank) {
  std::optional<SmallVector<int64_t>> a = intConstant(axes);
  return a && isLastAxis(*a, rank);
}

/// Whether attribute `name` (default -1) is the last axis of a rank-`rank`
/// tensor.
bool onLastAxis(Operation *op, StringRef name, int64_t rank = 2) {
  int64_t axis = intAttr(op, name, -1);
  return axis == -1 || axis == rank - 1;
}

/// A tensor filled with `value`: a constant, ConstantOfShape, or Expand of
/// a scalar constant.
bool isFilled(Value v, double value) {
  v = skipNoops(v);
  if (Operation *c = defOp(v, "ConstantOfShape")) {
    auto attr = c->getAttrOfType<DenseElementsAttr>("value");
    if (!attr)
      return value == 0.0;
    if (!attr.isSplat())
      return false;
    if (isa<FloatType>(attr.getElementType()))
      return attr.getSplatValue<APFloat>().convertToDouble() == value;
    return attr.getSplatValue<APInt>().getSExtValue() == value;
  }
  if (Operation *e = defOp(v, "Expand"))
    return isFilled(e->getOperand(0), value);
  std::optional<double> c = scalarConstant(v);
  return c && *c == value;
}

bool isNegInf(Value v) {
  std::optional<double> c = scalarConstant(skipNoops(v));
  if (!c) {
    Operation *e = defOp(skipNoops(v), "Expand");
    Operation *cs = defOp(skipNoops(v), "ConstantOfShape");
    if (e)
      return isNegInf(e->getOperand(0));
    if (cs) {
      auto attr = cs->getAttrOfType<DenseElementsAttr>("value");
      return attr && attr.isSplat() && isa<FloatType>(attr.getElementType()) &&
             attr.getSplatValue<APFloat>().isInfinity() &&
             attr.getSplatValue<APFloat>().isNegative();
    }
    return false;
  }
  return std::isinf(*c) && *c < 0;
}

/// The logits of the router and their linear layer.
LogicalResult setLogits(RouterMatch &r, Value logits, Operation *user,
                        Why &why) {
  auto logitsType = dyn_cast<RankedTensorType>(logits.getType());
  if (!logitsType || logitsType.getRank() != 2 || logitsType.isDynamicDim(1))
    return why.decline("the router logits are not a (T, E) matrix");
  r.experts = logitsType.getDimSize(1);
  FailureOr<Linear> router = matchLinear(logits, user, why);
  if (failed(router)) {
    if (why.declined())
      why.text = "the router logits: " + why.text;
    return failure();
  }
  r.router = std::move(*router);
  r.tokens = skipNoops(r.router.input);
  return success();
}

/// A constant k largest selection over the last axis of a matrix.
std::optional<int64_t> topkK(Operation *topk, int64_t rank = 2) {
  std::optional<SmallVector<int64_t>> k = intConstant(topk->getOperand(1));
  if (!k || k->size() != 1 || !onLastAxis(topk, "axis", rank) ||
      intAttr(topk, "largest", 1) != 1)
    return std::nullopt;
  return (*k)[0];
}

/// Group-limited selection (DeepSeek-V3): the mask that keeps the experts
/// of the `kept` best groups, a group scoring the sum of its two best keys.
/// `cond` selects -inf (`negated`: it is Not(mask)) or the key.
LogicalResult matchGroupMask(Value mask, Value key, int64_t experts,
                             RouterMatch &r, Why &why) {
  Operation *toBool = defOp(skipNoops(mask), "Cast");
  Operation *flat =
      toBool ? defOp(skipNoops(toBool->getOperand(0)), "Reshape") : nullptr;
  Operation *expand =
      flat ? defOp(skipNoops(flat->getOperand(0)), "Expand") : nullptr;
  auto expandType =
      expand ? dyn_cast<RankedTensorType>(expand->getResult(0).getType())
             : RankedTensorType();
  Operation *lift =
      expand ? defOp(skipNoops(expand->getOperand(0)), "Unsqueeze") : nullptr;
  if (!lift || !expandType || expandType.getRank() != 3 ||
      expandType.isDynamicDim(1) || expandType.isDynamicDim(2) ||
      !isLastAxisOf(lift->getOperand(1), 3) ||
      intConstant(flat->getOperand(1)) != SmallVector<int64_t>{-1, experts})
    return why.decline("the selection mask is not a per-group mask spread "
                       "over each group's experts");
  int64_t groups = expandType.getDimSize(1), each = expandType.getDimSize(2);
  if (groups * each != experts)
    return why.decline("the groups do not cover the experts");
  Operation *scatter = defOp(skipNoops(lift->getOperand(0)), "ScatterElements");
  auto reduction =
      scatter ? scatter->getAttrOfType<StringAttr>("reduction") : StringAttr();
  if (!scatter || !onLastAxis(scatter, "axis") ||
      (reduction && reduction.getValue() != "none") ||
      !isFilled(scatter->getOperand(0), 0.0) ||
      !isFilled(scatter->getOperand(2), 1.0))
    return why.decline("the group mask is not ones scattered into zeros at "
                       "the kept groups");
  Value picked = skipNoops(scatter->getOperand(1));
  Operation *groupTopk = picked.getDefiningOp();
  if (!groupTopk || groupTopk->getName().getStringRef() != "onnx.TopK" ||
      cast<OpResult>(picked).getResultNumber() != 1)
    return why.decline("the kept groups are not a top-k of group scores");
  std::optional<int64_t> kept = topkK(groupTopk);
  Operation *groupSum = defOp(skipNoops(groupTopk->getOperand(0)), "ReduceSum");
  if (!kept || !groupSum || intAttr(groupSum, "keepdims", 1) != 0 ||
      groupSum->getNumOperands() < 2 ||
      !isLastAxisOf(groupSum->getOperand(1), 3))
    return why.decline("the group scores are not sums over each group");
  Value best = skipNoops(groupSum->getOperand(0));
  Operation *bestTopk = best.getDefiningOp();
  if (!bestTopk || bestTopk->getName().getStringRef() != "onnx.TopK" ||
      cast<OpResult>(best).getResultNumber() != 0 || topkK(bestTopk, 3) != 2)
    return why.decline("a group's score is not the sum of its two best "
                       "experts");
  Operation *view = defOp(skipNoops(bestTopk->getOperand(0)), "Reshape");
  if (!view ||
      intConstant(view->getOperand(1)) !=
          SmallVector<int64_t>{-1, groups, each} ||
      skipNoops(view->getOperand(0)) != key)
    return why.decline("the groups are not the selection scores viewed as "
                       "(T, groups, experts per group)");
  if (*kept < 1 || *kept > groups)
    return why.decline("the number of kept groups is outside [1, groups]");
  r.groups = groups;
  r.groupsKept = *kept;
  return success();
}

/// PhiMoE's sparsemixer (eval): Concat of two one-expert picks, each the
/// argmax of the logits (the second with the first masked to -inf),
/// weighted by a softmax over the logits near the maximum.
FailureOr<RouterMatch> matchSparseMixer(Operation *weightsCat, Value selected,
                                        Operation *user, Why &why) {
  Operation *idsCat = defOp(skipNoops(selected), "Concat");
  auto pair = [](Operation *cat) {
    return cat && cat->getNumOperands() == 2 && onLastAxis(cat, "axis");
  };
  if (!pair(weightsCat) || !pair(idsCat))
    return why.decline("the routing weights are a Concat but not of two "
                       "picks matching two expert ids");
  RouterMatch r;
  r.scoring = Scoring::sparsemixer;
  r.ids = skipNoops(selected);
  Value z, masked; // logits, and the first pick's masked logits
  std::optional<double> threshold;
  for (int j = 0; j < 2; ++j) {
    Value id = skipNoops(idsCat->getOperand(j));
    Operation *argmax = defOp(id, "ArgMax");
    Operation *gather =
        defOp(skipNoops(weightsCat->getOperand(j)), "GatherElements");
    if (!argmax || !gather || !onLastAxis(argmax, "axis") ||
        intAttr(argmax, "keepdims", 1) != 1 ||
        intAttr(argmax, "select_last_index", 0) != 0 ||
        !onLastAxis(gather, "axis") || skipNoops(gather->getOperand(1)) != id)
      return why.decline("sparsemixer pick " + Twine(j + 1) +
                         " is not a softmax gathered at an argmax");
    Value scored = skipNoops(argmax->getOperand(0));
    if (j == 0) {
      z = scored;
    } else {
      // The second pick reads the logits with the first one set to -inf.
      Operation *drop = defOp(scored, "ScatterElements");
      if (!drop || skipNoops(drop->getOperand(0)) != z ||
          skipNoops(drop->getOperand(1)) != skipNoops(idsCat->getOperand(0)) ||
          !isNegInf(drop->getOperand(2)) || !onLastAxis(drop, "axis"))
        return why.decline("sparsemixer's second pick does not exclude the "
                           "first");
    }
    Operation *softmax = defOp(skipNoops(gather->getOperand(0)), "Softmax");
    Operation *where =
        softmax ? defOp(skipNoops(softmax->getOperand(0)), "Where") : nullptr;
    if (!where || !onLastAxis(softmax, "axis") ||
        !isNegInf(where->getOperand(1)) ||
        skipNoops(where->getOperand(2)) != scored)
      return why.decline("sparsemixer pick " + Twine(j + 1) +
                         " is not weighted by a softmax of masked logits");
    // mask = (max - z) / max(|z|, max) > threshold
    Operation *greater = defOp(skipNoops(where->getOperand(0)), "Greater");
    Operation *div =
        greater ? defOp(skipNoops(greater->getOperand(0)), "Div") : nullptr;
    Operation *sub =
        div ? defOp(skipNoops(div->getOperand(0)), "Sub") : nullptr;
    Operation *factor =
        div ? defOp(skipNoops(div->getOperand(1)), "Max") : nullptr;
    Operation *maxOp =
        sub ? defOp(skipNoops(sub->getOperand(0)), "ReduceMax") : nullptr;
    std::optional<double> t =
        greater ? scalarConstant(greater->getOperand(1)) : std::nullopt;
    if (!maxOp || !factor || !t || skipNoops(sub->getOperand(1)) != z ||
        skipNoops(maxOp->getOperand(0)) != scored ||
        intAttr(maxOp, "keepdims", 1) != 1 || maxOp->getNumOperands() < 2 ||
        !isLastAxisOf(maxOp->getOperand(1), 2))
      return why.decline("sparsemixer pick " + Twine(j + 1) +
                         "'s mask is not (max - logits) / factor > "
                         "threshold");
    bool factorOk = false;
    for (int side = 0; side < 2; ++side) {
      Operation *abs = defOp(skipNoops(factor->getOperand(side)), "Abs");
      factorOk |=
          abs && skipNoops(abs->getOperand(0)) == z &&
          skipNoops(factor->getOperand(1 - side)) == maxOp->getResult(0);
    }
    if (!factorOk)
      return why.decline("sparsemixer pick " + Twine(j + 1) +
                         "'s mask does not divide by max(|logits|, max)");
    if (threshold && *threshold != *t)
      return why.decline("the two sparsemixer picks use different "
                         "thresholds");
    threshold = t;
  }
  if (!(*threshold >= 0.0))
    return why.decline("the sparsemixer threshold is negative");
  r.mixerEpsilon = *threshold / 2.0;
  r.k = 2;
  if (failed(setLogits(r, z, user, why)))
    return failure();
  return r;
}
} // namespace

FailureOr<RouterMatch> raise::matchRouter(Value weights, Value selected,
                                          Operation *user, Why &why) {
  RouterMatch r;
  Value w = skipNoops(weights);
  if (Operation *cat = defOp(w, "Concat"))
    return matchSparseMixer(cat, selected, user, why);
  // The routed scaling factor: w * c.
  if (Operation *mul = defOp(w, "Mul")) {
    for (int side = 0; side < 2; ++side)
      if (std::optional<double> c = scalarConstant(mul->getOperand(1 - side));
          c && mul->getOperand(side).getType() == w.getType()) {
        if (!(*c > 0.0))
          return why.decline("the routing weights are scaled by a "
                             "non-positive factor");
        r.scale = *c;
        w = skipNoops(mul->getOperand(side));
        break;
      }
  }
  // Renormalisation: w / (w.sum(-1, keepdim=True) [+ eps]), or w /
  // w.sum(...).clamp(min=floor).
  if (Operation *div = defOp(w, "Div")) {
    Value den = skipNoops(div->getOperand(1));
    if (Operation *add = defOp(den, "Add")) {
      for (int side = 0; side < 2; ++side)
        if (std::optional<double> eps =
                scalarConstant(add->getOperand(1 - side))) {
          r.normEpsilon = *eps;
          den = skipNoops(add->getOperand(side));
          break;
        }
    } else if (Operation *clip = defOp(den, "Clip")) {
      std::optional<double> lo =
          clip->getNumOperands() > 1 && !isNone(clip->getOperand(1))
              ? scalarConstant(clip->getOperand(1))
              : std::nullopt;
      if (lo && (clip->getNumOperands() < 3 || isNone(clip->getOperand(2)))) {
        r.normFloor = *lo;
        den = skipNoops(clip->getOperand(0));
      }
    }
    Operation *sum = defOp(den, "ReduceSum");
    if (!sum || sum->getNumOperands() < 2 ||
        skipNoops(sum->getOperand(0)) != skipNoops(div->getOperand(0)) ||
        !isLastAxisOf(sum->getOperand(1), 2) ||
        intAttr(sum, "keepdims", 1) != 1 || r.normEpsilon < 0.0 ||
        r.normFloor < 0.0)
      return why.decline("the routing weights are divided by something else "
                         "than their sum over the selected experts");
    r.normalize = true;
    w = skipNoops(div->getOperand(0));
  }
  Operation *topk = nullptr;
  Value logits;
  if (Operation *gather = defOp(w, "GatherElements")) {
    // Scores gathered at the picks of another key: a selection bias, group
    // masking, or both (DeepSeek-V3, ERNIE 4.5).
    Value idx = skipNoops(gather->getOperand(1));
    topk = idx.getDefiningOp();
    if (!onLastAxis(gather, "axis") || !topk ||
        topk->getName().getStringRef() != "onnx.TopK" ||
        cast<OpResult>(idx).getResultNumber() != 1)
      return why.decline("the routing weights are gathered at something "
                         "else than top-k indices");
    Value scores = skipNoops(gather->getOperand(0));
    std::optional<std::pair<Scoring, Value>> s = matchScoring(scores);
    if (!s)
      return why.decline("the gathered routing weights are not a Softmax or "
                         "Sigmoid of router logits");
    r.scoring = s->first;
    logits = s->second;
    Value key = skipNoops(topk->getOperand(0));
    auto type = dyn_cast<RankedTensorType>(scores.getType());
    int64_t experts = type && type.getRank() == 2 ? type.getDimSize(1) : 0;
    if (Operation *where = defOp(key, "Where")) {
      Operation *negated = defOp(skipNoops(where->getOperand(0)), "Not");
      Value mask = negated ? negated->getOperand(0) : where->getOperand(0);
      Value dropped = where->getOperand(negated ? 1 : 2);
      Value kept = skipNoops(where->getOperand(negated ? 2 : 1));
      if (!isNegInf(dropped))
        return why.decline("the selection key is masked with something else "
                           "than -inf");
      if (failed(matchGroupMask(mask, kept, experts, r, why)))
        return failure();
      key = kept;
    }
    if (key != scores) {
      Operation *add = defOp(key, "Add");
      for (int side = 0; add && side < 2 && !r.selectionBias; ++side) {
        if (skipNoops(add->getOperand(side)) != scores)
          continue;
        Why inner;
        FailureOr<Bytes> bias = readBytes(skipNoops(add->getOperand(1 - side)),
                                          user, "the selection bias", inner);
        if (failed(bias)) {
          if (!inner.declined())
            return failure();
          continue;
        }
        if (bias->type.getNumElements() != experts ||
            bias->type.getShape().back() != experts ||
            bias->type.getElementType() != type.getElementType())
          return why.decline("the selection bias is not one value per expert");
        bias->type =
            RankedTensorType::get({experts}, bias->type.getElementType());
        r.selectionBias = std::move(*bias);
      }
      if (!r.selectionBias)
        return why.decline("experts are selected on other values than the "
                           "scores plus a constant bias");
    }
  } else if (w.getDefiningOp() &&
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
    if (defOp(w, "Softmax"))
      return why.decline("the routing weights are a Softmax over another axis "
                         "than the experts");
    return why.decline("the routing weights are not top-k router scores");
  }
  r.topk = topk;
  r.ids = topk->getResult(1);
  if (skipNoops(selected) != r.ids)
    return why.decline("the experts are selected by another top-k than the "
                       "one that gives the routing weights");
  std::optional<int64_t> k = topkK(topk);
  if (!k)
    return why.decline("the top-k is not a constant-k largest selection over "
                       "the experts of (T, E) logits");
  r.k = *k;
  if (failed(setLogits(r, logits, user, why)))
    return failure();
  if (r.k < 1 || r.k > r.experts)
    return why.decline("top-k's k is outside [1, E]");
  return r;
}

FailureOr<RouterMatch> raise::matchScatteredScores(Value scores,
                                                   Operation *user, Why &why) {
  Operation *sigmoid = defOp(skipNoops(scores), "Sigmoid");
  Operation *scatter =
      sigmoid ? defOp(skipNoops(sigmoid->getOperand(0)), "ScatterElements")
              : nullptr;
  auto reduction =
      scatter ? scatter->getAttrOfType<StringAttr>("reduction") : StringAttr();
  if (!scatter || !onLastAxis(scatter, "axis") ||
      (reduction && reduction.getValue() != "none"))
    return why.decline("the routing matrix is not a Sigmoid of values "
                       "scattered along the experts");
  if (!isNegInf(scatter->getOperand(0)))
    return why.decline("the routing matrix's unpicked entries are not -inf "
                       "before the Sigmoid");
  Value values = skipNoops(scatter->getOperand(2));
  Value ids = skipNoops(scatter->getOperand(1));
  Operation *topk = values.getDefiningOp();
  if (!topk || topk->getName().getStringRef() != "onnx.TopK" ||
      cast<OpResult>(values).getResultNumber() != 0 ||
      ids != topk->getResult(1))
    return why.decline("the routing matrix does not scatter the values of "
                       "one top-k at its own indices");
  std::optional<int64_t> k = topkK(topk);
  if (!k)
    return why.decline("the top-k is not a constant-k largest selection over "
                       "the experts of (T, E) logits");
  RouterMatch r;
  r.topk = topk;
  r.ids = ids;
  r.k = *k;
  r.scoring = Scoring::sigmoid;
  r.order = RoutingOrder::topk_then_score;
  if (failed(setLogits(r, skipNoops(topk->getOperand(0)), user, why)))
    return failure();
  if (r.k < 1 || r.k > r.experts)
    return why.decline("top-k's k is outside [1, E]");
  return r;
}

RoutingAttr RouterMatch::attr(MLIRContext *ctx) const {
  return RoutingAttr::get(ctx, k, scoring, order, normalize, groups, groupsKept,
                          APFloat(scale), APFloat(normEpsilon),
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
    if (e->gate.has_value() != glu || e->kind != first->kind ||
        e->alpha != first->alpha || e->beta != first->beta ||
        e->limit != first->limit)
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
  std::optional<FloatAttr> limit;
  if (first->limit)
    limit = FloatAttr::get(Float32Type::get(ctx), *first->limit);
  auto act = ActivationAttr::get(ctx, first->kind, APFloat(first->alpha),
                                 APFloat(first->beta), limit);
  auto layer = LayerOp::create(builder, loc, tokensType, r.tokens, routerW,
                               routerB, selectionB, gateW, upW, downW, gateB,
                               upB, downB, routing, act, absentAttr);
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

LogicalResult
raise::replaceWithLayer(OpBuilder &builder, Operation *root,
                        const RouterMatch &router,
                        ArrayRef<std::optional<ExpertMlp>> experts, Why &why) {
  builder.setInsertionPoint(root);
  FailureOr<Value> layer = buildLayer(builder, root, router, experts, why);
  if (failed(layer))
    return failure();
  Value result = *layer;
  Value old = root->getResult(0);
  if (old.getType() != result.getType())
    result =
        tensor::CastOp::create(builder, root->getLoc(), old.getType(), result);
  old.replaceAllUsesWith(result);
  eraseDeadTree(root);
  return success();
}

RaiseResult CandidateRaiser::finish(LogicalResult matched, const Twine &what) {
  if (succeeded(matched))
    return RaiseResult::Raised;
  created.eraseAll();
  if (!why.declined())
    return RaiseResult::Error;
  if (recognised)
    anchor->emitRemark() << what << " not raised to moe.layer: " << why.text;
  return RaiseResult::Declined;
}
