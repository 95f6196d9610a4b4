//===- OnnxOps.cpp - onnx dialect operations ------------------------------===//
//
// Verifiers check what the raising passes and lowerings rely on: ranks,
// attribute ranges, and the sizes that must agree when they are known. A
// dynamic size or an unranked operand is never an error here.
//
//===----------------------------------------------------------------------===//

#include "OnnxDetail.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::onnx;
using namespace mlir::onnx::util;

#define GET_OP_CLASSES
#include "moe-mlir/Dialect/Onnx/IR/OnnxOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Shared checks
//===----------------------------------------------------------------------===//

namespace {

LogicalResult checkRank(Operation *op, StringRef name, Value value,
                        int64_t rank) {
  int64_t actual = rankOf(value);
  if (actual < 0 || actual == rank)
    return success();
  return op->emitOpError() << "operand '" << name << "' must have rank " << rank
                           << ", got rank " << actual;
}

LogicalResult check1D(Operation *op, StringRef name, Value value) {
  if (isNone(value))
    return success();
  int64_t rank = rankOf(value);
  if (rank < 0 || rank == 1)
    return success();
  return op->emitOpError() << "operand '" << name << "' must be 1-D, got rank "
                           << rank;
}

/// A scalar, or any shape of one element.
LogicalResult checkOneElement(Operation *op, StringRef name, Value value) {
  std::optional<SmallVector<int64_t>> dims = shapeOf(value);
  if (!dims || ShapedType::isDynamic(product(*dims)) || product(*dims) == 1)
    return success();
  return op->emitOpError() << "operand '" << name
                           << "' must have exactly one element, got shape "
                           << shapeString(*dims);
}

/// The static length of a 1-D operand, or nullopt.
std::optional<int64_t> staticLength(Value value) {
  std::optional<SmallVector<int64_t>> dims = shapeOf(value);
  if (!dims || dims->size() != 1 || ShapedType::isDynamic(dims->front()))
    return std::nullopt;
  return dims->front();
}

LogicalResult checkSameRank(Operation *op, StringRef a, Value x, StringRef b,
                            Value y) {
  int64_t rx = rankOf(x), ry = rankOf(y);
  if (rx < 0 || ry < 0 || rx == ry)
    return success();
  return op->emitOpError() << "operands '" << a << "' and '" << b
                           << "' must have the same rank, got " << rx << " and "
                           << ry;
}

LogicalResult checkReduction(Operation *op, StringRef reduction) {
  if (llvm::is_contained({"none", "add", "mul", "max", "min"}, reduction))
    return success();
  return op->emitOpError() << "attribute 'reduction' must be one of none, "
                              "add, mul, max, min, got \""
                           << reduction << "\"";
}

LogicalResult checkResultElementType(Operation *op, Type expected,
                                     StringRef what) {
  Type actual = elementTypeOf(op->getResult(0));
  if (!actual || !expected || actual == expected)
    return success();
  return op->emitOpError() << "result element type " << actual
                           << " does not match " << what << " (" << expected
                           << ")";
}

} // namespace

LogicalResult util::verifyAxisForRank(Operation *op, StringRef name,
                                      int64_t axis, int64_t rank,
                                      bool inclusive) {
  if (rank < 0 || (axis >= -rank && (inclusive ? axis <= rank : axis < rank)))
    return success();
  return op->emitOpError() << "attribute '" << name << "' = " << axis
                           << " is out of range [" << -rank << ", " << rank
                           << (inclusive ? "]" : ")") << " for rank " << rank;
}

LogicalResult util::verifyAxis(Operation *op, StringRef name, int64_t axis,
                               Value value, bool inclusive) {
  return verifyAxisForRank(op, name, axis, rankOf(value), inclusive);
}

