"""Finite-temperature exact diagonalisation of the Anderson impurity model (Nb <= 8).

Algorithm:

0. Cost, up front (:func:`.cost.estimate_cost`): bounds of the number of states in the Boltzmann
   window and a memory estimate; a solve that would need more memory than is available is
   refused (``ValueError`` quoting the estimate), one above 20000 window states, 2 GiB or with a
   sector that may exceed ``max_krylov_basis`` runs with a :class:`~solvers.result.SolverWarning`
   (Nb = 8 at ``beta <= 5``). ``info["cost_estimate"]`` keeps the figures.
1. Symmetry sectors ``(N_up, N_dn)``. ``H`` conserves the total spin ``S^2``: every multiplet has
   one member with ``S_z = 0`` (``N`` even) or ``S_z = -1/2`` (``N`` odd), so only the sectors
   ``N_dn - N_up in {0, 1}`` are diagonalised (one per particle number), each eigenstate ``|n>``
   standing for its ``2S+1`` multiplet members. ``S(S+1) = S_z^2 + S_z + |S+ n|^2`` is computed
   for every kept state (``S^2`` is first diagonalised inside numerically degenerate clusters);
   if a value is not a valid spin to ``1e-6`` (weighted by the Boltzmann factor; a Lanczos block
   smaller than a degeneracy returns such mixtures) the solve is repeated with a doubled
   ``eig_block`` (up to 8), then falls back to the plain path, which keeps every ``a <= b``
   sector (spin-flip twins ``(a, b)``/``(b, a)`` share their spectrum); ``info`` says so.
   Particle-hole symmetry, when present, halves the sectors again.
   ``E_0(a) + E_0(b)`` bounds (sums of one-body levels, ``U n_up n_dn >= lam (n_up + n_dn - 1)``)
   skip sectors that cannot hold a state inside the Boltzmann window ``E_0 + ln(1/cutoff)/beta``.
2. Small sectors: dense ``eigh``. Large sectors: a 40-step Lanczos probe estimates the ground
   energy and how crowded the window is. Many states: Lanczos on a Chebyshev filter of ``H``
   (:func:`.filtered.filtered_lowest_states`), whose basis stays close to the number of wanted
   states; few states: the same code with a degree-1 "filter" (plain Lanczos). Both
   re-orthogonalise in blocks and end with a Rayleigh-Ritz step and explicit residuals; when
   one fails, :func:`.lanczos.lowest_states` (block Lanczos, full re-orthogonalisation) decides
   (it also serves ``ground_state_only`` and sectors below 600 states).
3. ``G(i w_n)`` as a sum of poles: the exact Lehmann sum when the target sector is small (or
   moderate and reached from many kept states), otherwise Lanczos chains started at ``d+|n>`` and
   ``d|n>`` for every kept state ``|n>`` (advanced in blocks in small target sectors, one by one
   in large ones, whose vectors then stay in cache). With ``S^2``: a multiplet's ``sum_M G_up``
   equals ``(2S+1) (G_up + G_dn)/2`` on any member (``sum_s d_s R d+_s`` is a spin scalar), and
   in an ``S_z = 0`` sector the spin flip makes ``G_dn = G_up`` on every ``(E, S)`` subspace.
   Without it: only ``G_up`` is built and a twin state's ``G_up`` is the original's ``G_dn``.
4. ``g_iw``, ``g_l`` (closed form per pole) and ``g_tau`` come from the same poles, so the
   sum rule holds to rounding; ``Sigma`` follows from Dyson's equation. Only the Legendre series
   is truncated: if its ``n_l`` terms miss the poles' ``G(0+)`` or ``G(beta-)`` by more than
   :data:`solvers.legendre.LEGENDRE_TOL` (``beta |e|`` too large for ``n_l``, e.g. an atom with
   ``U = 20`` at ``beta = 1000`` and ``n_l = 80``: sum rule -0.47), the result has
   ``converged=False`` and a warning naming the ``n_l`` needed (the returned length stays ``n_l``:
   callers such as the database store exactly that many).
"""

from __future__ import annotations

import dataclasses
import math
import warnings as _warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from ..greens import dyson_sigma, g0_inverse_iw, poles_g_iw, poles_g_tau
from ..legendre import (LEGENDRE_TOL, check_legendre_reach, check_legendre_truncation,
                        g_l_from_poles, required_n_l)
