//===- moe-run.cpp - Runs a compiled model (model.moe) --------------------===//
//
//   moe-run model.moe --input NAME=FILE.npy ... [--output NAME=FILE.npy ...]
//           [--bench N] [--warmup N] [--batches] [--profile FILE.json]
//           [--threads N] [--describe]
//
// Links only the runtime (no LLVM, MLIR or shared protobuf), so the binary
// can be copied to the machine that runs the model. Every failure is one
// line on stderr and a non-zero exit: 2 for a bad command line, 1 for the
// rest.
//
//===----------------------------------------------------------------------===//

#include "moe-runtime/Npz.h"
#include "moe-runtime/moe_runtime.h"

#include <malloc.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {
const char *kUsage =
    "usage: moe-run MODEL.moe [--input NAME=FILE.npy]... "
    "[--output NAME=FILE.npy]...\n"
    "               [--bench N] [--warmup N] [--batches] [--profile "
    "FILE.json]\n"
    "               [--threads N] [--describe] [--no-checksums]\n"
    "\n"
    "Runs a model compiled by moe-compile. Inputs and outputs are NumPy .npy\n"
    "files; every input of the model must be given. --describe prints the\n"
    "inputs and outputs. --batches: the first axis of every input indexes\n"
    "independent runs (B batches); each output file stacks the B results.\n"
    "--bench N runs --warmup more runs (default 3), then N timed runs, both\n"
    "cycling over the batches, and prints one JSON line. --profile writes\n"
    "the routing profile of the first pass. --threads N (0: all cores).\n"
    "--no-checksums skips hashing the file at load.\n";

struct UsageError {
  std::string message;
};
struct Failure {
  std::string message;
};

struct Binding {
  std::string name, file;
};

struct Options {
  std::string model;
  std::vector<Binding> inputs, outputs;
  long bench = 0;
  long warmup = 3;
  bool batches = false;
  std::string profile;
  long threads = 0;
  bool describe = false;
  bool noChecksums = false;
};

long parseCount(const std::string &flag, const std::string &text, long min) {
  char *end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || v < min || v > 1000000000)
    throw UsageError{flag + " wants an integer >= " + std::to_string(min) +
                     ", not '" + text + "'"};
  return v;
}

Binding parseBinding(const std::string &flag, const std::string &text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw UsageError{flag + " wants NAME=FILE.npy, not '" + text + "'"};
  return {text.substr(0, eq), text.substr(eq + 1)};
}

Options parseArgs(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) {
      if (!o.model.empty())
        throw UsageError{"more than one model given ('" + o.model + "', '" +
                         arg + "')"};
      o.model = arg;
      continue;
    }
    if (arg == "--describe") {
      o.describe = true;
      continue;
    }
    if (arg == "--no-checksums") {
      o.noChecksums = true;
      continue;
    }
    if (arg == "--batches") {
      o.batches = true;
      continue;
    }
    size_t eq = arg.find('=');
    std::string flag = arg.substr(0, eq);
    if (flag != "--input" && flag != "--output" && flag != "--bench" &&
        flag != "--warmup" && flag != "--profile" && flag != "--threads")
      throw UsageError{"unknown option '" + arg + "'"};
    if (eq != std::string::npos)
      value = arg.substr(eq + 1);
    else if (i + 1 < argc)
      value = argv[++i];
    else
      throw UsageError{flag + " needs a value"};
    if (flag == "--input")
      o.inputs.push_back(parseBinding(flag, value));
    else if (flag == "--output")
      o.outputs.push_back(parseBinding(flag, value));
    else if (flag == "--bench")
      o.bench = parseCount(flag, value, 1);
    else if (flag == "--warmup")
      o.warmup = parseCount(flag, value, 0);
    else if (flag == "--threads")
      o.threads = parseCount(flag, value, 0);
    else if (value.empty())
      throw UsageError{"--profile needs a file name"};
    else
      o.profile = value;
  }
  if (o.model.empty())
    throw UsageError{"no model given"};
  return o;
}

