//===- OnnxShapeInference.cpp - OnnxShapeInference of every op ------------===//
//
// Each op's inferShapes() computes what its operands say about its results
// and meets that with the declared result types (refineResultType). Where
// an operand breaks the op's own invariants, inference leaves the result
// alone and the verifier reports it; inference errors are kept for what
// only values reveal (a Reshape to the wrong element count, a zero Slice
// step) and for results that contradict their declared types.
//
//===----------------------------------------------------------------------===//

#include "OnnxDetail.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"

#include <cmath>

using namespace mlir;
using namespace mlir::onnx;
using namespace mlir::onnx::util;

//===----------------------------------------------------------------------===//
// Public helpers
//===----------------------------------------------------------------------===//

LogicalResult mlir::onnx::refineResultType(Operation *op, unsigned index,
                                           Type inferred) {
  OpResult result = op->getResult(index);
  Type declared = result.getType();
  auto inferredTensor = dyn_cast_if_present<TensorType>(inferred);
  if (declared == inferred || !inferredTensor || !isa<TensorType>(declared))
    return success();
  auto conflict = [&]() {
    return op->emitOpError()
           << "inferred type " << inferred << " for result #" << index
           << " conflicts with its declared type " << declared;
  };
  auto declaredRanked = dyn_cast<RankedTensorType>(declared);
  if (!declaredRanked) {
    result.setType(inferred);
    return success();
  }
  if (declaredRanked.getElementType() != inferredTensor.getElementType())
    return conflict();
  auto inferredRanked = dyn_cast<RankedTensorType>(inferred);
  if (!inferredRanked)
    return success();
  if (inferredRanked.getRank() != declaredRanked.getRank())
    return conflict();
  SmallVector<int64_t> shape;
  for (auto [a, b] :
       llvm::zip(declaredRanked.getShape(), inferredRanked.getShape())) {
    int64_t d;
    if (!meetDim(a, b, d))
      return conflict();
    shape.push_back(d);
  }
  auto refined = RankedTensorType::get(shape, declaredRanked.getElementType(),
                                       declaredRanked.getEncoding());
  if (refined != declared)
    result.setType(refined);
  return success();
}

namespace {

/// Whether `type` is an integer 0-D or 1-D tensor type.
bool isIntVectorType(Type type) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  return ranked && ranked.getRank() <= 1 &&
         isa<IntegerType>(ranked.getElementType());
}

/// Values of `v` when fully known (no kDyn entry).
std::optional<SmallVector<int64_t>> fullyKnown(Value v) {
  std::optional<SmallVector<int64_t>> values = getKnownIntValues(v);
  if (!values || llvm::any_of(*values, ShapedType::isDynamic))
    return std::nullopt;
  return values;
}

/// Clamped Slice bounds for a dimension of static size `dim`; the number
/// of elements taken.
int64_t sliceLength(int64_t start, int64_t end, int64_t step, int64_t dim) {
  if (dim == 0)
    return 0;
  if (start < 0)
    start += dim;
  if (end < 0)
    end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return end > start ? (end - start + step - 1) / step : 0;
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  return start > end ? (start - end - step - 1) / -step : 0;
}

std::optional<SmallVector<int64_t>> knownValues(Value value, int depth);

/// Applies `fn` element-wise to two known vectors of equal length or where
/// one has length 1.
std::optional<SmallVector<int64_t>>
combine(Operation *op, int depth,
        llvm::function_ref<std::optional<int64_t>(int64_t, int64_t)> fn) {
  auto a = knownValues(op->getOperand(0), depth + 1);
  auto b = knownValues(op->getOperand(1), depth + 1);
  if (!a || !b || (a->size() != b->size() && a->size() != 1 && b->size() != 1))
    return std::nullopt;
  size_t n = std::max(a->size(), b->size());
  SmallVector<int64_t> out;
  for (size_t i = 0; i < n; ++i) {
    int64_t x = (*a)[a->size() == 1 ? 0 : i];
    int64_t y = (*b)[b->size() == 1 ? 0 : i];
    std::optional<int64_t> r;
    if (!ShapedType::isDynamic(x) && !ShapedType::isDynamic(y))
      r = fn(x, y);
    out.push_back(r ? *r : kDyn);
  }
  return out;
}

