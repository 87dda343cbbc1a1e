"""A whole training run: prepare data, fit, select on val, evaluate once on test, save.

:func:`run_training` is what ``train.py`` calls with a typed :class:`~mldmft.ml.config.TrainConfig`
(no Hydra objects below ``train.py``). It writes into ``out_dir``::

    model.pt            the checkpoint (mldmft.ml.checkpoint): all a prediction needs
    metrics.json        test-set errors, improvement factors, beta/U breakdown, val summary,
                        dropped rows, split sizes, training time, the resolved config
    logs/               Lightning CSVLogger (metrics.csv: train_loss, val_loss per epoch)
    learning_curves.png, g_tau_examples.png, error_vs_params.png

Model selection uses the validation split only (early stopping and the best epoch for networks,
the ``(alpha, gamma)`` grid for KRR); the test split is predicted exactly once, after selection.
"""

from __future__ import annotations

import copy
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from solvers import legendre_t_matrix

from .. import __version__
from .checkpoint import save_checkpoint
from .config import KRRConfig, TrainConfig
from .data import PreparedData, prepare_data
from .features import decode_target
from .metrics import evaluate
from .predictor import Predictor, TorchBackend

__all__ = ["TrainResult", "run_training", "fit_network", "fit_krr_predictor",
           "improvement_lines", "load_init_checkpoint", "warm_start_data", "spec_difference"]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`run_training`."""

    out_dir: Path
    checkpoint: Path
    metrics: dict[str, Any]
    predictor: Predictor
    data: PreparedData

    @property
    def val_mse_g_tau(self) -> float:
        """Validation ``G(tau)`` MSE of the selected model (the sweep objective)."""
        return float(self.metrics["val"]["model"]["mse_g_tau"])


def _predictor(cfg: TrainConfig, data: PreparedData, backend: Any, kind: str,
               meta: dict[str, Any]) -> Predictor:
    return Predictor(spec=data.spec, x_transform=data.x_transform, y_transform=data.y_transform,
                     backend=backend, constraints=cfg.constraints,
                     train_range=data.train_range(),
                     domain={k: list(v) for k, v in (cfg.domain or {}).items()}, kind=kind,
                     meta=meta)


def _iw_matrix(cfg: TrainConfig, data: PreparedData) -> np.ndarray | None:
    """``T_nl`` of the low-frequency loss term, or ``None`` when it is off."""
    if cfg.model.iw_loss_weight <= 0:
        return None
    if data.spec.target != "g_l_correction" or data.y_transform.kind != "T0":
        raise ValueError("model.iw_loss_weight > 0 needs data.target = g_l_correction and "
                         f"data.target_transform = T0 (got {data.spec.target}, "
                         f"{data.y_transform.kind})")
    spec = data.spec
    if spec.basis == "ir":
        # y_ir -> dG_l / beta = M^T y_ir -> dG(i w_n) / beta = T M^T y_ir
        t = legendre_t_matrix(cfg.model.iw_loss_frequencies, spec.n_l) @ spec.ir.matrix(spec.n_l).T
    else:
        t = legendre_t_matrix(cfg.model.iw_loss_frequencies, spec.n_l_target)
    if spec.docc:   # the double-occupancy column does not enter G(i w_n)
        t = np.concatenate([t, np.zeros((t.shape[0], 1))], axis=1)
    return t


def _iw_beta(cfg: TrainConfig, data: PreparedData) -> tuple[int, float, float, float] | None:
    """``(column, mean, std, <beta>_train)`` of beta in the standardised input, for
    ``model.iw_loss_beta`` (``None`` when off)."""
    if not (cfg.model.iw_loss_weight > 0 and cfg.model.iw_loss_beta):
        return None
    from .features import feature_names

    names = feature_names(data.spec)
    if "beta" not in names or data.x_transform.kind != "T0":
        raise ValueError("model.iw_loss_beta needs the scalars feature block and "
                         "data.feature_transform = T0")
    col = names.index("beta")
    return (col, float(data.x_transform.mean[col]), float(data.x_transform.std[col]),
            float(np.mean(data.rows.batch.beta[data.splits.train])))


def _progress_bar(wanted: bool) -> bool:
    """Lightning's per-batch progress bar only on a terminal: in a log file (stdout not a TTY)
    its updates would flood the log, so it is off there (the summary lines of the run still
    print through ``log``)."""
    return bool(wanted) and sys.stdout.isatty()


def _plain_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=lambda o: o.tolist() if hasattr(o, "tolist")
                      else str(o))


#: The model keys that decide a network's architecture (its weights); the optimiser's (lr,
#: weight decay, batch size, ...) may change between a warm start and its checkpoint.
ARCHITECTURE_KEYS = ("kind", "hidden", "depth", "activation", "n_members", "member")


def load_init_checkpoint(cfg: TrainConfig) -> Predictor | None:
    """The warm-start model of ``cfg.init_checkpoint`` (``None`` without one), checked against
    ``cfg.model``: a torch network of the same architecture (:data:`ARCHITECTURE_KEYS`;
    one-line ``ValueError`` naming the differing keys otherwise)."""
    if cfg.init_checkpoint is None:
        return None
    from .checkpoint import load_checkpoint

    init = load_checkpoint(cfg.init_checkpoint)
    if init.kind != "torch":
        raise ValueError(f"init_checkpoint {cfg.init_checkpoint}: a {init.kind} model cannot "
                         "start a network's training")
    old = json.loads(_plain_json(init.meta["net"]["config"]))
    new = json.loads(_plain_json(asdict(cfg.model)))
    diff = [k for k in ARCHITECTURE_KEYS if old.get(k) != new.get(k)]
    if diff:
        k = diff[0]
        raise ValueError(f"init_checkpoint {cfg.init_checkpoint}: its network differs from "
                         f"model ({', '.join(f'model.{d}' for d in diff)}; e.g. model.{k}: "
                         f"checkpoint {old.get(k)!r}, config {new.get(k)!r})")
    return init


def spec_difference(old: Any, new: Any) -> list[str]:
    """The fields in which two :class:`~mldmft.ml.features.EncodingSpec` differ."""
    a, b = json.loads(_plain_json(old.to_dict())), json.loads(_plain_json(new.to_dict()))
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def warm_start_data(data: PreparedData, init: Predictor, path: str) -> PreparedData:
    """``data`` with the feature and target standardisation of the warm-start model ``init``
    (so its weights mean the same thing); refuses another encoding, naming the difference."""
    from dataclasses import replace

    diff = spec_difference(init.spec, data.spec)
    if diff:
        raise ValueError(f"init_checkpoint {path}: its encoding differs from this run's "
                         f"({', '.join(diff)}); a warm start needs the same data settings and "
                         "database layout")
    return replace(data, x_transform=init.x_transform, y_transform=init.y_transform)


def fit_network(cfg: TrainConfig, data: PreparedData, out_dir: Path,
                log: Callable[[str], None] = print, init: Predictor | None = None
                ) -> tuple[Predictor, dict[str, Any]]:
    """Train the network of ``cfg.model`` with Lightning; keep the weights of the best val epoch.

    ``init``: a warm-start model (:func:`load_init_checkpoint`) whose weights replace the
    seeded initialisation; its input and output sizes must match.

    Raises:
        NonFiniteLossError: the training or validation loss became NaN/inf.
    """
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback, EarlyStopping
    from lightning.pytorch.loggers import CSVLogger

    from .datamodule import CorrectionDataModule
    from .models import CorrectionModule, NonFiniteLossError

    class BestState(Callback):
        """Keep a copy of the weights of the epoch with the lowest val loss (in memory)."""

        def __init__(self) -> None:
            self.best = float("inf")
            self.epoch = -1
            self.state: dict[str, torch.Tensor] | None = None

        def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            if trainer.sanity_checking:
                return
            val = trainer.callback_metrics.get("val_loss")
            if val is None:
                return
            val = float(val)
            if not np.isfinite(val):
                raise NonFiniteLossError(f"validation loss is {val} at epoch "
                                         f"{trainer.current_epoch}: the run is stopped")
            if val < self.best:
                self.best, self.epoch = val, trainer.current_epoch
                self.state = copy.deepcopy(module.net.state_dict())

    tc = cfg.trainer
    if tc.threads is not None:
        torch.set_num_threads(tc.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    n_in, n_out = data.spec.n_features, data.spec.n_targets
    net_config = asdict(cfg.model)
    module = CorrectionModule(net_config, n_in, n_out, iw_matrix=_iw_matrix(cfg, data),
                              iw_beta=_iw_beta(cfg, data))
    if init is not None:
        net = init.meta["net"]
        if (int(net["n_in"]), int(net["n_out"])) != (n_in, n_out):
            raise ValueError(f"init_checkpoint: its network maps {net['n_in']} -> "
                             f"{net['n_out']} numbers, this run's {n_in} -> {n_out}")
        module.net.load_state_dict(init.backend.net.state_dict())
        log(f"warm start from {cfg.init_checkpoint}")
    dm = CorrectionDataModule(data, batch_size=cfg.model.batch_size, seed=cfg.seed)
    best = BestState()
    logger = CSVLogger(save_dir=str(out_dir), name="logs")
    trainer = L.Trainer(
        max_epochs=tc.max_epochs, accelerator="cpu", devices=1, logger=logger,
        callbacks=[best, EarlyStopping(monitor="val_loss", mode="min", patience=tc.patience,
                                       min_delta=tc.min_delta)],
        enable_checkpointing=False, enable_progress_bar=_progress_bar(tc.progress_bar),
        fast_dev_run=tc.fast_dev_run, deterministic=tc.deterministic,
        log_every_n_steps=tc.log_every_n_steps, default_root_dir=str(out_dir),
        enable_model_summary=tc.progress_bar)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*number of training batches.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")  # inside Lightning, harmless
        trainer.fit(module, datamodule=dm)
    if best.state is not None:
        module.net.load_state_dict(best.state)
    metrics_csv = Path(logger.log_dir) / "metrics.csv"
    info = {"epochs": int(trainer.current_epoch), "best_epoch": int(best.epoch),
            "best_val_loss": None if best.state is None else float(best.best),
            "fast_dev_run": bool(tc.fast_dev_run),
            "metrics_csv": str(metrics_csv) if metrics_csv.is_file() else None,
            "n_parameters": int(sum(p.numel() for p in module.net.parameters()))}
    meta = {"net": {"config": net_config, "n_in": n_in, "n_out": n_out},
            "n_members": cfg.model.n_members if cfg.model.kind == "ensemble" else 1}
    log(f"trained    {info['epochs']} epoch(s), best val epoch {info['best_epoch']}, "
        f"{info['n_parameters']} parameters")
    return _predictor(cfg, data, TorchBackend(module.net), "torch", meta), info


def fit_krr_predictor(cfg: TrainConfig, data: PreparedData,
                      log: Callable[[str], None] = print) -> tuple[Predictor, dict[str, Any]]:
    """Fit the KRR baseline with hyperparameters selected on the validation split."""
    from .krr import fit_krr

    assert isinstance(cfg.model, KRRConfig)
    fit_rows = (slice(None) if cfg.model.fit_twins
                else ~data.rows.augmented[data.splits.train])
    fit = fit_krr(cfg.model, data.x("train")[fit_rows], data.y("train")[fit_rows],
                  data.x("val"), data.y("val"),
                  train_groups=data.rows.group_id[data.splits.train][fit_rows], seed=cfg.seed)
    m = fit.model
    log(f"KRR        {cfg.model.kernel} kernel, alpha = {m.alpha:g}, gamma = {m.gamma:.4g}, "
        f"{fit.n_train} training rows")
    edge = fit.at_grid_edge()
    if edge:
        log(f"warning    KRR selected at the edge of its grid: {'; '.join(edge)}; "
            f"widen model.alphas / model.gammas")
    info = {"grid": fit.grid, "grid_edge": edge, "alpha": m.alpha, "gamma": m.gamma,
            "n_train_used": fit.n_train}
    return _predictor(cfg, data, m, "krr", {"n_members": 1}), info


def run_training(cfg: TrainConfig, out_dir: str | Path,
                 log: Callable[[str], None] = print) -> TrainResult:
    """Fit ``cfg.model`` on ``cfg.data``, select on val, evaluate once on test, write outputs.

    Returns:
        :class:`TrainResult` with the checkpoint path and the metrics written to
        ``out_dir/metrics.json``.

    Raises:
        ValueError: bad data (missing solver, empty split, no usable row) or a non-finite loss
            (:class:`~mldmft.ml.models.NonFiniteLossError`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    init = load_init_checkpoint(cfg)
    data = prepare_data(cfg.data)
    if init is not None:
        data = warm_start_data(data, init, str(cfg.init_checkpoint))
    spec = data.spec
    for line in data.rows.report.lines():
        log(line)
    log(f"splits     {data.splits.sizes()} (by group_id, seed {cfg.data.split_seed})")
    log(f"encoding   {spec.target} over {spec.base}; features {list(spec.blocks)} of "
        f"{list(spec.feature_solvers)}: {spec.n_features} -> {spec.n_targets}")
    t_fit = time.perf_counter()
    if isinstance(cfg.model, KRRConfig):
        predictor, fit_info = fit_krr_predictor(cfg, data, log)
    else:
        predictor, fit_info = fit_network(cfg, data, out_dir, log, init=init)
    train_time = time.perf_counter() - t_fit

    rows, splits = data.rows, data.splits
    val_batch = _with_fit_residuals(rows.batch.take(splits.val), cfg, data, splits.val)
    val_pred = predictor.predict(val_batch)
    val_metrics, _ = evaluate(val_pred.g_l, val_batch, spec.target_solver, spec.base,
                              rows.comparison, cfg.metrics.n_tau, cfg.metrics.n_bins,
                              pred_docc=val_pred.double_occupancy)
    # --- the one and only use of the test split ---
    test_batch = _with_fit_residuals(rows.batch.take(splits.test), cfg, data, splits.test)
    t0 = time.perf_counter()
    test_pred = predictor.predict(test_batch)
    predict_time = time.perf_counter() - t0
    floor = decode_target(data.targets[splits.test], test_batch, spec)
    test_metrics, per_row = evaluate(test_pred.g_l, test_batch, spec.target_solver, spec.base,
                                     rows.comparison, cfg.metrics.n_tau, cfg.metrics.n_bins,
                                     floor_g_l=floor, pred_docc=test_pred.double_occupancy)
    if test_pred.causal_step is not None:
        test_metrics["causal_projected_rows"] = int(np.sum(test_pred.causal_step < 1))
    if test_pred.spread is not None:
        test_metrics["mean_spread_g_l"] = float(np.mean(test_pred.spread))
    metrics = {
        "test": test_metrics,
        "val": {k: val_metrics[k] for k in ("model", "base", "best_cheap", "improvement")},
        "data": {"path": str(cfg.data.path), "dropped": rows.report.to_dict(),
                 "splits": splits.sizes(), "train_range": data.train_range(),
                 "n_features": spec.n_features, "n_targets": spec.n_targets},
        "train": {"model_kind": predictor.kind, "wall_time_s": train_time,
                  "test_predict_time_s": predict_time,
                  "total_wall_time_s": time.perf_counter() - t_start,
                  **{k: v for k, v in fit_info.items() if k != "grid"}},
        "config": asdict(cfg),
    }
    if "grid" in fit_info:
        metrics["train"]["krr_grid"] = fit_info["grid"]
    predictor.meta.update({
        "package_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": str(cfg.data.path), "config": asdict(cfg),
        "test_improvement": test_metrics["improvement"],
        "test_mse_g_tau": test_metrics["model"]["mse_g_tau"]})
    checkpoint = save_checkpoint(predictor, out_dir / "model.pt")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if cfg.metrics.plots:
        _plots(out_dir, fit_info, test_batch, test_pred, per_row, spec, cfg.metrics.n_tau)
    for line in improvement_lines(test_metrics):
        log(line)
    log(f"written    {checkpoint}, {out_dir / 'metrics.json'}")
    return TrainResult(out_dir=out_dir, checkpoint=checkpoint, metrics=metrics,
                       predictor=predictor, data=data)


def _with_fit_residuals(batch: Any, cfg: TrainConfig, data: PreparedData,
                        which: np.ndarray) -> Any:
    """The batch with the base solver's bath-fit residuals when the constraints use them."""
    if not cfg.constraints.uses_fit_residual:
        return batch
    from dataclasses import replace

    from .data import base_fit_residuals

    return replace(batch, fit_residual=base_fit_residuals(data.rows, data.spec, which))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}x"


