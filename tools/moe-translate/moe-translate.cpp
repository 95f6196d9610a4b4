//===- moe-translate.cpp - Translations into and out of MLIR ---------------===//
//
// Thin: `--import-onnx` reads an ONNX model into the onnx dialect.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Import/OnnxImporter.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

int main(int argc, char **argv) {
  mlir::TranslateToMLIRRegistration importOnnx(
      "import-onnx", "import an ONNX model (.onnx) into the onnx dialect",
      [](llvm::SourceMgr &sourceMgr,
         mlir::MLIRContext *context) -> mlir::OwningOpRef<mlir::Operation *> {
        const llvm::MemoryBuffer *buffer =
            sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
        mlir::OwningOpRef<mlir::ModuleOp> module = mlir::moe::importOnnxModel(
            buffer->getBuffer(), buffer->getBufferIdentifier(), context);
        return mlir::OwningOpRef<mlir::Operation *>(module.release());
      },
      [](mlir::DialectRegistry &registry) {
        mlir::moe::registerOnnxImportDialects(registry);
      });
  return mlir::failed(
      mlir::mlirTranslateMain(argc, argv, "moe-mlir translation driver\n"));
}
