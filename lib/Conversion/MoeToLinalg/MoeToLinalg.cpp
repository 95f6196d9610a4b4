//===- MoeToLinalg.cpp - The convert-moe-to-linalg pass -------------------===//
//
// Both layer ops lower through one clustered model: a moe.layer is the
// clustered layer whose every expert is its own cluster with rank 0 and
// its weights as bases. Per layer:
//   1. routing: logits = x W_r^T (+ b), then per token top-k, scores and
//      normalisation in scalar loops (O(T E k), negligible);
//   2. dispatch: per cluster the distinct tokens that chose one of its
//      experts, per expert its rows within its cluster's list; counts,
//      exclusive offsets and row lists, no capacity, nothing dropped;
//   3. per cluster with tokens: gather its rows once, base products of
//      gate and up once per (token, cluster); per member expert with
//      tokens: its rows of those, plus the residual U^T (V x), activation,
//      down projection (base + residual), weighted scatter-add into y.
// Quantised weights are read in their storage form inside the products.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Conversion/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/AffineMap.h"

#include <functional>

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTMOETOLINALGPASS
#include "moe-mlir/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

// Tile of a product handed to one thread: rows of tokens by outputs.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileOut = 64;
/// Outputs per task of the axpy kernel: 8 of its blocks, so that a decode
/// step's U^T h (2816 outputs in the medium layer) is 11 tasks, not one.
constexpr int64_t kAxpyTileOut = 256;
/// Outputs per task of products with at most kTileOut / 2 outputs (the
/// rank-16 V factors), so that a decode step's V x is more than one task.
constexpr int64_t kNarrowTileOut = 8;

/// A weight operand seen through moe.quantized_weight.
struct WeightView {
  Value data, scales, zeroPoints;
  QuantAttr quant; // null: plain float data of the logical type
  RankedTensorType logical;
};

WeightView viewOf(Value w) {
  WeightView v;
  v.logical = cast<RankedTensorType>(w.getType());
  v.quant = dyn_cast_or_null<QuantAttr>(v.logical.getEncoding());
  if (auto q = w.getDefiningOp<QuantizedWeightOp>()) {
    v.data = q.getData();
    v.scales = q.getScales();
    v.zeroPoints = q.getZeroPoints();
  } else {
    v.data = w;
  }
  return v;
}

/// The layer in clustered terms.
struct Model {
  Location loc;
  Value tokens, routerW, routerB;
  Value selectionBias; // (E,) added to the scores to select; may be null
  RoutingAttr routing;
  ActivationAttr activation;
  ClusterRoutingAttr clusterRouting; // null: exact
  int64_t experts, clusters, hidden, inter, topK;
  SmallVector<int64_t> assignment;
  SmallVector<bool> absent;
  bool glu;
  // Per kind (0 gate, 1 up, 2 down): bases (G, out, in), factors, ranks.
  std::optional<WeightView> base[3], u[3], v[3];
  SmallVector<int64_t> ranks[3];
  Value bias[3];
  /// Every cluster one expert, every rank 0: a plain moe.layer.
  bool plain;
};

/// The fields both layer ops share; experts are their own clusters until
/// the caller says otherwise.
template <typename OpTy> Model commonModel(OpTy op) {
  Model m{op.getLoc()};
  m.tokens = op.getTokens();
  m.routerW = op.getRouterWeight();
  m.routerB = op.getRouterBias();
  m.selectionBias = op.getSelectionBias();
  m.routing = op.getRouting();
  m.activation = op.getActivation();
  m.experts = op.getNumExperts();
  m.clusters = m.experts;
  m.hidden = op.getHiddenSize();
  m.topK = m.routing.getTopK();
  m.absent.assign(m.experts, false);
  if (auto a = op.getAbsentAttr())
    m.absent.assign(a.asArrayRef().begin(), a.asArrayRef().end());
  Value biases[3] = {op.getGateBias(), op.getUpBias(), op.getDownBias()};
  for (int k = 0; k < 3; ++k) {
    m.ranks[k].assign(m.experts, 0);
    m.bias[k] = biases[k];
  }
  return m;
}

Model modelOf(LayerOp op) {
  Model m = commonModel(op);
  m.inter = op.getInterSize();
  for (int64_t e = 0; e < m.experts; ++e)
    m.assignment.push_back(e);
  m.glu = op.isGlu();
  Value weights[3] = {op.getGateWeight(), op.getUpWeight(), op.getDownWeight()};
  for (int k = 0; k < 3; ++k)
    if (weights[k])
      m.base[k] = viewOf(weights[k]);
  m.plain = true;
  return m;
}

Model modelOf(ClusteredLayerOp op) {
  Model m = commonModel(op);
  m.clusterRouting = op.getClusterRouting();
  m.assignment.assign(op.getAssignment().begin(), op.getAssignment().end());
  m.clusters = *llvm::max_element(m.assignment) + 1;
  m.inter = op.getInterSize();
  m.glu = static_cast<bool>(op.getGateBase());
  Value bases[3] = {op.getGateBase(), op.getUpBase(), op.getDownBase()};
  Value us[3] = {op.getGateU(), op.getUpU(), op.getDownU()};
  Value vs[3] = {op.getGateV(), op.getUpV(), op.getDownV()};
  std::optional<ArrayRef<int64_t>> ranks[3] = {
      op.getGateRanks(), op.getUpRanks(), op.getDownRanks()};
  for (int k = 0; k < 3; ++k) {
    if (bases[k]) {
      m.base[k] = viewOf(bases[k]);
      m.u[k] = viewOf(us[k]);
      m.v[k] = viewOf(vs[k]);
    }
    if (ranks[k])
      m.ranks[k].assign(ranks[k]->begin(), ranks[k]->end());
  }
  m.plain = false;
  return m;
}

class Lowering {
public:
  Lowering(OpBuilder &b, const Model &m, int64_t layerIndex,
           func::FuncOp routingHook, func::FuncOp tokensHook)
      : b(b), m(m), loc(m.loc), layerIndex(layerIndex),
        routingHook(routingHook), tokensHook(tokensHook) {
    f32 = b.getF32Type();
    i64 = b.getI64Type();
    idx = b.getIndexType();
  }

  FailureOr<Value> run();

private:
  // Small builders.
  Value cIndex(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value cI64(int64_t v) { return arith::ConstantIntOp::create(b, loc, i64, v); }
  Value cF32(double v) {
    return arith::ConstantFloatOp::create(b, loc, cast<FloatType>(f32),
                                          APFloat(float(v)));
  }
  Value toIndex(Value v) { return arith::IndexCastOp::create(b, loc, idx, v); }
  Value toI64(Value v) { return arith::IndexCastOp::create(b, loc, i64, v); }
  Value toF32(Value v) {
    return v.getType() == f32 ? v : arith::ExtFOp::create(b, loc, f32, v);
  }
  /// A float or unsigned-integer scalar or vector (scales, zero points) as
  /// f32 of the same shape.
  Value widenToF32(Value v) {
    Type type = v.getType();
    auto like = [&](Type e) -> Type {
      if (auto vec = dyn_cast<VectorType>(type))
        return VectorType::get(vec.getShape(), e);
      return e;
    };
    Type e = getElementTypeOrSelf(type);
    if (e.isF32())
      return v;
    if (isa<FloatType>(e))
      return arith::ExtFOp::create(b, loc, like(f32), v);
    return arith::UIToFPOp::create(
        b, loc, like(f32),
        arith::ExtUIOp::create(b, loc, like(b.getI32Type()), v));
  }
  Value extract(Value t, ValueRange at) {
    return tensor::ExtractOp::create(b, loc, t, at);
  }
  Value insert(Value v, Value t, ValueRange at) {
    return tensor::InsertOp::create(b, loc, v, t, at);
  }
  Value filled(ArrayRef<OpFoldResult> sizes, Type type, Value value) {
    Value empty = tensor::EmptyOp::create(b, loc, sizes, type);
    return linalg::FillOp::create(b, loc, ValueRange{value}, ValueRange{empty})
        .getResult(0);
  }
  /// Rows [off, off + len) of `t` (its first axis), whole along the others;
  /// null stays null.
  Value sliceRows(Value t, OpFoldResult off, OpFoldResult len) {
    if (!t)
      return t;
    auto type = cast<RankedTensorType>(t.getType());
    SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
    SmallVector<OpFoldResult> sizes, strides(type.getRank(), b.getIndexAttr(1));
    for (int64_t d = 0; d < type.getRank(); ++d)
      sizes.push_back(tensor::getMixedSize(b, loc, t, d));
    offsets[0] = off;
    sizes[0] = len;
    return tensor::ExtractSliceOp::create(b, loc, t, offsets, sizes, strides);
  }
  /// Rows [r0, r0 + rs) by columns [c0, c0 + cs) of a 2-D `t`.
  Value sliceTile(Value t, Value r0, Value rs, Value c0, Value cs) {
    OpFoldResult offsets[] = {r0, c0}, sizes[] = {rs, cs},
                 ones[] = {b.getIndexAttr(1), b.getIndexAttr(1)};
    return tensor::ExtractSliceOp::create(b, loc, t, offsets, sizes, ones);
  }
  /// from, from + 1, ..., from + count - 1, each at most `last`: a block of
  /// outputs whose tail past the end repeats the last one.
  SmallVector<Value> clampedRange(Value from, int64_t count, Value last) {
    SmallVector<Value> out;
    for (int64_t j = 0; j < count; ++j)
      out.push_back(arith::MinUIOp::create(
          b, loc, arith::AddIOp::create(b, loc, from, cIndex(j)), last));
    return out;
  }
  Value constI64Table(ArrayRef<int64_t> values) {
    auto type = RankedTensorType::get({(int64_t)values.size()}, i64);
    return arith::ConstantOp::create(b, loc,
                                     DenseElementsAttr::get(type, values));
  }

  Value routerLogits();
  bool hierarchical() const {
    return m.clusterRouting &&
           m.clusterRouting.getMode() == ClusterRoutingMode::hierarchical;
  }
  SmallVector<Value> keepClusters(Value logits, Value t);
  /// hook(layer, data of `t` (rows x cols, row-major), rows, cols).
  void callHook(func::FuncOp hook, Value t, int64_t cols) {
    auto type = cast<RankedTensorType>(t.getType());
    Value buffer = bufferization::ToBufferOp::create(
        b, loc, MemRefType::get(type.getShape(), type.getElementType()), t,
        /*read_only=*/true);
    Value ptr = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer);
    func::CallOp::create(b, loc, hook,
                         ValueRange{cI64(layerIndex), toI64(ptr),
                                    toI64(tokenCount), cI64(cols)});
  }
  void routeTokens(Value logits, Value &selected, Value &weights);
  void topKeys(int64_t count, function_ref<Value(Value)> key,
               const std::function<Value(Value)> &allowed,
               SmallVector<Value> &picked, SmallVector<Value> &pickedKey);
  void routeKeyed(function_ref<Value(Value)> logit, SmallVector<Value> &picked,
                  SmallVector<Value> &w);
  void routeSparsemixer(function_ref<Value(Value)> logit,
                        const std::function<Value(Value)> &allowed,
                        SmallVector<Value> &picked, SmallVector<Value> &w);
  SmallVector<Value> bestOf(ArrayRef<Value> score, int64_t count);
  Value scaleRows(Value part, Value list, Value offset);
  /// `maxOuts`: a bound on the outputs when they are only known at run time
  /// (an expert's rank).
  Value product(Value x, const WeightView &w, Value index, Value rowOffset,
                Value rowCount, bool reduceCols, Value init,
                int64_t maxOuts = ShapedType::kDynamic);
  Value productTile(Value x, const WeightView &w, Value data, Value scales,
                    Value zps, bool reduceCols, Value init);
  bool vectorizable(const WeightView &w) const;
  Value productTileVector(Value x, const WeightView &w, Value data,
                          Value scales, Value zps, Value init);
  Value productPanels(Value x, const WeightView &w, Value data, Value scales,
                      Value zps, Value init, Value full);
  bool rowsQuantized(const WeightView &w) const;
  /// Inputs per quantisation group along a row of W (stored (out, in),
  /// `in` static): the whole row without groups, and a group longer than
  /// the row is the row.
  static int64_t rowGroup(const WeightView &w) {
    int64_t in = w.logical.getShape().back();
    int64_t group = w.quant ? w.quant.getGroupSize() : 0;
    return group ? std::min(group, in) : in;
  }
  /// `t` as a read-only buffer of any strides (no copy), for prefetches.
  Value readOnlyBuffer(Value t) {
    auto type = cast<RankedTensorType>(t.getType());
    auto layout = StridedLayoutAttr::get(
        b.getContext(), ShapedType::kDynamic,
        SmallVector<int64_t>(type.getRank(), ShapedType::kDynamic));
    return bufferization::ToBufferOp::create(
        b, loc, MemRefType::get(type.getShape(), type.getElementType(), layout),
        t,
        /*read_only=*/true);
  }
  /// Prefetches column `col` of the rows one block after `outIdx` (clamped
  /// to `last`): single-row kernels on narrow storage issue too many
  /// instructions per cache line for the out-of-order window alone to keep
  /// enough lines in flight (quantise-only decode of the medium layer 1.4-1.6
  /// -> 0.9-1.2 ms).
  void prefetchNextRows(Value buffer, ArrayRef<Value> outIdx, Value last,
                        Value col) {
    int64_t block = outIdx.size();
    for (Value row : outIdx) {
      Value ahead = arith::MinUIOp::create(
          b, loc, arith::AddIOp::create(b, loc, row, cIndex(block)), last);
      memref::PrefetchOp::create(b, loc, buffer, ValueRange{ahead, col},
                                 /*isWrite=*/false, /*localityHint=*/3,
                                 /*isDataCache=*/true);
    }
  }
  Value productRowsQuantized(Value x, const WeightView &w, Value data,
                             Value scales, Value zps, Value init, Value from);
  Value productAxpyVector(Value x, const WeightView &w, Value data,
                          Value scales, Value zps, Value init, Value colOffset);
  /// `factors`, when given: the group's (scale, offset) of codes, computed
  /// on the first call and reused by later calls in the same group.
  Value loadWeightVector(const WeightView &w, Value data, Value scales,
                         Value zps, Value row, Value k,
                         std::pair<Value, Value> *factors = nullptr);
  Value loadCodes(const WeightView &w, Value data, Value row, Value k);
  std::pair<Value, Value> groupScalars(const WeightView &w, Value scales,
                                       Value zps, Value row, Value group);
  std::pair<Value, Value> groupFactors(const WeightView &w, Value scales,
                                       Value zps, Value row, Value group);
  Value biasInit(Value biasStack, Value expert, Value rows, int64_t width);
  Value addBias(Value acc, Value biasStack, Value expert);
  Value activate(Value g, Value u);
  Value activateRows(Value g, Value u);
  Value gatherRows(Value source, Value rows, Value offset, Value count);
  Value gatherRowsSerial(Value source, Value list, Value offset, Value count,
                         Value c0, Value cs);
  Value byRowTiles(Value rows, int64_t width,
                   function_ref<Value(Value, Value, Value, Value)> tile);
  Value scatterAddRows(Value dst, Value src, Value list, Value offset,
                       Value count, Value weights);

  OpBuilder &b;
  const Model &m;
  Location loc;
  int64_t layerIndex;
  func::FuncOp routingHook, tokensHook;
  Type f32, i64, idx;
  Value tokenCount;
  Value assignTable;
};

