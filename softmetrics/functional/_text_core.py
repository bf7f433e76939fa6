r"""The machinery of BLEU on token ids, behind `softmetrics.functional.text`.

Option checks; the exact statistics from the n-gram groups of `_bleu_ngrams`; the soft matches of
per-position token distributions; the BLEU formula that both kinds of statistics share;
and the pipelines of `bleu_score` and `soft_bleu_score`, which validate, compute the
statistics and apply the formula (`expected_bleu`'s is `_expected_bleu_core`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from .. import _tuning
from .._checks import (
    DataChecks,
    check_floating,
    check_held,
    check_index_tensor,
    check_int,
    check_ndim,
    check_number,
    check_option,
    check_same_device,
    check_temperature,
    checks_data,
    fail,
)
from .._operators import operator
from .._options import PADDING_SIDES
from .._relax import bounded, compute_dtype, full_precision, is_hard, temperature_scale
from .._transforms import host_values, is_compiling, is_transformed, plain_backward
from ._bleu_ngrams import ngram_groups, tag_counts

__all__ = [
    "SMOOTH_DEFAULTS",
    "check_bleu_options",
    "check_pad_id",
    "check_vocab_size",
    "compute_bleu",
    "compute_soft_bleu",
    "format_ref",
    "hard_stats",
    "id_bounds",
    "left_align",
    "prefix_valid",
    "score_stats",
    "soft_caps",
    "soft_matches",
]

#: The `smooth_value` each smoothing method uses when none is given (None: it takes none).
SMOOTH_DEFAULTS: dict[str, float | None] = {"none": None, "floor": 0.1, "add-k": 1.0,
                                            "exp": None}
_INT64_MAX = 2**63 - 1


# ---------------------------------------------------------------------------------------
# options and inputs


def check_bleu_options(fn: str, *, max_order: int, smooth: str, smooth_value: float | None,
                       effective_order: bool | None, corpus: bool = False,
                       padding_side: str = "right") -> float:
    """Validate the options shared by the BLEU functions; return the smoothing value.

    Reads no tensor data. Modules call this once in `__init__`.
    """
    check_int(fn, "max_order", max_order, low=1)
    check_option(fn, "smooth", smooth, tuple(SMOOTH_DEFAULTS))
    check_option(fn, "padding_side", padding_side, PADDING_SIDES)
    if effective_order is not None and not isinstance(effective_order, bool):
        fail(fn, "effective_order", "None, True or False", effective_order, error=TypeError)
    if not isinstance(corpus, bool):
        fail(fn, "corpus", "True or False", corpus, error=TypeError)
    if smooth_value is None:
        default = SMOOTH_DEFAULTS[smooth]
        return 0.0 if default is None else default
    return check_number(fn, "smooth_value", smooth_value, low=0.0, high=math.inf,
                        high_open=True)


def check_vocab_size(fn: str, vocab_size: int | None) -> None:
    if vocab_size is not None:
        check_int(fn, "vocab_size", vocab_size, low=1)


def check_pad_id(fn: str, arg: str, tokens: Tensor, pad_id: int) -> None:
    """`pad_id` must be a value of the ids' dtype (`check_held`): compared with the ids,
    another would wrap into their range (2^32 + 1 reads as 1 in int32)."""
    if isinstance(tokens, Tensor):
        check_held(fn, "pad_id", pad_id, arg, tokens)


def format_ref(fn: str, ref: Tensor, batch: int, pad_id: int,
               first: tuple[str, Tensor]) -> Tensor:
    """`ref` as `(B, R, T')` (a view), after checking dtype, rank, batch, `pad_id` and that
    it lies on the device of the `first` argument (name, tensor)."""
    check_index_tensor(fn, "ref", ref)
    check_same_device(fn, first, ("ref", ref))
    check_ndim(fn, "ref", ref, (2, 3), "of shape (B, T') or (B, R, T')")
    if ref.shape[0] != batch:
        fail(fn, "ref", f"of batch size {batch} (as the hypotheses)",
             f"shape {tuple(ref.shape)}", raw=True)
    if ref.ndim == 3 and ref.shape[1] == 0:
        fail(fn, "ref", "at least one reference per hypothesis (R >= 1)",
             f"shape {tuple(ref.shape)}", raw=True)
    check_pad_id(fn, "ref", ref, pad_id)
    return ref.unsqueeze(1) if ref.ndim == 2 else ref


def id_bounds(fn: str, named: list[tuple[str, Tensor]], pad_id: int,
               vocab_size: int | None, checks: DataChecks) -> int:
    """Check that every id other than `pad_id` is >= 0 (and < `vocab_size` when given);
    return 1 + the largest id (at least 1).

    Reads the data, with the call's other data `checks`, in one host synchronisation:
    call only under `checks_data(validate_args)`.
    """
    named = [(name, t) for name, t in named if t.numel()]
    stats = []
    for _, t in named:
        keep = t != pad_id
        t = t.long()
        stats.append(torch.stack([torch.where(keep, t, _INT64_MAX).amin(),
                                  torch.where(keep, t, -1).amax()]))
    flat = checks.settle(read=torch.cat(stats) if stats else None)
    values = [flat[i:i + 2] for i in range(0, len(flat), 2)]
    for (name, _), (low, high) in zip(named, values, strict=True):
        if low < 0:
            fail(fn, name, f"token ids >= 0 (or pad_id = {pad_id})", f"an id {low}", raw=True)
        if vocab_size is not None and high >= vocab_size:
            fail(fn, name, f"token ids < vocab_size = {vocab_size}", f"an id {high}", raw=True)
    return max(1, max((high for _, high in values), default=0) + 1)


def prefix_valid(tokens: Tensor, pad_id: int) -> Tensor:
    """True before the first `pad_id` of each sequence (the last axis)."""
    return (tokens == pad_id).cumsum(-1) == 0


def leading_pads(tokens: Tensor, pad_id: int) -> Tensor:
    """The number of `pad_id` before the first other id of each sequence (the last axis)."""
    return ((tokens != pad_id).cumsum(-1) == 0).sum(-1)


def left_align(tokens: Tensor, pad_id: int) -> Tensor:
    """`tokens` with the leading pads of each sequence moved to its end (one gather, no
    host synchronisation): a left-padded batch as a right-padded one."""
    length = tokens.shape[-1]
    if length == 0:
        return tokens
    pos = torch.arange(length, device=tokens.device) + leading_pads(tokens, pad_id)[..., None]
    moved = tokens.gather(-1, pos.clamp_max(length - 1))
    return torch.where(pos < length, moved, torch.full_like(moved, pad_id))


def _closest_ref_len(hyp_len: Tensor, ref_lens: Tensor) -> Tensor:
    """Reference length closest to the hypothesis length (ties: the shorter).

    An empty reference counts as missing unless all are empty (length 0 then).
    """
    if ref_lens.shape[1] == 1:
        return ref_lens[:, 0]
    big = torch.iinfo(torch.int64).max // 4
    scale = 2**32
    diff = (hyp_len.unsqueeze(1) - ref_lens).abs()
    key = torch.where(ref_lens > 0, diff * scale + ref_lens, big)
    best = key.amin(1)
    return torch.where(best == big, 0, best % scale)



def hard_stats(hyp: Tensor, ref: Tensor, pad_id: int, max_order: int,
                vocab_size: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Exact BLEU statistics (`_tiled_stats`); inside `torch.compile` one operator,
    `softmetrics::bleu_stats`, so that the compiler neither unrolls the CPU's tiles into
    its graph nor traces the n-gram sorts and counts of each (where torch has
    `torch.library.custom_op`)."""
    if is_compiling() and _STATS_OPERATOR is not None:
        return _STATS_OPERATOR(hyp, ref, pad_id, max_order, vocab_size)
    return _tiled_stats(hyp, ref, pad_id, max_order, vocab_size)


