"""torchmetrics' own literal cases, replayed on softmetrics at temperature 0.

Each case carries over the inputs and the expected numbers of a torchmetrics 1.9 test
(tests/unittests/...) or, as a second source, of a docstring example
(src/torchmetrics/...), cited next to it. torchmetrics takes labels or probabilities;
softmetrics takes logits, so labels become one-hot logits (multiclass) or logits of +-10
(binary, multilabel: the threshold 0.5 is logit 0), multiclass probabilities are used as
scores as they are (same argmax, same top k) and binary or multilabel probabilities become
their logits. Where softmetrics documents a different rule, the comment names the option
that reproduces torchmetrics or the documented value asserted instead. Where the scores
have no tie and are not random, a temperature of 1e-3 gives nearly the exact value (the
last test: also for a class that nothing predicts, whose precision is 0/0). torchmetrics'
top-k F-beta table and its micro top-k precision/recall cases are in
test_top_k_precision.py.
"""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import ndcg_score

from softmetrics import functional as F

EXACT = 1e-12  # a literal that is exact, or written as a fraction
DEC4 = 5e-5  # a literal printed with 4 decimals
COLD = 1e-3  # a small temperature: the soft value is near the exact one


def _onehot(labels, num_classes: int) -> torch.Tensor:
    """Multiclass labels (N, ...) as logits (N, C, ...): 10 on the predicted class."""
    x = torch.nn.functional.one_hot(torch.tensor(labels), num_classes).double() * 10
    return x.movedim(-1, 1)


def _signed(labels) -> torch.Tensor:
    """0/1 predictions as logits +-10."""
    return torch.tensor(labels, dtype=torch.float64) * 20 - 10


def _logit(probs) -> torch.Tensor:
    return torch.logit(torch.tensor(probs, dtype=torch.float64))


def _scores(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _assert_exact(fn, x, y, expected, tol, *, cold=True, **kw):
    got = fn(x, y, temperature=0, **kw)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=tol,
                               rtol=0)
    if cold:
        near = fn(x, y, temperature=COLD, **kw)
        torch.testing.assert_close(near, got, atol=2e-3, rtol=0)


# ---------------------------------------------------------------------------------------
# accuracy and top-k accuracy: tests/unittests/classification/test_accuracy.py

# `_mc_k_preds`, `_mc_k_target` and `_mc_k_preds2`, `_mc_k_targets2` of test_accuracy.py
# (the same tensors open test_precision_recall.py and test_stat_scores.py)
_P1 = _scores([[0.35, 0.4, 0.25], [0.1, 0.5, 0.4], [0.2, 0.1, 0.7]])
_T1 = torch.tensor([0, 1, 2])
_P2 = _scores([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.9, 0.1, 0.0]])
_T2 = torch.tensor([0, 0, 2])
# `_mc_k_preds3`, `_mc_k_target3` of test_precision_recall.py (`_mc_k_preds2`,
# `_mc_k_target2` of test_stat_scores.py): the second row ties at the first place
_P3 = _scores([[0.1, 0.2, 0.7], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.3, 0.3, 0.4]])
_T3 = torch.tensor([0, 1, 2, 0])


# test_accuracy.py::test_top_k, its rows with literal inputs. torchmetrics' "macro" top-k
# accuracy is the mean recall over the classes present; softmetrics' macro accuracy is
# balanced accuracy, the same mean (docs/classification.md, "Averages").
@pytest.mark.parametrize("k, x, y, average, expected", [
    pytest.param(1, _P1, _T1, "micro", 2 / 3, id="k1-micro"),
    pytest.param(2, _P1, _T1, "micro", 3 / 3, id="k2-micro"),
    pytest.param(1, _P2, _T2, "macro", 1 / 2, id="k1-macro-absent-class"),
    pytest.param(2, _P2, _T2, "macro", 1 / 2, id="k2-macro-absent-class"),
])
def test_top_k_accuracy_literal(k, x, y, average, expected):
    _assert_exact(F.soft_top_k_accuracy, x, y, expected, EXACT, num_classes=3, k=k,
                  average=average)


def _seeded_rows():
    # the same test's other rows draw their inputs with torch's seeded generator
    # (`_mc_k_preds3` .. `_mc_k_preds5`): the recipe is carried over, the numbers are
    # torchmetrics' literals
    y3 = torch.arange(0, 512) % 10
    x3 = torch.rand(512, 10, generator=torch.Generator().manual_seed(42)).double()
    y5 = torch.randint(10, (2, 50), generator=torch.Generator().manual_seed(42))
    x5 = torch.rand(2, 10, 50, generator=torch.Generator().manual_seed(42)).double()
    return x3, y3, x5, y5


@pytest.mark.parametrize("rows, average, expected, tol", [
    pytest.param("512", "macro", 0.5175, DEC4, id="k5-macro-512"),
    pytest.param("512", "micro", 0.5176, DEC4, id="k5-micro-512"),
    pytest.param("1", "macro", 1.0, EXACT, id="k5-macro-first-row"),
    pytest.param("1", "micro", 1.0, EXACT, id="k5-micro-first-row"),
    pytest.param("2x50", "micro", 0.42, EXACT, id="k5-micro-extra-axis"),
])
def test_top_k_accuracy_seeded(rows, average, expected, tol):
    x3, y3, x5, y5 = _seeded_rows()
    x, y = {"512": (x3, y3), "1": (x3[:1], y3[:1]), "2x50": (x5, y5)}[rows]
    # random scores may lie closer than the small temperature: exact value only
    _assert_exact(F.soft_top_k_accuracy, x, y, expected, tol, cold=False, num_classes=10,
                  k=5, average=average)


# test_accuracy.py::test_top_k_with_ignore_index (torchmetrics issue #3068): (2, 4, 2)
# scores, class axis 1 after torchmetrics' transpose(2, 1); micro, ignore_index=0
_P6 = _scores([
    [[0.0, 0.1, 0.5, 0.4], [0.0, 0.2, 0.7, 0.1]],
    [[0.0, 0.4, 0.3, 0.3], [1.0, 0.0, 0.0, 0.0]],
]).transpose(2, 1)
_T6 = torch.tensor([[3, 2], [1, 0]])


