//===- svd_bench.cpp - Randomised SVD settings on one hard residual -------===//
//
// One 4096 x 14336 residual shaped like a cluster member's: its own rank-16
// part (singular values decaying by 0.85, weight 0.75), three other
// members' rank-16 parts (weight -0.25 each: what subtracting the cluster
// mean leaves) and uniform noise, so singular values lie close together
// around rank 16.
// Each setting runs `reps` times, alternating with the others; the table
// gives min and median time and the error against the exact optimum
// (LAPACK, once).
//
//   svd-bench [--reps N] [--threads N] [--no-exact]
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Method/LowRank.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

using namespace mlir::moe::method;

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<float> hardResidual(int64_t m, int64_t n) {
  std::vector<float> a(static_cast<size_t>(m * n));
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(-1, 1);
  for (float &v : a)
    v = 0.0024f * u(gen);
  std::vector<float> p(static_cast<size_t>(m * 16)),
      q(static_cast<size_t>(16 * n));
  for (int member = 0; member < 4; ++member) {
    float weight = member == 0 ? 0.75f : -0.25f;
    for (int64_t i = 0; i < m; ++i)
      for (int j = 0; j < 16; ++j)
        p[i * 16 + j] =
            0.056f * u(gen) * std::pow(0.85f, static_cast<float>(j)) * weight;
    for (float &v : q)
      v = 0.056f * u(gen);
    for (int64_t i = 0; i < m; ++i) {
      float *row = a.data() + i * n;
      for (int j = 0; j < 16; ++j) {
        float pj = p[i * 16 + j];
        const float *qj = q.data() + j * n;
        for (int64_t c = 0; c < n; ++c)
          row[c] += pj * qj[c];
      }
    }
  }
  return a;
}

struct Setting {
  const char *name;
  SvdMethod method;
  int64_t oversample, iterations;
};

} // namespace

int main(int argc, char **argv) {
  int reps = 5, threads = 2;
  bool exact = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--no-exact"))
      exact = false;
    else {
      std::fprintf(stderr,
                   "usage: svd-bench [--reps N] [--threads N] [--no-exact]\n");
      return 2;
    }
  }
  const int64_t m = 4096, n = 14336, rank = 16;
  std::vector<float> a = hardResidual(m, n);
  ConstMatrixRef ref(a.data(), m, n);
  double optimum = 0;
  if (exact) {
    SvdOptions o;
    o.method = SvdMethod::Exact;
    o.threads = threads;
    optimum = truncatedSvd(ref, rank, o).relativeError;
    std::printf("optimum (exact rank-16 error) %.6f\n", optimum);
  }
  const Setting settings[] = {
      {"subspace q=2 p=8", SvdMethod::Randomized, 8, 2},
      {"subspace q=1 p=16", SvdMethod::Randomized, 16, 1},
      {"krylov q=2 p=32", SvdMethod::BlockKrylov, 32, 2},
      {"krylov q=3 p=16", SvdMethod::BlockKrylov, 16, 3},
      {"krylov q=3 p=24", SvdMethod::BlockKrylov, 24, 3},
      {"krylov q=4 p=24 (default)", SvdMethod::BlockKrylov, 24, 4}};
  const size_t count = sizeof(settings) / sizeof(settings[0]);
  std::vector<std::vector<double>> times(count);
  std::vector<double> errors(count);
  SvdWorkspace workspace;
  for (int r = 0; r < reps; ++r)
    for (size_t s = 0; s < count; ++s) {
      SvdOptions o;
      o.method = settings[s].method;
      o.oversample = settings[s].oversample;
      o.powerIterations = settings[s].iterations;
      o.threads = threads;
      o.workspace = &workspace;
      o.seed = 1;
      double t0 = now();
      LowRankFactors f = truncatedSvd(ref, rank, o);
      times[s].push_back(now() - t0);
      errors[s] = f.relativeError;
    }
  for (size_t s = 0; s < count; ++s) {
    std::vector<double> t = times[s];
    std::sort(t.begin(), t.end());
    std::printf("%-26s min %.3f s, median %.3f s, error %.6f", settings[s].name,
                t.front(), t[t.size() / 2], errors[s]);
    if (exact && optimum > 0)
      std::printf(", %.5f of the optimum", errors[s] / optimum);
    std::printf("\n");
  }
  return 0;
}
