"""Reports on an analysed Network: one-line checks, per-layer summaries, memory estimates.

Pure arithmetic on the static analysis; no torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..lang.errors import shape_str
from ..network import Network

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class TrainingMemory:
    """Estimated float32 training memory at one batch size, in bytes.

    Saved activations assume autograd keeps every layer's output (and the input)
    for the backward pass, which is an upper bound for in-place activations.
    """

    weights: int
    gradients: int
    optimizer: int  # SGD's momentum buffer: one value per parameter
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


def training_memory(net: Network, batch: int) -> TrainingMemory:
    per_sample = net.activations + _numel(net.input_shape)
    return TrainingMemory(
        weights=FLOAT32_BYTES * (net.param_count + net.buffer_count),
        gradients=FLOAT32_BYTES * net.param_count,
        optimizer=FLOAT32_BYTES * net.param_count,
        activations=FLOAT32_BYTES * per_sample * batch,
    )


def _numel(shape) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def human_count(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def check_line(net: Network) -> str:
    return (f"{net.path}: ok  {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}  "
            f"{net.param_count:,} params  {human_count(net.macs)} MACs  {len(net.layers)} layers")


def summary_dict(net: Network, batch: int) -> dict:
    memory = training_memory(net, batch)
    return {
        "network": net.name, "path": net.path, "batch": batch,
        "input_shape": list(net.input_shape), "output_shape": list(net.output_shape),
        "params": net.param_count, "buffers": net.buffer_count, "macs": net.macs,
        "annotations_checked": net.annotations_checked,
        "layers": [{"path": r.path, "op": r.op, "kind": r.kind, "output_shape": list(r.output_shape),
                    "params": r.params, "buffers": r.buffers, "macs": r.macs, "line": r.line,
                    "activation_bytes": FLOAT32_BYTES * r.activations * batch} for r in net.layers],
        "training_memory_bytes": {"weights": memory.weights, "gradients": memory.gradients,
                                  "optimizer": memory.optimizer, "activations": memory.activations,
                                  "total": memory.total},
    }


def summary_json(net: Network, batch: int) -> str:
    return json.dumps(summary_dict(net, batch), indent=2)


def summary_table(net: Network, batch: int, markdown: bool = False) -> str:
    from tabulate import tabulate  # only the summary needs it; keep `specc check` lean

    rows = [(r.path, r.op, shape_str(r.output_shape), f"{r.params:,}", human_count(r.macs),
             human_bytes(FLOAT32_BYTES * r.activations * batch)) for r in net.layers]
    headers = ("layer", "op", "output", "params", "MACs", f"activations (batch {batch})")
    table = tabulate(rows, headers, tablefmt="github" if markdown else "simple",
                     colalign=("left", "left", "right", "right", "right", "right"))
    memory = training_memory(net, batch)
    title = f"{net.name}: {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}"
    totals = [
        f"params      {net.param_count:,} trainable, {net.buffer_count:,} in buffers",
        f"MACs        {net.macs:,} per sample ({human_count(net.macs)})",
        f"training memory at batch {batch}, float32, SGD with momentum (estimate): {human_bytes(memory.total)}",
        f"  weights {human_bytes(memory.weights)}, gradients {human_bytes(memory.gradients)}, "
        f"optimizer {human_bytes(memory.optimizer)}, saved activations {human_bytes(memory.activations)}",
    ]
    if not net.annotations_checked:
        totals.append(f"note        analysed at {shape_str(net.input_shape)}, not the spec's declared input: "
                      f"its ': SHAPE' annotations were not checked")
    if markdown:
        return "\n".join([f"## {title}", "", table, ""] + [f"- {t.strip()}" for t in totals])
    return "\n".join([title, "", table, ""] + totals)
