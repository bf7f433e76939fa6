"""Classification surrogates: exact against scikit-learn at temperature 0, and properties."""

from __future__ import annotations

import itertools
import math
import pathlib
import re

import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st

import softmetrics
from softmetrics import _tuning, functional as F
from softmetrics.functional._classification_counts import decision_counts

from .allocations import Allocations, Operations
from .references import hard_predictions, reference, reference_top_k, reference_tversky

METRICS = {
    "accuracy": F.soft_accuracy,
    "precision": F.soft_precision,
    "recall": F.soft_recall,
    "f1": F.soft_f1_score,
    "fbeta": F.soft_fbeta_score,
    "jaccard": F.soft_jaccard_index,
    "mcc": F.soft_matthews_corrcoef,
}
LOSSES = {
    "accuracy": softmetrics.SoftAccuracyLoss,
    "precision": softmetrics.SoftPrecisionLoss,
    "recall": softmetrics.SoftRecallLoss,
    "f1": softmetrics.SoftF1Loss,
    "fbeta": softmetrics.SoftFBetaLoss,
    "jaccard": softmetrics.SoftJaccardLoss,
    "mcc": softmetrics.SoftMCCLoss,
}
AVERAGES = ["micro", "macro", "weighted", "none"]
IGNORE = 255


@st.composite
def problems(draw, tasks=("binary", "multiclass", "multilabel"), max_n=40, extra_dims=True):
    """A classification problem: logits on a coarse grid (ties happen), targets, options."""
    task = draw(st.sampled_from(tasks))
    num_classes = draw(st.sampled_from([2, 3, 5, 50])) if task != "binary" else 1
    n = draw(st.integers(1, max_n))
    spatial = draw(st.sampled_from([(), (), (3,), (2, 2)])) if extra_dims else ()
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if task == "binary":
        shape, tshape = (n, *spatial), (n, *spatial)
    elif task == "multiclass":
        shape, tshape = (n, num_classes, *spatial), (n, *spatial)
    else:
        shape, tshape = (n, num_classes, *spatial), (n, num_classes, *spatial)
    logits = rng.integers(-12, 13, size=shape).astype(np.float32) / 4
    if task == "multiclass":
        # few classes present, so that absent classes are common
        present = rng.integers(1, num_classes + 1)
        target = rng.integers(0, present, size=tshape)
    else:
        target = (rng.random(tshape) < rng.random()).astype(np.int64)
    use_ignore = draw(st.booleans())
    ignore_index = None
    if use_ignore:
        # a multiclass ignore_index may also be a class (0): it then leaves the averages
        ignore_index = IGNORE if task != "multiclass" or draw(st.booleans()) else 0
        if ignore_index == IGNORE:
            target = np.where(rng.random(tshape) < 0.2, IGNORE, target)
    absent = None if task == "binary" else draw(st.sampled_from([None, "skip", "include"]))
    return dict(task=task, num_classes=num_classes, logits=logits, target=target,
                ignore_index=ignore_index, absent_classes=absent,
                threshold=draw(st.sampled_from([0.5, 0.3, 0.8])),
                zero_division=draw(st.sampled_from([0.0, 1.0])))


def _call(fn, prob, device=None, **options):
    """Call `fn` on the problem's tensors (on `device`), returning the value on the CPU."""
    kwargs = dict(task=prob["task"], ignore_index=prob["ignore_index"],
                  threshold=prob["threshold"], zero_division=prob["zero_division"])
    if prob.get("absent_classes") is not None:
        kwargs["absent_classes"] = prob["absent_classes"]
    if prob["task"] != "binary":
        kwargs["num_classes"] = prob["num_classes"]
    kwargs.update(options)
    logits = torch.from_numpy(prob["logits"]).to(device)
    target = torch.from_numpy(prob["target"]).to(device)
    return fn(logits, target, **kwargs).cpu()


def _reference_value(name, prob, average, samplewise, **extra):
    logits, target, ignore = prob["logits"], prob["target"], prob["ignore_index"]
    keep = target != ignore if ignore is not None else np.ones_like(target, bool)
    pred = hard_predictions(logits, prob["task"], prob["threshold"])
    target = np.where(keep, target, 0)
    task, c, zd = prob["task"], prob["num_classes"], prob["zero_division"]
    extra = dict(extra, absent_classes=prob["absent_classes"], ignore_index=ignore)

    def one(p, t, k):
        if name == "tversky":
            return reference_tversky(p, t, k, task=task, num_classes=c, average=average,
                                     zero_division=zd, **extra)
        return reference(name, p, t, k, task=task, num_classes=c, average=average,
                         zero_division=zd, **extra)

    if samplewise:
        return np.stack([np.asarray(one(pred[i:i + 1], target[i:i + 1], keep[i:i + 1]))
                         for i in range(len(pred))])
    return np.asarray(one(pred, target, keep))


@given(prob=problems(), name=st.sampled_from(sorted(METRICS)), average=st.sampled_from(AVERAGES),
       samplewise=st.booleans())
def test_hard_equals_sklearn(prob, name, average, samplewise, device):
    if name == "fbeta":
        extra = {"beta": 2.0}
    else:
        extra = {}
    got = _call(METRICS[name], prob, device, temperature=0, average=average,
                multidim_average="samplewise" if samplewise else "global", **extra)
    want = _reference_value(name, prob, average, samplewise, **extra)
    if prob["task"] == "binary":
        assert got.shape == ((len(prob["logits"]),) if samplewise else ())
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


def _grid_problem(task: str, ignore_index: int | None, absent: str | None,
                  zero_division: float, seed: int) -> dict:
    """One fixed problem of `problems`' form: 4 classes of which the last never is a
    target, logits on a coarse grid (ties), an extra axis of 3 positions."""
    rng = np.random.default_rng(seed)
    c = 1 if task == "binary" else 4
    shape = (6, 3) if task == "binary" else (6, c, 3)
    tshape = (6, 3) if task != "multilabel" else shape
    logits = rng.integers(-12, 13, size=shape).astype(np.float32) / 4
    if task == "multiclass":
        target = rng.integers(0, c - 1, size=tshape)
    else:
        target = (rng.random(tshape) < 0.4).astype(np.int64)
        if task == "multilabel":
            target[:, -1] = 0
    if ignore_index == IGNORE:
        target = np.where(rng.random(tshape) < 0.2, IGNORE, target)
    return dict(task=task, num_classes=c, logits=logits, target=target,
                ignore_index=ignore_index, absent_classes=absent, threshold=0.5,
                zero_division=zero_division)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_hard_equals_sklearn_for_every_option(task, name):
    """`test_hard_equals_sklearn` draws a few dozen problems; this walks every combination
    of the options that choose a formula or an average (average, samplewise, absent
    classes, ignore_index inside and outside the classes, zero_division) on fixed
    problems, so that none is left to chance."""
    ignores = [None, IGNORE] + ([0] if task == "multiclass" else [])
    absents = [None] if task == "binary" else [None, "skip", "include"]
    extra = {"beta": 2.0} if name == "fbeta" else {}
    grid = itertools.product(AVERAGES, [False, True], absents, ignores, [0.0, 1.0])
    for seed, (average, samplewise, absent, ignore, zd) in enumerate(grid):
        prob = _grid_problem(task, ignore, absent, zd, seed)
        got = _call(METRICS[name], prob, temperature=0, average=average,
                    multidim_average="samplewise" if samplewise else "global", **extra)
        want = _reference_value(name, prob, average, samplewise, **extra)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7, err_msg=str(
            dict(average=average, samplewise=samplewise, absent=absent, ignore=ignore, zd=zd)))


