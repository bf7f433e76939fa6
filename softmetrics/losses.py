"""`torch.nn.Module` losses: each holds its options and makes one functional call.

`forward(input, target)` returns the loss (`1 - soft metric` for metrics, the loss itself
for InfoNCE and NCE); `.metric(input, target)` returns the exact metric with the same
options (temperature 0, no gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from . import _checks, distributed
from ._relax import as_tensor_on, reduce_per_sample
from .functional import classification, contrastive, ranking, text

__all__: list[str] = []


def _set_level_repr(module: nn.Module, options: dict[str, Any]) -> str:
    """`extra_repr` of a set-level loss: its options, temperature, sync and momentum."""
    shown = {k: v for k, v in options.items() if v is not None}
    shown["temperature"] = module.temperature
    if module.sync_dist:
        shown["sync_dist"] = True
    if module.momentum is not None:
        shown["momentum"] = module.momentum
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())

def _check_running_device(module: nn.Module, input: Tensor) -> None:
    """Running statistics stay on the Module's device: `input` must be there too (moving
    them to the input on every step would copy them back and forth, and wait for it)."""
    device = module.running_initialized.device
    if isinstance(input, Tensor) and input.device != device:
        _checks.fail(type(module).__name__, "input", f"on {device}, the device of the "
                     "running statistics (move the loss there with `.to(device)`)",
                     f"a tensor on {input.device}", raw=True)

# --- classification ------------------------------------------------------------------


class _Float32Buffers(nn.Module):
    """A loss whose statistical buffers (`_float32_buffers`: names, or prefixes ending in
    "_") stay in float32 or wider under `.half()`, `.bfloat16()` and `.to(dtype)`. Running
    counts pass float16's largest value, 65504, in one segmentation batch; a noise
    distribution over a large vocabulary has probabilities below float16's smallest; and
    bfloat16 keeps 3 significant digits. Device moves apply as usual, and `.double()`
    widens them."""

    _float32_buffers: ClassVar[tuple[str, ...]] = ("running_",)

    def _kept(self, name: str) -> bool:
        return any(name.startswith(p) if p.endswith("_") else name == p
                   for p in self._float32_buffers)

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        kept = {name: buf for name, buf in self._buffers.items()
                if self._kept(name) and buf is not None and buf.is_floating_point()}
        super()._apply(fn, recurse)
        for name, old in kept.items():
            new = self._buffers[name]
            if new is not None and new.dtype in (torch.float16, torch.bfloat16):
                self._buffers[name] = old.to(device=new.device)
        return self


class _ClassificationLoss(_Float32Buffers):
    """`1 - soft metric` of one classification formula, with its options fixed.

    Options are those of the functional twin and are validated once, here. `forward`
    returns the loss (averaged over samples for `multidim_average="samplewise"`; per class
    for `average="none"`); `metric` the exact metric (temperature 0) with the same options.

    Set-level options:

    - `sync_dist=True` sums the soft statistics over the processes of `process_group`
      (default: the whole world) with an autograd-aware all-reduce before the formula, so
      that every process optimises the metric of the global batch (see
      `softmetrics.distributed`); `metric` then also reports the global exact metric.
    - `momentum=m` replaces the batch statistics by `m * running + (1 - m) * batch`, where
      `running` (buffers, saved in `state_dict`) holds the previous mixed statistics,
      detached, and is updated in training mode: a lower-variance estimate of the
      dataset-level metric than one mini-batch gives. The first batch initialises it.
    """

    _fn_name: ClassVar[str]
    _kind: ClassVar[str]
    _default_average: ClassVar[str] = "macro"

    def __init__(self, *, task: str, num_classes: int | None = None,
                 average: str | None = None, temperature: float = 1.0,
                 threshold: float = 0.5, ignore_index: int | None = None,
                 multidim_average: str = "global", zero_division: float = 0.0,
                 validate_args: bool = True, sync_dist: bool = False, process_group: Any = None,
                 momentum: float | None = None, **formula: Any) -> None:
        super().__init__()
        average = self._default_average if average is None else average
        name = type(self).__name__
        classification.check_options(name, task=task, num_classes=num_classes,
                                     average=average, temperature=temperature,
                                     threshold=threshold, ignore_index=ignore_index,
                                     multidim_average=multidim_average,
                                     zero_division=zero_division)
        if isinstance(temperature, Tensor):
            _checks.fail(name, "temperature", "a number (use the functional API for a "
                         "tensor temperature)", temperature, error=TypeError)
        self.options: dict[str, Any] = dict(
            task=task, num_classes=num_classes, average=average, threshold=threshold,
            ignore_index=ignore_index, multidim_average=multidim_average,
            zero_division=zero_division, validate_args=validate_args)
        self.formula = formula
        self.temperature = temperature
        self.sync_dist = bool(sync_dist)
        self.process_group = process_group
        self.momentum = momentum
        if self.sync_dist and multidim_average == "samplewise":
            _checks.fail(name, "sync_dist", "False with multidim_average='samplewise' "
                         "(per-sample values are averaged by data parallelism already)",
                         sync_dist)
        if momentum is not None:
            _checks.check_number(name, "momentum", momentum, low=0.0, high=1.0, high_open=True)
            if multidim_average == "samplewise":
                _checks.fail(name, "momentum", "None with multidim_average='samplewise' "
                             "(running statistics pool samples)", momentum)
            shape = (1, 1 if task == "binary" else int(num_classes))  # type: ignore[arg-type]
            for key in ("tp", "pred", "support", "total"):
                self.register_buffer(f"running_{key}", torch.zeros(shape))
            self.register_buffer("running_initialized", torch.zeros((), dtype=torch.bool))

    def _sync(self, counts: classification._Counts) -> classification._Counts:
        tp, pred, support, total = counts
        reduce = distributed.all_reduce_sum
        group = self.process_group
        total = as_tensor_on(total, tp).expand(
            tp.shape[0], -1 if isinstance(total, Tensor) else 1).contiguous()
        return classification._Counts(reduce(tp, group), reduce(pred, group),
                                      reduce(support.contiguous(), group), reduce(total, group))

    def _hook(self, counts: classification._Counts) -> classification._Counts:
        if self.sync_dist:
            counts = self._sync(counts)
        if self.momentum is None:
            return counts
        m, init = self.momentum, self.running_initialized.clone()
        mixed = []
        for key, batch in zip(("tp", "pred", "support", "total"), counts, strict=True):
            batch = as_tensor_on(batch, counts.tp)
            running = getattr(self, f"running_{key}").to(batch.dtype)
            mixed.append(torch.where(init, m * running + (1.0 - m) * batch, batch))
        if self.training:
            with torch.no_grad():
                for key, value in zip(("tp", "pred", "support", "total"), mixed, strict=True):
                    buffer = getattr(self, f"running_{key}")
                    buffer.copy_(value.detach().expand_as(buffer))
                self.running_initialized.fill_(True)
        return classification._Counts(*mixed)

    def _value(self, input: Tensor, target: Tensor, temperature: float, hook) -> Tensor:
        return classification.evaluate(self._fn_name, self._kind, input, target,
                                       temperature=temperature, hook=hook, check=False,
                                       **self.formula, **self.options)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss `1 - soft metric` (for MCC: in [0, 2])."""
        if self.momentum is not None:
            _check_running_device(self, input)
        hook = self._hook if (self.sync_dist or self.momentum is not None) else None
        loss = 1.0 - self._value(input, target, self.temperature, hook)
        if self.options["multidim_average"] == "samplewise":
            # the mean over samples; an empty batch gives 0, not NaN
            loss = loss.sum(0) / max(loss.shape[0], 1)
        return loss

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact metric (temperature 0) with this loss's options; no gradient."""
        return self._value(input, target, 0.0, self._sync if self.sync_dist else None)

    def extra_repr(self) -> str:
        return _set_level_repr(self, {**self.options, **self.formula})


