"""Hubbard-I approximation: the atomic self-energy dressed by the bath.

Equations (per spin, energies in units of ``D``). The isolated atom with occupation ``n_s`` of the
other spin has::

    G_at(i w_n)     = (1 - n_s)/(i w_n - eps_d) + n_s/(i w_n - eps_d - U)
    Sigma_at(i w_n) = i w_n - eps_d - 1/G_at(i w_n)
                    = U n_s + U^2 n_s (1 - n_s) / (i w_n - eps_d - U (1 - n_s))

and Hubbard-I keeps this self-energy in the presence of the bath::

    G(i w_n) = 1 / (i w_n - eps_d - Delta(i w_n) - Sigma_at(i w_n))

Choice of ``n_s``: the density per spin of this ``G`` itself, ``n_s = -G(beta-)``, solved as the
root of ``h(n) = n_s[G(n)] - n`` on ``[0, 1]`` with a bracketing method (``h(0) >= 0 >= h(1)``
always, so a root exists; ``tol`` is the tolerance on ``n_s``, ``max_iter`` the limit on
evaluations of ``h``): for a discrete bath Chandrupatla's iteration of ``solvers._roots``
(Brent's stopping rule), for ``delta_iw`` safeguarded Newton steps in the bracket with the
analytic ``dh/dn`` (:func:`solvers._roots.newton_roots`), started at the fixed point
``n = a/(1 - b + a)`` of the line through ``h(0) = a`` and ``h(1) = b - 1`` (about four
Matsubara sums instead of six). At
particle-hole symmetry ``n_s = 1/2`` by symmetry and no root is searched. (The alternative, ``n_s``
of the isolated atom, ignores the bath; using ``G`` makes the occupation consistent with the
returned Green's function.)

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

Numerics: :func:`solve_hubbard_i_many` treats a batch of models as arrays (stacked
eigendecompositions, one vectorised root search over all rows, each row with its own iterates and
stopping rule; discrete baths padded with decoupled sites, discrete and continuous baths in
separate groups); :func:`solve_hubbard_i` is a batch of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._batch import (ModelBatch, _odd_square_remainder, checked_models, group_by_bath,
                     index_prefix)
from ._checks import check_int, check_positive
from ._roots import find_roots, newton_roots
from .fourier import iw_to_tau_many
from .greens import _fermi, dyson_g, g0_inverse_iw, poles_g_iw_many, poles_g_tau_many
from .legendre import (check_legendre_reach, check_legendre_truncation_many, g_l_from_iw_many,
                       g_l_from_poles_many)
from .model import AndersonModel
from .options import SolverOptions
from .registry import register_solver
from .result import SolverResult, warn_untrusted
from .tails import density_from_g_iw_many, matsubara_sum_many

__all__ = ["solve_hubbard_i", "solve_hubbard_i_many", "atomic_sigma_iw", "HubbardIOptions"]


def atomic_sigma_iw(wn: np.ndarray, eps_d: float | np.ndarray, U: float | np.ndarray,
                    n_s: float | np.ndarray) -> np.ndarray:
    """Atomic self-energy ``U n_s + U^2 n_s (1 - n_s) / (i w_n - eps_d - U (1 - n_s))``.

    Args:
        wn: Matsubara frequencies ``w_n`` (units of D).
        eps_d: impurity level; U: interaction; n_s: occupation per spin (of the other spin).
            Numbers, or arrays broadcast against ``wn`` (e.g. ``(B, 1)`` with ``wn`` ``(B, N)``).

    Example:
        >>> import numpy as np
        >>> atomic_sigma_iw(np.array([1.0]), -1.0, 2.0, 0.5)   # U/2 + U^2/(4 i w)
        array([1.-1.j])
    """
    wn = np.asarray(wn, dtype=float)
    return U * n_s + U * U * n_s * (1.0 - n_s) / (1j * wn - eps_d - U * (1.0 - n_s))


@dataclass(frozen=True)
class HubbardIOptions(SolverOptions):
    """Options of the ``hubbard_i`` solver (meanings in :func:`solve_hubbard_i`), checked on
    construction.

    Example:
        >>> HubbardIOptions(tol=-1.0)
        Traceback (most recent call last):
        ...
        ValueError: tol must be a finite number > 0, got -1.0
    """

    n_iw: int = 1024
    n_l: int = 80
    tol: float = 1e-13
    max_iter: int = 100
    n_tau: int | None = None

    def result_sizes(self) -> tuple[int, int]:
        return self.n_iw, self.n_l

    def check(self) -> None:
        for name in ("n_iw", "n_l", "max_iter"):
            check_int(name, getattr(self, name), 1)
        check_positive("tol", self.tol)
        if self.n_tau is not None:
            check_int("n_tau", self.n_tau, 2)


def _find_density(h, n_rows: int, ph: np.ndarray, tol: float, max_iter: int,
                  h_slope=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Root of ``h(n, rows)`` on ``[0, 1]`` for every row (``h(0) >= 0 >= h(1)``): ``1/2``
    exactly at particle-hole symmetry, an end where ``h`` has no sign change inside. Inside:
    Chandrupatla's iteration, or, given ``h_slope(n, rows) -> (h, dh/dn)``, safeguarded Newton
    steps in the bracket ``[0, 1]`` from the fixed point ``n = a/(1 - b + a)`` of the line
    through the ends (``a = n_G(0)``, ``b = n_G(1)``; exact in the atomic limit)."""
    n_s = np.full(n_rows, 0.5)
    converged = np.ones(n_rows, bool)
    iterations = np.ones(n_rows, int)
    rows = np.flatnonzero(~ph)
    if rows.size:
        ends = h(np.concatenate([np.zeros(rows.size), np.ones(rows.size)]),
                 np.concatenate([rows, rows]))
        h0, h1 = ends[:rows.size], ends[rows.size:]
        n_s[rows[h0 <= 0.0]] = 0.0
        n_s[rows[(h0 > 0.0) & (h1 >= 0.0)]] = 1.0
        inner = (h0 > 0.0) & (h1 < 0.0)
        sub = rows[inner]
        if sub.size and h_slope is None:
            root, _, ok, its = find_roots(lambda x, r: h(x, sub[r]), np.zeros(sub.size),
                                          np.ones(sub.size), h0[inner], h1[inner], xtol=tol,
                                          rtol=4 * np.finfo(float).eps, max_iter=max_iter)
            n_s[sub], converged[sub], iterations[sub] = root, ok, its
        elif sub.size:
            a, b = h0[inner], h1[inner] + 1.0
            root, _, ok, its = newton_roots(
                lambda x, r: h_slope(x, sub[r]), a / (1.0 - b + a), 1.0, xtol=tol,
                rtol=4 * np.finfo(float).eps, max_iter=max_iter,
                bracket=(np.zeros(sub.size), np.ones(sub.size)))
            n_s[sub], converged[sub], iterations[sub] = root, ok, its
    return n_s, converged, iterations


