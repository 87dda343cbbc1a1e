"""Held-out errors of predicted Green's functions, and of the cheap solvers beside them.

For each row with exact ``G_l`` (the target solver) and an approximation ``G~_l``:

* ``mse_g_l``     = mean_l (G~_l - G_l)^2                                          (1/D^2)
* ``mse_g_tau``   = mean over a uniform grid tau_k = k beta/(n_tau - 1), k = 0..n_tau-1, of
  (G~(tau_k) - G(tau_k))^2, with ``G(tau)`` from :func:`solvers.g_tau_from_l` (dimensionless)
* ``abs_z``       = |Z~ - Z|, ``Z = 1/(1 - Im Sigma(i w_0)/w_0)`` with
  ``Sigma(i w_0) = i w_0 - eps_d - Delta(i w_0) - 1/G(i w_0)`` and ``G(i w_0)`` from
  :func:`solvers.g_iw_from_l` -- the same route for the exact and the approximate ``G``;
  summarised by its mean (``mae_z``) and median (``median_abs_z``): for nearly empty or full
  levels ``Sigma`` is tiny and ``Z ~ 1`` is ill-conditioned, so a small absolute error of ``G``
  can give ``Im Sigma(i w_0) > 0`` (``Z > 1`` or ``Z < 0``) and a huge ``|Z~ - Z|`` on a few rows
* ``acausal``     = 1 where ``Im Sigma~(i w_n) > 0`` at any checked frequency or ``G~(tau) > 0``
  anywhere (:func:`mldmft.ml.constraints.causality_violation`, same tolerances as the projection);
  ``frac_acausal`` is the fraction of rows
* ``abs_density`` = |n~ - n|, total density ``n = -2 G(beta-)``
* ``abs_docc``    = |d~ - d|, double occupancy (where both exist)

Summaries give the mean of each error, the median and 95th percentile of ``abs_z``,
``abs_density`` and ``abs_docc`` (``p50_*``, ``p95_*``). :func:`binned_summary` breaks them down
by fixed bins of beta and of the filling ``|n - 1|`` (the exact density).

Averages over rows are taken where the approximation exists (a comparison solver may have failed
on some rows). Improvement factors are ratios of ``mse_g_tau`` on the rows both methods cover:
over the base solver, and over the best single cheap solver of the database (the one with the
lowest test ``mse_g_tau``, i.e. the most demanding comparison). The breakdown by beta and U uses
``n_bins`` equal-width bins over the evaluated rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvers import (dyson_sigma, g0_inverse_iw, g_iw_from_l, g_tau_from_l, quasiparticle_weight,
                     tau_mesh)
from solvers.mesh import matsubara_freqs_many

from .constraints import TOL_SIGMA, TOL_TAU, causality_violation, density_from_g_l_rows
from .features import RawBatch

__all__ = ["g_tau_rows", "z_from_g_l", "density_from_g_l_rows", "row_errors", "evaluate",
           "binned_summary", "acausal_rows"]


def g_tau_rows(g_l: np.ndarray, beta: np.ndarray, n_tau: int) -> np.ndarray:
    """``G(tau)`` of every row on its uniform grid of ``n_tau`` points ``[n, n_tau]``."""
    g_l = np.asarray(g_l, dtype=float)
    return np.stack([g_tau_from_l(g_l[r], float(beta[r]), tau_mesh(float(beta[r]), n_tau))
                     for r in range(g_l.shape[0])]) if g_l.shape[0] else np.zeros((0, n_tau))


def z_from_g_l(g_l: np.ndarray, batch: RawBatch) -> np.ndarray:
    """Quasiparticle weight estimate of every row from its ``G_l`` and hybridisation: Dyson at
    ``w_0`` (:func:`solvers.dyson_sigma`), then :func:`solvers.quasiparticle_weight`."""
    g0 = g_iw_from_l(np.asarray(g_l, dtype=float), 1)                   # [n, 1]
    wn = matsubara_freqs_many(batch.beta, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma0 = dyson_sigma(g0_inverse_iw(wn, batch.eps_d, batch.delta_iw[:, :1]), g0)
        return np.asarray(quasiparticle_weight(sigma0, batch.beta), dtype=float).reshape(-1)


def acausal_rows(g_l: np.ndarray, batch: RawBatch) -> np.ndarray:
    """1.0 where ``G_l`` breaks causality (``Im Sigma(i w_n) > 0`` or ``G(tau) > 0``), else 0."""
    im, gt = causality_violation(g_l, batch.beta, batch.eps_d, batch.delta_l)
    return ((im > TOL_SIGMA) | (gt > TOL_TAU)).astype(float)


def row_errors(g_l: np.ndarray, ref_g_l: np.ndarray, batch: RawBatch, n_tau: int,
               ref_tau: np.ndarray | None = None, docc: np.ndarray | None = None,
               ref_docc: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-row errors of ``g_l`` against ``ref_g_l`` (NaN where ``g_l`` is missing)."""
    ok = np.all(np.isfinite(g_l), axis=1)
    out = {k: np.full(len(batch), np.nan) for k in ("mse_g_l", "mse_g_tau", "abs_z",
                                                     "acausal", "abs_density", "abs_docc")}
    if docc is not None and ref_docc is not None:
        out["abs_docc"] = np.abs(np.asarray(docc, dtype=float) - np.asarray(ref_docc, dtype=float))
    if not ok.any():
        return out
    sub = batch.take(ok)
    g, ref = g_l[ok], ref_g_l[ok]
    tau_ref = g_tau_rows(ref, sub.beta, n_tau) if ref_tau is None else ref_tau[ok]
    out["mse_g_l"][ok] = np.mean((g - ref) ** 2, axis=1)
    out["mse_g_tau"][ok] = np.mean((g_tau_rows(g, sub.beta, n_tau) - tau_ref) ** 2, axis=1)
    z = z_from_g_l(g, sub)
    out["abs_z"][ok] = np.abs(z - z_from_g_l(ref, sub))
    out["acausal"][ok] = acausal_rows(g, sub)
    out["abs_density"][ok] = np.abs(density_from_g_l_rows(g, sub.beta)
                                    - density_from_g_l_rows(ref, sub.beta))
    return out


