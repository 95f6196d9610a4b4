// Matrix products: linalg.matmul for matrices (N-D x 2-D collapses the
// rows), linalg.batch_matmul for equal 3-D batches, a linalg.generic
// contraction otherwise (batch broadcast by constant-0 indexing, 1-D
// operands per numpy.matmul). Gemm folds beta * C into the accumulator
// when alpha is 1. Einsum: one generic, labels missing from the output
// are reductions.
// RUN: moe-opt %s --split-input-file --convert-onnx-to-linalg --canonicalize | FileCheck %s

// CHECK-DAG: #[[BA:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, 0, d2, d4)>
// CHECK-DAG: #[[BB:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d4, d3)>
// CHECK-DAG: #[[BO:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[MV_A:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[MV_B:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[MV_O:.+]] = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[A:[a-z0-9]+]]: tensor<?x?x32xf32>, %[[W:[a-z0-9]+]]: tensor<32x16xf32>, %[[B3:[a-z0-9]+]]: tensor<4x?x32xf32>, %[[C3:[a-z0-9]+]]: tensor<4x32x8xf32>
// (B, S, H) x (H, N): rows collapsed, one linalg.matmul, back to (B, S, N)
// (tensor.reshape: two dynamic sizes in one group).
// CHECK: %[[D0:.+]] = tensor.dim %[[A]], %c0
// CHECK: %[[D1:.+]] = tensor.dim %[[A]], %c1
// CHECK: %[[FLAT:.+]] = tensor.collapse_shape %[[A]] {{\[}}[0, 1], [2]] : tensor<?x?x32xf32> into tensor<?x32xf32>
// CHECK: %[[ACC:.+]] = linalg.fill ins(%cst : f32) outs(%{{.*}} : tensor<?x16xf32>)
// CHECK: %[[P:.+]] = linalg.matmul ins(%[[FLAT]], %[[W]] : tensor<?x32xf32>, tensor<32x16xf32>) outs(%[[ACC]] : tensor<?x16xf32>)
// CHECK: %[[SHAPE:.+]] = tensor.from_elements %[[D0]], %[[D1]], %c16 : tensor<3xindex>
// CHECK: tensor.reshape %[[P]](%[[SHAPE]]) : (tensor<?x16xf32>, tensor<3xindex>) -> tensor<?x?x16xf32>
// CHECK: linalg.batch_matmul ins(%[[B3]], %[[C3]] : tensor<4x?x32xf32>, tensor<4x32x8xf32>)
// (2, 1, 3, 4) x (5, 4, 6): batch broadcast.
// CHECK: linalg.generic {indexing_maps = [#[[BA]], #[[BB]], #[[BO]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
// CHECK: arith.mulf
// CHECK-NEXT: arith.addf
// Matrix times vector.
// CHECK: linalg.generic {indexing_maps = [#[[MV_A]], #[[MV_B]], #[[MV_O]]], iterator_types = ["parallel", "reduction"]}
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<3x4xf32>, tensor<4x5xf32>)
func.func @matmul(%a: tensor<?x?x32xf32>, %w: tensor<32x16xf32>, %b3: tensor<4x?x32xf32>, %c3: tensor<4x32x8xf32>, %bc: tensor<2x1x3x4xf32>, %bd: tensor<5x4x6xf32>, %v: tensor<4xf32>, %m: tensor<3x4xf32>, %n: tensor<4x5xf32>) -> (tensor<?x?x16xf32>, tensor<4x?x8xf32>, tensor<2x5x3x6xf32>, tensor<3xf32>, tensor<3x5xf32>) {
  %0 = "onnx.MatMul"(%a, %w) : (tensor<?x?x32xf32>, tensor<32x16xf32>) -> tensor<?x?x16xf32>
  %1 = "onnx.MatMul"(%b3, %c3) : (tensor<4x?x32xf32>, tensor<4x32x8xf32>) -> tensor<4x?x8xf32>
  %2 = "onnx.MatMul"(%bc, %bd) : (tensor<2x1x3x4xf32>, tensor<5x4x6xf32>) -> tensor<2x5x3x6xf32>
  %3 = "onnx.MatMul"(%m, %v) : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3xf32>
  %4 = "onnx.MatMul"(%m, %n) : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  return %0, %1, %2, %3, %4 : tensor<?x?x16xf32>, tensor<4x?x8xf32>, tensor<2x5x3x6xf32>, tensor<3xf32>, tensor<3x5xf32>
}

