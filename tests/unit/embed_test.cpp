// BERT-family sentence embeddings against fixtures written by a reference implementation
// (tests/tools/make_bert_fixtures.py: transformers' BertModel/RobertaModel and BertTokenizerFast
// on the GPU machine, else the plain-PyTorch peer bench/peers/embed_torch.py): token ids,
// last_hidden_state of a padded batch, mean / CLS / max pooling, normalisation, truncation,
// batched = one by one, the "bert." prefix, bf16 weights, vocab.txt-only folders,
// sentence-transformers defaults, broken folders, and cosine / top-k against naive loops.
//
// Tolerances: f32 vectors and hidden states within 1e-5 of the reference (absolute); a text
// embedded inside a padded batch within 1e-5 of the same text alone (GEMM blocking differs with
// the batch's row count, so the last bits may differ; the padding itself contributes exactly 0).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unistd.h>

#include "wick/wick.h"

namespace {

using namespace wick;
namespace fs = std::filesystem;

constexpr double kTol = 1e-5;

std::string fixture(const std::string& name) { return std::string(WICK_FIXTURES_DIR) + "/models/" + name; }

bool have(const std::string& name) { return fs::exists(fixture(name) + "/expected.safetensors") || fs::exists(fixture(name) + "/model.safetensors"); }

#define REQUIRE_FIXTURE(name) \
  if (!have(name)) GTEST_SKIP() << "fixture " << fixture(name) << " missing (run tests/tools/make_bert_fixtures.py)"

struct Expected {
  std::vector<std::string> sentences;
  std::vector<std::vector<int32_t>> ids;
  std::string long_text;
  std::map<std::string, Tensor> t;
};

Expected read_expected(const std::string& name) {
  Expected e;
  std::ifstream f(fixture(name) + "/expected.json");
  auto j = nlohmann::json::parse(f);
  e.sentences = j.at("sentences").get<std::vector<std::string>>();
  e.ids = j.at("ids").get<std::vector<std::vector<int32_t>>>();
  e.long_text = j.at("long_text").get<std::string>();
  e.t = load_safetensors(fixture(name) + "/expected.safetensors");
  return e;
}

double max_abs_diff(const std::vector<float>& x, const std::vector<float>& y) {
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}
double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  return max_abs_diff(a.to_vector<float>(), b.to_vector<float>());
}

/// Row r of a [N, D] tensor.
std::vector<float> row(const Tensor& t, int64_t r) {
  return slice(t, 0, r, r + 1).to_vector<float>();
}

// ---- against the reference ---------------------------------------------------------------------

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, TokenIds) {
  REQUIRE_FIXTURE(GetParam());
  Expected e = read_expected(GetParam());
  Embedder emb = Embedder::load(fixture(GetParam()));
  for (size_t i = 0; i < e.sentences.size(); ++i)
    EXPECT_EQ(emb.tokenize(e.sentences[i], {}), e.ids[i]) << "sentence " << i << ": " << e.sentences[i];
}

TEST_P(Reference, HiddenStatesOfPaddedBatch) {
  REQUIRE_FIXTURE(GetParam());
  Expected e = read_expected(GetParam());
  auto model = BertModel::load(fixture(GetParam()));
  const Tensor& ids = e.t.at("ids");
  const Tensor& mask = e.t.at("attention_mask");
  Tensor h = model->forward(ids, mask);
  Tensor ref = e.t.at("last_hidden_state");
  ASSERT_EQ(h.shape(), ref.shape());
  // Real tokens only: padding rows are never read (and RoBERTa gives them other positions).
  auto hv = h.to_vector<float>(), rv = ref.to_vector<float>();
  auto m = mask.to_vector<int64_t>();
  const int64_t H = h.shape()[2];
  double worst = 0;
  for (size_t r = 0; r < m.size(); ++r)
    if (m[r])
      for (int64_t d = 0; d < H; ++d)
        worst = std::max(worst, std::abs(double(hv[r * H + d]) - double(rv[r * H + d])));
  EXPECT_LT(worst, kTol);
}

