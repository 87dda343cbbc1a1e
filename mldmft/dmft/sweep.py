"""Sweeps in U: trace the Mott transition with up and down branches (hysteresis).

``sweep(solver, beta, U_values, direction)`` is the one function behind ``dmft_loop.py`` and
``mldmft dmft``. The up branch starts from the metal (the non-interacting semicircle) at the
smallest U, the down branch from an insulating seed (the atomic ``G`` at the largest U); every
further U starts from the previous converged hybridisation. With ``out`` given, every finished
point is saved at once (atomically) and a rerun resumes after the last saved point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from solvers import SolverResult, matsubara_freqs

from .io import load_sweep, save_sweep
from .lattice import BetheLattice
from .loop import DMFTOptions, DMFTPoint, solve_point
from .steps import guarded_step, make_step

__all__ = ["sweep", "metal_seed", "insulator_seed"]


def metal_seed(lattice: BetheLattice, beta: float, n_iw: int) -> np.ndarray:
    """``Delta = t^2 G_0`` of the non-interacting semicircle."""
    return lattice.delta_iw(lattice.g0_iw(beta, n_iw))


def insulator_seed(lattice: BetheLattice, beta: float, n_iw: int, U: float) -> np.ndarray:
    """``Delta = t^2 G_at`` with the half-filled atomic ``G = (1/(iw - U/2) + 1/(iw + U/2))/2``."""
    iw = 1j * matsubara_freqs(beta, n_iw)
    return lattice.delta_iw(0.5 * (1 / (iw - U / 2) + 1 / (iw + U / 2)))


def sweep(solver: str | Callable[..., SolverResult], beta: float, U_values: Sequence[float],
          direction: str = "up", *, D: float = 1.0, mu: float | None = None,
          solver_options: dict[str, Any] | None = None, n_iw: int = 1024, tol: float = 1e-6,
          max_iter: int = 300, mixing: float = 0.5, accel: str = "anderson",
          guard: dict[str, Any] | None = None, out: str | Path | None = None,
          progress: bool = False, metadata: dict[str, Any] | None = None) -> list[DMFTPoint]:
    """DMFT on the Bethe lattice for every U, along the requested branch(es).

    Args:
        solver: registered solver name (``"ed"`` = ED on a refitted bath, ``"ipt"``, ``"nca"``,
            ``"hubbard_i"``, ``"ml"`` with ``solver_options={"checkpoint": PATH}``, ...) or a
            callable ``f(model, **solver_options) -> SolverResult``.
        beta: inverse temperature (1/D).
        U_values: interaction strengths (sorted internally per branch).
        direction: ``"up"``, ``"down"`` or ``"both"`` (up, then down).
        D: Bethe half bandwidth.
        mu: chemical potential (default ``U/2``: half filling, with particle-hole symmetrisation).
        solver_options: passed to the solver.
        n_iw, tol, max_iter, mixing, accel: loop options (:class:`DMFTOptions`).
        guard: ``{"fallback": "ed", "threshold": 1e-3, "fallback_options": {...}}`` — use the
            fallback solver in any iteration where the network's ensemble spread exceeds the
            threshold; the count is reported per point (``fallbacks``).
        out: HDF5 file for the results; written after every point, resumed on rerun.
        progress: show a progress bar.
        metadata: extra attributes stored with the results (e.g. the resolved config).

    Returns:
        One :class:`DMFTPoint` per ``(U, branch)``, in sweep order.
    """
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be 'up', 'down' or 'both', got {direction!r}")
    U_values = [float(u) for u in U_values]
    if not U_values:
        raise ValueError("U_values is empty")
    if any(not np.isfinite(u) or u < 0 for u in U_values):
        raise ValueError(f"U_values must be finite and >= 0, got {U_values}")
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    lattice = BetheLattice(D)
    options = DMFTOptions(n_iw=n_iw, tol=tol, max_iter=max_iter, mixing=mixing, accel=accel)
    solver_options = dict(solver_options or {})
    step = make_step(solver, n_iw, solver_options)
    if guard:
        fb = make_step(guard.get("fallback", "ed"), n_iw, dict(guard.get("fallback_options", {})))
        step = guarded_step(step, fb, float(guard.get("threshold", 1e-3)))
    branches = ["up", "down"] if direction == "both" else [direction]
    plan = [(b, u) for b in branches
            for u in (sorted(U_values) if b == "up" else sorted(U_values, reverse=True))]
    meta = {"solver": solver if isinstance(solver, str) else getattr(solver, "__name__", "callable"),
            "beta": beta, "D": D, "mu": "U/2" if mu is None else mu, "n_iw": n_iw, "tol": tol,
            "max_iter": max_iter, "mixing": mixing, "accel": accel,
            "solver_options": solver_options, "guard": guard or {}, **(metadata or {})}
    done: list[DMFTPoint] = []
    if out is not None and Path(out).exists():
        done = load_sweep(out, expect=meta)
    points = list(done)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), initial=len(done), unit="U", dynamic_ncols=True)
    last: dict[str, np.ndarray] = {}
    for p in done:
        last[p.branch] = p.delta_iw
    state: dict[str, Any] = {}
    try:
        for k, (branch, U) in enumerate(plan):
            if k < len(done):
                continue
            if branch in last:
                delta0 = last[branch]
            elif branch == "up":
                delta0 = metal_seed(lattice, beta, n_iw)
            else:
                delta0 = insulator_seed(lattice, beta, n_iw, U)
            point = solve_point(step, beta, U, delta0, lattice, mu, options, branch, state)
            points.append(point)
            last[branch] = point.delta_iw
            if out is not None:
                save_sweep(out, points, meta)
            if bar is not None:
                bar.set_postfix(U=f"{U:.3g}", Z=f"{point.Z:.3f}", it=point.iterations,
                                ok=point.converged)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return points
