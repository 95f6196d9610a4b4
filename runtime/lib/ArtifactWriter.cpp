//===- ArtifactWriter.cpp - Writing model.moe -----------------------------===//
//
// Layout: header, host code (4096-aligned), one weights section per section
// name (4096-aligned, weights 64-aligned inside), then the manifest. The
// manifest comes last so every offset is known before it is serialised.
// The bytes are streamed to the file once, hashed on the way.
//
//===----------------------------------------------------------------------===//

#include "ArtifactFormat.h"
#include "moe-runtime/Artifact.h"
#include "moe-runtime/Checksum.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace moe::rt {
namespace art = moe::artifact;

namespace {
/// Bytes either owned or borrowed.
struct Blob {
  std::vector<uint8_t> owned;
  const uint8_t *data = nullptr;
  size_t size = 0;

  void own(std::vector<uint8_t> bytes) {
    owned = std::move(bytes);
    data = owned.data();
    size = owned.size();
  }
  void view(const void *p, size_t n) {
    owned.clear();
    data = static_cast<const uint8_t *>(p);
    size = n;
  }
};

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

void fillTensor(art::TensorSpec &spec, const TensorDesc &desc) {
  spec.set_name(desc.name);
  spec.set_dtype(static_cast<art::DType>(desc.dtype));
  for (int64_t d : desc.shape)
    spec.add_shape(d);
  for (const std::string &p : desc.dimParams)
    spec.add_dim_params(p);
}
} // namespace

struct ArtifactWriter::Impl {
  art::Manifest manifest;
  Blob hostCode;
  bool hasHostCode = false;
  std::vector<WeightDesc> weights;
  std::vector<Blob> weightBytes;
};

ArtifactWriter::ArtifactWriter() : impl(new Impl) {
  impl->manifest.set_version(kArtifactVersion);
}
ArtifactWriter::~ArtifactWriter() = default;

void ArtifactWriter::setProducer(const std::string &producer) {
  impl->manifest.set_producer(producer);
}

void ArtifactWriter::setTarget(const TargetDesc &target) {
  art::Target *t = impl->manifest.mutable_target();
  t->Clear();
  t->set_arch(target.arch);
  t->set_cpu(target.cpu);
  t->set_isa_level(target.isaLevel);
  for (const std::string &f : target.features)
    t->add_features(f);
}

void ArtifactWriter::setEntry(const std::string &entry) {
  impl->manifest.set_entry(entry);
}

void ArtifactWriter::addInput(const TensorDesc &input) {
  fillTensor(*impl->manifest.add_inputs(), input);
}

void ArtifactWriter::addOutput(const TensorDesc &output) {
  fillTensor(*impl->manifest.add_outputs(), output);
}

void ArtifactWriter::addLayer(const LayerDesc &layer) {
  art::Layer *l = impl->manifest.add_layers();
  l->set_index(layer.index);
  l->set_name(layer.name);
  l->set_num_experts(layer.numExperts);
  l->set_top_k(layer.topK);
  l->set_num_clusters(layer.numClusters);
  for (int32_t c : layer.assignment)
    l->add_assignment(c);
}

void ArtifactWriter::setHostCode(std::vector<uint8_t> bytes) {
  impl->hostCode.own(std::move(bytes));
  impl->hasHostCode = true;
}

void ArtifactWriter::setHostCodeView(const void *data, size_t size) {
  impl->hostCode.view(data, size);
  impl->hasHostCode = true;
}

void ArtifactWriter::addWeight(const WeightDesc &weight,
                               std::vector<uint8_t> bytes) {
  impl->weights.push_back(weight);
  impl->weightBytes.emplace_back().own(std::move(bytes));
}

void ArtifactWriter::addWeightView(const WeightDesc &weight, const void *data,
                                   size_t size) {
  impl->weights.push_back(weight);
  impl->weightBytes.emplace_back().view(data, size);
}

