//===- GatedExperts.h - Fused gate/up projections of experts ----*- C++ -*-===//
//
// Exporters of stacked experts keep the gate and up projections fused in
// one (2I)-row matrix and split the product: halves (Split, or two
// Slices) or, as gpt-oss stores them, the even and odd columns. These
// helpers recognise the split and the gated activation over it, and cut
// each expert's gate and up rows out of the fused stack.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_GATEDEXPERTS_H
#define MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_GATEDEXPERTS_H

#include "MatchSupport.h"

namespace mlir::moe::raise {

/// Which rows of a fused (2I) gate/up projection a value takes.
enum class Part { First, Second, Even, Odd };
struct PartOf {
  Value fused;
  Part part;
};
/// Split(fused, 2 equal parts, last axis), or Slice of the first or second
/// half, or of the even or odd entries (step 2), of the last axis.
std::optional<PartOf> matchPart(Value v);
/// Whether `gate` and `up` are complementary parts of one fused value.
bool complementary(const PartOf &gate, const PartOf &up);

/// act(gate) * up as exporters write an expert's GLU, including gpt-oss's
/// clamped SwiGLU (clamp(up, -l, l) + beta) * (g * sigmoid(alpha * g)) with
/// g = min(gate, l).
struct Gated {
  Value gate, up;
  ActivationKind kind;
  double alpha = 1.0, beta = 0.0;
  std::optional<double> limit;
};
std::optional<Gated> matchGated(Value h);

/// Rows `part` of expert `expert`'s (out, in) matrix of an (E, out, in)
/// stack, or of its bias row of an (E, out) stack.
Bytes takeRows(const Bytes &from, Part part, int64_t expert);
/// Expert `expert`'s matrix (or bias row) of a stack.
Bytes expertSlice(const Bytes &from, int64_t expert);

/// Expert `expert`'s linear layer (rows `part`, or all) of an (E, out, in)
/// weight stack and its optional (E, out) bias stack.
Linear stackedLinear(const Bytes &weights, const std::optional<Bytes> &biases,
                     std::optional<Part> part, int64_t expert);

/// An expert MLP reading `tokens` with the activation of `gated`.
ExpertMlp gatedExpert(Value tokens, const Gated &gated, Linear gate, Linear up,
                      Linear down);

} // namespace mlir::moe::raise

#endif // MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_GATEDEXPERTS_H
