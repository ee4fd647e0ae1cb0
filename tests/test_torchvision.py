"""Parity with torchvision: specs/torchvision/*.cnn are torchvision's models, tensor for tensor.

For each spec: the static parameter count equals torchvision's; the ordered
parameter and buffer shapes are equal; after copying a randomly initialised
torchvision model's weights into the built spec (build(weights=...)), eval()
outputs agree within 1e-5 relative, and so do training-mode outputs and the
updated running statistics for models with BatchNorm. Inputs are 64 px
(every model here pools adaptively), one batch of 2, to keep the suite quick.
"""
import os
from pathlib import Path

import pytest
import torch

import specc
from conftest import PARITY_ROWS
from torchvision_counts import DOCUMENTED
from specc.runtime.weights import WeightsError, transfer

if os.environ.get("CI") == "true":
    import torchvision  # CI installs it: a missing torchvision must fail there, not skip
else:
    torchvision = pytest.importorskip("torchvision", reason="parity tests need torchvision (pip install torchvision)",
                                      exc_type=ImportError)

SPECS = Path(__file__).resolve().parents[1] / "specs" / "torchvision"
MODELS = {  # spec name -> torchvision constructor arguments
    **{name: {} for name in ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
                             "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                             "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2",
                             "squeezenet1_1")},
    "googlenet": {"aux_logits": False, "transform_input": False, "init_weights": True},
}
SIZE = 64


def test_every_spec_is_covered():
    assert sorted(p.stem for p in SPECS.glob("*.cnn")) == sorted(MODELS)


def relative_diff(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    diff = (ours - theirs).abs().max().item()
    return diff, diff / max(theirs.abs().max().item(), 1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parity(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None, **MODELS[name])
    net = specc.load(SPECS / f"{name}.cnn", input_shape=(3, SIZE, SIZE))
    expected = sum(p.numel() for p in reference.parameters())
    assert net.param_count == expected == DOCUMENTED[name]
    assert specc.load(SPECS / f"{name}.cnn").param_count == expected  # at 224 px too

    model = net.build(weights=reference)
    assert [tuple(p.shape) for p in model.parameters()] == [tuple(p.shape) for p in reference.parameters()]
    assert [tuple(b.shape) for b in model.buffers()] == [tuple(b.shape) for b in reference.buffers()]

    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model.eval()(x), reference.eval()(x)
    assert ours.shape == theirs.shape == (2, 1000) == (2, *net.output_shape)
    eval_diff, eval_rel = relative_diff(ours, theirs)
    assert eval_rel <= 1e-5, f"{name}: eval outputs differ by {eval_diff:.3g} ({eval_rel:.3g} relative)"

    train_diff = None
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in reference.modules()):
        model.train(), reference.train()
        with torch.no_grad():
            torch.manual_seed(2)
            ours = model(x)
            torch.manual_seed(2)  # the same dropout masks on both sides
            theirs = reference(x)
        train_diff, train_rel = relative_diff(ours, theirs)
        assert train_rel <= 1e-5, f"{name}: training-mode outputs differ by {train_diff:.3g}"
        for a, b in zip(model.buffers(), reference.buffers()):
            assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6)  # running statistics moved alike
    PARITY_ROWS.append({"model": name, "params": expected, "eval_diff": eval_diff, "train_diff": train_diff,
                        "status": "pass"})


def test_transfer_names_the_first_mismatch():
    reference = torchvision.models.resnet18(weights=None)
    model = specc.load(SPECS / "resnet34.cnn", input_shape=(3, SIZE, SIZE)).build()
    with pytest.raises(WeightsError) as err:
        transfer(model, reference)
    message = str(err.value)
    assert "the spec's '" in message and "the source's 'layer2.0.conv1.weight' is 128x64x3x3" in message


def test_transfer_from_files_and_count_mismatch(tmp_path):
    from safetensors.torch import save_file
    reference = torchvision.models.squeezenet1_1(weights=None)
    net = specc.load(SPECS / "squeezenet1_1.cnn", input_shape=(3, SIZE, SIZE))
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    x = torch.randn(1, 3, SIZE, SIZE)
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
