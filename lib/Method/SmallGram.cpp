//===- SmallGram.cpp - X X^T of a few long rows ---------------------------===//
//
// Tiles of 4 rows by 2 rows (8 vector sums, 6 loads per 8 FMAs) cover the
// upper triangle; the columns go by chunks of 512 so that the n rows' chunk
// (16 KiB at n = 8) stays in L1 while every tile passes over it, and each
// tile's sums wait in a small vector buffer between chunks.
//
//===----------------------------------------------------------------------===//

#include "SmallGram.h"

#include <algorithm>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MOE_SMALLGRAM_AVX2 1
#include <immintrin.h>
#endif

namespace mlir::moe::method::detail {

#ifdef MOE_SMALLGRAM_AVX2
namespace {

#define MOE_AVX2 __attribute__((target("avx2,fma")))

constexpr int64_t kChunk = 512;
constexpr int kTileI = 4, kTileJ = 2;

MOE_AVX2 inline __m256i lanesBelow(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// sums[r][c] += x_i[r] * x_j[c] over `len` columns (the last vector
/// masked), for the R rows at xi and the C rows at xj.
template <int R, int C>
MOE_AVX2 void gramTile(const float *const *xi, const float *const *xj,
                       int64_t len, float *sums) {
  __m256 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm256_loadu_ps(sums + (r * C + c) * 8);
  int64_t k = 0;
  for (; k + 8 <= len; k += 8) {
    __m256 b[C];
#pragma GCC unroll 2
    for (int c = 0; c < C; ++c)
      b[c] = _mm256_loadu_ps(xj[c] + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      __m256 a = _mm256_loadu_ps(xi[r] + k);
#pragma GCC unroll 2
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  if (k < len) {
    __m256i mask = lanesBelow(len - k);
    __m256 b[C];
#pragma GCC unroll 2
    for (int c = 0; c < C; ++c)
      b[c] = _mm256_maskload_ps(xj[c] + k, mask);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      __m256 a = _mm256_maskload_ps(xi[r] + k, mask);
#pragma GCC unroll 2
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int c = 0; c < C; ++c)
      _mm256_storeu_ps(sums + (r * C + c) * 8, acc[r][c]);
}

using GramTile = void (*)(const float *const *, const float *const *, int64_t,
                          float *);
// Indexed [rows - 1][columns - 1].
constexpr GramTile kTiles[kTileI][kTileJ] = {
    {&gramTile<1, 1>, &gramTile<1, 2>},
    {&gramTile<2, 1>, &gramTile<2, 2>},
    {&gramTile<3, 1>, &gramTile<3, 2>},
    {&gramTile<4, 1>, &gramTile<4, 2>}};

MOE_AVX2 float laneSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

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
  const float *xi[kTileI], *xj[kTileJ];
  for (int64_t c0 = 0; c0 < width; c0 += kChunk) {
    int64_t len = std::min(kChunk, width - c0);
    for (size_t t = 0; t < tiles.size(); ++t) {
      const Tile &tile = tiles[t];
      for (int64_t r = 0; r < tile.rows; ++r)
        xi[r] = x + (tile.i0 + r) * ld + c0;
      for (int64_t c = 0; c < tile.cols; ++c)
        xj[c] = x + (tile.j0 + c) * ld + c0;
      kTiles[tile.rows - 1][tile.cols - 1](xi, xj, len,
                                           sums.data() + t * kTileFloats);
    }
  }
  for (size_t t = 0; t < tiles.size(); ++t) {
    const Tile &tile = tiles[t];
    for (int64_t r = 0; r < tile.rows; ++r)
      for (int64_t c = 0; c < tile.cols; ++c) {
        int64_t i = tile.i0 + r, j = tile.j0 + c;
        if (i <= j)
          g[i * n + j] = laneSum(_mm256_loadu_ps(sums.data() + t * kTileFloats +
                                                 (r * tile.cols + c) * 8));
      }
  }
}

} // namespace
#endif // MOE_SMALLGRAM_AVX2

bool smallGram(const float *x, int64_t ld, int64_t n, int64_t width, float *g) {
#ifdef MOE_SMALLGRAM_AVX2
  static const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2 && n > 0 && n <= kSmallGramRows && width >= 0) {
    gramAvx2(x, ld, n, width, g);
    return true;
  }
#endif
  (void)x, (void)ld, (void)n, (void)width, (void)g;
  return false;
}

} // namespace mlir::moe::method::detail