from ..mesh import matsubara_freqs, tau_mesh
from ..model import AndersonModel
from ..options import SolverOptions
from ..registry import register_solver
from ..result import SolverResult, SolverWarning, warn_untrusted
from ..symmetry import particle_hole_density, particle_hole_double_occupancy, particle_hole_poles
from .cost import EDCost, available_memory, estimate_cost
from .filtered import filtered_lowest_states, probe_ritz
from .fock import build_spin_spaces, single_particle_matrix
from .lanczos import lanczos_poles, lanczos_poles_many, lowest_states
from .sector import Sector, spin_raise

__all__ = ["solve_ed", "estimate_cost", "MAX_BATH_SITES", "EDOptions"]

MAX_BATH_SITES = 8
_METHODS = ("auto", "dense", "lanczos")
_WEIGHT_FLOOR = 1e-15  # poles lighter than this (of total weight 1) are dropped and accounted
_PROBE_STEPS = 40      # Lanczos probe of a large sector
_MANY_STATES = 3       # probe Ritz values inside the window that select the filtered solver
_CHAIN_BLOCK = 32      # Green's-function chains advanced together in small sectors
_CHAIN_BLOCK_MAX_DIM = 3000  # larger sectors run one chain at a time (cache-resident vectors)
_FILTER_MIN_DIM = 600  # smaller sectors always use plain Lanczos (the basis is bounded by dim)
_SPIN_TOL = 1e-6       # |S(S+1) - valid| allowed (times clip(weight, 1e-2, 1))
_WARN_WINDOW_STATES = 20000     # estimate_cost: warn above this many window states (upper bound)
_WARN_MEMORY_BYTES = 2 * 2 ** 30  # ... or above this memory estimate


class _SpinCheckFailed(Exception):
    def __init__(self, message: str, iterative: bool) -> None:
        super().__init__(message)
        self.iterative = iterative  # the sector came from Lanczos (a larger block may cure it)


@dataclass
class _Kept:
    """Kept eigenstates of one representative sector."""

    sector: Sector
    energies: np.ndarray          # absolute energies
    vectors: np.ndarray           # (dim, n)
    residuals: np.ndarray         # |H v - E v| (estimates for the plain Lanczos path)
    images: list                  # plain: [(sector key, "up"|"dn", ph)]; SU(2): [ph flags]
    two_s: np.ndarray | None = None  # 2S per state (SU(2) path)
    iterative: bool = False       # states from (filtered) Lanczos rather than dense eigh


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


@dataclass(frozen=True)
class EDOptions(SolverOptions):
    """Options of the ``ed`` solver (meanings in :func:`solve_ed`), checked on construction;
    the model's checks (a discrete bath of at most :data:`MAX_BATH_SITES` sites, ``beta E``
    within the Legendre series' reach) are :func:`solve_ed`'s.

    Example:
        >>> EDOptions(cutoff=2.0)
        Traceback (most recent call last):
        ...
        ValueError: cutoff must lie in (0, 1), got 2.0
    """

    n_iw: int = 1024
    n_l: int = 80
    cutoff: float = 1e-10
    ground_state_only: bool = False
    method: str = "auto"
    dense_max_dim: int = 300
    use_symmetry: bool = True
    spin_symmetry: bool = True
    eig_block: int | None = None
    eig_tol: float = 1e-10
    max_krylov_basis: int = 1500
    dense_fallback_dim: int = 4000
    krylov_tol: float = 1e-12
    krylov_max_steps: int = 600
    n_tau: int | None = None
    seed: int = 0

    def result_sizes(self) -> tuple[int, int]:
        return self.n_iw, self.n_l

    def check(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"unknown ED method {self.method!r}; choose one of {_METHODS}")
        if not (0 < self.cutoff < 1):
            raise ValueError(f"cutoff must lie in (0, 1), got {self.cutoff}")
        if self.n_iw < 1 or self.n_l < 1:
            raise ValueError(f"n_iw and n_l must be >= 1, got n_iw={self.n_iw}, n_l={self.n_l}")
        if self.dense_max_dim < 1:
            raise ValueError(f"dense_max_dim must be >= 1, got {self.dense_max_dim}")
        if self.n_tau is not None and self.n_tau < 2:
            raise ValueError(f"n_tau must be >= 2, got {self.n_tau}")


def _check_model(model: AndersonModel, n_l: int) -> None:
    if not model.is_discrete:
        raise ValueError("ED needs a discrete bath: fit Delta(i w_n) with at most "
                         f"{MAX_BATH_SITES} bath sites first (solvers.fit_bath)")
    if model.n_bath > MAX_BATH_SITES:
        raise ValueError(f"ED supports at most {MAX_BATH_SITES} bath sites, the model has "
                         f"{model.n_bath}: fit a bath of at most {MAX_BATH_SITES} sites "
                         "(solvers.fit_bath); nothing is truncated silently")
    # the poles of G lie within a few E of 0; beyond MAX_BETA_ENERGY their Legendre series is
    # meaningless and its recursion runs for hours (U = 1e14): refuse before diagonalising
    check_legendre_reach(model.beta, model.energy_scale(), n_l, prefix="ED: ")


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




