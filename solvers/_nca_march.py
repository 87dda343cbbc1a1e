"""Time stepping of the NCA pseudo-particle equations (private helper of :mod:`solvers.nca`).

The three distinct pseudo-particle propagators (empty ``0``, singly occupied ``1`` -- one per
spin, equal by paramagnetism -- and doubly occupied ``2``) are stored as rows of an array
``R[a, k] = R_a(tau_k)`` on the uniform mesh ``tau_k = k h``. Each obeys::

    dR_a/dtau = -E_a R_a(tau) + C_a(tau),   C_a(tau) = int_0^tau S_a(tau - s) R_a(s) ds,
    R_a(0) = 1,

with the NCA self-energies (``Dp(tau) = -Delta(tau)``, ``Dm(tau) = -Delta(beta - tau)``, both >= 0)::

    S_0 = 2 Dm R_1,    S_1 = Dp R_0 + Dm R_2,    S_2 = 2 Dp R_1.

Discretisation (second order in ``h``):

* ODE part: exponential time differencing with ``C`` interpolated linearly over each step,
  ``R_n = exp(-z) R_{n-1} + h (w_old(z) C_{n-1} + w_new(z) C_n)``, ``z = E h``; the free
  propagation ``exp(-E tau)`` is integrated exactly, so ``S = 0`` gives the atomic ``R`` exactly.
* Convolution ``C_n``: trapezoid rule over ``s = t_0 .. t_n``.

``S_a(t_n)`` depends on ``R_b(t_n)`` of the same step and ``C_n`` on ``S_a(t_n) R_a(0)`` and
``S_a(0) R_a(t_n)``, so each step is a 3x3 linear system in ``R_a(t_n)`` (solved in closed form):
one forward sweep solves the discretised self-consistent equations exactly ("march"). With a
given kernel (``S`` built from a previous iterate) each step is diagonal instead ("iterate").
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["march", "kernels_from_r", "atomic_r"]

_GROWTH_LIMIT = 1e100   # rescale by exp(-mu tau) when some R exceeds this (overflow guard)
_CHECK_EVERY = 16       # steps between overflow checks


def _etd_coefficients(z: float) -> tuple[float, float, float]:
    """``exp(-z)``, ``w_old = int_0^1 y e^{-z y} dy`` and ``w_new = int_0^1 (1-y) e^{-z y} dy``.

    They weight ``C_{n-1}`` and ``C_n`` in ``R_n = e^{-z} R_{n-1} + h (w_old C_{n-1} + w_new C_n)``;
    ``w_old = w_new = 1/2`` at ``z = 0``. A Taylor series is used for ``|z| < 0.5``.
    """
    if abs(z) < 0.5:
        w_old = w_new = 0.0
        term = 1.0  # (-z)^k / k!
        for k in range(18):
            w_old += term / (k + 2)
            w_new += term / ((k + 1) * (k + 2))
            term *= -z / (k + 1)
        return math.exp(-z), w_old, w_new
    if z > 700.0:  # exp(-z) underflows: the limits of the closed forms
        return 0.0, 1.0 / z ** 2, (z - 1.0) / z ** 2
    e = math.exp(-z)
    return e, (1.0 - e * (1.0 + z)) / z ** 2, (z - 1.0 + e) / z ** 2


def atomic_r(energies: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Atomic propagators ``R_a(tau) = exp(-E_a tau)``, shape ``(3, len(tau))``."""
    return np.exp(-np.outer(energies, tau))


def kernels_from_r(r: np.ndarray, dp: np.ndarray, dm: np.ndarray) -> np.ndarray:
    """NCA self-energies ``S_a(tau)`` from propagators ``r`` (shape ``(3, N)``)."""
    return np.stack([2.0 * dm * r[1], dp * r[0] + dm * r[2], 2.0 * dp * r[1]])


