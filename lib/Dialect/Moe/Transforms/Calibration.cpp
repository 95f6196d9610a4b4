//===- Calibration.cpp - Calibration tokens and routing profiles ----------===//

#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/Calibration.h"
#include "moe-runtime/Npz.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::moe;

FailureOr<method::Matrix> mlir::moe::loadTokens(Operation *op, StringRef path,
                                                int64_t layerIndex) {
  SmallString<256> file(path);
  if (llvm::sys::fs::is_directory(path))
    llvm::sys::path::append(file,
                            "layer_" + std::to_string(layerIndex) + ".npy");
  ::moe::rt::NpyArray array;
  std::string error;
  std::vector<float> values;
  if (!::moe::rt::readNpy(file.str().str(), array, error) ||
      !::moe::rt::npyToFloat(array, values, error))
    return op->emitError() << "calibration tokens: " << error;
  if (array.shape.empty() || array.shape.back() < 1)
    return op->emitError() << "calibration tokens in '" << file
                           << "' must have shape (..., H)";
  method::Matrix tokens;
  tokens.cols = array.shape.back();
  tokens.rows = static_cast<int64_t>(values.size()) / tokens.cols;
  if (tokens.rows < 1)
    return op->emitError() << "calibration tokens in '" << file
                           << "' hold no token";
  tokens.data = std::move(values);
  return tokens;
}

FailureOr<std::vector<double>>
mlir::moe::loadExpertFrequency(Operation *op, StringRef path,
                               int64_t layerIndex, int64_t numExperts) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return op->emitError() << "cannot read routing profile '" << path
                           << "': " << buffer.getError().message();
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*buffer)->getBuffer());
  if (!json)
    return op->emitError() << "routing profile '" << path
                           << "' is not JSON: "
                           << llvm::toString(json.takeError());
  const llvm::json::Object *root = json->getAsObject();
  const llvm::json::Array *layers = root ? root->getArray("layers") : nullptr;
  if (!layers || layerIndex >= static_cast<int64_t>(layers->size()))
    return op->emitError() << "routing profile '" << path
                           << "' has no entry for layer " << layerIndex;
  const llvm::json::Object *layer = (*layers)[layerIndex].getAsObject();
  const llvm::json::Array *counts =
      layer ? layer->getArray("tokens_per_expert") : nullptr;
  if (!counts || static_cast<int64_t>(counts->size()) != numExperts)
    return op->emitError() << "routing profile '" << path << "' layer "
                           << layerIndex << ": tokens_per_expert must list "
                           << numExperts << " counts";
  std::vector<double> frequency;
  for (const llvm::json::Value &v : *counts) {
    std::optional<double> n = v.getAsNumber();
    if (!n || *n < 0)
      return op->emitError() << "routing profile '" << path << "' layer "
                             << layerIndex
                             << ": tokens_per_expert holds a non-count";
    frequency.push_back(*n);
  }
  return frequency;
}
