"""curves.png: train loss, train accuracy and test accuracy against epochs, like d2l's plot."""
from __future__ import annotations

from pathlib import Path


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
    from .checkpoint import atomic_write
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
