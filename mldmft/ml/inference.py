"""The ``ml`` impurity solver: a trained correction model behind ``solvers.solve``.

``import mldmft.ml`` registers it (this module imports only numpy and ``solvers``; torch is loaded
on the first call), so ``solvers`` itself never depends on torch::

    import mldmft.ml  # noqa: F401  (registers "ml")
    from solvers import solve
    res = solve("ml", model)                                   # the shipped default model
    res = solve("ml", model, checkpoint="data/train/.../model.pt")   # any other
    res.g_l, res.g_iw, res.sigma_iw, res.double_occupancy, res.info["spread"]

Without ``checkpoint`` the shipped network for the whole Bethe-lattice phase diagram is used
(:data:`DEFAULT_CHECKPOINT`, ``mldmft/pretrained/README.md``).

For each call :func:`solve_ml`

1. loads the checkpoint (memoised on path, mtime and size: a DMFT loop reads it once);
2. refuses a model outside the domain stored in the checkpoint (``beta``, ``U``, the
   hybridisation scale ``D = 2 sqrt(sum_k V_k^2)`` before any work; the density, estimated by the
   base solver, after the cheap solves) -- or, for checkpoints without a domain, outside the
   training range of ``beta`` and ``U`` -- unless ``extrapolate=True``;
3. runs the cheap solvers the checkpoint needs (base + feature solvers) with the options the
   database was generated with;
4. builds the inputs like a database row: ``Delta_l`` exactly from the poles of a discrete bath
   (:func:`solvers.g_l_from_poles`), or for a continuous ``delta_iw`` through
   :func:`solvers.g_l_from_iw` with the tail ``Delta -> c1/(i w_n) + c2/(i w_n)^2 + c3/(i w_n)^3``,
   ``c1 = sum_k V_k^2`` estimated by a least-squares fit of ``-w_n Im Delta(i w_n) = c1 - c3/w_n^2``
   on the upper half of the given frequencies and ``c2, c3`` by :func:`solvers.estimate_tail`;
   the half bandwidth feature is ``D = 2 sqrt(c1)`` (``= 2 sqrt(sum_k V_k^2)``, as for the
   database's Bethe-like baths);
5. applies the network (with the checkpoint's constraints) and returns a
   :class:`~solvers.SolverResult`:

   * ``g_l``: the corrected Legendre coefficients;
   * ``g_iw = G_base(i w_n) + sum_l T_nl (G_l - G_l[base])``: the base solver's accurate
     high-frequency tail plus the Matsubara transform of the correction;
   * ``sigma_iw = i w_n - eps_d - Delta(i w_n) - 1/g_iw`` (Dyson with the model's Delta);
   * ``density = -2 G(beta-)`` from ``g_l``;
   * ``double_occupancy``: the network's own output where the checkpoint learned it (a target
     column trained on the ED label), else ``None`` -- an estimate through ``Tr Sigma G / U``
     would depend on the high-frequency tail of ``Sigma``, which the correction does not learn;
   * ``converged``: True, unless a cheap input solver did not converge (then a warning says so:
     such inputs were excluded from training);
   * ``info``: ``spread`` (ensemble standard deviation of ``g_l``, ``None`` for one model),
     ``base``, ``checkpoint``, ``extrapolated``, ``causal_step``, ``trust_scale``,
     ``unlike_training`` (the trust region cut the correction below half: the hybridisation
     looks unlike the training data), ``cheap_wall_time``, ``warnings``.

A model outside the domain raises :class:`OutsideDomainError` (a ``ValueError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from solvers import (AndersonModel, SolverResult, density_from_g_l, estimate_tail, g_iw_from_l,
                     g_l_from_iw, g_l_from_poles, get_solver, matsubara_freqs, register_solver,
                     solve)

__all__ = ["solve_ml", "model_batch", "delta_tail_c1", "hybridisation_l", "DEFAULT_CHECKPOINT",
           "OutsideDomainError"]

#: The shipped network for the Bethe-lattice phase diagram (``beta`` 20-200, ``U`` 0.5-5,
#: density 0.5-1.5, ``D`` 0.7-1.3), used when ``solve("ml", model)`` gets no checkpoint.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "pretrained" / "phase_diagram.pt"


class OutsideDomainError(ValueError):
    """The ``ml`` solver refuses a model outside its checkpoint's domain (``extrapolate=False``)."""

    @classmethod
    def naming(cls, checkpoint: str | Path, reasons: list[str]) -> "OutsideDomainError":
        """The error naming the checkpoint and every reason (one line)."""
        return cls(f"ml solver: the model is outside the domain of checkpoint {checkpoint}: "
                   f"{'; '.join(reasons)}. Pass extrapolate=True to predict anyway")


