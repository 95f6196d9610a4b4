//===- OnnxOps.td - onnx dialect operations -----------------*- tablegen -*===//
//
// One op per ONNX operator. Operands and results follow the ONNX spec's
// order and names; attributes keep ONNX names and defaults. Op classes
// below (unary, broadcasting binary, variadic, reductions) carry the shared
// verifier, shape inference and folder so that each op is one short def.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_ONNX_IR_ONNXOPS_TD
#define MOE_DIALECT_ONNX_IR_ONNXOPS_TD

include "moe-mlir/Dialect/Onnx/IR/OnnxDialect.td"
include "moe-mlir/Dialect/Onnx/IR/OnnxInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpBase.td"

//===----------------------------------------------------------------------===//
// Types and attributes
//===----------------------------------------------------------------------===//

def Onnx_Optional : AnyTypeOf<[AnyTensor, NoneType], "tensor or none">;
def Onnx_I64Tensor : TensorOf<[I64]>;
def Onnx_OptI64Tensor
    : AnyTypeOf<[TensorOf<[I64]>, NoneType], "tensor of i64 or none">;
def Onnx_IndexTensor : TensorOf<[I32, I64]>;
def Onnx_OptIndexTensor
    : AnyTypeOf<[TensorOf<[I32, I64]>, NoneType], "tensor of i32/i64 or none">;
def Onnx_BoolTensor : TensorOf<[I1]>;
def Onnx_MoeTensor : TensorOf<[F16, BF16, F32]>;
def Onnx_OptMoeTensor
    : AnyTypeOf<[TensorOf<[F16, BF16, F32]>, NoneType],
                "tensor of f16/bf16/f32 or none">;
def Onnx_QWeightTensor : TensorOf<[UI8]>;
def Onnx_OptQWeightTensor
    : AnyTypeOf<[TensorOf<[UI8]>, NoneType], "tensor of ui8 or none">;

// ONNX attributes with a default may be left out by the importer.
class Onnx_Int<string default> : DefaultValuedAttr<I64Attr, default>;
class Onnx_Float<string default> : DefaultValuedAttr<F32Attr, default>;
class Onnx_Str<string default> : DefaultValuedStrAttr<StrAttr, default>;

//===----------------------------------------------------------------------===//
// Op classes
//===----------------------------------------------------------------------===//

class Onnx_Op<string mnemonic, list<Trait> traits = []>
    : Op<Onnx_Dialect, mnemonic, !listconcat([Pure,
          DeclareOpInterfaceMethods<Onnx_ShapeInferenceOpInterface>],
          traits)>;

// Bodies shared by the classes; `$cppClass` is the op's C++ class.
defvar inferSameAsOperand0 = [{
  ::llvm::LogicalResult $cppClass::inferShapes() {
    return ::mlir::onnx::util::inferSameAsOperand(*this, 0);
  }
}];
defvar verifyBroadcastDef = [{
  ::llvm::LogicalResult $cppClass::verify() {
    return ::mlir::onnx::util::verifyBroadcast(*this);
  }
}];
defvar foldDef = [{
  ::mlir::OpFoldResult $cppClass::fold(FoldAdaptor adaptor) {
    return ::mlir::onnx::util::foldOp(*this, adaptor.getOperands());
  }
}];
defvar verifyAxisDef = [{
  ::llvm::LogicalResult $cppClass::verify() {
    return ::mlir::onnx::util::verifyAxis(*this, "axis", getAxis(),
                                             getOperand());
  }
}];

// Element-wise, one operand, result of the operand's type. `folds` adds a
// constant folder (foldOp in OnnxFold.cpp knows the op).
class Onnx_UnaryOp<string mnemonic, string summaryText, string descriptionText,
                   list<string> names = ["X", "Y"], Type type = AnyTensor,
                   dag attrs = (ins), bit folds = 0>
    : Onnx_Op<mnemonic, [SameOperandsAndResultElementType]> {
  let summary = summaryText;
  let description = descriptionText;
  let arguments = !con(!dag(ins, [type], [names[0]]), attrs);
  let results = !dag(outs, [type], [names[1]]);
  let hasFolder = folds;
  let extraClassDefinition = inferSameAsOperand0 # !if(folds, foldDef, "");
}

