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

// CHECK-LABEL: func.func @layer
// CHECK: moe.layer
// CHECK-SAME: moe.assignment = array<i64: 0, 1, 0, 1>
// CHECK-SAME: moe.similarity = dense<{{.*}}> : tensor<4x4xf32>

// SINGLE: moe.assignment = array<i64: 0, 1, 2, 3>
// TOO-MANY: error: cannot make 5 clusters of a layer with 4 experts
// METHOD: error: unknown clustering method 'spectral' (expected kmeans or agglomerative)
// WEIGHTS: error: similarity weights alpha, beta (and gamma with calibration) are all zero