TEST_P(Reference, PackedBatchEqualsPaddedBatch) {
  REQUIRE_FIXTURE(GetParam());
  Expected e = read_expected(GetParam());
  auto model = BertModel::load(fixture(GetParam()));
  Tensor packed = model->forward_packed(e.ids);
  Tensor ref = e.t.at("last_hidden_state");
  ASSERT_EQ(packed.shape(), ref.shape());
  auto pv = packed.to_vector<float>(), rv = ref.to_vector<float>();
  const int64_t T = ref.shape()[1], H = ref.shape()[2];
  double worst = 0;
  for (size_t b = 0; b < e.ids.size(); ++b)
    for (int64_t t = 0; t < static_cast<int64_t>(e.ids[b].size()); ++t)
      for (int64_t d = 0; d < H; ++d) {
        size_t i = (b * T + t) * H + d;
        worst = std::max(worst, std::abs(double(pv[i]) - double(rv[i])));
      }
  EXPECT_LT(worst, kTol);
  EXPECT_THROW(model->forward_packed({}), Error);
  EXPECT_THROW(model->forward_packed({{2, 3}, {}}), Error);
  EXPECT_THROW(model->forward_packed({std::vector<int32_t>(200, 5)}), Error);
}

TEST_P(Reference, PooledVectors) {
  REQUIRE_FIXTURE(GetParam());
  Expected e = read_expected(GetParam());
  Embedder emb = Embedder::load(fixture(GetParam()));
  EmbedOptions o;
  o.batch_size = 3;  // several length-sorted batches
  struct Case {
    Pooling pooling;
    bool normalize;
    const char* key;
  };
  for (Case c : {Case{Pooling::mean, false, "mean"}, Case{Pooling::mean, true, "mean_normalized"},
                 Case{Pooling::cls, false, "cls"}, Case{Pooling::max, false, "max"}}) {
    o.pooling = c.pooling;
    o.normalize = c.normalize;
    Tensor v = emb.embed(e.sentences, o);
    EXPECT_LT(max_abs_diff(v, e.t.at(c.key)), kTol) << c.key;
  }
}

