//===- Common.cpp - Shared pieces of convert-onnx-to-linalg ---------------===//

#include "Common.h"

#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/IR/Matchers.h"

#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe::onnx_lowering;

//===----------------------------------------------------------------------===//
// Diagnostics and types
//===----------------------------------------------------------------------===//

std::string mlir::moe::onnx_lowering::describe(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "'" << op->getName() << "'";
  Location loc = op->getLoc();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (isa<NameLoc>(inner))
        loc = inner;
  if (auto name = dyn_cast<NameLoc>(loc))
    os << " node '" << name.getName().getValue() << "'";
  return text;
}

InFlightDiagnostic mlir::moe::onnx_lowering::nodeError(Operation *op) {
  return op->emitError() << describe(op) << ": ";
}

RankedTensorType mlir::moe::onnx_lowering::rankedType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

Type mlir::moe::onnx_lowering::elementType(Value value) {
  return cast<ShapedType>(value.getType()).getElementType();
}

bool mlir::moe::onnx_lowering::isUnsignedInt(Type type) {
  auto integer = dyn_cast<IntegerType>(type);
  return integer && integer.isUnsigned();
}

Type mlir::moe::onnx_lowering::signlessType(Type type) {
  if (auto integer = dyn_cast<IntegerType>(type);
      integer && !integer.isSignless())
    return IntegerType::get(type.getContext(), integer.getWidth());
  return type;
}

std::optional<SmallVector<int64_t>>
mlir::moe::onnx_lowering::knownInts(Value value) {
  std::optional<SmallVector<int64_t>> values = onnx::getKnownIntValues(value);
  if (!values || llvm::any_of(*values, ShapedType::isDynamic))
    return std::nullopt;
  return values;
}

FailureOr<int64_t> mlir::moe::onnx_lowering::axisOf(Operation *op, int64_t axis,
                                                    int64_t rank) {
  if (axis < -rank || axis >= rank)
    return nodeError(op) << "axis " << axis << " out of range for rank "
                         << rank;
  return axis < 0 ? axis + rank : axis;
}

FailureOr<int64_t> mlir::moe::onnx_lowering::axisOf(Operation *op,
                                                    int64_t rank) {
  return axisOf(op, op->getAttrOfType<IntegerAttr>("axis").getInt(), rank);
}

AffineMap mlir::moe::onnx_lowering::broadcastMap(MLIRContext *ctx,
                                                 ArrayRef<int64_t> shape,
                                                 ArrayRef<OpFoldResult> out) {
  int64_t rank = static_cast<int64_t>(out.size());
  int64_t offset = rank - static_cast<int64_t>(shape.size());
  SmallVector<AffineExpr> exprs;
  for (auto [j, size] : llvm::enumerate(shape)) {
    int64_t d = static_cast<int64_t>(j) + offset;
    std::optional<int64_t> outSize = getConstantIntValue(out[d]);
    if (size == 1 && outSize != 1)
      exprs.push_back(getAffineConstantExpr(0, ctx));
    else
      exprs.push_back(getAffineDimExpr(d, ctx));
  }
  return AffineMap::get(rank, 0, exprs, ctx);
}

//===----------------------------------------------------------------------===//
// Scalars
//===----------------------------------------------------------------------===//

