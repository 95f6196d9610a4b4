//===- compress_bench.cpp - Clustering + low-rank residuals, timed --------===//
//
// The compression front end on one MoE layer: cosine similarity of the
// flattened weights of each kind (gate, up, down), fused; balanced
// clustering; the mean of each cluster; a randomised rank-r SVD of every
// expert's residual from its cluster mean. Reports GB of float32 weights per
// second over those stages, seconds per stage, peak RSS, and for the first
// residuals the randomised error against the Eckart-Young optimum.
//
// Default sizes are one Mixtral-8x7B layer (8 experts, 3 x 4096 x 14336,
// 5.6 GB); --experts/--rows/--cols/--clusters run smaller. Weights are
// random (no structure) and/or structured: expert = base of its planted
// cluster + a rank-16 part with decaying spectrum + noise.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Method/Clustering.h"
#include "moe-mlir/Method/LowRank.h"

#include <cblas.h>
#include <lapacke.h>
#include <sys/mman.h>
#include <sys/resource.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace mlir::moe::method;

namespace {

struct Options {
  int64_t experts = 8, rows = 4096, cols = 14336, clusters = 2, rank = 16;
  int64_t powerIterations = -1, oversample = -1, exactCheck = 1;
  int threads = 2;
  uint64_t seed = 1;
  std::string data = "both";
  std::string residuals = "fused";
  SvdMethod svd = SvdMethod::BlockKrylov;
};

void usage() {
  std::fprintf(
      stderr,
      "usage: compress-bench [--experts N] [--rows N] [--cols N] "
      "[--clusters N]\n"
      "  [--rank N] [--power-iterations N] [--oversample N] [--threads N]\n"
      "  [--data random|structured|both] [--residuals fused|in-svd]\n"
      "  [--svd krylov|randomized] [--exact-check N] [--seed N]\n"
      "--power-iterations, --oversample: the SVD method's defaults unless "
      "given\n"
      "--exact-check N: compare the first N residuals of the first kind with\n"
      "  their exact singular values (double Gram + dsyevd; slow at full "
      "size)\n");
}

bool parse(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h")
      return false;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "missing value for %s\n", arg.c_str());
      return false;
    }
    std::string value = argv[++i];
    char *end = nullptr;
    long long n = std::strtoll(value.c_str(), &end, 10);
    bool numeric = end && *end == '\0';
    if (arg == "--data") {
      o.data = value;
      if (value != "random" && value != "structured" && value != "both")
        return false;
      continue;
    }
    if (arg == "--residuals") {
      o.residuals = value;
      if (value != "fused" && value != "in-svd")
        return false;
      continue;
    }
    if (arg == "--svd") {
      if (value != "krylov" && value != "randomized")
        return false;
      o.svd =
          value == "krylov" ? SvdMethod::BlockKrylov : SvdMethod::Randomized;
      continue;
    }
    if (!numeric || n < 0) {
      std::fprintf(stderr, "%s needs a non-negative integer\n", arg.c_str());
      return false;
    }
    if (arg == "--experts")
      o.experts = n;
    else if (arg == "--rows")
      o.rows = n;
    else if (arg == "--cols")
      o.cols = n;
    else if (arg == "--clusters")
      o.clusters = n;
    else if (arg == "--rank")
      o.rank = n;
    else if (arg == "--power-iterations")
      o.powerIterations = n;
    else if (arg == "--oversample")
      o.oversample = n;
    else if (arg == "--threads")
      o.threads = static_cast<int>(n);
    else if (arg == "--exact-check")
      o.exactCheck = n;
    else if (arg == "--seed")
      o.seed = static_cast<uint64_t>(n);
    else {
      std::fprintf(stderr, "unknown option %s\n", arg.c_str());
      return false;
    }
  }
  return o.experts > 0 && o.rows > 0 && o.cols > 0 && o.clusters > 0 &&
         o.threads > 0;
}

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double peakRssGiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / (1024.0 * 1024.0); // ru_maxrss is in KiB
}

