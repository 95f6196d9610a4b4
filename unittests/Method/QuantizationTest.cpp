//===- QuantizationTest.cpp - Group-wise quantisation and 16-bit floats ---===//

#include "moe-mlir/Method/Quantization.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>

using namespace mlir::moe::method;

namespace {

double storedScale(const IntQuantized &q, ScaleType type, int64_t index) {
  const uint8_t *p = q.scales.data() + index * (type == ScaleType::F32 ? 4 : 2);
  if (type == ScaleType::F32) {
    uint32_t bits = p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  uint16_t bits = static_cast<uint16_t>(p[0] | p[1] << 8);
  return type == ScaleType::F16 ? halfToFloat(bits) : bfloat16ToFloat(bits);
}

/// Rows with a mix of cases: Gaussian, all positive, all negative, one
/// outlier, all zero, and a zero group inside a non-zero row.
std::vector<float> testRows(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> a(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      float v = normal(gen);
      switch (i % 6) {
      case 1:
        v = std::fabs(v) + 0.01f;
        break;
      case 2:
        v = -std::fabs(v) - 0.3f;
        break;
      case 3:
        v = j == 5 ? 40.0f : v;
        break;
      case 4:
        v = 0;
        break;
      case 5:
        v = j < 32 ? 0.0f : v * 1000;
        break;
      }
      a[i * cols + j] = v;
    }
  return a;
}

TEST(Quantization, ErrorWithinHalfAStep) {
  const int64_t rows = 12;
  for (int64_t cols : {64, 67}) {
    std::vector<float> a = testRows(rows, cols, static_cast<unsigned>(cols));
    for (int bits : {4, 8})
      for (bool symmetric : {false, true})
        for (int64_t groupSize : {0, 32, 7})
          for (ScaleType type :
               {ScaleType::F16, ScaleType::BF16, ScaleType::F32}) {
            IntQuantParams p;
            p.bits = bits;
            p.symmetric = symmetric;
            p.groupSize = groupSize;
            p.scaleType = type;
            IntQuantized q =
                quantizeRows(ConstMatrixRef(a.data(), rows, cols), p);
            int64_t groups = numGroups(cols, groupSize);
            ASSERT_EQ(q.groups, groups);
            ASSERT_EQ(q.codes.size(),
                      size_t(rows * (bits == 4 ? (cols + 1) / 2 : cols)));
            ASSERT_EQ(q.zeroPoints.size(),
                      symmetric ? 0u : size_t(rows * groups));
            std::vector<float> back(a.size());
            dequantizeRows(q, p, back.data());
            int64_t length = groupSize > 0 ? groupSize : cols;
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t g = 0; g < groups; ++g) {
                double scale = storedScale(q, type, i * groups + g);
                ASSERT_GT(scale, 0);
                double lo = 0, hi = 0, absMax = 0;
                for (int64_t j = g * length;
                     j < std::min(cols, (g + 1) * length); ++j) {
                  lo = std::min<double>(lo, a[i * cols + j]);
                  hi = std::max<double>(hi, a[i * cols + j]);
                  absMax = std::max<double>(absMax, std::fabs(a[i * cols + j]));
                }
                double raw = symmetric ? absMax / ((1 << (bits - 1)) - 1)
                                       : (hi - lo) / ((1 << bits) - 1);
                if (raw > 0) {
                  EXPECT_GE(scale, raw); // rounded up, never down
                  EXPECT_LE(scale, raw * (1 + 1.0 / 64));
                } else {
                  EXPECT_EQ(scale, 1.0);
                }
                for (int64_t j = g * length;
                     j < std::min(cols, (g + 1) * length); ++j) {
                  double w = a[i * cols + j], r = back[i * cols + j];
                  EXPECT_LE(std::fabs(w - r),
                            scale / 2 + std::fabs(r) * FLT_EPSILON)
                      << "bits " << bits << " sym " << symmetric << " group "
                      << groupSize << " row " << i << " col " << j;
                  if (w == 0) {
                    EXPECT_EQ(r, 0.0f); // zero is always on the grid
                  }
                }
              }
          }
  }
}

TEST(Quantization, PackingOrderOnKnownBytes) {
  // Symmetric i4 with absmax 7 has scale 1 and zero point 8, so -7, -6, -5
  // become codes 1, 2, 3.
  std::vector<float> row = {-7, -6, -5};
  IntQuantParams p;
  p.bits = 4;
  p.symmetric = true;
  p.groupSize = 0;
  IntQuantized q = quantizeRows(ConstMatrixRef(row.data(), 1, 3), p);
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{0x21, 0x03}));
  ASSERT_EQ(q.scales.size(), 2u);
  EXPECT_EQ(q.scales[0] | q.scales[1] << 8, 0x3C00); // 1.0 in f16
  p.highNibbleFirst = true;
  IntQuantized high = quantizeRows(ConstMatrixRef(row.data(), 1, 3), p);
  EXPECT_EQ(high.codes, (std::vector<uint8_t>{0x12, 0x30}));
  std::vector<float> back(3);
  dequantizeRows(high, p, back.data());
  EXPECT_EQ(back, row);

  // Asymmetric: [0, 15] has scale 1 and zero point 0.
  std::vector<float> wide = {1, 2, 3, 15};
  IntQuantParams a;
  a.groupSize = 0;
  IntQuantized qa = quantizeRows(ConstMatrixRef(wide.data(), 1, 4), a);
  EXPECT_EQ(qa.codes, (std::vector<uint8_t>{0x21, 0xF3}));
  EXPECT_EQ(qa.zeroPoints, (std::vector<uint8_t>{0}));

  // i8 codes are bytes; [-1, 3] has scale 4/255 (rounded up) and zero point
  // round(63.75 - a hair) = 64.
  std::vector<float> pm = {-1, 3};
  IntQuantParams p8;
  p8.bits = 8;
  p8.groupSize = 0;
  p8.scaleType = ScaleType::F32;
  IntQuantized q8 = quantizeRows(ConstMatrixRef(pm.data(), 1, 2), p8);
  EXPECT_EQ(q8.zeroPoints, (std::vector<uint8_t>{64}));
  EXPECT_EQ(q8.codes, (std::vector<uint8_t>{0, 255}));
}

