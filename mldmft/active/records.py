"""Per-round records of an active-learning run: ``rounds.h5`` (schema ``mldmft.active_rounds``,
:mod:`mldmft.h5schema`), ``rounds.csv`` (the scalar columns) and ``rounds.png`` (guard rate,
held-out ``max |dZ|`` and ``max |dn|``, samples added, against the round), all written
atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..dmft.steps import GUARD_REASONS
from ..h5util import atomic_h5, atomic_path, read_h5, write_header, write_text_atomic
from ..h5schema import ACTIVE_ROUNDS_SCHEMA, ACTIVE_ROUNDS_SCHEMA_VERSION, SchemaError

__all__ = ["COLUMNS", "write_records", "read_rounds_csv", "read_rounds_h5"]

#: Scalar columns of ``rounds.csv`` and ``rounds.h5`` (one value per round), with their dtypes.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("round", "int"), ("checkpoint", "str"), ("iterations", "int"), ("flagged", "int"),
    ("guard_rate", "float"),
    *((f"flagged_{r}", "int") for r in GUARD_REASONS),
    ("outside_domain", "int"), ("points", "int"), ("converged_points", "int"),
    ("heldout_max_abs_dz", "float"), ("heldout_max_abs_dn", "float"),
    ("candidates", "int"), ("selected", "int"), ("samples_added", "int"),
    ("db_samples", "int"), ("val_mse_g_tau", "float"), ("test_mse_g_tau", "float"))


def write_records(run_dir: str | Path, rows: Sequence[dict[str, Any]], heldout: dict[str, Any],
                  plan: dict[str, Any], stop_reason: str, final_checkpoint: str) -> list[Path]:
    """Write ``rounds.h5``, ``rounds.csv`` and ``rounds.png`` in ``run_dir``; ``rows``: one
    dict per round holding every :data:`COLUMNS` name plus ``heldout_abs_dz`` and
    ``heldout_abs_dn`` (lists over the held-out points); ``heldout``: ``{"points": [...]}``."""
    run_dir = Path(run_dir)
    h5 = run_dir / "rounds.h5"
    n_points = len(heldout.get("points", []))
    with atomic_h5(h5) as f:
        write_header(f, ACTIVE_ROUNDS_SCHEMA, ACTIVE_ROUNDS_SCHEMA_VERSION)
        f.attrs["plan"] = json.dumps(plan, sort_keys=True, default=str)
        f.attrs["stop_reason"] = stop_reason
        f.attrs["final_checkpoint"] = final_checkpoint
        f.attrs["heldout_points"] = json.dumps(heldout.get("points", []))
        for name, kind in COLUMNS:
            vals = [r[name] for r in rows]
            if kind == "str":
                import h5py

                f.create_dataset(name, data=np.array(vals, dtype=object),
                                 dtype=h5py.string_dtype())
            else:
                f[name] = np.array(vals, dtype=np.int64 if kind == "int" else np.float64)
        for name in ("heldout_abs_dz", "heldout_abs_dn"):
            f[name] = np.array([r[name] for r in rows], dtype=float).reshape(len(rows), n_points)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([name for name, _ in COLUMNS])
    for r in rows:
        w.writerow([_csv_value(r[name], kind) for name, kind in COLUMNS])
    csv_path = write_text_atomic(run_dir / "rounds.csv", buf.getvalue())
    return [h5, csv_path, _plot(run_dir / "rounds.png", rows, plan, final_checkpoint)]


def _csv_value(v: Any, kind: str) -> str:
    if kind == "float":
        return repr(float(v))
    return str(v)


def read_rounds_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of ``rounds.csv`` with their types."""
    kinds = dict(COLUMNS)
    with open(path, newline="") as fh:
        return [{k: (int(v) if kinds[k] == "int" else float(v) if kinds[k] == "float" else v)
                 for k, v in r.items()} for r in csv.DictReader(fh)]


def read_rounds_h5(path: str | Path) -> dict[str, Any]:
    """Every dataset and attribute of ``rounds.h5`` (strings decoded)."""
    with read_h5(path) as f:
        if f.attrs.get("schema") != ACTIVE_ROUNDS_SCHEMA:
            raise SchemaError(f"{path}: not a {ACTIVE_ROUNDS_SCHEMA} file")
        out: dict[str, Any] = {k: f.attrs[k] for k in f.attrs}
        for k in f:
            v = f[k][()]
            out[k] = ([x.decode() if isinstance(x, bytes) else x for x in v]
                      if v.dtype == object else v)
        return out


def _plot(path: Path, rows: Sequence[dict[str, Any]], plan: dict[str, Any],
          final_checkpoint: str = "") -> Path:
    """Three panels against the round: guard rate (with the stop line), held-out max |dZ| and
    max |dn| (the final model ringed), samples added; written to a temporary name and
    renamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.array([r["round"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    ax.plot(k, [100 * r["guard_rate"] for r in rows], "o-")
    ax.axhline(100 * float(plan.get("stop_guard_rate", 0.0)), color="k", ls=":",
               label="stop below")
    ax.set_ylabel("guard rate (% of iterations flagged)")
    ax.legend(fontsize=8)
    ax = axes[1]
    for key, label in (("heldout_max_abs_dz", "max |dZ|"), ("heldout_max_abs_dn", "max |dn|")):
        ax.plot(k, [r[key] for r in rows], "o-", label=label)
    final = [r["round"] for r in rows if r["checkpoint"] == final_checkpoint]
    if final:
        ax.plot(final[-1], rows[final[-1]]["heldout_max_abs_dz"], "o", ms=14, mfc="none",
                mec="k", label="final model")
    ax.set_ylabel("held-out DMFT error vs the exact solver")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.bar(k, [r["samples_added"] for r in rows])
    ax.set_ylabel("samples added to the database")
    for ax in axes:
        ax.set_xlabel("round")
        ax.set_xticks(k)
    fig.suptitle("active learning: model k is evaluated in round k")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
