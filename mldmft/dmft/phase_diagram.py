"""The Mott phase diagram of the half-filled Hubbard model from DMFT: the branch ends ``Uc1(T)``,
``Uc2(T)``, the critical end point ``(Uc, Tc)`` and the first-order line ``Uc(T)``.

``phase_diagram(PhaseDiagramConfig(...))`` (behind ``mldmft phase-diagram``) runs, for the main
solver (default: the default shipped network, ``solve("ml", ...)``) and for each comparison solver
(default: IPT):

1. **Walks.** At every temperature the metallic branch is followed up in ``U`` from the metal
   seed at the smallest ``U`` of the grid and the insulating branch down from the insulating seed
   at the largest, each step a DMFT solve continued from the previous point, until the branch is
   left (:func:`~mldmft.dmft.transition.on_branch`: ``-beta G(beta/2)`` crosses
   ``metal_threshold``, or no convergence within ``follow_max_iter`` iterations). All walks
   advance together through the batched engine, :data:`WALK_CHUNK` continuation steps per
   round.
2. **Branch ends.** Each end is bisected from its coarse bracket to ``tol_U``, each step a solve
   continued from the last point still on the branch
   (:func:`~mldmft.dmft.transition.refine_branch_ends`); ``Uc2`` is the end of the metallic
   branch, ``Uc1`` of the insulating one, each the middle of its final bracket with half its
   width as error.
3. **Critical point.** ``Tc`` lies between the highest temperature with a coexistence window
   (:func:`~mldmft.dmft.transition.coexistence`) and the next higher one without; that bracket
   is bisected in ``T`` ``refine_tc`` times (steps 1-2 at each new temperature). ``Tc`` is its
   middle, ``+-`` half its width; ``Uc`` the middle between the window's centre at the lower
   and the crossover at the upper temperature, ``+-`` half their distance plus half the last
   window's width.
4. **First-order line** (:mod:`mldmft.dmft.thermo`): ``Omega = beta Omega / beta`` is integrated
   from the highest temperature ``beta_top`` (one solution at every U) along ``U`` at
   ``beta_top`` (a continuation chain with step ``top_dU``), down in temperature at the grid's
   smallest ``U`` (metallic at every T) and at its largest (insulating at every T), with
   ``n_path`` extra temperatures on those two lines, and then along each branch into the window;
   ``Uc(T)`` is where the two grand potentials cross. The loop ``[U_lo, U_hi] x [beta_top,
   beta_2]`` (``beta_2`` the next temperature, also above ``Tc``) measures the solver's
   thermodynamic consistency.

Every finished DMFT point is stored at once, keyed by its problem (:mod:`mldmft.dmft.phase_store`)
so that a rerun after an interruption recomputes nothing; the run holds the lock on
``<out>/diagram.h5``. Outputs (:mod:`mldmft.dmft.phase_io`, :mod:`mldmft.dmft.phase_plot`):
``diagram.h5``, ``diagram_points.csv``, ``diagram_ends.csv``, ``summary.json``,
``summary.txt``, ``diagram.png``. ``check_ed`` adds 8-site ED-DMFT branch ends at ``ed_betas``
(walks of step ``ed_step`` from ``ed_span`` inside the main solver's ends, then bisection).

Units: energies, ``U`` and ``T`` in the lattice's energy unit (Bethe: the half bandwidth
``D = 1``), ``beta = 1/T``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..h5util import run_lock
from .lattice import Lattice, get_lattice
from .engine import DMFTProblem, run_chains
from .loop import DMFTOptions, DMFTPoint
from .phase_store import PointStore, point_key
from .steps import make_step
from .thermo import (BranchPotential, Crossing, cumulative_integral, first_order_crossing,
                     internal_energy, loop_defect, omega_slope)
from .transition import (METAL_THRESHOLD, BranchEnd, bracket_branch_end, coexistence,
                         on_branch, refine_branch_ends)

__all__ = ["PhaseDiagramConfig", "DiagramSpec", "phase_diagram", "PhaseDiagramResult",
           "DiagramResult", "TemperatureResult", "CriticalPoint", "ThermoResult",
           "DEFAULT_BETAS"]

#: Default temperatures (beta = 1/T, 1/D): 15 over the shipped networks' domain, denser
#: around beta 40-60 where the coexistence window of 8-site ED-DMFT closes.
DEFAULT_BETAS = (25.0, 30.0, 35.0, 40.0, 44.0, 48.0, 52.0, 56.0, 60.0, 70.0, 85.0, 100.0,
                 125.0, 150.0, 200.0)


@dataclass(frozen=True)
class DiagramSpec:
    """One diagram: a solver on a temperature list and a coarse U grid.

    Attributes:
        label: its name in the outputs (the solver's name by default).
        solver: a registered solver name (``"ed"``: ED on a refitted bath).
        solver_options: passed to the solver.
        betas: inverse temperatures (1/D), strictly increasing (temperatures decreasing).
        U_values: the coarse grid (D), strictly increasing; its ends are the integration paths
            of the first-order line, so the smallest U must be metallic and the largest
            insulating at every temperature.
        role: ``"main"`` or ``"comparison"``.
    """

    label: str
    solver: str
    solver_options: Mapping[str, Any]
    betas: tuple[float, ...]
    U_values: tuple[float, ...]
    role: str = "main"


@dataclass(frozen=True)
class PhaseDiagramConfig:
    """Everything a phase-diagram run needs (``configs/phase_diagram.yaml``).

    Attributes:
        main: the main diagram (default: the ``ml`` solver).
        compare: further diagrams drawn beside it (default: IPT).
        lattice: a registered lattice (name and parameters); must be particle-hole symmetric
            (half filling is ``mu = U/2``).
        loop: the DMFT loop's options.
        tol_U: the largest bisection bracket of a branch end (D).
        follow_max_iter: the loop's iteration limit in the walks and bisections (both attempts
            each): a step that does not converge within it counts as off the branch. Steps on
            the branch converge in a few iterations; past a branch end the iteration drifts
            towards the other solution for hundreds (in the measured runs: at most 25 on the
            branch, up to 400 past its end).
        metal_threshold: a point is metallic when ``-beta G(beta/2)`` exceeds it.
        refine_tc: bisection steps in ``T`` of the critical temperature's bracket.
        thermo: compute the first-order line.
        top_dU: U step of the integration line at the highest temperature (D).
        n_path: extra temperatures on the two integration lines in beta.
        check_ed: also locate the branch ends with 8-site ED-DMFT at ``ed_betas``.
        ed_betas: temperatures of the ED check (each one of ``main.betas``).
        ed_solver: the check's solver (``"ed"``: ED-DMFT on a refitted bath).
        ed_options: its options (``n_bath``: bath sites, default 8).
        ed_span, ed_step: the ED walks start ``ed_span`` inside the main solver's ends and step
            by ``ed_step`` (D).
        out: output directory.
        progress: progress bars on stderr.
        metadata: stored with the results (e.g. the resolved config).
    """

    main: DiagramSpec = DiagramSpec("ml", "ml", {}, DEFAULT_BETAS,
                                    tuple(round(2.0 + 0.1 * k, 10) for k in range(13)))
    compare: tuple[DiagramSpec, ...] = ()
    lattice: Mapping[str, Any] = field(default_factory=lambda: {"name": "bethe"})
    loop: DMFTOptions = DMFTOptions(tol=1e-5)
    tol_U: float = 0.01
    follow_max_iter: int = 60
    metal_threshold: float = METAL_THRESHOLD
    refine_tc: int = 2
    thermo: bool = True
    top_dU: float = 0.05
    n_path: int = 12
    check_ed: bool = False
    ed_betas: tuple[float, ...] = (60.0, 100.0, 150.0)
    ed_solver: str = "ed"
    ed_options: Mapping[str, Any] = field(default_factory=lambda: {"n_bath": 8})
    ed_span: float = 0.08
    ed_step: float = 0.04
    out: str = "data/phase_diagram"
    progress: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> Lattice:
        """One-line ``ValueError`` for anything that would stop the run later; returns the
        lattice. Nothing is solved."""
        lattice = get_lattice(dict(self.lattice))
        if not lattice.particle_hole_symmetric:
            raise ValueError(f"the phase diagram is computed at half filling (mu = U/2), which "
                             f"needs a particle-hole symmetric lattice; {lattice.params()} is not")
        specs = (self.main, *self.compare)
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels) or "ed_check" in labels:
            raise ValueError(f"diagram labels must be distinct and not 'ed_check', got {labels}")
        for spec in specs:
            _check_spec(spec, self.tol_U, self.loop.n_iw)
        for name, value, lo in (("tol_U", self.tol_U, 0.0), ("top_dU", self.top_dU, 0.0),
                                ("ed_span", self.ed_span, -1.0), ("ed_step", self.ed_step, 0.0)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > lo):
                raise ValueError(f"{name} must be a number > {lo:g}, got {value!r}")
        if not 0 < self.metal_threshold:
            raise ValueError(f"metal_threshold must be > 0, got {self.metal_threshold}")
        for name, low in (("refine_tc", 0), ("n_path", 0), ("follow_max_iter", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if self.check_ed:
            missing = [b for b in self.ed_betas if float(b) not in self.main.betas]
            if not self.ed_betas or missing:
                raise ValueError(f"ed_betas must be a non-empty subset of the main betas "
                                 f"{list(self.main.betas)}; not there: {missing}")
            make_step(self.ed_solver, self.loop.n_iw, dict(self.ed_options))
        return lattice


def _check_spec(spec: DiagramSpec, tol_U: float, n_iw: int) -> None:
    """One-line errors for a diagram's solver, options, temperatures and U grid."""
    from solvers import available_solvers

    from .. import load_solver_module

    where = f"{spec.label}: " if spec.role != "main" else ""
    load_solver_module(spec.solver)
    if spec.solver != "ed" and spec.solver not in available_solvers():
        raise ValueError(f"{where}unknown solver {spec.solver!r}; available: "
                         f"{', '.join(available_solvers())}")
    betas = _numbers(f"{where}betas", spec.betas)
    if len(betas) < 2:
        raise ValueError(f"{where}betas: need at least 2 temperatures, got {betas}")
    if any(b <= 0 for b in betas):
        raise ValueError(f"{where}betas must be > 0, got {betas}")
    for a, b in zip(betas, betas[1:]):
        if not b > a:
            raise ValueError(f"{where}betas must increase (temperatures decrease): {b:g} "
                             f"follows {a:g}")
    U = _numbers(f"{where}U_values", spec.U_values)
    if len(U) < 2:
        raise ValueError(f"{where}the U range holds {len(U)} value(s); need at least 2")
    if any(u < 0 for u in U) or any(not b > a for a, b in zip(U, U[1:])):
        raise ValueError(f"{where}U_values must be >= 0 and strictly increasing, got {U}")
    if tol_U >= max(np.diff(U)):
        raise ValueError(f"tol_U = {tol_U:g} must be below the U grid's step "
                         f"({max(np.diff(U)):g})")
    _check_domain(spec, betas, U, where)
    make_step(spec.solver, n_iw, dict(spec.solver_options))   # checks the options


