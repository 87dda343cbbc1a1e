"""Generate an AIM database: draw, solve, augment, store — resumable, local pool or Dask.

Work is cut into chunks of ``chunk_size`` samples. Each chunk is computed independently (by a
process of a local pool, or a Dask worker) from the sample indices alone, so the data do not
depend on the backend, the number of workers or interruptions; the main process writes each
finished chunk atomically (:mod:`mldmft.database.store`). Rerunning the same command skips the
chunks already on disk.
"""

from __future__ import annotations

import json
import os
import sys
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from solvers import available_solvers, check_options, check_type

from .. import __version__
from ..h5schema import STATUS_FAILED, STATUS_NOT_CONVERGED
from .records import RecordLayout, SolverSpec, check_layout_for_target, solve_sample
from .sampling import make_recipe
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
        (:func:`solvers.check_options`, a millisecond probe solve each), including whether
        the solvers return ``n_l`` Legendre coefficients and ``n_sigma`` frequencies."""
        for f in fields(self):
            check_type(f.name, getattr(self, f.name), _FIELD_TYPES[f.name])
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
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
        if self.backend not in ("local", "dask"):
            raise ValueError(f"backend must be 'local' or 'dask', got {self.backend!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        recipe = make_recipe(self.sampling)
        check_layout_for_target(self.target, recipe.max_bath)
        for key, spec in [("target.options", self.target)] + [
                (f"solver_options.{c.name}", c) for c in self.cheap]:
            self._check_solver(key, spec)

    def _check_solver(self, key: str, spec: SolverSpec) -> None:
        """``spec``'s options, with ``n_l`` set as :func:`records.solve_sample` sets it."""
        try:
            probe = check_options(spec.name, dict({"n_l": self.n_l}, **spec.options))
        except ValueError as err:
            raise ValueError(f"{key}: {err}") from None
        if probe is None:
            return
        if probe.g_l.size < self.n_l:
            raise ValueError(f"{key}: solver {spec.name!r} returns {probe.g_l.size} Legendre "
                             f"coefficients, n_l = {self.n_l} are stored")
        if probe.g_iw.size < self.n_sigma:
            raise ValueError(f"n_sigma = {self.n_sigma} exceeds the {probe.g_iw.size} Matsubara "
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


_FIELD_TYPES = typing.get_type_hints(GenerateConfig)


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

    def lines(self) -> list[str]:
        out = [f"database   {self.out}",
               f"samples    {self.n_samples}  (rows {self.n_rows})",
               f"chunks     {self.chunks_computed} computed, {self.chunks_reused} resumed"]
        for name in self.failed:
            out.append(f"{name:<10} failed {self.failed[name]}, not converged "
                       f"{self.not_converged[name]}")
        return out


def _compute_chunk(cfg_dict: dict[str, Any], indices: list[int]) -> dict[str, np.ndarray]:
    """Worker entry point: solve samples ``indices`` (pure function of config and indices)."""
    cfg = _config_from_dict(cfg_dict)
    recipe = make_recipe(cfg.sampling)
    layout = cfg.layout()
    records = [solve_sample(recipe.draw(cfg.seed, i), layout) for i in indices]
    return {k: np.concatenate([r[k] for r in records]) for k in records[0]}


def _config_from_dict(d: dict[str, Any]) -> GenerateConfig:
    d = dict(d)
    d["target"] = SolverSpec(d["target"]["solver"], dict(d["target"].get("options") or {}))
    d["cheap"] = tuple(SolverSpec(c["solver"], dict(c.get("options") or {})) for c in d["cheap"])
    return GenerateConfig(**d)


def _init_worker() -> None:
    """Pool worker set-up: one BLAS thread; on Linux, die with the parent process so a killed
    run leaves no orphan workers behind."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _run_local(cfg_dict, todo, workers, on_done) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if workers == 1:
        for k, idx in todo:
            on_done(k, _compute_chunk(cfg_dict, idx))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker) as pool:
        futures = {pool.submit(_compute_chunk, cfg_dict, idx): k for k, idx in todo}
        for fut in as_completed(futures):
            on_done(futures[fut], fut.result())


def _run_dask(cfg_dict, todo, address, n_workers, on_done) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        futures = {client.submit(_compute_chunk, cfg_dict, idx, pure=False): k
                   for k, idx in todo}
        for fut in as_completed(list(futures)):
            on_done(futures[fut], fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _chunks(n_samples: int, size: int) -> Iterator[tuple[int, list[int]]]:
    for k, start in enumerate(range(0, n_samples, size)):
        yield k, list(range(start, min(start + size, n_samples)))


def generate(cfg: GenerateConfig, progress: Callable[[int], None] | None = None
             ) -> GenerateSummary:
    """Run (or resume) a generation; returns a :class:`GenerateSummary`.

    Raises:
        ValueError: invalid configuration, or an existing output/partial run made with a
            different configuration (named in the message) — before any work starts.
    """
    cfg.validate()
    out = Path(cfg.out)
    parts = out.with_name(out.name + ".parts")
    cfg_dict = cfg.to_dict()
    digest = config_digest(cfg_dict)
    layout = cfg.layout()
    names = [s.name for s in layout.solvers]
    if out.exists():
        from ..h5util import read_h5

        with read_h5(out, "; move it away") as f:
            old = f.attrs.get("config_digest", "")
            old_n = int(f.attrs.get("n_samples", -1))
        if old != digest:
            raise ValueError(f"{out} exists and was made with a different config; choose another "
                             "out path or delete it")
        if old_n != cfg.n_samples:
            raise ValueError(f"{out} exists with n_samples={old_n}; choose another out path to "
                             f"make {cfg.n_samples} samples")
        return _summarise(out, cfg, 0, 0)
    parts.mkdir(parents=True, exist_ok=True)
    cfg_file = parts / "config.json"
    if cfg_file.exists():
        if cfg_file.read_text() != digest:
            raise ValueError(f"{parts} holds a partial run made with a different config; choose "
                             "another out path or delete it")
    else:
        cfg_file.write_text(digest)
    all_chunks = list(_chunks(cfg.n_samples, cfg.chunk_size))
    todo, reused = [], 0
    for k, idx in all_chunks:
        path = chunk_path(parts, k)
        old_chunk = read_chunk(path) if path.exists() else None
        if old_chunk is not None and np.array_equal(np.unique(old_chunk["sample_index"]), idx):
            reused += 1
            if progress:
                progress(len(idx))
        else:
            todo.append((k, idx))

    def on_done(k: int, arrays: dict[str, np.ndarray]) -> None:
        write_chunk(parts, k, arrays)
        if progress:
            progress(len(all_chunks[k][1]))

    if todo:
        if cfg.backend == "dask":
            _run_dask(cfg_dict, todo, cfg.dask_address, cfg.dask_workers, on_done)
        else:
            workers = cfg.workers or os.cpu_count() or 1
            _run_local(cfg_dict, todo, min(workers, len(todo)), on_done)
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
    return _summarise(out, cfg, len(todo), reused)


def _summarise(out: Path, cfg: GenerateConfig, computed: int, reused: int) -> GenerateSummary:
    from .store import load_database

    names = [cfg.target.name] + [c.name for c in cfg.cheap]
    data = load_database(out, [f"solvers/{n}/status" for n in names] + ["sample_index"])
    failed = {n: int(np.sum(data[f"solvers/{n}/status"] == STATUS_FAILED)) for n in names}
    nconv = {n: int(np.sum(data[f"solvers/{n}/status"] == STATUS_NOT_CONVERGED)) for n in names}
    return GenerateSummary(out=out, n_samples=cfg.n_samples, n_rows=len(data["sample_index"]),
                           chunks_computed=computed, chunks_reused=reused, failed=failed,
                           not_converged=nconv)
