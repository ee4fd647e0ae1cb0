"""How long a training step takes: measured before the first epoch, within a bound, leaving the run as it was.

The header's `time` line comes from here. A full step of a large network on a
CPU can take minutes, so the measurement is bounded: a step at batch 1 first,
then the largest batch that fits MEASURE_BUDGET_S, scaled to the run's batch.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import torch

from . import header, interrupt

# Longest one measuring step may take: beyond it, a smaller batch is measured and the time scaled.
MEASURE_BUDGET_S = 8.0
# A second measurement (the first at a batch pays one-off costs) when one takes less than this.
REMEASURE_BELOW_S = 0.5
# What a step costs beyond forward+backward (optimizer step, batch slicing), roughly.
STEP_OVERHEAD = 1.1


class Measured(NamedTuple):
    step_s: float  # one training step at the run's batch
    batch: int  # the batch that was measured (smaller when a full step would be long)


def time_step(run, batch: int) -> float:
    """Seconds of one forward+backward of `run`'s model at `batch`, without touching weights, statistics or RNG."""
    images, labels = run.dataset.train_images[:batch], run.dataset.train_labels[:batch]
    model = run.model
    with torch.random.fork_rng(devices=[]):
        was_training = model.training
        model.eval()  # leaves BatchNorm's running statistics alone
        started = time.perf_counter()
        with run.autocast():
            loss = run.loss_fn(model(run.prepare(images)), labels)
        loss.backward()
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return seconds


def measure_step(run) -> Measured:
    """One training step's time at the run's batch, found within about MEASURE_BUDGET_S.

    A step at batch 1 first: a batch costs at most its size times one
    example, so it bounds a full step's time from above. Where that bound
    is within the budget, a full step is measured; else the largest batch
    that fits the budget, and the time scaled to the full batch. A short
    step is measured twice: the first at a batch pays the one-off costs
    of the first call.
    """
    interrupt.doing("measuring a step")
    full = min(run.local_batch, len(run.dataset.train_labels))
    run.echo(header.measuring_line(1, 1, 0.0))
    one = _measured(run, 1)
    batch = full if one * full <= MEASURE_BUDGET_S else max(1, min(full, int(MEASURE_BUDGET_S / one)))
    if batch == 1:
        return Measured(one * full * STEP_OVERHEAD, 1)
    run.echo(header.measuring_line(batch, full, one * full))
    return Measured(_measured(run, batch) * full / batch * STEP_OVERHEAD, batch)


def _measured(run, batch: int) -> float:
    first = time_step(run, batch)
    return min(first, time_step(run, batch)) if first < REMEASURE_BELOW_S else first


def timing_lines(run, device: str) -> list[str]:
    """The header's `time` line, and a `note` line of what would help where an epoch is long."""
    measured = measure_step(run)
    r, n = run.recipe, len(run.dataset.train_labels)
    steps = header.steps_per_epoch(n, r["batch"])
    lines = [header.time_line(measured.step_s, measured.batch, min(run.local_batch, n), steps,
                              r["epochs"] - run.start_epoch, 3 * run.net.macs * n)]
    advice = header.long_run_advice(run.net, measured.step_s * steps, n, device, on_cpu=run.device.type == "cpu")
    return lines + ([advice] if advice else [])