def _numbers(name: str, values: Sequence[Any]) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}") from None
    if any(isinstance(v, bool) for v in values) or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be finite numbers, got {list(values)!r}")
    return out


def _check_domain(spec: DiagramSpec, betas: list[float], U: list[float], where: str) -> None:
    """The ``ml`` solver's domain (beta, U) must hold the whole diagram (unless it is asked to
    extrapolate)."""
    if spec.solver != "ml" or spec.solver_options.get("extrapolate"):
        return
    from ..ml.checkpoint import load_checkpoint_cached
    from ..ml.inference import DEFAULT_CHECKPOINT

    checkpoint = spec.solver_options.get("checkpoint") or DEFAULT_CHECKPOINT
    predictor = load_checkpoint_cached(checkpoint)
    limits = predictor.domain or predictor.train_range
    for name, values in (("beta", betas), ("U", U)):
        if name in limits:
            lo, hi = limits[name]
            bad = [v for v in values if not lo <= v <= hi]
            if bad:
                raise ValueError(f"{where}{name} = {bad[0]:g} is outside the ml model's domain "
                                 f"[{lo:g}, {hi:g}] ({Path(checkpoint).name}); choose "
                                 f"{name} values inside it")


# ============================================================================ results
@dataclass
class TemperatureResult:
    """Both branches at one temperature.

    Attributes:
        beta: inverse temperature (1/D).
        up, down: the metallic branch's end (``Uc2``) and the insulating one's (``Uc1``).
        points_up, points_down: every point of the walk and of the bisection, in solve order.
        refined: added by the bisection of ``Tc``.
    """

    beta: float
    up: BranchEnd
    down: BranchEnd
    points_up: list[DMFTPoint]
    points_down: list[DMFTPoint]
    refined: bool = False

    @property
    def T(self) -> float:
        return 1.0 / self.beta

    @property
    def coexist(self) -> bool:
        return coexistence(self.up, self.down)

    @property
    def crossover(self) -> float:
        """The middle of the two ends (above ``Tc``: where ``-beta G(beta/2)`` crosses the
        threshold)."""
        return 0.5 * (self.up.U + self.down.U)