struct DtypeName {
  moe_dtype dtype;
  const char *descr;
};
// NumPy has no bfloat16: bf16 tensors travel as their raw bits ("<u2").
const DtypeName kNpyDtypes[] = {
    {MOE_DT_F32, "<f4"}, {MOE_DT_F16, "<f2"}, {MOE_DT_BF16, "<u2"},
    {MOE_DT_F64, "<f8"}, {MOE_DT_I64, "<i8"}, {MOE_DT_I32, "<i4"},
    {MOE_DT_I8, "|i1"},  {MOE_DT_U8, "|u1"},  {MOE_DT_BOOL, "|b1"},
};

moe_dtype dtypeOfDescr(const std::string &descr) {
  for (const DtypeName &d : kNpyDtypes)
    if (descr == d.descr)
      return d.dtype;
  return MOE_DT_UNSPECIFIED;
}

const char *descrOfDtype(moe_dtype dtype) {
  for (const DtypeName &d : kNpyDtypes)
    if (dtype == d.dtype)
      return d.descr;
  return "|u1";
}

std::string shapeText(const moe_tensor_info &t) {
  std::string s = "[";
  for (int d = 0; d < t.rank; ++d) {
    if (d)
      s += ", ";
    if (t.shape[d] >= 0)
      s += std::to_string(t.shape[d]);
    else
      s += *t.dim_params[d] ? t.dim_params[d] : "?";
  }
  return s + "]";
}

void describe(const moe_model *m, const std::string &path) {
  std::printf("model: %s\n", path.c_str());
  std::printf("producer: %s\n", moe_model_producer(m));
  std::printf("entry: %s\n", moe_model_entry(m));
  std::printf(
      "cpu: %s%s%s\n", *moe_model_isa_level(m) ? moe_model_isa_level(m) : "any",
      *moe_model_cpu_features(m) ? ", needs " : "", moe_model_cpu_features(m));
  size_t width = 4;
  for (size_t i = 0; i < moe_model_num_inputs(m); ++i)
    width = std::max(width, std::strlen(moe_model_input(m, i)->name));
  for (size_t i = 0; i < moe_model_num_outputs(m); ++i)
    width = std::max(width, std::strlen(moe_model_output(m, i)->name));
  auto list = [&](const char *title, size_t n,
                  const moe_tensor_info *(*get)(const moe_model *, size_t)) {
    std::printf("%s:\n", title);
    for (size_t i = 0; i < n; ++i) {
      const moe_tensor_info *t = get(m, i);
      std::printf("  %-*s  %-4s  %s\n", int(width), t->name,
                  moe_dtype_name(t->dtype), shapeText(*t).c_str());
    }
  };
  list("inputs", moe_model_num_inputs(m), moe_model_input);
  list("outputs", moe_model_num_outputs(m), moe_model_output);
  size_t bytes = 0;
  for (size_t i = 0; i < moe_model_num_weights(m); ++i) {
    const moe_tensor_info *w = moe_model_weight(m, i);
    size_t n = moe_dtype_size(w->dtype);
    for (int d = 0; d < w->rank; ++d)
      n *= size_t(w->shape[d]);
    bytes += n;
  }
  std::printf("weights: %zu (%zu bytes)\n", moe_model_num_weights(m), bytes);
}

/// Frees every output's data on scope exit.
struct Outputs {
  std::vector<moe_tensor> tensors;
  explicit Outputs(size_t n) : tensors(n) {}
  ~Outputs() {
    for (moe_tensor &t : tensors)
      moe_tensor_free(&t);
  }
};

double percentile(std::vector<double> sorted, double p) {
  size_t rank = size_t(std::max(1.0, std::ceil(p * double(sorted.size()))));
  return sorted[std::min(rank, sorted.size()) - 1];
}