Value Lowering::routerLogits() {
  // logits[t, e] = sum_h x[t, h] W[e, h] (+ b[e])
  OpFoldResult sizes[] = {tokenCount, b.getIndexAttr(m.experts)};
  Value init;
  if (m.routerB) {
    Value empty = tensor::EmptyOp::create(b, loc, sizes, f32);
    MLIRContext *ctx = b.getContext();
    AffineMap maps[] = {AffineMap::get(2, 0, {getAffineDimExpr(1, ctx)}, ctx),
                        AffineMap::getMultiDimIdentityMap(2, ctx)};
    init = linalg::GenericOp::create(
               b, loc, TypeRange{empty.getType()}, ValueRange{m.routerB},
               ValueRange{empty}, maps,
               {utils::IteratorType::parallel, utils::IteratorType::parallel},
               [](OpBuilder &nb, Location nl, ValueRange args) {
                 linalg::YieldOp::create(nb, nl, args[0]);
               })
               .getResult(0);
  } else {
    init = filled(sizes, f32, cF32(0.0));
  }
  WeightView router{
      m.routerW, {}, {}, {}, cast<RankedTensorType>(m.routerW.getType())};
  return product(m.tokens, router, Value(), Value(), Value(),
                 /*reduceCols=*/true, init);
}

void Lowering::topKeys(int64_t count, function_ref<Value(Value)> key,
                       const std::function<Value(Value)> &allowed,
                       SmallVector<Value> &picked,
                       SmallVector<Value> &pickedKey) {
  Value zero = cIndex(0), one = cIndex(1);
  Value numE = cIndex(m.experts);
  Value prevVal = cF32(std::numeric_limits<float>::infinity());
  Value prevIdx = cIndex(-1);
  Value negInf = cF32(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < count; ++j) {
    auto scan = scf::ForOp::create(
        b, loc, zero, numE, one, ValueRange{negInf, cIndex(-1)},
        [&](OpBuilder &sb, Location sl, Value e, ValueRange best) {
          OpBuilder::InsertionGuard g2(b);
          b.setInsertionPointToEnd(sb.getInsertionBlock());
          Value z = key(e);
          Value below = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT,
                                              z, prevVal);
          Value tie = arith::AndIOp::create(
              b, loc,
              arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, z,
                                    prevVal),
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, e,
                                    prevIdx));
          Value candidate = arith::OrIOp::create(b, loc, below, tie);
          if (allowed)
            candidate = arith::AndIOp::create(b, loc, candidate, allowed(e));
          Value none = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                             best[1], cIndex(0));
          Value larger = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OGT, z, best[0]);
          Value take = arith::AndIOp::create(
              b, loc, candidate, arith::OrIOp::create(b, loc, none, larger));
          Value v = arith::SelectOp::create(b, loc, take, z, best[0]);
          Value i = arith::SelectOp::create(b, loc, take, e, best[1]);
          scf::YieldOp::create(b, loc, ValueRange{v, i});
        });
    prevVal = scan.getResult(0);
    prevIdx = scan.getResult(1);
    picked.push_back(prevIdx);
    pickedKey.push_back(prevVal);
  }
}

void Lowering::routeKeyed(function_ref<Value(Value)> logit,
                          SmallVector<Value> &picked, SmallVector<Value> &w) {
  Value zero = cIndex(0), one = cIndex(1);
  Value numE = cIndex(m.experts);
  Value negInf = cF32(-std::numeric_limits<float>::infinity());
  bool softmax = m.routing.getScoring() == Scoring::softmax;
  // Softmax over all experts: the largest logit and the sum of exps.
  Value maxZ, sum;
  if (softmax) {
    maxZ = scf::ForOp::create(
               b, loc, zero, numE, one, ValueRange{negInf},
               [&](OpBuilder &sb, Location, Value e, ValueRange acc) {
                 OpBuilder::InsertionGuard g2(b);
                 b.setInsertionPointToEnd(sb.getInsertionBlock());
                 scf::YieldOp::create(b, loc,
                                      ValueRange{arith::MaximumFOp::create(
                                          b, loc, acc[0], logit(e))});
               })
               .getResult(0);
    sum = scf::ForOp::create(
              b, loc, zero, numE, one, ValueRange{cF32(0.0)},
              [&](OpBuilder &sb, Location, Value e, ValueRange acc) {
                OpBuilder::InsertionGuard g2(b);
                b.setInsertionPointToEnd(sb.getInsertionBlock());
                Value ez = math::ExpOp::create(
                    b, loc, arith::SubFOp::create(b, loc, logit(e), maxZ));
                scf::YieldOp::create(
                    b, loc,
                    ValueRange{arith::AddFOp::create(b, loc, acc[0], ez)});
              })
              .getResult(0);
  }
  // s[e], the weight of a pick; c[e] = s[e] + bias[e], its selection key.
  auto score = [&](Value e) -> Value {
    Value z = logit(e);
    if (softmax)
      return arith::DivFOp::create(
          b, loc,
          math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, z, maxZ)),
          sum);
    Value denom = arith::AddFOp::create(
        b, loc, cF32(1.0),
        math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, z)));
    return arith::DivFOp::create(b, loc, cF32(1.0), denom);
  };
  auto key = [&](Value e) -> Value {
    Value s = score(e);
    if (!m.selectionBias)
      return s;
    return arith::AddFOp::create(b, loc, s,
                                 toF32(extract(m.selectionBias, {e})));
  };
  // Group-limited: a group's score is the sum of its two largest keys;
  // the groups_kept best groups' experts may be picked. Unrolled over the
  // groups, a loop over each group's members.
  std::function<Value(Value)> inKeptGroups;
  int64_t groups = m.routing.getGroups();
  if (groups > 1) {
    int64_t n = m.experts / groups;
    SmallVector<Value> groupScore;
    for (int64_t g = 0; g < groups; ++g) {
      auto top2 = scf::ForOp::create(
          b, loc, cIndex(g * n), cIndex((g + 1) * n), one,
          ValueRange{negInf, negInf},
          [&](OpBuilder &sb, Location, Value e, ValueRange acc) {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPointToEnd(sb.getInsertionBlock());
            Value c = key(e);
            Value above = arith::CmpFOp::create(
                b, loc, arith::CmpFPredicate::OGT, c, acc[0]);
            Value first = arith::SelectOp::create(b, loc, above, c, acc[0]);
            Value second = arith::SelectOp::create(
                b, loc, above, acc[0],
                arith::MaximumFOp::create(b, loc, acc[1], c));
            scf::YieldOp::create(b, loc, ValueRange{first, second});
          });
      groupScore.push_back(
          arith::AddFOp::create(b, loc, top2.getResult(0), top2.getResult(1)));
    }
    SmallVector<Value> kept = bestOf(groupScore, m.routing.getGroupsKept());
    inKeptGroups = [this, kept, n](Value e) -> Value {
      Value g = arith::DivUIOp::create(b, loc, e, cIndex(n));
      Value any = arith::ConstantIntOp::create(b, loc, 0, 1);
      for (Value k : kept)
        any = arith::OrIOp::create(
            b, loc, any,
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, g, k));
      return any;
    };
  }
  SmallVector<Value> keys;
  topKeys(m.topK, key, inKeptGroups, picked, keys);
  for (Value e : picked)
    w.push_back(score(e));
}

void Lowering::routeSparsemixer(function_ref<Value(Value)> logit,
                                const std::function<Value(Value)> &allowed,
                                SmallVector<Value> &picked,
                                SmallVector<Value> &w) {
  Value zero = cIndex(0), one = cIndex(1);
  Value numE = cIndex(m.experts);
  Value negInf = cF32(-std::numeric_limits<float>::infinity());
  Value bound = cF32(2.0 * m.routing.getMixerEpsilon().convertToDouble());
  // Experts outside the kept clusters (hierarchical) count as -inf.
  auto z = [&](Value e) -> Value {
    Value v = logit(e);
    if (allowed)
      v = arith::SelectOp::create(b, loc, allowed(e), v, negInf);
    return v;
  };
  Value first; // the first pick, left out of the second round
  for (int64_t j = 0; j < 2; ++j) {
    // Argmax, the first index on ties.
    auto scan = scf::ForOp::create(
        b, loc, zero, numE, one, ValueRange{negInf, cIndex(-1)},
        [&](OpBuilder &sb, Location, Value e, ValueRange best) {
          OpBuilder::InsertionGuard g2(b);
          b.setInsertionPointToEnd(sb.getInsertionBlock());
          Value v = z(e);
          Value none = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                             best[1], cIndex(0));
          Value larger = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OGT, v, best[0]);
          Value take = arith::OrIOp::create(b, loc, none, larger);
          if (first)
            take = arith::AndIOp::create(
                b, loc, take,
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, e,
                                      first));
          scf::YieldOp::create(
              b, loc,
              ValueRange{arith::SelectOp::create(b, loc, take, v, best[0]),
                         arith::SelectOp::create(b, loc, take, e, best[1])});
        });
    Value top = scan.getResult(0), pick = scan.getResult(1);
    // Softmax over the logits within relative distance 2 eps of the top:
    // masked where (top - z) / max(|z|, top) > 2 eps (NaN: kept).
    auto total = scf::ForOp::create(
        b, loc, zero, numE, one, ValueRange{cF32(0.0)},
        [&](OpBuilder &sb, Location, Value e, ValueRange acc) {
          OpBuilder::InsertionGuard g2(b);
          b.setInsertionPointToEnd(sb.getInsertionBlock());
          Value v = z(e);
          Value factor = arith::MaximumFOp::create(
              b, loc, math::AbsFOp::create(b, loc, v), top);
          Value rel = arith::DivFOp::create(
              b, loc, arith::SubFOp::create(b, loc, top, v), factor);
          Value masked = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OGT, rel, bound);
          if (first)
            masked = arith::OrIOp::create(
                b, loc, masked,
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, e,
                                      first));
          Value ez = math::ExpOp::create(b, loc,
                                         arith::SubFOp::create(b, loc, v, top));
          Value term = arith::SelectOp::create(b, loc, masked, cF32(0.0), ez);
          scf::YieldOp::create(
              b, loc, ValueRange{arith::AddFOp::create(b, loc, acc[0], term)});
        });
    // The pick's own term is exp(0) = 1.
    w.push_back(arith::DivFOp::create(b, loc, cF32(1.0), total.getResult(0)));
    picked.push_back(pick);
    first = pick;
  }
}

void Lowering::routeTokens(Value logits, Value &selected, Value &weights) {
  // Per token: the k best selection keys in (value desc, index asc) order,
  // found as successive maxima below the previous pick; then scores. The
  // key is the logit unless a selection bias or expert groups make it the
  // (biased) score; sparsemixer has its own two rounds.
  int64_t k = m.topK;
  OpFoldResult sizes[] = {tokenCount, b.getIndexAttr(k)};
  Value sel0 = tensor::EmptyOp::create(b, loc, sizes, i64);
  Value w0 = tensor::EmptyOp::create(b, loc, sizes, f32);
  Value zero = cIndex(0), one = cIndex(1);
  Value numE = cIndex(m.experts);
  RoutingAttr routing = m.routing;
  bool softmax = routing.getScoring() == Scoring::softmax;
  bool sparsemixer = routing.getScoring() == Scoring::sparsemixer;
  bool topkFirst = routing.getOrder() == RoutingOrder::topk_then_score;
  bool keyed = !sparsemixer && !topkFirst &&
               (m.selectionBias || routing.getGroups() > 1);
  auto loop = scf::ForOp::create(
      b, loc, zero, tokenCount, one, ValueRange{sel0, w0},
      [&](OpBuilder &ob, Location l, Value t, ValueRange acc) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToEnd(ob.getInsertionBlock());
        Value sel = acc[0], wts = acc[1];
        auto logit = [&](Value e) -> Value { return extract(logits, {t, e}); };
        SmallVector<Value> picked, w;
        // Hierarchical routing: stage 1 keeps the best clusters; stage 2
        // only sees their experts.
        std::function<Value(Value)> allowed;
        if (hierarchical()) {
          SmallVector<Value> kept = keepClusters(logits, t);
          allowed = [this, kept](Value e) -> Value {
            Value c = extract(assignTable, {e});
            Value any = arith::ConstantIntOp::create(b, loc, 0, 1);
            for (Value k : kept)
              any = arith::OrIOp::create(
                  b, loc, any,
                  arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, c,
                                        toI64(k)));
            return any;
          };
        }
        if (sparsemixer) {
          routeSparsemixer(logit, allowed, picked, w);
        } else if (keyed) {
          // The pass refuses hierarchical routing here: no `allowed`.
          routeKeyed(logit, picked, w);
        } else {
          SmallVector<Value> pickedLogit;
          topKeys(k, logit, allowed, picked, pickedLogit);
          // Scores of the picks.
          if (softmax) {
            Value maxZ = pickedLogit[0];
            Value sum;
            if (topkFirst) {
              sum = cF32(0.0);
              for (Value z : pickedLogit)
                sum = arith::AddFOp::create(
                    b, loc, sum,
                    math::ExpOp::create(
                        b, loc, arith::SubFOp::create(b, loc, z, maxZ)));
            } else {
              auto total = scf::ForOp::create(
                  b, loc, zero, numE, one, ValueRange{cF32(0.0)},
                  [&](OpBuilder &sb, Location, Value e, ValueRange s) {
                    OpBuilder::InsertionGuard g2(b);
                    b.setInsertionPointToEnd(sb.getInsertionBlock());
                    Value z = extract(logits, {t, e});
                    Value ez = math::ExpOp::create(
                        b, loc, arith::SubFOp::create(b, loc, z, maxZ));
                    // Stage 2's softmax normalises over the kept experts.
                    if (allowed)
                      ez = arith::SelectOp::create(b, loc, allowed(e), ez,
                                                   cF32(0.0));
                    scf::YieldOp::create(
                        b, loc,
                        ValueRange{arith::AddFOp::create(b, loc, s[0], ez)});
                  });
              sum = total.getResult(0);
            }
            for (Value z : pickedLogit)
              w.push_back(arith::DivFOp::create(
                  b, loc,
                  math::ExpOp::create(b, loc,
                                      arith::SubFOp::create(b, loc, z, maxZ)),
                  sum));
          } else {
            for (Value z : pickedLogit) {
              Value negZ = arith::NegFOp::create(b, loc, z);
              Value denom = arith::AddFOp::create(
                  b, loc, cF32(1.0), math::ExpOp::create(b, loc, negZ));
              w.push_back(arith::DivFOp::create(b, loc, cF32(1.0), denom));
            }
          }
        }
        if (routing.getNormalize()) {
          // w / max(sum + norm_epsilon, norm_floor); the defaults emit
          // nothing beyond w / sum.
          Value sum = cF32(0.0);
          for (Value x : w)
            sum = arith::AddFOp::create(b, loc, sum, x);
          if (!routing.getNormEpsilon().isZero())
            sum = arith::AddFOp::create(
                b, loc, sum, cF32(routing.getNormEpsilon().convertToDouble()));
          if (!routing.getNormFloor().isZero())
            sum = arith::MaximumFOp::create(
                b, loc, sum, cF32(routing.getNormFloor().convertToDouble()));
          for (Value &x : w)
            x = arith::DivFOp::create(b, loc, x, sum);
        }
        double scale = routing.getScale().convertToDouble();
        if (scale != 1.0)
          for (Value &x : w)
            x = arith::MulFOp::create(b, loc, x, cF32(scale));
        for (int64_t j = 0; j < k; ++j) {
          sel = insert(toI64(picked[j]), sel, {t, cIndex(j)});
          wts = insert(w[j], wts, {t, cIndex(j)});
        }
        scf::YieldOp::create(b, loc, ValueRange{sel, wts});
      });
  selected = loop.getResult(0);
  weights = loop.getResult(1);
}

/// The `count` best of `score` (successive maxima below the previous
/// pick), ties to the lower index; few scores, so this unrolls.
SmallVector<Value> Lowering::bestOf(ArrayRef<Value> score, int64_t count) {
  SmallVector<Value> kept;
  Value prevVal = cF32(std::numeric_limits<float>::infinity());
  Value prevIdx = cIndex(-1);
  for (int64_t j = 0; j < count; ++j) {
    Value bestVal = cF32(-std::numeric_limits<float>::infinity());
    Value bestIdx = cIndex(-1);
    for (int64_t c = 0; c < (int64_t)score.size(); ++c) {
      Value ci = cIndex(c);
      Value below = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT,
                                          score[c], prevVal);
      Value tie = arith::AndIOp::create(
          b, loc,
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, score[c],
                                prevVal),
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, ci,
                                prevIdx));
      Value none = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                         bestIdx, cIndex(0));
      Value larger = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                           score[c], bestVal);
      Value take = arith::AndIOp::create(
          b, loc, arith::OrIOp::create(b, loc, below, tie),
          arith::OrIOp::create(b, loc, none, larger));
      bestVal = arith::SelectOp::create(b, loc, take, score[c], bestVal);
      bestIdx = arith::SelectOp::create(b, loc, take, ci, bestIdx);
    }
    kept.push_back(bestIdx);
    prevVal = bestVal;
    prevIdx = bestIdx;
  }
  return kept;
}

