//===- Elementwise.cpp - Element-wise onnx ops to linalg.generic ----------===//
//
// Every element-wise op (unary, broadcasting binary and variadic, compare,
// logic, Where, Clip, Cast) becomes one linalg.generic over the result's
// shape; operands broadcast with constant-0 indexing where a size is
// statically 1 (Emitter::broadcastGeneric). Transcendental functions of
// f16/bf16 are computed in f32.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"

#include "llvm/ADT/StringSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe::onnx_lowering;

namespace {

/// `fn(x)` computed in f32 when `x` is a narrower float.
Value inF32(OpBuilder &b, Location loc, Value x,
            function_ref<Value(Value)> fn) {
  auto type = cast<FloatType>(x.getType());
  if (type.getWidth() >= 32)
    return fn(x);
  Value wide = arith::ExtFOp::create(b, loc, b.getF32Type(), x);
  return arith::TruncFOp::create(b, loc, type, fn(wide));
}

Value floatConst(OpBuilder &b, Location loc, Type type, double v) {
  return arith::ConstantOp::create(b, loc, b.getFloatAttr(type, v));
}

/// One math op on `x`.
template <typename OpT> Value unaryOp(OpBuilder &b, Location loc, Value x) {
  return OpT::create(b, loc, x);
}

/// The body of a float unary op on f32/f64 `x`.
Value floatUnary(OpBuilder &b, Location loc, StringRef name, Value x,
                 StringRef gelu) {
  Type t = x.getType();
  auto c = [&](double v) { return floatConst(b, loc, t, v); };
  using Build = Value (*)(OpBuilder &, Location, Value);
  Build one = llvm::StringSwitch<Build>(name)
                  .Case("Sqrt", unaryOp<math::SqrtOp>)
                  .Case("Exp", unaryOp<math::ExpOp>)
                  .Case("Log", unaryOp<math::LogOp>)
                  .Case("Erf", unaryOp<math::ErfOp>)
                  .Case("Tanh", unaryOp<math::TanhOp>)
                  .Case("Sin", unaryOp<math::SinOp>)
                  .Case("Cos", unaryOp<math::CosOp>)
                  .Case("Floor", unaryOp<math::FloorOp>)
                  .Case("Ceil", unaryOp<math::CeilOp>)
                  .Default(nullptr);
  if (one)
    return one(b, loc, x);
  if (name == "Reciprocal")
    return arith::DivFOp::create(b, loc, c(1), x);
  if (name == "Sigmoid") {
    // 1 / (1 + exp(-x)): exp overflows to inf for very negative x, giving 0.
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
    return arith::DivFOp::create(b, loc, c(1),
                                 arith::AddFOp::create(b, loc, c(1), e));
  }
  if (name == "Softplus") {
    // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), without overflow.
    Value abs = math::AbsFOp::create(b, loc, x);
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, abs));
    Value l = math::Log1pOp::create(b, loc, e);
    Value m = arith::MaxNumFOp::create(b, loc, x, c(0));
    return arith::AddFOp::create(b, loc, m, l);
  }
  if (name == "Gelu") {
    Value half = arith::MulFOp::create(b, loc, x, c(0.5));
    Value inner;
    if (gelu == "tanh") {
      // sqrt(2/pi) (x + 0.044715 x^3)
      Value x3 =
          arith::MulFOp::create(b, loc, x, arith::MulFOp::create(b, loc, x, x));
      Value sum = arith::AddFOp::create(
          b, loc, x, arith::MulFOp::create(b, loc, x3, c(0.044715)));
      inner = math::TanhOp::create(
          b, loc, arith::MulFOp::create(b, loc, sum, c(std::sqrt(2 / M_PI))));
    } else {
      inner = math::ErfOp::create(
          b, loc, arith::MulFOp::create(b, loc, x, c(M_SQRT1_2)));
    }
    return arith::MulFOp::create(b, loc, half,
                                 arith::AddFOp::create(b, loc, c(1), inner));
  }
  return {};
}

