"""Correction networks: learn the error of cheap impurity solvers against exact ED.

``import mldmft.ml`` registers the ``ml`` solver in the ``solvers`` registry (without loading
torch: that happens on the first prediction), so a trained checkpoint is used like any solver::

    import mldmft.ml  # noqa: F401
    from solvers import solve, solve_many
    result = solve("ml", model)                       # the default shipped network
    result = solve("ml", model, network="phase_diagram")  # a shipped one by name (mldmft models)
    result = solve("ml", model, checkpoint="data/train/<run>/model.pt")
    results = solve_many("ml", models)                # one forward pass for the whole batch

Training goes through ``train.py`` (Hydra, ``configs/train.yaml``), which builds a typed
:class:`~mldmft.ml.config.TrainConfig` and calls :func:`~mldmft.ml.training.run_training`.
Modules (see ``docs/networks.md``):

==================  ============================================================================
``config``          typed configuration (one dataclass per Hydra group)
``features``        feature/target encodings, :class:`RawBatch`
``data``            database loading, row filtering, group splits, fitted transforms
``datamodule``      the Lightning DataModule
``transforms``      T0/T1/T2 and standardisation
``constraints``     sum-rule projection, particle-hole sign
``networks``        MLP, residual MLP, ensemble (torch)
``models``          the LightningModule
``krr``             kernel ridge regression baseline
``predictor``       the prediction path shared by evaluation and inference
``checkpoint``      save/load (cached) of ``model.pt``
``metrics``         test-set errors and improvement factors
``plots``           PNG plots of a run
``training``        a whole run
``hybridisation``   ``Delta_l`` and ``D`` of many models (the bath inputs, no bath fit)
``inference``       the ``ml`` solver (one model or a batch)
``shipped``         the shipped networks by name, the default
==================  ============================================================================
"""

from importlib import import_module
from typing import Any

from . import inference as _inference  # noqa: F401  (registers the "ml" solver; no torch)

_LAZY = {
    "TrainConfig": "mldmft.ml.config",
    "train_config_from_dict": "mldmft.ml.config",
    "run_training": "mldmft.ml.training",
    "Predictor": "mldmft.ml.predictor",
    "load_checkpoint": "mldmft.ml.checkpoint",
    "load_checkpoint_cached": "mldmft.ml.checkpoint",
    "prepare_data": "mldmft.ml.data",
    "DataConfig": "mldmft.ml.config",
    "split_groups": "mldmft.ml.data",
    "project_sum_rule": "mldmft.ml.constraints",
    "RawBatch": "mldmft.ml.features",
    "EncodingSpec": "mldmft.ml.features",
    "solve_ml": "mldmft.ml.inference",
    "solve_ml_many": "mldmft.ml.inference",
    "SHIPPED": "mldmft.ml.shipped",
    "DEFAULT_NETWORK": "mldmft.ml.shipped",
    "shipped_network": "mldmft.ml.shipped",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mldmft.ml' has no attribute {name!r}")