Value mlir::moe::onnx_lowering::castScalar(OpBuilder &b, Location loc, Value v,
                                           Type from, Type to) {
  if (from == to)
    return v;
  Type target = signlessType(to);
  bool fromFloat = isa<FloatType>(from), toFloat = isa<FloatType>(to);
  if (to.isInteger(1)) {
    if (fromFloat) {
      Value zero = arith::ConstantOp::create(b, loc, b.getFloatAttr(from, 0));
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, v, zero);
    }
    Value zero = arith::ConstantOp::create(
        b, loc, b.getIntegerAttr(signlessType(from), 0));
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, v, zero);
  }
  bool fromUnsigned = isUnsignedInt(from) || from.isInteger(1);
  if (fromFloat && toFloat) {
    unsigned a = from.getIntOrFloatBitWidth(), c = to.getIntOrFloatBitWidth();
    if (a < c)
      return arith::ExtFOp::create(b, loc, to, v);
    if (a > c)
      return arith::TruncFOp::create(b, loc, to, v);
    // f16 <-> bf16: through f32.
    Value wide = arith::ExtFOp::create(b, loc, b.getF32Type(), v);
    return arith::TruncFOp::create(b, loc, to, wide);
  }
  if (fromFloat) {
    if (isUnsignedInt(to))
      return arith::FPToUIOp::create(b, loc, target, v);
    return arith::FPToSIOp::create(b, loc, target, v);
  }
  if (toFloat) {
    if (fromUnsigned)
      return arith::UIToFPOp::create(b, loc, to, v);
    return arith::SIToFPOp::create(b, loc, to, v);
  }
  unsigned a = from.getIntOrFloatBitWidth(), c = to.getIntOrFloatBitWidth();
  if (a < c)
    return fromUnsigned ? arith::ExtUIOp::create(b, loc, target, v).getResult()
                        : arith::ExtSIOp::create(b, loc, target, v).getResult();
  if (a > c)
    return arith::TruncIOp::create(b, loc, target, v);
  return v;
}

Value mlir::moe::onnx_lowering::combine(OpBuilder &b, Location loc, Combine how,
                                        Type type, Value x, Value y) {
  bool isFloat = isa<FloatType>(type);
  bool isUnsigned = isUnsignedInt(type) || type.isInteger(1);
  switch (how) {
  case Combine::Add:
    if (isFloat)
      return arith::AddFOp::create(b, loc, x, y);
    if (type.isInteger(1))
      return arith::OrIOp::create(b, loc, x, y);
    return arith::AddIOp::create(b, loc, x, y);
  case Combine::Mul:
    if (isFloat)
      return arith::MulFOp::create(b, loc, x, y);
    if (type.isInteger(1))
      return arith::AndIOp::create(b, loc, x, y);
    return arith::MulIOp::create(b, loc, x, y);
  case Combine::Max:
    if (isFloat)
      return arith::MaximumFOp::create(b, loc, x, y);
    if (isUnsigned)
      return arith::MaxUIOp::create(b, loc, x, y);
    return arith::MaxSIOp::create(b, loc, x, y);
  case Combine::Min:
    if (isFloat)
      return arith::MinimumFOp::create(b, loc, x, y);
    if (isUnsigned)
      return arith::MinUIOp::create(b, loc, x, y);
    return arith::MinSIOp::create(b, loc, x, y);
  }
  llvm_unreachable("unknown combination");
}

Value mlir::moe::onnx_lowering::combineIdentity(Emitter &e, Combine how,
                                                Type type) {
  switch (how) {
  case Combine::Add:
    return e.scalar(type, 0);
  case Combine::Mul:
    return e.scalar(type, 1);
  case Combine::Max:
    return e.lowest(type);
  case Combine::Min:
    return e.highest(type);
  }
  llvm_unreachable("unknown combination");
}

//===----------------------------------------------------------------------===//
// Emitter: index arithmetic
//===----------------------------------------------------------------------===//

Value Emitter::index(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}
Value Emitter::cmp(arith::CmpIPredicate pred, Value x, Value y) {
  return b.createOrFold<arith::CmpIOp>(loc, pred, x, y);
}
Value Emitter::select(Value cond, Value x, Value y) {
  return b.createOrFold<arith::SelectOp>(loc, cond, x, y);
}

Value Emitter::toIndex(Value value) {
  Type type = value.getType();
  if (type.isIndex())
    return value;
  value = signless(value);
  if (type.isInteger(1) || isUnsignedInt(type))
    return b.createOrFold<arith::IndexCastUIOp>(loc, b.getIndexType(), value);
  return b.createOrFold<arith::IndexCastOp>(loc, b.getIndexType(), value);
}

Value Emitter::fromIndex(Value value, Type type) {
  return b.createOrFold<arith::IndexCastOp>(loc, signlessType(type), value);
}

Value Emitter::wrapNegative(Value position, Value size) {
  Value negative = cmp(arith::CmpIPredicate::slt, position, index(0));
  return select(negative, add(position, size), position);
}

