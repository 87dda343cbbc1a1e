"""Sweeps in U (Mott transition) or in mu (doping-driven transition) with up and down branches.

``sweep(solver, beta, U_values, direction)`` (at fixed ``mu``, half filling, or fixed
``density``) and ``sweep_mu(solver, beta, U, mu_values, direction)`` are the functions behind
``dmft_loop.py`` and ``mldmft dmft``, on any lattice (:mod:`mldmft.dmft.lattice`); both run the
same machinery along one parameter axis. The up branch starts from the metal (the
non-interacting lattice) at the smallest U, the down branch from an insulating seed at the largest
U (:meth:`~mldmft.dmft.lattice.Lattice.seed_delta_iw`); every further U starts from the previous
converged hybridisation (and, at fixed density, from its ``mu``). A sweep in ``mu`` seeds the
same way: up from the metal at the smallest ``mu``, down from the insulator at the largest (for a
range ending at ``mu = U/2``, hole doping, the down branch follows the Mott insulator into the
doped region, the up branch the doped metal towards it). With ``out`` given, every finished point
is saved at once (atomically) and a rerun of the same sweep (same plan: solver, options, beta,
lattice, mu or density, U or mu values, direction, loop settings) resumes after the last saved
point; a file holding another sweep is refused, naming what differs. While it runs, the sweep
holds the lock ``<out>.lock`` (a second sweep to the same file stops at once) and first removes the
temporary files a killed run left behind.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from solvers import SolverResult, solver_identity

from ..h5util import remove_tmp_litter, run_lock
from .io import load_sweep, save_sweep
from .lattice import BetheLattice, Lattice, get_lattice
from .loop import DMFTOptions, DMFTPoint, IterationCallback, check_density_args, solve_point
from .spectra import point_spectrum, real_mesh
from .steps import guarded_step, make_step

__all__ = ["sweep", "sweep_mu", "metal_seed", "insulator_seed"]


def metal_seed(lattice: Lattice, beta: float, n_iw: int) -> np.ndarray:
    """The free lattice's hybridisation (Bethe: ``Delta = t^2 G_0`` of the semicircle)."""
    return lattice.seed_delta_iw(beta, n_iw)


def insulator_seed(lattice: Lattice, beta: float, n_iw: int, U: float) -> np.ndarray:
    """An insulating hybridisation at half filling (Bethe: ``Delta = t^2 G_at`` with the atomic
    ``G = (1/(iw - U/2) + 1/(iw + U/2))/2``)."""
    return lattice.seed_delta_iw(beta, n_iw, U)


