//===- MatchSupport.cpp - Pieces the MoE matchers share -------------------===//

#include "MatchSupport.h"

#include "moe-mlir/Dialect/Moe/Transforms/WeightAccess.h"
#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::raise;

bool raise::isNone(Value v) { return !v || isa<NoneType>(v.getType()); }

int64_t raise::intAttr(Operation *op, StringRef name, int64_t fallback) {
  if (auto a = op->getAttrOfType<IntegerAttr>(name))
    return a.getInt();
  return fallback;
}

Operation *raise::defOp(Value v, StringRef type) {
  Operation *op = v ? v.getDefiningOp() : nullptr;
  if (!op || op->getName().getDialectNamespace() != "onnx" ||
      op->getName().stripDialect() != type)
    return nullptr;
  return op;
}

Value raise::skipNoops(Value v) {
  while (true) {
    if (Operation *id = defOp(v, "Identity")) {
      v = id->getOperand(0);
      continue;
    }
    Operation *cast = defOp(v, "Cast");
    if (!cast)
      return v;
    auto from = dyn_cast<ShapedType>(cast->getOperand(0).getType());
    auto to = dyn_cast<ShapedType>(v.getType());
    if (!from || !to || from.getElementType() != to.getElementType())
      return v;
    v = cast->getOperand(0);
  }
}

std::optional<double> raise::scalarConstant(Value v) {
  Attribute attr;
  if (!v || !matchPattern(v, m_Constant(&attr)))
    return std::nullopt;
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  if (dense && isa<FloatType>(dense.getElementType())) {
    auto values = dense.getValues<APFloat>();
    double first = (*values.begin()).convertToDouble();
    for (APFloat x : values)
      if (x.convertToDouble() != first)
        return std::nullopt;
    return first;
  }
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (isa<DenseResourceElementsAttr>(attr) && type &&
      type.getNumElements() == 1 && type.getElementType().isF32()) {
    std::vector<char> storage;
    FailureOr<ArrayRef<char>> raw =
        readConstantBytes(v, v.getDefiningOp(), "scalar", storage);
    if (failed(raw))
      return std::nullopt;
    float f;
    std::memcpy(&f, raw->data(), sizeof f);
    return f;
  }
  return std::nullopt;
}

bool raise::isScalar(Value v, double expected) {
  std::optional<double> c = scalarConstant(v);
  return c &&
         std::abs(*c - expected) <= 1e-6 * std::max(1.0, std::abs(expected));
}

bool raise::isZeros(Value v) {
  v = skipNoops(v);
  // dynamo writes zeros(shape) as Expand(0.0, shape).
  if (Operation *e = defOp(v, "Expand"))
    return isScalar(e->getOperand(0), 0.0) &&
           isa<FloatType>(cast<ShapedType>(v.getType()).getElementType());
  if (Operation *c = defOp(v, "ConstantOfShape")) {
    auto value = c->getAttrOfType<DenseElementsAttr>("value");
    if (!value)
      return true; // ONNX's default is a float32 zero
    return isa<FloatType>(value.getElementType()) &&
           llvm::all_of(value.getValues<APFloat>(),
                        [](APFloat x) { return x.isZero(); });
  }
  return isScalar(v, 0.0);
}

std::optional<SmallVector<int64_t>> raise::intConstant(Value v) {
  std::optional<SmallVector<int64_t>> values = onnx::getKnownIntValues(v);
  if (!values || llvm::any_of(*values, ShapedType::isDynamic))
    return std::nullopt;
  return values;
}

bool raise::axesAre(Value axes, std::initializer_list<int64_t> accepted) {
  std::optional<SmallVector<int64_t>> a = intConstant(axes);
  return a && a->size() == 1 && llvm::is_contained(accepted, (*a)[0]);
}

Value raise::unsqueezed(Value v, int64_t axis, int64_t rank) {
  Operation *u = defOp(skipNoops(v), "Unsqueeze");
  if (!u || u->getNumOperands() < 2 ||
      !axesAre(u->getOperand(1), {axis, axis - rank}))
    return {};
  return skipNoops(u->getOperand(0));
}

