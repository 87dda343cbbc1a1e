"""How often the DMFT guard's ``unphysical`` reason (``G(tau) > 0`` somewhere,
:func:`solvers.g_tau_positive`) fires on the network iterations of a DMFT sweep.

The sweep of ``benchmarks/dmft.py`` (2 x 30 U points in [1.5, 3.5], both branches) runs with the
guard watching only (``fallback=None``: flagged iterations are counted, the network's result is
kept, no ED), once with the ``beta = 50`` demo network (``demo_beta50.pt``, trained without the
causality projection) at ``beta = 50`` and once with the phase-diagram network (causality
projection on) at ``beta = 100``. For every iteration it records the largest ``G(tau)`` on the
check grid (:func:`solvers.g_tau_max`) and prints how many iterations an absolute tolerance
would flag, beside :data:`solvers.G_TAU_TOL` and a rule relative to ``max |G(tau)|``
(``G(tau) > 1e-3 max |G|`` on 65 points) for comparison.

Run: ``python benchmarks/guard_g_tau.py`` (about a minute).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import warnings  # noqa: E402

import numpy as np  # noqa: E402

import mldmft.ml  # noqa: E402,F401
import mldmft.dmft.steps as steps  # noqa: E402
from mldmft.dmft import sweep  # noqa: E402
from mldmft.dmft.demo import PRETRAINED  # noqa: E402
from solvers import G_TAU_TOL, g_tau_from_l, g_tau_max  # noqa: E402

TOLERANCES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3)


def main() -> None:
    seen: list[tuple[float, bool]] = []
    decide = steps.unphysical

    def record(result):
        tau = np.linspace(0.0, result.beta, 65)
        g = g_tau_from_l(result.g_l, result.beta, tau)
        seen.append((float(g_tau_max(result.g_l, result.beta)),
                     bool(np.max(g) > 1e-3 * np.max(np.abs(g)))))
        return decide(result)

    steps.unphysical = record
    U30 = [float(u) for u in np.linspace(1.5, 3.5, 30)]
    print(f"G_TAU_TOL = {G_TAU_TOL:g}")
    for name, beta in (("demo_beta50", 50.0), ("phase_diagram", 100.0)):
        seen.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sweep("ml", beta, U30, "both",
                  solver_options={"checkpoint": str(PRETRAINED / f"{name}.pt")},
                  guard={"fallback": None, "threshold": 0.02})
        mx = np.array([s[0] for s in seen])
        counts = ", ".join(f"{t:g}: {int((mx > t).sum())}" for t in TOLERANCES)
        print(f"{name} (beta = {beta:g}): {mx.size} network iterations; flagged by G(tau) > tol "
              f"for tol = {counts}; by G(tau) > 1e-3 max|G| (65 points): "
              f"{sum(s[1] for s in seen)}; largest G(tau) {mx.max():.2e}")


if __name__ == "__main__":
    main()
