"""Finite-temperature exact diagonalisation of the Anderson impurity model (Nb <= 8).

Algorithm:

1. Sectors ``(N_up, N_dn)``; twins ``(a, b)`` and ``(b, a)`` share their spectrum (spin flip), so
   only ``a <= b`` is diagonalised. ``E_0(a) + E_0(b)`` (sums of the lowest one-body levels) is a
   lower bound of a sector's ground energy because ``U n_up n_dn >= 0``; sectors whose bound lies
   above ``E_0 + ln(1/cutoff)/beta`` cannot hold a state with Boltzmann weight above the cutoff
   and are skipped without diagonalisation.
2. Small sectors: dense ``eigh``. Large sectors: ARPACK Lanczos on the matrix-free
   ``H = H_up (x) 1 + 1 (x) H_dn + U n_up n_dn``, growing the number of states until the highest
   one found falls outside the Boltzmann window (or a stated limit stops it).
3. ``G(i w_n)`` as a sum of poles: the exact Lehmann sum when the target sector is dense, otherwise
   Lanczos chains started at ``d+|n>`` and ``d|n>`` for every kept state ``|n>``, all chains of one
   target sector advanced together. Paramagnetism (``G_up = G_dn``) and the twin sectors mean only
   ``G_up`` is built: a twin state's ``G_up`` is the original's ``G_dn``.
4. ``g_iw``, ``g_l`` (closed form per pole) and ``g_tau`` come from the same poles, so the
   sum rule holds to rounding; ``Sigma`` follows from Dyson's equation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from ..greens import dyson_sigma, g0_inverse_iw, poles_g_iw, poles_g_tau
from ..legendre import g_l_from_poles
from ..mesh import matsubara_freqs, tau_mesh
from ..model import AndersonModel
from ..registry import register_solver
from ..result import SolverResult
from .fock import build_spin_spaces, single_particle_matrix
from .lanczos import lanczos_poles, lowest_states
from .sector import Sector

__all__ = ["solve_ed", "MAX_BATH_SITES"]

MAX_BATH_SITES = 8
_METHODS = ("auto", "dense", "lanczos")
_WEIGHT_FLOOR = 1e-15  # poles lighter than this (of total weight 1) are dropped and accounted


@dataclass
class _Kept:
    """Kept eigenstates of one representative sector and the symmetry images it stands for."""

    sector: Sector
    energies: np.ndarray          # absolute energies
    vectors: np.ndarray           # (dim, n)
    images: list                  # [(sector key, "up"|"dn", particle-hole image?)]


@dataclass
class _Poles:
    weights: list = field(default_factory=list)
    energies: list = field(default_factory=list)

    def add(self, w: np.ndarray, e: np.ndarray) -> None:
        self.weights.append(np.ravel(w))
        self.energies.append(np.ravel(e))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, float]:
        w = np.concatenate(self.weights) if self.weights else np.zeros(0)
        e = np.concatenate(self.energies) if self.energies else np.zeros(0)
        light = w < _WEIGHT_FLOOR
        return w[~light], e[~light], float(np.sum(w[light]))


def _default_block(model: AndersonModel) -> int:
    """Block size 2 when the bath has repeated levels or decoupled sites, else 1."""
    eps = np.sort(model.bath_eps)
    repeated = eps.size > 1 and bool(np.any(np.diff(eps) < 1e-10))
    decoupled = bool(np.any(np.abs(model.bath_v) < 1e-14))
    return 2 if (repeated or decoupled) else 1


def _orbit(key: tuple[int, int], n_orb: int, ph: bool) -> list:
    """Distinct images of a sector under spin flip and (if symmetric) particle-hole.

    Each image is ``(sector, spin, ph)``: its ``G_up`` equals the representative's ``G_spin``,
    particle-hole transformed (poles ``e -> -e``) when ``ph``. Up-spin forms are preferred so that
    down-spin chains are run only when an image needs them.
    """
    a, b = key
    forms = [((a, b), "up", False)]
    if ph:
        forms.append(((n_orb - a, n_orb - b), "up", True))
    forms.append(((b, a), "dn", False))
    if ph:
        forms.append(((n_orb - b, n_orb - a), "dn", True))
    seen, out = set(), []
    for f in forms:
        if f[0] not in seen:
            seen.add(f[0])
            out.append(f)
    return out


def _check_options(model: AndersonModel, n_iw: int, n_l: int, cutoff: float, method: str,
                   dense_max_dim: int, n_tau: int | None) -> None:
    if not model.is_discrete:
        raise ValueError("ED needs a discrete bath: fit Delta(i w_n) with at most "
                         f"{MAX_BATH_SITES} bath sites first (solvers.fit_bath)")
    if model.n_bath > MAX_BATH_SITES:
        raise ValueError(f"ED supports at most {MAX_BATH_SITES} bath sites, the model has "
                         f"{model.n_bath}: fit a bath of at most {MAX_BATH_SITES} sites "
                         "(solvers.fit_bath); nothing is truncated silently")
    if method not in _METHODS:
        raise ValueError(f"unknown ED method {method!r}; choose one of {_METHODS}")
    if not (0 < cutoff < 1):
        raise ValueError(f"cutoff must lie in (0, 1), got {cutoff}")
    if n_iw < 1 or n_l < 1:
        raise ValueError(f"n_iw and n_l must be >= 1, got n_iw={n_iw}, n_l={n_l}")
    if dense_max_dim < 1:
        raise ValueError(f"dense_max_dim must be >= 1, got {dense_max_dim}")
    if n_tau is not None and n_tau < 2:
        raise ValueError(f"n_tau must be >= 2, got {n_tau}")


def _sector_lower_bounds(model: AndersonModel, n_lambda: int = 17) -> np.ndarray:
    """Lower bounds of every sector's ground energy, ``bound[N_up, N_dn]``.

    For any ``0 <= lam <= U``: ``U n_up n_dn >= lam (n_up + n_dn - 1)`` on all four impurity
    states, so ``H >= H_1(eps_d + lam) (x) 1 + 1 (x) H_1(eps_d + lam) - lam`` with the one-spin
    non-interacting ``H_1``, whose ``N``-particle ground energy is the sum of its ``N`` lowest
    one-body levels. The best bound over a grid of ``lam`` is returned.
    """
    best = None
    for lam in np.linspace(0.0, model.U, n_lambda if model.U > 0 else 1):
        levels = np.linalg.eigvalsh(single_particle_matrix(model.eps_d + lam, model.bath_eps,
                                                           model.bath_v))
        cum = np.concatenate([[0.0], np.cumsum(levels)])
        b = cum[:, None] + cum[None, :] - lam
        best = b if best is None else np.maximum(best, b)
    return best


@register_solver("ed")
def solve_ed(model: AndersonModel, *, n_iw: int = 1024, n_l: int = 80, cutoff: float = 1e-10,
             ground_state_only: bool = False, method: str = "auto", dense_max_dim: int = 300,
             use_symmetry: bool = True, eig_block: int | None = None, eig_tol: float = 1e-10,
             max_krylov_basis: int = 1500, dense_fallback_dim: int = 4000,
             krylov_tol: float = 1e-12,
             krylov_max_steps: int = 600, n_tau: int | None = None,
             seed: int = 0) -> SolverResult:
    """Exact diagonalisation at finite temperature (impurity + at most 8 bath sites).

    Args:
        model: discrete-bath Anderson model with ``Nb <= 8``.
        n_iw: Matsubara frequencies of ``g_iw``/``sigma_iw``.
        n_l: Legendre coefficients of ``g_l`` (exact, from the poles).
        cutoff: keep every eigenstate with ``exp(-beta (E - E_0)) > cutoff``.
        ground_state_only: keep only the (possibly degenerate) ground multiplet, i.e. the
            ``T = 0`` expectation values; ``G`` is still evaluated on the ``beta`` mesh.
        method: ``"auto"`` (dense below ``dense_max_dim``, Lanczos above), ``"dense"`` (dense
            ``eigh`` and the exact Lehmann sum everywhere) or ``"lanczos"`` (block-Lanczos states
            and Krylov Green's functions for every sector larger than 16 states).
        dense_max_dim: sector size up to which ``"auto"`` diagonalises densely.
        use_symmetry: use particle-hole symmetry when the model has it (spin-flip twins are
            always used); results agree either way.
        eig_block: block size of the block Lanczos, which resolves degeneracies within a sector
            up to this size. Default: 1 (fastest), or 2 when bath levels repeat or a ``V_k`` is
            zero (the structures that make degenerate states within a sector).
        eig_tol: residual norm ``|H v - E v|`` of converged eigenpairs.
        max_krylov_basis: limit of the block-Lanczos basis per sector; reaching it before every
            state in the Boltzmann window is certified sets ``converged=False`` and says so in
            ``info["warnings"]``.
        dense_fallback_dim: in ``"auto"`` mode, a sector up to this size is diagonalised densely
            after all when the Lanczos basis grows past a third of it (high temperature, many
            states in the window), and its full spectrum serves the Lehmann sum of sectors
            holding many kept states.
        krylov_tol: relative tolerance of each Green's-function chain's weighted contribution.
        krylov_max_steps: Krylov dimension limit per Green's-function chain.
        n_tau: if given, also return ``g_tau`` on a uniform mesh of ``n_tau`` points.
        seed: seed of the Lanczos start blocks (results do not depend on it beyond tolerance).

    Returns:
        :class:`SolverResult` with ``g_iw``, ``sigma_iw``, ``g_l``, ``density`` (both spins),
        ``double_occupancy``, ``energy`` (thermal ``<H>``), and in ``info`` the kept states
        ``(N_up, N_dn, E - E_0, weight)``, the sectors diagonalised and skipped, the partition
        function relative to the ground state, the ground energy and any limits that were hit.

    Example:
        >>> from solvers import AndersonModel, solve
        >>> m = AndersonModel(U=2.0, eps_d=-1.0, beta=10.0, bath_eps=[], bath_v=[])
        >>> r = solve("ed", m)
        >>> round(r.density, 10), round(r.double_occupancy, 7)  # exact: 1/(2 + 2 e^10)
        (1.0, 2.27e-05)
    """
    _check_options(model, n_iw, n_l, cutoff, method, dense_max_dim, n_tau)
    beta = model.beta
    spaces = build_spin_spaces(model.eps_d, model.bath_eps, model.bath_v)
    n_orb = len(spaces) - 1
    ph = bool(use_symmetry and model.is_particle_hole_symmetric(atol=1e-13))
    bound = _sector_lower_bounds(model)
    if eig_block is None:
        eig_block = _default_block(model)
    width = 1e-9 if ground_state_only else math.log(1.0 / cutoff) / beta
    warnings: list[str] = []

    def use_dense(dim: int) -> bool:
        if method == "dense":
            return True
        if method == "lanczos":
            return dim <= 16
        return dim <= dense_max_dim

    # ---- representative sectors, lowest lower bound first --------------------------------
    reps = {}
    for a in range(n_orb + 1):
        for b in range(n_orb + 1):
            images = _orbit((a, b), n_orb, ph)
            rep = min(img[0] for img in images)
            if rep == (a, b):
                reps[rep] = (max(bound[k] for k, _, _ in images), images)
    found: dict[tuple[int, int], _Kept] = {}
    skipped: list[tuple[int, int]] = []
    dense_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    e_best = math.inf
    krylov_dims = []
    for key, (lb, images) in sorted(reps.items(), key=lambda kv: kv[1][0]):
        if lb > e_best + width:
            skipped.append(key)
            continue
        sec = Sector(spaces[key[0]], spaces[key[1]], model.U)
        fallback = method == "auto" and sec.dim <= dense_fallback_dim
        res = None
        if not use_dense(sec.dim):
            basis_limit = max(eig_block, sec.dim // 3) if fallback else max_krylov_basis
            res = lowest_states(lambda x, s=sec: s.apply(x.reshape(s.shape)).ravel(), sec.dim,
                                lambda th: min(e_best, th) + width,
                                lambda th: np.exp(-beta * (th - min(e_best, th[0]))),
                                eig_block, eig_tol, min(basis_limit, max_krylov_basis),
                                seed + 7919 * key[0] + 104729 * key[1])
            krylov_dims.append(res.krylov_dim)
            if res.limited and fallback:
                res = None  # many states in the window: the full spectrum is cheaper
        if res is None:
            e, v = linalg.eigh(sec.dense())
            dense_cache[key] = (e, v)
        else:
            e, v = res.energies, res.vectors
            if res.complete:
                dense_cache[key] = (e, v)
            if res.limited:
                warnings.append(f"sector {key}: max_krylov_basis={max_krylov_basis} reached "
                                "before every state in the Boltzmann window was certified")
        e_best = min(e_best, float(e[0]))
        found[key] = _Kept(sec, e, v, images)

    # ---- kept states, thermal weights, observables ------------------------------------------
    e0 = e_best
    kept: dict[tuple[int, int], tuple[_Kept, np.ndarray, np.ndarray, np.ndarray]] = {}
    z_rel = 0.0
    for key, st in found.items():
        sel = st.energies <= e0 + width
        if not np.any(sel):
            continue
        en = st.energies[sel]
        w = np.ones(en.size) if ground_state_only else np.exp(-beta * (en - e0))
        kept[key] = (st, en, st.vectors[:, sel], w)
        z_rel += len(st.images) * float(np.sum(w))

    density = docc = energy = 0.0
    kept_list = []
    for key, (st, en, vec, w) in kept.items():
        sec = st.sector
        prob = (vec ** 2).T.reshape(-1, *sec.shape)
        n_tot = (np.einsum("kud,u->k", prob, sec.up.n_imp)
                 + np.einsum("kud,d->k", prob, sec.dn.n_imp))
        dbl = np.einsum("kud,ud->k", prob, sec.double)
        p = w / z_rel
        for img_key, _, is_ph in st.images:
            density += float(np.sum(p * ((2.0 - n_tot) if is_ph else n_tot)))
            docc += float(np.sum(p * ((1.0 - n_tot + dbl) if is_ph else dbl)))
            energy += float(np.sum(p * en))
            kept_list += [(img_key[0], img_key[1], float(x - e0), float(y)) for x, y in zip(en, p)]

    # ---- Green's function poles ------------------------------------------------------------
    wn = matsubara_freqs(beta, n_iw)
    check = wn[np.unique(np.concatenate([np.arange(min(n_iw, 24)),
                                         np.geomspace(1, n_iw, 12).astype(int) - 1]))]

    def full_spectrum(a: int, b: int, n_states: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Complete eigen-decomposition of sector (a, b) when it is small, or moderate and
        needed for many states (else ``None``: Krylov chains)."""
        if method == "lanczos":
            return None
        lo, hi = min(a, b), max(a, b)
        if (lo, hi) not in dense_cache:
            dim = spaces[lo].dim * spaces[hi].dim
            many = method == "auto" and n_states >= 32 and dim <= dense_fallback_dim
            if not (use_dense(dim) or many):
                return None
            dense_cache[(lo, hi)] = tuple(linalg.eigh(Sector(spaces[lo], spaces[hi],
                                                             model.U).dense()))
        e, v = dense_cache[(lo, hi)]
        if (a, b) != (lo, hi):  # twin: swap the spin indices of every eigenvector
            da, db = spaces[lo].dim, spaces[hi].dim
            v = v.T.reshape(-1, da, db).transpose(0, 2, 1).reshape(-1, da * db).T
        return e, v

    poles = _Poles()
    chain_steps: list[int] = []
    chains_ok = True
    for key, (st, en, vec, w) in kept.items():
        a, b = key
        sec = st.sector
        psi = vec.T.reshape(-1, *sec.shape)
        scale = w / z_rel
        spins = {spin for _, spin, _ in st.images}
        signs = {spin: [is_ph for _, s_, is_ph in st.images if s_ == spin] for spin in spins}
        for spin in sorted(spins):
            jobs = []
            if spin == "up":
                if a < n_orb:
                    jobs.append(((a + 1, b), sec.cdag_up(psi, spaces[a + 1].dim), 1.0))
                if a > 0:
                    jobs.append(((a - 1, b), sec.c_up(psi, spaces[a - 1]), -1.0))
            else:
                if b < n_orb:
                    jobs.append(((a, b + 1), sec.cdag_dn(psi, spaces[b + 1].dim), 1.0))
                if b > 0:
                    jobs.append(((a, b - 1), sec.c_dn(psi, spaces[b - 1]), -1.0))
            for (ta, tb), start, sign in jobs:
                spec = full_spectrum(ta, tb, en.size)
                if spec is not None:
                    et, vt = spec
                    amp2 = (start.reshape(start.shape[0], -1) @ vt) ** 2
                    pw = scale[:, None] * amp2
                    pe = sign * (et[None, :] - en[:, None])
                    for is_ph in signs[spin]:
                        poles.add(pw, -pe if is_ph else pe)
                    continue
                target = Sector(spaces[ta], spaces[tb], model.U)
                apply = (lambda x, s=target: s.apply(x.reshape(s.shape)).ravel())
                for i in range(en.size):
                    z = en[i] + sign * 1j * check
                    ch = lanczos_poles(apply, start[i], z, scale[i] * len(signs[spin]),
                                       krylov_tol, krylov_max_steps)
                    chain_steps.append(ch.steps)
                    chains_ok &= ch.converged
                    pe = sign * (ch.energies - en[i])
                    for is_ph in signs[spin]:
                        poles.add(scale[i] * ch.weights, -pe if is_ph else pe)
    if not chains_ok:
        warnings.append(f"a Green's-function chain hit krylov_max_steps={krylov_max_steps}")

    weights, energies, dropped = poles.arrays()
    g_iw = poles_g_iw(weights, energies, wn)
    g_l = g_l_from_poles(weights, energies, beta, n_l)
    sigma_iw = dyson_sigma(g0_inverse_iw(wn, model.eps_d, model.delta(n_iw)), g_iw)
    tau = g_tau = None
    if n_tau is not None:
        tau = tau_mesh(beta, n_tau)
        g_tau = poles_g_tau(weights, energies, beta, tau)

    info = {
        "ground_energy": float(e0),
        "partition_function_rel": float(z_rel),
        "kept_states": sorted(kept_list, key=lambda s_: s_[2]),
        "n_kept_states": len(kept_list),
        "sectors_diagonalised": sorted(found),
        "sectors_skipped": sorted(skipped),
        "particle_hole_symmetry_used": ph,
        "boltzmann_window": float(width),
        "krylov_basis_max": int(max(krylov_dims)) if krylov_dims else 0,
        "gf_chains": len(chain_steps),
        "gf_chain_steps_max": int(max(chain_steps)) if chain_steps else 0,
        "gf_chain_steps_total": int(sum(chain_steps)),
        "n_poles": int(weights.size),
        "dropped_pole_weight": dropped,
        "warnings": warnings,
        "method": method,
        "ground_state_only": bool(ground_state_only),
    }
    return SolverResult(solver="ed", beta=beta, g_iw=g_iw, sigma_iw=sigma_iw, g_l=g_l,
                        density=density, double_occupancy=docc, energy=energy,
                        converged=not warnings, iterations=None, g_tau=g_tau, tau=tau, info=info)
