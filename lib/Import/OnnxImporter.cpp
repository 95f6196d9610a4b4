//===- OnnxImporter.cpp - ONNX model to the onnx dialect ------------------===//
//
// Parses the protobuf with the ONNX 1.12 C++ types (newer opsets parse
// fine: the wire format is stable), then builds one onnx-dialect op per
// node, generically by name, so the importer needs no per-op code: arity
// comes from OnnxSchema, attributes convert by their protobuf type, and the
// dialect's shape inference types each result as it is created.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Import/OnnxImporter.h"

#include "OnnxSchema.h"
#include "moe-mlir/Dialect/Moe/IR/Moe.h"
#include "moe-mlir/Dialect/Onnx/IR/Onnx.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx_pb.h>

#include <climits>
#include <cstring>
#include <memory>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::import;

namespace {

/// A name from the model, safe to print: names come from the file, which
/// may be damaged, so anything but printable ASCII is shown as \HH.
std::string shown(llvm::StringRef name) {
  std::string out;
  llvm::raw_string_ostream os(out);
  llvm::printEscapedString(name, os);
  return out;
}

/// Tensors up to this many elements become readable `dense` attributes
/// (shape constants, scalars: what folding needs); larger ones become
/// dense_resource blobs that print as one hex string.
constexpr int64_t kInlineElements = 64;

class Importer {
public:
  Importer(MLIRContext *ctx, StringRef modelPath)
      : ctx(ctx), builder(ctx), modelPath(modelPath.str()),
        modelDir(llvm::sys::path::parent_path(modelPath).str()) {
    fileLoc = FileLineColLoc::get(ctx, modelPath, 0, 0);
  }

  OwningOpRef<ModuleOp> run(StringRef bytes, const OnnxImportOptions &options);

private:
  // Diagnostics.
  InFlightDiagnostic error(Location loc) { return emitError(loc); }
  Location nodeLoc(const ::onnx::NodeProto &node, size_t index) {
    std::string name = node.name().empty()
                           ? node.op_type() + "_" + std::to_string(index)
                           : node.name();
    return NameLoc::get(StringAttr::get(ctx, shown(name)), fileLoc);
  }
  std::string describe(const ::onnx::NodeProto &node) {
    std::string domain = node.domain().empty() ? "ai.onnx" : node.domain();
    auto it = opsets.find(domain == "ai.onnx" ? "" : domain);
    std::string version =
        it == opsets.end() ? "?" : std::to_string(it->second);
    return "node '" + shown(node.name()) + "' (" + shown(node.op_type()) +
           ", domain " + shown(domain) + ", opset " + version + ")";
  }

  // Types and tensors.
  FailureOr<Type> elementType(int32_t dataType, Location loc);
  FailureOr<Type> valueType(const ::onnx::TypeProto &type, Location loc,
                            SmallVectorImpl<StringRef> *dimParams = nullptr);
  FailureOr<ElementsAttr> tensorAttr(const ::onnx::TensorProto &tensor,
                                     Location loc);
  FailureOr<ArrayRef<char>> externalData(const ::onnx::TensorProto &tensor,
                                         Location loc,
                                         std::shared_ptr<void> &keepAlive);
  FailureOr<NamedAttribute> attribute(const ::onnx::AttributeProto &attr,
                                      const ::onnx::NodeProto &node,
                                      Location loc);

  LogicalResult checkModel(const ::onnx::ModelProto &model);
  LogicalResult checkNodes(const ::onnx::GraphProto &graph);
  LogicalResult importGraph(const ::onnx::GraphProto &graph, ModuleOp module,
                            StringRef functionName);
  LogicalResult importNode(const ::onnx::NodeProto &node, size_t index);
  Value none();
  /// Opset < 18 spells some inputs as attributes; make them inputs.
  LogicalResult normalise(const ::onnx::NodeProto &node, Location loc,
                          SmallVectorImpl<Value> &operands,
                          SmallVectorImpl<NamedAttribute> &attrs);