/// Stage 1 of hierarchical routing for token `t`: the scores of the
/// clusters (log-sum-exp or mean of their members' logits) and the
/// `clusters_per_token` best, ties to the lower cluster index.
SmallVector<Value> Lowering::keepClusters(Value logits, Value t) {
  bool mass = m.clusterRouting.getScore() == ClusterScore::mass;
  SmallVector<Value> score;
  for (int64_t c = 0; c < m.clusters; ++c) {
    SmallVector<Value> z;
    for (int64_t e = 0; e < m.experts; ++e)
      if (m.assignment[e] == c)
        z.push_back(extract(logits, {t, cIndex(e)}));
    Value acc;
    if (mass) {
      Value mx = z[0];
      for (Value v : ArrayRef<Value>(z).drop_front())
        mx = arith::MaximumFOp::create(b, loc, mx, v);
      Value sum = cF32(0.0);
      for (Value v : z)
        sum = arith::AddFOp::create(
            b, loc, sum,
            math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, v, mx)));
      acc = arith::AddFOp::create(b, loc, mx, math::LogOp::create(b, loc, sum));
    } else {
      acc = cF32(0.0);
      for (Value v : z)
        acc = arith::AddFOp::create(b, loc, acc, v);
      acc = arith::DivFOp::create(b, loc, acc, cF32(double(z.size())));
    }
    score.push_back(acc);
  }
  // Successive maxima below the previous pick, as for experts.
  return bestOf(score, m.clusterRouting.getClustersPerToken());
}

/// y[n, r] += sum_c x[n, c] W[r, c] (reduceCols) or
/// y[n, c] += sum_r x[n, r] W[r, c], W the matrix `index` of a stacked
/// (S, R, C) weight, or rows [rowOffset, rowOffset + rowCount) of an
/// (R, C) factor, read in its storage form.
Value Lowering::product(Value x, const WeightView &w, Value index,
                        Value rowOffset, Value rowCount, bool reduceCols,
                        Value init, int64_t maxOuts) {
  MLIRContext *ctx = b.getContext();
  auto slice = [&](Value t) -> Value {
    if (!t)
      return t;
    auto type = cast<RankedTensorType>(t.getType());
    int64_t rank = type.getRank();
    SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes,
        strides(rank, b.getIndexAttr(1));
    for (int64_t d = 0; d < rank; ++d)
      sizes.push_back(b.getIndexAttr(type.getDimSize(d)));
    if (index) {
      offsets[0] = index;
      sizes[0] = b.getIndexAttr(1);
      auto result = RankedTensorType::get(type.getShape().drop_front(),
                                          type.getElementType());
      return tensor::ExtractSliceOp::create(b, loc, result, t, offsets, sizes,
                                            strides);
    }
    if (rowOffset) {
      offsets[0] = rowOffset;
      sizes[0] = rowCount;
      SmallVector<int64_t> shape(type.getShape());
      shape[0] = ShapedType::kDynamic;
      return tensor::ExtractSliceOp::create(
          b, loc, RankedTensorType::get(shape, type.getElementType()), t,
          offsets, sizes, strides);
    }
    return t;
  };
  Value data = slice(w.data), scales = slice(w.scales),
        zps = slice(w.zeroPoints);
  auto tiled = [&](Value x, Value init) -> Value {
    // Tiles of (kTileRows rows of x) x (kTileOut outputs), one per task of
    // the runtime's thread pool: rows for prefill, outputs for decode. With
    // W stored (out, in) an output tile is a block of W's rows, so the
    // storage and its scales slice along their first axis.
    Value n = tensor::DimOp::create(b, loc, init, 0);
    Value outs = tensor::DimOp::create(b, loc, init, 1);
    // W stored (in, out) tiles its outputs only in the axpy kernel, which
    // takes whole blocks of columns (a decode step's U^T h would otherwise be
    // one task).
    bool axpy = !reduceCols && vectorizable(w);
    int64_t staticOuts = cast<RankedTensorType>(init.getType()).getDimSize(1);
    if (ShapedType::isDynamic(staticOuts))
      staticOuts = maxOuts;
    bool narrow =
        !ShapedType::isDynamic(staticOuts) && staticOuts <= kTileOut / 2;
    int64_t tileOut = reduceCols ? (narrow ? kNarrowTileOut : kTileOut)
                      : axpy     ? kAxpyTileOut
                                 : ShapedType::kDynamic;
    // Plain arith, not affine helpers: this runs inside loop bodies still
    // being built, whose blocks affine's validity checks cannot walk.
    auto ceilDiv = [&](Value v, int64_t t) -> OpFoldResult {
      return arith::CeilDivUIOp::create(b, loc, v, cIndex(t)).getResult();
    };
    OpFoldResult counts[] = {ceilDiv(n, kTileRows),
                             ShapedType::isDynamic(tileOut)
                                 ? OpFoldResult(b.getIndexAttr(1))
                                 : ceilDiv(outs, tileOut)};
    // The body is filled after creation: affine helpers need the block to be
    // in the op's region.
    auto forall =
        scf::ForallOp::create(b, loc, counts, ValueRange{init}, std::nullopt);
    Block *body = forall.getBody();
    {
      ValueRange ivs = body->getArguments();
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(body);
      auto tileOf = [&](Value iv, int64_t size,
                        Value total) -> std::pair<OpFoldResult, OpFoldResult> {
        if (ShapedType::isDynamic(size))
          return {b.getIndexAttr(0), total};
        Value start = arith::MulIOp::create(b, loc, iv, cIndex(size));
        Value len = arith::MinUIOp::create(
            b, loc, cIndex(size), arith::SubIOp::create(b, loc, total, start));
        return {start, len};
      };
      auto [r0, rs] = tileOf(ivs[0], kTileRows, n);
      auto [c0, cs] = tileOf(ivs[1], tileOut, outs);
      auto rows = [&](Value t, OpFoldResult off, OpFoldResult len) {
        return sliceRows(t, off, len);
      };
      Value xTile = rows(x, r0, rs);
      Value out = body->getArguments().back();
      SmallVector<OpFoldResult> offsets = {r0, c0}, sizes = {rs, cs},
                                ones(2, b.getIndexAttr(1));
      Value initTile =
          tensor::ExtractSliceOp::create(b, loc, out, offsets, sizes, ones);
      Value dTile = reduceCols ? rows(data, c0, cs) : data;
      Value sTile = reduceCols ? rows(scales, c0, cs) : scales;
      Value zTile = reduceCols ? rows(zps, c0, cs) : zps;
      Value tile =
          !vectorizable(w)
              ? productTile(xTile, w, dTile, sTile, zTile, reduceCols, initTile)
          : reduceCols
              ? productTileVector(xTile, w, dTile, sTile, zTile, initTile)
              : productAxpyVector(xTile, w, dTile, sTile, zTile, initTile,
                                  getValueOrCreateConstantIndexOp(b, loc, c0));
      auto term = cast<scf::InParallelOp>(body->getTerminator());
      b.setInsertionPointToStart(term.getBody());
      tensor::ParallelInsertSliceOp::create(b, loc, tile, out, offsets, sizes,
                                            ones);
    }
    return forall.getResult(0);
  };
  if (!reduceCols || !vectorizable(w))
    return tiled(x, init);
  // Prefill: whole panels of kTileRows rows by output tiles, so that each
  // block of weight rows is read once for all of them; the rows left over
  // (all of decode) by the tiles above.
  Value n = tensor::DimOp::create(b, loc, init, 0);
  Value full = arith::SubIOp::create(
      b, loc, n, arith::RemUIOp::create(b, loc, n, cIndex(kTileRows)));
  Value done = productPanels(x, w, data, scales, zps, init, full);
  auto rowsOf = [&](Value t, Value from, Value count) {
    return sliceRows(t, from, count);
  };
  Value left = arith::SubIOp::create(b, loc, n, full);
  Value rest = tiled(rowsOf(x, full, left), rowsOf(done, full, left));
  SmallVector<OpFoldResult> offsets = {full, b.getIndexAttr(0)};
  SmallVector<OpFoldResult> sizes = {left,
                                     tensor::getMixedSize(b, loc, done, 1)};
  SmallVector<OpFoldResult> ones(2, b.getIndexAttr(1));
  return tensor::InsertSliceOp::create(b, loc, rest, done, offsets, sizes,
                                       ones);
}

/// The register tile: kRegRows token rows by kRegOuts outputs, kLanes
/// elements of the reduction per step. 12 accumulators, 3 weight vectors
/// and one token vector fill AVX2's 16 registers; the former 4 x 4 x 16
/// tile needed 48 and spilled (512-token prefill 397 -> 204 ms,
/// docs/benchmarks.md).
constexpr int64_t kRegRows = 4, kRegOuts = 3, kLanes = 8;
/// Weight rows per step of the panel kernel: 6 x 2 accumulators, two
/// token vectors and one broadcast weight fit AVX2's 16 registers.
constexpr int64_t kBcastOuts = 6;
/// Outputs per step for a single row (decode).
constexpr int64_t kRegOutsSingle = 8;
/// Inputs per block of the panel kernel: a panel's block (16 KiB) stays in
/// L1 while every block of weight rows passes over it.
constexpr int64_t kPanelDepth = 256;
/// Panels per task at most: a task's sums (128 KiB) and its panels' block
/// of inputs (512 KiB) stay near L2 however many tokens a product has.
constexpr int64_t kGroupPanels = 32;
/// Tasks the panel kernel aims for at least (several per thread of a
/// 2-core machine, one per thread of a 16-core one).
constexpr int64_t kPanelTasks = 16;
/// Columns per task of a row scatter-add.
constexpr int64_t kScatterCols = 128;
/// Columns per task of the row gathers and the activation: a decode step's
/// few rows (one expert's share of 16 tokens) would otherwise be one task.
constexpr int64_t kTileCols = 512;
/// Steps of kLanes per prefetch in the single-row f16/bf16 kernel: one
/// 64-byte line of each row.
constexpr int64_t kPrefetchSteps = 4;
/// Output vectors per step of the axpy kernel (U^T h).
constexpr int64_t kAxpyVecs = 4;
/// Outputs per step of the single-row kernel for integer codes: a group
/// accumulator and a running sum per output, the codes' temporaries and
/// the token vectors fill AVX2's 16 registers.
constexpr int64_t kQuantOuts = 4;

/// Whether a (out, in) weight can take the vector kernel: every step of
/// kLanes inputs stays inside one quantisation group and one row.
bool Lowering::vectorizable(const WeightView &w) const {
  int64_t in = w.logical.getShape().back();
  if (ShapedType::isDynamic(in) || in % kLanes != 0)
    return false;
  QuantAttr q = w.quant;
  if (!q)
    return w.logical.getElementType().isF32();
  switch (q.getStorage()) {
  case QuantStorage::f16:
  case QuantStorage::bf16:
  case QuantStorage::f32:
    return true;
  case QuantStorage::i8:
  case QuantStorage::i4:
    return q.getGroupSize() == 0 || q.getGroupSize() % kLanes == 0;
  }
  return false;
}

/// kLanes weights of row `row` from input `k` on, as f32: loaded in their
/// storage form and widened (codes: unpacked, zero point subtracted,
/// scaled) in registers.
Value Lowering::loadWeightVector(const WeightView &w, Value data, Value scales,
                                 Value zps, Value row, Value k,
                                 std::pair<Value, Value> *factors) {
  QuantAttr q = w.quant;
  Type storage = cast<RankedTensorType>(data.getType()).getElementType();
  if (!q || q.getStorage() == QuantStorage::f32 ||
      q.getStorage() == QuantStorage::f16 ||
      q.getStorage() == QuantStorage::bf16) {
    auto f32Vec = VectorType::get({kLanes}, f32);
    Value v = vector::TransferReadOp::create(
        b, loc, VectorType::get({kLanes}, storage), data, ValueRange{row, k},
        /*padding=*/std::nullopt, ArrayRef<bool>{true});
    return storage.isF32() ? v : arith::ExtFOp::create(b, loc, f32Vec, v);
  }
  std::pair<Value, Value> own;
  if (!factors)
    factors = &own;
  if (!factors->first) {
    Value group =
        q.getGroupSize() > 0
            ? arith::DivUIOp::create(b, loc, k, cIndex(q.getGroupSize()))
                  .getResult()
            : cIndex(0);
    *factors = groupFactors(w, scales, zps, row, group);
  }
  return vector::FMAOp::create(b, loc, loadCodes(w, data, row, k),
                               factors->first, factors->second);
}

/// kLanes integer codes of row `row` from input `k` on, widened to f32
/// (INT4: unpacked in input order).
Value Lowering::loadCodes(const WeightView &w, Value data, Value row, Value k) {
  auto f32Vec = VectorType::get({kLanes}, f32);
  QuantAttr q = w.quant;
  Type storage = cast<RankedTensorType>(data.getType()).getElementType();
  auto read = [&](int64_t lanes, Value col) -> Value {
    return vector::TransferReadOp::create(
        b, loc, VectorType::get({lanes}, storage), data, ValueRange{row, col},
        /*padding=*/std::nullopt, ArrayRef<bool>{true});
  };
  auto i32Vec = VectorType::get({kLanes}, b.getI32Type());
  Value codes;
  if (q.getStorage() == QuantStorage::i4) {
    auto half = VectorType::get({kLanes / 2}, b.getI32Type());
    Value byteCol = arith::DivUIOp::create(b, loc, k, cIndex(2));
    Value bytes =
        arith::ExtUIOp::create(b, loc, half, read(kLanes / 2, byteCol));
    Value low = arith::AndIOp::create(
        b, loc, bytes,
        arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(half, b.getI32IntegerAttr(15))));
    Value high = arith::ShRUIOp::create(
        b, loc, bytes,
        arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(half, b.getI32IntegerAttr(4))));
    bool highFirst = q.getPacking() == NibbleOrder::high_nibble_first;
    codes = vector::InterleaveOp::create(b, loc, highFirst ? high : low,
                                         highFirst ? low : high);
  } else {
    codes = arith::ExtUIOp::create(b, loc, i32Vec, read(kLanes, k));
  }
  return arith::UIToFPOp::create(b, loc, f32Vec, codes);
}

/// (scale, zero point * scale) of `row` in group `group`, as f32 scalars.
std::pair<Value, Value> Lowering::groupScalars(const WeightView &w,
                                               Value scales, Value zps,
                                               Value row, Value group) {
  QuantAttr q = w.quant;
  Value zp =
      zps ? widenToF32(extract(zps, {row, group}))
          : cF32(double(
                1 << ((q.getStorage() == QuantStorage::i4 ? 4 : 8) - 1)));
  Value scale = widenToF32(extract(scales, {row, group}));
  return {scale, arith::MulFOp::create(b, loc, zp, scale)};
}

/// groupScalars as (scale, -zero point * scale) broadcast to kLanes: a
/// code q stands for fma(q, scale, offset).
std::pair<Value, Value> Lowering::groupFactors(const WeightView &w,
                                               Value scales, Value zps,
                                               Value row, Value group) {
  auto f32Vec = VectorType::get({kLanes}, f32);
  auto [scale, zpScale] = groupScalars(w, scales, zps, row, group);
  return {vector::BroadcastOp::create(b, loc, f32Vec, scale),
          vector::BroadcastOp::create(b, loc, f32Vec,
                                      arith::NegFOp::create(b, loc, zpScale))};
}

