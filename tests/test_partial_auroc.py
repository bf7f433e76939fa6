"""Tests of the partial AUROC: `soft_auroc(..., max_fpr=...)` and `SoftAUROCLoss(max_fpr=...)`.

The exact metric is checked against scikit-learn's `roc_auc_score(..., max_fpr=...)`
(binary, multilabel per column; multiclass against a per-class binary loop) and against
an explicit integration of the ROC curve; the soft metric against the pairwise definition.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from sklearn.metrics import roc_auc_score

from softmetrics import SoftAUROCLoss, SoftAveragePrecisionLoss
from softmetrics.functional import soft_auroc

from .ranking_references import column_average
from .test_ranking import binary_case, multilabel_case

MAX_FPRS = st.one_of(st.sampled_from([0.05, 0.1, 0.25, 1 / 3, 0.5, 0.75, 1.0]),
                     st.floats(0.01, 1.0))


def _mcclish(partial: float, max_fpr: float) -> float:
    lo, hi = max_fpr**2 / 2, max_fpr
    return 0.5 * (1 + (partial - lo) / (hi - lo))


def _roc_area_loop(scores, target, max_fpr: float) -> float:
    """Area under the ROC curve over FPR in [0, max_fpr], by walking the thresholds in
    decreasing order (tied scores move along a straight segment) and integrating the
    piecewise-linear curve: independent of scikit-learn's implementation."""
    pairs = sorted(zip(scores, target, strict=True), key=lambda p: -p[0])
    n_pos = sum(1 for _, y in pairs if y == 1)
    n_neg = len(pairs) - n_pos
    x0 = y0 = area = 0.0
    k = 0
    while k < len(pairs):
        level = pairs[k][0]
        a = b = 0
        while k < len(pairs) and pairs[k][0] == level:
            a, b = (a + 1, b) if pairs[k][1] == 1 else (a, b + 1)
            k += 1
        x1, y1 = x0 + b / n_neg, y0 + a / n_pos
        stop = min(x1, max_fpr)
        if stop > x0:  # the segment's part left of max_fpr, a trapezoid
            y_stop = y0 + (y1 - y0) * (stop - x0) / (x1 - x0)
            area += (stop - x0) * (y0 + y_stop) / 2
        x0, y0 = x1, y1
    return area


def _hard(s, y, max_fpr, **kw):
    kw.setdefault("task", "binary")
    return soft_auroc(s, y, max_fpr=max_fpr, temperature=0, **kw)


# ---------------------------------------------------------------------------------------
# exactness at temperature 0


def test_hand_derived_case():
    # ranking 3(-) 2(+) 1(-) 0(+), max_fpr = 1/2 (one of two negatives): the ROC curve is
    # 0 over [0, 1/2] -> pAUC 0, McClish (0 - 1/8) / (1/2 - 1/8) -> 0.5 * (1 - 1/3) = 1/3.
    s = torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1])
    assert _hard(s, y, 0.5).item() == pytest.approx(1 / 3, abs=1e-15)
    # a positive tied with the only negative, max_fpr = 1/2: the curve is the diagonal,
    # pAUC = 1/8 = min_area -> exactly 1/2
    s = torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert _hard(s, torch.tensor([1, 0]), 0.5).item() == pytest.approx(0.5, abs=1e-15)
    # perfect ranking -> 1 for every max_fpr
    s = torch.tensor([2.0, 1.5, 0.0, -1.0], dtype=torch.float64)
    for f in (0.1, 0.5, 0.99):
        assert _hard(s, torch.tensor([1, 1, 0, 0]), f).item() == pytest.approx(1.0, abs=1e-15)


@given(case=binary_case(distinct=False), max_fpr=MAX_FPRS)
def test_equals_sklearn_with_ties(case, max_fpr):
    s, y = case
    expected = roc_auc_score(y.numpy(), s.numpy(), max_fpr=max_fpr)
    assert _hard(s, y, max_fpr).item() == pytest.approx(expected, abs=1e-12)