  MLIRContext *ctx;
  OpBuilder builder;
  std::string modelPath, modelDir;
  Location fileLoc = UnknownLoc::get(ctx);
  llvm::StringMap<int64_t> opsets;
  llvm::StringMap<Value> values;
  llvm::StringMap<Type> declaredTypes; // value_info and graph outputs
  Value noneValue;
  Block *body = nullptr;
  /// External data files, mmap'ed once each.
  llvm::StringMap<std::shared_ptr<llvm::MemoryBuffer>> externalFiles;
};

FailureOr<Type> Importer::elementType(int32_t dataType, Location loc) {
  using TP = ::onnx::TensorProto;
  switch (dataType) {
  case TP::FLOAT:
    return Type(Float32Type::get(ctx));
  case TP::DOUBLE:
    return Type(Float64Type::get(ctx));
  case TP::FLOAT16:
    return Type(Float16Type::get(ctx));
  case TP::BFLOAT16:
    return Type(BFloat16Type::get(ctx));
  case TP::INT64:
    return Type(IntegerType::get(ctx, 64));
  case TP::INT32:
    return Type(IntegerType::get(ctx, 32));
  case TP::INT16:
    return Type(IntegerType::get(ctx, 16));
  case TP::INT8:
    return Type(IntegerType::get(ctx, 8));
  case TP::UINT8:
    return Type(IntegerType::get(ctx, 8, IntegerType::Unsigned));
  case TP::UINT16:
    return Type(IntegerType::get(ctx, 16, IntegerType::Unsigned));
  case TP::UINT32:
    return Type(IntegerType::get(ctx, 32, IntegerType::Unsigned));
  case TP::UINT64:
    return Type(IntegerType::get(ctx, 64, IntegerType::Unsigned));
  case TP::BOOL:
    return Type(IntegerType::get(ctx, 1));
  default:
    return error(loc) << "unsupported ONNX element type " << dataType
                      << " (supported: float, double, float16, bfloat16, "
                         "int8-64, uint8-64, bool)";
  }
}

FailureOr<Type> Importer::valueType(const ::onnx::TypeProto &type,
                                    Location loc,
                                    SmallVectorImpl<StringRef> *dimParams) {
  if (!type.has_tensor_type())
    return error(loc) << "only tensor values are supported (not sequences, "
                         "maps or optionals)";
  const auto &tensor = type.tensor_type();
  FailureOr<Type> element = elementType(tensor.elem_type(), loc);
  if (failed(element))
    return failure();
  if (!tensor.has_shape())
    return Type(UnrankedTensorType::get(*element));
  SmallVector<int64_t> shape;
  for (const auto &dim : tensor.shape().dim()) {
    if (dim.has_dim_value() && dim.dim_value() >= 0) {
      shape.push_back(dim.dim_value());
      if (dimParams)
        dimParams->push_back("");
    } else {
      shape.push_back(ShapedType::kDynamic);
      if (dimParams)
        dimParams->push_back(dim.has_dim_param() ? StringRef(dim.dim_param())
                                                 : StringRef());
    }
  }
  return Type(RankedTensorType::get(shape, *element));
}

FailureOr<ArrayRef<char>>
Importer::externalData(const ::onnx::TensorProto &tensor, Location loc,
                       std::shared_ptr<void> &keepAlive) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto &entry : tensor.external_data()) {
    if (entry.key() == "location")
      location = entry.value();
    else if (entry.key() == "offset" || entry.key() == "length") {
      int64_t v;
      if (StringRef(entry.value()).getAsInteger(10, v) || v < 0)
        return error(loc) << "tensor '" << shown(tensor.name()) << "': external "
                          << shown(entry.key()) << " '" << shown(entry.value())
                          << "' is not a non-negative integer";
      (entry.key() == "offset" ? offset : length) = v;
    }
  }
  if (location.empty())
    return error(loc) << "tensor '" << shown(tensor.name())
                      << "' has external data without a location";
  // The model names files relative to its own folder and may not reach out
  // of it (CVE-2022-25882 in onnx was exactly this).
  if (llvm::sys::path::is_absolute(location) ||
      llvm::any_of(llvm::make_range(llvm::sys::path::begin(location),
                                    llvm::sys::path::end(location)),
                   [](StringRef part) { return part == ".."; }))
    return error(loc) << "tensor '" << shown(tensor.name())
                      << "': external data location '" << shown(location)
                      << "' leaves the model's folder; refused";
  SmallString<256> path(modelDir);
  llvm::sys::path::append(path, location);
  auto &file = externalFiles[path];
  if (!file) {
    auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                              /*RequiresNullTerminator=*/false);
    if (!buffer)
      return error(loc) << "tensor '" << shown(tensor.name())
                        << "': cannot open external data file '" << path
                        << "': " << buffer.getError().message();
    file = std::move(*buffer);
  }
  int64_t size = static_cast<int64_t>(file->getBufferSize());
  if (length < 0)
    length = size - offset;
  if (offset > size || length > size - offset)
    return error(loc) << "tensor '" << shown(tensor.name()) << "': external data ["
                      << offset << ", " << offset + length
                      << ") lies outside '" << shown(location) << "' (" << size
                      << " bytes)";
  keepAlive = file;
  return ArrayRef<char>(file->getBufferStart() + offset, length);
}

