//===- Shape.cpp - Shape and data-movement onnx ops to tensor/linalg ------===//
//
// Constants, shape computations (Shape, Size, ConstantOfShape, Range) and
// data movement (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
// Split, Slice, Expand, Tile). Sizes that only values reveal are read at
// run time (tensor.extract + index_cast) and folded when constant.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "llvm/ADT/TypeSwitch.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"

using namespace mlir;
using namespace mlir::moe::onnx_lowering;

namespace {

/// The size of result dimension `d`: its static size, else `dynamic()`.
OpFoldResult sizeOr(OpBuilder &b, RankedTensorType type, int64_t d,
                    function_ref<OpFoldResult()> dynamic) {
  if (!type.isDynamicDim(d))
    return b.getIndexAttr(type.getDimSize(d));
  return dynamic();
}

/// The product of `sizes` as an index value.
Value productOf(Emitter &e, ArrayRef<OpFoldResult> sizes) {
  Value p = e.index(1);
  for (OpFoldResult s : sizes)
    p = e.mul(p, getValueOrCreateConstantIndexOp(e.b, e.loc, s));
  return p;
}

/// A scalar arith constant holding the single element of `attr`.
Value scalarFromAttr(Emitter &e, ElementsAttr attr) {
  Type type = attr.getElementType();
  Attribute first = *attr.getValues<Attribute>().begin();
  if (auto f = dyn_cast<FloatAttr>(first))
    return arith::ConstantOp::create(e.b, e.loc, f);
  auto i = cast<IntegerAttr>(first);
  return arith::ConstantOp::create(
      e.b, e.loc, e.b.getIntegerAttr(signlessType(type), i.getValue()));
}

Lowered lowerConstant(OpBuilder &b, onnx::ConstantOp op) {
  ElementsAttr value = op.getTensor();
  if (!value)
    return nodeError(op) << "has no value";
  return Values{arith::ConstantOp::create(b, op.getLoc(), value)};
}

Lowered lowerConstantOfShape(OpBuilder &b, onnx::ConstantOfShapeOp op) {
  Emitter e(b, op.getLoc());
  RankedTensorType type = rankedType(op.getOutput());
  Value fill;
  if (std::optional<ElementsAttr> value = op.getValue()) {
    if (value->getNumElements() != 1)
      return nodeError(op) << "value must have one element";
    fill = scalarFromAttr(e, *value);
  } else {
    fill = e.scalar(type.getElementType(), 0);
  }
  SmallVector<OpFoldResult> sizes;
  for (int64_t d = 0; d < type.getRank(); ++d)
    sizes.push_back(sizeOr(b, type, d, [&]() -> OpFoldResult {
      return e.extractIndex(op.getInput(), d);
    }));
  return Values{e.filled(sizes, type.getElementType(), fill)};
}

Lowered lowerShape(OpBuilder &b, onnx::ShapeOp op) {
  Emitter e(b, op.getLoc());
  int64_t rank = rankOf(op.getData());
  auto clampBound = [&](int64_t bound) {
    return std::clamp<int64_t>(bound < 0 ? bound + rank : bound, 0, rank);
  };
  int64_t start = clampBound(op.getStart());
  int64_t end = op.getEnd() ? clampBound(*op.getEnd()) : rank;
  SmallVector<OpFoldResult> sizes = e.sizes(op.getData()), picked;
  for (int64_t d = start; d < end; ++d)
    picked.push_back(sizes[d]);
  return Values{e.i64Vector(picked)};
}

Lowered lowerSize(OpBuilder &b, onnx::SizeOp op) {
  Emitter e(b, op.getLoc());
  Value n = e.fromIndex(productOf(e, e.sizes(op.getData())), b.getI64Type());
  auto type = RankedTensorType::get({}, b.getI64Type());
  return Values{tensor::FromElementsOp::create(b, op.getLoc(), type, n)};
}

Lowered lowerReshape(OpBuilder &b, onnx::ReshapeOp op) {
  Emitter e(b, op.getLoc());
  RankedTensorType type = rankedType(op.getReshaped());
  Value data = op.getData();
  int64_t inRank = rankOf(data);
  bool allowZero = op.getAllowzero() != 0;
  SmallVector<OpFoldResult> sizes;
  std::optional<SmallVector<int64_t>> known = knownInts(op.getShape());
  if (!type.hasStaticShape() && known) {
    // Shape values known at compile time: 0 copies a size, -1 takes the
    // rest.
    Value total = productOf(e, e.sizes(data));
    Value others = e.index(1);
    for (auto [i, v] : llvm::enumerate(*known)) {
      if (v == -1)
        continue;
      bool copy = v == 0 && !allowZero && static_cast<int64_t>(i) < inRank;
      sizes.push_back(copy ? OpFoldResult(e.dim(data, i))
                           : OpFoldResult(b.getIndexAttr(v)));
      others = e.mul(others,
                     getValueOrCreateConstantIndexOp(b, e.loc, sizes.back()));
    }
    for (auto [i, v] : llvm::enumerate(*known))
      if (v == -1)
        sizes.insert(
            sizes.begin() + i,
            e.select(e.cmp(arith::CmpIPredicate::eq, others, e.index(0)),
                     e.index(0), e.divSI(total, e.maxSI(others, e.index(1)))));
    for (int64_t i = 0; i < type.getRank(); ++i)
      if (!type.isDynamicDim(i))
        sizes[i] = b.getIndexAttr(type.getDimSize(i));
  } else if (!type.hasStaticShape()) {
    // Resolve 0 (copy the input's size) and -1 (the rest) at run time.
    Value total = productOf(e, e.sizes(data));
    SmallVector<Value> resolved;
    Value product = e.index(1);
    Value anyInferred = e.scalar(b.getI1Type(), 0);
    for (int64_t i = 0; i < type.getRank(); ++i) {
      Value v = e.extractIndex(op.getShape(), i);
      if (!allowZero && i < inRank)
        v = e.select(e.cmp(arith::CmpIPredicate::eq, v, e.index(0)),
                     e.dim(data, i), v);
      Value inferred = e.cmp(arith::CmpIPredicate::eq, v, e.index(-1));
      anyInferred = b.createOrFold<arith::OrIOp>(e.loc, anyInferred, inferred);
      resolved.push_back(v);
      product = e.mul(product, v);
    }
    // With one -1 the product of the others is -product; -1 next to a 0
    // size is 0.
    Value others = e.select(anyInferred, e.sub(e.index(0), product), product);
    Value rest =
        e.select(e.cmp(arith::CmpIPredicate::eq, others, e.index(0)),
                 e.index(0), e.divSI(total, e.maxSI(others, e.index(1))));
    Value count = e.index(1);
    for (int64_t i = 0; i < type.getRank(); ++i) {
      Value v = resolved[i];
      Value size =
          e.select(e.cmp(arith::CmpIPredicate::eq, v, e.index(-1)), rest, v);
      count = e.mul(count, size);
      sizes.push_back(
          sizeOr(b, type, i, [&]() -> OpFoldResult { return size; }));
    }
    e.check(e.cmp(arith::CmpIPredicate::eq, count, total),
            describe(op) + ": the shape does not keep the number of elements");
  } else {
    for (int64_t s : type.getShape())
      sizes.push_back(b.getIndexAttr(s));
  }
  return Values{e.reshape(data, sizes)};
}

Lowered lowerFlatten(OpBuilder &b, onnx::FlattenOp op) {
  Emitter e(b, op.getLoc());
  int64_t rank = rankOf(op.getInput());
  int64_t axis = static_cast<int64_t>(op.getAxis());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis > rank)
    return nodeError(op) << "axis " << op.getAxis() << " out of range";
  SmallVector<OpFoldResult> sizes = e.sizes(op.getInput());
  ArrayRef<OpFoldResult> all(sizes);
  SmallVector<OpFoldResult> out{productOf(e, all.take_front(axis)),
                                productOf(e, all.drop_front(axis))};
  return Values{e.reshape(op.getInput(), out)};
}

