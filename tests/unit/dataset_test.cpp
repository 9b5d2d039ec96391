// JSONL datasets: each record shape against ids worked out by hand for a byte-level tokenizer,
// prompt masks, truncation, statistics, threads, and every malformed input failing with its
// file and line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/dataset_util.h"

namespace {

using wt::DataFile;
using wt::kEos;
using wt::pieces;
using wt::ref_encode;

void expect_example(const wick::Example& got, const wick::Example& want, int64_t line) {
  EXPECT_EQ(got.ids, want.ids);
  EXPECT_EQ(got.target, want.target);
  EXPECT_EQ(got.line, line);
}

wick::DatasetOptions masked() {
  wick::DatasetOptions o;
  o.mask_prompt = true;
  return o;
}

TEST(Dataset, TextRecordsAddEosOnce) {
  DataFile f("{\"text\": \"hi there\"}\n{\"text\": \"ends</s>\", \"id\": 7}\n");
  auto d = f.load();
  ASSERT_EQ(d.size(), 2u);
  expect_example(d[0], pieces({{"hi there</s>", true}}), 1);
  // Already ending with EOS: not doubled. Extra keys are ignored.
  expect_example(d[1], pieces({{"ends</s>", true}}), 2);
  wick::DatasetOptions no_eos;
  no_eos.add_eos = false;
  expect_example(f.load(no_eos)[0], pieces({{"hi there", true}}), 1);
  // Masking changes nothing for plain text.
  expect_example(f.load(masked())[0], pieces({{"hi there</s>", true}}), 1);
}

TEST(Dataset, LineNumbersSkipBlankLinesCrlfAndBom) {
  DataFile f("\xEF\xBB\xBF\n{\"text\": \"ab\"}\r\n  \t\r\n\n{\"text\": \"cd\"}");
  auto d = f.load();
  ASSERT_EQ(d.size(), 2u);
  expect_example(d[0], pieces({{"ab</s>", true}}), 2);
  expect_example(d[1], pieces({{"cd</s>", true}}), 5);
  EXPECT_EQ(d.path(), f.path);
}

TEST(Dataset, PromptCompletionMasksExactlyThePrompt) {
  DataFile f(R"({"prompt": "Q: 1+1?", "completion": " 2"})"
             "\n");
  expect_example(f.load()[0], pieces({{"Q: 1+1?", true}, {" 2</s>", true}}), 1);
  expect_example(f.load(masked())[0], pieces({{"Q: 1+1?", false}, {" 2</s>", true}}), 1);
  // An empty completion still teaches the EOS.
  DataFile g(R"({"prompt": "Q", "completion": ""})");
  expect_example(g.load(masked())[0], pieces({{"Q", false}, {"</s>", true}}), 1);
}

TEST(Dataset, InputIdsAreTakenAsTheyAre) {
  DataFile f(R"({"input_ids": [72, 105, 258, 0, 257]})");
  auto d = f.load(masked());
  expect_example(d[0], wick::Example{{72, 105, kEos, 0, 257}, {1, 1, 1, 1, 1}, 1}, 1);
}

TEST(Dataset, Statistics) {
  DataFile f(R"({"prompt": "abc", "completion": "de"})"
             "\n"
             R"({"text": "x"})"
             "\n");
  auto d = f.load(masked());
  EXPECT_EQ(d.total_tokens(), 6 + 2);
  // Targets after position 0: "de</s>" and "</s>" ("x" sits at position 0 of its row).
  EXPECT_EQ(d.target_tokens(), 3 + 1);
  EXPECT_EQ(d.longest(), 6);
  EXPECT_EQ(d.max_seq_len(), 2048);
  EXPECT_TRUE(d.warnings().empty());
}

TEST(Dataset, TruncateKeepsTheStart) {
  DataFile f("{\"text\": \"0123456789\"}\n{\"text\": \"ab\"}\n{\"text\": \"abcdefgh\"}\n");
  wick::DatasetOptions o;
  o.max_seq_len = 5;
  std::string err = f.error(o);
  EXPECT_NE(err.find(f.path + ":1: "), std::string::npos) << err;
  EXPECT_NE(err.find("11 tokens"), std::string::npos) << err;
  EXPECT_NE(err.find("--truncate"), std::string::npos) << err;
  o.overlong = wick::Overlong::truncate;
  auto d = f.load(o);
  expect_example(d[0], pieces({{"01234", true}}), 1);
  expect_example(d[1], pieces({{"ab</s>", true}}), 2);
  expect_example(d[2], pieces({{"abcde", true}}), 3);
  EXPECT_EQ(d.truncated(), 2);
  EXPECT_EQ(d.longest(), 5);
  ASSERT_EQ(d.warnings().size(), 1u);
  EXPECT_NE(d.warnings()[0].find("2 record(s)"), std::string::npos) << d.warnings()[0];
  EXPECT_NE(d.warnings()[0].find("line 1"), std::string::npos) << d.warnings()[0];
}

TEST(Dataset, TruncatingAwayEveryTargetIsAnError) {
  DataFile f("{\"text\": \"ok\"}\n{\"prompt\": \"a long prompt\", \"completion\": \"x\"}\n");
  wick::DatasetOptions o = masked();
  o.max_seq_len = 4;
  o.overlong = wick::Overlong::truncate;
  std::string err = f.error(o);
  EXPECT_NE(err.find(f.path + ":2: "), std::string::npos) << err;
  EXPECT_NE(err.find("no target tokens left after truncation to 4"), std::string::npos) << err;
}

TEST(Dataset, ThreadsGiveTheSameResultAndTheFirstError) {
  std::string text;
  for (int i = 0; i < 1500; ++i) {
    if (i % 3 == 0)
      text += "{\"text\": \"row " + std::to_string(i) + "\"}\n";
    else if (i % 3 == 1)
      text += "{\"prompt\": \"p" + std::to_string(i) + "\", \"completion\": \"c\"}\n";
    else
      text += "{\"input_ids\": [1, 2, " + std::to_string(i % 250) + "]}\n";
    if (i % 7 == 0) text += "\n";
  }
  DataFile f(text);
  wick::DatasetOptions one = masked(), many = masked();
  one.threads = 1;
  many.threads = 3;
  auto a = f.load(one), b = f.load(many);
  ASSERT_EQ(a.size(), 1500u);
  ASSERT_EQ(b.size(), 1500u);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].ids, b[i].ids) << i;
    ASSERT_EQ(a[i].target, b[i].target) << i;
    ASSERT_EQ(a[i].line, b[i].line) << i;
  }
  EXPECT_EQ(a.total_tokens(), b.total_tokens());
  // Errors in two threads' parts of the file: the earlier line is reported.
  std::string bad = text;
  auto nth_line_start = [&](int n) {
    size_t pos = 0;
    for (int i = 1; i < n; ++i) pos = bad.find('\n', pos) + 1;
    return pos;
  };
  bad.insert(nth_line_start(1400), "{\"text\": 1}\n");
  bad.insert(nth_line_start(300), "{oops}\n");
  DataFile g(bad);
  std::string err = g.error(many);
  EXPECT_NE(err.find(g.path + ":300: "), std::string::npos) << err;
}