bool isFloatOnlyUnary(StringRef name) {
  return llvm::is_contained({"Sqrt", "Exp", "Log", "Erf", "Tanh", "Sin", "Cos",
                             "Floor", "Ceil", "Reciprocal", "Sigmoid",
                             "Softplus", "Gelu"},
                            name);
}

/// The body of unary op `name` on a signless `x` of onnx type `type`.
Value unaryBody(OpBuilder &b, Location loc, StringRef name, Type type, Value x,
                StringRef gelu) {
  bool isFloat = isa<FloatType>(type);
  Emitter e(b, loc);
  if (isFloatOnlyUnary(name)) {
    if (name == "Floor" || name == "Ceil" || name == "Reciprocal")
      return floatUnary(b, loc, name, x, gelu);
    return inF32(b, loc, x,
                 [&](Value v) { return floatUnary(b, loc, name, v, gelu); });
  }
  if (name == "Neg")
    return isFloat ? arith::NegFOp::create(b, loc, x).getResult()
                   : arith::SubIOp::create(b, loc, e.scalar(type, 0), x)
                         .getResult();
  if (name == "Abs") {
    if (isFloat)
      return math::AbsFOp::create(b, loc, x);
    if (isUnsignedInt(type))
      return x;
    return math::AbsIOp::create(b, loc, x);
  }
  if (name == "Relu")
    return combine(b, loc, Combine::Max, type, x, e.scalar(type, 0));
  if (name == "Sign") {
    Value zero = e.scalar(type, 0), one = e.scalar(type, 1),
          minus = e.scalar(type, -1);
    Value pos, neg;
    if (isFloat) {
      pos = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, zero);
      neg = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, zero);
      // NaN stays NaN.
      Value r = arith::SelectOp::create(b, loc, neg, minus, x);
      r = arith::SelectOp::create(b, loc, pos, one, r);
      Value isZero =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, x, zero);
      return arith::SelectOp::create(b, loc, isZero, zero, r);
    }
    pos = arith::CmpIOp::create(b, loc,
                                isUnsignedInt(type) ? arith::CmpIPredicate::ugt
                                                    : arith::CmpIPredicate::sgt,
                                x, zero);
    neg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, x, zero);
    if (isUnsignedInt(type))
      neg = e.scalar(b.getI1Type(), 0);
    Value r = arith::SelectOp::create(b, loc, neg, minus, zero);
    return arith::SelectOp::create(b, loc, pos, one, r);
  }
  if (name == "Not")
    return arith::XOrIOp::create(b, loc, x, e.scalar(b.getI1Type(), 1));
  return {};
}

/// `x ** y`: float bases in their type (integer exponents converted),
/// integer bases through f64 (exact for the integer results that fit).
Value powBody(OpBuilder &b, Location loc, Type xType, Type yType, Value x,
              Value y) {
  if (auto f = dyn_cast<FloatType>(xType)) {
    Value exponent = castScalar(b, loc, y, yType, f);
    return inF32(b, loc, x, [&](Value base) {
      Value ex = castScalar(b, loc, exponent, f, base.getType());
      return math::PowFOp::create(b, loc, base, ex).getResult();
    });
  }
  Type f64 = b.getF64Type();
  Value base = castScalar(b, loc, x, xType, f64);
  Value ex = castScalar(b, loc, y, yType, f64);
  Value r = math::PowFOp::create(b, loc, base, ex);
  return castScalar(b, loc, r, f64, xType);
}

