"""Database rows for training: checked loading, row filtering, group splits (numpy only).

* :func:`database_info` reads what a database holds; :func:`make_spec` checks a
  :class:`~mldmft.ml.config.DataConfig` against it (a solver the config names but the database
  lacks is a ``ValueError`` naming it) and returns the :class:`~mldmft.ml.features.EncodingSpec`.
* :func:`load_rows` reads the needed datasets and drops unusable rows, counting them
  (:class:`DropReport`): a row is dropped when its model holds a non-finite value (U, eps_d,
  beta, D, ``Delta_l``, the bath), when the target, the base or a feature solver failed
  (``status = 2`` or non-finite values) and, unless ``keep_not_converged``, when one of them did
  not converge (``status = 1``). Cheap solvers used only for comparison may fail on kept rows
  (their metrics skip those rows).
* :func:`split_groups` splits by ``group_id`` (a sample and its particle-hole twin share one), so
  no group straddles train/val/test.
* :func:`prepare_data` does all of it for a :class:`~mldmft.ml.config.DataConfig` and fits the
  feature and target transforms on the training rows only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from solvers import AndersonModel, hybridisation_iw, matsubara_freqs

from ..database import load_database, open_database
from ..database.inspect import INPUT_NAMES, non_finite_rows
from ..h5schema import STATUS_FAILED, STATUS_NOT_CONVERGED
from ..h5util import read_errors
from .config import DataConfig
from .features import EncodingSpec, RawBatch, build_features, encode_target, feature_groups
from .transforms import FittedTransform

__all__ = ["base_fit_residuals", "DatabaseInfo", "database_info", "make_spec", "DropReport", "LoadedRows",
           "load_rows", "Splits", "split_groups", "PreparedData", "prepare_data"]


@dataclass(frozen=True)
class DatabaseInfo:
    """What a database holds (from its attributes)."""

    path: str
    solver_names: tuple[str, ...]
    target: str
    cheap_solvers: tuple[str, ...]
    n_l: int
    n_sigma: int
    n_rows: int
    solver_options: dict
    #: the generation config stored by ``mldmft generate`` (or ``merge``); ``None`` if absent
    config: dict | None = None
    #: ``n_samples`` of that generation (-1 if not stored)
    n_samples: int = -1


def database_info(path: str | Path) -> DatabaseInfo:
    """Schema-checked summary of a database file."""
    with open_database(path) as f, read_errors(path):
        a = f.attrs
        names = tuple(json.loads(a.get("solver_names", "[]")))
        target = a.get("target", names[0] if names else "")
        if isinstance(target, bytes):
            target = target.decode()
        return DatabaseInfo(path=str(path), solver_names=names, target=str(target),
                            cheap_solvers=tuple(json.loads(a.get("cheap_solvers", "[]"))),
                            n_l=int(a["n_l"]), n_sigma=int(a["n_sigma"]),
                            n_rows=int(a["n_rows"]),
                            solver_options=json.loads(a.get("solver_options", "{}")),
                            config=json.loads(a["config"]) if "config" in a else None,
                            n_samples=int(a.get("n_samples", -1)))


def make_spec(cfg: DataConfig, info: DatabaseInfo) -> EncodingSpec:
    """The encoding of ``cfg`` on database ``info``; refuses names and sizes it does not hold."""
    held = ", ".join(info.solver_names)
    target = cfg.target_solver or info.target
    for key, name in [("data.target_solver", target), ("data.base", cfg.base)] + [
            ("data.feature_solvers", s) for s in cfg.feature_solvers]:
        if name not in info.solver_names:
            raise ValueError(f"{key}: solver {name!r} is not in database {info.path} "
                             f"(it holds: {held})")
    if cfg.base == target or target in cfg.feature_solvers:
        raise ValueError(f"data: the target solver {target!r} cannot also be the base or a "
                         "feature solver")
    n_l_features = cfg.n_l_features or info.n_l
    n_l_target = cfg.n_l_target or info.n_l
    for key, val in (("data.n_l_features", n_l_features), ("data.n_l_target", n_l_target)):
        if val > info.n_l:
            raise ValueError(f"{key} = {val} exceeds the {info.n_l} Legendre coefficients of "
                             f"{info.path}")
    uses_sigma = cfg.target in ("sigma_correction", "sigma_w_correction") or "sigma_iw" in cfg.features
    if uses_sigma and cfg.n_sigma > info.n_sigma:
        raise ValueError(f"data.n_sigma = {cfg.n_sigma} exceeds the {info.n_sigma} Matsubara "
                         f"frequencies of Sigma stored in {info.path}")
    opts = {s: dict(info.solver_options.get(s, {})) for s in (cfg.base,) + cfg.feature_solvers}
    n_ir = 0
    if cfg.basis == "ir":
        from solvers.ir import IRBasis

        n_ir = IRBasis(lambda_=cfg.ir_lambda, eps=cfg.ir_eps).size
    return EncodingSpec(target_solver=target, base=cfg.base,
                        feature_solvers=tuple(cfg.feature_solvers), blocks=tuple(cfg.features),
                        target=cfg.target, n_l=info.n_l, n_l_features=n_l_features,
                        n_l_target=n_l_target, n_sigma=cfg.n_sigma, solver_options=opts,
                        basis=cfg.basis, ir_lambda=cfg.ir_lambda, ir_eps=cfg.ir_eps, n_ir=n_ir,
                        docc=cfg.docc)


@dataclass(frozen=True)
class DropReport:
    """Rows read and dropped, per solver and reason."""

    n_rows: int
    kept: int
    failed: dict[str, int]
    not_converged: dict[str, int]
    kept_not_converged: bool
    non_finite_inputs: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"rows       {self.n_rows} read, {self.kept} kept, "
               f"{self.n_rows - self.kept} dropped"]
        for name, count in self.non_finite_inputs.items():
            out.append(f"  {name:<10} non-finite in {count} row(s) (dropped)")
        for name in self.failed:
            action = "kept" if self.kept_not_converged else "dropped"
            out.append(f"  {name:<10} failed {self.failed[name]} (dropped), not converged "
                       f"{self.not_converged[name]} ({action})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "kept": self.kept, "failed": dict(self.failed),
                "not_converged": dict(self.not_converged),
                "kept_not_converged": self.kept_not_converged,
                "non_finite_inputs": dict(self.non_finite_inputs)}


@dataclass(frozen=True, eq=False)
class LoadedRows:
    """Usable rows of a database.

    Attributes:
        batch: inputs and labels (``g_l`` of every stored solver; ``sigma_iw`` of the needed ones).
        group_id: split groups ``[n]``.
        augmented: particle-hole twin flags ``[n]``.
        bath_eps, bath_v: discrete baths ``[n, n_bath_max]`` (NaN / 0 padded).
        n_bath: bath sites ``[n]``.
        report: what was dropped.
        comparison: cheap solvers stored in the database (for the metrics).
    """

    batch: RawBatch
    group_id: np.ndarray
    augmented: np.ndarray
    bath_eps: np.ndarray
    bath_v: np.ndarray
    n_bath: np.ndarray
    report: DropReport
    comparison: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.batch)

    def model(self, row: int) -> AndersonModel:
        """The impurity model of one row (e.g. to solve it again)."""
        nb = int(self.n_bath[row])
        b = self.batch
        return AndersonModel(U=float(b.U[row]), eps_d=float(b.eps_d[row]),
                             beta=float(b.beta[row]), bath_eps=self.bath_eps[row, :nb],
                             bath_v=self.bath_v[row, :nb])


def _delta_iw(beta: np.ndarray, eps: np.ndarray, v: np.ndarray, n_bath: np.ndarray,
              n_iw: int) -> np.ndarray:
    out = np.empty((beta.size, n_iw), dtype=complex)
    for r in range(beta.size):
        nb = int(n_bath[r])
        out[r] = hybridisation_iw(matsubara_freqs(beta[r], n_iw), eps[r, :nb], v[r, :nb])
    return out


def load_rows(cfg: DataConfig, spec: EncodingSpec, info: DatabaseInfo) -> LoadedRows:
    """Read and filter the rows a run needs (see the module docstring).

    Raises:
        ValueError: no row survives the filtering (the message gives the counts).
    """
    needed = (spec.target_solver,) + spec.cheap_solvers
    comparison = tuple(s for s in info.cheap_solvers if s in info.solver_names)
    g_names = tuple(dict.fromkeys(needed + comparison))
    names = ["group_id", "augmented", "params/U", "params/eps_d", "params/beta", "params/D",
             "params/n_bath", "bath/eps", "bath/v", "delta_l"]
    for s in g_names:
        names += [f"solvers/{s}/g_l", f"solvers/{s}/status"]
    sigma_names = needed if spec.needs_sigma else ()
    names += [f"solvers/{s}/sigma_iw" for s in sigma_names]
    docc_needed = ((spec.target_solver, spec.base) if spec.docc else ()) + (
        spec.feature_solvers if "docc" in spec.blocks else ())
    names += [f"solvers/{s}/double_occupancy" for s in g_names]
    names += [f"solvers/{s}/density" for s in g_names]
    data = load_database(info.path, names)
    n_all = int(data["group_id"].shape[0])
    rows = np.arange(n_all)
    if cfg.max_samples is not None:
        groups = list(dict.fromkeys(data["group_id"].tolist()))[:cfg.max_samples]
        rows = rows[np.isin(data["group_id"], groups)]
    keep = np.ones(rows.size, dtype=bool)
    # a NaN in a model (U, eps_d, beta, D, Delta_l, the bath) poisons every feature of the row
    bad_inputs = non_finite_rows({k: data[k][rows] for k in INPUT_NAMES + ("params/n_bath",)})
    for bad_rows in bad_inputs.values():
        keep[bad_rows] = False
    failed, not_conv = {}, {}
    for s in needed:
        status = data[f"solvers/{s}/status"][rows]
        finite = np.all(np.isfinite(data[f"solvers/{s}/g_l"][rows]), axis=1)
        if s in sigma_names:
            finite &= np.all(np.isfinite(data[f"solvers/{s}/sigma_iw"][rows]), axis=1)
        if s in docc_needed:
            finite &= np.isfinite(data[f"solvers/{s}/double_occupancy"][rows])
        bad = (status == STATUS_FAILED) | ~finite
        nc = (status == STATUS_NOT_CONVERGED) & ~bad
        failed[s], not_conv[s] = int(bad.sum()), int(nc.sum())
        keep &= ~bad
        if not cfg.keep_not_converged:
            keep &= ~nc
    report = DropReport(n_rows=int(rows.size), kept=int(keep.sum()), failed=failed,
                        not_converged=not_conv, kept_not_converged=cfg.keep_not_converged,
                        non_finite_inputs={k: int(v.size) for k, v in bad_inputs.items()})
    if not keep.any():
        raise ValueError(f"{info.path}: no usable row: " + "; ".join(report.lines()))
    rows = rows[keep]
    beta = data["params/beta"][rows].astype(float)
    eps_padded = data["bath/eps"][rows].astype(float)
    eps = np.nan_to_num(eps_padded, nan=0.0)
    v = data["bath/v"][rows].astype(float)
    n_bath = data["params/n_bath"][rows].astype(int)
    g_l = {}
    for s in g_names:
        g = data[f"solvers/{s}/g_l"][rows].astype(float)
        if s not in needed:
            bad = (data[f"solvers/{s}/status"][rows] == STATUS_FAILED)
            g[bad] = np.nan
        g_l[s] = g
    batch = RawBatch(U=data["params/U"][rows].astype(float),
                     eps_d=data["params/eps_d"][rows].astype(float), beta=beta,
                     D=data["params/D"][rows].astype(float),
                     delta_l=data["delta_l"][rows].astype(float),
                     delta_iw=_delta_iw(beta, eps, v, n_bath, spec.n_iw_delta),
                     g_l=g_l,
                     sigma_iw={s: data[f"solvers/{s}/sigma_iw"][rows].astype(complex)
                               for s in sigma_names},
                     docc={s: data[f"solvers/{s}/double_occupancy"][rows].astype(float)
                           for s in g_names},
                     density={s: data[f"solvers/{s}/density"][rows].astype(float)
                              for s in g_names})
    return LoadedRows(batch=batch, group_id=data["group_id"][rows].astype(np.int64),
                      augmented=data["augmented"][rows].astype(bool),
                      bath_eps=eps_padded, bath_v=v, n_bath=n_bath,
                      report=report, comparison=comparison)


@dataclass(frozen=True, eq=False)
class Splits:
    """Row indices of the three splits (sorted, disjoint, whole groups)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": int(self.train.size), "val": int(self.val.size),
                "test": int(self.test.size)}


