//===- Reduction.cpp - Reductions, arg-reductions, scans, normalisation ---===//
//
// Reductions are linalg.generic ops with reduction iterators into a tensor
// without the reduced dimensions (filled with the identity), expanded
// afterwards when `keepdims`. Softmax and LogSoftmax subtract the maximum
// before exponentiating; LayerNormalization computes its statistics in the
// stash type. CumSum is an scf.for over the axis carrying the running sum
// of one hyperplane.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "llvm/ADT/TypeSwitch.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"

using namespace mlir;
using namespace mlir::moe::onnx_lowering;

namespace {

/// The map from a loop nest of `rank` dims to the dims not in `axes`.
AffineMap keptMap(MLIRContext *ctx, int64_t rank, ArrayRef<int64_t> axes) {
  SmallVector<AffineExpr> exprs;
  for (int64_t d = 0; d < rank; ++d)
    if (!llvm::is_contained(axes, d))
      exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(rank, 0, exprs, ctx);
}

SmallVector<OpFoldResult> keptSizes(Emitter &e, Value input,
                                    ArrayRef<int64_t> axes) {
  SmallVector<OpFoldResult> all = e.sizes(input), out;
  for (auto [d, s] : llvm::enumerate(all))
    if (!llvm::is_contained(axes, static_cast<int64_t>(d)))
      out.push_back(s);
  return out;
}

using PreFn = function_ref<Value(OpBuilder &, Location, Value, ValueRange)>;

/// The type float sums accumulate in: f32 in f64, f16 and bf16 in f32.
Type accumulatorType(Type type) {
  if (type.isF32())
    return Float64Type::get(type.getContext());
  if (type.isF16() || type.isBF16())
    return Float32Type::get(type.getContext());
  return type;
}

/// `input` reduced over `axes` (sorted, dropped from the result) by `how`
/// in `accType`, each element mapped by `pre(x, extras)` first, where
/// `extras` are tensors of the result's shape read at the same position.
Value reduce(Emitter &e, Value input, ArrayRef<int64_t> axes, Combine how,
             Type accType, ValueRange extras, PreFn pre) {
  int64_t rank = rankOf(input);
  MLIRContext *ctx = e.b.getContext();
  Value init = e.filled(keptSizes(e, input, axes), accType,
                        combineIdentity(e, how, accType));
  AffineMap kept = keptMap(ctx, rank, axes);
  SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<Value> inputs{input};
  for (Value extra : extras) {
    inputs.push_back(extra);
    maps.push_back(kept);
  }
  maps.push_back(kept);
  SmallVector<utils::IteratorType> iterators;
  for (int64_t d = 0; d < rank; ++d)
    iterators.push_back(llvm::is_contained(axes, d)
                            ? utils::IteratorType::reduction
                            : utils::IteratorType::parallel);
  return e
      .generic(inputs, init, maps, iterators,
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 Value x = args[0];
                 ValueRange rest = args.drop_front().drop_back();
                 if (pre)
                   x = pre(nb, l, x, rest);
                 return SmallVector<Value>{
                     combine(nb, l, how, accType, args.back(), x)};
               })
      .front();
}

/// The number of elements `axes` of `input` span, as a scalar of `type`.
Value countOf(Emitter &e, Value input, ArrayRef<int64_t> axes, Type type) {
  Value n = e.index(1);
  for (int64_t a : axes)
    n = e.mul(n, e.dim(input, a));
  Value i = e.fromIndex(n, e.b.getI64Type());
  return castScalar(e.b, e.loc, i, e.b.getI64Type(), type);
}

/// `x / n` for scalars of onnx type `type`.
Value divide(OpBuilder &b, Location loc, Type type, Value x, Value n) {
  if (isa<FloatType>(type))
    return arith::DivFOp::create(b, loc, x, n);
  if (isUnsignedInt(type))
    return arith::DivUIOp::create(b, loc, x, n);
  return arith::DivSIOp::create(b, loc, x, n);
}