class SoftAccuracyLoss(_ClassificationLoss):
    """`1 - soft_accuracy`; `average="micro"` by default ("macro" is balanced accuracy).

    Example:
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


class _TverskyLoss(_ClassificationLoss):
    """A loss of the Tversky family with the weights (alpha, beta) of its metric."""

    _kind = "tversky"
    _weights: ClassVar[tuple[float, float]]

    def __init__(self, *, task: str, **options: Any) -> None:
        alpha, beta = self._weights
        super().__init__(task=task, alpha=alpha, beta=beta, **options)


class SoftPrecisionLoss(_TverskyLoss):
    """`1 - soft_precision`."""

    _fn_name, _weights = "soft_precision", (1.0, 0.0)


class SoftRecallLoss(_TverskyLoss):
    """`1 - soft_recall`."""

    _fn_name, _weights = "soft_recall", (0.0, 1.0)


class SoftF1Loss(_TverskyLoss):
    """`1 - soft_f1_score`: the soft F1 (= soft Dice) loss.

    Example:
        >>> import torch
        >>> from softmetrics import SoftF1Loss
        >>> loss_fn = SoftF1Loss(task="binary")
        >>> logits = torch.tensor([2.0, -1.0, 0.5, -3.0], requires_grad=True)
        >>> loss = loss_fn(logits, torch.tensor([1, 1, 0, 0]))
        >>> loss.backward()
        >>> loss, logits.grad
        (tensor(0.3980, grad_fn=<RsubBackward1>), tensor([-0.0384, -0.0720,  0.0370,  0.0071]))
    """

    _fn_name, _weights = "soft_f1_score", (0.5, 0.5)


SoftDiceLoss = SoftF1Loss


class SoftJaccardLoss(_TverskyLoss):
    """`1 - soft_jaccard_index`: the soft IoU loss."""

    _fn_name, _weights = "soft_jaccard_index", (1.0, 1.0)


SoftIoULoss = SoftJaccardLoss


class SoftFBetaLoss(_ClassificationLoss):
    """`1 - soft_fbeta_score` with the given `beta`."""

    _fn_name, _kind = "soft_fbeta_score", "tversky"

    def __init__(self, *, task: str, beta: float = 1.0, **options: Any) -> None:
        beta = _checks.check_number(type(self).__name__, "beta", beta, low=0.0, low_open=True)
        self.beta = beta
        alpha, weight = classification.fbeta_weights(beta)
        super().__init__(task=task, alpha=alpha, beta=weight, **options)


class SoftTverskyLoss(_ClassificationLoss):
    """`1 - soft_tversky_index(alpha, beta)`."""

    _fn_name, _kind = "soft_tversky_index", "tversky"

    def __init__(self, *, task: str, alpha: float = 0.5, beta: float = 0.5,
                 **options: Any) -> None:
        name = type(self).__name__
        alpha = _checks.check_number(name, "alpha", alpha, low=0.0)
        beta = _checks.check_number(name, "beta", beta, low=0.0)
        super().__init__(task=task, alpha=alpha, beta=beta, **options)


class SoftMCCLoss(_ClassificationLoss):
    """`1 - soft_matthews_corrcoef`, in [0, 2]; `average="micro"` (R_K) by default."""

    _fn_name, _kind, _default_average = "soft_matthews_corrcoef", "mcc", "micro"


class SoftTopKAccuracyLoss(_ClassificationLoss):
    """`1 - soft_top_k_accuracy` (multiclass only)."""

    _fn_name, _kind, _default_average = "soft_top_k_accuracy", "accuracy", "micro"

    def __init__(self, *, num_classes: int, k: int = 1, task: str = "multiclass",
                 **options: Any) -> None:
        name = type(self).__name__
        _checks.check_option(name, "task", task, ("multiclass",))
        _checks.check_int(name, "k", k, low=1)
        if k > num_classes:
            _checks.fail(name, "k", f"<= num_classes = {num_classes}", k)
        if "threshold" in options:
            _checks.fail(name, "threshold", "unset (top-k has no threshold)",
                         options["threshold"])
        super().__init__(task=task, num_classes=num_classes, top_k=k, **options)


__all__ += [
    "SoftAccuracyLoss",
    "SoftDiceLoss",
    "SoftF1Loss",
    "SoftFBetaLoss",
    "SoftIoULoss",
    "SoftJaccardLoss",
    "SoftMCCLoss",
    "SoftPrecisionLoss",
    "SoftRecallLoss",
    "SoftTopKAccuracyLoss",
    "SoftTverskyLoss",
]

# --- ranking -------------------------------------------------------------------------


class _RankingLoss(_Float32Buffers):
    """`1 - soft metric` of one ranking function, with its options fixed.

    Options are validated once here; `forward` returns the loss (per class for
    `average="none"`), `metric` the exact metric (temperature 0) with the same options.
    A tensor temperature is kept as a buffer (an `nn.Parameter` stays a parameter).

    Set-level options:

    - `sync_dist=True` gathers the scores and targets of every process of `process_group`
      (default: the whole world) with an autograd-aware all-gather before the metric, so
      that every process computes the metric of the global batch, with the gradient of one
      process on the concatenated batch (times `world_size`, which data-parallel gradient
      averaging divides out). Processes may hold batches of different sizes: one small
      extra all-gather learns them, in host memory where the backend allows (gloo, or a
      `"cpu:gloo,cuda:nccl"` group), else on the device with one host synchronisation
      per call (NCCL alone). `metric` then also reports the global exact metric.
    - `momentum=m` mixes the per-class statistics of the batch with running ones,
      `m * running + (1 - m) * batch`, before the formula: the sum of the per-positive
      terms and its normaliser (AUROC: the mis-ordered pair mass and the number of
      (positive, negative) pairs; AP and cAP: the sum of the per-positive precisions and
      the number of positives), plus the number of positives for `average="weighted"`.
      The running statistics (buffers `running_num`, `running_den`, `running_pos`, saved in
      `state_dict`) hold the previous mixed ones, detached, and update in training mode; the
      first batch initialises them. The value is then a ratio of exponential moving
      averages: the metric pooled over the pairs (AUROC) or positives (AP, cAP) of the last
      ~`1 / (1 - m)` batches, each ranked within its own batch. A class without positives
      in this batch keeps its running value. This lowers the variance of the estimate, not
      the bias of ranking within small batches (pairs across batches are never compared).
    """

    _fn_name: ClassVar[str]
    _metric: ClassVar[str]

    def __init__(self, *, task: str, num_classes: int | None = None, average: str = "macro",
                 temperature: float | Tensor = 1.0, ignore_index: int | None = None,
                 chunk_size: int | None = None, validate_args: bool = True,
                 sync_dist: bool = False, process_group: Any = None,
                 momentum: float | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        ranking.check_options(name, task=task, num_classes=num_classes,
                              average=average, temperature=temperature,
                              ignore_index=ignore_index, chunk_size=chunk_size)
        self.options: dict[str, Any] = dict(
            task=task, num_classes=num_classes, average=average, ignore_index=ignore_index,
            chunk_size=chunk_size, validate_args=validate_args)
        if isinstance(temperature, Tensor) and not isinstance(temperature, nn.Parameter):
            self.register_buffer("temperature", temperature)
        else:
            self.temperature = temperature
        self.sync_dist = bool(sync_dist)
        self.process_group = process_group
        self.momentum = momentum
        if momentum is not None:
            _checks.check_number(name, "momentum", momentum, low=0.0, high=1.0, high_open=True)
            columns = 1 if task == "binary" or average == "micro" else int(num_classes or 1)
            for key in ranking.ColumnStats._fields:
                self.register_buffer(f"running_{key}", torch.zeros(columns))
            self.register_buffer("running_initialized", torch.zeros((), dtype=torch.bool))

    def _gather(self, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Scores and targets of every process, concatenated in rank order, with gradient."""
        if not (self.sync_dist and distributed.is_distributed()) or input.ndim == 0:
            return input, target
        group = self.process_group
        sizes = distributed.gather_sizes(input.shape[0], device=input.device,
                                         process_group=group)
        return (distributed.all_gather_cat_uneven(input, sizes, group),
                distributed.all_gather_cat_uneven(target, sizes, group))

    def _hook(self, stats: ranking.ColumnStats) -> ranking.ColumnStats:
        m, init = self.momentum, self.running_initialized.clone()
        mixed = []
        for key, batch in zip(ranking.ColumnStats._fields, stats, strict=True):
            running = getattr(self, f"running_{key}").to(batch.dtype)
            mixed.append(torch.where(init, m * running + (1.0 - m) * batch, batch))
        if self.training:
            with torch.no_grad():
                for key, value in zip(ranking.ColumnStats._fields, mixed, strict=True):
                    getattr(self, f"running_{key}").copy_(value.detach())
                self.running_initialized.fill_(True)
        return ranking.ColumnStats(*mixed)

    def _value(self, input: Tensor, target: Tensor, temperature: float | Tensor,
               hook: Callable[..., Any] | None = None) -> Tensor:
        input, target = self._gather(input, target)
        return ranking._ranking_metric(self._fn_name, self._metric, input, target,
                                       temperature=temperature, hook=hook, check=False,
                                       **self.options)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss `1 - soft metric`, in [0, 1]."""
        hook = None
        if self.momentum is not None:
            _check_running_device(self, input)
            hook = self._hook
        return 1.0 - self._value(input, target, self.temperature, hook)

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact metric (temperature 0) with this loss's options; no gradient.

        With `sync_dist`, the metric of the global batch; never the running statistics.
        """
        return self._value(input, target, 0.0)

    def extra_repr(self) -> str:
        return _set_level_repr(self, self.options)


