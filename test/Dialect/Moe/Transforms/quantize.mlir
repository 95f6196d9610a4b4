// Bases and factors of a clustered layer are replaced by quantised storage.
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-quantize | FileCheck %s
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-quantize="bits=8 base-bits=bf16 group-size=2 symmetric=true" | FileCheck %s --check-prefix=SYM
// RUN: moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-quantize="bits=none base-bits=32" | FileCheck %s --check-prefix=NONE
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-quantize=bits=3 2>&1 | FileCheck %s --check-prefix=BITS
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-quantize=base-bits=none 2>&1 | FileCheck %s --check-prefix=BASEBITS
// RUN: not moe-opt %S/../Inputs/planted_layer_assigned.mlir.inc --moe-compress-experts=rank=1 --moe-quantize=group-size=3 2>&1 | FileCheck %s --check-prefix=GROUP

// Default: FP16 bases, INT4 factors in groups of 32 (one group here: rows
// are shorter), asymmetric with f16 scales and i8 zero points.
// CHECK: moe.quantized_weight %{{.*}} : (tensor<2x6x4xf16>) -> tensor<2x6x4xf32, #moe.quant<storage = f16>>
// CHECK: moe.quantized_weight %{{.*}} scales %{{.*}} zero_points %{{.*}} : (tensor<4x3xi8>, tensor<4x1xf16>, tensor<4x1xi8>) -> tensor<4x6xf32, #moe.quant<storage = i4, group_size = 32, symmetric = false, scale_type = f16, zero_point_type = i8>>
// CHECK: moe.clustered_layer
// CHECK-SAME: #moe.quant<storage = f16>
// CHECK-SAME: #moe.quant<storage = i4

// SYM: moe.quantized_weight %{{.*}} : (tensor<2x6x4xbf16>) -> tensor<2x6x4xf32, #moe.quant<storage = bf16>>
// SYM: moe.quantized_weight %{{.*}} scales %{{.*}} : (tensor<4x6xi8>, tensor<4x3xf16>) -> tensor<4x6xf32, #moe.quant<storage = i8, group_size = 2, scale_type = f16>>

// NONE-NOT: moe.quantized_weight
// NONE: moe.clustered_layer

// BITS: error: bits must be 4, 8 or none, got '3'
// BASEBITS: error: base-bits must be 32, 16, bf16, 8 or 4, got 'none'
// GROUP: error: group-size of 4-bit storage must be even, got 3