FailureOr<ElementsAttr>
Importer::tensorAttr(const ::onnx::TensorProto &tensor, Location loc) {
  FailureOr<Type> element = elementType(tensor.data_type(), loc);
  if (failed(element))
    return failure();
  SmallVector<int64_t> shape(tensor.dims().begin(), tensor.dims().end());
  if (llvm::any_of(shape, [](int64_t d) { return d < 0; }))
    return error(loc) << "tensor '" << shown(tensor.name())
                      << "' has a negative dimension";
  auto type = RankedTensorType::get(shape, *element);
  int64_t count = type.getNumElements();
  size_t elementBytes =
      element->isInteger(1) ? 1 : element->getIntOrFloatBitWidth() / 8;
  size_t bytes = static_cast<size_t>(count) * elementBytes;

  // Gather the little-endian bytes from wherever the tensor keeps them.
  std::shared_ptr<void> keepAlive;
  ArrayRef<char> raw;
  std::vector<char> converted;
  if (tensor.data_location() == ::onnx::TensorProto::EXTERNAL) {
    FailureOr<ArrayRef<char>> ext = externalData(tensor, loc, keepAlive);
    if (failed(ext))
      return failure();
    raw = *ext;
  } else if (tensor.has_raw_data()) {
    raw = ArrayRef<char>(tensor.raw_data().data(), tensor.raw_data().size());
  } else {
    // Typed fields: int32_data also carries 8/16-bit ints, bool, f16, bf16.
    converted.resize(bytes);
    auto store = [&](auto values, auto convert) -> LogicalResult {
      if (static_cast<int64_t>(values.size()) != count)
        return error(loc) << "tensor '" << shown(tensor.name()) << "' holds "
                          << values.size() << " values but its shape needs "
                          << count;
      for (int64_t k = 0; k < count; ++k)
        convert(values[k], converted.data() + k * elementBytes);
      return success();
    };
    auto copyNarrow = [&](auto v, char *dst) {
      std::memcpy(dst, &v, elementBytes);
    };
    LogicalResult ok = success();
    if (element->isF32())
      ok = store(tensor.float_data(), [&](float v, char *d) {
        std::memcpy(d, &v, 4);
      });
    else if (element->isF64())
      ok = store(tensor.double_data(), [&](double v, char *d) {
        std::memcpy(d, &v, 8);
      });
    else if (element->isInteger(64) && !element->isUnsignedInteger())
      ok = store(tensor.int64_data(), [&](int64_t v, char *d) {
        std::memcpy(d, &v, 8);
      });
    else if (element->isUnsignedInteger(64) || element->isUnsignedInteger(32))
      ok = store(tensor.uint64_data(), [&](uint64_t v, char *d) {
        copyNarrow(v, d);
      });
    else
      ok = store(tensor.int32_data(), [&](int32_t v, char *d) {
        copyNarrow(v, d);
      });
    if (failed(ok))
      return failure();
    raw = converted;
  }
  if (raw.size() != bytes)
    return error(loc) << "tensor '" << shown(tensor.name()) << "' holds "
                      << raw.size() << " bytes but its type " << type
                      << " needs " << bytes;

  if (element->isInteger(1)) {
    SmallVector<bool> values(count);
    for (int64_t k = 0; k < count; ++k)
      values[k] = raw[k] != 0;
    return ElementsAttr(DenseElementsAttr::get(type, values));
  }
  // External data stays in its mapping whatever its size.
  if (count <= kInlineElements && !keepAlive)
    return ElementsAttr(DenseElementsAttr::getFromRawBuffer(type, raw));
  AsmResourceBlob blob;
  if (keepAlive) {
    // mmap'ed external data: the blob borrows the mapping, no copy.
    blob = UnmanagedAsmResourceBlob::allocateWithAlign(
        raw, elementBytes, [keepAlive](void *, size_t, size_t) {});
  } else {
    blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(raw, elementBytes,
                                                         false);
  }
  std::string name = tensor.name().empty() ? "tensor" : tensor.name();
  return ElementsAttr(
      DenseResourceElementsAttr::get(type, name, std::move(blob)));
}

