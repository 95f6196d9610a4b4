//===- Clustering.cpp - Expert similarity and balanced clusters -----------===//

#include "moe-mlir/Method/Clustering.h"

#include "Parallel.h"
#include "Random.h"
#include "SmallGram.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

namespace mlir::moe::method {

//===----------------------------------------------------------------------===//
// Cosine similarity
//===----------------------------------------------------------------------===//

namespace {

/// Columns per float syrk: the E x chunk slab stays in L2/L3 and a float
/// sum of 16K products keeps ~1e-6 relative accuracy before it reaches
/// the double accumulator.
constexpr int64_t kChunkColumns = 1 << 14;

/// Below this many columns a piece is not worth waking a second thread.
constexpr int64_t kParallelColumns = 1 << 18;

} // namespace

CosineAccumulator::CosineAccumulator(int64_t numVectors, int threads)
    : n(std::max<int64_t>(numVectors, 0)),
      threads(detail::resolveThreads(threads)),
      gram(static_cast<size_t>(n * n), 0.0) {}

bool CosineAccumulator::add(ConstMatrixRef block) {
  if (block.rows != n || block.cols < 0)
    return false;
  if (n == 0 || block.cols == 0)
    return true;
  // Leading dimensions past INT_MAX (strides between whole expert tensors)
  // cannot reach BLAS directly; such chunks are packed first.
  bool pack = block.ld > INT_MAX;
  int workers = block.cols >= kParallelColumns ? threads : 1;
  std::vector<std::vector<double>> partial(
      static_cast<size_t>(workers),
      std::vector<double>(static_cast<size_t>(n * n), 0.0));
  detail::parallelRanges(
      workers, block.cols, kChunkColumns,
      [&](int64_t begin, int64_t end, int w) {
        std::vector<float> slab, g(static_cast<size_t>(n * n));
        for (int64_t c = begin; c < end; c += kChunkColumns) {
          int64_t width = std::min(kChunkColumns, end - c);
          const float *data = block.data + c;
          int64_t ld = block.ld;
          // A few experts: the direct kernel (memory-bound, reads each
          // column once); many: ssyrk (compute-bound).
          if (!detail::smallGram(data, ld, n, width, g.data())) {
            if (pack) {
              slab.resize(static_cast<size_t>(n * width));
              for (int64_t r = 0; r < n; ++r)
                std::memcpy(slab.data() + r * width, block.row(r) + c,
                            sizeof(float) * width);
              data = slab.data();
              ld = width;
            }
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans,
                        static_cast<int>(n), static_cast<int>(width), 1.0f,
                        data, static_cast<int>(ld), 0.0f, g.data(),
                        static_cast<int>(n));
          }
          std::vector<double> &acc = partial[w];
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = i; j < n; ++j)
              acc[i * n + j] += g[i * n + j];
        }
      });
  for (const std::vector<double> &acc : partial)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i; j < n; ++j)
        gram[i * n + j] += acc[i * n + j];
  return true;
}

Similarity CosineAccumulator::finish() const {
  Similarity s;
  s.size = n;
  s.values.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    s.values[i * n + i] = 1.0;
    for (int64_t j = i + 1; j < n; ++j) {
      double norm = std::sqrt(gram[i * n + i]) * std::sqrt(gram[j * n + j]);
      double c = norm > 0 ? gram[i * n + j] / norm : 0.0;
      c = std::clamp(c, -1.0, 1.0);
      s.values[i * n + j] = s.values[j * n + i] = c;
    }
  }
  return s;
}

Similarity fuseSimilarities(const std::vector<Similarity> &parts,
                            const std::vector<double> &weights) {
  Similarity fused;
  double total = 0;
  bool any = false;
  for (size_t k = 0; k < parts.size() && k < weights.size(); ++k) {
    const Similarity &p = parts[k];
    if (weights[k] == 0 || p.values.empty())
      continue;
    if (p.values.size() != static_cast<size_t>(p.size * p.size) ||
        (any && p.size != fused.size))
      return Similarity();
    if (!any) {
      fused.size = p.size;
      fused.values.assign(p.values.size(), 0.0);
      any = true;
    }
    for (size_t i = 0; i < p.values.size(); ++i)
      fused.values[i] += weights[k] * p.values[i];
    total += weights[k];
  }
  if (!any || total == 0)
    return Similarity();
  for (double &v : fused.values)
    v /= total;
  return fused;
}

