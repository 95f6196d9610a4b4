//===- ParallelRuntime.h - Parallel loops on the runtime's pool -*- C++ -*-===//
//
// Compiled code runs its parallel loops on the runtime's thread pool
// through one hook, `moe_rt_parallel_for(n, body, ctx)` (docs/artifact.md),
// so the shared object imports nothing but libc, libm and the runtime.
// Two steps around the LLVM lowering:
//  - outlineParallelLoops (memrefs): each outermost scf.parallel becomes a
//    function over a range [begin, end) of its linearised iterations, and
//    the loop a call to an external launcher taking the iteration count and
//    every value the body captures;
//  - lowerParallelLaunches (LLVM dialect): each launcher call packs its
//    (now flattened) arguments into a stack array of 8-byte slots and calls
//    the hook with a trampoline that unpacks them and calls the body.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_COMPILER_PARALLELRUNTIME_H
#define MOE_MLIR_COMPILER_PARALLELRUNTIME_H

#include "mlir/IR/BuiltinOps.h"

namespace mlir::moe {

LogicalResult outlineParallelLoops(ModuleOp module);
LogicalResult lowerParallelLaunches(ModuleOp module);

} // namespace mlir::moe

#endif // MOE_MLIR_COMPILER_PARALLELRUNTIME_H
