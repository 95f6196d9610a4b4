// Round trip of every op and attribute, in pretty and in generic form.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @layer_all_operands
// CHECK: moe.layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} router_bias %{{[a-z0-9_]+}} gate %{{[a-z0-9_]+}} up %{{[a-z0-9_]+}} down %{{[a-z0-9_]+}} gate_bias %{{[a-z0-9_]+}} up_bias %{{[a-z0-9_]+}} down_bias %{{[a-z0-9_]+}}
// CHECK-SAME: absent = array<i1: false, true, false>
// CHECK-SAME: activation = #moe.activation<swiglu, alpha = 1.702000e+00, beta = 1.000000e+00, limit = 7.000000e+00 : f32>
// CHECK-SAME: routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>
func.func @layer_all_operands(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %rb: tensor<3xf32>,
    %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>,
    %gb: tensor<3x6xf32>, %ub: tensor<3x6xf32>, %db: tensor<3x4xf32>) -> tensor<?x4xf32> {
  %y = moe.layer %x, %r router_bias %rb gate %g up %u down %d gate_bias %gb up_bias %ub down_bias %db {
      absent = array<i1: false, true, false>,
      activation = #moe.activation<swiglu, alpha = 1.702, beta = 1.0, limit = 7.0 : f32>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>,
         tensor<3x4x6xf32>, tensor<3x6xf32>, tensor<3x6xf32>, tensor<3x4xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// CHECK-LABEL: func.func @layer_plain_mlp
// CHECK: moe.layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} up %{{[a-z0-9_]+}} down %{{[a-z0-9_]+}} {
// CHECK-SAME: activation = #moe.activation<gelu>
// CHECK-SAME: routing = #moe.routing<top_k = 1, scoring = sigmoid, order = topk_then_score, normalize = false>
// CHECK-SAME: (tensor<5x4xbf16>
func.func @layer_plain_mlp(%x: tensor<5x4xbf16>, %r: tensor<2x4xbf16>, %u: tensor<2x6x4xbf16>,
    %d: tensor<2x4x6xbf16>) -> tensor<5x4xbf16> {
  %y = moe.layer %x, %r up %u down %d {
      activation = #moe.activation<gelu>,
      routing = #moe.routing<top_k = 1, scoring = sigmoid, order = topk_then_score, normalize = false>}
      : (tensor<5x4xbf16>, tensor<2x4xbf16>, tensor<2x6x4xbf16>, tensor<2x4x6xbf16>) -> tensor<5x4xbf16>
  return %y : tensor<5x4xbf16>
}

// Every routing parameter beyond Mixtral's, and the selection bias.
// CHECK-LABEL: func.func @layer_routing_extended
// CHECK: moe.layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} router_bias %{{[a-z0-9_]+}} selection_bias %{{[a-z0-9_]+}} gate %{{[a-z0-9_]+}} up %{{[a-z0-9_]+}} down %{{[a-z0-9_]+}} down_bias %{{[a-z0-9_]+}} {
// CHECK-SAME: routing = #moe.routing<top_k = 4, scoring = sigmoid, order = score_then_topk, normalize = true, groups = 4, groups_kept = 2, scale = 2.500000e+00, norm_epsilon = 9.9999999999999995E-21, norm_floor = 9.9999999999999998E-13, weights_on_input = true>
// CHECK-SAME: (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8xf32>,
// CHECK: moe.layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} gate
// CHECK-SAME: routing = #moe.routing<top_k = 2, scoring = sparsemixer, order = score_then_topk, normalize = false, mixer_epsilon = 1.000000e-02>
// CHECK: moe.clustered_layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} selection_bias %{{[a-z0-9_]+}} up
// CHECK-SAME: routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true, norm_floor = 9.9999999999999998E-13>
func.func @layer_routing_extended(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %rb: tensor<8xf32>,
    %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>,
    %db: tensor<8x4xf32>, %ub: tensor<4x6x4xf32>, %uu: tensor<0x6xf32>, %uv: tensor<0x4xf32>,
    %dbase: tensor<4x4x6xf32>, %du: tensor<0x4xf32>, %dv: tensor<0x6xf32>)
    -> (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
  %0 = moe.layer %x, %r router_bias %rb selection_bias %sb gate %g up %u down %d down_bias %db {
      activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 4, scoring = sigmoid, order = score_then_topk, normalize = true,
                             groups = 4, groups_kept = 2, scale = 2.5, norm_epsilon = 1.0e-20,
                             norm_floor = 1.0e-12, weights_on_input = true>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8x6x4xf32>,
         tensor<8x6x4xf32>, tensor<8x4x6xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  %1 = moe.layer %x, %r gate %g up %u down %d {
      activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 2, scoring = sparsemixer, order = score_then_topk, normalize = false,
                             mixer_epsilon = 0.01>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  %2 = moe.clustered_layer %x, %r selection_bias %sb up %ub, %uu, %uv down %dbase, %du, %dv {
      activation = #moe.activation<relu>, assignment = array<i64: 0, 0, 1, 1, 2, 2, 3, 3>,
      cluster_routing = #moe.cluster_routing<mode = exact>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true, norm_floor = 1.0e-12>,
      up_ranks = array<i64: 0, 0, 0, 0, 0, 0, 0, 0>, down_ranks = array<i64: 0, 0, 0, 0, 0, 0, 0, 0>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<4x6x4xf32>, tensor<0x6xf32>, tensor<0x4xf32>,
         tensor<4x4x6xf32>, tensor<0x4xf32>, tensor<0x6xf32>) -> tensor<?x4xf32>
  return %0, %1, %2 : tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>
}

// CHECK-LABEL: func.func @activations
// CHECK: #moe.activation<silu>
// CHECK: #moe.activation<gelu_tanh>
// CHECK: #moe.activation<relu>
// CHECK: #moe.activation<identity>
func.func @activations(%x: tensor<?x4xf16>, %r: tensor<2x4xf16>, %u: tensor<2x6x4xf16>,
    %d: tensor<2x4x6xf16>) -> (tensor<?x4xf16>, tensor<?x4xf16>, tensor<?x4xf16>, tensor<?x4xf16>) {
  %0 = moe.layer %x, %r gate %u up %u down %d {activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = false>}
      : (tensor<?x4xf16>, tensor<2x4xf16>, tensor<2x6x4xf16>, tensor<2x6x4xf16>, tensor<2x4x6xf16>) -> tensor<?x4xf16>
  %1 = moe.layer %x, %r up %u down %d {activation = #moe.activation<gelu_tanh>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = false>}
      : (tensor<?x4xf16>, tensor<2x4xf16>, tensor<2x6x4xf16>, tensor<2x4x6xf16>) -> tensor<?x4xf16>
  %2 = moe.layer %x, %r up %u down %d {activation = #moe.activation<relu>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = false>}
      : (tensor<?x4xf16>, tensor<2x4xf16>, tensor<2x6x4xf16>, tensor<2x4x6xf16>) -> tensor<?x4xf16>
  %3 = moe.layer %x, %r up %u down %d {activation = #moe.activation<identity>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = false>}
      : (tensor<?x4xf16>, tensor<2x4xf16>, tensor<2x6x4xf16>, tensor<2x4x6xf16>) -> tensor<?x4xf16>
  return %0, %1, %2, %3 : tensor<?x4xf16>, tensor<?x4xf16>, tensor<?x4xf16>, tensor<?x4xf16>
}

// CHECK-LABEL: func.func @quantized_weights
// CHECK: moe.quantized_weight %{{[a-z0-9_]+}} scales %{{[a-z0-9_]+}} zero_points %{{[a-z0-9_]+}} : (tensor<4x3xi8>, tensor<4x1xf16>, tensor<4x1xi8>) -> tensor<4x6xf32, #moe.quant<storage = i4, group_size = 6, symmetric = false, scale_type = f16, zero_point_type = i8>>
// CHECK: moe.quantized_weight %{{[a-z0-9_]+}} scales %{{[a-z0-9_]+}} : (tensor<4x6xi8>, tensor<4x3xf32>) -> tensor<4x6xf32, #moe.quant<storage = i8, group_size = 2, scale_type = f32, packing = high_nibble_first>>
// CHECK: moe.quantized_weight %{{[a-z0-9_]+}} : (tensor<4x6xf16>) -> tensor<4x6xf32, #moe.quant<storage = f16>>
// CHECK: moe.quantized_weight %{{[a-z0-9_]+}} : (tensor<4x6xbf16>) -> tensor<4x6xf32, #moe.quant<storage = bf16>>
// CHECK: moe.quantized_weight %{{[a-z0-9_]+}} scales %{{[a-z0-9_]+}} : (tensor<4x4xi8>, tensor<4x1xbf16>) -> tensor<4x7xf32, #moe.quant<storage = i4, scale_type = bf16>>
func.func @quantized_weights(%d4: tensor<4x3xi8>, %s4: tensor<4x1xf16>, %z4: tensor<4x1xi8>,
    %d8: tensor<4x6xi8>, %s8: tensor<4x3xf32>, %h: tensor<4x6xf16>, %b: tensor<4x6xbf16>,
    %d7: tensor<4x4xi8>, %s7: tensor<4x1xbf16>) {
  %0 = moe.quantized_weight %d4 scales %s4 zero_points %z4 : (tensor<4x3xi8>, tensor<4x1xf16>, tensor<4x1xi8>)
      -> tensor<4x6xf32, #moe.quant<storage = i4, group_size = 6, symmetric = false, scale_type = f16, zero_point_type = i8>>
  %1 = moe.quantized_weight %d8 scales %s8 : (tensor<4x6xi8>, tensor<4x3xf32>)
      -> tensor<4x6xf32, #moe.quant<storage = i8, group_size = 2, symmetric = true, scale_type = f32, packing = high_nibble_first>>
  %2 = moe.quantized_weight %h : (tensor<4x6xf16>) -> tensor<4x6xf32, #moe.quant<storage = f16>>
  %3 = moe.quantized_weight %b : (tensor<4x6xbf16>) -> tensor<4x6xf32, #moe.quant<storage = bf16>>
  %4 = moe.quantized_weight %d7 scales %s7 : (tensor<4x4xi8>, tensor<4x1xbf16>)
      -> tensor<4x7xf32, #moe.quant<storage = i4, scale_type = bf16>>
  return
}

// CHECK-LABEL: func.func @clustered_exact
// CHECK: moe.clustered_layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} gate %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} up %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} down %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} {
// CHECK-SAME: assignment = array<i64: 0, 1, 0>
// CHECK-SAME: cluster_routing = #moe.cluster_routing<mode = exact>
// CHECK-SAME: down_ranks = array<i64: 1, 0, 2>
// CHECK-SAME: gate_ranks = array<i64: 1, 1, 1>
// CHECK-SAME: up_ranks = array<i64: 2, 2, 0>
// CHECK-SAME: tensor<2x6x4xf32, #moe.quant<storage = f16>>
func.func @clustered_exact(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %gbh: tensor<2x6x4xf16>,
    %gu: tensor<3x6xf32>, %gv: tensor<3x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>,
    %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<3x4xf32>, %dv: tensor<3x6xf32>) -> tensor<?x4xf32> {
  %gb = moe.quantized_weight %gbh : (tensor<2x6x4xf16>) -> tensor<2x6x4xf32, #moe.quant<storage = f16>>
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {
      activation = #moe.activation<silu>, assignment = array<i64: 0, 1, 0>,
      cluster_routing = #moe.cluster_routing<mode = exact>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1>, up_ranks = array<i64: 2, 2, 0>, down_ranks = array<i64: 1, 0, 2>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<2x6x4xf32, #moe.quant<storage = f16>>, tensor<3x6xf32>,
         tensor<3x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>,
         tensor<3x4xf32>, tensor<3x6xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// CHECK-LABEL: func.func @clustered_hierarchical
// CHECK: moe.clustered_layer %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} router_bias %{{[a-z0-9_]+}} up %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} down %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} up_bias %{{[a-z0-9_]+}} down_bias %{{[a-z0-9_]+}} {
// CHECK-SAME: absent = array<i1: false, false, true, false>
// CHECK-SAME: cluster_routing = #moe.cluster_routing<mode = hierarchical, clusters_per_token = 2, score = mean_row>
func.func @clustered_hierarchical(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %rb: tensor<4xf32>,
    %ub: tensor<2x6x4xf32>, %uu: tensor<0x6xf32>, %uv: tensor<0x4xf32>,
    %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>,
    %ubias: tensor<4x6xf32>, %dbias: tensor<4x4xf32>) -> tensor<?x4xf32> {
  %y = moe.clustered_layer %x, %r router_bias %rb up %ub, %uu, %uv down %db, %du, %dv up_bias %ubias down_bias %dbias {
      absent = array<i1: false, false, true, false>,
      activation = #moe.activation<relu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = hierarchical, clusters_per_token = 2, score = mean_row>,
      routing = #moe.routing<top_k = 3, scoring = softmax, order = score_then_topk, normalize = false>,
      up_ranks = array<i64: 0, 0, 0, 0>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<4xf32>, tensor<2x6x4xf32>, tensor<0x6xf32>, tensor<0x4xf32>,
         tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}