//===----------------------------------------------------------------------===//
// Balanced clustering
//===----------------------------------------------------------------------===//

namespace {

using Assignment = std::vector<int64_t>;

std::vector<int64_t> clusterSizes(const Assignment &assign, int64_t g) {
  std::vector<int64_t> sizes(static_cast<size_t>(g), 0);
  for (int64_t c : assign)
    ++sizes[c];
  return sizes;
}

/// Sum of S over pairs i < j in the same cluster: the objective that the
/// restarts, the repair and the local search all compare. With balanced
/// sizes the number of such pairs is fixed, so it orders assignments like
/// withinClusterSimilarity does.
double withinSum(const Similarity &s, const Assignment &assign) {
  double sum = 0;
  for (int64_t i = 0; i < s.size; ++i)
    for (int64_t j = i + 1; j < s.size; ++j)
      if (assign[i] == assign[j])
        sum += s.at(i, j);
  return sum;
}

/// sumTo[i * g + c] = sum of S(i, k) over the members k of cluster c
/// (including i itself when it is a member).
std::vector<double> sumsToClusters(const Similarity &s,
                                   const Assignment &assign, int64_t g) {
  std::vector<double> sumTo(static_cast<size_t>(s.size * g), 0.0);
  for (int64_t i = 0; i < s.size; ++i)
    for (int64_t k = 0; k < s.size; ++k)
      sumTo[i * g + assign[k]] += s.at(i, k);
  return sumTo;
}

void moveExpert(const Similarity &s, Assignment &assign,
                std::vector<double> &sumTo, std::vector<int64_t> &sizes,
                int64_t g, int64_t expert, int64_t to) {
  int64_t from = assign[expert];
  for (int64_t k = 0; k < s.size; ++k) {
    sumTo[k * g + from] -= s.at(k, expert);
    sumTo[k * g + to] += s.at(k, expert);
  }
  --sizes[from];
  ++sizes[to];
  assign[expert] = to;
}

/// Moves experts until every size is floor(E/G) or ceil(E/G). Each move
/// goes from a cluster at least two larger than its target, and one of the
/// two is outside the allowed sizes, so the sum of squared sizes falls and
/// the loop ends. Among such moves it takes the one losing the least mean
/// similarity: mean S to the members left behind minus mean S to the new
/// cluster (0 for an empty one).
void balance(const Similarity &s, Assignment &assign, int64_t g) {
  int64_t e = s.size, lo = e / g, hi = (e + g - 1) / g;
  std::vector<int64_t> sizes = clusterSizes(assign, g);
  std::vector<double> sumTo = sumsToClusters(s, assign, g);
  for (;;) {
    auto [minIt, maxIt] = std::minmax_element(sizes.begin(), sizes.end());
    if (*maxIt - *minIt <= 1)
      return;
    double bestLoss = INFINITY;
    int64_t bestExpert = -1, bestTo = -1;
    for (int64_t i = 0; i < e; ++i) {
      int64_t a = assign[i];
      double stay =
          sizes[a] > 1 ? (sumTo[i * g + a] - s.at(i, i)) / (sizes[a] - 1) : 0.0;
      for (int64_t b = 0; b < g; ++b) {
        if (sizes[a] < sizes[b] + 2 || (sizes[a] <= hi && sizes[b] >= lo))
          continue;
        double join = sizes[b] > 0 ? sumTo[i * g + b] / sizes[b] : 0.0;
        double loss = stay - join;
        if (loss < bestLoss) {
          bestLoss = loss;
          bestExpert = i;
          bestTo = b;
        }
      }
    }
    if (bestExpert < 0)
      return; // unreachable: the largest and smallest clusters qualify
    moveExpert(s, assign, sumTo, sizes, g, bestExpert, bestTo);
  }
}

/// Best-improvement local search over swaps (and moves between a ceil- and
/// a floor-sized cluster, which keep the sizes balanced) on the total
/// within-cluster similarity. Gains below `tolerance` are rounding noise
/// and would let the search cycle.
void refine(const Similarity &s, Assignment &assign, int64_t g) {
  int64_t e = s.size, lo = e / g, hi = (e + g - 1) / g;
  std::vector<int64_t> sizes = clusterSizes(assign, g);
  std::vector<double> sumTo = sumsToClusters(s, assign, g);
  double scale = 0;
  for (double v : s.values)
    scale = std::max(scale, std::fabs(v));
  const double tolerance = 1e-12 * std::max(scale, 1e-300);
  for (int64_t iter = 0; iter < 100 * e; ++iter) {
    double bestGain = tolerance;
    int64_t bestI = -1, bestJ = -1, bestTo = -1;
    for (int64_t i = 0; i < e; ++i) {
      int64_t a = assign[i];
      double stayI = sumTo[i * g + a] - s.at(i, i);
      for (int64_t j = i + 1; j < e; ++j) {
        int64_t b = assign[j];
        if (a == b)
          continue;
        double gain = (sumTo[i * g + b] - s.at(i, j)) +
                      (sumTo[j * g + a] - s.at(i, j)) - stayI -
                      (sumTo[j * g + b] - s.at(j, j));
        if (gain > bestGain) {
          bestGain = gain;
          bestI = i;
          bestJ = j;
        }
      }
      if (lo == hi || sizes[a] != hi)
        continue;
      for (int64_t b = 0; b < g; ++b) {
        if (sizes[b] != lo)
          continue;
        double gain = sumTo[i * g + b] - stayI;
        if (gain > bestGain) {
          bestGain = gain;
          bestI = i;
          bestJ = -1;
          bestTo = b;
        }
      }
    }
    if (bestI < 0)
      return;
    if (bestJ >= 0) {
      int64_t a = assign[bestI], b = assign[bestJ];
      moveExpert(s, assign, sumTo, sizes, g, bestI, b);
      moveExpert(s, assign, sumTo, sizes, g, bestJ, a);
    } else {
      moveExpert(s, assign, sumTo, sizes, g, bestI, bestTo);
    }
  }
}

/// Clusters renumbered in order of their lowest member.
Assignment renumber(const Assignment &assign, int64_t g) {
  std::vector<int64_t> map(static_cast<size_t>(g), -1);
  int64_t next = 0;
  Assignment out(assign.size());
  for (size_t i = 0; i < assign.size(); ++i) {
    int64_t &m = map[assign[i]];
    if (m < 0)
      m = next++;
    out[i] = m;
  }
  return out;
}

/// Rows of the G leading eigenvectors of the normalised affinity, each row
/// scaled to unit length (Ng-Jordan-Weiss). E x G, row-major.
std::vector<double> spectralEmbedding(const Similarity &s, int64_t g) {
  int64_t e = s.size;
  std::vector<double> a(static_cast<size_t>(e * e), 0.0), degree(e, 0.0);
  for (int64_t i = 0; i < e; ++i)
    for (int64_t j = 0; j < e; ++j)
      if (i != j) {
        double v = (std::clamp(s.at(i, j), -1.0, 1.0) + 1.0) / 2.0;
        a[i * e + j] = v;
        degree[i] += v;
      }
  for (int64_t i = 0; i < e; ++i)
    for (int64_t j = 0; j < e; ++j)
      a[i * e + j] /= std::sqrt(std::max(degree[i], 1e-300)) *
                      std::sqrt(std::max(degree[j], 1e-300));
  std::vector<double> w(static_cast<size_t>(e));
  std::vector<double> x(static_cast<size_t>(e * g), 0.0);
  // Symmetric, so row- and column-major agree; eigenvalues come ascending.
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<int>(e), a.data(),
                     static_cast<int>(e), w.data()) != 0)
    return x; // all points equal: K-means then falls back on index order
  for (int64_t i = 0; i < e; ++i) {
    double norm = 0;
    for (int64_t c = 0; c < g; ++c) {
      double v = a[i + (e - 1 - c) * e]; // column e-1-c, column-major
      x[i * g + c] = v;
      norm += v * v;
    }
    norm = std::sqrt(norm);
    if (norm > 0)
      for (int64_t c = 0; c < g; ++c)
        x[i * g + c] /= norm;
  }
  return x;
}

