//===- RowDots.h - Y^T = X^T A^T for a skinny sketch ------------*- C++ -*-===//
//
// Internal to MoeMethod. Every pass of the randomised SVD multiplies a big
// row-major block of the residual (rows x n, n ~ 14336) by a sketch of only
// l = 8 to 40 vectors. This is the product with the residual's rows as dot
// products; single-threaded: the callers split rows between threads.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_METHOD_ROWDOTS_H
#define MOE_MLIR_LIB_METHOD_ROWDOTS_H

#include <cstdint>

namespace mlir::moe::method::detail {

/// yt[c * ldy + i] = sum_j xt[c * ldx + j] * a[i * lda + j] for c < l,
/// i < rows, j < n (Y^T = X^T A^T in the SVD's wide form).
void rowDots(const float *a, int64_t lda, int64_t rows, int64_t n,
             const float *xt, int64_t ldx, int64_t l, float *yt, int64_t ldy);

} // namespace mlir::moe::method::detail

#endif // MOE_MLIR_LIB_METHOD_ROWDOTS_H