def delta_tail_c1(delta_iw: np.ndarray, beta: float) -> float:
    """``c1 = lim w_n -> inf  -w_n Im Delta(i w_n)`` (``= sum_k V_k^2``) from the given values.

    Least squares of ``-w_n Im Delta(i w_n) = c1 - c3 / w_n^2`` on the upper half of the mesh.

    Example:
        >>> import numpy as np
        >>> from solvers import hybridisation_iw, matsubara_freqs
        >>> d = hybridisation_iw(matsubara_freqs(10.0, 400), [-0.5, 0.3], [0.4, 0.2])
        >>> round(delta_tail_c1(d, 10.0), 6)
        0.2
    """
    delta_iw = np.asarray(delta_iw, dtype=complex)
    wn = matsubara_freqs(beta, delta_iw.size)
    start = delta_iw.size // 2
    w = wn[start:]
    if w.size < 2:
        return float(-wn[-1] * delta_iw.imag[-1])
    a = np.stack([np.ones_like(w), -1.0 / w ** 2], axis=1)
    return float(np.linalg.lstsq(a, -w * delta_iw.imag[start:], rcond=None)[0][0])


def hybridisation_l(model: AndersonModel, n_l: int) -> np.ndarray:
    """Legendre coefficients ``Delta_l`` (``l < n_l``, 1/D) of the model's hybridisation: exact
    from the poles of a discrete bath, else from ``delta_iw`` with the fitted tail (module doc,
    step 4)."""
    if model.is_discrete:
        return g_l_from_poles(model.bath_v ** 2, model.bath_eps, model.beta, n_l)
    tail = estimate_tail(model.delta_iw, model.beta, _delta_c1(model))  # c1 known; c2, c3 fit
    return g_l_from_iw(model.delta_iw, model.beta, n_l, tail=tail)


def model_batch(model: AndersonModel, spec: Any, results: dict[str, SolverResult]):
    """The one-row :class:`~mldmft.ml.features.RawBatch` of ``model`` with solved cheap results."""
    from .features import RawBatch

    beta = model.beta
    n_iw_delta = spec.n_iw_delta
    c1 = _delta_c1(model)
    delta_l = hybridisation_l(model, spec.n_l)
    if not model.is_discrete and model.delta_iw.size < n_iw_delta:
        raise ValueError(f"ml solver: delta_iw holds {model.delta_iw.size} frequencies, the "
                         f"checkpoint needs at least {n_iw_delta}")
    one = np.ones(1)
    return RawBatch(U=model.U * one, eps_d=model.eps_d * one, beta=beta * one,
                    D=2.0 * np.sqrt(max(c1, 0.0)) * one, delta_l=delta_l[None],
                    delta_iw=model.delta(n_iw_delta)[None],
                    g_l={s: np.asarray(r.g_l[:spec.n_l], dtype=float)[None]
                         for s, r in results.items()},
                    sigma_iw={s: np.asarray(r.sigma_iw[:spec.n_sigma], dtype=complex)[None]
                              for s, r in results.items()} if spec.needs_sigma else {},
                    docc={s: np.array([np.nan if r.double_occupancy is None
                                       else float(r.double_occupancy)])
                          for s, r in results.items()},
                    density={s: np.array([float(r.density)]) for s, r in results.items()},
                    fit_residual=np.array([_fit_residual(results[spec.base])]))


