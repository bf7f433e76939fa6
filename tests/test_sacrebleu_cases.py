"""sacrebleu's own literal test cases, replayed on token ids.

sacrebleu's test suite (`test/test_bleu.py` and `test/test_sentence_bleu.py` of
github.com/mjpost/sacrebleu) asserts literal BLEU values for a few sentences under each
smoothing method, tokenizer and n-gram order. softmetrics scores token ids, so each
sentence is tokenized as sacrebleu does (its tokenizer, after lowercasing where the case
asks for it), its tokens are numbered, and the ids are scored: by `bleu_score`, by
`soft_bleu_score` at temperature 0 on one-hot logits, and, near temperature 0, by the soft
value itself. The expected numbers are sacrebleu's, written down here, not recomputed; the
statistics and the formula from statistics are replayed too.
"""

from __future__ import annotations

import pytest
import torch
from sacrebleu.metrics import BLEU

from softmetrics import SoftBLEULoss
from softmetrics.functional import _text_core, bleu_score, soft_bleu_score

PAD = 0


def _tokens(sentence: str, tokenize: str, lowercase: bool = False) -> list[str]:
    """The tokens sacrebleu counts n-grams of: its tokenizer's output, split at spaces."""
    tokenizer = BLEU(tokenize=tokenize).tokenizer
    return tokenizer((sentence.lower() if lowercase else sentence).rstrip()).split()