def _sector_upper_bound(levels: np.ndarray, a: int, b: int, U: float) -> float:
    """Upper bound of a sector's spectrum: the ``a`` (``b``) highest one-body levels plus ``U``."""
    top = np.concatenate([[0.0], np.cumsum(levels[::-1])])
    return float(top[a] + top[b] + max(U, 0.0))


def _su2_images(key: tuple[int, int], n_orb: int, ph: bool) -> list:
    """Sectors whose multiplets a representative ``(a, a)`` or ``(a, a+1)`` sector stands for:
    itself and (if symmetric and distinct) its particle-hole image."""
    a, b = key
    out = [(key, False)]
    if ph:
        img = tuple(sorted((n_orb - a, n_orb - b)))
        if img != key:
            out.append((img, True))
    return out


def _valid_two_s(s2: np.ndarray, odd: bool) -> np.ndarray:
    """Nearest ``2S`` of the right parity to ``S(S+1) = s2``."""
    two_s = np.sqrt(np.maximum(1.0 + 4.0 * s2, 0.0)) - 1.0
    if odd:
        return 2 * np.maximum(np.round((two_s - 1) / 2), 0).astype(int) + 1
    return 2 * np.maximum(np.round(two_s / 2), 0).astype(int)


def _resolve_spins(key, energies, vectors, residuals, weights, spaces, n_orb):
    """Total spin of each state of an ``S_z = 0, -1/2`` sector.

    Inside clusters of numerically degenerate energies ``S^2`` is diagonalised first (its
    eigenvectors are then rotated into states of definite ``S``; their energies become the
    Rayleigh quotients). Returns energies, vectors, ``2S`` and the largest weighted deviation of
    ``S(S+1)`` from a valid value.
    """
    a, b = key
    k = energies.size
    sz = 0.5 * (a - b)
    du, dd = spaces[a].dim, spaces[b].dim
    if a < n_orb and b > 0:
        x = spin_raise(vectors.T.reshape(k, du, dd), spaces[a], spaces[b - 1],
                       spaces[a + 1].dim).reshape(k, -1)
    else:
        x = np.zeros((k, 1))
    tol_e = np.maximum(1e-9 * np.maximum(1.0, np.abs(energies)), 1e3 * residuals)
    gaps = np.diff(energies)
    cuts = np.nonzero(gaps > np.maximum(tol_e[:-1], tol_e[1:]))[0] + 1
    s2 = np.empty(k)
    energies = energies.copy()
    vectors = vectors.copy() if k else vectors
    for idx in np.split(np.arange(k), cuts):
        if idx.size == 0:
            continue
        g = x[idx] @ x[idx].T + (sz * sz + sz) * np.eye(idx.size)
        if idx.size == 1:
            s2[idx] = g[0, 0]
            continue
        val, u = linalg.eigh(0.5 * (g + g.T))
        s2[idx] = val
        energies[idx] = np.einsum("ij,i,ij->j", u, energies[idx], u)
        vectors[:, idx] = vectors[:, idx] @ u
    order = np.argsort(energies, kind="stable")
    energies, vectors, s2 = energies[order], vectors[:, order], s2[order]
    two_s = _valid_two_s(s2, odd=(b - a) % 2 == 1)
    dev = np.abs(s2 - 0.25 * two_s * (two_s + 2))
    w = np.clip(weights[order] if weights is not None else 1.0, 1e-2, 1.0)
    return energies, vectors, two_s, float(np.max(dev * w)) if k else 0.0, order


def _members(key: tuple[int, int], two_s: int, ph: bool, n_orb: int) -> list:
    """Sectors of the ``2S+1`` members of a multiplet represented in ``key``."""
    n = key[0] + key[1]
    out = []
    for m2 in range(-two_s, two_s + 1, 2):  # 2 S_z
        a, b = (n + m2) // 2, (n - m2) // 2
        out.append((n_orb - a, n_orb - b) if ph else (a, b))
    return out