@dataclass(frozen=True)
class CriticalPoint:
    """The critical end point, bracketed: ``Tc +- Tc_error``, ``Uc +- Uc_error`` (D);
    ``status``: ``"bracketed"``, ``"below range"`` (no window at any temperature) or ``"above
    range"`` (a window at the highest temperature); ``T_window``, ``T_none``: the temperatures
    that bracket it."""

    Tc: float
    Tc_error: float
    Uc: float
    Uc_error: float
    status: str
    T_window: float = float("nan")
    T_none: float = float("nan")
    notes: tuple[str, ...] = ()


@dataclass
class ThermoResult:
    """The first-order line and the checks of its integration.

    Attributes:
        first_order: ``(beta, Crossing)`` at every temperature with a window.
        beta_top: the common high-temperature point of the paths.
        U_lo, U_hi: the two vertical paths.
        loop: ``(beta_a, beta_b, defect, error)``: ``oint d(beta Omega)`` around ``[U_lo, U_hi] x
            [beta_a, beta_b]`` and its integration error (``None``: not computed).
        path_error: the largest integration error of ``Omega`` at the two path ends (D).
        notes: why something was not computed.
    """

    first_order: list[tuple[float, Crossing]] = field(default_factory=list)
    beta_top: float = float("nan")
    U_lo: float = float("nan")
    U_hi: float = float("nan")
    loop: tuple[float, float, float, float] | None = None
    path_error: float = float("nan")
    notes: list[str] = field(default_factory=list)


@dataclass
class DiagramResult:
    """One diagram (one solver)."""

    spec: DiagramSpec
    temperatures: list[TemperatureResult]
    critical: CriticalPoint
    thermo: ThermoResult | None
    store: PointStore
    plan: dict[str, Any]

    @property
    def label(self) -> str:
        return self.spec.label


