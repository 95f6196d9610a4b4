//===- Quantization.cpp - Group-wise integer and float storage ------------===//
//
// Follows python/moe_mlir/quant.py step for step (scale in double, rounded
// up to its storage type, zero point and codes from the stored scale, ties
// to even) so that both produce the same bytes for the same weights.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Method/Quantization.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace mlir::moe::method {
namespace {

uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float floatOf(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

int scaleBytes(ScaleType type) { return type == ScaleType::F32 ? 4 : 2; }

/// The smallest value of `type` not below `scale` (> 0, finite), as stored
/// bits and as a double. Every code is computed from this stored value, so
/// rounding the scale up can only widen the grid.
uint32_t roundScaleUp(double scale, ScaleType type, double &stored) {
  switch (type) {
  case ScaleType::F32: {
    float f = static_cast<float>(scale);
    if (static_cast<double>(f) < scale)
      f = std::nextafter(f, std::numeric_limits<float>::infinity());
    stored = f;
    return bitsOf(f);
  }
  case ScaleType::F16: {
    // float -> half may round twice, but the result is one of the two halves
    // around `scale` and the check below picks the upper one either way.
    uint16_t h = floatToHalf(static_cast<float>(scale));
    if (static_cast<double>(halfToFloat(h)) < scale && h < 0x7BFF)
      ++h; // positive finite halves are ordered like their bits
    stored = halfToFloat(h);
    return h;
  }
  case ScaleType::BF16: {
    uint16_t b = floatToBFloat16(static_cast<float>(scale));
    if (static_cast<double>(bfloat16ToFloat(b)) < scale && b < 0x7F7F)
      ++b;
    stored = bfloat16ToFloat(b);
    return b;
  }
  }
  stored = scale;
  return 0;
}

void storeScale(uint8_t *dst, uint32_t bits, ScaleType type) {
  for (int i = 0; i < scaleBytes(type); ++i)
    dst[i] = static_cast<uint8_t>(bits >> (8 * i));
}

double loadScale(const uint8_t *src, ScaleType type) {
  uint32_t bits = 0;
  for (int i = 0; i < scaleBytes(type); ++i)
    bits |= static_cast<uint32_t>(src[i]) << (8 * i);
  switch (type) {
  case ScaleType::F32:
    return floatOf(bits);
  case ScaleType::F16:
    return halfToFloat(static_cast<uint16_t>(bits));
  case ScaleType::BF16:
    return bfloat16ToFloat(static_cast<uint16_t>(bits));
  }
  return 0;
}

int64_t groupLength(int64_t cols, int64_t groupSize) {
  return groupSize > 0 ? groupSize : cols;
}

int64_t packedCols(int64_t cols, int bits) {
  return bits == 4 ? (cols + 1) / 2 : cols;
}

void putCode(uint8_t *row, int64_t j, unsigned code, const IntQuantParams &p) {
  if (p.bits == 8) {
    row[j] = static_cast<uint8_t>(code);
    return;
  }
  bool low = (j % 2 == 0) != p.highNibbleFirst;
  row[j / 2] |= static_cast<uint8_t>(low ? code : code << 4);
}

unsigned getCode(const uint8_t *row, int64_t j, const IntQuantParams &p) {
  if (p.bits == 8)
    return row[j];
  bool low = (j % 2 == 0) != p.highNibbleFirst;
  uint8_t byte = row[j / 2];
  return low ? byte & 0x0F : byte >> 4;
}

} // namespace

int64_t numGroups(int64_t cols, int64_t groupSize) {
  if (groupSize <= 0)
    return 1;
  return (std::max<int64_t>(cols, 0) + groupSize - 1) / groupSize;
}

IntQuantized quantizeRows(ConstMatrixRef a, const IntQuantParams &params) {
  IntQuantized q;
  if ((params.bits != 4 && params.bits != 8) || a.rows < 0 || a.cols < 0)
    return q;
  const int64_t rows = a.rows, cols = a.cols;
  const int64_t groups = numGroups(cols, params.groupSize);
  const int64_t length = groupLength(cols, params.groupSize);
  const int64_t rowBytes = packedCols(cols, params.bits);
  const int sb = scaleBytes(params.scaleType);
  const double qmax = (1 << params.bits) - 1;
  const double half = 1 << (params.bits - 1);
  q.rows = rows;
  q.cols = cols;
  q.groups = groups;
  q.codes.assign(static_cast<size_t>(rows * rowBytes), 0);
  q.scales.assign(static_cast<size_t>(rows * groups * sb), 0);
  if (!params.symmetric)
    q.zeroPoints.assign(static_cast<size_t>(rows * groups), 0);

  for (int64_t i = 0; i < rows; ++i) {
    const float *w = a.row(i);
    uint8_t *codes = q.codes.data() + i * rowBytes;
    for (int64_t g = 0; g < groups; ++g) {
      int64_t begin = g * length, end = std::min(cols, begin + length);
      double lo = 0, hi = 0, absMax = 0;
      for (int64_t j = begin; j < end; ++j) {
        lo = std::min<double>(lo, w[j]);
        hi = std::max<double>(hi, w[j]);
        absMax = std::max<double>(absMax, std::fabs(w[j]));
      }
      double scale = params.symmetric ? absMax / (half - 1) : (hi - lo) / qmax;
      if (!(scale > 0))
        scale = 1.0;
      double stored = 0;
      uint32_t bits = roundScaleUp(scale, params.scaleType, stored);
      storeScale(q.scales.data() + (i * groups + g) * sb, bits,
                 params.scaleType);
      double zp = half;
      if (!params.symmetric) {
        zp = std::clamp(std::nearbyint(-lo / stored), 0.0, qmax);
        q.zeroPoints[i * groups + g] = static_cast<uint8_t>(zp);
      }
      for (int64_t j = begin; j < end; ++j) {
        double code = std::nearbyint(w[j] / stored) + zp;
        // Written so that NaN lands on 0 rather than in a cast's UB.
        code = code >= 0 ? std::min(code, qmax) : 0.0;
        putCode(codes, j, static_cast<unsigned>(code), params);
      }
    }
  }
  return q;
}

void dequantizeRows(const IntQuantized &q, const IntQuantParams &params,
                    float *out) {
  if ((params.bits != 4 && params.bits != 8) || q.rows < 0 || q.cols < 0)
    return;
  const int64_t rows = q.rows, cols = q.cols, groups = q.groups;
  const int64_t rowBytes = packedCols(cols, params.bits);
  const int sb = scaleBytes(params.scaleType);
  if (groups != numGroups(cols, params.groupSize) ||
      q.codes.size() != static_cast<size_t>(rows * rowBytes) ||
      q.scales.size() != static_cast<size_t>(rows * groups * sb) ||
      (!params.symmetric &&
       q.zeroPoints.size() != static_cast<size_t>(rows * groups)))
    return;
  const int64_t length = groupLength(cols, params.groupSize);
  const double half = 1 << (params.bits - 1);
  for (int64_t i = 0; i < rows; ++i) {
    const uint8_t *codes = q.codes.data() + i * rowBytes;
    for (int64_t g = 0; g < groups; ++g) {
      double scale =
          loadScale(q.scales.data() + (i * groups + g) * sb, params.scaleType);
      double zp = params.symmetric ? half : q.zeroPoints[i * groups + g];
      int64_t begin = g * length, end = std::min(cols, begin + length);
      // (q - zp) * scale is exact in double (a 9-bit integer times a 24-bit
      // mantissa), so the float result is rounded once.
      for (int64_t j = begin; j < end; ++j)
        out[i * cols + j] =
            static_cast<float>((getCode(codes, j, params) - zp) * scale);
    }
  }
}

uint16_t floatToHalf(float value) {
  uint32_t x = bitsOf(value);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000) // NaN: keep the top payload bits, force quiet
    return sign | 0x7E00 | static_cast<uint16_t>((abs >> 13) & 0x3FF);
  if (abs == 0x7F800000)
    return sign | 0x7C00;
  // 65520 = 65504 + half an ulp: from here on, nearest-even rounds to
  // infinity; saturate instead.
  if (abs >= 0x477FF000)
    return sign | 0x7BFF;
  if (abs >= 0x38800000) { // normal half (>= 2^-14)
    // Rebias the exponent (127 -> 15) and round the 13 dropped bits to
    // nearest even; a carry out of the mantissa correctly bumps the exponent.
    uint32_t rebased = abs - 0x38000000;
    return sign | static_cast<uint16_t>(
                      (rebased + 0x0FFF + ((rebased >> 13) & 1)) >> 13);
  }
  if (abs <= 0x33000000) // <= 2^-25: rounds to zero (2^-25 is a tie to 0)
    return sign;
  // Subnormal half: value in units of 2^-24 is mantissa >> shift.
  uint32_t exponent = abs >> 23;
  uint32_t mantissa = (abs & 0x7FFFFF) | 0x800000;
  uint32_t shift = 126 - exponent; // 14..24
  uint32_t result = mantissa >> shift;
  uint32_t rest = mantissa & ((1u << shift) - 1);
  uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (result & 1)))
    ++result; // may carry into the smallest normal, which is still right
  return sign | static_cast<uint16_t>(result);
}

float halfToFloat(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1F;
  uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0x1F)
    return floatOf(sign | 0x7F800000 | (mantissa << 13));
  if (exponent != 0)
    return floatOf(sign | ((exponent + 112) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24 is exact in float.
  float magnitude = static_cast<float>(mantissa) * 0x1.0p-24f;
  return sign ? -magnitude : magnitude;
}

uint16_t floatToBFloat16(float value) {
  uint32_t x = bitsOf(value);
  uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000)
    return static_cast<uint16_t>((x >> 16) | 0x0040);
  if (abs == 0x7F800000)
    return static_cast<uint16_t>(x >> 16);
  uint32_t rounded = x + 0x7FFF + ((x >> 16) & 1);
  if ((rounded & 0x7F800000) == 0x7F800000) // rounded into infinity
    return static_cast<uint16_t>(((x >> 16) & 0x8000) | 0x7F7F);
  return static_cast<uint16_t>(rounded >> 16);
}

float bfloat16ToFloat(uint16_t bits) {
  return floatOf(static_cast<uint32_t>(bits) << 16);
}

} // namespace mlir::moe::method