/// Uninitialised floats in transparent huge pages: first touch of 4 KiB
/// pages runs at 0.7 GB/s on this kind of VM, which would dominate the
/// generation of 5.6 GB and every per-kind buffer.
class HugeArray {
public:
  explicit HugeArray(int64_t count)
      : bytes(static_cast<size_t>(std::max<int64_t>(count, 1)) *
              sizeof(float)) {
    void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    madvise(p, bytes, MADV_HUGEPAGE);
    ptr = static_cast<float *>(p);
  }
  ~HugeArray() { munmap(ptr, bytes); }
  HugeArray(const HugeArray &) = delete;
  HugeArray &operator=(const HugeArray &) = delete;
  float *get() { return ptr; }

private:
  size_t bytes;
  float *ptr;
};

/// dst[0..n) = src, bypassing the cache where SSE2 allows: the bases and
/// residuals are written once and read much later, so write-allocating
/// them would only add a read of every destination line. dst must be
/// 16-byte aligned.
void streamStore(float *dst, const float *src, int64_t n) {
  int64_t i = 0;
#ifdef __SSE2__
  for (; i + 4 <= n; i += 4)
    _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
#endif
  for (; i < n; ++i)
    dst[i] = src[i];
}

void streamFence() {
#ifdef __SSE2__
  _mm_sfence();
#endif
}

/// Runs body(begin, end) on `threads` contiguous slices of [0, n).
void parallel(int threads, int64_t n,
              const std::function<void(int64_t, int64_t)> &body) {
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(body, n * t / threads, n * (t + 1) / threads);
  body(0, n / threads);
  for (std::thread &th : pool)
    th.join();
}

/// Fast uniform floats in [-1, 1) from splitmix64; only needs to be cheap
/// (1.4 billion per layer) and reproducible.
struct FastRandom {
  uint64_t state;
  explicit FastRandom(uint64_t seed)
      : state(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() {
    return static_cast<float>(static_cast<int32_t>(next() >> 32)) * 0x1.0p-31f;
  }
};

/// dst[i] = scale * uniform, in parallel, reproducible per (seed, slice
/// of 2^20 elements).
void fillUniform(float *dst, int64_t n, float scale, uint64_t seed, int threads,
                 bool accumulate) {
  const int64_t slice = 1 << 20;
  parallel(threads, (n + slice - 1) / slice, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      FastRandom rng(seed * 1000003 + s);
      int64_t end = std::min(n, (s + 1) * slice);
      for (int64_t i = s * slice; i < end; ++i) {
        float v = scale * rng.uniform();
        dst[i] = accumulate ? dst[i] + v : v;
      }
    }
  });
}

struct Layer {
  int64_t experts, rows, cols;
  /// Per kind: E x rows x cols, expert-major like the IR's (E, out, in).
  std::unique_ptr<HugeArray> kinds[3];
  std::vector<int64_t> planted;
  int64_t matrixSize() const { return rows * cols; }
  float *expert(int kind, int64_t e) {
    return kinds[kind]->get() + e * matrixSize();
  }
};

const char *kKindNames[3] = {"gate", "up", "down"};

void generateRandom(Layer &layer, const Options &o) {
  for (int k = 0; k < 3; ++k)
    fillUniform(layer.kinds[k]->get(), layer.experts * layer.matrixSize(),
                0.02f, o.seed * 7 + k, o.threads, false);
  layer.planted.clear();
}