// ---- errors: each names the file and the line ----

struct BadCase {
  const char* name;
  std::string text;
  int line;
  const char* message;
};

TEST(DatasetErrors, EveryMalformedRecordNamesItsLine) {
  const std::string ok = "{\"text\": \"fine\"}\n";
  const std::vector<BadCase> cases = {
      {"broken json", ok + "{\"text\": \"a\"\n", 2, "invalid JSON"},
      {"trailing garbage", ok + ok + "{\"text\": \"a\"} x\n", 3, "invalid JSON"},
      {"array line", ok + "[1, 2]\n", 2, "expected a JSON object"},
      {"string line", "\"text\"\n", 1, "expected a JSON object"},
      {"no shape", ok + "{\"txt\": \"a\"}\n", 2, "no known record shape"},
      {"mixed shapes", "{\"text\": \"a\", \"messages\": []}\n", 1, "mixes the \"text\""},
      {"prompt without completion", ok + ok + "{\"prompt\": \"a\"}\n", 3,
       "missing field \"completion\""},
      {"completion without prompt", "{\"completion\": \"a\"}\n", 1, "missing field \"prompt\""},
      {"text not a string", "{\"text\": 5}\n", 1, "\"text\": expected a string, got an integer"},
      {"null text", "{\"text\": null}\n", 1, "\"text\": expected a string, got null"},
      {"prompt not a string", "{\"prompt\": [\"a\"], \"completion\": \"b\"}\n", 1,
       "\"prompt\": expected a string, got an array"},
      {"too short", ok + "{\"input_ids\": [5]}\n", 2, "1 token(s) long"},
      {"empty input_ids", "{\"input_ids\": []}\n", 1, "0 token(s) long"},
      {"input_ids not array", "{\"input_ids\": \"1 2\"}\n", 1, "expected an array of token ids"},
      {"id out of range", "{\"input_ids\": [1, 259]}\n", 1,
       "\"input_ids\"[1]: token id 259 is outside the vocabulary [0, 259)"},
      {"negative id", "{\"input_ids\": [-1, 2]}\n", 1, "token id -1 is outside"},
      {"huge id", "{\"input_ids\": [1, 18446744073709551615]}\n", 1,
       "token id 18446744073709551615 is outside"},
      {"float id", "{\"input_ids\": [1, 2.5]}\n", 1, "expected an integer token id, got a number"},
      {"invalid utf-8", ok + "{\"text\": \"a\xff\xfe\"}\n", 2, "invalid JSON"},
      {"lone surrogate", "{\"text\": \"\\ud800\"}\n", 1, "invalid JSON"},
      {"duplicate key", "{\"text\": \"a\", \"text\": \"b\"}\n", 1, "duplicate key"},
      {"deep nesting",
       "{\"text\": \"a\", \"x\": " + std::string(100, '[') + std::string(100, ']') + "}\n", 1,
       "nested deeper"},
      {"nul byte", std::string("{\"text\": \"a\"}\0 x\n", 17), 1, "invalid JSON at byte 14"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    DataFile f(c.text);
    std::string err = f.error();
    EXPECT_NE(err.find(f.path + ":" + std::to_string(c.line) + ": "), std::string::npos) << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }
}

TEST(DatasetErrors, EmptyFilesAndBadOptions) {
  for (std::string text : {"", "\n\n  \r\n", "\xEF\xBB\xBF"}) {
    DataFile f(text);
    std::string err = f.error();
    EXPECT_NE(err.find(f.path + ": no records"), std::string::npos) << err;
  }
  wt::TempDir dir;
  try {
    wick::Dataset::load_jsonl(dir.file("missing.jsonl"), wt::data_tokenizer(), nullptr, {});
    ADD_FAILURE() << "a missing file loaded";
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.jsonl"), std::string::npos) << e.what();
  }
  DataFile f("{\"text\": \"abc\"}\n");
  wick::DatasetOptions o;
  o.max_file_bytes = 4;
  EXPECT_NE(f.error(o).find("d.jsonl"), std::string::npos);
  o = {};
  o.max_seq_len = 1;
  EXPECT_NE(f.error(o).find("at least 2"), std::string::npos);
}

TEST(DatasetErrors, NothingToLearnWhenMasked) {
  DataFile f("{\"prompt\": \"abc\", \"completion\": \"\"}\n");
  wick::DatasetOptions o = masked();
  o.add_eos = false;
  std::string err = f.error(o);
  EXPECT_NE(err.find(f.path + ":1: the record has no target tokens"), std::string::npos) << err;
}

TEST(DatasetErrors, FromExamplesChecksItsInput) {
  EXPECT_THROW(wick::Dataset::from_examples({}), wick::Error);
  EXPECT_THROW(wick::Dataset::from_examples({{{1}, {1}, 0}}), wick::Error);
  EXPECT_THROW(wick::Dataset::from_examples({{{1, 2}, {1}, 0}}), wick::Error);
  EXPECT_THROW(wick::Dataset::from_examples({{{1, 2}, {1, 0}, 0}}), wick::Error);
  auto d = wick::Dataset::from_examples({{{1, 2, 3}, {0, 1, 1}, 0}}, "mem");
  EXPECT_EQ(d.path(), "mem");
  EXPECT_EQ(d.target_tokens(), 2);
  EXPECT_EQ(d.max_seq_len(), 0);
}

}  // namespace
