//===- OnnxDetail.h - Shared pieces of the onnx dialect ---------*- C++ -*-===//
//
// Private to lib/Dialect/Onnx/IR: the bodies the op classes of OnnxOps.td
// call (generated code includes this through OnnxOps.cpp), and the small
// shape and constant utilities the verifiers, shape inference and folders
// share.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_DIALECT_ONNX_IR_ONNXDETAIL_H
#define MOE_MLIR_LIB_DIALECT_ONNX_IR_ONNXDETAIL_H

#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include <string>

namespace mlir::onnx::util {

//===- Bodies of the op classes -------------------------------------------===//

LogicalResult inferSameAsOperand(Operation *op, unsigned operand);
/// Broadcasts every tensor operand; the element type is that of operand
/// `elementFrom`, or i1 when it is -1.
LogicalResult inferBroadcast(Operation *op, int elementFrom);
LogicalResult inferReduce(Operation *op, bool keepdims, bool noopWithEmptyAxes);
LogicalResult inferArgReduce(Operation *op, int64_t axis, bool keepdims);
LogicalResult verifyBroadcast(Operation *op);
LogicalResult verifyReduce(Operation *op);
/// Checks `axis` against the rank of `value` (nothing when unranked):
/// [-r, r), or [-r, r] when `inclusive`.
LogicalResult verifyAxis(Operation *op, StringRef name, int64_t axis,
                         Value value, bool inclusive = false);
LogicalResult verifyAxisForRank(Operation *op, StringRef name, int64_t axis,
                                int64_t rank, bool inclusive = false);
/// The constant folder of every op with `hasFolder` (OnnxFold.cpp).
OpFoldResult foldOp(Operation *op, ArrayRef<Attribute> operands);

//===- Utilities ----------------------------------------------------------===//

constexpr int64_t kDyn = ShapedType::kDynamic;

/// The shape of a ranked tensor value, nullopt otherwise.
std::optional<SmallVector<int64_t>> shapeOf(Value value);
/// The rank of a ranked tensor value, -1 otherwise.
int64_t rankOf(Value value);
/// The element type of a tensor value, null for none.
Type elementTypeOf(Value value);
bool isNone(Value value);

/// `3x?x4`, or `()` for rank 0.
std::string shapeString(ArrayRef<int64_t> shape);

/// Numpy broadcast of two shapes with dynamic sizes; false when two static
/// sizes other than 1 differ.
bool broadcastShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b,
                     SmallVectorImpl<int64_t> &result);

/// Meets two sizes: the static one wins; false when both static and differ.
bool meetDim(int64_t a, int64_t b, int64_t &result);

/// Product of sizes, kDyn if any is dynamic.
int64_t product(ArrayRef<int64_t> sizes);

/// Normalises `axes` against `rank` into [0, rank); emits an error naming
/// operand `name` for an entry out of range or a duplicate.
FailureOr<SmallVector<int64_t>> normalizeAxes(Operation *op, StringRef name,
                                              ArrayRef<int64_t> axes,
                                              int64_t rank);

/// One term of an einsum equation: its labels in order, and where among
/// them `...` stands (-1 when it does not).
struct EinsumTerm {
  std::string labels;
  int64_t ellipsis = -1;
};
struct EinsumSpec {
  SmallVector<EinsumTerm> inputs;
  EinsumTerm output; ///< explicit, or numpy's implicit output
};
/// Parses `equation` (spaces ignored), emitting an error when malformed.
FailureOr<EinsumSpec> parseEinsum(Operation *op, StringRef equation);

/// A small constant tensor with its values widened: integers (and i1) to
/// int64, floats to double.
struct ConstTensor {
  RankedTensorType type;
  SmallVector<int64_t> ints;
  SmallVector<double> floats;

  bool isFloat() const { return isa<FloatType>(type.getElementType()); }
  int64_t size() const { return type.getNumElements(); }
  ArrayRef<int64_t> shape() const { return type.getShape(); }
};

/// Elements above which folders leave tensors alone.
constexpr int64_t kFoldLimit = 1 << 16;

/// Reads a dense or dense_resource integer or float attribute of at most
/// `limit` elements.
std::optional<ConstTensor> readConstant(Attribute attr,
                                        int64_t limit = kFoldLimit);
/// The constant value of `value` when it is produced by a constant op.
std::optional<ConstTensor> constantOf(Value value, int64_t limit = kFoldLimit);
/// The DenseElementsAttr holding `tensor` (values narrowed to its type).
DenseElementsAttr writeConstant(const ConstTensor &tensor);

} // namespace mlir::onnx::util

#endif // MOE_MLIR_LIB_DIALECT_ONNX_IR_ONNXDETAIL_H
