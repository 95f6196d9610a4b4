//===- SmallGram.h - X X^T of a few long rows ------------------*- C++ -*-===//
//
// Internal to MoeMethod. The similarity of E experts' flattened weights is
// the Gram matrix of E rows of ~10^8 floats. For E up to 16 it is bound by
// memory bandwidth, and OpenBLAS's ssyrk, which packs each chunk and runs a
// kernel sized for large outputs, reached 11-12 GB/s where a plain read of
// the same rows reaches 29 (2 Zen 3 cores). This kernel reads each column
// once and keeps every pair's partial sums in vectors.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_METHOD_SMALLGRAM_H
#define MOE_MLIR_LIB_METHOD_SMALLGRAM_H

#include <cstdint>

namespace mlir::moe::method::detail {

/// The most rows smallGram takes.
constexpr int64_t kSmallGramRows = 16;

/// g[i * n + j] = sum_{c < width} x[i * ld + c] x[j * ld + c] for i <= j
/// (the upper triangle; the rest of g is left as it was), summed in float.
/// Returns false, touching nothing, when it does not apply (more than
/// kSmallGramRows rows, or no AVX2/FMA): the caller then uses ssyrk.
bool smallGram(const float *x, int64_t ld, int64_t n, int64_t width, float *g);

} // namespace mlir::moe::method::detail

#endif // MOE_MLIR_LIB_METHOD_SMALLGRAM_H
