// The batched decode step against each stream decoded alone through Transformer::Forward (the
// path tested against transformers' logits): streams with different memories (one shared),
// prompt lengths and numbers of steps, joining and leaving the batch between steps.

#include "common/model/batched_decoder.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "common/model/fast_decoder.h"
#include "common/model/model.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::model {
namespace {

using compress::testing::MakeTinyTransformer;

at::Tensor Ids(const std::vector<int32_t>& ids) {  // [1, n] int64
  std::vector<int64_t> v(ids.begin(), ids.end());
  return at::tensor(v, at::kLong).view({1, static_cast<int64_t>(v.size())});
}

// A memory: the post-RoPE cache of `n` tokens at positions [0, n).
KvCache MakeMemory(const Transformer& t, int64_t n, int32_t seed) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back((seed * 7 + i * 13) % t.config().n_vocab);
  ForwardOptions fo;
  fo.logits = LogitsMode::kNone;
  auto out = t.Forward(Ids(ids), at::arange(n, at::kLong).view({1, n}), nullptr, fo);
  EXPECT_TRUE(out.ok()) << out.status();
  KvCache cache;
  cache.Append(out->k, out->v);
  return cache;
}

// One stream decoded alone: prefill, then one Forward per token, the cache growing by concat.
struct Reference {
  KvCache cache;
  at::Tensor logits;  // [n_vocab] of the last step

  void Feed(const Transformer& t, const std::vector<int32_t>& ids) {
    const int64_t n = static_cast<int64_t>(ids.size());
    ForwardOptions fo;
    fo.logits = LogitsMode::kLast;
    fo.kv_with_past = true;
    auto pos = at::arange(cache.next_position, cache.next_position + n, at::kLong).view({1, n});
    auto out = t.Forward(Ids(ids), pos, cache.empty() ? nullptr : &cache, fo);
    ASSERT_TRUE(out.ok()) << out.status();
    cache.Extend(out->k, out->v);
    logits = out->logits.view({-1});
  }
};

double RelErr(const at::Tensor& got, const at::Tensor& ref) {
  return (got - ref).abs().max().item<double>() / ref.abs().max().item<double>();
}

struct StreamCase {
  int memory;  // index into the memories, -1 = none
  std::vector<int32_t> prompt;
};

// Runs `cases` through `decoder` for `n_steps` steps; stream i takes part in step s unless
// (s + i) % 3 == 2 (so streams leave and rejoin), fed its reference's argmax. Every batched row
// must match the stream alone within `tol` (relative to the largest logit).
void ExpectMatchesAlone(const Transformer& t, BatchedDecoder* decoder,
                        const std::vector<KvCache>& memories, const std::vector<StreamCase>& cases,
                        int n_steps, double tol) {
  c10::NoGradGuard no_grad;
  std::vector<std::unique_ptr<DecodeStream>> streams;
  std::vector<Reference> refs(cases.size());
  double worst = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    KvCache past = cases[i].memory >= 0 ? memories[cases[i].memory] : KvCache();
    refs[i].cache = past;
    auto s = decoder->NewStream(past, static_cast<int64_t>(cases[i].prompt.size()) + n_steps);
    ASSERT_TRUE(s.ok()) << s.status();
    if (cases[i].memory >= 0) {
      // The memory is read in place: the stream holds the very tensors, no copy.
      EXPECT_EQ((*s)->past().k[0].data_ptr(), memories[cases[i].memory].k[0].data_ptr());
    }
    auto logits = decoder->Prefill(s->get(), cases[i].prompt);
    ASSERT_TRUE(logits.ok()) << logits.status();
    refs[i].Feed(t, cases[i].prompt);
    worst = std::max(worst, RelErr(*logits, refs[i].logits));
    streams.push_back(std::move(*s));
  }
  for (int step = 0; step < n_steps; ++step) {
    std::vector<DecodeStream*> batch;
    std::vector<int32_t> tokens;
    std::vector<size_t> rows;
    for (size_t i = 0; i < cases.size(); ++i) {
      if ((step + i) % 3 == 2) continue;
      batch.push_back(streams[i].get());
      tokens.push_back(static_cast<int32_t>(refs[i].logits.argmax().item<int64_t>()));
      rows.push_back(i);
    }
    auto out = decoder->Step(batch, tokens);
    ASSERT_TRUE(out.ok()) << out.status();
    const int64_t n_vocab = t.config().n_vocab;
    for (size_t r = 0; r < rows.size(); ++r) {
      refs[rows[r]].Feed(t, {tokens[r]});
      const at::Tensor got =
          at::from_blob(const_cast<float*>(out->data()) + r * n_vocab, {n_vocab}).clone();
      const double err = RelErr(got, refs[rows[r]].logits);
      worst = std::max(worst, err);
      EXPECT_LT(err, tol) << "step " << step << " stream " << rows[r];
      EXPECT_EQ(got.argmax().item<int64_t>(), refs[rows[r]].logits.argmax().item<int64_t>());
    }
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(streams[i]->next_position(), refs[i].cache.next_position) << "stream " << i;
  }
  std::printf("[ batched vs alone ] max |logit diff| / max |logit|: %.2e\n", worst);
}

