// Malformed moe IR gets a parse error at the spot, never a crash.
// RUN: moe-opt %s -split-input-file -verify-diagnostics
// RUN: not moe-opt %S/Inputs/truncated.mlir 2>&1 | FileCheck %s --check-prefix=TRUNC
// TRUNC: error: expected SSA operand

// expected-error @+2 {{expected ::mlir::moe::ActivationKind to be one of: silu, gelu, gelu_tanh, relu, identity, swiglu}}
// expected-error @+1 {{failed to parse Moe_ActivationAttr parameter 'kind'}}
func.func private @a() attributes {act = #moe.activation<swish>}

// -----

// expected-error @+2 {{expected ::mlir::moe::QuantStorage to be one of: i4, i8, f16, bf16, f32}}
// expected-error @+1 {{failed to parse Moe_QuantAttr parameter 'storage'}}
func.func private @a() attributes {q = #moe.quant<storage = i3>}

// -----

// expected-error @+2 {{expected ::mlir::moe::Scoring to be one of: softmax, sigmoid}}
// expected-error @+1 {{failed to parse Moe_RoutingAttr parameter 'scoring'}}
func.func private @a() attributes {r = #moe.routing<top_k = 2, scoring = tanh, order = score_then_topk, normalize = true>}

// -----

// A missing routing parameter.
// expected-error @+1 {{struct is missing required parameter: order}}
func.func private @a() attributes {r = #moe.routing<top_k = 2, scoring = softmax>}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %u: tensor<3x6x4xf32>, %d: tensor<3x4x6xf32>) {
  // A layer without its routing attribute.
  // expected-error @+1 {{requires attribute 'routing'}}
  %y = moe.layer %x, %r up %u down %d {activation = #moe.activation<silu>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xf32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %u: tensor<3x6x4xi32>, %d: tensor<3x4x6xf32>) {
  // expected-error @+1 {{operand #2 must be ranked tensor of 16-bit float or bfloat16 type or 32-bit float values}}
  %y = moe.layer %x, %r up %u down %d {activation = #moe.activation<silu>,
      routing = #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x6x4xi32>, tensor<3x4x6xf32>) -> tensor<?x4xf32>
  return
}