/// The reduced axes of a Reduce* op, sorted; nullopt for the identity
/// (noop_with_empty_axes with no axes). The axes must be known.
FailureOr<std::optional<SmallVector<int64_t>>>
reduceAxes(Operation *op, Value axesValue, int64_t rank, bool noopWhenEmpty) {
  SmallVector<int64_t> axes;
  if (!isa<NoneType>(axesValue.getType())) {
    std::optional<SmallVector<int64_t>> known = knownInts(axesValue);
    if (!known)
      return nodeError(op) << "axes must be known at compile time";
    for (int64_t a : *known) {
      FailureOr<int64_t> n = axisOf(op, a, rank);
      if (failed(n))
        return failure();
      if (!llvm::is_contained(axes, *n))
        axes.push_back(*n);
    }
  }
  if (axes.empty()) {
    if (noopWhenEmpty)
      return std::optional<SmallVector<int64_t>>();
    for (int64_t d = 0; d < rank; ++d)
      axes.push_back(d);
  }
  llvm::sort(axes);
  return std::optional<SmallVector<int64_t>>(axes);
}

/// A reduction over axes read at run time: a loop nest over the input
/// accumulating into the keepdims-shaped result (reduced coordinates 0),
/// reshaped to the result type.
Lowered lowerRuntimeReduce(Emitter &e, Operation *op, Combine how, bool mean,
                           bool keepdims, bool noop) {
  Value data = op->getOperand(0), axesValue = op->getOperand(1);
  int64_t rank = rankOf(data);
  RankedTensorType type = rankedType(op->getResult(0));
  Type element = type.getElementType();
  if (!keepdims && !type.hasStaticShape())
    return nodeError(op) << "axes known only at run time without keepdims "
                            "need a static result shape, not "
                         << type;
  int64_t count = rankedType(axesValue).getDimSize(0);
  if (ShapedType::isDynamic(count) || (count == 0 && noop))
    return nodeError(op) << "the number of axes must be static";
  using P = arith::CmpIPredicate;
  SmallVector<Value> reduced;
  for (int64_t d = 0; d < rank; ++d) {
    Value hit = e.scalar(e.b.getI1Type(), count == 0);
    for (int64_t k = 0; k < count; ++k) {
      Value a = e.wrapNegative(e.extractIndex(axesValue, k), e.index(rank));
      hit = e.b.createOrFold<arith::OrIOp>(e.loc, hit,
                                           e.cmp(P::eq, a, e.index(d)));
    }
    reduced.push_back(hit);
  }
  SmallVector<OpFoldResult> kept;
  SmallVector<Value> ubs;
  Value n = e.index(1);
  for (int64_t d = 0; d < rank; ++d) {
    Value dim = e.dim(data, d);
    ubs.push_back(dim);
    kept.push_back(e.select(reduced[d], e.index(1), dim));
    n = e.mul(n, e.select(reduced[d], dim, e.index(1)));
  }
  Value init = e.filled(kept, element, combineIdentity(e, how, element));
  Value r =
      e.loops(ubs, init, [&](Emitter &in, ValueRange ivs, ValueRange args) {
         SmallVector<Value> at;
         for (int64_t d = 0; d < rank; ++d)
           at.push_back(in.select(reduced[d], in.index(0), ivs[d]));
         Value acc = combine(in.b, in.loc, how, element,
                             in.extract(args[0], at), in.extract(data, ivs));
         return SmallVector<Value>{in.insert(acc, args[0], at)};
       }).front();
  if (mean) {
    Value count = castScalar(e.b, e.loc, e.fromIndex(n, e.b.getI64Type()),
                             e.b.getI64Type(), element);
    r = e.broadcastGeneric(e.sizes(r), element, r,
                           [&](OpBuilder &nb, Location l, ValueRange args) {
                             return divide(nb, l, element, args[0], count);
                           });
  }
  if (!keepdims) {
    SmallVector<OpFoldResult> sizes;
    for (int64_t s : type.getShape())
      sizes.push_back(e.b.getIndexAttr(s));
    r = e.reshape(r, sizes);
  }
  return Values{r};
}

