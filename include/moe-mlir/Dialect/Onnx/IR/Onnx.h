//===- Onnx.h - The onnx dialect: dialect, interfaces, ops ------*- C++ -*-===//
//
// One header for users of the dialect: the generated pieces, the ONNX data
// type codes, and the helpers shape inference and the raising passes share.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_DIALECT_ONNX_IR_ONNX_H
#define MOE_MLIR_DIALECT_ONNX_IR_ONNX_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

#include "moe-mlir/Dialect/Onnx/IR/OnnxDialect.h.inc"
#include "moe-mlir/Dialect/Onnx/IR/OnnxInterfaces.h.inc"

#define GET_OP_CLASSES
#include "moe-mlir/Dialect/Onnx/IR/OnnxOps.h.inc"

namespace mlir::onnx {

/// The element type for an ONNX TensorProto.DataType code (1 f32, 2 ui8,
/// 3 i8, 4 ui16, 5 i16, 6 i32, 7 i64, 9 i1, 10 f16, 11 f64, 12 ui32,
/// 13 ui64, 14/15 complex, 16 bf16, 17-20 float8, 21 ui4, 22 i4,
/// 23 f4E2M1FN), or null for string (8) and unknown codes.
Type getElementTypeForDataType(MLIRContext *context, int64_t code);

/// The inverse of getElementTypeForDataType.
std::optional<int64_t> getDataTypeForElementType(Type type);

/// The values of a 0-D or 1-D integer tensor as far as they are known, in
/// row-major order; an unknown entry is ShapedType::kDynamic. Sees through
/// constants (any ConstantLike op) and shape computations: onnx.Shape of a
/// ranked tensor, and Gather, Slice, Concat, Unsqueeze, Squeeze, Reshape,
/// Identity, Cast, Add, Sub, Mul, Div of known values. Nullopt when not
/// even the number of entries is known. (A constant entry equal to
/// INT64_MIN, the value of kDynamic, reads as unknown.)
std::optional<SmallVector<int64_t>> getKnownIntValues(Value value);

/// Meets result `index` of `op` with `inferred`: a static declared size
/// stays, a dynamic one takes the inferred size; an unranked declared type
/// is replaced (element type included: the importer uses tensor<*xf32> for
/// results it knows nothing about). Fails with an error on a conflict.
LogicalResult refineResultType(Operation *op, unsigned index, Type inferred);

} // namespace mlir::onnx

#endif // MOE_MLIR_DIALECT_ONNX_IR_ONNX_H