@given(case=binary_case(distinct=False), max_fpr=MAX_FPRS)
def test_equals_integrated_roc_curve_with_ties(case, max_fpr):
    s, y = case
    expected = _mcclish(_roc_area_loop(s.tolist(), y.tolist(), max_fpr), max_fpr)
    assert _hard(s, y, max_fpr).item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("temperature", [0, 0.4])
@given(case=binary_case(distinct=False))
def test_max_fpr_one_is_the_full_auroc(case, temperature):
    s, y = case
    full = soft_auroc(s, y, task="binary", temperature=temperature)
    assert soft_auroc(s, y, task="binary", max_fpr=1.0, temperature=temperature) == full
    assert soft_auroc(s, y, task="binary", max_fpr=1, temperature=temperature) == full


@pytest.mark.parametrize("average", ["macro", "weighted", "micro", "none"])
@given(case=multilabel_case(distinct=False), max_fpr=MAX_FPRS)
def test_multilabel_equals_sklearn_per_column(case, average, max_fpr):
    s, y = case
    got = soft_auroc(s, y, task="multilabel", num_classes=s.shape[1], average=average,
                     max_fpr=max_fpr, temperature=0)
    if average == "micro":
        flat_y, flat_s = y.reshape(-1).numpy(), s.reshape(-1).numpy()
        ok = 0 < flat_y.sum() < flat_y.size
        expected = roc_auc_score(flat_y, flat_s, max_fpr=max_fpr) if ok else 0.0
    else:
        cols = range(s.shape[1])
        defined = [0 < int(y[:, c].sum()) < y.shape[0] for c in cols]
        values = [roc_auc_score(y[:, c], s[:, c], max_fpr=max_fpr) if d else 0.0
                  for c, d in zip(cols, defined, strict=True)]
        expected = column_average(values, defined, y.sum(0).tolist(), average)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_multilabel_all_defined_equals_sklearn_averages():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(40, 3, generator=g, dtype=torch.float64).round(decimals=1)  # ties
    y = (torch.rand(40, 3, generator=g) < 0.4).long()
    for average in ("macro", "weighted", "micro"):
        got = soft_auroc(s, y, task="multilabel", num_classes=3, average=average,
                         max_fpr=0.3, temperature=0)
        expected = roc_auc_score(y.numpy(), s.numpy(), average=average, max_fpr=0.3)
        assert got.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("average", ["macro", "weighted", "micro", "none"])
@pytest.mark.parametrize("tied", [False, True])
def test_multiclass_equals_per_class_sklearn_loop(average, tied, device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64)
    if tied:
        x = torch.cat([x[:20], x[:20], x[:20]])  # every row thrice: tied probabilities
    y = torch.randint(0, 4, (60,), generator=g)
    probs = torch.softmax(x, dim=1).numpy()
    onehot = np.eye(4)[y.numpy()]
    got = soft_auroc(x.to(device), y.to(device), task="multiclass", num_classes=4,
                     average=average, max_fpr=0.2, temperature=0).cpu()
    if average == "micro":
        expected = roc_auc_score(onehot.ravel(), probs.ravel(), max_fpr=0.2)
    else:
        values = [roc_auc_score(onehot[:, c], probs[:, c], max_fpr=0.2) for c in range(4)]
        expected = column_average(values, [True] * 4, onehot.sum(0).tolist(), average)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("temperature", [0, 0.7])