TEST_P(Reference, Truncation) {
  REQUIRE_FIXTURE(GetParam());
  Expected e = read_expected(GetParam());
  Embedder emb = Embedder::load(fixture(GetParam()));
  EmbedOptions o;
  o.normalize = true;
  // A user limit of 8 tokens: [CLS] + 6 tokens + [SEP], as transformers truncates.
  o.max_length = 8;
  auto ids8 = e.t.at("truncated8_ids").to_vector<int64_t>();
  int64_t T8 = e.t.at("truncated8_ids").shape()[1];
  for (size_t i = 0; i < e.sentences.size(); ++i) {
    auto got = emb.tokenize(e.sentences[i], o);
    std::vector<int32_t> want;
    for (int64_t t = 0; t < T8; ++t)
      if (t < static_cast<int64_t>(std::min<size_t>(e.ids[i].size(), 8))) want.push_back(static_cast<int32_t>(ids8[i * T8 + t]));
    EXPECT_EQ(got, want) << "sentence " << i;
  }
  EXPECT_LT(max_abs_diff(emb.embed(e.sentences, o), e.t.at("truncated8")), kTol);
  // Longer than the model's positions: cut to the model's limit by default ...
  o.max_length = 0;
  Tensor lv = emb.embed({e.long_text}, o);
  EXPECT_EQ(static_cast<int64_t>(emb.tokenize(e.long_text, o).size()), e.t.at("long_ids").shape()[1]);
  EXPECT_LT(max_abs_diff(lv, e.t.at("long_mean_normalized")), kTol);
  // ... or an error naming the text when truncation is off.
  o.truncate = false;
  try {
    emb.embed({"short", e.long_text}, o);
    FAIL() << "over-long text accepted with truncate = false";
  } catch (const Error& err) {
    std::string msg = err.what();
    EXPECT_NE(msg.find("text 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("exceeds max_length"), std::string::npos) << msg;
  }
  // A limit that leaves no room for text is an error, not an empty sequence.
  o.truncate = true;
  o.max_length = 2;
  EXPECT_THROW(emb.embed({e.long_text}, o), Error);
}

INSTANTIATE_TEST_SUITE_P(Embed, Reference, ::testing::Values("bert-tiny", "bert-tiny-bf16", "roberta-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Embed, PrefixedCheckpointLoadsTheSameEncoder) {
  REQUIRE_FIXTURE("bert-tiny");
  REQUIRE_FIXTURE("bert-tiny-prefixed");
  Expected e = read_expected("bert-tiny");
  Embedder emb = Embedder::load(fixture("bert-tiny-prefixed"));
  EmbedOptions o;
  o.normalize = true;
  EXPECT_LT(max_abs_diff(emb.embed(e.sentences, o), e.t.at("mean_normalized")), kTol);
}

// load() fuses query/key/value into one projection; a replaced projection (here LoRA-wrapped, B = 0)
// takes the three-GEMM path, and update() of a fused weight is seen by the next forward.
TEST(Embed, FusedAndSeparateProjectionsAgree) {
  REQUIRE_FIXTURE("bert-tiny");
  Expected e = read_expected("bert-tiny");
  auto fused = BertModel::load(fixture("bert-tiny"));
  auto separate = BertModel::load(fixture("bert-tiny"));
  LoraOptions lo;
  lo.targets = {"query"};
  apply_lora(*separate, lo);
  const Tensor& ids = e.t.at("ids");
  const Tensor& mask = e.t.at("attention_mask");
  EXPECT_LT(max_abs_diff(fused->forward(ids, mask), separate->forward(ids, mask)), kTol);
  Tensor w = fused->parameters().at("encoder.layer.1.attention.self.query.weight");
  Tensor changed = (w * 0.5).eval();
  Tensor before = fused->forward(ids, mask).eval();
  fused->update({{"encoder.layer.1.attention.self.query.weight", changed}});
  separate->update({{"encoder.layer.1.attention.self.query.weight", changed}});
  Tensor after = fused->forward(ids, mask);
  EXPECT_GT(max_abs_diff(after, before), 1e-3);
  EXPECT_LT(max_abs_diff(after, separate->forward(ids, mask)), kTol);
}

TEST(Embed, Bf16WeightsComputedInBf16StayClose) {
  REQUIRE_FIXTURE("bert-tiny-bf16");
  Expected e = read_expected("bert-tiny-bf16");
  Embedder emb = Embedder::load(fixture("bert-tiny-bf16"), DType::bf16);
  EXPECT_EQ(emb.model()->dtype(), DType::bf16);
  EmbedOptions o;
  o.normalize = true;
  // bf16 activations carry 8 bits of mantissa: close, not equal.
  EXPECT_LT(max_abs_diff(emb.embed(e.sentences, o), e.t.at("mean_normalized")), 0.05);
}

TEST(Embed, BatchEqualsOneByOne) {
  REQUIRE_FIXTURE("bert-tiny");
  Expected e = read_expected("bert-tiny");
  Embedder emb = Embedder::load(fixture("bert-tiny"));
  for (Pooling p : {Pooling::mean, Pooling::cls, Pooling::max}) {
    EmbedOptions o;
    o.pooling = p;
    o.normalize = true;
    o.batch_size = 64;
    Tensor all = emb.embed(e.sentences, o);
    for (size_t i = 0; i < e.sentences.size(); ++i) {
      Tensor one = emb.embed({e.sentences[i]}, o);
      EXPECT_LT(max_abs_diff(row(all, static_cast<int64_t>(i)), one.to_vector<float>()), kTol)
          << pooling_name(p) << " sentence " << i;
    }
  }
}

TEST(Embed, MaxPoolingMatchesNaiveLoop) {
  REQUIRE_FIXTURE("bert-tiny");
  Expected e = read_expected("bert-tiny");
  auto model = BertModel::load(fixture("bert-tiny"));
  Tensor ids = e.t.at("ids"), mask = e.t.at("attention_mask");
  Tensor h = model->forward(ids, mask).eval();
  Tensor pooled = pool(h, mask, Pooling::max);
  auto hv = h.to_vector<float>();
  auto m = mask.to_vector<int64_t>();
  const int64_t B = h.shape()[0], T = h.shape()[1], H = h.shape()[2];
  std::vector<float> ref(static_cast<size_t>(B * H), -INFINITY);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      if (m[b * T + t])
        for (int64_t d = 0; d < H; ++d) ref[b * H + d] = std::max(ref[b * H + d], hv[(b * T + t) * H + d]);
  EXPECT_EQ(pooled.to_vector<float>(), ref);
}

TEST(Embed, EmptyInputs) {
  REQUIRE_FIXTURE("bert-tiny");
  Embedder emb = Embedder::load(fixture("bert-tiny"));
  Tensor none = emb.embed({}, {});
  EXPECT_EQ(none.shape(), (Shape{0, 32}));
  // The empty text is [CLS] [SEP]: a real vector (checked against the reference above).
  EXPECT_EQ(emb.tokenize("", {}).size(), 2u);
  EXPECT_THROW(emb.embed_tokens({{2, 3}, {}}, {}), Error);
  EXPECT_THROW(emb.embed_tokens({{2, 9999, 3}}, {}), Error);
  EmbedOptions bad;
  bad.batch_size = 0;
  EXPECT_THROW(emb.embed({"x"}, bad), Error);
}

TEST(Embed, PrefixIsPrepended) {
  REQUIRE_FIXTURE("bert-tiny");
  Embedder emb = Embedder::load(fixture("bert-tiny"));
  EmbedOptions o;
  o.prefix = "query: ";
  EXPECT_EQ(emb.tokenize("a b c", o), emb.tokenize("query: a b c", {}));
  EXPECT_EQ(emb.embed({"a b c"}, o).to_vector<float>(), emb.embed({"query: a b c"}, {}).to_vector<float>());
}

// ---- folders -----------------------------------------------------------------------------------

class Folder : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("bert-tiny")) GTEST_SKIP() << "fixture bert-tiny missing";
    dir_ = fs::temp_directory_path() / ("wick_embed_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"})
      fs::copy(fixture("bert-tiny") + "/" + f, dir_ / f);
    weights_ = load_safetensors(fixture("bert-tiny") + "/model.safetensors");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
  }
  void write_weights() { save_safetensors((dir_ / "model.safetensors").string(), weights_); }
  void expect_error(const std::string& a, const std::string& b = "") {
    try {
      Embedder::load(dir_.string());
      FAIL() << "no error; expected " << a;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(a), std::string::npos) << msg;
      if (!b.empty()) {
        EXPECT_NE(msg.find(b), std::string::npos) << msg;
      }
    }
  }
  fs::path dir_;
  std::map<std::string, Tensor> weights_;
};

