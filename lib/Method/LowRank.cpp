//===- LowRank.cpp - Truncated SVD of expert residuals --------------------===//
//
// The randomised SVD works in "wide" form: every sketch is stored row-major
// as l x m or l x n, which is the column-major m x l / n x l matrix that
// LAPACK's QR wants, so no sketch is ever transposed. The two big products
// are Y^T = X^T A^T (RowDots.cpp: rows of A as dot products, no packing)
// and Z^T = Y^T A (OpenBLAS's single-threaded sgemm), each thread on its
// own rows of A: faster on these shapes than OpenBLAS's own threading
// (~30 ms against 45-57 ms for 4096 x 14336 at l = 24 on two Zen 3 cores).
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Method/LowRank.h"

#include "Parallel.h"
#include "Random.h"
#include "RowDots.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace mlir::moe::method {

SvdWorkspace::~SvdWorkspace() { release(); }

void SvdWorkspace::release() {
  omega = std::vector<float>();
  omegaRows = omegaCols = 0;
  freeBuffer();
}

void SvdWorkspace::freeBuffer() {
  if (!data)
    return;
#ifdef __linux__
  if (mapped)
    munmap(data, bytes);
  else
#endif
    delete[] data;
  data = nullptr;
  bytes = 0;
  mapped = false;
}

float *SvdWorkspace::floats(int64_t count) {
  size_t need =
      static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(float);
  if (need <= bytes)
    return data;
  freeBuffer();
#ifdef __linux__
  // Whole 2 MiB units, so that all but the unaligned ends can be huge pages.
  constexpr size_t kHugePage = size_t(2) << 20;
  size_t rounded = (need + kHugePage - 1) / kHugePage * kHugePage;
  void *p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) {
    madvise(p, rounded, MADV_HUGEPAGE); // a hint: failure is harmless
    data = static_cast<float *>(p);
    bytes = rounded;
    mapped = true;
    return data;
  }
#endif
  data = new float[need / sizeof(float)];
  bytes = need;
  return data;
}

namespace {

using detail::parallelRanges;

/// Row blocks of about this many bytes stay in the last-level cache between
/// the two products of a fused A^T A pass (the first read brings the block
/// in, the second is nearly free); 128-256 rows of 14336 measured best.
constexpr int64_t kBlockBytes = 8 << 20;

/// sum x_j^2 in double (products of floats are exact in double). Eight
/// independent accumulators let the compiler vectorise without
/// reassociating; OpenBLAS's dsdot is several times slower here.
double sumSquares(const float *x, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k)
      acc[k] += static_cast<double>(x[j + k]) * x[j + k];
  double sum = 0;
  for (; j < n; ++j)
    sum += static_cast<double>(x[j]) * x[j];
  for (double a : acc)
    sum += a;
  return sum;
}

/// d = x - y and returns sum d_j^2 (in double), in one sweep.
double subtractSquares(const float *x, const float *y, float *d, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) {
      float v = x[j + k] - y[j + k];
      d[j + k] = v;
      acc[k] += static_cast<double>(v) * v;
    }
  double sum = 0;
  for (; j < n; ++j) {
    d[j] = x[j] - y[j];
    sum += static_cast<double>(d[j]) * d[j];
  }
  for (double a : acc)
    sum += a;
  return sum;
}

/// The matrix being factored, `a` or `a - base`, read in row blocks split
/// between threads. With `keepIn`, the difference is written once into that
/// workspace during the first pass, and later passes read it; without, each
/// pass recomputes its blocks into per-thread scratch. The first pass also
/// computes ||A||_F^2 (in double) in the same sweep that forms or first
/// reads each block.
class RowSource {
public:
  RowSource(ConstMatrixRef a, ConstMatrixRef base, int threads,
            SvdWorkspace *keepIn)
      : a(a), base(base), threads(threads),
        keepIn(base.data ? keepIn : nullptr),
        blockRows(std::max<int64_t>(
            16, kBlockBytes / (4 * std::max<int64_t>(a.cols, 1)))) {}

  int64_t rows() const { return a.rows; }
  int64_t cols() const { return a.cols; }
  int numThreads() const { return threads; }
  /// ||A||_F^2; valid after the first pass.
  double energy() const { return total; }
  /// Whether matrix() may be read directly (no difference left to form).
  bool direct() const { return !base.data || materialized; }
  ConstMatrixRef matrix() const {
    return materialized ? ConstMatrixRef(kept, a.rows, a.cols) : a;
  }
  /// Whether the matrix lives in the workspace given to the constructor.
  bool usesWorkspace() const { return keepIn != nullptr; }

