"""specc export (issue 10): plain PyTorch code, ONNX and the JSON IR, with PyTorch and onnxruntime as oracles.

The generated PyTorch files are run in a fresh interpreter in which specc is not
importable (site-packages on sys.path without their .pth files, so specc's
editable install is not there), all of them in one process; every tensor of
both sides gets the same seeded values (BatchNorm statistics, affines and layer
scales included: at their initial values they would hide mistakes), and the
outputs and state_dict keys and shapes must agree.
"""
import ast
import importlib.util
import json
import math
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import jsonschema
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from safetensors.torch import load_file

import specc
from conftest import ROOT, SPECS, cli_imports
from specc.cli import main
from specc.runtime import export
from specc.tools.ir import ir_dict, schema

ALL_SPECS = sorted(SPECS.glob("*.cnn")) + sorted(SPECS.glob("torchvision/*.cnn"))
META_ONLY = {"regnet_y_128gf", "convnext_large"}  # 645M and 198M parameters: keys and shapes only
# What the generated files may import: the file imports nothing else (safetensors only inside pretrained()).
ALLOWED_IMPORTS = {"__future__", "collections", "pathlib", "torch", "safetensors.torch"}

# Shared by this process and the child: deterministic, cheap and non-degenerate values for every tensor.
FILL = '''
def fill(model):
    import math, torch
    base = torch.rand(4099, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for index, (name, t) in enumerate(model.state_dict().items()):
            if not t.is_floating_point():
                t.zero_()  # num_batches_tracked
                continue
            pattern = torch.roll(base, index * 7919 % base.numel())  # no two tensors alike
            flat, size = t.view(-1), base.numel()
            whole = flat.numel() // size
            if whole:
                flat[:whole * size].view(whole, size).copy_(pattern.expand(whole, size))
            flat[whole * size:] = pattern[:flat.numel() - whole * size]
            if name.endswith("running_var") or (t.dim() == 1 and name.endswith("weight")):
                t.add_(0.5)  # [0.5, 1.5): variances, norm and PReLU scales
            elif name.endswith("running_mean") or t.dim() == 1:
                t.sub_(0.5).mul_(0.2)  # biases and means near 0
            else:
                t.sub_(0.5).mul_(2 * math.sqrt(3.0 / max(1, t[0].numel())))  # variance 1 / fan-in
    return model


def sample(shape):
    import torch
    return torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
'''
namespace: dict = {}
exec(FILL, namespace)
fill, sample = namespace["fill"], namespace["sample"]

CHILD = '''
import importlib.util, json, sys
sys.path.append(sys.argv[1])  # site-packages without its .pth files: specc's editable install is not on the path


class NoSpecc:  # an installed specc (CI installs it beside torch) is made unimportable, as on a machine without it
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "specc":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoSpecc())
try:
    import specc
except ImportError:
    pass
else:
    raise SystemExit("specc is importable in the child: the test would prove nothing")
import torch
from safetensors.torch import save_file
torch.set_num_threads(1)
exec(open(sys.argv[2]).read())
results = {}
for entry in json.load(open(sys.argv[3])):
    spec = importlib.util.spec_from_file_location(entry["module"], entry["file"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.device("meta"):
        model = getattr(module, entry["class"])()
    results[entry["name"]] = {k: list(v.shape) for k, v in model.state_dict().items()}
    if entry["input"] is not None:
        model = fill(model.to_empty(device="cpu")).eval()
        with torch.no_grad():
            save_file({"out": model(sample(entry["input"])).contiguous()}, entry["out"])
    del model
results["specc imported"] = [m for m in sys.modules if m.split(".")[0] == "specc"]
json.dump(results, open(sys.argv[4], "w"))
'''


# Outputs are compared for every model up to this size (34 of the 77); the larger ones (VGG, the
# deeper ResNets, the big RegNets and EfficientNets) reuse the generated code paths of a smaller
# model of their family, and are checked by state_dict keys and shapes, which keeps the suite short.
COMPARED_PARAMS = 12_000_000


def comparison_input(path: Path):
    """The input the outputs are compared at: d2l's specs at their own, torchvision's at 64 px (Inception 75)."""
    if path.stem in META_ONLY and path.parent.name == "torchvision":
        return None
    if path.parent.name == "torchvision" and specc.load(path).param_count > COMPARED_PARAMS:
        return None
    if path.parent.name != "torchvision":
        return specc.load(path).input_shape
    return (3, 75, 75) if path.stem == "inception_v3" else (3, 64, 64)