/// Known axes normalised against `rank` and sorted, or an error.
FailureOr<SmallVector<int64_t>> knownAxes(Operation *op, Value axesValue,
                                          int64_t rank) {
  std::optional<SmallVector<int64_t>> axes = knownInts(axesValue);
  if (!axes)
    return nodeError(op) << "axes must be known at compile time";
  SmallVector<int64_t> out;
  for (int64_t a : *axes) {
    FailureOr<int64_t> n = axisOf(op, a, rank);
    if (failed(n))
      return failure();
    out.push_back(*n);
  }
  llvm::sort(out);
  return out;
}

/// Squeeze and Unsqueeze with axes known only at run time: a reshape to
/// the result's type, which must then be static.
Lowered reshapeToStatic(Emitter &e, Operation *op, Value data, Value result) {
  RankedTensorType type = rankedType(result);
  if (!type.hasStaticShape())
    return nodeError(op) << "axes known only at run time need a static "
                            "result shape, not "
                         << type;
  SmallVector<OpFoldResult> sizes;
  for (int64_t s : type.getShape())
    sizes.push_back(e.b.getIndexAttr(s));
  return Values{e.reshape(data, sizes)};
}

Lowered lowerSqueeze(OpBuilder &b, onnx::SqueezeOp op) {
  Emitter e(b, op.getLoc());
  RankedTensorType in = rankedType(op.getData());
  SmallVector<int64_t> axes;
  if (isa<NoneType>(op.getAxes().getType())) {
    for (int64_t d = 0; d < in.getRank(); ++d) {
      if (in.isDynamicDim(d))
        return nodeError(op) << "squeezing every size-1 dimension needs a "
                                "static shape";
      if (in.getDimSize(d) == 1)
        axes.push_back(d);
    }
  } else if (!knownInts(op.getAxes())) {
    return reshapeToStatic(e, op, op.getData(), op.getSqueezed());
  } else {
    FailureOr<SmallVector<int64_t>> known =
        knownAxes(op, op.getAxes(), in.getRank());
    if (failed(known))
      return failure();
    axes = *known;
  }
  return Values{e.collapseUnitDims(op.getData(), axes)};
}

