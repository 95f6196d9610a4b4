//===- SymbolicDims.h - Dynamic sizes as products of symbols ----*- C++ -*-===//
//
// Exporters rebuild the token count from Shape/Gather/Mul/Concat chains
// (batch * seq) instead of reusing one value, so proving that two dynamic
// sizes are equal needs a little algebra: every size is written as
// coefficient * product of opaque symbols, a symbol being a dynamic
// dimension no rule explains (a graph input's batch or sequence length).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_SYMBOLICDIMS_H
#define MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_SYMBOLICDIMS_H

#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>
#include <utility>

namespace mlir::moe {

/// coeff * s1 * s2 * ... with the symbols sorted, so equal sizes compare
/// equal.
struct DimExpr {
  int64_t coeff = 1;
  SmallVector<std::pair<const void *, int64_t>, 2> symbols;

  static DimExpr constant(int64_t c) { return DimExpr{c, {}}; }
  static DimExpr symbol(Value v, int64_t dim);
  DimExpr operator*(const DimExpr &other) const;
  /// this / other when it divides exactly.
  std::optional<DimExpr> divide(const DimExpr &other) const;
  bool isConstant(int64_t c) const { return symbols.empty() && coeff == c; }
  bool operator==(const DimExpr &other) const {
    return coeff == other.coeff && symbols == other.symbols;
  }
};

/// Sizes of tensors and values of small integer tensors (shape
/// computations), symbolically; results are cached.
class SymbolicDims {
public:
  /// One entry per dimension of a ranked tensor; nullopt when unranked.
  std::optional<SmallVector<DimExpr>> shape(Value tensor);
  /// The entries of a 0-D or 1-D integer tensor, or nullopt when even one
  /// is not understood.
  std::optional<SmallVector<DimExpr>> values(Value tensor);

private:
  std::optional<SmallVector<DimExpr>> computeShape(Value tensor);
  std::optional<SmallVector<DimExpr>> computeValues(Value tensor);
  llvm::DenseMap<Value, std::optional<SmallVector<DimExpr>>> shapes, known;
};

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_SYMBOLICDIMS_H