@given(prob=problems(), average=st.sampled_from(AVERAGES),
       alpha=st.sampled_from([0.0, 0.3, 0.5, 1.0, 2.0]), beta=st.sampled_from([0.0, 0.7, 1.0]))
def test_hard_tversky_equals_loop(prob, average, alpha, beta, device):
    assume(alpha + beta > 0)
    got = _call(F.soft_tversky_index, prob, device, temperature=0, average=average,
                alpha=alpha, beta=beta)
    want = _reference_value("tversky", prob, average, False, alpha=alpha, beta=beta)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


@given(prob=problems(tasks=("multiclass",), extra_dims=False), average=st.sampled_from(AVERAGES))
def test_tversky_special_cases(prob, average, device):
    kw = dict(temperature=0.7, average=average)
    dice = _call(F.soft_tversky_index, prob, device, alpha=0.5, beta=0.5, **kw)
    torch.testing.assert_close(dice, _call(F.soft_f1_score, prob, device, **kw))
    jac = _call(F.soft_tversky_index, prob, device, alpha=1.0, beta=1.0, **kw)
    torch.testing.assert_close(jac, _call(F.soft_jaccard_index, prob, device, **kw))
    prec = _call(F.soft_tversky_index, prob, device, alpha=1.0, beta=0.0, **kw)
    torch.testing.assert_close(prec, _call(F.soft_precision, prob, device, **kw))
    b = 2.0
    fb = _call(F.soft_tversky_index, prob, device, alpha=1 / (1 + b * b),
               beta=b * b / (1 + b * b), **kw)
    torch.testing.assert_close(fb, _call(F.soft_fbeta_score, prob, device, beta=b, **kw))


@st.composite
def distinct_scores(draw):
    c = draw(st.sampled_from([3, 5, 50]))
    n = draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    logits = np.stack([rng.permutation(c) for _ in range(n)]).astype(np.float32) / 2
    target = rng.integers(0, c, size=n)
    return logits, target, c


@given(data=distinct_scores(), k=st.integers(1, 4))
def test_top_k_equals_sklearn(data, k):
    from sklearn.metrics import top_k_accuracy_score

    logits, target, c = data
    k = min(k, c - 1)  # k >= C is a perfect score, which scikit-learn warns about
    got = F.soft_top_k_accuracy(torch.from_numpy(logits), torch.from_numpy(target),
                                num_classes=c, k=k, temperature=0)
    want = top_k_accuracy_score(target, logits, k=k, labels=list(range(c)))
    assert got.item() == pytest.approx(want, abs=1e-7)


@given(prob=problems(tasks=("multiclass",)), k=st.integers(1, 3),
       average=st.sampled_from(AVERAGES))
def test_top_k_with_ties_equals_loop(prob, k, average):
    c = prob["num_classes"]
    k = min(k, c)
    got = F.soft_top_k_accuracy(
        torch.from_numpy(prob["logits"]), torch.from_numpy(prob["target"]), num_classes=c,
        k=k, average=average, temperature=0, ignore_index=prob["ignore_index"],
        zero_division=prob["zero_division"], absent_classes=prob["absent_classes"])
    logits = np.moveaxis(prob["logits"], 1, -1).reshape(-1, c)
    target = prob["target"].reshape(-1)
    keep = target != prob["ignore_index"]
    want = reference_top_k(logits, np.where(keep, target, 0), keep, k, average, c,
                           prob["zero_division"], prob["absent_classes"], prob["ignore_index"])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("row, target, k, hit", [
    ([0.3, 0.3, 0.4], 0, 2, 0.5),  # tied with one class at the k-th place: half a hit
    ([1.0, 1.0, 1.0, 0.0], 0, 1, 0.0),  # three tied at the top: the middle is 2nd
    ([1.0, 1.0, 1.0, 0.0], 0, 2, 1.0),
    ([1.0, 1.0, 1.0, 1.0], 2, 2, 0.5),  # four tied: the middle is on the boundary
    ([2.0, 1.0, 1.0, 1.0], 1, 2, 0.0),
    ([2.0, 1.0, 1.0, 1.0], 1, 3, 1.0),
])
def test_a_top_k_tie_counts_by_its_middle(row, target, k, hit):
    """The documented rule at ties: each tied class is half a rank, the hit the step of
    k - 1/2 - rank (1/2 at 0), which the soft hit tends to as the temperature falls."""
    x, y = torch.tensor([row], dtype=torch.float64), torch.tensor([target])
    exact = F.soft_top_k_accuracy(x, y, num_classes=len(row), k=k, temperature=0)
    assert exact.item() == hit
    near = F.soft_top_k_accuracy(x, y, num_classes=len(row), k=k, temperature=1e-3)
    assert near.item() == pytest.approx(hit, abs=1e-12)


def test_binary_matches_sklearn_closed_form():
    # One hand-derived case: predictions [1, 0, 1, 0] against [1, 1, 0, 0]:
    # TP = FP = FN = TN = 1, so precision = recall = F1 = accuracy = 1/2, IoU = 1/3, MCC = 0,
    # F2 = 5 / (5 + 4 + 1) = 1/2.
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    target = torch.tensor([1, 1, 0, 0])
    kw = dict(task="binary", temperature=0)
    assert F.soft_precision(logits, target, **kw).item() == 0.5
    assert F.soft_jaccard_index(logits, target, **kw).item() == pytest.approx(1 / 3)
    assert F.soft_matthews_corrcoef(logits, target, **kw).item() == 0.0
    assert F.soft_fbeta_score(logits, target, beta=2.0, **kw).item() == 0.5
    # at temperature 1 the soft counts are sums of sigmoids:
    p = torch.sigmoid(logits)
    tp, fp, fn = p[:2].sum(), p[2:].sum(), (1 - p[:2]).sum()
    want = 2 * tp / (2 * tp + fp + fn)
    assert F.soft_f1_score(logits, target, task="binary").item() == pytest.approx(want.item())


def test_stat_scores_are_counts():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]])
    target = torch.tensor([0, 2, 2, 1])
    s = F.soft_stat_scores(logits, target, task="multiclass", num_classes=3, temperature=0)
    assert s.tp.tolist() == [1, 0, 1]
    assert s.fp.tolist() == [1, 1, 0]
    assert s.fn.tolist() == [0, 1, 1]
    assert s.tn.tolist() == [2, 2, 2]
    assert s.support.tolist() == [1, 1, 2]
    soft = F.soft_stat_scores(logits, target, task="multiclass", num_classes=3)
    assert s.tp.dtype == torch.float64 and soft.tp.dtype == torch.float32
    p = torch.softmax(logits, 1)
    onehot = torch.nn.functional.one_hot(target, 3).float()
    torch.testing.assert_close(soft.tp, (p * onehot).sum(0))
    torch.testing.assert_close(soft.fp, (p * (1 - onehot)).sum(0))
    torch.testing.assert_close(soft.fn, ((1 - p) * onehot).sum(0))
    torch.testing.assert_close(soft.tn, ((1 - p) * (1 - onehot)).sum(0))


