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

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import linalg
from scipy.linalg.blas import daxpy as _daxpy
from scipy.linalg.blas import dscal as _dscal

__all__ = ["lowest_states", "lanczos_poles", "lanczos_poles_many", "LowestStates",
           "ChainPoles"]


def refill_deflated(basis: np.ndarray, qn: np.ndarray, r: np.ndarray, small: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Block-Lanczos deflation: replace the columns ``small`` of the new block ``qn`` (linearly
    dependent on the ``basis`` rows) by fresh random directions orthogonal to the basis, and zero
    their couplings in ``r``. Returns the new ``(qn, r)``."""
    fresh = rng.standard_normal((basis.shape[1], int(small.sum())))
    for _ in range(2):
        fresh -= basis.T @ (basis @ fresh)
    qn = qn.copy()
    qn[:, small] = fresh
    qn = linalg.qr(qn, mode="economic")[0]
    r = r.copy()
    r[small, :] = 0.0
    return qn, r


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
                if p == 1 and n > 1:  # tridiagonal: bisection + inverse iteration, O(n n_want)
                    theta, s = linalg.eigh_tridiagonal(
                        band[1], band[0, 1:], select="i",
                        select_range=(0, min(n_want, n) - 1))
                elif n_want >= n:
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
        if np.any(small):
            qn, r = refill_deflated(q[:n], qn, r, small, rng)
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
    ``R_m = E_m / D_m`` is followed by the forward three-term recurrences of the determinants
    ``D_j = det(z - T_j)`` and ``E_j`` (the same without the first row and column), rescaled as
    they go, so a check costs ``O(check_every)`` small vector operations.
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
    z = np.asarray(z_check, dtype=complex)
    d_prev, d_cur = np.zeros_like(z), np.ones_like(z)   # D_{j-1}, D_j (j = 0)
    e_prev, e_cur = np.zeros_like(z), np.zeros_like(z)  # E_{j-1}, E_j (E_1 = 1)
    done = 0          # coefficients folded into the determinants
    last = None
    converged = False
    b_prev = 0.0
    m = 0
    s_norm = scale * norm2
    for j in range(max_steps):
        w = apply(v)
        aj = float(v @ w)
        _daxpy(v, w, a=-aj)  # in place, no temporaries
        if j:
            _daxpy(v_prev, w, a=-b_prev)
        bj = math.sqrt(float(w @ w))
        a[j] = aj
        m = j + 1
        if bj <= 1e-13 * max(1.0, abs(aj)):
            converged = True
            break
        b[j] = bj
        if m % check_every == 0:
            for i in range(done, m):
                c2 = b[i - 1] ** 2 if i else 0.0
                d_next = (z - a[i]) * d_cur - c2 * d_prev
                e_next = (z - a[i]) * e_cur - c2 * e_prev if i else np.ones_like(z)
                d_prev, d_cur, e_prev, e_cur = d_cur, d_next, e_cur, e_next
                big = np.abs(d_cur)
                d_prev, d_cur, e_prev, e_cur = d_prev / big, d_cur / big, e_prev / big, \
                    e_cur / big
            done = m
            r = e_cur / d_cur
            if last is not None:
                size = s_norm * np.max(np.abs(r))
                if s_norm * np.max(np.abs(r - last)) < tol * max(1.0, size):
                    converged = True
                    break
            last = r
        v_prev = v
        v = _dscal(1.0 / bj, w)
        b_prev = bj
    if m == dim:  # the Krylov space spans the whole sector: the resolvent is complete
        converged = True
    e, u = linalg.eigh_tridiagonal(a[:m], b[:m - 1])
    return ChainPoles(e, norm2 * u[0] ** 2, m, converged)



def lanczos_poles_many(apply_cols: Callable[[np.ndarray], np.ndarray], v0: np.ndarray,
                       z_check: np.ndarray, scale: np.ndarray, tol: float, max_steps: int,
                       check_every: int = 6) -> list[ChainPoles]:
    """:func:`lanczos_poles` for many chains advanced in lockstep (same stopping rule per
    chain), for small sectors where per-call overhead, not memory traffic, dominates.

    Args:
        apply_cols: ``H X`` for a block ``X`` of shape ``(dim, k)`` (chains along columns).
        v0: start vectors ``(dim, k)``.
        z_check: shifts ``(k, n_z)`` of each chain.
        scale: ``(k,)`` weights of the chains (see :func:`lanczos_poles`).
    """
    dim, k = v0.shape
    out: list[ChainPoles | None] = [None] * k
    norm2 = np.einsum("ij,ij->j", v0, v0)
    live = np.nonzero(norm2 > 0.0)[0]
    for i in np.nonzero(norm2 == 0.0)[0]:
        out[i] = ChainPoles(np.zeros(0), np.zeros(0), 0, True)
    if live.size == 0:
        return out
    max_steps = min(max_steps, dim)
    v = v0[:, live] / np.sqrt(norm2[live])
    v_prev = np.zeros_like(v)
    z = np.asarray(z_check, dtype=complex)[live]
    s_norm = np.asarray(scale, dtype=float)[live] * norm2[live]
    nrm2 = norm2[live]
    idx = live.copy()
    n = idx.size
    a = np.zeros((n, max_steps))
    b = np.zeros((n, max_steps))
    d_prev, d_cur = np.zeros_like(z), np.ones_like(z)
    e_prev, e_cur = np.zeros_like(z), np.zeros_like(z)
    last = None
    done = 0
    b_prev = np.zeros(n)

    def finish(rows: np.ndarray, m: int, converged: bool) -> None:
        for r in rows:
            e, u = linalg.eigh_tridiagonal(a[r, :m], b[r, :m - 1])
            out[idx[r]] = ChainPoles(e, nrm2[r] * u[0] ** 2, m, converged or m == dim)

    for j in range(max_steps):
        w = apply_cols(v)
        aj = np.einsum("ij,ij->j", v, w)
        w -= v * aj
        if j:
            w -= v_prev * b_prev
        bj = np.sqrt(np.einsum("ij,ij->j", w, w))
        a[:, j] = aj
        b[:, j] = bj
        m = j + 1
        finished = bj <= 1e-13 * np.maximum(1.0, np.abs(aj))  # invariant subspace: exact
        if m % check_every == 0:
            for i in range(done, m):
                c2 = (b[:, i - 1] ** 2)[:, None] if i else 0.0
                d_next = (z - a[:, i:i + 1]) * d_cur - c2 * d_prev
                e_next = ((z - a[:, i:i + 1]) * e_cur - c2 * e_prev) if i else np.ones_like(z)
                big = np.abs(d_next)
                d_prev, d_cur = d_cur / big, d_next / big
                e_prev, e_cur = e_cur / big, e_next / big
            done = m
            r = e_cur / d_cur
            if last is not None:
                size = s_norm * np.max(np.abs(r), axis=1)
                finished |= (s_norm * np.max(np.abs(r - last), axis=1)
                             < tol * np.maximum(1.0, size))
            last = r
        if m == max_steps:
            finish(np.nonzero(finished)[0], m, True)
            finish(np.nonzero(~finished)[0], m, False)
            break
        if np.any(finished):
            finish(np.nonzero(finished)[0], m, True)
            keep = ~finished
            if not np.any(keep):
                break
            idx, a, b, z, s_norm, nrm2 = idx[keep], a[keep], b[keep], z[keep], s_norm[keep], \
                nrm2[keep]
            d_prev, d_cur, e_prev, e_cur = d_prev[keep], d_cur[keep], e_prev[keep], e_cur[keep]
            if last is not None:
                last = last[keep]
            v, w, bj = v[:, keep], w[:, keep], bj[keep]
            n = idx.size
        v_prev = v
        v = w / bj
        b_prev = bj
    return out
