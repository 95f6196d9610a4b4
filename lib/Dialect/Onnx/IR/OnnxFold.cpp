//===- OnnxFold.cpp - Constant folding of onnx ops ------------------------===//
//
// Folding serves the shape computations exported graphs wrap around MoE
// blocks (Shape -> Gather -> Unsqueeze -> Concat -> Reshape and friends):
// an integer 0-D or 1-D result whose value getKnownIntValues can tell
// becomes a constant even when only part of the shape feeding it is static,
// and small constant tensors are evaluated (element-wise arithmetic and
// comparisons, Where, Cast, Gather, Slice, Concat, reshapes, Expand,
// ConstantOfShape, Range). Folders only produce attributes of exactly the
// result type, so shape inference must have refined it first; tensors
// larger than kFoldLimit elements are left alone (weights are not folded).
//
//===----------------------------------------------------------------------===//

#include "OnnxDetail.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::onnx;
using namespace mlir::onnx::util;

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getTensor(); }

namespace {

SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/// A tensor of `type` whose element `i` is element `source(i)` of `from`,
/// converted to `type`'s element type.
ConstTensor gatherElements(const ConstTensor &from, RankedTensorType type,
                           llvm::function_ref<int64_t(int64_t)> source) {
  ConstTensor out{type, {}, {}};
  bool toFloat = isa<FloatType>(type.getElementType());
  bool toBool = type.getElementType().isInteger(1);
  for (int64_t i = 0, e = type.getNumElements(); i < e; ++i) {
    int64_t j = source(i);
    if (toFloat)
      out.floats.push_back(from.isFloat() ? from.floats[j]
                                          : static_cast<double>(from.ints[j]));
    else if (from.isFloat())
      out.ints.push_back(toBool ? from.floats[j] != 0
                                : static_cast<int64_t>(from.floats[j]));
    else
      out.ints.push_back(toBool ? from.ints[j] != 0 : from.ints[j]);
  }
  return out;
}

/// The flat index into a tensor of `shape` that element `i` of the
/// broadcast result of `outShape` reads.
int64_t broadcastSource(int64_t i, ArrayRef<int64_t> outShape,
                        ArrayRef<int64_t> shape) {
  int64_t index = 0, stride = 1;
  int64_t offset = static_cast<int64_t>(outShape.size() - shape.size());
  for (int64_t d = static_cast<int64_t>(outShape.size()) - 1; d >= offset;
       --d) {
    int64_t coordinate = i % outShape[d];
    i /= outShape[d];
    int64_t size = shape[d - offset];
    if (size != 1)
      index += coordinate * stride;
    stride *= size;
  }
  return index;
}

/// The static result type of `op`, when its result is a static tensor.
RankedTensorType staticResultType(Operation *op) {
  auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!type || !type.hasStaticShape() || type.getNumElements() > kFoldLimit)
    return nullptr;
  return type;
}

/// Reads every one of `operands` into `tensors`; false when one is not a
/// constant readConstant takes, so nothing can be folded.
bool readConstants(ArrayRef<Attribute> operands,
                   SmallVectorImpl<ConstTensor> &tensors) {
  for (Attribute attr : operands) {
    std::optional<ConstTensor> c = readConstant(attr);
    if (!c)
      return false;
    tensors.push_back(std::move(*c));
  }
  return true;
}