def solve_ed(model: AndersonModel, *, n_iw: int = 1024, n_l: int = 80, cutoff: float = 1e-10,
             ground_state_only: bool = False, method: str = "auto", dense_max_dim: int = 300,
             use_symmetry: bool = True, spin_symmetry: bool = True,
             eig_block: int | None = None, eig_tol: float = 1e-10,
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
        use_symmetry: use total spin ``S^2`` and (when the model has it) particle-hole
            symmetry; spin-flip twins are always used. Results agree either way.
        spin_symmetry: with ``use_symmetry``, also use ``S^2`` (only ``S_z = 0, -1/2`` sectors
            diagonalised, each state weighted by ``2S+1``). ``False`` keeps particle-hole only.
        eig_block: block size of the block Lanczos, which resolves degeneracies within a sector
            up to this size. Default: 1 (fastest), or 2 when bath levels repeat or a ``V_k`` is
            zero (the structures that make degenerate states within a sector).
        eig_tol: residual norm ``|H v - E v|`` of converged eigenpairs.
        max_krylov_basis: limit of the (filtered) Lanczos basis per sector; reaching it before every
            state in the Boltzmann window is certified sets ``converged=False`` and says so in
            ``info["warnings"]``.
        dense_fallback_dim: in ``"auto"`` mode, a sector up to this size is diagonalised densely
            after all when the Lanczos search hits ``max_krylov_basis``, and a target sector up
            to this size is diagonalised densely for an exact Lehmann sum when so many kept
            states reach it that ``eigh`` is cheaper than their chains
            (``n_starts >= 4e-4 dim^2``).
        krylov_tol: relative tolerance of each Green's-function chain's weighted contribution.
        krylov_max_steps: Krylov dimension limit per Green's-function chain.
        n_tau: if given, also return ``g_tau`` on a uniform mesh of ``n_tau`` points.
        seed: seed of the Lanczos start blocks (results do not depend on it beyond tolerance).

    Returns:
        :class:`SolverResult` with ``g_iw``, ``sigma_iw``, ``g_l``, ``density`` (both spins),
        ``double_occupancy``, ``energy`` (thermal ``<H>``), and in ``info`` the kept states
        ``(N_up, N_dn, E - E_0, weight)``, the sectors diagonalised and skipped, the partition
        function relative to the ground state, the ground energy and any limits that were hit,
        and the poles of ``G(z) = sum_p w_p / (z - e_p)``: ``pole_weights`` ``w_p`` and
        ``pole_energies`` ``e_p`` (arrays, units 1 and D; real-frequency spectra
        ``A(w) = -Im G(w + i eta)/pi`` follow from them).

    Example:
        >>> from solvers import AndersonModel, solve
        >>> m = AndersonModel(U=2.0, eps_d=-1.0, beta=10.0, bath_eps=[], bath_v=[])
        >>> r = solve("ed", m)
        >>> round(r.density, 10), round(r.double_occupancy, 7)  # exact: 1/(2 + 2 e^10)
        (1.0, 2.27e-05)
    """
    opts = EDOptions(n_iw=n_iw, n_l=n_l, cutoff=cutoff, ground_state_only=ground_state_only,
                     method=method, dense_max_dim=dense_max_dim, use_symmetry=use_symmetry,
                     spin_symmetry=spin_symmetry, eig_block=eig_block, eig_tol=eig_tol,
                     max_krylov_basis=max_krylov_basis, dense_fallback_dim=dense_fallback_dim,
                     krylov_tol=krylov_tol, krylov_max_steps=krylov_max_steps, n_tau=n_tau,
                     seed=seed)
    return _solve_ed(model, opts)


def _solve_ed(model: AndersonModel, opts: EDOptions) -> SolverResult:
    """:func:`solve_ed` with built options."""
    _check_model(model, opts.n_l)
    cost = _check_cost(model, cutoff=opts.cutoff, ground_state_only=opts.ground_state_only,
                       method=opts.method, dense_max_dim=opts.dense_max_dim,
                       use_symmetry=opts.use_symmetry, spin_symmetry=opts.spin_symmetry,
                       max_krylov_basis=opts.max_krylov_basis)
    su2 = bool(opts.use_symmetry and opts.spin_symmetry)
    note = None
    run = opts.kwargs()
    del run["spin_symmetry"]
    if run["eig_block"] is None:
        run["eig_block"] = _default_block(model)
    if su2:
        # states of definite S need every degenerate partner: a Lanczos block smaller than a
        # degeneracy returns mixtures, which the S check catches; retry with larger blocks
        while True:
            try:
                return _with_cost(_solve(model, su2=True, note=note, **run), cost)
            except _SpinCheckFailed as exc:
                if exc.iterative and run["eig_block"] < 8:
                    run["eig_block"] *= 2
                    note = f"eig_block raised to {run['eig_block']} ({exc})"
                    continue
                note = f"total-spin shortcut abandoned ({exc}); solved without it"
                break
    return _with_cost(_solve(model, su2=False, note=note, **run), cost)


register_solver("ed", solve_ed, options=EDOptions)


def _check_cost(model: AndersonModel, **options) -> EDCost:
    """Estimate the cost up front (:func:`.cost.estimate_cost`); refuse a solve whose memory
    estimate exceeds the available memory, warn about a large one."""
    cost = estimate_cost(model, **options)
    avail = available_memory()
    if avail is not None and cost.memory_bytes > avail:
        raise ValueError(f"ED would need more memory than is available ({avail / 2 ** 30:.3g} "
                         f"GiB): {cost.summary()}; use a larger beta, fewer bath sites (ed_fit) "
                         "or a larger cutoff")
    if (cost.uncertifiable or cost.window_max > _WARN_WINDOW_STATES
            or cost.memory_bytes > _WARN_MEMORY_BYTES):
        limit = (f"; a sector may hold more window states than max_krylov_basis="
                 f"{options['max_krylov_basis']} (then converged=False)"
                 if cost.uncertifiable else "")
        _warnings.warn(f"ED: expensive solve (minutes or more): {cost.summary()}{limit}",
                       SolverWarning, stacklevel=4)
    return cost


def _with_cost(result: SolverResult, cost: EDCost) -> SolverResult:
    result.info["cost_estimate"] = dataclasses.asdict(cost)
    return result


def _solve(model: AndersonModel, *, su2: bool, note: str | None, n_iw: int, n_l: int,
           cutoff: float, ground_state_only: bool, method: str, dense_max_dim: int,
           use_symmetry: bool, eig_block: int, eig_tol: float, max_krylov_basis: int,
           dense_fallback_dim: int, krylov_tol: float, krylov_max_steps: int,
           n_tau: int | None, seed: int) -> SolverResult:
    beta = model.beta
    spaces = build_spin_spaces(model.eps_d, model.bath_eps, model.bath_v)
    n_orb = len(spaces) - 1
    ph = bool(use_symmetry and model.is_particle_hole_symmetric(atol=1e-13))
    bound = _sector_lower_bounds(model)
    levels = np.linalg.eigvalsh(single_particle_matrix(model.eps_d, model.bath_eps,
                                                       model.bath_v))
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
            if su2:
                if not 0 <= b - a <= 1:
                    continue
                images = _su2_images((a, b), n_orb, ph)
                keys = [k for k, _ in images]
            else:
                images = _orbit((a, b), n_orb, ph)
                keys = [k for k, _, _ in images]
            rep = min(keys)
            if rep == (a, b):
                reps[rep] = (max(bound[k] for k in keys), images)
    found: dict[tuple[int, int], _Kept] = {}
    skipped: list[tuple[int, int]] = []
    dense_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    e_best = math.inf
    krylov_dims = []
    solvers_used = {"dense": 0, "lanczos": 0, "filtered": 0}
    for key, (lb, images) in sorted(reps.items(), key=lambda kv: kv[1][0]):
        if lb > e_best + width:
            skipped.append(key)
            continue
        sec = Sector(spaces[key[0]], spaces[key[1]], model.U)
        seed_k = seed + 7919 * key[0] + 104729 * key[1]
        res = None
        resid = None
        if not use_dense(sec.dim):
            apply = (lambda x, s=sec: s.apply(x.reshape(s.shape)).ravel())
            cut_fn = (lambda th, e_b=e_best: min(e_b, th) + width)
            weight_fn = (lambda th, e_b=e_best: np.exp(-beta * (th - min(e_b, th[0]))))
            many = False
            ritz = None
            limited = False
            if not ground_state_only and sec.dim >= _FILTER_MIN_DIM:
                ritz = probe_ritz(apply, sec.dim, _PROBE_STEPS, seed_k + 1)
                many = int(np.sum(ritz <= cut_fn(float(ritz[0])))) >= _MANY_STATES
            if many:
                degree = None
                for _ in range(3):  # lost orthogonality: a gentler filter, then plain Lanczos
                    fres = filtered_lowest_states(
                        apply, sec.dim, float(ritz[0]) + 1e-9 * (1 + abs(ritz[0])),
                        _sector_upper_bound(levels, key[0], key[1], model.U), cut_fn,
                        weight_fn, eig_tol, max_krylov_basis, seed_k, block=eig_block,
                        degree=degree)
                    if not fres.failed or fres.degree <= 4 or fres.krylov_dim > 50:
                        break
                    degree = max(4, fres.degree // 2)
                solvers_used["filtered"] += 1
                krylov_dims.append(fres.krylov_dim)
                limited = fres.limited
                if fres.energies.size:
                    wts = weight_fn(fres.energies)
                    if np.any(fres.residuals * np.clip(wts, 1e-4, 1.0) > eig_tol):
                        limited = True
                e, v, resid = fres.energies, fres.vectors, fres.residuals
                if limited:  # never trust a failed filter: plain Lanczos decides
                    many = False
                    resid = None
                    solvers_used["filtered_abandoned"] = solvers_used.get(
                        "filtered_abandoned", 0) + 1
            if not many and ritz is not None:
                # few states: plain Lanczos (a degree-1 "filter") with the same blocked
                # re-orthogonalisation and explicit final residuals
                fres = filtered_lowest_states(
                    apply, sec.dim, float(ritz[0]) + 1e-9 * (1 + abs(ritz[0])),
                    _sector_upper_bound(levels, key[0], key[1], model.U), cut_fn, weight_fn,
                    eig_tol, max_krylov_basis, seed_k, block=eig_block, degree=1)
                krylov_dims.append(fres.krylov_dim)
                ok = not fres.limited and fres.energies.size > 0 and not np.any(
                    fres.residuals * np.clip(weight_fn(fres.energies), 1e-4, 1.0) > eig_tol)
                if ok:
                    solvers_used["lanczos"] += 1
                    e, v, resid = fres.energies, fres.vectors, fres.residuals
                    many, limited = True, False  # done (after a possibly abandoned filter)
            if not many:
                fallback = method == "auto" and sec.dim <= dense_fallback_dim
                res = lowest_states(apply, sec.dim, cut_fn, weight_fn, eig_block, eig_tol,
                                    max_krylov_basis, seed_k)
                solvers_used["lanczos"] += 1
                krylov_dims.append(res.krylov_dim)
                limited = res.limited
                if res.limited and fallback:
                    res, limited = None, False  # the full spectrum after all
                else:
                    e, v = res.energies, res.vectors
                    if res.complete:
                        dense_cache[key] = (e, v)
                    wts = weight_fn(e) if e.size else e
                    resid = eig_tol / np.clip(wts, 1e-4, 1.0)
            if limited:
                warnings.append(f"sector {key}: max_krylov_basis={max_krylov_basis} reached "
                                "before every state in the Boltzmann window was certified")
        if resid is None:
            e, v = linalg.eigh(sec.dense())
            dense_cache[key] = (e, v)
            resid = np.full(e.size, 1e-13)
            solvers_used["dense"] += 1
        e_best = min(e_best, float(e[0]))
        found[key] = _Kept(sec, e, v, resid, images, iterative=key not in dense_cache
                           or not use_dense(sec.dim))

    # ---- kept states, spins, thermal weights, observables -----------------------------------
    e0 = e_best
    kept: dict[tuple[int, int], tuple[_Kept, np.ndarray, np.ndarray, np.ndarray]] = {}
    z_rel = 0.0
    spin_dev = 0.0
    for key, st in found.items():
        sel = st.energies <= e0 + width
        if not np.any(sel):
            continue
        en, vec, rs = st.energies[sel], st.vectors[:, sel], st.residuals[sel]
        if su2:
            wts = np.exp(-beta * (en - e0))
            en, vec, st.two_s, dev, _ = _resolve_spins(key, en, vec, rs, wts, spaces, n_orb)
            spin_dev = max(spin_dev, dev)
            if dev > _SPIN_TOL:
                raise _SpinCheckFailed(f"sector {key}: S(S+1) off a valid value by {dev:.1e}",
                                       st.iterative)
            mult = (st.two_s + 1).astype(float) * len(st.images)
        else:
            mult = np.full(en.size, float(len(st.images)))
        w = np.ones(en.size) if ground_state_only else np.exp(-beta * (en - e0))
        kept[key] = (st, en, vec, w)
        z_rel += float(np.sum(mult * w))

    density = docc = energy = 0.0
    kept_list = []
    n_multiplets = 0
    for key, (st, en, vec, w) in kept.items():
        sec = st.sector
        prob = (vec ** 2).T.reshape(-1, *sec.shape)
        n_tot = (np.einsum("kud,u->k", prob, sec.up.n_imp)
                 + np.einsum("kud,d->k", prob, sec.dn.n_imp))
        dbl = np.einsum("kud,ud->k", prob, sec.double)
        p = w / z_rel
        if su2:
            n_multiplets += en.size * len(st.images)
            pm = p * (st.two_s + 1)
            for _, is_ph in st.images:
                density += float(np.sum(pm * (particle_hole_density(n_tot) if is_ph else n_tot)))
                docc += float(np.sum(pm * (particle_hole_double_occupancy(dbl, n_tot) if is_ph
                                           else dbl)))
                energy += float(np.sum(pm * en))
                for x, y, ts in zip(en, p, st.two_s):
                    kept_list += [(m[0], m[1], float(x - e0), float(y))
                                  for m in _members(key, int(ts), is_ph, n_orb)]
        else:
            for img_key, _, is_ph in st.images:
                density += float(np.sum(p * (particle_hole_density(n_tot) if is_ph else n_tot)))
                docc += float(np.sum(p * (particle_hole_double_occupancy(dbl, n_tot) if is_ph
                                          else dbl)))
                energy += float(np.sum(p * en))
                kept_list += [(img_key[0], img_key[1], float(x - e0), float(y))
                              for x, y in zip(en, p)]

    # ---- Green's function poles ------------------------------------------------------------
    wn = matsubara_freqs(beta, n_iw)
    check = wn[np.unique(np.concatenate([np.arange(min(n_iw, 24)),
                                         np.geomspace(1, n_iw, 12).astype(int) - 1]))]

    def full_spectrum(a: int, b: int, n_starts: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Complete eigen-decomposition of sector (a, b) when it is small, or moderate and
        reached from so many start vectors that ``eigh`` beats the chains (else ``None``)."""
        if method == "lanczos":
            return None
        lo, hi = min(a, b), max(a, b)
        if (lo, hi) not in dense_cache:
            dim = spaces[lo].dim * spaces[hi].dim
            # eigh ~ dim^3 against chains ~ n_starts * 150 steps * 10 dim (measured ratio)
            many = (method == "auto" and dim <= dense_fallback_dim
                    and n_starts >= 4e-4 * dim ** 2)
            if not (use_dense(dim) or many):
                return None
            dense_cache[(lo, hi)] = tuple(linalg.eigh(Sector(spaces[lo], spaces[hi],
                                                             model.U).dense()))
        e, v = dense_cache[(lo, hi)]
        if (a, b) != (lo, hi):  # twin: swap the spin indices of every eigenvector
            da, db = spaces[lo].dim, spaces[hi].dim
            v = v.T.reshape(-1, da, db).transpose(0, 2, 1).reshape(-1, da * db).T
        return e, v

    # jobs grouped per target sector, so that the Lehmann/chain choice sees all start vectors
    poles = _Poles()
    chain_steps: list[int] = []
    chains_ok = True
    jobs_by_target: dict[tuple[int, int], list] = {}
    for key, (st, en, _vec, w) in kept.items():
        a, b = key
        base = w / z_rel
        if su2:
            mult = (st.two_s + 1).astype(float)
            flags = [is_ph for _, is_ph in st.images]
            spin_terms = ({"up": (mult, flags)} if a == b
                          else {"up": (0.5 * mult, flags), "dn": (0.5 * mult, flags)})
        else:
            spins = sorted({spin for _, spin, _ in st.images})
            spin_terms = {spin: (np.ones(en.size),
                                 [is_ph for _, s_, is_ph in st.images if s_ == spin])
                          for spin in spins}
        for spin, (fac, flags) in spin_terms.items():
            scale = base * fac
            da, db = (1, 0) if spin == "up" else (0, 1)
            for sign in (1, -1):
                ta, tb = a + sign * da, b + sign * db
                if 0 <= ta <= n_orb and 0 <= tb <= n_orb:
                    jobs_by_target.setdefault((ta, tb), []).append((key, spin, sign, scale,
                                                                    flags))

    def start_vectors(key, spin, sign):
        st, _, vec, _ = kept[key]
        sec = st.sector
        a, b = key
        psi = vec.T.reshape(-1, *sec.shape)
        if spin == "up":
            return (sec.cdag_up(psi, spaces[a + 1].dim) if sign > 0
                    else sec.c_up(psi, spaces[a - 1]))
        return (sec.cdag_dn(psi, spaces[b + 1].dim) if sign > 0
                else sec.c_dn(psi, spaces[b - 1]))

    for (ta, tb), jobs in jobs_by_target.items():
        n_starts = sum(kept[j[0]][1].size for j in jobs)
        spec = full_spectrum(ta, tb, n_starts)
        chain_jobs = []
        for key, spin, sign, scale, flags in jobs:
            en = kept[key][1]
            start = start_vectors(key, spin, sign)
            if spec is not None:
                et, vt = spec
                amp2 = (start.reshape(start.shape[0], -1) @ vt) ** 2
                pw = scale[:, None] * amp2
                pe = sign * (et[None, :] - en[:, None])
                for is_ph in flags:
                    poles.add(*(particle_hole_poles(pw, pe) if is_ph else (pw, pe)))
                continue
            chain_jobs.append((start.reshape(start.shape[0], -1), sign, en, scale, flags))
        if chain_jobs:
            target = Sector(spaces[ta], spaces[tb], model.U)
            starts = np.concatenate([j[0] for j in chain_jobs], axis=0)
            sign_c = np.concatenate([np.full(j[2].size, j[1]) for j in chain_jobs])
            en_c = np.concatenate([j[2] for j in chain_jobs])
            scale_c = np.concatenate([j[3] for j in chain_jobs])
            nflag_c = np.concatenate([np.full(j[2].size, len(j[4])) for j in chain_jobs])
            flag_c = [j[4] for j in chain_jobs for _ in range(j[2].size)]
            del chain_jobs
            if target.dim >= _CHAIN_BLOCK_MAX_DIM:
                # large sector: one chain at a time keeps its three vectors in cache
                apply = (lambda x, s=target: s.apply(x.reshape(s.shape)).ravel())
                chains = (lanczos_poles(apply, starts[i], en_c[i] + sign_c[i] * 1j * check,
                                        scale_c[i] * nflag_c[i], krylov_tol, krylov_max_steps)
                          for i in range(en_c.size))
            else:
                # small sector: chains advance together (per-call overhead dominates)
                chains = (ch for lo in range(0, en_c.size, _CHAIN_BLOCK)
                          for ch in lanczos_poles_many(
                              target.apply_cols,
                              np.ascontiguousarray(starts[lo:lo + _CHAIN_BLOCK].T),
                              en_c[lo:lo + _CHAIN_BLOCK, None]
                              + sign_c[lo:lo + _CHAIN_BLOCK, None] * 1j * check[None, :],
                              scale_c[lo:lo + _CHAIN_BLOCK] * nflag_c[lo:lo + _CHAIN_BLOCK],
                              krylov_tol, krylov_max_steps))
            for i, ch in enumerate(chains):
                chain_steps.append(ch.steps)
                chains_ok &= ch.converged
                pe = sign_c[i] * (ch.energies - en_c[i])
                pw = scale_c[i] * ch.weights
                for is_ph in flag_c[i]:
                    poles.add(*(particle_hole_poles(pw, pe) if is_ph else (pw, pe)))
    del jobs_by_target
    if not chains_ok:
        warnings.append(f"a Green's-function chain hit krylov_max_steps={krylov_max_steps}")

    weights, energies, dropped = poles.arrays()
    g_iw = poles_g_iw(weights, energies, wn)
    g_l = g_l_from_poles(weights, energies, beta, n_l)
    # the series must reproduce the poles' own G(0+), G(beta-) (where truncation errs most)
    truncated = check_legendre_truncation(
        g_l, beta, tuple(poles_g_tau(weights, energies, beta, np.array([0.0, beta]))))
    if truncated:
        heavy = np.abs(energies[weights > LEGENDRE_TOL])
        need = required_n_l(beta, float(heavy.max(initial=0.0)), LEGENDRE_TOL)
        warn_untrusted(warnings, f"{truncated}: ask for n_l >= {need}")
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
        "spin_symmetry_used": su2,
        "spin_symmetry_note": note,
        "spin_deviation_max": float(spin_dev),
        "n_multiplets": int(n_multiplets) if su2 else None,
        "eigensolvers": solvers_used,
        "boltzmann_window": float(width),
        "krylov_basis_max": int(max(krylov_dims)) if krylov_dims else 0,
        "gf_chains": len(chain_steps),
        "gf_chain_steps_max": int(max(chain_steps)) if chain_steps else 0,
        "gf_chain_steps_total": int(sum(chain_steps)),
        "n_poles": int(weights.size),
        "pole_weights": weights,
        "pole_energies": energies,
        "dropped_pole_weight": dropped,
        "warnings": warnings,
        "method": method,
        "ground_state_only": bool(ground_state_only),
    }
    return SolverResult(solver="ed", beta=beta, g_iw=g_iw, sigma_iw=sigma_iw, g_l=g_l,
                        density=density, double_occupancy=docc, energy=energy,
                        converged=not warnings, iterations=None, g_tau=g_tau, tau=tau, info=info)
