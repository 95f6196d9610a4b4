//===- SymbolicDims.cpp - Dynamic sizes as products of symbols ------------===//

#include "SymbolicDims.h"

#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"

using namespace mlir;
using namespace mlir::moe;

DimExpr DimExpr::symbol(Value v, int64_t dim) {
  return DimExpr{1, {{v.getAsOpaquePointer(), dim}}};
}

DimExpr DimExpr::operator*(const DimExpr &other) const {
  DimExpr r{coeff * other.coeff, symbols};
  r.symbols.append(other.symbols.begin(), other.symbols.end());
  llvm::sort(r.symbols);
  return r;
}

std::optional<DimExpr> DimExpr::divide(const DimExpr &other) const {
  if (other.coeff == 0 || coeff % other.coeff != 0)
    return std::nullopt;
  DimExpr r{coeff / other.coeff, symbols};
  for (const auto &s : other.symbols) {
    auto *it = llvm::find(r.symbols, s);
    if (it == r.symbols.end())
      return std::nullopt;
    r.symbols.erase(it);
  }
  return r;
}

namespace {
bool is(Operation *op, StringRef name) {
  return op && op->getName().getStringRef() == name;
}

int64_t intAttrOr(Operation *op, StringRef name, int64_t fallback) {
  if (auto a = op->getAttrOfType<IntegerAttr>(name))
    return a.getInt();
  return fallback;
}

// Ops whose result has the shape of their first operand.
bool keepsShape(Operation *op) {
  static const StringRef names[] = {
      "onnx.Cast",    "onnx.Identity", "onnx.Softmax", "onnx.LogSoftmax",
      "onnx.Sigmoid", "onnx.Relu",     "onnx.Erf",     "onnx.Tanh",
      "onnx.Neg",     "onnx.Exp",      "onnx.Gelu",    "onnx.Sqrt"};
  return llvm::is_contained(names, op->getName().getStringRef());
}
} // namespace

std::optional<SmallVector<DimExpr>> SymbolicDims::shape(Value tensor) {
  auto it = shapes.find(tensor);
  if (it != shapes.end())
    return it->second;
  // Seed the cache so a cycle through a malformed graph ends.
  shapes[tensor] = std::nullopt;
  std::optional<SmallVector<DimExpr>> r = computeShape(tensor);
  shapes[tensor] = r;
  return r;
}

std::optional<SmallVector<DimExpr>> SymbolicDims::values(Value tensor) {
  auto it = known.find(tensor);
  if (it != known.end())
    return it->second;
  known[tensor] = std::nullopt;
  std::optional<SmallVector<DimExpr>> r = computeValues(tensor);
  known[tensor] = r;
  return r;
}

std::optional<SmallVector<DimExpr>> SymbolicDims::computeShape(Value tensor) {
  auto type = dyn_cast<RankedTensorType>(tensor.getType());
  if (!type)
    return std::nullopt;
  int64_t rank = type.getRank();
  SmallVector<DimExpr> out;
  for (int64_t d = 0; d < rank; ++d)
    out.push_back(type.isDynamicDim(d) ? DimExpr::symbol(tensor, d)
                                       : DimExpr::constant(type.getDimSize(d)));
  if (type.hasStaticShape())
    return out;

  Operation *op = tensor.getDefiningOp();
  if (!op)
    return out;
  auto fromOperand = [&](unsigned operand) {
    std::optional<SmallVector<DimExpr>> in = shape(op->getOperand(operand));
    if (in && (int64_t)in->size() == rank)
      out = *in;
  };
  if (keepsShape(op)) {
    fromOperand(0);
  } else if (is(op, "onnx.MatMul") ||
             (is(op, "onnx.Gemm") && intAttrOr(op, "transA", 0) == 0)) {
    std::optional<SmallVector<DimExpr>> a = shape(op->getOperand(0));
    if (a && rank == 2 && a->size() == 2)
      out[0] = (*a)[0];
  } else if (is(op, "onnx.Add") || is(op, "onnx.Sub") || is(op, "onnx.Mul") ||
             is(op, "onnx.Div")) {
    // Broadcasting, right-aligned: a size-1 dim takes the other's size.
    std::optional<SmallVector<DimExpr>> a = shape(op->getOperand(0));
    std::optional<SmallVector<DimExpr>> b = shape(op->getOperand(1));
    if (a && b && (int64_t)std::max(a->size(), b->size()) == rank) {
      for (int64_t d = 0; d < rank; ++d) {
        int64_t i = d - (rank - (int64_t)a->size());
        int64_t j = d - (rank - (int64_t)b->size());
        std::optional<DimExpr> x, y;
        if (i >= 0)
          x = (*a)[i];
        if (j >= 0)
          y = (*b)[j];
        if (!x || x->isConstant(1))
          out[d] = y ? *y : *x;
        else if (!y || y->isConstant(1) || *x == *y)
          out[d] = *x;
      }
    }
  } else if (is(op, "onnx.ConstantOfShape")) {
    std::optional<SmallVector<DimExpr>> v = values(op->getOperand(0));
    if (v && (int64_t)v->size() == rank)
      out = *v;
  } else if (is(op, "onnx.Reshape")) {
    std::optional<SmallVector<DimExpr>> in = shape(op->getOperand(0));
    std::optional<SmallVector<int64_t>> raw =
        onnx::getKnownIntValues(op->getOperand(1));
    std::optional<SmallVector<DimExpr>> target = values(op->getOperand(1));
    if (!in || !target || (int64_t)target->size() != rank)
      return out;
    bool allowZero = intAttrOr(op, "allowzero", 0) != 0;
    int64_t inferred = -1;
    for (int64_t d = 0; d < rank; ++d) {
      int64_t c = raw ? (*raw)[d] : ShapedType::kDynamic;
      if (c == 0 && !allowZero && d < (int64_t)in->size())
        (*target)[d] = (*in)[d];
      else if (c == -1)
        inferred = d;
    }
    if (inferred >= 0) {
      DimExpr total = DimExpr::constant(1), rest = DimExpr::constant(1);
      for (const DimExpr &e : *in)
        total = total * e;
      for (int64_t d = 0; d < rank; ++d)
        if (d != inferred)
          rest = rest * (*target)[d];
      std::optional<DimExpr> q = total.divide(rest);
      if (!q)
        return out;
      (*target)[inferred] = *q;
    }
    out = *target;
  }
  // What the type states beats what the rules derived.
  for (int64_t d = 0; d < rank; ++d)
    if (!type.isDynamicDim(d))
      out[d] = DimExpr::constant(type.getDimSize(d));
  return out;
}

