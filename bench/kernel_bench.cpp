//===- kernel_bench.cpp - What one core can do with decode-shaped loops ---===//
//
// The ceilings the decode kernels of convert-moe-to-linalg are measured
// against (docs/benchmarks.md, "What bounds the targets not met"), on one
// core, with weights streamed from memory (a 34 MiB stack of rows, larger
// than the last-level cache of the machines we measure on):
//
//   read       a plain streaming read of the bytes (the core's bandwidth);
//   int8-f32   single-row dot products of INT8 codes, 4 rows per step, codes
//              widened to f32 (zero-extend, convert, FMA) and scaled once per
//              group of 32, the next block's rows prefetched: the loop
//              productRowsQuantized emits;
//   int8-i16   the same with the token rounded to int16 and vpmaddwd: half
//              the instructions per code, the one faster formulation found;
//   f16-4x3    16 token rows by f16 weight rows, register tile 4 rows x 3
//              outputs, output groups outer (the row tiles of decode);
//   f16-2x6    the same with 2 rows x 6 outputs.
//
// Each loop runs `reps` times, alternating with the others; the table gives
// the median rate. The loops are written with AVX2 intrinsics and need an
// AVX2/FMA/F16C core; elsewhere the bench says so and exits.
//
//   kernel-bench [--reps N]
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int kIn = 1024;  // inputs per row (the medium layer's H)
constexpr int kGroup = 32; // codes per scale group
constexpr int kGroups = kIn / kGroup;
constexpr int kTokens = 16; // rows of the f16 tile loops
constexpr size_t kBytes = size_t(34) << 20;

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 float laneSum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_hadd_ps(a, a);
  a = _mm_hadd_ps(a, a);
  return _mm_cvtss_f32(a);
}

AVX2 int64_t streamRead(const uint8_t *w, size_t n) {
  __m256i acc = _mm256_setzero_si256();
  for (size_t i = 0; i < n; i += 128)
    for (int j = 0; j < 4; ++j)
      acc = _mm256_add_epi8(
          acc, _mm256_loadu_si256(
                   reinterpret_cast<const __m256i *>(w + i + 32 * j)));
  return _mm256_extract_epi64(acc, 0);
}

/// The group sums of one step formulation: codes widened to f32 and FMA'd
/// with an f32 token (the loop moe-mlir emits).
struct F32Step {
  using Token = float;
  using Acc = __m256;
  static constexpr int kCodes = 8;
  AVX2 static Acc zero() { return _mm256_setzero_ps(); }
  AVX2 static Acc step(Acc acc, const uint8_t *codes, const Token *x) {
    __m256i c = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i *>(codes)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(c), _mm256_loadu_ps(x), acc);
  }
  AVX2 static __m256 toF32(Acc acc) { return acc; }
};

/// The same with the token rounded to int16: u8 x i16 pairs summed by
/// vpmaddwd, the group sum converted once.
struct I16Step {
  using Token = int16_t;
  using Acc = __m256i;
  static constexpr int kCodes = 16;
  AVX2 static Acc zero() { return _mm256_setzero_si256(); }
  AVX2 static Acc step(Acc acc, const uint8_t *codes, const Token *x) {
    __m256i c = _mm256_cvtepu8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(codes)));
    return _mm256_add_epi32(
        acc, _mm256_madd_epi16(
                 c, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x))));
  }
  AVX2 static __m256 toF32(Acc acc) { return _mm256_cvtepi32_ps(acc); }
};

/// y[o] = sum_g table[o, g] * sum_{c in g} w[o, c] x[c], 4 rows at a time,
/// the next block's rows prefetched one group at a time.
template <typename Step>
AVX2 void int8Rows(const uint8_t *w, const typename Step::Token *x,
                   const float *table, float *y, int rows) {
  for (int o = 0; o < rows; o += 4) {
    __m256 total[4];
    for (auto &t : total)
      t = _mm256_setzero_ps();
    for (int g = 0; g < kGroups; ++g) {
      for (int j = 0; j < 4; ++j)
        _mm_prefetch(reinterpret_cast<const char *>(
                         w + size_t(o + 4 + j) * kIn + g * kGroup),
                     _MM_HINT_T0);
      typename Step::Acc dot[4];
      for (auto &d : dot)
        d = Step::zero();
      for (int s = 0; s < kGroup; s += Step::kCodes)
        for (int j = 0; j < 4; ++j)
          dot[j] = Step::step(dot[j], w + size_t(o + j) * kIn + g * kGroup + s,
                              x + g * kGroup + s);
      for (int j = 0; j < 4; ++j)
        total[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(table + j * kGroups + g),
                                   Step::toF32(dot[j]), total[j]);
    }
    for (int j = 0; j < 4; ++j)
      y[o + j] = laneSum(total[j]);
  }
}

