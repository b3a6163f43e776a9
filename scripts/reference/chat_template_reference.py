#!/usr/bin/env python3
"""Reference renderings for the C++ chat-template interpreter (core/text/jinja_*).

The reference is Python jinja2 configured exactly as Hugging Face transformers compiles a
chat template (transformers/utils/chat_template_utils.py, _compile_jinja_template):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension, the {% generation %} block, a tojson filter that calls json.dumps with
ensure_ascii=False, and the globals raise_exception and strftime_now. Variables are passed as
apply_chat_template passes them: messages, tools=None, documents=None, add_generation_prompt
and the special tokens.

Usage:
  python3 scripts/reference/chat_template_reference.py            # writes the fixtures
  python3 scripts/reference/chat_template_reference.py extract \
      --gguf SmolLM2-135M-Instruct.Q4_1.gguf --automap chat-template-automap.ts \
      --e2e e2e.test.js                                          # re-extracts the templates

Fixtures (tests/fixtures/text/templates/):
  *.jinja          the real template strings (SOURCES.md says where each comes from)
  expected.json    every template x conversation x add_generation_prompt -> output or error
  snippets.json    small templates exercising one feature each -> output or error
  random.json      seeded random templates over fixed variables -> output or error
"""
import argparse
import copy
import datetime
import json
import random
import re
import sys
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "text" / "templates"

# strftime_now reads the clock; the fixtures freeze it so the C++ test can pass the same instant.
FIXED_NOW = datetime.datetime(2024, 7, 26, 9, 5, 3)


