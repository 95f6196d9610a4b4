//===- Npz.cpp - Writing NumPy .npy arrays into .npz archives -------------===//

#include "moe-runtime/Npz.h"

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <sys/stat.h>

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

namespace {
/// The .npy preamble (magic, version, header dict, padding) for an array.
std::string npyHeader(const std::string &descr,
                      const std::vector<int64_t> &shape) {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (int64_t dim : shape)
    header += std::to_string(dim) + ", ";
  // A 1-tuple needs its comma; a 0-d array prints "()". Strip the trailing
  // space (and, for rank > 1, the comma) to match NumPy's own spelling.
  if (!shape.empty()) {
    header.pop_back();
    if (shape.size() > 1)
      header.pop_back();
  }
  header += "), }";
  // Magic (6) + version (2) + header length (2) + header + '\n' must be a
  // multiple of 64 so the data that follows is aligned.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header;
}
} // namespace

std::vector<uint8_t> encodeNpy(const NpyArray &array) {
  std::string header = npyHeader(array.descr, array.shape);
  std::vector<uint8_t> out;
  out.reserve(header.size() + array.data.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

std::string writeNpy(const std::string &path, const std::string &descr,
                     const std::vector<int64_t> &shape, const void *data,
                     size_t size) {
  std::string header = npyHeader(descr, shape);
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return "cannot open '" + path + "' for writing: " + std::strerror(errno);
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  ok = ok && (size == 0 || std::fwrite(data, 1, size, f) == size);
  ok = std::fclose(f) == 0 && ok;
  if (!ok)
    return "failed writing '" + path + "': " + std::strerror(errno);
  return "";
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

namespace {
/// The value of `key` in a .npy header dict, e.g. "'<f4'" or "(3, 4)".
bool headerField(const std::string &header, const std::string &key,
                 std::string &value) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos)
    return false;
  size_t colon = header.find(':', at);
  if (colon == std::string::npos)
    return false;
  size_t start = header.find_first_not_of(' ', colon + 1);
  if (start == std::string::npos)
    return false;
  size_t end;
  if (header[start] == '(')
    end = header.find(')', start) + 1;
  else if (header[start] == '\'')
    end = header.find('\'', start + 1) + 1;
  else
    end = header.find_first_of(",}", start);
  if (end == std::string::npos || end == 0)
    return false;
  value = header.substr(start, end - start);
  return true;
}

size_t dtypeSize(const std::string &descr) {
  if (descr.size() < 3)
    return 0;
  return static_cast<size_t>(std::atoi(descr.c_str() + 2));
}
} // namespace

bool readNpy(const std::string &path, NpyArray &array, std::string &error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    error = "cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    error = "'" + path + "' is not a regular file";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open '" + path + "'";
    return false;
  }
  std::vector<char> bytes(static_cast<size_t>(st.st_size));
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    error = "cannot read '" + path + "'";
    return false;
  }
  auto fail = [&](const std::string &what) {
    error = "'" + path + "' is not a valid .npy file: " + what;
    return false;
  };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0)
    return fail("missing the \\x93NUMPY magic");
  unsigned major = static_cast<uint8_t>(bytes[6]);
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen = static_cast<uint8_t>(bytes[8]) |
                (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12)
      return fail("truncated header");
    headerLen = 0;
    for (int k = 0; k < 4; ++k)
      headerLen |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + k]))
                   << (8 * k);
    headerStart = 12;
  } else {
    return fail("unsupported format version " + std::to_string(major));
  }
  if (headerStart + headerLen > bytes.size())
    return fail("truncated header");
  std::string header(bytes.data() + headerStart, headerLen);
  std::string descr, order, shape;
  if (!headerField(header, "descr", descr) ||
      !headerField(header, "fortran_order", order) ||
      !headerField(header, "shape", shape))
    return fail("header lacks descr, fortran_order or shape");
  if (order.rfind("True", 0) == 0)
    return fail("Fortran order is not supported; save a C-order array");
  array.descr = descr.substr(1, descr.size() - 2);
  if (array.descr.size() < 3 || array.descr[0] == '>')
    return fail("unsupported dtype '" + array.descr + "' (big-endian?)");
  array.shape.clear();
  size_t count = 1;
  for (size_t k = 1; k < shape.size();) {
    while (k < shape.size() && (shape[k] == ' ' || shape[k] == ','))
      ++k;
    if (k >= shape.size() || shape[k] == ')')
      break;
    char *end = nullptr;
    long long dim = std::strtoll(shape.c_str() + k, &end, 10);
    if (end == shape.c_str() + k || dim < 0)
      return fail("bad shape " + shape);
    array.shape.push_back(dim);
    count *= static_cast<size_t>(dim);
    k = static_cast<size_t>(end - shape.c_str());
  }
  size_t elementSize = dtypeSize(array.descr);
  if (elementSize == 0)
    return fail("unsupported dtype '" + array.descr + "'");
  size_t dataStart = headerStart + headerLen;
  if (bytes.size() - dataStart != count * elementSize)
    return fail("holds " + std::to_string(bytes.size() - dataStart) +
                " data bytes, its header says " +
                std::to_string(count * elementSize));
  array.data.assign(bytes.begin() + dataStart, bytes.end());
  return true;
}

namespace {
float halfBitsToFloat(uint16_t h) {
  int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (exponent == 0)
    return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31)
    return mantissa ? NAN : sign * INFINITY;
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}
} // namespace

bool npyToFloat(const NpyArray &array, std::vector<float> &out,
                std::string &error) {
  size_t elementSize = dtypeSize(array.descr);
  size_t count = elementSize ? array.data.size() / elementSize : 0;
  out.resize(count);
  const uint8_t *p = array.data.data();
  if (array.descr == "<f4") {
    std::memcpy(out.data(), p, count * 4);
  } else if (array.descr == "<f8") {
    for (size_t k = 0; k < count; ++k) {
      double v;
      std::memcpy(&v, p + 8 * k, 8);
      out[k] = static_cast<float>(v);
    }
  } else if (array.descr == "<f2") {
    for (size_t k = 0; k < count; ++k) {
      uint16_t v;
      std::memcpy(&v, p + 2 * k, 2);
      out[k] = halfBitsToFloat(v);
    }
  } else {
    error = "dtype '" + array.descr + "' is not float16, float32 or float64";
    return false;
  }
  return true;
}

} // namespace moe::rt
