//===- RaiseExperts.cpp - The moe-raise-experts pass
//-----------------------===//

#include "RaiseExperts.h"

#include "moe-mlir/Conversion/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOERAISEEXPERTSPASS
#include "moe-mlir/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct MoeRaiseExpertsPass
    : public mlir::moe::impl::MoeRaiseExpertsPassBase<MoeRaiseExpertsPass> {
  using Base::Base;

  void runOnOperation() override {
    std::optional<OrtMoeLayout> layout =
        llvm::StringSwitch<std::optional<OrtMoeLayout>>(ortMoeLayout)
            .Case("auto", OrtMoeLayout::Auto)
            .Case("current", OrtMoeLayout::Current)
            .Case("legacy", OrtMoeLayout::Legacy)
            .Default(std::nullopt);
    if (!layout) {
      getOperation().emitError() << "ort-moe-layout must be auto, current or "
                                    "legacy, got '"
                                 << ortMoeLayout << "'";
      return signalPassFailure();
    }
    SmallVector<Operation *> candidates;
    getOperation().walk([&](Operation *op) {
      StringRef name = op->getName().getStringRef();
      if (name == "onnx.MoE" || name == "onnx.QMoE")
        candidates.push_back(op);
    });
    bool failedAny = false;
    for (Operation *op : candidates)
      failedAny |= raiseOrtMoe(op, *layout) == RaiseResult::Error;
    raiseBatchedExperts(getOperation(), failedAny);
    raiseInputScaled(getOperation(), failedAny);
    raiseSortedExperts(getOperation(), failedAny);
    raiseTorchLoops(getOperation(), failedAny);
    raiseTorchDense(getOperation(), failedAny);
    if (failedAny)
      signalPassFailure();
  }
};
} // namespace