TEST_F(Folder, Reference) {
  write_weights();
  EXPECT_NO_THROW(Embedder::load(dir_.string()));
}

TEST_F(Folder, VocabTxtWithoutTokenizerJson) {
  write_weights();
  fs::remove(dir_ / "tokenizer.json");
  Expected e = read_expected("bert-tiny");
  Embedder emb = Embedder::load(dir_.string());
  for (size_t i = 0; i < e.sentences.size(); ++i) EXPECT_EQ(emb.tokenize(e.sentences[i], {}), e.ids[i]) << i;
  EmbedOptions o;
  o.normalize = true;
  EXPECT_LT(max_abs_diff(emb.embed(e.sentences, o), e.t.at("mean_normalized")), kTol);
}

TEST_F(Folder, NoTokenizer) {
  write_weights();
  fs::remove(dir_ / "tokenizer.json");
  fs::remove(dir_ / "vocab.txt");
  expect_error("no tokenizer.json or vocab.txt");
}

TEST_F(Folder, MissingConfig) {
  write_weights();
  fs::remove(dir_ / "config.json");
  expect_error("config.json", "missing");
}

TEST_F(Folder, BadConfigField) {
  write_weights();
  write("config.json", R"({"model_type": "bert", "vocab_size": 100, "hidden_size": "32", "intermediate_size": 64,
                           "num_hidden_layers": 2, "num_attention_heads": 4})");
  expect_error("config.json", "hidden_size");
}

TEST_F(Folder, UnsupportedConfig) {
  write_weights();
  write("config.json", R"({"model_type": "distilbert", "vocab_size": 100})");
  expect_error("config.json", "model_type");
  write("config.json", R"({"model_type": "bert", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
                           "num_hidden_layers": 2, "num_attention_heads": 5})");
  expect_error("config.json", "num_attention_heads");
  write("config.json", R"({"model_type": "bert", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
                           "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_act": "swish"})");
  expect_error("config.json", "hidden_act");
}

TEST_F(Folder, MissingWeightsFile) { expect_error("model.safetensors"); }

TEST_F(Folder, MissingTensor) {
  weights_.erase("encoder.layer.1.attention.self.key.bias");
  write_weights();
  expect_error("encoder.layer.1.attention.self.key.bias", "model.safetensors");
}

TEST_F(Folder, WrongShape) {
  weights_["encoder.layer.0.intermediate.dense.weight"] = zeros({32, 64});
  write_weights();
  expect_error("encoder.layer.0.intermediate.dense.weight", "[32,64]");
}

TEST_F(Folder, UnexpectedTensor) {
  weights_["encoder.layer.5.output.dense.weight"] = zeros({4});
  write_weights();
  expect_error("encoder.layer.5.output.dense.weight", "unexpected");
}

TEST_F(Folder, TruncatedWeights) {
  write_weights();
  fs::resize_file(dir_ / "model.safetensors", fs::file_size(dir_ / "model.safetensors") - 100);
  expect_error("model.safetensors");
}

