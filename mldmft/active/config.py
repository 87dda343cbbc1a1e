"""Typed configuration of an active-learning run (the plain objects the CLI builds from Hydra).

``configs/active.yaml`` has one section per dataclass below; :func:`active_config_from_dict`
refuses unknown or ill-typed keys with a one-line ``ValueError`` naming the dotted key, and
:func:`check_config` checks everything that can be checked before any work (the database and its
stored layout, the starting checkpoint, the grid against its domain, the warm start, the
reference solver's options).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from solvers import check_type

from ..dmft.loop import DMFTOptions
from ..dmft.steps import GUARD_REASONS
from ..configtools import EXECUTION_KEYS, build_dataclass, check_execution
from ..ml.shipped import shipped_checkpoint, shipped_network
from ..plan import make_plan

__all__ = ["GridConfig", "FlagConfig", "SelectionConfig", "GenerationConfig", "HeldOutPoint",
           "ReferenceConfig", "ActiveConfig", "active_config_from_dict", "check_config",
           "DatabaseLayout", "RESUMABLE_KEYS"]


@dataclass(frozen=True)
class GridConfig:
    """The network-DMFT sweeps of every round: for each ``beta`` and ``density`` one sweep in
    ``U`` along ``direction`` (``both``: up from the metal, then down from the insulator).
    ``density = 1`` is half filling (``mu = U/2``); other densities fix ``n`` and find ``mu``."""

    beta: tuple[float, ...]
    U: tuple[float, ...]
    density: tuple[float, ...] = (1.0,)
    direction: str = "both"

    def __post_init__(self) -> None:
        for key in ("beta", "U", "density"):  # 50 and 50.0 are one plan
            object.__setattr__(self, key, tuple(float(v) for v in getattr(self, key)))
            vals = getattr(self, key)
            if not vals or not all(math.isfinite(v) for v in vals):
                raise ValueError(f"grid.{key} must be a non-empty list of finite numbers, got "
                                 f"{list(vals)}")
        if min(self.beta) <= 0 or min(self.U) < 0:
            raise ValueError(f"grid: need beta > 0 and U >= 0, got beta {list(self.beta)}, "
                             f"U {list(self.U)}")
        if not all(0 < n < 2 for n in self.density):
            raise ValueError(f"grid.density must lie in (0, 2), got {list(self.density)}")
        if self.direction not in ("up", "down", "both"):
            raise ValueError(f"grid.direction must be up, down or both, got {self.direction!r}")


@dataclass(frozen=True)
class FlagConfig:
    """Which network results count as flagged (:func:`mldmft.dmft.steps.guard_reasons`).

    Attributes:
        spread_threshold: ``max_l |std G_l|`` above this is flagged (1/D).
        reasons: the reasons that count, a subset of ``spread``, ``unphysical``, ``acausal``,
            ``unlike_training``.
    """

    spread_threshold: float = 1e-2
    reasons: tuple[str, ...] = GUARD_REASONS

    def __post_init__(self) -> None:
        if not (self.spread_threshold > 0 and math.isfinite(self.spread_threshold)):
            raise ValueError(f"flag.spread_threshold must be > 0, got {self.spread_threshold}")
        bad = [r for r in self.reasons if r not in GUARD_REASONS]
        if bad or not self.reasons:
            raise ValueError(f"flag.reasons: choose from {list(GUARD_REASONS)} (at least one), "
                             f"got {list(self.reasons)}")


@dataclass(frozen=True)
class SelectionConfig:
    """Which flagged hybridisations become new samples (:mod:`mldmft.active.select`).

    Attributes:
        budget_per_round: at most this many new samples per round.
        budget: at most this many new samples over the whole run.
        min_distance: candidates closer than this to a database row or to an already chosen
            candidate (in the standardised feature space of :mod:`.select`) are near-duplicates
            and never chosen.
        n_delta_l: Legendre coefficients of ``Delta`` in the features.
        n_bath: poles of the fitted discrete bath (the ED target's bath sites, <= 8).
    """

    budget_per_round: int = 200
    budget: int = 1000
    min_distance: float = 0.05
    n_delta_l: int = 16
    n_bath: int = 8

    def __post_init__(self) -> None:
        if self.budget_per_round < 1 or self.budget < 1:
            raise ValueError(f"selection.budget_per_round and selection.budget must be >= 1, got "
                             f"{self.budget_per_round}, {self.budget}")
        if not (self.min_distance >= 0 and math.isfinite(self.min_distance)):
            raise ValueError(f"selection.min_distance must be >= 0, got {self.min_distance}")
        if self.n_delta_l < 1:
            raise ValueError(f"selection.n_delta_l must be >= 1, got {self.n_delta_l}")
        if not 1 <= self.n_bath <= 8:
            raise ValueError(f"selection.n_bath must lie in 1..8 (ED), got {self.n_bath}")


@dataclass(frozen=True)
class GenerationConfig:
    """How the new samples are solved (:func:`mldmft.database.generate`): ``seed`` (plus the
    round number), chunks, and the backend (``local`` pool or ``dask``)."""

    seed: int = 4242
    chunk_size: int = 4
    backend: str = "local"
    workers: int | None = None
    dask_address: str | None = None
    dask_workers: int = 2

    def __post_init__(self) -> None:
        check_execution(self.chunk_size, self.backend, self.workers, self.dask_workers,
                        prefix="generation.")


@dataclass(frozen=True)
class HeldOutPoint:
    """One held-out DMFT point: a single-``U`` sweep from the metal (``up``) or the insulator
    (``down``) at ``beta`` and ``density`` (1: half filling)."""

    beta: float
    U: float
    density: float = 1.0
    branch: str = "up"

    def __post_init__(self) -> None:
        if not (self.beta > 0 and self.U >= 0 and 0 < self.density < 2):
            raise ValueError(f"reference.points: need beta > 0, U >= 0 and density in (0, 2), "
                             f"got {self}")
        if self.branch not in ("up", "down"):
            raise ValueError(f"reference.points: branch must be up or down, got {self.branch!r}")

    def label(self) -> str:
        return f"beta={self.beta:g} U={self.U:g} n={self.density:g} {self.branch}"


@dataclass(frozen=True)
class ReferenceConfig:
    """The exact DMFT solver of the held-out points (default ED-DMFT with 8 refitted bath
    sites) and the points; computed once per run directory and cached."""

    solver: str = "ed"
    options: dict = field(default_factory=lambda: {"n_bath": 8})
    points: tuple[HeldOutPoint, ...] = ()


@dataclass(frozen=True)
class ActiveConfig:
    """A whole active-learning run (see :mod:`mldmft.active`).

    Attributes:
        run_dir: everything is written here (default ``data/active/<name>``).
        database: the training database of the starting model.
        train: the training run of every round (``data.path`` is replaced by the round's
            merged database, ``init_checkpoint`` by the previous model when ``warm_start``).
        network: the shipped network (:mod:`mldmft.ml.shipped`) the run improves: the starting
            model when ``checkpoint`` is ``None``, and the file ``install`` replaces.
        checkpoint: the starting model; ``None``: the shipped network ``network``.
        warm_start: start each retraining from the previous round's weights.
        grid, loop: the network-DMFT sweeps (loop: :class:`~mldmft.dmft.loop.DMFTOptions`).
        flag, selection, generation, reference: see their classes.
        stop_guard_rate: stop when a round's guard rate is below this.
        max_rounds: at most this many retrainings (a rerun may raise it and continue).
        final: which model the run ends with (and installs): ``"best_heldout"``, the model
            (of any round, the starting one included) with the smallest held-out max |dZ|
            (the latest on a tie; the last one when there are no held-out points), or
            ``"last"``, the last round's.
        install: copy the final model over the shipped network ``network`` at the end.
        progress: progress bars.
    """

    run_dir: str
    database: str
    train: Any
    network: str = "phase_diagram"
    checkpoint: str | None = None
    warm_start: bool = True
    grid: GridConfig = field(default_factory=lambda: GridConfig(beta=(50.0,), U=(2.0,)))
    loop: DMFTOptions = field(default_factory=DMFTOptions)
    flag: FlagConfig = field(default_factory=FlagConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    stop_guard_rate: float = 0.01
    max_rounds: int = 5
    final: str = "best_heldout"
    install: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.final not in FINAL_CHOICES:
            raise ValueError(f"final must be one of {', '.join(FINAL_CHOICES)}, got "
                             f"{self.final!r}")
        if not 0 <= self.stop_guard_rate <= 1:
            raise ValueError(f"stop_guard_rate must lie in [0, 1], got {self.stop_guard_rate}")
        if self.max_rounds < 0:
            raise ValueError(f"max_rounds must be >= 0, got {self.max_rounds}")
        shipped_network(self.network)             # an unknown name: one-line ValueError

    def plan(self) -> dict[str, Any]:
        """Everything that decides the results, flattened to dotted keys (compared on resume,
        :mod:`mldmft.plan`); :data:`RESUMABLE_KEYS` may change between runs of one directory."""
        d = asdict(self)
        d["train"] = asdict(self.train)
        d["train"]["data"].pop("path")           # set per round
        d["train"].pop("init_checkpoint")        # set per round
        return make_plan(d, RESUMABLE_KEYS, flat=True)


#: How the final model is chosen (:attr:`ActiveConfig.final`).
FINAL_CHOICES = ("best_heldout", "last")

#: Keys a rerun of a run directory may change: how far to go, which model to end with, how to
#: run, where to install.
RESUMABLE_KEYS = ("max_rounds", "final", "install", "progress", "run_dir",
                  *(f"generation.{k}" for k in EXECUTION_KEYS if k != "progress"),
                  "train.trainer.progress_bar")


_TUPLES = {"beta", "U", "density", "reasons"}


def _build(cls, prefix: str, values: Any):
    return build_dataclass(cls, prefix, values, _TUPLES)


def active_config_from_dict(c: Mapping[str, Any], train: Any) -> ActiveConfig:
    """:class:`ActiveConfig` from the resolved plain mapping of ``configs/active.yaml`` (its
    ``train`` section already composed into the typed ``train``, a
    :class:`~mldmft.ml.config.TrainConfig`, and ``grid.U`` resolved to a list by the CLI)."""
    c = dict(c)
    run_dir = c.get("run_dir") or str(Path("data") / "active" / str(c.get("name", "active")))
    grid = dict(c.get("grid") or {})
    ref = dict(c.get("reference") or {})
    points = ref.pop("points", None) or []
    if not isinstance(points, list):
        raise ValueError(f"reference.points must be a list of {{beta, U, density, branch}}, got "
                         f"{points!r}")
    ref_cfg = _build(ReferenceConfig, "reference",
                     {**ref, "options": dict(ref.get("options") or {})})
    ref_cfg = replace(ref_cfg, points=tuple(_build(HeldOutPoint, f"reference.points[{i}]", p)
                                            for i, p in enumerate(points)))
    gen = dict(c.get("generation") or {})
    dask = gen.pop("dask", None) or {}
    if not isinstance(dask, Mapping):
        raise ValueError(f"generation.dask must be a mapping, got {dask!r}")
    gen.update({"dask_address": dask.get("address"), "dask_workers": dask.get("n_workers", 2)})
    loop = _build(DMFTOptions, "loop", c.get("loop"))
    if loop.symmetrise is not None:
        raise ValueError("loop.symmetrise: the sweeps symmetrise at half filling only "
                         "(density 1.0, mu = U/2); remove the key")
    return ActiveConfig(
        run_dir=str(run_dir),
        database=check_type("database", c.get("database"), str),
        train=train,
        network=check_type("network", c.get("network", "phase_diagram"), str),
        checkpoint=check_type("checkpoint", c.get("checkpoint"), str | None),
        warm_start=check_type("warm_start", c.get("warm_start", True), bool),
        grid=_build(GridConfig, "grid", grid), loop=loop,
        flag=_build(FlagConfig, "flag", c.get("flag")),
        selection=_build(SelectionConfig, "selection", c.get("selection")),
        generation=_build(GenerationConfig, "generation", gen),
        reference=ref_cfg,
        stop_guard_rate=float(check_type("stop_guard_rate", c.get("stop_guard_rate", 0.01),
                                         float)),
        max_rounds=check_type("max_rounds", c.get("max_rounds", 5), int),
        final=check_type("final", c.get("final", "best_heldout"), str),
        install=check_type("install", c.get("install", False), bool),
        progress=check_type("progress", c.get("progress", True), bool))


@dataclass(frozen=True)
class DatabaseLayout:
    """What the new samples must share with the training database so that they merge: the
    target and cheap solvers with their options, ``n_l``, ``n_sigma``, augmentation (read from
    the database's stored generation config)."""

    target: dict
    cheap: tuple[dict, ...]
    n_l: int
    n_sigma: int
    augment: bool
    n_samples: int


def read_layout(path: str | Path) -> DatabaseLayout:
    """The :class:`DatabaseLayout` of a database written by ``mldmft generate`` or ``merge``."""
    from ..ml.data import database_info

    info = database_info(path)
    config = info.config
    if config is None:
        raise ValueError(f"database {path} stores no generation config; active learning "
                         "needs one written by mldmft generate (or merge)")
    return DatabaseLayout(target=dict(config["target"]), cheap=tuple(config["cheap"]),
                          n_l=int(config["n_l"]), n_sigma=int(config["n_sigma"]),
                          augment=bool(config.get("augment", True)), n_samples=info.n_samples)


def check_config(cfg: ActiveConfig) -> DatabaseLayout:
    """Every check that needs no DMFT, ED or training, before any work (one-line
    ``ValueError``): the database and its layout, the starting model and the grid against its
    domain, the warm start (architecture and encoding), the reference solver, the training
    data settings. Returns the database layout."""
    from ..dmft.steps import make_step
    from ..ml.checkpoint import load_checkpoint_cached
    from ..ml.data import database_info, make_spec
    from ..ml.training import load_init_checkpoint, spec_difference

    if not Path(cfg.database).is_file():
        raise ValueError(f"database: no such file: {cfg.database} (the training database of "
                         "the starting model)")
    layout = read_layout(cfg.database)
    if cfg.selection.n_delta_l > layout.n_l:
        raise ValueError(f"selection.n_delta_l = {cfg.selection.n_delta_l} exceeds the "
                         f"database's n_l = {layout.n_l}")
    start = cfg.checkpoint or str(shipped_checkpoint(cfg.network))
    predictor = load_checkpoint_cached(start)
    bad = []
    for beta in cfg.grid.beta:
        for U in cfg.grid.U:
            for n in cfg.grid.density:
                bad += predictor.out_of_range(beta, U, density=n)
    if bad:
        raise ValueError(f"grid: outside the domain of {start}: {'; '.join(sorted(set(bad)))}")
    if cfg.train.data.max_samples is not None:
        raise ValueError("train: data.max_samples would leave out the added samples (they are "
                         "appended to the database); set it to null")
    if cfg.warm_start:
        from ..ml.config import KRRConfig

        if isinstance(cfg.train.model, KRRConfig):
            raise ValueError("warm_start: a KRR model is always fitted from scratch; set "
                             "warm_start=false")
        init = load_init_checkpoint(replace(cfg.train, init_checkpoint=start))
        spec = make_spec(replace(cfg.train.data, path=cfg.database),
                         database_info(cfg.database))
        diff = spec_difference(init.spec, spec)
        if diff:
            raise ValueError(f"warm_start: the training config's encoding of {cfg.database} "
                             f"differs from that of {start} in {', '.join(diff)}")
    if cfg.reference.points:
        from .. import load_solver_module

        load_solver_module(cfg.reference.solver)
        try:
            make_step(cfg.reference.solver, cfg.loop.n_iw, dict(cfg.reference.options))
        except ValueError as err:
            raise ValueError(f"reference: {err}") from None
    return layout
