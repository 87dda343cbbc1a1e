"""The single-orbital Anderson impurity model (AIM), frozen and validated on construction.

Conventions (``docs/conventions.md``)::

    H = eps_d sum_s n_ds + U n_d_up n_d_dn
        + sum_{k,s} eps_k a+_ks a_ks + sum_{k,s} V_k (d+_s a_ks + a+_ks d_s)

Energies are in units of the Bethe half bandwidth ``D`` (default 1) and ``beta`` in ``1/D``.
The bath is either discrete (``bath_eps``, ``bath_v``; length ``Nb``) or continuous, given as
``Delta(i w_n)`` on the first ``len(delta_iw)`` positive fermionic Matsubara frequencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ._checks import check_keys
from .causality import causal_iw
from .mesh import check_beta, matsubara_freqs

__all__ = ["AndersonModel"]


def _finite_scalar(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_, str, bytes)):   # float(True) == 1.0, float("2") == 2.0
        raise ValueError(f"AndersonModel.{name} must be a real number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"AndersonModel.{name} must be a real number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"AndersonModel.{name} must be finite, got {out}")
    return out


def _real_vector(name: str, value: Any) -> np.ndarray:
    try:
        raw = np.asarray(value)
        if raw.dtype.kind == "c":
            raise ValueError(f"AndersonModel.{name} must be real (the model's V_k and eps_k are "
                             f"real numbers), got complex values {raw.tolist()}")
        if raw.dtype.kind not in "iuf":
            raise TypeError
        arr = np.array(raw, dtype=float, copy=True)
    except (TypeError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith("AndersonModel."):
            raise
        raise ValueError(f"AndersonModel.{name} must be a 1-d array of real numbers, got "
                         f"{value!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"AndersonModel.{name} must be a 1-d array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"AndersonModel.{name} contains non-finite values: {arr}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class AndersonModel:
    """Single-orbital, spin-degenerate Anderson impurity model.

    Args:
        U: Hubbard repulsion in ``U n_up n_dn`` (units of D), ``U >= 0``.
        eps_d: impurity level (units of D); chemical potential absorbed, half filling of a
            particle-hole symmetric model is ``eps_d = -U/2``.
        beta: inverse temperature (units of 1/D), ``1e-8 <= beta <= 1e8``
            (:data:`solvers.mesh.BETA_MIN`, :data:`solvers.mesh.BETA_MAX`).
        bath_eps: discrete bath energies ``eps_k`` (length Nb), or ``None``.
        bath_v: hybridisations ``V_k`` (length Nb), or ``None``.
        delta_iw: continuous hybridisation ``Delta(i w_n)``, ``n = 0 .. N-1``, or ``None``.

    Exactly one of the discrete bath (both ``bath_eps`` and ``bath_v``) or ``delta_iw`` is
    given. ``Nb = 0`` (empty arrays) is the atomic limit.

    Example:
        >>> m = AndersonModel(U=2.0, eps_d=-1.0, beta=10.0, bath_eps=[-0.5, 0.5], bath_v=[0.5, 0.5])
        >>> m.n_bath, m.is_particle_hole_symmetric()
        (2, True)
    """

    U: float
    eps_d: float
    beta: float
    bath_eps: np.ndarray | None = None
    bath_v: np.ndarray | None = None
    delta_iw: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        U = _finite_scalar("U", self.U)
        eps_d = _finite_scalar("eps_d", self.eps_d)
        beta = _finite_scalar("beta", self.beta)
        if beta <= 0:
            raise ValueError(f"AndersonModel.beta must be > 0, got {beta}")
        check_beta(beta, "AndersonModel.beta")
        if U < 0:
            raise ValueError(f"AndersonModel.U must be >= 0, got {U}")
        object.__setattr__(self, "U", U)
        object.__setattr__(self, "eps_d", eps_d)
        object.__setattr__(self, "beta", beta)

        has_discrete = self.bath_eps is not None or self.bath_v is not None
        if has_discrete and self.delta_iw is not None:
            raise ValueError("AndersonModel: give either a discrete bath (bath_eps, bath_v) "
                             "or delta_iw, not both")
        if has_discrete:
            if self.bath_eps is None or self.bath_v is None:
                missing = "bath_v" if self.bath_v is None else "bath_eps"
                raise ValueError(f"AndersonModel.{missing} is missing: a discrete bath needs "
                                 "both bath_eps and bath_v")
            eps = _real_vector("bath_eps", self.bath_eps)
            v = _real_vector("bath_v", self.bath_v)
            if eps.shape != v.shape:
                raise ValueError(f"AndersonModel.bath_v has length {v.size} but bath_eps has "
                                 f"length {eps.size}; they must match")
            object.__setattr__(self, "bath_eps", eps)
            object.__setattr__(self, "bath_v", v)
        elif self.delta_iw is not None:
            d = np.array(self.delta_iw, dtype=complex, copy=True)
            if d.ndim != 1 or d.size == 0:
                raise ValueError("AndersonModel.delta_iw must be a non-empty 1-d array on the "
                                 f"Matsubara mesh, got shape {d.shape}")
            if not np.all(np.isfinite(d)):
                raise ValueError("AndersonModel.delta_iw contains non-finite values")
            if not causal_iw(d):
                raise ValueError("AndersonModel.delta_iw is not causal: Im Delta(i w_n) must be "
                                 "<= 0 for w_n > 0")
            d.flags.writeable = False
            object.__setattr__(self, "delta_iw", d)
        else:
            raise ValueError("AndersonModel needs a bath: give bath_eps and bath_v (use empty "
                             "lists for the atomic limit) or delta_iw")

    # ------------------------------------------------------------------ properties
    @property
    def is_discrete(self) -> bool:
        """True when the bath is given as poles ``(bath_eps, bath_v)``."""
        return self.bath_eps is not None

    @property
    def n_bath(self) -> int | None:
        """Number of discrete bath sites ``Nb`` (``None`` for a continuous bath)."""
        return None if self.bath_eps is None else int(self.bath_eps.size)

    def delta(self, n_iw: int) -> np.ndarray:
        """``Delta(i w_n)`` on the first ``n_iw`` Matsubara frequencies.

        Discrete bath: ``Delta(i w_n) = sum_k V_k^2 / (i w_n - eps_k)``. Continuous bath: the stored
        values; asking for more frequencies than stored is an error.
        """
        if self.is_discrete:
            from .greens import hybridisation_iw

            return hybridisation_iw(matsubara_freqs(self.beta, n_iw), self.bath_eps, self.bath_v)
        if n_iw > self.delta_iw.size:
            raise ValueError(f"delta_iw holds {self.delta_iw.size} Matsubara frequencies, "
                             f"{n_iw} were requested")
        return np.array(self.delta_iw[:n_iw])

    def energy_scale(self, moments: Any = None) -> float:
        """``E = max(|eps_d|, |eps_d + U|, W, sqrt(sum_k V_k^2))`` (units of D): the largest
        energy of the model, which fixes how fine a solver's ``tau`` mesh and how high its
        Matsubara mesh must reach. ``W`` is the bath half width: ``max |eps_k|`` of the coupled
        levels, or ``sqrt(|M_3/M_1|)`` from the moments ``M_k`` of a continuous ``Delta(i w_n)``
        (:func:`solvers.tails.hybridisation_moments`; pass them as ``moments`` if known).
        Without hybridisation: ``max(|eps_d|, |eps_d + U|)``.

        Example:
            >>> m = AndersonModel(U=8.0, eps_d=-3.0, beta=10.0, bath_eps=[1.0], bath_v=[0.5])
            >>> m.energy_scale()
            5.0
        """
        atomic = max(abs(self.eps_d), abs(self.eps_d + self.U))
        if self.is_discrete:
            coupled = self.bath_eps[self.bath_v != 0.0]
            m1 = float(np.sum(self.bath_v ** 2))
            width = float(np.max(np.abs(coupled), initial=0.0))
        else:
            if moments is None:
                from .tails import hybridisation_moments

                moments = hybridisation_moments(self)
            m1 = float(moments[0])
            width = math.sqrt(abs(float(moments[2])) / m1) if m1 > 0 else 0.0
        return float(max(atomic, width, math.sqrt(max(m1, 0.0))))

    def is_particle_hole_symmetric(self, atol: float = 1e-12) -> bool:
        """Half filling of a particle-hole symmetric model: ``eps_d = -U/2`` and a bath
        invariant under ``eps_k -> -eps_k`` (or ``Re Delta(i w_n) = 0``)."""
        if abs(self.eps_d + self.U / 2) > atol:
            return False
        if self.is_discrete:
            a = sorted(zip(np.round(self.bath_eps, 12), np.round(np.abs(self.bath_v), 12)))
            b = sorted(zip(np.round(-self.bath_eps, 12), np.round(np.abs(self.bath_v), 12)))
            return bool(np.allclose(np.array(a, dtype=float).reshape(-1, 2),
                                    np.array(b, dtype=float).reshape(-1, 2), atol=1e-10))
        return bool(np.all(np.abs(self.delta_iw.real) <= atol * max(1.0, np.abs(self.delta_iw).max())))

    # ------------------------------------------------------------------ transformations
    def particle_hole_transformed(self) -> "AndersonModel":
        """The particle-hole image ``(eps_d, eps_k, V_k) -> (-eps_d - U, -eps_k, V_k)``.

        It maps ``G(tau) -> G(beta - tau)``, ``G_l -> (-1)^l G_l`` and
        ``Delta(i w_n) -> -conj(Delta(i w_n))`` (:func:`solvers.symmetry.particle_hole_model`;
        :mod:`solvers.symmetry` maps the solution).
        """
        from .symmetry import particle_hole_model   # solvers.symmetry imports this module

        return particle_hole_model(self)

    def replace(self, **changes: Any) -> "AndersonModel":
        """A copy with some fields changed (validated again)."""
        fields = dict(U=self.U, eps_d=self.eps_d, beta=self.beta, bath_eps=self.bath_eps,
                      bath_v=self.bath_v, delta_iw=self.delta_iw)
        fields.update(changes)
        return AndersonModel(**fields)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python representation (lists and floats), inverse of :meth:`from_dict`."""
        out: dict[str, Any] = {"U": self.U, "eps_d": self.eps_d, "beta": self.beta}
        if self.is_discrete:
            out["bath_eps"] = self.bath_eps.tolist()
            out["bath_v"] = self.bath_v.tolist()
        else:
            out["delta_iw_real"] = self.delta_iw.real.tolist()
            out["delta_iw_imag"] = self.delta_iw.imag.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AndersonModel":
        """Build a model from a mapping with keys ``U``, ``eps_d`` (or ``half_filling: true``),
        ``beta`` and either ``bath_eps``/``bath_v`` or ``delta_iw_real``/``delta_iw_imag``.

        ``half_filling: true`` means ``eps_d = -U/2`` with a particle-hole symmetric bath
        (:meth:`is_particle_hole_symmetric`); with any other bath it is refused, since the
        density would not be 1. Unknown or missing keys raise ``ValueError`` naming them.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a model must be a mapping of fields, got {type(data).__name__}")
        check_keys(data, ("U", "eps_d", "beta", "bath_eps", "bath_v", "delta_iw_real",
                          "delta_iw_imag", "half_filling", "name", "description"),
                   ("U", "beta"), what="model field")
        half = bool(data.get("half_filling", False))
        if "eps_d" in data and half:
            raise ValueError("give either 'eps_d' or 'half_filling: true', not both")
        if "eps_d" not in data and not half:
            raise ValueError("model field 'eps_d' is missing (or set 'half_filling: true')")
        U = _finite_scalar("U", data["U"])
        eps_d = -U / 2 if half else data["eps_d"]
        delta = None
        if "delta_iw_real" in data or "delta_iw_imag" in data:
            re = np.asarray(data.get("delta_iw_real", []), dtype=float)
            im = np.asarray(data.get("delta_iw_imag", []), dtype=float)
            if re.shape != im.shape:
                raise ValueError("delta_iw_real and delta_iw_imag must have the same length")
            delta = re + 1j * im
        model = cls(U=U, eps_d=eps_d, beta=data["beta"], bath_eps=data.get("bath_eps"),
                    bath_v=data.get("bath_v"), delta_iw=delta)
        if half and not model.is_particle_hole_symmetric():
            raise ValueError(
                "'half_filling: true' sets eps_d = -U/2, which is half filling only with a "
                "particle-hole symmetric bath (levels in pairs eps_k, -eps_k with equal |V_k|, or "
                "Re Delta(i w_n) = 0); this bath is not, so the density would not be 1: give "
                "'eps_d' instead (or a symmetric bath)")
        return model
