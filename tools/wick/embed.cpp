// `wick embed`: sentence embeddings of texts with a BERT-family model folder, or the nearest lines
// of a corpus to a query.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "command.h"
#include "wick/wick.h"

namespace wick::cli {
namespace {

struct EmbedCliOptions {
  std::string model;
  std::vector<std::string> texts;
  std::string input;
  std::string query;
  std::string corpus;
  int64_t top_k = 5;
  std::string pooling;  // empty: the folder's default
  bool normalize = false;
  std::string prefix, query_prefix;
  int64_t batch_size = 32;
  int64_t max_length = 0;
  bool no_truncate = false;
  std::string dtype = "f32";
  bool json = false;
  bool quiet = false;
};

/// Texts of a JSONL file or stdin ("-"): {"text": ...} objects, or plain text lines. Blank lines
/// are skipped; a line that starts with '{' must be a JSON object with a string "text".
std::vector<std::string> read_texts(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw Error(path + ": cannot open");
    in = &file;
  }
  const std::string name = path == "-" ? "<stdin>" : path;
  std::vector<std::string> texts;
  std::string line;
  for (int64_t lineno = 1; std::getline(*in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    if (line[first] != '{') {
      texts.push_back(line);
      continue;
    }
    std::string where = name + ":" + std::to_string(lineno);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + ": invalid JSON (" + e.what() + ")");
    }
    auto it = j.is_object() ? j.find("text") : j.end();
    if (it == j.end() || !it->is_string()) throw Error(where + ": expected an object with a string \"text\"");
    texts.push_back(it->get<std::string>());
  }
  if (in->bad()) throw Error(name + ": read error");
  return texts;
}

/// Shortest decimal that reads back as the same float.
std::string float_text(float v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  // JSON has no NaN/inf: null keeps the line parseable.
  if (s == "nan" || s == "-nan" || s == "inf" || s == "-inf") return "null";
  return s;
}

/// Prints "embedded n/N" on stderr for inputs of more than two batches: rewritten in place on a
/// terminal, every ~10% otherwise.
std::function<void(size_t, size_t)> progress_printer(const EmbedCliOptions& o, size_t total, const char* what) {
  if (o.quiet || total <= static_cast<size_t>(2 * o.batch_size)) return {};
  bool tty = ::isatty(STDERR_FILENO) != 0;
  auto last = std::make_shared<size_t>(0);
  return [tty, last, what](size_t done, size_t n) {
    if (tty) {
      std::fprintf(stderr, "\r%s %zu/%zu", what, done, n);
      if (done == n) std::fprintf(stderr, "\n");
    } else if (done == n || done * 10 / n > *last * 10 / n) {
      std::fprintf(stderr, "%s %zu/%zu\n", what, done, n);
    }
    *last = done;
  };
}

EmbedOptions options_for(const Embedder& emb, const EmbedCliOptions& o) {
  EmbedOptions e = emb.default_options();
  if (!o.pooling.empty()) e.pooling = parse_pooling(o.pooling);
  if (o.normalize) e.normalize = true;
  e.prefix = o.prefix;
  e.batch_size = o.batch_size;
  if (o.max_length > 0) e.max_length = o.max_length;
  e.truncate = !o.no_truncate;
  return e;
}

DType dtype_of(const std::string& s) { return s == "bf16" ? DType::bf16 : s == "f16" ? DType::f16 : DType::f32; }

