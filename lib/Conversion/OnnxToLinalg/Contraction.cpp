//===- Contraction.cpp - MatMul, Gemm and Einsum to linalg ----------------===//
//
// Matrix products become linalg.matmul where the operands are matrices (an
// N-D by 2-D MatMul collapses the leading dimensions of the left operand
// into its rows), linalg.batch_matmul for equal 3-D batches, and otherwise
// a linalg.generic contraction whose indexing maps broadcast the batch
// dimensions and drop the vector dimension of 1-D operands (numpy.matmul).
// Einsum builds one linalg.generic from the equation: every label a loop,
// labels missing from the output reductions, `...` dimensions broadcast.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "llvm/ADT/TypeSwitch.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;
using namespace mlir::moe::onnx_lowering;

namespace {

using Iterator = utils::IteratorType;

/// A zero-filled accumulator of `sizes`.
Value zeros(Emitter &e, ArrayRef<OpFoldResult> sizes, Type type) {
  return e.filled(sizes, type, e.scalar(type, 0));
}

/// acc + product of `factors` (signless scalars of onnx type `type`).
Value multiplyAdd(OpBuilder &b, Location loc, Type type, ValueRange factors,
                  Value acc) {
  Value p = factors.front();
  for (Value f : factors.drop_front())
    p = combine(b, loc, Combine::Mul, type, p, f);
  return combine(b, loc, Combine::Add, type, acc, p);
}

/// A linalg.generic contraction: `inputs` read through `maps` (the last map
/// is the output's), accumulated into `init`.
Value contract(Emitter &e, ValueRange inputs, Value init,
               ArrayRef<AffineMap> maps, ArrayRef<Iterator> iterators) {
  Type type = elementType(init);
  return e
      .generic(inputs, init, maps, iterators,
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 return SmallVector<Value>{
                     multiplyAdd(nb, l, type, args.drop_back(), args.back())};
               })
      .front();
}

Value matmul2D(Emitter &e, Value a, Value b, Value init) {
  return linalg::MatmulOp::create(e.b, e.loc, ValueRange{a, b}, init)
      .getResult(0);
}

Lowered lowerMatMul(OpBuilder &b, onnx::MatMulOp op) {
  Emitter e(b, op.getLoc());
  Value lhs = op.getA(), rhs = op.getB();
  RankedTensorType aType = rankedType(lhs), bType = rankedType(rhs);
  RankedTensorType outType = rankedType(op.getY());
  Type type = outType.getElementType();
  int64_t ra = aType.getRank(), rb = bType.getRank();
  if (ra == 0 || rb == 0)
    return nodeError(op) << "operands must have rank 1 or more";
  // Named ops compute on signless types only.
  bool named = !isUnsignedInt(type);
  if (ra == 2 && rb == 2 && named) {
    Value init = zeros(e, {e.dim(lhs, 0), e.dim(rhs, 1)}, type);
    return Values{matmul2D(e, lhs, rhs, init)};
  }
  if (ra > 2 && rb == 2 && named) {
    // (..., M, K) x (K, N): collapse the rows.
    SmallVector<OpFoldResult> lead = e.sizes(lhs);
    lead.pop_back();
    SmallVector<ReassociationIndices> groups{
        llvm::to_vector(llvm::seq<int64_t>(0, ra - 1)), {ra - 1}};
    Value flat = tensor::CollapseShapeOp::create(b, e.loc, lhs, groups);
    Value init = zeros(e, {e.dim(flat, 0), e.dim(rhs, 1)}, type);
    Value product = matmul2D(e, flat, rhs, init);
    SmallVector<OpFoldResult> out(lead);
    out.push_back(getAsOpFoldResult(e.dim(rhs, 1)));
    return Values{e.expand(product, groups, out)};
  }
  // General numpy.matmul: batch dims broadcast; 1-D operands lose m or n.
  bool vecA = ra == 1, vecB = rb == 1;
  int64_t batchA = vecA ? 0 : ra - 2, batchB = vecB ? 0 : rb - 2;
  int64_t batch = std::max(batchA, batchB);
  SmallVector<OpFoldResult> outSizes =
      e.broadcastSizes(outType.getShape().take_front(batch),
                       ValueRange{lhs, rhs}, {batchA, batchB});
  if (named && !vecA && !vecB && ra == 3 && rb == 3 &&
      aType.getDimSize(0) != 1 && bType.getDimSize(0) != 1) {
    Value init = zeros(e, {outSizes[0], e.dim(lhs, 1), e.dim(rhs, 2)}, type);
    return Values{
        linalg::BatchMatmulOp::create(b, e.loc, ValueRange{lhs, rhs}, init)
            .getResult(0)};
  }
  MLIRContext *ctx = b.getContext();
  // Loops: batch..., [m], [n], k.
  int64_t m = batch, n = batch + (vecA ? 0 : 1), k = n + (vecB ? 0 : 1);
  int64_t loops = k + 1;
  auto dimExpr = [&](int64_t d) { return getAffineDimExpr(d, ctx); };
  auto batchExprs = [&](RankedTensorType t, int64_t nb) {
    SmallVector<AffineExpr> exprs;
    for (int64_t j = 0; j < nb; ++j) {
      int64_t d = j + batch - nb;
      bool broadcast =
          t.getDimSize(j) == 1 && getConstantIntValue(outSizes[d]) != 1;
      exprs.push_back(broadcast ? getAffineConstantExpr(0, ctx) : dimExpr(d));
    }
    return exprs;
  };
  SmallVector<AffineExpr> aExprs = batchExprs(aType, batchA);
  if (!vecA)
    aExprs.push_back(dimExpr(m));
  aExprs.push_back(dimExpr(k));
  SmallVector<AffineExpr> bExprs = batchExprs(bType, batchB);
  bExprs.push_back(dimExpr(k));
  if (!vecB)
    bExprs.push_back(dimExpr(n));
  SmallVector<AffineExpr> outExprs;
  for (int64_t d = 0; d < k; ++d)
    outExprs.push_back(dimExpr(d));
  if (!vecA)
    outSizes.push_back(e.dim(lhs, ra - 2));
  if (!vecB)
    outSizes.push_back(e.dim(rhs, rb - 1));
  SmallVector<AffineMap> maps{AffineMap::get(loops, 0, aExprs, ctx),
                              AffineMap::get(loops, 0, bExprs, ctx),
                              AffineMap::get(loops, 0, outExprs, ctx)};
  SmallVector<Iterator> iterators(k, Iterator::parallel);
  iterators.push_back(Iterator::reduction);
  return Values{contract(e, ValueRange{lhs, rhs}, zeros(e, outSizes, type),
                         maps, iterators)};
}