def imports_of(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    return names


def test_every_shipped_spec_exports_to_standalone_pytorch(tmp_path):
    manifest, expected = [], {}
    for i, path in enumerate(ALL_SPECS):
        net = specc.load(path)
        source = export.pytorch_source(net)
        assert imports_of(source) <= ALLOWED_IMPORTS, path
        name = f"{path.parent.name}/{path.stem}"
        file = tmp_path / f"exported_{i}.py"
        file.write_text(source)
        manifest.append({"name": name, "module": f"exported_{i}", "file": str(file),
                         "class": export.class_name(net.name), "input": comparison_input(path),
                         "out": str(tmp_path / f"out_{i}.safetensors")})
        expected[name] = net
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "fill.py").write_text(FILL)
    site = sysconfig.get_paths()["purelib"]
    # -I -S: no cwd, no PYTHONPATH, no user site, no .pth files; the child puts site-packages back itself.
    child = subprocess.Popen([sys.executable, "-I", "-S", "-c", CHILD, site, str(tmp_path / "fill.py"),
                              str(tmp_path / "manifest.json"), str(tmp_path / "results.json")],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        outputs = {entry["name"]: specc_output(expected[entry["name"]], entry["input"]) for entry in manifest}
    finally:
        stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results.pop("specc imported") == []
    compared = 0
    for entry in manifest:
        net = expected[entry["name"]]
        built = net.build(device="meta").state_dict()
        assert results[entry["name"]] == {k: list(v.shape) for k, v in built.items()}, entry["name"]
        if entry["input"] is not None:
            got, want = load_file(entry["out"])["out"], outputs[entry["name"]]
            scale = want.abs().max().item()
            assert math.isfinite(scale) and scale > 0, entry["name"]
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-6 * scale), entry["name"]
            compared += 1
    assert len(manifest) == 77 and compared == sum(entry["input"] is not None for entry in manifest) >= 30


def specc_output(net, shape):
    if shape is None:
        return None
    torch.set_num_threads(1)
    module = fill(net.build(device="meta").to_empty(device="cpu")).eval()
    with torch.no_grad():
        return module(sample(shape))


def load_generated(source: str, tmp_path: Path, name: str = "generated"):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["lenet_bn", "resnet18", "googlenet", "torchvision/mobilenet_v3_small",
                                  "torchvision/shufflenet_v2_x0_5", "torchvision/convnext_tiny"])
def test_seeded_construction_equals_specc_build(name, tmp_path):
    """build(seed) of the generated file (and its class under torch.manual_seed) initialises as net.build() does."""
    net = specc.load(SPECS / f"{name}.cnn")
    generated = load_generated(export.pytorch_source(net, seed=5), tmp_path)
    assert generated.SEED == 5
    want = export.initial_module(net, 5).state_dict()
    state = torch.get_rng_state()
    got = generated.build().state_dict()
    assert torch.equal(torch.get_rng_state(), state)  # build() leaves the caller's RNG alone
    torch.manual_seed(5)
    by_class = getattr(generated, export.class_name(net.name))().state_dict()
    assert list(got) == list(want) == list(by_class)
    assert all(torch.equal(got[k], want[k]) and torch.equal(by_class[k], want[k]) for k in want)
    assert not torch.equal(export.initial_module(net, 6).state_dict()[next(iter(want))], want[next(iter(want))])


PARAMS = """
input 3x16x16
param width = 8
param ratio = 2
param p = 0.25
param classes = 10
block pair(c) { conv 3x3 c p1 -> bn -> relu -> conv 1x1 c }
conv 3x3 width p1 -> relu -> pair(width) -> conv 3x3 (8 * ratio) p1 -> gap -> flatten
-> dropout p -> fc classes
"""