  /// Calls body(block, firstRow, worker) for every row block; each worker
  /// gets one contiguous range of rows.
  void
  forEachBlock(const std::function<void(ConstMatrixRef, int64_t, int)> &body) {
    int64_t m = a.rows, n = a.cols;
    bool form = !direct();
    bool first = !visited;
    bool keep = form && keepIn;
    if (keep)
      kept = keepIn->floats(m * n);
    std::vector<double> partial(threads, 0.0);
    ConstMatrixRef source = matrix();
    parallelRanges(threads, m, 1, [&](int64_t begin, int64_t end, int w) {
      std::vector<float> scratch;
      if (form && !keep)
        scratch.resize(
            static_cast<size_t>(std::min(blockRows, end - begin) * n));
      for (int64_t i = begin; i < end; i += blockRows) {
        int64_t count = std::min(blockRows, end - i);
        ConstMatrixRef block(source.row(i), count, n, source.ld);
        if (form) {
          float *dst = keep ? kept + i * n : scratch.data();
          for (int64_t r = 0; r < count; ++r)
            partial[w] +=
                subtractSquares(a.row(i + r), base.row(i + r), dst + r * n, n);
          block = ConstMatrixRef(dst, count, n, n);
        } else if (first) {
          for (int64_t r = 0; r < count; ++r)
            partial[w] += sumSquares(block.row(r), n);
        }
        body(block, i, w);
      }
    });
    if (first) {
      total = 0;
      for (double p : partial)
        total += p;
      visited = true;
    }
    if (keep)
      materialized = true;
  }

private:
  ConstMatrixRef a, base;
  int threads;
  SvdWorkspace *keepIn;
  int64_t blockRows;
  float *kept = nullptr;
  bool materialized = false, visited = false;
  double total = 0;
};

int blasInt(int64_t v) { return static_cast<int>(v); }

/// Y^T = X^T A^T: xt is l x n, yt is l x m (row-major, wide form).
void productAX(RowSource &src, const float *xt, int64_t l, float *yt) {
  int64_t m = src.rows(), n = src.cols();
  src.forEachBlock([&](ConstMatrixRef block, int64_t row, int) {
    detail::rowDots(block.data, block.ld, block.rows, n, xt, n, l, yt + row, m);
  });
}

/// Z^T = (A^T A X)^T in one pass: each row block gives its part of A X and
/// immediately its contribution to A^T (A X) while it is in cache. Workers
/// accumulate privately and are summed in worker order (deterministic).
/// With `ytOut` (l x m, wide form), A X itself is kept there too.
void productAtAX(RowSource &src, const float *xt, int64_t l, float *zt,
                 float *ytOut = nullptr) {
  int64_t m = src.rows(), n = src.cols();
  int threads = src.numThreads();
  std::vector<std::vector<float>> own(threads), ytBlock(threads);
  std::vector<char> started(threads, 0);
  src.forEachBlock([&](ConstMatrixRef block, int64_t row, int w) {
    float *yb = ytOut ? ytOut + row : nullptr;
    int64_t ldy = m;
    if (!yb) {
      ytBlock[w].resize(static_cast<size_t>(l * block.rows));
      yb = ytBlock[w].data();
      ldy = block.rows;
    }
    detail::rowDots(block.data, block.ld, block.rows, n, xt, n, l, yb, ldy);
    float *z = zt;
    if (w != 0) {
      own[w].resize(static_cast<size_t>(l * n));
      z = own[w].data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasInt(l),
                blasInt(n), blasInt(block.rows), 1.0f, yb, blasInt(ldy),
                block.data, blasInt(block.ld), started[w] ? 1.0f : 0.0f, z,
                blasInt(n));
    started[w] = 1;
  });
  if (!started[0])
    std::fill(zt, zt + l * n, 0.0f);
  for (int w = 1; w < threads; ++w)
    if (started[w])
      for (int64_t i = 0; i < l * n; ++i)
        zt[i] += own[w][i];
}

