// RUN: rm -rf %t && moe-opt %s --moe-dump-layers=%t | FileCheck %s --check-prefix=IR
// RUN: %python %S/Inputs/print_npz.py %t | FileCheck %s

// The IR is unchanged.
// IR: moe.layer
// IR: moe.clustered_layer

// CHECK-LABEL: file layer_0.npz
// CHECK-NEXT: down_weight float32 [2, 2, 3]: 1 2 3 4 5 6 7 8 9 10 11 12
// CHECK-NEXT: gate_bias float32 [2, 3]: 0.5 0.5 0.5 0.5 0.5 0.5
// CHECK-NEXT: gate_weight float32 [2, 3, 2]: 0 0.25 0.5 0.75 1 1.25 1.5 1.75 2 2.25 2.5 2.75
// CHECK-NEXT: meta
// CHECK-SAME: "absent": [false, true]
// CHECK-SAME: "activation": {"alpha": 1.702, "beta": 1, "kind": "swiglu", "limit": 7}
// CHECK-SAME: "dtypes": {"down_weight": "float32", "gate_bias": "float32", "gate_weight": "float32", "router_weight": "float32", "up_weight": "float32"}
// CHECK-SAME: "format": "moe-layer-dump"
// CHECK-SAME: "glu": true, "hidden": 2, "index": 0, "inter": 3
// CHECK-SAME: "num_experts": 2, "op": "moe.layer"
// CHECK-SAME: "routing": {"groups": 1, "groups_kept": 1, "mixer_epsilon": 0, "norm_epsilon": 0, "norm_floor": 0, "normalize": true, "order": "score_then_topk", "scale": 1, "scoring": "softmax", "top_k": 1, "weights_on_input": false}, "version": 1
// CHECK-NEXT: router_weight float32 [2, 2]: 1 -1 0.5 2
// CHECK-NEXT: up_weight float32 [2, 3, 2]: -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
func.func @layer(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %r = arith.constant dense<[[1.0, -1.0], [0.5, 2.0]]> : tensor<2x2xf32>
  %g = arith.constant dense_resource<gate> : tensor<2x3x2xf32>
  %u = arith.constant dense<-1.0> : tensor<2x3x2xf32>
  %d = arith.constant dense<[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]]> : tensor<2x2x3xf32>
  %gb = arith.constant dense<0.5> : tensor<2x3xf32>
  %y = moe.layer %x, %r gate %g up %u down %d gate_bias %gb {
      absent = array<i1: false, true>,
      activation = #moe.activation<swiglu, alpha = 1.702, beta = 1.0, limit = 7.0 : f32>,
      routing = #moe.routing<top_k = 1, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2x3x2xf32>, tensor<2x3x2xf32>, tensor<2x2x3xf32>, tensor<2x3xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// Quantised storage is dumped as stored: i4 codes packed in bytes, f16 and
// bf16 (as uint16 bits) as they are, with the encoding in meta.quant.
// CHECK-LABEL: file layer_1.npz
// CHECK-NEXT: down_base.data float16 [1, 2, 3]: 0.5 0.5 0.5 0.5 0.5 0.5
// CHECK-NEXT: down_u.data uint16 [1, 2]: 16320 49152
// CHECK-NEXT: down_v float32 [1, 3]: 1 2 3
// CHECK-NEXT: meta
// CHECK-SAME: "assignment": [0, 0]
// CHECK-SAME: "cluster_routing": {"clusters_per_token": 1, "mode": "hierarchical", "score": "mean_row"}
// CHECK-SAME: "down_u.data": "bfloat16"
// CHECK-SAME: "up_base.data": "uint8", "up_base.scales": "float16", "up_base.zero_points": "uint8"
// CHECK-SAME: "glu": false
// CHECK-SAME: "num_clusters": 1
// CHECK-SAME: "op": "moe.clustered_layer"
// CHECK-SAME: "quant": {"down_base": {"group_size": 0, "packing": "low_nibble_first", "scale_dtype": null, "shape": [1, 2, 3], "storage": "f16", "symmetric": true, "zero_point_dtype": null}
// CHECK-SAME: "down_u": {{{.*}}"storage": "bf16"
// CHECK-SAME: "up_base": {"group_size": 2, "packing": "low_nibble_first", "scale_dtype": "float16", "shape": [1, 3, 2], "storage": "i4", "symmetric": false, "zero_point_dtype": "uint8"}
// CHECK-SAME: "ranks": {"down": [0, 1], "up": [1, 0]}
// CHECK-NEXT: router_bias float32 [2]: 0 1
// CHECK-NEXT: router_weight float32 [2, 2]: 1 0 0 1
// CHECK-NEXT: up_base.data uint8 [1, 3, 1]: 33 67 240
// CHECK-NEXT: up_base.scales float16 [1, 3, 1]: 0.25 0.5 1
// CHECK-NEXT: up_base.zero_points uint8 [1, 3, 1]: 8 8 0
// CHECK-NEXT: up_u float32 [1, 3]: 1 1 1
// CHECK-NEXT: up_v float32 [1, 2]: 2 2
func.func @clustered(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %r = arith.constant dense<[[1.0, 0.0], [0.0, 1.0]]> : tensor<2x2xf32>
  %rb = arith.constant dense<[0.0, 1.0]> : tensor<2xf32>
  %ubd = arith.constant dense<[[[33], [67], [-16]]]> : tensor<1x3x1xi8>
  %ubs = arith.constant dense<[[[0.25], [0.5], [1.0]]]> : tensor<1x3x1xf16>
  %ubz = arith.constant dense<[[[8], [8], [0]]]> : tensor<1x3x1xi8>
  %ub = moe.quantized_weight %ubd scales %ubs zero_points %ubz : (tensor<1x3x1xi8>, tensor<1x3x1xf16>, tensor<1x3x1xi8>)
      -> tensor<1x3x2xf32, #moe.quant<storage = i4, group_size = 2, symmetric = false, scale_type = f16, zero_point_type = i8>>
  %uu = arith.constant dense<1.0> : tensor<1x3xf32>
  %uv = arith.constant dense<2.0> : tensor<1x2xf32>
  %dbh = arith.constant dense<0.5> : tensor<1x2x3xf16>
  %db = moe.quantized_weight %dbh : (tensor<1x2x3xf16>) -> tensor<1x2x3xf32, #moe.quant<storage = f16>>
  %duh = arith.constant dense<[[1.5, -2.0]]> : tensor<1x2xbf16>
  %du = moe.quantized_weight %duh : (tensor<1x2xbf16>) -> tensor<1x2xf32, #moe.quant<storage = bf16>>
  %dv = arith.constant dense<[[1.0, 2.0, 3.0]]> : tensor<1x3xf32>
  %y = moe.clustered_layer %x, %r router_bias %rb up %ub, %uu, %uv down %db, %du, %dv {
      activation = #moe.activation<relu>, assignment = array<i64: 0, 0>,
      cluster_routing = #moe.cluster_routing<mode = hierarchical, score = mean_row>,
      routing = #moe.routing<top_k = 1, scoring = sigmoid, order = topk_then_score, normalize = false>,
      up_ranks = array<i64: 1, 0>, down_ranks = array<i64: 0, 1>}
      : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>,
         tensor<1x3x2xf32, #moe.quant<storage = i4, group_size = 2, symmetric = false, scale_type = f16, zero_point_type = i8>>,
         tensor<1x3xf32>, tensor<1x2xf32>, tensor<1x2x3xf32, #moe.quant<storage = f16>>,
         tensor<1x2xf32, #moe.quant<storage = bf16>>, tensor<1x3xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// Every #moe.routing parameter, and the selection bias as an array.
// CHECK-LABEL: file layer_2.npz
// CHECK: meta
// CHECK-SAME: "routing": {"groups": 2, "groups_kept": 1, "mixer_epsilon": 0, "norm_epsilon": 1e-20, "norm_floor": 0, "normalize": true, "order": "score_then_topk", "scale": 2.5, "scoring": "sigmoid", "top_k": 2, "weights_on_input": false}
// CHECK-NEXT: router_weight float32 [4, 2]
// CHECK-NEXT: selection_bias float32 [4]: 0.5 -0.25 0 1
func.func @grouped(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %r = arith.constant dense<[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]]> : tensor<4x2xf32>
  %b = arith.constant dense<[0.5, -0.25, 0.0, 1.0]> : tensor<4xf32>
  %u = arith.constant dense<1.0> : tensor<4x3x2xf32>
  %d = arith.constant dense<1.0> : tensor<4x2x3xf32>
  %y = moe.layer %x, %r selection_bias %b up %u down %d {activation = #moe.activation<relu>,
      routing = #moe.routing<top_k = 2, scoring = sigmoid, order = score_then_topk, normalize = true,
                             groups = 2, groups_kept = 1, scale = 2.5, norm_epsilon = 1.0e-20>}
      : (tensor<?x2xf32>, tensor<4x2xf32>, tensor<4xf32>, tensor<4x3x2xf32>, tensor<4x2x3xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

{-#
  dialect_resources: {
    builtin: {
      gate: "0x04000000000000000000803E0000003F0000403F0000803F0000A03F0000C03F0000E03F00000040000010400000204000003040"
    }
  }
#-}