# ---------------------------------------------------------------------------------------
# properties of the soft metrics


def _well_posed(n: int, c: int, seed: int, spread: float = 3.0):
    """Logits with distinct, well separated scores where every class is both a target and
    a prediction, so that every metric is continuous at the hard decisions."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * spread
    target = torch.randint(0, c, (n,), generator=g)
    target[:c] = torch.arange(c)
    logits[:c] = -spread
    logits[torch.arange(c), torch.arange(c)] = 2 * spread
    logits[c:2 * c] = -spread
    logits[torch.arange(c, 2 * c), (torch.arange(c) + 1) % c] = 2 * spread
    target[c:2 * c] = torch.arange(c)
    return logits, target


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
def test_soft_converges_to_hard(name, average):
    logits, target = _well_posed(60, 4, seed=1)
    kw = dict(task="multiclass", num_classes=4, average=average)
    hard = METRICS[name](logits, target, temperature=0, **kw)
    errors = [abs(METRICS[name](logits, target, temperature=t, **kw) - hard).item()
              for t in (1.0, 0.1, 0.01, 0.001)]
    assert errors[-1] < 1e-6
    assert errors[-1] <= errors[0]


def _nothing_predicts_the_last_class(task: str):
    """Logits under which no sample predicts the last class (multilabel: label 1), which two
    samples have as their target; its least unlikely prediction is a sample of that class,
    so the soft precision alone, TP / predicted, tends to 1 as the temperature falls."""
    if task == "binary":
        return (torch.tensor([-1.0, -2.0, -3.0, -4.0], dtype=torch.float64),
                torch.tensor([1, 1, 0, 0]), {})
    if task == "multilabel":
        logits = torch.tensor([[2.0, -1.0], [-2.0, -2.0], [2.0, -3.0], [-2.0, -4.0]],
                              dtype=torch.float64)
        return logits, torch.tensor([[1, 1], [0, 1], [1, 0], [0, 0]]), dict(num_classes=2)
    logits = torch.tensor([[3.0, 0.0, 1.0], [3.0, 0.0, -1.0], [0.0, 3.0, -1.0],
                           [3.0, 0.0, -2.0], [0.0, 3.0, -3.0]], dtype=torch.float64)
    return logits, torch.tensor([2, 2, 1, 0, 0]), dict(num_classes=3)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("average", ["none", "macro", "micro"])
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_precision_of_a_class_nothing_predicts_converges(task, average, zero_division):
    """Precision's denominator is the predicted count alone: a class with a target that
    nothing predicts has the exact precision `zero_division`, while its soft TP and
    predicted count both vanish as the temperature falls. Their ratio must not decide the
    limit: the soft precision converges to the exact one (also pooled, for multilabel
    micro), and so does every Tversky index without a false negative term."""
    logits, target, kw = _nothing_predicts_the_last_class(task)
    kw = dict(kw, task=task, average=average, zero_division=zero_division)
    for fn, extra in ((F.soft_precision, {}), (F.soft_tversky_index, dict(alpha=0.3, beta=0.0))):
        hard = fn(logits, target, temperature=0, **kw, **extra)
        if average == "none" and task != "binary":
            assert hard[-1].item() == zero_division
        for temperature in (0.1, 1e-2, 1e-3):
            soft = fn(logits, target, temperature=temperature, **kw, **extra)
            torch.testing.assert_close(soft, hard, atol=1e-3, rtol=0)


@pytest.mark.parametrize("task", ["binary", "multilabel"])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_soft_converges_to_hard_sigmoid(task, name):
    g = torch.Generator().manual_seed(3)
    shape = (40,) if task == "binary" else (40, 3)
    target = torch.randint(0, 2, shape, generator=g)
    margin = 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=g) < 0.8, 2 * target - 1, 1 - 2 * target)
    logits = sign * margin
    kw = dict(task=task) if task == "binary" else dict(task=task, num_classes=3)
    hard = METRICS[name](logits, target, temperature=0, **kw)
    soft = METRICS[name](logits, target, temperature=1e-3, **kw)
    torch.testing.assert_close(soft, hard, atol=1e-6, rtol=0)


@given(prob=problems(), name=st.sampled_from(sorted(METRICS)), average=st.sampled_from(AVERAGES),
       temperature=st.sampled_from([0.05, 0.5, 1.0, 5.0]))
def test_soft_range(prob, name, average, temperature, device):
    value = _call(METRICS[name], prob, device, temperature=temperature, average=average)
    assert torch.isfinite(value).all()
    low = -1.0 if name == "mcc" else 0.0
    assert (value >= low - 1e-6).all() and (value <= 1 + 1e-6).all()


def _mcc_rounding_scale(prob, temperature):
    """`total^2 / sqrt(den)`, the largest over the MCC tables of the problem (each class
    one-vs-rest, the pooled one, and multiclass R_K), from float64 soft counts.

    MCC subtracts products of sums, each of size up to `total^2`, and divides the
    difference by `sqrt(den) = sqrt(cov_pp cov_tt)`. Summing in another order changes each
    float32 sum by a few units in its last place, so the value moves by a few
    `eps * total^2 / sqrt(den)`: large where `den` is small, however close to 0 the value.
    """
    kwargs = dict(task=prob["task"], ignore_index=prob["ignore_index"],
                  threshold=prob["threshold"], temperature=temperature)
    if prob["task"] != "binary":
        kwargs["num_classes"] = prob["num_classes"]
    tp, fp, fn, tn = F.soft_stat_scores(torch.from_numpy(prob["logits"]).double(),
                                        torch.from_numpy(prob["target"]), **kwargs)
    total, pred, true = tp + fp + fn + tn, tp + fp, tp + fn
    tables = [(total, pred, true), (total.sum(-1), pred.sum(-1), true.sum(-1))]
    dens = [4 * p * (t - p) * y * (t - y) for t, p, y in tables]
    totals = [t for t, _, _ in tables]
    if prob["task"] == "multiclass":
        n = total[..., 0]
        dens.append((n * n - (pred * pred).sum(-1)) * (n * n - (true * true).sum(-1)))
        totals.append(n)
    scale = 0.0
    for den, t in zip(dens, totals, strict=True):
        if (den > 0).any():
            scale = max(scale, (t * t / den.clamp_min(1e-300).sqrt())[den > 0].max().item())
    return scale


@given(prob=problems(extra_dims=False), name=st.sampled_from(sorted(METRICS)),
       average=st.sampled_from(AVERAGES), seed=st.integers(0, 1000))
def test_permutation_invariance(prob, name, average, seed, device):
    value = _call(METRICS[name], prob, device, temperature=0.5, average=average)
    perm = np.random.default_rng(seed).permutation(len(prob["logits"]))
    shuffled = {**prob, "logits": prob["logits"][perm], "target": prob["target"][perm]}
    # ratios of float32 sums (accuracy, Tversky) move by a relative few eps; MCC by a few
    # eps * total^2 / sqrt(den) (see `_mcc_rounding_scale`), 16 of them here
    atol = 1e-6
    if name == "mcc":
        atol = max(atol, 16 * torch.finfo(torch.float32).eps * _mcc_rounding_scale(prob, 0.5))
    torch.testing.assert_close(
        _call(METRICS[name], shuffled, device, temperature=0.5, average=average), value,
        atol=atol, rtol=1e-5)


@given(prob=problems(tasks=("multiclass",), extra_dims=False),
       name=st.sampled_from(["f1", "accuracy"]), average=st.sampled_from(["micro", "macro"]),
       index=st.integers(0, 1000), delta=st.floats(0.01, 5.0))
def test_raising_true_logit_never_lowers(prob, name, average, index, delta):
    assume(prob["ignore_index"] is None)
    logits = torch.from_numpy(prob["logits"]).double()
    target = torch.from_numpy(prob["target"])
    kw = dict(task="multiclass", num_classes=prob["num_classes"], average=average)
    before = METRICS[name](logits, target, **kw)
    i = index % len(logits)
    logits[i, target[i]] += delta
    after = METRICS[name](logits, target, **kw)
    assert after >= before - 1e-12


# ---------------------------------------------------------------------------------------
# gradients


def _gradcheck_case(task: str, shape_extra: tuple[int, ...], samplewise: bool, ignore: bool,
                    seed: int = 0, device: torch.device | None = None):
    g = torch.Generator().manual_seed(seed)
    n, c = 6, 3
    if task == "multiclass":
        x = torch.randn(n, c, *shape_extra, generator=g, dtype=torch.float64)
        y = torch.randint(0, c, (n, *shape_extra), generator=g)
    elif task == "multilabel":
        x = torch.randn(n, c, *shape_extra, generator=g, dtype=torch.float64)
        y = torch.randint(0, 2, x.shape, generator=g)
    else:
        x = torch.randn(n, *shape_extra, generator=g, dtype=torch.float64)
        y = torch.randint(0, 2, x.shape, generator=g)
    if ignore:
        y[0] = -1
    kw = dict(task=task, multidim_average="samplewise" if samplewise else "global",
              ignore_index=-1 if ignore else None)
    if task != "binary":
        kw["num_classes"] = c
    return x.to(device).requires_grad_(), y.to(device), kw


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("extra", [(), (2, 2)])
@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_gradcheck(task, extra, samplewise, ignore, device):
    x, y, kw = _gradcheck_case(task, extra, samplewise, ignore, device=device)
    for fn in (F.soft_f1_score, F.soft_matthews_corrcoef, F.soft_accuracy):
        assert torch.autograd.gradcheck(lambda z, fn=fn: fn(z, y, temperature=0.7, **kw), (x,))
    top = dict(kw, task="multiclass", num_classes=3)
    if task == "multiclass":
        assert torch.autograd.gradcheck(
            lambda z: F.soft_top_k_accuracy(z, y, k=2, temperature=0.7,
                                            **{k: v for k, v in top.items() if k != "task"}),
            (x,))


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("extra", [(), (3,)])
@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("block", [None, 0, 1, 70])
def test_fused_backward_equals_autograd(task, extra, samplewise, block, device, monkeypatch):
    """The fused autograd Functions against the same counting code under autograd; `block`
    sets the entries per block of the in-place softmax backward, on the CPU and on other
    devices (0: one block; 70 gives a short last block for both the padded 2-D rows and
    the (3, 2, 2) samples), with the small-input path off; None keeps the defaults, under
    which these inputs take the small-input path."""
    from softmetrics.functional._classification_core import format_inputs

    if block is not None:
        if task != "multiclass":
            pytest.skip("blocks are a property of the softmax backward")
        monkeypatch.setattr(_tuning, "CPU_BLOCK_ENTRIES", block)
        monkeypatch.setattr(_tuning, "DEVICE_BLOCK_ENTRIES", block)
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 0)
    x, y, kw = _gradcheck_case(task, extra, samplewise, ignore=True, seed=5, device=device)

    z, yy, w, _ = format_inputs("t", x, y, task=task, num_classes=kw.get("num_classes"),
                                ignore_index=-1, validate_args=True)
    g = torch.Generator().manual_seed(1)
    for temperature in (0.3, 2.0):
        fused = decision_counts(z, yy, w, task=task, temperature=temperature, threshold=0.3,
                                 samplewise=samplewise)
        plain = decision_counts(z, yy, w, task=task,
                                 temperature=torch.tensor(temperature, dtype=torch.float64,
                                                          device=device),
                                 threshold=0.3, samplewise=samplewise)
        for a, b in zip(fused, plain, strict=True):
            torch.testing.assert_close(a, b)
        weights = [torch.randn(a.shape, generator=g, dtype=torch.float64).to(device)
                   for a in fused]
        ga = torch.autograd.grad(sum((a * wt).sum() for a, wt in zip(fused, weights,
                                                                      strict=True)), x)
        gb = torch.autograd.grad(sum((b * wt).sum() for b, wt in zip(plain, weights,
                                                                      strict=True)), x)
        torch.testing.assert_close(ga, gb)


def test_backward_blocks_off_the_cpu(monkeypatch):
    """Off the CPU (a `meta` tensor stands in for a GPU's) the softmax backward runs over
    blocks of at most `DEVICE_BLOCK_ENTRIES` entries, and over one block when it is 0 or
    when the input is small; on the CPU the CPU's block size decides."""
    from softmetrics.functional._classification_counts import backward_block_rows

    p = torch.empty(1000, 7, device="meta")
    monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 0)
    for entries, rows in [(70, 10), (69, 9), (6, 1), (0, 1000), (1 << 24, (1 << 24) // 7)]:
        monkeypatch.setattr(_tuning, "DEVICE_BLOCK_ENTRIES", entries)
        assert backward_block_rows(p) == rows, entries
    monkeypatch.setattr(_tuning, "CPU_BLOCK_ENTRIES", 70)
    assert backward_block_rows(torch.empty(1000, 7)) == 10
    monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 7000)
    assert backward_block_rows(p) == 1000


@pytest.mark.parametrize("small", [True, False])
@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("c", [3, 20])
def test_softmax_backward_through_retained_graph(samplewise, c, small, device, monkeypatch):
    """The first backward writes the gradient over the saved probabilities; a second
    backward through the retained graph recomputes them and gives the same gradient, and
    the counts returned by the forward pass are not touched (on the small inputs' plain
    path and on the padded, blocked one)."""
    if not small:
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 0)
    g = torch.Generator().manual_seed(c)
    x = torch.randn(9, c, generator=g, dtype=torch.float64).to(device).requires_grad_()
    y = torch.randint(0, c, (9,), generator=g).to(device)
    tp, pred = decision_counts(x, y, None, task="multiclass", temperature=0.5,
                                threshold=0.5, samplewise=samplewise)
    before = (tp.detach().clone(), pred.detach().clone())
    loss = (tp * torch.arange(tp.numel(), device=device).view_as(tp)).sum() - pred.pow(2).sum()
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(first, second)
    torch.testing.assert_close((tp.detach(), pred.detach()), before)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_the_allocation_recorder_sees_fresh_tensors_and_not_aliases(device):
    """`Allocations`, on which the tests of backward buffers rest, records a tensor an
    operation returns in fresh memory, also on meta (shapes without data, which the
    tests of large sizes use), and leaves out the arguments, views and aliases."""
    from .allocations import Allocations

    x = torch.zeros(4, 5, device=device)
    out = torch.empty(4, 5, device=device)
    with Allocations() as allocations:
        x.clone()
        torch.mul(x, 2)
        x.sum(0)
        x.view(20), x.detach(), x.mul_(1.0), torch.mul(x, 2, out=out)
    assert sorted(allocations.sizes) == [0, 5, 20, 20]


