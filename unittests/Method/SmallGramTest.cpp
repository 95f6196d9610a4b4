//===- SmallGramTest.cpp - The similarity's Gram kernel against doubles ---===//

#include "SmallGram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using mlir::moe::method::detail::kSmallGramRows;
using mlir::moe::method::detail::smallGram;

namespace {

/// Row counts that leave partial 4 x 2 tiles, widths that end mid-vector
/// and cross the 512-column chunks, a padded leading dimension; the lower
/// triangle is left alone.
TEST(SmallGram, MatchesDoubleSums) {
  for (int64_t n : {1, 2, 3, 5, 8, 11, 16})
    for (int64_t width : {7, 8, 100, 1500}) {
      int64_t ld = width + 5;
      std::mt19937 gen(static_cast<unsigned>(n * 1000 + width));
      std::normal_distribution<float> normal;
      std::vector<float> x(static_cast<size_t>(n * ld));
      for (float &v : x)
        v = normal(gen);
      std::vector<float> g(static_cast<size_t>(n * n), -7.0f);
      if (!smallGram(x.data(), ld, n, width, g.data()))
        GTEST_SKIP() << "no AVX2/FMA on this machine";
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          if (j < i) {
            EXPECT_EQ(g[i * n + j], -7.0f);
            continue;
          }
          double ref = 0, scale = 0;
          for (int64_t c = 0; c < width; ++c) {
            ref += double(x[i * ld + c]) * x[j * ld + c];
            scale += std::fabs(double(x[i * ld + c]) * x[j * ld + c]);
          }
          EXPECT_NEAR(g[i * n + j], ref, 1e-6 * scale + 1e-6)
              << "n " << n << " width " << width << " (" << i << ", " << j
              << ")";
        }
    }
}

TEST(SmallGram, DeclinesManyRows) {
  std::vector<float> x((kSmallGramRows + 1) * 8, 1.0f), g(400, -7.0f);
  EXPECT_FALSE(smallGram(x.data(), 8, kSmallGramRows + 1, 8, g.data()));
  EXPECT_EQ(g[0], -7.0f);
}

} // namespace
