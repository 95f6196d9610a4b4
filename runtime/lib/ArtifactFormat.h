//===- ArtifactFormat.h - Manifest checks shared by writer and loader -----===//
//
// Internal to the runtime: the generated protobuf classes stay out of the
// public headers, so code compiled without RTTI or against another
// protobuf never sees them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_LIB_ARTIFACTFORMAT_H
#define MOE_RUNTIME_LIB_ARTIFACTFORMAT_H

#include "artifact.pb.h"

#include <cstdint>
#include <string>

namespace moe::rt {

/// Checks everything in `manifest` that does not need the section bytes:
/// tensor specs, section and weight ranges (inside a file of `fileSize`
/// bytes, clear of the header and the manifest at [manifestOffset,
/// manifestOffset + manifestSize)), alignment, sizes against dtype and
/// shape, layers. Returns "" or a one-line message.
std::string validateManifest(const moe::artifact::Manifest &manifest,
                             uint64_t fileSize, uint64_t manifestOffset,
                             uint64_t manifestSize);

/// The section index of the (single) host code section, or -1.
int findHostCodeSection(const moe::artifact::Manifest &manifest);

/// "a * b" without overflow: false when it overflows.
bool mulOverflows(uint64_t a, uint64_t b, uint64_t &out);

} // namespace moe::rt

#endif // MOE_RUNTIME_LIB_ARTIFACTFORMAT_H
