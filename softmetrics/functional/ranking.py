r"""Ranking surrogates: AUROC, average precision (mAP) and calibrated AP from pairwise orders.

Every metric here is a formula over one pairwise statistic. For a column of scores $s$
with positives $P$ and negatives $N$ (entries whose target equals `ignore_index` belong to
neither), each positive $i$ gets

$$
F_i = \sum_{j \in N} \operatorname{step}(s_j - s_i),\qquad
k_i = \#\{j \in P : j \text{ ranks at or above } i\},
$$

the (soft) number of negatives ranked above $i$ and the rank of $i$ among the positives.
The decision $\operatorname{step}$ is that of `softmetrics._relax.soft_step`: the Heaviside
step with $\operatorname{step}(0) = 1/2$ at `temperature=0`, and $\sigma(d / \tau)$
otherwise (computed here by a sort, or fused into tiles, and tested against it). Then

- **AUROC** $= 1 - \frac{1}{|P|\,|N|} \sum_{i \in P} F_i$; the partial AUROC up to a
  false positive rate $f$ caps each $F_i$ at $f\,|N|$ (then McClish's standardisation),
- **AP** $= \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i}$,
- **calibrated AP** $= \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i / w}$ with
  $w = |N| / |P|$.

Only the positive-negative comparisons are relaxed; the order among positives ($k_i$) is
kept exact. AP depends on that order only through which positive is counted where, not on
how far apart the positives are, so relaxing it (as Smooth-AP does) adds no useful signal
and makes the surrogate non-monotone: raising a positive just above another positive would
lower it. With $k_i$ exact, raising a positive's score never lowers any of the three soft
metrics, and the value is continuous in the scores (tied positives have equal $F_i$, so
the order in which they are counted does not matter).

Cost: the $F_i$ of a column are $O(M^2)$ pairs for $M$ samples. At `temperature > 0` they
are computed in tiles of `chunk_size` rows by a custom autograd Function that recomputes
each tile in backward, so the extra memory is $O(C\,M\,\text{chunk})$, never the full
matrix. Only the positives' $F_i$ enter the formulas; multiclass targets say where the
positives are (one per sample, at its class), so there only those are computed: $M^2$
pairs in all rather than $C\,M^2$. With binary and multilabel targets on the CPU, where
reading the labels costs nothing, the tiles cover only the pairs of a positive and a
negative: $|P|\,|N|$ per column, a quarter of $M^2$ when half the samples are positive
(other devices compute every pair: there, counting the positives would wait for the
device). At `temperature=0` the exact statistics come from one sort per column
($O(M \log M)$ time, $O(M)$ memory).
"""

from __future__ import annotations

from torch import Tensor

from .._options import Average, Task
from ._ranking_core import ranking_metric