@dataclass
class EDCheck:
    """8-site ED-DMFT branch ends at a few temperatures, beside the main solver's."""

    temperatures: list[TemperatureResult]
    store: PointStore
    plan: dict[str, Any]


@dataclass
class PhaseDiagramResult:
    """What :func:`phase_diagram` returns."""

    main: DiagramResult
    comparisons: list[DiagramResult]
    ed: EDCheck | None
    timings: dict[str, float]
    total_time: float
    files: dict[str, Path] = field(default_factory=dict)
    solved: int = 0
    resumed: int = 0

    def lines(self) -> list[str]:
        """The report printed by ``mldmft phase-diagram``."""
        from .phase_io import report_lines

        return report_lines(self)


# ============================================================================ the solver side
@dataclass(frozen=True)
class _Problem:
    """One DMFT problem at half filling: ``start`` is ``"metal"``, ``"insulator"``,
    ``"previous"`` (the preceding problem's solution in its chain) or a :class:`DMFTPoint`
    (continued from it)."""

    beta: float
    U: float
    branch: str
    start: Any


class _Runner:
    """Solves chains of :class:`_Problem` with one solver through the point store: a stored
    problem is read, not solved; the rest go to the batched engine
    (:func:`~mldmft.dmft.engine.run_chains`, all chains side by side, one batched solver call
    per iteration), and each point is stored as soon as it finishes."""

    def __init__(self, label: str, solver: str, solver_options: Mapping[str, Any],
                 lattice: Lattice, options: DMFTOptions, store: PointStore,
                 progress: bool, follow_max_iter: int | None = None) -> None:
        self.label, self.solver, self.lattice = label, solver, lattice
        self.solver_options = dict(solver_options)
        self.options, self.store, self.progress = options, store, progress
        self.follow_options = (options if follow_max_iter is None
                               else dataclasses.replace(options, max_iter=follow_max_iter))
        self.solved = 0

    @staticmethod
    def _keys(chain: Sequence[_Problem]) -> list[tuple[str, str]]:
        """``(key, start)`` of every problem of a chain (``start``: the seed's name or the
        key of the point it continues)."""
        out: list[tuple[str, str]] = []
        for k, prob in enumerate(chain):
            if isinstance(prob.start, DMFTPoint):
                start = prob.start.info["key"]
            elif prob.start == "previous":
                if k == 0:
                    raise ValueError("the first problem of a chain needs a seed")
                start = out[k - 1][0]
            else:
                start = str(prob.start)
            out.append((point_key(prob.beta, prob.U, prob.branch, start), start))
        return out

    def run(self, chains: Sequence[Sequence[_Problem]], stage: str,
            follow: bool = False) -> list[list[DMFTPoint]]:
        """Every chain's points, in order (stored ones read, the others solved and stored);
        ``follow``: branch-following steps (the loop's ``max_iter`` is ``follow_max_iter``)."""
        keys = [self._keys(c) for c in chains]
        results: list[list[DMFTPoint | None]] = [[self.store.get(k) for k, _ in ks]
                                                 for ks in keys]
        # the unsolved problems as engine chains: a run of unsolved problems continues its
        # chain; its first one starts from its seed or from the stored point before it
        engine_chains: list[list[DMFTProblem]] = []
        where: list[list[tuple[int, int]]] = []
        for c, chain in enumerate(chains):
            for i, prob in enumerate(chain):
                if results[c][i] is not None:
                    continue
                start = prob.start
                if isinstance(start, DMFTPoint):
                    start = start.delta_iw
                elif start == "previous":
                    before = results[c][i - 1]
                    if before is not None:        # stored: continue from its Delta
                        start = before.delta_iw
                    elif where[-1][-1] != (c, i - 1):
                        raise RuntimeError("a continuation lost its predecessor")
                if isinstance(start, str) and start == "previous":
                    engine_chains[-1].append(self._problem(prob, start))
                    where[-1].append((c, i))
                else:
                    engine_chains.append([self._problem(prob, start)])
                    where.append([(c, i)])
        if engine_chains:
            self._solve(engine_chains, where, keys, results, stage,
                        self.follow_options if follow else self.options)
        return [list(r) for r in results]

    def _problem(self, prob: _Problem, start: Any) -> DMFTProblem:
        return DMFTProblem(beta=prob.beta, U=prob.U, start=start, branch=prob.branch,
                           lattice=self.lattice)

    def _solve(self, engine_chains: list[list[DMFTProblem]], where: list[list[tuple[int, int]]],
               keys: list[list[tuple[str, str]]], results: list[list[DMFTPoint | None]],
               stage: str, options: DMFTOptions) -> None:
        todo = sum(len(c) for c in engine_chains)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=todo, unit="point", dynamic_ncols=True, file=sys.stderr,
                       desc=f"{self.label} {stage}", leave=False)
        last = [0.0]

        def on_point(e: int, i: int, point: DMFTPoint) -> None:
            c, k = where[e][i]
            key, start = keys[c][k]
            self.store.put(key, point, start, stage)
            results[c][k] = point
            self.solved += 1
            if bar is not None:
                bar.update(1)

        def on_iteration(iteration: int, active: list) -> None:
            now = time.monotonic()
            if bar is None or now - last[0] < 0.5 or not active:
                return
            last[0] = now
            worst = max(active, key=lambda a: a.residual)
            bar.set_postfix_str(f"batch iteration {iteration}: {len(active)} active, slowest "
                                f"beta={worst.problem.beta:g} {worst.problem.label()} at "
                                f"iteration {worst.iteration}, error {worst.residual:.1e}")

        try:
            run_chains(self.solver, engine_chains, options,
                       solver_options=self.solver_options, on_point=on_point,
                       on_iteration=on_iteration)
        finally:
            if bar is not None:
                bar.close()

    def solve(self, problems: Sequence[_Problem], stage: str,
              follow: bool = False) -> list[DMFTPoint]:
        """Independent problems (chains of one)."""
        return [c[0] for c in self.run([[p] for p in problems], stage, follow)]


