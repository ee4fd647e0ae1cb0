"""The lines `specc train` prints before its first step, and its advice when a run would be long.

Torch-free, so that the first lines (the network and its recipe) appear
before PyTorch is imported, which takes seconds.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from ..lang.errors import shape_str
from ..tools.summary import human_count

# An epoch estimated above this gets a line saying what would shorten it.
LONG_EPOCH_S = 30 * 60
# The epoch length the advice aims at (the suggested --limit and --input).
TARGET_EPOCH_S = 10 * 60
# Sibling specs looked at for "a smaller network of the same family".
MAX_FAMILY_FILES = 24
SMALLER_SIDES = (160, 128, 96, 64, 32)


def plural(n: int, word: str) -> str:
    """`1 epoch`, `2 epochs`, `2 processes`."""
    if n == 1:
        return f"{n:,} {word}"
    return f"{n:,} {word}es" if word.endswith("s") else f"{n:,} {word}s"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def network_line(net) -> str:
    return (f"network  {net.name} ({net.path}): {shape_str(net.input_shape)} -> {shape_str(net.output_shape)}, "
            f"{net.param_count:,} params, {human_count(net.macs)} MACs/sample")


def recipe_line(recipe: dict, init_from: str | None) -> str:
    r = recipe
    optimizer = r["optimizer"] + (f" momentum {r['momentum']}" if r["momentum"] and r["optimizer"] == "sgd" else "")
    return (f"recipe   batch {r['batch']}, {plural(r['epochs'], 'epoch')}, {optimizer} lr {r['lr']} "
            f"({r['schedule']}), {r['init']} init" + (f" then weights from {init_from}" if init_from else "")
            + f", seed {r['seed']}"
            + (f", weight decay {r['weight_decay']}" if r["weight_decay"] else "")
            + (f", label smoothing {r['label_smoothing']}" if r["label_smoothing"] else ""))


def data_line(dataset, notes: tuple[str, ...]) -> str:
    adapted = f" ({'; '.join(notes)})" if notes else ""  # each note is plain text: no nested parentheses
    return (f"data     {dataset.name} from {dataset.source}: {len(dataset.train_labels):,} train / "
            f"{len(dataset.test_labels):,} test, {shape_str(dataset.sample_shape)}{adapted}")


def measuring_line(batch: int, full_batch: int, full_step_guess: float) -> str:
    if batch == full_batch:
        return f"measuring one step at batch {batch} ..."
    return (f"measuring one step at batch {batch} and scaling it to batch {full_batch} "
            f"(a step at batch {full_batch} could take up to {duration(full_step_guess)} here) ...")


def time_line(step_s: float, measured_batch: int, batch: int, steps: int, epochs: int, macs: int) -> str:
    how = (f"{step_s * 1000:.1f} ms/step measured" if measured_batch == batch else
           f"{duration(step_s)}/step scaled from batch {measured_batch}")
    total = f", ~{duration(step_s * steps * epochs)} for {plural(epochs, 'epoch')}" if epochs > 1 else ""
    return (f"time     ~{duration(step_s * steps)} per epoch{total} estimated ({how} x {plural(steps, 'step')}; "
            f"{human_count(macs)} MACs forward+backward)")


# --- what would help a long run -------------------------------------------------------
def long_run_advice(net, epoch_s: float, examples: int, device: str, on_cpu: bool) -> str | None:
    """One line naming what would shorten an epoch estimated at `epoch_s`, or None when it is short."""
    if epoch_s <= LONG_EPOCH_S:
        return None
    helps = []
    if on_cpu:
        helps.append("a GPU (--device cuda)")
    smaller_input = _smaller_input(net, epoch_s)
    if smaller_input:
        helps.append(smaller_input)
    sibling = _smaller_sibling(net, epoch_s)
    if sibling:
        helps.append(sibling)
    limit = max(1, int(examples * TARGET_EPOCH_S / epoch_s))
    if limit < examples:
        helps.append(f"fewer examples (--limit {limit:,}, ~{duration(epoch_s * limit / examples)} per epoch)")
    return f"note     an epoch of {net.name} takes long on {device}; what would help: " + ", ".join(helps)


def _smaller_input(net, epoch_s: float) -> str | None:
    """The largest smaller square --input the spec compiles at whose epoch would take TARGET_EPOCH_S or less
    (time taken as proportional to MACs), else the smallest one it compiles at."""
    if len(net.input_shape) != 3 or not net.macs:
        return None
    from ..lang.errors import SpecError
    from ..network import loads
    channels, height, width = net.input_shape
    best = None
    for side in (s for s in SMALLER_SIDES if s < min(height, width)):
        try:
            smaller = loads(net.source, name=net.name, path=net.path, sources=net.sources,
                            input_shape=(channels, side, side), **net.overrides)
        except SpecError:
            continue
        best = (side, epoch_s * smaller.macs / net.macs)
        if best[1] <= TARGET_EPOCH_S:
            break
    if best is None:
        return None
    side, seconds = best
    return f"a smaller --input ({channels}x{side}x{side}, ~{duration(seconds)} per epoch)"


def _smaller_sibling(net, epoch_s: float) -> str | None:
    """The spec next to this one, of the same family (vgg16 -> vgg11), with the fewest MACs."""
    path = Path(net.path)
    family = re.match(r"[a-z]+", path.stem.lower())
    if not family or not path.parent.is_dir():
        return None
    from ..lang.errors import SpecError
    from ..network import load
    candidates = sorted(p for p in path.parent.glob(f"{family.group()}*.cnn") if p.name != path.name)
    best = None
    for candidate in candidates[:MAX_FAMILY_FILES]:
        try:
            other = load(candidate)
        except SpecError:
            continue
        if other.output_shape == net.output_shape and 0 < other.macs < net.macs and (
                best is None or other.macs < best.macs):
            best = other
    if best is None or not net.macs:
        return None
    return (f"a smaller network of the same family ({best.path}, {human_count(best.macs)} MACs/sample, "
            f"~{duration(epoch_s * best.macs / net.macs)} per epoch)")


def steps_per_epoch(examples: int, batch: int) -> int:
    return math.ceil(examples / batch)
