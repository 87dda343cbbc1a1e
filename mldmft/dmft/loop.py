"""One DMFT solution at fixed ``(beta, U)``: the self-consistency loop with mixing.

Iteration on any lattice (:mod:`mldmft.dmft.lattice`, ``docs/conventions.md``)::

    Delta_k -> impurity model (U, eps_d = -mu, beta, Delta_k) -> solver -> G_imp
            -> F(Delta_k) = zeta - 1/G_loc(zeta),  zeta = Delta_k + 1/G_imp
               (Bethe: F(Delta_k) = t^2 G_imp),    Delta_{k+1} = mix(Delta_k, F(Delta_k))

until ``max_n |F(Delta_k) - Delta_k| < tol``. Mixing is linear
(``Delta_{k+1} = Delta_k + a (F - Delta_k)``) or Anderson acceleration (type II, a short history of
residuals, restarted when it stops helping). At half filling (``mu = U/2`` on a particle-hole
symmetric lattice) the real part of ``Delta`` is set to zero every iteration (symmetrisation).

Fixed density ``n`` (``density=n`` instead of ``mu``): the chemical potential becomes part of the
iterated state. After each impurity solve at ``mu_k`` the self-energy
``Sigma = i w_n + mu_k - zeta_k`` (``zeta_k = Delta_k + 1/G_imp``) is held fixed and the lattice
alone fixes the next chemical potential, ``n_loc(mu') = n`` with
``n_loc(mu) = 2 T sum_n hilbert(i w_n + mu - Sigma) e^{i w_n 0+}``
(:meth:`~mldmft.dmft.lattice.Lattice.chemical_potentials`: a doubling bracket and a root of the
Brent family, for many problems at once in the batched engine), aimed at
``n + n_loc(mu_k) - n_imp`` rather than at ``n`` -- a step of about
``(n - n_imp) / (dn_loc/dmu)`` -- so that the converged *impurity* density is ``n`` even for a
solver whose density and ``G(i w_n)`` disagree slightly (a network: at beta = 100, n = 0.85 the
two differ by ~1e-4 and aiming at ``n`` left the loop 1.3e-4 short of ``tol_density``); then
``F(Delta_k) = zeta' - 1/G_loc(zeta')`` with ``zeta' = zeta_k + mu' - mu_k`` (Bethe: ``t^2 G_loc``).
The vector ``(Delta, mu)`` is iterated together: ``Delta`` mixed with weight ``a``, ``mu`` set to
``mu'`` (weight 1), Anderson acceleration over both. Converged when ``max |F - Delta| < tol``
and the impurity's density is within ``tol_density`` of ``n``. Off half filling nothing is
symmetrised; ``n = 1`` on a particle-hole symmetric lattice is half filling, ``mu = U/2`` exactly
(by symmetry), solved as such (unless ``symmetrise=False`` is asked, which runs the search).
The target is kept within ``[n/2, 1 + n/2]``: the first iterations from a half-filled seed can
put ``n_imp`` far from ``n_loc`` (IPT at ``n = 0.02``, beta = 20: 0.15 against 0.011), and an
uncorrected target below zero names no chemical potential. The correction is small near the
solution, where the clip never acts. A search that fails all the same ends the attempt and the
point says why (:attr:`DMFTPoint.error`).
This is the usual scheme of DMFT codes away from half filling (the lattice Dyson equation with the
impurity self-energy; Georges, Kotliar, Krauth, Rozenberg, Rev. Mod. Phys. 68, 13 (1996)).

The iteration arithmetic of one problem lives in one place, :class:`LoopRun`, a state machine
between solver calls: :func:`solve_point` drives one with a single solver, the batched engine
(:func:`mldmft.dmft.engine.run_chains`) drives many in lockstep with one batched solver call per
iteration.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from solvers import (AndersonModel, SolverResult, g_tau_from_l, matsubara_freqs,
                     quasiparticle_weight)

from .lattice import BetheLattice, Lattice, cavity_zeta

__all__ = ["DMFTOptions", "DMFTPoint", "LoopRun", "solve_point", "check_density_args",
           "free_mu_start", "solver_warnings", "ImpurityStep", "IterationCallback",
           "next_chemical_potentials"]

#: ``step(model, state) -> SolverResult``; ``state`` is a dict the step may keep between
#: iterations (e.g. the last fitted bath). It may set ``state["fallbacks"]``.
ImpurityStep = Callable[[AndersonModel, dict], SolverResult]

#: ``on_iteration(iteration, residual, retry)`` after every loop iteration: the iteration
#: number counted over both attempts, ``max |F(Delta) - Delta|``, and whether this is the
#: linear-mixing retry.
IterationCallback = Callable[[int, float, bool], None]


@dataclass(frozen=True)
class DMFTOptions:
    """Numerical options of the self-consistency loop.

    Attributes:
        n_iw: Matsubara frequencies of ``Delta`` and ``G``.
        tol: convergence threshold on ``max |F(Delta) - Delta|`` (units of D).
        max_iter: iteration limit; a point that reaches it is flagged ``converged=False``.
        mixing: linear mixing weight ``a`` (also the Anderson step size).
        accel: ``"linear"`` or ``"anderson"``.
        history: residuals kept by Anderson acceleration.
        symmetrise: force ``Re Delta = 0`` (default: at half filling, ``mu = U/2``, on a
            particle-hole symmetric lattice).
        tol_density: at fixed density, convergence also needs ``|n_imp - n| < tol_density``.
        stall: Anderson acceleration gives up (and :func:`solve_point` retries with linear
            mixing) when the smallest residual of its last ``stall`` iterations is not below half
            the smallest one before them -- e.g. in the slow passage past the end of a branch,
            where it otherwise spends all ``max_iter`` iterations; 0: never.
    """

    n_iw: int = 1024
    tol: float = 1e-6
    max_iter: int = 300
    mixing: float = 0.5
    accel: str = "anderson"
    history: int = 5
    symmetrise: bool | None = None
    tol_density: float = 1e-4
    stall: int = 50

    def __post_init__(self) -> None:
        if self.n_iw < 8:
            raise ValueError(f"n_iw must be >= 8, got {self.n_iw}")
        if not (0 < self.mixing <= 1):
            raise ValueError(f"mixing must lie in (0, 1], got {self.mixing}")
        if self.accel not in ("linear", "anderson"):
            raise ValueError(f"accel must be 'linear' or 'anderson', got {self.accel!r}")
        if self.tol <= 0 or self.max_iter < 1 or self.history < 1:
            raise ValueError("tol must be > 0, max_iter >= 1 and history >= 1")
        if not (self.tol_density > 0):
            raise ValueError(f"tol_density must be > 0, got {self.tol_density}")
        if self.stall < 0:
            raise ValueError(f"stall must be >= 0 iterations, got {self.stall}")


@dataclass
class DMFTPoint:
    """The converged (or not) DMFT solution at one ``(U, branch)``.

    Attributes:
        U, beta, mu, D: parameters (``mu`` absorbed as ``eps_d = -mu``; ``D`` the lattice's
            energy scale, :attr:`Lattice.D`).
        branch: ``"up"`` or ``"down"`` (sweep direction that produced it).
        converged: ``max |F(Delta) - Delta| < tol`` was reached.
        iterations: loop iterations used.
        residual: the last ``max |F(Delta) - Delta|``.
        Z: quasiparticle weight ``1/(1 - Im Sigma(i w_0)/w_0)``.
        double_occupancy: ``<n_up n_dn>`` (NaN where the solver does not define it).
        density: ``<n_up + n_dn>``.
        g_beta_half: ``-beta G(beta/2)`` (spectral weight at the Fermi level; -> 0 in the insulator).
        kinetic_energy: per site, both spins (units of D).
        wall_time: seconds for this point.
        g_iw, sigma_iw, delta_iw: the final functions on ``n_iw`` Matsubara frequencies.
        fallbacks: iterations where a guarded solver used its fallback.
        retried_linear: Anderson acceleration failed and the point was redone with linear
            mixing from the same start (``iterations`` counts both attempts).
        spectrum: the real-frequency spectrum ``A(w)`` (:class:`~mldmft.dmft.spectra.Spectrum`)
            when the sweep computed one.
        warnings: what the solver reported about its result of the last iteration (its
            ``info["warnings"]``, e.g. IPT's double occupancy outside the physical bounds, a
            truncated Legendre expansion; or that its own iteration did not converge): a point
            can be ``converged`` and still carry them, and :meth:`note` says so.
        error: why the loop stopped before ``max_iter`` without converging (e.g. the
            chemical-potential search found no ``mu``); empty otherwise.
    """

    U: float
    beta: float
    mu: float
    D: float
    branch: str
    converged: bool
    iterations: int
    residual: float
    Z: float
    double_occupancy: float
    density: float
    g_beta_half: float
    kinetic_energy: float
    wall_time: float
    g_iw: np.ndarray = field(repr=False)
    sigma_iw: np.ndarray = field(repr=False)
    delta_iw: np.ndarray = field(repr=False)
    fallbacks: int = 0
    info: dict = field(default_factory=dict, repr=False)
    retried_linear: bool = False
    spectrum: Any = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list)
    error: str = ""

    def scalars(self) -> dict[str, Any]:
        """The scalar fields (for CSV summaries and HDF5 attributes; ``warnings`` as a list)."""
        return {k: getattr(self, k) for k in (
            "U", "branch", "converged", "iterations", "residual", "Z", "double_occupancy",
            "density", "g_beta_half", "kinetic_energy", "wall_time", "fallbacks", "beta", "mu",
            "D", "retried_linear", "warnings", "error")}

    def note(self) -> str:
        """How the point ended, in words (e.g. for tables): empty for a plain convergence
        without solver warnings.

        Example:
            >>> import numpy as np
            >>> p = DMFTPoint(U=2.0, beta=20.0, mu=1.0, D=1.0, branch="up", converged=True,
            ...               iterations=9, residual=1e-7, Z=0.5, double_occupancy=-0.001,
            ...               density=1.0, g_beta_half=0.9, kinetic_energy=-0.4, wall_time=0.1,
            ...               g_iw=np.zeros(0), sigma_iw=np.zeros(0), delta_iw=np.zeros(0),
            ...               warnings=["double_occupancy=-0.001 is unphysical"])
            >>> p.note()
            'converged, but the solver warned: double_occupancy=-0.001 is unphysical'
        """
        if self.retried_linear:
            how = "converged" if self.converged else "NOT converged, also"
            text = (f"{how} after linear-mixing retry (Anderson acceleration failed), "
                    f"{self.iterations} iterations in total")
        else:
            text = "" if self.converged else f"NOT converged in {self.iterations} iterations"
        if self.error:
            text += f": {self.error}"
        if self.warnings:
            said = "; ".join(self.warnings)
            text = (f"{text}; the solver warned: {said}" if text
                    else f"converged, but the solver warned: {said}")
        return text


def _stalled(residuals: list[float], options: DMFTOptions) -> bool:
    """Anderson acceleration made no progress: the last ``options.stall`` residuals stay above
    half the smallest one before them (see :class:`DMFTOptions`)."""
    k = options.stall
    if options.accel != "anderson" or k == 0 or len(residuals) < 2 * k:
        return False
    return min(residuals[-k:]) > 0.5 * min(residuals[:-k])


def _to_vec(delta: np.ndarray, mu: float, with_mu: bool) -> np.ndarray:
    return np.concatenate([delta.real, delta.imag, [mu] if with_mu else []])


def _from_vec(x: np.ndarray, mu: float, with_mu: bool) -> tuple[np.ndarray, float]:
    """``(Delta, mu)`` from an iteration vector (``mu`` unchanged unless it is part of it)."""
    n = (x.size - int(with_mu)) // 2
    return x[:n] + 1j * x[n:2 * n], (float(x[-1]) if with_mu else mu)


def check_density_args(mu: float | None, density: float | None) -> None:
    """One-line ``ValueError`` unless at most one of ``mu`` and ``density`` is given and a
    density lies in ``(0, 2)``."""
    if mu is not None and density is not None:
        raise ValueError(f"give either mu or density, not both (mu={mu}, density={density})")
    if density is not None and not (np.isfinite(density) and 0.0 < density < 2.0):
        raise ValueError(f"density must lie in (0, 2) electrons per site, got {density}")


def free_mu_start(lattice: Lattice, beta: float, U: float, density: float, n_iw: int) -> float:
    """First ``mu`` at fixed density without a warm start: the non-interacting lattice's
    chemical potential at ``density`` plus the Hartree shift ``U n/2``.

    A density the free lattice cannot hold is a one-line ``ValueError`` (before any solve).

    Example:
        >>> round(free_mu_start(BetheLattice(), 20.0, 2.0, 1.0, 256), 9)
        1.0
    """
    try:
        return lattice.chemical_potential(density, beta, np.zeros(n_iw)) + U * density / 2
    except RuntimeError as err:
        raise ValueError(f"density {density}: {err}") from None



class LoopRun:
    """The self-consistency loop of one problem, advanced one solver call at a time.

    ``model()`` is the impurity model of the current iterate; ``feed(result)`` takes the solver's
    result for it and does the rest of the iteration (self-consistency, the fixed-density ``mu``
    step, convergence test, stall rule, mixing). Anderson acceleration that fails (no
    convergence within ``max_iter``, a stall, or a step that cannot go on) is retried once with
    plain linear mixing from the same start -- unless it failed in its first iteration, which the
    retry would repeat. When ``done``, ``point`` holds the :class:`DMFTPoint`.

    Args: as :func:`solve_point` (``delta0_iw`` the start, ``mu`` the fixed chemical potential,
    ``density``/``mu_start`` the fixed filling and the first ``mu`` of its search).

    Example:
        >>> from solvers import solve
        >>> lat = BetheLattice()
        >>> run = LoopRun(20.0, 0.0, lat.seed_delta_iw(20.0, 64), lat,
        ...               options=DMFTOptions(n_iw=64, tol=1e-10))
        >>> while not run.done:
        ...     run.feed(solve("ipt", run.model(), n_iw=64))
        >>> run.point.converged, run.point.iterations, round(run.point.Z, 12)
        (True, 1, 1.0)
    """

    def __init__(self, beta: float, U: float, delta0_iw: np.ndarray,
                 lattice: Lattice = BetheLattice(), mu: float | None = None,
                 options: DMFTOptions = DMFTOptions(), branch: str = "up",
                 state: dict | None = None, on_iteration: IterationCallback | None = None, *,
                 density: float | None = None, mu_start: float | None = None) -> None:
        check_density_args(mu, density)
        if density is not None and options.symmetrise is None \
                and lattice.particle_hole_symmetric and abs(density - 1.0) < 1e-12:
            mu, density = U / 2, None     # half filling: mu = U/2 by particle-hole symmetry
        if density is not None and options.symmetrise:
            raise ValueError(f"symmetrise=True needs half filling, got density={density}")
        if density is not None and mu_start is None:
            mu_start = free_mu_start(lattice, beta, U, density, options.n_iw)
        mu = mu_start if density is not None else mu
        self.beta, self.U, self.lattice, self.branch = float(beta), float(U), lattice, branch
        self.options, self.density, self.on_iteration = options, density, on_iteration
        self.mu0 = U / 2 if mu is None else float(mu)
        self.fixed_n = density is not None
        self.symmetrise = (not self.fixed_n and abs(self.mu0 - U / 2) < 1e-12
                           and lattice.particle_hole_symmetric
                           if options.symmetrise is None else options.symmetrise)
        self.delta0 = np.array(delta0_iw, dtype=complex)
        if self.delta0.ndim != 1 or self.delta0.size != options.n_iw:
            raise ValueError(f"delta0_iw has {self.delta0.size} frequencies, options.n_iw = "
                             f"{options.n_iw}")
        self.state = {} if state is None else state
        self.state.setdefault("fallbacks", 0)
        self.iw = 1j * matsubara_freqs(beta, options.n_iw)
        # Anderson state: (Re Delta, Im Delta[, mu]); step weights: mixing for Delta, 1 for mu
        self.weights = np.full(2 * options.n_iw + int(self.fixed_n), options.mixing)
        if self.fixed_n:
            self.weights[-1] = 1.0
        self.first: DMFTPoint | None = None   # the failed Anderson attempt, before the retry
        self.point: DMFTPoint | None = None
        self.done = False
        self._begin(options)

    def _begin(self, options: DMFTOptions) -> None:
        """Start an attempt from ``delta0`` with ``options`` (Anderson, or the linear retry)."""
        self.opts = options
        self.offset = 0 if self.first is None else self.first.iterations
        self.elapsed = 0.0
        self.delta = 1j * self.delta0.imag if self.symmetrise else self.delta0.copy()
        self.mu = self.mu0
        self.xs: list[np.ndarray] = []
        self.fs: list[np.ndarray] = []
        self.residual = math.inf
        self.residuals: list[float] = []
        self.stalled = False
        self.converged = False
        self.clipped = 0
        self.it = 0
        self.result: SolverResult | None = None
        self.delta_in, self.mu_in, self.n_imp = self.delta, self.mu, math.nan
        self.fallbacks0 = self.state["fallbacks"]
        self.error = ""

    @property
    def iteration(self) -> int:
        """Iterations so far, over both attempts."""
        return self.offset + self.it

    @property
    def retrying(self) -> bool:
        """This is the linear-mixing retry."""
        return self.first is not None

    def model(self) -> AndersonModel:
        """The impurity model of the current iterate: ``(U, eps_d = -mu, beta, Delta)``."""
        return AndersonModel(U=self.U, eps_d=-self.mu, beta=self.beta, delta_iw=self.delta)

    def _g_iw(self, result: SolverResult) -> np.ndarray:
        """The impurity ``G(i w_n)`` of ``result`` as the loop uses it (the cavity field of the
        current iterate is ``zeta = Delta + 1/G = i w_n + mu - Sigma``)."""
        g_iw = np.asarray(result.g_iw[:self.opts.n_iw])
        return 1j * g_iw.imag if self.symmetrise else g_iw

    def feed(self, result: SolverResult, solve_time: float = 0.0, *,
             mu_next: float | None = None) -> None:
        """One iteration with the solver's ``result`` for :meth:`model` (``solve_time``: the
        seconds it cost, counted in the point's ``wall_time``). ``mu_next``: at fixed density,
        the next ``mu`` when already found for this result (:func:`next_chemical_potentials`,
        which the batched engine runs for all its problems at once); ``None``: found here."""
        if self.done:
            raise RuntimeError("feed() on a finished loop")
        t0 = time.perf_counter()
        self.elapsed += solve_time
        o, lattice = self.opts, self.lattice
        self.it += 1
        g_iw = self._g_iw(result)
        self.delta_in, self.mu_in = self.delta, self.mu
        self.result = result
        mu, mu_new = self.mu, self.mu
        if self.fixed_n:
            self.n_imp = float(result.density)
            if mu_next is None:
                mu_next, error = next_chemical_potentials([self], [result])[0]
                if error:
                    return self._stop(t0, f"the chemical-potential search failed: {error}")
            mu_new = float(mu_next)
            zeta = cavity_zeta(self.delta_in, g_iw)            # i w_n + mu - Sigma
            new = lattice.delta_from_zeta(zeta + (mu_new - mu))[0]
        else:
            try:
                new = lattice.self_consistency(g_iw, self.delta_in)[0]
            except ValueError as err:  # e.g. Im(i w_n + mu - Sigma) <= 0: an acausal Sigma
                return self._stop(t0, f"the lattice self-consistency failed: {err}")
        if not (np.all(np.isfinite(new)) and np.isfinite(mu_new)):
            return self._stop(t0, "the self-consistency gave a non-finite hybridisation")
        diff = new - self.delta
        self.residual = float(np.max(np.abs(diff)))
        self.residuals.append(self.residual)
        if self.on_iteration is not None:
            self.on_iteration(self.iteration, self.residual, self.retrying)
        if self.residual < o.tol and (not self.fixed_n
                                      or abs(self.n_imp - self.density) < o.tol_density):
            self.delta = new
            self.converged = True
            return self._stop(t0)
        if _stalled(self.residuals, o):
            self.stalled = True
            return self._stop(t0)
        self._mix(diff, mu_new)
        if self.it >= o.max_iter:
            return self._stop(t0)
        self.elapsed += time.perf_counter() - t0

    def fail(self, error: str, solve_time: float = 0.0) -> None:
        """The solver could not solve :meth:`model` (``error`` says why): the problem ends here,
        not converged, with ``error`` stored in its point (no linear-mixing retry: it would
        start from the same model). The point holds the last result the solver gave, or NaN
        and the current ``Delta`` when it gave none."""
        if self.done:
            raise RuntimeError("fail() on a finished loop")
        t0 = time.perf_counter()
        self.elapsed += solve_time
        self.it += 1
        self.error = error
        point = self._attempt_point() if self.result is not None else self._empty_point()
        point.error = error
        point.wall_time = self.elapsed + time.perf_counter() - t0
        self.point, self.done = self._with_first_attempt(point), True

    def _empty_point(self) -> DMFTPoint:
        """The point of a problem whose solver failed before giving any result: NaN scalars and
        functions, the current ``Delta``."""
        nan_iw = np.full(self.opts.n_iw, complex(np.nan, np.nan))
        return DMFTPoint(
            U=self.U, beta=self.beta, mu=float(self.mu), D=self.lattice.D, branch=self.branch,
            converged=False, iterations=self.it, residual=self.residual, Z=math.nan,
            double_occupancy=math.nan, density=math.nan, g_beta_half=math.nan,
            kinetic_energy=math.nan, wall_time=0.0, g_iw=nan_iw, sigma_iw=nan_iw.copy(),
            delta_iw=self.delta, fallbacks=self.state["fallbacks"] - self.fallbacks0,
            info={"acausal_clipped": self.clipped, "retried_linear": False}, error=self.error)

    def _mix(self, diff: np.ndarray, mu_new: float) -> None:
        """The next iterate ``(Delta, mu)``: linear, or Anderson (type II) over the history."""
        o, fixed_n, mu = self.opts, self.fixed_n, self.mu
        x, f = _to_vec(self.delta, mu, fixed_n), _to_vec(diff, mu_new - mu, fixed_n)
        x_lin = x + self.weights * f
        if o.accel == "anderson":
            self.xs.append(x)
            self.fs.append(f)
            if len(self.xs) > o.history + 1:
                self.xs.pop(0)
                self.fs.pop(0)
            x_new = x_lin
            xs, fs = self.xs, self.fs
            if len(xs) > 1:
                dx = np.stack([xs[i + 1] - xs[i] for i in range(len(xs) - 1)], axis=1)
                df = np.stack([fs[i + 1] - fs[i] for i in range(len(fs) - 1)], axis=1)
                gamma = np.linalg.lstsq(df, f, rcond=1e-10)[0]
                x_new = x_new - (dx + self.weights[:, None] * df) @ gamma
                if not np.all(np.isfinite(x_new)):
                    x_new = x_lin
                    self.xs, self.fs = [x], [f]
            delta, mu = _from_vec(x_new, mu, fixed_n)
            if np.any(delta.imag > 0):  # keep causality: fall back to a plain step
                delta, mu = _from_vec(x_lin, mu, fixed_n)
                self.xs, self.fs = [x], [f]
        else:
            delta, mu = _from_vec(x_lin, mu, fixed_n)
        if self.symmetrise:
            delta = 1j * delta.imag
        if np.any(delta.imag > 0):  # an acausal solver output: clip, and count it
            delta = delta.real + 1j * np.minimum(delta.imag, 0.0)
            self.clipped += 1
        self.delta, self.mu = delta, mu

    def _stop(self, t0: float, error: str = "") -> None:
        """End the attempt: build its point; retry with linear mixing or finish."""
        self.error = error
        point = self._attempt_point()
        point.wall_time = self.elapsed + time.perf_counter() - t0
        if self.first is None and not point.converged and self.opts.accel == "anderson" \
                and not (error and self.it == 1):
            self.first = point
            self._begin(dataclasses.replace(self.options, accel="linear"))
            return
        self.point, self.done = self._with_first_attempt(point), True

    def _with_first_attempt(self, point: DMFTPoint) -> DMFTPoint:
        """``point`` of the linear-mixing retry with the first (Anderson) attempt's iterations,
        time and ED fallbacks added and its outcome in ``info``; ``point`` itself when there was
        no retry."""
        first = self.first
        if first is None:
            return point
        point.iterations += first.iterations
        point.wall_time += first.wall_time
        point.fallbacks += first.fallbacks
        point.retried_linear = True
        point.info["retried_linear"] = True
        point.info["anderson_iterations"] = first.iterations
        point.info["anderson_stalled"] = bool(first.info.get("anderson_stalled", False))
        if first.error:
            point.info["anderson_error"] = first.error
        return point

    def _attempt_point(self) -> DMFTPoint:
        """The point at the end of an attempt (its last solver result and iterate)."""
        result, o, lattice, beta = self.result, self.opts, self.lattice, self.beta
        if result is None:
            raise RuntimeError("the DMFT loop ran no iteration")
        g_iw = np.asarray(result.g_iw[:o.n_iw])
        sigma = np.asarray(result.sigma_iw[:o.n_iw])
        if self.symmetrise:
            g_iw = 1j * g_iw.imag
        z = quasiparticle_weight(sigma, beta)
        g_half = float(-beta * np.real(g_tau_from_l(result.g_l, beta, np.array([beta / 2]))[0]))
        docc = np.nan if result.double_occupancy is None else float(result.double_occupancy)
        info: dict[str, Any] = {"acausal_clipped": self.clipped, "retried_linear": False}
        if self.stalled:
            info["anderson_stalled"] = True
        if self.fixed_n:
            info.update(density_target=float(self.density),
                        density_error=float(self.n_imp - self.density), mu_next=float(self.mu))
        delta_in = self.delta_in
        try:
            e_kin = lattice.kinetic_energy(lattice.self_consistency(g_iw, delta_in)[1],
                                           beta, cavity_zeta(delta_in, g_iw))
        except ValueError:  # an acausal Sigma has no local Green's function (self.error says so)
            e_kin = math.nan
        return DMFTPoint(
            U=self.U, beta=beta, mu=float(self.mu_in), D=lattice.D, branch=self.branch,
            converged=self.converged, iterations=self.it, residual=self.residual, Z=z,
            double_occupancy=docc, density=float(result.density), g_beta_half=g_half,
            kinetic_energy=e_kin,
            wall_time=0.0, g_iw=g_iw, sigma_iw=sigma, delta_iw=self.delta,
            fallbacks=self.state["fallbacks"] - self.fallbacks0, info=info,
            warnings=solver_warnings(result), error=self.error)


def next_chemical_potentials(runs: Sequence[LoopRun], results: Sequence[SolverResult]
                             ) -> list[tuple[float, str]]:
    """The fixed-density ``mu`` step of every run for its solver result (module doc): with
    ``zeta = Delta + 1/G_imp`` and ``Sigma = i w_n + mu - zeta`` held fixed, the ``mu'`` at which
    the lattice holds ``n + n_loc(mu) - n_imp``, the target kept within ``[n/2, 1 + n/2]``.

    Runs on the same lattice and mesh are searched together
    (:meth:`~mldmft.dmft.lattice.Lattice.chemical_potentials`); each row's result is that of its
    search alone. Returns ``(mu', "")`` per run, or
    ``(nan, reason)`` when its search fails.
    """
    out: list[tuple[float, str]] = [(math.nan, "")] * len(runs)
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault((id(run.lattice), run.opts.n_iw), []).append(i)
    for rows in groups.values():
        lattice = runs[rows[0]].lattice
        try:
            zeta = np.stack([cavity_zeta(runs[i].delta, runs[i]._g_iw(results[i])) for i in rows])
            beta = np.array([runs[i].beta for i in rows])
            n = np.array([runs[i].density for i in rows], dtype=float)
            n_imp = np.array([float(results[i].density) for i in rows])
            mu = np.array([runs[i].mu for i in rows])
            # aim the lattice at n + (n_loc(mu) - n_imp): the step moves mu by about
            # (n - n_imp) / compressibility, so the converged *impurity* density is n even
            # when the solver's G(i w_n) and its density differ slightly (a network); kept
            # within [n/2, 1 + n/2] while the two are far apart (module doc)
            n_target = np.clip(n + lattice.local_densities(zeta, beta) - n_imp, 0.5 * n,
                               1.0 + 0.5 * n)
            iw = np.stack([runs[i].iw for i in rows])
            mu_new, errors = lattice.chemical_potentials(n_target, beta,
                                                         iw + mu[:, None] - zeta, mu)
        except (RuntimeError, ValueError) as err:
            if len(rows) == 1:
                out[rows[0]] = (math.nan, str(err))
                continue
            for i in rows:              # one bad row: each row alone, for its own message
                out[i] = next_chemical_potentials([runs[i]], [results[i]])[0]
            continue
        for k, i in enumerate(rows):
            out[i] = (float(mu_new[k]), errors[k])
    return out


def solver_warnings(result: SolverResult) -> list[str]:
    """What a solver result says about its own trustworthiness: its ``diagnostics.warnings``
    (each once, in order), or -- when it reports ``converged=False`` without a reason -- that its
    own iteration did not converge."""
    out: list[str] = []
    for w in result.diagnostics.warnings:
        if str(w) not in out:
            out.append(str(w))
    if not out and not result.converged:
        out.append(f"{result.solver}: the solver's own iteration did not converge")
    return out


def solve_point(step: ImpurityStep, beta: float, U: float, delta0_iw: np.ndarray,
                lattice: Lattice = BetheLattice(), mu: float | None = None,
                options: DMFTOptions = DMFTOptions(), branch: str = "up",
                state: dict | None = None,
                on_iteration: IterationCallback | None = None, *,
                density: float | None = None, mu_start: float | None = None) -> DMFTPoint:
    """Iterate the lattice self-consistency at one ``U`` from ``delta0_iw`` (one
    :class:`LoopRun` driven by ``step``; the batched engine drives many,
    :func:`mldmft.dmft.engine.run_chains`).

    Anderson acceleration that fails (no convergence within ``max_iter``, e.g. after a jump
    between branches) is retried once with plain linear mixing from the same start (up to
    ``max_iter`` more iterations); the point's ``retried_linear`` says so and ``iterations``
    counts both attempts.

    Args:
        step: impurity solver step (see :data:`ImpurityStep`).
        beta: inverse temperature (1/D).
        U: Hubbard repulsion (D).
        delta0_iw: starting hybridisation on ``options.n_iw`` frequencies.
        lattice: the lattice (:func:`~mldmft.dmft.lattice.get_lattice`).
        mu: chemical potential; default ``U/2`` (half filling).
        options: loop options.
        branch: label of the sweep direction.
        state: per-sweep solver state carried between points (warm starts).
        on_iteration: called after every iteration (progress display), see
            :data:`IterationCallback`.
        density: fixed filling ``n`` in ``(0, 2)`` (both spins) instead of ``mu``: ``mu`` is
            found inside the loop (module doc) and stored in the point.
        mu_start: first ``mu`` at fixed density (warm start, e.g. the previous point's);
            default :func:`free_mu_start` (the free lattice's ``mu`` at ``n`` plus the Hartree
            shift ``U n/2``).
    """
    run = LoopRun(beta, U, delta0_iw, lattice, mu, options, branch, state, on_iteration,
                  density=density, mu_start=mu_start)
    while not run.done:
        t0 = time.perf_counter()
        result = step(run.model(), run.state)
        run.feed(result, time.perf_counter() - t0)
    assert run.point is not None
    return run.point
