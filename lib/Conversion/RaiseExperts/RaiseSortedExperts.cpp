//===- RaiseSortedExperts.cpp - sorted-token MoE blocks to moe.layer ------===//
//
// JetMoE's block (dynamo export) sorts the (token, slot) pairs by expert,
// cuts the gathered rows into one data-dependent group per expert, runs
// each group through its expert and adds the weighted rows back:
//   order  = argsort(ids.flat)          (TopK, largest = 0, K = T*k)
//   token  = trunc(order / k)
//   groups = split(x[token], counts)    counts[e] = #tokens picking e
//   out    = concat(W2[e] h_e) * gates.flat[order]
//   y      = zeros(T, H).index_add(token, out)   (ScatterND, add)
// Within a group every row belongs to that expert because the sort is by
// expert id and the split sizes are the per-expert counts in expert order.
//
//===----------------------------------------------------------------------===//

#include "ExportedLayer.h"
#include "GatedExperts.h"
#include "RaiseExperts.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {

/// Through Reshape/Squeeze/Unsqueeze of single values and Gather of
/// element 0: the value of a one-element slice.
Value throughScalarViews(Value v) {
  while (true) {
    v = skipNoops(v);
    Operation *op = v.getDefiningOp();
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!op || !type || type.getNumElements() != 1 || op->getNumOperands() < 1)
      return v;
    StringRef name = op->getName().getStringRef();
    bool view = name == "onnx.Reshape" || name == "onnx.Squeeze" ||
                name == "onnx.Unsqueeze";
    bool first = name == "onnx.Gather" && op->getNumOperands() == 2 &&
                 intConstant(op->getOperand(1)) == SmallVector<int64_t>{0};
    auto in = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
    if (!(view || first) || !in || in.getNumElements() != 1)
      return v;
    v = op->getOperand(0);
  }
}

/// Whether `sizes` are the per-expert counts (T, E) -> (E) of `ids`:
/// ReduceSum over tokens of ones scattered into zeros at the ids.
bool isExpertCounts(Value sizes, Value ids, int64_t experts) {
  Operation *sum = defOp(skipNoops(sizes), "ReduceSum");
  if (!sum || sum->getNumOperands() < 2 || intAttr(sum, "keepdims", 1) != 0 ||
      !axesAre(sum->getOperand(1), {0, -2}))
    return false;
  Value counted = sum->getOperand(0);
  if (Operation *cast = defOp(counted, "Cast"))
    counted = cast->getOperand(0);
  Operation *scatter = defOp(skipNoops(counted), "ScatterElements");
  auto type = scatter
                  ? dyn_cast<RankedTensorType>(scatter->getResult(0).getType())
                  : RankedTensorType();
  auto reduction =
      scatter ? scatter->getAttrOfType<StringAttr>("reduction") : StringAttr();
  int64_t axis = scatter ? intAttr(scatter, "axis", 0) : 0;
  return scatter && type && type.getRank() == 2 &&
         type.getDimSize(1) == experts && (axis == 1 || axis == -1) &&
         (!reduction || reduction.getValue() == "none") &&
         skipNoops(scatter->getOperand(1)) == ids &&
         isZeros(scatter->getOperand(0)) &&
         (isScalar(scatter->getOperand(2), 1.0) || [&] {
           Operation *ones =
               defOp(skipNoops(scatter->getOperand(2)), "ConstantOfShape");
           auto value = ones ? ones->getAttrOfType<DenseElementsAttr>("value")
                             : DenseElementsAttr();
           return value && value.isSplat() &&
                  isa<FloatType>(value.getElementType()) &&
                  value.getSplatValue<APFloat>().convertToDouble() == 1.0;
         }());
}

/// Split sizes that are counts[0], ..., counts[E-1] of one count vector.
Value countsBehind(Value splitSizes, int64_t experts) {
  Operation *cat = defOp(skipNoops(splitSizes), "Concat");
  if (!cat || cat->getNumOperands() != experts || intAttr(cat, "axis", 0) != 0)
    return {};
  Value counts;
  for (auto [e, piece] : llvm::enumerate(cat->getOperands())) {
    Operation *slice = defOp(throughScalarViews(piece), "Slice");
    if (!slice || slice->getNumOperands() < 4 ||
        intConstant(slice->getOperand(1)) != SmallVector<int64_t>{(int64_t)e} ||
        intConstant(slice->getOperand(2)) !=
            SmallVector<int64_t>{(int64_t)e + 1} ||
        !axesAre(slice->getOperand(3), {0}) ||
        (slice->getNumOperands() > 4 && !isNone(slice->getOperand(4)) &&
         intConstant(slice->getOperand(4)) != SmallVector<int64_t>{1}))
      return {};
    Value source = skipNoops(slice->getOperand(0));
    if (counts && source != counts)
      return {};
    counts = source;
  }
  return counts;
}