/// y[n, o] = x[n, :] . w[o, :] for kTokens rows, a register tile of `R`
/// rows by `O` outputs, output groups outer, the next group's weight rows
/// prefetched during the first row block.
template <int R, int O>
AVX2 void f16Tile(const uint16_t *w, const float *x, float *y, int outs) {
  for (int o = 0; o + O <= outs; o += O) {
    for (int r = 0; r < kTokens; r += R) {
      __m256 acc[R * O];
      for (auto &a : acc)
        a = _mm256_setzero_ps();
      for (int k = 0; k < kIn; k += 8) {
        if (r == 0 && k % 32 == 0)
          for (int j = 0; j < O; ++j)
            _mm_prefetch(
                reinterpret_cast<const char *>(w + size_t(o + O + j) * kIn + k),
                _MM_HINT_T0);
        __m256 xv[R];
        for (int i = 0; i < R; ++i)
          xv[i] = _mm256_loadu_ps(x + size_t(r + i) * kIn + k);
        for (int j = 0; j < O; ++j) {
          __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128(
              reinterpret_cast<const __m128i *>(w + size_t(o + j) * kIn + k)));
          for (int i = 0; i < R; ++i)
            acc[i * O + j] = _mm256_fmadd_ps(xv[i], wv, acc[i * O + j]);
        }
      }
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < O; ++j)
          y[(r + i) * outs + o + j] = laneSum(acc[i * O + j]);
    }
  }
}
#endif

struct Loop {
  std::string name, unit;
  double work; // bytes or flops per call
  std::function<void()> run;
  std::vector<double> rates;
};

} // namespace

int main(int argc, char **argv) {
  int reps = 7;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: kernel-bench [--reps N]\n");
      return 2;
    }
  }
  if (reps < 1) {
    std::fprintf(stderr, "kernel-bench: --reps must be at least 1\n");
    return 2;
  }
#if !defined(__x86_64__)
  std::printf("kernel-bench: the loops are AVX2 code; not an x86-64 machine\n");
  return 0;
#else
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
      !__builtin_cpu_supports("f16c")) {
    std::printf("kernel-bench: this CPU lacks AVX2/FMA/F16C\n");
    return 0;
  }
  std::mt19937 gen(1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> unit(-1, 1);
  // The rows of each loop: enough for kBytes, plus a block of 8 the
  // prefetches of the last rows may touch.
  int codeRows = int(kBytes / kIn) / 4 * 4;
  int f16Outs = int(kBytes / 2 / kIn) / 6 * 6;
  auto *w =
      static_cast<uint8_t *>(std::aligned_alloc(64, kBytes + 16 * kIn * 2));
  for (size_t i = 0; i < kBytes + 16 * kIn * 2; ++i)
    w[i] = uint8_t(byte(gen));
  auto *w16 = reinterpret_cast<uint16_t *>(w);
  // f16 weights in [0.5, 2): no NaNs or denormals in the random bits.
  for (size_t i = 0; i < kBytes / 2 + 16 * kIn; ++i)
    w16[i] = uint16_t(0x3800 | (w16[i] & 0x7ff));
  std::vector<uint8_t> codes(kBytes + 16 * kIn);
  for (auto &c : codes)
    c = uint8_t(byte(gen));
  std::vector<float> x(size_t(kTokens) * kIn), table(4 * kGroups, 0.01f);
  std::vector<int16_t> x16(kIn);
  for (auto &v : x)
    v = unit(gen);
  for (int i = 0; i < kIn; ++i)
    x16[i] = int16_t(x[i] * 32767);
  std::vector<float> y(size_t(kTokens) * f16Outs + codeRows);
  int64_t sink = 0;

  std::vector<Loop> loops;
  loops.push_back({"read", "GB/s", double(kBytes),
                   [&] { sink += streamRead(codes.data(), kBytes); }});
  loops.push_back({"int8-f32", "GB/s", double(codeRows) * kIn, [&] {
                     int8Rows<F32Step>(codes.data(), x.data(), table.data(),
                                       y.data(), codeRows);
                   }});
  loops.push_back({"int8-i16", "GB/s", double(codeRows) * kIn, [&] {
                     int8Rows<I16Step>(codes.data(), x16.data(), table.data(),
                                       y.data(), codeRows);
                   }});
  loops.push_back({"f16-4x3", "GFLOP/s",
                   2.0 * kTokens * kIn * (f16Outs / 3 * 3),
                   [&] { f16Tile<4, 3>(w16, x.data(), y.data(), f16Outs); }});
  loops.push_back({"f16-2x6", "GFLOP/s", 2.0 * kTokens * kIn * f16Outs,
                   [&] { f16Tile<2, 6>(w16, x.data(), y.data(), f16Outs); }});
  for (auto &l : loops)
    l.run(); // warm-up: page faults, frequency
  for (int r = 0; r < reps; ++r)
    for (auto &l : loops) {
      double t0 = now();
      l.run();
      l.rates.push_back(l.work / (now() - t0) / 1e9);
    }
  std::printf("one core, %d reps, weights %zu MiB (sink %d)\n", reps,
              kBytes >> 20, int(sink & 1) + int(y[0] != y[0]));
  std::printf("%-10s %10s  %s\n", "loop", "median", "unit");
  for (auto &l : loops) {
    std::sort(l.rates.begin(), l.rates.end());
    std::printf("%-10s %10.1f  %s\n", l.name.c_str(),
                l.rates[l.rates.size() / 2], l.unit.c_str());
  }
  std::free(w);
  return 0;
#endif
}