TEST(Quantization, DequantizesHandMadeStorage) {
  IntQuantized q;
  q.rows = 1;
  q.cols = 3;
  q.groups = 2; // group size 2: {0, 1}, {2}
  q.codes = {0x5A, 0x07};
  q.scales = {0x00, 0x38, 0x00, 0x40}; // f16 0.5, 2.0
  q.zeroPoints = {8, 3};
  IntQuantParams p;
  p.groupSize = 2;
  std::vector<float> out(3);
  dequantizeRows(q, p, out.data());
  EXPECT_EQ(out, (std::vector<float>{(10 - 8) * 0.5f, (5 - 8) * 0.5f,
                                     (7 - 3) * 2.0f}));
  // Storage that does not match the parameters is refused.
  std::vector<float> untouched = {9, 9, 9};
  p.groupSize = 0;
  dequantizeRows(q, p, untouched.data());
  EXPECT_EQ(untouched, (std::vector<float>{9, 9, 9}));
  EXPECT_EQ(numGroups(3, 2), 2);
  EXPECT_EQ(numGroups(64, 32), 2);
  EXPECT_EQ(numGroups(65, 32), 3);
  EXPECT_EQ(numGroups(65, 0), 1);
  IntQuantParams bad;
  bad.bits = 3;
  std::vector<float> one = {1};
  EXPECT_TRUE(
      quantizeRows(ConstMatrixRef(one.data(), 1, 1), bad).codes.empty());
}

float fromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(Quantization, HalfConversionKnownPatterns) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(floatToHalf(0.0f), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(floatToHalf(65519.0f), 0x7BFF); // rounds down to the max
  EXPECT_EQ(floatToHalf(65520.0f), 0x7BFF); // would round to inf: saturates
  EXPECT_EQ(floatToHalf(1e10f), 0x7BFF);
  EXPECT_EQ(floatToHalf(-1e10f), 0xFBFF);
  EXPECT_EQ(floatToHalf(INFINITY), 0x7C00);
  EXPECT_EQ(floatToHalf(-INFINITY), 0xFC00);
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(NAN))));
  // Subnormals: 2^-24 is the smallest; 2^-25 ties to even (0); a hair more
  // rounds up; 3 * 2^-25 ties between 1 and 2 units and goes to 2.
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(floatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(floatToHalf(3 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(floatToHalf(1023 * std::ldexp(1.0f, -24)), 0x03FF);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -14)), 0x0400);
  // The largest subnormal plus a half unit ties to the even smallest normal.
  EXPECT_EQ(floatToHalf(1023.5f * std::ldexp(1.0f, -24)), 0x0400);
  EXPECT_EQ(floatToHalf(1e-30f), 0x0000);
  // Ties to even in the normal range: 1 + 2^-11 is half-way between 1 and
  // 1 + 2^-10.
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(floatToHalf(fromBits(0x3F801001)), 0x3C01); // just above a tie
  // A mantissa carry bumps the exponent: 2 - 2^-12 rounds to 2.
  EXPECT_EQ(floatToHalf(2.0f - std::ldexp(1.0f, -12)), 0x4000);
  EXPECT_EQ(halfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(halfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x7C00), INFINITY);
  // Every finite half and infinity survives a round trip.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x03FF))
      continue; // NaN
    ASSERT_EQ(floatToHalf(halfToFloat(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Quantization, BFloat16ConversionKnownPatterns) {
  EXPECT_EQ(floatToBFloat16(1.0f), 0x3F80);
  EXPECT_EQ(floatToBFloat16(-1.0f), 0xBF80);
  EXPECT_EQ(floatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3F80); // tie
  EXPECT_EQ(floatToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(floatToBFloat16(FLT_MAX), 0x7F7F); // saturates
  EXPECT_EQ(floatToBFloat16(-FLT_MAX), 0xFF7F);
  EXPECT_EQ(floatToBFloat16(INFINITY), 0x7F80);
  EXPECT_TRUE(std::isnan(bfloat16ToFloat(floatToBFloat16(NAN))));
  EXPECT_EQ(floatToBFloat16(fromBits(0x00000001)), 0x0000); // subnormal tie
  EXPECT_EQ(floatToBFloat16(fromBits(0x00018000)), 0x0002);
  EXPECT_EQ(bfloat16ToFloat(0x3F80), 1.0f);
  for (uint32_t b = 0; b < 0x10000; ++b) {
    if ((b & 0x7F80) == 0x7F80 && (b & 0x007F))
      continue;
    ASSERT_EQ(floatToBFloat16(bfloat16ToFloat(static_cast<uint16_t>(b))), b);
  }
}

} // namespace
