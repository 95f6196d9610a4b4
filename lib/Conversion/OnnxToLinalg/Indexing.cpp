//===- Indexing.cpp - Gathers, scatters, TopK, OneHot, NonZero, Trilu -----===//
//
// Gathers are linalg.generic ops over the result whose bodies read the data
// with tensor.extract at computed coordinates. Scatters, TopK and NonZero
// depend on values in ways no parallel map expresses; they are scf.for
// nests carrying the result tensors (insert / insert_slice).
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "llvm/ADT/TypeSwitch.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;
using namespace mlir::moe::onnx_lowering;

namespace {

using P = arith::CmpIPredicate;

/// Index values for the loops of a linalg.generic body, 0..rank-1.
SmallVector<Value> loopIndices(OpBuilder &b, Location loc, int64_t rank) {
  SmallVector<Value> at;
  for (int64_t d = 0; d < rank; ++d)
    at.push_back(linalg::IndexOp::create(b, loc, d));
  return at;
}

/// The identity map over the first `rank` dims of `total` restricted to
/// dims [from, from + count).
AffineMap dimsMap(MLIRContext *ctx, int64_t total, int64_t from,
                  int64_t count) {
  SmallVector<AffineExpr> exprs;
  for (int64_t d = from; d < from + count; ++d)
    exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(total, 0, exprs, ctx);
}

/// An scf.for from `lb` to `ub` carrying `iterArgs`.
SmallVector<Value>
forLoop(Emitter &e, Value lb, Value ub, ValueRange iterArgs,
        function_ref<SmallVector<Value>(Emitter &, Value, ValueRange)> body) {
  auto loop = scf::ForOp::create(
      e.b, e.loc, lb, ub, e.index(1), iterArgs,
      [&](OpBuilder &nested, Location l, Value iv, ValueRange args) {
        Emitter in(nested, l);
        scf::YieldOp::create(nested, l, body(in, iv, args));
      });
  return SmallVector<Value>(loop.getResults());
}

/// `if (cond) then() else otherwise()`, both yielding `types`.
SmallVector<Value>
ifThenElse(Emitter &e, Value cond, TypeRange types,
           function_ref<SmallVector<Value>(Emitter &)> then,
           function_ref<SmallVector<Value>(Emitter &)> otherwise) {
  auto op = scf::IfOp::create(
      e.b, e.loc, cond,
      [&](OpBuilder &nested, Location l) {
        Emitter in(nested, l);
        scf::YieldOp::create(nested, l, then(in));
      },
      [&](OpBuilder &nested, Location l) {
        Emitter in(nested, l);
        scf::YieldOp::create(nested, l, otherwise(in));
      });
  return SmallVector<Value>(op.getResults());
}

/// An index read from an index tensor element (i32 or i64), negative
/// values counted from the end of a dimension of `size`.
Value readIndex(Emitter &e, Value element, Value size) {
  return e.wrapNegative(e.toIndex(element), size);
}

/// A linalg.generic over a fresh tensor of `sizes` (the element type of
/// `data`) reading `indices` through `indicesMap` and yielding `data` at
/// `coords(at, index)`: `at` the loop indices, `index` the element read as
/// an index of data dimension `axis` (negative ones counted from its end).
Value gatherGeneric(
    Emitter &e, Value data, Value indices, int64_t axis,
    ArrayRef<OpFoldResult> sizes, AffineMap indicesMap,
    function_ref<SmallVector<Value>(ArrayRef<Value>, Value)> coords) {
  int64_t rank = static_cast<int64_t>(sizes.size());
  MLIRContext *ctx = e.b.getContext();
  Value init = e.empty(sizes, elementType(data));
  SmallVector<AffineMap> maps{indicesMap,
                              AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  Value size = e.dim(data, axis);
  return e
      .generic(indices, init, maps, iterators,
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 Emitter in(nb, l);
                 SmallVector<Value> at = loopIndices(nb, l, rank);
                 Value index = readIndex(in, args[0], size);
                 return SmallVector<Value>{in.extract(data, coords(at, index))};
               })
      .front();
}

Lowered lowerGather(OpBuilder &b, onnx::GatherOp op) {
  Emitter e(b, op.getLoc());
  Value data = op.getData(), indices = op.getIndices();
  int64_t r = rankOf(data), q = rankOf(indices);
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), r);
  if (failed(axis))
    return failure();
  // output[i.., j.., k..] = data[i.., indices[j..], k..]
  SmallVector<OpFoldResult> in = e.sizes(data), idx = e.sizes(indices), out;
  out.append(in.begin(), in.begin() + *axis);
  out.append(idx);
  out.append(in.begin() + *axis + 1, in.end());
  int64_t rank = r + q - 1;
  return Values{gatherGeneric(e, data, indices, *axis, out,
                              dimsMap(b.getContext(), rank, *axis, q),
                              [&](ArrayRef<Value> at, Value index) {
                                SmallVector<Value> from(at.take_front(*axis));
                                from.push_back(index);
                                from.append(at.begin() + *axis + q, at.end());
                                return from;
                              })};
}

