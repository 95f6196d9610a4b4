//===- LoadErrorTest.cpp - Every way an artifact is refused ---------------===//
//
// Each damaged or mismatched artifact must fail to load with a message that
// says what is wrong (and where), never crash.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <fstream>

namespace moe::rt::test {
namespace {
namespace art = moe::artifact;

class LoadError : public ::testing::Test {
protected:
  TempDir dir;
  std::string bad = dir.file("bad.moe");

  /// Loading `path` fails with a message holding every one of `parts`.
  ::testing::AssertionResult fails(const std::string &path,
                                   std::vector<std::string> parts,
                                   const moe_load_options *opts = nullptr) {
    ModelPtr m = load(path, opts);
    if (m)
      return ::testing::AssertionFailure() << "it loaded";
    std::string message = moe_last_error();
    for (const std::string &part : parts)
      if (message.find(part) == std::string::npos)
        return ::testing::AssertionFailure()
               << "the message lacks \"" << part << "\": " << message;
    if (message.find('\n') != std::string::npos)
      return ::testing::AssertionFailure() << "not one line: " << message;
    return ::testing::AssertionSuccess() << message;
  }

  /// The fixture with byte `at` changed by `edit`, written to `bad`.
  void writeEdited(const std::function<void(std::vector<uint8_t> &)> &edit) {
    std::vector<uint8_t> bytes = fx::readFile(shared().model);
    edit(bytes);
    fx::writeFile(bad, bytes);
  }

  void editManifest(const std::function<void(art::Manifest &)> &edit) {
    rewriteManifest(shared().model, bad, edit);
  }