Value binaryBody(OpBuilder &b, Location loc, StringRef name, Type type, Value x,
                 Value y) {
  bool isFloat = isa<FloatType>(type);
  bool isUnsigned = isUnsignedInt(type);
  if (name == "Add" || name == "Sum")
    return isFloat ? arith::AddFOp::create(b, loc, x, y).getResult()
                   : arith::AddIOp::create(b, loc, x, y).getResult();
  if (name == "Sub")
    return isFloat ? arith::SubFOp::create(b, loc, x, y).getResult()
                   : arith::SubIOp::create(b, loc, x, y).getResult();
  if (name == "Mul")
    return isFloat ? arith::MulFOp::create(b, loc, x, y).getResult()
                   : arith::MulIOp::create(b, loc, x, y).getResult();
  if (name == "Div") {
    if (isFloat)
      return arith::DivFOp::create(b, loc, x, y);
    // ONNX integer division truncates, like C.
    if (isUnsigned)
      return arith::DivUIOp::create(b, loc, x, y);
    return arith::DivSIOp::create(b, loc, x, y);
  }
  if (name == "Max")
    return combine(b, loc, Combine::Max, type, x, y);
  if (name == "Min")
    return combine(b, loc, Combine::Min, type, x, y);
  if (name == "And")
    return arith::AndIOp::create(b, loc, x, y);
  if (name == "Or")
    return arith::OrIOp::create(b, loc, x, y);
  // Comparisons.
  using FP = arith::CmpFPredicate;
  using IP = arith::CmpIPredicate;
  std::optional<std::pair<FP, IP>> preds =
      llvm::StringSwitch<std::optional<std::pair<FP, IP>>>(name)
          .Case("Equal", std::pair{FP::OEQ, IP::eq})
          .Case("Greater", std::pair{FP::OGT, isUnsigned ? IP::ugt : IP::sgt})
          .Case("Less", std::pair{FP::OLT, isUnsigned ? IP::ult : IP::slt})
          .Case("GreaterOrEqual",
                std::pair{FP::OGE, isUnsigned ? IP::uge : IP::sge})
          .Case("LessOrEqual",
                std::pair{FP::OLE, isUnsigned ? IP::ule : IP::sle})
          .Default(std::nullopt);
  if (!preds)
    return {};
  if (isFloat)
    return arith::CmpFOp::create(b, loc, preds->first, x, y);
  if (type.isInteger(1) && preds->second != IP::eq) {
    // Booleans order false < true.
    IP unsignedPred = llvm::StringSwitch<IP>(name)
                          .Case("Greater", IP::ugt)
                          .Case("Less", IP::ult)
                          .Case("GreaterOrEqual", IP::uge)
                          .Default(IP::ule);
    return arith::CmpIOp::create(b, loc, unsignedPred, x, y);
  }
  return arith::CmpIOp::create(b, loc, preds->second, x, y);
}

/// The op's name without the dialect prefix.
StringRef opKind(Operation *op) {
  return op->getName().getStringRef().drop_front(strlen("onnx."));
}

Type resultElement(Operation *op, unsigned i = 0) {
  return elementType(op->getResult(i));
}

/// Where dim `d` of `value` comes from, as far as it provably is the same:
/// through tensor.cast, destination-style ops (their inits), tensor.empty
/// sizes and tensor.dim. Two dims with the same origin are equal.
std::pair<Value, int64_t> sizeOrigin(Value value, int64_t d) {
  for (;;) {
    Operation *def = value.getDefiningOp();
    if (!def)
      return {value, d};
    if (auto cast = dyn_cast<tensor::CastOp>(def)) {
      value = cast.getSource();
      continue;
    }
    if (auto dps = dyn_cast<DestinationStyleOpInterface>(def)) {
      auto result = cast<OpResult>(value);
      if (result.getResultNumber() < dps.getNumDpsInits()) {
        value = dps.getDpsInitOperand(result.getResultNumber())->get();
        continue;
      }
      return {value, d};
    }
    if (auto empty = dyn_cast<tensor::EmptyOp>(def)) {
      if (!empty.getType().isDynamicDim(d))
        return {Value(), empty.getType().getDimSize(d)};
      Value size = empty.getDynamicSize(d);
      if (auto dim = size.getDefiningOp<tensor::DimOp>()) {
        if (std::optional<int64_t> i = dim.getConstantIndex()) {
          value = dim.getSource();
          d = *i;
          continue;
        }
      }
      return {size, -1};
    }
    return {value, d};
  }
}