/// B = Q^T A (l x n) from qt (l x m); split by columns, so no reduction.
/// The source must be direct (the difference already formed).
void productQtA(const RowSource &src, const float *qt, int64_t l, float *b) {
  ConstMatrixRef a = src.matrix();
  int64_t m = a.rows, n = a.cols;
  parallelRanges(src.numThreads(), n, 64, [&](int64_t c0, int64_t c1, int) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasInt(l),
                blasInt(c1 - c0), blasInt(m), 1.0f, qt, blasInt(m), a.data + c0,
                blasInt(a.ld), 0.0f, b + c0, blasInt(n));
  });
}

/// Orthonormal basis of the columns of a column-major rows x cols matrix,
/// in place (Householder QR; rank-deficient input still gives orthonormal
/// columns).
bool orthonormalize(float *x, int64_t rows, int64_t cols) {
  std::vector<float> tau(static_cast<size_t>(cols));
  if (LAPACKE_sgeqrf(LAPACK_COL_MAJOR, blasInt(rows), blasInt(cols), x,
                     blasInt(rows), tau.data()) != 0)
    return false;
  return LAPACKE_sorgqr(LAPACK_COL_MAJOR, blasInt(rows), blasInt(cols),
                        blasInt(cols), x, blasInt(rows), tau.data()) == 0;
}

/// l x n Gaussian test matrix (the transpose of Omega). Row i comes from
/// its own stream (seed, i), so rows do not depend on l or on threads.
std::vector<float> gaussianRows(int64_t l, int64_t n, uint64_t seed,
                                int threads) {
  std::vector<float> x(static_cast<size_t>(l * n));
  parallelRanges(threads, l, 1, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      detail::Rng rng(seed, static_cast<uint64_t>(r));
      float *row = x.data() + r * n;
      for (int64_t c = 0; c < n; ++c)
        row[c] = static_cast<float>(rng.normal());
    }
  });
  return x;
}

/// G = X X^T (r x r) of the rows of x (r x len, float), in double.
std::vector<double> gram(const float *x, int64_t r, int64_t len) {
  std::vector<double> xd(x, x + r * len), g(static_cast<size_t>(r * r));
  if (r > 0 && len > 0)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasInt(r), blasInt(r),
                blasInt(len), 1.0, xd.data(), blasInt(len), xd.data(),
                blasInt(len), 0.0, g.data(), blasInt(r));
  return g;
}

/// ||A - U^T V||^2 / ||A||^2 from ||A||^2, <A, U^T V> and the factors:
/// ||U^T V||^2 = <U U^T, V V^T> needs only two r x r Gram matrices.
double relativeErrorOf(double energy, double cross, const Matrix &u,
                       const Matrix &v) {
  if (energy <= 0)
    return 0;
  std::vector<double> gu = gram(u.data.data(), u.rows, u.cols);
  std::vector<double> gv = gram(v.data.data(), v.rows, v.cols);
  double approx = 0;
  for (size_t i = 0; i < gu.size(); ++i)
    approx += gu[i] * gv[i];
  return std::max(0.0, energy - 2.0 * cross + approx) / energy;
}

LowRankFactors invalidFactors() {
  LowRankFactors f;
  f.valid = false;
  return f;
}

/// Factors of a rank-0 approximation: everything is residual.
LowRankFactors zeroRank(int64_t m, int64_t n, double energy) {
  LowRankFactors f;
  f.u = Matrix(0, m);
  f.v = Matrix(0, n);
  f.totalEnergy = energy;
  f.relativeError = energy > 0 ? 1.0 : 0.0;
  return f;
}

//===----------------------------------------------------------------------===//
// Exact
//===----------------------------------------------------------------------===//

/// Full thin SVD from LAPACK. The row-major m x n copy is read as the
/// column-major n x m matrix A^T = U' S V'^T, so V' holds A's left and U'
/// its right singular vectors, with no transposition.
struct ExactSvd {
  int64_t k = 0;
  std::vector<float> s;
  /// n x k column-major: column i is A's i-th right singular vector.
  std::vector<float> right;
  /// k x m column-major (ld k): A's i-th left singular vector is row i.
  std::vector<float> leftT;
};

