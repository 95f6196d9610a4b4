//===- HostCode.cpp - Bufferised module to a host shared object -----------===//

#include "moe-mlir/Compiler/HostCode.h"
#include "moe-mlir/Compiler/ParallelRuntime.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

const char *const kEntry = "moe_entry";
const char *const kMain = "main_graph";

/// Results must be fresh allocations the runtime can free: copy any result
/// that is an argument, a global, a view of one, or another result's
/// buffer.
void copyNonFreshResults(func::FuncOp main) {
  main.walk([&](func::ReturnOp ret) {
    OpBuilder b(ret);
    llvm::SmallPtrSet<Value, 4> roots;
    for (OpOperand &operand : ret->getOpOperands()) {
      Value root = operand.get();
      while (Operation *def = root.getDefiningOp()) {
        if (auto view = dyn_cast<ViewLikeOpInterface>(def)) {
          root = view.getViewSource();
          continue;
        }
        if (isa<memref::CastOp>(def)) {
          root = def->getOperand(0);
          continue;
        }
        break;
      }
      bool fresh =
          root.getDefiningOp<memref::AllocOp>() && roots.insert(root).second;
      if (fresh)
        continue;
      auto type = cast<MemRefType>(operand.get().getType());
      SmallVector<Value> dynamic;
      for (int64_t d = 0; d < type.getRank(); ++d)
        if (type.isDynamicDim(d))
          dynamic.push_back(
              memref::DimOp::create(b, ret.getLoc(), operand.get(), d));
      auto plain = MemRefType::get(type.getShape(), type.getElementType());
      Value copy = memref::AllocOp::create(b, ret.getLoc(), plain, dynamic);
      memref::CopyOp::create(b, ret.getLoc(), operand.get(), copy);
      if (copy.getType() != type)
        copy = memref::CastOp::create(b, ret.getLoc(), type, copy);
      operand.set(copy);
    }
  });
}

/// memref.expand_shape of a contiguous buffer as a reinterpret_cast with
/// row-major strides. MLIR 22's expand-strided-metadata crashes on an
/// expand_shape whose group holds two dynamic sizes (reproducer in
/// docs/lowering.md); the cast is what it would have produced.
void expandShapesAsCasts(ModuleOp module) {
  SmallVector<memref::ExpandShapeOp> ops;
  module.walk([&](memref::ExpandShapeOp op) {
    if (op.getSrcType().getLayout().isIdentity() &&
        op.getResultType().getLayout().isIdentity())
      ops.push_back(op);
  });
  for (memref::ExpandShapeOp op : ops) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    SmallVector<OpFoldResult> sizes = op.getMixedOutputShape();
    SmallVector<OpFoldResult> strides(sizes.size());
    OpFoldResult running = b.getIndexAttr(1);
    for (int64_t d = sizes.size() - 1; d >= 0; --d) {
      strides[d] = running;
      std::optional<int64_t> r = getConstantIntValue(running);
      std::optional<int64_t> s = getConstantIntValue(sizes[d]);
      if (r && s) {
        running = b.getIndexAttr(*r * *s);
      } else {
        running = arith::MulIOp::create(
                      b, loc, getValueOrCreateConstantIndexOp(b, loc, running),
                      getValueOrCreateConstantIndexOp(b, loc, sizes[d]))
                      .getResult();
      }
    }
    Value cast = memref::ReinterpretCastOp::create(
        b, loc, op.getResultType(), op.getSrc(), b.getIndexAttr(0), sizes,
        strides);
    op.getResult().replaceAllUsesWith(cast);
    op.erase();
  }
}

/// cf.assert would abort the whole process; instead a failed check calls
/// the runtime's moe_rt_fail(message), which makes moe_run return an error.
void assertsToRuntimeFailures(ModuleOp module) {
  SmallVector<cf::AssertOp> asserts;
  module.walk([&](cf::AssertOp op) { asserts.push_back(op); });
  if (asserts.empty())
    return;
  MLIRContext *ctx = module.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  OpBuilder top = OpBuilder::atBlockBegin(module.getBody());
  auto hook = module.lookupSymbol<func::FuncOp>("moe_rt_fail");
  if (!hook) {
    hook = func::FuncOp::create(top, module.getLoc(), "moe_rt_fail",
                                top.getFunctionType({ptr}, {}));
    hook.setPrivate();
  }
  for (auto [i, op] : llvm::enumerate(asserts)) {
    std::string text = op.getMsg().str();
    text.push_back('\0');
    auto type = LLVM::LLVMArrayType::get(IntegerType::get(ctx, 8), text.size());
    std::string name = "moe_check_message_" + std::to_string(i);
    LLVM::GlobalOp::create(top, op.getLoc(), type, /*isConstant=*/true,
                           LLVM::Linkage::Internal, name,
                           top.getStringAttr(text));
    OpBuilder b(op);
    Value bad = arith::XOrIOp::create(
        b, op.getLoc(), op.getArg(),
        arith::ConstantIntOp::create(b, op.getLoc(), 1, 1));
    scf::IfOp::create(b, op.getLoc(), bad, [&](OpBuilder &tb, Location l) {
      Value msg = LLVM::AddressOfOp::create(tb, l, ptr, name);
      func::CallOp::create(tb, l, hook, ValueRange{msg});
      scf::YieldOp::create(tb, l);
    });
    op.erase();
  }
}