def sweep(solver: str | Callable[..., SolverResult], beta: float, U_values: Sequence[float],
          direction: str = "up", *, D: float = 1.0, mu: float | None = None,
          density: float | None = None, tol_density: float = 1e-4,
          solver_options: dict[str, Any] | None = None, n_iw: int = 1024, tol: float = 1e-6,
          max_iter: int = 300, mixing: float = 0.5, accel: str = "anderson",
          history: int = 5, stall: int = 50,
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
        density: fixed filling ``n`` in ``(0, 2)`` (electrons per site) instead of ``mu``: the
            loop finds ``mu`` at every point (:mod:`mldmft.dmft.loop`), warm-started from the
            previous point of the branch; each point stores the ``mu`` found. Excludes ``mu``.
        tol_density: at fixed density, a point converges only when also
            ``|n - density| < tol_density``.
        solver_options: passed to the solver.
        n_iw, tol, max_iter, mixing, accel, history, stall: loop options
            (:class:`DMFTOptions`); symmetrisation follows the filling (half filling only).
        guard: ``{"fallback": "ed", "threshold": 1e-3, "fallback_options": {...}}`` — use the
            fallback solver in any iteration where the network's ensemble spread exceeds the
            threshold or its ``G(tau)`` is positive somewhere; the count is reported per point
            (``fallbacks``). ``"fallback": None`` only counts such iterations (the unguarded
            network's guard rate) and keeps the network's result.
        out: HDF5 file for the results; written after every point; a rerun with the same plan
            resumes, one with another plan is refused (:class:`~mldmft.dmft.io.PlanMismatchError`,
            a ``ValueError`` naming the difference). The plan holds the solver's identity
            (:func:`solvers.solver_identity`; for ``ml`` the SHA-256 of the model file), so
            results of a replaced network are not resumed as the new one's.
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
    check_density_args(mu, density)
    U_values = _check_values("U_values", U_values, nonnegative=True)
    if density is not None:
        mu_plan: Any = "from density"
    else:
        mu_plan = "U/2" if mu is None else float(mu)
    axis = {"U_values": sorted(U_values), "mu": mu_plan}
    if density is not None:
        axis.update(density=float(density), tol_density=float(tol_density))
    return _sweep(solver, beta, "U", U_values, direction, axis, fixed_U=None, mu=mu,
                  density=density, tol_density=tol_density, D=D, solver_options=solver_options,
                  n_iw=n_iw, tol=tol, max_iter=max_iter, mixing=mixing, accel=accel,
                  history=history, stall=stall, guard=guard, out=out, progress=progress,
                  metadata=metadata, lattice=lattice, spectra=spectra)


def sweep_mu(solver: str | Callable[..., SolverResult], beta: float, U: float,
             mu_values: Sequence[float], direction: str = "up", **options: Any
             ) -> list[DMFTPoint]:
    """DMFT at fixed ``U`` for every chemical potential in ``mu_values`` (the doping-driven
    transition), along the requested branch(es): ``"up"`` in increasing ``mu`` from the metal
    (the free lattice), ``"down"`` in decreasing ``mu`` from the half-filled insulating seed,
    ``"both"``; every further ``mu`` starts from the previous converged hybridisation. For a
    range ``[mu_lo, U/2]`` (hole doping) the down branch follows the Mott insulator into the
    doped region and the up branch the doped metal towards half filling. Nothing is symmetrised
    except at ``mu = U/2`` on a particle-hole symmetric lattice. Each point stores its
    ``density``.

    ``options``: every keyword of :func:`sweep` except ``mu``, ``density`` and ``tol_density``
    (``D``, ``solver_options``, loop options, ``guard``, ``out``, ``progress``, ``metadata``,
    ``lattice``, ``spectra``). The plan stored in ``out`` holds ``U`` and ``mu_values``.

    Returns:
        One :class:`DMFTPoint` per ``(mu, branch)``, in sweep order.
    """
    bad = sorted({"mu", "density", "tol_density", "U_values"} & set(options))
    if bad:
        raise ValueError(f"sweep_mu sweeps mu at fixed U; it takes no {', '.join(bad)}")
    if not (np.isfinite(U) and U >= 0):
        raise ValueError(f"U must be finite and >= 0, got {U}")
    mu_values = _check_values("mu_values", mu_values, nonnegative=False)
    axis = {"U": float(U), "mu_values": sorted(mu_values)}
    return _sweep(solver, beta, "mu", mu_values, direction, axis, fixed_U=float(U), **options)


def _check_values(name: str, values: Sequence[float], nonnegative: bool) -> list[float]:
    """The sweep axis as floats; one-line ``ValueError`` for an empty, non-finite or negative
    (``nonnegative``) list."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}") from None
    if not out:
        raise ValueError(f"{name} is empty")
    if any(not np.isfinite(v) or (nonnegative and v < 0) for v in out):
        raise ValueError(f"{name} must be finite{' and >= 0' if nonnegative else ''}, got {out}")
    return out


def _sweep(solver: str | Callable[..., SolverResult], beta: float, axis: str,
           values: list[float], direction: str, axis_plan: dict[str, Any], *,
           fixed_U: float | None, mu: float | None = None, density: float | None = None,
           tol_density: float = 1e-4, D: float = 1.0,
           solver_options: dict[str, Any] | None = None, n_iw: int = 1024, tol: float = 1e-6,
           max_iter: int = 300, mixing: float = 0.5, accel: str = "anderson",
           history: int = 5, stall: int = 50,
           guard: dict[str, Any] | None = None, out: str | Path | None = None,
           progress: bool = False, metadata: dict[str, Any] | None = None,
           lattice: str | Lattice | dict[str, Any] | None = None,
           spectra: dict[str, Any] | None = None) -> list[DMFTPoint]:
    """The sweep along ``axis`` (``"U"``: ``values`` are U; ``"mu"``: ``values`` are mu at
    ``fixed_U``); ``axis_plan``: the plan entries that name the axis and the filling."""
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be 'up', 'down' or 'both', got {direction!r}")
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    lattice = BetheLattice(D) if lattice is None else get_lattice(lattice)
    spec_opts = dict(spectra or {})
    if spec_opts.get("method", "auto") == "auto":  # ED poles only when every iteration was ED
        spec_opts["method"] = "ed_poles" if solver == "ed" and not guard else "maxent"
    omega = real_mesh(float(spec_opts.pop("omega_max", 4.0)), int(spec_opts.pop("n_omega", 801)))
    options = DMFTOptions(n_iw=n_iw, tol=tol, max_iter=max_iter, mixing=mixing, accel=accel,
                          history=history, tol_density=tol_density, stall=stall)
    solver_options = dict(solver_options or {})
    step = make_step(solver, n_iw, solver_options)
    fb_name = guard.get("fallback", "ed") if guard else None
    fb_options = dict((guard or {}).get("fallback_options", {}))
    if guard:
        fb = None if fb_name is None else make_step(fb_name, n_iw, fb_options)
        step = guarded_step(step, fb, float(guard.get("threshold", 1e-3)))
    branches = ["up", "down"] if direction == "both" else [direction]
    order = [(b, v) for b in branches
             for v in (sorted(values) if b == "up" else sorted(values, reverse=True))]
    # (branch, U, mu): mu None = U/2 or found from the density
    schedule = [(b, v, mu) if axis == "U" else (b, fixed_U, v) for b, v in order]
    name = solver if isinstance(solver, str) else getattr(solver, "__name__", "callable")
    # everything that decides the points (compared on resume; numbers normalised so 50 == 50.0)
    plan = {"solver": name, "beta": float(beta), "lattice": lattice.params(), "D": float(lattice.D),
            **axis_plan, "direction": direction, "n_iw": int(n_iw), "tol": float(tol),
            "max_iter": int(max_iter), "mixing": float(mixing), "accel": accel,
            "solver_options": solver_options, "guard": guard or {}}
    # Anderson settings enter the plan only when not the defaults (older files stay resumable)
    defaults = DMFTOptions()
    plan.update({k: getattr(options, k) for k in ("history", "stall")
                 if getattr(options, k) != getattr(defaults, k)})
    # what else decides the solver's results (the network's model file): not resumed with another
    identity = solver_identity(solver, solver_options) if isinstance(solver, str) else {}
    if fb_name is not None:
        identity.update({f"fallback.{k}": v
                         for k, v in solver_identity(str(fb_name), fb_options).items()})
    if identity:
        plan["solver_identity"] = identity
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
                key = [(p.branch, p.U if axis == "U" else p.mu) for p in done]
                if key != order[:len(done)]:
                    raise ValueError(f"{out}: its points do not follow the plan's {axis} order; "
                                     "choose another output file or delete it")
        spectrum = None
        if spectra is not None:
            def spectrum(point: DMFTPoint, state: dict) -> Any:
                return point_spectrum(point, lattice, state, omega=omega, **spec_opts)
        return _run(step, schedule, done, lattice, beta, n_iw, density, options, out, plan, meta,
                    progress, spectrum, axis)


#: Seconds between iteration updates of the progress bar, on a terminal (True) or in a log file.
_POSTFIX_INTERVAL = {True: 0.5, False: 30.0}


def _iteration_display(bar: Any, label: str, branch: str) -> IterationCallback:
    """Show the loop's iteration and error in the bar's postfix while a point runs (at most
    every 0.5 s on a terminal, every 30 s in a log file); ``label`` names the point
    (``U=2``, ``mu=0.7``)."""
    interval = _POSTFIX_INTERVAL[bool(getattr(bar.fp, "isatty", lambda: False)())]
    last = [time.monotonic()]

    def show(iteration: int, residual: float, retry: bool) -> None:
        now = time.monotonic()
        if now - last[0] < interval:
            return
        last[0] = now
        bar.set_postfix_str(f"{label} {branch}: iteration {iteration}, error {residual:.1e}"
                            + (" (linear-mixing retry)" if retry else ""))

    return show


def _run(step: Callable, schedule: list[tuple[str, float, float | None]],
         done: list[DMFTPoint], lattice: Lattice, beta: float, n_iw: int, density: float | None,
         options: DMFTOptions, out: str | Path | None, plan: dict[str, Any],
         meta: dict[str, Any], progress: bool, spectrum: Callable | None = None,
         axis: str = "U") -> list[DMFTPoint]:
    """The sweep proper, after the plan has been checked against ``out``; ``schedule`` holds
    ``(branch, U, mu)`` (``mu`` None: ``U/2``, or found from ``density``)."""
    points = list(done)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(schedule), initial=len(done), unit="point", dynamic_ncols=True,
                   file=sys.stderr)
    last: dict[str, DMFTPoint] = {p.branch: p for p in done}
    state: dict[str, Any] = {}
    try:
        for k, (branch, U, mu) in enumerate(schedule):
            if k < len(done):
                continue
            if branch in last:
                delta0 = last[branch].delta_iw
            elif branch == "up":
                delta0 = metal_seed(lattice, beta, n_iw)
            else:
                delta0 = insulator_seed(lattice, beta, n_iw, U)
            label = f"U={U:.3g}" if axis == "U" else f"mu={mu:.4g}"
            show = _iteration_display(bar, label, branch) if bar is not None else None
            mu_start = last[branch].mu if density is not None and branch in last else None
            point = solve_point(step, beta, U, delta0, lattice, mu, options, branch, state,
                                on_iteration=show, density=density, mu_start=mu_start)
            if spectrum is not None:
                point.spectrum = spectrum(point, state)
            points.append(point)
            last[branch] = point
            if out is not None:
                save_sweep(out, points, meta, plan)
            if bar is not None:
                filling = (f"mu={point.mu:.4f}, n={point.density:.4f}, "
                           if density is not None or axis == "mu" else "")
                bar.set_postfix_str(f"{label} {branch}: {filling}Z={point.Z:.3f}, "
                                    f"{point.iterations} it, "
                                    + (point.note() or "converged"), refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return points