def improvement_lines(test_metrics: dict[str, Any]) -> list[str]:
    """The summary lines of the test errors: MSE of ``G(tau)`` of the model and the base solver,
    improvement factors ``MSE(solver) / MSE(model)`` (> 1: the model is better), and a warning
    when the model is worse than its base solver."""
    imp = test_metrics["improvement"]
    base = test_metrics.get("base_solver", "base")
    over_base = imp.get("improvement_over_base")
    lines = [f"test       MSE G(tau): model {test_metrics['model']['mse_g_tau']:.3e}, base solver "
             f"{base} {test_metrics['base']['mse_g_tau']:.3e}",
             f"test       improvement factor over the base solver {base} (its MSE / the model's): "
             f"{_fmt(over_base)}"]
    if test_metrics.get("best_cheap") is not None:
        lines.append(f"test       improvement factor over the best cheap solver "
                     f"{test_metrics['best_cheap']}: "
                     f"{_fmt(imp.get('improvement_over_best_cheap'))}")
    if over_base is not None and over_base < 1:
        lines.append(f"warning    the model is WORSE than its base solver {base} on the test set "
                     f"(improvement factor {over_base:.3g}x < 1); using {base} alone is better")
    return lines


def _plots(out_dir: Path, fit_info: dict[str, Any], batch, pred, per_row, spec,
           n_tau: int) -> None:
    from .plots import plot_error_vs_params, plot_g_tau_examples, plot_learning_curves

    csv_path = fit_info.get("metrics_csv")
    plot_learning_curves(out_dir / "learning_curves.png",
                         metrics_csv=Path(csv_path) if csv_path else None,
                         krr_grid=fit_info.get("grid"))
    err = per_row["model"]
    order = np.argsort(err)
    examples = {"median test sample": int(order[len(order) // 2]),
                "worst test sample": int(order[-1])}
    plot_g_tau_examples(out_dir / "g_tau_examples.png", batch, pred.g_l, examples,
                        spec.target_solver, spec.base, n_tau, members=pred.members)
    plot_error_vs_params(out_dir / "error_vs_params.png", batch, per_row)
