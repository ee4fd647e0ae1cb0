"""specc.testing (assert_matches_torch, specs(), input_sizes()) and the `pytest --specc DIR` plugin.

PyTorch is the oracle: a real forward of the built module, its parameters and FlopCounterMode's
FLOPs. The checks must also fail: each is run against a registry entry made wrong on purpose.
"""
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from conftest import ROOT, SPECS
from specc.lang.registry import REGISTRY, Cost
from specc.testing import assert_matches_torch, at_input, input_sizes, specs

pytest_plugins = ["pytester"]

# --- assert_matches_torch on shipped specs ------------------------------------------------
@pytest.mark.parametrize("path, shape, device", [
    ("lenet_bn.cnn", None, "cpu"),
    ("densenet.cnn", (1, 40, 40), "cpu"),                            # concat
    # Larger specs' weights would take seconds to initialise: their forward runs on the meta
    # device, whose kernels apply the same shape rules without computing values.
    ("googlenet.cnn", None, "meta"),
    ("torchvision/shufflenet_v2_x0_5.cnn", (3, 64, 64), "meta"),     # split, shuffle, imports
    ("torchvision/mobilenet_v3_small.cnn", (3, 64, 48), "meta"),     # mul (squeeze-excitation), hardswish
    ("torchvision/convnext_tiny.cnn", (3, 32, 32), "meta"),          # ln, scale, droppath
], ids=lambda v: v if isinstance(v, str) and v.endswith(".cnn") else "")
def test_shipped_specs_match_torch_layer_by_layer(path, shape, device):
    net = specc.load(SPECS / path)
    checked = assert_matches_torch(net, shape, device=device)
    assert checked.input_shape == (shape or net.input_shape)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.data())
def test_random_specs_match_torch_at_their_input_and_at_drawn_sizes(text, data):
    net = specc.loads(text)
    assert_matches_torch(net)
    shape = data.draw(input_sizes(net, max_side=20), label="input shape")
    assert_matches_torch(net, shape)


def test_hardtanh_bounds_that_pytorch_refuses_are_a_spec_error():
    # Found by the random specs above: nn.Hardtanh asserts min < max when it is built.
    with pytest.raises(specc.SpecError, match="hardtanh needs min < max"):
        specc.loads("input 3x4x4\nconv 1x1 2 -> hardtanh min=2 max=1")


# --- the checks fail when specc is wrong ---------------------------------------------------
def wrong(monkeypatch, name: str, **fields) -> None:
    """Replace registry entry `name` by one with some rule changed, for the length of a test."""
    monkeypatch.setitem(REGISTRY, name, REGISTRY[name]._replace(**fields))


def test_a_wrong_parameter_count_names_the_layer(monkeypatch):
    conv_cost = REGISTRY["conv"].cost
    wrong(monkeypatch, "conv", cost=lambda a, s, out: conv_cost(a, s, out)._replace(
        params=conv_cost(a, s, out).params + 1))
    net = specc.loads("input 3x8x8\nconv 3x3 4 p1\n-> relu -> conv 1x1 2 -> flatten -> fc 3")
    with pytest.raises(AssertionError) as err:
        assert_matches_torch(net)
    lines = str(err.value).splitlines()
    assert lines[0] == "specc and PyTorch disagree on <string> at input 3x8x8:"
    assert lines[1] == "  layer 'conv1' (<string>:2: conv 3x3 4 p1): parameters: specc says 113, PyTorch gives 112"
    assert lines[2] == "  layer 'conv2' (<string>:3: conv 1x1 2): parameters: specc says 11, PyTorch gives 10"


def test_wrong_macs_name_the_layer(monkeypatch):
    fc_cost = REGISTRY["fc"].cost
    wrong(monkeypatch, "fc", cost=lambda a, s, out: fc_cost(a, s, out)._replace(macs=2 * fc_cost(a, s, out).macs))
    with pytest.raises(AssertionError) as err:
        assert_matches_torch(specc.loads("input 5\nfc 4 -> relu\n-> fc 2"))
    shown = str(err.value)
    assert "  layer 'fc1' (<string>:2: fc 4): MACs per sample: specc says 40, PyTorch gives 20" in shown
    assert "  layer 'fc2' (<string>:3: fc 2): MACs per sample: specc says 16, PyTorch gives 8" in shown
    assert "  layer '(total)' (<string>: the network): MACs per sample: specc says 56, PyTorch gives 28" in shown


