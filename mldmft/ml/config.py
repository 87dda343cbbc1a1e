"""Typed configuration of a training run (the plain objects ``train.py`` builds from Hydra).

The Hydra tree ``configs/train.yaml`` has one group per part of the code and this module has one
frozen dataclass per group:

============================  =======================  ====================================
config group / key            dataclass                used by
============================  =======================  ====================================
``data``                      :class:`DataConfig`      :mod:`mldmft.ml.data`
``model`` (``kind: mlp ...``) :class:`NetConfig`       :mod:`mldmft.ml.models`
``model`` (``kind: krr``)     :class:`KRRConfig`       :mod:`mldmft.ml.krr`
``trainer``                   :class:`TrainerConfig`   :mod:`mldmft.ml.training`
``constraints``               :class:`ConstraintConfig` :mod:`mldmft.ml.constraints`
``metrics``                   :class:`MetricsConfig`   :mod:`mldmft.ml.metrics`
============================  =======================  ====================================

:func:`train_config_from_dict` turns the resolved plain mapping into a :class:`TrainConfig` and
refuses unknown or ill-typed keys (``trainer.max_epochs=1.5``, ``constraints.sum_rule="no"``) with a
``ValueError`` naming the dotted key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from solvers import check_keys, check_type

from ..configtools import build_dataclass

__all__ = ["DataConfig", "NetConfig", "KRRConfig", "TrainerConfig", "ConstraintConfig",
           "MetricsConfig", "TrainConfig", "train_config_from_dict", "FEATURE_BLOCKS", "TARGETS",
           "TRANSFORMS", "NET_KINDS", "ACTIVATIONS", "KERNELS", "build_dataclass",
           "is_bath_fitting"]

#: Feature blocks (see :mod:`mldmft.ml.features`).
FEATURE_BLOCKS = ("delta_l", "scalars", "g_l", "sigma_iw", "docc")
#: Bases of the Green's-function blocks (see :mod:`mldmft.ml.features`).
BASES = ("legendre", "ir")
#: Target encodings.
TARGETS = ("g_l_correction", "sigma_correction", "sigma_w_correction")
#: Element-wise transforms T0 (identity), T1 (tanh), T2 (-tanh).
TRANSFORMS = ("T0", "T1", "T2")
NET_KINDS = ("mlp", "resmlp", "ensemble")
ACTIVATIONS = ("tanh", "relu", "gelu", "silu")
KERNELS = ("rbf", "laplacian")


@dataclass(frozen=True)
class DataConfig:
    """What is learned from which database (config group ``data``).

    Attributes:
        path: AIM database file (``mldmft generate``).
        base: cheap solver whose result is corrected.
        feature_solvers: cheap solvers whose ``G_l`` (and ``Sigma`` with the ``sigma_iw`` block)
            are features; one solver, or several for the "collective" mode.
        features: feature blocks, a subset of ``delta_l``, ``scalars`` (U, eps_d, beta, D),
            ``g_l`` (of each feature solver), ``sigma_iw`` (of each feature solver).
        target: ``g_l_correction`` (``(G_l[target] - G_l[base]) / beta``), ``sigma_w_correction``
            (the ``sigma_correction`` below divided by ``w_n``) or ``sigma_correction``
            (``Sigma[target] - Sigma[base]`` on the first ``n_sigma`` frequencies).
        target_solver: exact solver of the labels; ``None``: the database's target (ED).
        n_l_features: Legendre coefficients per feature block (``None``: all stored).
        n_l_target: Legendre coefficients corrected (``None``: all stored); higher ones keep the
            base solver's values.
        n_sigma: Matsubara frequencies of the Sigma target / features.
        feature_transform: T0, T1 or T2 applied to the standardised features.
        target_transform: T0, T1 or T2 applied to the standardised targets.
        feature_scale: standardisation of the features: ``per_block`` (one scale per Legendre or
            Sigma block, per scalar) or ``per_component`` (every column to unit variance).
        split: fractions ``(train, val, test)`` of the groups.
        split_seed: seed of the group permutation (independent of the training seed, so seed
            sweeps keep the same test set).
        keep_not_converged: keep rows whose needed solvers report ``status = 1``.
        max_samples: use only the first ``max_samples`` groups of the database.
        basis: ``legendre`` or ``ir`` (the intermediate representation through ``sparse-ir``,
            Shinaoka et al., Phys. Rev. B 96, 035147 (2017)) for the ``delta_l``/``g_l`` blocks
            and the ``g_l_correction`` target.
        ir_lambda: ``Lambda = beta wmax`` of the IR basis (one basis for every temperature).
        ir_eps: singular-value cut-off of the IR basis.
        docc: also learn the double occupancy (one more target column).
    """

    path: str
    base: str
    feature_solvers: tuple[str, ...]
    features: tuple[str, ...] = ("delta_l", "scalars", "g_l")
    target: str = "g_l_correction"
    target_solver: str | None = None
    n_l_features: int | None = None
    n_l_target: int | None = None
    n_sigma: int = 16
    feature_transform: str = "T0"
    target_transform: str = "T0"
    feature_scale: str = "per_block"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    keep_not_converged: bool = False
    max_samples: int | None = None
    basis: str = "legendre"
    ir_lambda: float = 2000.0
    ir_eps: float = 1e-9
    docc: bool = False

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise ValueError(f"data.basis: {self.basis!r} is not one of {list(BASES)}")
        if not (math.isfinite(self.ir_lambda) and self.ir_lambda > 0):
            raise ValueError(f"data.ir_lambda must be > 0, got {self.ir_lambda}")
        if not 0 < self.ir_eps < 1:
            raise ValueError(f"data.ir_eps must lie in (0, 1), got {self.ir_eps}")
        if self.basis == "ir" and self.target != "g_l_correction":
            raise ValueError("data.basis = ir needs data.target = g_l_correction")
        if not self.feature_solvers:
            raise ValueError("data.feature_solvers is empty: name at least one cheap solver")
        if len(set(self.feature_solvers)) != len(self.feature_solvers):
            raise ValueError(f"data.feature_solvers lists a solver twice: {self.feature_solvers}")
        bad = [b for b in self.features if b not in FEATURE_BLOCKS]
        if bad or not self.features:
            raise ValueError(f"data.features: unknown block(s) {bad}; choose from "
                             f"{list(FEATURE_BLOCKS)} (at least one)")
        if self.target not in TARGETS:
            raise ValueError(f"data.target: {self.target!r} is not one of {list(TARGETS)}")
        for key in ("feature_transform", "target_transform"):
            if getattr(self, key) not in TRANSFORMS:
                raise ValueError(f"data.{key}: {getattr(self, key)!r} is not one of "
                                 f"{list(TRANSFORMS)}")
        if self.feature_scale not in ("per_block", "per_component"):
            raise ValueError(f"data.feature_scale: {self.feature_scale!r} is not per_block or "
                             "per_component")
        for key in ("n_l_features", "n_l_target", "max_samples"):
            val = getattr(self, key)
            if val is not None and val < 1:
                raise ValueError(f"data.{key} must be >= 1 (or null), got {val}")
        if self.n_sigma < 1:
            raise ValueError(f"data.n_sigma must be >= 1, got {self.n_sigma}")
        if len(self.split) != 3 or any(not math.isfinite(f) or f <= 0 for f in self.split):
            raise ValueError(f"data.split: need three positive fractions (train, val, test), "
                             f"got {self.split}")
        if abs(sum(self.split) - 1.0) > 1e-9:
            raise ValueError(f"data.split: fractions must add up to 1, got {self.split} "
                             f"(sum {sum(self.split):g})")


@dataclass(frozen=True)
class NetConfig:
    """A neural network (config group ``model``, ``kind`` mlp, resmlp or ensemble).

    Attributes:
        kind: ``mlp`` (fully connected), ``resmlp`` (residual blocks with layer norm) or
            ``ensemble`` (``n_members`` independently initialised ``member`` networks).
        hidden: units per hidden layer.
        depth: hidden layers (mlp) or residual blocks (resmlp).
        activation: tanh, relu, gelu or silu.
        dropout: dropout probability inside the hidden layers.
        lr: Adam learning rate.
        weight_decay: decoupled weight decay (AdamW) when > 0.
        batch_size: training mini-batch size.
        lr_patience: epochs without val improvement before the learning rate is halved
            (``None``: constant learning rate).
        n_members: ensemble size (1 for a single network).
        member: architecture of the ensemble members (mlp or resmlp).
        iw_loss_weight: weight ``w`` of the low-frequency loss term (0: plain MSE; see
            :mod:`mldmft.ml.models`); needs ``data.target = g_l_correction`` with
            ``data.target_transform = T0``.
        iw_loss_frequencies: Matsubara frequencies ``n_w`` of that term.
        iw_loss_beta: weight the term of each row by ``(beta / <beta>_train)^2``, i.e. score the
            error of ``G(i w_n)`` rather than ``G(i w_n) / beta`` (``Z`` of a row reacts to
            ``beta^2`` times the error of ``G(i w_0) / beta``); needs ``beta`` among the features.
    """

    kind: str
    hidden: int = 51
    depth: int = 2
    activation: str = "tanh"
    dropout: float = 0.0
    lr: float = 2e-4
    weight_decay: float = 0.0
    batch_size: int = 8
    lr_patience: int | None = None
    n_members: int = 1
    member: str = "mlp"
    iw_loss_weight: float = 0.0
    iw_loss_frequencies: int = 4
    iw_loss_beta: bool = False

    def __post_init__(self) -> None:
        if self.kind not in NET_KINDS:
            raise ValueError(f"model.kind: {self.kind!r} is not one of {list(NET_KINDS) + ['krr']}")
        if self.hidden < 1 or self.depth < 1:
            raise ValueError(f"model.hidden and model.depth must be >= 1, got {self.hidden}, "
                             f"{self.depth}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"model.activation: {self.activation!r} is not one of "
                             f"{list(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"model.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"model.weight_decay must be >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            raise ValueError(f"model.batch_size must be >= 1, got {self.batch_size}")
        if self.n_members < 1:
            raise ValueError(f"model.n_members must be >= 1, got {self.n_members}")
        if self.kind == "ensemble" and self.member not in ("mlp", "resmlp"):
            raise ValueError(f"model.member: {self.member!r} is not mlp or resmlp")
        if self.kind != "ensemble" and self.n_members != 1:
            raise ValueError(f"model.n_members = {self.n_members} needs model.kind = ensemble")
        if not (self.iw_loss_weight >= 0 and math.isfinite(self.iw_loss_weight)):
            raise ValueError(f"model.iw_loss_weight must be >= 0, got {self.iw_loss_weight}")
        if self.iw_loss_frequencies < 1:
            raise ValueError(f"model.iw_loss_frequencies must be >= 1, got "
                             f"{self.iw_loss_frequencies}")


@dataclass(frozen=True)
class KRRConfig:
    """Kernel ridge regression baseline (config group ``model``, ``kind: krr``).

    Attributes:
        kernel: ``rbf`` ``exp(-gamma |x - x'|_2^2)`` or ``laplacian`` ``exp(-gamma |x - x'|_1)``
            on standardised features.
        alphas: ridge strengths tried (in units of the standardised targets' variance).
        gammas: kernel widths tried, in units of ``1/n_features`` (the natural scale of the
            squared distance of standardised features, ``E|x - x'|^2 = 2 n_features``).
        max_train: at most this many training rows (seeded subset of whole groups): the kernel
            matrix costs ``8 n^2`` bytes and the solve ``n^3/3`` flops.
        n_centres: null for exact kernel ridge regression; ``m`` for its Nystrom approximation
            on ``m`` centres drawn from the training rows (:mod:`mldmft.ml.krr`): ``8 n m``
            bytes, ``n m^2`` flops, and a stored model of ``m`` rows.
        rows_float32: round the training rows to float32 before the fit (the model is exact
            for the rounded rows and stores them in half the bytes).
        fit_twins: fit on the particle-hole twins of the training rows too; false: on the
            drawn rows only. The predictor's particle-hole average (``constraints.particle_hole``,
            required) maps every prediction onto its twin's, so the twin rows repeat what the
            average imposes: half the rows, half the stored model.
    """

    kind: str = "krr"
    kernel: str = "rbf"
    alphas: tuple[float, ...] = (1e-8, 1e-6, 1e-4, 1e-2)
    gammas: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    max_train: int | None = 4000
    n_centres: int | None = None
    rows_float32: bool = False
    fit_twins: bool = True

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"model.kernel: {self.kernel!r} is not one of {list(KERNELS)}")
        if not self.alphas or any(a <= 0 for a in self.alphas):
            raise ValueError(f"model.alphas must be a non-empty list of positive numbers, got "
                             f"{self.alphas}")
        if not self.gammas or any(g <= 0 for g in self.gammas):
            raise ValueError(f"model.gammas must be a non-empty list of positive numbers, got "
                             f"{self.gammas}")
        if self.max_train is not None and self.max_train < 2:
            raise ValueError(f"model.max_train must be >= 2 (or null), got {self.max_train}")
        if self.n_centres is not None and self.n_centres < 1:
            raise ValueError(f"model.n_centres must be >= 1 (or null), got {self.n_centres}")


@dataclass(frozen=True)
class TrainerConfig:
    """Lightning trainer settings (config group ``trainer``).

    Attributes:
        max_epochs: epoch limit.
        patience: early stopping: epochs without a val-loss improvement of ``min_delta``.
        min_delta: smallest val-loss change that counts as an improvement.
        fast_dev_run: one training and one validation batch (a smoke test of the pipeline).
        progress_bar: show Lightning's progress bar.
        log_every_n_steps: logging interval of the training loss.
        deterministic: ask torch for deterministic kernels.
        threads: torch intra-op threads (``None``: leave torch's default).
    """

    max_epochs: int = 300
    patience: int = 30
    min_delta: float = 0.0
    fast_dev_run: bool = False
    progress_bar: bool = True
    log_every_n_steps: int = 10
    deterministic: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ValueError(f"trainer.max_epochs must be >= 1, got {self.max_epochs}")
        if self.patience < 1:
            raise ValueError(f"trainer.patience must be >= 1, got {self.patience}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"trainer.threads must be >= 1 (or null), got {self.threads}")


@dataclass(frozen=True)
class ConstraintConfig:
    """Physics constraints applied to every prediction (``constraints`` in ``train.yaml``).

    Attributes:
        sum_rule: project the predicted ``G_l`` onto ``sum_{l even} 2 sqrt(2l+1) G_l = -beta``.
        particle_hole: average the prediction with the mapped prediction of the particle-hole
            twin (exact equivariance).
        causal: move acausal predictions (``Im Sigma(i w_n) > 0`` or ``G(tau) > 0``) toward the
            base solver's causal result until they are causal
            (:func:`mldmft.ml.constraints.project_causal`).
        exact_base_scale: ``r0 > 0`` scales the correction of a bath-fitting base solver (``edN``)
            by ``r^2 / (r^2 + r0^2)``, ``r`` its bath-fit residual (units of D): where ``N``
            poles reproduce the hybridisation (``r -> 0``) the base is exact and the
            correction vanishes. 0: off.
        trust_ratio: ``C > 0`` bounds the correction by the base's bath-fit residual ``r``: the
            RMS of its ``G(tau)`` change is at most ``C r`` (the error of a Dyson-corrected
            bath-fit solver is first order in the misfit of the hybridisation; on the
            validation split of the shipped model the ratio error/``r`` stays below 2.2). A
            clipped correction means a hybridisation unlike the training data, and the ``ml``
            solver says so. 0: off.
    """

    sum_rule: bool = True
    particle_hole: bool = False
    causal: bool = False
    exact_base_scale: float = 0.0
    trust_ratio: float = 0.0

    @property
    def uses_fit_residual(self) -> bool:
        """Whether predictions need the base solver's bath-fit residual."""
        return self.exact_base_scale > 0 or self.trust_ratio > 0


@dataclass(frozen=True)
class MetricsConfig:
    """Test-set evaluation (``metrics`` in ``train.yaml``).

    Attributes:
        n_tau: points of the uniform ``tau`` grid of the ``G(tau)`` errors (ends included).
        n_bins: bins of the beta and U breakdowns.
        plots: write the PNG plots.
    """

    n_tau: int = 201
    n_bins: int = 3
    plots: bool = True

    def __post_init__(self) -> None:
        if self.n_tau < 2 or self.n_bins < 1:
            raise ValueError(f"metrics.n_tau must be >= 2 and metrics.n_bins >= 1, got "
                             f"{self.n_tau}, {self.n_bins}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run.

    Attributes:
        init_checkpoint: warm start: a ``model.pt`` of a network with the same ``model`` config
            and the same encoding; its weights are the starting point and its fitted feature
            and target standardisation is kept (so epoch 0 predicts exactly as that model).
            ``None``: a fresh, seeded initialisation. KRR is always fitted from scratch.
    """

    data: DataConfig
    model: NetConfig | KRRConfig
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    constraints: ConstraintConfig = field(default_factory=ConstraintConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    seed: int = 0
    domain: dict | None = None
    init_checkpoint: str | None = None

    def __post_init__(self) -> None:
        if self.init_checkpoint is not None and isinstance(self.model, KRRConfig):
            raise ValueError("init_checkpoint: a warm start needs a network; model.kind = krr "
                             "is always fitted from scratch")
        if isinstance(self.model, KRRConfig) and not self.model.fit_twins \
                and not self.constraints.particle_hole:
            raise ValueError("model.fit_twins = false needs constraints.particle_hole = true (the "
                             "particle-hole average is what stands in for the twin rows)")
        if self.constraints.uses_fit_residual and not is_bath_fitting(self.data.base):
            raise ValueError(f"constraints.exact_base_scale / trust_ratio scale the correction by "
                             f"the base solver's bath-fit residual; data.base = {self.data.base} "
                             "fits no bath (set both to 0, or use an edN / ed_fit base)")


def is_bath_fitting(solver: str) -> bool:
    """Whether ``solver`` fits a bath to the hybridisation (``ed1``..``ed9``, ``ed_fit``) and so
    reports the bath-fit residual the exact-base gate and the trust region use.

    Example:
        >>> is_bath_fitting("ed3"), is_bath_fitting("ipt")
        (True, False)
    """
    return solver == "ed_fit" or re.fullmatch(r"ed\d", solver) is not None


#: Parameters a model's domain may bound (see :meth:`mldmft.ml.predictor.Predictor.out_of_range`).
DOMAIN_KEYS = ("beta", "U", "density", "D")


def _domain(values: Any) -> dict[str, tuple[float, float]] | None:
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise ValueError(f"domain: expected a mapping of [lo, hi] ranges, got {values!r}")
    check_keys(values, DOMAIN_KEYS, prefix="domain.", lead="config: ")
    out = {}
    for key, rng in values.items():
        if (isinstance(rng, (str, bytes)) or not hasattr(rng, "__len__") or len(rng) != 2
                or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in rng)):
            raise ValueError(f"domain.{key}: expected [lo, hi] numbers, got {rng!r}")
        lo, hi = float(rng[0]), float(rng[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"domain.{key}: need finite lo <= hi, got [{lo}, {hi}]")
        out[str(key)] = (lo, hi)
    return out


_TUPLES = {"feature_solvers", "features", "split", "alphas", "gammas"}


def _build(cls, prefix: str, values: Mapping[str, Any] | None):
    return build_dataclass(cls, prefix, values, _TUPLES, wrap_scalars=True)


def train_config_from_dict(cfg: Mapping[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from the resolved plain mapping of ``configs/train.yaml``.

    The ``hydra`` key (if present) is ignored; every other unknown key is an error.

    Example:
        >>> cfg = train_config_from_dict({
        ...     "data": {"path": "db.h5", "base": "ipt", "feature_solvers": ["ipt"]},
        ...     "model": {"kind": "mlp", "hidden": 51, "depth": 2}})
        >>> cfg.model.hidden, cfg.data.target, cfg.constraints.sum_rule
        (51, 'g_l_correction', True)
    """
    cfg = {k: v for k, v in dict(cfg).items() if k != "hydra"}
    check_keys(cfg, ("data", "model", "trainer", "constraints", "metrics", "seed", "domain",
                     "init_checkpoint"), ("data", "model"), lead="config: ")
    model = dict(cfg["model"] or {})
    kind = model.get("kind")
    model_cls = KRRConfig if kind == "krr" else NetConfig
    if kind is None:
        raise ValueError("model.kind is missing (mlp, resmlp, ensemble or krr)")
    return TrainConfig(
        data=_build(DataConfig, "data", cfg["data"]),
        model=_build(model_cls, "model", model),
        trainer=_build(TrainerConfig, "trainer", cfg.get("trainer")),
        constraints=_build(ConstraintConfig, "constraints", cfg.get("constraints")),
        metrics=_build(MetricsConfig, "metrics", cfg.get("metrics")),
        seed=check_type("seed", cfg.get("seed", 0), int),
        domain=_domain(cfg.get("domain")),
        init_checkpoint=check_type("init_checkpoint", cfg.get("init_checkpoint"), str | None),
    )