def march(energies: np.ndarray, dp: np.ndarray, dm: np.ndarray, h: float,
          kernel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Solve the pseudo-particle equations by one forward sweep over the mesh.

    Args:
        energies: shifted atomic energies ``(E_0, E_1, E_2)`` (units of D).
        dp: ``Dp(tau_k) = -Delta(tau_k)`` on the mesh (length ``N``).
        dm: ``Dm(tau_k) = -Delta(beta - tau_k)``.
        h: mesh spacing ``beta / (N - 1)``.
        kernel: ``S_a(tau_k)`` (shape ``(3, N)``) from a previous iterate; ``None`` builds ``S``
            from the propagators being computed (the self-consistent sweep).

    Returns:
        ``(R, energies)``: the propagators (shape ``(3, N)``) and the energies they belong to.
        If some ``R`` grew beyond ``1e100`` the solution was continued in the frame
        ``R -> exp(-mu tau) R``, which is the same equation with ``E_a -> E_a + mu`` (and
        ``S(tau) -> exp(-mu tau) S(tau)``); the returned energies include every such ``mu``. A
        given ``kernel`` is then rescaled the same way (on a copy).
    """
    n_pts = dp.size
    energies = np.array(energies, dtype=float)
    r = np.empty((3, n_pts))
    r[:, 0] = 1.0
    # sig_rev[a, N-1-k] = S_a(tau_k): history sums become dot products of contiguous slices
    sig_rev = np.zeros((3, n_pts))
    fixed = kernel is not None
    if fixed:
        sig_rev[:] = kernel[:, ::-1]
    dp_l, dm_l = dp.tolist(), dm.tolist()
    s0 = (2.0 * dm_l[0], dp_l[0] + dm_l[0], 2.0 * dp_l[0]) if not fixed else \
        tuple(float(x) for x in kernel[:, 0])
    if not fixed:
        sig_rev[:, n_pts - 1] = s0

    def coefficients() -> tuple:
        out = []
        for a in range(3):
            dec, w_old, w_new = _etd_coefficients(energies[a] * h)
            c = 0.5 * h * h * w_new
            out.append((dec, h * w_old, h * h * w_new, c, 1.0 - c * s0[a]))
        return tuple(out)

    (dec0, wo0, wn0, c0, d0), (dec1, wo1, wn1, c1, d1), (dec2, wo2, wn2, c2, d2) = coefficients()
    x0 = x1 = x2 = 1.0
    cp0 = cp1 = cp2 = 0.0   # C_a(t_{n-1})
    ra0, ra1, ra2 = r[0], r[1], r[2]
    sr0, sr1, sr2 = sig_rev[0], sig_rev[1], sig_rev[2]
    dot = np.dot
    for n in range(1, n_pts):
        if n > 1:
            lo = n_pts - n
            hi = n_pts - 1
            h0 = dot(sr0[lo:hi], ra0[1:n])
            h1 = dot(sr1[lo:hi], ra1[1:n])
            h2 = dot(sr2[lo:hi], ra2[1:n])
        else:
            h0 = h1 = h2 = 0.0
        b0 = dec0 * x0 + wo0 * cp0 + wn0 * h0
        b1 = dec1 * x1 + wo1 * cp1 + wn1 * h1
        b2 = dec2 * x2 + wo2 * cp2 + wn2 * h2
        k = n_pts - 1 - n
        if fixed:
            sn0, sn1, sn2 = sr0[k], sr1[k], sr2[k]
            x0 = (b0 + c0 * sn0) / d0
            x1 = (b1 + c1 * sn1) / d1
            x2 = (b2 + c2 * sn2) / d2
        else:
            p, m = dp_l[n], dm_l[n]
            # d0 x0 - 2 c0 m x1 = b0;  d1 x1 - c1 (p x0 + m x2) = b1;  d2 x2 - 2 c2 p x1 = b2
            x1 = ((b1 + c1 * p * b0 / d0 + c1 * m * b2 / d2)
                  / (d1 - 2.0 * c1 * p * m * (c0 / d0 + c2 / d2)))
            x0 = (b0 + 2.0 * c0 * m * x1) / d0
            x2 = (b2 + 2.0 * c2 * p * x1) / d2
            sn0, sn1, sn2 = 2.0 * m * x1, p * x0 + m * x2, 2.0 * p * x1
            sr0[k], sr1[k], sr2[k] = sn0, sn1, sn2
        ra0[n], ra1[n], ra2[n] = x0, x1, x2
        # C_a(t_n) = h [S_a(t_n)/2 + history + S_a(0) R_a(t_n)/2]
        cp0 = h * (0.5 * sn0 + h0 + 0.5 * s0[0] * x0)
        cp1 = h * (0.5 * sn1 + h1 + 0.5 * s0[1] * x1)
        cp2 = h * (0.5 * sn2 + h2 + 0.5 * s0[2] * x2)
        if n % _CHECK_EVERY == 0:
            big = max(x0, x1, x2)
            if big > _GROWTH_LIMIT:
                mu = math.log(big) / (n * h)
                t = h * np.arange(n_pts)
                scale = np.exp(-mu * t)
                r[:, :n + 1] *= scale[:n + 1]
                if fixed:
                    sig_rev *= scale[::-1]
                else:
                    sig_rev[:, n_pts - 1 - n:] *= scale[n::-1]
                f = math.exp(-mu * n * h)
                x0, x1, x2 = x0 * f, x1 * f, x2 * f
                cp0, cp1, cp2 = cp0 * f, cp1 * f, cp2 * f
                energies = energies + mu
                (dec0, wo0, wn0, c0, d0), (dec1, wo1, wn1, c1, d1), \
                    (dec2, wo2, wn2, c2, d2) = coefficients()
    return r, energies
