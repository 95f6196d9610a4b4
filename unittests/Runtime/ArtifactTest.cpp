//===- ArtifactTest.cpp - The writer's layout, loading, describing --------===//

#include "TestUtil.h"

#include <cstring>
#include <fstream>

namespace moe::rt::test {
namespace {
namespace art = moe::artifact;

TEST(Writer, LaysOutAlignedSectionsAndTheManifestLast) {
  Parsed p = parse(shared().model);
  EXPECT_EQ(std::memcmp(p.header.magic, kArtifactMagic, 8), 0);
  EXPECT_EQ(p.header.formatVersion, kArtifactVersion);
  EXPECT_EQ(p.header.headerSize, kHeaderSize);
  EXPECT_EQ(p.header.fileSize, p.bytes.size());
  EXPECT_EQ(p.header.manifestOffset + p.header.manifestSize, p.bytes.size());
  const art::Manifest &m = p.manifest;
  EXPECT_EQ(m.version(), 1u);
  EXPECT_EQ(m.producer(), "runtime fixture");
  ASSERT_EQ(m.sections_size(), 3);
  EXPECT_EQ(m.sections(0).kind(), art::HOST_CODE);
  EXPECT_EQ(m.sections(0).size(), shared().code.size());
  EXPECT_EQ(m.sections(1).kind(), art::WEIGHTS);
  EXPECT_EQ(m.sections(1).name(), "weights");
  EXPECT_EQ(m.sections(2).name(), "cluster1");
  for (const art::Section &s : m.sections()) {
    EXPECT_EQ(s.offset() % 4096, 0u) << s.name();
    EXPECT_EQ(s.alignment(), 4096u);
    EXPECT_EQ(s.checksum(), hash64(p.bytes.data() + s.offset(), s.size()));
  }
  EXPECT_EQ(std::memcmp(p.bytes.data() + m.sections(0).offset(),
                        shared().code.data(), shared().code.size()),
            0);
  ASSERT_EQ(m.weights_size(), 2);
  EXPECT_EQ(m.weights(0).name(), "w"); // in the order added
  EXPECT_EQ(m.weights(0).section(), 1u);
  EXPECT_EQ(m.weights(0).size(), 32u);
  EXPECT_EQ(m.weights(0).role(), "scale");
  EXPECT_FALSE(m.weights(0).has_quant());
  EXPECT_EQ(m.weights(1).name(), "c");
  EXPECT_EQ(m.weights(1).section(), 2u);
  EXPECT_EQ(m.weights(1).cluster(), 1);
  EXPECT_EQ(m.weights(1).quant().storage(), "int8");
  EXPECT_EQ(m.weights(1).quant().group_size(), 4);
  for (const art::Weight &w : m.weights()) {
    uint64_t at = m.sections(w.section()).offset() + w.offset();
    EXPECT_EQ(at % kWeightAlignment, 0u);
    EXPECT_EQ(w.checksum(), hash64(p.bytes.data() + at, w.size()));
  }
  ASSERT_EQ(m.layers_size(), 2);
  EXPECT_EQ(m.layers(0).assignment_size(), 4);
  EXPECT_EQ(m.inputs(0).dim_params(0), "tokens");
}

TEST(Writer, RefusesInconsistentDescriptions) {
  TempDir dir;
  auto attempt = [&](const std::function<void(ArtifactWriter &)> &add) {
    ArtifactWriter w;
    w.setHostCode({1, 2, 3});
    add(w);
    std::string error = w.write(dir.file("bad.moe"));
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad.moe")));
    return error;
  };
  EXPECT_NE(attempt([](ArtifactWriter &w) {
              WeightDesc d;
              d.name = "w";
              d.shape = {3};
              w.addWeight(d, std::vector<uint8_t>(10));
            }).find("weight 'w' has size 10 but its dtype and shape make 12"),
            std::string::npos);
  EXPECT_NE(attempt([](ArtifactWriter &w) {
              w.addInput({"x", MOE_DT_F32, {2}, {}});
              w.addInput({"x", MOE_DT_F32, {2}, {}});
            }).find("input 'x' is declared twice"),
            std::string::npos);
  EXPECT_NE(attempt([](ArtifactWriter &w) {
              w.addOutput({"y", MOE_DT_F32, {2, 3}, {"a"}});
            }).find("1 dim_params for rank 2"),
            std::string::npos);
  EXPECT_NE(attempt([](ArtifactWriter &w) {
              w.addLayer({0, "l", 4, 2, 2, {0, 1, 2, 0}});
            }).find("assigns an expert to cluster 2 of 2"),
            std::string::npos);
  EXPECT_NE(attempt([](ArtifactWriter &w) {
              w.addInput({"x", MOE_DT_F32, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {}});
            }).find("rank 9"),
            std::string::npos);
  ArtifactWriter none;
  EXPECT_EQ(none.write(dir.file("x.moe")), "the artifact has no host code");
}

TEST(Load, DescribesInputsOutputsAndWeights) {
  ModelPtr m = load(shared().model);
  ASSERT_TRUE(m) << moe_last_error();
  EXPECT_STREQ(moe_model_producer(m.get()), "runtime fixture");
  EXPECT_STREQ(moe_model_entry(m.get()), "moe_entry");
  ASSERT_EQ(moe_model_num_inputs(m.get()), 2u);
  ASSERT_EQ(moe_model_num_outputs(m.get()), 3u);
  const moe_tensor_info *x = moe_model_input(m.get(), 0);
  EXPECT_STREQ(x->name, "x");
  EXPECT_EQ(x->dtype, MOE_DT_F32);
  ASSERT_EQ(x->rank, 2);
  EXPECT_EQ(x->shape[0], -1);
  EXPECT_EQ(x->shape[1], 8);
  EXPECT_STREQ(x->dim_params[0], "tokens");
  EXPECT_STREQ(x->dim_params[1], "");
  const moe_tensor_info *offset = moe_model_input(m.get(), 1);
  EXPECT_STREQ(offset->name, "offset");
  EXPECT_EQ(offset->dtype, MOE_DT_I64);
  const moe_tensor_info *count = moe_model_output(m.get(), 2);
  EXPECT_STREQ(count->name, "count");
  EXPECT_EQ(count->rank, 0);
  EXPECT_EQ(moe_model_input(m.get(), 2), nullptr);
  EXPECT_EQ(moe_model_output(m.get(), 3), nullptr);
  EXPECT_STREQ(moe_dtype_name(MOE_DT_BF16), "bf16");
  EXPECT_EQ(moe_dtype_size(MOE_DT_I64), 8u);
  EXPECT_EQ(moe_dtype_size(MOE_DT_UNSPECIFIED), 0u);
}

TEST(Load, UsesWeightsInPlaceInTheMappedFile) {
  ModelPtr m = load(shared().model);
  ASSERT_TRUE(m) << moe_last_error();
  ASSERT_EQ(moe_model_num_weights(m.get()), 2u);
  EXPECT_STREQ(moe_model_weight(m.get(), 0)->name, "w");
  auto *w = static_cast<const float *>(moe_model_weight_data(m.get(), 0));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w) % kWeightAlignment, 0u);
  for (int h = 0; h < fx::kHidden; ++h)
    EXPECT_EQ(w[h], fx::weight(h));
  // The weight lies in a read-only mapping of the artifact itself.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool found = false;
  auto at = reinterpret_cast<uintptr_t>(w);
  while (std::getline(maps, line)) {
    unsigned long begin, end;
    char perms[8];
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &begin, &end, perms) != 3)
      continue;
    if (at >= begin && at < end) {
      found = true;
      EXPECT_NE(line.find(std::filesystem::path(shared().model).filename()),
                std::string::npos)
          << line;
      EXPECT_EQ(perms[1], '-') << "writable: " << line;
    }
  }
  EXPECT_TRUE(found);
}

