"""The point store of a phase-diagram run: every finished DMFT point on disk at once, so a rerun
after an interruption solves nothing twice.

A point is identified by its problem: ``(beta, U, branch, start)``, where ``start`` is
``"metal"`` or ``"insulator"`` (a seeded start) or the key of the point it was continued from
(same ``beta``; the whole history of a continuation is then part of the key). The key is the
first 16 hex digits of the SHA-1 of ``beta|U|branch|start`` (``beta`` and ``U`` rounded to 10
significant digits). Each point is one small HDF5 file ``<dir>/<key>.h5`` written atomically
(:func:`~mldmft.h5util.atomic_h5`; layout in :mod:`mldmft.h5schema`, "phase-diagram point
store"); ``<dir>/plan.json`` holds what decides the points (solver, its options and identity,
lattice, loop options): a store of another plan is refused
(:class:`~mldmft.plan.PlanMismatchError`, :func:`mldmft.plan.check_plan_file`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

from ..h5schema import PHASE_POINT_SCHEMA, PHASE_POINT_SCHEMA_VERSION, SchemaError
from ..h5util import atomic_h5, read_h5, write_header
from ..plan import check_plan_file
from .loop import DMFTPoint

__all__ = ["PointStore", "point_key"]


def _num(x: float) -> str:
    return f"{float(x):.10g}"


def point_key(beta: float, U: float, branch: str, start: str) -> str:
    """The store key of the problem ``(beta, U, branch, start)`` (see the module doc)."""
    text = f"{_num(beta)}|{_num(U)}|{branch}|{start}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class PointStore:
    """Finished DMFT points of one solver, one file each, loaded into memory on opening.

    Args:
        directory: the store's directory (created).
        plan: what decides the points (JSON-able); compared with ``plan.json`` of an existing
            store.

    Call only while holding the run's lock (:func:`~mldmft.h5util.run_lock`): opening removes
    the temporary files a killed writer left behind.
    """

    def __init__(self, directory: str | Path, plan: dict[str, Any]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        check_plan_file(self.dir / "plan.json", plan, self.dir,
                        holds="holds another sweep, not resumed",
                        remedy="choose another output file or delete it")
        self._points: dict[str, tuple[DMFTPoint, dict[str, Any]]] = {}
        for path in self.dir.glob("*.h5.tmp*"):   # left by a killed writer (we hold the lock)
            path.unlink(missing_ok=True)
        for path in sorted(self.dir.iterdir()):
            if path.suffix == ".h5":
                point, extra = _read_point(path)
                self._points[path.stem] = (point, extra)
        #: points loaded from disk at opening (resumed) and solved since
        self.loaded = len(self._points)
        self.added = 0

    def __len__(self) -> int:
        return len(self._points)

    def __contains__(self, key: str) -> bool:
        return key in self._points

    def get(self, key: str) -> DMFTPoint | None:
        """The stored point (``None`` if not solved yet); its ``info["key"]`` is ``key``."""
        item = self._points.get(key)
        return None if item is None else item[0]

    def extra(self, key: str) -> dict[str, Any]:
        """What was stored beside the point: ``start``, ``stage``."""
        return dict(self._points[key][1])

    def put(self, key: str, point: DMFTPoint, start: str, stage: str) -> None:
        """Write the point (atomically) and keep it; ``start``: its start (seed name or the
        predecessor's key), ``stage``: the step of the run that asked for it."""
        point.info["key"] = key
        path = self.dir / f"{key}.h5"
        with atomic_h5(path) as f:
            write_header(f, PHASE_POINT_SCHEMA, PHASE_POINT_SCHEMA_VERSION)
            for name, value in point.scalars().items():
                # lists (the solver's warnings) as JSON text
                f.attrs[name] = json.dumps(value) if isinstance(value, list) else value
            f.attrs["key"] = key
            f.attrs["start"] = start
            f.attrs["stage"] = stage
            f["g_iw"] = point.g_iw
            f["sigma_iw"] = point.sigma_iw
            f["delta_iw"] = point.delta_iw
        self._points[key] = (point, {"start": start, "stage": stage})
        self.added += 1

    def items(self) -> Iterator[tuple[str, DMFTPoint, dict[str, Any]]]:
        """``(key, point, extra)`` of every stored point."""
        for key, (point, extra) in self._points.items():
            yield key, point, dict(extra)


def _read_point(path: Path) -> tuple[DMFTPoint, dict[str, Any]]:
    """A stored point and its ``start``/``stage``; a damaged file raises
    :class:`~mldmft.h5schema.SchemaError` naming it."""
    hint = f"; delete {path} (its point is recomputed)"
    with read_h5(path, hint) as f:
        if f.attrs.get("schema") != PHASE_POINT_SCHEMA:
            raise SchemaError(f"{path}: not a {PHASE_POINT_SCHEMA} file{hint}")
        a = dict(f.attrs)
        point = DMFTPoint(
            U=float(a["U"]), beta=float(a["beta"]), mu=float(a["mu"]), D=float(a["D"]),
            branch=str(a["branch"]), converged=bool(a["converged"]),
            iterations=int(a["iterations"]), residual=float(a["residual"]), Z=float(a["Z"]),
            double_occupancy=float(a["double_occupancy"]), density=float(a["density"]),
            g_beta_half=float(a["g_beta_half"]), kinetic_energy=float(a["kinetic_energy"]),
            wall_time=float(a["wall_time"]), g_iw=f["g_iw"][()], sigma_iw=f["sigma_iw"][()],
            delta_iw=f["delta_iw"][()], fallbacks=int(a["fallbacks"]),
            retried_linear=bool(a["retried_linear"]))
        for name, value in (("warnings", json.loads(a.get("warnings", "[]"))),
                            ("error", str(a.get("error", "")))):
            if hasattr(point, name):   # fields of newer DMFTPoints
                setattr(point, name, value)
        point.info["key"] = str(a["key"])
        return point, {"start": str(a["start"]), "stage": str(a["stage"])}