/// One tile of `product` for W stored (out, in), as vector code: kRegRows x
/// kRegOuts accumulators of kLanes lanes; each step loads kRegOuts weight
/// vectors once (dequantised once for all rows) and kRegRows token vectors.
/// Rows come in blocks of kRegRows (a last block of 2 or 3 rows repeats its
/// last row), then a single row left over (decode has one).
/// Outputs past the tile's end are clamped to its last one: they recompute
/// the same sums from the same starting values, so a repeated write is
/// harmless.
Value Lowering::productTileVector(Value x, const WeightView &w, Value data,
                                  Value scales, Value zps, Value init) {
  auto f32Vec = VectorType::get({kLanes}, f32);
  Value zero = cIndex(0), one = cIndex(1);
  Value rows = tensor::DimOp::create(b, loc, init, 0);
  Value outs = tensor::DimOp::create(b, loc, init, 1);
  int64_t in = w.logical.getShape().back();
  Value lastOut = arith::SubIOp::create(b, loc, outs, one);
  Type storage = cast<RankedTensorType>(data.getType()).getElementType();
  // Rows in blocks of kRegRows; a last part block of 2 or 3 rows is a
  // whole block whose missing rows repeat the last row (like clamped
  // outputs: the same sums, written twice), which costs less than 2 or 3
  // single-row passes over the weights. A single row left (all of decode)
  // takes the single-row pass.
  Value rem = arith::RemUIOp::create(b, loc, rows, cIndex(kRegRows));
  Value floorRows = arith::SubIOp::create(b, loc, rows, rem);
  // Not for codes that have the single-row kernel: there a row costs less
  // than a block's unpacking of the codes.
  Value blockedRows =
      rowsQuantized(w)
          ? floorRows
          : arith::SelectOp::create(
                b, loc,
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, rem,
                                      one),
                arith::AddIOp::create(b, loc, floorRows, cIndex(kRegRows)),
                floorRows)
                .getResult();
  Value singlesFrom = arith::MinUIOp::create(b, loc, blockedRows, rows);
  Value lastRow = arith::SubIOp::create(b, loc, rows, one);
  // Narrow storage (f16/bf16) is prefetched for single rows; f32 already
  // streams at the bandwidth ceiling, codes take productRowsQuantized.
  Value dataBuf =
      !storage.isF32() && !rowsQuantized(w) ? readOnlyBuffer(data) : Value();

  // `count` rows from n0 by the outputs `outIdx`, into t.
  auto rowTile = [&](int64_t count, Value n0, ArrayRef<Value> outIdx,
                     Value t) -> Value {
    SmallVector<Value> rowIdx =
        count == 1 ? SmallVector<Value>{n0} : clampedRange(n0, count, lastRow);
    Value zeroVec =
        arith::ConstantOp::create(b, loc, DenseElementsAttr::get(f32Vec, 0.0f));
    int64_t width = outIdx.size();
    SmallVector<Value> zeros(count * width, zeroVec);
    // Integer codes by groups: scale and zero point broadcast once per
    // group and output, then each code vector is one FMA from f32 (per
    // step they cost two scalar loads, two conversions and two broadcasts).
    QuantAttr q = w.quant;
    bool codes = q && (q.getStorage() == QuantStorage::i4 ||
                       q.getStorage() == QuantStorage::i8);
    bool fetch = (count == 1 || !codes) && dataBuf &&
                 in % (kPrefetchSteps * kLanes) == 0;
    int64_t unroll = fetch ? kPrefetchSteps : 1;
    // A group may be longer than the row (one group, then); otherwise whole
    // groups must tile the row, or the per-code path takes it.
    int64_t group = rowGroup(w);
    bool grouped = codes && count > 1 && group > kLanes && in % group == 0 &&
                   group % kLanes == 0;
    // The steps over [k0, k0 + span): weight vectors from `weightAt`.
    auto stepRange = [&](Value k0, int64_t span, int64_t stride, ValueRange acc,
                         function_ref<Value(int64_t j, Value k)> weightAt) {
      return scf::ForOp::create(
          b, loc, zero, cIndex(span), cIndex(stride), acc,
          [&](OpBuilder &kb, Location, Value kk, ValueRange carried) {
            OpBuilder::InsertionGuard g(b);
            b.setInsertionPointToEnd(kb.getInsertionBlock());
            Value kBase = arith::AddIOp::create(b, loc, k0, kk);
            if (fetch)
              prefetchNextRows(dataBuf, outIdx, lastOut, kBase);
            SmallVector<Value> next(carried);
            for (int64_t u = 0; u < stride / kLanes; ++u) {
              Value k =
                  arith::AddIOp::create(b, loc, kBase, cIndex(u * kLanes));
              // The side with fewer vectors is loaded first and held; each
              // vector of the other side meets it as soon as it is loaded, so
              // the accumulators and the held vectors fit the registers (LLVM
              // keeps this order: a 2 x 6 tile with its 6 weights loaded
              // first spilled).
              auto tokenAt = [&](int64_t i) -> Value {
                return vector::TransferReadOp::create(
                    b, loc, f32Vec, x, ValueRange{rowIdx[i], k}, std::nullopt,
                    ArrayRef<bool>{true});
              };
              auto fma = [&](int64_t i, int64_t j, Value xv, Value wv) {
                next[i * width + j] =
                    vector::FMAOp::create(b, loc, xv, wv, next[i * width + j]);
              };
              if (width > count) {
                SmallVector<Value> xv;
                for (int64_t i = 0; i < count; ++i)
                  xv.push_back(tokenAt(i));
                for (int64_t j = 0; j < width; ++j) {
                  Value wv = weightAt(j, k);
                  for (int64_t i = 0; i < count; ++i)
                    fma(i, j, xv[i], wv);
                }
              } else {
                SmallVector<Value> wv;
                for (int64_t j = 0; j < width; ++j)
                  wv.push_back(weightAt(j, k));
                for (int64_t i = 0; i < count; ++i) {
                  Value xv = tokenAt(i);
                  for (int64_t j = 0; j < width; ++j)
                    fma(i, j, xv, wv[j]);
                }
              }
            }
            scf::YieldOp::create(b, loc, next);
          });
    };
    scf::ForOp steps;
    if (grouped) {
      steps = scf::ForOp::create(
          b, loc, zero, cIndex(in / group), one, zeros,
          [&](OpBuilder &gb, Location, Value g, ValueRange acc) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToEnd(gb.getInsertionBlock());
            SmallVector<std::pair<Value, Value>> factors;
            for (int64_t j = 0; j < width; ++j)
              factors.push_back(groupFactors(w, scales, zps, outIdx[j], g));
            Value k0 = arith::MulIOp::create(b, loc, g, cIndex(group));
            auto inner = stepRange(
                k0, group, kLanes, acc, [&](int64_t j, Value k) -> Value {
                  return vector::FMAOp::create(
                      b, loc, loadCodes(w, data, outIdx[j], k),
                      factors[j].first, factors[j].second);
                });
            scf::YieldOp::create(b, loc, inner.getResults());
          });
    } else {
      steps = stepRange(
          zero, in, kLanes * unroll, zeros, [&](int64_t j, Value k) -> Value {
            return loadWeightVector(w, data, scales, zps, outIdx[j], k);
          });
    }
    // All reads before any write: a clamped duplicate output reads the
    // same starting value and writes the same result, and the tile is
    // updated in place.
    SmallVector<Value> results;
    for (int64_t i = 0; i < count; ++i)
      for (int64_t j = 0; j < width; ++j) {
        // Reassociable: a tree of adds, not a chain of 8 (12 chains per
        // tile of 4 rows by 3 outputs).
        Value sum = vector::ReductionOp::create(
            b, loc, vector::CombiningKind::ADD, steps.getResult(i * width + j),
            arith::FastMathFlags::reassoc);
        results.push_back(arith::AddFOp::create(
            b, loc, extract(t, {rowIdx[i], outIdx[j]}), sum));
      }
    for (int64_t i = 0; i < count; ++i)
      for (int64_t j = 0; j < width; ++j)
        t = insert(results[i * width + j], t, {rowIdx[i], outIdx[j]});
    return t;
  };

  // Row blocks with kRegOuts outputs per step, then a remaining single row
  // (all of decode) with kRegOutsSingle: one row leaves the registers to
  // more weight rows, whose loads then overlap.
  auto pass = [&](Value from, Value to, int64_t count, int64_t width,
                  Value t0) -> Value {
    return scf::ForOp::create(
               b, loc, zero, outs, cIndex(width), ValueRange{t0},
               [&](OpBuilder &ob, Location, Value o0, ValueRange accO) {
                 OpBuilder::InsertionGuard g1(b);
                 b.setInsertionPointToEnd(ob.getInsertionBlock());
                 SmallVector<Value> outIdx = clampedRange(o0, width, lastOut);
                 auto rowLoop = scf::ForOp::create(
                     b, loc, from, to, cIndex(count), ValueRange{accO[0]},
                     [&](OpBuilder &rb, Location, Value n0, ValueRange acc) {
                       OpBuilder::InsertionGuard g2(b);
                       b.setInsertionPointToEnd(rb.getInsertionBlock());
                       scf::YieldOp::create(
                           b, loc,
                           ValueRange{rowTile(count, n0, outIdx, acc[0])});
                     });
                 scf::YieldOp::create(b, loc, rowLoop.getResults());
               })
        .getResult(0);
  };
  Value t = pass(zero, blockedRows, kRegRows, kRegOuts, init);
  if (rowsQuantized(w))
    return productRowsQuantized(x, w, data, scales, zps, t, singlesFrom);
  return pass(singlesFrom, rows, 1, kRegOutsSingle, t);
}

/// Whether single rows of W take productRowsQuantized: integer codes whose
/// groups hold whole steps of it (16 INT4 codes, 8 INT8 codes).
bool Lowering::rowsQuantized(const WeightView &w) const {
  QuantAttr q = w.quant;
  if (!q || (q.getStorage() != QuantStorage::i4 &&
             q.getStorage() != QuantStorage::i8))
    return false;
  int64_t step = q.getStorage() == QuantStorage::i4 ? 2 * kLanes : kLanes;
  int64_t in = w.logical.getShape().back();
  if (ShapedType::isDynamic(in))
    return false;
  int64_t group = rowGroup(w);
  return in % group == 0 && group % step == 0;
}

