"""The pipeline of `expected_bleu` (minimum risk training): the exact sentence BLEU of K
candidates per source, from `_text_core`, averaged under a softmax of their
log-probabilities."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import (
    DataChecks,
    check_floating,
    check_index_tensor,
    check_int,
    check_ndim,
    check_number,
    check_option,
    check_same_device,
    checks_data,
    fail,
)
from .._options import REDUCTIONS
from .._relax import compute_dtype, reduce_per_sample
from ._text_core import (
    check_bleu_options,
    check_pad_id,
    check_vocab_size,
    format_ref,
    hard_stats,
    id_bounds,
    left_align,
    score_stats,
)

__all__ = ["check_expected_bleu_options", "compute_expected_bleu"]


def check_expected_bleu_options(fn: str, *, alpha: float, length_normalize: bool,
                                reduction: str) -> float:
    """Validate the options of expected BLEU that the other BLEU functions do not take;
    return `alpha`. Reads no tensor data. The Module calls this once in `__init__`."""
    alpha = check_number(fn, "alpha", alpha, low=0.0, high=math.inf, high_open=True)
    if not isinstance(length_normalize, bool):
        fail(fn, "length_normalize", "True or False", length_normalize, error=TypeError)
    check_option(fn, "reduction", reduction, REDUCTIONS)
    return alpha


def compute_expected_bleu(fn: str, samples: Tensor, log_probs: Tensor, ref: Tensor, *,
                          alpha: float, length_normalize: bool, pad_id: int, max_order: int,
                          smooth: str, smooth_value: float | None,
                          effective_order: bool | None, vocab_size: int | None,
                          reduction: str, padding_side: str, validate_args: bool) -> Tensor:
    """`expected_bleu`: the sentence BLEU of the `(B, K)` candidates (exact, no gradient)
    averaged under `softmax(alpha * log_probs)` over the candidates (with
    `length_normalize`, `log_probs` divided by the candidates' lengths), then reduced."""
    smooth_value = check_bleu_options(fn, max_order=max_order, smooth=smooth,
                                      smooth_value=smooth_value,
                                      effective_order=effective_order,
                                      padding_side=padding_side)
    check_int(fn, "pad_id", pad_id)
    check_vocab_size(fn, vocab_size)
    alpha = check_expected_bleu_options(fn, alpha=alpha, length_normalize=length_normalize,
                                        reduction=reduction)
    check_index_tensor(fn, "samples", samples)
    check_pad_id(fn, "samples", samples, pad_id)
    check_ndim(fn, "samples", samples, 3, "of shape (B, K, T)")
    rows, k, t_hyp = samples.shape
    check_floating(fn, "log_probs", log_probs, "sequence log-probabilities")
    if tuple(log_probs.shape) != (rows, k):
        fail(fn, "log_probs", f"of shape ({rows}, {k}) (one log-probability per sample)",
             f"shape {tuple(log_probs.shape)}", raw=True)
    check_same_device(fn, ("samples", samples), ("log_probs", log_probs))
    ref = format_ref(fn, ref, rows, pad_id, ("samples", samples))
    if checks_data(validate_args):  # one host synchronisation for all the checks
        checks = DataChecks()
        checks.finite(fn, "log_probs", log_probs)
        top = id_bounds(fn, [("samples", samples), ("ref", ref)], pad_id, vocab_size,
                         checks)
        vocab_size = top if vocab_size is None else vocab_size
    if effective_order is None:
        effective_order = True
    dtype = compute_dtype(log_probs.dtype)
    with torch.no_grad():
        if padding_side == "left":
            samples, ref = left_align(samples, pad_id), left_align(ref, pad_id)
        refs = ref.unsqueeze(1).expand(rows, k, *ref.shape[1:]).reshape(rows * k,
                                                                         *ref.shape[1:])
        stats = hard_stats(samples.reshape(rows * k, t_hyp), refs, pad_id, max_order,
                            vocab_size)
        bleu = score_stats(*stats, torch.float64, corpus=False, smooth=smooth,
                      smooth_value=smooth_value, effective_order=effective_order)
    scores = log_probs.to(dtype)
    if length_normalize:
        # per-token log-probabilities: the lengths BLEU counted (an empty candidate: 1)
        scores = scores / stats[2].view(rows, k).clamp_min(1).to(dtype)
    if k:  # the differences to the best candidate: `alpha * scores` itself may overflow
        scores = scores - scores.detach().amax(1, keepdim=True)  # (softmax: no change)
    q = torch.softmax(alpha * scores, dim=1)
    return reduce_per_sample((q * bleu.view(rows, k).to(dtype)).sum(1), reduction)