Lowered lowerUnsqueeze(OpBuilder &b, onnx::UnsqueezeOp op) {
  Emitter e(b, op.getLoc());
  if (!knownInts(op.getAxes()))
    return reshapeToStatic(e, op, op.getData(), op.getExpanded());
  FailureOr<SmallVector<int64_t>> axes =
      knownAxes(op, op.getAxes(), rankOf(op.getExpanded()));
  if (failed(axes))
    return failure();
  return Values{e.expandUnitDims(op.getData(), *axes)};
}

Lowered lowerTranspose(OpBuilder &b, onnx::TransposeOp op) {
  Emitter e(b, op.getLoc());
  int64_t rank = rankOf(op.getData());
  SmallVector<int64_t> perm;
  if (std::optional<ArrayRef<int64_t>> attr = op.getPerm())
    perm.assign(attr->begin(), attr->end());
  else
    for (int64_t i = rank - 1; i >= 0; --i)
      perm.push_back(i);
  if (static_cast<int64_t>(perm.size()) != rank)
    return nodeError(op) << "perm has " << perm.size() << " entries for rank "
                         << rank;
  SmallVector<OpFoldResult> in = e.sizes(op.getData()), out;
  for (int64_t p : perm)
    out.push_back(in[p]);
  Value init = e.empty(out, elementType(op.getData()));
  return Values{
      linalg::TransposeOp::create(b, op.getLoc(), op.getData(), init, perm)
          .getResult()
          .front()};
}