/// Rows [from, end) of `product`, one at a time (decode), for W stored as
/// INT4 or INT8 codes (out, in) with a scale and zero point per group g of
/// inputs: sum_c s_g (q_c - z_g) x_c = sum_g s_g (sum_{c in g} q_c x_c)
/// - sum_g s_g z_g X_g, X_g the sum of x over g. So the codes only widen
/// to f32 and meet x in an FMA; scale and zero point are applied once per
/// group and output, not per code (the per-code path spent 16 instructions
/// on 8 codes). INT4: 8 bytes widen to 8 lanes, each holding a code pair;
/// the low nibbles are the even inputs of the step and the high ones the
/// odd (or the reverse), so x is split per step of 16 into its even and
/// odd halves once per row rather than interleaving the codes.
Value Lowering::productRowsQuantized(Value x, const WeightView &w, Value data,
                                     Value scales, Value zps, Value init,
                                     Value from) {
  QuantAttr q = w.quant;
  bool int4 = q.getStorage() == QuantStorage::i4;
  bool highFirst = int4 && q.getPacking() == NibbleOrder::high_nibble_first;
  int64_t in = w.logical.getShape().back();
  int64_t group = rowGroup(w);
  int64_t step = int4 ? 2 * kLanes : kLanes;
  auto f32Vec = VectorType::get({kLanes}, f32);
  auto i32Vec = VectorType::get({kLanes}, b.getI32Type());
  Type storage = cast<RankedTensorType>(data.getType()).getElementType();
  Value zero = cIndex(0), one = cIndex(1);
  Value rows = tensor::DimOp::create(b, loc, init, 0);
  Value outs = tensor::DimOp::create(b, loc, init, 1);
  Value lastOut = arith::SubIOp::create(b, loc, outs, one);
  Value zeroVec =
      arith::ConstantOp::create(b, loc, DenseElementsAttr::get(f32Vec, 0.0f));
  auto splat = [&](int64_t v) -> Value {
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(i32Vec, b.getI32IntegerAttr(v)));
  };
  auto readVec = [&](Value t, VectorType type, ValueRange at) -> Value {
    return vector::TransferReadOp::create(b, loc, type, t, at, std::nullopt,
                                          ArrayRef<bool>{true});
  };
  auto forLoop = [&](Value lo, Value hi, int64_t by, ValueRange init,
                     function_ref<SmallVector<Value>(Value, ValueRange)> fn) {
    return scf::ForOp::create(
        b, loc, lo, hi, cIndex(by), init,
        [&](OpBuilder &lb, Location, Value iv, ValueRange carried) {
          OpBuilder::InsertionGuard g(b);
          b.setInsertionPointToEnd(lb.getInsertionBlock());
          scf::YieldOp::create(b, loc, fn(iv, carried));
        });
  };

  int64_t numGroups = in / group;
  int64_t vecGroups = numGroups / kLanes * kLanes;
  Type scaleType = cast<RankedTensorType>(scales.getType()).getElementType();
  Type zpType =
      zps ? cast<RankedTensorType>(zps.getType()).getElementType() : Type();
  // Symmetric codes: the zero point is the middle code (as groupScalars).
  Value defaultZeroVec = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(f32Vec, float(1 << ((int4 ? 4 : 8) - 1))));
  Value dataBuf = readOnlyBuffer(data);
  auto rowLoop = forLoop(
      from, rows, 1, ValueRange{init},
      [&](Value n, ValueRange t) -> SmallVector<Value> {
        // x's row n (INT4: each step's even inputs, then its odd ones) and its
        // sum per group.
        OpFoldResult inSize = b.getIndexAttr(in);
        Value xRow = tensor::EmptyOp::create(
            b, loc, ArrayRef<OpFoldResult>{inSize}, f32);
        Value sums = tensor::EmptyOp::create(
            b, loc, ArrayRef<OpFoldResult>{b.getIndexAttr(in / group)}, f32);
        auto prep = forLoop(
            zero, cIndex(in / group), 1, ValueRange{xRow, sums},
            [&](Value g, ValueRange acc) -> SmallVector<Value> {
              Value g0 = arith::MulIOp::create(b, loc, g, cIndex(group));
              auto inner = forLoop(
                  zero, cIndex(group), step, ValueRange{acc[0], zeroVec},
                  [&](Value kk, ValueRange a) -> SmallVector<Value> {
                    Value k = arith::AddIOp::create(b, loc, g0, kk);
                    Value xr = a[0], sum = a[1];
                    SmallVector<Value> parts;
                    if (int4) {
                      auto d = vector::DeinterleaveOp::create(
                          b, loc,
                          readVec(x, VectorType::get({step}, f32), {n, k}));
                      parts = {d.getRes1(), d.getRes2()};
                    } else {
                      parts = {readVec(x, f32Vec, {n, k})};
                    }
                    for (auto [i, v] : llvm::enumerate(parts)) {
                      Value at = arith::AddIOp::create(
                          b, loc, k, cIndex(int64_t(i) * kLanes));
                      xr = vector::TransferWriteOp::create(b, loc, v, xr,
                                                           ValueRange{at},
                                                           ArrayRef<bool>{true})
                               .getResult();
                      sum = arith::AddFOp::create(b, loc, sum, v);
                    }
                    return {xr, sum};
                  });
              Value total = vector::ReductionOp::create(
                  b, loc, vector::CombiningKind::ADD, inner.getResult(1),
                  arith::FastMathFlags::reassoc);
              return {inner.getResult(0), insert(total, acc[1], {g})};
            });
        Value xr = prep.getResult(0), xsum = prep.getResult(1);

        // Per block of outputs, before its groups: the outputs' scales as f32
        // (the group loop broadcasts each from memory: a load, no widening or
        // shuffle) and each output's zero-point term sum_g s_g z_g X_g, both
        // along the groups in vectors. Gathered per group inside the loop,
        // the scales and zero points of 4 rows took more instructions than
        // the codes, and their running sums spilled the codes' registers.
        Value table = tensor::EmptyOp::create(
            b, loc,
            ArrayRef<OpFoldResult>{b.getIndexAttr(kQuantOuts),
                                   b.getIndexAttr(numGroups)},
            f32);
        auto outLoop = forLoop(
            zero, outs, kQuantOuts, ValueRange{t[0], table},
            [&](Value o0, ValueRange tOut) -> SmallVector<Value> {
              SmallVector<Value> outIdx = clampedRange(o0, kQuantOuts, lastOut);
              Value tab = tOut[1];
              SmallVector<Value> zeroTerm;
              for (int64_t j = 0; j < kQuantOuts; ++j) {
                Value jj = cIndex(j), term = cF32(0.0);
                if (vecGroups > 0) {
                  auto vec = forLoop(
                      zero, cIndex(vecGroups), kLanes, ValueRange{tab, zeroVec},
                      [&](Value g, ValueRange a) -> SmallVector<Value> {
                        Value s = widenToF32(readVec(
                            scales, VectorType::get({kLanes}, scaleType),
                            {outIdx[j], g}));
                        Value z =
                            zps ? widenToF32(readVec(
                                      zps, VectorType::get({kLanes}, zpType),
                                      {outIdx[j], g}))
                                : defaultZeroVec;
                        Value next = vector::TransferWriteOp::create(
                                         b, loc, s, a[0], ValueRange{jj, g},
                                         ArrayRef<bool>{true})
                                         .getResult();
                        Value sz = arith::MulFOp::create(b, loc, s, z);
                        return {next, vector::FMAOp::create(
                                          b, loc, sz,
                                          readVec(xsum, f32Vec, {g}), a[1])};
                      });
                  tab = vec.getResult(0);
                  term = vector::ReductionOp::create(
                      b, loc, vector::CombiningKind::ADD, vec.getResult(1),
                      arith::FastMathFlags::reassoc);
                }
                if (vecGroups < numGroups) {
                  auto rest = forLoop(
                      cIndex(vecGroups), cIndex(numGroups), 1,
                      ValueRange{tab, term},
                      [&](Value g, ValueRange a) -> SmallVector<Value> {
                        auto [scale, zpScale] =
                            groupScalars(w, scales, zps, outIdx[j], g);
                        Value zx = arith::MulFOp::create(b, loc, zpScale,
                                                         extract(xsum, {g}));
                        return {insert(scale, a[0], {jj, g}),
                                arith::AddFOp::create(b, loc, a[1], zx)};
                      });
                  tab = rest.getResult(0);
                  term = rest.getResult(1);
                }
                zeroTerm.push_back(term);
              }
              SmallVector<Value> start(kQuantOuts, zeroVec);
              auto groups = forLoop(
                  zero, cIndex(numGroups), 1, start,
                  [&](Value g, ValueRange acc) -> SmallVector<Value> {
                    Value g0 = arith::MulIOp::create(b, loc, g, cIndex(group));
                    prefetchNextRows(
                        dataBuf, outIdx, lastOut,
                        int4 ? arith::DivUIOp::create(b, loc, g0, cIndex(2))
                                   .getResult()
                             : g0);
                    SmallVector<Value> dots(kQuantOuts, zeroVec);
                    auto inner = forLoop(
                        zero, cIndex(group), step, dots,
                        [&](Value kk, ValueRange d) -> SmallVector<Value> {
                          Value k = arith::AddIOp::create(b, loc, g0, kk);
                          Value col = int4 ? arith::DivUIOp::create(b, loc, k,
                                                                    cIndex(2))
                                                 .getResult()
                                           : k;
                          SmallVector<Value> xv;
                          for (int64_t i = 0; i < (int4 ? 2 : 1); ++i)
                            xv.push_back(
                                readVec(xr, f32Vec,
                                        {arith::AddIOp::create(
                                            b, loc, k, cIndex(i * kLanes))}));
                          SmallVector<Value> next;
                          for (int64_t j = 0; j < kQuantOuts; ++j) {
                            Value codes = arith::ExtUIOp::create(
                                b, loc, i32Vec,
                                readVec(data,
                                        VectorType::get({kLanes}, storage),
                                        {outIdx[j], col}));
                            Value acc = d[j];
                            if (!int4) {
                              acc = vector::FMAOp::create(
                                  b, loc,
                                  arith::UIToFPOp::create(b, loc, f32Vec,
                                                          codes),
                                  xv[0], acc);
                            } else {
                              // Zero-extended bytes: the high nibble needs no
                              // mask.
                              Value low = arith::AndIOp::create(b, loc, codes,
                                                                splat(15));
                              Value high = arith::ShRUIOp::create(b, loc, codes,
                                                                  splat(4));
                              Value even = highFirst ? high : low;
                              Value odd = highFirst ? low : high;
                              acc = vector::FMAOp::create(
                                  b, loc,
                                  arith::UIToFPOp::create(b, loc, f32Vec, even),
                                  xv[0], acc);
                              acc = vector::FMAOp::create(
                                  b, loc,
                                  arith::UIToFPOp::create(b, loc, f32Vec, odd),
                                  xv[1], acc);
                            }
                            next.push_back(acc);
                          }
                          return next;
                        });
                    SmallVector<Value> next;
                    for (int64_t j = 0; j < kQuantOuts; ++j)
                      next.push_back(vector::FMAOp::create(
                          b, loc,
                          vector::BroadcastOp::create(
                              b, loc, f32Vec, extract(tab, {cIndex(j), g})),
                          inner.getResult(j), acc[j]));
                    return next;
                  });
              // All reads before any write (clamped duplicates, see
              // productTileVector).
              SmallVector<Value> results;
              for (int64_t j = 0; j < kQuantOuts; ++j) {
                Value dot = vector::ReductionOp::create(
                    b, loc, vector::CombiningKind::ADD, groups.getResult(j),
                    arith::FastMathFlags::reassoc);
                Value val = arith::SubFOp::create(b, loc, dot, zeroTerm[j]);
                results.push_back(arith::AddFOp::create(
                    b, loc, extract(tOut[0], {n, outIdx[j]}), val));
              }
              Value tt = tOut[0];
              for (int64_t j = 0; j < kQuantOuts; ++j)
                tt = insert(results[j], tt, {n, outIdx[j]});
              return {tt, tab};
            });
        return {outLoop.getResult(0)};
      });
  return rowLoop.getResult(0);
}

/// Rows [0, full) of `product` (full a multiple of kTileRows) for W stored
/// (out, in), as a GEMM micro-kernel without horizontal sums: the rows are
/// packed once into panels of (in, kTileRows). A task is one output tile
/// and a group of panels; it walks the inputs in blocks of kPanelDepth: the
/// tile's weight rows for the block are dequantised once into an f32
/// scratch, then for every panel each block of kBcastOuts weight rows runs
/// the register tile (one broadcast weight per row against two vectors of
/// tokens per step), reloading and storing its sums in a per-task buffer.
Value Lowering::productPanels(Value x, const WeightView &w, Value data,
                              Value scales, Value zps, Value init, Value full) {
  auto f32Vec = VectorType::get({kLanes}, f32);
  static_assert(kTileRows == 2 * kLanes, "two token vectors per panel");
  Value zero = cIndex(0), one = cIndex(1);
  int64_t in = w.logical.getShape().back();
  Value outs = tensor::DimOp::create(b, loc, init, 1);
  Value panels = arith::DivUIOp::create(b, loc, full, cIndex(kTileRows));
  auto dynRows = RankedTensorType::get({ShapedType::kDynamic, in}, f32);
  Value xFull = tensor::ExtractSliceOp::create(
      b, loc, dynRows, x,
      ArrayRef<OpFoldResult>{b.getIndexAttr(0), b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{full, b.getIndexAttr(in)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)});
  // Packed panel-major, (panels, in, kTileRows): a panel's tokens for one
  // input are one cache line, and a panel is one sequential stream.
  Value xPanels = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({ShapedType::kDynamic, kTileRows, in}, f32),
      xFull, ArrayRef<ReassociationIndices>{{0, 1}, {2}},
      ArrayRef<OpFoldResult>{panels, b.getIndexAttr(kTileRows),
                             b.getIndexAttr(in)});
  // One panel per task of the runtime's pool (a single-threaded pack was
  // Amdahl's share of prefill on 16 cores).
  Value xT;
  {
    Value packed = tensor::EmptyOp::create(
        b, loc,
        ArrayRef<OpFoldResult>{panels, b.getIndexAttr(in),
                               b.getIndexAttr(kTileRows)},
        f32);
    auto pack = scf::ForallOp::create(b, loc, ArrayRef<OpFoldResult>{panels},
                                      ValueRange{packed}, std::nullopt);
    Block *body = pack.getBody();
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(body);
    Value p = body->getArgument(0);
    auto one3 = SmallVector<OpFoldResult>(3, b.getIndexAttr(1));
    Value rows = tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({kTileRows, in}, f32), xPanels,
        ArrayRef<OpFoldResult>{p, b.getIndexAttr(0), b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(kTileRows),
                               b.getIndexAttr(in)},
        one3);
    Value panel = linalg::TransposeOp::create(
                      b, loc, rows,
                      tensor::EmptyOp::create(
                          b, loc, ArrayRef<int64_t>{in, kTileRows}, f32),
                      ArrayRef<int64_t>{1, 0})
                      .getResult()[0];
    auto term = cast<scf::InParallelOp>(body->getTerminator());
    b.setInsertionPointToStart(term.getBody());
    tensor::ParallelInsertSliceOp::create(
        b, loc, panel, body->getArguments().back(),
        ArrayRef<OpFoldResult>{p, b.getIndexAttr(0), b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(in),
                               b.getIndexAttr(kTileRows)},
        one3);
    xT = pack.getResult(0);
  }
  // No panel, no task: decode skips this entirely.
  Value hasPanels =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, panels, zero);
  Value tiles = arith::SelectOp::create(
      b, loc, hasPanels,
      arith::CeilDivUIOp::create(b, loc, outs, cIndex(kTileOut)), zero);
  // A task is one (output tile, group of panels). Products with few output
  // tiles (the rank-16 V factors: one) split their panels into groups so
  // that every thread gets tasks; wide products keep up to kGroupPanels
  // panels in one group, so each weight block is dequantised once for all
  // of them (groups of one panel cost Mixtral-sized f16 prefill 30%).
  Value perGroup = arith::CeilDivUIOp::create(
      b, loc, panels,
      arith::CeilDivUIOp::create(b, loc, cIndex(kPanelTasks),
                                 arith::MaxUIOp::create(b, loc, tiles, one)));
  perGroup = arith::MaxUIOp::create(
      b, loc, arith::MinUIOp::create(b, loc, perGroup, cIndex(kGroupPanels)),
      one);
  Value groups = arith::CeilDivUIOp::create(b, loc, panels, perGroup);
  auto forall =
      scf::ForallOp::create(b, loc, ArrayRef<OpFoldResult>{tiles, groups},
                            ValueRange{init}, std::nullopt);
  Block *body = forall.getBody();
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(body);
    Value c0 =
        arith::MulIOp::create(b, loc, body->getArgument(0), cIndex(kTileOut));
    Value cs = arith::MinUIOp::create(b, loc, cIndex(kTileOut),
                                      arith::SubIOp::create(b, loc, outs, c0));
    Value pFrom = arith::MulIOp::create(b, loc, body->getArgument(1), perGroup);
    Value pTo = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, pFrom, perGroup), panels);
    Value rowFrom = arith::MulIOp::create(b, loc, pFrom, cIndex(kTileRows));
    Value rowCount = arith::MulIOp::create(
        b, loc, arith::SubIOp::create(b, loc, pTo, pFrom), cIndex(kTileRows));
    auto rows = [&](Value t) { return sliceRows(t, c0, cs); };
    Value dTile = rows(data), sTile = rows(scales), zTile = rows(zps);
    Value out = body->getArguments().back();
    SmallVector<OpFoldResult> offsets = {rowFrom, c0}, sizes = {rowCount, cs},
                              ones(2, b.getIndexAttr(1));
    Value tile0 =
        tensor::ExtractSliceOp::create(b, loc, out, offsets, sizes, ones);
    Value lastOut = arith::SubIOp::create(b, loc, cs, one);
    Value taskPanels = arith::SubIOp::create(b, loc, pTo, pFrom);
    // Sums of the task's panels by output, (panels, kTileOut, kTileRows):
    // the register tile is stored and reloaded once per block of kPanelDepth
    // inputs, so that one panel's block of inputs stays in L1 while every
    // weight block passes over it, and each panel is read once per input
    // block rather than once per block of weight rows (at 2048 tokens a
    // whole-depth sweep streamed every panel from L3 for each of them).
    Value sums = filled(
        {taskPanels, b.getIndexAttr(kTileOut), b.getIndexAttr(kTileRows)}, f32,
        cF32(0.0f));
    Value scratch = tensor::EmptyOp::create(
        b, loc, ArrayRef<int64_t>{kTileOut, kPanelDepth}, f32);
    auto depth = scf::ForOp::create(
        b, loc, zero, cIndex(in), cIndex(kPanelDepth),
        ValueRange{scratch, sums},
        [&](OpBuilder &db, Location, Value k0, ValueRange carried) {
          OpBuilder::InsertionGuard g0(b);
          b.setInsertionPointToEnd(db.getInsertionBlock());
          Value k1 = arith::MinUIOp::create(
              b, loc, arith::AddIOp::create(b, loc, k0, cIndex(kPanelDepth)),
              cIndex(in));
          // The tile's weight rows for these inputs, dequantised once.
          auto dequant = scf::ForOp::create(
              b, loc, zero, cs, one, ValueRange{carried[0]},
              [&](OpBuilder &ob, Location, Value o, ValueRange accO) {
                OpBuilder::InsertionGuard g1(b);
                b.setInsertionPointToEnd(ob.getInsertionBlock());
                auto steps = scf::ForOp::create(
                    b, loc, k0, k1, cIndex(kLanes), ValueRange{accO[0]},
                    [&](OpBuilder &kb, Location, Value k, ValueRange acc) {
                      OpBuilder::InsertionGuard g2(b);
                      b.setInsertionPointToEnd(kb.getInsertionBlock());
                      Value at = arith::SubIOp::create(b, loc, k, k0);
                      Value t =
                          vector::TransferWriteOp::create(
                              b, loc,
                              loadWeightVector(w, dTile, sTile, zTile, o, k),
                              acc[0], ValueRange{o, at}, ArrayRef<bool>{true})
                              .getResult();
                      scf::YieldOp::create(b, loc, ValueRange{t});
                    });
                scf::YieldOp::create(b, loc, steps.getResults());
              });
          Value wRows = dequant.getResult(0);
          auto perPanel = scf::ForOp::create(
              b, loc, pFrom, pTo, one, ValueRange{carried[1]},
              [&](OpBuilder &pb, Location, Value p, ValueRange accP) {
                OpBuilder::InsertionGuard g1(b);
                b.setInsertionPointToEnd(pb.getInsertionBlock());
                Value pl = arith::SubIOp::create(b, loc, p, pFrom);
                auto blocks = scf::ForOp::create(
                    b, loc, zero, cs, cIndex(kBcastOuts), ValueRange{accP[0]},
                    [&](OpBuilder &ob, Location, Value o0, ValueRange accB) {
                      OpBuilder::InsertionGuard g2(b);
                      b.setInsertionPointToEnd(ob.getInsertionBlock());
                      SmallVector<Value> outIdx =
                          clampedRange(o0, kBcastOuts, lastOut);
                      Value laneHi = cIndex(kLanes);
                      SmallVector<Value> start;
                      for (int64_t j = 0; j < kBcastOuts; ++j)
                        for (Value lane : {zero, laneHi})
                          start.push_back(vector::TransferReadOp::create(
                              b, loc, f32Vec, accB[0],
                              ValueRange{pl, outIdx[j], lane}, std::nullopt,
                              ArrayRef<bool>{true}));
                      auto steps = scf::ForOp::create(
                          b, loc, k0, k1, one, start,
                          [&](OpBuilder &kb, Location, Value k,
                              ValueRange acc) {
                            OpBuilder::InsertionGuard g3(b);
                            b.setInsertionPointToEnd(kb.getInsertionBlock());
                            Value lo = vector::TransferReadOp::create(
                                b, loc, f32Vec, xT, ValueRange{p, k, zero},
                                std::nullopt, ArrayRef<bool>{true});
                            Value hi = vector::TransferReadOp::create(
                                b, loc, f32Vec, xT, ValueRange{p, k, laneHi},
                                std::nullopt, ArrayRef<bool>{true});
                            Value at = arith::SubIOp::create(b, loc, k, k0);
                            SmallVector<Value> next;
                            for (int64_t j = 0; j < kBcastOuts; ++j) {
                              Value wj = vector::BroadcastOp::create(
                                  b, loc, f32Vec,
                                  extract(wRows, {outIdx[j], at}));
                              next.push_back(vector::FMAOp::create(
                                  b, loc, wj, lo, acc[2 * j]));
                              next.push_back(vector::FMAOp::create(
                                  b, loc, wj, hi, acc[2 * j + 1]));
                            }
                            scf::YieldOp::create(b, loc, next);
                          });
                      // A clamped duplicate output stores the same sums
                      // twice.
                      Value t = accB[0];
                      for (int64_t j = 0; j < kBcastOuts; ++j)
                        for (int64_t v = 0; v < 2; ++v)
                          t = vector::TransferWriteOp::create(
                                  b, loc, steps.getResult(2 * j + v), t,
                                  ValueRange{pl, outIdx[j], v ? laneHi : zero},
                                  ArrayRef<bool>{true})
                                  .getResult();
                      scf::YieldOp::create(b, loc, ValueRange{t});
                    });
                scf::YieldOp::create(b, loc, blocks.getResults());
              });
          scf::YieldOp::create(b, loc,
                               ValueRange{wRows, perPanel.getResult(0)});
        });
    Value panelSums = depth.getResult(1);
    // t[r, o] += sums[panel of r, o, lane of r].
    auto add = scf::ForOp::create(
        b, loc, zero, rowCount, one, ValueRange{tile0},
        [&](OpBuilder &rb, Location, Value r, ValueRange accR) {
          OpBuilder::InsertionGuard g0(b);
          b.setInsertionPointToEnd(rb.getInsertionBlock());
          Value pl = arith::DivUIOp::create(b, loc, r, cIndex(kTileRows));
          Value lane = arith::RemUIOp::create(b, loc, r, cIndex(kTileRows));
          auto outsLoop = scf::ForOp::create(
              b, loc, zero, cs, one, ValueRange{accR[0]},
              [&](OpBuilder &ob, Location, Value o, ValueRange accO) {
                OpBuilder::InsertionGuard g1(b);
                b.setInsertionPointToEnd(ob.getInsertionBlock());
                Value sum =
                    arith::AddFOp::create(b, loc, extract(accO[0], {r, o}),
                                          extract(panelSums, {pl, o, lane}));
                scf::YieldOp::create(b, loc,
                                     ValueRange{insert(sum, accO[0], {r, o})});
              });
          scf::YieldOp::create(b, loc, outsLoop.getResults());
        });
    auto term = cast<scf::InParallelOp>(body->getTerminator());
    b.setInsertionPointToStart(term.getBody());
    tensor::ParallelInsertSliceOp::create(b, loc, add.getResult(0), out,
                                          offsets, sizes, ones);
  }
  return forall.getResult(0);
}