namespace {
/// Through Reshapes to [-1, H] of (?, H) values.
Value canonicalRows(Value v) {
  while (true) {
    v = skipNoops(v);
    Operation *r = defOp(v, "Reshape");
    if (!r || r->getOperand(0).getType() != v.getType())
      return v;
    std::optional<SmallVector<int64_t>> shape = intConstant(r->getOperand(1));
    auto type = cast<RankedTensorType>(v.getType());
    if (!shape || type.getRank() != 2 || shape->size() != 2 ||
        (*shape)[0] != -1 || (*shape)[1] != type.getDimSize(1))
      return v;
    v = r->getOperand(0);
  }
}
} // namespace

bool raise::sameRows(Value a, Value b) {
  a = canonicalRows(a);
  b = canonicalRows(b);
  if (a == b)
    return true;
  Operation *ra = defOp(a, "Reshape"), *rb = defOp(b, "Reshape");
  if (!ra || !rb || a.getType() != b.getType() ||
      skipNoops(ra->getOperand(0)) != skipNoops(rb->getOperand(0)))
    return false;
  std::optional<SmallVector<int64_t>> sa = intConstant(ra->getOperand(1));
  std::optional<SmallVector<int64_t>> sb = intConstant(rb->getOperand(1));
  return sa && sb && *sa == *sb && !llvm::is_contained(*sa, 0);
}

FailureOr<Bytes> raise::readBytes(Value v, Operation *user, StringRef what,
                                  Why &why) {
  Bytes b;
  b.type = dyn_cast<RankedTensorType>(v.getType());
  if (!b.type || !b.type.hasStaticShape())
    return why.decline(what + " has no static shape");
  Attribute ignored;
  if (!matchPattern(v, m_Constant(&ignored)))
    return why.decline(what + " is not a constant");
  std::vector<char> storage;
  FailureOr<ArrayRef<char>> raw = readConstantBytes(v, user, what, storage);
  if (failed(raw))
    return failure();
  b.data.assign(raw->begin(), raw->end());
  return b;
}