@pytest.mark.parametrize("samplewise, extra", [(False, ()), (False, (4,)), (True, (4,))])
def test_softmax_backward_on_devices_needs_no_second_full_buffer(samplewise, extra):
    """On devices other than the CPU (here meta: shapes without data), the forward pass
    is one block and the backward writes the gradient over the probabilities: it
    allocates nothing of the size of the logits, only gradients of the size of the
    counts and a temporary of at most 2^24 entries."""
    n, c = 1 << 14, 1 << 12  # 2^26 logits (2^28 with the extra axis)
    x = torch.zeros(n, c, *extra, device="meta", requires_grad=True)
    y = torch.zeros(n, *extra, dtype=torch.long, device="meta")
    tp, pred = decision_counts(x, y, None, task="multiclass", temperature=0.5,
                               threshold=0.5, samplewise=samplewise)
    loss = tp.sum() - pred.pow(2).sum()
    with Allocations() as allocations:
        (grad,) = torch.autograd.grad(loss, x)
    assert grad.shape == x.shape
    assert max(allocations.sizes) <= max(1 << 24, tp.numel()) < x.numel()


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("samplewise, extra", [(False, ()), (True, (4,))])
def test_sigmoid_backward_needs_one_buffer_of_the_logits_size(soft, samplewise, extra):
    """The multilabel backward, for labels and for soft targets alike, allocates one
    buffer of the size of the logits (their gradient, written in place): the slope of
    min(p, y) for soft targets is no chain of comparisons and conversions."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(64, 5, *extra, generator=g).requires_grad_()
    y = torch.randint(0, 2, x.shape, generator=g)
    tp, pred = decision_counts(x, y.float() if soft else y, None, task="multilabel",
                               temperature=0.5, threshold=0.5, samplewise=samplewise,
                               soft=soft)
    loss = tp.sum() - pred.pow(2).sum()
    with Allocations() as allocations:
        (grad,) = torch.autograd.grad(loss, x)
    assert grad.shape == x.shape
    assert allocations.sizes.count(x.numel()) == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("c, extra, samplewise", [
    (5, (), False), (5, (3,), True), (40, (), False), (40, (3,), False), (40, (3,), True)])
@pytest.mark.parametrize("small", [True, False])
def test_half_precision_logits_are_saved_as_given(dtype, c, extra, samplewise, small, device,
                                                  monkeypatch):
    """For backward the softmax counts keep the half-precision logits, not a float32
    copy (twice their size); values and gradients are those of the float32 logits of the
    same values (the gradient rounded to the input's dtype), on the small inputs' plain
    path and on the padded, blocked one."""
    if not small:
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 0)
    g = torch.Generator().manual_seed(c)
    x = torch.randn(64, c, *extra, generator=g).to(device=device, dtype=dtype)
    x.requires_grad_()
    y = torch.randint(0, c, (64, *extra), generator=g).to(device)
    kw = dict(task="multiclass", num_classes=c, temperature=0.5, ignore_index=0,
              multidim_average="samplewise" if samplewise else "global")
    saved = []

    def pack(t):
        saved.append((t.dtype, t.numel()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        value = F.soft_jaccard_index(x, y, **kw)
    assert (torch.float32, x.numel()) not in saved and (dtype, x.numel()) in saved
    (grad,) = torch.autograd.grad(value.sum(), x)
    x32 = x.detach().float().requires_grad_()
    value32 = F.soft_jaccard_index(x32, y, **kw)
    (grad32,) = torch.autograd.grad(value32.sum(), x32)
    torch.testing.assert_close(value, value32)
    assert grad.dtype == dtype
    torch.testing.assert_close(grad, grad32.to(dtype))


@pytest.mark.parametrize("reentrant", [False, True])
def test_fused_functions_under_activation_checkpointing(reentrant):
    """torch.utils.checkpoint recomputes the forward pass in backward; the in-place
    softmax backward gives the same gradient as without checkpointing."""
    from torch.utils.checkpoint import checkpoint

    x, y, kw = _gradcheck_case("multiclass", (2,), False, ignore=True, seed=7)
    layer = torch.nn.Linear(3, 3, dtype=torch.float64)

    def loss(inp):
        z = layer(inp.movedim(1, -1)).movedim(-1, 1)
        return F.soft_f1_score(z, y, temperature=0.5, **kw) + F.soft_accuracy(
            z, y, temperature=0.5, **kw)

    params = (x, *layer.parameters())
    loss(x).backward()
    want = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    checkpoint(loss, x, use_reentrant=reentrant).backward()
    torch.testing.assert_close([p.grad for p in params], want)


@pytest.mark.parametrize("fn", [F.soft_f1_score, F.soft_matthews_corrcoef])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_fused_functions_double_backward(fn, task):
    """The hand-written backwards build a differentiable graph under `create_graph=True`:
    the second derivative equals the one of the same counts composed with autograd (a
    tensor temperature takes that path)."""
    x, y, kw = _gradcheck_case(task, (), False, ignore=False)
    second = []
    for temperature in (0.5, torch.tensor(0.5, dtype=torch.float64)):
        (grad,) = torch.autograd.grad(fn(x, y, temperature=temperature, **kw), x,
                                      create_graph=True)
        second.append(torch.autograd.grad(grad.pow(2).sum(), x)[0])
    torch.testing.assert_close(second[0], second[1])
    if task == "multiclass":
        second = []
        for temperature in (0.5, torch.tensor(0.5, dtype=torch.float64)):
            value = F.soft_top_k_accuracy(x, y, num_classes=3, k=2, temperature=temperature)
            (grad,) = torch.autograd.grad(value.pow(2), x, create_graph=True)
            second.append(torch.autograd.grad(grad.pow(2).sum(), x)[0])
        torch.testing.assert_close(second[0], second[1])


@pytest.mark.parametrize("name", [*sorted(METRICS), "tversky", "top_k"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_extreme_logits_finite(name, task, scale, device):
    if name == "top_k" and task != "multiclass":
        pytest.skip("top-k is multiclass only")
    g = torch.Generator().manual_seed(0)
    shape = (16,) if task == "binary" else (16, 4)
    x = (torch.randn(shape, generator=g).sign() * scale).to(device).requires_grad_()
    if task == "multiclass":
        y = torch.randint(0, 4, (16,), generator=g).to(device)
    else:
        y = torch.randint(0, 2, shape, generator=g).to(device)
    kw = dict(task=task) if task == "binary" else dict(task=task, num_classes=4)
    for temperature in (1e-3, 1.0):
        if name == "tversky":
            v = F.soft_tversky_index(x, y, alpha=0.3, beta=0.7, temperature=temperature, **kw)
        elif name == "top_k":
            v = F.soft_top_k_accuracy(x, y, num_classes=4, k=2, temperature=temperature)
        else:
            v = METRICS[name](x, y, temperature=temperature, **kw)
        (grad,) = torch.autograd.grad(v.sum(), x)
        assert torch.isfinite(v).all()
        assert torch.isfinite(grad).all()


def test_all_ignored_gives_zero_division_not_nan():
    x = torch.randn(5, 3, requires_grad=True)
    y = torch.full((5,), 255)
    for name, fn in METRICS.items():
        for zd in (0.0, 1.0):
            v = fn(x, y, task="multiclass", num_classes=3, ignore_index=255, zero_division=zd)
            assert v.item() == zd, name
            (grad,) = torch.autograd.grad(v, x, allow_unused=True)
            assert grad is None or torch.isfinite(grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_half_precision_accumulates_in_float32(dtype, name, device):
    g = torch.Generator().manual_seed(0)
    # 512 x 512 segmentation maps: counts far beyond float16's 2048 integer range
    x = torch.randn(2, 3, 512, 512, generator=g).to(device)
    y = torch.randint(0, 3, (2, 512, 512), generator=g).to(device)
    kw = dict(task="multiclass", num_classes=3)
    ref = METRICS[name](x, y, **kw)
    half = METRICS[name](x.to(dtype), y, **kw)
    assert half.dtype == torch.float32
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(half, ref, atol=tol, rtol=0)
    hard = METRICS[name](x.to(dtype), y, temperature=0, **kw)
    hard_ref = METRICS[name](x.to(dtype).float(), y, temperature=0, **kw)
    torch.testing.assert_close(hard, hard_ref)


# ---------------------------------------------------------------------------------------
# Modules


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("samplewise", [False, True])
def test_module_equals_function(name, samplewise, device):
    x, y, kw = _gradcheck_case("multiclass", (2, 2), samplewise, ignore=True, device=device)
    extra = {"beta": 2.0} if name == "fbeta" else {}
    module = LOSSES[name](temperature=0.5, **kw, **extra)
    value = METRICS[name](x, y, temperature=0.5, **kw, **extra)
    want = 1 - value
    if samplewise:
        want = want.mean(0)
    torch.testing.assert_close(module(x, y), want)
    torch.testing.assert_close(module.metric(x, y),
                               METRICS[name](x, y, temperature=0, **kw, **extra))
    assert not module.metric(x, y).requires_grad


def test_module_aliases_and_extras():
    """SoftDiceLoss and SoftIoULoss are SoftF1Loss and SoftJaccardLoss under their
    segmentation names: subclasses with the same options, values and buffers."""
    x, y, kw = _gradcheck_case("multiclass", (), False, ignore=False)
    for alias, base in ((softmetrics.SoftDiceLoss, softmetrics.SoftF1Loss),
                        (softmetrics.SoftIoULoss, softmetrics.SoftJaccardLoss)):
        assert issubclass(alias, base)
        named, plain = alias(momentum=0.5, **kw), base(momentum=0.5, **kw)
        torch.testing.assert_close(named(x, y), plain(x, y))
        torch.testing.assert_close(named.metric(x, y), plain.metric(x, y))
        assert named.extra_repr() == plain.extra_repr()
        torch.testing.assert_close(named.state_dict(), plain.state_dict())
    tv = softmetrics.SoftTverskyLoss(alpha=1.0, beta=1.0, **kw)
    torch.testing.assert_close(tv(x, y), softmetrics.SoftJaccardLoss(**kw)(x, y))
    top = softmetrics.SoftTopKAccuracyLoss(num_classes=3, k=2)
    torch.testing.assert_close(top(x, y), 1 - F.soft_top_k_accuracy(x, y, num_classes=3, k=2))
    assert "temperature=1.0" in repr(top)


def test_readme_training_example_learns():
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = (x[:, 0] + 0.5 * x[:, 1] > 1.0).long()
    model = torch.nn.Linear(8, 1)
    loss_fn = softmetrics.SoftF1Loss(task="binary")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    before = loss_fn.metric(model(x).squeeze(1), y)
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn(model(x).squeeze(1), y)
        loss.backward()
        opt.step()
    after = loss_fn.metric(model(x).squeeze(1), y)
    assert after > max(before, 0.8)


# ---------------------------------------------------------------------------------------
# bad input


def _mc(**kw):
    base = dict(task="multiclass", num_classes=3)
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "error", "match"),
    [
        (F.soft_f1_score, (torch.randn(4, 3), torch.zeros(4, dtype=torch.long)),
         dict(task="multiclass"), ValueError,
         r"soft_f1_score: expected `num_classes` to be an int >= 2 when "
         r"task='multiclass', got None\."),
        (F.soft_f1_score, (torch.randn(4, 3), torch.zeros(4, dtype=torch.long)),
         _mc(num_classes=2), ValueError,
         r"soft_f1_score: expected `input` to be of shape \(N, 2, \.\.\.\) \(num_classes=2 "
         r"along axis 1\), got shape \(4, 3\)\."),
        (F.soft_precision, (torch.randn(4, 3), torch.tensor([0, 1, 3, 0])), _mc(), ValueError,
         r"soft_precision: expected `target` to be integer values in \[0, 3\), got a value 3\."),
        (F.soft_recall, (torch.randn(4, 3), torch.zeros(5, dtype=torch.long)), _mc(),
         ValueError, r"soft_recall: expected `target` to be of shape \(4,\) \(input's shape "
         r"without the class axis 1\), got shape \(5,\)\."),
        (F.soft_accuracy, (torch.randn(4, 3), torch.zeros(4)), _mc(), TypeError,
         r"soft_accuracy: expected `target` to be an integer tensor, got torch\.float32\."),
        (F.soft_jaccard_index, (torch.randn(4, 3), torch.zeros(4, dtype=torch.long)),
         _mc(average="mean"), ValueError,
         r"soft_jaccard_index: expected `average` to be one of 'micro', 'macro', 'weighted', "
         r"'none', got 'mean'\."),
        (F.soft_f1_score, (torch.randn(4), torch.zeros(4, dtype=torch.long)),
         dict(task="regression"), ValueError,
         r"soft_f1_score: expected `task` to be one of 'binary', 'multiclass', 'multilabel', "
         r"got 'regression'\."),
        (F.soft_matthews_corrcoef, (torch.randn(4), torch.zeros(4, dtype=torch.long)),
         dict(task="binary", temperature=-1.0), ValueError,
         r"soft_matthews_corrcoef: expected `temperature` to be >= 0, got -1\.0\."),
        (F.soft_f1_score, (torch.randn(4), torch.tensor([0, 1, 2, 1])), dict(task="binary"),
         ValueError, r"soft_f1_score: expected `target` to be integer values in \{0, 1\}, "
         r"got a value 2\."),
        (F.soft_f1_score, (torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)),
         dict(task="binary"), TypeError,
         r"soft_f1_score: expected `input` to be a floating-point tensor \(raw scores or "
         r"logits\), got torch\.int64\."),
        (F.soft_fbeta_score, (torch.randn(4), torch.zeros(4, dtype=torch.long)),
         dict(task="binary", beta=0.0), ValueError,
         r"soft_fbeta_score: expected `beta` to be > 0, got 0\.0\."),
        (F.soft_f1_score, (torch.randn(4), torch.zeros(4, dtype=torch.long)),
         dict(task="binary", threshold=1.5), ValueError,
         r"soft_f1_score: expected `threshold` to be > 0 and < 1, got 1\.5\."),
        (F.soft_top_k_accuracy, (torch.randn(4, 3), torch.zeros(4, dtype=torch.long)),
         dict(num_classes=3, k=4), ValueError,
         r"soft_top_k_accuracy: expected `k` to be <= num_classes = 3, got 4\."),
        (F.soft_f1_score, (torch.randn(4, 3), torch.zeros(4, 3, dtype=torch.long)),
         dict(task="multilabel", num_classes=3, multidim_average="pixel"), ValueError,
         r"soft_f1_score: expected `multidim_average` to be one of 'global', 'samplewise', "
         r"got 'pixel'\."),
        (F.soft_f1_score, (torch.randn(4, 3), torch.zeros(4, 2, dtype=torch.long)),
         dict(task="multilabel", num_classes=3), ValueError,
         r"soft_f1_score: expected `target` to be of shape \(4, 3\) \(input's shape\), "
         r"got shape \(4, 2\)\."),
    ],
)
def test_error_messages(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


def test_module_validates_options_once():
    with pytest.raises(ValueError, match=r"SoftF1Loss: expected `average` to be one of"):
        softmetrics.SoftF1Loss(task="multiclass", num_classes=3, average="avg")
    with pytest.raises(ValueError, match=r"SoftTverskyLoss: expected `alpha` to be >= 0"):
        softmetrics.SoftTverskyLoss(task="binary", alpha=-1.0)
    with pytest.raises(TypeError, match=r"SoftMCCLoss: expected `num_classes` to be an int"):
        softmetrics.SoftMCCLoss(task="multiclass", num_classes=3.0)
    assert math.isfinite(softmetrics.SoftMCCLoss(task="binary")(torch.randn(4),
                                                                 torch.tensor([0, 1, 0, 1])))


@pytest.mark.parametrize("extra", [(), (3,)])
def test_fused_top_k_equals_autograd(extra):
    from softmetrics.functional._classification_counts import top_k_hits

    g = torch.Generator().manual_seed(2)
    x = torch.randn(7, 5, *extra, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (7, *extra), generator=g)
    weights = torch.randn(7, *extra, generator=g, dtype=torch.float64)
    for k, temperature in ((1, 0.3), (2, 1.5)):
        fused = top_k_hits(x, y, k, temperature)
        plain = top_k_hits(x, y, k, torch.tensor(temperature, dtype=torch.float64))
        torch.testing.assert_close(fused, plain)
        ga = torch.autograd.grad((fused * weights).sum(), x)
        gb = torch.autograd.grad((plain * weights).sum(), x)
        torch.testing.assert_close(ga, gb)
        assert torch.autograd.gradcheck(lambda z, k=k, t=temperature: top_k_hits(z, y, k, t),
                                        (x,))


def test_cpu_softmax_pads_narrow_float32_rows_to_one_vector(monkeypatch):
    """Narrow float32 rows are padded to one vector of the CPU's kernels (16 lanes with
    AVX-512, 8 otherwise), when the padding at most multiplies a row by
    `CPU_SOFTMAX_MAX_PADDING` and there are `CPU_SOFTMAX_PAD_ROWS` rows or more; float64
    rows, and rows on other devices, keep their width."""
    from softmetrics.functional._classification_counts import softmax_width

    capability = torch.backends.cpu.get_cpu_capability()
    lanes = _tuning.cpu_softmax_width(torch.float32)
    assert lanes == (16 if "512" in capability else 8)
    assert _tuning.cpu_softmax_width(torch.float64) == 0
    rows = _tuning.CPU_SOFTMAX_PAD_ROWS
    for lanes in (16, 8):
        monkeypatch.setattr(_tuning, "_vector_width", [lanes])
        for c in range(1, 20):
            x = torch.zeros(rows, c)
            padded = c < lanes and lanes <= _tuning.CPU_SOFTMAX_MAX_PADDING * c
            assert softmax_width(x) == (lanes if padded else c)
            assert softmax_width(x.half()) == softmax_width(x)  # converted to float32
            assert softmax_width(x[:rows - 1]) == c
            assert softmax_width(x.double()) == c
            assert softmax_width(torch.zeros(rows, c, device="meta")) == c
        # two classes: padded to 8 (4 times the row), left narrow under 16 lanes (8 times)
        assert softmax_width(torch.zeros(rows, 2)) == (2 if lanes == 16 else 8)
    monkeypatch.setattr(_tuning, "CPU_SOFTMAX_MIN_WIDTH", 0)
    assert softmax_width(torch.zeros(rows, 10)) == 10


@pytest.mark.parametrize("name, options", [
    ("SoftF1Loss", {}), ("SoftMCCLoss", {}),
    ("SoftCohenKappaLoss", {"weights": "quadratic"}),  # the soft confusion matrix
])
@pytest.mark.parametrize("soft", [False, True])
def test_steps_on_narrow_rows_run_at_the_padded_width(name, options, soft, monkeypatch):
    """A training step on 1024 float32 rows of 10 classes, small enough for the plain
    path, runs its softmax at the padded width of a CPU with 16 lanes (its (N, 16)
    buffers are allocated), and at 10 columns with the padding turned off, with the same
    loss and gradient."""
    from .allocations import Allocations

    if soft and name == "SoftCohenKappaLoss":
        pytest.skip("kappa reads class indices")
    monkeypatch.setattr(_tuning, "_vector_width", [16])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 10, generator=g)
    y = torch.randint(0, 10, (1024,), generator=g)
    if soft:
        y = torch.nn.functional.one_hot(y, 10).float() * 0.9 + 0.01
    loss_fn = getattr(softmetrics, name)(task="multiclass", num_classes=10,
                                         validate_args=False, **options)
    results = []
    for width in (None, 0):
        monkeypatch.setattr(_tuning, "CPU_SOFTMAX_MIN_WIDTH", width)
        xi = x.clone().requires_grad_()
        with Allocations() as allocations:
            loss = loss_fn(xi, y)
            loss.backward()
        assert (1024 * 16 in allocations.sizes) == (width is None)
        results.append((loss, xi.grad))
    torch.testing.assert_close(results[0], results[1])


@pytest.mark.parametrize("c", [2, 10, 15])
@pytest.mark.parametrize("ignore", [False, True])
def test_cpu_softmax_padding_equals_plain_softmax(c, ignore, monkeypatch):
    """Rows padded with -inf columns (here forced on float64 rows, for gradcheck), on the
    plain path and on the blocked one, give the values and gradients of the unpadded
    softmax."""
    from softmetrics.functional._classification_counts import softmax_width

    g = torch.Generator().manual_seed(c)
    x = torch.randn(33, c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (33,), generator=g)
    if ignore:
        y[::5] = -1
    kw = dict(task="multiclass", num_classes=c, ignore_index=-1 if ignore else None,
              temperature=0.7)
    assert softmax_width(x) == c
    monkeypatch.setattr(_tuning, "CPU_SOFTMAX_PAD_ROWS", 0)
    monkeypatch.setattr(_tuning, "CPU_SOFTMAX_MAX_PADDING", 16)
    results = []
    for width, small in ((16, 0), (0, 0), (16, 1 << 16)):
        monkeypatch.setattr(_tuning, "CPU_SOFTMAX_MIN_WIDTH", width)
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", small)
        assert softmax_width(x) == (16 if width else c)
        xi = x.clone().requires_grad_()
        value = F.soft_f1_score(xi, y, **kw) + F.soft_matthews_corrcoef(xi, y, **kw)
        (grad,) = torch.autograd.grad(value, xi)
        results.append((value, grad))
        assert torch.autograd.gradcheck(lambda z: F.soft_f1_score(z, y, **kw),
                                        (x.clone().requires_grad_(),))
    torch.testing.assert_close(results[0], results[1])
    torch.testing.assert_close(results[0], results[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_divide_is_the_quotient_above_its_offset_and_zero_division_at_zero(dtype):
    """`divide` adds the square root of the smallest normal number to the denominator:
    bit for bit the plain quotient for every denominator above that offset over the
    machine epsilon (exact counts, ordinary soft counts); `zero_division` at 0 with first
    and second derivatives 0; in between a value in [0, 1] and slopes below 1 / offset,
    so that a small temperature's 1 / tau keeps them finite; NaN stays NaN."""
    from softmetrics.functional._classification_formulas import divide

    info = torch.finfo(dtype)
    offset = info.tiny ** 0.5
    g = torch.Generator().manual_seed(3)
    den = torch.tensor([2 * offset / info.eps, 1e-6, 0.5, 1.0, 3.0, 7.5, 1e6, 2.0**60],
                       dtype=dtype)
    num = den * torch.rand(den.shape, generator=g, dtype=dtype)
    assert torch.equal(divide(num, den, 0.0), num / den)
    assert torch.equal(divide(num.double().round(), den.double().round() + 1, 0.0),
                       num.double().round() / (den.double().round() + 1))

    num = torch.zeros(3, dtype=dtype, requires_grad=True)
    den = torch.zeros(3, dtype=dtype, requires_grad=True)
    value = divide(num, den, 0.25)
    assert value.tolist() == [0.25] * 3
    grads = torch.autograd.grad(value.sum(), (num, den), create_graph=True)
    assert not any(gr.any() for gr in grads)
    second = torch.autograd.grad(sum((gr**2).sum() + gr.sum() for gr in grads), (num, den),
                                 allow_unused=True)
    assert all(s is None or not s.any() for s in second)

    den = torch.tensor([info.tiny, offset * 1e-3, offset, offset * 1e3], dtype=dtype,
                       requires_grad=True)
    num = (den / 2).detach().requires_grad_()
    value = divide(num, den, 0.0)
    assert ((value >= 0) & (value <= 0.5)).all()
    g_num, g_den = torch.autograd.grad(value.sum() * 1e3, (num, den))  # 1 / tau = 1000
    assert torch.isfinite(g_num).all() and torch.isfinite(g_den).all()
    assert (g_num <= 1e3 / offset).all()
    nan = torch.tensor([float("nan")], dtype=dtype)
    assert divide(nan, nan, 0.0).isnan().all() and divide(torch.ones(1, dtype=dtype), nan,
                                                          0.0).isnan().all()


