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

__all__ = ["atomic_h5", "write_header", "open_h5"]


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
