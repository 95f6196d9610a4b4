//===- OnnxImporter.h - ONNX model to the onnx dialect ----------*- C++ -*-===//
//
// The library entry the compiler driver and moe-translate share.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_IMPORT_ONNXIMPORTER_H
#define MOE_MLIR_IMPORT_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"

namespace mlir::moe {

struct OnnxImportOptions {
  /// Name of the function holding the main graph.
  std::string functionName = "main_graph";
};

/// Imports the ONNX model in `buffer` (the bytes of a .onnx file whose
/// external data, if any, is resolved relative to `modelDir`). Weights
/// become dense_resource blobs: raw_data is copied once, external data is
/// mmap'ed and not copied. Every problem is reported as an error at a
/// location naming the file and the node; unsupported ops are all listed
/// in one error. Returns null on failure.
OwningOpRef<ModuleOp> importOnnxModel(llvm::StringRef buffer,
                                      llvm::StringRef modelPath,
                                      MLIRContext *context,
                                      const OnnxImportOptions &options = {});

/// Reads and imports the file at `path`.
OwningOpRef<ModuleOp> importOnnxFile(llvm::StringRef path,
                                     MLIRContext *context,
                                     const OnnxImportOptions &options = {});

/// Registers the dialects the importer produces.
void registerOnnxImportDialects(DialectRegistry &registry);

} // namespace mlir::moe

#endif // MOE_MLIR_IMPORT_ONNXIMPORTER_H