std::optional<SmallVector<int64_t>> knownValues(Value value, int depth) {
  Type type = value.getType();
  if (!isIntVectorType(type) || depth > 32)
    return std::nullopt;
  auto ranked = cast<RankedTensorType>(type);
  std::optional<SmallVector<int64_t>> result;
  if (std::optional<ConstTensor> c = constantOf(value, 1 << 12))
    return c->ints;

  Operation *def = value.getDefiningOp();
  if (auto shape = dyn_cast_if_present<ShapeOp>(def)) {
    if (auto dims = shapeOf(shape.getData())) {
      int64_t r = static_cast<int64_t>(dims->size());
      auto clampBound = [&](int64_t b) {
        return std::clamp<int64_t>(b < 0 ? b + r : b, 0, r);
      };
      int64_t start = clampBound(shape.getStart());
      int64_t end = shape.getEnd() ? clampBound(*shape.getEnd()) : r;
      result.emplace();
      for (int64_t i = start; i < end; ++i)
        result->push_back((*dims)[i]);
    }
  } else if (auto size = dyn_cast_if_present<SizeOp>(def)) {
    if (auto dims = shapeOf(size.getData()))
      result = SmallVector<int64_t>{product(*dims)};
  } else if (auto gather = dyn_cast_if_present<GatherOp>(def)) {
    auto data = knownValues(gather.getData(), depth + 1);
    auto indices = constantOf(gather.getIndices());
    if (data && indices && rankOf(gather.getData()) == 1 &&
        rankOf(gather.getIndices()) <= 1) {
      int64_t n = static_cast<int64_t>(data->size());
      result.emplace();
      for (int64_t index : indices->ints) {
        if (index < -n || index >= n)
          return std::nullopt;
        result->push_back((*data)[index < 0 ? index + n : index]);
      }
    }
  } else if (auto slice = dyn_cast_if_present<SliceOp>(def)) {
    auto data = knownValues(slice.getData(), depth + 1);
    auto starts = constantOf(slice.getStarts());
    auto ends = constantOf(slice.getEnds());
    auto steps = constantOf(slice.getSteps());
    if (data && starts && ends && starts->size() == 1 && ends->size() == 1 &&
        (isNone(slice.getSteps()) || (steps && steps->size() == 1)) &&
        rankOf(slice.getData()) == 1) {
      int64_t step = steps ? steps->ints[0] : 1;
      int64_t n = static_cast<int64_t>(data->size());
      if (step == 0)
        return std::nullopt;
      int64_t start = starts->ints[0], end = ends->ints[0];
      int64_t count = sliceLength(start, end, step, n);
      start = start < 0 ? start + n : start;
      start = step > 0 ? std::clamp<int64_t>(start, 0, n)
                       : std::clamp<int64_t>(start, 0, n - 1);
      result.emplace();
      for (int64_t i = 0; i < count; ++i)
        result->push_back((*data)[start + i * step]);
    }
  } else if (auto concat = dyn_cast_if_present<ConcatOp>(def)) {
    result.emplace();
    for (Value input : concat.getInputs()) {
      auto part = knownValues(input, depth + 1);
      if (!part)
        return std::nullopt;
      result->append(*part);
    }
  } else if (isa_and_present<UnsqueezeOp, SqueezeOp, ReshapeOp, IdentityOp,
                             CastOp>(def)) {
    result = knownValues(def->getOperand(0), depth + 1);
  } else if (isa_and_present<AddOp>(def)) {
    result = combine(def, depth, [](int64_t x, int64_t y) { return x + y; });
  } else if (isa_and_present<SubOp>(def)) {
    result = combine(def, depth, [](int64_t x, int64_t y) { return x - y; });
  } else if (isa_and_present<MulOp>(def)) {
    result = combine(def, depth, [](int64_t x, int64_t y) { return x * y; });
  } else if (isa_and_present<DivOp>(def)) {
    result =
        combine(def, depth, [](int64_t x, int64_t y) -> std::optional<int64_t> {
          if (y == 0)
            return std::nullopt;
          return x / y;
        });
  }
  int64_t expected = ranked.getRank() == 0 ? 1 : ranked.getDimSize(0);
  if (result && (ShapedType::isDynamic(expected) ||
                 static_cast<int64_t>(result->size()) == expected))
    return result;
  if (ShapedType::isDynamic(expected))
    return std::nullopt;
  return SmallVector<int64_t>(expected, kDyn);
}

} // namespace

std::optional<SmallVector<int64_t>> mlir::onnx::getKnownIntValues(Value value) {
  return knownValues(value, 0);
}

//===----------------------------------------------------------------------===//
// Class bodies
//===----------------------------------------------------------------------===//

