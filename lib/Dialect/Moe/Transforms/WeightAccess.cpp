//===- WeightAccess.cpp - Reading and making weight constants --------------===//

#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"

#include "moe-mlir/Dialect/Moe/IR/Moe.h"
#include "moe-mlir/Method/Quantization.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"

#include <cstring>

using namespace mlir;
using namespace mlir::moe;

FailureOr<ArrayRef<char>>
mlir::moe::readConstantBytes(Value value, Operation *user, StringRef name,
                             std::vector<char> &storage) {
  auto type = cast<RankedTensorType>(value.getType());
  Attribute attr;
  if (!matchPattern(value, m_Constant(&attr)))
    return user->emitError() << "operand '" << name
                             << "' is not a constant (layer dumps and the "
                                "compression passes need constant weights)";
  size_t elementBytes = type.getElementTypeBitWidth() / 8;
  size_t bytes = type.getNumElements() * elementBytes;
  ArrayRef<char> raw;
  if (auto dense = dyn_cast<DenseIntOrFPElementsAttr>(attr)) {
    raw = dense.getRawData();
    if (dense.isSplat()) {
      storage.resize(bytes);
      for (size_t k = 0; k < bytes; k += elementBytes)
        std::memcpy(storage.data() + k, raw.data(), elementBytes);
      raw = storage;
    }
  } else if (auto resource = dyn_cast<DenseResourceElementsAttr>(attr)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob)
      return user->emitError() << "operand '" << name << "': resource '"
                               << resource.getRawHandle().getKey()
                               << "' has no data";
    raw = blob->getData();
  } else {
    return user->emitError() << "operand '" << name
                             << "': unsupported constant kind " << attr;
  }
  if (raw.size() != bytes)
    return user->emitError() << "operand '" << name << "' holds " << raw.size()
                             << " bytes but its type " << type << " needs "
                             << bytes;
  return raw;
}

