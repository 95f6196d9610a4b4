//===- Avx2.h - What the method's AVX2 kernels share ------------*- C++ -*-===//
//
// Internal to MoeMethod. The kernels are compiled for AVX2/FMA through a
// target attribute and chosen at run time, so the library still builds and
// runs for any x86-64 (and elsewhere falls back to BLAS).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_METHOD_AVX2_H
#define MOE_MLIR_LIB_METHOD_AVX2_H

#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MOE_METHOD_AVX2 1
#include <immintrin.h>
#define MOE_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace mlir::moe::method::detail {

/// Whether this CPU runs the AVX2/FMA kernels.
inline bool haveAvx2Fma() {
#ifdef MOE_METHOD_AVX2
  static const bool have =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return have;
#else
  return false;
#endif
}

#ifdef MOE_METHOD_AVX2
/// Lanes [0, count) set: the mask of a vector's first `count` floats.
MOE_AVX2 inline __m256i lanesBelow(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

MOE_AVX2 inline float horizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// acc[r][c] += a[r * lda..] * b[c * ldb..] for one vector of columns
/// (its first lanes in `mask` when Masked). A function, not a lambda over
/// acc: GCC 12 spilled the accumulators of a capturing lambda.
template <int R, int C, bool Masked>
MOE_AVX2 inline void pairStep(__m256 (&acc)[R][C], const float *a, int64_t lda,
                              const float *b, int64_t ldb, __m256i mask) {
  __m256 x[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c)
    x[c] = Masked ? _mm256_maskload_ps(b + c * ldb, mask)
                  : _mm256_loadu_ps(b + c * ldb);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    __m256 v = Masked ? _mm256_maskload_ps(a + r * lda, mask)
                      : _mm256_loadu_ps(a + r * lda);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm256_fmadd_ps(v, x[c], acc[r][c]);
  }
}

/// acc[r][c] += sum_{j < len} a[r * lda + j] * b[c * ldb + j]: the
/// products of R rows with C rows over a run of columns.
template <int R, int C>
MOE_AVX2 inline void accumulatePairs(__m256 (&acc)[R][C], const float *a,
                                     int64_t lda, const float *b, int64_t ldb,
                                     int64_t len) {
  __m256i all = _mm256_set1_epi32(-1);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    pairStep<R, C, false>(acc, a + j, lda, b + j, ldb, all);
  if (j < len)
    pairStep<R, C, true>(acc, a + j, lda, b + j, ldb, lanesBelow(len - j));
}
#endif

} // namespace mlir::moe::method::detail

#endif // MOE_MLIR_LIB_METHOD_AVX2_H