bool exactSvd(RowSource &src, SvdWorkspace &workspace, ExactSvd &out) {
  int64_t m = src.rows(), n = src.cols(), k = std::min(m, n);
  // The full-matrix LAPACK call takes every thread, also when a randomised
  // call falls back here (those run BLAS single-threaded otherwise).
  detail::BlasThreadsScope scope(src.numThreads());
  // LAPACK destroys its input; when the source itself lives in the
  // workspace (a randomised call falling back), copy into fresh memory.
  SvdWorkspace own;
  float *work = (src.usesWorkspace() ? own : workspace).floats(m * n);
  auto copyIn = [&] {
    src.forEachBlock([&](ConstMatrixRef block, int64_t row, int) {
      for (int64_t r = 0; r < block.rows; ++r)
        std::memcpy(work + (row + r) * n, block.row(r), sizeof(float) * n);
    });
  };
  copyIn();
  out.k = k;
  out.s.assign(static_cast<size_t>(k), 0.0f);
  out.right.assign(static_cast<size_t>(n * k), 0.0f);
  out.leftT.assign(static_cast<size_t>(k * m), 0.0f);
  int info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'S', blasInt(n), blasInt(m), work,
                            blasInt(n), out.s.data(), out.right.data(),
                            blasInt(n), out.leftT.data(), blasInt(k));
  if (info > 0) {
    // Divide and conquer did not converge; QR iteration is slower but
    // more robust.
    copyIn();
    std::vector<float> superb(static_cast<size_t>(std::max<int64_t>(k, 2)));
    info =
        LAPACKE_sgesvd(LAPACK_COL_MAJOR, 'S', 'S', blasInt(n), blasInt(m), work,
                       blasInt(n), out.s.data(), out.right.data(), blasInt(n),
                       out.leftT.data(), blasInt(k), superb.data());
  }
  return info == 0;
}

LowRankFactors factorsFromExact(RowSource &src, const ExactSvd &svd,
                                int64_t r) {
  int64_t m = src.rows(), n = src.cols(), k = svd.k;
  LowRankFactors f;
  f.rank = r;
  f.singularValues.assign(svd.s.begin(), svd.s.end());
  f.totalEnergy = src.energy();
  f.u = Matrix(r, m);
  f.v = Matrix(r, n);
  for (int64_t i = 0; i < r; ++i) {
    float root = std::sqrt(std::max(svd.s[i], 0.0f));
    float *u = f.u.row(i), *v = f.v.row(i);
    for (int64_t j = 0; j < m; ++j)
      u[j] = root * svd.leftT[i + j * k];
    for (int64_t c = 0; c < n; ++c)
      v[c] = root * svd.right[c + i * n];
  }
  // <A, U^T V> = sum_i <U_i, (V A^T)_i>: one more pass over A.
  std::vector<float> wt(static_cast<size_t>(r * m));
  if (r > 0)
    productAX(src, f.v.data.data(), r, wt.data());
  double cross = 0;
  for (size_t i = 0; i < wt.size(); ++i)
    cross += static_cast<double>(f.u.data[i]) * wt[i];
  f.relativeError = relativeErrorOf(f.totalEnergy, cross, f.u, f.v);
  return f;
}

//===----------------------------------------------------------------------===//
// Randomised
//===----------------------------------------------------------------------===//

struct Sketch {
  int64_t l = 0;
  /// l x m: Q^T, Q an orthonormal basis of the sketched column space.
  std::vector<float> qt;
  /// l x n: B = Q^T A.
  std::vector<float> b;
  /// SVD of B = W S R^T in double: s descending, W (l x l, column i the
  /// i-th left vector) and R (n x l column-major, column i the i-th right
  /// vector).
  std::vector<double> s, w, right;
};