# ============================================================================ the algorithm
#: Continuation steps a walk takes per batch: the walks advance in rounds of this many steps
#: (one engine call per round, each walk a chain), so a slow point delays the others less
#: often; a walk that left its branch stops after the round (at most this many - 1 points past
#: its end are solved, and kept in the store, not in the walk).
WALK_CHUNK = 3


def _walk(runner: _Runner, walks: list[tuple[float, str, list[float]]], stage: str,
          threshold: float, chunk: int = WALK_CHUNK) -> list[list[DMFTPoint]]:
    """Follow each ``(beta, branch, U_values in walking order)`` by continuation until a point
    is off the branch or the values run out; all walks advance together, ``chunk`` steps per
    round (one batch of chains per round). Each walk's list ends with its first point off the
    branch (if any)."""
    done: list[list[DMFTPoint]] = [[] for _ in walks]
    active = list(range(len(walks)))
    while active:
        chains = []
        for i in active:
            beta, branch, values = walks[i]
            pts = done[i]
            start: Any = pts[-1] if pts else ("metal" if branch == "up" else "insulator")
            chain = []
            for u in values[len(pts):len(pts) + chunk]:
                chain.append(_Problem(beta, u, branch, start))
                start = "previous"
            chains.append(chain)
        for i, points in zip(active, runner.run(chains, stage, follow=True)):
            for point in points:
                done[i].append(point)
                if not on_branch(point, walks[i][1], threshold):
                    break
        active = [i for i in active
                  if on_branch(done[i][-1], walks[i][1], threshold)
                  and len(done[i]) < len(walks[i][2])]
    return done


def _temperatures(runner: _Runner, betas: Sequence[float], U_values: Sequence[float],
                  tol_U: float, threshold: float, timings: dict[str, float],
                  refined: bool = False) -> list[TemperatureResult]:
    """Walks and branch-end bisection at every beta (all temperatures in the same batches)."""
    label = runner.label
    t0 = time.perf_counter()
    U_up = sorted(U_values)
    walks = [(b, br, U_up if br == "up" else U_up[::-1]) for b in betas for br in ("up", "down")]
    chains = _walk(runner, walks, "walks", threshold)
    _add_time(timings, f"{label}: walks", time.perf_counter() - t0)
    t0 = time.perf_counter()
    ends = [bracket_branch_end(c, br, b, threshold) for (b, br, _), c in zip(walks, chains)]

    def solve_from(requests: Sequence[tuple[DMFTPoint, float]]) -> list[DMFTPoint]:
        return runner.solve([_Problem(p.beta, u, p.branch, p) for p, u in requests],
                            "branch ends", follow=True)

    ends = refine_branch_ends(ends, solve_from, tol_U, threshold)
    _add_time(timings, f"{label}: branch ends", time.perf_counter() - t0)
    out = []
    for k, beta in enumerate(betas):
        up, down = ends[2 * k], ends[2 * k + 1]
        out.append(TemperatureResult(beta, up, down, chains[2 * k] + list(up.tried),
                                     chains[2 * k + 1] + list(down.tried), refined))
    return out


def _add_time(timings: dict[str, float], key: str, seconds: float) -> None:
    timings[key] = timings.get(key, 0.0) + seconds


def _critical_point(temps: Sequence[TemperatureResult], tol_U: float) -> CriticalPoint:
    """The bracket of the critical end point from the windows found (see the module doc)."""
    nan = float("nan")
    ts = sorted(temps, key=lambda t: t.T)
    windows = [t for t in ts if t.coexist]
    if not windows:
        return CriticalPoint(nan, nan, nan, nan, "below range", notes=(
            f"no coexistence window at any temperature (T >= {ts[0].T:.4g}): Tc is lower",))
    yes = windows[-1]
    above = [t for t in ts if t.T > yes.T]
    if not above:
        return CriticalPoint(nan, nan, nan, nan, "above range", T_window=yes.T, notes=(
            f"a coexistence window at the highest temperature T = {yes.T:.4g}: Tc is higher",))
    no = above[0]
    notes = []
    gaps = [t.T for t in ts if t.T < yes.T and not t.coexist]
    if gaps:
        notes.append("no window at T = " + ", ".join(f"{g:.4g}" for g in gaps)
                     + f", below the highest window's T = {yes.T:.4g}")
    centre_yes = 0.5 * (yes.up.U + yes.down.U)
    Uc = 0.5 * (centre_yes + no.crossover)
    Uc_error = (0.5 * abs(centre_yes - no.crossover) + 0.5 * (yes.up.U - yes.down.U)
                + 0.5 * tol_U)
    return CriticalPoint(0.5 * (yes.T + no.T), 0.5 * (no.T - yes.T), float(Uc), float(Uc_error),
                         "bracketed", yes.T, no.T, tuple(notes))


