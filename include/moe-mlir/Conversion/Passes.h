//===- Passes.h - moe-mlir conversions --------------------------*- C++ -*-===//

#ifndef MOE_MLIR_CONVERSION_PASSES_H
#define MOE_MLIR_CONVERSION_PASSES_H

#include "moe-mlir/Dialect/Moe/IR/Moe.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {

#define GEN_PASS_DECL
#include "moe-mlir/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "moe-mlir/Conversion/Passes.h.inc"

} // namespace mlir::moe

#endif // MOE_MLIR_CONVERSION_PASSES_H
