"""Tests of the ranking family: soft AUROC, AP (mAP) and calibrated AP."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import average_precision_score, roc_auc_score

from softmetrics import (
    SoftAUROCLoss,
    SoftAveragePrecisionLoss,
    SoftCalibratedAveragePrecisionLoss,
    _tuning,
)
from softmetrics._relax import soft_step
from softmetrics.functional import (
    _ranking_tiles,
    soft_auroc,
    soft_average_precision,
    soft_calibrated_average_precision,
)

from .listing import list_positives
from .ranking_references import (
    calibrated_ap_reference,
    column_average,
    pairwise_ap_loop,
    pairwise_auroc_loop,
)

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = {
    "auroc": soft_auroc,
    "ap": soft_average_precision,
    "cap": soft_calibrated_average_precision,
}
LOSSES = {
    "auroc": SoftAUROCLoss,
    "ap": SoftAveragePrecisionLoss,
    "cap": SoftCalibratedAveragePrecisionLoss,
}


# ---------------------------------------------------------------------------------------
# strategies


@st.composite
def binary_case(draw, *, distinct: bool, min_n: int = 2, max_n: int = 24,
                both: bool = True):
    """(scores float64 (n,), labels int64 (n,)); tied scores allowed unless `distinct`."""
    n = draw(st.integers(min_n, max_n))
    if distinct:
        values = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n, unique=True))
        scores = np.asarray(values, dtype=np.float64) / 97.0
    else:
        scores = draw(arrays(np.float64, n, elements=st.sampled_from([-2.0, -0.5, 0.0, 0.5,
                                                                      1.0, 3.0])))
    labels = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    if both:
        assume(0 < labels.sum() < n)
    return torch.from_numpy(scores), torch.from_numpy(labels)


@st.composite
def multilabel_case(draw, *, distinct: bool):
    n = draw(st.integers(2, 16))
    c = draw(st.integers(1, 4))
    if distinct:
        values = draw(st.lists(st.integers(-5000, 5000), min_size=n * c, max_size=n * c,
                               unique=True))
        scores = np.asarray(values, dtype=np.float64).reshape(n, c) / 97.0
    else:
        scores = draw(arrays(np.float64, (n, c), elements=st.sampled_from([-1.0, 0.0, 0.5,
                                                                           2.0])))
    labels = draw(arrays(np.int64, (n, c), elements=st.integers(0, 1)))
    return torch.from_numpy(scores), torch.from_numpy(labels)


def _hard(name, scores, labels, **kw):
    kw.setdefault("task", "binary")
    return FUNCTIONS[name](scores, labels, temperature=0, **kw)


# ---------------------------------------------------------------------------------------
# exactness at temperature 0


def test_hand_derived_case():
    # ranking: 3(+) 2(-) 1(+): AP = (1/1 + 2/3) / 2; AUROC = 1/2; cAP with w = 1/2:
    # second positive: 2 / (2 + 1 / (1/2)) = 1/2 -> (1 + 1/2) / 2.
    s = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    y = torch.tensor([1, 0, 1])
    assert _hard("ap", s, y).item() == pytest.approx(5 / 6, abs=1e-15)
    assert _hard("auroc", s, y).item() == pytest.approx(0.5, abs=1e-15)
    assert _hard("cap", s, y).item() == pytest.approx(0.75, abs=1e-15)
    # soft AUROC of one pair is sigmoid((s_i - s_j) / tau)
    s2 = torch.tensor([1.0, 0.2], dtype=torch.float64)
    value = soft_auroc(s2, torch.tensor([1, 0]), task="binary", temperature=0.4)
    assert value.item() == pytest.approx(1 / (1 + math.exp(-0.8 / 0.4)), abs=1e-14)


@given(binary_case(distinct=False))
def test_auroc_equals_sklearn_with_ties(case):
    s, y = case
    assert _hard("auroc", s, y).item() == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@given(binary_case(distinct=True))
def test_ap_equals_sklearn_for_distinct_scores(case):
    s, y = case
    expected = average_precision_score(y.numpy(), s.numpy())
    assert _hard("ap", s, y).item() == pytest.approx(expected, abs=1e-12)


@given(binary_case(distinct=True))
def test_cap_equals_numpy_reference_for_distinct_scores(case):
    s, y = case
    expected = calibrated_ap_reference(s.numpy(), y.numpy())
    assert _hard("cap", s, y).item() == pytest.approx(expected, abs=1e-12)


@given(binary_case(distinct=False))
def test_hard_path_equals_pairwise_loops_with_ties(case):
    s, y = case
    sl, yl = s.tolist(), y.tolist()
    assert _hard("auroc", s, y).item() == pytest.approx(pairwise_auroc_loop(sl, yl), abs=1e-12)
    assert _hard("ap", s, y).item() == pytest.approx(pairwise_ap_loop(sl, yl), abs=1e-12)
    assert _hard("cap", s, y).item() == pytest.approx(
        pairwise_ap_loop(sl, yl, calibrated=True), abs=1e-12)


@pytest.mark.parametrize("temperature", [0, 0.3])
@given(case=binary_case(distinct=False))
def test_equals_pairwise_definition_with_the_shared_step(case, temperature, device):
    s, y = case
    pos, neg = (y == 1).double(), (y == 0).double()
    step = soft_step(s.unsqueeze(0) - s.unsqueeze(1), temperature)  # [i, j]: s_j - s_i
    above = step @ neg  # negatives above each sample
    auroc = 1 - (pos * above).sum() / (pos.sum() * neg.sum())
    got = soft_auroc(s.to(device), y.to(device), task="binary", temperature=temperature)
    assert got.item() == pytest.approx(auroc.item(), abs=1e-12)
    # AP: positives in decreasing order get ranks 1, 2, ... (any order at ties)
    order = torch.argsort(s[y == 1], descending=True)
    ranks = torch.empty(len(order), dtype=torch.float64)
    ranks[order] = torch.arange(1, len(order) + 1, dtype=torch.float64)
    ap = (ranks / (ranks + above[y == 1])).mean()
    got = soft_average_precision(s.to(device), y.to(device), task="binary",
                                 temperature=temperature)
    assert got.item() == pytest.approx(ap.item(), abs=1e-12)


def test_tie_rule_differs_from_sklearn_grouping():
    # ranking: N, then P and N tied. Pairwise rule: the tied positive has 1.5 negatives
    # above -> 1 / 2.5; scikit-learn credits the group's end precision 1 / 3.
    s = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 0])
    assert _hard("ap", s, y).item() == pytest.approx(1 / 2.5, abs=1e-15)
    assert average_precision_score(y, s) == pytest.approx(1 / 3)
    # tied positives only: the value does not depend on their order (N P P -> (1/2+2/3)/2)
    s = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 1])
    assert _hard("ap", s, y).item() == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-15)


@pytest.mark.parametrize("average", ["macro", "weighted", "micro", "none"])
@given(case=multilabel_case(distinct=False))
def test_multilabel_auroc_equals_sklearn_per_column(case, average):
    s, y = case
    got = soft_auroc(s, y, task="multilabel", num_classes=s.shape[1], average=average,
                     temperature=0)
    if average == "micro":
        flat_y, flat_s = y.reshape(-1).numpy(), s.reshape(-1).numpy()
        ok = 0 < flat_y.sum() < flat_y.size
        expected = roc_auc_score(flat_y, flat_s) if ok else 0.0
    else:
        cols = range(s.shape[1])
        defined = [0 < int(y[:, c].sum()) < y.shape[0] for c in cols]
        values = [roc_auc_score(y[:, c], s[:, c]) if d else 0.0
                  for c, d in zip(cols, defined, strict=True)]
        expected = column_average(values, defined, y.sum(0).tolist(), average)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("name", ["ap", "cap"])
@pytest.mark.parametrize("average", ["macro", "weighted", "none"])
@given(case=multilabel_case(distinct=True))
def test_multilabel_ap_macro_equals_mean_of_references(case, average, name):
    s, y = case
    got = FUNCTIONS[name](s, y, task="multilabel", num_classes=s.shape[1], average=average,
                          temperature=0)
    defined, values = [], []
    for c in range(s.shape[1]):
        yc, sc = y[:, c].numpy(), s[:, c].numpy()
        if name == "ap":
            defined.append(yc.sum() > 0)
            values.append(average_precision_score(yc, sc) if defined[-1] else 0.0)
        else:
            defined.append(yc.sum() > 0)
            if 0 < yc.sum() < yc.size:
                values.append(calibrated_ap_reference(sc, yc))
            else:
                values.append(1.0 if yc.sum() > 0 else 0.0)
    expected = column_average(values, defined, y.sum(0).tolist(), average)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_multilabel_micro_ap_equals_sklearn():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(60, 5, generator=g, dtype=torch.float64)
    y = (torch.rand(60, 5, generator=g) < 0.3).long()
    got = soft_average_precision(s, y, task="multilabel", num_classes=5, average="micro",
                                 temperature=0)
    assert got.item() == pytest.approx(average_precision_score(y, s, average="micro"),
                                       abs=1e-12)


@pytest.mark.parametrize("average", ["macro", "weighted", "micro"])
def test_multiclass_auroc_equals_sklearn_ovr(average, device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (80,), generator=g)
    probs = torch.softmax(x, dim=1).numpy()
    got = soft_auroc(x.to(device), y.to(device), task="multiclass", num_classes=4,
                     average=average, temperature=0)
    expected = roc_auc_score(y.numpy(), probs, multi_class="ovr", average=average)
    assert got.item() == pytest.approx(expected, abs=1e-12)


def test_multiclass_auroc_with_tied_rows_equals_sklearn():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(15, 3, generator=g, dtype=torch.float64)
    x = torch.cat([x, x, x[:5]])  # every row appears at least twice: tied probabilities
    y = torch.randint(0, 3, (35,), generator=g)
    probs = torch.softmax(x, dim=1).numpy()
    for average in ("macro", "weighted"):
        got = soft_auroc(x, y, task="multiclass", num_classes=3, average=average,
                         temperature=0)
        expected = roc_auc_score(y.numpy(), probs, multi_class="ovr", average=average)
        assert got.item() == pytest.approx(expected, abs=1e-12)


def test_multiclass_ap_per_class_equals_sklearn_one_vs_rest():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(70, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (70,), generator=g)
    onehot = np.eye(3)[y.numpy()]
    probs = torch.softmax(x, dim=1).numpy()
    got = soft_average_precision(x, y, task="multiclass", num_classes=3, average="none",
                                 temperature=0)
    expected = average_precision_score(onehot, probs, average=None)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_multiclass_extra_dims_pool_positions():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4, 5), generator=g)
    flat_x = x.movedim(1, -1).reshape(-1, 3)
    for fn in FUNCTIONS.values():
        a = fn(x, y, task="multiclass", num_classes=3, temperature=0.3)
        b = fn(flat_x, y.reshape(-1), task="multiclass", num_classes=3, temperature=0.3)
        assert a.item() == pytest.approx(b.item(), abs=1e-12)


# ---------------------------------------------------------------------------------------
# undefined columns, ignore_index


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
def test_undefined_columns_are_left_out(name):
    s = torch.tensor([[0.3, 1.0, 0.2], [0.9, -1.0, 0.1], [0.1, 0.5, 0.7]],
                     dtype=torch.float64)
    # column 0: defined; column 1: no positive; column 2: only positives
    y = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 0, 1]])
    fn = FUNCTIONS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per_col = fn(s, y, task="multilabel", num_classes=3, average="none", temperature=0.5)
        macro = fn(s, y, task="multilabel", num_classes=3, temperature=0.5)
    col0 = fn(s[:, 0], y[:, 0], task="binary", temperature=0.5)
    assert per_col[0].item() == pytest.approx(col0.item(), abs=1e-12)
    assert per_col[1].item() == 0.0
    if name == "auroc":
        assert per_col[2].item() == 0.0
        assert macro.item() == pytest.approx(col0.item(), abs=1e-12)
    else:
        # no negative: every precision is 1
        assert per_col[2].item() == pytest.approx(1.0, abs=1e-12)
        assert macro.item() == pytest.approx((col0.item() + 1.0) / 2, abs=1e-12)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("average", ["macro", "weighted", "micro", "none"])
def test_no_defined_column_gives_zero_and_finite_gradient(name, average):
    s = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(5, 2, dtype=torch.long)
    value = FUNCTIONS[name](s, y, task="multilabel", num_classes=2, average=average)
    assert torch.all(value == 0)
    value.sum().backward()
    assert torch.isfinite(s.grad).all()
    empty = FUNCTIONS[name](torch.zeros(0), torch.zeros(0, dtype=torch.long), task="binary")
    assert empty.item() == 0.0


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("temperature", [0, 0.7])
def test_ignore_index_equals_dropping_entries(name, temperature):
    g = torch.Generator().manual_seed(4)
    s = torch.randn(30, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (30,), generator=g)
    y[:2] = torch.tensor([0, 1])
    drop = torch.rand(30, generator=g) < 0.3
    drop[:2] = False
    y_ign = torch.where(drop, torch.full_like(y, -100), y)
    fn = FUNCTIONS[name]
    a = fn(s, y_ign, task="binary", ignore_index=-100, temperature=temperature)
    b = fn(s[~drop], y[~drop], task="binary", temperature=temperature)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    # multiclass: ignored samples leave every class
    x = torch.randn(30, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (30,), generator=g)
    t_ign = torch.where(drop, torch.full_like(t, 7), t)
    a = fn(x, t_ign, task="multiclass", num_classes=3, ignore_index=7, temperature=temperature)
    b = fn(x[~drop], t[~drop], task="multiclass", num_classes=3, temperature=temperature)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


# ---------------------------------------------------------------------------------------
# properties of the soft metrics


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@given(case=binary_case(distinct=True))
def test_soft_tends_to_hard(case, name):
    s, y = case  # distinct scores at least 1/97 apart
    hard = _hard(name, s, y).item()
    errors = [abs(FUNCTIONS[name](s, y, task="binary", temperature=t).item() - hard)
              for t in (1e-1, 1e-3, 1e-5)]
    assert errors[-1] < 1e-9  # every |s_i - s_j| / tau >= 1000
    assert errors[1] < 5e-3  # every pair within 4e-5 of its step


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@given(case=binary_case(distinct=False, both=False),
       temperature=st.floats(1e-3, 100.0), chunk=st.integers(1, 7))
def test_range_and_tiles(case, name, temperature, chunk):
    s, y = case
    fn = FUNCTIONS[name]
    value = fn(s, y, task="binary", temperature=temperature, chunk_size=chunk)
    assert 0.0 <= value.item() <= 1.0
    untiled = fn(s, y, task="binary", temperature=temperature)
    assert value.item() == pytest.approx(untiled.item(), abs=1e-12)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@given(case=binary_case(distinct=False), seed=st.integers(0, 2**16),
       temperature=st.sampled_from([0, 0.3]))
def test_permutation_invariance(case, name, seed, temperature):
    s, y = case
    perm = torch.randperm(len(s), generator=torch.Generator().manual_seed(seed))
    fn = FUNCTIONS[name]
    a = fn(s, y, task="binary", temperature=temperature)
    b = fn(s[perm], y[perm], task="binary", temperature=temperature)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@given(case=binary_case(distinct=False))
def test_invariance_to_increasing_transforms_at_zero(case, name):
    s, y = case
    a = _hard(name, s, y)
    for transformed in (torch.exp(s), 3 * s + 1, s**3 + s):
        assert _hard(name, transformed, y).item() == pytest.approx(a.item(), abs=1e-12)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@given(case=binary_case(distinct=False), delta=st.floats(1e-3, 5.0),
       temperature=st.sampled_from([0.05, 0.5, 2.0]), pick=st.integers(0, 100))
def test_raising_a_positive_never_lowers_the_soft_metric(case, name, delta, temperature,
                                                         pick):
    s, y = case
    positives = torch.nonzero(y == 1).flatten()
    i = positives[pick % len(positives)]
    raised = s.clone()
    raised[i] += delta
    fn = FUNCTIONS[name]
    before = fn(s, y, task="binary", temperature=temperature).item()
    after = fn(raised, y, task="binary", temperature=temperature).item()
    assert after >= before - 1e-12


def test_raising_a_positive_past_another_positive():
    # Fully relaxed Smooth-AP decreases along this path (the raised positive leaves the
    # other behind); the soft AP here does not.
    y = torch.tensor([0, 1, 1])
    values = [soft_average_precision(torch.tensor([10.0, x, 0.0], dtype=torch.float64), y,
                                     task="binary").item()
              for x in np.linspace(-1.0, 3.0, 41)]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))
    assert values[-1] > values[0]


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
def test_gradient_signs(name):
    s = torch.tensor([0.5, 0.1, -0.3, 0.4, 0.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1, 0, 1, 0, 1])
    FUNCTIONS[name](s, y, task="binary", temperature=0.5).backward()
    assert torch.all(s.grad[y == 1] >= 0) and torch.all(s.grad[y == 0] <= 0)
    assert s.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------
# numerics and gradients


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
def test_extreme_inputs_are_finite(name, task, device):
    fn = FUNCTIONS[name]
    g = torch.Generator().manual_seed(5)
    if task == "binary":
        s = (torch.randint(0, 2, (20,), generator=g) * 2 - 1) * 1e4
        y = torch.randint(0, 2, (20,), generator=g)
        kw = {}
    elif task == "multilabel":
        s = (torch.randint(0, 2, (20, 3), generator=g) * 2 - 1) * 1e4
        y = torch.randint(0, 2, (20, 3), generator=g)
        kw = {"num_classes": 3}
    else:
        s = (torch.randint(0, 2, (20, 3), generator=g) * 2 - 1) * 1e4
        y = torch.randint(0, 3, (20,), generator=g)
        kw = {"num_classes": 3}
    y = y.to(device)
    for scores in (s.float(), torch.zeros_like(s.float())):  # extremes, then all tied
        for temperature in (1e-3, 1.0):
            x = scores.to(device).requires_grad_(True)
            value = fn(x, y, task=task, temperature=temperature, **kw)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(x.grad).all()
            assert 0 <= value.item() <= 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_accumulate_in_float32(dtype):
    g = torch.Generator().manual_seed(6)
    s = torch.randn(50, generator=g)
    y = torch.randint(0, 2, (50,), generator=g)
    x = s.to(dtype).requires_grad_(True)
    value = soft_average_precision(x, y, task="binary", temperature=0.2)
    assert value.dtype == torch.float32
    value.backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()
    ref = soft_average_precision(s.to(dtype).float(), y, task="binary", temperature=0.2)
    assert value.item() == pytest.approx(ref.item(), abs=1e-6)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("chunk", [None, 2])
def test_gradcheck_float64(name, chunk, device):
    g = torch.Generator().manual_seed(7)
    s = (torch.randperm(12, generator=g).double() * 0.37).to(device).requires_grad_(True)
    y = torch.tensor([1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0], device=device)
    fn = FUNCTIONS[name]
    assert torch.autograd.gradcheck(
        lambda x: fn(x, y, task="binary", temperature=0.6, chunk_size=chunk), (s,))
    s2 = (torch.randperm(18, generator=g).double().reshape(6, 3) * 0.29).to(device)
    s2.requires_grad_(True)
    y2 = torch.randint(0, 2, (6, 3), generator=g)
    y2[0], y2[1] = 1, 0
    y2 = y2.to(device)
    assert torch.autograd.gradcheck(
        lambda x: fn(x, y2, task="multilabel", num_classes=3, temperature=0.8,
                     chunk_size=chunk), (s2,))
    t = torch.tensor(0.7, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, tau: fn(x, y, task="binary", temperature=tau, chunk_size=chunk), (s, t))


def _naive_negatives_above(u, neg):
    """Full-matrix autograd version of the tiled statistic."""
    return (torch.sigmoid(u.unsqueeze(1) - u.unsqueeze(2)) * neg.unsqueeze(1)).sum(-1)


@pytest.mark.parametrize("rows", [1, 3, 64])
def test_tiled_function_equals_full_matrix_autograd(rows, device):
    g = torch.Generator().manual_seed(8)
    u = torch.randn(3, 40, generator=g, dtype=torch.float64).requires_grad_(True)
    neg = (torch.rand(3, 40, generator=g) < 0.6).double()
    up = torch.randn(3, 40, generator=g, dtype=torch.float64)
    ud = u.detach().to(device).requires_grad_(True)
    tiled = _ranking_tiles.NegativesAbove.apply(ud, neg.to(device), rows)
    (grad_tiled,) = torch.autograd.grad(tiled, ud, up.to(device))
    tiled, grad_tiled = tiled.cpu(), grad_tiled.cpu()
    full = _naive_negatives_above(u, neg)
    (grad_full,) = torch.autograd.grad(full, u, up)
    torch.testing.assert_close(tiled, full, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad_tiled, grad_full, atol=1e-12, rtol=0)


def _naive_positives_above(u, neg, cols, idx):
    """Full-matrix autograd version of the statistic of listed entries."""
    return (torch.sigmoid(u[cols] - u[cols, idx].unsqueeze(1)) * neg[cols]).sum(-1)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("rows", [1, 7, 64])
def test_listed_entries_function_equals_full_matrix_autograd(k, rows, device):
    g = torch.Generator().manual_seed(11)
    m = 40
    u = torch.randn(k, m, generator=g, dtype=torch.float64).requires_grad_(True)
    neg = (torch.rand(k, m, generator=g) < 0.6).double()
    flat = torch.randperm(k * m, generator=g)[:23]  # distinct entries, unsorted
    cols, idx = flat // m, flat % m
    up = torch.randn(23, generator=g, dtype=torch.float64)
    ud = u.detach().to(device).requires_grad_(True)
    tiled = _ranking_tiles.PositivesAbove.apply(ud, neg.to(device), cols.to(device),
                                               idx.to(device), rows)
    (grad_tiled,) = torch.autograd.grad(tiled, ud, up.to(device))
    full = _naive_positives_above(u, neg, cols, idx)
    (grad_full,) = torch.autograd.grad(full, u, up)
    torch.testing.assert_close(tiled.cpu(), full, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad_tiled.cpu(), grad_full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("k", [1, 3])
def test_listed_entries_function_has_second_derivatives(k):
    g = torch.Generator().manual_seed(12)
    u = torch.randn(k, 9, generator=g, dtype=torch.float64).requires_grad_(True)
    neg = (torch.rand(k, 9, generator=g) < 0.6).double()
    flat = torch.randperm(k * 9, generator=g)[:6]
    cols, idx = flat // 9, flat % 9
    assert torch.autograd.gradgradcheck(
        lambda x: _ranking_tiles.PositivesAbove.apply(x, neg, cols, idx, 4), (u,))


def _marked_columns(k: int, m: int, seed: int):
    """float64 scores (K, M) and 0/1 masks of positives and negatives, some entries
    neither (ignored); with three or more rows, row 1 has no positive and row 2 no
    negative."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(k, m, generator=g, dtype=torch.float64)
    label = torch.randint(0, 3, (k, m), generator=g)  # 0 negative, 1 positive, 2 ignored
    if k >= 3:
        label[1] = torch.where(label[1] == 1, 0, label[1])
        label[2] = torch.where(label[2] == 0, 1, label[2])
    return g, u, (label == 1).double(), (label == 0).double()


