r"""Text surrogates: BLEU on token ids, exact and batched, soft, and expected.

BLEU (Papineni et al., 2002) is a formula over per-sentence statistics: for each n-gram
order $n = 1, \dots, N$ the clipped matches $m_n$ and the hypothesis n-gram count
$t_n = \max(|h| - n + 1, 0)$, the hypothesis length $|h|$ and the length $r$ of the
reference closest to it,

$$
m_n = \sum_{g \in \text{n-grams}} \min\bigl(c_h(g),\ \max_k c_{r_k}(g)\bigr),\qquad
\mathrm{BLEU} = \mathrm{BP} \cdot \exp\Bigl(\frac{1}{N'}\sum_{n=1}^{N'} \log p_n\Bigr),
\qquad \mathrm{BP} = \min\bigl(1, e^{1 - r / |h|}\bigr),
$$

with $p_n = m_n / t_n$ up to smoothing and $N'$ the (effective) order. Corpus BLEU sums
the statistics over sentences before the formula. Only the n-gram *equality* is discrete;
the three functions here share the statistics and the formula:

- [`bleu_score`][softmetrics.functional.bleu_score]: the exact metric on token ids, equal
  to sacrebleu (`tokenize="none"`) on the whitespace-joined ids;
- [`soft_bleu_score`][softmetrics.functional.soft_bleu_score]: the n-gram equality
  replaced by a product of token probabilities (differentiable in the logits);
- [`expected_bleu`][softmetrics.functional.expected_bleu]: the expected BLEU of sampled
  candidates under a softmax over their sequence log-probabilities (minimum risk
  training; differentiable in the log-probabilities).

The exact statistics are computed without a Python loop over sentences: every n-gram is
packed into one integer key made of the run id of its $(n-1)$-gram prefix and the dense
id of its last token, the keys of a whole batch are sorted once per order, and the counts
of each key per hypothesis and reference come from one scatter-add. The keys stay below
$(B L + 1)(L + 1)$ for $B$ sentences of $L$ tokens (hypothesis and references together),
so they never overflow and no n-gram hash can collide.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .._checks import (
    check_floating,
    check_index_tensor,
    check_int,
    check_ndim,
    check_number,
    check_option,
    check_temperature,
    fail,
)
from .._relax import compute_dtype, full_precision, is_hard, reduce_per_sample, rows_per_block

__all__ = ["bleu_score", "expected_bleu", "soft_bleu_score"]

Smooth = Literal["none", "floor", "add-k", "exp"]
Reduction = Literal["mean", "sum", "none"]

SMOOTH_DEFAULTS: dict[str, float | None] = {"none": None, "floor": 0.1, "add-k": 1.0,
                                            "exp": None}
_REDUCTIONS = ("mean", "sum", "none")
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


# ---------------------------------------------------------------------------------------
# options and inputs


def check_options(fn: str, *, max_order: int, smooth: str, smooth_value: float | None,
                  effective_order: bool | None, corpus: bool = False) -> float:
    """Validate the options shared by the BLEU functions; return the smoothing value.

    Reads no tensor data. Modules call this once in `__init__`.
    """
    check_int(fn, "max_order", max_order, low=1)
    check_option(fn, "smooth", smooth, tuple(SMOOTH_DEFAULTS))
    if effective_order is not None and not isinstance(effective_order, bool):
        fail(fn, "effective_order", "None, True or False", effective_order, error=TypeError)
    if not isinstance(corpus, bool):
        fail(fn, "corpus", "True or False", corpus, error=TypeError)
    if smooth_value is None:
        default = SMOOTH_DEFAULTS[smooth]
        return 0.0 if default is None else default
    return check_number(fn, "smooth_value", smooth_value, low=0.0)


def _check_vocab_size(fn: str, vocab_size: int | None) -> None:
    if vocab_size is not None:
        check_int(fn, "vocab_size", vocab_size, low=1)


def _format_ref(fn: str, ref: Tensor, batch: int) -> Tensor:
    """`ref` as `(B, R, T')` (a view), after checking dtype, rank and batch size."""
    check_index_tensor(fn, "ref", ref)
    check_ndim(fn, "ref", ref, (2, 3), "of shape (B, T') or (B, R, T')")
    if ref.shape[0] != batch:
        fail(fn, "ref", f"of batch size {batch} (as the hypotheses)",
             f"shape {tuple(ref.shape)}", raw=True)
    return ref.unsqueeze(1) if ref.ndim == 2 else ref


def _id_bounds(fn: str, named: list[tuple[str, Tensor]], pad_id: int,
               vocab_size: int | None) -> int:
    """Check that every id other than `pad_id` is >= 0 (and < `vocab_size` when given);
    return 1 + the largest id (at least 1).

    Reads the data (one host synchronisation): call only under `validate_args`.
    """
    named = [(name, t) for name, t in named if t.numel()]
    if not named:
        return 1
    stats = []
    for _, t in named:
        keep = t != pad_id
        t = t.long()
        stats.append(torch.stack([torch.where(keep, t, _INT64_MAX).amin(),
                                  torch.where(keep, t, -1).amax()]))
    values = torch.stack(stats).tolist()
    for (name, _), (low, high) in zip(named, values, strict=True):
        if low < 0:
            fail(fn, name, f"token ids >= 0 (or pad_id = {pad_id})", f"an id {low}", raw=True)
        if vocab_size is not None and high >= vocab_size:
            fail(fn, name, f"token ids < vocab_size = {vocab_size}", f"an id {high}", raw=True)
    return max(1, max(high for _, high in values) + 1)


def _prefix_valid(tokens: Tensor, pad_id: int) -> Tensor:
    """True before the first `pad_id` of each sequence (the last axis)."""
    return (tokens == pad_id).cumsum(-1) == 0


# ---------------------------------------------------------------------------------------
# n-gram statistics: one sort per order over the whole batch


def _runs(keys: Tensor, tag: Tensor | None, bits: int
          ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sort the (B, L) `keys` so that the equal keys of a row are adjacent.

    With `tag=None`, `keys` are packed: `key << bits | tag`, where `tag < 2**bits` is a small
    label of the key (its segment, 0 for an invalid key) and the keys of row b all exceed
    those of row b - 1: one 1-D sort, and the tags come back from the low bits. With a
    `tag` tensor, each row is sorted on its own (any keys) and the tags are gathered.

    Returns `perm` (flat sorted position -> flat original position), `new` (1 where a run
    of equal keys starts, else 0; int64), `run` (the run id of each sorted element, from 1;
    the runs of row b come after those of row b - 1) and the sorted tags.
    """
    rows, length = keys.shape
    row_sorted = tag is not None
    if row_sorted:
        s, p = keys.sort(dim=1)
        offset = torch.arange(rows, device=keys.device).unsqueeze(1) * length
        perm = (p + offset).reshape(-1)
        key = s.reshape(-1)
        tag = tag.reshape(-1)[perm]
    else:
        s, perm = keys.reshape(-1).sort()
        key = s >> bits
        tag = s & ((1 << bits) - 1)
    new = torch.empty(key.shape, dtype=torch.long, device=key.device)
    new[:1] = 1
    torch.ne(key[1:], key[:-1], out=new[1:])
    if row_sorted:
        new.view(rows, length)[:, 0] = 1
    return perm, new, new.cumsum(0), tag


