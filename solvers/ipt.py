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
tolerance. ``n_s`` is found by a safeguarded secant iteration on ``h(n) = n_s[G(n)] - n``: a
first damped step ``n + mixing h``, then secant steps kept inside the bracket ``h(lo) > 0 > h(hi)``
(bisection otherwise), until ``|h| <= tol`` or ``max_iter`` evaluations of ``h``; ``converged``
says which. At particle-hole symmetry the scheme reduces to the half-filling formula (``A = 1``,
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

Numerics: FFTs only, no Python loop over frequencies. ``g_l`` is
:func:`solvers.legendre.g_l_from_iw` (exact Legendre kernel of the Matsubara frequencies) with the
tail ``(1, c2, c3, c4)``, ``c4`` fitted (:func:`solvers.tails.estimate_tail`); the moments ``M_k``
of ``Delta`` are :func:`solvers.tails.hybridisation_moments`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import optimize

from ._checks import check_fraction, check_int, check_positive
from .ed.fock import single_particle_matrix
from .fourier import iw_to_tau, tau_to_iw
from .greens import fermi
from .legendre import check_legendre_truncation, g_l_from_iw
from .mesh import matsubara_freqs, tau_mesh
from .model import AndersonModel
from .registry import register_solver
from .result import SolverResult, warn_untrusted
from .tails import density_from_g_iw, estimate_tail, hybridisation_moments, matsubara_sum

__all__ = ["solve_ipt", "free_density"]

_MIN_FFT_POINTS = 1024
_TAU_STEPS_PER_BETA = 40  # tau step h <= 1/40 (1/D): |G error| ~ 2e-10 at beta=50, falls like h^4


# ---------------------------------------------------------------------------------- helpers
def free_density(model: AndersonModel, level: float, delta_iw: np.ndarray,
                 moments: np.ndarray) -> float:
    """Density per spin of ``1 / (i w_n - level - Delta(i w_n))``.

    Discrete bath: exact, ``sum_j |U_0j|^2 f(lambda_j)`` from the eigenvectors of the one-body
    matrix ``[[level, V], [V, diag(eps_k)]]``. Continuous bath:
    :func:`solvers.tails.density_from_g_iw` with the known moments ``(1, level,
    level^2 + M1, level^3 + 2 level M1 + M2)`` (``M_k`` of ``Delta``).

    Example:
        >>> m = AndersonModel(U=1.0, eps_d=0.0, beta=10.0, bath_eps=[0.0], bath_v=[0.5])
        >>> round(free_density(m, 0.0, m.delta(64), hybridisation_moments(m)), 12)
        0.5
    """
    if model.is_discrete:
        lam, vec = np.linalg.eigh(single_particle_matrix(level, model.bath_eps, model.bath_v))
        return float(vec[0] ** 2 @ fermi(lam, model.beta))
    m1, m2, _ = moments
    wn = matsubara_freqs(model.beta, delta_iw.size)
    g_iw = 1.0 / (1j * wn - level - delta_iw)
    tail = (1.0, level, level ** 2 + m1, level ** 3 + 2 * level * m1 + m2)
    return density_from_g_iw(g_iw, model.beta, tail)


# ---------------------------------------------------------------------------------- pieces
_MAX_FFT_POINTS = 2 ** 21 + 1  # default tau mesh limit: beta <= 52428 (~10 s per solve)
_MIN_REACH = 4.0               # w_N must exceed this many times the model's energy scale


def _default_fft_points(beta: float) -> int:
    m = max(_MIN_FFT_POINTS, _TAU_STEPS_PER_BETA * beta)
    return 2 ** int(math.ceil(math.log2(m))) + 1


def _check_meshes(model: AndersonModel, n_iw: int, fft_tau_points: int | None) -> None:
    """Refuse, before any work, Matsubara meshes that stop below the model's energies and
    default ``tau`` meshes too large to build (one line each)."""
    beta = model.beta
    energy = model.energy_scale()
    w_last = (2 * n_iw - 1) * math.pi / beta
    if w_last < _MIN_REACH * energy:
        need = math.ceil((_MIN_REACH * energy * beta / math.pi + 1) / 2)
        raise ValueError(
            f"IPT: n_iw={n_iw} Matsubara frequencies reach only w_N={w_last:.3g} at beta={beta:g}, "
            f"below {_MIN_REACH:g} x the model's energy scale E={energy:.3g} (the high-frequency "
            f"tails would be wrong); use n_iw >= {need}")
    if fft_tau_points is None and _default_fft_points(beta) > _MAX_FFT_POINTS:
        raise ValueError(
            f"IPT: beta={beta:g} needs a tau mesh of {_default_fft_points(beta)} points (step "
            f"1/{_TAU_STEPS_PER_BETA}) for its FFTs, above the limit {_MAX_FFT_POINTS} "
            f"(beta <= {(_MAX_FFT_POINTS - 1) / _TAU_STEPS_PER_BETA:g}); pass fft_tau_points to "
            "accept the cost or a coarser step")


def _check_options(model: AndersonModel, n_iw: int, n_l: int, tol: float, max_iter: int,
                   mixing: float, fft_tau_points: int | None, n_tau: int | None,
                   density_guess: float | None) -> None:
    if not isinstance(model, AndersonModel):
        raise TypeError(f"model must be an AndersonModel, got {type(model).__name__}")
    check_int("n_iw", n_iw, 16)
    check_int("n_l", n_l, 1)
    check_int("max_iter", max_iter, 1)
    check_positive("tol", tol)
    check_fraction("mixing", mixing)
    if fft_tau_points is not None:
        check_int("fft_tau_points", fft_tau_points, 65)
    if n_tau is not None:
        check_int("n_tau", n_tau, 2)
    if density_guess is not None and not (isinstance(density_guess, (int, float))
                                          and 0 < density_guess < 2):
        raise ValueError(f"density_guess (both spins) must lie in (0, 2), got {density_guess!r}")


def _bubble_iw(g0_iw: np.ndarray, beta: float, tail: tuple[float, float, float],
               n_fft: int, symmetric: bool) -> np.ndarray:
    """``P(i w_n)``, the transform of ``P(tau) = G0(tau)^2 G0(beta - tau)`` (``Sigma2 = U^2 P``)."""
    g0_tau = iw_to_tau(g0_iw, beta, n_fft, tail=tail)
    if symmetric:
        g0_tau = 0.5 * (g0_tau + g0_tau[::-1])
        p_tau = g0_tau ** 3
    else:
        p_tau = g0_tau ** 2 * g0_tau[::-1]
    return tau_to_iw(p_tau, beta, g0_iw.size)


def _level_for_density(n_target: float, density: Callable[[float], float], start: float,
                       xtol: float) -> float:
    """The level ``eps0`` with ``density(eps0) = n_target`` (``density`` decreases with eps0)."""
    width = 1.0
    lo, hi = start - width, start + width
    for _ in range(80):
        if density(lo) >= n_target:
            break
        lo -= width
        width *= 2
    for _ in range(80):
        if density(hi) <= n_target:
            break
        hi += width
        width *= 2
    return optimize.brentq(lambda e: density(e) - n_target, lo, hi, xtol=xtol, rtol=1e-15,
                           maxiter=200)


def _result(model: AndersonModel, g_iw: np.ndarray, sigma_iw: np.ndarray, n_s: float,
            sigma_inf: float, s1: float, c2: float, c3: float, n_l: int, n_tau: int | None,
            converged: bool, iterations: int, info: dict) -> SolverResult:
    beta, U = model.beta, model.U
    c4 = estimate_tail(g_iw, beta, (1.0, c2, c3), n_moments=4)[3]
    g_l = g_l_from_iw(g_iw, beta, n_l, (1.0, c2, c3, c4))
    if U > 0:
        corr = matsubara_sum((sigma_iw - sigma_inf) * g_iw, beta, (0.0, s1), n_moments=6)
        double_occupancy = n_s * sigma_inf / U + corr / U
    else:
        double_occupancy = n_s ** 2
    tau = g_tau = None
    if n_tau is not None:
        tau = tau_mesh(beta, int(n_tau))
        g_tau = iw_to_tau(g_iw, beta, int(n_tau), tail=(1.0, c2, c3, c4))
    info.update(tail_moments=(1.0, float(c2), float(c3), c4))
    if not max(0.0, 2 * n_s - 1) - 1e-9 <= double_occupancy <= n_s + 1e-9:
        info.setdefault("warnings", []).append(
            f"double_occupancy={double_occupancy:.3g} lies outside the physical bounds "
            f"[max(0, n - 1), n/2] for n={2 * n_s:.6g}: the Tr(Sigma G) estimator of this "
            "non-conserving approximation fails here")
    truncated = check_legendre_truncation(g_l, beta, (n_s - 1.0, -n_s))
    if truncated:
        warn_untrusted(info.setdefault("warnings", []), truncated)
        converged = False
    return SolverResult(solver="ipt", beta=beta, g_iw=g_iw, sigma_iw=sigma_iw, g_l=g_l,
                        density=2.0 * float(n_s), double_occupancy=float(double_occupancy),
                        energy=None, converged=bool(converged), iterations=int(iterations),
                        g_tau=g_tau, tau=tau, info=info)


# ---------------------------------------------------------------------------------- solver
@register_solver("ipt")
def solve_ipt(model: AndersonModel, *, n_iw: int = 1024, n_l: int = 80, tol: float = 1e-10,
              max_iter: int = 50, mixing: float = 0.5, fft_tau_points: int | None = None,
              density_guess: float | None = None, n_tau: int | None = None) -> SolverResult:
    """Second-order (half filling) or Kajueter-Kotliar interpolating (any filling) IPT.

    Equations, exact limits and failure modes are in the module docstring. Energies in units
    of ``D``; every array is per spin.

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
            steps are bracketed secant steps.
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
    _check_options(model, n_iw, n_l, tol, max_iter, mixing, fft_tau_points, n_tau, density_guess)
    _check_meshes(model, n_iw, fft_tau_points)
    beta, U, eps_d = model.beta, model.U, model.eps_d
    n_fft = int(fft_tau_points) if fft_tau_points is not None else _default_fft_points(beta)
    wn = matsubara_freqs(beta, n_iw)
    iw = 1j * wn
    delta_iw = model.delta(n_iw)
    m1, m2, m3 = hybridisation_moments(model, delta_iw)
    base_info = {"fft_tau_points": n_fft, "delta_moments": (float(m1), float(m2), float(m3))}

    if U == 0.0:
        g_iw = 1.0 / (iw - eps_d - delta_iw)
        n_s = free_density(model, eps_d, delta_iw, (m1, m2, m3))
        info = dict(base_info, method="non-interacting", residual=0.0, history=[])
        return _result(model, g_iw, np.zeros(n_iw, dtype=complex), n_s, 0.0, 0.0, eps_d,
                       eps_d ** 2 + m1, n_l, n_tau, True, 1, info)

    if model.is_particle_hole_symmetric():
        delta_iw = 1j * delta_iw.imag
        g0_iw = 1j * (1.0 / (iw - delta_iw)).imag
        p_iw = _bubble_iw(g0_iw, beta, (1.0, 0.0, m1), n_fft, symmetric=True)
        sigma2_iw = 1j * (U * U * p_iw.imag)
        g_iw = 1j * (1.0 / (iw - delta_iw - sigma2_iw)).imag
        info = dict(base_info, method="half-filling", eps0=0.0, n0=0.5, A=1.0, B=0.0,
                    residual=0.0, history=[])
        return _result(model, g_iw, U / 2 + sigma2_iw, 0.5, U / 2, U * U / 4, 0.0,
                       m1 + U * U / 4, n_l, n_tau, True, 1, info)

    # ---- modified IPT: self-consistency in n_s ------------------------------------------
    def n_free(level: float) -> float:
        return free_density(model, level, delta_iw, (m1, m2, m3))

    xtol = min(1e-13, tol * 1e-3)
    state = {"eps0": eps_d + U / 2}

    def bubble(n_s: float) -> dict:
        """Auxiliary level, its density and ``Sigma2`` for a given ``n_s`` (the FFT part)."""
        eps0 = _level_for_density(n_s, n_free, state["eps0"], xtol)
        state["eps0"] = eps0
        n0 = n_free(eps0)
        g0_iw = 1.0 / (iw - eps0 - delta_iw)
        p_iw = _bubble_iw(g0_iw, beta, (1.0, eps0, eps0 ** 2 + m1), n_fft, symmetric=False)
        return dict(eps0=eps0, n0=n0, sigma2_iw=U * U * p_iw)

    def close(n_s: float, bub: dict) -> dict:
        """``Sigma``, ``G`` and the density of ``G`` for ``n_s`` and a given ``Sigma2``."""
        q0 = bub["n0"] * (1.0 - bub["n0"])
        a = n_s * (1.0 - n_s) / q0 if q0 > 0 else 1.0
        b = (eps_d + U * (1.0 - n_s) - bub["eps0"]) / (U * U * q0) if q0 > 0 else 0.0
        sigma2_iw = bub["sigma2_iw"]
        sigma_iw = U * n_s + a * sigma2_iw / (1.0 - b * sigma2_iw)
        g_iw = 1.0 / (iw - eps_d - delta_iw - sigma_iw)
        c2 = eps_d + U * n_s
        c3 = c2 ** 2 + m1 + U * U * n_s * (1.0 - n_s)
        n_new = density_from_g_iw(g_iw, beta, (1.0, c2, c3), n_moments=6)
        return dict(bub, n=n_s, n_new=n_new, A=a, B=b, g_iw=g_iw, sigma_iw=sigma_iw, c2=c2,
                    c3=c3)

    if density_guess is None:
        a0, b0 = n_free(eps_d), n_free(eps_d + U)
        n_cur = a0 / (1.0 - b0 + a0)
    else:
        n_cur = density_guess / 2.0
    n_cur = min(max(n_cur, 1e-12), 1.0 - 1e-12)
    lo, hi = 0.0, 1.0  # bracket of the root of h(n) = n_s[G(n)] - n: h(lo) > 0 > h(hi)
    history: list[tuple[float, float]] = []
    prev: tuple[float, float] | None = None
    converged = False
    out: dict = {}
    for it in range(1, max_iter + 1):
        out = close(n_cur, bubble(n_cur))
        h = out["n_new"] - n_cur
        history.append((float(n_cur), float(h)))
        if abs(h) <= tol:
            converged = True
            break
        if h > 0:
            lo = max(lo, n_cur)
        else:
            hi = min(hi, n_cur)
        if prev is None or h == prev[1]:
            n_next = n_cur + mixing * h
        else:
            n_next = n_cur - h * (n_cur - prev[0]) / (h - prev[1])
        if not lo < n_next < hi:
            n_next = 0.5 * (lo + hi)
        prev = (n_cur, h)
        n_cur = n_next
    info = dict(base_info, method="modified", eps0=float(out["eps0"]), n0=float(out["n0"]),
                A=float(out["A"]), B=float(out["B"]), residual=float(history[-1][1]),
                history=history)
    if not converged:
        info["warnings"] = [f"max_iter={max_iter} reached with |n_s[G(n)] - n| = "
                            f"{abs(history[-1][1]):.3g} > tol={tol:g}"]
    # the returned G belongs to the last input n; its own density is reported
    return _result(model, out["g_iw"], out["sigma_iw"], out["n_new"], U * out["n"],
                   U * U * out["n"] * (1.0 - out["n"]), out["c2"], out["c3"], n_l, n_tau,
                   converged, it, info)