def soft_auroc(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
               average: Average = "macro", max_fpr: float | None = None,
               temperature: float | Tensor = 1.0, ignore_index: int | None = None,
               chunk_size: int | None = None, validate_args: bool = True) -> Tensor:
    r"""Soft area under the ROC curve: the fraction of (positive, negative) pairs in order.

    $$
    \mathrm{AUROC} = \frac{1}{|P|\,|N|} \sum_{i \in P} \sum_{j \in N}
    \operatorname{step}_\tau(s_i - s_j),\qquad
    \operatorname{step}_\tau(d) = \sigma(d / \tau),
    $$

    the Wilcoxon-Mann-Whitney statistic with the comparison relaxed by a sigmoid. Binary
    and multilabel scores are the raw `input` (logits); multiclass is one-vs-rest, class
    $c$ ranking the samples by their log-softmax probability of $c$ (the same order as the
    probability itself).

    Hard limit: at `temperature=0` the step counts ties as 1/2 and this equals
    scikit-learn's `roc_auc_score`, ties included (multiclass: `multi_class="ovr"`,
    multilabel: the per-column scores averaged as below).

    **Partial AUROC** (`max_fpr` $= f < 1$): the area under the ROC curve over false
    positive rates in $[0, f]$, the high-specificity part of the curve. In pairwise terms
    each positive counts only the negatives above it that lie among the first $f\,|N|$
    negatives of the ranking:

    $$
    \mathrm{pAUC} = f - \frac{1}{|P|\,|N|} \sum_{i \in P} \min(F_i,\ f\,|N|),\qquad
    F_i = \sum_{j \in N} \operatorname{step}_\tau(s_j - s_i),
    $$

    reported with McClish's standardisation, as scikit-learn does,

    $$
    \mathrm{AUROC}_{f} = \tfrac12 \Bigl(1 + \frac{\mathrm{pAUC} - f^2/2}{f - f^2/2}\Bigr),
    $$

    which maps the partial area of a random ranking ($f^2/2$) to 1/2 and that of a perfect
    one ($f$) to 1. At `temperature > 0` only the comparisons are relaxed: the cap at
    $f\,|N|$ is kept, so positives ranked below the first $f\,|N|$ negatives get no
    gradient, as they take no part in the exact metric; raising a positive or lowering a
    negative never lowers the value. `max_fpr=1` (or `None`) is the plain AUROC. Multiclass
    and multilabel apply it per column (one-vs-rest), each column standardised on its
    own, then average as below; "micro" takes the partial AUROC of the pooled column.

    Hard limit: with `max_fpr`, at `temperature=0`, this equals scikit-learn's
    `roc_auc_score(..., max_fpr=max_fpr)`, ties included: scikit-learn interpolates the
    ROC curve linearly at $f$, and a positive tied with $w$ negatives sits on a diagonal
    segment of width $w$, so where $f\,|N|$ falls inside that segment its capped count
    is averaged along it ($f|N| - (f|N| - F_i + w/2)^2 / (2w)$). scikit-learn computes the
    partial AUROC for binary and multilabel targets (per column, then averaged); for
    multiclass, where it refuses `max_fpr`, this is the average of the per-class binary
    values of `roc_auc_score(y == c, p[:, c], max_fpr=max_fpr)`. At `temperature > 0` a
    comparison is never a tie, so for tied scores at the cut the soft value tends to
    $\min(F_i, f|N|)$ rather than the interpolated count; for distinct scores it
    converges to the exact value.

    Columns (classes) without a positive or without a negative have no AUROC: they are left
    out of "macro" and "weighted" averages and reported as 0 by "none"; when no column is
    defined the result is 0 (no warning, no NaN).

    Args:
        input: raw scores: (N, ...) for binary; (N, C, ...) logits otherwise.
        target: 0/1 (int, bool or float) of the input's shape for binary and multilabel;
            (N, ...) class indices for multiclass.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        average: "macro" averages per-column values, "weighted" weighs them by their number
            of positives, "micro" pools every (sample, class) entry into one column, "none"
            returns the per-column values. Ignored for binary.
        max_fpr: in (0, 1]: the standardised partial AUROC over false positive rates up to
            `max_fpr` (see above); `None` (default) or 1 is the full AUROC.
        temperature: at least 0, on the scale of score differences; 0 gives the exact metric (no
            gradient). A one-element tensor (e.g. a learnable temperature) is allowed
            (> 0, checked with `validate_args`).
        ignore_index: target value whose entries (multiclass: samples) take no part.
        chunk_size: rows of the pairwise matrix per tile at `temperature > 0`; extra
            memory is a few tiles of `C * M * chunk_size` values for M entries per
            column (C = 1 for binary, micro and multiclass, whose rows are the samples'
            own classes). Default: tiles of about $2^{20}$ pairs on a CPU and $2^{24}$ on
            other devices (a single tile for small inputs).
        validate_args: check target values and finite scores (reads data, one host
            synchronisation).

    Returns:
        A scalar in [0, 1] ((C,) for `average="none"`), float32 for half-precision inputs.

    Raises:
        ValueError: on shapes, option values or target values out of range.
        TypeError: on non-floating `input` or non-integer multiclass `target`.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_auroc
        >>> scores = torch.tensor([2.0, 0.5, 0.5, -1.0, 1.0])
        >>> target = torch.tensor([1, 1, 0, 0, 0])
        >>> soft_auroc(scores, target, task="binary", temperature=0)
        tensor(0.7500)
        >>> soft_auroc(scores, target, task="binary", temperature=0.5)
        tensor(0.7587)
        >>> soft_auroc(scores, target, task="binary", max_fpr=0.3, temperature=0)
        tensor(0.7059)
        >>> x = scores.clone().requires_grad_(True)
        >>> partial = soft_auroc(x, target, task="binary", max_fpr=0.3, temperature=0.5)
        >>> partial.backward()
        >>> partial
        tensor(0.6506, grad_fn=<ToCopyBackward0>)
        >>> x.grad  # the positive at 0.5 lies beyond the cut: no gradient
        tensor([ 0.0998,  0.0000, -0.0295, -0.0016, -0.0686])

    ??? cite "References"
        Hanley and McNeil, *The meaning and use of the area under a receiver operating
        characteristic (ROC) curve*, Radiology 143(1), 1982 (AUROC as the
        Wilcoxon-Mann-Whitney statistic). Yan, Dodier, Mozer and Wolniewicz, *Optimizing
        classifier performance via an approximation to the Wilcoxon-Mann-Whitney
        statistic*, ICML 2003 (sigmoid relaxation). McClish, *Analyzing a portion of the
        ROC curve*, Medical Decision Making 9(3), 1989 (partial AUROC and its
        standardisation).
    """
    return ranking_metric("soft_auroc", "auroc", input, target, task=task,
                          num_classes=num_classes, average=average, temperature=temperature,
                          ignore_index=ignore_index, chunk_size=chunk_size,
                          validate_args=validate_args, max_fpr=max_fpr)