def _fit_residual(result: SolverResult) -> float:
    """The bath-fit residual a fitting solver (``edN``) reports; NaN for other solvers."""
    value = result.info.get("fit_residual")
    return np.nan if value is None else float(value)


def _delta_c1(model: AndersonModel) -> float:
    """``c1 = sum_k V_k^2`` of a discrete bath, or from the tail of ``delta_iw``."""
    if model.is_discrete:
        return float(np.sum(model.bath_v ** 2))
    return delta_tail_c1(model.delta_iw, model.beta)


def _hyb_scale(model: AndersonModel) -> float:
    """The half-bandwidth-like scale ``D = 2 sqrt(c1)`` of the hybridisation."""
    return float(2.0 * np.sqrt(max(_delta_c1(model), 0.0)))


def solve_ml(model: AndersonModel, *, checkpoint: str | Path | None = None,
             extrapolate: bool = False, n_iw: int | None = None) -> SolverResult:
    """Cheap solvers plus a learned correction (see the module docstring).

    Args:
        model: the impurity model (discrete bath or ``delta_iw``).
        checkpoint: ``model.pt`` written by ``train.py``; default :data:`DEFAULT_CHECKPOINT`.
        extrapolate: predict even outside the model's domain.
        n_iw: Matsubara frequencies of ``g_iw``/``sigma_iw``; passed on to the cheap solvers
            (unless the database fixed it), whose ``G(i w_n)`` carries the high-frequency tail.
            Default: the cheap solvers' own default (1024).

    Returns:
        :class:`~solvers.SolverResult` with ``solver="ml"``.

    Raises:
        ValueError: missing/invalid checkpoint, a model outside the training range (without
            ``extrapolate``), or a cheap solver that fails on the model.
    """
    from .checkpoint import load_checkpoint_cached

    if checkpoint is None:
        checkpoint = DEFAULT_CHECKPOINT
        if not DEFAULT_CHECKPOINT.is_file():
            raise ValueError(f"ml solver: the shipped default model {DEFAULT_CHECKPOINT} is "
                             "missing from this installation; pass checkpoint=PATH")
    predictor = load_checkpoint_cached(checkpoint)
    spec = predictor.spec
    scale = {"D": _hyb_scale(model)} if "D" in predictor.domain else {}
    warnings = predictor.out_of_range(model.beta, model.U, **scale)
    if warnings and not extrapolate:
        raise OutsideDomainError.naming(checkpoint, warnings)
    lo, hi = predictor.train_range.get("eps_d", (-np.inf, np.inf))
    if not predictor.domain and not lo <= model.eps_d <= hi:
        warnings.append(f"eps_d = {model.eps_d:g} is outside the training range [{lo:g}, {hi:g}]")
    results: dict[str, SolverResult] = {}
    cheap_time: dict[str, float] = {}
    converged = True
    for name in spec.cheap_solvers:
        opts = dict(spec.solver_options.get(name, {}))
        opts.setdefault("n_l", spec.n_l)
        if n_iw is not None:
            opts.setdefault("n_iw", int(n_iw))
        try:
            res = solve(name, model, **opts)
        except Exception as err:
            raise ValueError(f"ml solver: cheap solver {name!r} failed on this model "
                             f"({type(err).__name__}: {err})") from err
        if res.g_l.size < spec.n_l:
            raise ValueError(f"ml solver: {name} returned {res.g_l.size} Legendre coefficients, "
                             f"the checkpoint needs {spec.n_l}")
        if not res.converged:
            converged = False
            warnings.append(f"cheap solver {name} did not converge (such inputs were not in the "
                            "training data)")
        results[name] = res
        cheap_time[name] = res.wall_time
    if "density" in predictor.domain:
        outside = predictor.out_of_range(model.beta, model.U,
                                         density=float(results[spec.base].density))
        outside = [w.replace("density", f"density (estimated by {spec.base})", 1)
                   for w in outside if w.startswith("density")]
        if outside and not extrapolate:
            raise OutsideDomainError.naming(checkpoint, outside)
        warnings += outside
    batch = model_batch(model, spec, results)
    pred = predictor.predict(batch)
    g_l = pred.g_l[0]
    base = results[spec.base]
    n_iw = base.g_iw.size if n_iw is None else int(n_iw)
    if n_iw > base.g_iw.size:
        raise ValueError(f"ml solver: n_iw = {n_iw} exceeds the {base.g_iw.size} frequencies of "
                         f"the base solver {spec.base}")
    g_iw = base.g_iw[:n_iw] + g_iw_from_l(g_l - base.g_l[:spec.n_l], n_iw)
    wn = matsubara_freqs(model.beta, n_iw)
    sigma_iw = 1j * wn - model.eps_d - model.delta(n_iw) - 1.0 / g_iw
    if pred.n_clipped:
        warnings.append(f"{pred.n_clipped} target value(s) clipped by the inverse tanh")
    residual = batch.fit_residual[0] if batch.fit_residual is not None else np.nan
    unlike = bool(pred.trust_scale is not None and pred.trust_scale[0] < 0.5 and residual > 1e-8)
    if unlike:
        warnings.append(f"the hybridisation looks unlike the training data: the correction was "
                        f"cut to {pred.trust_scale[0]:.2f} of its size by the trust region "
                        f"(|dG| <= {predictor.constraints.trust_ratio:g} x the {spec.base} bath-fit "
                        f"residual {residual:.2e})")
    if pred.causal_step is not None and pred.causal_step[0] < 1:
        warnings.append(f"acausal prediction moved toward {spec.base} (step "
                        f"{pred.causal_step[0]:.3f} of the correction kept)")
    info = {"spread": None if pred.spread is None else pred.spread[0],
            "base": spec.base, "checkpoint": str(checkpoint),
            "extrapolated": bool(extrapolate and warnings),
            "causal_step": None if pred.causal_step is None else float(pred.causal_step[0]),
            "trust_scale": None if pred.trust_scale is None else float(pred.trust_scale[0]),
            "unlike_training": unlike,
            "cheap_wall_time": cheap_time, "warnings": warnings}
    docc = None if pred.double_occupancy is None else float(pred.double_occupancy[0])
    return SolverResult(solver="ml", beta=model.beta, g_iw=g_iw, sigma_iw=sigma_iw, g_l=g_l,
                        density=2.0 * density_from_g_l(g_l, model.beta), double_occupancy=docc,
                        energy=None, converged=converged, info=info)


