"""specc.lang.reparse: the editor's parse that reuses unchanged statements gives exactly `parse()`'s
result (the same SpecFile) or exactly its error, on every shipped spec, generated specs and edits of
them; and it does reuse what an edit did not touch."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from conftest import SPECS
from specc.lang.parse import parse
from specc.lang.reparse import StatementCache, reparse, statements
from test_properties import random_spec

SHIPPED = sorted(SPECS.rglob("*.cnn"))
TEXTS = {str(p.relative_to(SPECS)): p.read_text() for p in SHIPPED}


def outcome(parse_with, text: str):
    """Everything a parse gives: the SpecFile's fields, or the error's message and place."""
    try:
        spec = parse_with(text)
    except specc.SpecError as err:
        return ("error", err.message, err.hint, err.span)
    fields = vars(spec)
    return {key: fields[key] for key in sorted(fields)}


def assert_same(text: str, cache: StatementCache) -> None:
    assert outcome(lambda t: reparse(t, "x.cnn", cache), text) == outcome(lambda t: parse(t, "x.cnn"), text)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_shipped_spec_parses_the_same(name):
    cache = StatementCache()
    assert_same(TEXTS[name], cache)
    # each statement of a valid spec parses alone: nothing fell back to the whole-file parse
    assert all(cache.items(line, text, "x.cnn") is not None for line, text in statements(TEXTS[name]))
    assert_same(TEXTS[name], cache)  # the second time from the cache


# Edits as typed: pieces of the language (keywords at a line's start too) inserted or text deleted.
PIECES = ["\n", "\nblock ", "\nparam ", "param x = 1\n", "\ninput 3x32x32\n", "\ntrain {", "}", "{", "(", ")",
          "->", " -> relu", "#", '"', "\ndefault conv bias=false\n", "input", "*", " as i", ": 3x?x?",
          "conv 3x3 8", "add(", " | ", ",", "=", "2", "\n-> fc 10\n", "\nnetwork n\n", "\nimport \"lib.cnn\"\n"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(TEXTS)), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 12),
                                                          st.sampled_from(PIECES)), min_size=1, max_size=4))
def test_edits_of_a_shipped_spec_parse_the_same(name, edits):
    text, cache = TEXTS[name], StatementCache()
    assert_same(text, cache)
    for where, deleted, piece in edits:  # one cache through the edits, as in an editor
        where %= len(text) + 1
        text = text[:where] + piece + text[where + deleted:]
        assert_same(text, cache)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec())
def test_generated_specs_parse_the_same(text):
    assert_same(text, StatementCache())


def test_an_edit_reparses_only_its_statement():
    text = TEXTS["googlenet.cnn"]
    assert len(statements(text)) > 5
    cache = StatementCache()
    before = reparse(text, "x.cnn", cache)
    after = reparse(text.rstrip() + " -> identity\n", "x.cnn", cache)  # the body, the last statement, edited
    assert after.body != before.body
    assert before.blocks and all(after.blocks[name] is block for name, block in before.blocks.items())


def test_statements_are_cut_only_outside_brackets_comments_and_strings():
    text = 'input 3x8x8\nblock b(c) {\n  conv 3x3 c\n}\n# param in a comment\nparam k = 2\nb(4)\n'
    assert [line for line, _ in statements(text)] == [1, 2, 5, 6]
    assert "".join(part for _, part in statements(text)) == text