class BatchedDecoderTest : public ::testing::TestWithParam<int64_t> {};

// Dense path on a tiny random llama (GQA), with and without a sliding window (the param),
// with the CPU attention kernels and with the ATen attention of other devices.
TEST_P(BatchedDecoderTest, StepMatchesEachStreamAlone) {
  const auto tiny = MakeTinyTransformer(c10::Device(c10::kCPU));
  ModelConfig config = tiny->config();
  config.sliding_window = GetParam();
  const Transformer t(config, tiny->weights(), c10::Device(c10::kCPU));
  const std::vector<KvCache> memories = {MakeMemory(t, 5, 1), MakeMemory(t, 9, 2)};
  const std::vector<StreamCase> cases = {
      {0, {3, 17, 42}}, {1, {8, 9, 10, 11, 12, 13}}, {-1, {5, 6}}, {0, {40, 2, 33, 7}}};
  for (bool tensor_attention : {false, true}) {
    SCOPED_TRACE(tensor_attention ? "ATen attention" : "CPU kernel attention");
    auto decoder = BatchedDecoder::Create(t, nullptr);
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    (*decoder)->ForTesting_UseTensorAttention(tensor_attention);
    ExpectMatchesAlone(t, decoder->get(), memories, cases, /*n_steps=*/7, /*tol=*/1e-5);
  }
  // The memories were only read.
  const KvCache again = MakeMemory(t, 5, 1);
  EXPECT_TRUE(at::equal(again.k[1], memories[0].k[1]));
}

INSTANTIATE_TEST_SUITE_P(Window, BatchedDecoderTest, ::testing::Values(0, 6));