def _check_ml_options(options: dict) -> None:
    """Option check of the ``ml`` solver (for :func:`solvers.check_options`): the checkpoint
    (default: the shipped one) exists and loads; its cheap solvers' stored options are checked
    when it is used."""
    from .checkpoint import load_checkpoint_cached

    checkpoint = options.get("checkpoint")
    if checkpoint is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise ValueError(f"the ml solver's shipped default model {DEFAULT_CHECKPOINT} is "
                             "missing; give checkpoint=PATH (a model.pt written by train.py)")
        checkpoint = DEFAULT_CHECKPOINT
    load_checkpoint_cached(checkpoint)


def _ml_identity(options: dict) -> dict:
    """The ``ml`` solver's results depend on the model file's bytes, not only on its path (the
    shipped default is replaced when the network is retrained): its SHA-256."""
    import hashlib

    path = Path(options.get("checkpoint") or DEFAULT_CHECKPOINT)
    if not path.is_file():
        return {"checkpoint_sha256": None}
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"checkpoint_sha256": h.hexdigest()}


def _register() -> None:
    hooks = dict(check=_check_ml_options, identity=_ml_identity)
    try:
        register_solver("ml", solve_ml, **hooks)
    except ValueError:
        # a reload of this module re-registers; anything else keeps its name
        if getattr(get_solver("ml"), "__module__", None) != __name__:
            raise
        register_solver("ml", solve_ml, replace=True, **hooks)


_register()
