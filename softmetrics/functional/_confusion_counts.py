"""The soft confusion matrix of the softmax decision (C, C), which weighted Cohen's kappa
reads: `soft_confusion`, through the fused `_SoftmaxConfusion` (block by block on the
CPU, with a hand-written backward over the saved probabilities, as the counts of
`_classification_counts`) or the same code under autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

import torch
from torch import Tensor

from .._relax import compute_dtype, soft_argmax, sum_dtype, temperature_scale
from ._classification_counts import (
    backward_block_rows,
    first_columns,
    is_fused,
    keep_probabilities,
    small,
    softmax_rows,
    spend_probabilities,
)

__all__ = ["soft_confusion"]


def _confusion_rows(p: Tensor, y: Tensor, w: Tensor | None, out: Tensor | None = None
                    ) -> Tensor:
    """The confusion matrix (C, C) of 2-D decisions `p` (N, C): row `i` sums the rows of
    `p` (weighted by `w`) whose target `y` is `i`; added to `out` when given."""
    rows = p if w is None else p * w.unsqueeze(1)
    if out is None:  # summed in `sum_dtype`: one row at a time
        acc = sum_dtype(p.device)
        o = rows.new_zeros(p.shape[1], p.shape[1], dtype=acc)
        return o.index_add_(0, y, rows.to(acc)).to(rows.dtype)
    return out.index_add_(0, y, rows)


class _SoftmaxConfusion(torch.autograd.Function):
    """`_confusion_rows(softmax(z / tau), y, w)` for 2-D logits, with a hand-written
    backward: the soft confusion matrix $O_{ij} = \\sum_n w_n [y_n = i] p_{nj}$ that
    weighted kappa reads, summed block by block of samples while each block is in cache.
    Narrow rows are padded as `softmax_width` says: ATen's softmax backward kernel, which
    the backward pass calls, loops slowly over narrow rows as its forward does (4096 rows
    of 10 classes with AVX-512 kernels: 236 us, 17 us padded to 16), so it runs at the
    padded width too, on an upstream gradient padded with zero columns.

    Backward: $\\partial L/\\partial p_{nj} = w_n g_{y_n j}$ (row $y_n$ of the upstream
    gradient $g$, (C, C)) and the softmax Jacobian give
    $\\partial L/\\partial z_{nj} = w_n p_{nj}(g_{y_n j} - \\sum_d p_{nd} g_{y_n d}) / \\tau$,
    written over the saved probabilities block by block (`backward_block_rows`) with two
    temporaries of one block, as in `_SoftmaxSoftCounts`. A second backward through a
    retained graph recomputes the probabilities; when a graph is being built the backward
    differentiates the confusion matrix recomputed with autograd.
    """

    apply: ClassVar[Callable[[Tensor, Tensor, Tensor | None, float], Tensor]]

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, w: Tensor | None, inv_t: float) -> Tensor:
        c = z.shape[1]
        if small(z):
            p_full = softmax_rows(z, inv_t)
            o = _confusion_rows(first_columns(p_full, c), y, w)
        else:  # the rows by target class, block by block while each block is in cache
            total = z.new_zeros((c, c), dtype=sum_dtype(z.device))

            def add(block: Tensor, start: int, stop: int) -> None:
                wb = None if w is None else w[start:stop]
                _confusion_rows(block.to(total.dtype), y[start:stop], wb, total)

            p_full = softmax_rows(z, inv_t, add)
            o = total.to(compute_dtype(z.dtype))
        return keep_probabilities(ctx, z, y, w, p_full, inv_t, False, o)

    @staticmethod
    def backward(ctx: Any, g_o: Tensor) -> tuple[Tensor, None, None, None]:
        if torch.is_grad_enabled():  # a graph being built: differentiable, spends nothing
            z, y, w = ctx.saved_tensors
            p = torch.softmax(z.to(compute_dtype(z.dtype)) * ctx.inv_t, dim=1)
            (grad,) = torch.autograd.grad(_confusion_rows(p, y, w), z, g_o,
                                          create_graph=True)
            return grad, None, None, None
        z, y, w = ctx.saved_tensors
        p, c = spend_probabilities(ctx, z), z.shape[1]
        width = p.shape[1]
        g_o = g_o * ctx.inv_t if ctx.inv_t != 1.0 else g_o
        if width != c:  # the padding columns have probability 0 and gradient 0
            g_o = torch.nn.functional.pad(g_o, (0, width - c))
        n, step = p.shape[0], backward_block_rows(p)
        tmp = p.new_empty((2, min(step, n), width))
        for start in range(0, n, step):
            stop = min(n, start + step)
            block, t, u = p[start:stop], tmp[0, :stop - start], tmp[1, :stop - start]
            g = torch.index_select(g_o, 0, y[start:stop], out=t)  # row y_n of g, per sample
            block.copy_(torch.ops.aten._softmax_backward_data.out(g, block, 1, block.dtype,
                                                                   grad_input=u))
            if w is not None:
                block.mul_(w[start:stop].unsqueeze(1))
        grad = first_columns(p, c)
        return grad.to(z.dtype), None, None, None


def soft_confusion(z: Tensor, y: Tensor, w: Tensor | None,
                   temperature: float | Tensor) -> Tensor:
    """The soft confusion matrix (C, C) of the softmax decision on logits `z` (N, C, ...)
    against class indices `y` (N, ...), rows the target, weighted by `w` (N, ...): through
    the fused `_SoftmaxConfusion` where `is_fused` says so (logits with extra axes are first
    laid out as rows), else the same code under autograd."""
    c = z.shape[1]
    if z.ndim != 2:
        z, y = z.movedim(1, -1).reshape(-1, c), y.reshape(-1)
        w = None if w is None else w.reshape(-1)
    if is_fused(z, temperature):
        return _SoftmaxConfusion.apply(z, y, w, 1.0 / cast(float, temperature_scale(temperature)))
    return _confusion_rows(soft_argmax(z.to(compute_dtype(z.dtype)), temperature, dim=1), y, w)
