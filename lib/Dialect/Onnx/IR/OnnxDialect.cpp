//===- OnnxDialect.cpp - The onnx dialect ---------------------------------===//

#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::onnx;

#include "moe-mlir/Dialect/Onnx/IR/OnnxDialect.cpp.inc"
#include "moe-mlir/Dialect/Onnx/IR/OnnxInterfaces.cpp.inc"

void OnnxDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "moe-mlir/Dialect/Onnx/IR/OnnxOps.cpp.inc"
      >();
}

/// Folders return elements attributes of exactly the result type (shape
/// inference has refined it first); anything else is not materialised.
Operation *OnnxDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                            Type type, Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, elements);
}

Type mlir::onnx::getElementTypeForDataType(MLIRContext *context, int64_t code) {
  auto integer = [&](unsigned width, bool isUnsigned = false) -> Type {
    return IntegerType::get(context, width,
                            isUnsigned ? IntegerType::Unsigned
                                       : IntegerType::Signless);
  };
  switch (code) {
  case 1:
    return Float32Type::get(context);
  case 2:
    return integer(8, true);
  case 3:
    return integer(8);
  case 4:
    return integer(16, true);
  case 5:
    return integer(16);
  case 6:
    return integer(32);
  case 7:
    return integer(64);
  case 9:
    return integer(1);
  case 10:
    return Float16Type::get(context);
  case 11:
    return Float64Type::get(context);
  case 12:
    return integer(32, true);
  case 13:
    return integer(64, true);
  case 14:
    return ComplexType::get(Float32Type::get(context));
  case 15:
    return ComplexType::get(Float64Type::get(context));
  case 16:
    return BFloat16Type::get(context);
  case 17:
    return Float8E4M3FNType::get(context);
  case 18:
    return Float8E4M3FNUZType::get(context);
  case 19:
    return Float8E5M2Type::get(context);
  case 20:
    return Float8E5M2FNUZType::get(context);
  case 21:
    return integer(4, true);
  case 22:
    return integer(4);
  case 23:
    return Float4E2M1FNType::get(context);
  default:
    return nullptr;
  }
}

std::optional<int64_t> mlir::onnx::getDataTypeForElementType(Type type) {
  for (int64_t code = 1; code <= 23; ++code)
    if (Type candidate = getElementTypeForDataType(type.getContext(), code))
      if (candidate == type)
        return code;
  return std::nullopt;
}
