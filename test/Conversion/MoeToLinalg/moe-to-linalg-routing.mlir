// Routing beyond Mixtral's: group-limited top-k with a selection bias,
// sparsemixer, the routing weight on the expert input (docs/lowering.md).
// RUN: moe-opt %s --split-input-file --convert-moe-to-linalg -verify-diagnostics | FileCheck %s

// Sigmoid scores plus the bias are the keys; per group (unrolled, 4 of 2
// experts) a loop keeps the two largest keys, their sum scores the group;
// the 2 best groups are kept; experts of kept groups (e / 2 among the
// kept) compete in 2 successive-maximum scans; weights are the unbiased
// scores, normalised with the epsilon, then scaled.
// CHECK-LABEL: func.func @grouped_biased
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32) {
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: %[[B:.*]] = tensor.extract %{{.*}} : tensor<8xf32>
// CHECK: %[[KEY:.*]] = arith.addf %{{.*}}, %[[B]] : f32
// CHECK: arith.cmpf ogt, %[[KEY]]
// CHECK: arith.maximumf
// CHECK: arith.addf %{{.*}}#0, %{{.*}}#1 : f32
// CHECK-COUNT-3: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32) {
// CHECK: scf.for {{.*}} -> (f32, index)
// CHECK: tensor.extract %{{.*}} : tensor<8xf32>
// CHECK: arith.divui
// CHECK: arith.cmpi eq
// CHECK: scf.for {{.*}} -> (f32, index)
// CHECK: arith.divui
// CHECK: %[[EPS:.*]] = arith.constant 9.99999968E-21 : f32
// CHECK-NEXT: %[[DEN:.*]] = arith.addf %{{.*}}, %[[EPS]] : f32
// CHECK: arith.divf %{{.*}}, %[[DEN]] : f32
// CHECK: %[[SCALE:.*]] = arith.constant 2.500000e+00 : f32
// CHECK: arith.mulf %{{.*}}, %[[SCALE]] : f32
func.func @grouped_biased(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>,
    %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>) -> tensor<?x4xf32> {
  %y = moe.layer %x, %r selection_bias %sb gate %g up %u down %d {
      activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 2, scoring = sigmoid, order = score_then_topk, normalize = true,
                             groups = 4, groups_kept = 2, scale = 2.5, norm_epsilon = 1.0e-20>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>,
         tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Sparsemixer: two rounds of argmax and a softmax over the logits within
// relative distance 2 * mixer_epsilon of the maximum; the second round
// leaves the first pick out.
// CHECK-LABEL: func.func @sparsemixer
// CHECK: %[[BOUND:.*]] = arith.constant 2.000000e-02 : f32
// CHECK: %[[M1:.*]]:2 = scf.for {{.*}} -> (f32, index)
// CHECK: scf.for
// CHECK: math.absf
// CHECK: %[[F:.*]] = arith.maximumf %{{.*}}, %[[M1]]#0 : f32
// CHECK: %[[Q:.*]] = arith.divf %{{.*}}, %[[F]] : f32
// CHECK: %[[MASK:.*]] = arith.cmpf ogt, %[[Q]], %[[BOUND]] : f32
// CHECK: math.exp
// CHECK: arith.select %[[MASK]]
// CHECK: scf.for {{.*}} -> (f32, index)
// CHECK: arith.cmpi ne, %{{.*}}, %[[M1]]#1 : index
// CHECK: scf.for
// CHECK: math.absf
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpi eq, %{{.*}}, %[[M1]]#1 : index
func.func @sparsemixer(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>,
    %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>) -> tensor<?x4xf32> {
  %y = moe.layer %x, %r gate %g up %u down %d {
      activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 2, scoring = sparsemixer, order = score_then_topk, normalize = false,
                             mixer_epsilon = 0.01>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Weights on the input: the gate and up products' rows are multiplied by
// their routing weights before the activation; the down product's rows go
// into y unweighted (the down bias included).
// CHECK-LABEL: func.func @weights_on_input
// CHECK: scf.forall
// CHECK: %[[GATE:.*]] = scf.forall {{.*}} -> (tensor<?x6xf32>)
// CHECK: %[[UP:.*]] = scf.forall {{.*}} -> (tensor<?x6xf32>)
// CHECK: linalg.generic {{.*}} outs(%[[GATE]] : tensor<?x6xf32>)
// CHECK: linalg.index 0
// CHECK: %[[W:.*]] = tensor.extract %{{.*}} : tensor<?xf32>
// CHECK: arith.mulf %{{.*}}, %[[W]] : f32
// CHECK: linalg.generic {{.*}} outs(%[[UP]] : tensor<?x6xf32>)
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK: arith.negf
// CHECK: math.exp
// CHECK: scf.forall
// CHECK: scf.for
// CHECK: scf.for
// CHECK: %[[O:.*]] = tensor.extract %{{.*}} : tensor<?x4xf32>
// CHECK-NEXT: %[[CUR:.*]] = tensor.extract %{{.*}} : tensor<?x?xf32>
// CHECK-NEXT: arith.addf %[[CUR]], %[[O]] : f32
func.func @weights_on_input(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>,
    %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %db: tensor<8x4xf32>) -> tensor<?x4xf32> {
  %y = moe.layer %x, %r gate %g up %u down %d down_bias %db {
      activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 1, scoring = sigmoid, order = topk_then_score, normalize = false,
                             weights_on_input = true>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>,
         tensor<8x4xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Not lowered yet: hierarchical cluster routing with expert groups.
func.func @hierarchical_grouped(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>,
    %ub: tensor<2x6x4xf32>, %uu: tensor<0x6xf32>, %uv: tensor<0x4xf32>,
    %db: tensor<2x4x6xf32>, %du: tensor<0x4xf32>, %dv: tensor<0x6xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{hierarchical cluster routing of a group-limited or selection-biased layer is not supported}}
  %y = moe.clustered_layer %x, %r up %ub, %uu, %uv down %db, %du, %dv {
      activation = #moe.activation<gelu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = hierarchical, clusters_per_token = 1, score = mass>,
      routing = #moe.routing<top_k = 2, scoring = sigmoid, order = score_then_topk, normalize = true, groups = 2>,
      up_ranks = array<i64: 0, 0, 0, 0>, down_ranks = array<i64: 0, 0, 0, 0>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<0x6xf32>, tensor<0x4xf32>,
         tensor<2x4x6xf32>, tensor<0x4xf32>, tensor<0x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}
