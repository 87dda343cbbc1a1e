"""Fourier transforms between imaginary time (uniform mesh) and Matsubara frequencies.

Both directions treat the high-frequency tail analytically, so the discontinuity of a fermionic
function at ``tau = 0, beta`` costs no accuracy:

* :func:`iw_to_tau` subtracts the known tail ``sum_k c_k/(i w)^k``, carried by the few poles of
  :class:`solvers.tails.TailPoles`, before the (FFT) Matsubara sum
  ``G(tau) = (2/beta) Re sum_{n>=0} exp(-i w_n tau) G(i w_n)`` and adds back their exact
  imaginary-time form (for power laws that would be ``-c_1/2``, ``c_2 (2 tau - beta)/4``,
  ``c_3 tau (beta - tau)/4``, :func:`tail_tau`).
* :func:`tau_to_iw` integrates a cubic spline of ``G(tau)`` exactly against ``exp(i w_n tau)``
  (Filon-type quadrature: four real transforms, packed in two complex FFTs), whose error falls
  like ``h^4``. The jump ``G(0+) + G(beta-)`` is part of the integral, so the ``1/(i w_n)`` tail
  comes out right.

Conventions: ``G(i w_n) = int_0^beta dtau exp(i w_n tau) G(tau)``,
``G(tau) = (1/beta) sum_n exp(-i w_n tau) G(i w_n)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import get_lapack_funcs

from ._checks import check_int, check_iw_array
from .mesh import matsubara_freqs  # noqa: F401 (used by the doctests)
from .mesh import check_beta, check_betas, matsubara_freqs_many
from .tails import TailPoles, check_moments

__all__ = ["iw_to_tau", "tau_to_iw", "tail_tau", "iw_to_tau_many", "tau_to_iw_many"]


def tail_tau(tau: np.ndarray, beta: float, c1: float = 1.0, c2: float = 0.0,
             c3: float = 0.0) -> np.ndarray:
    """Imaginary-time form of ``c1/(i w_n) + c2/(i w_n)^2 + c3/(i w_n)^3`` on ``0 < tau < beta``."""
    tau = np.asarray(tau, dtype=float)
    return -c1 / 2 + c2 * (2 * tau - beta) / 4 + c3 * tau * (beta - tau) / 4


def iw_to_tau(g_iw: np.ndarray, beta: float, n_tau: int,
              tail: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """``G(tau_k)`` on the uniform mesh ``tau_k = k beta/(n_tau-1)`` from ``G(i w_n)``, ``n >= 0``.

    Args:
        g_iw: ``G(i w_n)`` for ``n = 0 .. N-1`` (negative ``n`` by ``G(-i w) = conj G(i w)``).
        beta: inverse temperature (1/D).
        n_tau: mesh points including both ends; the end values are the limits ``0+``/``beta-``.
        tail: known moments ``(c_1, c_2, ...)``, at most 6; ``c_1 = 1`` for a fermionic G. The
            error of the Matsubara sum falls like ``1/w_N^(K+1)`` for ``K`` moments.

    Example:
        >>> import numpy as np
        >>> from solvers.mesh import matsubara_freqs
        >>> wn = matsubara_freqs(10.0, 2000)
        >>> g_tau = iw_to_tau(1 / (1j * wn - 0.5), 10.0, 101, tail=(1.0, 0.5, 0.25))
        >>> bool(abs(g_tau[0] + 1 / (1 + np.exp(-5.0))) < 1e-8)
        True
    """
    beta = check_beta(beta)
    g_iw = check_iw_array(g_iw)
    n_tau = check_int("n_tau", n_tau, 2)
    c = check_moments(tail)[None, :]
    return iw_to_tau_many(g_iw[None, :], np.array([beta]), n_tau, c)[0]


def iw_to_tau_many(g_iw: np.ndarray, beta: np.ndarray, n_tau: int,
                   tail: np.ndarray) -> np.ndarray:
    """:func:`iw_to_tau` of every row of ``g_iw`` (shape ``(B, N)``), with its own ``beta`` and
    tail moments ``tail`` (shape ``(B, K)``): ``G(tau)`` of shape ``(B, n_tau)`` on the meshes
    ``tau_k = k beta_b/(n_tau-1)`` (one FFT call over the batch)."""
    beta = check_betas(beta)
    poles = TailPoles._from_moments(np.asarray(tail, dtype=float), None, np.pi / beta)
    n_rows, n_iw = g_iw.shape
    rest = g_iw - poles.iw(matsubara_freqs_many(beta, n_iw))
    m = n_tau - 1
    stride = 1
    while m * stride < n_iw:
        stride *= 2
    mm = m * stride
    s = np.fft.fft(rest, n=mm, axis=-1)      # zero-padded to mm points
    phase = _half_step_phase(mm, stride)
    vals = np.empty((n_rows, n_tau))
    vals[:, :m] = np.real(phase[:m] * s[:, ::stride])
    vals[:, m] = np.real(phase[m] * s[:, 0])  # k = mm wraps to 0
    vals *= (2.0 / beta)[:, None]
    vals += poles.tau(_tau_meshes(beta, n_tau), beta)
    return vals


def _tau_meshes(beta: np.ndarray, n_tau: int) -> np.ndarray:
    """``tau_k = k beta_b/(n_tau - 1)`` for every ``beta_b``, the last point exactly ``beta_b``
    (the values of :func:`numpy.linspace`), shape ``(B, n_tau)``."""
    tau = np.arange(n_tau)[None, :] * (beta / (n_tau - 1))[:, None]
    tau[:, -1] = beta
    return tau


@lru_cache(maxsize=32)
def _half_step_phase(mm: int, stride: int) -> np.ndarray:
    """``exp(-i pi k/mm)`` for ``k = 0, stride, .., mm`` (read-only, cached)."""
    phase = np.exp(-1j * np.pi * np.arange(0, mm + 1, stride) / mm)
    phase.flags.writeable = False
    return phase


@lru_cache(maxsize=32)
def _moment_integrals(m: int, n_iw: int) -> tuple[np.ndarray, ...]:
    """``(J_0, J_1, J_2, J_3, phase)`` of a uniform mesh of ``m`` steps, ``n < n_iw``.

    ``J_j(n) = int_0^1 s^j exp(i x_n s) ds`` with ``x_n = w_n h = (2n+1) pi/m`` (``h = beta/m``:
    the same for every ``beta``), so that ``int_0^h t^j exp(i w_n t) dt = h^(j+1) J_j(n)``;
    ``phase_k = exp(i pi k/m)`` (with ``exp(i w_n tau_k) = phase_k exp(2 pi i n k/m)``). By
    upward recursion, or by the series ``sum_m (ix)^m / (m! (m + j + 1))`` for ``|x| < 0.3``.
    Cached (read-only arrays).
    """
    x = (2 * np.arange(n_iw) + 1) * np.pi / m
    ix = 1j * x
    small = np.abs(x) < 0.3
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.exp(ix)
        j0 = (e - 1) / ix
        j1 = (e - j0) / ix
        j2 = (e - 2 * j1) / ix
        j3 = (e - 3 * j2) / ix
    out = []
    for j, val in enumerate((j0, j1, j2, j3)):
        ser = np.zeros_like(ix)
        term = np.ones_like(ix)
        for mo in range(16):
            ser = ser + term / (mo + j + 1)
            term = term * ix / (mo + 1)
        arr = np.where(small, ser, val)
        arr.flags.writeable = False
        out.append(arr)
    phase = np.exp(1j * np.pi * np.arange(m) / m)
    phase.flags.writeable = False
    return (*out, phase)


@lru_cache(maxsize=32)
def _spline_diagonals(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-, main and super-diagonal of the not-a-knot slope system of ``n`` points
    (:func:`_spline_coefficients`; read-only, cached)."""
    sub, diag, sup = np.ones(n - 1), np.full(n, 4.0), np.ones(n - 1)
    diag[0] = diag[-1] = 1.0
    sup[0] = sub[-1] = 2.0
    for a in (sub, diag, sup):
        a.flags.writeable = False
    return sub, diag, sup


