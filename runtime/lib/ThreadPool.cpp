//===- ThreadPool.cpp - moe_rt_parallel_for -------------------------------===//
//
// One pool per process, created on first use with one worker fewer than the
// cores this process may run on: the thread calling parallel_for works too,
// so a run never has more busy threads than cores. Concurrent runs share
// the pool; each caller works through its own ranges, so it finishes even
// when every worker is busy elsewhere. A body that calls parallel_for again
// runs that call inline (no nested parallelism, no deadlock).
//
//===----------------------------------------------------------------------===//

#include "RuntimeInternal.h"

#include <sched.h>

#include <atomic>
#include <condition_variable>
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
  int helpers = 0; // workers that joined; guarded by the pool's mutex
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

class Pool {
public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i)
      threads.emplace_back([this] { loop(); });
  }

  void submit(const std::shared_ptr<Job> &job) {
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(job);
    }
    wake.notify_all();
  }

  void withdraw(const std::shared_ptr<Job> &job) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = queue.begin(); it != queue.end(); ++it)
      if (*it == job) {
        queue.erase(it);
        break;
      }
  }

private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      wake.wait(lock, [&] { return !queue.empty(); });
      std::shared_ptr<Job> job = queue.front();
      // A job wants at most ranges - 1 helpers (its caller is one more).
      if (++job->helpers >= job->ranges - 1 ||
          job->next.load() >= job->ranges)
        queue.pop_front();
      lock.unlock();
      job->work();
      job.reset();
      lock.lock();
    }
  }

  std::mutex mu;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;
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
  job->ranges = n < threads ? n : threads;
  pool().submit(job);
  job->work();
  pool().withdraw(job);
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