class SoftAUROCLoss(_RankingLoss):
    """`1 - soft_auroc`: a pairwise ranking loss for imbalanced binary or multilabel tasks.

    Example:
        >>> import torch
        >>> from softmetrics import SoftAUROCLoss
        >>> loss_fn = SoftAUROCLoss(task="binary", temperature=0.5)
        >>> scores = torch.tensor([2.0, 0.5, 0.5, -1.0, 1.0], requires_grad=True)
        >>> target = torch.tensor([1, 1, 0, 0, 0])
        >>> loss_fn(scores, target)
        tensor(0.2413, grad_fn=<RsubBackward1>)
        >>> loss_fn.metric(scores, target)
        tensor(0.7500)
    """

    _fn_name, _metric = "soft_auroc", "auroc"


class SoftAveragePrecisionLoss(_RankingLoss):
    """`1 - soft_average_precision`; with `average="macro"`, `1 - mean AP`.

    Example:
        >>> import torch
        >>> from softmetrics import SoftAveragePrecisionLoss
        >>> loss_fn = SoftAveragePrecisionLoss(task="multilabel", num_classes=2,
        ...                                    temperature=0.1)
        >>> scores = torch.tensor([[2.0, -1.0], [0.5, 1.5], [-0.5, 0.0]])
        >>> target = torch.tensor([[1, 0], [0, 1], [1, 1]])
        >>> loss_fn(scores, target), loss_fn.metric(scores, target)
        (tensor(0.0833), tensor(0.9167))
    """

    _fn_name, _metric = "soft_average_precision", "ap"


