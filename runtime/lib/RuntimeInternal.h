//===- RuntimeInternal.h - Shared between the runtime's sources -----------===//

#ifndef MOE_RUNTIME_LIB_RUNTIMEINTERNAL_H
#define MOE_RUNTIME_LIB_RUNTIMEINTERNAL_H

#include "artifact.pb.h"
#include "moe-runtime/moe_runtime.h"

#include <cstdint>
#include <string>

namespace moe::rt {

/// What the hooks need to know about the run they are called from. Set
/// (thread-locally) by moe_run around the entry call, and by the pool on a
/// worker while it runs a range of that run's parallel_for.
struct RunContext {
  int threads = 1;
  moe_profile *profile = nullptr;
};

/// The context of the current thread's run, or null outside any run.
const RunContext *currentRun();
/// Sets it; returns the previous one.
const RunContext *setCurrentRun(const RunContext *run);

/// The number of threads a run may use at most (the cores of this host).
int maxThreads();

/// A parallel loop is cut into at most this many ranges per thread, taken
/// first come first served (ThreadPool.cpp).
constexpr int64_t kRangesPerThread = 4;

/// moe_rt_parallel_for with an explicit thread count.
void parallelFor(int64_t n, void (*body)(int64_t, int64_t, void *), void *ctx,
                 int threads);

/// "" if this CPU has every feature `target` requires, else why not.
std::string checkCpuFeatures(const moe::artifact::Target &target);

/// The manifest of a loaded model.
const moe::artifact::Manifest &modelManifest(const moe_model *model);
/// The model a profile was created for.
const moe_model *profileModel(const moe_profile *profile);
/// Counts one more successful run into `profile`.
void profileCountRun(moe_profile *profile);
/// Records one moe_rt_record_routing call into `profile`.
void profileRecord(moe_profile *profile, int64_t layer, const int64_t *selected,
                   int64_t tokens, int64_t k);

/// Sets this thread's moe_last_error(); returns -1 (or null via the
/// overload) for `return fail(...)`.
int setError(const std::string &message);

} // namespace moe::rt

#endif // MOE_RUNTIME_LIB_RUNTIMEINTERNAL_H
