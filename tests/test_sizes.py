"""`specc check --sizes`: the sweep accepts exactly the sizes shape inference accepts, and PyTorch agrees."""
import json

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

import specc
from conftest import ROOT, SPECS, cli_imports
from specc.cli import main
from specc.testing import specs
from specc.tools.sizes import MAX_SIDE_LIMIT, ranges, ranges_text, size_report, sweep
from test_errors import ALEXNET_227

# AlexNet at 227 px with the seeds' hand-written nn.Linear(6400, 4096), `fc 4096 in=6400` at line 7:
# which resolutions keep it valid?
ALEXNET_6400 = ALEXNET_227

MERGES = """input 4x20x20
conv 3x3 8 p1 -> concat(maxpool 3 s2 | conv 3x3 8 s2 p1)
-> split(identity | conv 3x3 8 p1 s1) -> shuffle 2
-> add(conv 3x3 16 s2 | avgpool 3 s2 ceil -> conv 1x1 16)
-> mul(identity | gap -> conv 1x1 16 -> sigmoid)
-> flatten -> fc 5"""

FLAT = "input 30\nfc 8 -> bn in=8 -> relu -> fc 3"


def varied(axis: str, base: tuple, v: int) -> tuple:
    """`base` with `axis` set to v."""
    if axis == "F":
        return (v,)
    c, h, w = base
    return {"C": (v, h, w), "H": (c, v, w), "W": (c, h, v), "HxW": (c, v, v)}[axis]


def accepts(text: str, shape: tuple) -> bool:
    try:
        specc.loads(text, input_shape=shape)
    except specc.SpecError:
        return False
    return True


def accepted_by_inference(text: str, axis: str, base: tuple, top: int) -> list[int]:
    """The oracle: specc.loads at each size, one at a time."""
    return [v for v in range(1, top + 1) if accepts(text, varied(axis, base, v))]


def _graph_and_base(text: str):
    from specc.tools.sizes import _expanded
    return _expanded(text, "<string>", None, {})


def _check_against_inference(text: str, top: int) -> dict:
    graph, base = _graph_and_base(text)
    axes, _ = sweep(graph, base, top)
    for axis in axes:
        assert axis.accepted == accepted_by_inference(text, axis.axis, base, top), (axis.axis, text)
        # Every refused size is refused, and the first of each group with the message specc check prints.
        for refusal in axis.refused:
            with pytest.raises(specc.SpecError) as err:
                specc.loads(text, input_shape=varied(axis.axis, base, refusal.values[0]))
            assert err.value.message == refusal.error.message
            assert err.value.line == refusal.error.line
    return {a.axis: a.accepted for a in axes}


@pytest.mark.parametrize("text", [ALEXNET_6400, MERGES, FLAT, (SPECS / "lenet.cnn").read_text()],
                         ids=["alexnet-6400", "merges", "flat", "lenet"])
def test_the_sweep_accepts_exactly_what_inference_accepts(text):
    _check_against_inference(text, 40)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(max_elements=4))
def test_the_sweep_matches_inference_on_random_specs(text):
    _check_against_inference(text, 12)


def test_which_resolutions_keep_alexnets_fc_6400_valid():
    graph, base = _graph_and_base(ALEXNET_6400)
    found = {a.axis: a.accepted for a in sweep(graph, base, 1024)[0]}
    assert ranges_text(found["HxW"]) == "193..224"
    assert found["H"] == found["W"] == found["C"] == []  # with one side at 227 no height fits 6400 = 256x5x5
    for side in (192, 193, 224, 225):  # specc.loads at that input agrees at the edges
        assert accepts(ALEXNET_6400, (1, side, side)) == (side in (193, 224))