@pytest.mark.parametrize("k, expected, tol", [
    pytest.param(1, 0.6667, DEC4, id="k1"),
    pytest.param(2, 1.0, EXACT, id="k2"),
    pytest.param(3, 1.0, EXACT, id="k3"),
    pytest.param(4, 1.0, EXACT, id="k4"),
])
def test_top_k_accuracy_with_ignore_index(k, expected, tol):
    _assert_exact(F.soft_top_k_accuracy, _P6, _T6, expected, tol, num_classes=4, k=k,
                  average="micro", ignore_index=0)


# test_accuracy.py::test_corner_cases (issue #1691) and test_precision_recall.py::
# test_corner_case (issue #1692): a perfect predictor with ignore_index=0. The ignored
# class leaves the macro mean; "none" still reports it, with the value zero_division (0)
# of a class left with no entries (docs/classification.md, "Which classes count").
_PERFECT = [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("fn", [
    pytest.param(F.soft_accuracy, id="accuracy"),
    pytest.param(F.soft_precision, id="precision"),
    pytest.param(F.soft_recall, id="recall"),
])
@pytest.mark.parametrize("average, expected", [
    pytest.param("none", [0.0, 1.0, 1.0], id="none"),
    pytest.param("macro", 1.0, id="macro"),
])
def test_perfect_predictor_with_ignore_index(fn, average, expected):
    _assert_exact(fn, _onehot(_PERFECT, 3), torch.tensor(_PERFECT), expected, EXACT,
                  task="multiclass", num_classes=3, average=average, ignore_index=0)


# ---------------------------------------------------------------------------------------
# precision, recall, F-beta: test_precision_recall.py, test_f_beta.py


# test_precision_recall.py::test_top_k, the rows that test_top_k_precision.py does not
# replay. The k = 2 rows on _P3 are left out: class 0 of the last row ties at the second
# place, which softmetrics counts as half a hit (docs/classification.md, "Top-k
# precision, recall and F-beta"); torchmetrics takes the class torch.topk lists first.
@pytest.mark.parametrize("k, x, y, average, precision, recall, tol", [
    pytest.param(3, _P1, _T1, "micro", 1.0, 1.0, EXACT, id="P1-k3-micro"),
    pytest.param(1, _P2, _T2, "macro", 1 / 3, 1 / 2, EXACT, id="P2-k1-macro"),
    pytest.param(2, _P2, _T2, "macro", 1 / 3, 1 / 2, EXACT, id="P2-k2-macro"),
    pytest.param(3, _P2, _T2, "macro", 1.0, 1.0, EXACT, id="P2-k3-macro"),
    pytest.param(1, _P3, _T3, "macro", 0.1111, 0.3333, DEC4, id="P3-k1-macro"),
    pytest.param(3, _P3, _T3, "macro", 1.0, 1.0, EXACT, id="P3-k3-macro"),
    pytest.param(1, _P3, _T3, "micro", 0.25, 0.25, EXACT, id="P3-k1-micro"),
    pytest.param(3, _P3, _T3, "micro", 1.0, 1.0, EXACT, id="P3-k3-micro"),
    pytest.param(1, _P3, _T3, "weighted", 0.0833, 0.25, DEC4, id="P3-k1-weighted"),
    pytest.param(3, _P3, _T3, "weighted", 1.0, 1.0, EXACT, id="P3-k3-weighted"),
    pytest.param(1, _P3, _T3, "none", [0.0, 0.0, 0.3333], [0.0, 0.0, 1.0], DEC4,
                 id="P3-k1-none"),
    pytest.param(3, _P3, _T3, "none", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], EXACT,
                 id="P3-k3-none"),
])
def test_top_k_precision_recall(k, x, y, average, precision, recall, tol):
    kw = dict(task="multiclass", num_classes=3, top_k=k, average=average)
    # _P3's second row ties at the first place (the argmax is the first maximal class):
    # no convergence check there
    cold = x is not _P3 or k == 3
    _assert_exact(F.soft_precision, x, y, precision, tol, cold=cold, **kw)
    _assert_exact(F.soft_recall, x, y, recall, tol, cold=cold, **kw)


# test_f_beta.py::test_corner_case (issue #1664): the macro F1 skips classes with no
# target and no prediction, whatever num_classes; torchmetrics states 0.77777779 (7/9 in
# float32)
@pytest.mark.parametrize("num_classes", range(3, 9), ids=lambda c: f"C{c}")
def test_macro_f1_whatever_the_number_of_classes(num_classes):
    _assert_exact(F.soft_f1_score, _onehot([2, 1, 0, 1], num_classes),
                  torch.tensor([2, 1, 0, 0]), 0.77777779, 1e-7, task="multiclass",
                  num_classes=num_classes, average="macro")


# ---------------------------------------------------------------------------------------
# Jaccard index: test_jaccard.py


# test_jaccard.py::test_corner_case (issue #1693): class 2 is in neither target nor
# prediction; "none" reports it as zero_division (0), "macro" leaves it out
@pytest.mark.parametrize("pred, target, num_classes, average, expected, tol", [
    pytest.param([0, 1, 0, 1], [0, 1, 0, 0], 3, "none", [2 / 3, 0.5, 0.0], EXACT,
                 id="none"),
    pytest.param([0, 1, 0, 1], [0, 1, 0, 0], 3, "macro", 0.5833333, 5e-8, id="macro"),
    pytest.param([0, 1], [0, 1], 10, "macro", 1.0, EXACT, id="C10-macro"),
    pytest.param([0, 1], [0, 1], 10, "none", [1.0, 1.0] + [0.0] * 8, EXACT, id="C10-none"),
])
def test_jaccard_absent_classes(pred, target, num_classes, average, expected, tol):
    _assert_exact(F.soft_jaccard_index, _onehot(pred, num_classes), torch.tensor(target),
                  expected, tol, task="multiclass", num_classes=num_classes,
                  average=average)


