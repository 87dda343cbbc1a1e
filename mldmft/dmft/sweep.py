"""Sweeps in U: trace the Mott transition with up and down branches (hysteresis).

``sweep(solver, beta, U_values, direction)`` is the one function behind ``dmft_loop.py`` and
``mldmft dmft``, on any lattice (:mod:`mldmft.dmft.lattice`). The up branch starts from the metal
(the non-interacting lattice) at the smallest U, the down branch from an insulating seed at the
largest U (:meth:`~mldmft.dmft.lattice.Lattice.seed_delta_iw`); every
further U starts from the previous converged hybridisation. With ``out`` given, every finished
point is saved at once (atomically) and a rerun resumes after the last saved point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from solvers import SolverResult

from .io import load_sweep, save_sweep
from .lattice import BetheLattice, Lattice, get_lattice
from .loop import DMFTOptions, DMFTPoint, solve_point
from .spectra import point_spectrum, real_mesh
from .steps import guarded_step, make_step

__all__ = ["sweep", "metal_seed", "insulator_seed"]


def metal_seed(lattice: Lattice, beta: float, n_iw: int) -> np.ndarray:
    """The free lattice's hybridisation (Bethe: ``Delta = t^2 G_0`` of the semicircle)."""
    return lattice.seed_delta_iw(beta, n_iw)


def insulator_seed(lattice: Lattice, beta: float, n_iw: int, U: float) -> np.ndarray:
    """An insulating hybridisation at half filling (Bethe: ``Delta = t^2 G_at`` with the atomic
    ``G = (1/(iw - U/2) + 1/(iw + U/2))/2``)."""
    return lattice.seed_delta_iw(beta, n_iw, U)


def sweep(solver: str | Callable[..., SolverResult], beta: float, U_values: Sequence[float],
          direction: str = "up", *, D: float = 1.0, mu: float | None = None,
          solver_options: dict[str, Any] | None = None, n_iw: int = 1024, tol: float = 1e-6,
          max_iter: int = 300, mixing: float = 0.5, accel: str = "anderson",
          guard: dict[str, Any] | None = None, out: str | Path | None = None,
          progress: bool = False, metadata: dict[str, Any] | None = None,
          lattice: str | Lattice | dict[str, Any] | None = None,
          spectra: dict[str, Any] | None = None) -> list[DMFTPoint]:
    """DMFT on a lattice (default: Bethe) for every U, along the requested branch(es).

    Args:
        solver: registered solver name (``"ed"`` = ED on a refitted bath, ``"ipt"``, ``"nca"``,
            ``"hubbard_i"``, ``"ml"`` with ``solver_options={"checkpoint": PATH}``, ...) or a
            callable ``f(model, **solver_options) -> SolverResult``.
        beta: inverse temperature (1/D).
        U_values: interaction strengths (sorted internally per branch).
        direction: ``"up"``, ``"down"`` or ``"both"`` (up, then down).
        D: Bethe half bandwidth (used when ``lattice`` is not given).
        mu: chemical potential (default ``U/2``: half filling, with particle-hole symmetrisation).
        solver_options: passed to the solver.
        n_iw, tol, max_iter, mixing, accel: loop options (:class:`DMFTOptions`).
        guard: ``{"fallback": "ed", "threshold": 1e-3, "fallback_options": {...}}`` — use the
            fallback solver in any iteration where the network's ensemble spread exceeds the
            threshold; the count is reported per point (``fallbacks``).
        out: HDF5 file for the results; written after every point, resumed on rerun.
        progress: show a progress bar.
        metadata: extra attributes stored with the results (e.g. the resolved config).
        lattice: a :class:`~mldmft.dmft.lattice.Lattice`, a registered name (``"bethe"``,
            ``"square"``, ``"cubic"``, ``"hypercubic"``, ``"file"``) or a dict
            ``{"name": ..., **parameters}``; default ``BetheLattice(D)``. Stored in the metadata.
        spectra: compute ``A(w)`` for every point (:mod:`mldmft.dmft.spectra`):
            ``{"method": "auto"|"ed_poles"|"maxent"|"pade", "eta": 0.05, "omega_max": 4.0,
            "n_omega": 801, ...method options}``; ``auto`` = ED poles for ``solver="ed"``,
            MaxEnt otherwise.

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
    lattice = BetheLattice(D) if lattice is None else get_lattice(lattice)
    spec_opts = dict(spectra or {})
    if spec_opts.get("method", "auto") == "auto":  # ED poles only when every iteration was ED
        spec_opts["method"] = "ed_poles" if solver == "ed" and not guard else "maxent"
    omega = real_mesh(float(spec_opts.pop("omega_max", 4.0)), int(spec_opts.pop("n_omega", 801)))
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
            "solver_options": solver_options, "guard": guard or {},
            "lattice": lattice.params(), **(metadata or {})}
    if spectra is not None:
        meta["spectra"] = dict(spectra)
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
            if spectra is not None:
                point.spectrum = point_spectrum(point, lattice, state, omega=omega, **spec_opts)
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
