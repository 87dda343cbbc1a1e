"""Benchmark of network-DMFT against ED-DMFT, in one process.

1. Time per converged U point: ED-DMFT (Nb = 8, bath refitted every iteration) and network-DMFT
   (the shipped demo network) on the same points (``--ed-points``, up branch, warm-started in
   sequence as in a sweep). Aim: network >= 100x faster.
2. A full up + down sweep of 2 x 30 U points with the network. Aim: < 60 s.
3. Accuracy against the ED-DMFT curve (the shipped reference, or recomputed with ``--ed-full``):
   max |Z_net - Z_ED| on both branches (aim: 0.02) and the end of the metallic branch Uc2
   (aim: within 0.1 D).

Run: ``python benchmarks/dmft.py [--ed-points 2.0,2.5] [--ed-full]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import mldmft.ml  # noqa: E402,F401
from mldmft.dmft import DMFTOptions, load_sweep_csv, sweep  # noqa: E402
from mldmft.dmft.demo import GUARD, PRETRAINED, demo_checkpoint  # noqa: E402
from mldmft.dmft.transition import branch_ends  # noqa: E402

#: the temperature of the ``beta = 50`` demo network (``demo_beta50.pt``) and its reference
BETA = 50.0
#: the grid of that reference (``mldmft/pretrained/ed_dmft_beta50.csv``)
U_REF = tuple(float(u) for u in np.round(np.arange(1.5, 3.51, 0.1), 2))


def uc2(points) -> float:
    """Largest U of the up branch that is still metallic (-beta G(beta/2) > 0.5)."""
    end = branch_ends(points)[1]
    return float("nan") if end is None else end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ed-points", default="1.5,2.0,2.5,3.0")
    parser.add_argument("--ed-full", action="store_true")
    args = parser.parse_args()
    ckpt = str(demo_checkpoint())
    beta = BETA
    U_time = [float(u) for u in args.ed_points.split(",")]

    t0 = time.perf_counter()
    ed_pts = sweep("ed", beta, U_time, "up", options=DMFTOptions(tol=1e-5))
    t_ed_total = time.perf_counter() - t0
    ml_pts = sweep("ml", beta, U_time, "up", solver_options={"checkpoint": ckpt})
    t_ed = statistics.median(p.wall_time for p in ed_pts)
    t_ml = statistics.median(p.wall_time for p in ml_pts)
    print(f"time per converged U point (median over U = {U_time}, beta = {beta:g}):")
    print(f"  ED-DMFT Nb=8   {t_ed:8.3f} s   (iterations {[p.iterations for p in ed_pts]}, "
          f"total {t_ed_total:.1f} s)")
    print(f"  network-DMFT   {t_ml:8.4f} s   (iterations {[p.iterations for p in ml_pts]})")
    print(f"  speed-up       {t_ed / t_ml:8.1f} x   (aim >= 100 x)")
    for a, b in zip(ed_pts, ml_pts):
        print(f"    U={a.U:.2f}: Z_ED={a.Z:.4f}  Z_net={b.Z:.4f}  |dZ|={abs(a.Z - b.Z):.4f}")

    U30 = [float(u) for u in np.linspace(1.5, 3.5, 30)]
    for label, guard in (("unguarded", None), ("guarded", GUARD)):
        t0 = time.perf_counter()
        full = sweep("ml", beta, U30, "both", solver_options={"checkpoint": ckpt}, guard=guard)
        t_full = time.perf_counter() - t0
        nconv = sum(not p.converged for p in full)
        print(f"network sweep 2 x 30 U points, {label}: {t_full:.1f} s (aim < 60 s), {nconv} "
              f"not converged, {sum(p.fallbacks for p in full)} ED fallback iterations, "
              f"{sum(p.g_beta_half < 0 for p in full)} unphysical points")

    if args.ed_full:
        ref = sweep("ed", beta, U_REF, "both", options=DMFTOptions(tol=1e-5))
    else:
        ref = load_sweep_csv(PRETRAINED / "ed_dmft_beta50.csv")
    grid = sorted({p.U for p in ref})
    refd = {(round(p.U, 6), p.branch): p for p in ref}
    for label, guard in (("unguarded", None), ("guarded", GUARD)):
        net = sweep("ml", beta, grid, "both", solver_options={"checkpoint": ckpt}, guard=guard)
        _accuracy(label, net, ref, refd, grid)


def _accuracy(label, net, ref, refd, grid) -> None:
    dz = {"up": [], "down": []}
    for p in net:
        r = refd.get((round(p.U, 6), p.branch))
        if r is not None and r.converged and p.converged:
            dz[p.branch].append(abs(p.Z - r.Z))
    print(f"{label}: accuracy vs ED-DMFT ({len(ref)} points): max |dZ| up {max(dz['up']):.4f}, "
          f"down {max(dz['down']):.4f} (aim 0.02)")
    print(f"Uc2: network {uc2(net):.2f}, ED {uc2(ref):.2f} (aim: within 0.1; grid step "
          f"{grid[1] - grid[0]:.2f})")


if __name__ == "__main__":
    main()