FailureOr<NamedAttribute>
Importer::attribute(const ::onnx::AttributeProto &attr,
                    const ::onnx::NodeProto &node, Location loc) {
  using AP = ::onnx::AttributeProto;
  StringAttr name = StringAttr::get(ctx, attr.name());
  switch (attr.type()) {
  case AP::FLOAT:
    return NamedAttribute(name, builder.getF32FloatAttr(attr.f()));
  case AP::INT:
    return NamedAttribute(name, builder.getI64IntegerAttr(attr.i()));
  case AP::STRING:
    return NamedAttribute(name, builder.getStringAttr(attr.s()));
  case AP::FLOATS:
    return NamedAttribute(
        name, builder.getDenseF32ArrayAttr(SmallVector<float>(
                  attr.floats().begin(), attr.floats().end())));
  case AP::INTS:
    return NamedAttribute(
        name, builder.getDenseI64ArrayAttr(SmallVector<int64_t>(
                  attr.ints().begin(), attr.ints().end())));
  case AP::TENSOR: {
    FailureOr<ElementsAttr> t = tensorAttr(attr.t(), loc);
    if (failed(t))
      return failure();
    return NamedAttribute(name, *t);
  }
  default:
    return error(loc) << describe(node) << ": attribute '" << shown(attr.name())
                      << "' has an unsupported kind (" << attr.type()
                      << "; graphs, sparse tensors and type protos are not "
                         "supported)";
  }
}

LogicalResult Importer::checkModel(const ::onnx::ModelProto &model) {
  // IR versions after 11 add element types (float8/4, int4) that the
  // importer refuses where they occur; the wire format is unchanged.
  if (model.ir_version() < 3 || model.ir_version() > 14)
    return error(fileLoc) << "ONNX IR version " << model.ir_version()
                          << " is not supported (supported: 3 to 14)";
  for (const auto &opset : model.opset_import()) {
    std::string domain = opset.domain() == "ai.onnx" ? "" : opset.domain();
    opsets[domain] = opset.version();
  }
  auto it = opsets.find("");
  if (it == opsets.end())
    return error(fileLoc) << "the model imports no opset of the default "
                             "domain (ai.onnx)";
  if (it->second < kMinOpset || it->second > kMaxOpset)
    return error(fileLoc) << "opset " << it->second
                          << " of domain ai.onnx is not supported (supported: "
                          << kMinOpset << " to " << kMaxOpset << ")";
  if (!model.has_graph())
    return error(fileLoc) << "the model has no graph";
  return success();
}

