"""The shipped demo: network-DMFT on the Bethe lattice through the Mott transition at beta = 50.

``mldmft demo`` runs up and down U sweeps with the default ``ml`` solver -- the shipped
phase-diagram network (``mldmft/pretrained/phase_diagram.pt``: a 5-member ensemble correcting
ED on 3 refitted bath sites toward 8, for beta 20-200, U 0.5-5, any filling; recipe in
``mldmft/pretrained/README.md``) -- unguarded (no ED fallback), the same sweeps with plain IPT,
and compares both with the ED-DMFT (Nb = 8) reference curve shipped in ``mldmft/pretrained/``
(or recomputed with ``--compute-ed``). The older ``beta = 50`` demo network stays available as
``demo_beta50.pt`` (:func:`demo_checkpoint`, :data:`GUARD`). It writes the sweeps (HDF5 + CSV) and
``mott_beta50.png`` under ``data/demo/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .io import load_sweep_csv
from .loop import DMFTPoint
from .plots import plot_sweeps
from .sweep import sweep

__all__ = ["run_demo", "PRETRAINED", "DEMO_BETA", "DEMO_U", "GUARD", "demo_checkpoint"]

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
DEMO_BETA = 50.0
DEMO_U = tuple(float(u) for u in np.round(np.arange(1.5, 3.51, 0.1), 2))
#: Guarded network mode: an iteration whose ensemble spread exceeds 0.02 or whose G(tau) is
#: positive somewhere is done with ED instead. Without it the network's down branch converges,
#: below the end of the insulating branch, to an unphysical "insulator" with G(beta/2) > 0.
GUARD = {"fallback": "ed", "threshold": 0.02, "fallback_options": {"n_bath": 8}}


def demo_checkpoint() -> Path:
    path = PRETRAINED / "demo_beta50.pt"
    if not path.is_file():
        raise ValueError(f"the pretrained demo network {path} is missing; rebuild it with the "
                         "recipe in mldmft/pretrained/README.md")
    return path


def _by_key(points: Sequence[DMFTPoint]) -> dict[tuple[float, str], DMFTPoint]:
    return {(round(p.U, 6), p.branch): p for p in points}


def run_demo(out_dir: str | Path = "data/demo", U_values: Sequence[float] = DEMO_U,
             compute_ed: bool = False, progress: bool = True) -> list[str]:
    """Run the demo; returns the printed report lines."""
    import mldmft.ml  # noqa: F401  (registers the network solver)

    from ..ml.inference import DEFAULT_CHECKPOINT

    out_dir = Path(out_dir)
    if not DEFAULT_CHECKPOINT.is_file():
        raise ValueError(f"the shipped default network {DEFAULT_CHECKPOINT} is missing; rebuild "
                         "it with the recipe in mldmft/pretrained/README.md")
    lines = [f"Bethe lattice, half filling, beta = {DEMO_BETA:g}, U = {U_values[0]:g}..."
             f"{U_values[-1]:g} (up and down sweeps)"]
    t0 = time.perf_counter()
    ml = sweep("ml", DEMO_BETA, U_values, "both", out=out_dir / "ml_beta50.h5",
               progress=progress)
    t_ml = time.perf_counter() - t0
    t0 = time.perf_counter()
    ipt = sweep("ipt", DEMO_BETA, U_values, "both", out=out_dir / "ipt_beta50.h5",
                progress=progress)
    t_ipt = time.perf_counter() - t0
    if compute_ed:
        ed = sweep("ed", DEMO_BETA, U_values, "both", out=out_dir / "ed_beta50.h5",
                   progress=progress, tol=1e-5)
        ed_label = "ED-DMFT Nb=8 (computed)"
    else:
        ed = load_sweep_csv(PRETRAINED / "ed_dmft_beta50.csv")
        ed_label = "ED-DMFT Nb=8 (shipped)"
    # the reference first, the network last: drawn on top where it overlaps ED-DMFT
    png = plot_sweeps([(ed_label, ed), ("IPT", ipt), ("network (default ml solver)", ml)],
                      out_dir / "mott_beta50.png",
                      title=f"Mott transition, Bethe lattice, beta = {DEMO_BETA:g}")
    ref = _by_key(ed)
    lines.append(f"{'branch':<6} {'U':>5} {'Z net':>8} {'Z IPT':>8} {'Z ED':>8} {'|dZ| net':>9}"
                 f" {'|dZ| IPT':>9}")
    dz_ml, dz_ipt = [], []
    for p, q in zip(ml, ipt):
        r = ref.get((round(p.U, 6), p.branch))
        zed = r.Z if r is not None else np.nan
        dz_ml.append(abs(p.Z - zed))
        dz_ipt.append(abs(q.Z - zed))
        flag = "" if p.converged else "  (network point not converged)"
        if p.fallbacks:
            flag += f"  ({p.fallbacks} ED fallback iterations)"
        lines.append(f"{p.branch:<6} {p.U:>5.2f} {p.Z:>8.4f} {q.Z:>8.4f} {zed:>8.4f} "
                     f"{dz_ml[-1]:>9.4f} {dz_ipt[-1]:>9.4f}{flag}")
    lines.append(f"max |Z - Z_ED|: network {np.nanmax(dz_ml):.4f}, IPT {np.nanmax(dz_ipt):.4f}")
    lines.append(f"wall time: network sweeps {t_ml:.1f} s ({len(ml)} points, no ED fallback), "
                 f"IPT {t_ipt:.1f} s")
    lines.append(f"plot: {png}")
    return lines
