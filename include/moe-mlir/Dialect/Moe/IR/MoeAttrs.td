//===- MoeAttrs.td - moe dialect attributes -----------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_IR_MOEATTRS_TD
#define MOE_DIALECT_MOE_IR_MOEATTRS_TD

include "moe-mlir/Dialect/Moe/IR/MoeDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/IR/TensorEncoding.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Moe_ActivationKind : I32EnumAttr<"ActivationKind", "expert activation", [
    I32EnumAttrCase<"silu", 0>, I32EnumAttrCase<"gelu", 1>,
    I32EnumAttrCase<"gelu_tanh", 2>, I32EnumAttrCase<"relu", 3>,
    I32EnumAttrCase<"identity", 4>, I32EnumAttrCase<"swiglu", 5>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_Scoring : I32EnumAttr<"Scoring", "router scoring function", [
    I32EnumAttrCase<"softmax", 0>, I32EnumAttrCase<"sigmoid", 1>,
    I32EnumAttrCase<"sparsemixer", 2>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_RoutingOrder : I32EnumAttr<"RoutingOrder",
    "whether scoring comes before or after top-k selection", [
    I32EnumAttrCase<"score_then_topk", 0>,
    I32EnumAttrCase<"topk_then_score", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_ClusterRoutingMode : I32EnumAttr<"ClusterRoutingMode",
    "exact or hierarchical routing of a clustered layer", [
    I32EnumAttrCase<"exact", 0>, I32EnumAttrCase<"hierarchical", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_ClusterScore : I32EnumAttr<"ClusterScore",
    "how stage 1 of hierarchical routing scores a cluster", [
    I32EnumAttrCase<"mass", 0>, I32EnumAttrCase<"mean_row", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_QuantStorage : I32EnumAttr<"QuantStorage",
    "how a weight's elements are stored", [
    I32EnumAttrCase<"i4", 0>, I32EnumAttrCase<"i8", 1>,
    I32EnumAttrCase<"f16", 2>, I32EnumAttrCase<"bf16", 3>,
    I32EnumAttrCase<"f32", 4>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_NibbleOrder : I32EnumAttr<"NibbleOrder",
    "which nibble of a byte holds the even element of a packed 4-bit pair", [
    I32EnumAttrCase<"low_nibble_first", 0>,
    I32EnumAttrCase<"high_nibble_first", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class Moe_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Moe_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

// An f64 parameter: FieldParser has no floating-point case, so parse and
// print it here. APFloat, not double, because parameters must be hashable.
class Moe_F64Param<string default, string desc>
    : DefaultValuedParameter<"::llvm::APFloat", "::llvm::APFloat(" # default # ")", desc> {
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    ::llvm::APFloat v(0.0);
    if ($_parser.parseFloat(::llvm::APFloat::IEEEdouble(), v))
      return ::mlir::failure();
    return v;
  }() }];
  let printer = "$_printer.printFloat($_self)";
}

def Moe_ActivationAttr : Moe_Attr<"Activation", "activation"> {
  let summary = "expert activation function and its parameters";
  let description = [{
    `silu`, `gelu` (erf form), `gelu_tanh`, `relu`, `identity`, or
    `swiglu`: onnxruntime's clamped SwiGLU, `G * sigmoid(alpha * G) *
    (L + beta)` with `G = min(G, limit)` and `L = clamp(L, -limit, limit)`
    when `limit` is given. `alpha`, `beta` and `limit` apply to `swiglu`
    only.

    ```mlir
    #moe.activation<silu>
    #moe.activation<swiglu, alpha = 1.702, beta = 1.0, limit = 7.0>
    ```
  }];
  let parameters = (ins
    EnumParameter<Moe_ActivationKind>:$kind,
    Moe_F64Param<"1.0", "sigmoid slope of swiglu">:$alpha,
    Moe_F64Param<"0.0", "offset added to the linear half of swiglu">:$beta,
    OptionalParameter<"std::optional<::mlir::FloatAttr>",
                      "clamp limit of swiglu">:$limit);
  let assemblyFormat = "`<` $kind (`,` struct($alpha, $beta, $limit)^)? `>`";
  let genVerifyDecl = 1;
}

def Moe_RoutingAttr : Moe_Attr<"Routing", "routing"> {
  let summary = "how a layer's router picks and weights experts";
  let description = [{
    Logits `z = W_r x + b_r` (T x E). Every family of routers that
    transformers 5 ships is one setting of these parameters; the formulas
    are in docs/semantics.md ("Routing").

    - `scoring = softmax | sigmoid`, `order = score_then_topk`: scores
      `s = score(z)` over all experts; the selection key is `c = s +
      selection_bias` (the layer's optional `selection_bias` operand, zero
      when absent); the `top_k` largest keys are picked and weighted by
      their unbiased scores `s`.
    - `order = topk_then_score`: the `top_k` largest logits are picked and
      scored among themselves (softmax over the k, or sigmoid of each). No
      selection bias.
    - `scoring = sparsemixer` (PhiMoE, `top_k = 2`, `order =
      score_then_topk`): the first expert is the argmax of `z`, weighted by
      its softmax over the logits within relative distance `2 *
      mixer_epsilon` of the maximum; the second is the argmax with the first
      removed, weighted the same way among the rest.
    - `groups = G > 1` (group-limited top-k, DeepSeek-V3 / GLM-4.5): the
      experts form `G` contiguous groups of `E / G` (at least 2); a group's
      score is the sum of its two largest keys; only the `groups_kept` best
      groups' experts may be picked.
    - `normalize` divides the picked weights by `max(sum + norm_epsilon,
      norm_floor)`; then every weight is multiplied by `scale`.
    - `weights_on_input`: the weight multiplies the expert's input instead
      of its output (Llama 4): `y = sum_j expert_j(w_j x)`; experts then
      have no gate or up biases.

    Ties go to the lower index (expert or group).

    ```mlir
    #moe.routing<top_k = 2, scoring = softmax, order = score_then_topk,
                 normalize = true>
    #moe.routing<top_k = 8, scoring = sigmoid, order = score_then_topk,
                 normalize = true, groups = 8, groups_kept = 4, scale = 2.5,
                 norm_epsilon = 1.0e-20>
    ```
  }];
  let parameters = (ins
    "int64_t":$top_k,
    EnumParameter<Moe_Scoring>:$scoring,
    EnumParameter<Moe_RoutingOrder>:$order,
    "bool":$normalize,
    DefaultValuedParameter<"int64_t", "1", "expert groups">:$groups,
    DefaultValuedParameter<"int64_t", "1", "groups kept per token">:$groups_kept,
    Moe_F64Param<"1.0", "factor on every routing weight">:$scale,
    Moe_F64Param<"0.0", "added to the sum when normalising">:$norm_epsilon,
    Moe_F64Param<"0.0", "least denominator when normalising">:$norm_floor,
    Moe_F64Param<"0.0", "sparsemixer's jitter epsilon">:$mixer_epsilon,
    DefaultValuedParameter<"bool", "false",
                           "weights scale the expert input">:$weights_on_input);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "int64_t":$topK, "Scoring":$scoring,
                     "RoutingOrder":$order, "bool":$normalize), [{
      return $_get($_ctxt, topK, scoring, order, normalize, 1, 1,
                   ::llvm::APFloat(1.0), ::llvm::APFloat(0.0),
                   ::llvm::APFloat(0.0), ::llvm::APFloat(0.0), false);
    }]>
  ];
  let extraClassDeclaration = [{
    /// Whether any parameter beyond top-k, scoring, order and normalize is
    /// set (the routers of transformers 5 beyond Mixtral's).
    bool isExtended() const {
      return getGroups() != 1 || getScale().convertToDouble() != 1.0 ||
             !getNormEpsilon().isZero() || !getNormFloor().isZero() ||
             !getMixerEpsilon().isZero() || getWeightsOnInput() ||
             getScoring() == Scoring::sparsemixer;
    }
  }];
}

def Moe_ClusterRoutingAttr : Moe_Attr<"ClusterRouting", "cluster_routing"> {
  let summary = "routing mode of a clustered layer";
  let description = [{
    `exact` keeps the model's own top-k; clusters only group work.
    `hierarchical` first keeps the `clusters_per_token` best clusters
    (scored by `mass`, the log-sum-exp of the member logits, or `mean_row`,
    a router row averaged over the members), then routes among their
    members.

    ```mlir
    #moe.cluster_routing<mode = exact>
    #moe.cluster_routing<mode = hierarchical, clusters_per_token = 2,
                         score = mass>
    ```
  }];
  let parameters = (ins
    EnumParameter<Moe_ClusterRoutingMode>:$mode,
    DefaultValuedParameter<"int64_t", "1",
                           "clusters kept per token">:$clusters_per_token,
    DefaultValuedParameter<"ClusterScore", "ClusterScore::mass",
                           "stage-1 cluster score">:$score);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Moe_QuantAttr : Moe_Attr<"Quant", "quant",
    [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]> {
  let summary = "storage of a quantised weight (a tensor encoding)";
  let description = [{
    Attached as the encoding of a weight tensor whose element type is the
    logical (dequantised) type. `storage = i4 | i8` stores unsigned codes `q`
    with one scale per `group_size` consecutive elements of the last axis
    (0: one group per row); the value is `(q - zp) * scale`, `zp` from a
    zero-point tensor, or `2^(bits-1)` when `symmetric`. `i4` codes are two
    per byte along the last axis, the even element in the low nibble for
    `low_nibble_first`. `storage = f16 | bf16 | f32` stores the values
    themselves in that type. `moe.quantized_weight` builds such a tensor from
    its storage tensors; docs/semantics.md has the details.

    ```mlir
    tensor<2x64x32xf32, #moe.quant<storage = i4, group_size = 32,
                                   symmetric = false, scale_type = f16,
                                   zero_point_type = i8>>
    tensor<2x64x32xf32, #moe.quant<storage = f16>>
    ```
  }];
  let parameters = (ins
    EnumParameter<Moe_QuantStorage>:$storage,
    DefaultValuedParameter<"int64_t", "0", "elements per scale">:$group_size,
    DefaultValuedParameter<"bool", "true", "zero point fixed at 2^(bits-1)">:$symmetric,
    OptionalParameter<"::mlir::Type", "type of the scales">:$scale_type,
    OptionalParameter<"::mlir::Type", "type of the zero points">:$zero_point_type,
    DefaultValuedParameter<"NibbleOrder", "NibbleOrder::low_nibble_first",
                           "nibble order of packed 4-bit codes">:$packing);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Whether values are stored as integer codes with scales.
    bool isInteger() const {
      return getStorage() == QuantStorage::i4 ||
             getStorage() == QuantStorage::i8;
    }
    /// Bits per stored element.
    int64_t getBits() const;
    /// Shape of the storage tensor for a weight of logical shape `shape`.
    ::llvm::SmallVector<int64_t> getDataShape(::llvm::ArrayRef<int64_t> shape) const;
    /// Shape of the scales (and zero points) for a weight of logical shape
    /// `shape`; only meaningful for integer storage.
    ::llvm::SmallVector<int64_t> getScaleShape(::llvm::ArrayRef<int64_t> shape) const;
    /// Element type of the storage tensor.
    ::mlir::Type getDataElementType() const;
  }];
}

#endif // MOE_DIALECT_MOE_IR_MOEATTRS_TD