def _refine_tc(runner: _Runner, temps: list[TemperatureResult], spec: DiagramSpec,
               config: PhaseDiagramConfig) -> None:
    """Bisect the critical temperature's bracket ``config.refine_tc`` times (in T)."""
    for _ in range(config.refine_tc):
        cp = _critical_point(temps, config.tol_U)
        if cp.status != "bracketed":
            return
        beta = float(f"{2.0 / (cp.T_window + cp.T_none):.6g}")
        if any(abs(beta - t.beta) < 1e-9 * beta for t in temps):
            return
        # timed as a whole by the caller ("critical point"), not as walks and ends again
        temps += _temperatures(runner, [beta], spec.U_values, config.tol_U,
                               config.metal_threshold, {}, refined=True)


def _line(U_lo: float, U_hi: float, step: float) -> list[float]:
    """``U_lo, U_lo + step, ..., U_hi`` (``U_hi`` always included; rounded to 10 digits)."""
    n = int(math.floor((U_hi - U_lo) / step + 1e-9))
    values = [round(U_lo + k * step, 10) for k in range(n + 1)]
    if U_hi - values[-1] > 1e-9:
        values.append(round(U_hi, 10))
    return values


def _thermodynamics(runner: _Runner, temps: list[TemperatureResult], spec: DiagramSpec,
                    config: PhaseDiagramConfig) -> ThermoResult:
    """The first-order line by thermodynamic integration (see the module doc)."""
    threshold = config.metal_threshold
    U_lo, U_hi = min(spec.U_values), max(spec.U_values)
    ts = sorted(temps, key=lambda t: t.beta)
    top = ts[0]
    res = ThermoResult(beta_top=top.beta, U_lo=U_lo, U_hi=U_hi)
    if top.coexist:
        res.notes.append(f"a coexistence window at the highest temperature (beta = "
                         f"{top.beta:g}): the integration paths need a temperature above Tc; "
                         "add a smaller beta")
        return res
    bad = [t.beta for t in ts
           if not (t.points_up and t.points_up[0].U == U_lo and on_branch(t.points_up[0], "up",
                                                                           threshold))
           or not (t.points_down and t.points_down[0].U == U_hi
                   and on_branch(t.points_down[0], "down", threshold))]
    if bad:
        res.notes.append(f"U = {U_lo:g} is not metallic or U = {U_hi:g} not insulating at "
                         f"beta = {', '.join(f'{b:g}' for b in bad)}: widen the U range so "
                         "that the paths stay outside every window")
        return res
    # the U lines at the two highest temperatures (the second for the loop check)
    grid = _line(U_lo, U_hi, config.top_dU)
    lines = [top] + ([ts[1]] if len(ts) > 1 and not ts[1].coexist else [])
    chains = [[_Problem(t.beta, u, "up", "previous" if k else "metal")
               for k, u in enumerate(grid)] for t in lines]
    # the two paths in beta: every temperature plus n_path more (geometric), 3 more up to beta_2
    b_max = ts[-1].beta
    extra = list(np.geomspace(top.beta, b_max, config.n_path + 2)[1:-1])
    if len(lines) > 1:
        extra += list(np.linspace(top.beta, lines[1].beta, 5)[1:-1])
    have = {t.beta for t in ts}
    extra = sorted({float(f"{b:.6g}") for b in extra} - have)
    paths = [[_Problem(b, U_lo, "up", "metal")] for b in extra]
    paths += [[_Problem(b, U_hi, "down", "insulator")] for b in extra]
    solved = runner.run(chains + paths, "thermodynamics")
    line_points, path_points = solved[:len(lines)], [c[0] for c in solved[len(lines):]]
    lo_pts = sorted([t.points_up[0] for t in ts] + path_points[:len(extra)],
                    key=lambda p: p.beta)
    hi_pts = sorted([t.points_down[0] for t in ts] + path_points[len(extra):],
                    key=lambda p: p.beta)
    off = [f"beta={p.beta:g} U={p.U:g}" for p in lo_pts if not on_branch(p, "up", threshold)]
    off += [f"beta={p.beta:g} U={p.U:g}" for p in hi_pts
            if not on_branch(p, "down", threshold)]
    off += [f"beta={p.beta:g} U={p.U:g} (not converged)" for c in line_points for p in c
            if not p.converged]
    if off:
        res.notes.append("integration path points off their branch: " + ", ".join(off[:6]))
        return res
    # Omega along U at beta_top, then Phi = beta Omega along beta at U_lo and U_hi
    top_line = cumulative_integral([p.U for p in line_points[0]],
                                   [omega_slope(p) for p in line_points[0]])
    betas_lo = np.array([p.beta for p in lo_pts])
    phi_lo = cumulative_integral(betas_lo, [internal_energy(p) for p in lo_pts])
    phi_hi = cumulative_integral([p.beta for p in hi_pts], [internal_energy(p) for p in hi_pts],
                                 initial=top.beta * top_line.value[-1],
                                 initial_error=top.beta * top_line.error[-1])
    omega_lo = dict(zip(betas_lo, zip(phi_lo.value / betas_lo, phi_lo.error / betas_lo)))
    betas_hi = np.array([p.beta for p in hi_pts])
    omega_hi = dict(zip(betas_hi, zip(phi_hi.value / betas_hi, phi_hi.error / betas_hi)))
    res.path_error = float(max(max(e for _, e in omega_lo.values()),
                               max(e for _, e in omega_hi.values())))
    for t in sorted(ts, key=lambda t: t.T):
        if not t.coexist:
            continue
        metal = _branch_points(t.points_up, "up", threshold, lambda u: u <= t.up.last_on.U)
        ins = _branch_points(t.points_down, "down", threshold, lambda u: u >= t.down.last_on.U)
        m = BranchPotential([p.U for p in metal], [omega_slope(p) for p in metal], U_lo,
                            *omega_lo[t.beta])
        i = BranchPotential([p.U for p in ins], [omega_slope(p) for p in ins], U_hi,
                            *omega_hi[t.beta])
        res.first_order.append((t.beta, first_order_crossing(m, i, t.down.last_on.U,
                                                             t.up.last_on.U)))
    if len(lines) > 1:
        b2 = lines[1].beta
        seg = [(b, p) for b, p in ((p.beta, p) for p in lo_pts) if b <= b2]
        seg_hi = [p for p in hi_pts if p.beta <= b2]
        defect, error = loop_defect(
            top.beta, ([p.U for p in line_points[0]], [omega_slope(p) for p in line_points[0]]),
            b2, ([p.U for p in line_points[1]], [omega_slope(p) for p in line_points[1]]),
            ([b for b, _ in seg], [internal_energy(p) for _, p in seg]),
            ([p.beta for p in seg_hi], [internal_energy(p) for p in seg_hi]))
        res.loop = (top.beta, b2, defect, error)
    return res