/// One tile of `product` for y[n, c] += sum_r x[n, r] W[r, c] (a low-rank
/// factor U applied as U^T h), as vector code: per token row, kAxpyVecs
/// vectors of kLanes outputs accumulate broadcast x[n, r] times W's row r.
/// Narrow storage (f16, bf16, codes) is widened once per block of outputs
/// into an f32 scratch of (inner, block) that every row of the tile then
/// reads: widening per row cost as much as the axpy itself (INT4 U factors
/// were 7% of default-compression prefill).
Value Lowering::productAxpyVector(Value x, const WeightView &w, Value data,
                                  Value scales, Value zps, Value init,
                                  Value colOffset) {
  auto f32Vec = VectorType::get({kLanes}, f32);
  Value zero = cIndex(0), one = cIndex(1);
  Value rows = tensor::DimOp::create(b, loc, init, 0);
  Value outs = tensor::DimOp::create(b, loc, init, 1);
  Value inner = tensor::DimOp::create(b, loc, x, 1);
  int64_t block = kLanes * kAxpyVecs;
  bool widen = !cast<RankedTensorType>(data.getType()).getElementType().isF32();
  Value blocked = arith::SubIOp::create(
      b, loc, outs, arith::RemUIOp::create(b, loc, outs, cIndex(block)));
  auto columns = [&](Value from, Value to, int64_t vecs,
                     ValueRange carried) -> ValueRange {
    return scf::ForOp::create(
               b, loc, from, to, cIndex(vecs * kLanes), carried,
               [&](OpBuilder &cb, Location, Value c0, ValueRange accC) {
                 OpBuilder::InsertionGuard g0(b);
                 b.setInsertionPointToEnd(cb.getInsertionBlock());
                 SmallVector<Value> cols;
                 for (int64_t j = 0; j < vecs; ++j)
                   cols.push_back(
                       arith::AddIOp::create(b, loc, c0, cIndex(j * kLanes)));
                 // Every vector of the block in one quantisation group (the
                 // tile and the block start at multiples of the block): its
                 // scale and zero point are read once per row of W.
                 QuantAttr q = w.quant;
                 bool oneGroup = q && (q.getGroupSize() == 0 ||
                                       q.getGroupSize() % block == 0);
                 auto widened = [&](Value r) -> SmallVector<Value> {
                   SmallVector<Value> vecs;
                   std::pair<Value, Value> factors;
                   for (Value c : cols)
                     vecs.push_back(loadWeightVector(
                         w, data, scales, zps, r,
                         arith::AddIOp::create(b, loc, colOffset, c),
                         oneGroup ? &factors : nullptr));
                   return vecs;
                 };
                 Value wide = widen ? accC[1] : Value();
                 if (widen)
                   wide =
                       scf::ForOp::create(
                           b, loc, zero, inner, one, ValueRange{wide},
                           [&](OpBuilder &wb, Location, Value r,
                               ValueRange accW) {
                             OpBuilder::InsertionGuard g1(b);
                             b.setInsertionPointToEnd(wb.getInsertionBlock());
                             Value t = accW[0];
                             for (auto [j, v] : llvm::enumerate(widened(r)))
                               t = vector::TransferWriteOp::create(
                                       b, loc, v, t,
                                       ValueRange{r, cIndex(j * kLanes)},
                                       ArrayRef<bool>{true})
                                       .getResult();
                             scf::YieldOp::create(b, loc, ValueRange{t});
                           })
                           .getResult(0);
                 auto weightsAt = [&](Value r) -> SmallVector<Value> {
                   if (!widen)
                     return widened(r);
                   SmallVector<Value> vecs;
                   for (int64_t j = 0; j < int64_t(cols.size()); ++j)
                     vecs.push_back(vector::TransferReadOp::create(
                         b, loc, f32Vec, wide,
                         ValueRange{r, cIndex(j * kLanes)}, std::nullopt,
                         ArrayRef<bool>{true}));
                   return vecs;
                 };
                 auto perRow = scf::ForOp::create(
                     b, loc, zero, rows, one, ValueRange{accC[0]},
                     [&](OpBuilder &rb, Location, Value n, ValueRange accR) {
                       OpBuilder::InsertionGuard g1(b);
                       b.setInsertionPointToEnd(rb.getInsertionBlock());
                       SmallVector<Value> acc;
                       for (Value c : cols)
                         acc.push_back(vector::TransferReadOp::create(
                             b, loc, f32Vec, accR[0], ValueRange{n, c},
                             std::nullopt, ArrayRef<bool>{true}));
                       auto steps = scf::ForOp::create(
                           b, loc, zero, inner, one, acc,
                           [&](OpBuilder &kb, Location, Value r, ValueRange a) {
                             OpBuilder::InsertionGuard g2(b);
                             b.setInsertionPointToEnd(kb.getInsertionBlock());
                             Value h = vector::BroadcastOp::create(
                                 b, loc, f32Vec, extract(x, {n, r}));
                             SmallVector<Value> next;
                             for (auto [j, v] : llvm::enumerate(weightsAt(r)))
                               next.push_back(
                                   vector::FMAOp::create(b, loc, h, v, a[j]));
                             scf::YieldOp::create(b, loc, next);
                           });
                       Value t = accR[0];
                       for (auto [j, c] : llvm::enumerate(cols))
                         t = vector::TransferWriteOp::create(
                                 b, loc, steps.getResult(j), t,
                                 ValueRange{n, c}, ArrayRef<bool>{true})
                                 .getResult();
                       scf::YieldOp::create(b, loc, ValueRange{t});
                     });
                 SmallVector<Value> results{perRow.getResult(0)};
                 if (widen)
                   results.push_back(wide);
                 scf::YieldOp::create(b, loc, results);
               })
        .getResults();
  };
  SmallVector<Value> carried{init};
  if (widen)
    carried.push_back(tensor::EmptyOp::create(
        b, loc, ArrayRef<OpFoldResult>{inner, b.getIndexAttr(block)}, f32));
  ValueRange t = columns(zero, blocked, kAxpyVecs, carried);
  return columns(blocked, outs, 1, t)[0];
}

/// One tile of `product`: a generic over (rows, outputs, reduction) that
/// reads W in its storage form.
Value Lowering::productTile(Value x, const WeightView &w, Value data,
                            Value scales, Value zps, bool reduceCols,
                            Value init) {
  MLIRContext *ctx = b.getContext();
  QuantAttr q = w.quant;
  bool integer = q && (q.getStorage() == QuantStorage::i4 ||
                       q.getStorage() == QuantStorage::i8);
  bool nibbles = q && q.getStorage() == QuantStorage::i4;
  int64_t group = q ? q.getGroupSize() : 0;

  AffineExpr d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx),
             d2 = getAffineDimExpr(2, ctx);
  // W element (r, c): r and c in terms of the loop dims.
  // The innermost loop runs along W's contiguous columns either way:
  // reduceCols: (rows, outputs, reduction) with a reassociated dot product
  // inside; otherwise (rows, reduction, outputs), an axpy along the row of
  // W, which LLVM vectorises as it is.
  AffineExpr r = d1, c = d2;
  SmallVector<AffineMap> maps;
  SmallVector<Value> inputs = {x, data};
  maps.push_back(AffineMap::get(3, 0, {d0, reduceCols ? d2 : d1}, ctx));
  maps.push_back(AffineMap::get(3, 0, {r, nibbles ? c.floorDiv(2) : c}, ctx));
  AffineExpr g = group > 0 ? c.floorDiv(group) : getAffineConstantExpr(0, ctx);
  if (integer) {
    inputs.push_back(scales);
    maps.push_back(AffineMap::get(3, 0, {r, g}, ctx));
    if (zps) {
      inputs.push_back(zps);
      maps.push_back(AffineMap::get(3, 0, {r, g}, ctx));
    }
  }
  maps.push_back(AffineMap::get(3, 0, {d0, reduceCols ? d1 : d2}, ctx));
  bool symmetric = !zps;
  int64_t bits = nibbles ? 4 : 8;
  bool highFirst = q && q.getPacking() == NibbleOrder::high_nibble_first;
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
             {utils::IteratorType::parallel,
              reduceCols ? utils::IteratorType::parallel
                         : utils::IteratorType::reduction,
              reduceCols ? utils::IteratorType::reduction
                         : utils::IteratorType::parallel},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value xv = args[0];
               Value wv = args[1];
               Type ft = nb.getF32Type();
               if (integer) {
                 Type i32 = nb.getI32Type();
                 Value byte = arith::ExtUIOp::create(nb, nl, i32, wv);
                 if (nibbles) {
                   Value cIdx = linalg::IndexOp::create(nb, nl, 2);
                   Value odd = arith::IndexCastOp::create(
                       nb, nl, i32,
                       arith::RemUIOp::create(
                           nb, nl, cIdx,
                           arith::ConstantIndexOp::create(nb, nl, 2)));
                   if (highFirst)
                     odd = arith::XOrIOp::create(
                         nb, nl, odd,
                         arith::ConstantIntOp::create(nb, nl, i32, 1));
                   Value shift = arith::MulIOp::create(
                       nb, nl, odd,
                       arith::ConstantIntOp::create(nb, nl, i32, 4));
                   byte = arith::AndIOp::create(
                       nb, nl, arith::ShRUIOp::create(nb, nl, byte, shift),
                       arith::ConstantIntOp::create(nb, nl, i32, 15));
                 }
                 Value code = arith::UIToFPOp::create(nb, nl, ft, byte);
                 Value zp;
                 if (symmetric) {
                   zp = arith::ConstantFloatOp::create(
                       nb, nl, cast<FloatType>(ft),
                       APFloat(float(1 << (bits - 1))));
                 } else if (isa<FloatType>(args[3].getType())) {
                   zp = args[3].getType() == ft
                            ? args[3]
                            : arith::ExtFOp::create(nb, nl, ft, args[3]);
                 } else {
                   zp = arith::UIToFPOp::create(
                       nb, nl, ft,
                       arith::ExtUIOp::create(nb, nl, i32, args[3]));
                 }
                 Value scale = args[2].getType() == ft
                                   ? args[2]
                                   : arith::ExtFOp::create(nb, nl, ft, args[2]);
                 wv = arith::MulFOp::create(
                     nb, nl, arith::SubFOp::create(nb, nl, code, zp), scale);
               } else if (wv.getType() != ft) {
                 wv = arith::ExtFOp::create(nb, nl, ft, wv);
               }
               Value acc = args.back();
               // Reassociation lets LLVM vectorise the reduction over
               // the contiguous inner axis.
               auto fm = arith::FastMathFlags::reassoc |
                         arith::FastMathFlags::contract;
               Value prod = arith::MulFOp::create(nb, nl, xv, wv, fm);
               linalg::YieldOp::create(
                   nb, nl,
                   ValueRange{arith::AddFOp::create(nb, nl, acc, prod, fm)});
             })
      .getResult(0);
}

/// An (rows, width) accumulator: the bias row of `expert` broadcast, or
/// zeros; products then accumulate onto it.
Value Lowering::biasInit(Value biasStack, Value expert, Value rows,
                         int64_t width) {
  OpFoldResult sizes[] = {rows, b.getIndexAttr(width)};
  if (!biasStack)
    return filled(sizes, f32, cF32(0.0));
  MLIRContext *ctx = b.getContext();
  auto type = cast<RankedTensorType>(biasStack.getType());
  OpFoldResult offsets[] = {expert, b.getIndexAttr(0)};
  OpFoldResult rowSizes[] = {b.getIndexAttr(1), b.getIndexAttr(width)};
  OpFoldResult strides[] = {b.getIndexAttr(1), b.getIndexAttr(1)};
  Value row = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({width}, type.getElementType()), biasStack,
      offsets, rowSizes, strides);
  Value empty = tensor::EmptyOp::create(b, loc, sizes, f32);
  AffineMap maps[] = {AffineMap::get(2, 0, {getAffineDimExpr(1, ctx)}, ctx),
                      AffineMap::getMultiDimIdentityMap(2, ctx)};
  return linalg::GenericOp::create(
             b, loc, TypeRange{empty.getType()}, ValueRange{row},
             ValueRange{empty}, maps,
             {utils::IteratorType::parallel, utils::IteratorType::parallel},
             [](OpBuilder &nb, Location nl, ValueRange args) {
               Value v = args[0];
               if (v.getType() != args[1].getType())
                 v = arith::ExtFOp::create(nb, nl, args[1].getType(), v);
               linalg::YieldOp::create(nb, nl, ValueRange{v});
             })
      .getResult(0);
}

