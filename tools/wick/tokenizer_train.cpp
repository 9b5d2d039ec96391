// `wick tokenizer train`: trains a byte-level BPE tokenizer on text files and writes
// tokenizer.json and tokenizer_config.json into a folder.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct TrainOptions {
  std::vector<std::string> inputs;
  int32_t vocab_size = 4096;
  uint64_t min_frequency = 2;
  std::string special_tokens = "<|endoftext|>";
  std::string chat_template;
  int64_t model_max_length = 2048;
  std::string output;
  int threads = 0;
  bool quiet = false;
  bool json = false;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string t = s.substr(start, end - start);
    size_t b = t.find_first_not_of(" \t"), e = t.find_last_not_of(" \t");
    if (b == std::string::npos) {
      if (end < s.size() || !out.empty() || !t.empty())
        throw Error("--special-tokens: empty token in \"" + s + "\"");
    } else {
      out.push_back(t.substr(b, e - b + 1));
    }
    start = end + 1;
  }
  return out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run_train(const TrainOptions& o) {
  BpeTrainerOptions opts;
  opts.vocab_size = o.vocab_size;
  opts.min_frequency = o.min_frequency;
  opts.special_tokens = split_commas(o.special_tokens);
  opts.show_progress = !o.quiet;
  opts.threads = o.threads;
  BpeTokenizerConfigOptions cfg;
  cfg.model_max_length = o.model_max_length;
  cfg.chat_template = o.chat_template;
  // The config is checked before the (long) training: a missing ChatML token fails at once.
  std::string config = bpe_tokenizer_config_json(opts.special_tokens, cfg);
  // So is an output folder that cannot be made.
  std::error_code ec;
  std::filesystem::create_directories(o.output, ec);
  if (ec) throw Error(o.output + ": cannot create the output folder: " + ec.message());

  BpeTrainResult r = train_bpe_tokenizer_files(o.inputs, opts);
  write_bpe_tokenizer(o.output, r.tokenizer_json, config);

  // How well the result compresses the corpus it was trained on.
  Tokenizer tok = Tokenizer::from_json(r.tokenizer_json, o.output + "/tokenizer.json", config);
  auto t0 = std::chrono::steady_clock::now();
  uint64_t tokens = 0;
  for (const std::string& f : o.inputs) tokens += tok.encode(read_all(f), false).size();
  double encode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double ratio = tokens ? static_cast<double>(r.corpus_bytes) / static_cast<double>(tokens) : 0;
  size_t n_special = opts.special_tokens.size();

  if (o.json) {
    nlohmann::json j = {{"output", o.output},
                        {"inputs", o.inputs},
                        {"vocab_size", r.vocab_size},
                        {"special_tokens", opts.special_tokens},
                        {"merges", r.merges},
                        {"stopped_by", r.stopped_by},
                        {"corpus_bytes", r.corpus_bytes},
                        {"words", r.words},
                        {"unique_words", r.unique_words},
                        {"corpus_tokens", tokens},
                        {"bytes_per_token", ratio},
                        {"train_seconds", r.seconds},
                        {"encode_seconds", encode_s}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("trained on %llu bytes in %zu file(s): %llu words, %llu distinct\n",
              static_cast<unsigned long long>(r.corpus_bytes), o.inputs.size(),
              static_cast<unsigned long long>(r.words),
              static_cast<unsigned long long>(r.unique_words));
  std::printf("vocab %d = %zu special + 256 bytes + %d merged tokens (%zu merges; stopped by %s) in %.2f s\n",
              r.vocab_size, n_special, r.vocab_size - static_cast<int32_t>(n_special) - 256, r.merges,
              r.stopped_by.c_str(), r.seconds);
  std::printf("corpus: %llu bytes -> %llu tokens (%.2f bytes/token)\n",
              static_cast<unsigned long long>(r.corpus_bytes), static_cast<unsigned long long>(tokens),
              ratio);
  std::printf("wrote %s/tokenizer.json and %s/tokenizer_config.json\n", o.output.c_str(),
              o.output.c_str());
  return 0;
}

[[maybe_unused]] const Command tokenizer_group =
    Command::group("tokenizer", "Tokenizer tools (train a byte-level BPE tokenizer)");

[[maybe_unused]] const Command tokenizer_train{
    "tokenizer train", "Train a byte-level BPE tokenizer (tokenizer.json) on text files",
    [](CLI::App& app) {
      auto o = std::make_shared<TrainOptions>();
      app.add_option("--input", o->inputs, "a UTF-8 text file to train on (repeat for several)")
          ->required()
          ->check(CLI::ExistingFile);
      app.add_option("--vocab-size", o->vocab_size,
                     "entries in the vocabulary, special tokens and the 256 bytes included")
          ->capture_default_str()
          ->check(CLI::Range(1, 1 << 24));
      app.add_option("--min-frequency", o->min_frequency, "never merge a pair seen fewer times")
          ->capture_default_str();
      app.add_option("--special-tokens", o->special_tokens,
                     "comma-separated special tokens, ids 0, 1, ... (the first is eos and pad); "
                     "\"\" for none")
          ->capture_default_str();
      app.add_option("--chat-template", o->chat_template,
                     "write a chat template into tokenizer_config.json: chatml (needs "
                     "<|im_start|> and <|im_end|> among the special tokens)")
          ->check(CLI::IsMember({"chatml"}));
      app.add_option("--model-max-length", o->model_max_length,
                     "model_max_length of tokenizer_config.json")
          ->capture_default_str()
          ->check(CLI::PositiveNumber);
      app.add_option("--output", o->output,
                     "folder to write tokenizer.json and tokenizer_config.json into (created)")
          ->required();
      app.add_option("--threads", o->threads, "threads for counting words (0: all)")
          ->capture_default_str()
          ->check(CLI::NonNegativeNumber);
      app.add_flag("--quiet", o->quiet, "no progress line on stderr");
      app.add_flag("--json", o->json, "print a JSON summary");
      return [o] { return run_train(*o); };
    }};

}  // namespace
}  // namespace wick::cli
