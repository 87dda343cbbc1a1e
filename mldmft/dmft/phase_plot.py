"""The phase-diagram figure: ``T`` against ``U`` with the coexistence region of each diagram
shaded between ``Uc1(T)`` and ``Uc2(T)`` up to its critical end point, the first-order line,
the crossover above ``Tc``, ED-DMFT spot checks and published values
(``mldmft/pretrained/published_phase_diagram.csv``, :func:`load_published`)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..h5util import atomic_path

if TYPE_CHECKING:
    from .phase_diagram import PhaseDiagramResult

__all__ = ["plot_phase_diagram", "load_published", "PUBLISHED"]

#: Published critical end points and branch ends of the half-filled Bethe-lattice Hubbard model
#: (DMFT), converted to the half bandwidth D = 1; columns and sources in the file's header.
PUBLISHED = Path(__file__).resolve().parents[1] / "pretrained" / "published_phase_diagram.csv"

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
_MARKERS = {"Tc": "*", "Uc1": "<", "Uc2": ">", "Uc": "s", "first_order": "D"}


def load_published(path: str | Path = PUBLISHED) -> list[dict[str, Any]]:
    """Rows of the published-values CSV (lines starting with ``#`` are comments): ``method``,
    ``reference``, ``quantity`` (``Tc``: the critical end point, ``Uc1``/``Uc2``: a branch end,
    ``first_order``: a point of the first-order line), ``U``, ``U_error``, ``T``, ``T_error``
    (D; empty errors as 0, an empty ``T`` as 0 for ``T = 0`` values)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as fh:
        lines = [line for line in fh if line.strip() and not line.lstrip().startswith("#")]
    for r in csv.DictReader(lines):
        rows.append({"method": r["method"].strip(), "reference": r["reference"].strip(),
                     "quantity": r["quantity"].strip(),
                     "U": float(r["U"]) if r["U"].strip() else float("nan"),
                     "U_error": float(r["U_error"] or 0.0), "T": float(r["T"] or 0.0),
                     "T_error": float(r["T_error"] or 0.0)})
    return rows


def _draw_diagram(ax: Any, d: Any, color: str, main: bool, legend: bool = True) -> None:
    """Coexistence region, branch ends, crossover, first-order line and critical point of one
    diagram (``legend``: label the artists)."""
    def lab(text: str) -> str | None:
        return text if legend else None

    temps = sorted(d.temperatures, key=lambda t: t.T)
    cp = d.critical
    name = d.label if main else f"{d.label} (comparison)"
    win = [t for t in temps if t.coexist and t.up.bracketed and t.down.bracketed]
    alpha = 0.28 if main else 0.14
    if win:
        us = [t.down.U for t in win]
        ue = [t.up.U for t in win]
        ts = [t.T for t in win]
        if cp.status == "bracketed":
            poly_u = us + [cp.Uc] + ue[::-1]
            poly_t = ts + [cp.Tc] + ts[::-1]
        else:
            poly_u, poly_t = us + ue[::-1], ts + ts[::-1]
        ax.fill(poly_u, poly_t, color=color, alpha=alpha, lw=0,
                label=lab(f"{name}: coexistence (Uc1 < U < Uc2)"))
        ls = "-" if main else "--"
        ax.errorbar(us, ts, xerr=[t.down.error for t in win], fmt="<", ls=ls, color=color,
                    ms=4 if main else 3, lw=1, capsize=1.5,
                    label=lab(f"{name}: Uc1 (insulator ends)"))
        ax.errorbar(ue, ts, xerr=[t.up.error for t in win], fmt=">", ls=ls, color=color,
                    ms=4 if main else 3, lw=1, capsize=1.5, label=lab(f"{name}: Uc2 (metal ends)"))
    hot = [t for t in temps if not t.coexist and t.up.bracketed and t.down.bracketed
           and (cp.status != "bracketed" or t.T >= cp.T_none)]
    if hot:
        us = [t.crossover for t in hot]
        ts = [t.T for t in hot]
        if cp.status == "bracketed":
            us, ts = [cp.Uc] + us, [cp.Tc] + ts
        ax.plot(us, ts, ":", color=color, lw=1.2,
                label=lab(f"{name}: crossover (-beta G(beta/2) = 0.5)"))
    th = d.thermo
    if th is not None:
        fo = sorted(((1.0 / b, c) for b, c in th.first_order if c.status == "crossing"),
                    key=lambda x: x[0])
        if fo:
            us = [c.U for _, c in fo]
            ts = [t for t, _ in fo]
            ax.errorbar(us, ts, xerr=[c.error for _, c in fo], fmt="D", ms=3.5,
                        color="black" if main else color, mfc=color, lw=0, elinewidth=1,
                        capsize=1.5)
            lu, lt = list(us), list(ts)
            if cp.status == "bracketed":
                lu.append(cp.Uc)
                lt.append(cp.Tc)
            ax.plot(lu, lt, "-", color="black" if main else color, lw=2.0 if main else 1.2,
                    label=lab(f"{name}: first-order line (Omega_met = Omega_ins)"))
    if cp.status == "bracketed":
        ax.errorbar([cp.Uc], [cp.Tc], xerr=[cp.Uc_error], yerr=[cp.Tc_error], fmt="*",
                    ms=14 if main else 10, color=color, mec="black", capsize=3, zorder=5,
                    label=lab(f"{name}: critical end point ({cp.Uc:.2f}, {cp.Tc:.4f})"))


def _draw_references(ax: Any, rows: list[dict[str, Any]], legend: bool = True) -> None:
    """Reference points: this project's 8-site ED-DMFT sweeps as open black markers, published
    values in grey (a value without U as a short dashed horizontal line at the left), one
    legend entry per source."""
    shapes = {"Tc": "*", "Uc1": "<", "Uc2": ">", "crossover": "o", "first_order": "D"}
    seen: set[str] = set()
    for r in rows:
        ours = r["reference"].startswith("this project")
        key = (f"{r['method']} (this project's sweeps)" if ours
               else f"{r['method']}: {r['reference']}")
        label = None if key in seen or not legend else key
        seen.add(key)
        color = "black" if ours else "dimgray"
        if not math.isfinite(r["U"]):
            ax.axhline(r["T"], xmax=0.3, color=color, ls="--", lw=1.2, label=(
                f"{key}: {r['quantity']} = {r['T']:g}" if label else None))
            continue
        ax.errorbar([r["U"]], [r["T"]], xerr=[r["U_error"]], yerr=[r["T_error"]],
                    fmt=shapes.get(r["quantity"], "o"), ms=7, color=color, mfc="white",
                    mew=1.3, capsize=2, zorder=4, label=label)


def _draw_ed_check(ax: Any, result: "PhaseDiagramResult", legend: bool = True) -> None:
    """The ED check's branch ends (filled black triangles)."""
    if result.ed is None:
        return
    for k, t in enumerate(result.ed.temperatures):
        for end, marker, name in ((t.down, "<", "Uc1"), (t.up, ">", "Uc2")):
            if end.bracketed:
                ax.errorbar([end.U], [t.T], xerr=[end.error], fmt=marker, ms=8,
                            color="black", mew=1.5, capsize=2, zorder=6,
                            label=(f"ED-DMFT check (--check-ed): {name}"
                                   if k == 0 and legend else None))


def _zoom(ax: Any, result: "PhaseDiagramResult", rows: list[dict[str, Any]]) -> None:
    """An inset (upper right) on the main diagram's coexistence region."""
    d = result.main
    ends = [e.U for t in d.temperatures if t.coexist for e in (t.up, t.down) if e.bracketed]
    if not ends:
        return
    T_top = (d.critical.Tc if math.isfinite(d.critical.Tc)
             else max(t.T for t in d.temperatures if t.coexist))
    ins = ax.inset_axes([0.56, 0.53, 0.42, 0.40])
    ins.set_zorder(10)                      # above the main axes' lines
    ins.set_facecolor("white")
    _draw_diagram(ins, d, _COLORS[0], True, legend=False)
    _draw_ed_check(ins, result, legend=False)
    _draw_references(ins, rows, legend=False)
    ins.set_xlim(min(ends) - 0.04, max(ends) + 0.04)
    ins.set_ylim(0.0, 1.3 * T_top)
    ins.tick_params(labelsize=7)
    ins.set_title(f"{d.label}: the coexistence region", fontsize=8)
    ins.grid(alpha=0.25)


def plot_phase_diagram(result: "PhaseDiagramResult", path: str | Path,
                       published: str | Path | None = PUBLISHED) -> Path:
    """Write the figure (PNG, 150 dpi) of ``result``: the main diagram in blue, comparisons in
    other colours (lighter, dashed), the ED-DMFT check's branch ends as filled black triangles,
    the reference points of ``published`` (this project's ED-DMFT sweeps open black, published
    values grey, references in the legend). Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 6.0))
    diagrams = [result.main] + list(result.comparisons)
    for k, d in enumerate(diagrams):
        _draw_diagram(ax, d, _COLORS[k % len(_COLORS)], k == 0)
    _draw_ed_check(ax, result)
    rows = load_published(published) if published is not None else []
    _draw_references(ax, rows)
    # limits: the main diagram's region, with the comparisons' critical points in view
    Ts = [t.T for d in diagrams for t in d.temperatures]
    Tcs = [d.critical.Tc for d in diagrams if math.isfinite(d.critical.Tc)]
    t_top = max([1.0 / min(result.main.spec.betas)] + [1.25 * t for t in Tcs]
                + [r["T"] * 1.1 for r in rows])
    t_top = min(t_top, max(Ts) * 1.05)
    us = [e.U for d in diagrams for t in d.temperatures for e in (t.up, t.down)
          if e.bracketed and t.T <= t_top]
    us += [r["U"] for r in rows if math.isfinite(r["U"])]
    if us:
        ax.set_xlim(min(us) - 0.12, max(us) + 0.12)
    ax.set_ylim(0.0, t_top)
    ax.set_xlabel("U / D")
    ax.set_ylabel("T / D")
    sec = ax.secondary_yaxis("right")      # the same T axis, labelled in beta
    ticks = [b for b in (20, 25, 30, 40, 50, 75, 100, 200) if 1.0 / b <= t_top]
    sec.set_yticks([1.0 / b for b in ticks])
    sec.set_yticklabels([f"{b:g}" for b in ticks])
    sec.set_ylabel("beta D")
    lattice = result.main.plan.get("lattice", {})
    ax.set_title(f"Mott transition of the half-filled Hubbard model, DMFT, "
                 f"{str(lattice.get('name', '')).capitalize()} lattice (D = 1)", fontsize=11)
    ax.grid(alpha=0.25)
    _zoom(ax, result, rows)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.13, 0.5), frameon=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png", bbox_inches="tight")
    plt.close(fig)
    return path