/// Element-wise over broadcast constant operands.
OpFoldResult foldElementwise(Operation *op, ArrayRef<Attribute> operands) {
  RankedTensorType type = staticResultType(op);
  if (!type)
    return {};
  SmallVector<ConstTensor> inputs;
  if (!readConstants(operands, inputs))
    return {};
  // Compute in double when any operand is float, else in int64.
  bool anyFloat =
      llvm::any_of(inputs, [](const ConstTensor &c) { return c.isFloat(); });
  auto valueAt = [&](const ConstTensor &c, int64_t i) -> double {
    int64_t j = broadcastSource(i, type.getShape(), c.shape());
    return c.isFloat() ? c.floats[j] : static_cast<double>(c.ints[j]);
  };
  auto intAt = [&](const ConstTensor &c, int64_t i) -> int64_t {
    return c.ints[broadcastSource(i, type.getShape(), c.shape())];
  };
  ConstTensor out{type, {}, {}};
  bool floatOut = isa<FloatType>(type.getElementType());
  for (int64_t i = 0, e = type.getNumElements(); i < e; ++i) {
    std::optional<double> f;
    std::optional<int64_t> n;
    if (isa<WhereOp>(op)) {
      const ConstTensor &pick = intAt(inputs[0], i) ? inputs[1] : inputs[2];
      if (pick.isFloat())
        f = valueAt(pick, i);
      else
        n = intAt(pick, i);
    } else if (isa<NegOp>(op)) {
      if (anyFloat)
        f = -valueAt(inputs[0], i);
      else
        n = -intAt(inputs[0], i);
    } else if (isa<MinOp, MaxOp>(op)) {
      bool isMin = isa<MinOp>(op);
      if (anyFloat) {
        f = valueAt(inputs[0], i);
        for (const ConstTensor &c : ArrayRef(inputs).drop_front())
          f = isMin ? std::min(*f, valueAt(c, i)) : std::max(*f, valueAt(c, i));
      } else {
        n = intAt(inputs[0], i);
        for (const ConstTensor &c : ArrayRef(inputs).drop_front())
          n = isMin ? std::min(*n, intAt(c, i)) : std::max(*n, intAt(c, i));
      }
    } else if (anyFloat) {
      double x = valueAt(inputs[0], i), y = valueAt(inputs[1], i);
      if (isa<AddOp>(op))
        f = x + y;
      else if (isa<SubOp>(op))
        f = x - y;
      else if (isa<MulOp>(op))
        f = x * y;
      else if (isa<DivOp>(op))
        f = x / y;
      else if (isa<EqualOp>(op))
        n = x == y;
      else if (isa<LessOp>(op))
        n = x < y;
      else if (isa<GreaterOp>(op))
        n = x > y;
    } else {
      int64_t x = intAt(inputs[0], i), y = intAt(inputs[1], i);
      if (isa<AddOp>(op))
        n = x + y;
      else if (isa<SubOp>(op))
        n = x - y;
      else if (isa<MulOp>(op))
        n = x * y;
      else if (isa<DivOp>(op)) {
        if (y == 0)
          return {};
        n = x / y;
      } else if (isa<EqualOp>(op))
        n = x == y;
      else if (isa<LessOp>(op))
        n = x < y;
      else if (isa<GreaterOp>(op))
        n = x > y;
    }
    if (!f && !n)
      return {};
    if (floatOut)
      out.floats.push_back(f ? *f : static_cast<double>(*n));
    else
      out.ints.push_back(n ? *n : static_cast<int64_t>(*f));
  }
  return writeConstant(out);
}

/// Cast and CastLike: element conversion.
OpFoldResult foldCast(Operation *op, Attribute input) {
  RankedTensorType type = staticResultType(op);
  std::optional<ConstTensor> c = readConstant(input);
  if (!type || !c || c->type.getShape() != type.getShape())
    return {};
  return writeConstant(gatherElements(*c, type, [](int64_t i) { return i; }));
}

OpFoldResult foldGather(GatherOp op, ArrayRef<Attribute> operands) {
  RankedTensorType type = staticResultType(op);
  auto data = readConstant(operands[0]), indices = readConstant(operands[1]);
  if (!type || !data || !indices)
    return {};
  ArrayRef<int64_t> dims = data->shape();
  int64_t rank = static_cast<int64_t>(dims.size());
  int64_t axis = op.getAxis();
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return {};
  int64_t outer = product(dims.take_front(axis));
  int64_t inner = product(dims.drop_front(axis + 1));
  int64_t n = dims[axis], count = indices->size();
  if (type.getNumElements() != outer * count * inner)
    return {};
  for (int64_t index : indices->ints)
    if (index < -n || index >= n)
      return {};
  return writeConstant(gatherElements(*data, type, [&](int64_t i) {
    int64_t in = i % inner, rest = i / inner;
    int64_t k = rest % count, o = rest / count;
    int64_t index = indices->ints[k];
    if (index < 0)
      index += n;
    return (o * n + index) * inner + in;
  }));
}

OpFoldResult foldConcat(ConcatOp op, ArrayRef<Attribute> operands) {
  RankedTensorType type = staticResultType(op);
  if (!type)
    return {};
  SmallVector<ConstTensor> inputs;
  if (!readConstants(operands, inputs))
    return {};
  int64_t rank = type.getRank();
  int64_t axis = op.getAxis();
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return {};
  // Lay the inputs out one after another: a combined source index space.
  ConstTensor all{type, {}, {}};
  SmallVector<int64_t> offsets, chunks;
  for (const ConstTensor &c : inputs) {
    offsets.push_back(static_cast<int64_t>(c.isFloat() ? all.floats.size()
                                                       : all.ints.size()));
    if (c.shape().size() != static_cast<size_t>(rank) ||
        c.isFloat() != isa<FloatType>(type.getElementType()))
      return {};
    chunks.push_back(product(c.shape().drop_front(axis)));
    all.floats.append(c.floats);
    all.ints.append(c.ints);
  }
  int64_t outerChunk = product(type.getShape().drop_front(axis));
  return writeConstant(gatherElements(all, type, [&](int64_t i) {
    int64_t o = i / outerChunk, within = i % outerChunk;
    size_t k = 0;
    while (within >= chunks[k])
      within -= chunks[k++];
    return offsets[k] + o * chunks[k] + within;
  }));
}

