// The default compression end to end, and its report.
// RUN: rm -f %t.json && moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-compress-pipeline="report=%t.json" | FileCheck %s
// RUN: %python -c "import json,sys; r=json.load(open(sys.argv[1])); l=r['layers'][0]; print(r['format'], r['version'], l['num_clusters'], l['assignment'], l['ranks']['up'], l['params']['after']['up'])" %t.json | FileCheck %s --check-prefix=REPORT
// RUN: moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-compress-pipeline="clusters=none" | FileCheck %s --check-prefix=NONE
// RUN: not moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-compress-pipeline="clusters=zero" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %S/../Inputs/planted_layer.mlir.inc --moe-compress-pipeline="calibration=%t.missing.npy" 2>&1 | FileCheck %s --check-prefix=CALIB
// Group-limited routing (groups = 2): the default clusters are the groups,
// and hierarchical cluster routing is refused.
// RUN: sed 's/normalize = true>/normalize = true, groups = 2>/' %S/../Inputs/planted_layer.mlir.inc > %t.grouped.mlir
// RUN: moe-opt %t.grouped.mlir --moe-compress-pipeline | FileCheck %s --check-prefix=GROUPED
// RUN: not moe-opt %t.grouped.mlir --moe-compress-pipeline=routing=hierarchical 2>&1 | FileCheck %s --check-prefix=GROUPED-HIER

// Clusters of 4 experts: one cluster; rank 16 clamps to min(out, in) = 4.
// CHECK: moe.clustered_layer
// CHECK-SAME: assignment = array<i64: 0, 0, 0, 0>
// CHECK-SAME: cluster_routing = #moe.cluster_routing<mode = exact>
// CHECK-SAME: up_ranks = array<i64: 4, 4, 4, 4>
// CHECK-SAME: tensor<1x6x4xf32, #moe.quant<storage = f16>>
// CHECK-SAME: #moe.quant<storage = i4, group_size = 32, symmetric = false, scale_type = f16, zero_point_type = i8>

// REPORT: moe-compression-report 1 1 [0, 0, 0, 0] [4, 4, 4, 4] {'base': 24, 'residual': 160}

// Quantisation only: every expert its own cluster, no residual.
// NONE: assignment = array<i64: 0, 1, 2, 3>
// NONE-SAME: up_ranks = array<i64: 0, 0, 0, 0>

// BAD: error: clusters must be a positive integer or 'none', got 'zero'
// CALIB: error: calibration tokens: cannot open

// GROUPED: moe.clustered_layer
// GROUPED-SAME: assignment = array<i64: 0, 0, 1, 1>
// GROUPED-SAME: cluster_routing = #moe.cluster_routing<mode = exact>
// GROUPED-SAME: groups = 2
// GROUPED-HIER: error: hierarchical cluster routing of a layer with 2 expert groups: its group-limited routing is already the two-stage router (its clusters are its groups); use routing=exact
