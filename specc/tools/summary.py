"""Reports on an analysed Network: one-line checks, per-layer summaries, memory estimates.

Pure arithmetic on the static analysis; no torch.
"""
from __future__ import annotations

import json

from ..lang.errors import shape_str
from ..lang.memory import OPTIMIZERS, TrainingMemory, training_memory  # noqa: F401  (the loop imports them here)
from ..network import Network

FLOAT32_BYTES = 4
MAC_CONVENTION = ("multiply-accumulates of conv and linear layers only; 1 MAC = 2 FLOPs; equals torchvision's "
                  "GFLOPS and torch.utils.flop_counter.FlopCounterMode/2")
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
        return f"SGD with momentum {momentum:g}" if momentum else "plain SGD (no momentum)"
    return {"adam": "Adam", "adamw": "AdamW"}[optimizer]


def _memory(net: Network, batch: int, optimizer: str | None) -> tuple[TrainingMemory, str]:
    name, momentum = optimizer_settings(net, optimizer)
    return training_memory(net, batch, optimizer=name, momentum=momentum), describe_optimizer(name, momentum)


# --- the reports ---------------------------------------------------------------------------------
def summary_dict(net: Network, batch: int, optimizer: str | None = None) -> dict:
    memory, described = _memory(net, batch, optimizer)
    return {
        "network": net.name, "path": net.path, "batch": batch,
        "input_shape": list(net.input_shape), "output_shape": list(net.output_shape),
        "params": net.param_count, "buffers": net.buffer_count, "macs": net.macs,
        "mac_convention": MAC_CONVENTION,
        "annotations_checked": net.annotations_checked,
        "layers": [{"path": r.path, "op": r.op, "kind": r.kind, "output_shape": list(r.output_shape),
                    "params": r.params, "buffers": r.buffers, "macs": r.macs, "line": r.line,
                    "activation_bytes": FLOAT32_BYTES * r.activations * batch, "saved_bytes": saved}
                   for r, saved in zip(net.layers, memory.saved_by_layer)],
        "optimizer": described,
        "training_memory_bytes": {"weights": memory.weights, "gradients": memory.gradients,
                                  "optimizer": memory.optimizer, "saved": memory.saved,
                                  "batch": memory.batch_data, "total": memory.total},
    }


def summary_json(net: Network, batch: int, optimizer: str | None = None) -> str:
    return json.dumps(summary_dict(net, batch, optimizer), indent=2)


def summary_table(net: Network, batch: int, markdown: bool = False, optimizer: str | None = None) -> str:
    from tabulate import tabulate  # only the summary needs it; keep `specc check` lean

    memory, described = _memory(net, batch, optimizer)
    rows = [(r.path, r.op, shape_str(r.output_shape), f"{r.params:,}", human_count(r.macs) if r.macs else NOT_COUNTED,
             human_bytes(FLOAT32_BYTES * r.activations * batch), human_bytes(saved))
            for r, saved in zip(net.layers, memory.saved_by_layer)]
    headers = ("layer", "op", "output", "params", "MACs", f"activations (batch {batch})", "saved for backward")
    table = tabulate(rows, headers, tablefmt="github" if markdown else "simple",
                     colalign=("left", "left", "right", "right", "right", "right", "right"))
    title = f"{net.name}: {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}"
    totals = [
        f"params      {net.param_count:,} trainable, {net.buffer_count:,} in buffers",
        f"MACs        {net.macs:,} per sample ({human_count(net.macs)}; {MAC_CONVENTION})",
        f"training memory at batch {batch}, float32, {described} (estimated peak of a training step): "
        f"{human_bytes(memory.total)}",
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
