"""Tests of the text family: exact BLEU, soft BLEU, expected BLEU and their Modules."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import example, given, strategies as st

from softmetrics import ExpectedBLEULoss, SoftBLEULoss, _tuning
from softmetrics.functional import _text_core, bleu_score, expected_bleu, soft_bleu_score

from .text_references import (
    bleu_from_stats,
    sacrebleu_corpus,
    sacrebleu_sentence,
    soft_bleu_from_stats,
    soft_matches_loop,
    to_words,
)

ROOT = Path(__file__).resolve().parents[1]
SMOOTHS = ["none", "floor", "add-k", "exp"]


# --------------------------------------------------------------------------------------
# strategies: small vocabularies so that n-grams repeat, padding inside and at the end
# --------------------------------------------------------------------------------------


@st.composite
def id_batches(draw, max_batch=5, max_len=10, max_refs=3, max_vocab=5, pad_id=0):
    """(hyp (B, T), ref (B, R, T'), vocab) with ids in [0, vocab) and pad_id sprinkled in."""
    batch = draw(st.integers(1, max_batch))
    t_hyp = draw(st.integers(0, max_len))
    t_ref = draw(st.integers(0, max_len))
    n_refs = draw(st.integers(1, max_refs))
    vocab = draw(st.integers(2, max_vocab))
    seed = draw(st.integers(0, 2**31 - 1))
    pad_rate = draw(st.sampled_from([0.0, 0.1, 0.3]))
    g = torch.Generator().manual_seed(seed)
    words = [i for i in range(vocab + 1) if i != pad_id][:vocab]

    def sample(shape):
        ids = torch.tensor(words)[torch.randint(0, vocab, shape, generator=g)]
        return torch.where(torch.rand(shape, generator=g) < pad_rate, pad_id, ids)

    return sample((batch, t_hyp)), sample((batch, n_refs, t_ref)), vocab + 1


OPTIONS = st.fixed_dictionaries({
    "smooth": st.sampled_from(SMOOTHS),
    "max_order": st.integers(1, 5),
    "effective_order": st.booleans(),
    "smooth_value": st.sampled_from([None, 0.0, 0.5, 2.0]),
})


# "floor" smoothing above 1 lifts a precision above 1 (here p_2 = 2 / 1), as sacrebleu
# does; the exact statistics must not be bounded
FLOOR_ABOVE_ONE = dict(
    batch=(torch.tensor([[1, 2]]), torch.tensor([[[2]]]), 3),
    options=dict(smooth="floor", smooth_value=2.0, max_order=2, effective_order=False))

# the ids of the first row are all distinct, which gives its n-grams the largest keys; a
# key collision there would add a bigram match that exists in no reference, which shows
# only in a corpus, where the other row's unigram matches keep the score above 0
DISTINCT_ROW = dict(
    batch=(torch.tensor([[2, 9, 5], [4, 6, 8]]), torch.tensor([[[3, 1, 7]], [[4, 6, 5]]]), 10),
    options=dict(smooth="exp", smooth_value=None, max_order=2, effective_order=False))


def _sacre_kwargs(options):
    return dict(smooth=options["smooth"], smooth_value=options["smooth_value"],
                max_order=options["max_order"], effective_order=options["effective_order"])


# --------------------------------------------------------------------------------------
# exact BLEU against sacrebleu
# --------------------------------------------------------------------------------------


@given(id_batches(), OPTIONS)
@example(**FLOOR_ABOVE_ONE)
def test_sentence_bleu_equals_sacrebleu(device, batch, options):
    hyp, ref, vocab = batch
    expected = torch.tensor(sacrebleu_sentence(hyp, ref, **_sacre_kwargs(options)),
                            dtype=torch.float64)
    # all three key paths: data-derived bound, explicit bound, row-wise sort
    for extra in (dict(), dict(vocab_size=vocab, validate_args=False),
                  dict(validate_args=False)):
        got = bleu_score(hyp.to(device), ref.to(device), **options, **extra)
        assert got.dtype == torch.float64 and got.shape == (hyp.shape[0],)
        torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=1e-9)


@given(id_batches(max_batch=6), OPTIONS)
@example(**FLOOR_ABOVE_ONE)
@example(**DISTINCT_ROW)
def test_corpus_bleu_equals_sacrebleu(device, batch, options):
    hyp, ref, _ = batch
    expected = sacrebleu_corpus(hyp, ref, **_sacre_kwargs(options))
    got = bleu_score(hyp.to(device), ref.to(device), corpus=True, **options)
    assert got.shape == ()
    assert abs(got.item() - expected) <= 1e-9


@given(id_batches(max_refs=1))
def test_default_effective_order_per_level(batch):
    hyp, ref, _ = batch
    sentence = sacrebleu_sentence(hyp, ref, effective_order=True)
    corpus = sacrebleu_corpus(hyp, ref, effective_order=False)
    torch.testing.assert_close(bleu_score(hyp, ref[:, 0]),
                               torch.tensor(sentence, dtype=torch.float64), rtol=0, atol=1e-9)
    assert abs(bleu_score(hyp, ref[:, 0], corpus=True).item() - corpus) <= 1e-9


def test_longer_sequences_with_repeats_equal_sacrebleu():
    g = torch.Generator().manual_seed(3)
    hyp = torch.randint(1, 8, (64, 40), generator=g)
    ref = torch.randint(1, 8, (64, 2, 37), generator=g)
    hyp[::3, 30:] = 0
    ref[::4, 1, 10:] = 0
    expected = torch.tensor(sacrebleu_sentence(hyp, ref), dtype=torch.float64)
    torch.testing.assert_close(bleu_score(hyp, ref), expected, rtol=0, atol=1e-9)
    assert abs(bleu_score(hyp, ref, corpus=True).item() - sacrebleu_corpus(hyp, ref)) <= 1e-9


@pytest.mark.parametrize("tile", [1, 7, 64])
def test_cpu_tiles_give_the_same_statistics(monkeypatch, tile):
    g = torch.Generator().manual_seed(13)
    hyp = torch.randint(0, 6, (37, 9), generator=g)
    ref = torch.randint(0, 6, (37, 2, 8), generator=g)
    whole = bleu_score(hyp, ref), bleu_score(hyp, ref, corpus=True)
    monkeypatch.setattr(_tuning, "BLEU_CPU_TILE_ELEMENTS", tile * 25)  # tile rows of 25 ids
    assert torch.equal(bleu_score(hyp, ref), whole[0])
    assert torch.equal(bleu_score(hyp, ref, corpus=True), whole[1])
    assert torch.equal(bleu_score(hyp, ref, validate_args=False), whole[0])
    expected = torch.tensor(sacrebleu_sentence(hyp, ref), dtype=torch.float64)
    torch.testing.assert_close(whole[0], expected, rtol=0, atol=1e-9)


def test_hand_derived_case():
    # matches 3, 2, 1, 0 of totals 4, 3, 2, 1; "exp" gives p4 = 1 / (2 * 1)
    hyp = torch.tensor([[1, 2, 3, 4]])
    ref = torch.tensor([[1, 2, 3, 5, 6]])
    p = [3 / 4, 2 / 3, 1 / 2, 1 / 2]
    expected = math.exp(1 - 5 / 4) * math.prod(p) ** 0.25
    assert bleu_score(hyp, ref).item() == pytest.approx(expected, abs=1e-12)
    # "floor" 0.1: p4 = 0.1; "none": 0
    p[3] = 0.1
    floor = math.exp(1 - 5 / 4) * math.prod(p) ** 0.25
    assert bleu_score(hyp, ref, smooth="floor").item() == pytest.approx(floor, abs=1e-12)
    assert bleu_score(hyp, ref, smooth="none").item() == 0.0



def test_floor_above_one_lifts_a_precision_above_one():
    # unigram 2 of "1 2" matches: p1 = 1/2; no bigram match: "floor" 2 gives p2 = 2 / 1;
    # |h| = 2 >= r = 1, so BLEU = sqrt(1/2 * 2) = 1, as sacrebleu
    hyp = torch.tensor([[1, 2]])
    ref = torch.tensor([[2]])
    options = dict(smooth="floor", smooth_value=2.0, max_order=2, effective_order=False)
    assert sacrebleu_sentence(hyp, ref[:, None], **options)[0] == pytest.approx(1.0, abs=1e-12)
    assert bleu_score(hyp, ref, **options).item() == pytest.approx(1.0, abs=1e-12)
    assert bleu_score(hyp, ref, corpus=True, **options).item() == pytest.approx(1.0, abs=1e-12)
    logits = torch.nn.functional.one_hot(hyp, 3).double()
    hard = soft_bleu_score(logits, ref, temperature=0, **options)
    assert hard.item() == pytest.approx(1.0, abs=1e-12)

def test_clipping_of_repeated_ngrams_and_max_over_references():
    hyp = torch.tensor([[7, 7, 7, 7]])
    ref = torch.tensor([[[7, 7, 0, 0], [7, 7, 7, 0]]])
    # unigram 7: min(4, max(2, 3)) = 3; bigram 77: min(3, max(1, 2)) = 2; 777: min(2, 1) = 1
    # closest reference length to 4: 3 (the shorter of none at distance 0)
    expected = bleu_from_stats([3, 2, 1, 0.5], [4, 3, 2, 1], 4, 3, max_order=4)
    assert bleu_score(hyp, ref).item() == pytest.approx(expected, abs=1e-12)


def test_closest_reference_length_ties_to_the_shorter():
    hyp = torch.tensor([[1, 2, 3, 4, 0, 0]])
    short = torch.tensor([[[1, 2, 3, 0, 0, 0], [1, 2, 3, 4, 5, 0]]])
    # distance 1 both ways: the shorter (3) wins, so BP = 1 and BLEU = 1 * ...
    assert bleu_score(hyp, short, max_order=1).item() == pytest.approx(1.0)
    long_only = torch.tensor([[[1, 2, 3, 4, 5, 0], [0, 0, 0, 0, 0, 0]]])  # second missing
    assert bleu_score(hyp, long_only, max_order=1).item() == pytest.approx(math.exp(1 - 5 / 4))


def test_empty_and_short_sentences_give_zero_not_nan():
    hyp = torch.tensor([[0, 0, 0], [5, 0, 0], [5, 6, 0]])
    ref = torch.tensor([[5, 6, 7], [0, 0, 0], [5, 6, 7]])
    out = bleu_score(hyp, ref)
    assert torch.isfinite(out).all()
    assert out[0] == 0 and out[1] == 0
    # 2 tokens < max_order: effective order 2 for sentences, 0 without it
    assert out[2] > 0
    assert bleu_score(hyp[2:], ref[2:], effective_order=False).item() == 0.0
    # no columns at all
    empty = bleu_score(torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long))
    assert torch.equal(empty, torch.zeros(2, dtype=torch.float64))
    assert bleu_score(torch.zeros(0, 4, dtype=torch.long),
                      torch.zeros(0, 4, dtype=torch.long)).shape == (0,)