int64_t FloatWeight::size() const {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

method::ConstMatrixRef FloatWeight::matrix(int64_t rowOffset,
                                           int64_t rows) const {
  int64_t cols = dims.empty() ? 1 : dims.back();
  return {ptr + rowOffset * cols, rows, cols};
}

namespace {
/// Widens `count` elements of `elementType` at `raw` to float32.
void widen(Type elementType, const char *raw, int64_t count, float *out) {
  if (elementType.isF32()) {
    std::memcpy(out, raw, count * sizeof(float));
    return;
  }
  const auto *bits = reinterpret_cast<const uint16_t *>(raw);
  bool half = elementType.isF16();
  for (int64_t k = 0; k < count; ++k) {
    uint16_t b;
    std::memcpy(&b, bits + k, sizeof(b));
    out[k] = half ? method::halfToFloat(b) : method::bfloat16ToFloat(b);
  }
}

/// Reads one unsigned code of a quantised row.
unsigned codeAt(const uint8_t *row, int64_t k, QuantAttr quant) {
  if (quant.getStorage() == QuantStorage::i8)
    return row[k];
  uint8_t byte = row[k / 2];
  bool low = (k % 2 == 0) == (quant.getPacking() == NibbleOrder::low_nibble_first);
  return low ? (byte & 0xF) : (byte >> 4);
}
} // namespace

FailureOr<FloatWeight> FloatWeight::read(Value value, Operation *user,
                                         StringRef name) {
  FloatWeight weight;
  auto type = cast<RankedTensorType>(value.getType());
  weight.dims.assign(type.getShape().begin(), type.getShape().end());
  int64_t count = type.getNumElements();

  auto quantized = value.getDefiningOp<QuantizedWeightOp>();
  if (!quantized) {
    std::vector<char> storage;
    FailureOr<ArrayRef<char>> raw =
        readConstantBytes(value, user, name, storage);
    if (failed(raw))
      return failure();
    if (type.getElementType().isF32() && storage.empty()) {
      // Zero copy: the blob or dense storage outlives the pass.
      weight.ptr = reinterpret_cast<const float *>(raw->data());
      return weight;
    }
    weight.owned.resize(count);
    widen(type.getElementType(), raw->data(), count, weight.owned.data());
    weight.ptr = weight.owned.data();
    return weight;
  }

  QuantAttr quant = quantized.getQuant();
  std::vector<char> dataStorage, scaleStorage, zpStorage;
  FailureOr<ArrayRef<char>> data = readConstantBytes(
      quantized.getData(), user, (name + ".data").str(), dataStorage);
  if (failed(data))
    return failure();
  weight.owned.resize(count);
  if (!quant.isInteger()) {
    widen(quant.getDataElementType(), data->data(), count,
          weight.owned.data());
    weight.ptr = weight.owned.data();
    return weight;
  }
  FailureOr<ArrayRef<char>> scales = readConstantBytes(
      quantized.getScales(), user, (name + ".scales").str(), scaleStorage);
  if (failed(scales))
    return failure();
  std::optional<ArrayRef<char>> zeroPoints;
  if (quantized.getZeroPoints()) {
    FailureOr<ArrayRef<char>> zp =
        readConstantBytes(quantized.getZeroPoints(), user,
                          (name + ".zero_points").str(), zpStorage);
    if (failed(zp))
      return failure();
    zeroPoints = *zp;
  }
  int64_t cols = weight.dims.back();
  int64_t rows = count / std::max<int64_t>(cols, 1);
  int64_t groups = method::numGroups(cols, quant.getGroupSize());
  int64_t group = quant.getGroupSize() == 0 ? cols : quant.getGroupSize();
  int64_t rowBytes = quant.getDataShape(weight.dims).back();
  std::vector<float> rowScales(groups), rowZps(groups);
  Type scaleType = quant.getScaleType();
  Type zpType = quant.getZeroPointType();
  float symmetricZp = static_cast<float>(1 << (quant.getBits() - 1));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t scaleBytes = scaleType.getIntOrFloatBitWidth() / 8;
    widen(scaleType, scales->data() + r * groups * scaleBytes, groups,
          rowScales.data());
    if (!zeroPoints) {
      std::fill(rowZps.begin(), rowZps.end(), symmetricZp);
    } else if (zpType.isSignlessInteger(8)) {
      for (int64_t g = 0; g < groups; ++g)
        rowZps[g] = static_cast<uint8_t>((*zeroPoints)[r * groups + g]);
    } else {
      int64_t zpBytes = zpType.getIntOrFloatBitWidth() / 8;
      widen(zpType, zeroPoints->data() + r * groups * zpBytes, groups,
            rowZps.data());
    }
    const auto *codes =
        reinterpret_cast<const uint8_t *>(data->data() + r * rowBytes);
    float *out = weight.owned.data() + r * cols;
    for (int64_t k = 0; k < cols; ++k) {
      int64_t g = k / group;
      out[k] = (static_cast<float>(codeAt(codes, k, quant)) - rowZps[g]) *
               rowScales[g];
    }
  }
  weight.ptr = weight.owned.data();
  return weight;
}

Value mlir::moe::makeResourceConstant(OpBuilder &builder, Location loc,
                                      RankedTensorType type,
                                      std::vector<char> bytes,
                                      StringRef nameHint) {
  // The blob takes the vector over: no copy of a possibly large buffer.
  auto *held = new std::vector<char>(std::move(bytes));
  ArrayRef<char> view(held->data(), held->size());
  AsmResourceBlob blob = UnmanagedAsmResourceBlob::allocateWithAlign(
      view, alignof(std::max_align_t),
      [held](void *, size_t, size_t) { delete held; });
  auto attr = DenseResourceElementsAttr::get(type, nameHint, std::move(blob));
  return arith::ConstantOp::create(builder, loc, type, attr);
}

Value mlir::moe::makeFloatConstant(OpBuilder &builder, Location loc,
                                   RankedTensorType type,
                                   std::vector<float> values,
                                   StringRef nameHint) {
  Type element = type.getElementType();
  std::vector<char> bytes;
  if (element.isF32()) {
    bytes.resize(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
  } else {
    bytes.resize(values.size() * sizeof(uint16_t));
    bool half = element.isF16();
    for (size_t k = 0; k < values.size(); ++k) {
      uint16_t b = half ? method::floatToHalf(values[k])
                        : method::floatToBFloat16(values[k]);
      std::memcpy(bytes.data() + 2 * k, &b, sizeof(b));
    }
  }
  values = {};
  return makeResourceConstant(builder, loc, type, std::move(bytes), nameHint);
}
