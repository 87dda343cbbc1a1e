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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ._checks import check_fraction, check_iw_array, check_poles
from .mesh import check_beta, matsubara_freqs

if TYPE_CHECKING:
    from .model import AndersonModel

__all__ = ["TailPoles", "pole_moments", "estimate_tail", "hybridisation_moments",
           "matsubara_sum", "density_from_g_iw"]

MAX_MOMENTS = 6
_MIN_WINDOW = 4


def pole_moments(weights: np.ndarray, energies: np.ndarray, n_moments: int = 3) -> np.ndarray:
    """Moments ``c_k = sum_p w_p e_p^(k-1)``, ``k = 1 .. n_moments``, of ``sum_p w_p/(i w_n - e_p)``.

    Example:
        >>> pole_moments([4.0], [0.5]).tolist()      # Delta of one bath site, V = 2, eps = 0.5
        [4.0, 2.0, 1.0]
    """
    w, e = check_poles(weights, energies)
    return np.array([float(np.sum(w * e ** k)) for k in range(int(n_moments))])


def _moment_sign(k: int) -> float:
    """``(i w)^-k = sign * w^-k`` in ``Im`` (odd ``k``) or ``Re`` (even ``k``): ``Re/Im (-i)^k``."""
    return float(-1.0 if (k + 1) // 2 % 2 else 1.0)


@dataclass(frozen=True)
class TailPoles:
    """Pole sum with prescribed moments ``(c_1, ..., c_K)``, ``K <= 6`` (see module docstring).

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

    @classmethod
    def from_moments(cls, tail: Sequence[float], scale: float | None = None,
                     min_scale: float = 0.0) -> "TailPoles":
        """The poles of the known moments ``tail = (c_1, ..., c_K)``.

        ``p`` and ``r`` solve the Vandermonde systems in ``e_j^2`` of the module docstring; zero
        moments of one parity give exactly zero weights.

        Args:
            tail: the moments ``c_1 .. c_K``, ``K <= 6``.
            scale: node spacing ``s`` (units of D). Default: ``sqrt(|c_3/c_1|)``, the rms
                energy of a spectral function (``c_1, c_3 > 0``); without it
                ``sqrt(|c_4/c_2|)``, else 1 D. (The even ratio alone is a poor scale: ``c_2``
                and ``c_4`` may nearly cancel.)
            min_scale: lower bound of the default spacings (callers pass ``pi/beta``: closer
                nodes would act as power laws over the whole mesh).
        """
        c = [float(x) for x in tail]
        if len(c) > MAX_MOMENTS:
            raise ValueError(f"at most {MAX_MOMENTS} tail moments are supported, got {len(c)}")
        if not all(math.isfinite(x) for x in c):
            raise ValueError(f"tail moments must be finite, got {tuple(tail)}")
        odd, even = c[0::2], c[1::2]
        if scale is None:
            s = max(_ratio_scale(odd) or _ratio_scale(even) or 1.0, min_scale)
        else:
            s = float(scale)
            if not math.isfinite(s) or s <= 0:
                raise ValueError(f"scale must be finite and > 0, got {scale}")
        # nodes x_j = e_j / s; moments in units of s: c_(2m+1) / s^(2m), c_(2m+2) / s^(2m)
        x_odd = np.arange(len(odd), dtype=float)
        x_even = np.arange(1, len(even) + 1, dtype=float)
        p = _vandermonde_solve([x / s ** (2 * m) for m, x in enumerate(odd)], x_odd)
        r = _vandermonde_solve([x / s ** (2 * m) for m, x in enumerate(even)], x_even)
        return cls(s * x_odd, p, s * x_even, r)

    def iw(self, wn: np.ndarray) -> np.ndarray:
        """The tail on the Matsubara mesh, ``-i w sum_j p_j/(w^2+e_j^2) - sum_j r_j/(w^2+e_j^2)``."""
        wn = np.asarray(wn, dtype=float)
        w2 = wn * wn
        im = np.zeros_like(wn)
        re = np.zeros_like(wn)
        for e, p in zip(self.odd_energies, self.odd_weights):
            if p:
                im -= p / (w2 + e * e)
        for e, r in zip(self.even_energies, self.even_weights):
            if r:
                re -= r / (w2 + e * e)
        return re + 1j * (im * wn)

    def tau(self, tau: np.ndarray, beta: float) -> np.ndarray:
        """The tail in imaginary time, ``0 <= tau <= beta`` (ends as the limits ``0+``, ``beta-``)::

            odd:  -sum_j p_j cosh(e_j (tau - beta/2)) / (2 cosh(beta e_j/2))
            even:  sum_j r_j sinh(e_j (tau - beta/2)) / (2 e_j cosh(beta e_j/2))

        (``-c_1/2`` and ``c_2 (2 tau - beta)/4`` as ``e -> 0``), evaluated overflow-free.
        """
        beta = check_beta(beta)
        half = beta / 2
        x = np.asarray(tau, dtype=float) - half
        out = np.zeros_like(x)

        def ratio(e: float, sign: float) -> np.ndarray:
            # (exp(e x) + sign exp(-e x)) / (exp(e half) + exp(-e half)), |x| <= half
            return (np.exp(e * (x - half)) + sign * np.exp(-e * (x + half))) / (
                1.0 + math.exp(-2.0 * e * half))

        for e, p in zip(self.odd_energies.tolist(), self.odd_weights.tolist()):
            if p:
                out -= 0.5 * p * (ratio(e, 1.0) if e else 1.0)
        for e, r in zip(self.even_energies.tolist(), self.even_weights.tolist()):
            if r:
                out += r / (2.0 * e) * ratio(e, -1.0)
        return out

    def at_beta(self, beta: float) -> float:
        """``tail(tau = beta-) = -c_1/2 + sum_j r_j tanh(beta e_j/2) / (2 e_j)``."""
        e = self.even_energies
        even = float(np.sum(self.even_weights * np.tanh(check_beta(beta) * e / 2) / (2 * e)))
        return -0.5 * float(np.sum(self.odd_weights)) + even


def _vandermonde_solve(moments: list[float], x: np.ndarray) -> np.ndarray:
    """Weights ``a`` with ``sum_j a_j x_j^(2m) = moments[m]``; exactly 0 for zero moments."""
    if not any(moments):
        return np.zeros(len(moments))
    if len(moments) == 1:
        return np.array(moments, dtype=float)
    return np.linalg.solve(x[None, :] ** (2 * np.arange(len(moments)))[:, None], moments)


def _ratio_scale(moments: list[float]) -> float | None:
    """``sqrt(|c_(k+2)/c_k|)`` of the first two moments of one parity, if both are non-zero."""
    if len(moments) >= 2 and moments[0] != 0.0 and moments[1] != 0.0:
        return math.sqrt(abs(moments[1] / moments[0]))
    return None


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
    n_win = max(f.size - int(f.size * (1.0 - fraction)), min(f.size, _MIN_WINDOW))
    w = matsubara_freqs(beta, f.size)[-n_win:]
    out = list(c_known) + [0.0] * (n_moments - len(c_known))
    for parity in parities:
        ks = [k for k in range(len(c_known) + 1, n_moments + 1) if k % 2 == parity]
        if not ks:
            continue
        y = (f.imag if parity else f.real)[-n_win:]
        for k in range(2 - parity, len(c_known) + 1, 2):   # subtract the known moments
            if c_known[k - 1]:
                y = y - _moment_sign(k) * c_known[k - 1] / w ** k
        powers = ks + [ks[-1] + 2 * i for i in range(1, n_extra + 1)]
        p = powers[0]
        if w.size < len(powers):
            out[p - 1] = _moment_sign(p) * float(y[-1] * w[-1] ** p)
            continue
        basis = np.vander((w[0] / w) ** 2, len(powers), increasing=True)
        basis *= [_moment_sign(k) for k in powers]
        coef = np.linalg.lstsq(basis, y * w ** p, rcond=None)[0]
        for j, k in enumerate(ks):
            out[k - 1] = float(coef[j] * w[0] ** (2 * j))
    return tuple(float(x) for x in out)


def hybridisation_moments(model: AndersonModel, delta_iw: np.ndarray | None = None,
                          n_moments: int = 3) -> np.ndarray:
    """Moments ``(M_1, M_2, M_3, ...)`` of ``Delta(i w_n) = sum_k M_k/(i w_n)^k``.

    Discrete bath: exact, ``M_k = sum_j V_j^2 eps_j^(k-1)`` (:func:`pole_moments`). Continuous
    bath: :func:`estimate_tail` of ``delta_iw`` (default: every stored ``model.delta_iw``) with
    nothing known.

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
    if model.is_discrete:
        return pole_moments(model.bath_v ** 2, model.bath_eps, n_moments)
    data = model.delta_iw if delta_iw is None else delta_iw
    return np.array(estimate_tail(data, model.beta, None, n_moments=n_moments))


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
    tail = tuple(float(x) for x in tail)
    if n_moments is not None and n_moments > len(tail):   # only Re f enters: even moments
        tail = _fit_tail(f, beta, tail, n_moments, 0.5, 0, (0,))
    poles = TailPoles.from_moments(tail, min_scale=math.pi / beta)
    rest = f.real - poles.iw(matsubara_freqs(beta, f.size)).real
    return 2.0 / beta * float(np.sum(rest)) - poles.at_beta(beta)


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
