//===- OnnxToLinalg.cpp - The convert-onnx-to-linalg pass -----------------===//
//
// Lowers each onnx op, in program order, to builtin-tensor IR (linalg,
// tensor, arith, math, scf): the lowerings by family (Elementwise.cpp,
// Shape.cpp, Indexing.cpp, Reduction.cpp, Contraction.cpp) build the new
// values, this file casts them to the op's declared result types (a
// lowering may know a size statically that the declared type leaves
// dynamic) and replaces the op. Every op that cannot be lowered is reported
// (naming its node); the pass then fails.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "moe-mlir/Conversion/Passes.h"

#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTONNXTOLINALGPASS
#include "moe-mlir/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe::onnx_lowering;

namespace {

/// The replacement values of `op`, or failure (reported).
Lowered lowerOp(OpBuilder &b, Operation *op) {
  StringRef name = op->getName().getStringRef();
  if (name == "onnx.MoE" || name == "onnx.QMoE")
    return nodeError(op)
           << "was not raised to moe.layer (run --moe-raise-experts before "
              "this pass; when it ran, its remark on this node says why the "
              "layer was declined)";
  for (Value result : op->getResults())
    if (!isa<RankedTensorType>(result.getType()))
      return nodeError(op) << "result #"
                           << cast<OpResult>(result).getResultNumber()
                           << " has type " << result.getType()
                           << ", not a ranked tensor (run "
                              "--onnx-shape-inference first)";
  for (Value operand : op->getOperands())
    if (!isa<RankedTensorType, NoneType>(operand.getType()))
      return nodeError(op) << "operand of type " << operand.getType()
                           << " is not a ranked tensor";
  using Family = std::optional<Lowered> (*)(OpBuilder &, Operation *);
  for (Family family : {lowerElementwise, lowerShapeOp, lowerIndexingOp,
                        lowerReductionOp, lowerContraction})
    if (std::optional<Lowered> lowered = family(b, op))
      return *lowered;
  return nodeError(op) << "has no lowering to linalg";
}

struct ConvertOnnxToLinalgPass
    : public moe::impl::ConvertOnnxToLinalgPassBase<ConvertOnnxToLinalgPass> {
  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    // Run-time checks of sizes only values reveal (cf.assert); buffers
    // assembled piece by piece (bufferization.alloc_tensor).
    registry
        .insert<bufferization::BufferizationDialect, cf::ControlFlowDialect>();
  }

  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (op->getName().getDialectNamespace() == "onnx")
        ops.push_back(op);
    });
    bool failed = false;
    SmallVector<Operation *> nones;
    for (Operation *op : ops) {
      if (op->getName().getStringRef() == "onnx.None") {
        nones.push_back(op);
        continue;
      }
      OpBuilder b(op);
      Lowered lowered = lowerOp(b, op);
      if (::mlir::failed(lowered)) {
        failed = true;
        continue;
      }
      Values values = *lowered;
      if (values.size() != op->getNumResults()) {
        nodeError(op) << "lowering produced " << values.size() << " values for "
                      << op->getNumResults() << " results";
        failed = true;
        continue;
      }
      bool ok = true;
      for (auto [value, result] : llvm::zip(values, op->getResults())) {
        Type want = result.getType();
        if (value.getType() == want)
          continue;
        if (!tensor::CastOp::areCastCompatible(value.getType(), want)) {
          nodeError(op) << "lowering produced " << value.getType()
                        << " for result #" << result.getResultNumber()
                        << " of type " << want;
          ok = false;
          break;
        }
        value = tensor::CastOp::create(b, op->getLoc(), want, value);
      }
      if (!ok) {
        failed = true;
        continue;
      }
      op->replaceAllUsesWith(values);
      op->erase();
    }
    for (Operation *none : nones) {
      if (none->use_empty()) {
        none->erase();
        continue;
      }
      if (!failed) {
        nodeError(none) << "is still used by "
                        << (*none->user_begin())->getName()
                        << " (only onnx ops take missing inputs)";
        failed = true;
      }
    }
    if (failed)
      signalPassFailure();
  }
};

} // namespace
