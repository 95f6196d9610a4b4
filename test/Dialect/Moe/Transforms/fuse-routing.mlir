// Routing of clustered layers: exact by default, hierarchical on request.
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=hierarchical clusters-per-token=1 cluster-score=mean-row" | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing | FileCheck %s --check-prefix=EXACT
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=hierarchical clusters-per-token=3" 2>&1 | FileCheck %s --check-prefix=TOOMANY
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=greedy" 2>&1 | FileCheck %s --check-prefix=MODE
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=hierarchical cluster-score=max" 2>&1 | FileCheck %s --check-prefix=SCORE
// A layer's own group-limited routing is already the two-stage router, and
// a selection bias decides among all experts: no hierarchical routing for
// either (exact is fine).
// RUN: sed 's/normalize = true>/normalize = true, groups = 2>/' %S/../Inputs/planted_layer.mlir.inc | not moe-opt --moe-cluster-experts --moe-compress-experts=rank=1 --moe-fuse-routing=routing=hierarchical 2>&1 | FileCheck %s --check-prefix=GROUPS
// RUN: not moe-opt %s --moe-cluster-experts=clusters=2 --moe-compress-experts=rank=1 --moe-fuse-routing=routing=hierarchical 2>&1 | FileCheck %s --check-prefix=BIAS
// RUN: moe-opt %s --moe-cluster-experts=clusters=2 --moe-compress-experts=rank=1 --moe-fuse-routing | FileCheck %s --check-prefix=BIAS-EXACT

// CHECK: cluster_routing = #moe.cluster_routing<mode = hierarchical, score = mean_row>
// EXACT: cluster_routing = #moe.cluster_routing<mode = exact>
// TOOMANY: error: 'moe.clustered_layer' op clusters_per_token (3) exceeds the number of clusters (2)
// MODE: error: routing must be exact or hierarchical, got 'greedy'
// SCORE: error: cluster-score must be mass or mean-row, got 'max'
// GROUPS: error: hierarchical cluster routing of a layer with 2 expert groups: its group-limited routing is already the two-stage router (its clusters are its groups); use routing=exact
// BIAS: error: hierarchical cluster routing of a layer with a selection bias: the bias decides the selection among all experts; use routing=exact
// BIAS-EXACT: moe.clustered_layer %arg0, %{{[a-z0-9_]+}} selection_bias %{{[a-z0-9_]+}} gate
// BIAS-EXACT-SAME: cluster_routing = #moe.cluster_routing<mode = exact>

func.func @biased(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %r = arith.constant dense<[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]]> : tensor<4x2xf32>
  %b = arith.constant dense<[0.1, -0.1, 0.0, 0.2]> : tensor<4xf32>
  %g = arith.constant dense<[[[1.0, 0.5], [0.5, 1.0]], [[1.0, 0.4], [0.6, 1.0]], [[-1.0, 0.5], [0.5, -1.0]], [[-1.0, 0.6], [0.4, -1.0]]]> : tensor<4x2x2xf32>
  %d = arith.constant dense<[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.1], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]], [[0.1, 1.0], [1.0, 0.0]]]> : tensor<4x2x2xf32>
  %y = moe.layer %x, %r selection_bias %b gate %g up %g down %d {activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 2, scoring = sigmoid, order = score_then_topk, normalize = true>}
      : (tensor<?x2xf32>, tensor<4x2xf32>, tensor<4xf32>, tensor<4x2x2xf32>, tensor<4x2x2xf32>, tensor<4x2x2xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}
