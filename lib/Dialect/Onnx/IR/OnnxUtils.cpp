//===- OnnxUtils.cpp - Shape and constant utilities -----------------------===//

#include "OnnxDetail.h"

#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>

using namespace mlir;
using namespace mlir::onnx;
using namespace mlir::onnx::util;

std::optional<SmallVector<int64_t>> util::shapeOf(Value value) {
  if (auto type = dyn_cast<RankedTensorType>(value.getType()))
    return llvm::to_vector(type.getShape());
  return std::nullopt;
}

int64_t util::rankOf(Value value) {
  if (auto type = dyn_cast<RankedTensorType>(value.getType()))
    return type.getRank();
  return -1;
}

Type util::elementTypeOf(Value value) {
  if (auto type = dyn_cast<TensorType>(value.getType()))
    return type.getElementType();
  return nullptr;
}

bool util::isNone(Value value) { return isa<NoneType>(value.getType()); }

std::string util::shapeString(ArrayRef<int64_t> shape) {
  if (shape.empty())
    return "()";
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleave(
      shape, os,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          os << "?";
        else
          os << d;
      },
      "x");
  return text;
}

bool util::broadcastShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b,
                           SmallVectorImpl<int64_t> &result) {
  size_t rank = std::max(a.size(), b.size());
  SmallVector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t x = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t y = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (x == 1)
      out[i] = y;
    else if (y == 1)
      out[i] = x;
    else if (ShapedType::isDynamic(x))
      out[i] = y; // y is dynamic or a static size other than 1
    else if (ShapedType::isDynamic(y) || x == y)
      out[i] = x;
    else
      return false;
  }
  result.assign(out.begin(), out.end());
  return true;
}

bool util::meetDim(int64_t a, int64_t b, int64_t &result) {
  if (ShapedType::isDynamic(a)) {
    result = b;
    return true;
  }
  result = a;
  return ShapedType::isDynamic(b) || a == b;
}

int64_t util::product(ArrayRef<int64_t> sizes) {
  int64_t n = 1;
  for (int64_t d : sizes) {
    if (ShapedType::isDynamic(d))
      return kDyn;
    n *= d;
  }
  return n;
}

FailureOr<SmallVector<int64_t>> util::normalizeAxes(Operation *op,
                                                    StringRef name,
                                                    ArrayRef<int64_t> axes,
                                                    int64_t rank) {
  SmallVector<int64_t> result;
  for (int64_t axis : axes) {
    if (axis < -rank || axis >= rank)
      return op->emitOpError()
             << "operand '" << name << "' has entry " << axis
             << " out of range [" << -rank << ", " << rank << ")";
    int64_t normalized = axis < 0 ? axis + rank : axis;
    if (llvm::is_contained(result, normalized))
      return op->emitOpError() << "operand '" << name << "' names axis "
                               << normalized << " twice";
    result.push_back(normalized);
  }
  return result;
}

//===----------------------------------------------------------------------===//
// Constants
//===----------------------------------------------------------------------===//

namespace {

/// Widens one stored element: `bits` wide at `data`, little endian.
int64_t readInt(const char *data, unsigned bits, bool isUnsigned) {
  switch (bits) {
  case 1:
  case 8:
    return isUnsigned || bits == 1 ? int64_t(uint8_t(*data))
                                   : int64_t(int8_t(*data));
  case 16: {
    uint16_t v;
    std::memcpy(&v, data, 2);
    return isUnsigned ? int64_t(v) : int64_t(int16_t(v));
  }
  case 32: {
    uint32_t v;
    std::memcpy(&v, data, 4);
    return isUnsigned ? int64_t(v) : int64_t(int32_t(v));
  }
  default: {
    int64_t v;
    std::memcpy(&v, data, 8);
    return v;
  }
  }
}

} // namespace

std::optional<ConstTensor> util::readConstant(Attribute attr, int64_t limit) {
  auto elements = dyn_cast_if_present<ElementsAttr>(attr);
  if (!elements)
    return std::nullopt;
  auto type = dyn_cast<RankedTensorType>(elements.getType());
  if (!type || !type.hasStaticShape() || type.getNumElements() > limit)
    return std::nullopt;
  Type element = type.getElementType();
  ConstTensor tensor{type, {}, {}};
  int64_t count = type.getNumElements();

  if (auto dense = dyn_cast<DenseElementsAttr>(attr)) {
    if (auto intType = dyn_cast<IntegerType>(element)) {
      bool zext = intType.isUnsigned() || intType.getWidth() == 1;
      for (const APInt &v : dense.getValues<APInt>())
        tensor.ints.push_back(zext ? static_cast<int64_t>(v.getZExtValue())
                                   : v.getSExtValue());
      return tensor;
    }
    if (isa<FloatType>(element)) {
      for (APFloat v : dense.getValues<APFloat>()) {
        bool lost;
        v.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
        tensor.floats.push_back(v.convertToDouble());
      }
      return tensor;
    }
    return std::nullopt;
  }

  auto resource = dyn_cast<DenseResourceElementsAttr>(attr);
  if (!resource)
    return std::nullopt;
  AsmResourceBlob *blob = resource.getRawHandle().getBlob();
  if (!blob)
    return std::nullopt;
  ArrayRef<char> raw = blob->getData();
  if (!isa<IntegerType, FloatType>(element))
    return std::nullopt;
  unsigned bits = element.getIntOrFloatBitWidth();
  unsigned bytes = bits == 1 ? 1 : bits / 8;
  if (bits % 8 != 0 && bits != 1)
    return std::nullopt;
  if (raw.size() != static_cast<size_t>(count) * bytes)
    return std::nullopt;
  if (auto intType = dyn_cast<IntegerType>(element)) {
    for (int64_t i = 0; i < count; ++i)
      tensor.ints.push_back(
          readInt(raw.data() + i * bytes, bits, intType.isUnsigned()));
    return tensor;
  }
  auto floatType = dyn_cast<FloatType>(element);
  if (!floatType)
    return std::nullopt;
  for (int64_t i = 0; i < count; ++i) {
    APInt bitsValue(bits, static_cast<uint64_t>(
                              readInt(raw.data() + i * bytes, bits, true)));
    APFloat v(floatType.getFloatSemantics(), bitsValue);
    bool lost;
    v.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
    tensor.floats.push_back(v.convertToDouble());
  }
  return tensor;
}