Lowered lowerReduce(OpBuilder &b, Operation *op, Combine how, bool mean) {
  Emitter e(b, op->getLoc());
  Value data = op->getOperand(0);
  int64_t rank = rankOf(data);
  bool keepdims = op->getAttrOfType<IntegerAttr>("keepdims").getInt() != 0;
  bool noop =
      op->getAttrOfType<IntegerAttr>("noop_with_empty_axes").getInt() != 0;
  Value axesValue = op->getOperand(1);
  if (!isa<NoneType>(axesValue.getType()) && !knownInts(axesValue))
    return lowerRuntimeReduce(e, op, how, mean, keepdims, noop);
  auto axes = reduceAxes(op, op->getOperand(1), rank, noop);
  if (failed(axes))
    return failure();
  if (!*axes)
    return Values{data};
  Type type = elementType(data);
  // Float sums accumulate in a wider type (f32 in f64, f16/bf16 in f32).
  Type acc = how == Combine::Add ? accumulatorType(type) : type;
  auto widen = [&](OpBuilder &nb, Location l, Value x, ValueRange) {
    return castScalar(nb, l, x, type, acc);
  };
  Value r = reduce(e, data, **axes, how, acc, {},
                   acc == type ? PreFn() : PreFn(widen));
  if (mean || acc != type) {
    Value n = mean ? countOf(e, data, **axes, acc) : Value();
    r = e.broadcastGeneric(e.sizes(r), type, r,
                           [&](OpBuilder &nb, Location l, ValueRange args) {
                             Value v = args[0];
                             if (n)
                               v = divide(nb, l, acc, v, n);
                             return castScalar(nb, l, v, acc, type);
                           });
  }
  if (keepdims)
    r = e.expandUnitDims(r, **axes);
  return Values{r};
}

Lowered lowerArgReduce(OpBuilder &b, Operation *op, bool isMax) {
  Emitter e(b, op->getLoc());
  Value data = op->getOperand(0);
  int64_t rank = rankOf(data);
  FailureOr<int64_t> axis = axisOf(op, rank);
  if (failed(axis))
    return failure();
  bool keepdims = op->getAttrOfType<IntegerAttr>("keepdims").getInt() != 0;
  bool last = op->getAttrOfType<IntegerAttr>("select_last_index").getInt() != 0;
  Type type = elementType(data);
  MLIRContext *ctx = b.getContext();
  SmallVector<int64_t> axes{*axis};
  SmallVector<OpFoldResult> sizes = keptSizes(e, data, axes);
  Value values =
      e.filled(sizes, type, isMax ? e.lowest(type) : e.highest(type));
  Value indices = e.filled(sizes, b.getI64Type(), e.scalar(b.getI64Type(), 0));
  AffineMap kept = keptMap(ctx, rank, axes);
  SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(rank, ctx),
                              kept, kept};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  iterators[*axis] = utils::IteratorType::reduction;
  bool isFloat = isa<FloatType>(type);
  bool isUnsigned = isUnsignedInt(type) || type.isInteger(1);
  ValueRange results = e.generic(
      data, ValueRange{values, indices}, maps, iterators,
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value x = args[0], best = args[1], at = args[2];
        Value take;
        if (isFloat) {
          using FP = arith::CmpFPredicate;
          FP pred =
              isMax ? (last ? FP::OGE : FP::OGT) : (last ? FP::OLE : FP::OLT);
          take = arith::CmpFOp::create(nb, l, pred, x, best);
        } else {
          using IP = arith::CmpIPredicate;
          IP pred = isMax ? (last ? (isUnsigned ? IP::uge : IP::sge)
                                  : (isUnsigned ? IP::ugt : IP::sgt))
                          : (last ? (isUnsigned ? IP::ule : IP::sle)
                                  : (isUnsigned ? IP::ult : IP::slt));
          take = arith::CmpIOp::create(nb, l, pred, x, best);
        }
        Value i = arith::IndexCastOp::create(
            nb, l, nb.getI64Type(), linalg::IndexOp::create(nb, l, *axis));
        return SmallVector<Value>{arith::SelectOp::create(nb, l, take, x, best),
                                  arith::SelectOp::create(nb, l, take, i, at)};
      });
  Value r = results[1];
  if (keepdims)
    r = e.expandUnitDims(r, axes);
  return Values{r};
}

