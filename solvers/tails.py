"""High-frequency tails: moments, their estimation, pole representation and Matsubara sums.

A fermionic function on the Matsubara axis (``G``, ``Delta``, ``Sigma G``, ...) has the asymptotic
expansion ``f(i w_n) = sum_{k>=1} c_k / (i w_n)^k``; for ``f(-i w) = conj f(i w)`` every ``c_k`` is
real, odd ``k`` give ``Im f``, even ``k`` give ``Re f``. For a pole sum ``sum_p w_p/(i w_n - e_p)``
the moments are ``c_k = sum_p w_p e_p^(k-1)`` (:func:`pole_moments`).

Every transform of the toolkit (:func:`solvers.legendre.g_l_from_iw`,
:func:`solvers.fourier.iw_to_tau`, :func:`matsubara_sum`) treats the known moments the same way
(:class:`TailPoles`): they are carried by a few poles whose Green's function has exactly those
moments; the poles are transformed in closed form and only the remainder ``f - tail``, which
decays like ``1/(i w_n)^(K+1)`` for ``K`` moments, is summed numerically. Unlike the bare power
laws ``c_k/(i w_n)^k`` the poles stay bounded at low frequency, so nothing of size
``c_k (beta/pi)^k`` cancels. The poles are split by parity::

    odd  moments c_1, c_3, c_5:  sum_j p_j i w/((i w)^2 - e_j^2),   e_j = 0, s, 2s
                                 (c_{2m+1} = sum_j p_j e_j^(2m); purely imaginary)
    even moments c_2, c_4, c_6:  sum_j r_j /((i w)^2 - e_j^2),      e_j = s, 2s, 3s
                                 (c_{2m+2} = sum_j r_j e_j^(2m);   purely real)

with the spacing ``s = sqrt(|c_3/c_1|)``, the rms energy of a spectral function (see
:meth:`TailPoles.from_moments`): a single pole is then represented exactly, and the remainder's
next odd moment ``c_5 - c_3^2/c_1`` is never larger than ``c_5``.
A purely imaginary ``f`` with ``c_2 = c_4 = 0`` keeps an exactly real-free remainder (exact
particle-hole symmetry survives). Conventions: ``docs/conventions.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ._checks import check_fraction, check_iw_array, check_poles
from .mesh import check_beta, check_betas, matsubara_freqs, matsubara_freqs_many

if TYPE_CHECKING:
    from .model import AndersonModel

__all__ = ["TailPoles", "pole_moments", "pole_moments_many", "estimate_tail",
           "hybridisation_moments", "hybridisation_moments_many", "bath_rows", "matsubara_sum", "density_from_g_iw", "fit_tail_many", "matsubara_sum_many",
           "density_from_g_iw_many", "check_moments", "half_bandwidth"]

MAX_MOMENTS = 6
_NODES = np.arange(MAX_MOMENTS, dtype=float)   # node positions e_j / s
_MIN_WINDOW = 4


def pole_moments(weights: np.ndarray, energies: np.ndarray, n_moments: int = 3) -> np.ndarray:
    """Moments ``c_k = sum_p w_p e_p^(k-1)``, ``k = 1 .. n_moments``, of ``sum_p w_p/(i w_n - e_p)``.

    Example:
        >>> pole_moments([4.0], [0.5]).tolist()      # Delta of one bath site, V = 2, eps = 0.5
        [4.0, 2.0, 1.0]
    """
    w, e = check_poles(weights, energies)
    return pole_moments_many(w[None, :], e[None, :], int(n_moments))[0]


def pole_moments_many(weights: np.ndarray, energies: np.ndarray, n_moments: int = 3) -> np.ndarray:
    """:func:`pole_moments` of every row of ``weights``, ``energies`` (shape ``(B, P)``; pad with
    zero weights): shape ``(B, n_moments)``."""
    return np.stack([np.sum(weights * energies ** k, axis=-1) for k in range(n_moments)],
                    axis=-1).reshape(weights.shape[0], n_moments)


def _moment_sign(k: int) -> float:
    """``(i w)^-k = sign * w^-k`` in ``Im`` (odd ``k``) or ``Re`` (even ``k``): ``Re/Im (-i)^k``."""
    return float(-1.0 if (k + 1) // 2 % 2 else 1.0)


@dataclass(frozen=True)
class TailPoles:
    """Pole sum with prescribed moments ``(c_1, ..., c_K)``, ``K <= 6`` (see module docstring).

    One tail (arrays of shape ``(K_odd,)``, ``(K_even,)``) or a batch of tails, one per row
    (shapes ``(B, K_odd)``, ``(B, K_even)``; the methods then take one ``beta`` and one mesh per
    row).

    Attributes:
        odd_energies, odd_weights: ``e_j >= 0`` and ``p_j`` of ``p_j i w/((i w)^2 - e_j^2)``.
        even_energies, even_weights: ``e_j > 0`` and ``r_j`` of ``r_j/((i w)^2 - e_j^2)``.

    Example:
        >>> import numpy as np
        >>> tp = TailPoles.from_moments((1.0, 0.37, 0.37 ** 2, 0.37 ** 3))  # one pole at 0.37
        >>> w = np.array([0.1, 3.0])
        >>> bool(np.allclose(tp.iw(w), 1 / (1j * w - 0.37), rtol=1e-14))
        True
    """

    odd_energies: np.ndarray
    odd_weights: np.ndarray
    even_energies: np.ndarray
    even_weights: np.ndarray
    #: node spacing ``s`` when the energies are ``s (0, 1, 2, ..)`` (odd) and ``s (1, 2, ..)``
    #: (even), as :meth:`from_moments` builds them: the methods then share the work of equal
    #: energies. ``None``: any energies.
    spacing: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_moments(cls, tail: Sequence[float] | np.ndarray, scale: float | None = None,
                     min_scale: float | np.ndarray = 0.0) -> "TailPoles":
        """The poles of the known moments ``tail = (c_1, ..., c_K)``.

        ``p`` and ``r`` solve the Vandermonde systems in ``e_j^2`` of the module docstring; zero
        moments of one parity give exactly zero weights.

        Args:
            tail: the moments ``c_1 .. c_K``, ``K <= 6``; or an array ``(B, K)``, one tail per
                row (a batch).
            scale: node spacing ``s`` (units of D). Default: ``sqrt(|c_3/c_1|)``, the rms
                energy of a spectral function (``c_1, c_3 > 0``); without it
                ``sqrt(|c_4/c_2|)``, else 1 D. (The even ratio alone is a poor scale: ``c_2``
                and ``c_4`` may nearly cancel.)
            min_scale: lower bound of the default spacings (callers pass ``pi/beta``: closer
                nodes would act as power laws over the whole mesh); one per row for a batch.
        """
        c = check_moments(tail, batch=True)
        if scale is not None:
            s = np.asarray(scale, dtype=float)
            if not np.all(np.isfinite(s)) or np.any(s <= 0):
                raise ValueError(f"scale must be finite and > 0, got {scale}")
        return cls._from_moments(c, scale, min_scale)

    @classmethod
    def _from_moments(cls, c: np.ndarray, scale: Any, min_scale: Any) -> "TailPoles":
        """:meth:`from_moments` without the checks (``c`` a float array, 1-d or 2-d)."""
        single = c.ndim == 1
        if single:
            c = c[None, :]
        odd, even = c[:, 0::2], c[:, 1::2]
        if scale is None:
            s = np.maximum(_default_scale(odd, even), min_scale)
        else:
            s = np.broadcast_to(np.asarray(scale, dtype=float), (c.shape[0],))
        # nodes x_j = e_j / s; moments in units of s: c_(2m+1) / s^(2m), c_(2m+2) / s^(2m)
        n_odd, n_even = odd.shape[1], even.shape[1]
        powers = (s * s)[:, None] ** np.arange(max(n_odd, n_even))
        p = _vandermonde_solve(odd / powers[:, :n_odd], 0)
        r = _vandermonde_solve(even / powers[:, :n_even], 1)
        s_col = s[:, None]
        out = (s_col * _NODES[:n_odd], p, s_col * _NODES[1:n_even + 1], r)
        if single:
            return cls(*(a[0] for a in out), spacing=s[:1].copy())
        return cls(*out, spacing=np.asarray(s, dtype=float))

    def _spacing(self) -> np.ndarray | None:
        """``s`` with a trailing axis (broadcast against a mesh), or ``None``."""
        return None if self.spacing is None else np.asarray(self.spacing)[..., None] if (
            self.odd_weights.ndim == 2) else np.asarray(self.spacing)

    def iw(self, wn: np.ndarray) -> np.ndarray:
        """The tail on the Matsubara mesh, ``-i w sum_j p_j/(w^2+e_j^2) - sum_j r_j/(w^2+e_j^2)``
        (``wn`` of shape ``(N,)``, or ``(B, N)`` for a batch)."""
        wn = np.asarray(wn, dtype=float)
        re, im = self._iw_parts(wn)
        return re + 1j * (im * wn)

    def _iw_parts(self, wn: np.ndarray, odd: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """``Re tail(i w)`` and ``Im tail(i w)/w`` on the mesh (the second ``None`` without
        ``odd``: a Matsubara sum needs only the real part)."""
        w2 = wn * wn
        shape = np.broadcast_shapes(w2.shape, self.odd_weights.shape[:-1] + (1,))
        im = np.zeros(shape) if odd else None
        re = np.zeros(shape)
        n_odd, n_even = self.odd_weights.shape[-1], self.even_weights.shape[-1]
        if not odd:
            n_odd = 0
        s = self._spacing()
        if s is not None:   # energies k s: one 1/(w^2 + (k s)^2) per k
            for k in range(max(n_odd, n_even + 1)):
                if k == 0 and n_odd == 0:
                    continue
                inv = 1.0 / (w2 + (k * s) ** 2) if k else 1.0 / w2
                if k < n_odd:
                    im -= self.odd_weights[..., k, None] * inv
                if 1 <= k <= n_even:
                    re -= self.even_weights[..., k - 1, None] * inv
            return re, im
        for j in range(n_odd):
            p, e = self.odd_weights[..., j, None], self.odd_energies[..., j, None]
            im -= p / (w2 + e * e)
        for j in range(n_even):
            r, e = self.even_weights[..., j, None], self.even_energies[..., j, None]
            re -= r / (w2 + e * e)
        return re, im

    def tau(self, tau: np.ndarray, beta: float | np.ndarray) -> np.ndarray:
        """The tail in imaginary time, ``0 <= tau <= beta`` (ends as the limits ``0+``, ``beta-``)::

            odd:  -sum_j p_j cosh(e_j (tau - beta/2)) / (2 cosh(beta e_j/2))
            even:  sum_j r_j sinh(e_j (tau - beta/2)) / (2 e_j cosh(beta e_j/2))

        (``-c_1/2`` and ``c_2 (2 tau - beta)/4`` as ``e -> 0``), evaluated overflow-free. A batch
        takes one ``beta`` per row and ``tau`` of shape ``(B, M)``.
        """
        beta = _betas(beta)
        half = (beta / 2)[..., None]
        tau = np.asarray(tau, dtype=float)
        out = np.zeros(np.broadcast_shapes(tau.shape, self.odd_weights.shape[:-1] + (1,)))
        n_odd, n_even = self.odd_weights.shape[-1], self.even_weights.shape[-1]
        s = self._spacing()
        if s is not None:   # energies k s: exp(k s y) = exp(s y)^k
            if n_odd:
                out -= 0.5 * self.odd_weights[..., 0, None]          # e = 0: cosh ratio 1
            k_max = max(n_odd - 1, n_even)
            if k_max:
                # up_k = exp(k s (tau - beta)), down_k = exp(-k s tau), each with one
                # coefficient per row: (-p_k/2 +- r_k/(2 k s)) / (1 + exp(-k s beta))
                up, down = np.exp(s * (tau - 2.0 * half)), np.exp(-s * tau)
                damp = np.exp(-2.0 * s * half)
                up_k, down_k, damp_k = up, down, damp
                for k in range(1, k_max + 1):
                    if k > 1:
                        up_k, down_k, damp_k = up_k * up, down_k * down, damp_k * damp
                    odd = -0.5 * self.odd_weights[..., k, None] if k < n_odd else 0.0
                    even = (self.even_weights[..., k - 1, None] / (2.0 * k * s)
                            if k <= n_even else 0.0)
                    out += (odd + even) / (1.0 + damp_k) * up_k
                    out += (odd - even) / (1.0 + damp_k) * down_k
            return out
        x = tau - half

        def ratio(e: np.ndarray, sign: float) -> np.ndarray:
            # (exp(e x) + sign exp(-e x)) / (exp(e half) + exp(-e half)), |x| <= half
            return (np.exp(e * (x - half)) + sign * np.exp(-e * (x + half))) / (
                1.0 + np.exp(-2.0 * e * half))

        for j in range(n_odd):
            p, e = self.odd_weights[..., j, None], self.odd_energies[..., j, None]
            out -= 0.5 * p * ratio(e, 1.0)
        for j in range(n_even):
            r, e = self.even_weights[..., j, None], self.even_energies[..., j, None]
            out += r / (2.0 * e) * ratio(e, -1.0)
        return out

    def at_beta(self, beta: float | np.ndarray) -> float | np.ndarray:
        """``tail(tau = beta-) = -c_1/2 + sum_j r_j tanh(beta e_j/2) / (2 e_j)`` (one value per
        row for a batch)."""
        e = self.even_energies
        b = _betas(beta)[..., None]
        out = (np.sum(self.even_weights * np.tanh(b * e / 2) / (2 * e), axis=-1)
               - 0.5 * np.sum(self.odd_weights, axis=-1))
        return float(out) if np.ndim(out) == 0 else out


def check_moments(tail: Any, batch: bool = False) -> np.ndarray:
    """Tail moments ``(c_1, ..., c_K)`` as a float array, ``K <= 6``, all finite (with
    ``batch``, also a 2-d array, one tail per row).

    Example:
        >>> check_moments((1, 0.5)).tolist()
        [1.0, 0.5]
    """
    c = np.array(tail, dtype=float)
    if c.ndim != 1 and not (batch and c.ndim == 2):
        raise ValueError(f"tail moments must be a sequence{' or a 2-d array' if batch else ''}, "
                         f"got shape {c.shape}")
    if c.shape[-1] > MAX_MOMENTS:
        raise ValueError(f"at most {MAX_MOMENTS} tail moments are supported, got {c.shape[-1]}")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"tail moments must be finite, got {tuple(np.ravel(c))}")
    return c


def _betas(beta: float | np.ndarray) -> np.ndarray:
    return np.asarray(check_beta(beta) if np.ndim(beta) == 0 else check_betas(beta))


@lru_cache(maxsize=16)
def _vandermonde_inverse(size: int, first: int) -> np.ndarray:
    """``V^-1`` of ``V[m, j] = x_j^(2m)``, nodes ``x_j = first + j`` (read-only, cached)."""
    x = np.arange(first, first + size, dtype=float)
    inv = np.linalg.inv(x[None, :] ** (2 * np.arange(size))[:, None])
    inv.flags.writeable = False
    return inv


def _vandermonde_solve(moments: np.ndarray, first: int) -> np.ndarray:
    """Weights ``a`` with ``sum_j a_j x_j^(2m) = moments[:, m]``, nodes ``x_j = first + j``
    (one system per row); exactly 0 for a row of zero moments (the inverse is applied as a
    product, which maps zeros to zeros)."""
    if moments.shape[1] <= 1:
        return moments.copy()
    return moments @ _vandermonde_inverse(moments.shape[1], first).T


def _default_scale(odd: np.ndarray, even: np.ndarray) -> np.ndarray:
    """``sqrt(|c_3/c_1|)`` where both are non-zero, else ``sqrt(|c_4/c_2|)``, else 1 (per row)."""
    s = None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for moments in (odd, even):
            if moments.shape[1] >= 2:
                ratio = np.sqrt(np.abs(moments[:, 1] / moments[:, 0]))
                ok = (ratio != 0.0) & np.isfinite(ratio) & (moments[:, 0] != 0.0)
                if s is None:
                    s = np.where(ok, ratio, np.nan)
                else:
                    s = np.where(np.isnan(s) & ok, ratio, s)
    if s is None:
        return np.ones(odd.shape[0])
    return np.where(np.isnan(s), 1.0, s)


def _as_known(known: float | Sequence[float] | None) -> tuple[float, ...]:
    if known is None:
        return ()
    if np.ndim(known) == 0:
        return (float(known),)
    return tuple(float(x) for x in known)


def estimate_tail(f_iw: np.ndarray, beta: float, known: float | Sequence[float] | None = 1.0,
                  fraction: float = 0.5, *, n_moments: int = 3,
                  n_extra: int = 2) -> tuple[float, ...]:
    """Moments ``(c_1, ..., c_n_moments)`` of ``f(i w_n) = sum_k c_k/(i w_n)^k`` from the data.

    The known leading moments are subtracted; the unknown ones of each parity, plus ``n_extra``
    higher ones of that parity (not returned), come from linear least squares on the highest
    ``fraction`` of the frequencies (at least 4 points)::

        Im f = sum_{k odd}  c_k (-1)^((k+1)/2) / w^k,    Re f = sum_{k even} c_k (-1)^(k/2) / w^k

    in the well-conditioned basis ``(w_min/w)^(2j)``. When the window holds fewer points than a
    parity has unknowns, its lowest unknown moment is read off the last frequency (others 0).

    Args:
        f_iw: ``f(i w_n)``, ``n = 0 .. N-1``.
        beta: inverse temperature (1/D).
        known: the exactly known leading moments ``(c_1, c_2, ...)``; a number is ``c_1`` alone
            (default ``c_1 = 1``, a fermionic ``G``); ``None`` fits every moment (e.g. ``Delta``).
        fraction: share of the highest frequencies fitted.
        n_moments: number of moments returned.
        n_extra: higher moments per parity fitted along (absorb the truncation of the series).

    Example:
        >>> import numpy as np
        >>> wn = matsubara_freqs(10.0, 512)
        >>> c = estimate_tail(1 / (1j * wn - 0.3), 10.0)     # a pole: (1, e, e^2)
        >>> np.allclose(c, (1.0, 0.3, 0.09), atol=1e-10)
        True
    """
    c_known = _as_known(known)
    return _fit_tail(check_iw_array(f_iw, "f_iw"), check_beta(beta), c_known,
                     max(int(n_moments), len(c_known)), check_fraction("fraction", fraction),
                     int(n_extra), (1, 0))


def _fit_tail(f: np.ndarray, beta: float, c_known: tuple[float, ...], n_moments: int,
              fraction: float, n_extra: int, parities: tuple[int, ...]) -> tuple[float, ...]:
    """:func:`estimate_tail` for the given parities only (1: odd ``k``, ``Im f``; 0: even)."""
    out = fit_tail_many(f[None, :], np.array([beta]), np.array([c_known], dtype=float).reshape(
        1, len(c_known)), n_moments, fraction, n_extra, parities)
    return tuple(float(x) for x in out[0])


def fit_tail_many(f: np.ndarray, beta: np.ndarray, c_known: np.ndarray, n_moments: int,
                  fraction: float = 0.5, n_extra: int = 2,
                  parities: tuple[int, ...] = (1, 0)) -> np.ndarray:
    """:func:`estimate_tail` of every row of ``f`` (shape ``(B, N)``, one ``beta`` and one row of
    known moments ``c_known`` (shape ``(B, K)``) per row), for the given parities (1: odd
    ``k``, ``Im f``; 0: even). Returns ``(B, n_moments)``.

    The fit basis ``(w_0/w_n)^(2j)`` does not depend on ``beta``, so one least-squares problem
    with ``B`` right-hand sides fits every row.
    """
    n_rows, n_freq = f.shape
    k_known = c_known.shape[1]
    n_win = max(n_freq - int(n_freq * (1.0 - fraction)), min(n_freq, _MIN_WINDOW))
    w = matsubara_freqs_many(beta, n_freq)[:, -n_win:]
    odd_n = 2.0 * np.arange(n_freq - n_win, n_freq) + 1.0
    ratio2 = (odd_n[0] / odd_n) ** 2                     # (w_0 / w_n)^2, the same for every beta
    out = np.zeros((n_rows, max(n_moments, k_known)))
    out[:, :k_known] = c_known
    for parity in parities:
        ks = [k for k in range(k_known + 1, n_moments + 1) if k % 2 == parity]
        if not ks:
            continue
        y = (f.imag if parity else f.real)[:, -n_win:]
        for k in range(2 - parity, k_known + 1, 2):   # subtract the known moments
            y = y - _moment_sign(k) * c_known[:, k - 1, None] / w ** k
        powers = ks + [ks[-1] + 2 * i for i in range(1, n_extra + 1)]
        p = powers[0]
        if n_win < len(powers):
            out[:, p - 1] = _moment_sign(p) * y[:, -1] * w[:, -1] ** p
            continue
        basis = np.vander(ratio2, len(powers), increasing=True)
        basis *= [_moment_sign(k) for k in powers]
        coef = np.linalg.lstsq(basis, (y * w ** p).T, rcond=None)[0]
        for j, k in enumerate(ks):
            out[:, k - 1] = coef[j] * w[:, 0] ** (2 * j)
    return out


def hybridisation_moments(model: AndersonModel, delta_iw: np.ndarray | None = None,
                          n_moments: int = 3) -> np.ndarray:
    """Moments ``(M_1, M_2, M_3, ...)`` of ``Delta(i w_n) = sum_k M_k/(i w_n)^k``.

    :func:`hybridisation_moments_many` of one model. Discrete bath: exact,
    ``M_k = sum_j V_j^2 eps_j^(k-1)``. Continuous bath: :func:`estimate_tail` of ``delta_iw``
    (default: every stored ``model.delta_iw``) with nothing known.

    Args:
        model: an :class:`solvers.model.AndersonModel`.
        delta_iw: ``Delta(i w_n)`` to fit (continuous bath only).
        n_moments: number of moments.

    Example:
        >>> from solvers import AndersonModel
        >>> m = AndersonModel(U=1.0, eps_d=0.0, beta=10.0, bath_eps=[0.5], bath_v=[2.0])
        >>> hybridisation_moments(m).tolist()
        [4.0, 2.0, 1.0]
    """
    if delta_iw is not None and not model.is_discrete:
        return np.array(estimate_tail(delta_iw, model.beta, None, n_moments=n_moments))
    return hybridisation_moments_many([model], n_moments)[0]


def bath_rows(models: Sequence[AndersonModel]
              ) -> tuple[list[int], np.ndarray, np.ndarray, dict[int, list[int]]]:
    """The models sorted for batched work on their hybridisations: the indices of the discrete
    baths with their poles ``Delta = sum_k w_k/(i w_n - e_k)``, ``w_k = V_k^2``, as arrays
    ``(len(discrete), max Nb)`` padded with zero weights; and the indices of the continuous
    ``delta_iw`` grouped by mesh size."""
    discrete = [i for i, m in enumerate(models) if m.is_discrete]
    n_poles = max([models[i].n_bath for i in discrete], default=0)
    weights = np.zeros((len(discrete), n_poles))
    energies = np.zeros((len(discrete), n_poles))
    for row, i in enumerate(discrete):
        m = models[i]
        weights[row, :m.n_bath] = m.bath_v ** 2
        energies[row, :m.n_bath] = m.bath_eps
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(models):
        if not m.is_discrete:
            groups.setdefault(m.delta_iw.size, []).append(i)
    return discrete, weights, energies, groups


def half_bandwidth(m1: np.ndarray | float) -> np.ndarray:
    """The half bandwidth ``D = 2 sqrt(M_1)`` of the semicircular (Bethe) hybridisation with the
    same first moment ``M_1 = sum_k V_k^2 = D^2/4`` (units D; ``M_1 < 0`` from a poor tail fit
    counts as 0); the ``D`` of the database's Bethe-like baths and of the networks' inputs.

    Example:
        >>> half_bandwidth(np.array([0.25, -1e-9])).tolist()
        [1.0, 0.0]
    """
    return 2.0 * np.sqrt(np.maximum(np.asarray(m1, dtype=float), 0.0))


def _bath_row_arrays(models: Sequence[AndersonModel], width: int, name: str
                     ) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray, dict[int, list[int]]]:
    """An empty ``(len(models), width)`` output (``width >= 1``, called ``name`` in the error)
    and :func:`bath_rows` of the models."""
    width = int(width)
    if width < 1:
        raise ValueError(f"{name} must be >= 1, got {width}")
    return (np.empty((len(models), width)),) + bath_rows(models)


def hybridisation_moments_many(models: Sequence[AndersonModel], n_moments: int = 3) -> np.ndarray:
    """:func:`hybridisation_moments` of every model, shape ``(len(models), n_moments)`` (units
    ``D^k``).

    Discrete baths: ``M_k = sum_j V_j^2 eps_j^(k-1)`` (:func:`pole_moments`), all rows together
    (padded with zero weights). Continuous ``delta_iw``: the tail fit of :func:`estimate_tail`
    with nothing known (``M_1 .. M_n_moments`` and ``n_extra = 2`` higher moments of each parity on
    the upper half of the given frequencies), one least-squares solve for all rows of one mesh
    size (:func:`fit_tail_many`). The fit keeps ``M_5`` and ``M_7`` in the model of
    ``Im Delta``; on 1024 frequencies of an 8-site bath (levels in ``[-1.2, 1.2]``) it finds
    ``M_1`` to ``~1e-15`` relative at ``beta = 20`` and ``~1e-11`` at ``beta = 200``
    (``tests/test_formulas.py``).

    Example:
        >>> from solvers import AndersonModel, hybridisation_iw, matsubara_freqs
        >>> a = AndersonModel(U=1.0, eps_d=0.0, beta=10.0, bath_eps=[0.5], bath_v=[2.0])
        >>> d = hybridisation_iw(matsubara_freqs(10.0, 512), [0.5], [2.0])
        >>> b = AndersonModel(U=1.0, eps_d=0.0, beta=10.0, delta_iw=d)
        >>> np.allclose(hybridisation_moments_many([a, b]), [[4.0, 2.0, 1.0]] * 2)
        True
    """
    out, discrete, weights, energies, groups = _bath_row_arrays(models, n_moments, "n_moments")
    n_moments = out.shape[1]
    if discrete:
        out[discrete] = pole_moments_many(weights, energies, n_moments)
    for rows in groups.values():
        out[rows] = fit_tail_many(np.stack([models[i].delta_iw for i in rows]),
                                  np.array([models[i].beta for i in rows]),
                                  np.zeros((len(rows), 0)), n_moments)
    return out


def matsubara_sum(f_iw: np.ndarray, beta: float, tail: Sequence[float] = (),
                  n_moments: int | None = None) -> float:
    """``(1/beta) sum_{n in Z} f(i w_n) exp(i w_n 0+) = -F(beta-)`` for ``f(-i w) = conj f(i w)``.

    The tail poles of the moments (:class:`TailPoles`) are summed exactly, the remainder directly
    on the mesh (``F(beta-) = -(2/beta) sum_{n>=0} Re f(i w_n)`` for a convergent sum)::

        S = (2/beta) sum_{n<N} Re[f(i w_n) - tail(i w_n)] - tail(beta-)

    The remainder decays like the first even moment not given.

    Args:
        f_iw: ``f(i w_n)``, ``n = 0 .. N-1``.
        beta: inverse temperature (1/D).
        tail: the known moments ``(c_1, c_2, ...)``.
        n_moments: if larger than ``len(tail)``, the missing even moments up to this order are
            fitted (:func:`estimate_tail` with ``tail`` known, ``n_extra=0``; odd moments do not
            enter the sum).

    Example:
        >>> import numpy as np
        >>> wn = matsubara_freqs(10.0, 256)
        >>> f = 1 / (1j * wn - 0.5) ** 2     # (1/beta) sum = d fermi/d eps = -beta e/(1+e)^2
        >>> ex = -10.0 * np.exp(5.0) / (1 + np.exp(5.0)) ** 2
        >>> bool(abs(matsubara_sum(f, 10.0, (0.0, 1.0), n_moments=6) - ex) < 1e-9)
        True
    """
    beta = check_beta(beta)
    f = check_iw_array(f_iw, "f_iw")
    c = check_moments(tail)[None, :]
    return float(matsubara_sum_many(f[None, :], np.array([beta]), c, n_moments)[0])


def matsubara_sum_many(f: np.ndarray, beta: np.ndarray, tail: np.ndarray,
                       n_moments: int | None = None) -> np.ndarray:
    """:func:`matsubara_sum` of every row of ``f`` (shape ``(B, N)``) with its own ``beta`` and
    known moments ``tail`` (shape ``(B, K)``); returns ``(B,)``."""
    if n_moments is not None and n_moments > tail.shape[1]:   # only Re f enters: even moments
        tail = fit_tail_many(f, beta, tail, n_moments, 0.5, 0, (0,))
    poles = TailPoles._from_moments(tail, None, math.pi / beta)
    rest = f.real - poles._iw_parts(matsubara_freqs_many(beta, f.shape[1]), odd=False)[0]
    return 2.0 / beta * np.sum(rest, axis=-1) - poles.at_beta(beta)


def density_from_g_iw(g_iw: np.ndarray, beta: float, tail: Sequence[float] | None = None,
                      n_moments: int | None = None) -> float:
    """Density per spin ``n_s = -G(beta-) = (1/beta) sum_n G(i w_n) exp(i w_n 0+)``.

    :func:`matsubara_sum` with the tail moments ``tail = (c_1, ...)`` of ``G``; moments missing
    up to ``n_moments`` are estimated from the data (:func:`estimate_tail`). Default: ``tail``
    given: none fitted; ``tail=None``: ``c_1 = 1`` and ``c_2 .. c_6`` fitted.

    Example:
        >>> import numpy as np
        >>> wn = matsubara_freqs(10.0, 512)
        >>> n = density_from_g_iw(1 / (1j * wn - 0.2), 10.0, tail=(1.0, 0.2, 0.04, 0.008))
        >>> bool(abs(n - 1 / (1 + np.exp(2.0))) < 1e-12)
        True
    """
    if tail is None:
        tail, n_moments = (1.0,), MAX_MOMENTS if n_moments is None else n_moments
    return matsubara_sum(g_iw, beta, tail, n_moments)


def density_from_g_iw_many(g_iw: np.ndarray, beta: np.ndarray, tail: np.ndarray,
                           n_moments: int | None = None) -> np.ndarray:
    """:func:`density_from_g_iw` of every row of ``g_iw`` (shape ``(B, N)``), with its own
    ``beta`` and known moments ``tail`` (shape ``(B, K)``); returns ``(B,)``."""
    return matsubara_sum_many(g_iw, beta, tail, n_moments)
