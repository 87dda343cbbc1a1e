"""PNG plots of solver results (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solvers import SolverResult

__all__ = ["plot_result"]


def plot_result(result: SolverResult, path: str | Path, title: str = "") -> Path:
    """Two panels: ``G(i w_n)`` (real and imaginary parts) and ``G(tau)`` from ``g_l``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    wn = result.wn
    n_show = min(wn.size, max(64, int(np.searchsorted(wn, 10.0))))
    ax1.plot(wn[:n_show], result.g_iw.imag[:n_show], "o-", ms=3, label=r"Im $G(i\omega_n)$")
    ax1.plot(wn[:n_show], result.g_iw.real[:n_show], "s-", ms=3, label=r"Re $G(i\omega_n)$")
    ax1.set_xlabel(r"$\omega_n$ / D")
    ax1.set_ylabel(r"$G(i\omega_n)$ / (1/D)")
    ax1.legend()
    tau = np.linspace(0, result.beta, 401)
    ax2.plot(tau, result.g_tau_at(tau), "-")
    ax2.set_xlabel(r"$\tau$ / (1/D)")
    ax2.set_ylabel(r"$G(\tau)$")
    fig.suptitle(title or f"{result.solver}: beta = {result.beta:g}, n = {result.density:.4f}, "
                 f"Z = {result.z:.4f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
