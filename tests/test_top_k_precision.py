"""`top_k=` for precision, recall and F-beta: exact against torchmetrics, and properties.

torchmetrics (since 1.6, Lightning-AI/torchmetrics PR #2839 for issue #1653) decides each
sample by its true class when that ranks in the top k, else by its argmax; precision and
recall with `top_k > 1` skip every class absent from the target in a macro average, F-beta
keeps its usual rule.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import softmetrics
from softmetrics import functional as F

tm = pytest.importorskip("torchmetrics.functional.classification")

OURS = {"precision": F.soft_precision, "recall": F.soft_recall, "f1": F.soft_f1_score,
        "f2": lambda *a, **k: F.soft_fbeta_score(*a, beta=2.0, **k)}
THEIRS = {"precision": tm.multiclass_precision, "recall": tm.multiclass_recall,
          "f1": tm.multiclass_f1_score,
          "f2": lambda *a, **k: tm.multiclass_fbeta_score(*a, beta=2.0, **k)}


# torchmetrics' own literal cases (tests/unittests/classification/test_f_beta.py and
# test_precision_recall.py), replayed
_P1 = torch.tensor([[0.35, 0.4, 0.25], [0.1, 0.5, 0.4], [0.2, 0.1, 0.7]])
_T1 = torch.tensor([0, 1, 2])
_P2 = torch.tensor([[0.1, 0.2, 0.7], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.3, 0.3, 0.4]])
_T2 = torch.tensor([0, 1, 2, 0])


@pytest.mark.parametrize("k, average, f2, f1", [
    (1, "micro", 0.25, 0.25),
    (1, "macro", 0.2381, 0.1667),
    (1, "weighted", 0.1786, 0.1250),
    (1, "none", [0.0, 0.0, 0.7143], [0.0, 0.0, 0.5]),
    (3, "micro", 1.0, 1.0),
    (3, "macro", 1.0, 1.0),
    (3, "none", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
])
def test_torchmetrics_literal_fbeta_cases(k, average, f2, f1):
    """torchmetrics' F-beta top-k table on inputs without a tie at the k-th place (their
    k = 2 rows have one; see `test_tie_at_the_kth_place_is_half_a_hit`)."""
    kw = dict(task="multiclass", num_classes=3, top_k=k, average=average, temperature=0)
    torch.testing.assert_close(F.soft_fbeta_score(_P2, _T2, beta=2.0, **kw).float(),
                               torch.tensor(f2), atol=1e-4, rtol=0)
    torch.testing.assert_close(F.soft_f1_score(_P2, _T2, **kw).float(), torch.tensor(f1),
                               atol=1e-4, rtol=0)


@pytest.mark.parametrize("k, precision, recall", [(1, 2 / 3, 2 / 3), (2, 1.0, 1.0)])
def test_torchmetrics_literal_micro_cases(k, precision, recall):
    kw = dict(task="multiclass", num_classes=3, top_k=k, average="micro", temperature=0)
    assert F.soft_precision(_P1, _T1, **kw).item() == pytest.approx(precision)
    assert F.soft_recall(_P1, _T1, **kw).item() == pytest.approx(recall)


def test_tie_at_the_kth_place_is_half_a_hit():
    """Scores (0.3, 0.3, 0.4) with target 0 and k = 2: class 0 shares the second place,
    so it is half a hit; the other half predicts the argmax, class 2."""
    x = torch.tensor([[0.3, 0.3, 0.4]])
    kw = dict(task="multiclass", num_classes=3, top_k=2, temperature=0, average="none")
    torch.testing.assert_close(F.soft_recall(x, torch.tensor([0]), **kw).float(),
                               torch.tensor([0.5, 0.0, 0.0]))
    # class 2 is predicted half the time and never right
    torch.testing.assert_close(F.soft_precision(x, torch.tensor([0]), **kw).float(),
                               torch.tensor([1.0, 0.0, 0.0]))
    # half a hit is a prediction of class 0: near temperature 0 its soft precision (half a
    # sample's mass, all of it right) tends to the same 1
    kw["temperature"] = 1e-3
    torch.testing.assert_close(F.soft_precision(x.double(), torch.tensor([0]), **kw),
                               torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))


@st.composite
def cases(draw):
    c = draw(st.sampled_from([3, 4, 7]))
    n = draw(st.integers(1, 30))
    extra = draw(st.sampled_from([(), (), (3,)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    # distinct scores in every row: a permutation plus a small offset
    x = np.argsort(rng.random((n, *extra, c)), axis=-1).astype(np.float32)
    x = np.moveaxis(x + rng.random((n, *extra, 1)).astype(np.float32), -1, 1)
    present = draw(st.integers(1, c))  # few classes present: absent classes are common
    y = rng.integers(0, present, size=(n, *extra))
    ignore = draw(st.sampled_from([None, -1]))
    if ignore is not None:
        y = np.where(rng.random(y.shape) < 0.2, ignore, y)
    k = draw(st.integers(1, c))
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), c, k, ignore


@settings(max_examples=80, deadline=None)
@given(case=cases(), metric=st.sampled_from(sorted(OURS)),
       average=st.sampled_from(["micro", "macro", "weighted", "none"]),
       samplewise=st.booleans())
def test_exact_equals_torchmetrics(case, metric, average, samplewise):
    x, y, c, k, ignore = case
    if samplewise and x.ndim < 3:
        samplewise = False
    md = "samplewise" if samplewise else "global"
    ours = OURS[metric](x, y, task="multiclass", num_classes=c, top_k=k, average=average,
                        ignore_index=ignore, multidim_average=md, temperature=0)
    theirs = THEIRS[metric](x, y, num_classes=c, top_k=k, average=average,
                            ignore_index=ignore, multidim_average=md)
    torch.testing.assert_close(ours.float(), theirs, atol=1e-6, rtol=0)


@settings(max_examples=30, deadline=None)
@given(case=cases())
def test_properties(case):
    """Micro recall with top_k is top-k accuracy; recall grows with k; k = C is perfect;
    the soft value tends to the exact one as the temperature falls; the Module is the
    function."""
    x, y, c, k, ignore = case
    kw = dict(task="multiclass", num_classes=c, ignore_index=ignore)
    micro = F.soft_recall(x, y, top_k=k, average="micro", temperature=0, **kw)
    top = F.soft_top_k_accuracy(x, y, num_classes=c, k=k, ignore_index=ignore, temperature=0)
    torch.testing.assert_close(micro.float(), top)
    if k < c:
        for average in ("micro", "macro"):
            low = F.soft_recall(x, y, top_k=k, average=average, temperature=0, **kw)
            high = F.soft_recall(x, y, top_k=k + 1, average=average, temperature=0, **kw)
            assert high >= low
    if bool((y != -1).any()):
        for fn in (F.soft_precision, F.soft_recall, F.soft_f1_score):
            assert fn(x, y, top_k=c, average="macro", temperature=0, **kw) == 1
    for average in ("micro", "macro", "none"):
        exact = F.soft_f1_score(x, y, top_k=k, average=average, temperature=0, **kw)
        cold = F.soft_f1_score(x, y, top_k=k, average=average, temperature=1e-3, **kw)
        torch.testing.assert_close(cold, exact, atol=2e-3, rtol=0)
    loss_fn = softmetrics.SoftRecallLoss(top_k=k, temperature=0.5, **kw)
    torch.testing.assert_close(
        loss_fn(x, y), 1 - F.soft_recall(x, y, top_k=k, temperature=0.5, **kw))
    torch.testing.assert_close(
        loss_fn.metric(x, y), F.soft_recall(x, y, top_k=k, temperature=0, **kw))


@pytest.mark.parametrize("samplewise", [False, True])
def test_gradcheck(samplewise):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (6, 2), generator=g)
    y[0, 0] = -1
    kw = dict(task="multiclass", num_classes=4, top_k=2, temperature=0.7, ignore_index=-1,
              multidim_average="samplewise" if samplewise else "global")
    for fn in (F.soft_precision, F.soft_recall, F.soft_f1_score):
        for average in ("micro", "macro"):
            assert torch.autograd.gradcheck(
                lambda z, fn=fn, average=average: fn(z, y, average=average, **kw), (x,))
        assert torch.autograd.gradgradcheck(lambda z, fn=fn: fn(z, y, **kw), (x,))


@pytest.mark.parametrize("name, make", [
    ("precision", lambda **kw: softmetrics.SoftPrecisionLoss(**kw)),
    ("recall", lambda **kw: softmetrics.SoftRecallLoss(**kw)),
    ("f1", lambda **kw: softmetrics.SoftF1Loss(**kw)),
    ("f2", lambda **kw: softmetrics.SoftFBetaLoss(beta=2.0, **kw)),
])
def test_modules_with_top_k_are_their_functions(name, make):
    """The Modules take the macro average's rule for `top_k > 1` from their function: a
    class absent from the target (3 here) is predicted by a miss, and precision and recall
    skip it where F-beta keeps it."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    x[0] = torch.tensor([0.0, -1.0, -2.0, 3.0])
    y[0] = 2  # ranks third: a miss, predicted as class 3
    kw = dict(task="multiclass", num_classes=4, top_k=2)
    loss_fn = make(**kw, temperature=0.5)
    torch.testing.assert_close(loss_fn(x, y), 1 - OURS[name](x, y, **kw, temperature=0.5))
    exact = loss_fn.metric(x, y)
    torch.testing.assert_close(exact, OURS[name](x, y, **kw, temperature=0))
    theirs = THEIRS[name](x, y, num_classes=4, top_k=2, average="macro")
    assert float(exact) == pytest.approx(float(theirs), abs=1e-6)


