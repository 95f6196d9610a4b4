//===- ArtifactFormat.cpp - Header codec and manifest checks --------------===//

#include "ArtifactFormat.h"
#include "moe-runtime/Artifact.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

namespace moe::rt {
namespace art = moe::artifact;

namespace {
void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t(p[i]) << (8 * i);
  return v;
}
uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t(p[i]) << (8 * i);
  return v;
}
} // namespace

void encodeHeader(const ArtifactHeader &header,
                  unsigned char out[kHeaderSize]) {
  std::memset(out, 0, kHeaderSize);
  std::memcpy(out, header.magic, 8);
  put32(out + 8, header.formatVersion);
  put32(out + 12, header.headerSize);
  put64(out + 16, header.manifestOffset);
  put64(out + 24, header.manifestSize);
  put64(out + 32, header.manifestChecksum);
  put64(out + 40, header.fileSize);
}

ArtifactHeader decodeHeader(const unsigned char *bytes) {
  ArtifactHeader header;
  std::memcpy(header.magic, bytes, 8);
  header.formatVersion = get32(bytes + 8);
  header.headerSize = get32(bytes + 12);
  header.manifestOffset = get64(bytes + 16);
  header.manifestSize = get64(bytes + 24);
  header.manifestChecksum = get64(bytes + 32);
  header.fileSize = get64(bytes + 40);
  return header;
}

bool mulOverflows(uint64_t a, uint64_t b, uint64_t &out) {
  return __builtin_mul_overflow(a, b, &out);
}

int findHostCodeSection(const art::Manifest &manifest) {
  for (int i = 0; i < manifest.sections_size(); ++i)
    if (manifest.sections(i).kind() == art::HOST_CODE)
      return i;
  return -1;
}

namespace {
std::string q(const std::string &s) { return "'" + s + "'"; }

std::string checkTensors(const google::protobuf::RepeatedPtrField<
                             art::TensorSpec> &specs,
                         const char *what) {
  std::set<std::string> names;
  for (const art::TensorSpec &spec : specs) {
    std::string where = std::string(what) + " " + q(spec.name());
    if (spec.name().empty())
      return std::string("an ") + what + " has no name";
    if (!names.insert(spec.name()).second)
      return where + " is declared twice";
    if (moe_dtype_size(static_cast<moe_dtype>(spec.dtype())) == 0)
      return where + " has unknown dtype " + std::to_string(spec.dtype());
    if (spec.shape_size() > MOE_MAX_RANK)
      return where + " has rank " + std::to_string(spec.shape_size()) +
             ", more than " + std::to_string(MOE_MAX_RANK);
    for (int64_t dim : spec.shape())
      if (dim < -1)
        return where + " has a dim of " + std::to_string(dim);
    if (spec.dim_params_size() != 0 &&
        spec.dim_params_size() != spec.shape_size())
      return where + " has " + std::to_string(spec.dim_params_size()) +
             " dim_params for rank " + std::to_string(spec.shape_size());
  }
  return "";
}
} // namespace

