//===- WeightAccess.h - Reading and making weight constants -----*- C++ -*-===//
//
// The compression passes read expert weights from constants (`dense` or
// `dense_resource`) in place when they are float32, and write their results
// as new `dense_resource` blobs that take ownership of the computed buffers,
// so a layer's weights are never copied more than once.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_DIALECT_MOE_TRANSFORMS_WEIGHTACCESS_H
#define MOE_MLIR_DIALECT_MOE_TRANSFORMS_WEIGHTACCESS_H

#include "moe-mlir/Method/Matrix.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"

#include <vector>

namespace mlir::moe {

/// A constant float weight as float32: a view into the IR's own storage
/// when it is float32 and not a splat, else a widened copy.
class FloatWeight {
public:
  const float *data() const { return ptr; }
  ArrayRef<int64_t> shape() const { return dims; }
  int64_t size() const;
  /// The weight as a matrix of its leading dims flattened (rows) by its last
  /// dim (cols), starting `offset` rows in.
  method::ConstMatrixRef matrix(int64_t rowOffset, int64_t rows) const;

  /// Reads `value`, which must be a float constant (`arith.constant` with a
  /// dense or dense_resource attribute) or, for a quantised weight, a
  /// `moe.quantized_weight` of constants (dequantised). Errors are reported
  /// on `user` naming `name`.
  static FailureOr<FloatWeight> read(Value value, Operation *user,
                                     StringRef name);

private:
  const float *ptr = nullptr;
  SmallVector<int64_t> dims;
  std::vector<float> owned;
};

/// Raw little-endian bytes of a constant tensor (dense or dense_resource),
/// or failure with a diagnostic on `user` naming `name`.
FailureOr<ArrayRef<char>> readConstantBytes(Value value, Operation *user,
                                            StringRef name,
                                            std::vector<char> &storage);

/// An `arith.constant` of `type` holding `bytes` as a dense_resource blob
/// named after `nameHint` (made unique). Takes ownership of `bytes`.
Value makeResourceConstant(OpBuilder &builder, Location loc,
                           RankedTensorType type, std::vector<char> bytes,
                           StringRef nameHint);

/// The same for float data in a float tensor type (f32, f16 or bf16);
/// values are rounded to the element type.
Value makeFloatConstant(OpBuilder &builder, Location loc,
                        RankedTensorType type, std::vector<float> values,
                        StringRef nameHint);

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECT_MOE_TRANSFORMS_WEIGHTACCESS_H
