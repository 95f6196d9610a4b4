//===- SmallGram.cpp - X X^T of a few long rows ---------------------------===//
//
// Tiles of 4 rows by 2 rows (8 vector sums, 6 loads per 8 FMAs) cover the
// upper triangle; the columns go by chunks of 512 so that the n rows' chunk
// (16 KiB at n = 8) stays in L1 while every tile passes over it, and each
// tile's sums wait in a small vector buffer between chunks.
//
//===----------------------------------------------------------------------===//

#include "SmallGram.h"

#include "Avx2.h"

#include <algorithm>
#include <vector>

namespace mlir::moe::method::detail {

#ifdef MOE_METHOD_AVX2
namespace {

constexpr int64_t kChunk = 512;
constexpr int kTileI = 4, kTileJ = 2;

/// sums[r][c] (8 lanes each) += the products of the R rows at xi with the
/// C rows at xj (both `ld` apart) over `len` columns.
template <int R, int C>
MOE_AVX2 void gramTile(const float *xi, const float *xj, int64_t ld,
                       int64_t len, float *sums) {
  __m256 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm256_loadu_ps(sums + (r * C + c) * 8);
  accumulatePairs(acc, xi, ld, xj, ld, len);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int c = 0; c < C; ++c)
      _mm256_storeu_ps(sums + (r * C + c) * 8, acc[r][c]);
}

using GramTile = void (*)(const float *, const float *, int64_t, int64_t,
                          float *);
// Indexed [rows - 1][columns - 1].
constexpr GramTile kTiles[kTileI][kTileJ] = {
    {&gramTile<1, 1>, &gramTile<1, 2>},
    {&gramTile<2, 1>, &gramTile<2, 2>},
    {&gramTile<3, 1>, &gramTile<3, 2>},
    {&gramTile<4, 1>, &gramTile<4, 2>}};

MOE_AVX2 void gramAvx2(const float *x, int64_t ld, int64_t n, int64_t width,
                       float *g) {
  struct Tile {
    int64_t i0, j0, rows, cols;
  };
  std::vector<Tile> tiles;
  for (int64_t i0 = 0; i0 < n; i0 += kTileI)
    for (int64_t j0 = i0; j0 < n; j0 += kTileJ)
      tiles.push_back({i0, j0, std::min<int64_t>(kTileI, n - i0),
                       std::min<int64_t>(kTileJ, n - j0)});
  // Each tile's 8 vectors of lane sums, as floats: std::vector does not
  // align __m256.
  constexpr int64_t kTileFloats = kTileI * kTileJ * 8;
  std::vector<float> sums(tiles.size() * kTileFloats, 0.0f);
  for (int64_t c0 = 0; c0 < width; c0 += kChunk) {
    int64_t len = std::min(kChunk, width - c0);
    for (size_t t = 0; t < tiles.size(); ++t) {
      const Tile &tile = tiles[t];
      kTiles[tile.rows - 1][tile.cols - 1](x + tile.i0 * ld + c0,
                                           x + tile.j0 * ld + c0, ld, len,
                                           sums.data() + t * kTileFloats);
    }
  }
  for (size_t t = 0; t < tiles.size(); ++t) {
    const Tile &tile = tiles[t];
    for (int64_t r = 0; r < tile.rows; ++r)
      for (int64_t c = 0; c < tile.cols; ++c) {
        int64_t i = tile.i0 + r, j = tile.j0 + c;
        if (i <= j)
          g[i * n + j] = horizontalSum(_mm256_loadu_ps(
              sums.data() + t * kTileFloats + (r * tile.cols + c) * 8));
      }
  }
}

} // namespace
#endif // MOE_METHOD_AVX2

bool smallGram(const float *x, int64_t ld, int64_t n, int64_t width, float *g) {
#ifdef MOE_METHOD_AVX2
  if (haveAvx2Fma() && n > 0 && n <= kSmallGramRows && width >= 0) {
    gramAvx2(x, ld, n, width, g);
    return true;
  }
#endif
  (void)x, (void)ld, (void)n, (void)width, (void)g;
  return false;
}

} // namespace mlir::moe::method::detail
