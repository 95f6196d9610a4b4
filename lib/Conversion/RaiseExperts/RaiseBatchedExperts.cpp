//===- RaiseBatchedExperts.cpp - gathered-weight MoE blocks to moe.layer --===//
//
// transformers 5's `batched_mm` experts never loop: each (token, slot) row
// gathers its expert's matrices and one batched MatMul applies them,
//   x_rep = x repeated k times                       (T*k, H)
//   h     = act(bmm(gate_up[ids.flat], x_rep) [+ b])  gate/up halves
//   out   = (bmm(down[ids.flat], h) [+ b]) * w.flat[:, None]
//   y     = out.view(T, k, H).sum(1)
// which materialises T*k copies of expert matrices. The matcher starts
// from that sum and proves every piece: one set of expert ids feeds every
// gather, the rows are the router's tokens repeated k times, the weights
// are the router's, and the fused gate/up splits into halves (or
// interleaved columns, as gpt-oss stores them).
//
//===----------------------------------------------------------------------===//

#include "ExportedLayer.h"
#include "GatedExperts.h"
#include "RaiseExperts.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {

/// Through no-ops and Squeeze(Unsqueeze(x, a), a) pairs (dynamo writes
/// them after bias adds).
Value skipPairs(Value v) {
  while (true) {
    v = skipNoops(v);
    Operation *squeeze = defOp(v, "Squeeze");
    Operation *unsqueeze =
        squeeze ? defOp(skipNoops(squeeze->getOperand(0)), "Unsqueeze")
                : nullptr;
    if (!unsqueeze || squeeze->getNumOperands() < 2 ||
        unsqueeze->getNumOperands() < 2)
      return v;
    std::optional<SmallVector<int64_t>> a = intConstant(squeeze->getOperand(1));
    std::optional<SmallVector<int64_t>> b =
        intConstant(unsqueeze->getOperand(1));
    if (!a || a != b || unsqueeze->getOperand(0).getType() != v.getType())
      return v;
    v = unsqueeze->getOperand(0);
  }
}

/// The (T, k) ids behind flat ids Reshape(ids, [-1]).
Value flatIdsSource(Value flat) {
  Operation *r = defOp(skipNoops(flat), "Reshape");
  if (!r)
    return {};
  std::optional<SmallVector<int64_t>> shape = intConstant(r->getOperand(1));
  auto type = dyn_cast<RankedTensorType>(r->getOperand(0).getType());
  if (!shape || *shape != SmallVector<int64_t>{-1} || !type ||
      type.getRank() != 2)
    return {};
  return skipNoops(r->getOperand(0));
}

/// A stacked expert tensor gathered per (token, slot): Gather(table, flat
/// ids, axis 0) or GatherND(table, Unsqueeze(flat ids, -1)).
struct ExpertGather {
  Bytes table;
  Value ids;
};
FailureOr<ExpertGather> matchExpertGather(Value v, int64_t rank,
                                          Operation *user, const Twine &what,
                                          Why &why) {
  v = skipNoops(v);
  Value flat;
  Operation *g = defOp(v, "Gather");
  if (g && intAttr(g, "axis", 0) == 0) {
    flat = g->getOperand(1);
  } else if ((g = defOp(v, "GatherND")) && intAttr(g, "batch_dims", 0) == 0) {
    flat = unsqueezed(g->getOperand(1), 1, 2);
  }
  Value ids = flat ? flatIdsSource(flat) : Value();
  if (!ids)
    return why.decline(what + " is not a stacked expert tensor gathered by "
                              "the flattened expert ids");
  FailureOr<Bytes> table =
      readBytes(skipNoops(g->getOperand(0)), user, what.str(), why);
  if (failed(table))
    return failure();
  if (table->type.getRank() != rank)
    return why.decline(what + " gathers from a tensor of rank " +
                       Twine(table->type.getRank()) + ", expected " +
                       Twine(rank));
  return ExpertGather{std::move(*table), ids};
}

