"""Per-class weights: a weighted macro average, weighted micro pooling, and Sudre et al.'s
generalized Dice, against explicit loops at temperature 0 and at temperature > 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import softmetrics
from softmetrics import functional as F

TVERSKY = {"f1": (F.soft_f1_score, 0.5, 0.5), "jaccard": (F.soft_jaccard_index, 1.0, 1.0),
           "precision": (F.soft_precision, 1.0, 0.0), "recall": (F.soft_recall, 0.0, 1.0)}


def _problem(seed: int, n: int = 50, c: int = 5):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * 2
    target = torch.randint(0, c - 1, (n,), generator=gen)  # the last class never occurs
    weights = torch.rand(c, generator=gen, dtype=torch.float64) + 0.1
    return logits, target, weights


def _counts(logits, target, temperature):
    c = logits.shape[1]
    p = (torch.nn.functional.one_hot(logits.argmax(1), c).double() if temperature == 0
         else (logits / temperature).softmax(1))
    y = torch.nn.functional.one_hot(target, c).double()
    tp, pred, support = (p * y).sum(0), p.sum(0), y.sum(0)
    return tp, pred - tp, support - tp


@pytest.mark.parametrize("name", sorted(TVERSKY))
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_weighted_macro_is_the_weighted_mean_of_per_class_values(name, temperature):
    fn = TVERSKY[name][0]
    logits, target, weights = _problem(1)
    kw = dict(task="multiclass", num_classes=5, temperature=temperature)
    per = fn(logits, target, average="none", **kw)
    got = fn(logits, target, class_weights=weights, **kw)
    # the rule of absent classes still decides which classes count: class 4 has no target
    _, fp, _ = _counts(logits, target, temperature)
    seen = torch.ones(5, dtype=torch.float64)
    seen[4] = (fp[4] > 0).double() if temperature == 0 else fp[4] / (fp[4] + temperature)
    plain = fn(logits, target, **kw)
    want = (per * weights * seen).sum() / (weights * seen).sum()
    unweighted = (per * seen).sum() / seen.sum()
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert plain.item() == pytest.approx(unweighted.item(), rel=1e-12)


@pytest.mark.parametrize("name", sorted(TVERSKY))
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_weighted_micro_pools_weighted_counts(name, temperature):
    fn, alpha, beta = TVERSKY[name]
    logits, target, weights = _problem(2)
    got = fn(logits, target, task="multiclass", num_classes=5, temperature=temperature,
             average="micro", class_weights=weights)
    tp, fp, fn_ = _counts(logits, target, temperature)
    want = (weights * tp).sum() / (weights * (tp + alpha * fp + beta * fn_)).sum()
    assert got.item() == pytest.approx(want.item(), rel=1e-12)


@pytest.mark.parametrize("name", sorted(TVERSKY))
@pytest.mark.parametrize("temperature", [0.0, 0.7])
@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_weighted_micro_does_not_depend_on_the_scale_of_the_weights(name, temperature, task,
                                                                   zero_division):
    """The pooled value `sum w TP / sum w (TP + alpha FP + beta FN)` is the same for the
    weights `w` and `s w`, also where it takes its rule for "nothing predicted" (precision)
    or "no target" (`zero_division`): those ask whether the classes of positive weight
    predict or hold anything, whatever their weights."""
    fn = TVERSKY[name][0]
    gen = torch.Generator().manual_seed(5)
    n, c = 6, 3
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * 3
    if task == "multiclass":
        target = torch.randint(0, c, (n,), generator=gen)
    else:  # few positives: classes without a target, predictions without a positive
        target = (torch.rand(n, c, generator=gen) < 0.15).long()
    weights = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    kw = dict(task=task, num_classes=c, temperature=temperature, average="micro",
              zero_division=zero_division)
    want = fn(logits, target, class_weights=weights, **kw)
    for scale in (1e-4, 1e-2, 1e3):
        got = fn(logits, target, class_weights=scale * weights, **kw)
        assert got.item() == pytest.approx(want.item(), rel=1e-9, abs=1e-12), scale
    # no target at all, one false positive: F1 is 0, whatever the weights
    none = torch.zeros(1, c, dtype=torch.long)
    one = torch.tensor([[5.0, -5.0, -5.0]], dtype=torch.float64)
    ml = dict(task="multilabel", num_classes=c, average="micro", temperature=0,
              zero_division=zero_division)
    if name in ("f1", "jaccard"):
        for w in (weights, 0.01 * weights):
            assert fn(one, none, class_weights=w, **ml).item() == 0.0


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_generalized_weights_score_a_perfect_prediction_one(average):
    """Sudre et al.'s weights (1 / support^2) are small numbers: a perfect prediction's
    precision, recall, F1 and Jaccard are still 1."""
    y = torch.arange(1000) % 4
    z = torch.nn.functional.one_hot(y, 4).float() * 10
    for fn, _, _ in TVERSKY.values():
        value = fn(z, y, task="multiclass", num_classes=4, average=average,
                   class_weights="generalized", temperature=0)
        assert value.item() == 1.0, fn.__name__


def _generalized_dice(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sudre et al. (2017), eq. 2, per the loop over classes; an empty class takes the
    largest finite weight (MONAI's handling of the infinite weight)."""
    c = p.shape[1]
    weights = []
    for k in range(c):
        s = float(y[:, k].sum())
        weights.append(1.0 / s**2 if s > 0 else None)
    top = max(w for w in weights if w is not None)
    weights = [top if w is None else w for w in weights]
    num = sum(w * float((p[:, k] * y[:, k]).sum()) for k, w in enumerate(weights))
    den = sum(w * float((p[:, k] + y[:, k]).sum()) for k, w in enumerate(weights))
    return torch.tensor(2 * num / den, dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generalized_dice_equals_sudre(temperature):
    logits, target, _ = _problem(3, n=80)
    got = F.soft_f1_score(logits, target, task="multiclass", num_classes=5,
                          temperature=temperature, class_weights="generalized")
    p = (torch.nn.functional.one_hot(logits.argmax(1), 5).double() if temperature == 0
         else logits.softmax(1))
    y = torch.nn.functional.one_hot(target, 5).double()
    assert got.item() == pytest.approx(_generalized_dice(p, y).item(), rel=1e-12)


def test_generalized_dice_is_per_sample_with_samplewise():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 4, 6, 6, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 3, (3, 6, 6), generator=gen)
    got = F.soft_f1_score(logits, target, task="multiclass", num_classes=4,
                          multidim_average="samplewise", class_weights="generalized")
    for i in range(3):
        p = logits[i].softmax(0).reshape(4, -1).T
        y = torch.nn.functional.one_hot(target[i].reshape(-1), 4).double()
        assert got[i].item() == pytest.approx(_generalized_dice(p, y).item(), rel=1e-12)


