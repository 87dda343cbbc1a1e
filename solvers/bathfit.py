"""Discretisation of a hybridisation function: fit ``Delta(i w_n)`` with a few bath poles.

The fitted bath ``(eps_k, V_k)``, ``k = 1 .. n_bath``, defines (``docs/conventions.md``)::

    Delta_fit(i w_n) = sum_k V_k^2 / (i w_n - eps_k)

and minimises the weighted mean squared deviation over the first ``n_fit`` Matsubara
frequencies ``w_n = (2n+1) pi / beta``::

    chi2 = sum_n w_n^-k |Delta_fit(i w_n) - Delta(i w_n)|^2 / sum_n w_n^-k     (k = weight_power)

with :func:`scipy.optimize.least_squares` (Levenberg-Marquardt, analytic Jacobian) from one
deterministic and ``n_restarts`` seeded random initial baths; the best fit is kept. The reported
``residual`` is the weighted RMS deviation ``sqrt(chi2)`` (units of D, like ``Delta``).

A particle-hole symmetric ``Delta`` (``Re Delta(i w_n) = 0``) is fitted, by default, with a
symmetric bath: pairs ``+-eps_j`` with equal ``V_j``, plus one ``eps = 0`` site when ``n_bath`` is
odd. Such a bath has ``Re Delta_fit = 0`` exactly, so the particle-hole symmetry of a half-filled
model survives the discretisation.

Energies are in units of the Bethe half bandwidth ``D`` and ``beta`` in ``1/D``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from ._checks import check_int, check_positive
from .causality import causal_iw
from .ed.solver import MAX_BATH_SITES
from .greens import hybridisation_iw
from .mesh import check_beta, matsubara_freqs
from .model import AndersonModel
from .tails import estimate_tail

__all__ = ["BathFit", "fit_bath", "fit_model", "default_n_fit"]

#: Default fit window: Matsubara frequencies with ``w_n <= FIT_W_MAX`` (units of D) are fitted.
#: Above it ``Delta`` is fixed by its first moments, which the low frequencies already determine,
#: and with the ``1/w_n`` weight those points hardly count. Measured on the Bethe semicircle
#: (beta = 10, 50, 200; 3, 5 and 8 poles): the weighted RMS deviation over all 1024 frequencies of
#: the windowed fit is within 2 % of that of a fit to all 1024, at 2x-10x less time.
FIT_W_MAX = 8.0
#: ... but never fewer than this many points (high temperature: ``w_0 = pi/beta`` is large).
FIT_MIN_POINTS = 48
_SYMMETRY_RTOL = 1e-10   # |Re Delta| <= this * max|Delta| counts as particle-hole symmetric
_EXACT_RTOL = 1e-13      # residual <= this * max|Delta|: rounding level, stop restarting
_GOOD_RTOL = 1e-6        # residual <= this * max|Delta| counts as success even at max_nfev
#: A fitted pole farther than this times the highest fitted frequency from zero is not resolved by
#: the data (``Delta`` has no spectral weight there that the fit window sees): the optimiser
#: drifts along a flat valley and can park it at ``|eps| ~ 1e8 D``, whose residual weight in the
#: impurity Green's function would then need hundreds of thousands of Legendre coefficients.
#: Such a pole is moved to this distance, decoupled (``V = 0``) when the fit allows, else with
#: its low-frequency contribution kept (:func:`_tame_far_poles`).
FAR_POLE_FACTOR = 4.0
_FAR_POLE_RTOL = 1e-3    # the moved bath may raise the residual by this fraction ...
_FAR_POLE_ATOL = 1e-10   # ... plus this times max|Delta|


@dataclass(frozen=True, eq=False)
class BathFit:
    """A discrete bath fitted to ``Delta(i w_n)``.

    Attributes:
        bath_eps: bath energies ``eps_k`` (units of D), sorted ascending.
        bath_v: hybridisations ``V_k >= 0`` (units of D), in the order of ``bath_eps``.
        residual: weighted RMS deviation over the fitted points (units of D),
            ``sqrt(sum_n w_n^-k |Delta_fit - Delta|^2 / sum_n w_n^-k)``, ``k = weight_power``.
        max_deviation: ``max_n |Delta_fit(i w_n) - Delta(i w_n)|`` over the fitted points (D).
        n_bath: number of bath sites.
        beta: inverse temperature of the Matsubara mesh (1/D).
        symmetric: whether the particle-hole symmetric parametrisation (pairs ``+-eps`` with equal
            ``V``, plus ``eps = 0`` when ``n_bath`` is odd) was used.
        n_fit: number of Matsubara frequencies fitted (``n = 0 .. n_fit-1``).
        weight_power: the ``k`` of the ``w_n^-k`` weight.
        n_restarts: random starts tried in addition to the deterministic one (fewer than asked
            when an exact fit ended the search early).
        success: the best start's optimiser met its tolerance (``least_squares`` status > 0),
            or stopped at its evaluation limit with ``residual <= 1e-6 max|Delta|`` (an
            over-resolved fit creeping along a flat valley, typical of many poles at high
            temperature).
        nfev: function evaluations summed over all starts.
    """

    bath_eps: np.ndarray
    bath_v: np.ndarray
    residual: float
    max_deviation: float
    n_bath: int
    beta: float
    symmetric: bool
    n_fit: int
    weight_power: float
    n_restarts: int
    success: bool
    nfev: int

    def delta_iw(self, wn: np.ndarray) -> np.ndarray:
        """``Delta_fit(i w_n) = sum_k V_k^2 / (i w_n - eps_k)`` on frequencies ``wn`` (units D).

        Example:
            >>> import numpy as np
            >>> wn = matsubara_freqs(10.0, 64)
            >>> fit = fit_bath(hybridisation_iw(wn, [-0.5, 0.3], [0.4, 0.2]), 10.0, 2)
            >>> bool(np.allclose(fit.delta_iw(wn), hybridisation_iw(wn, [-0.5, 0.3], [0.4, 0.2])))
            True
        """
        return hybridisation_iw(np.asarray(wn, dtype=float), self.bath_eps, self.bath_v)


def default_n_fit(beta: float, n_iw: int) -> int:
    """Default number of fitted frequencies: those with ``w_n <= FIT_W_MAX``, at least
    ``FIT_MIN_POINTS``, at most ``n_iw``.

    Example:
        >>> default_n_fit(50.0, 1024)   # w_n <= 8 at beta = 50
        64
    """
    beta = check_beta(beta)
    n_window = int(np.floor((FIT_W_MAX * beta / np.pi - 1.0) / 2.0)) + 1
    return int(min(n_iw, max(FIT_MIN_POINTS, n_window)))


# ---------------------------------------------------------------------------- validation
def _check_n_bath(n_bath: Any) -> int:
    if isinstance(n_bath, (bool, np.bool_)) or not isinstance(n_bath, (int, np.integer)):
        raise ValueError(f"n_bath must be an integer between 1 and {MAX_BATH_SITES}, "
                         f"got {n_bath!r}")
    if not 1 <= int(n_bath) <= MAX_BATH_SITES:
        raise ValueError(f"n_bath must be between 1 and {MAX_BATH_SITES}, got {n_bath}")
    return int(n_bath)


def _check_delta(delta_iw: Any) -> np.ndarray:
    try:
        d = np.array(delta_iw, dtype=complex)
    except (TypeError, ValueError):
        raise ValueError("delta_iw must be a 1-d array of complex numbers") from None
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"delta_iw must be a non-empty 1-d array, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("delta_iw contains non-finite values")
    if not causal_iw(d):
        raise ValueError("delta_iw is not causal: Im Delta(i w_n) must be <= 0 for w_n > 0")
    return d


# ---------------------------------------------------------------------------- residuals
class _GeneralProblem:
    """Residuals and Jacobian of the free parametrisation ``p = (eps_1..eps_N, V_1..V_N)``.

    ``r = sqrt(u_n) (Re, Im)(Delta_fit - Delta)`` with ``u_n = w_n^-k / sum_n w_n^-k``, so that
    ``sum r^2 = chi2``; ``dDelta/deps_k = V_k^2/(i w_n - eps_k)^2``, ``dDelta/dV_k = 2 V_k/(i w_n -
    eps_k)``.
    """

    def __init__(self, wn: np.ndarray, target: np.ndarray, sqrt_u: np.ndarray, n_bath: int):
        self.iw = 1j * wn
        self.target = target
        self.sqrt_u = sqrt_u
        self.n = n_bath
        self._x = None
        self._g = None

    def _resolvent(self, p: np.ndarray) -> np.ndarray:
        if self._x is None or not np.array_equal(p, self._x):
            self._x = p.copy()
            self._g = 1.0 / (self.iw[:, None] - p[None, :self.n])
        return self._g

    def fun(self, p: np.ndarray) -> np.ndarray:
        g = self._resolvent(p)
        diff = self.sqrt_u * (g @ (p[self.n:] ** 2) - self.target)
        return np.concatenate([diff.real, diff.imag])

    def jac(self, p: np.ndarray) -> np.ndarray:
        g = self._resolvent(p)
        v = p[self.n:]
        d = np.concatenate([g * g * (v * v), 2.0 * g * v], axis=1) * self.sqrt_u[:, None]
        return np.concatenate([d.real, d.imag], axis=0)

    def bath(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return p[:self.n].copy(), np.abs(p[self.n:])


class _SymmetricProblem:
    """Residuals and Jacobian of the particle-hole symmetric parametrisation.

    ``p = (e_1..e_P, V_1..V_P[, V_0])``: pairs at ``+-e_j`` with weight ``V_j^2`` each and, for odd
    ``n_bath``, a site at 0 with ``V_0``. Then ``Re Delta_fit = 0`` and
    ``Im Delta_fit(i w) = -sum_j 2 V_j^2 w/(w^2 + e_j^2) - V_0^2/w``; only the imaginary part is
    fitted (the real part of the residual does not depend on ``p``).
    """

    def __init__(self, wn: np.ndarray, target: np.ndarray, sqrt_u: np.ndarray, n_bath: int):
        self.wn = wn
        self.target_im = target.imag
        self.sqrt_u = sqrt_u
        self.pairs = n_bath // 2
        self.odd = bool(n_bath % 2)

    def fun(self, p: np.ndarray) -> np.ndarray:
        P, w = self.pairs, self.wn
        e, v = p[:P], p[P:2 * P]
        den = 1.0 / (w[:, None] ** 2 + e[None, :] ** 2)
        im = -2.0 * w * (den @ (v * v))
        if self.odd:
            im -= p[-1] ** 2 / w
        return self.sqrt_u * (im - self.target_im)

    def jac(self, p: np.ndarray) -> np.ndarray:
        P, w = self.pairs, self.wn
        e, v = p[:P], p[P:2 * P]
        den = 1.0 / (w[:, None] ** 2 + e[None, :] ** 2)
        cols = [4.0 * (v * v * e)[None, :] * w[:, None] * den ** 2,
                -4.0 * v[None, :] * w[:, None] * den]
        if self.odd:
            cols.append((-2.0 * p[-1] / w)[:, None])
        return np.concatenate(cols, axis=1) * self.sqrt_u[:, None]

    def bath(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = self.pairs
        e, v = np.abs(p[:P]), np.abs(p[P:2 * P])
        eps = np.concatenate([-e, e] + ([np.zeros(1)] if self.odd else []))
        vv = np.concatenate([v, v] + ([np.abs(p[-1:])] if self.odd else []))
        return eps, vv


# ---------------------------------------------------------------------------- initial baths
def _scales(wn: np.ndarray, delta: np.ndarray, beta: float) -> tuple[float, float, float]:
    """``(m1, centre, width)`` of the hybridisation from its Matsubara data.

    ``m1 = sum_k V_k^2`` and ``centre = sum_k V_k^2 eps_k / m1`` from the tail
    ``Delta -> m1/(i w) + m1 centre/(i w)^2`` (:func:`solvers.tails.estimate_tail`; ``m1`` at
    least ``max_n (-w_n Im Delta)``); ``width`` is the frequency where ``-w Im Delta(i w)``
    reaches ``m1/2`` (``|eps|`` of a single pole pair).
    """
    f = -wn * delta.imag
    c1, c2 = estimate_tail(delta, beta, None, n_moments=2)
    m1 = float(max(c1, np.max(f), 1e-300))
    centre = float(c2 / m1)
    above = np.nonzero(f >= 0.5 * m1)[0]
    width = float(wn[above[0]]) if above.size else float(wn[-1])
    width = max(width, float(wn[0]))
    centre = float(np.clip(centre, -4.0 * width, 4.0 * width))
    return m1, centre, width


def _starts(problem: Any, n_bath: int, m1: float, centre: float, width: float,
            n_restarts: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The deterministic start (levels spread evenly over ``centre +- 2 width``, equal ``V``)
    followed by ``n_restarts`` random ones (uniform levels, Dirichlet weights of total ``m1``)."""
    starts = []
    if isinstance(problem, _SymmetricProblem):
        P, odd = problem.pairs, problem.odd
        grid = 2.0 * width * np.linspace(-1.0, 1.0, n_bath)[n_bath - P:]
        v = np.full(n_bath, np.sqrt(m1 / n_bath))
        starts.append(np.concatenate([grid, v[:P]] + ([v[:1]] if odd else [])))
        for _ in range(n_restarts):
            e = width * rng.uniform(0.0, 3.0, P)
            share = rng.dirichlet(np.ones(P + odd))
            vp = np.sqrt(m1 * share[:P] / 2.0)
            starts.append(np.concatenate([e, vp] + ([np.sqrt(m1 * share[P:])] if odd else [])))
        return starts
    grid = centre + 2.0 * width * np.linspace(-1.0, 1.0, n_bath)
    starts.append(np.concatenate([grid, np.full(n_bath, np.sqrt(m1 / n_bath))]))
    for _ in range(n_restarts):
        e = centre + width * rng.uniform(-3.0, 3.0, n_bath)
        starts.append(np.concatenate([e, np.sqrt(m1 * rng.dirichlet(np.ones(n_bath)))]))
    return starts