def _segment_tags(lens: list[int], device: torch.device) -> Tensor:
    """`[1] * lens[0] + [2] * lens[1] + ...` as an int64 tensor, filled on the device (a
    tensor built from a Python list would be copied from the host, a synchronisation)."""
    return torch.cat([torch.full((m,), i + 1, dtype=torch.long, device=device)
                      for i, m in enumerate(lens)])


def _ngram_groups(tokens: Tensor, valid: Tensor, lens: list[int], max_order: int,
                  vocab_size: int | None):
    """Group equal n-grams of each row, for n = 1, ..., max_order (a generator).

    `tokens` and `valid` (B, L) hold the concatenated segments of each row (hypothesis,
    references) of lengths `lens`; `valid` is true on a prefix of each segment. For each
    order the n-grams of a segment are those starting at its first `len - n + 1`
    positions, concatenated over the segments (L_n per row). Yields `(perm, new, run, tag)`
    per order: `perm`, `new`, `run` as in `_runs`, and `tag` the segment (1, 2, ...) of each
    sorted n-gram, 0 for an n-gram past its segment's valid prefix. Stops early when no
    segment is long enough.

    Order 1 sorts the tokens (by a 1-D sort of `row * (vocab_size + 1) + id + 1` when
    `vocab_size` is given, else row by row). Order n > 1 sorts the keys
    `run id of the (n-1)-gram prefix * (L + 1) + dense id of the last token`, where the
    dense token ids number the distinct tokens of the row 1, 2, ...: keys below
    `(B L + 1)(L + 1)`, exact and collision-free for any token ids.
    """
    rows, length = tokens.shape
    device = tokens.device
    bits = len(lens).bit_length()  # tags 0..len(lens)
    seg = _segment_tags(lens, device)
    tag = torch.where(valid, seg, 0)
    base = None if vocab_size is None else vocab_size + 1
    if base is not None and (rows * base) << bits <= _INT64_MAX:
        dtype = torch.int32 if (rows * base) << bits <= _INT32_MAX else torch.int64
        row_ids = torch.arange(rows, device=device, dtype=torch.long).unsqueeze(1) * base
        # (row * base + id + 1) << bits | tag, with arithmetic (vectorised for int64)
        keys = torch.where(valid, tokens + 1, 0).add_(row_ids).mul_(1 << bits).add_(tag)
        perm, new, run, tag = _runs(keys.to(dtype), None, bits)
    else:
        keys = torch.where(valid, tokens, torch.iinfo(torch.int64).min)
        perm, new, run, tag = _runs(keys, tag, bits)
    yield perm, new, run, tag
    if max_order == 1:
        return
    width = length + 1
    run2 = run.view(rows, length)
    # dense token ids 1, 2, ... per row (0: invalid), shifted, with the token's segment
    local = torch.where(tag.view(rows, length) > 0, run2 - run2[:, :1] + 1, 0)
    dense1 = torch.empty_like(run).scatter_(0, perm, local.reshape(-1)).view(rows, length)
    last_tok = torch.where(dense1 > 0, torch.add(seg, dense1, alpha=1 << bits), 0)
    prev = torch.empty_like(run).scatter_(0, perm, run).view(rows, length)
    prev_lens = list(lens)
    starts = [sum(lens[:i]) for i in range(len(lens))]
    bound = ((rows * length + 1) * width) << bits
    key_dtype = torch.int32 if bound <= _INT32_MAX else torch.int64
    for n in range(2, max_order + 1):
        cur_lens = [max(m - n + 1, 0) for m in lens]
        total = sum(cur_lens)
        if total == 0:
            return
        prefix, last = [], []
        p_start = 0
        for start, c, pm in zip(starts, cur_lens, prev_lens, strict=True):
            if c:
                prefix.append(prev[:, p_start:p_start + c])
                last.append(last_tok[:, start + n - 1:start + n - 1 + c])
            p_start += pm
        g = torch.cat(prefix, 1) if len(prefix) > 1 else prefix[0]
        t = torch.cat(last, 1) if len(last) > 1 else last[0]
        # (prefix run * width + dense last token) << bits | segment; an n-gram past the
        # valid prefix has a last token 0: a key of its own, tag 0
        keys = torch.add(t, g, alpha=width << bits).to(key_dtype)
        perm, new, run, tag = _runs(keys, None, bits)
        yield perm, new, run, tag
        if n < max_order:
            prev = torch.empty_like(run).scatter_(0, perm, run).view(rows, total)
            prev_lens = cur_lens


