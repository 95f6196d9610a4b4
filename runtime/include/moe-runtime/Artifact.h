//===- Artifact.h - The artifact file format and its writer -----*- C++ -*-===//
//
// One file per compiled model: a 64-byte header, sections (host code,
// weights) aligned for mmap, and a protobuf manifest (runtime/proto/
// artifact.proto) describing them. docs/artifact.md is the specification.
// The writer is what the compiler links; the loader is behind the C API in
// moe_runtime.h. Neither uses LLVM or MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_ARTIFACT_H
#define MOE_RUNTIME_ARTIFACT_H

#include "moe-runtime/moe_runtime.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moe::rt {

constexpr char kArtifactMagic[8] = {'M', 'O', 'E', 'M', 'L', 'I', 'R', '\0'};
constexpr uint32_t kArtifactVersion = 1;
constexpr uint32_t kHeaderSize = 64;
constexpr uint64_t kHostCodeAlignment = 4096;
constexpr uint64_t kWeightsSectionAlignment = 4096;
constexpr uint64_t kWeightAlignment = 64;
constexpr const char *kDefaultEntry = "moe_entry";

/// The fixed header at offset 0, all fields little-endian; bytes 48..63
/// are zero.
struct ArtifactHeader {
  char magic[8];
  uint32_t formatVersion;
  uint32_t headerSize;
  uint64_t manifestOffset;
  uint64_t manifestSize;
  uint64_t manifestChecksum;
  uint64_t fileSize;
};

/// The 64 header bytes of `header`.
void encodeHeader(const ArtifactHeader &header, unsigned char out[kHeaderSize]);
/// Reads the fields of a header from `bytes` (at least kHeaderSize of them);
/// does not validate them.
ArtifactHeader decodeHeader(const unsigned char *bytes);

/// An input or output of the model.
struct TensorDesc {
  std::string name;
  moe_dtype dtype = MOE_DT_F32;
  std::vector<int64_t> shape;           ///< -1: dynamic
  std::vector<std::string> dimParams;   ///< empty, or one per dim ("": none)
};

struct QuantDesc {
  std::string storage; ///< "int4", "int8", ...
  int64_t groupSize = 0;
  bool symmetric = false;
  std::string packing;
  std::string scales;     ///< name of the weight with the scales, if any
  std::string zeroPoints; ///< name of the weight with the zero points
};

/// A weight: its stored dtype and shape (a packed INT4 matrix is, say, U8
/// [rows, cols / 2] with `quant` saying how to read it), so its size is
/// always product(shape) * moe_dtype_size(dtype).
struct WeightDesc {
  std::string name;
  moe_dtype dtype = MOE_DT_F32;
  std::vector<int64_t> shape;
  int32_t layer = -1;
  int32_t cluster = -1;
  std::string role;
  bool hasQuant = false;
  QuantDesc quant;
  /// The weights section holding it; one section per distinct name, in
  /// order of first use.
  std::string section = "weights";
};

struct LayerDesc {
  int32_t index = 0;
  std::string name;
  int32_t numExperts = 0;
  int32_t topK = 0;
  int32_t numClusters = 0;
  std::vector<int32_t> assignment; ///< expert -> cluster; empty or numExperts
};

struct TargetDesc {
  std::string arch = "x86_64";
  std::string cpu;
  std::vector<std::string> features; ///< required: "avx2", "fma", ...
  std::string isaLevel;              ///< "x86-64-v3", informative
};

/// Builds an artifact. Inputs, outputs and weights are passed to the entry
/// in the order they are added (see docs/artifact.md, "Entry ABI").
class ArtifactWriter {
public:
  ArtifactWriter();
  ~ArtifactWriter();
  ArtifactWriter(const ArtifactWriter &) = delete;
  ArtifactWriter &operator=(const ArtifactWriter &) = delete;

  void setProducer(const std::string &producer);
  void setTarget(const TargetDesc &target);
  /// The entry symbol; the default is "moe_entry".
  void setEntry(const std::string &entry);
  void addInput(const TensorDesc &input);
  void addOutput(const TensorDesc &output);
  void addLayer(const LayerDesc &layer);

  /// The host code: an ELF shared object exporting the entry.
  void setHostCode(std::vector<uint8_t> bytes);
  /// The same without a copy: `data` must stay valid until write().
  void setHostCodeView(const void *data, size_t size);

  void addWeight(const WeightDesc &weight, std::vector<uint8_t> bytes);
  /// The same without a copy: `data` must stay valid until write().
  void addWeightView(const WeightDesc &weight, const void *data, size_t size);

  /// Validates everything added and writes the artifact to `path` (through
  /// a temporary file renamed into place). Returns "" on success, else a
  /// one-line message.
  std::string write(const std::string &path) const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

} // namespace moe::rt

#endif // MOE_RUNTIME_ARTIFACT_H
