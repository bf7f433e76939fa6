r"""Classification surrogates: one statistics function, three formulas.

Every classification metric here is a formula over the per-class counts
$TP_c, FP_c, FN_c, TN_c$ of a decision $p$ against the target $y$:

$$
TP_c = \sum_n w_n p_{nc} y_{nc},\quad FP_c = \sum_n w_n p_{nc}(1 - y_{nc}),\quad
FN_c = \sum_n w_n (1 - p_{nc}) y_{nc},\quad TN_c = \sum_n w_n (1 - p_{nc})(1 - y_{nc}),
$$

with $w_n = 0$ for entries whose target equals `ignore_index`; for soft targets
(probabilities $y_{nc} \in [0, 1]$) $TP_c = \sum_n \min(p_{nc}, y_{nc})$, the same for 0/1
targets (see `soft_tversky_index`). The decision $p$ is the
exact one at `temperature=0` (one-hot argmax, or a threshold) and a softmax or sigmoid at
`temperature > 0` (see `softmetrics._relax`). The formulas:

- **Tversky** $TP / (TP + \alpha FP + \beta FN)$ covers precision ($\alpha=1,\beta=0$),
  recall ($0, 1$), F-beta ($\alpha = 1/(1+\beta^2)$, $\beta^2/(1+\beta^2)$), Dice = F1
  ($1/2, 1/2$) and Jaccard/IoU ($1, 1$);
- **accuracy** (and top-k accuracy, whose decision is "the true class ranks in the top k"),
  in `softmetrics.functional.accuracy`;
- **Matthews correlation** (Gorodkin's $R_K$), from the same counts;
- **exact match** (subset accuracy), a product over each sample's entries, not counts.

The arguments every function shares are described once, on `soft_tversky_index`, the
general formula; the other functions say what differs and link to it. The machinery
(option checks, counts, fused autograd Functions, formulas) is in `_classification_core`
and `_classification_counts`.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from .._options import AbsentClasses, Average, MultidimAverage, Relaxation, Task
from ._classification_core import (
    StatScores as StatScores,  # re-exported by softmetrics.functional
    evaluate,
    stat_scores,
)
from ._classification_options import fbeta_weights, top_k_options, tversky_weights


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

    The arguments are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index] (there is no
    `average` and no `zero_division`: nothing is divided).

    Returns:
        `StatScores(tp, fp, fn, tn)`, each of shape (C,) or (N, C) (C = 1 for binary):
        float64 (exact integers) at temperature 0, else in the input's dtype (float32 for
        half-precision inputs).

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_stat_scores
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
        >>> s = soft_stat_scores(logits, torch.tensor([0, 0, 1]), task="multiclass",
        ...                      num_classes=2, temperature=0)
        >>> s.tp.tolist(), s.fp.tolist(), s.fn.tolist(), s.tn.tolist()
        ([1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0])
    """
    return stat_scores("soft_stat_scores", input, target, task=task, num_classes=num_classes,
                       temperature=temperature, threshold=threshold,
                       ignore_index=ignore_index, multidim_average=multidim_average,
                       validate_args=validate_args)