def alexnet_6400_module():
    """The hand-written PyTorch module the spec describes: the oracle for which sizes really run."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 96, 11, 4, 1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2), nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1),
        nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(6400, 10))  # 6400 inputs as in the spec; 10 outputs instead of 4096 keep it small


@pytest.fixture(scope="module")
def alexnet_6400():
    torch.manual_seed(0)
    return alexnet_6400_module().eval()


@pytest.mark.parametrize("side, runs", [(192, False), (193, True), (224, True), (225, False), (227, False)])
def test_pytorch_agrees_at_the_edges_of_the_range(alexnet_6400, side, runs):
    try:
        with torch.no_grad():
            alexnet_6400(torch.zeros(1, 1, side, side))
        ran = True
    except RuntimeError:
        ran = False
    assert ran == runs


def test_the_work_is_far_below_sizes_times_layers():
    """Candidates collapse at every stride: resnet18 over 1..1024 on four axes evaluates a small fraction
    of the 4 x 1024 x 71 rules a size-by-size search would."""
    net = specc.load(SPECS / "resnet18.cnn")
    axes, rules = sweep(net.graph, net.input_shape, 1024)
    assert [a.accepted == list(range(1, 1025)) for a in axes] == [True] * 4
    assert rules < 0.1 * 4 * 1024 * len(net.layers)


def test_the_sweep_leaves_the_network_as_it_was():
    net = specc.load(SPECS / "lenet.cnn")
    before = [(row.path, row.output_shape) for row in net.layers]
    sweep(net.graph, net.input_shape, 64)
    assert [(row.path, row.output_shape) for row in net.layers] == before
    assert tuple(net.build()(torch.zeros(1, 1, 28, 28)).shape) == (1, 10)


@pytest.mark.parametrize("values, runs, text", [
    ([], [], "none"),
    ([5], [(5, 5, 1)], "5"),
    ([1, 2, 3, 8, 16, 24], [(1, 3, 1), (8, 24, 8)], "1..3, 8..24 step 8"),
    ([4, 9], [(4, 4, 1), (9, 9, 1)], "4, 9"),
    ([32, 64, 96, 128], [(32, 128, 32)], "32..128 step 32"),
    ([63, 64, 65, 66, 95, 96, 97, 98], [(63, 66, 1), (95, 98, 1)], "63..66, 95..98"),
])
def test_sizes_are_shown_as_runs(values, runs, text):
    assert ranges(values) == runs
    assert ranges_text(values) == text


# --- the command ------------------------------------------------------------------------
def run(*args):
    return CliRunner().invoke(main, list(args))


def test_check_sizes_answers_the_alexnet_question(spec_file):
    path = spec_file(ALEXNET_6400, "alexnet227.cnn")
    result = run("check", "--sizes", "--max-side", "512", str(path))
    assert result.exit_code == 1  # the spec fails at its own input; the sizes are still reported
    assert f"{path}:7:4: error: fc expects 6400 input features (in=6400) but gets 9216 = 256x6x6" in result.output
    lines = result.output.splitlines()
    assert f"{path}: refused at 1x227x227: line 7: fc expects 6400 input features (in=6400) but gets 9216 " \
           "= 256x6x6" in lines
    assert "searched over 1..512" in result.output
    assert "  HxW  193..224   [C=1 (H = W)]" in lines
    assert "         65..192, 225..512 refused by line 7:4: fc expects 6400 input features (in=6400) but gets 256 " \
           "= 256x1x1 (at HxW = 65)" in lines


def test_check_sizes_json(spec_file):
    path = spec_file(ALEXNET_6400, "alexnet227.cnn")
    result = run("check", "--sizes", "--format", "json", "--max-side", "300", str(path), str(SPECS / "lenet.cnn"))
    assert result.exit_code == 1
    alexnet, lenet = json.loads(result.output[result.output.index("["):])
    assert alexnet["ok"] is False and "in=6400" in alexnet["error"]
    assert alexnet["axes"]["HxW"]["accepted"] == [{"first": 193, "last": 224, "step": 1}]
    assert alexnet["searched"] == {"first": 1, "last": 300, "annotations_asserted": False}
    assert lenet["ok"] is True and lenet["input_shape"] == [1, 28, 28]
    assert lenet["axes"]["H"]["accepted"] == [{"first": 12, "last": 300, "step": 1}]
    assert [r["line"] for r in lenet["axes"]["H"]["refused"]] == [15, 16, 16]


def test_check_sizes_exit_status_and_errors(spec_file):
    assert run("check", "--sizes", "--max-side", "64", str(SPECS / "lenet.cnn")).exit_code == 0
    broken = run("check", "--sizes", str(spec_file("input 1x8x8\nrleu", "bad.cnn")))
    assert broken.exit_code == 1 and "unknown layer 'rleu'" in broken.output and "Traceback" not in broken.output
    assert run("check", "--sizes", "--max-side", "0", str(SPECS / "lenet.cnn")).exit_code == 2
    assert run("check", "--sizes", "--max-side", str(MAX_SIDE_LIMIT + 1), str(SPECS / "lenet.cnn")).exit_code == 2
    no_sizes = run("check", "--format", "json", str(SPECS / "lenet.cnn"))
    assert no_sizes.exit_code == 2 and "--format json goes with --sizes" in no_sizes.output
    with pytest.raises(specc.SpecError, match="1..16384"):
        size_report(SPECS / "lenet.cnn", max_side=MAX_SIDE_LIMIT + 1)


def test_check_sizes_honours_input_and_set(spec_file):
    path = spec_file("input 3x32x32\nparam k = 5\nconv kernel=k 8 -> flatten -> fc 2 in=(8 * 28 * 28)", "k.cnn")
    report = size_report(path, params={"k": 3}, max_side=64)
    assert report.declared_error is not None  # with k = 3 the flatten gives 8x30x30
    assert {a.axis: ranges_text(a.accepted) for a in report.axes}["HxW"] == "30"
    report = size_report(path, input_shape=(3, 30, 30), params={"k": 3}, max_side=64)
    assert report.declared_error is None and report.input_shape == (3, 30, 30)


def test_check_sizes_imports_no_torch():
    printed, modules = cli_imports("check", "--sizes", SPECS / "alexnet.cnn", SPECS / "googlenet.cnn")
    assert not modules & {"torch", "numpy", "hypothesis"}
    assert "HxW  65..1024" in printed


@pytest.mark.parametrize("name, smallest", [("inception_v3", 75), ("squeezenet1_0", 21), ("densenet121", 29)])
def test_pytorch_runs_the_built_module_from_the_smallest_accepted_square_size(name, smallest):
    """torchvision's models end in adaptive pooling, so the built module runs at any size its layers fit:
    PyTorch (on the meta device: shapes only) agrees with the sweep on the smallest one."""
    net = specc.load(SPECS / "torchvision" / f"{name}.cnn")
    square = {a.axis: a for a in sweep(net.graph, net.input_shape, 256)[0]}["HxW"]
    assert square.accepted == list(range(smallest, 257))
    module = net.build(device="meta").eval()
    module(torch.empty(1, 3, smallest, smallest, device="meta"))
    with pytest.raises(RuntimeError):
        module(torch.empty(1, 3, smallest - 1, smallest - 1, device="meta"))
    if name == "inception_v3":  # a refusal inside an imported block names the library's line
        assert square.refused[0].where.endswith("lib/inception.cnn:12:10")


def test_the_documented_output_is_what_the_command_prints(tmp_path, monkeypatch):
    """docs/testing.md's `check --sizes` example, run on language.md's AlexNet (lines elided with ... aside)."""
    import re
    docs = ROOT / "docs"
    source = re.search(r"```cnn-error\n(.*?)```", (docs / "language.md").read_text(), re.S).group(1)
    shown = re.search(r"```text\n\$ specc check --sizes --max-side 512 alexnet227.cnn\n(.*?)```",
                      (docs / "testing.md").read_text(), re.S).group(1)
    (tmp_path / "alexnet227.cnn").write_text(source)
    monkeypatch.chdir(tmp_path)
    printed = CliRunner().invoke(main, ["check", "--sizes", "--max-side", "512", "alexnet227.cnn"]).stdout
    expected = [line for line in shown.splitlines() if line.strip() != "..." and not line.startswith("  (")]
    assert [line for line in printed.splitlines() if line in expected] == expected