namespace {

LogicalResult refineRanked(Operation *op, unsigned index,
                           ArrayRef<int64_t> shape, Type element) {
  if (!element)
    return success();
  return refineResultType(op, index, RankedTensorType::get(shape, element));
}

LogicalResult refineUnranked(Operation *op, unsigned index, Type element) {
  if (!element)
    return success();
  return refineResultType(op, index, UnrankedTensorType::get(element));
}

/// Gives every result at least `element` (over the importer's placeholder)
/// before the shape is worked out, so a result whose shape cannot be
/// inferred still gets its element type.
LogicalResult seedElementType(Operation *op, Type element) {
  for (unsigned i = 0, e = op->getNumResults(); i < e; ++i)
    if (failed(refineUnranked(op, i, element)))
      return failure();
  return success();
}

Type i64Type(Operation *op) { return IntegerType::get(op->getContext(), 64); }

/// The sizes of a ranked tensor, kDyn where dynamic.
using Dims = SmallVector<int64_t>;

/// The start most inferences share. Every result first takes `element`
/// (see seedElementType); then, once `shaped` has a rank, `body` works out
/// the results from its sizes, which it may change in place. While `shaped`
/// is unranked there is nothing more to infer.
LogicalResult inferFromShape(Operation *op, Type element, Value shaped,
                             function_ref<LogicalResult(Dims &)> body) {
  if (failed(seedElementType(op, element)))
    return failure();
  std::optional<Dims> dims = shapeOf(shaped);
  if (!dims)
    return refineUnranked(op, 0, element);
  return body(*dims);
}

/// inferFromShape for results that need the shapes of two operands.
LogicalResult
inferFromShapes(Operation *op, Type element, Value lhs, Value rhs,
                function_ref<LogicalResult(Dims &, Dims &)> body) {
  auto fromShape = [&](Dims &lhsDims) -> LogicalResult {
    std::optional<Dims> rhsDims = shapeOf(rhs);
    if (!rhsDims)
      return refineUnranked(op, 0, element);
    return body(lhsDims, *rhsDims);
  };
  return inferFromShape(op, element, lhs, fromShape);
}

/// Normalises an attribute axis, or nullopt when out of range (the
/// verifier reports it).
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

} // namespace

LogicalResult util::inferSameAsOperand(Operation *op, unsigned operand) {
  return refineResultType(op, 0, op->getOperand(operand).getType());
}

LogicalResult util::inferBroadcast(Operation *op, int elementFrom) {
  if (op->getNumOperands() == 0)
    return success();
  Type element = elementFrom < 0 ? IntegerType::get(op->getContext(), 1)
                                 : elementTypeOf(op->getOperand(elementFrom));
  if (!element)
    return success();
  if (failed(seedElementType(op, element)))
    return failure();
  SmallVector<int64_t> shape;
  for (Value operand : op->getOperands()) {
    std::optional<SmallVector<int64_t>> s = shapeOf(operand);
    if (!s)
      return refineUnranked(op, 0, element);
    if (!broadcastShapes(shape, *s, shape))
      return success();
  }
  return refineRanked(op, 0, shape, element);
}

LogicalResult util::inferReduce(Operation *op, bool keepdims,
                                bool noopWithEmptyAxes) {
  Value data = op->getOperand(0), axesValue = op->getOperand(1);
  Type element = elementTypeOf(data);
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    int64_t rank = static_cast<int64_t>(dims.size());
    std::optional<SmallVector<int64_t>> axes;
    if (isNone(axesValue))
      axes.emplace();
    else
      axes = getKnownIntValues(axesValue);
    if (!axes)
      return success();
    if (axes->empty()) {
      if (noopWithEmptyAxes)
        return refineRanked(op, 0, dims, element);
      for (int64_t i = 0; i < rank; ++i)
        axes->push_back(i);
    }
    if (llvm::any_of(*axes, ShapedType::isDynamic)) {
      // Which axes go is unknown: only the rank is.
      int64_t outRank =
          keepdims ? rank : rank - static_cast<int64_t>(axes->size());
      if (outRank < 0)
        return success();
      return refineRanked(op, 0, SmallVector<int64_t>(outRank, kDyn), element);
    }
    FailureOr<SmallVector<int64_t>> normalized =
        normalizeAxes(op, "axes", *axes, rank);
    if (failed(normalized))
      return failure();
    SmallVector<int64_t> out;
    for (int64_t i = 0; i < rank; ++i) {
      if (!llvm::is_contained(*normalized, i))
        out.push_back(dims[i]);
      else if (keepdims)
        out.push_back(1);
    }
    return refineRanked(op, 0, out, element);
  };
  return inferFromShape(op, element, data, fromShape);
}

LogicalResult util::inferArgReduce(Operation *op, int64_t axis, bool keepdims) {
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    std::optional<int64_t> a = normalizeAxis(axis, dims.size());
    if (!a)
      return success();
    if (keepdims)
      dims[*a] = 1;
    else
      dims.erase(dims.begin() + *a);
    return refineRanked(op, 0, dims, i64Type(op));
  };
  return inferFromShape(op, i64Type(op), op->getOperand(0), fromShape);
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

LogicalResult MatMulOp::inferShapes() {
  Type element = elementTypeOf(getA());
  auto fromShapes = [&](Dims &a, Dims &b) -> LogicalResult {
    if (a.empty() || b.empty())
      return success();
    bool vecA = a.size() == 1, vecB = b.size() == 1;
    if (vecA)
      a.insert(a.begin(), 1);
    if (vecB)
      b.push_back(1);
    SmallVector<int64_t> batch;
    if (!broadcastShapes(ArrayRef(a).drop_back(2), ArrayRef(b).drop_back(2),
                         batch))
      return success();
    if (!vecA)
      batch.push_back(a[a.size() - 2]);
    if (!vecB)
      batch.push_back(b.back());
    return refineRanked(*this, 0, batch, element);
  };
  return inferFromShapes(*this, element, getA(), getB(), fromShapes);
}

