"""Refusing, before torch allocates anything, a network whose weights cannot fit on the device.

A spec with 10**12 channels checks fine statically (its counts are just
numbers), but building it would fail deep inside torch's allocator, or worse,
push the machine into swap. build() compares the static byte count of its
parameters and buffers with the memory the device has free.
"""
from __future__ import annotations

import os

import torch

from ..lang.errors import SpecError
from ..tools.summary import human_bytes


class NetworkTooLarge(SpecError):
    """The network's weights need more memory than the target device has available."""


def static_bytes(net, dtype: torch.dtype | None = None) -> int:
    """Bytes of the network's parameters and buffers at `dtype` (torch's default dtype if None)."""
    itemsize = torch.empty((), dtype=dtype or torch.get_default_dtype()).element_size()
    return (net.param_count + net.buffer_count) * itemsize


def available_bytes(device: torch.device) -> int | None:
    """Memory free for new tensors on `device`; None where there is no limit to check (meta, mps)."""
    if device.type == "cpu":
        return _available_ram()
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.mem_get_info(device)[0]
    return None


def check_fits(net, device=None, dtype: torch.dtype | None = None) -> None:
    """Raise NetworkTooLarge when `net`'s weights cannot be allocated on `device`."""
    target = torch.device(device) if device is not None else _default_device()
    free = available_bytes(target)
    needed = static_bytes(net, dtype)
    if free is None or needed <= free:
        return
    kind = str(dtype or torch.get_default_dtype()).removeprefix("torch.")
    raise NetworkTooLarge(
        f"the network's weights need {needed:,} bytes ({human_bytes(needed)}) of {kind}, more than the "
        f"{human_bytes(free)} available on {target}", path=net.path,
        hint=f"{net.param_count:,} params and {net.buffer_count:,} buffer values: shrink the channels or "
             f"features, or build on device='meta' to inspect the module without memory")


def _default_device() -> torch.device:
    get = getattr(torch, "get_default_device", None)  # torch >= 2.3
    return get() if get is not None else torch.empty(0).device


def _available_ram() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
