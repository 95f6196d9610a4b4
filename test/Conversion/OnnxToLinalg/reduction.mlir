// Reductions: linalg.generic with reduction iterators into a tensor
// without the reduced dims (filled with the identity), expanded for
// keepdims; float sums accumulate in a wider type (f32 in f64). Axes known
// only at run time use a loop nest. Softmax subtracts the maximum.
// RUN: moe-opt %s --split-input-file --convert-onnx-to-linalg --canonicalize | FileCheck %s

// CHECK-DAG: #[[ID3:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[KEEP02:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[KEEP0:.+]] = affine_map<(d0, d1, d2) -> (d0)>
// CHECK-DAG: #[[KEEP12:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[KEEP01:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @reduce
// CHECK-SAME: (%[[X:.+]]: tensor<?x4x5xf32>, %[[AX:.+]]: tensor<1xi64>)
// ReduceSum over axis 1, keepdims: f64 accumulator, rounded, expanded.
// CHECK: %[[Z:.+]] = linalg.fill ins(%{{.*}} : f64) outs(%{{.*}} : tensor<?x5xf64>)
// CHECK: %[[S:.+]] = linalg.generic {indexing_maps = [#[[ID3]], #[[KEEP02]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[X]] : tensor<?x4x5xf32>) outs(%[[Z]] : tensor<?x5xf64>)
// CHECK: arith.extf %{{.*}} : f32 to f64
// CHECK: arith.addf
// CHECK: %[[R:.+]] = linalg.generic {{.*}} ins(%[[S]] : tensor<?x5xf64>)
// CHECK: arith.truncf
// CHECK: tensor.expand_shape %[[R]] {{\[}}[0, 1], [2]] output_shape [%{{.*}}, 1, 5] : tensor<?x5xf32> into tensor<?x1x5xf32>
// ReduceMean over axes 1 and -1 without keepdims: divided by 20.
// CHECK: linalg.generic {indexing_maps = [#[[ID3]], #[[KEEP0]]], iterator_types = ["parallel", "reduction", "reduction"]}
// CHECK: arith.divf %{{.*}}, %cst{{.*}} : f64
// ReduceMax on i32 starts from INT32_MIN.
// CHECK: linalg.fill ins(%c-2147483648_i32 : i32)
// CHECK: linalg.generic {indexing_maps = [#[[ID3]], #[[KEEP12]]], iterator_types = ["reduction", "parallel", "parallel"]}
// CHECK: arith.maxsi
// ArgMax with select_last_index: (value, index) pairs, >= keeps the last.
// CHECK: linalg.generic {indexing_maps = [#[[ID3]], #[[KEEP01]], #[[KEEP01]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK: arith.cmpf oge
// CHECK: linalg.index 2
// CHECK: tensor.expand_shape
// ReduceMin over run-time axes: flags per dimension, a loop nest
// accumulating at coordinate 0 of the reduced dims.
// CHECK: tensor.extract %[[AX]]
// CHECK: scf.for
// CHECK: scf.for
// CHECK: scf.for
// CHECK: arith.minimumf
// CHECK: tensor.insert
func.func @reduce(%x: tensor<?x4x5xf32>, %ax: tensor<1xi64>) -> (tensor<?x1x5xf32>, tensor<?xf32>, tensor<4x5xi32>, tensor<?x4x1xi64>, tensor<?x1x5xf32>) {
  %a = "onnx.Constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %0 = "onnx.ReduceSum"(%x, %a) : (tensor<?x4x5xf32>, tensor<1xi64>) -> tensor<?x1x5xf32>
  %b = "onnx.Constant"() {value = dense<[1, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %1 = "onnx.ReduceMean"(%x, %b) {keepdims = 0 : i64} : (tensor<?x4x5xf32>, tensor<2xi64>) -> tensor<?xf32>
  %i = "onnx.Cast"(%x) {to = 6 : i64} : (tensor<?x4x5xf32>) -> tensor<?x4x5xi32>
  %z = "onnx.Constant"() {value = dense<[0]> : tensor<1xi64>} : () -> tensor<1xi64>
  %2 = "onnx.ReduceMax"(%i, %z) {keepdims = 0 : i64} : (tensor<?x4x5xi32>, tensor<1xi64>) -> tensor<4x5xi32>
  %3 = "onnx.ArgMax"(%x) {axis = 2 : i64, select_last_index = 1 : i64} : (tensor<?x4x5xf32>) -> tensor<?x4x1xi64>
  %4 = "onnx.ReduceMin"(%x, %ax) : (tensor<?x4x5xf32>, tensor<1xi64>) -> tensor<?x1x5xf32>
  return %0, %1, %2, %3, %4 : tensor<?x1x5xf32>, tensor<?xf32>, tensor<4x5xi32>, tensor<?x4x1xi64>, tensor<?x1x5xf32>
}

// -----

// Softmax: max, sum(exp(x - max)) (wide), exp(x - max) / sum.
// CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[ROW:.+]] = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @softmax
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>)
// CHECK: linalg.fill ins(%[[NEGINF:.+]] : f32)
// CHECK: %[[MAX:.+]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]]], iterator_types = ["parallel", "reduction"]}
// CHECK: arith.maximumf
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ROW]]], iterator_types = ["parallel", "reduction"]} ins(%[[X]], %[[MAX]] : tensor<?x8xf32>, tensor<?xf32>)
// CHECK: arith.subf
// CHECK-NEXT: math.exp
// CHECK-NEXT: arith.extf
// CHECK-NEXT: arith.addf
// CHECK: %[[SUM32:.+]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<?xf64>)
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ROW]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%[[X]], %[[MAX]], %[[SUM32]] : tensor<?x8xf32>, tensor<?xf32>, tensor<?xf32>)
// CHECK: arith.subf
// CHECK-NEXT: math.exp
// CHECK-NEXT: arith.divf
// LogSoftmax: (x - max) - log(sum).
// CHECK: math.log
// CHECK-NEXT: arith.subf
func.func @softmax(%x: tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %0 = "onnx.Softmax"(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  %1 = "onnx.LogSoftmax"(%x) {axis = 1 : i64} : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0, %1 : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// LayerNormalization: mean and variance accumulated in f64, 1/sqrt(var +
// eps), then (x - mean) * invstd * scale + bias; Mean and InvStdDev keep
// the normalised dims as 1.
// CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[ROW:.+]] = affine_map<(d0, d1) -> (d0)>
// CHECK-DAG: #[[COL:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @layernorm
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>, %[[S:.+]]: tensor<8xf32>, %[[B:.+]]: tensor<8xf32>)
// CHECK: arith.divf %{{.*}}, %[[N:.+]] : f64
// CHECK: arith.subf
// CHECK-NEXT: arith.mulf
// CHECK-NEXT: arith.addf
// CHECK: %[[MEAN:.+]] = linalg.generic
// CHECK: arith.truncf %{{.*}} : f64 to f32
// CHECK: %[[INV:.+]] = linalg.generic
// CHECK: arith.addf %{{.*}}, %{{.*}} : f64
// CHECK-NEXT: math.sqrt
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ROW]], #[[COL]], #[[COL]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%[[X]], %[[MEAN]], %[[INV]], %[[S]], %[[B]] :
// CHECK: tensor.expand_shape %[[MEAN]] {{\[}}[0, 1]]
// CHECK: tensor.expand_shape %[[INV]] {{\[}}[0, 1]]
func.func @layernorm(%x: tensor<?x8xf32>, %s: tensor<8xf32>, %b: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xf32>) {
  %0, %1, %2 = "onnx.LayerNormalization"(%x, %s, %b) {epsilon = 1.0e-5 : f32} : (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xf32>)
  return %0, %1, %2 : tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xf32>
}