LogicalResult GemmOp::inferShapes() {
  auto a = shapeOf(getA()), b = shapeOf(getB());
  int64_t m = kDyn, n = kDyn;
  if (a && a->size() == 2)
    m = (*a)[getTransA() ? 1 : 0];
  if (b && b->size() == 2)
    n = (*b)[getTransB() ? 0 : 1];
  return refineRanked(*this, 0, {m, n}, elementTypeOf(getA()));
}

LogicalResult EinsumOp::inferShapes() {
  if (getInputs().empty())
    return success();
  Type element = elementTypeOf(getInputs().front());
  if (failed(seedElementType(*this, element)))
    return failure();
  FailureOr<EinsumSpec> spec = parseEinsum(*this, getEquation());
  if (failed(spec) || spec->inputs.size() != getInputs().size())
    return success();
  llvm::StringMap<int64_t> sizes;
  SmallVector<int64_t> broadcast;
  for (auto [term, input] : llvm::zip(spec->inputs, getInputs())) {
    std::optional<SmallVector<int64_t>> dims = shapeOf(input);
    if (!dims)
      return refineUnranked(*this, 0, element);
    int64_t labels = static_cast<int64_t>(term.labels.size());
    int64_t extra = static_cast<int64_t>(dims->size()) - labels;
    if ((term.ellipsis < 0 && extra != 0) || extra < 0)
      return success();
    int64_t at = term.ellipsis < 0 ? labels : term.ellipsis;
    for (int64_t i = 0; i < labels; ++i) {
      int64_t d = (*dims)[i < at ? i : i + extra];
      auto [it, inserted] = sizes.try_emplace(StringRef(&term.labels[i], 1), d);
      if (!inserted && !meetDim(it->second, d, it->second))
        return success();
    }
    ArrayRef<int64_t> ellipsisDims = ArrayRef(*dims).slice(at, extra);
    if (!broadcastShapes(broadcast, ellipsisDims, broadcast))
      return success();
  }
  SmallVector<int64_t> out;
  const EinsumTerm &output = spec->output;
  for (int64_t i = 0, e = output.labels.size(); i <= e; ++i) {
    if (i == output.ellipsis)
      out.append(broadcast);
    if (i < e)
      out.push_back(sizes.lookup(StringRef(&output.labels[i], 1)));
  }
  return refineRanked(*this, 0, out, element);
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::inferShapes() {
  Type element = elementTypeOf(getData());
  if (failed(seedElementType(*this, element)))
    return failure();
  std::optional<SmallVector<int64_t>> target = getKnownIntValues(getShape());
  if (!target)
    return refineUnranked(*this, 0, element);
  std::optional<SmallVector<int64_t>> dims = shapeOf(getData());
  bool allowZero = getAllowzero() != 0;
  int64_t inferIndex = -1;
  SmallVector<int64_t> out;
  for (auto [i, v] : llvm::enumerate(*target)) {
    int64_t index = static_cast<int64_t>(i);
    if (ShapedType::isDynamic(v)) {
      out.push_back(kDyn);
    } else if (v == -1) {
      if (inferIndex >= 0)
        return emitOpError() << "operand 'shape' has more than one -1: "
                             << shapeString(*target);
      inferIndex = index;
      out.push_back(kDyn);
    } else if (v < -1) {
      return emitOpError() << "operand 'shape' has invalid entry " << v
                           << " at index " << index;
    } else if (v == 0 && !allowZero) {
      if (dims && index >= static_cast<int64_t>(dims->size()))
        return emitOpError()
               << "operand 'shape' copies dimension " << index
               << " with 0 but the input has rank " << dims->size();
      out.push_back(dims ? (*dims)[index] : kDyn);
    } else {
      out.push_back(v);
    }
  }
  if (allowZero && inferIndex >= 0 && llvm::is_contained(*target, 0))
    return emitOpError() << "operand 'shape' has both 0 and -1 with "
                            "allowzero = 1";
  int64_t total = dims ? product(*dims) : kDyn;
  auto mismatch = [&]() {
    SmallVector<int64_t> shown(out);
    if (inferIndex >= 0)
      shown[inferIndex] = -1;
    return emitOpError() << "cannot reshape " << shapeString(*dims) << " ("
                         << total << " elements) into " << shapeString(shown);
  };
  if (inferIndex >= 0) {
    SmallVector<int64_t> others(out);
    others.erase(others.begin() + inferIndex);
    int64_t known = product(others);
    if (!ShapedType::isDynamic(total) && !ShapedType::isDynamic(known)) {
      if (known == 0 ? total != 0 : total % known != 0)
        return mismatch();
      // -1 next to a 0 size: ONNX leaves it as 0.
      out[inferIndex] = known == 0 ? 0 : total / known;
    }
  } else {
    int64_t n = product(out);
    if (!ShapedType::isDynamic(total) && !ShapedType::isDynamic(n) &&
        n != total)
      return mismatch();
  }
  return refineRanked(*this, 0, out, element);
}

LogicalResult TransposeOp::inferShapes() {
  Type element = elementTypeOf(getData());
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    int64_t rank = static_cast<int64_t>(dims.size());
    SmallVector<int64_t> perm;
    if (std::optional<ArrayRef<int64_t>> attr = getPerm())
      perm.assign(attr->begin(), attr->end());
    else
      for (int64_t i = rank - 1; i >= 0; --i)
        perm.push_back(i);
    if (static_cast<int64_t>(perm.size()) != rank ||
        llvm::any_of(perm, [&](int64_t p) { return p < 0 || p >= rank; }))
      return success();
    SmallVector<int64_t> out;
    for (int64_t p : perm)
      out.push_back(dims[p]);
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShape(*this, element, getData(), fromShape);
}

LogicalResult SqueezeOp::inferShapes() {
  Type element = elementTypeOf(getData());
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    int64_t rank = static_cast<int64_t>(dims.size());
    SmallVector<int64_t> out;
    if (isNone(getAxes())) {
      if (llvm::any_of(dims, ShapedType::isDynamic))
        return success();
      for (int64_t d : dims)
        if (d != 1)
          out.push_back(d);
      return refineRanked(*this, 0, out, element);
    }
    std::optional<SmallVector<int64_t>> axes = getKnownIntValues(getAxes());
    if (!axes)
      return success();
    if (llvm::any_of(*axes, ShapedType::isDynamic)) {
      int64_t outRank = rank - static_cast<int64_t>(axes->size());
      if (outRank < 0)
        return success();
      return refineRanked(*this, 0, SmallVector<int64_t>(outRank, kDyn),
                          element);
    }
    FailureOr<SmallVector<int64_t>> normalized =
        normalizeAxes(*this, "axes", *axes, rank);
    if (failed(normalized))
      return failure();
    for (int64_t i = 0; i < rank; ++i) {
      int64_t d = dims[i];
      if (!llvm::is_contained(*normalized, i))
        out.push_back(d);
      else if (!ShapedType::isDynamic(d) && d != 1)
        return emitOpError() << "cannot squeeze dimension " << i << " of size "
                             << d << " (input " << shapeString(dims) << ")";
    }
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShape(*this, element, getData(), fromShape);
}

LogicalResult UnsqueezeOp::inferShapes() {
  Type element = elementTypeOf(getData());
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    std::optional<Dims> axes = getKnownIntValues(getAxes());
    if (!axes)
      return refineUnranked(*this, 0, element);
    int64_t outRank =
        static_cast<int64_t>(dims.size()) + static_cast<int64_t>(axes->size());
    if (llvm::any_of(*axes, ShapedType::isDynamic))
      return refineRanked(*this, 0, SmallVector<int64_t>(outRank, kDyn),
                          element);
    FailureOr<SmallVector<int64_t>> normalized =
        normalizeAxes(*this, "axes", *axes, outRank);
    if (failed(normalized))
      return failure();
    SmallVector<int64_t> out;
    auto next = dims.begin();
    for (int64_t i = 0; i < outRank; ++i)
      out.push_back(llvm::is_contained(*normalized, i) ? 1 : *next++);
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShape(*this, element, getData(), fromShape);
}

LogicalResult FlattenOp::inferShapes() {
  Type element = elementTypeOf(getInput());
  if (failed(seedElementType(*this, element)))
    return failure();
  std::optional<SmallVector<int64_t>> dims = shapeOf(getInput());
  int64_t rank = dims ? static_cast<int64_t>(dims->size()) : -1;
  int64_t axis = getAxis();
  if (!dims || axis < -rank || axis > rank)
    return refineRanked(*this, 0, {kDyn, kDyn}, element);
  if (axis < 0)
    axis += rank;
  ArrayRef<int64_t> all(*dims);
  return refineRanked(
      *this, 0, {product(all.take_front(axis)), product(all.drop_front(axis))},
      element);
}

LogicalResult ConcatOp::inferShapes() {
  if (getInputs().empty())
    return success();
  Type element = elementTypeOf(getInputs().front());
  if (failed(seedElementType(*this, element)))
    return failure();
  std::optional<SmallVector<int64_t>> out;
  std::optional<int64_t> axis;
  int64_t sum = 0;
  for (Value input : getInputs()) {
    std::optional<SmallVector<int64_t>> dims = shapeOf(input);
    if (!dims) {
      sum = kDyn;
      continue;
    }
    if (!out) {
      out = dims;
      axis = normalizeAxis(getAxis(), dims->size());
      if (!axis)
        return success();
    } else if (dims->size() != out->size()) {
      return success();
    }
    for (size_t d = 0; d < dims->size(); ++d)
      if (static_cast<int64_t>(d) != *axis &&
          !meetDim((*out)[d], (*dims)[d], (*out)[d]))
        return success();
    int64_t size = (*dims)[*axis];
    sum = ShapedType::isDynamic(sum) || ShapedType::isDynamic(size)
              ? kDyn
              : sum + size;
  }
  if (!out)
    return refineUnranked(*this, 0, element);
  (*out)[*axis] = sum;
  return refineRanked(*this, 0, *out, element);
}

LogicalResult SplitOp::inferShapes() {
  Type element = elementTypeOf(getInput());
  int64_t parts = getNumResults();
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    std::optional<int64_t> axis = normalizeAxis(getAxis(), dims.size());
    if (!axis || parts == 0)
      return success();
    int64_t dim = dims[*axis];
    SmallVector<int64_t> sizes;
    if (!isNone(getSplit())) {
      std::optional<SmallVector<int64_t>> split = getKnownIntValues(getSplit());
      if (!split || static_cast<int64_t>(split->size()) != parts)
        return success();
      sizes = *split;
      int64_t sum = 0;
      for (int64_t s : sizes) {
        if (ShapedType::isDynamic(s))
          continue;
        if (s < 0)
          return emitOpError() << "operand 'split' has a negative entry " << s;
        sum += s;
      }
      if (!llvm::any_of(sizes, ShapedType::isDynamic) &&
          !ShapedType::isDynamic(dim) && sum != dim)
        return emitOpError()
               << "split sizes sum to " << sum << " but dimension " << *axis
               << " has size " << dim;
    } else if (ShapedType::isDynamic(dim)) {
      sizes.assign(parts, kDyn);
    } else {
      // num_outputs: equal parts, the last one smaller when uneven.
      int64_t chunk = (dim + parts - 1) / parts;
      for (int64_t i = 0; i < parts; ++i)
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    }
    for (int64_t i = 0; i < parts; ++i) {
      SmallVector<int64_t> out(dims);
      out[*axis] = sizes[i];
      if (failed(refineRanked(*this, i, out, element)))
        return failure();
    }
    return success();
  };
  return inferFromShape(*this, element, getInput(), fromShape);
}

