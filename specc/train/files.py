"""Writing a run's files so that a crash or a full disk never leaves a half-written one. Torch-free."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from safetensors import SafetensorError


class CheckpointError(Exception):
    pass


def atomic_write(path: Path, write, durable: bool = True) -> None:
    """`write(tmp)`, then rename over `path`: `path` is the old file or the new one, never a mix.

    A failed write (a full disk, a read-only directory, Ctrl-C) removes the
    temporary file; an OSError becomes a CheckpointError saying the old file is intact.
    `durable` also flushes the file and the rename to the disk (two fsyncs, ~10 ms):
    for checkpoints; files rewritten from them (the JSON copies, metrics, curves) skip it.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # best-effort: the file may be gone
            tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, SafetensorError)):
            kept = f"; the previous {path.name} is intact" if path.exists() else ""
            raise CheckpointError(f"cannot write {path}: {_reason(exc)}{kept}") from None
        raise
    if durable:
        _fsync_dir(path.parent)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _fsync_dir(directory: Path) -> None:
    """Makes the rename durable; some file systems cannot open a directory, which only costs durability."""
    with contextlib.suppress(OSError):  # best-effort: the file may be gone
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