class GenerationBlock(jinja2.ext.Extension):
    """HF's AssistantTracker without mask tracking: {% generation %}body{% endgeneration %} renders body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.Scope(body).set_lineno(lineno)


def hf_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = hf_environment()


def render(source, variables):
    """Returns {"output": str} or {"error": kind, "message": str, ["line": n]}."""
    try:
        template = ENV.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": "syntax", "message": e.message, "line": e.lineno}
    try:
        return {"output": template.render(**variables)}
    except jinja2.exceptions.UndefinedError as e:
        return {"error": "undefined", "message": str(e)}
    except jinja2.exceptions.SecurityError as e:
        return {"error": "security", "message": str(e)}
    except jinja2.exceptions.TemplateSyntaxError as e:  # e.g. an unknown filter is found at compile time
        return {"error": "syntax", "message": e.message, "line": e.lineno}
    except jinja2.exceptions.TemplateError as e:  # raise_exception
        return {"error": "raise", "message": str(e)}
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ZeroDivisionError, OverflowError) as e:
        return {"error": "type", "message": f"{type(e).__name__}: {e}"}


# ---------------------------------------------------------------------------------------------
# Model templates and conversations

# template file -> (bos_token, eos_token)
TEMPLATES = {
    "smollm2.jinja": ("<|im_start|>", "<|im_end|>"),
    "chatml.jinja": ("<s>", "</s>"),
    "llama2_chat.jinja": ("<s>", "</s>"),
    "llama3_instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3.1_instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral_v0.1_instruct.jinja": ("<s>", "</s>"),
    "mistral_v1_system.jinja": ("<s>", "</s>"),
    "mistral_v0.3_instruct.jinja": ("<s>", "</s>"),
    "mistral_nemo_instruct.jinja": ("<s>", "</s>"),
    "qwen2_instruct.jinja": ("", "<|im_end|>"),
    "qwen2.5_instruct.jinja": ("", "<|im_end|>"),
    "zephyr.jinja": ("<s>", "</s>"),
    "gemma2_it.jinja": ("<bos>", "<eos>"),
    "gemma3_it.jinja": ("<bos>", "<eos>"),
    "smollm3.jinja": ("", "<|im_end|>"),
    "deepseek_r1.jinja": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
}

TRICKY_USER = (
    'Ünïcödé ✓ 日本語 🙂 "double" \'single\' {{ not_a_tag }} {% raw %} {# nor a comment #} '
    "back\\slash \\n\ttab\n  indented line with trailing spaces   \n"
)
TRICKY_ASSISTANT = '  {"json": [1, 2], "nested": {"a": "}}"}} </s> <|im_end|>  '

CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "multi_turn": [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "   Arr, a pirate I be.   "},
        {"role": "user", "content": "Where is the treasure?"},
    ],
    "ends_with_assistant": [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "hi"},
    ],
    "tricky_content": [
        {"role": "user", "content": TRICKY_USER},
        {"role": "assistant", "content": TRICKY_ASSISTANT},
        {"role": "user", "content": "emoji 👍🏽 and <think>tags</think> end"},
    ],
    "bad_order_two_users": [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ],
    "bad_order_assistant_first": [
        {"role": "assistant", "content": "I speak first"},
        {"role": "user", "content": "ok"},
    ],
    "empty": [],
}


def model_cases():
    cases = []
    for template_file, (bos, eos) in TEMPLATES.items():
        source = (FIXTURES / template_file).read_text(encoding="utf-8")
        for conversation_name, messages in CONVERSATIONS.items():
            for add_generation_prompt in (True, False):
                variables = {
                    "messages": messages,
                    "tools": None,
                    "documents": None,
                    "add_generation_prompt": add_generation_prompt,
                    "bos_token": bos,
                    "eos_token": eos,
                }
                case = {
                    "template": template_file,
                    "conversation": conversation_name,
                    "add_generation_prompt": add_generation_prompt,
                    "bos_token": bos,
                    "eos_token": eos,
                }
                case.update(render(source, variables))
                cases.append(case)
    return cases


# ---------------------------------------------------------------------------------------------
# Feature snippets: (name, source, variables). Variables are JSON so the C++ side sees the same.

SNIPPETS = [
    # whitespace control with HF's trim_blocks + lstrip_blocks
    ("ws_trim_blocks", "{% if true %}\nA\n{% endif %}\nB", {}),
    ("ws_lstrip_blocks", "line\n    {% if true %}\n    X\n    {% endif %}\nend", {}),
    ("ws_lstrip_not_for_variables", "a\n    {{ 'v' }}\n", {}),
    ("ws_minus_both_sides", "a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c", {}),
    ("ws_minus_variable", "x   {{- 'y' -}}   z", {}),
    ("ws_plus_disables_lstrip", "a\n    {%+ if true %}b{% endif %}", {}),
    ("ws_plus_disables_trim", "{% if true +%}\nb{% endif %}", {}),
    ("ws_comment_trimmed", "a\n  {# comment #}\nb {#- c -#} c", {}),
    ("ws_trailing_newline_dropped", "text\n", {}),
    ("ws_crlf_normalised", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}),
    ("ws_lstrip_mid_line_kept", "ab  {% if true %}c{% endif %}", {}),
    ("ws_lstrip_at_template_start", "   {% if true %}x{% endif %}", {}),
    ("ws_tabs_and_newline_after_minus", "{{ 'a' -}}\t\n\n  b", {}),
    ("raw_block", "{% raw %}{{ not evaluated }}{% endraw %}|{%- raw -%}  x  {%- endraw -%}|", {}),
    # literals
    ("literal_strings", "{{ 'a\\'b' }}|{{ \"c\\\"d\" }}|{{ 'tab\\there' }}|{{ 'nl\\nx' }}|{{ '\\u00e9\\x41' }}|{{ 'a' 'b' }}|{{ '\\d' }}", {}),
    ("literal_numbers", "{{ 42 }}|{{ -7 }}|{{ 3.5 }}|{{ 1e3 }}|{{ 2.5e-3 }}|{{ 1_000 }}|{{ 0.1 + 0.2 }}|{{ 1e16 }}|{{ 1e-5 }}|{{ 10 / 4 }}|{{ 10 / 5 }}", {}),
    ("literal_constants", "{{ true }}|{{ True }}|{{ false }}|{{ none }}|{{ None }}|{{ nothing }}|", {}),
    ("literal_list_dict", "{{ [1, 'a', \"it's\", none, true, 1.5, {'k': [2]}] }}|{{ {'x': 1, 'y': 'z'} }}|{{ [] }}|{{ {} }}", {}),
    ("literal_tuple", "{{ (1, 'a') }}|{{ (1,) }}|{{ 1, 2 }}", {}),
    ("string_repr_quotes", "{{ [\"'\", '\"', 'a\\nb', 'back\\\\slash', 'é'] }}", {}),
    # operators
    ("arith", "{{ 7 + 3 }}|{{ 7 - 10 }}|{{ 7 * 3 }}|{{ 7 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 7.5 // 2 }}|{{ 1 + 2.0 }}|{{ true + 1 }}", {}),
    ("arith_strings_lists", "{{ 'ab' + 'cd' }}|{{ 'ab' * 3 }}|{{ [1] + [2, 3] }}|{{ 'x' ~ 1 ~ none ~ true }}", {}),
    ("precedence", "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ 'a' ~ (1 + 2) }}|{{ not true or true }}|{{ not (true or true) }}", {}),
    ("concat_binds_tighter_than_plus", "{{ 'a' ~ 1 + 2 }}", {}),
    ("filter_binds_tighter", "{{ '  a ' | trim + 'b' }}|{{ 'x' + '  y  ' | trim }}|{{ -3 | abs }}", {}),
    ("comparisons", "{{ 1 == 1.0 }}|{{ 'a' != 'b' }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'abc' < 'abd' }}|{{ [1, 2] == [1, 2] }}|{{ {'a': 1} == {'a': 1.0} }}|{{ none == none }}|{{ 1 == '1' }}", {}),
    ("logic_returns_operands", "{{ 1 and 'x' }}|{{ 0 and 'x' }}|{{ '' or 'fallback' }}|{{ none or 0 }}|{{ [] or [1] }}", {}),
    ("membership", "{{ 'a' in 'cat' }}|{{ 'z' not in 'cat' }}|{{ 2 in [1, 2] }}|{{ 'k' in {'k': 1} }}|{{ not 'x' in ['x'] }}|{{ '' in 'abc' }}", {}),
    ("ternary", "{{ 'yes' if 1 > 0 else 'no' }}|{{ 'yes' if 0 else 'no' }}|[{{ 'only' if false }}]", {}),
    ("truthiness", "{% for v in [0, 1, '', 'a', [], [0], {}, none, 0.0] %}{{ 'T' if v else 'F' }}{% endfor %}", {}),
    # access
    ("subscripts", "{{ items[0] }}|{{ items[-1] }}|{{ items[1:] }}|{{ items[::-1] }}|{{ items[:2] }}|{{ items[1:-1] }}|{{ items[::2] }}|{{ items[10] }}|{{ items[5:] }}", {"items": [1, 2, 3, 4]}),
    ("string_slices", "{{ s[0] }}|{{ s[-1] }}|{{ s[::-1] }}|{{ s[1:3] }}|{{ s|length }}", {"s": "héllo🙂"}),
    ("attribute_and_item", "{{ m.role }}|{{ m['content'] }}|{{ m.missing }}|{{ m['missing'] is defined }}|{{ m.nested.deep }}|{{ m.list.0 }}", {"m": {"role": "user", "content": "hi", "nested": {"deep": 5}, "list": ["zero"]}}),
    ("undefined_renders_empty", "[{{ nope }}][{{ nope|length }}][{{ nope ~ 'x' }}][{% for x in nope %}{{ x }}{% endfor %}][{{ nope is defined }}][{{ nope|default('dflt') }}]", {}),
    ("undefined_attribute_errors", "{{ nope.attr }}", {}),
    ("undefined_item_errors", "{{ nope['k'] }}", {}),
    ("undefined_plus_errors", "{{ nope + 'x' }}", {}),
    ("missing_index_then_attribute_errors", "{{ messages[3].role }}", {"messages": [{"role": "user"}]}),
    # control flow
    ("if_elif_else", "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %} {% endfor %}", {}),
    ("for_loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}),
    ("for_prev_next_cycle", "{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}{{ loop.cycle('a', 'b') }} {% endfor %}", {}),
    ("for_else", "{% for x in [] %}item{% else %}empty{% endfor %}|{% for x in [1] %}item{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("for_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("for_unpack_pairs", "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}", {}),
    ("for_nested_loops", "{% for a in [1, 2] %}{% for b in [1, 2] %}{{ loop.index }}{{ a }}{% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("for_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("for_else_after_break_or_continue", "{% for x in [1, 2] %}{{ x }}{% break %}{% else %}E{% endfor %}|{% for x in 'ab' %}{{ x }}{% continue %}{% else %}E{% endfor %}|{% for x in [1, 2] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% else %}E{% endfor %}", {}),
    ("map_select_skip_falsy", "{{ none|select|list }}{{ 0|map('upper')|list }}{{ ''|selectattr('x')|list }}{{ none|rejectattr('x', 'no_such_test')|list }}", {}),
    ("range_forms", "{{ range(3)|list }}|{{ range(2, 5)|list }}|{{ range(10, 0, -3)|list }}|{{ range(0)|list }}", {}),
    # scoping and set
    ("set_scoping_loop", "{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("set_scoping_if", "{% set x = 5 %}{% if true %}{% set x = 6 %}{% endif %}{{ x }}", {}),
    ("scope_template_assignment_hides_variable", "{% for k in [1] %}[{{ n }}]{% endfor %}{% set n = 5 %}{{ n }}", {"n": 7}),
    ("scope_loop_assignment_hides_outer", "{% for i in [1] %}{% for j in [1] %}[{{ t }}]{% endfor %}{% set t = 1 %}{{ t }}{% endfor %}", {"t": 5}),
    ("scope_if_assignment_keeps_outer", "{% for i in [1] %}[{{ t }}]{% endfor %}{% if false %}{% set t = 1 %}{% endif %}{{ t }}", {"t": 5}),
    ("scope_read_before_assignment_resolves", "{{ n }}{% for k in [1] %}{{ n }}{% endfor %}{% set n = 5 %}{{ n }}", {"n": 7}),
    ("scope_macro_before_assignment", "{% macro m() %}[{{ x }}]{% endmacro %}{{ m() }}{% set x = 3 %}{{ m() }}", {"x": 5}),
    ("scope_set_block_and_filter_block_frames", "{% set b %}{% set inner = 1 %}{{ inner }}{% endset %}{% filter upper %}{% set other = 'o' %}{{ other }}{% endfilter %}[{{ b }}][{{ inner }}][{{ other }}]", {}),
    ("set_namespace", "{% set ns = namespace(count=0, seen=false) %}{% for x in [1, 2, 3] %}{% set ns.count = ns.count + x %}{% endfor %}{{ ns.count }}|{{ ns.seen }}|{{ ns }}", {}),
    ("set_namespace_empty", "{% set ns = namespace() %}{% set ns.index = 0 %}{% for m in [1, 2] %}{% set ns.index = ns.index + 1 %}{% endfor %}{{ ns.index }}", {}),
    ("set_block", "{% set block %}Hello {{ name }}!{% endset %}[{{ block }}]", {"name": "Ann"}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set c, d = ['x', 'y'] %}{{ c }}{{ d }}", {}),
    ("set_dict_literal_multiline", "{%- set d = ({\n    'k1': 'v1',\n    'k2': 'v2',\n}) -%}\n{{ d['k2'] }}", {}),
    # macros and filter blocks
    ("macro_basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }}|{{ greet('Al', '?') }}|{{ greet(name='Cy', punct='.') }}", {}),
    ("macro_reads_outer_late", "{% macro m() %}{{ x }}{% endmacro %}{% set x = 3 %}{{ m() }}", {}),
    ("macro_whitespace", "{%- macro item(x) %}\n  <{{ x }}>\n{%- endmacro %}\n{{ item(1) }}{{ item(2) }}", {}),
    ("filter_block", "{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    ("generation_block", "{% generation %}kept{% endgeneration %}", {}),
    # filters
    ("filter_trim_case", "[{{ '  a b  '|trim }}]|{{ 'MiXed'|lower }}|{{ 'MiXed'|upper }}|{{ 'hello wORLD'|capitalize }}|{{ 'hello wORLD-x (y)'|title }}", {}),
    ("filter_replace", "{{ 'a-b-c'|replace('-', '+') }}|{{ 'a-b-c'|replace('-', '', 1) }}|{{ 'ab'|replace('', '.') }}", {}),
    ("filter_join", "{{ [1, 2, 3]|join(', ') }}|{{ ['a', 'b']|join }}|{{ users|join(', ', attribute='name') }}", {"users": [{"name": "x"}, {"name": "y"}]}),
    ("filter_default", "{{ undefined_var|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ none|default('d') }}|{{ 0|d('z', boolean=true) }}", {}),
    ("filter_first_last_length", "{{ [4, 5, 6]|first }}|{{ [4, 5, 6]|last }}|{{ 'xyz'|first }}|{{ [1, 2]|length }}|{{ {'a': 1}|length }}|{{ 'héé'|count }}", {}),
    ("filter_list_items_string", "{{ 'abc'|list }}|{{ {'a': 1}|items|list }}|{{ 3|string + '!' }}|{{ [1, 'a']|string }}|{{ none|string }}", {}),
    ("filter_int_float", "{{ '42'|int + 1 }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ '0x1A'|int(0, 16) }}|{{ '2.5'|float }}|{{ 2|float }}|{{ true|int }}", {}),
    ("filter_safe_abs_round", "{{ '<b>'|safe }}|{{ -2.5|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.1|round(0, 'ceil') }}|{{ 2.9|round(method='floor') }}", {}),
    ("filter_select_reject", "{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3, 4]|reject('even')|list }}|{{ [0, 1, '', 'a']|select|list }}|{{ [1, 5, 9]|select('gt', 4)|list }}", {}),
    ("filter_selectattr", "{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}|{{ ms|rejectattr('role', 'eq', 'user')|list|length }}|{{ ms|selectattr('flag')|list|length }}|{{ ms|selectattr('tool_calls', 'undefined')|list|length }}", {"ms": [{"role": "user", "content": "a", "flag": True}, {"role": "assistant", "content": "b", "tool_calls": []}, {"role": "user", "content": "c"}]}),
    ("filter_map", "{{ ['a', 'b']|map('upper')|join }}|{{ ms|map(attribute='n')|list }}|{{ ms|map(attribute='missing', default='d')|list }}|{{ [' x ', 'y ']|map('trim')|list }}", {"ms": [{"n": 1}, {"n": 2}]}),
    ("filter_sort_unique_reverse", "{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'c']|sort }}|{{ [3, 1, 2]|sort(reverse=true) }}|{{ ms|sort(attribute='n')|map(attribute='n')|list }}|{{ [1, 2, 1, 3]|unique|list }}|{{ [1, 2, 3]|reverse|list }}|{{ 'abc'|reverse }}", {"ms": [{"n": 2}, {"n": 1}]}),
    ("filter_min_max_sum", "{{ [3, 1, 2]|min }}|{{ [3, 1, 2]|max }}|{{ [1, 2, 3]|sum }}|{{ ms|sum(attribute='n') }}", {"ms": [{"n": 2}, {"n": 5}]}),
    ("filter_dictsort", "{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %}|{% for k, v in d|dictsort(by='value', reverse=true) %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": 3, "C": 2}}),
    ("filter_indent", "[{{ 'a\\nb\\n\\nc'|indent }}]|[{{ 'a\\nb'|indent(2, true) }}]|[{{ 'a\\n\\nb'|indent(1, blank=true) }}]", {}),
    ("filter_tojson", "{{ d|tojson }}|{{ 'é \"q\" \\n'|tojson }}|{{ [1, 2.5, none, true]|tojson }}|{{ d|tojson(indent=2) }}|{{ [[], {}]|tojson(indent=4) }}", {"d": {"name": "Zoë", "list": [1, {"x": None}], "f": 0.5, "empty": {}}}),
    ("filter_tojson_options", "{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ d|tojson(ensure_ascii=true) }}", {"d": {"b": "ü🙂", "a": [1, 2]}}),
    ("filter_tojson_control_chars", "{{ s|tojson }}", {"s": "tab\tbell\u0007nul\u0000del\u007f/slash\\"}),
    ("filter_chain", "{{ '  Hello World  '|trim|lower|replace('world', 'there')|title }}", {}),
    # tests
    ("tests_types", "{{ 'a' is string }}{{ 1 is string }}{{ 1 is number }}{{ 1.5 is number }}{{ true is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ {} is mapping }}{{ [] is mapping }}{{ [] is sequence }}{{ 'x' is sequence }}{{ 'x' is iterable }}{{ 1 is iterable }}{{ none is none }}{{ 0 is none }}", {}),
    ("tests_values", "{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 2 is gt 1 }}{{ 2 is le 1 }}{{ 'a' is in 'abc' }}{{ none is sameas none }}{{ true is true }}{{ 1 is true }}{{ false is false }}", {}),
    ("tests_defined", "{{ x is defined }}{{ x is undefined }}{{ y is defined }}{{ y is not none }}{{ d.k is defined }}{{ d.z is defined }}{{ not d.z is defined }}{{ nothing is callable }}{{ range is callable }}", {"y": None, "d": {"k": 1}}),
    # methods
    ("string_methods", "[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ 'a,b,,c'.split(',') }}][{{ ' a  b '.split() }}][{{ 'a b c'.split(' ', 1) }}][{{ 'a-b-c'.rsplit('-', 1) }}]", {}),
    ("string_methods_2", "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'abc'.upper() }}{{ 'ABC'.lower() }}{{ \"they're bill's 1st\".title() }}{{ 'hELLO'.capitalize() }}{{ 'a.b.c'.replace('.', '/') }}{{ 'a.b.c'.replace('.', '/', 1) }}|{{ 'hello'.find('l') }}{{ 'hello'.count('l') }}{{ ', '.join(['x', 'y']) }}", {}),
    ("string_methods_unicode", "{{ 'Ünï'.upper() }}|{{ 'ÀÉ'.lower() }}|{{ 'ünïcode wörld'.title() }}", {}),
    ("dict_methods", "{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 'dflt') }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items()|list }}", {"d": {"a": 1, "b": [2]}}),
    ("dict_global", "{{ dict(a=1, b='x') }}|{{ dict(a=1)|tojson }}", {}),
    ("strftime_now", "{{ strftime_now('%d %B %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%b %a %A %j %%') }}", {}),
    # more corners that real templates reach
    ("undefined_in_filters", "[{{ x|first }}][{{ x|list }}][{{ x|join(',') }}][{{ x|trim }}][{{ x|upper }}][{{ x|string }}][{{ x|length }}][{{ x|items|list }}][{{ x|sort }}][{{ x|select|list }}][{{ x|sum }}][{{ x|safe }}][{{ x|replace('a', 'b') }}][{{ x|title }}]", {}),
    ("undefined_in_tests", "{{ x is none }}{{ x is string }}{{ x is iterable }}{{ x is mapping }}{{ x is number }}{{ not x is defined }}{{ x is not defined }}{{ x == x }}{{ x == none }}{{ 'a' in x }}", {}),
    ("undefined_filter_int_errors", "{{ x|int }}", {}),
    ("undefined_filter_tojson_errors", "{{ x|tojson }}", {}),
    ("undefined_compare_errors", "{% if x > 1 %}{% endif %}", {}),
    ("multiline_tags", "{{\n  'a'\n  ~ 'b'\n}}|{%\n  if true\n%}c{% endif %}", {}),
    ("tag_text_in_strings", "{{ '{{' }}{{ \"}}\" }}{{ '{%' ~ '%}' }}{# {{ not output }} %} #}", {}),
    ("comment_at_line_start", "a\n  {# note #} b\n  {# own line #}\nc", {}),
    ("else_with_minus", "{% for x in [1, 2] -%}\n  {{ x }}\n{%- else -%}\n  none\n{%- endfor %}", {}),
    ("message_access_patterns", "{{ messages[-1]['content'] }}|{{ messages[0].role }}|{{ 'role' in messages[0] }}|{{ messages|length }}|{{ (messages|last).content }}|{{ messages[1:]|map(attribute='role')|join(',') }}", {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
    ("set_from_outer_and_ternary", "{% set x = 1 %}{% set x = x + 1 %}{{ x }}|{% for i in [1] %}{{ loop.index if true }}{{ 'y' if false else 'n' }}{% endfor %}", {}),
    ("namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}", {}),
    ("ordering_and_unary", "{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}{{ (1, 2) <= (1, 2) }}{{ -1 ** 2 }}{{ 7 / 2|int }}{{ not 0 == 1 }}", {}),
    ("printing_constants", "{{ none }}|{{ [none, false] }}|{{ true|string|upper }}|{{ 3|string|length }}|{{ 'abc'|list|join('-') }}|{{ ('a',) }}", {}),
    ("tojson_indent_string", "{{ {'a': [], 'b': {}, 'c': [1, {'d': 'e'}]}|tojson(indent='\\t') }}", {}),
    ("dictsort_unpack_loop", "{% for k, v in d|dictsort %}{{ loop.index }}{{ k }}{{ v }}{{ loop.length }};{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("loop_over_dict_and_string", "{% for k in d %}{{ loop.index }}{{ k }}{{ d[k] }}{% endfor %}|{% for ch in 'añ🙂' %}<{{ ch }}>{% endfor %}", {"d": {"x": 1, "y": 2}}),
    ("nested_loop_filter_else", "{% for m in ms if m.keep %}{% for c in m.text %}{{ c|upper }}{% endfor %}{{ loop.revindex }}{% else %}none{% endfor %}", {"ms": [{"keep": True, "text": "ab"}, {"keep": False, "text": "x"}, {"keep": True, "text": "c"}]}),
    ("macro_in_loop_and_call_args", "{% macro tag(name, body='') %}<{{ name }}>{{ body }}</{{ name }}>{% endmacro %}{% for n in ['a', 'b'] %}{{ tag(n, body=loop.index) }}{% endfor %}|{{ tag('x',) }}", {}),
    ("string_escapes_octal_and_continuation", "{{ '\\101\\x42\\u0043\\U0001F600' }}|{{ 'a\\\nb' }}", {}),
    ("whitespace_unicode_strip", "[{{ '\u3000\u00a0x\u2003'|trim }}][{{ ' \u00a0y'.lstrip() }}]", {}),
    ("int_float_parsing", "{{ ' 12 '|int }}|{{ '1_000'|int }}|{{ '-3.9'|int }}|{{ 'inf'|float }}|{{ '1e2'|float }}|{{ '0b101'|int(0, 2) }}|{{ 'ff'|int(0, 16) }}", {}),
    # errors
    ("raise_exception", "{{ raise_exception('Roles must alternate: ' ~ 'user/assistant') }}", {}),
    ("raise_exception_in_loop", "{% for m in ms %}{% if m == 2 %}{{ raise_exception('bad item ' ~ m) }}{% endif %}{{ m }}{% endfor %}", {"ms": [1, 2, 3]}),
    ("error_unknown_filter", "{{ 'x' | no_such_filter }}", {}),
    ("error_unknown_test", "{{ 'x' is no_such_test }}", {}),
    ("error_syntax_unclosed_expr", "Hello\n{{ name ", {}),
    ("error_syntax_bad_operator", "line one\nline two {{ 1 + }}", {}),
    ("error_syntax_missing_endif", "{% if true %}\nyes\n", {}),
    ("error_syntax_stray_endfor", "a\nb\n{% endfor %}", {}),
    ("error_syntax_unknown_tag", "{% frobnicate %}", {}),
    ("error_syntax_unclosed_string", "{{ 'abc }}", {}),
    ("error_syntax_unclosed_comment", "{# never closed", {}),
    ("error_type_add_str_int", "{{ 'a' + 1 }}", {}),
    ("error_type_compare", "{{ 1 < 'a' }}", {}),
    ("error_division_by_zero", "{{ 1 / 0 }}", {}),
    ("error_call_non_callable", "{{ 'abc'() }}", {}),
    ("error_immutable_append", "{% set l = [1] %}{{ l.append(2) }}", {}),
]


def snippet_cases():
    cases = []
    for name, source, variables in SNIPPETS:
        case = {"name": name, "source": source, "variables": variables}
        case.update(render(source, variables))
        cases.append(case)
    return cases


# ---------------------------------------------------------------------------------------------
# Random templates: a grammar of the constructs chat templates use, with random whitespace
# control, rendered over one set of variables. A differential test against jinja2 that reaches
# combinations nobody writes by hand. Seeded, so the fixture is reproducible.

RANDOM_SEED = 20240726
RANDOM_OUTPUTS = 300
RANDOM_ERRORS = 100
RANDOM_WHITESPACE = 300
RANDOM_VARIABLES = {
    "messages": [{"role": "system", "content": " Sys\n"}, {"role": "user", "content": "Hi 'q' \"d\" é"},
                 {"role": "assistant", "content": "  Yo  ", "tool_calls": []}, {"role": "user", "content": ""}],
    "s": "Hello, World é🙂 ", "n": 7, "f": 2.5, "neg": -3, "t": True, "nil": None,
    "items": [3, 1, 2], "words": ["b", "A", "c", "a"], "d": {"k": "v", "n": 1, "l": [1, 2]},
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True,
}


class RandomTemplates:
    STRINGS = ["''", "'a'", "'x y'", "\"q'\"", "'\\n'", "'é'", "' pad '", "'A,b'", "'<|im|>'", "'{{'", "'%}'"]
    NAMES = ["messages", "s", "n", "f", "neg", "t", "nil", "items", "words", "d", "missing", "bos_token",
             "add_generation_prompt"]
    FILTERS = ["trim", "upper", "lower", "length", "first", "last", "list", "string", "tojson", "title", "capitalize",
               "sort", "unique|list", "int", "float", "abs", "join(', ')", "default('dflt')", "replace('a', 'Z')",
               "items|list", "map('upper')|list", "select|list", "selectattr('role', 'equalto', 'user')|list",
               "map(attribute='role')|join(',')", "tojson(indent=2)", "indent(2)", "round(1)", "sum", "min", "max",
               "dictsort", "count", "d(0)", "rejectattr('role', 'eq', 'system')|list"]
    TESTS = ["defined", "undefined", "none", "string", "number", "integer", "mapping", "iterable", "sequence", "odd",
             "even", "true", "false", "boolean", "lower", "upper", "divisibleby 2", "eq 7", "in [1, 2, 3]", "gt 1",
             "sameas none"]
    METHODS = ["strip()", "upper()", "lower()", "split()", "split(',')", "startswith('H')", "endswith(' ')", "title()",
               "replace('l', 'L')", "lstrip()", "rstrip('🙂 ')", "find('o')", "count('l')", "capitalize()", "get('k')",
               "get('zz', 5)"]
    OPERATORS = ["+", "-", "*", "/", "//", "~", "and", "or", "==", "!=", "<", ">", "<=", ">=", "in", "not in"]

    def __init__(self, seed):
        self.r = random.Random(seed)

    def atom(self, depth):
        r = self.r
        c = r.random()
        if c < 0.3: return r.choice(self.NAMES)
        if c < 0.45: return r.choice(self.STRINGS)
        if c < 0.55: return str(r.choice([0, 1, 2, 3, -1, 10, 100]))
        if c < 0.6: return r.choice(["1.5", "0.1", "2.0", "1e3", "-0.5"])
        if c < 0.65: return r.choice(["true", "false", "none", "True", "None"])
        if c < 0.72 and depth < 3: return "[" + ", ".join(self.expr(depth + 1) for _ in range(r.randint(0, 3))) + "]"
        if c < 0.76 and depth < 3:
            return "{" + ", ".join(f"{r.choice(self.STRINGS[1:])}: {self.expr(depth + 1)}" for _ in range(r.randint(0, 2))) + "}"
        if c < 0.82:
            return r.choice(["messages[0]", "messages[-1]", "messages[1]['content']", "messages[0].role", "d.k",
                             "d['l'][1]", "items[1:]", "s[::-1]", "s[2:5]", "words[-2:]", "messages[9]", "d.zz"])
        if c < 0.86: return r.choice(["range(3)|list", "range(1, 7, 2)|list", "namespace(a=1).a", "dict(a=1)"])
        return "(" + self.expr(depth + 1) + ")"

    def expr(self, depth=0):
        r = self.r
        e = self.atom(depth)
        if depth > 2: return e
        for _ in range(r.randint(0, 2)):
            c = r.random()
            if c < 0.25: e = f"{e}|{r.choice(self.FILTERS)}"
            elif c < 0.4: e = f"{e} is {'not ' if r.random() < 0.3 else ''}{r.choice(self.TESTS)}"
            elif c < 0.55 and e in ("s", "d", "messages[1]['content']", "'a'", "' pad '", "'A,b'"):
                e = f"{e}.{r.choice(self.METHODS)}"
            elif c < 0.85: e = f"{e} {r.choice(self.OPERATORS)} {self.atom(depth + 1)}"
            elif c < 0.92: e = f"{e} if {self.atom(depth + 1)} else {self.atom(depth + 1)}"
            else: e = f"not {e}"
        return e

    def space(self): return self.r.choice(["", "", " ", "\n", "  \n", "\n  ", "\t", "\n\n"])
    def left(self): return self.r.choice(["", "", "", "-", "+"])
    def right(self): return self.r.choice(["", "", "", "-"])

    def tag(self, body):
        return f"{{%{self.left()} {body} {self.right()}%}}"

    def block(self, depth, in_loop=False):
        r = self.r
        parts = []
        for _ in range(r.randint(1, 4)):
            c = r.random()
            parts.append(self.space() + r.choice(["x", "A ", " b", "", "|", "é"]) + self.space())
            if c < 0.35:
                parts.append("{{" + self.right() + " " + self.expr() + " " + self.right() + "}}")
            elif c < 0.5 and depth < 3:
                parts.append(self.tag(f"if {self.expr()}") + self.block(depth + 1, in_loop) +
                             (self.tag(f"elif {self.expr()}") + self.block(depth + 1, in_loop) if r.random() < 0.3 else "") +
                             (self.tag("else") + self.block(depth + 1, in_loop) if r.random() < 0.4 else "") +
                             self.tag("endif"))
            elif c < 0.65 and depth < 3:
                target, iterable = r.choice([("m", "messages"), ("x", "items"), ("ch", "s"), ("k", "d"),
                                             ("k, v", "d.items()"), ("w", "words|sort"), ("i", "range(4)")])
                condition = f" if {self.expr()}" if r.random() < 0.2 else ""
                body = self.block(depth + 1, True) + r.choice(["{{ loop.index }}", "{{ loop.first }}", "{{ loop.last }}",
                                                                "{{ loop.revindex0 }}", ""])
                otherwise = self.tag("else") + self.block(depth + 1) if r.random() < 0.2 else ""
                parts.append(self.tag(f"for {target} in {iterable}{condition}") + body + otherwise + self.tag("endfor"))
            elif c < 0.75:
                parts.append(self.tag(f"set {r.choice(['y', 'z', 'n'])} = {self.expr()}"))
            elif c < 0.8:
                parts.append(self.tag("set ns = namespace(c=0)") + "{% set ns.c = ns.c + 1 %}{{ ns.c }}")
            elif c < 0.85 and in_loop:
                parts.append(r.choice(["{% if loop.index > 1 %}{% break %}{% endif %}", "{% continue %}"]))
            elif c < 0.9:
                parts.append(f"{{#{self.left()} note {{{{ x }}}} {self.right()}#}}")
            else:
                parts.append("{{ y }}{{ z }}")
        return "".join(parts)


class RandomWhitespace:
    """Text with every kind of line break and Unicode space around tags with every whitespace marker."""

    TEXT = ["a", " ", "  ", "\n", "\r\n", "\r", "\t", "\u3000", "\u00a0", "\u2028", "é", "}", "{", "#", "%", "-", "+",
            "\x0b", "\x0c", "\x1c"]

    def __init__(self, seed):
        self.r = random.Random(seed)

    def text(self):
        return "".join(self.r.choice(self.TEXT) for _ in range(self.r.randint(0, 5)))

    def inner_space(self):
        return "".join(c for c in self.text() if c.isspace())

    def sign(self):
        return self.r.choice(["", "", "-", "+"])

    def tag(self):
        r = self.r
        c = r.random()
        if c < 0.3:
            return "{{" + r.choice(["", "-"]) + self.inner_space() + "'v'" + " " + r.choice(["", "-"]) + "}}"
        if c < 0.5:
            return "{#" + self.sign() + self.text().replace("#", "") + self.sign() + "#}"
        if c < 0.75:
            return "{%" + self.sign() + " if true " + self.sign() + "%}" + self.text() + "{%" + self.sign() + " endif " + self.sign() + "%}"
        if c < 0.9:
            return ("{%" + self.sign() + " for x in [1, 2] " + self.sign() + "%}" + self.text() + "{{ x }}" + self.text() +
                    "{%" + self.sign() + " endfor " + self.sign() + "%}")
        return "{%" + self.sign() + " raw " + r.choice(["", "-"]) + "%}" + self.text() + "{%" + self.sign() + " endraw " + self.sign() + "%}"

    def template(self):
        return "".join(self.text() + self.tag() for _ in range(self.r.randint(1, 5))) + self.text()


def random_whitespace_cases():
    generator = RandomWhitespace(RANDOM_SEED)
    cases = []
    while len(cases) < RANDOM_WHITESPACE:
        source = generator.template()
        cases.append({"source": source, **render(source, {})})
    return cases


def random_cases():
    """RANDOM_OUTPUTS templates jinja2 renders and RANDOM_ERRORS it rejects (most random templates fail)."""
    generator = RandomTemplates(RANDOM_SEED)
    outputs, errors = [], []
    while len(outputs) < RANDOM_OUTPUTS or len(errors) < RANDOM_ERRORS:
        source = generator.block(0)
        result = render(source, copy.deepcopy(RANDOM_VARIABLES))
        if "output" in result and len(outputs) < RANDOM_OUTPUTS and len(result["output"]) <= 2000:
            outputs.append({"source": source, **result})
        elif "error" in result and len(errors) < RANDOM_ERRORS:
            errors.append({"source": source, **result})
    return outputs + errors


def write_fixtures():
    model = model_cases()
    snippets = snippet_cases()
    meta = {
        "generator": "scripts/reference/chat_template_reference.py",
        "jinja2_version": jinja2.__version__,
        "python_version": sys.version.split()[0],
        "fixed_now": FIXED_NOW.isoformat(),
    }
    conversations = {name: messages for name, messages in CONVERSATIONS.items()}
    with open(FIXTURES / "expected.json", "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "conversations": conversations, "cases": model}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(FIXTURES / "snippets.json", "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "cases": snippets}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    randoms = random_cases()
    with open(FIXTURES / "random.json", "w", encoding="utf-8") as f:
        json.dump({"meta": {**meta, "seed": RANDOM_SEED}, "variables": RANDOM_VARIABLES, "cases": randoms,
                   "whitespace_cases": random_whitespace_cases()}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for c in model if "error" in c)
    print(f"expected.json: {len(model)} cases ({errors} errors); snippets.json: {len(snippets)} cases; "
          f"random.json: {len(randoms)} cases ({sum('error' in c for c in randoms)} errors)")


# ---------------------------------------------------------------------------------------------
# Template extraction (run once; the extracted files are committed)

def decode_js_string(literal):
    """Decodes one JavaScript string literal ('...', "..." or `...` without ${})."""
    body = literal[1:-1]
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e == "u":
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif e == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif e == "\n":
            i += 2
        else:
            out.append(e)
            i += 2
    text = "".join(out)
    # JS strings are UTF-16: join surrogate pairs written as \uD83D\uDE00.
    return text.encode("utf-16", "surrogatepass").decode("utf-16")


JS_STRING = r"""(`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""


def automap_template(automap_text, model):
    m = re.search(r'model: "' + re.escape(model) + r'",\s*gguf: ' + JS_STRING, automap_text, re.S)
    if not m:
        sys.exit(f"automap: no entry for {model}")
    return decode_js_string(m.group(1))


def e2e_template(e2e_text, key):
    m = re.search(r'"' + re.escape(key) + r'": \{\s*chat_template:\s*' + JS_STRING, e2e_text, re.S)
    if not m:
        sys.exit(f"e2e: no entry for {key}")
    return decode_js_string(m.group(1))


def extract(args):
    import gguf

    reader = gguf.GGUFReader(args.gguf)
    field = reader.fields["tokenizer.chat_template"]
    templates = {"smollm2.jinja": bytes(field.parts[field.data[0]]).decode("utf-8")}
    automap = Path(args.automap).read_text(encoding="utf-8")
    e2e = Path(args.e2e).read_text(encoding="utf-8")
    for name, model in {
        "llama2_chat.jinja": "library/llama2:7b",
        "llama3_instruct.jinja": "library/llama3:8b",
        "mistral_v0.1_instruct.jinja": "library/mistral:7b-instruct-fp16",
        "mistral_v1_system.jinja": "library/mixtral:8x7b",
        "qwen2_instruct.jinja": "library/qwen2:0.5b",
        "gemma2_it.jinja": "library/gemma2:2b",
        "gemma3_it.jinja": "library/gemma3:1b",
    }.items():
        templates[name] = automap_template(automap, model)
    for name, key in {
        "zephyr.jinja": "HuggingFaceH4/zephyr-7b-beta (add_generation_prompt=true)",
        "mistral_v0.3_instruct.jinja": "mistralai/Mistral-7B-Instruct-v0.3 (JSON Schema)",
        "mistral_nemo_instruct.jinja": "mistralai/Mistral-Nemo-Instruct-2407",
        "llama3.1_instruct.jinja": "meta-llama/Llama-3.1-8B-Instruct",
        "qwen2.5_instruct.jinja": "Qwen/Qwen2.5-7B-Instruct",
        "smollm3.jinja": "HuggingFaceTB/SmolLM3-3B",
        "deepseek_r1.jinja": "deepseek-ai/DeepSeek-R1",
    }.items():
        templates[name] = e2e_template(e2e, key)
    # Plain ChatML (llava-v1.6-34b's GGUF); ChatTemplate::chatml_source() is this string.
    templates["chatml.jinja"] = automap_template(automap, "library/llava:34b")
    # Cross-checks between sources: the same template reached two ways.
    assert automap_template(automap, "library/tinyllama:1.1b") == templates["zephyr.jinja"]
    assert automap_template(automap, "library/smollm2:135m") == templates["smollm2.jinja"]
    assert e2e_template(e2e, "TheBloke/Mistral-7B-Instruct-v0.1-GPTQ") == templates["mistral_v0.1_instruct.jinja"]
    for name, text in templates.items():
        (FIXTURES / name).write_bytes(text.encode("utf-8"))
        print(f"{name}: {len(text)} characters")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    ex = sub.add_parser("extract")
    ex.add_argument("--gguf", required=True)
    ex.add_argument("--automap", required=True)
    ex.add_argument("--e2e", required=True)
    args = parser.parse_args()
    if args.command == "extract":
        extract(args)
    else:
        write_fixtures()


if __name__ == "__main__":
    main()