std::string validateManifest(const art::Manifest &manifest, uint64_t fileSize,
                             uint64_t manifestOffset, uint64_t manifestSize) {
  if (manifest.version() != kArtifactVersion)
    return "manifest version " + std::to_string(manifest.version()) +
           " does not match the header's format version " +
           std::to_string(kArtifactVersion);
  if (std::string e = checkTensors(manifest.inputs(), "input"); !e.empty())
    return e;
  if (std::string e = checkTensors(manifest.outputs(), "output"); !e.empty())
    return e;

  // Sections: inside the file, clear of the header, the manifest and each
  // other, aligned as they say.
  std::vector<std::pair<uint64_t, uint64_t>> ranges; // [begin, end)
  ranges.push_back({0, kHeaderSize});
  ranges.push_back({manifestOffset, manifestOffset + manifestSize});
  int hostCode = 0;
  for (const art::Section &section : manifest.sections()) {
    std::string where = "section " + q(section.name());
    uint64_t end;
    if (__builtin_add_overflow(section.offset(), section.size(), &end) ||
        end > fileSize)
      return where + " (offset " + std::to_string(section.offset()) +
             ", size " + std::to_string(section.size()) +
             ") lies outside the file (" + std::to_string(fileSize) +
             " bytes)";
    uint64_t align = section.alignment() ? section.alignment() : 1;
    if (align & (align - 1))
      return where + " has alignment " + std::to_string(align) +
             ", not a power of two";
    if (section.offset() % align)
      return where + " is misaligned: offset " +
             std::to_string(section.offset()) + " is not a multiple of " +
             std::to_string(align);
    if (section.kind() == art::HOST_CODE)
      ++hostCode;
    if (section.size())
      ranges.push_back({section.offset(), end});
  }
  if (hostCode != 1)
    return "the manifest lists " + std::to_string(hostCode) +
           " host code sections, not one";
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      return "sections overlap each other, the header or the manifest "
             "(bytes " +
             std::to_string(ranges[i].first) + ".." +
             std::to_string(ranges[i - 1].second) + ")";

  std::set<std::string> names;
  for (const art::Weight &weight : manifest.weights()) {
    std::string where = "weight " + q(weight.name());
    if (weight.name().empty())
      return "a weight has no name";
    if (!names.insert(weight.name()).second)
      return where + " is listed twice";
    size_t elementSize = moe_dtype_size(static_cast<moe_dtype>(weight.dtype()));
    if (elementSize == 0)
      return where + " has unknown dtype " + std::to_string(weight.dtype());
    if (weight.shape_size() > MOE_MAX_RANK)
      return where + " has rank " + std::to_string(weight.shape_size()) +
             ", more than " + std::to_string(MOE_MAX_RANK);
    uint64_t bytes = elementSize;
    for (int64_t dim : weight.shape())
      if (dim < 0 || mulOverflows(bytes, uint64_t(dim), bytes))
        return where + " has a bad shape (dim " + std::to_string(dim) + ")";
    if (bytes != weight.size())
      return where + " has size " + std::to_string(weight.size()) +
             " but its dtype and shape make " + std::to_string(bytes) +
             " bytes";
    if (weight.section() >= uint32_t(manifest.sections_size()))
      return where + " names section " + std::to_string(weight.section()) +
             ", which does not exist";
    const art::Section &section = manifest.sections(weight.section());
    if (section.kind() != art::WEIGHTS)
      return where + " lies in section " + q(section.name()) +
             ", which is not a weights section";
    uint64_t end;
    if (__builtin_add_overflow(weight.offset(), weight.size(), &end) ||
        end > section.size())
      return where + " (offset " + std::to_string(weight.offset()) +
             ", size " + std::to_string(weight.size()) +
             ") lies outside its section " + q(section.name()) + " (size " +
             std::to_string(section.size()) + ")";
    if ((section.offset() + weight.offset()) % elementSize)
      return where + " is misaligned: file offset " +
             std::to_string(section.offset() + weight.offset()) +
             " is not a multiple of its element size " +
             std::to_string(elementSize);
  }

  std::set<int32_t> indices;
  for (const art::Layer &layer : manifest.layers()) {
    std::string where = "layer " + std::to_string(layer.index());
    if (layer.index() < 0 || !indices.insert(layer.index()).second)
      return where + " has a negative or repeated index";
    if (layer.num_experts() < 0 || layer.top_k() < 0 ||
        layer.top_k() > layer.num_experts() || layer.num_clusters() < 0)
      return where + " has bad counts (experts " +
             std::to_string(layer.num_experts()) + ", top_k " +
             std::to_string(layer.top_k()) + ", clusters " +
             std::to_string(layer.num_clusters()) + ")";
    if (layer.assignment_size() != 0 &&
        layer.assignment_size() != layer.num_experts())
      return where + " assigns " + std::to_string(layer.assignment_size()) +
             " experts to clusters, not " +
             std::to_string(layer.num_experts());
    for (int32_t cluster : layer.assignment())
      if (cluster < 0 || cluster >= layer.num_clusters())
        return where + " assigns an expert to cluster " +
               std::to_string(cluster) + " of " +
               std::to_string(layer.num_clusters());
  }
  return "";
}

} // namespace moe::rt
