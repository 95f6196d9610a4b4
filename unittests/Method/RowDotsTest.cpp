//===- RowDotsTest.cpp - The SVD's row-dot kernel against double sums -----===//

#include "RowDots.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using mlir::moe::method::detail::rowDots;

namespace {

/// Shapes that hit every tail: rows not a multiple of the 4-row tile,
/// sketches not a multiple of the 3-vector tile, columns crossing the
/// 2048-column chunks and ending mid-vector, padded leading dimensions;
/// and a sketch of 70 vectors, past the tiles' 64, which takes sgemm.
TEST(RowDots, MatchesDoubleSums) {
  struct Shape {
    int64_t rows, n, l, lda, ldx, ldy;
  };
  for (Shape s :
       {Shape{7, 4100, 5, 4103, 4100, 9}, Shape{4, 2048, 3, 2048, 2050, 4},
        Shape{13, 37, 8, 40, 37, 13}, Shape{1, 5, 1, 5, 5, 1},
        Shape{146, 3000, 24, 3000, 3000, 146}}) {
    std::mt19937 gen(static_cast<unsigned>(s.rows * 131 + s.n));
    std::normal_distribution<float> normal;
    std::vector<float> a(static_cast<size_t>(s.rows * s.lda)),
        xt(static_cast<size_t>(s.l * s.ldx));
    for (float &v : a)
      v = normal(gen);
    for (float &v : xt)
      v = normal(gen);
    // Sentinels between the written entries must survive.
    std::vector<float> yt(static_cast<size_t>(s.l * s.ldy), 1234.5f);
    rowDots(a.data(), s.lda, s.rows, s.n, xt.data(), s.ldx, s.l, yt.data(),
            s.ldy);
    double err = 0, norm = 0;
    for (int64_t c = 0; c < s.l; ++c) {
      for (int64_t i = 0; i < s.rows; ++i) {
        double ref = 0;
        for (int64_t j = 0; j < s.n; ++j)
          ref += double(xt[c * s.ldx + j]) * a[i * s.lda + j];
        double d = yt[c * s.ldy + i] - ref;
        err += d * d;
        norm += ref * ref;
      }
      for (int64_t i = s.rows; i < s.ldy; ++i)
        EXPECT_EQ(yt[c * s.ldy + i], 1234.5f);
    }
    EXPECT_LT(std::sqrt(err / norm), 1e-6)
        << s.rows << " x " << s.n << ", l " << s.l;
  }
}

} // namespace