Lowered lowerGatherElements(OpBuilder &b, onnx::GatherElementsOp op) {
  Emitter e(b, op.getLoc());
  Value data = op.getData(), indices = op.getIndices();
  int64_t rank = rankOf(data);
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), rank);
  if (failed(axis))
    return failure();
  if (rankOf(indices) != rank)
    return nodeError(op) << "indices must have the rank of data";
  // output[i] = data[i with indices[i] at axis]
  return Values{
      gatherGeneric(e, data, indices, *axis, e.sizes(indices),
                    AffineMap::getMultiDimIdentityMap(rank, b.getContext()),
                    [&](ArrayRef<Value> at, Value index) {
                      SmallVector<Value> from(at);
                      from[*axis] = index;
                      return from;
                    })};
}

Lowered lowerGatherND(OpBuilder &b, onnx::GatherNDOp op) {
  Emitter e(b, op.getLoc());
  Value data = op.getData(), indices = op.getIndices();
  int64_t r = rankOf(data), q = rankOf(indices);
  int64_t batch = op.getBatchDims();
  int64_t m = q ? rankedType(indices).getDimSize(q - 1) : ShapedType::kDynamic;
  if (ShapedType::isDynamic(m) || batch + m > r)
    return nodeError(op) << "the last dimension of indices must be static "
                            "and at most the data rank less batch_dims";
  SmallVector<OpFoldResult> in = e.sizes(data), idx = e.sizes(indices), out;
  out.append(idx.begin(), idx.end() - 1);
  out.append(in.begin() + batch + m, in.end());
  return Values{
      e.fromIndices(out, elementType(data), [&](Emitter &x, ValueRange at) {
        SmallVector<Value> row(at.begin(), at.begin() + (q - 1));
        SmallVector<Value> from(at.begin(), at.begin() + batch);
        for (int64_t c = 0; c < m; ++c) {
          SmallVector<Value> where(row);
          where.push_back(x.index(c));
          from.push_back(
              readIndex(x, x.extract(indices, where), x.dim(data, batch + c)));
        }
        from.append(at.begin() + (q - 1), at.end());
        return x.extract(data, from);
      })};
}

/// A scatter's `reduction`: none (nullopt), add, mul, max or min.
LogicalResult reductionOf(Operation *op, StringRef name,
                          std::optional<Combine> &how) {
  how = llvm::StringSwitch<std::optional<Combine>>(name)
            .Case("add", Combine::Add)
            .Case("mul", Combine::Mul)
            .Case("max", Combine::Max)
            .Case("min", Combine::Min)
            .Default(std::nullopt);
  if (name != "none" && !how)
    return nodeError(op) << "unsupported reduction = '" << name << "'";
  return success();
}