Lowered lowerGemm(OpBuilder &b, onnx::GemmOp op) {
  Emitter e(b, op.getLoc());
  Value lhs = op.getA(), rhs = op.getB();
  if (rankOf(lhs) != 2 || rankOf(rhs) != 2)
    return nodeError(op) << "A and B must be matrices";
  bool transA = op.getTransA() != 0, transB = op.getTransB() != 0;
  double alpha = op.getAlpha().convertToDouble();
  double beta = op.getBeta().convertToDouble();
  RankedTensorType outType = rankedType(op.getY());
  Type type = outType.getElementType();
  SmallVector<OpFoldResult> sizes{e.dim(lhs, transA ? 1 : 0),
                                  e.dim(rhs, transB ? 0 : 1)};
  bool hasC = !isa<NoneType>(op.getC().getType()) && beta != 0;
  Value c = hasC ? op.getC() : Value();
  if (c && rankOf(c) > 2)
    return nodeError(op) << "C must have rank 2 or less";
  // Start from beta * C when no scaling of the product is needed.
  Value init;
  bool cInInit = c && alpha == 1;
  if (cInInit)
    init = e.broadcastGeneric(
        sizes, type, c, [&](OpBuilder &nb, Location l, ValueRange args) {
          if (beta == 1)
            return args[0];
          Value s = Emitter(nb, l).scalar(type, beta);
          return combine(nb, l, Combine::Mul, type, args[0], s);
        });
  else
    init = zeros(e, sizes, type);
  Value product;
  if (!transA && !transB && !isUnsignedInt(type)) {
    product = matmul2D(e, lhs, rhs, init);
  } else {
    MLIRContext *ctx = b.getContext();
    AffineExpr m = getAffineDimExpr(0, ctx), n = getAffineDimExpr(1, ctx),
               k = getAffineDimExpr(2, ctx);
    SmallVector<AffineMap> maps{
        AffineMap::get(3, 0,
                       transA ? SmallVector<AffineExpr>{k, m}
                              : SmallVector<AffineExpr>{m, k},
                       ctx),
        AffineMap::get(3, 0,
                       transB ? SmallVector<AffineExpr>{n, k}
                              : SmallVector<AffineExpr>{k, n},
                       ctx),
        AffineMap::get(3, 0, {m, n}, ctx)};
    product =
        contract(e, ValueRange{lhs, rhs}, init, maps,
                 {Iterator::parallel, Iterator::parallel, Iterator::reduction});
  }
  if (cInInit || (alpha == 1 && !c))
    return Values{product};
  SmallVector<Value> inputs{product};
  if (c)
    inputs.push_back(c);
  return Values{e.broadcastGeneric(
      e.sizes(product), type, inputs,
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Emitter in(nb, l);
        Value r =
            combine(nb, l, Combine::Mul, type, args[0], in.scalar(type, alpha));
        if (args.size() > 1)
          r = combine(nb, l, Combine::Add, type, r,
                      combine(nb, l, Combine::Mul, type, args[1],
                              in.scalar(type, beta)));
        return r;
      })};
}