# ---------------------------------------------------------------------------- public API
def fit_bath(delta_iw: np.ndarray, beta: float, n_bath: int, *, weight_power: float = 1.0,
             n_fit: int | None = None, symmetric: bool | None = None, n_restarts: int = 4,
             seed: int = 0, tol: float = 1e-12) -> BathFit:
    """Fit ``Delta(i w_n)`` with ``n_bath`` poles ``sum_k V_k^2 / (i w_n - eps_k)``.

    Minimises ``chi2 = sum_n w_n^-k |Delta_fit - Delta|^2 / sum_n w_n^-k`` (``k = weight_power``)
    over ``n = 0 .. n_fit-1`` by Levenberg-Marquardt with an analytic Jacobian, from one
    deterministic initial bath (levels spread over the spectral range estimated from the data,
    ``sum_k V_k^2`` from the tail ``-w Im Delta(i w) -> sum_k V_k^2``) and ``n_restarts`` random
    ones drawn from ``numpy.random.default_rng(seed)``; the lowest ``chi2`` wins. The result is
    deterministic for a given ``seed``.

    Args:
        delta_iw: ``Delta(i w_n)`` for ``n = 0 .. N-1`` (complex, units of D, ``Im <= 0``).
        beta: inverse temperature (1/D) of the mesh ``w_n = (2n+1) pi/beta``.
        n_bath: number of bath poles, ``1 <= n_bath <= 8``.
        weight_power: ``k`` in the weight ``w_n^-k`` (0: uniform; 1 emphasises low frequencies).
        n_fit: number of frequencies fitted. Default :func:`default_n_fit`: those with
            ``w_n <= FIT_W_MAX = 8`` (64 points at ``beta = 50``), at least 48, at most ``N``.
        symmetric: ``True`` for the particle-hole symmetric parametrisation, ``False`` for the
            free one, ``None`` to use the symmetric one iff ``|Re Delta| <= 1e-10 max|Delta|``.
        n_restarts: random starts besides the deterministic one (the search stops early once
            a fit is exact to rounding).
        seed: seed of the random starts.
        tol: ``ftol = xtol = gtol`` of :func:`scipy.optimize.least_squares`.

    Returns:
        :class:`BathFit` with the bath sorted by energy, ``V_k >= 0``, and the weighted RMS
        ``residual``.

    Raises:
        ValueError: ``n_bath`` outside ``[1, 8]``, a ``delta_iw`` that is not 1-d, finite and
            causal, ``beta <= 0``, or a bad ``n_fit``/``weight_power``/``n_restarts``/``tol``.

    Example:
        >>> wn = matsubara_freqs(50.0, 200)
        >>> fit = fit_bath(hybridisation_iw(wn, [-0.6, 0.1, 0.8], [0.3, 0.2, 0.4]), 50.0, 3)
        >>> np.round(fit.bath_eps, 6).tolist(), fit.residual < 1e-12
        ([-0.6, 0.1, 0.8], True)
    """
    n_bath = _check_n_bath(n_bath)
    delta = _check_delta(delta_iw)
    beta = check_beta(beta)
    weight_power = float(weight_power)
    if not np.isfinite(weight_power) or weight_power < 0:
        raise ValueError(f"weight_power must be finite and >= 0, got {weight_power}")
    n_restarts = check_int("n_restarts", n_restarts, 0)
    tol = check_positive("tol", tol)
    if n_fit is None:
        n_fit = default_n_fit(beta, delta.size)
    n_fit = check_int("n_fit", n_fit, 1, delta.size)
    if n_fit < n_bath:
        raise ValueError(f"n_fit = {n_fit} Matsubara frequencies cannot determine "
                         f"n_bath = {n_bath} poles; give at least n_bath frequencies")

    scale = float(np.max(np.abs(delta)))
    if symmetric is None:
        symmetric = bool(np.max(np.abs(delta.real)) <= _SYMMETRY_RTOL * scale)
    symmetric = bool(symmetric)

    wn_all = matsubara_freqs(beta, delta.size)
    wn, target = wn_all[:n_fit], delta[:n_fit]
    u = wn ** -weight_power
    u /= u.sum()
    sqrt_u = np.sqrt(u)

    def chi2(eps: np.ndarray, v: np.ndarray) -> tuple[float, float]:
        dev = np.abs(hybridisation_iw(wn, eps, v) - target)
        return float(np.sum(u * dev ** 2)), float(np.max(dev))

    problem = (_SymmetricProblem if symmetric else _GeneralProblem)(wn, target, sqrt_u, n_bath)
    m1, centre, width = _scales(wn_all, delta, beta)

    if scale == 0.0:  # no hybridisation at all: a decoupled bath is exact
        eps, v = problem.bath(_starts(problem, n_bath, 1.0, 0.0, float(wn[0]), 0, None)[0])
        return _make_fit(eps, 0.0 * v, 0.0, 0.0, n_bath, beta, symmetric, n_fit, weight_power,
                         0, True, 0)

    rng = np.random.default_rng(seed)
    best = None
    nfev = 0
    tried = 0
    for i, p0 in enumerate(_starts(problem, n_bath, m1, centre, width, n_restarts, rng)):
        sol = least_squares(problem.fun, p0, jac=problem.jac, method="lm", ftol=tol, xtol=tol,
                            gtol=tol)
        nfev += int(sol.nfev)
        tried = i
        eps, v = problem.bath(sol.x)
        c2, dmax = chi2(eps, v)
        if best is None or c2 < best[0]:
            best = (c2, dmax, eps, v, bool(sol.success or np.sqrt(c2) <= _GOOD_RTOL * scale))
        if np.sqrt(best[0]) <= _EXACT_RTOL * scale:
            break
    c2, dmax, eps, v, success = best
    eps, v, c2, dmax = _tame_far_poles(eps, v, c2, dmax, FAR_POLE_FACTOR * float(wn[-1]), chi2,
                                       _FAR_POLE_ATOL * scale)
    return _make_fit(eps, v, np.sqrt(c2), dmax, n_bath, beta, symmetric, n_fit, weight_power,
                     tried, success, nfev)


