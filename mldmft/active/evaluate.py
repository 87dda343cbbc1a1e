"""Evaluate a network inside DMFT: the flagged iterates of grid sweeps, and the held-out error.

Every iteration of an unguarded network-DMFT sweep calls the ``ml`` solver once. Its result is
*flagged* when :func:`mldmft.dmft.steps.guard_reasons` gives one of the configured reasons
(ensemble spread above the threshold, ``G(tau) > 0`` somewhere, an acausal raw prediction, a
trust-region cut); the iterate's model (``U``, ``eps_d``, ``beta``, ``Delta(i w_n)``) is kept as a
candidate for new training data. An iteration whose model lies outside the checkpoint's domain
(e.g. a transient density beyond its range) is solved with ``extrapolate=True`` so the sweep can
go on, counted as ``outside_domain`` and neither flagged nor kept: data outside the domain would
not change what the solver refuses. The *guard rate* is ``flagged / iterations`` over all
iterations of all sweeps of a round.

One sweep per ``(beta, density)`` of the grid is a *cell*; each finished cell is written
atomically (:func:`save_cell`, schema ``mldmft.active_cell`` in :mod:`mldmft.h5schema`), so an
interrupted round redoes only the unfinished cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from solvers import AndersonModel, SolverResult

from ..dmft.steps import GUARD_REASONS, guard_reasons
from ..h5util import atomic_h5, read_h5, write_header
from ..h5schema import ACTIVE_CELL_SCHEMA, ACTIVE_CELL_SCHEMA_VERSION, SchemaError
from .config import ActiveConfig, HeldOutPoint

__all__ = ["NetworkProbe", "CellRecord", "run_cell", "save_cell", "load_cell", "heldout_errors",
           "reference_point"]


class NetworkProbe:
    """The ``ml`` solver as a DMFT solver callable that counts iterations and keeps flagged
    iterates (see the module docstring)."""

    def __init__(self, checkpoint: str | Path, n_iw: int, threshold: float,
                 reasons: tuple[str, ...] = GUARD_REASONS) -> None:
        self.checkpoint, self.n_iw, self.threshold = str(checkpoint), int(n_iw), float(threshold)
        self.reasons = tuple(reasons)
        self.iterations = 0
        self.outside_domain = 0
        self.by_reason = {r: 0 for r in GUARD_REASONS}
        self.flagged: list[dict[str, Any]] = []
        self.__name__ = "ml"

    def __call__(self, model: AndersonModel, **_: Any) -> SolverResult:
        from ..ml.inference import OutsideDomainError, solve_ml

        self.iterations += 1
        try:
            res = solve_ml(model, checkpoint=self.checkpoint, n_iw=self.n_iw)
        except OutsideDomainError:
            self.outside_domain += 1
            return solve_ml(model, checkpoint=self.checkpoint, n_iw=self.n_iw, extrapolate=True)
        found = [r for r in guard_reasons(res, self.threshold) if r in self.reasons]
        for r in found:
            self.by_reason[r] += 1
        if found:
            spread = res.diagnostics.spread
            self.flagged.append({
                "U": model.U, "eps_d": model.eps_d, "beta": model.beta,
                "delta_iw": np.array(model.delta_iw, dtype=complex),
                "reasons": sum(1 << GUARD_REASONS.index(r) for r in found),
                "spread": np.nan if spread is None else float(np.max(np.abs(spread)))})
        return res


@dataclass
class CellRecord:
    """One grid cell's sweep: counts, the points' scalars and the flagged iterates.

    Attributes:
        beta, density: the cell.
        iterations: network calls (DMFT iterations) of the sweep.
        flagged: flagged iterations; ``by_reason``: per reason (an iteration may have several).
        outside_domain: iterations outside the checkpoint's domain (not flagged).
        points: per ``(U, branch)``: ``U``, ``branch``, ``converged``, ``iterations``, ``Z``,
            ``density``, ``mu``.
        U, eps_d, beta_it: the flagged iterates' parameters ``[m]``.
        delta_iw: their hybridisations ``[m, n_iw]`` (D).
        reasons: bit mask ``[m]``, bit ``i`` = ``GUARD_REASONS[i]``.
        spread: ``max_l |std G_l|`` ``[m]`` (NaN for one network).
    """

    beta: float
    density: float
    iterations: int
    flagged: int
    by_reason: dict[str, int]
    outside_domain: int
    points: list[dict[str, Any]]
    U: np.ndarray
    eps_d: np.ndarray
    beta_it: np.ndarray
    delta_iw: np.ndarray
    reasons: np.ndarray
    spread: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


def _sweep_kwargs(cfg: ActiveConfig, density: float) -> dict[str, Any]:
    """The loop options of every sweep here, and the filling (``density = 1``: half filling,
    ``mu = U/2``)."""
    return dict(options=cfg.loop, density=None if density == 1.0 else density)


def run_cell(cfg: ActiveConfig, checkpoint: str | Path, beta: float, density: float,
             progress: bool = False) -> CellRecord:
    """The unguarded network-DMFT sweep of one grid cell (``density = 1``: half filling)."""
    from ..dmft.sweep import sweep

    probe = NetworkProbe(checkpoint, cfg.loop.n_iw, cfg.flag.spread_threshold, cfg.flag.reasons)
    points = sweep(probe, beta, list(cfg.grid.U), cfg.grid.direction, progress=progress,
                   **_sweep_kwargs(cfg, density))
    fl = probe.flagged
    n_iw = cfg.loop.n_iw
    return CellRecord(
        beta=float(beta), density=float(density), iterations=probe.iterations,
        flagged=len(fl), by_reason=dict(probe.by_reason), outside_domain=probe.outside_domain,
        points=[{"U": p.U, "branch": p.branch, "converged": bool(p.converged),
                 "iterations": int(p.iterations), "Z": float(p.Z), "density": float(p.density),
                 "mu": float(p.mu)} for p in points],
        U=np.array([f["U"] for f in fl], dtype=float),
        eps_d=np.array([f["eps_d"] for f in fl], dtype=float),
        beta_it=np.array([f["beta"] for f in fl], dtype=float),
        delta_iw=(np.stack([f["delta_iw"] for f in fl]) if fl
                  else np.zeros((0, n_iw), dtype=complex)),
        reasons=np.array([f["reasons"] for f in fl], dtype=np.int8),
        spread=np.array([f["spread"] for f in fl], dtype=float))


def save_cell(path: str | Path, rec: CellRecord) -> Path:
    """Write a cell atomically (schema ``mldmft.active_cell``)."""
    with atomic_h5(path) as f:
        write_header(f, ACTIVE_CELL_SCHEMA, ACTIVE_CELL_SCHEMA_VERSION)
        for key in ("beta", "density", "iterations", "flagged", "outside_domain"):
            f.attrs[key] = getattr(rec, key)
        f.attrs["by_reason"] = json.dumps(rec.by_reason, sort_keys=True)
        f.attrs["points"] = json.dumps(rec.points)
        f.attrs["reason_bits"] = json.dumps(list(GUARD_REASONS))
        g = f.create_group("flagged")
        g["U"], g["eps_d"], g["beta"] = rec.U, rec.eps_d, rec.beta_it
        g["delta_iw"], g["reasons"], g["spread"] = rec.delta_iw, rec.reasons, rec.spread
    return Path(path)


def load_cell(path: str | Path) -> CellRecord:
    """Read a cell written by :func:`save_cell`."""
    with read_h5(path, "; delete it to redo the cell") as f:
        if f.attrs.get("schema") != ACTIVE_CELL_SCHEMA:
            raise SchemaError(f"{path}: not a {ACTIVE_CELL_SCHEMA} file")
        a = f.attrs
        g = f["flagged"]
        return CellRecord(
            beta=float(a["beta"]), density=float(a["density"]), iterations=int(a["iterations"]),
            flagged=int(a["flagged"]), by_reason=json.loads(a["by_reason"]),
            outside_domain=int(a["outside_domain"]), points=json.loads(a["points"]),
            U=g["U"][()], eps_d=g["eps_d"][()], beta_it=g["beta"][()],
            delta_iw=g["delta_iw"][()], reasons=g["reasons"][()], spread=g["spread"][()])


def reference_point(cfg: ActiveConfig, point: HeldOutPoint, out: str | Path,
                    progress: bool = False):
    """The exact solver's DMFT solution at a held-out point, cached in ``out`` (a sweep file:
    an existing one with the same plan is read, not recomputed)."""
    from .. import load_solver_module
    from ..dmft.sweep import sweep

    load_solver_module(cfg.reference.solver)
    return sweep(cfg.reference.solver, point.beta, [point.U], point.branch,
                 solver_options=dict(cfg.reference.options), out=out, progress=progress,
                 **_sweep_kwargs(cfg, point.density))[0]


def heldout_errors(cfg: ActiveConfig, checkpoint: str | Path, references: list,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """The network's DMFT solution at every held-out point against its reference:
    ``{"abs_dz": [...], "abs_dn": [...], "z": [...], "n": [...], "converged": [...]}``."""
    from ..dmft.sweep import sweep

    out: dict[str, list] = {"abs_dz": [], "abs_dn": [], "z": [], "n": [], "converged": []}
    for point, ref in zip(cfg.reference.points, references):
        probe = NetworkProbe(checkpoint, cfg.loop.n_iw, cfg.flag.spread_threshold)
        p = sweep(probe, point.beta, [point.U], point.branch,
                  **_sweep_kwargs(cfg, point.density))[0]
        out["abs_dz"].append(abs(p.Z - ref.Z))
        out["abs_dn"].append(abs(p.density - ref.density))
        out["z"].append(p.Z)
        out["n"].append(p.density)
        out["converged"].append(bool(p.converged))
        log(f"held-out   {point.label()}: Z {p.Z:.4f} (reference {ref.Z:.4f}), n {p.density:.4f} "
            f"(reference {ref.density:.4f})")
    return out