void Emitter::check(Value cond, const Twine &message) {
  if (matchPattern(cond, m_One()))
    return;
  cf::AssertOp::create(b, loc, cond, message.str());
}

//===----------------------------------------------------------------------===//
// Emitter: scalars
//===----------------------------------------------------------------------===//

Value Emitter::scalar(Type type, double v) {
  if (type.isIndex())
    return index(static_cast<int64_t>(v));
  if (auto f = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(f, v));
  Type t = signlessType(type);
  unsigned width = t.getIntOrFloatBitWidth();
  APInt value = width == 1 ? APInt(1, v != 0)
                           : APInt(width, static_cast<int64_t>(v),
                                   /*isSigned=*/true, /*implicitTrunc=*/true);
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(t, value));
}

static Value extremeOf(Emitter &e, Type type, bool high) {
  if (auto f = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(
        e.b, e.loc,
        e.b.getFloatAttr(f, APFloat::getInf(f.getFloatSemantics(), !high)));
  Type t = signlessType(type);
  unsigned width = t.getIntOrFloatBitWidth();
  APInt value;
  if (isUnsignedInt(type) || width == 1)
    value = high ? APInt::getMaxValue(width) : APInt::getMinValue(width);
  else
    value = high ? APInt::getSignedMaxValue(width)
                 : APInt::getSignedMinValue(width);
  return arith::ConstantOp::create(e.b, e.loc, e.b.getIntegerAttr(t, value));
}

Value Emitter::lowest(Type type) { return extremeOf(*this, type, false); }
Value Emitter::highest(Type type) { return extremeOf(*this, type, true); }

Value Emitter::signless(Value scalar) {
  Type type = scalar.getType();
  if (!isUnsignedInt(type))
    return scalar;
  return UnrealizedConversionCastOp::create(b, loc, signlessType(type), scalar)
      .getResult(0);
}

Value Emitter::fromSignless(Value scalar, Type type) {
  if (scalar.getType() == type)
    return scalar;
  return UnrealizedConversionCastOp::create(b, loc, type, scalar).getResult(0);
}

//===----------------------------------------------------------------------===//
// Emitter: tensors
//===----------------------------------------------------------------------===//

/// Sizes with every constant as an attribute, so that ops built from them
/// get static types.
static SmallVector<OpFoldResult> foldSizes(OpBuilder &b,
                                           ArrayRef<OpFoldResult> sizes) {
  SmallVector<OpFoldResult> out;
  for (OpFoldResult size : sizes) {
    if (std::optional<int64_t> c = getConstantIntValue(size))
      out.push_back(b.getIndexAttr(*c));
    else
      out.push_back(size);
  }
  return out;
}

Value Emitter::dim(Value tensor, int64_t d) {
  return b.createOrFold<tensor::DimOp>(loc, tensor, d);
}

SmallVector<Value> Emitter::dims(Value tensor, int64_t count) {
  SmallVector<Value> out;
  for (int64_t d = 0, e = count < 0 ? rankOf(tensor) : count; d < e; ++d)
    out.push_back(dim(tensor, d));
  return out;
}

SmallVector<OpFoldResult> Emitter::sizes(Value tensor) {
  return tensor::getMixedSizes(b, loc, tensor);
}

Value Emitter::empty(ArrayRef<OpFoldResult> sizes, Type elementType) {
  return tensor::EmptyOp::create(b, loc, foldSizes(b, sizes), elementType);
}

Value Emitter::allocTensor(ArrayRef<OpFoldResult> sizes, Type elementType) {
  SmallVector<int64_t> shape;
  SmallVector<Value> dynamic;
  for (OpFoldResult s : foldSizes(b, sizes)) {
    std::optional<int64_t> c = getConstantIntValue(s);
    shape.push_back(c ? *c : ShapedType::kDynamic);
    if (!c)
      dynamic.push_back(cast<Value>(s));
  }
  return bufferization::AllocTensorOp::create(
      b, loc, RankedTensorType::get(shape, elementType), dynamic);
}

Value Emitter::filled(ArrayRef<OpFoldResult> sizes, Type elementType,
                      Value value) {
  Value init = empty(sizes, elementType);
  return linalg::FillOp::create(b, loc, fromSignless(value, elementType), init)
      .getResult(0);
}

Value Emitter::extract(Value tensor, ValueRange indices) {
  return signless(tensor::ExtractOp::create(b, loc, tensor, indices));
}

Value Emitter::extractIndex(Value tensor, int64_t i) {
  SmallVector<Value> at;
  if (rankOf(tensor) == 1)
    at.push_back(index(i));
  return toIndex(extract(tensor, at));
}

Value Emitter::extractOnly(Value tensor) {
  SmallVector<Value> at(rankOf(tensor), index(0));
  return extract(tensor, at);
}

Value Emitter::insert(Value value, Value tensor, ValueRange indices) {
  return tensor::InsertOp::create(
      b, loc, fromSignless(value, elementType(tensor)), tensor, indices);
}

Value Emitter::i64Vector(ArrayRef<OpFoldResult> values) {
  auto type = RankedTensorType::get({static_cast<int64_t>(values.size())},
                                    b.getI64Type());
  SmallVector<int64_t> constants;
  for (OpFoldResult v : values)
    if (std::optional<int64_t> c = getConstantIntValue(v))
      constants.push_back(*c);
  if (constants.size() == values.size())
    return arith::ConstantOp::create(
        b, loc, DenseIntElementsAttr::get(type, ArrayRef(constants)));
  SmallVector<Value> elements;
  for (OpFoldResult v : values)
    elements.push_back(
        fromIndex(getValueOrCreateConstantIndexOp(b, loc, v), b.getI64Type()));
  return tensor::FromElementsOp::create(b, loc, type, elements);
}

/// A tensor of `shape` (all 1s) holding the only element of `source`:
/// rank-0 views as from_elements (memref views of rank 0 trip
/// expand-strided-metadata).
static Value singleElement(Emitter &e, Value source, ArrayRef<int64_t> shape) {
  RankedTensorType type = rankedType(source);
  SmallVector<Value> zeros(type.getRank(), e.index(0));
  Value element = tensor::ExtractOp::create(e.b, e.loc, source, zeros);
  return tensor::FromElementsOp::create(
      e.b, e.loc, RankedTensorType::get(shape, type.getElementType()), element);
}

/// Reassociation groups that turn `wide` (the longer shape) into `narrow`
/// by merging neighbours, when they provably do. `narrow` may have one
/// dynamic size: the static sizes before it take the leading dims of
/// `wide` (static, multiplying to them), those after it the trailing ones,
/// and it gets what is left between (where every dynamic dim of `wide`
/// must be); equal element counts make that group right. Without a
/// dynamic size, `wide` must be static and trailing 1s join the last group.
static std::optional<SmallVector<ReassociationIndices>>
regroup(ArrayRef<int64_t> wide, ArrayRef<int64_t> narrow) {
  int64_t n = static_cast<int64_t>(narrow.size());
  int64_t lo = 0, hi = static_cast<int64_t>(wide.size());
  if (llvm::count_if(narrow, ShapedType::isDynamic) > 1 ||
      llvm::is_contained(narrow, 0) || llvm::is_contained(wide, 0))
    return std::nullopt;
  SmallVector<ReassociationIndices> groups(n);
  // Takes dims from one end of [lo, hi) until their product is narrow[j].
  auto take = [&](int64_t j, bool fromLeft) {
    int64_t product = 1;
    do {
      if (lo >= hi)
        return false;
      int64_t i = fromLeft ? lo++ : --hi;
      if (ShapedType::isDynamic(wide[i]))
        return false;
      product *= wide[i];
      if (fromLeft)
        groups[j].push_back(i);
      else
        groups[j].insert(groups[j].begin(), i);
    } while (product < narrow[j]);
    return product == narrow[j];
  };
  auto dynamicAt = llvm::find_if(narrow, ShapedType::isDynamic);
  int64_t k = dynamicAt == narrow.end() ? n : dynamicAt - narrow.begin();
  for (int64_t j = 0; j < k; ++j)
    if (!take(j, true))
      return std::nullopt;
  for (int64_t j = n - 1; j > k; --j)
    if (!take(j, false))
      return std::nullopt;
  if (k == n) {
    // Leftover dims must be 1s.
    for (int64_t i = lo; i < hi; ++i) {
      if (wide[i] != 1 || n == 0)
        return std::nullopt;
      groups[n - 1].push_back(i);
    }
    return groups;
  }
  if (lo >= hi)
    return std::nullopt;
  for (int64_t i = lo; i < hi; ++i)
    groups[k].push_back(i);
  return groups;
}

Value Emitter::reshape(Value source, ArrayRef<OpFoldResult> sizes) {
  SmallVector<OpFoldResult> target = foldSizes(b, sizes);
  RankedTensorType sourceType = rankedType(source);
  SmallVector<int64_t> shape;
  SmallVector<Value> dynamic;
  for (OpFoldResult s : target) {
    std::optional<int64_t> c = getConstantIntValue(s);
    shape.push_back(c ? *c : ShapedType::kDynamic);
  }
  auto resultType = RankedTensorType::get(shape, sourceType.getElementType());
  ArrayRef<int64_t> from = sourceType.getShape();
  if (from == ArrayRef<int64_t>(shape) &&
      !llvm::is_contained(shape, ShapedType::kDynamic))
    return source;
  if ((shape.empty() || from.empty()) &&
      llvm::all_of(shape, [](int64_t s) { return s == 1; }))
    return singleElement(*this, source, shape);
  if (shape.size() < from.size()) {
    if (auto groups = regroup(from, shape))
      return tensor::CollapseShapeOp::create(b, loc, source, *groups);
  } else if (shape.size() > from.size()) {
    if (auto groups = regroup(shape, from))
      return expand(source, *groups, target);
  }
  // Otherwise through one dimension: collapse everything, expand to the
  // target (a view both ways while the target has one dynamic size at most).
  if (sourceType.hasStaticShape() &&
      llvm::count_if(shape, ShapedType::isDynamic) == 1) {
    // The one unknown size of a static source's reshape is known.
    int64_t known = 1;
    for (int64_t s : shape)
      if (!ShapedType::isDynamic(s))
        known *= s;
    int64_t total = sourceType.getNumElements();
    if (known != 0 && total % known == 0) {
      for (auto [i, s] : llvm::enumerate(shape))
        if (ShapedType::isDynamic(s)) {
          s = total / known;
          target[i] = b.getIndexAttr(s);
        }
      resultType = RankedTensorType::get(shape, sourceType.getElementType());
    }
  }
  if (!from.empty() && !shape.empty() &&
      llvm::count_if(shape, ShapedType::isDynamic) <= 1 &&
      (sourceType.hasStaticShape() ==
       !llvm::is_contained(shape, ShapedType::kDynamic))) {
    ReassociationIndices all =
        llvm::to_vector(llvm::seq<int64_t>(0, sourceType.getRank()));
    Value flat = tensor::CollapseShapeOp::create(
        b, loc, source, ArrayRef<ReassociationIndices>{all});
    if (shape.size() == 1)
      return flat;
    ReassociationIndices into =
        llvm::to_vector(llvm::seq<int64_t>(0, resultType.getRank()));
    return expand(flat, {into}, target);
  }
  return reshapeWithShape(source, target);
}

Value Emitter::reshapeWithShape(Value source, ArrayRef<OpFoldResult> sizes) {
  SmallVector<OpFoldResult> target = foldSizes(b, sizes);
  SmallVector<int64_t> shape;
  SmallVector<Value> elements;
  for (OpFoldResult s : target) {
    std::optional<int64_t> c = getConstantIntValue(s);
    shape.push_back(c ? *c : ShapedType::kDynamic);
    elements.push_back(getValueOrCreateConstantIndexOp(b, loc, s));
  }
  auto resultType = RankedTensorType::get(shape, elementType(source));
  auto shapeType = RankedTensorType::get({static_cast<int64_t>(shape.size())},
                                         b.getIndexType());
  Value shapeTensor =
      tensor::FromElementsOp::create(b, loc, shapeType, elements);
  return tensor::ReshapeOp::create(b, loc, resultType, source, shapeTensor);
}

Value Emitter::insertInto(Value source, Value dest,
                          ArrayRef<OpFoldResult> offsets,
                          ArrayRef<OpFoldResult> sizes,
                          ArrayRef<OpFoldResult> strides) {
  auto slotType = tensor::ExtractSliceOp::inferCanonicalRankReducedResultType(
      rankOf(source), rankedType(dest), sizes);
  Value slot = tensor::ExtractSliceOp::create(b, loc, slotType, dest, offsets,
                                              sizes, strides);
  if (slot.getType() != source.getType())
    source = tensor::CastOp::create(b, loc, slot.getType(), source);
  Value copied = linalg::CopyOp::create(b, loc, source, slot).getResult(0);
  return tensor::InsertSliceOp::create(b, loc, copied, dest, offsets, sizes,
                                       strides);
}

Value Emitter::expand(Value source, ArrayRef<ReassociationIndices> groups,
                      ArrayRef<OpFoldResult> sizes) {
  SmallVector<OpFoldResult> target = foldSizes(b, sizes);
  SmallVector<int64_t> shape;
  for (OpFoldResult s : target) {
    std::optional<int64_t> c = getConstantIntValue(s);
    shape.push_back(c ? *c : ShapedType::kDynamic);
  }
  for (const ReassociationIndices &group : groups)
    if (llvm::count_if(group, [&](int64_t i) {
          return ShapedType::isDynamic(shape[i]);
        }) > 1)
      return reshapeWithShape(source, target);
  auto resultType = RankedTensorType::get(shape, elementType(source));
  return tensor::ExpandShapeOp::create(b, loc, resultType, source, groups,
                                       target);
}

/// Groups for inserting (or removing) the size-1 dimensions `units` of a
/// shape of rank `rank`: each other dimension with the units after it,
/// leading units with the first.
static SmallVector<ReassociationIndices> unitGroups(int64_t rank,
                                                    ArrayRef<int64_t> units) {
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices pending;
  for (int64_t i = 0; i < rank; ++i) {
    if (llvm::is_contained(units, i)) {
      if (groups.empty())
        pending.push_back(i);
      else
        groups.back().push_back(i);
      continue;
    }
    ReassociationIndices group(pending);
    pending.clear();
    group.push_back(i);
    groups.push_back(group);
  }
  return groups;
}

Value Emitter::expandUnitDims(Value source, ArrayRef<int64_t> axes) {
  if (axes.empty())
    return source;
  RankedTensorType type = rankedType(source);
  if (type.getRank() == 0)
    return singleElement(*this, source, SmallVector<int64_t>(axes.size(), 1));
  int64_t rank = type.getRank() + static_cast<int64_t>(axes.size());
  SmallVector<OpFoldResult> in = sizes(source), out;
  SmallVector<int64_t> shape;
  auto next = in.begin();
  for (int64_t i = 0; i < rank; ++i)
    out.push_back(llvm::is_contained(axes, i) ? b.getIndexAttr(1) : *next++);
  out = foldSizes(b, out);
  for (OpFoldResult s : out) {
    std::optional<int64_t> c = getConstantIntValue(s);
    shape.push_back(c ? *c : ShapedType::kDynamic);
  }
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  return tensor::ExpandShapeOp::create(b, loc, resultType, source,
                                       unitGroups(rank, axes), out);
}

Value Emitter::collapseUnitDims(Value source, ArrayRef<int64_t> axes) {
  if (axes.empty())
    return source;
  RankedTensorType type = rankedType(source);
  SmallVector<OpFoldResult> in = sizes(source), out;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (!llvm::is_contained(axes, i))
      out.push_back(in[i]);
  bool dynamicUnit =
      llvm::any_of(axes, [&](int64_t a) { return type.isDynamicDim(a); });
  if (out.empty())
    return singleElement(*this, source, {});
  if (dynamicUnit)
    return reshape(source, out);
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (!llvm::is_contained(axes, i))
      shape.push_back(type.getDimSize(i));
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  return tensor::CollapseShapeOp::create(b, loc, resultType, source,
                                         unitGroups(type.getRank(), axes));
}

SmallVector<OpFoldResult> Emitter::broadcastSizes(ArrayRef<int64_t> shape,
                                                  ValueRange inputs,
                                                  ArrayRef<int64_t> counts) {
  int64_t rank = static_cast<int64_t>(shape.size());
  SmallVector<OpFoldResult> out;
  for (int64_t d = 0; d < rank; ++d) {
    if (!ShapedType::isDynamic(shape[d])) {
      out.push_back(b.getIndexAttr(shape[d]));
      continue;
    }
    OpFoldResult size = b.getIndexAttr(1);
    for (auto [i, input] : llvm::enumerate(inputs)) {
      RankedTensorType t = rankedType(input);
      int64_t count = counts.empty() ? t.getRank() : counts[i];
      int64_t j = d - (rank - count);
      if (j < 0 || t.getDimSize(j) == 1)
        continue;
      if (t.isDynamicDim(j)) {
        size = dim(input, j);
        break;
      }
      size = b.getIndexAttr(t.getDimSize(j));
    }
    out.push_back(size);
  }
  return out;
}

ValueRange Emitter::generic(
    ValueRange inputs, ValueRange outputs, ArrayRef<AffineMap> maps,
    ArrayRef<utils::IteratorType> iterators,
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange)> body) {
  auto op = linalg::GenericOp::create(
      b, loc, TypeRange(outputs), inputs, outputs, maps, iterators,
      [&](OpBuilder &nested, Location l, ValueRange args) {
        Emitter e(nested, l);
        SmallVector<Value> plain;
        for (Value a : args)
          plain.push_back(e.signless(a));
        SmallVector<Value> results = body(nested, l, plain);
        for (auto [i, out] : llvm::enumerate(outputs))
          results[i] = e.fromSignless(results[i], elementType(out));
        linalg::YieldOp::create(nested, l, results);
      });
  return op.getResults();
}

