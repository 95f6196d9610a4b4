//===- ThreadPool.cpp - moe_rt_parallel_for -------------------------------===//
//
// One pool per process, created on first use with one worker fewer than the
// cores this process may run on: the thread calling parallel_for works too,
// so a run never has more busy threads than cores. Concurrent runs share
// the pool; each caller works through its own ranges, so it finishes even
// when every worker is busy elsewhere. A body that calls parallel_for again
// runs that call inline (no nested parallelism, no deadlock).
//
// A decode step is a chain of short loops (tens of microseconds each), so
// waking a sleeping worker per loop (a futex round trip, 10-50 us on a VM)
// would cost as much as the loop. Workers therefore poll for new work for a
// while after their last job before they sleep (MOE_SPIN_US, default 200;
// 0 sleeps at once), and the caller polls for its helpers likewise. A loop
// is cut into a few ranges per thread, taken first come first served, so a
// helper that starts late takes less of it rather than delaying the end.
//
//===----------------------------------------------------------------------===//

#include "RuntimeInternal.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace moe::rt {
namespace {
thread_local const RunContext *tlsRun = nullptr;
thread_local bool tlsInBody = false;

struct Job {
  int64_t n = 0;
  void (*body)(int64_t, int64_t, void *) = nullptr;
  void *ctx = nullptr;
  const RunContext *run = nullptr;
  int64_t ranges = 0;
  int64_t maxHelpers = 0; // the run's threads but the caller, at most
  int64_t helpers = 0;    // workers that joined; guarded by the pool's mutex
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable finished;

  /// Runs ranges until none is left.
  void work() {
    const RunContext *savedRun = setCurrentRun(run);
    bool savedInBody = tlsInBody;
    tlsInBody = true;
    int64_t base = n / ranges, extra = n % ranges;
    for (int64_t i; (i = next.fetch_add(1)) < ranges;) {
      int64_t begin = i * base + (i < extra ? i : extra);
      body(begin, begin + base + (i < extra ? 1 : 0), ctx);
      if (done.fetch_add(1) + 1 == ranges) {
        std::lock_guard<std::mutex> lock(mu);
        finished.notify_all();
      }
    }
    tlsInBody = savedInBody;
    setCurrentRun(savedRun);
  }
};

/// How long a thread polls before it sleeps (MOE_SPIN_US).
std::chrono::microseconds spinTime() {
  static const std::chrono::microseconds time = [] {
    const char *text = std::getenv("MOE_SPIN_US");
    char *end = nullptr;
    long us = text ? std::strtol(text, &end, 10) : 200;
    if (text && (end == text || *end || us < 0))
      us = 200;
    return std::chrono::microseconds(us);
  }();
  return time;
}

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Polls `ready` until it holds or the spin time has passed; whether it held.
template <typename Ready> bool spinUntil(Ready ready) {
  auto deadline = std::chrono::steady_clock::now() + spinTime();
  for (unsigned i = 0;; ++i) {
    if (ready())
      return true;
    // The clock costs more than a poll: read it every 64 polls.
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= deadline)
      return false;
    cpuRelax();
  }
}

class Pool {
public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i)
      threads.emplace_back([this] { loop(); });
  }

  void submit(const std::shared_ptr<Job> &job) {
    bool wakeSleepers;
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(job);
      queued.store(queue.size(), std::memory_order_release);
      wakeSleepers = sleepers > 0;
    }
    if (wakeSleepers)
      wake.notify_all();
  }

  void withdraw(const std::shared_ptr<Job> &job) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = queue.begin(); it != queue.end(); ++it)
      if (*it == job) {
        queue.erase(it);
        break;
      }
    queued.store(queue.size(), std::memory_order_release);
  }

private:
  void loop() {
    for (;;) {
      std::shared_ptr<Job> job = take();
      job->work();
    }
  }

  /// The next job to help with: polled for, then slept for.
  std::shared_ptr<Job> take() {
    for (;;) {
      spinUntil([&] { return queued.load(std::memory_order_acquire) != 0; });
      std::unique_lock<std::mutex> lock(mu);
      if (queue.empty()) {
        ++sleepers;
        wake.wait(lock, [&] { return !queue.empty(); });
        --sleepers;
      }
      std::shared_ptr<Job> job = queue.front();
      if (++job->helpers >= job->maxHelpers ||
          job->next.load() >= job->ranges) {
        queue.pop_front();
        queued.store(queue.size(), std::memory_order_release);
      }
      return job;
    }
  }

  std::mutex mu;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;
  std::atomic<size_t> queued{0}; // queue.size(), readable without the lock
  int sleepers = 0;              // guarded by mu
  std::vector<std::thread> threads;
};

Pool &pool() {
  // Never destroyed: workers may be asleep in it when the process exits.
  static Pool *instance = new Pool(maxThreads() - 1);
  return *instance;
}
} // namespace

const RunContext *currentRun() { return tlsRun; }

const RunContext *setCurrentRun(const RunContext *run) {
  const RunContext *previous = tlsRun;
  tlsRun = run;
  return previous;
}

int maxThreads() {
  static const int count = [] {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
      return CPU_COUNT(&set);
    unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
  }();
  return count;
}

void parallelFor(int64_t n, void (*body)(int64_t, int64_t, void *), void *ctx,
                 int threads) {
  if (n <= 0)
    return;
  if (threads <= 0 || threads > maxThreads())
    threads = maxThreads();
  if (threads == 1 || n == 1 || tlsInBody) {
    bool saved = tlsInBody;
    tlsInBody = true;
    body(0, n, ctx);
    tlsInBody = saved;
    return;
  }
  auto job = std::make_shared<Job>();
  job->n = n;
  job->body = body;
  job->ctx = ctx;
  job->run = currentRun();
  job->ranges = std::min<int64_t>(n, int64_t(threads) * kRangesPerThread);
  job->maxHelpers = std::min<int64_t>(threads, n) - 1;
  pool().submit(job);
  job->work();
  pool().withdraw(job);
  if (spinUntil([&] { return job->done.load() == job->ranges; }))
    return;
  std::unique_lock<std::mutex> lock(job->mu);
  job->finished.wait(lock, [&] { return job->done.load() == job->ranges; });
}

} // namespace moe::rt

extern "C" void moe_rt_parallel_for(int64_t n,
                                    void (*body)(int64_t, int64_t, void *),
                                    void *ctx) {
  const moe::rt::RunContext *run = moe::rt::currentRun();
  moe::rt::parallelFor(n, body, ctx, run ? run->threads : 0);
}