TEST(Load, SameArtifactTwiceAndFreshCodeAfterFree) {
  // Two live copies of one model are independent.
  ModelPtr a = load(shared().model), b = load(shared().model);
  ASSERT_TRUE(a && b) << moe_last_error();
  Outputs oa, ob;
  ASSERT_EQ(runTokens(a.get(), 5, oa), 0) << moe_last_error();
  ASSERT_EQ(runTokens(b.get(), 6, ob), 0) << moe_last_error();
  EXPECT_TRUE(outputsAreRight(oa, 5));
  EXPECT_TRUE(outputsAreRight(ob, 6));
  a.reset();
  b.reset();
  // A model loaded after one was freed gets its own code, even though its
  // memfd may get the freed one's number (/proc/self/fd/N).
  TempDir dir;
  std::vector<uint8_t> code = fx::compile(dir.path, "bias5.so", "-DBIAS=5.0f");
  ASSERT_EQ(fx::write(dir.file("bias5.moe"), code), "");
  for (int round = 0; round < 3; ++round) {
    ModelPtr one = load(shared().model);
    ASSERT_TRUE(one) << moe_last_error();
    Outputs o1;
    ASSERT_EQ(runTokens(one.get(), 4, o1), 0) << moe_last_error();
    EXPECT_TRUE(outputsAreRight(o1, 4, 1.0f));
    one.reset();
    ModelPtr five = load(dir.file("bias5.moe"));
    ASSERT_TRUE(five) << moe_last_error();
    Outputs o5;
    ASSERT_EQ(runTokens(five.get(), 4, o5), 0) << moe_last_error();
    EXPECT_TRUE(outputsAreRight(o5, 4, 5.0f));
  }
}

} // namespace
} // namespace moe::rt::test
