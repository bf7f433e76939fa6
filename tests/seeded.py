"""Seeded test tensors: each from its own generator, so a test's values do not depend on
what ran before it."""

from __future__ import annotations

import torch


def seeded_randn(*shape: int, seed: int, dtype: torch.dtype,
                 requires_grad: bool = False) -> torch.Tensor:
    """Standard normal values of `shape` from a generator seeded with `seed`."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(requires_grad)
