//===- Compiler.cpp - moe-compile's driver as a library -------------------===//

#include "moe-mlir/Compiler/Compiler.h"

#include "moe-mlir/Conversion/Passes.h"
#include "moe-mlir/Dialect/Moe/IR/Moe.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"
#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"
#include "moe-mlir/Dialect/Onnx/Transforms/Passes.h"
#include "moe-mlir/Import/OnnxImporter.h"
#include "moe-runtime/Artifact.h"
#include "moe-runtime/Npz.h"
#include "moe-runtime/moe_runtime.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

using namespace mlir;
using namespace mlir::moe;

namespace {

/// What calibration runs record through moe_rt_record_tokens.
struct TokenRecorder {
  struct Layer {
    int64_t cols = 0;
    std::vector<float> values;
  };
  std::mutex mutex;
  std::map<int64_t, Layer> layers;
};
TokenRecorder &recorder() {
  static TokenRecorder r;
  return r;
}

/// Weights from which moe-compile reports each stage as it starts.
constexpr uint64_t kProgressBytes = 64ull << 20;

using StageFn = std::function<LogicalResult(
    StringRef, llvm::function_ref<LogicalResult()>)>;

LogicalResult lowerAndWrite(ModuleOp module, const CompileOptions &options,
                            bool recordTokens, StringRef outPath,
                            const StageFn &stage);

/// A weight hoisted out of the code: a view of the IR's own storage.
struct HoistedWeight {
  std::string name;
  RankedTensorType type;
  const char *data;
  size_t size;
};

std::optional<moe_dtype> dtypeOf(Type t) {
  if (t.isF32())
    return MOE_DT_F32;
  if (t.isF16())
    return MOE_DT_F16;
  if (t.isBF16())
    return MOE_DT_BF16;
  if (t.isF64())
    return MOE_DT_F64;
  if (t.isInteger(64))
    return MOE_DT_I64;
  if (t.isInteger(32))
    return MOE_DT_I32;
  if (t.isUnsignedInteger(8))
    return MOE_DT_U8;
  if (t.isInteger(8))
    return MOE_DT_I8;
  if (t.isInteger(1))
    return MOE_DT_BOOL;
  return std::nullopt;
}

/// Moves every large constant of `main` into a new trailing argument, so
/// weights live in the artifact's weight section, not in the code.
/// Splat constants stay: they cost nothing in code.
LogicalResult hoistWeights(func::FuncOp main,
                           std::vector<HoistedWeight> &weights) {
  SmallVector<arith::ConstantOp> constants;
  main.walk([&](arith::ConstantOp c) {
    auto type = dyn_cast<RankedTensorType>(c.getType());
    if (!type || !type.hasStaticShape())
      return;
    Attribute value = c.getValue();
    if (auto dense = dyn_cast<DenseElementsAttr>(value);
        dense && (dense.isSplat() || type.getNumElements() < 256))
      return;
    if (!isa<DenseElementsAttr, DenseResourceElementsAttr>(value))
      return;
    constants.push_back(c);
  });
  llvm::StringSet<llvm::MallocAllocator> used;
  for (arith::ConstantOp c : constants) {
    auto type = cast<RankedTensorType>(c.getType());
    HoistedWeight w;
    w.type = type;
    if (auto resource = dyn_cast<DenseResourceElementsAttr>(c.getValue())) {
      AsmResourceBlob *blob = resource.getRawHandle().getBlob();
      if (!blob)
        return c.emitError() << "weight '" << resource.getRawHandle().getKey()
                             << "' has no data";
      w.name = resource.getRawHandle().getKey().str();
      ArrayRef<char> bytes = blob->getData();
      w.data = bytes.data();
      w.size = bytes.size();
    } else {
      auto dense = cast<DenseElementsAttr>(c.getValue());
      w.name = "const";
      ArrayRef<char> bytes = dense.getRawData();
      w.data = bytes.data();
      w.size = bytes.size();
    }
    if (!dtypeOf(type.getElementType()))
      return c.emitError() << "weight of unsupported element type "
                           << type.getElementType();
    size_t bits = type.getElementTypeBitWidth();
    if (bits % 8 != 0 || w.size != type.getNumElements() * (bits / 8))
      return c.emitError() << "weight '" << w.name << "' holds " << w.size
                           << " bytes, its type " << type << " needs "
                           << type.getNumElements() * (bits / 8);
    std::string base = w.name;
    for (int n = 1; !used.insert(w.name).second; ++n)
      w.name = base + "." + std::to_string(n);
    unsigned index = main.getNumArguments();
    if (failed(main.insertArgument(index, type, {}, c.getLoc())))
      return failure();
    c.getResult().replaceAllUsesWith(main.getArgument(index));
    c.erase();
    weights.push_back(std::move(w));
  }
  return success();
}

::moe::rt::TensorDesc describe(Value v, DictionaryAttr attrs,
                               StringRef fallback) {
  ::moe::rt::TensorDesc d;
  d.name = fallback.str();
  if (attrs)
    if (auto name = attrs.getAs<StringAttr>("onnx.name"))
      d.name = name.getValue().str();
  auto type = cast<RankedTensorType>(v.getType());
  d.dtype = *dtypeOf(type.getElementType());
  for (int64_t s : type.getShape())
    d.shape.push_back(ShapedType::isDynamic(s) ? -1 : s);
  if (attrs)
    if (auto params = attrs.getAs<ArrayAttr>("onnx.dim_params"))
      for (Attribute p : params)
        d.dimParams.push_back(cast<StringAttr>(p).getValue().str());
  return d;
}

/// Lowers the (raised, maybe compressed) `module` in place and writes it
/// as an artifact at `outPath`.
LogicalResult lowerAndWrite(ModuleOp module, const CompileOptions &options,
                            bool recordTokens, StringRef outPath,
                            const StageFn &stage) {
  // What the runtime's profiler needs to know of each layer.
  std::vector<::moe::rt::LayerDesc> layers;
  module.walk([&](Operation *op) {
    ::moe::rt::LayerDesc d;
    d.index = layers.size();
    if (auto l = dyn_cast<LayerOp>(op)) {
      d.numExperts = l.getNumExperts();
      d.topK = l.getRouting().getTopK();
      d.numClusters = 0;
    } else if (auto c = dyn_cast<ClusteredLayerOp>(op)) {
      d.numExperts = c.getNumExperts();
      d.topK = c.getRouting().getTopK();
      for (int64_t a : c.getAssignment())
        d.assignment.push_back(a);
      d.numClusters = *llvm::max_element(c.getAssignment()) + 1;
    } else {
      return;
    }
    std::string name;
    llvm::raw_string_ostream os(name);
    op->getLoc().print(os);
    d.name = name;
    layers.push_back(d);
  });

  auto main = module.lookupSymbol<func::FuncOp>("main_graph");
  if (!main)
    return module.emitError() << "the model has no main graph";
  std::vector<::moe::rt::TensorDesc> inputs, outputs;
  for (unsigned i = 0; i < main.getNumArguments(); ++i) {
    auto type = dyn_cast<RankedTensorType>(main.getArgument(i).getType());
    if (!type || !dtypeOf(type.getElementType()))
      return main.emitError()
             << "input " << i << " has a type the runtime cannot bind: "
             << main.getArgument(i).getType();
    inputs.push_back(describe(main.getArgument(i), main.getArgAttrDict(i),
                              "input" + std::to_string(i)));
  }
  for (unsigned i = 0; i < main.getNumResults(); ++i) {
    auto type = dyn_cast<RankedTensorType>(main.getResultTypes()[i]);
    if (!type || !dtypeOf(type.getElementType()))
      return main.emitError()
             << "output " << i << " has a type the runtime cannot return: "
             << main.getResultTypes()[i];
    Value dummy = main.front().getTerminator()->getOperand(i);
    outputs.push_back(describe(dummy, main.getResultAttrDict(i),
                               "output" + std::to_string(i)));
  }

  if (failed(stage("lower to linalg", [&] {
        return runPassPipeline(
            module, std::string("convert-moe-to-linalg{record-routing=") +
                        (options.recordRouting ? "1" : "0") +
                        " record-tokens=" + (recordTokens ? "1" : "0") +
                        "},convert-onnx-to-linalg,canonicalize,cse");
      })))
    return failure();

  std::vector<HoistedWeight> weights;
  main = module.lookupSymbol<func::FuncOp>("main_graph");
  if (failed(hoistWeights(main, weights)))
    return failure();

  std::vector<char> hostCode;
  CpuTarget cpu = options.cpu;
  std::string cpuError;
  if (failed(resolveCpuTarget(cpu, cpuError)))
    return module.emitError() << cpuError;
  if (failed(stage("code generation",
                   [&] { return buildHostCode(module, cpu, hostCode); })))
    return failure();

  return stage("write artifact", [&]() -> LogicalResult {
    ::moe::rt::ArtifactWriter writer;
    writer.setProducer("moe-compile");
    ::moe::rt::TargetDesc target;
    target.cpu = cpu.llvmCpu;
    target.features = cpu.required;
    target.isaLevel = cpu.name;
    writer.setTarget(target);
    for (const ::moe::rt::TensorDesc &d : inputs)
      writer.addInput(d);
    for (const ::moe::rt::TensorDesc &d : outputs)
      writer.addOutput(d);
    for (const ::moe::rt::LayerDesc &d : layers)
      writer.addLayer(d);
    writer.setHostCodeView(hostCode.data(), hostCode.size());
    for (const HoistedWeight &w : weights) {
      ::moe::rt::WeightDesc d;
      d.name = w.name;
      d.dtype = *dtypeOf(w.type.getElementType());
      d.shape.assign(w.type.getShape().begin(), w.type.getShape().end());
      d.role = w.name;
      writer.addWeightView(d, w.data, w.size);
    }
    std::string error = writer.write(outPath.str());
    if (!error.empty())
      return module.emitError() << "writing " << outPath << ": " << error;
    return success();
  });
}

/// Runs the uncompressed `module` (a copy, lowered with the token hook)
/// on the calibration inputs and writes each layer's input tokens as
/// `layer_<N>.npy` into a new directory `dir`.
LogicalResult collectCalibrationTokens(ModuleOp module,
                                       const CompileOptions &options,
                                       const StageFn &stage, std::string &dir) {
  ::moe::rt::NpyArray input;
  std::string error;
  if (!::moe::rt::readNpy(options.calibration, input, error))
    return module.emitError() << "--calibration: " << error;
  llvm::SmallString<128> tmp;
  if (llvm::sys::fs::createUniqueDirectory("moe-calibration", tmp))
    return module.emitError() << "cannot create a temporary directory";
  dir = tmp.str().str();
  std::string probePath = dir + "/probe.moe";
  OwningOpRef<ModuleOp> probe = module.clone();
  CompileOptions probeOptions = options;
  probeOptions.recordRouting = false;
  probeOptions.verbose = false;
  if (failed(lowerAndWrite(*probe, probeOptions, /*recordTokens=*/true,
                           probePath, stage)))
    return failure();
  moe_model *model = moe_model_load(probePath.c_str(), nullptr);
  if (!model)
    return module.emitError() << "calibration model: " << moe_last_error();
  auto release = llvm::make_scope_exit([&] { moe_model_free(model); });
  if (moe_model_num_inputs(model) != 1)
    return module.emitError()
           << "--calibration needs a model with one input, this one has "
           << moe_model_num_inputs(model);
  const moe_tensor_info *info = moe_model_input(model, 0);
  moe_tensor in{};
  in.name = info->name;
  in.dtype = info->dtype;
  if (input.descr != "<f4" || info->dtype != MOE_DT_F32)
    return module.emitError()
           << "--calibration: '" << options.calibration
           << "' must hold float32 values for input '" << info->name << "'";
  if (input.shape.size() > 8)
    return module.emitError() << "--calibration: rank above 8";
  in.rank = input.shape.size();
  for (size_t d = 0; d < input.shape.size(); ++d)
    in.shape[d] = input.shape[d];
  in.data = input.data.data();
  std::vector<moe_tensor> outs(moe_model_num_outputs(model));
  {
    std::lock_guard<std::mutex> lock(recorder().mutex);
    recorder().layers.clear();
  }
  if (moe_run(model, &in, 1, outs.data(), outs.size(), nullptr) != 0)
    return module.emitError() << "calibration run: " << moe_last_error();
  for (moe_tensor &t : outs)
    moe_tensor_free(&t);
  std::lock_guard<std::mutex> lock(recorder().mutex);
  for (auto &[layer, tokens] : recorder().layers) {
    std::string file = dir + "/layer_" + std::to_string(layer) + ".npy";
    std::vector<int64_t> shape = {
        static_cast<int64_t>(tokens.values.size()) / tokens.cols, tokens.cols};
    std::string werr =
        ::moe::rt::writeNpy(file, "<f4", shape, tokens.values.data(),
                            tokens.values.size() * sizeof(float));
    if (!werr.empty())
      return module.emitError() << "calibration tokens: " << werr;
  }
  llvm::sys::fs::remove(probePath);
  return success();
}

} // namespace