/// y[n] = W[ids[n]] x[n] (+ b[ids[n]]): a batched MatMul by gathered
/// expert matrices, (E, out, in) as MatMul(W, x[..., None]) or (E, in, out)
/// as MatMul(x[:, None, :], W). The weight is returned (E, out, in).
struct BatchedLinear {
  Value input, ids;
  int64_t experts = 0, out = 0, in = 0;
  Bytes weight;
  std::optional<Bytes> bias;
};
FailureOr<BatchedLinear> matchBatchedLinear(Value y, Operation *user,
                                            StringRef what, Why &why) {
  Value v = skipPairs(y);
  Value biasGather;
  if (Operation *add = defOp(v, "Add")) {
    for (int side = 0; side < 2 && !biasGather; ++side)
      if (defOp(skipPairs(add->getOperand(side)), "Squeeze")) {
        biasGather = add->getOperand(1 - side);
        v = skipPairs(add->getOperand(side));
      }
  }
  Operation *squeeze = defOp(v, "Squeeze");
  Operation *mm = squeeze && squeeze->getNumOperands() > 1
                      ? defOp(skipNoops(squeeze->getOperand(0)), "MatMul")
                      : nullptr;
  if (!mm)
    return why.decline(Twine(what) + " is not a batched MatMul by gathered "
                                     "expert weights");
  BatchedLinear lin;
  Value gathered;
  bool transposed = false;
  if (axesAre(squeeze->getOperand(1), {2, -1})) {
    lin.input = unsqueezed(mm->getOperand(1), 2, 3);
    gathered = mm->getOperand(0);
  } else if (axesAre(squeeze->getOperand(1), {1, -2})) {
    lin.input = unsqueezed(mm->getOperand(0), 1, 3);
    gathered = mm->getOperand(1);
    transposed = true;
  }
  if (!lin.input)
    return why.decline(Twine(what) + " does not multiply each row by its own "
                                     "gathered matrix");
  FailureOr<ExpertGather> g =
      matchExpertGather(gathered, 3, user, Twine(what) + "'s weight", why);
  if (failed(g))
    return failure();
  lin.ids = g->ids;
  ArrayRef<int64_t> shape = g->table.type.getShape();
  lin.experts = shape[0];
  lin.out = transposed ? shape[2] : shape[1];
  lin.in = transposed ? shape[1] : shape[2];
  Type element = g->table.type.getElementType();
  lin.weight.type =
      RankedTensorType::get({lin.experts, lin.out, lin.in}, element);
  lin.weight.data = transposed
                        ? transposeBytes(g->table.data, g->table.elementBytes(),
                                         shape[0], shape[1], shape[2])
                        : std::move(g->table.data);
  if (biasGather) {
    FailureOr<ExpertGather> b =
        matchExpertGather(biasGather, 2, user, Twine(what) + "'s bias", why);
    if (failed(b))
      return failure();
    if (b->ids != lin.ids)
      return why.decline(Twine(what) + "'s bias is gathered by other ids than "
                                       "its weight");
    if (b->table.type.getDimSize(0) != lin.experts ||
        b->table.type.getDimSize(1) != lin.out ||
        b->table.type.getElementType() != element)
      return why.decline(Twine(what) + "'s bias is not one row per expert "
                                       "and output");
    lin.bias = std::move(b->table);
  }
  return lin;
}

/// The rows x (T, H) repeated k times: Flatten(Tile(Unsqueeze(x, 1),
/// [1, k, 1]), 2) or Reshape(Expand(Unsqueeze(x, 1), [1, k, 1]), [-1, H]).
/// The Tile's repeats may come through a OneHot (TorchScript).
std::optional<SmallVector<int64_t>> repeatsOf(Value v) {
  if (std::optional<SmallVector<int64_t>> c = intConstant(v))
    return c;
  Operation *flat = defOp(skipNoops(v), "Reshape");
  Operation *onehot =
      flat ? defOp(skipNoops(flat->getOperand(0)), "OneHot") : nullptr;
  if (!onehot || intAttr(onehot, "axis", -1) != -1)
    return std::nullopt;
  std::optional<SmallVector<int64_t>> index =
      intConstant(onehot->getOperand(0));
  std::optional<SmallVector<int64_t>> depth =
      intConstant(onehot->getOperand(1));
  std::optional<SmallVector<int64_t>> values =
      intConstant(onehot->getOperand(2));
  std::optional<SmallVector<int64_t>> shape = intConstant(flat->getOperand(1));
  if (!index || index->size() != 1 || !depth || depth->size() != 1 || !values ||
      values->size() != 2 || !shape || *shape != SmallVector<int64_t>{-1} ||
      (*index)[0] < 0 || (*index)[0] >= (*depth)[0])
    return std::nullopt;
  SmallVector<int64_t> out((*depth)[0], (*values)[0]);
  out[(*index)[0]] = (*values)[1];
  return out;
}

Value repeatedRows(Value rep, int64_t k, int64_t hidden) {
  rep = skipNoops(rep);
  Operation *spread = nullptr;
  if (Operation *flatten = defOp(rep, "Flatten")) {
    Operation *tile = defOp(skipNoops(flatten->getOperand(0)), "Tile");
    std::optional<SmallVector<int64_t>> reps =
        tile ? repeatsOf(tile->getOperand(1)) : std::nullopt;
    if (intAttr(flatten, "axis", 1) == 2 && reps &&
        *reps == SmallVector<int64_t>{1, k, 1})
      spread = tile;
  } else if (Operation *reshape = defOp(rep, "Reshape")) {
    Operation *expand = defOp(skipNoops(reshape->getOperand(0)), "Expand");
    std::optional<SmallVector<int64_t>> shape =
        intConstant(reshape->getOperand(1));
    std::optional<SmallVector<int64_t>> to =
        expand ? intConstant(expand->getOperand(1)) : std::nullopt;
    if (shape && *shape == SmallVector<int64_t>{-1, hidden} && to &&
        *to == SmallVector<int64_t>{1, k, 1})
      spread = expand;
  }
  if (!spread)
    return {};
  return unsqueezed(spread->getOperand(0), 1, 3);
}