def _tag_counts(run: Tensor, tag: Tensor, num_tags: int) -> Tensor:
    """(M + 1, num_tags + 1) counts of each tag (0 = invalid) in each run (ids 1..M)."""
    m = run.numel() + 1  # run ids start at 1
    width = num_tags + 1
    table = torch.zeros(m * width, dtype=torch.int32, device=run.device)
    ones = torch.ones((), dtype=torch.int32, device=run.device).expand(run.numel())
    index = torch.add(tag, run, alpha=width)  # int64, as `run`
    return table.scatter_add_(0, index, ones).view(m, width)


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


_CPU_TILE_ELEMENTS = 2**17  # tokens per tile of sentences on the CPU (cache-sized)


def _hard_stats(hyp: Tensor, ref: Tensor, pad_id: int, max_order: int,
                vocab_size: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Exact BLEU statistics: `(matches (B, N), totals (B, N), hyp_len (B,), ref_len (B,))`,
    all int64.

    On the CPU the sentences are processed in tiles of about `_CPU_TILE_ELEMENTS` tokens,
    which keeps the sort and the counts in cache (the statistics of a sentence do not
    depend on the others); on other devices the whole batch is one tile.
    """
    rows = hyp.shape[0]
    width = hyp.shape[1] + ref.shape[1] * ref.shape[2]
    tile = rows_per_block(rows, width, hyp.device, _CPU_TILE_ELEMENTS)
    if rows <= tile:
        return _tile_stats(hyp, ref, pad_id, max_order, vocab_size)
    parts = [_tile_stats(hyp[i:i + tile], ref[i:i + tile], pad_id, max_order, vocab_size)
             for i in range(0, rows, tile)]
    matches, totals, hyp_len, ref_len = (torch.cat(p) for p in zip(*parts, strict=True))
    return matches, totals, hyp_len, ref_len


def _tile_stats(hyp: Tensor, ref: Tensor, pad_id: int, max_order: int,
                vocab_size: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`_hard_stats` of one tile of sentences."""
    rows, t_hyp = hyp.shape
    n_refs, t_ref = ref.shape[1:]
    device = hyp.device
    hv = _prefix_valid(hyp, pad_id)
    rv = _prefix_valid(ref, pad_id)
    hyp_len = hv.sum(-1)
    ref_len = _closest_ref_len(hyp_len, rv.sum(-1))
    orders = torch.arange(max_order, device=device)
    totals = (hyp_len.unsqueeze(1) - orders).clamp_min(0)
    matches = torch.zeros(rows, max_order, dtype=torch.long, device=device)
    lens = [t_hyp] + [t_ref] * n_refs
    if rows == 0 or t_hyp == 0 or t_ref == 0 or n_refs == 0:
        return matches, totals, hyp_len, ref_len
    tokens = torch.cat([hyp.long(), ref.reshape(rows, -1).long()], 1)
    valid = torch.cat([hv, rv.reshape(rows, -1)], 1)
    groups = _ngram_groups(tokens, valid, lens, max_order, vocab_size)
    for n, (_, _, run, tag) in enumerate(groups):
        counts = _tag_counts(run, tag, n_refs + 1)
        best_ref = counts[:, 2] if n_refs == 1 else counts[:, 2:].amax(1)
        clipped = torch.minimum(counts[:, 1], best_ref)  # 0 for unused run ids
        cum = torch.zeros(clipped.numel() + 1, dtype=torch.long, device=device)
        torch.cumsum(clipped, 0, dtype=torch.long, out=cum[1:])
        first = run.view(rows, -1)[:, 0]
        end = torch.cat([first[1:], run[-1:] + 1])
        matches[:, n] = cum[end] - cum[first]
    return matches, totals, hyp_len, ref_len


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
    # clipped matches never exceed the hypothesis n-grams; soft statistics can pass them by
    # rounding, so that bound is applied, not assumed (a no-op on exact statistics, and
    # the gradient passes where it holds). A precision above 1 then comes only from
    # "floor" smoothing above 1, as in sacrebleu.
    matches = torch.where(matches > totals, totals, matches)
    first = matches[..., 0]
    if smooth == "add-k" and order > 1:
        add = torch.full((order,), smooth_value, dtype=matches.dtype, device=matches.device)
        add[0] = 0.0
        matches = matches + add
        totals = totals + add
    valid = (totals > 0).long().cumprod(-1).bool()
    safe_totals = torch.where(valid, totals, 1.0)
    no_match = torch.where(valid, (1.0 - matches).clamp_min(0.0), 0.0)
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
    positive = precision > 0
    dead = (used & ~positive).any(-1) | ~(first > 0)
    log_p = torch.log(torch.where(used & positive, precision, 1.0)).sum(-1) / count
    safe_hyp = torch.where(hyp_len > 0, hyp_len, 1.0)
    penalty = torch.where(hyp_len >= ref_len, 1.0,
                          torch.where(hyp_len > 0, torch.exp(1.0 - ref_len / safe_hyp), 0.0))
    some_match = first.clamp(0.0, 1.0)
    return torch.where(dead, 0.0, some_match * penalty * torch.exp(log_p))


def _score(matches: Tensor, totals: Tensor, hyp_len: Tensor, ref_len: Tensor, dtype: torch.dtype,
           *, corpus: bool, **options) -> Tensor:
    """Cast the statistics to `dtype`, sum them for `corpus`, apply the formula."""
    matches, totals = matches.to(dtype), totals.to(dtype)
    hyp_len, ref_len = hyp_len.to(dtype), ref_len.to(dtype)
    if corpus:
        matches, totals = matches.sum(0), totals.sum(0)
        hyp_len, ref_len = hyp_len.sum(0), ref_len.sum(0)
    return _bleu_formula(matches, totals, hyp_len, ref_len, **options)


# ---------------------------------------------------------------------------------------
# exact BLEU


def bleu_score(
    hyp: Tensor,
    ref: Tensor,
    *,
    pad_id: int = 0,
    max_order: int = 4,
    smooth: Smooth = "exp",
    smooth_value: float | None = None,
    effective_order: bool | None = None,
    corpus: bool = False,
    vocab_size: int | None = None,
    validate_args: bool = True,
) -> Tensor:
    r"""BLEU of token-id hypotheses against one or more references, exact and batched.

    Per sentence, with $c_h(g)$ and $c_{r_k}(g)$ the counts of the n-gram $g$ in the
    hypothesis and in reference $k$, the statistics are

    $$
    m_n = \sum_g \min\bigl(c_h(g), \max_k c_{r_k}(g)\bigr), \qquad
    t_n = \max(|h| - n + 1, 0),
    $$

    the hypothesis length $|h|$ and the reference length $r$ closest to $|h|$ (ties: the
    shorter). Then, with $N'$ the number of orders used,

    $$
    \mathrm{BLEU} = \mathrm{BP}\,\exp\Bigl(\frac{1}{N'} \sum_{n=1}^{N'} \log p_n\Bigr),
    \qquad p_n = \frac{m_n}{t_n}, \qquad
    \mathrm{BP} = \begin{cases} 1 & |h| \ge r \\ e^{1 - r/|h|} & 0 < |h| < r \\ 0 & |h| = 0
    \end{cases}
    $$

    and smoothing (Chen & Cherry, 2014) for orders without a match: `"none"` (the score
    is 0), `"floor"` ($p_n = \epsilon / t_n$, $\epsilon$ = `smooth_value`, default 0.1),
    `"add-k"` ($p_n = (m_n + k)/(t_n + k)$ for $n > 1$, $k$ = `smooth_value`, default 1),
    `"exp"` (the $i$-th order without a match gets $p_n = 1/(2^i t_n)$). With
    `effective_order`, only the orders up to the last with $t_n > 0$ are averaged
    ($N' \le N$); without it, a sentence shorter than $N$ scores 0. No unigram match gives 0.
    `corpus=True` sums $m_n, t_n, |h|, r$ over the sentences before the formula.

    These are exactly sacrebleu's definitions: the result equals
    `sacrebleu.metrics.BLEU(tokenize="none", smooth_method=smooth,
    smooth_value=smooth_value, max_ngram_order=max_order,
    effective_order=effective_order)` on the space-joined ids, divided by 100
    (`sentence_score` per sentence, or `corpus_score`), with an all-padding reference given
    to sacrebleu as a missing one (`None`).

    **Hard limit:** this is the exact metric (no gradient); it is the
    `temperature=0` value of [`soft_bleu_score`][softmetrics.functional.soft_bleu_score]
    at the argmax tokens.

    **Speed:** no Python loop over sentences or references and no host synchronisation
    with `validate_args=False`. Each n-gram is one integer key (the run id of its
    $(n-1)$-gram prefix and the dense id of its last token), the keys of the batch are
    sorted once per order and counted with one scatter-add: $O(B L \log(B L))$ time and
    $O(B L)$ memory for $B$ sentences of $L$ tokens (hypothesis plus references). The first
    order needs an upper bound on the ids for its 1-D sort: `vocab_size`, or the largest id
    read under `validate_args`; without either it sorts row by row (slower, any ids).

    Args:
        hyp: `(B, T)` integer token ids, right-padded with `pad_id`. Everything from the
            first `pad_id` of a row on is ignored.
        ref: `(B, T')` references, or `(B, R, T')` for `R` references per sentence, padded
            the same way. An all-padding reference is a missing one (it never is the
            closest length) unless all of a sentence's references are empty.
        pad_id: the padding id (may be negative).
        max_order: the largest n-gram order $N \ge 1$.
        smooth: `"exp"` (default), `"floor"`, `"add-k"` or `"none"`.
        smooth_value: $\epsilon$ for `"floor"`, $k$ for `"add-k"` (>= 0); None for the
            defaults 0.1 and 1.
        effective_order: average only over the orders with hypothesis n-grams; None means
            True for sentence BLEU and False for corpus BLEU (sacrebleu's defaults for
            `sentence_bleu` and `corpus_bleu`).
        corpus: return the corpus BLEU (statistics summed over the batch).
        vocab_size: an upper bound on the token ids (all ids < `vocab_size`): lets the
            first order use a 1-D sort without reading the data.
        validate_args: check the ids (>= 0 except `pad_id`, < `vocab_size` when given);
            reads the data.

    Returns:
        float64 BLEU in $[0, 1]$ (a `"floor"` `smooth_value` above 1 can lift it above 1,
        as in sacrebleu): shape `(B,)`, or a scalar for `corpus=True`. An empty hypothesis
        scores 0.

    Raises:
        ValueError: for tensors of the wrong rank, a batch-size mismatch, `max_order < 1`,
            an unknown `smooth`, a negative `smooth_value`, or (with `validate_args`)
            negative ids or ids >= `vocab_size`.
        TypeError: for non-integer token tensors or options of the wrong type.

    Example:
        >>> import torch
        >>> from softmetrics.functional import bleu_score
        >>> hyp = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 7, 0, 0, 0]])
        >>> ref = torch.tensor([[5, 6, 7, 8, 4, 9], [5, 6, 7, 8, 0, 0]])
        >>> bleu_score(hyp, ref)
        tensor([0.5789, 0.7165], dtype=torch.float64)
        >>> bleu_score(hyp, ref, corpus=True)
        tensor(0.5823, dtype=torch.float64)
        >>> refs = torch.stack([ref, torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 7, 0, 0, 0]])], 1)
        >>> bleu_score(hyp, refs)  # (B, R, T'): two references per sentence
        tensor([1., 1.], dtype=torch.float64)

    ??? cite "References"
        - K. Papineni, S. Roukos, T. Ward, W.-J. Zhu. *BLEU: a Method for Automatic
          Evaluation of Machine Translation*. ACL 2002.
        - B. Chen, C. Cherry. *A Systematic Comparison of Smoothing Techniques for
          Sentence-Level BLEU*. WMT 2014.
        - M. Post. *A Call for Clarity in Reporting BLEU Scores* (sacrebleu). WMT 2018,
          arXiv:1804.08771.
    """
    fn = "bleu_score"
    smooth_value = check_options(fn, max_order=max_order, smooth=smooth,
                                 smooth_value=smooth_value, effective_order=effective_order,
                                 corpus=corpus)
    check_int(fn, "pad_id", pad_id)
    _check_vocab_size(fn, vocab_size)
    check_index_tensor(fn, "hyp", hyp)
    check_ndim(fn, "hyp", hyp, 2, "of shape (B, T)")
    ref = _format_ref(fn, ref, hyp.shape[0])
    if validate_args:
        top = _id_bounds(fn, [("hyp", hyp), ("ref", ref)], pad_id, vocab_size)
        vocab_size = top if vocab_size is None else vocab_size
    if effective_order is None:
        effective_order = not corpus
    with torch.no_grad():
        stats = _hard_stats(hyp, ref, pad_id, max_order, vocab_size)
        return _score(*stats, torch.float64, corpus=corpus, smooth=smooth,
                      smooth_value=smooth_value, effective_order=effective_order)


# ---------------------------------------------------------------------------------------
# soft BLEU


class _GatheredLogSoftmax(torch.autograd.Function):
    """`log_softmax(z / tau)` at the gathered `index` only, without storing the softmax.

    Forward keeps `z` (already held by the caller) and the `(B, T, 1)` log-normalizer; the
    backward pass recomputes the softmax once, so no extra `(B, T, V)` tensor lives between
    the passes.
    """

    @staticmethod
    def forward(ctx, z: Tensor, index: Tensor, tau: float, dtype: torch.dtype) -> Tensor:
        lse = torch.logsumexp(z.to(dtype) / tau if tau != 1 else z.to(dtype), dim=-1,
                              keepdim=True)
        out = z.gather(-1, index).to(dtype) / tau - lse
        ctx.save_for_backward(z, index, lse)
        ctx.tau = tau
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        z, index, lse = ctx.saved_tensors
        tau = ctx.tau
        p = z.to(lse.dtype, copy=True).div_(tau).sub_(lse).exp_()
        out = p.mul_(grad.sum(-1, keepdim=True).neg_())
        out.scatter_add_(-1, index, grad)
        return out.div_(tau).to(z.dtype), None, None, None


def _soft_caps(ref: Tensor, rv: Tensor, max_order: int) -> list[Tensor]:
    """Per order n, `(B, R, T' - n + 1)`: the clipping count `max_k c_{r_k}(g)` of each
    distinct reference n-gram g at one of its positions (its representative), 0 elsewhere
    and past the valid prefixes. Computed from the reference ids alone (no gradient)."""
    rows, n_refs, t_ref = ref.shape
    caps = []
    lens = [t_ref] * n_refs
    tokens = ref.reshape(rows, -1).long()
    groups = _ngram_groups(tokens, rv.reshape(rows, -1), lens, max_order, None)
    for n, (perm, new, run, tag) in enumerate(groups, 1):
        counts = _tag_counts(run, tag, n_refs)
        best = counts[:, 1] if n_refs == 1 else counts[:, 1:].amax(1)
        at_first = best[run] * new
        cap = torch.empty_like(at_first).scatter_(0, perm, at_first)
        caps.append(cap.view(rows, n_refs, t_ref - n + 1))
    return caps


def _soft_matches(m1: Tensor, hv: Tensor, caps: list[Tensor], max_order: int) -> Tensor:
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
        # soft count in the hypothesis of the n-gram at each reference position
        counts = torch.einsum("btkj,bt->bkj", mn, hv[:, n - 1:].to(mn.dtype))
        matches[:, n - 1] = torch.minimum(counts, caps[n - 1].to(mn.dtype)).sum((1, 2))
    return matches


def soft_bleu_score(
    input: Tensor,
    ref: Tensor,
    *,
    temperature: float | Tensor = 1.0,
    pad_id: int = 0,
    max_order: int = 4,
    smooth: Smooth = "exp",
    smooth_value: float | None = None,
    effective_order: bool | None = None,
    corpus: bool = False,
    hyp_lengths: Tensor | None = None,
    validate_args: bool = True,
) -> Tensor:
    r"""Soft BLEU of per-position token distributions: differentiable in the logits.

    The hypothesis is a distribution $p_t = \mathrm{softmax}(z_t / \tau)$ per position
    $t < |h|$ instead of a token. The soft match of the hypothesis n-gram at $t$ with the
    reference n-gram at position $j$ of reference $k$ is the probability of producing it
    (Casas et al., 2018),

    $$
    M_n(t, k, j) = \prod_{i=0}^{n-1} p_{t+i}\bigl[r_{k, j+i}\bigr],
    $$

    so the soft count in the hypothesis of the reference n-gram $g$ at $(k, j)$ is
    $\hat c_h(g) = \sum_t M_n(t, k, j)$ and the clipped matches are

    $$
    m_n = \sum_{\text{distinct reference n-grams } g}
    \min\bigl(\hat c_h(g),\ \max_{k'} c_{r_{k'}}(g)\bigr)
    $$

    (hypothesis n-grams that are in no reference never match, so only reference n-grams
    are summed). $t_n$, $|h|$, $r$ and the formula are those of
    [`bleu_score`][softmetrics.functional.bleu_score]; the test "order without a match",
    discrete on counts, is written as $\max(1 - m_n, 0)$, which equals $[m_n = 0]$ on
    integers and is continuous in between (smoothed precision
    $(m_n + \max(1 - m_n, 0)\, s_n) / t_n$, score times $\min(m_1, 1)$), so the soft value
    tends to the exact one as $\tau \to 0$.

    **Hard limit:** at `temperature=0`, $p_t$ is the one-hot argmax and this equals
    `bleu_score(input.argmax(-1), ref, ...)` exactly (the same statistics code and formula
    run on 0/1 matches, in float64).

    **Memory:** $O(B\,T\,R\,T')$ for the match products: the vocabulary axis is only
    gathered at the reference ids. The log-normaliser is recomputed in the backward pass,
    so no `(B, T, V)` tensor besides the input and its gradient is kept (a tensor
    temperature uses plain autograd, which stores one).

    Args:
        input: `(B, T, V)` logits over the vocabulary at each hypothesis position
            (teacher-forced or decoded).
        ref: `(B, T')` or `(B, R, T')` reference ids, right-padded with `pad_id` (as in
            [`bleu_score`][softmetrics.functional.bleu_score]). Ids outside
            `[0, V)` never match.
        temperature: $\tau \ge 0$, a number or a one-element tensor; 0 gives the exact BLEU.
        pad_id: the padding id.
        max_order: the largest n-gram order $N \ge 1$.
        smooth: `"exp"` (default), `"floor"`, `"add-k"` or `"none"`.
        smooth_value: $\epsilon$ for `"floor"`, $k$ for `"add-k"`; None for the defaults.
        effective_order: None means True for sentences and False for `corpus=True`.
        corpus: return the corpus BLEU (soft statistics summed over the batch).
        hyp_lengths: `(B,)` hypothesis lengths $|h|$; default: the positions before the
            first position whose argmax is `pad_id` (or `T`). Lengths are not
            differentiable.
        validate_args: check that reference ids are >= 0 (except `pad_id`) and lengths in
            `[0, T]`; reads the data.

    Returns:
        Soft BLEU in $[0, 1]$: shape `(B,)`, or a scalar for `corpus=True`; float32 for
        half-precision logits, else the logits' dtype.

    Raises:
        ValueError: for tensors of the wrong rank or batch size, `max_order < 1`, an
            unknown `smooth`, a negative temperature, or (with `validate_args`) negative
            reference ids or lengths outside `[0, T]`.
        TypeError: for non-floating logits, non-integer references or lengths.

    Example:
        >>> import torch
        >>> from softmetrics.functional import soft_bleu_score
        >>> hyp = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 7, 0, 0, 0]])
        >>> ref = torch.tensor([[5, 6, 7, 8, 4, 9], [5, 6, 7, 8, 0, 0]])
        >>> logits = 4.0 * torch.nn.functional.one_hot(hyp, 10).float()
        >>> soft_bleu_score(logits.requires_grad_(), ref)
        tensor([0.4587, 0.6086], grad_fn=<WhereBackward0>)
        >>> soft_bleu_score(logits, ref, temperature=0)  # = bleu_score(hyp, ref)
        tensor([0.5789, 0.7165])

    ??? cite "References"
        - N. Casas, J. A. R. Fonollosa, M. R. Costa-jussà. *A differentiable BLEU loss.
          Analysis and first results*. ICLR 2018 Workshop (openreview HkG7hzyvf).
        - V. Zhukov, M. Kretov. *Differentiable lower bound for expected BLEU score*.
          arXiv:1712.04708, 2017.
    """
    fn = "soft_bleu_score"
    smooth_value = check_options(fn, max_order=max_order, smooth=smooth,
                                 smooth_value=smooth_value, effective_order=effective_order,
                                 corpus=corpus)
    check_int(fn, "pad_id", pad_id)
    temperature = check_temperature(fn, temperature)
    check_floating(fn, "input", input)
    check_ndim(fn, "input", input, 3, "of shape (B, T, V) (logits over the vocabulary)")
    rows, t_hyp, vocab = input.shape
    ref = _format_ref(fn, ref, rows)
    if hyp_lengths is not None:
        check_index_tensor(fn, "hyp_lengths", hyp_lengths)
        if tuple(hyp_lengths.shape) != (rows,):
            fail(fn, "hyp_lengths", f"of shape ({rows},) (one length per hypothesis)",
                 f"shape {tuple(hyp_lengths.shape)}", raw=True)
    if validate_args:
        _id_bounds(fn, [("ref", ref)], pad_id, None)
        if hyp_lengths is not None and hyp_lengths.numel():
            low, high = torch.stack([hyp_lengths.amin(), hyp_lengths.amax()]).tolist()
            if low < 0 or high > t_hyp:
                bad = low if low < 0 else high
                fail(fn, "hyp_lengths", f"lengths in [0, {t_hyp}]", f"a length {bad}",
                     raw=True)
        if isinstance(temperature, Tensor) and not bool((temperature > 0).all()):
            fail(fn, "temperature", "> 0 when a tensor (only the number 0 is exact)",
                 temperature)
    if effective_order is None:
        effective_order = not corpus
    hard = is_hard(temperature)
    dtype = compute_dtype(input.dtype)
    work = torch.float64 if hard else dtype
    n_refs, t_ref = ref.shape[1:]
    device = input.device
    with torch.no_grad():
        tokens = input.argmax(-1)
        if hyp_lengths is None:
            hyp_len = _prefix_valid(tokens, pad_id).sum(-1)
        else:
            hyp_len = hyp_lengths.long()
        hv = torch.arange(t_hyp, device=device) < hyp_len.unsqueeze(1)
        rv = _prefix_valid(ref, pad_id)
        ref_len = _closest_ref_len(hyp_len, rv.sum(-1))
        orders = torch.arange(max_order, device=device)
        totals = (hyp_len.unsqueeze(1) - orders).clamp_min(0)
        empty = rows == 0 or t_hyp == 0 or t_ref == 0 or n_refs == 0
        caps = [] if empty else _soft_caps(ref, rv, max_order)
        inside = (ref >= 0) & (ref < vocab)
        flat_ref = torch.where(inside, ref, 0).reshape(rows, 1, n_refs * t_ref)
    if empty:
        matches = torch.zeros(rows, max_order, dtype=work, device=device)
    else:
        if hard:
            m1 = (tokens.unsqueeze(2) == flat_ref).to(work)
        else:
            index = flat_ref.expand(rows, t_hyp, n_refs * t_ref)
            if isinstance(temperature, Tensor):
                tau = temperature.to(dtype).reshape(())  # a number, on any device
                log_p = torch.log_softmax(input.to(dtype) / tau, dim=-1)
                log_p = log_p.gather(-1, index)
            else:
                log_p = _GatheredLogSoftmax.apply(input, index, temperature, dtype)
            m1 = log_p.exp()
        m1 = m1.view(rows, t_hyp, n_refs, t_ref) * inside.unsqueeze(1).to(work)
        with full_precision(device):  # soft counts summed in `work`, also under autocast
            matches = _soft_matches(m1, hv, caps, max_order)
    out = _score(matches, totals, hyp_len, ref_len, work, corpus=corpus, smooth=smooth,
                 smooth_value=smooth_value, effective_order=effective_order)
    return out.to(dtype)


# ---------------------------------------------------------------------------------------
# expected BLEU (minimum risk training)


def expected_bleu(
    samples: Tensor,
    log_probs: Tensor,
    ref: Tensor,
    *,
    alpha: float = 1.0,
    pad_id: int = 0,
    max_order: int = 4,
    smooth: Smooth = "exp",
    smooth_value: float | None = None,
    effective_order: bool | None = None,
    vocab_size: int | None = None,
    reduction: Reduction = "mean",
    validate_args: bool = True,
) -> Tensor:
    r"""Expected sentence BLEU of K candidates per source under their renormalised model
    probabilities: the minimum-risk-training objective.

    For source $b$ with candidates $y_1, \dots, y_K$ (sampled or from beam search) and
    their sequence log-probabilities $\log p(y_k \mid x_b)$,

    $$
    \mathbb{E}[\mathrm{BLEU}]_b = \sum_{k=1}^{K} q_k\, \mathrm{BLEU}(y_k, r_b), \qquad
    q = \mathrm{softmax}_k\bigl(\alpha \log p(y_k \mid x_b)\bigr),
    $$

    and the risk minimised by minimum risk training is $1 - \mathbb{E}[\mathrm{BLEU}]_b$
    (Shen et al., 2016; Edunov et al., 2018). The BLEU values come from
    [`bleu_score`][softmetrics.functional.bleu_score] (sentence BLEU, all $B K$ candidates
    in one call, no gradient); the gradient flows into `log_probs`:
    $\partial / \partial \log p_k = \alpha\, q_k (\mathrm{BLEU}_k - \mathbb{E}[\mathrm{BLEU}])$.

    Sequence-level losses work best mixed with token-level cross-entropy: Edunov et al.
    (2018) report on IWSLT'14 De-En 31.78 BLEU for token NLL, 32.84 for sequence risk
    after NLL pre-training, and 32.93 for a weighted combination of both, e.g.

    ```python
    risk = 1 - expected_bleu(samples, seq_log_probs, ref)
    loss = 0.7 * risk + 0.3 * F.cross_entropy(logits.transpose(1, 2), ref, ignore_index=pad)
    ```

    **Hard limit:** this is an expectation of exact BLEU values; as $\alpha \to \infty$ it
    tends to the BLEU of the most probable candidate (ties shared).

    Args:
        samples: `(B, K, T)` candidate ids, right-padded with `pad_id`.
        log_probs: `(B, K)` sequence log-probabilities of the candidates (with gradient).
        ref: `(B, T')` or `(B, R, T')` references of each source.
        alpha: the sharpness $\alpha \ge 0$ of the candidate distribution ($\alpha = 0$:
            the mean BLEU of the candidates).
        pad_id: the padding id.
        max_order: the largest n-gram order $N \ge 1$.
        smooth: `"exp"` (default), `"floor"`, `"add-k"` or `"none"`, as in
            [`bleu_score`][softmetrics.functional.bleu_score].
        smooth_value: $\epsilon$ for `"floor"`, $k$ for `"add-k"`; None for the defaults.
        effective_order: average only over the orders with candidate n-grams; None means
            True (sentence BLEU).
        vocab_size: an upper bound on the token ids (see
            [`bleu_score`][softmetrics.functional.bleu_score]).
        reduction: `"mean"` (default), `"sum"` or `"none"` (per source, shape `(B,)`).
        validate_args: check the ids (reads the data).

    Returns:
        Expected BLEU in $[0, 1]$: a scalar, or `(B,)` for `reduction="none"`; float32 for
        half-precision `log_probs`, else their dtype.

    Raises:
        ValueError: for tensors of the wrong rank, mismatched `B` or `K`, a negative
            `alpha`, an unknown option, or (with `validate_args`) invalid ids.
        TypeError: for non-integer samples or references, or non-floating `log_probs`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import expected_bleu
        >>> samples = torch.tensor([[[5, 6, 7, 8, 0], [5, 6, 9, 0, 0], [4, 4, 4, 4, 4]]])
        >>> log_probs = torch.tensor([[-1.0, -1.5, -4.0]], requires_grad=True)
        >>> ref = torch.tensor([[5, 6, 7, 8, 0]])
        >>> value = expected_bleu(samples, log_probs, ref)
        >>> value
        tensor(0.7481, grad_fn=<MeanBackward0>)
        >>> value.backward()
        >>> log_probs.grad  # more mass on the better candidate
        tensor([[ 0.1521, -0.1296, -0.0225]])

    ??? cite "References"
        - S. Shen, Y. Cheng, Z. He, W. He, H. Wu, M. Sun, Y. Liu. *Minimum Risk Training
          for Neural Machine Translation*. ACL 2016, arXiv:1512.02433.
        - S. Edunov, M. Ott, M. Auli, D. Grangier, M. Ranzato. *Classical Structured
          Prediction Losses for Sequence to Sequence Learning*. NAACL 2018,
          arXiv:1711.04956.
    """
    fn = "expected_bleu"
    smooth_value = check_options(fn, max_order=max_order, smooth=smooth,
                                 smooth_value=smooth_value, effective_order=effective_order)
    check_int(fn, "pad_id", pad_id)
    _check_vocab_size(fn, vocab_size)
    alpha = check_number(fn, "alpha", alpha, low=0.0)
    check_option(fn, "reduction", reduction, _REDUCTIONS)
    check_index_tensor(fn, "samples", samples)
    check_ndim(fn, "samples", samples, 3, "of shape (B, K, T)")
    rows, k, t_hyp = samples.shape
    check_floating(fn, "log_probs", log_probs)
    if tuple(log_probs.shape) != (rows, k):
        fail(fn, "log_probs", f"of shape ({rows}, {k}) (one log-probability per sample)",
             f"shape {tuple(log_probs.shape)}", raw=True)
    ref = _format_ref(fn, ref, rows)
    if validate_args:
        top = _id_bounds(fn, [("samples", samples), ("ref", ref)], pad_id, vocab_size)
        vocab_size = top if vocab_size is None else vocab_size
    if effective_order is None:
        effective_order = True
    dtype = compute_dtype(log_probs.dtype)
    with torch.no_grad():
        refs = ref.unsqueeze(1).expand(rows, k, *ref.shape[1:]).reshape(rows * k,
                                                                         *ref.shape[1:])
        stats = _hard_stats(samples.reshape(rows * k, t_hyp), refs, pad_id, max_order,
                            vocab_size)
        bleu = _score(*stats, torch.float64, corpus=False, smooth=smooth,
                      smooth_value=smooth_value, effective_order=effective_order)
    q = torch.softmax(alpha * log_probs.to(dtype), dim=1)
    return reduce_per_sample((q * bleu.view(rows, k).to(dtype)).sum(1), reduction)
