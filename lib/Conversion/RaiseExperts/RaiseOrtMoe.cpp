//===- RaiseOrtMoe.cpp - com.microsoft.MoE / QMoE to moe.layer ------------===//
//
// onnxruntime's fused MoE ops already are one MoE layer; raising them means
// folding in the router (MatMul/Gemm [+ Add] of the same tokens by a
// constant) and bringing the expert weights to moe.layer's layout:
// gate/up (E, I, H), down (E, H, I). Weights are rearranged as raw bytes
// (rows moved, never converted); QMoE weights stay quantised, as
// moe.quantized_weight values over their packed codes.
//
//===----------------------------------------------------------------------===//

#include "MatchSupport.h"
#include "RaiseExperts.h"

#include "moe-mlir/Dialect/Moe/IR/Moe.h"
#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"

#include <cstring>
#include <numeric>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

namespace {

/// Why a candidate is declined; raised to the pass as a remark.
struct Decline {
  std::string why;
};

class OrtMoeRaiser {
public:
  OrtMoeRaiser(Operation *op, OrtMoeLayout layout)
      : op(op), layout(layout), builder(op),
        quantized(op->getName().getStringRef() == "onnx.QMoE") {
    builder.setListener(&created);
  }

  RaiseResult run() {
    RaiseResult result = match();
    if (result != RaiseResult::Raised)
      created.eraseAll();
    return result;
  }

private:
  // Operand positions of the two ops (ONNX input order).
  Value input() { return op->getOperand(0); }
  Value routerProbs() { return op->getOperand(1); }
  Value fc1() { return op->getOperand(2); }
  Value fc1Bias() { return op->getOperand(quantized ? 4 : 3); }
  Value fc2() { return op->getOperand(quantized ? 5 : 4); }
  Value fc2Bias() { return op->getOperand(quantized ? 7 : 5); }
  Value fc3() { return op->getOperand(quantized ? 8 : 6); }
  Value fc3Bias() { return op->getOperand(quantized ? 10 : 7); }
  Value scales(int fc) { return op->getOperand(fc == 1 ? 3 : fc == 2 ? 6 : 9); }
  Value zeroPoints(int fc) { return op->getOperand(10 + fc); }

  FailureOr<Bytes> constant(Value v, StringRef what);
  LogicalResult matchRouter(Value tokens2d, Value &weight, Value &bias);
  RaiseResult decline(const Twine &why) {
    op->emitRemark() << op->getName() << " not raised to moe.layer: " << why;
    return RaiseResult::Declined;
  }

  Operation *op;
  OrtMoeLayout layout;
  OpBuilder builder;
  bool quantized;
  std::optional<Decline> declined;
  CreatedOps created;

