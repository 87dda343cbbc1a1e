"""Mott-transition plots: Z, double occupancy and -beta G(beta/2) against U (or, for sweeps in
mu, also the density against mu), up/down branches."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .loop import DMFTPoint

__all__ = ["plot_sweeps"]

_MARK = {"up": ">", "down": "<"}


_PANELS = {"Z": "quasiparticle weight Z", "double_occupancy": "double occupancy",
           "g_beta_half": r"$-\beta G(\beta/2)$", "density": "density n"}


def plot_sweeps(runs: Sequence[tuple[str, Sequence[DMFTPoint]]], path: str | Path,
                title: str = "", x: str = "U") -> Path:
    """One figure, three panels (Z, double occupancy, -beta G(beta/2) vs U); each run is a
    ``(label, points)`` pair; up branches with ``>`` markers, down with ``<``; non-converged
    points drawn hollow. ``x="mu"`` (sweeps in mu): against mu, with the density as a fourth
    panel in front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in ("U", "mu"):
        raise ValueError(f"x must be 'U' or 'mu', got {x!r}")
    keys = ("Z", "double_occupancy", "g_beta_half") if x == "U" else (
        "density", "Z", "double_occupancy", "g_beta_half")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(keys), figsize=(14 if x == "U" else 18, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, points) in enumerate(runs):
        c = colors[i % len(colors)]
        for branch in ("up", "down"):
            pts = [p for p in points if p.branch == branch]
            if not pts:
                continue
            xs = np.array([getattr(p, x) for p in pts])
            order = np.argsort(xs)
            for ax, key in zip(axes, keys):
                y = np.array([getattr(p, key) for p in pts])[order]
                ok = np.array([p.converged for p in pts])[order]
                ax.plot(xs[order], y, "-", color=c, alpha=0.6,
                        label=f"{label} ({branch})" if key == keys[0] else None)
                ax.plot(xs[order][ok], y[ok], _MARK[branch], color=c, ms=5)
                if np.any(~ok):
                    ax.plot(xs[order][~ok], y[~ok], _MARK[branch], color=c, mfc="none", ms=7)
    for ax, key in zip(axes, keys):
        ax.set_xlabel("U / D" if x == "U" else "mu / D")
        ax.set_ylabel(_PANELS[key])
    axes[0].legend(fontsize=8)
    return _save(fig, path, title)


def plot_spectra(points: Sequence[DMFTPoint], path: str | Path, title: str = "",
                 branch: str | None = None, x: str = "U") -> Path:
    """``A(w)`` of every point that holds a spectrum: curves offset by U (left) and a U-omega
    colour map (right), one branch (default: the first one present); ``x="mu"``: by mu (sweeps
    in mu)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in points if p.spectrum is not None]
    if not pts:
        raise ValueError("no point holds a spectrum (run the sweep with spectra=...)")
    branch = branch or pts[0].branch
    pts = sorted((p for p in pts if p.branch == branch), key=lambda p: getattr(p, x))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax, axm) = plt.subplots(1, 2, figsize=(12, 5))
    top = max(float(np.max(p.spectrum.a_w)) for p in pts)
    step = 0.5 * top if len(pts) > 1 else 0.0
    cmap = plt.get_cmap("viridis")
    for i, p in enumerate(pts):
        ax.plot(p.spectrum.omega, p.spectrum.a_w + i * step,
                color=cmap(i / max(1, len(pts) - 1)), label=f"{x} = {getattr(p, x):g}")
    ax.set_xlabel(r"$\omega / D$")
    ax.set_ylabel(rf"$A(\omega)$ (curves offset with {x})")
    ax.legend(fontsize=7, ncol=2)
    omega = pts[0].spectrum.omega
    U = np.array([getattr(p, x) for p in pts])
    grid = np.array([np.interp(omega, p.spectrum.omega, p.spectrum.a_w) for p in pts])
    if len(pts) > 1:
        mesh = axm.pcolormesh(omega, U, grid, shading="nearest", cmap="magma")
        fig.colorbar(mesh, ax=axm, label=r"$A(\omega)$")
    else:
        axm.plot(omega, grid[0])
    axm.set_xlabel(r"$\omega / D$")
    axm.set_ylabel(f"{x} / D")
    m = pts[0].spectrum
    ax.set_title(f"{branch} branch, {m.method}"
                 + (f", eta = {m.params['eta']:g}" if "eta" in m.params else ""))
    return _save(fig, path, title)


def _save(fig, path: Path, title: str) -> Path:
    """Title, layout, write the PNG and release the figure."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
