//===- CpuFeatures.cpp - Refusing artifacts built for a CPU we lack -------===//
//
// Target.features names what the host code needs, in the spelling of
// GCC's __builtin_cpu_supports (which is LLVM's for most): "avx2", "fma",
// "f16c", "avx512f", ... A name this table does not know is refused too: the
// runtime cannot tell that the CPU has it.
//
//===----------------------------------------------------------------------===//

#include "RuntimeInternal.h"

#include <cstring>

namespace moe::rt {
namespace {
struct Feature {
  const char *name;
  bool (*present)();
};

#define MOE_FEATURE(spelling, builtin)                                         \
  {spelling, [] { return __builtin_cpu_supports(builtin) != 0; }}

#if defined(__x86_64__) || defined(__i386__)
const Feature kFeatures[] = {
    MOE_FEATURE("cmov", "cmov"), MOE_FEATURE("mmx", "mmx"),
    MOE_FEATURE("popcnt", "popcnt"), MOE_FEATURE("sse", "sse"),
    MOE_FEATURE("sse2", "sse2"), MOE_FEATURE("sse3", "sse3"),
    MOE_FEATURE("ssse3", "ssse3"), MOE_FEATURE("sse4.1", "sse4.1"),
    MOE_FEATURE("sse4.2", "sse4.2"), MOE_FEATURE("crc32", "sse4.2"),
    MOE_FEATURE("avx", "avx"), MOE_FEATURE("avx2", "avx2"),
    MOE_FEATURE("fma", "fma"), MOE_FEATURE("f16c", "f16c"),
    MOE_FEATURE("bmi", "bmi"), MOE_FEATURE("bmi2", "bmi2"),
    MOE_FEATURE("lzcnt", "lzcnt"), MOE_FEATURE("abm", "abm"),
    MOE_FEATURE("movbe", "movbe"), MOE_FEATURE("xsave", "xsave"),
    MOE_FEATURE("cx16", "cmpxchg16b"), MOE_FEATURE("sahf", "lahf_lm"),
    MOE_FEATURE("aes", "aes"), MOE_FEATURE("pclmul", "pclmul"),
    MOE_FEATURE("adx", "adx"), MOE_FEATURE("sha", "sha"),
    MOE_FEATURE("rdrnd", "rdrnd"), MOE_FEATURE("rdseed", "rdseed"),
    MOE_FEATURE("gfni", "gfni"), MOE_FEATURE("vpclmulqdq", "vpclmulqdq"),
    MOE_FEATURE("avxvnni", "avxvnni"), MOE_FEATURE("avx512f", "avx512f"),
    MOE_FEATURE("evex512", "avx512f"), MOE_FEATURE("avx512bw", "avx512bw"),
    MOE_FEATURE("avx512dq", "avx512dq"), MOE_FEATURE("avx512vl", "avx512vl"),
    MOE_FEATURE("avx512cd", "avx512cd"),
    MOE_FEATURE("avx512vnni", "avx512vnni"),
    MOE_FEATURE("avx512bf16", "avx512bf16"),
    MOE_FEATURE("avx512fp16", "avx512fp16"),
    MOE_FEATURE("avx512vbmi", "avx512vbmi"),
    MOE_FEATURE("avx512vbmi2", "avx512vbmi2"),
    MOE_FEATURE("avx512ifma", "avx512ifma"),
    MOE_FEATURE("avx512bitalg", "avx512bitalg"),
    MOE_FEATURE("avx512vpopcntdq", "avx512vpopcntdq"),
    MOE_FEATURE("amx-tile", "amx-tile"), MOE_FEATURE("amx-int8", "amx-int8"),
    MOE_FEATURE("amx-bf16", "amx-bf16"),
    MOE_FEATURE("x86-64", "x86-64"), MOE_FEATURE("x86-64-v2", "x86-64-v2"),
    MOE_FEATURE("x86-64-v3", "x86-64-v3"),
    MOE_FEATURE("x86-64-v4", "x86-64-v4"),
};
constexpr const char *kHostArch = "x86_64";
#else
const Feature kFeatures[] = {{"", [] { return false; }}};
constexpr const char *kHostArch = "unknown";
#endif
#undef MOE_FEATURE

/// Strips LLVM's "+" prefix.
std::string spelling(const std::string &feature) {
  return !feature.empty() && feature[0] == '+' ? feature.substr(1) : feature;
}
} // namespace

std::string checkCpuFeatures(const moe::artifact::Target &target) {
  if (!target.arch().empty() && target.arch() != kHostArch)
    return "this artifact was compiled for " + target.arch() +
           ", this host is " + kHostArch;
  std::string lacking, unknown;
  for (const std::string &raw : target.features()) {
    std::string name = spelling(raw);
    if (name.empty() || raw[0] == '-')
      continue; // "-feature" disables: nothing to check
    const Feature *found = nullptr;
    for (const Feature &f : kFeatures)
      if (name == f.name)
        found = &f;
    if (!found)
      unknown += (unknown.empty() ? "" : ", ") + name;
    else if (!found->present())
      lacking += (lacking.empty() ? "" : ", ") + name;
  }
  if (lacking.empty() && unknown.empty())
    return "";
  std::string needs = "this artifact was compiled for " +
                      (target.isa_level().empty() ? std::string("a CPU")
                                                  : target.isa_level());
  if (!lacking.empty())
    return needs + " (needs " + lacking + "), this CPU lacks " + lacking;
  return needs + " (needs " + unknown +
         "), a CPU feature this runtime does not know, so it cannot tell "
         "whether this CPU has it";
}

} // namespace moe::rt