def test_ignore_index_equals_dropping_entries(temperature):
    g = torch.Generator().manual_seed(2)
    s = torch.randn(40, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (40,), generator=g)
    y[:2] = torch.tensor([0, 1])
    drop = torch.rand(40, generator=g) < 0.3
    drop[:2] = False
    y_ign = torch.where(drop, torch.full_like(y, -1), y)
    a = soft_auroc(s, y_ign, task="binary", ignore_index=-1, max_fpr=0.3,
                   temperature=temperature)
    b = soft_auroc(s[~drop], y[~drop], task="binary", max_fpr=0.3, temperature=temperature)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (40,), generator=g)
    t_ign = torch.where(drop, torch.full_like(t, 9), t)
    a = soft_auroc(x, t_ign, task="multiclass", num_classes=3, ignore_index=9, max_fpr=0.3,
                   temperature=temperature)
    b = soft_auroc(x[~drop], t[~drop], task="multiclass", num_classes=3, max_fpr=0.3,
                   temperature=temperature)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


def test_undefined_columns_are_left_out():
    s = torch.tensor([[0.3, 1.0], [0.9, -1.0], [0.1, 0.5]], dtype=torch.float64)
    y = torch.tensor([[1, 0], [0, 0], [1, 0]])  # column 1 has no positive
    per_col = soft_auroc(s, y, task="multilabel", num_classes=2, average="none",
                         max_fpr=0.5, temperature=0.3)
    col0 = soft_auroc(s[:, 0], y[:, 0], task="binary", max_fpr=0.5, temperature=0.3)
    assert per_col[0].item() == pytest.approx(col0.item(), abs=1e-15)
    assert per_col[1].item() == 0.0
    macro = soft_auroc(s, y, task="multilabel", num_classes=2, max_fpr=0.5, temperature=0.3)
    assert macro.item() == pytest.approx(col0.item(), abs=1e-15)
    none = soft_auroc(s, torch.zeros_like(y), task="multilabel", num_classes=2, max_fpr=0.5)
    assert none.item() == 0.0


# ---------------------------------------------------------------------------------------
# the soft metric


@pytest.mark.parametrize("temperature", [0.05, 0.3, 2.0])
@given(case=binary_case(distinct=False), max_fpr=MAX_FPRS, chunk=st.integers(1, 7))
def test_soft_equals_capped_pairwise_definition(case, max_fpr, temperature, chunk):
    s, y = case
    pos, neg = (y == 1).double(), (y == 0).double()
    above = torch.sigmoid((s.unsqueeze(0) - s.unsqueeze(1)) / temperature) @ neg
    partial = max_fpr - (pos * above.clamp_max(max_fpr * neg.sum())).sum() / (
        pos.sum() * neg.sum())
    expected = _mcclish(partial.item(), max_fpr) if max_fpr < 1 else partial.item()
    got = soft_auroc(s, y, task="binary", max_fpr=max_fpr, temperature=temperature,
                     chunk_size=chunk)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= got.item() <= 1.0


@given(case=binary_case(distinct=True), max_fpr=MAX_FPRS)
def test_soft_tends_to_hard(case, max_fpr):
    s, y = case  # distinct scores at least 1/97 apart
    hard = _hard(s, y, max_fpr).item()
    errors = [abs(soft_auroc(s, y, task="binary", max_fpr=max_fpr, temperature=t).item()
                  - hard) for t in (1e-1, 1e-3, 1e-5)]
    assert errors[-1] < 1e-9  # every |s_i - s_j| / tau >= 1000
    assert errors[1] < 5e-2  # McClish divides by f - f^2/2 >= 0.00995


def test_soft_at_a_tie_on_the_cut_tends_to_the_uninterpolated_count():
    # A positive tied with the middle negative of three, max_fpr = 1/2: the cut (1.5
    # negatives) falls inside its diagonal segment [1, 2]. The exact metric interpolates:
    # the curve rises from (1/3, 0) to (2/3, 1), so pAUC is the triangle 1/24 (capped
    # count 1.5 - 0.5^2 / 2 = 1.375). A sigmoid never sees a tie, so the soft count is
    # min(F, cut) = min(1.5, 1.5) at every temperature, as documented: pAUC 0.
    s = torch.tensor([2.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 0])
    exact = _hard(s, y, 0.5).item()
    assert exact == pytest.approx(_mcclish(1 / 24, 0.5), abs=1e-15)
    assert exact == pytest.approx(_mcclish(0.5 - 1.375 / 3, 0.5), abs=1e-15)
    soft = soft_auroc(s, y, task="binary", max_fpr=0.5, temperature=1e-6).item()
    assert soft == pytest.approx(_mcclish(0.0, 0.5), abs=1e-12)


