//===- Npz.cpp - Writing NumPy .npy arrays into .npz archives -------------===//

#include "moe-runtime/Npz.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace moe::rt {

uint32_t crc32(const uint8_t *data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i)
    crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::vector<uint8_t> encodeNpy(const NpyArray &array) {
  std::string header = "{'descr': '" + array.descr +
                       "', 'fortran_order': False, 'shape': (";
  for (int64_t dim : array.shape)
    header += std::to_string(dim) + ", ";
  // A 1-tuple needs its comma; a 0-d array prints "()". Strip the trailing
  // space (and, for rank > 1, the comma) to match NumPy's own spelling.
  if (!array.shape.empty()) {
    header.pop_back();
    if (array.shape.size() > 1)
      header.pop_back();
  }
  header += "), }";
  // Magic (6) + version (2) + header length (2) + header + '\n' must be a
  // multiple of 64 so the data that follows is aligned.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';

  std::vector<uint8_t> out;
  out.reserve(10 + header.size() + array.data.size());
  const char magic[] = "\x93NUMPY\x01\x00";
  out.insert(out.end(), magic, magic + 8);
  out.push_back(static_cast<uint8_t>(header.size() & 0xFF));
  out.push_back(static_cast<uint8_t>(header.size() >> 8));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

namespace {
void put16(std::vector<uint8_t> &b, uint16_t v) {
  b.push_back(v & 0xFF);
  b.push_back(v >> 8);
}
void put32(std::vector<uint8_t> &b, uint32_t v) {
  put16(b, v & 0xFFFF);
  put16(b, v >> 16);
}
} // namespace

std::string writeNpz(const std::string &path,
                     const std::vector<NpyArray> &arrays) {
  // Plain zip, method 0 (stored): numpy.load reads it, and a later reader
  // can mmap the arrays in place. Archives over 4 GiB would need zip64,
  // which a layer dump never reaches on the models we target; refuse them.
  std::vector<uint8_t> central;
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return "cannot open '" + path + "' for writing: " + std::strerror(errno);
  uint64_t offset = 0;
  bool ok = true;
  auto write = [&](const void *p, size_t n) {
    ok = ok && std::fwrite(p, 1, n, f) == n;
    offset += n;
  };
  for (const NpyArray &array : arrays) {
    std::vector<uint8_t> npy = encodeNpy(array);
    std::string name = array.name + ".npy";
    if (npy.size() >= 0xFFFFFFFFull || offset >= 0xFFFFFFFFull) {
      std::fclose(f);
      return "array '" + array.name + "' makes '" + path +
             "' larger than 4 GiB, which needs zip64";
    }
    uint32_t crc = crc32(npy.data(), npy.size());
    std::vector<uint8_t> local;
    put32(local, 0x04034b50);
    put16(local, 20); // version needed
    put16(local, 0);  // flags
    put16(local, 0);  // stored
    put16(local, 0);  // time
    put16(local, 0x21); // date: 1980-01-01
    put32(local, crc);
    put32(local, static_cast<uint32_t>(npy.size()));
    put32(local, static_cast<uint32_t>(npy.size()));
    put16(local, static_cast<uint16_t>(name.size()));
    put16(local, 0);
    uint32_t localOffset = static_cast<uint32_t>(offset);
    write(local.data(), local.size());
    write(name.data(), name.size());
    write(npy.data(), npy.size());

    put32(central, 0x02014b50);
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, static_cast<uint32_t>(npy.size()));
    put32(central, static_cast<uint32_t>(npy.size()));
    put16(central, static_cast<uint16_t>(name.size()));
    put16(central, 0); // extra
    put16(central, 0); // comment
    put16(central, 0); // disk
    put16(central, 0); // internal attributes
    put32(central, 0); // external attributes
    put32(central, localOffset);
    central.insert(central.end(), name.begin(), name.end());
  }
  uint32_t centralOffset = static_cast<uint32_t>(offset);
  write(central.data(), central.size());
  std::vector<uint8_t> end;
  put32(end, 0x06054b50);
  put16(end, 0);
  put16(end, 0);
  put16(end, static_cast<uint16_t>(arrays.size()));
  put16(end, static_cast<uint16_t>(arrays.size()));
  put32(end, static_cast<uint32_t>(central.size()));
  put32(end, centralOffset);
  put16(end, 0);
  write(end.data(), end.size());
  if (std::fclose(f) != 0)
    ok = false;
  if (!ok)
    return "failed writing '" + path + "': " + std::strerror(errno);
  return "";
}

} // namespace moe::rt
