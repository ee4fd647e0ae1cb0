"""Reading spec files: only regular `.cnn` files under a size cap.

A spec's text ends up in error excerpts, so reading an arbitrary file
(`import "/proc/self/environ"`) would print secrets, and a device or FIFO
(`/dev/zero`, a named pipe) would exhaust memory or hang. Everything is
checked before a byte is read: the path, the file type (stat, then fstat on a
non-blocking descriptor, since the file may change in between) and the size.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

SPEC_SUFFIX = ".cnn"
MAX_SPEC_BYTES = 1 << 17  # 128 KiB: 20 times the largest shipped spec; parsing it takes about 1 s at worst
# Pseudo-file systems whose "regular" files are generated on read (secrets, endless data).
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
SPEC_HINT = "specs and imports are regular .cnn text files"


class Unreadable(Exception):
    """Why a path cannot be read as a spec; callers turn it into a located SpecError."""

    def __init__(self, reason: str, hint: str | None = SPEC_HINT):
        super().__init__(reason)
        self.reason, self.hint = reason, hint


def read_spec(path: str | Path) -> str:
    """The text of the spec file at `path`, or Unreadable saying why not."""
    name = checked_name(path, suffix="")
    _check_stat(name)  # first: "it is a directory" says more than "it is not a .cnn file"
    checked_name(name)
    data = _read_capped(name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"it is not UTF-8 text (byte {exc.start})") from None


def checked_name(path: str | Path, suffix: str = SPEC_SUFFIX) -> str:
    """`path` as a string, if the file system can take it and it names a `suffix` file."""
    name = os.fspath(path)
    if "\0" in name:
        raise Unreadable("the path contains a NUL byte", hint=None)
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        raise Unreadable("the path cannot be encoded for this file system", hint=None) from None
    if not name.endswith(suffix):
        raise Unreadable(f"it is not a {suffix} file")
    return name


def _check_stat(name: str) -> None:
    try:
        info = os.stat(name)  # follows symlinks: what would be read
        real = os.path.realpath(name)
    except FileNotFoundError:
        raise Unreadable("no such file", hint=None) from None
    except OSError as exc:
        raise _os_reason(exc) from None
    _check_info(info)
    if name.endswith(SPEC_SUFFIX) and not real.endswith(SPEC_SUFFIX):  # x.cnn linking to another kind of file
        raise Unreadable(f"it links to {real}, which is not a {SPEC_SUFFIX} file")
    if any(real == root or real.startswith(root + "/") for root in SPECIAL_ROOTS):
        raise Unreadable(f"{real} is a system file, not a spec")


def _check_info(info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise Unreadable("it is a directory", hint=None)
    if not stat.S_ISREG(info.st_mode):
        raise Unreadable("it is not a regular file (a device, pipe or socket)")
    if info.st_size > MAX_SPEC_BYTES:
        raise Unreadable(f"it is {info.st_size:,} bytes, more than specc's limit of {MAX_SPEC_BYTES:,}",
                         hint=None)


def _read_capped(name: str) -> bytes:
    # O_NONBLOCK: if a FIFO replaced the file since the stat, open must not wait for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise _os_reason(exc) from None
    try:
        _check_info(os.fstat(fd))
        chunks, size = [], 0
        while size <= MAX_SPEC_BYTES:
            chunk = os.read(fd, MAX_SPEC_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _os_reason(exc) from None
    finally:
        os.close(fd)
    if size > MAX_SPEC_BYTES:
        raise Unreadable(f"it is more than specc's limit of {MAX_SPEC_BYTES:,} bytes", hint=None)
    return b"".join(chunks)


def _os_reason(exc: OSError) -> Unreadable:
    if exc.errno == errno.ELOOP:
        return Unreadable("it is a symlink loop", hint=None)
    if exc.errno == errno.EISDIR:
        return Unreadable("it is a directory", hint=None)
    return Unreadable(exc.strerror or str(exc), hint=None)
