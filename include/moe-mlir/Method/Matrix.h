//===- Matrix.h - Row-major float matrix views ------------------*- C++ -*-===//
//
// The numerics of the method (SVD, clustering, quantisation, layer
// evaluation) work on plain row-major float32 buffers so they can read
// weights in place from dense_resource blobs and never need MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_METHOD_MATRIX_H
#define MOE_MLIR_METHOD_MATRIX_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mlir::moe::method {

/// A read-only row-major matrix: element (i, j) at data[i * ld + j].
struct ConstMatrixRef {
  const float *data = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
  ConstMatrixRef() = default;
  ConstMatrixRef(const float *data, int64_t rows, int64_t cols)
      : data(data), rows(rows), cols(cols), ld(cols) {}
  ConstMatrixRef(const float *data, int64_t rows, int64_t cols, int64_t ld)
      : data(data), rows(rows), cols(cols), ld(ld) {}
  const float *row(int64_t i) const { return data + i * ld; }
};

/// An owning row-major matrix.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
  Matrix() = default;
  Matrix(int64_t rows, int64_t cols)
      : rows(rows), cols(cols), data(static_cast<size_t>(rows * cols)) {}
  float *row(int64_t i) { return data.data() + i * cols; }
  const float *row(int64_t i) const { return data.data() + i * cols; }
  ConstMatrixRef ref() const { return {data.data(), rows, cols}; }
};

} // namespace mlir::moe::method

#endif // MOE_MLIR_METHOD_MATRIX_H
