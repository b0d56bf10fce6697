"""Small models for tests/test_synth.py, loaded as MODULE:FUNCTION (needs PyTorch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyCNN(nn.Module):
    """conv -> relu -> pool -> fc. ``fc`` is registered first but runs last."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8 * 4 * 4, 10)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


def tiny_cnn(batch_size: int) -> tuple[nn.Module, torch.Tensor]:
    return TinyCNN(), torch.randn(batch_size, 3, 8, 8)


def tiny_cnn_fixed_batch() -> tuple[nn.Module, torch.Tensor]:
    """Takes no batch_size: the example batch is 4."""
    return TinyCNN(), torch.randn(4, 3, 8, 8)


class TiedLM(nn.Module):
    """Embedding -> proj -> tanh -> head, the head's weight tied to the embedding.

    ``unused`` has trainable parameters that the forward pass never touches."""

    def __init__(self, vocab: int = 64, dim: int = 16, head_bias: bool = True) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab, bias=head_bias)
        self.head.weight = self.emb.weight
        self.unused = nn.Linear(dim, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.proj(self.emb(ids))))


def _lm(batch_size: int, seq_len: int, head_bias: bool):
    model = TiedLM(head_bias=head_bias)
    ids = torch.zeros(batch_size, seq_len, dtype=torch.long)
    labels = torch.zeros(batch_size * seq_len, dtype=torch.long)

    def loss_fn(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, 64), labels.to(logits.device))

    return model, ids, loss_fn


def tied_lm(batch_size: int, seq_len: int = 8):
    return _lm(batch_size, seq_len, head_bias=True)


def tied_lm_no_head_bias(batch_size: int, seq_len: int = 8):
    return _lm(batch_size, seq_len, head_bias=False)


class Functional(nn.Module):
    """The parent reads a child's weight directly; the child module is never called."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(32, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(F.embedding(ids, self.table.weight).mean(1))


def functional(batch_size: int):
    return Functional(), {"ids": torch.zeros(batch_size, 5, dtype=torch.long)}


def broken(batch_size: int):
    raise RuntimeError("boom")


def not_a_model(batch_size: int):
    return 1, 2


NOT_CALLABLE = 3


class DataDependent(nn.Module):
    """Reads a tensor's value, which the meta device cannot do."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        return y * 2 if y.sum().item() > 0 else y


def data_dependent(batch_size: int):
    return DataDependent(), torch.randn(batch_size, 4)


def no_params(batch_size: int):
    return nn.ReLU(), torch.randn(batch_size, 4)
