r"""Classification surrogates: one statistics function, three formulas.

Every classification metric here is a formula over the per-class counts
$TP_c, FP_c, FN_c, TN_c$ of a decision $p$ against the target $y$:

$$
TP_c = \sum_n w_n p_{nc} y_{nc},\quad FP_c = \sum_n w_n p_{nc}(1 - y_{nc}),\quad
FN_c = \sum_n w_n (1 - p_{nc}) y_{nc},\quad TN_c = \sum_n w_n (1 - p_{nc})(1 - y_{nc}),
$$

with $w_n = 0$ for entries whose target equals `ignore_index`. The decision $p$ is the
exact one at `temperature=0` (one-hot argmax, or a threshold) and a softmax or sigmoid at
`temperature > 0` (see `softmetrics._relax`). The formulas:

- **Tversky** $TP / (TP + \alpha FP + \beta FN)$ covers precision ($\alpha=1,\beta=0$),
  recall ($0, 1$), F-beta ($\alpha = 1/(1+\beta^2)$, $\beta^2/(1+\beta^2)$), Dice = F1
  ($1/2, 1/2$) and Jaccard/IoU ($1, 1$);
- **accuracy** (and top-k accuracy, whose decision is "the true class ranks in the top k");
- **Matthews correlation** (Gorodkin's $R_K$), from the same counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import _checks
from .._relax import (
    as_tensor_on,
    compute_dtype,
    full_precision,
    is_hard,
    logit,
    rows_per_block,
    soft_argmax,
    soft_step,
    soft_threshold,
)

__all__ = [
    "StatScores",
    "soft_accuracy",
    "soft_f1_score",
    "soft_fbeta_score",
    "soft_jaccard_index",
    "soft_matthews_corrcoef",
    "soft_precision",
    "soft_recall",
    "soft_stat_scores",
    "soft_top_k_accuracy",
    "soft_tversky_index",
]

Task = Literal["binary", "multiclass", "multilabel"]
Average = Literal["micro", "macro", "weighted", "none"]
MultidimAverage = Literal["global", "samplewise"]

TASKS = ("binary", "multiclass", "multilabel")
AVERAGES = ("micro", "macro", "weighted", "none")
MULTIDIM_AVERAGES = ("global", "samplewise")


class StatScores(NamedTuple):
    """Soft (or, at temperature 0, exact) per-class counts, each of shape `(C,)` for
    `multidim_average="global"` or `(N, C)` for `"samplewise"` (`C = 1` for binary)."""

    tp: Tensor
    fp: Tensor
    fn: Tensor
    tn: Tensor

    @property
    def support(self) -> Tensor:
        """Number of (non-ignored) entries whose target is the class: `tp + fn`."""
        return self.tp + self.fn


# ---------------------------------------------------------------------------------------
# options and inputs


def check_options(fn: str, *, task: str, num_classes: int | None, average: str,
                  temperature: float | Tensor, threshold: float, ignore_index: int | None,
                  multidim_average: str, zero_division: float) -> None:
    """Validate the options shared by every classification function (no tensor data read).

    Modules call this once in `__init__`; the functions call it on every call.
    """
    _checks.check_option(fn, "task", task, TASKS)
    _checks.check_option(fn, "average", average, AVERAGES)
    _checks.check_option(fn, "multidim_average", multidim_average, MULTIDIM_AVERAGES)
    _checks.check_temperature(fn, temperature)
    _checks.check_number(fn, "threshold", threshold, low=0.0, high=1.0, low_open=True,
                         high_open=True)
    _checks.check_number(fn, "zero_division", zero_division, low=0.0, high=1.0)
    if ignore_index is not None:
        _checks.check_int(fn, "ignore_index", ignore_index)
    _checks.check_num_classes(fn, task, num_classes)


def _format(fn: str, input: Tensor, target: Tensor, *, task: str, num_classes: int | None,
            ignore_index: int | None, validate_args: bool
            ) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """Check shapes and dtypes; return `(z, y, w, C)` with a class axis 1 everywhere.

    `z` is the input as (N, C, ...) (binary: C = 1) in its own dtype: the statistics
    convert it to the compute dtype (the fused softmax block by block, so that no float32
    copy of half-precision logits is kept for backward); `y` is the target: class indices
    (N, ...) for multiclass, 0/1 floats (compute dtype) shaped like `z` otherwise, with
    ignored entries set to 0; `w` is the 0/1 weight of each entry (`None` when nothing is
    ignored) shaped like `y`, in the compute dtype.
    """
    _checks.check_task_inputs(fn, input, target, task=task, num_classes=num_classes,
                              ignore_index=ignore_index, validate_args=validate_args)
    dtype = compute_dtype(input.dtype)
    z = input
    w = None
    y = target
    if ignore_index is not None:
        keep = target != ignore_index
        w = keep.to(dtype)
        y = torch.where(keep, target, torch.zeros((), dtype=target.dtype, device=target.device))
    if task == "multiclass":
        y = y.long()
    else:
        y = y.to(dtype)
        if task == "binary":
            z, y = z.unsqueeze(1), y.unsqueeze(1)
            w = None if w is None else w.unsqueeze(1)
    return z, y, w, int(z.shape[1])


# ---------------------------------------------------------------------------------------
# statistics: one function for every metric


def _group_sum(x: Tensor, samplewise: bool) -> Tensor:
    """Sum an (N, C, ...) tensor into (G, C): G = 1 for global, N for samplewise."""
    if samplewise:
        return x.sum(tuple(range(2, x.ndim))) if x.ndim > 2 else x
    return x.sum((0, *range(2, x.ndim))).unsqueeze(0)


def _rows(t: Tensor) -> Tensor:
    """`t` as (N, L): one row per sample (also for N = 0)."""
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


def _index_counts(values: Tensor, y: Tensor, num_classes: int, samplewise: bool) -> Tensor:
    """Scatter-add `values` (N, ...) into (G, C) by the class index `y` (N, ...)."""
    n = y.shape[0]
    groups = n if samplewise else 1
    index = _rows(y)
    if samplewise:
        index = index + torch.arange(n, device=y.device).unsqueeze(1) * num_classes
    out = values.new_zeros(groups * num_classes)
    return out.index_add(0, index.reshape(-1), values.reshape(-1)).view(groups, num_classes)


def _class_counts(p: Tensor, y: Tensor, w: Tensor | None, samplewise: bool,
                  mass: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """`(TP, predicted mass)` per (group, class) of a multiclass decision `p` (N, C, ...);
    `mass` is the predicted mass (C,) of 2-D global counts where it is already known."""
    p_true = p.gather(1, y.unsqueeze(1)).squeeze(1)
    if w is not None:
        p_true = p_true * w
    if mass is not None:
        pred = mass.unsqueeze(0)
    elif p.ndim == 2 and not samplewise:
        pred = (p.sum(0) if w is None else w @ p).unsqueeze(0)
    else:
        pred = _group_sum(p if w is None else p * w.unsqueeze(1), samplewise)
    return _index_counts(p_true, y, p.shape[1], samplewise), pred


def _label_counts(p: Tensor, y: Tensor, w: Tensor | None, samplewise: bool
                  ) -> tuple[Tensor, Tensor]:
    """`(TP, predicted mass)` per (group, class) of a binary/multilabel decision `p`."""
    if w is not None:
        p = p * w
    return _group_sum(p * y, samplewise), _group_sum(p, samplewise)


# On CPU, ATen's row softmax (and log-softmax) over fewer than 16 classes runs a scalar
# loop about 9x slower per row than its vectorised kernel for 16 classes (measured with
# torch 2.13 on x86-64: 513 us for (4096, 10) against 57 us for (4096, 16)). Padding the
# rows with -inf columns up to 16 gives the same probabilities (exp(-inf) = 0) through the
# fast kernel. Set to 0 to disable; the tests compare both paths.
_CPU_SOFTMAX_MIN_WIDTH = 16


def _padded_width(z: Tensor) -> int:
    """The row width to run the softmax of 2-D CPU logits at (their own width if none)."""
    c = z.shape[1]
    if z.ndim == 2 and z.device.type == "cpu" and 0 < c < _CPU_SOFTMAX_MIN_WIDTH:
        return _CPU_SOFTMAX_MIN_WIDTH
    return c


# The softmax counts run over blocks of whole samples: on CPU a block holds about 2^19
# entries (2 MiB in float32), so it stays in cache between the passes over it (the softmax
# and its column sums forward; the row dot product, the temporary and the product
# backward), while the Python loop over blocks stays short. Measured with torch 2.13 on 2
# x86-64 cores at (4096, 1000), forward + backward as a multiple of F.cross_entropy
# (median of 8 paired rounds, with glibc told never to return memory so that neither side
# pays page faults): 1.23x, 1.21x, 1.16x and 1.19x for blocks of 2^17, 2^18, 2^19 and
# 2^20 entries. One block over the whole tensor took 4.7x with the default allocator: its
# (N, C) temporary was mapped afresh, about 7000 page faults, at every step. On other
# devices the forward pass is one block (one kernel per pass), and the backward pass runs
# over blocks of at most _DEVICE_BLOCK_ENTRIES entries (64 MiB in float32), so that its
# temporary is never a second (N, C) buffer for large inputs while each block still fills
# the device. Set either to 0 for one block; the tests run both.
_CPU_BLOCK_ENTRIES = 1 << 19
_DEVICE_BLOCK_ENTRIES = 1 << 24


def _block_rows(p: Tensor) -> int:
    """Samples per block of the softmax counts."""
    return rows_per_block(p.shape[0], math.prod(p.shape[1:]), p.device, _CPU_BLOCK_ENTRIES)


def _backward_block_rows(p: Tensor) -> int:
    """Samples per block of the softmax backward: as `_block_rows` on the CPU, blocks of
    at most `_DEVICE_BLOCK_ENTRIES` entries elsewhere."""
    if p.device.type == "cpu":
        return _block_rows(p)
    per_row = max(math.prod(p.shape[1:]), 1)
    if _DEVICE_BLOCK_ENTRIES <= 0:
        return max(1, p.shape[0])
    return max(1, _DEVICE_BLOCK_ENTRIES // per_row)


def _scaled(x: Tensor, scale: float, dtype: torch.dtype) -> Tensor:
    """`x * scale` in `dtype` (one temporary; `x` itself when there is nothing to do)."""
    if scale == 1.0:
        return x.to(dtype)
    return x.to(dtype, copy=True).mul_(scale)


def _softmax_rows(z: Tensor, inv_t: float, w: Tensor | None = None, *, mass: bool = False
                  ) -> tuple[Tensor, Tensor | None]:
    """`softmax(z * inv_t)` over axis 1 in the compute dtype of `z`, run at the padded
    width (see `_padded_width`).

    With `mass=True` and 2-D logits it also returns the column sums of the probabilities
    (weighted by `w`), taken block by block while each block is in cache; otherwise the
    second result is `None`. Half-precision `z` is converted block by block.
    """
    c, width = z.shape[1], _padded_width(z)
    dtype = compute_dtype(z.dtype)
    src, scale = z, inv_t
    if width != c:
        src = z.new_full((z.shape[0], width), float("-inf"), dtype=dtype)
        src[:, :c] = z
        if inv_t != 1.0:
            src[:, :c] *= inv_t
        scale = 1.0
    if not (mass and z.ndim == 2):
        return torch.softmax(_scaled(src, scale, dtype), dim=1), None
    p = torch.empty(src.shape, dtype=dtype, device=src.device)
    total = p.new_zeros(width)
    n, step = src.shape[0], _block_rows(src)
    for start in range(0, n, step):
        block = p[start:start + step]
        torch._softmax(_scaled(src[start:start + step], scale, dtype), 1, False, out=block)
        total.add_(block.sum(0) if w is None else w[start:start + step] @ block)
    return p, total


class _SoftmaxCounts(torch.autograd.Function):
    """`_class_counts(softmax(z / tau))` with a hand-written backward.

    Backward: with upstream gradients $g^T$ (for TP) and $g^P$ (for the predicted mass),
    $\\partial L/\\partial p_{nc} = w_n (g^P_c + [c = y_n] g^T_c)$ and the softmax Jacobian give
    $\\partial L/\\partial z_{nc} = w_n p_{nc}(g_{nc} - \\sum_d p_{nd} g_{nd}) / \\tau$.
    The gradient is written over the probabilities saved by the forward pass, block by
    block of samples (`_backward_block_rows`), so a training step allocates one (N, C)
    buffer in all, the probabilities, which become the gradient, and a temporary of one
    block. A second backward through a retained graph finds them spent and recomputes
    them from the logits, which are kept as given (half-precision logits are converted
    block by block, never kept as a float32 copy).
    """

    @staticmethod
    def forward(ctx, z: Tensor, y: Tensor, w: Tensor | None, inv_t: float,  # type: ignore[override]
                samplewise: bool) -> tuple[Tensor, Tensor]:
        c = z.shape[1]
        p_full, mass = _softmax_rows(z, inv_t, w, mass=not samplewise)
        ctx.save_for_backward(z, y, w)
        ctx.probabilities = p_full  # not saved as a tensor: the first backward writes over it
        ctx.inv_t, ctx.samplewise = inv_t, samplewise
        p = p_full[:, :c] if p_full.shape[1] != c else p_full
        tp, pred = _class_counts(p, y, w, samplewise, None if mass is None else mass[:c])
        if samplewise and z.ndim == 2 and w is None:
            pred = pred.clone()  # these (N, C) counts are the probabilities themselves
        return tp, pred

    @staticmethod
    @once_differentiable
    def backward(ctx, g_tp: Tensor, g_pred: Tensor):  # type: ignore[override]
        z, y, w = ctx.saved_tensors
        p, ctx.probabilities = ctx.probabilities, None
        if p is None:
            p, _ = _softmax_rows(z, ctx.inv_t)
        c, width = z.shape[1], p.shape[1]
        if ctx.inv_t != 1.0:
            g_tp, g_pred = g_tp * ctx.inv_t, g_pred * ctx.inv_t
        if width != c:  # the padding columns have probability 0 and gradient 0
            g_pred = torch.nn.functional.pad(g_pred, (0, width - c))
        yi = y.unsqueeze(1)
        if ctx.samplewise:
            g_true = g_tp.gather(1, _rows(y)).view_as(yi)
        else:
            g_true = g_tp[0][yi]
        # dL/dz = p * (g - sum_c g_c p_c) with g = g_pred + [c = y] g_true
        direct = p.gather(1, yi).mul_(g_true)
        g_b = g_pred.view(g_pred.shape[0], width, *(1,) * (p.ndim - 2))
        flat = p.ndim == 2 and not ctx.samplewise
        n, step = p.shape[0], _backward_block_rows(p)
        tmp = p.new_empty((min(step, n), *p.shape[1:]))
        for start in range(0, n, step):
            stop = min(n, start + step)
            block, t = p[start:stop], tmp[:stop - start]
            gb = g_b[start:stop] if ctx.samplewise else g_b
            if flat:
                row = torch.addmv(direct[start:stop, 0], block, g_pred[0]).unsqueeze(1)
            else:
                row = torch.mul(block, gb, out=t).sum(1, keepdim=True).add_(
                    direct[start:stop])
            block.mul_(torch.sub(gb, row, out=t))
        p.scatter_add_(1, yi, direct)
        if w is not None:
            p.mul_(w.unsqueeze(1))
        grad = p[:, :c] if width != c else p
        return grad.to(z.dtype), None, None, None, None


class _SigmoidCounts(torch.autograd.Function):
    """`_label_counts(sigmoid((z - b) / tau))` with a hand-written backward: one fresh
    (N, C) buffer holds the upstream gradient and, in place, the gradient of the logits."""

    @staticmethod
    def forward(ctx, z: Tensor, y: Tensor, w: Tensor | None, shift: float,  # type: ignore[override]
                inv_t: float, samplewise: bool) -> tuple[Tensor, Tensor]:
        if shift == 0.0 and inv_t == 1.0:
            p = torch.sigmoid(z)
        else:
            p = torch.sub(z, shift).mul_(inv_t).sigmoid_()
        ctx.save_for_backward(p, y, w)
        ctx.inv_t, ctx.samplewise = inv_t, samplewise
        return _label_counts(p, y, w, samplewise)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_tp: Tensor, g_pred: Tensor):  # type: ignore[override]
        p, y, w = ctx.saved_tensors
        shape = (g_tp.shape[0], p.shape[1], *(1,) * (p.ndim - 2))
        scale = ctx.inv_t
        g = torch.addcmul(g_pred.view(shape) * scale, y, g_tp.view(shape) * scale)
        if w is not None:
            g.mul_(w)
        # in place: g * p * (1 - p) over the fresh buffer g
        return (torch.ops.aten.sigmoid_backward.grad_input(g, p, grad_input=g),
                None, None, None, None, None)


class _SoftTopKHits(torch.autograd.Function):
    """Soft top-k hits `sigmoid((k - 1/2 - r) / tau)`, `r = sum_j sigmoid((z_j - z_y) / tau) - 1/2`,
    with one fused backward pass over the saved pairwise sigmoids."""

    @staticmethod
    def forward(ctx, z: Tensor, y: Tensor, k: int, inv_t: float) -> Tensor:  # type: ignore[override]
        yi = y.unsqueeze(1)
        s = torch.sub(z, z.gather(1, yi)).mul_(inv_t).sigmoid_()
        hit = torch.sigmoid((k - 0.5 - (s.sum(1) - 0.5)) * inv_t)
        ctx.save_for_backward(s, y, hit)
        ctx.inv_t = inv_t
        return hit

    @staticmethod
    @once_differentiable
    def backward(ctx, g_hit: Tensor):  # type: ignore[override]
        s, y, hit = ctx.saved_tensors
        yi = y.unsqueeze(1)
        # d hit / d rank = -h (1 - h) / tau; d rank / d z_j = s_j (1 - s_j) / tau (j != y)
        a = torch.ops.aten.sigmoid_backward(g_hit, hit).mul_(-ctx.inv_t * ctx.inv_t)
        grad = torch.ops.aten.sigmoid_backward(a.unsqueeze(1).expand_as(s), s)
        at_true = grad.gather(1, yi) - grad.sum(1, keepdim=True)
        return grad.scatter_(1, yi, at_true), None, None, None


def _top_k_hits(z: Tensor, y: Tensor, k: int, temperature: float | Tensor) -> Tensor:
    """Hard or soft hit `[rank of the true class < k]` per sample, shape (N, ...)."""
    if (not is_hard(temperature) and not isinstance(temperature, Tensor)
            and torch.is_grad_enabled() and z.requires_grad):
        return _SoftTopKHits.apply(z, y, k, 1.0 / temperature)
    true_score = z.gather(1, y.unsqueeze(1))
    rank = soft_step(z - true_score, temperature).sum(1) - 0.5
    return soft_step(k - 0.5 - rank, temperature)


def _top_k_counts(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, k: int,
                  temperature: float | Tensor, samplewise: bool) -> _Counts:
    """Counts whose true positives are the top-k hits (only TP and support are read)."""
    hit = _top_k_hits(z.to(compute_dtype(z.dtype)), y, k, temperature)
    if w is not None:
        hit = hit * w
    tp = _index_counts(hit, y, num_classes, samplewise)
    with torch.no_grad():
        ones = torch.ones((), dtype=hit.dtype, device=hit.device).expand(hit.shape)
        support = _index_counts(ones if w is None else w, y, num_classes, samplewise)
    if is_hard(temperature):
        tp, support = tp.double(), support.double()
    return _Counts(tp, tp, support, 0.0)


def _decision_counts(z: Tensor, y: Tensor, w: Tensor | None, *, task: str,
                     temperature: float | Tensor, threshold: float, samplewise: bool
                     ) -> tuple[Tensor, Tensor]:
    """`(TP, predicted mass)` of the (hard or soft) decision on `z`.

    The soft decision with a number as temperature runs through the fused autograd
    Functions; a tensor temperature (or the hard decision) composes the same counting
    code with autograd, which is also the reference the Functions are tested against.
    """
    fused = (not is_hard(temperature) and not isinstance(temperature, Tensor)
             and torch.is_grad_enabled() and z.requires_grad)
    if task == "multiclass" and fused:  # converts half precision block by block
        return _SoftmaxCounts.apply(z, y, w, 1.0 / temperature, samplewise)
    z = z.to(compute_dtype(z.dtype))
    if task == "multiclass":
        return _class_counts(soft_argmax(z, temperature, dim=1), y, w, samplewise)
    if fused:
        return _SigmoidCounts.apply(z, y, w, logit(threshold), 1.0 / temperature, samplewise)
    return _label_counts(soft_threshold(z, temperature, threshold), y, w, samplewise)


class _Counts(NamedTuple):
    """The statistics every formula reads, per (group, class): soft true positives, soft
    predicted mass (TP + FP), support (TP + FN, no gradient) and the number of counted
    entries (TP + FP + FN + TN: a (G, 1) or (G, C) tensor, or a number)."""

    tp: Tensor
    pred: Tensor
    support: Tensor
    total: Tensor | float

    def micro(self) -> _Counts:
        """Counts pooled over the class axis."""
        total = self.total
        if isinstance(total, Tensor):
            total = total.expand_as(self.tp).sum(-1, keepdim=True)
        else:
            total = total * self.tp.shape[-1]
        return _Counts(*(t.sum(-1, keepdim=True) for t in self[:3]), total)

    def stat_scores(self) -> StatScores:
        fn = self.support - self.tp
        return StatScores(self.tp, self.pred - self.tp, fn, self.total - self.pred - fn)


def _statistics(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, *, task: str,
                temperature: float | Tensor, threshold: float, samplewise: bool) -> _Counts:
    """The counts of the decision on `z` against `y`, each (G, C).

    At temperature 0 they are exact integers, returned in float64 so that the formulas of
    the exact metric round like scikit-learn's; soft counts stay in the compute dtype.
    """
    with full_precision(z.device):  # autocast would round the weighted sums to half
        tp, pred = _decision_counts(z, y, w, task=task, temperature=temperature,
                                    threshold=threshold, samplewise=samplewise)
    with torch.no_grad():
        if task == "multiclass":
            ones = torch.ones((), dtype=tp.dtype, device=tp.device).expand(y.shape)
            support = _index_counts(ones if w is None else w, y, num_classes, samplewise)
            if w is None:
                total: Tensor | float = float(math.prod(y.shape[1:]) if samplewise
                                              else y.numel())
            else:
                total = _group_sum(w.unsqueeze(1), samplewise)
        else:
            support = _group_sum(y if w is None else y * w, samplewise)
            if w is None:
                per_sample = math.prod(y.shape[2:])
                total = float(per_sample if samplewise else y.shape[0] * per_sample)
            else:
                total = _group_sum(w.expand_as(y), samplewise)
    if is_hard(temperature) and tp.device.type != "mps":
        tp, pred, support = tp.double(), pred.double(), support.double()
        if isinstance(total, Tensor):
            total = total.double()
    return _Counts(tp, pred, support, total)


# ---------------------------------------------------------------------------------------
# formulas: each written once, over the statistics


def _divide(num: Tensor, den: Tensor, zero_division: float) -> Tensor:
    """`num / den`, with `zero_division` where `den == 0` (no NaN in values or gradients).

    Every formula here has `0 <= num <= den` where it divides, so the clamp only ever
    touches the 0/0 entries that `zero_division` replaces.
    """
    tiny = torch.finfo(den.dtype).tiny
    return torch.where(den > 0, num / den.clamp_min(tiny), zero_division)


def _tversky(c: _Counts, alpha: float, beta: float, zero_division: float) -> Tensor:
    """TP / (TP + alpha FP + beta FN), with FP = pred - TP and FN = support - TP."""
    den = (1.0 - alpha - beta) * c.tp + alpha * c.pred + beta * c.support
    return _divide(c.tp, den, zero_division)


def _mcc(trace: Tensor, total: Tensor | float, pred: Tensor, true: Tensor,
         zero_division: float) -> Tensor:
    """Gorodkin's R_K from the trace, total, and column (`pred`) and row (`true`) sums of a
    confusion matrix whose class axis is the last one; one value per group."""
    cov_pt = trace * total - (pred * true).sum(-1)
    cov_pp = total * total - (pred * pred).sum(-1)
    cov_tt = total * total - (true * true).sum(-1)
    den = cov_pp * cov_tt
    tiny = torch.finfo(den.dtype).tiny
    return torch.where(den > 0, cov_pt * torch.rsqrt(den.clamp_min(tiny)), zero_division)


def _multiclass_mcc(c: _Counts, zero_division: float) -> Tensor:
    total = c.total if not isinstance(c.total, Tensor) else c.total[..., 0]
    return _mcc(c.tp.sum(-1), total, c.pred, c.support, zero_division)


def _binary_mcc(c: _Counts, zero_division: float) -> Tensor:
    """Per-class one-vs-rest MCC: R_K of the 2 x 2 table (negatives, positives)."""
    tn = c.total - c.pred - c.support + c.tp
    neg_pred, neg_true = c.total - c.pred, c.total - c.support
    return _mcc(c.tp + tn, c.total, torch.stack([neg_pred, c.pred], -1),
                torch.stack([neg_true, c.support], -1), zero_division)


def _average(score: Tensor, support: Tensor, average: str, zero_division: float) -> Tensor:
    """Reduce per-class scores (G, C) over classes: macro, weighted by support, or none."""
    if average == "macro":
        return score.mean(-1)
    if average == "weighted":
        return _divide((score * support).sum(-1), support.sum(-1), zero_division)
    return score


def _finish(value: Tensor, task: str, samplewise: bool, out_dtype: torch.dtype) -> Tensor:
    """Drop the group axis for global results and the class axis for binary ones."""
    if task == "binary" and value.ndim == 2:
        value = value.squeeze(-1)
    if not samplewise:
        value = value.squeeze(0)
    return value.to(out_dtype)


class _Prepared(NamedTuple):
    counts: _Counts
    task: str
    samplewise: bool
    out_dtype: torch.dtype


CountsHook = Callable[[_Counts], _Counts]


def _prepare(fn: str, input: Tensor, target: Tensor, *, task: str, num_classes: int | None,
             average: str, temperature: float | Tensor, threshold: float,
             ignore_index: int | None, multidim_average: str, zero_division: float,
             validate_args: bool, top_k: int | None = None,
             hook: CountsHook | None = None, check: bool = True) -> _Prepared:
    """Validate, format and count: the shared first half of every classification metric.

    `top_k` counts top-k hits as the true positives instead of the argmax decision;
    `hook` maps the counts before any formula sees them (Modules use it to sum counts
    across processes and to mix in running statistics). `check=False` skips the option
    checks, for Modules that ran them once in `__init__`.
    """
    if check:
        check_options(fn, task=task, num_classes=num_classes, average=average,
                      temperature=temperature, threshold=threshold,
                      ignore_index=ignore_index, multidim_average=multidim_average,
                      zero_division=zero_division)
    if top_k is not None and check:
        _checks.check_option(fn, "task", task, ("multiclass",))
        _checks.check_int(fn, "k", top_k, low=1)
        if top_k > num_classes:  # type: ignore[operator]
            _checks.fail(fn, "k", f"<= num_classes = {num_classes}", top_k)
    z, y, w, c = _format(fn, input, target, task=task, num_classes=num_classes,
                         ignore_index=ignore_index, validate_args=validate_args)
    samplewise = multidim_average == "samplewise"
    if top_k is None:
        counts = _statistics(z, y, w, c, task=task, temperature=temperature,
                             threshold=threshold, samplewise=samplewise)
    else:
        counts = _top_k_counts(z, y, w, c, top_k, temperature, samplewise)
    if hook is not None:
        counts = hook(counts)
    return _Prepared(counts, task, samplewise, compute_dtype(z.dtype))


def _tversky_value(c: _Counts, task: str, average: str, zero_division: float, alpha: float,
                   beta: float) -> Tensor:
    """Every metric of the Tversky form: precision, recall, F-beta, Dice, Jaccard."""
    if average == "micro" and task != "binary":
        return _tversky(c.micro(), alpha, beta, zero_division).squeeze(-1)
    value = _tversky(c, alpha, beta, zero_division)
    return value if task == "binary" else _average(value, c.support, average, zero_division)


def _mcc_value(c: _Counts, task: str, average: str, zero_division: float) -> Tensor:
    if task == "multiclass" and average == "micro":
        return _multiclass_mcc(c, zero_division)
    if task == "multilabel" and average == "micro":
        return _binary_mcc(c.micro(), zero_division).squeeze(-1)
    value = _binary_mcc(c, zero_division)
    return value if task == "binary" else _average(value, c.support, average, zero_division)


def _accuracy_value(c: _Counts, task: str, average: str, zero_division: float) -> Tensor:
    """Accuracy over the counts: fraction correct (micro), balanced (macro), per class."""
    if task == "multiclass":
        if average in ("micro", "weighted"):
            return _divide(c.tp.sum(-1), c.support.sum(-1), zero_division)
        recall = _divide(c.tp, c.support, zero_division)
        if average == "none":
            return recall
        present = (c.support > 0).to(recall.dtype)
        return _divide((recall * present).sum(-1), present.sum(-1), zero_division)
    if task == "binary" or average == "micro":
        c = c.micro()
    total = as_tensor_on(c.total, c.tp)
    correct = total - c.pred - c.support + 2 * c.tp
    value = _divide(correct, total.expand_as(correct), zero_division)
    if task == "binary" or average == "micro":
        return value.squeeze(-1)
    return _average(value, c.support, average, zero_division)


Kind = Literal["tversky", "accuracy", "mcc"]


def fbeta_weights(beta: float) -> tuple[float, float]:
    """F-beta as a Tversky index: weights 1/(1+beta^2) on FP and beta^2/(1+beta^2) on FN."""
    b2 = beta * beta
    return 1.0 / (1.0 + b2), b2 / (1.0 + b2)


def evaluate(fn: str, kind: Kind, input: Tensor, target: Tensor, *, alpha: float = 0.0,
             beta: float = 0.0, top_k: int | None = None, hook: CountsHook | None = None,
             check: bool = True, **options) -> Tensor:
    """The one pipeline: validate, count (optionally `hook` the counts), apply a formula.

    `kind` selects the formula: "tversky" (with `alpha`, `beta`), "accuracy" (top-k
    accuracy with `top_k`) or "mcc". Public functions and Modules all call this.
    """
    prep = _prepare(fn, input, target, top_k=top_k, hook=hook, check=check, **options)
    average, zd = options["average"], options["zero_division"]
    if kind == "tversky":
        value = _tversky_value(prep.counts, prep.task, average, zd, alpha, beta)
    elif kind == "accuracy":
        value = _accuracy_value(prep.counts, prep.task, average, zd)
    else:
        value = _mcc_value(prep.counts, prep.task, average, zd)
    return _finish(value, prep.task, prep.samplewise, prep.out_dtype)


# ---------------------------------------------------------------------------------------
# public functions


def soft_stat_scores(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                     temperature: float | Tensor = 1.0, threshold: float = 0.5,
                     ignore_index: int | None = None,
                     multidim_average: MultidimAverage = "global",
                     validate_args: bool = True) -> StatScores:
    r"""Soft true/false positives/negatives per class: the statistics of every metric here.

    For a decision $p$ (softmax or sigmoid of `input / temperature`, exact at 0):
    $TP_c = \sum_n p_{nc} y_{nc}$, $FP_c = \sum_n p_{nc} (1 - y_{nc})$,
    $FN_c = \sum_n (1 - p_{nc}) y_{nc}$, $TN_c = \sum_n (1 - p_{nc})(1 - y_{nc})$,
    summed over all positions (`"global"`) or per sample (`"samplewise"`).

    Hard limit: at `temperature=0` these are the integer counts of the argmax (multiclass)
    or thresholded (binary, multilabel) predictions.

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        temperature: >= 0; 0 gives the exact counts.
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every count.
        multidim_average: "global" pools all positions, "samplewise" counts per sample.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        `StatScores(tp, fp, fn, tn)`, each of shape (C,) or (N, C) (C = 1 for binary):
        float64 (exact integers) at temperature 0, else in the input's dtype (float32 for
        half-precision inputs).

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_stat_scores
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
        >>> s = soft_stat_scores(logits, torch.tensor([0, 0, 1]), task="multiclass",
        ...                      num_classes=2, temperature=0)
        >>> s.tp.tolist(), s.fp.tolist(), s.fn.tolist(), s.tn.tolist()
        ([1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0])
    """
    prep = _prepare("soft_stat_scores", input, target, task=task, num_classes=num_classes,
                    average="none", temperature=temperature, threshold=threshold,
                    ignore_index=ignore_index, multidim_average=multidim_average,
                    zero_division=0.0, validate_args=validate_args)
    stats = prep.counts.stat_scores()
    return StatScores(*(t if prep.samplewise else t.squeeze(0) for t in stats))


def soft_tversky_index(input: Tensor, target: Tensor, *, task: Task,
                       num_classes: int | None = None, alpha: float = 0.5, beta: float = 0.5,
                       average: Average = "macro", temperature: float | Tensor = 1.0,
                       threshold: float = 0.5, ignore_index: int | None = None,
                       multidim_average: MultidimAverage = "global",
                       zero_division: float = 0.0, validate_args: bool = True) -> Tensor:
    r"""Soft Tversky index, the one formula behind precision, recall, F-beta, Dice and IoU.

    $$
    T_{\alpha,\beta} = \frac{TP}{TP + \alpha\, FP + \beta\, FN}
    $$

    over the soft counts of `soft_stat_scores`. $\alpha = \beta = 1/2$ is the Dice
    coefficient (= F1), $\alpha = \beta = 1$ the Jaccard index (IoU), $(1, 0)$ precision,
    $(0, 1)$ recall; $\beta > \alpha$ weighs misses more than false alarms.

    Hard limit: at `temperature=0` this is the exact Tversky index of the argmax/threshold
    predictions (for $\alpha=\beta=1$ scikit-learn's `jaccard_score`).

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        alpha: weight of false positives, >= 0.
        beta: weight of false negatives, >= 0.
        average: "micro" pools counts over classes, "macro" averages per-class values,
            "weighted" weighs them by support, "none" returns them. Binary tasks report
            the positive class.
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic (may lie outside [0, C)).
        multidim_average: "global" pools all positions of (N, C, d1, ...) inputs,
            "samplewise" gives one value per sample.
        zero_division: value of a class whose denominator is 0.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar; (C,) for `average="none"`; a leading (N,) axis for "samplewise". In
        [0, 1]; float32 for half-precision inputs.

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_tversky_index
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
        >>> target = torch.tensor([0, 1, 1])
        >>> soft_tversky_index(logits, target, task="multiclass", num_classes=2,
        ...                    alpha=0.3, beta=0.7, temperature=0)
        tensor(0.6787)

    ??? cite "Reference"
        Salehi, Erdogmus and Gholipour, *Tversky loss function for image segmentation using
        3D fully convolutional deep networks*, MLMI 2017, arXiv:1706.05721.
    """
    fn = "soft_tversky_index"
    _checks.check_number(fn, "alpha", alpha, low=0.0)
    _checks.check_number(fn, "beta", beta, low=0.0)
    return evaluate(fn, "tversky", input, target, alpha=alpha, beta=beta, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    validate_args=validate_args)


def soft_fbeta_score(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                     beta: float = 1.0, average: Average = "macro",
                     temperature: float | Tensor = 1.0, threshold: float = 0.5,
                     ignore_index: int | None = None,
                     multidim_average: MultidimAverage = "global",
                     zero_division: float = 0.0, validate_args: bool = True) -> Tensor:
    r"""Soft F-beta score.

    $$
    F_\beta = \frac{(1+\beta^2)\,TP}{(1+\beta^2)\,TP + \beta^2 FN + FP}
    $$

    the Tversky index with weights $1/(1+\beta^2)$ on FP and $\beta^2/(1+\beta^2)$ on FN.
    With probabilities as the decision this is the soft F1 of sigmoidF1 (Bénédict et al.)
    and of Su Jianlin's smooth F1.

    Hard limit: at `temperature=0` equals scikit-learn's `fbeta_score` (with
    `labels=range(C)`; binary: `average="binary"`).

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        beta: > 0; recall is `beta` times as important as precision.
        average: "micro", "macro", "weighted" or "none" (see `soft_tversky_index`).
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic.
        multidim_average: "global" or "samplewise".
        zero_division: value where $(1+\beta^2) TP + \beta^2 FN + FP = 0$.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [0, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_fbeta_score
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
        >>> target = torch.tensor([1, 1, 0, 0])
        >>> soft_fbeta_score(logits, target, task="binary", beta=2.0, temperature=0)
        tensor(0.5000)
        >>> soft_fbeta_score(logits, target, task="binary", beta=2.0, temperature=1.0)
        tensor(0.5854)

    ??? cite "References"
        Bénédict et al., *sigmoidF1: A Smooth F1 Score Surrogate Loss for Multilabel
        Classification*, arXiv:2108.10566, 2021.
    """
    fn = "soft_fbeta_score"
    beta = _checks.check_number(fn, "beta", beta, low=0.0, low_open=True)
    alpha, beta = fbeta_weights(beta)
    return evaluate(fn, "tversky", input, target, alpha=alpha, beta=beta, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    validate_args=validate_args)


def soft_f1_score(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                  average: Average = "macro", temperature: float | Tensor = 1.0,
                  threshold: float = 0.5, ignore_index: int | None = None,
                  multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                  validate_args: bool = True) -> Tensor:
    r"""Soft F1 score (= soft Dice coefficient): `soft_fbeta_score` with `beta=1`.

    $$
    F_1 = \frac{2\,TP}{2\,TP + FN + FP}
    $$

    Hard limit: at `temperature=0` equals scikit-learn's `f1_score`.

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "micro", "macro", "weighted" or "none".
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic.
        multidim_average: "global" or "samplewise".
        zero_division: value where $2TP + FN + FP = 0$.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [0, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_f1_score
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
        >>> target = torch.tensor([0, 2, 2])
        >>> soft_f1_score(logits, target, task="multiclass", num_classes=3, temperature=0)
        tensor(0.5556)
        >>> soft_f1_score(logits, target, task="multiclass", num_classes=3)
        tensor(0.4883)
    """
    return evaluate("soft_f1_score", "tversky", input, target, alpha=0.5, beta=0.5, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    validate_args=validate_args)


def soft_precision(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                   average: Average = "macro", temperature: float | Tensor = 1.0,
                   threshold: float = 0.5, ignore_index: int | None = None,
                   multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                   validate_args: bool = True) -> Tensor:
    r"""Soft precision $TP / (TP + FP)$: the Tversky index with $\alpha = 1, \beta = 0$.

    Hard limit: at `temperature=0` equals scikit-learn's `precision_score`.

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "micro", "macro", "weighted" or "none".
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic.
        multidim_average: "global" or "samplewise".
        zero_division: value where nothing is predicted positive.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [0, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_precision
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
        >>> soft_precision(logits, torch.tensor([1, 1, 0, 0]), task="binary", temperature=0)
        tensor(0.5000)
    """
    return evaluate("soft_precision", "tversky", input, target, alpha=1.0, beta=0.0, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    validate_args=validate_args)


def soft_recall(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                average: Average = "macro", temperature: float | Tensor = 1.0,
                threshold: float = 0.5, ignore_index: int | None = None,
                multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                validate_args: bool = True) -> Tensor:
    r"""Soft recall $TP / (TP + FN)$: the Tversky index with $\alpha = 0, \beta = 1$.

    Hard limit: at `temperature=0` equals scikit-learn's `recall_score`.

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "micro", "macro", "weighted" or "none".
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic.
        multidim_average: "global" or "samplewise".
        zero_division: value for a class with no positive target.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [0, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_recall
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
        >>> soft_recall(logits, torch.tensor([1, 1, 0, 0]), task="binary", temperature=0)
        tensor(0.5000)
    """
    return evaluate("soft_recall", "tversky", input, target, alpha=0.0, beta=1.0, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    validate_args=validate_args)


def soft_jaccard_index(input: Tensor, target: Tensor, *, task: Task,
                       num_classes: int | None = None, average: Average = "macro",
                       temperature: float | Tensor = 1.0, threshold: float = 0.5,
                       ignore_index: int | None = None,
                       multidim_average: MultidimAverage = "global",
                       zero_division: float = 0.0, validate_args: bool = True) -> Tensor:
    r"""Soft Jaccard index (intersection over union): the Tversky index with $\alpha=\beta=1$.

    $$
    J = \frac{TP}{TP + FP + FN}
    $$

    With the softmax as decision this is the soft IoU used for segmentation (Rahman and
    Wang 2016); macro-averaged over classes it is the mean IoU of a segmentation map.

    Hard limit: at `temperature=0` equals scikit-learn's `jaccard_score`.

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "micro", "macro", "weighted" or "none".
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic (e.g. 255 in masks).
        multidim_average: "global" or "samplewise".
        zero_division: value for a class absent from target and prediction.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [0, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_jaccard_index
        >>> logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
        >>> mask = torch.zeros(2, 4, 4, dtype=torch.long); mask[:, :2] = 1; mask[0, 0, 0] = 255
        >>> soft_jaccard_index(logits, mask, task="multiclass", num_classes=3,
        ...                    ignore_index=255, temperature=0)
        tensor(0.2524)

    ??? cite "Reference"
        Rahman and Wang, *Optimizing Intersection-Over-Union in Deep Neural Networks for
        Image Segmentation*, ISVC 2016.
    """
    return evaluate("soft_jaccard_index", "tversky", input, target, alpha=1.0, beta=1.0, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    validate_args=validate_args)


def soft_accuracy(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                  average: Average = "micro", temperature: float | Tensor = 1.0,
                  threshold: float = 0.5, ignore_index: int | None = None,
                  multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                  validate_args: bool = True) -> Tensor:
    r"""Soft accuracy: the expected fraction of correct decisions.

    Multiclass, `average="micro"`: $\frac{1}{N}\sum_n p_{n, y_n}$, the mean probability of
    the true class; `"macro"` is balanced accuracy, the mean recall over the classes
    present in the target; `"none"` gives per-class recall. Binary: $(TP + TN) / N$.
    Multilabel: `"micro"` is $1 - $ Hamming loss, the other averages are per-label accuracy.

    Hard limit: at `temperature=0` equals scikit-learn's `accuracy_score` (multiclass
    micro, binary), `balanced_accuracy_score` (multiclass macro) and `1 - hamming_loss`
    (multilabel micro).

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "micro" (default), "macro", "weighted" or "none".
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic.
        multidim_average: "global" or "samplewise".
        zero_division: value when there is nothing to count.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [0, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_accuracy
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
        >>> target = torch.tensor([0, 2, 2])
        >>> soft_accuracy(logits, target, task="multiclass", num_classes=3, temperature=0)
        tensor(0.6667)
        >>> soft_accuracy(logits, target, task="multiclass", num_classes=3, average="macro",
        ...               temperature=0)
        tensor(0.7500)
        >>> soft_accuracy(logits, target, task="multiclass", num_classes=3)
        tensor(0.6361)
    """
    return evaluate("soft_accuracy", "accuracy", input, target, task=task, num_classes=num_classes,
                    average=average, temperature=temperature, threshold=threshold,
                    ignore_index=ignore_index, multidim_average=multidim_average,
                    zero_division=zero_division, validate_args=validate_args)


def soft_matthews_corrcoef(input: Tensor, target: Tensor, *, task: Task,
                           num_classes: int | None = None, average: Average = "micro",
                           temperature: float | Tensor = 1.0, threshold: float = 0.5,
                           ignore_index: int | None = None,
                           multidim_average: MultidimAverage = "global",
                           zero_division: float = 0.0, validate_args: bool = True) -> Tensor:
    r"""Soft Matthews correlation coefficient (Gorodkin's $R_K$ for K classes).

    From the (soft) confusion matrix with row sums $t_k$ (true counts), column sums $p_k$
    (predicted counts), trace $c$ and total $s$:

    $$
    \mathrm{MCC} = \frac{c\,s - \sum_k p_k t_k}
                        {\sqrt{(s^2 - \sum_k p_k^2)(s^2 - \sum_k t_k^2)}}
    $$

    Only the trace and the marginals enter, so $c = \sum_k TP_k$, $p_k = TP_k + FP_k$,
    $t_k = TP_k + FN_k$: the same per-class statistics as every other metric here, no
    $K \times K$ matrix. For two classes this is the binary
    $(TP\,TN - FP\,FN)/\sqrt{(TP+FP)(TP+FN)(TN+FP)(TN+FN)}$.

    Multiclass: `average="micro"` (default) is $R_K$ over all classes (scikit-learn's
    multiclass `matthews_corrcoef`); "macro", "weighted" and "none" use per-class
    one-vs-rest binary MCCs. Multilabel: "micro" is the binary MCC of all labels pooled,
    the others per-label binary MCCs. Binary: the binary MCC.

    Hard limit: at `temperature=0` equals scikit-learn's `matthews_corrcoef`; 0/0 gives
    `zero_division` (scikit-learn: 0).

    Args:
        input: raw scores (logits): (N, ...) for binary, (N, C, ...) otherwise.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "micro" (default), "macro", "weighted" or "none".
        temperature: >= 0; 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic.
        multidim_average: "global" or "samplewise".
        zero_division: value when a marginal is constant (the denominator is 0).
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [-1, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_matthews_corrcoef
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0],
        ...                        [1.0, 0.0, 0.0]])
        >>> target = torch.tensor([0, 2, 2, 1])
        >>> soft_matthews_corrcoef(logits, target, task="multiclass", num_classes=3,
        ...                        temperature=0)
        tensor(0.3000)

    ??? cite "Reference"
        Gorodkin, *Comparing two K-category assignments by a K-category correlation
        coefficient*, Computational Biology and Chemistry 28 (2004).
    """
    return evaluate("soft_matthews_corrcoef", "mcc", input, target, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    validate_args=validate_args)


def soft_top_k_accuracy(input: Tensor, target: Tensor, *, num_classes: int, k: int = 1,
                        task: Literal["multiclass"] = "multiclass", average: Average = "micro",
                        temperature: float | Tensor = 1.0, ignore_index: int | None = None,
                        multidim_average: MultidimAverage = "global",
                        zero_division: float = 0.0, validate_args: bool = True) -> Tensor:
    r"""Soft top-k accuracy: is the true class among the k highest scores?

    The rank of the true class $r_n = \#\{j \ne y_n : z_{nj} > z_{ny_n}\}$ is relaxed to
    $\tilde r_n = \sum_{j \ne y_n} \sigma((z_{nj} - z_{ny_n}) / \tau)$ and the hit
    $[r_n < k]$ to $\sigma((k - \tfrac12 - \tilde r_n) / \tau)$; the hits are then the
    true positives of the accuracy formula (`average` as in `soft_accuracy`).

    Hard limit: at `temperature=0` the rank counts each tie as 1/2 (the comparison step of
    `softmetrics._relax`), so for distinct scores it equals scikit-learn's
    `top_k_accuracy_score`; a tie at the k-th place counts as half a hit.

    Args:
        input: raw scores (logits) of shape (N, C, ...).
        target: class indices of shape (N, ...).
        num_classes: C.
        k: number of top-ranked classes that count as a hit, 1 <= k <= C.
        task: only "multiclass".
        average: "micro" (default; fraction of hits), "macro" (mean per-class hit rate),
            "weighted" or "none".
        temperature: >= 0; 0 gives the exact metric (no gradient).
        ignore_index: target value left out of every statistic.
        multidim_average: "global" or "samplewise".
        zero_division: value when there is nothing to count.
        validate_args: check target values (reads data, one host synchronisation).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [0, 1].

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_top_k_accuracy
        >>> logits = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
        >>> soft_top_k_accuracy(logits, torch.tensor([2, 1, 0]), num_classes=3, k=2,
        ...                     temperature=0)
        tensor(0.6667)

    ??? cite "Reference"
        Petersen et al., *Differentiable Top-k Classification Learning*, ICML 2022,
        arXiv:2206.07290 (a differentiable sorting approach to the same objective).
    """
    return evaluate("soft_top_k_accuracy", "accuracy", input, target, top_k=k, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=0.5, ignore_index=ignore_index, multidim_average=multidim_average,
                    zero_division=zero_division, validate_args=validate_args)
