"""Merge AIM databases with the same layout (e.g. a recipe database and the DMFT-visited baths of
a dynamic-database round) into one file; ``group_id`` stays unique per sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..h5util import atomic_h5
from .store import _write_arrays, load_database, open_database

__all__ = ["merge_databases"]

_SAME = ("n_l", "n_sigma", "target", "solver_names", "schema_version")


def merge_databases(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Concatenate the rows of ``paths`` into ``out`` (atomic). The files must share ``n_l``,
    ``n_sigma``, the target and the solvers; bath arrays are padded to the widest."""
    if len(paths) < 2:
        raise ValueError("merge needs at least two databases")
    attrs, datas = [], []
    for p in paths:
        with open_database(p) as f:
            attrs.append({k: f.attrs[k] for k in f.attrs})
        datas.append(load_database(p))
    for key in _SAME:
        vals = {str(a.get(key)) for a in attrs}
        if len(vals) != 1:
            raise ValueError(f"cannot merge: '{key}' differs between the databases ({vals})")
    width = max(d["bath/eps"].shape[1] for d in datas)
    offset = 0
    for d in datas:
        pad = width - d["bath/eps"].shape[1]
        if pad:
            d["bath/eps"] = np.pad(d["bath/eps"], ((0, 0), (0, pad)), constant_values=np.nan)
            d["bath/v"] = np.pad(d["bath/v"], ((0, 0), (0, pad)))
        d["group_id"] = d["group_id"] + offset
        d["sample_index"] = d["sample_index"] + offset
        offset = int(d["group_id"].max()) + 1
    merged = {k: np.concatenate([d[k] for d in datas]) for k in datas[0]}
    first = dict(attrs[0])
    first["n_rows"] = len(merged["sample_index"])
    first["n_samples"] = int(sum(int(a["n_samples"]) for a in attrs))
    first["n_bath_max"] = width
    first["merged_from"] = json.dumps([str(p) for p in paths])
    first["config_digest"] = "merged"
    with atomic_h5(out) as f:
        for k, v in first.items():
            f.attrs[k] = v
        _write_arrays(f, merged, 256)
    return Path(out)
