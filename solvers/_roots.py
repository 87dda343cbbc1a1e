"""Vectorised scalar root finding: one bracketed root per row of a batch (private).

Each row follows its own iteration, independent of the other rows, so the root of a row is the
same whether it is found alone or in a batch. The function is evaluated only at the rows still
iterating: ``f(x, rows)`` gets the points ``x`` and the integer indices ``rows`` they belong to.

Method: Chandrupatla's algorithm (T. R. Chandrupatla, Advances in Engineering Software 28, 145
(1997)): inverse quadratic interpolation through the last three points when it is safe (the
interpolant is monotonic on the bracket), bisection otherwise; the bracket always shrinks and
holds a sign change, so convergence is guaranteed, and as fast as Brent's method on smooth
functions. Stopping rule as in Brent's method (``scipy.optimize.brentq``): the bracket is
narrower than ``2 tol_b`` with ``tol_b = 2 rtol |x_b| + xtol/2`` (``x_b`` the end with the
smaller ``|f|``, which is returned), or ``f(x_b) = 0``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["find_roots", "expand_bracket", "newton_roots"]

RowFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def find_roots(f: RowFunction, lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray,
               f_hi: np.ndarray, *, xtol: float, rtol: float,
               max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Roots of ``f`` in the brackets ``[lo, hi]`` (one per row, ``f_lo * f_hi <= 0``).

    Args:
        f: ``f(x, rows)``, the function values of rows ``rows`` at ``x`` (both 1-d).
        lo, hi: bracket ends (shape ``(B,)``); f_lo, f_hi: ``f`` there.
        xtol, rtol: absolute and relative tolerance on the root (see the module docstring).
        max_iter: evaluations of ``f`` per row at most.

    Returns:
        ``(root, f(root), converged, iterations)``, each of shape ``(B,)``; a row stopped by
        ``max_iter`` returns its best point with ``converged=False``.

    Example:
        >>> import numpy as np
        >>> c = np.array([2.0, 3.0])
        >>> x, fx, ok, it = find_roots(lambda x, rows: x * x - c[rows], np.zeros(2),
        ...                            np.full(2, 2.0), -c, 4.0 - c, xtol=1e-14, rtol=4e-16,
        ...                            max_iter=100)
        >>> np.allclose(x, np.sqrt(c), rtol=1e-14, atol=0), ok.tolist()
        (True, [True, True])
    """
    n = np.size(lo)
    # a: the newest point, b: the other end of the bracket, c: the previous a or b
    a, b = np.array(hi, dtype=float), np.array(lo, dtype=float)
    fa, fb = np.array(f_hi, dtype=float), np.array(f_lo, dtype=float)
    root, f_root = np.empty(n), np.empty(n)
    converged = np.zeros(n, dtype=bool)
    iterations = np.zeros(n, dtype=int)
    rows = np.arange(n)
    c, fc = a.copy(), fa.copy()
    t = np.full(n, 0.5)
    for it in range(max_iter + 1):
        a_best = np.abs(fa) < np.abs(fb)
        x_best = np.where(a_best, a, b)
        tol = 2.0 * rtol * np.abs(x_best) + 0.5 * xtol
        width = np.abs(b - a)
        ok = (width <= 2.0 * tol) | (fa == 0.0) | (fb == 0.0)
        stop = ok | (it == max_iter)
        if stop.any():
            done = rows[stop]
            root[done] = x_best[stop]
            f_root[done] = np.where(a_best, fa, fb)[stop]
            converged[done] = ok[stop]
            keep = ~stop
            rows, a, b, c, fa, fb, fc, t, tol, width = (
                v[keep] for v in (rows, a, b, c, fa, fb, fc, t, tol, width))
            if rows.size == 0:
                break
        if it > 0:   # step from the last three points: inverse quadratic or bisection
            with np.errstate(divide="ignore", invalid="ignore"):
                xi = (a - b) / (c - b)
                phi = (fa - fb) / (fc - fb)
                iqi = (phi * phi < xi) & ((1.0 - phi) ** 2 < 1.0 - xi)
                t = np.where(iqi, fa / (fb - fa) * fc / (fb - fc)
                             + (c - a) / (b - a) * fa / (fc - fa) * fb / (fc - fb), 0.5)
                tl = tol / width
            t = np.clip(np.where(np.isfinite(t), t, 0.5), tl, 1.0 - tl)
        xt = a + t * (b - a)
        ft = np.asarray(f(xt, rows), dtype=float)
        iterations[rows] = it + 1
        same = np.sign(ft) == np.sign(fa)
        # same sign as a: c <- a, a <- xt;  else: c <- b, b <- a, a <- xt
        c, fc = np.where(same, a, b), np.where(same, fa, fb)
        b, fb = np.where(same, b, a), np.where(same, fb, fa)
        a, fa = xt, ft
    return root, f_root, converged, iterations


