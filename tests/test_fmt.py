"""`specc fmt` (issue 12): one canonical layout that never changes the network a spec describes.

The oracle for "the same network" is specc's own analysis of the text before and after: every
layer's module path, kind, resolved arguments, shapes and costs, the expanded tree's names and
block calls, and the train recipe. The formatter checks its tokens itself; these tests check the
analysis, idempotence and the layout rules, on every shipped spec and on generated specs.
"""
import random
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from conftest import SPECS
from specc.cli import main
from specc.lang.expand import CheckNode, LayerNode, MergeNode, SeqNode
from specc.lang.parse import parser
from specc.tools.fmt import format_source
from test_properties import random_spec

SHIPPED = sorted(SPECS.rglob("*.cnn"))


def squeezed(text: str) -> str:
    """Text as written, without its spaces: the one thing fmt may change in a layer's `op`."""
    return re.sub(r"\s", "", text)


def graph_key(node):
    """The expanded tree: names, kinds, resolved arguments and shapes, block calls as written."""
    if isinstance(node, LayerNode):
        return ("layer", node.name, node.kind.name, dict(node.args), node.in_shape, node.out_shape,
                squeezed(node.text), tuple(squeezed(re.sub(r" at line \d+", "", c)) for c in node.calls))
    if isinstance(node, MergeNode):
        return ("merge", node.name, node.kind.name, node.out_shape, [graph_key(b) for b in node.branches])
    if isinstance(node, CheckNode):
        return ("check", node.name, node.dims)
    assert isinstance(node, SeqNode)
    return ("seq", node.name, squeezed(node.text), squeezed(node.resolved), [graph_key(i) for i in node.items])


def analysis(text: str, path: str, sources: dict | None = None):
    """What the spec means, without where it is written; a refusal's message for a spec that fails."""
    try:
        net = specc.loads(text, path=path, sources=sources)
    except specc.SpecError as err:
        return ("refused", err.message)
    rows = [(r.path, r.kind, squeezed(r.op), r.output_shape, r.params, r.buffers, r.macs) for r in net.layers]
    recipe = {key: s.value for key, s in net.train_settings.items()}
    return (net.name, net.input_shape, net.output_shape, rows, graph_key(net.graph), recipe, net.params)


def tokens(text: str) -> list[tuple[int, int]]:
    """(start, end) of every token, from the parser's own lexer."""
    interactive = parser().parse_interactive(text)
    return [(t.start_pos, t.end_pos) for t in interactive.iter_parse()]


def loosened(text: str, seed: int) -> str:
    """`text` with its layout disturbed but its line structure kept: random spaces and tabs between
    tokens, other indentation, trailing spaces, `->` and `|` moved to the end of the line before,
    doubled blank lines, CRLF endings. Formatting it must give back the formatted text exactly."""
    rng = random.Random(seed)
    spans, out, end = tokens(text), [], 0
    for start, stop in spans + [(len(text), len(text))]:
        gap = text[end:start]
        if "\n" not in gap and "#" not in gap:  # within a line: any run of spaces and tabs
            gap = gap + rng.choice(["", "", " ", "  ", "\t"]) if gap or rng.random() < 0.3 else gap
        else:  # across lines: other indentation and trailing spaces
            gap = re.sub(r"\n[ \t]*", lambda m: "\n" + rng.choice(["", "  ", "\t", "        "]), gap)
            gap = re.sub(r"\n\n", lambda m: rng.choice(["\n\n", "\n  \n\n"]), gap)
        out.append(gap + text[start:stop])
        end = stop
    lines = "".join(out).split("\n")
    for i in range(1, len(lines)):  # `a` / `-> b` becomes `a ->` / `b`, when `a` ends in code
        head = lines[i].lstrip(" \t")
        if head[:2] in ("->", "| ") and "#" not in lines[i - 1] and lines[i - 1].strip() and rng.random() < 0.5:
            joiner = head.split(None, 1)[0]
            lines[i - 1] += " " + joiner
            lines[i] = head[len(joiner):]
    return ("\r\n" if rng.random() < 0.2 else "\n").join(lines)


def meaning(path, text: str):
    """The analysis of the spec at `path` written as `text`; for a library (no body of its own),
    that of the first spec importing it, with this text of the library."""
    if path.parent.name != "lib":
        return analysis(text, str(path))
    importer = next(p for p in sorted(path.parent.parent.glob("*.cnn")) if f'"lib/{path.name}"' in p.read_text())
    sources = specc.load(importer).sources
    assert f"lib/{path.name}" in sources
    return analysis(importer.read_text(), str(importer), {**sources, f"lib/{path.name}": text})


