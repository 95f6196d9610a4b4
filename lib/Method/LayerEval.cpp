//===- LayerEval.cpp - Evaluating a MoE layer in C++ ----------------------===//
//
// Mirrors python/moe_mlir/reference.py: routing in double from the float
// weights (selection on logits, or on score + selection bias keys with a
// bias or expert groups; ties to the lower index), experts with
// float32 matrix products, combine in double.
//
//===----------------------------------------------------------------------===//

#include "moe-mlir/Method/LayerEval.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace mlir::moe::method {
namespace {

/// Tokens per block: bounds the double copies of the routing and the
/// T x I intermediates of an expert (256 x 14336 floats = 14 MB).
constexpr int64_t kTokenBlock = 256;

double sigmoid(double v) {
  // Two branches so that neither exp overflows.
  if (v >= 0)
    return 1.0 / (1.0 + std::exp(-v));
  double ev = std::exp(v);
  return ev / (1.0 + ev);
}

double activate(Activation kind, double v) {
  switch (kind) {
  case Activation::Silu:
  case Activation::Swiglu: // only reached through the GLU branch below
    return v * sigmoid(v);
  case Activation::Gelu:
    return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  case Activation::GeluTanh: {
    const double c = std::sqrt(2.0 / 3.14159265358979323846);
    return 0.5 * v * (1.0 + std::tanh(c * (v + 0.044715 * v * v * v)));
  }
  case Activation::Relu:
    return std::max(v, 0.0);
  case Activation::Identity:
    return v;
  }
  return v;
}

/// The `k` largest of values[0..n) among `allowed` (all when null), in
/// decreasing order, ties to the lower index. A plain scan: k is small, and
/// unlike a sort it stays well defined when values hold NaN (never larger
/// than anything, so picked last, by index).
void selectTop(const double *values, const char *allowed, int64_t n, int64_t k,
               std::vector<char> &taken, int64_t *out) {
  taken.assign(static_cast<size_t>(n), 0);
  for (int64_t slot = 0; slot < k; ++slot) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; ++i) {
      if (taken[i] || (allowed && !allowed[i]))
        continue;
      if (best < 0 || values[i] > values[best] ||
          (std::isnan(values[best]) && !std::isnan(values[i])))
        best = i;
    }
    out[slot] = best;
    if (best >= 0)
      taken[best] = 1;
  }
}

/// Max of the finite-or-infinite values, 0 when it is not finite (as the
/// reference does, so that all -inf gives exp(-inf - 0) = 0, not NaN).
double stableMax(const double *z, const char *allowed, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i)
    if (!allowed || allowed[i])
      m = std::max(m, z[i]);
  return std::isfinite(m) ? m : 0.0;
}

/// Largest plus second largest of values[0..n) (n >= 2).
double topTwoSum(const double *values, int64_t n) {
  double a = -INFINITY, b = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    if (values[i] > a) {
      b = a;
      a = values[i];
    } else if (values[i] > b) {
      b = values[i];
    }
  }
  return a + b;
}

/// Index of the largest of z[0..n), the first on ties (NaN never larger).
int64_t argmax(const double *z, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (z[i] > z[best] || (std::isnan(z[best]) && !std::isnan(z[i])))
      best = i;
  return best;
}

/// PhiMoE's sparsemixer in eval mode (docs/semantics.md): the argmax of z,
/// weighted by its softmax among the logits within relative distance
/// 2 * eps of the maximum, then the same with the first pick removed.
void sparsemixer(const double *z, int64_t n, double eps,
                 std::vector<double> &rest, std::vector<double> &masked,
                 int64_t *sel, double *w) {
  rest.assign(z, z + n);
  masked.resize(static_cast<size_t>(n));
  for (int stage = 0; stage < 2; ++stage) {
    int64_t i = argmax(rest.data(), n);
    double m = rest[i];
    for (int64_t x = 0; x < n; ++x) {
      // A NaN quotient (0 / 0) is not >, as in torch.
      double q = (m - z[x]) / std::max(std::fabs(z[x]), m);
      masked[x] = q > 2.0 * eps ? -INFINITY : rest[x];
    }
    double mm = stableMax(masked.data(), nullptr, n), denom = 0;
    for (int64_t x = 0; x < n; ++x)
      denom += std::exp(masked[x] - mm);
    sel[stage] = i;
    w[stage] = std::exp(masked[i] - mm) / denom;
    rest[i] = -INFINITY;
  }
}