def test_a_wrong_buffer_count_names_the_layer(monkeypatch):
    wrong(monkeypatch, "bn", cost=lambda a, s, out: Cost(params=2 * s[0], buffers=2 * s[0]))
    with pytest.raises(AssertionError, match=r"layer 'bn1' \(<string>:2: bn\): buffers: specc says 8, "
                                             r"PyTorch gives 9"):
        assert_matches_torch(specc.loads("input 4x3x3\nbn"))


def test_a_wrong_output_shape_names_the_layer(monkeypatch):
    wrong(monkeypatch, "gap", shape=lambda a, s: (s[0], 2, 2))
    with pytest.raises(AssertionError) as err:
        assert_matches_torch(specc.loads("input 3x8x8\nconv 3x3 4\n-> gap"))
    shown = str(err.value)
    assert "  layer 'gap1' (<string>:3: gap): output shape: specc says 4x2x2, PyTorch gives 4x1x1" in shown
    assert "  layer '(output)' (<string>: the network): output shape: specc says 4x2x2, PyTorch gives 4x1x1" in shown


def test_a_size_specc_wrongly_accepts_names_the_layer_pytorch_fails_in(monkeypatch):
    wrong(monkeypatch, "conv", shape=lambda a, s: (a.channels, 1, 1))  # as if every kernel fitted
    with pytest.raises(AssertionError, match=r"specc accepts it, but PyTorch's forward fails in layer 'conv2' "
                                             r"\(<string>:3\): RuntimeError"):
        assert_matches_torch(specc.loads("input 1x4x4\nconv 3x3 2 -> relu\n-> conv 3x3 2"))


def test_a_merge_counts_its_branches(monkeypatch):
    """A merge's MACs row is checked against FlopCounterMode's count for the whole merge module."""
    text = "input 4x6x6\nadd(conv 3x3 4 p1 -> relu | conv 1x1 4)\n-> flatten -> fc 2"
    assert_matches_torch(specc.loads(text))
    wrong(monkeypatch, "relu", cost=lambda a, s, out: Cost(macs=5))  # a cost PyTorch does not see
    with pytest.raises(AssertionError) as err:
        assert_matches_torch(specc.loads(text))
    assert "layer 'add1.branch1.relu1' (<string>:2: relu): MACs per sample: specc says 5, PyTorch gives 0" \
        in str(err.value)
    assert "layer 'add1' (<string>:2: add): MACs per sample: specc says 5,765, PyTorch gives 5,760" in str(err.value)


# --- at_input --------------------------------------------------------------------------------
def test_at_input_leaves_the_network_unchanged():
    net = specc.load(SPECS / "lenet.cnn")
    rows = list(net.layers)
    other = at_input(net, (1, 40, 36))
    assert other.input_shape == (1, 40, 36) and other.layers != rows and not other.annotations_checked
    assert net.layers == rows and net.input_shape == (1, 28, 28)
    assert tuple(net.build()(torch.zeros(1, 1, 28, 28)).shape) == (1, 10)  # built for its own input still
    assert at_input(net, None) is net and at_input(net, (1, 28, 28)) is net


def test_at_input_refusals_are_located_spec_errors():
    net = specc.load(SPECS / "lenet.cnn")
    with pytest.raises(specc.SpecError) as err:
        assert_matches_torch(net, (1, 8, 8))
    assert str(err.value).startswith(f"{SPECS / 'lenet.cnn'}:16:9: error: conv kernel 5x5 is larger than")
    for bad in [(1, 0, 8), (8, 8), "1x8x8", (1.5, 8, 8)]:
        with pytest.raises(specc.SpecError):
            at_input(net, bad)


# --- input_sizes -------------------------------------------------------------------------------
DRAWN: list = []
NETS = {name: specc.load(SPECS / name) for name in ["lenet.cnn", "alexnet.cnn", "googlenet.cnn"]}
SIZES = {name: input_sizes(net, max_side=128) for name, net in NETS.items()}


@settings(max_examples=40, deadline=None, database=None)
@given(st.sampled_from(sorted(NETS)), st.data())
def test_input_sizes_are_accepted_by_specc(name, data):
    net = NETS[name]
    shape = data.draw(SIZES[name])
    specc.loads(net.source, path=net.path, input_shape=shape)  # raises if specc refuses it
    assert len(shape) == 3 and max(shape[1:]) <= max(128, *net.input_shape[1:])
    assert shape[0] <= max(8, net.input_shape[0])
    DRAWN.append(shape)


