"""The examples in docs/language.md are true: `cnn` blocks check, `cnn-error` blocks fail as shown."""
import re
from pathlib import Path

import pytest

import specc
from conftest import torchvision_or_skip

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


def test_porting_guide_example_runs_and_matches(capsys):
    """docs/porting.md's check against torchvision, run as written."""
    torchvision_or_skip()
    guide = (DOC.parent / "porting.md").read_text()
    (code,) = [body for kind, body in FENCE.findall(guide) if kind == "python" and "build(weights=" in body]
    namespace: dict = {}
    exec(compile(code, "porting.md", "exec"), namespace)
    assert (namespace["model"].eval()(namespace["x"]) - namespace["reference"].eval()(namespace["x"])).abs().max() <= 1e-5
    assert "tensor(" in capsys.readouterr().out
    assert "5,483,032 params  216.59M MACs" in guide
    assert specc.load(DOC.parents[1] / "specs" / "torchvision" / "mobilenet_v3_large.cnn").param_count == 5_483_032
