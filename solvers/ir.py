"""Intermediate-representation (IR) basis of fermionic imaginary-time functions, via ``sparse-ir``.

The IR basis (Shinaoka, Otsuki, Ohzeki, Yoshimi, Phys. Rev. B 96, 035147 (2017); the
``sparse-ir`` package: Wallerberger et al., SoftwareX 21, 101266 (2023)) expands any fermionic
``G(tau)`` whose spectrum lies in ``[-wmax, wmax]`` in the left singular functions ``u_l`` of the
analytic-continuation kernel; the number of functions needed grows only like ``log(Lambda)`` with
``Lambda = beta wmax``, against ``sqrt(Lambda)`` for Legendre polynomials.

**Temperature-transferable coefficients.** This module uses one basis of *fixed* ``Lambda`` in the
dimensionless time ``s = tau / beta`` (``sparse_ir.FiniteTempBasis("F", 1, Lambda, eps)``, whose
``u_l(s)`` are orthonormal on ``[0, 1]``), so the coefficients

    g_ir[l] = int_0^1 u_l(s) G(beta s) ds                         (dimensionless, |g_ir| <= 1)

mean the same thing at every temperature and cover every spectrum with ``beta wmax <= Lambda``.
With the Legendre coefficients of ``docs/conventions.md``,
``G(tau) = sum_l sqrt(2l+1) P_l(2s - 1) G_l / beta``, and ``sqrt(2l+1) P_l(2s - 1)`` also
orthonormal on ``[0, 1]``, both changes of basis are fixed matrices, independent of ``beta``:

    g_ir = M (G_l / beta),     M[k, l] = int_0^1 u_k(s) sqrt(2l+1) P_l(2s - 1) ds
    G_l / beta = M^T g_ir      (exact for functions inside the IR span, to the basis' ``eps``)

``M`` is the overlap of the two orthonormal sets, computed with the basis functions ``u_l`` that
``sparse-ir`` provides on a composite Gauss-Legendre rule (panels refined geometrically towards
``s = 0, 1``, where ``u_l`` varies on the scale ``1/Lambda``); it is cached per
``(n_l, Lambda, eps)``. (A least-squares fit at the basis' sampling times would give the same
``g_ir`` for functions inside the span, but its transpose is not the way back.)

Example:
    >>> import numpy as np
    >>> from solvers import g_l_from_poles, g_tau_from_l
    >>> g_l = g_l_from_poles(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 50.0, 120)
    >>> basis = IRBasis(lambda_=2000.0, eps=1e-9)
    >>> g_ir = basis.from_legendre(g_l, 50.0)
    >>> back = basis.to_legendre(g_ir, 50.0, 120)
    >>> tau = np.linspace(0, 50, 101)
    >>> bool(np.max(np.abs(g_tau_from_l(back, 50.0, tau) - g_tau_from_l(g_l, 50.0, tau))) < 1e-8)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .legendre import legendre_tau_basis

__all__ = ["IRBasis", "DEFAULT_IR_LAMBDA", "DEFAULT_IR_EPS", "register_matrix"]

#: ``beta wmax`` of the default basis: ``beta <= 200`` with spectra inside ``|w| <= 10 D``.
DEFAULT_IR_LAMBDA = 2000.0
#: Singular-value cut-off of the default basis (``G(tau)`` round trips to ~1e-9).
DEFAULT_IR_EPS = 1e-9


@lru_cache(maxsize=4)
def _basis(lambda_: float, eps: float):
    import sparse_ir

    return sparse_ir.FiniteTempBasis("F", 1.0, float(lambda_), eps=float(eps))


def _quadrature_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre rule on ``[0, 1]``: uniform panels of width 0.01 (Legendre
    polynomials up to a few hundred) refined geometrically down to ``1e-9`` at both ends, where
    the IR functions of large ``Lambda`` vary on the scale ``1 / Lambda``."""
    ends = np.geomspace(1e-9, 0.01, 30)
    edges = np.unique(np.concatenate([[0.0], ends, np.linspace(0.01, 0.99, 99), 1 - ends,
                                      [1.0]]))
    x, w = np.polynomial.legendre.leggauss(24)
    a, b = edges[:-1, None], edges[1:, None]
    nodes = (0.5 * (b - a) * x[None, :] + 0.5 * (b + a)).ravel()
    weights = (0.5 * (b - a) * w[None, :]).ravel()
    return nodes, weights