# test_jaccard.py::test_jaccard_index_zero_division (issue #2658): torchmetrics reduces
# binary confusion matrices [[TN, FP], [FN, TP]]; here each is realised by labels
@pytest.mark.parametrize("pred, target, zero_division, expected", [
    # [[4, 0], [0, 0]]: all background, 0/0
    pytest.param([0, 0, 0, 0], [0, 0, 0, 0], 0.0, 0.0, id="empty-zd0"),
    pytest.param([0, 0, 0, 0], [0, 0, 0, 0], 1.0, 1.0, id="empty-zd1"),
    # [[2, 1], [1, 1]]
    pytest.param([0, 0, 1, 0, 1], [0, 0, 0, 1, 1], 0.0, 1 / 3, id="some-foreground"),
])
def test_binary_jaccard_zero_division(pred, target, zero_division, expected):
    _assert_exact(F.soft_jaccard_index, _signed(pred), torch.tensor(target), expected, EXACT,
                  task="binary", zero_division=zero_division)


# ---------------------------------------------------------------------------------------
# Matthews correlation: test_matthews_corrcoef.py


def test_mcc_zero_case_in_multiclass():
    # test_matthews_corrcoef.py::test_zero_case_in_multiclass: a target of one class
    _assert_exact(F.soft_matthews_corrcoef, _onehot([0, 1, 2], 3), torch.tensor([0, 0, 0]),
                  0.0, EXACT, task="multiclass", num_classes=3)


# test_matthews_corrcoef.py::test_corner_cases. Every case has a constant marginal, so
# MCC is 0/0, which softmetrics maps to `zero_division` (0 by default, in [0, 1]; the
# docstring of soft_matthews_corrcoef, "0/0 gives zero_division"). torchmetrics returns 1
# for a perfect constant prediction (softmetrics: zero_division=1 gives it) and 0 where
# one marginal is constant and the other is not (softmetrics' default).
_FIVE = [0] * 5 + [1] * 5


@pytest.mark.parametrize("pred, target, zero_division, expected", [
    pytest.param([0] * 10, [0] * 10, 1.0, 1.0, id="all-negative-right"),
    pytest.param([1] * 10, [1] * 10, 1.0, 1.0, id="all-positive-right"),
    pytest.param([0] * 10, _FIVE, 0.0, 0.0, id="constant-prediction"),
    pytest.param(_FIVE[::-1], [0] * 10, 0.0, 0.0, id="constant-target"),
])
def test_mcc_binary_corner_cases(pred, target, zero_division, expected):
    _assert_exact(F.soft_matthews_corrcoef, _signed(pred), torch.tensor(target), expected,
                  EXACT, task="binary", zero_division=zero_division)


@pytest.mark.parametrize("value", [0, 1], ids=["zeros", "ones"])
def test_mcc_multilabel_perfect_constant(value):
    # the multilabel rows of the same test (NUM_CLASSES = 5 labels): torchmetrics pools
    # the labels (softmetrics' multilabel "micro", its default) and returns 1
    labels = [[value] * 5] * 10
    _assert_exact(F.soft_matthews_corrcoef, _signed(labels), torch.tensor(labels), 1.0,
                  EXACT, task="multilabel", num_classes=5, zero_division=1.0)


@pytest.mark.parametrize("task", ["binary", "multilabel"])
@pytest.mark.parametrize("pred", [0, 1], ids=["pred-zeros", "pred-ones"])
def test_mcc_all_wrong_constant_is_zero_division(task, pred):
    # the same test's all-wrong rows (zeros against ones and back): torchmetrics returns
    # -1, which no zero_division in [0, 1] gives; softmetrics returns the documented
    # zero_division of 0/0
    shape = (10,) if task == "binary" else (10, 5)
    x = _signed(torch.full(shape, pred).tolist())
    y = torch.full(shape, 1 - pred)
    kw = dict(task=task) if task == "binary" else dict(task=task, num_classes=5)
    for zero_division in (0.0, 1.0):
        _assert_exact(F.soft_matthews_corrcoef, x, y, zero_division, EXACT,
                      zero_division=zero_division, **kw)


# ---------------------------------------------------------------------------------------
# stat scores: test_stat_scores.py::test_top_k_multiclass, its top_k=1 rows. torchmetrics
# gives [tp, fp, tn, fn, support] summed ("micro"), averaged ("macro"), weighted by
# support ("weighted") or per class (None); softmetrics gives the per-class counts.


def _stat_rows(s) -> torch.Tensor:
    """[tp, fp, tn, fn, support] per class, the layout of torchmetrics' stat scores."""
    return torch.stack([s.tp, s.fp, s.tn, s.fn, s.tp + s.fn], dim=-1)


def _reduce_rows(rows: torch.Tensor, average: str | None) -> torch.Tensor:
    if average == "micro":
        return rows.sum(-2)
    if average == "macro":
        return rows.mean(-2)
    if average == "weighted":
        support = rows[..., 4:5]
        return (rows * support).sum(-2) / support.sum(-2)
    return rows


@pytest.mark.parametrize("x, y, average, expected, tol", [
    pytest.param(_P1, _T1, "micro", [2, 1, 5, 1, 3], EXACT, id="P1-micro"),
    pytest.param(_P1, _T1, None, [[0, 1, 1], [0, 1, 0], [2, 1, 2], [1, 0, 0], [1, 1, 1]],
                 EXACT, id="P1-none"),
    pytest.param(_P3, _T3, "macro", [0.3333, 1.0000, 1.6667, 1.0000, 1.3333], DEC4,
                 id="P3-macro"),
    pytest.param(_P3, _T3, "micro", [1, 3, 5, 3, 4], EXACT, id="P3-micro"),
    pytest.param(_P3, _T3, "weighted", [0.2500, 1.0000, 1.5000, 1.2500, 1.5000], DEC4,
                 id="P3-weighted"),
    pytest.param(_P3, _T3, None, [[0, 0, 1], [1, 0, 2], [1, 3, 1], [2, 1, 0], [2, 1, 1]],
                 EXACT, id="P3-none"),
])
def test_stat_scores_top_1(x, y, average, expected, tol):
    s = F.soft_stat_scores(x, y, task="multiclass", num_classes=3, temperature=0)
    got = _reduce_rows(_stat_rows(s), average)
    want = torch.tensor(expected, dtype=torch.float64)
    if average is None:
        want = want.T  # torchmetrics' table lists one statistic per row
    torch.testing.assert_close(got, want, atol=tol, rtol=0)


# ---------------------------------------------------------------------------------------
# retrieval: tests/unittests/retrieval


