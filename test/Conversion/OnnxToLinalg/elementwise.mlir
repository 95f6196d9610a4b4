// Element-wise onnx ops: one linalg.generic each over the result's shape,
// operands broadcast through constant-0 indexing where a size is
// statically 1; f16 transcendental functions in f32.
// RUN: moe-opt %s --split-input-file --convert-onnx-to-linalg --canonicalize | FileCheck %s

// CHECK-DAG: #[[ID2:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @unary
// CHECK-NOT: onnx.
// Sigmoid: 1 / (1 + exp(-x)).
// CHECK: linalg.generic {indexing_maps = [#[[ID2]], #[[ID2]]], iterator_types = ["parallel", "parallel"]}
// CHECK: arith.negf
// CHECK-NEXT: math.exp
// CHECK-NEXT: arith.addf
// CHECK-NEXT: arith.divf
// Gelu (erf): 0.5 x (1 + erf(x / sqrt 2)).
// CHECK: linalg.generic
// CHECK: arith.mulf %{{.*}}, %[[HALF:[a-z0-9_]+]]
// CHECK-NEXT: arith.mulf %{{.*}}, %[[RSQRT2:[a-z0-9_]+]]
// CHECK-NEXT: math.erf
// Gelu (tanh): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// CHECK: linalg.generic
// CHECK: arith.mulf %{{.*}}, %{{.*}}
// CHECK: arith.mulf %{{.*}}, %[[C:[a-z0-9_]+]]
// CHECK: math.tanh
// f16 Erf goes through f32.
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK-NEXT: math.erf %{{.*}} : f32
// CHECK-NEXT: arith.truncf %{{.*}} : f32 to f16
// Integer Neg and Abs, boolean Not.
// CHECK: arith.subi %c0_i32
// CHECK: math.absi
// CHECK: arith.xori %{{.*}}, %true
func.func @unary(%x: tensor<2x3xf32>, %h: tensor<4xf16>, %i: tensor<4xi32>, %b: tensor<4xi1>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<4xf16>, tensor<4xi32>, tensor<4xi32>, tensor<4xi1>) {
  %0 = "onnx.Sigmoid"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = "onnx.Gelu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = "onnx.Gelu"(%x) {approximate = "tanh"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = "onnx.Erf"(%h) : (tensor<4xf16>) -> tensor<4xf16>
  %4 = "onnx.Neg"(%i) : (tensor<4xi32>) -> tensor<4xi32>
  %5 = "onnx.Abs"(%i) : (tensor<4xi32>) -> tensor<4xi32>
  %6 = "onnx.Not"(%b) : (tensor<4xi1>) -> tensor<4xi1>
  return %0, %1, %2, %3, %4, %5, %6 : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<4xf16>, tensor<4xi32>, tensor<4xi32>, tensor<4xi1>
}

// -----

