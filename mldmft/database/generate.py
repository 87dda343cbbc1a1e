"""Generate an AIM database: draw, solve, augment, store — resumable, local pool or Dask.

Work is cut into chunks of ``chunk_size`` samples. Each chunk is computed independently (by a
process of a local pool, or a Dask worker) from the sample indices alone, so the data do not
depend on the backend, the number of workers or interruptions; the main process writes each
finished chunk atomically (:mod:`mldmft.database.store`). Rerunning the same command skips the
chunks already on disk.

A run holds the lock ``<out>.lock`` (:func:`mldmft.h5util.run_lock`): a second run to the same
output stops at once, naming the holder. Under the lock a run first removes what a killed run of
the same output left behind: temporary ``<out>.tmp<pid>`` and ``chunk_<k>.h5.tmp<pid>`` files, and
a ``<out>.parts`` folder whose assembly had already finished. Progress is counted per finished
sample (workers report each sample as it is solved), not per chunk.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from solvers import available_solvers, check_options
from solvers.legendre import max_beta_for_n_l, required_n_l

from .. import __version__
from ..configtools import check_execution, check_fields
from ..h5util import remove_tmp_litter, run_lock
from ..h5schema import STATUS_FAILED, STATUS_NOT_CONVERGED
from ..plan import check_plan, check_plan_file
from .records import RecordLayout, SolverSpec, check_layout_for_target, solve_sample
from .sampling import make_recipe, repeated_samples
from .store import assemble, chunk_path, config_digest, read_chunk, write_chunk

__all__ = ["GenerateConfig", "generate", "GenerateSummary", "DEFAULT_N_L"]

#: Legendre order: keeps the G(tau) reconstruction error of ED results below 1e-8 up to
#: beta = 100 for the default recipe ranges (checked in tests/test_database.py).
DEFAULT_N_L = 120


@dataclass(frozen=True)
class GenerateConfig:
    """Typed configuration of a generation run (built from Hydra by the CLI).

    Attributes:
        out: output HDF5 path.
        n_samples: drawn samples (rows are doubled by particle-hole augmentation).
        seed: master seed; sample ``i`` uses ``SeedSequence(seed, spawn_key=(i,))``.
        sampling: recipe mapping (see :func:`mldmft.database.sampling.make_recipe`).
        target: the exact solver (default ED with the sample's Nb).
        cheap: the cheap solvers whose results are stored next to the target.
        n_l: Legendre coefficients stored.
        n_sigma: Matsubara frequencies of Sigma stored.
        augment: store each sample's particle-hole twin.
        chunk_size: samples per chunk (unit of work and of crash safety).
        backend: ``"local"`` (process pool) or ``"dask"``.
        workers: processes of the local pool (default: all cores).
        dask_address: scheduler address; ``None`` starts a ``LocalCluster``.
        dask_workers: workers of that ``LocalCluster``.
        progress: show a progress bar.
    """

    out: str
    n_samples: int
    seed: int
    sampling: dict
    target: SolverSpec = SolverSpec("ed")
    cheap: tuple[SolverSpec, ...] = ()
    n_l: int = DEFAULT_N_L
    n_sigma: int = 64
    augment: bool = True
    chunk_size: int = 8
    backend: str = "local"
    workers: int | None = None
    dask_address: str | None = None
    dask_workers: int = 2
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse a configuration that cannot work, naming the field, before any work: types
        (``n_samples=2.7`` is not rounded), ranges, the recipe, and every solver's options
        (:func:`solvers.check_options`: built, without solving a model), including whether
        the solvers return ``n_l`` Legendre coefficients and ``n_sigma`` frequencies
        (:meth:`solvers.SolverOptions.result_sizes`)."""
        check_fields(self)
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        check_execution(self.chunk_size, self.backend, self.workers, self.dask_workers)
        if self.n_l < 2 or self.n_sigma < 1:
            raise ValueError(f"n_l must be >= 2 and n_sigma >= 1, got {self.n_l}, {self.n_sigma}")
        known = available_solvers()
        names = [self.target.name] + [c.name for c in self.cheap]
        for field_name, name in zip(["target.solver"] + ["cheap_solvers"] * len(self.cheap),
                                    names):
            if name not in known:
                raise ValueError(f"{field_name}: unknown solver {name!r}; available: "
                                 f"{', '.join(known)}")
        if len(set(names)) != len(names):
            raise ValueError(f"cheap_solvers: a solver is listed twice: {names}")
        recipe = make_recipe(self.sampling)
        repeats = repeated_samples(recipe, self.seed, self.n_samples)
        if repeats:
            raise ValueError(
                f"n_samples={self.n_samples}: {len(repeats)} sample(s) would repeat an earlier "
                f"model exactly, from sample {repeats[0]} on (a bath list entry whose U, eps_d "
                f"and beta are fixed, by the entry or by fixed specs, is one model, and the list "
                f"is cycled); use n_samples <= {repeats[0]}")
        check_layout_for_target(self.target, recipe.max_bath)
        check_legendre_order(self.n_l, recipe)
        for key, spec in [("target.options", self.target)] + [
                (f"solver_options.{c.name}", c) for c in self.cheap]:
            self._check_solver(key, spec)

    def _check_solver(self, key: str, spec: SolverSpec) -> None:
        """``spec``'s options, with ``n_l`` set as :func:`records.solve_sample` sets it."""
        try:
            sizes = check_options(spec.name, dict({"n_l": self.n_l}, **spec.options)
                                  ).result_sizes()
        except ValueError as err:
            raise ValueError(f"{key}: {err}") from None
        if sizes is None:
            return
        n_iw, n_l = sizes
        if n_l < self.n_l:
            raise ValueError(f"{key}: solver {spec.name!r} returns {n_l} Legendre "
                             f"coefficients, n_l = {self.n_l} are stored")
        if n_iw < self.n_sigma:
            raise ValueError(f"n_sigma = {self.n_sigma} exceeds the {n_iw} Matsubara "
                             f"frequencies solver {spec.name!r} returns (lower n_sigma or raise "
                             f"{key}.n_iw)")

    def layout(self) -> RecordLayout:
        recipe = make_recipe(self.sampling)
        return RecordLayout(n_l=self.n_l, n_sigma=self.n_sigma, n_bath_max=recipe.max_bath,
                            solvers=(self.target,) + tuple(self.cheap), augment=self.augment)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = {"solver": self.target.name, "options": self.target.options}
        d["cheap"] = [{"solver": c.name, "options": c.options} for c in self.cheap]
        return d


#: Allowed error of G(tau) rebuilt from the stored G_l (units 1/D).
LEGENDRE_TOL_DB = 1e-8


def check_legendre_order(n_l: int, recipe: Any, tol: float = LEGENDRE_TOL_DB) -> None:
    """Refuse a recipe whose temperatures and energies need more than ``n_l`` Legendre
    coefficients for a ``G(tau)`` error ``<= tol`` (:func:`solvers.legendre.required_n_l` on the
    windows the recipe bounds itself with, ``recipe.windows()``; the default recipe at
    ``beta = 100`` needs 110 of 120)."""
    for beta, e_max in recipe.windows():
        need = required_n_l(beta, e_max, tol)
        if need > n_l:
            raise ValueError(
                f"n_l={n_l} is too small for sampling.beta up to {beta:g} (spectral window "
                f"|e| <= {e_max:.3g}): G(tau) would be truncated by more than {tol:g}; use "
                f"n_l >= {need} or beta <= {max_beta_for_n_l(n_l, e_max, tol):.4g}")


@dataclass(frozen=True)
class GenerateSummary:
    """What a run did: samples, rows, failures and non-converged results per solver."""

    out: Path
    n_samples: int
    n_rows: int
    chunks_computed: int
    chunks_reused: int
    failed: dict[str, int]
    not_converged: dict[str, int]
    already_complete: bool = False
    cleaned: int = 0

    def lines(self) -> list[str]:
        out = [f"database   {self.out}",
               f"samples    {self.n_samples}  (rows {self.n_rows})"]
        if self.already_complete:
            out.append("status     already complete: nothing computed")
        else:
            out.append(f"chunks     {self.chunks_computed} computed, {self.chunks_reused} resumed")
        if self.cleaned:
            out.append(f"cleaned    {self.cleaned} leftover temporary file(s)/folder(s) of an "
                       "interrupted run")
        for name in self.failed:
            out.append(f"{name:<10} failed {self.failed[name]}, not converged "
                       f"{self.not_converged[name]}")
        return out


#: Queue of a local pool worker on which it reports each finished sample (set by _init_worker).
_WORKER_TICKS: Any = None


def _compute_chunk(cfg_dict: dict[str, Any], indices: list[int], chunk: int | None = None,
                   ticks: Any = None) -> dict[str, np.ndarray]:
    """Worker entry point: solve samples ``indices`` (pure function of config and indices).

    After each sample, ``chunk`` is put on ``ticks`` (default: the pool worker's queue, if any),
    so the main process can count samples as they finish.
    """
    cfg = _config_from_dict(cfg_dict)
    recipe = make_recipe(cfg.sampling)
    layout = cfg.layout()
    ticks = _WORKER_TICKS if ticks is None else ticks
    records = []
    for i in indices:
        records.append(solve_sample(recipe.draw(cfg.seed, i), layout))
        if ticks is not None and chunk is not None:
            ticks.put(chunk)
    return {k: np.concatenate([r[k] for r in records]) for k in records[0]}


def _config_from_dict(d: dict[str, Any]) -> GenerateConfig:
    d = dict(d)
    d["target"] = SolverSpec(d["target"]["solver"], dict(d["target"].get("options") or {}))
    d["cheap"] = tuple(SolverSpec(c["solver"], dict(c.get("options") or {})) for c in d["cheap"])
    return GenerateConfig(**d)


def _init_worker(ticks: Any = None) -> None:
    """Pool worker set-up: one BLAS thread, the progress queue; on Linux, die with the parent
    process so a killed run leaves no orphan workers behind."""
    global _WORKER_TICKS
    _WORKER_TICKS = ticks
    os.environ["OMP_NUM_THREADS"] = "1"
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


class _DirectTicks:
    """In-process stand-in for a progress queue."""

    def __init__(self, on_tick: Callable[[int], None]) -> None:
        self.put = on_tick


def _drain(q: Any, on_tick: Callable[[int], None]) -> None:
    while True:
        try:
            k = q.get_nowait()
        except (queue.Empty, OSError, ValueError):
            return
        on_tick(k)


def _run_local(cfg_dict, todo, workers, on_done, on_tick) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    if workers == 1:
        ticks = _DirectTicks(on_tick)
        for k, idx in todo:
            on_done(k, _compute_chunk(cfg_dict, idx, k, ticks))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ctx = mp.get_context("spawn")
    ticks = ctx.Queue()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_init_worker, initargs=(ticks,)) as pool:
            futures = {pool.submit(_compute_chunk, cfg_dict, idx, k): k for k, idx in todo}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(ticks, on_tick)
                for fut in done:
                    on_done(futures[fut], fut.result())
    finally:
        ticks.close()
        ticks.cancel_join_thread()


