"""Lightning DataModule over a :class:`~mldmft.ml.data.PreparedData`.

It serves standardised ``(features, targets)`` as float32 tensors: the training split shuffled
with a seeded generator, the validation split in order. The test split is deliberately not
served: it is evaluated exactly once, after model selection, by :mod:`mldmft.ml.training`
through the same :class:`~mldmft.ml.predictor.Predictor` that inference uses.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .data import PreparedData

__all__ = ["CorrectionDataModule"]


class CorrectionDataModule(L.LightningDataModule):
    """Train/val loaders of a prepared database.

    Args:
        data: the prepared rows, splits and fitted transforms.
        batch_size: training mini-batch size.
        seed: seed of the shuffling generator.
        eval_batch_size: batch size of the validation loader.
    """

    def __init__(self, data: PreparedData, batch_size: int, seed: int = 0,
                 eval_batch_size: int = 4096) -> None:
        super().__init__()
        self.data = data
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.eval_batch_size = int(eval_batch_size)
        self._sets: dict[str, TensorDataset] = {}

    def _dataset(self, split: str) -> TensorDataset:
        if split not in self._sets:
            x = torch.as_tensor(np.ascontiguousarray(self.data.x(split)), dtype=torch.float32)
            y = torch.as_tensor(np.ascontiguousarray(self.data.y(split)), dtype=torch.float32)
            self._sets[split] = TensorDataset(x, y)
        return self._sets[split]

    def train_dataloader(self) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(self._dataset("train"), batch_size=self.batch_size, shuffle=True,
                          generator=gen)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset("val"), batch_size=self.eval_batch_size, shuffle=False)
