"""The Bethe lattice: semicircular density of states, self-consistency, kinetic energy.

Half bandwidth ``D`` (default 1), hopping ``t = D/2``; self-consistency
``Delta(i w_n) = t^2 G(i w_n)`` (``docs/conventions.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers import bethe_g_iw, matsubara_freqs

__all__ = ["BetheLattice"]


@dataclass(frozen=True)
class BetheLattice:
    """Bethe lattice of half bandwidth ``D`` (units of energy).

    Example:
        >>> lat = BetheLattice(D=1.0)
        >>> round(lat.t, 3)
        0.5
    """

    D: float = 1.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.D) or self.D <= 0:
            raise ValueError(f"lattice D must be > 0, got {self.D}")

    @property
    def t(self) -> float:
        """Hopping ``t = D/2``."""
        return self.D / 2

    def delta_iw(self, g_iw: np.ndarray) -> np.ndarray:
        """Self-consistency ``Delta(i w_n) = t^2 G(i w_n)``."""
        return self.t ** 2 * np.asarray(g_iw)

    def g0_iw(self, beta: float, n_iw: int, mu: float = 0.0) -> np.ndarray:
        """Non-interacting local Green's function (semicircle) at chemical potential ``mu``."""
        return bethe_g_iw(matsubara_freqs(beta, n_iw), D=self.D, mu=mu)

    def kinetic_energy(self, g_iw: np.ndarray, beta: float) -> float:
        """Kinetic energy per site, both spins: ``E_kin = 2 T sum_{n in Z} t^2 G(i w_n)^2``.

        The ``t^2/(i w_n)^2`` tail is summed exactly (``sum_{n>=0} 1/w_n^2 = beta^2/8``):
        ``E_kin = (4 t^2/beta) [Re sum_{n<N} (G_n^2 + 1/w_n^2) - beta^2/8]``. At ``U = 0`` and
        ``T -> 0`` it tends to ``-4D/(3 pi)``.
        """
        g_iw = np.asarray(g_iw)
        wn = matsubara_freqs(beta, g_iw.size)
        s = np.sum(np.real(g_iw ** 2) + 1.0 / wn ** 2)
        return float(4 * self.t ** 2 / beta * (s - beta ** 2 / 8))