def test_unit_weights_change_nothing_and_ignored_class_stays_out():
    logits, target, _ = _problem(5)
    kw = dict(task="multiclass", num_classes=5, temperature=0.5, ignore_index=0)
    ones = torch.ones(5, dtype=torch.float64)
    for average in ("macro", "micro"):
        torch.testing.assert_close(F.soft_jaccard_index(logits, target, average=average, **kw),
                                   F.soft_jaccard_index(logits, target, average=average,
                                                        class_weights=ones, **kw))
    # a weight on the ignored class does not bring it back
    heavy = ones.clone()
    heavy[0] = 100.0
    torch.testing.assert_close(F.soft_jaccard_index(logits, target, **kw),
                               F.soft_jaccard_index(logits, target, class_weights=heavy, **kw))


def test_multilabel_weights_and_gradcheck():
    gen = torch.Generator().manual_seed(6)
    logits = torch.randn(12, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    target = (torch.rand(12, 3, generator=gen) < 0.5).long()
    weights = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)

    def f(x):
        return F.soft_f1_score(x, target, task="multilabel", num_classes=3,
                               class_weights=weights)

    per = F.soft_f1_score(logits, target, task="multilabel", num_classes=3, average="none")
    assert f(logits).item() == pytest.approx(((per * weights).sum() / weights.sum()).item())
    assert torch.autograd.gradcheck(f, (logits,))
    assert torch.autograd.gradgradcheck(f, (logits,))


