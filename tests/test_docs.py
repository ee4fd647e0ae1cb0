"""The examples in docs/language.md are true: `cnn` blocks check, `cnn-error` blocks fail as shown."""
import re
from pathlib import Path

import pytest

import specc

DOC = Path(__file__).resolve().parents[1] / "docs" / "language.md"
FENCE = re.compile(r"```([\w-]*)\n(.*?)```", re.S)
BLOCKS = FENCE.findall(DOC.read_text())


def blocks(tag):
    return [body for kind, body in BLOCKS if kind == tag]


@pytest.mark.parametrize("text", blocks("cnn"))
def test_examples_check(text):
    assert specc.loads(text, name="doc").param_count > 0


def test_error_example_renders_as_documented():
    (source,) = blocks("cnn-error")
    shown = next(body for kind, body in BLOCKS if kind == "text" and body.startswith("alexnet227.cnn:"))
    with pytest.raises(specc.SpecError) as err:
        specc.loads(source, name="alexnet227", path="alexnet227.cnn")
    assert str(err.value).strip() == shown.strip()


def test_every_layer_kind_is_documented():
    from specc.lang.registry import REGISTRY
    doc = DOC.read_text()
    missing = [name for name in REGISTRY if f"`{name}" not in doc]
    assert not missing


def test_every_merge_and_function_is_documented():
    from specc.lang.evaluate import FUNCTIONS
    from specc.lang.registry import MERGES
    doc = DOC.read_text()
    assert not [name for name in MERGES if f"`{name}(" not in doc]
    assert not [name for name in FUNCTIONS if f"`{name}(" not in doc]
