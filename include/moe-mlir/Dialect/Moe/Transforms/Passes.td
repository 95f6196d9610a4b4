//===- Passes.td - moe dialect passes -----------------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
#define MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoeDumpLayersPass : Pass<"moe-dump-layers", "mlir::ModuleOp"> {
  let summary = "write every moe layer's weights and attributes as .npz";
  let description = [{
    Writes each `moe.layer` and `moe.clustered_layer`, in walk order, to
    `<dir>/layer_<N>.npz`: every weight in its stored dtype, quantisation
    storage and parameters, the cluster assignment, ranks and every
    attribute as JSON metadata (docs/layer-dump.md). The IR is unchanged.
    Weights must be constants (`dense` or `dense_resource`), possibly
    through `moe.quantized_weight`.
  }];
  let options = [
    Option<"dir", "dir", "std::string", "\"\"",
           "directory to write layer_<N>.npz files into (created if needed)">
  ];
}

def MoeClusterExpertsPass : Pass<"moe-cluster-experts", "mlir::ModuleOp"> {
  let summary = "group the experts of every moe.layer into balanced clusters";
  let description = [{
    Fuses three expert similarities — parameter cosine (per weight kind,
    averaged), router-row cosine, and, given calibration tokens, the cosine
    of expert outputs — as `alpha * S_param + beta * S_router + gamma *
    S_act` (normalised by the weights used), clusters the experts into
    balanced groups (sizes differ by at most one), and records the result
    on the layer as `moe.assignment` (and the fused matrix as
    `moe.similarity`) for moe-compress-experts. Deterministic for a seed.
    A layer with expert groups (`#moe.routing<groups = G>`) keeps them:
    by default its clusters are its groups, and an explicit count must be
    a multiple of G and clusters within each group (docs/method.md).
  }];
  let options = [
    Option<"clusters", "clusters", "int64_t", "0",
           "number of clusters (0: ceil(E / cluster-size), or the layer's expert groups)">,
    Option<"clusterSize", "cluster-size", "int64_t", "4",
           "experts per cluster when clusters is 0">,
    Option<"alpha", "alpha", "double", "0.7", "weight of parameter similarity">,
    Option<"beta", "beta", "double", "0.3", "weight of router similarity">,
    Option<"gamma", "gamma", "double", "0.3",
           "weight of activation similarity (only with calibration)">,
    Option<"method", "method", "std::string", "\"kmeans\"",
           "kmeans (spectral K-means++ with balancing) or agglomerative">,
    Option<"seed", "seed", "uint64_t", "0", "random seed">,
    Option<"calibration", "calibration", "std::string", "\"\"",
           "tokens (.npy, (..., H)) or a directory of layer_<N>.npy">
  ];
}

def MoeCompressExpertsPass : Pass<"moe-compress-experts", "mlir::ModuleOp"> {
  let summary = "rewrite clustered moe.layer ops as moe.clustered_layer";
  let description = [{
    For every `moe.layer` carrying a `moe.assignment`: per cluster and
    weight kind, the base is the mean of the members (frequency-weighted
    with a routing profile), and each expert keeps its residual to the base
    as a truncated SVD `U^T V` at a fixed rank or at the smallest rank
    meeting an energy threshold. Produces float factors and exact routing;
    moe-quantize and moe-fuse-routing come next.
  }];
  let options = [
    Option<"rank", "rank", "std::string", "\"\"",
           "rank per expert: an integer or 'full' (default 16)">,
    Option<"energy", "energy", "double", "0",
           "energy threshold in (0, 1] choosing each rank (not with rank)">,
    Option<"svd", "svd", "std::string", "\"krylov\"",
           "exact (LAPACK), krylov (randomised block Krylov) or randomized "
           "(subspace iteration)">,
    Option<"oversample", "oversample", "int64_t", "-1",
           "sketch columns beyond the rank (-1: 24 for krylov, 8 for "
           "randomized)">,
    Option<"powerIterations", "power-iters", "int64_t", "-1",
           "Krylov depth or power iterations (-1: 4 for krylov, 2 for "
           "randomized)">,
    Option<"seed", "seed", "uint64_t", "0", "randomised SVD seed">,
    Option<"profile", "profile", "std::string", "\"\"",
           "routing profile (JSON from moe-run --profile) for weighted bases">
  ];
}

def MoeQuantizePass : Pass<"moe-quantize", "mlir::ModuleOp"> {
  let summary = "store bases and residual factors in lower precision";
  let description = [{
    Replaces the float bases and residual factors of every
    `moe.clustered_layer` by `moe.quantized_weight` values: factors in
    `bits` (4, 8 or none), bases in `base-bits` (32, 16, bf16, 8 or 4), with
    group-wise f16 scales along each row and, unless `symmetric`, uint8
    zero points. 4-bit codes are packed two per byte, low nibble first.
    `bits=none base-bits=32` changes nothing (lossless).
  }];
  let options = [
    Option<"bits", "bits", "std::string", "\"4\"",
           "residual factor storage: 4, 8 or none">,
    Option<"baseBits", "base-bits", "std::string", "\"16\"",
           "base storage: 32, 16, bf16, 8 or 4">,
    Option<"groupSize", "group-size", "int64_t", "32",
           "elements per scale (0: one per row)">,
    Option<"symmetric", "symmetric", "bool", "false",
           "zero point fixed at 2^(bits-1)">
  ];
}