# Operations (views left out) of one forward + backward step on (64, 10) logits, torch 2.13;
# every one of them costs its fixed dispatch time, and on a GPU a kernel launch. MCC's and
# kappa's formulas run in float64 (conversions forward and backward: their subtractions
# of large counts kept four digits fewer in float32 over millions of soft entries).
SMALL_STEP_OPERATIONS = {"SoftF1Loss": 59, "SoftAccuracyLoss": 27, "SoftMCCLoss": 57,
                         "SoftCohenKappaLoss": 65}


@pytest.mark.parametrize("exact", [True, False])
def test_binary_mcc_is_the_two_class_correlation_of_the_general_formula(exact):
    """Per-class MCC takes `(N TP - pred support) / sqrt(pred (N - pred) support
    (N - support))`, whose three covariances are half those of R_K over the 2 x 2 table
    (negatives, positives): the same value as the general formula, bit for bit on
    integer counts, including the zero denominators of a constant prediction or target."""
    from softmetrics.functional._classification_formulas import Counts, _binary_mcc, _mcc

    g = torch.Generator().manual_seed(5)
    n = 50.0
    support = torch.randint(0, 51, (4, 30), generator=g).double()
    pred = torch.randint(0, 51, (4, 30), generator=g).double()
    low = (pred + support - n).clamp_min(0)
    tp = low + (torch.minimum(pred, support) - low) * torch.rand(4, 30, generator=g,
                                                                  dtype=torch.float64)
    if exact:
        tp = tp.round()
    else:
        pred, support = pred - torch.rand(4, 30, generator=g, dtype=torch.float64) * 0.5, support
        tp = torch.minimum(tp, pred)
    support[0, :3], pred[1, :3], pred[2, :2] = 0.0, n, 0.0  # zero denominators
    c = Counts(tp, pred, support, n)
    tn = n - pred - support + tp
    general = _mcc(tp + tn, n, torch.stack([n - pred, pred], -1),
                   torch.stack([n - support, support], -1), 0.5)
    got = _binary_mcc(c, 0.5)
    if exact:
        assert torch.equal(got, general)
    else:
        torch.testing.assert_close(got, general, rtol=1e-13, atol=1e-15)
    assert (got[0, :3] == 0.5).all() and (got[1, :3] == 0.5).all()


