"""Impurity-solver steps for the DMFT loop: any registered solver, ED on a refitted bath, and the
guarded network mode -- for one model at a time and for a batch.

A step is ``step(model, state) -> SolverResult``; a batch step is
``batch(models, states) -> list[SolverResult]`` with one ``state`` per model (the state of that
model's DMFT problem, e.g. the last fitted bath; guarded steps count their fallbacks under
``"fallbacks"``). A registered solver's batch step is one :func:`solvers.solve_many` call (one
pass over the batch for solvers that vectorise, e.g. IPT); ED-DMFT and a plain callable solve the
models one by one. :func:`make_step` is :func:`make_batch_step` applied to one model, and
:func:`guarded_step` is :func:`guarded_batch_step` applied to one model: one implementation each.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from solvers import (AndersonModel, SolverResult, available_solvers, check_options, g_tau_positive,
                     get_solver, solve, solve_many)

__all__ = ["make_step", "make_batch_step", "ed_refit_step", "guarded_step", "guarded_batch_step",
           "unphysical", "guard_reasons", "GUARD_REASONS", "BatchStep", "Step"]

#: ``step(model, state) -> SolverResult`` (see the module docstring).
Step = Callable[[AndersonModel, dict], SolverResult]
#: ``batch(models, states) -> list[SolverResult]``, one state per model.
BatchStep = Callable[[Sequence[AndersonModel], Sequence[dict]], "list[SolverResult]"]


def _one_by_one(step: Step) -> BatchStep:
    """The batch step that calls ``step`` model by model."""
    def batch(models: Sequence[AndersonModel], states: Sequence[dict]) -> list[SolverResult]:
        return [step(m, s) for m, s in zip(models, states)]

    return batch


def _single(batch: BatchStep) -> Step:
    """The step that hands ``batch`` a batch of one."""
    def step(model: AndersonModel, state: dict) -> SolverResult:
        return batch([model], [state])[0]

    return step


def make_batch_step(solver: str | Callable[..., SolverResult], n_iw: int,
                    solver_options: dict[str, Any] | None = None) -> BatchStep:
    """A batch step from a registered solver name (or a callable ``f(model, **options)``).

    A registered solver solves the whole batch in one :func:`solvers.solve_many` call (a solver
    that registered a batch function, e.g. ``ipt``, treats it at once). ``"ed"`` means ED on a
    bath of ``n_bath`` sites (default 8) refitted to ``Delta`` every iteration
    (:func:`ed_refit_step`), model by model with each problem's state. A callable is called
    model by model. ``n_iw`` is passed to registered solvers (unless given in
    ``solver_options``) so their ``G`` covers the loop's Matsubara mesh. The options are checked
    (:func:`solvers.check_options`) before the step is returned.
    """
    solver_options = dict(solver_options or {})
    if isinstance(solver, str):
        from .. import load_solver_module

        load_solver_module(solver)
        if solver == "ed":
            solver_options.setdefault("n_iw", n_iw)
            # ed_refit_step takes the options of ed_fit (its default bath: n_bath = 8 sites)
            check_options("ed_fit", dict({"n_bath": 8}, **solver_options))
            return _one_by_one(ed_refit_step(**solver_options))
        if solver not in available_solvers():
            known = available_solvers() + [n for n in ("ml",) if n not in available_solvers()]
            raise ValueError(f"unknown solver {solver!r}; available: {', '.join(known)}")
        get_solver(solver)
        opts = dict(solver_options)
        opts.setdefault("n_iw", n_iw)
        check_options(solver, opts)

        def batch(models: Sequence[AndersonModel], states: Sequence[dict]
                  ) -> list[SolverResult]:
            return solve_many(solver, models, **opts)

        return batch

    def call(model: AndersonModel, state: dict) -> SolverResult:
        return solver(model, **solver_options)

    return _one_by_one(call)


def make_step(solver: str | Callable[..., SolverResult], n_iw: int,
              solver_options: dict[str, Any] | None = None) -> Step:
    """:func:`make_batch_step` for one model at a time: ``step(model, state)``."""
    return _single(make_batch_step(solver, n_iw, solver_options))


def ed_refit_step(n_iw: int = 1024, n_bath: int = 8, **ed_options: Any) -> Step:
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


def unphysical(result: SolverResult) -> bool:
    """True when ``G(tau) = sum_l sqrt(2l+1)/beta P_l(x) G_l`` of ``result`` is positive
    somewhere (:func:`solvers.g_tau_positive`: above ``solvers.G_TAU_TOL`` on its check grid); a
    fermionic ``G(tau)`` is ``<= 0`` on ``[0, beta]``."""
    return bool(g_tau_positive(result.g_l, result.beta))


#: Why a network result can be distrusted (:func:`guard_reasons`).
GUARD_REASONS = ("spread", "unphysical", "acausal", "unlike_training")


def guard_reasons(result: SolverResult, threshold: float) -> list[str]:
    """The reasons (of :data:`GUARD_REASONS`, in that order) to distrust a network result:

    * ``spread``: the ensemble spread ``max_l |std G_l|`` exceeds ``threshold`` (1/D);
    * ``unphysical``: ``G(tau)`` is positive somewhere (:func:`unphysical`);
    * ``acausal``: the raw prediction was acausal and the causality projection moved it toward
      the base solver (``diagnostics.causal_step < 1``; the ``ml`` solver's warning "acausal
      prediction moved toward ...");
    * ``unlike_training``: the trust region cut the correction below half its size
      (``diagnostics.unlike_training``; the warning "the hybridisation looks unlike the training
      data ...").

    A result without these :class:`~solvers.Diagnostics` (another solver) can only be
    ``unphysical``.
    """
    out = []
    diag = result.diagnostics
    if diag.spread is not None and float(np.max(np.abs(diag.spread))) > threshold:
        out.append("spread")
    if unphysical(result):
        out.append("unphysical")
    if diag.causal_step is not None and diag.causal_step < 1:
        out.append("acausal")
    if diag.unlike_training:
        out.append("unlike_training")
    return out


def guarded_batch_step(primary: BatchStep, fallback: BatchStep | None, threshold: float
                       ) -> BatchStep:
    """Solve the batch with ``primary`` (the network, one call); every row whose ensemble spread
    ``max |std G_l|`` exceeds ``threshold`` or whose ``G(tau)`` is unphysical (positive
    somewhere, see :func:`unphysical`) is solved again by ``fallback`` (ED; the flagged rows in
    one call) and counted in its problem's ``state["fallbacks"]``.

    With ``fallback=None`` the guard only watches: flagged rows are counted but keep the
    primary's result (the unguarded network's guard rate).
    """
    if not threshold > 0:
        raise ValueError(f"guard threshold must be > 0, got {threshold}")

    def batch(models: Sequence[AndersonModel], states: Sequence[dict]) -> list[SolverResult]:
        results = list(primary(models, states))
        flagged = [i for i, res in enumerate(results)
                   if {"spread", "unphysical"} & set(guard_reasons(res, threshold))]
        for i in flagged:
            states[i]["fallbacks"] = states[i].get("fallbacks", 0) + 1
        if fallback is not None and flagged:
            redone = fallback([models[i] for i in flagged], [states[i] for i in flagged])
            for i, res in zip(flagged, redone):
                results[i] = res
        return results

    return batch


def guarded_step(primary: Step, fallback: Step | None, threshold: float) -> Step:
    """:func:`guarded_batch_step` for one model at a time: use ``primary`` (the network) unless
    its result is flagged; then this iteration uses ``fallback`` (ED) and
    ``state["fallbacks"]`` counts it (``fallback=None``: only counted)."""
    return _single(guarded_batch_step(_one_by_one(primary),
                                      None if fallback is None else _one_by_one(fallback),
                                      threshold))