@pytest.mark.parametrize("listed", [True, False], ids=["positives", "every-row"])
@pytest.mark.parametrize("level", [False, True], ids=["binary", "levels"])
@pytest.mark.parametrize("k, rows", [(1, 1), (1, 64), (4, 3), (4, 7)])
def test_tiles_of_the_positives_equal_the_full_matrix(k, rows, level, listed, device,
                                                      monkeypatch):
    """`NegativesAbove` given the positives: their statistic as the full matrix gives it,
    0 at every other entry, and the full matrix's gradient; with the positives listed
    (the CPU's default; elsewhere with its synchronisation allowed) and with every row
    computed and masked (other devices' default)."""
    list_positives(monkeypatch, listed)
    g, u, pos, neg = _marked_columns(k, 40, seed=21 + k)
    lv = torch.randint(0, 3, (k, 40), generator=g).double() if level else None
    up = torch.randn(k, 40, generator=g, dtype=torch.float64)
    ud = u.to(device).requires_grad_(True)
    tiled = _ranking_tiles.NegativesAbove.apply(
        ud, neg.to(device), rows, None if lv is None else lv.to(device), pos.to(device))
    (grad_tiled,) = torch.autograd.grad(tiled, ud, up.to(device))
    u.requires_grad_(True)
    pairs = torch.sigmoid(u.unsqueeze(1) - u.unsqueeze(2)) * neg.unsqueeze(1)
    if lv is not None:
        pairs = pairs * (lv.unsqueeze(1) != lv.unsqueeze(2))
    full = pairs.sum(-1) * pos
    (grad_full,) = torch.autograd.grad(full, u, up)
    torch.testing.assert_close(tiled.cpu(), full, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad_tiled.cpu(), grad_full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("device_type, cpu_switch, device_switch, listed", [
    ("cpu", True, False, True), ("cpu", False, True, False),
    ("meta", True, False, False), ("meta", False, True, True)])
def test_each_device_type_reads_its_own_listing_switch(device_type, cpu_switch,
                                                       device_switch, listed, monkeypatch):
    """The CPU lists the positives by `RANKING_CPU_LISTS_POSITIVES` (on by default); any
    other device (a `meta` tensor stands for one) by `RANKING_DEVICE_LISTS_POSITIVES`
    (off by default, since there the listing synchronises); never without positives."""
    monkeypatch.setattr(_tuning, "RANKING_CPU_LISTS_POSITIVES", cpu_switch)
    monkeypatch.setattr(_tuning, "RANKING_DEVICE_LISTS_POSITIVES", device_switch)
    u = torch.zeros(2, 5, device=device_type)
    assert _ranking_tiles._lists_positives(u, torch.ones_like(u)) is listed
    assert not _ranking_tiles._lists_positives(u, None)


def test_listing_switches_default_to_the_cpu_only():
    assert _tuning.RANKING_CPU_LISTS_POSITIVES is True
    assert _tuning.RANKING_DEVICE_LISTS_POSITIVES is False


@pytest.mark.parametrize("listed", [True, False], ids=["positives", "every-row"])
def test_tiles_of_the_positives_are_zero_elsewhere_even_beside_a_nan(listed, monkeypatch):
    """A NaN score at an ignored entry reaches the positives' statistic (where the tiles
    read that entry) but never the other entries, which stay 0 on either path."""
    list_positives(monkeypatch, listed)
    _, u, pos, neg = _marked_columns(3, 12, seed=41)
    ignored = (pos == 0) & (neg == 0)
    u[ignored.nonzero()[0].tolist()] = float("nan")
    out = _ranking_tiles.NegativesAbove.apply(u, neg, 5, None, pos)
    assert (out[pos == 0] == 0).all()


@pytest.mark.parametrize("listed", [True, False], ids=["positives", "every-row"])
@pytest.mark.parametrize("k", [1, 3])
def test_tiles_of_the_positives_have_second_derivatives(k, listed, monkeypatch):
    """gradcheck and gradgradcheck of `NegativesAbove` given the positives, listed or
    not; also where no row has a positive (no tile at all, and still a graph)."""
    list_positives(monkeypatch, listed)
    _, u, pos, neg = _marked_columns(k, 11, seed=31)
    for p in (pos, torch.zeros_like(pos)):
        def fn(x, p=p):
            return _ranking_tiles.NegativesAbove.apply(x, neg, 4, None, p)

        x = u.clone().requires_grad_()
        assert fn(x).requires_grad
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


def _spy_tiles(monkeypatch) -> list[tuple[int, int, int, int]]:
    """Record `(start, stop, k, skip)` of every tile the forward and backward passes run,
    checking that the columns left out (before `skip`) hold no negative of the rows read
    and that the rows left out (from `k` on) have no positive from `start` on."""
    seen = []
    tiles = _ranking_tiles._tiles

    def spy(u, neg, level, rows, count, extent):
        for tile in tiles(u, neg, level, rows, count, extent):
            start, stop, k, skip = tile[:4]
            assert not neg[:k, :skip].any()
            if getattr(extent, "__self__", None) is not None:  # a listing
                listing = extent.__self__
                assert not listing.is_pos[k:, start:].any()
            seen.append((start, stop, k, skip))
            yield tile

    monkeypatch.setattr(_ranking_tiles, "_tiles", spy)
    return seen


def test_listed_tiles_cover_the_pairs_of_a_positive_and_a_negative(monkeypatch):
    """On the CPU the tiles run over the first rows up to the largest number of positives
    of a column and the columns from the smallest start of its negatives on, positives
    first and negatives last: 10 rows and 80 columns of a column of 100 samples with 10
    positives, 80 negatives and 10 ignored, rather than 100 x 100 (forward and
    backward)."""
    seen = _spy_tiles(monkeypatch)
    g = torch.Generator().manual_seed(5)
    y = torch.tensor([1] * 10 + [0] * 80 + [-1] * 10)[torch.randperm(100, generator=g)]
    x = torch.randn(100, generator=g, requires_grad=True)
    soft_auroc(x, y, task="binary", ignore_index=-1).backward()
    assert seen == [(0, 10, 1, 20)] * 2
    seen.clear()
    list_positives(monkeypatch, False)
    soft_auroc(x, y, task="binary", ignore_index=-1).backward()
    assert seen == [(0, 100, 1, 0)] * 2


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_step_lists_the_positives_once(create_graph, monkeypatch):
    """The backward pass reuses the forward pass's listing (on the CPU its sort and gathers
    are about a seventh of a retrieval step at B = 512; elsewhere it would be a second
    synchronisation), also when it builds a graph."""
    built = []
    listing = _ranking_tiles._Listing

    def spy(*args):
        built.append(listing(*args))
        return built[-1]

    monkeypatch.setattr(_ranking_tiles, "_Listing", spy)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (60, 3), generator=g)
    value = soft_average_precision(x, y, task="multilabel", num_classes=3, chunk_size=7)
    (grad,) = torch.autograd.grad(value, x, create_graph=create_graph)
    assert len(built) == 1 and grad.requires_grad == create_graph


