"""DMFT sweep results: HDF5 (schema in :mod:`mldmft.h5schema`) plus a CSV of the scalars.

Both are rewritten atomically after every point, so an interrupted sweep leaves a readable file
holding every finished point. The file stores the sweep's plan (everything that decides its
points: solver, options, beta, lattice, mu, the U values, direction and start mode, loop
settings) in the root attribute ``plan``; :func:`load_sweep` with ``expect`` resumes only the
same plan and otherwise names every setting that differs (:mod:`mldmft.plan`). A stored plan
without ``start`` is a continuation sweep.

A point's solver warnings are stored as the attribute ``warnings`` (a JSON list) and in the CSV
column ``warnings`` (joined by `` | ``); why a loop stopped early, as ``error``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..h5util import atomic_h5, atomic_path, read_h5, write_header
from ..h5schema import SWEEP_POINT_DATASETS, SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, SchemaError
from ..plan import PlanMismatchError, check_plan, plan_difference
from .loop import DMFTPoint

__all__ = ["save_sweep", "load_sweep", "write_csv", "load_sweep_csv", "plan_difference",
           "PlanMismatchError", "write_spectrum", "read_spectrum", "point_attrs",
           "point_from_attrs"]


_SCALARS = ("U", "branch", "converged", "iterations", "residual", "Z", "double_occupancy",
            "density", "g_beta_half", "kinetic_energy", "wall_time", "fallbacks", "beta", "mu",
            "D", "retried_linear", "warnings", "error")

#: Plan entries a stored plan may lack, and the value a file without one means.
_PLAN_DEFAULTS = {"start": "continuation"}

#: Separator of the warnings in a CSV cell.
_CSV_WARNING_SEPARATOR = " | "


def _json(meta: dict[str, Any]) -> str:
    return json.dumps(meta, sort_keys=True, default=str)


def save_sweep(path: str | Path, points: Sequence[DMFTPoint], meta: dict[str, Any],
               plan: dict[str, Any] | None = None) -> Path:
    """Write every point (HDF5, atomically) and the CSV summary next to it.

    ``plan``: the settings that decide the points (compared on resume, see :func:`load_sweep`);
    ``meta``: everything stored for the record (the plan plus e.g. the resolved config).
    """
    path = Path(path)
    with atomic_h5(path) as f:
        write_header(f, SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION)
        f.attrs["meta"] = _json(meta)
        if plan is not None:
            f.attrs["plan"] = _json(plan)
        f.attrs["n_points"] = len(points)
        grp = f.create_group("points")
        for k, p in enumerate(points):
            g = grp.create_group(f"{k:04d}")
            g.attrs.update(point_attrs(p))
            g["g_iw"] = p.g_iw
            g["sigma_iw"] = p.sigma_iw
            g["delta_iw"] = p.delta_iw
            if p.spectrum is not None:
                write_spectrum(g, p.spectrum)
    write_csv(path.with_suffix(".csv"), points)
    return path


def point_attrs(point: DMFTPoint) -> dict[str, Any]:
    """A point's scalars as HDF5 attributes (:meth:`DMFTPoint.scalars`; ``warnings`` as a JSON
    list); :func:`point_from_attrs` reads them back."""
    out = point.scalars()
    out["warnings"] = _json(out["warnings"])
    return out


def point_from_attrs(a: Any, g_iw: np.ndarray, sigma_iw: np.ndarray, delta_iw: np.ndarray,
                     spectrum: Any = None) -> DMFTPoint:
    """The :class:`DMFTPoint` of attributes written by :func:`point_attrs` and its functions
    (attributes of older files: ``retried_linear``, ``warnings``, ``error`` may be absent)."""
    return DMFTPoint(
        U=float(a["U"]), beta=float(a["beta"]), mu=float(a["mu"]), D=float(a["D"]),
        branch=str(a["branch"]), converged=bool(a["converged"]),
        iterations=int(a["iterations"]), residual=float(a["residual"]), Z=float(a["Z"]),
        double_occupancy=float(a["double_occupancy"]), density=float(a["density"]),
        g_beta_half=float(a["g_beta_half"]), kinetic_energy=float(a["kinetic_energy"]),
        wall_time=float(a["wall_time"]), g_iw=g_iw, sigma_iw=sigma_iw, delta_iw=delta_iw,
        fallbacks=int(a["fallbacks"]), retried_linear=bool(a.get("retried_linear", False)),
        spectrum=spectrum, warnings=list(json.loads(a.get("warnings", "[]"))),
        error=str(a.get("error", "")))


def write_spectrum(g: Any, spec: Any) -> None:
    """``<group>/spectrum/{omega, a_w}`` with attrs ``method`` and ``params`` (JSON)."""
    sg = g.create_group("spectrum")
    sg["omega"] = spec.omega
    sg["a_w"] = spec.a_w
    sg.attrs["method"] = spec.method
    sg.attrs["params"] = _json(spec.params)


def read_spectrum(g: Any) -> Any:
    """The :class:`~mldmft.dmft.spectra.Spectrum` stored in ``g["spectrum"]`` (or ``None``)."""
    from .spectra import Spectrum

    if "spectrum" not in g:
        return None
    sg = g["spectrum"]
    return Spectrum(sg["omega"][()], sg["a_w"][()], str(sg.attrs["method"]),
                    json.loads(sg.attrs["params"]))


def write_csv(path: str | Path, points: Sequence[DMFTPoint]) -> Path:
    """Scalars of every point, one row each (atomic rewrite)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(_SCALARS)
        for p in points:
            s = p.scalars()
            s["warnings"] = _CSV_WARNING_SEPARATOR.join(s["warnings"])
            w.writerow([s[k] for k in _SCALARS])
    return path