def _spline_coefficients(y: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, ...]:
    """Not-a-knot cubic splines through the rows ``y_k`` (shape ``(B, m+1)``, ``m + 1 >= 4``) on
    uniform meshes of steps ``h`` (shape ``(B,)``): coefficients ``c_j[b, k]`` of ``t^j`` on
    interval ``k``, four arrays of shape ``(B, m)`` (``t`` from the interval's start).

    The slopes ``s_k`` solve ``s_(k-1) + 4 s_k + s_(k+1) = 3 (d_(k-1) + d_k)`` inside, with
    ``d_k = (y_(k+1) - y_k)/h`` and the not-a-knot ends ``s_0 + 2 s_1 = (5 d_0 + d_1)/2``,
    ``2 s_(m-1) + s_m = (d_(m-2) + 5 d_(m-1))/2`` (the system of
    :class:`scipy.interpolate.CubicSpline`, without its generic set-up cost); the matrix does
    not depend on ``h``, so one tridiagonal solve (LAPACK ``gtsv``) takes every row.
    """
    y = np.asarray(y, dtype=np.result_type(y, float))
    h = np.asarray(h, dtype=float)[:, None]
    d = np.diff(y, axis=-1) / h
    n = y.shape[1]
    rhs = np.empty((y.shape[0], n), dtype=y.dtype)   # one row per spline: rhs.T is Fortran-ordered
    np.add(d[:, :-1], d[:, 1:], out=rhs[:, 1:-1])
    rhs[:, 1:-1] *= 3.0
    rhs[:, 0] = (5.0 * d[:, 0] + d[:, 1]) / 2.0
    rhs[:, -1] = (d[:, -2] + 5.0 * d[:, -1]) / 2.0
    gtsv, = get_lapack_funcs(("gtsv",), (rhs,))
    *_, s, info = gtsv(*_spline_diagonals(n), rhs.T, overwrite_b=True)
    if info != 0:       # not reached: the matrix is diagonally dominant
        raise np.linalg.LinAlgError(f"spline slope system: LAPACK gtsv info = {info}")
    s = s.T
    t = s[:, :-1] + s[:, 1:]                 # t = (s_k + s_(k+1) - 2 d_k)/h, in place
    t -= 2.0 * d
    t /= h
    c2 = d - s[:, :-1]                       # (d_k - s_k)/h - t_k
    c2 /= h
    c2 -= t
    t /= h                                   # c3 = t_k/h
    return y[:, :-1], s[:, :-1], c2, t


