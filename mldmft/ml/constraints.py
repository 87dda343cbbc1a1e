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

Causality (:func:`causality_violation`, :func:`project_causal`). A fermionic ``G`` has
``G(tau) <= 0`` on ``[0, beta]`` and a self-energy with ``Im Sigma(i w_n) <= 0`` (``w_n > 0``),
``Sigma(i w_n) = i w_n - eps_d - Delta(i w_n) - 1/G(i w_n)``. Both are checked on
``G(i w_n) = sum_l T_nl G_l`` (exact Matsubara transform), ``Delta(i w_n)`` from ``Delta_l`` the
same way, at ``n < 32`` and 24 geometrically spaced frequencies up to ``w_n = 40 D`` (beyond,
the rounding error of ``1/G`` grows like ``w_n^2``), and ``G(tau)`` on the check grid of
:func:`solvers.g_tau_on_check_grid` (201 points). A row whose prediction violates either by more
than half its tolerance (``TOL_SIGMA = 1e-7 D``; ``TOL_TAU = solvers.G_TAU_TOL = 1e-6``, the
tolerance of :func:`solvers.g_tau_positive`, which the DMFT guard uses too) is moved back toward
the base solver's causal result along the straight line

    G(a) = G_base + a (G_pred - G_base),      a = the largest value in [0, 1] that is causal

