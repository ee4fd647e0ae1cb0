"""How far an epoch has come: tqdm's bar in a terminal, plain lines in logs (CI, nohup, a pipe)."""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Callable

from . import header

# Plain progress lines (stdout not a terminal): every this many seconds or every tenth of an epoch.
LINE_EVERY_S = 30.0
LINE_EVERY_FRACTION = 0.1
LINE_MIN_GAP_S = 5.0  # but not sooner than this after the epoch's start or the last line: a short epoch's own line suffices
BAR_WIDTH_FALLBACK = 80  # when the terminal's size is unknown (reported as 0): tqdm would draw nothing


class Bar:
    """tqdm's bar, at a fixed width where the terminal's size is unknown (tqdm would draw it 0 wide)."""

    def __init__(self, total: int, label: str):
        from tqdm import tqdm
        width = terminal_width()
        self.bar = tqdm(total=total, unit="ex", unit_scale=True, leave=False, desc=label,
                        dynamic_ncols=width is not None, ncols=None if width else BAR_WIDTH_FALLBACK)
        self.shown, self.next_postfix = 0, 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def step(self, done: int, loss_sum, correct, seen: int) -> None:
        self.bar.update(done - self.shown)
        self.shown = done
        now = time.monotonic()
        if now >= self.next_postfix:  # reading the sums syncs the device: once a second at most
            self.next_postfix = now + 1.0
            self.bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}")


class Lines:
    """Plain progress lines for logs: every LINE_EVERY_S seconds or every tenth of the epoch,
    whichever comes first, and never within LINE_MIN_GAP_S of the last one."""

    def __init__(self, total: int, label: str, echo: Callable[[str], None]):
        self.total, self.label, self.echo = total, label, echo
        self.started = self.last_line = time.monotonic()
        self.next_time = self.started + LINE_EVERY_S
        self.every = max(1, math.ceil(total * LINE_EVERY_FRACTION))
        self.next_count = self.every

    def step(self, done: int, loss_sum, correct, seen: int) -> None:
        if done >= self.total or (done < self.next_count and time.monotonic() < self.next_time):
            return  # the epoch's own line follows the last step
        now = time.monotonic()
        if now < self.last_line + LINE_MIN_GAP_S:
            return
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate else 0.0
        self.echo(f"{self.label}  {100 * done / self.total:3.0f}%  {done:,}/{self.total:,}  "
                  f"loss {loss_sum.item() / seen:.3f}  {rate:,.0f} examples/sec  ETA {header.duration(eta)}")
        self.last_line, self.next_time = now, now + LINE_EVERY_S
        while self.next_count <= done:
            self.next_count += self.every


def terminal_width() -> int | None:
    """The width of the terminal tqdm draws on (stderr, else stdout), or None where it is unknown:
    not a terminal, or one that reports 0 columns, as some CI terminals and containers do."""
    for stream in (sys.stderr, sys.stdout):
        try:
            columns = os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            continue
        if columns:
            return columns
    return None
