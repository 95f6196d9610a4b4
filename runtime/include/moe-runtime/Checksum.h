//===- Checksum.h - The artifact's 64-bit checksum --------------*- C++ -*-===//
//
// XXH64 (xxHash, 64-bit, seed 0 unless given): the checksum of the artifact
// header's manifest, of every section and of every weight. One
// implementation, used by the writer and the loader; docs/artifact.md
// states the algorithm.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKSUM_H
#define MOE_RUNTIME_CHECKSUM_H

#include <cstddef>
#include <cstdint>

namespace moe::rt {

/// Incremental XXH64: update() any number of times, then digest(). Gives
/// the same value as hash64() over the concatenated bytes.
class Hash64 {
public:
  explicit Hash64(uint64_t seed = 0);
  void update(const void *data, size_t size);
  uint64_t digest() const;

private:
  uint64_t acc[4];
  uint64_t seed;
  uint64_t total = 0;
  unsigned char buffer[32];
  size_t buffered = 0;
};

/// XXH64 of `size` bytes at `data`.
uint64_t hash64(const void *data, size_t size, uint64_t seed = 0);

} // namespace moe::rt

#endif // MOE_RUNTIME_CHECKSUM_H
