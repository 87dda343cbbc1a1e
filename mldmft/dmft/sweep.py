"""Sweeps in U (Mott transition) or in mu (doping-driven transition) with up and down branches,
run on the batched engine (:mod:`mldmft.dmft.engine`).

``sweep(solver, beta, U_values, direction)`` (at fixed ``mu``, half filling, or fixed
``density``) and ``sweep_mu(solver, beta, U, mu_values, direction)`` are the functions behind
``dmft_loop.py`` and ``mldmft dmft``, on any lattice (:mod:`mldmft.dmft.lattice`); both build the
problems of one parameter axis and hand them to the engine. How they run is one typed object,
:class:`SweepSettings` (the loop's :class:`~mldmft.dmft.loop.DMFTOptions`, the lattice, the
start mode, solver options, guard, output file, progress, spectra), given as keywords.

Starts. The up branch starts from the metal (the non-interacting lattice; at fixed density the
one holding that density), the down branch from an insulating seed
(:func:`~mldmft.dmft.engine.metal_seed`, :func:`~mldmft.dmft.engine.insulator_seed`). With
``start="continuation"`` (default) each branch is one chain: the first value from its seed, every
further one from the previous point's final hybridisation (and, at fixed density, its ``mu``) --
the up branch in increasing, the down branch in decreasing order, which follows each solution
through the coexistence window of the first-order Mott transition. With ``start="seeded"``
every value of a branch starts from the branch's seed, all in one batch: the same points away
from the coexistence window, where there is one solution, but near the window's ends a seed can
land on the other solution. With ``start="segments"`` each branch is cut, in its sweep order,
into consecutive segments of ``segment`` values; the first value of a segment starts from the
branch's seed, every further one continues from the point before it, and all segments run side
by side in one batch: a batch ``segment`` times narrower than the seeded one, and all but the
first point of every segment a continuation start (``segment=1`` is the seeded sweep, ``segment``
at least the number of values the continuation). With ``direction="both"`` the two branches run
side by side in one batch. A sweep in ``mu`` seeds the same way: up from the metal at the
smallest ``mu``, down from the insulator at the largest (for a range ending at ``mu = U/2``, hole
doping, the down branch follows the Mott insulator into the doped region, the up branch the doped
metal towards it).

Output and resume. With ``out`` given, every finished point is saved at once (atomically; the
file holds the finished points in sweep order) and a rerun of the same sweep (same plan: solver,
options, beta, lattice, mu or density, U or mu values, direction, start mode and, for segments,
the segment length, loop settings) solves only the points the file lacks -- in continuation (and
within a segment), a chain resumes from its last saved point; a file holding another sweep is
refused, naming what differs. While it runs, the sweep
holds the lock ``<out>.lock`` (a second sweep to the same file stops at once) and first removes
the temporary files a killed run left behind.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from solvers import SolverResult, solver_identity

from ..h5util import remove_tmp_litter, run_lock
from .engine import (DMFTProblem, ProblemProgress, _check_chains, _run, continued_mu,
                     insulator_seed, make_solver_batch, metal_seed)
from .io import load_sweep, save_sweep
from .lattice import BetheLattice, Lattice, get_lattice
from .loop import DMFTOptions, DMFTPoint, check_density_args
from .spectra import point_spectrum, real_mesh

__all__ = ["sweep", "sweep_mu", "SweepSettings", "SWEEP_STARTS", "metal_seed", "insulator_seed"]

#: How the points of a branch start (module doc).
SWEEP_STARTS = ("continuation", "seeded", "segments")

#: Loop options always stored in a sweep's plan; the others enter it when not the defaults
#: (``tol_density`` with a fixed density), so a sweep file written without a newer option
#: still resumes.
_PLAN_OPTIONS = ("n_iw", "tol", "max_iter", "mixing", "accel")


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs (validated on construction: one-line ``ValueError``); the keywords of
    :func:`sweep` and :func:`sweep_mu`.

    Attributes:
        options: the loop's numerical options (:class:`~mldmft.dmft.loop.DMFTOptions`:
            ``n_iw``, ``tol``, ``max_iter``, ``mixing``, ``accel``, ``history``, ``stall``,
            ``tol_density``); ``symmetrise`` left ``None`` follows the filling (half filling
            only).
        lattice: a :class:`~mldmft.dmft.lattice.Lattice`, a registered name (``"bethe"``,
            ``"square"``, ``"cubic"``, ``"hypercubic"``, ``"file"``) or a dict
            ``{"name": ..., **parameters}``; default ``BetheLattice()``. Part of the plan.
        start: ``"continuation"``, ``"seeded"`` or ``"segments"`` (module doc). Part of the plan.
        segment: with ``start="segments"``, the values per segment of a branch (an integer
            >= 1; ``1`` = seeded, at least the number of values = continuation); then part of
            the plan, ignored by the other start modes.
        solver_options: passed to the solver.
        guard: ``{"fallback": "ed", "threshold": 1e-3, "fallback_options": {...}}`` — use the
            fallback solver in any iteration where the network's ensemble spread exceeds the
            threshold or its ``G(tau)`` is positive somewhere; the count is reported per point
            (``fallbacks``). ``"fallback": None`` only counts such iterations (the unguarded
            network's guard rate) and keeps the network's result.
        out: HDF5 file for the results (plus a CSV beside it); written as points finish; a
            rerun with the same plan resumes, one with another plan is refused
            (:class:`~mldmft.dmft.io.PlanMismatchError`, a ``ValueError`` naming the
            difference). The plan holds the solver's identity (:func:`solvers.solver_identity`;
            for ``ml`` the SHA-256 of the model file), so results of a replaced network are not
            resumed as the new one's.
        progress: a progress bar (points done; after every batched iteration the number of
            active problems, their iterations and largest error).
        metadata: extra attributes stored with the results (e.g. the resolved config); not part
            of the plan compared on resume.
        spectra: compute ``A(w)`` for every point (:mod:`mldmft.dmft.spectra`):
            ``{"method": "auto"|"ed_poles"|"maxent"|"pade", "eta": 0.05, "omega_max": 4.0,
            "n_omega": 801, ...method options}``; ``auto`` = ED poles for ``solver="ed"``,
            MaxEnt otherwise.
    """

    options: DMFTOptions = DMFTOptions()
    lattice: Lattice | str | dict | None = None
    start: str = "continuation"
    segment: int = 4
    solver_options: dict | None = None
    guard: dict | None = None
    out: str | Path | None = None
    progress: bool = False
    metadata: dict | None = None
    spectra: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.options, DMFTOptions):
            raise ValueError(f"options must be a DMFTOptions, got {type(self.options).__name__}")
        object.__setattr__(self, "lattice", BetheLattice() if self.lattice is None
                           else get_lattice(self.lattice))
        if self.start not in SWEEP_STARTS:
            raise ValueError(f"start must be one of {', '.join(SWEEP_STARTS)}, got "
                             f"{self.start!r}")
        if isinstance(self.segment, bool) or not isinstance(self.segment, (int, np.integer)) \
                or self.segment < 1:
            raise ValueError(f"segment must be an integer >= 1, got {self.segment!r}")
        object.__setattr__(self, "segment", int(self.segment))
        for name in ("solver_options", "guard", "metadata", "spectra"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
        if self.out is not None and not isinstance(self.out, (str, Path)):
            raise ValueError(f"out must be a file name, got {type(self.out).__name__}")

    @classmethod
    def of(cls, keywords: dict[str, Any]) -> "SweepSettings":
        """From the keywords of :func:`sweep`; an unknown one is a one-line ``ValueError``
        naming it and the known ones."""
        known = [f.name for f in dataclasses.fields(cls)]
        bad = sorted(set(keywords) - set(known))
        if bad:
            raise ValueError(f"sweep: unknown keyword{'s' if len(bad) > 1 else ''} "
                             f"{', '.join(bad)}; the sweep takes {', '.join(known)} (loop "
                             "options go in options=DMFTOptions(...))")
        return cls(**keywords)


def sweep(solver: str | Callable[..., SolverResult], beta: float, U_values: Sequence[float],
          direction: str = "up", *, mu: float | None = None, density: float | None = None,
          **settings: Any) -> list[DMFTPoint]:
    """DMFT on a lattice (default: Bethe) for every U, along the requested branch(es).

    Args:
        solver: registered solver name (``"ed"`` = ED on a refitted bath, ``"ipt"``, ``"nca"``,
            ``"hubbard_i"``, ``"ml"`` with ``solver_options={"checkpoint": PATH}``, ...) or a
            callable ``f(model, **solver_options) -> SolverResult``.
        beta: inverse temperature (1/D).
        U_values: interaction strengths, each once (sorted per branch).
        direction: ``"up"``, ``"down"`` or ``"both"`` (side by side).
        mu: chemical potential (default ``U/2``: half filling, with particle-hole symmetrisation).
        density: fixed filling ``n`` in ``(0, 2)`` (electrons per site) instead of ``mu``: the
            loop finds ``mu`` at every point (:mod:`mldmft.dmft.loop`), warm-started from the
            point before it where the point continues one (continuation, segments); each point
            stores the ``mu`` found. Excludes ``mu``. A point converges only when also
            ``|n - density| < options.tol_density``.
        **settings: :class:`SweepSettings` (``options=DMFTOptions(...)``, ``lattice``,
            ``start``, ``segment``, ``solver_options``, ``guard``, ``out``, ``progress``,
            ``metadata``, ``spectra``).

    Returns:
        One :class:`DMFTPoint` per ``(U, branch)``, in sweep order (the up branch in increasing
        U, then the down branch in decreasing U).

    Example:
        >>> from mldmft.dmft import DMFTOptions, sweep
        >>> pts = sweep("ipt", 20.0, [1.0, 2.0], "both", options=DMFTOptions(n_iw=256))
        >>> [(p.branch, p.U) for p in pts]
        [('up', 1.0), ('up', 2.0), ('down', 2.0), ('down', 1.0)]
    """
    s = SweepSettings.of(settings)
    check_density_args(mu, density)
    U_values = _check_values("U_values", U_values, nonnegative=True)
    if density is not None:
        mu_plan: Any = "from density"
    else:
        mu_plan = "U/2" if mu is None else float(mu)
    axis = {"U_values": sorted(U_values), "mu": mu_plan}
    if density is not None:
        axis.update(density=float(density), tol_density=float(s.options.tol_density))

    def problem(branch: str, U: float) -> DMFTProblem:
        return DMFTProblem(beta=beta, U=U, mu=mu, density=density, branch=branch,
                           start="metal" if branch == "up" else "insulator",
                           lattice=s.lattice)

    return _sweep(solver, beta, "U", U_values, direction, axis, problem, s)


def sweep_mu(solver: str | Callable[..., SolverResult], beta: float, U: float,
             mu_values: Sequence[float], direction: str = "up", **settings: Any
             ) -> list[DMFTPoint]:
    """DMFT at fixed ``U`` for every chemical potential in ``mu_values`` (the doping-driven
    transition), along the requested branch(es): ``"up"`` in increasing ``mu`` from the metal
    (the free lattice), ``"down"`` in decreasing ``mu`` from the half-filled insulating seed,
    ``"both"``. In continuation every further ``mu`` starts from the previous converged
    hybridisation. For a range ``[mu_lo, U/2]`` (hole doping) the down branch follows the Mott
    insulator into the doped region and the up branch the doped metal towards half filling.
    Nothing is symmetrised except at ``mu = U/2`` on a particle-hole symmetric lattice. Each
    point stores its ``density``.

    ``settings``: :class:`SweepSettings`, as for :func:`sweep`. The plan stored in ``out`` holds
    ``U`` and ``mu_values``.

    Returns:
        One :class:`DMFTPoint` per ``(mu, branch)``, in sweep order.
    """
    bad = sorted({"mu", "density", "U_values"} & set(settings))
    if bad:
        raise ValueError(f"sweep_mu sweeps mu at fixed U; it takes no {', '.join(bad)}")
    s = SweepSettings.of(settings)
    if not (isinstance(U, (int, float)) and np.isfinite(U) and U >= 0):
        raise ValueError(f"U must be finite and >= 0, got {U}")
    mu_values = _check_values("mu_values", mu_values, nonnegative=False)
    axis = {"U": float(U), "mu_values": sorted(mu_values)}

    def problem(branch: str, mu: float) -> DMFTProblem:
        return DMFTProblem(beta=beta, U=U, mu=mu, branch=branch,
                           start="metal" if branch == "up" else "insulator",
                           lattice=s.lattice)

    return _sweep(solver, beta, "mu", mu_values, direction, axis, problem, s)


def _check_values(name: str, values: Sequence[float], nonnegative: bool) -> list[float]:
    """The sweep axis as floats; one-line ``ValueError`` for an empty, non-finite, negative
    (``nonnegative``) or repeated value."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}") from None
    if not out:
        raise ValueError(f"{name} is empty")
    if any(not np.isfinite(v) or (nonnegative and v < 0) for v in out):
        raise ValueError(f"{name} must be finite{' and >= 0' if nonnegative else ''}, got {out}")
    twice = sorted({v for v in out if out.count(v) > 1})
    if twice:
        raise ValueError(f"{name} holds {', '.join(f'{v:g}' for v in twice)} more than once "
                         f"({out}); give each value once")
    return out


def _plan_options(options: DMFTOptions, fixed_density: bool) -> dict[str, Any]:
    """The loop options that enter a sweep's plan (see :data:`_PLAN_OPTIONS`)."""
    defaults = DMFTOptions()
    out = {}
    for f in dataclasses.fields(DMFTOptions):
        value = getattr(options, f.name)
        if f.name == "tol_density":
            continue               # with a fixed density: beside it in the axis entries
        if f.name in _PLAN_OPTIONS or value != getattr(defaults, f.name):
            out[f.name] = float(value) if isinstance(value, float) else value
    return out


def _sweep(solver: str | Callable[..., SolverResult], beta: float, axis: str,
           values: list[float], direction: str, axis_plan: dict[str, Any],
           problem: Callable[[str, float], DMFTProblem], s: SweepSettings) -> list[DMFTPoint]:
    """The sweep along ``axis`` (``"U"`` or ``"mu"``) over ``values``; ``axis_plan``: the plan
    entries that name the axis and the filling; ``problem(branch, value)``: the seeded problem
    of one point."""
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be 'up', 'down' or 'both', got {direction!r}")
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    lattice, options, out = s.lattice, s.options, s.out
    spec_opts = dict(s.spectra or {})
    if spec_opts.get("method", "auto") == "auto":  # ED poles only when every iteration was ED
        spec_opts["method"] = "ed_poles" if solver == "ed" and not s.guard else "maxent"
    omega = real_mesh(float(spec_opts.pop("omega_max", 4.0)), int(spec_opts.pop("n_omega", 801)))
    solver_options = dict(s.solver_options or {})
    guard = dict(s.guard or {})
    batch = make_solver_batch(solver, options.n_iw, solver_options, guard)
    branches = ["up", "down"] if direction == "both" else [direction]
    order = [(b, v) for b in branches
             for v in (sorted(values) if b == "up" else sorted(values, reverse=True))]
    problems = {key: problem(*key) for key in order}
    name = solver if isinstance(solver, str) else getattr(solver, "__name__", "callable")
    # everything that decides the points (compared on resume; numbers normalised so 50 == 50.0)
    plan = {"solver": name, "beta": float(beta), "lattice": lattice.params(),
            "D": float(lattice.D), **axis_plan, "direction": direction, "start": s.start,
            **({"segment": s.segment} if s.start == "segments" else {}),
            **_plan_options(options, "density" in axis_plan),
            "solver_options": solver_options, "guard": guard}
    # what else decides the solver's results (the network's model file): not resumed with another
    identity = solver_identity(solver, solver_options) if isinstance(solver, str) else {}
    fb_name = guard.get("fallback", "ed") if guard else None
    if fb_name is not None:
        identity.update({f"fallback.{k}": v for k, v in solver_identity(
            str(fb_name), dict(guard.get("fallback_options", {}))).items()})
    if identity:
        plan["solver_identity"] = identity
    if s.spectra is not None:
        plan["spectra"] = dict(s.spectra)
    meta = {**plan, **(s.metadata or {})}
    lock = (run_lock(out, command=f"sweep {name} beta={beta:g} -> {out}")
            if out is not None else nullcontext())
    with lock:
        done: dict[tuple[str, float], DMFTPoint] = {}
        if out is not None:
            remove_tmp_litter(out)
            remove_tmp_litter(Path(out).with_suffix(".csv"))
            if Path(out).exists():
                done = _stored(out, plan, order, axis)
        chains, keys = _chains(order, problems, done, _segment_length(s, len(values)),
                               branches)
        states: list[dict] = [{} for _ in chains]
        bar = _bar(len(order), len(done)) if s.progress else None
        label = _labeller(axis)

        def on_point(c: int, i: int, point: DMFTPoint) -> None:
            if s.spectra is not None:
                point.spectrum = point_spectrum(point, lattice, states[c], omega=omega,
                                                **spec_opts)
            done[keys[c][i]] = point
            if out is not None:
                save_sweep(out, [done[k] for k in order if k in done], meta, plan)
            if bar is not None:
                filling = (f"mu={point.mu:.4f}, n={point.density:.4f}, "
                           if "density" in axis_plan or axis == "mu" else "")
                bar.set_postfix_str(f"{label(keys[c][i])}: {filling}Z={point.Z:.3f}, "
                                    f"{point.iterations} it, " + (point.note() or "converged"),
                                    refresh=False)
                bar.update(1)

        try:
            _run(batch, _check_chains(chains, options), options, states, on_point,
                 _iteration_display(bar, keys, label) if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
    return [done[k] for k in order]


def _stored(out: str | Path, plan: dict[str, Any], order: list[tuple[str, float]], axis: str
            ) -> dict[tuple[str, float], DMFTPoint]:
    """The points already in ``out`` (same plan, else :class:`PlanMismatchError`), by
    ``(branch, value)``."""
    done: dict[tuple[str, float], DMFTPoint] = {}
    for p in load_sweep(out, expect=plan):
        key = (p.branch, p.U if axis == "U" else p.mu)
        if key not in order or key in done:
            raise ValueError(f"{out}: its points do not match the plan's {axis} values (point "
                             f"{axis}={key[1]:g} {key[0]}); choose another output file or "
                             "delete it")
        done[key] = p
    return done


def _segment_length(s: SweepSettings, n_values: int) -> int:
    """The values per chain of a branch before it restarts from the seed: 1 (seeded), all of
    them (continuation) or ``s.segment`` (segments)."""
    return {"seeded": 1, "continuation": max(n_values, 1)}.get(s.start, s.segment)


def _chains(order: list[tuple[str, float]], problems: dict[tuple[str, float], DMFTProblem],
            done: dict[tuple[str, float], DMFTPoint], segment: int, branches: list[str]
            ) -> tuple[list[list[DMFTProblem]], list[list[tuple]]]:
    """The engine's chains for the points not ``done`` (and the key of each problem).

    Each branch, in sweep order, is cut into segments of ``segment`` values (1: seeded, one
    chain per point; all values: continuation, one chain per branch); a segment's first value
    starts from the branch's seed, every further one from the point before it. A saved point
    cuts its segment: the problem after it starts from its ``Delta`` (and ``mu``,
    :func:`~mldmft.dmft.engine.continued_mu`), as it would have in one run."""
    chains: list[list[DMFTProblem]] = []
    keys: list[list[tuple]] = []
    for branch in branches:
        previous: DMFTPoint | None = None
        chain: list[DMFTProblem] = []
        chain_keys: list[tuple] = []
        for j, k in enumerate([k for k in order if k[0] == branch]):
            if j % segment == 0:          # a new segment: from the branch's seed
                if chain:
                    chains.append(chain)
                    keys.append(chain_keys)
                chain, chain_keys, previous = [], [], None
            if k in done:
                if chain:
                    chains.append(chain)
                    keys.append(chain_keys)
                chain, chain_keys, previous = [], [], done[k]
                continue
            p = problems[k]
            if chain:
                p = dataclasses.replace(p, start="previous")
            elif previous is not None:
                p = dataclasses.replace(
                    p, start=previous.delta_iw,
                    mu_start=continued_mu(previous, p) if p.density is not None else None)
            chain.append(p)
            chain_keys.append(k)
        if chain:
            chains.append(chain)
            keys.append(chain_keys)
    return chains, keys


def _labeller(axis: str) -> Callable[[tuple[str, float]], str]:
    """``(branch, value) -> "U=2 up"`` (or ``"mu=0.7 down"``)."""
    def label(key: tuple[str, float]) -> str:
        branch, value = key
        return f"U={value:.3g} {branch}" if axis == "U" else f"mu={value:.4g} {branch}"

    return label


def _bar(total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="point", dynamic_ncols=True, file=sys.stderr)


#: Seconds between iteration updates of the progress bar, on a terminal (True) or in a log file.
_POSTFIX_INTERVAL = {True: 0.5, False: 30.0}


def _iteration_display(bar: Any, keys: list[list[tuple]], label: Callable[[tuple], str]
                       ) -> Callable[[int, list[ProblemProgress]], None]:
    """After every batched iteration: the active problems' count, iterations and largest error
    in the bar's postfix (one active problem: its label, iteration and error), at most every
    0.5 s on a terminal, every 30 s in a log file."""
    interval = _POSTFIX_INTERVAL[bool(getattr(bar.fp, "isatty", lambda: False)())]
    last = [time.monotonic()]

    def show(step: int, progress: list[ProblemProgress]) -> None:
        now = time.monotonic()
        active = [a for a in progress if not a.done]
        if now - last[0] < interval or not active:
            return
        last[0] = now
        worst = max(active, key=lambda a: a.residual if np.isfinite(a.residual) else np.inf)
        where = label(keys[worst.chain][worst.index])
        retry = " (linear-mixing retry)" if worst.retry else ""
        if len(active) == 1:
            text = f"{where}: iteration {worst.iteration}, error {worst.residual:.1e}{retry}"
        else:
            its = [a.iteration for a in active]
            text = (f"{len(active)} active, iterations {min(its)}-{max(its)}, largest error "
                    f"{worst.residual:.1e} at {where}{retry}")
        bar.set_postfix_str(text)

    return show
