"""The resumable round loop of active learning (:func:`run_active`).

Run directory (default ``data/active/<name>/``)::

    config.json             the plan (settings compared on resume, :meth:`ActiveConfig.plan`)
    run.lock                held while a run works here (:func:`mldmft.h5util.run_lock`)
    start_model.pt          copy of the starting checkpoint (model 0)
    reference/point_<j>.h5  the exact solver's held-out DMFT points (sweep files, computed once)
    round_<k>/stages.json   completed stages of round k and their numbers (atomic rewrite)
    round_<k>/sweeps/cell_<i>.h5   the grid sweeps of model k (:mod:`.evaluate`)
    round_<k>/selection.yaml       the chosen baths (a ``bath_list`` recipe file)
    round_<k>/new.h5        the new samples (``mldmft generate``, resumable by itself)
    round_<k>/db.h5         the merged database (training set of model k + 1)
    round_<k>/train/        the retraining (``model.pt`` = model k + 1, ``metrics.json``, ...)
    rounds.h5, rounds.csv, rounds.png   per-round records (:mod:`.records`)

A round's stages run in order -- ``sweeps``, ``selection``, ``generation``, ``merge``,
``train`` -- and each records its completion in ``stages.json`` only when its outputs are on disk
(every file is written under a temporary name and renamed), so a rerun resumes at the first
unfinished stage and a killed run leaves no unreadable file. After the sweeps the run stops when
the guard rate is below ``stop_guard_rate`` (in round 0: without any ED or training), when the
sample budget is spent, or when ``max_rounds`` retrainings are done; and after the selection when
no flagged hybridisation is farther than ``min_distance`` from the database. The stop is decided
anew on every run (so a rerun with a larger ``max_rounds`` continues a finished run). The run
ends with the model of smallest held-out error (``final: best_heldout``, :func:`final_model`)
or the last one (``final: last``).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..h5util import remove_tmp_litter, replace_atomic, run_lock, write_text_atomic
from ..plan import check_plan_file
from .config import ActiveConfig, DatabaseLayout, check_config
from .evaluate import heldout_errors, load_cell, reference_point, run_cell, save_cell
from .records import write_records

__all__ = ["run_active", "ActiveSummary", "STAGES", "final_model"]

#: The stages of a round, in order.
STAGES = ("sweeps", "selection", "generation", "merge", "train")


@dataclass(frozen=True)
class ActiveSummary:
    """What a run did: the per-round rows, why it stopped, the final model."""

    run_dir: Path
    rounds: list[dict[str, Any]]
    stop_reason: str
    final_checkpoint: Path
    installed: Path | None = None

    def lines(self) -> list[str]:
        out = [f"{'round':>5} {'guard rate':>10} {'flagged':>8} {'iterations':>10} "
               f"{'max|dZ|':>9} {'max|dn|':>9} {'selected':>8} {'added':>6} {'db':>7}"]
        for r in self.rounds:
            out.append(f"{r['round']:>5} {100 * r['guard_rate']:>9.2f}% {r['flagged']:>8} "
                       f"{r['iterations']:>10} {r['heldout_max_abs_dz']:>9.4f} "
                       f"{r['heldout_max_abs_dn']:>9.4f} {r['selected']:>8} "
                       f"{r['samples_added']:>6} {r['db_samples']:>7}")
        out.append(f"stopped    {self.stop_reason}")
        out.append(f"final      {self.final_checkpoint}")
        out.append(f"records    {self.run_dir / 'rounds.h5'}, rounds.csv, rounds.png")
        if self.installed is not None:
            out.append(f"installed  {self.installed} (a shipped network)")
        return out


def run_active(cfg: ActiveConfig, log: Callable[[str], None] = print) -> ActiveSummary:
    """Run (or resume) active learning; see the module docstring.

    Raises:
        ValueError: a bad configuration (before any work), a run directory holding another
            run (naming what differs), or another live run in the same directory.
    """
    layout = check_config(cfg)
    run_dir = Path(cfg.run_dir)
    with run_lock(run_dir / "run", command=f"mldmft active run_dir={run_dir}"):
        for p in sorted(run_dir.rglob("*")):  # litter of killed writers (we hold the lock)
            if re.search(r"\.tmp\d+$", p.name):
                remove_tmp_litter(p.with_name(re.sub(r"\.tmp\d+$", "", p.name)))
        _check_plan(run_dir, cfg)
        return _run(cfg, run_dir, layout, log)


def _check_plan(run_dir: Path, cfg: ActiveConfig) -> None:
    check_plan_file(run_dir / "config.json", cfg.plan(), run_dir,
                    holds="holds another active-learning run",
                    remedy="choose another run_dir (name) or delete it")


def _stages(rdir: Path) -> dict[str, Any]:
    path = rdir / "stages.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _done(rdir: Path, stages: dict[str, Any], name: str, record: dict[str, Any]) -> None:
    stages[name] = record
    write_text_atomic(rdir / "stages.json", json.dumps(stages, indent=1, sort_keys=True) + "\n")


def _run(cfg: ActiveConfig, run_dir: Path, layout: DatabaseLayout,
         log: Callable[[str], None]) -> ActiveSummary:
    from ..ml.shipped import shipped_checkpoint

    start = run_dir / "start_model.pt"
    if not start.exists():
        replace_atomic(cfg.checkpoint or shipped_checkpoint(cfg.network), start)
    references = [reference_point(cfg, p, run_dir / "reference" / f"point_{j:02d}.h5",
                                  progress=cfg.progress)
                  for j, p in enumerate(cfg.reference.points)]
    model, db = start, Path(cfg.database)
    rows: list[dict[str, Any]] = []
    added_total, k, stop = 0, 0, ""
    while True:
        rdir = run_dir / f"round_{k:03d}"
        stages = _stages(rdir)
        if "sweeps" not in stages:
            log(f"round {k}    sweeps of {model.relative_to(run_dir)} on the grid")
            _done(rdir, stages, "sweeps", _stage_sweeps(cfg, rdir, model, references, log))
        row = _row(k, model.relative_to(run_dir), stages, db)
        rate = stages["sweeps"]["guard_rate"]
        log(f"round {k}    guard rate {100 * rate:.2f}% ({stages['sweeps']['flagged']} of "
            f"{stages['sweeps']['iterations']} iterations flagged)")
        stop = _stop_reason(cfg, k, rate, added_total)
        if not stop:
            if "selection" not in stages:
                budget = min(cfg.selection.budget_per_round, cfg.selection.budget - added_total)
                _done(rdir, stages, "selection",
                      _stage_selection(cfg, rdir, db, layout, budget, log))
            row.update(candidates=stages["selection"]["candidates"],
                       selected=stages["selection"]["selected"])
            if stages["selection"]["selected"] == 0:
                stop = (f"no flagged hybridisation of round {k} is farther than min_distance = "
                        f"{cfg.selection.min_distance:g} from the database: nothing new to add")
        if stop:
            rows.append(row)
            break
        if "generation" not in stages:
            _done(rdir, stages, "generation",
                  _stage_generation(cfg, k, rdir, layout, stages["selection"]["selected"], log))
        if "merge" not in stages:
            _done(rdir, stages, "merge", _stage_merge(rdir, db, log))
        if "train" not in stages:
            _done(rdir, stages, "train", _stage_train(cfg, rdir, model, log))
        row.update(samples_added=stages["merge"]["samples_added"],
                   db_samples=stages["merge"]["db_samples"],
                   val_mse_g_tau=stages["train"]["val_mse_g_tau"],
                   test_mse_g_tau=stages["train"]["test_mse_g_tau"])
        rows.append(row)
        added_total += stages["merge"]["samples_added"]
        model, db = rdir / "train" / "model.pt", rdir / "db.h5"
        write_records(run_dir, rows, _heldout_meta(cfg), cfg.plan(), "",
                      str(model.relative_to(run_dir)))
        k += 1
    final = final_model(cfg.final, run_dir, rows, model, log)
    write_records(run_dir, rows, _heldout_meta(cfg), cfg.plan(), stop,
                  str(final.relative_to(run_dir)))
    installed = _install(final, start, cfg.network, log) if cfg.install else None
    return ActiveSummary(run_dir=run_dir, rounds=rows, stop_reason=stop, final_checkpoint=final,
                         installed=installed)


def final_model(rule: str, run_dir: Path, rows: list[dict[str, Any]], last: Path,
                log: Callable[[str], None] = print) -> Path:
    """The model a run ends with: ``last`` for ``rule = "last"`` or without finite held-out
    errors; for ``"best_heldout"`` the model of the round (``rows[k]["checkpoint"]``, model
    ``k``) with the smallest held-out max |dZ|, the latest on a tie. Retraining can undo a
    round's gain (held-out max |dZ| can fall and then rise again from one round to the next;
    benchmarks/results/active/README.md), so the last model is not always the best one."""
    dz = [float(r.get("heldout_max_abs_dz", float("nan"))) for r in rows]
    ok = [k for k, v in enumerate(dz) if np.isfinite(v)]
    if rule == "last" or not ok:
        return last
    best = min(ok, key=lambda k: (dz[k], -k))
    chosen = run_dir / rows[best]["checkpoint"]
    if chosen != last:
        last_dz = next((dz[k] for k in ok if run_dir / rows[k]["checkpoint"] == last), None)
        log(f"final      model of round {best} ({rows[best]['checkpoint']}): held-out max |dZ| "
            f"{dz[best]:.4f}, the smallest of rounds {ok[0]}-{ok[-1]}"
            + ("" if last_dz is None else f" (the last model's: {last_dz:.4f})"))
    return chosen


def _heldout_meta(cfg: ActiveConfig) -> dict[str, Any]:
    return {"points": [{"beta": p.beta, "U": p.U, "density": p.density, "branch": p.branch}
                       for p in cfg.reference.points]}


def _stop_reason(cfg: ActiveConfig, k: int, rate: float, added_total: int) -> str:
    if rate < cfg.stop_guard_rate:
        why = (f"guard rate {100 * rate:.2f}% is below stop_guard_rate "
               f"{100 * cfg.stop_guard_rate:.2f}%")
        return why + (": the starting model stays, no ED or training was run" if k == 0 else "")
    if added_total >= cfg.selection.budget:
        return f"the sample budget is spent ({added_total} >= {cfg.selection.budget})"
    if k >= cfg.max_rounds:
        return f"max_rounds = {cfg.max_rounds} retraining round(s) done"
    return ""


def _n_samples(db: Path) -> int:
    from ..database.store import load_database

    return int(np.unique(load_database(db, ["group_id"])["group_id"]).size)


def _row(k: int, checkpoint: Path, stages: dict[str, Any], db: Path) -> dict[str, Any]:
    """The round's record from its stages (the later columns filled as stages finish)."""
    s = stages["sweeps"]
    dz, dn = s["heldout"]["abs_dz"], s["heldout"]["abs_dn"]
    row = {"round": k, "checkpoint": str(checkpoint), "iterations": s["iterations"],
           "flagged": s["flagged"], "guard_rate": s["guard_rate"],
           **{f"flagged_{r}": n for r, n in s["by_reason"].items()},
           "outside_domain": s["outside_domain"], "points": s["points"],
           "converged_points": s["converged_points"],
           "heldout_max_abs_dz": max(dz) if dz else float("nan"),
           "heldout_max_abs_dn": max(dn) if dn else float("nan"),
           "heldout_abs_dz": dz, "heldout_abs_dn": dn,
           "candidates": 0, "selected": 0, "samples_added": 0, "db_samples": _n_samples(db),
           "val_mse_g_tau": float("nan"), "test_mse_g_tau": float("nan")}
    return row