std::optional<ConstTensor> util::constantOf(Value value, int64_t limit) {
  Attribute attr;
  if (!value || !matchPattern(value, m_Constant(&attr)))
    return std::nullopt;
  return readConstant(attr, limit);
}

DenseElementsAttr util::writeConstant(const ConstTensor &tensor) {
  Type element = tensor.type.getElementType();
  if (auto floatType = dyn_cast<FloatType>(element)) {
    SmallVector<APFloat> values;
    for (int64_t i = 0, e = tensor.size(); i < e; ++i) {
      double v = tensor.isFloat() ? tensor.floats[i]
                                  : static_cast<double>(tensor.ints[i]);
      APFloat f(v);
      bool lost;
      f.convert(floatType.getFloatSemantics(), APFloat::rmNearestTiesToEven,
                &lost);
      values.push_back(f);
    }
    return DenseElementsAttr::get(tensor.type, values);
  }
  auto intType = cast<IntegerType>(element);
  unsigned width = intType.getWidth();
  SmallVector<APInt> values;
  for (int64_t i = 0, e = tensor.size(); i < e; ++i) {
    int64_t v = tensor.isFloat() ? static_cast<int64_t>(tensor.floats[i])
                                 : tensor.ints[i];
    uint64_t bits = width == 1 ? uint64_t(v != 0) : static_cast<uint64_t>(v);
    values.emplace_back(width, bits,
                        /*isSigned=*/width != 1 && !intType.isUnsigned(),
                        /*implicitTrunc=*/true);
  }
  return DenseElementsAttr::get(tensor.type, values);
}

//===----------------------------------------------------------------------===//
// Einsum equations
//===----------------------------------------------------------------------===//

FailureOr<EinsumSpec> util::parseEinsum(Operation *op, StringRef equation) {
  std::string text;
  for (char c : equation)
    if (c != ' ')
      text.push_back(c);
  auto malformed = [&](const Twine &why) {
    return op->emitOpError()
           << "equation '" << equation << "' is malformed: " << why;
  };
  auto parseTerm = [&](StringRef term, EinsumTerm &result) -> LogicalResult {
    for (size_t i = 0; i < term.size();) {
      if (llvm::isAlpha(term[i])) {
        result.labels.push_back(term[i++]);
        continue;
      }
      if (term.substr(i).starts_with("...") && result.ellipsis < 0) {
        result.ellipsis = static_cast<int64_t>(result.labels.size());
        i += 3;
        continue;
      }
      return malformed("unexpected '" + Twine(term[i]) + "' in term '" + term +
                       "'");
    }
    return success();
  };

  EinsumSpec spec;
  StringRef all(text);
  auto [lhs, rhs] = all.split("->");
  bool explicitOutput = all.contains("->");
  if (explicitOutput && rhs.contains("->"))
    return malformed("more than one '->'");
  SmallVector<StringRef> terms;
  lhs.split(terms, ',');
  bool anyEllipsis = false;
  llvm::StringMap<int> counts;
  for (StringRef term : terms) {
    EinsumTerm parsed;
    if (failed(parseTerm(term, parsed)))
      return failure();
    anyEllipsis |= parsed.ellipsis >= 0;
    for (char c : parsed.labels)
      ++counts[StringRef(&c, 1)];
    spec.inputs.push_back(std::move(parsed));
  }
  if (explicitOutput) {
    if (failed(parseTerm(rhs, spec.output)))
      return failure();
    for (size_t i = 0; i < spec.output.labels.size(); ++i) {
      char c = spec.output.labels[i];
      if (!counts.count(StringRef(&c, 1)))
        return malformed("output label '" + Twine(c) + "' occurs in no input");
      if (spec.output.labels.find(c, i + 1) != std::string::npos)
        return malformed("output label '" + Twine(c) + "' occurs twice");
    }
    if (spec.output.ellipsis >= 0 && !anyEllipsis)
      return malformed("'...' in the output but in no input");
    return spec;
  }
  // numpy's implicit output: the broadcast dimensions, then the labels
  // used once, in alphabetical order.
  if (anyEllipsis)
    spec.output.ellipsis = 0;
  for (const auto &entry : counts)
    if (entry.second == 1)
      spec.output.labels.push_back(entry.first()[0]);
  llvm::sort(spec.output.labels);
  return spec;
}
