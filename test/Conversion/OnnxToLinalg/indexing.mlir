// Gathers read with tensor.extract inside a linalg.generic over the
// result; scatters, TopK and NonZero are scf.for nests carrying tensors.
// Negative indices count from the end.
// RUN: moe-opt %s --split-input-file --convert-onnx-to-linalg --canonicalize | FileCheck %s

// CHECK-DAG: #[[IDX:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @gathers
// CHECK-SAME: (%[[D:.+]]: tensor<5x4xf32>, %[[I:.+]]: tensor<?xi64>, %[[IE:.+]]: tensor<5x2xi32>, %[[ND:.+]]: tensor<3x2xi64>)
// Gather on axis 1: the indices feed the generic, data is read at
// (row, wrapped index).
// CHECK: %[[N:.+]] = tensor.dim %[[I]], %c0
// CHECK: %[[E:.+]] = tensor.empty(%[[N]]) : tensor<5x?xf32>
// CHECK: linalg.generic {indexing_maps = [#[[IDX]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%[[I]] : tensor<?xi64>) outs(%[[E]] : tensor<5x?xf32>)
// CHECK: ^bb0(%[[IN:.+]]: i64, %{{.+}}: f32):
// CHECK: %[[ROW:.+]] = linalg.index 0
// CHECK: %[[V:.+]] = arith.index_cast %[[IN]] : i64 to index
// CHECK: %[[NEG:.+]] = arith.cmpi slt, %[[V]], %c0
// CHECK: %[[W:.+]] = arith.addi %[[V]], %c4
// CHECK: %[[J:.+]] = arith.select %[[NEG]], %[[W]], %[[V]]
// CHECK: tensor.extract %[[D]][%[[ROW]], %[[J]]]
// GatherElements: indices of the result's shape.
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ID]]]{{.*}} ins(%[[IE]] : tensor<5x2xi32>)
// CHECK: arith.index_cast %{{.*}} : i32 to index
// CHECK: tensor.extract %[[D]]
// GatherND: each row of indices is one coordinate tuple.
// CHECK: linalg.generic
// CHECK: tensor.extract %[[ND]][%{{.*}}, %c0]
// CHECK: tensor.extract %[[ND]][%{{.*}}, %c1]
// CHECK: tensor.extract %[[D]]
func.func @gathers(%d: tensor<5x4xf32>, %i: tensor<?xi64>, %ie: tensor<5x2xi32>, %nd: tensor<3x2xi64>) -> (tensor<5x?xf32>, tensor<5x2xf32>, tensor<3xf32>) {
  %0 = "onnx.Gather"(%d, %i) {axis = 1 : i64} : (tensor<5x4xf32>, tensor<?xi64>) -> tensor<5x?xf32>
  %1 = "onnx.GatherElements"(%d, %ie) {axis = 1 : i64} : (tensor<5x4xf32>, tensor<5x2xi32>) -> tensor<5x2xf32>
  %2 = "onnx.GatherND"(%d, %nd) : (tensor<5x4xf32>, tensor<3x2xi64>) -> tensor<3xf32>
  return %0, %1, %2 : tensor<5x?xf32>, tensor<5x2xf32>, tensor<3xf32>
}

// -----