// Every other unary op, one generic each.
// CHECK-LABEL: func.func @more_unary
// CHECK-NOT: onnx.
// CHECK: math.sqrt
// CHECK: arith.divf %cst
// CHECK: arith.negf
// CHECK: math.exp
// CHECK: math.log
// CHECK: math.tanh
// CHECK: arith.maximumf
// CHECK: math.sin
// CHECK: math.cos
// CHECK: math.absf
// Softplus without overflow: max(x, 0) + log1p(exp(-|x|)).
// CHECK: math.absf
// CHECK-NEXT: arith.negf
// CHECK-NEXT: math.exp
// CHECK-NEXT: math.log1p
// CHECK-NEXT: arith.maxnumf
// CHECK-NEXT: arith.addf
// CHECK: arith.cmpf ogt
// CHECK: math.floor
// CHECK: math.ceil
// CHECK: return
func.func @more_unary(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {
  %0 = "onnx.Sqrt"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %1 = "onnx.Reciprocal"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %2 = "onnx.Neg"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %3 = "onnx.Exp"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %4 = "onnx.Log"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %5 = "onnx.Tanh"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %6 = "onnx.Relu"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %7 = "onnx.Sin"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %8 = "onnx.Cos"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %9 = "onnx.Abs"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %10 = "onnx.Softplus"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %11 = "onnx.Sign"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %12 = "onnx.Floor"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %13 = "onnx.Ceil"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %14 = "onnx.Identity"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14 : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
}

// -----

// Broadcasting: a static 1 reads index 0; a dynamic size is read with
// tensor.dim from the first operand that has it (dynamic sizes are
// assumed equal).
// CHECK-DAG: #[[A:.+]] = affine_map<(d0, d1, d2) -> (d0, 0, d2)>
// CHECK-DAG: #[[B:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @broadcast
// CHECK-SAME: (%[[X:.+]]: tensor<?x1x5xf32>, %[[Y:.+]]: tensor<?x5xf32>)
// CHECK-DAG: %[[D0:.+]] = tensor.dim %[[X]], %c0
// CHECK-DAG: %[[D1:.+]] = tensor.dim %[[Y]], %c0
// CHECK: %[[E:.+]] = tensor.empty(%[[D0]], %[[D1]]) : tensor<?x?x5xf32>
// CHECK: linalg.generic {indexing_maps = [#[[A]], #[[B]], #[[ID]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[X]], %[[Y]] : tensor<?x1x5xf32>, tensor<?x5xf32>) outs(%[[E]] : tensor<?x?x5xf32>)
// CHECK: arith.subf
func.func @broadcast(%x: tensor<?x1x5xf32>, %y: tensor<?x5xf32>) -> tensor<?x?x5xf32> {
  %0 = "onnx.Sub"(%x, %y) : (tensor<?x1x5xf32>, tensor<?x5xf32>) -> tensor<?x?x5xf32>
  return %0 : tensor<?x?x5xf32>
}

// -----

// Integer division truncates; unsigned types compute on their signless
// view (unrealized casts the LLVM lowering reconciles) with unsigned ops.
// CHECK-LABEL: func.func @integers
// CHECK: arith.divsi
// CHECK: builtin.unrealized_conversion_cast %{{.*}} : ui8 to i8
// CHECK: arith.divui
// CHECK: builtin.unrealized_conversion_cast %{{.*}} : i8 to ui8
// CHECK: arith.maxui
// CHECK: arith.minsi
// Sum of three operands.
// CHECK: arith.addi
// CHECK-NEXT: arith.addi
func.func @integers(%a: tensor<4xi64>, %b: tensor<4xi64>, %u: tensor<4xui8>, %v: tensor<4xui8>) -> (tensor<4xi64>, tensor<4xui8>, tensor<4xui8>, tensor<4xi64>, tensor<4xi64>) {
  %0 = "onnx.Div"(%a, %b) : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  %1 = "onnx.Div"(%u, %v) : (tensor<4xui8>, tensor<4xui8>) -> tensor<4xui8>
  %2 = "onnx.Max"(%u, %v) : (tensor<4xui8>, tensor<4xui8>) -> tensor<4xui8>
  %3 = "onnx.Min"(%a, %b) : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  %4 = "onnx.Sum"(%a, %b, %a) : (tensor<4xi64>, tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  return %0, %1, %2, %3, %4 : tensor<4xi64>, tensor<4xui8>, tensor<4xui8>, tensor<4xi64>, tensor<4xi64>
}

// -----

// Comparisons and logic give i1; Where selects.
// CHECK-LABEL: func.func @compare
// CHECK: arith.cmpf oeq
// CHECK: arith.cmpi sgt
// CHECK: arith.cmpf olt
// CHECK: arith.cmpf oge
// CHECK: arith.cmpi sle
// CHECK: arith.andi
// CHECK: arith.ori
// CHECK: arith.select
func.func @compare(%x: tensor<3xf32>, %y: tensor<3xf32>, %i: tensor<3xi32>, %j: tensor<3xi32>) -> (tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xf32>) {
  %0 = "onnx.Equal"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
  %1 = "onnx.Greater"(%i, %j) : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi1>
  %2 = "onnx.Less"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
  %3 = "onnx.GreaterOrEqual"(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
  %4 = "onnx.LessOrEqual"(%i, %j) : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi1>
  %5 = "onnx.And"(%0, %2) : (tensor<3xi1>, tensor<3xi1>) -> tensor<3xi1>
  %6 = "onnx.Or"(%0, %2) : (tensor<3xi1>, tensor<3xi1>) -> tensor<3xi1>
  %7 = "onnx.Where"(%5, %x, %y) : (tensor<3xi1>, tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xi1>, tensor<3xf32>
}

// -----

// Cast: float to int truncates toward zero (fptosi), to bool is != 0,
// bool to float is 0/1; CastLike takes the target's element type.
// CHECK-LABEL: func.func @cast
// CHECK: arith.fptosi %{{.*}} : f32 to i64
// CHECK: arith.cmpf une, %{{.*}}, %cst
// CHECK: arith.uitofp %{{.*}} : i1 to f32
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: arith.sitofp %{{.*}} : i64 to f64
// CHECK: arith.cmpi ne
func.func @cast(%x: tensor<3xf32>, %b: tensor<3xi1>, %i: tensor<3xi64>, %like: tensor<1xf16>) -> (tensor<3xi64>, tensor<3xi1>, tensor<3xf32>, tensor<3xf16>, tensor<3xf64>, tensor<3xi1>, tensor<3xf32>) {
  %0 = "onnx.Cast"(%x) {to = 7 : i64} : (tensor<3xf32>) -> tensor<3xi64>
  %1 = "onnx.Cast"(%x) {to = 9 : i64} : (tensor<3xf32>) -> tensor<3xi1>
  %2 = "onnx.Cast"(%b) {to = 1 : i64} : (tensor<3xi1>) -> tensor<3xf32>
  %3 = "onnx.CastLike"(%x, %like) : (tensor<3xf32>, tensor<1xf16>) -> tensor<3xf16>
  %4 = "onnx.Cast"(%i) {to = 11 : i64} : (tensor<3xi64>) -> tensor<3xf64>
  %5 = "onnx.Cast"(%i) {to = 9 : i64} : (tensor<3xi64>) -> tensor<3xi1>
  %6 = "onnx.Cast"(%x) {to = 1 : i64} : (tensor<3xf32>) -> tensor<3xf32>
  return %0, %1, %2, %3, %4, %5, %6 : tensor<3xi64>, tensor<3xi1>, tensor<3xf32>, tensor<3xf16>, tensor<3xf64>, tensor<3xi1>, tensor<3xf32>
}

// -----

// Pow: float bases in their type (integer exponents converted); integer
// bases through f64.
// CHECK-LABEL: func.func @pow
// CHECK: arith.sitofp %{{.*}} : i64 to f32
// CHECK-NEXT: math.powf %{{.*}}, %{{.*}} : f32
// CHECK: arith.sitofp %{{.*}} : i32 to f64
// CHECK: math.powf %{{.*}} : f64
// CHECK-NEXT: arith.fptosi %{{.*}} : f64 to i32
func.func @pow(%x: tensor<3xf32>, %y: tensor<3xi64>, %i: tensor<3xi32>) -> (tensor<3xf32>, tensor<3xi32>) {
  %0 = "onnx.Pow"(%x, %y) : (tensor<3xf32>, tensor<3xi64>) -> tensor<3xf32>
  %1 = "onnx.Pow"(%i, %i) : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi32>
  return %0, %1 : tensor<3xf32>, tensor<3xi32>
}

// -----

// Clip reads its bounds once, outside the generic.
// CHECK-LABEL: func.func @clip
// CHECK-SAME: (%[[X:.+]]: tensor<2x3xf32>, %[[LO:.+]]: tensor<f32>, %[[HI:.+]]: tensor<f32>)
// CHECK-DAG: %[[L:.+]] = tensor.extract %[[LO]][]
// CHECK-DAG: %[[H:.+]] = tensor.extract %[[HI]][]
// CHECK: linalg.generic
// CHECK: %[[M:.+]] = arith.maximumf %{{.*}}, %[[L]]
// CHECK-NEXT: arith.minimumf %[[M]], %[[H]]
func.func @clip(%x: tensor<2x3xf32>, %lo: tensor<f32>, %hi: tensor<f32>) -> tensor<2x3xf32> {
  %0 = "onnx.Clip"(%x, %lo, %hi) : (tensor<2x3xf32>, tensor<f32>, tensor<f32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// Dynamic sizes facing each other that are not provably the same may be 1
// at run time: the result's size is the larger, and an operand whose size
// differs from it is first copied broadcast (scf.if; index 0 where its size
// is 1). Sizes of the same origin (here: an operand and a result computed
// from it) keep the plain generic.
// CHECK-LABEL: func.func @runtime_broadcast
// CHECK-SAME: (%[[S:.+]]: tensor<2x?x3xf32>, %[[M:.+]]: tensor<2x?x3xf32>)
// CHECK-DAG: %[[DS:.+]] = tensor.dim %[[S]], %c1
// CHECK-DAG: %[[DM:.+]] = tensor.dim %[[M]], %c1
// CHECK: %[[N:.+]] = arith.maxsi %[[DS]], %[[DM]] : index
// CHECK: %[[NE:.+]] = arith.cmpi ne, %{{.+}}, %[[N]]
// CHECK: %[[S2:.+]] = scf.if %[[NE]] -> (tensor<2x?x3xf32>)
// CHECK: tensor.empty(%[[N]]) : tensor<2x?x3xf32>
// CHECK: %[[ONE:.+]] = arith.cmpi eq, %{{.+}}, %c1
// CHECK: %[[I:.+]] = arith.select %[[ONE]], %c0, %{{.+}} : index
// CHECK: tensor.extract %[[S]][%{{.+}}, %[[I]], %{{.+}}]
// CHECK: else
// CHECK-NEXT: scf.yield %[[S]]
// CHECK: %[[M2:.+]] = scf.if
// CHECK: tensor.extract %[[M]]
// CHECK: %[[E:.+]] = tensor.empty(%[[N]]) : tensor<2x?x3xf32>
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[S2]], %[[M2]] : tensor<2x?x3xf32>, tensor<2x?x3xf32>) outs(%[[E]] : tensor<2x?x3xf32>)
// CHECK: arith.addf
// CHECK-NOT: scf.if
// CHECK: math.exp
// CHECK-NOT: scf.if
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[S]], %{{.+}} : tensor<2x?x3xf32>, tensor<2x?x3xf32>)
// CHECK: arith.mulf
func.func @runtime_broadcast(%s: tensor<2x?x3xf32>, %m: tensor<2x?x3xf32>) -> (tensor<2x?x3xf32>, tensor<2x?x3xf32>) {
  %0 = "onnx.Add"(%s, %m) : (tensor<2x?x3xf32>, tensor<2x?x3xf32>) -> tensor<2x?x3xf32>
  %1 = "onnx.Exp"(%s) : (tensor<2x?x3xf32>) -> tensor<2x?x3xf32>
  %2 = "onnx.Mul"(%s, %1) : (tensor<2x?x3xf32>, tensor<2x?x3xf32>) -> tensor<2x?x3xf32>
  return %0, %2 : tensor<2x?x3xf32>, tensor<2x?x3xf32>
}
