"""Sampling recipe ``dmft_iterates``: the hybridisations that DMFT loops actually visit.

A network that drives a DMFT loop must be accurate on the hybridisations the loop passes through
on its way to self-consistency, not only on random baths: narrow quasiparticle resonances near
the Mott transition, gapped insulating hybridisations, doped metals, and every transient in
between. This recipe draws, per sample, a Bethe-lattice DMFT run with a cheap solver and stops it
after a random number of iterations; the hybridisation of that iterate, refitted with ``n_bath``
poles (:func:`solvers.fit_bath`), is the sample's discrete bath (the ED target needs poles). The
growth of training data "where DMFT goes" follows the dynamic-database idea of Arsenault, Lopez-
Bezanilla, von Lilienfeld and Millis, Phys. Rev. B 90, 155136 (2014).

Per sample ``i`` (its own generator, :func:`~mldmft.database.sampling.sample_rng`):

1. ``beta``, ``U``, the half bandwidth ``D`` of the lattice from their specs; a cheap solver
   from ``solvers`` (``ipt`` or ``ed<N>``: ED-DMFT with ``N`` refitted bath sites);
2. the filling: half filling (``mu = U/2``, particle-hole symmetrised loop) with probability
   ``half_filling_fraction``, otherwise ``mu = U/2 - s (U/2 + D)`` with ``s`` from
   ``mu_shift``;
3. the start: ``metal`` (semicircle), ``insulator`` (atomic ``G``), or a branch neighbour --
   ``up``: the converged metal-seeded solution at ``U - dU``; ``down``: the converged
   insulator-seeded solution at ``U + dU`` (``dU`` from ``neighbour_dU``) -- as a sweep would;
4. ``k`` uniform in ``0 .. max_iterations`` loop iterations from that start (Anderson or linear
   mixing, as the loop offers); a loop converged before ``k`` gives its fixed point;
5. ``Delta(i w_n)`` of that iterate -> ``n_bath`` poles; ``eps_d = -mu``.

Everything is a pure function of ``(seed, i)``, so generation stays resumable and independent of
the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from solvers import AndersonModel, check_keys, fit_bath, half_bandwidth

from ..h5util import write_text_atomic
from .sampling import ParamSpec, Sample, register_recipe, sample_rng

__all__ = ["DMFTIterateRecipe", "iterate_bath", "bath_list_entry", "write_bath_list"]

_STARTS = ("metal", "insulator", "up", "down")


def iterate_bath(delta_iw: np.ndarray, beta: float, n_bath: int, half_filling: bool = False):
    """The ``n_bath``-pole discrete bath (:func:`solvers.fit_bath`, two random restarts) of a
    DMFT iterate's ``Delta(i w_n)``: at half filling the particle-hole symmetric fit of
    ``i Im Delta``; a positive ``Im Delta`` (acausal transient) is clipped to 0 first."""
    delta = np.asarray(delta_iw, dtype=complex)
    if half_filling:
        delta = 1j * delta.imag
    delta = delta.real + 1j * np.minimum(delta.imag, 0.0)
    return fit_bath(delta, beta, n_bath, symmetric=True if half_filling else None, n_restarts=2)


def bath_list_entry(delta_iw: np.ndarray, beta: float, U: float, eps_d: float, n_bath: int,
                    half_filling: bool | None = None) -> dict[str, Any]:
    """One entry of a bath list (the file the ``bath_list`` recipe reads): the
    :func:`iterate_bath` fit of ``Delta(i w_n)`` with ``n_bath`` poles and the model's ``U``,
    ``eps_d``, ``beta`` (units of D, 1/D) and the fit's weighted RMS deviation
    ``fit_residual`` (units of D).

    ``half_filling=None`` means: ``eps_d = -U/2`` (to 1e-12) and ``Re Delta(i w_n) = 0``
    exactly (a particle-hole symmetrised loop); then the symmetric fit is used.

    Example:
        >>> from solvers import hybridisation_iw, matsubara_freqs
        >>> d = hybridisation_iw(matsubara_freqs(20.0, 128), [-0.5, 0.5], [0.4, 0.4])
        >>> e = bath_list_entry(1j * d.imag, 20.0, 2.0, -1.0, 2)
        >>> [round(x, 6) for x in e["bath_eps"]], e["fit_residual"] < 1e-10
        ([-0.5, 0.5], True)
    """
    delta = np.asarray(delta_iw, dtype=complex)
    if half_filling is None:
        half_filling = abs(eps_d + U / 2) < 1e-12 and bool(np.all(delta.real == 0))
    fit = iterate_bath(delta, beta, n_bath, half_filling=half_filling)
    return {"bath_eps": [float(x) for x in fit.bath_eps],
            "bath_v": [float(x) for x in fit.bath_v], "U": float(U), "eps_d": float(eps_d),
            "beta": float(beta), "fit_residual": float(fit.residual)}


def write_bath_list(path: str | Path, entries: Sequence[dict[str, Any]]) -> Path:
    """Write ``{baths: entries}`` as YAML (atomically), the file the ``bath_list`` recipe reads
    (``sampling=bath_list sampling.path=<path>``)."""
    return write_text_atomic(Path(path), yaml.safe_dump({"baths": list(entries)},
                                                        sort_keys=False))


def _parse_solver(name: str) -> tuple[str, dict[str, Any]]:
    """``"ipt"`` -> ``("ipt", {})``; ``"ed3"`` -> ``("ed", {"n_bath": 3})`` (refitted ED)."""
    if name.startswith("ed") and name[2:].isdigit():
        nb = int(name[2:])
        if not 1 <= nb <= 8:
            raise ValueError(f"sampling.solvers: {name!r}: ED-DMFT needs 1..8 bath sites")
        return "ed", {"n_bath": nb, "n_restarts": 1}  # one fit start per iteration: speed
    return name, {}


@dataclass(frozen=True)
class DMFTIterateRecipe:
    """Discrete baths fitted to the iterates of cheap-solver Bethe-lattice DMFT runs.

    Attributes:
        U, beta, D: specs of the interaction, inverse temperature and lattice half bandwidth.
        solvers: cheap DMFT solvers to choose from (``ipt``, ``ed1`` .. ``ed8``, any registered).
        mu_shift: spec of ``s`` in ``mu = U/2 - s (U/2 + D)`` off half filling.
        half_filling_fraction: share of samples at half filling.
        starts: start kinds to choose from (``metal``, ``insulator``, ``up``, ``down``).
        neighbour_dU: spec of the ``U`` distance of the ``up``/``down`` neighbour.
        max_iterations: ``k`` is drawn uniformly from ``0 .. max_iterations``.
        n_bath: poles of the refitted bath (the ED target's sites).
        n_iw: Matsubara frequencies of the loop.
    """

    U: ParamSpec
    beta: ParamSpec
    D: ParamSpec
    solvers: tuple[str, ...] = ("ipt", "ed2", "ed3")
    mu_shift: ParamSpec = ParamSpec("mu_shift", 0.0, 0.0)
    half_filling_fraction: float = 0.5
    starts: tuple[str, ...] = _STARTS
    neighbour_dU: ParamSpec = ParamSpec("neighbour_dU", 0.05, 0.3)
    max_iterations: int = 30
    n_bath: int = 8
    n_iw: int = 1024

    def __post_init__(self) -> None:
        self.beta.require_positive()
        self.D.require_positive()
        self.U.require_nonnegative()
        self.neighbour_dU.require_positive()
        if not self.solvers:
            raise ValueError("sampling.solvers: at least one cheap DMFT solver")
        for name in self.solvers:
            _parse_solver(name)
        bad = [s for s in self.starts if s not in _STARTS]
        if bad or not self.starts:
            raise ValueError(f"sampling.starts: choose from {list(_STARTS)}, got "
                             f"{list(self.starts)}")
        if not 0.0 <= self.half_filling_fraction <= 1.0:
            raise ValueError("sampling.half_filling_fraction must lie in [0, 1], got "
                             f"{self.half_filling_fraction}")
        if self.max_iterations < 0:
            raise ValueError(f"sampling.max_iterations must be >= 0, got {self.max_iterations}")
        if not 1 <= self.n_bath <= 8:
            raise ValueError(f"sampling.n_bath must lie in 1..8 (the ED target), got "
                             f"{self.n_bath}")
        if self.n_iw < 64:
            raise ValueError(f"sampling.n_iw must be >= 64, got {self.n_iw}")

    @property
    def max_bath(self) -> int:
        return int(self.n_bath)

    def windows(self) -> list[tuple[float, float]]:
        """``[(beta_max, e_max)]``: the atomic levels ``|eps_d|, |eps_d + U| <= U/2 + |s| (U/2 +
        D)`` plus the half bandwidth ``D`` of the refitted bath (the Legendre-order check of
        :func:`mldmft.database.generate.check_legendre_order`)."""
        s_max = max(abs(x) for x in self.mu_shift.bounds)
        e_at = max(u / 2 + s_max * (u / 2 + d) for u in self.U.bounds for d in self.D.bounds)
        return [(self.beta.bounds[1], e_at + self.D.bounds[1])]

    def plan(self, seed: int, index: int) -> dict[str, Any]:
        """The drawn parameters of sample ``index`` (before any DMFT iteration)."""
        rng = sample_rng(seed, index)
        beta = self.beta.draw(rng)
        U = self.U.draw(rng)
        D = self.D.draw(rng)
        solver = self.solvers[int(rng.integers(len(self.solvers)))]
        half = bool(rng.uniform() < self.half_filling_fraction)
        shift = self.mu_shift.draw(rng)
        mu = U / 2 if half else U / 2 - shift * (U / 2 + D)
        start = self.starts[int(rng.integers(len(self.starts)))]
        dU = self.neighbour_dU.draw(rng)
        k = int(rng.integers(0, self.max_iterations + 1))
        accel = "anderson" if rng.uniform() < 0.5 else "linear"
        return {"beta": beta, "U": U, "D": D, "solver": solver, "half_filling": half, "mu": mu,
                "start": start, "dU": dU, "iterations": k, "accel": accel}

    def draw(self, seed: int, index: int) -> Sample:
        from ..dmft.lattice import BetheLattice
        from ..dmft.loop import DMFTOptions, solve_point
        from ..dmft.steps import make_step
        from ..dmft.sweep import insulator_seed, metal_seed

        p = self.plan(seed, index)
        beta, U, mu = p["beta"], p["U"], p["mu"]
        lat = BetheLattice(D=p["D"])
        name, opts = _parse_solver(p["solver"])
        step = make_step(name, self.n_iw, opts)
        sym = p["half_filling"]
        state: dict = {}
        if p["start"] in ("metal", "up"):
            delta = metal_seed(lat, beta, self.n_iw)
        else:
            delta = insulator_seed(lat, beta, self.n_iw, U)
        if p["start"] in ("up", "down"):
            u_nb = max(0.0, U - p["dU"]) if p["start"] == "up" else U + p["dU"]
            mu_nb = mu + (u_nb - U) / 2  # the same shift from half filling
            pre = DMFTOptions(n_iw=self.n_iw, tol=1e-5, max_iter=60, accel="anderson",
                              symmetrise=sym)
            delta = solve_point(step, beta, u_nb, delta, lat, mu_nb, pre, state=state).delta_iw
        if p["iterations"] > 0:
            run = DMFTOptions(n_iw=self.n_iw, tol=1e-6, max_iter=p["iterations"],
                              accel=p["accel"], symmetrise=sym)
            delta = solve_point(step, beta, U, delta, lat, mu, run, state=state).delta_iw
        fit = iterate_bath(delta, beta, self.n_bath, half_filling=sym)
        model = AndersonModel(U=U, eps_d=-mu, beta=beta, bath_eps=fit.bath_eps,
                              bath_v=fit.bath_v)
        return Sample(index=index, model=model,
                      D=float(half_bandwidth(np.sum(np.asarray(fit.bath_v) ** 2))))


def _make(cfg: dict[str, Any], eps_spec: ParamSpec | None, half: bool) -> DMFTIterateRecipe:
    if eps_spec is not None or half:
        raise ValueError("sampling: dmft_iterates sets the filling through mu_shift and "
                         "half_filling_fraction, not eps_d / half_filling")
    check_keys(cfg, ("U", "beta", "D", "solvers", "mu_shift", "half_filling_fraction", "starts",
                     "neighbour_dU", "max_iterations", "n_bath", "n_iw"), ("U", "beta", "D"),
               prefix="sampling.", lead="dmft_iterates: ")
    kw: dict[str, Any] = {k: ParamSpec.parse(k, cfg[k]) for k in ("U", "beta", "D")}
    for key in ("mu_shift", "neighbour_dU"):
        if key in cfg:
            kw[key] = ParamSpec.parse(key, cfg[key])
    for key in ("solvers", "starts"):
        if key in cfg:
            kw[key] = tuple(str(s) for s in cfg[key])
    for key in ("max_iterations", "n_bath", "n_iw"):
        if key in cfg:
            val = cfg[key]
            if isinstance(val, bool) or not float(val).is_integer():
                raise ValueError(f"sampling.{key} must be an integer, got {val!r}")
            kw[key] = int(val)
    if "half_filling_fraction" in cfg:
        kw["half_filling_fraction"] = float(cfg["half_filling_fraction"])
    return DMFTIterateRecipe(**kw)


register_recipe("dmft_iterates", _make)