@given(case=binary_case(distinct=False), max_fpr=MAX_FPRS, delta=st.floats(1e-3, 5.0),
       temperature=st.sampled_from([0, 0.05, 0.5, 2.0]), pick=st.integers(0, 100))
def test_raising_a_positive_or_lowering_a_negative_never_lowers_it(case, max_fpr, delta,
                                                                   temperature, pick):
    s, y = case
    before = soft_auroc(s, y, task="binary", max_fpr=max_fpr, temperature=temperature).item()
    for label, sign in ((1, 1.0), (0, -1.0)):
        members = torch.nonzero(y == label).flatten()
        moved = s.clone()
        moved[members[pick % len(members)]] += sign * delta
        after = soft_auroc(moved, y, task="binary", max_fpr=max_fpr,
                           temperature=temperature).item()
        assert after >= before - 1e-12


@given(case=binary_case(distinct=False), max_fpr=st.floats(0.01, 0.99))
def test_hard_range(case, max_fpr):
    s, y = case
    value = _hard(s, y, max_fpr).item()
    assert (1 - max_fpr) / (2 - max_fpr) - 1e-12 <= value <= 1 + 1e-12


# ---------------------------------------------------------------------------------------
# gradients and numerics


@pytest.mark.parametrize("chunk", [None, 2])
def test_gradcheck_float64(chunk, device):
    g = torch.Generator().manual_seed(3)
    s = (torch.randperm(14, generator=g).double() * 0.37).to(device).requires_grad_(True)
    y = torch.tensor([1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1], device=device)
    assert torch.autograd.gradcheck(
        lambda x: soft_auroc(x, y, task="binary", max_fpr=0.4, temperature=0.6,
                             chunk_size=chunk), (s,))
    s2 = (torch.randperm(24, generator=g).double().reshape(8, 3) * 0.29).to(device)
    s2.requires_grad_(True)
    y2 = torch.randint(0, 2, (8, 3), generator=g)
    y2[0], y2[1] = 1, 0
    y2 = y2.to(device)
    for average in ("macro", "micro", "weighted"):
        assert torch.autograd.gradcheck(
            lambda x, average=average: soft_auroc(
                x, y2, task="multilabel", num_classes=3, average=average, max_fpr=0.3,
                temperature=0.8, chunk_size=chunk), (s2,))
    x3 = torch.randn(10, 3, generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    y3 = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], device=device)
    assert torch.autograd.gradcheck(
        lambda x: soft_auroc(x, y3, task="multiclass", num_classes=3, max_fpr=0.5,
                             temperature=0.5, chunk_size=chunk), (x3,))
    t = torch.tensor(0.7, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, tau: soft_auroc(x, y, task="binary", max_fpr=0.4, temperature=tau,
                                  chunk_size=chunk), (s, t))


def test_gradgradcheck():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (7, 3), generator=g)
    y[0], y[1] = 1, 0
    assert torch.autograd.gradgradcheck(
        lambda z: soft_auroc(z, y, task="multilabel", num_classes=3, max_fpr=0.4,
                             temperature=0.4, chunk_size=2), (x,))


def test_gradient_only_for_positives_within_the_cut():
    # negatives 3, 2, 1, 0; positives 2.5 (one negative above) and -1 (all four above);
    # max_fpr = 1/2 caps at two negatives: the low positive is beyond the cut at a small
    # temperature and gets no gradient; the high one is pushed up.
    s = torch.tensor([3.0, 2.0, 1.0, 0.0, 2.5, -1.0], dtype=torch.float64,
                     requires_grad=True)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    soft_auroc(s, y, task="binary", max_fpr=0.5, temperature=0.1).backward()
    assert s.grad[5] == 0.0 and s.grad[4] > 0
    assert torch.all(s.grad[:4] <= 0) and s.grad[0] < 0


