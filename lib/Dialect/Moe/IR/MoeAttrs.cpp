//===- MoeAttrs.cpp - moe dialect attributes -------------------------------===//

#include "moe-mlir/Dialect/Moe/IR/Moe.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;

#include "moe-mlir/Dialect/Moe/IR/MoeEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "moe-mlir/Dialect/Moe/IR/MoeAttrs.cpp.inc"

void MoeDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "moe-mlir/Dialect/Moe/IR/MoeAttrs.cpp.inc"
      >();
}

LogicalResult
ActivationAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                       ActivationKind kind, APFloat alpha, APFloat beta,
                       std::optional<FloatAttr> limit) {
  bool isSwiglu = kind == ActivationKind::swiglu;
  if (!isSwiglu &&
      (alpha.convertToDouble() != 1.0 || beta.convertToDouble() != 0.0 || limit))
    return emitError() << "activation '" << stringifyActivationKind(kind)
                       << "' takes no alpha, beta or limit (only swiglu does)";
  if (limit && !(limit->getValueAsDouble() > 0.0))
    return emitError() << "swiglu limit must be positive, got "
                       << limit->getValueAsDouble();
  return success();
}

LogicalResult RoutingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t topK, Scoring, RoutingOrder, bool,
                                  int64_t groups, int64_t groupsKept,
                                  APFloat scale, APFloat normEpsilon,
                                  APFloat normFloor, APFloat mixerEpsilon,
                                  bool) {
  if (topK < 1)
    return emitError() << "top_k must be at least 1, got " << topK;
  if (groups < 1 || groupsKept < 1)
    return emitError() << "groups and groups_kept must be at least 1, got "
                       << groups << " and " << groupsKept;
  if (groups == 1 && groupsKept != 1)
    return emitError() << "groups_kept needs groups > 1";
  auto finiteNonNegative = [](const APFloat &v) {
    return v.isFinite() && !v.isNegative();
  };
  if (!scale.isFinite() || !(scale.convertToDouble() > 0.0))
    return emitError() << "scale must be positive and finite, got "
                       << scale.convertToDouble();
  if (!finiteNonNegative(normEpsilon) || !finiteNonNegative(normFloor) ||
      !finiteNonNegative(mixerEpsilon))
    return emitError() << "norm_epsilon, norm_floor and mixer_epsilon must "
                          "be finite and non-negative";
  return success();
}

LogicalResult
ClusterRoutingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                           ClusterRoutingMode, int64_t clustersPerToken,
                           ClusterScore) {
  if (clustersPerToken < 1)
    return emitError() << "clusters_per_token must be at least 1, got "
                       << clustersPerToken;
  return success();
}

//===----------------------------------------------------------------------===//
// QuantAttr
//===----------------------------------------------------------------------===//

LogicalResult QuantAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                QuantStorage storage, int64_t groupSize,
                                bool symmetric, Type scaleType,
                                Type zeroPointType, NibbleOrder) {
  bool isInteger = storage == QuantStorage::i4 || storage == QuantStorage::i8;
  if (!isInteger) {
    if (groupSize != 0 || scaleType || zeroPointType)
      return emitError() << "float storage '" << stringifyQuantStorage(storage)
                         << "' takes no group_size, scale_type or "
                            "zero_point_type";
    return success();
  }
  if (groupSize < 0)
    return emitError() << "group_size must be 0 (one group per row) or "
                          "positive, got "
                       << groupSize;
  if (storage == QuantStorage::i4 && groupSize % 2 != 0)
    return emitError() << "group_size of i4 storage must be even so groups "
                          "start on a byte, got "
                       << groupSize;
  if (!scaleType || !isa<Float16Type, BFloat16Type, Float32Type>(scaleType))
    return emitError() << "integer storage needs scale_type f16, bf16 or f32";
  if (symmetric && zeroPointType)
    return emitError() << "symmetric storage takes no zero_point_type (the "
                          "zero point is 2^(bits-1))";
  if (!symmetric &&
      (!zeroPointType ||
       !(zeroPointType.isSignlessInteger(8) ||
         isa<Float16Type, BFloat16Type, Float32Type>(zeroPointType))))
    return emitError() << "asymmetric storage needs zero_point_type i8, f16, "
                          "bf16 or f32";
  return success();
}

int64_t QuantAttr::getBits() const {
  switch (getStorage()) {
  case QuantStorage::i4:
    return 4;
  case QuantStorage::i8:
    return 8;
  case QuantStorage::f16:
  case QuantStorage::bf16:
    return 16;
  case QuantStorage::f32:
    return 32;
  }
  return 32;
}

SmallVector<int64_t> QuantAttr::getDataShape(ArrayRef<int64_t> shape) const {
  SmallVector<int64_t> result(shape);
  if (getStorage() == QuantStorage::i4 && !result.empty() &&
      !ShapedType::isDynamic(result.back()))
    result.back() = (result.back() + 1) / 2;
  return result;
}

SmallVector<int64_t> QuantAttr::getScaleShape(ArrayRef<int64_t> shape) const {
  SmallVector<int64_t> result(shape);
  if (result.empty() || ShapedType::isDynamic(result.back()))
    return result;
  int64_t group = getGroupSize() == 0 ? result.back() : getGroupSize();
  result.back() = group == 0 ? 0 : (result.back() + group - 1) / group;
  return result;
}

Type QuantAttr::getDataElementType() const {
  MLIRContext *ctx = getContext();
  switch (getStorage()) {
  case QuantStorage::i4:
  case QuantStorage::i8:
    return IntegerType::get(ctx, 8);
  case QuantStorage::f16:
    return Float16Type::get(ctx);
  case QuantStorage::bf16:
    return BFloat16Type::get(ctx);
  case QuantStorage::f32:
    return Float32Type::get(ctx);
  }
  return Float32Type::get(ctx);
}

LogicalResult
QuantAttr::verifyEncoding(ArrayRef<int64_t> shape, Type elementType,
                          function_ref<InFlightDiagnostic()> emitError) const {
  if (!isa<Float16Type, BFloat16Type, Float32Type>(elementType))
    return emitError() << "a #moe.quant tensor must have a float element "
                          "type (the dequantised type), got "
                       << elementType;
  if (shape.empty())
    return emitError() << "a #moe.quant tensor must have rank at least 1";
  if (ShapedType::isDynamicShape(shape))
    return emitError() << "a #moe.quant tensor must have a static shape";
  return success();
}
