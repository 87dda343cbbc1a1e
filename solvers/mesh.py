"""Matsubara and imaginary-time meshes.

Fermionic Matsubara frequencies ``w_n = (2n+1) pi / beta`` are stored for ``n = 0 .. N-1`` only;
negative frequencies follow from ``G(-i w_n) = conj(G(i w_n))``. Imaginary time runs over
``0 <= tau <= beta``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matsubara_freqs", "tau_mesh", "check_beta"]


def check_beta(beta: float) -> float:
    """Return ``beta`` as a float, or raise ``ValueError`` if it is not finite and positive."""
    b = float(beta)
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    return b


def matsubara_freqs(beta: float, n_iw: int) -> np.ndarray:
    """Positive fermionic Matsubara frequencies ``w_n = (2n+1) pi / beta``, ``n = 0 .. n_iw-1``.

    Args:
        beta: inverse temperature (1/D).
        n_iw: number of frequencies (>= 1).

    Returns:
        Real array ``w_n`` (units of D); multiply by ``1j`` for ``i w_n``.

    Example:
        >>> import numpy as np
        >>> np.allclose(matsubara_freqs(np.pi, 3), [1.0, 3.0, 5.0])
        True
    """
    beta = check_beta(beta)
    if int(n_iw) < 1:
        raise ValueError(f"n_iw must be >= 1, got {n_iw}")
    return (2 * np.arange(int(n_iw)) + 1) * np.pi / beta


def tau_mesh(beta: float, n_tau: int) -> np.ndarray:
    """Uniform imaginary-time mesh ``tau_k = k beta / (n_tau - 1)``, endpoints included.

    Example:
        >>> tau_mesh(2.0, 3).tolist()
        [0.0, 1.0, 2.0]
    """
    beta = check_beta(beta)
    if int(n_tau) < 2:
        raise ValueError(f"n_tau must be >= 2, got {n_tau}")
    return np.linspace(0.0, beta, int(n_tau))