def _small_step_operations(loss_fn) -> int:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=g).requires_grad_()
    y = torch.randint(0, 10, (64,), generator=g)
    with Operations() as ops:
        loss_fn(x, y).backward()
    return len(ops.names)


def test_the_gpu_page_quotes_the_operations_of_a_small_step():
    """The GPU page explains the 1.2x target at C = 10 by these counts: each loss's
    figure there is what a step makes now (not merely a bound), and cross-entropy's too."""
    page = pathlib.Path(__file__).parents[1] / "docs" / "benchmarks" / "gpu.md"
    text = " ".join(page.read_text().split())
    for name in SMALL_STEP_OPERATIONS:
        count = _small_step_operations(getattr(softmetrics, name)(
            task="multiclass", num_classes=10, validate_args=False))
        assert count == SMALL_STEP_OPERATIONS[name], (name, count)
        assert re.search(rf"`{name}`( step on \(64, 10\) logits makes)? {count}\b", text), name
    ce = _small_step_operations(torch.nn.functional.cross_entropy)
    assert f"`F.cross_entropy` makes {ce}:" in text, ce


@pytest.mark.parametrize("name", sorted(SMALL_STEP_OPERATIONS))
def test_small_inputs_take_the_plain_path_with_fewer_operations(name, monkeypatch):
    """A step on small logits, whose time is the fixed cost of its operations, runs the
    plain path: fewer operations than the blocked path (eight fewer at this size, too few
    rows to pad: the blocked path's buffer for the probabilities, and its sums in float64
    with their conversions) and no more than recorded here."""
    loss_fn = getattr(softmetrics, name)(task="multiclass", num_classes=10,
                                         validate_args=False)
    counts = []
    for small in (_tuning.SMALL_COUNTS_ENTRIES, 0):
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", small)
        counts.append(_small_step_operations(loss_fn))
    assert counts[0] <= SMALL_STEP_OPERATIONS[name] < counts[1]
