//===- LowRank.h - Truncated SVD of expert residuals ------------*- C++ -*-===//
//
// Expert residuals W_e - base are stored as U^T V with U (r x out) and
// V (r x in). Singular values are split evenly (U row i = sqrt(s_i) u_i,
// V row i = sqrt(s_i) v_i) so both factors have similar magnitudes, which
// is what group-wise INT4 quantisation of both wants.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_METHOD_LOWRANK_H
#define MOE_MLIR_METHOD_LOWRANK_H

#include "moe-mlir/Method/Matrix.h"

namespace mlir::moe::method {

/// Exact: LAPACK. Randomized: subspace iteration (Halko-Martinsson-Tropp).
/// BlockKrylov: randomised block Krylov (Musco-Musco), the default: at rank
/// 16 it costs what subspace iteration does and lands 3-5x closer to the
/// optimal error (docs/method.md).
enum class SvdMethod { Exact, Randomized, BlockKrylov };

/// Memory that consecutive SVD calls reuse: the matrix-sized buffer that
/// holds a - base (randomised) or LAPACK's copy of A (exact), and the
/// Gaussian test matrix of the last randomised call (the same for every
/// call with the same seed and shape). Without one, every call maps that
/// buffer afresh, and first touch of fresh memory is slow (0.7 GB/s on
/// 4 KiB pages in a VM: +0.35 s per 4096 x 14336 call). The buffer is
/// mapped with transparent huge pages where Linux offers them, grows to the
/// largest request and is kept until release() or destruction. One
/// workspace per concurrent caller.
class SvdWorkspace {
public:
  SvdWorkspace() = default;
  ~SvdWorkspace();
  SvdWorkspace(const SvdWorkspace &) = delete;
  SvdWorkspace &operator=(const SvdWorkspace &) = delete;
  /// At least `count` floats (contents unspecified), valid until the next
  /// call to floats() or release().
  float *floats(int64_t count);
  /// The rows x cols standard-normal test matrix for `seed` (row i from the
  /// portable generator's stream (seed, i)), generated on `threads` threads
  /// on the first request and returned again while seed and shape repeat.
  const float *testMatrix(uint64_t seed, int64_t rows, int64_t cols,
                          int threads);
  void release();

private:
  void freeBuffer();

  float *data = nullptr;
  size_t bytes = 0;
  bool mapped = false;
  std::vector<float> omega;
  uint64_t omegaSeed = 0;
  int64_t omegaRows = 0, omegaCols = 0;
};

struct SvdOptions {
  SvdMethod method = SvdMethod::BlockKrylov;
  /// Columns of the sketch beyond the target rank; negative: the method's
  /// default (see effectiveOversample).
  int64_t oversample = -1;
  /// Randomized: power iterations q. BlockKrylov: the Krylov depth q (the
  /// basis has q + 1 blocks). Negative: the method's default.
  int64_t powerIterations = -1;
  /// Seed of the Gaussian test matrix; same seed, thread count and CPU
  /// features (AVX2 or not: the products round differently), same factors.
  uint64_t seed = 0;
  /// Threads for the large products and LAPACK calls (0: as many as BLAS
  /// uses by default). The large products run as one single-threaded sgemm
  /// per thread on its own slice of A, which is faster than OpenBLAS's own
  /// threading for these skinny shapes; BLAS is single-threaded meanwhile.
  int threads = 0;
  /// Reused scratch memory (see SvdWorkspace); null: allocate per call.
  SvdWorkspace *workspace = nullptr;
};

/// The oversampling and iteration count a call with these options uses:
/// the given values when non-negative, else 8 and 2 for Randomized, 24 and
/// 4 for BlockKrylov (blocks of 8; the settings docs/method.md compares).
int64_t effectiveOversample(const SvdOptions &options);
int64_t effectivePowerIterations(const SvdOptions &options);

struct LowRankFactors {
  int64_t rank = 0;
  /// rank x a.rows, row i = sqrt(s_i) * (i-th left singular vector).
  Matrix u;
  /// rank x a.cols, row i = sqrt(s_i) * (i-th right singular vector).
  Matrix v;
  /// Leading singular values found (at least `rank` of them), descending.
  std::vector<double> singularValues;
  /// ||A||_F^2, computed exactly.
  double totalEnergy = 0;
  /// ||A - U^T V||_F^2 / ||A||_F^2 (0 when A is zero), computed from the
  /// factors as ||A||^2 - 2<A, U^T V> + ||U^T V||^2 in double (not
  /// estimated from the singular values); its absolute error is about
  /// 1e-6 (float products), so values below that are noise.
  double relativeError = 0;
  /// False when LAPACK failed (non-finite entries in A) or `a` and `base`
  /// differ in shape; the factors are then empty (rank 0).
  bool valid = true;
};

/// Rank-`rank` truncated SVD of `a` (rank is clamped to min(rows, cols)).
/// Exact: LAPACK sgesdd (sgesvd if it fails to converge). Both randomised
/// methods find an orthonormal basis Q of about l = rank + oversample
/// columns for A's range, then take B = Q^T A and an exact SVD (double) of
/// the small B. Randomized: Q = orth(A (A^T A)^q Omega), with QR
/// re-orthonormalisation after each A^T A product: 2q + 2 products of width
/// l, A read q + 2 times. BlockKrylov: Q = orth([A Z_0 ... A Z_q]) with
/// Z_0 = Omega of b = ceil(l / (q + 1)) columns and Z_{i+1} =
/// orth(A^T A Z_i): 2q + 1 products of width b and one of width b (q + 1),
/// A read q + 2 times; when b (q + 1) would pass min(rows, cols), q is
/// lowered until it fits. `a` is never copied.
LowRankFactors truncatedSvd(ConstMatrixRef a, int64_t rank,
                            const SvdOptions &options);

/// The same for the difference a - base (same shape), e.g. an expert's
/// residual from its cluster base, without the caller materialising it:
/// the randomised method forms it once, into its only a-sized temporary,
/// during its first pass over the data.
LowRankFactors truncatedSvd(ConstMatrixRef a, ConstMatrixRef base, int64_t rank,
                            const SvdOptions &options);

/// The smallest rank r with sum_{i<r} s_i^2 >= energy * ||A||_F^2
/// (energy in (0, 1], larger values act as 1, others give rank 0;
/// r <= maxRank when maxRank > 0), and its factors. Exact: s_i are A's
/// singular values and ||A||^2 is taken as their sum of squares. Randomised:
/// s_i are the sketch's, so the factors always capture the energy they claim
/// (1 - relativeError >= energy) but r may exceed the exact answer when the
/// sketch is poor. It starts at rank 16 (or maxRank if smaller), trusts the
/// sketch's first l - oversample values and doubles the rank until the
/// threshold is met within them (or maxRank is reached: rank maxRank); a
/// sketch that would reach min(rows, cols) is replaced by the exact method.
LowRankFactors truncatedSvdByEnergy(ConstMatrixRef a, double energy,
                                    int64_t maxRank, const SvdOptions &options);

/// truncatedSvdByEnergy of a - base.
LowRankFactors truncatedSvdByEnergy(ConstMatrixRef a, ConstMatrixRef base,
                                    double energy, int64_t maxRank,
                                    const SvdOptions &options);

} // namespace mlir::moe::method

#endif // MOE_MLIR_METHOD_LOWRANK_H
