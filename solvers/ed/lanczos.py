"""Krylov-space tools: lowest eigenpairs of a sector and Lanczos resolvents.

* :func:`lowest_states` — block Lanczos with full (twice-iterated) re-orthogonalisation and no
  restart; a block of ``p`` random start vectors resolves degeneracies up to ``p``. It stops when
  every Ritz pair below an energy cut is converged and a converged one lies above the cut.
* :func:`lanczos_poles` — the plain three-term recursion from ``|v0>`` (no
  re-orthogonalisation): the continued fraction ``<v0|(z - H)^-1|v0> = |v0|^2/(z - a_0 - b_1^2/
  (z - a_1 - ...))`` converges on the Matsubara axis long before loss of orthogonality matters;
  poles and weights come from the eigen-decomposition of the tridiagonal matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import linalg

__all__ = ["lowest_states", "lanczos_poles", "LowestStates", "ChainPoles"]


@dataclass
class LowestStates:
    """Converged low-lying eigenpairs of one sector."""

    energies: np.ndarray      # ascending
    vectors: np.ndarray       # (dim, n) orthonormal columns
    complete: bool            # every state of the sector below the cut was certified
    krylov_dim: int           # size of the Krylov basis used
    limited: bool             # stopped by max_basis before certification


def lowest_states(apply: Callable[[np.ndarray], np.ndarray], dim: int,
                  cut: Callable[[float], float], weight: Callable[[np.ndarray], np.ndarray],
                  block: int, tol: float, max_basis: int, seed: int) -> LowestStates:
    """Eigenpairs of a symmetric operator with energies up to ``cut(E_low)``.

    A Ritz pair ``(theta, y)`` counts as converged when ``min(1, weight(theta)) |H y - theta y|
    < tol``: a state enters every thermal average with its Boltzmann weight, so states near the
    edge of the window need proportionally less accuracy than the ground state.

    Args:
        apply: ``H x`` for one flattened vector ``x`` of length ``dim``.
        dim: dimension of the space.
        cut: maps the lowest Ritz value found to the energy cut (Boltzmann window).
        weight: Boltzmann weight of Ritz values (relative to the ground state).
        block: block size ``p`` (degeneracies up to ``p`` are resolved).
        tol: tolerance on the weighted residual norm.
        max_basis: limit on the Krylov basis size.
        seed: seed of the random start block.
    """
    p = min(block, dim)
    max_basis = min(max_basis, dim)
    rng = np.random.default_rng(seed)
    q = np.empty((max_basis + p, dim))
    q[:p] = linalg.qr(rng.standard_normal((dim, p)), mode="economic")[0].T
    t = np.zeros((max_basis + p, max_basis + p))
    n = p
    n_wanted = 8
    while True:
        blk = q[n - p:n]
        w = np.empty_like(blk)
        for i in range(p):
            w[i] = apply(blk[i])
        norm_in = np.linalg.norm(w, axis=1)
        c = w @ q[:n].T
        w -= c @ q[:n]
        if np.any(np.linalg.norm(w, axis=1) < 0.7 * norm_in):  # DGKS: repeat when needed
            c2 = w @ q[:n].T
            w -= c2 @ q[:n]
            c += c2
        t[n - p:n, :n] = c
        t[:n, n - p:n] = c.T
        qn, r = linalg.qr(w.T, mode="economic")
        every = max(8, n // 8)  # Ritz checks get rarer as the basis grows
        check = n >= dim or n + p > max_basis or n % every < p
        if check:
            # T is block tridiagonal (bandwidth p); full re-orthogonalisation leaves only
            # rounding outside the band, so the banded solver is exact to machine precision.
            band = np.zeros((p + 1, n))
            for d in range(p + 1):
                band[p - d, d:] = np.diagonal(t[:n, :n], offset=d)
            # only the lowest Ritz pairs matter: ask for a few more than lie below the cut
            n_want = min(n, max(16, 2 * n_wanted))
            while True:
                if n_want >= n:
                    theta, s = linalg.eig_banded(band, lower=False)
                else:
                    theta, s = linalg.eig_banded(band, lower=False, select="i",
                                                 select_range=(0, n_want - 1))
                if n_want >= n or theta[-1] > cut(theta[0]):
                    break
                n_want = min(n, 2 * n_want)
            n_wanted = int(np.sum(theta <= cut(theta[0]))) + 1
            resid = np.linalg.norm(r @ s[n - p:n, :], axis=0)
            if n >= dim:
                resid[:] = 0.0
            e_cut = cut(theta[0])
            conv = resid * np.clip(weight(theta), 1e-4, 1.0) < tol
            n_lead = int(np.argmin(conv)) if not np.all(conv) else conv.size
            certified = ((n_lead > 0 and theta[n_lead - 1] > e_cut)
                         or (n_lead == n == dim and theta.size == n))
        small = np.abs(np.diag(r)) < 1e-12 * max(1.0, float(np.max(np.abs(t[:n, :n]))))
        if check and (certified or n >= dim or n + p > max_basis):
            limited = not certified and n < dim
            # when a limit stopped the search, keep the best Ritz pairs inside the window
            n_keep = n_lead if not limited else max(n_lead, int(np.sum(theta <= e_cut)), 1)
            vec = q[:n].T @ s[:, :n_keep]
            return LowestStates(theta[:n_keep], vec,
                                complete=(n == dim and n_lead == n and theta.size == n),
                                krylov_dim=n, limited=limited)
        if np.any(small):  # deflation: replace dependent directions by fresh random ones
            fresh = rng.standard_normal((dim, int(small.sum())))
            fresh -= q[:n].T @ (q[:n] @ fresh)
            fresh -= q[:n].T @ (q[:n] @ fresh)
            qn = qn.copy()
            qn[:, small] = fresh
            qn = linalg.qr(qn, mode="economic")[0]
            r = r.copy()
            r[small, :] = 0.0
        q[n:n + p] = qn.T
        # couplings of the new block are recomputed exactly by the next projection
        n += p


@dataclass
class ChainPoles:
    """Poles of ``<v0|(z - H)^-1|v0> = sum_j weights[j] / (z - energies[j])``."""

    energies: np.ndarray
    weights: np.ndarray
    steps: int
    converged: bool


def lanczos_poles(apply: Callable[[np.ndarray], np.ndarray], v0: np.ndarray,
                  z_check: np.ndarray, scale: float, tol: float, max_steps: int,
                  check_every: int = 6) -> ChainPoles:
    """Lanczos chain from ``v0`` until its resolvent is converged on the shifts ``z_check``.

    The chain stops when ``s |R_m(z) - R_{m-c}(z)| < tol max(1, s |R_m(z)|)`` on every checked
    shift (``s = scale |v0|^2``, ``c = check_every``), when the Krylov space is exhausted
    (``b_m ~ 0`` or ``m = dim``: exact), or at ``max_steps`` (then ``converged`` is False).
    """
    v = np.ravel(v0).astype(float, copy=True)
    norm2 = float(v @ v)
    if norm2 == 0.0:
        return ChainPoles(np.zeros(0), np.zeros(0), 0, True)
    dim = v.size
    max_steps = min(max_steps, dim)
    v /= np.sqrt(norm2)
    v_prev = np.zeros_like(v)
    a = np.zeros(max_steps)
    b = np.zeros(max_steps)
    last = None
    converged = False
    b_prev = 0.0
    m = 0
    for j in range(max_steps):
        w = apply(v)
        aj = float(v @ w)
        w -= aj * v
        if j:
            w -= b_prev * v_prev
        bj = float(np.sqrt(w @ w))
        a[j] = aj
        m = j + 1
        if bj <= 1e-13 * max(1.0, abs(aj)):
            converged = True
            break
        b[j] = bj
        if m % check_every == 0:
            f = z_check - a[m - 1]
            for i in range(m - 2, -1, -1):
                f = z_check - a[i] - b[i] ** 2 / f
            r = 1.0 / f
            if last is not None:
                size = scale * norm2 * np.max(np.abs(r))
                if scale * norm2 * np.max(np.abs(r - last)) < tol * max(1.0, size):
                    converged = True
                    break
            last = r
        v_prev = v
        v = w / bj
        b_prev = bj
    if m == dim:  # the Krylov space spans the whole sector: the resolvent is complete
        converged = True
    e, u = linalg.eigh_tridiagonal(a[:m], b[:m - 1])
    return ChainPoles(e, norm2 * u[0] ** 2, m, converged)
