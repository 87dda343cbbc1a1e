"""Cost of one DMFT iteration on every lattice: the lattice's self-consistency (Hilbert
transform) next to the impurity solver (IPT, and ED on a refitted bath of ``--n-bath`` sites).

For each lattice at ``beta`` (default 100) on ``n_iw`` (default 1024) Matsubara frequencies the
script times, as medians over ``--repeat`` calls after one warm-up call (which builds and caches
the square/cubic quadrature rules, whose one-off cost is printed separately):

* ``hilbert``: ``lattice.self_consistency(G_imp, Delta)`` = one Hilbert transform + Dyson;
* ``IPT``: ``solve("ipt", model)`` at U = 2;
* ``ED``: one ED-DMFT step (bath fit + ED) with ``--n-bath`` sites at U = 2.

Run: ``python benchmarks/lattices.py [--beta 100] [--n-iw 1024] [--n-bath 4] [--repeat 5]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from mldmft.dmft import get_lattice  # noqa: E402
from mldmft.dmft.steps import ed_refit_step  # noqa: E402
from solvers import AndersonModel, solve  # noqa: E402

LATTICES = ("bethe", "square", "cubic", "hypercubic")


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(beta: float = 100.0, n_iw: int = 1024, n_bath: int = 4, repeat: int = 5,
        lattices: tuple[str, ...] = LATTICES, U: float = 2.0) -> list[dict]:
    """One row per lattice: setup (first call), hilbert, ipt and ed times in seconds."""
    rows = []
    for name in lattices:
        lat = get_lattice(name)
        t0 = time.perf_counter()
        delta = lat.seed_delta_iw(beta, n_iw)  # first Hilbert transform: builds cached rules
        setup = time.perf_counter() - t0
        model = AndersonModel(U=U, eps_d=-U / 2, beta=beta, delta_iw=delta)
        g = solve("ipt", model, n_iw=n_iw).g_iw
        t_hilbert = _median_time(lambda: lat.self_consistency(g, delta), repeat)
        t_ipt = _median_time(lambda: solve("ipt", model, n_iw=n_iw), repeat)
        step = ed_refit_step(n_iw=n_iw, n_bath=n_bath)
        t_ed = _median_time(lambda: step(model, {}), max(1, repeat // 2))
        rows.append({"lattice": name, "setup": setup, "hilbert": t_hilbert, "ipt": t_ipt,
                     "ed": t_ed})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beta", type=float, default=100.0)
    ap.add_argument("--n-iw", type=int, default=1024)
    ap.add_argument("--n-bath", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rows = run(a.beta, a.n_iw, a.n_bath, a.repeat)
    print(f"beta = {a.beta:g}, n_iw = {a.n_iw}, ED with Nb = {a.n_bath}; medians of {a.repeat}")
    print(f"{'lattice':<11} {'setup s':>8} {'hilbert ms':>11} {'IPT ms':>8} {'ED ms':>8} "
          f"{'hilbert/IPT':>12} {'hilbert/ED':>11}")
    for r in rows:
        print(f"{r['lattice']:<11} {r['setup']:>8.3f} {1e3 * r['hilbert']:>11.2f} "
              f"{1e3 * r['ipt']:>8.2f} {1e3 * r['ed']:>8.1f} {r['hilbert'] / r['ipt']:>12.2f} "
              f"{r['hilbert'] / r['ed']:>11.3f}")


if __name__ == "__main__":
    main()