def _encode(hyps: list[str], refs: list[list[str]], tokenize: str = "none",
            lowercase: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids of the hypotheses, `(B, T)`, and of the references, `(B, R, T')`, right-padded
    with `PAD`; `refs` holds sacrebleu's reference streams (stream k: the k-th reference
    of every sentence)."""
    vocab: dict[str, int] = {}

    def ids(sentence: str) -> list[int]:
        return [vocab.setdefault(w, len(vocab) + 1)
                for w in _tokens(sentence, tokenize, lowercase)]

    hyp_ids = [ids(h) for h in hyps]
    ref_ids = [[ids(stream[i]) for stream in refs] for i in range(len(hyps))]
    width = max([len(h) for h in hyp_ids] + [1])
    ref_width = max([len(r) for rs in ref_ids for r in rs] + [1])
    hyp = torch.full((len(hyps), width), PAD)
    ref = torch.full((len(hyps), len(refs), ref_width), PAD)
    for i, h in enumerate(hyp_ids):
        hyp[i, :len(h)] = torch.tensor(h, dtype=torch.long)
        for k, r in enumerate(ref_ids[i]):
            ref[i, k, :len(r)] = torch.tensor(r, dtype=torch.long)
    return hyp, ref


def _scores(hyp: torch.Tensor, ref: torch.Tensor, **options) -> list[torch.Tensor]:
    """The exact BLEU of the ids, the soft BLEU at temperature 0 of their one-hot logits,
    and the soft BLEU at temperature 1e-3 of logits whose argmax leads by 20."""
    lengths = (hyp != PAD).sum(-1)
    vocab = int(max(hyp.max(), ref.max())) + 1
    logits = 20.0 * torch.nn.functional.one_hot(hyp, vocab).double()
    exact = bleu_score(hyp, ref, pad_id=PAD, **options)
    soft0 = soft_bleu_score(logits, ref, temperature=0, pad_id=PAD, hyp_lengths=lengths,
                            **options)
    near = soft_bleu_score(logits, ref, temperature=1e-3, pad_id=PAD, hyp_lengths=lengths,
                           **options)
    return [exact, soft0, near]


def _assert_all(values: list[torch.Tensor], expected: float, abs_tol: float) -> None:
    exact, soft0, near = values
    assert exact.item() == pytest.approx(expected, abs=abs_tol)
    assert torch.equal(soft0, exact)
    assert near.item() == pytest.approx(exact.item(), abs=1e-9)


# --- sacrebleu, test/test_bleu.py ---------------------------------------------------------

# test_corpus_bleu's README example: three sentences, two reference streams (the second
# hypothesis has no exact reference, so every order is smoothed in some sentence)
README_REFS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
README_HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]


@pytest.mark.parametrize("tokenize, smooth, expected", [
    ("13a", "exp", 48.530827),   # sacrebleu's defaults
    ("none", "exp", 49.1919566),
    ("intl", "exp", 43.91623493),
    ("13a", "none", 48.530827),  # every order has a match in the corpus: no smoothing
])
def test_corpus_bleu(tokenize, smooth, expected):
    """test_corpus_bleu: corpus BLEU of the README example (EPSILON 1e-8 on the 0-100
    scale)."""
    hyp, ref = _encode(README_HYPS, README_REFS, tokenize)
    _assert_all(_scores(hyp, ref, corpus=True, smooth=smooth), expected / 100, 1e-10)


def test_empty_hypotheses_are_kept_and_score_zero():
    """test_corpus_bleu: three empty hypotheses stay in the corpus and score 0."""
    hyp, ref = _encode(["", "", ""], README_REFS, "13a")
    assert hyp.eq(PAD).all()
    _assert_all(_scores(hyp, ref, corpus=True), 0.0, 0.0)
    assert bleu_score(hyp, ref, pad_id=PAD).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("max_order, expected", [
    (1, "77.65"), (2, "60.50"), (3, "53.93"), (4, "48.53"), (5, "46.14"), (6, "43.28"),
])
def test_max_ngram_order(max_order, expected):
    """test_max_ngram_order: the README example's corpus BLEU at orders 1 to 6, as sacrebleu
    prints it (two decimals)."""
    hyp, ref = _encode(README_HYPS, README_REFS, "13a")
    values = _scores(hyp, ref, corpus=True, max_order=max_order)
    assert f"{100 * values[0].item():.2f}" == expected
    _assert_all(values, float(expected) / 100, 5e-5)


# `raw_corpus_bleu(hyps, refs, smooth_value)`: corpus BLEU with "floor" smoothing, no
# tokenization (tokens are the space-separated words) and the effective order
RAW = dict(corpus=True, smooth="floor", effective_order=True)


@pytest.mark.parametrize("hyps, refs, smooth_value, expected", [
    # test_raw_bleu
    (["this is a test", "another test"], [["ref1", "ref2"]], 0.01, 0.0),
    (["this is a test"], [["this is a test"]], 0.01, 1.0),
    (["this is a fest"], [["this is a test"]], 0.01, 0.223606797749979),
    # test_effective_order
    (["test"], [["a test"]], 0.01, 0.3678794411714425),
    (["a test"], [["a test"]], 0.01, 1.0),
    (["a little test"], [["a test"]], 0.01, 0.03218297948685433),
    # test_offset: no 4-gram match, floored at 0 (score 0) or at sacrebleu's default 0.1
    (["am I am a character sequence"], [["I am a symbol string sequence a a"]], 0.0, 0.0),
    (["am I am a character sequence"], [["I am a symbol string sequence a a"]], None,
     0.1555722182),
], ids=["no-match", "identical", "one-word-off", "one-word-hyp", "two-words", "extra-word",
        "offset-0", "offset-default"])
def test_raw_corpus_bleu(hyps, refs, smooth_value, expected):
    """test_raw_bleu, test_effective_order and test_offset (EPSILON 1e-8 on [0, 1])."""
    hyp, ref = _encode(hyps, refs)
    _assert_all(_scores(hyp, ref, smooth_value=smooth_value, **RAW), expected, 1e-8)


def test_statistics():
    """test_statistics: matches [4, 2, 1, 0] of totals [6, 5, 4, 3]."""
    hyp, ref = _encode(["am I am a character sequence"], [["I am a symbol string sequence a a"]])
    matches, totals, hyp_len, ref_len = _text_core._tiled_stats(hyp, ref, PAD, 4, None)
    assert matches.tolist() == [[4, 2, 1, 0]]
    assert totals.tolist() == [[6, 5, 4, 3]]
    assert (hyp_len.item(), ref_len.item()) == (6, 8)


def _formula(matches, totals, hyp_len, ref_len, **options) -> float:
    as64 = [torch.tensor(v, dtype=torch.float64) for v in (matches, totals, hyp_len, ref_len)]
    return _text_core._bleu_formula(*as64, **options).item()


def test_scoring():
    """test_scoring: BLEU of matches [9, 7, 5, 3] of [10, 8, 6, 4], lengths 11 and 11
    (no smoothing)."""
    value = _formula([9, 7, 5, 3], [10, 8, 6, 4], 11, 11, smooth="none", smooth_value=0.0,
                     effective_order=False)
    assert value == pytest.approx(0.8375922397, abs=1e-8)


@pytest.mark.parametrize("matches, totals, hyp_len, ref_len, smooth_value", [
    ([0, 0, 0, 0], [4, 4, 2, 1], 0, 1, 0.0),
    ([0, 0, 0, 0], [10, 11, 12, 0], 14, 10, 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.0),
    ([6, 5, 4, 0], [6, 5, 4, 3], 6, 6, 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.1),
    ([0, 0, 0, 0], [0, 0, 0, 0], 1, 5, 0.01),
])
def test_degenerate_statistics(matches, totals, hyp_len, ref_len, smooth_value):
    """test_degenerate_statistics: "floor" smoothing of null statistics, and of a floor of 0
    under an order without a match, is exactly 0 (never NaN)."""
    value = _formula(matches, totals, hyp_len, ref_len, smooth="floor",
                     smooth_value=smooth_value, effective_order=False)
    assert value == 0.0


# --- sacrebleu, test/test_sentence_bleu.py ------------------------------------------------

# sacrebleu issue #98: a Romanian sentence with diacritics in two encodings
REF = "producţia de zahăr brut se exprimă în zahăr alb;"
SYS = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"


@pytest.mark.parametrize("smooth, smooth_value, lowercase, tokenize, expected", [
    ("exp", None, False, "13a", 8.493),
    ("none", None, False, "13a", 0.0),
    ("floor", None, False, "13a", 4.51688),  # the default floor is 0.1
    ("floor", 0.1, False, "13a", 4.51688),
    ("floor", 0.5, False, "13a", 10.10),
    ("add-k", None, False, "13a", 14.882),  # the default k is 1
    ("add-k", 1, False, "13a", 14.882),
    ("add-k", 2, False, "13a", 21.389),
    ("exp", None, False, "none", 7.347),
    ("exp", None, False, "intl", 8.493),
    ("exp", None, False, "char", 40.8759),
    ("exp", None, True, "char", 42.0267),
])
def test_sentence_bleu(smooth, smooth_value, lowercase, tokenize, expected):
    """test_api_sentence_bleu: sentence BLEU with the effective order under every smoothing
    and tokenizer (EPSILON 1e-3 on the 0-100 scale)."""
    hyp, ref = _encode([SYS], [[REF]], tokenize, lowercase)
    options = dict(smooth=smooth, smooth_value=smooth_value, effective_order=True)
    _assert_all(_scores(hyp, ref, **options), expected / 100, 1e-5)
    # the Module's exact metric is the same number
    metric = SoftBLEULoss(pad_id=PAD, **options).metric(
        torch.nn.functional.one_hot(hyp, int(max(hyp.max(), ref.max())) + 1).double(), ref)
    assert metric.item() == pytest.approx(expected / 100, abs=1e-5)


@pytest.mark.parametrize("smooth, smooth_value", [
    ("exp", None), ("none", None), ("floor", None), ("floor", 0.1), ("add-k", None),
    ("add-k", 1),
])
def test_sentence_bleu_without_a_common_word_is_zero(smooth, smooth_value):
    """test_api_sentence_bleu_zero (sacrebleu issue #141): no unigram in common scores 0
    under every smoothing."""
    hyp, ref = _encode(["this is a cat"], [["okay thanks"]], "13a")
    options = dict(smooth=smooth, smooth_value=smooth_value, effective_order=True)
    _assert_all(_scores(hyp, ref, **options), 0.0, 0.0)