int runTool(const Options &o) {
  moe_load_options loadOptions{};
  loadOptions.skip_checksums = o.noChecksums;
  // Describing runs nothing: an artifact for another CPU can be inspected.
  loadOptions.skip_cpu_check =
      o.describe && o.inputs.empty() && o.outputs.empty() && !o.bench;
  moe_model *m = moe_model_load(o.model.c_str(), &loadOptions);
  if (!m)
    throw Failure{moe_last_error()};
  struct Free {
    moe_model *m;
    ~Free() { moe_model_free(m); }
  } freeModel{m};
  if (o.describe)
    describe(m, o.model);

  size_t nOut = moe_model_num_outputs(m);
  std::vector<std::string> outputFiles(nOut);
  for (const Binding &b : o.outputs) {
    size_t k = 0;
    while (k < nOut && b.name != moe_model_output(m, k)->name)
      ++k;
    if (k == nOut) {
      std::string names;
      for (size_t i = 0; i < nOut; ++i)
        names += (i ? ", " : "") + std::string(moe_model_output(m, i)->name);
      throw UsageError{"--output " + b.name +
                       ": the model has no such output (its outputs: " + names +
                       ")"};
    }
    if (!outputFiles[k].empty())
      throw UsageError{"--output " + b.name + " is given twice"};
    outputFiles[k] = b.file;
  }
  if (o.describe && o.inputs.empty() && o.outputs.empty() && !o.bench &&
      o.profile.empty())
    return 0;

  std::vector<moe::rt::NpyArray> arrays(o.inputs.size());
  std::vector<moe_tensor> inputs(o.inputs.size());
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    std::string error;
    if (!moe::rt::readNpy(o.inputs[i].file, arrays[i], error))
      throw Failure{"--input " + o.inputs[i].name + ": " + error};
    moe_tensor &t = inputs[i];
    t.name = o.inputs[i].name.c_str();
    t.dtype = dtypeOfDescr(arrays[i].descr);
    if (t.dtype == MOE_DT_UNSPECIFIED)
      throw Failure{"--input " + o.inputs[i].name + ": '" + o.inputs[i].file +
                    "' holds dtype '" + arrays[i].descr +
                    "', which moe-run does not read (float32, float16, "
                    "float64, int64, int32, int8, uint8, bool)"};
    size_t skip = o.batches ? 1 : 0;
    if (arrays[i].shape.size() < skip || (o.batches && !arrays[i].shape[0]))
      throw Failure{"--input " + o.inputs[i].name + ": '" + o.inputs[i].file +
                    "' has no batches (--batches reads the first axis)"};
    if (arrays[i].shape.size() - skip > MOE_MAX_RANK)
      throw Failure{"--input " + o.inputs[i].name + ": '" + o.inputs[i].file +
                    "' has rank " +
                    std::to_string(arrays[i].shape.size() - skip) +
                    ", more than " + std::to_string(MOE_MAX_RANK)};
    t.rank = int32_t(arrays[i].shape.size() - skip);
    std::copy(arrays[i].shape.begin() + skip, arrays[i].shape.end(), t.shape);
    t.data = arrays[i].data.data();
  }
  int64_t numBatches = 1;
  if (o.batches && !inputs.empty()) {
    numBatches = arrays[0].shape[0];
    for (size_t i = 1; i < inputs.size(); ++i)
      if (arrays[i].shape[0] != numBatches)
        throw Failure{"--batches: --input " + o.inputs[i].name + " has " +
                      std::to_string(arrays[i].shape[0]) +
                      " batches, --input " + o.inputs[0].name + " " +
                      std::to_string(numBatches)};
  }
  // The inputs of batch b: views into the arrays.
  auto batch = [&](int64_t b) {
    std::vector<moe_tensor> views = inputs;
    for (size_t i = 0; i < views.size(); ++i)
      views[i].data = arrays[i].data.data() +
                      size_t(b) * (arrays[i].data.size() / size_t(numBatches));
    return views;
  };

  moe_profile *profile = nullptr;
  if (!o.profile.empty() && !(profile = moe_profile_create(m)))
    throw Failure{moe_last_error()};
  struct FreeProfile {
    moe_profile *p;
    ~FreeProfile() { moe_profile_free(p); }
  } freeProfile{profile};

  moe_run_options runOptions{};
  runOptions.threads = int(o.threads);
  runOptions.profile = profile;
  // The first pass runs every batch once and keeps what --output asks for.
  std::vector<std::vector<int64_t>> outShapes(nOut);
  std::vector<std::vector<char>> outBytes(nOut);
  for (int64_t b = 0; b < numBatches; ++b) {
    Outputs out(nOut);
    std::vector<moe_tensor> in = batch(b);
    if (moe_run(m, in.data(), in.size(), out.tensors.data(), nOut,
                &runOptions) != 0)
      throw Failure{moe_last_error()};
    for (size_t k = 0; k < nOut; ++k) {
      if (outputFiles[k].empty())
        continue;
      const moe_tensor &t = out.tensors[k];
      std::vector<int64_t> shape(t.shape, t.shape + t.rank);
      if (b == 0)
        outShapes[k] = shape;
      else if (shape != outShapes[k])
        throw Failure{"--output " + std::string(t.name) +
                      ": batches give different shapes, which one file "
                      "cannot stack"};
      size_t bytes = moe_dtype_size(t.dtype);
      for (int64_t d : shape)
        bytes *= size_t(d);
      const char *data = static_cast<const char *>(t.data);
      outBytes[k].insert(outBytes[k].end(), data, data + bytes);
      if (b + 1 < numBatches)
        continue;
      if (o.batches)
        shape.insert(shape.begin(), numBatches);
      std::string error =
          moe::rt::writeNpy(outputFiles[k], descrOfDtype(t.dtype), shape,
                            outBytes[k].data(), outBytes[k].size());
      if (!error.empty())
        throw Failure{"--output " + std::string(t.name) + ": " + error};
    }
  }
  if (profile && moe_profile_write_json(profile, o.profile.c_str()) != 0)
    throw Failure{moe_last_error()};

  if (o.bench) {
    runOptions.profile = nullptr;
    std::vector<std::vector<moe_tensor>> batches;
    for (int64_t b = 0; b < numBatches; ++b)
      batches.push_back(batch(b));
    std::vector<double> ms;
    for (long r = 0; r < o.warmup + o.bench; ++r) {
      std::vector<moe_tensor> &in = batches[size_t(r % numBatches)];
      Outputs out(nOut);
      auto start = std::chrono::steady_clock::now();
      int rc = moe_run(m, in.data(), in.size(), out.tensors.data(), nOut,
                       &runOptions);
      auto stop = std::chrono::steady_clock::now();
      if (rc != 0)
        throw Failure{moe_last_error()};
      if (r >= o.warmup)
        ms.push_back(
            std::chrono::duration<double, std::milli>(stop - start).count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms.size() % 2
                        ? ms[ms.size() / 2]
                        : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
    double p90 = percentile(ms, 0.9);
    // Tokens: all but the last dim of the model's first input (of one
    // batch), multiplied.
    long long tokens = 1;
    if (moe_model_num_inputs(m) > 0) {
      const char *first = moe_model_input(m, 0)->name;
      for (const moe_tensor &t : inputs)
        if (!std::strcmp(t.name, first))
          for (int d = 0; d + 1 < t.rank; ++d)
            tokens *= t.shape[d];
    }
    std::printf("{\"runs\": %ld, \"batches\": %lld, \"tokens\": %lld, "
                "\"median_ms\": %.6f, \"p90_ms\": %.6f, "
                "\"min_ms\": %.6f, \"tokens_per_s\": %.3f}\n",
                o.bench, (long long)numBatches, tokens, median, p90, ms.front(),
                median > 0 ? double(tokens) / (median / 1000.0) : 0.0);
  }
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  // The compiled code allocates its intermediate tensors with malloc; glibc
  // serves large ones with fresh mmaps, so every run of a prefill batch
  // page-faulted and zeroed them anew (6% of a 2048-token run). Heap
  // allocations that stay with the process are reused instead. A process
  // setting, so the tool sets it, not the runtime library.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  try {
    Options o = parseArgs(argc, argv);
    return runTool(o);
  } catch (const UsageError &e) {
    std::fprintf(stderr, "moe-run: error: %s (see moe-run --help)\n",
                 e.message.c_str());
    return 2;
  } catch (const Failure &e) {
    std::fprintf(stderr, "moe-run: error: %s\n", e.message.c_str());
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "moe-run: error: %s\n", e.what());
    return 1;
  }
}
