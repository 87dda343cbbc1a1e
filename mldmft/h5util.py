"""Crash-safe HDF5 writing shared by every mldmft file type.

A file is written under a temporary name (``<name>.tmp<pid>``) and renamed into place only when
complete, so a killed process never leaves a truncated file under the real name. A long job that
writes one output (database generation, a DMFT sweep) holds :func:`run_lock` on it, so a second
run to the same output is refused at once, and under that lock removes the temporary files a
killed run left behind (:func:`remove_tmp_litter`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py

__all__ = ["atomic_path", "atomic_h5", "write_text_atomic", "replace_atomic", "write_header",
           "open_h5", "run_lock", "RunLockedError", "remove_tmp_litter", "tmp_name",
           "read_errors", "read_h5"]

#: What h5py raises on a damaged file (a bad header, heap or B-tree, an unreadable chunk): it
#: maps HDF5's error stack onto these built-in types, mostly at the first access, not at open.
_READ_ERRORS = (OSError, RuntimeError, KeyError)


def tmp_name(path: str | Path) -> Path:
    """The temporary name ``<name>.tmp<pid>`` under which ``path`` is written before renaming."""
    path = Path(path)
    return path.with_name(path.name + f".tmp{os.getpid()}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """``with atomic_path(path) as tmp: write(tmp)`` -- the file is written under its temporary
    name (:func:`tmp_name`) and renamed to ``path`` only when the block succeeds; otherwise the
    temporary file is removed. A reader never sees a half-written ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """``with atomic_h5(path) as f: ...`` writes ``f`` and renames it to ``path`` on success."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` under its temporary name, then rename it into place."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def replace_atomic(src: str | Path, path: str | Path) -> Path:
    """Copy the file ``src`` to ``path`` under its temporary name, then rename it into place
    (a reader never sees a half-copied ``path``)."""
    import shutil

    with atomic_path(path) as tmp:
        shutil.copyfile(src, tmp)
    return Path(path)


def write_header(f: h5py.File, schema: str, version: int) -> None:
    """Schema name and version, package version and creation time as root attributes."""
    from . import __version__

    f.attrs["schema"] = schema
    f.attrs["schema_version"] = version
    f.attrs["package_version"] = __version__
    f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")


def open_h5(path: str | Path, hint: str = "") -> h5py.File:
    """Open ``path`` read-only; an unreadable (truncated, corrupt, non-HDF5) file raises
    :class:`~mldmft.h5schema.SchemaError` naming it, with ``hint`` appended."""
    from .h5schema import SchemaError

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise SchemaError(f"{path}: not a readable HDF5 file ({err}){hint}") from None


class RunLockedError(ValueError):
    """Another live run holds the lock on an output."""


#: Lock files held by this process (a lock naming this pid but not listed here was left by an
#: earlier process that had the same pid, e.g. in a container).
_HELD: set[Path] = set()


def _lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_lock(lock: Path) -> dict | None:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return None


def _holder(info: dict | None) -> str:
    if not info:
        return "an unknown process (unreadable lock file)"
    return (f"pid {info.get('pid')} on host {info.get('host')} (started "
            f"{info.get('started', '?')}: {info.get('command', '?')})")


@contextmanager
def run_lock(target: str | Path, command: str = "") -> Iterator[Path]:
    """Hold the lock file ``<target>.lock`` while writing ``target``.

    The lock is created with ``O_CREAT | O_EXCL`` (atomic, also on NFS v3+) and holds the pid,
    host name, start time and ``command`` as JSON. A lock left by a dead process on this host
    (stale: the pid no longer exists) is taken over; a lock held by a live process, or by a
    process on another host (whose liveness cannot be checked from here), raises
    :class:`RunLockedError` naming the holder. The lock is removed on exit.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(target)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            info = _read_lock(lock)
            pid = info.get("pid") if info is not None else None
            stale = (isinstance(pid, int) and info.get("host") == me["host"]
                     and (not _pid_alive(pid)
                          or (pid == me["pid"] and lock.resolve() not in _HELD)))
            if not stale:
                raise RunLockedError(
                    f"{target} is being written by another run: {_holder(info)}; wait for it to "
                    f"finish, or delete {lock} if that run is gone") from None
            try:
                lock.unlink()  # stale: its process is dead
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(me))
        _HELD.add(lock.resolve())
        break
    else:
        raise RunLockedError(f"could not take the lock {lock}; another run keeps creating it")
    try:
        yield lock
    finally:
        _HELD.discard(lock.resolve())
        info = _read_lock(lock)
        if info is not None and info.get("pid") == me["pid"] and info.get("host") == me["host"]:
            lock.unlink(missing_ok=True)


def remove_tmp_litter(path: str | Path) -> list[Path]:
    """Delete the temporary files ``<name>.tmp<pid>`` of ``path`` left by killed writers.

    Call only while holding :func:`run_lock` on the output they belong to (no other writer is
    running then). Returns the removed paths.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(re.escape(path.name) + r"\.tmp\d+")
    removed = []
    for p in path.parent.iterdir():
        if pattern.fullmatch(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
@contextmanager
def read_errors(path: str | Path, hint: str = "") -> Iterator[None]:
    """``with read_errors(path): ...`` turns an HDF5 read error inside the block (a corrupt or
    truncated file, a missing attribute) into a one-line
    :class:`~mldmft.h5schema.SchemaError` naming ``path``, with ``hint`` appended."""
    from .h5schema import SchemaError

    try:
        yield
    except _READ_ERRORS as err:
        reason = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise SchemaError(f"{path}: corrupt or incomplete HDF5 file ({reason}){hint}") from None


@contextmanager
def read_h5(path: str | Path, hint: str = "") -> Iterator[h5py.File]:
    """``with read_h5(path) as f: ...``: :func:`open_h5` and :func:`read_errors` in one."""
    with open_h5(path, hint) as f, read_errors(path, hint):
        yield f
