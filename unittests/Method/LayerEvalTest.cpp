//===- LayerEvalTest.cpp - Routing and experts on hand-computed cases -----===//

#include "moe-mlir/Method/LayerEval.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace mlir::moe::method;

namespace {

/// A layer with E experts of H = I = 2 and a 2-column router built from
/// `logits` for the token (1, 0): router row e = (logit_e, 7).
struct TinyLayer {
  int64_t e;
  std::vector<float> router;
  std::vector<std::vector<float>> up, down, gate;
  LayerSpec spec;

  explicit TinyLayer(const std::vector<float> &logits) : e(logits.size()) {
    for (float z : logits) {
      router.push_back(z);
      router.push_back(7);
    }
    for (int64_t x = 0; x < e; ++x) {
      float f = static_cast<float>(x + 1);
      up.push_back({f, 0, 0, 1});        // (f * t0, t1)
      down.push_back({1, 0, 0, 10 * f}); // (h0, 10 f h1)
      gate.push_back({1, 0, 0, 1});
    }
    spec.numExperts = e;
    spec.hidden = 2;
    spec.inter = 2;
    spec.router = ConstMatrixRef(router.data(), e, 2);
    spec.activation.kind = Activation::Identity;
  }

  ExpertProvider provider(bool glu = false) {
    return [this, glu](int64_t x) {
      ExpertWeights w;
      w.up = ConstMatrixRef(up[x].data(), 2, 2);
      w.down = ConstMatrixRef(down[x].data(), 2, 2);
      if (glu)
        w.gate = ConstMatrixRef(gate[x].data(), 2, 2);
      return w;
    };
  }
};

TEST(LayerEval, TwoExpertsIdentityExact) {
  // Logits (2, 0): softmax (e^2, 1) / (e^2 + 1); top-2 keeps both.
  TinyLayer layer({2, 0});
  layer.spec.routing.topK = 2;
  std::vector<float> token = {1, 0.5f}; // z = (2 + 3.5, 0 + 3.5)
  ConstMatrixRef x(token.data(), 1, 2);
  Routed r = route(layer.spec, x);
  ASSERT_EQ(r.experts, (std::vector<int64_t>{0, 1}));
  double w0 = std::exp(2.0) / (std::exp(2.0) + 1), w1 = 1 / (std::exp(2.0) + 1);
  EXPECT_DOUBLE_EQ(r.weights[0], w0);
  EXPECT_DOUBLE_EQ(r.weights[1], w1);
  // Expert e (f = e + 1): up (f, 0.5), identity, down (f, 10 f * 0.5).
  Matrix y = evaluateLayer(layer.spec, x, layer.provider());
  ASSERT_EQ(y.rows, 1);
  ASSERT_EQ(y.cols, 2);
  EXPECT_FLOAT_EQ(y.data[0], static_cast<float>(w0 * 1 + w1 * 2));
  EXPECT_FLOAT_EQ(y.data[1], static_cast<float>(w0 * 5 + w1 * 10 * 2 * 0.5));

  // Top-1 with normalize: the weight becomes exactly 1.
  layer.spec.routing.topK = 1;
  layer.spec.routing.normalize = true;
  y = evaluateLayer(layer.spec, x, layer.provider());
  EXPECT_FLOAT_EQ(y.data[0], 1.0f);
  EXPECT_FLOAT_EQ(y.data[1], 5.0f);
}

TEST(LayerEval, TopKTiesGoToTheLowerIndex) {
  TinyLayer layer({1, 3, 3, 3, 0});
  layer.spec.routing.topK = 2;
  std::vector<float> token = {1, 0};
  Routed r = route(layer.spec, ConstMatrixRef(token.data(), 1, 2));
  EXPECT_EQ(r.experts, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r.weights[0], r.weights[1]);
  layer.spec.routing.topkThenScore = true;
  r = route(layer.spec, ConstMatrixRef(token.data(), 1, 2));
  EXPECT_EQ(r.experts, (std::vector<int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(r.weights[0], 0.5);
  // Sigmoid: both orders select and weigh alike.
  layer.spec.routing.sigmoid = true;
  Routed a = route(layer.spec, ConstMatrixRef(token.data(), 1, 2));
  layer.spec.routing.topkThenScore = false;
  Routed b = route(layer.spec, ConstMatrixRef(token.data(), 1, 2));
  EXPECT_EQ(a.experts, b.experts);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_DOUBLE_EQ(a.weights[0], 1 / (1 + std::exp(-3.0)));
}

TEST(LayerEval, SelectionOnLogitsNotScores) {
  // sigmoid(40) == sigmoid(60) in double: selection must still see 60.
  TinyLayer layer({40, 60});
  layer.spec.routing.sigmoid = true;
  std::vector<float> token = {1, 0};
  Routed r = route(layer.spec, ConstMatrixRef(token.data(), 1, 2));
  EXPECT_EQ(r.experts, (std::vector<int64_t>{1}));
}

TEST(LayerEval, GroupLimitedSelectionBiasNormalisationAndScale) {
  // DeepSeek-V3-style: sigmoid scores ~ (0.95, 0.05 | 0.88, 0.87), groups
  // of 2, one kept. Group 1 (1.75) beats group 0 (1.0): picks {2, 3}
  // instead of the plain top-2 {0, 2}.
  TinyLayer layer({3, -3, 2, 1.9f});
  layer.spec.routing.topK = 2;
  layer.spec.routing.sigmoid = true;
  std::vector<float> token = {1, 0};
  ConstMatrixRef x(token.data(), 1, 2);
  EXPECT_EQ(route(layer.spec, x).experts, (std::vector<int64_t>{0, 2}));
  layer.spec.routing.groups = 2;
  Routed r = route(layer.spec, x);
  EXPECT_EQ(r.experts, (std::vector<int64_t>{2, 3}));
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  double s2 = sig(2.0), s3 = sig(static_cast<double>(1.9f));
  EXPECT_DOUBLE_EQ(r.weights[0], s2);
  EXPECT_DOUBLE_EQ(r.weights[1], s3);
  // A selection bias on expert 1 lifts group 0 (0.95 + 0.05 + 0.95) and
  // expert 1's key above expert 0's; the weights stay unbiased scores.
  std::vector<float> bias = {0, 0.95f, 0, 0};
  layer.spec.selectionBias = bias.data();
  layer.spec.routing.normalize = true;
  layer.spec.routing.normFloor = 10.0; // the floor wins over the sum
  layer.spec.routing.scale = 2.5;
  r = route(layer.spec, x);
  EXPECT_EQ(r.experts, (std::vector<int64_t>{1, 0}));
  EXPECT_DOUBLE_EQ(r.weights[0], 2.5 * sig(-3.0) / 10.0);
  EXPECT_DOUBLE_EQ(r.weights[1], 2.5 * sig(3.0) / 10.0);
  layer.spec.routing.normFloor = 0;
  layer.spec.routing.normEpsilon = 1.0;
  r = route(layer.spec, x);
  EXPECT_DOUBLE_EQ(r.weights[1], 2.5 * sig(3.0) / (sig(3.0) + sig(-3.0) + 1));
  // Hierarchical routing on top of groups is refused.
  layer.spec.hierarchical = HierarchicalSpec{{0, 0, 1, 1}, 2, 1, false};
  EXPECT_NE(checkLayer(layer.spec, x), "");
}

TEST(LayerEval, SparsemixerAndWeightsOnInput) {
  // Logits (4, 3.9, 0, -1), eps 0.1: stage 1 keeps z within relative
  // distance 0.2 of 4 (4 and 3.9); stage 2 (max 3.9) keeps only 3.9.
  TinyLayer layer({4, 3.9f, 0, -1});
  layer.spec.routing.topK = 2;
  layer.spec.routing.sparsemixer = true;
  layer.spec.routing.mixerEpsilon = 0.1;
  std::vector<float> token = {1, 0};
  ConstMatrixRef x(token.data(), 1, 2);
  Routed r = route(layer.spec, x);
  EXPECT_EQ(r.experts, (std::vector<int64_t>{0, 1}));
  double z1 = static_cast<double>(3.9f);
  EXPECT_DOUBLE_EQ(r.weights[0], 1 / (1 + std::exp(z1 - 4)));
  EXPECT_DOUBLE_EQ(r.weights[1], 1.0);
  // Llama 4: top-1 sigmoid of the logit, scaling the expert's input. With
  // a nonlinear expert (relu(t - 1)) the two combines differ.
  TinyLayer llama({2, -1});
  llama.spec.routing.sigmoid = true;
  llama.spec.routing.topkThenScore = true;
  llama.spec.activation.kind = Activation::Relu;
  std::vector<float> bias = {-1, -1};
  auto provider = [&](int64_t e) {
    ExpertWeights w = llama.provider()(e);
    w.upBias = bias.data();
    return w;
  };
  std::vector<float> t2 = {1, 0}; // z = (2, -1): expert 0, w = sigmoid(2)
  ConstMatrixRef x2(t2.data(), 1, 2);
  double w = 1 / (1 + std::exp(-2.0));
  Matrix out = evaluateLayer(llama.spec, x2, provider);
  EXPECT_FLOAT_EQ(out.data[0], 0.0f); // w * relu(1 - 1)
  llama.spec.routing.weightsOnInput = true;
  std::vector<float> t3 = {3, 0}; // z = (6, -3), w = sigmoid(6)
  ConstMatrixRef x3(t3.data(), 1, 2);
  w = 1 / (1 + std::exp(-6.0));
  out = evaluateLayer(llama.spec, x3, provider);
  EXPECT_FLOAT_EQ(out.data[0], static_cast<float>(3 * w - 1)); // relu(3w - 1)
  llama.spec.routing.weightsOnInput = false;
  out = evaluateLayer(llama.spec, x3, provider);
  EXPECT_FLOAT_EQ(out.data[0], static_cast<float>(w * 2)); // w relu(3 - 1)
}

TEST(LayerEval, HierarchicalStageOne) {
  // Clusters {0, 1} and {2, 3}, logits (5, -10, 3, 3). mass: lse(5, -10)
  // ~ 5 beats lse(3, 3) = 3.69; mean_row: -2.5 loses to 3.
  TinyLayer layer({5, -10, 3, 3});
  layer.spec.routing.topK = 1;
  HierarchicalSpec h;
  h.assignment = {0, 0, 1, 1};
  h.numClusters = 2;
  h.clustersPerToken = 1;
  layer.spec.hierarchical = h;
  std::vector<float> token = {1, 0};
  ConstMatrixRef x(token.data(), 1, 2);
  Routed mass = route(layer.spec, x);
  EXPECT_EQ(mass.experts, (std::vector<int64_t>{0}));
  // Softmax over the kept cluster's members only.
  EXPECT_DOUBLE_EQ(mass.weights[0], 1 / (1 + std::exp(-15.0)));
  layer.spec.hierarchical->meanRow = true;
  Routed mean = route(layer.spec, x);
  EXPECT_EQ(mean.experts, (std::vector<int64_t>{2})); // tie 2/3: lower
  EXPECT_DOUBLE_EQ(mean.weights[0], 0.5);
  // The router bias is part of both scores: +20 on expert 1 flips mean_row.
  std::vector<float> bias = {0, 20, 0, 0};
  layer.spec.routerBias = bias.data();
  mean = route(layer.spec, x);
  EXPECT_EQ(mean.experts, (std::vector<int64_t>{1}));
  // Keeping both clusters is exact routing.
  layer.spec.routerBias = nullptr;
  layer.spec.hierarchical->clustersPerToken = 2;
  layer.spec.routing.topK = 2;
  Routed both = route(layer.spec, x);
  layer.spec.hierarchical.reset();
  Routed exact = route(layer.spec, x);
  EXPECT_EQ(both.experts, exact.experts);
  EXPECT_EQ(both.weights, exact.weights);
}

TEST(LayerEval, AbsentExpertsStillTakeTheirWeight) {
  TinyLayer layer({1, 0});
  layer.spec.routing.topK = 2;
  layer.spec.routing.normalize = true;
  layer.spec.absent = {false, true};
  std::vector<int64_t> calls;
  ExpertProvider inner = layer.provider();
  ExpertProvider counting = [&](int64_t x) {
    calls.push_back(x);
    return inner(x);
  };
  std::vector<float> token = {1, 0};
  Matrix y =
      evaluateLayer(layer.spec, ConstMatrixRef(token.data(), 1, 2), counting);
  double w0 = std::exp(1.0) / (std::exp(1.0) + 1);
  EXPECT_FLOAT_EQ(y.data[0], static_cast<float>(w0));
  EXPECT_FLOAT_EQ(y.data[1], 0.0f);
  EXPECT_EQ(calls, (std::vector<int64_t>{0}));
}

TEST(LayerEval, ProviderCalledOncePerSelectedExpertInOrder) {
  TinyLayer layer({0, 0, 0, 0});
  layer.spec.routing.topK = 1;
  layer.router = {0, 1, 0, 2, 0, -1, 0, 0};
  layer.spec.router = ConstMatrixRef(layer.router.data(), 4, 2);
  std::vector<float> tokens = {0, 1, 0, -1, 0, 2}; // 3 tokens
  std::vector<int64_t> calls;
  ExpertProvider inner = layer.provider();
  Matrix y = evaluateLayer(layer.spec, ConstMatrixRef(tokens.data(), 3, 2),
                           [&](int64_t x) {
                             calls.push_back(x);
                             return inner(x);
                           });
  ASSERT_EQ(y.rows, 3);
  // Tokens 0 and 2 pick expert 1 (largest positive slope), token 1 expert 2.
  EXPECT_EQ(calls, (std::vector<int64_t>{1, 2}));
}

TEST(LayerEval, Activations) {
  // One expert, H = I = 1, weights 1: the output is act(v) (plain) or
  // act(v) * v (GLU, gate = up = v).
  std::vector<float> router = {1}, one = {1};
  LayerSpec spec;
  spec.numExperts = 1;
  spec.router = ConstMatrixRef(router.data(), 1, 1);
  ExpertWeights w;
  w.up = w.down = ConstMatrixRef(one.data(), 1, 1);
  const double v = 0.75;
  std::vector<float> token = {static_cast<float>(v)};
  ConstMatrixRef x(token.data(), 1, 1);
  double sig = 1 / (1 + std::exp(-v));
  struct Case {
    Activation kind;
    double expected;
  };
  for (Case c :
       {Case{Activation::Silu, v * sig},
        Case{Activation::Gelu, 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))},
        Case{Activation::GeluTanh,
             0.5 * v *
                 (1 +
                  std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))},
        Case{Activation::Relu, v}, Case{Activation::Identity, v}}) {
    spec.activation.kind = c.kind;
    float out = 0;
    ASSERT_TRUE(expertForward(spec, w, x, &out));
    EXPECT_FLOAT_EQ(out, static_cast<float>(c.expected));
    w.gate = w.up;
    ASSERT_TRUE(expertForward(spec, w, x, &out));
    EXPECT_FLOAT_EQ(out, static_cast<float>(c.expected * v));
    w.gate = ConstMatrixRef();
  }
  std::vector<float> negative = {-2};
  float out = 1;
  spec.activation.kind = Activation::Relu;
  ASSERT_TRUE(
      expertForward(spec, w, ConstMatrixRef(negative.data(), 1, 1), &out));
  EXPECT_EQ(out, 0.0f);

