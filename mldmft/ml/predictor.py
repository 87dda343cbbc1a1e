"""The prediction path shared by evaluation and the ``ml`` solver.

:class:`Predictor` turns a :class:`~mldmft.ml.features.RawBatch` into corrected ``G_l``::

    features  = build_features(batch)                         (mldmft.ml.features)
    z         = backend(x_transform.forward(features))        [members, n, n_targets]
    y         = y_transform.inverse(z)                        (clipped inverse of T1/T2)
    G_l[m]    = decode_target(y[m], batch)                    base + correction, per member
    G_l[m]    = (G_l[m] + (-1)^l G_l^twin[m]) / 2             if particle_hole
    G_l[m]    = project_sum_rule(G_l[m], beta)                if sum_rule
    G_l       = mean_m G_l[m];  spread = std_m G_l[m]         (ensembles)
    G_l       = project_causal(G_l, G_l[base])                if causal
    d         = mean_m d[m]                                   docc target (d[m] averaged with
                                                              its twin's d' - 1 + n[m] if
                                                              particle_hole)

``G_l^twin`` is the prediction for the particle-hole image of the row
(:meth:`RawBatch.particle_hole`), mapped back: the averaged predictor is exactly equivariant.
Both constraints are linear, so they commute with the member mean.

The backend is a torch network (trained in float32, evaluated in float64 in ``no_grad`` eval
mode: :class:`TorchBackend`) or a :class:`~mldmft.ml.krr.KRRModel`; everything else is numpy
float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from solvers.symmetry import (particle_hole_density, particle_hole_double_occupancy,
                              particle_hole_g_l)

from .config import ConstraintConfig
from .constraints import density_from_g_l_rows, project_causal, project_sum_rule
from .features import EncodingSpec, RawBatch, build_features, decode_docc, decode_target
from .transforms import FittedTransform

__all__ = ["Prediction", "Predictor", "TorchBackend", "exact_base_gate", "trust_scale"]

Backend = Callable[[np.ndarray], np.ndarray]


def trust_scale(correction: np.ndarray, beta: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """``min(1, bound / rms)`` per row, ``rms = sqrt(sum_l (dG_l / beta)^2)`` the RMS of the
    ``G(tau)`` correction (1 where the bound is unknown, NaN).

    Example:
        >>> trust_scale(np.array([[3.0, 4.0]]), np.array([10.0]), np.array([0.25])).tolist()
        [0.5]
    """
    rms = np.sqrt(np.sum((np.asarray(correction) / np.asarray(beta)[:, None]) ** 2, axis=-1))
    bound = np.asarray(bound, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(bound) & (rms > bound), bound / np.maximum(rms, 1e-300), 1.0)


def exact_base_gate(fit_residual: np.ndarray, r0: float) -> np.ndarray:
    """``r^2 / (r^2 + r0^2)`` per row (1 where the residual is unknown, NaN).

    Example:
        >>> exact_base_gate(np.array([0.0, 1e-3, np.nan]), 1e-3).tolist()
        [0.0, 0.5, 1.0]
    """
    r = np.asarray(fit_residual, dtype=float)
    with np.errstate(invalid="ignore"):
        g = r ** 2 / (r ** 2 + float(r0) ** 2)
    return np.where(np.isfinite(g), g, 1.0)


class TorchBackend:
    """Evaluate a torch network ``[n, n_in] -> [members, n, n_out]`` on numpy input, in float64.

    The network trains in float32; predictions run on float64 copies of its weights (made here,
    so ``net`` itself -- the one saved in the checkpoint -- is left as it is). In float32 the
    result for one row depends on how many rows share the call (the matrix kernels accumulate in
    another order for one or two rows than for many: ~1e-6 relative on the shipped network); in
    float64 that difference is at rounding level, so a batch of models gives what each model
    alone gives (``solve_many("ml", ...)`` equals the loop to 1e-10).

    Up to :attr:`SMALL` rows go through :class:`~mldmft.ml.networks.Stacked` (numpy, the members
    stacked: no per-module overhead, which is what a prediction for one model costs); more rows
    through the float64 torch modules on one intra-op thread (the previous setting is restored:
    for these small tensors, waking an OpenMP team costs far more than it saves -- on a busy
    2-core machine a GELU of 256 numbers took 16 ms with two threads and 0.01 ms with one). Both
    compute the same function to ~1e-14 relative.
    """

    #: Rows up to which the numpy evaluation is used.
    SMALL = 8

    def __init__(self, net: Any) -> None:
        import copy

        import torch

        from .networks import Stacked

        self.net = net.eval()
        self._net64 = copy.deepcopy(net).to(torch.float64).eval()
        self._small = Stacked(self._net64)
        self._torch = torch

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] <= self.SMALL:
            return self._small(x)
        torch = self._torch
        threads = torch.get_num_threads()
        try:
            if threads != 1:
                torch.set_num_threads(1)
            with torch.no_grad():
                out = self._net64(torch.as_tensor(x))
        finally:
            if threads != 1:
                torch.set_num_threads(threads)
        return out.numpy()


@dataclass(frozen=True, eq=False)
class Prediction:
    """Corrected Green's functions of a batch.

    Attributes:
        g_l: member-mean ``G_l`` ``[n, n_l]`` (1/D), constraints applied.
        spread: member standard deviation of ``G_l`` ``[n, n_l]``, ``None`` for one member.
        members: per-member ``G_l`` ``[members, n, n_l]``.
        n_clipped: target values clipped by the inverse ``tanh`` (T1/T2).
        double_occupancy: member-mean ``<n_up n_dn>`` ``[n]`` (``None`` without a docc target).
        causal_step: the step ``a`` of the causality projection per row (1: untouched).
        trust_scale: the factor the trust region put on the correction per row (1: untouched;
            ``None`` when off).
    """

    g_l: np.ndarray
    spread: np.ndarray | None
    members: np.ndarray
    n_clipped: int = 0
    double_occupancy: np.ndarray | None = None
    causal_step: np.ndarray | None = None
    trust_scale: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Predictor:
    """A trained correction model with everything needed to apply it.

    Attributes:
        spec: feature/target encoding.
        x_transform, y_transform: fitted transforms.
        backend: network or KRR model on standardised features.
        constraints: sum rule / particle-hole averaging switches.
        train_range: ``{"beta": [lo, hi], "U": [lo, hi], "eps_d": [lo, hi]}`` of the training rows.
        domain: where the model may be used, ``{"beta", "U", "density", "D": [lo, hi]}`` (any
            subset); empty: the training range of beta and U.
        kind: ``"torch"`` or ``"krr"``.
        meta: free-form provenance (model config, database, metrics summary).
    """

    spec: EncodingSpec
    x_transform: FittedTransform
    y_transform: FittedTransform
    backend: Backend
    constraints: ConstraintConfig = field(default_factory=ConstraintConfig)
    train_range: dict[str, list[float]] = field(default_factory=dict)
    domain: dict[str, list[float]] = field(default_factory=dict)
    kind: str = "torch"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_members(self) -> int:
        return int(self.meta.get("n_members", 1))

    def _members(self, batches: list[RawBatch]
                 ) -> tuple[list[tuple[np.ndarray, np.ndarray | None]], int]:
        """Per-member ``(G_l, docc)`` of each batch; one backend call for all of them (a
        prediction and its particle-hole twin share one forward pass)."""
        xs = [self.x_transform.forward(build_features(b, self.spec)) for b in batches]
        z = np.asarray(self.backend(np.concatenate(xs, axis=0)), dtype=float)
        y, n_clipped = self.y_transform.inverse(z)
        ends = np.cumsum([len(x) for x in xs])[:-1]
        return ([(decode_target(part, b, self.spec), decode_docc(part, b, self.spec))
                 for part, b in zip(np.split(y, ends, axis=1), batches)], n_clipped)

    def predict(self, batch: RawBatch) -> Prediction:
        """Corrected ``G_l`` (and ensemble spread, double occupancy) of every row of ``batch``."""
        if len(batch) == 0:
            raise ValueError("cannot predict an empty batch")
        twin_batch = batch.particle_hole() if self.constraints.particle_hole else None
        if twin_batch is not None:
            ((members, docc), (twin, docc_twin)), n_clipped = self._members([batch, twin_batch])
            members = 0.5 * (members + particle_hole_g_l(twin))
        else:
            ((members, docc),), n_clipped = self._members([batch])
            docc_twin = None
        base = batch.g_l[self.spec.base][:, :members.shape[-1]]

        def shrink(factor: np.ndarray) -> None:
            """Scale every row's correction (G and docc, of the row and its twin) by factor."""
            nonlocal members, docc, docc_twin
            members = base + factor[None, :, None] * (members - base)
            if docc is not None:
                d_b = batch.docc[self.spec.base]
                docc = d_b + factor * (docc - d_b)
                if docc_twin is not None:
                    d_t = twin_batch.docc[self.spec.base]
                    docc_twin = d_t + factor * (docc_twin - d_t)

        trust = None
        if batch.fit_residual is not None:
            if self.constraints.trust_ratio > 0:
                trust = trust_scale(members.mean(axis=0) - base, batch.beta,
                                    self.constraints.trust_ratio * batch.fit_residual)
                shrink(trust)
            if self.constraints.exact_base_scale > 0:
                shrink(exact_base_gate(batch.fit_residual, self.constraints.exact_base_scale))
        if self.constraints.sum_rule:
            members = project_sum_rule(members, batch.beta)
        spread = members.std(axis=0) if members.shape[0] > 1 else None
        g_l = members.mean(axis=0)
        step = None
        if self.constraints.causal:
            # both ends of the line on the sum-rule plane: so is every point between them
            # (the base solver's own residual, up to ~1e-8 at beta = 200, must not leak in)
            anchor = project_sum_rule(base, batch.beta) if self.constraints.sum_rule else base
            g_l, step = project_causal(g_l, anchor, batch.beta, batch.eps_d, batch.delta_l)
        if docc is not None and twin_batch is not None:
            # the twin's prediction d' estimates 1 - n + d: mapped back with the twin's density
            # 2 - n, n that of the returned G (keeps the averaged double occupancy exactly
            # equivariant)
            n_twin = particle_hole_density(density_from_g_l_rows(g_l, batch.beta))
            docc = 0.5 * (docc + particle_hole_double_occupancy(docc_twin, n_twin))
        return Prediction(g_l=g_l, spread=spread, members=members, n_clipped=n_clipped,
                          double_occupancy=None if docc is None else docc.mean(axis=0),
                          causal_step=step, trust_scale=trust)

    def out_of_range(self, beta: float, U: float, **others: float) -> list[str]:
        """Parameters outside the model's domain (empty list: inside).

        ``others`` may give ``density`` and ``D``; they are checked when the domain names them.
        Without a stored domain, beta and U are checked against the training range.
        """
        out = []
        limits = self.domain or self.train_range
        what = "the model's domain" if self.domain else "the training range"
        for name, val in (("beta", beta), ("U", U), *others.items()):
            if name not in limits:
                continue
            lo, hi = limits[name]
            tol = 1e-9 * max(1.0, abs(lo), abs(hi))
            if not lo - tol <= val <= hi + tol:
                out.append(f"{name} = {val:g} is outside {what} [{lo:g}, {hi:g}]")
        return out
