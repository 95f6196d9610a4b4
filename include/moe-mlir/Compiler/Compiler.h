//===- Compiler.h - moe-compile's driver as a library -----------*- C++ -*-===//
//
// ONNX file in, artifact out: import, raise, compress, lower, build the
// host code, lay the weights out, write the artifact. moe-compile is a thin
// main over compileModel; the Python bindings will call it too.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_COMPILER_COMPILER_H
#define MOE_MLIR_COMPILER_COMPILER_H

#include "moe-mlir/Compiler/HostCode.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace mlir::moe {

struct CompileOptions {
  CpuTarget cpu;
  /// No clustering, no quantisation: weights as imported.
  bool compress = true;
  /// Options of --moe-compress-pipeline, as its pass options spell them
  /// ("clusters=4 rank=16 ..."); empty: the default compression.
  std::string compressOptions;
  /// Inputs of the model (.npy): the uncompressed model runs on them and
  /// each layer's input tokens calibrate its compression.
  std::string calibration;
  /// Report of the compression (JSON), when not empty.
  std::string report;
  /// Calls into the runtime's routing profiler after each layer's routing.
  bool recordRouting = true;
  /// Progress lines and time per stage.
  bool verbose = false;
  std::string ortMoeLayout = "auto";
};

/// Compiles `onnxPath` to the artifact `outPath`. Diagnostics go to the
/// context's handler; `log` gets progress lines.
LogicalResult compileModel(MLIRContext &context, llvm::StringRef onnxPath,
                           llvm::StringRef outPath,
                           const CompileOptions &options,
                           llvm::raw_ostream &log);

/// Registers what compileModel needs in `registry`.
void registerCompilerDialects(DialectRegistry &registry);

} // namespace mlir::moe

#endif // MOE_MLIR_COMPILER_COMPILER_H
