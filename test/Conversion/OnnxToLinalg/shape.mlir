// Constants, shape computations and data movement. Sizes only values
// reveal are read at run time (tensor.extract + index_cast); views become
// tensor.expand_shape / collapse_shape where the sizes provably regroup,
// tensor.reshape otherwise.
// RUN: moe-opt %s --split-input-file --convert-onnx-to-linalg --canonicalize | FileCheck %s

// onnx.Constant keeps its attribute (dense or dense_resource).
// CHECK-LABEL: func.func @constants
// CHECK-DAG: arith.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-DAG: arith.constant dense_resource<blob> : tensor<2xi32>
// CHECK-DAG: arith.constant dense<7> : tensor<i64>
// CHECK-NOT: onnx.
func.func @constants() -> (tensor<2xf32>, tensor<2xi32>, tensor<i64>) {
  %0 = "onnx.Constant"() {value = dense<[1.0, 2.0]> : tensor<2xf32>} : () -> tensor<2xf32>
  %1 = "onnx.Constant"() {value = dense_resource<blob> : tensor<2xi32>} : () -> tensor<2xi32>
  %2 = "onnx.Constant"() {value_int = 7 : i64} : () -> tensor<i64>
  return %0, %1, %2 : tensor<2xf32>, tensor<2xi32>, tensor<i64>
}
{-#
  dialect_resources: {
    builtin: {
      blob: "0x040000000100000002000000"
    }
  }
#-}

// -----

// Shape and Size from tensor.dim; ConstantOfShape fills a tensor.empty
// sized by the values of its input.
// CHECK-LABEL: func.func @shape_of
// CHECK-SAME: (%[[X:.+]]: tensor<?x4x?xf32>)
// CHECK-DAG: %[[C4:.+]] = arith.constant 4 : i64
// CHECK: %[[D2:.+]] = tensor.dim %[[X]], %c2
// CHECK: %[[I2:.+]] = arith.index_cast %[[D2]] : index to i64
// CHECK: %[[SHAPE:.+]] = tensor.from_elements %[[C4]], %[[I2]] : tensor<2xi64>
// CHECK: tensor.from_elements %{{.*}} : tensor<i64>
// CHECK: %[[E:.+]] = tensor.empty(%{{.*}}) : tensor<4x?xf32>
// CHECK: linalg.fill ins(%cst : f32) outs(%[[E]] : tensor<4x?xf32>)
func.func @shape_of(%x: tensor<?x4x?xf32>) -> (tensor<2xi64>, tensor<i64>, tensor<4x?xf32>) {
  %0 = "onnx.Shape"(%x) {start = 1 : i64} : (tensor<?x4x?xf32>) -> tensor<2xi64>
  %1 = "onnx.Size"(%x) : (tensor<?x4x?xf32>) -> tensor<i64>
  %2 = "onnx.ConstantOfShape"(%0) {value = dense<1.0> : tensor<1xf32>} : (tensor<2xi64>) -> tensor<4x?xf32>
  return %0, %1, %2 : tensor<2xi64>, tensor<i64>, tensor<4x?xf32>
}

// -----

// Reshape: known shapes with 0 and -1 regroup the dimensions; a shape known
// only at run time is resolved then (0 copies, -1 takes the rest), checked
// to keep the element count, and applied with tensor.reshape or a view.
// CHECK-LABEL: func.func @reshape
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x32xf32>, %[[Y:.+]]: tensor<?x32xf32>, %[[S:.+]]: tensor<3xi64>)
// CHECK: tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<?x?x32xf32> into tensor<?x32xf32>
// CHECK: %[[D:.+]] = tensor.dim %[[Y]], %c0
// CHECK: tensor.expand_shape %[[Y]] {{\[}}[0], [1, 2]] output_shape [%[[D]], 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
// CHECK: tensor.extract %[[S]][%c0]
// CHECK: cf.assert %{{.*}}, "'onnx.Reshape': the shape does not keep the number of elements"
// CHECK: %[[SHAPE:.+]] = tensor.from_elements %{{.*}}, %{{.*}}, %{{.*}} : tensor<3xindex>
// CHECK: tensor.reshape %[[Y]](%[[SHAPE]]) : (tensor<?x32xf32>, tensor<3xindex>) -> tensor<?x?x?xf32>
func.func @reshape(%x: tensor<?x?x32xf32>, %y: tensor<?x32xf32>, %s: tensor<3xi64>) -> (tensor<?x32xf32>, tensor<?x4x8xf32>, tensor<?x?x?xf32>) {
  %c = "onnx.Constant"() {value = dense<[-1, 32]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "onnx.Reshape"(%x, %c) : (tensor<?x?x32xf32>, tensor<2xi64>) -> tensor<?x32xf32>
  %c2 = "onnx.Constant"() {value = dense<[0, 4, 8]> : tensor<3xi64>} : () -> tensor<3xi64>
  %1 = "onnx.Reshape"(%y, %c2) : (tensor<?x32xf32>, tensor<3xi64>) -> tensor<?x4x8xf32>
  %2 = "onnx.Reshape"(%y, %s) : (tensor<?x32xf32>, tensor<3xi64>) -> tensor<?x?x?xf32>
  return %0, %1, %2 : tensor<?x32xf32>, tensor<?x4x8xf32>, tensor<?x?x?xf32>
}

// -----

// Reshape to a static type that is no regrouping (through one dimension),
// and Flatten.
// CHECK-LABEL: func.func @static_reshape
// CHECK: %[[FLAT:.+]] = tensor.collapse_shape %{{.*}} {{\[}}[0, 1, 2]] : tensor<2x3x4xf32> into tensor<24xf32>
// CHECK: tensor.expand_shape %[[FLAT]] {{\[}}[0, 1, 2]] output_shape [2, 6, 2] : tensor<24xf32> into tensor<2x6x2xf32>
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
func.func @static_reshape(%x: tensor<2x3x4xf32>, %s: tensor<3xi64>) -> (tensor<2x6x2xf32>, tensor<6x4xf32>) {
  %0 = "onnx.Reshape"(%x, %s) : (tensor<2x3x4xf32>, tensor<3xi64>) -> tensor<2x6x2xf32>
  %1 = "onnx.Flatten"(%x) {axis = -1 : i64} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  return %0, %1 : tensor<2x6x2xf32>, tensor<6x4xf32>
}

// -----

// Squeeze/Unsqueeze are views; Transpose is linalg.transpose; Concat
// copies each input into its slice of a fresh buffer (linalg.copy into an
// extract_slice, inserted back: bufferized in place). Axes known only at
// run time reshape to the (static) result type.
// CHECK-LABEL: func.func @moves
// CHECK-SAME: (%[[X:.+]]: tensor<2x1x3xf32>, %[[D:.+]]: tensor<?x4xf32>, %{{.+}}: tensor<1xi64>)
// CHECK: tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x1x3xf32> into tensor<2x3xf32>
// CHECK: tensor.expand_shape %[[X]] {{\[}}[0, 1], [2], [3]] output_shape [1, 2, 1, 3] : tensor<2x1x3xf32> into tensor<1x2x1x3xf32>
// CHECK: linalg.transpose ins(%[[X]] : tensor<2x1x3xf32>) outs(%{{.*}} : tensor<3x2x1xf32>) permutation = [2, 0, 1]
// CHECK: %[[N0:.+]] = tensor.dim %[[D]], %c0
// CHECK: %[[N1:.+]] = tensor.dim %[[D]], %c0
// CHECK: %[[N:.+]] = arith.addi %[[N0]], %[[N1]]
// CHECK: %[[E:.+]] = bufferization.alloc_tensor(%[[N]]) : tensor<?x4xf32>
// CHECK: %[[S0:.+]] = tensor.extract_slice %[[E]][0, 0] [%[[M:.+]], 4] [1, 1]
// CHECK: %[[C0:.+]] = linalg.copy ins(%[[D]] : tensor<?x4xf32>) outs(%[[S0]] : tensor<?x4xf32>)
// CHECK: %[[I:.+]] = tensor.insert_slice %[[C0]] into %[[E]][0, 0] [%[[M]], 4] [1, 1]
// CHECK: %[[S1:.+]] = tensor.extract_slice %[[I]][%[[OFF:.+]], 0]
// CHECK: %[[C1:.+]] = linalg.copy ins(%[[D]] : tensor<?x4xf32>) outs(%[[S1]] : tensor<?x4xf32>)
// CHECK: tensor.insert_slice %[[C1]] into %[[I]][%[[OFF]], 0]
// CHECK: tensor.collapse_shape %[[X]] {{\[}}[0], [1, 2]] : tensor<2x1x3xf32> into tensor<2x3xf32>
func.func @moves(%x: tensor<2x1x3xf32>, %d: tensor<?x4xf32>, %ax: tensor<1xi64>) -> (tensor<2x3xf32>, tensor<1x2x1x3xf32>, tensor<3x2x1xf32>, tensor<?x4xf32>, tensor<2x3xf32>) {
  %a = "onnx.Constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %0 = "onnx.Squeeze"(%x, %a) : (tensor<2x1x3xf32>, tensor<1xi64>) -> tensor<2x3xf32>
  %z = "onnx.Constant"() {value = dense<[0]> : tensor<1xi64>} : () -> tensor<1xi64>
  %1 = "onnx.Unsqueeze"(%x, %z) : (tensor<2x1x3xf32>, tensor<1xi64>) -> tensor<1x2x1x3xf32>
  %2 = "onnx.Transpose"(%x) {perm = array<i64: 2, 0, 1>} : (tensor<2x1x3xf32>) -> tensor<3x2x1xf32>
  %3 = "onnx.Concat"(%d, %d) {axis = 0 : i64} : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
  %4 = "onnx.Squeeze"(%x, %ax) : (tensor<2x1x3xf32>, tensor<1xi64>) -> tensor<2x3xf32>
  return %0, %1, %2, %3, %4 : tensor<2x3xf32>, tensor<1x2x1x3xf32>, tensor<3x2x1xf32>, tensor<?x4xf32>, tensor<2x3xf32>
}

// -----

// Concat skips inputs without elements: an empty last input would be
// inserted at the end of the axis, which tensor.insert_slice rejects.
// CHECK-LABEL: func.func @concat_empty
// CHECK-SAME: (%[[X:.+]]: tensor<4xi64>, %{{.+}}: tensor<0xi64>, %[[Y:.+]]: tensor<2xi64>)
// CHECK: %[[E:.+]] = bufferization.alloc_tensor() : tensor<6xi64>
// CHECK: tensor.extract_slice %[[E]][0] [4] [1]
// CHECK: linalg.copy ins(%[[X]] : tensor<4xi64>)
// CHECK: tensor.insert_slice %{{.*}} into %{{.*}}[0] [4] [1]
// CHECK: linalg.copy ins(%[[Y]] : tensor<2xi64>)
// CHECK: tensor.insert_slice %{{.*}} into %{{.*}}[4] [2] [1]
// CHECK: linalg.copy ins(%[[X]] : tensor<4xi64>)
// CHECK-NOT: linalg.copy
// CHECK: return
func.func @concat_empty(%x: tensor<4xi64>, %z: tensor<0xi64>, %y: tensor<2xi64>) -> (tensor<6xi64>, tensor<4xi64>) {
  %0 = "onnx.Concat"(%x, %z, %y) {axis = 0 : i64} : (tensor<4xi64>, tensor<0xi64>, tensor<2xi64>) -> tensor<6xi64>
  %1 = "onnx.Concat"(%x, %z) {axis = 0 : i64} : (tensor<4xi64>, tensor<0xi64>) -> tensor<4xi64>
  return %0, %1 : tensor<6xi64>, tensor<4xi64>
}

// -----

// Split: equal parts are static slices; run-time sizes are read, checked
// (cf.assert) and sliced at run-time offsets.
// CHECK-LABEL: func.func @split
// CHECK-SAME: (%[[X:.+]]: tensor<?x6xf32>, %[[S:.+]]: tensor<2xi64>)
// CHECK: tensor.extract_slice %[[X]][0, 0] [%{{.*}}, 3] [1, 1] : tensor<?x6xf32> to tensor<?x3xf32>
// CHECK: tensor.extract_slice %[[X]][0, 3] [%{{.*}}, 3] [1, 1] : tensor<?x6xf32> to tensor<?x3xf32>
// CHECK: %[[A:.+]] = arith.index_cast %{{.*}} : i64 to index
// CHECK: %[[B:.+]] = arith.index_cast %{{.*}} : i64 to index
// CHECK: cf.assert %{{.*}}, "'onnx.Split': split sizes do not add up to the size of axis 1"
// CHECK: tensor.extract_slice %[[X]][0, 0] [%{{.*}}, %[[A]]] [1, 1]
// CHECK: tensor.extract_slice %[[X]][0, %[[A]]] [%{{.*}}, %[[B]]] [1, 1]
func.func @split(%x: tensor<?x6xf32>, %s: tensor<2xi64>) -> (tensor<?x3xf32>, tensor<?x3xf32>, tensor<?x?xf32>, tensor<?x?xf32>) {
  %n = "onnx.None"() : () -> none
  %0:2 = "onnx.Split"(%x, %n) {axis = 1 : i64, num_outputs = 2 : i64} : (tensor<?x6xf32>, none) -> (tensor<?x3xf32>, tensor<?x3xf32>)
  %1:2 = "onnx.Split"(%x, %s) {axis = 1 : i64} : (tensor<?x6xf32>, tensor<2xi64>) -> (tensor<?x?xf32>, tensor<?x?xf32>)
  return %0#0, %0#1, %1#0, %1#1 : tensor<?x3xf32>, tensor<?x3xf32>, tensor<?x?xf32>, tensor<?x?xf32>
}

// -----

// Slice: positive known steps are a strided extract_slice; negative or
// run-time steps read each element at start + i * step, with the bounds
// clamped as ONNX says.
// CHECK-LABEL: func.func @slice
// CHECK: tensor.extract_slice %{{.*}}[1, 0] [3, %{{.*}}] [3, 1] : tensor<10x?xf32> to tensor<3x?xf32>
// CHECK: linalg.generic
// CHECK: %[[J:.+]] = linalg.index 1 : index
// CHECK: arith.subi %{{.*}}, %[[J]] : index
// CHECK: tensor.extract
// CHECK: arith.ceildivsi
// CHECK: linalg.generic
// CHECK: arith.muli
// CHECK: tensor.extract
func.func @slice(%x: tensor<10x?xf32>, %st: tensor<1xi64>) -> (tensor<3x?xf32>, tensor<10x?xf32>, tensor<?x?xf32>) {
  %s = "onnx.Constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %e = "onnx.Constant"() {value = dense<[8]> : tensor<1xi64>} : () -> tensor<1xi64>
  %a = "onnx.Constant"() {value = dense<[0]> : tensor<1xi64>} : () -> tensor<1xi64>
  %p = "onnx.Constant"() {value = dense<[3]> : tensor<1xi64>} : () -> tensor<1xi64>
  %0 = "onnx.Slice"(%x, %s, %e, %a, %p) : (tensor<10x?xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<3x?xf32>
  %m = "onnx.Constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %big = "onnx.Constant"() {value = dense<[-9223372036854775807]> : tensor<1xi64>} : () -> tensor<1xi64>
  %one = "onnx.Constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %1 = "onnx.Slice"(%x, %m, %big, %one, %m) : (tensor<10x?xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<10x?xf32>
  %2 = "onnx.Slice"(%x, %st, %e, %a, %st) : (tensor<10x?xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?xf32>
  return %0, %1, %2 : tensor<3x?xf32>, tensor<10x?xf32>, tensor<?x?xf32>
}

// -----

// Expand to a run-time shape (a size is the shape's value unless it is 1),
// Tile (index modulo the input size) and Range (length
// max(ceil((limit - start) / delta), 0)).
// CHECK-DAG: #[[BC:.+]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-LABEL: func.func @expand_tile_range
// CHECK-SAME: (%[[X:.+]]: tensor<3x1xf32>, %[[S:.+]]: tensor<2xi64>, %[[R:.+]]: tensor<2xi64>, %[[L:.+]]: tensor<i64>)
// (select(v == 1, 1, v) folds to v.)
// CHECK: %[[V:.+]] = arith.index_cast %{{.*}} : i64 to index
// CHECK: tensor.empty(%[[V]]) : tensor<3x?xf32>
// CHECK: linalg.generic {indexing_maps = [#[[BC]], #{{.+}}]
// CHECK: tensor.empty(%{{.*}}, %{{.*}}) : tensor<?x?xf32>
// CHECK: linalg.generic
// CHECK: arith.remsi
// CHECK: tensor.extract %[[X]]
// CHECK: arith.ceildivsi
// CHECK: linalg.generic
// CHECK: arith.muli %{{.*}}, %c2_i64 : i64
func.func @expand_tile_range(%x: tensor<3x1xf32>, %s: tensor<2xi64>, %r: tensor<2xi64>, %limit: tensor<i64>) -> (tensor<3x?xf32>, tensor<?x?xf32>, tensor<?xi64>) {
  %0 = "onnx.Expand"(%x, %s) : (tensor<3x1xf32>, tensor<2xi64>) -> tensor<3x?xf32>
  %1 = "onnx.Tile"(%x, %r) : (tensor<3x1xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  %zero = "onnx.Constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %two = "onnx.Constant"() {value = dense<2> : tensor<i64>} : () -> tensor<i64>
  %2 = "onnx.Range"(%zero, %limit, %two) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  return %0, %1, %2 : tensor<3x?xf32>, tensor<?x?xf32>, tensor<?xi64>
}
