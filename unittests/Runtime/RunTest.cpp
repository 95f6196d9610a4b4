//===- RunTest.cpp - Running, input checks, threads, profiles -------------===//

#include "TestUtil.h"

#include "RuntimeInternal.h"

#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

namespace moe::rt::test {
namespace {

class Run : public ::testing::Test {
protected:
  ModelPtr model = load(shared().model);
  void SetUp() override { ASSERT_TRUE(model) << moe_last_error(); }
};

TEST_F(Run, ComputesExactValues) {
  Outputs out;
  ASSERT_EQ(runTokens(model.get(), 3, out), 0) << moe_last_error();
  EXPECT_TRUE(outputsAreRight(out, 3));
  EXPECT_EQ(static_cast<float *>(out.t[0].data)[0], 1.0f); // 0 * w + 1 + 0
  EXPECT_EQ(static_cast<float *>(out.t[0].data)[8 + 1],
            (1.0f - 0.25f) * 1.0f + 1.0f + 1.0f);
  EXPECT_EQ(out.t[0].dtype, MOE_DT_F32);
  EXPECT_EQ(out.t[0].shape[2], 0); // unused dims are zero
}

TEST_F(Run, DynamicTokenCounts) {
  for (int64_t tokens : {0, 1, 2, 7, 64, 513}) {
    for (int threads : {0, 1, 2}) {
      Outputs out;
      moe_run_options opts{};
      opts.threads = threads;
      ASSERT_EQ(runTokens(model.get(), tokens, out, &opts), 0)
          << moe_last_error();
      EXPECT_TRUE(outputsAreRight(out, tokens)) << tokens << " tokens";
      EXPECT_NE(out.t[0].data, nullptr);
    }
  }
}

TEST_F(Run, ConcurrentRunsFromFourThreads) {
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      for (int r = 0; r < 25; ++r) {
        int64_t tokens = 1 + (i * 37 + r * 11) % 70;
        Outputs out;
        if (runTokens(model.get(), tokens, out) != 0 ||
            !outputsAreRight(out, tokens))
          ++wrong;
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(wrong.load(), 0);
}

/// The profile's JSON, freed.
std::string json(const moe_profile *p) {
  char *text = moe_profile_json(p);
  std::string s = text ? text : "";
  std::free(text);
  return s;
}

TEST_F(Run, ProfileCountsRoutingByHand) {
  moe_profile *profile = moe_profile_create(model.get());
  ASSERT_NE(profile, nullptr);
  moe_run_options opts{};
  opts.profile = profile;
  opts.threads = 2; // records arrive from several ranges at once
  for (int r = 0; r < 2; ++r) {
    Outputs out;
    ASSERT_EQ(runTokens(model.get(), 10, out, &opts), 0) << moe_last_error();
  }
  {
    Outputs out; // a run without the profile counts nothing
    ASSERT_EQ(runTokens(model.get(), 10, out), 0) << moe_last_error();
  }
  std::string s = json(profile);
  // Layer 0: token t picks t % 4 and (3t + 1) % 4: {0, 1} for t % 4 in
  // {0, 1}, {2, 3} otherwise. Over t < 10: 6 tokens pick {0, 1}, 4 pick
  // {2, 3}; two runs double it. Clusters {0, 1} -> 0, {2, 3} -> 1.
  for (const char *part : {
           "\"format\": \"moe-routing-profile\"",
           "\"version\": 1",
           "\"runs\": 2",
           "\"ignored_selections\": 2", // layer 7, once per run
           "{\"index\": 0, \"name\": \"block0.moe\", \"num_experts\": 4, "
           "\"top_k\": 2, \"num_clusters\": 2, \"tokens\": 20",
           "\"tokens_per_expert\": [12, 12, 8, 8]",
           "\"tokens_per_cluster\": [12, 8]",
           "\"coselection\": [[12, 12, 0, 0],\n     [12, 12, 0, 0],\n     "
           "[0, 0, 8, 8],\n     [0, 0, 8, 8]]",
           // mean 10, std 2: cv 0.2 for experts and for clusters.
           "\"expert_load_cv\": 0.20000000000000001, \"cluster_load_cv\": "
           "0.20000000000000001",
           // Layer 1: t % 3 -> 4, 3, 3 per run; no clusters.
           "{\"index\": 1, \"name\": \"block1.moe\", \"num_experts\": 3, "
           "\"top_k\": 1, \"num_clusters\": 0, \"tokens\": 20",
           "\"tokens_per_expert\": [8, 6, 6]",
           "\"tokens_per_cluster\": null",
           "\"cluster_load_cv\": null",
       })
    EXPECT_NE(s.find(part), std::string::npos) << part << "\nin\n" << s;
  // Layer 1's cv: mean 20/3, std sqrt(8/9): sqrt(2) / 10.
  char cv[64];
  std::snprintf(cv, sizeof cv, "\"expert_load_cv\": %.17g",
                std::sqrt(8.0 / 9.0) / (20.0 / 3.0));
  EXPECT_NE(s.find(cv), std::string::npos) << cv << "\nin\n" << s;

  TempDir dir;
  ASSERT_EQ(moe_profile_write_json(profile, dir.file("p.json").c_str()), 0);
  EXPECT_EQ(fx::readFile(dir.file("p.json")).size(), s.size());
  EXPECT_NE(moe_profile_write_json(profile, "/nonexistent/dir/p.json"), 0);
  EXPECT_NE(std::string(moe_last_error()).find("cannot open"),
            std::string::npos);

  moe_profile_reset(profile);
  EXPECT_NE(json(profile).find("\"tokens_per_expert\": [0, 0, 0, 0]"),
            std::string::npos);
  moe_profile_free(profile);
}

TEST_F(Run, ProfileSharedByConcurrentRuns) {
  moe_profile *profile = moe_profile_create(model.get());
  moe_run_options opts{};
  opts.profile = profile;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int r = 0; r < 5; ++r) {
        Outputs out;
        failed += runTokens(model.get(), 10, out, &opts) != 0;
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(failed.load(), 0);
  std::string s = json(profile);
  EXPECT_NE(s.find("\"runs\": 20"), std::string::npos) << s;
  EXPECT_NE(s.find("\"tokens_per_expert\": [120, 120, 80, 80]"),
            std::string::npos)
      << s;
  moe_profile_free(profile);
}

class RunError : public Run {
protected:
  /// Running with `in` (n inputs) fails with a message holding `part`.
  ::testing::AssertionResult fails(const moe_tensor *in, size_t n,
                                   const std::string &part, size_t nOutputs = 3,
                                   const moe_run_options *opts = nullptr) {
    Outputs out;
    if (moe_run(model.get(), in, n, out.t, nOutputs, opts) == 0)
      return ::testing::AssertionFailure() << "it ran";
    std::string message = moe_last_error();
    if (message.find(part) == std::string::npos)
      return ::testing::AssertionFailure() << "message: " << message;
    if (out.t[0].data)
      return ::testing::AssertionFailure() << "outputs were filled";
    return ::testing::AssertionSuccess() << message;
  }
};

TEST_F(RunError, NamesTheInputAndWhatWasExpected) {
  Inputs in(4);
  in.t[0].name = "z";
  EXPECT_TRUE(
      fails(in.t, 2, "unknown input 'z' (the model's inputs: x, offset)"));
  in = Inputs(4);
  in.t[0].dtype = MOE_DT_F64;
  EXPECT_TRUE(fails(in.t, 2, "input 'x': dtype f64, expected f32"));
  in = Inputs(4);
  in.t[0].rank = 3;
  in.t[0].shape[2] = 1;
  EXPECT_TRUE(
      fails(in.t, 2, "input 'x': rank 3, expected 2 (shape [tokens, 8])"));
  in = Inputs(4);
  in.t[0].shape[1] = 9;
  EXPECT_TRUE(fails(in.t, 2, "input 'x': dim 1 is 9, expected 8"));
  in = Inputs(4);
  in.t[1].shape[0] = 5;
  EXPECT_TRUE(fails(in.t, 2,
                    "input 'offset': dim 0 (tokens) is 5, but input 'x' dim 0 "
                    "makes tokens 4"));
  in = Inputs(4);
  EXPECT_TRUE(fails(in.t, 1, "missing input 'offset' (i64 [tokens])"));
  in = Inputs(4);
  EXPECT_TRUE(fails(in.t, 3, "input 'x' is given twice"));
  in = Inputs(4);
  in.t[0].shape[0] = -2;
  EXPECT_TRUE(fails(in.t, 2, "input 'x': dim 0 is -2"));
  in = Inputs(4);
  in.t[1].data = nullptr;
  EXPECT_TRUE(fails(in.t, 2, "input 'offset' has no data"));
  in = Inputs(4);
  in.t[0].name = nullptr;
  EXPECT_TRUE(fails(in.t, 2, "input #0 has no name"));
}

TEST_F(RunError, BadCalls) {
  Inputs in(4);
  EXPECT_TRUE(fails(in.t, 2, "the model has 3 outputs", 2));
  EXPECT_TRUE(fails(nullptr, 2, "inputs is NULL"));
  ModelPtr other = load(shared().model);
  moe_profile *profile = moe_profile_create(other.get());
  moe_run_options opts{};
  opts.profile = profile;
  EXPECT_TRUE(fails(in.t, 2, "created for another model", 3, &opts));
  opts.profile = nullptr;
  opts.threads = -1;
  EXPECT_TRUE(fails(in.t, 2, "threads must be >= 0", 3, &opts));
  moe_profile_free(profile);
  Outputs out;
  EXPECT_NE(moe_run(nullptr, in.t, 2, out.t, 3, nullptr), 0);
  EXPECT_EQ(moe_model_load(nullptr, nullptr), nullptr);
  // A failed run leaves the model usable.
  ASSERT_EQ(runTokens(model.get(), 4, out), 0) << moe_last_error();
  EXPECT_TRUE(outputsAreRight(out, 4));
}

TEST(RunOutputs, AWrongShapeFromTheCompiledCodeIsAnError) {
  TempDir dir;
  std::vector<uint8_t> code =
      fx::compile(dir.path, "bad.so", "-DBAD_OUTPUT_SHAPE");
  ASSERT_EQ(fx::write(dir.file("bad.moe"), code), "");
  ModelPtr m = load(dir.file("bad.moe"));
  ASSERT_TRUE(m) << moe_last_error();
  Outputs out;
  EXPECT_NE(runTokens(m.get(), 4, out), 0);
  EXPECT_EQ(std::string(moe_last_error()),
            "the compiled code returned output 'y' with shape [4, 7], "
            "expected [tokens, 8] (a compiler bug)");
  EXPECT_EQ(out.t[0].data, nullptr);
}

TEST(ParallelFor, CoversTheRangeOnceOnAtMostThreadsThreads) {
  struct Seen {
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    std::set<std::thread::id> threads;
    std::atomic<int> nestedRanges{0};
  };
  for (int threads : {1, 2, 3, 16})
    for (int64_t n : {0, 1, 2, 5, 1000}) {
      Seen seen;
      parallelFor(
          n,
          [](int64_t b, int64_t e, void *ctx) {
            auto *s = static_cast<Seen *>(ctx);
            // Nested: runs inline as a single range.
            moe_rt_parallel_for(
                10,
                [](int64_t nb, int64_t ne, void *c) {
                  if (nb == 0 && ne == 10)
                    ++static_cast<Seen *>(c)->nestedRanges;
                },
                s);
            std::lock_guard<std::mutex> lock(s->mu);
            s->ranges.push_back({b, e});
            s->threads.insert(std::this_thread::get_id());
          },
          &seen, threads);
      std::sort(seen.ranges.begin(), seen.ranges.end());
      int64_t next = 0;
      for (auto [b, e] : seen.ranges) {
        EXPECT_EQ(b, next);
        EXPECT_LT(b, e);
        next = e;
      }
      EXPECT_EQ(next, n);
      int used = std::min(std::max(threads, 1), maxThreads());
      EXPECT_LE(seen.threads.size(), size_t(used));
      EXPECT_EQ(seen.nestedRanges.load(), int(seen.ranges.size()));
      // A single thread runs one range; more cut the loop into a few
      // ranges per thread.
      size_t ranges =
          n == 0      ? 0
          : used == 1 ? 1
                      : size_t(std::min<int64_t>(n, used * kRangesPerThread));
      EXPECT_EQ(seen.ranges.size(), ranges);
    }
}

} // namespace
} // namespace moe::rt::test