def _branch_points(points: Sequence[DMFTPoint], branch: str, threshold: float,
                   keep: Callable[[float], bool]) -> list[DMFTPoint]:
    """The points on ``branch`` with ``keep(U)``, one per U."""
    out: dict[float, DMFTPoint] = {}
    for p in points:
        if on_branch(p, branch, threshold) and keep(p.U):
            out.setdefault(round(p.U, 10), p)
    return [out[u] for u in sorted(out)]


def _plan(solver: str, solver_options: Mapping[str, Any], lattice: Lattice,
          options: DMFTOptions, follow_max_iter: int) -> dict[str, Any]:
    """What decides a stored point besides its key."""
    from solvers import solver_identity

    plan = {"solver": solver, "solver_options": dict(solver_options),
            "lattice": lattice.params(),
            "loop": {k: getattr(options, k) for k in ("n_iw", "tol", "max_iter", "mixing",
                                                      "accel", "history", "stall")},
            "follow_max_iter": follow_max_iter}
    if solver != "ed":
        identity = solver_identity(solver, dict(solver_options))
        if identity:
            plan["solver_identity"] = identity
    return plan


def _run_diagram(spec: DiagramSpec, config: PhaseDiagramConfig, lattice: Lattice,
                 timings: dict[str, float], log: Callable[[str], None]) -> DiagramResult:
    plan = _plan(spec.solver, spec.solver_options, lattice, config.loop, config.follow_max_iter)
    store = PointStore(Path(config.out) / "store" / spec.label, plan)
    runner = _Runner(spec.label, spec.solver, spec.solver_options, lattice, config.loop, store,
                     config.progress, config.follow_max_iter)
    if store.loaded:
        log(f"{spec.label}: {store.loaded} finished points found in {store.dir}, not "
            "recomputed")
    temps = _temperatures(runner, [float(b) for b in spec.betas], spec.U_values, config.tol_U,
                          config.metal_threshold, timings)
    log(f"{spec.label}: branch ends at {len(temps)} temperatures "
        f"({sum(1 for t in temps if t.coexist)} with a window)")
    t0 = time.perf_counter()
    _refine_tc(runner, temps, spec, config)
    critical = _critical_point(temps, config.tol_U)
    _add_time(timings, f"{spec.label}: critical point", time.perf_counter() - t0)
    log(f"{spec.label}: critical point {critical.status}")
    thermo = None
    if config.thermo:
        t0 = time.perf_counter()
        thermo = _thermodynamics(runner, temps, spec, config)
        _add_time(timings, f"{spec.label}: first-order line", time.perf_counter() - t0)
        log(f"{spec.label}: first-order line at {len(thermo.first_order)} temperatures")
    temps.sort(key=lambda t: t.beta)
    return DiagramResult(spec, temps, critical, thermo, store, plan)


