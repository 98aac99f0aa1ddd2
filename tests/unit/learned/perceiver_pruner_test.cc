#include "common/learned/perceiver_pruner.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/compress/compression_config.h"
#include "common/compress/compressor.h"
#include "common/compress/pruner_registry.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::learned {
namespace {

using compress::testing::Mat;
using compress::testing::Rows;
using ::testing::HasSubstr;
using Idx = std::vector<std::vector<int64_t>>;

// One layer of hand-made weights; Wq = Wk = identity unless given.
PerceiverLayerWeights Layer(const std::vector<std::vector<float>>& query, int64_t d_model = 0) {
  PerceiverLayerWeights l;
  l.query = Mat(query);
  const int64_t d_query = l.query.size(1);
  l.wq = at::eye(d_query, at::kFloat);
  l.wk = at::eye(d_query, d_model > 0 ? d_model : d_query, at::kFloat);
  return l;
}

std::unique_ptr<PerceiverPruner> MakePruner(std::vector<PerceiverLayerWeights> layers,
                                            PerceiverRouting routing = PerceiverRouting::kRank,
                                            double temperature = 1.0, uint64_t seed = 0) {
  auto w = PerceiverWeights::Create(std::move(layers), temperature);
  EXPECT_TRUE(w.ok()) << w.status();
  auto p = PerceiverPruner::Create(std::make_shared<const PerceiverWeights>(*std::move(w)), routing,
                                   seed);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Candidates with the given keys: keys[h][c] is candidate c's key vector for kv head h. All
// candidates are chunk tokens (no memory).
compress::PruneInput KeysInput(const std::vector<std::vector<std::vector<float>>>& keys,
                               int64_t target) {
  compress::PruneInput in;
  in.n_kv_heads = static_cast<int64_t>(keys.size());
  in.n_chunk = static_cast<int64_t>(keys[0].size());
  in.target = target;
  std::vector<at::Tensor> heads;
  for (const auto& h : keys) heads.push_back(Mat(h));
  in.keys = at::stack(heads);  // [n_kv_heads, n, head_dim]
  in.src = compress::testing::SrcRange(in.n_kv_heads, 4, in.n_chunk);
  return in;
}

// One query [10, 0] with identity projections: logits = 10 * first key coordinate, so the
// entries with the largest first coordinate are kept.
TEST(PerceiverPrunerTest, RankKeepsKeysTheQueryPrefers) {
  auto pruner = MakePruner({Layer({{10, 0}})});
  auto sel = pruner->Select(
      KeysInput({{{0.1f, 9}, {0.5f, 0}, {0.3f, 0}, {0.9f, 0}, {0.2f, 0}}}, /*target=*/2));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{1, 3}}));
}

// The kept rank is the softmax probability: keys 0, ln 2, ln 3 under query [1] give P = 1/6,
// 1/3, 1/2; with temperature 2 the logits halve: P ∝ 1, sqrt 2, sqrt 3.
TEST(PerceiverPrunerTest, RankIsSoftmaxWithTemperature) {
  const float l2 = std::log(2.0f), l3 = std::log(3.0f);
  auto in = KeysInput({{{0}, {l2}, {l3}}}, 3);
  auto sel = MakePruner({Layer({{1}})})->Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_TRUE(at::allclose(sel->rank, Mat({{1 / 6.f, 1 / 3.f, 1 / 2.f}}), 1e-5, 1e-6));
  auto hot = MakePruner({Layer({{1}})}, PerceiverRouting::kRank, /*temperature=*/2.0)->Select(in);
  ASSERT_TRUE(hot.ok()) << hot.status();
  const float z = 1 + std::sqrt(2.f) + std::sqrt(3.f);
  EXPECT_TRUE(
      at::allclose(hot->rank, Mat({{1 / z, std::sqrt(2.f) / z, std::sqrt(3.f) / z}}), 1e-5, 1e-6));
}

// Two kv heads of head_dim 1, d_query 2 split into two heads: query [1, -1] makes head 0 prefer
// large keys and head 1 small ones. Keys are flattened per slot (head 0's then head 1's value).
TEST(PerceiverPrunerTest, SelectsPerKvHead) {
  auto pruner = MakePruner({Layer({{1, -1}}, /*d_model=*/2)});
  auto sel = pruner->Select(KeysInput({{{1}, {3}, {2}, {0}}, {{1}, {3}, {2}, {0}}}, 2));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{1, 2}, {0, 3}}));
}

