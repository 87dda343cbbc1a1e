"""Write and read one solver result in HDF5 (schema: :mod:`mldmft.h5schema`).

Files are written to a temporary name and renamed into place, so an interrupted write never
leaves an unreadable file behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from solvers import AndersonModel, SolverResult

from .h5util import atomic_h5, read_h5, write_header
from .h5schema import (RESULT_DATASETS, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, check_schema)

__all__ = ["write_result", "read_result", "result_summary"]


_NOT_STORED = ("kept_states", "pole_weights", "pole_energies")  # large: not in the info attr


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if k not in _NOT_STORED}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def result_summary(result: SolverResult) -> dict[str, Any]:
    """The scalar figures a physicist reads first."""
    return {
        "solver": result.solver,
        "beta": result.beta,
        "density": result.density,
        "double_occupancy": result.double_occupancy,
        "energy": result.energy,
        "z": result.z,
        "converged": bool(result.converged),
        "iterations": result.iterations,
        "wall_time_s": result.wall_time,
    }


def write_result(path: str | Path, result: SolverResult, model: AndersonModel,
                 options: dict[str, Any] | None = None, spectrum: Any = None) -> Path:
    """Store ``result`` (and the model and options that produced it) at ``path`` atomically;
    with ``spectrum`` (:class:`mldmft.dmft.spectra.Spectrum`) also ``/spectrum``."""
    path = Path(path)
    with atomic_h5(path) as f:
        write_header(f, RESULT_SCHEMA, RESULT_SCHEMA_VERSION)
        f.attrs["solver"] = result.solver
        f.attrs["solver_options"] = json.dumps(_jsonable(options or {}))
        f.attrs["model"] = json.dumps(model.to_dict())
        f.attrs["summary"] = json.dumps(_jsonable(result_summary(result)))
        f["g_iw"] = result.g_iw
        f["sigma_iw"] = result.sigma_iw
        f["wn"] = result.wn
        f["g_l"] = result.g_l
        if result.g_tau is not None:
            f["tau"] = result.tau
            f["g_tau"] = result.g_tau
        sc = f.create_group("scalars")
        for k, v in result_summary(result).items():
            if v is not None and k != "solver":
                sc.attrs[k] = v
        f.attrs["info"] = json.dumps(_jsonable(result.info))
        if spectrum is not None:
            from .dmft.io import write_spectrum

            write_spectrum(f, spectrum)
    return path


def read_result(path: str | Path) -> tuple[SolverResult, AndersonModel]:
    """Read a file written by :func:`write_result`; :class:`SchemaError` if it is not one."""
    with read_h5(path) as f:
        check_schema(f, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, RESULT_DATASETS)
        sc = dict(f["scalars"].attrs)
        model = AndersonModel.from_dict(json.loads(f.attrs["model"]))
        res = SolverResult(
            solver=str(f.attrs["solver"]), beta=float(sc["beta"]), g_iw=f["g_iw"][()],
            sigma_iw=f["sigma_iw"][()], g_l=f["g_l"][()], density=float(sc["density"]),
            double_occupancy=sc.get("double_occupancy"), energy=sc.get("energy"),
            converged=bool(sc["converged"]), iterations=sc.get("iterations"),
            g_tau=f["g_tau"][()] if "g_tau" in f else None,
            tau=f["tau"][()] if "tau" in f else None, wall_time=float(sc["wall_time_s"]),
            info=json.loads(f.attrs.get("info", "{}")))
    return res, model