# --- every shipped spec -------------------------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SPECS)))
def test_a_shipped_spec_is_formatted_and_its_loosened_layout_formats_back(path):
    text = path.read_text()
    assert format_source(text, str(path)) == text, "run: specc fmt specs/"
    messy = loosened(text, seed=len(text))
    assert messy != text
    assert format_source(messy, str(path)) == text
    before = meaning(path, text)
    assert before[0] != "refused" and meaning(path, messy) == before


# --- generated specs ----------------------------------------------------------------------------
SEPARATORS = [" ", " ", " ", "", "  ", "\t", "\n", "\n  ", "\n\n\n", " # note\n", "\n# a line of its own\n"]


@st.composite
def written_anyhow(draw):
    """A random spec (tests/test_properties.py's: valid or not) with a random layout: any spaces,
    line breaks, blank lines and comments between its tokens."""
    text = draw(random_spec())
    spans = tokens(text)
    out, end = [], 0
    for start, stop in spans:
        gap = text[end:start]
        if not gap.strip(" \t\n"):  # a gap that held a space keeps one: it may separate two tokens
            gap = draw(st.sampled_from([s for s in SEPARATORS if s] if gap else SEPARATORS))
        out.append(gap + text[start:stop])
        end = stop
    return "".join(out)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(written_anyhow())
def test_a_generated_spec_formats_to_the_same_network_idempotently(text):
    formatted = format_source(text)
    assert format_source(formatted) == formatted
    assert analysis(formatted, "<string>") == analysis(text, "<string>")
    assert not re.search(r"(->|\|)[ \t]*(#.*)?$", formatted, re.M), "a line ends with a joiner"
    assert "\n\n\n" not in formatted and not re.search(r"[ \t]$", formatted, re.M)


def test_the_documented_examples_format_to_the_same_network():
    """docs/language.md's complete examples (```cnn blocks), as a user would paste them."""
    docs = (SPECS.parent / "docs" / "language.md").read_text()
    blocks = re.findall(r"```cnn\n(.*?)```", docs, re.S)
    assert len(blocks) >= 5
    for text in blocks:
        formatted = format_source(text)
        assert format_source(formatted) == formatted
        assert analysis(formatted, "<string>") == analysis(text, "<string>")


# --- the layout, rule by rule -------------------------------------------------------------------
MESSY = """\


# a network      
network  tiny
input   1x8x8   # C x H x W
param classes=10
param  width  =   2*4+ -1   # unary minus after an operator


block  unit( c , k = 3 ,act=relu ) {
conv kernel = k c p( k//2 ) stride  =  1 -> # trailing arrows move down
  bn ->
      act
   }
block one(c){conv 3x3 c p1->relu}
import "lib.cnn"(eps=0.001)
default  batchnorm   eps =1e-3
unit(width)->
add (unit(width)|
identity
) * 2 as i : 7x8x8 -> hardtanh min= - 2
  -> concat(
  linear_free(1)
  # between branches
  | identity)
   :14x8x8
 -> gap->flatten    -> linear classes   :10
train{lr=-0.1
data=fashion-mnist  # a word
 batch = 4
}
# the end
"""

TIDY = """\
# a network
network tiny
input 1x8x8               # C x H x W
param classes = 10
param width = 2 * 4 + -1  # unary minus after an operator

block unit(c, k=3, act=relu) {
    conv kernel=k c p(k // 2) stride=1  # trailing arrows move down
    -> bn
    -> act
}
block one(c) { conv 3x3 c p1 -> relu }
import "lib.cnn" (eps = 0.001)
default batchnorm eps=1e-3
unit(width)
-> add(unit(width)
     | identity
) * 2 as i : 7x8x8 -> hardtanh min=-2
-> concat(
    linear_free(1)
    # between branches
  | identity)
                                     : 14x8x8
-> gap -> flatten -> linear classes  : 10
train { lr = -0.1
    data = fashion-mnist  # a word
    batch = 4
}
# the end
"""


def test_every_layout_rule_at_once():
    assert format_source(MESSY) == TIDY
    assert format_source(TIDY) == TIDY


