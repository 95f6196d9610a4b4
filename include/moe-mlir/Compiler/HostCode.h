//===- HostCode.h - Bufferised module to a host shared object ---*- C++ -*-===//
//
// The CPU back end: a module whose `main_graph` takes its inputs and then
// its weights as tensor arguments becomes a shared object exporting the
// runtime's entry point `void moe_entry(void **args)` (docs/artifact.md):
// bufferisation, loop lowering, LLVM dialect, LLVM IR at -O3, machine code
// for the chosen CPU, linked with the system linker.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_COMPILER_HOSTCODE_H
#define MOE_MLIR_COMPILER_HOSTCODE_H

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace mlir::moe {

/// The CPU an artifact is compiled for.
struct CpuTarget {
  /// "native", "x86-64-v3" (AVX2) or "x86-64-v4" (AVX-512).
  std::string name = "native";
  /// Filled by resolveCpuTarget: the LLVM CPU name and feature string, and
  /// the features the runtime must find on the host.
  std::string llvmCpu, llvmFeatures;
  std::vector<std::string> required;
};

/// Runs the textual pass pipeline `pipeline` (no anchor: "canonicalize,
/// cse") on `module`, honouring the MLIR pass-manager command-line flags.
LogicalResult runPassPipeline(ModuleOp module, llvm::StringRef pipeline);

/// Resolves `target.name`; fails with a message for an unknown name.
LogicalResult resolveCpuTarget(CpuTarget &target, std::string &error);

/// Lowers `module` (tensors, `main_graph` as described above) in place to
/// the LLVM dialect with the `moe_entry` wrapper, then to a shared object
/// returned in `sharedObject`. Errors are diagnostics on the module.
LogicalResult buildHostCode(ModuleOp module, const CpuTarget &target,
                            std::vector<char> &sharedObject);

} // namespace mlir::moe

#endif // MOE_MLIR_COMPILER_HOSTCODE_H
