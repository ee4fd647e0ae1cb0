"""Parity with torchvision: specs/torchvision/*.cnn are torchvision's convolutional classifiers, tensor for tensor.

For each of the 68 models:
- statically (torch-free): the spec's input is the crop size torchvision evaluates its default weights at,
  its parameter count is the documented one and its MACs equal the documented GFLOPS to 3 decimals;
- built with build(weights=torchvision_model) after torchvision's norm weights, biases, running statistics
  and layer scales are set to seeded random values (at their initial values eval-mode BatchNorm is nearly
  the identity and a 1e-6 layer scale hides a whole branch, so the comparison could not fail): the same
  ordered parameter and buffer shapes, outputs within 1e-5 of the output's magnitude in eval mode and in
  training mode (same dropout and stochastic-depth draws), equal running statistics after that step, and
  equal eval outputs after one SGD step on both.
Models over 150M parameters are compared on the meta device here (ordered shapes) and fully by
bench/parity_large.py, whose recorded results are in the README. Inputs are small (64 px, 96 for
Inception-v3; every model pools adaptively) and one batch of 2, to keep the suite quick.
"""
from pathlib import Path

import pytest
import specc
from conftest import torchvision_or_skip
from torchvision_counts import DOCUMENTED

SPECS = Path(__file__).resolve().parents[1] / "specs" / "torchvision"
NO_AUX = {"aux_logits": False, "transform_input": False, "init_weights": True}
# torchvision constructor arguments. Inception-v3's own init (every conv at std 0.1 whatever its fan-in)
# with random norm statistics gives outputs near 5e10 and NaN after one SGD step in torchvision alone,
# so it keeps PyTorch's default init here.
KWARGS = {"googlenet": NO_AUX, "inception_v3": {**NO_AUX, "init_weights": False}}
SIZES = {"inception_v3": 96}  # parity input size where 64 px is too small
LARGE = {"regnet_y_128gf", "convnext_large"}  # over 150M parameters: meta-device check here
# inception_v3's documented count includes the auxiliary head, which the spec (like the
# DEFAULT weights' evaluation) leaves out: its 3,326,696 parameters are subtracted.
INCEPTION_AUX_PARAMS = 3_326_696


def expected_params(name: str) -> int:
    return DOCUMENTED[name][0] - (INCEPTION_AUX_PARAMS if name == "inception_v3" else 0)


def test_every_model_has_a_spec():
    assert sorted(p.stem for p in SPECS.glob("*.cnn")) == sorted(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_static_counts_equal_torchvision_documentation(name):
    """Torch-free: what `specc check` prints is what torchvision documents."""
    params, gmacs, crop = DOCUMENTED[name]
    net = specc.load(SPECS / f"{name}.cnn")
    assert net.input_shape == (3, crop, crop)
    assert net.output_shape == (1000,)
    assert net.param_count == expected_params(name)
    assert round(net.macs / 1e9, 3) == pytest.approx(gmacs, abs=5e-4), f"{name}: {net.macs / 1e9:.4f} GMACs"


# --- everything below needs torch and torchvision ---------------------------------------------
def _torchvision():
    return torchvision_or_skip()


def test_documented_table_is_torchvision_s():
    torchvision = _torchvision()
    from torchvision.models import get_model_weights
    for name, (params, gmacs, crop) in DOCUMENTED.items():
        weights = get_model_weights(name).DEFAULT
        assert (weights.meta["num_params"], weights.meta["_ops"]) == (params, gmacs), name
        assert weights.transforms().crop_size[0] == crop, name
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    assert sum(p.numel() for p in reference.AuxLogits.parameters()) == INCEPTION_AUX_PARAMS


def randomize_norms(model, seed: int = 0) -> None:
    """Seeded random norm affines, running statistics and layer scales, so that none is near the identity."""
    import torch
    generator = torch.Generator().manual_seed(seed)

    def fill(tensor, low, high):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)):
                if module.weight is not None:
                    fill(module.weight, 0.5, 1.5)
                    fill(module.bias, -0.5, 0.5)
                if getattr(module, "running_mean", None) is not None:
                    fill(module.running_mean, -0.5, 0.5)
                    fill(module.running_var, 0.5, 1.5)
        for name, parameter in model.named_parameters():
            if name.endswith("layer_scale"):
                fill(parameter, 0.5, 1.5)


def relative_diff(ours, theirs) -> tuple[float, float]:
    diff = (ours - theirs).abs().max().item()
    return diff, diff / max(theirs.abs().max().item(), 1e-12)


def _flat_shapes(model) -> list[tuple]:
    """The multiset of parameter and buffer shapes. Their order is what build(weights=) pairs, by first use
    and with commutative branches in either order (torchvision registers RegNet's shortcut and ConvNeXt's
    layer scale first), and it refuses a mismatch; a spec writes ConvNeXt's pointwise nn.Linear (O x I)
    as conv 1x1 (O x I x 1 x 1), compared here as equal."""
    shapes = []
    for tensor in model.state_dict().values():
        shape = tuple(tensor.shape)
        shapes.append(shape[:2] if len(shape) == 4 and shape[2:] == (1, 1) else shape)
    return sorted(shapes)