/// Adds the bias row of `expert` to `acc` (a fresh tensor, updated in
/// place).
Value Lowering::addBias(Value acc, Value biasStack, Value expert) {
  if (!biasStack)
    return acc;
  Value rows = tensor::DimOp::create(b, loc, acc, 0);
  int64_t width = cast<RankedTensorType>(acc.getType()).getDimSize(1);
  Value bias = biasInit(biasStack, expert, rows, width);
  MLIRContext *ctx = b.getContext();
  AffineMap id = AffineMap::getMultiDimIdentityMap(2, ctx);
  return linalg::GenericOp::create(
             b, loc, TypeRange{acc.getType()}, ValueRange{bias},
             ValueRange{acc}, ArrayRef<AffineMap>{id, id},
             {utils::IteratorType::parallel, utils::IteratorType::parallel},
             [](OpBuilder &nb, Location nl, ValueRange args) {
               linalg::YieldOp::create(
                   nb, nl,
                   ValueRange{arith::AddFOp::create(nb, nl, args[0], args[1])});
             })
      .getResult(0);
}

/// A (rows, width) tensor computed by tiles of kTileRows rows, one task of
/// the runtime's pool each: tile(first row, row count) gives one tile. The
/// elementwise and gather steps between the products would otherwise run
/// on one thread (Amdahl's share: 16-core prefill was 2.2x the 2-core one).
Value Lowering::byRowTiles(
    Value rows, int64_t width,
    function_ref<Value(Value, Value, Value, Value)> tile) {
  OpFoldResult sizes[] = {rows, b.getIndexAttr(width)};
  Value init = tensor::EmptyOp::create(b, loc, sizes, f32);
  OpFoldResult tasks[] = {
      arith::CeilDivUIOp::create(b, loc, rows, cIndex(kTileRows)).getResult(),
      b.getIndexAttr((width + kTileCols - 1) / kTileCols)};
  auto forall =
      scf::ForallOp::create(b, loc, tasks, ValueRange{init}, std::nullopt);
  Block *body = forall.getBody();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(body);
  Value r0 =
      arith::MulIOp::create(b, loc, body->getArgument(0), cIndex(kTileRows));
  Value rs = arith::MinUIOp::create(b, loc, cIndex(kTileRows),
                                    arith::SubIOp::create(b, loc, rows, r0));
  Value c0 =
      arith::MulIOp::create(b, loc, body->getArgument(1), cIndex(kTileCols));
  Value cs =
      arith::MinUIOp::create(b, loc, cIndex(kTileCols),
                             arith::SubIOp::create(b, loc, cIndex(width), c0));
  Value t = tile(r0, rs, c0, cs);
  auto term = cast<scf::InParallelOp>(body->getTerminator());
  b.setInsertionPointToStart(term.getBody());
  SmallVector<OpFoldResult> offsets = {r0, c0}, tileSizes = {rs, cs},
                            ones(2, b.getIndexAttr(1));
  tensor::ParallelInsertSliceOp::create(b, loc, t, body->getArguments().back(),
                                        offsets, tileSizes, ones);
  return forall.getResult(0);
}

/// h = act(g) * u (GLU) or act(u); elementwise, into a fresh tensor (the
/// operands may be shared cluster products), by row tiles.
Value Lowering::activate(Value g, Value u) {
  return byRowTiles(tensor::DimOp::create(b, loc, u, 0), m.inter,
                    [&](Value r0, Value rs, Value c0, Value cs) {
                      return activateRows(g ? sliceTile(g, r0, rs, c0, cs)
                                            : Value(),
                                          sliceTile(u, r0, rs, c0, cs));
                    });
}

/// activate's tile: one elementwise generic.
Value Lowering::activateRows(Value g, Value u) {
  MLIRContext *ctx = b.getContext();
  ActivationAttr act = m.activation;
  SmallVector<Value> inputs;
  if (g)
    inputs.push_back(g);
  inputs.push_back(u);
  AffineMap id = AffineMap::getMultiDimIdentityMap(2, ctx);
  SmallVector<AffineMap> maps(inputs.size() + 1, id);
  OpFoldResult sizes[] = {tensor::DimOp::create(b, loc, u, 0).getResult(),
                          tensor::DimOp::create(b, loc, u, 1).getResult()};
  Value out = tensor::EmptyOp::create(b, loc, sizes, f32);
  return linalg::GenericOp::create(
             b, loc, TypeRange{out.getType()}, inputs, ValueRange{out}, maps,
             {utils::IteratorType::parallel, utils::IteratorType::parallel},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Type ft = nb.getF32Type();
               auto c = [&](double v) -> Value {
                 return arith::ConstantFloatOp::create(
                     nb, nl, cast<FloatType>(ft), APFloat(float(v)));
               };
               auto sigmoid = [&](Value v) -> Value {
                 Value e = math::ExpOp::create(
                     nb, nl, arith::NegFOp::create(nb, nl, v));
                 return arith::DivFOp::create(
                     nb, nl, c(1.0), arith::AddFOp::create(nb, nl, c(1.0), e));
               };
               Value a = args[0];
               Value lin = g ? args[1] : Value();
               Value h;
               switch (act.getKind()) {
               case ActivationKind::identity:
                 h = a;
                 break;
               case ActivationKind::relu:
                 h = arith::MaximumFOp::create(nb, nl, a, c(0.0));
                 break;
               case ActivationKind::silu:
                 h = arith::MulFOp::create(nb, nl, a, sigmoid(a));
                 break;
               case ActivationKind::gelu: {
                 Value s = math::ErfOp::create(
                     nb, nl, arith::MulFOp::create(nb, nl, a, c(M_SQRT1_2)));
                 h = arith::MulFOp::create(
                     nb, nl, arith::MulFOp::create(nb, nl, a, c(0.5)),
                     arith::AddFOp::create(nb, nl, s, c(1.0)));
                 break;
               }
               case ActivationKind::gelu_tanh: {
                 Value cube = arith::MulFOp::create(
                     nb, nl, arith::MulFOp::create(nb, nl, a, a), a);
                 Value inner = arith::MulFOp::create(
                     nb, nl,
                     arith::AddFOp::create(
                         nb, nl, a,
                         arith::MulFOp::create(nb, nl, cube, c(0.044715))),
                     c(std::sqrt(2.0 / M_PI)));
                 h = arith::MulFOp::create(
                     nb, nl, arith::MulFOp::create(nb, nl, a, c(0.5)),
                     arith::AddFOp::create(
                         nb, nl, math::TanhOp::create(nb, nl, inner), c(1.0)));
                 break;
               }
               case ActivationKind::swiglu: {
                 double alpha = act.getAlpha().convertToDouble();
                 double beta = act.getBeta().convertToDouble();
                 Value gg = a, l = lin;
                 if (act.getLimit()) {
                   double lim = act.getLimit()->getValueAsDouble();
                   gg = arith::MinimumFOp::create(nb, nl, gg, c(lim));
                   l = arith::MaximumFOp::create(
                       nb, nl, arith::MinimumFOp::create(nb, nl, l, c(lim)),
                       c(-lim));
                 }
                 Value s = sigmoid(arith::MulFOp::create(nb, nl, gg, c(alpha)));
                 h = arith::MulFOp::create(
                     nb, nl, arith::MulFOp::create(nb, nl, gg, s),
                     arith::AddFOp::create(nb, nl, l, c(beta)));
                 lin = Value();
                 break;
               }
               }
               if (lin)
                 h = arith::MulFOp::create(nb, nl, h, lin);
               linalg::YieldOp::create(nb, nl, ValueRange{h});
             })
      .getResult(0);
}

/// part[i, :] * list[offset + i]: each row by its routing weight.
Value Lowering::scaleRows(Value part, Value list, Value offset) {
  MLIRContext *ctx = b.getContext();
  AffineMap maps[] = {AffineMap::getMultiDimIdentityMap(2, ctx)};
  return linalg::GenericOp::create(
             b, loc, TypeRange{part.getType()}, ValueRange{}, ValueRange{part},
             maps,
             {utils::IteratorType::parallel, utils::IteratorType::parallel},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value i = linalg::IndexOp::create(nb, nl, 0);
               Value at = arith::AddIOp::create(nb, nl, i, offset);
               Value w =
                   tensor::ExtractOp::create(nb, nl, list, ValueRange{at});
               linalg::YieldOp::create(
                   nb, nl,
                   ValueRange{arith::MulFOp::create(nb, nl, args[0], w)});
             })
      .getResult(0);
}

/// rows `count` of `source` (n, H) picked by list[offset + i], by row
/// tiles.
Value Lowering::gatherRows(Value source, Value list, Value offset,
                           Value count) {
  int64_t width = cast<RankedTensorType>(source.getType()).getDimSize(1);
  return byRowTiles(count, width, [&](Value r0, Value rs, Value c0, Value cs) {
    return gatherRowsSerial(
        source, list, arith::AddIOp::create(b, loc, offset, r0), rs, c0, cs);
  });
}

/// gatherRows' tile: one generic.
Value Lowering::gatherRowsSerial(Value source, Value list, Value offset,
                                 Value count, Value c0, Value cs) {
  MLIRContext *ctx = b.getContext();
  auto type = cast<RankedTensorType>(source.getType());
  source = sliceTile(source, cIndex(0),
                     tensor::DimOp::create(b, loc, source, 0), c0, cs);
  OpFoldResult sizes[] = {count, cs};
  Value empty = tensor::EmptyOp::create(b, loc, sizes, type.getElementType());
  AffineMap maps[] = {AffineMap::getMultiDimIdentityMap(2, ctx)};
  return linalg::GenericOp::create(
             b, loc, TypeRange{empty.getType()}, ValueRange{},
             ValueRange{empty}, maps,
             {utils::IteratorType::parallel, utils::IteratorType::parallel},
             [&](OpBuilder &nb, Location nl, ValueRange) {
               Value i = linalg::IndexOp::create(nb, nl, 0);
               Value h = linalg::IndexOp::create(nb, nl, 1);
               Value at = arith::AddIOp::create(nb, nl, i, offset);
               Value row = arith::IndexCastOp::create(
                   nb, nl, nb.getIndexType(),
                   tensor::ExtractOp::create(nb, nl, list, ValueRange{at}));
               linalg::YieldOp::create(
                   nb, nl,
                   ValueRange{tensor::ExtractOp::create(nb, nl, source,
                                                        ValueRange{row, h})});
             })
      .getResult(0);
}

/// dst[list[offset + i]] += w_i * src[i] for i < count, w_i =
/// weights[offset + i] (1 without weights). The listed rows are distinct
/// (a token once per expert or cluster), but not contiguous, so tasks of
/// the runtime's pool split the columns: each owns a column block of every
/// row, kLanes columns at a time when the rows are whole vectors.
Value Lowering::scatterAddRows(Value dst, Value src, Value list, Value offset,
                               Value count, Value weights) {
  int64_t width = cast<RankedTensorType>(src.getType()).getDimSize(1);
  int64_t lanes = width % kLanes == 0 ? kLanes : 1;
  int64_t block = lanes > 1 ? kScatterCols : width;
  auto vecType = VectorType::get({lanes}, f32);
  Value dstRows = tensor::DimOp::create(b, loc, dst, 0);
  OpFoldResult tasks[] = {b.getIndexAttr((width + block - 1) / block)};
  auto forall =
      scf::ForallOp::create(b, loc, tasks, ValueRange{dst}, std::nullopt);
  Block *body = forall.getBody();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(body);
  Value c0 = arith::MulIOp::create(b, loc, body->getArgument(0), cIndex(block));
  Value cs = arith::MinUIOp::create(
      b, loc, cIndex(block), arith::SubIOp::create(b, loc, cIndex(width), c0));
  SmallVector<OpFoldResult> offsets = {b.getIndexAttr(0), c0},
                            sizes = {dstRows, cs}, ones(2, b.getIndexAttr(1));
  Value part = tensor::ExtractSliceOp::create(
      b, loc, body->getArguments().back(), offsets, sizes, ones);
  auto rowsLoop = scf::ForOp::create(
      b, loc, cIndex(0), count, cIndex(1), ValueRange{part},
      [&](OpBuilder &sb, Location, Value i, ValueRange ds) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToEnd(sb.getInsertionBlock());
        Value at = arith::AddIOp::create(b, loc, i, offset);
        Value row = toIndex(extract(list, {at}));
        Value w = weights ? extract(weights, {at}) : Value();
        Value wv =
            w && lanes > 1
                ? vector::BroadcastOp::create(b, loc, vecType, w).getResult()
                : w;
        auto cols = scf::ForOp::create(
            b, loc, cIndex(0), cs, cIndex(lanes), ValueRange{ds[0]},
            [&](OpBuilder &hb, Location, Value h, ValueRange dd) {
              OpBuilder::InsertionGuard g2(b);
              b.setInsertionPointToEnd(hb.getInsertionBlock());
              Value col = arith::AddIOp::create(b, loc, c0, h);
              Value next;
              if (lanes > 1) {
                auto read = [&](Value t, Value r, Value c) -> Value {
                  return vector::TransferReadOp::create(
                      b, loc, vecType, t, ValueRange{r, c}, std::nullopt,
                      ArrayRef<bool>{true});
                };
                Value add = read(src, i, col);
                Value cur = read(dd[0], row, h);
                Value sum =
                    wv ? vector::FMAOp::create(b, loc, wv, add, cur).getResult()
                       : arith::AddFOp::create(b, loc, cur, add).getResult();
                next = vector::TransferWriteOp::create(b, loc, sum, dd[0],
                                                       ValueRange{row, h},
                                                       ArrayRef<bool>{true})
                           .getResult();
              } else {
                Value add = extract(src, {i, col});
                if (w)
                  add = arith::MulFOp::create(b, loc, w, add);
                Value sum = arith::AddFOp::create(
                    b, loc, extract(dd[0], {row, h}), add);
                next = insert(sum, dd[0], {row, h});
              }
              scf::YieldOp::create(b, loc, ValueRange{next});
            });
        scf::YieldOp::create(b, loc, cols.getResults());
      });
  auto term = cast<scf::InParallelOp>(body->getTerminator());
  b.setInsertionPointToStart(term.getBody());
  tensor::ParallelInsertSliceOp::create(b, loc, rowsLoop.getResult(0),
                                        body->getArguments().back(), offsets,
                                        sizes, ones);
  return forall.getResult(0);
}