TEST_F(Folder, SentenceTransformersDefaults) {
  write_weights();
  write("modules.json", R"([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])");
  write("1_Pooling/config.json", R"({"word_embedding_dimension": 32, "pooling_mode_cls_token": true,
    "pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": false})");
  write("sentence_bert_config.json", R"({"max_seq_length": 8, "do_lower_case": false})");
  Embedder emb = Embedder::load(dir_.string());
  EXPECT_EQ(emb.default_options().pooling, Pooling::cls);
  EXPECT_TRUE(emb.default_options().normalize);
  EXPECT_EQ(emb.default_options().max_length, 8);
  EXPECT_EQ(emb.tokenize("one two three four five six seven eight nine", emb.default_options()).size(), 8u);

  write("1_Pooling/config.json", R"({"pooling_mode_lasttoken": true})");
  expect_error("1_Pooling", "pooling_mode_lasttoken");
  write("1_Pooling/config.json", R"({"pooling_mode_cls_token": "yes"})");
  expect_error("1_Pooling", "pooling_mode_cls_token");
  write("modules.json", R"({"not": "a list"})");
  expect_error("modules.json");
}

// ---- similarity and search ---------------------------------------------------------------------

std::vector<float> seeded(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>((s >> 8) % 2001) / 1000.0f - 1.0f;
  }
  return v;
}

TEST(Search, CosineMatchesNaiveLoop) {
  const int64_t N = 5, M = 40, D = 16;
  auto a = seeded(N * D, 1), b = seeded(M * D, 2);
  Tensor s = cosine_similarity(Tensor::from_vector(a, {N, D}), Tensor::from_vector(b, {M, D}));
  ASSERT_EQ(s.shape(), (Shape{N, M}));
  auto sv = s.to_vector<float>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < M; ++j) {
      double dot = 0, na = 0, nb = 0;
      for (int64_t d = 0; d < D; ++d) {
        dot += double(a[i * D + d]) * b[j * D + d];
        na += double(a[i * D + d]) * a[i * D + d];
        nb += double(b[j * D + d]) * b[j * D + d];
      }
      EXPECT_NEAR(sv[i * M + j], dot / std::sqrt(na * nb), 1e-6) << i << "," << j;
    }
}

TEST(Search, TopKMatchesNaiveSort) {
  const int64_t N = 3, M = 50, D = 8;
  auto a = seeded(N * D, 3), b = seeded(M * D, 4);
  // Two identical corpus rows: ties go to the lower index.
  std::copy(b.begin(), b.begin() + D, b.begin() + 7 * D);
  Tensor q = Tensor::from_vector(a, {N, D}), c = Tensor::from_vector(b, {M, D});
  auto sims = cosine_similarity(q, c).to_vector<float>();
  for (bool cosine : {true, false}) {
    auto hits = top_k(q, c, 6, cosine);
    ASSERT_EQ(hits.size(), size_t(N));
    for (int64_t i = 0; i < N; ++i) {
      std::vector<std::pair<double, int64_t>> ref;
      for (int64_t j = 0; j < M; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += double(a[i * D + d]) * b[j * D + d];
        ref.push_back({cosine ? sims[i * M + j] : dot, j});
      }
      std::stable_sort(ref.begin(), ref.end(), [](auto& x, auto& y) { return x.first > y.first; });
      ASSERT_EQ(hits[i].size(), 6u);
      for (size_t r = 0; r < 6; ++r) {
        EXPECT_EQ(hits[i][r].index, ref[r].second) << "query " << i << " rank " << r;
        EXPECT_NEAR(hits[i][r].score, ref[r].first, 1e-5);
      }
    }
  }
  // The tie: query 0 against corpus rows 0 and 7 (identical), in index order wherever they land.
  auto all = top_k(q, c, M);
  for (const auto& hs : all) {
    auto p0 = std::find_if(hs.begin(), hs.end(), [](auto& h) { return h.index == 0; });
    auto p7 = std::find_if(hs.begin(), hs.end(), [](auto& h) { return h.index == 7; });
    EXPECT_LT(p0, p7);
  }
  EXPECT_EQ(top_k(q, c, 500)[0].size(), size_t(M));  // k clamps to the corpus
  EXPECT_TRUE(top_k(q, c, 0)[0].empty());
  EXPECT_THROW(top_k(q, Tensor::from_vector(b, {M / 2, 2 * D}), 3), Error);
  EXPECT_THROW(top_k(q, c, -1), Error);
}

TEST(Search, PoolRejectsBadShapes) {
  EXPECT_THROW(pool(zeros({2, 3}), zeros({2, 3}, DType::i64), Pooling::mean), Error);
  EXPECT_THROW(pool(zeros({2, 3, 4}), zeros({2, 4}, DType::i64), Pooling::mean), Error);
  EXPECT_THROW(parse_pooling("sum"), Error);
  EXPECT_EQ(parse_pooling("cls"), Pooling::cls);
}

}  // namespace
