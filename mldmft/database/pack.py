"""Committed databases: pack an AIM database into a small HDF5 file, unpack it again.

An AIM database holds hours of exact diagonalisation; :func:`pack_database` writes what cannot
be rebuilt cheaply into a compact file (schema ``mldmft.aim_database_packed``,
:mod:`mldmft.h5schema`) and :func:`unpack_database` turns it back into a normal database (schema
``mldmft.aim_database``, accepted by :func:`~mldmft.database.store.open_database`) in seconds.

What the packed file holds, and what it leaves out:

* only the drawn samples (``augmented == False``); their particle-hole twins are rebuilt by
  :func:`~mldmft.database.records.particle_hole_twin`, the map generation uses, and
  ``/has_twin`` says which samples had one (the twin is the next row of the database);
* no ``delta_l``: it is rebuilt from the bath, ``Delta_l = g_l_from_poles(V_k^2, eps_k, beta)``
  as :func:`~mldmft.database.records.solve_sample` computes it (pack checks that this
  reproduces the stored values to 1e-12 and keeps ``delta_l`` otherwise);
* the target's results (``solvers/<target>/*``: ``G_l``, ``Sigma``, density, double
  occupancy, status, error, wall time), the parameters, the bath, ``group_id`` and
  ``sample_index`` exactly as stored;
* the cheap solvers' ``g_l`` and ``sigma_iw`` as float32 / complex64 (rounding <= 6e-8
  relative to the row's largest value, far below their errors against the target and the
  networks' test errors; a twin gets the same absolute rounding, ``Sigma -> U - conj(Sigma)``),
  the rest of their results (density, double occupancy, status, error, wall time) as stored. A
  dataset one of whose finite values does not fit float32 is kept in float64;
* every root attribute of the database, verbatim, on the group ``/database_attrs``; the root
  attribute ``packing`` (JSON) says what was dropped and cast, how many rows the database had,
  and the SHA-256 digest of the database's content (datasets and attributes).

Every dataset is gzip (level 9) compressed with the shuffle filter. Unpacking casts the float32
columns back to float64 (the float32 value exactly), recomputes ``delta_l``, inserts the twins
and writes the database atomically, with the database's attributes plus ``unpacked_from``
(JSON: the packed file and the digest of the database it came from).

Example::

    pack_database("data/phase_diagram.h5", "datasets/phase_diagram.h5")
    unpack_database("datasets/phase_diagram.h5", "data/phase_diagram.h5")
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from solvers.legendre import g_l_from_poles_many

from ..h5schema import (DATABASE_SCHEMA, PACKED_DATABASE_SCHEMA, PACKED_DATABASE_SCHEMA_VERSION,
                        SchemaError, check_schema)
from ..h5util import (OutputFile, atomic_path, check_output_places, read_h5, write_header)
from .records import RecordLayout, SolverSpec, particle_hole_twin
from .store import _write_arrays, load_database, open_database

__all__ = ["pack_database", "unpack_database", "database_digest", "delta_l_from_bath"]

#: Filters of every dataset of a packed file.
_FILTERS = dict(compression="gzip", compression_opts=9, shuffle=True)

#: Cheap-solver datasets stored in single precision.
_CAST_FIELDS = ("g_l", "sigma_iw")
_NARROW = {np.dtype(np.float64): np.dtype(np.float32),
           np.dtype(np.complex128): np.dtype(np.complex64)}

#: ``delta_l`` is dropped when recomputing it reproduces every row to this (relative to the
#: row's largest coefficient, at least 1).
DELTA_L_TOL = 1e-12

_STR = h5py.string_dtype()


# ------------------------------------------------------------------ shared pieces
def _plain(value: Any) -> Any:
    """An attribute value as plain JSON-able Python (for the digest)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def database_digest(data: dict[str, np.ndarray], attrs: dict[str, Any]) -> str:
    """SHA-256 of a database's content: every dataset (name, dtype, shape, bytes; strings as
    UTF-8) and every root attribute, in sorted order. Equal digests: the same database.

    Example:
        >>> import numpy as np
        >>> a = database_digest({"x": np.arange(3.0)}, {"n_l": 3})
        >>> a == database_digest({"x": np.arange(3.0)}, {"n_l": 3}), len(a)
        (True, 64)
    """
    h = hashlib.sha256()
    for name in sorted(data):
        arr = np.asarray(data[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        if arr.dtype.kind in "OUS":
            h.update("\0".join(x.decode() if isinstance(x, bytes) else str(x)
                               for x in arr.ravel()).encode())
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps({k: _plain(v) for k, v in attrs.items()}, sort_keys=True,
                        default=str).encode())
    return h.hexdigest()


def delta_l_from_bath(beta: np.ndarray, bath_eps: np.ndarray, bath_v: np.ndarray,
                      n_bath: np.ndarray, n_l: int) -> np.ndarray:
    """Legendre coefficients of ``Delta(tau) = -sum_k V_k^2 exp(-tau eps_k)/(1 + exp(-beta
    eps_k))`` for every row (shape ``[row, n_l]``, units 1/D): the pole sum
    :func:`solvers.g_l_from_poles` with weights ``V_k^2`` and energies ``eps_k``, as generation
    computes ``delta_l``. Rows with the same ``n_bath`` go through
    :func:`solvers.legendre.g_l_from_poles_many` together (the function ``g_l_from_poles`` calls
    on one row), without padding poles, so each row is computed exactly as on its own; a row
    without bath sites gives zeros.

    Example:
        >>> import numpy as np
        >>> from solvers import g_l_from_poles
        >>> eps, v = np.array([-0.5, 0.5]), np.array([0.3, 0.4])
        >>> d = delta_l_from_bath(np.array([10.0]), eps[None], v[None], np.array([2]), 8)
        >>> bool(np.array_equal(d[0], g_l_from_poles(v ** 2, eps, 10.0, 8)))
        True
    """
    beta = np.asarray(beta, dtype=float)
    n_bath = np.asarray(n_bath, dtype=int)
    out = np.zeros((beta.size, n_l))
    for nb in np.unique(n_bath):
        rows = np.flatnonzero(n_bath == nb)
        if nb == 0:
            continue
        eps = np.asarray(bath_eps, dtype=float)[rows, :nb]
        v = np.asarray(bath_v, dtype=float)[rows, :nb]
        out[rows] = g_l_from_poles_many(v ** 2, eps, beta[rows], n_l)
    return out


def _layout(attrs: dict[str, Any], data: dict[str, np.ndarray]) -> RecordLayout:
    names = json.loads(attrs.get("solver_names", "[]"))
    return RecordLayout(n_l=int(attrs["n_l"]), n_sigma=int(attrs["n_sigma"]),
                        n_bath_max=int(data["bath/eps"].shape[1]),
                        solvers=tuple(SolverSpec(n) for n in names))


def _twins(data: dict[str, np.ndarray], rows: np.ndarray, layout: RecordLayout
           ) -> dict[str, np.ndarray]:
    """The particle-hole twins of ``rows`` of ``data`` (every dataset), built row by row with
    :func:`~mldmft.database.records.particle_hole_twin`."""
    names = list(data)
    twins = [particle_hole_twin({k: data[k][i] for k in names}, layout) for i in rows]
    out = {}
    for k in names:
        if data[k].dtype.kind == "O":
            col = np.empty(len(twins), dtype=object)
            col[:] = [t[k] for t in twins]
        else:
            col = np.asarray([t[k] for t in twins], dtype=data[k].dtype)
            col = col.reshape((len(twins),) + data[k].shape[1:])
        out[k] = col
    return out


def _decode(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "OS":
        out = np.empty(arr.shape, dtype=object)
        out[...] = [x.decode() if isinstance(x, bytes) else x for x in arr.ravel()]
        return out
    return arr


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row: ``a`` equals ``b`` (NaN equals NaN)."""
    if a.dtype.kind == "O":
        eq = a == b
    else:
        eq = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind in "fc" else a == b
    return eq.reshape(len(a), -1).all(axis=1)


def _suffix(path: Path, what: str) -> None:
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"--out must name an HDF5 file ending in .h5 ({what}), got {path}")


def _source_digest(path: Path, schema: str, attr: str) -> str | None:
    """The source digest stored in attribute ``attr`` of an HDF5 file of ``schema`` (``packing``
    of a packed file, ``unpacked_from`` of an unpacked database), or ``None``."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("schema") != schema:
                return None
            return json.loads(f.attrs[attr]).get("source_digest")
    except (OSError, KeyError, ValueError):
        return None


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


# ------------------------------------------------------------------ pack
def _pairs(data: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the drawn samples and whether each is followed by its twin; refuses a twin that
    does not follow its sample (the row order could not be rebuilt)."""
    aug = np.asarray(data["augmented"], dtype=bool)
    gid = np.asarray(data["group_id"])
    twin_rows = np.flatnonzero(aug)
    bad = twin_rows[(twin_rows == 0) | aug[twin_rows - 1] | (gid[twin_rows] != gid[twin_rows - 1])]
    if bad.size:
        raise ValueError(f"{path}: row {bad[0]} is a particle-hole twin (augmented) that does "
                         "not follow the row of its sample (same group_id); cannot pack it")
    originals = np.flatnonzero(~aug)
    has_twin = np.zeros(originals.size, dtype=bool)
    has_twin[np.searchsorted(originals, twin_rows - 1)] = True
    return originals, has_twin


def _check_twins(data: dict[str, np.ndarray], originals: np.ndarray, has_twin: np.ndarray,
                 layout: RecordLayout, path: Path) -> None:
    """The stored twins equal the ones :func:`particle_hole_twin` rebuilds, exactly."""
    rows = originals[has_twin]
    if not rows.size:
        return
    rebuilt = _twins(data, rows, layout)
    for name, col in rebuilt.items():
        ok = _same(col, data[name][rows + 1])
        if not ok.all():
            r = rows[np.flatnonzero(~ok)[0]] + 1
            raise ValueError(f"{path}: the particle-hole twin in row {r} differs from the one "
                             f"particle_hole_twin rebuilds from row {r - 1} in '{name}'; cannot "
                             "pack it (unpacking would not restore it)")


def _narrow(arr: np.ndarray) -> np.ndarray | None:
    """``arr`` in single precision, or ``None`` if a finite value would not fit."""
    to = _NARROW.get(arr.dtype)
    if to is None:
        return None
    finite = np.isfinite(arr)
    big = np.finfo(np.float32).max
    parts = (arr.real, arr.imag) if arr.dtype.kind == "c" else (arr,)
    if any(np.any(np.abs(p[finite]) > big) for p in parts):
        return None
    return arr.astype(to)


def _chunks(arr: np.ndarray) -> tuple[int, ...] | None:
    """Row chunks of at most about 4 MB (one chunk for a dataset of a few thousand rows)."""
    if arr.shape[0] == 0:
        return None
    per_row = max(1, arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64)))
    rows = int(min(arr.shape[0], max(1, (4 << 20) // per_row)))
    return (rows,) + arr.shape[1:]


def _write_packed(f: h5py.File, name: str, arr: np.ndarray) -> None:
    if arr.dtype.kind in "OUS":
        f.create_dataset(name, data=np.asarray(arr, dtype=object), dtype=_STR,
                         chunks=(max(1, len(arr)),) if len(arr) else None,
                         **(_FILTERS if len(arr) else {}))
    else:
        chunks = _chunks(arr)
        f.create_dataset(name, data=arr, chunks=chunks, **(_FILTERS if chunks else {}))


def pack_database(src: str | Path, out: str | Path,
                  log: Callable[[str], None] | None = print) -> Path:
    """Write the compact form of database ``src`` to ``out`` (atomic; see the module docstring).

    ``out`` must end in ``.h5``/``.hdf5``, must not be ``src``, and may replace an existing file
    only if that is a packed file of the same database (same content digest)
    (:func:`mldmft.h5util.check_output_places`). A database whose twins are not the rows right
    after their samples, or differ from the rebuilt ones, is refused.

    Returns:
        ``out``.
    """
    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    _suffix(out, "packed AIM database")
    state: dict[str, Any] = {}

    def load() -> None:
        if "data" not in state:
            with open_database(src) as f:
                state["attrs"] = {k: f.attrs[k] for k in f.attrs}
            state["data"] = load_database(src)
            state["digest"] = database_digest(state["data"], state["attrs"])

    def ours(p: Path) -> bool:
        digest = _source_digest(p, PACKED_DATABASE_SCHEMA, "packing")
        if digest is None:
            return False
        load()
        return digest == state["digest"]

    check_output_places([OutputFile(out, f"packed form of {src}", ours)],
                        inputs={src: "input database"})
    load()
    data, attrs = state["data"], state["attrs"]
    layout = _layout(attrs, data)
    names = [s.name for s in layout.solvers]
    target = str(attrs.get("target", names[0] if names else ""))
    originals, has_twin = _pairs(data, src)
    _check_twins(data, originals, has_twin, layout, src)

    kept = {k: v[originals] for k, v in data.items()}
    dropped: dict[str, str] = {}
    if has_twin.any():
        dropped["twins"] = (f"{int(has_twin.sum())} particle-hole twin rows (rebuilt by "
                            "mldmft.database.records.particle_hole_twin; /has_twin marks them)")
    try:
        delta = delta_l_from_bath(kept["params/beta"], kept["bath/eps"], kept["bath/v"],
                                  kept["params/n_bath"], layout.n_l)
    except ValueError:  # a row the pole sum refuses (a non-finite or non-positive beta)
        delta = np.full_like(kept["delta_l"], np.nan)
    stored = kept["delta_l"]
    scale = np.maximum(1.0, np.max(np.abs(stored), axis=1, initial=0.0))
    off = np.max(np.abs(delta - stored), axis=1, initial=0.0) / scale
    if np.all(off <= DELTA_L_TOL):
        del kept["delta_l"]
        dropped["delta_l"] = ("recomputed from the bath by solvers.g_l_from_poles "
                              f"(max relative difference {float(off.max(initial=0.0)):.1e})")
    cast: dict[str, list[str]] = {}
    for name in names:
        if name == target:
            continue
        for fld in _CAST_FIELDS:
            key = f"solvers/{name}/{fld}"
            if key in kept:
                small = _narrow(kept[key])
                if small is not None:
                    cast[key] = [kept[key].dtype.name, small.dtype.name]
                    kept[key] = small
    packing = {"n_rows": int(len(data["augmented"])), "stored_rows": int(originals.size),
               "dropped": dropped, "cast": cast, "source": str(src),
               "source_digest": state["digest"],
               "filters": "gzip level 9 + shuffle on every dataset"}
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            write_header(f, PACKED_DATABASE_SCHEMA, PACKED_DATABASE_SCHEMA_VERSION)
            f.attrs["packing"] = json.dumps(packing, sort_keys=True)
            g = f.create_group("database_attrs")
            for k, v in attrs.items():
                g.attrs[k] = v
            _write_packed(f, "has_twin", has_twin)
            for k, v in kept.items():
                _write_packed(f, k, v)
    if log is not None:
        log(f"packed {src} ({_mb(src):.1f} MB, {packing['n_rows']} rows) -> {out} "
            f"({_mb(out):.1f} MB, {originals.size} samples) in {time.perf_counter() - t0:.1f} s; "
            f"dropped: {', '.join(dropped) or 'nothing'}; float32: {len(cast)} datasets")
    return out


# ------------------------------------------------------------------ unpack
def _read_packed(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """``(packing, database attributes, datasets)`` of a packed file, checked."""
    if not path.is_file():
        raise SchemaError(f"{path}: no such packed database file")
    hint = "; a truncated or corrupt file must be packed again"
    with read_h5(path, hint) as f:
        schema = f.attrs.get("schema")
        if schema == DATABASE_SCHEMA:
            raise SchemaError(f"{path}: a normal AIM database, not a packed one (make one with "
                              "`mldmft pack`)")
        check_schema(f, PACKED_DATABASE_SCHEMA, PACKED_DATABASE_SCHEMA_VERSION, ())
        packing = json.loads(f.attrs["packing"])
        attrs = {k: v for k, v in f["database_attrs"].attrs.items()}
        data: dict[str, np.ndarray] = {}
        f.visititems(lambda name, obj: data.__setitem__(name, _decode(obj[()]))
                     if isinstance(obj, h5py.Dataset) else None)
    for need in ("has_twin", "augmented", "group_id", "params/beta", "bath/eps", "bath/v",
                 "params/n_bath"):
        if need not in data:
            raise SchemaError(f"{path}: dataset '{need}' is missing (truncated file?)")
    m = len(data["has_twin"])
    short = [k for k, v in data.items() if v.shape[:1] != (m,)]
    if short:
        raise SchemaError(f"{path}: dataset '{short[0]}' has {data[short[0]].shape[0]} rows, "
                          f"/has_twin has {m} (truncated?)")
    if m + int(data["has_twin"].sum()) != packing.get("n_rows"):
        raise SchemaError(f"{path}: {m} samples and {int(data['has_twin'].sum())} twins do not "
                          f"make the {packing.get('n_rows')} rows the file declares")
    return packing, attrs, data


def unpack_database(packed: str | Path, out: str | Path,
                    log: Callable[[str], None] | None = print) -> Path:
    """Rebuild the normal database of packed file ``packed`` in ``out`` (atomic; see the module
    docstring): float32 columns back to float64, ``delta_l`` recomputed, twins inserted after
    their samples. The result is checked with :func:`~mldmft.database.store.open_database`
    before it is renamed into place.

    ``out`` must end in ``.h5``/``.hdf5``, must not be ``packed``, and may replace an existing
    file only if that was unpacked from a packed file of the same database (its ``unpacked_from``
    digest) (:func:`mldmft.h5util.check_output_places`).

    Returns:
        ``out``.
    """
    t0 = time.perf_counter()
    packed, out = Path(packed), Path(out)
    _suffix(out, "AIM database")
    packing, attrs, data = _read_packed(packed)
    digest = packing.get("source_digest")
    check_output_places(
        [OutputFile(out, f"AIM database unpacked from a packing of the same database "
                    f"({packed})", lambda p: digest is not None
                    and _source_digest(p, DATABASE_SCHEMA, "unpacked_from") == digest)],
        inputs={packed: "packed database"})
    has_twin = np.asarray(data.pop("has_twin"), dtype=bool)
    for key, (wide, _narrow_name) in packing.get("cast", {}).items():
        data[key] = data[key].astype(np.dtype(wide))
    layout = _layout(attrs, data)
    if "delta_l" not in data:
        data["delta_l"] = delta_l_from_bath(data["params/beta"], data["bath/eps"],
                                            data["bath/v"], data["params/n_bath"], layout.n_l)
    m = has_twin.size
    start = np.arange(m) + np.concatenate([[0], np.cumsum(has_twin)[:-1]]).astype(int)
    twins = _twins(data, np.flatnonzero(has_twin), layout)
    n_rows = m + int(has_twin.sum())
    full = {}
    for k, col in data.items():
        arr = np.empty((n_rows,) + col.shape[1:], dtype=col.dtype)
        arr[start] = col
        arr[start[has_twin] + 1] = twins[k]
        full[k] = arr
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            f.attrs["unpacked_from"] = json.dumps({"file": str(packed), "source_digest": digest,
                                                   "packed": packing.get("source")})
            _write_arrays(f, full, 256)
        open_database(tmp).close()
    if log is not None:
        log(f"unpacked {packed} ({_mb(packed):.1f} MB) -> {out} ({_mb(out):.1f} MB, {n_rows} "
            f"rows) in {time.perf_counter() - t0:.1f} s")
    return out
