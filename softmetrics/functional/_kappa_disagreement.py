r"""The statistics of weighted Cohen's kappa that carry gradient, with no $(C, C)$ matrix:
the weighted disagreement $D = \sum_{ij} W_{ij} O_{ij}$ of the soft confusion matrix
$O_{ij} = \sum_n w_n [y_n = i]\, p_{nj}$ and the predicted mass $q_j = \sum_n w_n p_{nj}$.

The weights depend only on the distance of the two classes ($|i - j|$ or $(i - j)^2$),
so each sample's row $W_{y_n j}$ is computed from its class index on the fly, and

$$
D = \sum_n w_n d_n, \qquad d_n = \sum_j W_{y_n j}\, p_{nj},
$$

O(N C) work and O(C) memory beyond the decision. `weighted_disagreement` runs the soft
decision through the fused `_SoftmaxDisagreement` (block by block on the CPU, with a
hand-written backward over the saved probabilities, as the counts of
`_classification_counts`) or the same code under autograd; at temperature 0 it counts in
exact integers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, cast

import torch
from torch import Tensor

from .._relax import compute_dtype, is_hard, soft_argmax, sum_dtype, temperature_scale
from .._transforms import plain_backward
from ._classification_core import class_support
from ._classification_counts import (
    backward_block_rows,
    first_columns,
    is_fused,
    keep_probabilities,
    regrad,
    small,
    softmax_rows,
    spend_probabilities,
)

__all__ = ["distance_rows", "weighted_disagreement"]

Distance = Literal["linear", "quadratic"]


def distance_rows(y: Tensor, classes: Tensor, weights: Distance,
                  out: Tensor | None = None) -> Tensor:
    """Row $y_n$ of the weights for each class index in `y` (B,): $|j - y_n|$ or
    $(j - y_n)^2$ for each $j$ of `classes` (the class indices 0, 1, ... in the dtype of
    the result), (B, len(classes)), written into `out` when given."""
    gap = torch.sub(classes, y.unsqueeze(1), out=out)
    return gap.abs_() if weights == "linear" else gap.square_()


def _sums(p: Tensor, y: Tensor, w: Tensor | None, weights: Distance) -> tuple[Tensor, Tensor]:
    """`(D (1, 1), q (1, C))` of 2-D decisions `p` (N, C), summed in `sum_dtype` and
    returned in the dtype of `p`: the code the fused Function is tested against."""
    acc = sum_dtype(p.device)
    classes = torch.arange(p.shape[1], device=p.device, dtype=p.dtype)
    d = (distance_rows(y, classes, weights) * p).sum(1)
    mass = p
    if w is not None:
        d, mass = d * w, p * w.unsqueeze(1)
    return (d.sum(dtype=acc).reshape(1, 1).to(p.dtype),
            mass.sum(0, dtype=acc).unsqueeze(0).to(p.dtype))


class _SoftmaxDisagreement(torch.autograd.Function):
    """`_sums(softmax(z / tau), y, w)` for 2-D logits, with a hand-written backward. The
    forward pass adds both sums block by block while each block is in cache; narrow rows
    are padded as `softmax_width` says (the padding columns have probability 0).

    On devices other than the CPU the rows of weights are formed in parts of at most
    `_tuning.DEVICE_BLOCK_ENTRIES` entries, forward and backward, so that neither pass
    allocates a second (N, C) buffer.

    Backward: with upstream gradients $g^D$ (a number) and $g^q$ (C,),
    $\\partial L/\\partial p_{nj} = w_n (g^D W_{y_n j} + g^q_j)$ and the softmax Jacobian
    give $\\partial L/\\partial z_{nj} = p_{nj}(g_{nj} - \\sum_d p_{nd} g_{nd}) / \\tau$, written
    over the saved probabilities block by block (`backward_block_rows`) with two
    temporaries of one block, as in `_SoftmaxSoftCounts`. A second backward through a
    retained graph recomputes the probabilities; when a graph is being built the backward
    differentiates `_sums` recomputed with autograd.
    """

    apply: ClassVar[Callable[[Tensor, Tensor, Tensor | None, float, Distance],
                             tuple[Tensor, Tensor]]]

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, w: Tensor | None, inv_t: float,
                weights: Distance) -> tuple[Tensor, Tensor]:
        c, acc = z.shape[1], sum_dtype(z.device)
        disagreement = z.new_zeros((1, 1), dtype=acc)
        mass = z.new_zeros((1, c), dtype=acc)
        classes = torch.arange(c, device=z.device, dtype=compute_dtype(z.dtype))

        def add(block: Tensor, start: int, stop: int) -> None:
            mass.add_(block.sum(0) if w is None else w[start:stop] @ block)
            # the rows of weights in parts of the backward's block size: one part on the
            # CPU (a block is cache-sized already), no second (N, C) buffer elsewhere
            step = backward_block_rows(block)
            for first in range(start, stop, step):
                last = min(stop, first + step)
                part = block[first - start:last - start]
                d = distance_rows(y[first:last], classes, weights).mul_(part).sum(1)
                disagreement.add_(d.sum() if w is None else d @ w[first:last])

        if small(z):
            p_full = softmax_rows(z, inv_t)
            add(first_columns(p_full, c), 0, z.shape[0])
        else:
            p_full = softmax_rows(z, inv_t, add)
        ctx.weights = weights
        keep_probabilities(ctx, z, y, w, p_full, inv_t, False, mass)
        dtype = compute_dtype(z.dtype)
        return disagreement.to(dtype), mass.to(dtype)

    @staticmethod
    def backward(ctx: Any, g_d: Tensor, g_q: Tensor
                 ) -> tuple[Tensor, None, None, None, None]:
        if plain_backward(g_d, g_q):  # differentiable, spends nothing
            return regrad(ctx, lambda p, y, w, _: _sums(p, y, w, ctx.weights), g_d, g_q)
        z, y, w = ctx.saved_tensors
        p, c = spend_probabilities(ctx, z), z.shape[1]
        width = p.shape[1]
        if ctx.inv_t != 1.0:
            g_d, g_q = g_d * ctx.inv_t, g_q * ctx.inv_t
        if width != c:  # the padding columns have probability 0 and gradient 0
            g_q = torch.nn.functional.pad(g_q, (0, width - c))
        g_d = g_d.reshape(())
        classes = torch.arange(width, device=p.device, dtype=p.dtype)
        n, step = p.shape[0], backward_block_rows(p)
        tmp = p.new_empty((2, min(step, n), width))
        for start in range(0, n, step):
            stop = min(n, start + step)
            block, t, u = p[start:stop], tmp[0, :stop - start], tmp[1, :stop - start]
            g = distance_rows(y[start:stop], classes, ctx.weights, out=t)
            g = torch.addcmul(g_q, g, g_d, out=u)  # g^q + g^D W_{y_n j}
            block.copy_(torch.ops.aten._softmax_backward_data.out(g, block, 1, block.dtype,
                                                                   grad_input=t))
            if w is not None:
                block.mul_(w[start:stop].unsqueeze(1))
        return first_columns(p, c).to(z.dtype), None, None, None, None


def _hard(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int,
          weights: Distance) -> tuple[Tensor, Tensor]:
    """The exact statistics: integers in float64 (float32 on MPS), NaN when a logit is."""
    exact = torch.float64 if z.device.type != "mps" else compute_dtype(z.dtype)
    decision = z.argmax(1).reshape(-1)
    gap = (decision - y.reshape(-1)).to(exact)
    d = gap.abs() if weights == "linear" else gap * gap
    if w is not None:
        w = w.reshape(-1)
        d = d * w.to(exact)
    disagreement = d.sum().reshape(1, 1)
    mass = class_support(decision, w, num_classes, False, exact)  # the decision's support
    nan = z.isnan().any()  # NaN logits: a NaN, not a label
    return torch.where(nan, torch.nan, disagreement), torch.where(nan, torch.nan, mass)


def weighted_disagreement(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int,
                          weights: Distance, temperature: float | Tensor
                          ) -> tuple[Tensor, Tensor]:
    """`(D (1, 1), q (1, C))` of the decision on logits `z` (N, C, ...) against class
    indices `y` (N, ...), weighted by `w` (N, ...): exact at temperature 0, else through
    the fused `_SoftmaxDisagreement` where `is_fused` says so (logits with extra axes are
    first laid out as rows) or the same code under autograd."""
    if z.ndim != 2:
        z, y = z.movedim(1, -1).reshape(-1, num_classes), y.reshape(-1)
        w = None if w is None else w.reshape(-1)
    if is_hard(temperature):
        return _hard(z, y, w, num_classes, weights)
    if is_fused(z, temperature):
        inv_t = 1.0 / cast(float, temperature_scale(temperature))
        return _SoftmaxDisagreement.apply(z, y, w, inv_t, weights)
    return _sums(soft_argmax(z.to(compute_dtype(z.dtype)), temperature, dim=1), y, w, weights)