class SoftCalibratedAveragePrecisionLoss(_RankingLoss):
    """`1 - soft_calibrated_average_precision`; with `average="macro"`, `1 - mean cAP`."""

    _fn_name, _metric = "soft_calibrated_average_precision", "cap"


__all__ += ["SoftAUROCLoss", "SoftAveragePrecisionLoss", "SoftCalibratedAveragePrecisionLoss"]


# --- text ----------------------------------------------------------------------------


class SoftBLEULoss(nn.Module):
    """`1 - soft_bleu_score`: a sequence-level loss on per-position logits.

    Holds the BLEU options; `forward(input, ref, hyp_lengths=None)` returns
    `1 - soft BLEU` reduced over sentences (`reduction`; with `corpus=True` the corpus
    BLEU is already one number), `metric` the exact BLEU of the argmax tokens with the same
    options. A tensor temperature is kept as a buffer (an `nn.Parameter` stays a parameter).

    Example:
        >>> import torch
        >>> from softmetrics import SoftBLEULoss
        >>> loss_fn = SoftBLEULoss(max_order=2)
        >>> logits = torch.tensor([[[0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0],
        ...                         [0.0, 0.0, 0.0, 3.0]]], requires_grad=True)
        >>> ref = torch.tensor([[1, 2, 3]])
        >>> loss_fn(logits, ref)
        tensor(0.1479, grad_fn=<MeanBackward0>)
        >>> loss_fn.metric(logits, ref)
        tensor(1.)
    """

    def __init__(self, *, temperature: float | Tensor = 1.0, pad_id: int = 0,
                 max_order: int = 4, smooth: str = "exp", smooth_value: float | None = None,
                 effective_order: bool | None = None, corpus: bool = False,
                 reduction: str = "mean", validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        text.check_options(name, max_order=max_order, smooth=smooth,
                           smooth_value=smooth_value, effective_order=effective_order,
                           corpus=corpus)
        text.check_int(name, "pad_id", pad_id)
        text.check_temperature(name, temperature)
        text.check_option(name, "reduction", reduction, ("mean", "sum", "none"))
        self.options: dict[str, Any] = dict(
            pad_id=pad_id, max_order=max_order, smooth=smooth, smooth_value=smooth_value,
            effective_order=effective_order, corpus=corpus, validate_args=validate_args)
        self.reduction = reduction
        if isinstance(temperature, Tensor) and not isinstance(temperature, nn.Parameter):
            self.register_buffer("temperature", temperature)
        else:
            self.temperature = temperature

    def _value(self, input: Tensor, ref: Tensor, hyp_lengths: Tensor | None,
               temperature: float | Tensor) -> Tensor:
        return text.soft_bleu_score(input, ref, temperature=temperature,
                                    hyp_lengths=hyp_lengths, **self.options)

    def forward(self, input: Tensor, ref: Tensor, hyp_lengths: Tensor | None = None) -> Tensor:
        """The loss `1 - soft BLEU` per sentence (or of the corpus), reduced."""
        loss = 1.0 - self._value(input, ref, hyp_lengths, self.temperature)
        return reduce_per_sample(loss, self.reduction)

    @torch.no_grad()
    def metric(self, input: Tensor, ref: Tensor, hyp_lengths: Tensor | None = None) -> Tensor:
        """The exact BLEU of the argmax tokens (temperature 0), reduced; no gradient."""
        return reduce_per_sample(self._value(input, ref, hyp_lengths, 0.0), self.reduction)

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if v is not None}
        shown.update(reduction=self.reduction, temperature=self.temperature)
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class ExpectedBLEULoss(nn.Module):
    """Minimum risk training: the expected `1 - BLEU` of K candidates per source.

    `forward(samples, log_probs, ref)` returns the risk
    $\\sum_k q_k (1 - \\mathrm{BLEU}_k)$ with $q = \\mathrm{softmax}(\\alpha \\log p)$ over the
    candidates (see [`expected_bleu`][softmetrics.functional.expected_bleu]), reduced
    over sources; the gradient flows into `log_probs`. `metric` returns the expected BLEU
    with the same reduction. Mix it with token cross-entropy: Edunov et al. (2018) found
    sequence-level risk alone does worse than combined with token NLL.

    Example:
        >>> import torch
        >>> from softmetrics import ExpectedBLEULoss
        >>> loss_fn = ExpectedBLEULoss(max_order=2)
        >>> samples = torch.tensor([[[1, 2, 3], [1, 3, 0], [4, 4, 4]]])  # (B=1, K=3, T=3)
        >>> log_probs = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
        >>> ref = torch.tensor([[1, 2, 3]])
        >>> loss_fn(samples, log_probs, ref)
        tensor(0.2298, grad_fn=<MeanBackward0>)
        >>> loss_fn.metric(samples, log_probs, ref)
        tensor(0.7702)
    """

    def __init__(self, *, alpha: float = 1.0, reduction: str = "mean", pad_id: int = 0,
                 max_order: int = 4, smooth: str = "exp", smooth_value: float | None = None,
                 effective_order: bool | None = None, vocab_size: int | None = None,
                 validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        text.check_options(name, max_order=max_order, smooth=smooth,
                           smooth_value=smooth_value, effective_order=effective_order)
        text.check_int(name, "pad_id", pad_id)
        alpha = text.check_number(name, "alpha", alpha, low=0.0)
        text.check_option(name, "reduction", reduction, ("mean", "sum", "none"))
        if vocab_size is not None:
            text.check_int(name, "vocab_size", vocab_size, low=1)
        self.alpha = alpha
        self.reduction = reduction
        self.options: dict[str, Any] = dict(
            pad_id=pad_id, max_order=max_order, smooth=smooth, smooth_value=smooth_value,
            effective_order=effective_order, vocab_size=vocab_size,
            validate_args=validate_args)

    def forward(self, samples: Tensor, log_probs: Tensor, ref: Tensor) -> Tensor:
        """The risk `1 - expected BLEU`, in [0, 1]."""
        value = text.expected_bleu(samples, log_probs, ref, alpha=self.alpha,
                                   reduction="none", **self.options)
        return reduce_per_sample(1.0 - value, self.reduction)

    @torch.no_grad()
    def metric(self, samples: Tensor, log_probs: Tensor, ref: Tensor) -> Tensor:
        """The expected BLEU with this loss's options; no gradient."""
        return text.expected_bleu(samples, log_probs, ref, alpha=self.alpha,
                                  reduction=self.reduction, **self.options)

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if v is not None}
        shown.update(alpha=self.alpha, reduction=self.reduction)
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


