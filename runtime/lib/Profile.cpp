//===- Profile.cpp - Routing profiles -------------------------------------===//
//
// Counts what moe_rt_record_routing reports, per layer of the manifest;
// docs/routing-profile.md is the JSON schema. One mutex per profile: the
// records of concurrent runs and of one run's parallel ranges serialise.
//
//===----------------------------------------------------------------------===//

#include "RuntimeInternal.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace art = moe::artifact;

namespace {
struct LayerCounts {
  int32_t index = 0;
  std::string name;
  int64_t experts = 0, topK = 0, clusters = 0;
  std::vector<int32_t> assignment; // empty: no clusters
  uint64_t tokens = 0;
  std::vector<uint64_t> perExpert, perCluster, coselection; // E x E

  void clear() {
    tokens = 0;
    std::fill(perExpert.begin(), perExpert.end(), 0);
    std::fill(perCluster.begin(), perCluster.end(), 0);
    std::fill(coselection.begin(), coselection.end(), 0);
  }
};

/// Population coefficient of variation (std / mean); 0 when the mean is.
double cv(const std::vector<uint64_t> &counts) {
  if (counts.empty())
    return 0;
  double mean = 0;
  for (uint64_t c : counts)
    mean += double(c);
  mean /= double(counts.size());
  if (mean == 0)
    return 0;
  double var = 0;
  for (uint64_t c : counts)
    var += (double(c) - mean) * (double(c) - mean);
  return std::sqrt(var / double(counts.size())) / mean;
}

void appendJsonString(std::string &out, const std::string &s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  out += '"';
}

void appendCounts(std::string &out, const uint64_t *counts, size_t n) {
  out += '[';
  for (size_t i = 0; i < n; ++i) {
    if (i)
      out += ", ";
    out += std::to_string(counts[i]);
  }
  out += ']';
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
} // namespace

struct moe_profile {
  const moe_model *model = nullptr;
  mutable std::mutex mu;
  uint64_t runs = 0;
  uint64_t ignored = 0; // selections of unknown layers or experts
  std::vector<LayerCounts> layers; // sorted by index
};

namespace moe::rt {
const moe_model *profileModel(const moe_profile *profile) {
  return profile->model;
}

void profileCountRun(moe_profile *profile) {
  std::lock_guard<std::mutex> lock(profile->mu);
  ++profile->runs;
}

void profileRecord(moe_profile *profile, int64_t layerIndex,
                   const int64_t *selected, int64_t tokens, int64_t k) {
  if (tokens <= 0 || k <= 0 || !selected)
    return;
  std::lock_guard<std::mutex> lock(profile->mu);
  LayerCounts *layer = nullptr;
  for (LayerCounts &l : profile->layers)
    if (l.index == layerIndex)
      layer = &l;
  if (!layer) {
    profile->ignored += uint64_t(tokens) * uint64_t(k);
    return;
  }
  std::vector<int64_t> experts;  // this token's distinct, valid experts
  std::vector<int64_t> clusters; // and their distinct clusters
  layer->tokens += uint64_t(tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    experts.clear();
    clusters.clear();
    for (int64_t j = 0; j < k; ++j) {
      int64_t e = selected[t * k + j];
      if (e < 0 || e >= layer->experts) {
        ++profile->ignored;
        continue;
      }
      if (std::find(experts.begin(), experts.end(), e) == experts.end())
        experts.push_back(e);
    }
    for (int64_t e : experts) {
      ++layer->perExpert[e];
      for (int64_t f : experts)
        ++layer->coselection[e * layer->experts + f];
      if (!layer->assignment.empty()) {
        int64_t c = layer->assignment[e];
        if (std::find(clusters.begin(), clusters.end(), c) == clusters.end())
          clusters.push_back(c);
      }
    }
    for (int64_t c : clusters)
      ++layer->perCluster[c];
  }
}
} // namespace moe::rt

extern "C" {

moe_profile *moe_profile_create(const moe_model *model) {
  if (!model) {
    moe::rt::setError("moe_profile_create: no model");
    return nullptr;
  }
  auto *profile = new moe_profile;
  profile->model = model;
  for (const art::Layer &l : moe::rt::modelManifest(model).layers()) {
    LayerCounts counts;
    counts.index = l.index();
    counts.name = l.name();
    counts.experts = l.num_experts();
    counts.topK = l.top_k();
    counts.clusters = l.num_clusters();
    if (l.assignment_size() == l.num_experts() && l.num_clusters() > 0) {
      counts.assignment.assign(l.assignment().begin(), l.assignment().end());
      counts.perCluster.assign(size_t(l.num_clusters()), 0);
    }
    counts.perExpert.assign(size_t(counts.experts), 0);
    counts.coselection.assign(size_t(counts.experts * counts.experts), 0);
    profile->layers.push_back(std::move(counts));
  }
  std::sort(profile->layers.begin(), profile->layers.end(),
            [](const LayerCounts &a, const LayerCounts &b) {
              return a.index < b.index;
            });
  return profile;
}

void moe_profile_free(moe_profile *profile) { delete profile; }

void moe_profile_reset(moe_profile *profile) {
  if (!profile)
    return;
  std::lock_guard<std::mutex> lock(profile->mu);
  profile->runs = 0;
  profile->ignored = 0;
  for (LayerCounts &l : profile->layers)
    l.clear();
}

char *moe_profile_json(const moe_profile *profile) {
  if (!profile) {
    moe::rt::setError("moe_profile_json: no profile");
    return nullptr;
  }
  std::string out;
  {
    std::lock_guard<std::mutex> lock(profile->mu);
    out = "{\"format\": \"moe-routing-profile\", \"version\": 1, \"runs\": " +
          std::to_string(profile->runs) +
          ", \"ignored_selections\": " + std::to_string(profile->ignored) +
          ", \"layers\": [";
    for (size_t i = 0; i < profile->layers.size(); ++i) {
      const LayerCounts &l = profile->layers[i];
      out += i ? ",\n  " : "\n  ";
      out += "{\"index\": " + std::to_string(l.index) + ", \"name\": ";
      appendJsonString(out, l.name);
      out += ", \"num_experts\": " + std::to_string(l.experts) +
             ", \"top_k\": " + std::to_string(l.topK) +
             ", \"num_clusters\": " + std::to_string(l.clusters) +
             ", \"tokens\": " + std::to_string(l.tokens) +
             ",\n   \"tokens_per_expert\": ";
      appendCounts(out, l.perExpert.data(), l.perExpert.size());
      out += ",\n   \"tokens_per_cluster\": ";
      if (l.assignment.empty())
        out += "null";
      else
        appendCounts(out, l.perCluster.data(), l.perCluster.size());
      out += ",\n   \"coselection\": [";
      for (int64_t e = 0; e < l.experts; ++e) {
        out += e ? ",\n     " : "";
        appendCounts(out, l.coselection.data() + e * l.experts,
                     size_t(l.experts));
      }
      out += "],\n   \"expert_load_cv\": " + number(cv(l.perExpert)) +
             ", \"cluster_load_cv\": " +
             (l.assignment.empty() ? std::string("null")
                                   : number(cv(l.perCluster))) +
             "}";
    }
    out += profile->layers.empty() ? "]}\n" : "\n]}\n";
  }
  char *copy = static_cast<char *>(std::malloc(out.size() + 1));
  if (!copy) {
    moe::rt::setError("moe_profile_json: out of memory");
    return nullptr;
  }
  std::memcpy(copy, out.c_str(), out.size() + 1);
  return copy;
}

int moe_profile_write_json(const moe_profile *profile, const char *path) {
  char *json = moe_profile_json(profile);
  if (!json)
    return -1;
  FILE *f = path ? std::fopen(path, "w") : nullptr;
  if (!f) {
    std::free(json);
    return moe::rt::setError(std::string("cannot open '") +
                             (path ? path : "(null)") +
                             "' for writing: " + std::strerror(errno));
  }
  size_t n = std::strlen(json);
  bool ok = std::fwrite(json, 1, n, f) == n;
  ok = std::fclose(f) == 0 && ok;
  std::free(json);
  if (!ok)
    return moe::rt::setError(std::string("failed writing '") + path +
                             "': " + std::strerror(errno));
  return 0;
}

void moe_rt_record_routing(int64_t layer, const int64_t *selected,
                           int64_t tokens, int64_t k) {
  const moe::rt::RunContext *run = moe::rt::currentRun();
  if (!run || !run->profile)
    return;
  moe::rt::profileRecord(run->profile, layer, selected, tokens, k);
}

} // extern "C"
