// Every verifier message of the onnx dialect, one case each.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) {
  // expected-error @+1 {{operands are not broadcast compatible: 2x3 and 4x3}}
  %0 = "onnx.Add"(%a, %b) : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%c: tensor<2xi1>, %a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{operands are not broadcast compatible: 2 and 2x3}}
  %0 = "onnx.Where"(%c, %a, %b) : (tensor<2xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{attribute 'approximate' must be "none" or "tanh", got "fast"}}
  %0 = "onnx.Gelu"(%a) {approximate = "fast"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{attribute 'axis' = 2 is out of range [-2, 2) for rank 2}}
  %0 = "onnx.Softmax"(%a) {axis = 2 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{attribute 'axis' = -3 is out of range [-2, 2] for rank 2}}
  %0 = "onnx.Flatten"(%a) {axis = -3 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<f32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{operands 'A' and 'B' must have rank >= 1, got 0 and 1}}
  %0 = "onnx.MatMul"(%a, %b) : (tensor<f32>, tensor<3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+1 {{inner dimensions differ: A is 2x3, B is 4x5}}
  %0 = "onnx.MatMul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x5x3xf32>, %b: tensor<4x3x5xf32>) {
  // expected-error @+1 {{batch dimensions do not broadcast: A is 2x5x3, B is 4x3x5}}
  %0 = "onnx.MatMul"(%a, %b) : (tensor<2x5x3xf32>, tensor<4x3x5xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3x4xf32>, %b: tensor<4x5xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'A' must have rank 2, got rank 3}}
  %0 = "onnx.Gemm"(%a, %b, %none) : (tensor<2x3x4xf32>, tensor<4x5xf32>, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<3x2xf32>, %b: tensor<4x5xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{inner dimensions differ: A is 3x2 (transA = 1), B is 4x5 (transB = 0)}}
  %0 = "onnx.Gemm"(%a, %b, %none) {transA = 1 : i64} : (tensor<3x2xf32>, tensor<4x5xf32>, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %b: tensor<4x5xf32>, %c: tensor<3x5xf32>) {
  // expected-error @+1 {{operand 'C' of shape 3x5 does not broadcast to 2x5}}
  %0 = "onnx.Gemm"(%a, %b, %c) : (tensor<2x4xf32>, tensor<4x5xf32>, tensor<3x5xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{equation 'ij,j.k' is malformed: unexpected '.' in term 'j.k'}}
  %0 = "onnx.Einsum"(%a, %a) {equation = "ij,j.k"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{equation 'ij->k' is malformed: output label 'k' occurs in no input}}
  %0 = "onnx.Einsum"(%a) {equation = "ij->k"} : (tensor<2x3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{equation has 2 input terms but the op has 1 inputs}}
  %0 = "onnx.Einsum"(%a) {equation = "ij,jk->ik"} : (tensor<2x3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x4x5xf32>) {
  // expected-error @+1 {{equation term 'jk' does not fit operand #1 of rank 3}}
  %0 = "onnx.Einsum"(%a, %b) {equation = "ij,jk->ik"} : (tensor<2x3xf32>, tensor<3x4x5xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+1 {{label 'j' has sizes 3 and 4}}
  %0 = "onnx.Einsum"(%a, %b) {equation = "ij,jk->ik"} : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %s: tensor<2x1xi64>) {
  // expected-error @+1 {{operand 'shape' must be 1-D, got rank 2}}
  %0 = "onnx.Reshape"(%a, %s) : (tensor<2x3xf32>, tensor<2x1xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{result rank 3 does not match the 2 entries of operand 'shape'}}
  %0 = "onnx.Reshape"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<?x?x?xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3x4xf32>) {
  // expected-error @+1 {{attribute 'perm' is not a permutation of 0..2: [0, 2, 2]}}
  %0 = "onnx.Transpose"(%a) {perm = array<i64: 0, 2, 2>} : (tensor<2x3x4xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3x4xf32>) {
  // expected-error @+1 {{attribute 'perm' has 2 entries but the input has rank 3}}
  %0 = "onnx.Transpose"(%a) {perm = array<i64: 1, 0>} : (tensor<2x3x4xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x1xf32>, %axes: tensor<i64>) {
  // expected-error @+1 {{operand 'axes' must be 1-D, got rank 0}}
  %0 = "onnx.Squeeze"(%a, %axes) : (tensor<2x1xf32>, tensor<i64>) -> tensor<*xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{needs at least one input}}
  %0 = "onnx.Concat"() {axis = 0 : i64} : () -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<2x3xf16>) {
  // expected-error @+1 {{input #1 has element type 'f16' but input #0 has 'f32'}}
  %0 = "onnx.Concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xf16>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<2x3x1xf32>) {
  // expected-error @+1 {{input #1 has rank 3 but input #0 has rank 2}}
  %0 = "onnx.Concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3x1xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<?x4xf32>) {
  // expected-error @+1 {{input #1 has size 4 in dimension 1 but input #0 has size 3}}
  %0 = "onnx.Concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<?x4xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{attribute 'axis' = 2 is out of range [-2, 2) for rank 2}}
  %0 = "onnx.Concat"(%a) {axis = 2 : i64} : (tensor<2x3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{takes either operand 'split' or attribute 'num_outputs', not both}}
  %0:2 = "onnx.Split"(%a, %s) {num_outputs = 2 : i64} : (tensor<2x4xf32>, tensor<2xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{has 2 results but attribute 'num_outputs' is 3}}
  %0:2 = "onnx.Split"(%a, %none) {num_outputs = 3 : i64} : (tensor<2x4xf32>, none) -> (tensor<*xf32>, tensor<*xf32>)
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{operand 'split' has 3 entries but the op has 2 results}}
  %0:2 = "onnx.Split"(%a, %s) : (tensor<2x4xf32>, tensor<3xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %s: tensor<2xi64>, %e: tensor<3xi64>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operands 'starts' and 'ends' have 2 and 3 entries}}
  %0 = "onnx.Slice"(%a, %s, %e, %none, %none) : (tensor<2x4xf32>, tensor<2xi64>, tensor<3xi64>, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4x1xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{operand 'repeats' has 2 entries but the input has rank 3}}
  %0 = "onnx.Tile"(%a, %s) : (tensor<2x4x1xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{attribute 'axis' = -3 is out of range [-2, 2) for rank 2}}
  %0 = "onnx.Gather"(%a, %i) {axis = -3 : i64} : (tensor<2x4xf32>, tensor<3xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %i: tensor<3xi64>) {
  // expected-error @+1 {{operands 'data' and 'indices' must have the same rank, got 2 and 1}}
  %0 = "onnx.GatherElements"(%a, %i) : (tensor<2x4xf32>, tensor<3xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %i: tensor<i64>) {
  // expected-error @+1 {{operand 'indices' must have rank >= 1}}
  %0 = "onnx.GatherND"(%a, %i) : (tensor<2x4xf32>, tensor<i64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %i: tensor<2x1xi64>) {
  // expected-error @+1 {{attribute 'batch_dims' = 2 must be in [0, min(rank of 'data', rank of 'indices'))}}
  %0 = "onnx.GatherND"(%a, %i) {batch_dims = 2 : i64} : (tensor<2x4xf32>, tensor<2x1xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %i: tensor<5x3xi64>) {
  // expected-error @+1 {{index tuples of length 3 exceed the 2 dimensions of 'data' after the batch dimensions}}
  %0 = "onnx.GatherND"(%a, %i) : (tensor<2x4xf32>, tensor<5x3xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %i: tensor<2x2xi64>, %u: tensor<2x2xf32>) {
  // expected-error @+1 {{attribute 'reduction' must be one of none, add, mul, max, min, got "sum"}}
  %0 = "onnx.ScatterElements"(%a, %i, %u) {reduction = "sum"} : (tensor<2x4xf32>, tensor<2x2xi64>, tensor<2x2xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %i: tensor<2x2xi64>, %u: tensor<2x3xf32>) {
  // expected-error @+1 {{operands 'indices' and 'updates' must have the same shape, got 2x2 and 2x3}}
  %0 = "onnx.ScatterElements"(%a, %i, %u) : (tensor<2x4xf32>, tensor<2x2xi64>, tensor<2x3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %k: tensor<2xi64>) {
  // expected-error @+1 {{operand 'K' must have exactly one element, got shape 2}}
  %0:2 = "onnx.TopK"(%a, %k) : (tensor<2x4xf32>, tensor<2xi64>) -> (tensor<*xf32>, tensor<*xi64>)
  return
}

// -----

func.func @f(%i: tensor<3xi64>, %d: tensor<i64>, %v: tensor<3xf32>) {
  // expected-error @+1 {{operand 'values' must have two elements (off, on), got shape 3}}
  %0 = "onnx.OneHot"(%i, %d, %v) : (tensor<3xi64>, tensor<i64>, tensor<3xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%i: tensor<3xi64>, %d: tensor<i64>, %v: tensor<2xf32>) {
  // expected-error @+1 {{attribute 'axis' = 2 is out of range [-2, 2) for rank 2}}
  %0 = "onnx.OneHot"(%i, %d, %v) {axis = 2 : i64} : (tensor<3xi64>, tensor<i64>, tensor<2xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %axes: tensor<1x1xi64>) {
  // expected-error @+1 {{operand 'axes' must be 1-D, got rank 2}}
  %0 = "onnx.ReduceSum"(%a, %axes) : (tensor<2x4xf32>, tensor<1x1xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4xf32>, %lo: tensor<2xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'min' must have exactly one element, got shape 2}}
  %0 = "onnx.Clip"(%a, %lo, %none) : (tensor<2x4xf32>, tensor<2xf32>, none) -> tensor<*xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{needs exactly one of 'value', 'value_float', 'value_int', 'value_floats', 'value_ints', got 2}}
  %0 = "onnx.Constant"() {value_int = 1 : i64, value_float = 1.0 : f32} : () -> tensor<i64>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{result type 'tensor<3xi64>' does not match the value's type 'tensor<2xi64>'}}
  %0 = "onnx.Constant"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<3xi64>
  return
}

// -----

func.func @f(%s: tensor<2xi64>) {
  // expected-error @+1 {{attribute 'value' must have exactly one element, got 2}}
  %0 = "onnx.ConstantOfShape"(%s) {value = dense<[1.0, 2.0]> : tensor<2xf32>} : (tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%s: tensor<2xi64>) {
  // expected-error @+1 {{result element type 'f32' does not match attribute 'value' ('i64')}}
  %0 = "onnx.ConstantOfShape"(%s) {value = dense<1> : tensor<1xi64>} : (tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2xf32>) {
  // expected-error @+1 {{attribute 'to' = 8 is not a supported onnx data type (1-7, 9-23)}}
  %0 = "onnx.Cast"(%a) {to = 8 : i64} : (tensor<2xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2xf32>) {
  // expected-error @+1 {{result element type 'f32' does not match attribute 'to' ('i64')}}
  %0 = "onnx.Cast"(%a) {to = 7 : i64} : (tensor<2xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<i64>, %b: tensor<i32>) {
  // expected-error @+1 {{operands 'start', 'limit' and 'delta' must have one element type, got 'i64', 'i32' and 'i64'}}
  %0 = "onnx.Range"(%a, %b, %a) : (tensor<i64>, tensor<i32>, tensor<i64>) -> tensor<*xi64>
  return
}

// -----

func.func @f(%x: tensor<4xf32>, %r: tensor<4x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'input' must have rank 2 or 3, got rank 1}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) : (tensor<4xf32>, tensor<4x3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<5x4xf32>, %r: tensor<3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'router_probs' must have rank 2, got rank 1}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) : (tensor<5x4xf32>, tensor<3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<2x3x4xf32>, %r: tensor<5x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'router_probs' has 5 rows but the input has 6 tokens}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) : (tensor<2x3x4xf32>, tensor<5x3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'fc1_experts_weights' must have rank 3, got rank 2}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<2x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'fc2_experts_weights' has 2 experts but 'fc1_experts_weights' has 3}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8x4xf32>, none, tensor<2x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>, %b1: tensor<8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'fc1_experts_bias' must have rank 2, got rank 1}}
  %0 = "onnx.MoE"(%x, %r, %w1, %b1, %w2, %none, %none, %none) : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8x4xf32>, tensor<8xf32>, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{attribute 'k' must be at least 1, got 0}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) {k = 0 : i64} : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{attribute 'k' = 4 exceeds the 3 experts}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) {k = 4 : i64} : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{attribute 'activation_type' must be one of relu, gelu, silu, swiglu, identity, got "tanh"}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) {activation_type = "tanh"} : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{attribute 'swiglu_fusion' must be 0, 1 or 2, got 3}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) {activation_type = "swiglu", swiglu_fusion = 3 : i64} : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<*xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<?x3xf32>, %w1: tensor<3x8x4xf32>, %w2: tensor<3x4x8xf32>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{result type 'tensor<?x8xf32>' does not match the input type 'tensor<?x4xf32>'}}
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<3x8x4xf32>, none, tensor<3x4x8xf32>, none, none, none) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf16>, %r: tensor<?x3xf16>, %w1: tensor<3x8x2xui8>, %s1: tensor<3x8xf16>, %w2: tensor<3x4x4xui8>, %s2: tensor<3x4xf16>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{attribute 'expert_weight_bits' must be 4 or 8, got 2}}
  %0 = "onnx.QMoE"(%x, %r, %w1, %s1, %none, %w2, %s2, %none, %none, %none, %none, %none, %none, %none) {expert_weight_bits = 2 : i64} : (tensor<?x4xf16>, tensor<?x3xf16>, tensor<3x8x2xui8>, tensor<3x8xf16>, none, tensor<3x4x4xui8>, tensor<3x4xf16>, none, none, none, none, none, none, none) -> tensor<*xf16>
  return
}