class BatchedRaiser : public CandidateRaiser {
public:
  explicit BatchedRaiser(Operation *sum) : CandidateRaiser(sum), sum(sum) {}
  RaiseResult run() { return finish(match(), "gathered-expert MoE block"); }

private:
  LogicalResult match();
  Operation *sum;
};

LogicalResult BatchedRaiser::match() {
  // y = Reshape(out, (T, k, H)).sum(1)
  auto sumType = dyn_cast<RankedTensorType>(sum->getResult(0).getType());
  Operation *split = defOp(skipNoops(sum->getOperand(0)), "Reshape");
  auto splitType =
      split ? dyn_cast<RankedTensorType>(split->getResult(0).getType())
            : RankedTensorType();
  if (!sumType || !split || !splitType || splitType.getRank() != 3 ||
      splitType.isDynamicDim(1) || splitType.isDynamicDim(2) ||
      intAttr(sum, "keepdims", 1) != 0 || sum->getNumOperands() < 2 ||
      !axesAre(sum->getOperand(1), {1, -2}))
    return why.decline("not a sum over slots");
  int64_t k = splitType.getDimSize(1), hidden = splitType.getDimSize(2);
  Operation *weigh = defOp(skipPairs(split->getOperand(0)), "Mul");
  if (!weigh)
    return why.decline("the slots are not weighted");
  Value weights, out;
  for (int side = 0; side < 2 && !weights; ++side) {
    Value column = unsqueezed(weigh->getOperand(side), 1, 2);
    if (Value w = column ? flatIdsSource(column) : Value()) {
      weights = w;
      out = weigh->getOperand(1 - side);
    }
  }
  if (!weights)
    return why.decline("the slots are not weighted by flattened routing "
                       "weights");
  FailureOr<BatchedLinear> down = matchBatchedLinear(out, sum, "down", why);
  if (failed(down))
    return failure();
  recognised = true;
  if (down->out != hidden)
    return why.decline("the down projection's output is not the hidden "
                       "size of the slot sum");

  // The expert's hidden layer: a GLU over a fused gate/up, or act(up).
  Value h = skipPairs(down->input);
  SmallVector<std::optional<ExpertMlp>, 0> experts;
  std::optional<Gated> gated = matchGated(h);
  std::optional<PartOf> gatePart, upPart;
  FailureOr<BatchedLinear> first = failure();
  ActivationKind kind = ActivationKind::identity;
  if (gated) {
    gatePart = matchPart(gated->gate);
    upPart = matchPart(gated->up);
    if (!gatePart || !upPart || !complementary(*gatePart, *upPart))
      return why.decline("the gate and up projections are not the two "
                         "halves (or the even and odd columns) of one fused "
                         "projection");
    first = matchBatchedLinear(gatePart->fused, sum, "gate/up", why);
    kind = gated->kind;
  } else {
    std::optional<Activation> act = matchActivation(h);
    if (act)
      kind = act->kind;
    first = matchBatchedLinear(act ? act->input : h, sum, "up", why);
  }
  if (failed(first))
    return failure();
  if (first->ids != down->ids)
    return why.decline("the two expert projections gather by different "
                       "expert ids");
  int64_t inter = gated ? first->out / 2 : first->out;
  if (first->experts != down->experts || down->in != inter ||
      first->in != hidden)
    return why.decline("the expert projections disagree in shape");
  Value tokens = repeatedRows(first->input, k, hidden);
  if (!tokens)
    return why.decline("the rows multiplied are not the tokens repeated " +
                       Twine(k) + " times");

  FailureOr<RouterMatch> router = matchRouter(weights, down->ids, sum, why);
  if (failed(router))
    return failure();
  if (router->k != k)
    return why.decline("the slot sum has " + Twine(k) +
                       " slots but the router picks " + Twine(router->k));
  if (router->experts != down->experts)
    return why.decline("the router scores " + Twine(router->experts) +
                       " experts but the expert tensors stack " +
                       Twine(down->experts));
  if (!sameRows(tokens, router->tokens))
    return why.decline("the experts read other tokens than the router");

  for (int64_t e = 0; e < down->experts; ++e) {
    Linear downE = stackedLinear(down->weight, down->bias, std::nullopt, e);
    if (gated) {
      experts.push_back(gatedExpert(
          router->tokens, *gated,
          stackedLinear(first->weight, first->bias, gatePart->part, e),
          stackedLinear(first->weight, first->bias, upPart->part, e),
          std::move(downE)));
      continue;
    }
    ExpertMlp mlp;
    mlp.input = router->tokens;
    mlp.kind = kind;
    mlp.up = stackedLinear(first->weight, first->bias, std::nullopt, e);
    mlp.down = std::move(downE);
    experts.push_back(std::move(mlp));
  }

  return replaceWithLayer(builder, sum, *router, experts, why);
}

} // namespace

void mlir::moe::raiseBatchedExperts(Operation *root, bool &failedAny) {
  raiseEach<BatchedRaiser>(root, "onnx.ReduceSum", failedAny);
}
