"""Shared pieces of the core tests."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset


class TinyRegression(L.LightningModule):
    """A 4 -> 1 linear model fitted by SGD to random data: the smallest LightningModule that trains
    (logs its ``loss`` each step)."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def tiny_data(n: int = 64, batch_size: int = 8, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)),
                      batch_size=batch_size)


@pytest.fixture
def tiny():
    """``(TinyRegression, tiny_data)``: the model class and a function making its data."""
    return TinyRegression, tiny_data
