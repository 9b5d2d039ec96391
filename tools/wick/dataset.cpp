// `wick dataset`: reads a JSONL training file the way `wick train` does and tells what the
// trainer would see: record and token counts, warnings, and (with --show) examples decoded with
// their target tokens marked, to check prompt masking and chat rendering before a long run.
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct DatasetCliOptions {
  std::string model;
  std::string data;
  int64_t max_seq_len = 2048;
  bool truncate = false;
  bool mask_prompt = false;
  bool no_eos = false;
  int64_t show = 0;
  bool json = false;
};

// The model's chat template when it has one; a broken one is an error, a missing one is not
// (only chat records need it, and they say so with their line).
std::optional<ChatTemplateConfig> chat_template_of(const std::string& model, const Tokenizer& tok) {
  namespace fs = std::filesystem;
  fs::path dir = fs::is_directory(model) ? fs::path(model) : fs::path(model).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_regular_file(dir / "chat_template.jinja") && tok.chat_template().empty())
    return std::nullopt;
  return load_chat_template(dir.string());
}

// Decoded text of ids[begin, end).
std::string text_of(const Tokenizer& tok, const Example& ex, size_t begin, size_t end) {
  return tok.decode(std::span<const int32_t>(ex.ids.data() + begin, end - begin));
}

// The example's text with each run of target tokens between markers.
std::string marked(const Tokenizer& tok, const Example& ex, const char* open, const char* close) {
  std::string out;
  size_t i = 0;
  while (i < ex.ids.size()) {
    size_t j = i;
    while (j < ex.ids.size() && ex.target[j] == ex.target[i]) ++j;
    std::string piece = text_of(tok, ex, i, j);
    out += ex.target[i] ? open + piece + close : piece;
    i = j;
  }
  return out;
}

int run_dataset(const DatasetCliOptions& o) {
  Tokenizer tok = Tokenizer::load(o.model);
  auto chat = chat_template_of(o.model, tok);
  DatasetOptions opts;
  opts.max_seq_len = o.max_seq_len;
  opts.overlong = o.truncate ? Overlong::truncate : Overlong::error;
  opts.mask_prompt = o.mask_prompt;
  opts.add_eos = !o.no_eos;
  Dataset d = Dataset::load_jsonl(o.data, tok, chat ? &*chat : nullptr, opts);
  const size_t shown =
      static_cast<size_t>(std::min<int64_t>(o.show, static_cast<int64_t>(d.size())));
  if (o.json) {
    nlohmann::json j = {{"path", d.path()},           {"records", d.size()},
                        {"tokens", d.total_tokens()}, {"target_tokens", d.target_tokens()},
                        {"longest", d.longest()},     {"truncated", d.truncated()},
                        {"warnings", d.warnings()},   {"examples", nlohmann::json::array()}};
    for (size_t i = 0; i < shown; ++i)
      j["examples"].push_back({{"line", d[i].line}, {"ids", d[i].ids}, {"target", d[i].target}});
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %zu records, %lld tokens, %lld target tokens, longest %lld, mean %.1f\n",
              d.path().c_str(), d.size(), static_cast<long long>(d.total_tokens()),
              static_cast<long long>(d.target_tokens()), static_cast<long long>(d.longest()),
              static_cast<double>(d.total_tokens()) / static_cast<double>(d.size()));
  std::fflush(stdout);
  for (const auto& w : d.warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
  // Reverse video marks targets on a terminal; elsewhere brackets do.
  const bool tty = isatty(fileno(stdout));
  const char* open = tty ? "\x1b[7m" : "[[";
  const char* close = tty ? "\x1b[0m" : "]]";
  for (size_t i = 0; i < shown; ++i) {
    int64_t targets = 0;
    for (size_t k = 1; k < d[i].target.size(); ++k) targets += d[i].target[k];
    std::printf("\n--- line %lld: %zu tokens, %lld targets ---\n%s\n",
                static_cast<long long>(d[i].line), d[i].ids.size(), static_cast<long long>(targets),
                marked(tok, d[i], open, close).c_str());
  }
  return 0;
}

wick::cli::Command dataset_command{
    "dataset",
    "Read a JSONL training file as `wick train` would: counts, warnings, and examples with their "
    "target (trained-on) tokens marked",
    [](CLI::App& app) {
      auto o = std::make_shared<DatasetCliOptions>();
      app.add_option("--model", o->model,
                     "Model folder (its tokenizer.json and chat template), or a tokenizer.json")
          ->required();
      app.add_option("--data", o->data,
                     "JSONL file: {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\"} or "
                     "{\"input_ids\"} records")
          ->required();
      app.add_option("--max-seq-len", o->max_seq_len, "Longest record, in tokens")
          ->capture_default_str()
          ->check(CLI::Range(int64_t(2), int64_t(1) << 30));
      app.add_flag("--truncate", o->truncate, "Cut longer records instead of failing");
      app.add_flag("--mask-prompt", o->mask_prompt, "Targets only completion / assistant tokens");
      app.add_flag("--no-eos", o->no_eos, "Do not append EOS to text and completion records");
      app.add_option("--show", o->show,
                     "Print the first N examples, targets marked (reverse video, or [[ ]] when "
                     "not a terminal)")
          ->capture_default_str()
          ->check(CLI::NonNegativeNumber);
      app.add_flag("--json", o->json,
                   "One JSON object (counts, warnings, shown examples' ids and "
                   "target flags)");
      return [o] { return run_dataset(*o); };
    }};

}  // namespace
}  // namespace wick::cli
