r"""The Lovász relaxation of the Jaccard index: per-column Lovász extensions of `1 - IoU`.

Berman, Rannen Triki and Blaschko (CVPR 2018) relax the Jaccard loss of one class, a set
function of the mispredicted entries, by its Lovász extension: for errors $m_i \ge 0$
sorted decreasingly, $\bar\Delta(m) = \sum_k m_{(k)} g_k$, where $g_k = J_k - J_{k-1}$ is
the discrete derivative of the Jaccard loss along the sorted order,

$$
J_k = 1 - \frac{G - \sum_{j \le k} y_{(j)}}{G + \sum_{j \le k} (1 - y_{(j)})}
    = \frac{k}{G + \sum_{j \le k} (1 - y_{(j)})}, \qquad G = \sum_i y_i .
$$

The extension is convex and piecewise linear in $m$ and equals the Jaccard loss where
$m$ is a 0/1 vector (a hard prediction). The errors are $|y - p|$ of the softmax
probabilities (Lovász-softmax, multiclass) or the hinge $\max(0, 1 - s\,x)$ of the
margins $x$ with signs $s = 2y - 1$ (Lovász hinge, binary and multilabel); at
temperature 0 both are the 0/1 errors of the exact decision.

Every column (a class, or all (class, entry) pairs pooled for `"micro"`) of every group
(the batch, or each sample) is sorted in one `torch.sort` call along the entry axis. The
cumulative sums run over 0/1 integers: exact, and deterministic on CUDA, where a
floating-point `cumsum` has no deterministic kernel. Ignored entries sort last and count
neither as positives nor as negatives, so they change no $J_k$ of a counted entry and get
$g_k = 0$.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .. import _checks
from .._options import RELAXATIONS
from .._relax import above, compute_dtype, is_hard, logit, soft_argmax, temperature_scale

__all__ = ["LovaszColumns", "check_lovasz_options", "lovasz_columns"]


def check_lovasz_options(fn: str, relaxation: str, *, average: str,
                         class_weights: object) -> None:
    """`relaxation` is known; with "lovasz", class weights only weigh a macro average
    (pooled counts, "micro" or "generalized", are not what the extension sorts)."""
    _checks.check_option(fn, "relaxation", relaxation, RELAXATIONS)
    if relaxation != "lovasz" or class_weights is None:
        return
    if isinstance(class_weights, str):
        _checks.fail(fn, "class_weights", "a (C,) tensor with relaxation='lovasz' (the "
                     "generalized weights pool counts)", class_weights)
    if average != "macro":
        _checks.fail(fn, "average", "'macro' with class_weights and relaxation='lovasz'",
                     average)


class LovaszColumns(NamedTuple):
    """The Lovász loss (the extension of `1 - IoU`) and the support of each column, both
    (G, K): G groups (1, or N for samplewise), K columns (the classes, or 1 pooled); at
    temperature 0 also the exact index `TP / (TP + FP + FN)` (1 where that is 0 / 0),
    which `1 - loss` would round."""

    loss: Tensor
    support: Tensor
    exact: Tensor | None = None


def _errors(z: Tensor, y: Tensor, *, task: str, temperature: float | Tensor,
            threshold: float) -> tuple[Tensor, Tensor]:
    """Errors (N, C, ...) in the compute dtype (float64 for the exact decision, whose
    counts `_exact_columns` sums exactly) and the 0/1 target (bool)."""
    hard = is_hard(temperature)
    dtype = torch.float64 if hard and z.device.type != "mps" else compute_dtype(z.dtype)
    if task == "multiclass":
        classes = torch.arange(z.shape[1], device=z.device).view(1, -1, *(1,) * (z.ndim - 2))
        gt = y.unsqueeze(1) == classes
        p = soft_argmax(z.to(dtype), temperature, dim=1)
        return torch.where(gt, 1.0 - p, p), gt
    gt = y > 0.5
    if hard:  # the input's own dtype (no copy): `above` decides as the real numbers do
        return (above(z, logit(threshold)) != gt).to(dtype), gt
    x = z.to(dtype) - logit(threshold)
    sign = gt.to(dtype) * 2.0 - 1.0
    return torch.relu(1.0 - sign * x / temperature_scale(temperature)), gt


def _columns(x: Tensor, samplewise: bool, pooled: bool) -> Tensor:
    """(N, K, ...) as (G, K, L): per sample, or every sample's entries in one group; with
    `pooled` the K columns of a group become one, (G, 1, K L)."""
    n, k, length = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    x = x.reshape(n, k, length)
    if not samplewise:
        n, length = 1, n * length
        # contiguous along the entries: a strided sort is about twice as slow
        x = x.transpose(0, 1).reshape(n, k, length).contiguous()
    return x.reshape(n, 1, k * length) if pooled else x


def lovasz_columns(z: Tensor, y: Tensor, w: Tensor | None, *, task: str,
                   temperature: float | Tensor, threshold: float, samplewise: bool,
                   pooled: bool, keep: Tensor | None = None) -> LovaszColumns:
    """The Lovász loss of every column, from formatted inputs (`format_inputs`: logits
    (N, C, ...), target indices or 0/1 floats, 0/1 weights or None).

    `pooled` sorts all (class, entry) pairs of a group as one column (the extension of
    the micro-averaged loss); `keep` (C,) 0/1 takes classes out of the pooled column.
    """
    m, gt = _errors(z, y, task=task, temperature=temperature, threshold=threshold)
    valid = None
    if w is not None:
        valid = (w.unsqueeze(1) if task == "multiclass" else w) > 0
        valid = valid.expand_as(m)
    if keep is not None and pooled:
        kept = (keep > 0).view(1, -1, *(1,) * (m.ndim - 2))
        valid = kept.expand_as(m) if valid is None else valid & kept
    m, gt = _columns(m, samplewise, pooled), _columns(gt, samplewise, pooled)
    length = m.shape[-1]
    index_dtype = torch.int32 if length < 2**31 else torch.int64
    pos = gt.to(index_dtype)
    if valid is not None:
        valid = _columns(valid, samplewise, pooled)
        pos = pos * valid
    if is_hard(temperature):
        return _exact_columns(m, pos, valid)
    if valid is not None:
        m = torch.where(valid, m, -1.0)  # errors are >= 0: ignored entries sort last
    # sorted with autograd: the loss is linear in the sorted errors, whose gradient the
    # sort's backward sends back to the entries
    ordered, order = torch.sort(m, dim=-1, descending=True)
    cum_pos = pos.gather(-1, order).cumsum(-1, dtype=index_dtype)
    if valid is None:
        cum_all = torch.arange(1, length + 1, device=m.device, dtype=index_dtype)
    else:
        cum_all = valid.to(index_dtype).gather(-1, order).cumsum(-1, dtype=index_dtype)
    support = pos.sum(-1, keepdim=True, dtype=index_dtype)
    union = support - cum_pos + cum_all
    coefficients = _steps(pos.gather(-1, order), support - cum_pos, union, m.dtype)
    if valid is not None:  # an ignored entry changes nothing
        coefficients = coefficients * valid.gather(-1, order)
    return LovaszColumns((ordered * coefficients).sum(-1), support.squeeze(-1).to(m.dtype))


def _exact_columns(errors: Tensor, pos: Tensor, valid: Tensor | None) -> LovaszColumns:
    """The columns at temperature 0, without sorting. The errors are then the 0/1
    mispredictions (float64), which sort first, and the extension sums the steps of the
    Jaccard loss over them: it telescopes to the loss of the whole error set, `wrong /
    union` (`union` = TP + FP + FN), which is the loss itself, computed from the exact
    counts (a sum of rounded steps telescopes only in exact arithmetic). The index is the
    ratio of the counts, as every other formula computes it."""
    if valid is not None:
        errors = errors * valid
    support = pos.sum(-1, dtype=errors.dtype)
    wrong = errors.sum(-1)
    missed = (errors * pos).sum(-1)
    union = support - missed + wrong
    safe = union.clamp_min(1.0)
    return LovaszColumns(wrong / safe, support,
                         torch.where(union > 0, (support - missed) / safe, 1.0))


def _steps(positive: Tensor, remaining: Tensor, union: Tensor, dtype: torch.dtype) -> Tensor:
    """The steps of the Jaccard loss `J_k = counted_k / union_k` along the sorted entries,
    from the exact integer counts: `1 / union` at a positive (the union stays), and
    `remaining / (union (union - 1))` at a negative (the union grows by one; `remaining`:
    the positives not counted yet), 1 where it is the first entry counted (`J` was 0).
    Differences of float32 losses would keep few digits of these steps over millions of
    entries (4 million: 1% off the gradient of float64); written out, each is a ratio of
    exact counts, rounded a few times."""
    u = union.to(dtype)
    at_negative = torch.where(union > 1, remaining.to(dtype) / (u * (u - 1.0)).clamp_min(1.0),
                              1.0)
    return torch.where(positive > 0, 1.0 / u.clamp_min(1.0), at_negative)
