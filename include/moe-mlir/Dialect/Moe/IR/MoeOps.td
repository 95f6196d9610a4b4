//===- MoeOps.td - moe dialect operations -------------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_IR_MOEOPS_TD
#define MOE_DIALECT_MOE_IR_MOEOPS_TD

include "moe-mlir/Dialect/Moe/IR/MoeAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpBase.td"

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

def Moe_FloatTensor : RankedTensorOf<[F16, BF16, F32]>;

// Accessors both layer ops share: sizes read off tokens and router.
defvar moeLayerSizes = [{
    int64_t getNumExperts() {
      return getRouterWeight().getType().getDimSize(0);
    }
    int64_t getHiddenSize() { return getTokens().getType().getDimSize(1); }
}];

def Moe_LayerOp : Moe_Op<"layer", [Pure, AttrSizedOperandSegments]> {
  let summary = "a whole Mixture-of-Experts feed-forward layer";
  let description = [{
    Routes each token row of `tokens` (`T x H`, `T` may be dynamic) to
    `top_k` of `E` experts with the router `router_weight` (`E x H`, optional
    `router_bias`; optional `selection_bias` (`E`), added to the scores
    only to choose experts; see `#moe.routing`), runs each chosen expert's MLP and sums the outputs
    weighted by the routing weights. Expert weights are stacked along the
    first axis in `(out, in)` layout: `gate_weight` and `up_weight`
    `E x I x H`, `down_weight` `E x H x I`. With `gate_weight` the experts
    are GLU (`act(gate) * up`), without it plain MLPs (`act(up)`). Biases
    are optional per kind. `absent` marks experts an export lost: they are
    routed to but contribute nothing. docs/semantics.md has the exact
    formula.

    ```mlir
    %y = moe.layer %x, %router gate %g up %u down %d {
        activation = #moe.activation<silu>,
        routing = #moe.routing<top_k = 2, scoring = softmax,
                               order = score_then_topk, normalize = true>}
        : (tensor<?x32xf32>, tensor<4x32xf32>, tensor<4x64x32xf32>,
           tensor<4x64x32xf32>, tensor<4x32x64xf32>) -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins
    Moe_FloatTensor:$tokens,
    Moe_FloatTensor:$router_weight,
    Optional<Moe_FloatTensor>:$router_bias,
    Optional<Moe_FloatTensor>:$selection_bias,
    Optional<Moe_FloatTensor>:$gate_weight,
    Moe_FloatTensor:$up_weight,
    Moe_FloatTensor:$down_weight,
    Optional<Moe_FloatTensor>:$gate_bias,
    Optional<Moe_FloatTensor>:$up_bias,
    Optional<Moe_FloatTensor>:$down_bias,
    Moe_RoutingAttr:$routing,
    Moe_ActivationAttr:$activation,
    OptionalAttr<DenseBoolArrayAttr>:$absent);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $tokens `,` $router_weight (`router_bias` $router_bias^)?
    (`selection_bias` $selection_bias^)?
    (`gate` $gate_weight^)? `up` $up_weight `down` $down_weight
    (`gate_bias` $gate_bias^)? (`up_bias` $up_bias^)?
    (`down_bias` $down_bias^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = moeLayerSizes # [{
    int64_t getInterSize() { return getUpWeight().getType().getDimSize(1); }
    bool isGlu() { return static_cast<bool>(getGateWeight()); }
  }];
}

def Moe_WeightTensor : RankedTensorOf<[F16, BF16, F32]>;

def Moe_ClusteredLayerOp : Moe_Op<"clustered_layer",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "a Mixture-of-Experts layer in clustered, compressed form";
  let description = [{
    The layer of `moe.layer` after clustered compression. Expert `e` is in
    cluster `assignment[e]` (`G` clusters, none empty); each weight kind
    (`gate`, `up`, `down`) has per-cluster bases `*_base` (`G x out x in`)
    and per-expert low-rank residual factors `*_u` (`R x out`) and `*_v`
    (`R x in`), where `R` is the sum of that kind's `*_ranks` (one rank per
    expert, 0 allowed) and expert `e` owns the rows after those of the
    experts before it: `W[e] = base[assignment[e]] + U[e]^T V[e]`. Any
    weight may carry a `#moe.quant` encoding (made by
    `moe.quantized_weight`). `cluster_routing` is `exact` (the model's own
    top-k) or `hierarchical` (top clusters first, then experts inside them).

    ```mlir
    %y = moe.clustered_layer %x, %router
        gate %gb, %gu, %gv up %ub, %uu, %uv down %db, %du, %dv {
        activation = #moe.activation<silu>, assignment = array<i64: 0, 0, 1, 1>,
        cluster_routing = #moe.cluster_routing<mode = exact>,
        routing = #moe.routing<top_k = 2, scoring = softmax,
                               order = score_then_topk, normalize = true>,
        gate_ranks = array<i64: 4, 4, 4, 4>, up_ranks = array<i64: 4, 4, 4, 4>,
        down_ranks = array<i64: 4, 4, 4, 4>}
        : (tensor<?x32xf32>, tensor<4x32xf32>,
           tensor<2x64x32xf32, #moe.quant<storage = f16>>,
           tensor<16x64xf32>, tensor<16x32xf32>, ...) -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins
    Moe_FloatTensor:$tokens,
    Moe_FloatTensor:$router_weight,
    Optional<Moe_FloatTensor>:$router_bias,
    Optional<Moe_FloatTensor>:$selection_bias,
    Optional<Moe_WeightTensor>:$gate_base,
    Optional<Moe_WeightTensor>:$gate_u,
    Optional<Moe_WeightTensor>:$gate_v,
    Moe_WeightTensor:$up_base,
    Moe_WeightTensor:$up_u,
    Moe_WeightTensor:$up_v,
    Moe_WeightTensor:$down_base,
    Moe_WeightTensor:$down_u,
    Moe_WeightTensor:$down_v,
    Optional<Moe_FloatTensor>:$gate_bias,
    Optional<Moe_FloatTensor>:$up_bias,
    Optional<Moe_FloatTensor>:$down_bias,
    Moe_RoutingAttr:$routing,
    Moe_ActivationAttr:$activation,
    Moe_ClusterRoutingAttr:$cluster_routing,
    DenseI64ArrayAttr:$assignment,
    OptionalAttr<DenseI64ArrayAttr>:$gate_ranks,
    DenseI64ArrayAttr:$up_ranks,
    DenseI64ArrayAttr:$down_ranks,
    OptionalAttr<DenseBoolArrayAttr>:$absent);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $tokens `,` $router_weight (`router_bias` $router_bias^)?
    (`selection_bias` $selection_bias^)?
    (`gate` $gate_base^ `,` $gate_u `,` $gate_v)?
    `up` $up_base `,` $up_u `,` $up_v
    `down` $down_base `,` $down_u `,` $down_v
    (`gate_bias` $gate_bias^)? (`up_bias` $up_bias^)?
    (`down_bias` $down_bias^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = moeLayerSizes # [{
    int64_t getNumClusters() { return getUpBase().getType().getDimSize(0); }
    int64_t getInterSize() { return getUpBase().getType().getDimSize(1); }
    bool isGlu() { return static_cast<bool>(getGateBase()); }
  }];
}

def Moe_QuantizedWeightOp : Moe_Op<"quantized_weight",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "a weight tensor assembled from its quantised storage";
  let description = [{
    Gives the stored form of a weight a logical tensor type: the result's
    `#moe.quant` encoding says how `data` (and, for integer storage,
    `scales` and, unless symmetric, `zero_points`) encode each element.
    For `i4`, `data` is `i8` with the last axis halved (rounded up); for
    `i8`, `i8` of the logical shape; scales and zero points have the
    logical shape with the last axis replaced by its group count. For float
    storage, `data` has the logical shape in the storage type.

    ```mlir
    %w = moe.quantized_weight %data scales %s zero_points %z
        : (tensor<16x16xi8>, tensor<16x1xf16>, tensor<16x1xi8>)
        -> tensor<16x32xf32, #moe.quant<storage = i4, group_size = 32,
               symmetric = false, scale_type = f16, zero_point_type = i8>>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$data,
    Optional<AnyRankedTensor>:$scales,
    Optional<AnyRankedTensor>:$zero_points);
  let results = (outs Moe_WeightTensor:$result);
  let assemblyFormat = [{
    $data (`scales` $scales^)? (`zero_points` $zero_points^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    QuantAttr getQuant() {
      return ::llvm::cast<QuantAttr>(getResult().getType().getEncoding());
    }
  }];
}

#endif // MOE_DIALECT_MOE_IR_MOEOPS_TD
