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


# --- the oracle for training-memory estimates ------------------------------------------------------
ORACLE_THREADS = 1  # fixed, so a measurement is the same on every machine; see measure_training_peaks


def measure_training_peaks(net, batches, *, optimizer: str = "sgd", momentum: float = 0.0,
                           weight_decay: float = 0.0, threads: int = ORACLE_THREADS,
                           channels_last: bool = False) -> dict[int, int]:
    """The CPU allocator's peak bytes during a steady training step of `net` at each batch size.

    The step is the one specc's training loop takes (train mode, forward, cross-entropy,
    zero_grad(set_to_none=True), backward, optimizer step), float32 on the CPU. A first step at
    batches[0] creates the gradients and the optimizer state; each batch size is then measured
    on the step after another step, as the loop's steady state has them. Everything is allocated
    inside one profiler session (with profile_memory=True), so the running sum of its allocation
    events is exactly the bytes torch holds. The thread count is fixed (`threads`; pass the same to
    training_memory): PyTorch runs a 1x1 convolution below batch 16 with oneDNN only when it has
    more than one thread, and oneDNN's weight gradient on maps of under 9 positions takes a buffer
    per thread; at a fixed count the peak is the same on every run (one thread also keeps a busy
    machine from slowing the measurement down). Weights are constants rather than initialised:
    memory does not depend on their values. `channels_last`: the model and each batch in that memory
    format, as the loop has them where it trains so (an image input).
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            model = _constant_model(net)
            layout = torch.channels_last if channels_last and len(net.input_shape) == 3 else torch.contiguous_format
            model = model.to(memory_format=layout)
            step = _training_step(model, optimizer, momentum, weight_decay)
            plan = [(batches[0], "warm-up")] + [(b, f"specc.step.{i}") for i, b in enumerate(batches)]
            x = y = None
            for batch, mark in plan:
                # the loop replaces its batch before each step
                x = torch.randn(batch, *net.input_shape).contiguous(memory_format=layout)
                y = torch.randint(0, net.output_shape[0], (batch,))
                with record_function(mark):
                    step(x, y)
            del x, y, step, model
    finally:
        torch.set_num_threads(previous)
    return _peaks(prof, batches)


def _constant_model(net):
    model = net.build(device="meta").to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.fill_(0.01)
    return model.train()


def _training_step(model, optimizer: str, momentum: float, weight_decay: float):
    """specc.train.loop's step, keeping `out` and `loss` alive into the next step as its loop does."""
    params = list(model.parameters())
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=0.01, momentum=momentum, weight_decay=weight_decay)
    else:
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer]
        opt = cls(params, lr=1e-3, weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    held = {}

    def step(x, y):
        held["out"] = out = model(x)
        held["loss"] = loss = loss_fn(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _peaks(prof, batches) -> dict[int, int]:
    """Each marked step's highest running total of the session's allocations."""
    allocations, windows = [], {}
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        extra = event.extra_fields
        if type(extra).__name__ == "_ExtraFields_Allocation":
            allocations.append((event.start_time_ns, extra.alloc_size))
        elif event.name.startswith("specc.step."):
            windows[int(event.name.rsplit(".", 1)[1])] = (event.start_time_ns, event.end_time_ns)
        stack.extend(event.children)
    allocations.sort(key=lambda a: a[0])
    peaks = dict.fromkeys(range(len(batches)), 0)
    live = 0
    for time_ns, size in allocations:
        live += size
        for i, (start, end) in windows.items():
            if start <= time_ns <= end:
                peaks[i] = max(peaks[i], live)
    return {batch: peaks[i] for i, batch in enumerate(batches)}
