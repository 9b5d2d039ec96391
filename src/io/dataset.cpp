// JSONL datasets: the file split into lines, records read on several threads, and the summary.
#include <algorithm>
#include <ctime>
#include <exception>
#include <system_error>
#include <thread>

#include "io/dataset_records.h"
#include "io/files.h"
#include "wick/data.h"
#include "wick/error.h"

namespace wick {

namespace {

struct Line {
  std::string_view text;
  int64_t number;
};

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

std::vector<Line> split_lines(std::string_view text) {
  // A UTF-8 byte-order mark (some editors write one) is not part of the first record.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<Line> lines;
  int64_t number = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!is_blank(line)) lines.push_back({line, number});
  }
  return lines;
}

ChatClock local_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  if (!localtime_r(&t, &tm)) return {};
  return {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
}

// What one thread made of a contiguous run of lines; it stops at its first error, so the
// earliest failing chunk holds the file's first error.
struct Chunk {
  std::vector<Example> examples;
  int64_t truncated = 0, first_truncated = 0;
  int64_t fallbacks = 0, first_fallback = 0;
  std::exception_ptr error;
};

void read_chunk(const io::data::RecordContext& ctx, const std::string& path,
                const std::vector<Line>& lines, size_t begin, size_t end, Chunk& out) {
  try {
    out.examples.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) {
      io::data::RecordNotes notes;
      std::string where = path + ":" + std::to_string(lines[i].number);
      Example ex = io::data::read_record(ctx, lines[i].text, where, notes);
      ex.line = lines[i].number;
      if (notes.truncated && !out.truncated++) out.first_truncated = ex.line;
      if (notes.chat_fallback && !out.fallbacks++) out.first_fallback = ex.line;
      out.examples.push_back(std::move(ex));
    }
  } catch (...) {
    out.error = std::current_exception();
  }
}

}  // namespace

Dataset Dataset::load_jsonl(const std::string& path, const Tokenizer& tok,
                            const ChatTemplateConfig* chat, const DatasetOptions& opts) {
  return from_jsonl(io::read_file(path, opts.max_file_bytes), path, tok, chat, opts);
}

Dataset Dataset::from_jsonl(std::string_view text, const std::string& path, const Tokenizer& tok,
                            const ChatTemplateConfig* chat, const DatasetOptions& opts) {
  if (opts.max_seq_len < 2)
    throw Error(path + ": the maximum sequence length must be at least 2, got " +
                std::to_string(opts.max_seq_len));
  std::vector<Line> lines = split_lines(text);
  if (lines.empty()) throw Error(path + ": no records (the file is empty or all blank lines)");

  io::data::RecordContext ctx{tok, chat, opts, {}};
  ctx.render.now = local_now();

  // Threads only pay off past a few hundred records; each gets one contiguous run of lines.
  size_t threads = opts.threads > 0 ? static_cast<size_t>(opts.threads)
                                    : std::max(1u, std::thread::hardware_concurrency());
  threads = std::clamp<size_t>(lines.size() / 256, 1, threads);
  std::vector<Chunk> chunks(threads);
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    size_t begin = lines.size() * t / threads, end = lines.size() * (t + 1) / threads;
    bool inline_run = t + 1 == threads;
    if (!inline_run) {
      try {
        workers.emplace_back(
            [&, begin, end, t] { read_chunk(ctx, path, lines, begin, end, chunks[t]); });
      } catch (const std::system_error&) {
        inline_run = true;  // no thread to be had: this thread reads the chunk
      }
    }
    if (inline_run) read_chunk(ctx, path, lines, begin, end, chunks[t]);
  }
  for (auto& w : workers) w.join();

  Dataset d;
  d.path_ = path;
  d.max_seq_len_ = opts.max_seq_len;
  d.examples_.reserve(lines.size());
  int64_t fallbacks = 0, first_fallback = 0, first_truncated = 0;
  for (auto& c : chunks) {
    if (c.error) std::rethrow_exception(c.error);
    for (auto& ex : c.examples) d.add(std::move(ex));
    if (c.truncated && !d.truncated_) first_truncated = c.first_truncated;
    if (c.fallbacks && !fallbacks) first_fallback = c.first_fallback;
    d.truncated_ += c.truncated;
    fallbacks += c.fallbacks;
  }
  if (fallbacks)
    d.warnings_.push_back(
        path + ": the chat template does not render conversations turn by turn (first at line " +
        std::to_string(first_fallback) + "), so in " + std::to_string(fallbacks) +
        " record(s) everything before the last assistant message is masked: earlier assistant "
        "turns are not trained on");
  if (d.truncated_)
    d.warnings_.push_back(path + ": " + std::to_string(d.truncated_) + " record(s) longer than " +
                          std::to_string(opts.max_seq_len) +
                          " tokens were truncated (first at line " +
                          std::to_string(first_truncated) + ")");
  return d;
}

Dataset Dataset::from_examples(std::vector<Example> examples, std::string name) {
  Dataset d;
  d.path_ = std::move(name);
  if (examples.empty()) throw Error(d.path_ + ": no examples");
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& ex = examples[i];
    std::string at = d.path_ + ": example " + std::to_string(i);
    if (ex.ids.size() < 2) throw Error(at + ": fewer than 2 tokens");
    if (ex.target.size() != ex.ids.size())
      throw Error(at + ": " + std::to_string(ex.target.size()) + " target flags for " +
                  std::to_string(ex.ids.size()) + " ids");
    if (std::find_if(ex.target.begin() + 1, ex.target.end(), [](uint8_t t) { return t; }) ==
        ex.target.end())
      throw Error(at + ": no target tokens after the first position");
  }
  for (auto& ex : examples) d.add(std::move(ex));
  return d;
}

void Dataset::add(Example e) {
  total_tokens_ += static_cast<int64_t>(e.ids.size());
  for (size_t i = 1; i < e.target.size(); ++i) target_tokens_ += e.target[i] ? 1 : 0;
  longest_ = std::max(longest_, static_cast<int64_t>(e.ids.size()));
  examples_.push_back(std::move(e));
}

}  // namespace wick
