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
(:meth:`~mldmft.dmft.lattice.Lattice.chemical_potential`, Brent's method), aimed at
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
This is the usual scheme of DMFT codes away from half filling (the lattice Dyson equation with the
impurity self-energy; Georges, Kotliar, Krauth, Rozenberg, Rev. Mod. Phys. 68, 13 (1996)).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from solvers import AndersonModel, SolverResult, g_tau_from_l, matsubara_freqs

from .lattice import BetheLattice, Lattice

__all__ = ["DMFTOptions", "DMFTPoint", "solve_point", "check_density_args", "ImpurityStep",
           "IterationCallback"]

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

    def scalars(self) -> dict[str, Any]:
        """The scalar fields (for CSV summaries)."""
        return {k: getattr(self, k) for k in (
            "U", "branch", "converged", "iterations", "residual", "Z", "double_occupancy",
            "density", "g_beta_half", "kinetic_energy", "wall_time", "fallbacks", "beta", "mu",
            "D", "retried_linear")}

    def note(self) -> str:
        """How the point ended, in words (e.g. for tables): empty for a plain convergence."""
        if self.retried_linear:
            how = "converged" if self.converged else "NOT converged, also"
            return (f"{how} after linear-mixing retry (Anderson acceleration failed), "
                    f"{self.iterations} iterations in total")
        return "" if self.converged else f"NOT converged in {self.iterations} iterations"


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


def solve_point(step: ImpurityStep, beta: float, U: float, delta0_iw: np.ndarray,
                lattice: Lattice = BetheLattice(), mu: float | None = None,
                options: DMFTOptions = DMFTOptions(), branch: str = "up",
                state: dict | None = None,
                on_iteration: IterationCallback | None = None, *,
                density: float | None = None, mu_start: float | None = None) -> DMFTPoint:
    """Iterate the lattice self-consistency at one ``U`` from ``delta0_iw``.

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
            default the non-interacting lattice's ``mu`` at ``n`` plus the Hartree shift
            ``U n/2``.
    """
    check_density_args(mu, density)
    if density is not None and options.symmetrise is None and lattice.particle_hole_symmetric \
            and abs(density - 1.0) < 1e-12:
        mu, density = U / 2, None     # half filling: mu = U/2 by particle-hole symmetry
    if density is not None and options.symmetrise:
        raise ValueError(f"symmetrise=True needs half filling, got density={density}")
    if density is not None and mu_start is None:
        mu_start = (lattice.chemical_potential(density, beta, np.zeros(options.n_iw))
                    + U * density / 2)
    mu = mu_start if density is not None else mu
    point = _iterate(step, beta, U, delta0_iw, lattice, mu, options, branch, state,
                     on_iteration, density=density)
    if point.converged or options.accel != "anderson":
        return point
    linear = dataclasses.replace(options, accel="linear")
    retry = _iterate(step, beta, U, delta0_iw, lattice, mu, linear, branch, state,
                     on_iteration, offset=point.iterations, density=density)
    retry.iterations += point.iterations
    retry.wall_time += point.wall_time
    retry.fallbacks += point.fallbacks
    retry.retried_linear = True
    retry.info["retried_linear"] = True
    retry.info["anderson_iterations"] = point.iterations
    retry.info["anderson_stalled"] = bool(point.info.get("anderson_stalled", False))
    return retry


def _iterate(step: ImpurityStep, beta: float, U: float, delta0_iw: np.ndarray,
             lattice: Lattice = BetheLattice(), mu: float | None = None,
             options: DMFTOptions = DMFTOptions(), branch: str = "up",
             state: dict | None = None, on_iteration: IterationCallback | None = None,
             offset: int = 0, density: float | None = None) -> DMFTPoint:
    """One run of the loop (see :func:`solve_point`); ``offset``: iterations of an earlier
    attempt (for ``on_iteration``; a nonzero offset marks the retry); with ``density``, ``mu``
    is the starting chemical potential."""
    t0 = time.perf_counter()
    mu = U / 2 if mu is None else float(mu)
    fixed_n = density is not None
    symmetrise = (not fixed_n and abs(mu - U / 2) < 1e-12 and lattice.particle_hole_symmetric
                  if options.symmetrise is None else options.symmetrise)
    state = {} if state is None else state
    state.setdefault("fallbacks", 0)
    fallbacks0 = state["fallbacks"]
    delta = np.array(delta0_iw, dtype=complex)
    if delta.size != options.n_iw:
        raise ValueError(f"delta0_iw has {delta.size} frequencies, options.n_iw = {options.n_iw}")
    if symmetrise:
        delta = 1j * delta.imag
    iw = 1j * matsubara_freqs(beta, options.n_iw)
    # Anderson state: (Re Delta, Im Delta[, mu]); step weights: mixing for Delta, 1 for mu
    weights = np.full(2 * options.n_iw + int(fixed_n), options.mixing)
    if fixed_n:
        weights[-1] = 1.0
    xs: list[np.ndarray] = []
    fs: list[np.ndarray] = []
    residual = math.inf
    residuals: list[float] = []
    stalled = False
    result = None
    converged = False
    clipped = 0
    it = 0
    delta_in, mu_in, n_imp = delta, mu, math.nan
    for it in range(1, options.max_iter + 1):
        delta_in, mu_in = delta, mu
        model = AndersonModel(U=U, eps_d=-mu, beta=beta, delta_iw=delta)
        result = step(model, state)
        g_iw = np.asarray(result.g_iw[:options.n_iw])
        if symmetrise:
            g_iw = 1j * g_iw.imag
        mu_new = mu
        if fixed_n:
            n_imp = float(result.density)
            zeta = delta_in + 1.0 / g_iw                  # i w_n + mu - Sigma
            try:
                # aim the lattice at n + (n_loc(mu) - n_imp): the step moves mu by about
                # (n - n_imp) / compressibility, so the converged *impurity* density is n even
                # when the solver's G(i w_n) and its density differ slightly (a network)
                n_target = density + lattice.local_density(zeta, beta) - n_imp
                mu_new = lattice.chemical_potential(min(max(n_target, 1e-6), 2.0 - 1e-6), beta,
                                                    iw + mu - zeta, mu)
            except (RuntimeError, ValueError):
                break
            new = lattice.delta_from_zeta(zeta + (mu_new - mu))[0]
        else:
            new = lattice.self_consistency(g_iw, delta_in)[0]
        if not (np.all(np.isfinite(new)) and np.isfinite(mu_new)):
            break
        diff = new - delta
        residual = float(np.max(np.abs(diff)))
        residuals.append(residual)
        if on_iteration is not None:
            on_iteration(offset + it, residual, offset > 0)
        if residual < options.tol and (not fixed_n or abs(n_imp - density) < options.tol_density):
            delta = new
            converged = True
            break
        if _stalled(residuals, options):
            stalled = True
            break
        x, f = _to_vec(delta, mu, fixed_n), _to_vec(diff, mu_new - mu, fixed_n)
        x_lin = x + weights * f
        if options.accel == "anderson":
            xs.append(x)
            fs.append(f)
            if len(xs) > options.history + 1:
                xs.pop(0)
                fs.pop(0)
            x_new = x_lin
            if len(xs) > 1:
                dx = np.stack([xs[i + 1] - xs[i] for i in range(len(xs) - 1)], axis=1)
                df = np.stack([fs[i + 1] - fs[i] for i in range(len(fs) - 1)], axis=1)
                gamma = np.linalg.lstsq(df, f, rcond=1e-10)[0]
                x_new = x_new - (dx + weights[:, None] * df) @ gamma
                if not np.all(np.isfinite(x_new)):
                    x_new = x_lin
                    xs, fs = [x], [f]
            delta, mu = _from_vec(x_new, mu, fixed_n)
            if np.any(delta.imag > 0):  # keep causality: fall back to a plain step
                delta, mu = _from_vec(x_lin, mu, fixed_n)
                xs, fs = [x], [f]
        else:
            delta, mu = _from_vec(x_lin, mu, fixed_n)
        if symmetrise:
            delta = 1j * delta.imag
        if np.any(delta.imag > 0):  # an acausal solver output: clip, and count it
            delta = delta.real + 1j * np.minimum(delta.imag, 0.0)
            clipped += 1
    if result is None:
        raise RuntimeError("the DMFT loop ran no iteration")
    g_iw = np.asarray(result.g_iw[:options.n_iw])
    sigma = np.asarray(result.sigma_iw[:options.n_iw])
    if symmetrise:
        g_iw = 1j * g_iw.imag
    w0 = math.pi / beta
    z = float(1.0 / (1.0 - sigma[0].imag / w0))
    g_half = float(-beta * np.real(g_tau_from_l(result.g_l, beta, np.array([beta / 2]))[0]))
    docc = np.nan if result.double_occupancy is None else float(result.double_occupancy)
    info: dict[str, Any] = {"acausal_clipped": clipped, "retried_linear": False}
    if stalled:
        info["anderson_stalled"] = True
    if fixed_n:
        info.update(density_target=float(density), density_error=float(n_imp - density),
                    mu_next=float(mu))
    return DMFTPoint(U=float(U), beta=float(beta), mu=float(mu_in), D=lattice.D, branch=branch,
                     converged=converged, iterations=it, residual=residual, Z=z,
                     double_occupancy=docc, density=float(result.density), g_beta_half=g_half,
                     kinetic_energy=lattice.kinetic_energy(
                         lattice.self_consistency(g_iw, delta_in)[1], beta, delta_in + 1.0 / g_iw),
                     wall_time=time.perf_counter() - t0, g_iw=g_iw, sigma_iw=sigma,
                     delta_iw=delta, fallbacks=state["fallbacks"] - fallbacks0, info=info)
