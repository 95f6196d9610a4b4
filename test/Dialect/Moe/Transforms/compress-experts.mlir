// A clustered moe.layer becomes a moe.clustered_layer: one base per cluster
// and weight kind, factors stacked by expert at the requested rank.
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=2 | FileCheck %s
// Both randomised methods, with their own and with explicit settings.
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts="rank=2 svd=randomized" | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts="rank=2 svd=krylov power-iters=1 oversample=4" | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts="rank=full svd=exact" | FileCheck %s --check-prefix=FULL
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts="energy=0.5 svd=exact" | FileCheck %s --check-prefix=ENERGY
// RUN: not moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-compress-experts 2>&1 | FileCheck %s --check-prefix=NOASSIGN
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts="rank=4 energy=0.9" 2>&1 | FileCheck %s --check-prefix=BOTH
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts="energy=1.5" 2>&1 | FileCheck %s --check-prefix=ENERGYRANGE
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=two 2>&1 | FileCheck %s --check-prefix=RANK
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=svd=qr 2>&1 | FileCheck %s --check-prefix=SVD
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts="rank=2 power-iters=-2" 2>&1 | FileCheck %s --check-prefix=ITERS
// With expert groups {0, 1}, {2, 3} the assignment [0, 1, 0, 1] crosses them.
// RUN: sed 's/normalize = true>/normalize = true, groups = 2>/' %S/../Inputs/planted_layer_assigned.mlir.inc | not moe-opt --moe-compress-experts=rank=1 2>&1 | FileCheck %s --check-prefix=CROSSING

// CHECK-LABEL: func.func @layer
// CHECK-NOT: moe.layer
// CHECK: moe.clustered_layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} gate %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} up
// CHECK-SAME: assignment = array<i64: 0, 1, 0, 1>
// CHECK-SAME: cluster_routing = #moe.cluster_routing<mode = exact>
// CHECK-SAME: down_ranks = array<i64: 2, 2, 2, 2>
// CHECK-SAME: gate_ranks = array<i64: 2, 2, 2, 2>
// CHECK-SAME: up_ranks = array<i64: 2, 2, 2, 2>
// CHECK-SAME: tensor<2x6x4xf32>, tensor<8x6xf32>, tensor<8x4xf32>
// CHECK-SAME: tensor<2x4x6xf32>, tensor<8x4xf32>, tensor<8x6xf32>

// Full rank is min(out, in) = 4 for every kind.
// FULL: gate_ranks = array<i64: 4, 4, 4, 4>

// An energy threshold chooses each rank (checked against NumPy in
// python/tests/test_method.py); experts differ in what 50% needs.
// ENERGY: gate_ranks = array<i64: 2, 1, 2, 1>

// NOASSIGN: error: moe-compress-experts needs a cluster assignment ('moe.assignment'): run moe-cluster-experts first
// BOTH: error: rank and energy are mutually exclusive
// ENERGYRANGE: error: energy must be in (0, 1], got 1.5
// RANK: error: rank must be a non-negative integer or 'full', got 'two'
// SVD: error: unknown svd 'qr' (expected exact, krylov or randomized)
// ITERS: error: oversample and power-iters must be non-negative (or -1: the method's default)
// CROSSING: error: cluster 0 holds experts of groups 0 and 1 of the layer's 2 expert groups: clusters must not cross a group boundary
