//===- LayerEval.h - Evaluating a MoE layer in C++ --------------*- C++ -*-===//
//
// The compiler needs layer outputs at compile time: expert outputs on
// calibration tokens (activation similarity), routing agreement of
// hierarchical routing, and the output error of a compressed layer for the
// report. This evaluates docs/semantics.md on float32 weights with double
// accumulation of the combine; the Python float64 evaluator is the
// reference it is tested against.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_METHOD_LAYEREVAL_H
#define MOE_MLIR_METHOD_LAYEREVAL_H

#include "moe-mlir/Method/Matrix.h"

#include <functional>
#include <optional>
#include <string>

namespace mlir::moe::method {

enum class Activation { Silu, Gelu, GeluTanh, Relu, Identity, Swiglu };

struct ActivationSpec {
  Activation kind = Activation::Silu;
  double alpha = 1.0, beta = 0.0;
  std::optional<double> limit;
};

/// `#moe.routing` (docs/semantics.md, "Routing").
struct RoutingSpec {
  int64_t topK = 1;
  bool sigmoid = false;       ///< scoring: softmax (false) or sigmoid
  bool sparsemixer = false;   ///< scoring = sparsemixer (overrides sigmoid)
  bool topkThenScore = false; ///< order
  bool normalize = false;
  /// Group-limited top-k: groups contiguous groups, groupsKept kept.
  int64_t groups = 1, groupsKept = 1;
  double scale = 1.0;       ///< factor on every weight
  double normEpsilon = 0.0; ///< w /= max(sum + normEpsilon, normFloor)
  double normFloor = 0.0;
  double mixerEpsilon = 0.0;   ///< sparsemixer's jitter epsilon
  bool weightsOnInput = false; ///< y = sum_j expert_j(w_j x)
};

/// Hierarchical stage 1 (docs/semantics.md); absent means exact routing.
struct HierarchicalSpec {
  std::vector<int64_t> assignment; ///< cluster of each expert
  int64_t numClusters = 1;
  int64_t clustersPerToken = 1;
  bool meanRow = false; ///< cluster score: mass (false) / mean_row
};

/// One expert's weights, float32, (out x in) like the IR. `gate` is empty
/// for plain MLP experts; biases are empty when absent.
struct ExpertWeights {
  ConstMatrixRef gate, up, down;
  const float *gateBias = nullptr, *upBias = nullptr, *downBias = nullptr;
};

/// A layer whose experts are materialised one at a time by `expert(e)`,
/// so a clustered layer can reconstruct base + U^T V on demand.
struct LayerSpec {
  int64_t numExperts = 0, hidden = 0, inter = 0;
  ConstMatrixRef router;             ///< E x H
  const float *routerBias = nullptr; ///< E or null
  /// E or null: added to the scores to choose experts, not to weigh them.
  const float *selectionBias = nullptr;
  RoutingSpec routing;
  ActivationSpec activation;
  std::vector<bool> absent; ///< empty: none absent
  std::optional<HierarchicalSpec> hierarchical;
};

struct Routed {
  /// T x k selected experts and their routing weights.
  std::vector<int64_t> experts;
  std::vector<double> weights;
};

/// Why route() and evaluateLayer() cannot run `spec` on `tokens`, or ""
/// when they can: the router must be numExperts x hidden, tokens T x hidden,
/// 1 <= topK <= numExperts, `absent` empty or numExperts long; routing as
/// the verifier takes it (sparsemixer: topK 2, score_then_topk, no groups,
/// no selection bias; groups: score_then_topk, dividing the experts into
/// groups of at least 2, groupsKept in [1, groups] holding at least topK
/// experts; a selection bias needs score_then_topk); with `hierarchical`,
/// no groups and no selection bias, the assignment must name numExperts
/// clusters in [0, numClusters), none empty, 1 <= clustersPerToken <=
/// numClusters, and the clustersPerToken smallest clusters must hold at
/// least topK experts together (the verifier's rules).
std::string checkLayer(const LayerSpec &spec, ConstMatrixRef tokens);

/// Routing of tokens (T x H) under `spec` (selection on logits, or on the
/// keys score + selection bias with a bias or groups; ties to the lower
/// index, as docs/semantics.md). Logits and weights are computed in
/// double. Empty when checkLayer() reports a problem.
Routed route(const LayerSpec &spec, ConstMatrixRef tokens);

/// Output of one expert on all `tokens` (T x H) into `out` (T x H,
/// contiguous). Matrix products are float32 (sgemm), activations double.
/// Returns false, leaving `out` untouched, when the weights do not fit
/// (up/gate I x H, down H x I with H = tokens.cols, and I and H equal to
/// spec.inter and spec.hidden when those are set) or swiglu has no gate.
bool expertForward(const LayerSpec &spec, const ExpertWeights &weights,
                   ConstMatrixRef tokens, float *out);

/// Gives expert e's weights; the pointers must stay valid until the next
/// call (a clustered layer reconstructs base + U^T V into one buffer).
using ExpertProvider = std::function<ExpertWeights(int64_t expert)>;

/// Layer output (T x H) for `tokens`; `expert` is called at most once per
/// expert, in increasing order, only for experts some token selected and
/// that are not absent. The combine is accumulated in double. An empty
/// Matrix (0 x 0) when checkLayer() reports a problem or an expert's
/// weights do not fit (see expertForward).
Matrix evaluateLayer(const LayerSpec &spec, ConstMatrixRef tokens,
                     const ExpertProvider &expert);

} // namespace mlir::moe::method

#endif // MOE_MLIR_METHOD_LAYEREVAL_H
