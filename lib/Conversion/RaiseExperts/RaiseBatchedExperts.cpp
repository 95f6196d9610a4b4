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
#include "RaiseExperts.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <cstring>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {

bool axesAre(Value axes, std::initializer_list<int64_t> accepted) {
  std::optional<SmallVector<int64_t>> a = intConstant(axes);
  return a && a->size() == 1 && llvm::is_contained(accepted, (*a)[0]);
}

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

/// Unsqueeze(x, [axis]) of a rank-`rank` result (axis also as negative).
Value unsqueezed(Value v, int64_t axis, int64_t rank) {
  Operation *u = defOp(skipNoops(v), "Unsqueeze");
  if (!u || u->getNumOperands() < 2 ||
      !axesAre(u->getOperand(1), {axis, axis - rank}))
    return {};
  return skipNoops(u->getOperand(0));
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

/// Which rows of a fused (2I) gate/up projection a value takes.
enum class Part { First, Second, Even, Odd };
struct PartOf {
  Value fused;
  Part part;
};

/// Split(fused, 2 equal parts, last axis), or Slice of the first or second
/// half, or of the even or odd columns (step 2).
std::optional<PartOf> matchPart(Value v) {
  v = skipNoops(v);
  auto result = dyn_cast<OpResult>(v);
  if (!result)
    return std::nullopt;
  Operation *op = result.getOwner();
  StringRef name = op->getName().getStringRef();
  Value fused = op->getNumOperands() ? op->getOperand(0) : Value();
  auto type =
      fused ? dyn_cast<RankedTensorType>(fused.getType()) : RankedTensorType();
  if (!type || type.getRank() != 2 || type.isDynamicDim(1) ||
      type.getDimSize(1) % 2 != 0)
    return std::nullopt;
  int64_t width = type.getDimSize(1), half = width / 2;
  if (name == "onnx.Split") {
    int64_t axis = intAttr(op, "axis", 0);
    if (op->getNumResults() != 2 || (axis != 1 && axis != -1))
      return std::nullopt;
    if (op->getNumOperands() > 1 && !isNone(op->getOperand(1))) {
      std::optional<SmallVector<int64_t>> sizes =
          intConstant(op->getOperand(1));
      if (!sizes || *sizes != SmallVector<int64_t>{half, half})
        return std::nullopt;
    }
    return PartOf{skipNoops(fused),
                  result.getResultNumber() == 0 ? Part::First : Part::Second};
  }
  if (name != "onnx.Slice" || op->getNumOperands() < 4)
    return std::nullopt;
  std::optional<SmallVector<int64_t>> starts = intConstant(op->getOperand(1));
  std::optional<SmallVector<int64_t>> ends = intConstant(op->getOperand(2));
  std::optional<SmallVector<int64_t>> steps =
      op->getNumOperands() > 4 && !isNone(op->getOperand(4))
          ? intConstant(op->getOperand(4))
          : SmallVector<int64_t>{1};
  if (!starts || !ends || !steps || starts->size() != 1 || ends->size() != 1 ||
      steps->size() != 1 || !axesAre(op->getOperand(3), {1, -1}))
    return std::nullopt;
  int64_t start = (*starts)[0], end = (*ends)[0], step = (*steps)[0];
  if (step == 1 && start == 0 && end == half)
    return PartOf{skipNoops(fused), Part::First};
  if (step == 1 && start == half && end >= width)
    return PartOf{skipNoops(fused), Part::Second};
  if (step == 2 && start == 0 && end >= width - 1)
    return PartOf{skipNoops(fused), Part::Even};
  if (step == 2 && start == 1 && end >= width)
    return PartOf{skipNoops(fused), Part::Odd};
  return std::nullopt;
}

/// Rows `part` of each expert's (out, in) matrix (in = 1: a bias row).
Bytes takeRows(const Bytes &from, Part part, int64_t expert) {
  ArrayRef<int64_t> shape = from.type.getShape();
  int64_t rows = shape[1], cols = shape.size() > 2 ? shape[2] : 1;
  size_t rowBytes = cols * from.elementBytes();
  Bytes out;
  SmallVector<int64_t> outShape = {rows / 2};
  if (shape.size() > 2)
    outShape.push_back(cols);
  out.type = RankedTensorType::get(outShape, from.type.getElementType());
  out.data.resize(rows / 2 * rowBytes);
  const char *base = from.data.data() + expert * rows * rowBytes;
  for (int64_t r = 0; r < rows / 2; ++r) {
    int64_t src = part == Part::First    ? r
                  : part == Part::Second ? rows / 2 + r
                  : part == Part::Even   ? 2 * r
                                         : 2 * r + 1;
    std::memcpy(out.data.data() + r * rowBytes, base + src * rowBytes,
                rowBytes);
  }
  return out;
}

/// Expert `e`'s (out, in) matrix (or bias row) of a stacked tensor.
Bytes slice(const Bytes &from, int64_t expert) {
  ArrayRef<int64_t> shape = from.type.getShape();
  Bytes out;
  out.type =
      RankedTensorType::get(shape.drop_front(), from.type.getElementType());
  size_t each = from.data.size() / shape[0];
  out.data.assign(from.data.begin() + expert * each,
                  from.data.begin() + (expert + 1) * each);
  return out;
}

/// Clip(v, min, max) with constant bounds (absent: nullopt).
struct Clipped {
  Value input;
  std::optional<double> lo, hi;
};
Clipped unclip(Value v) {
  v = skipNoops(v);
  Operation *clip = defOp(v, "Clip");
  if (!clip)
    return {v, std::nullopt, std::nullopt};
  auto bound = [&](unsigned i) -> std::optional<double> {
    if (clip->getNumOperands() <= i || isNone(clip->getOperand(i)))
      return std::nullopt;
    return scalarConstant(clip->getOperand(i));
  };
  return {skipNoops(clip->getOperand(0)), bound(1), bound(2)};
}

/// act(gate) * up as exporters write the expert's GLU, including gpt-oss's
/// clamped SwiGLU (clamp(up, -l, l) + beta) * (g * sigmoid(alpha * g)) with
/// g = min(gate, l).
struct Gated {
  Value gate, up;
  ActivationKind kind;
  double alpha = 1.0, beta = 0.0;
  std::optional<double> limit;
};
std::optional<Gated> matchGated(Value h) {
  Operation *mul = defOp(skipNoops(h), "Mul");
  if (!mul)
    return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    Value a = skipNoops(mul->getOperand(side));
    Value b = skipNoops(mul->getOperand(1 - side));
    if (Operation *add = defOp(a, "Add")) {
      Operation *glu = defOp(b, "Mul");
      for (int s = 0; s < 2 && glu; ++s) {
        std::optional<double> beta = scalarConstant(add->getOperand(1 - s));
        if (!beta)
          continue;
        Clipped up = unclip(add->getOperand(s));
        for (int g = 0; g < 2; ++g) {
          Value gc = skipNoops(glu->getOperand(g));
          Operation *sig = defOp(skipNoops(glu->getOperand(1 - g)), "Sigmoid");
          Operation *scaled =
              sig ? defOp(skipNoops(sig->getOperand(0)), "Mul") : nullptr;
          if (!scaled)
            continue;
          for (int t = 0; t < 2; ++t) {
            std::optional<double> alpha =
                scalarConstant(scaled->getOperand(1 - t));
            if (!alpha || skipNoops(scaled->getOperand(t)) != gc)
              continue;
            Clipped gate = unclip(gc);
            // One limit: the gate clamped from above, up on both sides.
            bool clamped = gate.hi && !gate.lo && up.hi && up.lo &&
                           *up.hi == *gate.hi && *up.lo == -*gate.hi;
            bool plain = !gate.hi && !gate.lo && !up.hi && !up.lo;
            if (!clamped && !plain)
              continue;
            Gated r{gate.input, up.input, ActivationKind::swiglu,
                    *alpha,     *beta,    std::nullopt};
            if (clamped)
              r.limit = *gate.hi;
            return r;
          }
        }
      }
    }
    if (std::optional<Activation> act = matchActivation(a))
      return Gated{act->input, b, act->kind};
  }
  return std::nullopt;
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

/// Whether two values are the same token rows: equal, or the same Reshape
/// of one source by one constant shape (TorchScript repeats the Reshape),
/// through Reshapes to [-1, H] that change nothing.
Value canonicalRows(Value v) {
  while (true) {
    v = skipNoops(v);
    Operation *r = defOp(v, "Reshape");
    if (!r || r->getOperand(0).getType() != v.getType())
      return v;
    std::optional<SmallVector<int64_t>> shape = intConstant(r->getOperand(1));
    auto type = cast<RankedTensorType>(v.getType());
    if (!shape || type.getRank() != 2 || shape->size() != 2 ||
        (*shape)[0] != -1 || (*shape)[1] != type.getDimSize(1))
      return v;
    v = r->getOperand(0);
  }
}
bool sameRows(Value a, Value b) {
  a = canonicalRows(a);
  b = canonicalRows(b);
  if (a == b)
    return true;
  Operation *ra = defOp(a, "Reshape"), *rb = defOp(b, "Reshape");
  if (!ra || !rb || a.getType() != b.getType() ||
      skipNoops(ra->getOperand(0)) != skipNoops(rb->getOperand(0)))
    return false;
  std::optional<SmallVector<int64_t>> sa = intConstant(ra->getOperand(1));
  std::optional<SmallVector<int64_t>> sb = intConstant(rb->getOperand(1));
  return sa && sb && *sa == *sb && !llvm::is_contained(*sa, 0);
}

class BatchedRaiser {
public:
  explicit BatchedRaiser(Operation *sum) : sum(sum), builder(sum) {
    builder.setListener(&created);
  }

  RaiseResult run() {
    LogicalResult result = match();
    if (succeeded(result))
      return RaiseResult::Raised;
    created.eraseAll();
    if (!why.declined())
      return RaiseResult::Error;
    if (recognised)
      sum->emitRemark() << "gathered-expert MoE block not raised to "
                           "moe.layer: "
                        << why.text;
    return RaiseResult::Declined;
  }

private:
  LogicalResult match();

  Operation *sum;
  OpBuilder builder;
  CreatedOps created;
  Why why;
  /// Set once the experts are recognised: from then on a decline is a
  /// near miss worth a remark.
  bool recognised = false;
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
    bool halves =
        gatePart && upPart && gatePart->fused == upPart->fused &&
        ((gatePart->part == Part::First && upPart->part == Part::Second) ||
         (gatePart->part == Part::Even && upPart->part == Part::Odd));
    if (!halves)
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
    ExpertMlp mlp;
    mlp.input = router->tokens;
    mlp.kind = kind;
    if (gated) {
      mlp.alpha = gated->alpha;
      mlp.beta = gated->beta;
      mlp.limit = gated->limit;
    }
    auto linear = [&](const BatchedLinear &from,
                      std::optional<Part> part) -> Linear {
      Linear lin;
      lin.weight =
          part ? takeRows(from.weight, *part, e) : slice(from.weight, e);
      lin.out = lin.weight.type.getDimSize(0);
      lin.in = lin.weight.type.getDimSize(1);
      if (from.bias)
        lin.bias = part ? takeRows(*from.bias, *part, e) : slice(*from.bias, e);
      return lin;
    };
    if (gated) {
      mlp.gate = linear(*first, gatePart->part);
      mlp.up = linear(*first, upPart->part);
    } else {
      mlp.up = linear(*first, std::nullopt);
    }
    mlp.down = linear(*down, std::nullopt);
    experts.push_back(std::move(mlp));
  }

  builder.setInsertionPoint(sum);
  FailureOr<Value> layer = buildLayer(builder, sum, *router, experts, why);
  if (failed(layer))
    return failure();
  Value result = *layer;
  Value old = sum->getResult(0);
  if (old.getType() != result.getType())
    result =
        tensor::CastOp::create(builder, sum->getLoc(), old.getType(), result);
  old.replaceAllUsesWith(result);
  eraseDeadTree(sum);
  return success();
}

} // namespace

void mlir::moe::raiseBatchedExperts(Operation *root, bool &failedAny) {
  SmallVector<Operation *> candidates;
  root->walk([&](Operation *op) {
    if (op->getName().getStringRef() == "onnx.ReduceSum")
      candidates.push_back(op);
  });
  for (Operation *op : candidates)
    failedAny |= BatchedRaiser(op).run() == RaiseResult::Error;
}
