"""The phase-diagram network inside a DMFT loop, against ED-DMFT with 8 bath sites.

    python benchmarks/phase_diagram_dmft.py [--checkpoint PATH] [--doped U,U,...]

1. Half filling, beta = 50: Bethe-lattice sweeps up and down in U = 1.5 ... 3.5 (step 0.1) with the
   network solver unguarded (no ED fallback), against the shipped ED-DMFT reference
   (``mldmft/pretrained/ed_dmft_beta50.csv``, Nb = 8 refitted every iteration): max |dZ|, max |dn|,
   max |d docc| over the points both converged, the ends of the metallic and insulating branches,
   and the median time per point.
2. Off half filling (``--doped``, default U = 1.5, 3.0 at mu = U/2 - 0.4, beta = 50): one point
   each with the network and with ED-DMFT (Nb = 8), run here.

Prints the figures and writes ``data/phase_diagram_dmft.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _reference() -> dict[tuple[str, float], dict[str, float]]:
    ref = {}
    with open(REPO / "mldmft" / "pretrained" / "ed_dmft_beta50.csv") as f:
        for row in csv.DictReader(f):
            ref[(row["branch"], round(float(row["U"]), 6))] = {
                k: float(row[k]) for k in ("Z", "density", "double_occupancy", "g_beta_half")}
    return ref


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped network")
    ap.add_argument("--doped", default="1.5,3.0", help="U values of the doped check ('' = none)")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "phase_diagram_dmft.json")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import mldmft.ml  # noqa: F401
    from mldmft.dmft import DMFTOptions, sweep
    from mldmft.dmft.transition import branch_ends

    opts = {} if args.checkpoint is None else {"checkpoint": args.checkpoint}
    U = np.round(np.arange(1.5, 3.5001, 0.1), 6)
    ref = _reference()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pts = sweep("ml", 50.0, U, "both", solver_options=opts, options=DMFTOptions(tol=1e-5))
    wall = time.perf_counter() - t0
    dz, dn, dd, missing = [], [], [], []
    for p in pts:
        r = ref.get((p.branch, round(p.U, 6)))
        if r is None or not p.converged:
            missing.append((p.branch, p.U, p.converged))
            continue
        dz.append(abs(p.Z - r["Z"]))
        dn.append(abs(p.density - r["density"]))
        dd.append(abs(p.double_occupancy - r["double_occupancy"]))
    worst = pts[int(np.argmax([abs(p.Z - ref.get((p.branch, round(p.U, 6)), {"Z": p.Z})["Z"])
                               for p in pts]))]
    times = [p.wall_time for p in pts if p.converged]
    uc1, uc2 = branch_ends(pts)
    res = {
        "half_filling_beta50": {
            "points": len(pts), "converged": sum(p.converged for p in pts),
            "max_abs_dZ": max(dz), "max_abs_dn": max(dn), "max_abs_ddocc": max(dd),
            "worst_dZ_at": [worst.branch, worst.U],
            "metal_end_up": uc2, "insulator_end_down": uc1,
            "median_time_per_point_s": statistics.median(times), "wall_s": wall,
            "iterations": int(sum(p.iterations for p in pts)), "not_compared": missing,
            "load_average_start": load0}}
    ref_metal_end = max(u for (b, u), r in ref.items() if b == "up" and r["g_beta_half"] > 0.5)
    ref_ins_end = min(u for (b, u), r in ref.items() if b == "down" and r["g_beta_half"] <= 0.5)
    h = res["half_filling_beta50"]
    print(f"half filling, beta = 50, {h['points']} points ({h['converged']} converged), network "
          f"unguarded: max|dZ| {h['max_abs_dZ']:.4f} (at {h['worst_dZ_at']}), max|dn| "
          f"{h['max_abs_dn']:.2e}, max|d docc| {h['max_abs_ddocc']:.4f}")
    print(f"  metallic branch ends at U = {h['metal_end_up']} (ED {ref_metal_end}), insulating at "
          f"U = {h['insulator_end_down']} (ED {ref_ins_end}); median {h['median_time_per_point_s']:.2f}"
          f" s per point, {wall:.0f} s in all, {h['iterations']} iterations (load {load0:.2f})")
    doped = []
    for u in [float(x) for x in args.doped.split(",") if x.strip()]:
        mu = u / 2 - 0.4
        row = {"U": u, "mu": mu}
        for name, solver, sopts in (("network", "ml", opts), ("ed8", "ed", {"n_bath": 8})):
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = sweep(solver, 50.0, [u], "up", mu=mu, solver_options=sopts,
                          options=DMFTOptions(tol=1e-5))[0]
            row[name] = {"Z": p.Z, "density": p.density, "double_occupancy": p.double_occupancy,
                         "converged": p.converged, "time_s": time.perf_counter() - t}
        doped.append(row)
        a, b = row["network"], row["ed8"]
        print(f"doped U = {u:g}, mu = {mu:g}: n {a['density']:.4f} vs ED {b['density']:.4f}, "
              f"Z {a['Z']:.4f} vs {b['Z']:.4f}, docc {a['double_occupancy']:.4f} vs "
              f"{b['double_occupancy']:.4f}; {a['time_s']:.1f} s vs {b['time_s']:.1f} s")
    res["doped_beta50"] = doped
    from mldmft.h5util import write_json_atomic

    write_json_atomic(args.out, res)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
