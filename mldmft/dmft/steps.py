"""Impurity-solver steps for the DMFT loop: any registered solver, ED on a refitted bath, and the
guarded network mode.

A step is ``step(model, state) -> SolverResult``; ``state`` is a dict kept for the whole sweep
(warm starts) in which guarded steps count their fallbacks under ``"fallbacks"``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from solvers import (AndersonModel, SolverResult, available_solvers, check_options, g_tau_from_l,
                     get_solver, solve)

__all__ = ["make_step", "ed_refit_step", "guarded_step", "unphysical", "guard_reasons",
           "GUARD_REASONS"]


def make_step(solver: str | Callable[..., SolverResult], n_iw: int,
              solver_options: dict[str, Any] | None = None
              ) -> Callable[[AndersonModel, dict], SolverResult]:
    """A DMFT step from a registered solver name (or a callable ``f(model, **options)``).

    ``"ed"`` means ED on a bath of ``n_bath`` sites (default 8) refitted to ``Delta`` every
    iteration (:func:`ed_refit_step`). ``n_iw`` is passed to registered solvers (unless given in
    ``solver_options``) so their ``G`` covers the loop's Matsubara mesh. The options are checked
    (:func:`solvers.check_options`) before the step is returned.
    """
    solver_options = dict(solver_options or {})
    if isinstance(solver, str):
        from .. import load_solver_module

        load_solver_module(solver)
        if solver == "ed":
            solver_options.setdefault("n_iw", n_iw)
            # checked without always_fit: the probe's one-site bath is then used as it is
            # (fitting n_bath poles and solving them would take seconds)
            check_options("ed_fit", dict({"n_bath": 8}, **solver_options))
            return ed_refit_step(**solver_options)
        if solver not in available_solvers():
            known = available_solvers() + [n for n in ("ml",) if n not in available_solvers()]
            raise ValueError(f"unknown solver {solver!r}; available: {', '.join(known)}")
        get_solver(solver)
        opts = dict(solver_options)
        opts.setdefault("n_iw", n_iw)
        check_options(solver, opts)

        def step(model: AndersonModel, state: dict) -> SolverResult:
            return solve(solver, model, **opts)

        return step

    def call(model: AndersonModel, state: dict) -> SolverResult:
        return solver(model, **solver_options)

    return call


def ed_refit_step(n_iw: int = 1024, n_bath: int = 8, **ed_options: Any
                  ) -> Callable[[AndersonModel, dict], SolverResult]:
    """ED-DMFT step: fit ``Delta(i w_n)`` with ``n_bath`` poles (<= 8), solve with ED, and return
    ``G = 1/(i w_n - eps_d - Delta - Sigma_ED)`` (the ``ed_fit`` solver). The fitted bath of each
    iteration is kept in ``state["bath"]`` and its result in ``state["result"]`` (the ED poles
    give the point's real-frequency spectrum).
    """
    if not 1 <= int(n_bath) <= 8:
        raise ValueError(f"n_bath must be between 1 and 8 for ED-DMFT, got {n_bath}")

    def step(model: AndersonModel, state: dict) -> SolverResult:
        res = solve("ed_fit", model, n_bath=int(n_bath), n_iw=n_iw, always_fit=True,
                    **ed_options)
        state["bath"] = (np.asarray(res.info.get("bath_eps")), np.asarray(res.info.get("bath_v")))
        state["fit_residual"] = res.info.get("fit_residual")
        state["result"] = res
        return res

    return step


def unphysical(result: SolverResult, rtol: float = 1e-3) -> bool:
    """True when ``G(tau) = sum_l sqrt(2l+1)/beta P_l(x) G_l`` is positive somewhere (beyond
    ``rtol`` of its largest magnitude): a fermionic ``G(tau)`` is ``<= 0`` on ``[0, beta]``."""
    tau = np.linspace(0.0, result.beta, 65)
    g = g_tau_from_l(result.g_l, result.beta, tau)
    return bool(np.max(g) > rtol * np.max(np.abs(g)))


#: Why a network result can be distrusted (:func:`guard_reasons`).
GUARD_REASONS = ("spread", "unphysical", "acausal", "unlike_training")


def guard_reasons(result: SolverResult, threshold: float) -> list[str]:
    """The reasons (of :data:`GUARD_REASONS`, in that order) to distrust a network result:

    * ``spread``: the ensemble spread ``max_l |std G_l|`` exceeds ``threshold`` (1/D);
    * ``unphysical``: ``G(tau)`` is positive somewhere (:func:`unphysical`);
    * ``acausal``: the raw prediction was acausal and the causality projection moved it toward
      the base solver (``info["causal_step"] < 1``; the ``ml`` solver's warning "acausal
      prediction moved toward ...");
    * ``unlike_training``: the trust region cut the correction below half its size
      (``info["unlike_training"]``; the warning "the hybridisation looks unlike the training
      data ...").

    A result without these ``info`` entries (another solver) can only be ``unphysical``.
    """
    out = []
    spread = result.info.get("spread")
    if spread is not None and float(np.max(np.abs(spread))) > threshold:
        out.append("spread")
    if unphysical(result):
        out.append("unphysical")
    step = result.info.get("causal_step")
    if step is not None and step < 1:
        out.append("acausal")
    if result.info.get("unlike_training"):
        out.append("unlike_training")
    return out


def guarded_step(primary: Callable[[AndersonModel, dict], SolverResult],
                 fallback: Callable[[AndersonModel, dict], SolverResult] | None,
                 threshold: float) -> Callable[[AndersonModel, dict], SolverResult]:
    """Use ``primary`` (the network) unless its ensemble spread ``max |std G_l|`` exceeds
    ``threshold`` or its ``G(tau)`` is unphysical (positive somewhere, see :func:`unphysical`);
    then this iteration uses ``fallback`` (ED) and ``state["fallbacks"]`` counts it.

    With ``fallback=None`` the guard only watches: flagged iterations are counted in
    ``state["fallbacks"]`` but keep the primary's result (the unguarded network's guard rate).
    """
    if not threshold > 0:
        raise ValueError(f"guard threshold must be > 0, got {threshold}")

    def step(model: AndersonModel, state: dict) -> SolverResult:
        res = primary(model, state)
        if {"spread", "unphysical"} & set(guard_reasons(res, threshold)):
            state["fallbacks"] = state.get("fallbacks", 0) + 1
            return res if fallback is None else fallback(model, state)
        return res

    return step