LogicalResult Importer::checkNodes(const ::onnx::GraphProto &graph) {
  // Everything we cannot import, listed at once so a user sees the whole
  // gap in one run.
  SmallVector<std::string> problems;
  for (auto [index, node] : llvm::enumerate(graph.node())) {
    std::string domain = node.domain() == "ai.onnx" ? "" : node.domain();
    if (!opsets.count(domain)) {
      problems.push_back(describe(node) + ": the model imports no opset of "
                                          "domain '" +
                         shown(domain) + "'");
      continue;
    }
    std::optional<std::string> opName = dialectOpName(domain, node.op_type());
    if (!opName ||
        !RegisteredOperationName::lookup(*opName, ctx).has_value()) {
      problems.push_back(describe(node) + ": unsupported op");
      continue;
    }
    RegisteredOperationName info =
        *RegisteredOperationName::lookup(*opName, ctx);
    llvm::StringSet<> known;
    for (StringAttr a : info.getAttributeNames())
      known.insert(a.getValue());
    for (const auto &attr : node.attribute()) {
      bool normalised = attr.name() == "axes" &&
                        (node.op_type() == "ReduceMean" ||
                         node.op_type() == "ReduceMax" ||
                         node.op_type() == "ReduceMin");
      if (!known.contains(attr.name()) && !normalised)
        problems.push_back(describe(node) + ": unsupported attribute '" +
                           shown(attr.name()) + "'");
    }
    std::optional<OpArity> arity = opArity(node.op_type());
    if (arity && arity->inputs != kVariadic &&
        node.input_size() > arity->inputs)
      problems.push_back(describe(node) + ": " +
                         std::to_string(node.input_size()) +
                         " inputs, but the op takes at most " +
                         std::to_string(arity->inputs));
    if (arity && arity->outputs != kVariadic &&
        node.output_size() > arity->outputs)
      problems.push_back(describe(node) + ": " +
                         std::to_string(node.output_size()) +
                         " outputs, but the op has at most " +
                         std::to_string(arity->outputs));
  }
  if (problems.empty())
    return success();
  InFlightDiagnostic diag = error(fileLoc);
  diag << problems.size() << " unsupported construct"
       << (problems.size() == 1 ? "" : "s") << " in the model:";
  for (const std::string &p : problems)
    diag << "\n  " << p;
  return diag;
}

Value Importer::none() {
  if (!noneValue) {
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(body);
    OperationState state(fileLoc, "onnx.None");
    state.addTypes(NoneType::get(ctx));
    noneValue = builder.create(state)->getResult(0);
  }
  return noneValue;
}

LogicalResult Importer::normalise(const ::onnx::NodeProto &node, Location loc,
                                  SmallVectorImpl<Value> &operands,
                                  SmallVectorImpl<NamedAttribute> &attrs) {
  StringRef op = node.op_type();
  if (op != "ReduceMean" && op != "ReduceMax" && op != "ReduceMin")
    return success();
  auto it = llvm::find_if(attrs, [](NamedAttribute a) {
    return a.getName() == "axes";
  });
  if (it == attrs.end())
    return success();
  auto axes = dyn_cast<DenseI64ArrayAttr>(it->getValue());
  if (!axes)
    return error(loc) << describe(node) << ": attribute 'axes' must be ints";
  auto type = RankedTensorType::get({axes.size()}, builder.getI64Type());
  OperationState state(loc, "onnx.Constant");
  state.addAttribute("value",
                     DenseElementsAttr::get(type, axes.asArrayRef()));
  state.addTypes(type);
  Value constant = builder.create(state)->getResult(0);
  operands.resize(2, none());
  operands[1] = constant;
  attrs.erase(it);
  return success();
}