std::vector<char> raise::transposeBytes(ArrayRef<char> data,
                                        size_t elementBytes, int64_t batch,
                                        int64_t rows, int64_t cols) {
  std::vector<char> out(data.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        std::memcpy(out.data() + ((b * cols + c) * rows + r) * elementBytes,
                    data.data() + ((b * rows + r) * cols + c) * elementBytes,
                    elementBytes);
  return out;
}

FailureOr<Linear> raise::matchLinear(Value y, Operation *user, Why &why) {
  Linear lin;
  Value v = skipNoops(y);
  Value biasValue;
  if (Operation *add = defOp(v, "Add")) {
    for (int side = 0; side < 2; ++side) {
      Value product = skipNoops(add->getOperand(side));
      if (defOp(product, "MatMul") || defOp(product, "Gemm")) {
        biasValue = add->getOperand(1 - side);
        v = product;
        break;
      }
    }
  }
  Operation *op = defOp(v, "MatMul");
  bool gemm = false;
  if (!op) {
    op = defOp(v, "Gemm");
    gemm = op != nullptr;
  }
  if (!op)
    return why.decline("it is not a MatMul or Gemm by a constant weight");
  lin.root = op;
  lin.input = op->getOperand(0);
  Value w = op->getOperand(1);
  bool outIn = false; // whether w is stored (out, in)
  if (gemm) {
    if (intAttr(op, "transA", 0) != 0)
      return why.decline("its Gemm has transA = 1");
    auto alpha = op->getAttrOfType<FloatAttr>("alpha");
    auto beta = op->getAttrOfType<FloatAttr>("beta");
    if ((alpha && alpha.getValueAsDouble() != 1.0) ||
        (beta && beta.getValueAsDouble() != 1.0 && !isNone(op->getOperand(2))))
      return why.decline("its Gemm scales by alpha or beta");
    outIn = intAttr(op, "transB", 0) != 0;
    if (!isNone(op->getOperand(2))) {
      if (biasValue)
        return why.decline("it adds two biases");
      biasValue = op->getOperand(2);
    }
  } else if (Operation *t = defOp(w, "Transpose")) {
    // MatMul(x, Transpose(W)) with W (out, in) is how exporters often
    // write nn.Linear before constant folding.
    auto perm = t->getAttrOfType<DenseI64ArrayAttr>("perm");
    if (!perm || perm.asArrayRef() == ArrayRef<int64_t>{1, 0}) {
      w = t->getOperand(0);
      outIn = true;
    }
  }
  auto inType = dyn_cast<RankedTensorType>(lin.input.getType());
  if (!inType || inType.getRank() != 2)
    return why.decline("its input is not a matrix");
  FailureOr<Bytes> wb = readBytes(w, user, "its weight", why);
  if (failed(wb))
    return failure();
  if (wb->type.getRank() != 2)
    return why.decline("its weight is not a matrix");
  int64_t r = wb->type.getDimSize(0), c = wb->type.getDimSize(1);
  lin.out = outIn ? r : c;
  lin.in = outIn ? c : r;
  lin.weight.type =
      RankedTensorType::get({lin.out, lin.in}, wb->type.getElementType());
  lin.weight.data = outIn
                        ? std::move(wb->data)
                        : transposeBytes(wb->data, wb->elementBytes(), 1, r, c);
  if (biasValue) {
    FailureOr<Bytes> bb = readBytes(biasValue, user, "its bias", why);
    if (failed(bb))
      return failure();
    ArrayRef<int64_t> shape = bb->type.getShape();
    bool rowVector = bb->type.getNumElements() == lin.out && !shape.empty() &&
                     shape.back() == lin.out;
    if (!rowVector || bb->type.getElementType() != wb->type.getElementType())
      return why.decline("its bias is not one value per output");
    bb->type = RankedTensorType::get({lin.out}, bb->type.getElementType());
    lin.bias = std::move(*bb);
  }
  return lin;
}

namespace {
/// The factors of a product tree of Mul ops.
void productFactors(Value v, SmallVectorImpl<Value> &factors) {
  v = skipNoops(v);
  if (Operation *mul = defOp(v, "Mul")) {
    productFactors(mul->getOperand(0), factors);
    productFactors(mul->getOperand(1), factors);
    return;
  }
  factors.push_back(v);
}

/// Erf(a / sqrt 2) or Erf(a * (1 / sqrt 2)): returns a.
Value erfArgument(Value v) {
  Operation *erf = defOp(skipNoops(v), "Erf");
  if (!erf)
    return {};
  Value z = skipNoops(erf->getOperand(0));
  if (Operation *div = defOp(z, "Div"))
    return isScalar(div->getOperand(1), std::sqrt(2.0))
               ? skipNoops(div->getOperand(0))
               : Value();
  SmallVector<Value> f;
  productFactors(z, f);
  if (f.size() == 2)
    for (int i = 0; i < 2; ++i)
      if (isScalar(f[i], 1.0 / std::sqrt(2.0)))
        return f[1 - i];
  return {};
}

/// Tanh(sqrt(2/pi) * (a + 0.044715 a^3)): returns a.
Value tanhArgument(Value v) {
  Operation *tanh = defOp(skipNoops(v), "Tanh");
  if (!tanh)
    return {};
  SmallVector<Value> f;
  productFactors(tanh->getOperand(0), f);
  if (f.size() != 2)
    return {};
  int scaleAt = isScalar(f[0], std::sqrt(2.0 / M_PI)) ? 0 : 1;
  if (!isScalar(f[scaleAt], std::sqrt(2.0 / M_PI)))
    return {};
  Operation *add = defOp(f[1 - scaleAt], "Add");
  if (!add)
    return {};
  for (int side = 0; side < 2; ++side) {
    Value a = skipNoops(add->getOperand(side));
    SmallVector<Value> cubic;
    productFactors(add->getOperand(1 - side), cubic);
    // 0.044715 * a * a * a, or 0.044715 * Pow(a, 3).
    SmallVector<Value> rest;
    bool coefficient = false;
    for (Value c : cubic) {
      if (!coefficient && isScalar(c, 0.044715))
        coefficient = true;
      else
        rest.push_back(c);
    }
    if (!coefficient)
      continue;
    if (rest.size() == 3 && llvm::all_of(rest, [&](Value x) { return x == a; }))
      return a;
    if (rest.size() == 1)
      if (Operation *pow = defOp(rest[0], "Pow"))
        if (skipNoops(pow->getOperand(0)) == a &&
            isScalar(pow->getOperand(1), 3))
          return a;
  }
  return {};
}
} // namespace

std::optional<Activation> raise::matchActivation(Value h) {
  h = skipNoops(h);
  if (Operation *relu = defOp(h, "Relu"))
    return Activation{ActivationKind::relu, skipNoops(relu->getOperand(0))};
  if (Operation *gelu = defOp(h, "Gelu")) {
    auto approx = gelu->getAttrOfType<StringAttr>("approximate");
    bool tanh = approx && approx.getValue() == "tanh";
    return Activation{tanh ? ActivationKind::gelu_tanh : ActivationKind::gelu,
                      skipNoops(gelu->getOperand(0))};
  }
  SmallVector<Value> f;
  productFactors(h, f);
  if (f.size() == 2) {
    for (int i = 0; i < 2; ++i)
      if (Operation *sig = defOp(f[i], "Sigmoid"))
        if (skipNoops(sig->getOperand(0)) == f[1 - i])
          return Activation{ActivationKind::silu, f[1 - i]};
    return std::nullopt;
  }
  if (f.size() != 3)
    return std::nullopt;
  // x * 0.5 * (1 + Erf(x / sqrt 2)) or the tanh form, factors in any order.
  for (int onePlus = 0; onePlus < 3; ++onePlus) {
    Operation *add = defOp(f[onePlus], "Add");
    if (!add)
      continue;
    for (int side = 0; side < 2; ++side) {
      if (!isScalar(add->getOperand(1 - side), 1.0))
        continue;
      Value inner = add->getOperand(side);
      ActivationKind kind = ActivationKind::gelu;
      Value a = erfArgument(inner);
      if (!a) {
        a = tanhArgument(inner);
        kind = ActivationKind::gelu_tanh;
      }
      if (!a)
        continue;
      Value u = f[(onePlus + 1) % 3], w = f[(onePlus + 2) % 3];
      if ((u == a && isScalar(w, 0.5)) || (w == a && isScalar(u, 0.5)))
        return Activation{kind, a};
    }
  }
  return std::nullopt;
}

FailureOr<ExpertMlp> raise::matchExpertMlp(Value out, Operation *user,
                                           Why &why) {
  ExpertMlp mlp;
  FailureOr<Linear> down = matchLinear(out, user, why);
  if (failed(down)) {
    if (why.declined())
      why.text = "its output projection: " + why.text;
    return failure();
  }
  mlp.down = std::move(*down);
  Value hidden = skipNoops(mlp.down.input);

  // GLU: act(gate(x)) * up(x), either operand order.
  if (Operation *mul = defOp(hidden, "Mul")) {
    for (int side = 0; side < 2; ++side) {
      std::optional<Activation> act = matchActivation(mul->getOperand(side));
      if (!act)
        continue;
      Why inner;
      FailureOr<Linear> gate = matchLinear(act->input, user, inner);
      if (failed(gate)) {
        if (!inner.declined())
          return failure();
        continue;
      }
      FailureOr<Linear> up =
          matchLinear(mul->getOperand(1 - side), user, inner);
      if (failed(up)) {
        if (!inner.declined())
          return failure();
        continue;
      }
      if (skipNoops(gate->input) != skipNoops(up->input))
        return why.decline("its gate and up projections read different "
                           "inputs");
      mlp.kind = act->kind;
      mlp.input = skipNoops(up->input);
      mlp.gate = std::move(*gate);
      mlp.up = std::move(*up);
      return mlp;
    }
  }
  // Plain: act(up(x)), or no activation at all.
  std::optional<Activation> act = matchActivation(hidden);
  mlp.kind = act ? act->kind : ActivationKind::identity;
  FailureOr<Linear> up = matchLinear(act ? act->input : hidden, user, why);
  if (failed(up)) {
    if (why.declined())
      why.text = (act ? "the input of its activation: "
                      : "what feeds its output projection is neither an "
                        "activation nor a projection: ") +
                 why.text;
    return failure();
  }
  mlp.input = skipNoops(up->input);
  mlp.up = std::move(*up);
  return mlp;
}

void raise::eraseDeadTree(Operation *root) {
  SmallVector<Operation *> worklist = {root};
  while (!worklist.empty()) {
    Operation *op = worklist.pop_back_val();
    if (!op->use_empty() || !isMemoryEffectFree(op))
      continue;
    SmallVector<Operation *> operands;
    for (Value v : op->getOperands())
      if (Operation *def = v.getDefiningOp())
        operands.push_back(def);
    op->erase();
    for (Operation *def : operands)
      if (!llvm::is_contained(worklist, def))
        worklist.push_back(def);
  }
}
