//===- RaiseTorchLoop.cpp - torch-exported expert loops to moe.layer ------===//
//
// transformers' sparse MoE blocks loop over experts in Python; the
// TorchScript exporter unrolls the loop. Each iteration adds one expert's
// contribution into a running sum with index_add_, exported as
// ScatterElements (reduction = add, or none into zeros followed by Add).
// The matcher starts from those accumulation chains and proves, step by
// step, that iteration e computes
//   sum over (slot j, token t) with selected[t, j] = e of
//       expert_e(x[t]) * weights[t, j]
// scattered into row t: exactly the moe.layer contribution of expert e.
// Experts no iteration handles (the trace skipped them) are marked absent.
//
//===----------------------------------------------------------------------===//

#include "ExportedLayer.h"
#include "RaiseExperts.h"
#include "SymbolicDims.h"

#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {

/// One index_add_ into the running sum.
struct Step {
  Operation *op;
  Value acc, indices, updates;
};

std::optional<Step> asStep(Operation *op) {
  auto scatter = [](Operation *s, StringRef reduction) {
    if (!s || s->getName().getStringRef() != "onnx.ScatterElements" ||
        intAttr(s, "axis", 0) != 0)
      return false;
    auto r = s->getAttrOfType<StringAttr>("reduction");
    return (r ? r.getValue() : StringRef("none")) == reduction;
  };
  if (scatter(op, "add"))
    return Step{op, op->getOperand(0), op->getOperand(1), op->getOperand(2)};
  if (op->getName().getStringRef() != "onnx.Add")
    return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    Operation *s = skipNoops(op->getOperand(side)).getDefiningOp();
    if (scatter(s, "none") && isZeros(s->getOperand(0)))
      return Step{op, op->getOperand(1 - side), s->getOperand(1),
                  s->getOperand(2)};
  }
  return std::nullopt;
}

/// Entry `i` of shape tensor `shape` is at most 1: the constant 1, or the
/// size of a Slice that keeps [0, 1) of that axis (how torch 1.13 exports
/// index_add_'s expand_as).
bool atMostOne(Value shape, int64_t i) {
  std::optional<SmallVector<int64_t>> known = onnx::getKnownIntValues(shape);
  if (known && i < (int64_t)known->size() && (*known)[i] == 1)
    return true;
  Operation *s = defOp(skipNoops(shape), "Shape");
  if (!s || intAttr(s, "start", 0) != 0)
    return false;
  Operation *slice = defOp(s->getOperand(0), "Slice");
  if (!slice || slice->getNumOperands() < 4)
    return false;
  std::optional<SmallVector<int64_t>> starts =
      intConstant(slice->getOperand(1));
  std::optional<SmallVector<int64_t>> ends = intConstant(slice->getOperand(2));
  std::optional<SmallVector<int64_t>> axes = intConstant(slice->getOperand(3));
  std::optional<SmallVector<int64_t>> steps =
      slice->getNumOperands() > 4 && !isNone(slice->getOperand(4))
          ? intConstant(slice->getOperand(4))
          : SmallVector<int64_t>(starts ? starts->size() : 0, 1);
  if (!starts || !ends || !axes || !steps || axes->size() != starts->size())
    return false;
  for (size_t a = 0; a < axes->size(); ++a)
    if ((*axes)[a] == i)
      return (*starts)[a] == 0 && (*ends)[a] == 1 && (*steps)[a] == 1;
  return false;
}

class LoopRaiser {
public:
  LoopRaiser(ArrayRef<Step> steps, SymbolicDims &dims)
      : steps(steps), tail(steps.back().op), dims(dims), builder(tail) {
    builder.setListener(&created);
  }

  RaiseResult run() {
    LogicalResult ok = match();
    if (succeeded(ok))
      return RaiseResult::Raised;
    created.eraseAll();
    if (!why.declined())
      return RaiseResult::Error;
    tail->emitRemark() << "expert loop (" << steps.size()
                       << " index_add_ steps) not raised to moe.layer: "
                       << why.text;
    return RaiseResult::Declined;
  }

private:
  struct Iteration {
    int64_t expert;
    Value tokenIds, slotIds;
    Value selected;
    int64_t depth;
    Value weights;
    ExpertMlp mlp;
  };

  LogicalResult match();
  LogicalResult matchStep(const Step &step, size_t index, Iteration &it);
  LogicalResult matchSelection(Value tokenIds, Value slotIds, Iteration &it);
  LogicalResult matchWeightColumn(Value v, Value tokenIds, Iteration &it);

  ArrayRef<Step> steps;
  Operation *tail;
  SymbolicDims &dims;
  OpBuilder builder;
  CreatedOps created;
  Why why;
};

