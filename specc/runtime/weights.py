"""Weight transfer: copy a reference model's tensors into a spec's module by structure.

Names differ between a spec's module (`stage2.add1.branch1.conv1.weight`) and
a hand-written one (`layer2.0.conv1.weight`), but when both describe the same
network their state_dicts list the same tensors in the same order with the
same shapes. Matching on that, and failing at the first tensor that differs,
lets a torchvision checkpoint (pretrained or not) initialise a spec.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


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


def transfer(module: nn.Module, source) -> nn.Module:
    """Copy `source`'s parameters and buffers into `module`, pairing them in order; returns `module`."""
    state = state_of(source)
    ours = list(module.state_dict().items())
    if set(state) == {name for name, _ in ours}:  # the spec's own names (a specc checkpoint): pair by name
        state = {name: state[name] for name, _ in ours}
    elif isinstance(state, Unordered):
        raise WeightsError("a .safetensors file keeps tensors sorted by name, not in module order, and its names "
                           "are not the spec's; save the source as a .pt state_dict "
                           "(torch.save(model.state_dict(), 'weights.pt')) to match it by structure")
    theirs = list(state.items())
    for index, ((name, tensor), (their_name, their_tensor)) in enumerate(zip(ours, theirs)):
        if tuple(tensor.shape) != tuple(their_tensor.shape):
            raise WeightsError(f"tensor {index} differs: the spec's '{name}' is {_shape(tensor)} but the source's "
                               f"'{their_name}' is {_shape(their_tensor)}")
    if len(ours) != len(theirs):
        more, fewer, side = (ours, theirs, "spec") if len(ours) > len(theirs) else (theirs, ours, "source")
        extra_name, extra = more[len(fewer)]
        raise WeightsError(f"the spec has {len(ours)} tensors and the source {len(theirs)}: the {side}'s "
                           f"'{extra_name}' ({_shape(extra)}) has no counterpart")
    with torch.no_grad():
        for (_, tensor), (_, their_tensor) in zip(ours, theirs):
            tensor.copy_(their_tensor)
    return module


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"
