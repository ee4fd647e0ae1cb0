"""A run directory: what a run writes, written so that nothing is lost.

A new run refuses a directory that already holds a run (unless told to
replace it); every file is replaced whole (checkpoint.atomic_write); a failed
write is a TrainError naming the file, with the previous checkpoint intact;
what a killed save left is tidied on the next run; and a new run saves its
initial weights as `last` at epoch 0, so `--resume` works even after a Ctrl-C
in the first epoch.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable

from . import checkpoint
from ..lang.errors import TrainError


class RunDir:
    def __init__(self, path: Path, echo: Callable[[str], None]):
        self.path, self.echo = path, echo

    def __str__(self) -> str:
        return str(self.path)

    def refuse_existing(self, overwrite: bool) -> None:
        """A new run never silently replaces another: its checkpoints and metrics would be lost."""
        found = checkpoint.holds_run(self.path)
        if found and not overwrite:
            raise TrainError(f"{self.path} already holds a run ({', '.join(found)}); continue it with "
                             f"`specc train --resume {self.path}`, or pass --overwrite to replace it")

    @contextlib.contextmanager
    def writing(self):
        """A failed write (read-only directory, full disk) is a TrainError naming the file."""
        try:
            yield
        except checkpoint.CheckpointError as exc:
            raise TrainError(str(exc)) from None
        except OSError as exc:
            name = f" {exc.filename}" if exc.filename else ""
            raise TrainError(f"cannot write{name} in {self.path}: {exc.strerror or exc}") from None

    def prepare(self, new_run: bool, overwrite: bool, save_initial: Callable[[], None]) -> None:
        """Creates the directory and tidies what a killed save left. A new run (after --overwrite
        clears the old one's files) saves its initial weights, which also proves the directory
        writable before any training time is spent."""
        with self.writing():
            self.path.mkdir(parents=True, exist_ok=True)
            if new_run and overwrite:
                checkpoint.clear_run(self.path)
            for line in checkpoint.tidy(self.path):
                self.echo(f"tidied   {line}")
            if new_run:
                save_initial()

    def save_epoch(self, model, optimizer, meta: dict, improved: bool, title: str) -> None:
        """last (and best) checkpoint, metrics.jsonl and curves.png; each replaced whole or left as it was."""
        with self.writing():
            checkpoint.save(self.path, "last", model, optimizer, meta)
            if improved:
                checkpoint.save(self.path, "best", model, None, meta)
            lines = "".join(json.dumps(row) + "\n" for row in meta["history"])
            checkpoint.atomic_write(self.path / "metrics.jsonl", lambda tmp: tmp.write_text(lines))
            from .plot import plot_curves
            plot_curves(meta["history"], self.path / "curves.png", title)

    def save_interrupted(self, model, optimizer, meta: dict, epoch: int) -> None:
        """Ctrl-C in 0-based `epoch`: the weights mid-epoch, for inspection; --resume restarts that
        epoch from `last`, so the message says what `last` holds and how to continue."""
        try:
            checkpoint.save(self.path, "interrupted", model, optimizer, {**meta, "interrupted_in_epoch": epoch + 1})
            saved = f"weights saved to {self.path}/interrupted.safetensors; "
        except checkpoint.CheckpointError as exc:
            saved = f"({exc}) "
        completed = (f"completed epochs are in {self.path}/last.safetensors" if meta["epoch"] else
                     f"{self.path}/last.safetensors holds the initial weights")
        self.echo(f"\ninterrupted in epoch {epoch + 1}: {saved}{completed}.\n"
                  f"continue with: specc train --resume {self.path}")