LogicalResult LoopRaiser::matchSelection(Value tokenIds, Value slotIds,
                                         Iteration &it) {
  // where(mask[e]): Squeeze(Split(Transpose(NonZero(Cast(Gather(mask, e))))))
  auto squeezed = [](Value v) -> OpResult {
    Operation *sq = defOp(v, "Squeeze");
    if (!sq || sq->getNumOperands() < 2)
      return {};
    std::optional<SmallVector<int64_t>> axes = intConstant(sq->getOperand(1));
    if (!axes || axes->size() != 1 || ((*axes)[0] != 1 && (*axes)[0] != -1))
      return {};
    return dyn_cast<OpResult>(sq->getOperand(0));
  };
  OpResult token = squeezed(tokenIds), slot = squeezed(slotIds);
  Operation *split = token ? defOp(token, "Split") : nullptr;
  if (!split || !slot || slot.getOwner() != split ||
      token.getResultNumber() != 1 || slot.getResultNumber() != 0 ||
      split->getNumResults() != 2 || intAttr(split, "axis", 0) != 1)
    return why.decline("the token and slot ids are not the two columns of "
                       "one Split");
  Operation *transpose = defOp(split->getOperand(0), "Transpose");
  auto perm = transpose ? transpose->getAttrOfType<DenseI64ArrayAttr>("perm")
                        : DenseI64ArrayAttr();
  Operation *nonzero =
      transpose ? defOp(transpose->getOperand(0), "NonZero") : nullptr;
  if (!nonzero || !perm || perm.asArrayRef() != ArrayRef<int64_t>{1, 0})
    return why.decline("the token and slot ids are not the transposed "
                       "NonZero of an expert mask");
  Value mask = nonzero->getOperand(0);
  if (Operation *cast = defOp(mask, "Cast"))
    mask = cast->getOperand(0);
  Operation *row = defOp(mask, "Gather");
  if (!row || intAttr(row, "axis", 0) != 0)
    return why.decline("the expert mask is not one row of the one-hot "
                       "selection");
  std::optional<SmallVector<int64_t>> e = intConstant(row->getOperand(1));
  auto eType = dyn_cast<RankedTensorType>(row->getOperand(1).getType());
  if (!e || !eType || eType.getRank() != 0)
    return why.decline("the expert index is not a constant (a loop over "
                       "experts the trace found at run time)");
  it.expert = (*e)[0];
  Operation *permute = defOp(row->getOperand(0), "Transpose");
  auto permuteAttr = permute ? permute->getAttrOfType<DenseI64ArrayAttr>("perm")
                             : DenseI64ArrayAttr();
  Operation *onehot =
      permute ? defOp(permute->getOperand(0), "OneHot") : nullptr;
  if (!onehot || !permuteAttr ||
      permuteAttr.asArrayRef() != ArrayRef<int64_t>{2, 1, 0} ||
      (intAttr(onehot, "axis", -1) != -1 && intAttr(onehot, "axis", -1) != 2))
    return why.decline("the expert mask is not one_hot(selected, E)"
                       ".permute(2, 1, 0)");
  std::optional<SmallVector<int64_t>> depth =
      intConstant(onehot->getOperand(1));
  std::optional<SmallVector<int64_t>> values =
      intConstant(onehot->getOperand(2));
  if (!depth || depth->size() != 1 || !values ||
      *values != SmallVector<int64_t>{0, 1})
    return why.decline("the one-hot expert mask has no constant depth or "
                       "values other than [0, 1]");
  it.depth = (*depth)[0];
  it.selected = onehot->getOperand(0);
  if (it.expert < 0 || it.expert >= it.depth)
    return why.decline("expert index " + Twine(it.expert) +
                       " is outside the one-hot depth");
  it.tokenIds = tokenIds;
  it.slotIds = slotIds;
  return success();
}

