"""Hubbard-I approximation: the atomic self-energy dressed by the bath.

Equations (per spin, energies in units of ``D``). The isolated atom with occupation ``n_s`` of the
other spin has::

    G_at(i w_n)     = (1 - n_s)/(i w_n - eps_d) + n_s/(i w_n - eps_d - U)
    Sigma_at(i w_n) = i w_n - eps_d - 1/G_at(i w_n)
                    = U n_s + U^2 n_s (1 - n_s) / (i w_n - eps_d - U (1 - n_s))

and Hubbard-I keeps this self-energy in the presence of the bath::

    G(i w_n) = 1 / (i w_n - eps_d - Delta(i w_n) - Sigma_at(i w_n))

Choice of ``n_s``: the density per spin of this ``G`` itself, ``n_s = -G(beta-)``, solved as the
root of ``h(n) = n_s[G(n)] - n`` on ``[0, 1]`` with Brent's bracketing method (``h(0) >= 0 >= h(1)``
always, so a root exists; ``tol`` is the tolerance on ``n_s``, ``max_iter`` Brent's iteration
limit). At particle-hole symmetry ``n_s = 1/2`` by symmetry and no root is searched. (The
alternative, ``n_s`` of the isolated atom, ignores the bath; using ``G`` makes the occupation
consistent with the returned Green's function.)

Discrete bath: ``Sigma_at`` is the hybridisation of one extra level, so ``G`` is the impurity
element of the resolvent of the one-body matrix (size ``Nb + 2``)::

    [[eps_d + U n_s, V_1 .. V_Nb, t], [V_k, diag(eps_k), 0], [t, 0, eps_d + U (1 - n_s)]],
    t = U sqrt(n_s (1 - n_s))

Its eigenpairs ``(lambda_j, u_j)`` give ``G`` as an exact pole sum (weights ``u_0j^2``), hence
exact ``g_iw``, ``g_l`` (:func:`solvers.legendre.g_l_from_poles`) and ``n_s = sum_j u_0j^2
f(lambda_j)``. Continuous bath: ``G`` on the mesh, ``n_s`` and ``g_l`` from Matsubara sums with the
known tail ``G = 1/(i w) + a0/(i w)^2 + (a0^2 + a1)/(i w)^3 + (a0^3 + 2 a0 a1 + a2)/(i w)^4``,
``a0 = eps_d + U n_s``, ``a1 = M1 + S1``, ``a2 = M2 + S1 (eps_d + U (1 - n_s))``,
``S1 = U^2 n_s (1 - n_s)``, ``M_k`` the moments of ``Delta`` (fitted,
:func:`solvers.tails.hybridisation_moments`); sums by :func:`solvers.tails.matsubara_sum`, ``g_l``
by :func:`solvers.legendre.g_l_from_iw`.

Double occupancy: defined by the equation-of-motion (``Tr Sigma G``) estimator::

    U <n_up n_dn> = (1/beta) sum_{n in Z} Sigma(i w_n) G(i w_n) e^{i w_n 0+}
                  = U n_s n_G + t <d+ a>,    <d+ a> = sum_j u_aj u_0j f(lambda_j)

(``a`` the extra level, ``n_G`` the density of ``G``; Matsubara sum with analytic tails for a
continuous bath). It is exact in the atomic limit, ``n_s^2`` at ``U = 0``, otherwise only as good
as Hubbard-I itself (it can be far off, e.g. it misses the Kondo-screened local moment, and at
strong coupling off half filling it can even leave the physical range ``[max(0, n - 1), n/2]``,
which ``info["warnings"]`` then reports). It obeys the particle-hole map ``d -> 1 - n + d``.
``energy`` is not computed (``None``).

Exact limits: ``U = 0`` (non-interacting ``G``); the atomic limit ``V = 0`` / ``Delta = 0``
(``G = G_at`` with the exact thermal atomic occupation
``n_s = (e^{-beta eps_d} + e^{-beta (2 eps_d + U)}) / Z``: the fixed point of
``n = (1 - n) f(eps_d) + n f(eps_d + U)``); the high-frequency moments of ``Sigma`` up to
``1/(i w_n)`` (``U n_s`` and ``U^2 n_s (1 - n_s)``).

Known failure modes: no quasiparticle (Kondo) peak, no Fermi-liquid behaviour, ``Z`` comes out
tiny; at half filling the spectrum is gapped (insulating) for every ``U > 0`` (the atomic
``Sigma_at = U/2 + U^2/(4 i w_n)`` diverges at ``w -> 0``), so metals at small ``U`` are described
qualitatively wrongly; Hubbard bands have the bare hybridisation width; the fixed point in ``n_s``
need not be unique away from half filling (the bracketing root finder returns one of them).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import optimize

from ._checks import check_int, check_positive
from .ed.fock import single_particle_matrix
from .fourier import iw_to_tau
from .greens import fermi, poles_g_iw, poles_g_tau
from .legendre import check_legendre_truncation, g_l_from_iw, g_l_from_poles
from .mesh import matsubara_freqs, tau_mesh
from .model import AndersonModel
from .registry import register_solver
from .result import SolverResult, warn_untrusted
from .tails import density_from_g_iw, hybridisation_moments, matsubara_sum

__all__ = ["solve_hubbard_i", "atomic_sigma_iw"]


def atomic_sigma_iw(wn: np.ndarray, eps_d: float, U: float, n_s: float) -> np.ndarray:
    """Atomic self-energy ``U n_s + U^2 n_s (1 - n_s) / (i w_n - eps_d - U (1 - n_s))``.

    Args:
        wn: Matsubara frequencies ``w_n`` (units of D).
        eps_d: impurity level; U: interaction; n_s: occupation per spin (of the other spin).

    Example:
        >>> import numpy as np
        >>> atomic_sigma_iw(np.array([1.0]), -1.0, 2.0, 0.5)   # U/2 + U^2/(4 i w)
        array([1.-1.j])
    """
    wn = np.asarray(wn, dtype=float)
    return U * n_s + U * U * n_s * (1.0 - n_s) / (1j * wn - eps_d - U * (1.0 - n_s))


def _check_options(n_iw: int, n_l: int, tol: float, max_iter: int, n_tau: int | None) -> None:
    for name, value in (("n_iw", n_iw), ("n_l", n_l), ("max_iter", max_iter)):
        check_int(name, value, 1)
    check_positive("tol", tol)
    if n_tau is not None:
        check_int("n_tau", n_tau, 2)


class _DiscreteHubbardI:
    """Pole representation of the Hubbard-I ``G`` for a discrete bath."""

    def __init__(self, model: AndersonModel) -> None:
        self.model = model
        nb = model.n_bath
        self.h = np.zeros((nb + 2, nb + 2))
        self.h[:nb + 1, :nb + 1] = single_particle_matrix(0.0, model.bath_eps, model.bath_v)

    def eigen(self, n_s: float) -> tuple[np.ndarray, np.ndarray]:
        m, U = self.model, self.model.U
        h = self.h
        h[0, 0] = m.eps_d + U * n_s
        h[-1, -1] = m.eps_d + U * (1.0 - n_s)
        h[0, -1] = h[-1, 0] = U * math.sqrt(max(n_s * (1.0 - n_s), 0.0))
        return np.linalg.eigh(h)

    def density(self, n_s: float) -> float:
        lam, vec = self.eigen(n_s)
        return float(vec[0] ** 2 @ fermi(lam, self.model.beta))


def _find_density(h: Callable[[float], float], tol: float, max_iter: int,
                  symmetric: bool) -> tuple[float, bool, int]:
    """Root of ``h`` on ``[0, 1]`` (``h(0) >= 0 >= h(1)``) by Brent's method; ``1/2`` exactly
    at particle-hole symmetry."""
    if symmetric:
        return 0.5, True, 1
    h0, h1 = h(0.0), h(1.0)
    if h0 <= 0.0:
        return 0.0, True, 1
    if h1 >= 0.0:
        return 1.0, True, 1
    root, res = optimize.brentq(h, 0.0, 1.0, xtol=tol, rtol=4 * np.finfo(float).eps,
                                maxiter=max_iter, full_output=True, disp=False)
    return float(root), bool(res.converged), int(res.iterations)


@register_solver("hubbard_i")
def solve_hubbard_i(model: AndersonModel, *, n_iw: int = 1024, n_l: int = 80,
                    tol: float = 1e-13, max_iter: int = 100,
                    n_tau: int | None = None) -> SolverResult:
    """Hubbard-I: the atomic self-energy with a self-consistent occupation.

    Equations, the choice of ``n_s``, exact limits and failure modes are in the module docstring.

    Args:
        model: Anderson model with a discrete bath (exact pole sums) or ``delta_iw`` (at least
            ``n_iw`` values; Matsubara sums with analytic tails).
        n_iw: Matsubara frequencies of ``g_iw``/``sigma_iw``.
        n_l: Legendre coefficients of ``g_l``.
        tol: absolute tolerance on ``n_s`` of Brent's root search.
        max_iter: iteration limit of Brent's method; reaching it returns the last iterate with
            ``converged=False``.
        n_tau: if given, also return ``g_tau`` on a uniform mesh of ``n_tau`` points.

    Returns:
        :class:`SolverResult` with ``g_iw``, ``sigma_iw`` (``Sigma_at``), ``g_l``, ``density`` (both
        spins, of the returned ``G``), ``double_occupancy`` (``Tr Sigma G`` estimator),
        ``energy=None``; ``info`` holds ``n_s`` (the occupation inside ``Sigma_at``) and the
        ``residual`` ``n_s[G] - n_s``.

    Example:
        >>> from solvers import AndersonModel, solve
        >>> m = AndersonModel(U=2.0, eps_d=-0.5, beta=10.0, bath_eps=[], bath_v=[])
        >>> r = solve("hubbard_i", m)       # atomic limit: exact
        >>> round(r.density, 10), r.converged
        (0.9966424913, True)
    """
    if not isinstance(model, AndersonModel):
        raise TypeError(f"model must be an AndersonModel, got {type(model).__name__}")
    _check_options(n_iw, n_l, tol, max_iter, n_tau)
    beta, U, eps_d = model.beta, model.U, model.eps_d
    wn = matsubara_freqs(beta, n_iw)
    ph = model.is_particle_hole_symmetric()
    tau = g_tau = None

    if model.is_discrete:
        hub = _DiscreteHubbardI(model)
        n_s, converged, iterations = _find_density(lambda n: hub.density(n) - n, tol, max_iter,
                                                   ph)
        lam, vec = hub.eigen(n_s)
        weights = vec[0] ** 2
        occ = fermi(lam, beta)
        n_g = float(weights @ occ)
        g_iw = poles_g_iw(weights, lam, wn)
        g_l = g_l_from_poles(weights, lam, beta, n_l)
        hop = U * math.sqrt(n_s * (1.0 - n_s))
        mixed = float((vec[-1] * vec[0]) @ occ)  # <d+ a>
        double_occupancy = n_s * n_g + hop * mixed / U if U > 0 else n_g ** 2
        if n_tau is not None:
            tau = tau_mesh(beta, int(n_tau))
            g_tau = poles_g_tau(weights, lam, beta, tau)
        info = {"n_poles": int(lam.size)}
    else:
        delta_iw = model.delta(n_iw)
        m1, m2, _ = hybridisation_moments(model, delta_iw)
        iw = 1j * wn

        def build(n: float) -> tuple[np.ndarray, tuple[float, float, float, float], float, float]:
            s1 = U * U * n * (1.0 - n)
            eps1 = eps_d + U * (1.0 - n)
            a0, a1, a2 = eps_d + U * n, m1 + s1, m2 + s1 * eps1
            g = 1.0 / (iw - eps_d - delta_iw - atomic_sigma_iw(wn, eps_d, U, n))
            return g, (1.0, a0, a0 * a0 + a1, a0 ** 3 + 2 * a0 * a1 + a2), s1, eps1

        def density(n: float) -> float:
            g, tail, _, _ = build(n)
            return density_from_g_iw(g, beta, tail)

        n_s, converged, iterations = _find_density(lambda n: density(n) - n, tol, max_iter, ph)
        g_iw, tail, s1, eps1 = build(n_s)
        _, c2, c3, _ = tail
        if ph:
            g_iw = 1j * g_iw.imag
        n_g = density_from_g_iw(g_iw, beta, tail)
        g_l = g_l_from_iw(g_iw, beta, n_l, tail)
        if U > 0:
            # (Sigma_at - U n_s) G = s1/(i w - eps1) G: moments (0, s1, s1 (eps1 + c2), ...)
            sigma_dyn = atomic_sigma_iw(wn, eps_d, U, n_s) - U * n_s
            corr = matsubara_sum(sigma_dyn * g_iw, beta, (0.0, s1, s1 * (eps1 + c2),
                                                          s1 * (eps1 ** 2 + eps1 * c2 + c3)))
            double_occupancy = n_s * n_g + corr / U
        else:
            double_occupancy = n_g ** 2
        if n_tau is not None:
            tau = tau_mesh(beta, int(n_tau))
            g_tau = iw_to_tau(g_iw, beta, int(n_tau), tail=tail)
        info = {"delta_moments": (float(m1), float(m2))}

    sigma_iw = atomic_sigma_iw(wn, eps_d, U, n_s)
    info.update(n_s=float(n_s), residual=float(n_g - n_s), particle_hole_symmetric=ph)
    if ph:  # exact symmetry: n_s = 1/2, G and Sigma - U/2 purely imaginary, odd G_l zero
        g_iw = 1j * g_iw.imag
        sigma_iw = U / 2 + 1j * sigma_iw.imag
        g_l = np.where(np.arange(g_l.size) % 2 == 1, 0.0, g_l)
        n_g = 0.5
    warnings = []
    if not converged:
        warnings.append(f"max_iter={max_iter} reached before |n_s - n_s*| <= tol={tol:g}")
    if not max(0.0, 2 * n_g - 1) - 1e-9 <= double_occupancy <= n_g + 1e-9:
        warnings.append(f"double_occupancy={double_occupancy:.3g} lies outside the physical "
                        f"bounds [max(0, n - 1), n/2] for n={2 * n_g:.6g}: the Tr(Sigma G) "
                        "estimator fails for Hubbard-I here")
    truncated = check_legendre_truncation(g_l, beta, (n_g - 1.0, -n_g))
    if truncated:
        warn_untrusted(warnings, truncated)
        converged = False
    if warnings:
        info["warnings"] = warnings
    return SolverResult(solver="hubbard_i", beta=beta, g_iw=g_iw, sigma_iw=sigma_iw, g_l=g_l,
                        density=2.0 * n_g, double_occupancy=float(double_occupancy),
                        energy=None, converged=converged, iterations=iterations, g_tau=g_tau,
                        tau=tau, info=info)
