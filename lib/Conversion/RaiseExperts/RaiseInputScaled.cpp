//===- RaiseInputScaled.cpp - Llama 4's dense MoE block to moe.layer ------===//
//
// Llama 4's block (Llama4TextMoe) runs every expert on every token, the
// token scaled by its router score for that expert:
//   scores = sigmoid(scatter(-inf, topk(logits).indices, topk.values))
//   xs     = (x.repeat(E, 1) * scores.T.reshape(-1, 1)).view(E, T, H)
//   y      = bmm(act(bmm(xs, gate_up)) * up..., down).view(E, T, H).sum(0)
// An expert a token did not pick sees a zero input; with no biases its
// output is exactly zero, so the block is the sparse layer with the
// routing weight on the expert input (weights_on_input).
//
//===----------------------------------------------------------------------===//

#include "ExportedLayer.h"
#include "GatedExperts.h"
#include "RaiseExperts.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {

/// A batched MatMul of (E, T, in) rows by a constant stack (E, in, out),
/// returned (E, out, in).
struct Stacked {
  Value input;
  int64_t experts = 0, out = 0, in = 0;
  Bytes weight;
};
FailureOr<Stacked> matchStacked(Value y, Operation *user, StringRef what,
                                Why &why) {
  Operation *mm = defOp(skipNoops(y), "MatMul");
  auto inType = mm ? dyn_cast<RankedTensorType>(mm->getOperand(0).getType())
                   : RankedTensorType();
  if (!mm || !inType || inType.getRank() != 3)
    return why.decline(Twine(what) + " is not a batched MatMul");
  FailureOr<Bytes> w = readBytes(skipNoops(mm->getOperand(1)), user,
                                 (Twine(what) + "'s weight").str(), why);
  if (failed(w))
    return failure();
  if (w->type.getRank() != 3)
    return why.decline(Twine(what) + "'s weight is not a stack of matrices");
  ArrayRef<int64_t> shape = w->type.getShape();
  Stacked s;
  s.input = skipNoops(mm->getOperand(0));
  s.experts = shape[0];
  s.in = shape[1];
  s.out = shape[2];
  s.weight.type =
      RankedTensorType::get({s.experts, s.out, s.in}, w->type.getElementType());
  s.weight.data =
      transposeBytes(w->data, w->elementBytes(), shape[0], shape[1], shape[2]);
  return s;
}

/// Reshapes between (E, T, H) and (E*T, H): the same row-major rows.
Value throughRowReshapes(Value v, int64_t experts, int64_t hidden) {
  while (true) {
    v = skipNoops(v);
    Operation *r = defOp(v, "Reshape");
    if (!r)
      return v;
    auto type = cast<RankedTensorType>(v.getType());
    bool rows = type.getRank() == 2 && type.getDimSize(1) == hidden;
    bool stacked = type.getRank() == 3 && type.getDimSize(0) == experts &&
                   type.getDimSize(2) == hidden;
    if (!rows && !stacked)
      return v;
    v = r->getOperand(0);
  }
}

/// x of Expand(x, ones) (a no-op) or x itself.
Value throughNoopExpand(Value v) {
  v = skipNoops(v);
  Operation *e = defOp(v, "Expand");
  if (!e)
    return v;
  std::optional<SmallVector<int64_t>> shape = intConstant(e->getOperand(1));
  if (shape && llvm::all_of(*shape, [](int64_t d) { return d == 1; }) &&
      e->getOperand(0).getType() == v.getType())
    return skipNoops(e->getOperand(0));
  return v;
}

class InputScaledRaiser : public CandidateRaiser {
public:
  explicit InputScaledRaiser(Operation *sum) : CandidateRaiser(sum), sum(sum) {}
  RaiseResult run() { return finish(match(), "dense score-scaled MoE block"); }

private:
  LogicalResult match();
  Operation *sum;
};