/// out (count x rows) = tokens (count x H) * weights^T + bias, in double.
void affine(const std::vector<double> &tokens, int64_t count, int64_t h,
            const std::vector<double> &weights, int64_t rows,
            const std::vector<double> &bias, std::vector<double> &out) {
  out.assign(static_cast<size_t>(count * rows), 0.0);
  if (count == 0 || rows == 0)
    return;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(count),
              static_cast<int>(rows), static_cast<int>(h), 1.0, tokens.data(),
              static_cast<int>(h), weights.data(), static_cast<int>(h), 0.0,
              out.data(), static_cast<int>(rows));
  if (!bias.empty())
    for (int64_t t = 0; t < count; ++t)
      for (int64_t r = 0; r < rows; ++r)
        out[t * rows + r] += bias[r];
}

bool fits(ConstMatrixRef m, int64_t rows, int64_t cols) {
  return m.data && m.rows == rows && m.cols == cols && m.ld >= cols;
}

} // namespace

std::string checkLayer(const LayerSpec &spec, ConstMatrixRef tokens) {
  int64_t e = spec.numExperts;
  if (e <= 0)
    return "numExperts must be positive";
  if (!spec.router.data || spec.router.rows != e)
    return "router must have numExperts rows";
  int64_t h = spec.router.cols;
  if (spec.hidden != 0 && spec.hidden != h)
    return "router must have hidden columns";
  if (tokens.cols != h || tokens.rows < 0 || (tokens.rows > 0 && !tokens.data))
    return "tokens must have hidden columns";
  if (spec.routing.topK < 1 || spec.routing.topK > e)
    return "topK must be in [1, numExperts]";
  if (!spec.absent.empty() && static_cast<int64_t>(spec.absent.size()) != e)
    return "absent must be empty or numExperts long";
  const RoutingSpec &rs = spec.routing;
  if (rs.sparsemixer && (rs.topK != 2 || rs.topkThenScore || rs.groups != 1 ||
                         spec.selectionBias))
    return "sparsemixer routing takes topK 2, score_then_topk, no groups and "
           "no selection bias";
  if (spec.selectionBias && rs.topkThenScore)
    return "a selection bias needs score_then_topk";
  if (rs.groups < 1 || rs.groupsKept < 1 || rs.groupsKept > rs.groups)
    return "groups and groupsKept must satisfy 1 <= groupsKept <= groups";
  if (rs.groups > 1 &&
      (rs.topkThenScore || e % rs.groups != 0 || e / rs.groups < 2 ||
       rs.groupsKept * (e / rs.groups) < rs.topK))
    return "groups must divide the experts into groups of at least 2, under "
           "score_then_topk, and the kept groups hold at least topK experts";
  if (!spec.hierarchical)
    return "";
  if (rs.groups > 1 || spec.selectionBias)
    return "hierarchical routing of a layer with groups or a selection bias";
  const HierarchicalSpec &hs = *spec.hierarchical;
  if (static_cast<int64_t>(hs.assignment.size()) != e)
    return "assignment must be numExperts long";
  if (hs.numClusters < 1)
    return "numClusters must be positive";
  if (hs.clustersPerToken < 1 || hs.clustersPerToken > hs.numClusters)
    return "clustersPerToken must be in [1, numClusters]";
  std::vector<int64_t> sizes(static_cast<size_t>(hs.numClusters), 0);
  for (int64_t c : hs.assignment) {
    if (c < 0 || c >= hs.numClusters)
      return "assignment names a cluster outside [0, numClusters)";
    ++sizes[c];
  }
  std::sort(sizes.begin(), sizes.end());
  if (sizes.front() == 0)
    return "every cluster must have a member";
  int64_t smallest = 0;
  for (int64_t c = 0; c < hs.clustersPerToken; ++c)
    smallest += sizes[c];
  if (smallest < spec.routing.topK)
    return "the clustersPerToken smallest clusters hold fewer than topK "
           "experts";
  return "";
}

