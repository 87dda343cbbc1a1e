"""Held-out report of a phase-diagram network: errors by beta and filling bin, and timings.

    python benchmarks/phase_diagram.py [--checkpoint PATH] [--database DB] [--out report.json]

Default checkpoint: the shipped phase-diagram network (``network="phase_diagram"``).

The test rows are the checkpoint's own held-out split (same database, split fractions and seed
as its training run, read from the checkpoint). For every bin of beta (20-40, 40-80, 80-200) and
of the filling |n - 1| (< 0.05, 0.05-0.2, > 0.2; n the exact density) it prints, for the network
and for IPT, ed2 and ed3 (and the other cheap solvers of the database): the MSE of G(tau), the
median and 95th percentile of |dZ|, |dn| and |d docc|, and the fraction of acausal rows
(Im Sigma(i w_n) > 0 or G(tau) > 0). Aim: in every bin the network's G(tau) MSE at least 10x
below the best cheap solver of that bin, and no acausal row.

Timings (median over --n-time test models, one thread): every cheap solver, the network solver
(``solve("ml", ...)``, cheap inputs included) and ED with 8 bath sites (the label).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METHODS = ("model", "ipt", "ed2", "ed3")


def _fmt(x: float | None, spec: str = ".2e") -> str:
    return "-" if x is None else format(x, spec)


def _table(binned: dict, methods: tuple[str, ...]) -> list[str]:
    lines = []
    for axis, label in (("by_beta", "beta"), ("by_filling", "|n-1|")):
        lines.append(f"\n{label} bin        method   MSE G(tau)  x best  p50|dZ|  p95|dZ|  "
                     "p50|dn|  p95|dn|  p50|dd|  p95|dd|  acausal")
        for entry in binned[axis]:
            lo, hi = entry["range"]
            rng = f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">{lo:g}"
            cheap = {m: entry[m]["mse_g_tau"] for m in entry
                     if m not in ("range", "n", "model") and isinstance(entry[m], dict)
                     and entry[m].get("mse_g_tau") is not None}
            best = min(cheap, key=cheap.get) if cheap else None
            for m in methods:
                s = entry.get(m)
                if not isinstance(s, dict):
                    continue
                factor = (cheap[best] / s["mse_g_tau"] if best and s.get("mse_g_tau") else None)
                lines.append(
                    f"{rng:<10} n={entry['n']:<5} {m:<8} {_fmt(s['mse_g_tau'])}  "
                    f"{_fmt(factor, '6.1f') if m == 'model' else '      '}  "
                    f"{_fmt(s['p50_z'], '.4f')}   {_fmt(s['p95_z'], '.4f')}   "
                    f"{_fmt(s['p50_density'], '.4f')}   {_fmt(s['p95_density'], '.4f')}   "
                    f"{_fmt(s['p50_docc'], '.4f')}   {_fmt(s['p95_docc'], '.4f')}   "
                    f"{_fmt(s['frac_acausal'], '.3f')}")
            lines.append(f"{'':<18} best cheap: {best}")
    return lines


def _timings(rows, idx: np.ndarray, checkpoint: Path, cheap: tuple[str, ...],
             spec_options: dict) -> dict[str, float]:
    import warnings

    import mldmft.ml  # noqa: F401
    from solvers import solve

    times: dict[str, list[float]] = {s: [] for s in (*cheap, "ml", "ed")}
    for r in idx:
        m = rows.model(int(r))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s in times:
                opts = dict(spec_options.get(s, {}))
                if s == "ml":
                    opts = {"checkpoint": str(checkpoint)}
                t0 = time.perf_counter()
                solve(s, m, **opts)
                times[s].append(time.perf_counter() - t0)
    return {s: statistics.median(v) for s, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="model.pt (default: the shipped phase-diagram network)")
    ap.add_argument("--database", type=Path, default=None,
                    help="database (default: the one the checkpoint was trained on)")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "phase_diagram_report.json")
    ap.add_argument("--n-time", type=int, default=12, help="test models timed per solver")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from dataclasses import replace

    from mldmft.ml import load_checkpoint, prepare_data, train_config_from_dict
    from mldmft.ml.metrics import evaluate
    from mldmft.ml.shipped import shipped_checkpoint

    ckpt = args.checkpoint or shipped_checkpoint("phase_diagram")
    predictor = load_checkpoint(ckpt)
    cfg_data = train_config_from_dict(predictor.meta["config"]).data
    if args.database is not None:
        cfg_data = replace(cfg_data, path=str(args.database))
    data = prepare_data(cfg_data)
    if data.spec.to_dict() != predictor.spec.to_dict():
        raise SystemExit("the database does not give the checkpoint's encoding")
    rows, test = data.rows, data.splits.test
    batch = rows.batch.take(test)
    if predictor.constraints.uses_fit_residual:
        from mldmft.ml.data import base_fit_residuals

        batch = replace(batch, fit_residual=base_fit_residuals(rows, data.spec, test))
    t0 = time.perf_counter()
    pred = predictor.predict(batch)
    t_pred = time.perf_counter() - t0
    spec = predictor.spec
    summary, per_row = evaluate(pred.g_l, batch, spec.target_solver, spec.base, rows.comparison,
                                pred_docc=pred.double_occupancy)
    print(f"checkpoint {ckpt}\ndatabase   {cfg_data.path}  test rows {len(batch)} "
          f"(split seed {cfg_data.split_seed}); network forward + constraints "
          f"{1e3 * t_pred / len(batch):.2f} ms per row (batched)")
    print(f"causality projection moved {int(np.sum(pred.causal_step < 1))} of {len(batch)} rows"
          if pred.causal_step is not None else "no causality projection")
    methods = ("model",) + tuple(m for m in ("ipt", "ed2", "ed3") if m in rows.comparison)
    for line in _table(summary["binned"], methods):
        print(line)
    all_methods = {"model": summary["model"], **summary["cheap"]}
    print("\nall test rows: " + ", ".join(f"{m} {s['mse_g_tau']:.3e}"
                                          for m, s in all_methods.items()))
    rng = np.random.default_rng(0)
    idx = rng.choice(test, size=min(args.n_time, test.size), replace=False)
    load = os.getloadavg()
    times = _timings(rows, idx, Path(ckpt), rows.comparison, data.info.solver_options)
    print(f"\nmedian time per solve over {idx.size} test models (one thread, load average "
          f"{load[0]:.2f}):")
    for s, t in times.items():
        print(f"  {s:<10} {t * 1e3:9.1f} ms")
    report = {"checkpoint": str(ckpt), "database": cfg_data.path, "n_test_rows": len(batch),
              "summary": summary, "timing_ms": {k: 1e3 * v for k, v in times.items()},
              "load_average": load[0],
              "causal_projected_rows": None if pred.causal_step is None
              else int(np.sum(pred.causal_step < 1))}
    from mldmft.h5util import write_json_atomic

    write_json_atomic(args.out, report)
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
