"""Every shipped spec against an independent PyTorch module and the published counts."""
import pytest
import torch

import specc
from conftest import SPECS
from reference_models import REFERENCES

# shared/reference/classic-cnns.md, column P; vgg16 computed from torchvision's
# 138,357,544 less 1,152 (one input channel) and 4,056,030 (10 classes).
PUBLISHED = {"lenet": 61_706, "lenet_bn": 44_878, "alexnet": 46_764_746, "vgg11": 43_093_322,
             "vgg16": 134_300_362, "nin": 1_992_166, "googlenet": 5_977_530, "resnet18": 11_178_378,
             "densenet": 758_226}


def test_every_shipped_spec_has_a_reference():
    assert sorted(p.stem for p in SPECS.glob("*.cnn")) == sorted(REFERENCES)


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def case(request):
    name = request.param
    torch.manual_seed(0)
    with torch.device("meta") if name in ("vgg16",) else torch.device("cpu"):
        reference = REFERENCES[name]()
    return name, specc.load(SPECS / f"{name}.cnn"), reference


def test_param_count_matches_publication_and_reference(case):
    name, net, reference = case
    assert net.param_count == PUBLISHED[name]
    assert net.param_count == sum(p.numel() for p in reference.parameters())
    assert net.buffer_count == sum(b.numel() for b in reference.buffers())


def test_parameter_shapes_in_textual_order(case):
    name, net, reference = case
    built = net.build(device="meta")
    assert [tuple(p.shape) for p in built.parameters()] == [tuple(p.shape) for p in reference.parameters()]
    assert [tuple(b.shape) for b in built.buffers()] == [tuple(b.shape) for b in reference.buffers()]


def test_static_shapes_equal_real_forward(case):
    """Every row of net.layers has the shape PyTorch's forward produces at that module."""
    name, net, reference = case
    device = "meta" if name == "vgg16" else "cpu"
    built = net.build(device=device).eval()
    seen = {}
    modules = dict(built.named_modules())
    for row in net.layers:
        modules[row.path].register_forward_hook(
            lambda m, i, o, path=row.path: seen.__setitem__(path, tuple(o.shape[1:])))
    x = torch.zeros(2, *net.input_shape, device=device)
    with torch.no_grad():
        out = built(x)
        assert out.shape == reference.to(device).eval()(x).shape
    assert tuple(out.shape[1:]) == net.output_shape
    assert {row.path: row.output_shape for row in net.layers} == seen
