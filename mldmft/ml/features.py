"""Feature and target encodings shared by training (database rows) and inference (solved models).

A :class:`RawBatch` holds what is known about ``n`` impurity models *before* the network runs:
the parameters, the hybridisation (Legendre ``delta_l`` and ``Delta(i w_n)``) and the cheap
solvers' ``G_l`` and ``Sigma(i w_n)``. :class:`EncodingSpec` says how it is turned into numbers.

Features (concatenated in this order, each block optional):

* ``delta_l``: ``Delta_l / beta`` for ``l < n_l_features``;
* ``scalars``: ``U, eps_d, beta, D`` (units D, 1/D);
* ``g_l``: ``G_l[s] / beta`` of every feature solver ``s``, ``l < n_l_features``;
* ``sigma_iw``: ``Re, Im Sigma[s](i w_n)`` of every feature solver, ``n < n_sigma`` (units D);
* ``docc``: the double occupancy ``<n_up n_dn>`` of every feature solver.

Basis of the ``delta_l`` and ``g_l`` blocks and of the ``g_l_correction`` target
(``EncodingSpec.basis``): ``legendre`` (the coefficients below) or ``ir`` -- the
temperature-transferable intermediate representation of :class:`solvers.ir.IRBasis`,
``g_ir = M (G_l / beta)``, the ``n_ir`` coefficients of ``G(beta s)`` in one fixed-``Lambda`` basis
of ``s = tau/beta`` (the same functions at every temperature; ``sum_k g_ir[k]^2`` is again the
mean square of ``G(tau)``). Decoding: ``G_l = G_l[base] + beta M^T y``.

Double occupancy (``EncodingSpec.docc``): one more target column,
``d[target] - d[base]``, decoded as ``d = d[base] + y_d``.

Dividing Legendre coefficients by ``beta`` makes them the coefficients of ``G`` as a function of
``x = 2 tau / beta - 1``: ``G(tau) = sum_l sqrt(2l+1) P_l(x) (G_l / beta)``, all of order one
whatever the temperature (``|G_0| / beta <= 1``), and ``mean_tau G(tau)^2 = sum_l (G_l/beta)^2``.

Targets:

* ``g_l_correction``: ``y_l = (G_l[target] - G_l[base]) / beta``, ``l < n_l_target``. Decoding:
  ``G_l = G_l[base] + beta y_l`` (higher ``l`` keep the base values). The squared error of ``y``
  is the mean-square error of ``G(tau)`` -- the quantity the benchmarks report.
* ``sigma_correction``: ``y = (Re dS, Im dS)``, ``dS_n = Sigma_n[target] - Sigma_n[base]`` for
  ``n < n_sigma``. Decoding by Dyson with the row's hybridisation, frequency by frequency::

      G_n  = 1 / (i w_n - eps_d - Delta_n - Sigma_n[base] - dS_n)        (n < n_sigma)
      dG_n = G_n - 1 / (i w_n - eps_d - Delta_n - Sigma_n[base])
      G_l  = G_l[base] + 2 Re sum_{n < n_sigma} conj(T_nl) dG_n

  the last line being the exact Legendre transform of a correction that lives on the first
  ``n_sigma`` frequencies (``G_l = 2 Re sum_n conj(T_nl) G(i w_n)``, ``T`` of
  :func:`solvers.legendre_t_matrix`). Beyond ``n_sigma`` the base solver's ``G`` is kept; the
  error this costs is reported as the encoding floor in ``metrics.json``.
* ``sigma_w_correction``: the same divided by ``w_n = (2n+1) pi / beta``,
  ``y = (Re dS_n, Im dS_n) / w_n`` (dimensionless; decoded as ``dS_n = w_n y_n``, then as above).
  An error ``e`` of ``Im y_0`` moves ``Z = 1 / (1 - Im Sigma(i w_0) / w_0)`` by ``Z^2 e`` at every
  temperature, where the same error of ``dS_0`` moves it by ``Z^2 e beta / pi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from solvers import dyson_g, g0_inverse_iw, legendre_t_matrix
from solvers.ir import IRBasis
from solvers.mesh import matsubara_freqs_many

from solvers.symmetry import (particle_hole_density, particle_hole_double_occupancy,
                              particle_hole_eps_d, particle_hole_g_l, particle_hole_iw,
                              particle_hole_sigma_iw)

from .constraints import density_from_g_l_rows

__all__ = ["EncodingSpec", "RawBatch", "build_features", "encode_target", "decode_target",
           "decode_docc", "feature_names", "feature_groups", "BASES"]

SCALARS = ("U", "eps_d", "beta", "D")
#: Bases of the Green's-function blocks and targets.
BASES = ("legendre", "ir")


@dataclass(frozen=True)
class EncodingSpec:
    """How a :class:`RawBatch` becomes features and targets (stored in every checkpoint).

    Attributes:
        target_solver: exact solver of the labels (e.g. ``"ed"``).
        base: cheap solver whose result is corrected.
        feature_solvers: cheap solvers whose results are features.
        blocks: feature blocks (``delta_l``, ``scalars``, ``g_l``, ``sigma_iw``).
        target: ``g_l_correction``, ``sigma_correction`` or ``sigma_w_correction``.
        n_l: Legendre coefficients of the database (and of the cheap solves at inference).
        n_l_features: coefficients per Legendre feature block.
        n_l_target: coefficients corrected by ``g_l_correction``.
        n_sigma: Matsubara frequencies of the Sigma target and features.
        solver_options: options the database used for each solver (reused at inference).
        basis: ``legendre`` or ``ir`` (Green's-function blocks and ``g_l_correction`` target).
        ir_lambda, ir_eps: the IR basis (``Lambda = beta wmax``, cut-off), for ``basis="ir"``.
        n_ir: its number of functions (stored, so a prediction needs no basis computation).
        docc: the double occupancy is an extra target (and the ``docc`` feature block may be used).
    """

    target_solver: str
    base: str
    feature_solvers: tuple[str, ...]
    blocks: tuple[str, ...]
    target: str
    n_l: int
    n_l_features: int
    n_l_target: int
    n_sigma: int
    solver_options: dict = field(default_factory=dict)
    basis: str = "legendre"
    ir_lambda: float = 2000.0
    ir_eps: float = 1e-9
    n_ir: int = 0
    docc: bool = False

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise ValueError(f"data.basis: {self.basis!r} is not one of {list(BASES)}")
        if self.basis == "ir" and self.n_ir < 1:
            raise ValueError("an IR encoding needs n_ir >= 1 (the size of its basis)")

    @property
    def ir(self) -> IRBasis:
        """The IR basis of a ``basis="ir"`` encoding."""
        return IRBasis(lambda_=float(self.ir_lambda), eps=float(self.ir_eps))

    @property
    def n_coeff_features(self) -> int:
        """Coefficients per Green's-function feature block."""
        return self.n_ir if self.basis == "ir" else self.n_l_features

    @property
    def n_g_targets(self) -> int:
        """Target columns of the ``G`` correction."""
        if self.target != "g_l_correction":
            return 2 * self.n_sigma
        return self.n_ir if self.basis == "ir" else self.n_l_target

    @property
    def cheap_solvers(self) -> tuple[str, ...]:
        """Cheap solvers a prediction needs: the base, then the feature solvers."""
        return tuple(dict.fromkeys((self.base,) + tuple(self.feature_solvers)))

    @property
    def needs_sigma(self) -> bool:
        return self.sigma_target or "sigma_iw" in self.blocks

    @property
    def sigma_target(self) -> bool:
        """The target is a self-energy correction (``sigma_correction``, ``sigma_w_correction``)."""
        return self.target in ("sigma_correction", "sigma_w_correction")

    @property
    def n_iw_delta(self) -> int:
        """Matsubara frequencies of ``Delta(i w_n)`` carried in a batch (Dyson and Z)."""
        return max(1, self.n_sigma if self.needs_sigma else 1)

    @property
    def n_features(self) -> int:
        n = 0
        for b in self.blocks:
            if b == "delta_l":
                n += self.n_coeff_features
            elif b == "scalars":
                n += len(SCALARS)
            elif b == "g_l":
                n += self.n_coeff_features * len(self.feature_solvers)
            elif b == "sigma_iw":
                n += 2 * self.n_sigma * len(self.feature_solvers)
            elif b == "docc":
                n += len(self.feature_solvers)
        return n

    @property
    def n_targets(self) -> int:
        return self.n_g_targets + (1 if self.docc else 0)

    def to_dict(self) -> dict[str, Any]:
        return {"target_solver": self.target_solver, "base": self.base,
                "feature_solvers": list(self.feature_solvers), "blocks": list(self.blocks),
                "target": self.target, "n_l": self.n_l, "n_l_features": self.n_l_features,
                "n_l_target": self.n_l_target, "n_sigma": self.n_sigma,
                "solver_options": {k: dict(v) for k, v in self.solver_options.items()},
                "basis": self.basis, "ir_lambda": float(self.ir_lambda),
                "ir_eps": float(self.ir_eps), "n_ir": int(self.n_ir), "docc": bool(self.docc)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EncodingSpec":
        d = dict(d)
        d["feature_solvers"] = tuple(d["feature_solvers"])
        d["blocks"] = tuple(d["blocks"])
        return cls(**d)


@dataclass(frozen=True, eq=False)
class RawBatch:
    """Inputs of ``n`` impurity models (rows), before encoding.

    Attributes:
        U, eps_d, beta, D: parameters, shape ``[n]`` (D: half bandwidth, ``2 sqrt(sum V^2)``).
        delta_l: Legendre coefficients of ``Delta(tau)``, ``[n, n_l]`` (1/D).
        delta_iw: ``Delta(i w_n)`` on the first frequencies, ``[n, n_iw]`` (D).
        g_l: ``G_l`` per solver name, each ``[n, n_l]`` (1/D).
        sigma_iw: ``Sigma(i w_n)`` per solver name, each ``[n, n_sigma]`` (D); may be empty.
        docc: double occupancy ``<n_up n_dn>`` per solver name, each ``[n]``; may be empty.
        density: the density each solver reports, each ``[n]`` (for the particle-hole map of
            ``docc``: a solver such as ``ed_fit`` reports the density of its own fitted model,
            not ``-2 G(beta-)`` of its Dyson-corrected ``G``); may be empty.
        fit_residual: the base solver's bath-fit residual ``[n]`` (weighted RMS deviation of
            its fitted ``Delta``, units of D) for bath-fitting bases such as ``ed3``; ``None``
            when unknown (see ``ConstraintConfig.exact_base_scale``).
    """

    U: np.ndarray
    eps_d: np.ndarray
    beta: np.ndarray
    D: np.ndarray
    delta_l: np.ndarray
    delta_iw: np.ndarray
    g_l: dict[str, np.ndarray]
    sigma_iw: dict[str, np.ndarray] = field(default_factory=dict)
    docc: dict[str, np.ndarray] = field(default_factory=dict)
    density: dict[str, np.ndarray] = field(default_factory=dict)
    fit_residual: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.beta.shape[0])

    def take(self, rows: np.ndarray | list[int]) -> "RawBatch":
        """The batch restricted to ``rows`` (indices or a boolean mask)."""
        rows = np.asarray(rows)
        return RawBatch(U=self.U[rows], eps_d=self.eps_d[rows], beta=self.beta[rows],
                        D=self.D[rows], delta_l=self.delta_l[rows],
                        delta_iw=self.delta_iw[rows],
                        g_l={k: v[rows] for k, v in self.g_l.items()},
                        sigma_iw={k: v[rows] for k, v in self.sigma_iw.items()},
                        docc={k: v[rows] for k, v in self.docc.items()},
                        density={k: v[rows] for k, v in self.density.items()},
                        fit_residual=None if self.fit_residual is None
                        else self.fit_residual[rows])

    def particle_hole(self) -> "RawBatch":
        """The particle-hole twins: ``eps_d -> -eps_d - U``, ``Delta_l, G_l -> (-1)^l (...)``,
        ``Delta(i w_n) -> -conj(Delta)``, ``Sigma(i w_n) -> U - conj(Sigma)``,
        ``d -> 1 - n + d``, ``n -> 2 - n`` (``n`` the solver's reported density, else
        ``-2 G(beta-)`` from its ``G_l``); the maps of :mod:`solvers.symmetry`."""
        docc = {}
        for k, d in self.docc.items():
            n = (self.density[k] if k in self.density
                 else density_from_g_l_rows(self.g_l[k], self.beta))
            docc[k] = particle_hole_double_occupancy(d, n)
        return replace(self, eps_d=particle_hole_eps_d(self.eps_d, self.U),
                       delta_l=particle_hole_g_l(self.delta_l),
                       delta_iw=particle_hole_iw(self.delta_iw),
                       g_l={k: particle_hole_g_l(v) for k, v in self.g_l.items()},
                       sigma_iw={k: particle_hole_sigma_iw(v, self.U)
                                 for k, v in self.sigma_iw.items()},
                       docc=docc,
                       density={k: particle_hole_density(v) for k, v in self.density.items()})


def _check(batch: RawBatch, spec: EncodingSpec, names: tuple[str, ...], sigma: bool,
           docc: bool = False) -> None:
    for name in names:
        if name not in batch.g_l:
            raise ValueError(f"the batch has no G_l of solver {name!r} (needed by the encoding)")
        if docc and name not in batch.docc:
            raise ValueError(f"the batch has no double occupancy of solver {name!r} (needed by "
                             "the encoding)")
        if sigma and name not in batch.sigma_iw:
            raise ValueError(f"the batch has no Sigma of solver {name!r} (needed by the encoding)")
    if batch.delta_l.shape[-1] < spec.n_l:
        raise ValueError(f"the batch has {batch.delta_l.shape[-1]} Legendre coefficients, the "
                         f"encoding needs {spec.n_l}")


def build_features(batch: RawBatch, spec: EncodingSpec) -> np.ndarray:
    """Feature matrix ``[n, spec.n_features]`` (float64) of a batch.

    Example:
        >>> import numpy as np
        >>> spec = EncodingSpec("ed", "ipt", ("ipt",), ("scalars",), "g_l_correction", 2, 2, 2, 1)
        >>> one = np.ones(1)
        >>> b = RawBatch(U=2 * one, eps_d=-one, beta=10 * one, D=one, delta_l=np.zeros((1, 2)),
        ...              delta_iw=np.zeros((1, 1), complex), g_l={"ipt": np.zeros((1, 2))})
        >>> build_features(b, spec).tolist()
        [[2.0, -1.0, 10.0, 1.0]]
    """
    _check(batch, spec, spec.feature_solvers, "sigma_iw" in spec.blocks, "docc" in spec.blocks)
    beta = batch.beta[:, None]
    nlf, ns = spec.n_l_features, spec.n_sigma

    def coeffs(g_l: np.ndarray) -> np.ndarray:
        if spec.basis == "ir":
            return spec.ir.from_legendre(g_l[:, :spec.n_l], batch.beta)
        return g_l[:, :nlf] / beta

    cols: list[np.ndarray] = []
    for block in spec.blocks:
        if block == "delta_l":
            cols.append(coeffs(batch.delta_l))
        elif block == "scalars":
            cols.append(np.stack([batch.U, batch.eps_d, batch.beta, batch.D], axis=1))
        elif block == "g_l":
            cols += [coeffs(batch.g_l[s]) for s in spec.feature_solvers]
        elif block == "docc":
            cols.append(np.stack([batch.docc[s] for s in spec.feature_solvers], axis=1))
        elif block == "sigma_iw":
            for s in spec.feature_solvers:
                sig = batch.sigma_iw[s][:, :ns]
                cols += [sig.real, sig.imag]
        else:
            raise ValueError(f"unknown feature block {block!r}")
    return np.concatenate(cols, axis=1).astype(float)


def feature_names(spec: EncodingSpec) -> list[str]:
    """Column names of :func:`build_features` (for plots and diagnostics)."""
    out: list[str] = []
    name = "ir" if spec.basis == "ir" else "l"
    for block in spec.blocks:
        if block == "delta_l":
            out += [f"delta_{name}[{l}]/beta" for l in range(spec.n_coeff_features)]
        elif block == "scalars":
            out += list(SCALARS)
        elif block == "g_l":
            out += [f"{s}.g_{name}[{l}]/beta" for s in spec.feature_solvers
                    for l in range(spec.n_coeff_features)]
        elif block == "docc":
            out += [f"{s}.docc" for s in spec.feature_solvers]
        elif block == "sigma_iw":
            out += [f"{s}.{part}sigma[{n}]" for s in spec.feature_solvers
                    for part in ("re_", "im_") for n in range(spec.n_sigma)]
    return out


def feature_groups(spec: EncodingSpec) -> np.ndarray:
    """Block label of every feature column: one per Legendre block (``delta_l``, each solver's
    ``g_l``), one per solver's ``sigma_iw`` (real and imaginary parts together), one per scalar.

    Example:
        >>> spec = EncodingSpec("ed", "ipt", ("ipt",), ("delta_l", "scalars"), "g_l_correction",
        ...                     3, 3, 3, 1)
        >>> feature_groups(spec).tolist()
        [0, 0, 0, 1, 2, 3, 4]
    """
    labels: list[int] = []
    nxt = 0
    for block in spec.blocks:
        if block == "delta_l":
            labels += [nxt] * spec.n_coeff_features
            nxt += 1
        elif block == "scalars":
            labels += list(range(nxt, nxt + len(SCALARS)))
            nxt += len(SCALARS)
        elif block == "docc":
            labels += [nxt] * len(spec.feature_solvers)
            nxt += 1
        else:
            width = spec.n_coeff_features if block == "g_l" else 2 * spec.n_sigma
            for k in range(len(spec.feature_solvers)):
                labels += [nxt + k] * width
            nxt += len(spec.feature_solvers)
    return np.asarray(labels, dtype=int)


def encode_target(batch: RawBatch, spec: EncodingSpec) -> np.ndarray:
    """Target matrix ``[n, spec.n_targets]`` (needs the target solver's results in ``batch``)."""
    sigma = spec.sigma_target
    _check(batch, spec, (spec.target_solver, spec.base), sigma, spec.docc)
    if not sigma:
        if spec.basis == "ir":
            diff = batch.g_l[spec.target_solver][:, :spec.n_l] - batch.g_l[spec.base][:, :spec.n_l]
            y = spec.ir.from_legendre(diff, batch.beta)
        else:
            nlt = spec.n_l_target
            diff = batch.g_l[spec.target_solver][:, :nlt] - batch.g_l[spec.base][:, :nlt]
            y = diff / batch.beta[:, None]
    else:
        ns = spec.n_sigma
        d_sigma = batch.sigma_iw[spec.target_solver][:, :ns] - batch.sigma_iw[spec.base][:, :ns]
        if spec.target == "sigma_w_correction":
            d_sigma = d_sigma / matsubara_freqs_many(batch.beta, ns)
        y = np.concatenate([d_sigma.real, d_sigma.imag], axis=1)
    if spec.docc:
        d = batch.docc[spec.target_solver] - batch.docc[spec.base]
        y = np.concatenate([y, d[:, None]], axis=1)
    return y


def decode_docc(y: np.ndarray, batch: RawBatch, spec: EncodingSpec) -> np.ndarray | None:
    """Double occupancy ``[..., n]`` from encoded targets (``None`` without a docc target)."""
    if not spec.docc:
        return None
    _check(batch, spec, (spec.base,), False, True)
    return batch.docc[spec.base] + np.asarray(y, dtype=float)[..., spec.n_g_targets]


def decode_target(y: np.ndarray, batch: RawBatch, spec: EncodingSpec) -> np.ndarray:
    """``G_l`` ``[..., n, n_l]`` from encoded targets ``y`` ``[..., n, n_targets]``.

    Leading axes of ``y`` (e.g. ensemble members) are kept.
    """
    y = np.asarray(y, dtype=float)[..., :spec.n_g_targets]
    _check(batch, spec, (spec.base,), spec.sigma_target)
    base = batch.g_l[spec.base][:, :spec.n_l]
    out = np.broadcast_to(base, y.shape[:-1] + (spec.n_l,)).copy()
    if spec.target == "g_l_correction":
        if spec.basis == "ir":
            out += spec.ir.to_legendre(y, batch.beta, spec.n_l)
        else:
            out[..., :spec.n_l_target] += batch.beta[:, None] * y
        return out
    ns = spec.n_sigma
    d_sigma = y[..., :ns] + 1j * y[..., ns:]
    wn = matsubara_freqs_many(batch.beta, ns)                    # w_n = (2n+1) pi / beta
    if spec.target == "sigma_w_correction":
        d_sigma = d_sigma * wn
    g0_inv = g0_inverse_iw(wn, batch.eps_d, batch.delta_iw[:, :ns])
    sigma_base = batch.sigma_iw[spec.base][:, :ns]
    d_g = dyson_g(g0_inv, sigma_base + d_sigma) - dyson_g(g0_inv, sigma_base)
    t = legendre_t_matrix(ns, spec.n_l)
    out += 2.0 * np.real(d_g @ np.conj(t))
    return out
