// Every verifier message of the moe dialect, one case each.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%x: tensor<4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand 'tokens' must be a T x H matrix, got rank 1}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand 'tokens' must have a static hidden size (dim 1)}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x?xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand 'router_weight' must be a static E x H matrix with E >= 1}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<?x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x5xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand 'router_weight' has shape 3x5 but expected E=3xH=4}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x5xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<2x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand 'up_weight' has shape 2x6x4 but expected E=3xI=6xH=4}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<2x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x5x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand 'gate_weight' has shape 3x5x4 but expected E=3xI=6xH=4}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x5x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x6x4xf32>) {
  // expected-error @+1 {{operand 'down_weight' has shape 3x6x4 but expected E=3xH=4xI=6}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x?x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand 'up_weight' must be a static E x I x H tensor with I >= 1}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x?x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{result type 'tensor<?x8xf32>' must equal the tokens type 'tensor<?x4xf32>'}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf16>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand #1 has element type 'f16' but tokens have 'f32'}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf16>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{top_k (4) exceeds the number of experts (3)}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 4, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{absent mask has 2 entries but the layer has 3 experts}}
  %y = moe.layer %x, %r gate %g up %u down %d {absent = array<i1: true, false>, activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>, %rb: tensor<4xf32>) {
  // expected-error @+1 {{operand 'router_bias' has shape 4 but expected E=3}}
  %y = moe.layer %x, %r router_bias %rb gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>, %ub: tensor<3x4xf32>) {
  // expected-error @+1 {{operand 'up_bias' has shape 3x4 but expected E=3xI=6}}
  %y = moe.layer %x, %r gate %g up %u down %d up_bias %ub {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>, tensor<3x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>, %db: tensor<3x6xf32>) {
  // expected-error @+1 {{operand 'down_bias' has shape 3x6 but expected E=3xH=4}}
  %y = moe.layer %x, %r gate %g up %u down %d down_bias %db {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>, tensor<3x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %g: tensor<3x6x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>, %gb: tensor<3x4xf32>) {
  // expected-error @+1 {{operand 'gate_bias' has shape 3x4 but expected E=3xI=6}}
  %y = moe.layer %x, %r gate %g up %u down %d gate_bias %gb {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>, tensor<3x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>, %gb: tensor<3x6xf32>) {
  // expected-error @+1 {{operand 'gate_bias' needs a gate weight}}
  %y = moe.layer %x, %r up %u down %d gate_bias %gb {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>, tensor<3x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{swiglu activation needs GLU experts (a gate weight)}}
  %y = moe.layer %x, %r up %u down %d {activation = #moe.activation<swiglu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

// Attribute verifiers.

// expected-error @+1 {{activation 'silu' takes no alpha, beta or limit (only swiglu does)}}
func.func private @a() attributes {act = #moe.activation<silu, alpha = 2.0>}

// -----

// expected-error @+1 {{swiglu limit must be positive, got -1}}
func.func private @a() attributes {act = #moe.activation<swiglu, limit = -1.0 : f32>}

// -----

// expected-error @+1 {{top_k must be at least 1, got 0}}
func.func private @a() attributes {r = #moe.routing<top_k = 0, scoring = softmax, order = score_then_topk, normalize = true>}

// -----

// expected-error @+1 {{groups and groups_kept must be at least 1, got 0 and 1}}
func.func private @a() attributes {r = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true, groups = 0>}

// -----

// expected-error @+1 {{groups_kept needs groups > 1}}
func.func private @a() attributes {r = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true, groups_kept = 2>}

// -----

// expected-error @+1 {{scale must be positive and finite, got -2}}
func.func private @a() attributes {r = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true, scale = -2.0>}

// -----

// expected-error @+1 {{norm_epsilon, norm_floor and mixer_epsilon must be finite and non-negative}}
func.func private @a() attributes {r = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true, norm_floor = -1.0e-12>}

// -----

// expected-error @+1 {{clusters_per_token must be at least 1, got 0}}
func.func private @a() attributes {r = #moe.cluster_routing<mode = hierarchical, clusters_per_token = 0>}

// -----

// expected-error @+1 {{float storage 'f16' takes no group_size, scale_type or zero_point_type}}
func.func private @a() attributes {q = #moe.quant<storage = f16, group_size = 32>}

// -----

// expected-error @+1 {{group_size must be 0 (one group per row) or positive, got -2}}
func.func private @a() attributes {q = #moe.quant<storage = i8, group_size = -2, scale_type = f32>}

// -----

// expected-error @+1 {{group_size of i4 storage must be even so groups start on a byte, got 3}}
func.func private @a() attributes {q = #moe.quant<storage = i4, group_size = 3, scale_type = f32>}

// -----

// expected-error @+1 {{integer storage needs scale_type f16, bf16 or f32}}
func.func private @a() attributes {q = #moe.quant<storage = i4, group_size = 32, scale_type = i8>}

// -----

// expected-error @+1 {{symmetric storage takes no zero_point_type (the zero point is 2^(bits-1))}}
func.func private @a() attributes {q = #moe.quant<storage = i4, group_size = 32, scale_type = f16, zero_point_type = i8>}

// -----

// expected-error @+1 {{asymmetric storage needs zero_point_type i8, f16, bf16 or f32}}
func.func private @a() attributes {q = #moe.quant<storage = i4, group_size = 32, symmetric = false, scale_type = f16>}

// -----

// expected-error @+1 {{a #moe.quant tensor must have a float element type (the dequantised type), got 'i32'}}
func.func private @a(tensor<4x4xi32, #moe.quant<storage = f16>>)

// -----

// expected-error @+1 {{a #moe.quant tensor must have rank at least 1}}
func.func private @a(tensor<f32, #moe.quant<storage = f16>>)

// -----

// expected-error @+1 {{a #moe.quant tensor must have a static shape}}
func.func private @a(tensor<?x4xf32, #moe.quant<storage = f16>>)

// -----

// moe.quantized_weight

func.func @q(%d: tensor<4x6xf16>) {
  // expected-error @+1 {{result must carry a #moe.quant encoding}}
  %0 = moe.quantized_weight %d : (tensor<4x6xf16>) -> tensor<4x6xf32>
  return
}

// -----

func.func @q(%d: tensor<4x6xi8>, %s: tensor<4x1xf16>) {
  // expected-error @+1 {{operand 'data' is 'tensor<4x6xi8>' but the encoding needs 'tensor<4x3xi8>'}}
  %0 = moe.quantized_weight %d scales %s : (tensor<4x6xi8>, tensor<4x1xf16>) -> tensor<4x6xf32, #moe.quant<storage = i4, scale_type = f16>>
  return
}

// -----

func.func @q(%d: tensor<4x6xf16>, %s: tensor<4x1xf16>) {
  // expected-error @+1 {{float storage takes no scales or zero points}}
  %0 = moe.quantized_weight %d scales %s : (tensor<4x6xf16>, tensor<4x1xf16>) -> tensor<4x6xf32, #moe.quant<storage = f16>>
  return
}

// -----

func.func @q(%d: tensor<4x3xi8>) {
  // expected-error @+1 {{integer storage needs a 'scales' operand}}
  %0 = moe.quantized_weight %d : (tensor<4x3xi8>) -> tensor<4x6xf32, #moe.quant<storage = i4, scale_type = f16>>
  return
}

// -----

func.func @q(%d: tensor<4x3xi8>, %s: tensor<4x2xf16>) {
  // expected-error @+1 {{operand 'scales' is 'tensor<4x2xf16>' but the encoding needs 'tensor<4x1xf16>'}}
  %0 = moe.quantized_weight %d scales %s : (tensor<4x3xi8>, tensor<4x2xf16>) -> tensor<4x6xf32, #moe.quant<storage = i4, scale_type = f16>>
  return
}

// -----

func.func @q(%d: tensor<4x3xi8>, %s: tensor<4x1xf16>, %z: tensor<4x1xi8>) {
  // expected-error @+1 {{symmetric storage takes no zero points}}
  %0 = moe.quantized_weight %d scales %s zero_points %z : (tensor<4x3xi8>, tensor<4x1xf16>, tensor<4x1xi8>) -> tensor<4x6xf32, #moe.quant<storage = i4, scale_type = f16>>
  return
}

// -----

func.func @q(%d: tensor<4x3xi8>, %s: tensor<4x1xf16>) {
  // expected-error @+1 {{asymmetric storage needs a 'zero_points' operand}}
  %0 = moe.quantized_weight %d scales %s : (tensor<4x3xi8>, tensor<4x1xf16>) -> tensor<4x6xf32, #moe.quant<storage = i4, symmetric = false, scale_type = f16, zero_point_type = i8>>
  return
}

// -----

func.func @q(%d: tensor<4x3xi8>, %s: tensor<4x1xf16>, %z: tensor<4x1xf16>) {
  // expected-error @+1 {{operand 'zero_points' is 'tensor<4x1xf16>' but the encoding needs 'tensor<4x1xi8>'}}
  %0 = moe.quantized_weight %d scales %s zero_points %z : (tensor<4x3xi8>, tensor<4x1xf16>, tensor<4x1xf16>) -> tensor<4x6xf32, #moe.quant<storage = i4, symmetric = false, scale_type = f16, zero_point_type = i8>>
  return
}


// -----

// moe.clustered_layer

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<?x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{operand 'up_base' must be a static G x I x H tensor with G >= 1 and I >= 1}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<?x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{assignment has 3 entries but the layer has 4 experts}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{assignment puts expert 3 in cluster 2, outside [0, 2)}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 2>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{cluster 1 has no experts}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 0, 0>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{gate_base, gate_u, gate_v and gate_ranks must be given together or not at all}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{'up_ranks' has 3 entries but the layer has 4 experts}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 2, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{'down_ranks' gives expert 1 rank -1, outside [0, 4]}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, -1, 3, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{'gate_ranks' gives expert 0 rank 5, outside [0, 4]}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 5, 0, 0, 0>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{operand 'up_u' has shape 4x6 but expected R=5xI=6}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 2, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x5xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{operand 'up_base' has shape 2x6x5 but expected G=2xI=6xH=4}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x5xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32, "enc">, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{weights of kind 'up' may carry only a #moe.quant encoding, got "enc"}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32, "enc">, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{clusters_per_token (3) exceeds the number of clusters (2)}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = hierarchical, clusters_per_token = 3>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{the 1 smallest clusters hold 1 experts, fewer than top_k (2)}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 1, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = hierarchical, clusters_per_token = 1>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{top_k (5) exceeds the number of experts (4)}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 5, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @c(%x: tensor<?x4xf32>, %r: tensor<4x4xf32>, %gb: tensor<2x6x4xf32>, %gu: tensor<4x6xf32>, %gv: tensor<4x4xf32>, %ub: tensor<2x6x4xf32>, %uu: tensor<4x6xf32>, %uv: tensor<4x4xf32>, %db: tensor<2x4x6xf32>, %du: tensor<4x4xf32>, %dv: tensor<4x6xf32>) {
  // expected-error @+1 {{absent mask has 1 entries but the layer has 4 experts}}
  %y = moe.clustered_layer %x, %r gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
      cluster_routing = #moe.cluster_routing<mode = exact>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>,
      gate_ranks = array<i64: 1, 1, 1, 1>, up_ranks = array<i64: 1, 1, 1, 1>, down_ranks = array<i64: 1, 1, 1, 1>, absent = array<i1: true>}
      : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x6x4xf32>, tensor<4x6xf32>, tensor<4x4xf32>, tensor<2x4x6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

// Routing settings beyond Mixtral's (selection bias, groups, sparsemixer, ...).

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{a selection bias needs order = score_then_topk}}
  %y = moe.layer %x, %r selection_bias %sb gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = sigmoid, order = topk_then_score, normalize = false>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{sparsemixer routing takes top_k = 2, order = score_then_topk, no selection bias, no groups and no normalize (got top_k = 3)}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 3, scoring = sparsemixer, order = score_then_topk, normalize = false>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{mixer_epsilon applies to sparsemixer scoring only}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = false, mixer_epsilon = 1.0e-02>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{group-limited routing needs order = score_then_topk}}
  %y = moe.layer %x, %r gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = sigmoid, order = topk_then_score, normalize = false, groups = 2>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{groups (3) must divide the 8 experts into groups of at least 2}}
  %y = moe.layer %x, %r selection_bias %sb gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = sigmoid, order = score_then_topk, normalize = false, groups = 3>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{groups_kept (5) exceeds groups (4)}}
  %y = moe.layer %x, %r selection_bias %sb gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = sigmoid, order = score_then_topk, normalize = false, groups = 4, groups_kept = 5>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{the 1 kept groups hold 2 experts, fewer than top_k (3)}}
  %y = moe.layer %x, %r selection_bias %sb gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 3, scoring = sigmoid, order = score_then_topk, normalize = false, groups = 4, groups_kept = 1>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{norm_epsilon and norm_floor need normalize}}
  %y = moe.layer %x, %r selection_bias %sb gate %g up %u down %d {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = false, norm_epsilon = 1.0e-20>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>, %sb: tensor<8xf32>, %g: tensor<8x6x4xf32>, %u: tensor<8x6x4xf32>, %d: tensor<8x4x6xf32>, %gb: tensor<8x6xf32>) {
  // expected-error @+1 {{weights_on_input routing needs experts without gate or up biases}}
  %y = moe.layer %x, %r gate %g up %u down %d gate_bias %gb {activation = #moe.activation<silu>, routing = #moe.routing<top_k = 1, scoring = sigmoid, order = topk_then_score, normalize = false, weights_on_input = true>}
      : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8x6x4xf32>, tensor<8x6x4xf32>, tensor<8x4x6xf32>, tensor<8x6xf32>) -> tensor<?x4xf32>
  return
}
