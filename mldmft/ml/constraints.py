"""Physics constraints on predicted Legendre coefficients: the sum rule and particle-hole maps.

Sum rule (``docs/conventions.md``): ``G(0+) + G(beta-) = -1`` reads, with ``P_l(+-1) = (+-1)^l``,

    s . G = sum_{l even} 2 sqrt(2l+1) G_l = -beta,     s_l = 2 sqrt(2l+1) (l even), 0 (l odd).

:func:`project_sum_rule` moves a predicted ``G`` to the nearest point of that hyperplane in the
Euclidean norm of the coefficients (the orthogonal projection)::

    G' = G + s (-beta - s . G) / (s . s)

Only even coefficients change. Because ``sum_l G_l^2 / beta^2`` is the mean square of ``G(tau)``
over ``[0, beta]`` (orthogonality of ``sqrt(2l+1) P_l``), this is also the smallest change of
``G(tau)`` in the ``L2`` norm; and since the exact ``G`` lies on the hyperplane, the projection
can only bring a prediction closer to it (Pythagoras): ``|G' - G_exact| <= |G - G_exact|``.

Particle-hole map ``(eps_d, eps_k, V_k) -> (-eps_d - U, -eps_k, V_k)``: ``G_l -> (-1)^l G_l``
(:func:`ph_sign`). It leaves the even coefficients, hence the sum rule, unchanged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sum_rule_vector", "sum_rule_residual", "project_sum_rule", "ph_sign"]


def sum_rule_vector(n_l: int) -> np.ndarray:
    """``s_l = 2 sqrt(2l+1)`` for even ``l``, 0 for odd ``l`` (``l < n_l``)."""
    l = np.arange(int(n_l))
    return np.where(l % 2 == 0, 2.0 * np.sqrt(2 * l + 1.0), 0.0)


def sum_rule_residual(g_l: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
    """``(s . G + beta) / beta`` = ``G(0+) + G(beta-) + 1``; zero for an exact fermion ``G``.

    Example:
        >>> import numpy as np
        >>> float(sum_rule_residual(np.array([-1.0, 0.3]), 2.0))   # G(tau) = -1/2 + odd part
        0.0
    """
    g_l = np.asarray(g_l, dtype=float)
    beta = np.asarray(beta, dtype=float)
    return (g_l @ sum_rule_vector(g_l.shape[-1]) + beta) / beta


def project_sum_rule(g_l: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
    """Orthogonal projection of ``G_l`` onto ``sum_{l even} 2 sqrt(2l+1) G_l = -beta``.

    Args:
        g_l: coefficients, shape ``[..., n_l]`` (units 1/D).
        beta: inverse temperature, broadcastable to ``g_l.shape[:-1]`` (units 1/D).

    Returns:
        The projected coefficients (a new array); odd ``l`` are unchanged.

    Example:
        >>> import numpy as np
        >>> g = project_sum_rule(np.array([-0.9, 0.1, 0.05]), 2.0)
        >>> round(float(sum_rule_residual(g, 2.0)), 14), float(g[1])
        (0.0, 0.1)
    """
    g_l = np.asarray(g_l, dtype=float)
    beta = np.asarray(beta, dtype=float)
    s = sum_rule_vector(g_l.shape[-1])
    lam = (-beta - g_l @ s) / (s @ s)
    return g_l + np.asarray(lam)[..., None] * s


def ph_sign(n_l: int) -> np.ndarray:
    """``(-1)^l`` for ``l < n_l``: the particle-hole map of Legendre coefficients."""
    return (-1.0) ** np.arange(int(n_l))
