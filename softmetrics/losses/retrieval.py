"""Retrieval losses: `1 - soft NDCG / recall@k / precision@k / RR / AP` per query."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from .._options import Reduction
from ..functional._retrieval_core import (
    Gain,
    Metric,
    check_retrieval_options,
    per_query,
    reduce_metric,
)
from ._base import keep_temperature


class _RetrievalLoss(nn.Module):
    """`1 - soft metric` of each query, reduced over the queries, with its options fixed.

    Options are validated once here. `forward(input, target)` returns the loss: per query
    `1 - metric` (0 for a query without a relevant item, which takes no part), then
    "mean" over the queries that have one (0 when none has), "sum", or "none" for the (Q,)
    losses; `metric(input, target)` the exact metric (temperature 0) with the same options
    and reduction. A tensor temperature is kept as a buffer (an `nn.Parameter` stays a
    parameter).
    """

    _fn_name: ClassVar[str]
    _metric: ClassVar[Metric]
    temperature: float | Tensor

    def __init__(self, *, k: int | None = None, temperature: float | Tensor = 1.0,
                 cutoff_temperature: float | None = None, ignore_index: int | None = None,
                 reduction: Reduction = "mean", chunk_size: int | None = None,
                 validate_args: bool = True, gain: Gain | None = None) -> None:
        super().__init__()
        check_retrieval_options(type(self).__name__, temperature=temperature, k=k,
                                ignore_index=ignore_index, chunk_size=chunk_size,
                                reduction=reduction, cutoff_temperature=cutoff_temperature,
                                gain=gain)
        self.options: dict[str, Any] = dict(k=k, ignore_index=ignore_index,
                                            chunk_size=chunk_size, validate_args=validate_args,
                                            cutoff_temperature=cutoff_temperature,
                                            gain=gain or "linear")
        self.reduction = reduction
        keep_temperature(self, temperature)

    def _per_query(self, input: Tensor, target: Tensor, temperature: float | Tensor
                   ) -> tuple[Tensor, Tensor, torch.dtype]:
        values, dtype = per_query(self._metric, input, target, fn=type(self).__name__,
                                  temperature=temperature, **self.options)
        return values.value, values.defined, dtype

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss: `1 - soft metric` per query, reduced over the defined queries."""
        value, defined, dtype = self._per_query(input, target, self.temperature)
        return reduce_metric(1 - value, defined, self.reduction).to(dtype)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor) -> Tensor:
        """The exact metric (temperature 0) with this loss's options; no gradient."""
        value, defined, dtype = self._per_query(input, target, 0.0)
        return reduce_metric(value, defined, self.reduction).to(dtype)

    def extra_repr(self) -> str:
        shown = {key: value for key, value in self.options.items()
                 if value is not None and key != "validate_args"
                 and (key != "gain" or self._metric == "ndcg")}
        shown.update(temperature=self.temperature, reduction=self.reduction)
        return ", ".join(f"{key}={value!r}" for key, value in shown.items())


class SoftNDCGLoss(_RetrievalLoss):
    """`1 - soft NDCG@k` per query, the Module of
    [`soft_ndcg`][softmetrics.functional.soft_ndcg] (its options: `k`, `temperature`,
    `cutoff_temperature`, `gain`, `ignore_index`, `reduction`, `chunk_size`,
    `validate_args`).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftNDCGLoss
        >>> loss_fn = SoftNDCGLoss(k=2, temperature=0.1)
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]],
        ...                       requires_grad=True)
        >>> grades = torch.tensor([[3, 0, 1, 2], [0, 1, 0, 2]])
        >>> loss_fn(scores, grades), loss_fn.metric(scores, grades)
        (tensor(0.1727, grad_fn=<ToCopyBackward0>), tensor(0.8558))
    """

    _fn_name, _metric = "soft_ndcg", "ndcg"

    def __init__(self, *, k: int | None = None, temperature: float | Tensor = 1.0,
                 cutoff_temperature: float | None = None, gain: Gain = "linear",
                 ignore_index: int | None = None, reduction: Reduction = "mean",
                 chunk_size: int | None = None, validate_args: bool = True) -> None:
        super().__init__(k=k, temperature=temperature, cutoff_temperature=cutoff_temperature,
                         ignore_index=ignore_index, reduction=reduction,
                         chunk_size=chunk_size, validate_args=validate_args, gain=gain)