/// One term of an einsum equation: labels, with '.' standing for the
/// ellipsis (at most one).
struct Term {
  std::string labels;
  int64_t ellipsis() const {
    size_t at = labels.find('.');
    return at == std::string::npos ? -1 : static_cast<int64_t>(at);
  }
};

/// Parses `equation` into input terms and the output term; an error
/// message on failure.
FailureOr<std::pair<SmallVector<Term>, Term>> parseEquation(StringRef equation,
                                                            std::string &why) {
  std::string text;
  for (char c : equation)
    if (c != ' ')
      text.push_back(c);
  auto normalise = [&](StringRef raw, Term &term) -> bool {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '.') {
        if (raw.substr(i, 3) != "..." || out.find('.') != std::string::npos) {
          why = "malformed ellipsis";
          return false;
        }
        out.push_back('.');
        i += 2;
      } else if (std::isalpha(static_cast<unsigned char>(c))) {
        out.push_back(c);
      } else {
        why = std::string("unexpected character '") + c + "'";
        return false;
      }
    }
    term.labels = out;
    return true;
  };
  StringRef all(text);
  auto [lhs, rhs] = all.split("->");
  bool explicitOutput = all.contains("->");
  SmallVector<StringRef> parts;
  lhs.split(parts, ',');
  SmallVector<Term> inputs;
  for (StringRef part : parts) {
    Term term;
    if (!normalise(part, term))
      return failure();
    inputs.push_back(term);
  }
  Term output;
  if (explicitOutput) {
    if (!normalise(rhs, output))
      return failure();
  } else {
    // numpy: the ellipsis, then the labels seen once, alphabetically.
    std::map<char, int> counts;
    bool ellipsis = false;
    for (const Term &t : inputs)
      for (char c : t.labels) {
        if (c == '.')
          ellipsis = true;
        else
          ++counts[c];
      }
    if (ellipsis)
      output.labels.push_back('.');
    for (auto [c, count] : counts)
      if (count == 1)
        output.labels.push_back(c);
  }
  for (char c : output.labels)
    if (c != '.' && llvm::none_of(inputs, [&](const Term &t) {
          return t.labels.find(c) != std::string::npos;
        })) {
      why = std::string("output label '") + c + "' is in no input";
      return failure();
    }
  return std::pair{inputs, output};
}

