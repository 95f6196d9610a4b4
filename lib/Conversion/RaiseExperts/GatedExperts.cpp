//===- GatedExperts.cpp - Fused gate/up projections of experts ------------===//

#include "GatedExperts.h"

#include <cstring>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {
/// Clip(v, min, max) with constant bounds (absent: nullopt).
struct Clipped {
  Value input;
  std::optional<double> lo, hi;
};
Clipped unclip(Value v) {
  v = skipNoops(v);
  Operation *clip = defOp(v, "Clip");
  if (!clip)
    return {v, std::nullopt, std::nullopt};
  auto bound = [&](unsigned i) -> std::optional<double> {
    if (clip->getNumOperands() <= i || isNone(clip->getOperand(i)))
      return std::nullopt;
    return scalarConstant(clip->getOperand(i));
  };
  return {skipNoops(clip->getOperand(0)), bound(1), bound(2)};
}

} // namespace

std::optional<PartOf> raise::matchPart(Value v) {
  v = skipNoops(v);
  auto result = dyn_cast<OpResult>(v);
  if (!result)
    return std::nullopt;
  Operation *op = result.getOwner();
  StringRef name = op->getName().getStringRef();
  Value fused = op->getNumOperands() ? op->getOperand(0) : Value();
  auto type =
      fused ? dyn_cast<RankedTensorType>(fused.getType()) : RankedTensorType();
  if (!type || type.getRank() < 2)
    return std::nullopt;
  int64_t last = type.getRank() - 1;
  if (type.isDynamicDim(last) || type.getDimSize(last) % 2 != 0)
    return std::nullopt;
  int64_t width = type.getDimSize(last), half = width / 2;
  if (name == "onnx.Split") {
    int64_t axis = intAttr(op, "axis", 0);
    if (op->getNumResults() != 2 || (axis != last && axis != -1))
      return std::nullopt;
    if (op->getNumOperands() > 1 && !isNone(op->getOperand(1))) {
      std::optional<SmallVector<int64_t>> sizes =
          intConstant(op->getOperand(1));
      if (!sizes || *sizes != SmallVector<int64_t>{half, half})
        return std::nullopt;
    }
    return PartOf{skipNoops(fused),
                  result.getResultNumber() == 0 ? Part::First : Part::Second};
  }
  if (name != "onnx.Slice" || op->getNumOperands() < 4)
    return std::nullopt;
  std::optional<SmallVector<int64_t>> starts = intConstant(op->getOperand(1));
  std::optional<SmallVector<int64_t>> ends = intConstant(op->getOperand(2));
  std::optional<SmallVector<int64_t>> steps =
      op->getNumOperands() > 4 && !isNone(op->getOperand(4))
          ? intConstant(op->getOperand(4))
          : SmallVector<int64_t>{1};
  if (!starts || !ends || !steps || starts->size() != 1 || ends->size() != 1 ||
      steps->size() != 1 || !axesAre(op->getOperand(3), {last, -1}))
    return std::nullopt;
  int64_t start = (*starts)[0], end = (*ends)[0], step = (*steps)[0];
  if (step == 1 && start == 0 && end == half)
    return PartOf{skipNoops(fused), Part::First};
  if (step == 1 && start == half && end >= width)
    return PartOf{skipNoops(fused), Part::Second};
  if (step == 2 && start == 0 && end >= width - 1)
    return PartOf{skipNoops(fused), Part::Even};
  if (step == 2 && start == 1 && end >= width)
    return PartOf{skipNoops(fused), Part::Odd};
  return std::nullopt;
}

Bytes raise::takeRows(const Bytes &from, Part part, int64_t expert) {
  ArrayRef<int64_t> shape = from.type.getShape();
  int64_t rows = shape[1], cols = shape.size() > 2 ? shape[2] : 1;
  size_t rowBytes = cols * from.elementBytes();
  Bytes out;
  SmallVector<int64_t> outShape = {rows / 2};
  if (shape.size() > 2)
    outShape.push_back(cols);
  out.type = RankedTensorType::get(outShape, from.type.getElementType());
  out.data.resize(rows / 2 * rowBytes);
  const char *base = from.data.data() + expert * rows * rowBytes;
  for (int64_t r = 0; r < rows / 2; ++r) {
    int64_t src = part == Part::First    ? r
                  : part == Part::Second ? rows / 2 + r
                  : part == Part::Even   ? 2 * r
                                         : 2 * r + 1;
    std::memcpy(out.data.data() + r * rowBytes, base + src * rowBytes,
                rowBytes);
  }
  return out;
}