@given(id_batches(max_batch=4), st.data())
def test_invariances(batch, data):
    hyp, ref, vocab = batch
    base = bleu_score(hyp, ref)
    # batch permutation
    perm = torch.randperm(hyp.shape[0], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(bleu_score(hyp[perm], ref[perm]), base[perm], rtol=0, atol=0)
    # reference order
    rperm = torch.tensor(data.draw(st.permutations(range(ref.shape[1]))), dtype=torch.long)
    torch.testing.assert_close(bleu_score(hyp, ref[:, rperm]), base, rtol=0, atol=0)
    # extra padding columns and a relabelling of the ids (pad stays pad)
    padded = torch.nn.functional.pad(hyp, (0, 3))
    torch.testing.assert_close(bleu_score(padded, ref), base, rtol=0, atol=0)
    relabel = torch.cat([torch.zeros(1, dtype=torch.long), 1000 + 7 * torch.arange(1, vocab)])
    torch.testing.assert_close(bleu_score(relabel[hyp], relabel[ref]), base, rtol=0, atol=0)
    # int32 ids
    torch.testing.assert_close(bleu_score(hyp.int(), ref.int()), base, rtol=0, atol=0)


def test_identical_hypothesis_scores_one_and_pad_id_is_respected():
    g = torch.Generator().manual_seed(1)
    hyp = torch.randint(1, 50, (8, 12), generator=g)
    assert torch.equal(bleu_score(hyp, hyp), torch.ones(8, dtype=torch.float64))
    # with pad_id = -1, the id 0 is an ordinary token
    shifted = torch.cat([hyp - 1, torch.full((8, 2), -1)], 1)
    assert torch.equal(bleu_score(shifted, shifted, pad_id=-1), torch.ones(8, dtype=torch.float64))


def test_large_ids_without_a_bound_are_exact():
    # ids near 2^62: the row-wise path; the validated path falls back to it
    big = 2**62
    hyp = torch.tensor([[big + 1, big + 2, big + 3, 5]])
    ref = torch.tensor([[big + 1, big + 2, big + 3, 6]])
    small = bleu_score(torch.tensor([[1, 2, 3, 5]]), torch.tensor([[1, 2, 3, 6]]))
    torch.testing.assert_close(bleu_score(hyp, ref, validate_args=False), small)
    torch.testing.assert_close(bleu_score(hyp, ref), small)


def test_ngram_keys_never_collide_across_orders_and_rows():
    # the same tokens in different rows and orders; a long row next to short ones
    hyp = torch.tensor([[1, 2, 1, 2, 1, 2], [2, 1, 2, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    ref = torch.tensor([[2, 1, 2, 1, 2, 1], [1, 2, 1, 2, 0, 0], [1, 1, 1, 0, 0, 0]])
    expected = torch.tensor(sacrebleu_sentence(hyp, ref.unsqueeze(1)), dtype=torch.float64)
    for extra in (dict(), dict(validate_args=False), dict(vocab_size=3)):
        torch.testing.assert_close(bleu_score(hyp, ref, **extra), expected, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    hyp = torch.randint(0, 6, (256, 30), generator=g)
    ref = torch.randint(0, 6, (256, 2, 28), generator=g)
    cpu = bleu_score(hyp, ref)
    for extra in (dict(), dict(validate_args=False), dict(vocab_size=6, validate_args=False)):
        torch.testing.assert_close(bleu_score(hyp.cuda(), ref.cuda(), **extra).cpu(), cpu)
    logits = torch.randn(16, 9, 6, generator=g)
    soft = soft_bleu_score(logits, ref[:16])
    torch.testing.assert_close(soft_bleu_score(logits.cuda(), ref[:16].cuda()).cpu(), soft)


# --------------------------------------------------------------------------------------
# soft BLEU
# --------------------------------------------------------------------------------------


def _margin_logits(batch, t_hyp, vocab, seed, dtype=torch.float64, margin=2.0):
    """Random logits whose argmax leads the runner-up by at least `margin`."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, t_hyp, vocab, generator=g, dtype=dtype)
    return z + margin * torch.nn.functional.one_hot(z.argmax(-1), vocab).to(dtype)


@given(id_batches(), OPTIONS, st.booleans(), st.integers(0, 2**31 - 1))
def test_soft_at_zero_temperature_is_exact_bleu_of_argmax(device, batch, options, corpus,
                                                          seed):
    _, ref, vocab = batch
    ref = ref.to(device)
    z = _margin_logits(ref.shape[0], ref.shape[2] + 1, vocab, seed).to(device)
    hard = bleu_score(z.argmax(-1), ref, corpus=corpus, **options)
    soft0 = soft_bleu_score(z, ref, temperature=0, corpus=corpus, **options)
    assert soft0.dtype == torch.float64
    assert torch.equal(soft0, hard)
    # float32 logits: the same value, rounded
    soft32 = soft_bleu_score(z.float(), ref, temperature=0, corpus=corpus, **options)
    assert torch.equal(soft32, hard.float())
    # soft -> hard as the temperature goes to 0 (the argmax leads by >= 2: saturated)
    near = soft_bleu_score(z, ref, temperature=1e-3, corpus=corpus, **options)
    torch.testing.assert_close(near, hard, rtol=0, atol=1e-9)
    # range ([0, 1] unless a "floor" above 1 lifts precisions above 1, as in sacrebleu)
    soft = soft_bleu_score(z, ref, temperature=1.0, corpus=corpus, **options)
    assert torch.isfinite(soft).all() and (soft >= 0).all()
    if options["smooth"] != "floor" or (options["smooth_value"] or 0.0) <= 1:
        assert (soft <= 1).all() and (hard <= 1).all()


@given(id_batches(max_batch=3, max_len=7, max_refs=2, max_vocab=4), st.integers(0, 999),
       st.sampled_from([0.3, 1.0, 3.0]))
def test_soft_matches_equal_explicit_loops(batch, seed, tau):
    _, ref, vocab = batch
    z = torch.randn(ref.shape[0], 6, vocab, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed))
    lengths = torch.randint(0, 7, (ref.shape[0],), generator=torch.Generator().manual_seed(seed))
    probs = torch.softmax(z / tau, -1)
    rv = _text_core.prefix_valid(ref, 0)
    caps = _text_core.soft_caps(ref, rv, 4) if ref.shape[2] else []
    hv = torch.arange(6) < lengths.unsqueeze(1)
    m1 = probs.gather(-1, ref.reshape(ref.shape[0], 1, -1).expand(-1, 6, -1))
    m1 = m1.view(ref.shape[0], 6, *ref.shape[1:])
    got = _text_core.soft_matches(m1, hv, caps, 4) if ref.shape[2] else None
    for b in range(ref.shape[0]):
        expected = soft_matches_loop(probs[b], ref[b], int(lengths[b]), 0, 4)
        if got is None:
            assert expected == [0.0] * 4
        else:
            torch.testing.assert_close(got[b], torch.tensor(expected, dtype=torch.float64))
    # and the public function uses them: a perfect distribution on the reference gives 1
    full = ref[:, 0]
    if full.shape[1] and (full != 0).all():
        logits = 50.0 * torch.nn.functional.one_hot(full, vocab).double()
        torch.testing.assert_close(soft_bleu_score(logits, full),
                                   torch.ones(full.shape[0], dtype=torch.float64))


@given(id_batches(max_batch=3, max_len=6, max_refs=2, max_vocab=5), st.integers(0, 999),
       OPTIONS, st.sampled_from([1.0, 3.0]))
def test_soft_bleu_equals_the_formula_over_loop_statistics(batch, seed, options, tau):
    """Soft BLEU is sacrebleu's formula over the soft statistics, with its tests "no match"
    made continuous: checked against the formula written out order by order
    (`soft_bleu_from_stats`) on the statistics of explicit loops, at temperatures where
    soft unigram matches often fall below 1."""
    _, ref, vocab = batch
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(ref.shape[0], 4, vocab, dtype=torch.float64, generator=g)
    lengths = torch.randint(0, 5, (ref.shape[0],), generator=g)
    got = soft_bleu_score(z, ref, temperature=tau, hyp_lengths=lengths, **options)
    probs = torch.softmax(z / tau, -1)
    rv = _text_core.prefix_valid(ref, 0)
    for b in range(ref.shape[0]):
        h = int(lengths[b])
        matches = soft_matches_loop(probs[b], ref[b], h, 0, options["max_order"])
        totals = [max(h - n, 0) for n in range(options["max_order"])]
        ref_lens = [int(x) for x in rv[b].sum(-1).tolist() if x > 0] or [0]
        r = min(ref_lens, key=lambda x: (abs(x - h), x))
        expected = soft_bleu_from_stats(matches, totals, h, r, smooth=options["smooth"],
                                        smooth_value=options["smooth_value"],
                                        effective_order=options["effective_order"])
        assert got[b].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("smooth", SMOOTHS)
@pytest.mark.parametrize("corpus", [False, True])
def test_soft_gradcheck(smooth, corpus, device):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 4, dtype=torch.float64, generator=g).to(device).requires_grad_()
    ref = torch.randint(1, 4, (2, 2, 4), generator=g)
    ref[0, 1, 2:] = 0
    ref = ref.to(device)
    # The backward adds the gradients of repeated reference ids with `scatter_add_`, which
    # on CUDA uses atomic adds in no fixed order: two backward passes may then differ by a
    # few float64 units in the last place of gradients of size ~1 (~1e-16), far below
    # 1e-12 and below anything a wrong backward shows against gradcheck's atol of 1e-5.
    assert torch.autograd.gradcheck(
        lambda x: soft_bleu_score(x, ref, temperature=0.7, smooth=smooth, corpus=corpus), (z,),
        nondet_tol=1e-12)


def test_soft_gradcheck_at_unit_temperature_and_one_reference():
    g = torch.Generator().manual_seed(11)
    z = torch.randn(2, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    ref = torch.randint(1, 4, (2, 5), generator=g)
    assert torch.autograd.gradcheck(lambda x: soft_bleu_score(x, ref), (z,))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
@pytest.mark.parametrize("temperature", [0, 0.5, "tensor"])
def test_soft_references_of_every_integer_dtype_count_as_int64(dtype, temperature):
    """References in a narrow integer dtype are the same ids: soft BLEU equals its value on
    int64 references, also with a vocabulary beyond the dtype's range (a comparison with
    the number V in the references' dtype would wrap V) and at temperature > 0 (where the
    ids index the logits)."""
    g = torch.Generator().manual_seed(3)
    vocab = 300
    z = torch.randn(3, 6, vocab, dtype=torch.float64, generator=g)
    high = min(torch.iinfo(dtype).max, vocab - 1)
    ref = torch.randint(1, high + 1, (3, 2, 6), generator=g)
    ref[:, 0] = z.argmax(-1).clamp_max(high)  # matches at temperature 0
    ref[0, 1, 4:] = 0
    if temperature == "tensor":
        temperature = torch.tensor(0.5, dtype=torch.float64)
    expected = soft_bleu_score(z, ref, temperature=temperature, smooth="add-k")
    got = soft_bleu_score(z, ref.to(dtype), temperature=temperature, smooth="add-k")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert expected.min() > 0.01  # not an empty comparison


def test_soft_tensor_temperature_and_custom_backward_agree():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 7, 6, dtype=torch.float64, generator=g, requires_grad=True)
    ref = torch.randint(1, 6, (4, 8), generator=g)
    a = soft_bleu_score(z, ref, temperature=0.6)
    (ga,) = torch.autograd.grad(a.sum(), z)
    tau = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    b = soft_bleu_score(z, ref, temperature=tau)
    gb, gt = torch.autograd.grad(b.sum(), (z, tau))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga, gb)
    assert torch.isfinite(gt) and gt != 0
    assert torch.autograd.gradcheck(lambda t: soft_bleu_score(z.detach(), ref, temperature=t),
                                    (tau,))


@pytest.mark.parametrize("scale", [1e4, -1e4])
@pytest.mark.parametrize("tau", [1e-3, 1.0])
def test_soft_extreme_logits_have_finite_gradients(scale, tau, device):
    g = torch.Generator().manual_seed(4)
    z = (torch.randn(4, 8, 7, generator=g) * scale).to(device).requires_grad_()
    ref = torch.randint(0, 7, (4, 2, 6), generator=g).to(device)
    for smooth in SMOOTHS:
        value = soft_bleu_score(z, ref, temperature=tau, smooth=smooth)
        (grad,) = torch.autograd.grad(value.sum(), z)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()


def test_soft_half_precision_and_out_of_vocabulary_reference_ids():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(3, 5, 4, generator=g)
    ref = torch.tensor([[1, 2, 3, 9], [1, 1, 0, 0], [2, 3, 1, 2]])  # 9 >= V never matches
    half = z.half().requires_grad_()
    value = soft_bleu_score(half, ref)
    assert value.dtype == torch.float32
    value.sum().backward()
    assert half.grad.dtype == torch.float16 and torch.isfinite(half.grad).all()
    torch.testing.assert_close(value, soft_bleu_score(half.detach().float(), ref))
    hard = soft_bleu_score(z, ref, temperature=0)
    assert torch.equal(hard, bleu_score(z.argmax(-1), ref).float())


def test_soft_hyp_lengths():
    g = torch.Generator().manual_seed(6)
    z = _margin_logits(3, 6, 5, 0).float()
    z[..., 0] = -30.0  # no argmax is pad: the lengths alone decide
    ref = torch.randint(1, 5, (3, 6), generator=g)
    lengths = torch.tensor([6, 3, 0])
    tokens = z.argmax(-1).masked_fill(torch.arange(6) >= lengths.unsqueeze(1), 0)
    out = soft_bleu_score(z, ref, temperature=0, hyp_lengths=lengths)
    assert torch.equal(out, bleu_score(tokens, ref).float())
    assert out[2] == 0


def test_soft_memory_does_not_copy_the_vocabulary_axis_between_passes():
    # the graph keeps the logits and (B, T, 1) normalisers, not a (B, T, V) softmax
    z = torch.randn(2, 4, 50_000, requires_grad=True)
    ref = torch.randint(1, 50_000, (2, 5))
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        soft_bleu_score(z, ref)
    big = [n for n in saved if n >= z.numel()]
    assert all(n == z.numel() for n in big) and len(big) <= 1


# --------------------------------------------------------------------------------------
# expected BLEU
# --------------------------------------------------------------------------------------


@given(id_batches(max_batch=4, max_refs=2), st.integers(1, 4), st.sampled_from([0.0, 0.5, 2.0]),
       st.integers(0, 999))
def test_expected_bleu_equals_loop(device, batch, k, alpha, seed):
    _, ref, vocab = batch
    g = torch.Generator().manual_seed(seed)
    rows = ref.shape[0]
    samples = torch.randint(0, vocab, (rows, k, 7), generator=g)
    log_probs = torch.randn(rows, k, dtype=torch.float64, generator=g)
    got = expected_bleu(samples.to(device), log_probs.to(device), ref.to(device), alpha=alpha,
                        reduction="none").cpu()
    expected = []
    for b in range(rows):
        q = torch.softmax(alpha * log_probs[b], 0)
        scores = sacrebleu_sentence(samples[b], ref[b].expand(k, -1, -1))
        expected.append(sum(float(q[i]) * scores[i] for i in range(k)))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0,
                               atol=1e-9)
    assert expected_bleu(samples, log_probs, ref, alpha=alpha, reduction="sum").item() == \
        pytest.approx(got.sum().item())
    assert expected_bleu(samples, log_probs, ref, alpha=alpha).item() == \
        pytest.approx(got.mean().item())


def test_expected_bleu_gradient_and_limits():
    g = torch.Generator().manual_seed(7)
    samples = torch.randint(1, 5, (3, 4, 6), generator=g)
    ref = torch.randint(1, 5, (3, 6), generator=g)
    log_probs = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda lp: expected_bleu(samples, lp, ref, alpha=0.5),
                                    (log_probs,))
    scores = bleu_score(samples.reshape(12, 6), ref.repeat_interleave(4, 0)).view(3, 4)
    # alpha = 0: the mean; large alpha: the most probable candidate
    uniform = expected_bleu(samples, log_probs, ref, alpha=0.0, reduction="none")
    torch.testing.assert_close(uniform, scores.mean(1))
    sharp = expected_bleu(samples, log_probs * 1e3, ref, reduction="none")
    best = scores.gather(1, log_probs.argmax(1, keepdim=True)).squeeze(1)
    torch.testing.assert_close(sharp, best)
    # the gradient moves mass towards candidates above the expectation
    value = expected_bleu(samples, log_probs, ref, reduction="sum")
    (grad,) = torch.autograd.grad(value, log_probs)
    q = torch.softmax(log_probs, 1)
    expected_grad = q * (scores - (q * scores).sum(1, keepdim=True))
    torch.testing.assert_close(grad, expected_grad)


@given(id_batches(max_batch=4, max_refs=2), st.integers(1, 4),
       st.sampled_from([0.0, 0.5, 2.0, 30.0]), st.integers(0, 999), st.booleans())
def test_length_normalized_expected_bleu_equals_loop(device, batch, k, alpha, seed, left):
    _, ref, vocab = batch
    g = torch.Generator().manual_seed(seed)
    rows = ref.shape[0]
    # pads (id 0) inside the candidates: lengths 0 to 7, empty candidates included
    samples = torch.randint(0, vocab, (rows, k, 7), generator=g)
    log_probs = -10.0 * torch.rand(rows, k, dtype=torch.float64, generator=g)
    expected = []
    for b in range(rows):
        lengths = [len(to_words(samples[b, i], 0).split()) for i in range(k)]
        per_token = [float(log_probs[b, i]) / max(lengths[i], 1) for i in range(k)]
        q = torch.softmax(alpha * torch.tensor(per_token, dtype=torch.float64), 0)
        scores = sacrebleu_sentence(samples[b], ref[b].expand(k, -1, -1))
        expected.append(sum(float(q[i]) * scores[i] for i in range(k)))
    expected = torch.tensor(expected, dtype=torch.float64)
    if left:  # the same sentences, left-padded: the lengths are those of the sentences
        samples = _left_pad(_cut_at_first_pad(samples), seed)
        ref = _left_pad(_cut_at_first_pad(ref), seed + 1)
    got = expected_bleu(samples.to(device), log_probs.to(device), ref.to(device),
                        alpha=alpha, length_normalize=True, reduction="none",
                        padding_side="left" if left else "right").cpu()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-9)


def test_length_normalized_equals_a_rescaled_alpha_when_lengths_are_equal():
    g = torch.Generator().manual_seed(11)
    samples = torch.randint(1, 5, (3, 4, 6), generator=g)  # no pad: every length is 6
    ref = torch.randint(1, 5, (3, 6), generator=g)
    log_probs = -20.0 * torch.rand(3, 4, dtype=torch.float64, generator=g)
    for alpha in (0.0, 0.3, 1.0, 12.0):
        got = expected_bleu(samples, log_probs, ref, alpha=alpha, length_normalize=True,
                            reduction="none")
        want = expected_bleu(samples, log_probs, ref, alpha=alpha / 6, reduction="none")
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # candidates of different lengths: the two differ
    cut = samples.clone()
    cut[:, 0, 2:] = 0
    assert not torch.allclose(
        expected_bleu(cut, log_probs, ref, alpha=0.5, length_normalize=True, reduction="none"),
        expected_bleu(cut, log_probs, ref, alpha=0.5 / 6, reduction="none"))


def test_length_normalized_gradient():
    g = torch.Generator().manual_seed(13)
    samples = torch.randint(0, 5, (3, 4, 6), generator=g)  # pads inside: lengths vary
    samples[0, 0] = 0  # an empty candidate (length counted as 1)
    ref = torch.randint(1, 5, (3, 6), generator=g)
    log_probs = -5.0 * torch.rand(3, 4, dtype=torch.float64, generator=g)
    log_probs.requires_grad_()
    for alpha in (0.5, 4.0):
        assert torch.autograd.gradcheck(
            lambda lp, a=alpha: expected_bleu(samples, lp, ref, alpha=a,
                                              length_normalize=True), (log_probs,))
    # the closed form: alpha / |y_k| * q_k * (BLEU_k - E[BLEU])
    alpha = 2.0
    value = expected_bleu(samples, log_probs, ref, alpha=alpha, length_normalize=True,
                          reduction="sum")
    (grad,) = torch.autograd.grad(value, log_probs)
    scores = bleu_score(samples.reshape(12, 6), ref.repeat_interleave(4, 0)).view(3, 4)
    lengths = _text_core.prefix_valid(samples, 0).sum(-1).clamp_min(1).double()
    q = torch.softmax(alpha * log_probs.detach() / lengths, 1)
    want = alpha / lengths * q * (scores - (q * scores).sum(1, keepdim=True))
    torch.testing.assert_close(grad, want)
    assert lengths[0, 0] == 1 and (lengths > 1).any()


def test_length_normalized_extreme_inputs_are_finite():
    g = torch.Generator().manual_seed(14)
    samples = torch.randint(0, 5, (2, 3, 5), generator=g)
    samples[1] = 0  # only empty candidates
    ref = torch.randint(1, 5, (2, 5), generator=g)
    log_probs = torch.tensor([[-1e4, 0.0, -3e4], [-1e4, -1e4, -1e4]], requires_grad=True)
    for alpha in (0.0, 1e-3, 1.0, 1e3):
        value = expected_bleu(samples, log_probs, ref, alpha=alpha, length_normalize=True)
        (grad,) = torch.autograd.grad(value, log_probs)
        assert torch.isfinite(value) and torch.isfinite(grad).all()
    half = expected_bleu(samples, log_probs.detach().half(), ref, length_normalize=True)
    assert half.dtype == torch.float32 and torch.isfinite(half)


def test_length_normalized_module_equals_function():
    g = torch.Generator().manual_seed(15)
    samples = torch.randint(0, 5, (3, 4, 6), generator=g)
    ref = torch.randint(1, 5, (3, 6), generator=g)
    log_probs = -10.0 * torch.rand(3, 4, generator=g)
    loss_fn = ExpectedBLEULoss(alpha=3.0, length_normalize=True, reduction="none")
    value = expected_bleu(samples, log_probs, ref, alpha=3.0, length_normalize=True,
                          reduction="none")
    torch.testing.assert_close(loss_fn(samples, log_probs, ref), 1 - value)
    torch.testing.assert_close(loss_fn.metric(samples, log_probs, ref), value)
    assert "length_normalize=True" in repr(loss_fn)
    assert not torch.allclose(ExpectedBLEULoss(alpha=3.0, reduction="none")(
        samples, log_probs, ref), 1 - value)


def test_expected_bleu_extreme_log_probs_are_finite():
    samples = torch.randint(1, 5, (2, 3, 5), generator=torch.Generator().manual_seed(8))
    ref = torch.randint(1, 5, (2, 5), generator=torch.Generator().manual_seed(9))
    log_probs = torch.tensor([[-1e4, 0.0, 1e4], [-1e4, -1e4, -1e4]], requires_grad=True)
    value = expected_bleu(samples, log_probs, ref)
    (grad,) = torch.autograd.grad(value, log_probs)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize(("shape", "ref_shape"), [((0, 5, 7), (0, 5)), ((2, 0, 7), (2, 4)),
                                                   ((2, 5, 7), (2, 0))])
def test_the_soft_bleu_loss_of_an_empty_batch_backpropagates(shape, ref_shape):
    """No sentences, no hypothesis positions or no reference positions: the loss is
    defined, with a zero gradient, so a training loop does not stop at `backward`."""
    z = torch.randn(shape, requires_grad=True)
    loss = SoftBLEULoss()(z, torch.ones(ref_shape, dtype=torch.long))
    loss.backward()
    assert torch.isfinite(loss) and z.grad is not None
    assert not z.grad.any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_expected_bleu_with_a_large_alpha_weighs_the_best_candidate(dtype):
    """alpha * log_probs may overflow where neither does (-2e9 * 1e30 in float32): the
    candidates' weights are the softmax of the differences to the best one, which is
    shift-invariant, so the large-alpha limit, the best candidate's BLEU, is reached."""
    ref = torch.tensor([[1, 2, 3, 4]])
    samples = torch.tensor([[[1, 2, 3, 4], [1, 2, 0, 0]]])
    log_probs = torch.tensor([[-2e9, -3e9]], dtype=dtype, requires_grad=True)
    value = expected_bleu(samples, log_probs, ref, alpha=1e30)
    (grad,) = torch.autograd.grad(value, log_probs)
    assert float(value.detach()) == 1.0 and not grad.any()


def test_mean_over_an_empty_batch_is_zero_not_nan():
    # found by the fuzzer: `reduction="mean"` over B = 0 sentences was 0/0
    samples = torch.zeros(0, 2, 3, dtype=torch.long)
    log_probs = torch.zeros(0, 2, requires_grad=True)
    ref = torch.zeros(0, 3, dtype=torch.long)
    value = expected_bleu(samples, log_probs, ref)
    assert value.item() == 0.0
    value.backward()
    assert log_probs.grad.shape == (0, 2)
    z = torch.zeros(0, 4, 5, requires_grad=True)
    for reduction in ("mean", "sum"):
        assert SoftBLEULoss(reduction=reduction)(z, ref).item() == 0.0
        assert ExpectedBLEULoss(reduction=reduction)(samples, log_probs, ref).item() == 0.0
    assert SoftBLEULoss().metric(z, ref).item() == 0.0


# --------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------


def test_soft_bleu_module_equals_function():
    z = _margin_logits(4, 6, 5, 1).float().requires_grad_()
    ref = torch.randint(1, 5, (4, 2, 6), generator=torch.Generator().manual_seed(1))
    loss_fn = SoftBLEULoss(temperature=0.5, max_order=3, smooth="floor")
    value = soft_bleu_score(z, ref, temperature=0.5, max_order=3, smooth="floor")
    torch.testing.assert_close(loss_fn(z, ref), 1 - value.mean())
    torch.testing.assert_close(loss_fn.metric(z, ref),
                               bleu_score(z.argmax(-1), ref, max_order=3,
                                          smooth="floor").float().mean())
    none = SoftBLEULoss(reduction="none")(z, ref)
    torch.testing.assert_close(none, 1 - soft_bleu_score(z, ref))
    torch.testing.assert_close(SoftBLEULoss(reduction="sum")(z, ref), none.sum())
    corpus = SoftBLEULoss(corpus=True)
    torch.testing.assert_close(corpus(z, ref), 1 - soft_bleu_score(z, ref, corpus=True))
    loss_fn(z, ref).backward()
    assert torch.isfinite(z.grad).all()
    tau = torch.tensor(0.5)
    buffered = SoftBLEULoss(temperature=tau)
    assert "temperature" in dict(buffered.named_buffers())
    assert "max_order=4" in repr(buffered)
    learned = SoftBLEULoss(temperature=torch.nn.Parameter(torch.tensor(0.5)))
    assert len(list(learned.parameters())) == 1


def test_expected_bleu_module_equals_function():
    g = torch.Generator().manual_seed(10)
    samples = torch.randint(1, 5, (3, 4, 6), generator=g)
    ref = torch.randint(1, 5, (3, 6), generator=g)
    log_probs = torch.randn(3, 4, generator=g, requires_grad=True)
    loss_fn = ExpectedBLEULoss(alpha=0.5)
    value = expected_bleu(samples, log_probs, ref, alpha=0.5, reduction="none")
    torch.testing.assert_close(loss_fn(samples, log_probs, ref), (1 - value).mean())
    torch.testing.assert_close(loss_fn.metric(samples, log_probs, ref), value.mean())
    assert loss_fn.metric(samples, log_probs, ref).grad_fn is None
    torch.testing.assert_close(ExpectedBLEULoss(reduction="sum")(samples, log_probs, ref),
                               (1 - expected_bleu(samples, log_probs, ref,
                                                  reduction="none")).sum())
    assert ExpectedBLEULoss(reduction="none")(samples, log_probs, ref).shape == (3,)
    assert "alpha=0.5" in repr(loss_fn)


@pytest.mark.slow
@pytest.mark.compile
def test_hot_paths_capture_as_one_graph_without_host_synchronisation():
    # fullgraph=True fails on any graph break, e.g. a `.item()` or data-dependent branch
    g = torch.Generator().manual_seed(12)
    hyp = torch.randint(1, 50, (16, 12), generator=g)
    ref = torch.randint(1, 50, (16, 2, 10), generator=g)
    exact = torch.compile(lambda h, r: bleu_score(h, r, vocab_size=50, validate_args=False),
                          backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(exact(hyp, ref), bleu_score(hyp, ref), rtol=0, atol=0)
    z = torch.randn(16, 12, 50, generator=g, requires_grad=True)
    soft = torch.compile(lambda x, r: soft_bleu_score(x, r, validate_args=False),
                         backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(soft(z, ref), soft_bleu_score(z, ref))
    samples = torch.randint(0, 50, (16, 4, 12), generator=g)
    log_probs = -10.0 * torch.rand(16, 4, generator=g)
    expected = torch.compile(
        lambda s, lp, r: expected_bleu(s, lp, r, length_normalize=True, vocab_size=50,
                                       validate_args=False),
        backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(expected(samples, log_probs, ref),
                               expected_bleu(samples, log_probs, ref, length_normalize=True))


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


HYP = torch.tensor([[1, 2, 3]])
REF = torch.tensor([[1, 2, 3]])


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: bleu_score(HYP[0], REF), ValueError,
     r"bleu_score: expected `hyp` to be of shape \(B, T\), got shape \(3,\)\."),
    (lambda: bleu_score(HYP.float(), REF), TypeError,
     r"bleu_score: expected `hyp` to be an integer tensor, got torch.float32\."),
    (lambda: bleu_score(HYP, REF[0]), ValueError, r"expected `ref` to be of shape \(B, T'\) "),
    (lambda: bleu_score(HYP, torch.ones(2, 3, dtype=torch.long)), ValueError,
     r"expected `ref` to be of batch size 1 \(as the hypotheses\), got shape \(2, 3\)\."),
    (lambda: bleu_score(HYP, torch.ones(1, 0, 3, dtype=torch.long)), ValueError,
     r"bleu_score: expected `ref` to be at least one reference per hypothesis \(R >= 1\), "
     r"got shape \(1, 0, 3\)\."),
    (lambda: bleu_score(HYP, REF, max_order=0), ValueError,
     r"expected `max_order` to be an int >= 1, got 0\."),
    (lambda: bleu_score(HYP, REF, smooth="add-one"), ValueError,
     r"expected `smooth` to be one of 'none', 'floor', 'add-k', 'exp', got 'add-one'\."),
    (lambda: bleu_score(HYP, REF, smooth_value=-1.0), ValueError,
     r"expected `smooth_value` to be >= 0 and < inf, got -1.0\."),
    (lambda: bleu_score(torch.tensor([[1, -2]]), REF), ValueError,
     r"bleu_score: expected `hyp` to be token ids >= 0 \(or pad_id = 0\), got an id -2\."),
    (lambda: bleu_score(HYP, torch.tensor([[1, 9]]), vocab_size=5), ValueError,
     r"expected `ref` to be token ids < vocab_size = 5, got an id 9\."),
    (lambda: bleu_score(HYP, REF, effective_order="yes"), TypeError,
     r"expected `effective_order` to be None, True or False"),
    (lambda: soft_bleu_score(torch.randn(1, 3), REF), ValueError,
     r"soft_bleu_score: expected `input` to be of shape \(B, T, V\)"),
    (lambda: soft_bleu_score(torch.randn(1, 3, 0), REF), ValueError,
     r"soft_bleu_score: expected `input` to be logits over a vocabulary of at least one "
     r"token \(V >= 1\), got shape \(1, 3, 0\)\."),
    (lambda: soft_bleu_score(torch.randn(1, 3, 4), torch.ones(1, 0, 2, dtype=torch.long)),
     ValueError, r"expected `ref` to be at least one reference per hypothesis"),
    (lambda: expected_bleu(torch.ones(1, 2, 3, dtype=torch.long), torch.zeros(1, 2),
                           torch.ones(1, 0, 2, dtype=torch.long)),
     ValueError, r"expected `ref` to be at least one reference per hypothesis"),
    (lambda: soft_bleu_score(HYP.unsqueeze(-1), REF), TypeError,
     r"soft_bleu_score: expected `input` to be a floating-point tensor"),
    (lambda: soft_bleu_score(torch.randn(1, 3, 4), REF, temperature=-1.0), ValueError,
     r"expected `temperature` to be >= 0, got -1.0\."),
    (lambda: soft_bleu_score(torch.randn(1, 3, 4), REF, temperature=torch.tensor(0.0)),
     ValueError, r"expected `temperature` to be finite and > 0 when a tensor \(only the "
                 r"number 0 is exact\), got tensor\(0.0\)\."),
    (lambda: soft_bleu_score(torch.randn(1, 3, 4), torch.tensor([[1, -5]])), ValueError,
     r"expected `ref` to be token ids >= 0 \(or pad_id = 0\), got an id -5\."),
    (lambda: soft_bleu_score(torch.randn(1, 3, 4), REF, hyp_lengths=torch.tensor([4])),
     ValueError, r"expected `hyp_lengths` to be lengths in \[0, 3\], got a length 4\."),
    (lambda: soft_bleu_score(torch.randn(1, 3, 4), REF, hyp_lengths=torch.tensor([1, 2])),
     ValueError, r"expected `hyp_lengths` to be of shape \(1,\)"),
    (lambda: expected_bleu(torch.ones(1, 2, 3, dtype=torch.long), torch.zeros(1, 3), REF),
     ValueError, r"expected_bleu: expected `log_probs` to be of shape \(1, 2\) \(one "
                 r"log-probability per sample\), got shape \(1, 3\)\."),
    (lambda: expected_bleu(HYP, torch.zeros(1, 3), REF), ValueError,
     r"expected `samples` to be of shape \(B, K, T\)"),
    (lambda: expected_bleu(torch.ones(1, 2, 3, dtype=torch.long), torch.zeros(1, 2), REF,
                           alpha=-1.0), ValueError, r"expected `alpha` to be >= 0"),
    (lambda: expected_bleu(torch.ones(1, 2, 3, dtype=torch.long), torch.zeros(1, 2), REF,
                           reduction="avg"), ValueError, r"expected `reduction` to be one of"),
    (lambda: expected_bleu(torch.ones(1, 2, 3, dtype=torch.long), torch.zeros(1, 2), REF,
                           length_normalize=1), TypeError,
     r"expected_bleu: expected `length_normalize` to be True or False, got 1\."),
    (lambda: ExpectedBLEULoss(length_normalize="length"), TypeError,
     r"ExpectedBLEULoss: expected `length_normalize` to be True or False, got 'length'\."),
    (lambda: SoftBLEULoss(smooth="add-one"), ValueError,
     r"SoftBLEULoss: expected `smooth` to be one of"),
    (lambda: SoftBLEULoss(temperature=-1.0), ValueError,
     r"SoftBLEULoss: expected `temperature` to be >= 0"),
    (lambda: ExpectedBLEULoss(max_order=0), ValueError,
     r"ExpectedBLEULoss: expected `max_order` to be an int >= 1, got 0\."),
    (lambda: ExpectedBLEULoss(reduction="avg"), ValueError,
     r"ExpectedBLEULoss: expected `reduction` to be one of"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_errors_of_a_bleu_loss_name_the_loss():
    """As every other loss's: the message names what the user called."""
    with pytest.raises(ValueError, match=r"^SoftBLEULoss: expected `input` to be of shape"):
        SoftBLEULoss()(torch.randn(1, 3), REF)
    with pytest.raises(ValueError, match=r"^SoftBLEULoss: expected `ref` to be token ids"):
        SoftBLEULoss().metric(torch.randn(1, 3, 4), torch.tensor([[1, -5]]))
    with pytest.raises(ValueError, match=r"^ExpectedBLEULoss: expected `log_probs`"):
        ExpectedBLEULoss()(torch.ones(1, 2, 3, dtype=torch.long), torch.zeros(1, 3), REF)


def test_without_validation_negative_ids_do_not_crash():
    # ids are not read; the hard path still runs (negative ids are ordinary keys)
    out = bleu_score(torch.tensor([[1, -2, 3]]), REF, validate_args=False)
    assert torch.isfinite(out).all()


# --------------------------------------------------------------------------------------
# the benchmark script keeps working
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_benchmark_smoke(tmp_path):
    script = ROOT / "benchmarks" / "bleu.py"
    if not script.exists():
        pytest.skip("benchmarks/bleu.py not present")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, str(script), "--smoke", "--out", str(tmp_path)],
                   check=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    result = json.loads((tmp_path / "bleu.json").read_text())
    assert result["machine"]["torch"] == torch.__version__
    assert {row["method"] for row in result["rows"]} >= {"softmetrics", "sacrebleu"}
    assert all(row["sentences_per_s"] > 0 for row in result["rows"])



def test_soft_bleu_stays_at_most_one_when_rounding_overshoots():
    """A case found by the fuzz test: half-precision logits whose soft unigram matches
    exceed the hypothesis length by rounding; the precision is bounded by 1."""
    from softmetrics.functional import soft_bleu_score

    logits = torch.tensor([[[2.0, -4.0, 38.0, 14.0, 15.0, 52.0]]], dtype=torch.float16)
    ref = torch.tensor([[[0, 3, 5, 2], [0, 1, 4, 3], [1, -1, 0, 1]]])
    out = soft_bleu_score(logits, ref, pad_id=-1, max_order=1, smooth="none")
    assert 0.0 <= out.item() <= 1.0


# --------------------------------------------------------------------------------------
# left padding (decoder-only generation)
# --------------------------------------------------------------------------------------


def _left_pad(tokens: torch.Tensor, seed: int, pad_id: int = 0, most: int = 3):
    """Each row of `tokens` (..., T) shifted right by 0..`most` pads (width T + `most`): the
    left-padded batch a decoder-only model produces; the sentence of a row is the same."""
    g = torch.Generator().manual_seed(seed)
    lead = torch.randint(0, most + 1, tokens.shape[:-1], generator=g)
    pos = torch.arange(tokens.shape[-1] + most) - lead.unsqueeze(-1)
    inside = (pos >= 0) & (pos < tokens.shape[-1])
    if not tokens.shape[-1]:
        return torch.full(pos.shape, pad_id, dtype=tokens.dtype)
    return torch.where(inside, tokens.gather(-1, pos.clamp(0, tokens.shape[-1] - 1)), pad_id)


def _left_pad_logits(z: torch.Tensor, seed: int, most: int = 3):
    """`(B, T, V)` logits shifted as `_left_pad` shifts `(B, T)` ids, with logits whose
    argmax is 0 (the pad) in front."""
    ids = torch.arange(1, z.shape[1] + 1).expand(z.shape[0], -1)
    shifted = _left_pad(ids, seed, most=most)  # 0 at the pads, else position + 1
    out = z.gather(1, (shifted - 1).clamp_min(0).unsqueeze(-1).expand(-1, -1, z.shape[2]))
    pad = torch.nn.functional.one_hot(torch.tensor(0), z.shape[2]).to(z.dtype) * 5.0
    return torch.where((shifted == 0).unsqueeze(-1), pad, out)


def _cut_at_first_pad(tokens: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """Right-padded rows: everything from the first pad on is pad (a row that starts with
    a pad, an empty sentence, is all pads)."""
    return torch.where((tokens == pad_id).cumsum(-1) > 0, pad_id, tokens)


@given(id_batches(), OPTIONS, st.integers(0, 999))
def test_left_padded_bleu_equals_sacrebleu(device, batch, options, seed):
    hyp, ref, vocab = _cut_at_first_pad(batch[0]), _cut_at_first_pad(batch[1]), batch[2]
    # a sentence of a left-padded row starts after its leading pads and, as with right
    # padding, ends at the next pad; sacrebleu sees the same words as for `hyp`, `ref`
    expected = torch.tensor(sacrebleu_sentence(hyp, ref, **_sacre_kwargs(options)),
                            dtype=torch.float64)
    left_hyp, left_ref = _left_pad(hyp, seed), _left_pad(ref, seed + 1)
    for r in (ref, left_ref):
        for extra in (dict(), dict(vocab_size=vocab, validate_args=False)):
            got = bleu_score(left_hyp.to(device), r.to(device), padding_side="left",
                             **options, **extra)
            torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=1e-9)
    corpus = bleu_score(left_hyp.to(device), left_ref.to(device), padding_side="left",
                        corpus=True, **options)
    assert abs(corpus.item() - sacrebleu_corpus(hyp, ref, **_sacre_kwargs(options))) <= 1e-9
    # right padding (the default) ignores everything from the first pad on, also in front
    ones = torch.ones(1, 3, dtype=torch.long)
    assert bleu_score(torch.tensor([[0, 1, 1, 1]]), ones).item() == 0.0
    assert bleu_score(torch.tensor([[0, 1, 1, 1]]), ones, padding_side="left").item() == 1.0


@given(id_batches(max_batch=4, max_len=7), st.integers(0, 999))
def test_left_padded_soft_and_expected_bleu(batch, seed):
    hyp, ref, vocab = _cut_at_first_pad(batch[0]), _cut_at_first_pad(batch[1]), batch[2]
    left_ref = _left_pad(ref, seed + 1)
    z = _margin_logits(hyp.shape[0], ref.shape[2] + 1, vocab, seed)
    z[:, 0, 0] = -30.0  # a sentence that starts with a pad would be empty when right-padded
    tokens = z.argmax(-1)
    left_z = _left_pad_logits(z, seed)
    hard = bleu_score(tokens, ref)
    for r in (ref, left_ref):
        got = soft_bleu_score(left_z, r, temperature=0, padding_side="left")
        assert torch.equal(got, hard)
        soft = soft_bleu_score(left_z, r, temperature=0.5, padding_side="left")
        torch.testing.assert_close(soft, soft_bleu_score(z, ref, temperature=0.5))
    # explicit lengths with left padding: the last `hyp_lengths` positions
    no_pad = z.clone()
    no_pad[..., 0] = -30.0
    t_hyp = z.shape[1]
    lengths = torch.randint(0, t_hyp + 1, (z.shape[0],),
                            generator=torch.Generator().manual_seed(seed))
    right_aligned = torch.stack([torch.roll(no_pad[b], t_hyp - int(lengths[b]), 0)
                                 for b in range(z.shape[0])])
    front = torch.arange(t_hyp).unsqueeze(0) < (t_hyp - lengths).unsqueeze(1)
    right_aligned[front] = torch.nn.functional.one_hot(torch.tensor(0), vocab).double()
    kept = no_pad.argmax(-1).masked_fill(torch.arange(t_hyp) >= lengths.unsqueeze(1), 0)
    got = soft_bleu_score(right_aligned, ref, temperature=0, padding_side="left",
                          hyp_lengths=lengths)
    assert torch.equal(got, bleu_score(kept, ref))
    # expected BLEU: candidates left-padded
    k = 2
    samples = torch.stack([hyp, _cut_at_first_pad(hyp.flip(-1))], 1)
    log_probs = torch.randn(hyp.shape[0], k, dtype=torch.float64,
                            generator=torch.Generator().manual_seed(seed))
    want = expected_bleu(samples, log_probs, ref, reduction="none")
    got = expected_bleu(_left_pad(samples, seed), log_probs, left_ref, padding_side="left",
                        reduction="none")
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_left_padding_in_the_modules():
    ones = torch.ones(1, 3, dtype=torch.long)
    left = torch.tensor([[0, 1, 1, 1]])
    z = 5.0 * torch.nn.functional.one_hot(left, 3).double()
    assert SoftBLEULoss(padding_side="left").metric(z, ones).item() == 1.0
    assert SoftBLEULoss().metric(z, ones).item() == 0.0
    assert "padding_side='left'" in repr(SoftBLEULoss(padding_side="left"))
    mod = ExpectedBLEULoss(padding_side="left")
    log_probs = torch.zeros(1, 1)
    assert mod.metric(left.unsqueeze(1), log_probs, ones).item() == 1.0
    assert ExpectedBLEULoss().metric(left.unsqueeze(1), log_probs, ones).item() == 0.0
    with pytest.raises(ValueError, match=r"bleu_score: expected `padding_side` to be one of "
                                         r"'right', 'left', got 'center'\."):
        bleu_score(left, ones, padding_side="center")
    with pytest.raises(ValueError, match=r"SoftBLEULoss: expected `padding_side` to be one of"):
        SoftBLEULoss(padding_side="both")


@pytest.mark.parametrize("tau", [0.0, 0.5])
@pytest.mark.parametrize("corpus", [False, True])
def test_non_finite_logits_raise_or_give_nan(tau, corpus):
    ref = torch.tensor([[1, 2, 3, 0], [2, 2, 0, 0]])
    for value in (float("nan"), float("inf")):
        z = _margin_logits(2, 4, 5, 3).float()
        z[0, 1, 2] = value
        with pytest.raises(ValueError, match=r"soft_bleu_score: expected `input` to be finite"):
            soft_bleu_score(z, ref, temperature=tau, corpus=corpus)
        with pytest.raises(ValueError, match=r"expected `input` to be finite"):
            SoftBLEULoss(temperature=tau, corpus=corpus)(z, ref)
    z = _margin_logits(2, 4, 5, 3).float()
    z[0, 1, 2] = float("nan")
    out = soft_bleu_score(z, ref, temperature=tau, corpus=corpus, validate_args=False)
    assert torch.isnan(out[0] if out.ndim else out)
    if not corpus:  # the other sentence keeps its value
        clean = soft_bleu_score(z[1:], ref[1:], temperature=tau)
        torch.testing.assert_close(out[1:], clean)


def test_non_finite_log_probs_raise_or_give_nan():
    samples = torch.tensor([[[1, 2, 3], [1, 3, 0]], [[2, 2, 1], [4, 4, 4]]])
    ref = torch.tensor([[1, 2, 3], [2, 2, 1]])
    for value in (float("nan"), float("inf")):
        log_probs = torch.tensor([[-1.0, value], [-1.0, -2.0]])
        with pytest.raises(ValueError, match=r"expected_bleu: expected `log_probs` to be "
                                             r"finite"):
            expected_bleu(samples, log_probs, ref)
        with pytest.raises(ValueError, match=r"expected `log_probs` to be "
                                             r"finite"):
            ExpectedBLEULoss()(samples, log_probs, ref)
    log_probs = torch.tensor([[-1.0, float("nan")], [-1.0, -2.0]])
    out = expected_bleu(samples, log_probs, ref, reduction="none", validate_args=False)
    assert torch.isnan(out[0]) and torch.isfinite(out[1])
    assert torch.isnan(expected_bleu(samples, log_probs, ref, validate_args=False))


def test_dtype_messages_name_what_each_tensor_is():
    samples = torch.ones(1, 2, 3, dtype=torch.long)
    with pytest.raises(TypeError, match=r"expected_bleu: expected `log_probs` to be a "
                                        r"floating-point tensor \(sequence log-probabilities\), "
                                        r"got torch.int64\."):
        expected_bleu(samples, torch.zeros(1, 2, dtype=torch.long), REF)
    with pytest.raises(TypeError, match=r"soft_bleu_score: expected `input` to be a "
                                        r"floating-point tensor \(logits over the vocabulary\)"):
        soft_bleu_score(torch.ones(1, 3, 4, dtype=torch.long), REF)


def test_options_that_would_give_nan_are_refused():
    """An infinite floor, or an infinite sharpness of the sample weights, would make the
    value NaN (0 * inf): they are refused as options, as a negative one is."""
    h = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="smooth_value"):
        bleu_score(h, h, smooth="floor", smooth_value=float("inf"))
    samples = torch.tensor([[[1, 2, 3, 4], [1, 2, 0, 0]]])
    with pytest.raises(ValueError, match="alpha"):
        expected_bleu(samples, torch.tensor([[-1.0, -2.0]]), torch.tensor([[1, 2, 3, 4]]),
                      alpha=float("inf"))


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_a_pad_id_the_ids_cannot_hold_is_refused(dtype):
    """A `pad_id` outside the range of the ids' dtype can never occur among them, and
    comparing them with it would wrap it into that range (2^32 + 1 reads as 1 in int32):
    refused, for both padding sides."""
    h = torch.tensor([[1, 2, 3, 4]], dtype=dtype)
    bad = torch.iinfo(dtype).max + 2
    for side in ("right", "left"):
        with pytest.raises(ValueError, match="pad_id"):
            bleu_score(h, h, pad_id=bad, padding_side=side)
    with pytest.raises(ValueError, match="pad_id"):
        soft_bleu_score(torch.randn(1, 4, 6), h, pad_id=bad)
    assert bleu_score(h, h, pad_id=torch.iinfo(dtype).max).item() == 1.0