class _Poles:
    """The one-body matrix ``[[eps_d + U n_s, V, t], [V, diag(eps_k), 0], [t, 0, eps_d +
    U (1 - n_s)]]`` of every row of a discrete batch (module docstring)."""

    def __init__(self, b: ModelBatch) -> None:
        self.b = b
        n = b.one_body.shape[1] + 1
        self.h = np.zeros((len(b), n, n))
        self.h[:, :-1, :-1] = b.one_body

    def eigen(self, n_s: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = self.b
        U, eps_d = b.U[rows], b.eps_d[rows]
        h = self.h[rows]
        h[:, 0, 0] = eps_d + U * n_s
        h[:, -1, -1] = eps_d + U * (1.0 - n_s)
        hop = U * np.sqrt(np.maximum(n_s * (1.0 - n_s), 0.0))
        h[:, 0, -1] = h[:, -1, 0] = hop
        return np.linalg.eigh(h)

    def density(self, n_s: np.ndarray, rows: np.ndarray) -> np.ndarray:
        lam, vec = self.eigen(n_s, rows)
        return np.sum(vec[:, 0, :] ** 2 * _fermi(lam, self.b.beta[rows][:, None]), axis=1)


def _discrete(b: ModelBatch, ph: np.ndarray, tol: float, max_iter: int, n_l: int,
              n_tau: int | None) -> tuple:
    poles = _Poles(b)
    rows = np.arange(len(b))
    n_s, converged, iterations = _find_density(lambda n, r: poles.density(n, r) - n, len(b),
                                               ph, tol, max_iter)
    lam, vec = poles.eigen(n_s, rows)
    weights = vec[:, 0, :] ** 2
    occ = _fermi(lam, b.beta[:, None])
    n_g = np.sum(weights * occ, axis=1)
    g_iw = poles_g_iw_many(weights, lam, b.wn)
    g_l = g_l_from_poles_many(weights, lam, b.beta, n_l)
    hop = b.U * np.sqrt(n_s * (1.0 - n_s))
    mixed = np.sum(vec[:, -1, :] * vec[:, 0, :] * occ, axis=1)  # <d+ a>
    u_safe = np.where(b.U > 0, b.U, 1.0)
    double_occupancy = np.where(b.U > 0, n_s * n_g + hop * mixed / u_safe, n_g ** 2)
    tau = g_tau = None
    if n_tau is not None:
        tau = np.linspace(0.0, b.beta, int(n_tau), axis=-1)
        g_tau = poles_g_tau_many(weights, lam, b.beta, tau)
    infos = [{"n_poles": int(nb) + 2} for nb in b.n_bath.tolist()]
    return n_s, converged, iterations, g_iw, g_l, n_g, double_occupancy, tau, g_tau, infos


def _continuous_g(b: ModelBatch, n: np.ndarray, rows: np.ndarray) -> tuple:
    """``G`` of the given rows of a continuous batch for the occupations ``n``, its tail
    moments ``(1, a0, a0^2 + a1, a0^3 + 2 a0 a1 + a2)`` (module docstring), ``S1`` and the
    atomic level ``eps1 = eps_d + U (1 - n)``."""
    u, ed = b.U[rows], b.eps_d[rows]
    s1 = u * u * n * (1.0 - n)
    eps1 = ed + u * (1.0 - n)
    a0, a1, a2 = ed + u * n, b.moments[rows, 0] + s1, b.moments[rows, 1] + s1 * eps1
    sigma = atomic_sigma_iw(b.wn[rows], ed[:, None], u[:, None], n[:, None])
    g = dyson_g(g0_inverse_iw(b.wn[rows], ed, b.delta_iw[rows]), sigma)
    tail = np.stack([np.ones(n.size), a0, a0 * a0 + a1, a0 ** 3 + 2 * a0 * a1 + a2], axis=1)
    return g, tail, s1, eps1


def _continuous_excess(b: ModelBatch, n: np.ndarray, rows: np.ndarray, slope: bool = False):
    """``h(n) = n_s[G(n)] - n`` of the given rows of a continuous batch; with ``slope`` also
    ``dh/dn = (1/beta) sum_n G^2 dSigma_at/dn - 1``, ``dSigma_at/dn = U + U^2 (1 - 2n)/(i w -
    eps1) - U^3 n (1 - n)/(i w - eps1)^2``: the mesh sum plus the tail ``U/(i w)^2`` of
    ``G^2 dSigma_at/dn`` beyond it, ``-U (2 beta/pi^2) sum_(n >= N) 1/(2n+1)^2`` (enough for a
    Newton step: the root is that of ``h`` alone)."""
    g, tail, _, eps1 = _continuous_g(b, n, rows)
    b_r = b.beta[rows]
    h = density_from_g_iw_many(g, b_r, tail) - n
    if not slope:
        return h
    u = b.U[rows]
    inv = 1.0 / (1j * b.wn[rows] - eps1[:, None])
    dsigma = u[:, None] + ((u * u * (1.0 - 2.0 * n))[:, None]
                           - (u ** 3 * n * (1.0 - n))[:, None] * inv) * inv
    dg = g * g * dsigma
    dh = (2.0 / b_r * np.sum(dg.real, axis=1)
          - u * 2.0 * b_r / np.pi ** 2 * _odd_square_remainder(g.shape[1]))
    return h, dh - 1.0


def _continuous(b: ModelBatch, ph: np.ndarray, tol: float, max_iter: int, n_l: int,
                n_tau: int | None) -> tuple:
    U, eps_d, beta = b.U, b.eps_d, b.beta
    rows = np.arange(len(b))
    n_s, converged, iterations = _find_density(
        lambda n, r: _continuous_excess(b, n, r), len(b), ph, tol, max_iter,
        lambda n, r: _continuous_excess(b, n, r, slope=True))
    g_iw, tail, s1, eps1 = _continuous_g(b, n_s, rows)
    c2, c3 = tail[:, 1], tail[:, 2]
    g_iw = np.where(ph[:, None], 1j * g_iw.imag, g_iw)
    n_g = density_from_g_iw_many(g_iw, beta, tail)
    g_l = g_l_from_iw_many(g_iw, beta, n_l, tail)
    # (Sigma_at - U n_s) G = s1/(i w - eps1) G: moments (0, s1, s1 (eps1 + c2), ...)
    sigma_dyn = atomic_sigma_iw(b.wn, eps_d[:, None], U[:, None], n_s[:, None]) - (U * n_s)[:, None]
    corr = matsubara_sum_many(sigma_dyn * g_iw, beta, np.stack(
        [np.zeros(len(b)), s1, s1 * (eps1 + c2), s1 * (eps1 ** 2 + eps1 * c2 + c3)], axis=1))
    u_safe = np.where(U > 0, U, 1.0)
    double_occupancy = np.where(U > 0, n_s * n_g + corr / u_safe, n_g ** 2)
    tau = g_tau = None
    if n_tau is not None:
        tau = np.linspace(0.0, beta, int(n_tau), axis=-1)
        g_tau = iw_to_tau_many(g_iw, beta, int(n_tau), tail)
    infos = [{"delta_moments": (float(a), float(c))} for a, c in b.moments[:, :2].tolist()]
    return n_s, converged, iterations, g_iw, g_l, n_g, double_occupancy, tau, g_tau, infos


def solve_hubbard_i(model: AndersonModel, *, n_iw: int = 1024, n_l: int = 80,
                    tol: float = 1e-13, max_iter: int = 100,
                    n_tau: int | None = None) -> SolverResult:
    """Hubbard-I: the atomic self-energy with a self-consistent occupation.

    Equations, the choice of ``n_s``, exact limits and failure modes are in the module docstring.
    The same computation as :func:`solve_hubbard_i_many` for a batch of one.

    Args:
        model: Anderson model with a discrete bath (exact pole sums) or ``delta_iw`` (at least
            ``n_iw`` values; Matsubara sums with analytic tails).
        n_iw: Matsubara frequencies of ``g_iw``/``sigma_iw``.
        n_l: Legendre coefficients of ``g_l``.
        tol: absolute tolerance on ``n_s`` of the root search.
        max_iter: limit on evaluations of ``h(n)`` in the root search; reaching it returns the
            best iterate with ``converged=False``.
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
    opts = HubbardIOptions(n_iw=n_iw, n_l=n_l, tol=tol, max_iter=max_iter, n_tau=n_tau)
    return _solve_hubbard_i_many([model], opts)[0]


def solve_hubbard_i_many(models: Sequence[AndersonModel], *, n_iw: int = 1024, n_l: int = 80,
                         tol: float = 1e-13, max_iter: int = 100,
                         n_tau: int | None = None) -> list[SolverResult]:
    """:func:`solve_hubbard_i` of every model, as array operations over the batch.

    Options as in :func:`solve_hubbard_i`, shared by all models; ``beta``, ``U``, ``eps_d`` and
    the bath (discrete of any size, or ``delta_iw``) differ freely. Each row keeps its own root
    search and stopping rule, so each result equals the one-model :func:`solve_hubbard_i` up to
    rounding.

    Example:
        >>> from solvers import AndersonModel
        >>> ms = [AndersonModel(U=2.0, eps_d=e, beta=10.0, bath_eps=[], bath_v=[])
        ...       for e in (-0.5, -1.0)]
        >>> [round(r.density, 10) for r in solve_hubbard_i_many(ms)]
        [0.9966424913, 1.0]
    """
    opts = HubbardIOptions(n_iw=n_iw, n_l=n_l, tol=tol, max_iter=max_iter, n_tau=n_tau)
    return _solve_hubbard_i_many(models, opts)


def _solve_hubbard_i_many(models: Sequence[AndersonModel],
                          opts: HubbardIOptions) -> list[SolverResult]:
    """:func:`solve_hubbard_i_many` with built options."""
    models = checked_models(models)
    n_iw, n_l, tol, max_iter, n_tau = opts.n_iw, opts.n_l, opts.tol, opts.max_iter, opts.n_tau
    batches = group_by_bath(models, n_iw)
    for idx, b in batches:   # the poles of G lie within a few E of 0 (module docstring)
        for i, beta, energy in zip(idx.tolist(), b.beta.tolist(), b.energy_scale().tolist()):
            check_legendre_reach(beta, energy, n_l, f"{index_prefix(i, len(models))}Hubbard-I: ")
    results: list[SolverResult | None] = [None] * len(models)
    for idx, b in batches:
        ph = b.particle_hole_symmetric()
        solve_rows = _discrete if b.discrete else _continuous
        (n_s, converged, iterations, g_iw, g_l, n_g, double_occupancy, tau, g_tau,
         infos) = solve_rows(b, ph, tol, max_iter, n_l, n_tau)
        sigma_iw = atomic_sigma_iw(b.wn, b.eps_d[:, None], b.U[:, None], n_s[:, None])
        residual = n_g - n_s
        # exact symmetry: n_s = 1/2, G and Sigma - U/2 purely imaginary, odd G_l zero
        phc = ph[:, None]
        g_iw = np.where(phc, 1j * g_iw.imag, g_iw)
        sigma_iw = np.where(phc, (b.U / 2)[:, None] + 1j * sigma_iw.imag, sigma_iw)
        g_l = np.where(phc & (np.arange(n_l) % 2 == 1), 0.0, g_l)
        n_g = np.where(ph, 0.5, n_g)
        truncated = check_legendre_truncation_many(g_l, b.beta, np.stack([n_g - 1.0, -n_g], 1))
        for r in range(len(b)):
            info = dict(infos[r], n_s=float(n_s[r]), residual=float(residual[r]),
                        particle_hole_symmetric=bool(ph[r]))
            ok = bool(converged[r])
            d, n = float(double_occupancy[r]), float(n_g[r])
            warnings = []
            if not ok:
                warnings.append(f"max_iter={max_iter} reached before |n_s - n_s*| <= "
                                f"tol={tol:g}")
            if not max(0.0, 2 * n - 1) - 1e-9 <= d <= n + 1e-9:
                warnings.append(f"double_occupancy={d:.3g} lies outside the physical "
                                f"bounds [max(0, n - 1), n/2] for n={2 * n:.6g}: the "
                                "Tr(Sigma G) estimator fails for Hubbard-I here")
            if truncated[r]:
                warn_untrusted(warnings, truncated[r], stacklevel=4)
                ok = False
            if warnings:
                info["warnings"] = warnings
            results[int(idx[r])] = SolverResult(
                solver="hubbard_i", beta=float(b.beta[r]), g_iw=g_iw[r], sigma_iw=sigma_iw[r],
                g_l=g_l[r], density=2.0 * n, double_occupancy=d, energy=None, converged=ok,
                iterations=int(iterations[r]), g_tau=None if g_tau is None else g_tau[r],
                tau=None if tau is None else tau[r], info=info)
    return results


register_solver("hubbard_i", solve_hubbard_i, options=HubbardIOptions,
                batch=solve_hubbard_i_many, built=_solve_hubbard_i_many)