LogicalResult Importer::importNode(const ::onnx::NodeProto &node,
                                   size_t index) {
  Location loc = nodeLoc(node, index);
  std::string domain = node.domain() == "ai.onnx" ? "" : node.domain();
  std::string opName = *dialectOpName(domain, node.op_type());
  OpArity arity = *opArity(node.op_type());

  SmallVector<Value> operands;
  for (const std::string &input : node.input()) {
    if (input.empty()) {
      operands.push_back(none());
      continue;
    }
    auto it = values.find(input);
    if (it == values.end())
      return error(loc) << describe(node) << ": input '" << shown(input)
                        << "' is produced by no node, initializer or graph "
                           "input before it";
    operands.push_back(it->second);
  }
  SmallVector<NamedAttribute> attrs;
  for (const auto &attr : node.attribute()) {
    FailureOr<NamedAttribute> a = attribute(attr, node, loc);
    if (failed(a))
      return failure();
    attrs.push_back(*a);
  }
  if (failed(normalise(node, loc, operands, attrs)))
    return failure();
  if (arity.inputs != kVariadic)
    while (static_cast<int>(operands.size()) < arity.inputs)
      operands.push_back(none());

  int numResults = arity.outputs == kVariadic ? node.output_size()
                                              : arity.outputs;
  SmallVector<Type> resultTypes;
  for (int r = 0; r < numResults; ++r) {
    Type type = UnrankedTensorType::get(Float32Type::get(ctx));
    if (r < node.output_size()) {
      auto it = declaredTypes.find(node.output(r));
      if (it != declaredTypes.end())
        type = it->second;
    }
    resultTypes.push_back(type);
  }
  OperationState state(loc, opName);
  state.addOperands(operands);
  state.addAttributes(attrs);
  state.addTypes(resultTypes);
  Operation *op = builder.create(state);
  if (auto inference = dyn_cast<mlir::onnx::OnnxShapeInference>(op))
    if (failed(inference.inferShapes()))
      return error(loc) << describe(node) << ": shape inference failed";
  if (failed(verify(op)))
    return error(loc) << describe(node) << ": the imported op is invalid";
  for (int r = 0; r < node.output_size(); ++r)
    if (!node.output(r).empty())
      values[node.output(r)] = op->getResult(r);
  return success();
}

