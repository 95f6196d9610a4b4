// RUN: moe-opt %s --split-input-file --convert-moe-to-linalg | FileCheck %s
// RUN: moe-opt %s --split-input-file --convert-moe-to-linalg="record-routing=1 record-tokens=1" | FileCheck %s --check-prefix=HOOKS

// A plain layer: router product, scalar routing loop, dispatch passes,
// then per expert tiled products with no capacity padding.
// CHECK-LABEL: func.func @plain
// CHECK-NOT: moe.layer
// CHECK: scf.forall
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: arith.mulf {{.*}}fastmath<reassoc,contract>
// CHECK: scf.for {{.*}}iter_args
// CHECK: math.exp
// CHECK: scf.for
// CHECK: scf.if
// CHECK: scf.forall
// CHECK: tensor.parallel_insert_slice
// HOOKS: func.func private @moe_rt_record_tokens(i64, i64, i64, i64)
// HOOKS: func.func private @moe_rt_record_routing(i64, i64, i64, i64)
// HOOKS-LABEL: func.func @plain
// HOOKS: call @moe_rt_record_tokens
// HOOKS: call @moe_rt_record_routing
func.func @plain(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>,
    %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) -> tensor<?x4xf32> {
  %y = moe.layer %x, %r gate %g up %u down %d {
      activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Clustered: INT4 codes are unpacked inside the product (shift by 4 on odd
// columns, mask 15), zero point subtracted, scaled; no dequantised copy.
// CHECK-LABEL: func.func @clustered_int4
// CHECK-NOT: moe.quantized_weight
// CHECK: linalg.generic
// CHECK: arith.shrui
// CHECK: arith.andi
// CHECK: arith.uitofp
// CHECK: arith.subf
// CHECK: arith.mulf
func.func @clustered_int4(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %ub: tensor<2x6x4xf32>,
    %uud: tensor<4x3xi8>, %uus: tensor<4x1xf16>, %uuz: tensor<4x1xi8>, %uv: tensor<4x4xf32>,
    %db: tensor<2x4x6xf32>, %du: tensor<3x4xf32>, %dv: tensor<3x6xf32>) -> tensor<?x4xf32> {
  %uu = moe.quantized_weight %uud scales %uus zero_points %uuz : (tensor<4x3xi8>, tensor<4x1xf16>, tensor<4x1xi8>)
      -> tensor<4x6xf32, #moe.quant<storage = i4, group_size = 6, symmetric = false, scale_type = f16, zero_point_type = i8>>
  %y = moe.clustered_layer %x, %r up %ub, %uu, %uv down %db, %du, %dv {
      activation = #moe.activation<relu>, assignment = array<i64: 0, 1, 0>,
      cluster_routing = #moe.cluster_routing<mode = exact>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      up_ranks = array<i64: 2, 2, 0>, down_ranks = array<i64: 1, 0, 2>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<2x6x4xf32>,
         tensor<4x6xf32, #moe.quant<storage = i4, group_size = 6, symmetric = false, scale_type = f16, zero_point_type = i8>>,
         tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<3x4xf32>, tensor<3x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Vector sizes: the INT4 U factor is widened once per block of 32 outputs
// into an f32 scratch (rank, 32) carried by the column loop, and the
// per-row axpy reads the scratch, not the codes.
// CHECK-LABEL: func.func @clustered_int4_vector
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}, %[[W:.*]] = %{{.*}}) -> (tensor<?x?xf32>, tensor<?x32xf32>)
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[W]]) -> (tensor<?x32xf32>)
// CHECK: arith.shrui
// CHECK: vector.transfer_write {{.*}} : vector<8xf32>, tensor<?x32xf32>
// CHECK: scf.for
// CHECK: scf.for
// CHECK-NOT: arith.shrui
// CHECK: vector.transfer_read {{.*}} : tensor<?x32xf32>, vector<8xf32>
// CHECK: vector.fma
func.func @clustered_int4_vector(%x: tensor<?x32xf32>, %r: tensor<3x32xf32>, %ub: tensor<2x32x32xf32>,
    %uud: tensor<4x16xi8>, %uus: tensor<4x1xf16>, %uuz: tensor<4x1xi8>, %uv: tensor<4x32xf32>,
    %db: tensor<2x32x32xf32>, %du: tensor<3x32xf32>, %dv: tensor<3x32xf32>) -> tensor<?x32xf32> {
  %uu = moe.quantized_weight %uud scales %uus zero_points %uuz : (tensor<4x16xi8>, tensor<4x1xf16>, tensor<4x1xi8>)
      -> tensor<4x32xf32, #moe.quant<storage = i4, group_size = 32, symmetric = false, scale_type = f16, zero_point_type = i8>>
  %y = moe.clustered_layer %x, %r up %ub, %uu, %uv down %db, %du, %dv {
      activation = #moe.activation<relu>, assignment = array<i64: 0, 1, 0>,
      cluster_routing = #moe.cluster_routing<mode = exact>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      up_ranks = array<i64: 2, 2, 0>, down_ranks = array<i64: 1, 0, 2>}
      : (tensor<?x32xf32>, tensor<3x32xf32>, tensor<2x32x32xf32>,
         tensor<4x32xf32, #moe.quant<storage = i4, group_size = 32, symmetric = false, scale_type = f16, zero_point_type = i8>>,
         tensor<4x32xf32>, tensor<2x32x32xf32>, tensor<3x32xf32>, tensor<3x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Single rows of INT8 codes (the V factor, 8 groups per row): per block of 4
// outputs, the scales are widened into an f32 table (4, groups) and the
// zero-point terms summed, both along the groups in vectors; the group loop
// then only reads the table. The V product's rows left over from the panels
// take output tiles of 8 (its rank is a run-time value bounded by 2), and
// U^T h output tiles of 256.
// CHECK-LABEL: func.func @clustered_int8_rows
// CHECK-COUNT-3: scf.forall {{.*}} -> (tensor<?x64x16xf32>)
// CHECK: %[[N:.*]] = arith.ceildivui %{{.*}}, %c8_{{[0-9]+}} : index
// CHECK-NEXT: scf.forall ({{.*}}) in (%{{.*}}, %[[N]]) shared_outs({{.*}}) -> (tensor<?x?xf32>)
// CHECK: %[[T:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %[[T]]) -> (tensor<?x?xf32>, tensor<4x8xf32>)
// CHECK-COUNT-4: vector.reduction <add>, {{.*}} fastmath<reassoc>
// CHECK: scf.for
// CHECK: tensor.extract {{.*}} : tensor<4x8xf32>
// CHECK: %[[A:.*]] = arith.ceildivui %{{.*}}, %c256{{.*}} : index
// CHECK-NEXT: scf.forall ({{.*}}) in (%{{.*}}, %[[A]])
func.func @clustered_int8_rows(%x: tensor<?x64xf32>, %r: tensor<3x64xf32>, %ub: tensor<2x32x64xf32>,
    %uu: tensor<4x32xf32>, %uvd: tensor<4x64xi8>, %uvs: tensor<4x8xf16>, %uvz: tensor<4x8xi8>,
    %db: tensor<2x64x32xf32>, %du: tensor<3x64xf32>, %dv: tensor<3x32xf32>) -> tensor<?x64xf32> {
  %uv = moe.quantized_weight %uvd scales %uvs zero_points %uvz : (tensor<4x64xi8>, tensor<4x8xf16>, tensor<4x8xi8>)
      -> tensor<4x64xf32, #moe.quant<storage = i8, group_size = 8, symmetric = false, scale_type = f16, zero_point_type = i8>>
  %y = moe.clustered_layer %x, %r up %ub, %uu, %uv down %db, %du, %dv {
      activation = #moe.activation<relu>, assignment = array<i64: 0, 1, 0>,
      cluster_routing = #moe.cluster_routing<mode = exact>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      up_ranks = array<i64: 2, 2, 0>, down_ranks = array<i64: 1, 0, 2>}
      : (tensor<?x64xf32>, tensor<3x64xf32>, tensor<2x32x64xf32>, tensor<4x32xf32>,
         tensor<4x64xf32, #moe.quant<storage = i8, group_size = 8, symmetric = false, scale_type = f16, zero_point_type = i8>>,
         tensor<2x64x32xf32>, tensor<3x64xf32>, tensor<3x32xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Hierarchical: stage 1 scores clusters by the log-sum-exp of their
// members' logits (math.log after the sum of exps).
// CHECK-LABEL: func.func @hierarchical
// CHECK: math.exp
// CHECK: math.log
func.func @hierarchical(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>,
    %ub: tensor<2x6x4xf32>, %uu: tensor<0x6xf32>, %uv: tensor<0x4xf32>,
    %db: tensor<2x4x6xf32>, %du: tensor<0x4xf32>, %dv: tensor<0x6xf32>) -> tensor<?x4xf32> {
  %y = moe.clustered_layer %x, %r up %ub, %uu, %uv down %db, %du, %dv {
      activation = #moe.activation<gelu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = hierarchical, clusters_per_token = 1, score = mass>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = false>,
      up_ranks = array<i64: 0, 0, 0, 0>, down_ranks = array<i64: 0, 0, 0, 0>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<0x6xf32>, tensor<0x4xf32>,
         tensor<2x4x6xf32>, tensor<0x4xf32>, tensor<0x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}
