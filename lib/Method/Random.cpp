//===- Random.cpp - Portable pseudo-random numbers ------------------------===//

#include "Random.h"

#include <cmath>

namespace mlir::moe::method::detail {

uint64_t splitMix64(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Rng::Rng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t &word : s)
    word = splitMix64(state);
}

Rng::Rng(uint64_t seed, uint64_t stream) {
  // Mixing the stream through splitmix64 first keeps nearby (seed, stream)
  // pairs from producing overlapping sequences.
  uint64_t mixer = stream;
  uint64_t state = seed ^ splitMix64(mixer);
  for (uint64_t &word : s)
    word = splitMix64(state);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Rng::next() {
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

uint64_t Rng::below(uint64_t n) {
  // Rejection of the incomplete last block keeps every value equally likely.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = next();
  } while (x >= limit);
  return x % n;
}

double Rng::normal() {
  if (hasSpare) {
    hasSpare = false;
    return spare;
  }
  double u, v, r2;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    r2 = u * u + v * v;
  } while (r2 >= 1.0 || r2 == 0.0);
  double f = std::sqrt(-2.0 * portableLog(r2) / r2);
  spare = v * f;
  hasSpare = true;
  return u * f;
}

double portableLog(double x) {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(t) with
  // t = (m - 1) / (m + 1), |t| < 0.172, whose odd series converges fast.
  int e = 0;
  double m = std::frexp(x, &e); // exact: m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    --e;
  }
  double t = (m - 1.0) / (m + 1.0);
  double t2 = t * t;
  // Horner over 1/(2k+1), k = 11..1: the next term, t^24/25, is < 1e-19.
  static constexpr double inverseOdd[] = {
      1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11, 1.0 / 13,
      1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23};
  double poly = 0.0;
  for (int k = 10; k >= 0; --k)
    poly = (poly + inverseOdd[k]) * t2;
  double sum = t * (1.0 + poly);
  // ln 2 split so e * ln2Hi is exact for |e| < 2^11.
  const double ln2Hi = 6.93147180369123816490e-01;
  const double ln2Lo = 1.90821492927058770002e-10;
  return e * ln2Hi + (2.0 * sum + e * ln2Lo);
}

} // namespace mlir::moe::method::detail
