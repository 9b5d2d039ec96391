// Chat ("messages") records: rendering with the model's template, assistant-only masks against
// pieces written out by hand (ChatML, a template that rewrites earlier turns, a template that
// cannot be masked), validation errors with line numbers, and the real Qwen3 and Llama 3
// templates and tokenizers (.cache/tokenizers, scripts/fetch-tokenizers.sh) against the text
// transformers renders (tests/fixtures/chat/*_expected.json).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/dataset_util.h"
#include "common/tokenizer_util.h"

namespace {

using nlohmann::ordered_json;
using wt::DataFile;
using wt::pieces;

wick::ChatTemplateConfig config_of(const std::string& source, const char* eos = "<|im_end|>") {
  return {wick::ChatTemplate::parse(source, "test template"), std::nullopt, std::string(eos)};
}

wick::ChatTemplateConfig chatml() {
  return config_of(wt::read_text(std::string(WICK_FIXTURES_DIR) + "/chat/templates/chatml.jinja"));
}

wick::DatasetOptions masked() {
  wick::DatasetOptions o;
  o.mask_prompt = true;
  return o;
}

void expect_example(const wick::Example& got, const wick::Example& want) {
  EXPECT_EQ(got.ids, want.ids);
  EXPECT_EQ(got.target, want.target);
}

const char* kConversation =
    R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},)"
    R"( {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"},)"
    R"( {"role": "assistant", "content": "4"}]})";

TEST(DatasetChat, ChatMLEveryAssistantTurnIsATarget) {
  auto chat = chatml();
  DataFile f(std::string(kConversation) + "\n");
  const std::string sys = "<|im_start|>system\nBe brief.<|im_end|>\n";
  const std::string u1 = "<|im_start|>user\nHi<|im_end|>\n",
                    u2 = "<|im_start|>user\n2+2?<|im_end|>\n";
  const std::string head = "<|im_start|>assistant\n";
  expect_example(f.load(masked(), &chat)[0], pieces({{sys + u1 + head, false},
                                                     {"Hello!<|im_end|>\n", true},
                                                     {u2 + head, false},
                                                     {"4<|im_end|>\n", true}}));
  // Unmasked: the whole rendering, tokenised as one text, no EOS appended.
  auto d = f.load({}, &chat);
  expect_example(
      d[0], pieces({{sys + u1 + head + "Hello!<|im_end|>\n" + u2 + head + "4<|im_end|>\n", true}}));
  EXPECT_TRUE(d.warnings().empty());
}

TEST(DatasetChat, MaskedConversationEndsWithItsLastAssistantTurn) {
  auto chat = chatml();
  DataFile f(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},)"
      R"( {"role": "user", "content": "c"}]})");
  expect_example(f.load(masked(), &chat)[0],
                 pieces({{"<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n", false},
                         {"b<|im_end|>\n", true}}));
  // Unmasked, the trailing user turn stays (it is text to learn from).
  EXPECT_EQ(f.load({}, &chat)[0].ids,
            wt::ref_encode("<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"
                           "<|im_start|>user\nc<|im_end|>\n"));
}

TEST(DatasetChat, ToolsAndSpecialTokensReachTheTemplate) {
  auto chat = config_of(
      "{{ bos_token }}{% if tools %}[{{ tools | length }} tools: {{ tools[0].name }}]{% endif %}"
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");
  chat.bos_token = "<s>";
  DataFile f(
      R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}],)"
      R"( "tools": [{"name": "calc"}, {"name": "web"}]})");
  expect_example(
      f.load(masked(), &chat)[0],
      pieces({{"<s>[2 tools: calc]<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", false},
              {"r<|im_end|>\n", true}}));
}

// Like Qwen3, this template writes the final assistant turn differently from earlier ones, so
// a conversation's prefixes are not prefixes of its rendering.
const char* kRewritingTemplate =
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and loop.last %}[last]{% endif %}{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

TEST(DatasetChat, TemplateThatRewritesEarlierTurnsMasksAllButTheLastTurn) {
  auto chat = config_of(kRewritingTemplate);
  DataFile f(std::string(R"({"text": "plain"})") + "\n" + kConversation + "\n" + kConversation +
             "\n");
  auto d = f.load(masked(), &chat);
  ASSERT_EQ(d.size(), 3u);
  expect_example(d[1], pieces({{"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"
                                "<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                                "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",
                                false},
                               {"[last]4<|im_end|>\n", true}}));
  // One warning for the file, with the count and the first line.
  ASSERT_EQ(d.warnings().size(), 1u);
  EXPECT_NE(d.warnings()[0].find("first at line 2"), std::string::npos) << d.warnings()[0];
  EXPECT_NE(d.warnings()[0].find("2 record(s)"), std::string::npos) << d.warnings()[0];
  // A single-turn conversation renders incrementally: no warning.
  DataFile g(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})");
  auto one = g.load(masked(), &chat);
  expect_example(one[0], pieces({{"<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n", false},
                                 {"[last]b<|im_end|>\n", true}}));
  EXPECT_TRUE(one.warnings().empty());
}

