r"""Accuracy surrogates: the expected fraction of correct decisions, and top-k accuracy.

The same pipeline as the other classification metrics (`_classification_core.evaluate`),
with the accuracy formula over the counts; the arguments they share are described on
[soft_tversky_index][softmetrics.functional.soft_tversky_index].
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from .._options import AbsentClasses, Average, MultidimAverage, Task
from ._classification_core import evaluate


def soft_accuracy(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                  average: Average = "micro", temperature: float | Tensor = 1.0,
                  threshold: float = 0.5, ignore_index: int | None = None,
                  multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                  absent_classes: AbsentClasses | None = None,
                  class_weights: Tensor | Literal["generalized"] | None = None,
                  validate_args: bool = True) -> Tensor:
    r"""Soft accuracy: the expected fraction of correct decisions.

    Multiclass, `average="micro"`: $\frac{1}{N}\sum_n p_{n, y_n}$, the mean probability of
    the true class; `"macro"` is balanced accuracy, the mean recall over the classes
    present in the target; `"none"` gives per-class recall. Binary: $(TP + TN) / N$.
    Multilabel: `"micro"` is one minus the Hamming loss, the other averages are per-label accuracy.

    Hard limit: at `temperature=0` equals scikit-learn's `accuracy_score` (multiclass
    micro, binary), `balanced_accuracy_score` (multiclass macro) and `1 - hamming_loss`
    (multilabel micro).

    Arguments not listed below, the result and the errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index].

    Args:
        average: "micro" (default), "macro", "weighted" or "none", as above.
        zero_division: value when there is nothing to count.

    Examples:
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
                    zero_division=zero_division, absent_classes=absent_classes,
                    class_weights=class_weights,
                    validate_args=validate_args)


def soft_top_k_accuracy(input: Tensor, target: Tensor, *, num_classes: int, k: int = 1,
                        task: Literal["multiclass"] = "multiclass", average: Average = "micro",
                        temperature: float | Tensor = 1.0, ignore_index: int | None = None,
                        multidim_average: MultidimAverage = "global",
                        zero_division: float = 0.0, absent_classes: AbsentClasses | None = None,
                        class_weights: Tensor | Literal["generalized"] | None = None,
                        validate_args: bool = True) -> Tensor:
    r"""Soft top-k accuracy: is the true class among the k highest scores?

    The rank of the true class $r_n = \#\{j \ne y_n : z_{nj} > z_{ny_n}\}$ is relaxed to
    $\tilde r_n = \sum_{j \ne y_n} \sigma((z_{nj} - z_{ny_n}) / \tau)$ and the hit
    $[r_n < k]$ to $\sigma((k - \tfrac12 - \tilde r_n) / \tau)$; the hits are then the
    true positives of the accuracy formula (`average` as in `soft_accuracy`).

    Hard limit: at `temperature=0` the rank counts each tied class as 1/2 (the comparison
    step of `softmetrics._relax`) and the hit is the step of $k - \tfrac12 - r_n$, 1/2 at
    0, the limit of the soft hit; for distinct scores it equals scikit-learn's
    `top_k_accuracy_score`. A true class tied with one other class at the k-th place is
    half a hit. A tie of m classes counts by its middle, not by the share of its orders
    that rank the true class inside the top k: 1, 1/2 or 0 as the middle of the tie
    lies inside the top k, on its boundary or below it (three classes tied at the top
    give 0 for k = 1 and 1 for k = 2, where that share is 1/3 and 2/3). Exact counts are
    thus multiples of 1/2 (see `soft_precision`).

    Multiclass only, with no threshold. Arguments not listed below, the result and the
    errors are those of [soft_tversky_index][softmetrics.functional.soft_tversky_index].

    Args:
        input: raw scores (logits) of shape (N, C, ...).
        target: class indices of shape (N, ...).
        num_classes: C (required).
        k: number of top-ranked classes that count as a hit, 1 <= k <= C.
        task: only "multiclass".
        average: "micro" (default; fraction of hits), "macro" (mean per-class hit rate),
            "weighted" or "none".
        zero_division: value when there is nothing to count.

    Examples:
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
                    zero_division=zero_division, absent_classes=absent_classes,
                    class_weights=class_weights,
                    validate_args=validate_args)