// -----

// Gemm with transA, transB, alpha 0.5, beta 2: a transposed contraction,
// then alpha * AB + beta * C. Plain Gemm: C broadcast into the accumulator
// of a linalg.matmul.
// CHECK-DAG: #[[TA:.+]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[TB:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[MN:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[ROWB:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @gemm
// CHECK-SAME: (%[[A:[a-z0-9]+]]: tensor<4x3xf32>, %[[B:[a-z0-9]+]]: tensor<5x4xf32>, %[[C:[a-z0-9]+]]: tensor<5xf32>, %[[D:[a-z0-9]+]]: tensor<3x4xf32>, %[[E:[a-z0-9]+]]: tensor<4x5xf32>)
// CHECK-DAG: %[[TWO:.+]] = arith.constant 2.0
// CHECK-DAG: %[[HALF:.+]] = arith.constant 5.0
// CHECK: %[[AB:.+]] = linalg.generic {indexing_maps = [#[[TA]], #[[TB]], #[[MN]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[A]], %[[B]] :
// CHECK: linalg.generic {{.*}} ins(%[[AB]], %[[C]] : tensor<3x5xf32>, tensor<5xf32>)
// CHECK: arith.mulf %{{.*}}, %[[HALF]]
// CHECK: arith.mulf %{{.*}}, %[[TWO]]
// CHECK: arith.addf
// CHECK: %[[INIT:.+]] = linalg.generic {indexing_maps = [#[[ROWB]], #{{.+}}], {{.*}} ins(%[[C]] : tensor<5xf32>)
// CHECK: linalg.matmul ins(%[[D]], %[[E]] : tensor<3x4xf32>, tensor<4x5xf32>) outs(%[[INIT]] : tensor<3x5xf32>)
func.func @gemm(%a: tensor<4x3xf32>, %b: tensor<5x4xf32>, %c: tensor<5xf32>, %d: tensor<3x4xf32>, %e: tensor<4x5xf32>) -> (tensor<3x5xf32>, tensor<3x5xf32>) {
  %0 = "onnx.Gemm"(%a, %b, %c) {transA = 1 : i64, transB = 1 : i64, alpha = 0.5 : f32, beta = 2.0 : f32} : (tensor<4x3xf32>, tensor<5x4xf32>, tensor<5xf32>) -> tensor<3x5xf32>
  %1 = "onnx.Gemm"(%d, %e, %c) : (tensor<3x4xf32>, tensor<4x5xf32>, tensor<5xf32>) -> tensor<3x5xf32>
  return %0, %1 : tensor<3x5xf32>, tensor<3x5xf32>
}

// -----

// Einsum: attention scores "bhid,bhjd->bhij", a row sum "ij->i" and an
// implicit-output transpose "ji" (output labels sorted: "ij").
// CHECK-DAG: #[[Q:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// CHECK-DAG: #[[K:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
// CHECK-DAG: #[[S:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[T:.+]] = affine_map<(d0, d1) -> (d1, d0)>
// CHECK-LABEL: func.func @einsum
// CHECK: linalg.generic {indexing_maps = [#[[Q]], #[[K]], #[[S]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
// CHECK: arith.mulf
// CHECK: iterator_types = ["parallel", "reduction"]
// CHECK: linalg.generic {indexing_maps = [#[[T]], #{{.+}}], iterator_types = ["parallel", "parallel"]}
func.func @einsum(%q: tensor<2x4x?x8xf32>, %k: tensor<2x4x?x8xf32>, %x: tensor<3x4xf32>) -> (tensor<2x4x?x?xf32>, tensor<3xf32>, tensor<4x3xf32>) {
  %0 = "onnx.Einsum"(%q, %k) {equation = "bhid,bhjd->bhij"} : (tensor<2x4x?x8xf32>, tensor<2x4x?x8xf32>) -> tensor<2x4x?x?xf32>
  %1 = "onnx.Einsum"(%x) {equation = "ij->i"} : (tensor<3x4xf32>) -> tensor<3xf32>
  %2 = "onnx.Einsum"(%x) {equation = "ji"} : (tensor<3x4xf32>) -> tensor<4x3xf32>
  return %0, %1, %2 : tensor<2x4x?x?xf32>, tensor<3xf32>, tensor<4x3xf32>
}