Value Emitter::broadcastGeneric(ArrayRef<OpFoldResult> outSizes,
                                Type outElement, ValueRange inputs,
                                BodyFn body) {
  SmallVector<OpFoldResult> folded = foldSizes(b, outSizes);
  Value init = empty(folded, outElement);
  MLIRContext *ctx = b.getContext();
  int64_t rank = static_cast<int64_t>(folded.size());
  SmallVector<AffineMap> maps;
  for (Value input : inputs)
    maps.push_back(broadcastMap(ctx, rankedType(input).getShape(), folded));
  maps.push_back(AffineMap::getMultiDimIdentityMap(rank, ctx));
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  return generic(inputs, init, maps, iterators,
                 [&](OpBuilder &nested, Location l, ValueRange args) {
                   return SmallVector<Value>{
                       body(nested, l, args.take_front(inputs.size()))};
                 })
      .front();
}

Value Emitter::fromIndices(ArrayRef<OpFoldResult> sizes, Type element,
                           function_ref<Value(Emitter &, ValueRange)> body) {
  Value init = empty(sizes, element);
  int64_t rank = static_cast<int64_t>(sizes.size());
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  return generic({}, init, maps, iterators,
                 [&](OpBuilder &nested, Location l, ValueRange) {
                   Emitter e(nested, l);
                   SmallVector<Value> at;
                   for (int64_t d = 0; d < rank; ++d)
                     at.push_back(linalg::IndexOp::create(nested, l, d));
                   return SmallVector<Value>{body(e, at)};
                 })
      .front();
}

SmallVector<Value> Emitter::loops(
    ArrayRef<Value> ubs, ValueRange iterArgs,
    function_ref<SmallVector<Value>(Emitter &, ValueRange, ValueRange)> body) {
  SmallVector<Value> lbs(ubs.size(), index(0)), steps(ubs.size(), index(1));
  scf::LoopNest nest = scf::buildLoopNest(
      b, loc, lbs, ubs, steps, iterArgs,
      [&](OpBuilder &nested, Location l, ValueRange ivs, ValueRange args) {
        Emitter e(nested, l);
        return body(e, ivs, args);
      });
  return nest.results;
}
