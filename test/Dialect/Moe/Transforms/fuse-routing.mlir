// Routing of clustered layers: exact by default, hierarchical on request.
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=hierarchical clusters-per-token=1 cluster-score=mean-row" | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing | FileCheck %s --check-prefix=EXACT
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=hierarchical clusters-per-token=3" 2>&1 | FileCheck %s --check-prefix=TOOMANY
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=greedy" 2>&1 | FileCheck %s --check-prefix=MODE
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-fuse-routing="routing=hierarchical cluster-score=max" 2>&1 | FileCheck %s --check-prefix=SCORE

// CHECK: cluster_routing = #moe.cluster_routing<mode = hierarchical, score = mean_row>
// EXACT: cluster_routing = #moe.cluster_routing<mode = exact>
// TOOMANY: error: 'moe.clustered_layer' op clusters_per_token (3) exceeds the number of clusters (2)
// MODE: error: routing must be exact or hierarchical, got 'greedy'
// SCORE: error: cluster-score must be mass or mean-row, got 'max'
