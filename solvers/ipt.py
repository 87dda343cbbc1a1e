"""Iterated perturbation theory (IPT) for the Anderson impurity model, any filling.

Second-order diagram. For an auxiliary non-interacting impurity
``G0~(i w_n) = 1 / (i w_n - eps0 - Delta(i w_n))`` (per spin), the second-order (beyond Hartree)
self-energy of ``U n_up n_dn`` is::

    Sigma2(tau) = -U^2 G0~(tau) G0~(-tau) G0~(tau) = U^2 G0~(tau)^2 G0~(beta - tau)

(``G(-tau) = -G(beta - tau)``), whose high-frequency tail is ``Sigma2 -> U^2 n0 (1 - n0)/(i w_n)``
with ``n0 = -G0~(beta-)``, so ``Im Sigma2(i w_n) < 0`` for ``w_n > 0``. ``G0~(tau)`` comes from
:func:`solvers.fourier.iw_to_tau` with its tail ``(1, eps0, eps0^2 + M1)`` subtracted analytically,
``Sigma2(i w_n)`` from :func:`solvers.fourier.tau_to_iw` (exact integral of a cubic spline, which
carries the jump, hence the ``1/(i w_n)`` tail, exactly). ``M_k`` are the moments of
``Delta(i w_n) = M1/(i w_n) + M2/(i w_n)^2 + M3/(i w_n)^3 + ...`` (``M1 = sum_k V_k^2``,
``M2 = sum_k V_k^2 eps_k``; fitted to the high-frequency data for a continuous bath).

Half filling (``model.is_particle_hole_symmetric()``). The Hartree-shifted level is
``eps_d + U/2 = 0``, so ``eps0 = 0``, ``G0~^-1 = i w_n - Delta(i w_n)`` and::

    Sigma(i w_n) = U/2 + Sigma2(i w_n),   Sigma2(tau) = U^2 G0~(tau)^3
    G(i w_n)     = 1 / (i w_n - Delta(i w_n) - Sigma2(i w_n))

``G``, ``Sigma2`` and ``Delta`` are purely imaginary (real parts set to exactly zero; the
Hartree constant cancels ``eps_d``); odd ``G_l`` vanish. One shot: ``iterations = 1``.

Away from half filling: the interpolating self-energy of Kajueter & Kotliar, PRL 77, 131 (1996)::

    Sigma(i w_n) = U n_s + A Sigma2(i w_n) / (1 - B Sigma2(i w_n))
    A = n_s (1 - n_s) / (n0 (1 - n0))
    B = (eps_d + U (1 - n_s) - eps0) / (U^2 n0 (1 - n0))

with ``n_s`` the density per spin of the resulting ``G = 1/(i w_n - eps_d - Delta - Sigma)``.
``A`` makes the ``1/(i w_n)`` moment exact, ``Sigma -> U n_s + U^2 n_s (1 - n_s)/(i w_n)``
(the denominator tends to 1). ``B`` makes the atomic limit exact: for ``Delta = 0``,
``Sigma2 = U^2 n0 (1 - n0)/(i w_n - eps0)`` and the formula becomes
``U n_s + U^2 n_s (1 - n_s)/(i w_n - eps_d - U (1 - n_s))``, the exact atomic self-energy.
(In Kajueter-Kotliar notation ``mu = -eps_d``, ``mu0~ = -eps0``.) The auxiliary level ``eps0`` is
fixed by ``n0 = n_s`` (per spin), the condition commonly used at finite temperature (Kajueter and
Kotliar imposed the Friedel sum rule at ``T = 0``); with it ``A = 1`` up to the root-finding
tolerance. ``n_s`` is found by a safeguarded iteration on ``h(n) = n_s[G(n)] - n``: a
first damped step ``n + mixing h``, then the inverse quadratic interpolation through the last
three ``(n, h)`` (the secant through the last two when that is outside the bracket
``h(lo) > 0 > h(hi)``; bisection when both are), until ``|h| <= tol`` or ``max_iter``
evaluations of ``h``; ``converged`` says which. At particle-hole symmetry the scheme reduces to the half-filling formula (``A = 1``,
``B = 0``, ``eps0 = 0``), which is then used directly.

Observables::

    n_s      = 1/2 + (1/beta) sum_{n in Z} [G(i w_n) - 1/(i w_n)]
    U <n_up n_dn> = (1/beta) sum_{n in Z} Sigma(i w_n) G(i w_n) e^{i w_n 0+}
                  = U n_s^2 + (1/beta) sum_{n in Z} [Sigma(i w_n) - U n_s] G(i w_n)

Both sums are :func:`solvers.tails.matsubara_sum`: the known tail moments (``1, c2, c3`` of ``G``;
``0, U^2 n_s (1 - n_s)`` of ``(Sigma - U n_s) G``) and the ``1/(i w_n)^4 .. 1/(i w_n)^6`` moments
fitted to the last frequencies are summed analytically (as tail poles), the rest on the mesh.
The second line is an identity for the exact ``Sigma`` and ``G`` (equation of motion); for IPT it
is one estimator among several that disagree because the approximation is not conserving, so
``double_occupancy`` is approximate: exact at first order in ``U`` (error ``O(U^2)``, ``O(U^3)`` at
half filling) and in the atomic limit; ``n_s^2`` at ``U = 0``. At strong coupling off half filling
it can leave the physical range ``[max(0, n - 1), n/2]`` (even turn slightly negative); this is
reported in ``info["warnings"]``, not hidden. ``energy`` is not computed (``None``).

Exact limits: ``U = 0`` (``Sigma = 0``); second order in ``U`` (at half filling the error in ``G``
is ``O(U^4)``: ``G`` is even in ``U`` there, so there is no third-order term); the atomic limit
``Delta = 0`` (half filling: ``Sigma = U/2 + U^2/(4 i w_n)``; off half filling by construction of
``B``); the ``1/(i w_n)`` moment of ``Sigma`` at any filling.

Known failure modes: in DMFT at half filling IPT gives a Mott transition (``U_c2 ~ 3.3 D`` on the
Bethe lattice), but its quasiparticle weight, gap and critical ``U`` are only interpolations
between the two exact limits; off half filling there is no Mott physics beyond what the
interpolation builds in (doped Mott insulators are described poorly, and ``n0 = n`` does not
enforce the Luttinger/Friedel sum rule at ``T = 0``); the self-consistency in ``n_s`` may be slow or
fail (``converged = False``) in strongly correlated, nearly empty or nearly full cases, where
``eps0`` runs off. For a discrete bath with few sites the second-order diagram can be far from the
exact answer at moderate ``U`` (no Kondo-scale physics). Paramagnetic single orbital only.
Numerical limits: the Matsubara mesh must reach well above every energy of the problem
(``w_N >> |eps_d| + U + bandwidth``): the neglected ``1/(i w_n)^5`` tail limits ``g_l`` and the
sum rule (about ``1e-7`` at ``beta = 100``, ``U ~ 7``, ``n_iw = 1024``; ``1e-8`` with 4096); for
nearly empty or full levels ``|eps0|`` grows until the ``tau`` mesh no longer resolves
``G0~(tau)`` (raise ``fft_tau_points``). Refused before any work: ``w_N < 4 E``
(``E`` = :meth:`AndersonModel.energy_scale`; e.g. ``beta = 1e4``, ``n_iw = 1024``: ``w_N = 0.64``
and a double occupancy of 0.021 instead of 0.118), and a default ``tau`` mesh above ``2^21 + 1``
points (``beta > 52428``; ``beta = 1e6`` would need ``2^26 + 1`` points, minutes and gigabytes).
A ``g_l`` whose Legendre series misses ``G(0+)``, ``G(beta-)`` (too few coefficients for
``beta``, or too few Matsubara frequencies for :func:`solvers.legendre.g_l_from_iw`; checked by
:func:`solvers.legendre.check_legendre_truncation`) gives ``converged=False`` and a warning.

Numerics: FFTs only, no Python loop over frequencies, and none over models:
:func:`solve_ipt_many` treats a batch of models as arrays (one row per model; FFTs, banded spline
solves, least-squares tail fits and the root searches run over all rows at once; models whose
default ``tau`` meshes differ in size, or whose baths differ in kind, form separate groups), and
:func:`solve_ipt` is a batch of one. The auxiliary level ``eps0`` is the root of
``n0(eps0) = n_s``, found by safeguarded Newton steps (:func:`solvers._roots.newton_roots`,
slope ``dn0/d eps0`` from :meth:`solvers._batch.ModelBatch.free_density`, tolerance
``min(1e-13, 1e-3 tol)``) started from the tangent prediction of the row's last solved
``(n_s, eps0)`` and its slope, the step limited to twice that prediction's move at first; a
search stops without the confirming evaluation once its Newton step ``s`` has ``beta s^2``
below an eighth of the search tolerance (``beta/2`` bounds ``|n0''/(2 n0')|``). ``g_l`` is
:func:`solvers.legendre.g_l_from_iw` (exact Legendre kernel of the Matsubara frequencies) with the
tail ``(1, c2, c3, c4)``, ``c4`` fitted (:func:`solvers.tails.estimate_tail`); the moments ``M_k``
of ``Delta`` are :func:`solvers.tails.hybridisation_moments`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._batch import ModelBatch, checked_models, group_by_bath, index_prefix
from ._checks import check_fraction, check_int, check_positive
from ._roots import newton_roots
from .fourier import iw_to_tau_many, tau_to_iw_many
from .greens import dyson_g, g0_inverse_iw
from .legendre import check_legendre_truncation_many, g_l_from_iw_many
from .model import AndersonModel
from .options import SolverOptions
from .registry import register_solver
from .result import SolverResult, warn_untrusted
from .tails import density_from_g_iw_many, fit_tail_many, matsubara_sum_many

__all__ = ["solve_ipt", "solve_ipt_many", "free_density", "IPTOptions"]

_MIN_FFT_POINTS = 1024
_TAU_STEPS_PER_BETA = 40  # tau step h <= 1/40 (1/D): |G error| ~ 2e-10 at beta=50, falls like h^4
_MAX_FFT_POINTS = 2 ** 21 + 1  # default tau mesh limit: beta <= 52428 (~10 s per solve)
_MIN_REACH = 4.0               # w_N must exceed this many times the model's energy scale
_LEVEL_MAX_ITER = 200          # root search of eps0


# ---------------------------------------------------------------------------------- helpers
def free_density(model: AndersonModel, level: float, delta_iw: np.ndarray,
                 moments: np.ndarray) -> float:
    """Density per spin of ``1 / (i w_n - level - Delta(i w_n))``.

    Discrete bath: exact, ``sum_j |U_0j|^2 f(lambda_j)`` from the eigenvectors of the one-body
    matrix ``[[level, V], [V, diag(eps_k)]]``. Continuous bath:
    :func:`solvers.tails.density_from_g_iw` with the known moments ``(1, level,
    level^2 + M1, level^3 + 2 level M1 + M2)`` (``M_k`` of ``Delta``, given as ``moments``, on
    the frequencies of ``delta_iw``). :meth:`solvers._batch.ModelBatch.free_density` for one
    model.

    Example:
        >>> from solvers.tails import hybridisation_moments
        >>> m = AndersonModel(U=1.0, eps_d=0.0, beta=10.0, bath_eps=[0.0], bath_v=[0.5])
        >>> round(free_density(m, 0.0, m.delta(64), hybridisation_moments(m)), 12)
        0.5
    """
    delta_iw = np.asarray(delta_iw, dtype=complex)
    batch = ModelBatch.build([model], delta_iw.size)
    if not model.is_discrete:
        batch = dataclasses.replace(batch, delta_iw=delta_iw[None, :],
                                    moments=np.asarray(moments, dtype=float)[None, :3])
    return float(batch.free_density(np.array([float(level)]), np.array([0]))[0])


def _default_fft_points(beta: float) -> int:
    m = max(_MIN_FFT_POINTS, _TAU_STEPS_PER_BETA * beta)
    return 2 ** int(math.ceil(math.log2(m))) + 1


def _check_meshes(beta: float, energy: float, n_iw: int, fft_tau_points: int | None,
                  prefix: str = "") -> None:
    """Refuse, before any work, Matsubara meshes that stop below the model's energies and
    default ``tau`` meshes too large to build (one line each)."""
    w_last = (2 * n_iw - 1) * math.pi / beta
    if w_last < _MIN_REACH * energy:
        need = math.ceil((_MIN_REACH * energy * beta / math.pi + 1) / 2)
        raise ValueError(
            f"{prefix}IPT: n_iw={n_iw} Matsubara frequencies reach only w_N={w_last:.3g} at "
            f"beta={beta:g}, below {_MIN_REACH:g} x the model's energy scale E={energy:.3g} (the "
            f"high-frequency tails would be wrong); use n_iw >= {need}")
    if fft_tau_points is None and _default_fft_points(beta) > _MAX_FFT_POINTS:
        raise ValueError(
            f"{prefix}IPT: beta={beta:g} needs a tau mesh of {_default_fft_points(beta)} points "
            f"(step 1/{_TAU_STEPS_PER_BETA}) for its FFTs, above the limit {_MAX_FFT_POINTS} "
            f"(beta <= {(_MAX_FFT_POINTS - 1) / _TAU_STEPS_PER_BETA:g}); pass fft_tau_points to "
            "accept the cost or a coarser step")


@dataclass(frozen=True)
class IPTOptions(SolverOptions):
    """Options of the ``ipt`` solver (meanings in :func:`solve_ipt`), checked on construction.

    Example:
        >>> IPTOptions(n_iw=8)
        Traceback (most recent call last):
        ...
        ValueError: n_iw must be an integer >= 16, got 8
    """

    n_iw: int = 1024
    n_l: int = 80
    tol: float = 1e-10
    max_iter: int = 50
    mixing: float = 0.5
    fft_tau_points: int | None = None
    density_guess: float | None = None
    n_tau: int | None = None

    def result_sizes(self) -> tuple[int, int]:
        return self.n_iw, self.n_l

    def check(self) -> None:
        check_int("n_iw", self.n_iw, 16)
        check_int("n_l", self.n_l, 1)
        check_int("max_iter", self.max_iter, 1)
        check_positive("tol", self.tol)
        check_fraction("mixing", self.mixing)
        if self.fft_tau_points is not None:
            check_int("fft_tau_points", self.fft_tau_points, 65)
        if self.n_tau is not None:
            check_int("n_tau", self.n_tau, 2)
        if self.density_guess is not None and not 0 < self.density_guess < 2:
            raise ValueError(f"density_guess (both spins) must lie in (0, 2), got "
                             f"{self.density_guess!r}")


def _bubble_iw(g0_iw: np.ndarray, beta: np.ndarray, tail: np.ndarray, n_fft: int,
               symmetric: bool) -> np.ndarray:
    """``P(i w_n)`` of every row, the transform of ``P(tau) = G0(tau)^2 G0(beta - tau)``
    (``Sigma2 = U^2 P``); ``g0_iw`` of shape ``(B, n_iw)``, ``tail`` ``(B, 3)``."""
    g0_tau = iw_to_tau_many(g0_iw, beta, n_fft, tail)
    if symmetric:
        g0_tau = 0.5 * (g0_tau + g0_tau[:, ::-1])
        p_tau = g0_tau * g0_tau * g0_tau     # not ** 3: numpy's pow is ~800x slower
    else:
        p_tau = g0_tau ** 2 * g0_tau[:, ::-1]
    return tau_to_iw_many(p_tau, beta, g0_iw.shape[1])


# ---------------------------------------------------------------------------------- branches
@dataclass
class _Solved:
    """What each branch hands to :func:`_results`, one row per model of a group."""

    g_iw: np.ndarray
    sigma_iw: np.ndarray
    n_s: np.ndarray          # density per spin reported
    sigma_inf: np.ndarray    # Sigma(i w -> inf)
    s1: np.ndarray           # 1/(i w) moment of Sigma - sigma_inf
    c2: np.ndarray           # moments of G used for its tail
    c3: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    infos: list


def _non_interacting(b: ModelBatch) -> _Solved:
    rows = np.arange(len(b))
    g_iw = dyson_g(g0_inverse_iw(b.wn, b.eps_d, b.delta_iw), 0.0)
    n_s = b.free_density(b.eps_d, rows)
    zero = np.zeros(len(b))
    infos = [dict(method="non-interacting", residual=0.0, history=[]) for _ in rows]
    return _Solved(g_iw, np.zeros_like(g_iw), n_s, zero, zero, b.eps_d.copy(),
                   b.eps_d ** 2 + b.moments[:, 0], np.ones(len(b), bool),
                   np.ones(len(b), int), infos)


def _half_filling(b: ModelBatch, n_fft: int) -> _Solved:
    m1, U2 = b.moments[:, 0], b.U ** 2
    delta_iw = 1j * b.delta_iw.imag
    g0_inv = g0_inverse_iw(b.wn, 0.0, delta_iw)
    g0_iw = 1j * dyson_g(g0_inv, 0.0).imag
    tail = np.stack([np.ones(len(b)), np.zeros(len(b)), m1], axis=1)
    p_iw = _bubble_iw(g0_iw, b.beta, tail, n_fft, symmetric=True)
    sigma2_iw = 1j * (U2[:, None] * p_iw.imag)
    g_iw = 1j * dyson_g(g0_inv, sigma2_iw).imag
    infos = [dict(method="half-filling", eps0=0.0, n0=0.5, A=1.0, B=0.0, residual=0.0,
                  history=[]) for _ in range(len(b))]
    return _Solved(g_iw, (b.U / 2)[:, None] + sigma2_iw, np.full(len(b), 0.5), b.U / 2, U2 / 4,
                   np.zeros(len(b)), m1 + U2 / 4, np.ones(len(b), bool), np.ones(len(b), int),
                   infos)


def _modified(b: ModelBatch, n_fft: int, tol: float, max_iter: int, mixing: float,
              density_guess: float | None) -> _Solved:
    """Kajueter-Kotliar IPT: the self-consistency ``n_s[G(n)] = n`` of every row at once, each
    row with its own safeguarded iteration (see the module docstring)."""
    n_rows, n_iw = b.wn.shape
    all_rows = np.arange(n_rows)
    U, eps_d, m1 = b.U, b.eps_d, b.moments[:, 0]
    xtol = min(1e-13, tol * 1e-3)
    # the last solved (n_s, eps0) of each row and the slope dn0/d eps0 there: the next search
    # starts from their tangent
    last_n, last_e = np.full(n_rows, np.nan), eps_d + U / 2
    last_slope = np.full(n_rows, np.nan)

    def bubble(n_s: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Auxiliary level ``eps0`` with ``n0(eps0) = n_s``, ``n0`` and ``Sigma2`` (FFTs)."""
        def excess(level: np.ndarray, sub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n0, slope = b.free_density(level, rows[sub], slope=True)
            last_slope[rows[sub]] = slope          # the last evaluation of a row: its root
            return n0 - n_s[sub], slope

        with np.errstate(divide="ignore", invalid="ignore"):
            guess = last_e[rows] + (n_s - last_n[rows]) / last_slope[rows]
        warm = np.isfinite(guess)
        start = np.where(warm, guess, last_e[rows])
        width = np.where(warm, 2.0 * np.abs(guess - last_e[rows]) + 1e-9, 1.0)
        # |n0''/(2 n0')| <= beta/2 for one Fermi function (n0 a thermal average): beta as the
        # curvature bound lets the last, confirming evaluation of a converged search be skipped
        eps0, excess0, _, _ = newton_roots(excess, start, width, xtol=xtol, rtol=1e-15,
                                           max_iter=_LEVEL_MAX_ITER, curvature=b.beta[rows])
        last_n[rows], last_e[rows] = n_s, eps0
        n0 = excess0 + n_s
        g0_iw = dyson_g(g0_inverse_iw(b.wn[rows], eps0, b.delta_iw[rows]), 0.0)
        tail = np.stack([np.ones(rows.size), eps0, eps0 ** 2 + m1[rows]], axis=1)
        p_iw = _bubble_iw(g0_iw, b.beta[rows], tail, n_fft, symmetric=False)
        return eps0, n0, (U[rows] ** 2)[:, None] * p_iw

    def close(n_s: np.ndarray, rows: np.ndarray, eps0: np.ndarray, n0: np.ndarray,
              sigma2_iw: np.ndarray) -> tuple:
        """``Sigma``, ``G``, the density of ``G`` and ``A``, ``B`` for ``n_s`` and ``Sigma2``."""
        u, ed = U[rows], eps_d[rows]
        q0 = n0 * (1.0 - n0)
        pos = q0 > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(pos, n_s * (1.0 - n_s) / q0, 1.0)
            bb = np.where(pos, (ed + u * (1.0 - n_s) - eps0) / (u * u * q0), 0.0)
        sigma_iw = (u * n_s)[:, None] + a[:, None] * sigma2_iw / (1.0 - bb[:, None] * sigma2_iw)
        g_iw = dyson_g(g0_inverse_iw(b.wn[rows], ed, b.delta_iw[rows]), sigma_iw)
        c2 = ed + u * n_s
        c3 = c2 ** 2 + m1[rows] + u * u * n_s * (1.0 - n_s)
        tail = np.stack([np.ones(rows.size), c2, c3], axis=1)
        n_new = density_from_g_iw_many(g_iw, b.beta[rows], tail, n_moments=6)
        return sigma_iw, g_iw, n_new, a, bb, c2, c3

    if density_guess is None:
        a0, b0 = b.free_density(eps_d, all_rows), b.free_density(eps_d + U, all_rows)
        n_cur = a0 / (1.0 - b0 + a0)
    else:
        n_cur = np.full(n_rows, density_guess / 2.0)
    n_cur = np.clip(n_cur, 1e-12, 1.0 - 1e-12)
    lo, hi = np.zeros(n_rows), np.ones(n_rows)  # brackets of the roots of h(n) = n_s[G(n)] - n
    prev_n, prev_h = np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    prev2_n, prev2_h = np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    hist_n, hist_h = np.full((max_iter, n_rows), np.nan), np.full((max_iter, n_rows), np.nan)
    converged = np.zeros(n_rows, bool)
    iterations = np.zeros(n_rows, int)
    out = dict(eps0=np.zeros(n_rows), n0=np.zeros(n_rows), A=np.zeros(n_rows),
               B=np.zeros(n_rows), n_in=np.zeros(n_rows), n_new=np.zeros(n_rows),
               c2=np.zeros(n_rows), c3=np.zeros(n_rows),
               g_iw=np.zeros((n_rows, n_iw), complex), sigma_iw=np.zeros((n_rows, n_iw), complex))
    active = all_rows
    for it in range(1, max_iter + 1):
        if active.size == 0:
            break
        n_act = n_cur[active]
        eps0, n0, sigma2_iw = bubble(n_act, active)
        sigma_iw, g_iw, n_new, a, bb, c2, c3 = close(n_act, active, eps0, n0, sigma2_iw)
        h = n_new - n_act
        for key, val in (("eps0", eps0), ("n0", n0), ("A", a), ("B", bb), ("n_in", n_act),
                         ("n_new", n_new), ("c2", c2), ("c3", c3), ("g_iw", g_iw),
                         ("sigma_iw", sigma_iw)):
            out[key][active] = val
        hist_n[it - 1, active], hist_h[it - 1, active] = n_act, h
        iterations[active] = it
        done = np.abs(h) <= tol
        converged[active[done]] = True
        # the others: bracket update, then the next n inside the bracket
        rows, h, n_act = active[~done], h[~done], n_act[~done]
        lo[rows] = np.where(h > 0, np.maximum(lo[rows], n_act), lo[rows])
        hi[rows] = np.where(h > 0, hi[rows], np.minimum(hi[rows], n_act))
        p_n, p_h, q_n, q_h = prev_n[rows], prev_h[rows], prev2_n[rows], prev2_h[rows]
        lo_r, hi_r = lo[rows], hi[rows]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # inverse quadratic interpolation through the last three (n, h), else the secant
            # through the last two, else the damped step (the first step: the only one
            # defined); the first of them inside the bracket, else bisection
            n_iqi = (n_act * p_h * q_h / ((h - p_h) * (h - q_h))
                     + p_n * h * q_h / ((p_h - h) * (p_h - q_h))
                     + q_n * h * p_h / ((q_h - h) * (q_h - p_h)))
            n_sec = n_act - h * (n_act - p_n) / (h - p_h)
        n_next = 0.5 * (lo_r + hi_r)
        for cand in (n_act + mixing * h, n_sec, n_iqi):     # the last one inside wins
            inside = (lo_r < cand) & (cand < hi_r)          # (False for NaN)
            n_next = np.where(inside, cand, n_next)
        prev2_n[rows], prev2_h[rows] = p_n, p_h
        prev_n[rows], prev_h[rows] = n_act, h
        n_cur[rows] = n_next
        active = rows
    infos = []
    for i in range(n_rows):
        k = int(iterations[i])
        info = dict(method="modified", eps0=float(out["eps0"][i]), n0=float(out["n0"][i]),
                    A=float(out["A"][i]), B=float(out["B"][i]),
                    residual=float(hist_h[k - 1, i]),
                    history=list(zip(hist_n[:k, i].tolist(), hist_h[:k, i].tolist())))
        if not converged[i]:
            info["warnings"] = [f"max_iter={max_iter} reached with |n_s[G(n)] - n| = "
                                f"{abs(hist_h[k - 1, i]):.3g} > tol={tol:g}"]
        infos.append(info)
    # the returned G belongs to the last input n; its own density is reported
    n_in = out["n_in"]
    return _Solved(out["g_iw"], out["sigma_iw"], out["n_new"], U * n_in,
                   U * U * n_in * (1.0 - n_in), out["c2"], out["c3"], converged, iterations,
                   infos)


# ---------------------------------------------------------------------------------- results
def _results(b: ModelBatch, sol: _Solved, n_l: int, n_tau: int | None,
             base_infos: list[dict]) -> list[SolverResult]:
    """Tail, ``g_l``, double occupancy, optional ``g_tau`` and checks of every row."""
    beta, U, n_s = b.beta, b.U, sol.n_s
    n_rows = len(b)
    known = np.stack([np.ones(n_rows), sol.c2, sol.c3], axis=1)
    c4 = fit_tail_many(sol.g_iw, beta, known, 4)[:, 3]
    tail = np.concatenate([known, c4[:, None]], axis=1)
    g_l = g_l_from_iw_many(sol.g_iw, beta, n_l, tail)
    corr = matsubara_sum_many((sol.sigma_iw - sol.sigma_inf[:, None]) * sol.g_iw, beta,
                              np.stack([np.zeros(n_rows), sol.s1], axis=1), n_moments=6)
    interacting = U > 0
    u_safe = np.where(interacting, U, 1.0)
    double_occupancy = np.where(interacting, n_s * sol.sigma_inf / u_safe + corr / u_safe,
                                n_s ** 2)
    tau = g_tau = None
    if n_tau is not None:
        tau = np.linspace(0.0, beta, int(n_tau), axis=-1)
        g_tau = iw_to_tau_many(sol.g_iw, beta, int(n_tau), tail)
    ends = np.stack([n_s - 1.0, -n_s], axis=1)
    truncated = check_legendre_truncation_many(g_l, beta, ends)
    results = []
    for i in range(n_rows):
        info = dict(base_infos[i], **sol.infos[i])
        info["tail_moments"] = tuple(float(x) for x in tail[i])
        converged = bool(sol.converged[i])
        d, n = float(double_occupancy[i]), float(n_s[i])
        if not max(0.0, 2 * n - 1) - 1e-9 <= d <= n + 1e-9:
            info.setdefault("warnings", []).append(
                f"double_occupancy={d:.3g} lies outside the physical bounds "
                f"[max(0, n - 1), n/2] for n={2 * n:.6g}: the Tr(Sigma G) estimator of this "
                "non-conserving approximation fails here")
        if truncated[i]:
            warn_untrusted(info.setdefault("warnings", []), truncated[i], stacklevel=5)
            converged = False
        results.append(SolverResult(
            solver="ipt", beta=float(beta[i]), g_iw=sol.g_iw[i], sigma_iw=sol.sigma_iw[i],
            g_l=g_l[i], density=2.0 * n, double_occupancy=d, energy=None, converged=converged,
            iterations=int(sol.iterations[i]), g_tau=None if g_tau is None else g_tau[i],
            tau=None if tau is None else tau[i], info=info))
    return results


# ---------------------------------------------------------------------------------- solver
def solve_ipt(model: AndersonModel, *, n_iw: int = 1024, n_l: int = 80, tol: float = 1e-10,
              max_iter: int = 50, mixing: float = 0.5, fft_tau_points: int | None = None,
              density_guess: float | None = None, n_tau: int | None = None) -> SolverResult:
    """Second-order (half filling) or Kajueter-Kotliar interpolating (any filling) IPT.

    Equations, exact limits and failure modes are in the module docstring. Energies in units
    of ``D``; every array is per spin. The same computation as :func:`solve_ipt_many` for a
    batch of one.

    Args:
        model: Anderson model with a discrete bath or ``delta_iw`` (at least ``n_iw`` values).
        n_iw: Matsubara frequencies of ``g_iw``/``sigma_iw`` and of the internal transforms
            (``>= 16``); ``w_N = (2 n_iw - 1) pi/beta`` should lie far above every energy scale
            (see "Numerical limits" in the module docstring).
        n_l: Legendre coefficients of ``g_l``.
        tol: off half filling, the iteration stops when ``|n_s[G(n)] - n| <= tol`` (per spin).
        max_iter: limit on evaluations of the self-consistency residual; reaching it returns the
            last iterate with ``converged=False``.
        mixing: damping of the first fixed-point step ``n -> n + mixing (n_s[G(n)] - n)``; later
            steps are bracketed inverse quadratic interpolation or secant steps.
        fft_tau_points: uniform ``tau`` mesh (both ends included) on which ``Sigma2(tau)`` is
            built; default ``2^k + 1 >= max(1025, 40 beta + 1)``, i.e. a step ``<= 1/40``
            (error of ``G(i w_n)`` about ``2e-10`` at ``beta = 50``, falling like ``step^4``).
        density_guess: starting total density off half filling; default: the alloy-analogy
            (Hubbard-I like) value ``2 n`` with ``n = a/(1 - b + a)``, ``a`` (``b``) the
            non-interacting densities per spin at level ``eps_d`` (``eps_d + U``).
        n_tau: if given, also return ``g_tau`` on a uniform mesh of ``n_tau`` points.

    Returns:
        :class:`SolverResult` with ``g_iw``, ``sigma_iw``, ``g_l``, ``density`` (both spins),
        ``double_occupancy`` (``Tr Sigma G`` estimator, approximate), ``energy=None``; ``info``
        holds the ``method`` (``"half-filling"``, ``"modified"`` or ``"non-interacting"``),
        ``eps0``, ``n0``, ``A``, ``B``, ``residual``, the ``history`` of ``(n, residual)``, the
        ``tail_moments`` ``(c1, c2, c3, c4)`` of ``G`` used for ``g_l`` and, if not converged,
        ``warnings``.

    Example:
        >>> from solvers import AndersonModel, solve
        >>> m = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[-0.5, 0.5], bath_v=[0.5, 0.5])
        >>> r = solve("ipt", m)
        >>> r.density, r.converged, bool(r.g_iw.real.any())
        (1.0, True, False)
    """
    opts = IPTOptions(n_iw=n_iw, n_l=n_l, tol=tol, max_iter=max_iter, mixing=mixing,
                      fft_tau_points=fft_tau_points, density_guess=density_guess, n_tau=n_tau)
    return _solve_ipt_many([model], opts)[0]


def solve_ipt_many(models: Sequence[AndersonModel], *, n_iw: int = 1024, n_l: int = 80,
                   tol: float = 1e-10, max_iter: int = 50, mixing: float = 0.5,
                   fft_tau_points: int | None = None, density_guess: float | None = None,
                   n_tau: int | None = None) -> list[SolverResult]:
    """:func:`solve_ipt` of every model, as array operations over the batch.

    Options as in :func:`solve_ipt`, shared by all models; ``beta``, ``U``, ``eps_d`` and the
    bath (discrete of any size, or ``delta_iw``) differ freely. Rows are grouped by bath kind
    and by the size of their ``tau`` mesh; within a group every step (FFTs, spline solves, tail
    fits, the search of ``eps0`` and the iteration of ``n_s``) runs over all rows at
    once, each row with its own iterates and stopping rule, so each result equals the
    one-model :func:`solve_ipt` up to rounding. Every model and the options are checked before
    any work (``ValueError`` naming the model's index).

    Example:
        >>> from solvers import AndersonModel
        >>> ms = [AndersonModel(U=2.0, eps_d=e, beta=20.0, bath_eps=[-0.5, 0.5],
        ...                     bath_v=[0.5, 0.5]) for e in (-1.0, -0.6)]
        >>> [round(r.density, 6) for r in solve_ipt_many(ms)]
        [1.0, 0.845035]
    """
    opts = IPTOptions(n_iw=n_iw, n_l=n_l, tol=tol, max_iter=max_iter, mixing=mixing,
                      fft_tau_points=fft_tau_points, density_guess=density_guess, n_tau=n_tau)
    return _solve_ipt_many(models, opts)


def _solve_ipt_many(models: Sequence[AndersonModel], opts: IPTOptions) -> list[SolverResult]:
    """:func:`solve_ipt_many` with built options."""
    models = checked_models(models)
    n_iw, n_l, tol, max_iter = opts.n_iw, opts.n_l, opts.tol, opts.max_iter
    mixing, fft_tau_points, density_guess, n_tau = (opts.mixing, opts.fft_tau_points,
                                                    opts.density_guess, opts.n_tau)
    batches = group_by_bath(models, n_iw)
    for idx, b in batches:
        for i, beta, energy in zip(idx.tolist(), b.beta.tolist(), b.energy_scale().tolist()):
            _check_meshes(beta, energy, n_iw, fft_tau_points, index_prefix(i, len(models)))
    results: list[SolverResult | None] = [None] * len(models)
    for idx, b in batches:
        n_fft = (np.full(len(b), int(fft_tau_points)) if fft_tau_points is not None
                 else np.array([_default_fft_points(beta) for beta in b.beta.tolist()]))
        zero = b.U == 0.0
        ph = ~zero & b.particle_hole_symmetric()
        for size in np.unique(n_fft).tolist():
            same = n_fft == size
            base = [{"fft_tau_points": int(size), "delta_moments": tuple(map(float, mom))}
                    for mom in b.moments]
            for rows, solve_rows in (
                    (np.flatnonzero(same & zero), lambda g: _non_interacting(g)),
                    (np.flatnonzero(same & ph), lambda g: _half_filling(g, size)),
                    (np.flatnonzero(same & ~zero & ~ph),
                     lambda g: _modified(g, size, tol, max_iter, mixing, density_guess))):
                if rows.size == 0:
                    continue
                group = b.take(rows)
                out = _results(group, solve_rows(group), n_l, n_tau, [base[r] for r in rows])
                for r, res in zip(rows.tolist(), out):
                    results[int(idx[r])] = res
    return results


register_solver("ipt", solve_ipt, options=IPTOptions, batch=solve_ipt_many,
                built=_solve_ipt_many)
