"""Sweeps in U: trace the Mott transition with up and down branches (hysteresis).

``sweep(solver, beta, U_values, direction)`` is the one function behind ``dmft_loop.py`` and
``mldmft dmft``, on any lattice (:mod:`mldmft.dmft.lattice`). The up branch starts from the metal
(the non-interacting lattice) at the smallest U, the down branch from an insulating seed at the
largest U (:meth:`~mldmft.dmft.lattice.Lattice.seed_delta_iw`); every
further U starts from the previous converged hybridisation. With ``out`` given, every finished
point is saved at once (atomically) and a rerun of the same sweep (same plan: solver, options,
beta, lattice, mu, U values, direction, loop settings) resumes after the last saved point; a
file holding another sweep is refused, naming what differs. While it runs, the sweep holds the
lock ``<out>.lock`` (a second sweep to the same file stops at once) and first removes the
temporary files a killed run left behind.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from solvers import SolverResult

from ..h5util import remove_tmp_litter, run_lock
from .io import load_sweep, save_sweep
from .lattice import BetheLattice, Lattice, get_lattice
from .loop import DMFTOptions, DMFTPoint, IterationCallback, solve_point
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
        out: HDF5 file for the results; written after every point; a rerun with the same plan
            resumes, one with another plan is refused (``ValueError`` naming the difference).
        progress: show a progress bar (with the iteration number and error inside a point).
        metadata: extra attributes stored with the results (e.g. the resolved config); not part
            of the plan compared on resume.
        lattice: a :class:`~mldmft.dmft.lattice.Lattice`, a registered name (``"bethe"``,
            ``"square"``, ``"cubic"``, ``"hypercubic"``, ``"file"``) or a dict
            ``{"name": ..., **parameters}``; default ``BetheLattice(D)``. Part of the plan.
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
    schedule = [(b, u) for b in branches
                for u in (sorted(U_values) if b == "up" else sorted(U_values, reverse=True))]
    name = solver if isinstance(solver, str) else getattr(solver, "__name__", "callable")
    # everything that decides the points (compared on resume; numbers normalised so 50 == 50.0)
    plan = {"solver": name, "beta": float(beta), "lattice": lattice.params(), "D": float(lattice.D),
            "mu": "U/2" if mu is None else float(mu), "U_values": sorted(U_values),
            "direction": direction, "n_iw": int(n_iw), "tol": float(tol),
            "max_iter": int(max_iter), "mixing": float(mixing), "accel": accel,
            "solver_options": solver_options, "guard": guard or {}}
    if spectra is not None:
        plan["spectra"] = dict(spectra)
    meta = {**plan, **(metadata or {})}
    lock = (run_lock(out, command=f"sweep {name} beta={beta:g} -> {out}")
            if out is not None else nullcontext())
    with lock:
        done: list[DMFTPoint] = []
        if out is not None:
            remove_tmp_litter(out)
            remove_tmp_litter(Path(out).with_suffix(".csv"))
            if Path(out).exists():
                done = load_sweep(out, expect=plan)
                if [(p.branch, p.U) for p in done] != schedule[:len(done)]:
                    raise ValueError(f"{out}: its points do not follow the plan's U order; "
                                     "choose another output file or delete it")
        spectrum = None
        if spectra is not None:
            def spectrum(point: DMFTPoint, state: dict) -> Any:
                return point_spectrum(point, lattice, state, omega=omega, **spec_opts)
        return _run(step, schedule, done, lattice, beta, n_iw, mu, options, out, plan, meta,
                    progress, spectrum)


#: Seconds between iteration updates of the progress bar, on a terminal (True) or in a log file.
_POSTFIX_INTERVAL = {True: 0.5, False: 30.0}


def _iteration_display(bar: Any, U: float, branch: str) -> IterationCallback:
    """Show the loop's iteration and error in the bar's postfix while a point runs (at most
    every 0.5 s on a terminal, every 30 s in a log file)."""
    interval = _POSTFIX_INTERVAL[bool(getattr(bar.fp, "isatty", lambda: False)())]
    last = [time.monotonic()]

    def show(iteration: int, residual: float, retry: bool) -> None:
        now = time.monotonic()
        if now - last[0] < interval:
            return
        last[0] = now
        bar.set_postfix_str(f"U={U:.3g} {branch}: iteration {iteration}, error {residual:.1e}"
                            + (" (linear-mixing retry)" if retry else ""))

    return show


def _run(step: Callable, schedule: list[tuple[str, float]], done: list[DMFTPoint],
         lattice: Lattice, beta: float, n_iw: int, mu: float | None, options: DMFTOptions,
         out: str | Path | None, plan: dict[str, Any], meta: dict[str, Any],
         progress: bool, spectrum: Callable | None = None) -> list[DMFTPoint]:
    """The sweep proper, after the plan has been checked against ``out``."""
    points = list(done)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(schedule), initial=len(done), unit="U", dynamic_ncols=True,
                   file=sys.stderr)
    last: dict[str, np.ndarray] = {}
    for p in done:
        last[p.branch] = p.delta_iw
    state: dict[str, Any] = {}
    try:
        for k, (branch, U) in enumerate(schedule):
            if k < len(done):
                continue
            if branch in last:
                delta0 = last[branch]
            elif branch == "up":
                delta0 = metal_seed(lattice, beta, n_iw)
            else:
                delta0 = insulator_seed(lattice, beta, n_iw, U)
            show = _iteration_display(bar, U, branch) if bar is not None else None
            point = solve_point(step, beta, U, delta0, lattice, mu, options, branch, state,
                                on_iteration=show)
            if spectrum is not None:
                point.spectrum = spectrum(point, state)
            points.append(point)
            last[branch] = point.delta_iw
            if out is not None:
                save_sweep(out, points, meta, plan)
            if bar is not None:
                bar.set_postfix_str(f"U={U:.3g} {branch}: Z={point.Z:.3f}, "
                                    f"{point.iterations} it, "
                                    + (point.note() or "converged"), refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return points
