"""`import "lib/x.cnn"`: shared blocks and params, and located errors across files."""
from pathlib import Path

import pytest

import specc

LIB = """\
# a block library
default conv bias=false
param width = 8

block unit(c) {
    conv 3x3 c p1 -> bn -> relu
}
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_imported_blocks_and_params_are_in_scope(tmp_path):
    write(tmp_path, {"lib/units.cnn": LIB,
                     "net.cnn": 'import "lib/units.cnn"\ninput 3x8x8\nunit(width) -> conv 1x1 4 -> gap -> flatten\n'})
    net = specc.load(tmp_path / "net.cnn")
    # The library's `default conv bias=false` holds for its own block, not for the importing file.
    assert [row.params for row in net.layers if row.kind == "conv"] == [3 * 3 * 3 * 8, 8 * 4 + 4]
    assert specc.load(tmp_path / "net.cnn", width=4).output_shape == (4,)


def test_nested_and_diamond_imports(tmp_path):
    write(tmp_path, {"lib/units.cnn": LIB,
                     "lib/a.cnn": 'import "units.cnn"\nblock two(c) { unit(c) -> unit(c) }\n',
                     "lib/b.cnn": 'import "units.cnn"\nblock three(c) { unit(c) * 3 }\n',
                     "net.cnn": 'import "lib/a.cnn"\nimport "lib/b.cnn"\ninput 3x8x8\ntwo(4) -> three(4)\n'})
    assert len(specc.load(tmp_path / "net.cnn").layers) == 15


def test_missing_file_is_located(tmp_path):
    write(tmp_path, {"net.cnn": 'input 3x8x8\nimport "lib/nope.cnn"\nrelu\n'})
    with pytest.raises(specc.SpecError) as err:
        specc.load(tmp_path / "net.cnn")
    assert (err.value.line, err.value.column) == (2, 1) and "cannot import 'lib/nope.cnn'" in err.value.message
    assert err.value.hint == "import paths are relative to the importing file"


def test_cycles_are_located(tmp_path):
    write(tmp_path, {"a.cnn": 'import "b.cnn"\nblock x { relu }\n', "b.cnn": 'import "a.cnn"\nblock y { relu }\n',
                     "net.cnn": 'import "a.cnn"\ninput 4\nx\n'})
    with pytest.raises(specc.SpecError) as err:
        specc.load(tmp_path / "net.cnn")
    assert err.value.message == "import cycle: a.cnn -> b.cnn -> a.cnn"
    assert err.value.path.endswith("b.cnn") and err.value.line == 1


def test_name_clashes_are_located(tmp_path):
    write(tmp_path, {"lib/units.cnn": LIB, "net.cnn": 'import "lib/units.cnn"\ninput 3x8x8\n'
                     'block unit(c) { relu }\nunit(1)\n'})
    with pytest.raises(specc.SpecError) as err:
        specc.load(tmp_path / "net.cnn")
    assert err.value.line == 1 and "block unit from 'lib/units.cnn' clashes with the block unit of" in err.value.message


def test_mistakes_inside_an_imported_file_point_there(tmp_path):
    write(tmp_path, {"lib/bad.cnn": "block unit(c) {\n    conv 3x3 c p1 -> fc 10\n}\n",
                     "net.cnn": 'import "lib/bad.cnn"\ninput 3x8x8\nunit(4)\n'})
    with pytest.raises(specc.SpecError) as err:
        specc.load(tmp_path / "net.cnn")
    rendered = str(err.value)
    assert err.value.path.endswith("bad.cnn") and err.value.line == 2
    assert "    conv 3x3 c p1 -> fc 10" in rendered and "flatten" in rendered


def test_syntax_errors_in_an_imported_file_point_there(tmp_path):
    write(tmp_path, {"lib/bad.cnn": "block unit(c) { conv 3x3 c p1 -> }\n", "net.cnn": 'import "lib/bad.cnn"\ninput 4\nrelu\n'})
    with pytest.raises(specc.SpecError) as err:
        specc.load(tmp_path / "net.cnn")
    assert err.value.path.endswith("bad.cnn") and err.value.line == 1