int run_embed(const EmbedCliOptions& o) {
  std::vector<std::string> texts = o.texts;
  if (!o.input.empty()) {
    auto more = read_texts(o.input);
    texts.insert(texts.end(), more.begin(), more.end());
  }
  Embedder emb = Embedder::load(o.model, dtype_of(o.dtype));
  EmbedOptions e = options_for(emb, o);
  e.progress = progress_printer(o, texts.size(), "embedded");
  Tensor v = emb.embed(texts, e);
  std::vector<float> all = v.to_vector<float>();
  const size_t D = static_cast<size_t>(emb.dimension());
  std::string line;
  for (size_t i = 0; i < texts.size(); ++i) {
    line.clear();
    line += o.json ? "[" : "";
    for (size_t d = 0; d < D; ++d) {
      if (d) line += o.json ? "," : " ";
      line += float_text(all[i * D + d]);
    }
    line += o.json ? "]\n" : "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}

int run_search(const EmbedCliOptions& o) {
  std::vector<std::string> corpus = read_texts(o.corpus);
  Embedder emb = Embedder::load(o.model, dtype_of(o.dtype));
  EmbedOptions e = options_for(emb, o);
  e.progress = progress_printer(o, corpus.size(), "embedded corpus");
  Tensor docs = emb.embed(corpus, e);
  EmbedOptions q = e;
  q.prefix = o.query_prefix;
  q.progress = {};
  Tensor query = emb.embed({o.query}, q);
  auto hits = top_k(query, docs, o.top_k)[0];
  if (o.json) {
    std::string out = "{\"query\":" + bench::json_quote(o.query) + ",\"hits\":[";
    for (size_t r = 0; r < hits.size(); ++r) {
      if (r) out += ",";
      out += "{\"index\":" + std::to_string(hits[r].index) + ",\"score\":" + float_text(hits[r].score) +
             ",\"text\":" + bench::json_quote(corpus[static_cast<size_t>(hits[r].index)]) + "}";
    }
    out += "]}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  for (size_t r = 0; r < hits.size(); ++r)
    std::printf("%zu\t%.4f\t%s\n", r + 1, hits[r].score, corpus[static_cast<size_t>(hits[r].index)].c_str());
  return 0;
}

Command embed_cmd{
    "embed", "Sentence embeddings with a BERT-family model (or nearest corpus lines to a query)",
    [](CLI::App& app) {
      auto o = std::make_shared<EmbedCliOptions>();
      app.footer(
          "Input files (--input, --corpus; '-' is stdin) hold one text per line: JSON lines\n"
          "{\"text\": \"...\"}, or plain text lines (a line starting with '{' is read as JSON). Blank lines\n"
          "are skipped.\n"
          "Output: one vector per input text, in input order: space-separated numbers, or a JSON array\n"
          "per line with --json. With --query and --corpus: the --top-k nearest corpus lines by cosine\n"
          "similarity (rank, score, text), or one JSON object {\"query\", \"hits\": [{\"index\",\n"
          "\"score\", \"text\"}]} with --json.\n"
          "Defaults for --pooling, --normalize and --max-length come from a sentence-transformers\n"
          "folder (modules.json, 1_Pooling/config.json, sentence_bert_config.json) when present;\n"
          "otherwise mean pooling, no normalisation, the model's position limit.\n"
          "Examples:\n"
          "  wick embed --model all-MiniLM-L6-v2 --text \"hello world\" --text \"hi\" --json\n"
          "  wick embed --model e5-small --prefix \"passage: \" --query-prefix \"query: \" \\\n"
          "      --query \"how do I bake bread\" --corpus docs.txt --top-k 3");
      app.add_option("--model", o->model, "Model folder (config.json, model.safetensors, tokenizer.json or vocab.txt)")
          ->required()
          ->check(CLI::ExistingDirectory);
      auto* text = app.add_option("--text", o->texts, "Text to embed (repeatable)");
      auto* input = app.add_option("--input", o->input, "JSONL or text file of inputs ('-': stdin)");
      auto* query = app.add_option("--query", o->query, "Search: the query text");
      auto* corpus = app.add_option("--corpus", o->corpus, "Search: JSONL or text file of candidates ('-': stdin)");
      app.add_option("--top-k", o->top_k, "Search: how many nearest lines to print")->check(CLI::Range(1, 1000000));
      app.add_option("--pooling", o->pooling, "mean | cls | max (default: the folder's, else mean)")
          ->check(CLI::IsMember({"mean", "cls", "max"}));
      app.add_flag("--normalize", o->normalize, "L2-normalise the vectors (on by default where the folder says so)");
      app.add_option("--prefix", o->prefix, "Prepended to every text / corpus line (e.g. \"passage: \")");
      app.add_option("--query-prefix", o->query_prefix, "Search: prepended to the query (e.g. \"query: \")");
      app.add_option("--batch-size", o->batch_size, "Texts per forward pass")->check(CLI::Range(1, 65536));
      app.add_option("--max-length", o->max_length, "Most tokens per text, special tokens included (default: the model's)")
          ->check(CLI::Range(1, 1 << 20));
      app.add_flag("--no-truncate", o->no_truncate, "Fail on texts longer than the limit instead of cutting them");
      app.add_option("--dtype", o->dtype, "Weights and compute: f32 (default), bf16 or f16")
          ->check(CLI::IsMember({"f32", "bf16", "f16"}));
      app.add_flag("--json", o->json, "JSON output (see below)");
      app.add_flag("--quiet", o->quiet, "No progress lines on stderr");
      text->excludes(query);
      input->excludes(query);
      input->excludes(corpus);
      text->excludes(corpus);
      return [o, text, input, query, corpus] {
        bool search = query->count() || corpus->count();
        if (search) {
          if (!query->count() || !corpus->count()) throw Error("embed: search needs both --query and --corpus");
          return run_search(*o);
        }
        if (!text->count() && !input->count()) throw Error("embed: give --text, --input, or --query with --corpus");
        return run_embed(*o);
      };
    }};

}  // namespace
}  // namespace wick::cli