FailureOr<Value> Lowering::run() {
  auto tokensType = cast<RankedTensorType>(m.tokens.getType());
  tokenCount = tensor::DimOp::create(b, loc, m.tokens, 0);
  Value zero = cIndex(0), one = cIndex(1);
  int64_t k = m.topK;
  bool weightsOnInput = m.routing.getWeightsOnInput();

  if (tokensHook)
    callHook(tokensHook, m.tokens, m.hidden);
  assignTable = constI64Table(m.assignment);
  Value logits = routerLogits();
  Value selected, weights;
  routeTokens(logits, selected, weights);
  if (routingHook)
    callHook(routingHook, selected, k);

  // Dispatch. For assignment (t, j): its cluster c, its position within
  // c's token list (a token that picks two experts of one cluster appears
  // once), and its slot within its expert's list.
  Value assign = assignTable;
  Value pairs = arith::MulIOp::create(b, loc, tokenCount, cIndex(k));
  OpFoldResult gSize[] = {b.getIndexAttr(m.clusters + 1)};
  OpFoldResult eSize[] = {b.getIndexAttr(m.experts + 1)};
  Value zeroI64 = cI64(0);
  Value clusterCount = filled(gSize, i64, zeroI64);
  Value expertCount = filled(eSize, i64, zeroI64);
  OpFoldResult pairSize[] = {pairs};
  Value firstOfCluster = tensor::EmptyOp::create(b, loc, pairSize, i64);
  // Pass 1: counts; firstOfCluster[t*k+j] = 1 when no earlier slot of t
  // picked the same cluster.
  auto counting = scf::ForOp::create(
      b, loc, zero, tokenCount, one,
      ValueRange{clusterCount, expertCount, firstOfCluster},
      [&](OpBuilder &ob, Location, Value t, ValueRange acc) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToEnd(ob.getInsertionBlock());
        Value cc = acc[0], ec = acc[1], first = acc[2];
        SmallVector<Value> clustersOf;
        for (int64_t j = 0; j < k; ++j) {
          Value e = toIndex(extract(selected, {t, cIndex(j)}));
          Value c = toIndex(extract(assign, {e}));
          Value isNew = arith::ConstantIntOp::create(b, loc, 1, 1);
          for (Value prev : clustersOf)
            isNew = arith::AndIOp::create(
                b, loc, isNew,
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, prev,
                                      c));
          clustersOf.push_back(c);
          Value inc = arith::ExtUIOp::create(b, loc, i64, isNew);
          cc = insert(arith::AddIOp::create(b, loc, extract(cc, {c}), inc), cc,
                      {c});
          ec = insert(arith::AddIOp::create(b, loc, extract(ec, {e}), cI64(1)),
                      ec, {e});
          Value at = arith::AddIOp::create(
              b, loc, arith::MulIOp::create(b, loc, t, cIndex(k)), cIndex(j));
          first = insert(inc, first, {at});
        }
        scf::YieldOp::create(b, loc, ValueRange{cc, ec, first});
      });
  // Exclusive prefix sums, in place: entry n becomes the total.
  auto prefix = [&](Value counts, int64_t n) {
    auto loop = scf::ForOp::create(
        b, loc, zero, cIndex(n + 1), one, ValueRange{counts, zeroI64},
        [&](OpBuilder &ob, Location, Value i, ValueRange acc) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToEnd(ob.getInsertionBlock());
          Value c = extract(acc[0], {i});
          Value t = insert(acc[1], acc[0], {i});
          scf::YieldOp::create(
              b, loc, ValueRange{t, arith::AddIOp::create(b, loc, acc[1], c)});
        });
    return loop.getResult(0);
  };
  Value clusterOffset = prefix(counting.getResult(0), m.clusters);
  Value expertOffset = prefix(counting.getResult(1), m.experts);
  firstOfCluster = counting.getResult(2);

  // Pass 2: fill the lists. clusterRows: token ids per cluster; expert
  // lists: position within the cluster list, token id, routing weight.
  Value clusterCursor = clusterOffset, expertCursor = expertOffset;
  Value clusterRows = tensor::EmptyOp::create(b, loc, pairSize, i64);
  Value expertPos = tensor::EmptyOp::create(b, loc, pairSize, i64);
  Value expertTok = tensor::EmptyOp::create(b, loc, pairSize, i64);
  Value expertW = tensor::EmptyOp::create(b, loc, pairSize, f32);
  auto filling = scf::ForOp::create(
      b, loc, zero, tokenCount, one,
      ValueRange{clusterCursor, expertCursor, clusterRows, expertPos, expertTok,
                 expertW},
      [&](OpBuilder &ob, Location, Value t, ValueRange acc) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToEnd(ob.getInsertionBlock());
        Value cc = acc[0], ec = acc[1], rows = acc[2], pos = acc[3],
              tok = acc[4], wl = acc[5];
        Value tI64 = toI64(t);
        SmallVector<std::pair<Value, Value>> seen; // (cluster, position)
        for (int64_t j = 0; j < k; ++j) {
          Value jj = cIndex(j);
          Value e = toIndex(extract(selected, {t, jj}));
          Value c = toIndex(extract(assign, {e}));
          Value at = arith::AddIOp::create(
              b, loc, arith::MulIOp::create(b, loc, t, cIndex(k)), jj);
          Value isNew =
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                    extract(firstOfCluster, {at}), zeroI64);
          // Position of t in c's list: new slot, or the earlier slot's.
          Value cursor = extract(cc, {c});
          Value p = cursor;
          for (auto [pc, pp] : seen) {
            Value same =
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, pc, c);
            p = arith::SelectOp::create(b, loc, same, pp, p);
          }
          seen.push_back({c, p});
          // Rewriting t at an earlier slot's position changes nothing, so
          // both cases write; only a new entry moves the cursor.
          rows = insert(tI64, rows, {toIndex(p)});
          cc = insert(
              arith::AddIOp::create(b, loc, cursor,
                                    arith::ExtUIOp::create(b, loc, i64, isNew)),
              cc, {c});
          // Expert list entry.
          Value ecur = extract(ec, {e});
          Value slot = toIndex(ecur);
          Value clusterStart = extract(clusterOffset, {c});
          pos = insert(arith::SubIOp::create(b, loc, p, clusterStart), pos,
                       {slot});
          tok = insert(tI64, tok, {slot});
          wl = insert(extract(weights, {t, jj}), wl, {slot});
          ec = insert(arith::AddIOp::create(b, loc, ecur, cI64(1)), ec, {e});
        }
        scf::YieldOp::create(b, loc, ValueRange{cc, ec, rows, pos, tok, wl});
      });
  clusterRows = filling.getResult(2);
  expertPos = filling.getResult(3);
  expertTok = filling.getResult(4);
  expertW = filling.getResult(5);

  // Members of each cluster, as a static table.
  SmallVector<int64_t> memberStart(m.clusters + 1, 0), members;
  for (int64_t c = 0; c < m.clusters; ++c) {
    for (int64_t e = 0; e < m.experts; ++e)
      if (m.assignment[e] == c)
        members.push_back(e);
    memberStart[c + 1] = members.size();
  }
  Value memberStartT = constI64Table(memberStart);
  Value membersT = constI64Table(members);
  SmallVector<int64_t> present;
  for (bool a : m.absent)
    present.push_back(a ? 0 : 1);
  Value presentT = constI64Table(present);
  SmallVector<int64_t> rankOffset[3];
  Value rankTable[3], rankOffsetTable[3];
  int64_t maxRank[3] = {0, 0, 0};
  for (int kind = 0; kind < 3; ++kind) {
    int64_t running = 0;
    for (int64_t r : m.ranks[kind]) {
      rankOffset[kind].push_back(running);
      running += r;
    }
    rankTable[kind] = constI64Table(m.ranks[kind]);
    maxRank[kind] = *llvm::max_element(m.ranks[kind]);
    rankOffsetTable[kind] = constI64Table(rankOffset[kind]);
  }

  OpFoldResult ySizes[] = {tokenCount, b.getIndexAttr(m.hidden)};
  Value y = filled(ySizes, f32, cF32(0.0));
  auto clusterLoop = scf::ForOp::create(
      b, loc, zero, cIndex(m.clusters), one, ValueRange{y},
      [&](OpBuilder &ob, Location, Value c, ValueRange acc) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToEnd(ob.getInsertionBlock());
        Value cStart = toIndex(extract(clusterOffset, {c}));
        Value cEnd = toIndex(
            extract(clusterOffset, {arith::AddIOp::create(b, loc, c, one)}));
        Value nc = arith::SubIOp::create(b, loc, cEnd, cStart);
        Value any =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, nc, zero);
        auto ifOp = scf::IfOp::create(
            b, loc, any,
            [&](OpBuilder &tb, Location) {
              OpBuilder::InsertionGuard g2(b);
              b.setInsertionPointToEnd(tb.getInsertionBlock());
              Value xc = gatherRows(m.tokens, clusterRows, cStart, nc);
              // Base products of gate and up, once per (token, cluster).
              OpFoldResult interSizes[] = {nc, b.getIndexAttr(m.inter)};
              Value baseProd[2];
              for (int kind = 0; kind < 2; ++kind) {
                if (!m.base[kind])
                  continue;
                // In a plain layer the cluster is the expert: its bias
                // seeds the product.
                Value init = m.plain ? biasInit(m.bias[kind], c, nc, m.inter)
                                     : filled(interSizes, f32, cF32(0.0));
                baseProd[kind] =
                    product(xc, *m.base[kind], c, Value(), Value(), true, init);
              }
              Value mStart = toIndex(extract(memberStartT, {c}));
              Value mEnd = toIndex(extract(
                  memberStartT, {arith::AddIOp::create(b, loc, c, one)}));
              // Clustered: the down base is shared too. Its product is
              // linear, so sum_e w_e B h_e = B (sum_e w_e h_e): the members
              // add their weighted h into the cluster's rows, and one base
              // product per (token, cluster) follows the member loop (a
              // token with two experts in the cluster pays one, not two).
              SmallVector<Value> carried = {acc[0]};
              if (!m.plain)
                carried.push_back(filled(interSizes, f32, cF32(0.0)));
              auto memberLoop = scf::ForOp::create(
                  b, loc, mStart, mEnd, one, carried,
                  [&](OpBuilder &mb, Location, Value mi, ValueRange yAcc) {
                    OpBuilder::InsertionGuard g3(b);
                    b.setInsertionPointToEnd(mb.getInsertionBlock());
                    Value e = toIndex(extract(membersT, {mi}));
                    Value eStart = toIndex(extract(expertOffset, {e}));
                    Value eEnd = toIndex(extract(
                        expertOffset, {arith::AddIOp::create(b, loc, e, one)}));
                    Value ne = arith::SubIOp::create(b, loc, eEnd, eStart);
                    Value live = arith::AndIOp::create(
                        b, loc,
                        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt,
                                              ne, zero),
                        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                              extract(presentT, {e}), zeroI64));
                    auto exp = scf::IfOp::create(
                        b, loc, live,
                        [&](OpBuilder &eb, Location) {
                          OpBuilder::InsertionGuard g4(b);
                          b.setInsertionPointToEnd(eb.getInsertionBlock());
                          // The expert's rows of the cluster products (all
                          // of them in a plain layer: same order).
                          Value xe =
                              m.plain ? xc
                                      : gatherRows(xc, expertPos, eStart, ne);
                          Value parts[2];
                          for (int kind = 0; kind < 2; ++kind) {
                            if (!m.base[kind])
                              continue;
                            Value part =
                                m.plain ? baseProd[kind]
                                        : gatherRows(baseProd[kind], expertPos,
                                                     eStart, ne);
                            if (!m.plain) {
                              // + U^T (V x), when the expert has a rank.
                              Value rank =
                                  toIndex(extract(rankTable[kind], {e}));
                              Value off =
                                  toIndex(extract(rankOffsetTable[kind], {e}));
                              OpFoldResult rs[] = {ne, rank};
                              Value vx = product(
                                  xe, *m.v[kind], Value(), off, rank, true,
                                  filled(rs, f32, cF32(0.0)), maxRank[kind]);
                              part = product(vx, *m.u[kind], Value(), off, rank,
                                             false, part);
                            }
                            parts[kind] =
                                m.plain ? part : addBias(part, m.bias[kind], e);
                            // weights_on_input: expert(w x) scales the
                            // (bias-free, so linear) gate and up products.
                            if (weightsOnInput)
                              parts[kind] =
                                  scaleRows(parts[kind], expertW, eStart);
                          }
                          Value h = activate(parts[0], parts[1]);
                          Value w = weightsOnInput ? Value() : expertW;
                          if (!m.plain) {
                            // Its share of the cluster's down rows, then
                            // its residual and bias straight into y.
                            Value hsum = scatterAddRows(yAcc[1], h, expertPos,
                                                        eStart, ne, w);
                            Value rank = toIndex(extract(rankTable[2], {e}));
                            Value off =
                                toIndex(extract(rankOffsetTable[2], {e}));
                            OpFoldResult rs[] = {ne, rank};
                            Value vh =
                                product(h, *m.v[2], Value(), off, rank, true,
                                        filled(rs, f32, cF32(0.0)), maxRank[2]);
                            Value o =
                                product(vh, *m.u[2], Value(), off, rank, false,
                                        biasInit(m.bias[2], e, ne, m.hidden));
                            Value yNext = scatterAddRows(yAcc[0], o, expertTok,
                                                         eStart, ne, w);
                            scf::YieldOp::create(b, loc,
                                                 ValueRange{yNext, hsum});
                            return;
                          }
                          Value o = product(
                              h, *m.base[2], toIndex(extract(assign, {e})),
                              Value(), Value(), true,
                              biasInit(m.bias[2], e, ne, m.hidden));
                          // y[token] += w * o[i] (o[i] when the weight
                          // went to the input), row by row.
                          scf::YieldOp::create(
                              b, loc,
                              ValueRange{scatterAddRows(yAcc[0], o, expertTok,
                                                        eStart, ne, w)});
                        },
                        [&](OpBuilder &eb, Location) {
                          OpBuilder::InsertionGuard g4(b);
                          b.setInsertionPointToEnd(eb.getInsertionBlock());
                          scf::YieldOp::create(b, loc, yAcc);
                        });
                    scf::YieldOp::create(b, loc, exp.getResults());
                  });
              Value yc = memberLoop.getResult(0);
              if (!m.plain) {
                OpFoldResult outSizes[] = {nc, b.getIndexAttr(m.hidden)};
                Value down =
                    product(memberLoop.getResult(1), *m.base[2], c, Value(),
                            Value(), true, filled(outSizes, f32, cF32(0.0)));
                yc = scatterAddRows(yc, down, clusterRows, cStart, nc, Value());
              }
              scf::YieldOp::create(b, loc, ValueRange{yc});
            },
            [&](OpBuilder &eb, Location) {
              OpBuilder::InsertionGuard g2(b);
              b.setInsertionPointToEnd(eb.getInsertionBlock());
              scf::YieldOp::create(b, loc, acc);
            });
        scf::YieldOp::create(b, loc, ifOp.getResults());
      });
  Value result = clusterLoop.getResult(0);
  if (result.getType() != tokensType)
    result = tensor::CastOp::create(b, loc, tokensType, result);
  return result;
}

struct ConvertMoeToLinalgPass
    : public moe::impl::ConvertMoeToLinalgPassBase<ConvertMoeToLinalgPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<Operation *> layers;
    module.walk([&](Operation *op) {
      if (isa<LayerOp, ClusteredLayerOp>(op))
        layers.push_back(op);
    });
    // Hooks take (layer, pointer, rows, columns), all as i64.
    auto declareHook = [&](bool wanted, StringRef name) -> func::FuncOp {
      if (!wanted || layers.empty())
        return {};
      if (auto f = module.lookupSymbol<func::FuncOp>(name))
        return f;
      OpBuilder mb = OpBuilder::atBlockBegin(module.getBody());
      Type i64 = mb.getI64Type();
      auto f =
          func::FuncOp::create(mb, module.getLoc(), name,
                               mb.getFunctionType({i64, i64, i64, i64}, {}));
      f.setPrivate();
      return f;
    };
    func::FuncOp hook = declareHook(recordRouting, "moe_rt_record_routing");
    func::FuncOp tokensHook = declareHook(recordTokens, "moe_rt_record_tokens");
    for (auto [index, op] : llvm::enumerate(layers)) {
      auto tokens = cast<RankedTensorType>(op->getOperand(0).getType());
      if (!tokens.getElementType().isF32()) {
        op->emitError() << op->getName()
                        << ": the CPU lowering takes float32 tokens, got "
                        << tokens.getElementType();
        return signalPassFailure();
      }
      if (auto c = dyn_cast<ClusteredLayerOp>(op)) {
        if (c.getClusterRouting().getMode() ==
                ClusterRoutingMode::hierarchical &&
            (c.getSelectionBias() || c.getRouting().getGroups() > 1)) {
          op->emitOpError() << "hierarchical cluster routing of a "
                               "group-limited or selection-biased layer is "
                               "not supported";
          return signalPassFailure();
        }
      }
      Model model = isa<LayerOp>(op) ? modelOf(cast<LayerOp>(op))
                                     : modelOf(cast<ClusteredLayerOp>(op));
      OpBuilder b(op);
      FailureOr<Value> result =
          Lowering(b, model, index, hook, tokensHook).run();
      if (failed(result))
        return signalPassFailure();
      op->getResult(0).replaceAllUsesWith(*result);
      op->erase();
    }
    // Quantised weights are read in place by the products.
    module.walk([&](QuantizedWeightOp q) {
      if (q->use_empty())
        q->erase();
    });
  }
};

} // namespace
