"""Reports on an analysed Network: one-line checks, per-layer summaries, memory estimates.

The table shows each layer (or, at --depth N, each block call with its totals) with its op as
built (`conv 1x1 64`; `as_written` shows `conv 1x1 c1`). The JSON report is the IR
(specc/tools/ir.py) with a `training` section added. Pure arithmetic on the static analysis; no torch.
"""
from __future__ import annotations

import json

from ..lang.errors import shape_str
from ..lang.memory import OPTIMIZERS, TrainingMemory, train_channels_last, training_memory  # noqa: F401  (the loop imports them here)
from ..lang.registry import MAC_CONVENTION
from ..network import Network
from .rows import rows

FLOAT32_BYTES = 4
NOT_COUNTED = "–"  # the MACs of a layer whose cost specc does not count (activations, pools, norms, merges)
# --optimizer's choices: the recipe's optimizers, and SGD with momentum spelled out
OPTIMIZER_CHOICES = ("sgd", "sgd-momentum", "adam", "adamw")
DEFAULT_MOMENTUM = 0.9  # `--optimizer sgd-momentum` for a spec whose recipe sets none: its state is the same size


def human_count(n: int) -> str:
    for unit, size in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def human_bytes(n: int) -> str:
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def check_line(net: Network) -> str:
    return (f"{net.path}: ok  {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}  "
            f"{net.param_count:,} params  {human_count(net.macs)} MACs  {len(net.layers)} layers")


# --- which optimizer the estimate assumes ------------------------------------------------------
def recipe_optimizer(net: Network) -> tuple[str, float]:
    """The optimizer and momentum of the spec's `train { }` section, or the default recipe's (plain SGD).

    A section `specc check --recipe` would refuse is read as the default here: summary is about the
    network, and `specc train` reports the recipe's own mistakes.
    """
    from ..train.recipe import DEFAULTS  # torch-free
    settings = {key: setting.value for key, setting in net.train_settings.items()}
    optimizer = settings.get("optimizer", DEFAULTS["optimizer"])
    momentum = settings.get("momentum", DEFAULTS["momentum"])
    if optimizer not in OPTIMIZERS or isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
            or not 0 <= momentum < 1:
        return DEFAULTS["optimizer"], DEFAULTS["momentum"]
    return optimizer, float(momentum) if optimizer == "sgd" else 0.0


def optimizer_settings(net: Network, choice: str | None) -> tuple[str, float]:
    """(optimizer, momentum) for --optimizer `choice` (None: the spec's recipe)."""
    if choice is None:
        return recipe_optimizer(net)
    if choice == "sgd-momentum":
        optimizer, momentum = recipe_optimizer(net)
        return "sgd", momentum if optimizer == "sgd" and momentum else DEFAULT_MOMENTUM
    if choice not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_CHOICES)}, got {choice!r}")
    return choice, 0.0


def describe_optimizer(optimizer: str, momentum: float) -> str:
    if optimizer == "sgd":
        return f"SGD with momentum {momentum:g}" if momentum else "plain SGD without momentum"
    return {"adam": "Adam", "adamw": "AdamW"}[optimizer]


def _memory(net: Network, batch: int, optimizer: str | None) -> tuple[TrainingMemory, str]:
    """The estimate for a step of `specc train` on the CPU: float32, in the memory format it picks there."""
    name, momentum = optimizer_settings(net, optimizer)
    memory = training_memory(net, batch, optimizer=name, momentum=momentum,
                             channels_last=train_channels_last(net, "cpu"))
    return memory, describe_optimizer(name, momentum)


def memory_format(net: Network) -> str:
    return "channels_last" if train_channels_last(net, "cpu") else "contiguous"