/// CumSum along an axis read at run time: each output element sums its
/// run of the input with an inner loop (O(n^2) along the axis).
Lowered lowerRuntimeCumSum(Emitter &e, onnx::CumSumOp op) {
  Value x = op.getX();
  int64_t rank = rankOf(x);
  bool exclusive = op.getExclusive() != 0, reverse = op.getReverse() != 0;
  Type type = elementType(x);
  using P = arith::CmpIPredicate;
  Value axis = e.wrapNegative(e.extractIndex(op.getAxis(), 0), e.index(rank));
  Value n = tensor::DimOp::create(e.b, e.loc, x, axis);
  return Values{
      e.fromIndices(e.sizes(x), type, [&](Emitter &in, ValueRange at) {
        Value p = in.index(0);
        SmallVector<Value> here;
        for (int64_t d = 0; d < rank; ++d) {
          here.push_back(in.cmp(P::eq, axis, in.index(d)));
          p = in.select(here[d], at[d], p);
        }
        // forward: [0, p] ([0, p) exclusive); reverse: [p, n) ((p, n)).
        Value lo =
            reverse ? (exclusive ? in.add(p, in.index(1)) : p) : in.index(0);
        Value hi = reverse ? n : (exclusive ? p : in.add(p, in.index(1)));
        auto loop = scf::ForOp::create(
            in.b, in.loc, lo, hi, in.index(1), ValueRange{in.scalar(type, 0)},
            [&](OpBuilder &nb, Location l, Value j, ValueRange acc) {
              Emitter body(nb, l);
              SmallVector<Value> from;
              for (int64_t d = 0; d < rank; ++d)
                from.push_back(body.select(here[d], j, at[d]));
              Value v = combine(nb, l, Combine::Add, type, acc[0],
                                body.extract(x, from));
              scf::YieldOp::create(nb, l, v);
            });
        return loop.getResult(0);
      })};
}

Lowered lowerCumSum(OpBuilder &b, onnx::CumSumOp op) {
  Emitter e(b, op.getLoc());
  Value x = op.getX();
  int64_t rank = rankOf(x);
  std::optional<SmallVector<int64_t>> axisValue = knownInts(op.getAxis());
  if (!axisValue)
    return lowerRuntimeCumSum(e, op);
  if (axisValue->size() != 1)
    return nodeError(op) << "axis must be one value";
  FailureOr<int64_t> axis = axisOf(op, axisValue->front(), rank);
  if (failed(axis))
    return failure();
  bool exclusive = op.getExclusive() != 0, reverse = op.getReverse() != 0;
  Type type = elementType(x);
  SmallVector<OpFoldResult> sizes = e.sizes(x), sliceSizes = sizes;
  sliceSizes[*axis] = b.getIndexAttr(1);
  Value n = e.dim(x, *axis);
  Value running = e.filled(sliceSizes, type, e.scalar(type, 0));
  Value result = e.allocTensor(sizes, type);
  SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
  SmallVector<Value> done = e.loops(
      n, ValueRange{result, running},
      [&](Emitter &in, ValueRange ivs, ValueRange args) {
        Value p = reverse ? in.sub(in.sub(n, in.index(1)), ivs[0]) : ivs[0];
        SmallVector<OpFoldResult> offsets(rank, in.b.getIndexAttr(0));
        offsets[*axis] = p;
        Value cur = tensor::ExtractSliceOp::create(in.b, in.loc, x, offsets,
                                                   sliceSizes, strides);
        // Exclusive: the sum before this position, stored before the
        // running sum is updated in place (so that the loop yields buffers
        // equivalent to its iteration arguments).
        Value r = args[0];
        if (exclusive)
          r = in.insertInto(args[1], r, offsets, sliceSizes, strides);
        MLIRContext *ctx = in.b.getContext();
        SmallVector<AffineMap> maps(
            2, AffineMap::getMultiDimIdentityMap(rank, ctx));
        SmallVector<utils::IteratorType> iterators(
            rank, utils::IteratorType::parallel);
        Value sum = in.generic(cur, args[1], maps, iterators,
                               [&](OpBuilder &nb, Location l, ValueRange xs) {
                                 return SmallVector<Value>{combine(
                                     nb, l, Combine::Add, type, xs[1], xs[0])};
                               })
                        .front();
        if (!exclusive)
          r = in.insertInto(sum, r, offsets, sliceSizes, strides);
        return SmallVector<Value>{r, sum};
      });
  return Values{done[0]};
}