def load_sweep(path: str | Path, expect: dict[str, Any] | None = None) -> list[DMFTPoint]:
    """Read a sweep file; with ``expect`` (a plan, see :func:`save_sweep`), refuse a file that
    holds another sweep, naming what differs, in one line."""
    path = Path(path)
    with read_h5(path) as f:
        if f.attrs.get("schema") != SWEEP_SCHEMA:
            raise SchemaError(f"{path}: not a {SWEEP_SCHEMA} file")
        if int(f.attrs.get("schema_version", -1)) > SWEEP_SCHEMA_VERSION:
            raise SchemaError(f"{path}: schema version {f.attrs['schema_version']} is newer than "
                              f"this mldmft reads ({SWEEP_SCHEMA_VERSION})")
        if expect is not None:
            if "plan" not in f.attrs:
                raise ValueError(f"{path} holds a sweep written without its plan (older mldmft), "
                                 "so it cannot be resumed safely; choose another output file or "
                                 "delete it")
            stored = json.loads(f.attrs["plan"])
            for key, value in _PLAN_DEFAULTS.items():
                if key in expect:
                    stored.setdefault(key, value)
            check_plan(stored, expect, path)   # PlanMismatchError naming the differing keys
        points = []
        for key in sorted(f["points"]):
            g = f["points"][key]
            for ds in SWEEP_POINT_DATASETS:
                if ds.name not in g:
                    raise SchemaError(f"{path}: point {key} lacks '{ds.name}'")
            points.append(point_from_attrs(dict(g.attrs), g["g_iw"][()], g["sigma_iw"][()],
                                           g["delta_iw"][()], read_spectrum(g)))
        return points


def load_sweep_csv(path: str | Path) -> list[DMFTPoint]:
    """Scalars of a sweep from its CSV summary (functions left empty): enough to plot and compare
    Z, double occupancy and ``-beta G(beta/2)``, e.g. for a shipped reference curve."""
    points = []
    empty = np.zeros(0, dtype=complex)
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            points.append(DMFTPoint(
                U=float(r["U"]), beta=float(r["beta"]), mu=float(r["mu"]), D=float(r["D"]),
                branch=r["branch"], converged=r["converged"] == "True",
                iterations=int(r["iterations"]), residual=float(r["residual"]), Z=float(r["Z"]),
                double_occupancy=float(r["double_occupancy"]), density=float(r["density"]),
                g_beta_half=float(r["g_beta_half"]), kinetic_energy=float(r["kinetic_energy"]),
                wall_time=float(r["wall_time"]), g_iw=empty, sigma_iw=empty, delta_iw=empty,
                fallbacks=int(r["fallbacks"]),
                retried_linear=r.get("retried_linear", "False") == "True",
                warnings=[w for w in (r.get("warnings") or "").split(_CSV_WARNING_SEPARATOR)
                          if w],
                error=r.get("error") or ""))
    return points
