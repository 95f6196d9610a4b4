/*===- moe_runtime.h - The moe-mlir runtime's C API ------------------------===*
 *
 * Loads a compiled model (an artifact, `model.moe`, see docs/artifact.md),
 * describes its inputs and outputs, runs it, and records routing profiles
 * (docs/routing-profile.md). No LLVM or MLIR: the runtime is libc, libm,
 * pthreads, libdl and protobuf-lite.
 *
 * Errors: functions that can fail return NULL or a non-zero int and leave a
 * one-line message in moe_last_error() (per thread).
 *
 * Threads: a loaded model is immutable; any number of threads may call
 * moe_run on it at once. A profile may be shared by concurrent runs.
 *
 *===----------------------------------------------------------------------===*/

#ifndef MOE_RUNTIME_H
#define MOE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MOE_RT_API __attribute__((visibility("default")))
#else
#define MOE_RT_API
#endif

/* Element types; the values are the manifest's (moe.artifact.DType). */
typedef enum moe_dtype {
  MOE_DT_UNSPECIFIED = 0,
  MOE_DT_F32 = 1,
  MOE_DT_F16 = 2,
  MOE_DT_BF16 = 3,
  MOE_DT_F64 = 4,
  MOE_DT_I64 = 5,
  MOE_DT_I32 = 6,
  MOE_DT_I8 = 7,
  MOE_DT_U8 = 8,
  MOE_DT_BOOL = 9
} moe_dtype;

#define MOE_MAX_RANK 8

/* A dense, row-major (C order) tensor. For inputs the caller owns `data`;
 * outputs are filled by moe_run and released with moe_tensor_free. */
typedef struct moe_tensor {
  const char *name;
  moe_dtype dtype;
  int32_t rank;
  int64_t shape[MOE_MAX_RANK];
  void *data;
} moe_tensor;

/* A declared input or output. `shape[i]` is -1 for a dynamic dim;
 * `dim_params[i]` names it ("" for none). Valid while the model is. */
typedef struct moe_tensor_info {
  const char *name;
  moe_dtype dtype;
  int32_t rank;
  const int64_t *shape;
  const char *const *dim_params;
} moe_tensor_info;

typedef struct moe_model moe_model;
typedef struct moe_profile moe_profile;

/* Zero-initialised options are the defaults (all checks on). */
typedef struct moe_load_options {
  int skip_checksums;  /* nonzero: do not hash sections and weights */
  int skip_cpu_check;  /* nonzero: load even if the CPU lacks a feature */
} moe_load_options;

typedef struct moe_run_options {
  int threads;          /* threads for this run; 0: all cores */
  moe_profile *profile; /* non-NULL: record routing into it */
} moe_run_options;

/* The message of the last failure on this thread ("" if none). */
MOE_RT_API const char *moe_last_error(void);

/* Loads an artifact; `opts` may be NULL. NULL on failure. */
MOE_RT_API moe_model *moe_model_load(const char *path,
                                     const moe_load_options *opts);
MOE_RT_API void moe_model_free(moe_model *model);

MOE_RT_API size_t moe_model_num_inputs(const moe_model *model);
MOE_RT_API size_t moe_model_num_outputs(const moe_model *model);
/* NULL when `index` is out of range. */
MOE_RT_API const moe_tensor_info *moe_model_input(const moe_model *model,
                                                  size_t index);
MOE_RT_API const moe_tensor_info *moe_model_output(const moe_model *model,
                                                   size_t index);
/* The artifact's producer, entry symbol, ISA level and required CPU
 * features (comma-separated); "" when absent. */
MOE_RT_API const char *moe_model_producer(const moe_model *model);
MOE_RT_API const char *moe_model_entry(const moe_model *model);
MOE_RT_API const char *moe_model_isa_level(const moe_model *model);
MOE_RT_API const char *moe_model_cpu_features(const moe_model *model);
/* Weights, in manifest order: their description and their bytes, used in
 * place in the mapped file. */
MOE_RT_API size_t moe_model_num_weights(const moe_model *model);
MOE_RT_API const moe_tensor_info *moe_model_weight(const moe_model *model,
                                                   size_t index);
MOE_RT_API const void *moe_model_weight_data(const moe_model *model,
                                             size_t index);

/* Runs the model. Every declared input is given exactly once, bound by
 * name; `n_outputs` equals moe_model_num_outputs and `outputs` receives
 * them in declaration order (name, dtype, rank, shape, data). `opts` may be
 * NULL. Returns 0, or -1 with moe_last_error() set (outputs untouched). */
MOE_RT_API int moe_run(moe_model *model, const moe_tensor *inputs,
                       size_t n_inputs, moe_tensor *outputs, size_t n_outputs,
                       const moe_run_options *opts);

/* Frees an output's data and sets it to NULL. */
MOE_RT_API void moe_tensor_free(moe_tensor *tensor);

MOE_RT_API const char *moe_dtype_name(moe_dtype dtype); /* "f32", ... */
MOE_RT_API size_t moe_dtype_size(moe_dtype dtype);      /* 0: unknown */

/* Routing profiles: counts accumulated over every run given the profile.
 * Created for one model (it must outlive the profile's use in runs). */
MOE_RT_API moe_profile *moe_profile_create(const moe_model *model);
MOE_RT_API void moe_profile_free(moe_profile *profile);
MOE_RT_API void moe_profile_reset(moe_profile *profile);
/* The profile as JSON (malloc'ed, the caller frees), or NULL. */
MOE_RT_API char *moe_profile_json(const moe_profile *profile);
/* Writes the JSON to `path`; 0 or -1 with moe_last_error(). */
MOE_RT_API int moe_profile_write_json(const moe_profile *profile,
                                      const char *path);

/* ---- Hooks the compiled code imports (resolved when it is dlopen'ed) ---- */

/* `selected` holds tokens x k expert indices (row-major) chosen for layer
 * `layer` (Layer.index). Recorded into the current run's profile; returns at
 * once when the run has none. */
MOE_RT_API void moe_rt_record_routing(int64_t layer, const int64_t *selected,
                                      int64_t tokens, int64_t k);

/* Calls body(begin, end, ctx) over contiguous, disjoint ranges covering
 * [0, n), at most one range per thread of the current run, in parallel on
 * the process's pool; returns when all are done. Nested calls (from inside
 * a body) run inline as one range. */
MOE_RT_API void moe_rt_parallel_for(int64_t n,
                                    void (*body)(int64_t begin, int64_t end,
                                                 void *ctx),
                                    void *ctx);

/* A check in the compiled code failed (a data-dependent shape that does
 * not fit, say): moe_run returns -1 with `message` in moe_last_error().
 * Does not return. */
MOE_RT_API void moe_rt_fail(const char *message);

#ifdef __cplusplus
}
#endif

#endif /* MOE_RUNTIME_H */
