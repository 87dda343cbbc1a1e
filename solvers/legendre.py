"""Legendre representation of imaginary-time Green's functions (Boehnke et al., PRB 84, 075145).

With ``x(tau) = 2 tau / beta - 1``::

    G_l    = sqrt(2l+1) int_0^beta dtau P_l(x(tau)) G(tau)
    G(tau) = sum_l sqrt(2l+1) / beta P_l(x(tau)) G_l
    G(i w_n) = sum_l T_nl G_l,  T_nl = (-1)^n i^(l+1) sqrt(2l+1) j_l((2n+1) pi / 2)

Even ``l`` carry the part of ``G(tau)`` symmetric about ``beta/2``; the sum rule
``G(0+) + G(beta-) = -1`` reads ``sum_{l even} 2 sqrt(2l+1) G_l = -beta``.

Truncation. A pole ``1/(i w_n - e)`` has ``|G_l| = beta sqrt(2l+1) i_l(y)/(2 cosh y)``,
``y = beta |e|/2``, which falls like ``exp(-l^2/(4y))`` for ``l < 2y`` and faster beyond: the
series needs ``n_l ~ sqrt(beta |e| ln(1/tol))`` terms (``~110`` at ``beta |e| = 650``,
``tol = 1e-8``). Every ``P_l(+-1) = (+-1)^l`` and the terms of one pole alternate in a fixed
pattern, so the truncation error of ``G(tau)`` is largest at ``tau = 0+`` or ``beta-`` and equals
``sum_{l >= n_l} (2l+1) i_l(y)/(2 cosh y)`` there; it grows with ``|e|``. Hence
:func:`legendre_truncation_error`, :func:`required_n_l` and :func:`max_beta_for_n_l` for a
Green's function of unit weight whose poles lie in ``|e| <= e_max``, and
:func:`check_legendre_truncation`, which solvers run on the coefficients they return (a series
that misses ``G(0+)`` or ``G(beta-)`` is reported, never returned silently).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from scipy import special

from ._checks import check_iw_array, check_poles
from .mesh import check_beta, check_betas, matsubara_freqs, matsubara_freqs_many
from .tails import TailPoles, check_moments

__all__ = [
    "legendre_p",
    "legendre_sign",
    "legendre_tau_basis",
    "sum_rule_vector",
    "legendre_t_matrix",
    "g_l_from_tau",
    "g_tau_from_l",
    "g_iw_from_l",
    "g_l_from_iw",
    "g_l_from_poles",
    "tail_moments_from_l",
    "sum_rule_from_l",
    "legendre_truncation_error",
    "required_n_l",
    "max_beta_for_n_l",
    "check_legendre_truncation",
    "LEGENDRE_TOL",
    "g_l_from_iw_many",
    "g_l_from_poles_many",
    "check_legendre_truncation_many",
    "check_legendre_reach",
    "MAX_BETA_ENERGY",
]

#: Largest error of ``G(0+)``, ``G(beta-)`` (``G`` of unit weight) that a solver's ``g_l`` may
#: have before :func:`check_legendre_truncation` reports it (``converged=False``).
LEGENDRE_TOL = 1e-6

#: Largest ``beta |e|`` of a pole whose Legendre coefficients are computed (see
#: :func:`check_legendre_reach`): ``1e12``, e.g. ``|e| = 1e4 D`` at ``beta = 1e8`` (the largest
#: accepted ``beta``, :data:`solvers.mesh.BETA_MAX`). Bath fits may park a pole of negligible
#: weight far outside the band (a 4-pole fit of a DMFT hybridisation at ``beta = 30`` put one at
#: ``3.4e7 D``, ``beta |e| = 1e9``); such models are still solved (the recursion then costs
#: ~0.3 s per pole at the bound).
MAX_BETA_ENERGY = 1e12


@lru_cache(maxsize=32)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def legendre_p(n_l: int, x: np.ndarray | float) -> np.ndarray:
    """Legendre polynomials ``P_l(x)``, ``l = 0 .. n_l-1``, at every point of ``x`` (any shape).

    Bonnet's three-term recursion ``(l+1) P_(l+1) = (2l+1) x P_l - l P_(l-1)``, ``P_0 = 1``,
    ``P_1 = x``; exact at the ends, ``P_l(+-1) = (+-1)^l``. Shape ``(n_l,) + x.shape``.

    Example:
        >>> legendre_p(3, np.array([-1.0, 0.5, 1.0])).tolist()
        [[1.0, 1.0, 1.0], [-1.0, 0.5, 1.0], [1.0, -0.125, 1.0]]
    """
    n_l = _check_n_l(n_l)
    x = np.asarray(x, dtype=float)
    out = np.empty((n_l,) + x.shape)
    out[0] = 1.0
    if n_l > 1:
        out[1] = x
    for l in range(1, n_l - 1):
        out[l + 1] = ((2 * l + 1) * x * out[l] - l * out[l - 1]) / (l + 1)
    return out


def legendre_sign(n_l: int) -> np.ndarray:
    """``(-1)^l = P_l(-1)`` for ``l < n_l``: the coefficients of ``G(beta - tau)`` are
    ``(-1)^l G_l`` (the particle-hole map of Legendre coefficients).

    Example:
        >>> legendre_sign(4).tolist()
        [1.0, -1.0, 1.0, -1.0]
    """
    return _sign(_check_n_l(n_l))


def _sign(n: int) -> np.ndarray:
    """``(-1)^k`` for ``k < n`` (:func:`legendre_sign` without the check; also ``(-1)^n`` of the
    Matsubara index)."""
    return (-1.0) ** np.arange(n)


def _norm(n_l: int) -> np.ndarray:
    """``sqrt(2l+1)`` for ``l < n_l``."""
    return np.sqrt(2 * np.arange(n_l) + 1.0)


def legendre_tau_basis(n_l: int, x: np.ndarray | float) -> np.ndarray:
    """``sqrt(2l+1) P_l(x)`` at ``x = 2 tau/beta - 1``, shape ``x.shape + (n_l,)``:
    ``G(tau) = legendre_tau_basis(n_l, x) @ G_l / beta`` (for one or many rows of ``G_l``).

    Example:
        >>> legendre_tau_basis(2, np.array([1.0])).round(6).tolist()   # G(beta-) weights
        [[1.0, 1.732051]]
    """
    n_l = _check_n_l(n_l)
    x = np.asarray(x, dtype=float)
    if x.size <= _BASIS_CACHE_POINTS:   # the few fixed meshes of the checks: built once
        return _tau_basis_cached(n_l, x.tobytes(), x.shape)
    return np.moveaxis(legendre_p(n_l, x), 0, -1) * _norm(n_l)


#: Meshes of at most this many points keep their :func:`legendre_tau_basis` (read-only).
_BASIS_CACHE_POINTS = 256


@lru_cache(maxsize=64)
def _tau_basis_cached(n_l: int, x_bytes: bytes, shape: tuple[int, ...]) -> np.ndarray:
    x = np.frombuffer(x_bytes, dtype=float).reshape(shape)
    basis = np.moveaxis(legendre_p(n_l, x), 0, -1) * _norm(n_l)
    basis.flags.writeable = False
    return basis


def sum_rule_vector(n_l: int) -> np.ndarray:
    """``s_l = sqrt(2l+1) (P_l(-1) + P_l(1))`` (``2 sqrt(2l+1)`` for even ``l``, 0 for odd):
    ``G(0+) + G(beta-) = s . G_l / beta`` (``-1`` for a fermion).

    Example:
        >>> sum_rule_vector(3).round(6).tolist()
        [2.0, 0.0, 4.472136]
    """
    n_l = _check_n_l(n_l)
    return _norm(n_l) * (1.0 + legendre_sign(n_l))


def _check_n_l(n_l: int) -> int:
    if int(n_l) < 1:
        raise ValueError(f"n_l must be >= 1, got {n_l}")
    return int(n_l)


def g_l_from_tau(g_tau: Callable[[np.ndarray], np.ndarray], beta: float, n_l: int,
                 n_quad: int | None = None) -> np.ndarray:
    """Legendre coefficients ``G_l`` of a function of ``tau`` by Gauss-Legendre quadrature.

    ``G_l = sqrt(2l+1) (beta/2) sum_k w_k P_l(x_k) G(tau_k)`` with ``tau_k = beta (x_k + 1)/2``.

    Args:
        g_tau: callable returning ``G(tau)`` (real or complex) on an array of ``tau`` in (0, beta).
        beta: inverse temperature (1/D).
        n_l: number of coefficients.
        n_quad: quadrature points (default ``max(2 n_l, 200)``); exact for polynomial
            ``G(tau)`` of degree ``< 2 n_quad - n_l``.

    Example:
        >>> import numpy as np
        >>> g_l = g_l_from_tau(lambda t: -0.5 * np.ones_like(t), beta=2.0, n_l=4)
        >>> np.allclose(g_l, [-1.0, 0, 0, 0])
        True
    """
    beta = check_beta(beta)
    n_l = _check_n_l(n_l)
    n_quad = int(n_quad or max(2 * n_l, 200))
    x, w = _gauss_legendre(n_quad)
    tau = beta * (x + 1) / 2
    vals = np.asarray(g_tau(tau))
    if vals.shape[-1] != n_quad:
        raise ValueError(f"g_tau returned shape {vals.shape}, expected (..., {n_quad})")
    return ((vals * w) @ legendre_tau_basis(n_l, x)) * (beta / 2)


def g_tau_from_l(g_l: np.ndarray, beta: float, tau: np.ndarray) -> np.ndarray:
    """``G(tau) = sum_l sqrt(2l+1)/beta P_l(2 tau/beta - 1) G_l`` on the given times.

    Example:
        >>> import numpy as np
        >>> g_tau_from_l(np.array([-1.0]), 2.0, np.array([0.0, 1.0, 2.0])).tolist()
        [-0.5, -0.5, -0.5]
    """
    beta = check_beta(beta)
    g_l = np.asarray(g_l)
    tau = np.asarray(tau, dtype=float)
    if np.any(tau < -1e-12 * beta) or np.any(tau > beta * (1 + 1e-12)):
        raise ValueError("tau must lie in [0, beta]")
    return _g_tau_from_l_at_x(g_l, beta, np.clip(2 * tau / beta - 1, -1.0, 1.0))


def _g_tau_from_l_at_x(g_l: np.ndarray, beta: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """``G = sum_l sqrt(2l+1)/beta P_l(x) G_l`` at ``x = 2 tau/beta - 1``; ``beta`` a number or
    one per row of ``g_l`` (shape ``(B, n_l)``, a batch on a common ``x`` mesh)."""
    n_l = g_l.shape[-1]
    coef = g_l / np.asarray(beta, dtype=float)[..., None]
    return np.tensordot(coef, legendre_tau_basis(n_l, x), axes=([-1], [-1]))


@lru_cache(maxsize=64)
def _t_matrix_cached(n_iw: int, n_l: int) -> np.ndarray:
    n = np.arange(n_iw)[:, None]
    l = np.arange(n_l)[None, :]
    arg = (2 * n + 1) * np.pi / 2
    t = (_sign(n_iw)[:, None] * (1j ** (l + 1)) * _norm(n_l)[None, :]
         * special.spherical_jn(l, arg))
    t.flags.writeable = False
    return t


def legendre_t_matrix(n_iw: int, n_l: int) -> np.ndarray:
    """``T_nl = (-1)^n i^(l+1) sqrt(2l+1) j_l((2n+1) pi/2)``, shape ``(n_iw, n_l)``.

    It does not depend on ``beta``: ``G(i w_n) = sum_l T_nl G_l``.
    """
    return _t_matrix_cached(int(n_iw), _check_n_l(n_l))


def g_iw_from_l(g_l: np.ndarray, n_iw: int) -> np.ndarray:
    """``G(i w_n) = sum_l T_nl G_l`` for ``n = 0 .. n_iw-1``.

    Example:
        >>> import numpy as np
        >>> g_iw_from_l(np.array([-1.0]), 1)  # G(tau) = -1/2 at beta = 2: G(i w_0) = 1/(i pi/2)
        array([0.-0.63661977j])
    """
    g_l = np.asarray(g_l)
    return g_l @ legendre_t_matrix(n_iw, g_l.shape[-1]).T


@lru_cache(maxsize=64)
def _t_matrix_real(n_iw: int, n_l: int) -> tuple[np.ndarray, np.ndarray]:
    """``Im T_nl`` for even ``l`` and ``Re T_nl`` for odd ``l`` (the only non-zero parts), each
    contiguous, shapes ``(n_iw, ceil(n_l/2))`` and ``(n_iw, floor(n_l/2))``."""
    t = _t_matrix_cached(n_iw, n_l)
    even = np.ascontiguousarray(t[:, 0::2].imag)
    odd = np.ascontiguousarray(t[:, 1::2].real)
    even.flags.writeable = False
    odd.flags.writeable = False
    return even, odd


def g_l_from_iw(g_iw: np.ndarray, beta: float, n_l: int, tail: Sequence[float] = (1.0,),
                tail_scale: float | None = None) -> np.ndarray:
    """``G_l`` from ``G(i w_n)`` (``n >= 0``) with the exact Legendre kernel, tails analytic.

    Orthogonality of the Legendre basis gives ``int_0^beta P_l(x(tau)) exp(-i w_n tau) dtau =
    beta conj(T_nl)/sqrt(2l+1)``, hence (``G(-i w) = conj G(i w)``)::

        G_l = sum_{n in Z} conj(T_nl) G(i w_n) = 2 Re sum_{n>=0} conj(T_nl) G(i w_n)

    ``T_nl`` is imaginary for even ``l`` and real for odd ``l``, so even ``G_l`` need only
    ``Im G`` and odd ``G_l`` only ``Re G``. The known moments ``tail = (c_1, ..., c_K)``
    (``K <= 6``; default ``c_1 = 1``) of ``G(i w_n) = sum_k c_k/(i w_n)^k`` are carried by the
    pole sum :class:`solvers.tails.TailPoles` (node spacing ``tail_scale`` in D; default: the
    width ``sqrt(|c_3/c_1|)`` the moments imply, at least ``pi/beta``),
    whose ``G_l`` are exact (:func:`g_l_from_poles`); the sum over ``n < N`` runs over the
    remainder only, whose truncation error falls like ``N^-(K+1)`` (a pole sum at ``beta = 50``,
    ``N = 1024``: ``~1e-8`` with ``K = 3``, ``~1e-9`` with ``K = 4``; a single pole is exact to
    rounding). Odd ``G_l`` of a purely imaginary ``G`` with ``c_2 = c_4 = c_6 = 0`` are exactly
    zero. Cost: two real matrix-vector products (``T`` is cached) and the tail poles.

    Args:
        g_iw: ``G(i w_n)``, ``n = 0 .. N-1``.
        beta: inverse temperature (1/D).
        n_l: number of coefficients.
        tail: the known moments ``(c_1, ..., c_K)``, ``K <= 6``.
        tail_scale: node spacing of the tail poles (D); default from the moments.

    Example:
        >>> import numpy as np
        >>> wn = matsubara_freqs(50.0, 1024)
        >>> g_iw = 1 / (1j * wn - 0.37)
        >>> g_l = g_l_from_iw(g_iw, 50.0, 60, tail=(1.0, 0.37, 0.37 ** 2, 0.37 ** 3))
        >>> bool(np.max(np.abs(g_l - g_l_from_poles([1.0], [0.37], 50.0, 60))) < 1e-12)
        True
    """
    beta = check_beta(beta)
    n_l = _check_n_l(n_l)
    g_iw = check_iw_array(g_iw)
    c = check_moments(tail)[None, :]
    if tail_scale is not None:
        TailPoles.from_moments(c[0], tail_scale)   # checks the scale
    return g_l_from_iw_many(g_iw[None, :], np.array([beta]), n_l, c, tail_scale)[0]


def g_l_from_iw_many(g_iw: np.ndarray, beta: np.ndarray, n_l: int, tail: np.ndarray,
                     tail_scale: float | None = None) -> np.ndarray:
    """:func:`g_l_from_iw` of every row of ``g_iw`` (shape ``(B, N)``) with its own ``beta`` and
    known moments ``tail`` (shape ``(B, K)``): ``G_l`` of shape ``(B, n_l)``."""
    beta = check_betas(beta)
    poles = TailPoles._from_moments(np.asarray(tail, dtype=float), tail_scale, np.pi / beta)
    n_rows, n_iw = g_iw.shape
    rest = g_iw - poles.iw(matsubara_freqs_many(beta, n_iw))
    t_even, t_odd = _t_matrix_real(n_iw, n_l)
    g_l = np.empty((n_rows, n_l))
    g_l[:, 0::2] = 2.0 * (rest.imag @ t_even)
    g_l[:, 1::2] = 2.0 * (rest.real @ t_odd)
    # pair p [pole(e) + pole(-e)] / 2 -> p K_l(e) on even l; r [pole(e) - pole(-e)] / (2e) ->
    # (r/e) K_l(e) on odd l (K_l(-e) = (-1)^l K_l(e)); K_l(0) = -(beta/2) delta_l0
    if poles.odd_weights.shape[1]:
        g_l[:, 0] -= 0.5 * beta * poles.odd_weights[:, 0]
    p, r = poles.odd_weights[:, 1:], poles.even_weights
    if p.any() or r.any():
        kern = _pole_kernel_l(np.concatenate([poles.odd_energies[:, 1:], poles.even_energies],
                                             axis=1), beta[:, None], n_l)
        n_p = p.shape[1]
        g_l[:, 0::2] += (p[:, None, :] @ kern[:, :n_p, 0::2])[:, 0, :]
        g_l[:, 1::2] += ((r / poles.even_energies)[:, None, :] @ kern[:, n_p:, 1::2])[:, 0, :]
    return g_l


_SCALAR_RECURSION_MAX = 16  # measured crossover with the vectorised loop: ~18 poles


def check_legendre_reach(beta: float, e_max: float, n_l: int | None = None,
                         prefix: str = "") -> None:
    """Refuse, in one line, a ``G`` whose poles reach ``|e| = e_max`` at ``beta`` with
    ``beta e_max > MAX_BETA_ENERGY`` (before any work).

    There the Legendre series is meaningless and its computation runs away: a pole needs about
    ``sqrt(beta |e| ln(1/tol))`` coefficients (``4e5`` at ``beta |e| = 1e10``; no ``n_l`` in use
    comes close) and its closed form :func:`_pole_kernel_l` a downward recursion of about
    ``6 sqrt(beta |e| / 2)`` steps (``4e8`` at ``beta |e| = 1e16``, hours). Such products come
    from energies not given in units of the half bandwidth ``D`` (e.g. ``U = 1e14``).

    Example:
        >>> check_legendre_reach(10.0, 5e13, 80)
        Traceback (most recent call last):
        ...
        ValueError: beta |e| = 10 x 5e+13 = 5e+14 exceeds 1e+12: the Legendre series of ...
    """
    x = float(beta) * float(e_max)
    if x <= MAX_BETA_ENERGY:
        return
    if not np.isfinite(x):
        raise ValueError(f"{prefix}beta |e| = {beta:g} x {e_max:g} is not finite: the Legendre "
                         "series of such a pole cannot be computed")
    need = np.sqrt(x * np.log(1.0 / LEGENDRE_TOL))
    steps = 6.0 * np.sqrt(x / 2.0)
    have = "" if n_l is None else f" (n_l = {n_l})"
    raise ValueError(
        f"{prefix}beta |e| = {beta:g} x {e_max:.3g} = {x:.3g} exceeds {MAX_BETA_ENERGY:g}: the "
        f"Legendre series of a pole at |e| = {e_max:.3g} would need ~{need:.2g} coefficients"
        f"{have} and a recursion of ~{steps:.2g} steps; give energies in units of the half "
        "bandwidth D (|eps_d|, U and the bath within a few hundred D) or a smaller beta")


def _pole_kernel_l(eps: np.ndarray, beta: float | np.ndarray, n_l: int) -> np.ndarray:
    """``K_l(eps) = sqrt(2l+1) int_0^beta P_l(x) (-exp(-tau eps)/(1+exp(-beta eps))) dtau``.

    Closed form: ``-beta sqrt(2l+1) (-1)^l i_l(y) / (2 cosh y)``, ``y = beta eps / 2``, with the
    modified spherical Bessel functions ``i_l``. They are built from ``i_0(y)/(2 cosh y) =
    tanh(y)/(2y)`` and the ratios ``r_l = i_l/i_{l-1} = y / (2l+1 + y r_{l+1})`` (Miller's
    downward recursion, started far above ``n_l``), which neither overflows nor loses accuracy
    for any ``y``. ``beta`` is a number or an array broadcast against ``eps`` (one per pole).
    Shape ``eps.shape + (n_l,)``.
    """
    eps = np.asarray(eps, dtype=float)
    beta = np.broadcast_to(np.asarray(beta, dtype=float), eps.shape)
    shape = eps.shape
    y = (beta * eps / 2).ravel()
    ay = np.abs(y)
    if ay.size and not float(ay.max()) <= MAX_BETA_ENERGY / 2:   # also NaN
        i = int(np.argmax(np.where(np.isfinite(ay), ay, np.inf)))
        check_legendre_reach(float(beta.ravel()[i]), abs(float(eps.ravel()[i])), n_l)
    l_start = n_l + 40 + int(np.ceil(6.0 * np.sqrt(float(ay.max(initial=0.0)) + 1.0)))
    ratios = np.empty((n_l, ay.size))
    if ay.size <= _SCALAR_RECURSION_MAX:  # few poles: Python floats beat tiny numpy arrays
        for j, a in enumerate(ay.tolist()):
            r = 0.0
            for l in range(l_start, n_l - 1, -1):
                r = a / (2 * l + 1 + a * r)
            col = [0.0] * n_l
            for l in range(n_l - 1, 0, -1):
                r = a / (2 * l + 1 + a * r)
                col[l] = r
            ratios[:, j] = col
    else:
        r = np.zeros_like(ay)
        for l in range(l_start, 0, -1):
            r = ay / (2 * l + 1 + ay * r)
            if l < n_l:
                ratios[l] = r
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(ay < 1e-8, 0.5, np.tanh(ay) / (2 * ay))
    ratios[0] = first
    ratio = np.cumprod(ratios, axis=0).T  # i_l(|y|) / (2 cosh y)
    sign = legendre_sign(n_l)[None, :]
    sign_y = np.where(y[:, None] < 0, sign, 1.0)  # i_l(-y) = (-1)^l i_l(y)
    kern = (-beta.reshape(-1, 1) * _norm(n_l)[None, :] * sign * sign_y * ratio)
    return kern.reshape(shape + (n_l,))


def g_l_from_poles(weights: np.ndarray, energies: np.ndarray, beta: float, n_l: int) -> np.ndarray:
    """Exact ``G_l`` of a pole sum ``G(i w_n) = sum_p w_p / (i w_n - e_p)``.

    Each pole is ``G(tau) = -w exp(-tau e)/(1 + exp(-beta e))``; its Legendre coefficients are
    ``-w beta sqrt(2l+1) (-1)^l i_l(beta e/2) / (2 cosh(beta e/2))``, stable for any ``beta e``.

    Example:
        >>> import numpy as np
        >>> g_l = g_l_from_poles(np.array([1.0]), np.array([0.0]), beta=2.0, n_l=3)
        >>> np.allclose(g_l, [-1.0, 0.0, 0.0])
        True
    """
    beta = check_beta(beta)
    n_l = _check_n_l(n_l)
    weights, energies = check_poles(weights, energies)
    out = np.zeros(n_l)
    chunk = 2 ** 16
    for start in range(0, weights.size, chunk):
        sl = slice(start, start + chunk)
        out += g_l_from_poles_many(weights[None, sl], energies[None, sl], np.array([beta]),
                                   n_l)[0]
    return out


def g_l_from_poles_many(weights: np.ndarray, energies: np.ndarray, beta: np.ndarray,
                        n_l: int) -> np.ndarray:
    """:func:`g_l_from_poles` of every row of ``weights``, ``energies`` (shape ``(B, P)``; pad
    with zero weights) with its own ``beta``: ``G_l`` of shape ``(B, n_l)``."""
    beta = check_betas(beta)
    kern = _pole_kernel_l(energies, beta[:, None], n_l)
    return (np.asarray(weights, dtype=float)[:, None, :] @ kern)[:, 0, :]


def _betas_of(beta: float | np.ndarray) -> np.ndarray:
    """A checked ``beta``: a number, or one per row (an array)."""
    return np.asarray(check_beta(beta) if np.ndim(beta) == 0 else check_betas(beta))


def tail_moments_from_l(g_l: np.ndarray, beta: float | np.ndarray) -> np.ndarray:
    """High-frequency moments ``(c_1, c_2, c_3)`` of ``G(i w_n) = sum_k c_k/(i w_n)^k`` from ``G_l``.

    ``c_1 = -(G(0+) + G(beta-))``, ``c_2 = G'(0+) + G'(beta-)``, ``c_3 = -(G''(0+) + G''(beta-))``,
    which in Legendre form are::

        c_1 = -(2/beta)    sum_{l even} sqrt(2l+1) G_l       (= -s . G_l / beta, sum_rule_vector)
        c_2 =  (2/beta^2)  sum_{l odd}  sqrt(2l+1) l(l+1) G_l
        c_3 = -(1/beta^3)  sum_{l even} sqrt(2l+1) (l-1) l (l+1) (l+2) G_l

    ``g_l`` of shape ``(..., n_l)`` with ``beta`` a number or one per row (shape ``g_l.shape[:-1]``);
    returns ``(..., 3)``. For a single pole ``1/(i w_n - e)``: ``(1, e, e^2)``.

    Example:
        >>> g_l = g_l_from_poles([1.0], [0.3], 10.0, 40)
        >>> np.allclose(tail_moments_from_l(g_l, 10.0), [1.0, 0.3, 0.09])
        True
    """
    beta = _betas_of(beta)
    g_l = np.asarray(g_l)
    n_l = g_l.shape[-1]
    l = np.arange(n_l)
    s = _norm(n_l)
    even = (l % 2 == 0)
    c1 = -(g_l @ sum_rule_vector(n_l)) / beta
    c2 = (2 / beta ** 2) * (g_l @ np.where(~even, s * l * (l + 1), 0.0))
    c3 = -(1 / beta ** 3) * (g_l @ np.where(even, s * (l - 1) * l * (l + 1) * (l + 2), 0.0))
    return np.stack([c1, c2, c3], axis=-1)


def sum_rule_from_l(g_l: np.ndarray, beta: float | np.ndarray) -> np.ndarray:
    """``G(0+) + G(beta-) = s . G_l / beta = (2/beta) sum_{l even} sqrt(2l+1) G_l``
    (:func:`sum_rule_vector`); equals -1 for a fermion. ``g_l`` of shape ``(..., n_l)``, ``beta``
    a number or one per row; returns shape ``g_l.shape[:-1]``.

    Example:
        >>> float(sum_rule_from_l(np.array([-1.0, 0.3]), 2.0))   # G(tau) = -1/2 + odd part
        -1.0
    """
    beta = _betas_of(beta)
    g_l = np.asarray(g_l)
    return (g_l @ sum_rule_vector(g_l.shape[-1])) / beta


# ------------------------------------------------------------------------ truncation error
def _tail_sums(y: float, n_max: int) -> np.ndarray:
    """``t[n] = sum_{l >= n} (2l+1) i_l(y)/(2 cosh y)`` for ``n = 0 .. n_max`` (``t[0] = 1``)."""
    k = -_pole_kernel_l(np.array([y]), 2.0, n_max + 1)[0]   # beta = 2: e = y
    terms = _norm(n_max + 1) / 2.0 * np.abs(k)
    # the terms beyond n_max: below terms[n_max] * (super-exponential decay), bounded by it
    return np.cumsum(terms[::-1])[::-1]


def _n_max_for(y: float, tol: float) -> int:
    """An order safely past where a pole with ``beta |e| / 2 = y`` is resolved to ``tol``."""
    return int(2.0 * np.sqrt(2.0 * y * max(np.log(1.0 / tol), 1.0))) + 60


def legendre_truncation_error(n_l: int, beta: float, e_max: float) -> float:
    """Largest error of ``G(tau)`` rebuilt from ``n_l`` coefficients, ``G`` of unit weight with
    poles in ``|e| <= e_max`` (units 1/D, like ``G(tau)``).

    It is attained by a pole at ``|e| = e_max`` at ``tau = 0+`` or ``beta-``:
    ``sum_{l >= n_l} (2l+1) i_l(y)/(2 cosh y)``, ``y = beta e_max / 2``.

    Example:
        >>> round(legendre_truncation_error(80, 1000.0, 10.0), 2)  # an atom, U = 20, beta = 1000
        0.53
    """
    beta = check_beta(beta)
    n_l = _check_n_l(n_l)
    y = 0.5 * beta * abs(float(e_max))
    n_max = max(n_l, _n_max_for(y, 1e-16))
    return float(_tail_sums(y, n_max)[n_l]) if n_l <= n_max else 0.0


def required_n_l(beta: float, e_max: float, tol: float = 1e-8) -> int:
    """Smallest ``n_l`` with :func:`legendre_truncation_error` ``<= tol``.

    Roughly ``sqrt(beta e_max ln(1/tol))``; exact for one pole at ``|e| = e_max``, an upper bound
    for any ``G`` of unit weight with poles in ``|e| <= e_max``.

    Args:
        beta: inverse temperature (1/D).
        e_max: the largest ``|e|`` of the spectrum (D), e.g. ``max(|eps_d|, |eps_d + U|)`` plus
            the bath half width (see ``docs/solvers.md``).
        tol: allowed error of ``G(tau)`` (1/D).

    Example:
        >>> required_n_l(100.0, 6.5)  # the database's default recipe corner
        110
    """
    beta = check_beta(beta)
    if not 0 < tol < 1:
        raise ValueError(f"tol must lie in (0, 1), got {tol}")
    y = 0.5 * beta * abs(float(e_max))
    n_max = _n_max_for(y, tol)
    tails = _tail_sums(y, n_max)
    return max(1, int(np.argmax(tails <= tol)))


def max_beta_for_n_l(n_l: int, e_max: float, tol: float = 1e-8) -> float:
    """Largest ``beta`` at which ``n_l`` coefficients keep :func:`legendre_truncation_error`
    ``<= tol`` (the inverse of :func:`required_n_l`; ``inf`` for ``e_max = 0``).

    Example:
        >>> b = max_beta_for_n_l(120, 6.5)
        >>> 100.0 < b < 130.0, required_n_l(b, 6.5) <= 120 < required_n_l(1.01 * b, 6.5)
        (True, True)
    """
    n_l = _check_n_l(n_l)
    if not 0 < tol < 1:
        raise ValueError(f"tol must lie in (0, 1), got {tol}")
    e_max = abs(float(e_max))
    if e_max == 0.0:
        return float("inf")

    def ok(y: float) -> bool:
        return _tail_sums(y, max(n_l, _n_max_for(y, tol)))[n_l] <= tol

    lo, hi = 0.0, max(1.0, n_l * n_l / 4.0)   # y = n_l^2/4 needs far more than n_l terms
    while ok(hi):
        lo, hi = hi, 2.0 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        if hi - lo <= 1e-10 * hi:
            break
    return 2.0 * lo / e_max


def check_legendre_truncation(g_l: np.ndarray, beta: float,
                              g_ends: tuple[float, float] | None = None,
                              tol: float = LEGENDRE_TOL) -> str | None:
    """A one-line message if the series ``g_l`` misses ``G`` at the ends of ``[0, beta]``.

    With ``g_ends = (G(0+), G(beta-))`` known (poles, a ``tau`` mesh): the error at both ends.
    Without: the sum rule ``G(0+) + G(beta-) = -1`` from the even coefficients (``P_l(+-1) =
    (+-1)^l``). Truncation errors are largest there (module docstring), so a series that passes
    represents ``G(tau)`` to about ``tol`` everywhere. Returns ``None`` when it passes.

    Example:
        >>> g_l = g_l_from_poles([0.5, 0.5], [-10.0, 10.0], 1000.0, 80)  # atom, U = 20
        >>> print(check_legendre_truncation(g_l, 1000.0))  # doctest: +ELLIPSIS
        g_l: n_l=80 Legendre coefficients miss G(0+) + G(beta-) = -1 by 0.53 > 1e-06 at ...
    """
    beta = check_beta(beta)
    g_l = np.asarray(g_l, dtype=float)
    ends = None if g_ends is None else np.asarray(g_ends, dtype=float)[None, :]
    return check_legendre_truncation_many(g_l[None, :], np.array([beta]), ends, tol)[0]


def check_legendre_truncation_many(g_l: np.ndarray, beta: np.ndarray,
                                   g_ends: np.ndarray | None = None,
                                   tol: float = LEGENDRE_TOL) -> list[str | None]:
    """:func:`check_legendre_truncation` of every row of ``g_l`` (shape ``(B, n_l)``) with its
    own ``beta`` (and ``g_ends`` of shape ``(B, 2)``): one message or ``None`` per row."""
    beta = check_betas(beta)
    n_l = g_l.shape[-1]
    ends = _g_tau_from_l_at_x(g_l, beta, np.array([-1.0, 1.0]))
    with np.errstate(invalid="ignore"):
        if g_ends is None:
            err = np.abs(ends[:, 0] + ends[:, 1] + 1.0)
            what = "G(0+) + G(beta-) = -1"
        else:
            err = np.max(np.abs(ends - g_ends), axis=1)
            what = "G(0+), G(beta-)"
    finite = np.all(np.isfinite(ends), axis=1)
    out: list[str | None] = []
    for b, e, ok in zip(beta.tolist(), err.tolist(), finite.tolist()):
        if not ok:
            out.append(f"g_l: the Legendre series is not finite at tau = 0, beta (n_l={n_l})")
        elif e <= tol:
            out.append(None)
        else:
            out.append(f"g_l: n_l={n_l} Legendre coefficients miss {what} by {e:.2g} > {tol:g} "
                       f"at beta={b:g} (too few coefficients for this beta, see "
                       "solvers.legendre.required_n_l, or an inaccurate transform)")
    return out