class _AtKLoss(_RetrievalLoss):
    """A loss whose `k` is required (recall@k, precision@k)."""

    def __init__(self, *, k: int, temperature: float | Tensor = 1.0,
                 cutoff_temperature: float | None = None, ignore_index: int | None = None,
                 reduction: Reduction = "mean", chunk_size: int | None = None,
                 validate_args: bool = True) -> None:
        super().__init__(k=k, temperature=temperature, cutoff_temperature=cutoff_temperature,
                         ignore_index=ignore_index, reduction=reduction,
                         chunk_size=chunk_size, validate_args=validate_args)


class SoftRecallAtKLoss(_AtKLoss):
    """`1 - soft recall@k` per query, the Module of
    [`soft_recall_at_k`][softmetrics.functional.soft_recall_at_k] (the same options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftRecallAtKLoss
        >>> loss_fn = SoftRecallAtKLoss(k=2, temperature=0.05, cutoff_temperature=0.5)
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 1]])
        >>> loss_fn(scores, relevant), loss_fn.metric(scores, relevant)
        (tensor(0.2755), tensor(0.7500))
    """

    _fn_name, _metric = "soft_recall_at_k", "recall"


class SoftPrecisionAtKLoss(_AtKLoss):
    """`1 - soft precision@k` per query, the Module of
    [`soft_precision_at_k`][softmetrics.functional.soft_precision_at_k] (the same
    options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftPrecisionAtKLoss
        >>> loss_fn = SoftPrecisionAtKLoss(k=2, temperature=0.05, reduction="none")
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0]])
        >>> loss_fn.metric(scores, relevant)  # the second query has no relevant item
        tensor([0.5000, 0.0000])
    """

    _fn_name, _metric = "soft_precision_at_k", "precision"


class SoftMRRLoss(_RetrievalLoss):
    """`1 - soft reciprocal rank` per query (with "mean", `1 - MRR`), the Module of
    [`soft_reciprocal_rank`][softmetrics.functional.soft_reciprocal_rank] (the same
    options, `k` optional).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftMRRLoss
        >>> loss_fn = SoftMRRLoss(temperature=0.1)
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[0, 0, 0, 1], [1, 0, 0, 0]])
        >>> loss_fn.metric(scores, relevant)
        tensor(0.2917)
    """

    _fn_name, _metric = "soft_reciprocal_rank", "rr"

    def __init__(self, *, k: int | None = None, temperature: float | Tensor = 1.0,
                 cutoff_temperature: float | None = None, ignore_index: int | None = None,
                 reduction: Reduction = "mean", chunk_size: int | None = None,
                 validate_args: bool = True) -> None:
        super().__init__(k=k, temperature=temperature, cutoff_temperature=cutoff_temperature,
                         ignore_index=ignore_index, reduction=reduction,
                         chunk_size=chunk_size, validate_args=validate_args)


class SoftRetrievalAPLoss(_RetrievalLoss):
    """`1 - soft AP` per query (with "mean", `1 - mAP`): Smooth-AP's loss, the Module of
    [`soft_retrieval_average_precision`][softmetrics.functional.soft_retrieval_average_precision]
    (the same options).

    Examples:
        >>> import torch
        >>> from softmetrics import SoftRetrievalAPLoss
        >>> loss_fn = SoftRetrievalAPLoss(temperature=0.05)
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[1, 0, 0, 1], [1, 0, 0, 1]])
        >>> loss_fn(scores, relevant), loss_fn.metric(scores, relevant)
        (tensor(0.3329), tensor(0.6667))
    """

    _fn_name, _metric = "soft_retrieval_average_precision", "ap"

    def __init__(self, *, temperature: float | Tensor = 1.0, ignore_index: int | None = None,
                 reduction: Reduction = "mean", chunk_size: int | None = None,
                 validate_args: bool = True) -> None:
        super().__init__(temperature=temperature, ignore_index=ignore_index,
                         reduction=reduction, chunk_size=chunk_size,
                         validate_args=validate_args)