@pytest.mark.parametrize("k", [1, 3, 5])
def test_ndcg_tied_scores(k):
    # test_ndcg.py::test_corner_case_with_tied_scores (issue #2022): torchmetrics asserts
    # scikit-learn's ndcg_score, which averages the gains of tied items; softmetrics
    # averages over every order of the tied items, the same value (docs/retrieval.md,
    # "Exact values and ties")
    target = torch.tensor([[10, 0, 0, 1, 5]])
    scores = _scores([[0.1, 0, 0, 0, 0.1]])
    got = F.soft_ndcg(scores, target, k=k, temperature=0)
    assert got.item() == pytest.approx(ndcg_score(target.numpy(), scores.numpy(), k=k),
                                       abs=EXACT)


# test_mrr.py, test_precision.py, test_recall.py and test_map.py::
# test_*_all_zero_predictions_returns_zero: scores [0, 0, 0], target [1, 0, 1].
# torchmetrics returns 0 because it counts only items with a positive score as retrieved;
# softmetrics ranks scores of any sign and averages over the orders of tied items
# (docs/retrieval.md, "torchmetrics' retrieval functions" and "Exact values and ties"):
# RR is 1 unless the irrelevant item comes first (1/3 of the orders: 1/2), AP counts the
# tied irrelevant item as half an item above each relevant one, (1/1.5 + 2/2.5)/2.
# torchmetrics' default top_k is every item, here k = 3.
@pytest.mark.parametrize("fn, kw, expected", [
    pytest.param(F.soft_reciprocal_rank, {}, 5 / 6, id="mrr"),
    pytest.param(F.soft_precision_at_k, {"k": 3}, 2 / 3, id="precision"),
    pytest.param(F.soft_recall_at_k, {"k": 3}, 1.0, id="recall"),
    pytest.param(F.soft_retrieval_average_precision, {}, 11 / 15, id="map"),
])
def test_all_zero_scores(fn, kw, expected):
    _assert_exact(fn, _scores([[0.0, 0.0, 0.0]]), torch.tensor([[1, 0, 1]]), expected, EXACT,
                  cold=False, **kw)


# ---------------------------------------------------------------------------------------
# docstring examples of torchmetrics' functional classification metrics
# (src/torchmetrics/functional/classification/*.py), the second source. Each docstring
# shows the same numbers for labels and for probabilities; both are replayed. torchmetrics'
# per-task functions default to average="macro", its task wrappers (accuracy, precision,
# fbeta_score, ...) to "micro"; each case passes the average torchmetrics used.

_BIN_T = torch.tensor([0, 1, 0, 1, 0, 1])
_BIN_P = [0, 0, 1, 1, 0, 1]
_BIN_PROB = [0.11, 0.22, 0.84, 0.73, 0.33, 0.92]
# (N, d1, d2) binary, or (N, C, d) multilabel with 3 labels
_MD_T = torch.tensor([[[0, 1], [1, 0], [0, 1]], [[1, 1], [0, 0], [1, 0]]])
_MD_PROB = [[[0.59, 0.91], [0.91, 0.99], [0.63, 0.04]],
            [[0.38, 0.04], [0.86, 0.780], [0.45, 0.37]]]
_MC_T = torch.tensor([2, 1, 0, 0])
_MC_P = [2, 1, 0, 1]
_MC_PROB = [[0.16, 0.26, 0.58], [0.22, 0.61, 0.17], [0.71, 0.09, 0.20], [0.05, 0.82, 0.13]]
# (N, d1, d2) multiclass labels of 3 classes
_MCMD_T = torch.tensor([[[0, 1], [2, 1], [0, 2]], [[1, 1], [2, 0], [1, 2]]])
_MCMD_P = [[[0, 2], [2, 0], [0, 1]], [[2, 2], [2, 1], [1, 0]]]
_ML_T = torch.tensor([[0, 1, 0], [1, 0, 1]])
_ML_P = [[0, 0, 1], [1, 0, 1]]
_ML_PROB = [[0.11, 0.22, 0.84], [0.73, 0.33, 0.92]]
# the binary examples of jaccard.py, matthews_corrcoef.py and cohen_kappa.py
_J_T = torch.tensor([1, 1, 0, 0])
_J_P = [0, 1, 0, 0]
_J_PROB = [0.35, 0.85, 0.48, 0.01]

_BIN = dict(task="binary")
_MC = dict(task="multiclass", num_classes=3)
_ML = dict(task="multilabel", num_classes=3)
_SW = dict(multidim_average="samplewise")


def _fbeta2(*args, **kw):
    return F.soft_fbeta_score(*args, beta=2.0, **kw)


def _fbeta05(*args, **kw):
    return F.soft_fbeta_score(*args, beta=0.5, **kw)


def _labels_and_probs(name, fn, kw, labels, probs, target, expected, tol):
    """The two examples of a docstring: labels, then probabilities, same numbers."""
    if kw["task"] == "multiclass":
        as_labels, as_scores = _onehot(labels, kw["num_classes"]), _scores(probs)
    else:
        as_labels, as_scores = _signed(labels), _logit(probs)
    return [pytest.param(fn, as_labels, target, kw, expected, tol, id=f"{name}-labels"),
            pytest.param(fn, as_scores, target, kw, expected, tol, id=f"{name}-probs")]


