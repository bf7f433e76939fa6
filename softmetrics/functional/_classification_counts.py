r"""The decision's counts: true positives and predicted mass per (group, class).

`decision_counts` turns logits into the two counts that carry gradient, `(TP, predicted
mass)`, for the argmax/softmax decision (multiclass) or the threshold/sigmoid decision
(binary, multilabel); `top_k_hits` gives the top-k decision per sample. For a number as
the temperature under autograd they run through fused autograd Functions with
hand-written backwards (`_SoftmaxCounts`, `_SoftmaxSoftCounts`, `_SigmoidCounts`,
`_SoftTopKHits`); otherwise the same counting code runs under autograd, the reference
those Functions are tested against. On the CPU the softmax runs block by block of
samples and pads narrow rows (the sizes are in `softmetrics._tuning`, the measurements on
the documentation's Speed page).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, cast

import torch
from torch import Tensor

from .. import _tuning
from .._relax import (
    compute_dtype,
    is_hard,
    logit,
    soft_argmax,
    soft_step,
    soft_threshold,
    sum_dtype,
    temperature_scale,
)
from .._transforms import is_compiling, is_transformed, plain_backward, recompute_grad
from .._tuning import rows_per_block

__all__ = ["backward_block_rows", "decision_counts", "first_columns", "group_sum",
           "index_counts", "is_fused", "keep_probabilities", "regrad", "small", "softmax_rows",
           "softmax_width", "spend_probabilities", "top_k_hits"]


def group_sum(x: Tensor, samplewise: bool, dtype: torch.dtype | None = None) -> Tensor:
    """Sum an (N, C, ...) tensor into (G, C): G = 1 for global, N for samplewise; in
    `dtype` when given (exact counts: `sum_dtype`)."""
    if samplewise:
        if x.ndim > 2:
            return x.sum(tuple(range(2, x.ndim)), dtype=dtype)
        return x if dtype is None else x.to(dtype)
    return x.sum((0, *range(2, x.ndim)), dtype=dtype).unsqueeze(0)


def _rows(t: Tensor) -> Tensor:
    """`t` as (N, L): one row per sample (also for N = 0)."""
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


def index_counts(values: Tensor, y: Tensor, num_classes: int, samplewise: bool,
                 dtype: torch.dtype | None = None) -> Tensor:
    """Scatter-add `values` (N, ...) into (G, C) by the class index `y` (N, ...), returned
    in `dtype` (default: the dtype of `values`). The sums run one entry at a time: in
    `sum_dtype`, unless `values` are in `dtype` already and are at most
    `_tuning.SMALL_COUNTS_ENTRIES` terms (far below float32's 2^24, where a running sum of
    terms about 1 stops growing), which spares a small step two conversions."""
    n = y.shape[0]
    groups = n if samplewise else 1
    index = _rows(y)
    if samplewise:
        index = index + torch.arange(n, device=y.device).unsqueeze(1) * num_classes
    dtype = values.dtype if dtype is None else dtype
    # compiled as in eager mode, bit for bit (a guard on the size)
    few = values.numel() <= _tuning.SMALL_COUNTS_ENTRIES
    acc = dtype if dtype == values.dtype and few else sum_dtype(values.device)
    out = values.new_zeros(groups * num_classes, dtype=acc)
    index, values = index.reshape(-1), values.reshape(-1).to(acc)
    # the same sums; inside torch.func transforms as a scatter: torch 2.13's compiled CPU
    # kernel of a vmapped `index_add` wrote past its output (`torch.compile(vmap(grad(...)))`
    # of a soft F1 corrupted the heap in about half the runs)
    out = out.scatter_add(0, index, values) if is_transformed() else out.index_add(0, index, values)
    return out.view(groups, num_classes).to(dtype)


def _class_counts(p: Tensor, y: Tensor, w: Tensor | None, samplewise: bool,
                  mass: Tensor | None = None, dtype: torch.dtype | None = None
                  ) -> tuple[Tensor, Tensor]:
    """`(TP, predicted mass)` per (group, class) of a multiclass decision `p` (N, C, ...);
    `mass` is the predicted mass (C,) of 2-D global counts where it is already known.
    `dtype`: sum (and return) the counts in it (exact counts: `sum_dtype`)."""
    p_true = p.gather(1, y.unsqueeze(1)).squeeze(1)
    if w is not None:
        p_true = p_true * w
    if mass is not None:
        pred = mass.unsqueeze(0)
    elif p.ndim == 2 and not samplewise and dtype is None:
        pred = (p.sum(0) if w is None else w @ p).unsqueeze(0)
    else:
        pred = group_sum(p if w is None else p * w.unsqueeze(1), samplewise, dtype)
    return index_counts(p_true, y, p.shape[1], samplewise, dtype), pred


def _label_counts(p: Tensor, y: Tensor, w: Tensor | None, samplewise: bool,
                  soft: bool = False, dtype: torch.dtype | None = None
                  ) -> tuple[Tensor, Tensor]:
    """`(TP, predicted mass)` per (group, class) of a decision `p` against a target `y` of
    its shape: binary/multilabel labels, or (`soft`) probabilities, whose true positives
    are Wang and Blaschko's $(p + y - |p - y|)/2 = \\min(p, y)$ per entry (for 0/1 `y`
    exactly `p * y`, bit for bit, since `p` lies in [0, 1])."""
    if w is not None:
        p = p * w
    tp = torch.minimum(p, y) if soft else p * y
    return group_sum(tp, samplewise, dtype), group_sum(p, samplewise, dtype)


def _soft_label_counts(p: Tensor, y: Tensor, w: Tensor | None, samplewise: bool
                       ) -> tuple[Tensor, Tensor]:
    return _label_counts(p, y, w, samplewise, soft=True)


def _min_sign(p: Tensor, y: Tensor) -> Tensor:
    """`sign(y - p)` in a fresh buffer: the derivative of `min(p, y)` in `p` that autograd
    takes is `(1 + sign(y - p)) / 2`, 1 below `y`, 1/2 at a tie and 0 above (so that the
    gradient of a Dice or Jaccard loss vanishes at `p = y`)."""
    sign = torch.sub(y, p).sign_()  # in the promoted dtype, so a tie is a tie of y and p
    return sign if sign.dtype == p.dtype else sign.to(p.dtype)


def small(z: Tensor) -> bool:
    """Whether the softmax counts of logits `z` take the plain path (one softmax, padded
    as `softmax_width` says, no blocks): at most `_tuning.SMALL_COUNTS_ENTRIES` entries,
    where the fixed cost of each operation outweighs what blocks save, and every size inside
    `torch.compile`, which would unroll the blocks into its graph (minutes of compilation
    at (65536, 1000), and a step slower than eager mode's) and fuses and tiles by itself."""
    return is_compiling() or z.numel() <= _tuning.SMALL_COUNTS_ENTRIES


def softmax_width(z: Tensor) -> int:
    """The row width the softmax of logits `z` runs at: on the CPU, 2-D rows narrower
    than `_tuning.cpu_softmax_width` (one vector of the CPU's float32 kernels) are padded
    with -inf columns up to it (the same probabilities, since exp(-inf) = 0, through
    ATen's vectorised kernel rather than its slow loop for narrow rows; see the Speed
    page), unless that would multiply the row by more than
    `_tuning.CPU_SOFTMAX_MAX_PADDING`, the logits have fewer than
    `_tuning.CPU_SOFTMAX_PAD_ROWS` rows, or `torch.compile` is tracing; other logits keep
    their width."""
    c = z.shape[1]
    # the compiler first: a question about the size would put a guard on it
    if is_compiling() or z.ndim != 2 or z.device.type != "cpu":
        return c
    width = _tuning.cpu_softmax_width(compute_dtype(z.dtype))
    if (0 < c < width and width <= _tuning.CPU_SOFTMAX_MAX_PADDING * c
            and z.shape[0] >= _tuning.CPU_SOFTMAX_PAD_ROWS):
        return width
    return c


def _block_rows(p: Tensor) -> int:
    """Samples per block of the softmax counts: about `_tuning.CPU_BLOCK_ENTRIES` entries
    on the CPU, so that a block stays in cache between the passes over it (the softmax
    and its column sums forward; the row dot product, the temporary and the product
    backward); the whole tensor elsewhere (one kernel per pass)."""
    return rows_per_block(p.shape[0], math.prod(p.shape[1:]), p.device,
                          _tuning.CPU_BLOCK_ENTRIES)


def backward_block_rows(p: Tensor) -> int:
    """Samples per block of the softmax backward: as `_block_rows` on the CPU, blocks of
    at most `_tuning.DEVICE_BLOCK_ENTRIES` entries elsewhere, so that the backward's
    temporary is never a second (N, C) buffer while each block still fills the device;
    `small` probabilities are one block everywhere."""
    if small(p):
        return max(1, p.shape[0])
    if p.device.type == "cpu":
        return _block_rows(p)
    if _tuning.DEVICE_BLOCK_ENTRIES <= 0:
        return max(1, p.shape[0])
    return max(1, _tuning.DEVICE_BLOCK_ENTRIES // max(math.prod(p.shape[1:]), 1))


def _scaled(x: Tensor, scale: float, dtype: torch.dtype) -> Tensor:
    """`x * scale` in `dtype` (one temporary; `x` itself when there is nothing to do)."""
    if scale == 1.0:
        return x.to(dtype)
    return x.to(dtype, copy=True).mul_(scale)


def first_columns(p: Tensor, c: int) -> Tensor:
    """The first `c` columns of probabilities `p` that `softmax_rows` may have padded:
    `p` itself when it has no padding (no view to dispatch)."""
    return p[:, :c] if p.shape[1] != c else p


def softmax_rows(z: Tensor, inv_t: float,
                  each: Callable[[Tensor, int, int], object] | None = None) -> Tensor:
    """`softmax(z * inv_t)` over axis 1 in the compute dtype of `z`, run at the width
    `softmax_width` gives (so the result may have padding columns after the first C).

    With `each`, the softmax runs block by block of samples (`_block_rows`) and
    `each(block, start, stop)` sees each block's probabilities (its first C columns) while
    the block is in cache, to sum them. Half-precision `z` is converted block by block.
    """
    c = z.shape[1]
    width = softmax_width(z)
    dtype = compute_dtype(z.dtype)
    src, scale = z, inv_t
    if width != c:
        src = z.new_full((z.shape[0], width), float("-inf"), dtype=dtype)
        src[:, :c] = z
        if inv_t != 1.0:
            src[:, :c] *= inv_t
        scale = 1.0
    if each is None:
        return torch.softmax(_scaled(src, scale, dtype), dim=1)
    p = torch.empty(src.shape, dtype=dtype, device=src.device)
    n, step = src.shape[0], _block_rows(src)
    for start in range(0, n, step):
        block = p[start:start + step]
        torch._softmax(_scaled(src[start:start + step], scale, dtype), 1, False, out=block)
        each(first_columns(block, c), start, min(n, start + step))
    return p


def keep_probabilities(ctx: Any, z: Tensor, y: Tensor, w: Tensor | None, p_full: Tensor,
                       inv_t: float, samplewise: bool, pred: Tensor) -> Tensor:
    """Keep what the softmax Functions' backward needs, and return the predicted mass as
    it may leave the forward pass: 2-D samplewise counts without weights are the
    probabilities themselves, which the first backward writes over, so they are copied."""
    ctx.save_for_backward(z, y, w)
    ctx.probabilities = p_full  # not saved as a tensor: the first backward writes over it
    ctx.inv_t, ctx.samplewise = inv_t, samplewise
    return pred.clone() if samplewise and z.ndim == 2 and w is None else pred


def spend_probabilities(ctx: Any, z: Tensor) -> Tensor:
    """The probabilities the forward pass kept, for the backward to write the gradient
    over (once: a second backward through a retained graph recomputes them)."""
    p, ctx.probabilities = ctx.probabilities, None
    return softmax_rows(z, ctx.inv_t) if p is None else p


def regrad(ctx: Any, count: Callable[..., tuple[Tensor, Tensor]], g_tp: Tensor,
            g_pred: Tensor) -> tuple[Tensor, None, None, None, None]:
    """The plain backward of a softmax Function (`plain_backward`: a graph being built,
    a transform, batched gradients): `count` (the Function's counting code)
    differentiated under autograd from the logits, which gives the exact second
    derivative and leaves the saved probabilities intact."""
    z, y, w = ctx.saved_tensors

    def counts() -> tuple[Tensor, Tensor]:
        return count(torch.softmax(z.to(compute_dtype(z.dtype)) * ctx.inv_t, dim=1), y, w,
                     ctx.samplewise)

    (grad,) = recompute_grad(counts, (z,), (g_tp, g_pred))
    return grad, None, None, None, None


def _softmax_backward_blocks(p: Tensor, direct: Tensor, g_pred: Tensor,
                             samplewise: bool) -> None:
    """`p <- p (g_pred - sum_c p_c g_c)` over (N, width, ...) probabilities, block by
    block of samples (`backward_block_rows`) with one temporary of a block, where the
    row sums `sum_c p_c g_c` take `direct` (N, 1, ...), each sample's true-class term."""
    width = p.shape[1]
    g_b = g_pred.view(g_pred.shape[0], width, *(1,) * (p.ndim - 2))
    flat = p.ndim == 2 and not samplewise
    n, step = p.shape[0], backward_block_rows(p)
    tmp = p.new_empty((min(step, n), *p.shape[1:]))
    for start in range(0, n, step):
        stop = min(n, start + step)
        block, t = p[start:stop], tmp[:stop - start]
        gb = g_b[start:stop] if samplewise else g_b
        if flat:
            row = torch.addmv(direct[start:stop, 0], block, g_pred[0]).unsqueeze(1)
        else:
            row = torch.mul(block, gb, out=t).sum(1, keepdim=True).add_(direct[start:stop])
        block.mul_(torch.sub(gb, row, out=t))


class _SoftmaxCounts(torch.autograd.Function):
    """`_class_counts(softmax(z / tau))` with a hand-written backward.

    Backward: with upstream gradients $g^T$ (for TP) and $g^P$ (for the predicted mass),
    $\\partial L/\\partial p_{nc} = w_n (g^P_c + [c = y_n] g^T_c)$ and the softmax Jacobian give
    $\\partial L/\\partial z_{nc} = w_n p_{nc}(g_{nc} - \\sum_d p_{nd} g_{nd}) / \\tau$.
    The gradient is written over the probabilities saved by the forward pass, block by
    block of samples (`backward_block_rows`), so a training step allocates one (N, C)
    buffer in all, the probabilities, which become the gradient, and a temporary of one
    block. A second backward through a retained graph finds them spent and recomputes
    them from the logits, which are kept as given (half-precision logits are converted
    block by block, never kept as a float32 copy). When a graph is being built
    (`create_graph=True`) the backward instead differentiates the same counts recomputed
    with autograd from the logits, which leaves the saved probabilities intact and gives
    the exact second derivative.
    """

    apply: ClassVar[Callable[[Tensor, Tensor, Tensor | None, float, bool],
                             tuple[Tensor, Tensor]]]

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, w: Tensor | None, inv_t: float,
                samplewise: bool) -> tuple[Tensor, Tensor]:
        c = z.shape[1]
        mass = None
        if samplewise or z.ndim != 2 or small(z):
            p_full = softmax_rows(z, inv_t)
        else:  # the column sums of the probabilities, block by block while in cache
            total = z.new_zeros(c, dtype=sum_dtype(z.device))  # block sums add up exactly
            p_full = softmax_rows(z, inv_t, lambda block, start, stop: total.add_(
                block.sum(0) if w is None else w[start:stop] @ block))
            mass = total.to(compute_dtype(z.dtype))
        p = first_columns(p_full, c)
        tp, pred = _class_counts(p, y, w, samplewise, mass)
        return tp, keep_probabilities(ctx, z, y, w, p_full, inv_t, samplewise, pred)

    @staticmethod
    def backward(ctx: Any, g_tp: Tensor, g_pred: Tensor
                 ) -> tuple[Tensor, None, None, None, None]:
        if plain_backward(g_tp, g_pred):  # differentiable, spends nothing
            return regrad(ctx, _class_counts, g_tp, g_pred)
        z, y, w = ctx.saved_tensors
        p = spend_probabilities(ctx, z)
        c, width = z.shape[1], p.shape[1]
        if ctx.inv_t != 1.0:
            g_tp, g_pred = g_tp * ctx.inv_t, g_pred * ctx.inv_t
        if width != c:  # the padding columns have probability 0 and gradient 0
            g_pred = torch.nn.functional.pad(g_pred, (0, width - c))
        yi = y.unsqueeze(1)
        if ctx.samplewise:
            g_true = g_tp.gather(1, _rows(y)).view_as(yi)
        else:  # g_tp is (1, C): the flat index of class y is y
            g_true = torch.take(g_tp, yi)
        # dL/dz = p * (g - sum_c g_c p_c) with g = g_pred + [c = y] g_true
        direct = p.gather(1, yi).mul_(g_true)
        if p.ndim == 2 and not ctx.samplewise and backward_block_rows(p) >= p.shape[0]:
            # one block of rows: the fewest operations
            row = torch.addmv(direct.view(-1), p, g_pred.view(-1)).unsqueeze(1)
            p.mul_(torch.sub(g_pred, row))
        else:
            _softmax_backward_blocks(p, direct, g_pred, ctx.samplewise)
        p.scatter_add_(1, yi, direct)
        if w is not None:
            p.mul_(w.unsqueeze(1))
        grad = first_columns(p, c)
        return grad.to(z.dtype), None, None, None, None


class _SoftmaxSoftCounts(torch.autograd.Function):
    """`_label_counts(softmax(z / tau), y, soft=True)` with a hand-written backward: the
    counts of a multiclass decision against target probabilities `y` (N, C, ...),
    $TP_c = \\sum_n \\min(w_{nc} p_{nc}, y_{nc})$ and the predicted mass $\\sum_n w_{nc} p_{nc}$.

    Backward: $g_{nc} = w_{nc} (g^P_c + g^T_c (1 + \\mathrm{sign}(y_{nc} - w_{nc} p_{nc})) / 2)$
    (autograd's slope of the minimum, 1/2 at a tie) and the softmax Jacobian give
    $\\partial L/\\partial z_{nc} = p_{nc}(g_{nc} - \\sum_d p_{nd} g_{nd}) / \\tau$, written over
    the saved probabilities block by block of samples as in `_SoftmaxCounts`: one (N, C)
    buffer in all and two temporaries of one block. A second backward through a retained
    graph recomputes the probabilities; when a graph is being built the backward
    differentiates the counts recomputed with autograd.
    """

    apply: ClassVar[Callable[[Tensor, Tensor, Tensor | None, float, bool],
                             tuple[Tensor, Tensor]]]

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, w: Tensor | None, inv_t: float,
                samplewise: bool) -> tuple[Tensor, Tensor]:
        c = z.shape[1]
        if samplewise or small(z):
            p_full = softmax_rows(z, inv_t)
            p = first_columns(p_full, c)
            tp, pred = _label_counts(p, y, w, samplewise, soft=True)
        else:  # both sums block by block, while each block is in cache
            sums = z.new_zeros((2, 1, c), dtype=sum_dtype(z.device))

            def add(block: Tensor, start: int, stop: int) -> None:
                pw = block if w is None else block * w[start:stop]
                sums[1].add_(group_sum(pw, False))
                sums[0].add_(group_sum(torch.minimum(pw, y[start:stop]), False))

            p_full = softmax_rows(z, inv_t, add)
            tp, pred = sums.to(compute_dtype(z.dtype))
        return tp, keep_probabilities(ctx, z, y, w, p_full, inv_t, samplewise, pred)

    @staticmethod
    def backward(ctx: Any, g_tp: Tensor, g_pred: Tensor
                 ) -> tuple[Tensor, None, None, None, None]:
        if plain_backward(g_tp, g_pred):  # differentiable, spends nothing
            return regrad(ctx, _soft_label_counts, g_tp, g_pred)
        z, y, w = ctx.saved_tensors
        p_full, c = spend_probabilities(ctx, z), z.shape[1]
        # the padding columns (narrow rows on the CPU) have probability 0 and gradient 0
        p = first_columns(p_full, c)
        shape = (g_tp.shape[0], c, *(1,) * (p.ndim - 2))
        half = g_tp.view(shape) * (0.5 * ctx.inv_t)
        base = g_pred.view(shape) * ctx.inv_t + half
        n, step = p.shape[0], backward_block_rows(p)
        tmp = p.new_empty((2, min(step, n), *p.shape[1:]))
        for start in range(0, n, step):
            stop = min(n, start + step)
            block, t, u = p[start:stop], tmp[0, :stop - start], tmp[1, :stop - start]
            yb, wb = y[start:stop], None if w is None else w[start:stop]
            pw = block if wb is None else torch.mul(block, wb, out=t)
            g = torch.sub(yb, pw, out=t).sign_()  # the slope of min(p w, y), as a sign
            if ctx.samplewise:
                g.mul_(half[start:stop]).add_(base[start:stop])
            else:
                g.mul_(half).add_(base)
            if wb is not None:
                g.mul_(wb)
            row = torch.mul(block, g, out=u).sum(1, keepdim=True)
            block.mul_(g.sub_(row))
        return p.to(z.dtype), None, None, None, None


