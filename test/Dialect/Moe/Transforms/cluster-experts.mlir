// Experts 0 and 2, and 1 and 3, are near copies (their gate, up, down and
// router rows differ by 1%): both methods find those two clusters, the same
// for every seed, and record the fused similarity.
// RUN: moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-cluster-experts=clusters=2 | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-cluster-experts="cluster-size=2 seed=7" | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-cluster-experts="clusters=2 method=agglomerative" | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-cluster-experts=clusters=4 | FileCheck %s --check-prefix=SINGLE
// RUN: not moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-cluster-experts=clusters=5 2>&1 | FileCheck %s --check-prefix=TOO-MANY
// RUN: not moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-cluster-experts=method=spectral 2>&1 | FileCheck %s --check-prefix=METHOD
// RUN: not moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-cluster-experts="alpha=0 beta=0" 2>&1 | FileCheck %s --check-prefix=WEIGHTS

// The same layer with group-limited routing (groups = 2: experts {0, 1} and
// {2, 3}): its clusters are its groups whatever the similarity says, an
// explicit count must be a multiple of the groups and clusters within
// them (compress-experts.mlir: an assignment across groups is refused).
// RUN: sed 's/normalize = true>/normalize = true, groups = 2>/' %S/../Inputs/planted_layer.mlir.inc > %t.grouped.mlir
// RUN: moe-opt %t.grouped.mlir --moe-cluster-experts | FileCheck %s --check-prefix=GROUPS
// RUN: moe-opt %t.grouped.mlir --moe-cluster-experts=cluster-size=1 | FileCheck %s --check-prefix=GROUPS
// RUN: moe-opt %t.grouped.mlir --moe-cluster-experts=clusters=2 | FileCheck %s --check-prefix=GROUPS
// RUN: moe-opt %t.grouped.mlir --moe-cluster-experts=clusters=4 | FileCheck %s --check-prefix=SINGLE
// RUN: not moe-opt %t.grouped.mlir --moe-cluster-experts=clusters=3 2>&1 | FileCheck %s --check-prefix=NOT-MULTIPLE

// CHECK-LABEL: func.func @layer
// CHECK: moe.layer
// CHECK-SAME: moe.assignment = array<i64: 0, 1, 0, 1>
// CHECK-SAME: moe.similarity = dense<{{.*}}> : tensor<4x4xf32>

// SINGLE: moe.assignment = array<i64: 0, 1, 2, 3>
// TOO-MANY: error: cannot make 5 clusters of a layer with 4 experts
// METHOD: error: unknown clustering method 'spectral' (expected kmeans or agglomerative)
// WEIGHTS: error: similarity weights alpha, beta (and gamma with calibration) are all zero

// GROUPS: moe.assignment = array<i64: 0, 0, 1, 1>
// GROUPS-SAME: routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true, groups = 2>
// NOT-MULTIPLE: grouped.mlir:{{[0-9]+}}:{{[0-9]+}}: error: the layer routes among 2 expert groups and clusters never cross a group boundary: the cluster count must be a multiple of 2, got 3