def soft_average_precision(input: Tensor, target: Tensor, *, task: Task,
                           num_classes: int | None = None, average: Average = "macro",
                           temperature: float | Tensor = 1.0, ignore_index: int | None = None,
                           chunk_size: int | None = None,
                           validate_args: bool = True) -> Tensor:
    r"""Soft average precision; with `average="macro"` the mean AP (per-frame mAP).

    $$
    \mathrm{AP} = \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i},\qquad
    F_i = \sum_{j \in N} \operatorname{step}_\tau(s_j - s_i),
    $$

    where $k_i$ is the rank of positive $i$ among the positives (1 for the highest) and
    $F_i$ the soft number of negatives ranked above it, so $k_i / (k_i + F_i)$ is the
    precision at $i$'s rank. This is Smooth-AP (Brown et al.) with one change: the order
    among positives is kept exact. Relaxing it adds nothing to AP (which depends only on
    how negatives interleave with positives) and makes the surrogate non-monotone; with it
    exact, raising a positive's score never lowers the soft AP. Binary and multilabel
    scores are the raw `input`; multiclass is one-vs-rest on log-softmax probabilities.

    Hard limit: at `temperature=0` this is the exact AP, equal to scikit-learn's
    `average_precision_score` for distinct scores. Tie rule: a negative tied with a
    positive counts as half a negative above it (the AUROC rule); tied positives are
    counted in any order, which gives the same value. scikit-learn instead treats a group
    of tied scores as one threshold, crediting every positive of the group with the
    precision at the group's end, so the two differ when scores tie.

    Columns without a positive have no AP: they are left out of "macro" and "weighted"
    averages and reported as 0 by "none"; when no column is defined the result is 0.
    Per-frame mAP of online action detection (THUMOS'14) is `task="multilabel"` (or
    multiclass) with `average="macro"`; pass the background class as a column of its own
    and drop it with `average="none"` (`values[1:].mean()`) or give its column no
    positive.

    The other arguments (`input`, `target`, `task`, `num_classes`, `temperature`,
    `ignore_index`, `chunk_size`, `validate_args`) and the errors raised are those of
    [`soft_auroc`][softmetrics.functional.soft_auroc].

    Args:
        average: "macro" (mean AP), "weighted" by number of positives, "micro" (all
            entries pooled into one ranking) or "none". Ignored for binary.

    Returns:
        AP in [0, 1]: a scalar, or (C,) for `average="none"`; float32 for half-precision
            inputs.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_average_precision
        >>> scores = torch.tensor([2.0, 0.7, 0.5, -1.0, 1.0], requires_grad=True)
        >>> target = torch.tensor([1, 1, 0, 0, 1])
        >>> soft_average_precision(scores, target, task="binary", temperature=0)
        tensor(1.)
        >>> ap = soft_average_precision(scores, target, task="binary", temperature=0.5)
        >>> ap.backward()
        >>> ap
        tensor(0.9002, grad_fn=<ToCopyBackward0>)
        >>> scores.grad
        tensor([ 0.0288,  0.0461, -0.1182, -0.0113,  0.0546])

    ??? cite "References"
        Brown, Xie, Kalogeiton and Zisserman, *Smooth-AP: Smoothing the Path Towards
        Large-Scale Image Retrieval*, ECCV 2020, arXiv:2007.12163.
    """
    return ranking_metric("soft_average_precision", "ap", input, target, task=task,
                          num_classes=num_classes, average=average, temperature=temperature,
                          ignore_index=ignore_index, chunk_size=chunk_size,
                          validate_args=validate_args)