double distance2(const double *x, const double *y, int64_t d) {
  double sum = 0;
  for (int64_t k = 0; k < d; ++k)
    sum += (x[k] - y[k]) * (x[k] - y[k]);
  return sum;
}

/// K-means++ seeding and Lloyd iterations on E points of dimension d.
/// Nearest-centre ties go to the lower cluster; a cluster that empties is
/// reseeded with the point farthest from its centre.
Assignment kmeans(const std::vector<double> &x, int64_t e, int64_t d, int64_t g,
                  detail::Rng &rng) {
  std::vector<double> centers(static_cast<size_t>(g * d));
  std::vector<char> chosen(static_cast<size_t>(e), 0);
  std::vector<double> dist(static_cast<size_t>(e), INFINITY);
  auto place = [&](int64_t c, int64_t point) {
    chosen[point] = 1;
    std::copy(x.begin() + point * d, x.begin() + (point + 1) * d,
              centers.begin() + c * d);
    for (int64_t i = 0; i < e; ++i)
      dist[i] = std::min(dist[i], distance2(&x[i * d], &centers[c * d], d));
  };
  place(0, static_cast<int64_t>(rng.below(static_cast<uint64_t>(e))));
  for (int64_t c = 1; c < g; ++c) {
    double total = 0;
    for (int64_t i = 0; i < e; ++i)
      total += chosen[i] ? 0.0 : dist[i];
    int64_t pick = -1;
    if (total > 0) {
      double target = rng.uniform() * total, run = 0;
      for (int64_t i = 0; i < e && pick < 0; ++i) {
        if (chosen[i] || dist[i] <= 0)
          continue;
        run += dist[i];
        if (run > target)
          pick = i;
      }
      for (int64_t i = e - 1; i >= 0 && pick < 0; --i)
        if (!chosen[i] && dist[i] > 0)
          pick = i; // the running sum rounded below target
    }
    for (int64_t i = 0; i < e && pick < 0; ++i)
      if (!chosen[i])
        pick = i; // every point sits on a centre: take them in order
    place(c, pick);
  }

  Assignment assign(static_cast<size_t>(e), -1);
  for (int iter = 0; iter < 100; ++iter) {
    bool changed = false;
    for (int64_t i = 0; i < e; ++i) {
      int64_t best = 0;
      double bestDist = distance2(&x[i * d], &centers[0], d);
      for (int64_t c = 1; c < g; ++c) {
        double dc = distance2(&x[i * d], &centers[c * d], d);
        if (dc < bestDist) {
          bestDist = dc;
          best = c;
        }
      }
      if (assign[i] != best) {
        assign[i] = best;
        changed = true;
      }
    }
    if (!changed)
      break;
    std::vector<int64_t> count(static_cast<size_t>(g), 0);
    std::fill(centers.begin(), centers.end(), 0.0);
    for (int64_t i = 0; i < e; ++i) {
      ++count[assign[i]];
      for (int64_t k = 0; k < d; ++k)
        centers[assign[i] * d + k] += x[i * d + k];
    }
    for (int64_t c = 0; c < g; ++c) {
      if (count[c] > 0) {
        for (int64_t k = 0; k < d; ++k)
          centers[c * d + k] /= count[c];
        continue;
      }
      int64_t far = 0;
      double farDist = -1;
      for (int64_t i = 0; i < e; ++i) {
        double di = distance2(&x[i * d], &centers[assign[i] * d], d);
        if (di > farDist) {
          farDist = di;
          far = i;
        }
      }
      std::copy(x.begin() + far * d, x.begin() + (far + 1) * d,
                centers.begin() + c * d);
    }
  }
  return assign;
}

