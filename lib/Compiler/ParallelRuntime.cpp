//===- ParallelRuntime.cpp - Parallel loops on the runtime's pool ---------===//

#include "moe-mlir/Compiler/ParallelRuntime.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

using namespace mlir;

namespace {
const char *const kBody = "moe_parallel_body_";
const char *const kLaunch = "moe_parallel_launch_";
const char *const kTrampoline = "moe_parallel_trampoline_";
const char *const kHook = "moe_rt_parallel_for";
} // namespace

LogicalResult mlir::moe::outlineParallelLoops(ModuleOp module) {
  SmallVector<scf::ParallelOp> loops;
  module.walk([&](scf::ParallelOp p) {
    if (!p->getParentOfType<scf::ParallelOp>() && p.getNumResults() == 0)
      loops.push_back(p);
  });
  OpBuilder top = OpBuilder::atBlockEnd(module.getBody());
  for (auto [k, loop] : llvm::enumerate(loops)) {
    Location loc = loop.getLoc();
    OpBuilder b(loop);
    Type index = b.getIndexType();
    // Iterations per dimension and in all.
    SmallVector<Value> counts;
    Value total = arith::ConstantIndexOp::create(b, loc, 1);
    for (auto [lb, ub, step] : llvm::zip(
             loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
      Value span = arith::SubIOp::create(b, loc, ub, lb);
      Value count = arith::CeilDivUIOp::create(b, loc, span, step);
      counts.push_back(count);
      total = arith::MulIOp::create(b, loc, total, count);
    }
    llvm::SetVector<Value> used, captured;
    SmallVector<Operation *> constants;
    getUsedValuesDefinedAbove(loop.getRegion(), used);
    for (Value v : loop.getLowerBound())
      used.insert(v);
    for (Value v : loop.getStep())
      used.insert(v);
    for (Value v : counts)
      used.insert(v);
    // Constants are rebuilt inside the body (vectors would not fit a slot
    // anyway); everything else travels as an argument.
    for (Value v : used) {
      Operation *def = v.getDefiningOp();
      if (def && def->hasTrait<OpTrait::ConstantLike>())
        constants.push_back(def);
      else
        captured.insert(v);
    }
    SmallVector<Type> types = {index, index};
    for (Value v : captured)
      types.push_back(v.getType());

    std::string suffix = std::to_string(k);
    auto body = func::FuncOp::create(top, loc, kBody + suffix,
                                     top.getFunctionType(types, {}));
    body.setPrivate();
    Block *entry = body.addEntryBlock();
    IRMapping map;
    for (auto [v, arg] :
         llvm::zip(captured, entry->getArguments().drop_front(2)))
      map.map(v, arg);
    OpBuilder bb = OpBuilder::atBlockBegin(entry);
    for (Operation *c : constants)
      bb.clone(*c, map);
    Value one = arith::ConstantIndexOp::create(bb, loc, 1);
    auto range = scf::ForOp::create(bb, loc, entry->getArgument(0),
                                    entry->getArgument(1), one);
    bb.setInsertionPointToStart(range.getBody());
    Value rest = range.getInductionVar();
    auto ivs = loop.getInductionVars();
    for (int64_t d = ivs.size() - 1; d >= 0; --d) {
      Value count = map.lookup(counts[d]);
      Value within = arith::RemUIOp::create(bb, loc, rest, count);
      rest = arith::DivUIOp::create(bb, loc, rest, count);
      Value iv = arith::AddIOp::create(
          bb, loc, map.lookup(loop.getLowerBound()[d]),
          arith::MulIOp::create(bb, loc, within,
                                map.lookup(loop.getStep()[d])));
      map.map(ivs[d], iv);
    }
    for (Operation &op : loop.getBody()->without_terminator())
      bb.clone(op, map);
    bb.setInsertionPointToEnd(entry);
    func::ReturnOp::create(bb, loc);

    SmallVector<Type> launchTypes = {index};
    SmallVector<Value> launchArgs = {total};
    for (Value v : captured) {
      launchTypes.push_back(v.getType());
      launchArgs.push_back(v);
    }
    auto launch = func::FuncOp::create(top, loc, kLaunch + suffix,
                                       top.getFunctionType(launchTypes, {}));
    launch.setPrivate();
    func::CallOp::create(b, loc, launch, launchArgs);
    loop.erase();
  }
  return success();
}

LogicalResult mlir::moe::lowerParallelLaunches(ModuleOp module) {
  MLIRContext *ctx = module.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto i64 = IntegerType::get(ctx, 64);
  auto voidType = LLVM::LLVMVoidType::get(ctx);
  SmallVector<LLVM::CallOp> calls;
  module.walk([&](LLVM::CallOp call) {
    if (auto callee = call.getCallee(); callee && callee->starts_with(kLaunch))
      calls.push_back(call);
  });
  if (calls.empty())
    return success();
  OpBuilder top = OpBuilder::atBlockEnd(module.getBody());
  auto hook = module.lookupSymbol<LLVM::LLVMFuncOp>(kHook);
  if (!hook)
    hook = LLVM::LLVMFuncOp::create(
        top, module.getLoc(), kHook,
        LLVM::LLVMFunctionType::get(voidType, {i64, ptr, ptr}));

  // Every argument travels as one 8-byte slot.
  auto toSlot = [&](OpBuilder &b, Location loc, Value v) -> Value {
    Type t = v.getType();
    if (isa<LLVM::LLVMPointerType>(t))
      return LLVM::PtrToIntOp::create(b, loc, i64, v);
    if (t == i64)
      return v;
    if (auto f = dyn_cast<FloatType>(t)) {
      auto bits = IntegerType::get(ctx, f.getWidth());
      Value raw = LLVM::BitcastOp::create(b, loc, bits, v);
      return f.getWidth() == 64 ? raw : LLVM::ZExtOp::create(b, loc, i64, raw);
    }
    return LLVM::ZExtOp::create(b, loc, i64, v);
  };
  auto fromSlot = [&](OpBuilder &b, Location loc, Value slot, Type t) -> Value {
    if (isa<LLVM::LLVMPointerType>(t))
      return LLVM::IntToPtrOp::create(b, loc, t, slot);
    if (t == i64)
      return slot;
    if (auto f = dyn_cast<FloatType>(t)) {
      auto bits = IntegerType::get(ctx, f.getWidth());
      Value raw = f.getWidth() == 64
                      ? slot
                      : LLVM::TruncOp::create(b, loc, bits, slot).getResult();
      return LLVM::BitcastOp::create(b, loc, t, raw);
    }
    return LLVM::TruncOp::create(b, loc, t, slot);
  };

  for (LLVM::CallOp call : calls) {
    Location loc = call.getLoc();
    StringRef launchName = *call.getCallee();
    std::string suffix = launchName.drop_front(strlen(kLaunch)).str();
    auto body = module.lookupSymbol<LLVM::LLVMFuncOp>(kBody + suffix);
    if (!body)
      return call.emitError()
             << "parallel loop body " << kBody << suffix << " is missing";
    ValueRange args = call.getOperands().drop_front();
    if (body.getNumArguments() != args.size() + 2)
      return call.emitError() << "parallel loop " << suffix
                              << ": body and launch disagree on arguments";

    // The trampoline: unpack the slots, call the body.
    auto tramp = LLVM::LLVMFuncOp::create(
        top, loc, kTrampoline + suffix,
        LLVM::LLVMFunctionType::get(voidType, {i64, i64, ptr}),
        LLVM::Linkage::Internal);
    Block *entry = tramp.addEntryBlock(top);
    OpBuilder tb = OpBuilder::atBlockBegin(entry);
    SmallVector<Value> bodyArgs = {entry->getArgument(0),
                                   entry->getArgument(1)};
    for (auto [i, arg] : llvm::enumerate(args)) {
      Value at = LLVM::GEPOp::create(tb, loc, ptr, i64, entry->getArgument(2),
                                     ArrayRef<LLVM::GEPArg>{(int32_t)i});
      Value slot = LLVM::LoadOp::create(tb, loc, i64, at);
      bodyArgs.push_back(fromSlot(tb, loc, slot, arg.getType()));
    }
    LLVM::CallOp::create(tb, loc, body, bodyArgs);
    LLVM::ReturnOp::create(tb, loc, ValueRange{});

    // The call site: slots on the caller's stack (allocated once, in the
    // entry block, so loops around the launch do not grow the stack).
    auto caller = call->getParentOfType<LLVM::LLVMFuncOp>();
    OpBuilder eb = OpBuilder::atBlockBegin(&caller.getBody().front());
    Value size = LLVM::ConstantOp::create(eb, loc, i64,
                                          std::max<int64_t>(args.size(), 1));
    Value slots = LLVM::AllocaOp::create(eb, loc, ptr, i64, size, 8);
    OpBuilder cb(call);
    for (auto [i, arg] : llvm::enumerate(args)) {
      Value at = LLVM::GEPOp::create(cb, loc, ptr, i64, slots,
                                     ArrayRef<LLVM::GEPArg>{(int32_t)i});
      LLVM::StoreOp::create(cb, loc, toSlot(cb, loc, arg), at);
    }
    Value fn = LLVM::AddressOfOp::create(cb, loc, ptr, tramp.getSymName());
    LLVM::CallOp::create(cb, loc, hook,
                         ValueRange{call.getOperand(0), fn, slots});
    call.erase();
    if (auto decl = module.lookupSymbol<LLVM::LLVMFuncOp>(launchName);
        decl && decl.isExternal() &&
        SymbolTable::symbolKnownUseEmpty(decl, module))
      decl.erase();
  }
  return success();
}
