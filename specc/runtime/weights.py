"""Weight transfer: copy a reference model's tensors into a spec's module by structure.

Names differ between a spec's module (`stage2.add1.branch1.conv1.weight`) and
a hand-written one (`layer2.0.conv1.weight`), so tensors are paired by
position and checked by shape, failing at the first tensor that differs. That
lets a torchvision model or checkpoint (pretrained or not) initialise a spec.

Registration order is not a reliable position: torchvision's ConvNeXt block
registers its layer scale before the layers it scales, and RegNet's block
registers its shortcut before its main branch. So, when the source is a module
and an input shape is known, both sides are ordered by first use in a forward
pass instead, traced on the meta device (no memory, no change to the models).
What the trace cannot settle is the order of a commutative merge's branches
(`proj(x) + f(x)` against `add(main | shortcut)`): for those the reference's
segment is tried against each arrangement of the spec's branches, the written
one first. A state_dict or file has only its own order, which is used as is.

Shapes pair when equal, and also an nn.Linear's O x I weight with a 1x1
convolution's O x I x 1 x 1 (ConvNeXt applies Linear layers channels-last
where a spec writes `conv 1x1`).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple, Union

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves


class WeightsError(Exception):
    """The source does not have the spec's structure; the message names the first difference."""


class Unordered(dict):
    """Tensors whose file does not keep their order (safetensors sorts them): matched by name only."""


def state_of(source) -> dict[str, torch.Tensor]:
    """A state_dict from a module, a mapping of tensors, or a .safetensors/.pt file."""
    if isinstance(source, nn.Module):
        return source.state_dict()
    if isinstance(source, (str, Path)):
        return read_file(Path(source))
    if hasattr(source, "items"):
        return dict(source)
    raise WeightsError(f"cannot take weights from a {type(source).__name__}: give a module, a state_dict or a file")


def read_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        tensors = load_file(str(path))
        return Unordered({k: v for k, v in tensors.items() if "/" not in k})  # not a checkpoint's optimizer/RNG
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)  # no arbitrary pickle
    except Exception as exc:  # torch raises several kinds for foreign or damaged files
        raise WeightsError(f"cannot read {path} as a PyTorch state_dict: {exc}") from None
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]  # the common {"state_dict": ..., "epoch": ...} layout
    if not isinstance(loaded, dict):
        raise WeightsError(f"{path} holds a {type(loaded).__name__}, not a state_dict")
    return loaded


def transfer(module: nn.Module, source, input_shape: tuple[int, ...] | None = None) -> nn.Module:
    """Copy `source`'s parameters and buffers into `module`, pairing them by structure; returns `module`.

    `input_shape` (one sample's shape, such as (3, 224, 224)) lets both models
    be traced so that tensors pair in the order a forward pass uses them.
    """
    state = state_of(source)
    ours = module.state_dict()
    if set(state) == set(ours):  # the spec's own names (a specc checkpoint): pair by name
        leaves = [_Leaf(index, name, tensor) for index, (name, tensor) in enumerate(ours.items())]
        pairs = _Pairing([(name, state[name]) for name in ours], len(ours)).run(leaves)
    elif isinstance(state, Unordered):
        raise WeightsError("a .safetensors file keeps tensors sorted by name, not in module order, and its names "
                           "are not the spec's; save the source as a .pt state_dict "
                           "(torch.save(model.state_dict(), 'weights.pt')) to match it by structure")
    else:
        our_order, their_order = list(ours), list(state)
        if isinstance(source, nn.Module) and input_shape is not None:
            traced = first_use_order(module, input_shape), first_use_order(source, input_shape)
            if None not in traced:  # one order for both sides, or a BatchNorm's tensors would not line up
                our_order, their_order = traced
        tree = spec_tree(module, [(name, ours[name]) for name in our_order])
        pairs = _Pairing([(name, state[name]) for name in their_order], len(ours)).run(tree)
    with torch.no_grad():
        for tensor, their_tensor in pairs:
            tensor.copy_(their_tensor.reshape(tensor.shape))  # a Linear's O x I into a conv's O x I x 1 x 1
    return module


