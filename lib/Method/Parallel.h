//===- Parallel.h - Threads around single-threaded BLAS ---------*- C++ -*-===//
//
// Internal to MoeMethod. The products of the randomised SVD are very skinny
// (4096 x 14336 times 14336 x 24); OpenBLAS splits those poorly between its
// own threads, while giving each thread its own slice of the big matrix and
// a single-threaded sgemm runs 1.5-2x faster on two cores. So the heavy
// loops split their work here and switch OpenBLAS to one thread meanwhile.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_METHOD_PARALLEL_H
#define MOE_MLIR_LIB_METHOD_PARALLEL_H

#include <cstdint>
#include <functional>

namespace mlir::moe::method::detail {

/// Worker threads for a request: `requested` if positive, else the number
/// of threads BLAS would use. 1 when the BLAS is not OpenBLAS (it may not
/// be safe to call from several threads at once).
int resolveThreads(int requested);

/// Sets the BLAS thread count for the lifetime of the object (0: leave it)
/// and restores the previous count afterwards.
class BlasThreadsScope {
public:
  explicit BlasThreadsScope(int threads);
  ~BlasThreadsScope();
  BlasThreadsScope(const BlasThreadsScope &) = delete;
  BlasThreadsScope &operator=(const BlasThreadsScope &) = delete;

private:
  int saved = 0;
};

/// Splits [0, n) into `threads` contiguous ranges of nearly equal size, each
/// a multiple of `grain` except the last, and runs body(begin, end, worker)
/// for each, worker 0 on the calling thread; BLAS is single-threaded
/// meanwhile. The split depends only on (n, threads, grain), so results are
/// reproducible for a given thread count.
void parallelRanges(int threads, int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)> &body);

} // namespace mlir::moe::method::detail

#endif // MOE_MLIR_LIB_METHOD_PARALLEL_H