OpFoldResult foldSlice(SliceOp op, ArrayRef<Attribute> operands) {
  RankedTensorType type = staticResultType(op);
  std::optional<ConstTensor> data = readConstant(operands[0]);
  auto starts = readConstant(operands[1]), ends = readConstant(operands[2]);
  if (!type || !data || !starts || !ends)
    return {};
  ArrayRef<int64_t> dims = data->shape();
  int64_t rank = static_cast<int64_t>(dims.size());
  SmallVector<int64_t> axes, steps;
  if (isNone(op.getAxes())) {
    axes = llvm::to_vector(llvm::seq<int64_t>(0, starts->size()));
  } else if (auto c = readConstant(operands[3])) {
    axes = c->ints;
  } else {
    return {};
  }
  if (isNone(op.getSteps())) {
    steps.assign(axes.size(), 1);
  } else if (auto c = readConstant(operands[4])) {
    steps = c->ints;
  } else {
    return {};
  }
  if (starts->size() != static_cast<int64_t>(axes.size()) ||
      ends->size() != static_cast<int64_t>(axes.size()) ||
      steps.size() != axes.size())
    return {};
  SmallVector<int64_t> begin(rank, 0), step(rank, 1);
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t axis = axes[k] < 0 ? axes[k] + rank : axes[k];
    if (axis < 0 || axis >= rank || steps[k] == 0)
      return {};
    int64_t dim = dims[axis], s = starts->ints[k];
    if (s < 0)
      s += dim;
    s = steps[k] > 0 ? std::clamp<int64_t>(s, 0, dim)
                     : std::clamp<int64_t>(s, 0, dim - 1);
    begin[axis] = s;
    step[axis] = steps[k];
  }
  SmallVector<int64_t> inStrides = stridesOf(dims);
  ArrayRef<int64_t> outShape = type.getShape();
  if (static_cast<int64_t>(outShape.size()) != rank)
    return {};
  return writeConstant(gatherElements(*data, type, [&](int64_t i) {
    int64_t index = 0;
    for (int64_t d = rank - 1; d >= 0; --d) {
      int64_t coordinate = i % outShape[d];
      i /= outShape[d];
      index += (begin[d] + coordinate * step[d]) * inStrides[d];
    }
    return index;
  }));
}

/// Reshape, Squeeze, Unsqueeze, Flatten: the same elements, a new type.
OpFoldResult foldReshapeLike(Operation *op, Attribute data) {
  auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  auto dense = dyn_cast_if_present<DenseElementsAttr>(data);
  if (!type || !type.hasStaticShape() || !dense ||
      dense.getType().getNumElements() != type.getNumElements() ||
      dense.getType().getElementType() != type.getElementType())
    return {};
  return dense.reshape(type);
}

OpFoldResult foldExpand(ExpandOp op, Attribute input) {
  auto type = dyn_cast<RankedTensorType>(op.getType());
  if (!type || !type.hasStaticShape())
    return {};
  if (auto dense = dyn_cast_if_present<DenseElementsAttr>(input);
      dense && dense.isSplat() &&
      dense.getType().getElementType() == type.getElementType())
    return DenseElementsAttr::get(type, dense.getSplatValue<Attribute>());
  std::optional<ConstTensor> c = readConstant(input);
  if (!c || type.getNumElements() > kFoldLimit ||
      c->shape().size() > static_cast<size_t>(type.getRank()))
    return {};
  return writeConstant(gatherElements(*c, type, [&](int64_t i) {
    return broadcastSource(i, type.getShape(), c->shape());
  }));
}

OpFoldResult foldConstantOfShape(ConstantOfShapeOp op) {
  auto type = dyn_cast<RankedTensorType>(op.getType());
  if (!type || !type.hasStaticShape())
    return {};
  if (!op.getValue()) {
    if (!type.getElementType().isF32())
      return {};
    return DenseElementsAttr::get(type, 0.0f);
  }
  std::optional<ConstTensor> c = readConstant(*op.getValue(), 1);
  if (!c || c->size() != 1 || c->type.getElementType() != type.getElementType())
    return {};
  ConstTensor one{RankedTensorType::get({}, type.getElementType()), c->ints,
                  c->floats};
  return writeConstant(one).resizeSplat(type);
}