// Element-wise over multidirectionally broadcast operands. The result has
// the element type of operand `elementFrom`, or i1 when it is -1.
class Onnx_BroadcastOp<string mnemonic, string summaryText,
                       string descriptionText, dag args, dag res,
                       int elementFrom = 0, bit folds = 0>
    : Onnx_Op<mnemonic> {
  let summary = summaryText;
  let description = descriptionText;
  let arguments = args;
  let results = res;
  let hasVerifier = 1;
  let hasFolder = folds;
  let extraClassDefinition = verifyBroadcastDef # [{
    ::llvm::LogicalResult $cppClass::inferShapes() {
      return ::mlir::onnx::util::inferBroadcast(*this, }] #
          !cast<string>(elementFrom) # [{);
    }
  }] # !if(folds, foldDef, "");
}

class Onnx_BinaryOp<string mnemonic, string summaryText, bit folds = 0>
    : Onnx_BroadcastOp<mnemonic, summaryText,
          "Element-wise `" # mnemonic # "` of `A` and `B` with numpy-style "
          # "multidirectional broadcasting.",
          (ins AnyTensor:$A, AnyTensor:$B), (outs AnyTensor:$C), 0, folds>;

class Onnx_CompareOp<string mnemonic, string summaryText, bit folds = 0>
    : Onnx_BroadcastOp<mnemonic, summaryText,
          "Element-wise `" # mnemonic # "` of `A` and `B` (broadcast), an i1 "
          # "tensor.",
          (ins AnyTensor:$A, AnyTensor:$B), (outs Onnx_BoolTensor:$C), -1,
          folds>;

class Onnx_LogicOp<string mnemonic, string summaryText>
    : Onnx_BroadcastOp<mnemonic, summaryText,
          "Element-wise logical `" # mnemonic # "` of i1 tensors `A` and `B` "
          # "(broadcast).",
          (ins Onnx_BoolTensor:$A, Onnx_BoolTensor:$B),
          (outs Onnx_BoolTensor:$C), -1>;

class Onnx_VariadicOp<string mnemonic, string summaryText, string result,
                      bit folds = 0>
    : Onnx_BroadcastOp<mnemonic, summaryText,
          "Element-wise `" # mnemonic # "` of one or more tensors `data_0`, "
          # "... (broadcast).",
          (ins Variadic<AnyTensor>:$data_0), !dag(outs, [AnyTensor], [result]),
          0, folds>;

class Onnx_ReduceOp<string mnemonic, string what>
    : Onnx_Op<mnemonic> {
  let summary = what # " over the given axes";
  let description = [{
    Reduces `data` over `axes` (an optional i64 1-D input; none or empty
    reduces every axis unless `noop_with_empty_axes` is 1, which makes the
    op the identity), keeping the reduced axes as size 1 when `keepdims` is
    1. Older opsets' `axes` attribute is imported as a constant input.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_OptI64Tensor:$axes,
                   Onnx_Int<"1">:$keepdims,
                   Onnx_Int<"0">:$noop_with_empty_axes);
  let results = (outs AnyTensor:$reduced);
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::verify() {
      return ::mlir::onnx::util::verifyReduce(*this);
    }
    ::llvm::LogicalResult $cppClass::inferShapes() {
      return ::mlir::onnx::util::inferReduce(*this, getKeepdims() != 0,
                                               getNoopWithEmptyAxes() != 0);
    }
  }];
}

class Onnx_ArgReduceOp<string mnemonic, string what>
    : Onnx_Op<mnemonic> {
  let summary = "indices of the " # what # " elements along an axis";
  let description = [{
    The i64 index of the }] # what # [{ element of `data` along `axis`
    (first occurrence, or last with `select_last_index`), the axis kept as
    size 1 when `keepdims` is 1.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_Int<"0">:$axis,
                   Onnx_Int<"1">:$keepdims, Onnx_Int<"0">:$select_last_index);
  let results = (outs Onnx_I64Tensor:$reduced);
  let hasVerifier = 1;
  let extraClassDefinition = verifyAxisDef # [{
    ::llvm::LogicalResult $cppClass::inferShapes() {
      return ::mlir::onnx::util::inferArgReduce(*this, getAxis(),
                                                  getKeepdims() != 0);
    }
  }];
}

class Onnx_SoftmaxOp<string mnemonic, string summaryText>
    : Onnx_Op<mnemonic, [SameOperandsAndResultElementType]> {
  let summary = summaryText;
  let description = "`" # mnemonic # "` of `input` along `axis` (default "
                    # "the last), which must be in [-r, r).";
  let arguments = (ins AnyTensor:$input, Onnx_Int<"-1">:$axis);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let extraClassDefinition = !strconcat(inferSameAsOperand0, verifyAxisDef);
}

