"""Sign constraints of a fermionic Green's function: ``G(tau) <= 0`` and causality.

A fermionic ``G`` has a spectral function ``A(w) >= 0``, hence (``docs/conventions.md``)

    G(tau) = -int dw A(w) exp(-tau w) / (1 + exp(-beta w)) <= 0      on [0, beta],
    Im G(i w_n) <= 0,  Im Sigma(i w_n) <= 0,  Im Delta(i w_n) <= 0    for w_n > 0.

``G(tau) <= 0`` from Legendre coefficients (:func:`g_tau_positive`) is checked at
:data:`G_TAU_CHECK_POINTS` equally spaced times, ends included (``x = 2 tau/beta - 1`` from -1 to
1), with one tolerance, :data:`G_TAU_TOL` = :data:`solvers.legendre.LEGENDRE_TOL`: the error of
``G(tau)`` a solver's truncated series may carry (largest at the ends, Boehnke et al., PRB 84,
075145 (2011)). A converged solver result therefore passes even where the exact ``G(tau)`` is
nearly zero (an insulator's ``G(beta/2) ~ exp(-beta gap/2)``), and a value above the tolerance is
a violation, not a truncation wiggle. ``G(tau)`` on the grid is linear in ``G_l``
(:func:`g_tau_on_check_grid`), so a caller moving along a line of coefficients transforms both
ends once.

``Im F(i w_n) <= 0`` of a function given on the Matsubara mesh (:func:`causal_iw`) allows
rounding of :data:`IW_CAUSALITY_RTOL` times ``max(1, max |F|)``.

Example::

    >>> import numpy as np
    >>> from solvers import g_l_from_poles
    >>> g_l = g_l_from_poles(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 10.0, 40)
    >>> bad = g_l.copy(); bad[0] += 3.0; bad[2] -= 3.0 / np.sqrt(5)   # a bump, same sum rule
    >>> g_tau_positive(np.stack([g_l, bad]), np.array([10.0, 10.0])).tolist()
    [False, True]
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .legendre import LEGENDRE_TOL, legendre_tau_basis

__all__ = ["G_TAU_TOL", "G_TAU_CHECK_POINTS", "IW_CAUSALITY_RTOL", "g_tau_on_check_grid",
           "g_tau_max", "g_tau_positive", "causal_iw"]

#: ``G(tau)`` (dimensionless, ``-1 <= G(tau) <= 0``) above this is a violation of ``G(tau) <= 0``.
G_TAU_TOL = LEGENDRE_TOL
#: Equally spaced times on ``[0, beta]`` (ends included) at which ``G(tau) <= 0`` is checked.
G_TAU_CHECK_POINTS = 201
#: ``Im F(i w_n)`` may exceed 0 by this times ``max(1, max |F|)`` (rounding) in :func:`causal_iw`.
IW_CAUSALITY_RTOL = 1e-12


@lru_cache(maxsize=8)
def _basis(n_l: int) -> np.ndarray:
    """``sqrt(2l+1) P_l(x_k)`` on the check grid, ``[G_TAU_CHECK_POINTS, n_l]`` (read-only)."""
    p = legendre_tau_basis(n_l, np.linspace(-1.0, 1.0, G_TAU_CHECK_POINTS))
    p.flags.writeable = False
    return p


def g_tau_on_check_grid(g_l: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
    """``G(tau_k) = sum_l sqrt(2l+1) P_l(x_k) G_l / beta`` at the :data:`G_TAU_CHECK_POINTS`
    check times ``tau_k = beta (x_k + 1) / 2``, ``x_k`` equally spaced on ``[-1, 1]``.

    Args:
        g_l: Legendre coefficients ``[..., n_l]`` (1/D).
        beta: inverse temperature, broadcastable to ``g_l.shape[:-1]`` (1/D).

    Returns:
        ``G(tau_k)`` ``[..., G_TAU_CHECK_POINTS]`` (dimensionless).

    Example:
        >>> g_tau_on_check_grid(np.array([-1.0]), 2.0)[[0, 100, 200]].tolist()
        [-0.5, -0.5, -0.5]
    """
    g_l = np.asarray(g_l, dtype=float)
    beta = np.asarray(beta, dtype=float)
    return (g_l @ _basis(g_l.shape[-1]).T) / beta[..., None]


def g_tau_max(g_l: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
    """The largest ``G(tau)`` on the check grid of every row (:func:`g_tau_on_check_grid`),
    shape ``g_l.shape[:-1]``.

    Example:
        >>> round(float(g_tau_max(np.array([-1.0, 0.5]), 2.0)), 6)   # -1/2 + (sqrt(3)/4) x
        -0.066987
    """
    return g_tau_on_check_grid(g_l, beta).max(axis=-1)


def g_tau_positive(g_l: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
    """Whether ``G(tau)`` from ``G_l`` is positive somewhere: ``G(tau_k) > G_TAU_TOL`` at a check
    time (module docstring), per row.

    Args:
        g_l: ``[..., n_l]`` (1/D).
        beta: broadcastable to ``g_l.shape[:-1]`` (1/D).

    Returns:
        A bool array of shape ``g_l.shape[:-1]`` (a 0-d array for one row).

    Example:
        >>> g_tau_positive(np.array([[-1.0, 0.0], [-1.0, 2.0]]), 2.0).tolist()
        [False, True]
    """
    return g_tau_max(g_l, beta) > G_TAU_TOL


def causal_iw(f_iw: np.ndarray, rtol: float = IW_CAUSALITY_RTOL) -> np.ndarray:
    """Whether ``Im F(i w_n) <= rtol max(1, max_n |F(i w_n)|)`` at every ``w_n > 0`` of a row
    (``F`` a Green's function, self-energy or hybridisation; the last axis is ``n``).

    Returns:
        A bool array of shape ``f_iw.shape[:-1]``.

    Example:
        >>> causal_iw(np.array([[-0.5j, -0.1j], [-0.5j, 0.1j]])).tolist()
        [True, False]
    """
    f_iw = np.asarray(f_iw, dtype=complex)
    scale = np.maximum(1.0, np.max(np.abs(f_iw), axis=-1))
    return np.all(f_iw.imag <= (rtol * scale)[..., None], axis=-1)