std::string ArtifactWriter::write(const std::string &path) const {
  if (!impl->hasHostCode)
    return "the artifact has no host code";
  art::Manifest manifest = impl->manifest;

  // Lay out the sections: host code, then each weights section.
  uint64_t offset = kHeaderSize;
  struct Piece { // a run of bytes of section `section`, at `offset`
    int section;
    uint64_t offset;
    const Blob *blob;
  };
  std::vector<Piece> pieces;
  art::Section *code = manifest.add_sections();
  code->set_kind(art::HOST_CODE);
  code->set_name("host_code");
  code->set_alignment(kHostCodeAlignment);
  offset = alignUp(offset, kHostCodeAlignment);
  code->set_offset(offset);
  code->set_size(impl->hostCode.size);
  pieces.push_back({0, offset, &impl->hostCode});
  offset += impl->hostCode.size;

  std::vector<std::string> sectionNames;
  for (const WeightDesc &w : impl->weights)
    if (std::find(sectionNames.begin(), sectionNames.end(), w.section) ==
        sectionNames.end())
      sectionNames.push_back(w.section);
  for (const std::string &name : sectionNames) {
    uint32_t index = manifest.sections_size();
    art::Section *section = manifest.add_sections();
    section->set_kind(art::WEIGHTS);
    section->set_name(name);
    section->set_alignment(kWeightsSectionAlignment);
    offset = alignUp(offset, kWeightsSectionAlignment);
    section->set_offset(offset);
    uint64_t within = 0;
    for (size_t i = 0; i < impl->weights.size(); ++i) {
      const WeightDesc &desc = impl->weights[i];
      if (desc.section != name)
        continue;
      const Blob &blob = impl->weightBytes[i];
      within = alignUp(within, kWeightAlignment);
      art::Weight *w = manifest.add_weights();
      w->set_name(desc.name);
      w->set_dtype(static_cast<art::DType>(desc.dtype));
      for (int64_t d : desc.shape)
        w->add_shape(d);
      w->set_section(index);
      w->set_offset(within);
      w->set_size(blob.size);
      w->set_checksum(hash64(blob.data, blob.size));
      w->set_layer(desc.layer);
      w->set_cluster(desc.cluster);
      w->set_role(desc.role);
      if (desc.hasQuant) {
        art::Quant *qd = w->mutable_quant();
        qd->set_storage(desc.quant.storage);
        qd->set_group_size(desc.quant.groupSize);
        qd->set_symmetric(desc.quant.symmetric);
        qd->set_packing(desc.quant.packing);
        qd->set_scales(desc.quant.scales);
        qd->set_zero_points(desc.quant.zeroPoints);
      }
      pieces.push_back({int(index), offset + within, &blob});
      within += blob.size;
    }
    section->set_size(within);
    offset += within;
  }
  // The manifest's weights must follow the order they were added in (the
  // entry receives them so); sections above grouped them by section.
  if (sectionNames.size() > 1) {
    std::vector<art::Weight> byName(manifest.weights().begin(),
                                    manifest.weights().end());
    manifest.clear_weights();
    for (const WeightDesc &desc : impl->weights)
      for (const art::Weight &w : byName)
        if (w.name() == desc.name) {
          *manifest.add_weights() = w;
          break;
        }
  }

  // Section checksums over their bytes, padding between weights included
  // (zeros, as written below).
  static const uint8_t zeros[4096] = {};
  auto hashZeros = [&](Hash64 &h, uint64_t n) {
    for (uint64_t step; n > 0; n -= step) {
      step = std::min<uint64_t>(n, sizeof(zeros));
      h.update(zeros, step);
    }
  };
  for (int i = 0; i < manifest.sections_size(); ++i) {
    art::Section &section = *manifest.mutable_sections(i);
    Hash64 h;
    uint64_t at = section.offset();
    for (const Piece &p : pieces) {
      if (p.section != i)
        continue;
      hashZeros(h, p.offset - at);
      h.update(p.blob->data, p.blob->size);
      at = p.offset + p.blob->size;
    }
    section.set_checksum(h.digest());
  }

  uint64_t manifestOffset = offset;
  std::string bytes;
  if (!manifest.SerializeToString(&bytes))
    return "cannot serialise the manifest";
  uint64_t fileSize = manifestOffset + bytes.size();
  if (std::string e =
          validateManifest(manifest, fileSize, manifestOffset, bytes.size());
      !e.empty())
    return "invalid artifact: " + e;

  ArtifactHeader header;
  std::memcpy(header.magic, kArtifactMagic, 8);
  header.formatVersion = kArtifactVersion;
  header.headerSize = kHeaderSize;
  header.manifestOffset = manifestOffset;
  header.manifestSize = bytes.size();
  header.manifestChecksum = hash64(bytes.data(), bytes.size());
  header.fileSize = fileSize;
  unsigned char headerBytes[kHeaderSize];
  encodeHeader(header, headerBytes);

  std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return "cannot open '" + tmp + "' for writing: " + std::strerror(errno);
  bool ok = std::fwrite(headerBytes, 1, kHeaderSize, f) == kHeaderSize;
  uint64_t at = kHeaderSize;
  auto pad = [&](uint64_t to) {
    for (uint64_t step; ok && at < to; at += step) {
      step = std::min<uint64_t>(to - at, sizeof(zeros));
      ok = std::fwrite(zeros, 1, step, f) == step;
    }
  };
  for (const Piece &p : pieces) {
    pad(p.offset);
    ok = ok && std::fwrite(p.blob->data, 1, p.blob->size, f) == p.blob->size;
    at += p.blob->size;
  }
  pad(manifestOffset);
  ok = ok && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  int savedErrno = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    savedErrno = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    return "failed writing '" + path + "': " + std::strerror(savedErrno);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    savedErrno = errno;
    std::remove(tmp.c_str());
    return "cannot rename '" + tmp + "' to '" + path +
           "': " + std::strerror(savedErrno);
  }
  return "";
}

} // namespace moe::rt
