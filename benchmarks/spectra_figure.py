"""Figure: ED-DMFT and network-DMFT spectra A(w) across the Mott transition (Bethe, square).

ED-DMFT (bath of ``--n-bath`` sites refitted every iteration, default 4) at ``beta`` (default
50), half filling, up branch from the metal through ``--U`` (default 0.5, 1, 1.5, 2, 2.25, 2.5, 3, 3.5, 4);
``A(w) = -Im G_loc(w + i eta)/pi`` from the ED poles and the lattice's Hilbert transform
(``eta`` default 0.05); the same sweep with the default ``ml`` solver (the shipped phase-diagram
network, unguarded), continued by maximum entropy (``ana_cont``), in the third column. Writes ``docs/spectra_bethe_square.png`` (curves and U-omega maps) and
prints Z, -beta G(beta/2), A(0) and the wall time per lattice.

Run: ``python benchmarks/spectra_figure.py [--beta 50] [--n-bath 4] [--U 1,2,3,4]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mldmft.dmft import DMFTOptions, sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beta", type=float, default=50.0)
    ap.add_argument("--n-bath", type=int, default=4)
    ap.add_argument("--eta", type=float, default=0.05)
    ap.add_argument("--U", default="0.5,1,1.5,2,2.25,2.5,3,3.5,4")
    ap.add_argument("--out", default=str(ROOT / "docs" / "spectra_bethe_square.png"))
    a = ap.parse_args()
    U = [float(u) for u in a.U.split(",")]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import mldmft.ml  # noqa: F401  (registers the ml solver)

    fig, axes = plt.subplots(2, 3, figsize=(18, 9))
    for row, lattice in enumerate(("bethe", "square")):
        t0 = time.perf_counter()
        pts = sweep("ed", a.beta, U, "up", lattice=lattice,
                    options=DMFTOptions(n_iw=512, tol=1e-5, max_iter=150),
                    solver_options={"n_bath": a.n_bath},
                    spectra={"eta": a.eta, "omega_max": 4.0, "n_omega": 801})
        wall = time.perf_counter() - t0
        print(f"{lattice}: {len(pts)} points in {wall:.1f} s (ED-DMFT, Nb = {a.n_bath}, "
              f"beta = {a.beta:g}, eta = {a.eta:g})")
        print(f"  {'U':>5} {'conv':>5} {'iter':>5} {'Z':>7} {'-bG(b/2)':>9} {'A(0)':>7} "
              f"{'int A':>7}")
        omega = pts[0].spectrum.omega
        grid = []
        for i, p in enumerate(pts):
            s = p.spectrum
            a0 = float(np.interp(0.0, s.omega, s.a_w))
            print(f"  {p.U:>5.2f} {str(p.converged):>5} {p.iterations:>5} {p.Z:>7.4f} "
                  f"{p.g_beta_half:>9.4f} {a0:>7.4f} {s.norm:>7.4f}")
            axes[row, 0].plot(s.omega, s.a_w + 0.5 * i, label=f"U = {p.U:g}",
                              color=plt.get_cmap("viridis")(i / max(1, len(pts) - 1)))
            grid.append(s.a_w)
        axes[row, 0].set_title(f"{lattice} lattice, ED-DMFT Nb = {a.n_bath}, beta = {a.beta:g}, "
                               f"eta = {a.eta:g}")
        axes[row, 0].set_xlabel(r"$\omega / D$")
        axes[row, 0].set_ylabel(r"$A(\omega)$ (curves offset by 0.5)")
        axes[row, 0].legend(fontsize=8)
        mesh = axes[row, 1].pcolormesh(omega, [p.U for p in pts], np.array(grid),
                                       shading="nearest", cmap="magma")
        fig.colorbar(mesh, ax=axes[row, 1], label=r"$A(\omega)$")
        axes[row, 1].set_xlabel(r"$\omega / D$")
        axes[row, 1].set_ylabel("U / D")
        axes[row, 1].set_title(f"{lattice}: quasiparticle peak and Hubbard bands")
        t0 = time.perf_counter()
        net = sweep("ml", a.beta, U, "up", lattice=lattice,
                    options=DMFTOptions(n_iw=512, tol=1e-5, max_iter=150),
                    spectra={"method": "maxent", "omega_max": 4.0, "n_omega": 801})
        print(f"  network-DMFT + MaxEnt: {time.perf_counter() - t0:.1f} s; Z network / ED: "
              + ", ".join(f"{q.U:g}: {q.Z:.3f}/{p.Z:.3f}" for q, p in zip(net, pts)))
        for i, (q, p) in enumerate(zip(net, pts)):
            color = plt.get_cmap("viridis")(i / max(1, len(pts) - 1))
            axes[row, 2].plot(q.spectrum.omega, q.spectrum.a_w + 0.5 * i, color=color,
                              label=f"U = {q.U:g}")
            axes[row, 2].plot(p.spectrum.omega, p.spectrum.a_w + 0.5 * i, color=color, lw=0.6,
                              ls=":")
        axes[row, 2].set_title(f"{lattice}: network-DMFT (MaxEnt, solid) vs ED-DMFT (dotted)")
        axes[row, 2].set_xlabel(r"$\omega / D$")
        axes[row, 2].set_ylabel(r"$A(\omega)$ (curves offset by 0.5)")
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
