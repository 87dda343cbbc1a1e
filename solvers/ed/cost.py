"""Up-front cost estimate of an ED solve: states in the Boltzmann window and memory.

ED keeps every eigenstate with ``E - E_0 < W = ln(1/cutoff)/beta``; at high temperature that is
every state (``4^(Nb+1)``, 262144 for ``Nb = 8``), which no solver here can hold. The estimate
brackets the number of those states without diagonalising anything, from one-body operator
bounds (valid on every ``(N_up, N_dn)`` sector, so eigenvalue counts compare sector by sector):

* ``U n_up n_dn >= lam (n_up + n_dn - 1)`` for ``0 <= lam <= U`` gives ``H >= H_lam``, a sum of
  two one-spin non-interacting Hamiltonians with level ``eps_d + lam`` (minus ``lam``); so the
  number of states of ``H`` below ``E`` is at most that of ``H_lam``, for every ``lam``;
* ``n_up n_dn <= (n_up + n_dn)/2`` gives ``H <= H_up`` (level ``eps_d + U/2``): at least as many
  states of ``H`` as of ``H_up`` lie below ``E``;
* ``E_0`` lies between the ground energies of ``H_lam`` and ``H_up``.

The many-particle levels of a one-body Hamiltonian are sums of its one-body levels (``2^(Nb+1)``
subsets per spin), so both counts are exact counts of subset pairs (sorted sums and prefix counts
per particle number: a few array operations per bound). Memory follows the solver's
path per diagonalised sector (dimension ``d``, window states ``k``): dense ``eigh`` (``2 d^2``
numbers, the eigenvectors kept) up to ``dense_max_dim``, otherwise a Krylov basis of
``min(max_krylov_basis, d)`` vectors while running and ``k`` kept vectors; a sector with more
window states than ``max_krylov_basis`` cannot be certified (ED would stop at the limit with
``converged=False``) and is counted with all ``k`` vectors, the storage an exact answer needs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from math import comb

import numpy as np

from ..model import AndersonModel
from .fock import single_particle_matrix

__all__ = ["EDCost", "estimate_cost", "available_memory"]

_N_LAMBDA = 17
_BYTES = 8  # float64


@dataclass(frozen=True)
class EDCost:
    """Estimated size of an ED solve (see :func:`estimate_cost`).

    Attributes:
        n_states: dimension of the Fock space, ``4^(Nb+1)``.
        window_min, window_max: bounds of the number of eigenstates with
            ``E - E_0 < boltzmann_window`` (all multiplet members counted).
        boltzmann_window: ``W = ln(1/cutoff)/beta`` (D), or ~0 for ``ground_state_only``.
        largest_sector: dimension of the largest sector that must be diagonalised.
        sector_window_max: the most window states in one such sector (upper bound).
        memory_bytes: estimated peak memory of eigenvectors and Krylov bases.
        uncertifiable: a sector may hold more window states than ``max_krylov_basis``.
    """

    n_states: int
    window_min: int
    window_max: int
    boltzmann_window: float
    largest_sector: int
    sector_window_max: int
    memory_bytes: float
    uncertifiable: bool

    def summary(self) -> str:
        """One line: the figures a warning or an error quotes."""
        return (f"{self.window_min}-{self.window_max} of {self.n_states} states in the Boltzmann "
                f"window W={self.boltzmann_window:.3g}, largest sector {self.largest_sector} "
                f"(up to {self.sector_window_max} window states), ~{_gib(self.memory_bytes)} of "
                "eigenvectors and Krylov bases")


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2 ** 30:.2g} GiB" if n_bytes >= 2 ** 27 else f"{n_bytes / 2 ** 20:.2g} MiB"


def _sector_counts(levels: np.ndarray, top: float) -> np.ndarray:
    """``c[a, b]``: eigenvalues ``<= top`` of the two-spin non-interacting Hamiltonian with
    one-body ``levels`` in sector ``(N_up, N_dn) = (a, b)`` (pairs of subset sums)."""
    n = levels.size
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
    sums = bits @ levels
    pop = bits.sum(axis=1)
    order = np.argsort(sums, kind="stable")
    # prefix[k, p]: subsets of popcount p among the k lowest sums
    prefix = np.zeros((sums.size + 1, n + 1), dtype=np.int64)
    prefix[1:] = np.cumsum(np.eye(n + 1, dtype=np.int64)[pop[order]], axis=0)
    reach = np.searchsorted(sums[order], top - sums, side="right")
    out = np.zeros((n + 1, n + 1), dtype=np.int64)
    np.add.at(out, pop, prefix[reach])
    return out


def available_memory() -> float | None:
    """Bytes of memory available to new allocations (``MemAvailable`` of ``/proc/meminfo``,
    else free physical pages), or ``None`` if the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate_cost(model: AndersonModel, *, cutoff: float = 1e-10, ground_state_only: bool = False,
                  method: str = "auto", dense_max_dim: int = 300, use_symmetry: bool = True,
                  spin_symmetry: bool = True, max_krylov_basis: int = 1500,
                  **_other: object) -> EDCost:
    """Estimate, without diagonalising, how many states ED keeps and how much memory it needs.

    Takes the options of :func:`solvers.ed.solve_ed` (others are ignored). Cost: a few
    milliseconds (subset sums of at most 9 one-body levels, 17 bounding Hamiltonians).
    The bounds are loose by a factor of a few (measured, Nb = 8: 0-740 for 48 kept states at
    ``beta = 50``, 504-12830 for 3350 at ``beta = 10``); at high temperature both reach
    ``4^(Nb+1)``.

    Args:
        model: discrete-bath Anderson model (``Nb <= 8``).
        cutoff, ground_state_only, method, dense_max_dim, use_symmetry, spin_symmetry,
        max_krylov_basis: as in :func:`solvers.ed.solve_ed`.

    Returns:
        :class:`EDCost` with bounds of the number of states in the Boltzmann window, the
        largest sector to diagonalise and the estimated memory (module docstring).

    Example:
        >>> m = AndersonModel(U=2.0, eps_d=-1.0, beta=0.1, bath_eps=[-0.5, 0.5], bath_v=[0.3, 0.3])
        >>> c = estimate_cost(m)
        >>> c.n_states, c.window_min, c.window_max   # hot: every state is in the window
        (64, 64, 64)
    """
    if not model.is_discrete:
        raise ValueError("ED needs a discrete bath (estimate_cost)")
    beta, U = model.beta, model.U
    width = 1e-9 if ground_state_only else math.log(1.0 / cutoff) / beta
    n_orb = model.n_bath + 1

    def spectrum(level: float) -> np.ndarray:
        return np.linalg.eigvalsh(single_particle_matrix(level, model.bath_eps, model.bath_v))

    # upper-bound Hamiltonian H_up (level eps_d + U/2): E_0 <= its ground energy
    up_levels = spectrum(model.eps_d + U / 2)
    e0_hi = 2.0 * float(np.sum(np.minimum(up_levels, 0.0)))
    # lower-bound Hamiltonians H_lam (shifted by -lam): E_0 >= their ground energies
    lams = np.linspace(0.0, U, _N_LAMBDA if U > 0 else 1)
    low_levels = [spectrum(model.eps_d + lam) for lam in lams]
    e0_lo = max(2.0 * float(np.sum(np.minimum(lv, 0.0))) - lam
                for lam, lv in zip(lams, low_levels))
    k_max = np.min([_sector_counts(lv, e0_hi + width + lam)
                    for lam, lv in zip(lams, low_levels)], axis=0)
    k_min = _sector_counts(up_levels, e0_lo + width)

    largest = sector_k = 0
    persistent = working = 0.0
    uncertifiable = False
    su2 = use_symmetry and spin_symmetry
    for a in range(n_orb + 1):
        for b in range(n_orb + 1):
            represented = (0 <= b - a <= 1) if su2 else (a <= b)
            k = int(k_max[a, b])
            if not represented or k == 0:
                continue
            dim = comb(n_orb, a) * comb(n_orb, b)
            largest = max(largest, dim)
            sector_k = max(sector_k, k)
            if method == "dense" or (method == "auto" and dim <= dense_max_dim):
                persistent += dim * dim * _BYTES
                working = max(working, 2.0 * dim * dim * _BYTES)
            else:
                persistent += k * dim * _BYTES
                working = max(working, min(max_krylov_basis, dim) * dim * _BYTES)
                uncertifiable |= k > max_krylov_basis
    window_min, window_max = int(k_min.sum()), int(k_max.sum())
    return EDCost(n_states=4 ** n_orb, window_min=int(window_min), window_max=int(window_max),
                  boltzmann_window=float(width), largest_sector=int(largest),
                  sector_window_max=int(sector_k), memory_bytes=float(persistent + working),
                  uncertifiable=bool(uncertifiable))