def soft_tversky_index(input: Tensor, target: Tensor, *, task: Task,
                       num_classes: int | None = None, alpha: float = 0.5, beta: float = 0.5,
                       average: Average = "macro", temperature: float | Tensor = 1.0,
                       threshold: float = 0.5, ignore_index: int | None = None,
                       multidim_average: MultidimAverage = "global",
                       zero_division: float = 0.0, absent_classes: AbsentClasses | None = None,
                       class_weights: Tensor | Literal["generalized"] | None = None,
                       validate_args: bool = True) -> Tensor:
    r"""Soft Tversky index, the one formula behind precision, recall, F-beta, Dice and IoU.

    $$
    T_{\alpha,\beta} = \frac{TP}{TP + \alpha\, FP + \beta\, FN}
    $$

    over the soft counts of `soft_stat_scores`. $\alpha = \beta = 1/2$ is the Dice
    coefficient (= F1), $\alpha = \beta = 1$ the Jaccard index (IoU), $(1, 0)$ precision,
    $(0, 1)$ recall; $\beta > \alpha$ weighs misses more than false alarms.

    Hard limit: at `temperature=0` this is the exact Tversky index of the argmax/threshold
    predictions (for $\alpha=\beta=1$ scikit-learn's `jaccard_score`).

    This is the reference for the arguments every classification function shares: the
    others describe only what differs from the list below.

    Args:
        input: raw scores (logits), class axis 1: (N, ...) for binary, (N, C, ...)
            otherwise. Binary scores may also carry a singleton channel, (N, 1, ...)
            with an (N, ...) target, as segmentation models output them.
        target: (N, ...) class indices for multiclass; 0/1 of the input's shape otherwise.
            A floating target of the input's shape holds probabilities (soft targets:
            label smoothing, mixup, distillation, soft masks): multiclass (N, C, ...)
            class probabilities summing to 1 over axis 1, binary/multilabel values in
            [0, 1]. Then $TP_c = \sum_n \min(p_{nc}, y_{nc}) = \tfrac12 \sum_n (p_{nc} +
            y_{nc} - |p_{nc} - y_{nc}|)$ (Wang and Blaschko), FP and FN the rest of each
            mass: equal to the label counts for 0/1 targets, and every metric is best
            where $p = y$. No gradient flows to the target; its mass is the support; a
            multiclass soft target takes no `ignore_index` (the Classification page,
            "Soft targets"). A floating multiclass target of the label shape is an error.
        task: "binary", "multiclass" or "multilabel".
        num_classes: C; required unless binary.
        alpha: weight of false positives, >= 0.
        beta: weight of false negatives, >= 0.
        average: "micro" pools counts over classes, "macro" averages per-class values,
            "weighted" weighs them by support, "none" returns them. Binary tasks report
            the positive class.
        temperature: at least 0, a number or a one-element tensor (> 0, checked with
            `validate_args`); 0 gives the exact metric (no gradient).
        threshold: decision threshold on the probability for binary and multilabel.
        ignore_index: target value left out of every statistic (may lie outside [0, C),
            e.g. 255 in segmentation masks). A multiclass `ignore_index` inside [0, C)
            also takes its class out of the micro sums and the averages (torchmetrics'
            Jaccard index); `average="none"` still reports it.
        multidim_average: "global" pools all positions of (N, C, d1, ...) inputs,
            "samplewise" gives one value per sample.
        zero_division: value of a class whose denominator is 0.
        absent_classes: which classes a `"macro"` average counts. `"skip"` (the
            multiclass default) leaves out a class with no target and no prediction, as
            scikit-learn's default `labels` and torchmetrics do; `"include"` (the
            multilabel default; scikit-learn's `labels=range(C)`) counts every class, an
            absent one with `zero_division` when nothing predicts it. At temperature > 0
            "nothing predicts it" is relaxed without a gradient-free floor (the
            Classification page, "Which classes count"). None for binary.
        class_weights: a (C,) tensor of weights >= 0: a `"macro"` average becomes the
            weighted mean of the classes that count, a `"micro"` one (Tversky family)
            pools the weighted counts. `"generalized"` pools the counts with Sudre et
            al.'s weights $1/\text{support}_c^2$ (the generalized Dice score; a class with no
            support takes the largest weight of its group). None for binary.
        validate_args: check target values and that `input` is finite (reads data, one
            host synchronisation). Without it a NaN logit makes the value of its group
            (the batch, or its sample for "samplewise") NaN, soft or exact, never
            `zero_division`.

    Returns:
        A scalar; (C,) for `average="none"`; a leading (N,) axis for "samplewise". In
        [0, 1]; float32 for half-precision inputs. An empty batch gives `zero_division`
        ("global": no entries, every class divides 0 by 0) or an empty (0,) result
        ("samplewise").

    Raises:
        ValueError: on an option out of range, shapes that do not match the task, or
            (with `validate_args`) target values outside [0, C) (multiclass) or {0, 1}
            other than `ignore_index`, soft targets outside [0, 1] or (multiclass) whose
            sum over the classes is off 1 by more than max(1e-3, C eps), or a NaN or
            infinite `input`.
        TypeError: on a non-floating `input`, a non-integer multiclass `target`, or an
            option of the wrong type.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_tversky_index
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
        >>> target = torch.tensor([0, 1, 1])
        >>> soft_tversky_index(logits, target, task="multiclass", num_classes=2,
        ...                    alpha=0.3, beta=0.7, temperature=0)
        tensor(0.6787)

    ??? cite "References"
        Salehi, Erdogmus and Gholipour, *Tversky loss function for image segmentation using
        3D fully convolutional deep networks*, MLMI 2017, arXiv:1706.05721.
        Wang and Blaschko, *Jaccard Metric Losses: Optimizing the Jaccard Index with Soft
        Labels*, NeurIPS 2023, arXiv:2302.05666 (the counts of soft targets).
    """
    fn = "soft_tversky_index"
    alpha, beta = tversky_weights(fn, alpha, beta)
    return evaluate(fn, "tversky", input, target, alpha=alpha, beta=beta, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    absent_classes=absent_classes, class_weights=class_weights,
                    validate_args=validate_args)