/// Per-group linear layers of one Split: Concat(Gemm(split#e, W_e)) in
/// expert order. Returns each expert's layer and the split input.
LogicalResult matchGroupLinears(Value v, int64_t experts, Value &splitInput,
                                Value &splitSizes,
                                SmallVectorImpl<Linear> &linears,
                                Operation *user, StringRef what, Why &why) {
  Operation *cat = defOp(skipNoops(v), "Concat");
  if (!cat || cat->getNumOperands() != experts || intAttr(cat, "axis", 0) != 0)
    return why.decline(Twine(what) + " is not one product per expert "
                                     "concatenated in expert order");
  Operation *split = nullptr;
  for (auto [e, part] : llvm::enumerate(cat->getOperands())) {
    Why inner;
    FailureOr<Linear> lin = matchLinear(part, user, inner);
    if (failed(lin)) {
      if (!inner.declined())
        return failure();
      return why.decline(Twine(what) + " of expert " + Twine(e) + ": " +
                         inner.text);
    }
    auto group = dyn_cast<OpResult>(skipNoops(lin->input));
    if (!group || group.getOwner()->getName().getStringRef() != "onnx.Split" ||
        group.getResultNumber() != e || (split && group.getOwner() != split))
      return why.decline(Twine(what) + " of expert " + Twine(e) +
                         " does not read group " + Twine(e) + " of one Split");
    split = group.getOwner();
    linears.push_back(std::move(*lin));
  }
  if (split->getNumResults() != experts || intAttr(split, "axis", 0) != 0 ||
      split->getNumOperands() < 2)
    return why.decline(Twine(what) + "'s groups are not one Split of the rows "
                                     "into one group per expert");
  splitInput = skipNoops(split->getOperand(0));
  splitSizes = split->getOperand(1);
  return success();
}

/// trunc(order / k) as exporters write integer division of indices:
/// Cast(Mul(Floor(Abs(q)), Sign(q))) with q = Div(Cast(order), k).
Value truncatedQuotientOf(Value token, int64_t k) {
  Operation *toInt = defOp(skipNoops(token), "Cast");
  Operation *mul = toInt ? defOp(toInt->getOperand(0), "Mul") : nullptr;
  if (!mul)
    return {};
  for (int side = 0; side < 2; ++side) {
    Operation *floor = defOp(mul->getOperand(side), "Floor");
    Operation *sign = defOp(mul->getOperand(1 - side), "Sign");
    Operation *abs = floor ? defOp(floor->getOperand(0), "Abs") : nullptr;
    if (!abs || !sign || abs->getOperand(0) != sign->getOperand(0))
      continue;
    Operation *div = defOp(abs->getOperand(0), "Div");
    Operation *toFloat = div ? defOp(div->getOperand(0), "Cast") : nullptr;
    if (toFloat && isScalar(div->getOperand(1), double(k)))
      return toFloat->getOperand(0);
  }
  return {};
}

class SortedRaiser : public CandidateRaiser {
public:
  explicit SortedRaiser(Operation *scatter)
      : CandidateRaiser(scatter), scatter(scatter) {}
  RaiseResult run() { return finish(match(), "sorted-token MoE block"); }

private:
  LogicalResult match();
  Operation *scatter;
};

