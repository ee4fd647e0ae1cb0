"""The built module: names, order, and what torch's tracers and compilers accept."""
import pytest
import torch

import specc
from conftest import SPECS

SMALL = """
network small
input 3x16x16
block res(c) { add(conv 3x3 c p1 -> bn -> relu | identity) -> relu }
conv 3x3 8 p1 -> res(8) * 2 -> concat(identity | conv 1x1 4) -> maxpool 2 -> flatten -> fc 10
"""


@pytest.fixture(scope="module")
def small():
    return specc.loads(SMALL)


def test_names_read_like_the_spec(small):
    module = small.build()
    names = [name for name, _ in module.named_parameters()]
    assert names[:3] == ["conv1.weight", "conv1.bias", "res1.add1.branch1.conv1.weight"]
    assert "res2.add1.branch1.bn1.weight" in names and "concat1.branch2.conv1.weight" in names
    text = repr(module)
    assert "(res1): Chain(" in text and "(concat1): Concat(" in text and "(fc1): Linear(in_features=768" in text


def test_state_dict_lines_up_with_hand_written_sequential():
    net = specc.load(SPECS / "lenet.cnn")
    torch.manual_seed(0)
    hand = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.Sigmoid(), torch.nn.AvgPool2d(2, 2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.Sigmoid(), torch.nn.AvgPool2d(2, 2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.Sigmoid(), torch.nn.Linear(120, 84), torch.nn.Sigmoid(),
        torch.nn.Linear(84, 10))
    module = net.build()
    for mine, theirs in zip(module.state_dict().values(), hand.state_dict().values(), strict=True):
        mine.copy_(theirs)
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(module(x), hand(x), rtol=0, atol=0)


def test_meta_device_allocates_nothing():
    module = specc.load(SPECS / "vgg16.cnn").build(device="meta")
    assert all(p.is_meta for p in module.parameters())
    assert module(torch.empty(2, 1, 224, 224, device="meta")).shape == (2, 10)


def test_dtype(small):
    assert all(p.dtype == torch.float64 for p in small.build(dtype=torch.float64).parameters())


def test_jit_trace(small):
    module = small.build().eval()
    x = torch.randn(2, 3, 16, 16)
    traced = torch.jit.trace(module, x)
    torch.testing.assert_close(traced(x), module(x))


def test_torch_export(small):
    module = small.build().eval()
    x = torch.randn(2, 3, 16, 16)
    exported = torch.export.export(module, (x,))
    torch.testing.assert_close(exported.module()(x), module(x))


def test_torch_compile_captures_one_graph(small):
    module = small.build().eval()
    x = torch.randn(2, 3, 16, 16)
    # fullgraph=True fails on any graph break; the eager backend skips codegen time
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), module(x))