def test_input_sizes_vary():
    """Runs after the test above (file order): it drew sizes other than the declared ones."""
    declared = {net.input_shape for net in NETS.values()}
    assert len(set(DRAWN) - declared) >= 10


@settings(max_examples=10, deadline=None, database=None)
@given(input_sizes(specc.loads("input 12\nfc 3 in=12")))
def test_input_sizes_of_a_flat_spec(shape):
    assert shape == (12,)  # in=12 fixes the features: nothing else is accepted


def test_input_sizes_takes_a_network():
    with pytest.raises(TypeError, match="specc.Network"):
        input_sizes("specs/lenet.cnn")


# --- the pytest plugin ---------------------------------------------------------------------
GOOD = "input 1x12x12\nconv 3x3 4 p1 -> bn -> relu -> maxpool 2\n-> flatten -> fc 3\n"
LIBRARY = "param width = 4\nblock unit(c) { conv 3x3 c p1 -> bn -> relu }\n"
USER = 'import "lib/blocks.cnn"\ninput 2x10x10\nunit(width) -> concat(identity | unit(2)) -> gap -> flatten -> fc 2\n'
BROKEN = "input 1x8x8\nconv 3x3 4 -> rleu\n"


@pytest.fixture
def spec_dir(pytester, monkeypatch):
    """A project with specs/ (a spec, a library, a spec importing it, a broken spec) and no plugin autoload:
    the plugin is loaded with -p, as it would be by its entry point once installed."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    (pytester.path / "specs" / "lib").mkdir(parents=True)
    for name, text in [("good.cnn", GOOD), ("lib/blocks.cnn", LIBRARY), ("user.cnn", USER), ("broken.cnn", BROKEN)]:
        (pytester.path / "specs" / name).write_text(text)
    return pytester


def test_the_plugin_checks_every_spec_and_shows_diagnostics(spec_dir, monkeypatch):
    checked = []
    def recording(net, shape=None, **options):
        checked.append((net.path, shape))
        return assert_matches_torch(net, shape, **options)

    monkeypatch.setattr("specc.testing.assert_matches_torch", recording)
    result = spec_dir.runpytest("-p", "specc.testing.plugin", "--specc", "specs", "-v")
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines(["specs/broken.cnn::declared FAILED*", "specs/good.cnn::declared PASSED*",
                                 "specs/good.cnn::sizes PASSED*", "specs/lib/blocks.cnn::library PASSED*",
                                 "specs/user.cnn::sizes PASSED*"])
    output = result.stdout.str()
    assert "specs/broken.cnn:2:15: error: unknown layer 'rleu'\n    2 | conv 3x3 4 -> rleu" in output
    assert "Traceback" not in output and "specc/lang" not in output
    drawn = {shape for path, shape in checked if path.endswith("user.cnn") and shape is not None}
    assert len(drawn) >= 2 and all(specc.load(spec_dir.path / "specs/user.cnn", input_shape=s) for s in drawn)


def test_the_plugin_fails_a_spec_that_pytorch_contradicts(spec_dir, monkeypatch):
    fc_cost = REGISTRY["fc"].cost
    wrong(monkeypatch, "fc", cost=lambda a, s, out: fc_cost(a, s, out)._replace(params=fc_cost(a, s, out).params - 1))
    result = spec_dir.runpytest("-p", "specc.testing.plugin", "--specc", "specs", "--specc-examples", "1")
    result.assert_outcomes(passed=1, failed=6)  # only the library, which builds nothing, passes
    result.stdout.fnmatch_lines(["*specc and PyTorch disagree on specs/good.cnn at input 1x12x12:",
                                 "  layer 'fc1' (specs/good.cnn:3: fc 3): parameters: specc says 434, "
                                 "PyTorch gives 435"])


def test_the_plugin_does_nothing_without_the_option(spec_dir):
    result = spec_dir.runpytest("-p", "specc.testing.plugin")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result = spec_dir.runpytest("-p", "specc.testing.plugin", "--specc", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--specc nowhere: not a directory*"])
    result = spec_dir.runpytest("-p", "specc.testing.plugin", "--specc", "specs", "--specc-examples", "0",
                                "-k", "good")
    result.assert_outcomes(passed=1)  # declared only


def test_the_plugin_is_cheap_to_import():
    code = ("import sys, specc.testing.plugin, specc.testing\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'hypothesis', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
