//===- ClusteringTest.cpp - Cosine similarity and balanced clusters -------===//

#include "moe-mlir/Method/Clustering.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace mlir::moe::method;

namespace {

/// Clusters renumbered by lowest member, to compare partitions.
std::vector<int64_t> canonical(const std::vector<int64_t> &assign) {
  std::vector<int64_t> map(assign.size() + 1, -1), out(assign.size());
  int64_t next = 0;
  for (size_t i = 0; i < assign.size(); ++i) {
    if (map[assign[i]] < 0)
      map[assign[i]] = next++;
    out[i] = map[assign[i]];
  }
  return out;
}

struct Planted {
  std::vector<int64_t> truth;
  std::vector<float> vectors; // E x dim, row-major
};

/// Expert e = base[truth[e]] + noise, with the truth shuffled so clusters
/// are not contiguous runs of experts; sizes floor/ceil(E/G).
Planted plant(int64_t e, int64_t g, int64_t dim, double noise, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  Planted p;
  for (int64_t i = 0; i < e; ++i)
    p.truth.push_back(i % g);
  std::shuffle(p.truth.begin(), p.truth.end(), gen);
  std::vector<float> bases(static_cast<size_t>(g * dim));
  for (float &b : bases)
    b = normal(gen);
  p.vectors.resize(static_cast<size_t>(e * dim));
  for (int64_t i = 0; i < e; ++i)
    for (int64_t k = 0; k < dim; ++k)
      p.vectors[i * dim + k] =
          bases[p.truth[i] * dim + k] + static_cast<float>(noise) * normal(gen);
  return p;
}

/// Similarity streamed in uneven pieces through a strided view.
Similarity similarityOf(const std::vector<float> &v, int64_t e, int64_t dim) {
  CosineAccumulator acc(e);
  for (int64_t c = 0; c < dim;) {
    int64_t width = std::min<int64_t>(dim - c, 37 + c % 500);
    EXPECT_TRUE(acc.add(ConstMatrixRef(v.data() + c, e, width, dim)));
    c += width;
  }
  return acc.finish();
}

void expectBalanced(const std::vector<int64_t> &assign, int64_t g) {
  int64_t e = static_cast<int64_t>(assign.size());
  std::vector<int64_t> sizes(g, 0);
  for (int64_t c : assign) {
    ASSERT_GE(c, 0);
    ASSERT_LT(c, g);
    ++sizes[c];
  }
  for (int64_t s : sizes) {
    EXPECT_GE(s, e / g);
    EXPECT_LE(s, (e + g - 1) / g);
  }
  EXPECT_EQ(assign[0], 0); // numbered by lowest member
  EXPECT_EQ(canonical(assign), assign);
}

TEST(Clustering, RecoversPlantedClusters) {
  struct Case {
    int64_t experts, clusters;
  };
  for (Case c :
       {Case{8, 2}, Case{32, 8}, Case{12, 3}, Case{10, 3}, Case{16, 5}}) {
    for (unsigned seed : {1u, 2u, 3u}) {
      Planted p = plant(c.experts, c.clusters, 1500, 0.3, seed);
      Similarity s = similarityOf(p.vectors, c.experts, 1500);
      for (ClusterMethod method :
           {ClusterMethod::KMeans, ClusterMethod::Agglomerative}) {
        ClusterOptions o;
        o.numClusters = c.clusters;
        o.method = method;
        o.seed = seed;
        std::vector<int64_t> got = clusterExperts(s, o);
        expectBalanced(got, c.clusters);
        EXPECT_EQ(got, canonical(p.truth))
            << c.experts << " experts, " << c.clusters << " clusters, seed "
            << seed << ", method " << int(method);
        EXPECT_GT(withinClusterSimilarity(s, got), 0.8);
      }
    }
  }
}

TEST(Clustering, SameSeedSameAssignment) {
  // No planted structure: the answer depends on the seed, but only on it.
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  std::vector<float> v(24 * 300);
  for (float &x : v)
    x = normal(gen);
  Similarity s = similarityOf(v, 24, 300);
  ClusterOptions o;
  o.numClusters = 5;
  o.seed = 77;
  std::vector<int64_t> first = clusterExperts(s, o);
  EXPECT_EQ(clusterExperts(s, o), first);
  expectBalanced(first, 5);
  o.restarts = 1;
  std::vector<int64_t> single = clusterExperts(s, o);
  expectBalanced(single, 5);
  // More restarts never do worse than their first one.
  EXPECT_GE(withinClusterSimilarity(s, first) + 1e-12,
            withinClusterSimilarity(s, single));
}

TEST(Clustering, EdgeCounts) {
  Planted p = plant(7, 7, 50, 0.1, 4);
  Similarity s = similarityOf(p.vectors, 7, 50);
  ClusterOptions o;
  for (ClusterMethod method :
       {ClusterMethod::KMeans, ClusterMethod::Agglomerative}) {
    o.method = method;
    o.numClusters = 1;
    EXPECT_EQ(clusterExperts(s, o), std::vector<int64_t>(7, 0));
    o.numClusters = 7;
    EXPECT_EQ(clusterExperts(s, o),
              (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
    o.numClusters = 50; // clamped to E
    EXPECT_EQ(clusterExperts(s, o),
              (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
    o.numClusters = 3;
    expectBalanced(clusterExperts(s, o), 3);
    o.numClusters = 6;
    expectBalanced(clusterExperts(s, o), 6);
  }
  EXPECT_TRUE(clusterExperts(Similarity(), o).empty());
  Similarity broken;
  broken.size = 3;
  broken.values = {1, 0};
  EXPECT_TRUE(clusterExperts(broken, o).empty());
}

TEST(Clustering, CosineMatchesDirectComputation) {
  const int64_t e = 5, dim = (1 << 18) + 123; // wide enough to use threads
  std::mt19937 gen(9);
  std::normal_distribution<float> normal;
  std::vector<float> v(e * dim);
  for (float &x : v)
    x = normal(gen);
  for (int64_t k = 0; k < dim; ++k) {
    v[1 * dim + k] = 0.5f * v[k] + 0.1f * v[1 * dim + k]; // correlated
    v[3 * dim + k] = 0.0f;                                // zero vector
    v[4 * dim + k] = -2.0f * v[k];                        // anti-parallel
  }
  for (int threads : {1, 2}) {
    CosineAccumulator acc(e, threads);
    EXPECT_TRUE(acc.add(ConstMatrixRef(v.data(), e, dim)));
    EXPECT_FALSE(acc.add(ConstMatrixRef(v.data(), e - 1, dim)));
    Similarity s = acc.finish();
    ASSERT_EQ(s.size, e);
    for (int64_t i = 0; i < e; ++i)
      for (int64_t j = 0; j < e; ++j) {
        double dot = 0, ni = 0, nj = 0;
        for (int64_t k = 0; k < dim; ++k) {
          dot += double(v[i * dim + k]) * v[j * dim + k];
          ni += double(v[i * dim + k]) * v[i * dim + k];
          nj += double(v[j * dim + k]) * v[j * dim + k];
        }
        double expected =
            i == j ? 1.0 : (ni > 0 && nj > 0 ? dot / std::sqrt(ni * nj) : 0.0);
        EXPECT_NEAR(s.at(i, j), expected, 1e-6) << i << "," << j;
      }
    EXPECT_NEAR(s.at(0, 4), -1.0, 1e-6);
    EXPECT_EQ(s.at(3, 3), 1.0);
    EXPECT_EQ(s.at(0, 3), 0.0);
  }
}

TEST(Clustering, FuseAndWithin) {
  Similarity a, b;
  a.size = b.size = 2;
  a.values = {1, 0.2, 0.2, 1};
  b.values = {1, 0.8, 0.8, 1};
  Similarity f = fuseSimilarities({a, b}, {1, 3});
  ASSERT_EQ(f.size, 2);
  EXPECT_DOUBLE_EQ(f.at(0, 1), (0.2 + 3 * 0.8) / 4);
  EXPECT_DOUBLE_EQ(f.at(1, 1), 1.0);
  // Zero weights and empty parts are skipped; mismatched sizes refused.
  Similarity empty, c;
  c.size = 3;
  c.values.assign(9, 0.5);
  EXPECT_DOUBLE_EQ(fuseSimilarities({a, empty, c}, {2, 5, 0}).at(0, 1), 0.2);
  EXPECT_EQ(fuseSimilarities({a, c}, {1, 1}).size, 0);
  EXPECT_EQ(fuseSimilarities({a}, {0}).size, 0);

  Similarity s;
  s.size = 4;
  s.values = {1,   0.9, 0.1, 0.2, 0.9, 1,   0.3, 0.4,
              0.1, 0.3, 1,   0.7, 0.2, 0.4, 0.7, 1};
  EXPECT_DOUBLE_EQ(withinClusterSimilarity(s, {0, 0, 1, 1}), (0.9 + 0.7) / 2);
  EXPECT_DOUBLE_EQ(withinClusterSimilarity(s, {0, 1, 2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(withinClusterSimilarity(s, {0, 0, 0}), 0.0);
  ClusterOptions o;
  o.numClusters = 2;
  EXPECT_EQ(clusterExperts(s, o), (std::vector<int64_t>{0, 0, 1, 1}));
  o.method = ClusterMethod::Agglomerative;
  EXPECT_EQ(clusterExperts(s, o), (std::vector<int64_t>{0, 0, 1, 1}));
}

} // namespace