def split_groups(group_id: np.ndarray, fractions: tuple[float, float, float],
                 seed: int) -> Splits:
    """Split rows into train/val/test by whole groups, in a seeded random order.

    The groups (unique ``group_id``) are permuted with ``numpy.random.default_rng(seed)``; the
    first ``round(f_val n_groups)`` go to val, the next ``round(f_test n_groups)`` to test, the rest
    to train.

    Raises:
        ValueError: a split would be empty (too few groups for the fractions).

    Example:
        >>> import numpy as np
        >>> s = split_groups(np.repeat(np.arange(10), 2), (0.6, 0.2, 0.2), seed=0)
        >>> s.sizes()
        {'train': 12, 'val': 4, 'test': 4}
    """
    group_id = np.asarray(group_id)
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise ValueError(f"split fractions must be three positive numbers, got {fractions}")
    groups = np.unique(group_id)
    n = groups.size
    perm = np.random.default_rng(int(seed)).permutation(groups)
    total = float(sum(fractions))
    n_val = int(round(fractions[1] / total * n))
    n_test = int(round(fractions[2] / total * n))
    parts = {"val": perm[:n_val], "test": perm[n_val:n_val + n_test],
             "train": perm[n_val + n_test:]}
    for name, part in parts.items():
        if part.size == 0:
            raise ValueError(f"split '{name}' is empty: {n} group(s) cannot be split with "
                             f"fractions (train, val, test) = {tuple(fractions)}; use a larger "
                             "database or other fractions")
    rows = {k: np.flatnonzero(np.isin(group_id, v)) for k, v in parts.items()}
    return Splits(train=rows["train"], val=rows["val"], test=rows["test"])


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Everything a training run needs from the database.

    Attributes:
        info: the database summary.
        spec: the encoding (stored in the checkpoint).
        rows: the usable rows.
        splits: train/val/test row indices.
        features: encoded features ``[n, n_features]`` (before transforms).
        targets: encoded targets ``[n, n_targets]`` (before transforms).
        x_transform: feature transform fitted on the training rows.
        y_transform: target transform fitted on the training rows.
    """

    info: DatabaseInfo
    spec: EncodingSpec
    rows: LoadedRows
    splits: Splits
    features: np.ndarray
    targets: np.ndarray
    x_transform: FittedTransform
    y_transform: FittedTransform

    def x(self, split: str) -> np.ndarray:
        """Standardised features of a split (``train``, ``val`` or ``test``)."""
        return self.x_transform.forward(self.features[getattr(self.splits, split)])

    def y(self, split: str) -> np.ndarray:
        """Standardised targets of a split."""
        return self.y_transform.forward(self.targets[getattr(self.splits, split)])

    def train_range(self) -> dict[str, list[float]]:
        """``[min, max]`` of beta, U and eps_d over the training rows."""
        b = self.rows.batch
        t = self.splits.train
        return {k: [float(getattr(b, k)[t].min()), float(getattr(b, k)[t].max())]
                for k in ("beta", "U", "eps_d")}


def prepare_data(cfg: DataConfig, split_seed: int | None = None) -> PreparedData:
    """Load, filter, encode and split a database; fit the transforms on the training rows.

    Args:
        cfg: the data configuration.
        split_seed: overrides ``cfg.split_seed`` when given.

    Raises:
        ValueError: missing solver, sizes the database does not hold, no usable row, or an
            empty split.
    """
    info = database_info(cfg.path)
    spec = make_spec(cfg, info)
    rows = load_rows(cfg, spec, info)
    splits = split_groups(rows.group_id, cfg.split,
                          cfg.split_seed if split_seed is None else split_seed)
    features = build_features(rows.batch, spec)
    targets = encode_target(rows.batch, spec)
    x_t = FittedTransform.fit(cfg.feature_transform, features[splits.train], cfg.feature_scale,
                              groups=feature_groups(spec))
    y_t = FittedTransform.fit(cfg.target_transform, targets[splits.train], "global")
    return PreparedData(info=info, spec=spec, rows=rows, splits=splits, features=features,
                        targets=targets, x_transform=x_t, y_transform=y_t)


def base_fit_residuals(rows: LoadedRows, spec: EncodingSpec,
                       which: np.ndarray | None = None) -> np.ndarray:
    """The bath-fit residual of the base solver for database rows (``edN`` / ``ed_fit`` bases;
    NaN for others): :func:`solvers.ed_fit.ed_fit_bath`, the fit that solver makes, with its
    stored options (0 where it uses the model's own bath)."""
    import inspect
    import re

    from solvers.ed_fit import ed_fit_bath

    which = np.arange(len(rows)) if which is None else np.asarray(which)
    opts = dict(spec.solver_options.get(spec.base, {}))
    m = re.fullmatch(r"ed(\d)", spec.base)
    if m:
        n_bath = int(m.group(1))
    elif spec.base == "ed_fit":
        n_bath = int(opts.get("n_bath", 3))
    else:
        return np.full(which.size, np.nan)
    keys = set(inspect.signature(ed_fit_bath).parameters) - {"model", "n_bath"}
    fit_opts = {k: v for k, v in opts.items() if k in keys}
    out = np.empty(which.size)
    for k, r in enumerate(which):
        fit = ed_fit_bath(rows.model(int(r)), n_bath, **fit_opts)
        out[k] = 0.0 if fit is None else fit.residual
    return out