LogicalResult Importer::importGraph(const ::onnx::GraphProto &graph,
                                    ModuleOp module, StringRef functionName) {
  if (failed(checkNodes(graph)))
    return failure();
  for (const auto &info : graph.value_info()) {
    FailureOr<Type> t = valueType(info.type(), fileLoc);
    if (succeeded(t))
      declaredTypes[info.name()] = *t;
  }
  for (const auto &out : graph.output()) {
    FailureOr<Type> t = valueType(out.type(), fileLoc);
    if (failed(t))
      return failure();
    declaredTypes[out.name()] = *t;
  }

  llvm::StringSet<> initializerNames;
  for (const auto &init : graph.initializer())
    initializerNames.insert(init.name());
  SmallVector<Type> argTypes;
  SmallVector<const ::onnx::ValueInfoProto *> args;
  SmallVector<SmallVector<StringRef>> argDimParams;
  for (const auto &input : graph.input()) {
    if (initializerNames.contains(input.name()))
      continue;
    argDimParams.emplace_back();
    FailureOr<Type> t = valueType(input.type(), fileLoc, &argDimParams.back());
    if (failed(t))
      return error(fileLoc) << "graph input '" << shown(input.name())
                            << "' has an unsupported type";
    argTypes.push_back(*t);
    args.push_back(&input);
  }

  builder.setInsertionPointToEnd(module.getBody());
  auto func = func::FuncOp::create(builder, fileLoc, functionName,
                                   builder.getFunctionType(argTypes, {}));
  body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  for (auto [i, input] : llvm::enumerate(args)) {
    values[input->name()] = body->getArgument(i);
    func.setArgAttr(i, "onnx.name", builder.getStringAttr(input->name()));
    if (llvm::any_of(argDimParams[i], [](StringRef p) { return !p.empty(); }))
      func.setArgAttr(i, "onnx.dim_params",
                      builder.getStrArrayAttr(argDimParams[i]));
  }
  for (const auto &init : graph.initializer()) {
    Location loc = NameLoc::get(builder.getStringAttr(init.name()), fileLoc);
    FailureOr<ElementsAttr> value = tensorAttr(init, loc);
    if (failed(value))
      return failure();
    OperationState state(loc, "onnx.Constant");
    state.addAttribute("value", *value);
    state.addTypes(value->getType());
    values[init.name()] = builder.create(state)->getResult(0);
  }
  for (auto [index, node] : llvm::enumerate(graph.node()))
    if (failed(importNode(node, index)))
      return failure();

  SmallVector<Value> results;
  for (const auto &out : graph.output()) {
    auto it = values.find(out.name());
    if (it == values.end())
      return error(fileLoc) << "graph output '" << shown(out.name())
                            << "' is produced by no node, initializer or "
                               "input";
    results.push_back(it->second);
  }
  func::ReturnOp::create(builder, fileLoc, results);
  func.setType(builder.getFunctionType(argTypes,
                                       TypeRange(ValueRange(results))));
  for (auto [i, out] : llvm::enumerate(graph.output()))
    func.setResultAttr(i, "onnx.name", builder.getStringAttr(out.name()));
  return success();
}

OwningOpRef<ModuleOp> Importer::run(StringRef bytes,
                                    const OnnxImportOptions &options) {
  ::onnx::ModelProto model;
  google::protobuf::io::CodedInputStream stream(
      reinterpret_cast<const uint8_t *>(bytes.data()),
      static_cast<int>(std::min<size_t>(bytes.size(), INT_MAX)));
  stream.SetTotalBytesLimit(INT_MAX);
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    error(fileLoc) << "the model file is over 2 GiB: store its weights as "
                      "external data (onnx.save(..., save_as_external_data="
                      "True))";
    return nullptr;
  }
  if (!model.ParseFromCodedStream(&stream) ||
      !stream.ConsumedEntireMessage()) {
    error(fileLoc) << "not a valid ONNX model (the protobuf does not parse: "
                      "truncated or corrupt file?)";
    return nullptr;
  }
  if (failed(checkModel(model)))
    return nullptr;
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  if (!model.graph().name().empty())
    (*module)->setAttr("onnx.graph_name",
                       builder.getStringAttr(model.graph().name()));
  if (failed(importGraph(model.graph(), *module, options.functionName)))
    return nullptr;
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> mlir::moe::importOnnxModel(
    StringRef buffer, StringRef modelPath, MLIRContext *context,
    const OnnxImportOptions &options) {
  context->loadDialect<func::FuncDialect, mlir::onnx::OnnxDialect, MoeDialect>();
  Importer importer(context, modelPath);
  return importer.run(buffer, options);
}

OwningOpRef<ModuleOp>
mlir::moe::importOnnxFile(StringRef path, MLIRContext *context,
                          const OnnxImportOptions &options) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer) {
    emitError(FileLineColLoc::get(context, path, 0, 0))
        << "cannot read '" << path << "': " << buffer.getError().message();
    return nullptr;
  }
  return importOnnxModel((*buffer)->getBuffer(), path, context, options);
}

void mlir::moe::registerOnnxImportDialects(DialectRegistry &registry) {
  registry.insert<func::FuncDialect, mlir::onnx::OnnxDialect, MoeDialect>();
}
