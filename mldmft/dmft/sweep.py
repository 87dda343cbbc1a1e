"""Sweeps in U: trace the Mott transition with up and down branches (hysteresis).

``sweep(solver, beta, U_values, direction)`` is the one function behind ``dmft_loop.py`` and
``mldmft dmft``. The up branch starts from the metal (the non-interacting semicircle) at the
smallest U, the down branch from an insulating seed (the atomic ``G`` at the largest U); every
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

from solvers import SolverResult, matsubara_freqs

from ..h5util import remove_tmp_litter, run_lock
from .io import load_sweep, save_sweep
from .lattice import BetheLattice
from .loop import DMFTOptions, DMFTPoint, IterationCallback, solve_point
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
        out: HDF5 file for the results; written after every point; a rerun with the same plan
            resumes, one with another plan is refused (``ValueError`` naming the difference).
        progress: show a progress bar (with the iteration number and error inside a point).
        metadata: extra attributes stored with the results (e.g. the resolved config); not part
            of the plan compared on resume.

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
    schedule = [(b, u) for b in branches
                for u in (sorted(U_values) if b == "up" else sorted(U_values, reverse=True))]
    name = solver if isinstance(solver, str) else getattr(solver, "__name__", "callable")
    # everything that decides the points (compared on resume; numbers normalised so 50 == 50.0)
    plan = {"solver": name, "beta": float(beta), "lattice": "bethe", "D": float(D),
            "mu": "U/2" if mu is None else float(mu), "U_values": sorted(U_values),
            "direction": direction, "n_iw": int(n_iw), "tol": float(tol),
            "max_iter": int(max_iter), "mixing": float(mixing), "accel": accel,
            "solver_options": solver_options, "guard": guard or {}}
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
        return _run(step, schedule, done, lattice, beta, n_iw, mu, options, out, plan, meta,
                    progress)


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
         lattice: BetheLattice, beta: float, n_iw: int, mu: float | None, options: DMFTOptions,
         out: str | Path | None, plan: dict[str, Any], meta: dict[str, Any],
         progress: bool) -> list[DMFTPoint]:
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
