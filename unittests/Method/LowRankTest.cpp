//===- LowRankTest.cpp - Truncated SVD against LAPACK in double -----------===//

#include "moe-mlir/Method/LowRank.h"

#include <gtest/gtest.h>
#include <lapacke.h>

#include <cmath>
#include <random>

using namespace mlir::moe::method;

namespace {

/// Test data only needs to be reproducible on this machine's libstdc++.
std::vector<double> gaussian(int64_t count, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<size_t>(count));
  for (double &x : v)
    x = normal(gen);
  return v;
}

/// rows x cols column-major with orthonormal columns (rows >= cols).
std::vector<double> orthonormalColumns(int64_t rows, int64_t cols,
                                       unsigned seed) {
  std::vector<double> q = gaussian(rows * cols, seed), tau(cols);
  EXPECT_EQ(
      LAPACKE_dgeqrf(LAPACK_COL_MAJOR, rows, cols, q.data(), rows, tau.data()),
      0);
  EXPECT_EQ(LAPACKE_dorgqr(LAPACK_COL_MAJOR, rows, cols, cols, q.data(), rows,
                           tau.data()),
            0);
  return q;
}

/// rows x cols float matrix (row-major, leading dimension ld) with singular
/// values `s` (min(rows, cols) of them) and random singular vectors.
std::vector<float> withSpectrum(int64_t rows, int64_t cols, int64_t ld,
                                const std::vector<double> &s, unsigned seed) {
  int64_t k = static_cast<int64_t>(s.size());
  std::vector<double> u = orthonormalColumns(rows, k, seed);
  std::vector<double> v = orthonormalColumns(cols, k, seed + 1);
  std::vector<float> a(static_cast<size_t>(rows * ld), 1e30f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double sum = 0;
      for (int64_t c = 0; c < k; ++c)
        sum += u[i + c * rows] * s[c] * v[j + c * cols];
      a[i * ld + j] = static_cast<float>(sum);
    }
  return a;
}

std::vector<float> gaussianMatrix(int64_t rows, int64_t cols, unsigned seed) {
  std::vector<double> g = gaussian(rows * cols, seed);
  return std::vector<float>(g.begin(), g.end());
}

/// Singular values of the float matrix, computed independently in double.
std::vector<double> referenceSingularValues(ConstMatrixRef a) {
  int64_t m = a.rows, n = a.cols, k = std::min(m, n);
  std::vector<double> ad(static_cast<size_t>(m * n)), s(k), superb(k);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      ad[i * n + j] = a.row(i)[j];
  EXPECT_EQ(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', m, n, ad.data(), n,
                           s.data(), nullptr, 1, nullptr, 1, superb.data()),
            0);
  return s;
}

/// Eckart-Young: the best rank-r relative error, sum_{i>=r} s_i^2 / sum s_i^2.
double optimalError(const std::vector<double> &s, int64_t r) {
  double tail = 0, total = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    total += s[i] * s[i];
    if (static_cast<int64_t>(i) >= r)
      tail += s[i] * s[i];
  }
  return tail / total;
}

/// ||A - U^T V||^2 / ||A||^2 by brute force in double.
double directError(ConstMatrixRef a, const LowRankFactors &f) {
  double err = 0, total = 0;
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < a.cols; ++j) {
      double approx = 0;
      for (int64_t c = 0; c < f.rank; ++c)
        approx += double(f.u.row(c)[i]) * f.v.row(c)[j];
      double x = a.row(i)[j];
      err += (x - approx) * (x - approx);
      total += x * x;
    }
  return err / total;
}

constexpr SvdMethod kAllMethods[] = {SvdMethod::Exact, SvdMethod::Randomized,
                                     SvdMethod::BlockKrylov};

SvdOptions exactOptions() {
  SvdOptions o;
  o.method = SvdMethod::Exact;
  return o;
}

std::vector<double> powerSpectrum(int64_t k, double base) {
  std::vector<double> s(k);
  for (int64_t i = 0; i < k; ++i)
    s[i] = std::pow(base, static_cast<double>(i));
  return s;
}

std::vector<double> harmonicSpectrum(int64_t k) {
  std::vector<double> s(k);
  for (int64_t i = 0; i < k; ++i)
    s[i] = 1.0 / static_cast<double>(i + 1);
  return s;
}

