"""Exact n-gram statistics of token ids for the BLEU family: every n-gram packed into one
integer key (the run id of its (n-1)-gram prefix and the dense id of its last token), one
sort per order over the whole batch, counts by one scatter-add."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["ngram_groups", "segment_tags", "sorted_runs", "tag_counts"]

_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1

def sorted_runs(keys: Tensor, tag: Tensor | None, bits: int
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
    if tag is not None:
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


def segment_tags(lens: list[int], device: torch.device) -> Tensor:
    """`[1] * lens[0] + [2] * lens[1] + ...` as an int64 tensor, filled on the device (a
    tensor built from a Python list would be copied from the host, a synchronisation)."""
    return torch.cat([torch.full((m,), i + 1, dtype=torch.long, device=device)
                      for i, m in enumerate(lens)])


def ngram_groups(tokens: Tensor, valid: Tensor, lens: list[int], max_order: int,
                  vocab_size: int | None) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Group equal n-grams of each row, for n = 1, ..., max_order (a generator).

    `tokens` and `valid` (B, L) hold the concatenated segments of each row (hypothesis,
    references) of lengths `lens`; `valid` is true on a prefix of each segment. For each
    order the n-grams of a segment are those starting at its first `len - n + 1`
    positions, concatenated over the segments (L_n per row). Yields `(perm, new, run, tag)`
    per order: `perm`, `new`, `run` as in `sorted_runs`, and `tag` the segment (1, 2, ...)
    of each sorted n-gram, 0 for an n-gram past its segment's valid prefix. Stops early when no
    segment is long enough.

    Order 1 sorts the tokens (by a 1-D sort of `row * (vocab_size + 1) + id + 1` when
    `vocab_size` is given, else row by row). Order n > 1 sorts the keys
    `run id of the (n-1)-gram prefix * (L + 1) + dense id of the last token`, where the
    dense token ids number the distinct tokens of the row 1, 2, ...: keys below
    `(B L + 1)(L + 1)`, exact and collision-free for any token ids.
    """
    rows, length = tokens.shape
    device = tokens.device
    bits = 0  # tags 0..len(lens): len(lens).bit_length(), which torch 2.4 cannot compile
    while 1 << bits <= len(lens):
        bits += 1
    seg = segment_tags(lens, device)
    tag = torch.where(valid, seg, 0)
    base = None if vocab_size is None else vocab_size + 1
    if base is not None and (rows * base) << bits <= _INT64_MAX:
        dtype = torch.int32 if (rows * base) << bits <= _INT32_MAX else torch.int64
        row_ids = torch.arange(rows, device=device, dtype=torch.long).unsqueeze(1) * base
        # (row * base + id + 1) << bits | tag, with arithmetic (vectorised for int64)
        keys = torch.where(valid, tokens + 1, 0).add_(row_ids).mul_(1 << bits).add_(tag)
        perm, new, run, tag = sorted_runs(keys.to(dtype), None, bits)
    else:
        keys = torch.where(valid, tokens, torch.iinfo(torch.int64).min)
        perm, new, run, tag = sorted_runs(keys, tag, bits)
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
        perm, new, run, tag = sorted_runs(keys, None, bits)
        yield perm, new, run, tag
        if n < max_order:
            prev = torch.empty_like(run).scatter_(0, perm, run).view(rows, total)
            prev_lens = cur_lens


def tag_counts(run: Tensor, tag: Tensor, num_tags: int) -> Tensor:
    """(M + 1, num_tags + 1) counts of each tag (0 = invalid) in each run (ids 1..M)."""
    m = run.numel() + 1  # run ids start at 1
    width = num_tags + 1
    table = torch.zeros(m * width, dtype=torch.int32, device=run.device)
    ones = torch.ones((), dtype=torch.int32, device=run.device).expand(run.numel())
    index = torch.add(tag, run, alpha=width)  # int64, as `run`
    return table.scatter_add_(0, index, ones).view(m, width)