def test_module_keeps_weights_as_an_option_that_follows_the_device_and_dtype():
    weights = torch.tensor([1.0, 3.0, 1.0])
    loss_fn = softmetrics.SoftDiceLoss(task="multiclass", num_classes=3, class_weights=weights)
    assert "class_weights=[1.0, 3.0, 1.0]" in repr(loss_fn)
    assert "class_weights" not in loss_fn.state_dict()
    logits = torch.randn(10, 3, dtype=torch.float64)
    target = torch.randint(0, 3, (10,))
    want = 1 - F.soft_f1_score(logits, target, task="multiclass", num_classes=3,
                               class_weights=weights.double())
    assert loss_fn(logits, target).item() == pytest.approx(want.item(), rel=1e-6)
    assert loss_fn.half().class_weights.dtype == torch.float32  # statistics stay float32
    generalized = softmetrics.SoftDiceLoss(task="multiclass", num_classes=3,
                                           class_weights="generalized")
    assert "class_weights='generalized'" in repr(generalized)


@pytest.mark.parametrize("kwargs, match", [
    (dict(class_weights=torch.ones(4)), r"shape \(3,\)"),
    (dict(class_weights=torch.tensor([1.0, -1.0, 1.0])), "finite, >= 0"),
    (dict(class_weights=torch.zeros(3)), "not all 0"),
    (dict(class_weights=torch.tensor([1.0, float("inf"), 1.0])), "finite, >= 0"),
    (dict(class_weights=torch.tensor([1.0, float("nan"), 1.0])), "finite, >= 0"),
    (dict(class_weights=torch.ones(3, dtype=torch.long)), "floating-point"),
    (dict(class_weights="sudre"), "generalized"),
    (dict(class_weights=torch.ones(3), average="weighted"), "average"),
])
def test_bad_weights_raise_at_construction(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        softmetrics.SoftDiceLoss(task="multiclass", num_classes=3, **kwargs)
    assert "SoftDiceLoss" in str(info.value)


def test_a_class_of_weight_zero_leaves_the_macro_average():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(16, 3, generator=g, dtype=torch.float64)
    target = torch.randint(0, 3, (16,), generator=g)
    kw = dict(task="multiclass", num_classes=3, average="none")
    per_class = F.soft_f1_score(logits, target, **kw)
    loss_fn = softmetrics.SoftDiceLoss(task="multiclass", num_classes=3,
                                       class_weights=torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(loss_fn(logits, target), 1 - per_class[[0, 2]].mean())


def test_weights_where_they_have_no_meaning_raise():
    with pytest.raises(ValueError, match="average"):
        softmetrics.SoftAccuracyLoss(task="multiclass", num_classes=3,
                                     class_weights=torch.ones(3))  # micro by default
    with pytest.raises(ValueError, match="class_weights"):
        softmetrics.SoftMCCLoss(task="multiclass", num_classes=3, average="macro",
                                class_weights="generalized")
    with pytest.raises(ValueError, match="binary"):
        F.soft_f1_score(torch.randn(4), torch.ones(4, dtype=torch.long), task="binary",
                        class_weights=torch.ones(1))
    got = F.soft_accuracy(torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]),
                          task="multiclass", num_classes=3, average="macro",
                          class_weights=torch.tensor([1.0, 1.0, 2.0]), temperature=0)
    assert np.isfinite(got.item())


class _NoStringEquality(torch.Tensor):
    """A tensor that fails when compared with a string: torch 2.8's compiler cannot trace
    `tensor == "generalized"` (the comparison returns NotImplemented)."""

    def __eq__(self, other):
        if isinstance(other, str):
            raise TypeError(f"a tensor compared with {other!r}")
        return super().__eq__(other)

    __hash__ = torch.Tensor.__hash__


@pytest.mark.parametrize("average", ["macro", "micro"])
@pytest.mark.parametrize("gamma", [1.0, 0.75])
def test_class_weight_tensors_are_never_compared_with_a_string(average, gamma):
    """Where `class_weights` may be "generalized" or a tensor, the code asks which it is
    before comparing, so the weighted losses compile on torch 2.8 too."""
    logits, target, weights = _problem(0)
    strict = weights.as_subclass(_NoStringEquality)
    loss_fn = softmetrics.SoftDiceLoss(task="multiclass", num_classes=5, class_weights=strict,
                                       average=average, gamma=gamma)
    plain = softmetrics.SoftDiceLoss(task="multiclass", num_classes=5, class_weights=weights,
                                     average=average, gamma=gamma)
    assert torch.equal(loss_fn(logits, target).as_subclass(torch.Tensor),
                       plain(logits, target))