Lowered lowerScatterElements(OpBuilder &b, onnx::ScatterElementsOp op) {
  Emitter e(b, op.getLoc());
  Value data = op.getData(), indices = op.getIndices(),
        updates = op.getUpdates();
  int64_t rank = rankOf(data);
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), rank);
  if (failed(axis))
    return failure();
  std::optional<Combine> how;
  if (failed(reductionOf(op, op.getReduction(), how)))
    return failure();
  Type type = elementType(data);
  SmallVector<Value> ubs = e.dims(indices);
  Value size = e.dim(data, *axis);
  return Values{
      e.loops(ubs, data, [&](Emitter &in, ValueRange ivs, ValueRange args) {
         SmallVector<Value> at(ivs);
         at[*axis] = readIndex(in, in.extract(indices, ivs), size);
         Value u = in.extract(updates, ivs);
         if (how)
           u = combine(in.b, in.loc, *how, type, in.extract(args[0], at), u);
         return SmallVector<Value>{in.insert(u, args[0], at)};
       }).front()};
}

Lowered lowerScatterND(OpBuilder &b, onnx::ScatterNDOp op) {
  Emitter e(b, op.getLoc());
  Value data = op.getData(), indices = op.getIndices(),
        updates = op.getUpdates();
  int64_t r = rankOf(data), q = rankOf(indices);
  int64_t m = q ? rankedType(indices).getDimSize(q - 1) : ShapedType::kDynamic;
  if (ShapedType::isDynamic(m) || m > r)
    return nodeError(op) << "the last dimension of indices must be static "
                            "and at most the data rank";
  std::optional<Combine> how;
  if (failed(reductionOf(op, op.getReduction(), how)))
    return failure();
  Type type = elementType(data);
  SmallVector<Value> ubs = e.dims(indices, q - 1);
  int64_t rest = r - m;
  return Values{
      e.loops(ubs, data, [&](Emitter &in, ValueRange ivs, ValueRange args) {
         OpBuilder &nb = in.b;
         SmallVector<OpFoldResult> offsets, sizes, strides;
         SmallVector<OpFoldResult> uOffsets, uSizes, uStrides;
         for (int64_t c = 0; c < m; ++c) {
           SmallVector<Value> where(ivs);
           where.push_back(in.index(c));
           Value i = readIndex(in, in.extract(indices, where), in.dim(data, c));
           offsets.push_back(i);
           sizes.push_back(nb.getIndexAttr(1));
         }
         for (Value iv : ivs) {
           uOffsets.push_back(iv);
           uSizes.push_back(nb.getIndexAttr(1));
         }
         for (int64_t d = 0; d < rest; ++d) {
           OpFoldResult s = in.sizes(updates)[q - 1 + d];
           offsets.push_back(nb.getIndexAttr(0));
           sizes.push_back(s);
           uOffsets.push_back(nb.getIndexAttr(0));
           uSizes.push_back(s);
         }
         strides.assign(r, nb.getIndexAttr(1));
         uStrides.assign(rankOf(updates), nb.getIndexAttr(1));
         Value slice;
         if (rest == 0) {
           SmallVector<Value> at;
           for (OpFoldResult o : offsets)
             at.push_back(cast<Value>(o));
           Value u = in.extract(updates, ivs);
           if (how)
             u = combine(nb, in.loc, *how, type, in.extract(args[0], at), u);
           return SmallVector<Value>{in.insert(u, args[0], at)};
         }
         auto sliceType =
             tensor::ExtractSliceOp::inferCanonicalRankReducedResultType(
                 rest, rankedType(updates), uSizes);
         slice = tensor::ExtractSliceOp::create(nb, in.loc, sliceType, updates,
                                                uOffsets, uSizes, uStrides);
         if (!how)
           return SmallVector<Value>{
               in.insertInto(slice, args[0], offsets, sizes, strides)};
         // Combine in place: the old slice is the output.
         auto oldType =
             tensor::ExtractSliceOp::inferCanonicalRankReducedResultType(
                 rest, rankedType(args[0]), sizes);
         Value old = tensor::ExtractSliceOp::create(
             nb, in.loc, oldType, args[0], offsets, sizes, strides);
         if (old.getType() != slice.getType())
           slice = tensor::CastOp::create(nb, in.loc, old.getType(), slice);
         MLIRContext *ctx = nb.getContext();
         SmallVector<AffineMap> maps(
             2, AffineMap::getMultiDimIdentityMap(rest, ctx));
         SmallVector<utils::IteratorType> iterators(
             rest, utils::IteratorType::parallel);
         Value updated =
             in.generic(slice, old, maps, iterators,
                        [&](OpBuilder &bb, Location l, ValueRange xs) {
                          return SmallVector<Value>{
                              combine(bb, l, *how, type, xs[1], xs[0])};
                        })
                 .front();
         return SmallVector<Value>{tensor::InsertSliceOp::create(
             nb, in.loc, updated, args[0], offsets, sizes, strides)};
       }).front()};
}