class _SigmoidCounts(torch.autograd.Function):
    """`_label_counts(sigmoid((z - b) / tau))` with a hand-written backward: one fresh
    (N, C) buffer holds the upstream gradient and, in place, the gradient of the logits.
    The logits are kept as given (half precision is converted in the forward pass); when
    a graph is being built the backward differentiates the counts recomputed from them."""

    apply: ClassVar[Callable[[Tensor, Tensor, Tensor | None, float, float, bool, bool],
                             tuple[Tensor, Tensor]]]

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, w: Tensor | None, shift: float,
                inv_t: float, samplewise: bool, soft: bool) -> tuple[Tensor, Tensor]:
        x = z.to(compute_dtype(z.dtype))
        if shift == 0.0 and inv_t == 1.0:
            p = torch.sigmoid(x) if x is z else x.sigmoid_()
        else:
            p = (torch.sub(x, shift) if x is z else x.sub_(shift)).mul_(inv_t).sigmoid_()
        ctx.save_for_backward(p, y, w, z)
        ctx.shift, ctx.inv_t, ctx.samplewise, ctx.soft = shift, inv_t, samplewise, soft
        return _label_counts(p, y, w, samplewise, soft)

    @staticmethod
    def backward(ctx: Any, g_tp: Tensor, g_pred: Tensor
                 ) -> tuple[Tensor, None, None, None, None, None, None]:
        p, y, w, z = ctx.saved_tensors
        if plain_backward(g_tp, g_pred):  # differentiable
            (grad,) = recompute_grad(lambda: _label_counts(
                torch.sigmoid((z.to(p.dtype) - ctx.shift) * ctx.inv_t), y, w, ctx.samplewise,
                ctx.soft), (z,), (g_tp, g_pred))
            return grad, None, None, None, None, None, None
        shape = (g_tp.shape[0], p.shape[1], *(1,) * (p.ndim - 2))
        scale = ctx.inv_t
        if ctx.soft:  # d TP / d p = (1 + sign(y - p w)) / 2, the slope of min(p w, y)
            half = g_tp.view(shape) * (0.5 * scale)
            g = _min_sign(p if w is None else p * w, y)
            torch.addcmul(g_pred.view(shape) * scale + half, g, half, out=g)  # one pass
        else:  # d TP / d p = y for labels
            g = torch.addcmul(g_pred.view(shape) * scale, y, g_tp.view(shape) * scale)
        if w is not None:
            g.mul_(w)
        # in place: g * p * (1 - p) over the fresh buffer g
        grad = torch.ops.aten.sigmoid_backward.grad_input(g, p, grad_input=g)
        return grad.to(z.dtype), None, None, None, None, None, None


