//===- RaiseTorchDense.cpp - dense exported MoE blocks to moe.layer -------===//
//
// The dense form runs every expert on every token and weights expert e's
// output by column e of the routing matrix
//   routing = zeros_like(logits).scatter(1, selected, weights)
// (zero where the token did not select e), then sums the terms. The
// matcher starts from that scatter, takes each column's Mul with an
// expert's output as one term, and proves the sum holds only such terms,
// each expert at most once. Experts the sum leaves out are absent.
//
//===----------------------------------------------------------------------===//

#include "ExportedLayer.h"
#include "RaiseExperts.h"
#include "SymbolicDims.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {

/// Column e of `routing` as (T, 1): Slice [e, e+1) of axis 1, or
/// Unsqueeze(Gather(routing, e, axis 1), 1), or Gather with indices [e].
std::optional<int64_t> columnOf(Operation *op, Value routing) {
  if (op->getNumOperands() == 0 || op->getOperand(0) != routing)
    return std::nullopt;
  StringRef name = op->getName().getStringRef();
  if (name == "onnx.Slice" && op->getNumOperands() >= 4) {
    auto starts = intConstant(op->getOperand(1));
    auto ends = intConstant(op->getOperand(2));
    auto axes = intConstant(op->getOperand(3));
    std::optional<SmallVector<int64_t>> steps =
        op->getNumOperands() > 4 && !isNone(op->getOperand(4))
            ? intConstant(op->getOperand(4))
            : SmallVector<int64_t>{1};
    if (starts && ends && axes && steps && starts->size() == 1 &&
        ends->size() == 1 && axes->size() == 1 && (*steps)[0] == 1 &&
        ((*axes)[0] == 1 || (*axes)[0] == -1) &&
        (*ends)[0] == (*starts)[0] + 1 && (*starts)[0] >= 0)
      return (*starts)[0];
    return std::nullopt;
  }
  if (name == "onnx.Gather" && intAttr(op, "axis", 0) == 1) {
    auto index = intConstant(op->getOperand(1));
    auto indexType = cast<RankedTensorType>(op->getOperand(1).getType());
    if (!index || index->size() != 1 || (*index)[0] < 0)
      return std::nullopt;
    if (indexType.getRank() == 1)
      return (*index)[0];
    // A scalar index drops the axis; it must come back as a column.
    Value result = op->getResult(0);
    if (!result.hasOneUse())
      return std::nullopt;
    Operation *unsq = *result.getUsers().begin();
    auto axes = unsq->getName().getStringRef() == "onnx.Unsqueeze" &&
                        unsq->getNumOperands() > 1
                    ? intConstant(unsq->getOperand(1))
                    : std::nullopt;
    if (axes && axes->size() == 1 && ((*axes)[0] == 1 || (*axes)[0] == -1))
      return (*index)[0];
  }
  return std::nullopt;
}

/// The (T, 1) value a column op yields.
Value columnValue(Operation *op) {
  Value v = op->getResult(0);
  if (op->getName().getStringRef() == "onnx.Gather" &&
      cast<RankedTensorType>(op->getOperand(1).getType()).getRank() == 0)
    v = (*v.getUsers().begin())->getResult(0);
  return v;
}

void collectTerms(Value v, SmallVectorImpl<Value> &terms) {
  Operation *add = defOp(v, "Add");
  if (add && v.hasOneUse()) {
    collectTerms(add->getOperand(0), terms);
    collectTerms(add->getOperand(1), terms);
    return;
  }
  terms.push_back(v);
}

