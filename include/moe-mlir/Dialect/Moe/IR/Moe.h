//===- Moe.h - The moe dialect: dialect, attributes, ops --------*- C++ -*-===//
//
// One header for users of the dialect; the generated pieces stay separate
// files, included here in dependency order.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_DIALECT_MOE_IR_MOE_H
#define MOE_MLIR_DIALECT_MOE_IR_MOE_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/TensorEncoding.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "moe-mlir/Dialect/Moe/IR/MoeDialect.h.inc"
#include "moe-mlir/Dialect/Moe/IR/MoeEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moe-mlir/Dialect/Moe/IR/MoeAttrs.h.inc"

#define GET_OP_CLASSES
#include "moe-mlir/Dialect/Moe/IR/MoeOps.h.inc"

#endif // MOE_MLIR_DIALECT_MOE_IR_MOE_H
