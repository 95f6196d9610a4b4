// Errors name the ONNX node: the importer locates each op at
// loc("<node name>"("<model file>":0:0)).
// RUN: not moe-opt %s --convert-onnx-to-linalg 2>&1 | FileCheck %s

// CHECK: model.onnx:0:0: error: 'onnx.MoE' node '/block/moe': was not raised to moe.layer (run --moe-raise-experts before this pass; when it ran, its remark on this node says why the layer was declined)
// CHECK: model.onnx:0:0: error: 'onnx.Sqrt' node 'my_sqrt': is only defined for float tensors, not 'i32'
func.func @main_graph(%x: tensor<?x16xf32>, %r: tensor<?x4xf32>, %w1: tensor<4x8x16xf32>, %w2: tensor<4x16x8xf32>, %i: tensor<4xi32>) -> (tensor<?x16xf32>, tensor<4xi32>) {
  %n = "onnx.None"() : () -> none
  %0 = "onnx.MoE"(%x, %r, %w1, %n, %w2, %n, %n, %n) {k = 1 : i64} : (tensor<?x16xf32>, tensor<?x4xf32>, tensor<4x8x16xf32>, none, tensor<4x16x8xf32>, none, none, none) -> tensor<?x16xf32> loc("/block/moe"("model.onnx":0:0))
  %1 = "onnx.Sqrt"(%i) : (tensor<4xi32>) -> tensor<4xi32> loc("my_sqrt"("model.onnx":0:0))
  return %0, %1 : tensor<?x16xf32>, tensor<4xi32>
}