def test_soft_decision_is_one_unit_per_sample():
    """Soft counts: each sample spreads one unit of predicted mass over the classes, and
    the gradient flows to every logit."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (20,), generator=g)
    value = F.soft_precision(x, y, task="multiclass", num_classes=5, top_k=3,
                             temperature=0.5, average="micro")
    assert 0 < value.item() < 1
    value.backward()
    assert torch.isfinite(x.grad).all() and (x.grad != 0).any()


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.soft_precision(torch.randn(4), torch.zeros(4, dtype=torch.long),
                              task="binary", top_k=2), ValueError,
     r"soft_precision: expected `top_k` to be 1 unless task='multiclass', got 2\."),
    (lambda: F.soft_recall(torch.randn(4, 3), torch.zeros(4, dtype=torch.long),
                           task="multiclass", num_classes=3, top_k=4), ValueError,
     r"soft_recall: expected `top_k` to be <= num_classes = 3, got 4\."),
    (lambda: F.soft_f1_score(torch.randn(4, 3), torch.zeros(4, dtype=torch.long),
                             task="multiclass", num_classes=3, top_k=0), ValueError,
     r"soft_f1_score: expected `top_k` to be an int >= 1, got 0\."),
    (lambda: F.soft_fbeta_score(torch.randn(4, 3), torch.zeros(4, dtype=torch.long),
                                task="multiclass", num_classes=3, top_k=2.0), TypeError,
     r"soft_fbeta_score: expected `top_k` to be an int, got 2\.0\."),
    (lambda: F.soft_precision(torch.randn(4, 3), torch.full((4, 3), 1 / 3),
                              task="multiclass", num_classes=3, top_k=2), TypeError,
     r"soft_precision: expected `target` to be class indices of shape \(N, \.\.\.\) \(the "
     r"top-k decision takes no class probabilities as the target\)"),
    (lambda: softmetrics.SoftJaccardLoss(task="multiclass", num_classes=3, top_k=2),
     TypeError, r"unexpected option 'top_k'"),
    (lambda: softmetrics.SoftFBetaLoss(task="multilabel", num_classes=3, top_k=2),
     ValueError, r"SoftFBetaLoss: expected `top_k` to be 1 unless task='multiclass'"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
