"""PNG plots of a training run: learning curves, example ``G(tau)``, error against U and beta."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from .features import RawBatch
from .metrics import g_tau_rows

__all__ = ["plot_learning_curves", "plot_g_tau_examples", "plot_error_vs_params"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_curves(metrics_csv: Path) -> dict[str, tuple[list[int], list[float]]]:
    curves: dict[str, tuple[list[int], list[float]]] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            epoch = row.get("epoch")
            for key in ("train_loss", "val_loss"):
                val = row.get(key)
                if val not in (None, "") and epoch not in (None, ""):
                    curves.setdefault(key, ([], []))
                    curves[key][0].append(int(float(epoch)))
                    curves[key][1].append(float(val))
    return curves


def plot_learning_curves(out: Path, metrics_csv: Path | None = None,
                         krr_grid: list[dict[str, float]] | None = None) -> Path:
    """Training/validation loss per epoch (networks) or validation MSE over the grid (KRR)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    if krr_grid:
        for g in sorted({r["gamma_rel"] for r in krr_grid}):
            rows = sorted((r for r in krr_grid if r["gamma_rel"] == g), key=lambda r: r["alpha"])
            ax.loglog([r["alpha"] for r in rows], [r["val_mse"] for r in rows], "o-",
                      label=f"gamma = {g:g}/n_features")
        ax.set_xlabel("ridge alpha")
        ax.set_ylabel("validation MSE (standardised)")
        ax.set_title("KRR model selection on the validation split")
    else:
        curves = _read_curves(metrics_csv) if metrics_csv and Path(metrics_csv).is_file() else {}
        for key, (ep, val) in curves.items():
            ax.semilogy(ep, val, label=key.replace("_", " "))
        if not curves:
            ax.text(0.5, 0.5, "no logged epochs (fast_dev_run?)", ha="center",
                    transform=ax.transAxes)
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE (standardised targets)")
        ax.set_title("learning curves")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_g_tau_examples(out: Path, batch: RawBatch, pred_g_l: np.ndarray, rows: dict[str, int],
                        target: str, base: str, n_tau: int = 201,
                        members: np.ndarray | None = None) -> Path:
    """Predicted, exact and base ``G(tau)`` of selected test rows (e.g. median and worst); with
    ensemble ``members`` ``[m, n, n_l]`` the band is their standard deviation in ``G(tau)``."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4), squeeze=False)
    for ax, (label, r) in zip(axes[0], rows.items()):
        beta = float(batch.beta[r])
        tau = np.linspace(0.0, beta, n_tau)
        for name, g_l, style in ((f"exact ({target})", batch.g_l[target][r], "k-"),
                                 (f"base ({base})", batch.g_l[base][r], "C1--"),
                                 ("prediction", pred_g_l[r], "C0-")):
            ax.plot(tau, g_tau_rows(g_l[None], np.array([beta]), n_tau)[0], style, label=name)
        if members is not None and members.shape[0] > 1:
            g_m = g_tau_rows(members[:, r], np.full(members.shape[0], beta), n_tau)
            g, s = g_m.mean(axis=0), g_m.std(axis=0)
            ax.fill_between(tau, g - s, g + s, color="C0", alpha=0.25, label="ensemble spread")
        ax.set_title(f"{label}: U={batch.U[r]:.2f} eps_d={batch.eps_d[r]:.2f} beta={beta:.1f}")
        ax.set_xlabel("tau")
        ax.set_ylabel("G(tau)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_error_vs_params(out: Path, batch: RawBatch, per_row: dict[str, Any]) -> Path:
    """Per-row ``G(tau)`` MSE of the model, the base and the best cheap solver against U, beta."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (name, values) in zip(axes, (("U", batch.U), ("beta", batch.beta))):
        for key, style in (("base", "C1x"), ("best_cheap", "C2+"), ("model", "C0o")):
            if key in per_row:
                ax.semilogy(values, np.maximum(per_row[key], 1e-16), style, ms=4, label=key)
        ax.set_xlabel(name)
        ax.set_ylabel("MSE of G(tau)")
        ax.legend(fontsize=8)
    fig.suptitle("test-set error against U and beta")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