class _SoftTopKHits(torch.autograd.Function):
    """Soft top-k hits `sigmoid((k - 1/2 - r) / tau)`, `r = sum_j sigmoid((z_j - z_y) / tau) - 1/2`,
    with one fused backward pass over the saved pairwise sigmoids (when a graph is being
    built, the backward differentiates the hits recomputed from the logits instead)."""

    apply: ClassVar[Callable[[Tensor, Tensor, int, float], Tensor]]

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, k: int, inv_t: float) -> Tensor:
        yi = y.unsqueeze(1)
        s = torch.sub(z, z.gather(1, yi)).mul_(inv_t).sigmoid_()
        hit = torch.sigmoid((k - 0.5 - (s.sum(1) - 0.5)) * inv_t)
        ctx.save_for_backward(s, y, hit, z)
        ctx.k, ctx.inv_t = k, inv_t
        return hit

    @staticmethod
    def backward(ctx: Any, g_hit: Tensor) -> tuple[Tensor, None, None, None]:
        s, y, hit, z = ctx.saved_tensors
        yi = y.unsqueeze(1)
        if plain_backward(g_hit):  # differentiable
            def hits() -> Tensor:
                rank = torch.sigmoid((z - z.gather(1, yi)) * ctx.inv_t).sum(1) - 0.5
                return torch.sigmoid((ctx.k - 0.5 - rank) * ctx.inv_t)

            (grad,) = recompute_grad(hits, (z,), g_hit)
            return grad, None, None, None
        # d hit / d rank = -h (1 - h) / tau; d rank / d z_j = s_j (1 - s_j) / tau (j != y)
        a = torch.ops.aten.sigmoid_backward(g_hit, hit).mul_(-ctx.inv_t * ctx.inv_t)
        grad = torch.ops.aten.sigmoid_backward(a.unsqueeze(1).expand_as(s), s)
        at_true = grad.gather(1, yi) - grad.sum(1, keepdim=True)
        return grad.scatter_(1, yi, at_true), None, None, None


