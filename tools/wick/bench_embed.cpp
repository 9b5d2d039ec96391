// `wick bench embed`: sentence-embedding throughput (docs/s) of BERT-base and MiniLM-L6 shaped
// encoders with random weights, at batch 1 and batch 100.
//
// The work is the same as bench/peers/embed_torch.py --bench: a corpus of 100 documents whose
// lengths cycle through 24..40 tokens (mean 32) with the same ids; batch 100 = the whole corpus
// as one padded batch with its attention mask; batch 1 = the 32-token document alone. Each timed
// run goes from token ids to mean-pooled, L2-normalised vectors through Embedder::embed_tokens
// (which returns host vectors, so the computation has finished when it returns). Tokenization is
// not timed (neither side does it).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_models.h"
#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::bench {
namespace {

struct EmbedBenchOptions {
  bool json = false;
  bool quick = false;
  std::string shape;  // empty: both
  std::string dtype = "f32";
  bool profile = false;
};

/// The benchmark documents, as embed_torch.py's bench_corpus.
std::vector<std::vector<int32_t>> corpus(int64_t vocab, int64_t n = 100) {
  std::vector<std::vector<int32_t>> docs;
  for (int64_t d = 0; d < n; ++d) {
    int64_t len = 24 + (7 * d) % 17;
    std::vector<int32_t> doc;
    for (int64_t t = 0; t < len; ++t) doc.push_back(static_cast<int32_t>((d * 7919 + t * 104729 + 13) % (vocab - 1000) + 1000));
    docs.push_back(doc);
  }
  return docs;
}

int run_embed_bench(const EmbedBenchOptions& o) {
  DType dtype = o.dtype == "bf16" ? DType::bf16 : o.dtype == "f16" ? DType::f16 : DType::f32;
  TimingOptions topt{.min_time_s = o.quick ? 1.0 : 3.0, .min_iters = o.quick ? 3 : 5, .max_iters = 100000,
                     .warmup = o.quick ? 1 : 2};
  std::vector<std::pair<std::string, const char*>> shapes = {{"bert-base", kBertBase}, {"minilm-l6", kMiniLM_L6}};
  for (const auto& [name, json] : shapes) {
    if (!o.shape.empty() && o.shape != name) continue;
    auto model = std::make_shared<BertModel>(BertConfig::parse(json, name), dtype);
    model->init_random(0);
    // The tokenizer is not used by embed_tokens; a one-token WordPiece keeps the Embedder whole.
    Tokenizer tok = Tokenizer::from_json(
        R"({"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}}})", "bench");
    Embedder emb(model, tok);
    auto docs = corpus(model->config().vocab_size);
    std::vector<std::vector<int32_t>> one;
    for (const auto& d : docs)
      if (d.size() == 32) {
        one.push_back(d);
        break;
      }
    EmbedOptions eo;
    eo.normalize = true;
    eo.batch_size = 100;
    for (const auto& [batch, set] : {std::pair{int64_t{1}, &one}, std::pair{int64_t{100}, &docs}}) {
      auto work = [&, set = set] { keep(emb.embed_tokens(*set, eo).to_vector<float>().data()); };
      Timing t = measure(work, topt);
      double s = t.median_us * 1e-6;
      int64_t tokens = 0;
      for (const auto& d : *set) tokens += static_cast<int64_t>(d.size());
      std::string full = "wick/" + name + "/batch" + std::to_string(batch);
      if (o.json) {
        nlohmann::json j = {{"name", full},         {"shape", name},      {"batch", batch},
                            {"tokens", tokens},     {"median_s", s},      {"docs_per_s", batch / s},
                            {"iters", t.iters},     {"dtype", o.dtype},   {"p10_s", t.p10_us * 1e-6},
                            {"p90_s", t.p90_us * 1e-6}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("%-26s %9.2f ms  %9.1f docs/s  (%lld iters, p10 %.2f ms, p90 %.2f ms)\n", full.c_str(), s * 1e3,
                    batch / s, static_cast<long long>(t.iters), t.p10_us * 1e-3, t.p90_us * 1e-3);
      }
      std::fflush(stdout);
      if (o.profile) print_profile(full, work);
    }
  }
  return 0;
}

[[maybe_unused]] const wick::cli::Command bench_embed{
    "bench embed", "Sentence-embedding throughput of BERT-base and MiniLM-L6 shaped encoders (docs/s)",
    [](CLI::App& app) -> wick::cli::Action {
      auto o = std::make_shared<EmbedBenchOptions>();
      app.add_flag("--json", o->json, "One JSON object per line instead of a table");
      app.add_flag("--quick", o->quick, "Short runs (noisier figures)");
      app.add_option("--shape", o->shape, "Only this shape")->check(CLI::IsMember({"bert-base", "minilm-l6"}));
      app.add_option("--dtype", o->dtype, "Weight and compute dtype")->check(CLI::IsMember({"f32", "bf16", "f16"}));
      app.add_flag("--profile", o->profile, "After each benchmark, print its kernel times (stderr)");
      return [o] { return run_embed_bench(*o); };
    }};

}  // namespace
}  // namespace wick::bench
