"""Fock space of one spin species: orbital 0 is the impurity, orbitals 1..Nb the bath.

A basis state is a bit string (bit ``i`` = orbital ``i`` occupied) standing for
``prod_{i ascending} c+_i |0>``. Creating or annihilating on the impurity (orbital 0) therefore
never picks up a fermionic sign within its spin species. The full state of a sector
``(N_up, N_dn)`` is ``|u> (x) |d>``, stored as a matrix ``psi[u, d]``; an operator on the down
species passes the ``N_up`` up fermions, a constant sign per sector that cancels in every
expectation value and Green's function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = ["SpinSpace", "build_spin_spaces", "single_particle_matrix"]


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    count = np.zeros_like(x)
    while np.any(x):
        count += x & 1
        x = x >> 1
    return count


def single_particle_matrix(eps_d: float, bath_eps: np.ndarray, bath_v: np.ndarray) -> np.ndarray:
    """One-body Hamiltonian of one spin, ``h = [[eps_d, V], [V^T, diag(eps_k)]]``."""
    nb = len(bath_eps)
    h = np.zeros((nb + 1, nb + 1))
    h[0, 0] = eps_d
    h[0, 1:] = bath_v
    h[1:, 0] = bath_v
    h[1:, 1:] = np.diag(bath_eps)
    return h


@dataclass(frozen=True)
class SpinSpace:
    """Basis and one-spin Hamiltonian for ``n_part`` fermions of one spin in ``n_orb`` orbitals.

    Attributes:
        n_part: particle number of this spin species.
        states: sorted bit strings of the basis.
        h_dense: one-spin part of ``H`` (impurity level, bath levels, hybridisation), dense.
        h_sparse: the same as a CSR matrix.
        n_imp: impurity occupation (0 or 1) of each basis state.
        cdag_src, cdag_dst: ``c+_imp`` maps basis index ``src`` of this space to index ``dst``
            of the space with ``n_part + 1`` (sign +1, impurity is orbital 0).
        cdag_orb: for every orbital ``i`` (0 = impurity) the map ``(src, dst, sign)`` of
            ``c+_i`` into the space with ``n_part + 1``, with the fermionic sign
            ``(-1)^(occupied orbitals below i)`` (used for the total spin ``S^2``).
    """

    n_part: int
    states: np.ndarray
    h_dense: np.ndarray
    h_sparse: sparse.csr_matrix
    n_imp: np.ndarray
    cdag_src: np.ndarray
    cdag_dst: np.ndarray
    cdag_orb: tuple = ()

    @property
    def dim(self) -> int:
        return int(self.states.size)


def build_spin_spaces(eps_d: float, bath_eps: np.ndarray, bath_v: np.ndarray) -> list[SpinSpace]:
    """All particle-number spaces ``N = 0 .. Nb+1`` of one spin species."""
    n_orb = len(bath_eps) + 1
    all_states = np.arange(1 << n_orb, dtype=np.int64)
    counts = _popcount(all_states)
    index = np.empty(1 << n_orb, dtype=np.int64)
    onsite = np.concatenate([[eps_d], np.asarray(bath_eps, dtype=float)])
    occ_all = (all_states[:, None] >> np.arange(n_orb)[None, :]) & 1
    per_n = []
    for n in range(n_orb + 1):
        st = all_states[counts == n]
        index[st] = np.arange(st.size)
        per_n.append(st)

    spaces = []
    for n, st in enumerate(per_n):
        dim = st.size
        occ = occ_all[st]
        diag = occ @ onsite
        rows, cols, vals = [np.arange(dim)], [np.arange(dim)], [diag]
        for k in range(1, n_orb):
            v = bath_v[k - 1]
            if v == 0.0:
                continue
            # c+_0 c_k on states with orbital 0 empty and k occupied
            sel = (occ[:, 0] == 0) & (occ[:, k] == 1)
            src = st[sel]
            dst = src ^ 1 ^ (1 << k)
            between = (src & ((1 << k) - 1)) >> 1  # orbitals 1..k-1
            sign = 1.0 - 2.0 * (_popcount(between) & 1)
            i_src = index[src]
            i_dst = index[dst]
            rows += [i_dst, i_src]
            cols += [i_src, i_dst]
            vals += [v * sign, v * sign]
        h_sp = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(dim, dim))
        h_sp.sum_duplicates()
        empty = st[occ[:, 0] == 0]
        if n < n_orb:
            cdag_src = index[empty]
            cdag_dst = index[empty | 1]
        else:
            cdag_src = cdag_dst = np.zeros(0, dtype=np.int64)
        orb_maps = []
        if n < n_orb:
            for i in range(n_orb):
                src_states = st[occ[:, i] == 0]
                below = src_states & ((1 << i) - 1)
                sign = 1.0 - 2.0 * (_popcount(below) & 1)
                orb_maps.append((index[src_states], index[src_states | (1 << i)], sign))
        spaces.append(SpinSpace(n_part=n, states=st, h_dense=h_sp.toarray(), h_sparse=h_sp,
                                n_imp=occ[:, 0].astype(float), cdag_src=cdag_src,
                                cdag_dst=cdag_dst, cdag_orb=tuple(orb_maps)))
    return spaces