TEST(DatasetChat, TemplateThatCannotBeMaskedIsAnErrorOnlyWhenMasking) {
  // Newest message first: nothing before the last assistant turn is a prefix.
  auto chat = config_of(
      "{% for m in messages | reverse %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
      "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");
  DataFile f(std::string(R"({"text": "plain"})") + "\n" + kConversation + "\n");
  std::string err = f.error(masked(), &chat);
  EXPECT_NE(err.find(f.path + ":2: "), std::string::npos) << err;
  EXPECT_NE(err.find("cannot be masked"), std::string::npos) << err;
  EXPECT_EQ(f.load({}, &chat).size(), 2u);
}

TEST(DatasetChat, Errors) {
  auto chat = chatml();
  struct Case {
    const char* name;
    std::string record;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"not an array", R"({"messages": {"role": "user"}})",
       "expected an array of messages, got an object"},
      {"empty", R"({"messages": []})", "\"messages\" is empty"},
      {"message not object", R"({"messages": ["hi"]})", "\"messages\"[0]: expected an object"},
      {"missing role", R"({"messages": [{"content": "hi"}]})",
       "\"messages\"[0]: missing field \"role\""},
      {"role not string", R"({"messages": [{"role": 1, "content": "hi"}]})",
       "\"role\": expected a string, got an integer"},
      {"unknown role",
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "asistant", "content": "b"}]})",
       "\"messages\"[1]: unknown role \"asistant\""},
      {"missing content", R"({"messages": [{"role": "user"}]})", "missing field \"content\""},
      {"content number", R"({"messages": [{"role": "user", "content": 3}]})",
       "\"content\": expected a string or a list of parts, got an integer"},
      {"parts not objects", R"({"messages": [{"role": "user", "content": ["x"]}]})",
       "a list of parts must hold objects"},
      {"tools not array", R"({"messages": [{"role": "user", "content": "a"}], "tools": "calc"})",
       "\"tools\": expected an array"},
      {"mixed with text", R"({"messages": [{"role": "user", "content": "a"}], "text": "b"})",
       "mixes the \"text\" and \"messages\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    DataFile f(R"({"text": "ok"})"
               "\n\n" +
               c.record + "\n");
    std::string err = f.error({}, &chat);
    EXPECT_NE(err.find(f.path + ":3: "), std::string::npos) << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }
  DataFile f(R"({"text": "ok"})"
             "\n" +
             std::string(kConversation) + "\n");
  std::string err = f.error({}, nullptr);
  EXPECT_NE(err.find(f.path + ":2: a \"messages\" record needs a chat template"), std::string::npos)
      << err;
  // Masking needs an assistant turn.
  DataFile g(R"({"messages": [{"role": "user", "content": "a"}]})");
  err = g.error(masked(), &chat);
  EXPECT_NE(err.find(g.path + ":1: no assistant message"), std::string::npos) << err;
  // An assistant turn that only calls tools needs no content; the template still sees it (and
  // fails here, ChatML adding None to a string), which is an error naming the line.
  DataFile h(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"name": "f"}]}]})");
  err = h.error({}, &chat);
  EXPECT_NE(err.find(h.path + ":1: test template"), std::string::npos) << err;
  // The template's own raise_exception names the line too.
  auto strict = config_of("{{ raise_exception('roles must alternate') }}");
  DataFile k{kConversation};
  err = k.error({}, &strict);
  EXPECT_NE(err.find(k.path + ":1: "), std::string::npos) << err;
  EXPECT_NE(err.find("roles must alternate"), std::string::npos) << err;
}

// ---- the real templates and tokenizers ----

struct RealModel {
  wick::Tokenizer tok;
  wick::ChatTemplateConfig chat;
};

// Loaded once per model (the tokenizer files are large).
const RealModel* real_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<RealModel>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  std::string dir = wt::fetched_tokenizer(name);
  std::unique_ptr<RealModel> m;
  if (wt::file_exists(dir + "/tokenizer.json") && wt::file_exists(dir + "/tokenizer_config.json"))
    m.reset(new RealModel{wick::Tokenizer::load(dir), wick::load_chat_template(dir)});
  return cache.emplace(name, std::move(m)).first->second.get();
}

#define REAL_MODEL_OR_SKIP(var, name)      \
  const RealModel* var = real_model(name); \
  if (!var) GTEST_SKIP() << ".cache/tokenizers/" name " missing (scripts/fetch-tokenizers.sh)"

// Fixture conversations rendered as dataset records render as transformers renders them (only
// cases a dataset can express: no generation prompt, no extra variables).
void check_fixture_cases(const RealModel& m, const std::string& fixture) {
  auto fx = ordered_json::parse(wt::read_text(std::string(WICK_FIXTURES_DIR) + "/chat/" + fixture));
  std::string records;
  std::vector<std::string> expected;
  for (const auto& c : fx["cases"]) {
    if (c["add_generation_prompt"].get<bool>() || !c["variables"].empty()) continue;
    records += ordered_json{{"messages", c["messages"]}}.dump() + "\n";
    expected.push_back(c["expected"].get<std::string>());
  }
  ASSERT_GE(expected.size(), 3u);
  DataFile f(records);
  auto d = f.load({}, &m.chat, m.tok);
  ASSERT_EQ(d.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i]);
    EXPECT_EQ(d[i].ids, m.tok.encode(expected[i], false));
    EXPECT_EQ(m.tok.decode(d[i].ids), expected[i]);
  }
}

