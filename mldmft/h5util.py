"""Crash-safe HDF5 writing shared by every mldmft file type.

A file is written under a temporary name and renamed into place only when complete, so a killed
process never leaves a truncated file under the real name.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py

__all__ = ["atomic_h5", "write_header", "open_h5", "read_errors", "read_h5"]

#: What h5py raises on a damaged file (a bad header, heap or B-tree, an unreadable chunk): it
#: maps HDF5's error stack onto these built-in types, mostly at the first access, not at open.
_READ_ERRORS = (OSError, RuntimeError, KeyError)


@contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """``with atomic_h5(path) as f: ...`` writes ``f`` and renames it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
