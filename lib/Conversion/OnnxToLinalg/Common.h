//===- Common.h - Shared pieces of convert-onnx-to-linalg -------*- C++ -*-===//
//
// Private to lib/Conversion/OnnxToLinalg. Each lowering builds the values
// that replace one onnx op's results with an Emitter (a builder and a
// location with folding index arithmetic and tensor helpers); the pass
// (OnnxToLinalg.cpp) casts them to the op's declared types and replaces the
// op. A lowering that cannot handle an op emits an error naming the node
// and returns failure.
//
// Value conventions: tensors keep their builtin types. Unsigned integer
// element types (ui8...) are not accepted by arith, so scalar code works on
// the signless type of the same width (signless(), fromSignless(); the
// cast is a builtin.unrealized_conversion_cast that the LLVM lowering
// reconciles) and chooses signed or unsigned operations from the onnx type.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_ONNXTOLINALG_COMMON_H
#define MOE_MLIR_LIB_CONVERSION_ONNXTOLINALG_COMMON_H

#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

#include <string>

namespace mlir::moe::onnx_lowering {

/// The values replacing an op's results, in order.
using Values = SmallVector<Value, 3>;
using Lowered = FailureOr<Values>;

/// A body for linalg.generic: block arguments in, the yielded value(s) out.
using BodyFn = function_ref<Value(OpBuilder &, Location, ValueRange)>;

//===- Diagnostics --------------------------------------------------------===//

/// `onnx.Op node 'name'` (the node name from the importer's NameLoc, when
/// there is one).
std::string describe(Operation *op);
/// An error at `op` that starts with describe(op) and ": ".
InFlightDiagnostic nodeError(Operation *op);

//===- Types --------------------------------------------------------------===//

RankedTensorType rankedType(Value value);
Type elementType(Value value);
inline int64_t rankOf(Value value) { return rankedType(value).getRank(); }
bool isUnsignedInt(Type type);
/// The signless integer type of the same width for unsigned ones.
Type signlessType(Type type);
/// The values of a 0-D or 1-D integer tensor when all are known at compile
/// time (constants and folded shape computations: getKnownIntValues).
std::optional<SmallVector<int64_t>> knownInts(Value value);

//===- The emitter --------------------------------------------------------===//

/// A builder at one location with the helpers every lowering uses. Index
/// arithmetic folds constants as it is built, so static shapes give static
/// IR.
struct Emitter {
  OpBuilder &b;
  Location loc;