def test_listed_tiles_leave_out_the_columns_past_their_positives(monkeypatch):
    """Columns are listed by their numbers of positives, most first, and a tile runs over
    the columns with a positive among its rows only, against the samples from the
    earliest first negative of those columns on: with tiles of 10 rows, a column of 90
    positives (and 10 ignored samples) and one of 10 positives and 80 negatives, the
    first tile takes both columns from sample 20 on, the other eight the first column
    alone, which has no negative: no pair at all. Before, every tile took both columns:
    90 rows x 80 samples of each."""
    seen = _spy_tiles(monkeypatch)
    g = torch.Generator().manual_seed(5)
    y = torch.tensor([1] * 10 + [0] * 80 + [-1] * 10)[torch.randperm(100, generator=g)]
    y2 = torch.stack([y, torch.where(y == 0, 1, y)], 1)  # 90 positives, no negative
    x = torch.randn(100, 2, generator=g, requires_grad=True)
    soft_average_precision(x, y2, task="multilabel", num_classes=2, ignore_index=-1,
                           average="none", chunk_size=10).sum().backward()
    tiles = [(0, 10, 2, 20)] + [(start, start + 10, 1, 100) for start in range(10, 90, 10)]
    assert seen == tiles * 2


@pytest.mark.parametrize("name", ["auroc", "ap", "cap", "partial"])
@pytest.mark.parametrize("average", ["macro", "micro"])
def test_listing_the_positives_changes_no_value_or_gradient(name, average, monkeypatch):
    """Multilabel soft AUROC (full and partial), AP and cAP with an ignored label, values
    and gradients: the same with the positives listed and with every pair computed."""
    g = torch.Generator().manual_seed(17)
    x = torch.randn(300, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (300, 3), generator=g)
    y[torch.rand(300, 3, generator=g) < 0.1] = -1
    y[:, 2] = torch.where(torch.rand(300, generator=g) < 0.9, 0, y[:, 2])  # few positives
    fn = FUNCTIONS["auroc" if name == "partial" else name]
    kw: dict = dict(task="multilabel", num_classes=3, average=average, ignore_index=-1,
                    temperature=0.4, chunk_size=32)
    if name == "partial":
        kw["max_fpr"] = 0.2
    results = []
    for listed in (True, False):
        list_positives(monkeypatch, listed)
        xi = x.clone().requires_grad_()
        value = fn(xi, y, **kw)
        results.append((value, *torch.autograd.grad(value, xi)))
    torch.testing.assert_close(results[0], results[1], atol=1e-12, rtol=0)