Lowered lowerEinsum(OpBuilder &b, onnx::EinsumOp op) {
  Emitter e(b, op.getLoc());
  std::string why;
  auto parsed = parseEquation(op.getEquation(), why);
  auto fail = [&](const Twine &reason) {
    return nodeError(op) << "unsupported einsum equation '" << op.getEquation()
                         << "': " << reason;
  };
  if (failed(parsed))
    return fail(why);
  auto &[terms, output] = *parsed;
  ValueRange operands = op.getInputs();
  if (terms.size() != operands.size())
    return fail("it has " + Twine(terms.size()) + " inputs, the node " +
                Twine(operands.size()));
  // The ellipsis dims of each input and their broadcast sizes.
  int64_t ellipsisRank = 0;
  for (auto [term, operand] : llvm::zip(terms, operands)) {
    int64_t named = static_cast<int64_t>(term.labels.size()) -
                    (term.ellipsis() >= 0 ? 1 : 0);
    int64_t extra = rankOf(operand) - named;
    if (extra < 0 || (term.ellipsis() < 0 && extra != 0))
      return fail("term '" + term.labels + "' does not match rank " +
                  Twine(rankOf(operand)));
    ellipsisRank = std::max(ellipsisRank, extra);
  }
  // Loops: the output's dims in order, then the summed labels (and the
  // ellipsis dims when the output drops them).
  SmallVector<std::string> loopLabels; // "." + index for ellipsis dims
  auto ellipsisLabel = [](int64_t i) { return "." + std::to_string(i); };
  for (char c : output.labels) {
    if (c == '.')
      for (int64_t i = 0; i < ellipsisRank; ++i)
        loopLabels.push_back(ellipsisLabel(i));
    else
      loopLabels.push_back(std::string(1, c));
  }
  int64_t outRank = static_cast<int64_t>(loopLabels.size());
  if (output.ellipsis() < 0)
    for (int64_t i = 0; i < ellipsisRank; ++i)
      loopLabels.push_back(ellipsisLabel(i));
  for (const Term &t : terms)
    for (char c : t.labels)
      if (c != '.' && !llvm::is_contained(loopLabels, std::string(1, c)))
        loopLabels.push_back(std::string(1, c));
  llvm::StringMap<int64_t> loopOf;
  for (auto [i, l] : llvm::enumerate(loopLabels))
    loopOf[l] = static_cast<int64_t>(i);
  int64_t loops = static_cast<int64_t>(loopLabels.size());
  // Sizes of the loops: a static size wins; ellipsis dims broadcast.
  SmallVector<OpFoldResult> loopSizes(loops, b.getIndexAttr(1));
  SmallVector<bool> known(loops, false);
  auto dimsOf = [&](const Term &term, Value operand) {
    // (loop label, operand dim) pairs.
    SmallVector<std::pair<std::string, int64_t>> dims;
    int64_t extra =
        rankOf(operand) - (static_cast<int64_t>(term.labels.size()) -
                           (term.ellipsis() >= 0 ? 1 : 0));
    int64_t d = 0;
    for (char c : term.labels) {
      if (c == '.') {
        for (int64_t i = 0; i < extra; ++i)
          dims.push_back({ellipsisLabel(ellipsisRank - extra + i), d++});
      } else {
        dims.push_back({std::string(1, c), d++});
      }
    }
    return dims;
  };
  for (auto [term, operand] : llvm::zip(terms, operands)) {
    RankedTensorType t = rankedType(operand);
    for (auto [label, d] : dimsOf(term, operand)) {
      int64_t l = loopOf[label];
      if (t.getDimSize(d) == 1 && label[0] == '.')
        continue;
      if (!t.isDynamicDim(d)) {
        loopSizes[l] = b.getIndexAttr(t.getDimSize(d));
        known[l] = true;
      } else if (!known[l]) {
        loopSizes[l] = e.dim(operand, d);
        known[l] = true;
      }
    }
  }
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineMap> maps;
  for (auto [term, operand] : llvm::zip(terms, operands)) {
    RankedTensorType t = rankedType(operand);
    SmallVector<AffineExpr> exprs;
    for (auto [label, d] : dimsOf(term, operand)) {
      int64_t l = loopOf[label];
      bool broadcast = label[0] == '.' && t.getDimSize(d) == 1 &&
                       getConstantIntValue(loopSizes[l]) != 1;
      exprs.push_back(broadcast ? getAffineConstantExpr(0, ctx)
                                : getAffineDimExpr(l, ctx));
    }
    maps.push_back(AffineMap::get(loops, 0, exprs, ctx));
  }
  SmallVector<AffineExpr> outExprs;
  for (int64_t l = 0; l < outRank; ++l)
    outExprs.push_back(getAffineDimExpr(l, ctx));
  maps.push_back(AffineMap::get(loops, 0, outExprs, ctx));
  SmallVector<Iterator> iterators;
  for (int64_t l = 0; l < loops; ++l)
    iterators.push_back(l < outRank ? Iterator::parallel : Iterator::reduction);
  Type type = elementType(op.getOutput());
  SmallVector<OpFoldResult> outSizes(loopSizes.begin(),
                                     loopSizes.begin() + outRank);
  return Values{
      contract(e, operands, zeros(e, outSizes, type), maps, iterators)};
}

} // namespace

std::optional<Lowered>
mlir::moe::onnx_lowering::lowerContraction(OpBuilder &b, Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<Lowered>>(op)
      .Case([&](onnx::MatMulOp o) { return lowerMatMul(b, o); })
      .Case([&](onnx::GemmOp o) { return lowerGemm(b, o); })
      .Case([&](onnx::EinsumOp o) { return lowerEinsum(b, o); })
      .Default(std::optional<Lowered>());
}