@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
def test_extreme_inputs_are_finite(task, device):
    g = torch.Generator().manual_seed(5)
    shape, kw = ((20,), {}) if task == "binary" else ((20, 3), {"num_classes": 3})
    s = ((torch.randint(0, 2, shape, generator=g) * 2 - 1) * 1e4).float()
    if task == "multiclass":
        y = torch.randint(0, 3, (20,), generator=g)
    else:
        y = torch.randint(0, 2, shape, generator=g)
    for scores in (s, torch.zeros_like(s)):  # extremes, then all tied
        for temperature in (1e-3, 1.0):
            x = scores.to(device).requires_grad_(True)
            value = soft_auroc(x, y.to(device), task=task, max_fpr=0.1,
                               temperature=temperature, **kw)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(x.grad).all()
            assert 0 <= value.item() <= 1


def test_half_inputs_give_float32():
    g = torch.Generator().manual_seed(6)
    s = torch.randn(50, generator=g)
    y = torch.randint(0, 2, (50,), generator=g)
    x = s.half().requires_grad_(True)
    value = soft_auroc(x, y, task="binary", max_fpr=0.2, temperature=0.2)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(x.grad.float()).all()
    ref = soft_auroc(s.half().float(), y, task="binary", max_fpr=0.2, temperature=0.2)
    assert value.item() == pytest.approx(ref.item(), abs=1e-6)



def test_module_equals_function():
    g = torch.Generator().manual_seed(8)
    s = torch.randn(25, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (25, 3), generator=g)
    options = dict(task="multilabel", num_classes=3, average="weighted", max_fpr=0.25)
    loss_fn = SoftAUROCLoss(temperature=0.4, **options)
    assert loss_fn(s, y).item() == pytest.approx(
        1 - soft_auroc(s, y, temperature=0.4, **options).item(), abs=1e-15)
    assert loss_fn.metric(s, y).item() == pytest.approx(
        soft_auroc(s, y, temperature=0, **options).item(), abs=1e-15)
    assert "max_fpr=0.25" in repr(loss_fn)
    assert "max_fpr" not in repr(SoftAUROCLoss(task="binary"))
    # running statistics mix the capped sums; the first batch is the batch itself
    running = SoftAUROCLoss(temperature=0.4, momentum=0.9, **options)
    assert running(s, y).item() == pytest.approx(loss_fn(s, y).item(), abs=1e-12)


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, float("nan")])
def test_max_fpr_out_of_range(bad):
    s, y = torch.randn(4), torch.tensor([0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"soft_auroc: expected `max_fpr` to be"):
        soft_auroc(s, y, task="binary", max_fpr=bad)
    with pytest.raises(ValueError, match=r"SoftAUROCLoss: expected `max_fpr` to be"):
        SoftAUROCLoss(task="binary", max_fpr=bad)


def test_max_fpr_errors():
    s, y = torch.randn(4), torch.tensor([0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"soft_auroc: expected `max_fpr` to be > 0 and "
                                         r"<= 1, got 0\.0\."):
        soft_auroc(s, y, task="binary", max_fpr=0.0)
    with pytest.raises(TypeError, match=r"SoftAUROCLoss: expected `max_fpr` to be a real "
                                        r"number"):
        SoftAUROCLoss(task="binary", max_fpr="0.1")
    with pytest.raises(TypeError, match=r"expected `max_fpr` to be a real number"):
        soft_auroc(s, y, task="binary", max_fpr=True)
    with pytest.raises(TypeError, match="max_fpr"):  # not an option of average precision
        SoftAveragePrecisionLoss(task="binary", max_fpr=0.1)
