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
* ``acausal``     = 1 where ``Im Sigma~(i w_0) > 0``; ``frac_acausal`` is the fraction of rows
* ``abs_density`` = |n~ - n|, total density ``n = -2 G(beta-)``

Averages over rows are taken where the approximation exists (a comparison solver may have failed
on some rows). Improvement factors are ratios of ``mse_g_tau`` on the rows both methods cover:
over the base solver, and over the best single cheap solver of the database (the one with the
lowest test ``mse_g_tau``, i.e. the most demanding comparison). The breakdown by beta and U uses
``n_bins`` equal-width bins over the evaluated rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvers import g_iw_from_l, g_tau_from_l, tau_mesh

from .features import RawBatch

__all__ = ["g_tau_rows", "z_from_g_l", "density_from_g_l_rows", "row_errors", "evaluate"]


def g_tau_rows(g_l: np.ndarray, beta: np.ndarray, n_tau: int) -> np.ndarray:
    """``G(tau)`` of every row on its uniform grid of ``n_tau`` points ``[n, n_tau]``."""
    g_l = np.asarray(g_l, dtype=float)
    return np.stack([g_tau_from_l(g_l[r], float(beta[r]), tau_mesh(float(beta[r]), n_tau))
                     for r in range(g_l.shape[0])]) if g_l.shape[0] else np.zeros((0, n_tau))


def z_from_g_l(g_l: np.ndarray, batch: RawBatch) -> np.ndarray:
    """Quasiparticle weight estimate of every row from its ``G_l`` and hybridisation."""
    g0 = g_iw_from_l(np.asarray(g_l, dtype=float), 1)[:, 0]
    w0 = np.pi / batch.beta
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma0 = 1j * w0 - batch.eps_d - batch.delta_iw[:, 0] - 1.0 / g0
        return 1.0 / (1.0 - sigma0.imag / w0)


def density_from_g_l_rows(g_l: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Total density ``-2 G(beta-) = -2 sum_l sqrt(2l+1) G_l / beta`` of every row."""
    g_l = np.asarray(g_l, dtype=float)
    return -2.0 * (g_l @ np.sqrt(2 * np.arange(g_l.shape[-1]) + 1.0)) / beta


def row_errors(g_l: np.ndarray, ref_g_l: np.ndarray, batch: RawBatch, n_tau: int,
               ref_tau: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-row errors of ``g_l`` against ``ref_g_l`` (NaN where ``g_l`` is missing)."""
    ok = np.all(np.isfinite(g_l), axis=1)
    out = {k: np.full(len(batch), np.nan) for k in ("mse_g_l", "mse_g_tau", "abs_z",
                                                     "acausal", "abs_density")}
    if not ok.any():
        return out
    sub = batch.take(ok)
    g, ref = g_l[ok], ref_g_l[ok]
    tau_ref = g_tau_rows(ref, sub.beta, n_tau) if ref_tau is None else ref_tau[ok]
    out["mse_g_l"][ok] = np.mean((g - ref) ** 2, axis=1)
    out["mse_g_tau"][ok] = np.mean((g_tau_rows(g, sub.beta, n_tau) - tau_ref) ** 2, axis=1)
    z = z_from_g_l(g, sub)
    out["abs_z"][ok] = np.abs(z - z_from_g_l(ref, sub))
    out["acausal"][ok] = ((z > 1) | (z < 0)).astype(float)
    out["abs_density"][ok] = np.abs(density_from_g_l_rows(g, sub.beta)
                                    - density_from_g_l_rows(ref, sub.beta))
    return out


def _summary(err: dict[str, np.ndarray]) -> dict[str, float]:
    ok = np.isfinite(err["mse_g_tau"])
    out: dict[str, Any] = {"n": int(ok.sum())}
    for key, val in err.items():
        name = {"acausal": "frac_acausal"}.get(key, key.replace("abs_", "mae_"))
        out[name] = float(np.mean(val[ok])) if ok.any() else None
    out["median_abs_z"] = float(np.median(err["abs_z"][ok])) if ok.any() else None
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
             floor_g_l: np.ndarray | None = None
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

    Returns:
        ``(summary, per_row)``: the JSON-ready summary (``model``, ``base``, ``cheap`` per solver,
        ``best_cheap``, ``improvement`` factors, ``by_beta`` / ``by_U`` breakdowns) and per-row
        arrays (``mse_g_tau`` of the model, the base and the best cheap solver).
    """
    ref = batch.g_l[target]
    ref_tau = g_tau_rows(ref, batch.beta, n_tau)
    errs = {"model": row_errors(pred_g_l, ref, batch, n_tau, ref_tau),
            "base": row_errors(batch.g_l[base], ref, batch, n_tau, ref_tau)}
    cheap = {s: row_errors(batch.g_l[s], ref, batch, n_tau, ref_tau) for s in comparison}
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
    return out, per_row