//===----------------------------------------------------------------------===//
// Element-wise unary
//===----------------------------------------------------------------------===//

def Onnx_SqrtOp : Onnx_UnaryOp<"Sqrt", "element-wise square root",
    "`Y = sqrt(X)` element-wise.">;
def Onnx_ReciprocalOp : Onnx_UnaryOp<"Reciprocal", "element-wise reciprocal",
    "`Y = 1 / X` element-wise.">;
def Onnx_NegOp : Onnx_UnaryOp<"Neg", "element-wise negation",
    "`Y = -X` element-wise.", ["X", "Y"], AnyTensor, (ins), 1>;
def Onnx_ExpOp : Onnx_UnaryOp<"Exp", "element-wise exponential",
    "`output = exp(input)` element-wise.", ["input", "output"]>;
def Onnx_LogOp : Onnx_UnaryOp<"Log", "element-wise natural logarithm",
    "`output = log(input)` element-wise.", ["input", "output"]>;
def Onnx_ErfOp : Onnx_UnaryOp<"Erf", "element-wise error function",
    "`output = erf(input)` element-wise.", ["input", "output"]>;
def Onnx_TanhOp : Onnx_UnaryOp<"Tanh", "element-wise hyperbolic tangent",
    "`output = tanh(input)` element-wise.", ["input", "output"]>;
def Onnx_SigmoidOp : Onnx_UnaryOp<"Sigmoid", "element-wise logistic sigmoid",
    "`Y = 1 / (1 + exp(-X))` element-wise.">;
def Onnx_ReluOp : Onnx_UnaryOp<"Relu", "element-wise rectified linear unit",
    "`Y = max(0, X)` element-wise.">;
def Onnx_GeluOp : Onnx_UnaryOp<"Gelu",
    "element-wise Gaussian error linear unit",
    "`Y = 0.5 X (1 + erf(X / sqrt(2)))`, or its tanh approximation when "
    "`approximate` is \"tanh\" (\"none\" or \"tanh\").",
    ["X", "Y"], AnyTensor, (ins Onnx_Str<"none">:$approximate)> {
  let hasVerifier = 1;
}
def Onnx_SinOp : Onnx_UnaryOp<"Sin", "element-wise sine",
    "`output = sin(input)` element-wise.", ["input", "output"]>;
def Onnx_CosOp : Onnx_UnaryOp<"Cos", "element-wise cosine",
    "`output = cos(input)` element-wise.", ["input", "output"]>;
def Onnx_AbsOp : Onnx_UnaryOp<"Abs", "element-wise absolute value",
    "`Y = |X|` element-wise.">;
def Onnx_SoftplusOp : Onnx_UnaryOp<"Softplus", "element-wise softplus",
    "`Y = log(1 + exp(X))` element-wise.">;
def Onnx_SignOp : Onnx_UnaryOp<"Sign", "element-wise sign",
    "`output` is -1, 0 or 1 as `input` is negative, zero or positive.",
    ["input", "output"]>;
def Onnx_FloorOp : Onnx_UnaryOp<"Floor", "element-wise floor",
    "`Y = floor(X)` element-wise.">;
def Onnx_CeilOp : Onnx_UnaryOp<"Ceil", "element-wise ceiling",
    "`Y = ceil(X)` element-wise.">;
def Onnx_NotOp : Onnx_UnaryOp<"Not", "element-wise logical not",
    "`Y = !X` on an i1 tensor.", ["X", "Y"], Onnx_BoolTensor>;
def Onnx_IdentityOp : Onnx_UnaryOp<"Identity", "the input, unchanged",
    "`output` is `input`; folds away.", ["input", "output"], AnyTensor, (ins),
    1>;

def Onnx_SoftmaxOp : Onnx_SoftmaxOp<"Softmax", "softmax along an axis">;
def Onnx_LogSoftmaxOp : Onnx_SoftmaxOp<"LogSoftmax",
                                       "log of the softmax along an axis">;

//===----------------------------------------------------------------------===//
// Element-wise with broadcasting
//===----------------------------------------------------------------------===//

def Onnx_AddOp : Onnx_BinaryOp<"Add", "element-wise addition", 1>;
def Onnx_SubOp : Onnx_BinaryOp<"Sub", "element-wise subtraction", 1>;
def Onnx_MulOp : Onnx_BinaryOp<"Mul", "element-wise multiplication", 1>;
def Onnx_DivOp : Onnx_BinaryOp<"Div", "element-wise division", 1>;
def Onnx_PowOp : Onnx_BroadcastOp<"Pow", "element-wise power",
    "`Z = X ^ Y` element-wise (broadcast); `Z` has the element type of `X`.",
    (ins AnyTensor:$X, AnyTensor:$Y), (outs AnyTensor:$Z)>;