def MoeFuseRoutingPass : Pass<"moe-fuse-routing", "mlir::ModuleOp"> {
  let summary = "choose exact or hierarchical routing of clustered layers";
  let description = [{
    `exact` keeps the model's own top-k (clusters only group work);
    `hierarchical` is the two-stage router of the method: the
    `clusters-per-token` best clusters by `mass` (log-sum-exp of member
    logits) or `mean-row` (mean member router row), then top-k among their
    experts. Routing stays one op: gate product, scoring, top-k and
    normalisation are attributes of the layer that the lowering emits as
    one fused routine. `hierarchical` is refused for a layer with expert
    groups (its own group-limited routing is already the two-stage router)
    or a selection bias.
  }];
  let options = [
    Option<"routing", "routing", "std::string", "\"exact\"",
           "exact or hierarchical">,
    Option<"clustersPerToken", "clusters-per-token", "int64_t", "1",
           "clusters kept per token (hierarchical)">,
    Option<"clusterScore", "cluster-score", "std::string", "\"mass\"",
           "mass or mean-row">
  ];
}

def MoeCompressPipelinePass
    : Pass<"moe-compress-pipeline", "mlir::ModuleOp"> {
  let summary = "cluster, compress, quantise and route every layer; report";
  let description = [{
    The method end to end, one layer at a time (so only one layer's
    weights are live in the passes): moe-cluster-experts,
    moe-compress-experts, moe-quantize, moe-fuse-routing with the same
    options, then, with `report=FILE`, a JSON report
    (docs/compression-report.md). The defaults are the default compression:
    clusters of 4 experts, rank 16, INT4 factors (group 32, asymmetric),
    FP16 bases, exact routing. `clusters=none` keeps every expert alone
    (quantisation only).
  }];
  let options = [
    Option<"clusters", "clusters", "std::string", "\"\"",
           "number of clusters, or none (default: ceil(E / cluster-size), or the layer's expert groups)">,
    Option<"clusterSize", "cluster-size", "int64_t", "4",
           "experts per cluster">,
    Option<"alpha", "alpha", "double", "0.7", "weight of parameter similarity">,
    Option<"beta", "beta", "double", "0.3", "weight of router similarity">,
    Option<"gamma", "gamma", "double", "0.3",
           "weight of activation similarity (only with calibration)">,
    Option<"method", "method", "std::string", "\"kmeans\"",
           "kmeans or agglomerative">,
    Option<"seed", "seed", "uint64_t", "0", "random seed">,
    Option<"rank", "rank", "std::string", "\"\"",
           "rank per expert: an integer or 'full' (default 16)">,
    Option<"energy", "energy", "double", "0",
           "energy threshold in (0, 1] (not with rank)">,
    Option<"svd", "svd", "std::string", "\"krylov\"",
           "exact, krylov or randomized">,
    Option<"oversample", "oversample", "int64_t", "-1",
           "sketch columns beyond the rank (-1: 24 for krylov, 8 for "
           "randomized)">,
    Option<"powerIterations", "power-iters", "int64_t", "-1",
           "Krylov depth or power iterations (-1: 4 for krylov, 2 for "
           "randomized)">,
    Option<"bits", "bits", "std::string", "\"4\"",
           "residual factor storage: 4, 8 or none">,
    Option<"baseBits", "base-bits", "std::string", "\"16\"",
           "base storage: 32, 16, bf16, 8 or 4">,
    Option<"groupSize", "group-size", "int64_t", "32", "elements per scale">,
    Option<"symmetric", "symmetric", "bool", "false", "symmetric quantisation">,
    Option<"routing", "routing", "std::string", "\"exact\"",
           "exact or hierarchical">,
    Option<"clustersPerToken", "clusters-per-token", "int64_t", "1",
           "clusters kept per token (hierarchical)">,
    Option<"clusterScore", "cluster-score", "std::string", "\"mass\"",
           "mass or mean-row">,
    Option<"calibration", "calibration", "std::string", "\"\"",
           "tokens (.npy) or a directory of layer_<N>.npy">,
    Option<"profile", "profile", "std::string", "\"\"",
           "routing profile (JSON) for frequency-weighted bases">,
    Option<"report", "report", "std::string", "\"\"",
           "write the compression report (JSON) here">
  ];
}

#endif // MOE_DIALECT_MOE_TRANSFORMS_PASSES_TD
