"""HDF5 storage of AIM databases: atomic chunk files, resumable assembly, checked reading.

While a run is going, every finished chunk of samples is written to its own file
``<out>.parts/chunk_<k>.h5`` under a temporary name and renamed into place, so a killed run
leaves only complete, readable chunk files. When all chunks exist they are assembled, in chunk
order, into ``<out>`` (again written to a temporary name and renamed), and the parts are removed.
The plan of the configuration (:func:`config_digest`) is stored in ``<out>.parts/config.json``
and in the final file's attribute ``config_digest``; a rerun with a different plan is refused,
naming the settings that differ (:mod:`mldmft.plan`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from ..h5util import atomic_h5, open_h5, read_errors, write_header
from ..configtools import EXECUTION_KEYS
from ..plan import make_plan, plan_json
from ..h5schema import (DATABASE_SCHEMA, DATABASE_SCHEMA_VERSION, SchemaError, check_schema,
                        database_datasets)

__all__ = ["write_chunk", "chunk_path", "read_chunk", "assemble", "open_database",
           "load_database", "git_revision", "config_digest"]

_STR = h5py.string_dtype()


def git_revision() -> str:
    """The source tree's git revision, or ``"unknown"``."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: Generation settings a rerun may change (:mod:`mldmft.plan`): how the work is run
#: (:data:`mldmft.configtools.EXECUTION_KEYS`), where it goes, and ``n_samples``/``chunk_size``
#: -- sample ``i`` does not depend on them, so a partial run may be resumed with a larger
#: ``n_samples`` or another chunking (chunk files are reused only when their sample indices
#: match).
RERUN_MAY_CHANGE = (*EXECUTION_KEYS, "out", "chunk_size", "n_samples")


def config_digest(config: dict[str, Any]) -> str:
    """The plan of a generation config (the parts that change the data of a sample,
    :data:`RERUN_MAY_CHANGE` left out) as canonical JSON (:func:`mldmft.plan.plan_json`)."""
    return plan_json(make_plan(config, RERUN_MAY_CHANGE))


def chunk_path(parts: Path, k: int) -> Path:
    return parts / f"chunk_{k:06d}.h5"


def _write_arrays(f: h5py.File, arrays: dict[str, np.ndarray], chunk_rows: int) -> None:
    for name, arr in arrays.items():
        if arr.dtype.kind in "OUS":
            f.create_dataset(name, data=np.asarray(arr, dtype=object), dtype=_STR,
                             chunks=(min(chunk_rows, len(arr)),) if len(arr) else None)
        else:
            chunks = (min(chunk_rows, arr.shape[0]),) + arr.shape[1:] if arr.shape[0] else None
            f.create_dataset(name, data=arr, chunks=chunks)


def write_chunk(parts: Path, k: int, arrays: dict[str, np.ndarray]) -> Path:
    """Write chunk ``k`` atomically."""
    path = chunk_path(parts, k)
    with atomic_h5(path) as f:
        f.attrs["chunk"] = k
        _write_arrays(f, arrays, 256)
    return path


def read_chunk(path: Path) -> dict[str, np.ndarray] | None:
    """Arrays of a chunk file, or ``None`` if it is unreadable (then it is recomputed)."""
    try:
        with h5py.File(path, "r") as f:
            out = {}
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
            return out
    except (OSError, KeyError):
        return None


def assemble(out: Path, parts: Path, n_chunks: int, attrs: dict[str, Any]) -> Path:
    """Concatenate the chunk files into the final database ``out`` (atomic), remove the parts."""
    chunks = []
    for k in range(n_chunks):
        arrays = read_chunk(chunk_path(parts, k))
        if arrays is None:
            raise SchemaError(f"{chunk_path(parts, k)}: missing or unreadable chunk")
        chunks.append(arrays)
    names = list(chunks[0])
    merged = {n: np.concatenate([c[n] for c in chunks]) for n in names}
    for n, arr in merged.items():
        if arr.dtype.kind == "O":
            merged[n] = np.array([x.decode() if isinstance(x, bytes) else x for x in arr],
                                 dtype=object)

    with atomic_h5(out) as f:
        write_header(f, DATABASE_SCHEMA, DATABASE_SCHEMA_VERSION)
        f.attrs["git_revision"] = git_revision()
        for key, val in attrs.items():
            f.attrs[key] = val
        f.attrs["n_rows"] = len(merged["sample_index"])
        _write_arrays(f, merged, 256)
    shutil.rmtree(parts, ignore_errors=True)
    return out


