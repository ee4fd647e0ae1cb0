"""specc's MACs are PyTorch's FLOPs / 2, for every shipped spec, total and layer by layer.

The convention (docs/language.md, "Costs"): multiply-adds of conv and fc layers
only, bias additions not counted, 1 MAC = 2 FLOPs. PyTorch's
`torch.utils.flop_counter.FlopCounterMode` counts exactly those (convolution,
mm/addmm/bmm) at 2 FLOPs per multiply-add, so a forward pass of the built module
must count 2 x `net.macs`. The count depends only on shapes, so the module is
built on the meta device: nothing is allocated, and RegNetY-128GF costs no more
than LeNet.
"""
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import specc

SPECS = Path(__file__).resolve().parents[1] / "specs"
SHIPPED = sorted(SPECS.glob("*.cnn")) + sorted((SPECS / "torchvision").glob("*.cnn"))


def counted_flops(module: torch.nn.Module, input_shape) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's total for one batch-1 forward, and its count per module path."""
    x = torch.empty((1, *input_shape), device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    # Keys are the root's class name, then the module path: "Chain.stem1.conv1".
    root = type(module).__name__
    per_module = {name.removeprefix(root).removeprefix("."): sum(ops.values())
                  for name, ops in counter.get_flop_counts().items() if name != "Global"}
    return counter.get_total_flops(), per_module


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SPECS)))
def test_macs_are_flop_counter_flops_over_two(path):
    net = specc.load(path)
    module = net.build(device="meta").eval()
    total, per_module = counted_flops(module, net.input_shape)
    assert total == 2 * net.macs, f"FlopCounterMode {total:,} FLOPs, specc {net.macs:,} MACs"
    # Layer by layer, where a layer is a module of its own (merges contain their branches,
    # whose layers have rows of their own): conv and fc carry the whole count, every other
    # layer (shown as `–` in the summary) costs PyTorch's counter nothing either.
    leaves = {name for name, m in module.named_modules() if not any(m.children())}
    rows = [row for row in net.layers if row.path in leaves]
    wrong = [(row.path, row.kind, row.macs, per_module.get(row.path, 0) / 2)
             for row in rows if per_module.get(row.path, 0) != 2 * row.macs]
    assert not wrong, f"(layer, kind, specc MACs, FlopCounterMode / 2): {wrong[:5]}"
    assert sum(row.macs for row in rows) == net.macs  # no cost hides in a row that is not a leaf


def test_the_counter_sees_grouped_convolutions_as_specc_does():
    """A depthwise conv costs channels x k x k per output position, not channels^2 x k x k:
    the per-spec test above could pass with both sides wrong only if specc and PyTorch agreed
    on a mistake, so pin one case by hand."""
    net = specc.loads("input 8x10x10\nconv 3x3 8 p1 g8 bias=false -> flatten -> fc 5", name="dw")
    conv, fc = 8 * 10 * 10 * 3 * 3, 800 * 5
    assert net.macs == conv + fc
    total, _ = counted_flops(net.build(device="meta").eval(), net.input_shape)
    assert total == 2 * (conv + fc)
