"""The shipped demo: network-DMFT on the Bethe lattice through the Mott transition, at the
temperature where its coexistence window shows.

``mldmft demo`` runs up and down U sweeps at :data:`DEMO_BETA` with the default ``ml`` solver --
the shipped fast network (``mldmft/pretrained/fast.pt``: kernel ridge regression correcting IPT
toward ED with 8 bath sites from inputs that need no ED, for beta 20-200, U 0.5-5, any filling;
recipe in ``mldmft/pretrained/README.md``) -- unguarded (no ED fallback), the same sweeps with plain IPT,
and compares both with the ED-DMFT (Nb = 8) reference shipped in ``mldmft/pretrained/`` (or
recomputed with ``--compute-ed``): Z and double occupancy point by point, and the ends of the
metallic (up) and insulating (down) branches, Uc2 and Uc1 (:mod:`mldmft.dmft.transition`).

Why ``beta = 100``: at ``beta = 50`` ED-DMFT shows no hysteresis on a 0.1 grid (both branches
jump between U = 2.3 and 2.4). ED-DMFT on 4 refitted bath sites (step 0.02, ``tol = 1e-5``,
``benchmarks/coexistence.py``) gives the window Uc1 ... Uc2 = 2.38 ... 2.38 (one grid point) at
beta = 50, 2.38 ... 2.46 at 75, 2.38 ... 2.52 at 100 and 2.38 ... 2.58 at 150. At beta = 100 the
window spans 8 points of a 0.02 grid (5 at 75), clear of the grid even if 8 bath sites move an
end by a step, for the same ED cost as at 75 (916 against 967 iterations for the 72 points); it
lies inside the network's beta domain (20-200). The U grid, :data:`DEMO_U`, is coarse away from the transition
and 0.02 apart across the window.

The older ``beta = 50`` demo network stays available as ``demo_beta50.pt``
(:func:`demo_checkpoint`, :data:`GUARD`), with its ED-DMFT reference ``ed_dmft_beta50.csv``. The
demo writes the sweeps (HDF5 + CSV) and ``mott_beta100.png`` under ``data/demo/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .io import PlanMismatchError, load_sweep_csv
from .loop import DMFTOptions, DMFTPoint
from .plots import plot_sweeps
from .sweep import sweep
from .transition import branch_ends

__all__ = ["run_demo", "PRETRAINED", "DEMO_BETA", "DEMO_U", "DEMO_ZOOM", "GUARD",
           "demo_checkpoint", "reference_csv"]

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
DEMO_BETA = 100.0
#: coarse away from the transition, 0.02 apart across the coexistence window
DEMO_U = tuple(float(u) for u in np.round(np.concatenate([
    [1.5, 1.8, 2.1, 2.25], np.arange(2.32, 2.5801, 0.02), [2.7, 3.0, 3.5]]), 2))
#: the U range of the figure's zoomed row
DEMO_ZOOM = (2.24, 2.71)
#: Guarded network mode: an iteration whose ensemble spread exceeds 0.02 or whose G(tau) is
#: positive somewhere is done with ED instead. Without it the ``beta = 50`` network's down branch
#: converges, below the end of the insulating branch, to an unphysical "insulator" with
#: G(beta/2) > 0.
GUARD = {"fallback": "ed", "threshold": 0.02, "fallback_options": {"n_bath": 8}}


def reference_csv(beta: float = DEMO_BETA) -> Path:
    """The shipped ED-DMFT (Nb = 8) reference sweep at ``beta``
    (``mldmft/pretrained/ed_dmft_beta<beta>.csv``)."""
    path = PRETRAINED / f"ed_dmft_beta{beta:g}.csv"
    if not path.is_file():
        raise ValueError(f"no shipped ED-DMFT reference at beta = {beta:g} ({path}); rebuild it "
                         "with the recipe in mldmft/pretrained/README.md or use --compute-ed")
    return path


def demo_checkpoint() -> Path:
    path = PRETRAINED / "demo_beta50.pt"
    if not path.is_file():
        raise ValueError(f"the pretrained demo network {path} is missing; rebuild it with the "
                         "recipe in mldmft/pretrained/README.md")
    return path


def _by_key(points: Sequence[DMFTPoint]) -> dict[tuple[float, str], DMFTPoint]:
    return {(round(p.U, 6), p.branch): p for p in points}


def _ends(points: Sequence[DMFTPoint]) -> str:
    uc1, uc2 = branch_ends(points)
    return (f"metal up to U = {'-' if uc2 is None else f'{uc2:.2f}'}, insulator down to U = "
            f"{'-' if uc1 is None else f'{uc1:.2f}'}")


def _max_diff(diffs: list[float]) -> float:
    finite = [d for d in diffs if np.isfinite(d)]
    return max(finite) if finite else float("nan")


def run_demo(out_dir: str | Path = "data/demo", U_values: Sequence[float] = DEMO_U,
             compute_ed: bool = False, progress: bool = True) -> list[str]:
    """Run the demo at :data:`DEMO_BETA`; returns the printed report lines (table, the largest
    differences from ED-DMFT, the branch ends Uc1 and Uc2 of every method, timings)."""
    import mldmft.ml  # noqa: F401  (registers the network solver)

    from ..ml.inference import DEFAULT_CHECKPOINT

    t_all = time.perf_counter()
    out_dir = Path(out_dir)
    if not DEFAULT_CHECKPOINT.is_file():
        raise ValueError(f"the shipped default network {DEFAULT_CHECKPOINT} is missing; rebuild "
                         "it with the recipe in mldmft/pretrained/README.md")
    tag = f"beta{DEMO_BETA:g}"
    lines = [f"Bethe lattice, half filling, beta = {DEMO_BETA:g}, {len(U_values)} U values "
             f"{min(U_values):g}...{max(U_values):g} (up and down sweeps)"]
    t0 = time.perf_counter()
    ml_out = out_dir / f"ml_{tag}.h5"
    try:
        ml = sweep("ml", DEMO_BETA, U_values, "both", out=ml_out, options=DMFTOptions(tol=1e-5),
                   progress=progress)
    except PlanMismatchError as err:     # e.g. an earlier demo's run of another default network
        print(f"{ml_out} holds another sweep ({err.difference}); it is recomputed", flush=True)
        for old in (ml_out, ml_out.with_suffix(".csv")):    # the sweep and its CSV twin
            old.unlink(missing_ok=True)
        ml = sweep("ml", DEMO_BETA, U_values, "both", out=ml_out, options=DMFTOptions(tol=1e-5),
                   progress=progress)
    t_ml = time.perf_counter() - t0
    t0 = time.perf_counter()
    ipt = sweep("ipt", DEMO_BETA, U_values, "both", out=out_dir / f"ipt_{tag}.h5",
                progress=progress)
    t_ipt = time.perf_counter() - t0
    if compute_ed:
        ed = sweep("ed", DEMO_BETA, U_values, "both", out=out_dir / f"ed_{tag}.h5",
                   progress=progress, options=DMFTOptions(tol=1e-5))
        ed_label = "ED-DMFT Nb=8 (computed)"
    else:
        ed = load_sweep_csv(reference_csv())
        ed_label = "ED-DMFT Nb=8 (shipped)"
    wanted = {round(float(u), 6) for u in U_values}
    ed = [p for p in ed if round(p.U, 6) in wanted]
    if len(ed) < 2 * len(wanted):
        lines.append(f"the ED-DMFT reference holds {len(ed)} of the {2 * len(wanted)} "
                     "(U, branch) points; the others are compared with nothing (nan)")
    net_label = "network (default ml solver, unguarded)"
    # the reference first and drawn light, the network last and on top
    png = plot_sweeps([(ed_label, ed), ("IPT", ipt), (net_label, ml)],
                      out_dir / f"mott_{tag}.png", reference=ed_label, mark_ends=True,
                      zoom=DEMO_ZOOM if min(U_values) < DEMO_ZOOM[1] and
                      max(U_values) > DEMO_ZOOM[0] else None,
                      title=f"Mott transition, Bethe lattice, beta = {DEMO_BETA:g}")
    ref = _by_key(ed)
    lines.append(f"{'branch':<6} {'U':>5} {'Z net':>8} {'Z IPT':>8} {'Z ED':>8} {'|dZ| net':>9}"
                 f" {'|dZ| IPT':>9} {'docc net':>9} {'docc ED':>8}")
    dz_ml, dz_ipt, dd_ml = [], [], []
    compared = []                   # every method and the reference converged at this point
    for p, q in zip(ml, ipt):
        r = ref.get((round(p.U, 6), p.branch))
        zed = r.Z if r is not None else np.nan
        ded = r.double_occupancy if r is not None else np.nan
        dz_ml.append(abs(p.Z - zed))
        dz_ipt.append(abs(q.Z - zed))
        dd_ml.append(abs(p.double_occupancy - ded))
        compared.append(p.converged and q.converged and (r is None or r.converged))
        flag = "" if p.converged else "  (network point not converged)"
        if p.fallbacks:
            flag += f"  ({p.fallbacks} ED fallback iterations)"
        lines.append(f"{p.branch:<6} {p.U:>5.2f} {p.Z:>8.4f} {q.Z:>8.4f} {zed:>8.4f} "
                     f"{dz_ml[-1]:>9.4f} {dz_ipt[-1]:>9.4f} {p.double_occupancy:>9.4f} "
                     f"{ded:>8.4f}{flag}")
    dz_ml, dz_ipt, dd_ml = ([d for d, ok in zip(ds, compared) if ok]
                            for ds in (dz_ml, dz_ipt, dd_ml))
    lines.append(f"max |Z - Z_ED| over the {sum(np.isfinite(dz_ml))} points where every method "
                 f"converged: network {_max_diff(dz_ml):.4f}, IPT {_max_diff(dz_ipt):.4f}; "
                 f"max |docc - docc_ED|: network {_max_diff(dd_ml):.4f}")
    if not all(compared):
        lines.append("not converged (left out above): " + ", ".join(
            f"U = {p.U:.2f} {p.branch}" for p, ok in zip(ml, compared) if not ok)
            + " -- just past a branch end the loop slows down, for ED-DMFT as for the network")
    lines.append("branch ends (metallic up branch to Uc2, insulating down branch to Uc1, "
                 "-beta G(beta/2) > 0.5 = metal):")
    for name, pts in (("ED-DMFT Nb=8", ed), ("network", ml), ("IPT", ipt)):
        lines.append(f"  {name:<13} {_ends(pts)}")
    (e1, e2), (n1, n2) = branch_ends(ed), branch_ends(ml)
    if None not in (e1, e2, n1, n2):
        lines.append(f"  network - ED: |dUc1| = {abs(n1 - e1):.2f}, |dUc2| = {abs(n2 - e2):.2f}")
    lines.append(f"wall time: network sweeps {t_ml:.1f} s ({len(ml)} points, no ED fallback), "
                 f"IPT {t_ipt:.1f} s, whole demo {time.perf_counter() - t_all:.1f} s")
    lines.append(f"plot: {png}")
    return lines