/// memref.copy between non-contiguous views lowers to a call of MLIR's
/// runner library (memrefCopy), which the runtime does not provide: copy
/// them with loops instead.
void stridedCopiesAsLoops(ModuleOp module) {
  SmallVector<memref::CopyOp> copies;
  module.walk([&](memref::CopyOp op) {
    auto src = cast<MemRefType>(op.getSource().getType());
    auto dst = cast<MemRefType>(op.getTarget().getType());
    if (!src.getLayout().isIdentity() || !dst.getLayout().isIdentity())
      copies.push_back(op);
  });
  for (memref::CopyOp op : copies) {
    OpBuilder b(op);
    linalg::CopyOp::create(b, op.getLoc(), op.getSource(), op.getTarget());
    op.erase();
  }
}

/// f32 exp as MLIR's polynomial approximation (a few ulp) instead of calls
/// of libm's expf: inline arithmetic, so LLVM vectorises the activation
/// loops that use it (silu, sigmoid); expf calls were 2% of a prefill.
LogicalResult approximateExp(ModuleOp module) {
  RewritePatternSet patterns(module.getContext());
  populateMathPolynomialApproximationPatterns(
      patterns, [](StringRef name) { return name == "math.exp"; });
  return applyPatternsGreedily(module, std::move(patterns));
}

/// void moe_entry(void **args): args[0] the results area, then one
/// descriptor pointer per argument of main_graph.
LogicalResult addEntryWrapper(ModuleOp module, unsigned numArgs) {
  MLIRContext *ctx = module.getContext();
  std::string ciface = ("_mlir_ciface_" + Twine(kMain)).str();
  auto callee = module.lookupSymbol<LLVM::LLVMFuncOp>(ciface);
  if (!callee)
    return module.emitError() << "lowering produced no " << ciface;
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  Location loc = module.getLoc();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto type = LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx), {ptr});
  auto entry = LLVM::LLVMFuncOp::create(b, loc, kEntry, type);
  Block *body = entry.addEntryBlock(b);
  b.setInsertionPointToStart(body);
  Value argv = body->getArgument(0);
  SmallVector<Value> args;
  unsigned calleeArgs = callee.getFunctionType().getNumParams();
  for (unsigned i = 0; i < calleeArgs; ++i) {
    Value slot = LLVM::GEPOp::create(b, loc, ptr, ptr, argv,
                                     ArrayRef<LLVM::GEPArg>{(int32_t)i});
    args.push_back(LLVM::LoadOp::create(b, loc, ptr, slot));
  }
  if (calleeArgs != numArgs + 1)
    return module.emitError() << ciface << " takes " << calleeArgs
                              << " pointers, expected " << numArgs + 1;
  LLVM::CallOp::create(b, loc, callee, args);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return success();
}

} // namespace

LogicalResult mlir::moe::runPassPipeline(ModuleOp module, StringRef pipeline) {
  PassManager pm(module.getContext());
  if (failed(applyPassManagerCLOptions(pm)))
    return failure();
  std::string errors;
  llvm::raw_string_ostream os(errors);
  if (failed(parsePassPipeline(pipeline, pm, os)))
    return module.emitError() << "pass pipeline does not parse: " << errors;
  return pm.run(module);
}

LogicalResult mlir::moe::resolveCpuTarget(CpuTarget &target,
                                          std::string &error) {
  static const char *const v3[] = {"avx", "avx2",  "bmi",   "bmi2",  "f16c",
                                   "fma", "lzcnt", "movbe", "popcnt"};
  static const char *const v4[] = {"avx512f", "avx512bw", "avx512cd",
                                   "avx512dq", "avx512vl"};
  target.required.clear();
  if (target.name == "native") {
    target.llvmCpu = llvm::sys::getHostCPUName().str();
    llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
    std::string list;
    for (auto &f : features) {
      if (!list.empty())
        list += ",";
      list += (f.second ? "+" : "-") + f.first().str();
    }
    target.llvmFeatures = list;
    // The runtime checks what the code may use among the ISA extensions
    // that matter for it.
    for (const char *name : v3)
      if (features.lookup(name))
        target.required.push_back(name);
    for (const char *name : v4)
      if (features.lookup(name))
        target.required.push_back(name);
    return success();
  }
  if (target.name == "x86-64-v3" || target.name == "x86-64-v4") {
    target.llvmCpu = target.name;
    target.llvmFeatures = "";
    target.required.assign(std::begin(v3), std::end(v3));
    if (target.name == "x86-64-v4")
      target.required.insert(target.required.end(), std::begin(v4),
                             std::end(v4));
    return success();
  }
  error = "unknown --cpu '" + target.name +
          "': expected native, x86-64-v3 or x86-64-v4";
  return failure();
}

