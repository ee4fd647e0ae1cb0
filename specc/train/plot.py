"""curves.png: train loss, train accuracy and test accuracy against epochs, like d2l's plot.

matplotlib takes about 0.7 s to import and 0.15 s to draw: a tenth of a
whole one-epoch LeNet run. So a run draws its curves in a helper process
(`python -m specc.train.plot`), started first thing: it imports matplotlib
on the CPU's idle core while the run imports PyTorch and loads the data, then
draws each epoch's curves while the run trains on. The run collects the
helper's answer before the next drawing and before it ends, so a failed
write is still an error of the run; where the helper cannot start or dies,
the run draws the curves itself. Torch-free.
"""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from pathlib import Path

from .files import CheckpointError, atomic_write


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.plot(epochs, [row["train_loss"] for row in history], label="train loss")
    ax.plot(epochs, [row["train_acc"] for row in history], "m--", label="train acc")
    ax.plot(epochs, [row["test_acc"] for row in history], "g-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.set_xlim(0.5, max(epochs) + 0.5)
    ax.set_title(title, parse_math=False)  # a name is plain text: `le$\x$` must not reach mathtext
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), durable=False)  # redrawn every epoch
    finally:
        plt.close(fig)


class Plotter:
    """The helper process, one per process (runs one after another share it)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.pending: dict | None = None  # the drawing the helper is working on
        self.failed = False  # could not start, or died: draw in this process

    def start(self) -> None:
        if self.proc is not None or self.failed:
            return
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "specc.train.plot"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError:
            self.failed = True
            return
        atexit.register(self.close)

    def draw(self, history: list[dict], path: Path, title: str) -> None:
        """Draws (in the helper, when it runs) and returns at once; a failed write surfaces at finish()."""
        self.finish()
        # absolute: the helper keeps the working directory it started in
        job = {"history": history, "path": os.path.abspath(path), "title": title}
        self.start()
        if self.proc is None:
            plot_curves(history, path, title)
            return
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except OSError:  # the helper is gone
            self._give_up()
            plot_curves(history, path, title)
            return
        self.pending = job

    def finish(self) -> None:
        """Waits for the drawing in progress; raises CheckpointError when its write failed."""
        job, self.pending = self.pending, None
        if job is None:
            return
        answer = self.proc.stdout.readline()
        reply = json.loads(answer) if answer.startswith("{") else {"crashed": True}
        if "error" in reply:
            raise CheckpointError(reply["error"])
        if reply.get("crashed"):  # draw here, where a bug shows its traceback
            self._give_up()
            plot_curves(job["history"], Path(job["path"]), job["title"])

    def _give_up(self) -> None:
        self.close()
        self.proc, self.failed = None, True

    def close(self) -> None:
        """Ends the helper: after the drawing in progress, if any (an interrupted run's last curves)."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()  # the helper ends at the end of its input
            if self.pending is None:
                self.proc.kill()  # idle, or still importing matplotlib: nothing to wait for
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


plotter = Plotter()


def serve() -> None:
    """The helper: one JSON job per input line, one JSON answer per output line, until the input ends."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; this ends with its input
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401  (the import is what takes long: do it before the first job)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            plot_curves(job["history"], Path(job["path"]), job["title"])
            answer = {"ok": True}
        except CheckpointError as exc:
            answer = {"error": str(exc)}
        except Exception:  # a bug: the run draws this one itself and shows it
            answer = {"crashed": True}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