LogicalResult LoopRaiser::matchWeightColumn(Value v, Value tokenIds,
                                            Iteration &it) {
  // routing_weights[top_x, idx, None]: a flat Gather at top_x * k + idx,
  // reshaped between (n, 1) forms.
  v = skipNoops(v);
  auto isColumn = [](Value x) {
    auto t = dyn_cast<RankedTensorType>(x.getType());
    return t && t.getRank() == 2 && t.getDimSize(1) == 1;
  };
  while (Operation *reshape = defOp(v, "Reshape")) {
    if (!isColumn(v) || !isColumn(reshape->getOperand(0)))
      break;
    v = skipNoops(reshape->getOperand(0));
  }
  Operation *gather = defOp(v, "Gather");
  if (!gather || intAttr(gather, "axis", 0) != 0 || !isColumn(v))
    return why.decline("the routing weight is not a column gathered from "
                       "the flattened routing weights");
  Value flat = skipNoops(gather->getOperand(0));
  Value weights;
  if (Operation *flatten = defOp(flat, "Flatten")) {
    Operation *unsq = defOp(flatten->getOperand(0), "Unsqueeze");
    std::optional<SmallVector<int64_t>> axes =
        unsq && unsq->getNumOperands() > 1 ? intConstant(unsq->getOperand(1))
                                           : std::nullopt;
    if (unsq && axes && axes->size() == 1 &&
        ((*axes)[0] == 2 || (*axes)[0] == -1) &&
        intAttr(flatten, "axis", 1) == 2)
      weights = unsq->getOperand(0);
  } else if (Operation *reshape = defOp(flat, "Reshape")) {
    std::optional<SmallVector<int64_t>> shape =
        intConstant(reshape->getOperand(1));
    if (shape && *shape == SmallVector<int64_t>{-1, 1})
      weights = reshape->getOperand(0);
  }
  auto wType = weights ? dyn_cast<RankedTensorType>(weights.getType())
                       : RankedTensorType();
  if (!wType || wType.getRank() != 2 || wType.isDynamicDim(1))
    return why.decline("the routing weights are not flattened from a (T, k) "
                       "matrix");
  int64_t k = wType.getDimSize(1);
  if (Operation *add = defOp(gather->getOperand(1), "Add")) {
    for (int side = 0; side < 2; ++side) {
      Operation *mul = defOp(add->getOperand(1 - side), "Mul");
      for (int m = 0; mul && m < 2; ++m) {
        std::optional<SmallVector<int64_t>> c =
            intConstant(mul->getOperand(1 - m));
        if (mul->getOperand(m) == tokenIds && c && c->size() == 1 &&
            (*c)[0] == k) {
          it.weights = weights;
          return matchSelection(tokenIds, add->getOperand(side), it);
        }
      }
    }
  }
  return why.decline("the routing weight index is not token * k + slot "
                     "with k = " +
                     Twine(k));
}

LogicalResult LoopRaiser::matchStep(const Step &step, size_t index,
                                    Iteration &it) {
  std::string prefix = "step " + std::to_string(index) + ": ";
  // Scatter rows: the token ids, broadcast along H to the updates' shape.
  Operation *expand = defOp(skipNoops(step.indices), "Expand");
  Operation *unsq =
      expand ? defOp(expand->getOperand(0), "Unsqueeze") : nullptr;
  std::optional<SmallVector<int64_t>> unsqAxes =
      unsq && unsq->getNumOperands() > 1 ? intConstant(unsq->getOperand(1))
                                         : std::nullopt;
  Operation *shapeOf = expand ? defOp(expand->getOperand(1), "Shape") : nullptr;
  if (!unsq || !unsqAxes || unsqAxes->size() != 1 ||
      ((*unsqAxes)[0] != 1 && (*unsqAxes)[0] != -1) || !shapeOf ||
      shapeOf->getOperand(0) != step.updates ||
      intAttr(shapeOf, "start", 0) != 0)
    return why.decline(prefix + "the scatter indices are not token ids "
                                "expanded to the updates' shape");
  Value tokenIds = unsq->getOperand(0);

  // Updates: expert output times the routing weight; an expand_as that
  // cannot change the shape may wrap it.
  Value u = skipNoops(step.updates);
  if (Operation *e = defOp(u, "Expand")) {
    auto inType = dyn_cast<RankedTensorType>(e->getOperand(0).getType());
    std::optional<SmallVector<int64_t>> target =
        onnx::getKnownIntValues(e->getOperand(1));
    if (!inType || inType.getRank() != 2 || inType.isDynamicDim(1) || !target ||
        target->size() != 2 || !atMostOne(e->getOperand(1), 0) ||
        ((*target)[1] != 1 && (*target)[1] != inType.getDimSize(1)))
      return why.decline(prefix + "an Expand of the updates may change them");
    u = skipNoops(e->getOperand(0));
  }
  Operation *mul = defOp(u, "Mul");
  auto columnSide = [&]() -> int {
    auto isColumn = [](Value x) {
      auto t = dyn_cast<RankedTensorType>(x.getType());
      return t && t.getRank() == 2 && t.getDimSize(1) == 1;
    };
    bool a = isColumn(mul->getOperand(0)), b = isColumn(mul->getOperand(1));
    return a == b ? -1 : a ? 0 : 1;
  };
  int side = mul ? columnSide() : -1;
  if (side < 0)
    return why.decline(prefix + "the updates are not an expert output times "
                                "a routing-weight column");
  if (failed(matchWeightColumn(mul->getOperand(side), tokenIds, it))) {
    if (why.declined())
      why.text = prefix + why.text;
    return failure();
  }
  FailureOr<ExpertMlp> mlp =
      matchExpertMlp(mul->getOperand(1 - side), tail, why);
  if (failed(mlp)) {
    if (why.declined())
      why.text = "expert " + std::to_string(it.expert) + ": " + why.text;
    return failure();
  }
  // The expert reads x[top_x]: rows of the tokens gathered by the token ids
  // (torch writes hidden[None, top_x].reshape(-1, H)).
  Value in = mlp->input;
  if (Operation *reshape = defOp(in, "Reshape")) {
    std::optional<SmallVector<int64_t>> shape =
        intConstant(reshape->getOperand(1));
    auto t = dyn_cast<RankedTensorType>(in.getType());
    if (shape && shape->size() == 2 && (*shape)[0] == -1 && t &&
        !t.isDynamicDim(1) && (*shape)[1] == t.getDimSize(1))
      in = skipNoops(reshape->getOperand(0));
  }
  Operation *gather = defOp(in, "Gather");
  Value source;
  if (gather && gather->getOperand(1) == tokenIds) {
    int64_t axis = intAttr(gather, "axis", 0);
    Value data = skipNoops(gather->getOperand(0));
    if (axis == 0) {
      source = data;
    } else if (axis == 1) {
      Operation *lift = defOp(data, "Unsqueeze");
      std::optional<SmallVector<int64_t>> axes =
          lift && lift->getNumOperands() > 1 ? intConstant(lift->getOperand(1))
                                             : std::nullopt;
      if (axes && *axes == SmallVector<int64_t>{0})
        source = skipNoops(lift->getOperand(0));
    }
  }
  if (!source)
    return why.decline("expert " + Twine(it.expert) +
                       " does not read the rows of its tokens");
  it.mlp = std::move(*mlp);
  it.mlp.input = source;
  return success();
}

