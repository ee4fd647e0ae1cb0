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

from . import checkpoint, interrupt
from .plot import plotter
from ..lang.errors import TrainError


class RunDir:
    def __init__(self, path: Path, echo: Callable[[str], None]):
        self.path, self.echo = path, echo
        self.last_epoch: int | None = None  # the epoch last.safetensors holds (0: initial weights; None: none)

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
        writable before any training time is spent. A directory this made is removed again when
        that save fails or is interrupted: an aborted start leaves no empty run directory."""
        made = _missing_ancestors(self.path)
        undo = lambda: _remove_if_empty(made, temporary_files_too=True)
        interrupt.clean_up_with(undo)  # a Ctrl-C that ends the process mid-save leaves no directory either
        try:
            with self.writing():
                self.path.mkdir(parents=True, exist_ok=True)
                if new_run and overwrite:
                    checkpoint.clear_run(self.path)
                for line in checkpoint.tidy(self.path):
                    self.echo(f"tidied   {line}")
                if new_run:
                    save_initial()
        except BaseException:
            undo()
            raise
        finally:
            interrupt.clean_up_with(None)

    def save_last(self, model, optimizer, meta: dict) -> None:
        checkpoint.save(self.path, "last", model, optimizer, meta)
        self.last_epoch = meta["epoch"]
        interrupt.on_disk(f"{self.holds(self.last_epoch)}; continue with: specc train --resume {self.path}")

    def save_epoch(self, model, optimizer, meta: dict, improved: bool, title: str) -> None:
        """last (and best) checkpoint, metrics.jsonl and curves.png; each replaced whole or left as it was."""
        with self.writing():
            self.save_last(model, optimizer, meta)
            if improved:
                checkpoint.save(self.path, "best", model, None, meta)
            lines = "".join(json.dumps(row) + "\n" for row in meta["history"])
            # metrics.jsonl is the checkpoint's history, written out: a crash costs nothing the next save won't rewrite
            checkpoint.atomic_write(self.path / "metrics.jsonl", lambda tmp: tmp.write_text(lines), durable=False)
            plotter.draw(meta["history"], self.path / "curves.png", title)

    def finish(self) -> None:
        """Waits for the last curves.png (drawn in a helper process) to be written."""
        with self.writing():
            plotter.finish()

    def save_interrupted(self, model, optimizer, meta: dict, epoch: int) -> None:
        """Ctrl-C in 0-based `epoch`: the weights mid-epoch, for inspection; --resume restarts that
        epoch from `last`, so the message says what `last` holds and how to continue."""
        try:
            checkpoint.save(self.path, "interrupted", model, optimizer, {**meta, "interrupted_in_epoch": epoch + 1})
            saved = f"weights saved to {self.path}/interrupted.safetensors; "
        except checkpoint.CheckpointError as exc:
            saved = f"{exc}; "
        self.echo(f"\ninterrupted in epoch {epoch + 1}: {saved}{self.holds(self.last_epoch or 0)}.\n"
                  f"continue with: specc train --resume {self.path}")

    def holds(self, last_epoch: int) -> str:
        """What `last.safetensors`, the checkpoint --resume continues from, holds."""
        if last_epoch:
            return f"{self.path}/last.safetensors holds epoch {last_epoch}"
        return f"{self.path}/last.safetensors holds the initial weights"


def _missing_ancestors(path: Path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_if_empty(directories: list[Path], temporary_files_too: bool = False) -> None:
    """Removes the directories a failed start made, deepest first, as long as they are empty
    (or, with `temporary_files_too`, hold nothing but a killed save's temporary files)."""
    for directory in directories:  # deepest first, so a parent is empty once its child is gone
        try:
            if temporary_files_too:
                for entry in directory.iterdir():
                    if entry.is_file() and entry.name.endswith(checkpoint.TEMP_SUFFIXES):
                        entry.unlink()
            directory.rmdir()
        except OSError:  # not empty (someone else's files), or already gone
            return
