//===- Checksum.cpp - XXH64 -----------------------------------------------===//
//
// xxHash64 as specified by its author (github.com/Cyan4973/xxHash, doc/
// xxhash_spec.md): four 64-bit lanes over 32-byte stripes, then the tail in
// 8-, 4- and 1-byte steps, then an avalanche. Little-endian loads.
//
//===----------------------------------------------------------------------===//

#include "moe-runtime/Checksum.h"

#include <cstring>

namespace moe::rt {
namespace {
constexpr uint64_t P1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t P2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t P3 = 0x165667B19E3779F9ull;
constexpr uint64_t P4 = 0x85EBCA77C2B2AE63ull;
constexpr uint64_t P5 = 0x27D4EB2F165667C5ull;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t load64(const unsigned char *p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v; // the runtime targets little-endian hosts only
}

inline uint32_t load32(const unsigned char *p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint64_t round(uint64_t acc, uint64_t input) {
  acc += input * P2;
  acc = rotl(acc, 31);
  return acc * P1;
}

inline uint64_t mergeRound(uint64_t acc, uint64_t lane) {
  acc ^= round(0, lane);
  return acc * P1 + P4;
}

/// Consumes whole 32-byte stripes of [p, p + n); returns the bytes used.
inline size_t stripes(uint64_t acc[4], const unsigned char *p, size_t n) {
  size_t used = 0;
  for (; used + 32 <= n; used += 32, p += 32) {
    acc[0] = round(acc[0], load64(p));
    acc[1] = round(acc[1], load64(p + 8));
    acc[2] = round(acc[2], load64(p + 16));
    acc[3] = round(acc[3], load64(p + 24));
  }
  return used;
}
} // namespace

Hash64::Hash64(uint64_t seed) : seed(seed) {
  acc[0] = seed + P1 + P2;
  acc[1] = seed + P2;
  acc[2] = seed;
  acc[3] = seed - P1;
}

void Hash64::update(const void *data, size_t size) {
  if (size == 0)
    return;
  const auto *p = static_cast<const unsigned char *>(data);
  total += size;
  if (buffered) {
    size_t take = 32 - buffered < size ? 32 - buffered : size;
    std::memcpy(buffer + buffered, p, take);
    buffered += take;
    p += take;
    size -= take;
    if (buffered < 32)
      return;
    stripes(acc, buffer, 32);
    buffered = 0;
  }
  size_t used = stripes(acc, p, size);
  std::memcpy(buffer, p + used, size - used);
  buffered = size - used;
}

uint64_t Hash64::digest() const {
  uint64_t h;
  if (total >= 32) {
    h = rotl(acc[0], 1) + rotl(acc[1], 7) + rotl(acc[2], 12) + rotl(acc[3], 18);
    for (int i = 0; i < 4; ++i)
      h = mergeRound(h, acc[i]);
  } else {
    h = seed + P5;
  }
  h += total;
  const unsigned char *p = buffer;
  size_t n = buffered;
  for (; n >= 8; n -= 8, p += 8)
    h = rotl(h ^ round(0, load64(p)), 27) * P1 + P4;
  if (n >= 4) {
    h = rotl(h ^ (uint64_t(load32(p)) * P1), 23) * P2 + P3;
    n -= 4;
    p += 4;
  }
  for (; n > 0; --n, ++p)
    h = rotl(h ^ (*p * P5), 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

uint64_t hash64(const void *data, size_t size, uint64_t seed) {
  Hash64 state(seed);
  state.update(data, size);
  return state.digest();
}

} // namespace moe::rt