LogicalResult util::verifyBroadcast(Operation *op) {
  SmallVector<int64_t> shape;
  std::optional<SmallVector<int64_t>> first;
  for (Value operand : op->getOperands()) {
    std::optional<SmallVector<int64_t>> dims = shapeOf(operand);
    if (!dims)
      continue;
    if (!broadcastShapes(shape, *dims, shape))
      return op->emitOpError() << "operands are not broadcast compatible: "
                               << shapeString(first ? *first : shape) << " and "
                               << shapeString(*dims);
    if (!first)
      first = dims;
  }
  return success();
}

LogicalResult util::verifyReduce(Operation *op) {
  return check1D(op, "axes", op->getOperand(1));
}

//===----------------------------------------------------------------------===//
// Element-wise
//===----------------------------------------------------------------------===//

LogicalResult GeluOp::verify() {
  StringRef approximate = getApproximate();
  if (approximate == "none" || approximate == "tanh")
    return success();
  return emitOpError() << "attribute 'approximate' must be \"none\" or "
                          "\"tanh\", got \""
                       << approximate << "\"";
}

LogicalResult ClipOp::verify() {
  if (failed(checkOneElement(*this, "min", getMin())))
    return failure();
  return checkOneElement(*this, "max", getMax());
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

LogicalResult MatMulOp::verify() {
  auto a = shapeOf(getA()), b = shapeOf(getB());
  if ((a && a->empty()) || (b && b->empty()))
    return emitOpError() << "operands 'A' and 'B' must have rank >= 1, got "
                         << rankOf(getA()) << " and " << rankOf(getB());
  if (!a || !b)
    return success();
  int64_t ka = a->back();
  int64_t kb = b->size() == 1 ? b->front() : (*b)[b->size() - 2];
  if (!ShapedType::isDynamic(ka) && !ShapedType::isDynamic(kb) && ka != kb)
    return emitOpError() << "inner dimensions differ: A is " << shapeString(*a)
                         << ", B is " << shapeString(*b);
  SmallVector<int64_t> batch;
  ArrayRef<int64_t> batchA =
      ArrayRef(*a).drop_back(std::min<size_t>(2, a->size()));
  ArrayRef<int64_t> batchB =
      ArrayRef(*b).drop_back(std::min<size_t>(2, b->size()));
  if (!broadcastShapes(batchA, batchB, batch))
    return emitOpError() << "batch dimensions do not broadcast: A is "
                         << shapeString(*a) << ", B is " << shapeString(*b);
  return success();
}

LogicalResult GemmOp::verify() {
  if (failed(checkRank(*this, "A", getA(), 2)) ||
      failed(checkRank(*this, "B", getB(), 2)))
    return failure();
  auto a = shapeOf(getA()), b = shapeOf(getB());
  int64_t m = a ? (*a)[getTransA() ? 1 : 0] : kDyn;
  int64_t n = b ? (*b)[getTransB() ? 0 : 1] : kDyn;
  if (a && b) {
    int64_t ka = (*a)[getTransA() ? 0 : 1], kb = (*b)[getTransB() ? 1 : 0];
    if (!ShapedType::isDynamic(ka) && !ShapedType::isDynamic(kb) && ka != kb)
      return emitOpError() << "inner dimensions differ: A is "
                           << shapeString(*a) << " (transA = " << getTransA()
                           << "), B is " << shapeString(*b)
                           << " (transB = " << getTransB() << ")";
  }
  std::optional<SmallVector<int64_t>> c = shapeOf(getC());
  if (!c)
    return success();
  SmallVector<int64_t> out;
  SmallVector<int64_t> mn = {m, n};
  bool ok = c->size() <= 2 && broadcastShapes(*c, mn, out);
  // C must broadcast to (M, N) without growing it.
  for (size_t i = 0; ok && i < out.size(); ++i)
    ok = ShapedType::isDynamic(mn[i]) || out[i] == mn[i];
  if (!ok)
    return emitOpError() << "operand 'C' of shape " << shapeString(*c)
                         << " does not broadcast to " << shapeString(mn);
  return success();
}

LogicalResult EinsumOp::verify() {
  FailureOr<EinsumSpec> spec = parseEinsum(*this, getEquation());
  if (failed(spec))
    return failure();
  if (spec->inputs.size() != getInputs().size())
    return emitOpError() << "equation has " << spec->inputs.size()
                         << " input terms but the op has " << getInputs().size()
                         << " inputs";
  llvm::StringMap<int64_t> sizes;
  for (auto [i, pair] : llvm::enumerate(llvm::zip(spec->inputs, getInputs()))) {
    auto &[term, input] = pair;
    std::optional<SmallVector<int64_t>> dims = shapeOf(input);
    if (!dims)
      continue;
    int64_t labels = static_cast<int64_t>(term.labels.size());
    int64_t rank = static_cast<int64_t>(dims->size());
    if (term.ellipsis < 0 ? rank != labels : rank < labels)
      return emitOpError() << "equation term '" << term.labels
                           << (term.ellipsis < 0 ? "'" : "' with '...'")
                           << " does not fit operand #" << i << " of rank "
                           << rank;
    int64_t at = term.ellipsis < 0 ? labels : term.ellipsis;
    for (int64_t l = 0; l < labels; ++l) {
      int64_t d = (*dims)[l < at ? l : l + rank - labels];
      auto [it, inserted] = sizes.try_emplace(StringRef(&term.labels[l], 1), d);
      int64_t met;
      if (!inserted && !meetDim(it->second, d, met))
        return emitOpError() << "label '" << term.labels[l] << "' has sizes "
                             << it->second << " and " << d;
      if (!inserted)
        it->second = met;
    }
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  if (failed(check1D(*this, "shape", getShape())))
    return failure();
  std::optional<int64_t> entries = staticLength(getShape());
  int64_t rank = rankOf(getReshaped());
  if (entries && rank >= 0 && rank != *entries)
    return emitOpError() << "result rank " << rank << " does not match the "
                         << *entries << " entries of operand 'shape'";
  return success();
}

LogicalResult TransposeOp::verify() {
  std::optional<ArrayRef<int64_t>> perm = getPerm();
  if (!perm)
    return success();
  int64_t n = static_cast<int64_t>(perm->size());
  SmallVector<bool> seen(n, false);
  for (int64_t p : *perm) {
    if (p < 0 || p >= n || seen[p])
      return emitOpError() << "attribute 'perm' is not a permutation of 0.."
                           << n - 1 << ": ["
                           << llvm::make_range(perm->begin(), perm->end())
                           << "]";
    seen[p] = true;
  }
  int64_t rank = rankOf(getData());
  if (rank >= 0 && rank != n)
    return emitOpError() << "attribute 'perm' has " << n
                         << " entries but the input has rank " << rank;
  return success();
}

LogicalResult SqueezeOp::verify() { return check1D(*this, "axes", getAxes()); }

LogicalResult UnsqueezeOp::verify() {
  return check1D(*this, "axes", getAxes());
}

LogicalResult FlattenOp::verify() {
  return verifyAxis(*this, "axis", getAxis(), getInput(), /*inclusive=*/true);
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError() << "needs at least one input";
  Value first = getInputs().front();
  std::optional<SmallVector<int64_t>> reference;
  int64_t referenceIndex = 0;
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    if (elementTypeOf(input) != elementTypeOf(first))
      return emitOpError() << "input #" << i << " has element type "
                           << elementTypeOf(input) << " but input #0 has "
                           << elementTypeOf(first);
    std::optional<SmallVector<int64_t>> dims = shapeOf(input);
    if (!dims)
      continue;
    if (!reference) {
      if (failed(verifyAxisForRank(*this, "axis", getAxis(), dims->size())))
        return failure();
      reference = dims;
      referenceIndex = i;
      continue;
    }
    if (dims->size() != reference->size())
      return emitOpError() << "input #" << i << " has rank " << dims->size()
                           << " but input #" << referenceIndex << " has rank "
                           << reference->size();
    int64_t axis = getAxis();
    if (axis < 0)
      axis += dims->size();
    for (size_t d = 0; d < dims->size(); ++d) {
      int64_t met;
      if (static_cast<int64_t>(d) != axis &&
          !meetDim((*reference)[d], (*dims)[d], met))
        return emitOpError()
               << "input #" << i << " has size " << (*dims)[d]
               << " in dimension " << d << " but input #" << referenceIndex
               << " has size " << (*reference)[d];
    }
  }
  return success();
}

LogicalResult SplitOp::verify() {
  if (failed(verifyAxis(*this, "axis", getAxis(), getInput())) ||
      failed(check1D(*this, "split", getSplit())))
    return failure();
  int64_t results = getNumResults();
  if (!isNone(getSplit()) && getNumOutputs())
    return emitOpError() << "takes either operand 'split' or attribute "
                            "'num_outputs', not both";
  if (std::optional<uint64_t> n = getNumOutputs();
      n && static_cast<int64_t>(*n) != results)
    return emitOpError() << "has " << results
                         << " results but attribute 'num_outputs' is "
                         << static_cast<int64_t>(*n);
  if (std::optional<int64_t> n = staticLength(getSplit());
      n && !isNone(getSplit()) && *n != results)
    return emitOpError() << "operand 'split' has " << *n
                         << " entries but the op has " << results << " results";
  return success();
}

LogicalResult SliceOp::verify() {
  std::pair<StringRef, Value> operands[] = {{"starts", getStarts()},
                                            {"ends", getEnds()},
                                            {"axes", getAxes()},
                                            {"steps", getSteps()}};
  std::optional<int64_t> length;
  StringRef lengthFrom;
  for (auto [name, value] : operands) {
    if (failed(check1D(*this, name, value)))
      return failure();
    std::optional<int64_t> n =
        isNone(value) ? std::nullopt : staticLength(value);
    if (!n)
      continue;
    if (length && *length != *n)
      return emitOpError() << "operands '" << lengthFrom << "' and '" << name
                           << "' have " << *length << " and " << *n
                           << " entries";
    length = n;
    lengthFrom = name;
  }
  return success();
}

LogicalResult ExpandOp::verify() { return check1D(*this, "shape", getShape()); }

LogicalResult TileOp::verify() {
  if (failed(check1D(*this, "repeats", getRepeats())))
    return failure();
  std::optional<int64_t> n = staticLength(getRepeats());
  int64_t rank = rankOf(getInput());
  if (n && rank >= 0 && *n != rank)
    return emitOpError() << "operand 'repeats' has " << *n
                         << " entries but the input has rank " << rank;
  return success();
}

//===----------------------------------------------------------------------===//
// Indexing
//===----------------------------------------------------------------------===//

LogicalResult GatherOp::verify() {
  return verifyAxis(*this, "axis", getAxis(), getData());
}

LogicalResult GatherElementsOp::verify() {
  if (failed(verifyAxis(*this, "axis", getAxis(), getData())))
    return failure();
  return checkSameRank(*this, "data", getData(), "indices", getIndices());
}

LogicalResult GatherNDOp::verify() {
  auto data = shapeOf(getData()), indices = shapeOf(getIndices());
  if (indices && indices->empty())
    return emitOpError() << "operand 'indices' must have rank >= 1";
  int64_t batch = getBatchDims();
  int64_t r = data ? data->size() : INT64_MAX;
  int64_t q = indices ? indices->size() : INT64_MAX;
  if (batch < 0 || batch >= std::min(r, q))
    return emitOpError() << "attribute 'batch_dims' = " << batch
                         << " must be in [0, min(rank of 'data', rank of "
                            "'indices'))";
  if (data && indices && !ShapedType::isDynamic(indices->back()) &&
      batch + indices->back() > r)
    return emitOpError() << "index tuples of length " << indices->back()
                         << " exceed the " << r - batch
                         << " dimensions of 'data' after the batch dimensions";
  return success();
}

LogicalResult ScatterElementsOp::verify() {
  if (failed(checkReduction(*this, getReduction())) ||
      failed(verifyAxis(*this, "axis", getAxis(), getData())) ||
      failed(checkSameRank(*this, "data", getData(), "indices", getIndices())))
    return failure();
  auto indices = shapeOf(getIndices()), updates = shapeOf(getUpdates());
  if (indices && updates && failed(verifyCompatibleShape(*indices, *updates)))
    return emitOpError() << "operands 'indices' and 'updates' must have the "
                            "same shape, got "
                         << shapeString(*indices) << " and "
                         << shapeString(*updates);
  return success();
}

LogicalResult ScatterNDOp::verify() {
  return checkReduction(*this, getReduction());
}

LogicalResult TopKOp::verify() {
  if (failed(verifyAxis(*this, "axis", getAxis(), getX())))
    return failure();
  return checkOneElement(*this, "K", getK());
}

LogicalResult OneHotOp::verify() {
  int64_t rank = rankOf(getIndices());
  if (failed(verifyAxisForRank(*this, "axis", getAxis(),
                               rank < 0 ? rank : rank + 1)) ||
      failed(checkOneElement(*this, "depth", getDepth())))
    return failure();
  std::optional<SmallVector<int64_t>> values = shapeOf(getValues());
  if (values && !ShapedType::isDynamic(product(*values)) &&
      product(*values) != 2)
    return emitOpError() << "operand 'values' must have two elements (off, "
                            "on), got shape "
                         << shapeString(*values);
  return success();
}

LogicalResult TriluOp::verify() { return checkOneElement(*this, "k", getK()); }

LogicalResult CumSumOp::verify() {
  return checkOneElement(*this, "axis", getAxis());
}

//===----------------------------------------------------------------------===//
// Normalisation, constants, types, ranges
//===----------------------------------------------------------------------===//

LogicalResult LayerNormalizationOp::verify() {
  return verifyAxis(*this, "axis", getAxis(), getX());
}

ElementsAttr ConstantOp::getTensor() {
  if (std::optional<ElementsAttr> value = getValue())
    return *value;
  Builder b(getContext());
  if (FloatAttr f = getValueFloatAttr())
    return DenseElementsAttr::get(RankedTensorType::get({}, b.getF32Type()),
                                  f.getValue());
  if (IntegerAttr i = getValueIntAttr())
    return DenseElementsAttr::get(RankedTensorType::get({}, b.getI64Type()),
                                  i.getValue());
  if (std::optional<ArrayRef<float>> fs = getValueFloats())
    return DenseElementsAttr::get(
        RankedTensorType::get({static_cast<int64_t>(fs->size())},
                              b.getF32Type()),
        *fs);
  if (std::optional<ArrayRef<int64_t>> is = getValueInts())
    return DenseElementsAttr::get(
        RankedTensorType::get({static_cast<int64_t>(is->size())},
                              b.getI64Type()),
        *is);
  return nullptr;
}

LogicalResult ConstantOp::verify() {
  int count = static_cast<int>(static_cast<bool>(getValue())) +
              static_cast<bool>(getValueFloatAttr()) +
              static_cast<bool>(getValueIntAttr()) +
              static_cast<bool>(getValueFloatsAttr()) +
              static_cast<bool>(getValueIntsAttr());
  if (count != 1)
    return emitOpError() << "needs exactly one of 'value', 'value_float', "
                            "'value_int', 'value_floats', 'value_ints', got "
                         << count;
  Type type = getTensor().getType();
  Type result = getOutput().getType();
  if (getElementTypeOrSelf(type) != getElementTypeOrSelf(result) ||
      failed(verifyCompatibleShape(type, result)))
    return emitOpError() << "result type " << result
                         << " does not match the value's type " << type;
  return success();
}

LogicalResult ConstantOfShapeOp::verify() {
  if (failed(check1D(*this, "input", getInput())))
    return failure();
  Type element = FloatType(Float32Type::get(getContext()));
  if (std::optional<ElementsAttr> value = getValue()) {
    if (value->getNumElements() != 1)
      return emitOpError() << "attribute 'value' must have exactly one "
                              "element, got "
                           << value->getNumElements();
    element = value->getElementType();
  }
  return checkResultElementType(*this, element, "attribute 'value'");
}

LogicalResult CastOp::verify() {
  Type element = getElementTypeForDataType(getContext(), getTo());
  if (!element)
    return emitOpError() << "attribute 'to' = " << static_cast<int64_t>(getTo())
                         << " is not a supported onnx data type (1-7, 9-23)";
  return checkResultElementType(*this, element, "attribute 'to'");
}

LogicalResult CastLikeOp::verify() {
  return checkResultElementType(*this, elementTypeOf(getTargetType()),
                                "operand 'target_type'");
}

LogicalResult RangeOp::verify() {
  if (failed(checkOneElement(*this, "start", getStart())) ||
      failed(checkOneElement(*this, "limit", getLimit())) ||
      failed(checkOneElement(*this, "delta", getDelta())))
    return failure();
  Type element = elementTypeOf(getStart());
  if (elementTypeOf(getLimit()) != element ||
      elementTypeOf(getDelta()) != element)
    return emitOpError() << "operands 'start', 'limit' and 'delta' must have "
                            "one element type, got "
                         << element << ", " << elementTypeOf(getLimit())
                         << " and " << elementTypeOf(getDelta());
  return success();
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

namespace {

/// Checks the shapes and attributes MoE and QMoE share; `others` names the
/// per-expert operands of rank 2 or 3 that only QMoE has. `E` is fixed by
/// the first operand that knows it.
template <typename OpTy>
LogicalResult verifyMoe(OpTy op, ArrayRef<std::pair<StringRef, Value>> others) {
  Operation *o = op.getOperation();
  std::pair<StringRef, Value> experts[] = {
      {"fc1_experts_weights", op.getFc1ExpertsWeights()},
      {"fc2_experts_weights", op.getFc2ExpertsWeights()},
      {"fc3_experts_weights", op.getFc3ExpertsWeights()}};
  std::pair<StringRef, Value> biases[] = {
      {"fc1_experts_bias", op.getFc1ExpertsBias()},
      {"fc2_experts_bias", op.getFc2ExpertsBias()},
      {"fc3_experts_bias", op.getFc3ExpertsBias()}};
  std::optional<SmallVector<int64_t>> input = shapeOf(op.getInput());
  if (input && input->size() != 2 && input->size() != 3)
    return op.emitOpError() << "operand 'input' must have rank 2 or 3, got "
                               "rank "
                            << input->size();
  if (failed(checkRank(o, "router_probs", op.getRouterProbs(), 2)))
    return failure();
  std::optional<SmallVector<int64_t>> router = shapeOf(op.getRouterProbs());
  int64_t tokens = input ? product(ArrayRef(*input).drop_back()) : kDyn;
  if (router && !ShapedType::isDynamic(tokens) &&
      !ShapedType::isDynamic((*router)[0]) && (*router)[0] != tokens)
    return op.emitOpError()
           << "operand 'router_probs' has " << (*router)[0]
           << " rows but the input has " << tokens << " tokens";
  int64_t numExperts = router ? (*router)[1] : kDyn;
  StringRef expertsFrom = "router_probs";
  auto checkExperts = [&](StringRef name, Value value,
                          ArrayRef<int64_t> ranks) -> LogicalResult {
    if (isNone(value))
      return success();
    std::optional<SmallVector<int64_t>> dims = shapeOf(value);
    if (!dims)
      return success();
    if (!llvm::is_contained(ranks, static_cast<int64_t>(dims->size()))) {
      InFlightDiagnostic diag = op.emitOpError()
                                << "operand '" << name << "' must have rank ";
      llvm::interleave(ranks, diag, " or ");
      return diag << ", got rank " << dims->size();
    }
    int64_t e = dims->front();
    if (ShapedType::isDynamic(e))
      return success();
    if (!ShapedType::isDynamic(numExperts) && e != numExperts)
      return op.emitOpError()
             << "operand '" << name << "' has " << e << " experts but '"
             << expertsFrom << "' has " << numExperts;
    numExperts = e;
    expertsFrom = name;
    return success();
  };
  for (auto [name, value] : experts)
    if (failed(checkExperts(name, value, {3})))
      return failure();
  for (auto [name, value] : biases)
    if (failed(checkExperts(name, value, {2})))
      return failure();
  for (auto [name, value] : others)
    if (failed(checkExperts(name, value, {2, 3})))
      return failure();

  int64_t k = op.getK();
  if (k < 1)
    return op.emitOpError() << "attribute 'k' must be at least 1, got " << k;
  if (!ShapedType::isDynamic(numExperts) && k > numExperts)
    return op.emitOpError() << "attribute 'k' = " << k << " exceeds the "
                            << numExperts << " experts";
  StringRef activation = op.getActivationType();
  if (!llvm::is_contained({"relu", "gelu", "silu", "swiglu", "identity"},
                          activation))
    return op.emitOpError() << "attribute 'activation_type' must be one of "
                               "relu, gelu, silu, swiglu, identity, got \""
                            << activation << "\"";
  int64_t fusion = op.getSwigluFusion();
  if (fusion < 0 || fusion > 2)
    return op.emitOpError() << "attribute 'swiglu_fusion' must be 0, 1 or 2, "
                               "got "
                            << fusion;
  Type inputType = op.getInput().getType(), resultType = op.getType();
  if (getElementTypeOrSelf(inputType) != getElementTypeOrSelf(resultType) ||
      failed(verifyCompatibleShape(inputType, resultType)))
    return op.emitOpError() << "result type " << resultType
                            << " does not match the input type " << inputType;
  return success();
}

} // namespace

LogicalResult MoEOp::verify() { return verifyMoe(*this, {}); }

LogicalResult QMoEOp::verify() {
  int64_t bits = getExpertWeightBits();
  if (bits != 4 && bits != 8)
    return emitOpError() << "attribute 'expert_weight_bits' must be 4 or 8, "
                            "got "
                         << bits;
  std::optional<uint64_t> blockSize = getBlockSize();
  if (blockSize) {
    int64_t b = static_cast<int64_t>(*blockSize);
    if (b < 16 || !llvm::isPowerOf2_64(b))
      return emitOpError() << "attribute 'block_size' must be a power of two "
                              ">= 16, got "
                           << b;
  }
  // Scales are (E, N), or (E, N, K / block_size) with block_size.
  int64_t scaleRank = blockSize ? 3 : 2;
  for (auto [name, value] :
       {std::pair<StringRef, Value>{"fc1_scales", getFc1Scales()},
        {"fc2_scales", getFc2Scales()},
        {"fc3_scales", getFc3Scales()}}) {
    int64_t rank = isNone(value) ? -1 : rankOf(value);
    if (rank >= 0 && rank != scaleRank)
      return emitOpError() << "operand '" << name << "' must have rank "
                           << scaleRank << (blockSize ? " with" : " without")
                           << " block_size, got rank " << rank;
  }
  return verifyMoe(*this, {{"fc1_scales", getFc1Scales()},
                           {"fc2_scales", getFc2Scales()},
                           {"fc3_scales", getFc3Scales()},
                           {"fc1_zero_points", getFc1ZeroPoints()},
                           {"fc2_zero_points", getFc2ZeroPoints()},
                           {"fc3_zero_points", getFc3ZeroPoints()}});
}