TEST(LowRank, ExactMatchesEckartYoung) {
  struct Case {
    int64_t rows, cols, ld;
  };
  for (Case c : {Case{60, 90, 90}, Case{120, 50, 50}, Case{40, 70, 83}}) {
    std::vector<float> data = withSpectrum(
        c.rows, c.cols, c.ld, gaussian(std::min(c.rows, c.cols), 7), 3);
    // A Gaussian matrix too, whose spectrum is not planted.
    std::vector<float> plain = gaussianMatrix(c.rows, c.ld, 11);
    for (const std::vector<float> *m : {&data, &plain}) {
      ConstMatrixRef a(m->data(), c.rows, c.cols, c.ld);
      std::vector<double> ref = referenceSingularValues(a);
      for (int64_t rank : {1, 5, 20}) {
        LowRankFactors f = truncatedSvd(a, rank, exactOptions());
        ASSERT_TRUE(f.valid);
        ASSERT_EQ(f.rank, rank);
        ASSERT_EQ(f.u.rows, rank);
        ASSERT_EQ(f.u.cols, c.rows);
        ASSERT_EQ(f.v.cols, c.cols);
        double opt = optimalError(ref, rank);
        EXPECT_NEAR(f.relativeError, opt, 1e-4 * opt)
            << c.rows << "x" << c.cols << " rank " << rank;
        EXPECT_NEAR(directError(a, f), f.relativeError, 1e-5);
        for (int64_t i = 0; i < rank; ++i)
          EXPECT_NEAR(f.singularValues[i], ref[i], 1e-5 * ref[0]);
        double total = 0;
        for (double s : ref)
          total += s * s;
        EXPECT_NEAR(f.totalEnergy, total, 1e-6 * total);
      }
    }
  }
}

TEST(LowRank, RandomizedWithinTwoPercentOfOptimum) {
  const int64_t m = 300, n = 500;
  for (int spectrum = 0; spectrum < 2; ++spectrum) {
    std::vector<double> s =
        spectrum == 0 ? powerSpectrum(m, 0.9) : harmonicSpectrum(m);
    std::vector<float> data = withSpectrum(m, n, n, s, 21 + spectrum);
    ConstMatrixRef a(data.data(), m, n);
    std::vector<double> ref = referenceSingularValues(a);
    for (SvdMethod method : {SvdMethod::Randomized, SvdMethod::BlockKrylov})
      for (uint64_t seed : {0u, 1u, 2u}) {
        SvdOptions o;
        o.method = method;
        o.seed = seed;
        LowRankFactors f = truncatedSvd(a, 16, o);
        ASSERT_TRUE(f.valid);
        ASSERT_EQ(f.rank, 16);
        EXPECT_GE(f.singularValues.size(), 16u);
        double opt = optimalError(ref, 16);
        EXPECT_LE(f.relativeError, 1.02 * opt)
            << "spectrum " << spectrum << " seed " << seed << " method "
            << static_cast<int>(method);
        EXPECT_GE(f.relativeError, opt * (1 - 1e-4));
        EXPECT_NEAR(directError(a, f), f.relativeError, 1e-5);
      }
  }
}

TEST(LowRank, KrylovBlocksFollowDepthAndOversample) {
  // l = rank + oversample columns in q + 1 blocks of ceil(l / (q + 1)):
  // the sketch's singular values count them.
  std::vector<float> data = gaussianMatrix(120, 88, 6);
  ConstMatrixRef a(data.data(), 120, 88);
  SvdOptions o;
  o.method = SvdMethod::BlockKrylov;
  EXPECT_EQ(truncatedSvd(a, 16, o).singularValues.size(), 40u); // 5 x 8
  o.oversample = 8;
  o.powerIterations = 2;
  EXPECT_EQ(truncatedSvd(a, 16, o).singularValues.size(), 24u); // 3 x 8
  o.powerIterations = 4;
  EXPECT_EQ(truncatedSvd(a, 16, o).singularValues.size(), 25u); // 5 x 5
  // l = 86 in 5 blocks of 18 would outgrow min(rows, cols) = 88: 4 of 22.
  o.oversample = 70;
  EXPECT_EQ(truncatedSvd(a, 16, o).singularValues.size(), 88u); // 4 x 22
  EXPECT_EQ(effectiveOversample(SvdOptions()), 24);
  EXPECT_EQ(effectivePowerIterations(SvdOptions()), 4);
  SvdOptions subspace;
  subspace.method = SvdMethod::Randomized;
  EXPECT_EQ(effectiveOversample(subspace), 8);
  EXPECT_EQ(effectivePowerIterations(subspace), 2);
}

TEST(LowRank, RandomizedIsDeterministicPerSeed) {
  std::vector<float> data = gaussianMatrix(80, 120, 5);
  ConstMatrixRef a(data.data(), 80, 120);
  SvdOptions o;
  o.seed = 42;
  LowRankFactors f1 = truncatedSvd(a, 8, o), f2 = truncatedSvd(a, 8, o);
  EXPECT_EQ(f1.u.data, f2.u.data);
  EXPECT_EQ(f1.v.data, f2.v.data);
  EXPECT_EQ(f1.relativeError, f2.relativeError);
  o.seed = 43;
  LowRankFactors f3 = truncatedSvd(a, 8, o);
  EXPECT_NE(f1.u.data, f3.u.data);
  // One thread gives the same subspace up to rounding.
  o.seed = 42;
  o.threads = 1;
  LowRankFactors f4 = truncatedSvd(a, 8, o);
  EXPECT_NEAR(f4.relativeError, f1.relativeError, 1e-5);
}

