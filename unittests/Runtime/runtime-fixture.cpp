//===- runtime-fixture.cpp - Writes the fixture artifacts for moe-run tests ===//
//
//   runtime-fixture DIR
//
// Writes DIR/model.moe (fixture_model.c, see Fixture.h) and
// DIR/needs-feature.moe (the same, requiring a CPU feature no CPU has).
//
//===----------------------------------------------------------------------===//

#include "Fixture.h"

#include <cstdio>
#include <exception>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: runtime-fixture DIR\n");
    return 2;
  }
  namespace fx = moe::rt::fixture;
  try {
    std::string dir = argv[1];
    std::vector<uint8_t> code = fx::compile(dir, "fixture.so");
    std::string error = fx::write(dir + "/model.moe", code);
    if (error.empty())
      error = fx::write(dir + "/needs-feature.moe", code,
                        {"", {"avx2", "moe-imaginary-feature"}, "x86-64-v9"});
    if (!error.empty()) {
      std::fprintf(stderr, "runtime-fixture: %s\n", error.c_str());
      return 1;
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "runtime-fixture: %s\n", e.what());
    return 1;
  }
  return 0;
}
