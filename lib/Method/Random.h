//===- Random.h - Portable pseudo-random numbers ----------------*- C++ -*-===//
//
// Internal to MoeMethod. Seeds must give the same clusters and the same
// randomised SVD on every platform and standard library, so nothing here
// uses <random>'s distributions (their algorithms are unspecified) or libm
// (whose log may differ in the last bit): only integer arithmetic and IEEE
// +, -, *, / and sqrt, which are correctly rounded everywhere.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_METHOD_RANDOM_H
#define MOE_MLIR_LIB_METHOD_RANDOM_H

#include <cstdint>

namespace mlir::moe::method::detail {

/// splitmix64: expands one 64-bit seed into well-mixed state words.
uint64_t splitMix64(uint64_t &state);

/// xoshiro256** seeded from splitmix64.
class Rng {
public:
  explicit Rng(uint64_t seed);
  /// A stream for (seed, stream): independent of other streams of the seed.
  Rng(uint64_t seed, uint64_t stream);

  uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform integer in [0, n) (n > 0), without modulo bias.
  uint64_t below(uint64_t n);
  /// Standard normal (Marsaglia's polar method).
  double normal();

private:
  uint64_t s[4];
  bool hasSpare = false;
  double spare = 0;
};

/// Natural logarithm of a positive finite x from IEEE basic operations only
/// (so it rounds identically everywhere); accurate to a few ulp.
double portableLog(double x);

} // namespace mlir::moe::method::detail

#endif // MOE_MLIR_LIB_METHOD_RANDOM_H
