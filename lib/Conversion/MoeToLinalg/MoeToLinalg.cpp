//===- MoeToLinalg.cpp - The convert-moe-to-linalg pass -------------------===//

#include "moe-mlir/Conversion/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTMOETOLINALGPASS
#include "moe-mlir/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {
struct ConvertMoeToLinalgPass
    : public moe::impl::ConvertMoeToLinalgPassBase<ConvertMoeToLinalgPass> {
  using Base::Base;
  void runOnOperation() override {
    bool failed = false;
    getOperation().walk([&](Operation *op) {
      if (isa<moe::LayerOp, moe::ClusteredLayerOp>(op)) {
        op->emitError() << op->getName() << " has no lowering yet";
        failed = true;
      }
    });
    if (failed)
      signalPassFailure();
  }
};
} // namespace