LogicalResult SliceOp::inferShapes() {
  Type element = elementTypeOf(getData());
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    int64_t rank = static_cast<int64_t>(dims.size());
    auto starts = getKnownIntValues(getStarts());
    auto ends = getKnownIntValues(getEnds());
    std::optional<SmallVector<int64_t>> axes, steps;
    size_t n = starts ? starts->size() : ends ? ends->size() : 0;
    if (isNone(getAxes())) {
      if (starts || ends)
        axes = llvm::to_vector(llvm::seq<int64_t>(0, n));
    } else {
      axes = getKnownIntValues(getAxes());
    }
    if (!isNone(getSteps()))
      steps = getKnownIntValues(getSteps());
    else if (axes)
      steps = SmallVector<int64_t>(axes->size(), 1);
    SmallVector<int64_t> out(dims);
    if (!axes || llvm::any_of(*axes, ShapedType::isDynamic)) {
      // Which axes are sliced is unknown.
      return refineRanked(*this, 0, SmallVector<int64_t>(rank, kDyn), element);
    }
    FailureOr<SmallVector<int64_t>> normalized =
        normalizeAxes(*this, "axes", *axes, rank);
    if (failed(normalized))
      return failure();
    size_t count = normalized->size();
    if ((starts && starts->size() != count) ||
        (ends && ends->size() != count) || (steps && steps->size() != count))
      return success();
    for (size_t k = 0; k < count; ++k) {
      int64_t axis = (*normalized)[k];
      int64_t step = steps ? (*steps)[k] : kDyn;
      if (step == 0)
        return emitOpError()
               << "operand 'steps' has a zero entry (axis " << axis << ")";
      int64_t start = starts ? (*starts)[k] : kDyn;
      int64_t end = ends ? (*ends)[k] : kDyn;
      int64_t dim = dims[axis];
      if (ShapedType::isDynamic(step) || ShapedType::isDynamic(start) ||
          ShapedType::isDynamic(end) || ShapedType::isDynamic(dim))
        out[axis] = kDyn;
      else
        out[axis] = sliceLength(start, end, step, dim);
    }
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShape(*this, element, getData(), fromShape);
}

