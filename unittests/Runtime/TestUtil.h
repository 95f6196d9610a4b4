//===- TestUtil.h - Helpers shared by the runtime's tests -------*- C++ -*-===//

#ifndef MOE_UNITTESTS_RUNTIME_TESTUTIL_H
#define MOE_UNITTESTS_RUNTIME_TESTUTIL_H

#include "Fixture.h"

#include "ArtifactFormat.h"
#include "moe-runtime/Artifact.h"
#include "moe-runtime/Checksum.h"
#include "moe-runtime/moe_runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace moe::rt::test {
namespace fx = moe::rt::fixture;

/// A fresh directory, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "moe-rt-XXXXXX").string();
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    if (!mkdtemp(name.data()))
      throw std::runtime_error("mkdtemp failed");
    path = name.data();
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string &name) const { return path + "/" + name; }
};

/// The fixture compiled once per test process: its code and its artifact.
struct Shared {
  TempDir dir;
  std::vector<uint8_t> code;
  std::string model;
};
inline const Shared &shared() {
  static Shared *s = [] {
    auto *s = new Shared;
    s->code = fx::compile(s->dir.path, "fixture.so");
    s->model = s->dir.file("model.moe");
    std::string error = fx::write(s->model, s->code);
    if (!error.empty())
      throw std::runtime_error(error);
    return s;
  }();
  return *s;
}

using ModelPtr = std::unique_ptr<moe_model, void (*)(moe_model *)>;
inline ModelPtr load(const std::string &path,
                     const moe_load_options *opts = nullptr) {
  return ModelPtr(moe_model_load(path.c_str(), opts), moe_model_free);
}

/// The outputs of one run, freed at scope exit.
struct Outputs {
  moe_tensor t[3] = {};
  ~Outputs() {
    for (moe_tensor &x : t)
      moe_tensor_free(&x);
  }
};

/// The fixture's inputs for `tokens` tokens (x, offset; t[2] is a spare
/// copy of x for tests that pass one input twice).
struct Inputs {
  std::vector<float> x;
  std::vector<int64_t> offset;
  moe_tensor t[3] = {};
  explicit Inputs(int64_t tokens) {
    fx::makeInputs(tokens, x, offset);
    t[0].name = "x";
    t[0].dtype = MOE_DT_F32;
    t[0].rank = 2;
    t[0].shape[0] = tokens;
    t[0].shape[1] = fx::kHidden;
    t[0].data = x.data();
    t[1].name = "offset";
    t[1].dtype = MOE_DT_I64;
    t[1].rank = 1;
    t[1].shape[0] = tokens;
    t[1].data = offset.data();
    t[2] = t[0];
  }
};

/// Runs the fixture on `tokens` tokens; returns moe_run's result.
inline int runTokens(moe_model *m, int64_t tokens, Outputs &out,
                     const moe_run_options *opts = nullptr) {
  Inputs in(tokens);
  return moe_run(m, in.t, 2, out.t, 3, opts);
}

/// Whether `out` holds the fixture's exact answer for `tokens` tokens.
inline ::testing::AssertionResult outputsAreRight(const Outputs &out,
                                                  int64_t tokens,
                                                  float bias = 1.0f) {
  const moe_tensor &y = out.t[0], &yt = out.t[1], &count = out.t[2];
  if (y.rank != 2 || y.shape[0] != tokens || y.shape[1] != fx::kHidden ||
      yt.rank != 2 || yt.shape[0] != fx::kHidden || yt.shape[1] != tokens ||
      count.rank != 0)
    return ::testing::AssertionFailure() << "wrong output shapes";
  if (std::string(y.name) != "y" || std::string(yt.name) != "yt" ||
      std::string(count.name) != "count" || count.dtype != MOE_DT_I64)
    return ::testing::AssertionFailure() << "wrong output names or dtypes";
  if (*static_cast<const int64_t *>(count.data) != tokens)
    return ::testing::AssertionFailure() << "count is wrong";
  auto *py = static_cast<const float *>(y.data);
  auto *pyt = static_cast<const float *>(yt.data);
  for (int64_t t = 0; t < tokens; ++t)
    for (int h = 0; h < fx::kHidden; ++h) {
      float want = fx::expectedY(t, h, bias);
      if (py[t * fx::kHidden + h] != want || pyt[h * tokens + t] != want * fx::kC0)
        return ::testing::AssertionFailure()
               << "value at token " << t << ", column " << h << ": y "
               << py[t * fx::kHidden + h] << ", yt " << pyt[h * tokens + t]
               << ", want " << want;
    }
  return ::testing::AssertionSuccess();
}

/// An artifact's parts, as the loader sees them.
struct Parsed {
  std::vector<uint8_t> bytes;
  ArtifactHeader header;
  moe::artifact::Manifest manifest;
};
inline Parsed parse(const std::string &path) {
  Parsed p;
  p.bytes = fx::readFile(path);
  p.header = decodeHeader(p.bytes.data());
  p.manifest.ParseFromArray(p.bytes.data() + p.header.manifestOffset,
                            int(p.header.manifestSize));
  return p;
}

/// Writes to `out` the artifact at `in` with its manifest changed by
/// `edit` and `raw` appended to its encoding (header fields kept
/// consistent: the manifest is last).
inline void rewriteManifest(
    const std::string &in, const std::string &out,
    const std::function<void(moe::artifact::Manifest &)> &edit,
    const std::string &raw = "") {
  Parsed p = parse(in);
  edit(p.manifest);
  std::string manifest = p.manifest.SerializeAsString() + raw;
  p.bytes.resize(p.header.manifestOffset);
  p.bytes.insert(p.bytes.end(), manifest.begin(), manifest.end());
  p.header.manifestSize = manifest.size();
  p.header.manifestChecksum = hash64(manifest.data(), manifest.size());
  p.header.fileSize = p.bytes.size();
  encodeHeader(p.header, p.bytes.data());
  fx::writeFile(out, p.bytes);
}

} // namespace moe::rt::test

#endif // MOE_UNITTESTS_RUNTIME_TESTUTIL_H