def test_params_become_keyword_arguments_only_where_the_code_computes_with_them(tmp_path):
    net = specc.loads(PARAMS)
    source = export.pytorch_source(net)
    generated = load_generated(source, tmp_path)
    cls = getattr(generated, export.class_name(net.name))
    assert "def __init__(self, *, width: int = 8, p: float = 0.25, classes: int = 10):" in source
    # ratio multiplies: the generated code holds its product, so it is no argument (and cannot be ignored)
    assert "def pair(c) -> nn.Sequential:" in source
    with pytest.raises(TypeError):
        cls(ratio=3)
    for values in ({"width": 5}, {"classes": 3, "p": 0.5}, {"width": 12, "classes": 7}):
        want = specc.loads(PARAMS, **values).build(device="meta")
        got = cls(**values)
        assert [(k, v.shape) for k, v in got.state_dict().items()] == \
               [(k, v.shape) for k, v in want.state_dict().items()], values
        containers = re.compile(rf"\b(Chain|Sequential|{type(got).__name__})\(")
        assert containers.sub("Seq(", repr(got)) == containers.sub("Seq(", repr(want)), values


def test_a_parameter_that_changes_structure_is_no_argument():
    source = export.pytorch_source(specc.load(SPECS / "torchvision/efficientnet_b0.cnn"))
    assert "def __init__(self, *, classes: int = 1000):" in source
    vgg = export.pytorch_source(specc.load(SPECS / "vgg11.cnn"))  # ratio divides the widths
    assert "def __init__(self, *, classes: int = 10):" in vgg


def test_set_params_are_the_defaults(tmp_path):
    net = specc.load(SPECS / "lenet.cnn", classes=4)
    generated = load_generated(export.pytorch_source(net), tmp_path)
    assert generated.Lenet().fc3.out_features == 4


# --- onnx ---------------------------------------------------------------------------
# Every spec in specs/ (AlexNet and the VGGs at small inputs: their fc layers then hold 5-8x fewer
# weights, which is what an export's time goes into) and five torchvision models that between
# them use every kind the specs in specs/ do not; torchvision's at 64 px (Inception at 75),
# where their adaptive pools divide evenly or reach 1x1.
ONNX_INPUTS = {"alexnet": (1, 96, 96), "vgg11": (1, 32, 32), "vgg16": (1, 32, 32)}
ONNX_SELECTION = [p.stem for p in sorted(SPECS.glob("*.cnn"))] + [
    # every layer and merge kind torchvision's specs use: mul and hardswish, split and shuffle,
    # ln, scale and droppath, Inception's asymmetric kernels, DenseNet's concatenations
    f"torchvision/{name}" for name in ("mobilenet_v3_small", "shufflenet_v2_x0_5", "convnext_tiny",
                                       "inception_v3", "densenet121")]