  void editHeader(const std::function<void(ArtifactHeader &)> &edit) {
    writeEdited([&](std::vector<uint8_t> &b) {
      ArtifactHeader h = decodeHeader(b.data());
      edit(h);
      encodeHeader(h, b.data());
    });
  }
};

TEST_F(LoadError, MissingEmptyOrNotAnArtifact) {
  EXPECT_TRUE(fails(dir.file("nope.moe"), {"cannot open", "nope.moe"}));
  fx::writeFile(bad, {});
  EXPECT_TRUE(fails(bad, {"not a moe-mlir artifact", "bad magic"}));
  EXPECT_TRUE(fails(dir.path, {"not a regular file"}));
  writeEdited([](std::vector<uint8_t> &b) { b[0] = 'X'; });
  EXPECT_TRUE(fails(bad, {"bad.moe", "not a moe-mlir artifact", "bad magic"}));
}

TEST_F(LoadError, Truncated) {
  writeEdited([](std::vector<uint8_t> &b) { b.resize(b.size() - 100); });
  EXPECT_TRUE(fails(bad, {"is truncated", "its header says"}));
  writeEdited([](std::vector<uint8_t> &b) { b.resize(30); });
  EXPECT_TRUE(fails(bad, {"is truncated", "30 bytes", "64-byte header"}));
  writeEdited([](std::vector<uint8_t> &b) { b.resize(5000); });
  EXPECT_TRUE(fails(bad, {"is truncated"}));
  writeEdited([](std::vector<uint8_t> &b) { b.push_back(0); });
  EXPECT_TRUE(fails(bad, {"trailing data"}));
}

TEST_F(LoadError, Versions) {
  editHeader([](ArtifactHeader &h) { h.formatVersion = 2; });
  EXPECT_TRUE(fails(bad, {"format version 2", "newer than this runtime", "(1)"}));
  editHeader([](ArtifactHeader &h) { h.formatVersion = 0; });
  EXPECT_TRUE(fails(bad, {"format version 0"}));
  editManifest([](art::Manifest &m) { m.set_version(2); });
  EXPECT_TRUE(fails(bad, {"manifest version 2"}));
  editHeader([](ArtifactHeader &h) { h.headerSize = 32; });
  EXPECT_TRUE(fails(bad, {"damaged header"}));
}

TEST_F(LoadError, ManifestOutOfRange) {
  editHeader([](ArtifactHeader &h) { h.manifestOffset = h.fileSize - 2; });
  EXPECT_TRUE(fails(bad, {"the manifest", "lies outside the file"}));
  editHeader([](ArtifactHeader &h) { h.manifestSize = ~0ull - 10; });
  EXPECT_TRUE(fails(bad, {"the manifest", "lies outside the file"}));
  editHeader([](ArtifactHeader &h) { h.manifestOffset = 8; });
  EXPECT_TRUE(fails(bad, {"the manifest", "lies outside the file"}));
}

TEST_F(LoadError, BitFlips) {
  Parsed p = parse(shared().model);
  const art::Manifest &m = p.manifest;
  auto flip = [&](uint64_t at) {
    writeEdited([&](std::vector<uint8_t> &b) { b[at] ^= 0x10; });
  };
  flip(p.header.manifestOffset + p.header.manifestSize / 2);
  EXPECT_TRUE(fails(bad, {"checksum mismatch in the manifest"}));
  flip(m.sections(0).offset() + 100);
  EXPECT_TRUE(fails(bad, {"checksum mismatch in section 'host_code'"}));
  flip(m.sections(1).offset() + m.weights(0).offset() + 5);
  EXPECT_TRUE(fails(bad, {"checksum mismatch in weight 'w'", "'weights'"}));
  flip(m.sections(2).offset() + m.weights(1).offset() + 3);
  EXPECT_TRUE(fails(bad, {"checksum mismatch in weight 'c'", "'cluster1'"}));
  // Told not to hash, the loader takes the damaged weight as it is.
  moe_load_options skip{};
  skip.skip_checksums = 1;
  ModelPtr loaded = load(bad, &skip);
  EXPECT_TRUE(loaded) << moe_last_error();
}

TEST_F(LoadError, SectionAndWeightRanges) {
  uint64_t fileSize = parse(shared().model).bytes.size();
  editManifest([&](art::Manifest &m) {
    m.mutable_sections(1)->set_offset(fileSize);
  });
  EXPECT_TRUE(fails(bad, {"section 'weights'", "lies outside the file"}));
  editManifest([](art::Manifest &m) {
    m.mutable_sections(1)->set_size(~0ull - 100);
  });
  EXPECT_TRUE(fails(bad, {"section 'weights'", "lies outside the file"}));
  editManifest([](art::Manifest &m) { m.mutable_weights(0)->set_offset(64); });
  EXPECT_TRUE(fails(bad, {"weight 'w' (offset 64, size 32) lies outside its "
                          "section 'weights' (size 32)"}));
  editManifest([](art::Manifest &m) { m.mutable_weights(0)->set_size(28); });
  EXPECT_TRUE(fails(bad, {"weight 'w' has size 28", "make 32 bytes"}));
  editManifest([](art::Manifest &m) { m.mutable_weights(0)->set_section(0); });
  EXPECT_TRUE(fails(bad, {"weight 'w'", "not a weights section"}));
  editManifest([](art::Manifest &m) { m.mutable_weights(1)->set_section(9); });
  EXPECT_TRUE(fails(bad, {"weight 'c' names section 9"}));
  editManifest([](art::Manifest &m) {
    m.mutable_sections(2)->set_offset(m.sections(1).offset());
  });
  EXPECT_TRUE(fails(bad, {"sections overlap"}));
  editManifest([](art::Manifest &m) {
    m.mutable_sections(0)->set_kind(art::WEIGHTS);
  });
  EXPECT_TRUE(fails(bad, {"0 host code sections"}));
}

TEST_F(LoadError, Misalignment) {
  editManifest([](art::Manifest &m) {
    m.mutable_sections(1)->set_offset(m.sections(1).offset() + 8);
  });
  EXPECT_TRUE(fails(bad, {"section 'weights' is misaligned", "4096"}));
  editManifest([](art::Manifest &m) {
    m.mutable_sections(1)->set_size(64);
    m.mutable_weights(0)->set_offset(2);
  });
  EXPECT_TRUE(fails(bad, {"weight 'w' is misaligned", "element size 4"}));
  editManifest([](art::Manifest &m) {
    m.mutable_sections(1)->set_alignment(3000);
  });
  EXPECT_TRUE(fails(bad, {"not a power of two"}));
}

TEST_F(LoadError, BadTensorSpecs) {
  editManifest([](art::Manifest &m) {
    m.mutable_inputs(0)->set_dtype(static_cast<art::DType>(42));
  });
  EXPECT_TRUE(fails(bad, {"input 'x' has unknown dtype 42"}));
  editManifest([](art::Manifest &m) { m.mutable_outputs(1)->set_shape(0, -5); });
  EXPECT_TRUE(fails(bad, {"output 'yt' has a dim of -5"}));
  editManifest([](art::Manifest &m) { m.mutable_layers(0)->set_top_k(9); });
  EXPECT_TRUE(fails(bad, {"layer 0 has bad counts"}));
}

TEST_F(LoadError, UnknownFieldsAndFutureSectionsAreIgnored) {
  // A later section kind, and field 100 (varint 1), which this runtime
  // does not know.
  rewriteManifest(
      shared().model, bad,
      [](art::Manifest &m) {
        art::Section *gpu = m.add_sections();
        gpu->set_kind(art::GPU_CODE);
        gpu->set_name("gpu");
        gpu->set_offset(100);
        gpu->set_size(0);
        gpu->set_checksum(hash64(nullptr, 0));
      },
      std::string("\xa0\x06\x01", 3));
  ModelPtr m = load(bad);
  EXPECT_TRUE(m) << moe_last_error();
}

TEST_F(LoadError, HostCodeThatDoesNotLoad) {
  std::string notElf = "this is not an ELF shared object";
  ASSERT_EQ(fx::write(bad, std::vector<uint8_t>(notElf.begin(), notElf.end())),
            "");
  EXPECT_TRUE(fails(bad, {"the host code section does not load"}));

  ASSERT_EQ(fx::write(bad, shared().code, {"no_such_entry", {}, ""}), "");
  EXPECT_TRUE(fails(bad, {"does not export the entry 'no_such_entry'"}));

  std::vector<uint8_t> code =
      fx::compile(dir.path, "undefined.so", "-DUNDEFINED_SYMBOL");
  ASSERT_EQ(fx::write(bad, code), "");
  EXPECT_TRUE(fails(bad, {"does not load", "moe_rt_does_not_exist"}));

  // The entry may have another name.
  code = fx::compile(dir.path, "named.so", "-DENTRY=forward");
  ASSERT_EQ(fx::write(bad, code, {"forward", {}, ""}), "");
  ModelPtr m = load(bad);
  ASSERT_TRUE(m) << moe_last_error();
  EXPECT_STREQ(moe_model_entry(m.get()), "forward");
  Outputs out;
  ASSERT_EQ(runTokens(m.get(), 3, out), 0) << moe_last_error();
  EXPECT_TRUE(outputsAreRight(out, 3));
}

TEST_F(LoadError, CpuFeatures) {
  ASSERT_EQ(fx::write(bad, shared().code,
                      {"", {"moe-imaginary-feature"}, "x86-64-v9"}),
            "");
  EXPECT_TRUE(fails(bad, {"compiled for x86-64-v9",
                          "needs moe-imaginary-feature",
                          "does not know"}));
  moe_load_options skip{};
  skip.skip_cpu_check = 1;
  EXPECT_TRUE(load(bad, &skip)) << moe_last_error();

  ASSERT_EQ(fx::write(bad, shared().code, {"", {"avx512f"}, "x86-64-v4"}), "");
  if (__builtin_cpu_supports("avx512f")) {
    EXPECT_TRUE(load(bad)) << moe_last_error();
  } else {
    EXPECT_TRUE(fails(bad, {"this artifact was compiled for x86-64-v4 (needs "
                            "avx512f), this CPU lacks avx512f"}));
  }
  // LLVM's "+feature" spelling; sse2 is in every x86-64.
  ASSERT_EQ(fx::write(bad, shared().code, {"", {"+sse2", "-avx512f"}, ""}), "");
  EXPECT_TRUE(load(bad)) << moe_last_error();

  editManifest([](art::Manifest &m) {
    m.mutable_target()->set_arch("aarch64");
  });
  EXPECT_TRUE(fails(bad, {"compiled for aarch64", "this host is x86_64"}));
}

} // namespace
} // namespace moe::rt::test