_SAMPLEWISE_MD = [
    # the "multidim tensors" examples: binary (N, 3, 2) probabilities, multiclass
    # (N, 3, 2) labels, multilabel (N, 3 labels, 2) probabilities, all samplewise
    ("binary_accuracy", F.soft_accuracy, _BIN, "binary", [0.3333, 0.1667]),
    ("binary_precision", F.soft_precision, _BIN, "binary", [0.4000, 0.0000]),
    ("binary_recall", F.soft_recall, _BIN, "binary", [0.6667, 0.0000]),
    ("binary_fbeta_score", _fbeta2, _BIN, "binary", [0.5882, 0.0000]),
    ("binary_f1_score", F.soft_f1_score, _BIN, "binary", [0.5000, 0.0000]),
    ("multiclass_accuracy", F.soft_accuracy, dict(_MC, average="macro"), "multiclass",
     [0.5000, 0.2778]),
    ("multiclass_accuracy-none", F.soft_accuracy, dict(_MC, average="none"), "multiclass",
     [[1.0000, 0.0000, 0.5000], [0.0000, 0.3333, 0.5000]]),
    ("multiclass_precision", F.soft_precision, _MC, "multiclass", [0.3889, 0.2778]),
    ("multiclass_precision-none", F.soft_precision, dict(_MC, average="none"), "multiclass",
     [[0.6667, 0.0000, 0.5000], [0.0000, 0.5000, 0.3333]]),
    ("multiclass_recall", F.soft_recall, _MC, "multiclass", [0.5000, 0.2778]),
    ("multiclass_recall-none", F.soft_recall, dict(_MC, average="none"), "multiclass",
     [[1.0000, 0.0000, 0.5000], [0.0000, 0.3333, 0.5000]]),
    ("multiclass_fbeta_score", _fbeta2, _MC, "multiclass", [0.4697, 0.2706]),
    ("multiclass_fbeta_score-none", _fbeta2, dict(_MC, average="none"), "multiclass",
     [[0.9091, 0.0000, 0.5000], [0.0000, 0.3571, 0.4545]]),
    ("multiclass_f1_score", F.soft_f1_score, _MC, "multiclass", [0.4333, 0.2667]),
    ("multiclass_f1_score-none", F.soft_f1_score, dict(_MC, average="none"), "multiclass",
     [[0.8000, 0.0000, 0.5000], [0.0000, 0.4000, 0.4000]]),
    ("multilabel_accuracy", F.soft_accuracy, dict(_ML, average="macro"), "multilabel",
     [0.3333, 0.1667]),
    ("multilabel_accuracy-none", F.soft_accuracy, dict(_ML, average="none"), "multilabel",
     [[0.5000, 0.5000, 0.0000], [0.0000, 0.0000, 0.5000]]),
    # multilabel_precision: test_soft_precision_where_a_target_class_is_never_predicted
    ("multilabel_recall", F.soft_recall, _ML, "multilabel", [0.6667, 0.0000]),
    ("multilabel_recall-none", F.soft_recall, dict(_ML, average="none"), "multilabel",
     [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
    ("multilabel_fbeta_score", _fbeta2, _ML, "multilabel", [0.5556, 0.0000]),
    ("multilabel_fbeta_score-none", _fbeta2, dict(_ML, average="none"), "multilabel",
     [[0.8333, 0.8333, 0.0000], [0.0000, 0.0000, 0.0000]]),
    ("multilabel_f1_score", F.soft_f1_score, _ML, "multilabel", [0.4444, 0.0000]),
    ("multilabel_f1_score-none", F.soft_f1_score, dict(_ML, average="none"), "multilabel",
     [[0.6667, 0.6667, 0.0000], [0.0000, 0.0000, 0.0000]]),
]

_DOCSTRING_CASES = [
    # accuracy.py
    *_labels_and_probs("binary_accuracy", F.soft_accuracy, _BIN, _BIN_P, _BIN_PROB, _BIN_T,
                       0.6667, DEC4),
    *_labels_and_probs("multiclass_accuracy", F.soft_accuracy, dict(_MC, average="macro"),
                       _MC_P, _MC_PROB, _MC_T, 0.8333, DEC4),
    *_labels_and_probs("multiclass_accuracy-none", F.soft_accuracy,
                       dict(_MC, average="none"), _MC_P, _MC_PROB, _MC_T,
                       [0.5000, 1.0000, 1.0000], DEC4),
    *_labels_and_probs("multilabel_accuracy", F.soft_accuracy, dict(_ML, average="macro"),
                       _ML_P, _ML_PROB, _ML_T, 0.6667, DEC4),
    *_labels_and_probs("multilabel_accuracy-none", F.soft_accuracy,
                       dict(_ML, average="none"), _ML_P, _ML_PROB, _ML_T,
                       [1.0000, 0.5000, 0.5000], DEC4),
    pytest.param(F.soft_accuracy, _onehot([0, 2, 1, 3], 4), torch.tensor([0, 1, 2, 3]),
                 dict(task="multiclass", num_classes=4, average="micro"), 0.5000, DEC4,
                 id="accuracy-wrapper"),
    # precision_recall.py
    *_labels_and_probs("binary_precision", F.soft_precision, _BIN, _BIN_P, _BIN_PROB,
                       _BIN_T, 0.6667, DEC4),
    *_labels_and_probs("multiclass_precision", F.soft_precision, _MC, _MC_P, _MC_PROB,
                       _MC_T, 0.8333, DEC4),
    *_labels_and_probs("multiclass_precision-none", F.soft_precision,
                       dict(_MC, average="none"), _MC_P, _MC_PROB, _MC_T,
                       [1.0000, 0.5000, 1.0000], DEC4),
    *_labels_and_probs("multilabel_precision", F.soft_precision, _ML, _ML_P, _ML_PROB,
                       _ML_T, 0.5000, DEC4),
    *_labels_and_probs("multilabel_precision-none", F.soft_precision,
                       dict(_ML, average="none"), _ML_P, _ML_PROB, _ML_T,
                       [1.0000, 0.0000, 0.5000], DEC4),
    *_labels_and_probs("binary_recall", F.soft_recall, _BIN, _BIN_P, _BIN_PROB, _BIN_T,
                       0.6667, DEC4),
    *_labels_and_probs("multiclass_recall", F.soft_recall, _MC, _MC_P, _MC_PROB, _MC_T,
                       0.8333, DEC4),
    *_labels_and_probs("multiclass_recall-none", F.soft_recall, dict(_MC, average="none"),
                       _MC_P, _MC_PROB, _MC_T, [0.5000, 1.0000, 1.0000], DEC4),
    *_labels_and_probs("multilabel_recall", F.soft_recall, _ML, _ML_P, _ML_PROB, _ML_T,
                       0.6667, DEC4),
    *_labels_and_probs("multilabel_recall-none", F.soft_recall, dict(_ML, average="none"),
                       _ML_P, _ML_PROB, _ML_T, [1.0, 0.0, 1.0], EXACT),
    # the precision and recall wrappers: preds [2, 0, 2, 1] against [1, 1, 2, 0]
    pytest.param(F.soft_precision, _onehot([2, 0, 2, 1], 3), torch.tensor([1, 1, 2, 0]),
                 dict(_MC, average="macro"), 0.1667, DEC4, id="precision-wrapper-macro"),
    pytest.param(F.soft_precision, _onehot([2, 0, 2, 1], 3), torch.tensor([1, 1, 2, 0]),
                 dict(_MC, average="micro"), 0.2500, DEC4, id="precision-wrapper-micro"),
    pytest.param(F.soft_recall, _onehot([2, 0, 2, 1], 3), torch.tensor([1, 1, 2, 0]),
                 dict(_MC, average="macro"), 0.3333, DEC4, id="recall-wrapper-macro"),
    pytest.param(F.soft_recall, _onehot([2, 0, 2, 1], 3), torch.tensor([1, 1, 2, 0]),
                 dict(_MC, average="micro"), 0.2500, DEC4, id="recall-wrapper-micro"),
    # f_beta.py
    *_labels_and_probs("binary_fbeta_score", _fbeta2, _BIN, _BIN_P, _BIN_PROB, _BIN_T,
                       0.6667, DEC4),
    *_labels_and_probs("multiclass_fbeta_score", _fbeta2, _MC, _MC_P, _MC_PROB, _MC_T,
                       0.7963, DEC4),
    *_labels_and_probs("multiclass_fbeta_score-none", _fbeta2, dict(_MC, average="none"),
                       _MC_P, _MC_PROB, _MC_T, [0.5556, 0.8333, 1.0000], DEC4),
    *_labels_and_probs("multilabel_fbeta_score", _fbeta2, _ML, _ML_P, _ML_PROB, _ML_T,
                       0.6111, DEC4),
    *_labels_and_probs("multilabel_fbeta_score-none", _fbeta2, dict(_ML, average="none"),
                       _ML_P, _ML_PROB, _ML_T, [1.0000, 0.0000, 0.8333], DEC4),
    *_labels_and_probs("binary_f1_score", F.soft_f1_score, _BIN, _BIN_P, _BIN_PROB, _BIN_T,
                       0.6667, DEC4),
    *_labels_and_probs("multiclass_f1_score", F.soft_f1_score, _MC, _MC_P, _MC_PROB, _MC_T,
                       0.7778, DEC4),
    *_labels_and_probs("multiclass_f1_score-none", F.soft_f1_score,
                       dict(_MC, average="none"), _MC_P, _MC_PROB, _MC_T,
                       [0.6667, 0.6667, 1.0000], DEC4),
    *_labels_and_probs("multilabel_f1_score", F.soft_f1_score, _ML, _ML_P, _ML_PROB, _ML_T,
                       0.5556, DEC4),
    *_labels_and_probs("multilabel_f1_score-none", F.soft_f1_score,
                       dict(_ML, average="none"), _ML_P, _ML_PROB, _ML_T,
                       [1.0000, 0.0000, 0.6667], DEC4),
    # the fbeta_score and f1_score wrappers (average "micro")
    pytest.param(_fbeta05, _onehot([0, 2, 1, 0, 0, 1], 3), torch.tensor([0, 1, 2, 0, 1, 2]),
                 dict(_MC, average="micro"), 0.3333, DEC4, id="fbeta_score-wrapper"),
    pytest.param(F.soft_f1_score, _onehot([0, 2, 1, 0, 0, 1], 3),
                 torch.tensor([0, 1, 2, 0, 1, 2]), dict(_MC, average="micro"), 0.3333, DEC4,
                 id="f1_score-wrapper"),
    # jaccard.py
    *_labels_and_probs("binary_jaccard_index", F.soft_jaccard_index, _BIN, _J_P, _J_PROB,
                       _J_T, 0.5000, DEC4),
    *_labels_and_probs("multiclass_jaccard_index", F.soft_jaccard_index, _MC, _MC_P,
                       _MC_PROB, _MC_T, 0.6667, DEC4),
    *_labels_and_probs("multilabel_jaccard_index", F.soft_jaccard_index, _ML, _ML_P,
                       _ML_PROB, _ML_T, 0.5000, DEC4),
    # matthews_corrcoef.py (multilabel: torchmetrics pools the labels, softmetrics'
    # multilabel "micro", its default)
    *_labels_and_probs("binary_matthews_corrcoef", F.soft_matthews_corrcoef, _BIN, _J_P,
                       _J_PROB, _J_T, 0.5774, DEC4),
    *_labels_and_probs("multiclass_matthews_corrcoef", F.soft_matthews_corrcoef, _MC, _MC_P,
                       _MC_PROB, _MC_T, 0.7000, DEC4),
    *_labels_and_probs("multilabel_matthews_corrcoef", F.soft_matthews_corrcoef, _ML, _ML_P,
                       _ML_PROB, _ML_T, 0.3333, DEC4),
    pytest.param(F.soft_matthews_corrcoef, _onehot(_J_P, 2), _J_T,
                 dict(task="multiclass", num_classes=2), 0.5774, DEC4,
                 id="matthews_corrcoef-wrapper"),
    # cohen_kappa.py
    *_labels_and_probs("binary_cohen_kappa", F.soft_cohen_kappa, _BIN, _J_P, _J_PROB, _J_T,
                       0.5000, DEC4),
    *_labels_and_probs("multiclass_cohen_kappa", F.soft_cohen_kappa, _MC, _MC_P, _MC_PROB,
                       _MC_T, 0.6364, DEC4),
    pytest.param(F.soft_cohen_kappa, _onehot(_J_P, 2), _J_T,
                 dict(task="multiclass", num_classes=2), 0.5000, DEC4,
                 id="cohen_kappa-wrapper"),
    # exact_match.py
    *_labels_and_probs("multilabel_exact_match", F.soft_exact_match, _ML, _ML_P, _ML_PROB,
                       _ML_T, 0.5000, DEC4),
    pytest.param(F.soft_exact_match, _onehot(
        [[[0, 1], [2, 1], [0, 2]], [[2, 2], [2, 1], [1, 0]]], 3), _MCMD_T, _MC, 0.5000, DEC4,
        id="multiclass_exact_match-global"),
    pytest.param(F.soft_exact_match, _onehot(
        [[[0, 1], [2, 1], [0, 2]], [[2, 2], [2, 1], [1, 0]]], 3), _MCMD_T, dict(_MC, **_SW),
        [1.0, 0.0], EXACT, id="multiclass_exact_match-samplewise"),
    pytest.param(F.soft_exact_match, _logit(_MD_PROB), _MD_T, dict(_ML, **_SW), [0.0, 0.0],
                 EXACT, id="multilabel_exact_match-samplewise"),
    # the "multidim tensors" examples, samplewise
    *[pytest.param(fn, _onehot(_MCMD_P, 3) if kind == "multiclass" else _logit(_MD_PROB),
                   _MCMD_T if kind == "multiclass" else _MD_T, dict(kw, **_SW), expected,
                   DEC4, id=f"{name}-samplewise")
      for name, fn, kw, kind, expected in _SAMPLEWISE_MD],
]


@pytest.mark.parametrize("fn, x, y, kw, expected, tol", _DOCSTRING_CASES)
def test_docstring_examples(fn, x, y, kw, expected, tol):
    _assert_exact(fn, x, y, expected, tol, **kw)


def test_docstring_top_k_accuracy():
    # accuracy.py, the accuracy wrapper's top_k=2 example (average "micro")
    x = _scores([[0.1, 0.9, 0], [0.3, 0.1, 0.6], [0.2, 0.5, 0.3]])
    _assert_exact(F.soft_top_k_accuracy, x, torch.tensor([0, 1, 2]), 0.6667, DEC4,
                  num_classes=3, k=2, average="micro")


# stat_scores.py: [tp, fp, tn, fn, support]
@pytest.mark.parametrize("x, y, kw, average, expected", [
    pytest.param(_signed(_BIN_P), _BIN_T, _BIN, "micro", [2, 1, 2, 1, 3],
                 id="binary-labels"),
    pytest.param(_logit(_BIN_PROB), _BIN_T, _BIN, "micro", [2, 1, 2, 1, 3],
                 id="binary-probs"),
    pytest.param(_logit(_MD_PROB), _MD_T, dict(_BIN, **_SW), "micro",
                 [[2, 3, 0, 1, 3], [0, 2, 1, 3, 3]], id="binary-samplewise"),
    pytest.param(_onehot(_MC_P, 3), _MC_T, _MC, "micro", [3, 1, 7, 1, 4],
                 id="multiclass-labels-micro"),
    pytest.param(_scores(_MC_PROB), _MC_T, _MC, "micro", [3, 1, 7, 1, 4],
                 id="multiclass-probs-micro"),
    pytest.param(_onehot(_MC_P, 3), _MC_T, _MC, None,
                 [[1, 0, 2, 1, 2], [1, 1, 2, 0, 1], [1, 0, 3, 0, 1]],
                 id="multiclass-labels-none"),
    pytest.param(_scores(_MC_PROB), _MC_T, _MC, None,
                 [[1, 0, 2, 1, 2], [1, 1, 2, 0, 1], [1, 0, 3, 0, 1]],
                 id="multiclass-probs-none"),
    pytest.param(_onehot(_MCMD_P, 3), _MCMD_T, dict(_MC, **_SW), "micro",
                 [[3, 3, 9, 3, 6], [2, 4, 8, 4, 6]], id="multiclass-samplewise-micro"),
    pytest.param(_onehot(_MCMD_P, 3), _MCMD_T, dict(_MC, **_SW), None,
                 [[[2, 1, 3, 0, 2], [0, 1, 3, 2, 2], [1, 1, 3, 1, 2]],
                  [[0, 1, 4, 1, 1], [1, 1, 2, 2, 3], [1, 2, 2, 1, 2]]],
                 id="multiclass-samplewise-none"),
    pytest.param(_signed(_ML_P), _ML_T, _ML, "micro", [2, 1, 2, 1, 3],
                 id="multilabel-labels-micro"),
    pytest.param(_logit(_ML_PROB), _ML_T, _ML, "micro", [2, 1, 2, 1, 3],
                 id="multilabel-probs-micro"),
    pytest.param(_signed(_ML_P), _ML_T, _ML, None,
                 [[1, 0, 1, 0, 1], [0, 0, 1, 1, 1], [1, 1, 0, 0, 1]],
                 id="multilabel-labels-none"),
    pytest.param(_logit(_ML_PROB), _ML_T, _ML, None,
                 [[1, 0, 1, 0, 1], [0, 0, 1, 1, 1], [1, 1, 0, 0, 1]],
                 id="multilabel-probs-none"),
    pytest.param(_logit(_MD_PROB), _MD_T, dict(_ML, **_SW), "micro",
                 [[2, 3, 0, 1, 3], [0, 2, 1, 3, 3]], id="multilabel-samplewise-micro"),
    pytest.param(_logit(_MD_PROB), _MD_T, dict(_ML, **_SW), None,
                 [[[1, 1, 0, 0, 1], [1, 1, 0, 0, 1], [0, 1, 0, 1, 1]],
                  [[0, 0, 0, 2, 2], [0, 2, 0, 0, 0], [0, 0, 1, 1, 1]]],
                 id="multilabel-samplewise-none"),
    # the stat_scores wrapper: preds [1, 0, 2, 1] against [1, 1, 2, 0]
    pytest.param(_onehot([1, 0, 2, 1], 3), torch.tensor([1, 1, 2, 0]), _MC, "micro",
                 [2, 2, 6, 2, 4], id="wrapper-micro"),
    pytest.param(_onehot([1, 0, 2, 1], 3), torch.tensor([1, 1, 2, 0]), _MC, None,
                 [[0, 1, 2, 1, 1], [1, 1, 1, 1, 2], [1, 0, 3, 0, 1]], id="wrapper-none"),
])
def test_docstring_stat_scores(x, y, kw, average, expected):
    rows = _stat_rows(F.soft_stat_scores(x, y, temperature=0, **kw))
    want = torch.tensor(expected, dtype=torch.float64)
    if kw["task"] == "binary":
        rows = rows.squeeze(-2)  # one class: torchmetrics' binary rows
    else:
        rows = _reduce_rows(rows, average)
    torch.testing.assert_close(rows, want, atol=EXACT, rtol=0)
    near = _stat_rows(F.soft_stat_scores(x, y, temperature=COLD, **kw))
    torch.testing.assert_close(near.double(), _stat_rows(
        F.soft_stat_scores(x, y, temperature=0, **kw)), atol=1e-3, rtol=0)


# ---------------------------------------------------------------------------------------
# docstring examples of torchmetrics' retrieval metrics, the second source: the functional
# ones (src/torchmetrics/functional/retrieval/*.py) rank one query; the modules'
# (src/torchmetrics/retrieval/*.py) rank two queries of 3 and 4 items, given by `indexes`
# [0, 0, 0, 1, 1, 1, 1]: here a (2, 4) matrix whose first row is padded by an item with
# target `ignore_index` (docs/retrieval.md, "Masking"). Every score is positive, so
# torchmetrics' rule of counting only positive scores changes nothing.

_ONE_SCORES = _scores([[0.2, 0.3, 0.5]])
_TWO_SCORES = _scores([[0.2, 0.3, 0.5, 0.0], [0.1, 0.3, 0.5, 0.2]])
_TWO_TARGET = torch.tensor([[0, 0, 1, -1], [0, 1, 0, 1]])


@pytest.mark.parametrize("fn, x, y, kw, expected", [
    pytest.param(F.soft_retrieval_average_precision, _ONE_SCORES, torch.tensor([[1, 0, 1]]),
                 {}, 0.8333, id="retrieval_average_precision"),
    pytest.param(F.soft_precision_at_k, _ONE_SCORES, torch.tensor([[1, 0, 1]]), {"k": 2},
                 0.5000, id="retrieval_precision"),
    pytest.param(F.soft_recall_at_k, _ONE_SCORES, torch.tensor([[1, 0, 1]]), {"k": 2},
                 0.5000, id="retrieval_recall"),
    pytest.param(F.soft_reciprocal_rank, _ONE_SCORES, torch.tensor([[0, 1, 0]]), {},
                 0.5000, id="retrieval_reciprocal_rank"),
    pytest.param(F.soft_ndcg, _scores([[0.1, 0.2, 0.3, 4, 70]]),
                 torch.tensor([[10, 0, 0, 1, 5]]), {}, 0.6957, id="retrieval_normalized_dcg"),
    pytest.param(F.soft_retrieval_average_precision, _TWO_SCORES, _TWO_TARGET,
                 {"ignore_index": -1}, 0.7917, id="RetrievalMAP"),
    pytest.param(F.soft_ndcg, _TWO_SCORES, _TWO_TARGET, {"ignore_index": -1}, 0.8467,
                 id="RetrievalNormalizedDCG"),
    pytest.param(F.soft_precision_at_k, _TWO_SCORES, _TWO_TARGET,
                 {"k": 2, "ignore_index": -1}, 0.5000, id="RetrievalPrecision"),
    pytest.param(F.soft_recall_at_k, _TWO_SCORES, _TWO_TARGET, {"k": 2, "ignore_index": -1},
                 0.7500, id="RetrievalRecall"),
    pytest.param(F.soft_reciprocal_rank, _TWO_SCORES, _TWO_TARGET, {"ignore_index": -1},
                 0.7500, id="RetrievalMRR"),
])
def test_docstring_retrieval(fn, x, y, kw, expected):
    _assert_exact(fn, x, y, expected, DEC4, **kw)


# The samplewise example of multilabel_precision (precision_recall.py). The exact values
# are torchmetrics'. In the second sample no entry of labels 0 and 2 is predicted although
# both are in the target: the exact precision is 0/0, zero_division (0). At a small
# temperature the predicted mass of such a label is tiny, and TP / (TP + FP) of the tiny
# masses alone is 1 where the least unlikely prediction is a positive (label 2:
# probabilities 0.45 and 0.37, targets 1 and 0); the soft precision weighs that ratio by
# min(2 pred, 1) and so approaches the exact value (docs: "A class that nothing predicts").
@pytest.mark.parametrize("average, expected", [
    pytest.param("macro", [0.3333, 0.0000], id="macro"),
    pytest.param("none", [[0.5000, 0.5000, 0.0000], [0.0000, 0.0000, 0.0000]], id="none"),
])
def test_soft_precision_where_a_target_class_is_never_predicted(average, expected):
    kw = dict(_ML, average=average, **_SW)
    x = _logit(_MD_PROB)
    _assert_exact(F.soft_precision, x, _MD_T, expected, DEC4, cold=False, **kw)
    exact = F.soft_precision(x, _MD_T, temperature=0, **kw)
    for temperature in (1e-2, COLD):
        near = F.soft_precision(x, _MD_T, temperature=temperature, **kw)
        torch.testing.assert_close(near, exact, atol=2e-3, rtol=0)


def test_a_batch_with_every_entry_ignored_as_the_classification_page_says():
    """The table of classification.md ("no entries at all"): softmetrics gives
    `zero_division` whatever the average; torchmetrics 1.9 does for "micro" and binary
    tasks, and gives 0 for multiclass "macro" and "weighted", multilabel "weighted" and
    accuracy; scikit-learn refuses an empty input."""
    import warnings

    from sklearn.metrics import precision_score
    from torchmetrics.functional import classification as tm

    x, y = torch.tensor([[2.0, 1.0, 1.0]]), torch.tensor([-1])
    xl, yl = torch.tensor([[0.9, 0.1]]), torch.tensor([[-1, -1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for average, expected in (("micro", 1.0), ("macro", 0.0), ("weighted", 0.0)):
            assert float(tm.multiclass_precision(x, y, num_classes=3, average=average,
                                                 ignore_index=-1, zero_division=1)) == expected
            assert float(F.soft_precision(x, y, task="multiclass", num_classes=3,
                                          average=average, ignore_index=-1, zero_division=1,
                                          temperature=0)) == 1.0
        assert float(tm.binary_precision(torch.tensor([0.9]), torch.tensor([-1]),
                                         ignore_index=-1, zero_division=1)) == 1.0
        assert float(tm.multilabel_precision(xl, yl, num_labels=2, average="weighted",
                                             ignore_index=-1, zero_division=1)) == 0.0
        assert float(tm.multilabel_accuracy(xl, yl, num_labels=2, ignore_index=-1)) == 0.0
        assert float(F.soft_accuracy(xl, yl, task="multilabel", num_classes=2,
                                     ignore_index=-1, zero_division=1, temperature=0)) == 1.0
        with pytest.raises(RuntimeError):
            tm.multiclass_precision(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
                                    num_classes=3)
        with pytest.raises(ValueError):
            precision_score([], [], average="macro", zero_division=1)
