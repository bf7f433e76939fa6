"""Sequence losses: soft BLEU on per-position logits, expected BLEU (minimum risk)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .._checks import check_int, check_option, check_temperature
from .._options import REDUCTIONS, PaddingSide, Reduction, Smooth
from .._relax import reduce_per_sample
from ..functional._expected_bleu_core import check_expected_bleu_options, compute_expected_bleu
from ..functional._text_core import check_bleu_options, compute_soft_bleu
from ._base import keep_temperature


class SoftBLEULoss(nn.Module):
    """`1 - soft BLEU`: a sequence-level loss on per-position logits, the Module of
    [`soft_bleu_score`][softmetrics.functional.soft_bleu_score].

    Holds the options of `soft_bleu_score` (`temperature`, `pad_id`, `max_order`,
    `smooth`, `smooth_value`, `effective_order`, `corpus`, `padding_side`,
    `validate_args`; see there) and
    `reduction` (`"mean"`, `"sum"` or `"none"`) over sentences.
    `forward(input, ref, hyp_lengths=None)` returns `1 - soft BLEU`, reduced (with
    `corpus=True` the corpus BLEU is already one number); `metric` the exact BLEU of the
    argmax tokens with the same options. A tensor temperature is kept as a buffer (an
    `nn.Parameter` stays a parameter).

    Examples:
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

    temperature: float | Tensor

    def __init__(self, *, temperature: float | Tensor = 1.0, pad_id: int = 0,
                 max_order: int = 4, smooth: Smooth = "exp", smooth_value: float | None = None,
                 effective_order: bool | None = None, corpus: bool = False,
                 reduction: Reduction = "mean", padding_side: PaddingSide = "right",
                 validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        check_bleu_options(name, max_order=max_order, smooth=smooth,
                           smooth_value=smooth_value, effective_order=effective_order,
                           corpus=corpus, padding_side=padding_side)
        check_int(name, "pad_id", pad_id)
        check_temperature(name, temperature)
        check_option(name, "reduction", reduction, REDUCTIONS)
        self.options: dict[str, Any] = dict(
            pad_id=pad_id, max_order=max_order, smooth=smooth, smooth_value=smooth_value,
            effective_order=effective_order, corpus=corpus, padding_side=padding_side,
            validate_args=validate_args)
        self.reduction = reduction
        keep_temperature(self, temperature)

    def _value(self, input: Tensor, ref: Tensor, hyp_lengths: Tensor | None,
               temperature: float | Tensor) -> Tensor:
        return compute_soft_bleu(type(self).__name__, input, ref, temperature=temperature,
                                 hyp_lengths=hyp_lengths, **self.options)

    def forward(self, input: Tensor, ref: Tensor, hyp_lengths: Tensor | None = None) -> Tensor:
        """The loss `1 - soft BLEU` per sentence (or of the corpus), reduced."""
        loss = 1.0 - self._value(input, ref, hyp_lengths, self.temperature)
        return reduce_per_sample(loss, self.reduction)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, input: Tensor, ref: Tensor, hyp_lengths: Tensor | None = None) -> Tensor:
        """The exact BLEU of the argmax tokens (temperature 0), reduced; no gradient."""
        return reduce_per_sample(self._value(input, ref, hyp_lengths, 0.0), self.reduction)

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if v is not None}
        shown.update(reduction=self.reduction, temperature=self.temperature)
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class ExpectedBLEULoss(nn.Module):
    """Minimum risk training: the expected `1 - BLEU` of K candidates per source, the
    Module of [`expected_bleu`][softmetrics.functional.expected_bleu].

    Holds the options of `expected_bleu` (`alpha`, `length_normalize`, `reduction` over
    sources, `pad_id`, `max_order`, `smooth`, `smooth_value`, `effective_order`,
    `vocab_size`, `padding_side`, `validate_args`; see there).
    `forward(samples, log_probs, ref)` returns the risk
    $\\sum_k q_k (1 - \\mathrm{BLEU}_k)$ with $q = \\mathrm{softmax}(\\alpha \\log p)$ over the
    candidates (with `length_normalize=True`, $\\log p$ per token), reduced over sources;
    the gradient flows into `log_probs`. `metric` returns the expected BLEU with the same
    reduction. The default `alpha=1` on sequence log-probabilities puts nearly all weight
    on one candidate; see [Choosing alpha](../text.md#choosing-alpha). Mix it with token
    cross-entropy: Edunov et al. (2018) found sequence-level risk alone does worse than
    combined with token NLL.

    Examples:
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
        >>> per_token = ExpectedBLEULoss(max_order=2, length_normalize=True)
        >>> per_token(samples, log_probs, ref)  # per token: -1/3, -1, -1
        tensor(0.3980, grad_fn=<MeanBackward0>)
    """

    def __init__(self, *, alpha: float = 1.0, length_normalize: bool = False,
                 reduction: Reduction = "mean", pad_id: int = 0, max_order: int = 4,
                 smooth: Smooth = "exp", smooth_value: float | None = None,
                 effective_order: bool | None = None, vocab_size: int | None = None,
                 padding_side: PaddingSide = "right", validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        check_bleu_options(name, max_order=max_order, smooth=smooth,
                           smooth_value=smooth_value, effective_order=effective_order,
                           padding_side=padding_side)
        check_int(name, "pad_id", pad_id)
        alpha = check_expected_bleu_options(name, alpha=alpha,
                                            length_normalize=length_normalize,
                                            reduction=reduction)
        if vocab_size is not None:
            check_int(name, "vocab_size", vocab_size, low=1)
        self.alpha = alpha
        self.reduction = reduction
        self.options: dict[str, Any] = dict(
            length_normalize=length_normalize, pad_id=pad_id, max_order=max_order,
            smooth=smooth, smooth_value=smooth_value, effective_order=effective_order,
            vocab_size=vocab_size, padding_side=padding_side, validate_args=validate_args)

    def forward(self, samples: Tensor, log_probs: Tensor, ref: Tensor) -> Tensor:
        """The risk `1 - expected BLEU`, in [0, 1]."""
        value = compute_expected_bleu(type(self).__name__, samples, log_probs, ref,
                                      alpha=self.alpha, reduction="none", **self.options)
        return reduce_per_sample(1.0 - value, self.reduction)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, samples: Tensor, log_probs: Tensor, ref: Tensor) -> Tensor:
        """The expected BLEU with this loss's options; no gradient."""
        return compute_expected_bleu(type(self).__name__, samples, log_probs, ref,
                                     alpha=self.alpha, reduction=self.reduction,
                                     **self.options)

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.options.items() if v is not None}
        shown.update(alpha=self.alpha, reduction=self.reduction)
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())
