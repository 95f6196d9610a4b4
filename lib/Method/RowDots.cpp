//===- RowDots.cpp - Y^T = X^T A^T for a skinny sketch --------------------===//
//
// AVX2/FMA register tiles, chosen at run time; other machines call sgemm.
// A 4-row x 3-vector tile of dot products (7 loads per 12 FMAs) runs over
// column chunks: the 4 rows stream in runs long enough for the prefetchers,
// and the sketch's chunk, copied contiguous (its rows, like the
// residual's, are a multiple of 4 KiB apart and would share L1 sets),
// stays in L2. No packing of the residual: OpenBLAS packs it for every
// call, which at a sketch of 8 vectors costs about as much as the product
// (measured, one Zen 3 core, 146 x 14336 block: 54 GFLOP/s here against
// 31 for sgemm at l = 8; about equal at l = 24 and 40).
//
//===----------------------------------------------------------------------===//

#include "RowDots.h"

#include "Avx2.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

namespace mlir::moe::method::detail {
namespace {

int blasInt(int64_t v) { return static_cast<int>(v); }

/// Columns of one row-dot chunk. Each row is read in runs of 8 KiB, long
/// enough for the hardware prefetchers when the residual streams from
/// memory; the sketch's chunk (copied contiguous, 64 KiB at l = 8) stays in
/// L2 and the 4 rows' current lines in L1.
constexpr int64_t kDotChunk = 2048;
/// The widest sketch the tiles take (chunk 512 KiB, L2-sized).
constexpr int64_t kMaxVectors = 64;

#ifdef MOE_METHOD_AVX2

/// out[r * C + c] = sum_{j < len} a[r * lda + j] * xt[c * ldx + j].
template <int R, int C>
MOE_AVX2 void dotTile(const float *a, int64_t lda, const float *xt, int64_t ldx,
                      int64_t len, float *out) {
  __m256 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm256_setzero_ps();
  accumulatePairs(acc, a, lda, xt, ldx, len);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      out[r * C + c] = horizontalSum(acc[r][c]);
}

using DotTile = void (*)(const float *, int64_t, const float *, int64_t,
                         int64_t, float *);

// Indexed [rows - 1][vectors - 1].
constexpr DotTile kDotTiles[4][3] = {
    {&dotTile<1, 1>, &dotTile<1, 2>, &dotTile<1, 3>},
    {&dotTile<2, 1>, &dotTile<2, 2>, &dotTile<2, 3>},
    {&dotTile<3, 1>, &dotTile<3, 2>, &dotTile<3, 3>},
    {&dotTile<4, 1>, &dotTile<4, 2>, &dotTile<4, 3>}};
constexpr int kDotRows = 4, kDotVectors = 3;

void rowDotsAvx2(const float *a, int64_t lda, int64_t rows, int64_t n,
                 const float *xt, int64_t ldx, int64_t l, float *yt,
                 int64_t ldy) {
  float sums[kDotRows * kDotVectors];
  std::vector<float> chunk(static_cast<size_t>(l * kDotChunk));
  for (int64_t j0 = 0; j0 < n; j0 += kDotChunk) {
    int64_t len = std::min(kDotChunk, n - j0);
    for (int64_t c = 0; c < l; ++c)
      std::copy(xt + c * ldx + j0, xt + c * ldx + j0 + len,
                chunk.data() + c * len);
    for (int64_t i = 0; i < rows; i += kDotRows) {
      int64_t r = std::min<int64_t>(kDotRows, rows - i);
      for (int64_t c = 0; c < l; c += kDotVectors) {
        int64_t cs = std::min<int64_t>(kDotVectors, l - c);
        kDotTiles[r - 1][cs - 1](a + i * lda + j0, lda, chunk.data() + c * len,
                                 len, len, sums);
        for (int64_t ri = 0; ri < r; ++ri)
          for (int64_t ci = 0; ci < cs; ++ci) {
            float &dst = yt[(c + ci) * ldy + i + ri];
            float s = sums[ri * cs + ci];
            dst = j0 == 0 ? s : dst + s;
          }
      }
    }
  }
}

#endif // MOE_METHOD_AVX2

} // namespace

void rowDots(const float *a, int64_t lda, int64_t rows, int64_t n,
             const float *xt, int64_t ldx, int64_t l, float *yt, int64_t ldy) {
  if (rows <= 0 || l <= 0)
    return;
#ifdef MOE_METHOD_AVX2
  // Wide sketches (a full-rank exact SVD's check, large ranks) are GEMMs
  // that sgemm's blocking serves better than re-streaming the chunk.
  if (haveAvx2Fma() && n > 0 && l <= kMaxVectors)
    return rowDotsAvx2(a, lda, rows, n, xt, ldx, l, yt, ldy);
#endif
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasInt(l),
              blasInt(rows), blasInt(n), 1.0f, xt, blasInt(ldx), a,
              blasInt(lda), 0.0f, yt, blasInt(ldy));
}

} // namespace mlir::moe::method::detail