Assignment clusterKMeans(const Similarity &s, int64_t g,
                         const ClusterOptions &options) {
  std::vector<double> x = spectralEmbedding(s, g);
  Assignment best;
  double bestScore = -INFINITY;
  int64_t restarts = std::max<int64_t>(options.restarts, 1);
  for (int64_t r = 0; r < restarts; ++r) {
    detail::Rng rng(options.seed, static_cast<uint64_t>(r));
    Assignment assign = kmeans(x, s.size, g, g, rng);
    balance(s, assign, g);
    refine(s, assign, g);
    double score = withinSum(s, assign);
    if (score > bestScore) {
      bestScore = score;
      best = std::move(assign);
    }
  }
  return best;
}

/// Average linkage under the size cap ceil(E/G). Cluster slots are named by
/// their lowest member (merging into the lower slot keeps that true), so
/// ties between equal linkages go to the lowest members. When no merge fits
/// under the cap (e.g. sizes 2,2,2,2 with cap 3) the smallest merge is
/// taken and balance() repairs the result.
Assignment clusterAgglomerative(const Similarity &s, int64_t g) {
  int64_t e = s.size, cap = (e + g - 1) / g;
  std::vector<double> link(s.values); // sums of S between slots
  std::vector<int64_t> size(static_cast<size_t>(e), 1);
  std::vector<char> alive(static_cast<size_t>(e), 1);
  Assignment assign(static_cast<size_t>(e));
  for (int64_t i = 0; i < e; ++i)
    assign[i] = i;
  for (int64_t count = e; count > g; --count) {
    int64_t bestA = -1, bestB = -1, fallbackA = -1, fallbackB = -1;
    double best = -INFINITY, fallbackLink = -INFINITY;
    int64_t fallbackSize = INT64_MAX;
    for (int64_t a = 0; a < e; ++a) {
      if (!alive[a])
        continue;
      for (int64_t b = a + 1; b < e; ++b) {
        if (!alive[b])
          continue;
        double avg = link[a * e + b] / static_cast<double>(size[a] * size[b]);
        int64_t merged = size[a] + size[b];
        if (merged <= cap && avg > best) {
          best = avg;
          bestA = a;
          bestB = b;
        }
        if (merged < fallbackSize ||
            (merged == fallbackSize && avg > fallbackLink)) {
          fallbackSize = merged;
          fallbackLink = avg;
          fallbackA = a;
          fallbackB = b;
        }
      }
    }
    if (bestA < 0) {
      bestA = fallbackA;
      bestB = fallbackB;
    }
    for (int64_t k = 0; k < e; ++k) {
      link[bestA * e + k] += link[bestB * e + k];
      link[k * e + bestA] = link[bestA * e + k];
    }
    size[bestA] += size[bestB];
    alive[bestB] = 0;
    for (int64_t &c : assign)
      if (c == bestB)
        c = bestA;
  }
  // Slot numbers to 0..G-1 before the repair, which indexes by cluster.
  assign = renumber(assign, e);
  balance(s, assign, g);
  refine(s, assign, g);
  return assign;
}

} // namespace

