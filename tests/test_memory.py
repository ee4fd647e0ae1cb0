"""Training-memory estimates (specc.lang.memory, torch-free) against what PyTorch allocates.

- Each layer and merge kind's registry claim of what autograd keeps for backward is checked with
  torch.autograd.graph.saved_tensors_hooks on the single built layer, so a wrong claim fails.
- The estimated peak of a steady training step is held to the CPU allocator's measured peak
  (specc.runtime.memory.measure_training_peaks: the profiler's allocation events in the second step)
  within 10%, for every spec in specs/ and specs/torchvision/ at batches 2 and 4 on a small input
  (the two over 150M parameters are measured by bench/memory.py --all),
  and for networks at sizes where the activations, not the weights, take most of the memory.
- The summary's memory columns and header.
"""
import json
from pathlib import Path

import pytest
import specc
from click.testing import CliRunner
from conftest import SPECS
from specc.cli import main
from specc.lang.memory import train_channels_last, training_memory
from specc.lang.registry import MERGES, REGISTRY
from specc.tools.summary import human_count, summary_dict

TOLERANCE = 0.10
LARGE = {"regnet_y_128gf", "convnext_large"}  # too large for the suite's CPU
SIDES = (32, 48, 64, 96)  # the smallest each spec accepts (Inception-v3 needs 75)
THREADS = 1  # the oracle's fixed thread count, given to the estimate too (see measure_training_peaks)


# --- what each kind keeps -------------------------------------------------------------------------
S = "4x6x6"
# one probe per kind: (layer or merge text, input shape); every registered kind must have one
PROBES = {
    "conv": [("conv 3x3 4", S), ("conv 1x1 4 g2", S)], "maxpool": [("maxpool 2", S), ("maxpool 3 s2 p1", S)],
    "avgpool": [("avgpool 2", S)], "adaptiveavgpool": [("adaptiveavgpool 2x2", S), ("adaptiveavgpool 1x1", S)],
    "adaptivemaxpool": [("adaptivemaxpool 2x3", S)], "gap": [("gap", S)], "flatten": [("flatten", S)],
    "fc": [("fc 5", "8")], "bn": [("bn", S), ("bn", "8")], "lrn": [("lrn 3", S), ("lrn 5", S)],
    "dropout": [("dropout 0.5", S), ("dropout 0", S)], "relu": [("relu", S)], "relu6": [("relu6", S)],
    "sigmoid": [("sigmoid", S)], "tanh": [("tanh", S)], "gelu": [("gelu", S)], "silu": [("silu", S)],
    "identity": [("identity", S)], "hardswish": [("hardswish", S)], "hardsigmoid": [("hardsigmoid", S)],
    "mish": [("mish", S)], "leakyrelu": [("leakyrelu", S)], "softmax": [("softmax", S)], "elu": [("elu", S)],
    "softplus": [("softplus", S)], "hardtanh": [("hardtanh", S)], "prelu": [("prelu", S), ("prelu per_channel", S)],
    "shuffle": [("shuffle 2", S)], "ln": [("ln", S), ("ln", "8")], "scale": [("scale 0.5", S)],
    "droppath": [("droppath 0.5", S), ("droppath 0", S)],
}
MERGE_PROBES = {name: [(f"{name}(identity | identity)", S)] for name in MERGES}


def test_every_kind_has_a_probe():
    assert set(PROBES) == {kind.name for kind in REGISTRY.values()}
    assert set(MERGE_PROBES) == set(MERGES)


def _kept_by_pytorch(text: str, shape: str):
    """What autograd keeps of the one-layer network `text` in training mode: (keeps input, keeps output,
    bytes of other new tensors, output is a view of the input). Parameters are not counted."""
    import torch
    net = specc.loads(f"input {shape}\n{text}")
    module = net.build().train()
    x = torch.randn(2, *net.input_shape, requires_grad=True)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        y = module(x)
    storage = lambda t: t.untyped_storage().data_ptr()
    weights = {storage(t) for t in [*module.parameters(), *module.buffers()]}
    others = {storage(t): t.untyped_storage().nbytes() for t in kept
              if storage(t) not in weights | {storage(x), storage(y)}}
    kept_storages = {storage(t) for t in kept}
    return (storage(x) in kept_storages, storage(y) in kept_storages and storage(y) != storage(x),
            sum(others.values()), storage(y) == storage(x)), net


