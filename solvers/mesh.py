"""Matsubara and imaginary-time meshes.

Fermionic Matsubara frequencies ``w_n = (2n+1) pi / beta`` are stored for ``n = 0 .. N-1`` only;
negative frequencies follow from ``G(-i w_n) = conj(G(i w_n))``. Imaginary time runs over
``0 <= tau <= beta``.

Accepted temperatures: ``BETA_MIN <= beta <= BETA_MAX`` (``1e-8 .. 1e8`` in ``1/D``). Outside,
the numbers stop meaning anything: below, ``w_n = (2n+1) pi/beta`` overflows to ``inf`` already
for ``n ~ 100`` at ``beta = 1e-300`` (and every energy of a model is negligible long before);
above, the Legendre transform of a pole needs ``~sqrt(beta |e| ln(1/tol))`` coefficients and a
recursion of ``~6 sqrt(beta |e|)`` steps (a million at ``beta = 1e10``), and no mesh of a solver
resolves the scales. Every toolkit function and :class:`solvers.AndersonModel` refuse such
``beta`` with a one-line ``ValueError``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["matsubara_freqs", "tau_mesh", "check_beta", "check_betas", "BETA_MIN", "BETA_MAX"]

#: Smallest and largest accepted inverse temperature (1/D); see the module docstring.
BETA_MIN = 1e-8
BETA_MAX = 1e8


def check_beta(beta: float, name: str = "beta") -> float:
    """Return ``beta`` as a float, or raise ``ValueError`` unless ``BETA_MIN <= beta <= BETA_MAX``.

    Example:
        >>> check_beta(50)
        50.0
        >>> check_beta(1e-300)
        Traceback (most recent call last):
        ...
        ValueError: beta = 1e-300 is outside the accepted range [1e-08, 1e+08] (1/D)
    """
    b = float(beta)
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {beta}")
    if not BETA_MIN <= b <= BETA_MAX:
        raise ValueError(f"{name} = {b:g} is outside the accepted range "
                         f"[{BETA_MIN:g}, {BETA_MAX:g}] (1/D)")
    return b


def check_betas(beta: np.ndarray, name: str = "beta") -> np.ndarray:
    """:func:`check_beta` for an array of inverse temperatures (one per model of a batch).

    Example:
        >>> check_betas([10, 50.0]).tolist()
        [10.0, 50.0]
    """
    b = np.asarray(beta, dtype=float)
    bad = ~((b >= BETA_MIN) & (b <= BETA_MAX))   # also NaN
    if np.any(bad):
        check_beta(b[bad].flat[0], name)
    return b


def matsubara_freqs_many(beta: np.ndarray, n_iw: int) -> np.ndarray:
    """:func:`matsubara_freqs` of every ``beta`` of a 1-d array: shape ``(len(beta), n_iw)``,
    row ``b`` equal to ``matsubara_freqs(beta[b], n_iw)``. The array is read-only, and cached per
    ``(beta, n_iw)`` up to ``2^18`` values (the solvers ask for the same meshes many times per
    call).

    Example:
        >>> np.allclose(matsubara_freqs_many([np.pi, 2 * np.pi], 2), [[1.0, 3.0], [0.5, 1.5]])
        True
    """
    b = np.asarray(beta, dtype=float)
    if b.size * int(n_iw) > _CACHED_MESH_MAX:     # large batches: built each time (memory)
        return _freqs_many.__wrapped__(b.shape, b.tobytes(), int(n_iw))
    return _freqs_many(b.shape, b.tobytes(), int(n_iw))


_CACHED_MESH_MAX = 2 ** 18    # values of a cached mesh (2 MB); at most 32 meshes are kept


@lru_cache(maxsize=32)
def _freqs_many(shape: tuple[int, ...], key: bytes, n_iw: int) -> np.ndarray:
    """:func:`matsubara_freqs_many` of the ``beta`` array stored in ``key`` (read-only)."""
    beta = check_betas(np.frombuffer(key, dtype=float).reshape(shape))
    if n_iw < 1:
        raise ValueError(f"n_iw must be >= 1, got {n_iw}")
    wn = ((2 * np.arange(n_iw) + 1) * np.pi)[None, :] / beta[:, None]
    wn.flags.writeable = False
    return wn


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