LogicalResult ExpandOp::inferShapes() {
  Type element = elementTypeOf(getInput());
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    std::optional<Dims> target = getKnownIntValues(getShape());
    if (!target)
      return refineUnranked(*this, 0, element);
    size_t rank = std::max(dims.size(), target->size());
    SmallVector<int64_t> out(rank);
    for (size_t i = 0; i < rank; ++i) {
      int64_t x = i < rank - dims.size() ? 1 : dims[i - (rank - dims.size())];
      int64_t s = i < rank - target->size()
                      ? 1
                      : (*target)[i - (rank - target->size())];
      if (ShapedType::isDynamic(s)) {
        // An unknown target size is 1 or equal to a static input size > 1.
        out[i] = !ShapedType::isDynamic(x) && x != 1 ? x : kDyn;
        continue;
      }
      if (s < 0)
        return emitOpError() << "operand 'shape' has a negative entry " << s;
      if (s == 1)
        out[i] = x;
      else if (x == 1 || ShapedType::isDynamic(x) || x == s)
        out[i] = s;
      else
        return emitOpError() << "cannot expand " << shapeString(dims)
                             << " to shape " << shapeString(*target);
    }
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShape(*this, element, getInput(), fromShape);
}

LogicalResult TileOp::inferShapes() {
  Type element = elementTypeOf(getInput());
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    std::optional<Dims> repeats = getKnownIntValues(getRepeats());
    if (!repeats || repeats->size() != dims.size())
      return refineRanked(*this, 0, SmallVector<int64_t>(dims.size(), kDyn),
                          element);
    SmallVector<int64_t> out;
    for (auto [d, r] : llvm::zip(dims, *repeats)) {
      if (!ShapedType::isDynamic(r) && r < 0)
        return emitOpError() << "operand 'repeats' has a negative entry " << r;
      out.push_back(
          ShapedType::isDynamic(d) || ShapedType::isDynamic(r) ? kDyn : d * r);
    }
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShape(*this, element, getInput(), fromShape);
}

