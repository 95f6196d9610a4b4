//===- Fixture.h - A tiny artifact without the compiler ---------*- C++ -*-===//
//
// Compiles fixture_model.c with the system C compiler (`cc`, or $CC) into a
// shared object and wraps it with ArtifactWriter, as the compiler would.
// Used by the runtime's unit tests and by `runtime-fixture`, which writes
// the artifacts moe-run's tests use.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_UNITTESTS_RUNTIME_FIXTURE_H
#define MOE_UNITTESTS_RUNTIME_FIXTURE_H

#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::fixture {

constexpr int kHidden = 8;

/// w[h], the fixture's weight.
inline float weight(int h) { return 0.5f * float(h + 1); }
/// c[0], the other weight's first byte (yt = y * c[0]).
constexpr float kC0 = 2.0f;

/// Compiles fixture_model.c with `defines` (e.g. "-DBIAS=5.0f") into
/// `dir`/`name`; returns the shared object's bytes. Throws
/// std::runtime_error when the compiler fails.
std::vector<uint8_t> compile(const std::string &dir, const std::string &name,
                             const std::string &defines = "");

struct Options {
  std::string entry;                  ///< "" -> the default
  std::vector<std::string> features;  ///< required CPU features
  std::string isaLevel;
};

/// Writes the fixture's artifact with `code` as host code; returns "" or
/// the writer's message.
std::string write(const std::string &path, const std::vector<uint8_t> &code,
                  const Options &options = {});

/// The expected y[t][h] for the inputs makeInputs() builds.
float expectedY(int64_t t, int h, float bias = 1.0f);

/// Inputs for `tokens` tokens: x[t][h] = t - h / 4, offset[t] = t % 5.
void makeInputs(int64_t tokens, std::vector<float> &x,
                std::vector<int64_t> &offset);

std::vector<uint8_t> readFile(const std::string &path);
void writeFile(const std::string &path, const std::vector<uint8_t> &bytes);

} // namespace moe::rt::fixture

#endif // MOE_UNITTESTS_RUNTIME_FIXTURE_H
