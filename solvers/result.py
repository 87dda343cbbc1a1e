"""The result every impurity solver returns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .greens import quasiparticle_weight
from .legendre import g_tau_from_l
from .mesh import matsubara_freqs

__all__ = ["SolverResult", "SolverWarning", "warn_untrusted"]


class SolverWarning(UserWarning):
    """A solver returned a result it cannot vouch for (``converged=False``; the same message is
    in ``info["warnings"]``)."""


def warn_untrusted(messages: list[str], message: str, stacklevel: int = 2) -> None:
    """Append ``message`` to a result's ``info["warnings"]`` list and emit it as a
    :class:`SolverWarning` (the caller also sets ``converged=False``)."""
    messages.append(message)
    warnings.warn(message, SolverWarning, stacklevel=stacklevel)


@dataclass(frozen=True, eq=False)
class SolverResult:
    """Output of :func:`solvers.solve`; every array is per spin (paramagnetic ``G_up = G_dn``).

    Attributes:
        solver: registry name of the solver that produced it.
        beta: inverse temperature (1/D).
        g_iw: ``G(i w_n)``, ``n = 0 .. n_iw-1`` (complex, units 1/D).
        sigma_iw: ``Sigma(i w_n) = G0^-1 - G^-1`` on the same mesh (complex, units D).
        g_l: Legendre coefficients ``G_l = sqrt(2l+1) int_0^beta P_l(x(tau)) G(tau) dtau`` (real,
            units 1/D like ``G(i w_n)``).
        density: total impurity occupation ``<n_up + n_dn>`` (both spins).
        double_occupancy: ``<n_up n_dn>``, or ``None`` where the method does not define it.
        energy: thermal expectation ``<H>`` of the full impurity+bath Hamiltonian (units D), or
            ``None`` where the method does not define it.
        converged: ``False`` when an iteration or a limit stopped the method short of its tolerance.
        iterations: iteration count of iterative methods (``None`` otherwise).
        g_tau: ``G(tau)`` on ``tau`` when requested (``None`` otherwise).
        tau: the imaginary-time mesh of ``g_tau``.
        wall_time: seconds spent in the solver.
        info: solver-specific diagnostics (kept states, sectors, fitted bath, ...).
    """

    solver: str
    beta: float
    g_iw: np.ndarray
    sigma_iw: np.ndarray
    g_l: np.ndarray
    density: float
    double_occupancy: float | None = None
    energy: float | None = None
    converged: bool = True
    iterations: int | None = None
    g_tau: np.ndarray | None = None
    tau: np.ndarray | None = None
    wall_time: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def wn(self) -> np.ndarray:
        """Matsubara frequencies ``w_n`` of ``g_iw`` and ``sigma_iw``."""
        return matsubara_freqs(self.beta, self.g_iw.size)

    @property
    def z(self) -> float:
        """Quasiparticle weight estimate ``Z = 1/(1 - Im Sigma(i w_0)/w_0)``."""
        return quasiparticle_weight(self.sigma_iw, self.beta)

    def g_tau_at(self, tau: np.ndarray) -> np.ndarray:
        """``G(tau)`` rebuilt from ``g_l`` on any times in ``[0, beta]``."""
        return g_tau_from_l(self.g_l, self.beta, tau)