/// SVD of the small l x n matrix B from its l x l Gram matrix B B^T = W S^2
/// W^T in double (products of floats are exact in double), R = B^T W S^-1.
/// About four times faster than dgesdd on 24 x 14336, and as accurate as B
/// itself for every direction with s_i > 1e-6 s_1 (B is float: its own
/// rounding is 1e-7 s_1); directions below 1e-7 s_1 are float noise and get
/// s_i = 0 and R column 0 rather than a noise-amplified vector.
bool smallSvd(const std::vector<float> &b, int64_t l, int64_t n, Sketch &sk) {
  std::vector<double> bd(b.begin(), b.end()), gram(static_cast<size_t>(l * l));
  cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, blasInt(l), blasInt(n),
              1.0, bd.data(), blasInt(n), 0.0, gram.data(), blasInt(l));
  std::vector<double> lambda(static_cast<size_t>(l));
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', blasInt(l), gram.data(),
                     blasInt(l), lambda.data()) != 0)
    return false;
  // Ascending from dsyevd: reverse into descending order.
  sk.s.assign(static_cast<size_t>(l), 0.0);
  sk.w.assign(static_cast<size_t>(l * l), 0.0);
  double top = std::max(lambda[l - 1], 0.0);
  std::vector<double> scaled(static_cast<size_t>(l * l), 0.0);
  for (int64_t i = 0; i < l; ++i) {
    double li = lambda[l - 1 - i];
    const double *col = gram.data() + (l - 1 - i) * l;
    std::copy(col, col + l, sk.w.begin() + i * l);
    if (li > 1e-14 * top && li > 0) {
      sk.s[i] = std::sqrt(li);
      for (int64_t j = 0; j < l; ++j)
        scaled[i * l + j] = col[j] / sk.s[i];
    }
  }
  // R (n x l) = B^T (n x l, column-major view of row-major B) * (W S^-1).
  sk.right.assign(static_cast<size_t>(n * l), 0.0);
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, blasInt(n), blasInt(l),
              blasInt(l), 1.0, bd.data(), blasInt(n), scaled.data(), blasInt(l),
              0.0, sk.right.data(), blasInt(n));
  return true;
}

/// B = Q^T A and its SVD, once sk.qt holds Q^T.
bool finishSketch(RowSource &src, Sketch &sk) {
  int64_t m = src.rows(), n = src.cols(), l = sk.l;
  if (!orthonormalize(sk.qt.data(), m, l))
    return false;
  sk.b.assign(static_cast<size_t>(l * n), 0.0f);
  productQtA(src, sk.qt.data(), l, sk.b.data());
  return smallSvd(sk.b, l, n, sk);
}

/// Q from blocks of b vectors, Z_0 = Omega and Z_{i+1} = orth(A^T A Z_i).
/// Subspace iteration keeps only the last block, A Z_q, at the sketch's
/// full width (b = l): Q = orth(A (A^T A)^q Omega), 2q + 2 products of
/// width l. Block Krylov keeps every A Z_i, which subspace iteration
/// computes and discards, so its blocks are narrow: b = ceil(l / (q + 1)),
/// Q = orth([A Z_0, ..., A Z_q]), 2q + 1 products of width b and B = Q^T A
/// of width b (q + 1) (docs/method.md compares them). The blocks are not
/// orthogonalised against each other before the final QR, so each
/// A^T A Z_i stays one fused pass; Householder QR gives an orthonormal Q
/// however dependent the later blocks become.
bool buildSketch(RowSource &src, int64_t l, const SvdOptions &options,
                 SvdWorkspace &workspace, Sketch &sk) {
  int64_t m = src.rows(), n = src.cols(), k = std::min(m, n);
  int64_t q = std::max<int64_t>(effectivePowerIterations(options), 0);
  bool krylov = options.method == SvdMethod::BlockKrylov;
  int64_t b = l;
  if (krylov) {
    b = (l + q) / (q + 1);
    while (q > 0 && b * (q + 1) > k) {
      --q;
      b = (l + q) / (q + 1);
    }
  }
  sk.l = krylov ? b * (q + 1) : l;
  const float *omega =
      workspace.testMatrix(options.seed, b, n, src.numThreads());
  std::vector<float> xt(omega, omega + b * n);
  std::vector<float> zt(static_cast<size_t>(b * n));
  sk.qt.assign(static_cast<size_t>(sk.l * m), 0.0f);
  for (int64_t it = 0; it < q; ++it) {
    productAtAX(src, xt.data(), b, zt.data(),
                krylov ? sk.qt.data() + it * b * m : nullptr);
    if (!orthonormalize(zt.data(), n, b))
      return false;
    std::swap(xt, zt);
  }
  // The last block: the whole of Q^T for subspace iteration.
  productAX(src, xt.data(), b, sk.qt.data() + (sk.l - b) * m);
  return finishSketch(src, sk);
}

