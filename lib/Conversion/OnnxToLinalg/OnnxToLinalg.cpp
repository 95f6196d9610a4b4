//===- OnnxToLinalg.cpp - The convert-onnx-to-linalg pass -----------------===//

#include "moe-mlir/Conversion/Passes.h"
#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTONNXTOLINALGPASS
#include "moe-mlir/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {
struct ConvertOnnxToLinalgPass
    : public moe::impl::ConvertOnnxToLinalgPassBase<ConvertOnnxToLinalgPass> {
  void runOnOperation() override {
    bool failed = false;
    getOperation().walk([&](Operation *op) {
      if (op->getName().getDialectNamespace() != "onnx")
        return;
      op->emitError() << op->getName() << " has no lowering to linalg yet";
      failed = true;
    });
    if (failed)
      signalPassFailure();
  }
};
} // namespace
