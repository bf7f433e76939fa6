"""scikit-learn's own literal test cases for its ranking metrics, replayed on softmetrics.

Every case carries over the inputs and the expected numbers of one test of scikit-learn's
sklearn/metrics/tests/test_ranking.py, named in a comment, and asserts softmetrics at
temperature 0 against them: `roc_auc_score` (binary, multilabel, multiclass one-vs-rest,
partial AUROC with `max_fpr`), `average_precision_score`, `ndcg_score` (and its DCG, through
NDCG), `top_k_accuracy_score` and `label_ranking_average_precision_score` (the mean over
samples of the per-query AP of `soft_retrieval_average_precision`).

Where softmetrics knowingly differs from scikit-learn — average precision and top-k accuracy
at tied scores, columns without a positive or without a negative, an AUROC that is not
defined — the case asserts the value softmetrics documents instead, with the section of the
docs that explains it. Where the exact value has a smooth limit, a small temperature is also
checked to give nearly the exact value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softmetrics.functional import (
    soft_auroc,
    soft_average_precision,
    soft_ndcg,
    soft_retrieval_average_precision,
    soft_top_k_accuracy,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors

EXACT = 1e-12
# far below every gap between distinct scores compared at it (0.05 at least): a pair at gap
# g is off its step by about exp(-g / SMALL), below 1e-200
SMALL = 1e-4


def _f64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _assert_value(got: torch.Tensor, expected, abs: float = EXACT) -> None:
    np.testing.assert_allclose(got.detach().numpy(), np.asarray(expected, dtype=np.float64),
                               rtol=0, atol=abs)


def _exact_and_soft(fn, *args, expected, converges: bool = True, **kw) -> None:
    """`fn` at temperature 0 equals `expected`; with `converges`, a small temperature gives
    nearly the same value."""
    exact = fn(*args, temperature=0, **kw)
    _assert_value(exact, expected)
    if converges:
        _assert_value(fn(*args, temperature=SMALL, **kw), exact, abs=1e-9)


def _columns(fn, scores, labels, average, **kw):
    """scikit-learn's multilabel `average` on an (N, C) indicator matrix. "samples" (one
    value per row, then their mean) is the macro average of the transposed problem, in which
    every row is a column; that holds when every row is defined, as in the cases below."""
    s, y = _f64(scores), torch.tensor(labels)
    if average == "samples":
        s, y, average = s.T, y.T, "macro"
    return lambda temperature: fn(s, y, task="multilabel", num_classes=s.shape[1],
                                  average=average, temperature=temperature, **kw)


def _check_columns(fn, scores, labels, average, expected, converges=True):
    metric = _columns(fn, scores, labels, average)
    exact = metric(0)
    _assert_value(exact, expected)
    if converges:
        _assert_value(metric(SMALL), exact, abs=1e-9)


# ---------------------------------------------------------------------------------------
# roc_auc_score: binary


@pytest.mark.parametrize("y_true, y_score, expected", [
    pytest.param([0, 1], [0.0, 1.0], 1.0, id="ordered"),
    pytest.param([0, 1], [1.0, 0.0], 0.0, id="reversed"),
    pytest.param([1, 0], [1.0, 1.0], 0.5, id="tied-at-one"),
    pytest.param([1, 0], [1.0, 0.0], 1.0, id="ordered-positive-first"),
    pytest.param([1, 0], [0.5, 0.5], 0.5, id="tied-at-half"),
])
def test_roc_auc_binary_toy_cases(y_true, y_score, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_roc_curve_toydata
    _exact_and_soft(soft_auroc, _f64(y_score), torch.tensor(y_true), task="binary",
                    expected=expected)


@pytest.mark.parametrize("y_true", [
    pytest.param([0, 0], id="no-positive"),
    pytest.param([1, 1], id="no-negative"),
])
def test_roc_auc_binary_with_one_class_is_zero(y_true):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_roc_curve_toydata: with
    # y_score [0.25, 0.75] scikit-learn warns and returns NaN (older versions raised). In
    # softmetrics an AUROC without a positive or without a negative is not defined and a
    # batch without a defined column gives 0, never NaN (docs/ranking.md, "Per-frame mAP
    # (THUMOS'14) and averaging").
    _exact_and_soft(soft_auroc, _f64([0.25, 0.75]), torch.tensor(y_true), task="binary",
                    expected=0.0)


# ---------------------------------------------------------------------------------------
# roc_auc_score: multilabel (scikit-learn, test_roc_curve_toydata, "Multi-label
# classification task")

_ML_A = ([[0, 1], [0, 1]], [[0.0, 1.0], [0.0, 1.0]])
_ML_B = ([[0, 1], [0, 1]], [[0.0, 1.0], [1.0, 0.0]])
_ML_C = ([[1, 0], [0, 1]], [[0.0, 1.0], [1.0, 0.0]])
_ML_D = ([[1, 0], [0, 1]], [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize("case, average, expected", [
    pytest.param(_ML_A, "samples", 1.0, id="A-samples"),
    pytest.param(_ML_A, "micro", 1.0, id="A-micro"),
    pytest.param(_ML_B, "samples", 0.5, id="B-samples"),
    pytest.param(_ML_B, "micro", 0.5, id="B-micro"),
    pytest.param(_ML_C, "macro", 0.0, id="C-macro"),
    pytest.param(_ML_C, "weighted", 0.0, id="C-weighted"),
    pytest.param(_ML_C, "samples", 0.0, id="C-samples"),
    pytest.param(_ML_C, "micro", 0.0, id="C-micro"),
    pytest.param(_ML_D, "macro", 0.5, id="D-macro"),
    pytest.param(_ML_D, "weighted", 0.5, id="D-weighted"),
    pytest.param(_ML_D, "samples", 0.5, id="D-samples"),
    pytest.param(_ML_D, "micro", 0.5, id="D-micro"),
])
def test_roc_auc_multilabel_toy_cases(case, average, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_roc_curve_toydata
    labels, scores = case
    _check_columns(soft_auroc, scores, labels, average, expected)


@pytest.mark.parametrize("case", [pytest.param(_ML_A, id="A"), pytest.param(_ML_B, id="B")])
@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_roc_auc_multilabel_without_a_defined_column_is_zero(case, average):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_roc_curve_toydata: both
    # columns of y_true [[0, 1], [0, 1]] hold one class only, so scikit-learn warns for
    # "macro" and "weighted" (older versions raised). softmetrics leaves such columns out,
    # and with none left the result is 0 (docs/ranking.md, "Per-frame mAP (THUMOS'14) and
    # averaging").
    labels, scores = case
    _check_columns(soft_auroc, scores, labels, average, 0.0)


# ---------------------------------------------------------------------------------------
# roc_auc_score: multiclass one-vs-rest
#
# scikit-learn's multiclass scores are probabilities; softmetrics' multiclass path takes
# logits and ranks class c by the log-softmax of c. One-vs-rest on the given scores is the
# multilabel task on one-hot targets, which the cases below always run. Where the
# probabilities can be given as logits without disturbing a tie, the multiclass path runs too
# (log p, with p = 0 as -1000, whose softmax probability is 0 in float64).


def _one_hot(y_true, num_classes):
    return torch.nn.functional.one_hot(torch.tensor(y_true), num_classes)


def _logits(probabilities):
    p = np.asarray(probabilities, dtype=np.float64)
    return torch.from_numpy(np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -1000.0))


_OVR_SCORES = [[1.0, 0.0, 0.0], [0.1, 0.5, 0.4], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]


@pytest.mark.parametrize("average, expected", [
    # class 0 and class 1: the positive scores above every negative; class 2: positives 0.8
    # and 0.4 against negatives 0.0 and 0.4, 3.5 pairs of 4 in order
    pytest.param("none", [1.0, 1.0, 7 / 8], id="none"),
    pytest.param("macro", (1 + 1 + 7 / 8) / 3, id="macro"),
    # weighted by prevalence 0.25, 0.25, 0.5
    pytest.param("weighted", 0.25 + 0.25 + 0.5 * 7 / 8, id="weighted"),
])
def test_roc_auc_multiclass_ovr_toy_case(average, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_multiclass_ovr_roc_auc_toydata
    # (y_true [0, 1, 2, 2]; its `labels` variants name the same three classes). Only the
    # one-vs-rest columns run: the tie at 0.4 in class 2 lies in rows whose log-softmax
    # would differ by rounding.
    _exact_and_soft(soft_auroc, _f64(_OVR_SCORES), _one_hot([0, 1, 2, 2], 3),
                    task="multilabel", num_classes=3, average=average, expected=expected)


_PERFECT = [[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
            [0.75, 0.05, 0.05, 0.15]]
_IMPERFECT = [[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
              [0.0, 0.0, 0.0, 1.0]]
_CHANCE = [[0.25] * 4] * 4


def _ovr_auroc(path, probabilities, y_true, average, temperature):
    if path == "multiclass":
        return soft_auroc(_logits(probabilities), torch.tensor(y_true), task="multiclass",
                          num_classes=4, average=average, temperature=temperature)
    return soft_auroc(_f64(probabilities), _one_hot(y_true, 4), task="multilabel",
                      num_classes=4, average=average, temperature=temperature)


@pytest.mark.parametrize("path", ["multiclass", "one-vs-rest-columns"])
@pytest.mark.parametrize("average", ["macro", "micro"])
def test_perfect_imperfect_chance_multiclass_roc_auc(path, average):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py,
    # test_perfect_imperfect_chance_multiclass_roc_auc (its "ovr" cases; softmetrics has no
    # one-vs-one)
    y_true = [3, 1, 2, 0]
    for temperature in (0, SMALL):
        perfect = _ovr_auroc(path, _PERFECT, y_true, average, temperature)
        _assert_value(perfect, 1.0, abs=EXACT if temperature == 0 else 1e-9)
        imperfect = _ovr_auroc(path, _IMPERFECT, y_true, average, temperature)
        assert imperfect.item() < 1.0
        # the value itself, worked out by hand: per class 1/2, 1, 1, 5/6 (macro 5/6), and the
        # pooled column of 4 positives and 12 negatives gives 5/6 as well
        _assert_value(imperfect, 5 / 6, abs=EXACT if temperature == 0 else 1e-9)
        chance = _ovr_auroc(path, _CHANCE, y_true, average, temperature)
        _assert_value(chance, 0.5)


# ---------------------------------------------------------------------------------------
# roc_auc_score with max_fpr: the McClish-standardised partial AUROC


@pytest.mark.parametrize("y_score, max_fpr, expected, converges", [
    pytest.param([0.0, 0.0, 1.0, 1.0], 1.0, 1.0, True, id="perfect-max-fpr-1"),
    pytest.param([0.0, 0.0, 1.0, 1.0], 0.001, 1.0, True, id="perfect-max-fpr-0.001"),
    # the cut at 0.3 * 2 negatives falls inside the segment of the positive tied with the
    # negative at 0.1: at temperature > 0 softmetrics caps rather than interpolates there
    # (docs/ranking.md, "Partial AUROC (max_fpr)"), so only the exact value is compared
    pytest.param([0.1, 0.0, 0.1, 0.01], 0.3, 0.5, False, id="tied-max-fpr-0.3"),
])
def test_partial_roc_auc_score(y_score, max_fpr, expected, converges):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_partial_roc_auc_score
    # (y_true [0, 0, 1, 1]; the first two cases score with y_true itself)
    _exact_and_soft(soft_auroc, _f64(y_score), torch.tensor([0, 0, 1, 1]), task="binary",
                    max_fpr=max_fpr, expected=expected, converges=converges)


def test_partial_roc_auc_with_max_fpr_one_is_the_auroc():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_partial_roc_auc_score:
    # max_fpr=1 gives the unconstrained AUROC (here 2.5 of 4 pairs in order)
    s, y = _f64([0.1, 0.0, 0.1, 0.01]), torch.tensor([0, 0, 1, 1])
    full = soft_auroc(s, y, task="binary", temperature=0)
    _assert_value(soft_auroc(s, y, task="binary", max_fpr=1, temperature=0), full)
    _assert_value(full, 5 / 8)


@pytest.mark.parametrize("max_fpr", [-0.1, 1.1, 0.0])
def test_partial_roc_auc_refuses_max_fpr_out_of_range(max_fpr):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_partial_roc_auc_score:
    # both raise ValueError for max_fpr outside (0, 1]
    with pytest.raises(ValueError, match="max_fpr"):
        soft_auroc(_f64([0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1]), task="binary",
                   max_fpr=max_fpr, temperature=0)


# ---------------------------------------------------------------------------------------
# average_precision_score: binary (scikit-learn, test_precision_recall_curve_toydata)


@pytest.mark.parametrize("y_true, y_score, expected", [
    pytest.param([0, 1], [0.0, 1.0], 1.0, id="ordered"),
    # "a terrible prediction ... the accuracy at chance": the positive is second, 1/2
    pytest.param([0, 1], [1.0, 0.0], 0.5, id="reversed"),
    pytest.param([1, 0], [1.0, 0.0], 1.0, id="ordered-positive-first"),
    pytest.param([1, 1], [0.25, 0.75], 1.0, id="no-negative"),
    # scikit-learn warns and gives 0; softmetrics gives 0 without a warning, as a batch
    # without a positive has no AP (docs/ranking.md, "Per-frame mAP (THUMOS'14) and
    # averaging")
    pytest.param([0, 0], [0.25, 0.75], 0.0, id="no-positive"),
])
def test_average_precision_binary_toy_cases(y_true, y_score, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_precision_recall_curve_toydata
    _exact_and_soft(soft_average_precision, _f64(y_score), torch.tensor(y_true),
                    task="binary", expected=expected)


@pytest.mark.parametrize("y_score", [
    pytest.param([1.0, 1.0], id="tied-at-one"),
    pytest.param([0.5, 0.5], id="tied-at-half"),
])
def test_average_precision_binary_tie_follows_the_pairwise_rule(y_score):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_precision_recall_curve_toydata:
    # y_true [1, 0] with both scores tied, scikit-learn 0.5 (one threshold: precision 1/2).
    # softmetrics counts the tied negative as half a negative above the positive:
    # 1 / (1 + 1/2) = 2/3 (docs/ranking.md, "Ties and the exact metric"). A sigmoid of a zero
    # difference is 1/2 too, so the soft value has the same limit.
    _exact_and_soft(soft_average_precision, _f64(y_score), torch.tensor([1, 0]),
                    task="binary", expected=2 / 3)


def test_average_precision_constant_values():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py,
    # test_average_precision_constant_values: 100 samples, every fourth positive, every
    # score 1; scikit-learn 0.25 (one threshold). softmetrics' tie rule (docs/ranking.md,
    # "Ties and the exact metric"): the positive of rank k among the 25 has the 75 tied
    # negatives as 37.5 above it, precision k / (k + 37.5).
    y_true = torch.zeros(100, dtype=torch.long)
    y_true[::4] = 1
    expected = math.fsum(2 * k / (2 * k + 75) for k in range(1, 26)) / 25
    _exact_and_soft(soft_average_precision, torch.ones(100, dtype=torch.float64), y_true,
                    task="binary", expected=expected)
    assert expected < 0.25


# ---------------------------------------------------------------------------------------
# average_precision_score: multilabel (scikit-learn, test_precision_recall_curve_toydata,
# "Multi-label classification task")

_ML_E = ([[0, 0], [0, 0]], [[0.0, 1.0], [0.0, 1.0]])
_ML_F = ([[1, 1], [1, 1]], [[0.0, 1.0], [0.0, 1.0]])
_ML_G = ([[0, 0], [0, 1]], [[0.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("case, average, expected", [
    pytest.param(_ML_A, "weighted", 1.0, id="A-weighted"),
    pytest.param(_ML_A, "samples", 1.0, id="A-samples"),
    pytest.param(_ML_A, "micro", 1.0, id="A-micro"),
    pytest.param(_ML_B, "weighted", 1.0, id="B-weighted"),
    pytest.param(_ML_B, "samples", 0.75, id="B-samples"),
    pytest.param(_ML_C, "macro", 0.5, id="C-macro"),
    pytest.param(_ML_C, "weighted", 0.5, id="C-weighted"),
    pytest.param(_ML_C, "samples", 0.5, id="C-samples"),
    # no positive anywhere: scikit-learn 0 (with a warning); softmetrics 0 because no
    # column is defined (docs/ranking.md, "Per-frame mAP (THUMOS'14) and averaging")
    pytest.param(_ML_E, "macro", 0.0, id="E-macro"),
    pytest.param(_ML_E, "weighted", 0.0, id="E-weighted"),
    pytest.param(_ML_E, "samples", 0.0, id="E-samples"),
    pytest.param(_ML_E, "micro", 0.0, id="E-micro"),
    pytest.param(_ML_F, "macro", 1.0, id="F-macro"),
    pytest.param(_ML_F, "weighted", 1.0, id="F-weighted"),
    pytest.param(_ML_F, "samples", 1.0, id="F-samples"),
    pytest.param(_ML_F, "micro", 1.0, id="F-micro"),
    # "if one class is never present weighted should not be NaN"
    pytest.param(_ML_G, "weighted", 1.0, id="G-weighted"),
])
def test_average_precision_multilabel_toy_cases(case, average, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_precision_recall_curve_toydata
    labels, scores = case
    _check_columns(soft_average_precision, scores, labels, average, expected)


@pytest.mark.parametrize("case, average, expected", [
    # column 0 has no positive: scikit-learn counts its AP as 0 in the macro mean (0.5),
    # softmetrics leaves it out (docs/ranking.md, "Per-frame mAP (THUMOS'14) and averaging")
    pytest.param(_ML_A, "macro", 1.0, id="A-macro-column-without-positive"),
    pytest.param(_ML_B, "macro", 1.0, id="B-macro-column-without-positive"),
    # the remaining cases have positives tied with negatives or with each other; scikit-learn
    # 0.5 each, softmetrics' pairwise tie rule (docs/ranking.md, "Ties and the exact
    # metric"). B micro: pooled positives at 1 (tied with a negative) and 0 (one negative
    # above, one tied): (1/1.5 + 2/3.5) / 2.
    pytest.param(_ML_B, "micro", (2 / 3 + 4 / 7) / 2, id="B-micro-tied"),
    # C micro: both positives tied at 0 below both negatives: (1/3 + 2/4) / 2
    pytest.param(_ML_C, "micro", (1 / 3 + 2 / 4) / 2, id="C-micro-tied-positives"),
    # D: every score 0.5; per column or row one positive with one tied negative: 1/1.5;
    # pooled, two positives with two tied negatives: (1/2 + 2/3) / 2
    pytest.param(_ML_D, "macro", 2 / 3, id="D-macro-tied"),
    pytest.param(_ML_D, "weighted", 2 / 3, id="D-weighted-tied"),
    pytest.param(_ML_D, "samples", 2 / 3, id="D-samples-tied"),
    pytest.param(_ML_D, "micro", (1 / 2 + 2 / 3) / 2, id="D-micro-tied"),
])
def test_average_precision_multilabel_documented_differences(case, average, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_precision_recall_curve_toydata
    # (where scikit-learn asserts 0.5 for each of these)
    labels, scores = case
    _check_columns(soft_average_precision, scores, labels, average, expected)


# ---------------------------------------------------------------------------------------
# top_k_accuracy_score

_TOPK_SCORES = [[0.4, 0.3, 0.2, 0.1], [0.1, 0.3, 0.4, 0.2], [0.4, 0.1, 0.2, 0.3],
                [0.3, 0.2, 0.4, 0.1]]


@pytest.mark.parametrize("k, expected", [
    pytest.param(1, 0.25, id="k1"),
    pytest.param(2, 0.5, id="k2"),
    pytest.param(3, 0.75, id="k3"),
])
def test_top_k_accuracy_score(k, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_top_k_accuracy_score
    _exact_and_soft(soft_top_k_accuracy, _f64(_TOPK_SCORES), torch.tensor([0, 1, 2, 3]),
                    num_classes=4, k=k, expected=expected)


@pytest.mark.parametrize("y_true, expected", [
    pytest.param([0, 1, 1, 2], 0.75, id="0112"),
    pytest.param([0, 1, 1, 1], 0.5, id="0111"),
    pytest.param([1, 1, 1, 1], 0.5, id="1111"),
    # ["a", "e", "e", "a"] with labels ["a", "b", "d", "e"]: class indices 0, 3, 3, 0
    pytest.param([0, 3, 3, 0], 0.75, id="aeea"),
])
def test_top_k_accuracy_score_multiclass_with_labels(y_true, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py,
    # test_top_k_accuracy_score_multiclass_with_labels (k=2, four labels, some absent from
    # y_true: softmetrics' num_classes=4)
    _exact_and_soft(soft_top_k_accuracy, _f64(_TOPK_SCORES), torch.tensor(y_true),
                    num_classes=4, k=2, expected=expected)


@pytest.mark.parametrize("y_score, k, expected", [
    pytest.param([-1.0, -1.0, 1.0, 1.0], 1, 1.0, id="decision-k1-right"),
    pytest.param([-1.0, 1.0, -1.0, 1.0], 1, 0.5, id="decision-k1-half"),
    pytest.param([-1.0, 1.0, -1.0, 1.0], 2, 1.0, id="decision-k2"),
    pytest.param([0.2, 0.2, 0.7, 0.7], 1, 1.0, id="probability-k1-right"),
    pytest.param([0.2, 0.7, 0.2, 0.7], 1, 0.5, id="probability-k1-half"),
    pytest.param([0.2, 0.7, 0.2, 0.7], 2, 1.0, id="probability-k2"),
])
def test_top_k_accuracy_score_binary(y_score, k, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_top_k_accuracy_score_binary
    # (y_true [0, 0, 1, 1]). scikit-learn's binary scores are one column, thresholded at 0.5
    # for probabilities and at 0 otherwise; softmetrics' top-k accuracy is multiclass, so
    # each score becomes two class scores with the same decision: (1 - p, p) for a
    # probability p, (0, d) for a decision value d.
    s = _f64(y_score)
    probability = bool(((s >= 0) & (s <= 1)).all())
    two = torch.stack([1 - s, s] if probability else [torch.zeros_like(s), s], dim=1)
    _exact_and_soft(soft_top_k_accuracy, two, torch.tensor([0, 0, 1, 1]), num_classes=2,
                    k=k, expected=expected)


_TOPK_WARNING_SCORES = [[0.4, 0.3, 0.2, 0.1], [0.1, 0.4, 0.3, 0.2], [0.2, 0.1, 0.4, 0.3],
                        [0.3, 0.2, 0.1, 0.4]]


def test_top_k_accuracy_score_with_k_equal_to_the_number_of_classes():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_top_k_accuracy_score_warning:
    # k=4 of 4 classes gives 1 (scikit-learn warns that it is meaningless)
    _exact_and_soft(soft_top_k_accuracy, _f64(_TOPK_WARNING_SCORES),
                    torch.tensor([0, 1, 2, 3]), num_classes=4, k=4, expected=1.0)


def test_top_k_accuracy_score_refuses_k_above_the_number_of_classes():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_top_k_accuracy_score_warning:
    # k=5 of 4 classes gives 1 with a warning; softmetrics requires 1 <= k <= C (its
    # docstring) and raises
    with pytest.raises(ValueError, match="k"):
        soft_top_k_accuracy(_f64(_TOPK_WARNING_SCORES), torch.tensor([0, 1, 2, 3]),
                            num_classes=4, k=5, temperature=0)


@pytest.mark.parametrize("k, expected", [
    # scikit-learn 0.25: softmetrics' ranks of the true class are 1.5, 1, 0.5, 1.5 (a tie
    # counts 1/2), a hit when below k - 1/2 and half a hit when equal: only row 2 is half
    pytest.param(1, 1 / 8, id="k1"),
    # scikit-learn 0.5: rows 0 and 3 half hits, rows 1 and 2 hits
    pytest.param(2, 3 / 4, id="k2"),
    # scikit-learn 1, the same
    pytest.param(3, 1.0, id="k3"),
])
def test_top_k_accuracy_score_ties_count_half(k, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_top_k_accuracy_score_ties:
    # scikit-learn breaks ties by taking the highest index first; softmetrics counts a tie
    # as one half (docs/classification.md, "The formulas", on top-k; docs/index.md, "Three
    # promises"), and the sigmoid of a zero difference is 1/2, so the soft value has the same
    # limit.
    y_score = _f64([[5, 5, 7, 0], [1, 5, 5, 5], [0, 0, 3, 3], [1, 1, 1, 1]])
    _exact_and_soft(soft_top_k_accuracy, y_score, torch.tensor([0, 1, 2, 3]), num_classes=4,
                    k=k, expected=expected)


# ---------------------------------------------------------------------------------------
# ndcg_score and DCG


def _discounts(n):
    return [1 / math.log2(i + 2) for i in range(n)]


def test_ndcg_toy_examples():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_ndcg_toy_examples: query i
    # of 5 has only item i relevant (grade 3) among 7, scores 6, 5, ..., 0: NDCG
    # 1 / log2(i + 2), DCG 3 / log2(i + 2) over the ideal 3. ignore_ties=True and False agree
    # as there is no tie. (Its noisy scores are random draws that keep this order.)
    grades = 3 * torch.eye(7, dtype=torch.float64)[:5]
    scores = _f64([list(range(6, -1, -1))] * 5)
    per_query = _discounts(5)
    _exact_and_soft(soft_ndcg, scores, grades, reduction="none", expected=per_query)
    _exact_and_soft(soft_ndcg, scores, grades, expected=sum(per_query) / 5)
    # every item relevant (grade 3): every order is ideal
    _exact_and_soft(soft_ndcg, scores, torch.full((5, 7), 3.0, dtype=torch.float64),
                    reduction="none", expected=[1.0] * 5)


@pytest.mark.parametrize("y_score, dcg", [
    # all five tied: every position gets the mean grade 2
    pytest.param([0.0] * 5, 2 * sum(_discounts(5)), id="all-tied"),
    # grades 3 and 4 tied on top (mean 3.5), grades 0, 1, 2 tied below (mean 1)
    pytest.param([0.0, 0.0, 0.0, 1.0, 1.0],
                 3.5 * sum(_discounts(5)[:2]) + 1 * sum(_discounts(5)[2:]), id="two-groups"),
])
def test_dcg_ties(y_score, dcg):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_dcg_ties (grades
    # 0, 1, 2, 3, 4; scikit-learn's default ignore_ties=False). softmetrics has NDCG only:
    # the literal DCG over the ideal DCG (the grades sorted, as test_dcg_score's `ideal`).
    # At temperature > 0 softmetrics ranks tied items by mid-ranks rather than averaging the
    # gains (docs/retrieval.md, "Exact values and ties"), so only the exact value is compared.
    ideal = sum(g * d for g, d in zip([4, 3, 2, 1, 0], _discounts(5), strict=True))
    _exact_and_soft(soft_ndcg, _f64([y_score]), _f64([[0, 1, 2, 3, 4]]),
                    expected=[dcg / ideal], reduction="none", converges=False)


def test_ndcg_invariant():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_ndcg_invariant: grades
    # 0..69 in 7 rows of 10 scored by themselves shifted by 1000 (the test's noise, within
    # +-0.2 of grades one apart, keeps that order) give NDCG 1
    grades = torch.arange(70, dtype=torch.float64).reshape(7, 10)
    _exact_and_soft(soft_ndcg, grades + 1000, grades, expected=1.0)


def test_ndcg_refuses_negative_grades():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, test_ndcg_negative_ndarray_error:
    # both raise ValueError
    with pytest.raises(ValueError, match="non-negative"):
        soft_ndcg(_f64([[0.07, 0.31, 0.75, 0.33, 0.27]]),
                  _f64([[-0.89, -0.53, -0.47, 0.39, 0.56]]), temperature=0)


# ---------------------------------------------------------------------------------------
# label_ranking_average_precision_score: the mean over samples of each sample's AP, which is
# soft_retrieval_average_precision with one query per sample (equal for distinct scores)


@pytest.mark.parametrize("y_true, y_score, expected", [
    pytest.param([0, 1], [0.25, 0.75], 1.0, id="01-up"),
    pytest.param([0, 1], [0.75, 0.25], 1 / 2, id="01-down"),
    pytest.param([1, 1], [0.75, 0.25], 1.0, id="11-down"),
    pytest.param([0, 0, 1], [0.25, 0.5, 0.75], 1.0, id="001-up"),
    pytest.param([0, 1, 0], [0.25, 0.5, 0.75], 1 / 2, id="010-up"),
    pytest.param([0, 1, 1], [0.25, 0.5, 0.75], 1.0, id="011-up"),
    pytest.param([1, 0, 0], [0.25, 0.5, 0.75], 1 / 3, id="100-up"),
    pytest.param([1, 0, 1], [0.25, 0.5, 0.75], (2 / 3 + 1 / 1) / 2, id="101-up"),
    pytest.param([1, 1, 0], [0.25, 0.5, 0.75], (2 / 3 + 1 / 2) / 2, id="110-up"),
    pytest.param([0, 0, 1], [0.75, 0.5, 0.25], 1 / 3, id="001-down"),
    pytest.param([0, 1, 0], [0.75, 0.5, 0.25], 1 / 2, id="010-down"),
    pytest.param([0, 1, 1], [0.75, 0.5, 0.25], (1 / 2 + 2 / 3) / 2, id="011-down"),
    pytest.param([1, 0, 0], [0.75, 0.5, 0.25], 1.0, id="100-down"),
    pytest.param([1, 0, 1], [0.75, 0.5, 0.25], (1 + 2 / 3) / 2, id="101-down"),
    pytest.param([1, 1, 0], [0.75, 0.5, 0.25], 1.0, id="110-down"),
    pytest.param([1, 1, 1], [0.75, 0.5, 0.25], 1.0, id="111-down"),
    pytest.param([0, 0, 1], [0.5, 0.75, 0.25], 1 / 3, id="001-mid"),
    pytest.param([0, 1, 0], [0.5, 0.75, 0.25], 1.0, id="010-mid"),
    pytest.param([0, 1, 1], [0.5, 0.75, 0.25], (1 + 2 / 3) / 2, id="011-mid"),
    pytest.param([1, 0, 0], [0.5, 0.75, 0.25], 1 / 2, id="100-mid"),
    pytest.param([1, 0, 1], [0.5, 0.75, 0.25], (1 / 2 + 2 / 3) / 2, id="101-mid"),
    pytest.param([1, 1, 0], [0.5, 0.75, 0.25], 1.0, id="110-mid"),
    pytest.param([1, 1, 1], [0.5, 0.75, 0.25], 1.0, id="111-mid"),
])
def test_lrap_toy_cases(y_true, y_score, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, check_lrap_toy (run by
    # test_label_ranking_avp), its cases without tied scores
    _exact_and_soft(soft_retrieval_average_precision, _f64([y_score]),
                    torch.tensor([y_true]), expected=expected)


@pytest.mark.parametrize("y_true, y_score, expected", [
    # scikit-learn's value first, then softmetrics': a relevant label tied with an
    # irrelevant one has it as half a label above it, relevant labels count in any order
    pytest.param([1, 0], [0.5, 0.5], 2 / 3, id="10-tied"),  # 0.5
    pytest.param([0, 1], [0.5, 0.5], 2 / 3, id="01-tied"),  # 0.5
    pytest.param([1, 1], [0.5, 0.5], 1.0, id="11-tied"),  # 1
    pytest.param([0, 0, 1], [0.25, 0.5, 0.5], 2 / 3, id="001"),  # 0.5
    pytest.param([0, 1, 0], [0.25, 0.5, 0.5], 2 / 3, id="010"),  # 0.5
    pytest.param([0, 1, 1], [0.25, 0.5, 0.5], 1.0, id="011"),  # 1
    pytest.param([1, 0, 0], [0.25, 0.5, 0.5], 1 / 3, id="100"),  # 1/3
    pytest.param([1, 0, 1], [0.25, 0.5, 0.5], (2 / 3 + 2 / 3) / 2, id="101"),  # 7/12
    pytest.param([1, 1, 0], [0.25, 0.5, 0.5], (2 / 3 + 2 / 3) / 2, id="110"),  # 7/12
    pytest.param([1, 1, 1], [0.25, 0.5, 0.5], 1.0, id="111"),  # 1
    pytest.param([1, 1, 0], [0.5, 0.5, 0.5], (1 / 1.5 + 2 / 2.5) / 2, id="110-all-tied"),  # 2/3
    pytest.param([1, 1, 1, 0], [0.5] * 4, (1 / 1.5 + 2 / 2.5 + 3 / 3.5) / 3,
                 id="1110-all-tied"),  # 3/4
])
def test_lrap_ties_follow_the_pairwise_rule(y_true, y_score, expected):
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, check_lrap_toy, "Tie handling":
    # scikit-learn ranks a tied label below every label it is tied with; softmetrics' AP per
    # query keeps the ranking family's tie rule (docs/retrieval.md, "Exact values and ties";
    # docs/ranking.md, "Ties and the exact metric"). Where the two agree (1/3 and the 1s)
    # the case checks that as well. A sigmoid of a zero difference is 1/2, so the soft value
    # has the same limit.
    _exact_and_soft(soft_retrieval_average_precision, _f64([y_score]),
                    torch.tensor([y_true]), expected=expected)


def test_lrap_single_label():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py, check_zero_or_all_relevant_labels,
    # "Degenerate case: only one label": 1. scikit-learn gives the rows without a relevant
    # label 1; softmetrics leaves them out of the mean (docs/retrieval.md, "Exact values
    # and ties", on queries without a relevant item), and the rows with one give 1.
    _exact_and_soft(soft_retrieval_average_precision, _f64([[0.5], [0.5], [0.5], [0.5]]),
                    torch.tensor([[1], [0], [1], [0]]), expected=1.0)


def test_lrap_sample_weighting_zero_labels():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py,
    # test_lrap_sample_weighting_zero_labels: per-sample values 0.5, 0.75 and 1.0 (no
    # relevant label), weights 1, 1, 0: 0.625. softmetrics reports the sample without a
    # relevant label as 0 and leaves it out of the mean (docs/retrieval.md, "Exact values
    # and ties", on queries without a relevant item), which here is that weighting.
    y_true = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])
    y_score = _f64([[0.3, 0.4, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    _exact_and_soft(soft_retrieval_average_precision, y_score, y_true, reduction="none",
                    expected=[0.5, 0.75, 0.0])
    _exact_and_soft(soft_retrieval_average_precision, y_score, y_true, expected=0.625)


def test_lrap_sparse_y_true_case():
    # scikit-learn, sklearn/metrics/tests/test_ranking.py,
    # test_label_ranking_avg_precision_score_should_allow_csr_matrix_for_y_true_input (dense
    # here): 2/3
    _exact_and_soft(soft_retrieval_average_precision, _f64([[0.5, 0.9, 0.6], [0, 0, 1]]),
                    torch.tensor([[1, 0, 0], [0, 0, 1]]), expected=2 / 3)
