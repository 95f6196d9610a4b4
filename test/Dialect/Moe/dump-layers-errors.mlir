// Layer dumps need constant weights with data; each failure names the operand.
// RUN: moe-opt %s -split-input-file -verify-diagnostics --moe-dump-layers=%t
// RUN: not moe-opt %s -split-input-file --moe-dump-layers 2>&1 | FileCheck %s --check-prefix=NODIR
// RUN: not moe-opt %s -split-input-file --moe-dump-layers=/proc/no-such-dir 2>&1 | FileCheck %s --check-prefix=BADDIR

// NODIR: moe-dump-layers needs a directory: --moe-dump-layers=dir=DIR
// BADDIR: cannot create directory '/proc/no-such-dir'

func.func @argument_weight(%x: tensor<?x2xf32>, %r: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %u = arith.constant dense<1.0> : tensor<2x3x2xf32>
  %d = arith.constant dense<1.0> : tensor<2x2x3xf32>
  // expected-error @+1 {{operand 'router_weight' is not a constant (layer dumps and the compression passes need constant weights)}}
  %y = moe.layer %x, %r up %u down %d {activation = #moe.activation<relu>,
      routing = #moe.routing<top_k = 1, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2x3x2xf32>, tensor<2x2x3xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

func.func @missing_blob(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %r = arith.constant dense<1.0> : tensor<2x2xf32>
  %u = arith.constant dense_resource<nowhere> : tensor<2x3x2xf32>
  %d = arith.constant dense<1.0> : tensor<2x2x3xf32>
  // expected-error @+1 {{operand 'up_weight': resource 'nowhere' has no data}}
  %y = moe.layer %x, %r up %u down %d {activation = #moe.activation<relu>,
      routing = #moe.routing<top_k = 1, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2x3x2xf32>, tensor<2x2x3xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

func.func @short_blob(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %r = arith.constant dense<1.0> : tensor<2x2xf32>
  %u = arith.constant dense_resource<short> : tensor<2x3x2xf32>
  %d = arith.constant dense<1.0> : tensor<2x2x3xf32>
  // expected-error @+1 {{operand 'up_weight' holds 4 bytes but its type 'tensor<2x3x2xf32>' needs 48}}
  %y = moe.layer %x, %r up %u down %d {activation = #moe.activation<relu>,
      routing = #moe.routing<top_k = 1, scoring = softmax, order = score_then_topk, normalize = true>}
      : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2x3x2xf32>, tensor<2x2x3xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

{-#
  dialect_resources: {
    builtin: {
      short: "0x040000000000803F"
    }
  }
#-}
