"""Ctrl-C within seconds at any moment of `specc train`, with a message saying what was saved.

Python runs its SIGINT handler between bytecodes only, so a Ctrl-C during one
long C++ call (a VGG-16 step takes minutes on a CPU) would wait for the call
to end. `guard()` keeps Python's handler, so wherever the main thread runs
Python code a Ctrl-C is a KeyboardInterrupt as usual, whose handlers save what
they can and say so; and it has the signal also written to a pipe
(`signal.set_wakeup_fd`), which a watchdog thread reads. When the main thread
has not taken the KeyboardInterrupt within GRACE_S (it is inside such a
call), or on a second Ctrl-C, the watchdog prints what is on disk and how to
continue, and ends the process. Every save is atomic, so what that leaves is
the previous checkpoint and at most a temporary file, which the next run
removes.

Torch-free: the guard is in place before PyTorch is imported.
"""
from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from typing import Callable

GRACE_S = 2.0
POLL_S = 0.1
EXIT_STATUS = 130  # 128 + SIGINT, as a shell reports a process killed by Ctrl-C


class Status:
    """What the command is doing and what is on disk: the words a Ctrl-C prints."""

    def __init__(self):
        self.phase = "starting"
        self.saved = "nothing was saved"
        self.taken = False  # the main thread caught the KeyboardInterrupt and is saving or explaining
        self.explained = False  # the message has been printed
        self.cleanup: Callable[[], None] | None = None  # undoes a half-made start, if the watchdog ends it

    def message(self) -> str:
        return f"\ninterrupted while {self.phase}: {self.saved}"


status = Status()


def doing(phase: str) -> None:
    status.phase = phase


def on_disk(saved: str) -> None:
    status.saved = saved


def clean_up_with(undo: Callable[[], None] | None) -> None:
    """What the watchdog runs before ending the process (None: nothing), e.g. removing a run
    directory made a moment ago whose first checkpoint was still being written."""
    status.cleanup = undo


def taken() -> None:
    """The main thread handles the interrupt: the watchdog waits for it instead of ending the process."""
    status.taken = True


def explained() -> None:
    status.explained = True


@contextlib.contextmanager
def guard(echo: Callable[[str], None]):
    """Ctrl-C handled as the module says, for the duration of the block (main thread, POSIX only)."""
    global status
    status = Status()
    if (os.name != "posix" or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield  # elsewhere (or under a handler of someone else's) Ctrl-C works as Python's default
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd's requirement: a signal handler must never block
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    stop = threading.Event()
    watchdog = threading.Thread(target=_watch, args=(read_end, stop, echo), name="specc-ctrl-c", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        stop.set()
        watchdog.join()
        os.close(read_end)
        os.close(write_end)


def _watch(read_end: int, stop: threading.Event, echo: Callable[[str], None]) -> None:
    deadline = None
    while not stop.is_set():
        ready, _, _ = select.select([read_end], [], [], POLL_S)
        signals = os.read(read_end, 64) if ready else b""
        ctrl_cs = signals.count(bytes([signal.SIGINT]))
        if ctrl_cs and deadline is not None or ctrl_cs > 1:  # a second Ctrl-C: the user wants out now
            _end(echo)
        elif ctrl_cs:
            deadline = time.monotonic() + GRACE_S  # the main thread's KeyboardInterrupt is on its way
        elif deadline is not None and not status.taken and time.monotonic() > deadline and not stop.is_set():
            _end(echo)  # the main thread is inside one long call


def _end(echo: Callable[[str], None]) -> None:
    if status.cleanup is not None:
        try:
            status.cleanup()
        except OSError:  # best effort: the next run tidies what is left
            pass
    try:
        if not status.explained:
            echo(status.message())
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # stdout is a closed pipe: end all the same
        pass
    os._exit(EXIT_STATUS)