std::optional<SmallVector<DimExpr>> SymbolicDims::computeValues(Value tensor) {
  auto type = dyn_cast<RankedTensorType>(tensor.getType());
  if (!type || type.getRank() > 1 || !type.getElementType().isInteger())
    return std::nullopt;
  if (std::optional<SmallVector<int64_t>> c = onnx::getKnownIntValues(tensor);
      c && llvm::none_of(*c, ShapedType::isDynamic)) {
    SmallVector<DimExpr> out;
    for (int64_t v : *c)
      out.push_back(DimExpr::constant(v));
    return out;
  }
  Operation *op = tensor.getDefiningOp();
  if (!op)
    return std::nullopt;
  StringRef name = op->getName().getStringRef();
  if (name == "onnx.Shape") {
    std::optional<SmallVector<DimExpr>> s = shape(op->getOperand(0));
    if (!s)
      return std::nullopt;
    int64_t n = s->size();
    auto clampIndex = [&](int64_t i) {
      if (i < 0)
        i += n;
      return std::clamp<int64_t>(i, 0, n);
    };
    int64_t start = clampIndex(intAttrOr(op, "start", 0));
    int64_t end = clampIndex(intAttrOr(op, "end", n));
    if (end < start)
      end = start;
    return SmallVector<DimExpr>(s->begin() + start, s->begin() + end);
  }
  if (name == "onnx.Gather" && intAttrOr(op, "axis", 0) == 0) {
    std::optional<SmallVector<DimExpr>> data = values(op->getOperand(0));
    std::optional<SmallVector<int64_t>> idx =
        onnx::getKnownIntValues(op->getOperand(1));
    if (!data || !idx)
      return std::nullopt;
    SmallVector<DimExpr> out;
    int64_t n = data->size();
    for (int64_t i : *idx) {
      if (i < -n || i >= n)
        return std::nullopt;
      out.push_back((*data)[i < 0 ? i + n : i]);
    }
    return out;
  }
  if (name == "onnx.Concat") {
    SmallVector<DimExpr> out;
    for (Value v : op->getOperands()) {
      std::optional<SmallVector<DimExpr>> part = values(v);
      if (!part)
        return std::nullopt;
      out.append(part->begin(), part->end());
    }
    return out;
  }
  if (name == "onnx.Unsqueeze" || name == "onnx.Squeeze" ||
      name == "onnx.Reshape" || name == "onnx.Identity" || name == "onnx.Cast")
    return values(op->getOperand(0));
  if (name == "onnx.Mul") {
    std::optional<SmallVector<DimExpr>> a = values(op->getOperand(0));
    std::optional<SmallVector<DimExpr>> b = values(op->getOperand(1));
    if (!a || !b ||
        (a->size() != b->size() && a->size() != 1 && b->size() != 1))
      return std::nullopt;
    size_t n = std::max(a->size(), b->size());
    SmallVector<DimExpr> out;
    for (size_t i = 0; i < n; ++i)
      out.push_back((*a)[a->size() == 1 ? 0 : i] *
                    (*b)[b->size() == 1 ? 0 : i]);
    return out;
  }
  return std::nullopt;
}