Lowered lowerOneHot(OpBuilder &b, onnx::OneHotOp op) {
  Emitter e(b, op.getLoc());
  Value indices = op.getIndices();
  RankedTensorType type = rankedType(op.getOutput());
  int64_t rank = type.getRank();
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), rank);
  if (failed(axis))
    return failure();
  Type depthType = elementType(op.getDepth());
  Value depth = e.extractOnly(op.getDepth());
  depth = e.toIndex(castScalar(b, e.loc, depth, depthType, b.getI64Type()));
  Type valueType = elementType(op.getValues());
  Value off = e.extract(op.getValues(), e.index(0));
  Value on = e.extract(op.getValues(), e.index(1));
  SmallVector<OpFoldResult> sizes = e.sizes(indices);
  sizes.insert(sizes.begin() + *axis,
               type.isDynamicDim(*axis)
                   ? OpFoldResult(depth)
                   : OpFoldResult(b.getIndexAttr(type.getDimSize(*axis))));
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineExpr> exprs;
  for (int64_t d = 0; d < rank; ++d)
    if (d != *axis)
      exprs.push_back(getAffineDimExpr(d, ctx));
  SmallVector<AffineMap> maps{AffineMap::get(rank, 0, exprs, ctx),
                              AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  Type indexType = elementType(indices);
  Value init = e.empty(sizes, valueType);
  return Values{e.generic(indices, init, maps, iterators,
                          [&](OpBuilder &nb, Location l, ValueRange args) {
                            Emitter in(nb, l);
                            Value i = castScalar(nb, l, args[0], indexType,
                                                 nb.getI64Type());
                            i = in.wrapNegative(in.toIndex(i), depth);
                            Value here = linalg::IndexOp::create(nb, l, *axis);
                            Value hit =
                                arith::CmpIOp::create(nb, l, P::eq, i, here);
                            return SmallVector<Value>{
                                arith::SelectOp::create(nb, l, hit, on, off)};
                          })
                    .front()};
}

/// `x != 0` for a signless scalar of onnx type `type`.
Value isNonZero(OpBuilder &b, Location loc, Value x, Type type) {
  return castScalar(b, loc, x, type, b.getI1Type());
}