def _summary(err: dict[str, np.ndarray]) -> dict[str, float]:
    ok = np.isfinite(err["mse_g_tau"])
    out: dict[str, Any] = {"n": int(ok.sum())}
    for key, val in err.items():
        name = {"acausal": "frac_acausal"}.get(key, key.replace("abs_", "mae_"))
        v = val[ok & np.isfinite(val)]
        out[name] = float(np.mean(v)) if v.size else None
    out["median_abs_z"] = float(np.median(err["abs_z"][ok])) if ok.any() else None
    for key in ("abs_z", "abs_density", "abs_docc"):
        v = err[key][ok & np.isfinite(err[key])]
        short = key.replace("abs_", "")
        out[f"p50_{short}"] = float(np.percentile(v, 50)) if v.size else None
        out[f"p95_{short}"] = float(np.percentile(v, 95)) if v.size else None
    return out


def binned_summary(errors: dict[str, dict[str, np.ndarray]], beta: np.ndarray,
                   density: np.ndarray, beta_edges: tuple[float, ...] = (20, 40, 80, 200),
                   filling_edges: tuple[float, ...] = (0.0, 0.05, 0.2, np.inf)
                   ) -> dict[str, list[dict[str, Any]]]:
    """Summaries of every method's per-row errors in fixed bins of beta and of ``|n - 1|``.

    Args:
        errors: per method, the :func:`row_errors` arrays.
        beta, density: per row (the exact density for the filling bins).

    Returns:
        ``{"by_beta": [...], "by_filling": [...]}``, each bin a dict with ``range`` and one
        summary per method (and ``n``).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for name, values, edges in (("by_beta", np.asarray(beta), beta_edges),
                                ("by_filling", np.abs(np.asarray(density) - 1.0), filling_edges)):
        bins = []
        for k in range(len(edges) - 1):
            last = k == len(edges) - 2
            mask = (values >= edges[k]) & ((values <= edges[k + 1]) if last
                                          else (values < edges[k + 1]))
            entry: dict[str, Any] = {"range": [float(edges[k]), float(edges[k + 1])],
                                     "n": int(mask.sum())}
            for method, err in errors.items():
                entry[method] = _summary({key: v[mask] for key, v in err.items()})
            bins.append(entry)
        out[name] = bins
    return out


def _factor(num: np.ndarray, den: np.ndarray, mask: np.ndarray) -> float | None:
    both = mask & np.isfinite(num) & np.isfinite(den)
    if not both.any():
        return None
    d = float(np.mean(den[both]))
    return float(np.mean(num[both])) / d if d > 0 else None


def _bins(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = float(values.min()), float(values.max())
    edges = np.linspace(lo, hi, n_bins + 1) if hi > lo else np.array([lo, hi])
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    return edges, which


def evaluate(pred_g_l: np.ndarray, batch: RawBatch, target: str, base: str,
             comparison: tuple[str, ...], n_tau: int = 201, n_bins: int = 3,
             floor_g_l: np.ndarray | None = None, pred_docc: np.ndarray | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Errors of a prediction and of the cheap solvers on the same rows (see module docstring).

    Args:
        pred_g_l: predicted ``G_l`` ``[n, n_l]``.
        batch: the evaluated rows (``g_l`` of the target, the base and the comparison solvers).
        target: exact solver name.
        base: base solver name.
        comparison: cheap solvers to compare with.
        n_tau: points of the ``tau`` grid.
        n_bins: bins of the beta/U breakdown.
        floor_g_l: ``G_l`` decoded from the exact target encoding (the encoding's own error);
            reported as ``encoding_floor`` when given.
        pred_docc: predicted double occupancy ``[n]`` (compared with the target's when the batch
            holds it).

    Returns:
        ``(summary, per_row)``: the JSON-ready summary (``model``, ``base``, ``cheap`` per solver,
        ``best_cheap``, ``improvement`` factors, ``by_beta`` / ``by_U`` breakdowns) and per-row
        arrays (``mse_g_tau`` of the model, the base and the best cheap solver).
    """
    ref = batch.g_l[target]
    ref_tau = g_tau_rows(ref, batch.beta, n_tau)
    ref_d = batch.docc.get(target)
    errs = {"model": row_errors(pred_g_l, ref, batch, n_tau, ref_tau, pred_docc, ref_d),
            "base": row_errors(batch.g_l[base], ref, batch, n_tau, ref_tau,
                               batch.docc.get(base), ref_d)}
    cheap = {s: row_errors(batch.g_l[s], ref, batch, n_tau, ref_tau, batch.docc.get(s), ref_d)
             for s in comparison}
    summaries = {s: _summary(e) for s, e in cheap.items()}
    valid = {s: v for s, v in summaries.items() if v["mse_g_tau"] is not None}
    best = min(valid, key=lambda s: valid[s]["mse_g_tau"]) if valid else None
    all_rows = np.ones(len(batch), dtype=bool)
    m = errs["model"]["mse_g_tau"]

    def factors(mask: np.ndarray) -> dict[str, Any]:
        d = {"n": int(mask.sum()),
             "mse_g_tau_model": float(np.mean(m[mask])) if mask.any() else None,
             "mse_g_tau_base": float(np.nanmean(errs["base"]["mse_g_tau"][mask]))
             if mask.any() else None,
             "improvement_over_base": _factor(errs["base"]["mse_g_tau"], m, mask)}
        if best is not None:
            d["mse_g_tau_best_cheap"] = (float(np.nanmean(cheap[best]["mse_g_tau"][mask]))
                                         if np.isfinite(cheap[best]["mse_g_tau"][mask]).any()
                                         else None)
            d["improvement_over_best_cheap"] = _factor(cheap[best]["mse_g_tau"], m, mask)
        return d

    out: dict[str, Any] = {
        "n_rows": len(batch), "target": target, "base_solver": base,
        "model": _summary(errs["model"]), "base": _summary(errs["base"]), "cheap": summaries,
        "best_cheap": best,
        "improvement": {k: v for k, v in factors(all_rows).items() if k.startswith("improve")},
    }
    if floor_g_l is not None:
        out["encoding_floor"] = _summary(row_errors(floor_g_l, ref, batch, n_tau, ref_tau))
    for name, values in (("beta", batch.beta), ("U", batch.U)):
        edges, which = _bins(values, n_bins)
        out[f"by_{name}"] = [dict(range=[float(edges[k]), float(edges[k + 1])],
                                  **factors(which == k)) for k in range(len(edges) - 1)]
    per_row = {"model": m, "base": errs["base"]["mse_g_tau"]}
    if best is not None:
        per_row["best_cheap"] = cheap[best]["mse_g_tau"]
    per_row["errors"] = {"model": errs["model"], **cheap}  # type: ignore[dict-item]
    out["binned"] = binned_summary(per_row["errors"], batch.beta,  # type: ignore[arg-type]
                                   density_from_g_l_rows(ref, batch.beta))
    return out, per_row
