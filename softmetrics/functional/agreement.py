r"""Agreement between the decision and the target beyond chance: Cohen's kappa,
unweighted and weighted (the quadratic weighted kappa of ordinal grading). The machinery
is in `_agreement_core`."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from ._agreement_core import KappaWeights, cohen_kappa


def soft_cohen_kappa(input: Tensor, target: Tensor, *, task: Literal["binary", "multiclass"],
                     num_classes: int | None = None, weights: KappaWeights = None,
                     temperature: float | Tensor = 1.0, threshold: float = 0.5,
                     ignore_index: int | None = None, zero_division: float = 0.0,
                     validate_args: bool = True) -> Tensor:
    r"""Soft Cohen's kappa, unweighted or weighted (linear, quadratic: QWK).

    Over the soft confusion matrix $O_{ij} = \sum_n w_n [y_n = i]\, p_{nj}$ (rows: the
    target; columns: the decision $p$, $\operatorname{softmax}(z/\tau)$ or the one-hot
    argmax at temperature 0), with row sums $t_i$ (the support), column sums $q_j$ (the
    predicted mass) and total $N$:

    $$
    \kappa = 1 - \frac{\sum_{ij} W_{ij} O_{ij}}{\sum_{ij} W_{ij}\, t_i q_j / N},
    \qquad W_{ij} = [i \ne j],\ |i - j| \text{ or } (i - j)^2
    $$

    for `weights` None, "linear" or "quadratic" (scikit-learn's `cohen_kappa_score`;
    Cohen 1960, 1968). The numerator is $\sum_n w_n \sum_j W_{y_n j}\, p_{nj}$, a sum over
    samples, and no (C, C) matrix is formed (O(N C) work, O(C) memory beyond the
    decision). Unweighted, kappa reads the counts of every
    classification metric,
    $\kappa = (N \sum_c TP_c - \sum_c q_c t_c) / (N^2 - \sum_c q_c t_c)$, which is
    $R_K$'s numerator ([soft_matthews_corrcoef][softmetrics.functional.soft_matthews_corrcoef])
    over another denominator. Binary tasks use the threshold (sigmoid) decision and the
    2 x 2 table, where the three weightings coincide ($W_{01} = W_{10} = 1$).

    Hard limit: at `temperature=0` equals scikit-learn's
    `cohen_kappa_score(target, prediction, weights=..., labels=range(C))` and
    torchmetrics' `cohen_kappa`. The class distances are the class indices, so absent
    classes keep their place (scikit-learn's default `labels`, the classes present,
    would close the gaps and change weighted values). When every entry of the target and
    of the decision falls in one and the same class, kappa is 0/0 and takes
    `zero_division` (scikit-learn: `replace_undefined_by`, NaN by default, with a
    warning; torchmetrics: NaN). At temperature > 0 the softmax gives every class some
    mass, so the soft value is always defined (0 for a target of one class).

    The arguments not listed below and the errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index]; there is no
    `average` (kappa is one number for all classes) and no `multidim_average`: extra
    axes $(N, C, d_1, \ldots)$ are pooled.

    Args:
        task: "binary" or "multiclass" (multilabel is not supported).
        target: class indices (N, ...) for multiclass, 0/1 labels of the input's shape for
            binary; class probabilities are not supported (a confusion matrix of soft
            targets would need a choice of how target and decision are coupled).
        weights: None (unweighted), "linear" or "quadratic": the cost of a disagreement
            between classes $i$ and $j$ is $[i \ne j]$, $|i - j|$ or $(i - j)^2$. The
            weighted forms suit ordinal labels (grades), where a near miss costs less.
        zero_division: the value when the chance disagreement
            $\sum_{ij} W_{ij} t_i q_j$ is 0 (and so is the observed one), in [0, 1].

    Returns:
        A scalar in [-1, 1]; float32 for half-precision inputs.

    Raises:
        ValueError: on `task="multilabel"`, a `weights` other than None, "linear" or
            "quadratic", and the errors of `soft_tversky_index`.
        TypeError: on class probabilities as a multiclass target, and the errors of
            `soft_tversky_index`.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_cohen_kappa
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.5], [-1.0, 0.0, 2.0],
        ...                        [0.5, 1.5, 0.0], [0.0, 0.2, 1.0]])
        >>> grades = torch.tensor([0, 1, 2, 2, 1])
        >>> soft_cohen_kappa(logits, grades, task="multiclass", num_classes=3,
        ...                  temperature=0)
        tensor(0.3750)
        >>> soft_cohen_kappa(logits, grades, task="multiclass", num_classes=3,
        ...                  weights="quadratic", temperature=0)
        tensor(0.6429)
        >>> soft_cohen_kappa(logits, grades, task="multiclass", num_classes=3,
        ...                  weights="quadratic")
        tensor(0.4454)

    ??? cite "References"
        Cohen, *A coefficient of agreement for nominal scales*, Educational and
        Psychological Measurement 20(1), 1960.

        Cohen, *Weighted kappa: Nominal scale agreement provision for scaled disagreement
        or partial credit*, Psychological Bulletin 70(4), 1968.

        de la Torre, Puig and Valls, *Weighted kappa loss function for multi-class
        classification of ordinal data in deep learning*, Pattern Recognition Letters
        105, 2018 (the soft QWK as a loss).
    """
    return cohen_kappa("soft_cohen_kappa", input, target, task=task, num_classes=num_classes,
                       weights=weights, temperature=temperature, threshold=threshold,
                       ignore_index=ignore_index, zero_division=zero_division,
                       validate_args=validate_args)
