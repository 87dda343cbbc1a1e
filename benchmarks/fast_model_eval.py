"""Quick held-out DMFT check of a fast-network candidate against the committed 8-site ED-DMFT curves.

    python benchmarks/fast_model_eval.py [--checkpoint PATH] [--label NAME] [--out FILE.json]

A subset of the ML-DMFT benchmark's points (``benchmarks/ml_dmft.py``; reference curves
``benchmarks/results/ml_dmft/ed8_beta<B>_n<n>.csv``, 8 bath sites refitted every iteration,
``tol = 1e-5``), chosen where the shipped fast network's error is largest: the weakly and
strongly correlated metal, and both branch ends of the coexistence region at half filling.
Every setting runs as continuation chains (up from the metallic seed, down from the insulating
seed at half filling; one up chain at fixed density ``n``), all chains of all settings side by
side in one batched run (:func:`mldmft.dmft.engine.run_chains`): one network call per
iteration for every active problem. Loop options as the benchmark's (``tol = 1e-5``,
``max_iter = 100``, ``n_iw = 1024``); the model runs unguarded with ``extrapolate=True`` (the
first iterations of a fixed-density search pass densities outside the domain).

Figures per setting: max |dZ| on the points both converged (and where), max |dn|, the points on
another phase than the reference (metallic: ``-beta G(beta/2) > 0.5``), and the branch ends
on this grid (Uc2: last metallic U of the up chain, Uc1: last insulating U of the down chain)
beside the reference's on the same grid. The fast model's accuracy targets (docs/dmft.md, the
ML-DMFT benchmark): max |dZ| <= 0.005 at beta 30 and 75, <= 0.01 at beta 150.

Held out: the recipe's training data (the phase-diagram database and active-learning rounds on
other temperatures and fillings, ``configs/active_fast.yaml``) never holds these (beta, n).
Takes ~1-2 min on one core (load-dependent; the load average is printed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mldmft.dmft.transition import is_metallic  # noqa: E402

REFERENCE_DIR = REPO / "benchmarks" / "results" / "ml_dmft"
AIM = {30.0: 0.005, 75.0: 0.005, 150.0: 0.01}

#: (beta, density) -> {branch: U values in chain order}; density 1.0: half filling.
SETTINGS: dict[tuple[float, float], dict[str, list[float]]] = {
    (30.0, 1.0): {"up": [1.5, 2.0, 2.2, 2.28, 2.3, 2.32, 2.34],
                  "down": [2.6, 2.4, 2.36, 2.34, 2.32, 2.3]},
    (75.0, 1.0): {"up": [1.0, 1.4, 1.8, 2.2, 2.36, 2.42, 2.44, 2.46, 2.48],
                  "down": [3.0, 2.6, 2.44, 2.4, 2.38, 2.36, 2.34]},
    (75.0, 0.9): {"up": [1.0, 1.2, 1.4, 1.6, 2.0, 2.4, 2.8, 3.2]},
    (150.0, 1.0): {"up": [1.0, 1.5, 1.8, 1.9, 2.2, 2.5, 2.56, 2.6, 2.62],
                   "down": [3.0, 2.6, 2.44, 2.42, 2.4, 2.38, 2.36, 2.32]},
    (150.0, 0.9): {"up": [1.0, 1.4, 1.8, 2.2, 2.4, 2.8]},
}

#: ``--extra``: half filling at the temperatures of the shipped demo references
#: (``mldmft/pretrained/ed_dmft_beta{50,100}.csv``, 8-site ED-DMFT, ``tol = 1e-5``), a second
#: check outside the benchmark's grid (beta 100 lies on the active-learning grid of
#: ``configs/active_fast.yaml``; its ED-DMFT points are not training data).
EXTRA_SETTINGS: dict[tuple[float, float], dict[str, list[float]]] = {
    (50.0, 1.0): {"up": [1.5, 2.0, 2.3, 2.5, 2.6, 2.7], "down": [3.0, 2.6, 2.5, 2.4, 2.3]},
    (100.0, 1.0): {"up": [1.5, 1.8, 2.1, 2.32, 2.42, 2.48, 2.54, 2.58],
                   "down": [3.0, 2.58, 2.48, 2.42, 2.38, 2.34, 2.32]},
}
AIM.update({50.0: 0.005, 100.0: 0.01})
PRETRAINED_DIR = REPO / "mldmft" / "pretrained"


def reference_points(beta: float, density: float) -> dict[tuple[str, float], object]:
    """``{(branch, U): point}`` of the committed 8-site curve; a U in a fine window (stage
    ``fine_up``/``fine_down``) takes the fine sweep's point (the benchmark's grid there).
    Without a benchmark curve: the demo reference ``mldmft/pretrained/ed_dmft_beta<B>.csv``."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from ml_dmft import read_reference_csv

    out: dict[tuple[str, float], object] = {}
    path = REFERENCE_DIR / f"ed8_beta{beta:g}_n{density:g}.csv"
    if not path.is_file() and density == 1.0:
        from types import SimpleNamespace

        with open(PRETRAINED_DIR / f"ed_dmft_beta{beta:g}.csv", newline="") as f:
            for row in csv.DictReader(f):
                p = SimpleNamespace(U=float(row["U"]), branch=row["branch"],
                                    converged=row["converged"] == "True", Z=float(row["Z"]),
                                    density=float(row["density"]),
                                    g_beta_half=float(row["g_beta_half"]))
                out[(p.branch, round(p.U, 6))] = p
        return out
    for stage, p in read_reference_csv(REFERENCE_DIR / f"ed8_beta{beta:g}_n{density:g}.csv"):
        key = (p.branch, round(p.U, 6))
        if key not in out or stage.startswith("fine"):
            out[key] = p
    return out


