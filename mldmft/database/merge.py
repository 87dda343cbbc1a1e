"""Merge AIM databases with the same layout (e.g. a recipe database and the DMFT-visited baths of
a dynamic-database round) into one file, without duplicate samples; ``group_id`` stays unique per
sample and a sample and its particle-hole twin keep one ``group_id``.

A duplicate is a row whose model parameters equal those of a row already kept: ``U``, ``eps_d``,
``beta`` and the bath (pairs ``(eps_k, |V_k|)`` sorted by energy, padding ignored), all rounded to
``decimals`` (default 10) decimal places (energies are O(1) in units of D). Whole groups are kept
or dropped: a group (a sample and its twin) any of whose rows duplicates a kept row is dropped in
full, so one sample can never sit in two groups (e.g. in the training and the test split). Rows of
one group may equal each other (a particle-hole-symmetric sample is its own twin); that is not a
duplicate.

:func:`merge_rows` does this in memory for any row dicts (the output of
:func:`~mldmft.database.store.load_database` or the chunk arrays of
:mod:`mldmft.database.generate`), e.g. to add newly solved samples to a database (active
learning)::

    rows, report = merge_rows(load_database("db.h5"), new_chunk)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..h5schema import DATABASE_SCHEMA
from ..h5util import OutputFile, atomic_h5, check_output_places, h5_schema_is
from .store import _write_arrays, load_database, open_database

__all__ = ["merge_databases", "merge_rows", "MergeReport", "sample_keys"]

_SAME = ("n_l", "n_sigma", "target", "solver_names", "schema_version")

#: Parameters are compared after rounding to this many decimal places.
DECIMALS = 10


@dataclass(frozen=True)
class MergeReport:
    """What :func:`merge_rows` kept and dropped."""

    rows_in: int
    rows_kept: int
    groups_kept: int
    groups_dropped: int

    @property
    def rows_dropped(self) -> int:
        return self.rows_in - self.rows_kept

    def line(self) -> str:
        return (f"dropped {self.groups_dropped} duplicate sample(s) ({self.rows_dropped} rows, "
                f"twins included); kept {self.groups_kept} samples ({self.rows_kept} rows)")


def sample_keys(rows: dict[str, np.ndarray], decimals: int = DECIMALS) -> list[tuple]:
    """A hashable key per row: its rounded ``(U, eps_d, beta, bath)``; equal keys = same model."""
    def r(x: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(x, dtype=float), decimals) + 0.0  # + 0.0: -0.0 -> 0.0

    U, eps_d, beta = r(rows["params/U"]), r(rows["params/eps_d"]), r(rows["params/beta"])
    eps, v = r(rows["bath/eps"]), r(np.abs(rows["bath/v"]))
    n_bath = np.asarray(rows["params/n_bath"], dtype=int)
    keys = []
    for i in range(len(U)):
        e, w = eps[i, :n_bath[i]], v[i, :n_bath[i]]
        order = np.lexsort((w, e))
        keys.append((U[i], eps_d[i], beta[i], tuple(e[order]), tuple(w[order])))
    return keys


def _pad_bath(rows: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    pad = width - rows["bath/eps"].shape[1]
    if pad:
        rows = dict(rows)
        rows["bath/eps"] = np.pad(rows["bath/eps"], ((0, 0), (0, pad)), constant_values=np.nan)
        rows["bath/v"] = np.pad(rows["bath/v"], ((0, 0), (0, pad)))
    return rows


def merge_rows(*datas: dict[str, np.ndarray], decimals: int = DECIMALS
               ) -> tuple[dict[str, np.ndarray], MergeReport]:
    """Concatenate row dicts (same dataset names) in order, dropping duplicate samples.

    ``group_id`` and ``sample_index`` of each later input are shifted past those before it, so
    groups stay unique; the first occurrence of a sample is kept, every later group that repeats
    any of its rows is dropped whole (see the module docstring). Bath arrays are padded to the
    widest input.

    Returns:
        ``(rows, report)``.
    """
    if not datas:
        raise ValueError("merge_rows needs at least one set of rows")
    names = set(datas[0])
    for d in datas[1:]:
        if set(d) != names:
            raise ValueError(f"cannot merge: datasets differ ({sorted(set(d) ^ names)})")
    width = max(d["bath/eps"].shape[1] for d in datas)
    shifted, offset = [], 0
    for d in datas:
        d = _pad_bath(dict(d), width)
        d["group_id"] = np.asarray(d["group_id"]) + offset
        d["sample_index"] = np.asarray(d["sample_index"]) + offset
        if len(d["group_id"]):
            offset = int(max(d["group_id"].max(), d["sample_index"].max())) + 1
        shifted.append(d)
    merged = {k: np.concatenate([d[k] for d in shifted]) for k in datas[0]}
    keys = sample_keys(merged, decimals)
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(merged["group_id"]):
        groups.setdefault(int(g), []).append(i)
    seen: set[tuple] = set()
    keep = np.zeros(len(keys), dtype=bool)
    dropped = 0
    for rows in groups.values():  # in order of first appearance
        mine = {keys[i] for i in rows}
        if mine & seen:
            dropped += 1
            continue
        seen |= mine
        keep[rows] = True
    out = {k: v[keep] for k, v in merged.items()}
    return out, MergeReport(rows_in=len(keys), rows_kept=int(keep.sum()),
                            groups_kept=len(groups) - dropped, groups_dropped=dropped)


def merge_databases(paths: Sequence[str | Path], out: str | Path,
                    log: Callable[[str], None] | None = print) -> Path:
    """Merge the rows of ``paths`` into ``out`` (atomic) without duplicate samples
    (:func:`merge_rows`; how many were dropped is logged and stored as the attribute
    ``duplicates_dropped``). The files must share ``n_l``, ``n_sigma``, the target and the
    solvers; bath arrays are padded to the widest. One file alone is deduplicated.

    ``out`` (``.h5`` or ``.hdf5``) is checked before anything is read: never an input, a
    directory or an existing file other than a database, and writable
    (:func:`mldmft.h5util.check_output_places`)."""
    if len(paths) < 1:
        raise ValueError("merge needs at least one database")
    out = Path(out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"--out must name an HDF5 file ending in .h5, got {out}")
    check_output_places([OutputFile(out, "AIM database", h5_schema_is(DATABASE_SCHEMA))],
                        inputs={p: "input database" for p in paths})
    attrs, datas = [], []
    for p in paths:
        with open_database(p) as f:
            attrs.append({k: f.attrs[k] for k in f.attrs})
        datas.append(load_database(p))
    for key in _SAME:
        vals = {str(a.get(key)) for a in attrs}
        if len(vals) != 1:
            raise ValueError(f"cannot merge: '{key}' differs between the databases ({vals})")
    merged, report = merge_rows(*datas)
    if log is not None:
        log(report.line())
    first = dict(attrs[0])
    first["n_rows"] = report.rows_kept
    first["n_samples"] = report.groups_kept
    first["n_bath_max"] = merged["bath/eps"].shape[1]
    first["merged_from"] = json.dumps([str(p) for p in paths])
    first["duplicates_dropped"] = report.groups_dropped
    first["config_digest"] = "merged"
    with atomic_h5(out) as f:
        for k, v in first.items():
            f.attrs[k] = v
        _write_arrays(f, merged, 256)
    return out