/// expert = base[planted cluster] + P Q (rank 16, column j of P scaled by
/// 0.85^j) + noise. Entry scales: base 0.02, low-rank part ~0.006, noise
/// 0.002 (uniform amplitudes), roughly the proportions of real experts'
/// shared and individual parts.
void generateStructured(Layer &layer, const Options &o) {
  const int64_t e = layer.experts, m = layer.rows, n = layer.cols;
  const int64_t g = std::min(o.clusters, e), lowRank = 16;
  layer.planted.assign(static_cast<size_t>(e), 0);
  for (int64_t i = 0; i < e; ++i)
    layer.planted[i] = i % g;
  FastRandom shuffle(o.seed);
  for (int64_t i = e - 1; i > 0; --i)
    std::swap(layer.planted[i], layer.planted[shuffle.next() % (i + 1)]);
  HugeArray baseArray(m * n);
  float *base = baseArray.get();
  std::vector<float> p(static_cast<size_t>(m * lowRank)),
      q(static_cast<size_t>(lowRank * n));
  // ||P Q||: entries ~ sqrt(16) * 0.577^2 * amp^2 -> amp ~ 0.056 for 0.006.
  const float amp = 0.056f;
  for (int k = 0; k < 3; ++k) {
    for (int64_t c = 0; c < g; ++c) {
      fillUniform(base, m * n, 0.02f, o.seed * 131 + k * 17 + c, o.threads,
                  false);
      for (int64_t x = 0; x < e; ++x) {
        if (layer.planted[x] != c)
          continue;
        float *w = layer.expert(k, x);
        fillUniform(w, m * n, 0.002f, o.seed * 977 + k * 31 + x, o.threads,
                    false);
        parallel(o.threads, m * n, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            w[i] += base[i];
        });
        fillUniform(p.data(), m * lowRank, amp, o.seed * 7919 + k * 37 + x,
                    o.threads, false);
        fillUniform(q.data(), lowRank * n, amp, o.seed * 104729 + k * 41 + x,
                    o.threads, false);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < lowRank; ++j)
            p[i * lowRank + j] *= std::pow(0.85f, static_cast<float>(j));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n),
                    int(lowRank), 1.0f, p.data(), int(lowRank), q.data(),
                    int(n), 1.0f, w, int(n));
      }
    }
  }
}

/// Best rank-r relative error of `a - base` from its exact spectrum: the
/// eigenvalues of the double Gram matrix D D^T are the squared singular
/// values (D^T D when cols < rows).
double optimalError(const float *a, const float *base, int64_t m, int64_t n,
                    int64_t rank) {
  bool wide = m <= n;
  int64_t k = wide ? m : n, len = wide ? n : m;
  std::vector<double> d(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m * n; ++i)
    d[i] = static_cast<double>(a[i]) - base[i];
  std::vector<double> gram(static_cast<size_t>(k * k)), w(k);
  cblas_dsyrk(CblasRowMajor, CblasUpper, wide ? CblasNoTrans : CblasTrans,
              int(k), int(len), 1.0, d.data(), int(n), 0.0, gram.data(),
              int(k));
  if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', int(k), gram.data(), int(k),
                     w.data()) != 0)
    return NAN;
  std::sort(w.begin(), w.end(), std::greater<double>());
  double total = 0, tail = 0;
  for (int64_t i = 0; i < k; ++i) {
    total += std::max(w[i], 0.0);
    if (i >= rank)
      tail += std::max(w[i], 0.0);
  }
  return total > 0 ? tail / total : 0.0;
}

