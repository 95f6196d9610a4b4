//===- QuantizeWeights.cpp - Storage of bases and residual factors --------===//

#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/Options.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"
#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"
#include "moe-mlir/Method/Quantization.h"

#include <cstring>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEQUANTIZEPASS
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

std::optional<Storage> mlir::moe::parseStorage(StringRef text) {
  return llvm::StringSwitch<std::optional<Storage>>(text)
      .Case("none", Storage::None)
      .Case("32", Storage::F32)
      .Case("16", Storage::F16)
      .Case("bf16", Storage::BF16)
      .Case("8", Storage::I8)
      .Case("4", Storage::I4)
      .Default(std::nullopt);
}

namespace {
/// The quantised value for `weight` in `storage`, or a null Value when the
/// weight stays as it is.
FailureOr<Value> quantizeWeight(ClusteredLayerOp op, OpBuilder &builder,
                                StringRef name, Value weight, Storage storage,
                                const QuantizeConfig &config) {
  auto type = cast<RankedTensorType>(weight.getType());
  Type element = type.getElementType();
  bool keep = storage == Storage::None || type.getEncoding() ||
              type.getNumElements() == 0 ||
              (storage == Storage::F32) ||
              (storage == Storage::F16 && element.isF16()) ||
              (storage == Storage::BF16 && element.isBF16());
  if (keep)
    return Value();

  FailureOr<FloatWeight> w = FloatWeight::read(weight, op, name);
  if (failed(w))
    return failure();
  MLIRContext *ctx = op.getContext();
  Location loc = op.getLoc();
  int64_t cols = type.getShape().back();
  int64_t rows = type.getNumElements() / cols;

  if (storage == Storage::F16 || storage == Storage::BF16) {
    auto quant = QuantAttr::get(
        ctx, storage == Storage::F16 ? QuantStorage::f16 : QuantStorage::bf16,
        0, true, Type(), Type(), NibbleOrder::low_nibble_first);
    auto dataType = RankedTensorType::get(type.getShape(),
                                          quant.getDataElementType());
    std::vector<float> values(w->data(), w->data() + w->size());
    Value data = makeFloatConstant(builder, loc, dataType, std::move(values),
                                   (name + "_data").str());
    auto resultType =
        RankedTensorType::get(type.getShape(), element, quant);
    return QuantizedWeightOp::create(builder, loc, resultType, data, Value(),
                                     Value())
        .getResult();
  }

  method::IntQuantParams params;
  params.bits = storage == Storage::I4 ? 4 : 8;
  params.groupSize = config.groupSize;
  params.symmetric = config.symmetric;
  params.scaleType = method::ScaleType::F16;
  if (params.bits == 4 && config.groupSize % 2 != 0)
    return op.emitError() << "group-size of 4-bit storage must be even, got "
                          << config.groupSize;
  method::IntQuantized q = method::quantizeRows(w->matrix(0, rows), params);

  Type i8 = IntegerType::get(ctx, 8);
  Type f16 = Float16Type::get(ctx);
  auto quant = QuantAttr::get(
      ctx, params.bits == 4 ? QuantStorage::i4 : QuantStorage::i8,
      config.groupSize, config.symmetric, f16,
      config.symmetric ? Type() : i8, NibbleOrder::low_nibble_first);
  auto resultType = RankedTensorType::get(type.getShape(), element, quant);
  auto bytesOf = [](const std::vector<uint8_t> &v) {
    return std::vector<char>(v.begin(), v.end());
  };
  Value data = makeResourceConstant(
      builder, loc,
      RankedTensorType::get(quant.getDataShape(type.getShape()), i8),
      bytesOf(q.codes), (name + "_codes").str());
  SmallVector<int64_t> scaleShape = quant.getScaleShape(type.getShape());
  Value scales = makeResourceConstant(
      builder, loc, RankedTensorType::get(scaleShape, f16), bytesOf(q.scales),
      (name + "_scales").str());
  Value zeroPoints;
  if (!config.symmetric)
    zeroPoints = makeResourceConstant(builder, loc,
                                      RankedTensorType::get(scaleShape, i8),
                                      bytesOf(q.zeroPoints),
                                      (name + "_zero_points").str());
  return QuantizedWeightOp::create(builder, loc, resultType, data, scales,
                                   zeroPoints)
      .getResult();
}
} // namespace

LogicalResult mlir::moe::quantizeLayer(ClusteredLayerOp op,
                                       const QuantizeConfig &config) {
  if (config.groupSize < 0)
    return op.emitError() << "group-size must be 0 (one group per row) or "
                             "positive, got "
                          << config.groupSize;
  OpBuilder builder(op);
  struct Slot {
    const char *name;
    OpOperand *operand;
    Storage storage;
  };
  SmallVector<Slot> slots;
  auto add = [&](const char *name, MutableOperandRange range,
                 Storage storage) {
    if (!range.empty())
      slots.push_back({name, &range[0], storage});
  };
  add("gate_base", op.getGateBaseMutable(), config.base);
  add("gate_u", op.getGateUMutable(), config.residual);
  add("gate_v", op.getGateVMutable(), config.residual);
  add("up_base", op.getUpBaseMutable(), config.base);
  add("up_u", op.getUpUMutable(), config.residual);
  add("up_v", op.getUpVMutable(), config.residual);
  add("down_base", op.getDownBaseMutable(), config.base);
  add("down_u", op.getDownUMutable(), config.residual);
  add("down_v", op.getDownVMutable(), config.residual);
  for (Slot &slot : slots) {
    FailureOr<Value> q = quantizeWeight(op, builder, slot.name,
                                        slot.operand->get(), slot.storage,
                                        config);
    if (failed(q))
      return failure();
    if (!*q)
      continue;
    Value old = slot.operand->get();
    slot.operand->set(*q);
    // Drop the float copy now, not at the next canonicalisation: it may be
    // as large as the layer.
    if (Operation *def = old.getDefiningOp(); def && def->use_empty())
      def->erase();
  }
  return success();
}

namespace {
struct MoeQuantizePass
    : public mlir::moe::impl::MoeQuantizePassBase<MoeQuantizePass> {
  using Base::Base;

  void runOnOperation() override {
    FailureOr<QuantizeConfig> config = parseQuantizeOptions(
        getOperation(), bits, baseBits, groupSize, symmetric);
    if (failed(config))
      return signalPassFailure();
    WalkResult walk = getOperation().walk([&](ClusteredLayerOp op) {
      return failed(quantizeLayer(op, *config)) ? WalkResult::interrupt()
                                               : WalkResult::advance();
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