def _claimed(node, batch: int = 2):
    """The registry entry's claim for a layer, in _kept_by_pytorch's terms."""
    saves, args = node.kind.saves, node.args
    return (saves.keeps("input", args), saves.keeps("output", args),
            saves.extra(args, node.in_shape, node.out_shape, batch), saves.view(args))


@pytest.mark.parametrize("kind,text,shape", [(k, t, s) for k, cases in PROBES.items() for t, s in cases])
def test_layer_keeps_what_its_registry_entry_says(kind, text, shape):
    pytest.importorskip("torch")
    measured, net = _kept_by_pytorch(text, shape)
    node = net.graph.items[0]
    assert node.kind.name == kind
    assert _claimed(node) == measured, f"{text}: claimed (input, output, extra bytes, view) != PyTorch's"


@pytest.mark.parametrize("kind,text,shape", [(k, t, s) for k, cases in MERGE_PROBES.items() for t, s in cases])
def test_merge_keeps_what_its_registry_entry_says(kind, text, shape):
    """With identity branches a merge's operands are its input: `input` claims they are kept."""
    pytest.importorskip("torch")
    (keeps_input, keeps_output, extra, view), net = _kept_by_pytorch(text, shape)
    saves = net.graph.items[0].kind.saves
    assert (saves.keeps("input", {}), saves.keeps("output", {}), 0, False) == (keeps_input, keeps_output, extra, view)


# --- the estimate against the allocator --------------------------------------------------------
def _small(path: Path):
    declared = specc.load(path)
    for side in SIDES:
        try:
            return specc.load(path, input_shape=(declared.input_shape[0], side, side))
        except specc.SpecError:
            continue
    return declared


def _measured(net, batches, **settings):
    pytest.importorskip("torch")
    from specc.runtime.memory import measure_training_peaks
    return measure_training_peaks(net, batches, threads=THREADS, **settings)


def _assert_close(net, batch, measured, **settings):
    estimate = training_memory(net, batch, threads=THREADS, **settings).total
    error = estimate / measured - 1
    assert abs(error) <= TOLERANCE, (f"{net.path} at {net.input_shape} batch {batch} {settings}: estimate "
                                     f"{estimate:,} B, measured {measured:,} B ({error:+.1%})")


SHIPPED = [p for p in sorted(SPECS.glob("*.cnn")) + sorted(SPECS.glob("torchvision/*.cnn"))
           if p.parent == SPECS or p.stem not in LARGE]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SPECS)))
def test_estimate_is_within_10_percent_of_the_measured_peak(path):
    """SGD with momentum 0.9 (one state buffer), in the memory format specc train uses on the CPU;
    small inputs and batches keep the suite quick."""
    net = _small(path)
    settings = {"momentum": 0.9, "channels_last": train_channels_last(net, "cpu")}
    for batch, peak in _measured(net, (2, 4), **settings).items():
        _assert_close(net, batch, peak, **settings)


ACTIVATION_BOUND = [("lenet.cnn", None, 256), ("lenet_bn.cnn", None, 128), ("densenet.cnn", 96, 16),
                    ("resnet18.cnn", 96, 32), ("torchvision/mobilenet_v2.cnn", 96, 8)]


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("name,side,batch", ACTIVATION_BOUND, ids=[row[0] for row in ACTIVATION_BOUND])
def test_estimate_holds_where_activations_dominate(name, side, batch, channels_last):
    """Where what backward keeps outweighs the weights, gradients and optimizer state together, plain SGD,
    in either memory format (oneDNN copies activations into its blocked layouts only from NCHW)."""
    net = specc.load(SPECS / name)
    if side:
        net = specc.load(SPECS / name, input_shape=(net.input_shape[0], side, side))
    estimate = training_memory(net, batch, threads=THREADS, channels_last=channels_last)
    assert estimate.saved > estimate.weights + estimate.gradients + estimate.optimizer
    _assert_close(net, batch, _measured(net, (batch,), channels_last=channels_last)[batch],
                  channels_last=channels_last)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_estimate_follows_the_optimizer(optimizer):
    net = specc.load(SPECS / "lenet_bn.cnn")
    _assert_close(net, 32, _measured(net, (32,), optimizer=optimizer)[32], optimizer=optimizer)