def _ed_check(config: PhaseDiagramConfig, main: DiagramResult, lattice: Lattice,
              timings: dict[str, float], log: Callable[[str], None]) -> EDCheck:
    """8-site ED-DMFT branch ends at ``config.ed_betas``, walked from ``ed_span`` inside the
    main solver's ends (retried ``4 ed_step`` further inside if the first point is already off
    the branch)."""
    t0 = time.perf_counter()
    plan = _plan(config.ed_solver, config.ed_options, lattice, config.loop,
                 config.follow_max_iter)
    store = PointStore(Path(config.out) / "store" / "ed_check", plan)
    runner = _Runner("ed_check", config.ed_solver, config.ed_options, lattice, config.loop,
                     store, config.progress, config.follow_max_iter)
    by_beta = {t.beta: t for t in main.temperatures}
    n = int(round(2 * config.ed_span / config.ed_step)) + 3
    walks = []
    for beta in config.ed_betas:
        t = by_beta[float(beta)]
        for branch, end, sign in (("up", t.up, 1.0), ("down", t.down, -1.0)):
            if not end.bracketed:
                continue
            first = end.U - sign * config.ed_span
            walks.append((float(beta), branch,
                          [round(first + sign * k * config.ed_step, 6) for k in range(n)]))
    # one step per round: ED-DMFT gains nothing from a batch, and a step past the end costs
    # 10-30 s
    chains = _walk(runner, walks, "ED walks", config.metal_threshold, chunk=1)
    retry = [i for i, c in enumerate(chains)
             if not on_branch(c[0], walks[i][1], config.metal_threshold)]
    if retry:
        again = []
        for i in retry:
            beta, branch, values = walks[i]
            sign = 1.0 if branch == "up" else -1.0
            first = values[0] - sign * 4 * config.ed_step
            again.append((beta, branch, [round(first + sign * k * config.ed_step, 6)
                                         for k in range(n + 4)]))
        for i, c in zip(retry, _walk(runner, again, "ED walks", config.metal_threshold,
                                     chunk=1)):
            walks[i], chains[i] = again[retry.index(i)], c
    ends = [bracket_branch_end(c, br, b, config.metal_threshold)
            for (b, br, _), c in zip(walks, chains)]

    def solve_from(requests: Sequence[tuple[DMFTPoint, float]]) -> list[DMFTPoint]:
        return runner.solve([_Problem(p.beta, u, p.branch, p) for p, u in requests],
                            "ED branch ends", follow=True)

    ends = refine_branch_ends(ends, solve_from, config.tol_U, config.metal_threshold)
    temps = []
    for beta in config.ed_betas:
        idx = {br: i for i, (b, br, _) in enumerate(walks) if b == float(beta)}
        if set(idx) != {"up", "down"}:
            continue
        up, down = ends[idx["up"]], ends[idx["down"]]
        temps.append(TemperatureResult(float(beta), up, down, chains[idx["up"]] + list(up.tried),
                                       chains[idx["down"]] + list(down.tried)))
    _add_time(timings, "ed check", time.perf_counter() - t0)
    log(f"ed check: branch ends at {len(temps)} temperatures")
    return EDCheck(temps, store, plan)


def phase_diagram(config: PhaseDiagramConfig,
                  log: Callable[[str], None] | None = None) -> PhaseDiagramResult:
    """Compute the phase diagram(s) of ``config`` and write the outputs (module doc).

    The configuration is checked first (one-line ``ValueError``: an unknown solver or bad
    option, temperatures out of order or outside the ``ml`` model's domain, an empty or
    one-value U range, a lattice without particle-hole symmetry, an output place that is a
    directory or a foreign file); the run holds the lock on
    ``<out>/diagram.h5`` and resumes from the point stores under ``<out>/store/``.

    Args:
        config: the run's settings.
        log: called with one line per finished stage (default: silent).

    Returns:
        :class:`PhaseDiagramResult` (``lines()`` gives the printed report).
    """
    from .phase_io import check_outputs, write_outputs

    lattice = config.validate()
    check_outputs(config)
    log = log or (lambda line: None)
    out = Path(config.out)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    with run_lock(out / "diagram.h5", command=f"mldmft phase-diagram -> {out}"):
        main = _run_diagram(config.main, config, lattice, timings, log)
        comparisons = [_run_diagram(spec, config, lattice, timings, log)
                       for spec in config.compare]
        ed = _ed_check(config, main, lattice, timings, log) if config.check_ed else None
        stores = [d.store for d in (main, *comparisons)] + ([ed.store] if ed else [])
        result = PhaseDiagramResult(main, comparisons, ed, timings, 0.0,
                                    solved=sum(s.added for s in stores),
                                    resumed=sum(s.loaded for s in stores))
        write_outputs(result, config, t_start)
    return result