/// The calibration probe's token hook: a copy of each layer's input.
extern "C" __attribute__((visibility("default"))) void
moe_rt_record_tokens(int64_t layer, int64_t data, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0)
    return;
  const float *p = reinterpret_cast<const float *>(data);
  std::lock_guard<std::mutex> lock(recorder().mutex);
  TokenRecorder::Layer &l = recorder().layers[layer];
  l.cols = cols;
  l.values.insert(l.values.end(), p, p + rows * cols);
}

void mlir::moe::registerCompilerDialects(DialectRegistry &registry) {
  // The driver runs textual pipelines: every pass it names is registered.
  static bool passes = [] {
    registerAllPasses();
    registerMoePasses();
    onnx::registerOnnxPasses();
    registerConversionPasses();
    return true;
  }();
  (void)passes;
  registry.insert<MoeDialect, onnx::OnnxDialect>();
  registerOnnxImportDialects(registry);
  registerAllDialects(registry);
  registerAllExtensions(registry);
}

LogicalResult mlir::moe::compileModel(MLIRContext &context,
                                      llvm::StringRef onnxPath,
                                      llvm::StringRef outPath,
                                      const CompileOptions &options,
                                      llvm::raw_ostream &log) {
  using Clock = std::chrono::steady_clock;
  // Big models take long enough per stage that the user should see where
  // the compiler is, even without -v.
  bool progress = options.verbose;
  StageFn stage = [&](StringRef name,
                      llvm::function_ref<LogicalResult()> fn) -> LogicalResult {
    if (progress)
      log << "moe-compile: " << name << "...\n";
    Clock::time_point start = Clock::now();
    LogicalResult result = fn();
    if (options.verbose)
      log << "moe-compile: " << name << ": "
          << llvm::format("%.1f", std::chrono::duration<double, std::milli>(
                                      Clock::now() - start)
                                      .count())
          << " ms\n";
    return result;
  };

  OwningOpRef<ModuleOp> module;
  if (failed(stage("import", [&]() -> LogicalResult {
        module = importOnnxFile(onnxPath, &context);
        return success(static_cast<bool>(module));
      })))
    return failure();

  if (!progress) {
    uint64_t bytes = 0;
    module->walk([&](Operation *op) {
      if (op->getNumResults() == 1 && op->hasTrait<OpTrait::ConstantLike>())
        if (auto t = dyn_cast<RankedTensorType>(op->getResult(0).getType());
            t && t.hasStaticShape() && t.getElementType().isIntOrFloat())
          bytes += t.getNumElements() * t.getElementTypeBitWidth() / 8;
    });
    progress = bytes >= kProgressBytes;
  }

  if (failed(stage("raise", [&] {
        return runPassPipeline(*module, "func.func(onnx-shape-inference),"
                                        "moe-raise-experts{ort-moe-layout=" +
                                            options.ortMoeLayout +
                                            "},canonicalize,cse");
      })))
    return failure();

  if (options.compress) {
    std::string opts = options.compressOptions;
    std::string calibrationDir;
    if (!options.calibration.empty()) {
      if (failed(stage("calibration run", [&] {
            return collectCalibrationTokens(*module, options, stage,
                                            calibrationDir);
          })))
        return failure();
      opts += " calibration=" + calibrationDir;
    }
    if (!options.report.empty())
      opts += " report=" + options.report;
    if (failed(stage("compress", [&] {
          return runPassPipeline(*module,
                                 "moe-compress-pipeline{" + opts + "}");
        })))
      return failure();
    if (!calibrationDir.empty())
      llvm::sys::fs::remove_directories(calibrationDir);
  }
  return lowerAndWrite(*module, options, /*recordTokens=*/false, outPath,
                       stage);
}