TEST(LowRank, ExactLowRankIsRecovered) {
  std::vector<double> s = {5, 4, 3, 2, 1};
  std::vector<float> data = withSpectrum(64, 96, 96, s, 9);
  ConstMatrixRef a(data.data(), 64, 96);
  for (SvdMethod method : kAllMethods) {
    SvdOptions o;
    o.method = method;
    LowRankFactors f = truncatedSvd(a, 8, o);
    EXPECT_LT(f.relativeError, 1e-6);
    EXPECT_LT(directError(a, f), 1e-6);
  }
}

TEST(LowRank, DifferenceEqualsMaterialisedDifference) {
  std::vector<float> w = gaussianMatrix(50, 70, 1),
                     b = gaussianMatrix(50, 70, 2);
  std::vector<float> d(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    d[i] = w[i] - b[i];
  ConstMatrixRef wr(w.data(), 50, 70), br(b.data(), 50, 70),
      dr(d.data(), 50, 70);
  for (SvdMethod method : kAllMethods) {
    SvdOptions o;
    o.method = method;
    LowRankFactors viaBase = truncatedSvd(wr, br, 6, o);
    LowRankFactors direct = truncatedSvd(dr, 6, o);
    ASSERT_TRUE(viaBase.valid);
    EXPECT_EQ(viaBase.u.data, direct.u.data);
    EXPECT_EQ(viaBase.v.data, direct.v.data);
    EXPECT_EQ(viaBase.totalEnergy, direct.totalEnergy);
    EXPECT_EQ(viaBase.relativeError, direct.relativeError);
    LowRankFactors byEnergy = truncatedSvdByEnergy(wr, br, 0.5, 0, o);
    LowRankFactors byEnergyDirect = truncatedSvdByEnergy(dr, 0.5, 0, o);
    EXPECT_EQ(byEnergy.rank, byEnergyDirect.rank);
    EXPECT_EQ(byEnergy.relativeError, byEnergyDirect.relativeError);
  }
  ConstMatrixRef wrong(b.data(), 49, 70);
  EXPECT_FALSE(truncatedSvd(wr, wrong, 4, SvdOptions()).valid);
}

TEST(LowRank, WorkspaceReuseGivesTheSameFactors) {
  std::vector<float> w1 = gaussianMatrix(40, 60, 1),
                     b1 = gaussianMatrix(40, 60, 2);
  std::vector<float> w2 = gaussianMatrix(90, 70, 3),
                     b2 = gaussianMatrix(90, 70, 4);
  ConstMatrixRef a1(w1.data(), 40, 60), base1(b1.data(), 40, 60);
  ConstMatrixRef a2(w2.data(), 90, 70), base2(b2.data(), 90, 70);
  SvdOptions fresh;
  LowRankFactors expect1 = truncatedSvd(a1, base1, 5, fresh);
  LowRankFactors expect2 = truncatedSvd(a2, base2, 7, fresh);
  SvdWorkspace workspace;
  SvdOptions reuse;
  reuse.workspace = &workspace;
  // Small, then larger (the buffer grows), then small again, then another
  // seed (a new test matrix), each equal to a call without a workspace.
  for (int round = 0; round < 2; ++round) {
    LowRankFactors f1 = truncatedSvd(a1, base1, 5, reuse);
    LowRankFactors f2 = truncatedSvd(a2, base2, 7, reuse);
    EXPECT_EQ(f1.u.data, expect1.u.data);
    EXPECT_EQ(f1.v.data, expect1.v.data);
    EXPECT_EQ(f2.u.data, expect2.u.data);
    EXPECT_EQ(f2.relativeError, expect2.relativeError);
  }
  reuse.seed = fresh.seed = 9;
  EXPECT_EQ(truncatedSvd(a1, base1, 5, reuse).u.data,
            truncatedSvd(a1, base1, 5, fresh).u.data);
  reuse.method = fresh.method = SvdMethod::Exact;
  EXPECT_EQ(truncatedSvd(a2, base2, 7, reuse).v.data,
            truncatedSvd(a2, base2, 7, fresh).v.data);
  workspace.release();
  EXPECT_EQ(truncatedSvd(a1, 3, reuse).relativeError,
            truncatedSvd(a1, 3, fresh).relativeError);
}

/// The smallest r whose leading energy reaches `energy` of the total.
int64_t expectedRank(const std::vector<double> &s, double energy) {
  double total = 0, run = 0;
  for (double x : s)
    total += x * x;
  for (size_t r = 0; r < s.size(); ++r) {
    run += s[r] * s[r];
    if (run >= energy * total)
      return static_cast<int64_t>(r) + 1;
  }
  return static_cast<int64_t>(s.size());
}

TEST(LowRank, EnergyPicksSmallestRank) {
  const int64_t m = 200, n = 260;
  std::vector<float> data = withSpectrum(m, n, n, powerSpectrum(m, 0.9), 4);
  ConstMatrixRef a(data.data(), m, n);
  std::vector<double> ref = referenceSingularValues(a);
  std::vector<double> cumulative;
  double total = 0, run = 0;
  for (double x : ref)
    total += x * x;
  for (double x : ref)
    cumulative.push_back((run += x * x) / total);
  // Thresholds half-way between consecutive cumulative fractions, so the
  // answer does not hinge on rounding; r = 3 and 12 fit the first sketch,
  // r = 30 makes the randomised method grow it (16 -> 32).
  for (int64_t r : {3, 12, 30}) {
    double energy = (cumulative[r - 2] + cumulative[r - 1]) / 2;
    ASSERT_EQ(expectedRank(ref, energy), r);
    for (SvdMethod method : kAllMethods) {
      SvdOptions o;
      o.method = method;
      LowRankFactors f = truncatedSvdByEnergy(a, energy, 0, o);
      ASSERT_TRUE(f.valid);
      EXPECT_EQ(f.rank, r) << "energy " << energy;
      EXPECT_GE(1 - f.relativeError, energy - 1e-6);
      LowRankFactors capped = truncatedSvdByEnergy(a, energy, 5, o);
      EXPECT_EQ(capped.rank, std::min<int64_t>(r, 5));
    }
  }
  SvdOptions o;
  EXPECT_EQ(truncatedSvdByEnergy(a, 0.0, 0, o).rank, 0);
  EXPECT_EQ(truncatedSvdByEnergy(a, -1.0, 0, o).rank, 0);
}

TEST(LowRank, EnergyFallsBackToExactWhenTheSketchWouldBeFull) {
  // A flat Gaussian spectrum: 25 of 30 components are needed, more than
  // the first sketch trusts, and the next sketch would span everything.
  std::vector<float> data = gaussianMatrix(30, 40, 8);
  ConstMatrixRef a(data.data(), 30, 40);
  std::vector<double> ref = referenceSingularValues(a);
  double total = 0, before = 0, upTo = 0;
  for (double x : ref)
    total += x * x;
  for (int64_t i = 0; i < 25; ++i)
    (i < 24 ? before : upTo) += ref[i] * ref[i];
  upTo += before;
  double energy = (before + upTo) / 2 / total;
  LowRankFactors f = truncatedSvdByEnergy(a, energy, 0, SvdOptions());
  EXPECT_EQ(f.rank, 25);
  EXPECT_GE(1 - f.relativeError, energy - 1e-6);
  EXPECT_EQ(truncatedSvdByEnergy(a, 1.0, 0, SvdOptions()).rank, 30);
}

TEST(LowRank, DegenerateInputs) {
  std::vector<float> zeros(30 * 40, 0.0f);
  ConstMatrixRef z(zeros.data(), 30, 40);
  for (SvdMethod method : kAllMethods) {
    SvdOptions o;
    o.method = method;
    LowRankFactors f = truncatedSvd(z, 4, o);
    EXPECT_TRUE(f.valid);
    EXPECT_EQ(f.totalEnergy, 0);
    EXPECT_EQ(f.relativeError, 0);
    EXPECT_EQ(truncatedSvdByEnergy(z, 0.9, 0, o).rank, 0);
  }
  std::vector<float> data = gaussianMatrix(10, 12, 3);
  ConstMatrixRef a(data.data(), 10, 12);
  LowRankFactors none = truncatedSvd(a, 0, SvdOptions());
  EXPECT_EQ(none.rank, 0);
  EXPECT_EQ(none.relativeError, 1.0);
  EXPECT_GT(none.totalEnergy, 0);
  // Rank past min(rows, cols) is clamped; the full rank is exact.
  LowRankFactors all = truncatedSvd(a, 50, SvdOptions());
  EXPECT_EQ(all.rank, 10);
  EXPECT_LT(all.relativeError, 1e-6);
  std::vector<float> bad = data;
  bad[5] = NAN;
  EXPECT_FALSE(
      truncatedSvd(ConstMatrixRef(bad.data(), 10, 12), 3, exactOptions())
          .valid);
  EXPECT_FALSE(
      truncatedSvd(ConstMatrixRef(bad.data(), 10, 12), 3, SvdOptions()).valid);
}

} // namespace