def _stage_sweeps(cfg: ActiveConfig, rdir: Path, model: Path, references: list,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """Every grid cell's network-DMFT sweep (finished cells are read back) and the held-out
    error of ``model``."""
    cells = [(b, n) for b in cfg.grid.beta for n in cfg.grid.density]
    totals = {"iterations": 0, "flagged": 0, "outside_domain": 0, "points": 0,
              "converged_points": 0}
    by_reason: dict[str, int] = {}
    for i, (beta, density) in enumerate(cells):
        path = rdir / "sweeps" / f"cell_{i:03d}.h5"
        if path.exists():
            rec = load_cell(path)
        else:
            rec = run_cell(cfg, model, beta, density, progress=cfg.progress)
            save_cell(path, rec)
        log(f"cell {i + 1}/{len(cells)}  beta={beta:g} n={density:g}: {len(rec.points)} points "
            f"({sum(p['converged'] for p in rec.points)} converged), {rec.iterations} "
            f"iterations, {rec.flagged} flagged")
        for key in ("iterations", "flagged", "outside_domain"):
            totals[key] += getattr(rec, key)
        totals["points"] += len(rec.points)
        totals["converged_points"] += sum(bool(p["converged"]) for p in rec.points)
        for r, n in rec.by_reason.items():
            by_reason[r] = by_reason.get(r, 0) + n
    held = (heldout_errors(cfg, model, references, log) if references
            else {"abs_dz": [], "abs_dn": [], "z": [], "n": [], "converged": []})
    return {**totals, "by_reason": by_reason, "heldout": held,
            "guard_rate": totals["flagged"] / max(totals["iterations"], 1)}


def _stage_selection(cfg: ActiveConfig, rdir: Path, db: Path, layout: DatabaseLayout,
                     budget: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Farthest-point sampling of the round's flagged iterates; writes ``selection.yaml``."""
    from ..database.dmft_sampling import write_bath_list
    from ..database.store import load_database
    from .select import select_baths

    n_cells = len(cfg.grid.beta) * len(cfg.grid.density)
    cells = [load_cell(rdir / "sweeps" / f"cell_{i:03d}.h5") for i in range(n_cells)]
    rows = load_database(db, ["delta_l", "params/beta", "params/U", "params/eps_d"])
    bar = _bar(cfg.progress, budget, "fit")
    try:
        result = select_baths(cells, rows, layout.n_l, budget, cfg.selection.n_delta_l,
                              cfg.selection.n_bath, cfg.selection.min_distance,
                              progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    write_bath_list(rdir / "selection.yaml", result.entries)
    s = result.summary()
    log(f"selection  {s['selected']} of {s['candidates']} flagged iterates chosen (budget "
        f"{budget}; {s['near_duplicates_of_database']} near-duplicates of the database, "
        f"{s['skipped_legendre_order']} beyond the database's Legendre order)")
    return s


def _bar(progress: bool, total: int, unit: str):
    if not progress:
        return None
    import sys

    from tqdm import tqdm

    return tqdm(total=total, unit=unit, dynamic_ncols=True, file=sys.stderr)


def _stage_generation(cfg: ActiveConfig, k: int, rdir: Path, layout: DatabaseLayout,
                      n: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Solve the chosen baths with the database generator, in the database's layout."""
    from ..database import GenerateConfig, SolverSpec, generate

    g = cfg.generation
    gcfg = GenerateConfig(
        out=str(rdir / "new.h5"), n_samples=int(n), seed=g.seed + k,
        sampling={"kind": "bath_list", "path": str(rdir / "selection.yaml")},
        target=SolverSpec(layout.target["solver"], dict(layout.target.get("options") or {})),
        cheap=tuple(SolverSpec(c["solver"], dict(c.get("options") or {})) for c in layout.cheap),
        n_l=layout.n_l, n_sigma=layout.n_sigma, augment=layout.augment,
        chunk_size=g.chunk_size, backend=g.backend, workers=g.workers,
        dask_address=g.dask_address, dask_workers=g.dask_workers, progress=cfg.progress)
    bars: list = []

    def start(done: int, total: int) -> None:
        log(f"generation {total} samples -> {gcfg.out} (target {gcfg.target.name}, backend "
            f"{g.backend}{f', {done} already on disk' if done else ''})")
        bar = _bar(cfg.progress, total, "sample")
        if bar is not None:
            bar.update(done)
            bars.append(bar)

    try:
        summary = generate(gcfg, progress=lambda m: [b.update(m) for b in bars], on_start=start)
    finally:
        for bar in bars:
            bar.close()
    return {"rows": summary.n_rows, "failed": summary.failed,
            "not_converged": summary.not_converged}


def _stage_merge(rdir: Path, db: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The previous database plus the new samples, without duplicates (:mod:`merge`)."""
    from ..database.merge import merge_databases
    from ..database.store import load_database

    out = merge_databases([db, rdir / "new.h5"], rdir / "db.h5",
                          log=lambda s: log(f"merge      {s}"))
    prev_max = int(np.max(load_database(db, ["group_id"])["group_id"]))
    gid = load_database(out, ["group_id"])["group_id"]
    return {"samples_added": int(np.unique(gid[gid > prev_max]).size),
            "db_samples": int(np.unique(gid).size)}


def _stage_train(cfg: ActiveConfig, rdir: Path, model: Path,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Retrain on the merged database (warm start from ``model`` unless switched off)."""
    from ..ml.training import run_training

    out = rdir / "train"
    if out.exists():  # an interrupted training starts over
        shutil.rmtree(out)
    tcfg = replace(cfg.train, data=replace(cfg.train.data, path=str(rdir / "db.h5")),
                   init_checkpoint=str(model) if cfg.warm_start else None)
    res = run_training(tcfg, out, log=log)
    return {"val_mse_g_tau": float(res.metrics["val"]["model"]["mse_g_tau"]),
            "test_mse_g_tau": float(res.metrics["test"]["model"]["mse_g_tau"])}


def _install(final: Path, start: Path, network: str,
             log: Callable[[str], None]) -> Path | None:
    """Copy the final model (and its ``metrics.json``) over the shipped network ``network``."""
    from ..ml.shipped import shipped_network

    if final == start:
        log("install    nothing to install: the starting model is the final one")
        return None
    target = shipped_network(network).path
    replace_atomic(final, target)
    metrics = final.with_name("metrics.json")
    if metrics.exists():
        replace_atomic(metrics, target.with_name(target.stem + "_metrics.json"))
    return target
