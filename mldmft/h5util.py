"""Crash-safe HDF5 writing shared by every mldmft file type.

A file is written under a temporary name (``<name>.tmp<pid>``) and renamed into place only when
complete, so a killed process never leaves a truncated file under the real name. A long job that
writes one output (database generation, a DMFT sweep) holds :func:`run_lock` on it, so a second
run to the same output is refused at once, and under that lock removes the temporary files a
killed run left behind (:func:`remove_tmp_litter`).

Every command checks where it will write before it starts any work
(:func:`check_output_places`): no output (side files such as a CSV, a PNG, a JSON summary or the
lock included) may be one of its input files or a directory, an existing file is replaced only if
it is an earlier output of the same kind, and the folder must be writable.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import h5py

__all__ = ["atomic_path", "atomic_h5", "write_text_atomic", "write_json_atomic", "replace_atomic",
           "write_header", "open_h5", "run_lock", "RunLockedError", "remove_tmp_litter", "tmp_name",
           "read_errors", "read_h5", "OutputFile", "OutputPlaceError", "check_output_places",
           "h5_schema_is", "LOCK_GRACE_S"]

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


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (numpy numbers as floats) to ``path`` atomically, making
    its folder first; for the result files of benchmarks and summaries."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(data, indent=1, default=float) + "\n")


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


#: Seconds after which a lock file without a readable holder (its run was killed between
#: creating the file and writing its pid into it) counts as stale, like one of a dead process.
LOCK_GRACE_S = 5.0

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
        info = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _age(path: Path) -> float:
    """Seconds since ``path`` was last modified (0 if it vanished meanwhile)."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _holder(info: dict | None) -> str:
    if not info:
        return (f"an unknown process (the lock file names no holder; it is taken over once "
                f"{LOCK_GRACE_S:g} s old)")
    return (f"pid {info.get('pid')} on host {info.get('host')} (started "
            f"{info.get('started', '?')}: {info.get('command', '?')})")


@contextmanager
def run_lock(target: str | Path, command: str = "") -> Iterator[Path]:
    """Hold the lock file ``<target>.lock`` while writing ``target``.

    The lock is created with ``O_CREAT | O_EXCL`` (atomic, also on NFS v3+) and holds the pid,
    host name, start time and ``command`` as JSON. A lock left by a dead process on this host
    (stale: the pid no longer exists) is taken over, and so is a lock that names no holder (empty
    or unreadable: its run was killed between creating and writing it) once it is older than
    :data:`LOCK_GRACE_S`; a lock held by a live process, or by a process on another host (whose
    liveness cannot be checked from here), raises :class:`RunLockedError` naming the holder. The
    lock is removed on exit.
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
            if info is None or not isinstance(pid, int):  # no holder named: killed mid-write?
                stale = _age(lock) > LOCK_GRACE_S
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


# ---------------------------------------------------------------------- output places
class OutputPlaceError(ValueError):
    """An output would be written over an input, onto a directory, over a file of another kind,
    or where files cannot be created."""


@dataclass(frozen=True)
class OutputFile:
    """A file a command writes.

    Attributes:
        path: where it goes.
        what: its kind, for messages (``"sweep HDF5"``, ``"CSV summary"``).
        ours: ``ours(path)`` is true when an existing file there is an earlier output of the same
            kind, which may be replaced (a rerun); ``None``: any existing file may be replaced (a
            figure, a lock file).
    """

    path: Path
    what: str = "output"
    ours: Callable[[Path], bool] | None = None


def h5_schema_is(schema: str) -> Callable[[Path], bool]:
    """``ours`` test of :class:`OutputFile`: the file is HDF5 with root attribute
    ``schema == schema`` (an earlier output of that kind)."""
    def ours(path: Path) -> bool:
        try:
            with h5py.File(path, "r") as f:
                return f.attrs.get("schema") == schema
        except _READ_ERRORS:
            return False
    return ours


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _unwritable(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (made if missing), or ``None`` if they can."""
    d = Path(os.path.abspath(directory))
    while not os.path.lexists(d) and d.parent != d:
        d = d.parent
    if not d.is_dir():
        return f"{d} is not a directory"
    if not os.access(d, os.W_OK | os.X_OK):
        return f"{d} is not writable"
    return None


def check_output_places(files: Sequence[OutputFile | str | Path] = (),
                        inputs: Sequence[str | Path | None] | dict[str | Path, str] = (),
                        dirs: Sequence[str | Path] = (), flag: str = "--out") -> None:
    """Refuse, before any work starts, output places a command must not write to.

    Every output file (the main one and its side files: CSV, PNG, JSON summary, lock) must not
    be one of ``inputs``, must not be an existing directory, must differ from the other outputs,
    may replace an existing file only if that file is ours (:class:`OutputFile`), and its folder
    must exist or be creatable, and be writable. Every output folder in ``dirs`` must not be an
    existing file and must be writable (or creatable).

    Args:
        files: the output files (a plain path: any existing file there may be replaced).
        inputs: the files the command reads (``None`` entries are skipped), or a mapping from
            each to its role for messages (``{"model.yaml": "model file"}``).
        dirs: output folders.
        flag: how the user named the output (``"--out"``, ``"out"``), to start each message.

    Raises:
        OutputPlaceError: one line naming the place and the reason.

    Example:
        >>> check_output_places([OutputFile(Path("model.yaml"), "result")],
        ...                     inputs=["model.yaml"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mldmft.h5util.OutputPlaceError: --out: model.yaml (result) would overwrite the input file...
    """
    outs = [f if isinstance(f, OutputFile) else OutputFile(Path(f)) for f in files]
    roles = inputs if isinstance(inputs, dict) else {p: "input file" for p in inputs}
    ins = [(Path(p), role) for p, role in roles.items() if p is not None]
    for k, out in enumerate(outs):
        p = Path(out.path)
        label = f"{p} ({out.what})"
        if p.is_dir():
            raise OutputPlaceError(f"{flag}: {label} is a directory; name a file")
        for q, role in ins:
            if _same_file(p, q):
                raise OutputPlaceError(f"{flag}: {label} would overwrite the {role} {q}; "
                                       "choose another name")
        for other in outs[:k]:
            if _same_file(p, Path(other.path)):
                raise OutputPlaceError(f"{flag}: {label} and {other.what} would be the same "
                                       "file; choose another name")
        if p.exists() and out.ours is not None and not out.ours(p):
            raise OutputPlaceError(f"{flag}: {p} exists and is not an mldmft {out.what}; "
                                   "refusing to overwrite it (choose another name or delete it)")
        why = _unwritable(p.parent)
        if why:
            raise OutputPlaceError(f"{flag}: cannot write {label}: {why}")
    for d in dirs:
        d = Path(d)
        if os.path.lexists(d) and not d.is_dir():
            raise OutputPlaceError(f"{flag}: {d} is a file, not a directory")
        for q, role in ins:
            if _same_file(d, q):
                raise OutputPlaceError(f"{flag}: {d} is the {role}; choose another directory")
        why = _unwritable(d)
        if why:
            raise OutputPlaceError(f"{flag}: cannot write into {d}: {why}")