Lowered lowerConcat(OpBuilder &b, onnx::ConcatOp op) {
  Emitter e(b, op.getLoc());
  RankedTensorType type = rankedType(op.getConcatResult());
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), type.getRank());
  if (failed(axis))
    return failure();
  SmallVector<OpFoldResult> sizes = e.broadcastSizes(type.getShape(), {});
  Value total = e.index(0);
  for (Value input : op.getInputs())
    total = e.add(total, e.dim(input, *axis));
  for (int64_t d = 0; d < type.getRank(); ++d) {
    if (!type.isDynamicDim(d))
      continue;
    if (d == *axis) {
      sizes[d] = total;
      continue;
    }
    for (Value input : op.getInputs())
      if (rankedType(input).isDynamicDim(d)) {
        sizes[d] = e.dim(input, d);
        break;
      }
  }
  Value result = e.allocTensor(sizes, type.getElementType());
  Value offset = e.index(0);
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  for (Value input : op.getInputs()) {
    // An input with no elements writes nothing (and its slice may start at
    // the end of the axis, which tensor.insert_slice rejects).
    if (llvm::is_contained(rankedType(input).getShape(), 0))
      continue;
    SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
    offsets[*axis] = getAsOpFoldResult(offset);
    SmallVector<OpFoldResult> inSizes = e.sizes(input);
    result = e.insertInto(input, result, offsets, inSizes, strides);
    offset = e.add(offset, e.dim(input, *axis));
  }
  return Values{result};
}

Lowered lowerSplit(OpBuilder &b, onnx::SplitOp op) {
  Emitter e(b, op.getLoc());
  Value input = op.getInput();
  int64_t rank = rankOf(input);
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), rank);
  if (failed(axis))
    return failure();
  int64_t parts = op.getNumResults();
  Value dim = e.dim(input, *axis);
  SmallVector<Value> lengths;
  if (!isa<NoneType>(op.getSplit().getType())) {
    if (rankOf(op.getSplit()) != 1 ||
        rankedType(op.getSplit()).getDimSize(0) != parts)
      return nodeError(op) << "split must have one entry per output (" << parts
                           << ")";
    Value total = e.index(0);
    Value nonNegative = e.scalar(b.getI1Type(), 1);
    for (int64_t i = 0; i < parts; ++i) {
      lengths.push_back(e.extractIndex(op.getSplit(), i));
      total = e.add(total, lengths.back());
      nonNegative = b.createOrFold<arith::AndIOp>(
          e.loc, nonNegative,
          e.cmp(arith::CmpIPredicate::sge, lengths.back(), e.index(0)));
    }
    Value fits = b.createOrFold<arith::AndIOp>(
        e.loc, nonNegative, e.cmp(arith::CmpIPredicate::eq, total, dim));
    e.check(fits, describe(op) + ": split sizes do not add up to the size " +
                      "of axis " + Twine(*axis));
  } else {
    // Equal parts, the last one smaller when uneven.
    Value chunk = e.ceilDivSI(dim, e.index(parts));
    for (int64_t i = 0; i < parts; ++i) {
      Value left = e.sub(dim, e.mul(chunk, e.index(i)));
      lengths.push_back(e.maxSI(e.minSI(chunk, left), e.index(0)));
    }
  }
  Values results;
  Value offset = e.index(0);
  SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
  for (int64_t i = 0; i < parts; ++i) {
    SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
    offsets[*axis] = getAsOpFoldResult(offset);
    SmallVector<OpFoldResult> sizes = e.sizes(input);
    sizes[*axis] = getAsOpFoldResult(lengths[i]);
    // A part of size 0 (possibly at the very end) reads nothing.
    std::optional<int64_t> staticDim = getConstantIntValue(dim);
    std::optional<int64_t> staticOffset = getConstantIntValue(offset);
    if (getConstantIntValue(sizes[*axis]) == 0 ||
        (staticDim && staticOffset && *staticOffset >= *staticDim))
      results.push_back(e.empty(sizes, elementType(input)));
    else
      results.push_back(tensor::ExtractSliceOp::create(
          b, op.getLoc(), input, offsets, sizes, strides));
    offset = e.add(offset, lengths[i]);
  }
  return results;
}

