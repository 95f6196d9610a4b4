//===- ShapeInference.cpp - The onnx-shape-inference pass -----------------===//
//
// Program order matters: each op sees the types (and, through folding, the
// constants) its producers were refined to just before.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"
#include "moe-mlir/Dialect/Onnx/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Transforms/FoldUtils.h"
#include "llvm/ADT/STLExtras.h"

namespace mlir::onnx {
#define GEN_PASS_DEF_ONNXSHAPEINFERENCEPASS
#include "moe-mlir/Dialect/Onnx/Transforms/Passes.h.inc"
} // namespace mlir::onnx

using namespace mlir;
using namespace mlir::onnx;

namespace {

struct OnnxShapeInferencePass
    : public onnx::impl::OnnxShapeInferencePassBase<OnnxShapeInferencePass> {
  using OnnxShapeInferencePassBase::OnnxShapeInferencePassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    auto isOnnx = [](Operation *op) {
      return isa_and_present<OnnxDialect>(op->getDialect());
    };
    SmallVector<Operation *> ops;
    func.walk([&](Operation *op) {
      if (isOnnx(op))
        ops.push_back(op);
    });

    OperationFolder folder(&getContext());
    for (Operation *op : ops) {
      if (auto inference = dyn_cast<OnnxShapeInference>(op))
        if (failed(inference.inferShapes()))
          return signalPassFailure();
      // May erase `op`, which is not touched again.
      if (fold)
        (void)folder.tryToFold(op);
    }

    if (fold) {
      ops.clear();
      func.walk([&](Operation *op) {
        if (isOnnx(op))
          ops.push_back(op);
      });
      // Users come after their producers: erase from the end.
      for (Operation *op : llvm::reverse(ops))
        if (isOpTriviallyDead(op))
          op->erase();
    }

    func.walk([&](func::ReturnOp ret) {
      if (ret->getParentOp() != func)
        return;
      auto type = FunctionType::get(&getContext(), func.getArgumentTypes(),
                                    ret.getOperandTypes());
      if (type != func.getFunctionType())
        func.setType(type);
    });
  }
};

} // namespace