LogicalResult InputScaledRaiser::match() {
  // y = outputs.view(E, T, H).sum(0)
  Operation *view = defOp(skipNoops(sum->getOperand(0)), "Reshape");
  auto viewType = view
                      ? dyn_cast<RankedTensorType>(view->getResult(0).getType())
                      : RankedTensorType();
  if (!viewType || viewType.getRank() != 3 || viewType.isDynamicDim(0) ||
      viewType.isDynamicDim(2) || intAttr(sum, "keepdims", 1) != 0 ||
      sum->getNumOperands() < 2 || !axesAre(sum->getOperand(1), {0, -3}))
    return why.decline("not a sum over stacked experts");
  int64_t experts = viewType.getDimSize(0), hidden = viewType.getDimSize(2);
  Value outputs = throughRowReshapes(view->getResult(0), experts, hidden);
  FailureOr<Stacked> down = matchStacked(outputs, sum, "down", why);
  if (failed(down))
    return failure();
  std::optional<Gated> gated = matchGated(down->input);
  std::optional<PartOf> gatePart =
      gated ? matchPart(gated->gate) : std::nullopt;
  std::optional<PartOf> upPart = gated ? matchPart(gated->up) : std::nullopt;
  if (!gatePart || !upPart || !complementary(*gatePart, *upPart))
    return why.decline("not a GLU over a fused gate/up projection");
  FailureOr<Stacked> fused = matchStacked(gatePart->fused, sum, "gate/up", why);
  if (failed(fused))
    return failure();
  recognised = true;
  if (down->experts != experts || fused->experts != experts ||
      down->out != hidden || fused->in != hidden || fused->out != 2 * down->in)
    return why.decline("the expert stacks disagree in shape");

  // xs = (tile(x, [E, 1]) * scores.T.reshape(-1, 1)).view(E, T, H)
  Operation *scale =
      defOp(throughRowReshapes(fused->input, experts, hidden), "Mul");
  if (!scale)
    return why.decline("the expert inputs are not scaled tokens");
  Value tokens, scores;
  for (int side = 0; side < 2 && !tokens; ++side) {
    Operation *tile = defOp(skipNoops(scale->getOperand(side)), "Tile");
    Operation *column =
        defOp(skipNoops(scale->getOperand(1 - side)), "Reshape");
    Operation *transpose =
        column ? defOp(skipNoops(column->getOperand(0)), "Transpose") : nullptr;
    auto perm = transpose ? transpose->getAttrOfType<DenseI64ArrayAttr>("perm")
                          : DenseI64ArrayAttr();
    if (!tile || !transpose || !perm ||
        perm.asArrayRef() != ArrayRef<int64_t>{1, 0} ||
        intConstant(tile->getOperand(1)) != SmallVector<int64_t>{experts, 1} ||
        intConstant(column->getOperand(1)) != SmallVector<int64_t>{-1, 1})
      continue;
    tokens = throughNoopExpand(tile->getOperand(0));
    scores = skipNoops(transpose->getOperand(0));
  }
  if (!tokens)
    return why.decline("the expert inputs are not the tokens repeated per "
                       "expert times that expert's column of the scores");
  FailureOr<RouterMatch> router = matchScatteredScores(scores, sum, why);
  if (failed(router))
    return failure();
  router->weightsOnInput = true;
  if (router->experts != experts)
    return why.decline("the router scores " + Twine(router->experts) +
                       " experts but the stacks hold " + Twine(experts));
  if (!sameRows(tokens, router->tokens))
    return why.decline("the experts read other tokens than the router");

  SmallVector<std::optional<ExpertMlp>, 0> mlps;
  for (int64_t e = 0; e < experts; ++e)
    mlps.push_back(gatedExpert(
        router->tokens, *gated,
        stackedLinear(fused->weight, std::nullopt, gatePart->part, e),
        stackedLinear(fused->weight, std::nullopt, upPart->part, e),
        stackedLinear(down->weight, std::nullopt, std::nullopt, e)));
  return replaceWithLayer(builder, sum, *router, mlps, why);
}

} // namespace

void mlir::moe::raiseInputScaled(Operation *root, bool &failedAny) {
  raiseEach<InputScaledRaiser>(root, "onnx.ReduceSum", failedAny);
}