LogicalResult ShapeOp::inferShapes() {
  int64_t rank = rankOf(getData());
  if (rank < 0)
    return refineRanked(*this, 0, {kDyn}, i64Type(*this));
  auto clampBound = [&](int64_t b) {
    return std::clamp<int64_t>(b < 0 ? b + rank : b, 0, rank);
  };
  int64_t start = clampBound(getStart());
  int64_t end = getEnd() ? clampBound(*getEnd()) : rank;
  return refineRanked(*this, 0, {std::max<int64_t>(end - start, 0)},
                      i64Type(*this));
}

LogicalResult SizeOp::inferShapes() {
  return refineRanked(*this, 0, {}, i64Type(*this));
}

//===----------------------------------------------------------------------===//
// Indexing
//===----------------------------------------------------------------------===//

LogicalResult GatherOp::inferShapes() {
  Type element = elementTypeOf(getData());
  auto fromShapes = [&](Dims &dims, Dims &indices) -> LogicalResult {
    std::optional<int64_t> axis = normalizeAxis(getAxis(), dims.size());
    if (!axis)
      return success();
    SmallVector<int64_t> out(dims.begin(), dims.begin() + *axis);
    out.append(indices);
    out.append(dims.begin() + *axis + 1, dims.end());
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShapes(*this, element, getData(), getIndices(), fromShapes);
}

LogicalResult GatherElementsOp::inferShapes() {
  Type element = elementTypeOf(getData());
  return inferFromShape(*this, element, getIndices(), [&](Dims &indices) {
    return refineRanked(*this, 0, indices, element);
  });
}

LogicalResult GatherNDOp::inferShapes() {
  Type element = elementTypeOf(getData());
  auto fromShapes = [&](Dims &dims, Dims &indices) -> LogicalResult {
    if (indices.empty() || ShapedType::isDynamic(indices.back()))
      return refineUnranked(*this, 0, element);
    int64_t used = getBatchDims() + indices.back();
    if (used > static_cast<int64_t>(dims.size()) || used < 0)
      return success();
    SmallVector<int64_t> out(indices.begin(), indices.end() - 1);
    out.append(dims.begin() + used, dims.end());
    return refineRanked(*this, 0, out, element);
  };
  return inferFromShapes(*this, element, getData(), getIndices(), fromShapes);
}

LogicalResult ScatterElementsOp::inferShapes() {
  return inferSameAsOperand(*this, 0);
}

LogicalResult ScatterNDOp::inferShapes() {
  return inferSameAsOperand(*this, 0);
}

LogicalResult TopKOp::inferShapes() {
  Type element = elementTypeOf(getX());
  if (failed(refineUnranked(*this, 0, element)) ||
      failed(refineUnranked(*this, 1, i64Type(*this))))
    return failure();
  std::optional<SmallVector<int64_t>> dims = shapeOf(getX());
  if (!dims)
    return success();
  std::optional<int64_t> axis = normalizeAxis(getAxis(), dims->size());
  if (!axis)
    return success();
  int64_t k = kDyn;
  std::optional<SmallVector<int64_t>> kValues = getKnownIntValues(getK());
  if (kValues && kValues->size() == 1)
    k = kValues->front();
  int64_t dim = (*dims)[*axis];
  if (!ShapedType::isDynamic(k)) {
    if (k < 0)
      return emitOpError() << "K = " << k << " is negative";
    if (!ShapedType::isDynamic(dim) && k > dim)
      return emitOpError() << "K = " << k << " exceeds the size " << dim
                           << " of axis " << *axis;
  }
  (*dims)[*axis] = k;
  if (failed(refineRanked(*this, 0, *dims, element)))
    return failure();
  return refineRanked(*this, 1, *dims, i64Type(*this));
}

LogicalResult OneHotOp::inferShapes() {
  Type element = elementTypeOf(getValues());
  auto fromShape = [&](Dims &dims) -> LogicalResult {
    int64_t rank = static_cast<int64_t>(dims.size()) + 1;
    std::optional<int64_t> axis = normalizeAxis(getAxis(), rank);
    if (!axis)
      return success();
    int64_t depth = kDyn;
    if (std::optional<ConstTensor> c = constantOf(getDepth());
        c && c->size() == 1)
      depth = c->isFloat() ? static_cast<int64_t>(c->floats[0]) : c->ints[0];
    else if (auto known = getKnownIntValues(getDepth());
             known && known->size() == 1)
      depth = known->front();
    if (!ShapedType::isDynamic(depth) && depth < 1)
      return emitOpError() << "depth = " << depth << " must be positive";
    dims.insert(dims.begin() + *axis, depth);
    return refineRanked(*this, 0, dims, element);
  };
  return inferFromShape(*this, element, getIndices(), fromShape);
}

LogicalResult NonZeroOp::inferShapes() {
  int64_t rank = rankOf(getX());
  return refineRanked(*this, 0, {rank < 0 ? kDyn : rank, kDyn}, i64Type(*this));
}

//===----------------------------------------------------------------------===//
// Normalisation, constants, types, ranges
//===----------------------------------------------------------------------===//

LogicalResult LayerNormalizationOp::inferShapes() {
  Type element = elementTypeOf(getX());
  Type stash = getElementTypeForDataType(getContext(), getStashType());
  if (!stash || !isa<FloatType>(stash))
    stash = element;
  if (failed(refineResultType(*this, 0, getX().getType())) ||
      failed(refineUnranked(*this, 1, stash)) ||
      failed(refineUnranked(*this, 2, stash)))
    return failure();
  std::optional<SmallVector<int64_t>> dims = shapeOf(getX());
  if (!dims)
    return success();
  std::optional<int64_t> axis = normalizeAxis(getAxis(), dims->size());
  if (!axis)
    return success();
  for (size_t i = *axis; i < dims->size(); ++i)
    (*dims)[i] = 1;
  if (failed(refineRanked(*this, 1, *dims, stash)))
    return failure();
  return refineRanked(*this, 2, *dims, stash);
}

LogicalResult ConstantOp::inferShapes() {
  if (ElementsAttr value = getTensor())
    return refineResultType(*this, 0, value.getType());
  return success();
}

LogicalResult ConstantOfShapeOp::inferShapes() {
  Type element = getValue() ? getValue()->getElementType()
                            : Float32Type::get(getContext());
  std::optional<SmallVector<int64_t>> shape = getKnownIntValues(getInput());
  if (!shape)
    return refineUnranked(*this, 0, element);
  for (int64_t d : *shape)
    if (!ShapedType::isDynamic(d) && d < 0)
      return emitOpError() << "operand 'input' has a negative entry " << d;
  return refineRanked(*this, 0, *shape, element);
}

LogicalResult CastOp::inferShapes() {
  Type element = getElementTypeForDataType(getContext(), getTo());
  if (!element)
    return success();
  if (auto ranked = dyn_cast<RankedTensorType>(getInput().getType()))
    return refineRanked(*this, 0, ranked.getShape(), element);
  return refineUnranked(*this, 0, element);
}

LogicalResult CastLikeOp::inferShapes() {
  Type element = elementTypeOf(getTargetType());
  if (failed(seedElementType(*this, element)))
    return failure();
  if (auto ranked = dyn_cast<RankedTensorType>(getInput().getType()))
    return refineRanked(*this, 0, ranked.getShape(), element);
  return refineUnranked(*this, 0, element);
}

LogicalResult RangeOp::inferShapes() {
  Type element = elementTypeOf(getStart());
  if (failed(seedElementType(*this, element)))
    return failure();
  auto start = constantOf(getStart()), limit = constantOf(getLimit()),
       delta = constantOf(getDelta());
  if (!start || !limit || !delta || start->size() != 1 || limit->size() != 1 ||
      delta->size() != 1 || start->isFloat() != limit->isFloat() ||
      start->isFloat() != delta->isFloat())
    return refineRanked(*this, 0, {kDyn}, element);
  int64_t n;
  if (start->isFloat()) {
    if (delta->floats[0] == 0)
      return emitOpError() << "operand 'delta' is zero";
    n = static_cast<int64_t>(std::max(
        std::ceil((limit->floats[0] - start->floats[0]) / delta->floats[0]),
        0.0));
  } else {
    int64_t s = start->ints[0], l = limit->ints[0], d = delta->ints[0];
    if (d == 0)
      return emitOpError() << "operand 'delta' is zero";
    int64_t span = l - s;
    n = span / d + ((span % d != 0) && ((span < 0) == (d < 0)) ? 1 : 0);
    n = std::max<int64_t>(n, 0);
  }
  return refineRanked(*this, 0, {n}, element);
}

LogicalResult NoneOp::inferShapes() { return success(); }