def test_optimizer_state_by_recipe():
    net = specc.load(SPECS / "resnet18.cnn")
    params = 4 * net.param_count
    assert training_memory(net, 1).optimizer == 0  # d2l's plain SGD
    assert training_memory(net, 1, momentum=0.9).optimizer == params
    assert training_memory(net, 1, optimizer="adam").optimizer == 2 * params
    assert training_memory(net, 1, optimizer="adamw", autocast=True).optimizer == 2 * params
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adam, adamw"):
        training_memory(net, 1, optimizer="rmsprop")


def test_saved_is_split_over_the_layers_each_tensor_once():
    net = specc.load(SPECS / "torchvision" / "resnet18.cnn", input_shape=(3, 64, 64))
    memory = training_memory(net, 4)
    assert len(memory.saved_by_layer) == len(net.layers)
    loss = 4 * 4 * 1000 + 4  # log_softmax's result and nll_loss's total weight
    assert sum(memory.saved_by_layer) + loss == memory.saved
    # ReLU keeps its output, which the next conv keeps as its input: counted once, at the ReLU
    rows = {row.path: saved for row, saved in zip(net.layers, memory.saved_by_layer)}
    assert rows["stem1.conv1"] == 0  # it keeps the batch, counted as the batch
    assert rows["stem1.bn1"] == 4 * 4 * 64 * 32 * 32 + 8 * 64  # the conv's output, its mean and 1/std
    assert rows["stem1.relu1"] == 4 * 4 * 64 * 32 * 32  # its output, which the max pool keeps too
    assert rows["stem1.maxpool1"] == 8 * 4 * 64 * 16 * 16  # its int64 indices
    assert memory.total >= memory.weights + memory.gradients + memory.optimizer + memory.saved + memory.batch_data


def test_autocast_keeps_bf16_activations():
    """Not checked against a GPU here: conv and linear outputs in bf16 make what is kept smaller."""
    net = specc.load(SPECS / "resnet18.cnn")
    full, half = training_memory(net, 64), training_memory(net, 64, autocast=True)
    assert half.saved < 0.75 * full.saved and half.weights == full.weights


# --- the summary ---------------------------------------------------------------------------------
def test_human_count_scales_past_giga():
    assert human_count(2_773_513_180_000_000) == "2.77P"
    assert human_count(3_100_000_000_000) == "3.10T" and human_count(999) == "999"


def test_summary_shows_saved_tensors_and_the_optimizer():
    runner = CliRunner()
    result = runner.invoke(main, ["summary", str(SPECS / "lenet.cnn"), "--batch", "256"])
    assert result.exit_code == 0, result.output
    assert "saved for backward" in result.output and "plain SGD without momentum" in result.output
    conv1 = next(line for line in result.output.splitlines() if line.startswith("sigmoid1"))
    assert "–" in conv1 and "4.6 MiB" in conv1  # no MACs counted; its output is kept
    adam = runner.invoke(main, ["summary", str(SPECS / "lenet.cnn"), "--optimizer", "adam"])
    assert "Adam" in adam.output
    momentum = runner.invoke(main, ["summary", str(SPECS / "lenet.cnn"), "--optimizer", "sgd-momentum"])
    assert "SGD with momentum 0.9" in momentum.output
    assert runner.invoke(main, ["summary", str(SPECS / "lenet.cnn"), "--optimizer", "lbfgs"]).exit_code == 2


def test_summary_defaults_to_the_recipe_optimizer(spec_file):
    path = spec_file("input 1x8x8\ntrain {\n    optimizer = adam\n}\nconv 3x3 4 -> flatten -> fc 10")
    data = summary_dict(specc.load(path), 2)
    training = data["training"]
    assert training["optimizer"] == "Adam"
    assert training["memory_bytes"]["optimizer"] == 2 * 4 * data["totals"]["params"]
    assert data["mac_convention"].startswith("multiply-accumulates of conv and linear layers only")
    saved = training_memory(specc.load(path), 2).saved_by_layer
    assert list(training["saved_bytes"].values()) == list(saved)
    text = CliRunner().invoke(main, ["summary", str(path), "--format", "json"]).output
    assert json.loads(text)["training"]["optimizer"] == "Adam"