LogicalResult SortedRaiser::match() {
  // y = ScatterND(zeros (T, H), token[:, None], rows, reduction = add)
  auto reduction = scatter->getAttrOfType<StringAttr>("reduction");
  if (!reduction || reduction.getValue() != "add" ||
      !isZeros(scatter->getOperand(0)))
    return why.decline("not an add-scatter into zeros");
  Value token = unsqueezed(scatter->getOperand(1), 1, 2);
  Value rows = skipNoops(scatter->getOperand(2));
  if (Operation *expand = defOp(rows, "Expand");
      expand && expand->getOperand(0).getType() == rows.getType())
    rows = skipNoops(expand->getOperand(0)); // to its own shape
  Operation *weigh = defOp(rows, "Mul");
  if (!token || !weigh)
    return why.decline("the scattered rows are not weighted expert outputs");
  Value gates, outputs;
  for (int side = 0; side < 2 && !gates; ++side)
    if (Value g = unsqueezed(weigh->getOperand(side), 1, 2)) {
      gates = skipNoops(g);
      outputs = weigh->getOperand(1 - side);
    }
  Operation *gateGather = gates ? defOp(gates, "GatherND") : nullptr;
  if (!gateGather)
    return why.decline("the rows are not weighted by gathered gates");
  auto sumType = cast<RankedTensorType>(scatter->getResult(0).getType());
  Operation *outCat = defOp(skipNoops(outputs), "Concat");
  int64_t experts = outCat ? outCat->getNumOperands() : 0;
  Value downIn, downSizes, upIn, upSizes;
  SmallVector<Linear> downs, fuseds;
  if (experts < 1 ||
      failed(matchGroupLinears(outputs, experts, downIn, downSizes, downs,
                               scatter, "the down projection", why)))
    return failure();
  recognised = true;
  std::optional<Gated> gated = matchGated(downIn);
  std::optional<PartOf> gatePart =
      gated ? matchPart(gated->gate) : std::nullopt;
  std::optional<PartOf> upPart = gated ? matchPart(gated->up) : std::nullopt;
  if (!gatePart || !upPart || !complementary(*gatePart, *upPart))
    return why.decline("the experts' hidden layer is not a GLU over a fused "
                       "gate/up projection");
  if (failed(matchGroupLinears(gatePart->fused, experts, upIn, upSizes, fuseds,
                               scatter, "the gate/up projection", why)))
    return failure();
  if (skipNoops(upSizes) != skipNoops(downSizes))
    return why.decline("the two projections group rows by different sizes");

  // The rows: tokens gathered at trunc(order / k), order sorting the ids.
  Operation *rowGather = defOp(upIn, "GatherND");
  if (!rowGather || intAttr(rowGather, "batch_dims", 0) != 0 ||
      unsqueezed(rowGather->getOperand(1), 1, 2) != skipNoops(token))
    return why.decline("the grouped rows are not the tokens gathered at the "
                       "scatter's token indices");
  Value tokens = skipNoops(rowGather->getOperand(0));
  Value flatGates, ids;
  Operation *flatten = defOp(skipNoops(gateGather->getOperand(0)), "Reshape");
  if (flatten &&
      intConstant(flatten->getOperand(1)) == SmallVector<int64_t>{-1})
    flatGates = skipNoops(flatten->getOperand(0));
  Value order = unsqueezed(gateGather->getOperand(1), 1, 2);
  auto orderResult = dyn_cast_or_null<OpResult>(order);
  Operation *sort = orderResult ? orderResult.getOwner() : nullptr;
  if (!flatGates || !sort || sort->getName().getStringRef() != "onnx.TopK" ||
      orderResult.getResultNumber() != 1 || intAttr(sort, "largest", 1) != 0 ||
      intAttr(sort, "sorted", 1) != 1 || intAttr(sort, "axis", -1) != 0)
    return why.decline("the gates are not the flattened routing weights in "
                       "ascending expert order");
  Operation *flatIds = defOp(skipNoops(sort->getOperand(0)), "Reshape");
  if (!flatIds ||
      intConstant(flatIds->getOperand(1)) != SmallVector<int64_t>{-1})
    return why.decline("the sort is not over the flattened expert ids");
  ids = skipNoops(flatIds->getOperand(0));
  // K = every (token, slot): the length of the flattened ids.
  Value kValue = throughScalarViews(sort->getOperand(1));
  Operation *shape = defOp(kValue, "Shape");
  if (!shape || skipNoops(shape->getOperand(0)) != flatIds->getResult(0) ||
      intAttr(shape, "start", 0) != 0)
    return why.decline("the sort does not keep every (token, slot) pair");
  auto idsType = dyn_cast<RankedTensorType>(ids.getType());
  if (!idsType || idsType.getRank() != 2 || idsType.isDynamicDim(1))
    return why.decline("the expert ids are not a (T, k) matrix");
  int64_t k = idsType.getDimSize(1);
  if (truncatedQuotientOf(token, k) != order)
    return why.decline("the token of each sorted pair is not its position "
                       "divided by k");
  Value counts = countsBehind(upSizes, experts);
  if (!counts || !isExpertCounts(counts, ids, experts))
    return why.decline("the groups are not sized by the per-expert counts "
                       "of the expert ids, in expert order");

  FailureOr<RouterMatch> router = matchRouter(flatGates, ids, scatter, why);
  if (failed(router))
    return failure();
  if (router->experts != experts || router->k != k)
    return why.decline("the router picks " + Twine(router->k) + " of " +
                       Twine(router->experts) +
                       " experts but the block "
                       "groups " +
                       Twine(experts));
  if (!sameRows(tokens, router->tokens))
    return why.decline("the experts read other tokens than the router");
  int64_t hidden = sumType.getRank() == 2 ? sumType.getDimSize(1) : -1;
  SmallVector<std::optional<ExpertMlp>, 0> mlps;
  for (int64_t e = 0; e < experts; ++e) {
    if (downs[e].out != hidden || fuseds[e].in != hidden ||
        fuseds[e].out != 2 * downs[e].in)
      return why.decline("expert " + Twine(e) +
                         "'s projections do not fit "
                         "the hidden size");
    // One expert's fused rows as a one-expert stack.
    Bytes stack = fuseds[e].weight;
    stack.type = RankedTensorType::get({1, fuseds[e].out, fuseds[e].in},
                                       stack.type.getElementType());
    std::optional<Bytes> biasStack = fuseds[e].bias;
    if (biasStack)
      biasStack->type = RankedTensorType::get({1, fuseds[e].out},
                                              biasStack->type.getElementType());
    mlps.push_back(gatedExpert(
        router->tokens, *gated,
        stackedLinear(stack, biasStack, gatePart->part, 0),
        stackedLinear(stack, biasStack, upPart->part, 0), std::move(downs[e])));
  }
  return replaceWithLayer(builder, scatter, *router, mlps, why);
}

} // namespace

void mlir::moe::raiseSortedExperts(Operation *root, bool &failedAny) {
  raiseEach<SortedRaiser>(root, "onnx.ScatterND", failedAny);
}