TEST(BatchedDecoderBadInputTest, RejectsBadSteps) {
  const auto t = MakeTinyTransformer(c10::Device(c10::kCPU));
  auto decoder = BatchedDecoder::Create(*t, nullptr);
  ASSERT_TRUE(decoder.ok());
  auto s = (*decoder)->NewStream(KvCache(), 2);
  ASSERT_TRUE(s.ok());
  DecodeStream* one[] = {s->get()};
  EXPECT_TRUE(absl::IsInvalidArgument((*decoder)->Step({}, {}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*decoder)->Step(one, {1, 2}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*decoder)->Step(one, {61}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*decoder)->Prefill(s->get(), {}).status()));
  ASSERT_TRUE((*decoder)->Prefill(s->get(), {1}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument((*decoder)->Prefill(s->get(), {1}).status()));
  ASSERT_TRUE((*decoder)->Step(one, {4}).ok());
  EXPECT_EQ((*s)->own_len(), 2);
  EXPECT_TRUE(absl::IsResourceExhausted((*decoder)->Step(one, {4}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*decoder)->NewStream(KvCache(), 0).status()));
}

// The packed path on the bundled model: each batched row is what FastDecoder computes for
// that stream alone (the same kernels row by row), streams with different pasts and lengths.
TEST(BatchedDecoderPackedTest, RowsMatchFastDecoderAlone) {
  if (!ctxmem::testing::BundledModelPresent()) GTEST_SKIP() << "bundled model not found";
  ModelOptions options;
  options.decode = "packed";
  auto model = Model::Load(ctxmem::testing::BundledModelPath(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  const Transformer& t = (*model)->transformer();
  const PackedWeights* packed = (*model)->packed_weights();
  ASSERT_NE(packed, nullptr);
  c10::NoGradGuard no_grad;
  const KvCache memory = MakeMemory(t, 20, 3);
  const std::vector<std::vector<int32_t>> prompts = {{1, 504, 3458}, {282, 4649, 314, 253, 2132}};
  auto decoder = BatchedDecoder::Create(t, packed);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  std::vector<std::unique_ptr<DecodeStream>> streams;
  std::vector<std::unique_ptr<FastDecoder>> alone;
  std::vector<KvCache> caches;
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < 3; ++i) {
    const std::vector<int32_t>& prompt = prompts[i % 2];
    KvCache past = i == 2 ? KvCache() : memory;  // streams 0 and 1 share the memory
    auto s = (*decoder)->NewStream(past, 16);
    ASSERT_TRUE(s.ok());
    auto logits = (*decoder)->Prefill(s->get(), prompt);
    ASSERT_TRUE(logits.ok()) << logits.status();
    Reference ref{past, {}};
    ref.Feed(t, prompt);
    auto f = FastDecoder::Create(t, *packed, ref.cache.seq_len() + 16);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Load(ref.cache).ok());
    tokens.push_back(static_cast<int32_t>(logits->argmax().item<int64_t>()));
    caches.push_back(ref.cache);
    streams.push_back(std::move(*s));
    alone.push_back(std::move(*f));
  }
  std::vector<DecodeStream*> batch = {streams[0].get(), streams[1].get(), streams[2].get()};
  const int64_t n_vocab = t.config().n_vocab;
  double worst = 0;
  for (int step = 0; step < 5; ++step) {
    auto out = (*decoder)->Step(batch, tokens);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < 3; ++i) {
      auto row = alone[i]->Step(tokens[i], caches[i].next_position++);
      ASSERT_TRUE(row.ok());
      const at::Tensor ref = at::from_blob(const_cast<float*>(row->data()), {n_vocab}).clone();
      const at::Tensor got =
          at::from_blob(const_cast<float*>(out->data()) + i * n_vocab, {n_vocab}).clone();
      const double err = RelErr(got, ref);
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-5) << "step " << step << " stream " << i;
      tokens[i] = static_cast<int32_t>(got.argmax().item<int64_t>());
      EXPECT_EQ(tokens[i], ref.argmax().item<int64_t>());
    }
  }
  std::printf("[ packed batched vs FastDecoder alone ] max rel diff: %.2e\n", worst);
}