RaiseResult raiseDense(Operation *scatter, SymbolicDims &dims) {
  Value routing = scatter->getResult(0);
  // Each term: Mul(expert output, column e).
  llvm::DenseMap<Value, int64_t> termExpert;
  llvm::DenseMap<Value, Value> termOutput;
  SmallVector<Operation *> roots;
  for (Operation *user : routing.getUsers()) {
    std::optional<int64_t> e = columnOf(user, routing);
    if (!e)
      continue;
    Value column = columnValue(user);
    for (Operation *mul : column.getUsers()) {
      if (mul->getName().getStringRef() != "onnx.Mul")
        continue;
      Value term = mul->getResult(0);
      termExpert[term] = *e;
      termOutput[term] = mul->getOperand(0) == column ? mul->getOperand(1)
                                                      : mul->getOperand(0);
      // The sum's root: climb single-use Adds.
      Operation *root = mul;
      while (root->getResult(0).hasOneUse()) {
        Operation *next = *root->getResult(0).getUsers().begin();
        if (next->getName().getStringRef() != "onnx.Add")
          break;
        root = next;
      }
      if (root != mul && !llvm::is_contained(roots, root))
        roots.push_back(root);
    }
  }
  if (roots.size() != 1)
    return RaiseResult::Declined; // not a dense MoE sum: nothing to say
  Operation *root = roots.front();

  OpBuilder builder(root);
  CreatedOps created;
  builder.setListener(&created);
  Why why;
  auto result = [&]() -> LogicalResult {
    SmallVector<Value> terms;
    collectTerms(root->getResult(0), terms);
    FailureOr<RouterMatch> router =
        matchRouter(scatter->getOperand(2), scatter->getOperand(1), root, why);
    if (failed(router))
      return failure();
    SmallVector<std::optional<ExpertMlp>, 0> mlps(router->experts);
    for (Value term : terms) {
      auto it = termExpert.find(term);
      if (it == termExpert.end())
        return why.decline("the sum has a term that is not an expert output "
                           "times a routing-matrix column");
      int64_t e = it->second;
      if (e >= router->experts)
        return why.decline("column " + Twine(e) + " is outside the " +
                           Twine(router->experts) + " experts");
      if (mlps[e])
        return why.decline("expert " + Twine(e) + " is added twice");
      FailureOr<ExpertMlp> mlp = matchExpertMlp(termOutput[term], root, why);
      if (failed(mlp)) {
        if (why.declined())
          why.text = "expert " + std::to_string(e) + ": " + why.text;
        return failure();
      }
      if (mlp->input != router->tokens)
        return why.decline("expert " + Twine(e) +
                           " reads other tokens than the router");
      mlps[e] = std::move(*mlp);
    }
    // The routing matrix starts as zeros shaped like the logits (T, E).
    std::optional<SmallVector<DimExpr>> zeros =
        dims.shape(skipNoops(scatter->getOperand(0)));
    std::optional<SmallVector<DimExpr>> tokens = dims.shape(router->tokens);
    if (!isZeros(scatter->getOperand(0)) || !zeros || !tokens ||
        zeros->size() != 2 || !((*zeros)[0] == (*tokens)[0]) ||
        !(*zeros)[1].isConstant(router->experts))
      return why.decline("the routing matrix does not start from zeros of "
                         "shape (T, E)");
    return replaceWithLayer(builder, root, *router, mlps, why);
  }();
  if (succeeded(result))
    return RaiseResult::Raised;
  created.eraseAll();
  if (!why.declined())
    return RaiseResult::Error;
  scatter->emitRemark() << "dense MoE sum not raised to moe.layer: "
                        << why.text;
  return RaiseResult::Declined;
}

} // namespace

void mlir::moe::raiseTorchDense(Operation *root, bool &failedAny) {
  SmallVector<Operation *> candidates;
  root->walk([&](Operation *op) {
    if (op->getName().getStringRef() == "onnx.ScatterElements" &&
        intAttr(op, "axis", 0) == 1 &&
        (!op->getAttrOfType<StringAttr>("reduction") ||
         op->getAttrOfType<StringAttr>("reduction").getValue() == "none"))
      candidates.push_back(op);
  });
  SymbolicDims dims;
  for (Operation *op : candidates)
    failedAny |= raiseDense(op, dims) == RaiseResult::Error;
}
