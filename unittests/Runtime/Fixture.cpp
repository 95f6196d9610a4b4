//===- Fixture.cpp - A tiny artifact without the compiler -----------------===//

#include "Fixture.h"

#include "moe-runtime/Artifact.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

#ifndef MOE_FIXTURE_SOURCE
#error "MOE_FIXTURE_SOURCE must name fixture_model.c"
#endif

namespace moe::rt::fixture {

std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in),
                              std::istreambuf_iterator<char>());
}

void writeFile(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            std::streamsize(bytes.size()));
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

std::vector<uint8_t> compile(const std::string &dir, const std::string &name,
                             const std::string &defines) {
  const char *cc = std::getenv("CC");
  std::string so = dir + "/" + name;
  std::string command = std::string(cc && *cc ? cc : "cc") +
                        " -shared -fPIC -O1 " + defines + " -o '" + so +
                        "' '" MOE_FIXTURE_SOURCE "'";
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("the C compiler failed: " + command);
  return readFile(so);
}

std::string write(const std::string &path, const std::vector<uint8_t> &code,
                  const Options &options) {
  // The weights outlive write(): w is passed without a copy.
  static const std::vector<float> w = [] {
    std::vector<float> v(kHidden);
    for (int h = 0; h < kHidden; ++h)
      v[h] = weight(h);
    return v;
  }();
  ArtifactWriter writer;
  writer.setProducer("runtime fixture");
  TargetDesc target;
  target.features = options.features;
  target.isaLevel = options.isaLevel;
  writer.setTarget(target);
  if (!options.entry.empty())
    writer.setEntry(options.entry);
  writer.addInput({"x", MOE_DT_F32, {-1, kHidden}, {"tokens", ""}});
  writer.addInput({"offset", MOE_DT_I64, {-1}, {"tokens"}});
  writer.addOutput({"y", MOE_DT_F32, {-1, kHidden}, {"tokens", ""}});
  writer.addOutput({"yt", MOE_DT_F32, {kHidden, -1}, {"", "tokens"}});
  writer.addOutput({"count", MOE_DT_I64, {}, {}});
  writer.setHostCode(code);

  WeightDesc wd;
  wd.name = "w";
  wd.shape = {kHidden};
  wd.layer = 0;
  wd.role = "scale";
  writer.addWeightView(wd, w.data(), w.size() * sizeof(float));
  WeightDesc cd;
  cd.name = "c";
  cd.dtype = MOE_DT_U8;
  cd.shape = {4};
  cd.layer = 0;
  cd.cluster = 1;
  cd.role = "up_u";
  cd.hasQuant = true;
  cd.quant.storage = "int8";
  cd.quant.groupSize = 4;
  cd.quant.symmetric = true;
  cd.section = "cluster1";
  writer.addWeight(cd, {2, 3, 4, 5});

  writer.addLayer({0, "block0.moe", 4, 2, 2, {0, 0, 1, 1}});
  writer.addLayer({1, "block1.moe", 3, 1, 0, {}});
  return writer.write(path);
}

float expectedY(int64_t t, int h, float bias) {
  float x = float(t) - float(h) / 4.0f;
  return x * weight(h) + bias + float(t % 5);
}

void makeInputs(int64_t tokens, std::vector<float> &x,
                std::vector<int64_t> &offset) {
  x.resize(size_t(tokens * kHidden));
  offset.resize(size_t(tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int h = 0; h < kHidden; ++h)
      x[size_t(t * kHidden + h)] = float(t) - float(h) / 4.0f;
    offset[size_t(t)] = t % 5;
  }
}

} // namespace moe::rt::fixture
