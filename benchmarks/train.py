"""Benchmark of the correction networks: held-out improvement over the cheap solvers.

Trains each model config (default: ``mlp_small``, ``resmlp``, ``ensemble`` and the ``krr``
baseline) on one database through exactly the code path of ``train.py`` (same Hydra configs,
same splits: the test set is the same for every model), and prints for each

* the test-set MSE of ``G(tau)`` (uniform grid of 201 points) and the improvement factor over the
  best single cheap solver of the database (the project's aim: >= 10x on the >= 10,000-sample ED
  Nb = 8 database at beta >= 20) and over the base solver;
* the validation MSE (what selected the model), the errors of Z (mean, median and the fraction
  of rows with an acausal ``Im Sigma(i w_0) > 0``) and of the density;
* the training wall time on this machine (torch threads: ``--threads``, default 1).

Run::

    python benchmarks/train.py data/aim_db.h5 [--max-samples 2000] [--models resmlp krr]
        [--data single|collective|sigma] [--max-epochs 300] [--out data/bench_train]
        [override ...]

Extra arguments are Hydra overrides of ``configs/train.yaml`` applied to every model, e.g.
``data.base=ed2 data.n_l_features=40``. Every run directory (``model.pt``, ``metrics.json``,
plots) is kept under ``--out``; a JSON summary of the table is written there as well.
"""

from __future__ import annotations

import os
import sys

# benchmarks/solvers.py shares its name with the ``solvers`` package: drop benchmarks/ from the
# path so ``import solvers`` finds the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(_HERE).parent


def _train_script():
    spec = importlib.util.spec_from_file_location("mldmft_train_script", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "n/a" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="AIM database (mldmft generate)")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="use only the first N samples (groups) of the database")
    parser.add_argument("--models", nargs="+", default=["mlp_small", "resmlp", "ensemble", "krr"])
    parser.add_argument("--data", default="single", help="data config (single, collective, sigma)")
    parser.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: small networks gain nothing from more)")
    parser.add_argument("--out", default="data/bench_train", help="directory of the runs")
    parser.add_argument("--progress", action="store_true", help="show Lightning's progress bar")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every model")
    args = parser.parse_intermixed_args(argv)

    from mldmft.ml.training import run_training

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    train = _train_script()
    out_root = Path(args.out)
    common = [f"data={args.data}", f"data.path={args.database}",
              f"trainer.progress_bar={str(args.progress).lower()}",
              f"trainer.threads={args.threads}"]
    if args.max_samples is not None:
        common.append(f"data.max_samples={args.max_samples}")
    if args.max_epochs is not None:
        common.append(f"trainer.max_epochs={args.max_epochs}")
    rows = []
    for name in args.models:
        cfg = train.compose(common + [f"model={name}"] + list(args.overrides))
        t0 = time.perf_counter()
        res = run_training(cfg, out_root / name, log=lambda s: print(f"  [{name}] {s}"))
        wall = time.perf_counter() - t0
        test, val = res.metrics["test"], res.metrics["val"]
        rows.append({
            "model": name, "train_time_s": res.metrics["train"]["wall_time_s"],
            "total_time_s": wall, "test_mse_g_tau": test["model"]["mse_g_tau"],
            "val_mse_g_tau": val["model"]["mse_g_tau"], "best_cheap": test["best_cheap"],
            "best_cheap_mse_g_tau": test["cheap"][test["best_cheap"]]["mse_g_tau"]
            if test["best_cheap"] else None,
            "base_mse_g_tau": test["base"]["mse_g_tau"],
            "improvement_over_best_cheap": test["improvement"].get("improvement_over_best_cheap"),
            "improvement_over_base": test["improvement"]["improvement_over_base"],
            "mae_z": test["model"]["mae_z"], "median_abs_z": test["model"]["median_abs_z"],
            "frac_acausal": test["model"]["frac_acausal"],
            "best_cheap_median_abs_z": test["cheap"][test["best_cheap"]]["median_abs_z"]
            if test["best_cheap"] else None,
            "mae_density": test["model"]["mae_density"],
            "n_test": test["n_rows"], "splits": res.metrics["data"]["splits"],
            "epochs": res.metrics["train"].get("epochs"), "checkpoint": str(res.checkpoint)})
    first = rows[0]
    print()
    print(f"database {args.database}: splits {first['splits']}, base "
          f"{res.data.spec.base}, best single cheap solver on test: {first['best_cheap']} "
          f"(MSE G(tau) {_fmt(first['best_cheap_mse_g_tau'], '.3e')}), base MSE "
          f"{_fmt(first['base_mse_g_tau'], '.3e')}, its median |dZ| "
          f"{_fmt(first['best_cheap_median_abs_z'], '.4f')}")
    print(f"{'model':<10} {'test MSE G(tau)':>16} {'x best cheap':>13} {'x base':>8} "
          f"{'val MSE':>10} {'MAE Z':>8} {'med |dZ|':>9} {'acausal':>8} {'MAE n':>8} "
          f"{'epochs':>7} {'train s':>9}")
    for r in rows:
        print(f"{r['model']:<10} {r['test_mse_g_tau']:>16.3e} "
              f"{_fmt(r['improvement_over_best_cheap']):>13} {_fmt(r['improvement_over_base']):>8} "
              f"{r['val_mse_g_tau']:>10.3e} {r['mae_z']:>8.4f} {r['median_abs_z']:>9.4f} "
              f"{r['frac_acausal']:>8.3f} {r['mae_density']:>8.4f} "
              f"{_fmt(r['epochs'], '')!s:>7} {r['train_time_s']:>9.1f}")
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"runs and summary.json in {out_root}")
    return rows


if __name__ == "__main__":
    main()