// -----

// CumSum (exclusive): a loop over the axis carrying the result and the
// running sum of one hyperplane (updated in place); each position gets the
// sum before it.
// CHECK-LABEL: func.func @cumsum
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>)
// CHECK: scf.for %[[P:.+]] = %c0 to %c8 step %c1 iter_args(%[[OUT:.+]] = %{{.*}}, %[[RUNNING:.+]] = %{{.*}}) -> (tensor<?x8xf32>, tensor<?x1xf32>)
// CHECK: %[[CUR:.+]] = tensor.extract_slice %[[X]][0, %[[P]]] [%{{.*}}, 1] [1, 1]
// CHECK: %[[SLOT:.+]] = tensor.extract_slice %[[OUT]][0, %[[P]]]
// CHECK: %[[COPY:.+]] = linalg.copy ins(%[[RUNNING]] : tensor<?x1xf32>) outs(%[[SLOT]] : tensor<?x1xf32>)
// CHECK: %[[INS:.+]] = tensor.insert_slice %[[COPY]] into %[[OUT]][0, %[[P]]]
// CHECK: %[[NEXT:.+]] = linalg.generic {{.*}} ins(%[[CUR]] : tensor<?x1xf32>) outs(%[[RUNNING]] : tensor<?x1xf32>)
// CHECK: arith.addf
// CHECK: scf.yield %[[INS]], %[[NEXT]]
func.func @cumsum(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %one = "onnx.Constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %0 = "onnx.CumSum"(%x, %one) {exclusive = 1 : i64} : (tensor<?x8xf32>, tensor<i64>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