Lowered lowerNonZero(OpBuilder &b, onnx::NonZeroOp op) {
  Emitter e(b, op.getLoc());
  Value x = op.getX();
  Type type = elementType(x);
  int64_t rank = rankOf(x);
  MLIRContext *ctx = b.getContext();
  // Count the nonzero elements (a reduction), then write their coordinates.
  Value zero = e.filled({}, b.getI64Type(), e.scalar(b.getI64Type(), 0));
  SmallVector<AffineMap> maps{AffineMap::getMultiDimIdentityMap(rank, ctx),
                              AffineMap::get(rank, 0, {}, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::reduction);
  Value count = e.generic(x, zero, maps, iterators,
                          [&](OpBuilder &nb, Location l, ValueRange args) {
                            Value nz = isNonZero(nb, l, args[0], type);
                            Value one = arith::ExtUIOp::create(
                                nb, l, nb.getI64Type(), nz);
                            return SmallVector<Value>{
                                arith::AddIOp::create(nb, l, args[1], one)};
                          })
                    .front();
  Value n = e.toIndex(e.extract(count, {}));
  Value result =
      e.allocTensor({b.getIndexAttr(rank), OpFoldResult(n)}, b.getI64Type());
  SmallVector<Value> ubs = e.dims(x);
  SmallVector<Value> done =
      e.loops(ubs, ValueRange{result, e.index(0)},
              [&](Emitter &in, ValueRange ivs, ValueRange args) {
                Value nz = isNonZero(in.b, in.loc, in.extract(x, ivs), type);
                return ifThenElse(
                    in, nz, TypeRange(args),
                    [&](Emitter &t) {
                      Value r = args[0];
                      for (int64_t d = 0; d < rank; ++d)
                        r = t.insert(t.fromIndex(ivs[d], t.b.getI64Type()), r,
                                     ValueRange{t.index(d), args[1]});
                      return SmallVector<Value>{r, t.add(args[1], t.index(1))};
                    },
                    [&](Emitter &) { return SmallVector<Value>(args); });
              });
  return Values{done.front()};
}

Lowered lowerTrilu(OpBuilder &b, onnx::TriluOp op) {
  Emitter e(b, op.getLoc());
  Value input = op.getInput();
  int64_t rank = rankOf(input);
  if (rank < 2)
    return nodeError(op) << "input must have rank 2 or more";
  Value k = isa<NoneType>(op.getK().getType())
                ? e.index(0)
                : e.toIndex(e.extractOnly(op.getK()));
  bool upper = op.getUpper() != 0;
  Type type = elementType(input);
  return Values{e.broadcastGeneric(
      e.sizes(input), type, input,
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Emitter in(nb, l);
        Value i = linalg::IndexOp::create(nb, l, rank - 2);
        Value j = linalg::IndexOp::create(nb, l, rank - 1);
        Value diff = arith::SubIOp::create(nb, l, j, i);
        Value keep =
            arith::CmpIOp::create(nb, l, upper ? P::sge : P::sle, diff, k);
        return arith::SelectOp::create(nb, l, keep, args[0], in.scalar(type, 0))
            .getResult();
      })};
}

/// `x < y` and `x == y` for signless scalars of onnx type `type`.
Value lessThan(OpBuilder &b, Location loc, Type type, Value x, Value y) {
  if (isa<FloatType>(type))
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, y);
  bool isUnsigned = isUnsignedInt(type) || type.isInteger(1);
  return arith::CmpIOp::create(b, loc, isUnsigned ? P::ult : P::slt, x, y);
}
Value equalTo(OpBuilder &b, Location loc, Type type, Value x, Value y) {
  if (isa<FloatType>(type))
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, x, y);
  return arith::CmpIOp::create(b, loc, P::eq, x, y);
}