OpFoldResult foldRange(RangeOp op, ArrayRef<Attribute> operands) {
  RankedTensorType type = staticResultType(op);
  auto start = readConstant(operands[0]), delta = readConstant(operands[2]);
  if (!type || !start || !delta || start->size() != 1 || delta->size() != 1)
    return {};
  ConstTensor out{type, {}, {}};
  for (int64_t i = 0, e = type.getNumElements(); i < e; ++i) {
    if (start->isFloat())
      out.floats.push_back(start->floats[0] + i * delta->floats[0]);
    else
      out.ints.push_back(start->ints[0] + i * delta->ints[0]);
  }
  if (start->isFloat() != out.isFloat())
    return {};
  return writeConstant(out);
}

} // namespace

OpFoldResult util::foldOp(Operation *op, ArrayRef<Attribute> operands) {
  Type resultType = op->getResult(0).getType();
  if (isa<IdentityOp>(op))
    return op->getOperand(0).getType() == resultType ? op->getOperand(0)
                                                     : OpFoldResult();

  // A shape computation whose value is known, if only in part of the graph.
  auto ranked = dyn_cast<RankedTensorType>(resultType);
  if (ranked && ranked.hasStaticShape() && ranked.getRank() <= 1 &&
      isa<IntegerType>(ranked.getElementType())) {
    std::optional<SmallVector<int64_t>> known =
        getKnownIntValues(op->getResult(0));
    if (known && !llvm::any_of(*known, ShapedType::isDynamic) &&
        static_cast<int64_t>(known->size()) == ranked.getNumElements())
      return writeConstant(ConstTensor{ranked, *known, {}});
  }

  if (isa<AddOp, SubOp, MulOp, DivOp, EqualOp, LessOp, GreaterOp, WhereOp,
          NegOp, MinOp, MaxOp>(op))
    return foldElementwise(op, operands);
  if (isa<CastOp, CastLikeOp>(op))
    return foldCast(op, operands[0]);
  if (isa<ReshapeOp, SqueezeOp, UnsqueezeOp, FlattenOp>(op))
    return foldReshapeLike(op, operands[0]);
  if (auto gather = dyn_cast<GatherOp>(op))
    return foldGather(gather, operands);
  if (auto concat = dyn_cast<ConcatOp>(op))
    return foldConcat(concat, operands);
  if (auto slice = dyn_cast<SliceOp>(op))
    return foldSlice(slice, operands);
  if (auto expand = dyn_cast<ExpandOp>(op))
    return foldExpand(expand, operands[0]);
  if (auto constantOfShape = dyn_cast<ConstantOfShapeOp>(op))
    return foldConstantOfShape(constantOfShape);
  if (auto range = dyn_cast<RangeOp>(op))
    return foldRange(range, operands);
  return {};
}

// Ops whose folder is declared in OnnxOps.td by `let hasFolder = 1` rather
// than by a class: forward to foldOp.
#define ONNX_FOLD_VIA_FOLDOP(OP)                                               \
  OpFoldResult OP::fold(FoldAdaptor adaptor) {                                 \
    return util::foldOp(*this, adaptor.getOperands());                         \
  }
ONNX_FOLD_VIA_FOLDOP(ReshapeOp)
ONNX_FOLD_VIA_FOLDOP(SqueezeOp)
ONNX_FOLD_VIA_FOLDOP(UnsqueezeOp)
ONNX_FOLD_VIA_FOLDOP(FlattenOp)
ONNX_FOLD_VIA_FOLDOP(ConcatOp)
ONNX_FOLD_VIA_FOLDOP(SliceOp)
ONNX_FOLD_VIA_FOLDOP(ExpandOp)
ONNX_FOLD_VIA_FOLDOP(ShapeOp)
ONNX_FOLD_VIA_FOLDOP(SizeOp)
ONNX_FOLD_VIA_FOLDOP(GatherOp)
ONNX_FOLD_VIA_FOLDOP(ConstantOfShapeOp)
ONNX_FOLD_VIA_FOLDOP(CastOp)
ONNX_FOLD_VIA_FOLDOP(CastLikeOp)
ONNX_FOLD_VIA_FOLDOP(RangeOp)
#undef ONNX_FOLD_VIA_FOLDOP