// Layers have their own weights: layer 1's query prefers the second coordinate.
TEST(PerceiverPrunerTest, UsesTheLayersWeights) {
  auto pruner = MakePruner({Layer({{10, 0}}), Layer({{0, 10}})});
  auto in = KeysInput({{{1, 0}, {0, 1}, {0.5f, 0.5f}}}, 1);
  in.layer = 1;
  auto sel = pruner->Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{1}}));
  in.layer = 0;
  sel = pruner->Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0}}));
}

// §3.9: with target < query_len only the first `target` queries score. Query 0 prefers key 0
// mildly (P 0.73), query 1 prefers key 1 strongly (0.993): the mean of both picks key 1, query 0
// alone picks key 0.
TEST(PerceiverPrunerTest, FewerQueriesWhenTargetIsSmall) {
  auto pruner = MakePruner({Layer({{1, 0}, {0, 1}})});
  auto sel = pruner->Select(KeysInput({{{1, 0}, {0, 5}}}, 1));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0}}));
}

// Positional routing: 4 keys, 2 queries that both prefer a large first coordinate. Rank keeps
// the two best overall (0, 1); positional makes query 0 pick in keys 0..1 and query 1 in 2..3.
TEST(PerceiverPrunerTest, PositionalRoutingPicksPerSegment) {
  auto keys = KeysInput({{{0.9f, 0}, {0.8f, 0}, {0.1f, 0}, {0.2f, 0}}}, 2);
  auto rank = MakePruner({Layer({{5, 0}, {5, 0}})})->Select(keys);
  ASSERT_TRUE(rank.ok()) << rank.status();
  EXPECT_EQ(Rows(rank->indices), (Idx{{0, 1}}));
  auto pos = MakePruner({Layer({{5, 0}, {5, 0}})}, PerceiverRouting::kPositional)->Select(keys);
  ASSERT_TRUE(pos.ok()) << pos.status();
  EXPECT_EQ(Rows(pos->indices), (Idx{{0, 3}}));
}

// Positional routing with a target not divisible by the queries: 3 over 2 queries = 2 + 1;
// segments of 5 keys: {0, 1, 2} and {3, 4}.
TEST(PerceiverPrunerTest, PositionalRoutingUnevenShares) {
  auto keys = KeysInput({{{0.5f, 0}, {0.9f, 0}, {0.7f, 0}, {0.1f, 0}, {0.3f, 0}}}, 3);
  auto pos = MakePruner({Layer({{5, 0}, {5, 0}})}, PerceiverRouting::kPositional)->Select(keys);
  ASSERT_TRUE(pos.ok()) << pos.status();
  EXPECT_EQ(Rows(pos->indices), (Idx{{1, 2, 4}}));
}

// Greedy routing: query 0 prefers keys 0 and 1 strongly, query 1 key 2 mildly. Owners: keys 0, 1
// -> query 0; keys 2, 3 -> query 1. Rank keeps {0, 1} (highest means); greedy gives each query
// one pick: key 0 and key 2.
TEST(PerceiverPrunerTest, GreedyRoutingGivesEveryQueryItsShare) {
  auto keys = KeysInput({{{5, 0}, {4.9f, 0}, {0, 0.5f}, {0, 0}}}, 2);
  auto rank = MakePruner({Layer({{1, 0}, {0, 1}})})->Select(keys);
  ASSERT_TRUE(rank.ok()) << rank.status();
  EXPECT_EQ(Rows(rank->indices), (Idx{{0, 1}}));
  auto greedy = MakePruner({Layer({{1, 0}, {0, 1}})}, PerceiverRouting::kGreedy)->Select(keys);
  ASSERT_TRUE(greedy.ok()) << greedy.status();
  EXPECT_EQ(Rows(greedy->indices), (Idx{{0, 2}}));
}

// Random routing ignores the keys: same picks for different keys, same for every head, and
// reproducible per seed.
TEST(PerceiverPrunerTest, RandomRoutingIgnoresScores) {
  // 2 kv heads x head_dim 2 = d_model 4; d_query 2 = 2 heads of 1.
  auto pruner = MakePruner({Layer({{1, 0}}, 4)}, PerceiverRouting::kRandom, 1.0, /*seed=*/7);
  std::vector<std::vector<float>> a, b;
  for (int i = 0; i < 20; ++i) {
    a.push_back({static_cast<float>(i), 0});
    b.push_back({static_cast<float>(-i), 1});
  }
  auto sa = pruner->Select(KeysInput({a, a}, 5));
  auto sb = pruner->Select(KeysInput({b, b}, 5));
  ASSERT_TRUE(sa.ok() && sb.ok());
  EXPECT_EQ(Rows(sa->indices), Rows(sb->indices));
  EXPECT_EQ(Rows(sa->indices)[0], Rows(sa->indices)[1]);
  auto other = MakePruner({Layer({{1, 0}}, 4)}, PerceiverRouting::kRandom, 1.0, /*seed=*/8)
                   ->Select(KeysInput({a, a}, 5));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(Rows(sa->indices), Rows(other->indices));
}

