"""Cost of the ``ml`` solver per model: batched (``solve_many``) against one model at a time, and
the training cost of a network per epoch and 1000 rows.

    python benchmarks/ml_batch.py [--networks phase_diagram,fast] [--fast-checkpoint FILE]
                                  [--sizes 1,10,100] [--repeats 3] [--shift 0.3] [--out DIR]
    python benchmarks/ml_batch.py --train DB.h5 [--config train_fast] [--rows 4000] [--epochs 3]

**Inference.** DMFT-like models on the Bethe lattice (``D = 1``): ``Delta = G/4`` with the lattice
``G`` of a self-energy interpolating between a metal and an atomic-limit insulator, given as
1024 Matsubara values (as a DMFT loop gives them); ``beta`` 30, 75, 150; ``U`` 1-3.5;
``eps_d = -U/2 + s``, ``|s| <= --shift`` (default 0.3: off half filling, where IPT is the
modified IPT with its level search; 0: half filling); inside the shipped networks' domain. For
each network and batch size ``N``: the wall time per model of ``solve_many("ml", models[:N])``
and of a loop of ``solve("ml", m)`` over the same models (the median of ``--repeats`` runs,
after one warm-up call that loads the checkpoint), with the cheap solvers' share in that run
(``info["cheap_wall_time"]``); the rest is the hybridisation inputs, the forward pass, the
constraints and the outputs. The network ``fast`` is the shipped one if present, else
``--fast-checkpoint`` (e.g. a short training of ``configs/train_fast.yaml``: the same
architecture, so the same cost).

**Training.** ``--train DB.h5``: the rows of the database prepared with ``--config`` (default
``train_fast``), the training and validation rows repeated up to ``--rows`` training rows, then
``--epochs`` epochs of the recipe's network on one torch thread; prints seconds per epoch and per
epoch per 1000 training rows (validation included, in the recipe's 8:1 proportion).

Prints the tables with the date and the load average, and writes ``report.json`` under ``--out``
(default ``benchmarks/results/ml_batch``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def dmft_like_models(n: int, seed: int = 0, shift: float = 0.3):
    """``n`` models with continuous Bethe-lattice hybridisations (module docstring);
    ``eps_d = -U/2 + s``, ``|s| <= shift`` (0: half filling)."""
    from solvers import AndersonModel, bethe_g_iw, matsubara_freqs

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        beta = (30.0, 75.0, 150.0)[k % 3]
        U = float(rng.uniform(1.0, 3.5))
        wn = matsubara_freqs(beta, 1024)
        metal = float(rng.uniform())                       # 1: metal, 0: atomic insulator
        sigma = (1 - metal) * (U * U / 4) / (1j * wn) - 1j * metal * 0.3 * np.tanh(wn)
        delta = 0.25 * bethe_g_iw(wn, 1.0, sigma_iw=sigma)
        s = float(rng.uniform(-shift, shift))
        out.append(AndersonModel(U=U, eps_d=-U / 2 + s, beta=beta, delta_iw=delta))
    return out


def _median_run(fn, repeats: int) -> tuple[float, object]:
    """Wall time and result of the median one of ``repeats`` runs of ``fn``."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - t0, result))
    runs.sort(key=lambda r: r[0])
    return runs[len(runs) // 2]


def bench_inference(options: dict, sizes: list[int], repeats: int,
                    shift: float = 0.3) -> list[dict]:
    """Per-model times of one network (``options``: ``network`` or ``checkpoint``)."""
    import mldmft.ml  # noqa: F401
    from solvers import solve, solve_many

    models = dmft_like_models(max(sizes), shift=shift)
    solve_many("ml", models[:2], **options)               # load the checkpoint, warm caches
    rows = []
    for n in sizes:
        batch = models[:n]
        t_many, res = _median_run(lambda: solve_many("ml", batch, **options), repeats)
        t_loop, res_loop = _median_run(lambda: [solve("ml", m, **options) for m in batch],
                                        repeats)
        cheap_many = float(np.mean([sum(r.info["cheap_wall_time"].values()) for r in res]))
        cheap_loop = float(np.mean([sum(r.info["cheap_wall_time"].values()) for r in res_loop]))
        rows.append({"n_models": n, "batched_ms": 1e3 * t_many / n,
                     "batched_cheap_ms": 1e3 * cheap_many,
                     "one_at_a_time_ms": 1e3 * t_loop / n,
                     "one_at_a_time_cheap_ms": 1e3 * cheap_loop,
                     "acausal_rows": int(sum(r.info["causal_step"] < 1 for r in res)),
                     "max_abs_diff_g_l": float(max(np.max(np.abs(a.g_l - b.g_l))
                                                   for a, b in zip(res, res_loop)))})
    return rows


def bench_training(db: str, config: str, rows: int, epochs: int) -> dict:
    """Seconds per epoch of the recipe's network on ``rows`` (tiled) training rows."""
    import dataclasses
    import importlib.util
    import tempfile

    import torch

    from mldmft.cli import _compose
    from mldmft.ml.data import prepare_data
    from mldmft.ml.training import fit_network

    spec = importlib.util.spec_from_file_location("train_script", REPO / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    overrides = [f"data.path={db}", "trainer.progress_bar=false",
                 f"trainer.max_epochs={epochs}", f"trainer.patience={epochs + 1}"]
    cfg = train.to_train_config(_compose(config, overrides))
    if cfg.model.kind == "krr":      # a KRR recipe (train_fast): time the network ensemble on its inputs
        from mldmft.yamlio import load_yaml

        own = load_yaml((REPO / "configs" / f"{config}.yaml").read_text()).get("model") or {}
        cfg = train.to_train_config(_compose(config, overrides + ["model=ensemble"] + [
            f"~model.{key}" for key in own]))      # the recipe's own KRR settings
    torch.set_num_threads(1)
    data = prepare_data(cfg.data)
    tr, va = data.splits.train, data.splits.val
    reps = max(1, int(np.ceil(rows / tr.size)))
    n_val = max(1, int(round(rows / 8)))
    splits = dataclasses.replace(data.splits, train=np.tile(tr, reps)[:rows],
                                 val=np.tile(va, int(np.ceil(n_val / va.size)))[:n_val])
    tiled = dataclasses.replace(data, splits=splits)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, info = fit_network(cfg, tiled, Path(tmp), log=lambda s: None)
        wall = time.perf_counter() - t0
    per_epoch = wall / max(info["epochs"], 1)
    return {"database": db, "config": config, "train_rows": int(splits.train.size),
            "val_rows": int(splits.val.size), "epochs": int(info["epochs"]),
            "n_parameters": info["n_parameters"], "wall_s": wall, "s_per_epoch": per_epoch,
            "s_per_epoch_per_1000_rows": per_epoch / (splits.train.size / 1000)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", default="phase_diagram,fast")
    ap.add_argument("--fast-checkpoint", default=None,
                    help="checkpoint standing in for 'fast' while fast.pt is not shipped")
    ap.add_argument("--sizes", default="1,10,100")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shift", type=float, default=0.3,
                    help="eps_d = -U/2 + s with |s| <= shift (0: half filling, plain IPT)")
    ap.add_argument("--train", default=None, metavar="DB.h5", help="time training instead")
    ap.add_argument("--config", default="train_fast")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ml_batch"))
    args = ap.parse_args(argv)
    stamp = {"date": datetime.now().isoformat(timespec="minutes"),
             "load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.train:
        rep = bench_training(args.train, args.config, args.rows, args.epochs)
        rep.update(stamp, load_after=os.getloadavg()[0])
        print(f"{stamp['date']}, load {stamp['load_before']:.2f} -> {rep['load_after']:.2f}")
        print(f"{rep['config']}: {rep['train_rows']} training + {rep['val_rows']} validation rows "
              f"(tiled from {rep['database']}), {rep['n_parameters']} parameters: "
              f"{rep['s_per_epoch']:.2f} s per epoch, {rep['s_per_epoch_per_1000_rows']:.2f} s "
              "per epoch per 1000 training rows")
        (out / "training.json").write_text(json.dumps(rep, indent=1))
        return rep
    from mldmft.ml.shipped import shipped_network

    sizes = [int(s) for s in args.sizes.split(",")]
    report = {**stamp, "shift": args.shift, "networks": {}}
    for name in args.networks.split(","):
        net = shipped_network(name)
        if net.is_shipped:
            options = {"network": name}
        elif name == "fast" and args.fast_checkpoint:
            options = {"checkpoint": args.fast_checkpoint}
        else:
            print(f"{name}: not shipped and no stand-in checkpoint given; skipped")
            continue
        report["networks"][name] = {"options": options,
                                    "rows": bench_inference(options, sizes, args.repeats,
                                                            args.shift)}
    report["load_after"] = os.getloadavg()[0]
    print(f"{report['date']}, {report['cpus']} cpus, load average {report['load_before']:.2f} "
          f"before, {report['load_after']:.2f} after; |eps_d + U/2| <= {args.shift:g}; ms per "
          "model (cheap solvers' share)")
    print(f"{'network':<14} {'N':>4} {'batched':>18} {'one at a time':>18} {'ratio':>6} "
          f"{'acausal':>7} {'max|dG_l|':>9}")
    for name, rep in report["networks"].items():
        for r in rep["rows"]:
            print(f"{name:<14} {r['n_models']:>4} "
                  f"{r['batched_ms']:>8.2f} ({r['batched_cheap_ms']:>6.2f}) "
                  f"{r['one_at_a_time_ms']:>8.2f} ({r['one_at_a_time_cheap_ms']:>6.2f}) "
                  f"{r['one_at_a_time_ms'] / r['batched_ms']:>6.1f} {r['acausal_rows']:>7} "
                  f"{r['max_abs_diff_g_l']:>9.1e}")
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
