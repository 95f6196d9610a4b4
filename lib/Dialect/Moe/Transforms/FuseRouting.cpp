//===- FuseRouting.cpp - Exact or hierarchical routing ---------------------===//

#include "moe-mlir/Dialect/Moe/Transforms/Compression.h"
#include "moe-mlir/Dialect/Moe/Transforms/Options.h"
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEFUSEROUTINGPASS
#include "moe-mlir/Dialect/Moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

LogicalResult mlir::moe::fuseRouting(ClusteredLayerOp op,
                                     ClusterRoutingAttr routing) {
  if (routing.getMode() == ClusterRoutingMode::hierarchical) {
    // The model's own group-limited selection (or biased selection) is
    // already a two-stage router; a cluster stage in front of it would
    // change which experts the model picks.
    int64_t groups = op.getRouting().getGroups();
    if (groups > 1)
      return op.emitError()
             << "hierarchical cluster routing of a layer with " << groups
             << " expert groups: its group-limited routing is already the "
                "two-stage router (its clusters are its groups); use "
                "routing=exact";
    if (op.getSelectionBias())
      return op.emitError()
             << "hierarchical cluster routing of a layer with a selection "
                "bias: the bias decides the selection among all experts; "
                "use routing=exact";
  }
  ClusterRoutingAttr previous = op.getClusterRouting();
  op.setClusterRoutingAttr(routing);
  // The op's verifier owns the invariant (enough experts in the kept
  // clusters for top_k); on failure its diagnostic explains, and the op is
  // left as it was.
  if (failed(op.verify())) {
    op.setClusterRoutingAttr(previous);
    return failure();
  }
  return success();
}

namespace {
struct MoeFuseRoutingPass
    : public mlir::moe::impl::MoeFuseRoutingPassBase<MoeFuseRoutingPass> {
  using Base::Base;

  void runOnOperation() override {
    FailureOr<ClusterRoutingAttr> attr = parseRoutingOptions(
        getOperation(), routing, clustersPerToken, clusterScore);
    if (failed(attr))
      return signalPassFailure();
    WalkResult walk = getOperation().walk([&](ClusteredLayerOp op) {
      return failed(fuseRouting(op, *attr)) ? WalkResult::interrupt()
                                            : WalkResult::advance();
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
