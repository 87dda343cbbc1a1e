#!/usr/bin/env python
"""Train a correction network (or the KRR baseline) on an AIM database.

Hydra composes ``configs/train.yaml`` (groups ``data``, ``model``, ``trainer``); this script turns
the composed config into a typed :class:`mldmft.ml.config.TrainConfig` -- the only place below the
command line where a Hydra object is seen -- and runs :func:`mldmft.ml.training.run_training`::

    python train.py data.path=data/aim_db.h5                      # small MLP over IPT
    python train.py data.path=data/aim_db.h5 model=resmlp data=collective
    python train.py data.path=data/aim_db.h5 model=krr
    python train.py -m data.path=data/aim_db.h5 model.hidden=32,64   # a sweep

Each run writes ``model.pt`` (the checkpoint, usable as ``solve("ml", model, checkpoint=...)``),
``metrics.json``, ``logs/`` and PNG plots into its Hydra run directory
(``data/train/<date>/<time>``, or ``data/train/multirun/<date>/<time>/<job>``). A bad
configuration or database exits with status 2 and a one-line message.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402


def to_train_config(cfg: DictConfig):
    """Hydra DictConfig -> typed :class:`mldmft.ml.config.TrainConfig` (the config boundary)."""
    from mldmft.ml.config import train_config_from_dict

    return train_config_from_dict(OmegaConf.to_container(cfg, resolve=True))


def compose(overrides: Sequence[str] = ()):
    """Compose ``configs/train.yaml`` with overrides, without running (tests, benchmarks); a bad
    override or key is a one-line ``ValueError`` (as for ``mldmft generate``)."""
    from mldmft.cli import _compose

    return to_train_config(_compose("train", overrides))


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Train one configuration; returns the validation ``G(tau)`` MSE (the sweep objective)."""
    from mldmft.ml.training import run_training

    # Lightning logs through its own handler; do not repeat every line through Hydra's root one
    logging.getLogger("lightning").propagate = False
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        result = run_training(to_train_config(cfg), out_dir,
                              log=logging.getLogger("train").info)  # console + train.log
    except ValueError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    return result.val_mse_g_tau


if __name__ == "__main__":
    main()
