//===- Quantization.h - Group-wise integer and float storage ----*- C++ -*-===//
//
// The encodings of #moe.quant (docs/semantics.md): unsigned codes q with
// value (q - zp) * scale, one scale per group of `groupSize` elements along
// a row, i4 codes two per byte with the even element in the low nibble
// (or the high one). python/moe_mlir/quant.py implements the same rules;
// both give the same bytes.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_METHOD_QUANTIZATION_H
#define MOE_MLIR_METHOD_QUANTIZATION_H

#include "moe-mlir/Method/Matrix.h"

namespace mlir::moe::method {

enum class ScaleType { F16, BF16, F32 };

struct IntQuantParams {
  int bits = 4;           ///< 4 or 8
  int64_t groupSize = 32; ///< 0 (or negative): one group per row
  bool symmetric = false; ///< zero point fixed at 2^(bits-1)
  ScaleType scaleType = ScaleType::F16;
  /// i4 packing: element 2j in the high nibble of byte j
  /// (`high_nibble_first`) instead of the low one.
  bool highNibbleFirst = false;
};

/// Storage of a quantised rows x cols matrix.
struct IntQuantized {
  int64_t rows = 0, cols = 0, groups = 0;
  /// rows x ceil(cols/2) bytes (i4; an odd last element pads its byte with
  /// a 0 code) or rows x cols (i8).
  std::vector<uint8_t> codes;
  /// rows x groups scales, stored in `scaleType` (2 or 4 bytes each, little
  /// endian), ready to be written as a tensor.
  std::vector<uint8_t> scales;
  /// rows x groups zero points (asymmetric only), one byte each.
  std::vector<uint8_t> zeroPoints;
};

/// Group count of a row of `cols` elements: ceil(cols / groupSize), 1 when
/// groupSize <= 0.
int64_t numGroups(int64_t cols, int64_t groupSize);

/// Quantises `a` row by row. Every element's round-trip error is at most
/// half its group's quantisation step (the scale as stored): asymmetric
/// groups cover [min(min, 0), max(max, 0)] with scale (hi - lo) / (2^b - 1)
/// and zero point round(-lo / scale); symmetric ones [-8s, 7s] (i4) with
/// s = absmax / (2^(b-1) - 1) = absmax / 7. Scales are rounded up to the
/// next value of `scaleType` so the grid still covers the group (codes are
/// computed with the stored scale, in double, ties to even). An all-zero
/// group gets scale 1 (zero point 0, or 2^(b-1) when symmetric): any scale
/// dequantises it to exactly 0, and 1 keeps the scale tensor free of zeros
/// and subnormals. The bound cannot hold for a group whose scale exceeds the
/// scale type's range (|w| > 65504 * 7 with f16 scales); its scale
/// saturates to the largest finite value. `bits` other than 4 and 8 give an
/// empty result (all sizes 0).
IntQuantized quantizeRows(ConstMatrixRef a, const IntQuantParams &params);

/// Inverse of quantizeRows, into `out` (rows x cols, contiguous); each value
/// is (q - zp) * scale rounded once to float. Does nothing when `q` does not
/// match `params` (sizes of codes, scales or zero points).
void dequantizeRows(const IntQuantized &q, const IntQuantParams &params,
                    float *out);

/// IEEE binary16 and bfloat16 conversion, round to nearest even; finite
/// values beyond the range saturate to the largest finite value (+-65504,
/// +-3.3895e38) instead of becoming infinite. Infinities stay infinite and
/// NaNs stay NaN (quiet, sign kept).
uint16_t floatToHalf(float value);
float halfToFloat(uint16_t bits);
uint16_t floatToBFloat16(float value);
float bfloat16ToFloat(uint16_t bits);

} // namespace mlir::moe::method

#endif // MOE_MLIR_METHOD_QUANTIZATION_H
