//===- ChecksumTest.cpp - XXH64, the header codec, .npy files -------------===//

#include "TestUtil.h"

#include "moe-runtime/Npz.h"

#include <cstring>

namespace moe::rt::test {
namespace {

TEST(Checksum, MatchesReferenceXXH64) {
  // Values from the reference implementation (python-xxhash 3.x).
  EXPECT_EQ(hash64("", 0), 0xef46db3751d8e999ull);
  EXPECT_EQ(hash64("a", 1), 0xd24ec4f1a98c6e5bull);
  EXPECT_EQ(hash64("abc", 3), 0x44bc2cf5ad770999ull);
  const char *spam = "Nobody inspects the spammish repetition";
  EXPECT_EQ(hash64(spam, std::strlen(spam)), 0xfbcea83c8a378bf1ull);
  const char *lanes = "0123456789abcdef01234567"; // 24 bytes: 8-byte tail
  EXPECT_EQ(hash64(lanes, 24), 0x8ba72889cd00eee9ull);
  std::vector<uint8_t> long773;
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 256; ++i)
      long773.push_back(uint8_t(i));
  for (char c : std::string("12345"))
    long773.push_back(uint8_t(c));
  EXPECT_EQ(hash64(long773.data(), long773.size()), 0xae0a5bd1b9a11ab8ull);
  EXPECT_EQ(hash64("xxhash", 6, 20141025), 0xb559b98d844e0635ull);
}

TEST(Checksum, IncrementalEqualsOneShot) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = uint8_t(i * 131 + 7);
  uint64_t want = hash64(data.data(), data.size());
  for (size_t split : {0, 1, 7, 31, 32, 33, 64, 500, 999, 1000})
    for (size_t split2 : {split, (split + data.size()) / 2}) {
      Hash64 h;
      h.update(data.data(), split);
      h.update(data.data() + split, split2 - split);
      h.update(data.data() + split2, data.size() - split2);
      EXPECT_EQ(h.digest(), want) << split << " " << split2;
    }
}

TEST(Header, RoundTrips) {
  ArtifactHeader h;
  std::memcpy(h.magic, kArtifactMagic, 8);
  h.formatVersion = 1;
  h.headerSize = 64;
  h.manifestOffset = 0x0102030405060708ull;
  h.manifestSize = 77;
  h.manifestChecksum = 0xfedcba9876543210ull;
  h.fileSize = 1ull << 40;
  unsigned char bytes[kHeaderSize];
  encodeHeader(h, bytes);
  EXPECT_EQ(std::memcmp(bytes, "MOEMLIR\0", 8), 0);
  EXPECT_EQ(bytes[8], 1); // little-endian
  EXPECT_EQ(bytes[16], 0x08);
  for (unsigned i = 48; i < kHeaderSize; ++i)
    EXPECT_EQ(bytes[i], 0);
  ArtifactHeader back = decodeHeader(bytes);
  EXPECT_EQ(back.manifestOffset, h.manifestOffset);
  EXPECT_EQ(back.manifestChecksum, h.manifestChecksum);
  EXPECT_EQ(back.fileSize, h.fileSize);
  EXPECT_EQ(back.headerSize, 64u);
}

TEST(Npy, WritesAndReadsEveryDtype) {
  TempDir dir;
  struct Case {
    const char *descr;
    size_t size;
  } cases[] = {{"<f4", 4}, {"<f2", 2}, {"<f8", 8}, {"<i8", 8},
               {"<i4", 4}, {"|i1", 1}, {"|u1", 1}, {"|b1", 1}};
  for (const Case &c : cases) {
    std::vector<int64_t> shape = {2, 3};
    std::vector<uint8_t> data(6 * c.size);
    for (size_t i = 0; i < data.size(); ++i)
      data[i] = uint8_t(i % 2);
    std::string path = dir.file("a.npy");
    ASSERT_EQ(writeNpy(path, c.descr, shape, data.data(), data.size()), "");
    NpyArray back;
    std::string error;
    ASSERT_TRUE(readNpy(path, back, error)) << error;
    EXPECT_EQ(back.descr, c.descr);
    EXPECT_EQ(back.shape, shape);
    EXPECT_EQ(back.data, data);
  }
  // Rank 0 and empty arrays.
  int64_t one = 42;
  ASSERT_EQ(writeNpy(dir.file("s.npy"), "<i8", {}, &one, 8), "");
  NpyArray s;
  std::string error;
  ASSERT_TRUE(readNpy(dir.file("s.npy"), s, error)) << error;
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.data.size(), 8u);
  ASSERT_EQ(writeNpy(dir.file("e.npy"), "<f4", {0, 8}, nullptr, 0), "");
  ASSERT_TRUE(readNpy(dir.file("e.npy"), s, error)) << error;
  EXPECT_EQ(s.shape, (std::vector<int64_t>{0, 8}));
  // A directory or a missing file is an error, not a crash.
  EXPECT_FALSE(readNpy(dir.path, s, error));
  EXPECT_FALSE(readNpy(dir.file("missing.npy"), s, error));
  EXPECT_NE(error.find("missing.npy"), std::string::npos);
}

} // namespace
} // namespace moe::rt::test
