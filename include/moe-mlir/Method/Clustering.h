//===- Clustering.h - Expert similarity and balanced clusters --*- C++ -*-===//

#ifndef MOE_MLIR_METHOD_CLUSTERING_H
#define MOE_MLIR_METHOD_CLUSTERING_H

#include "moe-mlir/Method/Matrix.h"

#include <string>

namespace mlir::moe::method {

/// An E x E symmetric matrix, row-major, in double.
struct Similarity {
  int64_t size = 0;
  std::vector<double> values;
  double at(int64_t i, int64_t j) const { return values[i * size + j]; }
};

/// Accumulates cosine similarity between E vectors that arrive in pieces:
/// call add() with one E x chunk block per piece (row e = the next `chunk`
/// elements of vector e), then finish(). The Gram matrix is accumulated in
/// double across pieces so billions of elements lose no precision; each
/// piece may be freed after add() returns, so a Mixtral-sized layer streams
/// through without a copy. Pieces may be of any width: add() cuts them into
/// cache-sized column chunks (float syrk within a chunk, double across
/// chunks) and splits wide ones between threads.
class CosineAccumulator {
public:
  /// `threads`: 0 means as many as BLAS uses by default.
  explicit CosineAccumulator(int64_t numVectors, int threads = 0);
  /// Returns false, adding nothing, when block.rows != numVectors.
  bool add(ConstMatrixRef block);
  /// Cosine similarity; a zero vector has similarity 0 with every other
  /// vector and 1 with itself.
  Similarity finish() const;

private:
  int64_t n;
  int threads;
  std::vector<double> gram;
};

/// sum_k weights[k] * parts[k] / sum_k weights[k], over the parts given
/// (a part with weight 0 or empty values is skipped). Returns an empty
/// Similarity (size 0) when no part is used, the weights used sum to 0, or
/// the parts used differ in size.
Similarity fuseSimilarities(const std::vector<Similarity> &parts,
                            const std::vector<double> &weights);

enum class ClusterMethod { KMeans, Agglomerative };

struct ClusterOptions {
  int64_t numClusters = 1;
  ClusterMethod method = ClusterMethod::KMeans;
  uint64_t seed = 0;
  /// K-means++ restarts (at least 1 is run); the one with the highest
  /// within-cluster similarity wins, ties to the earlier restart.
  int64_t restarts = 8;
};

/// Balanced clustering of E experts from their fused similarity S:
/// cluster sizes differ by at most one (floor(E/G) or ceil(E/G)), every
/// cluster non-empty, deterministic for a seed on every platform (the
/// random numbers are portable; the spectral embedding comes from LAPACK,
/// so another LAPACK could only differ where its rounding flips a near-tie).
/// KMeans: K-means++ (seeded, portable RNG) and Lloyd on a spectral
/// embedding of S (the G leading eigenvectors of D^-1/2 A D^-1/2 with
/// A = (S + 1) / 2, zero diagonal; rows normalised), then a balancing repair
/// that moves the experts losing least mean similarity out of over-full
/// clusters. Agglomerative: average-linkage merging under the size cap
/// ceil(E/G) (the seed is unused). Both finish with a local search that
/// swaps experts between clusters (or moves one between a ceil- and a
/// floor-sized cluster) while that raises the total within-cluster
/// similarity, so neither ends where a single swap would improve it.
/// numClusters is clamped to [1, E]; G = E gives singletons. Empty when
/// similarity.values does not hold size x size values.
/// Returns the cluster of each expert, clusters numbered by their lowest
/// member (cluster 0 holds expert 0).
std::vector<int64_t> clusterExperts(const Similarity &similarity,
                                    const ClusterOptions &options);

/// Mean similarity between members of the same cluster (pairs i < j); 0
/// when no cluster has two members or the assignment does not match.
double withinClusterSimilarity(const Similarity &similarity,
                               const std::vector<int64_t> &assignment);

} // namespace mlir::moe::method

#endif // MOE_MLIR_METHOD_CLUSTERING_H
