"""Build phase: an analysed Network -> torch.nn.Module.

Modules are created in the spec's textual order, so parameters register in
that order and state_dicts line up with hand-written equivalents.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict

import torch
from torch import nn

from ..lang.expand import CheckNode, LayerNode, MergeNode, SeqNode
from . import modules
from .memory import check_fits
from .modules import Chain


def build_module(net, device=None, dtype=None) -> nn.Module:
    check_fits(net, device, dtype)  # before torch's allocator sees a 10**12-channel layer
    # Creating modules under the device context allocates weights there directly
    # (device="meta" allocates nothing at all).
    with torch.device(device) if device is not None else contextlib.nullcontext():
        module = _chain(net.graph)
    return module.to(dtype=dtype) if dtype is not None else module


def _chain(seq: SeqNode) -> Chain:
    return Chain(OrderedDict((item.name, _module(item)) for item in seq.items if not isinstance(item, CheckNode)))


def _module(item) -> nn.Module:
    if isinstance(item, LayerNode):
        return item.kind.build(nn, item.args, item.in_shape)
    if isinstance(item, SeqNode):
        return _chain(item)
    assert isinstance(item, MergeNode)
    return item.kind.build(modules, OrderedDict((branch.name, _chain(branch)) for branch in item.branches))