Lowered lowerSoftmax(OpBuilder &b, Operation *op, bool log) {
  Emitter e(b, op->getLoc());
  Value x = op->getOperand(0);
  int64_t rank = rankOf(x);
  FailureOr<int64_t> axis = axisOf(op, rank);
  if (failed(axis))
    return failure();
  Type type = elementType(x);
  if (!isa<FloatType>(type))
    return nodeError(op) << "is only defined for float tensors";
  MLIRContext *ctx = b.getContext();
  SmallVector<int64_t> axes{*axis};
  Value max = reduce(e, x, axes, Combine::Max, type, {}, nullptr);
  // sum(exp(x - max)), accumulated wide and rounded back.
  Type acc = accumulatorType(type);
  Value sum = reduce(e, x, axes, Combine::Add, acc, max,
                     [&](OpBuilder &nb, Location l, Value v, ValueRange m) {
                       Value d = arith::SubFOp::create(nb, l, v, m[0]);
                       Value ex = math::ExpOp::create(nb, l, d);
                       return castScalar(nb, l, ex, type, acc);
                     });
  if (acc != type)
    sum = e.broadcastGeneric(e.sizes(sum), type, sum,
                             [&](OpBuilder &nb, Location l, ValueRange args) {
                               return castScalar(nb, l, args[0], acc, type);
                             });
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap kept = keptMap(ctx, rank, axes);
  Value init = e.empty(e.sizes(x), type);
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  return Values{
      e.generic(ValueRange{x, max, sum}, init, {id, kept, kept, id}, iterators,
                [&](OpBuilder &nb, Location l, ValueRange args) {
                  Value d = arith::SubFOp::create(nb, l, args[0], args[1]);
                  Value r;
                  if (log)
                    r = arith::SubFOp::create(
                        nb, l, d, math::LogOp::create(nb, l, args[2]));
                  else
                    r = arith::DivFOp::create(
                        nb, l, math::ExpOp::create(nb, l, d), args[2]);
                  return SmallVector<Value>{r};
                })
          .front()};
}

