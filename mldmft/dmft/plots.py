"""Mott-transition plots: Z, double occupancy and -beta G(beta/2) against U (or, for sweeps in
mu, also the density against mu), up/down branches."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .loop import DMFTPoint

__all__ = ["plot_sweeps"]

_MARK = {"up": ">", "down": "<"}
_LINE = {"up": "-", "down": "--"}
_END = {"up": "metal up to U = {:g}", "down": "insulator down to U = {:g}"}


_PANELS = {"Z": "quasiparticle weight Z", "double_occupancy": "double occupancy",
           "g_beta_half": r"$-\beta G(\beta/2)$", "density": "density n"}


def plot_sweeps(runs: Sequence[tuple[str, Sequence[DMFTPoint]]], path: str | Path,
                title: str = "", x: str = "U", reference: str | None = None,
                zoom: tuple[float, float] | None = None, mark_ends: bool = False) -> Path:
    """One figure, three panels (Z, double occupancy, -beta G(beta/2) vs U); each run is a
    ``(label, points)`` pair, drawn in order (the last on top), one legend entry per run and
    branch: up branches solid with ``>`` markers, down branches dashed with ``<``; points that
    did not converge are marked ``x``. ``x="mu"`` (sweeps in mu): against mu, with the density
    as a fourth panel in front.

    Args:
        reference: the label of the run to draw as the reference: under the others, a thick
            light grey line with large open markers, so that a run lying on it stays visible.
        zoom: ``(lo, hi)``: a second row of the same panels restricted to ``lo <= x <= hi``.
        mark_ends: (``x="U"``) the ends of the branches
            (:func:`~mldmft.dmft.transition.branch_ends`) in the legend; the reference's coexistence window ``Uc1 <= U <= Uc2`` shaded, the
            other runs' ``Uc1`` (dotted) and ``Uc2`` (dash-dotted) as vertical lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .transition import branch_ends

    if x not in ("U", "mu"):
        raise ValueError(f"x must be 'U' or 'mu', got {x!r}")
    if reference is not None and reference not in [label for label, _ in runs]:
        raise ValueError(f"reference {reference!r} is not one of the runs' labels")
    if zoom is not None and not zoom[0] < zoom[1]:
        raise ValueError(f"zoom must be (lo, hi) with lo < hi, got {zoom}")
    if mark_ends and x != "U":
        raise ValueError("mark_ends needs a sweep in U (x='U')")
    keys = ("Z", "double_occupancy", "g_beta_half") if x == "U" else (
        "density", "Z", "double_occupancy", "g_beta_half")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 1 if zoom is None else 2
    fig, axes = plt.subplots(rows, len(keys), figsize=(14 if x == "U" else 18, 4 * rows + 1),
                             layout="constrained", squeeze=False)
    colors = iter(c for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]
                  if c != "#7f7f7f")  # grey is the reference's
    for i, (label, points) in enumerate(runs):
        ref = label == reference
        c = "0.45" if ref else next(colors)
        style = (dict(lw=5, alpha=0.35, ms=10, mfc="none", mew=1.2, zorder=1) if ref
                 else dict(lw=1.2, ms=4.5, zorder=2 + i))
        ends = dict(zip(("down", "up"), branch_ends(points))) if mark_ends else {}
        for branch in ("up", "down"):
            pts = sorted((p for p in points if p.branch == branch), key=lambda p: getattr(p, x))
            if not pts:
                continue
            xs = np.array([getattr(p, x) for p in pts])
            ok = np.array([p.converged for p in pts])
            name = f"{label}, {branch}"
            if ends.get(branch) is not None:
                name += f" ({_END[branch].format(ends[branch])})"
            for row in axes:
                for ax, key in zip(row, keys):
                    y = np.array([getattr(p, key) for p in pts])
                    line, = ax.plot(xs, y, _LINE[branch], marker=_MARK[branch], color=c,
                                    label=name, **style)
                    if ref:  # the marker edge fully opaque, the line light
                        line.set_markeredgecolor((0.3, 0.3, 0.3, 1.0))
                    if np.any(~ok):
                        ax.plot(xs[~ok], y[~ok], "x", color="k", ms=8, zorder=20,
                                label="not converged")
        if mark_ends:
            uc1, uc2 = ends.get("down"), ends.get("up")
            for ax in axes.ravel():
                if ref and uc1 is not None and uc2 is not None and uc1 <= uc2:
                    ax.axvspan(uc1, uc2, color="0.5", alpha=0.15, lw=0, zorder=0,
                               label=f"coexistence, {label}: {uc1:g} <= U <= {uc2:g}")
                elif not ref:
                    for u, ls in ((uc1, ":"), (uc2, "-.")):
                        if u is not None:
                            ax.axvline(u, color=c, ls=ls, lw=1, alpha=0.8, zorder=0)
    for r, row in enumerate(axes):
        for ax, key in zip(row, keys):
            ax.set_xlabel("U / D" if x == "U" else "mu / D")
            ax.set_ylabel(_PANELS[key])
            if r == 1:
                _zoom(ax, zoom)
    if rows == 2:
        axes[1, 0].set_title(f"zoom: {zoom[0]:g} <= {x} <= {zoom[1]:g}", fontsize=9, loc="left")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))  # one entry per label ("not converged" once)
    fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncol=2, fontsize=8)
    return _save(fig, path, title)


def _zoom(ax, window: tuple[float, float]) -> None:
    """Limit ``ax`` to ``window`` in x and its y range to the data drawn there."""
    lo, hi = window
    ys = [line.get_ydata()[(line.get_xdata() >= lo) & (line.get_xdata() <= hi)]
          for line in ax.get_lines()
          if len(line.get_xdata()) and not line.get_label().startswith("_")]  # not axvline
    ys = np.concatenate([np.asarray(y, float) for y in ys]) if ys else np.array([])
    ys = ys[np.isfinite(ys)]
    pad = 0.03 * (hi - lo)
    ax.set_xlim(lo - pad, hi + pad)
    if ys.size:
        span = max(float(ys.max() - ys.min()), 1e-6)
        ax.set_ylim(ys.min() - 0.06 * span, ys.max() + 0.06 * span)


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
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