@given(data=st.data(), name=st.sampled_from(["auroc", "ap", "cap", "partial"]),
       average=st.sampled_from(["macro", "weighted", "none", "micro"]),
       chunk=st.integers(1, 9), temperature=st.sampled_from([0.05, 0.5, 2.0]))
def test_listing_the_positives_is_exact_on_any_labels(data, name, average, chunk,
                                                       temperature):
    """Any multilabel target with ignored entries (columns without a positive, without
    a negative, wholly ignored; one sample or none), tied scores: the same values and
    gradients with the positives listed and with every pair computed."""
    n = data.draw(st.integers(0, 14), label="n")
    c = data.draw(st.integers(1, 4), label="c")
    scores = data.draw(arrays(np.float64, (n, c), elements=st.sampled_from(
        [-3.0, -0.5, 0.0, 0.5, 1.0, 4.0])), label="scores")
    labels = data.draw(arrays(np.int64, (n, c), elements=st.integers(-1, 1)), label="labels")
    x, y = torch.from_numpy(scores), torch.from_numpy(labels)
    kw: dict = dict(task="multilabel", num_classes=c, average=average, ignore_index=-1,
                    temperature=temperature, chunk_size=chunk)
    if name == "partial":
        kw["max_fpr"] = 0.3
    results = []
    for listed in (True, False):
        # hypothesis runs many examples in one call: a fixture's patch would outlive each
        with pytest.MonkeyPatch.context() as mp:
            list_positives(mp, listed)
            xi = x.clone().requires_grad_()
            value = FUNCTIONS["auroc" if name == "partial" else name](xi, y, **kw)
            results.append((value, *torch.autograd.grad(value.sum(), xi)))
    torch.testing.assert_close(results[0], results[1], atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("average", ["macro", "weighted", "none", "micro"])
@pytest.mark.parametrize("ignore", [False, True])
def test_multiclass_soft_path_equals_one_vs_rest_multilabel(name, average, ignore, device):
    """Multiclass scores only the positive of each sample against its class's negatives;
    the multilabel path on the log-probabilities and one-hot targets scores every pair.
    Both are the same one-vs-rest metric, values and gradients."""
    g = torch.Generator().manual_seed(13)
    n, c = 37, 4
    x = torch.randn(n, c, generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    y = torch.randint(0, c, (n,), generator=g)
    y[:c] = torch.arange(c)
    kw: dict = dict(num_classes=c, average=average, temperature=0.3, chunk_size=5)
    if name == "auroc" and average != "micro":
        kw["max_fpr"] = 0.4 if ignore else None
    multilabel_target = torch.nn.functional.one_hot(y, c)
    if ignore:
        y[7:12] = -100
        multilabel_target[7:12] = -100
        kw["ignore_index"] = -100
    fn = FUNCTIONS[name]
    got = fn(x, y.to(device), task="multiclass", **kw)
    (grad_got,) = torch.autograd.grad(got.sum(), x)
    ref = fn(torch.log_softmax(x, dim=1), multilabel_target.to(device), task="multilabel",
             **kw)
    (grad_ref,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad_got, grad_ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("average", ["macro", "micro"])
def test_multiclass_soft_path_on_an_empty_batch(name, average):
    """No samples: no tiles, a zero value and an empty gradient (the backward pass once
    concatenated an empty list)."""
    x = torch.empty(0, 3, requires_grad=True)
    value = FUNCTIONS[name](x, torch.empty(0, dtype=torch.long), task="multiclass",
                            num_classes=3, average=average, temperature=0.5)
    value.backward()
    assert value.item() == 0 and x.grad is not None and x.grad.shape == (0, 3)


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_multiclass_soft_path_gradgradcheck(average):
    g = torch.Generator().manual_seed(14)
    x = torch.randn(9, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    assert torch.autograd.gradgradcheck(
        lambda z: soft_average_precision(z, y, task="multiclass", num_classes=3,
                                         average=average, temperature=0.5, chunk_size=2),
        (x,))


def test_automatic_tile_size_depends_on_the_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert _ranking_tiles.tile_rows(1, 4096, None, cpu) == (
        _tuning.RANKING_TILE_ELEMENTS // 4096)
    assert _ranking_tiles.tile_rows(1, 4096, None, cuda) == 4096  # one tile
    assert _ranking_tiles.tile_rows(3, 4096, 7, cuda) == 7


def test_automatic_tiling_covers_large_inputs(monkeypatch, device):
    monkeypatch.setattr(_tuning, "RANKING_TILE_ELEMENTS", 500)
    monkeypatch.setattr(_tuning, "RANKING_DEVICE_TILE_ELEMENTS", 500)
    g = torch.Generator().manual_seed(9)
    s = torch.randn(300, generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    y = torch.randint(0, 2, (300,), generator=g).to(device)
    a = soft_average_precision(s, y, task="binary", temperature=0.3)
    (ga,) = torch.autograd.grad(a, s)
    b = soft_average_precision(s, y, task="binary", temperature=0.3, chunk_size=300)
    (gb,) = torch.autograd.grad(b, s)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    torch.testing.assert_close(ga, gb, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------
# Modules


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
def test_module_equals_function(name):
    g = torch.Generator().manual_seed(10)
    s = torch.randn(25, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (25, 3), generator=g)
    options = dict(task="multilabel", num_classes=3, average="weighted", ignore_index=None)
    loss_fn = LOSSES[name](temperature=0.4, **options)
    fn = FUNCTIONS[name]
    assert loss_fn(s, y).item() == pytest.approx(
        1 - fn(s, y, temperature=0.4, **options).item(), abs=1e-12)
    assert loss_fn.metric(s, y).item() == pytest.approx(
        fn(s, y, temperature=0, **options).item(), abs=1e-12)
    assert not loss_fn.metric(s, y).requires_grad
    # a tensor temperature is a buffer; a Parameter is learnable
    buffered = LOSSES[name](task="binary", temperature=torch.tensor(0.5))
    assert "temperature" in dict(buffered.named_buffers())
    learnable = LOSSES[name](task="binary", temperature=torch.nn.Parameter(torch.tensor(0.5)))
    x = torch.randn(10, generator=g)
    t = torch.tensor([1, 0] * 5)
    learnable(x, t).backward()
    assert learnable.temperature.grad is not None
    assert "task='binary'" in repr(buffered)


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("temperature", [0, 0.5])
@pytest.mark.parametrize("where", ["positive", "negative", "ignored"])
def test_nan_reaches_the_result_without_validation(name, temperature, where):
    """Without validation a NaN score is never hidden: its column is NaN, and so is every
    average that reads the column, at temperature 0 too (where the sort and the
    comparisons would otherwise place it somewhere and give a finite value)."""
    fn = FUNCTIONS[name]
    y = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]])
    at = {"positive": (0, 0), "negative": (1, 0), "ignored": (3, 0)}[where]
    if where == "ignored":
        y[at] = -1
    s = torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(6, 2)
    s[at] = float("nan")
    kw = dict(temperature=temperature, ignore_index=-1, validate_args=False)
    per_column = fn(s, y, task="multilabel", num_classes=2, average="none", **kw)
    assert per_column[0].isnan() and per_column[1].isfinite()
    for average in ("macro", "weighted", "micro"):
        assert fn(s, y, task="multilabel", num_classes=2, average=average, **kw).isnan()
    assert fn(s[:, 0], y[:, 0], task="binary", **kw).isnan()
    assert fn(s[:, 1], y[:, 1], task="binary", **kw).isfinite()


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("temperature", [0, 0.5])
def test_binary_result_is_one_number_for_every_average(name, temperature):
    """A binary target has one column: every `average` gives the same 0-d value, `"none"`
    included (not a one-element vector), defined or not."""
    fn = FUNCTIONS[name]
    s = torch.tensor([0.3, -1.0, 2.0, 0.1, -0.4], dtype=torch.float64)
    for y in (torch.tensor([0, 1, 1, 0, 1]), torch.zeros(5, dtype=torch.long)):
        values = [fn(s, y, task="binary", average=a, temperature=temperature)
                  for a in ("micro", "macro", "weighted", "none")]
        for v in values:
            assert v.shape == () and v.item() == values[0].item()


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
@pytest.mark.parametrize("task, max_fpr", [("binary", None), ("multilabel", None),
                                           ("multiclass", None), ("binary", 0.4)])
def test_tensor_temperature_equals_the_number(name, task, max_fpr):
    """A tensor temperature (a Module's buffer, or a learned Parameter) gives the value and
    the score gradient of the same number, at a temperature other than 1 (where dividing
    and multiplying by it would agree); its own gradient is exact (gradcheck)."""
    if max_fpr is not None and name != "auroc":
        pytest.skip("max_fpr is an option of the AUROC")
    g = torch.Generator().manual_seed(11)
    shape = (12,) if task == "binary" else (12, 3)
    s = torch.randn(shape, generator=g, dtype=torch.float64)
    if task == "binary":
        y, options = torch.tensor([0, 1] * 6), dict(task="binary")
    elif task == "multilabel":
        y, options = torch.randint(0, 2, shape, generator=g), dict(task=task, num_classes=3)
        y[:2] = torch.tensor([[0, 0, 0], [1, 1, 1]])
    else:
        y, options = torch.arange(12) % 3, dict(task=task, num_classes=3)
    if max_fpr is not None:
        options["max_fpr"] = max_fpr
    fn = FUNCTIONS[name]
    results = []
    for tau in (0.3, torch.tensor(0.3, dtype=torch.float64)):
        x = s.clone().requires_grad_()
        value = fn(x, y, temperature=tau, **options)
        (grad,) = torch.autograd.grad(value, x)
        results.append((value, grad))
    torch.testing.assert_close(results[1], results[0], rtol=1e-12, atol=1e-12)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fn(s, y, temperature=t, **options), (tau,))


# ---------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("name", ["auroc", "ap", "cap"])
def test_errors(name):
    fn = FUNCTIONS[name]
    fname = fn.__name__
    s, y = torch.randn(4), torch.tensor([0, 1, 1, 0])
    with pytest.raises(ValueError, match=rf"{fname}: expected `task` to be one of"):
        fn(s, y, task="ranking")
    with pytest.raises(ValueError, match=rf"{fname}: expected `average` to be one of"):
        fn(s, y, task="binary", average="samples")
    with pytest.raises(ValueError, match=rf"{fname}: expected `temperature` to be >= 0, "
                                         r"got -1.0\."):
        fn(s, y, task="binary", temperature=-1.0)
    with pytest.raises(ValueError, match=r"expected `chunk_size` to be an int >= 1, got 0"):
        fn(s, y, task="binary", chunk_size=0)
    with pytest.raises(ValueError, match=r"expected `num_classes` to be an int >= 2 when "
                                         r"task='multiclass'"):
        fn(torch.randn(4, 3), y, task="multiclass")
    with pytest.raises(ValueError, match=r"expected `target` to be of shape \(4,\)"):
        fn(s, torch.tensor([0, 1, 1]), task="binary")
    with pytest.raises(ValueError, match=r"expected `input` to be of shape \(N, 3, \.\.\.\) "
                                         r"for task='multilabel'"):
        fn(s, y, task="multilabel", num_classes=3)
    with pytest.raises(ValueError, match=r"expected `input` to be of shape \(N, 4, \.\.\.\)"):
        fn(torch.randn(4, 3), y, task="multiclass", num_classes=4)
    with pytest.raises(ValueError, match=r"expected `target` to be integer values in "
                                         r"\{0, 1\}, got a value 2"):
        fn(s, torch.tensor([0, 1, 2, 0]), task="binary")
    with pytest.raises(ValueError, match=r"expected `target` to be integer values in "
                                         r"\[0, 3\)"):
        fn(torch.randn(4, 3), torch.tensor([0, 1, 3, 0]), task="multiclass", num_classes=3)
    with pytest.raises(ValueError, match=r"expected `input` to be finite"):
        fn(torch.tensor([0.0, float("nan"), 1.0, 2.0]), y, task="binary")
    with pytest.raises(TypeError, match=r"expected `input` to be a floating-point tensor"):
        fn(torch.tensor([0, 1, 2, 3]), y, task="binary")
    with pytest.raises(TypeError, match=r"expected `target` to be an integer tensor"):
        fn(torch.randn(4, 3), y.float(), task="multiclass", num_classes=3)
    # ignored values pass the target check
    fn(s, torch.tensor([0, 1, -1, 0]), task="binary", ignore_index=-1)
    loss_cls = LOSSES[name]
    with pytest.raises(ValueError, match=rf"{loss_cls.__name__}: expected `temperature`"):
        loss_cls(task="binary", temperature=-0.1)
    with pytest.raises(ValueError, match=rf"{loss_cls.__name__}: expected `task`"):
        loss_cls(task="regression")


# ---------------------------------------------------------------------------------------
# memory and the benchmark script


_MEMORY_SCRIPT = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[2])
from benchmarks.ranking import peak_tracker
from softmetrics.functional import soft_average_precision
torch.set_num_threads(2)
n = int(sys.argv[1])
g = torch.Generator().manual_seed(0)
s = torch.randn(n, generator=g).requires_grad_(True)
y = (torch.rand(n, generator=g) < 0.1).long()
soft_average_precision(s[:64], y[:64], task="binary", temperature=0.1).backward()
reset, peak = peak_tracker()
base = reset()
value = soft_average_precision(s, y, task="binary", temperature=0.1)
value.backward()
print(json.dumps({"extra_mib": (peak() - base) / 1024, "finite": bool(s.grad.isfinite().all())}))
"""


@pytest.mark.slow
def test_hundred_thousand_samples_fit_in_a_few_gigabytes():
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, "100000", str(ROOT)],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["finite"]
    assert result["extra_mib"] < 2048  # the full matrix alone would be 40 GB


_MULTICLASS_MEMORY_SCRIPT = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[2])
from benchmarks.ranking import peak_tracker
from softmetrics.functional import soft_average_precision
torch.set_num_threads(1)
n, c = 4000, 10
g = torch.Generator().manual_seed(0)
x = torch.randn(n, c, generator=g).requires_grad_(True)
y = torch.randint(0, c, (n,), generator=g)
def step(k):
    if sys.argv[1] == "multiclass":
        args, task = (x[:k], y[:k]), "multiclass"
    else:  # the same value from every pair
        args = torch.log_softmax(x[:k], 1), torch.nn.functional.one_hot(y[:k], c)
        task = "multilabel"
    soft_average_precision(*args, task=task, num_classes=c, temperature=0.1).backward()
step(64)
reset, peak = peak_tracker()
base = reset()
step(n)
print(json.dumps({"extra_mib": (peak() - base) / 1024}))
"""


def test_multiclass_path_needs_no_more_memory_than_every_pair():
    """The positives-only path reuses its tile buffers: with a fresh tile per step the
    CPU heap grew to about 100 MiB at (4000, 10), against about 15 for every pair."""
    peaks = {}
    for path in ("multiclass", "every pair"):
        out = subprocess.run([sys.executable, "-c", _MULTICLASS_MEMORY_SCRIPT, path,
                              str(ROOT)], check=True, capture_output=True, text=True,
                             cwd=ROOT).stdout
        peaks[path] = json.loads(out.strip().splitlines()[-1])["extra_mib"]
    assert peaks["multiclass"] < 1.5 * peaks["every pair"] + 8, peaks


def test_benchmark_smoke(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ranking.py"), "--smoke",
                    "--out", str(tmp_path)], check=True, cwd=ROOT, env=env,
                   capture_output=True, text=True, timeout=300)
    result = json.loads((tmp_path / "ranking.json").read_text())
    assert result["machine"]["torch"] == torch.__version__
    assert {row["method"] for row in result["rows"]} >= {"softmetrics", "full matrix"}
    multiclass = {(r["method"], r["n"]): r for r in result["rows"]
                  if r["setting"] == "multiclass"}
    assert multiclass[("softmetrics", 200)]["pairs"] == 200**2
    assert multiclass[("every pair", 200)]["pairs"] == 4 * 200**2
    assert "median_s" in multiclass[("every pair", 100)]
    assert "limit" in multiclass[("every pair", 200)]["skipped"]  # above the smoke's pairs
    tiles = result["tiles"]["rows"]
    assert len(tiles) == 3 * 2 and all(r["median_s"] > 0 for r in tiles)
    assert [r["ratio"] for r in tiles if r["tile_elements"] == 2**12] == [1.0] * 3
    page = (tmp_path / "ranking.md").read_text()
    assert "## Multiclass macro soft AP, C = 4 classes" in page
    assert (tmp_path / "ranking_tiles_table.md").read_text() in page


def test_benchmark_multiclass_methods_are_the_same_metric():
    """The benchmark's two multiclass methods time the same value."""
    from benchmarks.ranking import multiclass_step
    torch.testing.assert_close(multiclass_step("softmetrics", 50, 5, "cpu")(),
                               multiclass_step("every pair", 50, 5, "cpu")())


def test_benchmark_multilabel_methods_are_the_same_metric_over_counted_pairs(monkeypatch):
    """The benchmark's multilabel methods time the same value; the pairs it records are
    those the tiles compute in a pass: C N^2 for every pair, at least the labels' pairs
    of a positive and a negative with the positives listed, and with these long-tailed
    labels in tiles of a few rows fewer than a quarter of every pair."""
    import benchmarks.ranking as bench
    target = bench.multilabel_target(400, 6)
    rates = target.double().mean(0)
    assert rates[0] > 0.4 and rates[-1] < 0.03 and (rates.diff() < 0).all()
    positives = target.sum(0)
    monkeypatch.setattr(_tuning, "RANKING_TILE_ELEMENTS", 2**14)  # tiles of 6 rows
    values, counted = {}, {}
    for method in ("softmetrics", bench.LISTED, "every pair"):
        run = bench.multilabel_step(method, 400, 6, "cpu")
        values[method] = run()
        counted[method] = bench.tile_pairs(run)
    assert counted["every pair"] == 6 * 400**2
    assert (int((positives * (400 - positives)).sum()) <= counted["softmetrics"]
            == counted[bench.LISTED] < counted["every pair"] / 4)
    torch.testing.assert_close(values["softmetrics"], values["every pair"])
    torch.testing.assert_close(values[bench.LISTED], values["every pair"])


def test_benchmark_plot_of_a_run_stopped_before_its_first_row(tmp_path):
    """A run stopped by its budget before any row is measured still draws its (empty)
    plot: a legend below the panels with no line to list is left out."""
    from benchmarks.ranking import plot
    plot({"rows": [{"device": "cpu", "setting": "binary", "method": "softmetrics",
                    "n": 8, "skipped": "time budget of 0 s spent"}]}, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_benchmark_tile_sizes_restore_the_constant_and_threads(monkeypatch):
    """The tile-size part times each size on one thread, then restores both."""
    import benchmarks._ranking_tiles as tiles
    from softmetrics import _tuning
    default, threads = _tuning.RANKING_TILE_ELEMENTS, torch.get_num_threads()
    seen = []
    original = tiles.soft_average_precision

    def spy(*args, **kwargs):
        seen.append((_tuning.RANKING_TILE_ELEMENTS, torch.get_num_threads()))
        return original(*args, **kwargs)

    monkeypatch.setattr(tiles, "soft_average_precision", spy)
    rows = tiles.tile_sizes([("multiclass", 32, 3)], [2**8, 2**10], 2, 0.001, 0.1, log=str)
    assert {t for t, _ in seen} == {2**8, 2**10} and {n for _, n in seen} == {1}
    assert (_tuning.RANKING_TILE_ELEMENTS, torch.get_num_threads()) == (default, threads)
    assert [r["tile_elements"] for r in rows] == [2**8, 2**10]


@pytest.mark.parametrize("cls", [SoftAveragePrecisionLoss, SoftCalibratedAveragePrecisionLoss])
def test_ranking_losses_name_themselves_in_their_errors(cls):
    """An option the loss does not take, and bad data, are reported under the loss's
    name, as the other families' losses report them."""
    with pytest.raises(TypeError, match=rf"{cls.__name__}.*max_fpr"):
        cls(task="binary", max_fpr=0.5)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: expected `target`"):
        cls(task="binary")(torch.randn(5), torch.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"^SoftAUROCLoss: expected `target`"):
        SoftAUROCLoss(task="binary")(torch.randn(5), torch.tensor([0, 1, 2, 0, 1]))
