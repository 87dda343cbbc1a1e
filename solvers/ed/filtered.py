"""Many low-lying eigenpairs of a sector: Chebyshev-filtered Lanczos with a final Rayleigh-Ritz.

At moderate temperature a sector can hold hundreds of states inside the Boltzmann window. Plain
Lanczos then needs a basis several times larger than the number of wanted states (the window is
a dense part of the spectrum), and its full re-orthogonalisation, ``O(basis^2 dim)`` in
memory-bound matrix-vector products, dominates everything.

Here Lanczos runs on ``q(H) = T_d((c - H)/e)``, a Chebyshev polynomial of degree ``d`` that is
bounded by 1 on ``[a, b] = [c - e, c + e]`` (``a`` a little above the window's top, ``b`` an
upper bound of the spectrum) and grows fast and monotonically below ``a``. The window becomes the
well separated top of the spectrum of ``q(H)``, and the basis stays close to the number of
wanted states: matrix-vector products (cheap, ``d`` per step) are traded for re-orthogonalisation
(expensive). The re-orthogonalisation itself is done in blocks: each new vector is orthogonalised
against the few most recent ones at every step and against the older basis every ``s`` steps in
one matrix-matrix product (a second pass only after real cancellation), with ``s`` adapted to
the overlaps actually found (kept below ``~1e-11``); a step with strong cancellation triggers the
global pass at once. Overlaps above ``1e-6`` mean the recursion is spoiled: the run reports
``failed`` (the caller retries with a lower degree or uses plain Lanczos), as it does when the
first state above the window converges too slowly.

Degree 1 is plain Lanczos on ``H`` with the same blocked re-orthogonalisation and final checks
(used for sectors with few states in the window).

Certification, as for :func:`.lanczos.lowest_states`: ``q`` is monotonic below ``a``, so the
states with energy under the cut are exactly the states with ``q > q(cut)``; the search stops
when every Ritz pair of ``q(H)`` above ``q(cut)`` and the first one below it are converged.
Energies and vectors then come from a Rayleigh-Ritz step with ``H`` itself on the converged Ritz
vectors, and every residual ``|H y - E y|`` is computed explicitly and checked (weighted as in
:func:`.lanczos.lowest_states`); if the check fails the search goes on with a stricter internal
tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import linalg

from .lanczos import refill_deflated

_OV_HI = 1e-11   # overlaps with the old basis allowed before re-orthogonalisation
_QMAX = 3e2      # default degree: q(E_low) about this (bounded dynamic range)

__all__ = ["filtered_lowest_states", "FilteredStates", "probe_ritz"]


@dataclass
class FilteredStates:
    energies: np.ndarray      # ascending, all <= cut
    vectors: np.ndarray       # (dim, n)
    residuals: np.ndarray     # explicit |H y - E y|
    krylov_dim: int
    matvecs: int
    limited: bool             # a limit stopped the search before certification
    degree: int
    failed: bool = False      # orthogonality was lost (use another method)


def _cheb_apply(apply, x, c, e, d):
    """``T_d((c - H)/e) x`` by the three-term recurrence."""
    t_prev = x
    t = (c * x - apply(x)) / e
    for _ in range(d - 1):
        t_next = 2.0 * (c * t - apply(t)) / e - t_prev
        t_prev, t = t, t_next
    return t


def _cheb_value(x, c, e, d):
    """``T_d((c - x)/e)`` for scalars/arrays with ``(c - x)/e >= 1`` (the amplified side)."""
    y = np.maximum((c - np.asarray(x, dtype=float)) / e, 1.0)
    return np.cosh(d * np.arccosh(y))


def _cheb_inverse(mu, c, e, d):
    """Energy ``x <= a`` with ``T_d((c - x)/e) = mu`` (for ``mu >= 1``)."""
    mu = np.maximum(np.asarray(mu, dtype=float), 1.0)
    return c - e * np.cosh(np.arccosh(mu) / d)


def filtered_lowest_states(apply: Callable[[np.ndarray], np.ndarray], dim: int,
                           e_low: float, e_top: float, cut: Callable[[float], float],
                           weight: Callable[[np.ndarray], np.ndarray], tol: float,
                           max_basis: int, seed: int, *, block: int = 1,
                           degree: int | None = None, margin: float | None = None,
                           start: np.ndarray | None = None) -> FilteredStates:
    """Every eigenpair of ``H`` with energy up to ``cut(E_0)``.

    Args:
        apply: ``H x`` for one flattened vector.
        dim: dimension.
        e_low: an upper estimate of the lowest eigenvalue (a Ritz value), used to place the
            filter; the cut is recomputed from the final lowest energy.
        e_top: an upper bound of the spectrum.
        cut: maps the lowest energy to the top of the window.
        weight: Boltzmann weights of energies (relative to the ground state).
        tol: weighted residual tolerance, ``|H y - E y| clip(weight, 1e-4, 1) < tol``.
        max_basis: limit of the Lanczos basis.
        seed: random start.
        block: block size (degeneracies up to ``block`` are resolved).
        degree, margin: filter degree and the gap between the cut and the damped interval
            (defaults adapt to the window and the spectral width).
        start: optional start vectors ``(dim, k)`` mixed into the random start block.
    """
    rng = np.random.default_rng(seed)
    p = max(1, min(block, dim))
    e_cut0 = cut(e_low)
    width = max(e_cut0 - e_low, 1e-3)
    spread = max(e_top - e_low, 1e-6)
    if margin is None:
        margin = 0.3 * width + 0.01 * spread
    # the damped interval starts above the window and above the lowest state (a sector whose
    # lowest state lies above the window must still see that state amplified)
    a = min(max(e_cut0, e_low) + margin, e_top - 1e-3 * spread)
    b = e_top + 1e-3 * spread
    c, e = 0.5 * (a + b), 0.5 * (b - a)
    if degree is None:
        # grow q(E_low) to about _QMAX relative to the bulk (bounded dynamic range: rounding
        # in the recursion grows with it)
        y0 = (c - e_low) / e
        degree = int(np.clip(math.ceil(math.acosh(_QMAX) / max(math.acosh(max(y0, 1.0 + 1e-12)),
                                                             1e-12)), 4, 40))
    d = degree
    q_cut_fn = lambda ecut: float(_cheb_value(ecut, c, e, d))  # noqa: E731

    max_basis = min(max_basis, dim)
    cap = min(max_basis, 128) + p  # basis storage grows on demand
    q = np.empty((cap, dim))
    blk0 = rng.standard_normal((dim, p))
    if start is not None:
        blk0[:, :min(p, start.shape[1])] += start[:, :p]
    q[:p] = linalg.qr(blk0, mode="economic")[0].T
    t = np.zeros((cap, cap))
    n = p
    r0 = 0            # vectors [r0, n) not yet globally re-orthogonalised
    s_gap = 2         # global re-orthogonalisation every s_gap blocks (adapted)
    since = 0
    matvecs = 0
    max_overlap = 0.0
    next_check = max(2 * p, 16)
    tol_fac = 0.1
    while True:
        blk = q[n - p:n]
        w = np.empty_like(blk)
        for i in range(p):
            w[i] = _cheb_apply(apply, blk[i], c, e, d)
        matvecs += p * d
        norm_in = float(np.max(np.linalg.norm(w, axis=1)))
        # local full orthogonalisation against the recent (not yet global) vectors
        lo = max(0, min(r0, n - 2 * p))  # always include the previous block (couplings)
        coef = w @ q[lo:n].T
        w -= coef @ q[lo:n]
        coef2 = w @ q[lo:n].T
        w -= coef2 @ q[lo:n]
        coef += coef2
        t[lo:n, n - p:n] = coef.T
        t[n - p:n, lo:n] = coef
        since += 1
        # strong cancellation amplifies rounding relative to what is left: re-orthogonalise
        # against the whole basis now (rounding ~ eps * norm_in / norm_out)
        cancel = float(np.min(np.linalg.norm(w, axis=1))) < 1e-3 * norm_in
        if (since >= s_gap or cancel) and r0 > 0 or n + p > max_basis or n >= dim:
            # global pass: the recent block and the new vectors against the older basis
            g0 = max(0, min(r0, n - 2 * p))
            recent = np.vstack([q[r0:n], w])
            ov = recent @ q[:g0].T
            nrm = np.maximum(np.linalg.norm(recent, axis=1), 1e-300)
            max_overlap = float(np.max(np.abs(ov) / nrm[:, None])) if ov.size else 0.0
            recent -= ov @ q[:g0]
            if max_overlap > 1e-8:  # a second pass only after real cancellation
                ov2 = recent @ q[:g0].T
                recent -= ov2 @ q[:g0]
            q[r0:n] = recent[:n - r0]
            w = recent[n - r0:]
            # overlaps of the new vectors with old ones are Lanczos couplings in exact
            # arithmetic only for the last block; elsewhere they are rounding: adapt s_gap
            if max_overlap > 1e-6:  # rounding swamped the recursion: give up, report it
                return FilteredStates(np.zeros(0), np.zeros((dim, 0)), np.zeros(0), n,
                                      matvecs, True, d, failed=True)
            if max_overlap > _OV_HI:
                s_gap = max(1, s_gap // 2)
            elif max_overlap < _OV_HI * 1e-2:
                s_gap = min(32, s_gap + 2)
            r0 = n
            since = 0
        elif r0 == 0 and (since >= s_gap or cancel):
            r0 = n
            since = 0
        if p == 1:
            nw = float(np.linalg.norm(w[0]))
            qn, r = (w.T / nw if nw > 0 else w.T.copy()), np.array([[nw]])
        else:
            qn, r = linalg.qr(w.T, mode="economic")
        check = n >= next_check or n >= dim or n + p > max_basis
        certified = False
        if check:
            next_check = int(n * 1.2) + p
            tt = t[:n, :n]
            theta, s = linalg.eigh(tt)  # n stays near the number of wanted states: small
            theta, s = theta[::-1], s[:, ::-1]  # descending q values
            resid_q = np.linalg.norm(r @ s[n - p:n, :], axis=0)
            if n >= dim:
                resid_q[:] = 0.0
            energies = _cheb_inverse(theta, c, e, d)
            e0 = float(energies[0])
            e_cut = cut(e0)
            q_cut = q_cut_fn(e_cut)
            # residual of H estimated from that of q(H): for an error along an eigenvector
            # with q-value q', |H y - E y| / |q(H) y - mu y| <= max(spread / mu, 1 / q'(E))
            dq = d * np.sinh(d * np.arccosh(np.maximum((c - energies) / e, 1.0 + 1e-15))) / (
                e * np.sqrt(np.maximum(((c - energies) / e) ** 2 - 1.0, 1e-30)))
            scale_h = np.maximum(spread / np.maximum(theta, 1.0), 1.0 / np.maximum(dq, 1e-300))
            conv = resid_q * scale_h * np.clip(weight(energies), 1e-4, 1.0) < tol_fac * tol
            n_lead = int(np.argmin(conv)) if not np.all(conv) else conv.size
            certified = (n_lead > 0 and theta[n_lead - 1] < q_cut) or n >= dim
            n_in = int(np.sum(theta >= q_cut))
            if not certified and d > 1 and n >= 3 * n_in + 100:
                # the first state above the window converges slowly (states just above the cut
                # are crowded below q(cut)): plain Lanczos certifies such a sector better
                return FilteredStates(np.zeros(0), np.zeros((dim, 0)), np.zeros(0), n,
                                      matvecs, True, d, failed=True)
        if certified or n >= dim or n + p > max_basis:
            limited = not certified
            n_take = n_lead if certified else int(np.sum(theta >= q_cut)) + 1
            n_take = max(1, min(n_take, n))
            y = (s[:, :n_take].T @ q[:n]).T          # (dim, n_take)
            # orthonormalise (rounding), Rayleigh-Ritz with H, explicit residuals
            y = linalg.qr(y, mode="economic")[0]
            hy = np.empty_like(y)
            for i in range(y.shape[1]):
                hy[:, i] = apply(y[:, i])
            matvecs += y.shape[1]
            g = y.T @ hy
            ev, u = linalg.eigh(0.5 * (g + g.T))
            y = y @ u
            hy = hy @ u
            res = np.linalg.norm(hy - y * ev, axis=0)
            sel = ev <= cut(float(ev[0]))
            sel[0] = True  # the lowest state always (it places the sector; callers select)
            ok = bool(np.all(res[sel] * np.clip(weight(ev[sel]), 1e-4, 1.0) < tol))
            if ok or limited or n >= dim or n + p > max_basis or tol_fac < 1e-6:
                return FilteredStates(ev[sel], y[:, sel], res[sel], n, matvecs,
                                      limited or not ok, d)
            tol_fac *= 1e-2  # the estimate from q(H) was optimistic: go on, stricter
            next_check = n + p
        small = np.abs(np.diag(r)) < 1e-12 * max(1.0, float(np.max(np.abs(t[:n, :n]))))
        if np.any(small):
            qn, r = refill_deflated(q[:n], qn, r, small, rng)
        if n + p > q.shape[0]:
            cap = min(2 * q.shape[0], max_basis + p)
            q = np.concatenate([q, np.empty((cap - q.shape[0], dim))])
            t = np.pad(t, ((0, cap - t.shape[0]), (0, cap - t.shape[1])))
        q[n:n + p] = qn.T
        t[n:n + p, n - p:n] = r
        t[n - p:n, n:n + p] = r.T
        n += p


def probe_ritz(apply: Callable[[np.ndarray], np.ndarray], dim: int, steps: int,
               seed: int) -> np.ndarray:
    """Ritz values (ascending) of a short fully re-orthogonalised Lanczos run: the lowest is an
    upper estimate of the ground energy; how many fall inside the window tells a sector with
    many states from one with few."""
    steps = max(1, min(steps, dim))
    rng = np.random.default_rng(seed)
    q = np.empty((steps, dim))
    v = rng.standard_normal(dim)
    q[0] = v / np.linalg.norm(v)
    a = np.zeros(steps)
    b = np.zeros(steps)
    m = steps
    for j in range(steps):
        w = apply(q[j])
        a[j] = q[j] @ w
        w -= q[:j + 1].T @ (q[:j + 1] @ w)
        w -= q[:j + 1].T @ (q[:j + 1] @ w)
        nrm = float(np.linalg.norm(w))
        if j + 1 == steps or nrm < 1e-10 * max(1.0, abs(a[j])):
            m = j + 1
            break
        b[j] = nrm
        q[j + 1] = w / nrm
    return linalg.eigvalsh_tridiagonal(a[:m], b[:m - 1]) if m > 1 else a[:1].copy()