Lowered lowerSlice(OpBuilder &b, onnx::SliceOp op) {
  Emitter e(b, op.getLoc());
  Value data = op.getData();
  int64_t rank = rankOf(data);
  if (rankOf(op.getStarts()) != 1 || rankOf(op.getEnds()) != 1)
    return nodeError(op) << "starts and ends must be 1-D";
  int64_t count = rankedType(op.getStarts()).getDimSize(0);
  if (ShapedType::isDynamic(count))
    return nodeError(op) << "the number of sliced axes must be static";
  // Sliced axes: known ones, else read at run time (runtimeAxes).
  SmallVector<int64_t> axes;
  bool runtimeAxes = false;
  if (isa<NoneType>(op.getAxes().getType())) {
    for (int64_t i = 0; i < count; ++i)
      axes.push_back(i);
  } else if (std::optional<SmallVector<int64_t>> known =
                 knownInts(op.getAxes())) {
    for (int64_t a : *known) {
      FailureOr<int64_t> n = axisOf(op, a, rank);
      if (failed(n))
        return failure();
      axes.push_back(*n);
    }
  } else {
    runtimeAxes = true;
    axes.assign(count, -1);
  }
  if (static_cast<int64_t>(axes.size()) != count)
    return nodeError(op) << "axes, starts and ends differ in length";
  bool hasSteps = !isa<NoneType>(op.getSteps().getType());
  std::optional<SmallVector<int64_t>> knownSteps =
      hasSteps ? knownInts(op.getSteps()) : SmallVector<int64_t>(count, 1);
  if (knownSteps && llvm::is_contained(*knownSteps, 0))
    return nodeError(op) << "has a zero step";
  SmallVector<Value> starts(rank, e.index(0)), steps(rank, e.index(1));
  SmallVector<Value> lengths;
  for (int64_t d = 0; d < rank; ++d)
    lengths.push_back(e.dim(data, d));
  using P = arith::CmpIPredicate;
  for (int64_t k = 0; k < count; ++k) {
    Value step = hasSteps ? e.extractIndex(op.getSteps(), k) : e.index(1);
    Value rawStart = e.extractIndex(op.getStarts(), k);
    Value rawEnd = e.extractIndex(op.getEnds(), k);
    Value positive = e.cmp(P::sgt, step, e.index(0));
    // Clamped start and the number of elements taken along a dimension of
    // `dim`: step > 0 clamps both bounds to [0, dim]; step < 0 the start
    // to [0, dim-1] and the end to [-1, dim-1].
    auto bounds = [&](Value dim) {
      Value start = e.wrapNegative(rawStart, dim);
      Value end = e.wrapNegative(rawEnd, dim);
      Value last = e.sub(dim, e.index(1));
      Value hi = e.select(positive, dim, last);
      Value endLo = e.select(positive, e.index(0), e.index(-1));
      start = e.minSI(e.maxSI(start, e.index(0)), hi);
      end = e.minSI(e.maxSI(end, endLo), hi);
      Value span = e.select(positive, e.sub(end, start), e.sub(start, end));
      Value magnitude = e.select(positive, step, e.sub(e.index(0), step));
      Value length = e.maxSI(e.ceilDivSI(span, magnitude), e.index(0));
      return std::pair{start, length};
    };
    if (!runtimeAxes) {
      auto [start, length] = bounds(e.dim(data, axes[k]));
      starts[axes[k]] = start;
      steps[axes[k]] = step;
      lengths[axes[k]] = length;
      continue;
    }
    Value axis = e.wrapNegative(e.extractIndex(op.getAxes(), k), e.index(rank));
    for (int64_t d = 0; d < rank; ++d) {
      auto [start, length] = bounds(e.dim(data, d));
      Value here = e.cmp(P::eq, axis, e.index(d));
      starts[d] = e.select(here, start, starts[d]);
      steps[d] = e.select(here, step, steps[d]);
      lengths[d] = e.select(here, length, lengths[d]);
    }
  }
  RankedTensorType type = rankedType(op.getOutput());
  SmallVector<OpFoldResult> sizes;
  for (int64_t d = 0; d < rank; ++d)
    sizes.push_back(sizeOr(b, type, d, [&]() -> OpFoldResult {
      return getAsOpFoldResult(lengths[d]);
    }));
  bool forward = !runtimeAxes && knownSteps &&
                 llvm::all_of(*knownSteps, [](int64_t s) { return s > 0; });
  if (llvm::any_of(sizes,
                   [](OpFoldResult s) { return getConstantIntValue(s) == 0; }))
    return Values{e.empty(sizes, elementType(data))};
  if (forward) {
    SmallVector<OpFoldResult> offsets, strides;
    for (int64_t d = 0; d < rank; ++d) {
      offsets.push_back(getAsOpFoldResult(starts[d]));
      strides.push_back(getAsOpFoldResult(steps[d]));
    }
    return Values{tensor::ExtractSliceOp::create(b, op.getLoc(), data, offsets,
                                                 sizes, strides)};
  }
  // Negative or run-time steps or axes: read each element.
  return Values{
      e.fromIndices(sizes, elementType(data), [&](Emitter &in, ValueRange at) {
        SmallVector<Value> from;
        for (int64_t d = 0; d < rank; ++d)
          from.push_back(in.add(starts[d], in.mul(at[d], steps[d])));
        return in.extract(data, from);
      })};
}