def _ends(points: list, branch: str) -> float | None:
    """Uc2 (last metallic U of the up chain) or Uc1 (last insulating U of the down chain)."""
    pts = [p for p in points if p is not None]
    if branch == "up":
        met = [p.U for p in pts if is_metallic(p)]
        return max(met) if met else None
    ins = [p.U for p in pts if not is_metallic(p)]
    return min(ins) if ins else None


def evaluate(checkpoint: str | None, max_iter: int = 100, solver: str = "ml",
             settings: dict | None = None) -> dict:
    """Run every chain of :data:`SETTINGS` with the candidate (``solver="ml"``; another solver
    name, e.g. ``"ipt"``, runs that solver instead) and compare with the reference;
    ``settings`` (default :data:`SETTINGS`) in its format."""
    from mldmft.dmft import DMFTOptions

    settings_in = SETTINGS if settings is None else settings
    from mldmft.dmft.engine import DMFTProblem, run_chains

    keys, chains = [], []
    for (beta, n), branches in settings_in.items():
        for branch, us in branches.items():
            chain = [DMFTProblem(beta=beta, U=u, density=None if n == 1.0 else n, branch=branch,
                                 start=("previous" if i else
                                        "metal" if branch == "up" else "insulator"))
                     for i, u in enumerate(us)]
            keys.append((beta, n, branch))
            chains.append(chain)
    if solver == "ml":
        opts = {"network": "fast"} if checkpoint is None else {"checkpoint": checkpoint}
        opts["extrapolate"] = True
    else:
        opts = {}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_chains(solver, chains, DMFTOptions(tol=1e-5, max_iter=max_iter),
                         solver_options=opts)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    settings = {}
    for (beta, n), branches in settings_in.items():
        ref = reference_points(beta, n)
        rows, dz, dz_same, dn, other_phase = [], [], [], [], []
        ends = {}
        for branch in branches:
            pts = res[keys.index((beta, n, branch))]
            refs = [ref.get((branch, round(p.U, 6))) for p in pts]
            for p, r in zip(pts, refs):
                rows.append({"branch": branch, "U": p.U, "converged": bool(p.converged),
                             "Z": p.Z, "Z_ref": None if r is None else r.Z,
                             "density": p.density, "iterations": p.iterations,
                             "metallic": bool(is_metallic(p)),
                             "metallic_ref": None if r is None else bool(is_metallic(r))})
                if r is None or not (p.converged and r.converged):
                    continue
                dz.append((abs(p.Z - r.Z), branch, p.U))
                dn.append(abs(p.density - r.density))
                if is_metallic(p) != is_metallic(r):
                    other_phase.append([branch, p.U])
                else:
                    dz_same.append(abs(p.Z - r.Z))
            if n == 1.0:
                name = "Uc2" if branch == "up" else "Uc1"
                ends[name] = [_ends(pts, branch), _ends([r for r in refs], branch)]
        worst = max(dz) if dz else (None, None, None)
        settings[f"beta={beta:g},n={n:g}"] = {
            "beta": beta, "density": n, "max_abs_dZ": worst[0], "worst_at": list(worst[1:]),
            "max_abs_dZ_same_phase": max(dz_same) if dz_same else None,
            "aim": AIM[beta], "max_abs_dn": max(dn) if dn else None,
            "not_converged": sum(not r["converged"] for r in rows),
            "other_phase": other_phase, "branch_ends_model_ref": ends, "points": rows}
    return {"checkpoint": (checkpoint or "shipped fast") if solver == "ml" else solver, "wall_time_s": wall,
            "points": sum(len(c) for c in chains), "load_average": [load0, load1],
            "settings": settings}


def summary(report: dict, label: str = "") -> str:
    lines = [f"{label or report['checkpoint']}: {report['points']} points in "
             f"{report['wall_time_s']:.1f} s (load {report['load_average'][0]:.1f}-"
             f"{report['load_average'][1]:.1f})"]
    for name, s in report["settings"].items():
        dz = s["max_abs_dZ"]
        ends = "  ".join(f"{k} {v[0]} (ref {v[1]})" for k, v in s["branch_ends_model_ref"].items())
        lines.append(f"  {name:16s} max|dZ| {dz:.4f} at {s['worst_at'][0]} U={s['worst_at'][1]}"
                     f" (aim {s['aim']:g}; same phase {s['max_abs_dZ_same_phase']:.4f})  "
                     f"max|dn| {s['max_abs_dn']:.1e}  "
                     f"unconv {s['not_converged']}  other phase {len(s['other_phase'])}  {ends}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None,
                    help="the candidate model.pt (default: the shipped 'fast' network)")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path, default=None, help="write the full report (JSON)")
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--extra", action="store_true",
                    help="also half filling at beta 50 and 100 against the demo references")
    ap.add_argument("--solver", default="ml",
                    help="ml (the candidate, default) or another solver name, e.g. ipt")
    args = ap.parse_args(argv)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        ap.error(f"--checkpoint {args.checkpoint}: no such file")
    report = evaluate(args.checkpoint, args.max_iter, args.solver,
                      {**SETTINGS, **EXTRA_SETTINGS} if args.extra else None)
    report["label"] = args.label
    print(summary(report, args.label), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