void runOnce(Layer &layer, const Options &o, bool structured) {
  const int64_t e = layer.experts, m = layer.rows, n = layer.cols;
  const int64_t size = layer.matrixSize();
  const double bytes = 3.0 * e * size * sizeof(float);
  SvdOptions shown;
  shown.method = o.svd;
  shown.oversample = o.oversample;
  shown.powerIterations = o.powerIterations;
  std::printf(
      "\n== %s weights: %lld experts x 3 x %lld x %lld, %.2f GB "
      "f32, %lld clusters, rank %lld, %s q = %lld, oversample %lld, "
      "%d threads, residuals %s\n",
      structured ? "structured" : "random", (long long)e, (long long)m,
      (long long)n, bytes / 1e9, (long long)o.clusters, (long long)o.rank,
      o.svd == SvdMethod::BlockKrylov ? "block Krylov" : "subspace",
      (long long)effectivePowerIterations(shown),
      (long long)effectiveOversample(shown), o.threads, o.residuals.c_str());
  double t0 = now();
  if (structured)
    generateStructured(layer, o);
  else
    generateRandom(layer, o);
  std::printf("generation        %8.2f s (not counted)\n", now() - t0);

  // 1. Similarity of the flattened weights, per kind, fused.
  t0 = now();
  std::vector<Similarity> parts;
  for (int k = 0; k < 3; ++k) {
    CosineAccumulator acc(e, o.threads);
    acc.add(ConstMatrixRef(layer.kinds[k]->get(), e, size, size));
    parts.push_back(acc.finish());
  }
  Similarity fused = fuseSimilarities(parts, {1.0, 1.0, 1.0});
  double tSimilarity = now() - t0;

  // 2. Balanced clustering.
  t0 = now();
  ClusterOptions co;
  co.numClusters = o.clusters;
  co.seed = o.seed;
  std::vector<int64_t> assign = clusterExperts(fused, co);
  double tCluster = now() - t0;
  int64_t g = 0;
  for (int64_t c : assign)
    g = std::max(g, c + 1);

  // 3. Each cluster's base (the mean of its members, which the compiler
  // stores) and 4. the members' residual SVDs, one cluster at a time.
  // --residuals fused writes every member's residual in the same sweep that
  // forms the base (each weight is read once; one residual buffer per
  // member of the largest cluster); in-svd passes (W, base) to the SVD,
  // which forms the residual in its first pass (one buffer, but every
  // weight and base read again).
  SvdOptions so;
  so.method = o.svd;
  so.oversample = o.oversample;
  so.powerIterations = o.powerIterations;
  so.seed = o.seed;
  so.threads = o.threads;
  SvdWorkspace workspace;
  so.workspace = &workspace;
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(g));
  for (int64_t x = 0; x < e; ++x)
    members[assign[x]].push_back(x);
  size_t largest = 0;
  for (const auto &list : members)
    largest = std::max(largest, list.size());
  const bool fusedResiduals = o.residuals == "fused";
  HugeArray meanArray(size);
  float *mean = meanArray.get();
  std::vector<std::unique_ptr<HugeArray>> residuals;
  for (size_t j = 0; fusedResiduals && j < largest; ++j)
    residuals.push_back(std::make_unique<HugeArray>(size));
  // Fault every buffer in before timing: a compiler reuses them from layer
  // to layer, and first touch costs up to 1.4 s/GB on 4 KiB pages here.
  std::memset(mean, 0, sizeof(float) * size);
  for (auto &r : residuals)
    std::memset(r->get(), 0, sizeof(float) * size);
  if (!fusedResiduals)
    std::memset(workspace.floats(size), 0, sizeof(float) * size);
  double tMeans = 0, tSvd = 0, errSum = 0, errMax = 0;
  std::vector<double> firstErrors(static_cast<size_t>(e), NAN);
  std::vector<std::pair<int64_t, std::vector<float>>> checks;
  for (int k = 0; k < 3; ++k) {
    for (int64_t c = 0; c < g; ++c) {
      const std::vector<int64_t> &list = members[c];
      t0 = now();
      // Strips of 4096 (16 KiB, aligned): every member's strip, the mean and
      // a residual stay in L1/L2 while they are combined.
      const int64_t strip = 4096, strips = (size + strip - 1) / strip;
      parallel(o.threads, strips, [&](int64_t b0, int64_t b1) {
        std::vector<float> local(strip), diff(strip);
        float inv = 1.0f / static_cast<float>(list.size());
        for (int64_t b = b0; b < b1; ++b) {
          int64_t s0 = b * strip, len = std::min(size - s0, strip);
          std::memcpy(local.data(), layer.expert(k, list[0]) + s0,
                      sizeof(float) * len);
          for (size_t j = 1; j < list.size(); ++j) {
            const float *w = layer.expert(k, list[j]) + s0;
            for (int64_t i = 0; i < len; ++i)
              local[i] += w[i];
          }
          for (int64_t i = 0; i < len; ++i)
            local[i] *= inv;
          streamStore(mean + s0, local.data(), len);
          for (size_t j = 0; fusedResiduals && j < list.size(); ++j) {
            const float *w = layer.expert(k, list[j]) + s0;
            for (int64_t i = 0; i < len; ++i)
              diff[i] = w[i] - local[i];
            streamStore(residuals[j]->get() + s0, diff.data(), len);
          }
        }
        streamFence();
      });
      tMeans += now() - t0;

      t0 = now();
      for (size_t j = 0; j < list.size(); ++j) {
        int64_t x = list[j];
        LowRankFactors f =
            fusedResiduals
                ? truncatedSvd(ConstMatrixRef(residuals[j]->get(), m, n),
                               o.rank, so)
                : truncatedSvd(ConstMatrixRef(layer.expert(k, x), m, n),
                               ConstMatrixRef(mean, m, n), o.rank, so);
        errSum += f.relativeError;
        errMax = std::max(errMax, f.relativeError);
        if (k == 0)
          firstErrors[x] = f.relativeError;
      }
      tSvd += now() - t0;

      if (k == 0)
        for (int64_t x : list)
          if (x < o.exactCheck)
            checks.emplace_back(x, std::vector<float>(mean, mean + size));
    }
  }
  double total = tSimilarity + tCluster + tMeans + tSvd;

  std::printf("assignment        ");
  for (int64_t c : assign)
    std::printf("%lld ", (long long)c);
  if (structured) {
    // Same partition as the planted one (cluster names may differ).
    bool same = true;
    for (int64_t i = 0; i < e; ++i)
      for (int64_t j = 0; j < e; ++j)
        same &=
            (assign[i] == assign[j]) == (layer.planted[i] == layer.planted[j]);
    std::printf("(planted clusters %s)", same ? "recovered" : "NOT recovered");
  }
  std::printf("\nwithin-cluster similarity %.4f\n",
              withinClusterSimilarity(fused, assign));
  std::printf("similarity        %8.3f s\n", tSimilarity);
  std::printf("clustering        %8.3f s\n", tCluster);
  std::printf("bases%s %8.3f s\n",
              fusedResiduals ? " + residuals" : " (means)   ", tMeans);
  std::printf("residual SVDs     %8.3f s (%lld, %.3f s each)\n", tSvd,
              (long long)(3 * e), tSvd / (3 * e));
  std::printf("total             %8.3f s  ->  %.3f GB/s of f32 weights\n",
              total, bytes / 1e9 / total);
  std::printf("residual relative error (||R - U^T V||^2 / ||R||^2): mean "
              "%.5f, max %.5f\n",
              errSum / (3 * e), errMax);
  std::printf("peak RSS so far   %8.2f GiB (weights %.2f GiB)\n", peakRssGiB(),
              bytes / (1024.0 * 1024 * 1024));

  for (size_t i = 0; i < checks.size(); ++i) {
    int64_t x = checks[i].first;
    t0 = now();
    double opt =
        optimalError(layer.expert(0, x), checks[i].second.data(), m, n, o.rank);
    std::printf("exact check %s expert %lld: randomised %.6f, optimum "
                "%.6f, ratio %.5f (%.1f s)\n",
                kKindNames[0], (long long)x, firstErrors[x], opt,
                opt > 0 ? firstErrors[x] / opt : NAN, now() - t0);
  }
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    usage();
    return 2;
  }
  Layer layer;
  layer.experts = o.experts;
  layer.rows = o.rows;
  layer.cols = o.cols;
  for (auto &kind : layer.kinds)
    kind = std::make_unique<HugeArray>(o.experts * o.rows * o.cols);
  if (o.data == "random" || o.data == "both")
    runOnce(layer, o, false);
  if (o.data == "structured" || o.data == "both")
    runOnce(layer, o, true);
  std::printf("\npeak RSS          %8.2f GiB\n", peakRssGiB());
  return 0;
}