Lowered lowerExpand(OpBuilder &b, onnx::ExpandOp op) {
  Emitter e(b, op.getLoc());
  Value input = op.getInput();
  RankedTensorType type = rankedType(op.getOutput());
  RankedTensorType inType = rankedType(input);
  int64_t rank = type.getRank();
  int64_t inOffset = rank - inType.getRank();
  int64_t shapeLen = rankedType(op.getShape()).getDimSize(0);
  if (ShapedType::isDynamic(shapeLen))
    return nodeError(op) << "the length of shape must be static";
  int64_t shapeOffset = rank - shapeLen;
  SmallVector<OpFoldResult> sizes;
  for (int64_t d = 0; d < rank; ++d)
    sizes.push_back(sizeOr(b, type, d, [&]() -> OpFoldResult {
      Value x = d >= inOffset ? e.dim(input, d - inOffset) : e.index(1);
      if (d < shapeOffset)
        return x;
      Value s = e.extractIndex(op.getShape(), d - shapeOffset);
      return e.select(e.cmp(arith::CmpIPredicate::eq, s, e.index(1)), x, s);
    }));
  if (inType.hasStaticShape())
    return Values{e.broadcastGeneric(
        sizes, type.getElementType(), input,
        [](OpBuilder &, Location, ValueRange args) { return args[0]; })};
  // A dynamic input size may be 1 at run time: clamp each index.
  return Values{e.fromIndices(
      sizes, type.getElementType(), [&](Emitter &in, ValueRange at) {
        SmallVector<Value> from;
        for (int64_t d = inOffset; d < rank; ++d) {
          Value last = in.sub(in.dim(input, d - inOffset), in.index(1));
          from.push_back(in.minSI(at[d], last));
        }
        return in.extract(input, from);
      })};
}