@pytest.mark.parametrize("name", sorted(set(DOCUMENTED) - LARGE))
def test_parity(name, record_property):
    torch = pytest.importorskip("torch")
    torchvision = _torchvision()
    size = SIZES.get(name, 64)
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None, **KWARGS.get(name, {}))
    randomize_norms(reference)
    net = specc.load(SPECS / f"{name}.cnn", input_shape=(3, size, size))
    assert net.param_count == sum(p.numel() for p in reference.parameters()) == expected_params(name)

    model = net.build(weights=reference)
    assert _flat_shapes(model) == _flat_shapes(reference)

    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model.eval()(x), reference.eval()(x)
    assert ours.shape == theirs.shape == (2, 1000) == (2, *net.output_shape)
    eval_diff, eval_rel = relative_diff(ours, theirs)
    assert eval_rel <= 1e-5, f"{name}: eval outputs differ by {eval_diff:.3g} ({eval_rel:.3g} relative)"

    train_diff = train_step(model, reference, x, name)
    record_property("parity", {"model": name, "params": net.param_count, "eval_diff": eval_diff,
                               "train_diff": train_diff, "checked": "full, in the suite"})


def train_step(model, reference, x, name: str) -> float:
    """Training mode: equal outputs (same random draws), running statistics and, after one SGD step, eval outputs."""
    import torch
    model.train(), reference.train()
    outputs = []
    for module in (model, reference):
        torch.manual_seed(2)  # the same dropout masks and stochastic-depth draws on both sides
        out = module(x)
        out.square().mean().backward()
        outputs.append(out.detach())
    train_diff, train_rel = relative_diff(*outputs)
    assert train_rel <= 1e-5, f"{name}: training-mode outputs differ by {train_diff:.3g} ({train_rel:.3g} relative)"
    ours_stats = sorted((tuple(b.shape), b.float().sum().item()) for b in model.buffers())
    their_stats = sorted((tuple(b.shape), b.float().sum().item()) for b in reference.buffers())
    for (shape, a), (_, b) in zip(ours_stats, their_stats):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-4), f"{name}: running statistics {shape} moved differently"
    with torch.no_grad():
        for module in (model, reference):
            for p in module.parameters():
                if p.grad is not None:
                    p -= 0.01 * p.grad
        after_diff, after_rel = relative_diff(model.eval()(x), reference.eval()(x))
    assert after_rel <= 1e-4, f"{name}: after one SGD step eval outputs differ by {after_diff:.3g} ({after_rel:.3g})"
    return train_diff


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_models_on_meta(name, monkeypatch, record_property):
    """The largest models, structurally on the meta device (no memory); values in bench/parity_large.py."""
    torch = pytest.importorskip("torch")
    torchvision = _torchvision()
    from torchvision.models import regnet
    widths = regnet.BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):  # RegNet derives its widths with tensors, which meta cannot read back
        with torch.device("cpu"):
            return widths(cls, *args, **kwargs)

    monkeypatch.setattr(regnet.BlockParams, "from_init_params", classmethod(on_cpu))
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)(weights=None)
    # Pairing runs on meta tensors too (copying nothing): it refuses any structural mismatch.
    model = specc.load(SPECS / f"{name}.cnn", input_shape=(3, 64, 64)).build(device="meta", weights=reference)
    assert _flat_shapes(model) == _flat_shapes(reference)
    assert sum(p.numel() for p in model.parameters()) == expected_params(name)
    checked = "static + meta shapes in the suite; full by bench/parity_large.py"
    record_property("parity", {"model": name, "params": expected_params(name), "eval_diff": None,
                               "train_diff": None, "checked": checked})


def test_transfer_names_the_first_mismatch():
    torchvision = _torchvision()
    from specc.runtime.weights import WeightsError, transfer
    reference = torchvision.models.resnet18(weights=None)
    model = specc.load(SPECS / "resnet34.cnn", input_shape=(3, 64, 64)).build()
    with pytest.raises(WeightsError) as err:
        transfer(model, reference)
    message = str(err.value)
    assert "the spec's '" in message and "the source's 'layer2.0.conv1.weight' is 128x64x3x3" in message


def test_transfer_from_files_and_count_mismatch(tmp_path):
    torch = pytest.importorskip("torch")
    torchvision = _torchvision()
    from safetensors.torch import save_file
    from specc.runtime.weights import WeightsError
    reference = torchvision.models.squeezenet1_1(weights=None)
    net = specc.load(SPECS / "squeezenet1_1.cnn", input_shape=(3, 64, 64))
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    x = torch.randn(1, 3, 64, 64)
    want = reference.eval()(x)
    model = net.build(weights=tmp_path / "w.pt").eval()
    assert torch.equal(model(x), want)
    # safetensors sorts tensors by name: a file with the spec's own names loads by name ...
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "spec.safetensors"))
    assert torch.equal(net.build(weights=tmp_path / "spec.safetensors").eval()(x), want)
    # ... and one with foreign names is refused with the way out, not mismatched.
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "tv.safetensors"))
    with pytest.raises(WeightsError, match="save the source as a .pt state_dict"):
        net.build(weights=tmp_path / "tv.safetensors")
    partial = dict(list(reference.state_dict().items())[:-2])
    with pytest.raises(WeightsError, match=r"the spec has 52 tensors and the source 50: the spec's '.*' \(1000x512x1x1\)"):
        net.build(weights=partial)