def soft_calibrated_average_precision(input: Tensor, target: Tensor, *, task: Task,
                                      num_classes: int | None = None,
                                      average: Average = "macro",
                                      temperature: float | Tensor = 1.0,
                                      ignore_index: int | None = None,
                                      chunk_size: int | None = None,
                                      validate_args: bool = True) -> Tensor:
    r"""Soft calibrated average precision (cAP), the per-frame metric of TVSeries.

    $$
    \mathrm{cAP} = \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i / w},\qquad
    w = \frac{|N|}{|P|},
    $$

    with $k_i$ and $F_i$ as in
    [`soft_average_precision`][softmetrics.functional.soft_average_precision]: the
    precision at each positive's rank with false positives scaled by the ratio $w$ of
    negatives to positives, so that the value does not depend on how rare the class is
    (De Geest et al.). A column with positives but no negative has cAP 1.

    Hard limit: at `temperature=0`, for distinct scores, this equals the TVSeries
    reference `sum(tps / (tps + fps / w) * y) / sum(y)` over the scores sorted in
    decreasing order; ties follow the rule of
    [`soft_average_precision`][softmetrics.functional.soft_average_precision].

    Columns without a positive are left out of "macro" and "weighted" averages and reported
    as 0 by "none"; when no column is defined the result is 0. The mean cAP over action
    classes (background excluded) is `average="macro"`.

    The other arguments (`input`, `target`, `task`, `num_classes`, `temperature`,
    `ignore_index`, `chunk_size`, `validate_args`) and the errors raised are those of
    [`soft_auroc`][softmetrics.functional.soft_auroc].

    Args:
        average: "macro" (mean cAP), "weighted", "micro" or "none". Ignored for binary.

    Returns:
        The cAP in [0, 1], of the shape and dtype that `soft_average_precision` returns.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_calibrated_average_precision
        >>> scores = torch.tensor([2.0, 0.7, 0.5, -1.0, 1.0, 0.0])
        >>> target = torch.tensor([1, 0, 1, 0, 0, 0])
        >>> soft_calibrated_average_precision(scores, target, task="binary", temperature=0)
        tensor(0.8333)

    ??? cite "References"
        De Geest, Gavves, Ghodrati, Li, Snoek and Tuytelaars, *Online Action Detection*,
        ECCV 2016, arXiv:1604.06506 (TVSeries, calibrated AP). Used for per-frame cAP by
        TRN (Xu et al., ICCV 2019), IDN (Eun et al., CVPR 2020), OadTR (Wang et al., ICCV
        2021) and LSTR (Xu et al., NeurIPS 2021).
    """
    return ranking_metric("soft_calibrated_average_precision", "cap", input, target,
                          task=task, num_classes=num_classes, average=average,
                          temperature=temperature, ignore_index=ignore_index,
                          chunk_size=chunk_size, validate_args=validate_args)