TEST(PerceiverPrunerTest, RoutingNames) {
  for (const char* name : {"rank", "positional", "greedy", "random"}) {
    auto r = ParsePerceiverRouting(name);
    ASSERT_TRUE(r.ok()) << name;
    EXPECT_EQ(PerceiverRoutingName(*r), name);
  }
  auto bad = ParsePerceiverRouting("segments");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("rank, positional, greedy, random"));
}

// No weights: a clear error from Create() and from the registry, never a random fallback; a
// compression asking for it fails the same way.
TEST(PerceiverPrunerTest, NoWeightsIsAnError) {
  auto p = PerceiverPruner::Create(nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("needs trained weights"));
  compress::CompressionConfig c;
  c.pruner = "perceiver";
  auto r = compress::PrunerRegistry::Global().Create(c);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PerceiverPrunerTest, WeightsThatDoNotFitTheModelAreErrors) {
  auto pruner = MakePruner({Layer({{1, 0}})});  // d_model 2, one layer
  auto in = KeysInput({{{1, 0}, {0, 1}}}, 1);
  in.layer = 1;
  auto sel = pruner->Select(in);
  ASSERT_FALSE(sel.ok());
  EXPECT_THAT(sel.status().message(), HasSubstr("has 1 layers, asked for layer 1"));
  auto wide = pruner->Select(KeysInput({{{1, 0, 0}, {0, 1, 0}}}, 1));  // head_dim 3
  ASSERT_FALSE(wide.ok());
  EXPECT_THAT(wide.status().message(), HasSubstr("d_model=2"));
  compress::PruneInput no_keys = KeysInput({{{1, 0}, {0, 1}}}, 1);
  no_keys.keys = at::Tensor();
  EXPECT_THAT(pruner->Select(no_keys).status().message(), HasSubstr("keys"));
  EXPECT_TRUE(pruner->weights().CheckFits(1, 1, 2).ok());
  EXPECT_THAT(pruner->weights().CheckFits(30, 1, 2).message(), HasSubstr("the model has 30"));
  EXPECT_THAT(pruner->weights().CheckFits(1, 2, 2).message(), HasSubstr("d_model=2"));
  auto odd = MakePruner({Layer({{1, 0, 0}}, /*d_model=*/2)});  // d_query 3
  EXPECT_THAT(odd->weights().CheckFits(1, 2, 1).message(),
              HasSubstr("d_query=3 is not divisible by n_kv_heads=2"));
  auto odd_sel = odd->Select(KeysInput({{{1}, {0}}, {{0}, {1}}}, 1));
  ASSERT_FALSE(odd_sel.ok());
  EXPECT_THAT(odd_sel.status().message(), HasSubstr("d_query=3"));
}

// --- safetensors files -----------------------------------------------------------------------

// Writes a safetensors file of F32 tensors (name -> (shape, values)) plus metadata.
std::string WriteSafetensors(
    const std::string& name,
    const std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>& tensors,
    const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header;
  std::string data;
  for (const auto& [tensor, sv] : tensors) {
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(sv.second.data()), sv.second.size() * sizeof(float));
    header[tensor] = {
        {"dtype", "F32"}, {"shape", sv.first}, {"data_offsets", {begin, data.size()}}};
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string h = header.dump();
  const std::string path =
      ::testing::TempDir() + "/" + name + "_" + std::to_string(getpid()) + ".safetensors";
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = h.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << data;
  return path;
}

using TensorMap = std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>;

TensorMap TwoLayers() {
  TensorMap t;
  for (int l = 0; l < 2; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    t[p + "query"] = {{1, 2}, {l == 0 ? 10.f : 0.f, l == 0 ? 0.f : 10.f}};
    t[p + "wq.weight"] = {{2, 2}, {1, 0, 0, 1}};
    t[p + "wk.weight"] = {{2, 2}, {1, 0, 0, 1}};
  }
  return t;
}