def Onnx_EqualOp : Onnx_CompareOp<"Equal", "element-wise equality", 1>;
def Onnx_GreaterOp : Onnx_CompareOp<"Greater", "element-wise greater-than", 1>;
def Onnx_LessOp : Onnx_CompareOp<"Less", "element-wise less-than", 1>;
def Onnx_GreaterOrEqualOp : Onnx_CompareOp<"GreaterOrEqual",
                                           "element-wise greater-or-equal">;
def Onnx_LessOrEqualOp : Onnx_CompareOp<"LessOrEqual",
                                        "element-wise less-or-equal">;
def Onnx_AndOp : Onnx_LogicOp<"And", "element-wise logical and">;
def Onnx_OrOp : Onnx_LogicOp<"Or", "element-wise logical or">;

def Onnx_WhereOp : Onnx_BroadcastOp<"Where", "element-wise select",
    "`output = condition ? X : Y` element-wise, all three broadcast.",
    (ins Onnx_BoolTensor:$condition, AnyTensor:$X, AnyTensor:$Y),
    (outs AnyTensor:$output), 1, 1>;

def Onnx_MinOp : Onnx_VariadicOp<"Min", "element-wise minimum", "min", 1>;
def Onnx_MaxOp : Onnx_VariadicOp<"Max", "element-wise maximum", "max", 1>;
def Onnx_SumOp : Onnx_VariadicOp<"Sum", "element-wise sum", "sum">;

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

