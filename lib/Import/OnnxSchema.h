//===- OnnxSchema.h - What the importer knows of each ONNX op ---*- C++ -*-===//
//
// The onnx dialect gives every declared input of an op an operand (a
// missing optional one gets onnx.None) and every declared output a result,
// so the importer needs each op's declared arity, which an ONNX node does
// not spell out when it omits trailing optional inputs or outputs.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_IMPORT_ONNXSCHEMA_H
#define MOE_MLIR_LIB_IMPORT_ONNXSCHEMA_H

#include "llvm/ADT/StringRef.h"

#include <optional>

namespace mlir::moe::import {

constexpr int kVariadic = -1;

struct OpArity {
  int inputs;  ///< declared inputs, or kVariadic
  int outputs; ///< declared outputs, or kVariadic
};

/// The dialect op name for a node, or nullopt when no op of ours stands for
/// (domain, opType).
std::optional<std::string> dialectOpName(llvm::StringRef domain,
                                         llvm::StringRef opType);

/// Declared arity of `opType` (latest opset form), or nullopt if unknown.
std::optional<OpArity> opArity(llvm::StringRef opType);

/// Supported opset versions of the default domain.
constexpr int64_t kMinOpset = 13;
constexpr int64_t kMaxOpset = 28;

} // namespace mlir::moe::import

#endif // MOE_MLIR_LIB_IMPORT_ONNXSCHEMA_H