# --- the reports ---------------------------------------------------------------------------------
def training_section(net: Network, batch: int, optimizer: str | None = None) -> dict:
    """The summary's addition to the IR: memory at `batch` for the optimizer, saved bytes per layer."""
    memory, described = _memory(net, batch, optimizer)
    return {
        "batch": batch, "dtype": "float32", "memory_format": memory_format(net), "optimizer": described,
        "input_bytes": FLOAT32_BYTES * _numel(net.input_shape) * batch,
        "param_bytes": FLOAT32_BYTES * net.param_count, "buffer_bytes": FLOAT32_BYTES * net.buffer_count,
        "macs_per_batch": net.macs * batch,
        "memory_bytes": {"weights": memory.weights, "gradients": memory.gradients,
                         "optimizer": memory.optimizer, "saved": memory.saved,
                         "batch": memory.batch_data, "peak": memory.total},
        "saved_bytes": {r.path: saved for r, saved in zip(net.layers, memory.saved_by_layer)},
    }


def summary_dict(net: Network, batch: int, optimizer: str | None = None) -> dict:
    """The IR document (docs/ir.md) with the `training` section: one format for tools."""
    from .ir import ir_dict
    return {**ir_dict(net), "training": training_section(net, batch, optimizer)}


def summary_json(net: Network, batch: int, optimizer: str | None = None) -> str:
    return json.dumps(summary_dict(net, batch, optimizer), indent=2)


def summary_table(net: Network, batch: int, markdown: bool = False, optimizer: str | None = None,
                  depth: int | None = None, as_written: bool = False) -> str:
    from tabulate import tabulate  # only the summary needs it; keep `specc check` lean

    memory, described = _memory(net, batch, optimizer)
    saved = {r.path: n for r, n in zip(net.layers, memory.saved_by_layer)}
    table_rows = [(r.path, r.written if as_written else r.resolved, shape_str(r.output_shape), f"{r.params:,}",
                   human_count(r.macs) if r.macs else NOT_COUNTED,
                   human_bytes(FLOAT32_BYTES * _numel(r.output_shape) * batch),
                   human_bytes(sum(saved[layer.path] for layer in r.layers)))
                  for r in rows(net, depth)]
    headers = ("layer", "op" + (" (as written)" if as_written else ""), "output", "params", "MACs",
               f"output at batch {batch}", "saved for backward")
    table = tabulate(table_rows, headers, tablefmt="github" if markdown else "simple",
                     colalign=("left", "left", "right", "right", "right", "right", "right"))
    title = f"{net.name}: {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}"
    if depth is not None:
        title += f" (block calls deeper than {depth} folded into their totals)"
    totals = [
        f"input       {shape_str(net.input_shape)} per sample, {human_bytes(FLOAT32_BYTES * _numel(net.input_shape) * batch)} "
        f"at batch {batch} (float32)",
        f"params      {net.param_count:,} trainable, 0 non-trainable: {human_bytes(FLOAT32_BYTES * net.param_count)}; "
        f"buffers {net.buffer_count:,} values: {human_bytes(FLOAT32_BYTES * net.buffer_count)} (float32)",
        f"MACs        {net.macs:,} per sample ({human_count(net.macs)}), {human_count(net.macs * batch)} for the "
        f"batch of {batch} ({MAC_CONVENTION})",
        f"training    {human_bytes(memory.total)}: the estimated peak of a float32 training step on the CPU "
        f"({memory_format(net)}) at batch {batch} with {described}",
        f"  weights {human_bytes(memory.weights)}, gradients {human_bytes(memory.gradients)}, "
        f"optimizer state {human_bytes(memory.optimizer)}, saved for backward {human_bytes(memory.saved)}, "
        f"batch {human_bytes(memory.batch_data)}; the rest is backward's gradients in flight",
    ]
    if not net.annotations_checked:
        totals.append(f"note        analysed at {shape_str(net.input_shape)}, not the spec's declared input: "
                      f"its ': SHAPE' annotations were not checked")
    if markdown:
        return "\n".join([f"## {title}", "", table, ""] + [f"- {t.strip()}" for t in totals])
    return "\n".join([title, "", table, ""] + totals)


def _numel(shape) -> int:
    out = 1
    for side in shape:
        out *= side
    return out