Routed route(const LayerSpec &spec, ConstMatrixRef tokens) {
  Routed routed;
  if (!checkLayer(spec, tokens).empty())
    return routed;
  const int64_t e = spec.numExperts, h = spec.router.cols,
                k = spec.routing.topK;
  const int64_t numTokens = tokens.rows;
  const RoutingSpec &rs = spec.routing;
  routed.experts.assign(static_cast<size_t>(numTokens * k), -1);
  routed.weights.assign(static_cast<size_t>(numTokens * k), 0.0);

  std::vector<double> router(static_cast<size_t>(e * h)), bias;
  for (int64_t r = 0; r < e; ++r)
    std::copy(spec.router.row(r), spec.router.row(r) + h,
              router.begin() + r * h);
  if (spec.routerBias)
    bias.assign(spec.routerBias, spec.routerBias + e);

  // Hierarchical stage 1 needs, for mean_row, the prototype rows
  // mean(W_r[members]) and biases mean(b_r[members]) (as the reference
  // computes them, rather than the mean of the member logits).
  const HierarchicalSpec *hs =
      spec.hierarchical ? &*spec.hierarchical : nullptr;
  int64_t g = hs ? hs->numClusters : 0;
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(g));
  std::vector<double> protoRows, protoBias;
  if (hs) {
    for (int64_t x = 0; x < e; ++x)
      members[hs->assignment[x]].push_back(x);
    if (hs->meanRow) {
      protoRows.assign(static_cast<size_t>(g * h), 0.0);
      if (!bias.empty())
        protoBias.assign(static_cast<size_t>(g), 0.0);
      for (int64_t c = 0; c < g; ++c) {
        double inv = 1.0 / static_cast<double>(members[c].size());
        for (int64_t x : members[c]) {
          for (int64_t j = 0; j < h; ++j)
            protoRows[c * h + j] += router[x * h + j];
          if (!bias.empty())
            protoBias[c] += bias[x];
        }
        for (int64_t j = 0; j < h; ++j)
          protoRows[c * h + j] *= inv;
        if (!bias.empty())
          protoBias[c] *= inv;
      }
    }
  }

  std::vector<double> block, z, proto, clusterScore(static_cast<size_t>(g));
  std::vector<int64_t> kept(static_cast<size_t>(hs ? hs->clustersPerToken : 0));
  std::vector<char> allowed(static_cast<size_t>(e)), taken;
  std::vector<double> zs(static_cast<size_t>(k));
  const bool onKeys = spec.selectionBias || rs.groups > 1;
  std::vector<double> scores(static_cast<size_t>(e)),
      keys(static_cast<size_t>(e));
  std::vector<double> groupScore(static_cast<size_t>(rs.groups));
  std::vector<int64_t> keptGroups(static_cast<size_t>(rs.groupsKept));
  std::vector<double> masked, rest, scratch;
  for (int64_t t0 = 0; t0 < numTokens; t0 += kTokenBlock) {
    int64_t count = std::min(kTokenBlock, numTokens - t0);
    block.resize(static_cast<size_t>(count * h));
    for (int64_t t = 0; t < count; ++t)
      std::copy(tokens.row(t0 + t), tokens.row(t0 + t) + h,
                block.begin() + t * h);
    affine(block, count, h, router, e, bias, z);
    if (hs && hs->meanRow)
      affine(block, count, h, protoRows, g, protoBias, proto);

    for (int64_t t = 0; t < count; ++t) {
      const double *zt = &z[t * e];
      const char *mask = nullptr;
      if (hs) {
        for (int64_t c = 0; c < g; ++c) {
          if (hs->meanRow) {
            clusterScore[c] = proto[t * g + c];
            continue;
          }
          double m = -INFINITY;
          for (int64_t x : members[c])
            m = std::max(m, zt[x]);
          m = std::isfinite(m) ? m : 0.0;
          double sum = 0;
          for (int64_t x : members[c])
            sum += std::exp(zt[x] - m);
          clusterScore[c] = m + std::log(sum);
        }
        selectTop(clusterScore.data(), nullptr, g, hs->clustersPerToken, taken,
                  kept.data());
        std::fill(allowed.begin(), allowed.end(), 0);
        for (int64_t c : kept)
          for (int64_t x : members[c])
            allowed[x] = 1;
        mask = allowed.data();
      }

      int64_t *sel = &routed.experts[(t0 + t) * k];
      double *w = &routed.weights[(t0 + t) * k];
      if (rs.sparsemixer) {
        const double *zm = zt;
        if (mask) {
          masked.assign(zt, zt + e);
          for (int64_t x = 0; x < e; ++x)
            if (!mask[x])
              masked[x] = -INFINITY;
          zm = masked.data();
        }
        sparsemixer(zm, e, rs.mixerEpsilon, rest, scratch, sel, w);
      } else if (!rs.topkThenScore) {
        // Scores over the candidates (all experts, or the members of the
        // kept clusters: a softmax over those only).
        if (rs.sigmoid) {
          for (int64_t x = 0; x < e; ++x)
            scores[x] = sigmoid(zt[x]);
        } else {
          double m = stableMax(zt, mask, e), denom = 0;
          for (int64_t x = 0; x < e; ++x)
            if (!mask || mask[x])
              denom += std::exp(zt[x] - m);
          for (int64_t x = 0; x < e; ++x)
            scores[x] = (!mask || mask[x]) ? std::exp(zt[x] - m) / denom : 0.0;
        }
        if (!onKeys) {
          // Selection on the logits: the same order as the scores, without
          // the false ties of rounded scores.
          selectTop(zt, mask, e, k, taken, sel);
        } else {
          // Selection on the keys score + selection bias, which the
          // logits do not order.
          for (int64_t x = 0; x < e; ++x)
            keys[x] =
                scores[x] + (spec.selectionBias
                                 ? static_cast<double>(spec.selectionBias[x])
                                 : 0.0);
          const char *keyMask = mask;
          if (rs.groups > 1) {
            int64_t per = e / rs.groups;
            for (int64_t c = 0; c < rs.groups; ++c)
              groupScore[c] = topTwoSum(&keys[c * per], per);
            selectTop(groupScore.data(), nullptr, rs.groups, rs.groupsKept,
                      taken, keptGroups.data());
            std::fill(allowed.begin(), allowed.end(), 0);
            for (int64_t c : keptGroups)
              std::fill_n(allowed.begin() + c * per, per, 1);
            keyMask = allowed.data();
          }
          selectTop(keys.data(), keyMask, e, k, taken, sel);
        }
        for (int64_t i = 0; i < k; ++i)
          w[i] = sel[i] >= 0 ? scores[sel[i]] : 0.0;
      } else {
        selectTop(zt, mask, e, k, taken, sel);
        for (int64_t i = 0; i < k; ++i)
          zs[i] = sel[i] >= 0 ? zt[sel[i]] : -INFINITY;
        if (rs.sigmoid) {
          for (int64_t i = 0; i < k; ++i)
            w[i] = sel[i] >= 0 ? sigmoid(zs[i]) : 0.0;
        } else {
          double m = stableMax(zs.data(), nullptr, k), denom = 0;
          for (int64_t i = 0; i < k; ++i)
            denom += std::exp(zs[i] - m);
          for (int64_t i = 0; i < k; ++i)
            w[i] = std::exp(zs[i] - m) / denom;
        }
      }
      if (rs.normalize) {
        double sum = 0;
        for (int64_t i = 0; i < k; ++i)
          sum += w[i];
        double denom = std::max(sum + rs.normEpsilon, rs.normFloor);
        for (int64_t i = 0; i < k; ++i)
          w[i] /= denom;
      }
      for (int64_t i = 0; i < k; ++i)
        w[i] *= rs.scale;
    }
  }
  return routed;
}

