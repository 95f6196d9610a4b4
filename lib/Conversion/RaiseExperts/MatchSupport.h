//===- MatchSupport.h - Pieces the MoE matchers share -----------*- C++ -*-===//
//
// The raising matchers read imported onnx ops by name (they see the graph
// as the importer wrote it), prove each piece of a candidate before they
// touch the IR, and decline with a reason when a piece does not hold.
// What they share: reading constants, linear layers (MatMul/Gemm by a
// constant, with or without bias), activations as exporters spell them,
// whole expert MLPs, and undoing what a declined match created.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_MATCHSUPPORT_H
#define MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_MATCHSUPPORT_H

#include "moe-mlir/Dialect/Moe/IR/Moe.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::moe::raise {

bool isNone(Value v);
int64_t intAttr(Operation *op, StringRef name, int64_t fallback);
/// `v`'s defining op when it is `onnx.<type>`, else null.
Operation *defOp(Value v, StringRef type);
/// Through Identity and Casts that do not change the element type.
Value skipNoops(Value v);
/// The value of a constant whose elements are all equal.
std::optional<double> scalarConstant(Value v);
/// Whether `v` is a constant whose elements all equal `expected` (relative
/// tolerance 1e-6: exporters write float32 roundings of sqrt(2) and
/// friends).
bool isScalar(Value v, double expected);
/// Whether `v` is all float zeros: a ConstantOfShape of 0 (its default
/// value included), an Expand of a zero scalar, or a zero constant.
bool isZeros(Value v);
/// Whether `axes` is a one-entry constant among `accepted`.
bool axesAre(Value axes, std::initializer_list<int64_t> accepted);
/// x of Unsqueeze(x, [axis]) with a rank-`rank` result (axis also written
/// negative), else null.
Value unsqueezed(Value v, int64_t axis, int64_t rank);
/// Whether two values are the same token rows: equal, or the same Reshape
/// of one source by one constant shape (TorchScript repeats the Reshape),
/// looking through Reshapes to [-1, H] that change nothing.
bool sameRows(Value a, Value b);
/// The entries of a fully known 0-D/1-D integer tensor.
std::optional<SmallVector<int64_t>> intConstant(Value v);

/// A constant's bytes and type.
struct Bytes {
  RankedTensorType type;
  std::vector<char> data;
  size_t elementBytes() const {
    return type.getElementType().getIntOrFloatBitWidth() / 8;
  }
};

/// Outcome of a matcher step: success, a reason to decline (`why` set), or
/// an error already reported (`why` empty).
struct Why {
  std::string text;
  LogicalResult decline(const Twine &reason) {
    text = reason.str();
    return failure();
  }
  bool declined() const { return !text.empty(); }
};

/// Reads constant `v`; declines when it is not a constant with a static
/// shape, reports (on `user`) when its storage is broken.
FailureOr<Bytes> readBytes(Value v, Operation *user, StringRef what, Why &why);

/// (R, C) -> (C, R) on raw elements, for each of `batch` matrices.
std::vector<char> transposeBytes(ArrayRef<char> data, size_t elementBytes,
                                 int64_t batch, int64_t rows, int64_t cols);

/// y = x W^T (+ b): MatMul by a constant (in, out) matrix or a Transpose of
/// an (out, in) one, or Gemm (transA = 0, alpha = beta = 1), optionally
/// followed by Add of a constant bias. The weight is returned as (out, in).
struct Linear {
  Operation *root = nullptr;
  Value input;
  int64_t in = 0, out = 0;
  Bytes weight;
  std::optional<Bytes> bias;
};
FailureOr<Linear> matchLinear(Value y, Operation *user, Why &why);

/// An activation as exporters write it: Relu; Gelu; SiLU as x * Sigmoid(x);
/// GELU as x * 0.5 * (1 + Erf(x / sqrt(2))) and its tanh form, in any
/// association of the products.
struct Activation {
  ActivationKind kind;
  Value input;
};
std::optional<Activation> matchActivation(Value h);

/// One expert MLP: down(act(gate(x)) * up(x)) or down(act(up(x))).
struct ExpertMlp {
  Value input;
  ActivationKind kind;
  /// swiglu's parameters (#moe.activation).
  double alpha = 1.0, beta = 0.0;
  std::optional<double> limit;
  std::optional<Linear> gate;
  Linear up, down;
};
FailureOr<ExpertMlp> matchExpertMlp(Value out, Operation *user, Why &why);

/// Remembers the ops a matcher creates so a declined match leaves the IR
/// exactly as it found it.
struct CreatedOps : public OpBuilder::Listener {
  SmallVector<Operation *> ops;
  void notifyOperationInserted(Operation *op, OpBuilder::InsertPoint) override {
    ops.push_back(op);
  }
  void eraseAll() {
    for (Operation *op : llvm::reverse(ops))
      op->erase();
    ops.clear();
  }
};

/// Erases `root` and then every op that fed only it, as long as they are
/// side-effect free and unused.
void eraseDeadTree(Operation *root);

} // namespace mlir::moe::raise

#endif // MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_MATCHSUPPORT_H