def _fake_stats(hyp: Tensor, ref: Tensor, pad_id: int, max_order: int,
                vocab_size: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The shapes and dtypes of `_tiled_stats`' results, for the compiler."""
    rows = hyp.shape[0]
    return (hyp.new_empty(rows, max_order, dtype=torch.long),
            hyp.new_empty(rows, max_order, dtype=torch.long),
            hyp.new_empty(rows, dtype=torch.long), hyp.new_empty(rows, dtype=torch.long))


def _tiled_stats(hyp: Tensor, ref: Tensor, pad_id: int, max_order: int,
                 vocab_size: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Exact BLEU statistics: `(matches (B, N), totals (B, N), hyp_len (B,), ref_len (B,))`,
    all int64.

    On the CPU the sentences are processed in tiles of about
    `_tuning.BLEU_CPU_TILE_ELEMENTS` tokens, which keeps the sort and the counts in cache
    (the statistics of a sentence do not depend on the others); on other devices the whole
    batch is one tile.
    """
    rows = hyp.shape[0]
    width = hyp.shape[1] + ref.shape[1] * ref.shape[2]
    tile = _tuning.rows_per_block(rows, width, hyp.device, _tuning.BLEU_CPU_TILE_ELEMENTS)
    if rows <= tile:
        return _tile_stats(hyp, ref, pad_id, max_order, vocab_size)
    parts = [_tile_stats(hyp[i:i + tile], ref[i:i + tile], pad_id, max_order, vocab_size)
             for i in range(0, rows, tile)]
    matches, totals, hyp_len, ref_len = (torch.cat(p) for p in zip(*parts, strict=True))
    return matches, totals, hyp_len, ref_len


def _tile_stats(hyp: Tensor, ref: Tensor, pad_id: int, max_order: int,
                vocab_size: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`_tiled_stats` of one tile of sentences."""
    rows, t_hyp = hyp.shape
    n_refs, t_ref = ref.shape[1:]
    device = hyp.device
    hv = prefix_valid(hyp, pad_id)
    rv = prefix_valid(ref, pad_id)
    hyp_len = hv.sum(-1)
    ref_len = _closest_ref_len(hyp_len, rv.sum(-1))
    orders = torch.arange(max_order, device=device)
    totals = (hyp_len.unsqueeze(1) - orders).clamp_min(0)
    matches = torch.zeros(rows, max_order, dtype=torch.long, device=device)
    lens = [t_hyp] + [t_ref] * n_refs
    if rows == 0 or t_hyp == 0 or t_ref == 0:
        return matches, totals, hyp_len, ref_len
    tokens = torch.cat([hyp.long(), ref.reshape(rows, -1).long()], 1)
    valid = torch.cat([hv, rv.reshape(rows, -1)], 1)
    groups = ngram_groups(tokens, valid, lens, max_order, vocab_size)
    for n, (_, _, run, tag) in enumerate(groups):
        counts = tag_counts(run, tag, n_refs + 1)
        best_ref = counts[:, 2] if n_refs == 1 else counts[:, 2:].amax(1)
        clipped = torch.minimum(counts[:, 1], best_ref)  # 0 for unused run ids
        cum = torch.zeros(clipped.numel() + 1, dtype=torch.long, device=device)
        torch.cumsum(clipped, 0, dtype=torch.long, out=cum[1:])
        first = run.view(rows, -1)[:, 0]
        end = torch.cat([first[1:], run[-1:] + 1])
        matches[:, n] = cum[end] - cum[first]
    return matches, totals, hyp_len, ref_len


# `softmetrics::bleu_stats`: `_tiled_stats` as an operator (integer statistics, no gradient)
_STATS_OPERATOR = operator("bleu_stats", _tiled_stats, _fake_stats)


# ---------------------------------------------------------------------------------------
# the formula (shared by the exact, soft and expected BLEU)


def _bleu_formula(matches: Tensor, totals: Tensor, hyp_len: Tensor, ref_len: Tensor, *,
                  smooth: str, smooth_value: float, effective_order: bool) -> Tensor:
    """BLEU from statistics (float tensors, order on the last axis), as sacrebleu.

    `add-k` adds `k` to the matches and totals of the orders n > 1; the orders are used up
    to the first with no hypothesis n-gram (with `effective_order`; without it, such an
    order makes the score 0); a used order with zero matches gets precision
    `smooth_value / t_n` ("floor"), `1 / (2^i t_n)` for the i-th such order ("exp"), or
    makes the score 0 ("none", "add-k"); no unigram match (hence no match at all) gives 0.

    The tests "no match" are written as `z(m) = max(1 - m, 0)`, which is the indicator of
    `m == 0` on integer counts and continuous in soft ones: the precision is
    `(m_n + z(m_n) s_n) / t_n` and the score is multiplied by `1 - z(m_1)`. So the exact
    statistics give sacrebleu's value and soft statistics a continuous one that tends to it.
    """
    order = matches.shape[-1]
    first = matches[..., 0]
    # clipped matches never exceed the hypothesis n-grams; soft statistics can pass them by
    # rounding, so the bound is applied, not assumed (to the matches: a "floor" above 1
    # may still lift a smoothed precision above 1, as in sacrebleu)
    matches = torch.where(matches > totals, totals, matches)
    if smooth == "add-k" and order > 1:
        add = torch.full((order,), smooth_value, dtype=matches.dtype, device=matches.device)
        add[0] = 0.0
        matches = matches + add
        totals = totals + add
    valid = (totals > 0).long().cumprod(-1).bool()
    safe_totals = torch.where(valid, totals, 1.0)
    no_match = torch.where(valid, bounded(1.0 - matches, 0.0), 0.0)
    if smooth == "exp":
        # the running count of orders without a match, as a sum under a triangular mask:
        # a floating-point cumsum has no deterministic CUDA kernel (a handful of orders)
        below = torch.ones(order, order, dtype=torch.bool, device=matches.device).tril()
        running = torch.where(below, no_match.unsqueeze(-2), 0.0).sum(-1)
        numerator = matches + no_match * torch.exp2(-running)
    elif smooth == "floor":
        numerator = matches + no_match * smooth_value
    else:
        numerator = matches
    precision = torch.where(valid, numerator / safe_totals, 0.0)
    if effective_order:
        used = valid
        count = valid.sum(-1).clamp_min(1).to(matches.dtype)
    else:
        used = torch.ones_like(valid)
        count = torch.full(valid.shape[:-1], order, dtype=matches.dtype,
                           device=matches.device)
    # comparisons written so that NaN statistics (from NaN logits) give NaN, not 0
    nonpositive = precision <= 0
    dead = (used & nonpositive).any(-1) | (first <= 0)
    log_p = torch.log(torch.where(used & ~nonpositive, precision, 1.0)).sum(-1) / count
    safe_hyp = torch.where(hyp_len > 0, hyp_len, 1.0)
    penalty = torch.where(hyp_len >= ref_len, 1.0,
                          torch.where(hyp_len > 0, torch.exp(1.0 - ref_len / safe_hyp), 0.0))
    some_match = bounded(first, 0.0, 1.0)
    return torch.where(dead, 0.0, some_match * penalty * torch.exp(log_p))


def score_stats(matches: Tensor, totals: Tensor, hyp_len: Tensor, ref_len: Tensor,
                dtype: torch.dtype, *, corpus: bool, **options: Any) -> Tensor:
    """Cast the statistics to `dtype`, sum them for `corpus`, apply the formula."""
    matches, totals = matches.to(dtype), totals.to(dtype)
    hyp_len, ref_len = hyp_len.to(dtype), ref_len.to(dtype)
    if corpus:
        matches, totals = matches.sum(0), totals.sum(0)
        hyp_len, ref_len = hyp_len.sum(0), ref_len.sum(0)
    return _bleu_formula(matches, totals, hyp_len, ref_len, **options)


# ---------------------------------------------------------------------------------------
# soft BLEU


class _GatheredLogSoftmax(torch.autograd.Function):
    """`log_softmax(z / tau)` at the gathered `index` only, without storing the softmax.

    Forward keeps `z` (already held by the caller) and the `(B, T, 1)` log-normalizer; the
    backward pass recomputes the softmax once, so no extra `(B, T, V)` tensor lives between
    the passes.
    """

    apply: ClassVar[Callable[[Tensor, Tensor, float, torch.dtype], Tensor]]

    @staticmethod
    def forward(ctx: Any, z: Tensor, index: Tensor, tau: float, dtype: torch.dtype) -> Tensor:
        lse = torch.logsumexp(z.to(dtype) / tau if tau != 1 else z.to(dtype), dim=-1,
                              keepdim=True)
        out = z.gather(-1, index).to(dtype) / tau - lse
        ctx.save_for_backward(z, index, lse)
        ctx.tau = tau
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        z, index, lse = ctx.saved_tensors
        tau = ctx.tau
        if plain_backward(grad):  # differentiable ops from `z`
            p = torch.softmax(z.to(lse.dtype) / tau, dim=-1) * -grad.sum(-1, keepdim=True)
            return (p.scatter_add(-1, index, grad) / tau).to(z.dtype), None, None, None
        p = z.to(lse.dtype, copy=True)
        if tau != 1:  # a pass over (B, T, V) that a temperature of 1 does not need
            p.div_(tau)
        out = p.sub_(lse).exp_().mul_(grad.sum(-1, keepdim=True).neg_())
        out.scatter_add_(-1, index, grad)
        return (out if tau == 1 else out.div_(tau)).to(z.dtype), None, None, None


def soft_caps(ref: Tensor, rv: Tensor, max_order: int) -> list[Tensor]:
    """Per order n, `(B, R, T' - n + 1)`: the clipping count `max_k c_{r_k}(g)` of each
    distinct reference n-gram g at one of its positions (its representative), 0 elsewhere
    and past the valid prefixes. Computed from the reference ids alone (no gradient)."""
    rows, n_refs, t_ref = ref.shape
    caps = []
    lens = [t_ref] * n_refs
    tokens = ref.reshape(rows, -1).long()
    groups = ngram_groups(tokens, rv.reshape(rows, -1), lens, max_order, None)
    for n, (perm, new, run, tag) in enumerate(groups, 1):
        counts = tag_counts(run, tag, n_refs)
        best = counts[:, 1] if n_refs == 1 else counts[:, 1:].amax(1)
        at_first = best[run] * new
        cap = torch.empty_like(at_first).scatter_(0, perm, at_first)
        caps.append(cap.view(rows, n_refs, t_ref - n + 1))
    return caps


def soft_matches(m1: Tensor, hv: Tensor, caps: list[Tensor], max_order: int) -> Tensor:
    """Soft clipped matches `(B, N)` from the unigram match probabilities `m1`
    `(B, T, R, T')` (`m1[b, t, k, j]` = probability that hypothesis token t is reference
    token j of reference k)."""
    rows, t_hyp = hv.shape
    matches = m1.new_zeros(rows, max_order)
    mn = m1
    for n in range(1, max_order + 1):
        if n > len(caps) or t_hyp - n + 1 <= 0:
            break
        if n > 1:
            mn = mn[:, :-1, :, :-1] * m1[:, n - 1:, :, n - 1:]
        # soft count in the hypothesis of the n-gram at each reference position (the
        # n-grams whose first and last positions are in the hypothesis)
        inside = hv[:, n - 1:] & hv[:, :t_hyp - n + 1]
        counts = torch.einsum("btkj,bt->bkj", mn, inside.to(mn.dtype))
        matches[:, n - 1] = torch.minimum(counts, caps[n - 1].to(mn.dtype)).sum((1, 2))
    return matches



# ---------------------------------------------------------------------------------------
# the pipelines of the public functions: validate, statistics, formula


def compute_bleu(fn: str, hyp: Tensor, ref: Tensor, *, pad_id: int, max_order: int,
                 smooth: str, smooth_value: float | None, effective_order: bool | None,
                 corpus: bool, vocab_size: int | None, padding_side: str,
                 validate_args: bool) -> Tensor:
    """`bleu_score`: the exact BLEU of token ids (float64, no gradient)."""
    smooth_value = check_bleu_options(fn, max_order=max_order, smooth=smooth,
                                      smooth_value=smooth_value,
                                      effective_order=effective_order, corpus=corpus,
                                      padding_side=padding_side)
    check_int(fn, "pad_id", pad_id)
    check_vocab_size(fn, vocab_size)
    check_index_tensor(fn, "hyp", hyp)
    check_ndim(fn, "hyp", hyp, 2, "of shape (B, T)")
    check_pad_id(fn, "hyp", hyp, pad_id)
    ref = format_ref(fn, ref, hyp.shape[0], pad_id, ("hyp", hyp))
    if checks_data(validate_args):
        top = id_bounds(fn, [("hyp", hyp), ("ref", ref)], pad_id, vocab_size, DataChecks())
        vocab_size = top if vocab_size is None else vocab_size
    if effective_order is None:
        effective_order = not corpus
    with torch.no_grad():
        if padding_side == "left":
            hyp, ref = left_align(hyp, pad_id), left_align(ref, pad_id)
        stats = hard_stats(hyp, ref, pad_id, max_order, vocab_size)
        return score_stats(*stats, torch.float64, corpus=corpus, smooth=smooth,
                      smooth_value=smooth_value, effective_order=effective_order)


def _check_soft_bleu_data(fn: str, input: Tensor, ref: Tensor, temperature: float | Tensor,
                          pad_id: int, hyp_lengths: Tensor | None) -> None:
    """The value checks of `compute_soft_bleu`: a finite `input`, `hyp_lengths` in
    [0, T], a tensor `temperature` > 0 and the reference ids (`id_bounds`)."""
    checks = DataChecks()
    checks.finite(fn, "input", input)
    t_hyp = input.shape[1]
    if hyp_lengths is not None and hyp_lengths.numel():
        lengths = hyp_lengths.detach()

        def lengths_in_range() -> None:
            low, high = host_values(torch.stack([lengths.amin(), lengths.amax()]))
            if low < 0 or high > t_hyp:
                bad = low if low < 0 else high
                fail(fn, "hyp_lengths", f"lengths in [0, {t_hyp}]", f"a length {bad}",
                     raw=True)

        low, high = torch.aminmax(lengths)
        checks.add((low >= 0) & (high <= t_hyp), lengths_in_range)
    checks.temperature(fn, "temperature", temperature)
    id_bounds(fn, [("ref", ref)], pad_id, None, checks)


def compute_soft_bleu(fn: str, input: Tensor, ref: Tensor, *, temperature: float | Tensor,
                      pad_id: int, max_order: int, smooth: str, smooth_value: float | None,
                      effective_order: bool | None, corpus: bool,
                      hyp_lengths: Tensor | None, padding_side: str,
                      validate_args: bool) -> Tensor:
    """`soft_bleu_score`: BLEU of per-position token distributions `softmax(input / tau)`,
    exact (float64 statistics) at temperature 0."""
    smooth_value = check_bleu_options(fn, max_order=max_order, smooth=smooth,
                                      smooth_value=smooth_value,
                                      effective_order=effective_order, corpus=corpus,
                                      padding_side=padding_side)
    check_int(fn, "pad_id", pad_id)
    temperature = check_temperature(fn, temperature)
    check_floating(fn, "input", input, "logits over the vocabulary")
    check_ndim(fn, "input", input, 3, "of shape (B, T, V) (logits over the vocabulary)")
    rows, t_hyp, vocab = input.shape
    if vocab == 0:
        fail(fn, "input", "logits over a vocabulary of at least one token (V >= 1)",
             f"shape {tuple(input.shape)}", raw=True)
    ref = format_ref(fn, ref, rows, pad_id, ("input", input))
    if hyp_lengths is not None:
        check_index_tensor(fn, "hyp_lengths", hyp_lengths)
        check_same_device(fn, ("input", input), ("hyp_lengths", hyp_lengths))
        if tuple(hyp_lengths.shape) != (rows,):
            fail(fn, "hyp_lengths", f"of shape ({rows},) (one length per hypothesis)",
                 f"shape {tuple(hyp_lengths.shape)}", raw=True)
    if checks_data(validate_args):  # one host synchronisation for all the checks
        _check_soft_bleu_data(fn, input, ref, temperature, pad_id, hyp_lengths)
    if effective_order is None:
        effective_order = not corpus
    hard = is_hard(temperature)
    dtype = compute_dtype(input.dtype)
    work = torch.float64 if hard else dtype
    n_refs, t_ref = ref.shape[1:]
    device = input.device
    with torch.no_grad():
        tokens = input.argmax(-1)
        left = padding_side == "left"
        if hyp_lengths is None:
            start = leading_pads(tokens, pad_id) if left else None
            aligned = left_align(tokens, pad_id) if left else tokens
            hyp_len = prefix_valid(aligned, pad_id).sum(-1)
        else:
            hyp_len = hyp_lengths.long()
            start = t_hyp - hyp_len if left else None
        # the hypothesis: positions [start, start + |h|)
        pos = torch.arange(t_hyp, device=device)
        end = hyp_len if start is None else start + hyp_len
        hv = pos < end.unsqueeze(1)
        if start is not None:
            hv &= pos >= start.unsqueeze(1)
        ref = ref.long()  # ids index the logits; `ref < vocab` in a narrow dtype would wrap V
        if left:
            ref = left_align(ref, pad_id)
        rv = prefix_valid(ref, pad_id)
        ref_len = _closest_ref_len(hyp_len, rv.sum(-1))
        orders = torch.arange(max_order, device=device)
        totals = (hyp_len.unsqueeze(1) - orders).clamp_min(0)
        empty = rows == 0 or t_hyp == 0 or t_ref == 0
        caps = [] if empty else soft_caps(ref, rv, max_order)
        inside = (ref >= 0) & (ref < vocab)
        flat_ref = torch.where(inside, ref, 0).reshape(rows, 1, n_refs * t_ref)
    if empty:  # no matches; a sum of none of the logits keeps the graph (0 gradient)
        matches = torch.zeros(rows, max_order, dtype=work, device=device)
        if not hard:
            matches = matches + input[..., :0].sum().to(work)
    else:
        if hard:
            m1 = (tokens.unsqueeze(2) == flat_ref).to(work)
        else:
            index = flat_ref.expand(rows, t_hyp, n_refs * t_ref)
            tau = temperature_scale(temperature)
            if isinstance(tau, Tensor) or is_transformed():  # plain operations
                scale = tau.to(dtype) if isinstance(tau, Tensor) else tau
                log_p = torch.log_softmax(input.to(dtype) / scale, dim=-1).gather(-1, index)
            else:
                log_p = _GatheredLogSoftmax.apply(input, index, tau, dtype)
            m1 = log_p.exp()
        m1 = m1.view(rows, t_hyp, n_refs, t_ref) * inside.unsqueeze(1).to(work)
        with full_precision(device):  # soft counts summed in `work`, also under autocast
            matches = soft_matches(m1, hv, caps, max_order)
    out = score_stats(matches, totals, hyp_len, ref_len, work, corpus=corpus, smooth=smooth,
                 smooth_value=smooth_value, effective_order=effective_order)
    # NaN logits give NaN (the argmax of NaN logits, which sets the lengths and the exact
    # value, is a token all the same, and a structural 0 would hide them)
    with torch.no_grad():
        unordered = input.isnan().flatten(1).any(1)
        unordered = unordered.any() if corpus else unordered
    out = torch.where(unordered, float("nan"), out)
    return out.to(dtype)
