// --onnx-shape-inference: result types refined op by op, the function type
// updated; with folding (the default) shape computations become constants.
// RUN: moe-opt %s --onnx-shape-inference=fold=false | FileCheck %s
// RUN: moe-opt %s --onnx-shape-inference | FileCheck %s --check-prefix=FOLD

// CHECK-LABEL: func.func @broadcast
// CHECK-SAME: -> tensor<4x3x5xf32>
func.func @broadcast(%a: tensor<4x1x5xf32>, %b: tensor<3x1xf32>, %c: tensor<?x5xf32>) -> tensor<4x?x5xf32> {
  // CHECK: "onnx.Add"{{.*}} -> tensor<4x3x5xf32>
  %0 = "onnx.Add"(%a, %b) : (tensor<4x1x5xf32>, tensor<3x1xf32>) -> tensor<*xf32>
  // A dynamic size against 3 is 3 (it can only be 1 or 3), against 1 it
  // stays dynamic.
  // CHECK: "onnx.Mul"{{.*}} -> tensor<3x5xf32>
  %1 = "onnx.Mul"(%c, %b) : (tensor<?x5xf32>, tensor<3x1xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Mul"{{.*}} -> tensor<4x?x5xf32>
  %m = "onnx.Mul"(%a, %c) : (tensor<4x1x5xf32>, tensor<?x5xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Sub"{{.*}} -> tensor<4x3x5xf32>
  %2 = "onnx.Sub"(%0, %1) : (tensor<*xf32>, tensor<*xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Equal"{{.*}} -> tensor<4x3x5xi1>
  %3 = "onnx.Equal"(%2, %0) : (tensor<*xf32>, tensor<*xf32>) -> tensor<*xi1>
  // CHECK: "onnx.Where"{{.*}} -> tensor<4x3x5xf32>
  %4 = "onnx.Where"(%3, %2, %c) : (tensor<*xi1>, tensor<*xf32>, tensor<?x5xf32>) -> tensor<*xf32>
  // A declared static size is kept where the inferred one is dynamic.
  // CHECK: "onnx.Relu"{{.*}} -> tensor<4x3x5xf32>
  %5 = "onnx.Relu"(%4) : (tensor<*xf32>) -> tensor<4x?x5xf32>
  return %5 : tensor<4x?x5xf32>
}

// CHECK-LABEL: func.func @matmul
func.func @matmul(%a: tensor<2x1x3x4xf32>, %b: tensor<5x4x6xf32>, %v: tensor<4xf32>,
                  %d: tensor<?x?x4xf32>) {
  // CHECK: "onnx.MatMul"{{.*}} -> tensor<2x5x3x6xf32>
  %0 = "onnx.MatMul"(%a, %b) : (tensor<2x1x3x4xf32>, tensor<5x4x6xf32>) -> tensor<*xf32>
  // CHECK: "onnx.MatMul"{{.*}} -> tensor<2x1x3xf32>
  %1 = "onnx.MatMul"(%a, %v) : (tensor<2x1x3x4xf32>, tensor<4xf32>) -> tensor<*xf32>
  // CHECK: "onnx.MatMul"{{.*}} -> tensor<5x6xf32>
  %2 = "onnx.MatMul"(%v, %b) : (tensor<4xf32>, tensor<5x4x6xf32>) -> tensor<*xf32>
  // CHECK: "onnx.MatMul"{{.*}} -> tensor<f32>
  %3 = "onnx.MatMul"(%v, %v) : (tensor<4xf32>, tensor<4xf32>) -> tensor<*xf32>
  // CHECK: "onnx.MatMul"{{.*}} -> tensor<5x?x6xf32>
  %4 = "onnx.MatMul"(%d, %b) : (tensor<?x?x4xf32>, tensor<5x4x6xf32>) -> tensor<*xf32>
  return
}

// CHECK-LABEL: func.func @gemm
func.func @gemm(%a: tensor<3x2xf32>, %b: tensor<5x3xf32>, %c: tensor<5xf32>) {
  // CHECK: "onnx.Gemm"{{.*}} -> tensor<2x5xf32>
  %0 = "onnx.Gemm"(%a, %b, %c) {transA = 1 : i64, transB = 1 : i64} : (tensor<3x2xf32>, tensor<5x3xf32>, tensor<5xf32>) -> tensor<*xf32>
  return
}

// CHECK-LABEL: func.func @reshape
func.func @reshape(%x: tensor<2x3x4xf32>, %d: tensor<?x3x4xf32>) {
  %s = "onnx.Constant"() {value = dense<[0, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.Reshape"{{.*}} -> tensor<2x12xf32>
  %0 = "onnx.Reshape"(%x, %s) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<*xf32>
  %t = "onnx.Constant"() {value = dense<[-1, 6]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.Reshape"{{.*}} -> tensor<4x6xf32>
  %1 = "onnx.Reshape"(%x, %t) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<*xf32>
  // A dynamic dimension copied with 0 stays dynamic; -1 cannot be inferred.
  %u = "onnx.Constant"() {value = dense<[0, 0, -1, 2]> : tensor<4xi64>} : () -> tensor<4xi64>
  // CHECK: "onnx.Reshape"{{.*}} -> tensor<?x3x?x2xf32>
  %2 = "onnx.Reshape"(%d, %u) : (tensor<?x3x4xf32>, tensor<4xi64>) -> tensor<*xf32>
  // With allowzero, 0 is a size.
  %z = "onnx.Constant"() {value = dense<[0, 4]> : tensor<2xi64>} : () -> tensor<2xi64>
  %e = "onnx.Constant"() {value = dense<0.0> : tensor<0x2xf32>} : () -> tensor<0x2xf32>
  // CHECK: "onnx.Reshape"{{.*}} -> tensor<0x4xf32>
  %3 = "onnx.Reshape"(%e, %z) {allowzero = 1 : i64} : (tensor<0x2xf32>, tensor<2xi64>) -> tensor<*xf32>
  return
}

// CHECK-LABEL: func.func @transpose_squeeze_unsqueeze
func.func @transpose_squeeze_unsqueeze(%x: tensor<2x1x4xf32>) {
  // CHECK: "onnx.Transpose"{{.*}} -> tensor<4x2x1xf32>
  %0 = "onnx.Transpose"(%x) {perm = array<i64: 2, 0, 1>} : (tensor<2x1x4xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Transpose"{{.*}} -> tensor<4x1x2xf32>
  %1 = "onnx.Transpose"(%x) : (tensor<2x1x4xf32>) -> tensor<*xf32>
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.Squeeze"{{.*}} -> tensor<2x4xf32>
  %2 = "onnx.Squeeze"(%x, %none) : (tensor<2x1x4xf32>, none) -> tensor<*xf32>
  %m2 = "onnx.Constant"() {value = dense<[-2]> : tensor<1xi64>} : () -> tensor<1xi64>
  // CHECK: "onnx.Squeeze"{{.*}} -> tensor<2x4xf32>
  %3 = "onnx.Squeeze"(%x, %m2) : (tensor<2x1x4xf32>, tensor<1xi64>) -> tensor<*xf32>
  %ax = "onnx.Constant"() {value = dense<[0, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.Unsqueeze"{{.*}} -> tensor<1x2x1x4x1xf32>
  %4 = "onnx.Unsqueeze"(%x, %ax) : (tensor<2x1x4xf32>, tensor<2xi64>) -> tensor<*xf32>
  // CHECK: "onnx.Flatten"{{.*}} -> tensor<2x4xf32>
  %5 = "onnx.Flatten"(%x) {axis = -2 : i64} : (tensor<2x1x4xf32>) -> tensor<*xf32>
  return
}

// CHECK-LABEL: func.func @concat_split
func.func @concat_split(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>, %c: tensor<?x?xf32>) {
  // CHECK: "onnx.Concat"{{.*}} -> tensor<2x8xf32>
  %0 = "onnx.Concat"(%a, %b) {axis = -1 : i64} : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Concat"{{.*}} -> tensor<2x?xf32>
  %1 = "onnx.Concat"(%a, %c) {axis = 1 : i64} : (tensor<2x3xf32>, tensor<?x?xf32>) -> tensor<*xf32>
  %s = "onnx.Constant"() {value = dense<[2, 6]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.Split"{{.*}} -> (tensor<2x2xf32>, tensor<2x6xf32>)
  %2:2 = "onnx.Split"(%0, %s) {axis = 1 : i64} : (tensor<*xf32>, tensor<2xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  %none = "onnx.None"() : () -> none
  // Uneven num_outputs: the last part is smaller.
  // CHECK: "onnx.Split"{{.*}} -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x2xf32>)
  %3:3 = "onnx.Split"(%0, %none) {axis = 1 : i64, num_outputs = 3 : i64} : (tensor<*xf32>, none) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return
}

// CHECK-LABEL: func.func @slice
func.func @slice(%x: tensor<10x8x6xf32>) {
  %none = "onnx.None"() : () -> none
  %starts = "onnx.Constant"() {value = dense<[-3, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %ends = "onnx.Constant"() {value = dense<[9223372036854775807, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %axes = "onnx.Constant"() {value = dense<[0, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %steps = "onnx.Constant"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  // [-3:] along 0 is 3 long; [1:-1:2] along 2 is 2 long.
  // CHECK: "onnx.Slice"{{.*}} -> tensor<3x8x2xf32>
  %0 = "onnx.Slice"(%x, %starts, %ends, %axes, %steps) : (tensor<10x8x6xf32>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>) -> tensor<*xf32>
  // A reversed slice [::-1] (ends below the range) and a default axis.
  %rs = "onnx.Constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %re = "onnx.Constant"() {value = dense<[-9223372036854775807]> : tensor<1xi64>} : () -> tensor<1xi64>
  %rstep = "onnx.Constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  // CHECK: "onnx.Slice"{{.*}} -> tensor<10x8x6xf32>
  %1 = "onnx.Slice"(%x, %rs, %re, %none, %rstep) : (tensor<10x8x6xf32>, tensor<1xi64>, tensor<1xi64>, none, tensor<1xi64>) -> tensor<*xf32>
  // [7:2:-2] along axis 1 is 7, 5, 3.
  %s2 = "onnx.Constant"() {value = dense<[7]> : tensor<1xi32>} : () -> tensor<1xi32>
  %e2 = "onnx.Constant"() {value = dense<[2]> : tensor<1xi32>} : () -> tensor<1xi32>
  %a2 = "onnx.Constant"() {value = dense<[1]> : tensor<1xi32>} : () -> tensor<1xi32>
  %st2 = "onnx.Constant"() {value = dense<[-2]> : tensor<1xi32>} : () -> tensor<1xi32>
  // CHECK: "onnx.Slice"{{.*}} -> tensor<10x3x6xf32>
  %2 = "onnx.Slice"(%x, %s2, %e2, %a2, %st2) : (tensor<10x8x6xf32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32>) -> tensor<*xf32>
  return
}

// CHECK-LABEL: func.func @gather_topk
func.func @gather_topk(%x: tensor<5x7x3xf32>, %i: tensor<2x4xi64>) {
  // CHECK: "onnx.Gather"{{.*}} -> tensor<5x2x4x3xf32>
  %0 = "onnx.Gather"(%x, %i) {axis = -2 : i64} : (tensor<5x7x3xf32>, tensor<2x4xi64>) -> tensor<*xf32>
  %s = "onnx.Constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  // CHECK: "onnx.Gather"{{.*}} -> tensor<7x3xf32>
  %1 = "onnx.Gather"(%x, %s) : (tensor<5x7x3xf32>, tensor<i64>) -> tensor<*xf32>
  %k = "onnx.Constant"() {value = dense<[2]> : tensor<1xi64>} : () -> tensor<1xi64>
  // CHECK: "onnx.TopK"{{.*}} -> (tensor<5x2x3xf32>, tensor<5x2x3xi64>)
  %2:2 = "onnx.TopK"(%x, %k) {axis = 1 : i64} : (tensor<5x7x3xf32>, tensor<1xi64>) -> (tensor<*xf32>, tensor<*xi64>)
  // CHECK: "onnx.GatherElements"{{.*}} -> tensor<2x4xf32>
  %y = "onnx.Constant"() {value = dense<0.0> : tensor<3x4xf32>} : () -> tensor<3x4xf32>
  %3 = "onnx.GatherElements"(%y, %i) : (tensor<3x4xf32>, tensor<2x4xi64>) -> tensor<*xf32>
  // CHECK: "onnx.GatherND"{{.*}} -> tensor<2x3xf32>
  %nd = "onnx.Constant"() {value = dense<[[0, 1], [4, 6]]> : tensor<2x2xi64>} : () -> tensor<2x2xi64>
  %4 = "onnx.GatherND"(%x, %nd) : (tensor<5x7x3xf32>, tensor<2x2xi64>) -> tensor<*xf32>
  return
}

// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<2x3x4xf32>) {
  %none = "onnx.None"() : () -> none
  %axes = "onnx.Constant"() {value = dense<[-1, 0]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.ReduceSum"{{.*}} -> tensor<1x3x1xf32>
  %0 = "onnx.ReduceSum"(%x, %axes) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<*xf32>
  // CHECK: "onnx.ReduceMean"{{.*}} -> tensor<3xf32>
  %1 = "onnx.ReduceMean"(%x, %axes) {keepdims = 0 : i64} : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<*xf32>
  // CHECK: "onnx.ReduceMax"{{.*}} -> tensor<f32>
  %2 = "onnx.ReduceMax"(%x, %none) {keepdims = 0 : i64} : (tensor<2x3x4xf32>, none) -> tensor<*xf32>
  // CHECK: "onnx.ReduceMin"{{.*}} -> tensor<2x3x4xf32>
  %3 = "onnx.ReduceMin"(%x, %none) {noop_with_empty_axes = 1 : i64} : (tensor<2x3x4xf32>, none) -> tensor<*xf32>
  // CHECK: "onnx.ArgMax"{{.*}} -> tensor<2x4xi64>
  %4 = "onnx.ArgMax"(%x) {axis = 1 : i64, keepdims = 0 : i64} : (tensor<2x3x4xf32>) -> tensor<*xi64>
  return
}

// CHECK-LABEL: func.func @expand_tile_onehot
func.func @expand_tile_onehot(%x: tensor<3x1xf32>, %i: tensor<5xi64>) {
  %s = "onnx.Constant"() {value = dense<[2, 1, 4]> : tensor<3xi64>} : () -> tensor<3xi64>
  // CHECK: "onnx.Expand"{{.*}} -> tensor<2x3x4xf32>
  %0 = "onnx.Expand"(%x, %s) : (tensor<3x1xf32>, tensor<3xi64>) -> tensor<*xf32>
  %r = "onnx.Constant"() {value = dense<[2, 3]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.Tile"{{.*}} -> tensor<6x3xf32>
  %1 = "onnx.Tile"(%x, %r) : (tensor<3x1xf32>, tensor<2xi64>) -> tensor<*xf32>
  %depth = "onnx.Constant"() {value = dense<8.0> : tensor<f32>} : () -> tensor<f32>
  %vals = "onnx.Constant"() {value = dense<[0, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.OneHot"{{.*}} -> tensor<8x5xi64>
  %2 = "onnx.OneHot"(%i, %depth, %vals) {axis = 0 : i64} : (tensor<5xi64>, tensor<f32>, tensor<2xi64>) -> tensor<*xf32>
  // CHECK: "onnx.NonZero"{{.*}} -> tensor<1x?xi64>
  %3 = "onnx.NonZero"(%i) : (tensor<5xi64>) -> tensor<*xi64>
  %c = "onnx.Constant"() {value = dense<[3, 4]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "onnx.ConstantOfShape"{{.*}} -> tensor<3x4xi1>
  %4 = "onnx.ConstantOfShape"(%c) {value = dense<true> : tensor<1xi1>} : (tensor<2xi64>) -> tensor<*xi1>
  %start = "onnx.Constant"() {value = dense<10> : tensor<i64>} : () -> tensor<i64>
  %limit = "onnx.Constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %delta = "onnx.Constant"() {value = dense<-4> : tensor<i64>} : () -> tensor<i64>
  // CHECK: "onnx.Range"{{.*}} -> tensor<3xi64>
  %5 = "onnx.Range"(%start, %limit, %delta) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<*xf32>
  // CHECK: "onnx.Cast"{{.*}} -> tensor<3x1xf16>
  %6 = "onnx.Cast"(%x) {to = 10 : i64} : (tensor<3x1xf32>) -> tensor<*xf16>
  // CHECK: "onnx.Size"{{.*}} -> tensor<i64>
  %7 = "onnx.Size"(%x) : (tensor<3x1xf32>) -> tensor<*xi64>
  // CHECK: "onnx.Shape"{{.*}} -> tensor<1xi64>
  %8 = "onnx.Shape"(%x) {start = -1 : i64} : (tensor<3x1xf32>) -> tensor<*xi64>
  return
}

// CHECK-LABEL: func.func @einsum
func.func @einsum(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>, %t: tensor<7x4xf32>,
                  %e: tensor<6x4xf32>) {
  // CHECK: "onnx.Einsum"{{.*}} -> tensor<2x3x5xf32>
  %0 = "onnx.Einsum"(%a, %b) {equation = "bij,bjk->bik"} : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Einsum"{{.*}} -> tensor<7x6xf32>
  %1 = "onnx.Einsum"(%t, %e) {equation = "ij, ej -> ie"} : (tensor<7x4xf32>, tensor<6x4xf32>) -> tensor<*xf32>
  // Implicit output: labels used once, alphabetically.
  // CHECK: "onnx.Einsum"{{.*}} -> tensor<6x7xf32>
  %2 = "onnx.Einsum"(%t, %e) {equation = "ij,ej"} : (tensor<7x4xf32>, tensor<6x4xf32>) -> tensor<*xf32>
  // CHECK: "onnx.Einsum"{{.*}} -> tensor<2x4x3xf32>
  %3 = "onnx.Einsum"(%a) {equation = "...ij->...ji"} : (tensor<2x3x4xf32>) -> tensor<*xf32>
  return
}

// CHECK-LABEL: func.func @layer_norm
func.func @layer_norm(%x: tensor<2x5x8xbf16>, %g: tensor<8xbf16>) {
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.LayerNormalization"{{.*}} -> (tensor<2x5x8xbf16>, tensor<2x5x1xf32>, tensor<2x5x1xf32>)
  %0:3 = "onnx.LayerNormalization"(%x, %g, %none) : (tensor<2x5x8xbf16>, tensor<8xbf16>, none) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return
}

// CHECK-LABEL: func.func @moe
// CHECK-SAME: -> (tensor<?x16xf32>, tensor<2x3x16xf16>)
func.func @moe(%x: tensor<?x16xf32>, %r: tensor<?x4xf32>, %w1: tensor<4x64x16xf32>,
               %w2: tensor<4x16x32xf32>, %hx: tensor<2x3x16xf16>, %hr: tensor<6x4xf16>,
               %q1: tensor<4x32x8xui8>, %s1: tensor<4x32xf16>, %q2: tensor<4x16x16xui8>,
               %s2: tensor<4x16xf16>) -> (tensor<*xf32>, tensor<*xf16>) {
  %none = "onnx.None"() : () -> none
  // CHECK: "onnx.MoE"{{.*}} -> tensor<?x16xf32>
  %0 = "onnx.MoE"(%x, %r, %w1, %none, %w2, %none, %none, %none) {activation_type = "swiglu", k = 2 : i64, swiglu_fusion = 1 : i64}
      : (tensor<?x16xf32>, tensor<?x4xf32>, tensor<4x64x16xf32>, none, tensor<4x16x32xf32>, none, none, none) -> tensor<*xf32>
  // CHECK: "onnx.QMoE"{{.*}} -> tensor<2x3x16xf16>
  %1 = "onnx.QMoE"(%hx, %hr, %q1, %s1, %none, %q2, %s2, %none, %none, %none, %none, %none, %none, %none) {activation_type = "silu", k = 2 : i64}
      : (tensor<2x3x16xf16>, tensor<6x4xf16>, tensor<4x32x8xui8>, tensor<4x32xf16>, none, tensor<4x16x16xui8>, tensor<4x16xf16>, none, none, none, none, none, none, none) -> tensor<*xf16>
  return %0, %1 : tensor<*xf32>, tensor<*xf16>
}

// The Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain an exporter
// writes around a MoE block folds to a constant shape on static shapes.
// The importer gives results it knows nothing about the placeholder type
// tensor<*xf32>: inference replaces it, element type included.
// FOLD-LABEL: func.func @fold_chain
// FOLD-SAME: -> tensor<6x16xf32>
// FOLD-NEXT: %[[SHAPE:.*]] = "onnx.Constant"() <{value = dense<[6, 16]> : tensor<2xi64>}> : () -> tensor<2xi64>
// FOLD-NEXT: %[[R:.*]] = "onnx.Reshape"(%{{.*}}, %[[SHAPE]]) {{.*}} -> tensor<6x16xf32>
// FOLD-NEXT: return %[[R]]
func.func @fold_chain(%x: tensor<2x3x16xf32>) -> tensor<*xf32> {
  %shape = "onnx.Shape"(%x) : (tensor<2x3x16xf32>) -> tensor<*xi64>
  %i0 = "onnx.Constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %i1 = "onnx.Constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %i2 = "onnx.Constant"() {value = dense<2> : tensor<i64>} : () -> tensor<i64>
  %batch = "onnx.Gather"(%shape, %i0) {axis = 0 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xf32>
  %seq = "onnx.Gather"(%shape, %i1) {axis = 0 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xf32>
  %hidden = "onnx.Gather"(%shape, %i2) {axis = 0 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xf32>
  %tokens = "onnx.Mul"(%batch, %seq) : (tensor<*xf32>, tensor<*xf32>) -> tensor<*xf32>
  %zero = "onnx.Constant"() {value = dense<[0]> : tensor<1xi64>} : () -> tensor<1xi64>
  %t1 = "onnx.Unsqueeze"(%tokens, %zero) : (tensor<*xf32>, tensor<1xi64>) -> tensor<*xi64>
  %h1 = "onnx.Unsqueeze"(%hidden, %zero) : (tensor<*xf32>, tensor<1xi64>) -> tensor<*xi64>
  %target = "onnx.Concat"(%t1, %h1) {axis = 0 : i64} : (tensor<*xi64>, tensor<*xi64>) -> tensor<*xi64>
  %y = "onnx.Reshape"(%x, %target) : (tensor<2x3x16xf32>, tensor<*xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// A dynamic token count: the static hidden size still folds out of the
// Shape, so the Reshape keeps only the dynamic dimension.
// FOLD-LABEL: func.func @fold_partial
// FOLD-SAME: -> tensor<?x16xf32>
// FOLD-NEXT: %[[SHAPE:.*]] = "onnx.Constant"() <{value = dense<[-1, 16]> : tensor<2xi64>}>
// FOLD-NEXT: "onnx.Reshape"(%{{.*}}, %[[SHAPE]]) {{.*}} -> tensor<?x16xf32>
func.func @fold_partial(%x: tensor<?x3x16xf32>) -> tensor<*xf32> {
  %shape = "onnx.Shape"(%x) : (tensor<?x3x16xf32>) -> tensor<*xi64>
  %i = "onnx.Constant"() {value = dense<[2]> : tensor<1xi64>} : () -> tensor<1xi64>
  %hidden = "onnx.Gather"(%shape, %i) {axis = 0 : i64} : (tensor<*xi64>, tensor<1xi64>) -> tensor<*xi64>
  %minus1 = "onnx.Constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %target = "onnx.Concat"(%minus1, %hidden) {axis = 0 : i64} : (tensor<1xi64>, tensor<*xi64>) -> tensor<*xi64>
  %y = "onnx.Reshape"(%x, %target) : (tensor<?x3x16xf32>, tensor<*xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}

// Constant arithmetic: an Expand shape built the way torch exports it.
// FOLD-LABEL: func.func @fold_arith
// FOLD: %[[S:.*]] = "onnx.Constant"() <{value = dense<[4, 3]> : tensor<2xi64>}>
// FOLD-NOT: onnx.Where
// FOLD: "onnx.Expand"(%{{.*}}, %[[S]]) {{.*}} -> tensor<4x3xf32>
func.func @fold_arith(%x: tensor<3xf32>) -> tensor<*xf32> {
  %shape = "onnx.Constant"() {value = dense<[4, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %two = "onnx.Constant"() {value = dense<[2]> : tensor<1xi64>} : () -> tensor<1xi64>
  %minus1 = "onnx.ConstantOfShape"(%two) {value = dense<-1> : tensor<1xi64>} : (tensor<1xi64>) -> tensor<*xi64>
  %eq = "onnx.Equal"(%shape, %minus1) : (tensor<2xi64>, tensor<*xi64>) -> tensor<*xi1>
  %ones = "onnx.Constant"() {value = dense<[1, 3]> : tensor<2xi64>} : () -> tensor<2xi64>
  %fixed = "onnx.Where"(%eq, %ones, %shape) : (tensor<*xi1>, tensor<2xi64>, tensor<2xi64>) -> tensor<*xi64>
  %y = "onnx.Expand"(%x, %fixed) : (tensor<3xf32>, tensor<*xi64>) -> tensor<*xf32>
  return %y : tensor<*xf32>
}
