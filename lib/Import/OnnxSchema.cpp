//===- OnnxSchema.cpp - What the importer knows of each ONNX op -----------===//
//
// Arity of each supported op in its latest opset form, as
// onnx.defs.get_schema reports it (onnx 1.23); the contrib ops' from
// onnxruntime's contrib op definitions.
//
//===----------------------------------------------------------------------===//

#include "OnnxSchema.h"

#include "llvm/ADT/StringMap.h"

using namespace mlir::moe::import;

std::optional<OpArity> mlir::moe::import::opArity(llvm::StringRef opType) {
  static const llvm::StringMap<OpArity> table = {
      {"Add", {2, 1}},
      {"Sub", {2, 1}},
      {"Mul", {2, 1}},
      {"Div", {2, 1}},
      {"Pow", {2, 1}},
      {"Sqrt", {1, 1}},
      {"Reciprocal", {1, 1}},
      {"Neg", {1, 1}},
      {"Exp", {1, 1}},
      {"Log", {1, 1}},
      {"Erf", {1, 1}},
      {"Tanh", {1, 1}},
      {"Sigmoid", {1, 1}},
      {"Relu", {1, 1}},
      {"Gelu", {1, 1}},
      {"Sin", {1, 1}},
      {"Cos", {1, 1}},
      {"Abs", {1, 1}},
      {"Softmax", {1, 1}},
      {"LogSoftmax", {1, 1}},
      {"MatMul", {2, 1}},
      {"Gemm", {3, 1}},
      {"Reshape", {2, 1}},
      {"Transpose", {1, 1}},
      {"Squeeze", {2, 1}},
      {"Unsqueeze", {2, 1}},
      {"Concat", {kVariadic, 1}},
      {"Split", {2, kVariadic}},
      {"Slice", {5, 1}},
      {"Gather", {2, 1}},
      {"GatherElements", {2, 1}},
      {"GatherND", {2, 1}},
      {"ScatterElements", {3, 1}},
      {"ScatterND", {3, 1}},
      {"Expand", {2, 1}},
      {"Tile", {2, 1}},
      {"Shape", {1, 1}},
      {"Size", {1, 1}},
      {"ConstantOfShape", {1, 1}},
      {"Constant", {0, 1}},
      {"Cast", {1, 1}},
      {"CastLike", {2, 1}},
      {"Where", {3, 1}},
      {"Equal", {2, 1}},
      {"Greater", {2, 1}},
      {"Less", {2, 1}},
      {"GreaterOrEqual", {2, 1}},
      {"LessOrEqual", {2, 1}},
      {"Not", {1, 1}},
      {"And", {2, 1}},
      {"Or", {2, 1}},
      {"TopK", {2, 2}},
      {"ReduceSum", {2, 1}},
      {"ReduceMean", {2, 1}},
      {"ReduceMax", {2, 1}},
      {"ReduceMin", {2, 1}},
      {"OneHot", {3, 1}},
      {"NonZero", {1, 1}},
      {"CumSum", {2, 1}},
      {"Range", {3, 1}},
      {"Trilu", {2, 1}},
      {"LayerNormalization", {3, 3}},
      {"Identity", {1, 1}},
      {"Flatten", {1, 1}},
      {"Clip", {3, 1}},
      {"Min", {kVariadic, 1}},
      {"Max", {kVariadic, 1}},
      {"Sum", {kVariadic, 1}},
      {"ArgMax", {1, 1}},
      {"ArgMin", {1, 1}},
      {"Einsum", {kVariadic, 1}},
      {"Softplus", {1, 1}},
      {"Sign", {1, 1}},
      {"Floor", {1, 1}},
      {"Ceil", {1, 1}},
      // com.microsoft (onnxruntime contrib ops)
      {"MoE", {8, 1}},
      {"QMoE", {14, 1}},
  };
  auto it = table.find(opType);
  if (it == table.end())
    return std::nullopt;
  return it->second;
}

std::optional<std::string>
mlir::moe::import::dialectOpName(llvm::StringRef domain,
                                 llvm::StringRef opType) {
  bool standard = domain.empty() || domain == "ai.onnx";
  bool contrib = domain == "com.microsoft" &&
                 (opType == "MoE" || opType == "QMoE");
  if ((standard && opType != "MoE" && opType != "QMoE" && opArity(opType)) ||
      contrib)
    return "onnx." + opType.str();
  return std::nullopt;
}