LowRankFactors factorsFromSketch(const RowSource &src, const Sketch &sk,
                                 int64_t r) {
  int64_t m = src.rows(), n = src.cols(), l = sk.l;
  LowRankFactors f;
  f.rank = r;
  f.singularValues = sk.s;
  f.totalEnergy = src.energy();
  // U = M Q^T with M (r x l) = sqrt(S_r) W_r^T; V = sqrt(S_r) R_r^T.
  std::vector<float> mt(static_cast<size_t>(r * l));
  f.v = Matrix(r, n);
  for (int64_t i = 0; i < r; ++i) {
    double root = std::sqrt(std::max(sk.s[i], 0.0));
    for (int64_t j = 0; j < l; ++j)
      mt[i * l + j] = static_cast<float>(root * sk.w[i * l + j]);
    float *v = f.v.row(i);
    for (int64_t c = 0; c < n; ++c)
      v[c] = static_cast<float>(root * sk.right[c + i * n]);
  }
  f.u = Matrix(r, m);
  if (r > 0)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasInt(r),
                blasInt(m), blasInt(l), 1.0f, mt.data(), blasInt(l),
                sk.qt.data(), blasInt(m), 0.0f, f.u.data.data(), blasInt(m));
  // <A, U^T V> = <A, Q M^T V> = <Q^T A, M^T V> = <B, M^T V>: no pass over
  // A, only P = B V^T (l x r) in double.
  double cross = 0;
  if (r > 0) {
    std::vector<double> bd(sk.b.begin(), sk.b.end());
    std::vector<double> vd(f.v.data.begin(), f.v.data.end());
    std::vector<double> p(static_cast<size_t>(l * r));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasInt(l), blasInt(r),
                blasInt(n), 1.0, bd.data(), blasInt(n), vd.data(), blasInt(n),
                0.0, p.data(), blasInt(r));
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < l; ++j)
        cross += static_cast<double>(mt[i * l + j]) * p[j * r + i];
  }
  f.relativeError = relativeErrorOf(f.totalEnergy, cross, f.u, f.v);
  return f;
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

bool sameShape(ConstMatrixRef a, ConstMatrixRef base) {
  return !base.data || (a.rows == base.rows && a.cols == base.cols);
}

/// Smallest r with sum_{i<r} s_i^2 >= target among the first `limit`
/// values, or -1.
int64_t rankForEnergy(const std::vector<double> &s2, int64_t limit,
                      double target) {
  double sum = 0;
  if (target <= 0)
    return 0;
  for (int64_t r = 0; r < limit; ++r) {
    sum += s2[r];
    if (sum >= target)
      return r + 1;
  }
  return -1;
}

LowRankFactors exactByEnergy(RowSource &src, SvdWorkspace &workspace,
                             double energy, int64_t maxRank) {
  ExactSvd svd;
  if (!exactSvd(src, workspace, svd))
    return invalidFactors();
  std::vector<double> s2(svd.s.size());
  double total = 0;
  for (size_t i = 0; i < s2.size(); ++i) {
    s2[i] = static_cast<double>(svd.s[i]) * svd.s[i];
    total += s2[i];
  }
  int64_t r = rankForEnergy(s2, svd.k, std::min(energy, 1.0) * total);
  if (r < 0)
    r = svd.k; // rounding kept the full sum below the target
  if (maxRank > 0)
    r = std::min(r, maxRank);
  return factorsFromExact(src, svd, r);
}

/// The setup both entry points share: shapes checked, BLAS threads pinned,
/// the workspace chosen and the rows of a - base made ready. When
/// `trivial` (or the matrix is empty) the answer is rank 0 and only the
/// energy is measured; otherwise `body(src, workspace, k)` answers.
template <typename Body>
LowRankFactors runOnResidual(ConstMatrixRef a, ConstMatrixRef base,
                             const SvdOptions &options, bool trivial,
                             Body body) {
  if (!sameShape(a, base))
    return invalidFactors();
  int64_t m = a.rows, n = a.cols, k = std::min(m, n);
  bool randomized = options.method != SvdMethod::Exact;
  int threads = detail::resolveThreads(options.threads);
  // The randomised methods run BLAS single-threaded throughout: their big
  // products split the work themselves, and their small LAPACK calls gain
  // nothing from a second thread, whose spinning between calls
  // (sched_yield) steals cycles from the product threads on a small
  // machine (2 cores: 0.204 -> 0.175 s per 4096 x 14336 residual).
  detail::BlasThreadsScope scope(randomized ? 1 : options.threads);
  SvdWorkspace local;
  SvdWorkspace &workspace = options.workspace ? *options.workspace : local;
  RowSource src(a, base, threads, randomized ? &workspace : nullptr);
  if (trivial || k <= 0) {
    if (k > 0)
      src.forEachBlock([](ConstMatrixRef, int64_t, int) {});
    return zeroRank(std::max<int64_t>(m, 0), std::max<int64_t>(n, 0),
                    src.energy());
  }
  return body(src, workspace, k);
}

