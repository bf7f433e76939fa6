"""The n-gram grouping under exact BLEU (`_bleu_ngrams.ngram_groups`), against grouping by
explicit tuples.

BLEU's statistics are only as exact as this grouping: two different n-grams of a row that
share a key are counted as one, and a hypothesis n-gram then matches a reference n-gram it
does not equal. Small vocabularies (the BLEU tests' default) repeat n-grams but keep the
keys small; the keys are largest when every token of a row is distinct, and the packed
layouts change at the int32 and int64 limits, so the strategies here draw those cases.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from softmetrics.functional._bleu_ngrams import ngram_groups, tag_counts

_INT64_MIN = torch.iinfo(torch.int64).min


@st.composite
def segmented_rows(draw):
    """(tokens (B, L), valid (B, L), lens, vocab_size) for 2-4 segments per row, each valid
    on a prefix; positions past the prefix hold arbitrary ids, which must be ignored."""
    rows = draw(st.integers(1, 4))
    lens = draw(st.lists(st.integers(0, 6), min_size=2, max_size=4).filter(lambda x: sum(x)))
    length = sum(lens)
    mode = draw(st.sampled_from(["repeating", "distinct", "huge"]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    if mode == "repeating":
        tokens = torch.randint(0, 3, (rows, length), generator=g)
    elif mode == "distinct":  # every id of a row distinct: the largest dense ids
        tokens = torch.stack([torch.randperm(3 * length, generator=g)[:length]
                              for _ in range(rows)])
    else:  # ids anywhere in int64, with repeats (only without a vocabulary bound)
        pool = torch.tensor([_INT64_MIN + 1, -(2**40), -1, 0, 1, 2**40, 2**63 - 1])
        tokens = pool[torch.randint(0, len(pool), (rows, length), generator=g)]
    valid = torch.zeros(rows, length, dtype=torch.bool)
    start = 0
    for m in lens:
        for b in range(rows):
            valid[b, start:start + draw(st.integers(0, m))] = True
        start += m
    if mode == "huge":
        vocab_size = None
    else:
        # None: row-wise sort; small: int32 keys; 2**40: int64 keys; 2**62: too large to
        # pack, row-wise sort again
        vocab_size = draw(st.sampled_from([None, int(tokens.max()) + 1, 2**40, 2**62]))
    return tokens, valid, lens, vocab_size


def _expected(tokens, valid, lens, n):
    """Per row, the order-n layout as (segment tag, n-gram tuple or None if not valid)."""
    out = []
    for b in range(tokens.shape[0]):
        row, start = [], 0
        for s, m in enumerate(lens):
            prefix = int(valid[b, start:start + m].sum())
            for i in range(max(m - n + 1, 0)):
                if i + n <= prefix:
                    row.append((s + 1, tuple(tokens[b, start + i:start + i + n].tolist())))
                else:
                    row.append((0, None))
            start += m
        out.append(row)
    return out


@given(segmented_rows(), st.integers(1, 5))
def test_groups_are_the_equal_ngrams_of_a_row(device, case, max_order):
    tokens, valid, lens, vocab_size = case
    rows = tokens.shape[0]
    groups = list(ngram_groups(tokens.to(device), valid.to(device), lens, max_order,
                               vocab_size))
    longest = max(lens)
    assert len(groups) == max(1, min(max_order, longest))
    for n, (perm, new, run, tag) in enumerate(groups, start=1):
        expected = _expected(tokens, valid, lens, n)
        width = len(expected[0])
        perm, new, run, tag = perm.cpu(), new.cpu(), run.cpu(), tag.cpu()
        assert sorted(perm.tolist()) == list(range(rows * width))
        assert new[0] == 1 and torch.equal(run, new.cumsum(0))
        # the rows stay in order, each starting a run of its own
        assert torch.equal(perm // width, torch.arange(rows).repeat_interleave(width))
        assert bool(new.view(rows, width)[:, 0].all())
        flat = [item for row in expected for item in row]
        assert tag.tolist() == [flat[p][0] for p in perm.tolist()]
        for b in range(rows):
            seen: dict[tuple[int, ...], int] = {}
            runs: dict[int, tuple[int, ...]] = {}
            for j in range(b * width, (b + 1) * width):
                gram = flat[int(perm[j])][1]
                if gram is None:
                    continue
                # equal n-grams share one run, and a run holds one n-gram
                assert seen.setdefault(gram, int(run[j])) == int(run[j]), (n, gram)
                assert runs.setdefault(int(run[j]), gram) == gram, (n, gram)


def test_tag_counts_counts_each_tag_of_each_run(device):
    run = torch.tensor([1, 1, 2, 2, 2, 4], device=device)
    tag = torch.tensor([1, 2, 0, 2, 2, 1], device=device)
    counts = tag_counts(run, tag, 2).cpu()
    assert counts.dtype == torch.int32 and counts.shape == (7, 3)
    expected = torch.zeros(7, 3, dtype=torch.int32)
    expected[1, 1] = expected[1, 2] = expected[2, 0] = expected[4, 1] = 1
    expected[2, 2] = 2
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("vocab_size", [None, 10])
def test_distinct_tokens_do_not_collide_at_the_largest_keys(device, vocab_size):
    # every id of the row distinct, so the dense id of 9 is the row's length (6); the
    # bigram keys (2, 9) and (3, 1) are one width apart: they meet if the width falls short
    tokens = torch.tensor([[2, 9, 5, 3, 1, 7]], device=device)
    valid = torch.ones_like(tokens, dtype=torch.bool)
    _, _, run, tag = list(ngram_groups(tokens, valid, [3, 3], 2, vocab_size))[1]
    counts = tag_counts(run, tag, 2).cpu()
    assert int(torch.minimum(counts[:, 1], counts[:, 2]).sum()) == 0


def test_keys_past_the_int32_limit_keep_the_rows_in_order(device):
    # 3249 rows of 203 + 203 distinct ids: 1319094 unigram runs, and the bigram keys
    # (prefix run * 407 + dense id) << 2 | segment reach past 2^31 - 1 by a few hundred
    # widths, so they must be int64; a bound a few widths short would pick int32, and the
    # largest keys would wrap around to negative and sort before the first row
    rows, half = 3249, 203
    g = torch.Generator().manual_seed(0)
    tokens = torch.rand(rows, 1000, generator=g).argsort(1)[:, :2 * half] + 1
    last = tokens[-1]
    top = int(last.argmax())
    last[[0, top]] = last[[top, 0]]  # the last run of all starts a bigram
    valid = torch.ones_like(tokens, dtype=torch.bool)
    (_, _, run1, _), (perm, _, run, tag) = ngram_groups(
        tokens.to(device), valid.to(device), [half, half], 2, None)
    assert int(run1[-1]) == rows * 2 * half
    width = 2 * (half - 1)
    assert torch.equal(perm.cpu() // width, torch.arange(rows).repeat_interleave(width))
    assert int(run[-1]) == rows * width  # distinct ids, distinct bigrams
    per_segment = rows * (half - 1)
    assert torch.equal(tag.cpu().bincount(), torch.tensor([0, per_segment, per_segment]))