  // swiglu: G = min(G, limit), L = clamp(L, -limit, limit),
  // h = G sigmoid(alpha G) (L + beta); with biases on every projection.
  spec.activation.kind = Activation::Swiglu;
  spec.activation.alpha = 1.702;
  spec.activation.beta = 1.0;
  spec.activation.limit = 0.5;
  std::vector<float> gate = {2}, upBias = {-3}, gateBias = {0.25f},
                     downBias = {0.125f};
  w.gate = ConstMatrixRef(gate.data(), 1, 1);
  w.upBias = upBias.data();
  w.gateBias = gateBias.data();
  w.downBias = downBias.data();
  double g = std::min(2 * v + 0.25, 0.5);
  double l = std::clamp(v - 3, -0.5, 0.5);
  double expected = g / (1 + std::exp(-1.702 * g)) * (l + 1.0) + 0.125;
  ASSERT_TRUE(expertForward(spec, w, x, &out));
  EXPECT_FLOAT_EQ(out, static_cast<float>(expected));
  // swiglu needs the GLU form.
  w.gate = ConstMatrixRef();
  EXPECT_FALSE(expertForward(spec, w, x, &out));
}

TEST(LayerEval, RejectsBadShapes) {
  TinyLayer layer({1, 2});
  std::vector<float> token = {1, 0, 0};
  EXPECT_FALSE(
      checkLayer(layer.spec, ConstMatrixRef(token.data(), 1, 3)).empty());
  EXPECT_TRUE(
      route(layer.spec, ConstMatrixRef(token.data(), 1, 3)).experts.empty());
  EXPECT_EQ(evaluateLayer(layer.spec, ConstMatrixRef(token.data(), 1, 3),
                          layer.provider())
                .rows,
            0);
  ConstMatrixRef good(token.data(), 1, 2);
  EXPECT_EQ(checkLayer(layer.spec, good), "");
  layer.spec.routing.topK = 3;
  EXPECT_FALSE(checkLayer(layer.spec, good).empty());
  layer.spec.routing.topK = 2;
  HierarchicalSpec h;
  h.assignment = {0, 1};
  h.numClusters = 2;
  h.clustersPerToken = 1; // one cluster of 1 cannot give top-2
  layer.spec.hierarchical = h;
  EXPECT_FALSE(checkLayer(layer.spec, good).empty());
  layer.spec.hierarchical->numClusters = 3; // cluster 2 empty
  layer.spec.hierarchical->clustersPerToken = 3;
  EXPECT_FALSE(checkLayer(layer.spec, good).empty());
  layer.spec.hierarchical.reset();
  // An expert whose down projection has the wrong shape.
  std::vector<float> wrong(6, 1.0f);
  ExpertWeights w = layer.provider()(0);
  w.down = ConstMatrixRef(wrong.data(), 3, 2);
  float out[2];
  EXPECT_FALSE(expertForward(layer.spec, w, good, out));
}

} // namespace