LowRankFactors svdImpl(ConstMatrixRef a, ConstMatrixRef base, int64_t rank,
                       const SvdOptions &options) {
  rank = std::clamp<int64_t>(rank, 0,
                             std::max<int64_t>(std::min(a.rows, a.cols), 0));
  return runOnResidual(a, base, options, rank == 0,
                       [&](RowSource &src, SvdWorkspace &workspace, int64_t k) {
                         if (options.method == SvdMethod::Exact) {
                           ExactSvd svd;
                           if (!exactSvd(src, workspace, svd))
                             return invalidFactors();
                           return factorsFromExact(src, svd, rank);
                         }
                         int64_t l =
                             std::min(rank + effectiveOversample(options), k);
                         Sketch sk;
                         if (!buildSketch(src, l, options, workspace, sk))
                           return invalidFactors();
                         return factorsFromSketch(src, sk, rank);
                       });
}

LowRankFactors svdByEnergyImpl(ConstMatrixRef a, ConstMatrixRef base,
                               double energy, int64_t maxRank,
                               const SvdOptions &options) {
  return runOnResidual(
      a, base, options, !(energy > 0),
      [&](RowSource &src, SvdWorkspace &workspace, int64_t k) {
        if (options.method == SvdMethod::Exact)
          return exactByEnergy(src, workspace, energy, maxRank);
        int64_t oversample = effectiveOversample(options);
        int64_t guess = maxRank > 0 ? std::min<int64_t>(16, maxRank) : 16;
        for (;;) {
          int64_t l = guess + oversample;
          if (l >= k)
            return exactByEnergy(src, workspace, energy, maxRank);
          Sketch sk;
          if (!buildSketch(src, l, options, workspace, sk))
            return invalidFactors();
          std::vector<double> s2(sk.s.size());
          for (size_t i = 0; i < s2.size(); ++i)
            s2[i] = sk.s[i] * sk.s[i];
          int64_t r =
              rankForEnergy(s2, guess, std::min(energy, 1.0) * src.energy());
          if (r >= 0)
            return factorsFromSketch(src, sk, r);
          if (maxRank > 0 && guess >= maxRank)
            return factorsFromSketch(src, sk, maxRank);
          guess *= 2;
          if (maxRank > 0)
            guess = std::min(guess, maxRank);
        }
      });
}

} // namespace

int64_t effectiveOversample(const SvdOptions &options) {
  if (options.oversample >= 0)
    return options.oversample;
  return options.method == SvdMethod::BlockKrylov ? 24 : 8;
}

int64_t effectivePowerIterations(const SvdOptions &options) {
  if (options.powerIterations >= 0)
    return options.powerIterations;
  return options.method == SvdMethod::BlockKrylov ? 4 : 2;
}

const float *SvdWorkspace::testMatrix(uint64_t seed, int64_t rows, int64_t cols,
                                      int threads) {
  if (omega.empty() || seed != omegaSeed || rows != omegaRows ||
      cols != omegaCols) {
    omega = gaussianRows(rows, cols, seed, threads);
    omegaSeed = seed;
    omegaRows = rows;
    omegaCols = cols;
  }
  return omega.data();
}

LowRankFactors truncatedSvd(ConstMatrixRef a, int64_t rank,
                            const SvdOptions &options) {
  return svdImpl(a, ConstMatrixRef(), rank, options);
}

LowRankFactors truncatedSvd(ConstMatrixRef a, ConstMatrixRef base, int64_t rank,
                            const SvdOptions &options) {
  return svdImpl(a, base, rank, options);
}

LowRankFactors truncatedSvdByEnergy(ConstMatrixRef a, double energy,
                                    int64_t maxRank,
                                    const SvdOptions &options) {
  return svdByEnergyImpl(a, ConstMatrixRef(), energy, maxRank, options);
}

LowRankFactors truncatedSvdByEnergy(ConstMatrixRef a, ConstMatrixRef base,
                                    double energy, int64_t maxRank,
                                    const SvdOptions &options) {
  return svdByEnergyImpl(a, base, energy, maxRank, options);
}

} // namespace mlir::moe::method