// The text of each run of target tokens.
std::vector<std::string> target_texts(const RealModel& m, const wick::Example& ex) {
  std::vector<std::string> out;
  std::vector<int32_t> run;
  for (size_t i = 0; i <= ex.ids.size(); ++i) {
    if (i < ex.ids.size() && ex.target[i]) {
      run.push_back(ex.ids[i]);
    } else if (!run.empty()) {
      out.push_back(m.tok.decode(run));
      run.clear();
    }
  }
  return out;
}

TEST(DatasetChatReal, Qwen3RendersAsTransformers) {
  REAL_MODEL_OR_SKIP(m, "qwen3");
  check_fixture_cases(*m, "qwen3_expected.json");
}

TEST(DatasetChatReal, Llama3RendersAsTransformers) {
  REAL_MODEL_OR_SKIP(m, "llama3");
  check_fixture_cases(*m, "llama3_expected.json");
}

TEST(DatasetChatReal, Qwen3Masks) {
  REAL_MODEL_OR_SKIP(m, "qwen3");
  DataFile f(
      std::string(
          R"({"messages": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"}]})") +
      "\n" + kConversation + "\n");
  auto d = f.load(masked(), &m->chat, m->tok);
  // The last turn after the user's query gets Qwen3's empty thinking block; it is the model's
  // to write, so it is a target.
  EXPECT_EQ(target_texts(*m, d[0]),
            std::vector<std::string>{"<think>\n\n</think>\n\nHello! How can I help?<|im_end|>\n"});
  std::string prompt;
  for (size_t i = 0; i < d[0].ids.size() && !d[0].target[i]; ++i)
    prompt += m->tok.decode({&d[0].ids[i], 1});
  EXPECT_EQ(prompt, "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
  // Qwen3 renders earlier turns without the thinking block: only the last turn is trained on.
  EXPECT_EQ(target_texts(*m, d[1]),
            std::vector<std::string>{"<think>\n\n</think>\n\n4<|im_end|>\n"});
  ASSERT_EQ(d.warnings().size(), 1u);
  EXPECT_NE(d.warnings()[0].find("first at line 2"), std::string::npos) << d.warnings()[0];
}

TEST(DatasetChatReal, Qwen3ToolCallsAndTools) {
  REAL_MODEL_OR_SKIP(m, "qwen3");
  auto fx = ordered_json::parse(
      wt::read_text(std::string(WICK_FIXTURES_DIR) + "/chat/qwen3_expected.json"));
  const ordered_json* tools_case = nullptr;
  for (const auto& c : fx["cases"])
    if (c["name"] == "tools") tools_case = &c;
  ASSERT_TRUE(tools_case);
  // transformers rendered it with the generation prompt; a training record has none.
  std::string expected = (*tools_case)["expected"].get<std::string>();
  const std::string gen = "<|im_start|>assistant\n";
  ASSERT_EQ(expected.substr(expected.size() - gen.size()), gen);
  expected.resize(expected.size() - gen.size());
  ordered_json record = {{"messages", (*tools_case)["messages"]},
                         {"tools", (*tools_case)["variables"]["tools"]}};
  DataFile f(record.dump() + "\n");
  auto d = f.load({}, &m->chat, m->tok);
  EXPECT_EQ(d[0].ids, m->tok.encode(expected, false));
  // Masked: Qwen3 writes the tool-calling turn differently when it is last, so only the final
  // answer is a target.
  auto masked_d = f.load(masked(), &m->chat, m->tok);
  EXPECT_EQ(target_texts(*m, masked_d[0]),
            std::vector<std::string>{
                "<think>\n\n</think>\n\nParis 21\u00b0C, Rome 25\u00b0C.<|im_end|>\n"});
  EXPECT_EQ(m->tok.decode(masked_d[0].ids), expected);
  EXPECT_EQ(masked_d.warnings().size(), 1u);
}

TEST(DatasetChatReal, Llama3Masks) {
  REAL_MODEL_OR_SKIP(m, "llama3");
  DataFile f(
      R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]})");
  auto d = f.load(masked(), &m->chat, m->tok);
  // This template ends every rendering with the assistant header (it has no
  // add_generation_prompt test), so the header follows the turn as target.
  EXPECT_EQ(target_texts(*m, d[0]),
            std::vector<std::string>{
                "Hello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"});
  EXPECT_EQ(
      m->tok.decode(d[0].ids),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
      "<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // Exactly one BOS: the template writes it, and chat text is tokenised without adding another.
  EXPECT_EQ(d[0].ids[0], *m->tok.token_to_id("<|begin_of_text|>"));
  EXPECT_NE(d[0].ids[1], d[0].ids[0]);
}

}  // namespace