bool expertForward(const LayerSpec &spec, const ExpertWeights &weights,
                   ConstMatrixRef tokens, float *out) {
  const int64_t h = tokens.cols, inter = weights.up.rows;
  const bool glu = weights.gate.data != nullptr;
  const ActivationSpec &act = spec.activation;
  if (tokens.rows < 0 || (tokens.rows > 0 && (!tokens.data || !out)) ||
      (spec.hidden != 0 && spec.hidden != h) ||
      (spec.inter != 0 && spec.inter != inter) || !fits(weights.up, inter, h) ||
      !fits(weights.down, h, inter) || (glu && !fits(weights.gate, inter, h)) ||
      (!glu && act.kind == Activation::Swiglu))
    return false;

  std::vector<float> up, gate;
  for (int64_t t0 = 0; t0 < tokens.rows; t0 += kTokenBlock) {
    int64_t count = std::min(kTokenBlock, tokens.rows - t0);
    auto project = [&](ConstMatrixRef w, const float *b,
                       std::vector<float> &dst) {
      dst.resize(static_cast<size_t>(count * inter));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                  static_cast<int>(count), static_cast<int>(inter),
                  static_cast<int>(h), 1.0f, tokens.row(t0),
                  static_cast<int>(tokens.ld), w.data, static_cast<int>(w.ld),
                  0.0f, dst.data(), static_cast<int>(inter));
      if (b)
        for (int64_t t = 0; t < count; ++t)
          for (int64_t i = 0; i < inter; ++i)
            dst[t * inter + i] += b[i];
    };
    project(weights.up, weights.upBias, up);
    if (glu)
      project(weights.gate, weights.gateBias, gate);

    for (size_t i = 0; i < up.size(); ++i) {
      double l = up[i];
      if (!glu) {
        up[i] = static_cast<float>(activate(act.kind, l));
        continue;
      }
      double gv = gate[i];
      if (act.kind != Activation::Swiglu) {
        up[i] = static_cast<float>(activate(act.kind, gv) * l);
        continue;
      }
      if (act.limit) {
        gv = std::min(gv, *act.limit);
        l = std::clamp(l, -*act.limit, *act.limit);
      }
      up[i] = static_cast<float>(gv * sigmoid(act.alpha * gv) * (l + act.beta));
    }

    float *o = out + t0 * h;
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(count),
        static_cast<int>(h), static_cast<int>(inter), 1.0f, up.data(),
        static_cast<int>(inter), weights.down.data,
        static_cast<int>(weights.down.ld), 0.0f, o, static_cast<int>(h));
    if (weights.downBias)
      for (int64_t t = 0; t < count; ++t)
        for (int64_t j = 0; j < h; ++j)
          o[t * h + j] += weights.downBias[j];
  }
  return true;
}

