"""Exact match (subset accuracy), soft and exact: a unit counts when every entry in it is
right. The machinery is in `_exact_match_core`."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from .._options import MultidimAverage
from ._exact_match_core import exact_match


def soft_exact_match(input: Tensor, target: Tensor, *,
                     task: Literal["multiclass", "multilabel"], num_classes: int | None = None,
                     temperature: float | Tensor = 1.0, threshold: float = 0.5,
                     ignore_index: int | None = None,
                     multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                     validate_args: bool = True) -> Tensor:
    r"""Soft exact match (subset accuracy): the fraction of units whose every entry is right.

    A unit is one sample's label vector (multilabel; with extra axes $(N, C, d_1, \ldots)$,
    the labels of each position) or one sample's positions (multiclass). Its soft value is
    the probability that every entry is right, a product computed as a sum of logarithms:

    $$
    \mathrm{EM} = \frac{1}{U} \sum_u \exp \sum_{(n, c) \in u} \log q_{nc},\qquad
    q_{nc} = \begin{cases} \sigma(s_{nc}) & y_{nc} = 1 \\ 1 - \sigma(s_{nc}) & y_{nc} = 0
    \end{cases}
    $$

    with $s_{nc} = (z_{nc} - \operatorname{logit}(t)) / \tau$ (multilabel; $\log q$ is a
    log-sigmoid) or $q_n = \operatorname{softmax}(z_n / \tau)_{y_n}$ (multiclass; a
    log-softmax). Entries whose target is `ignore_index` need not match (a unit of ignored
    entries only is a match, as in torchmetrics).

    Hard limit: at `temperature=0` equals scikit-learn's `accuracy_score` on multilabel
    indicator arrays and torchmetrics' `multilabel_exact_match` and
    `multiclass_exact_match`; as the temperature falls the soft value converges to it.

    Arguments not listed below and the errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index] (there is no
    `average`: a unit is right or not as a whole).

    Args:
        task: "multilabel" or "multiclass" (for a multiclass input without extra axes this
            is accuracy).
        multidim_average: "global" is the fraction of right units over the batch
            (multilabel: of (sample, position) pairs), "samplewise" one value per sample
            (multilabel: the fraction of its positions whose labels are all right).
        zero_division: value when there is no unit (an empty batch, or no positions).

    Returns:
        A scalar, or (N,) for "samplewise"; in [0, 1].

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_exact_match
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [1.0, 1.5, -2.0], [-0.5, 2.0, 1.0]])
        >>> labels = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 1]])
        >>> soft_exact_match(logits, labels, task="multilabel", num_classes=3, temperature=0)
        tensor(0.6667)
        >>> soft_exact_match(logits, labels, task="multilabel", num_classes=3)
        tensor(0.3064)
    """
    return exact_match("soft_exact_match", input, target, task=task, num_classes=num_classes,
                       temperature=temperature, threshold=threshold, ignore_index=ignore_index,
                       multidim_average=multidim_average, zero_division=zero_division,
                       validate_args=validate_args)