LogicalResult mlir::moe::buildHostCode(ModuleOp module, const CpuTarget &target,
                                       std::vector<char> &sharedObject) {
  auto main = module.lookupSymbol<func::FuncOp>(kMain);
  if (!main)
    return module.emitError() << "no function @" << kMain;
  unsigned numArgs = main.getNumArguments();
  // Inputs and weights belong to the caller: never written in place.
  for (unsigned i = 0; i < numArgs; ++i)
    main.setArgAttr(i, bufferization::BufferizationDialect::kWritableAttrName,
                    BoolAttr::get(module.getContext(), false));
  if (failed(runPassPipeline(
          module, "canonicalize,cse,one-shot-bufferize{"
                  "bufferize-function-boundaries "
                  "function-boundary-type-conversion=identity-layout-map},"
                  // Identical subviews left by slice writes fold, so no
                  // copy between them remains.
                  "cse,canonicalize")))
    return failure();
  copyNonFreshResults(main);
  assertsToRuntimeFailures(module);
  // The ONNX names are in the manifest; LLVM has no use for them.
  for (unsigned i = 0; i < main.getNumArguments(); ++i)
    main.setArgAttrs(i, ArrayRef<NamedAttribute>{});
  for (unsigned i = 0; i < main.getNumResults(); ++i)
    main.setResultAttrs(i, ArrayRef<NamedAttribute>{});
  main->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                UnitAttr::get(module.getContext()));
  if (failed(runPassPipeline(module, "buffer-deallocation-pipeline,"
                                     "convert-bufferization-to-memref,"
                                     "canonicalize,scf-forall-to-parallel")) ||
      failed(outlineParallelLoops(module)))
    return failure();
  stridedCopiesAsLoops(module);
  if (failed(runPassPipeline(module, "convert-linalg-to-loops")) ||
      failed(approximateExp(module)))
    return failure();
  expandShapesAsCasts(module);
  if (failed(runPassPipeline(
          module,
          "convert-vector-to-scf,expand-strided-metadata,lower-affine,"
          "convert-scf-to-cf,convert-math-to-llvm,convert-math-to-libm,"
          // bf16 casts as integer code, not calls to compiler-rt.
          "arith-expand{include-bf16},convert-vector-to-llvm,"
          "convert-arith-to-llvm,"
          "finalize-memref-to-llvm,convert-func-to-llvm,"
          "convert-cf-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts")))
    return failure();
  if (failed(lowerParallelLaunches(module)) ||
      failed(addEntryWrapper(module, numArgs)))
    return failure();

  // LLVM IR, optimised for the target, to an object file.
  registerBuiltinDialectTranslation(*module.getContext());
  registerLLVMDialectTranslation(*module.getContext());
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext);
  if (!llvmModule)
    return module.emitError() << "translation to LLVM IR failed";
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!llvmTarget)
    return module.emitError() << "no LLVM target: " << error;
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      triple, target.llvmCpu, target.llvmFeatures, options, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return module.emitError() << "cannot target CPU '" << target.llvmCpu << "'";
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(triple);
  if (llvm::Error err =
          makeOptimizingTransformer(3, 0, machine.get())(llvmModule.get()))
    return module.emitError()
           << "LLVM optimisation failed: " << llvm::toString(std::move(err));
  llvm::SmallVector<char, 0> object;
  {
    llvm::raw_svector_ostream os(object);
    llvm::legacy::PassManager codegen;
    if (machine->addPassesToEmitFile(codegen, os, nullptr,
                                     llvm::CodeGenFileType::ObjectFile))
      return module.emitError() << "the target cannot emit object files";
    codegen.run(*llvmModule);
  }

  // Link with the system's driver: libm for expf/erff, nothing else.
  llvm::SmallString<128> dir;
  if (llvm::sys::fs::createUniqueDirectory("moe-compile", dir))
    return module.emitError() << "cannot create a temporary directory";
  std::string objPath = (dir + "/host.o").str();
  std::string soPath = (dir + "/host.so").str();
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(objPath, ec);
    if (ec)
      return module.emitError()
             << "cannot write " << objPath << ": " << ec.message();
    out.write(object.data(), object.size());
  }
  std::string linker = "/usr/lib/llvm-22/bin/clang";
  if (!llvm::sys::fs::exists(linker)) {
    llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName("cc");
    if (!found)
      return module.emitError()
             << "no linker: neither " << linker << " nor cc exists";
    linker = *found;
  }
  llvm::StringRef argv[] = {linker, "-shared", "-o", soPath, objPath, "-lm"};
  std::string linkError;
  int rc = llvm::sys::ExecuteAndWait(linker, argv, std::nullopt, {}, 0, 0,
                                     &linkError);
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> so =
      llvm::MemoryBuffer::getFile(soPath);
  llvm::sys::fs::remove(objPath);
  llvm::sys::fs::remove(soPath);
  llvm::sys::fs::remove(dir);
  if (rc != 0 || !so)
    return module.emitError() << "linking the host code failed (" << linker
                              << " exit " << rc << "): " << linkError;
  sharedObject.assign((*so)->getBufferStart(), (*so)->getBufferEnd());
  return success();
}