/// `inputs` broadcast numpy-style into a linalg.generic of `op`'s result
/// type. A dynamic size facing another size that is not provably the same
/// may be 1 at run time: the result takes the static one or the largest,
/// and an input whose dynamic size is 1 while the result's is not is first
/// copied broadcast to the result's sizes there (scf.if: inputs whose sizes
/// match are read as they are).
Lowered lowerBroadcast(OpBuilder &b, Operation *op, ValueRange inputs,
                       BodyFn body) {
  Emitter e(b, op->getLoc());
  RankedTensorType type = rankedType(op->getResult(0));
  SmallVector<OpFoldResult> sizes = e.broadcastSizes(type.getShape(), inputs);
  int64_t rank = type.getRank();
  // Per input, the result dims it may have to be broadcast along.
  SmallVector<SmallVector<int64_t>> runtime(inputs.size());
  for (int64_t d = 0; d < rank; ++d) {
    if (!type.isDynamicDim(d))
      continue;
    SmallVector<std::pair<size_t, int64_t>> dynamic;
    std::optional<int64_t> fixed;
    for (auto [i, input] : llvm::enumerate(inputs)) {
      RankedTensorType t = rankedType(input);
      int64_t j = d - (rank - t.getRank());
      if (j < 0 || t.getDimSize(j) == 1)
        continue;
      if (t.isDynamicDim(j))
        dynamic.push_back({i, j});
      else
        fixed = t.getDimSize(j);
    }
    if (dynamic.empty() || (dynamic.size() == 1 && !fixed))
      continue;
    std::pair<Value, int64_t> origin =
        sizeOrigin(inputs[dynamic[0].first], dynamic[0].second);
    if (!fixed && llvm::all_of(dynamic, [&](auto in) {
          return sizeOrigin(inputs[in.first], in.second) == origin;
        }))
      continue;
    Value size = fixed ? e.index(*fixed) : Value();
    for (auto [i, j] : dynamic) {
      runtime[i].push_back(d);
      Value n = e.dim(inputs[i], j);
      size = size ? (fixed ? size : e.maxSI(size, n)) : n;
    }
    sizes[d] = size;
  }
  SmallVector<Value> operands(inputs);
  for (auto [i, input] : llvm::enumerate(inputs)) {
    if (runtime[i].empty())
      continue;
    RankedTensorType t = rankedType(input);
    int64_t offset = rank - t.getRank();
    SmallVector<OpFoldResult> wide = e.sizes(input);
    Value differs = e.scalar(b.getI1Type(), 0);
    for (int64_t d : runtime[i]) {
      Value own = e.dim(input, d - offset);
      Value want = getValueOrCreateConstantIndexOp(b, e.loc, sizes[d]);
      wide[d - offset] = want;
      differs = b.createOrFold<arith::OrIOp>(
          e.loc, differs, e.cmp(arith::CmpIPredicate::ne, own, want));
    }
    auto ifOp = scf::IfOp::create(
        b, e.loc, differs,
        [&](OpBuilder &tb, Location l) {
          Emitter te(tb, l);
          Value copy = te.fromIndices(
              wide, t.getElementType(), [&](Emitter &in, ValueRange at) {
                SmallVector<Value> read(at);
                for (int64_t d : runtime[i]) {
                  int64_t j = d - offset;
                  Value own = in.dim(input, j);
                  read[j] = in.select(
                      in.cmp(arith::CmpIPredicate::eq, own, in.index(1)),
                      in.index(0), read[j]);
                }
                return in.extract(input, read);
              });
          if (copy.getType() != t)
            copy = tensor::CastOp::create(tb, l, t, copy);
          scf::YieldOp::create(tb, l, copy);
        },
        [&](OpBuilder &eb, Location l) { scf::YieldOp::create(eb, l, input); });
    operands[i] = ifOp.getResult(0);
  }
  return Values{
      e.broadcastGeneric(sizes, type.getElementType(), operands, body)};
}