Bytes raise::expertSlice(const Bytes &from, int64_t expert) {
  ArrayRef<int64_t> shape = from.type.getShape();
  Bytes out;
  out.type =
      RankedTensorType::get(shape.drop_front(), from.type.getElementType());
  size_t each = from.data.size() / shape[0];
  out.data.assign(from.data.begin() + expert * each,
                  from.data.begin() + (expert + 1) * each);
  return out;
}

std::optional<Gated> raise::matchGated(Value h) {
  Operation *mul = defOp(skipNoops(h), "Mul");
  if (!mul)
    return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    Value a = skipNoops(mul->getOperand(side));
    Value b = skipNoops(mul->getOperand(1 - side));
    if (Operation *add = defOp(a, "Add")) {
      Operation *glu = defOp(b, "Mul");
      for (int s = 0; s < 2 && glu; ++s) {
        std::optional<double> beta = scalarConstant(add->getOperand(1 - s));
        if (!beta)
          continue;
        Clipped up = unclip(add->getOperand(s));
        for (int g = 0; g < 2; ++g) {
          Value gc = skipNoops(glu->getOperand(g));
          Operation *sig = defOp(skipNoops(glu->getOperand(1 - g)), "Sigmoid");
          Operation *scaled =
              sig ? defOp(skipNoops(sig->getOperand(0)), "Mul") : nullptr;
          if (!scaled)
            continue;
          for (int t = 0; t < 2; ++t) {
            std::optional<double> alpha =
                scalarConstant(scaled->getOperand(1 - t));
            if (!alpha || skipNoops(scaled->getOperand(t)) != gc)
              continue;
            Clipped gate = unclip(gc);
            // One limit: the gate clamped from above, up on both sides.
            bool clamped = gate.hi && !gate.lo && up.hi && up.lo &&
                           *up.hi == *gate.hi && *up.lo == -*gate.hi;
            bool plain = !gate.hi && !gate.lo && !up.hi && !up.lo;
            if (!clamped && !plain)
              continue;
            Gated r{gate.input, up.input, ActivationKind::swiglu,
                    *alpha,     *beta,    std::nullopt};
            if (clamped)
              r.limit = *gate.hi;
            return r;
          }
        }
      }
    }
    if (std::optional<Activation> act = matchActivation(a))
      return Gated{act->input, b, act->kind};
  }
  return std::nullopt;
}

bool raise::complementary(const PartOf &gate, const PartOf &up) {
  return gate.fused == up.fused &&
         ((gate.part == Part::First && up.part == Part::Second) ||
          (gate.part == Part::Even && up.part == Part::Odd));
}

Linear raise::stackedLinear(const Bytes &weights,
                            const std::optional<Bytes> &biases,
                            std::optional<Part> part, int64_t expert) {
  Linear lin;
  lin.weight =
      part ? takeRows(weights, *part, expert) : expertSlice(weights, expert);
  lin.out = lin.weight.type.getDimSize(0);
  lin.in = lin.weight.type.getDimSize(1);
  if (biases)
    lin.bias =
        part ? takeRows(*biases, *part, expert) : expertSlice(*biases, expert);
  return lin;
}

ExpertMlp raise::gatedExpert(Value tokens, const Gated &gated, Linear gate,
                             Linear up, Linear down) {
  ExpertMlp mlp;
  mlp.input = tokens;
  mlp.kind = gated.kind;
  mlp.alpha = gated.alpha;
  mlp.beta = gated.beta;
  mlp.limit = gated.limit;
  mlp.gate = std::move(gate);
  mlp.up = std::move(up);
  mlp.down = std::move(down);
  return mlp;
}
