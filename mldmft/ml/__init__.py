"""Correction networks: learn the error of cheap impurity solvers against exact ED.

``import mldmft.ml`` registers the ``ml`` solver in the ``solvers`` registry (without loading
torch: that happens on the first prediction), so a trained checkpoint is used like any solver::

    import mldmft.ml  # noqa: F401
    from solvers import solve
    result = solve("ml", model, checkpoint="data/train/<run>/model.pt")

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
``inference``       the ``ml`` solver
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
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mldmft.ml' has no attribute {name!r}")