#: Matrices handed in by :func:`register_matrix` (e.g. read from a trained model's checkpoint).
_REGISTERED: dict[tuple[int, float, float], np.ndarray] = {}


def register_matrix(n_l: int, lambda_: float, eps: float, matrix: np.ndarray) -> None:
    """Use ``matrix`` as ``M`` of the basis ``(Lambda, eps)`` with ``n_l`` Legendre coefficients.

    A trained model stores the ``M`` it was trained with; registering it at load time makes the
    prediction independent of the installed ``sparse-ir`` release and skips the singular-value
    expansion (seconds for ``Lambda = 2000``).
    """
    m = np.array(matrix, dtype=float)
    if m.ndim != 2 or m.shape[1] != int(n_l) or not np.all(np.isfinite(m)):
        raise ValueError(f"IR matrix: expected a finite [n_ir, {n_l}] array, got shape {m.shape}")
    m.setflags(write=False)
    _REGISTERED[(int(n_l), float(lambda_), float(eps))] = m


def _legendre_to_ir(n_l: int, lambda_: float, eps: float) -> np.ndarray:
    key = (int(n_l), float(lambda_), float(eps))
    if key in _REGISTERED:
        return _REGISTERED[key]
    return _computed_matrix(*key)


@lru_cache(maxsize=8)
def _computed_matrix(n_l: int, lambda_: float, eps: float) -> np.ndarray:
    basis = _basis(lambda_, eps)
    s, w = _quadrature_nodes()
    u = np.asarray(basis.u(s), dtype=float)                      # [n_ir, n_quad]
    p = legendre_tau_basis(int(n_l), 2 * s - 1)                  # [n_quad, n_l]
    m = (u * w[None, :]) @ p                                     # [n_ir, n_l]
    m.setflags(write=False)
    return m


@dataclass(frozen=True)
class IRBasis:
    """The fixed-``Lambda`` IR basis in ``s = tau/beta`` and its maps to and from Legendre.

    Attributes:
        lambda_: ``Lambda = beta wmax`` covered (dimensionless).
        eps: singular-value cut-off (relative accuracy of the expansion).
    """

    lambda_: float = DEFAULT_IR_LAMBDA
    eps: float = DEFAULT_IR_EPS

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lambda_) and self.lambda_ > 0):
            raise ValueError(f"IR basis: Lambda must be > 0, got {self.lambda_}")
        if not (0 < self.eps < 1):
            raise ValueError(f"IR basis: eps must lie in (0, 1), got {self.eps}")

    @property
    def size(self) -> int:
        """Number of basis functions."""
        for (_, lam, eps), m in _REGISTERED.items():
            if lam == float(self.lambda_) and eps == float(self.eps):
                return int(m.shape[0])
        return int(_basis(self.lambda_, self.eps).size)

    def wmax(self, beta: float) -> float:
        """Largest frequency represented at ``beta``: ``Lambda / beta`` (units of D)."""
        return float(self.lambda_) / float(beta)

    def matrix(self, n_l: int) -> np.ndarray:
        """``M`` ``[size, n_l]``: ``g_ir = M (G_l / beta)`` (read-only, cached)."""
        return _legendre_to_ir(int(n_l), float(self.lambda_), float(self.eps))

    def from_legendre(self, g_l: np.ndarray, beta: np.ndarray | float) -> np.ndarray:
        """IR coefficients ``[..., size]`` of ``G_l`` ``[..., n_l]`` at ``beta`` (broadcast over
        the leading axes)."""
        g_l = np.asarray(g_l, dtype=float)
        beta = np.asarray(beta, dtype=float)[..., None]
        return (g_l / beta) @ self.matrix(g_l.shape[-1]).T

    def to_legendre(self, g_ir: np.ndarray, beta: np.ndarray | float, n_l: int) -> np.ndarray:
        """``G_l`` ``[..., n_l]`` of IR coefficients ``[..., size]`` at ``beta``."""
        g_ir = np.asarray(g_ir, dtype=float)
        beta = np.asarray(beta, dtype=float)[..., None]
        return beta * (g_ir @ self.matrix(int(n_l)))

    def fingerprint(self, n_l: int) -> list[float]:
        """A few numbers that identify ``M`` (stored with a trained model, so that a different
        ``sparse-ir`` release that changed the basis is noticed instead of silently used)."""
        m = self.matrix(n_l)
        k = np.arange(m.shape[1])
        return [float(x) for x in m @ (1.0 / (1.0 + k))][:6]