def open_database(path: str | Path) -> h5py.File:
    """Open a database read-only after checking schema, version and completeness, every
    dataset's shape against the declared sizes, and the model parameters' domains (a
    one-line :class:`~mldmft.h5schema.SchemaError` naming the dataset otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"{path}: no such database file")
    hint = "; a truncated or corrupt file must be regenerated"
    f = open_h5(path, hint)
    try:
        with read_errors(path, hint):
            dict(f.attrs)  # every attribute readable (a damaged heap fails here, not later)
            names = json.loads(f.attrs.get("solver_names", "[]"))
            check_schema(f, DATABASE_SCHEMA, DATABASE_SCHEMA_VERSION, database_datasets(names))
            _check_shapes(f, path, names)
            _check_params(f, path)
    except Exception:
        f.close()
        raise
    return f


def _check_shapes(f: h5py.File, path: Path, names: list[str]) -> None:
    """Every dataset has ``n_rows`` rows and the widths the file declares (``n_l`` Legendre
    coefficients, ``n_sigma`` frequencies, ``n_bath_max`` bath sites where declared)."""
    n_rows = int(f.attrs["n_rows"])
    sizes = {"row": n_rows, "l": int(f.attrs["n_l"]), "n": int(f.attrs["n_sigma"])}
    if "n_bath_max" in f.attrs:
        sizes["n_bath_max"] = int(f.attrs["n_bath_max"])
    for ds in database_datasets(names):
        if ds.name not in f:
            continue
        shape = f[ds.name].shape
        if shape[:1] != (n_rows,):
            raise SchemaError(f"{path}: dataset '{ds.name}' has {shape[0] if shape else 0} rows, "
                              f"the file declares {n_rows} (truncated?)")
        want = tuple(sizes.get(a) for a in ds.axes)
        if len(shape) != len(want) or any(w is not None and n != w
                                          for n, w in zip(shape, want)):
            declared = ", ".join(f"{a}={sizes.get(a, '?')}" for a in ds.axes)
            raise SchemaError(f"{path}: dataset '{ds.name}' has shape {shape}, the file declares "
                              f"({declared})")


#: Row values a database must never hold (non-finite inputs are reported by ``mldmft inspect``
#: and left out by training; these are simply wrong).
_PARAM_RULES = (("params/beta", "beta > 0", lambda v: v > 0),
                ("params/D", "D > 0", lambda v: v > 0),
                ("params/U", "U >= 0", lambda v: v >= 0))


def _check_params(f: h5py.File, path: Path) -> None:
    """Finite model parameters in their domain (``beta > 0``, ``D > 0``, ``U >= 0``) and
    ``0 <= n_bath <=`` the bath arrays' width; one line naming the dataset and the first bad
    rows."""
    for name, rule, ok in _PARAM_RULES:
        v = np.asarray(f[name][()], dtype=float)
        bad = np.flatnonzero(np.isfinite(v) & ~ok(np.where(np.isfinite(v), v, 1.0)))
        if bad.size:
            raise SchemaError(f"{path}: dataset '{name}' breaks {rule} in {bad.size} row(s), "
                              f"e.g. row {bad[0]}: {v[bad[0]]:g}")
    n_bath = np.asarray(f["params/n_bath"][()])
    width = f["bath/eps"].shape[1]
    bad = np.flatnonzero((n_bath < 0) | (n_bath > width))
    if bad.size:
        raise SchemaError(f"{path}: dataset 'params/n_bath' lies outside 0..{width} (the bath "
                          f"arrays' width) in {bad.size} row(s), e.g. row {bad[0]}: "
                          f"{n_bath[bad[0]]}")


def load_database(path: str | Path, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Read datasets (all by default) of a checked database into memory."""
    with open_database(path) as f:
        out: dict[str, np.ndarray] = {}
        wanted = set(names) if names is not None else None

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset) and (wanted is None or name in wanted):
                data = obj[()]
                if data.dtype.kind == "O":
                    data = np.array([x.decode() if isinstance(x, bytes) else x for x in data],
                                    dtype=object)
                out[name] = data

        with read_errors(path, "; a truncated or corrupt file must be regenerated"):
            f.visititems(visit)
        return out
