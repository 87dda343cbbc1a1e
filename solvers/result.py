"""The result every impurity solver returns."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from .greens import quasiparticle_weight
from .legendre import g_tau_from_l
from .mesh import matsubara_freqs

__all__ = ["Diagnostics", "SolverResult", "SolverWarning", "warn_untrusted"]


class SolverWarning(UserWarning):
    """A solver returned a result it cannot vouch for (``converged=False``; the same message is
    in ``info["warnings"]``)."""


def warn_untrusted(messages: list[str], message: str, stacklevel: int = 2) -> None:
    """Append ``message`` to a result's ``info["warnings"]`` list and emit it as a
    :class:`SolverWarning` (the caller also sets ``converged=False``)."""
    messages.append(message)
    warnings.warn(message, SolverWarning, stacklevel=stacklevel)


def _number(key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise ValueError(f"info[{key!r}] must be a number or None, got {value!r}")
    return float(value)


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"info[{key!r}] must be true or false, got {value!r}")
    return bool(value)


def _array(key: str, value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"info[{key!r}] must be an array of numbers or None, got "
                         f"{value!r}") from None


@dataclass(frozen=True, eq=False)
class Diagnostics:
    """The entries of a result's ``info`` that other modules read, typed
    (:attr:`SolverResult.diagnostics`). ``info`` keeps them under the same keys (it is what an
    HDF5 result file stores); every other ``info`` entry is a free-form detail of one solver.

    Attributes:
        warnings: why the result may not be trusted, one line each (every solver; a
            non-converged result says why here).
        spread: ``ml`` with an ensemble: the ensemble's standard deviation of each ``G_l``
            (units 1/D); ``None`` otherwise.
        causal_step: ``ml``: the share of the network's correction ``G_l - G_l[base]`` kept by
            the causality projection (1: the raw prediction was causal); ``None`` otherwise.
        trust_scale: ``ml``: the factor in ``[0, 1]`` the trust region applied to the
            correction (``|dG| <=`` trust ratio x the base bath-fit residual); ``None`` without
            a trust region.
        unlike_training: ``ml``: the trust region cut the correction below half its size (the
            hybridisation looks unlike the training data).
        extrapolated: ``ml``: the model lies outside the checkpoint's domain and was predicted
            anyway (``extrapolate=True``).
        fit_residual: ``ed_fit``/``edN``: weighted RMS deviation of the fitted bath's
            ``Delta(i w_n)`` (units D; 0 when the model's own bath was used); ``None`` otherwise.
        bath_eps, bath_v: ``ed_fit``/``edN``: the bath the ED solved (fitted or the model's own).

    Example:
        >>> d = Diagnostics.from_info({"causal_step": 0.5, "warnings": ["w"]})
        >>> d.causal_step, d.warnings, d.spread
        (0.5, ('w',), None)
    """

    warnings: tuple[str, ...] = ()
    spread: np.ndarray | None = None
    causal_step: float | None = None
    trust_scale: float | None = None
    unlike_training: bool = False
    extrapolated: bool = False
    fit_residual: float | None = None
    bath_eps: np.ndarray | None = None
    bath_v: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.warnings, str) or not all(isinstance(w, str) for w in self.warnings):
            raise ValueError(f"warnings must be a list of strings, got {self.warnings!r}")
        object.__setattr__(self, "warnings", tuple(self.warnings))
        for key in ("causal_step", "trust_scale", "fit_residual"):
            object.__setattr__(self, key, _number(key, getattr(self, key)))
        for key in ("unlike_training", "extrapolated"):
            object.__setattr__(self, key, _flag(key, getattr(self, key)))
        for key in ("spread", "bath_eps", "bath_v"):
            object.__setattr__(self, key, _array(key, getattr(self, key)))
        if self.causal_step is not None and not (math.isnan(self.causal_step)
                                                 or 0.0 <= self.causal_step <= 1.0):
            raise ValueError(f"causal_step must lie in [0, 1], got {self.causal_step!r}")

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> "Diagnostics":
        """The typed entries of an ``info`` mapping (missing keys: the defaults); a one-line
        ``ValueError`` naming an entry of the wrong type."""
        known = {f.name for f in fields(cls)}
        values = {k: info[k] for k in known if k in info and info[k] is not None}
        if "warnings" in values:
            w = values["warnings"]
            if isinstance(w, (str, bytes)) or not isinstance(w, (list, tuple)):
                raise ValueError(f"info['warnings'] must be a list of strings, got {w!r}")
        try:
            return cls(**values)
        except ValueError as err:
            text = str(err)
            raise ValueError(text if text.startswith("info[") else f"info: {text}") from None

    def to_info(self, *names: str) -> dict[str, Any]:
        """The named entries (all when none is named) as ``info`` keys and values
        (``warnings`` as a list), for a solver to store in its result's ``info``."""
        names = names or tuple(f.name for f in fields(self))
        out = {name: getattr(self, name) for name in names}
        if "warnings" in out:
            out["warnings"] = list(out["warnings"])
        return out


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
        info: solver-specific diagnostics (kept states, sectors, fitted bath, ...); those read
            by other modules also typed as :attr:`diagnostics`.
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
    def diagnostics(self) -> Diagnostics:
        """The entries of ``info`` other modules read (warnings, the network's spread, causal
        step, trust scale, the fitted bath, ...), typed: :class:`Diagnostics`."""
        return Diagnostics.from_info(self.info)

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