Matrix evaluateLayer(const LayerSpec &spec, ConstMatrixRef tokens,
                     const ExpertProvider &expert) {
  if (!checkLayer(spec, tokens).empty())
    return Matrix();
  Routed routed = route(spec, tokens);
  const int64_t e = spec.numExperts, h = tokens.cols, k = spec.routing.topK;
  const int64_t numTokens = tokens.rows;
  std::vector<double> y(static_cast<size_t>(numTokens * h), 0.0);
  std::vector<int64_t> rows;
  std::vector<double> rowWeight;
  std::vector<float> gathered, outputs;
  for (int64_t x = 0; x < e; ++x) {
    if (!spec.absent.empty() && spec.absent[x])
      continue;
    rows.clear();
    rowWeight.clear();
    for (int64_t t = 0; t < numTokens; ++t)
      for (int64_t i = 0; i < k; ++i)
        if (routed.experts[t * k + i] == x) {
          rows.push_back(t);
          rowWeight.push_back(routed.weights[t * k + i]);
        }
    if (rows.empty())
      continue;
    int64_t n = static_cast<int64_t>(rows.size());
    gathered.resize(static_cast<size_t>(n * h));
    outputs.resize(static_cast<size_t>(n * h));
    const bool onInput = spec.routing.weightsOnInput;
    for (int64_t r = 0; r < n; ++r) {
      if (onInput) {
        // y = sum_j expert_j(w_j x) (Llama 4): the weight scales the input.
        const float *row = tokens.row(rows[r]);
        for (int64_t j = 0; j < h; ++j)
          gathered[r * h + j] = static_cast<float>(rowWeight[r] * row[j]);
      } else {
        std::copy(tokens.row(rows[r]), tokens.row(rows[r]) + h,
                  gathered.begin() + r * h);
      }
    }
    if (!expertForward(spec, expert(x), ConstMatrixRef(gathered.data(), n, h),
                       outputs.data()))
      return Matrix();
    for (int64_t r = 0; r < n; ++r) {
      double *yt = &y[rows[r] * h];
      const float *o = &outputs[r * h];
      double scale = onInput ? 1.0 : rowWeight[r];
      for (int64_t j = 0; j < h; ++j)
        yt[j] += scale * o[j];
    }
  }
  Matrix result(numTokens, h);
  for (size_t i = 0; i < y.size(); ++i)
    result.data[i] = static_cast<float>(y[i]);
  return result;
}

} // namespace mlir::moe::method