__all__ += ["ExpectedBLEULoss", "SoftBLEULoss"]

# --- contrastive ---------------------------------------------------------------------


class InfoNCELoss(nn.Module):
    r"""InfoNCE ([`info_nce`][softmetrics.functional.info_nce]) with its options fixed.

    `learn_temperature=True` makes the temperature a parameter, stored on a log scale
    (`log_temperature`, as CLIP's logit scale) so that it stays positive; otherwise it is
    a constant. `forward(query, key, negatives=None)` returns the loss,
    `.metric(query, key, negatives=None)` the top-`k` retrieval accuracy with the same
    candidates ([`retrieval_accuracy`][softmetrics.functional.retrieval_accuracy]).

    `gather_distributed=True` scores each process's queries against the keys (and, with
    `symmetric`, its keys against the queries) of every process of `process_group`
    (default: the whole world), with gradient: the loss, and `.metric`, are those of one
    process on the global batch (see the Data-parallel training page).

    Example:
        >>> import torch
        >>> from softmetrics import InfoNCELoss
        >>> loss_fn = InfoNCELoss(temperature=0.5, learn_temperature=True)
        >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> key = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.6]])
        >>> loss_fn(query, key)
        tensor(0.6448, grad_fn=<MeanBackward0>)
        >>> loss_fn.temperature
        tensor(0.5000, grad_fn=<ExpBackward0>)
        >>> loss_fn.metric(query, key)
        tensor(1.)
    """

    def __init__(self, *, temperature: float = 0.07, learn_temperature: bool = False,
                 in_batch_negatives: bool = True, query_negatives: bool = False,
                 symmetric: bool = False, normalize: bool = True, reduction: str = "mean",
                 chunk_size: int | None = None, k: int = 1,
                 gather_distributed: bool = False, process_group: Any = None,
                 validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        temperature = contrastive.check_temperature(name, temperature, allow_zero=False)
        if isinstance(temperature, Tensor):
            contrastive.fail(name, "temperature", "a number (the initial value)", temperature,
                             error=TypeError)
        contrastive.check_option(name, "reduction", reduction, ("mean", "sum", "none"))
        if chunk_size is not None:
            contrastive.check_int(name, "chunk_size", chunk_size, low=1)
        contrastive.check_int(name, "k", k, low=1)
        self.options: dict[str, Any] = dict(
            in_batch_negatives=in_batch_negatives, query_negatives=query_negatives,
            normalize=normalize, gather_distributed=bool(gather_distributed),
            process_group=process_group, validate_args=validate_args)
        self.symmetric, self.reduction, self.chunk_size, self.k = (
            symmetric, reduction, chunk_size, k)
        self.learn_temperature = learn_temperature
        if learn_temperature:
            self.log_temperature = nn.Parameter(torch.tensor(temperature).log())
        else:
            self._temperature = temperature

    @property
    def temperature(self) -> float | Tensor:
        """The temperature: a number, or `exp(log_temperature)` when learned."""
        if self.learn_temperature:
            return self.log_temperature.exp()
        return self._temperature

    def forward(self, query: Tensor, key: Tensor, negatives: Tensor | None = None) -> Tensor:
        """The InfoNCE loss of `query` against `key` (and `negatives`)."""
        return contrastive.info_nce(query, key, negatives=negatives,
                                    temperature=self.temperature, symmetric=self.symmetric,
                                    reduction=self.reduction, chunk_size=self.chunk_size,
                                    **self.options)

    @torch.no_grad()
    def metric(self, query: Tensor, key: Tensor, negatives: Tensor | None = None) -> Tensor:
        """Top-`k` retrieval accuracy with the same candidates; no gradient."""
        return contrastive.retrieval_accuracy(query, key, negatives=negatives, k=self.k,
                                              reduction=self.reduction, **self.options)

    def extra_repr(self) -> str:
        options = {k: v for k, v in self.options.items()
                   if k != "process_group" and (k != "gather_distributed" or v)}
        shown = {"temperature": float(torch.as_tensor(self.temperature).detach()), **options,
                 "symmetric": self.symmetric, "reduction": self.reduction}
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class NCELoss(_Float32Buffers):
    r"""Noise-contrastive estimation ([`nce_loss`][softmetrics.functional.nce_loss]).

    Holds the number of classes, the noise count and the noise distribution (a buffer;
    uniform when None). `forward(input, target, weight, bias, generator=None)` returns the
    NCE loss; `.metric(input, target, weight, bias)` the exact counterpart, the
    full-softmax negative log-likelihood `cross_entropy(input @ weight.T + bias, target)`.

    Example:
        >>> import torch
        >>> from softmetrics import NCELoss
        >>> loss_fn = NCELoss(num_classes=3, num_noise=4)
        >>> hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> weight = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
        >>> bias = torch.zeros(3)
        >>> loss_fn(hidden, torch.tensor([0, 1]), weight, bias,
        ...         generator=torch.Generator().manual_seed(0))
        tensor(5.3849)
        >>> loss_fn.metric(hidden, torch.tensor([0, 1]), weight, bias)
        tensor(0.1698)
    """

    noise_distribution: Tensor | None
    _float32_buffers = ("noise_distribution",)

    def __init__(self, num_classes: int, num_noise: int,
                 noise_distribution: Tensor | None = None, *, shared_noise: bool = False,
                 reduction: str = "mean", validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        contrastive.check_int(name, "num_classes", num_classes, low=1)
        contrastive.check_int(name, "num_noise", num_noise, low=1)
        contrastive.check_option(name, "reduction", reduction, ("mean", "sum", "none"))
        if noise_distribution is not None:
            contrastive.check_floating(name, "noise_distribution", noise_distribution)
            if tuple(noise_distribution.shape) != (num_classes,):
                contrastive.fail(name, "noise_distribution",
                                 f"of shape ({num_classes},) (num_classes)",
                                 f"shape {tuple(noise_distribution.shape)}", raw=True)
        self.num_classes, self.num_noise = num_classes, num_noise
        self.shared_noise, self.reduction, self.validate_args = (
            shared_noise, reduction, validate_args)
        self.register_buffer("noise_distribution", noise_distribution)

    def forward(self, input: Tensor, target: Tensor, weight: Tensor, bias: Tensor | None,
                generator: torch.Generator | None = None) -> Tensor:
        """The NCE loss with `num_noise` draws per example from the noise distribution."""
        if weight.shape[0] != self.num_classes:
            contrastive.fail(type(self).__name__, "weight",
                             f"{self.num_classes} rows (num_classes)",
                             f"shape {tuple(weight.shape)}", raw=True)
        contrastive.check_generator(type(self).__name__, generator, input)
        return contrastive.nce_loss(input, target, weight, bias, num_noise=self.num_noise,
                                    noise_distribution=self.noise_distribution,
                                    shared_noise=self.shared_noise, generator=generator,
                                    reduction=self.reduction, validate_args=self.validate_args)

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor, weight: Tensor,
               bias: Tensor | None) -> Tensor:
        """The full-softmax negative log-likelihood (the exact counterpart); no gradient."""
        contrastive.check_output_layer(type(self).__name__, input, target, weight, bias,
                                       self.validate_args)
        dtype = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
        logits = nn.functional.linear(input.to(dtype), weight.to(dtype),
                                      None if bias is None else bias.to(dtype))
        nll = nn.functional.cross_entropy(logits, target, reduction="none")
        return reduce_per_sample(nll, self.reduction)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, num_noise={self.num_noise}, "
                f"shared_noise={self.shared_noise}, reduction={self.reduction!r}")


__all__ += ["InfoNCELoss", "NCELoss"]