  RaiseResult match();
};

FailureOr<Bytes> OrtMoeRaiser::constant(Value v, StringRef what) {
  Why why;
  FailureOr<Bytes> b = readBytes(v, op, what, why);
  if (failed(b) && why.declined())
    declined = Decline{why.text};
  return b;
}

/// Rows [of an (experts, rows, cols)-shaped byte array] picked per expert.
std::vector<char> pickRows(const Bytes &b, int64_t experts, int64_t rows,
                           ArrayRef<int64_t> picked) {
  int64_t rowBytes = b.data.size() / (experts * rows);
  std::vector<char> out(experts * picked.size() * rowBytes);
  for (int64_t e = 0; e < experts; ++e)
    for (auto [k, r] : llvm::enumerate(picked))
      std::memcpy(out.data() + (e * picked.size() + k) * rowBytes,
                  b.data.data() + (e * rows + r) * rowBytes, rowBytes);
  return out;
}

LogicalResult OrtMoeRaiser::matchRouter(Value tokens2d, Value &weight,
                                        Value &bias) {
  Why why;
  FailureOr<Linear> lin = matchLinear(routerProbs(), op, why);
  if (failed(lin)) {
    if (why.declined())
      declined = Decline{"router_probs is not a linear layer of the MoE "
                         "input: " +
                         why.text};
    return failure();
  }
  Value a = skipNoops(lin->input);
  if (a != input() && a != tokens2d) {
    declined = Decline{"the router reads other tokens than the MoE input"};
    return failure();
  }
  Location loc = lin->root->getLoc();
  weight = makeResourceConstant(builder, loc, lin->weight.type,
                                std::move(lin->weight.data), "router_weight");
  if (lin->bias)
    bias = makeResourceConstant(builder, loc, lin->bias->type,
                                std::move(lin->bias->data), "router_bias");
  return success();
}

RaiseResult OrtMoeRaiser::match() {
  auto inputType = dyn_cast<RankedTensorType>(input().getType());
  if (!inputType || (inputType.getRank() != 2 && inputType.getRank() != 3) ||
      inputType.isDynamicDim(inputType.getRank() - 1))
    return decline("the input is not a (T, H) or (B, S, H) tensor with a "
                   "static H");
  Type element = inputType.getElementType();
  int64_t h = inputType.getShape().back();
  if (intAttr(op, "use_sparse_mixer", 0) != 0)
    return decline("use_sparse_mixer = 1 (sparsemixer routing) has no "
                   "moe.layer form yet");

  StringRef activation = "relu";
  if (auto a = op->getAttrOfType<StringAttr>("activation_type"))
    activation = a.getValue();
  bool swiglu = activation == "swiglu";
  bool hasFc3 = !isNone(fc3());
  int64_t fusion = intAttr(op, "swiglu_fusion", 0);
  if (swiglu && fusion == 0 && !hasFc3)
    return decline("swiglu with swiglu_fusion = 0 needs fc3 weights");
  int64_t f = swiglu && fusion != 0 ? 2 : 1;

  // Tokens as (T, H): collapse (B, S, H) here and expand the result after.
  builder.setInsertionPoint(op);
  Location loc = op->getLoc();
  Value tokens = input();
  if (inputType.getRank() == 3) {
    SmallVector<ReassociationIndices> groups = {{0, 1}, {2}};
    tokens = tensor::CollapseShapeOp::create(builder, loc, input(), groups);
  }

  Value routerW, routerB;
  if (failed(matchRouter(tokens, routerW, routerB)))
    return declined ? decline(declined->why) : RaiseResult::Error;
  int64_t experts = cast<RankedTensorType>(routerW.getType()).getDimSize(0);
  if (cast<RankedTensorType>(routerW.getType()).getDimSize(1) != h)
    return decline("the router weight's hidden size differs from the "
                   "input's");

  // Expert weights.
  auto fc1Type = dyn_cast<RankedTensorType>(fc1().getType());
  auto fc2Type = dyn_cast<RankedTensorType>(fc2().getType());
  if (!fc1Type || !fc2Type || fc1Type.getRank() != 3 ||
      fc2Type.getRank() != 3 || fc1Type.getDimSize(0) != experts ||
      fc2Type.getDimSize(0) != experts)
    return decline("expert weights are not (E, rows, cols) with E = the "
                   "router's expert count");
  int64_t bits = intAttr(op, "expert_weight_bits", 4);
  int64_t pack = quantized ? 8 / bits : 1;
  if (quantized && bits != 4 && bits != 8)
    return decline("expert_weight_bits is neither 4 nor 8");

  // Layout: current fc1 (E, f*I, H), fc2 (E, H, I); legacy fc1 (E, H, f*I),
  // fc2 (E, I, H). QMoE packs the last axis, so only current exists.
  bool legacy = false;
  int64_t inter;
  if (quantized) {
    inter = fc1Type.getDimSize(1) / f;
    if (fc1Type.getDimSize(2) * pack != h || fc2Type.getDimSize(1) != h)
      return decline("QMoE weights do not have the layout fc1 (E, f*I, "
                     "H/pack), fc2 (E, H, I/pack)");
  } else {
    bool current = fc1Type.getDimSize(2) == h && fc2Type.getDimSize(1) == h &&
                   fc1Type.getDimSize(1) == f * fc2Type.getDimSize(2);
    bool old = fc1Type.getDimSize(1) == h && fc2Type.getDimSize(2) == h &&
               fc1Type.getDimSize(2) == f * fc2Type.getDimSize(1);
    if (current && old) {
      if (layout == OrtMoeLayout::Auto) {
        op->emitError() << "the weight layout of this " << op->getName()
                        << " is ambiguous (H = I = " << h
                        << "): pass --moe-raise-experts=\"ort-moe-layout="
                           "current\" (fc1 (E, f*I, H), fc2 (E, H, I)) or "
                           "ort-moe-layout=legacy (fc1 (E, H, f*I), fc2 (E, "
                           "I, H))";
        return RaiseResult::Error;
      }
      legacy = layout == OrtMoeLayout::Legacy;
    } else if (current || old) {
      legacy = old;
      if ((layout == OrtMoeLayout::Current && old) ||
          (layout == OrtMoeLayout::Legacy && current))
        return decline("the weights' shapes contradict ort-moe-layout");
    } else {
      return decline("expert weight shapes match neither the current nor "
                     "the legacy layout");
    }
    inter = legacy ? fc1Type.getDimSize(2) / f : fc1Type.getDimSize(1) / f;
  }

  // Which fc1 rows are the gate and which the linear half.
  SmallVector<int64_t> gateRows, upRows, allRows(f * inter);
  std::iota(allRows.begin(), allRows.end(), 0);
  for (int64_t i = 0; i < inter; ++i) {
    if (f == 1)
      break;
    gateRows.push_back(fusion == 1 ? 2 * i : i);
    upRows.push_back(fusion == 1 ? 2 * i + 1 : inter + i);
  }

  auto rowsOf = [&](Value v, StringRef what, int64_t outRows, int64_t cols,
                    ArrayRef<int64_t> picked, bool transposeLegacy,
                    StringRef name) -> FailureOr<Value> {
    FailureOr<Bytes> b = constant(v, what);
    if (failed(b))
      return failure();
    std::vector<char> data = std::move(b->data);
    if (transposeLegacy) {
      Bytes t{b->type, std::move(data)};
      data = transposeBytes(t.data, t.elementBytes(), experts, cols, outRows);
    }
    Bytes rows{b->type, std::move(data)};
    std::vector<char> out = picked.empty()
                                ? std::move(rows.data)
                                : pickRows(rows, experts, outRows, picked);
    int64_t n = picked.empty() ? outRows : picked.size();
    return makeResourceConstant(
        builder, loc, RankedTensorType::get({experts, n, cols}, element),
        std::move(out), name);
  };

  Value gateW, upW, downW, gateB, upB, downB;
  auto floatWeights = [&]() -> LogicalResult {
    auto get = [&](Value v, StringRef what, int64_t rows, int64_t cols,
                   ArrayRef<int64_t> picked, StringRef name) {
      return rowsOf(v, what, rows, cols, picked, legacy, name);
    };
    if (f == 2) {
      FailureOr<Value> g =
          get(fc1(), "fc1 weights", 2 * inter, h, gateRows, "gate_weight");
      FailureOr<Value> u =
          get(fc1(), "fc1 weights", 2 * inter, h, upRows, "up_weight");
      if (failed(g) || failed(u))
        return failure();
      gateW = *g;
      upW = *u;
    } else if (hasFc3) {
      FailureOr<Value> g =
          get(fc1(), "fc1 weights", inter, h, {}, "gate_weight");
      FailureOr<Value> u = get(fc3(), "fc3 weights", inter, h, {}, "up_weight");
      if (failed(g) || failed(u))
        return failure();
      gateW = *g;
      upW = *u;
    } else {
      FailureOr<Value> u = get(fc1(), "fc1 weights", inter, h, {}, "up_weight");
      if (failed(u))
        return failure();
      upW = *u;
    }
    FailureOr<Value> d = get(fc2(), "fc2 weights", h, inter, {}, "down_weight");
    if (failed(d))
      return failure();
    downW = *d;
    return success();
  };

  // QMoE: codes, scales and zero points move row by row together.
  auto quantWeight = [&](int fc, Value codes, int64_t rows, int64_t cols,
                         ArrayRef<int64_t> picked,
                         StringRef name) -> FailureOr<Value> {
    FailureOr<Bytes> data = constant(codes, "packed weights");
    FailureOr<Bytes> sc = constant(scales(fc), "scales");
    if (failed(data) || failed(sc))
      return failure();
    int64_t blockSize = intAttr(op, "block_size", 0);
    int64_t groups = blockSize > 0 ? (cols + blockSize - 1) / blockSize : 1;
    if (sc->type.getNumElements() != experts * rows * groups) {
      declined = Decline{"scales do not hold one value per expert, row and "
                         "block"};
      return failure();
    }
    std::optional<Bytes> zp;
    if (!isNone(zeroPoints(fc))) {
      FailureOr<Bytes> z = constant(zeroPoints(fc), "zero points");
      if (failed(z))
        return failure();
      // 4-bit zero points come packed two per byte; ours are one per byte.
      int64_t stored = z->type.getNumElements();
      if (bits == 4 && stored == experts * rows * ((groups + 1) / 2) &&
          groups > 1) {
        std::vector<char> unpacked(experts * rows * groups);
        for (int64_t r = 0; r < experts * rows; ++r)
          for (int64_t g = 0; g < groups; ++g) {
            uint8_t byte = z->data[r * ((groups + 1) / 2) + g / 2];
            unpacked[r * groups + g] = g % 2 ? byte >> 4 : byte & 0xF;
          }
        z->data = std::move(unpacked);
      } else if (stored != experts * rows * groups) {
        declined = Decline{"zero points do not match the scales"};
        return failure();
      }
      zp = std::move(*z);
    }
    auto pick = [&](Bytes &b) {
      return picked.empty() ? std::move(b.data)
                            : pickRows(b, experts, rows, picked);
    };
    int64_t n = picked.empty() ? rows : picked.size();
    MLIRContext *ctx = op->getContext();
    Type i8 = IntegerType::get(ctx, 8);
    Type scaleType = sc->type.getElementType();
    auto quant = QuantAttr::get(
        ctx, bits == 4 ? QuantStorage::i4 : QuantStorage::i8, blockSize,
        /*symmetric=*/!zp, scaleType, zp ? i8 : Type(),
        NibbleOrder::low_nibble_first);
    SmallVector<int64_t> logical = {experts, n, cols};
    Value dataV = makeResourceConstant(
        builder, loc, RankedTensorType::get(quant.getDataShape(logical), i8),
        pick(*data), (name + "_codes").str());
    Value scaleV = makeResourceConstant(
        builder, loc,
        RankedTensorType::get(quant.getScaleShape(logical), scaleType),
        pick(*sc), (name + "_scales").str());
    Value zpV;
    if (zp)
      zpV = makeResourceConstant(
          builder, loc, RankedTensorType::get(quant.getScaleShape(logical), i8),
          pick(*zp), (name + "_zero_points").str());
    return QuantizedWeightOp::create(
               builder, loc, RankedTensorType::get(logical, element, quant),
               dataV, scaleV, zpV)
        .getResult();
  };
  auto quantWeights = [&]() -> LogicalResult {
    FailureOr<Value> g = Value(), u, d;
    if (f == 2) {
      g = quantWeight(1, fc1(), 2 * inter, h, gateRows, "gate_weight");
      u = quantWeight(1, fc1(), 2 * inter, h, upRows, "up_weight");
    } else if (hasFc3) {
      g = quantWeight(1, fc1(), inter, h, {}, "gate_weight");
      u = quantWeight(3, fc3(), inter, h, {}, "up_weight");
    } else {
      u = quantWeight(1, fc1(), inter, h, {}, "up_weight");
    }
    d = quantWeight(2, fc2(), h, inter, {}, "down_weight");
    if (failed(g) || failed(u) || failed(d))
      return failure();
    gateW = *g;
    upW = *u;
    downW = *d;
    return success();
  };
  if (failed(quantized ? quantWeights() : floatWeights()))
    return declined ? decline(declined->why) : RaiseResult::Error;

  // Biases: fc1's split like its rows; plain (E, n) tensors.
  auto bias = [&](Value v, StringRef what, int64_t rows,
                  ArrayRef<int64_t> picked,
                  StringRef name) -> FailureOr<Value> {
    FailureOr<Bytes> b = constant(v, what);
    if (failed(b))
      return failure();
    if (b->type.getNumElements() != experts * rows) {
      declined = Decline{(what + " does not hold one value per expert and "
                                 "row")
                             .str()};
      return failure();
    }
    std::vector<char> out = picked.empty()
                                ? std::move(b->data)
                                : pickRows(*b, experts, rows, picked);
    int64_t n = picked.empty() ? rows : picked.size();
    return makeResourceConstant(builder, loc,
                                RankedTensorType::get({experts, n}, element),
                                std::move(out), name);
  };
  if (!isNone(fc1Bias())) {
    FailureOr<Value> g = Value(), u;
    if (f == 2) {
      g = bias(fc1Bias(), "fc1 bias", 2 * inter, gateRows, "gate_bias");
      u = bias(fc1Bias(), "fc1 bias", 2 * inter, upRows, "up_bias");
    } else if (hasFc3) {
      g = bias(fc1Bias(), "fc1 bias", inter, {}, "gate_bias");
    } else {
      u = bias(fc1Bias(), "fc1 bias", inter, {}, "up_bias");
    }
    if (failed(g) || failed(u))
      return declined ? decline(declined->why) : RaiseResult::Error;
    gateB = *g;
    upB = *u;
  }
  if (hasFc3 && !isNone(fc3Bias())) {
    FailureOr<Value> u = bias(fc3Bias(), "fc3 bias", inter, {}, "up_bias");
    if (failed(u))
      return declined ? decline(declined->why) : RaiseResult::Error;
    upB = *u;
  }
  if (!isNone(fc2Bias())) {
    FailureOr<Value> d = bias(fc2Bias(), "fc2 bias", h, {}, "down_bias");
    if (failed(d))
      return declined ? decline(declined->why) : RaiseResult::Error;
    downB = *d;
  }

  // Activation: onnxruntime's CPU "gelu" is the tanh approximation
  // (checked in python/tests/test_reference.py).
  MLIRContext *ctx = op->getContext();
  std::optional<ActivationKind> kind =
      llvm::StringSwitch<std::optional<ActivationKind>>(activation)
          .Case("relu", ActivationKind::relu)
          .Case("gelu", ActivationKind::gelu_tanh)
          .Case("silu", ActivationKind::silu)
          .Case("identity", ActivationKind::identity)
          .Case("swiglu", ActivationKind::swiglu)
          .Default(std::nullopt);
  if (!kind)
    return decline("activation_type '" + activation + "' is unknown");
  APFloat alpha(1.0), beta(0.0);
  std::optional<FloatAttr> limit;
  if (swiglu) {
    if (auto a = op->getAttrOfType<FloatAttr>("activation_alpha"))
      alpha = APFloat(a.getValueAsDouble());
    if (auto b = op->getAttrOfType<FloatAttr>("activation_beta"))
      beta = APFloat(b.getValueAsDouble());
    if (auto l = op->getAttrOfType<FloatAttr>("swiglu_limit"))
      limit = FloatAttr::get(Float32Type::get(ctx), l.getValueAsDouble());
  }
  // swiglu with alpha 1, beta 0 and no clamp is plain SiLU GLU: say so, so
  // later passes and readers see the common case.
  if (swiglu && alpha.convertToDouble() == 1.0 &&
      beta.convertToDouble() == 0.0 && !limit)
    kind = ActivationKind::silu;
  auto act = ActivationAttr::get(ctx, *kind, alpha, beta, limit);
  int64_t k = intAttr(op, "k", 1);
  if (k < 1 || k > experts)
    return decline("k is outside [1, E]");
  auto routing =
      RoutingAttr::get(ctx, k, Scoring::softmax, RoutingOrder::score_then_topk,
                       intAttr(op, "normalize_routing_weights", 0));

  auto tokensType = cast<RankedTensorType>(tokens.getType());
  auto layer =
      LayerOp::create(builder, loc, tokensType, tokens, routerW, routerB,
                      /*selection_bias=*/Value(), gateW, upW, downW, gateB, upB,
                      downB, routing, act, DenseBoolArrayAttr());
  if (failed(layer.verify())) {
    layer.erase();
    return RaiseResult::Error;
  }
  Value result = layer.getResult();
  if (inputType.getRank() == 3) {
    SmallVector<OpFoldResult> sizes;
    for (int64_t d = 0; d < 3; ++d)
      sizes.push_back(
          inputType.isDynamicDim(d)
              ? OpFoldResult(
                    tensor::DimOp::create(builder, loc, input(), d).getResult())
              : OpFoldResult(builder.getIndexAttr(inputType.getDimSize(d))));
    SmallVector<ReassociationIndices> groups = {{0, 1}, {2}};
    result = tensor::ExpandShapeOp::create(builder, loc, inputType, result,
                                           groups, sizes);
  }
  Value old = op->getResult(0);
  if (old.getType() != result.getType())
    result = tensor::CastOp::create(builder, loc, old.getType(), result);
  old.replaceAllUsesWith(result);
  op->erase();
  return RaiseResult::Raised;
}

} // namespace

RaiseResult mlir::moe::raiseOrtMoe(Operation *op, OrtMoeLayout layout) {
  return OrtMoeRaiser(op, layout).run();
}