def _tame_far_poles(eps: np.ndarray, v: np.ndarray, c2: float, dmax: float, bound: float,
                    chi2: Any, atol: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Move poles with ``|eps_k| > bound`` to ``+-bound``, decoupled if the data allow.

    For ``w_n << |eps_k|`` a pole contributes ``V_k^2/(i w_n - eps_k) = -V_k^2/eps_k
    - i w_n V_k^2/eps_k^2 + ...``: the real shift ``V^2/eps`` dominates a lone pole, the linear
    term ``V^2/eps^2`` a particle-hole pair (whose shifts cancel). Candidates, in order of
    preference: the far poles decoupled (``V_k = 0``), then moved with
    ``V_k^2 -> V_k^2 (bound/|eps_k|)^p`` (``p = 1, 2``, the better one). The first candidate
    whose weighted RMS residual is at most ``(1 + _FAR_POLE_RTOL)`` times the original one
    plus ``atol`` replaces the fit; if none does, the fit is kept as it is. Returns
    ``(eps, v, chi2, max_deviation)``.
    """
    far = np.abs(eps) > bound
    if not np.any(far):
        return eps, v, c2, dmax
    e_new = np.where(far, np.sign(eps) * bound, eps)
    limit = ((1.0 + _FAR_POLE_RTOL) * np.sqrt(c2) + atol) ** 2
    v_off = np.where(far, 0.0, v)
    c2_off, dmax_off = chi2(e_new, v_off)
    if c2_off <= limit:
        return e_new, v_off, c2_off, dmax_off
    best = None
    for power in (1.0, 2.0):
        v_new = np.where(far, v * (bound / np.abs(eps)) ** (power / 2.0), v)
        c2_new, dmax_new = chi2(e_new, v_new)
        if best is None or c2_new < best[2]:
            best = (e_new, v_new, c2_new, dmax_new)
    if best[2] <= limit:
        return best
    return eps, v, c2, dmax


def _make_fit(eps: np.ndarray, v: np.ndarray, residual: float, max_deviation: float,
              n_bath: int, beta: float, symmetric: bool, n_fit: int, weight_power: float,
              n_restarts: int, success: bool, nfev: int) -> BathFit:
    order = np.lexsort((v, eps))
    eps = np.array(eps[order], dtype=float)
    v = np.array(np.abs(v[order]), dtype=float)
    eps.flags.writeable = False
    v.flags.writeable = False
    return BathFit(bath_eps=eps, bath_v=v, residual=float(residual),
                   max_deviation=float(max_deviation), n_bath=n_bath, beta=beta,
                   symmetric=symmetric, n_fit=n_fit, weight_power=weight_power,
                   n_restarts=int(n_restarts), success=success, nfev=nfev)


def fit_model(model: AndersonModel, n_bath: int, *, n_iw: int | None = None,
              **fit_options: Any) -> AndersonModel:
    """The discrete-bath model whose ``n_bath`` poles fit ``model``'s hybridisation.

    ``U``, ``eps_d`` and ``beta`` are kept; ``Delta(i w_n)`` of ``model`` (discrete or continuous)
    is fitted with :func:`fit_bath`.

    Args:
        model: any Anderson model.
        n_bath: number of fitted bath sites, ``1 <= n_bath <= 8``.
        n_iw: frequencies of ``model.delta`` handed to the fit (which uses the first ``n_fit``
            of them and reads the tail off the last). Default: 1024 for a discrete bath, all
            stored ones for a continuous bath.
        **fit_options: keyword options of :func:`fit_bath` (``weight_power``, ``n_fit``, ...).

    Example:
        >>> m = AndersonModel(U=1.0, eps_d=-0.5, beta=20.0, bath_eps=[-1.0, -0.2, 0.2, 1.0],
        ...                   bath_v=[0.3, 0.2, 0.2, 0.3])
        >>> fitted = fit_model(m, 2)
        >>> fitted.n_bath, fitted.is_particle_hole_symmetric()
        (2, True)
    """
    if not isinstance(model, AndersonModel):
        raise TypeError(f"model must be an AndersonModel, got {type(model).__name__}")
    if n_iw is None:
        n_iw = 1024 if model.is_discrete else model.delta_iw.size
    fit = fit_bath(model.delta(int(n_iw)), model.beta, n_bath, **fit_options)
    return AndersonModel(U=model.U, eps_d=model.eps_d, beta=model.beta, bath_eps=fit.bath_eps,
                         bath_v=fit.bath_v)
