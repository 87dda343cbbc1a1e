"""Per-solve wall times of the cheap impurity solvers.

Models: U = 2, beta = 50, half filling (eps_d = -U/2 = -1) and off it (eps_d = -0.6), with two
Bethe-like baths of the same total weight sum_k V_k^2 = 1/4:

* ``bethe``: the continuous semicircle hybridisation Delta = G_Bethe/4 (D = 1) on n_iw = 1024
  Matsubara frequencies (``bethe_delta_iw(bethe_g_iw(matsubara_freqs(beta, 1024)))``);
* ``8-site``: the discrete bath eps = +-0.1, +-0.4, +-0.9, +-1.5, V = sqrt(0.25/8).

Solvers with their default options: ``ipt``, ``hubbard_i``, ``nca`` and ``ed_fit`` with
``n_bath=3``. ``ed_fit`` always fits here (the continuous Delta, and the 8-site bath has more
sites than 3), so its time includes the bath fit. Each solve is timed with ``time.perf_counter``
around ``solve(name, model)`` after one untimed warm-up solve (imports, cached Legendre
matrices); the table gives the median and the minimum over the repeats, the aim (below) and
the ratio median/aim (<= 1: the aim is met). Aims per solve: IPT <= 10 ms, Hubbard-I <= 1 ms,
NCA <= 200 ms, ed_fit(3) <= 50 ms including the fit.

BLAS runs single-threaded (as in database generation, where each worker process has one core).

Run: ``python benchmarks/solvers.py [--repeats N] [--nca-repeats N]``.
"""

from __future__ import annotations

import os
import sys

# This script shares its name with the ``solvers`` package. Run as ``python benchmarks/solvers.py``
# (or any script in benchmarks/), Python puts benchmarks/ first on sys.path and ``import solvers``
# would find this file: drop that entry so the package is imported.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if __name__ == "solvers":
    # Imported *as the package* by a sibling script that was started before the line above could
    # run (e.g. ``python benchmarks/ed.py``): hand the real package over to the importer.
    import importlib

    del sys.modules["solvers"]
    sys.modules["solvers"] = importlib.import_module("solvers")

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from solvers import AndersonModel, bethe_delta_iw, bethe_g_iw, matsubara_freqs, solve  # noqa: E402

BETA = 50.0
U = 2.0
N_IW = 1024
BATH_EPS = [-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5]
BATH_V = [float(np.sqrt(0.25 / 8))] * 8
FILLINGS = {"half": -U / 2, "eps_d=-0.6": -0.6}

#: (label, registry name, options, aim in seconds)
SOLVERS = [
    ("ipt", "ipt", {}, 10e-3),
    ("hubbard_i", "hubbard_i", {}, 1e-3),
    ("nca", "nca", {}, 200e-3),
    ("ed_fit(3)", "ed_fit", {"n_bath": 3}, 50e-3),
]


def make_model(bath: str, eps_d: float, beta: float = BETA, u: float = U,
               n_iw: int = N_IW) -> AndersonModel:
    """The benchmark model with bath ``"bethe"`` (continuous) or ``"8-site"`` (discrete)."""
    if bath == "bethe":
        delta = bethe_delta_iw(bethe_g_iw(matsubara_freqs(beta, n_iw)))
        return AndersonModel(U=u, eps_d=eps_d, beta=beta, delta_iw=delta)
    if bath == "8-site":
        return AndersonModel(U=u, eps_d=eps_d, beta=beta, bath_eps=BATH_EPS, bath_v=BATH_V)
    raise ValueError(f"unknown bath {bath!r}; use 'bethe' or '8-site'")


@dataclass
class Timing:
    solver: str
    bath: str
    filling: str
    median_s: float
    min_s: float
    aim_s: float
    repeats: int
    converged: bool
    density: float
    z: float
    iterations: int | None
    note: str

    @property
    def ratio(self) -> float:
        return self.median_s / self.aim_s


def time_solver(label: str, name: str, options: dict, aim: float, bath: str, filling: str,
                repeats: int) -> Timing:
    """Median and minimum wall time of ``repeats`` solves after one warm-up solve."""
    model = make_model(bath, FILLINGS[filling])
    res = solve(name, model, **options)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = solve(name, model, **options)
        times.append(time.perf_counter() - t0)
    note = ""
    if name == "ed_fit":
        note = (f"fit made, residual {res.info['fit_residual']:.1e}" if res.info["fitted"]
                else "no fit (own bath)")
    return Timing(label, bath, filling, statistics.median(times), min(times), aim, repeats,
                  bool(res.converged), float(res.density), float(res.z), res.iterations, note)


def format_table(rows: list[Timing]) -> str:
    head = (f"{'solver':<10} {'bath':<7} {'filling':<11} {'median ms':>9} {'min ms':>8} "
            f"{'aim ms':>7} {'median/aim':>10} {'reps':>4} {'conv':>4} {'iter':>4} {'density':>8} "
            f"{'Z':>7}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.solver:<10} {r.bath:<7} {r.filling:<11} {1e3 * r.median_s:>9.2f} "
                     f"{1e3 * r.min_s:>8.2f} {1e3 * r.aim_s:>7g} {r.ratio:>10.2f} {r.repeats:>4} "
                     f"{'yes' if r.converged else 'NO':>4} "
                     f"{'-' if r.iterations is None else r.iterations:>4} {r.density:>8.4f} "
                     f"{r.z:>7.4f}  {r.note}")
    return "\n".join(lines)


def format_summary(rows: list[Timing]) -> str:
    head = f"{'solver':<10} {'worst median ms':>15} {'aim ms':>7} {'worst median/aim':>16}"
    lines = [head + "  verdict"]
    for label, _, _, aim in SOLVERS:
        mine = [r for r in rows if r.solver == label]
        if not mine:
            continue
        worst = max(r.median_s for r in mine)
        verdict = "aim met" if worst <= aim else "aim MISSED"
        lines.append(f"{label:<10} {1e3 * worst:>15.2f} {1e3 * aim:>7g} {worst / aim:>16.2f}  "
                     f"{verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Timing]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed solves per case (30)")
    parser.add_argument("--nca-repeats", type=int, default=None,
                        help="timed NCA solves per case (default: --repeats)")
    parser.add_argument("--solvers", nargs="*", default=None,
                        help="subset of labels: ipt hubbard_i nca ed_fit(3)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.nca_repeats is not None and args.nca_repeats < 1):
        parser.error("repeats must be >= 1")
    print(f"beta = {BETA:g}, U = {U:g}, n_iw = {N_IW}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs; python {platform.python_version()}, "
          f"numpy {np.__version__}")
    rows = []
    for label, name, options, aim in SOLVERS:
        if args.solvers and label not in args.solvers:
            continue
        reps = args.nca_repeats if (name == "nca" and args.nca_repeats) else args.repeats
        for bath in ("bethe", "8-site"):
            for filling in FILLINGS:
                rows.append(time_solver(label, name, options, aim, bath, filling, reps))
    print(format_table(rows))
    print()
    print(format_summary(rows))
    return rows


if __name__ == "__main__":
    main()
