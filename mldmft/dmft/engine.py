"""The batched DMFT engine: many self-consistency problems advanced in lockstep, one batched
solver call per iteration.

A :class:`DMFTProblem` is one DMFT solution to find: lattice, ``beta``, ``U``, ``mu`` or a fixed
``density``, and where its loop starts -- the metallic seed (the free lattice's hybridisation),
the insulating seed (the Hubbard-I hybridisation at its ``U``), a given ``Delta(i w_n)``, or
``"previous"``: the final ``Delta`` (and, at fixed density, ``mu``) of the problem before it in its
*chain*. :func:`run_chains` takes a list of chains (a chain is a list of problems solved one after
the other, e.g. one branch of a sweep in U: a continuation) and iterates every chain's current
problem together::

    every iteration:  models = [current model of each active problem]
                      results = batch(models)          # ONE solver call (solvers.solve_many)
                      each problem: feed(result)        # its own loop arithmetic (LoopRun)
                      a finished problem leaves the batch; its chain moves to its next problem

Each problem keeps its own loop state (:class:`~mldmft.dmft.loop.LoopRun`: Anderson history,
the linear-mixing retry from the same start, the stall rule, the fixed-density ``mu`` search,
the convergence flag), so the points equal those of :func:`~mldmft.dmft.loop.solve_point` from
the same start -- exactly when the batched solver returns the one-at-a-time results bit for bit,
else to the loop tolerance. The fixed-density ``mu`` steps of one iteration are searched
together (:func:`~mldmft.dmft.loop.next_chemical_potentials`: the lattice densities of all rows
in one Matsubara sum, each row with its own root search, so its ``mu`` is that of its search
alone, to rounding). Independent problems (every U of a branch from its seed) are chains
of length one and all run in one batch; the up and down branches of a sweep are two chains side
by side.

A model the solver fails on (it raises one of :data:`SOLVER_ERRORS`, e.g. the ``ml`` solver's
domain check or an IPT mesh too short for the model) does not stop the batch: the failing models
are found by bisection (:func:`solve_isolated`), the others are solved again as one batch without
them, and each failing problem ends not converged with the solver's message in its point
(``DMFTPoint.error``); the next problem of its chain starts from its last ``Delta``.

Example:
    >>> from mldmft.dmft import DMFTOptions, DMFTProblem, run_chains
    >>> up = [DMFTProblem(beta=20.0, U=1.0), DMFTProblem(beta=20.0, U=2.0, start="previous")]
    >>> down = [DMFTProblem(beta=20.0, U=2.0, start="insulator", branch="down")]
    >>> points = run_chains("ipt", [up, down], DMFTOptions(n_iw=256))
    >>> [(p.U, p.branch, p.converged) for chain in points for p in chain]
    [(1.0, 'up', True), (2.0, 'up', True), (2.0, 'down', True)]
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from solvers import SolverResult, matsubara_freqs

from .lattice import BetheLattice, Lattice, get_lattice
from .loop import (DMFTOptions, DMFTPoint, LoopRun, check_density_args, free_mu_start,
                   next_chemical_potentials)
from .steps import BatchStep, guarded_batch_step, make_batch_step

__all__ = ["DMFTProblem", "run_chains", "ProblemProgress", "STARTS", "make_solver_batch",
           "metal_seed", "insulator_seed", "continued_mu", "solve_isolated", "SOLVER_ERRORS"]

#: The named starts of a problem (besides a ``Delta(i w_n)`` array).
STARTS = ("metal", "insulator", "previous")


def metal_seed(lattice: Lattice, beta: float, n_iw: int, mu: float = 0.0) -> np.ndarray:
    """The free lattice's hybridisation at chemical potential ``mu``:
    ``Delta = zeta - 1/G_loc(zeta)``, ``zeta = i w_n + mu`` (Bethe: ``t^2 G_0(i w_n + mu)``);
    ``mu = 0``: half filling on a particle-hole symmetric lattice
    (:meth:`~mldmft.dmft.lattice.Lattice.seed_delta_iw`).

    Example:
        >>> lat = BetheLattice()
        >>> bool(np.allclose(metal_seed(lat, 20.0, 8), lat.t ** 2 * lat.g0_iw(20.0, 8)))
        True
    """
    if mu == 0.0:
        return lattice.seed_delta_iw(beta, n_iw)
    return lattice.delta_from_zeta(1j * matsubara_freqs(beta, n_iw) + mu)[0]


def insulator_seed(lattice: Lattice, beta: float, n_iw: int, U: float) -> np.ndarray:
    """An insulating hybridisation at half filling (Bethe: ``Delta = t^2 G_at`` with the atomic
    ``G = (1/(iw - U/2) + 1/(iw + U/2))/2``; :meth:`~mldmft.dmft.lattice.Lattice.seed_delta_iw`).
    """
    return lattice.seed_delta_iw(beta, n_iw, U)


def _number(name: str, value: Any, *, low: float | None = None, strict: bool = False,
            optional: bool = False) -> float | None:
    """``value`` as a finite float (``None`` allowed when ``optional``), ``> low`` (``strict``)
    or ``>= low``; one-line ``ValueError`` otherwise."""
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(value) or (
            low is not None and (value <= low if strict else value < low)):
        bound = "" if low is None else f" and {'>' if strict else '>='} {low:g}"
        raise ValueError(f"DMFTProblem: {name} must be a finite number{bound}, got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class DMFTProblem:
    """One DMFT solution to find (validated on construction: a one-line ``ValueError``).

    Attributes:
        beta: inverse temperature (1/D), ``> 0``.
        U: Hubbard repulsion (D), ``>= 0``.
        mu: chemical potential (``eps_d = -mu``); ``None``: ``U/2`` (half filling on a
            particle-hole symmetric lattice) unless ``density`` is given.
        density: fixed filling ``n`` in ``(0, 2)`` (both spins) instead of ``mu``: ``mu`` is
            found inside the loop (:mod:`mldmft.dmft.loop`).
        start: ``"metal"`` (the free lattice's ``Delta``: at half filling, or at fixed density
            the free lattice holding ``density``, :func:`metal_seed`), ``"insulator"`` (the
            half-filled Hubbard-I ``Delta`` at ``U``, :func:`insulator_seed`), ``"previous"``
            (the final ``Delta`` -- and at fixed density ``mu`` -- of the problem before this
            one in its chain) or a ``Delta(i w_n)`` array on the loop's ``n_iw`` frequencies.
        branch: a label stored in the point (``"up"``, ``"down"``, ...).
        lattice: a :class:`~mldmft.dmft.lattice.Lattice` (or a name / ``{"name": ..., ...}``,
            resolved by :func:`~mldmft.dmft.lattice.get_lattice`).
        mu_start: at fixed density, the first ``mu`` of the search; default the previous
            problem's ``mu`` shifted by the change of the Hartree term (``start="previous"``,
            :func:`continued_mu`), else the free lattice's ``mu`` at ``n`` plus the Hartree
            shift ``U n/2`` (:func:`~mldmft.dmft.loop.free_mu_start`).

    Example:
        >>> DMFTProblem(beta=50.0, U=2.0, density=0.9).mu is None
        True
        >>> DMFTProblem(beta=-1.0, U=2.0)
        Traceback (most recent call last):
        ...
        ValueError: DMFTProblem: beta must be a finite number and > 0, got -1.0
    """

    beta: float
    U: float
    mu: float | None = None
    density: float | None = None
    start: str | np.ndarray = "metal"
    branch: str = "up"
    lattice: Lattice = BetheLattice()
    mu_start: float | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "beta", _number("beta", self.beta, low=0.0, strict=True))
        put(self, "U", _number("U", self.U, low=0.0))
        put(self, "mu", _number("mu", self.mu, optional=True))
        put(self, "density", _number("density", self.density, optional=True))
        put(self, "mu_start", _number("mu_start", self.mu_start, optional=True))
        check_density_args(self.mu, self.density)
        if self.mu_start is not None and self.density is None:
            raise ValueError("DMFTProblem: mu_start is the first mu of a fixed-density search; "
                             "give density too")
        if isinstance(self.start, str):
            if self.start not in STARTS:
                raise ValueError(f"DMFTProblem: start must be one of {', '.join(STARTS)} or a "
                                 f"Delta(i w_n) array, got {self.start!r}")
        else:
            try:
                delta = np.array(self.start, dtype=complex)
            except (TypeError, ValueError):
                raise ValueError("DMFTProblem: start must be one of "
                                 f"{', '.join(STARTS)} or a Delta(i w_n) array, got "
                                 f"{type(self.start).__name__}") from None
            if delta.ndim != 1 or delta.size == 0 or not np.all(np.isfinite(delta)):
                raise ValueError(f"DMFTProblem: a start array must be a finite 1-d Delta(i w_n), "
                                 f"got shape {delta.shape}"
                                 + ("" if np.all(np.isfinite(delta)) else " with NaN/inf"))
            delta.setflags(write=False)
            put(self, "start", delta)
        if not isinstance(self.branch, str) or not self.branch:
            raise ValueError(f"DMFTProblem: branch must be a non-empty string, got "
                             f"{self.branch!r}")
        if not isinstance(self.lattice, Lattice):
            if not isinstance(self.lattice, (str, dict)):
                raise ValueError(f"DMFTProblem: lattice must be a Lattice, a name or a dict, "
                                 f"got {type(self.lattice).__name__}")
            put(self, "lattice", get_lattice(self.lattice))

    def label(self) -> str:
        """Short name for progress and messages, e.g. ``U=2.4 down`` or ``U=2 n=0.9 up``."""
        fill = (f" n={self.density:g}" if self.density is not None
                else f" mu={self.mu:g}" if self.mu is not None else "")
        return f"U={self.U:g}{fill} {self.branch}"


@dataclass(frozen=True)
class ProblemProgress:
    """Where one active problem stands after a batched iteration (for progress displays).

    Attributes:
        chain, index: the problem's place (``chains[chain][index]``).
        problem: the problem.
        iteration: its iterations so far (both attempts).
        residual: its last ``max |F(Delta) - Delta|``.
        retry: it is in the linear-mixing retry.
        done: it finished in this iteration (its point is ready).
    """

    chain: int
    index: int
    problem: DMFTProblem
    iteration: int
    residual: float
    retry: bool
    done: bool


#: ``on_point(chain_index, problem_index, point)``, as each point finishes.
PointCallback = Callable[[int, int, DMFTPoint], None]
#: ``on_iteration(iteration, active)`` after every batched iteration: the batched iteration
#: number (1, 2, ...) and a :class:`ProblemProgress` per problem of that batch (those that
#: finished in it included, ``done=True``).
BatchIterationCallback = Callable[[int, "list[ProblemProgress]"], None]


def make_solver_batch(solver: str | Callable[..., SolverResult], n_iw: int,
                      solver_options: dict[str, Any] | None = None,
                      guard: dict[str, Any] | None = None) -> BatchStep:
    """The batch step of a solver and an optional guard (checked before any work).

    ``guard``: ``{"fallback": NAME or None, "threshold": X, "fallback_options": {...}}``: the
    network's flagged rows go to the fallback (:func:`~mldmft.dmft.steps.guarded_batch_step`);
    ``"fallback": None`` only counts them.
    """
    batch = make_batch_step(solver, n_iw, solver_options)
    if guard:
        name = guard.get("fallback", "ed")
        fallback = (None if name is None
                    else make_batch_step(name, n_iw, dict(guard.get("fallback_options", {}))))
        batch = guarded_batch_step(batch, fallback, float(guard.get("threshold", 1e-3)))
    return batch


def _check_chains(chains: Sequence[Sequence[DMFTProblem]], options: DMFTOptions
                  ) -> list[list[DMFTProblem]]:
    """The chains as lists, checked (one-line ``ValueError``) before any work."""
    if not isinstance(options, DMFTOptions):
        raise ValueError(f"options must be a DMFTOptions, got {type(options).__name__}")
    if isinstance(chains, (DMFTProblem, str)) or not isinstance(chains, Sequence):
        raise ValueError("chains must be a sequence of sequences of DMFTProblem")
    out = []
    for c, chain in enumerate(chains):
        if isinstance(chain, (DMFTProblem, str)) or not isinstance(chain, Sequence):
            raise ValueError(f"chains[{c}] must be a sequence of DMFTProblem, got "
                             f"{type(chain).__name__}")
        for i, p in enumerate(chain):
            where = f"chains[{c}][{i}]"
            if not isinstance(p, DMFTProblem):
                raise ValueError(f"{where} must be a DMFTProblem, got {type(p).__name__}")
            if i == 0 and isinstance(p.start, str) and p.start == "previous":
                raise ValueError(f"{where}: start='previous' needs a problem before it in its "
                                 "chain (the first of a chain starts from a seed or an array)")
            if isinstance(p.start, np.ndarray) and p.start.size != options.n_iw:
                raise ValueError(f"{where}: its start Delta has {p.start.size} frequencies, "
                                 f"options.n_iw = {options.n_iw}")
            if p.density is not None and options.symmetrise:
                raise ValueError(f"{where}: symmetrise=True needs half filling, got "
                                 f"density={p.density}")
        out.append(list(chain))
    return out


def run_chains(solver: str | Callable[..., SolverResult],
               chains: Sequence[Sequence[DMFTProblem]], options: DMFTOptions = DMFTOptions(), *,
               solver_options: dict[str, Any] | None = None,
               guard: dict[str, Any] | None = None, on_point: PointCallback | None = None,
               on_iteration: BatchIterationCallback | None = None) -> list[list[DMFTPoint]]:
    """Solve every problem of every chain, the chains side by side in lockstep (module doc).

    Args:
        solver: a registered solver name (``"ipt"``, ``"hubbard_i"``, ``"ml"``, ...; ``"ed"`` =
            ED on a refitted bath, solved problem by problem) or a callable
            ``f(model, **solver_options) -> SolverResult`` (called model by model).
        chains: lists of problems; a problem with ``start="previous"`` starts from the final
            ``Delta`` (and ``mu`` at fixed density) of the one before it.
        options: the loop's numerical options, shared by every problem.
        solver_options: passed to the solver (``n_iw`` defaults to ``options.n_iw``).
        guard: ``{"fallback": "ed", "threshold": 1e-3, "fallback_options": {...}}``: rows the
            network's guard flags are solved by the fallback and counted per problem
            (``DMFTPoint.fallbacks``); ``"fallback": None`` only counts them.
        on_point: ``on_point(chain_index, problem_index, point)`` as each point finishes
            (e.g. to save it); a chain's points finish in order.
        on_iteration: ``on_iteration(iteration, active)`` after every batched iteration
            (:class:`ProblemProgress` per active problem).

    Returns:
        ``points[c][i]`` for ``chains[c][i]``.

    Raises:
        ValueError: one line, before any solve: a bad chain or problem, a start array of the
            wrong length, ``start="previous"`` first in a chain, a density the free lattice
            cannot hold, an unknown solver or a bad option. A solver failing on a model during
            the run ends that problem only (module doc).
    """
    chains = _check_chains(chains, options)
    batch = make_solver_batch(solver, options.n_iw, solver_options, guard)
    return _run(batch, chains, options, [{} for _ in chains], on_point, on_iteration)


class _FreeMu:
    """The free lattice's chemical potential at a problem's density, once per
    ``(lattice, beta, density)``; called: :func:`~mldmft.dmft.loop.free_mu_start` (plus the
    Hartree shift ``U n/2``)."""

    def __init__(self, n_iw: int) -> None:
        self.n_iw, self.cache = n_iw, {}

    def free(self, p: DMFTProblem) -> float:
        key = (id(p.lattice), p.beta, p.density)
        if key not in self.cache:
            self.cache[key] = free_mu_start(p.lattice, p.beta, 0.0, p.density, self.n_iw)
        return self.cache[key]

    def __call__(self, p: DMFTProblem) -> float:
        return self.free(p) + p.U * p.density / 2


def _run(batch: BatchStep, chains: list[list[DMFTProblem]], options: DMFTOptions,
         states: list[dict], on_point: PointCallback | None = None,
         on_iteration: BatchIterationCallback | None = None) -> list[list[DMFTPoint]]:
    """The engine proper on checked chains; ``states[c]``: the solver state of chain ``c``
    (carried along the chain, e.g. the ED step's last bath, read by spectra)."""
    free_mu = _FreeMu(options.n_iw)
    for chain in chains:     # a density the free lattice cannot hold: refused before any solve
        for i, p in enumerate(chain):
            if p.density is not None and not _half_filled(p, options) and not (
                    i > 0 and isinstance(p.start, str) and p.start == "previous"):
                free_mu.free(p)
    points: list[list[DMFTPoint | None]] = [[None] * len(chain) for chain in chains]
    cursor = [0] * len(chains)
    runs: dict[int, LoopRun] = {}
    step = 0
    while True:
        t0 = time.perf_counter()
        for c, chain in enumerate(chains):
            if c not in runs and cursor[c] < len(chain):
                previous = points[c][cursor[c] - 1] if cursor[c] else None
                runs[c] = _start(chain[cursor[c]], previous, options, states[c], free_mu)
        if not runs:
            break
        active = sorted(runs)
        models = [runs[c].model() for c in active]
        results, failures = solve_isolated(batch, models, [states[c] for c in active])
        # the fixed-density mu steps of all problems together (each row's search its own)
        fixed = [k for k, c in enumerate(active) if k not in failures and runs[c].fixed_n]
        mu_next: dict[int, float] = {}
        if len(fixed) > 1:
            found = next_chemical_potentials([runs[active[k]] for k in fixed],
                                             [results[k] for k in fixed])
            mu_next = {k: mu for k, (mu, error) in zip(fixed, found) if not error}
        # the iteration's time outside the problems' own arithmetic (model building, the
        # solver call, the joint mu search), shared equally by the active problems
        share = (time.perf_counter() - t0) / len(active)
        step += 1
        progress = []
        for k, c in enumerate(active):
            run = runs[c]
            if k in failures:
                run.fail(f"the solver failed on this problem: {failures[k]}", share)
            else:
                run.feed(results[k], share, mu_next=mu_next.get(k))
            progress.append(ProblemProgress(c, cursor[c], chains[c][cursor[c]], run.iteration,
                                            run.residual, run.retrying, run.done))
            if run.done:
                point = run.point
                points[c][cursor[c]] = point
                del runs[c]
                cursor[c] += 1
                if on_point is not None:
                    on_point(c, cursor[c] - 1, point)
        if on_iteration is not None:
            on_iteration(step, progress)
    return points  # type: ignore[return-value]


#: What a failing solver call raises (a model it refuses, a transform that breaks down): the
#: problem whose model caused it stops with the reason; anything else is a bug and propagates.
SOLVER_ERRORS = (ValueError, RuntimeError, ArithmeticError)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _failing(batch: BatchStep, models: list, states: list, rows: list[int],
             error: BaseException) -> dict[int, str]:
    """The rows (of ``rows``, whose joint call raised ``error``) on which the solver fails alone
    or with their half of the batch, found by bisection: ``{row: reason}``."""
    if len(rows) == 1:
        return {rows[0]: _describe(error)}
    out: dict[int, str] = {}
    half = len(rows) // 2
    for part in (rows[:half], rows[half:]):
        try:
            batch([models[i] for i in part], [states[i] for i in part])
        except SOLVER_ERRORS as err:
            out.update(_failing(batch, models, states, part, err))
    return out


def solve_isolated(batch: BatchStep, models: Sequence, states: Sequence[dict]
                   ) -> tuple[list[SolverResult | None], dict[int, str]]:
    """``batch(models, states)`` with the models it fails on taken out: ``(results, failures)``,
    ``failures[i]`` the reason for model ``i`` (its result ``None``).

    A call that raises one of :data:`SOLVER_ERRORS` is bisected to find the failing models;
    the others are then solved together in one call, exactly as a batch without the failing
    ones (so their results do not depend on the failure). When no part fails on its own, the
    models are solved one at a time.
    """
    models, states = list(models), list(states)
    try:
        results = list(batch(models, states))
    except SOLVER_ERRORS as err:
        failures = _failing(batch, models, states, list(range(len(models))), err)
        if not failures:               # the whole failed, no part alone: one at a time
            results, failures = [], {}
            for i, (m, st) in enumerate(zip(models, states)):
                try:
                    results.append(batch([m], [st])[0])
                except SOLVER_ERRORS as one:
                    results.append(None)
                    failures[i] = _describe(one)
            return results, failures
        good = [i for i in range(len(models)) if i not in failures]
        results = [None] * len(models)
        if good:
            sub, more = solve_isolated(batch, [models[i] for i in good],
                                       [states[i] for i in good])
            for i, res in zip(good, sub):
                results[i] = res
            failures.update({good[j]: why for j, why in more.items()})
        return results, failures
    if len(results) != len(models):
        raise RuntimeError(f"the solver step returned {len(results)} results for "
                           f"{len(models)} models")
    return results, {}


def continued_mu(previous: DMFTPoint, p: DMFTProblem) -> float:
    """The first ``mu`` of a fixed-density problem continued from ``previous``: its ``mu`` moved
    by the change of the Hartree shift, ``mu_prev + (U - U_prev) n/2`` -- without it a large
    step in U starts the search far from the filling (n = 1.999, U = 1 -> 3 at beta = 100: the
    first impurity density 1.09, and no ``mu`` reaches the target)."""
    assert p.density is not None
    return previous.mu + (p.U - previous.U) * p.density / 2


def _half_filled(p: DMFTProblem, options: DMFTOptions) -> bool:
    """A fixed density the loop solves as half filling (``n = 1`` on a particle-hole symmetric
    lattice, :class:`~mldmft.dmft.loop.LoopRun`), or no density at all."""
    return p.density is None or (options.symmetrise is None and p.lattice.particle_hole_symmetric
                                 and abs(p.density - 1.0) < 1e-12)


def _start(p: DMFTProblem, previous: DMFTPoint | None, options: DMFTOptions, state: dict,
           free_mu: _FreeMu) -> LoopRun:
    """The loop of problem ``p`` (``previous``: the point before it in its chain)."""
    mu_start = p.mu_start
    if isinstance(p.start, np.ndarray):
        delta0 = p.start
    elif p.start == "previous":
        assert previous is not None
        delta0 = previous.delta_iw
        if p.density is not None and mu_start is None:
            mu_start = continued_mu(previous, p)
    elif p.start == "metal":
        delta0 = metal_seed(p.lattice, p.beta, options.n_iw,
                            0.0 if _half_filled(p, options) else free_mu.free(p))
    else:
        delta0 = insulator_seed(p.lattice, p.beta, options.n_iw, p.U)
    if p.density is not None and mu_start is None:
        mu_start = free_mu(p)
    return LoopRun(p.beta, p.U, delta0, p.lattice, p.mu, options, p.branch, state,
                   density=p.density, mu_start=mu_start)