// -----

func.func @f(%x: tensor<?x4xf16>, %r: tensor<?x3xf16>, %w1: tensor<3x8x2xui8>, %s1: tensor<3x8x1xf16>, %w2: tensor<3x4x4xui8>, %s2: tensor<3x4x1xf16>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{attribute 'block_size' must be a power of two >= 16, got 24}}
  %0 = "onnx.QMoE"(%x, %r, %w1, %s1, %none, %w2, %s2, %none, %none, %none, %none, %none, %none, %none) {block_size = 24 : i64} : (tensor<?x4xf16>, tensor<?x3xf16>, tensor<3x8x2xui8>, tensor<3x8x1xf16>, none, tensor<3x4x4xui8>, tensor<3x4x1xf16>, none, none, none, none, none, none, none) -> tensor<*xf16>
  return
}

// -----

func.func @f(%x: tensor<?x4xf16>, %r: tensor<?x3xf16>, %w1: tensor<3x8x2xui8>, %s1: tensor<3x8x1xf16>, %w2: tensor<3x4x4xui8>, %s2: tensor<3x4xf16>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'fc1_scales' must have rank 2 without block_size, got rank 3}}
  %0 = "onnx.QMoE"(%x, %r, %w1, %s1, %none, %w2, %s2, %none, %none, %none, %none, %none, %none, %none) : (tensor<?x4xf16>, tensor<?x3xf16>, tensor<3x8x2xui8>, tensor<3x8x1xf16>, none, tensor<3x4x4xui8>, tensor<3x4xf16>, none, none, none, none, none, none, none) -> tensor<*xf16>
  return
}

// -----

func.func @f(%x: tensor<?x4xf16>, %r: tensor<?x3xf16>, %w1: tensor<3x8x2xui8>, %s1: tensor<2x8xf16>, %w2: tensor<3x4x4xui8>, %s2: tensor<3x4xf16>) {
  %none = "onnx.None"() : () -> none
  // expected-error @+1 {{operand 'fc1_scales' has 2 experts but 'fc2_experts_weights' has 3}}
  %0 = "onnx.QMoE"(%x, %r, %w1, %s1, %none, %w2, %s2, %none, %none, %none, %none, %none, %none, %none) : (tensor<?x4xf16>, tensor<?x3xf16>, tensor<3x8x2xui8>, tensor<2x8xf16>, none, tensor<3x4x4xui8>, tensor<3x4xf16>, none, none, none, none, none, none, none) -> tensor<*xf16>
  return
}
