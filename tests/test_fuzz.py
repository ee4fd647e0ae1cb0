"""Fuzzing specc.loads: only SpecError escapes, and every SpecError renders (issue 9).

The known findings are pinned below one by one; then bench/fuzz.py's seeded
generator (the grammar's pieces and mutations of the shipped specs) runs a
fixed budget. For long runs: python bench/fuzz.py --inputs 20000 --seed 0
"""
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from conftest import ROOT, SPECS
from specc.tools.summary import check_line, summary_dict

sys.path.insert(0, str(ROOT / "bench"))
import fuzz  # noqa: E402  (bench/fuzz.py)

BIG = "9" * 4400


def _error(text: str, **kwargs) -> str:
    with pytest.raises(specc.SpecError) as err:
        specc.loads(text, **kwargs)
    return str(err.value)


@pytest.mark.parametrize("text, line, column", [
    ("input 4\nfc " + BIG, 2, 4),                       # int() of 4,300+ digits raised ValueError in the parser
    ("input 1x8x8\nconv 3x3 4 s" + BIG, 2, 12),         # a shorthand's number
    ("input 1x8x8\nconv 1x" + BIG + " 4", 2, 6),         # a side of a size
    ("input 1x8x8\nconv 3x3 4 : 4x" + BIG + "x8", 2, 14),  # a side of an annotation
    ("input 1x" + BIG, 1, 7),
    ("input 4\nfc (" + BIG + " + .5)", 2, 5),            # was a float overflow
    ("input 4\nfc (" + "9" * 400 + ".5)", 2, 5),          # a float literal that is infinite
    ("input 4\nfc 2\ntrain { epochs = " + BIG + " }", 3, 18),
    ("input 4\nfc 9223372036854775809", 2, 4),
])
def test_huge_literals_are_located_errors(text, line, column):
    shown = _error(text)
    assert f"<string>:{line}:{column}: error: the value is too large" in shown


def test_the_largest_allowed_values_print():
    """`input 4 / fc 9...9` loaded, then the summary printer raised."""
    net = specc.loads("input 4\nfc 9223372036854775807 -> fc 9223372036854775807")
    assert "params" in check_line(net) and summary_dict(net, 8)["totals"]["params"] == net.param_count


def test_unary_minus_on_a_word_is_a_located_error():
    shown = _error("input 4\nfc 2\ntrain { data = -mnist }")
    assert shown.splitlines()[0] == "<string>:3:16: error: '-' goes only before a number, not before 'mnist'"
    assert specc.loads("input 4\nfc 2\ntrain { lr = -1 }").train_settings["lr"].value == -1


@pytest.mark.parametrize("char", ["\x0c", "\x0b", "\x85", "\u2028", "\u2029", "\x1c", "\r"])
def test_odd_line_breaks_in_a_comment_do_not_shift_the_excerpt(char):
    shown = _error(f"input 4\n# one{char}two\nfc x")
    assert shown.splitlines()[:3] == ["<string>:3:4: error: unknown name 'x'", "    3 | fc x", "      |    ^"]


def test_an_error_at_the_end_after_odd_line_breaks():
    shown = _error("input 4\n# a\x0cb\nfc 2 ->")
    assert shown.splitlines()[0].startswith("<string>:3:")


@pytest.mark.parametrize("kwargs", [dict(c=None), dict(classes="10"), dict(classes=[1]), dict(classes=float("nan")),
                                    dict(input_shape="1x28x28"), dict(input_shape=(None,)), dict(input_shape=("a",)),
                                    dict(input_shape=(1.5, 28, 28)), dict(input_shape=5), dict(input_shape=(True,)),
                                    dict(input_shape=(2**70,)), dict(input_shape=()), dict(classes=2**70)])
def test_api_inputs_are_clear_errors(kwargs):
    with pytest.raises(specc.SpecError) as err:
        specc.load(SPECS / "lenet.cnn", **kwargs)
    assert "error:" in str(err.value)


def test_api_inputs_that_work():
    import numpy
    assert specc.load(SPECS / "lenet.cnn", input_shape=[1, 32, 32]).input_shape == (1, 32, 32)
    assert specc.load(SPECS / "lenet.cnn", input_shape=numpy.array([1, 28, 28])).output_shape == (10,)
    assert specc.load(SPECS / "lenet.cnn", classes=100).output_shape == (100,)
    with pytest.raises(specc.SpecError):
        specc.load(None)
    with pytest.raises(specc.SpecError):
        specc.loads(b"input 4\nfc 2")


def test_an_unencodable_path_is_an_error_that_renders():
    shown = _error("", path="\ud800.cnn")
    assert shown.startswith("\\ud800.cnn: error: the spec has no layers")
    shown = _error('import "\ud800.cnn"\ninput 4\nfc 2', path=str(SPECS / "x.cnn"))
    assert "cannot be encoded" in shown


def test_generated_inputs_raise_only_spec_errors():
    """A fixed budget of bench/fuzz.py's generator in the suite (seconds)."""
    report = fuzz.run(2000, seed=1)
    assert report.inputs == 2000
    found = {kind: f[0][1][:200] for kind, f in report.findings.items()}
    assert report.count == 0, found


PIECES = list("0123456789x.-+*/()|:{}=#\"\n\t\x0c\u2028 ?sSpdgcfabnkre_,;") + [
    "conv", "fc", "->", "input ", "block ", "param ", "train {", "concat(", "add(", "default ", "import ", "relu",
    " * ", BIG]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_any_text_raises_only_spec_errors(text):
    assert fuzz.check_one("<string>", text) is None


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(fuzz.corpus()), st.integers(0, 10**6), st.text(max_size=8))
def test_any_insertion_into_a_shipped_spec_raises_only_spec_errors(seed, where, inserted):
    path, text = seed
    where %= len(text) + 1
    assert fuzz.check_one(path, text[:where] + inserted + text[where:]) is None