@pytest.mark.parametrize("text, expected", [
    # a merge written hanging: branches 4 in, `|` 2 to the left, `)` where the merge's line starts
    ("input 3x8x8\nblock b() {\nconcat(\nrelu\n|identity\n)\n}\nb()",
     "input 3x8x8\nblock b() {\n    concat(\n        relu\n      | identity\n    )\n}\nb()\n"),
    # a merge inside a continued chain: branches line up after `add(`
    ("input 3x8x8\nrelu\n-> add(relu -> relu\n-> relu\n| identity)",
     "input 3x8x8\nrelu\n-> add(relu -> relu\n       -> relu\n     | identity)\n"),
    # block parameters and call arguments continued: after the bracket
    ("input 3x8x8\nblock b(c,\nk=1) { conv kernel=k c }\nb(3,\nk=1)",
     "input 3x8x8\nblock b(c,\n        k=1) { conv kernel=k c }\nb(3,\n  k=1)\n"),
    # annotations line up two spaces after the longest code of the chain; comments after them
    ("input 3x8x8\nconv 3x3 4 p1 : 4x8x8 # a\n-> maxpool 2 s2: 4x4x4\n-> flatten # b",
     "input 3x8x8\nconv 3x3 4 p1    : 4x8x8  # a\n-> maxpool 2 s2  : 4x4x4\n-> flatten                # b\n"),
    # a statement continued on the next line is indented; a comment alone keeps its line
    ("param x =\n3\ninput\n1x8x8\n# body\nrelu", "param x =\n    3\ninput\n    1x8x8\n# body\nrelu\n"),
    # nothing but comments, and nothing at all
    ("  # only a comment  \n\n\n", "# only a comment\n"),
    ("\n \n", ""),
])
def test_layout_rules(text, expected):
    assert format_source(text) == expected
    assert format_source(expected) == expected


def test_tokens_are_never_rewritten():
    """Aliases, argument forms, number spellings and sizes stay as written; only spaces change."""
    text = "input 1x8x8\nconv kernel=3x3 channels=4 stride=2 padding=1 -> batchnorm -> relu\n" \
           "-> conv 3x3 4 s2 p1 d1 g1 bias=false -> maxpool 2 -> dropout .50\n" \
           "-> flatten -> linear 10 in=4 -> bn eps=1E-5\n"
    assert format_source(text) == text


def test_a_spec_that_parses_but_does_not_check_is_formatted():
    text = "input 1x28x28\nconv 5x5 6 : 6x27x27->flatten->fc 10 in=99"
    with pytest.raises(specc.SpecError):
        specc.loads(text)
    assert format_source(text) == "input 1x28x28\nconv 5x5 6 : 6x27x27 -> flatten -> fc 10 in=99\n"


def test_a_spec_that_does_not_parse_is_a_located_error():
    with pytest.raises(specc.SpecError) as err:
        format_source("input 4\nfc 2 ->\n", path="net.cnn")
    assert str(err.value).startswith("net.cnn:2:8: error: unexpected end of file")


def test_the_formatter_refuses_output_that_would_change_the_tokens(monkeypatch):
    """The safety net behind the rules: a layout bug that glued `conv` to `3x3` is caught."""
    from specc.tools import fmt
    monkeypatch.setattr(fmt, "_spaced", lambda left, right: False)
    with pytest.raises(fmt.FormatError, match="please report it"):
        fmt.format_source("input 1x8x8\nconv 3x3 4")


# --- the command --------------------------------------------------------------------------------
def fmt(*args, input=None):
    return CliRunner().invoke(main, ["fmt", *args], input=input)


UGLY = "input 4\nfc 2->relu   : 2\n"
PRETTY = "input 4\nfc 2 -> relu  : 2\n"


def test_fmt_rewrites_files_in_place_and_reports_them(spec_file):
    ugly, pretty = spec_file(UGLY, "ugly.cnn"), spec_file(PRETTY, "pretty.cnn")
    result = fmt(str(ugly), str(pretty))
    assert result.exit_code == 0, result.output
    assert ugly.read_text() == PRETTY and pretty.read_text() == PRETTY
    assert result.stderr.splitlines() == [f"reformatted {ugly}", "1 file reformatted, 1 unchanged"]
    assert result.stdout == ""


def test_fmt_check_lists_what_would_change_and_writes_nothing(spec_file):
    ugly, pretty = spec_file(UGLY, "ugly.cnn"), spec_file(PRETTY, "pretty.cnn")
    result = fmt("--check", str(ugly), str(pretty))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"would reformat {ugly}", "1 file would be reformatted, 1 unchanged"]
    assert ugly.read_text() == UGLY
    assert fmt("--check", str(pretty)).exit_code == 0


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(spec_file):
    ugly = spec_file(UGLY, "ugly.cnn")
    result = fmt("--diff", str(ugly))
    assert result.exit_code == 0 and ugly.read_text() == UGLY
    assert result.stdout.splitlines() == [f"--- {ugly}\t(original)", f"+++ {ugly}\t(formatted)", "@@ -1,2 +1,2 @@",
                                          " input 4", "-fc 2->relu   : 2", "+fc 2 -> relu  : 2"]
    assert fmt("--diff", "--check", str(ugly)).exit_code == 1


