//===- MoeDialect.td - The moe dialect ---------------------*- tablegen -*-===//

#ifndef MOE_DIALECT_MOE_IR_MOEDIALECT_TD
#define MOE_DIALECT_MOE_IR_MOEDIALECT_TD

include "mlir/IR/OpBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let summary = "Mixture-of-Experts layers, whole and clustered";
  let description = [{
    The `moe` dialect holds a whole Mixture-of-Experts feed-forward layer as
    one op (`moe.layer`), the same layer after clustered compression
    (`moe.clustered_layer`: experts grouped into clusters that share a base
    weight, each expert keeping a low-rank residual), and the representation
    of quantised weights (`#moe.quant` tensor encodings made by
    `moe.quantized_weight`). The numeric meaning of every op is fixed in
    docs/semantics.md; the float64 reference evaluator implements it.
  }];
  let cppNamespace = "::mlir::moe";
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect"];
  let extraClassDeclaration = [{
    /// Defined next to the attribute storage classes, which it needs.
    void registerAttributes();
  }];
}

#endif // MOE_DIALECT_MOE_IR_MOEDIALECT_TD
