//===- Passes.h - moe dialect passes ----------------------------*- C++ -*-===//

#ifndef MOE_MLIR_DIALECT_MOE_TRANSFORMS_PASSES_H
#define MOE_MLIR_DIALECT_MOE_TRANSFORMS_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {

#define GEN_PASS_DECL
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"

} // namespace mlir::moe

#endif // MOE_MLIR_DIALECT_MOE_TRANSFORMS_PASSES_H