def _run_dask(cfg_dict, todo, address, n_workers, on_done, on_tick) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from dask.distributed import Client, LocalCluster, Queue, as_completed

    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        ticks = Queue(client=client)

        def drain() -> None:
            n = ticks.qsize()
            if n:
                for k in ticks.get(batch=n):
                    on_tick(k)

        futures = {client.submit(_compute_chunk, cfg_dict, idx, k, ticks, pure=False): k
                   for k, idx in todo}
        finished = as_completed(list(futures))
        while not finished.is_empty():
            batch = finished.next_batch(block=False)
            drain()
            for fut in batch:
                on_done(futures[fut], fut.result())
            if not batch:
                time.sleep(0.2)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _chunks(n_samples: int, size: int) -> Iterator[tuple[int, list[int]]]:
    for k, start in enumerate(range(0, n_samples, size)):
        yield k, list(range(start, min(start + size, n_samples)))


_CHUNK_TMP = re.compile(r"chunk_\d+\.h5\.tmp\d+")


def _clean_litter(out: Path, parts: Path) -> int:
    """Remove what killed runs of ``out`` left behind (call under the run lock); returns the
    number of files/folders removed."""
    n = len(remove_tmp_litter(out))
    if parts.is_dir():
        if out.exists():  # assembly finished, the removal of the parts was interrupted
            shutil.rmtree(parts, ignore_errors=True)
            return n + 1
        for p in parts.iterdir():
            if _CHUNK_TMP.fullmatch(p.name):
                p.unlink(missing_ok=True)
                n += 1
    return n