def tau_to_iw(g_tau: np.ndarray, beta: float, n_iw: int) -> np.ndarray:
    """``G(i w_n) = int_0^beta exp(i w_n tau) G(tau) dtau`` from a uniform mesh, ``n = 0..n_iw-1``.

    ``g_tau`` holds ``G`` at ``tau_k = k beta/M``, ``k = 0..M`` (ends as the limits ``0+`` and
    ``beta-``). A not-a-knot cubic spline is integrated exactly; error ``O(h^4)``.

    Example:
        >>> import numpy as np
        >>> tau = np.linspace(0, 10.0, 2001)
        >>> g_tau = -np.exp(-0.5 * tau) / (1 + np.exp(-5.0))
        >>> g_iw = tau_to_iw(g_tau, 10.0, 5)
        >>> bool(np.max(np.abs(g_iw - 1 / (1j * matsubara_freqs(10.0, 5) - 0.5))) < 1e-8)
        True
    """
    beta = check_beta(beta)
    g_tau = np.asarray(g_tau)
    if g_tau.ndim != 1 or g_tau.size < 4:
        raise ValueError(f"g_tau must be 1-d with at least 4 points, got shape {g_tau.shape}")
    return tau_to_iw_many(g_tau[None, :], np.array([beta]), int(n_iw))[0]


def tau_to_iw_many(g_tau: np.ndarray, beta: np.ndarray, n_iw: int) -> np.ndarray:
    """:func:`tau_to_iw` of every row of ``g_tau`` (shape ``(B, M+1)``, row ``b`` on the mesh
    ``tau_k = k beta_b/M``): ``G(i w_n)`` of shape ``(B, n_iw)`` (one banded solve and two FFT
    calls over the batch; four for a complex ``g_tau``)."""
    beta = check_betas(beta)
    m = g_tau.shape[1] - 1
    h = beta / m
    coef = _spline_coefficients(g_tau, h)
    *unit, phase_k = _moment_integrals(m, int(n_iw))
    n = int(n_iw)
    idx = np.arange(n) % m
    out = np.zeros((g_tau.shape[0], n), dtype=complex)
    if np.iscomplexobj(coef):
        for j in range(4):
            # sum_k c_j[k] exp(i w_n tau_k) = sum_k c_j[k] e^{i pi k/m} e^{2 pi i n k/m}
            f = np.fft.ifft(coef[j] * phase_k, axis=-1) * m
            out += (h ** (j + 1))[:, None] * unit[j] * f[:, idx]
        return out
    for j in (0, 2):
        # a real c_j has F_j(m-1-n) = conj F_j(n) (F_j the sum above), so one FFT of
        # c_j + i c_(j+1) gives both transforms
        pair = np.empty(coef[j].shape, dtype=complex)
        pair.real, pair.imag = coef[j], coef[j + 1]
        pair *= phase_k
        z = np.fft.ifft(pair, axis=-1)
        z *= m
        if n <= m:
            z_n, z_mirror = z[:, :n], np.conj(z[:, m - n:][:, ::-1])
        else:
            z_n, z_mirror = z[:, idx], np.conj(z[:, m - 1 - idx])
        out += (h ** (j + 1))[:, None] * unit[j] * (0.5 * (z_n + z_mirror))
        out += (h ** (j + 2))[:, None] * unit[j + 1] * (-0.5j * (z_n - z_mirror))
    return out
