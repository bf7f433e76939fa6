"""Classification losses: `1 - soft metric` of one formula over the soft counts.

Every loss takes the options of its functional twin, checked once in `__init__`, and the
set-level options `sync_dist` and `momentum` (see `_ClassificationLoss`), which act on the
counts of the whole batch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor

from .. import _checks, distributed
from .._options import (
    REDUCTIONS,
    AbsentClasses,
    Average,
    MultidimAverage,
    Reduction,
    Relaxation,
    Task,
)
from .._relax import as_tensor_on
from ..functional._classification_core import Counts, CountsHook, Kind, evaluate
from ..functional._classification_options import (
    check_class_weight_values,
    check_class_weights,
    check_classification_options,
    check_top_k,
    fbeta_weights,
    top_k_options,
    tversky_weights,
)
from ..functional._lovasz import check_lovasz_options
from ._base import RunningStatistics, check_number_temperature, set_level_repr


class _ClassificationLoss(RunningStatistics):
    """`1 - soft metric` of one classification formula, with its options fixed.

    Options are those of the functional twin and are validated once, here; an unknown
    keyword raises `TypeError`. `forward` returns the loss (per class for
    `average="none"`); `metric` the exact metric (temperature 0) with the same options.

    `reduction`, as in torch's losses, acts on the per-sample losses of
    `multidim_average="samplewise"`: "mean" (default) over the samples, "sum", or "none"
    for the (N,) losses (the losses of `metric`'s (N,) values). With "global" the loss is
    one number for the whole batch and only "mean" is accepted.

    An empty batch gives `1 - zero_division` for `multidim_average="global"` (the metric
    of no entries is `zero_division`) and 0 for `"samplewise"` (the mean or sum of no
    per-sample losses), as the Classification page explains under "Empty batches".

    Set-level options (the API page's "Set-level options" says the same to users):

    - `sync_dist=True` sums the soft statistics over the processes of `process_group`
      (default: the whole world) with an autograd-aware all-reduce before the formula, so
      that every process optimises the metric of the global batch (see
      `softmetrics.distributed`); `metric` then also reports the global exact metric.
    - `momentum=m` replaces the batch statistics by `m * running + (1 - m) * batch`, where
      `running` (buffers, saved in `state_dict`) holds the previous mixed statistics,
      detached, and is updated in training mode: a lower-variance estimate of the
      dataset-level metric than one mini-batch gives. The first batch initialises it.
    """

    _fn_name: ClassVar[str]  # the functional twin, whose options the loss takes
    _kind: ClassVar[Kind]
    _default_average: ClassVar[Average] = "macro"
    _float32_buffers: ClassVar[tuple[str, ...]] = ("running_", "class_weights")
    gamma: float = 1.0  # the focal exponent of the loss (Tversky family; 1: `1 - metric`)

    def __init__(self, *, task: Task,
                 num_classes: int | None = None, average: Average | None = None,
                 temperature: float = 1.0, threshold: float = 0.5,
                 ignore_index: int | None = None, multidim_average: MultidimAverage = "global",
                 zero_division: float = 0.0, absent_classes: AbsentClasses | None = None,
                 class_weights: Tensor | Literal["generalized"] | None = None,
                 validate_args: bool = True, sync_dist: bool = False,
                 process_group: torch.distributed.ProcessGroup | None = None,
                 momentum: float | None = None, reduction: Reduction = "mean",
                 **unexpected: Any) -> None:
        super().__init__()
        average = self._default_average if average is None else average
        name = type(self).__name__
        _checks.check_no_extra_options(name, unexpected)
        check_classification_options(name, task=task, num_classes=num_classes,
                                     average=average, temperature=temperature,
                                     threshold=threshold, ignore_index=ignore_index,
                                     multidim_average=multidim_average,
                                     zero_division=zero_division,
                                     absent_classes=absent_classes)
        check_class_weights(name, self._kind, class_weights, task=task,
                            num_classes=num_classes, average=average)
        check_class_weight_values(name, class_weights)
        # a (C,) tensor follows the Module's device; not saved in the state_dict (an option)
        self.class_weights: Tensor | str | None
        if isinstance(class_weights, Tensor):
            self.register_buffer("class_weights", class_weights.detach().float().clone(),
                                 persistent=False)
        else:
            self.class_weights = class_weights
        _checks.check_option(name, "reduction", reduction, REDUCTIONS)
        if multidim_average == "global" and reduction != "mean":
            _checks.fail(name, "reduction", "'mean' with multidim_average='global' (the "
                         "loss of the whole batch is one number; per-sample losses need "
                         "multidim_average='samplewise')", reduction)
        self.reduction = reduction
        check_number_temperature(name, temperature)
        self.options: dict[str, Any] = dict(
            task=task, num_classes=num_classes, average=average, threshold=threshold,
            ignore_index=ignore_index, multidim_average=multidim_average,
            zero_division=zero_division, absent_classes=absent_classes,
            validate_args=validate_args)
        # the formula's own options (Tversky weights, top k, relaxation): a subclass's
        # `__init__` sets them after this one, so that no public loss takes them as an
        # argument
        self.formula: dict[str, Any] = {}
        self.temperature = temperature
        if sync_dist and multidim_average == "samplewise":
            _checks.fail(name, "sync_dist", "False with multidim_average='samplewise' "
                         "(per-sample values are averaged by data parallelism already)",
                         sync_dist)
        self.keep_set_level_options(sync_dist, process_group, momentum)
        if momentum is not None:
            if multidim_average == "samplewise":
                _checks.fail(name, "momentum", "None with multidim_average='samplewise' "
                             "(running statistics pool samples)", momentum)
            columns = 1 if task == "binary" else int(num_classes or 1)
            self.register_running(Counts._fields, (1, columns))

    def _sync(self, counts: Counts) -> Counts:
        tp, pred, support, total = counts
        total = as_tensor_on(total, tp).expand(
            tp.shape[0], -1 if isinstance(total, Tensor) else 1)
        return Counts(*distributed.all_reduce_sums((tp, pred, support, total),
                                                   self.process_group))

    def _hook(self, counts: Counts) -> Counts:
        if self.sync_dist:
            counts = self._sync(counts)
        if self.momentum is None:
            return counts
        batch = [as_tensor_on(value, counts.tp) for value in counts]
        total = counts.total  # a number where nothing is ignored: known without the data
        entries = (total > 0).any() if isinstance(total, Tensor) else bool(total > 0)
        return Counts(*self.mix_running(batch, entries))

    def _value(self, input: Tensor, target: Tensor, temperature: float,
               hook: CountsHook | None, focal: bool = False) -> Tensor:
        formula = self.formula
        if focal and self.gamma != 1.0:  # the loss's exponent, never the metric's
            formula = {**formula, "gamma": self.gamma}
        return evaluate(type(self).__name__, self._kind, input, target, temperature=temperature,
                        hook=hook, check=False, class_weights=self.class_weights,
                        **formula, **self.options)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss `1 - soft metric` (for MCC: in [0, 2])."""
        if self.momentum is not None:
            self.check_running_device(input)
        hook = self._hook if (self.sync_dist or self.momentum is not None) else None
        loss = 1.0 - self._value(input, target, self.temperature, hook, focal=True)
        if self.options["multidim_average"] == "samplewise" and self.reduction != "none":
            # the sum or mean over samples; the mean of an empty batch is 0, not NaN
            samples = max(loss.shape[0], 1)
            loss = loss.sum(0)
            if self.reduction == "mean":
                loss = loss / samples
        return loss

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact metric (temperature 0) with this loss's options; no gradient."""
        return self._value(input, target, 0.0, self._sync if self.sync_dist else None)

    def _formula_repr(self) -> dict[str, Any]:
        """The formula's options as the constructor took them: `top_k` and `relaxation`
        where set (the Tversky weights of precision, recall, F1, Dice and Jaccard follow
        from the class, and `skip_unsupported` from the class and `top_k`)."""
        return {k: v for k, v in self.formula.items() if k in ("top_k", "relaxation")}

    def _options_repr(self) -> dict[str, Any]:
        """The options every classification loss takes, as shown."""
        return dict(self.options)

    def extra_repr(self) -> str:
        shown = {**self._options_repr(), **self._formula_repr()}
        if isinstance(self.class_weights, str):
            shown["class_weights"] = self.class_weights
        elif self.class_weights is not None:
            shown["class_weights"] = [round(w, 6) for w in self.class_weights.tolist()]
        if self.gamma != 1.0:
            shown["gamma"] = self.gamma
        if self.reduction != "mean":
            shown["reduction"] = self.reduction
        return set_level_repr(self, shown)


class SoftAccuracyLoss(_ClassificationLoss):
    """`1 - soft_accuracy`: the loss of
    [soft_accuracy][softmetrics.functional.soft_accuracy].

    Options: those of `soft_accuracy` (`average="micro"` by default; "macro" is balanced
    accuracy), and the [set-level options](losses.md#set-level-options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftAccuracyLoss
        >>> loss_fn = SoftAccuracyLoss(task="multiclass", num_classes=3)
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
        >>> target = torch.tensor([0, 2])
        >>> loss_fn(logits, target)
        tensor(0.5005, grad_fn=<RsubBackward1>)
        >>> loss_fn.metric(logits, target)
        tensor(0.5000)
    """

    _fn_name, _kind, _default_average = "soft_accuracy", "accuracy", "micro"


def _focal_exponent(name: str, gamma: float) -> float:
    """The focal exponent of a Tversky-family loss: a finite number > 0."""
    return _checks.check_number(name, "gamma", gamma, low=0.0, low_open=True,
                                high=math.inf, high_open=True)


class _TverskyLoss(_ClassificationLoss):
    """A loss of the Tversky family with the weights (alpha, beta) of its metric and the
    focal exponent `gamma` (see `SoftTverskyLoss`); precision, recall and F1 also take
    `top_k` (`_top_k`: None where the metric has no `top_k`, else whether a macro
    average skips every class absent from the target, as for precision and recall)."""

    _kind = "tversky"
    _weights: ClassVar[tuple[float, float]]
    _top_k: ClassVar[bool | None] = None

    def __init__(self, *, task: Task, gamma: float = 1.0, **options: Any) -> None:
        alpha, beta = self._weights
        name = type(self).__name__
        self.gamma = _focal_exponent(name, gamma)
        formula: dict[str, Any] = dict(alpha=alpha, beta=beta)
        if self._top_k is not None:
            formula.update(top_k_options(name, options.pop("top_k", 1), task=task,
                                         num_classes=options.get("num_classes"),
                                         by_support=self._top_k))
        super().__init__(task=task, **options)
        self.formula.update(formula)


class SoftPrecisionLoss(_TverskyLoss):
    """`1 - soft_precision`: the loss of
    [soft_precision][softmetrics.functional.soft_precision].

    Options: those of `soft_precision`, `gamma`, the focal exponent (see
    [SoftTverskyLoss][softmetrics.SoftTverskyLoss]), and the
    [set-level options](losses.md#set-level-options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftPrecisionLoss
        >>> loss_fn = SoftPrecisionLoss(task="multilabel", num_classes=3, average="micro")
        >>> logits = torch.tensor([[3.0, -1.0, 0.5], [-2.0, 2.0, 1.0]])
        >>> labels = torch.tensor([[1, 0, 0], [0, 1, 1]])
        >>> loss_fn(logits, labels), loss_fn.metric(logits, labels)
        (tensor(0.2827), tensor(0.7500))
    """

    _fn_name, _weights, _top_k = "soft_precision", (1.0, 0.0), True


class SoftRecallLoss(_TverskyLoss):
    """`1 - soft_recall`: the loss of [soft_recall][softmetrics.functional.soft_recall].

    Options: those of `soft_recall`, `gamma`, the focal exponent (see
    [SoftTverskyLoss][softmetrics.SoftTverskyLoss]), and the
    [set-level options](losses.md#set-level-options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftRecallLoss
        >>> loss_fn = SoftRecallLoss(task="binary", threshold=0.3, temperature=0.5)
        >>> scores = torch.tensor([[1.2, -0.4], [-1.5, 0.2]])  # (N, H, W) pixel logits
        >>> loss_fn(scores, torch.tensor([[1, 1], [0, 1]]))
        tensor(0.1387)
    """

    _fn_name, _weights, _top_k = "soft_recall", (0.0, 1.0), True


class SoftF1Loss(_TverskyLoss):
    """`1 - soft_f1_score`: the soft F1 (= soft Dice) loss, the loss of
    [soft_f1_score][softmetrics.functional.soft_f1_score]; also named
    [SoftDiceLoss][softmetrics.SoftDiceLoss].

    Options: those of `soft_f1_score`, `gamma`, the focal exponent (see
    [SoftTverskyLoss][softmetrics.SoftTverskyLoss]), and the
    [set-level options](losses.md#set-level-options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftF1Loss
        >>> loss_fn = SoftF1Loss(task="binary")
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0], requires_grad=True)
        >>> loss = loss_fn(logits, torch.tensor([1, 1, 0, 0]))
        >>> loss.backward()
        >>> loss, logits.grad
        (tensor(0.3980, grad_fn=<RsubBackward1>), tensor([-0.0384, -0.0720,  0.0370,  0.0071]))
    """

    _fn_name, _weights, _top_k = "soft_f1_score", (0.5, 0.5), False


class SoftDiceLoss(SoftF1Loss):
    """The soft Dice loss: [SoftF1Loss][softmetrics.SoftF1Loss] under the name segmentation
    uses (the Dice coefficient is the F1 score), with the same options and values.

    Examples:
        >>> import torch
        >>> from softmetrics import SoftDiceLoss
        >>> logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> mask = torch.zeros(2, 8, 8, dtype=torch.long); mask[:, 2:6, 2:6] = 2
        >>> SoftDiceLoss(task="multiclass", num_classes=3,
        ...              multidim_average="samplewise")(logits, mask)
        tensor(0.7522)
    """


class SoftJaccardLoss(_TverskyLoss):
    """`1 - soft_jaccard_index`, the loss of
    [soft_jaccard_index][softmetrics.functional.soft_jaccard_index]: the soft IoU loss
    for segmentation judged by mean IoU ([SoftIoULoss][softmetrics.SoftIoULoss] is its
    other name).

    Options: those of `soft_jaccard_index` (among them `relaxation`: `"lovasz"` is the
    Lovász-softmax / Lovász hinge loss, also named [LovaszLoss][softmetrics.LovaszLoss]),
    `gamma`, the focal exponent (see [SoftTverskyLoss][softmetrics.SoftTverskyLoss]), and
    the [set-level options](losses.md#set-level-options), which the Lovász relaxation
    does not take: it sorts the entries of the batch, not counts that can be summed.

    Examples:
        >>> import torch
        >>> logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
        >>> mask = torch.zeros(2, 4, 4, dtype=torch.long); mask[:, :2] = 1; mask[0, 0, 0] = 255
        >>> from softmetrics import SoftJaccardLoss
        >>> loss_fn = SoftJaccardLoss(task="multiclass", num_classes=3, ignore_index=255)
        >>> loss_fn(logits, mask), loss_fn.metric(logits, mask)  # metric: mean IoU
        (tensor(0.7915), tensor(0.2524))
    """

    _fn_name, _weights = "soft_jaccard_index", (1.0, 1.0)

    def __init__(self, *, task: Task, relaxation: Relaxation = "softmax",
                 **options: Any) -> None:
        name = type(self).__name__
        check_lovasz_options(name, relaxation, average=options.get("average") or "macro",
                             class_weights=options.get("class_weights"))
        super().__init__(task=task, **options)
        self.relaxation = relaxation
        if relaxation == "lovasz":
            self.formula["relaxation"] = relaxation
            for option, off in (("sync_dist", False), ("momentum", None)):
                if getattr(self, option) != off:
                    _checks.fail(name, option, f"{off} with relaxation='lovasz' (the "
                                 "extension sorts the batch's entries; it has no counts to "
                                 "sum or to keep)", getattr(self, option))


class LovaszLoss(SoftJaccardLoss):
    r"""The Lovász-softmax loss (multiclass) and Lovász hinge loss (binary, multilabel) of
    Berman, Rannen Triki and Blaschko: [SoftJaccardLoss][softmetrics.SoftJaccardLoss]
    with `relaxation="lovasz"`, the convex Lovász extension of each class's Jaccard loss
    $1 - J_c$ (the formula on
    [soft_jaccard_index][softmetrics.functional.soft_jaccard_index]).

    Options: those of `SoftJaccardLoss` but `relaxation`, `sync_dist` and `momentum`.
    The paper's per-image loss is `multidim_average="samplewise"`, its "present" classes
    `absent_classes="skip"`; `.metric` returns the exact Jaccard index.

    Examples:
        >>> import torch
        >>> from softmetrics import LovaszLoss
        >>> logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0),
        ...                      requires_grad=True)
        >>> mask = torch.zeros(2, 4, 4, dtype=torch.long); mask[:, :2] = 1; mask[0, 0, 0] = 255
        >>> loss_fn = LovaszLoss(task="multiclass", num_classes=3, ignore_index=255,
        ...                      multidim_average="samplewise")
        >>> loss = loss_fn(logits, mask)
        >>> loss.backward()
        >>> loss, loss_fn.metric(logits, mask), logits.grad.abs().sum()
        (tensor(0.6987, grad_fn=<DivBackward0>), tensor([0.2444, 0.2583]), tensor(0.2855))

    ??? cite "Reference"
        Berman, Rannen Triki and Blaschko, *The Lovász-Softmax loss: A tractable
        surrogate for the optimization of the intersection-over-union measure in neural
        networks*, CVPR 2018, arXiv:1705.08790.
    """

    def __init__(self, *, task: Task, **options: Any) -> None:
        if "relaxation" in options:
            _checks.fail(type(self).__name__, "relaxation", "unset (LovaszLoss is "
                         "SoftJaccardLoss with relaxation='lovasz')", options["relaxation"],
                         error=TypeError)
        super().__init__(task=task, relaxation="lovasz", **options)

    def _formula_repr(self) -> dict[str, Any]:
        return {}  # the relaxation is the class


class SoftIoULoss(SoftJaccardLoss):
    """The soft IoU loss: [SoftJaccardLoss][softmetrics.SoftJaccardLoss] under the name
    segmentation uses (intersection over union is the Jaccard index), with the same
    options and values.

    Examples:
        >>> import torch
        >>> from softmetrics import SoftIoULoss
        >>> logits = torch.tensor([[3.0, -2.0], [0.5, 1.5], [-1.0, -0.5]])
        >>> loss_fn = SoftIoULoss(task="multilabel", num_classes=2, average="none")
        >>> loss_fn(logits, torch.tensor([[1, 0], [1, 1], [0, 0]]))
        tensor([0.3058, 0.4538])
    """


class SoftFBetaLoss(_ClassificationLoss):
    """`1 - soft_fbeta_score`: the loss of
    [soft_fbeta_score][softmetrics.functional.soft_fbeta_score] with the given `beta`.

    Options: those of `soft_fbeta_score`, `gamma`, the focal exponent (see
    [SoftTverskyLoss][softmetrics.SoftTverskyLoss]), and the
    [set-level options](losses.md#set-level-options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftFBetaLoss
        >>> loss_fn = SoftFBetaLoss(task="binary", beta=2.0, momentum=0.9)
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
        >>> loss_fn(logits, torch.tensor([1, 1, 0, 0]))  # the first batch starts the counts
        tensor(0.4146)
        >>> loss_fn(logits, torch.tensor([0, 1, 1, 0]))  # 0.9 running + 0.1 batch counts
        tensor(0.4277)
        >>> loss_fn.running_tp  # the mixed soft true positives, kept for the next batch
        tensor([[1.1239]])
    """

    _fn_name, _kind = "soft_fbeta_score", "tversky"

    def __init__(self, *, task: Task, beta: float = 1.0, gamma: float = 1.0, top_k: int = 1,
                 **options: Any) -> None:
        name = type(self).__name__
        alpha, weight = fbeta_weights(name, beta)
        self.beta = float(beta)
        self.gamma = _focal_exponent(name, gamma)
        top = top_k_options(name, top_k, task=task, num_classes=options.get("num_classes"),
                            by_support=False)
        super().__init__(task=task, **options)
        self.formula.update(alpha=alpha, beta=weight, **top)

    def _formula_repr(self) -> dict[str, Any]:
        return {"beta": self.beta, **super()._formula_repr()}  # F-beta's, not Tversky's


class SoftTverskyLoss(_ClassificationLoss):
    r"""`1 - soft_tversky_index`: the loss of
    [soft_tversky_index][softmetrics.functional.soft_tversky_index] with the given
    `alpha` (weight of false positives) and `beta` (weight of false negatives).

    Options: those of `soft_tversky_index`, `gamma` (below), and the
    [set-level options](losses.md#set-level-options).

    **Focal Tversky loss.** `gamma` (a number > 0, default 1) raises the loss of each
    class to that power before the classes are averaged (Abraham and Khan 2019):

    $$
    L = \operatorname{mean}_c \, (1 - T_c)^{\gamma}
    $$

    The mean is the one `average` takes of the index: "macro" weighs the classes as it
    weighs their indices (the classes that count, with the weights of "Which classes
    count" on the Classification page), "weighted" by support, "none" returns the
    per-class losses; with "micro" the exponent applies to the index of the pooled
    counts, and for binary tasks to the one index. `gamma=1` is the plain loss
    $1 - T$. `gamma` is the exponent itself: the paper writes $(1 - T_c)^{1/\gamma'}$
    with $\gamma' \in [1, 3]$ and recommends $\gamma' = 4/3$, which is `gamma=0.75`
    here. A class's share of the gradient is scaled by $\gamma (1 - T_c)^{\gamma - 1}$:
    `gamma < 1` weighs the classes that are nearly right more, `gamma > 1` the classes
    that are far off. For `gamma < 1` the slope at $T_c = 1$ is infinite; where
    $1 - T_c$ is below the machine epsilon the power is replaced by a straight line
    (equal at both ends, at most $\epsilon^\gamma$ apart), so gradients stay finite.
    `metric` still returns the exact index, not its focal loss; at temperature 0 the loss
    is $\operatorname{mean}_c (1 - T_c)^\gamma$ of the exact indices.

    Examples:
        >>> import torch
        >>> from softmetrics import SoftTverskyLoss
        >>> loss_fn = SoftTverskyLoss(task="binary", alpha=0.3, beta=0.7)  # misses cost more
        >>> logits = torch.tensor([1.0, -2.0, 0.5, -0.5, 2.5])
        >>> target = torch.tensor([1, 1, 1, 0, 1])
        >>> loss_fn(logits, target), loss_fn.metric(logits, target)
        (tensor(0.3401), tensor(0.8108))

        The focal Tversky loss with the paper's exponent, the mean of the per-class
        $(1 - T_c)^{0.75}$:

        >>> from softmetrics.functional import soft_tversky_index
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [0.3, 0.0, 2.0],
        ...                        [1.0, 0.2, 0.0]])
        >>> target = torch.tensor([0, 1, 2, 1])
        >>> focal = SoftTverskyLoss(task="multiclass", num_classes=3, alpha=0.3, beta=0.7,
        ...                         gamma=0.75)
        >>> focal(logits, target)
        tensor(0.4884)
        >>> index = soft_tversky_index(logits, target, task="multiclass", num_classes=3,
        ...                            alpha=0.3, beta=0.7, average="none")
        >>> ((1 - index) ** 0.75).mean()
        tensor(0.4884)

    ??? cite "Reference"
        Abraham and Khan, *A Novel Focal Tversky Loss Function with Improved Attention
        U-Net for Lesion Segmentation*, ISBI 2019, arXiv:1810.07842.
    """

    _fn_name, _kind = "soft_tversky_index", "tversky"

    def __init__(self, *, task: Task, alpha: float = 0.5, beta: float = 0.5,
                 gamma: float = 1.0, **options: Any) -> None:
        alpha, beta = tversky_weights(type(self).__name__, alpha, beta)
        self.gamma = _focal_exponent(type(self).__name__, gamma)
        super().__init__(task=task, **options)
        self.formula.update(alpha=alpha, beta=beta)

    def _formula_repr(self) -> dict[str, Any]:
        return {"alpha": self.formula["alpha"], "beta": self.formula["beta"]}


class SoftMCCLoss(_ClassificationLoss):
    """`1 - soft_matthews_corrcoef`, in [0, 2]: the loss of
    [soft_matthews_corrcoef][softmetrics.functional.soft_matthews_corrcoef].

    Options: those of `soft_matthews_corrcoef` (`average="micro"`, Gorodkin's $R_K$, by
    default), and the [set-level options](losses.md#set-level-options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftMCCLoss
        >>> loss_fn = SoftMCCLoss(task="multiclass", num_classes=3, temperature=0.5)
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0],
        ...                        [1.0, 0.0, 0.0]])
        >>> loss_fn(logits, torch.tensor([0, 2, 2, 1]))
        tensor(0.6569)
    """

    _fn_name, _kind, _default_average = "soft_matthews_corrcoef", "mcc", "micro"


class SoftTopKAccuracyLoss(_ClassificationLoss):
    """`1 - soft_top_k_accuracy` (multiclass only): the loss of
    [soft_top_k_accuracy][softmetrics.functional.soft_top_k_accuracy].

    Options: those of `soft_top_k_accuracy` (`num_classes` and `k`; no `threshold`), and
    the [set-level options](losses.md#set-level-options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftTopKAccuracyLoss
        >>> loss_fn = SoftTopKAccuracyLoss(num_classes=4, k=2, temperature=0.1)
        >>> logits = torch.tensor([[0.1, 2.0, 1.0, -1.0], [1.5, 0.2, 0.1, 0.0]])
        >>> target = torch.tensor([2, 3])  # the first sample's class ranks second
        >>> loss_fn(logits, target), loss_fn.metric(logits, target)
        (tensor(0.5033), tensor(0.5000))
    """

    _fn_name, _kind, _default_average = "soft_top_k_accuracy", "accuracy", "micro"

    def __init__(self, *, num_classes: int, k: int = 1, task: Literal["multiclass"] = "multiclass",
                 **options: Any) -> None:
        name = type(self).__name__
        check_top_k(name, task=task, k=k, num_classes=num_classes)
        if "threshold" in options:
            _checks.fail(name, "threshold", "unset (top-k has no threshold)",
                         options["threshold"])
        super().__init__(task=task, num_classes=num_classes, **options)
        self.formula.update(top_k=k)

    def _formula_repr(self) -> dict[str, Any]:
        return {"k": self.formula["top_k"]}

    def _options_repr(self) -> dict[str, Any]:  # no threshold: the decision is the top k
        return {k: v for k, v in super()._options_repr().items() if k != "threshold"}
