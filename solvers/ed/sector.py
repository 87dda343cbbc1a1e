"""A symmetry sector ``(N_up, N_dn)`` of the impurity+bath Hamiltonian, applied matrix-free.

``H = H_up (x) 1 + 1 (x) H_dn + U n_d_up n_d_dn``: on a state stored as ``psi[u, d]``,
``H psi = H_up psi + psi H_dn + U (n_imp_up n_imp_dn^T) * psi`` (``H_dn`` is real symmetric).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .fock import SpinSpace

__all__ = ["Sector", "spin_raise"]

# below this many basis states per spin the dense one-spin matrix beats CSR
_SPARSE_MIN_DIM = 48


class Sector:
    """The block of ``H`` with ``N_up`` up and ``N_dn`` down electrons."""

    def __init__(self, up: SpinSpace, dn: SpinSpace, U: float) -> None:
        self.up = up
        self.dn = dn
        self.U = float(U)
        self.key = (up.n_part, dn.n_part)
        self.shape = (up.dim, dn.dim)
        self.dim = up.dim * dn.dim
        self.double = np.outer(up.n_imp, dn.n_imp)  # n_d_up n_d_dn, diagonal
        self._u_mask = self.U * self.double
        self._hu = up.h_sparse if up.dim >= _SPARSE_MIN_DIM else up.h_dense
        self._hd_t = (dn.h_sparse.T.tocsr() if dn.dim >= _SPARSE_MIN_DIM else dn.h_dense)
        self._kron = None

    def apply(self, psi: np.ndarray) -> np.ndarray:
        """``H psi`` for ``psi`` of shape ``(dim_up, dim_dn)`` or a batch ``(k, dim_up, dim_dn)``."""
        if psi.ndim == 2:
            out = self._hu @ psi
            out += (self._hd_t @ psi.T).T
            out += self._u_mask * psi
            return out
        k = psi.shape[0]
        du, dd = self.shape
        # up part: (du, du) @ (du, k*dd) after moving the batch axis inside
        x = np.ascontiguousarray(psi.transpose(1, 0, 2)).reshape(du, k * dd)
        out = np.asarray(self._hu @ x).reshape(du, k, dd).transpose(1, 0, 2)
        y = psi.reshape(k * du, dd)
        out = out + np.asarray(self._hd_t @ y.T).T.reshape(k, du, dd)
        out += self._u_mask[None] * psi
        return out

    def apply_cols(self, x: np.ndarray) -> np.ndarray:
        """``H X`` for flattened states stored as the columns of ``x`` (shape ``(dim, k)``):
        the up part is one sparse product on rows of length ``dim_dn k``, the down part and the
        interaction one sparse ``1 (x) H_dn + U D`` on rows of length ``k``."""
        if self._kron is None:
            self._kron = self._kron_dn_u()
        x = np.ascontiguousarray(x)
        k = x.shape[1]
        du, dd = self.shape
        out = np.asarray(self.up.h_sparse @ x.reshape(du, dd * k)).reshape(du * dd, k)
        out += self._kron @ x
        return out

    def _kron_dn_u(self) -> sparse.csr_matrix:
        """CSR of ``1 (x) H_dn + U n_up n_dn`` on flattened states, built directly (the same
        block ``H_dn`` repeated ``dim_up`` times, the interaction added on its diagonal)."""
        du, dd = self.shape
        hd = self.dn.h_sparse.tocsr()
        hd.sum_duplicates()
        nnz = hd.nnz
        shift = np.arange(du)
        data = np.tile(hd.data, du)
        indices = (hd.indices[None, :] + dd * shift[:, None]).ravel()
        indptr = np.concatenate([(hd.indptr[None, :-1] + nnz * shift[:, None]).ravel(),
                                 [du * nnz]])
        kr = sparse.csr_matrix((data, indices, indptr), shape=(self.dim, self.dim))
        return (kr + sparse.diags(self._u_mask.ravel())).tocsr()

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``H v`` on a flattened state (for ``scipy.sparse.linalg.LinearOperator``)."""
        v = np.asarray(v)
        if v.ndim == 2:  # (dim, k) block from ARPACK
            k = v.shape[1]
            out = self.apply(v.T.reshape(k, *self.shape))
            return out.reshape(k, self.dim).T
        return self.apply(v.reshape(self.shape)).ravel()

    def dense(self) -> np.ndarray:
        """The full sector matrix (for small sectors and tests)."""
        du, dd = self.shape
        h = np.kron(self.up.h_dense, np.eye(dd)) + np.kron(np.eye(du), self.dn.h_dense)
        h[np.diag_indices_from(h)] += self._u_mask.ravel()
        return h

    def diagonal(self) -> np.ndarray:
        """Diagonal of ``H`` in this sector (flattened)."""
        return (np.diag(self.up.h_dense)[:, None] + np.diag(self.dn.h_dense)[None, :]
                + self._u_mask).ravel()

    # --- impurity operators on states of this sector ---------------------------------------
    def cdag_up(self, psi: np.ndarray, target_dim_up: int) -> np.ndarray:
        """``c+_{d,up} psi`` (batch axis first allowed) into sector ``(N_up+1, N_dn)``."""
        out = np.zeros(psi.shape[:-2] + (target_dim_up, self.shape[1]))
        out[..., self.up.cdag_dst, :] = psi[..., self.up.cdag_src, :]
        return out

    def c_up(self, psi: np.ndarray, source_space: SpinSpace) -> np.ndarray:
        """``c_{d,up} psi`` into sector ``(N_up-1, N_dn)``; ``source_space`` is the up space with
        ``N_up - 1`` particles (whose ``c+`` map is inverted)."""
        out = np.zeros(psi.shape[:-2] + (source_space.dim, self.shape[1]))
        out[..., source_space.cdag_src, :] = psi[..., source_space.cdag_dst, :]
        return out

    def cdag_dn(self, psi: np.ndarray, target_dim_dn: int) -> np.ndarray:
        """``c+_{d,dn} psi`` into sector ``(N_up, N_dn+1)`` (up to the constant sign (-1)^N_up)."""
        out = np.zeros(psi.shape[:-1] + (target_dim_dn,))
        out[..., self.dn.cdag_dst] = psi[..., self.dn.cdag_src]
        return out

    def c_dn(self, psi: np.ndarray, source_space: SpinSpace) -> np.ndarray:
        """``c_{d,dn} psi`` into sector ``(N_up, N_dn-1)`` (up to a constant sign)."""
        out = np.zeros(psi.shape[:-1] + (source_space.dim,))
        out[..., source_space.cdag_src] = psi[..., source_space.cdag_dst]
        return out


def spin_raise(psi: np.ndarray, up: SpinSpace, dn_minus: SpinSpace, dim_up_plus: int) -> np.ndarray:
    """``S+ psi = sum_i c+_{i,up} c_{i,dn} psi`` from sector ``(N_up, N_dn)`` into
    ``(N_up + 1, N_dn - 1)``, up to a constant sign per sector (which cancels in ``S^2``).

    Args:
        psi: states ``(..., dim_up, dim_dn)`` of the sector.
        up: the up space (``N_up`` particles).
        dn_minus: the down space with ``N_dn - 1`` particles (its ``c+`` maps are inverted).
        dim_up_plus: dimension of the up space with ``N_up + 1`` particles.
    """
    out = np.zeros(psi.shape[:-2] + (dim_up_plus, dn_minus.dim))
    for (su, du, gu), (sd, dd, gd) in zip(up.cdag_orb, dn_minus.cdag_orb):
        # <u'| c+_i |u> <d'| c_i |d> with d = c+_i d'
        block = psi[..., su[:, None], dd[None, :]] * (gu[:, None] * gd[None, :])
        out[..., du[:, None], sd[None, :]] += block
    return out
