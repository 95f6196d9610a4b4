//===- moe-compile.cpp - ONNX model to a moe-mlir artifact ----------------===//
//
// Thin: options to CompileOptions, then compileModel.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Compiler/Compiler.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"

using namespace llvm;

namespace {
cl::opt<std::string> input(cl::Positional, cl::desc("<model.onnx>"),
                           cl::Required);
cl::opt<std::string> output("o", cl::desc("artifact to write"),
                            cl::value_desc("model.moe"), cl::Required);
cl::opt<std::string> target("target", cl::desc("cpu (the only target yet)"),
                            cl::init("cpu"));
cl::opt<std::string> cpu("cpu",
                         cl::desc("native, x86-64-v3 (AVX2) or x86-64-v4 "
                                  "(AVX-512)"),
                         cl::init("native"));
cl::opt<bool> noCompress("no-compress",
                         cl::desc("no clustering, no quantisation"));
cl::opt<std::string> clusters("clusters", cl::desc("N or none"));
cl::opt<std::string> rankOpt("rank", cl::desc("R or full"));
cl::opt<std::string> energy("energy", cl::desc("energy threshold (0, 1]"));
cl::opt<std::string> bits("bits", cl::desc("residual factors: 4, 8 or none"));
cl::opt<std::string> baseBits("base-bits",
                              cl::desc("bases: 32, 16, bf16, 8 or 4"));
cl::opt<std::string> routing("routing", cl::desc("exact or hierarchical"));
cl::opt<std::string> calibration("calibration",
                                 cl::desc("calibration tokens (.npy)"));
cl::opt<std::string> profile("profile",
                             cl::desc("routing profile from moe-run (JSON)"));
cl::opt<std::string> report("report",
                            cl::desc("write the compression report (JSON)"));
cl::opt<std::string>
    ortMoeLayout("ort-moe-layout",
                 cl::desc("com.microsoft.MoE layout: auto, current, legacy"),
                 cl::init("auto"));
cl::opt<bool> verbose("v", cl::desc("time per stage"));
cl::opt<bool> noRecord("no-routing-hooks",
                       cl::desc("compile without the routing-profile hook"));

int fail(const Twine &message) {
  WithColor::error(errs(), "moe-compile") << message << "\n";
  return 1;
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  // The MLIR debugging flags (--mlir-print-ir-after-all, ...) work here too.
  mlir::registerMLIRContextCLOptions();
  mlir::registerPassManagerCLOptions();
  mlir::registerAsmPrinterCLOptions();
  cl::ParseCommandLineOptions(
      argc, argv, "moe-compile: ONNX model to a moe-mlir artifact\n");
  if (target != "cpu")
    return fail("unknown --target '" + target + "' (expected cpu)");
  mlir::moe::CompileOptions options;
  options.cpu.name = cpu;
  options.verbose = verbose;
  options.recordRouting = !noRecord;
  options.ortMoeLayout = ortMoeLayout;
  options.report = report;
  bool anyCompressFlag = !clusters.empty() || !rankOpt.empty() ||
                         !energy.empty() || !bits.empty() ||
                         !baseBits.empty() || !routing.empty() ||
                         !calibration.empty() || !profile.empty();
  if (noCompress) {
    if (anyCompressFlag || !report.empty())
      return fail("--no-compress takes no compression flags");
    options.compress = false;
  }
  if (!rankOpt.empty() && !energy.empty())
    return fail("--energy and --rank exclude each other");
  options.calibration = calibration;
  std::string opts;
  auto add = [&](StringRef key, StringRef value) {
    if (!value.empty())
      opts += (opts.empty() ? "" : " ") + key.str() + "=" + value.str();
  };
  add("clusters", clusters);
  add("rank", rankOpt);
  add("energy", energy);
  add("bits", bits);
  add("base-bits", baseBits);
  add("routing", routing);
  add("profile", profile);
  options.compressOptions = opts;

  mlir::DialectRegistry registry;
  mlir::moe::registerCompilerDialects(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  // A diagnostic names the node; the whole module after it helps nobody.
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  if (failed(mlir::moe::compileModel(context, input, output, options,
                                     llvm::errs())))
    return 1;
  return 0;
}