def check_onnx(net, module, out: Path, exporter: str, opset: int):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    model = onnx.load(str(out), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    assert (meta["specc.exporter"], meta["specc.opset"]) == (exporter, str(opset))
    assert model.opset_import[0].version == opset
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, *net.input_shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            want = module.eval()(x)
        got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
        assert got.shape == want.shape
        assert (got - want).abs().max().item() <= 1e-4 * max(1.0, want.abs().max().item())


@pytest.mark.parametrize("name", ONNX_SELECTION)
def test_onnx_export_agrees_with_pytorch(name, tmp_path):
    pytest.importorskip("onnx")
    path = SPECS / f"{name}.cnn"
    net = specc.load(path, input_shape=ONNX_INPUTS.get(name) or comparison_input(path))
    module = fill(net.build())
    used = export.export_onnx(net, tmp_path / "net.onnx", module, {"specc.weights": "test"})
    assert used == ("torchscript", export.ONNX_OPSET)
    check_onnx(net, module, tmp_path / "net.onnx", *used)


def test_onnx_falls_back_to_the_dynamo_exporter(tmp_path):
    """The TorchScript exporter refuses an adaptive pool whose output does not divide its input."""
    pytest.importorskip("onnxscript")
    net = specc.loads("input 3x8x8\nconv 3x3 4 p1 -> maxpool 4 -> adaptiveavgpool 3x3 -> flatten -> fc 5")
    module = fill(net.build())
    used = export.export_onnx(net, tmp_path / "net.onnx", module, {})
    assert used == ("dynamo", export.ONNX_DYNAMO_OPSET)
    check_onnx(net, module, tmp_path / "net.onnx", *used)


def test_a_missing_onnx_extra_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    result = CliRunner().invoke(main, ["export", str(SPECS / "lenet.cnn"), "--to", "onnx", "-o",
                                       str(tmp_path / "x.onnx")])
    assert result.exit_code == 1
    assert 'pip install "specc[onnx]"' in result.output and "Traceback" not in result.output


# --- the JSON IR --------------------------------------------------------------------
@pytest.fixture(scope="module")
def validator():
    jsonschema.Draft202012Validator.check_schema(schema())
    return jsonschema.Draft202012Validator(schema())


def walk(nodes):
    """Every node, a merge after its branches' (the order of the analysis's rows)."""
    for node in nodes:
        if node["node"] != "merge":
            yield node
        yield from walk(node.get("children", []))
        for branch in node.get("branches", []):
            yield from walk(branch["children"])
        if node["node"] == "merge":
            yield node


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ir_of_every_shipped_spec_is_valid_and_agrees_with_the_analysis(path, validator):
    net = specc.load(path)
    document = json.loads(json.dumps(ir_dict(net), allow_nan=False))
    validator.validate(document)
    nodes = list(walk(document["children"]))
    layers = [n for n in nodes if n["node"] == "layer"]
    rows = {row.path: row for row in net.layers}
    assert [n["path"] for n in nodes if n["node"] != "block"] == [r.path for r in net.layers]
    for layer in layers:
        row = rows[layer["path"]]
        assert (layer["params"], layer["buffers"], layer["macs"], layer["op"], layer["kind"]) == \
               (row.params, row.buffers, row.macs, row.op, row.kind)
        assert tuple(layer["output_shape"]) == row.output_shape
    for merge in (n for n in nodes if n["node"] == "merge"):
        assert len(merge["inputs"]) == len(merge["branches"])
        assert all(i is None or i.startswith(merge["path"] + ".branch") for i in merge["inputs"])
    totals = document["totals"]
    assert (totals["params"], totals["buffers"], totals["macs"], totals["layers"]) == \
           (net.param_count, net.buffer_count, net.macs, len(layers))
    assert document["output_shape"] == list(net.output_shape)


def test_ir_names_the_file_and_line_of_imported_layers(tmp_path):
    document = ir_dict(specc.load(SPECS / "torchvision/resnet18.cnn"))
    layers = [n for n in walk(document["children"]) if n["node"] == "layer"]
    files = {n["source"]["file"] for n in layers}
    assert len(files) == 1 and files.pop().endswith("torchvision/lib/resnet.cnn")
    stem = layers[0]
    assert stem["args"]["kernel"] == [7, 7] and stem["input_shape"] == [3, 224, 224]
    line = (SPECS / "torchvision/lib/resnet.cnn").read_text().splitlines()[stem["source"]["line"] - 1]
    assert stem["op"] in line
    blocks = [n for n in walk(document["children"]) if n["node"] == "block"]
    assert blocks and all(b["children"] for b in blocks)
    assert document["params"] == {"classes": 1000, "groups": 1, "width_per_group": 64}  # the library's too


def test_json_export_from_a_spec_does_not_import_torch(tmp_path):
    _, modules = cli_imports("export", SPECS / "resnet18.cnn", "--to", "json", "-o", tmp_path / "r.json")
    assert "torch" not in modules
    assert json.loads((tmp_path / "r.json").read_text())["format"] == "specc-ir/1"


# --- from a run directory and on the command line -------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from test_train import TINY, make_dataset
    from specc.train.loop import Options, start
    root = tmp_path_factory.mktemp("export_run")
    data = make_dataset(root / "data", train=128, test=32)
    (root / "tiny.cnn").write_text(TINY)
    options = Options(device="cpu", progress=False, echo=lambda *_: None, data_dir=str(data), out=str(root / "run"))
    start(str(root / "tiny.cnn"), {}, {"epochs": 2}, options).fit()
    return root / "run"


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.mark.parametrize("which", ["best", "last"])
def test_export_from_a_run_directory_uses_its_checkpoint(run_dir, which, tmp_path):
    result = cli("export", run_dir, "--to", "pytorch", "-o", tmp_path / "tiny.py", "--checkpoint", which)
    assert result.exit_code == 0, result.output
    weights = load_file(str(tmp_path / "tiny.safetensors"))
    trained = load_file(str(run_dir / f"{which}.safetensors"))
    assert weights.keys() == {k for k in trained if "/" not in k}
    assert all(torch.equal(weights[k], trained[k]) for k in weights)
    generated = load_generated((tmp_path / "tiny.py").read_text(), tmp_path, "tiny")
    model = generated.pretrained()  # strict=True inside
    from specc.train.evaluate import load_run
    net, reference, _ = load_run(str(run_dir), which, torch.device("cpu"))
    x = sample(net.input_shape)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    result = cli("export", run_dir, "--to", "onnx", "-o", tmp_path / "tiny.onnx", "--checkpoint", which)
    assert result.exit_code == 0 and f"{which} checkpoint" in result.output and "opset 17" in result.output
    assert float(result.output.split("within ")[1].split()[0]) <= 1e-4
    result = cli("export", run_dir, "--to", "json", "-o", tmp_path / "tiny.json")
    assert result.exit_code == 0
    assert json.loads((tmp_path / "tiny.json").read_text())["totals"]["params"] == net.param_count


@pytest.mark.parametrize("args, message", [
    (["--to", "pytorch"], "needs -o FILE.py"),
    (["--to", "pytorch", "-o", "x.txt"], "writes a .py file"),
    (["--to", "onnx", "-o", "x.py"], "writes a .onnx file"),
    (["--to", "pytorch", "-o", "x.py", "--set", "nope=1"], "has no param 'nope'"),
    (["--to", "pytorch", "-o", "missing/dir/x.py"], "cannot write"),
])
def test_command_line_mistakes_are_clear_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("export", SPECS / "lenet.cnn", *args)
    assert result.exit_code != 0 and message in result.output


def test_run_directories_refuse_spec_options(run_dir):
    result = cli("export", run_dir, "--to", "json", "--set", "classes=3")
    assert result.exit_code != 0 and "fixed by its checkpoint" in result.output


def test_the_command_prints_what_it_wrote(tmp_path):
    result = cli("export", SPECS / "resnet18.cnn", "--to", "pytorch", "-o", tmp_path / "r.py", "--seed", "3")
    assert result.output == f"wrote {tmp_path / 'r.py'} (class Resnet18, keyword arguments: classes)\n"
    assert "SEED = 3" in (tmp_path / "r.py").read_text()
    result = cli("export", SPECS / "lenet.cnn", "--to", "json")
    assert json.loads(result.output)["network"] == "lenet"


# --- random specs -------------------------------------------------------------------
from test_properties import random_spec  # noqa: E402  (the suite's own spec strategy)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(text=random_spec())
def test_exported_pytorch_and_onnx_agree_with_build_on_random_specs(text, tmp_path_factory):
    try:
        net = specc.loads(text)
    except specc.SpecError:
        assume(False)
    tmp = tmp_path_factory.mktemp("random")
    generated = load_generated(export.pytorch_source(net), tmp)
    module = fill(net.build())
    mine = getattr(generated, export.class_name(net.name))()
    mine.load_state_dict(module.state_dict(), strict=True)
    x = sample(net.input_shape)
    for mode in ("eval", "train"):  # training mode: the same dropout and stochastic-depth draws
        getattr(module, mode)(), getattr(mine, mode)()
        torch.manual_seed(0)
        want = module(x)
        torch.manual_seed(0)
        assert torch.equal(mine(x), want), mode
    try:
        used = export.export_onnx(net, tmp / "net.onnx", module.eval(), {})
    except export.ExportError as err:
        # Neither exporter handles an adaptive max pool whose output size does not divide its input
        # (docs/ir.md); that, and only that, may be refused, with a message.
        assert uneven_adaptive_max_pool(net) and "adaptive_max_pool2d" in str(err), str(err)
        return
    check_onnx(net, module, tmp / "net.onnx", *used)


def uneven_adaptive_max_pool(net) -> bool:
    layers = [n for n in walk(ir_dict(net)["children"]) if n["node"] == "layer"]
    return any(n["kind"] == "adaptivemaxpool" and any(side % out for side, out in zip(n["input_shape"][1:],
                                                                                     n["args"]["size"]))
               for n in layers)


def test_the_ir_example_in_the_docs_is_true():
    doc = (ROOT / "docs" / "ir.md").read_text()
    spec = doc.split("An example, `tiny.cnn`:\n\n```\n")[1].split("```")[0]
    document = ir_dict(specc.loads(spec, path="tiny.cnn"))
    assert f'"totals": {json.dumps(document["totals"])}' in doc
    assert all(f'"{k}": {json.dumps(v)}' in doc for k, v in document["children"][0]["args"].items())
    assert '"inputs": ' + json.dumps(document["children"][1]["children"][0]["inputs"]) in doc