Lowered lowerLayerNorm(OpBuilder &b, onnx::LayerNormalizationOp op) {
  Emitter e(b, op.getLoc());
  Value x = op.getX();
  int64_t rank = rankOf(x);
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), rank);
  if (failed(axis))
    return failure();
  Type type = elementType(x);
  Type stash = elementType(op.getMean());
  if (!isa<FloatType>(type) || !isa<FloatType>(stash))
    return nodeError(op) << "is only defined for float tensors";
  MLIRContext *ctx = b.getContext();
  SmallVector<int64_t> axes;
  for (int64_t d = *axis; d < rank; ++d)
    axes.push_back(d);
  // The statistics accumulate in a type wider than the stash type.
  Type acc = accumulatorType(stash);
  Value n = countOf(e, x, axes, acc);
  auto widen = [&](OpBuilder &nb, Location l, Value v, ValueRange) {
    return castScalar(nb, l, v, type, acc);
  };
  Value sum = reduce(e, x, axes, Combine::Add, acc, {}, widen);
  auto sizes = e.sizes(sum);
  Value wideMean = e.broadcastGeneric(
      sizes, acc, sum, [&](OpBuilder &nb, Location l, ValueRange args) {
        return arith::DivFOp::create(nb, l, args[0], n).getResult();
      });
  Value squares =
      reduce(e, x, axes, Combine::Add, acc, wideMean,
             [&](OpBuilder &nb, Location l, Value v, ValueRange m) {
               Value d = arith::SubFOp::create(
                   nb, l, castScalar(nb, l, v, type, acc), m[0]);
               return arith::MulFOp::create(nb, l, d, d).getResult();
             });
  Value eps = e.scalar(acc, op.getEpsilon().convertToDouble());
  Value one = e.scalar(acc, 1);
  Value mean = e.broadcastGeneric(
      sizes, stash, wideMean, [&](OpBuilder &nb, Location l, ValueRange args) {
        return castScalar(nb, l, args[0], acc, stash);
      });
  Value invStd = e.broadcastGeneric(
      sizes, stash, squares, [&](OpBuilder &nb, Location l, ValueRange args) {
        Value var = arith::DivFOp::create(nb, l, args[0], n);
        Value s =
            math::SqrtOp::create(nb, l, arith::AddFOp::create(nb, l, var, eps));
        return castScalar(nb, l, arith::DivFOp::create(nb, l, one, s), acc,
                          stash);
      });
  // Y = (x - mean) * invStd * scale + B.
  SmallVector<OpFoldResult> outSizes = e.sizes(x);
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap kept = keptMap(ctx, rank, axes);
  SmallVector<Value> inputs{x, mean, invStd, op.getScale()};
  SmallVector<AffineMap> maps{
      id, kept, kept,
      broadcastMap(ctx, rankedType(op.getScale()).getShape(), outSizes)};
  bool hasBias = !isa<NoneType>(op.getB().getType());
  if (hasBias) {
    inputs.push_back(op.getB());
    maps.push_back(
        broadcastMap(ctx, rankedType(op.getB()).getShape(), outSizes));
  }
  maps.push_back(id);
  Value init = e.empty(outSizes, type);
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  Value y = e.generic(inputs, init, maps, iterators,
                      [&](OpBuilder &nb, Location l, ValueRange args) {
                        Value v = castScalar(nb, l, args[0], type, stash);
                        Value d = arith::SubFOp::create(nb, l, v, args[1]);
                        Value r = arith::MulFOp::create(nb, l, d, args[2]);
                        r = castScalar(nb, l, r, stash, type);
                        r = arith::MulFOp::create(nb, l, r, args[3]);
                        if (hasBias)
                          r = arith::AddFOp::create(nb, l, r, args[4]);
                        return SmallVector<Value>{r};
                      })
                .front();
  return Values{y, e.expandUnitDims(mean, axes),
                e.expandUnitDims(invStd, axes)};
}

} // namespace

std::optional<Lowered>
mlir::moe::onnx_lowering::lowerReductionOp(OpBuilder &b, Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<Lowered>>(op)
      .Case([&](onnx::CumSumOp o) { return lowerCumSum(b, o); })
      .Case([&](onnx::LayerNormalizationOp o) { return lowerLayerNorm(b, o); })
      .Case([&](onnx::ReduceSumOp) {
        return lowerReduce(b, op, Combine::Add, false);
      })
      .Case([&](onnx::ReduceMeanOp) {
        return lowerReduce(b, op, Combine::Add, true);
      })
      .Case([&](onnx::ReduceMaxOp) {
        return lowerReduce(b, op, Combine::Max, false);
      })
      .Case([&](onnx::ReduceMinOp) {
        return lowerReduce(b, op, Combine::Min, false);
      })
      .Case([&](onnx::ArgMaxOp) { return lowerArgReduce(b, op, true); })
      .Case([&](onnx::ArgMinOp) { return lowerArgReduce(b, op, false); })
      .Case([&](onnx::SoftmaxOp) { return lowerSoftmax(b, op, false); })
      .Case([&](onnx::LogSoftmaxOp) { return lowerSoftmax(b, op, true); })
      .Default(std::optional<Lowered>());
}
