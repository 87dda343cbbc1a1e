"""Fourier transforms between imaginary time (uniform mesh) and Matsubara frequencies.

Both directions treat the high-frequency tail analytically, so the discontinuity of a fermionic
function at ``tau = 0, beta`` costs no accuracy:

* :func:`iw_to_tau` subtracts ``c_1/(i w) + c_2/(i w)^2 + c_3/(i w)^3`` before the (FFT) Matsubara
  sum and adds back their exact imaginary-time forms ``-c_1/2``, ``c_2 (2 tau - beta)/4``,
  ``c_3 tau (beta - tau)/4``.
* :func:`tau_to_iw` integrates a cubic spline of ``G(tau)`` exactly against ``exp(i w_n tau)``
  (Filon-type quadrature with four FFTs), whose error falls like ``h^4``. The jump
  ``G(0+) + G(beta-)`` is part of the integral, so the ``1/(i w_n)`` tail comes out right.

Conventions: ``G(i w_n) = int_0^beta dtau exp(i w_n tau) G(tau)``,
``G(tau) = (1/beta) sum_n exp(-i w_n tau) G(i w_n)``.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from .mesh import check_beta, matsubara_freqs

__all__ = ["iw_to_tau", "tau_to_iw", "tail_tau"]


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
        tail: known moments ``(c_1[, c_2[, c_3]])``; ``c_1 = 1`` for a fermionic G.

    Example:
        >>> import numpy as np
        >>> from solvers.mesh import matsubara_freqs
        >>> wn = matsubara_freqs(10.0, 2000)
        >>> g_tau = iw_to_tau(1 / (1j * wn - 0.5), 10.0, 101, tail=(1.0, 0.5, 0.25))
        >>> bool(abs(g_tau[0] + 1 / (1 + np.exp(-5.0))) < 1e-8)
        True
    """
    beta = check_beta(beta)
    g_iw = np.asarray(g_iw, dtype=complex)
    if g_iw.ndim != 1:
        raise ValueError(f"g_iw must be 1-d, got shape {g_iw.shape}")
    if n_tau < 2:
        raise ValueError(f"n_tau must be >= 2, got {n_tau}")
    c = list(tail) + [0.0] * (3 - len(tail))
    n_iw = g_iw.size
    iw = 1j * matsubara_freqs(beta, n_iw)
    rest = g_iw - c[0] / iw - c[1] / iw ** 2 - c[2] / iw ** 3
    m = n_tau - 1
    stride = 1
    while m * stride < n_iw:
        stride *= 2
    mm = m * stride
    padded = np.zeros(mm, dtype=complex)
    padded[:n_iw] = rest
    k = np.arange(mm + 1)
    s = np.fft.fft(padded)
    s = np.concatenate([s, s[:1]])  # k = mm wraps to 0
    vals = (2.0 / beta) * np.real(np.exp(-1j * np.pi * k / mm) * s)
    tau = beta * k / mm
    return (vals + tail_tau(tau, beta, *c))[::stride]


def _moment_integrals(x: np.ndarray, h: float) -> list[np.ndarray]:
    """``I_j = int_0^h t^j exp(i w t) dt`` for ``j = 0..3`` with ``x = w h`` (series at small x)."""
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
        # series: int_0^1 s^j e^{i x s} ds = sum_m (ix)^m / (m! (m + j + 1))
        ser = np.zeros_like(ix)
        term = np.ones_like(ix)
        for mo in range(16):
            ser = ser + term / (mo + j + 1)
            term = term * ix / (mo + 1)
        out.append(np.where(small, ser, val) * h ** (j + 1))
    return out


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
    m = g_tau.size - 1
    h = beta / m
    tau = np.linspace(0.0, beta, m + 1)
    spline = CubicSpline(tau, g_tau)
    coef = spline.c[::-1]  # (4, m): coefficients of t^0..t^3 on each interval
    wn = matsubara_freqs(beta, n_iw)
    moments = _moment_integrals(wn * h, h)
    k = np.arange(m)
    n = np.arange(n_iw)
    phase_k = np.exp(1j * np.pi * k / m)
    out = np.zeros(n_iw, dtype=complex)
    for j in range(4):
        # sum_k c_j[k] exp(i w_n tau_k) = sum_k c_j[k] e^{i pi k/m} e^{2 pi i n k/m}
        f = np.fft.ifft(coef[j] * phase_k) * m
        out += moments[j] * f[n % m]
    return out
