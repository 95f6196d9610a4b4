//===- Passes.h - onnx dialect passes ---------------------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECT_ONNX_TRANSFORMS_PASSES_H
#define MOE_MLIR_DIALECT_ONNX_TRANSFORMS_PASSES_H

#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::onnx {

#define GEN_PASS_DECL
#include "moe-mlir/Dialect/Onnx/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "moe-mlir/Dialect/Onnx/Transforms/Passes.h.inc"

} // namespace mlir::onnx

#endif // MOE_MLIR_DIALECT_ONNX_TRANSFORMS_PASSES_H
