//===- Npz.h - NumPy .npy files and .npz archives ---------------*- C++ -*-===//
//
// The layer dumps and moe-run's inputs and outputs are NumPy files, so any
// Python user can read them without our code. This writer has no LLVM or
// MLIR dependency so the runtime can share it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_NPZ_H
#define MOE_RUNTIME_NPZ_H

#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt {

/// One array to write: `descr` is the NumPy dtype string ("<f4", "<f2",
/// "|u1", "<u2", "<i8", "|b1"), `data` its little-endian C-order bytes.
struct NpyArray {
  std::string name;
  std::string descr;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

/// Serialises one array as a .npy (format version 1.0) file image.
std::vector<uint8_t> encodeNpy(const NpyArray &array);

/// Writes one array as a .npy file at `path`: `descr` and `shape` as in
/// NpyArray, `size` bytes at `data`. Returns "" or what failed.
std::string writeNpy(const std::string &path, const std::string &descr,
                     const std::vector<int64_t> &shape, const void *data,
                     size_t size);

/// Writes `arrays` as an uncompressed .npz (zip) archive at `path`, each
/// array stored as `<name>.npy`. Returns an empty string on success, or a
/// message saying what failed.
std::string writeNpz(const std::string &path,
                     const std::vector<NpyArray> &arrays);

/// Reads a .npy file (format 1.0 to 3.0, C order, little-endian or
/// byte-sized dtypes). On failure returns false and sets `error` to a
/// message naming the file and what is wrong.
bool readNpy(const std::string &path, NpyArray &array, std::string &error);

/// Reads `array` (dtype "<f4", "<f2" or "<f8") as float32 values.
bool npyToFloat(const NpyArray &array, std::vector<float> &out,
                std::string &error);

/// CRC-32 (IEEE 802.3), as zip requires.
uint32_t crc32(const uint8_t *data, size_t size, uint32_t crc = 0);

} // namespace moe::rt

#endif // MOE_RUNTIME_NPZ_H