Lowered lowerTopK(OpBuilder &b, onnx::TopKOp op) {
  Emitter e(b, op.getLoc());
  Value x = op.getX();
  Type type = elementType(x);
  int64_t rank = rankOf(x);
  FailureOr<int64_t> axis = axisOf(op, op.getAxis(), rank);
  if (failed(axis))
    return failure();
  bool largest = op.getLargest() != 0;
  Value k = e.extractOnly(op.getK());
  k = e.toIndex(k);
  SmallVector<OpFoldResult> sizes = e.sizes(x);
  Value n = e.dim(x, *axis);
  RankedTensorType valuesType = rankedType(op.getValues());
  sizes[*axis] =
      valuesType.isDynamicDim(*axis)
          ? OpFoldResult(k)
          : OpFoldResult(b.getIndexAttr(valuesType.getDimSize(*axis)));
  Value values = e.allocTensor(sizes, type);
  Value indices = e.allocTensor(sizes, b.getI64Type());
  SmallVector<Value> ubs;
  for (int64_t d = 0; d < rank; ++d)
    if (d != *axis)
      ubs.push_back(e.dim(x, d));
  Value kCount = getValueOrCreateConstantIndexOp(b, e.loc, sizes[*axis]);
  // Order: a comes before b when it is larger (smaller) or equal and at a
  // lower index. Output j is the first element in that order after output
  // j - 1, found by a scan: O(n k) per row, no scratch memory.
  auto before = [&](OpBuilder &nb, Location l, Value va, Value ia, Value vb,
                    Value ib) {
    Value strict =
        largest ? lessThan(nb, l, type, vb, va) : lessThan(nb, l, type, va, vb);
    Value tie =
        arith::AndIOp::create(nb, l, equalTo(nb, l, type, va, vb),
                              arith::CmpIOp::create(nb, l, P::slt, ia, ib));
    return arith::OrIOp::create(nb, l, strict, tie).getResult();
  };
  SmallVector<Value> results = e.loops(
      ubs, ValueRange{values, indices},
      [&](Emitter &row, ValueRange outer, ValueRange tensors) {
        auto at = [&](Value i) {
          SmallVector<Value> coords(outer.begin(), outer.begin() + *axis);
          coords.push_back(i);
          coords.append(outer.begin() + *axis, outer.end());
          return coords;
        };
        Value first = row.scalar(row.b.getI1Type(), 1);
        SmallVector<Value> init{tensors[0], tensors[1], row.scalar(type, 0),
                                row.index(-1), first};
        SmallVector<Value> done = forLoop(
            row, row.index(0), kCount, init,
            [&](Emitter &step, Value j, ValueRange s) {
              Value prevV = s[2], prevI = s[3], isFirst = s[4];
              SmallVector<Value> scanInit{step.scalar(type, 0), step.index(-1)};
              SmallVector<Value> best = forLoop(
                  step, step.index(0), n, scanInit,
                  [&](Emitter &in, Value i, ValueRange cur) {
                    OpBuilder &nb = in.b;
                    Location l = in.loc;
                    Value v = in.extract(x, at(i));
                    Value after = arith::OrIOp::create(
                        nb, l, isFirst, before(nb, l, prevV, prevI, v, i));
                    Value none = arith::CmpIOp::create(nb, l, P::slt, cur[1],
                                                       in.index(0));
                    Value better = arith::OrIOp::create(
                        nb, l, none, before(nb, l, v, i, cur[0], cur[1]));
                    Value take = arith::AndIOp::create(nb, l, after, better);
                    return SmallVector<Value>{
                        arith::SelectOp::create(nb, l, take, v, cur[0]),
                        arith::SelectOp::create(nb, l, take, i, cur[1])};
                  });
              Value vs = step.insert(best[0], s[0], at(j));
              Value is = step.insert(
                  step.fromIndex(best[1], step.b.getI64Type()), s[1], at(j));
              return SmallVector<Value>{vs, is, best[0], best[1],
                                        step.scalar(step.b.getI1Type(), 0)};
            });
        return SmallVector<Value>{done[0], done[1]};
      });
  return Values{results[0], results[1]};
}

} // namespace

std::optional<Lowered>
mlir::moe::onnx_lowering::lowerIndexingOp(OpBuilder &b, Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<Lowered>>(op)
      .Case([&](onnx::GatherOp o) { return lowerGather(b, o); })
      .Case([&](onnx::GatherElementsOp o) { return lowerGatherElements(b, o); })
      .Case([&](onnx::GatherNDOp o) { return lowerGatherND(b, o); })
      .Case(
          [&](onnx::ScatterElementsOp o) { return lowerScatterElements(b, o); })
      .Case([&](onnx::ScatterNDOp o) { return lowerScatterND(b, o); })
      .Case([&](onnx::OneHotOp o) { return lowerOneHot(b, o); })
      .Case([&](onnx::NonZeroOp o) { return lowerNonZero(b, o); })
      .Case([&](onnx::TriluOp o) { return lowerTrilu(b, o); })
      .Case([&](onnx::TopKOp o) { return lowerTopK(b, o); })
      .Default(std::optional<Lowered>());
}