def test_fmt_reads_stdin_and_writes_stdout():
    result = fmt("-", input=UGLY)
    assert result.exit_code == 0 and result.stdout == PRETTY
    assert fmt("--check", "-", input=UGLY).exit_code == 1
    too_big = fmt("-", input="#" * (2 ** 17 + 1))
    assert too_big.exit_code == 1 and "more than specc's limit" in too_big.stderr


def test_fmt_leaves_a_file_that_does_not_parse_untouched(spec_file):
    broken, ugly = spec_file("input 4\nfc 2 ->\n", "broken.cnn"), spec_file(UGLY, "ugly.cnn")
    result = fmt(str(broken), str(ugly))
    assert result.exit_code == 1
    assert broken.read_text() == "input 4\nfc 2 ->\n" and ugly.read_text() == PRETTY  # the others are done
    assert result.stderr.startswith(f"{broken}:2:8: error: unexpected end of file")
    assert result.stderr.splitlines()[-1] == "1 file reformatted, 0 unchanged, 1 failed"


def test_fmt_takes_directories_and_refuses_what_is_not_a_spec(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.cnn").write_text(UGLY)
    (tmp_path / "notes.txt").write_text("secret\n")
    result = fmt(str(tmp_path))
    assert result.exit_code == 0 and (tmp_path / "sub" / "a.cnn").read_text() == PRETTY
    assert (tmp_path / "notes.txt").read_text() == "secret\n"
    result = fmt(str(tmp_path / "notes.txt"))
    assert result.exit_code == 1 and "it is not a .cnn file" in result.stderr and "secret" not in result.output
    (tmp_path / "empty").mkdir()
    assert "no .cnn files" in fmt(str(tmp_path / "empty")).stderr


def test_fmt_keeps_a_files_mode_and_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real.cnn"
    target.write_text(UGLY)
    target.chmod(0o640)
    link = tmp_path / "link.cnn"
    link.symlink_to(target)
    assert fmt(str(link)).exit_code == 0
    assert link.is_symlink() and target.read_text() == PRETTY and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".specc-fmt")] == []


def test_the_shipped_specs_pass_fmt_check_without_torch():
    """What CI runs (`specc fmt --check specs/`), in a fresh interpreter that must not import torch."""
    code = ("import sys, runpy; sys.argv = ['specc', 'fmt', '--check', sys.argv[1]]\n"
            "try:\n    runpy.run_module('specc', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print([m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')])")
    out = subprocess.run([sys.executable, "-c", code, str(SPECS)], capture_output=True, text=True, cwd=SPECS.parent)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[-1] == f"0 files would be reformatted, {len(SHIPPED)} unchanged"
    assert out.stdout.strip() == "[]"


def test_the_layout_stays_near_the_inputs_size():
    """Far-right brackets indent 4, over-long lines do not push the others, and output beyond
    specc's size limit (which no reader would take back) is refused, not built."""
    far = "input 3x8x8\n" + "relu -> " * 10 + "add(relu\n| identity)"
    assert format_source(far).splitlines()[-1] == "  | identity)"
    long = "input 4\nfc 2" + " -> relu" * 20 + "  # long\n-> fc 2  # short\n"
    assert format_source(long).splitlines()[-1] == "-> fc 2  # short"
    deep = "input 4\n" + "(\n" * 40 + "relu\n" + "-> relu\n" * 1000 + ")" * 40 + "\n"
    with pytest.raises(specc.SpecError, match="formatted, the spec would be more than specc's limit"):
        format_source(deep, "deep.cnn")


def test_the_example_in_docs_editors_md_is_what_fmt_does():
    guide = (SPECS.parent / "docs" / "editors.md").read_text()
    before = re.search(r"This spec\n\n```text\n(.*?)```", guide, re.S).group(1)
    after = re.search(r"is formatted as\n\n```cnn\n(.*?)```", guide, re.S).group(1)
    assert format_source(before) == after
    assert analysis(after, "<string>") == analysis(before, "<string>")


def test_fmt_reports_a_file_it_cannot_write(spec_file, monkeypatch):
    from specc.tools import fmt as formatter

    def refuse(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(formatter, "_write", refuse)
    ugly = spec_file(UGLY, "ugly.cnn")
    result = fmt(str(ugly))
    assert result.exit_code == 1 and f"{ugly}: error: cannot write it: Permission denied" in result.stderr
    assert ugly.read_text() == UGLY
