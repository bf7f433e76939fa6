r"""Cohen's kappa: the statistics of a soft confusion matrix and its one formula.

For the confusion matrix $O_{ij} = \sum_n w_n [y_n = i]\, p_{nj}$ (rows: the target,
columns: the decision $p$), kappa reads only four sums over the samples
(`KappaCounts`): the weighted disagreement $D = \sum_{ij} W_{ij} O_{ij}$, the predicted
mass $q_j$ (column sums), the support $t_i$ (row sums) and the number of entries $N$:

$$
\kappa = 1 - \frac{D}{\sum_{ij} W_{ij} t_i q_j / N}.
$$

Without weights ($W_{ij} = [i \ne j]$) and for binary tasks these come from the counts of
every classification metric (`_classification_core.statistics`): $D = N - \sum_c TP_c$,
through the fused softmax Function. Linear and quadratic weights depend only on the
distance of the classes, so $D = \sum_n w_n \sum_j W_{y_n j}\, p_{nj}$ and $q$ come from
`_kappa_disagreement.weighted_disagreement` (O(N C) work, through a fused softmax for soft
decisions) and the chance term from the support's moments or running sums
(`chance_rows`): no $(C, C)$ matrix is formed. Being sums over samples, the statistics can
be summed across processes and mixed with running ones (`KappaHook`), as the
classification Modules do with `Counts`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .. import _checks
from .._relax import (
    as_tensor_on,
    bounded,
    compute_dtype,
    full_precision,
    running_sums,
    sum_dtype,
)
from ._classification_core import class_support, format_inputs, statistics
from ._classification_options import check_classification_options
from ._kappa_disagreement import weighted_disagreement

__all__ = [
    "KAPPA_WEIGHTS",
    "KappaCounts",
    "KappaHook",
    "KappaWeights",
    "chance_rows",
    "check_kappa_options",
    "cohen_kappa",
    "kappa_value",
]

KappaWeights = Literal["linear", "quadratic"] | None
KAPPA_WEIGHTS: tuple[KappaWeights, ...] = (None, "linear", "quadratic")


class KappaCounts(NamedTuple):
    """The statistics of kappa, per group (one group: the batch): the weighted
    disagreement $\\sum_{ij} W_{ij} O_{ij}$ (G, 1), the predicted mass per class (G, C),
    the support per class (G, C; no gradient) and the number of entries (G, 1)."""

    disagreement: Tensor
    pred: Tensor
    support: Tensor
    total: Tensor


KappaHook = Callable[[KappaCounts], KappaCounts]
"""Maps the statistics before the formula reads them (Modules: sums across processes,
running statistics)."""


def check_kappa_options(fn: str, *, task: str, num_classes: int | None, weights: object,
                        temperature: float | Tensor, threshold: float,
                        ignore_index: int | None, zero_division: float) -> None:
    """Kappa: binary or multiclass, `weights` None, "linear" or "quadratic", and the
    options every classification function shares (no `average`, no `multidim_average`)."""
    _checks.check_option(fn, "task", task, ("binary", "multiclass"))
    check_classification_options(fn, task=task, num_classes=num_classes, average="micro",
                                 temperature=temperature, threshold=threshold,
                                 ignore_index=ignore_index, multidim_average="global",
                                 zero_division=zero_division)
    _checks.check_option(fn, "weights", weights, KAPPA_WEIGHTS)


def chance_rows(support: Tensor, weights: Literal["linear", "quadratic"]) -> Tensor:
    r"""$a_j = \sum_i t_i W_{ij}$ (G, C) for the support $t$ (G, C), so that the chance
    term is $\sum_{ij} W_{ij} t_i q_j = \sum_j a_j q_j$; every sum has terms of one sign,
    so nothing cancels, and no (C, C) matrix is formed.

    Quadratic: about the support's mean class $\mu = \sum_i i\, t_i / T$ ($T = \sum_i t_i$),
    $a_j = T (j - \mu)^2 + \sum_i t_i (i - \mu)^2$. Linear: with the running sums
    $F_k = \sum_{i \le k} t_i$ and $G_k = \sum_{i \ge k} t_i$,
    $a_j = \sum_{k < j} F_k + \sum_{k > j} G_k$ (a sample of class $i < j$ is counted once
    for each $k$ from $i$ to $j - 1$). A target of one class $i$ gives $a_j = T W_{ij}$
    exactly.
    """
    c = support.shape[-1]
    classes = torch.arange(c, device=support.device, dtype=support.dtype)
    if weights == "quadratic":
        total = support.sum(-1, keepdim=True)
        mean = (support * classes).sum(-1, keepdim=True) / torch.where(total > 0, total, 1.0)
        square = (classes - mean).square()
        return total * square + (support * square).sum(-1, keepdim=True)
    both = running_sums(torch.stack([support, support.flip(-1)], -2))  # F, G reversed
    below = torch.nn.functional.pad(running_sums(both)[..., :-1], (1, 0))
    return below[..., 0, :] + below[..., 1, :].flip(-1)


def _kappa_counts(z: Tensor, y: Tensor, w: Tensor | None, num_classes: int, *, task: str,
                  weights: KappaWeights, temperature: float | Tensor,
                  threshold: float) -> KappaCounts:
    if task == "multiclass" and weights is not None:
        with full_precision(z.device):
            disagreement, pred = weighted_disagreement(z, y, w, num_classes, weights,
                                                       temperature)
        with torch.no_grad():
            support = class_support(y, w, num_classes, False, pred.dtype)
            total = support.sum(-1, keepdim=True)
        return KappaCounts(disagreement, pred, support, total)
    c = statistics(z, y, w, num_classes, task=task, temperature=temperature,
                   threshold=threshold, samplewise=False)
    total = as_tensor_on(c.total, c.tp).reshape(1, 1)
    if task == "multiclass":  # unweighted: everything off the diagonal disagrees
        return KappaCounts(total - c.tp.sum(-1, keepdim=True), c.pred, c.support, total)
    # binary: the 2 x 2 table (negatives, positives); FP + FN disagree
    return KappaCounts(c.pred + c.support - 2.0 * c.tp, torch.cat([total - c.pred, c.pred], -1),
                       torch.cat([total - c.support, c.support], -1), total)


def kappa_value(k: KappaCounts, weights: KappaWeights, zero_division: float) -> Tensor:
    r"""$(E - N D) / E$ per group, with the chance disagreement $E = \sum_{ij} W_{ij} t_i q_j$.

    $E = 0$ when every entry of the target and of the decision falls in one and the same
    class (then $D = 0$ too): the value is `zero_division`. So it is when $E$ is 0 up to
    the rounding of its scale, $E \le \epsilon N^2$ ($\epsilon$ the dtype's machine
    epsilon; a nonzero exact $E$ is at least $N$): only a target of one class, where kappa
    is 0 whatever the decision, gets there, with a decision whose other classes hold less
    than about $\epsilon$ per entry; dividing by such an $E$ would give rounding noise and
    gradients of order $1/E$. A NaN reaches the result.

    Unweighted, $E$ is written as $N^2 - \sum_c t_c q_c$, so that its rounding follows
    that of $D$ (the counts give $D = N - \sum_c TP_c$); weighted, as $\sum_j a_j q_j$
    (`chance_rows`), sums without cancellation. The value is clamped to [-1, 1], the
    range of kappa, against the remaining rounding. It runs in float64 (float32 on MPS),
    and returns in the counts' dtype: `N^2 - sum_c t_c q_c` subtracts nearly equal large
    numbers, which in float32 lost four digits over 4 million soft entries.
    """
    dtype = k.pred.dtype
    work = sum_dtype(k.pred.device)
    pred = k.pred.to(work)
    n = k.total[..., 0].to(work)
    squared = n * n
    support = k.support.to(work)
    if weights is None:
        chance = squared - (support * pred).sum(-1)
    else:
        chance = (chance_rows(support, weights) * pred).sum(-1)
    observed = n * k.disagreement[..., 0].to(work)
    # False for a NaN E, which reaches the result. `masked_fill` rather than `where` with a
    # number: fewer operations each way (see `_classification_formulas.divide`)
    undefined = chance <= torch.finfo(dtype).eps * squared
    safe = chance.masked_fill(undefined, 1.0)  # no 1/0 in the branch that is replaced
    value = ((chance - observed) / safe).masked_fill(undefined, zero_division)
    return bounded(value, -1.0, 1.0).to(dtype)


def cohen_kappa(fn: str, input: Tensor, target: Tensor, *, task: str,
                num_classes: int | None, weights: KappaWeights, temperature: float | Tensor,
                threshold: float, ignore_index: int | None, zero_division: float,
                validate_args: bool, hook: KappaHook | None = None,
                check: bool = True) -> Tensor:
    """Validate, count (optionally `hook` the statistics) and apply kappa's formula; a
    scalar in the compute dtype. `check=False` skips the option checks (Modules ran them
    once)."""
    if check:
        check_kappa_options(fn, task=task, num_classes=num_classes, weights=weights,
                            temperature=temperature, threshold=threshold,
                            ignore_index=ignore_index, zero_division=zero_division)
    _checks.refuse_class_probabilities(fn, task, input, target, "kappa")
    z, y, w, c = format_inputs(fn, input, target, task=task, num_classes=num_classes,
                               ignore_index=ignore_index, validate_args=validate_args,
                               temperature=temperature)
    weights = weights if task == "multiclass" else None  # 2 classes: W = [[0, 1], [1, 0]]
    counts = _kappa_counts(z, y, w, c, task=task, weights=weights, temperature=temperature,
                           threshold=threshold)
    if hook is not None:
        counts = hook(counts)
    return kappa_value(counts, weights, zero_division)[0].to(compute_dtype(z.dtype))