def is_fused(z: Tensor, temperature: float | Tensor) -> bool:
    """Whether the soft counts run through a fused autograd Function: a number as the
    temperature (> 0) and a graph being built to `z`, outside `torch.func` transforms
    (`is_transformed`). A tensor temperature, and the hard decision, compose the same
    counting code with autograd instead."""
    return (not is_hard(temperature) and not isinstance(temperature, Tensor)
            and torch.is_grad_enabled() and z.requires_grad and not is_transformed())


def top_k_hits(z: Tensor, y: Tensor, k: int, temperature: float | Tensor) -> Tensor:
    """Hard or soft hit `[rank of the true class < k]` per sample, shape (N, ...)."""
    if is_fused(z, temperature):
        return _SoftTopKHits.apply(z, y, k, 1.0 / cast(float, temperature_scale(temperature)))
    true_score = z.gather(1, y.unsqueeze(1))
    rank = soft_step(z - true_score, temperature).sum(1) - 0.5
    return soft_step(k - 0.5 - rank, temperature)


def decision_counts(z: Tensor, y: Tensor, w: Tensor | None, *, task: str,
                    temperature: float | Tensor, threshold: float, samplewise: bool,
                    soft: bool = False) -> tuple[Tensor, Tensor]:
    """`(TP, predicted mass)` of the (hard or soft) decision on `z`, each (G, C): through
    the fused autograd Functions where `is_fused` says so, else the same counting code under
    autograd (the reference the Functions are tested against). `soft`: `y` holds target
    probabilities of `z`'s shape."""
    fused = is_fused(z, temperature)
    inv_t = 1.0 / cast(float, temperature_scale(temperature)) if fused else 1.0
    if task == "multiclass" and fused:  # converts half precision by blocks
        counts = _SoftmaxSoftCounts if soft else _SoftmaxCounts
        return counts.apply(z, y, w, inv_t, samplewise)
    if task != "multiclass" and fused:  # converts half precision, keeps the logits as given
        return _SigmoidCounts.apply(z, y, w, logit(threshold), inv_t, samplewise, soft)
    z = z.to(compute_dtype(z.dtype))
    exact = sum_dtype(z.device) if is_hard(temperature) else None  # integers, summed exactly
    if task == "multiclass" and not soft:
        return _class_counts(soft_argmax(z, temperature, dim=1), y, w, samplewise,
                             dtype=exact)
    p = soft_argmax(z, temperature, dim=1) if task == "multiclass" else soft_threshold(
        z, temperature, threshold)
    return _label_counts(p, y, w, samplewise, soft, dtype=exact)
