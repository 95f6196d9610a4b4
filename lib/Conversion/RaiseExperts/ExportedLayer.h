//===- ExportedLayer.h - Router and layer of an exported MoE ----*- C++ -*-===//
//
// Whatever form an exporter gives the experts (an unrolled loop, every
// expert on every token), the router and the final moe.layer are the same:
// proving that routing weights and expert ids come from one top-k over one
// router, and stacking per-expert weights into moe.layer's layout.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_EXPORTEDLAYER_H
#define MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_EXPORTEDLAYER_H

#include "MatchSupport.h"
#include "RaiseExperts.h"

namespace mlir::moe::raise {

struct RouterMatch {
  /// The TopK that picks the experts (null for sparsemixer's argmaxes) and
  /// the (T, k) expert ids.
  Operation *topk = nullptr;
  Value ids;
  Value tokens;
  Linear router;
  int64_t experts = 0, k = 0;
  Scoring scoring = Scoring::softmax;
  RoutingOrder order = RoutingOrder::score_then_topk;
  bool normalize = false;
  // The parameters of #moe.routing beyond Mixtral's router.
  int64_t groups = 1, groupsKept = 1;
  double scale = 1.0, normEpsilon = 0.0, normFloor = 0.0, mixerEpsilon = 0.0;
  bool weightsOnInput = false;
  std::optional<Bytes> selectionBias;

  RoutingAttr attr(MLIRContext *ctx) const;
};

/// Proves that `weights` (T, k) are the routing weights and `selected`
/// (T, k) the expert ids of one router: Softmax (or Sigmoid) then TopK, or
/// TopK on the logits then Softmax; optionally divided by their sum; the
/// logits a linear layer of the tokens.
FailureOr<RouterMatch> matchRouter(Value weights, Value selected,
                                   Operation *user, Why &why);

/// Proves that `scores` (T, E) are Llama 4's routing matrix: the top-k
/// router logits scattered into -inf, then Sigmoid (0 for the experts a
/// token did not pick). The match has order topk_then_score and sigmoid
/// scoring; whether the scores multiply expert inputs is the caller's.
FailureOr<RouterMatch> matchScatteredScores(Value scores, Operation *user,
                                            Why &why);

/// The moe.layer of `router` with `experts` (absent ones empty), built at
/// the builder's insertion point with `anchor`'s location; declines when
/// the experts disagree in shape, activation or element type. Warns on
/// `anchor` when experts are absent: the export lost them.
FailureOr<Value> buildLayer(OpBuilder &builder, Operation *anchor,
                            const RouterMatch &router,
                            ArrayRef<std::optional<ExpertMlp>> experts,
                            Why &why);

/// Builds the layer at `root` and puts it in place of `root`'s (T, H)
/// result; erases what only fed `root`.
LogicalResult replaceWithLayer(OpBuilder &builder, Operation *root,
                               const RouterMatch &router,
                               ArrayRef<std::optional<ExpertMlp>> experts,
                               Why &why);

/// What matching one candidate block needs: a builder whose creations a
/// decline undoes, the reason, and whether the experts were recognised
/// (only then is a decline a near miss worth a remark).
class CandidateRaiser {
public:
  explicit CandidateRaiser(Operation *anchor)
      : anchor(anchor), builder(anchor) {
    builder.setListener(&created);
  }

protected:
  /// Concludes a match: undoes a failed one and, once the experts were
  /// recognised, remarks "<what> not raised to moe.layer: <why>".
  RaiseResult finish(LogicalResult matched, const Twine &what);

  Operation *anchor;
  OpBuilder builder;
  CreatedOps created;
  Why why;
  bool recognised = false;
};

/// Runs `Raiser(op).run()` on every `opName` op under `root`, collected
/// first (a raise erases ops before its anchor only).
template <typename Raiser>
void raiseEach(Operation *root, StringRef opName, bool &failedAny) {
  SmallVector<Operation *> candidates;
  root->walk([&](Operation *op) {
    if (op->getName().getStringRef() == opName)
      candidates.push_back(op);
  });
  for (Operation *op : candidates)
    failedAny |= Raiser(op).run() == RaiseResult::Error;
}

} // namespace mlir::moe::raise

#endif // MOE_MLIR_LIB_CONVERSION_RAISEEXPERTS_EXPORTEDLAYER_H
