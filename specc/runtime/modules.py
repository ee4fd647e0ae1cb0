"""The containers a built spec is made of, and the few layers torch.nn lacks. Importing this imports torch."""
from __future__ import annotations

import torch
from torch import nn

from ..lang.registry import MERGES


class Chain(nn.Sequential):
    """A chain of elements (the network itself, or one block call)."""


class _Merge(nn.ModuleDict):
    """Branches keyed branch1, branch2, ...; `kind` names the registry entry that knows the merge."""

    kind: str

    @property
    def commutative(self) -> bool:
        """Whether branch order leaves the result unchanged (weights.py may then pair branches in another order)."""
        return MERGES[self.kind].commutative


class Concat(_Merge):
    """concat(A | B | ...): every branch sees the input; outputs join on channels."""

    kind = "concat"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.values()], dim=1)


class _Fold(_Merge):
    """Every branch sees the input; their outputs are folded together with `combine`, in branch order."""

    @staticmethod
    def combine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = iter(self.values())
        out = next(branches)(x)
        for branch in branches:
            out = self.combine(out, branch(x))
        return out


class Add(_Fold):
    """add(A | B | ...): outputs are summed."""

    kind = "add"
    combine = staticmethod(torch.add)


class Mul(_Fold):
    """mul(A | B | ...): outputs are multiplied (broadcasting)."""

    kind = "mul"
    combine = staticmethod(torch.mul)


class Split(_Merge):
    """split(A | B | ...): the channels are chunked evenly among the branches; outputs join on channels."""

    kind = "split"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = x.chunk(len(self), dim=1)
        return torch.cat([branch(chunk) for branch, chunk in zip(self.values(), chunks)], dim=1)


class ChannelShuffle(nn.Module):
    """nn.ChannelShuffle's semantics, written with view/transpose (as torchvision's ShuffleNet) so that
    autograd, channels_last and every backend support it."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels at each position of an NCHW map (torchvision's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Scale(nn.Module):
    """A learned per-channel multiplier (ConvNeXt's layer scale), initialised to `init`."""

    def __init__(self, shape: tuple[int, ...], init: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full(shape, float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


class DropPath(nn.Module):
    """Stochastic depth per sample (torchvision.ops.StochasticDepth(p, "row")): the identity in eval mode."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        # The same draw as torchvision's, so seeded runs of both drop the same samples.
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"