std::vector<int64_t> clusterExperts(const Similarity &similarity,
                                    const ClusterOptions &options) {
  int64_t e = similarity.size;
  if (e <= 0 || similarity.values.size() != static_cast<size_t>(e * e))
    return {};
  int64_t g = std::clamp<int64_t>(options.numClusters, 1, e);
  Assignment assign(static_cast<size_t>(e), 0);
  if (g == e) {
    for (int64_t i = 0; i < e; ++i)
      assign[i] = i;
    return assign;
  }
  if (g == 1)
    return assign;
  assign = options.method == ClusterMethod::KMeans
               ? clusterKMeans(similarity, g, options)
               : clusterAgglomerative(similarity, g);
  return renumber(assign, g);
}

double withinClusterSimilarity(const Similarity &similarity,
                               const std::vector<int64_t> &assignment) {
  int64_t e = similarity.size;
  if (assignment.size() != static_cast<size_t>(e) ||
      similarity.values.size() != static_cast<size_t>(e * e))
    return 0;
  double sum = 0;
  int64_t pairs = 0;
  for (int64_t i = 0; i < e; ++i)
    for (int64_t j = i + 1; j < e; ++j)
      if (assignment[i] == assignment[j]) {
        sum += similarity.at(i, j);
        ++pairs;
      }
  return pairs > 0 ? sum / pairs : 0.0;
}

} // namespace mlir::moe::method