def generate(cfg: GenerateConfig, progress: Callable[[int], None] | None = None,
             on_start: Callable[[int, int], None] | None = None) -> GenerateSummary:
    """Run (or resume) a generation; returns a :class:`GenerateSummary`.

    Args:
        cfg: the configuration.
        progress: called with the number of samples just finished (1 per sample as workers
            report them).
        on_start: called once as ``on_start(done, total)`` when work is about to start, with the
            samples already on disk from an interrupted run; not called when the output is
            already complete (then ``summary.already_complete`` is True). Without it, ``done``
            is reported through ``progress``.

    Raises:
        ValueError: invalid configuration, an existing output/partial run made with a
            different configuration (named in the message), or another live run writing the
            same output (:class:`~mldmft.h5util.RunLockedError`) — before any work starts.
    """
    cfg.validate()
    out = Path(cfg.out)
    with run_lock(out, command=f"mldmft generate n_samples={cfg.n_samples} out={out}"):
        return _generate_locked(cfg, out, progress, on_start)


def _generate_locked(cfg: GenerateConfig, out: Path, progress: Callable[[int], None] | None,
                     on_start: Callable[[int, int], None] | None) -> GenerateSummary:
    parts = out.with_name(out.name + ".parts")
    cleaned = _clean_litter(out, parts)
    cfg_dict = cfg.to_dict()
    digest = config_digest(cfg_dict)
    plan = json.loads(digest)
    layout = cfg.layout()
    names = [s.name for s in layout.solvers]
    remedy = "choose another out path or delete it"
    if out.exists():
        from ..h5util import read_h5

        with read_h5(out, "; move it away") as f:
            old = f.attrs.get("config_digest", "")
            old_n = int(f.attrs.get("n_samples", -1))
        try:
            stored = json.loads(old)
        except ValueError:  # e.g. "merged": no generation plan to resume
            raise ValueError(f"{out} exists and was not made by this generation config (its "
                             f"config_digest is {old!r}); {remedy}") from None
        check_plan(stored, plan, out, "exists and was made with a different config", remedy)
        if old_n != cfg.n_samples:
            raise ValueError(f"{out} exists with n_samples={old_n}; choose another out path to "
                             f"make {cfg.n_samples} samples")
        return _summarise(out, cfg, 0, 0, already_complete=True, cleaned=cleaned)
    parts.mkdir(parents=True, exist_ok=True)
    check_plan_file(parts / "config.json", plan, parts,
                    "holds a partial run made with a different config", remedy)
    all_chunks = list(_chunks(cfg.n_samples, cfg.chunk_size))
    todo, reused, done_samples = [], 0, 0
    for k, idx in all_chunks:
        path = chunk_path(parts, k)
        old_chunk = read_chunk(path) if path.exists() else None
        if old_chunk is not None and np.array_equal(np.unique(old_chunk["sample_index"]), idx):
            reused += 1
            done_samples += len(idx)
        else:
            todo.append((k, idx))
    if on_start is not None:
        on_start(done_samples, cfg.n_samples)
    elif progress and done_samples:
        progress(done_samples)

    counted: dict[int, int] = {}

    def on_tick(k: int) -> None:
        if counted.get(k, 0) < len(all_chunks[k][1]):
            counted[k] = counted.get(k, 0) + 1
            if progress:
                progress(1)

    def on_done(k: int, arrays: dict[str, np.ndarray]) -> None:
        write_chunk(parts, k, arrays)
        rest = len(all_chunks[k][1]) - counted.get(k, 0)
        counted[k] = len(all_chunks[k][1])
        if progress and rest:
            progress(rest)

    if todo:
        if cfg.backend == "dask":
            _run_dask(cfg_dict, todo, cfg.dask_address, cfg.dask_workers, on_done, on_tick)
        else:
            workers = cfg.workers or os.cpu_count() or 1
            _run_local(cfg_dict, todo, min(workers, len(todo)), on_done, on_tick)
    attrs = {
        "package_version": __version__,
        "config": json.dumps(cfg_dict, sort_keys=True),
        "config_digest": digest,
        "target": cfg.target.name,
        "cheap_solvers": json.dumps([c.name for c in cfg.cheap]),
        "solver_names": json.dumps(names),
        "solver_options": json.dumps({s.name: s.options for s in layout.solvers}),
        "n_l": cfg.n_l, "n_sigma": cfg.n_sigma, "n_bath_max": layout.n_bath_max,
        "n_samples": cfg.n_samples, "augmented": cfg.augment,
    }
    assemble(out, parts, len(all_chunks), attrs)
    return _summarise(out, cfg, len(todo), reused, cleaned=cleaned)


def _summarise(out: Path, cfg: GenerateConfig, computed: int, reused: int,
               already_complete: bool = False, cleaned: int = 0) -> GenerateSummary:
    from .store import load_database

    names = [cfg.target.name] + [c.name for c in cfg.cheap]
    data = load_database(out, [f"solvers/{n}/status" for n in names] + ["sample_index"])
    failed = {n: int(np.sum(data[f"solvers/{n}/status"] == STATUS_FAILED)) for n in names}
    nconv = {n: int(np.sum(data[f"solvers/{n}/status"] == STATUS_NOT_CONVERGED)) for n in names}
    return GenerateSummary(out=out, n_samples=cfg.n_samples, n_rows=len(data["sample_index"]),
                           chunks_computed=computed, chunks_reused=reused, failed=failed,
                           not_converged=nconv, already_complete=already_complete,
                           cleaned=cleaned)