# --- ordering by first use ----------------------------------------------------
class _FirstUse(TorchFunctionMode):
    """Records, for the tensors in `wanted` (by identity), the order in which torch calls first take them."""

    def __init__(self, wanted: set[int]):
        super().__init__()
        self.wanted, self.rank = wanted, {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for leaf in tree_leaves((args, kwargs or {})):
            if isinstance(leaf, torch.Tensor) and id(leaf) in self.wanted:
                self.rank.setdefault(id(leaf), len(self.rank))
        return func(*args, **(kwargs or {}))


class _Traced(nn.Module):
    """Runs `model` under the recorder, so that only the forward pass is recorded, not the reparametrisation."""

    def __init__(self, model: nn.Module, recorder: _FirstUse):
        super().__init__()
        self.model, self.recorder = model, recorder

    def forward(self, x):
        with self.recorder:
            return self.model(x)


def first_use_order(model: nn.Module, input_shape: tuple[int, ...]) -> list[str] | None:
    """`model`'s state_dict names in the order a training-mode forward pass first uses them, tensors it never
    uses last in registration order; None when the model does not run on the meta device."""
    held = model.state_dict(keep_vars=True)  # the tensors themselves: tied ones share an identity
    every = {**dict(model.named_parameters(remove_duplicate=False)),
             **dict(model.named_buffers(remove_duplicate=False))}
    metas = {id(t): torch.empty_like(t, device="meta") for t in every.values()}
    recorder = _FirstUse({id(m) for m in metas.values()})
    floats = [t for t in every.values() if t.is_floating_point()]
    x = torch.empty((2, *input_shape), device="meta", dtype=floats[0].dtype if floats else torch.float32)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.train()  # BatchNorm uses num_batches_tracked only in training
        with torch.no_grad():
            # The meta copies take the in-place updates (running statistics); the model's own tensors are untouched.
            torch.func.functional_call(_Traced(model, recorder),
                                       {f"model.{name}": metas[id(t)] for name, t in every.items()}, (x,))
    except Exception:  # data-dependent control flow, ops without meta kernels: registration order will do
        return None
    finally:
        for m, training in modes:
            m.training = training
    rank = {name: recorder.rank.get(id(metas[id(t)]), math.inf) if id(t) in metas else math.inf
            for name, t in held.items()}
    return sorted(held, key=rank.__getitem__)  # stable: unused (and tied) tensors keep registration order


# --- the spec's tree of merges ------------------------------------------------
class _Leaf(NamedTuple):
    index: int  # position in the spec's order, for messages
    name: str
    tensor: torch.Tensor


@dataclass
class _Merge:
    """A merge module's tensors: a run per branch, each a list of leaves and nested merges."""

    path: str
    module: nn.Module
    branches: list[tuple[str, list]] = field(default_factory=list)

    @property
    def commutative(self) -> bool:
        return getattr(self.module, "commutative", False) is True  # the merge's registry entry says

    @cached_property
    def size(self) -> int:
        return sum(_size(nodes) for _, nodes in self.branches)

    def describe(self) -> str:
        where = f"'{self.path}'" if self.path else "at the top"
        return f"{type(self.module).__name__.lower()} {where}"


Node = Union[_Leaf, _Merge]


def _size(nodes: list[Node]) -> int:
    return sum(1 if isinstance(node, _Leaf) else node.size for node in nodes)


def spec_tree(module: nn.Module, items: list[tuple[str, torch.Tensor]]) -> list[Node]:
    """Group the spec's ordered tensors by the merges (nn.ModuleDicts of branches) on their module paths."""
    merges = {path: m for path, m in module.named_modules() if isinstance(m, nn.ModuleDict)}
    root: list[Node] = []
    stack: list[tuple[tuple[str, str] | None, list[Node]]] = [(None, root)]  # (merge path, branch), its nodes
    for index, (name, tensor) in enumerate(items):
        route = _route(name, merges)
        depth = 0
        while depth < len(route) and depth + 1 < len(stack) and stack[depth + 1][0] == route[depth]:
            depth += 1
        del stack[depth + 1:]
        for merge_path, branch in route[depth:]:
            nodes = stack[-1][1]
            if not (nodes and isinstance(nodes[-1], _Merge) and nodes[-1].path == merge_path):
                nodes.append(_Merge(merge_path, merges[merge_path]))
            nodes[-1].branches.append((branch, []))
            stack.append(((merge_path, branch), nodes[-1].branches[-1][1]))
        stack[-1][1].append(_Leaf(index, name, tensor))
    return root


def _route(name: str, merges: dict[str, nn.Module]) -> list[tuple[str, str]]:
    """The (merge path, branch name) pairs from the root down to the tensor `name`."""
    parts = name.split(".")
    return [(".".join(parts[:i]), parts[i]) for i in range(len(parts) - 1) if ".".join(parts[:i]) in merges]


# --- pairing ------------------------------------------------------------------
class _Problem(NamedTuple):
    message: str
    ambiguous: bool = False  # shapes fit, in more than one way


Pairs = list[tuple[torch.Tensor, torch.Tensor]]  # (the spec's tensor, the source's)
MAX_PERMUTED = 7  # branches with tensors; beyond that 7! arrangements is too many to try


class _Pairing:
    """Walks the spec's tree along the source's ordered tensors, one source tensor per spec tensor."""

    def __init__(self, theirs: list[tuple[str, torch.Tensor]], n_ours: int):
        self.theirs, self.n_ours = theirs, n_ours

    def run(self, tree: list[Node]) -> Pairs:
        got = self.seq(tree, 0)
        if isinstance(got, _Problem):
            raise WeightsError(got.message)
        if len(self.theirs) > self.n_ours:
            extra_name, extra = self.theirs[self.n_ours]
            raise WeightsError(f"the spec has {self.n_ours} tensors and the source {len(self.theirs)}: the source's "
                               f"'{extra_name}' ({_shape(extra)}) has no counterpart")
        return got

    def seq(self, nodes: list[Node], at: int) -> Pairs | _Problem:
        pairs: Pairs = []
        for node in nodes:
            got = self.leaf(node, at) if isinstance(node, _Leaf) else self.merge(node, at)
            if isinstance(got, _Problem):
                return got
            pairs += got
            at += 1 if isinstance(node, _Leaf) else node.size
        return pairs

    def leaf(self, leaf: _Leaf, at: int) -> Pairs | _Problem:
        if at >= len(self.theirs):
            return _Problem(f"the spec has {self.n_ours} tensors and the source {len(self.theirs)}: the spec's "
                            f"'{leaf.name}' ({_shape(leaf.tensor)}) has no counterpart")
        their_name, their_tensor = self.theirs[at]
        if not _fits(leaf.tensor.shape, their_tensor.shape):
            return _Problem(f"tensor {leaf.index} differs: the spec's '{leaf.name}' is {_shape(leaf.tensor)} but "
                            f"the source's '{their_name}' is {_shape(their_tensor)}")
        return [(leaf.tensor, their_tensor)]

    def arrange(self, branches: list[tuple[str, list]], at: int) -> Pairs | _Problem:
        """The branches' runs one after another from `at`, in the order given."""
        pairs: Pairs = []
        for _, nodes in branches:
            got = self.seq(nodes, at)
            if isinstance(got, _Problem):
                return got
            pairs += got
            at += _size(nodes)
        return pairs

    def merge(self, merge: _Merge, at: int) -> Pairs | _Problem:
        written = self.arrange(merge.branches, at)
        if not isinstance(written, _Problem) or written.ambiguous or not merge.commutative:
            return written
        weighted = [branch for branch in merge.branches if _size(branch[1])]  # empty ones pair the same anywhere
        if len(weighted) > MAX_PERMUTED:
            return written
        fitting = []
        for order in itertools.islice(itertools.permutations(weighted), 1, None):  # the first is the written one
            got = self.arrange(list(order), at)
            if not isinstance(got, _Problem) or got.ambiguous:  # a nested ambiguity still fits here
                fitting.append((order, got))
        if len(fitting) == 1:
            return fitting[0][1]
        if fitting:
            ways = " or ".join(self.describe(order, at) for order, _ in fitting)
            return _Problem(f"the pairing is ambiguous: the spec's {merge.describe()} pairs with the source by "
                            f"shapes as {ways}; write its branches in the order the source computes them",
                            ambiguous=True)
        return written

    def describe(self, order: tuple[tuple[str, list], ...], at: int) -> str:
        """One arrangement, as each branch and the source tensor its run starts at."""
        starts = []
        for branch, nodes in order:
            starts.append(f"{branch}='{self.theirs[at][0]}'")
            at += _size(nodes)
        return "(" + ", ".join(starts) + ")"


def _fits(ours: torch.Size, theirs: torch.Size) -> bool:
    """Equal shapes, or O x I against O x I x 1 x 1 either way round."""
    a, b = tuple(ours), tuple(theirs)
    return a == b or (len(a), len(b)) in ((2, 4), (4, 2)) and (a + (1, 1) == b or a == b + (1, 1))


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"