Lowered lowerClip(OpBuilder &b, onnx::ClipOp op) {
  Emitter e(b, op.getLoc());
  Type type = elementType(op.getInput());
  Value lo, hi;
  if (!isa<NoneType>(op.getMin().getType()))
    lo = e.extractOnly(op.getMin());
  if (!isa<NoneType>(op.getMax().getType()))
    hi = e.extractOnly(op.getMax());
  auto body = [&](OpBuilder &nb, Location l, ValueRange args) {
    Value x = args[0];
    if (lo)
      x = combine(nb, l, Combine::Max, type, x, lo);
    if (hi)
      x = combine(nb, l, Combine::Min, type, x, hi);
    return x;
  };
  return lowerBroadcast(b, op, op.getInput(), body);
}

} // namespace

std::optional<Lowered>
mlir::moe::onnx_lowering::lowerElementwise(OpBuilder &b, Operation *op) {
  StringRef name = opKind(op);
  Location loc = op->getLoc();
  if (name == "Identity")
    return Lowered(Values{op->getOperand(0)});
  if (auto clip = dyn_cast<onnx::ClipOp>(op))
    return lowerClip(b, clip);
  if (name == "Cast" || name == "CastLike") {
    Type from = elementType(op->getOperand(0)), to = resultElement(op);
    if (from == to)
      return Lowered(Values{op->getOperand(0)});
    return lowerBroadcast(b, op, op->getOperand(0),
                          [&](OpBuilder &nb, Location l, ValueRange args) {
                            return castScalar(nb, l, args[0], from, to);
                          });
  }
  if (name == "Where")
    return lowerBroadcast(b, op, op->getOperands(),
                          [&](OpBuilder &nb, Location l, ValueRange args) {
                            return arith::SelectOp::create(nb, l, args[0],
                                                           args[1], args[2])
                                .getResult();
                          });
  if (name == "Pow") {
    Type xType = elementType(op->getOperand(0));
    Type yType = elementType(op->getOperand(1));
    return lowerBroadcast(b, op, op->getOperands(),
                          [&](OpBuilder &nb, Location l, ValueRange args) {
                            return powBody(nb, l, xType, yType, args[0],
                                           args[1]);
                          });
  }
  bool unary =
      isa<onnx::SqrtOp, onnx::ReciprocalOp, onnx::NegOp, onnx::ExpOp,
          onnx::LogOp, onnx::ErfOp, onnx::TanhOp, onnx::SigmoidOp, onnx::ReluOp,
          onnx::GeluOp, onnx::SinOp, onnx::CosOp, onnx::AbsOp, onnx::SoftplusOp,
          onnx::SignOp, onnx::FloorOp, onnx::CeilOp, onnx::NotOp>(op);
  bool binary = isa<onnx::AddOp, onnx::SubOp, onnx::MulOp, onnx::DivOp,
                    onnx::EqualOp, onnx::GreaterOp, onnx::LessOp,
                    onnx::GreaterOrEqualOp, onnx::LessOrEqualOp, onnx::AndOp,
                    onnx::OrOp, onnx::MinOp, onnx::MaxOp, onnx::SumOp>(op);
  if (!unary && !binary)
    return std::nullopt;
  Type type = elementType(op->getOperand(0));
  if (unary) {
    if (isFloatOnlyUnary(name) && !isa<FloatType>(type))
      return Lowered(nodeError(op)
                     << "is only defined for float tensors, not " << type);
    StringRef gelu;
    if (auto g = dyn_cast<onnx::GeluOp>(op)) {
      gelu = g.getApproximate();
      if (gelu != "none" && gelu != "tanh")
        return Lowered(nodeError(op) << "unsupported approximate = '" << gelu
                                     << "' (none or tanh)");
    }
    return lowerBroadcast(b, op, op->getOperand(0),
                          [&](OpBuilder &nb, Location l, ValueRange args) {
                            return unaryBody(nb, l, name, type, args[0], gelu);
                          });
  }
  if (op->getNumOperands() == 1)
    return Lowered(Values{op->getOperand(0)});
  (void)loc;
  return lowerBroadcast(b, op, op->getOperands(),
                        [&](OpBuilder &nb, Location l, ValueRange args) {
                          Value acc = args[0];
                          for (Value next : args.drop_front())
                            acc = binaryBody(nb, l, name, type, acc, next);
                          return acc;
                        });
}