def Onnx_MatMulOp : Onnx_Op<"MatMul"> {
  let summary = "matrix product with numpy semantics";
  let description = [{
    `Y = A @ B` as numpy.matmul: 1-D operands are promoted and the added
    dimension removed, leading (batch) dimensions broadcast.
  }];
  let arguments = (ins AnyTensor:$A, AnyTensor:$B);
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

def Onnx_GemmOp : Onnx_Op<"Gemm"> {
  let summary = "general matrix multiply";
  let description = [{
    `Y = alpha * A' B' + beta * C` with `A'` = `A` (M x K) or its transpose
    (`transA`), likewise `B'` (K x N); `C` (optional) broadcasts to M x N.
  }];
  let arguments = (ins AnyTensor:$A, AnyTensor:$B, Onnx_Optional:$C,
                   Onnx_Float<"1.0">:$alpha, Onnx_Float<"1.0">:$beta,
                   Onnx_Int<"0">:$transA, Onnx_Int<"0">:$transB);
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

def Onnx_EinsumOp : Onnx_Op<"Einsum"> {
  let summary = "Einstein summation";
  let description = [{
    Sums products of the `Inputs` over the labels the `equation` (numpy
    einsum syntax, `...` allowed, implicit output when there is no `->`)
    does not keep.
  }];
  let arguments = (ins Variadic<AnyTensor>:$Inputs, StrAttr:$equation);
  let results = (outs AnyTensor:$Output);
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

def Onnx_ReshapeOp : Onnx_Op<"Reshape"> {
  let summary = "tensor with the same data and a new shape";
  let description = [{
    `shape` (i64 1-D) gives the new dimensions; 0 copies the input's
    dimension at that index (unless `allowzero` is 1) and one -1 is inferred.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_I64Tensor:$shape,
                   Onnx_Int<"0">:$allowzero);
  let results = (outs AnyTensor:$reshaped);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_TransposeOp : Onnx_Op<"Transpose"> {
  let summary = "permutation of the dimensions";
  let description = [{
    Output dimension `i` is input dimension `perm[i]`; without `perm` the
    dimensions are reversed.
  }];
  let arguments = (ins AnyTensor:$data,
                   OptionalAttr<DenseI64ArrayAttr>:$perm);
  let results = (outs AnyTensor:$transposed);
  let hasVerifier = 1;
}

def Onnx_SqueezeOp : Onnx_Op<"Squeeze"> {
  let summary = "removal of size-1 dimensions";
  let description = [{
    Removes the dimensions listed in `axes` (i64 1-D, each of size 1), or
    every size-1 dimension when `axes` is none.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_OptI64Tensor:$axes);
  let results = (outs AnyTensor:$squeezed);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_UnsqueezeOp : Onnx_Op<"Unsqueeze"> {
  let summary = "insertion of size-1 dimensions";
  let description = [{
    Inserts a size-1 dimension at each of `axes` (i64 1-D, positions in the
    output, in [-r', r') for output rank r').
  }];
  let arguments = (ins AnyTensor:$data, Onnx_I64Tensor:$axes);
  let results = (outs AnyTensor:$expanded);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_FlattenOp : Onnx_Op<"Flatten"> {
  let summary = "2-D view of a tensor";
  let description = [{
    Reshapes `input` to (d_0 ... d_(axis-1), d_axis ... d_(r-1)); `axis` in
    [-r, r].
  }];
  let arguments = (ins AnyTensor:$input, Onnx_Int<"1">:$axis);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_ConcatOp : Onnx_Op<"Concat"> {
  let summary = "concatenation along an axis";
  let description = [{
    Joins `inputs` (one or more, same rank, equal in every other dimension)
    along `axis` in [-r, r).
  }];
  let arguments = (ins Variadic<AnyTensor>:$inputs, I64Attr:$axis);
  let results = (outs AnyTensor:$concat_result);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_SplitOp : Onnx_Op<"Split"> {
  let summary = "split into parts along an axis";
  let description = [{
    Splits `input` along `axis` into the results: by `split` (i64 1-D
    sizes) when given, otherwise into as many equal parts as there are
    results (`num_outputs`; the last one smaller if uneven).
  }];
  let arguments = (ins AnyTensor:$input, Onnx_OptI64Tensor:$split,
                   Onnx_Int<"0">:$axis, OptionalAttr<I64Attr>:$num_outputs);
  let results = (outs Variadic<AnyTensor>:$outputs);
  let hasVerifier = 1;
}

def Onnx_SliceOp : Onnx_Op<"Slice"> {
  let summary = "strided slice";
  let description = [{
    Takes `[starts[i], ends[i])` with step `steps[i]` (default 1) along
    `axes[i]` (default 0, 1, ...); negative indices count from the end and
    out-of-range ones are clamped. All four are i32/i64 1-D of one length.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_IndexTensor:$starts,
                   Onnx_IndexTensor:$ends, Onnx_OptIndexTensor:$axes,
                   Onnx_OptIndexTensor:$steps);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_ExpandOp : Onnx_Op<"Expand"> {
  let summary = "broadcast to a shape";
  let description = [{
    Broadcasts `input` with `shape` (i64 1-D) bidirectionally: the result
    may be larger than `shape` where `input` is.
  }];
  let arguments = (ins AnyTensor:$input, Onnx_I64Tensor:$shape);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_TileOp : Onnx_Op<"Tile"> {
  let summary = "repetition along each dimension";
  let description = [{
    Dimension `i` of the result is `repeats[i]` copies of `input`'s
    (`repeats`: i64 1-D with one entry per dimension).
  }];
  let arguments = (ins AnyTensor:$input, Onnx_I64Tensor:$repeats);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def Onnx_ShapeOp : Onnx_Op<"Shape"> {
  let summary = "the shape of a tensor";
  let description = [{
    The i64 1-D tensor of `data`'s dimensions `[start, end)` (negative
    bounds count from the end, clamped). Folds when those are static.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_Int<"0">:$start,
                   OptionalAttr<I64Attr>:$end);
  let results = (outs Onnx_I64Tensor:$shape);
  let hasFolder = 1;
}

def Onnx_SizeOp : Onnx_Op<"Size"> {
  let summary = "the number of elements of a tensor";
  let description = "An i64 scalar; folds when `data` is static.";
  let arguments = (ins AnyTensor:$data);
  let results = (outs Onnx_I64Tensor:$size);
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Indexing
//===----------------------------------------------------------------------===//

def Onnx_GatherOp : Onnx_Op<"Gather"> {
  let summary = "gather slices along an axis";
  let description = [{
    `output[i.., j.., k..] = data[i.., indices[j..], k..]` with `indices` at
    `axis` in [-r, r); negative indices count from the end.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_IndexTensor:$indices,
                   Onnx_Int<"0">:$axis);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_GatherElementsOp : Onnx_Op<"GatherElements"> {
  let summary = "gather elements along an axis";
  let description = [{
    `output` has `indices`' shape; along `axis` each element is taken from
    `data` at the index `indices` holds (same rank as `data`).
  }];
  let arguments = (ins AnyTensor:$data, Onnx_IndexTensor:$indices,
                   Onnx_Int<"0">:$axis);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def Onnx_GatherNDOp : Onnx_Op<"GatherND"> {
  let summary = "gather slices by index tuples";
  let description = [{
    Each innermost row of `indices` (length m) indexes the first m
    dimensions of `data` after the `batch_dims` leading batch dimensions.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_I64Tensor:$indices,
                   Onnx_Int<"0">:$batch_dims);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def Onnx_ScatterElementsOp : Onnx_Op<"ScatterElements"> {
  let summary = "scatter elements along an axis";
  let description = [{
    A copy of `data` where, along `axis`, `updates` are written (or combined
    by `reduction`: none, add, mul, max, min) at `indices`.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_IndexTensor:$indices,
                   AnyTensor:$updates, Onnx_Int<"0">:$axis,
                   Onnx_Str<"none">:$reduction);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def Onnx_ScatterNDOp : Onnx_Op<"ScatterND"> {
  let summary = "scatter slices by index tuples";
  let description = [{
    A copy of `data` where the slices `indices` name are replaced by (or
    combined by `reduction` with) `updates`.
  }];
  let arguments = (ins AnyTensor:$data, Onnx_I64Tensor:$indices,
                   AnyTensor:$updates, Onnx_Str<"none">:$reduction);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def Onnx_TopKOp : Onnx_Op<"TopK"> {
  let summary = "the k largest or smallest elements along an axis";
  let description = [{
    `Values` and their i64 `Indices` of the `K` (a 1-element i64 tensor)
    largest (`largest` = 1) or smallest elements along `axis`, sorted when
    `sorted` is 1.
  }];
  let arguments = (ins AnyTensor:$X, Onnx_I64Tensor:$K, Onnx_Int<"-1">:$axis,
                   Onnx_Int<"1">:$largest, Onnx_Int<"1">:$sorted);
  let results = (outs AnyTensor:$Values, Onnx_I64Tensor:$Indices);
  let hasVerifier = 1;
}

def Onnx_OneHotOp : Onnx_Op<"OneHot"> {
  let summary = "one-hot encoding";
  let description = [{
    Inserts a new axis of size `depth` (a 1-element tensor) at `axis` in
    [-r-1, r]: `values[1]` where it equals the index, `values[0]` elsewhere.
  }];
  let arguments = (ins AnyTensor:$indices, AnyTensor:$depth,
                   AnyTensor:$values, Onnx_Int<"-1">:$axis);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def Onnx_NonZeroOp : Onnx_Op<"NonZero"> {
  let summary = "indices of the nonzero elements";
  let description = [{
    An i64 (r x n) tensor: column j is the index of the j-th nonzero element
    of `X` in row-major order.
  }];
  let arguments = (ins AnyTensor:$X);
  let results = (outs Onnx_I64Tensor:$Y);
}

def Onnx_TriluOp : Onnx_Op<"Trilu"> {
  let summary = "upper or lower triangle of the innermost matrices";
  let description = [{
    Keeps the elements on or above (`upper` = 1) or on or below the `k`-th
    diagonal (`k`: an optional i64 scalar, default 0) and zeroes the rest.
  }];
  let arguments = (ins AnyTensor:$input, Onnx_OptI64Tensor:$k,
                   Onnx_Int<"1">:$upper);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let extraClassDefinition = inferSameAsOperand0;
}

//===----------------------------------------------------------------------===//
// Reductions, scans
//===----------------------------------------------------------------------===//

def Onnx_ReduceSumOp : Onnx_ReduceOp<"ReduceSum", "sum">;
def Onnx_ReduceMeanOp : Onnx_ReduceOp<"ReduceMean", "mean">;
def Onnx_ReduceMaxOp : Onnx_ReduceOp<"ReduceMax", "maximum">;
def Onnx_ReduceMinOp : Onnx_ReduceOp<"ReduceMin", "minimum">;
def Onnx_ArgMaxOp : Onnx_ArgReduceOp<"ArgMax", "largest">;
def Onnx_ArgMinOp : Onnx_ArgReduceOp<"ArgMin", "smallest">;

def Onnx_CumSumOp : Onnx_Op<"CumSum"> {
  let summary = "cumulative sum along an axis";
  let description = [{
    Running sums of `x` along `axis` (an i32/i64 scalar or 1-element
    tensor), `exclusive` leaving out the current element, `reverse` summing
    from the end.
  }];
  let arguments = (ins AnyTensor:$x, Onnx_IndexTensor:$axis,
                   Onnx_Int<"0">:$exclusive, Onnx_Int<"0">:$reverse);
  let results = (outs AnyTensor:$y);
  let hasVerifier = 1;
  let extraClassDefinition = inferSameAsOperand0;
}

//===----------------------------------------------------------------------===//
// Normalisation and activation with extra operands
//===----------------------------------------------------------------------===//

def Onnx_LayerNormalizationOp : Onnx_Op<"LayerNormalization"> {
  let summary = "layer normalisation over the trailing dimensions";
  let description = [{
    Normalises `X` over dimensions `axis`...r-1 (`axis` in [-r, r)) with
    `epsilon`, then scales by `Scale` and adds `B` (optional). `Mean` and
    `InvStdDev` (present as results even when the model does not use them)
    have `X`'s shape with those dimensions 1, in the `stash_type` type.
  }];
  let arguments = (ins AnyTensor:$X, AnyTensor:$Scale, Onnx_Optional:$B,
                   Onnx_Int<"-1">:$axis, Onnx_Float<"1.0e-05">:$epsilon,
                   Onnx_Int<"1">:$stash_type);
  let results = (outs AnyTensor:$Y, AnyTensor:$Mean, AnyTensor:$InvStdDev);
  let hasVerifier = 1;
}

def Onnx_ClipOp : Onnx_Op<"Clip"> {
  let summary = "element-wise clamp";
  let description = [{
    Clamps `input` to [`min`, `max`], each an optional one-element tensor.
  }];
  let arguments = (ins AnyTensor:$input, Onnx_Optional:$min,
                   Onnx_Optional:$max);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let extraClassDefinition = inferSameAsOperand0;
}

//===----------------------------------------------------------------------===//
// Constants, types, ranges
//===----------------------------------------------------------------------===//

def Onnx_ConstantOp : Onnx_Op<"Constant", [ConstantLike]> {
  let summary = "a constant tensor";
  let description = [{
    Exactly one of `value` (any elements attribute, `dense` or
    `dense_resource`), `value_float` / `value_int` (scalars), `value_floats`
    / `value_ints` (1-D) gives the tensor. The dialect's constant
    materializer builds this op with `value`.
  }];
  let arguments = (ins OptionalAttr<ElementsAttr>:$value,
                   OptionalAttr<F32Attr>:$value_float,
                   OptionalAttr<I64Attr>:$value_int,
                   OptionalAttr<DenseF32ArrayAttr>:$value_floats,
                   OptionalAttr<DenseI64ArrayAttr>:$value_ints);
  let results = (outs AnyTensor:$output);
  let builders = [
    OpBuilder<(ins "::mlir::ElementsAttr":$value), [{
      build($_builder, $_state, ::mlir::Type(value.getType()), value, nullptr,
            nullptr, nullptr, nullptr);
    }]>
  ];
  let hasVerifier = 1;
  let hasFolder = 1;
  let extraClassDeclaration = [{
    /// The tensor, whichever attribute holds it.
    ::mlir::ElementsAttr getTensor();
  }];
}

def Onnx_ConstantOfShapeOp : Onnx_Op<"ConstantOfShape"> {
  let summary = "a tensor of a shape filled with one value";
  let description = [{
    The shape is `input` (i64 1-D); the value and element type are those of
    `value`, a one-element tensor (default f32 zero).
  }];
  let arguments = (ins Onnx_I64Tensor:$input,
                   OptionalAttr<ElementsAttr>:$value);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_CastOp : Onnx_Op<"Cast"> {
  let summary = "element type conversion";
  let description = [{
    Converts `input` to the ONNX data type `to` (a TensorProto.DataType
    code: 1 float, 7 int64, 9 bool, 10 float16, 16 bfloat16, ...);
    `saturate` only matters for float8 targets.
  }];
  let arguments = (ins AnyTensor:$input, I64Attr:$to,
                   Onnx_Int<"1">:$saturate);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_CastLikeOp : Onnx_Op<"CastLike"> {
  let summary = "element type conversion to another tensor's type";
  let description = "Converts `input` to the element type of `target_type`.";
  let arguments = (ins AnyTensor:$input, AnyTensor:$target_type,
                   Onnx_Int<"1">:$saturate);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_RangeOp : Onnx_Op<"Range"> {
  let summary = "an arithmetic sequence";
  let description = [{
    `start, start + delta, ...` up to (excluding) `limit`; all three are
    scalars of one type, the result 1-D of length
    max(ceil((limit - start) / delta), 0).
  }];
  let arguments = (ins AnyTensor:$start, AnyTensor:$limit, AnyTensor:$delta);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_NoneOp : Onnx_Op<"None"> {
  let summary = "a missing optional input";
  let description = [{
    Its `none` value stands for an optional input the model leaves out.
  }];
  let results = (outs NoneType:$none);
}

//===----------------------------------------------------------------------===//
// Mixture of experts (com.microsoft)
//===----------------------------------------------------------------------===//

defvar moeDescription = [{
    Routes each token row of `input` ((T, H) or (B, S, H)) by the router
    logits `router_probs` (T, E; softmax applied inside) to its top `k`
    experts (`normalize_routing_weights`: renormalise their weights;
    `use_sparse_mixer`: Phi's sparse mixer, k = 2), runs each expert's MLP
    `fc2(act(fc1 x + b1) [* (fc3 x + b3)])` and sums the weighted outputs.
    `activation_type` is relu, gelu, silu, swiglu or identity; swiglu uses
    `activation_alpha`, `activation_beta`, `swiglu_limit` and
    `swiglu_fusion` (0: separate fc3; 1: fc1 rows interleave gate and
    linear; 2: gate half then linear half); `swiglu_limit_after_activation`
    1 clamps after the activation instead of before. The result has
    `input`'s shape.
}];

defvar moeAttributes = (ins
    Onnx_Str<"relu">:$activation_type, Onnx_Int<"1">:$k,
    Onnx_Int<"0">:$normalize_routing_weights, Onnx_Int<"0">:$use_sparse_mixer,
    Onnx_Int<"0">:$swiglu_fusion, OptionalAttr<F32Attr>:$swiglu_limit,
    Onnx_Float<"1.0">:$activation_alpha, Onnx_Float<"0.0">:$activation_beta,
    Onnx_Int<"0">:$swiglu_limit_after_activation);

def Onnx_MoEOp : Onnx_Op<"MoE"> {
  let summary = "onnxruntime's fused Mixture-of-Experts layer";
  let description = moeDescription # [{
    Expert weights are stacked along the first (expert) axis: fc1 and fc3
    (E, I', H), fc2 (E, H, I) in current onnxruntime, biases (E, out).
  }];
  let arguments = !con((ins
      Onnx_MoeTensor:$input, Onnx_MoeTensor:$router_probs,
      Onnx_MoeTensor:$fc1_experts_weights, Onnx_OptMoeTensor:$fc1_experts_bias,
      Onnx_MoeTensor:$fc2_experts_weights, Onnx_OptMoeTensor:$fc2_experts_bias,
      Onnx_OptMoeTensor:$fc3_experts_weights,
      Onnx_OptMoeTensor:$fc3_experts_bias), moeAttributes);
  let results = (outs Onnx_MoeTensor:$output);
  let hasVerifier = 1;
  let extraClassDefinition = inferSameAsOperand0;
}

def Onnx_QMoEOp : Onnx_Op<"QMoE"> {
  let summary = "onnxruntime's Mixture-of-Experts layer with quantised weights";
  let description = moeDescription # [{
    Expert weights are ui8 (E, N, K / (8 / expert_weight_bits)), two 4-bit
    values per byte low nibble first, dequantised as (q - zero_point) *
    scale; scales are (E, N), or (E, N, K / block_size) with `block_size`
    (a power of two >= 16); zero points default to 2^(bits - 1).
    `accuracy_level` is onnxruntime's compute precision hint (4: int8
    activations); it does not change the op's meaning.
  }];
  let arguments = !con((ins
      Onnx_MoeTensor:$input, Onnx_MoeTensor:$router_probs,
      Onnx_QWeightTensor:$fc1_experts_weights, Onnx_MoeTensor:$fc1_scales,
      Onnx_OptMoeTensor:$fc1_experts_bias,
      Onnx_QWeightTensor:$fc2_experts_weights, Onnx_MoeTensor:$fc2_scales,
      Onnx_OptMoeTensor:$fc2_experts_bias,
      Onnx_OptQWeightTensor:$fc3_experts_weights,
      Onnx_OptMoeTensor:$fc3_scales, Onnx_OptMoeTensor:$fc3_experts_bias,
      Onnx_OptQWeightTensor:$fc1_zero_points,
      Onnx_OptQWeightTensor:$fc2_zero_points,
      Onnx_OptQWeightTensor:$fc3_zero_points), moeAttributes,
      (ins Onnx_Int<"4">:$expert_weight_bits,
           OptionalAttr<I64Attr>:$block_size,
           Onnx_Int<"0">:$accuracy_level));
  let results = (outs Onnx_MoeTensor:$output);
  let hasVerifier = 1;
  let extraClassDefinition = inferSameAsOperand0;
}

#endif // MOE_DIALECT_ONNX_IR_ONNXOPS_TD