LogicalResult LoopRaiser::match() {
  SmallVector<Iteration, 0> iterations;
  for (auto [index, step] : llvm::enumerate(steps)) {
    Iteration it;
    if (failed(matchStep(step, index, it)))
      return failure();
    iterations.push_back(std::move(it));
  }
  const Iteration &first = iterations.front();
  FailureOr<RouterMatch> router =
      matchRouter(first.weights, first.selected, tail, why);
  if (failed(router))
    return failure();
  int64_t experts = router->experts;
  SmallVector<std::optional<ExpertMlp>, 0> mlps(experts);
  for (Iteration &it : iterations) {
    if (skipNoops(it.selected) != router->ids ||
        skipNoops(it.weights) != skipNoops(first.weights))
      return why.decline("expert " + Twine(it.expert) +
                         " is routed by another router than expert " +
                         Twine(first.expert));
    if (it.depth != experts)
      return why.decline("the one-hot mask has depth " + Twine(it.depth) +
                         " but the router scores " + Twine(experts) +
                         " experts");
    if (it.mlp.input != router->tokens)
      return why.decline("expert " + Twine(it.expert) +
                         " reads other tokens than the router");
    if (mlps[it.expert])
      return why.decline("expert " + Twine(it.expert) + " is added twice");
    mlps[it.expert] = std::move(it.mlp);
  }
  auto kType = cast<RankedTensorType>(first.weights.getType());
  if (kType.getDimSize(1) != router->k)
    return why.decline("the routing weights have another width than top-k");

  // The sum starts from zeros shaped like the tokens.
  Value head = steps.front().acc;
  std::optional<SmallVector<DimExpr>> headShape = dims.shape(skipNoops(head));
  std::optional<SmallVector<DimExpr>> tokenShape = dims.shape(router->tokens);
  if (!isZeros(head) || !headShape || !tokenShape || *headShape != *tokenShape)
    return why.decline("the running sum does not start from zeros shaped "
                       "like the tokens");

  return replaceWithLayer(builder, tail, *router, mlps, why);
}

} // namespace

void mlir::moe::raiseTorchLoops(Operation *root, bool &failedAny) {
  // Chains of index_add_ steps, each from its last step back.
  llvm::DenseMap<Operation *, Step> stepOf;
  SmallVector<Operation *> order;
  root->walk([&](Operation *op) {
    if (std::optional<Step> s = asStep(op)) {
      stepOf[op] = *s;
      order.push_back(op);
    }
  });
  llvm::DenseSet<Operation *> continued;
  for (Operation *op : order)
    if (Operation *prev = skipNoops(stepOf[op].acc).getDefiningOp();
        prev && stepOf.count(prev))
      continued.insert(prev);
  SymbolicDims dims;
  for (Operation *op : order) {
    if (continued.count(op))
      continue;
    SmallVector<Step> chain;
    for (Operation *s = op; s && stepOf.count(s);
         s = skipNoops(stepOf[s].acc).getDefiningOp())
      chain.push_back(stepOf[s]);
    std::reverse(chain.begin(), chain.end());
    failedAny |= LoopRaiser(chain, dims).run() == RaiseResult::Error;
  }
}
