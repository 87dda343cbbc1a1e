"""Solve one drawn sample with the target and cheap solvers; build its particle-hole twin.

A record is a dict of numpy arrays with a leading row axis (1 row, or 2 with the twin), keyed by
the dataset names of :mod:`mldmft.h5schema` (``params/U``, ``solvers/ed/g_l``, ...).

Particle-hole twin (``docs/conventions.md``), at no solver cost, by the maps of
:mod:`solvers.symmetry`: ``(eps_d, eps_k, V_k) -> (-eps_d - U, -eps_k, V_k)``,
``G_l -> (-1)^l G_l``, ``Delta_l -> (-1)^l Delta_l``, ``Sigma(i w_n) -> U - conj(Sigma(i w_n))``,
``n -> 2 - n``, ``d -> 1 - n + d``; the twin's bath levels are stored in ascending order when the
sample's are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solvers import g_l_from_poles, solve
from solvers.symmetry import (particle_hole_bath, particle_hole_density,
                              particle_hole_double_occupancy, particle_hole_eps_d,
                              particle_hole_g_l, particle_hole_sigma_iw)
from solvers.ed import MAX_BATH_SITES

from ..h5schema import STATUS_FAILED, STATUS_NOT_CONVERGED, STATUS_OK
from .sampling import Sample

__all__ = ["SolverSpec", "RecordLayout", "solve_sample", "particle_hole_twin"]


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver name and its options."""

    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RecordLayout:
    """Array sizes shared by every record of a database."""

    n_l: int
    n_sigma: int
    n_bath_max: int
    solvers: tuple[SolverSpec, ...]
    augment: bool = True


def _solver_fields(spec: SolverSpec, sample: Sample, layout: RecordLayout) -> dict[str, Any]:
    p = f"solvers/{spec.name}/"
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        opts = dict(spec.options)
        opts.setdefault("n_l", layout.n_l)
        res = solve(spec.name, sample.model, **opts)
        if res.g_l.size < layout.n_l:
            raise ValueError(f"{spec.name} returned {res.g_l.size} Legendre coefficients, "
                             f"{layout.n_l} needed")
        if res.g_iw.size < layout.n_sigma:
            raise ValueError(f"{spec.name} returned {res.g_iw.size} Matsubara points, "
                             f"{layout.n_sigma} needed")
        g_l = np.asarray(res.g_l[:layout.n_l], dtype=float)
        sigma = np.asarray(res.sigma_iw[:layout.n_sigma], dtype=complex)
        if not (np.all(np.isfinite(g_l)) and np.all(np.isfinite(sigma))):
            raise FloatingPointError(f"{spec.name} returned non-finite values")
        out[p + "g_l"] = g_l
        out[p + "sigma_iw"] = sigma
        out[p + "density"] = float(res.density)
        out[p + "double_occupancy"] = (np.nan if res.double_occupancy is None
                                       else float(res.double_occupancy))
        out[p + "status"] = STATUS_OK if res.converged else STATUS_NOT_CONVERGED
        out[p + "error"] = "" if res.converged else "; ".join(
            res.diagnostics.warnings) or "not converged"
    except Exception as err:  # one sample's failure is recorded, the run goes on
        out[p + "g_l"] = np.full(layout.n_l, np.nan)
        out[p + "sigma_iw"] = np.full(layout.n_sigma, np.nan + 0j)
        out[p + "density"] = np.nan
        out[p + "double_occupancy"] = np.nan
        out[p + "status"] = STATUS_FAILED
        out[p + "error"] = f"{type(err).__name__}: {err}"[:500]
    out[p + "wall_time"] = time.perf_counter() - t0
    return out


def solve_sample(sample: Sample, layout: RecordLayout) -> dict[str, np.ndarray]:
    """All fields of one sample (and its twin when ``layout.augment``), rows first."""
    m = sample.model
    nb = m.n_bath
    eps = np.full(layout.n_bath_max, np.nan)
    v = np.zeros(layout.n_bath_max)
    eps[:nb] = m.bath_eps
    v[:nb] = m.bath_v
    row: dict[str, Any] = {
        "sample_index": sample.index, "group_id": sample.index, "augmented": False,
        "params/U": m.U, "params/eps_d": m.eps_d, "params/beta": m.beta, "params/D": sample.D,
        "params/n_bath": nb, "bath/eps": eps, "bath/v": v,
        # Delta(tau) = -sum_k V_k^2 exp(-tau eps_k)/(1 + exp(-beta eps_k)): a pole sum
        "delta_l": g_l_from_poles(m.bath_v ** 2, m.bath_eps, m.beta, layout.n_l),
    }
    for spec in layout.solvers:
        row.update(_solver_fields(spec, sample, layout))
    rows = [row]
    if layout.augment:
        rows.append(particle_hole_twin(row, layout))
    return {k: np.asarray([r[k] for r in rows]) for k in row}


def particle_hole_twin(row: dict[str, Any], layout: RecordLayout) -> dict[str, Any]:
    """The particle-hole image of one row (:mod:`solvers.symmetry`; solvers are not rerun)."""
    U = float(row["params/U"])
    twin = dict(row)
    twin["augmented"] = True
    twin["params/eps_d"] = particle_hole_eps_d(float(row["params/eps_d"]), U)
    nb = int(row["params/n_bath"])
    eps = np.array(row["bath/eps"], dtype=float)     # NaN padding beyond nb kept as it is
    v = np.array(row["bath/v"], dtype=float)
    eps_ph, v_ph = particle_hole_bath(eps[:nb], v[:nb])
    order = np.argsort(eps_ph, kind="stable")        # ascending again (ties keep their order)
    eps[:nb] = eps_ph[order]
    v[:nb] = v_ph[order]
    twin["bath/eps"] = eps
    twin["bath/v"] = v
    twin["delta_l"] = particle_hole_g_l(row["delta_l"])
    for spec in layout.solvers:
        p = f"solvers/{spec.name}/"
        n = row[p + "density"]
        twin[p + "g_l"] = particle_hole_g_l(row[p + "g_l"])
        twin[p + "sigma_iw"] = particle_hole_sigma_iw(row[p + "sigma_iw"], U)
        twin[p + "density"] = particle_hole_density(n)
        twin[p + "double_occupancy"] = particle_hole_double_occupancy(
            row[p + "double_occupancy"], n)
        twin[p + "wall_time"] = 0.0
    return twin


def check_layout_for_target(target: SolverSpec, n_bath_max: int) -> None:
    """Refuse an ED target with more bath sites than ED supports (before any work)."""
    if target.name == "ed" and n_bath_max > MAX_BATH_SITES:
        raise ValueError(f"sampling.n_bath: the ED target supports at most {MAX_BATH_SITES} "
                         f"bath sites, the recipe draws {n_bath_max}")
