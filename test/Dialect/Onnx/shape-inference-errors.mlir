// What only shape inference can see (constant operand values, inferred
// against declared types): one case per message.
// RUN: moe-opt %s -split-input-file -verify-diagnostics --onnx-shape-inference=fold=false

func.func @f(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{inferred type 'tensor<2x3xf32>' for result #0 conflicts with its declared type 'tensor<2x4xf32>'}}
  %0 = "onnx.Add"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{inferred type 'tensor<3x2xf32>' for result #0 conflicts with its declared type 'tensor<3x2x1xf32>'}}
  %0 = "onnx.Transpose"(%a) : (tensor<2x3xf32>) -> tensor<3x2x1xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[-1, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'shape' has more than one -1: -1x-1}}
  %0 = "onnx.Reshape"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[6, -3]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'shape' has invalid entry -3 at index 1}}
  %0 = "onnx.Reshape"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<6xf32>) {
  %s = "onnx.Constant"() {value = dense<[6, 0]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'shape' copies dimension 1 with 0 but the input has rank 1}}
  %0 = "onnx.Reshape"(%a, %s) : (tensor<6xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<0x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[0, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'shape' has both 0 and -1 with allowzero = 1}}
  %0 = "onnx.Reshape"(%a, %s) {allowzero = 1 : i64} : (tensor<0x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[4, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{cannot reshape 2x3 (6 elements) into 4x-1}}
  %0 = "onnx.Reshape"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[2, 0, 2]> : tensor<3xi64>} : () -> tensor<3xi64>
  // expected-error @+1 {{cannot reshape 2x3 (6 elements) into 2x3x2}}
  %0 = "onnx.Reshape"(%a, %s) : (tensor<2x3xf32>, tensor<3xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %axes = "onnx.Constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  // expected-error @+1 {{cannot squeeze dimension 1 of size 3 (input 2x3)}}
  %0 = "onnx.Squeeze"(%a, %axes) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %axes = "onnx.Constant"() {value = dense<[3]> : tensor<1xi64>} : () -> tensor<1xi64>
  // expected-error @+1 {{operand 'axes' has entry 3 out of range [-3, 3)}}
  %0 = "onnx.Unsqueeze"(%a, %axes) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %axes = "onnx.Constant"() {value = dense<[1, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'axes' names axis 1 twice}}
  %0 = "onnx.ReduceSum"(%a, %axes) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[4, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'split' has a negative entry -1}}
  %0:2 = "onnx.Split"(%a, %s) {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[1, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{split sizes sum to 2 but dimension 1 has size 3}}
  %0:2 = "onnx.Split"(%a, %s) {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %c = "onnx.Constant"() {value = dense<[0]> : tensor<1xi64>} : () -> tensor<1xi64>
  %one = "onnx.Constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  // expected-error @+1 {{operand 'steps' has a zero entry (axis 1)}}
  %0 = "onnx.Slice"(%a, %c, %one, %one, %c) : (tensor<2x3xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[2, -3]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'shape' has a negative entry -3}}
  %0 = "onnx.Expand"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %s = "onnx.Constant"() {value = dense<[2, 4]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{cannot expand 2x3 to shape 2x4}}
  %0 = "onnx.Expand"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %r = "onnx.Constant"() {value = dense<[2, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'repeats' has a negative entry -1}}
  %0 = "onnx.Tile"(%a, %r) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %k = "onnx.Constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  // expected-error @+1 {{K = -1 is negative}}
  %0:2 = "onnx.TopK"(%a, %k) : (tensor<2x3xf32>, tensor<1xi64>) -> (tensor<*xf32>, tensor<*xi64>)
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>) {
  %k = "onnx.Constant"() {value = dense<[4]> : tensor<1xi64>} : () -> tensor<1xi64>
  // expected-error @+1 {{K = 4 exceeds the size 3 of axis 1}}
  %0:2 = "onnx.TopK"(%a, %k) : (tensor<2x3xf32>, tensor<1xi64>) -> (tensor<*xf32>, tensor<*xi64>)
  return
}

// -----

func.func @f(%i: tensor<3xi64>, %v: tensor<2xf32>) {
  %d = "onnx.Constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  // expected-error @+1 {{depth = 0 must be positive}}
  %0 = "onnx.OneHot"(%i, %d, %v) : (tensor<3xi64>, tensor<i64>, tensor<2xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @f() {
  %s = "onnx.Constant"() {value = dense<[2, -2]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{operand 'input' has a negative entry -2}}
  %0 = "onnx.ConstantOfShape"(%s) : (tensor<2xi64>) -> tensor<*xf32>
  return
}

// -----

func.func @f() {
  %s = "onnx.Constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %z = "onnx.Constant"() {value = dense<0.0> : tensor<f32>} : () -> tensor<f32>
  // expected-error @+1 {{operand 'delta' is zero}}
  %0 = "onnx.Range"(%s, %s, %z) : (tensor<f32>, tensor<f32>, tensor<f32>) -> tensor<*xf32>
  return
}
