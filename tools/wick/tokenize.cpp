// `wick tokenize` and `wick detokenize`: text <-> token ids with a tokenizer.json tokenizer.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::string text;
  std::string text_file;
  bool json = false;
  bool no_special = false;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the text file");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return s.str();
}

int run_tokenize(const TokenizeOptions& o) {
  Tokenizer tok = Tokenizer::load(o.tokenizer);
  std::string text = o.text_file.empty() ? o.text : read_text_file(o.text_file);
  std::vector<int32_t> ids = tok.encode(text, !o.no_special);
  std::string out = o.json ? "{\"ids\":[" : "";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += o.json ? "," : " ";
    out += std::to_string(ids[i]);
  }
  out += o.json ? "]}\n" : "\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

struct DetokenizeOptions {
  std::string tokenizer;
  std::string ids;
  bool json = false;
  bool skip_special = false;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ',' || s[i] == ' ' || s[i] == '\n' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    size_t j = i;
    if (s[j] == '-') ++j;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i || (j == i + 1 && s[i] == '-') ||
        (j < s.size() && s[j] != ',' && s[j] != ' ' && s[j] != '\n' && s[j] != '\t'))
      throw Error("--ids: expected integers separated by commas, got \"" + s + "\"");
    long long v = 0;
    try {
      v = std::stoll(s.substr(i, j - i));
    } catch (const std::exception&) {
      throw Error("--ids: " + s.substr(i, j - i) + " is out of range");
    }
    if (v < INT32_MIN || v > INT32_MAX) throw Error("--ids: " + s.substr(i, j - i) + " is out of range");
    ids.push_back(static_cast<int32_t>(v));
    i = j;
  }
  return ids;
}

int run_detokenize(const DetokenizeOptions& o) {
  Tokenizer tok = Tokenizer::load(o.tokenizer);
  std::string text = tok.decode(parse_ids(o.ids), o.skip_special);
  std::string out = o.json ? "{\"text\":" + bench::json_quote(text) + "}\n" : text + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

Command tokenize_cmd{
    "tokenize", "Encode text into token ids with a tokenizer.json tokenizer",
    [](CLI::App& app) {
      auto o = std::make_shared<TokenizeOptions>();
      app.add_option("--tokenizer", o->tokenizer, "tokenizer.json, or a model folder holding one")
          ->required();
      auto* text = app.add_option("--text", o->text, "the text to encode");
      auto* file = app.add_option("--text-file", o->text_file, "a file whose content is encoded");
      text->excludes(file);
      file->excludes(text);
      app.add_flag("--json", o->json, "print {\"ids\":[...]} instead of space-separated ids");
      app.add_flag("--no-special", o->no_special,
                   "do not add the post-processor's special tokens (BOS, [CLS], ...)");
      return [o, text, file] {
        if (text->count() == 0 && file->count() == 0)
          throw Error("tokenize: give --text or --text-file");
        return run_tokenize(*o);
      };
    }};

Command detokenize_cmd{
    "detokenize", "Decode token ids into text with a tokenizer.json tokenizer",
    [](CLI::App& app) {
      auto o = std::make_shared<DetokenizeOptions>();
      app.add_option("--tokenizer", o->tokenizer, "tokenizer.json, or a model folder holding one")
          ->required();
      app.add_option("--ids", o->ids, "token ids, e.g. 1,2,3")->required();
      app.add_flag("--json", o->json, "print {\"text\":\"...\"}");
      app.add_flag("--skip-special", o->skip_special, "leave special tokens out of the text");
      return [o] { return run_detokenize(*o); };
    }};

}  // namespace
}  // namespace wick::cli
