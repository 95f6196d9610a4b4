// Ops the pass cannot lower are errors naming the op and the reason (and
// the node: node-names.mlir).
// RUN: moe-opt %s --split-input-file --verify-diagnostics --convert-onnx-to-linalg

func.func @moe(%x: tensor<?x16xf32>, %r: tensor<?x4xf32>, %w1: tensor<4x8x16xf32>, %w2: tensor<4x16x8xf32>) -> tensor<?x16xf32> {
  %n = "onnx.None"() : () -> none
  // expected-error @+1 {{'onnx.MoE': was not raised to moe.layer (run --moe-raise-experts before this pass; when it ran, its remark on this node says why the layer was declined)}}
  %0 = "onnx.MoE"(%x, %r, %w1, %n, %w2, %n, %n, %n) {k = 1 : i64} : (tensor<?x16xf32>, tensor<?x4xf32>, tensor<4x8x16xf32>, none, tensor<4x16x8xf32>, none, none, none) -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

func.func @unranked(%x: tensor<?x16xf32>) -> tensor<*xf32> {
  // expected-error @+1 {{'onnx.Relu': result #0 has type 'tensor<*xf32>', not a ranked tensor (run --onnx-shape-inference first)}}
  %0 = "onnx.Relu"(%x) : (tensor<?x16xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// -----

func.func @int_sqrt(%x: tensor<4xi32>) -> tensor<4xi32> {
  // expected-error @+1 {{'onnx.Sqrt': is only defined for float tensors, not 'i32'}}
  %0 = "onnx.Sqrt"(%x) : (tensor<4xi32>) -> tensor<4xi32>
  return %0 : tensor<4xi32>
}

// -----

func.func @runtime_axes(%x: tensor<?x4xf32>, %a: tensor<1xi64>) -> tensor<?x?x?xf32> {
  // expected-error @+1 {{'onnx.Unsqueeze': axes known only at run time need a static result shape, not 'tensor<?x?x?xf32>'}}
  %0 = "onnx.Unsqueeze"(%x, %a) : (tensor<?x4xf32>, tensor<1xi64>) -> tensor<?x?x?xf32>
  return %0 : tensor<?x?x?xf32>
}

// -----

func.func @runtime_reduce(%x: tensor<?x4xf32>, %a: tensor<1xi64>) -> tensor<?xf32> {
  // expected-error @+1 {{'onnx.ReduceSum': axes known only at run time without keepdims need a static result shape, not 'tensor<?xf32>'}}
  %0 = "onnx.ReduceSum"(%x, %a) {keepdims = 0 : i64} : (tensor<?x4xf32>, tensor<1xi64>) -> tensor<?xf32>
  return %0 : tensor<?xf32>
}

// -----

func.func @expand(%x: tensor<3x1xf32>, %s: tensor<?xi64>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'onnx.Expand': the length of shape must be static}}
  %0 = "onnx.Expand"(%x, %s) : (tensor<3x1xf32>, tensor<?xi64>) -> tensor<3x4xf32>
  return %0 : tensor<3x4xf32>
}

// -----

func.func @softmax_int(%x: tensor<3x4xi32>) -> tensor<3x4xi32> {
  // expected-error @+1 {{'onnx.Softmax': is only defined for float tensors}}
  %0 = "onnx.Softmax"(%x) : (tensor<3x4xi32>) -> tensor<3x4xi32>
  return %0 : tensor<3x4xi32>
}

// -----

// Every failing op is reported, not only the first.
func.func @two(%x: tensor<4xi32>) -> (tensor<4xi32>, tensor<4xi32>) {
  // expected-error @+1 {{'onnx.Exp': is only defined for float tensors}}
  %0 = "onnx.Exp"(%x) : (tensor<4xi32>) -> tensor<4xi32>
  // expected-error @+1 {{'onnx.Log': is only defined for float tensors}}
  %1 = "onnx.Log"(%x) : (tensor<4xi32>) -> tensor<4xi32>
  return %0, %1 : tensor<4xi32>, tensor<4xi32>
}
