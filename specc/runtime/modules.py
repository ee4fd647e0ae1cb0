"""The containers a built spec is made of. Importing this module imports torch."""
from __future__ import annotations

import torch
from torch import nn


class Chain(nn.Sequential):
    """A chain of elements (the network itself, or one block call)."""


class Concat(nn.ModuleDict):
    """concat(A | B | ...): every branch sees the input; outputs join on channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.values()], dim=1)


class Add(nn.ModuleDict):
    """add(A | B | ...): every branch sees the input; outputs are summed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = iter(self.values())
        out = next(branches)(x)
        for branch in branches:
            out = out + branch(x)
        return out