// Feed on the packed path: a joiner's whole prompt as rows of the same step as another
// stream's decode token (causal attention within the joiner), then plain steps; every stream's
// logits are FastDecoder's for that stream fed one token at a time from the same past.
TEST(BatchedDecoderPackedTest, PromptRowsInAMixedStepMatchTokenByToken) {
  if (!ctxmem::testing::BundledModelPresent()) GTEST_SKIP() << "bundled model not found";
  ModelOptions options;
  options.decode = "packed";
  auto model = Model::Load(ctxmem::testing::BundledModelPath(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  const Transformer& t = (*model)->transformer();
  const PackedWeights* packed = (*model)->packed_weights();
  ASSERT_NE(packed, nullptr);
  c10::NoGradGuard no_grad;
  const KvCache memory = MakeMemory(t, 20, 5);
  const int64_t n_vocab = t.config().n_vocab;
  auto decoder = BatchedDecoder::Create(t, packed);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  // Stream 0 (shared memory) is fed a 3-token prompt alone, stream 1 (same memory) joins with
  // a 6-token prompt while stream 0 decodes, stream 2 (no past) joins with 4 tokens.
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 504, 3458}, {282, 4649, 314, 253, 2132, 30}, {9, 87, 1200, 4}};
  std::vector<std::unique_ptr<DecodeStream>> streams;
  std::vector<std::unique_ptr<FastDecoder>> alone;
  std::vector<int64_t> next_pos;
  for (size_t i = 0; i < 3; ++i) {
    KvCache past = i == 2 ? KvCache() : memory;
    auto s = (*decoder)->NewStream(past, 16);
    ASSERT_TRUE(s.ok());
    auto f = FastDecoder::Create(t, *packed, past.seq_len() + 16);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Load(past).ok());
    streams.push_back(std::move(*s));
    alone.push_back(std::move(*f));
    next_pos.push_back(past.next_position);
  }
  // Feeds `ids` to FastDecoder i one at a time; returns the last logits.
  const auto alone_feed = [&](size_t i, const std::vector<int32_t>& ids) {
    at::Tensor last;
    for (const int32_t id : ids) {
      auto row = alone[i]->Step(id, next_pos[i]++);
      EXPECT_TRUE(row.ok()) << row.status();
      last = at::from_blob(const_cast<float*>(row->data()), {n_vocab}).clone();
    }
    return last;
  };
  double worst = 0;
  std::vector<int32_t> next(3, 0);
  const auto check = [&](absl::Span<const float> out, const std::vector<size_t>& which,
                         const std::vector<std::vector<int32_t>>& fed, const char* what) {
    for (size_t j = 0; j < which.size(); ++j) {
      const size_t i = which[j];
      const at::Tensor ref = alone_feed(i, fed[j]);
      const at::Tensor got =
          at::from_blob(const_cast<float*>(out.data()) + j * n_vocab, {n_vocab}).clone();
      const double err = RelErr(got, ref);
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-5) << what << " stream " << i;
      next[i] = static_cast<int32_t>(got.argmax().item<int64_t>());
      EXPECT_EQ(next[i], ref.argmax().item<int64_t>()) << what << " stream " << i;
    }
  };
  {
    DecodeStream* b[] = {streams[0].get()};
    const absl::Span<const int32_t> rows[] = {prompts[0]};
    auto out = (*decoder)->Feed(b, rows);
    ASSERT_TRUE(out.ok()) << out.status();
    check(*out, {0}, {prompts[0]}, "prompt alone");
    EXPECT_EQ(streams[0]->own_len(), 3);
  }
  {
    DecodeStream* b[] = {streams[0].get(), streams[1].get(), streams[2].get()};
    const std::vector<int32_t> tok0 = {next[0]};
    const absl::Span<const int32_t> rows[] = {tok0, prompts[1], prompts[2]};
    auto out = (*decoder)->Feed(b, rows);
    ASSERT_TRUE(out.ok()) << out.status();
    check(*out, {0, 1, 2}, {tok0, prompts[1], prompts[2]}, "mixed step");
    EXPECT_EQ(streams[1]->own_len(), 6);
  }
  for (int step = 0; step < 3; ++step) {
    DecodeStream* b[] = {streams[0].get(), streams[1].get(), streams[2].get()};
    const std::vector<int32_t> toks = next;
    auto out = (*decoder)->Step(b, toks);
    ASSERT_TRUE(out.ok()) << out.status();
    check(*out, {0, 1, 2}, {{toks[0]}, {toks[1]}, {toks[2]}}, "decode step");
  }
  // A prompt that does not fit the capacity is refused and nothing is written.
  {
    DecodeStream* b[] = {streams[2].get()};
    const std::vector<int32_t> too_many(16, 7);
    const absl::Span<const int32_t> rows[] = {too_many};
    const int64_t before = streams[2]->own_len();
    EXPECT_TRUE(absl::IsResourceExhausted((*decoder)->Feed(b, rows).status()));
    EXPECT_EQ(streams[2]->own_len(), before);
  }
  std::printf("[ packed mixed prompt rows vs FastDecoder token by token ] max rel diff: %.2e\n",
              worst);
}

// Several tokens per stream need the packed path; the dense one says so.
TEST(BatchedDecoderBadInputTest, DenseFeedTakesOneTokenPerStream) {
  const auto t = MakeTinyTransformer(c10::Device(c10::kCPU));
  auto decoder = BatchedDecoder::Create(*t, nullptr);
  ASSERT_TRUE(decoder.ok());
  auto s = (*decoder)->NewStream(KvCache(), 4);
  ASSERT_TRUE(s.ok());
  DecodeStream* one[] = {s->get()};
  const std::vector<int32_t> two = {1, 2}, none;
  const absl::Span<const int32_t> rows[] = {two};
  EXPECT_TRUE(absl::IsFailedPrecondition((*decoder)->Feed(one, rows).status()));
  const absl::Span<const int32_t> empty_rows[] = {none};
  EXPECT_TRUE(absl::IsInvalidArgument((*decoder)->Feed(one, empty_rows).status()));
  EXPECT_EQ((*s)->own_len(), 0);
}

}  // namespace
}  // namespace ctxmem::model