  Emitter(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  // Index arithmetic.
  Value index(int64_t v);
  template <typename OpT> Value fold(Value x, Value y) {
    return b.createOrFold<OpT>(loc, x, y);
  }
  Value add(Value x, Value y) { return fold<arith::AddIOp>(x, y); }
  Value sub(Value x, Value y) { return fold<arith::SubIOp>(x, y); }
  Value mul(Value x, Value y) { return fold<arith::MulIOp>(x, y); }
  Value divSI(Value x, Value y) { return fold<arith::DivSIOp>(x, y); }
  Value remSI(Value x, Value y) { return fold<arith::RemSIOp>(x, y); }
  Value ceilDivSI(Value x, Value y) { return fold<arith::CeilDivSIOp>(x, y); }
  Value minSI(Value x, Value y) { return fold<arith::MinSIOp>(x, y); }
  Value maxSI(Value x, Value y) { return fold<arith::MaxSIOp>(x, y); }
  Value cmp(arith::CmpIPredicate pred, Value x, Value y);
  Value select(Value cond, Value x, Value y);
  /// `value` (any integer or index scalar) as an index.
  Value toIndex(Value value);
  /// An index as a signless integer of `type`.
  Value fromIndex(Value value, Type type);
  /// `position + size` when `position` is negative: ONNX's reading of
  /// negative indices (index values).
  Value wrapNegative(Value position, Value size);

  /// A run-time check (cf.assert) that `cond` holds, unless it folds to
  /// true; `message` says what failed.
  void check(Value cond, const Twine &message);

  // Scalars of element types.
  /// `v` as a constant of the (signless view of) `type`: float, int, i1.
  Value scalar(Type type, double v);
  /// The most negative / most positive value of `type` (-inf/+inf for
  /// floats).
  Value lowest(Type type);
  Value highest(Type type);
  Value signless(Value scalar);
  Value fromSignless(Value scalar, Type type);

  // Tensors.
  Value dim(Value tensor, int64_t d);
  /// The sizes of the first `count` dims of `tensor` (all when -1) as
  /// index values.
  SmallVector<Value> dims(Value tensor, int64_t count = -1);
  SmallVector<OpFoldResult> sizes(Value tensor);
  Value empty(ArrayRef<OpFoldResult> sizes, Type elementType);
  /// A fresh buffer (bufferization.alloc_tensor) for results assembled
  /// piece by piece (slices, loop-carried inserts): unlike tensor.empty it
  /// is never merged with another by CSE, which would force copies.
  Value allocTensor(ArrayRef<OpFoldResult> sizes, Type elementType);
  /// A tensor of `sizes` filled with `value` (a scalar of `elementType` in
  /// its signless form).
  Value filled(ArrayRef<OpFoldResult> sizes, Type elementType, Value value);
  /// Element `indices` of `tensor` (signless).
  Value extract(Value tensor, ValueRange indices);
  /// Element `i` of a 0-D or 1-D integer tensor, as an index.
  Value extractIndex(Value tensor, int64_t i);
  /// The only element of a one-element tensor of any rank (signless).
  Value extractOnly(Value tensor);
  /// `tensor` with element `indices` replaced by `value` (signless).
  Value insert(Value value, Value tensor, ValueRange indices);
  /// A 1-D tensor of index values as i64 (shape-tensor results).
  Value i64Vector(ArrayRef<OpFoldResult> values);
  /// `source` (same elements, row-major) with the shape `sizes`:
  /// tensor.expand_shape or collapse_shape when `sizes` provably regroup
  /// the dimensions, else tensor.reshape with a shape operand.
  Value reshape(Value source, ArrayRef<OpFoldResult> sizes);
  /// `dest` with `source` written at the slice (offsets, sizes, strides;
  /// `source` may drop unit dims): a linalg.copy into the extract_slice,
  /// inserted back, so that bufferization writes in place instead of
  /// emitting a strided memref.copy (which needs a runtime function).
  Value insertInto(Value source, Value dest, ArrayRef<OpFoldResult> offsets,
                   ArrayRef<OpFoldResult> sizes,
                   ArrayRef<OpFoldResult> strides);
  /// `source` expanded by `groups` into `sizes`: tensor.expand_shape, or
  /// tensor.reshape when a group has more than one dynamic size
  /// (expand-strided-metadata in MLIR 22 crashes on those memref views).
  Value expand(Value source, ArrayRef<ReassociationIndices> groups,
               ArrayRef<OpFoldResult> sizes);
  /// tensor.reshape of `source` to `sizes` (a shape operand built from
  /// them).
  Value reshapeWithShape(Value source, ArrayRef<OpFoldResult> sizes);
  /// Inserts size-1 dimensions at `axes` (sorted positions in the result).
  Value expandUnitDims(Value source, ArrayRef<int64_t> axes);
  /// Removes the size-1 dimensions `axes` (sorted).
  Value collapseUnitDims(Value source, ArrayRef<int64_t> axes);

  /// linalg.generic over `outputs`' shape (all parallel) reading `inputs`
  /// broadcast numpy-style to it and yielding body(inputs...). Sizes of
  /// the result: static ones from `outputs`, dynamic ones from the first
  /// input whose aligned size is not statically 1 (dynamic sizes are
  /// assumed equal).
  Value broadcastGeneric(ArrayRef<OpFoldResult> outSizes, Type outElement,
                         ValueRange inputs, BodyFn body);
  /// The sizes of broadcasting `inputs` to a result of `shape`: static ones
  /// from `shape`, dynamic ones from the first input whose aligned size is
  /// not statically 1. `counts[i]`, when given, is how many leading dims of
  /// input i take part (MatMul's batch dims).
  SmallVector<OpFoldResult> broadcastSizes(ArrayRef<int64_t> shape,
                                           ValueRange inputs,
                                           ArrayRef<int64_t> counts = {});
  /// A linalg.generic with `iterators` and maps whose block arguments are
  /// passed to `body` in signless form; results fromSignless'ed to the
  /// outputs' element types. `body` returns one value per output.
  ValueRange generic(
      ValueRange inputs, ValueRange outputs, ArrayRef<AffineMap> maps,
      ArrayRef<utils::IteratorType> iterators,
      function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange)> body);
  /// linalg.generic over a fresh tensor of `sizes` whose body only gets
  /// linalg.index values (the output coordinates) and returns the element.
  Value fromIndices(ArrayRef<OpFoldResult> sizes, Type element,
                    function_ref<Value(Emitter &, ValueRange)> body);
  /// A loop nest over [0, ubs) with tensor `iterArgs`.
  SmallVector<Value>
  loops(ArrayRef<Value> ubs, ValueRange iterArgs,
        function_ref<SmallVector<Value>(Emitter &, ValueRange ivs,
                                        ValueRange iterArgs)>
            body);
};

/// A map with `count` results, the identity over `rank` dims but for
/// broadcast (constant 0) dims of `operandShape` aligned right against a
/// result of `outSizes` (static 1 against a size that is not static 1).
AffineMap broadcastMap(MLIRContext *ctx, ArrayRef<int64_t> operandShape,
                       ArrayRef<OpFoldResult> outSizes);

/// `axis` normalised from [-rank, rank) into [0, rank), or an error naming
/// the node.
FailureOr<int64_t> axisOf(Operation *op, int64_t axis, int64_t rank);
/// The same for the op's `axis` attribute.
FailureOr<int64_t> axisOf(Operation *op, int64_t rank);

//===- Scalar semantics ---------------------------------------------------===//

/// Converts a signless scalar of onnx element type `from` to onnx type `to`
/// (ONNX Cast: float to int truncates toward zero, to bool is `!= 0`).
Value castScalar(OpBuilder &b, Location loc, Value v, Type from, Type to);

/// The ways two elements combine in reductions and scatters.
enum class Combine { Add, Mul, Max, Min };
/// `x (op) y` for signless scalars of onnx element type `type` (float max
/// and min propagate NaN; integers compare signed or unsigned by `type`).
Value combine(OpBuilder &b, Location loc, Combine how, Type type, Value x,
              Value y);
/// The identity element of `how` for `type` (0, 1, lowest, highest).
Value combineIdentity(Emitter &e, Combine how, Type type);

//===- Lowerings by family ------------------------------------------------===//

/// Each returns std::nullopt when `op` is not of its family.
std::optional<Lowered> lowerElementwise(OpBuilder &b, Operation *op);
std::optional<Lowered> lowerShapeOp(OpBuilder &b, Operation *op);
std::optional<Lowered> lowerIndexingOp(OpBuilder &b, Operation *op);
std::optional<Lowered> lowerReductionOp(OpBuilder &b, Operation *op);
std::optional<Lowered> lowerContraction(OpBuilder &b, Operation *op);

} // namespace mlir::moe::onnx_lowering

#endif // MOE_MLIR_LIB_CONVERSION_ONNXTOLINALG_COMMON_H