def soft_fbeta_score(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                     beta: float = 1.0, average: Average = "macro",
                     temperature: float | Tensor = 1.0, threshold: float = 0.5,
                     ignore_index: int | None = None,
                     multidim_average: MultidimAverage = "global",
                     zero_division: float = 0.0, absent_classes: AbsentClasses | None = None,
                     class_weights: Tensor | Literal["generalized"] | None = None,
                     top_k: int = 1, validate_args: bool = True) -> Tensor:
    r"""Soft F-beta score.

    $$
    F_\beta = \frac{(1+\beta^2)\,TP}{(1+\beta^2)\,TP + \beta^2 FN + FP}
    $$

    the Tversky index with weights $1/(1+\beta^2)$ on FP and $\beta^2/(1+\beta^2)$ on FN.
    With probabilities as the decision this is the soft F1 of sigmoidF1 (Bénédict et al.)
    and of Su Jianlin's smooth F1.

    Hard limit: at `temperature=0` equals scikit-learn's `fbeta_score` (multiclass: its
    default `labels` with the default `absent_classes="skip"`, `labels=range(C)` with
    `"include"`; binary: `average="binary"`).

    Arguments not listed below, the result and the errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index].

    Args:
        beta: positive; recall is `beta` times as important as precision (in place of the
            Tversky weights `alpha`, `beta`). `beta=inf` (or any `beta` whose square
            overflows) gives recall, as in scikit-learn.
        zero_division: value where $(1+\beta^2) TP + \beta^2 FN + FP = 0$.
        top_k: the top-k decision of [soft_precision][softmetrics.functional.soft_precision];
            unlike there, a macro average keeps its usual rule (it skips only a class with
            no target and no prediction), as torchmetrics' F-beta does.

    Examples:
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
    alpha, beta = fbeta_weights(fn, beta)
    return evaluate(fn, "tversky", input, target, alpha=alpha, beta=beta, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    absent_classes=absent_classes, class_weights=class_weights,
                    validate_args=validate_args,
                    **top_k_options(fn, top_k, task=task, num_classes=num_classes,
                                    by_support=False))


def soft_f1_score(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                  average: Average = "macro", temperature: float | Tensor = 1.0,
                  threshold: float = 0.5, ignore_index: int | None = None,
                  multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                  absent_classes: AbsentClasses | None = None,
                  class_weights: Tensor | Literal["generalized"] | None = None,
                  top_k: int = 1, validate_args: bool = True) -> Tensor:
    r"""Soft F1 score (= soft Dice coefficient): the F-beta score with `beta=1`.

    $$
    F_1 = \frac{2\,TP}{2\,TP + FN + FP}
    $$

    [soft_fbeta_score][softmetrics.functional.soft_fbeta_score] with `beta=1`, the
    Tversky index with $\alpha = \beta = 1/2$.

    Hard limit: at `temperature=0` equals scikit-learn's `f1_score`.

    Arguments, result and errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index] without `alpha` and
    `beta`; `zero_division` is the value where $2TP + FN + FP = 0$; `top_k` is that of
    [soft_fbeta_score][softmetrics.functional.soft_fbeta_score].

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_f1_score
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
        >>> target = torch.tensor([0, 2, 2])
        >>> soft_f1_score(logits, target, task="multiclass", num_classes=3, temperature=0)
        tensor(0.5556)
        >>> soft_f1_score(logits, target, task="multiclass", num_classes=3)
        tensor(0.6050)

        Soft targets (here label smoothing) are probabilities of the input's shape; the
        score reaches 1 where the softmax equals them:

        >>> smooth = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.1, 0.9]])
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
        >>> soft_f1_score(logits, smooth, task="multiclass", num_classes=2, temperature=0)
        tensor(0.6329)
        >>> soft_f1_score(smooth.log(), smooth, task="multiclass", num_classes=2)
        tensor(1.)
    """
    return evaluate("soft_f1_score", "tversky", input, target, alpha=0.5, beta=0.5, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    absent_classes=absent_classes, class_weights=class_weights,
                    validate_args=validate_args,
                    **top_k_options("soft_f1_score", top_k, task=task, num_classes=num_classes,
                                    by_support=False))


def soft_precision(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                   average: Average = "macro", temperature: float | Tensor = 1.0,
                   threshold: float = 0.5, ignore_index: int | None = None,
                   multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                   absent_classes: AbsentClasses | None = None,
                   class_weights: Tensor | Literal["generalized"] | None = None,
                   top_k: int = 1, validate_args: bool = True) -> Tensor:
    r"""Soft precision $TP / (TP + FP)$, the fraction of predictions that are right.

    The Tversky index with $\alpha = 1, \beta = 0$: missed positives do not enter, so as a
    loss on its own it rewards predicting a class only where the model is most certain.

    Hard limit: at `temperature=0` equals scikit-learn's `precision_score`.

    Arguments not listed below, the result and the errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index] with `alpha=1, beta=0`.

    Args:
        zero_division: value of a class that nothing is assigned to ($TP + FP = 0$).
        top_k: multiclass only, an int in [1, C] (torchmetrics' `top_k`): an entry
            predicts its true class when that class is among its `top_k` highest scores,
            and its argmax otherwise, so a miss is a false positive of the argmax class
            only. Soft: the decision $h\,e_y + (1 - h)\operatorname{softmax}(z/\tau)$,
            with $h$ the soft hit of
            [soft_top_k_accuracy][softmetrics.functional.soft_top_k_accuracy]. With
            `top_k > 1` a macro average that skips absent classes (the multiclass
            default) skips every class absent from the target, as torchmetrics' precision
            and recall do. Integer targets only. At temperature 0 equal to torchmetrics'
            `multiclass_precision(..., top_k=k)` for distinct scores; a true class tied
            with one other at the k-th place is half a hit (torchmetrics takes whichever
            class `torch.topk` lists first), a larger tie counts by its middle, as in
            [soft_top_k_accuracy][softmetrics.functional.soft_top_k_accuracy].

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_precision, soft_recall
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
        >>> soft_precision(logits, torch.tensor([1, 1, 0, 0]), task="binary", temperature=0)
        tensor(0.5000)

        Top-2 decisions: the first and last samples' classes rank second, the middle
        one's last, so that sample predicts its argmax, class 0 (a false positive of a
        class absent from the target, which the macro average skips):

        >>> logits = torch.tensor([[0.1, 2.0, 1.0, -1.0], [1.5, 0.2, 0.1, 0.0],
        ...                        [0.0, 0.3, 2.0, 1.0]])
        >>> target = torch.tensor([2, 3, 3])
        >>> soft_precision(logits, target, task="multiclass", num_classes=4, top_k=2,
        ...                average="none", temperature=0)
        tensor([0., 0., 1., 1.])
        >>> soft_recall(logits, target, task="multiclass", num_classes=4, top_k=2,
        ...             temperature=0)
        tensor(0.7500)
    """
    return evaluate("soft_precision", "tversky", input, target, alpha=1.0, beta=0.0, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    absent_classes=absent_classes, class_weights=class_weights,
                    validate_args=validate_args,
                    **top_k_options("soft_precision", top_k, task=task, num_classes=num_classes,
                                    by_support=True))


def soft_recall(input: Tensor, target: Tensor, *, task: Task, num_classes: int | None = None,
                average: Average = "macro", temperature: float | Tensor = 1.0,
                threshold: float = 0.5, ignore_index: int | None = None,
                multidim_average: MultidimAverage = "global", zero_division: float = 0.0,
                absent_classes: AbsentClasses | None = None,
                class_weights: Tensor | Literal["generalized"] | None = None,
                top_k: int = 1, validate_args: bool = True) -> Tensor:
    r"""Soft recall $TP / (TP + FN)$, the fraction of positives found.

    The Tversky index with $\alpha = 0, \beta = 1$. Its denominator, the support, holds
    no prediction: false positives do not enter, so for binary and multilabel tasks a
    loss on recall alone is minimised by predicting every entry positive.

    Hard limit: at `temperature=0` equals scikit-learn's `recall_score`.

    Arguments, result and errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index] with `alpha=0, beta=1`;
    `zero_division` is the value of a class absent from the target ($TP + FN = 0$);
    `top_k` is that of [soft_precision][softmetrics.functional.soft_precision] (micro
    recall with `top_k` is top-k accuracy).

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_recall
        >>> logits = torch.tensor([[1.5, -0.5], [-2.0, 0.3], [0.8, 1.0]])
        >>> labels = torch.tensor([[1, 1], [0, 1], [1, 0]])
        >>> soft_recall(logits, labels, task="multilabel", num_classes=2, average="none",
        ...             temperature=0)
        tensor([1.0000, 0.5000])
    """
    return evaluate("soft_recall", "tversky", input, target, alpha=0.0, beta=1.0, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    absent_classes=absent_classes, class_weights=class_weights,
                    validate_args=validate_args,
                    **top_k_options("soft_recall", top_k, task=task, num_classes=num_classes,
                                    by_support=True))


def soft_jaccard_index(input: Tensor, target: Tensor, *, task: Task,
                       num_classes: int | None = None, average: Average = "macro",
                       temperature: float | Tensor = 1.0, threshold: float = 0.5,
                       ignore_index: int | None = None,
                       multidim_average: MultidimAverage = "global",
                       zero_division: float = 0.0, absent_classes: AbsentClasses | None = None,
                       class_weights: Tensor | Literal["generalized"] | None = None,
                       relaxation: Relaxation = "softmax", validate_args: bool = True) -> Tensor:
    r"""Soft Jaccard index (intersection over union): the Tversky index with $\alpha=\beta=1$.

    $$
    J = \frac{TP}{TP + FP + FN}
    $$

    With the softmax as decision this is the soft IoU used for segmentation (Rahman and
    Wang 2016); macro-averaged over classes it is the mean IoU of a segmentation map.
    `relaxation="lovasz"` relaxes the same index by the Lovász extension of each class's
    $1 - J_c$ instead (Berman et al. 2018): convex and piecewise linear in the errors
    $m$, sorted decreasingly per class,

    $$
    J^{\text{Lovász}}_c = 1 - \sum_k m_{(k)} \left(\Delta_k - \Delta_{k-1}\right),
    \qquad \Delta_k = 1 - \frac{G_c - \sum_{j \le k} y_{(j)}}{G_c + \sum_{j \le k} (1 - y_{(j)})},
    $$

    with $G_c$ the class's support; the Classification page's "The Lovász relaxation"
    says more.

    Hard limit: at `temperature=0` equals scikit-learn's `jaccard_score`, under either
    relaxation.

    Arguments not listed below, the result and the errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index] with
    `alpha=1, beta=1`; `zero_division` is the value of a class absent from target and
    prediction.

    Args:
        relaxation: `"softmax"` (default): the counts of $\operatorname{softmax}(z/\tau)$,
            or of $\sigma((z - \operatorname{logit}(t))/\tau)$ for binary and multilabel
            tasks. `"lovasz"`: the Lovász extension per class (per group for
            `"samplewise"`), with the errors $m = |y - \operatorname{softmax}(z/\tau)|$
            (Lovász-softmax, multiclass) or the hinge
            $m = \max(0, 1 - (2y - 1)(z - \operatorname{logit}(t))/\tau)$ (Lovász
            hinge, binary and each label of a multilabel task). Hinge errors are not
            bounded by 1, so a Lovász-hinge value can be below 0. `"micro"` sorts every
            (class, entry) pair as one column. A class with no target has the value
            `zero_division * (1 - its loss)` (its loss is its largest error); with
            `absent_classes="skip"` it counts in the macro mean with the weight
            $\ell / (\ell + \tau)$ of that loss $\ell$, exactly "is it predicted?" at
            temperature 0. `class_weights` must be a tensor, with `average="macro"`.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_jaccard_index
        >>> logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
        >>> mask = torch.zeros(2, 4, 4, dtype=torch.long); mask[:, :2] = 1; mask[0, 0, 0] = 255
        >>> soft_jaccard_index(logits, mask, task="multiclass", num_classes=3,
        ...                    ignore_index=255, temperature=0)
        tensor(0.2524)
        >>> soft_jaccard_index(logits, mask, task="multiclass", num_classes=3,
        ...                    ignore_index=255, relaxation="lovasz", temperature=0)
        tensor(0.2524)
        >>> soft_jaccard_index(logits, mask, task="multiclass", num_classes=3,
        ...                    ignore_index=255, relaxation="lovasz")
        tensor(0.3001)

    ??? cite "References"
        Rahman and Wang, *Optimizing Intersection-Over-Union in Deep Neural Networks for
        Image Segmentation*, ISVC 2016.

        Berman, Rannen Triki and Blaschko, *The Lovász-Softmax loss: A tractable
        surrogate for the optimization of the intersection-over-union measure in neural
        networks*, CVPR 2018, arXiv:1705.08790.
    """
    return evaluate("soft_jaccard_index", "tversky", input, target, alpha=1.0, beta=1.0, task=task,
                    num_classes=num_classes, average=average, temperature=temperature,
                    threshold=threshold, ignore_index=ignore_index,
                    multidim_average=multidim_average, zero_division=zero_division,
                    absent_classes=absent_classes, class_weights=class_weights,
                    relaxation=relaxation, validate_args=validate_args)


def soft_matthews_corrcoef(input: Tensor, target: Tensor, *, task: Task,
                           num_classes: int | None = None, average: Average = "micro",
                           temperature: float | Tensor = 1.0, threshold: float = 0.5,
                           ignore_index: int | None = None,
                           multidim_average: MultidimAverage = "global",
                           zero_division: float = 0.0, absent_classes: AbsentClasses | None = None,
                           class_weights: Tensor | Literal["generalized"] | None = None,
                           validate_args: bool = True) -> Tensor:
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

    Arguments not listed below and the errors are those of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index].

    Args:
        average: "micro" (default), "macro", "weighted" or "none", as above.
        zero_division: value when a marginal is constant (the denominator is 0).

    Returns:
        A scalar, (C,) for "none", with a leading (N,) for "samplewise"; in [-1, 1].

    Examples:
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
                    absent_classes=absent_classes, class_weights=class_weights,
                    validate_args=validate_args)