// The registry builds a perceiver from CompressionConfig::perceiver_weights (and its routing);
// bad routing or weights given to another pruner are config errors; a missing file NotFound.
TEST(PerceiverWeightsTest, RegistryLoadsTheConfigsWeights) {
  compress::CompressionConfig c;
  c.pruner = "perceiver";
  c.perceiver_weights = WriteSafetensors("registry", TwoLayers());
  c.perceiver_routing = "greedy";
  ASSERT_TRUE(c.Validate().ok()) << c.Validate();
  auto p = compress::PrunerRegistry::Global().Create(c);
  ASSERT_TRUE(p.ok()) << p.status();
  auto* perceiver = dynamic_cast<PerceiverPruner*>(p->get());
  ASSERT_NE(perceiver, nullptr);
  EXPECT_EQ(perceiver->routing(), PerceiverRouting::kGreedy);
  EXPECT_EQ(perceiver->weights().n_layers(), 2);

  compress::CompressionConfig bad_routing = c;
  bad_routing.perceiver_routing = "nearest";
  EXPECT_EQ(bad_routing.Validate().code(), absl::StatusCode::kInvalidArgument);
  compress::CompressionConfig other = c;
  other.pruner = "tova";
  EXPECT_THAT(other.Validate().message(), HasSubstr("only read by pruner=perceiver"));
  compress::CompressionConfig missing = c;
  missing.perceiver_weights = ::testing::TempDir() + "/no_such_weights.safetensors";
  EXPECT_EQ(compress::PrunerRegistry::Global().Create(missing).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PerceiverWeightsTest, LoadsSafetensorsAndScores) {
  const std::string path = WriteSafetensors("ok", TwoLayers(), {{"temperature", "0.5"}});
  auto w = PerceiverWeights::Load(path);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->n_layers(), 2);
  EXPECT_EQ(w->query_len(), 1);
  EXPECT_EQ(w->d_query(), 2);
  EXPECT_EQ(w->d_model(), 2);
  EXPECT_DOUBLE_EQ(w->temperature(), 0.5);
  auto pruner = PerceiverPruner::Create(std::make_shared<const PerceiverWeights>(*std::move(w)));
  ASSERT_TRUE(pruner.ok());
  auto in = KeysInput({{{1, 0}, {0, 1}, {0.5f, 0.5f}}}, 1);
  in.layer = 1;
  auto sel = (*pruner)->Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{1}}));
  std::remove(path.c_str());
}

TEST(PerceiverWeightsTest, MalformedFilesAreErrorsNamingTheProblem) {
  auto expect_bad = [](const std::string& name, const TensorMap& t, const std::string& needle,
                       const std::map<std::string, std::string>& meta = {}) {
    const std::string path = WriteSafetensors(name, t, meta);
    auto w = PerceiverWeights::Load(path);
    ASSERT_FALSE(w.ok()) << name;
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(w.status().message(), HasSubstr(needle)) << name;
    std::remove(path.c_str());
  };
  TensorMap t = TwoLayers();
  t["layers.1.wq.weight"] = {{2, 3}, {1, 0, 0, 0, 1, 0}};
  expect_bad("shape", t, "layers.1.wq.weight is [2, 3], expected [2, 2]");
  t = TwoLayers();
  t.erase("layers.0.wk.weight");
  expect_bad("missing", t, "layers.0.wk.weight is missing");
  t = TwoLayers();
  t["layers.3.query"] = t["layers.0.query"];
  expect_bad("gap", t, "layer 2 is missing");
  t = TwoLayers();
  t["encoder.query"] = {{1}, {0}};
  expect_bad("unknown", t, "unexpected tensor 'encoder.query'");
  t = TwoLayers();
  t["layers.0.query"] = {{1, 2}, {NAN, 0}};
  expect_bad("nan", t, "NaN");
  expect_bad("temperature", TwoLayers(), "temperature", {{"temperature", "-1"}});
  auto none = PerceiverWeights::Create({}, 1.0, "x.safetensors");
  EXPECT_THAT(none.status().message(), HasSubstr("x.safetensors: no perceiver layers"));

  auto missing = PerceiverWeights::Load(::testing::TempDir() + "/no_such.safetensors");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  const std::string junk = ::testing::TempDir() + "/junk.safetensors";
  std::ofstream(junk) << "not a safetensors file";
  EXPECT_FALSE(PerceiverWeights::Load(junk).ok());
  std::remove(junk.c_str());
}

}  // namespace
}  // namespace ctxmem::learned
