//===- Parallel.cpp - Threads around single-threaded BLAS -----------------===//

#include "Parallel.h"

#include <cblas.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace mlir::moe::method::detail {

#ifdef OPENBLAS_VERSION
static int blasThreads() { return openblas_get_num_threads(); }
static void setBlasThreads(int n) { openblas_set_num_threads(n); }
#else
static int blasThreads() { return 1; }
static void setBlasThreads(int) {}
#endif

int resolveThreads(int requested) {
#ifdef OPENBLAS_VERSION
  return std::max(1, requested > 0 ? requested : blasThreads());
#else
  (void)requested;
  return 1;
#endif
}

BlasThreadsScope::BlasThreadsScope(int threads) {
  if (threads <= 0)
    return;
  saved = blasThreads();
  if (saved != threads)
    setBlasThreads(threads);
  else
    saved = 0;
}

BlasThreadsScope::~BlasThreadsScope() {
  if (saved > 0)
    setBlasThreads(saved);
}

void parallelRanges(int threads, int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)> &body) {
  grain = std::max<int64_t>(grain, 1);
  int64_t units = (n + grain - 1) / grain;
  int workers = static_cast<int>(std::min<int64_t>(threads, units));
  if (workers <= 1) {
    if (n > 0)
      body(0, n, 0);
    return;
  }
  BlasThreadsScope single(1);
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  auto range = [&](int w) {
    int64_t begin = std::min(n, units * w / workers * grain);
    int64_t end = std::min(n, units * (w + 1) / workers * grain);
    return std::make_pair(begin, end);
  };
  for (int w = 1; w < workers; ++w) {
    auto [begin, end] = range(w);
    pool.emplace_back([&body, begin, end, w] { body(begin, end, w); });
  }
  auto [begin, end] = range(0);
  body(begin, end, 0);
  for (std::thread &t : pool)
    t.join();
}

} // namespace mlir::moe::method::detail