(bisection, 30 steps; ``G(i w_n)`` and ``G(tau)`` are linear in ``a``, so both ends are
transformed once and each step is element-wise). "Causal" here means within half the tolerances, both to
select the rows and as the bisection's target: rounding in later steps cannot cross the full
tolerances, and the projected ``G`` is a continuous function of the prediction (a row just past
the threshold moves by as little as it is past it), so a DMFT loop through it keeps a fixed
point; with a target stricter than the selection a prediction hovering at the threshold jumps
between the two, and the loop cycles without converging. ``G(a)`` keeps the sum rule (both ends
satisfy it) and the particle-hole equivariance of the averaged prediction (the conditions are
particle-hole invariant: ``G(tau) -> G(beta - tau)``, ``Im Sigma -> Im Sigma``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from solvers import (density_from_g_l, dyson_sigma, g0_inverse_iw, legendre_sign,
                     legendre_t_matrix, sum_rule_from_l, sum_rule_vector)
from solvers.causality import G_TAU_TOL, g_tau_on_check_grid

__all__ = ["sum_rule_vector", "sum_rule_residual", "project_sum_rule", "ph_sign",
           "density_from_g_l_rows",
           "causality_violation", "project_causal", "TOL_SIGMA", "TOL_TAU"]

#: ``Im Sigma(i w_n)`` above this (units of D) is acausal.
TOL_SIGMA = 1e-7
#: ``G(tau)`` above this is acausal (:data:`solvers.G_TAU_TOL`).
TOL_TAU = G_TAU_TOL
_N_LOW, _N_GEOM, _N_IW, _W_MAX = 32, 24, 1024, 40.0


def sum_rule_residual(g_l: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
    """``(s . G + beta) / beta`` = ``G(0+) + G(beta-) + 1``; zero for an exact fermion ``G``.

    Example:
        >>> import numpy as np
        >>> float(sum_rule_residual(np.array([-1.0, 0.3]), 2.0))   # G(tau) = -1/2 + odd part
        0.0
    """
    return sum_rule_from_l(np.asarray(g_l, dtype=float), beta) + 1.0


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


def density_from_g_l_rows(g_l: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Total density ``-2 G(beta-)`` of every row: both spins of :func:`solvers.density_from_g_l`."""
    return 2.0 * density_from_g_l(np.asarray(g_l, dtype=float), beta)


def ph_sign(n_l: int) -> np.ndarray:
    """``(-1)^l`` for ``l < n_l`` (:func:`solvers.legendre_sign`): the particle-hole map of
    Legendre coefficients."""
    return legendre_sign(n_l)


@lru_cache(maxsize=4)
def _check_matrices(n_l: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequency indices and ``T_nl`` at them."""
    idx = np.unique(np.concatenate([np.arange(_N_LOW), np.geomspace(_N_LOW, _N_IW - 1,
                                                                    _N_GEOM).astype(int)]))
    return idx, legendre_t_matrix(_N_IW, n_l)[idx]


def _on_check_points(g_l: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G(i w_n)`` at the checked frequencies and ``G(tau)`` on the check grid of
    :func:`solvers.g_tau_on_check_grid` of ``G_l`` rows (both linear in ``G_l``)."""
    return g_l @ _check_matrices(g_l.shape[-1])[1].T, g_tau_on_check_grid(g_l, beta)


def _check_wn(beta: np.ndarray) -> np.ndarray:
    """The checked Matsubara frequencies of every row, ``[n, n_freq]``."""
    idx = _check_matrices(1)[0]          # the frequencies do not depend on n_l
    return (2 * idx[None, :] + 1) * np.pi / beta[:, None]


def _violation(g_iw: np.ndarray, g_tau: np.ndarray, wn: np.ndarray, eps_d: np.ndarray,
               delta_iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``Im Sigma(i w_n)`` and ``G(tau)`` from ``G`` on the check points."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = dyson_sigma(g0_inverse_iw(wn, eps_d, delta_iw), g_iw)
    im = np.where(wn <= _W_MAX, sigma.imag, -np.inf)
    im = np.where(np.isnan(im), np.inf, im)  # 1/G undefined: not causal
    return im.max(axis=-1), g_tau.max(axis=-1)


def causality_violation(g_l: np.ndarray, beta: np.ndarray, eps_d: np.ndarray,
                        delta_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``Im Sigma(i w_n)`` and largest ``G(tau)`` of every row (see the module docstring).

    Args:
        g_l: ``G_l`` ``[..., n, n_l]`` (1/D).
        beta, eps_d: ``[n]``.
        delta_l: Legendre coefficients of ``Delta(tau)`` ``[n, n_l']`` (``n_l' >= n_l`` used).

    Returns:
        ``(max_im_sigma [..., n], max_g_tau [..., n])``; a row is causal when
        ``max_im_sigma <= TOL_SIGMA`` and ``max_g_tau <= TOL_TAU``.
    """
    g_l = np.asarray(g_l, dtype=float)
    beta = np.asarray(beta, dtype=float)
    n_l = g_l.shape[-1]
    g_iw, g_tau = _on_check_points(g_l, beta)
    delta_iw = np.asarray(delta_l, dtype=float)[:, :n_l] @ _check_matrices(n_l)[1].T
    return _violation(g_iw, g_tau, _check_wn(beta), eps_d, delta_iw)


#: The projection selects and aims at this fraction of the tolerances (module docstring).
_MARGIN = 0.5


def _causal(g_l, beta, eps_d, delta_l, margin: float = 1.0) -> np.ndarray:
    im, gt = causality_violation(g_l, beta, eps_d, delta_l)
    return (im <= margin * TOL_SIGMA) & (gt <= margin * TOL_TAU)


def project_causal(g_l: np.ndarray, base_g_l: np.ndarray, beta: np.ndarray, eps_d: np.ndarray,
                   delta_l: np.ndarray, steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Move acausal rows of ``g_l`` toward ``base_g_l`` until causal (module docstring).

    Returns:
        ``(g_l', a)``: the projected coefficients ``[n, n_l]`` and the step ``a`` per row (1 for
        rows that were causal; 0 where even the base is not, which then returns the base).

    Example:
        >>> import numpy as np
        >>> from solvers import g_l_from_poles
        >>> beta, n_l = np.array([10.0]), 40
        >>> base = g_l_from_poles(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 10.0, n_l)[None]
        >>> bad = base.copy(); bad[0, 0] += 3.0; bad[0, 2] -= 3.0 / np.sqrt(5)  # G(tau) > 0 somewhere
        >>> g, a = project_causal(bad, base, beta, np.array([0.0]), np.zeros((1, n_l)))
        >>> bool(0 < a[0] < 1), bool(_causal(g, beta, np.array([0.0]), np.zeros((1, n_l)))[0])
        (True, True)
    """
    g_l = np.asarray(g_l, dtype=float)
    base_g_l = np.asarray(base_g_l, dtype=float)[:, :g_l.shape[-1]]
    beta = np.asarray(beta, dtype=float)
    eps_d = np.asarray(eps_d, dtype=float)
    a = np.ones(g_l.shape[0])
    bad = ~_causal(g_l, beta, eps_d, delta_l, margin=_MARGIN)
    if not bad.any():
        return g_l, a
    rows = np.flatnonzero(bad)
    d_g = g_l[rows] - base_g_l[rows]
    # G(a) = G_base + a dG is linear in a, and so are G(i w_n) and G(tau): transform both ends
    # once, then each bisection step is element-wise
    b_sub, e_sub = beta[rows], eps_d[rows]
    base_iw, base_tau = _on_check_points(base_g_l[rows], b_sub)
    d_iw, d_tau = _on_check_points(d_g, b_sub)
    delta_iw = np.asarray(delta_l, dtype=float)[rows, :g_l.shape[-1]] @ _check_matrices(
        g_l.shape[-1])[1].T
    wn = _check_wn(b_sub)
    lo, hi = np.zeros(rows.size), np.ones(rows.size)
    for _ in range(int(steps)):
        mid = 0.5 * (lo + hi)
        im, gt = _violation(base_iw + mid[:, None] * d_iw, base_tau + mid[:, None] * d_tau,
                            wn, e_sub, delta_iw)
        ok = (im <= _MARGIN * TOL_SIGMA) & (gt <= _MARGIN * TOL_TAU)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    out = g_l.copy()
    out[rows] = base_g_l[rows] + lo[:, None] * d_g
    a[rows] = lo
    return out, a