def expand_bracket(f: RowFunction, start: np.ndarray, width: float | np.ndarray = 1.0,
                   max_steps: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Brackets ``[lo, hi]`` with ``f(lo) >= 0 >= f(hi)`` of a decreasing ``f``, one per row.

    Starts from ``start -+ width`` (``width`` a number or one per row) and moves each end
    outward by a doubling step (``width``, ``2 width``, ...) until its sign is right, at most
    ``max_steps`` times (then the end stays where it is and the caller's root search keeps it).

    Returns:
        ``(lo, hi, f(lo), f(hi))``.

    Example:
        >>> import numpy as np
        >>> lo, hi, f_lo, f_hi = expand_bracket(lambda x, rows: 5.0 - x, np.zeros(1))
        >>> lo.tolist(), hi.tolist()
        ([-1.0], [8.0])
    """
    start = np.asarray(start, dtype=float)
    n = start.size
    rows = np.arange(n)
    width = np.broadcast_to(np.asarray(width, dtype=float), (n,))
    lo, hi = start - width, start + width
    step_lo, step_hi = width.copy(), width.copy()
    values = np.asarray(f(np.concatenate([lo, hi]), np.concatenate([rows, rows])), dtype=float)
    f_lo, f_hi = values[:n], values[n:]
    for _ in range(max_steps):
        move_lo = np.flatnonzero(f_lo < 0.0)
        move_hi = np.flatnonzero(f_hi > 0.0)
        if move_lo.size == 0 and move_hi.size == 0:
            break
        lo[move_lo] -= step_lo[move_lo]
        step_lo[move_lo] *= 2.0
        hi[move_hi] += step_hi[move_hi]
        step_hi[move_hi] *= 2.0
        values = np.asarray(f(np.concatenate([lo[move_lo], hi[move_hi]]),
                              np.concatenate([move_lo, move_hi])), dtype=float)
        f_lo[move_lo] = values[:move_lo.size]
        f_hi[move_hi] = values[move_lo.size:]
    return lo, hi, f_lo, f_hi


RowFunctionSlope = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]


def newton_roots(fd: RowFunctionSlope, start: np.ndarray, width: float | np.ndarray = 1.0, *,
                 xtol: float, rtol: float, max_iter: int,
                 curvature: float | np.ndarray | None = None,
                 bracket: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Roots of a decreasing ``f`` by safeguarded Newton steps, one per row, from ``start``.

    ``fd(x, rows)`` returns ``(f, f')`` at ``x`` for rows ``rows``; ``f'`` may be approximate (it
    only sets the steps: the root is where ``f`` changes sign). Each row keeps the bracket its
    values imply (``f > 0``: the root lies above ``x``, ``f < 0``: below); a Newton step that
    leaves a closed bracket is replaced by bisection, and a step larger than the row's step
    limit (``width`` at first, doubled each time it binds: the doubling search of
    :func:`expand_bracket`) is cut to it, as is a step without a usable slope (``f' >= 0``).
    A row stops at a point whose Newton step is at most ``tol = 2 rtol |x| + xtol/2`` (Brent's
    tolerance), where ``f(x) = 0``, or where its bracket is narrower than ``2 tol``; that point
    (evaluated) is returned as ``(root, f(root), converged, iterations)``, each of shape
    ``(B,)``; a row stopped by ``max_iter`` returns its last point with ``converged=False``.

    ``curvature``: a bound ``C`` on ``|f''/(2 f')|`` near the roots (one number or one per row).
    With it, a row whose Newton step ``s`` (uncut, inside the bracket) has ``C s^2 <= tol/8`` --
    the error of ``x + s`` in Newton's quadratic convergence, with a margin -- stops at
    ``x + s`` without evaluating ``f`` there (one evaluation fewer), and returns the linear
    prediction ``f(x) + f'(x) s`` (zero up to rounding) as its value; ``C`` is raised to
    ``|s_k|/s_(k-1)^2`` when the row's last two points came from uncut Newton steps.

    ``bracket``: ``(lo, hi)`` known to hold each row's root (``f(lo) >= 0 >= f(hi)``; default
    unbounded), so that no step leaves it.

    Example (square roots, the decreasing ``f(x) = c - x^2`` with ``f' = -2x``)::

        >>> import numpy as np
        >>> c = np.array([2.0, 3.0])
        >>> root = newton_roots(lambda x, rows: (c[rows] - x * x, -2.0 * x), np.ones(2),
        ...                     xtol=1e-14, rtol=4e-16, max_iter=50)
        >>> bool(np.allclose(root[0], np.sqrt(c), rtol=1e-14, atol=0)), root[2].tolist()
        (True, [True, True])
    """
    x = np.array(start, dtype=float).reshape(-1)
    n = x.size
    cap = np.array(np.broadcast_to(np.asarray(width, dtype=float), (n,)))
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    if bracket is not None:
        lo[:], hi[:] = bracket
    root, f_root = x.copy(), np.full(n, np.nan)
    converged = np.zeros(n, dtype=bool)
    iterations = np.zeros(n, dtype=int)
    rows = np.arange(n)
    if curvature is not None:
        curv = np.array(np.broadcast_to(np.asarray(curvature, dtype=float), (n,)))
        newton_step = np.full(n, np.nan)   # the last uncut Newton step of each row (NaN: none)
    for it in range(1, max_iter + 1):
        xr = x[rows]
        f, d = (np.asarray(v, dtype=float) for v in fd(xr, rows))
        root[rows], f_root[rows], iterations[rows] = xr, f, it
        lo_r, hi_r, cap_r = lo[rows], hi[rows], cap[rows]
        lo_r = np.where(f > 0, np.maximum(lo_r, xr), lo_r)
        hi_r = np.where(f < 0, np.minimum(hi_r, xr), hi_r)
        lo[rows], hi[rows] = lo_r, hi_r
        tol = 2.0 * rtol * np.abs(xr) + 0.5 * xtol
        usable = np.isfinite(d) & (d < 0)
        # no usable slope: an infinite step (cut to the step limit below); f = 0 or NaN stop
        step = np.where(usable, -f / np.where(usable, d, -1.0), np.copysign(np.inf, f))
        ok = (f == 0) | (usable & (np.abs(step) <= tol)) | (hi_r - lo_r <= 2.0 * tol)
        if curvature is not None:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                measured = np.abs(step) / newton_step[rows] ** 2       # NaN without one
            c = np.fmax(curv[rows], measured)
            x_next = xr + step
            stop = (~ok & usable & (c * step * step <= tol / 8) & (np.abs(step) <= cap_r)
                    & (lo_r < x_next) & (x_next < hi_r))
            if stop.any():
                root[rows[stop]], f_root[rows[stop]] = x_next[stop], (f + d * step)[stop]
                ok = ok | stop
        converged[rows[ok]] = True
        keep = ~ok & np.isfinite(f)
        if not keep.any():
            break
        rows, xr, step = rows[keep], xr[keep], step[keep]
        lo_r, hi_r, cap_r = lo_r[keep], hi_r[keep], cap_r[keep]
        big = np.abs(step) > cap_r
        step = np.where(big, np.copysign(cap_r, step), step)
        cap[rows] = np.where(big, 2.0 * cap_r, cap_r)
        x_new = xr + step
        outside = ~((lo_r < x_new) & (x_new < hi_r))
        bisect = outside & np.isfinite(lo_r) & np.isfinite(hi_r)
        x[rows] = np.where(bisect, 0.5 * (lo_r + hi_r), x_new)
        if curvature is not None:
            newton_step[rows] = np.where(big | bisect, np.nan, step)
    return root, f_root, converged, iterations