Lowered lowerTile(OpBuilder &b, onnx::TileOp op) {
  Emitter e(b, op.getLoc());
  Value input = op.getInput();
  RankedTensorType type = rankedType(op.getOutput());
  int64_t rank = type.getRank();
  SmallVector<OpFoldResult> sizes;
  for (int64_t d = 0; d < rank; ++d)
    sizes.push_back(sizeOr(b, type, d, [&]() -> OpFoldResult {
      return e.mul(e.dim(input, d), e.extractIndex(op.getRepeats(), d));
    }));
  return Values{e.fromIndices(
      sizes, type.getElementType(), [&](Emitter &in, ValueRange at) {
        SmallVector<Value> from;
        for (int64_t d = 0; d < rank; ++d)
          from.push_back(in.remSI(at[d], in.dim(input, d)));
        return in.extract(input, from);
      })};
}

Lowered lowerRange(OpBuilder &b, onnx::RangeOp op) {
  Emitter e(b, op.getLoc());
  Type type = elementType(op.getStart());
  Value start = e.extractOnly(op.getStart());
  Value limit = e.extractOnly(op.getLimit());
  Value delta = e.extractOnly(op.getDelta());
  Value n;
  if (isa<FloatType>(type)) {
    Value q = arith::DivFOp::create(
        b, e.loc, arith::SubFOp::create(b, e.loc, limit, start), delta);
    Value c = math::CeilOp::create(b, e.loc, q);
    Value i = arith::FPToSIOp::create(b, e.loc, b.getI64Type(), c);
    n = e.maxSI(e.toIndex(i), e.index(0));
  } else {
    Value s = e.toIndex(start), l = e.toIndex(limit), d = e.toIndex(delta);
    n = e.maxSI(e.ceilDivSI(e.sub(l, s), d), e.index(0));
  }
  RankedTensorType result = rankedType(op.getOutput());
  OpFoldResult size = sizeOr(b, result, 0, [&]() -> OpFoldResult { return n; });
  return Values{e.fromIndices({size}, type, [&](Emitter &in, ValueRange at) {
    if (isa<FloatType>(type)) {
      Value i =
          arith::IndexCastOp::create(in.b, in.loc, in.b.getI64Type(), at[0]);
      Value f = arith::SIToFPOp::create(in.b, in.loc, type, i);
      return arith::AddFOp::create(
                 in.b, in.loc, start,
                 arith::MulFOp::create(in.b, in.loc, f, delta))
          .getResult();
    }
    Value i = in.fromIndex(at[0], type);
    return arith::AddIOp::create(in.b, in.loc, start,
                                 arith::MulIOp::create(in.b, in.loc, i, delta))
        .getResult();
  })};
}

} // namespace

std::optional<Lowered> mlir::moe::onnx_lowering::lowerShapeOp(OpBuilder &b,
                                                              Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<Lowered>>(op)
      .Case([&](onnx::ConstantOp o) { return lowerConstant(b, o); })
      .Case(
          [&](onnx::ConstantOfShapeOp o) { return lowerConstantOfShape(b, o); })
      .Case([&](onnx::ShapeOp o) { return lowerShape(b, o); })
      .Case([&](onnx::SizeOp o) { return lowerSize(b, o); })
      .Case([&](onnx::ReshapeOp o) { return lowerReshape(b, o); })
      .Case([&](onnx::FlattenOp o) { return lowerFlatten(b, o); })
      .Case([&](onnx::SqueezeOp o) { return lowerSqueeze(b, o); })
      .Case([&](onnx::UnsqueezeOp o) { return lowerUnsqueeze(b, o); })
      .Case([&](onnx::TransposeOp o) { return lowerTranspose(b, o); })
      .Case([&](onnx::ConcatOp o) { return lowerConcat(b, o); })
      .Case([&](onnx::SplitOp o) { return lowerSplit(b, o); })
      .Case([&](onnx::SliceOp o) { return lowerSlice(b, o); })
      .Case([&](onnx::ExpandOp o) { return lowerExpand(b, o); })
      .Case([&](onnx::TileOp o) { return lowerTile(b, o); })
      .Case([&](onnx::RangeOp o) { return lowerRange(b, o); })
      .Default(std::optional<Lowered>());
}
