// Round trip of every onnx op (generic form: the dialect has no custom
// assembly), attributes given as the importer gives them (a plain
// attribute dictionary) and printed back as properties.
// RUN: moe-opt %s | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @unary
func.func @unary(%x: tensor<2x3xf32>, %b: tensor<2x3xi1>, %i: tensor<?xi64>) {
  // CHECK: "onnx.Sqrt"(%{{.*}}) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %0 = "onnx.Sqrt"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Reciprocal"
  %1 = "onnx.Reciprocal"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Neg"(%{{.*}}) : (tensor<?xi64>) -> tensor<?xi64>
  %2 = "onnx.Neg"(%i) : (tensor<?xi64>) -> tensor<?xi64>
  // CHECK: "onnx.Exp"
  %3 = "onnx.Exp"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Log"
  %4 = "onnx.Log"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Erf"
  %5 = "onnx.Erf"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Tanh"
  %6 = "onnx.Tanh"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Sigmoid"
  %7 = "onnx.Sigmoid"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Relu"
  %8 = "onnx.Relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Gelu"(%{{.*}}) <{approximate = "tanh"}>
  %9 = "onnx.Gelu"(%x) {approximate = "tanh"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Gelu"(%{{.*}}) <{approximate = "none"}>
  %10 = "onnx.Gelu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Sin"
  %11 = "onnx.Sin"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Cos"
  %12 = "onnx.Cos"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Abs"
  %13 = "onnx.Abs"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Softplus"
  %14 = "onnx.Softplus"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Sign"
  %15 = "onnx.Sign"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Floor"
  %16 = "onnx.Floor"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Ceil"
  %17 = "onnx.Ceil"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Not"(%{{.*}}) : (tensor<2x3xi1>) -> tensor<2x3xi1>
  %18 = "onnx.Not"(%b) : (tensor<2x3xi1>) -> tensor<2x3xi1>
  // CHECK: "onnx.Identity"
  %19 = "onnx.Identity"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Softmax"(%{{.*}}) <{axis = 0 : i64}>
  %20 = "onnx.Softmax"(%x) {axis = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.LogSoftmax"(%{{.*}}) <{axis = -1 : i64}>
  %21 = "onnx.LogSoftmax"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// CHECK-LABEL: func.func @broadcasting
func.func @broadcasting(%x: tensor<2x3xf32>, %y: tensor<3xf32>, %b: tensor<2x1xi1>,
                        %c: tensor<3xi1>, %u: tensor<*xf32>) {
  // CHECK: "onnx.Add"(%{{.*}}, %{{.*}}) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %0 = "onnx.Add"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Sub"
  %1 = "onnx.Sub"(%x, %u) : (tensor<2x3xf32>, tensor<*xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Mul"
  %2 = "onnx.Mul"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Div"
  %3 = "onnx.Div"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Pow"
  %4 = "onnx.Pow"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Equal"(%{{.*}}, %{{.*}}) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %5 = "onnx.Equal"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  // CHECK: "onnx.Greater"
  %6 = "onnx.Greater"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  // CHECK: "onnx.Less"
  %7 = "onnx.Less"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  // CHECK: "onnx.GreaterOrEqual"
  %8 = "onnx.GreaterOrEqual"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  // CHECK: "onnx.LessOrEqual"
  %9 = "onnx.LessOrEqual"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  // CHECK: "onnx.And"
  %10 = "onnx.And"(%b, %c) : (tensor<2x1xi1>, tensor<3xi1>) -> tensor<2x3xi1>
  // CHECK: "onnx.Or"
  %11 = "onnx.Or"(%b, %c) : (tensor<2x1xi1>, tensor<3xi1>) -> tensor<2x3xi1>
  // CHECK: "onnx.Where"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x1xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %12 = "onnx.Where"(%b, %x, %y) : (tensor<2x1xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Min"(%{{.*}}, %{{.*}}, %{{.*}}) :
  %13 = "onnx.Min"(%x, %y, %x) : (tensor<2x3xf32>, tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Max"(%{{.*}}) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %14 = "onnx.Max"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: "onnx.Sum"
  %15 = "onnx.Sum"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return
}

// CHECK-LABEL: func.func @linear_algebra
func.func @linear_algebra(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>, %c: tensor<4xf32>,
                          %bt: tensor<5x2x3xf32>) {
  // CHECK: "onnx.None"() : () -> none
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.MatMul"(%{{.*}}, %{{.*}}) : (tensor<5x2x3xf32>, tensor<3x4xf32>) -> tensor<5x2x4xf32>
  %0 = "onnx.MatMul"(%bt, %b) : (tensor<5x2x3xf32>, tensor<3x4xf32>) -> tensor<5x2x4xf32>
  // CHECK: "onnx.Gemm"(%{{.*}}, %{{.*}}, %{{.*}}) <{alpha = 5.000000e-01 : f32, beta = 1.000000e+00 : f32, transA = 0 : i64, transB = 0 : i64}>
  %1 = "onnx.Gemm"(%a, %b, %c) {alpha = 0.5 : f32} : (tensor<2x3xf32>, tensor<3x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  // CHECK: "onnx.Gemm"(%{{.*}}, %{{.*}}, %{{.*}}) <{{.*}}transA = 1 : i64{{.*}}> : (tensor<3x2xf32>, tensor<3x4xf32>, none) -> tensor<2x4xf32>
  %at = "onnx.Transpose"(%a) : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %2 = "onnx.Gemm"(%at, %b, %none) {transA = 1 : i64} : (tensor<3x2xf32>, tensor<3x4xf32>, none) -> tensor<2x4xf32>
  // CHECK: "onnx.Einsum"(%{{.*}}, %{{.*}}) <{equation = "bij,bjk->bik"}>
  %bb = "onnx.Constant"() {value = dense<1.0> : tensor<5x3x4xf32>} : () -> tensor<5x3x4xf32>
  %3 = "onnx.Einsum"(%bt, %bb) {equation = "bij,bjk->bik"} : (tensor<5x2x3xf32>, tensor<5x3x4xf32>) -> tensor<5x2x4xf32>
  return
}

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<2x3x4xf32>, %s: tensor<2xi64>, %one: tensor<1xi64>,
                  %u: tensor<2x1x4xf32>) {
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.Reshape"(%{{.*}}, %{{.*}}) <{allowzero = 1 : i64}> : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  %0 = "onnx.Reshape"(%x, %s) {allowzero = 1 : i64} : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  // CHECK: "onnx.Transpose"(%{{.*}}) <{perm = array<i64: 2, 0, 1>}> : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %1 = "onnx.Transpose"(%x) {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  // CHECK: "onnx.Squeeze"(%{{.*}}, %{{.*}}) : (tensor<2x1x4xf32>, tensor<1xi64>) -> tensor<2x4xf32>
  %2 = "onnx.Squeeze"(%u, %one) : (tensor<2x1x4xf32>, tensor<1xi64>) -> tensor<2x4xf32>
  // CHECK: "onnx.Squeeze"(%{{.*}}, %{{.*}}) : (tensor<2x1x4xf32>, none) -> tensor<2x4xf32>
  %3 = "onnx.Squeeze"(%u, %none) : (tensor<2x1x4xf32>, none) -> tensor<2x4xf32>
  // CHECK: "onnx.Unsqueeze"
  %4 = "onnx.Unsqueeze"(%x, %one) : (tensor<2x3x4xf32>, tensor<1xi64>) -> tensor<*xf32>
  // CHECK: "onnx.Flatten"(%{{.*}}) <{axis = 2 : i64}> : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  %5 = "onnx.Flatten"(%x) {axis = 2 : i64} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  // CHECK: "onnx.Concat"(%{{.*}}, %{{.*}}) <{axis = 1 : i64}> : (tensor<2x3x4xf32>, tensor<2x1x4xf32>) -> tensor<2x4x4xf32>
  %6 = "onnx.Concat"(%x, %u) {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x1x4xf32>) -> tensor<2x4x4xf32>
  // CHECK: "onnx.Split"(%{{.*}}, %{{.*}}) <{axis = 2 : i64, num_outputs = 2 : i64}> : (tensor<2x3x4xf32>, none) -> (tensor<2x3x2xf32>, tensor<2x3x2xf32>)
  %7:2 = "onnx.Split"(%x, %none) {axis = 2 : i64, num_outputs = 2 : i64} : (tensor<2x3x4xf32>, none) -> (tensor<2x3x2xf32>, tensor<2x3x2xf32>)
  // CHECK: "onnx.Split"(%{{.*}}, %{{.*}}) <{axis = 0 : i64}> : (tensor<2x3x4xf32>, tensor<2xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  %8:2 = "onnx.Split"(%x, %s) : (tensor<2x3x4xf32>, tensor<2xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  // CHECK: "onnx.Slice"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x3x4xf32>, tensor<1xi64>, tensor<1xi64>, none, none) -> tensor<*xf32>
  %9 = "onnx.Slice"(%x, %one, %one, %none, %none) : (tensor<2x3x4xf32>, tensor<1xi64>, tensor<1xi64>, none, none) -> tensor<*xf32>
  // CHECK: "onnx.Expand"
  %10 = "onnx.Expand"(%u, %s) : (tensor<2x1x4xf32>, tensor<2xi64>) -> tensor<*xf32>
  // CHECK: "onnx.Tile"
  %r3 = "onnx.Constant"() {value = dense<[1, 2, 1]> : tensor<3xi64>} : () -> tensor<3xi64>
  %11 = "onnx.Tile"(%x, %r3) : (tensor<2x3x4xf32>, tensor<3xi64>) -> tensor<2x6x4xf32>
  // CHECK: "onnx.Shape"(%{{.*}}) <{end = -1 : i64, start = 1 : i64}> : (tensor<2x3x4xf32>) -> tensor<1xi64>
  %12 = "onnx.Shape"(%x) {start = 1 : i64, end = -1 : i64} : (tensor<2x3x4xf32>) -> tensor<1xi64>
  // CHECK: "onnx.Size"(%{{.*}}) : (tensor<2x3x4xf32>) -> tensor<i64>
  %13 = "onnx.Size"(%x) : (tensor<2x3x4xf32>) -> tensor<i64>
  return
}

// CHECK-LABEL: func.func @indexing
func.func @indexing(%x: tensor<5x4xf32>, %i: tensor<3xi64>, %j: tensor<5x2xi64>,
                    %upd: tensor<5x2xf32>, %nd: tensor<3x1xi64>, %k: tensor<1xi64>,
                    %depth: tensor<i64>, %vals: tensor<2xf32>) {
  // CHECK: "onnx.Gather"(%{{.*}}, %{{.*}}) <{axis = 0 : i64}> : (tensor<5x4xf32>, tensor<3xi64>) -> tensor<3x4xf32>
  %0 = "onnx.Gather"(%x, %i) : (tensor<5x4xf32>, tensor<3xi64>) -> tensor<3x4xf32>
  // CHECK: "onnx.GatherElements"(%{{.*}}, %{{.*}}) <{axis = 1 : i64}>
  %1 = "onnx.GatherElements"(%x, %j) {axis = 1 : i64} : (tensor<5x4xf32>, tensor<5x2xi64>) -> tensor<5x2xf32>
  // CHECK: "onnx.GatherND"(%{{.*}}, %{{.*}}) <{batch_dims = 0 : i64}>
  %2 = "onnx.GatherND"(%x, %nd) : (tensor<5x4xf32>, tensor<3x1xi64>) -> tensor<3x4xf32>
  // CHECK: "onnx.ScatterElements"(%{{.*}}, %{{.*}}, %{{.*}}) <{axis = 1 : i64, reduction = "add"}>
  %3 = "onnx.ScatterElements"(%x, %j, %upd) {axis = 1 : i64, reduction = "add"} : (tensor<5x4xf32>, tensor<5x2xi64>, tensor<5x2xf32>) -> tensor<5x4xf32>
  // CHECK: "onnx.ScatterND"(%{{.*}}, %{{.*}}, %{{.*}}) <{reduction = "none"}>
  %u = "onnx.Constant"() {value = dense<0.0> : tensor<3x4xf32>} : () -> tensor<3x4xf32>
  %4 = "onnx.ScatterND"(%x, %nd, %u) : (tensor<5x4xf32>, tensor<3x1xi64>, tensor<3x4xf32>) -> tensor<5x4xf32>
  // CHECK: "onnx.TopK"(%{{.*}}, %{{.*}}) <{axis = -1 : i64, largest = 1 : i64, sorted = 0 : i64}> : (tensor<5x4xf32>, tensor<1xi64>) -> (tensor<5x?xf32>, tensor<5x?xi64>)
  %5:2 = "onnx.TopK"(%x, %k) {sorted = 0 : i64} : (tensor<5x4xf32>, tensor<1xi64>) -> (tensor<5x?xf32>, tensor<5x?xi64>)
  // CHECK: "onnx.OneHot"(%{{.*}}, %{{.*}}, %{{.*}}) <{axis = -1 : i64}>
  %6 = "onnx.OneHot"(%i, %depth, %vals) : (tensor<3xi64>, tensor<i64>, tensor<2xf32>) -> tensor<3x?xf32>
  // CHECK: "onnx.NonZero"(%{{.*}}) : (tensor<5x4xf32>) -> tensor<2x?xi64>
  %7 = "onnx.NonZero"(%x) : (tensor<5x4xf32>) -> tensor<2x?xi64>
  // CHECK: "onnx.Trilu"(%{{.*}}, %{{.*}}) <{upper = 0 : i64}>
  %8 = "onnx.Trilu"(%x, %depth) {upper = 0 : i64} : (tensor<5x4xf32>, tensor<i64>) -> tensor<5x4xf32>
  return
}

// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<5x4xf32>, %axes: tensor<1xi64>, %ax: tensor<i32>) {
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.ReduceSum"(%{{.*}}, %{{.*}}) <{keepdims = 1 : i64, noop_with_empty_axes = 0 : i64}> : (tensor<5x4xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  %0 = "onnx.ReduceSum"(%x, %axes) : (tensor<5x4xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  // CHECK: "onnx.ReduceMean"(%{{.*}}, %{{.*}}) <{keepdims = 0 : i64, noop_with_empty_axes = 0 : i64}> : (tensor<5x4xf32>, none) -> tensor<f32>
  %1 = "onnx.ReduceMean"(%x, %none) {keepdims = 0 : i64} : (tensor<5x4xf32>, none) -> tensor<f32>
  // CHECK: "onnx.ReduceMax"
  %2 = "onnx.ReduceMax"(%x, %axes) : (tensor<5x4xf32>, tensor<1xi64>) -> tensor<*xf32>
  // CHECK: "onnx.ReduceMin"(%{{.*}}, %{{.*}}) <{keepdims = 1 : i64, noop_with_empty_axes = 1 : i64}>
  %3 = "onnx.ReduceMin"(%x, %none) {noop_with_empty_axes = 1 : i64} : (tensor<5x4xf32>, none) -> tensor<5x4xf32>
  // CHECK: "onnx.ArgMax"(%{{.*}}) <{axis = 1 : i64, keepdims = 0 : i64, select_last_index = 0 : i64}> : (tensor<5x4xf32>) -> tensor<5xi64>
  %4 = "onnx.ArgMax"(%x) {axis = 1 : i64, keepdims = 0 : i64} : (tensor<5x4xf32>) -> tensor<5xi64>
  // CHECK: "onnx.ArgMin"
  %5 = "onnx.ArgMin"(%x) : (tensor<5x4xf32>) -> tensor<1x4xi64>
  // CHECK: "onnx.CumSum"(%{{.*}}, %{{.*}}) <{exclusive = 1 : i64, reverse = 0 : i64}>
  %6 = "onnx.CumSum"(%x, %ax) {exclusive = 1 : i64} : (tensor<5x4xf32>, tensor<i32>) -> tensor<5x4xf32>
  return
}

// CHECK-LABEL: func.func @normalization
func.func @normalization(%x: tensor<2x8xf16>, %g: tensor<8xf16>, %lo: tensor<f16>) {
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.LayerNormalization"(%{{.*}}, %{{.*}}, %{{.*}}) <{axis = -1 : i64, epsilon = 9.99999997E-7 : f32, stash_type = 1 : i64}> : (tensor<2x8xf16>, tensor<8xf16>, none) -> (tensor<2x8xf16>, tensor<2x1xf32>, tensor<2x1xf32>)
  %0:3 = "onnx.LayerNormalization"(%x, %g, %none) {epsilon = 1.0e-6 : f32} : (tensor<2x8xf16>, tensor<8xf16>, none) -> (tensor<2x8xf16>, tensor<2x1xf32>, tensor<2x1xf32>)
  // CHECK: "onnx.Clip"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x8xf16>, tensor<f16>, none) -> tensor<2x8xf16>
  %1 = "onnx.Clip"(%x, %lo, %none) : (tensor<2x8xf16>, tensor<f16>, none) -> tensor<2x8xf16>
  return
}

// CHECK-LABEL: func.func @constants
func.func @constants(%s: tensor<2xi64>, %x: tensor<2x3xf32>, %h: tensor<4xf16>) {
  // CHECK: "onnx.Constant"() <{value = dense<[1, 2]> : tensor<2xi64>}> : () -> tensor<2xi64>
  %0 = "onnx.Constant"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.Constant"() <{value = dense_resource<blob> : tensor<2xf32>}> : () -> tensor<2xf32>
  %1 = "onnx.Constant"() {value = dense_resource<blob> : tensor<2xf32>} : () -> tensor<2xf32>
  // CHECK: "onnx.Constant"() <{value_float = 2.500000e+00 : f32}> : () -> tensor<f32>
  %2 = "onnx.Constant"() {value_float = 2.5 : f32} : () -> tensor<f32>
  // CHECK: "onnx.Constant"() <{value_int = 7 : i64}> : () -> tensor<i64>
  %3 = "onnx.Constant"() {value_int = 7 : i64} : () -> tensor<i64>
  // CHECK: "onnx.Constant"() <{value_floats = array<f32: 1.000000e+00, 2.000000e+00>}> : () -> tensor<2xf32>
  %4 = "onnx.Constant"() {value_floats = array<f32: 1.0, 2.0>} : () -> tensor<2xf32>
  // CHECK: "onnx.Constant"() <{value_ints = array<i64: 1, 2, 3>}> : () -> tensor<3xi64>
  %5 = "onnx.Constant"() {value_ints = array<i64: 1, 2, 3>} : () -> tensor<3xi64>
  // CHECK: "onnx.ConstantOfShape"(%{{.*}}) <{value = dense<1> : tensor<1xi32>}> : (tensor<2xi64>) -> tensor<?x?xi32>
  %6 = "onnx.ConstantOfShape"(%s) {value = dense<1> : tensor<1xi32>} : (tensor<2xi64>) -> tensor<?x?xi32>
  // CHECK: "onnx.ConstantOfShape"(%{{.*}}) : (tensor<2xi64>) -> tensor<?x?xf32>
  %7 = "onnx.ConstantOfShape"(%s) : (tensor<2xi64>) -> tensor<?x?xf32>
  // CHECK: "onnx.Cast"(%{{.*}}) <{saturate = 1 : i64, to = 10 : i64}> : (tensor<2x3xf32>) -> tensor<2x3xf16>
  %8 = "onnx.Cast"(%x) {to = 10 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf16>
  // CHECK: "onnx.CastLike"(%{{.*}}, %{{.*}}) <{saturate = 1 : i64}> : (tensor<2x3xf32>, tensor<4xf16>) -> tensor<2x3xf16>
  %9 = "onnx.CastLike"(%x, %h) : (tensor<2x3xf32>, tensor<4xf16>) -> tensor<2x3xf16>
  // CHECK: "onnx.Range"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %10 = "onnx.Range"(%3, %3, %3) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  return
}

// CHECK-LABEL: func.func @moe
func.func @moe(%x: tensor<?x8xf32>, %r: tensor<?x4xf32>, %w1: tensor<4x32x8xf32>,
               %w2: tensor<4x8x16xf32>, %b1: tensor<4x32xf32>) -> tensor<?x8xf32> {
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.MoE"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{activation_alpha = 1.702000e+00 : f32, activation_beta = 1.000000e+00 : f32, activation_type = "swiglu", k = 2 : i64, normalize_routing_weights = 1 : i64, swiglu_fusion = 1 : i64, swiglu_limit = 7.000000e+00 : f32, swiglu_limit_after_activation = 0 : i64, use_sparse_mixer = 0 : i64}>
  // CHECK-SAME: (tensor<?x8xf32>, tensor<?x4xf32>, tensor<4x32x8xf32>, tensor<4x32xf32>, tensor<4x8x16xf32>, none, none, none) -> tensor<?x8xf32>
  %0 = "onnx.MoE"(%x, %r, %w1, %b1, %w2, %none, %none, %none) {
      activation_type = "swiglu", k = 2 : i64, normalize_routing_weights = 1 : i64,
      swiglu_fusion = 1 : i64, swiglu_limit = 7.0 : f32, activation_alpha = 1.702 : f32,
      activation_beta = 1.0 : f32}
      : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<4x32x8xf32>, tensor<4x32xf32>,
         tensor<4x8x16xf32>, none, none, none) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// CHECK-LABEL: func.func @qmoe
func.func @qmoe(%x: tensor<2x3x8xf16>, %r: tensor<6x4xf16>, %w1: tensor<4x16x4xui8>,
                %s1: tensor<4x16xf16>, %w2: tensor<4x8x8xui8>, %s2: tensor<4x8xf16>,
                %bs1: tensor<4x16x1xf16>, %w2b: tensor<4x8x8xui8>, %s2b: tensor<4x8x1xf16>)
    -> (tensor<2x3x8xf16>, tensor<2x3x8xf16>) {
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.QMoE"({{.*}}) <{accuracy_level = 0 : i64, activation_alpha = 1.000000e+00 : f32, activation_beta = 0.000000e+00 : f32, activation_type = "silu", expert_weight_bits = 4 : i64, k = 1 : i64
  %0 = "onnx.QMoE"(%x, %r, %w1, %s1, %none, %w2, %s2, %none, %none, %none, %none, %none, %none, %none) {
      activation_type = "silu"}
      : (tensor<2x3x8xf16>, tensor<6x4xf16>, tensor<4x16x4xui8>, tensor<4x16xf16>, none,
         tensor<4x8x8xui8>, tensor<4x8xf16>, none, none, none, none, none, none, none)
      -> tensor<2x3x8xf16>
  // CHECK: "onnx.QMoE"({{.*}}) <{{{.*}}block_size = 16 : i64{{.*}}expert_weight_bits = 8 : i64
  %1 = "onnx.QMoE"(%x, %r, %w1, %bs1, %none, %w2b, %s2b, %none, %none, %none, %none, %none, %none, %none) {
      expert_weight_bits = 8 : i64, block_size = 16 : i64}
      : (tensor<2x3x8xf16>, tensor<6x4xf16>, tensor<4x16x4xui8>, tensor<4x16x1xf16>, none,
         tensor<4x8x8xui8>, tensor<4x8x1xf16>, none, none, none, none, none, none, none)
      -> tensor<2x3x8xf16>
  return %0, %1 : tensor<2x3x8xf16>, tensor<2x3x8xf16>
}

{-#
  dialect_resources: {
    builtin: {
      blob: "0x040000000000803F00000040"
    }
  }
#-}
