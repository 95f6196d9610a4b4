//===- moe-opt.cpp - mlir-opt for the moe dialects -------------------------===//
//
// Thin: registration and argument sugar only; the work is in the passes.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Conversion/Passes.h"
#include "moe-mlir/Dialect/Moe/IR/Moe.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"
#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"
#include "moe-mlir/Dialect/Onnx/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include <string>
#include <vector>

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::moe::MoeDialect, mlir::onnx::OnnxDialect>();
  // The upstream dialects, passes and LLVM/NVVM translations are the ones the
  // lowerings and gpu-module-to-binary use; they all live in libMLIR.so, so
  // registering them costs no link time.
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  mlir::registerAllPasses();
  mlir::moe::registerMoePasses();
  mlir::onnx::registerOnnxPasses();
  mlir::moe::registerConversionPasses();

  // `--moe-dump-layers=DIR` is the documented spelling; the pass syntax
  // wants `--moe-dump-layers=dir=DIR`. Accept both.
  std::vector<std::string> storage(argv, argv + argc);
  const std::string prefix = "--moe-dump-layers=";
  for (std::string &arg : storage)
    if (arg.rfind(prefix, 0) == 0 &&
        arg.find('=', prefix.size()) == std::string::npos)
      arg = prefix + "dir=" + arg.substr(prefix.size());
  std::vector<char *> args;
  for (std::string &arg : storage)
    args.push_back(arg.data());
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      static_cast<int>(args.size()), args.data(), "moe-mlir optimizer driver\n",
      registry));
}