// ScatterElements (reduction add): a loop per index dimension carrying the
// result, combining with the element already there. ScatterND (reduction
// mul): one slice per index tuple, combined in place by a generic.
// CHECK-LABEL: func.func @scatters
// CHECK-SAME: (%[[D:.+]]: tensor<?x4xf32>, %[[I:.+]]: tensor<?x4xi64>, %[[U:.+]]: tensor<?x4xf32>, %[[NI:.+]]: tensor<2x1xi64>, %[[NU:.+]]: tensor<2x4xf32>)
// CHECK: scf.for %[[R:.+]] = %c0 to %{{.*}} step %c1 iter_args(%[[A:.+]] = %[[D]]) -> (tensor<?x4xf32>)
// CHECK: scf.for %[[C:.+]] = %c0 to %c4 step %c1 iter_args(%[[B:.+]] = %[[A]]) -> (tensor<?x4xf32>)
// CHECK: tensor.extract %[[I]][%[[R]], %[[C]]]
// CHECK: %[[NEW:.+]] = tensor.extract %[[U]][%[[R]], %[[C]]]
// CHECK: %[[OLD:.+]] = tensor.extract %[[B]][%{{.*}}, %[[C]]]
// CHECK: %[[SUM:.+]] = arith.addf %[[OLD]], %[[NEW]]
// CHECK: tensor.insert %[[SUM]] into %[[B]]
// CHECK: scf.for %{{.*}} = %c0 to %c2 step %c1 iter_args(%[[S:.+]] = %[[D]])
// CHECK: %[[UPD:.+]] = tensor.extract_slice %[[NU]][%{{.*}}, 0] [1, 4] [1, 1] : tensor<2x4xf32> to tensor<4xf32>
// CHECK: %[[CUR:.+]] = tensor.extract_slice %[[S]][%{{.*}}, 0] [1, 4] [1, 1] : tensor<?x4xf32> to tensor<4xf32>
// CHECK: %[[PROD:.+]] = linalg.generic {{.*}} ins(%[[UPD]] : tensor<4xf32>) outs(%[[CUR]] : tensor<4xf32>)
// CHECK: arith.mulf
// CHECK: tensor.insert_slice %[[PROD]] into %[[S]][%{{.*}}, 0] [1, 4] [1, 1]
func.func @scatters(%d: tensor<?x4xf32>, %i: tensor<?x4xi64>, %u: tensor<?x4xf32>, %ni: tensor<2x1xi64>, %nu: tensor<2x4xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %0 = "onnx.ScatterElements"(%d, %i, %u) {axis = 0 : i64, reduction = "add"} : (tensor<?x4xf32>, tensor<?x4xi64>, tensor<?x4xf32>) -> tensor<?x4xf32>
  %1 = "onnx.ScatterND"(%d, %ni, %nu) {reduction = "mul"} : (tensor<?x4xf32>, tensor<2x1xi64>, tensor<2x4xf32>) -> tensor<?x4xf32>
  return %0, %1 : tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// TopK: for each row, output j is the first element, in the order
// (larger first, then lower index), after output j - 1: a scan of the row
// per output, no scratch memory; ties go to the lower index.
// CHECK-LABEL: func.func @topk
// CHECK: scf.for %[[ROW:.+]] = %c0 to %{{.*}} step %c1 iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (tensor<?x2xf32>, tensor<?x2xi64>)
// CHECK: scf.for %[[J:.+]] = %c0 to %c2 step %c1 iter_args({{.*}}) -> (tensor<?x2xf32>, tensor<?x2xi64>, f32, index, i1)
// CHECK: scf.for %[[I:.+]] = %c0 to %c8 step %c1 iter_args({{.*}}) -> (f32, index)
// CHECK: tensor.extract %{{.*}}[%[[ROW]], %[[I]]]
// CHECK: arith.cmpf olt
// CHECK: arith.cmpf oeq
// CHECK: scf.yield {{.*}} : f32, index
// CHECK: tensor.insert %{{.*}} into %{{.*}}[%[[ROW]], %[[J]]] : tensor<?x2xf32>
// CHECK: tensor.insert %{{.*}} into %{{.*}}[%[[ROW]], %[[J]]] : tensor<?x2xi64>
func.func @topk(%x: tensor<?x8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi64>) {
  %k = "onnx.Constant"() {value = dense<[2]> : tensor<1xi64>} : () -> tensor<1xi64>
  %v, %i = "onnx.TopK"(%x, %k) {axis = -1 : i64} : (tensor<?x8xf32>, tensor<1xi64>) -> (tensor<?x2xf32>, tensor<?x2xi64>)
  return %v, %i : tensor<?x2xf32>, tensor<?x2xi64>
}

// -----

// OneHot: the new axis compared with each (wrapped) index.
// CHECK-DAG: #[[DROP:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @onehot
// CHECK: linalg.generic {indexing_maps = [#[[DROP]], #{{.+}}]
// CHECK: %[[AT:.+]] = linalg.index 2
// CHECK: arith.cmpi eq, %{{.*}}, %[[AT]]
func.func @onehot(%sel: tensor<?x2xi64>) -> tensor<?x2x8xi64> {
  %depth = "onnx.Constant"() {value = dense<8> : tensor<i64>} : () -> tensor<i64>
  %vals = "onnx.Constant"() {value = dense<[0, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %oh = "onnx.OneHot"(%sel, %depth, %vals) : (tensor<?x2xi64>, tensor<i64>, tensor<2xi64>) -> tensor<?x2x8xi64>
  return %oh : tensor<?x2x8xi64>
}

// -----

// NonZero: count (a reduction), then write each nonzero element's
// coordinates in row-major order.
// CHECK-LABEL: func.func @nonzero
// CHECK: %[[COUNT:.+]] = linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]
// CHECK: arith.cmpf une
// CHECK: arith.extui
// CHECK: %[[N:.+]] = tensor.extract %[[COUNT]][]
// CHECK: %[[NI:.+]] = arith.index_cast %[[N]] : i64 to index
// CHECK: %[[E:.+]] = bufferization.alloc_tensor(%[[NI]]) : tensor<2x?xi64>
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[E]], %{{.*}} = %c0) -> (tensor<2x?xi64>, index)
// CHECK: scf.for
// CHECK: scf.if
// CHECK: tensor.insert
// CHECK: tensor.insert
func.func @nonzero(%x: tensor<?x8xf32>) -> tensor<2x?xi64> {
  %nz = "onnx.NonZero"(%x) : (tensor<?x8xf32>) -> tensor<2x?xi64>
  return %nz : tensor<2x?xi64>
}

// -----

// Trilu: keep j - i <= k (lower) and zero the rest.
// CHECK-LABEL: func.func @trilu
// CHECK: linalg.generic
// CHECK: %[[I:.+]] = linalg.index 0
// CHECK: %[[J:.+]] = linalg.index 1
// CHECK: %[[D:.+]] = arith.subi %[[J]], %[[I]]
// CHECK: arith.cmpi sle, %[[D]], %c0
// CHECK: arith.select
func.func @trilu(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %n = "onnx.None"() : () -> none
  %tri = "onnx.Trilu"(%x, %n) {upper = 0 : i64} : (tensor<?x8xf32>, none) -> tensor<?x8xf32>
  return %tri : tensor<?x8xf32>
}
