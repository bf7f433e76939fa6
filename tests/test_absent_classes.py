"""Classes absent from a batch, and an `ignore_index` that is a class.

At temperature 0 the macro averages follow scikit-learn's default `labels` and
torchmetrics: a multiclass class with no target and no prediction leaves the average,
every multilabel label counts, and a multiclass `ignore_index` inside [0, C) leaves the
micro sums and the averages (torchmetrics' Jaccard index). At temperature > 0 the same
rules hold without a floor that no gradient can lower, and converge to the exact ones.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from torchmetrics.functional import classification as tmf

import softmetrics
from softmetrics import functional as F


def _one_hot_logits(pred: list[int], num_classes: int, scale: float = 10.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), num_classes).double() * scale


# --- temperature 0: the peers' literal cases ---------------------------------------------


def test_macro_f1_leaves_out_classes_nobody_uses():
    pred, target = [2, 1, 0, 1], [2, 1, 0, 0]
    logits, y = _one_hot_logits(pred, 8), torch.tensor(target)
    got = F.soft_f1_score(logits, y, task="multiclass", num_classes=8, temperature=0)
    sk = skm.f1_score(target, pred, average="macro")
    tm = tmf.multiclass_f1_score(torch.tensor(pred), y, num_classes=8, average="macro")
    assert sk == pytest.approx(7 / 9) and tm.item() == pytest.approx(7 / 9)
    assert got.item() == pytest.approx(7 / 9, abs=1e-12)
    # all C classes, as scikit-learn's labels=range(C): the absent ones score zero_division
    every = F.soft_f1_score(logits, y, task="multiclass", num_classes=8, temperature=0,
                            absent_classes="include")
    want = skm.f1_score(target, pred, average="macro", labels=list(range(8)), zero_division=0)
    assert every.item() == pytest.approx(want, abs=1e-12)
    assert want == pytest.approx(7 / 24)


def test_multilabel_keeps_every_label():
    y = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    p = torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 0]])
    logits = (p.double() * 2 - 1) * 10
    got = F.soft_f1_score(logits, y, task="multilabel", num_classes=3, temperature=0)
    tm = tmf.multilabel_f1_score(p, y, num_labels=3, average="macro")
    sk = skm.f1_score(y.numpy(), p.numpy(), average="macro", zero_division=0)
    assert got.item() == pytest.approx(tm.item(), abs=1e-7) == pytest.approx(sk)
    assert got.item() == pytest.approx(5 / 9, abs=1e-12)
    skipped = F.soft_f1_score(logits, y, task="multilabel", num_classes=3, temperature=0,
                              absent_classes="skip")
    assert skipped.item() == pytest.approx(5 / 6, abs=1e-12)  # label 2: no target, no prediction


@pytest.mark.parametrize("average, want", [("micro", 0.5), ("macro", 0.5)])
def test_ignore_index_that_is_a_class_leaves_the_averages(average, want):
    target, pred = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])
    tm = tmf.multiclass_jaccard_index(pred, target, num_classes=3, average=average,
                                      ignore_index=0)
    got = F.soft_jaccard_index(_one_hot_logits(pred.tolist(), 3), target, task="multiclass",
                               num_classes=3, average=average, ignore_index=0, temperature=0)
    assert tm.item() == pytest.approx(want) and got.item() == pytest.approx(want, abs=1e-12)
    # scikit-learn agrees once told which labels count: all but the ignored one (micro),
    # and of those the ones in target or prediction (macro)
    kept = target != 0
    labels = [1, 2] if average == "micro" else [1]
    sk = skm.jaccard_score(target[kept].numpy(), pred[kept].numpy(), labels=labels,
                           average=average, zero_division=0)
    assert sk == pytest.approx(want)


@pytest.mark.parametrize("average", ["micro", "macro", "none"])
def test_multilabel_ignore_index_is_a_target_value_not_a_label(average):
    """For multilabel targets `ignore_index` marks entries to ignore (torchmetrics): a value
    inside [0, C), here 2 of 4 labels, takes no label out of the averages."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (20, 4), generator=g)
    y[::3, 1] = 2
    y[1::4, 2] = 2
    got = F.soft_f1_score(x, y, task="multilabel", num_classes=4, ignore_index=2,
                          temperature=0, average=average)
    tm = tmf.multilabel_f1_score(torch.sigmoid(x), y, num_labels=4, ignore_index=2,
                                 average=average)
    torch.testing.assert_close(got.float(), tm)


def test_ignored_class_keeps_its_per_class_value():
    target, pred = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])
    got = F.soft_jaccard_index(_one_hot_logits(pred.tolist(), 3), target, task="multiclass",
                               num_classes=3, average="none", ignore_index=0, temperature=0)
    tm = tmf.multiclass_jaccard_index(pred, target, num_classes=3, average="none",
                                      ignore_index=0)
    torch.testing.assert_close(got.float(), tm)


@pytest.mark.parametrize("absent_classes", [None, "skip", "include"])
@pytest.mark.parametrize("name", ["f1", "jaccard", "precision", "recall", "accuracy", "mcc"])
def test_every_metric_follows_one_rule_per_class(name, absent_classes):
    """The macro average equals the mean over the classes the rule keeps, whatever the
    formula: it is computed from the per-class values (average="none")."""
    fn = {"f1": F.soft_f1_score, "jaccard": F.soft_jaccard_index,
          "precision": F.soft_precision, "recall": F.soft_recall,
          "accuracy": F.soft_accuracy, "mcc": F.soft_matthews_corrcoef}[name]
    target = torch.tensor([0, 0, 3, 3, 1, 5, 5, 5])
    pred = [0, 3, 3, 3, 2, 5, 0, 5]  # class 2 predicted only, 4 nowhere, 1 target only
    kw = dict(task="multiclass", num_classes=6, temperature=0, zero_division=1.0,
              absent_classes=absent_classes, ignore_index=5)
    logits = _one_hot_logits(pred, 6)
    per = fn(logits, target, average="none", **kw)
    got = fn(logits, target, average="macro", **kw)
    kept = target != 5
    seen = set(target[kept].tolist()) | set(torch.tensor(pred)[kept].tolist())
    if absent_classes == "include":
        counted = [c for c in range(6) if c != 5]
    elif name == "accuracy":  # balanced accuracy: the classes of the target
        counted = sorted(set(target[kept].tolist()))
    else:
        counted = sorted(seen - {5})
    assert got.item() == pytest.approx(per[counted].mean().item(), abs=1e-12)


# --- temperature > 0: no floor, and the exact rule in the limit --------------------------


def _two_of_five(margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits +-margin that predict the target, on 5 classes of which 2 occur."""
    target = torch.tensor([0, 1, 0, 1, 1, 0])
    logits = torch.full((6, 5), -margin, dtype=torch.float64)
    logits[torch.arange(6), target] = margin
    return logits.requires_grad_(), target


def test_near_perfect_logits_give_a_near_zero_loss():
    logits, target = _two_of_five(10.0)
    loss_fn = softmetrics.SoftJaccardLoss(task="multiclass", num_classes=5)
    assert loss_fn.metric(logits, target).item() == 1.0
    assert skm.jaccard_score(target, logits.argmax(1), average="macro") == 1.0
    assert loss_fn(logits, target).item() < 1e-7  # it was 0.6 with the absent classes kept
    every = softmetrics.SoftJaccardLoss(task="multiclass", num_classes=5,
                                        absent_classes="include")
    assert every(logits, target).item() == pytest.approx(0.6, abs=1e-6)


def test_absent_class_predictions_are_pushed_down():
    """A class with no target, predicted a little, lowers the soft macro average with a
    gradient that pushes its logits down (before, it added a constant with no gradient)."""
    target = torch.tensor([0, 1, 0, 1])
    logits = torch.zeros(4, 4, dtype=torch.float64)
    logits[torch.arange(4), target] = 3.0
    logits.requires_grad_()
    loss = softmetrics.SoftDiceLoss(task="multiclass", num_classes=4)(logits, target)
    (grad,) = torch.autograd.grad(loss, logits)
    assert (grad[:, 2:] > 0).all()  # descent lowers the absent classes' logits
    probs = logits.detach().softmax(1)
    tp = probs[torch.arange(4), target].reshape(2, 2).sum(0)  # classes 0 and 1
    pred = probs.sum(0)
    dice = 2 * tp / (pred[:2] + 2)
    weight = pred[2:] / (pred[2:] + 1.0)  # soft "is it predicted?" at temperature 1
    want = 1 - dice.sum() / (2 + weight.sum())
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("absent_classes", ["skip", "include"])
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_soft_value_converges_to_the_exact_one(task, absent_classes, zero_division):
    gen = torch.Generator().manual_seed(3)
    if task == "multiclass":
        logits = torch.randn(40, 6, generator=gen, dtype=torch.float64) * 3
        logits[:, 4] -= 20  # class 4 never predicted: it leaves the average, or scores zd
        target = torch.randint(0, 3, (40,), generator=gen)  # classes 3..5 absent
    else:
        logits = torch.randn(40, 4, generator=gen, dtype=torch.float64)
        logits = logits.sign() * (logits.abs() + 0.5)  # no logit near the threshold
        target = (torch.rand(40, 4, generator=gen) < 0.4).long()
        target[:, 3] = 0  # a label that never occurs
        logits[:, 2] = -3.0  # one that is never predicted
        target[:, 2] = 0
    kw = dict(task=task, num_classes=logits.shape[1], absent_classes=absent_classes,
              zero_division=zero_division)
    exact = F.soft_f1_score(logits, target, temperature=0, **kw)
    errors = [abs(F.soft_f1_score(logits, target, temperature=t, **kw) - exact).item()
              for t in (1e-2, 1e-3, 1e-4, 1e-5)]
    # an absent class enters as t / (t + FP): the error falls with t, at least linearly
    assert errors[-1] < 1e-4
    assert all(b <= a / 5 or b < 1e-12 for a, b in itertools.pairwise(errors))


@pytest.mark.parametrize("zero_division", [0.0, 1.0])
@pytest.mark.parametrize("average, absent_classes", [
    ("none", None), ("macro", None), ("macro", "skip"), ("macro", "include")])
def test_soft_f1_with_an_absent_class_is_the_documented_formula(average, absent_classes,
                                                                zero_division):
    """At temperature t a class with a target scores its soft F1; one without scores
    `zero_division * t / (t + FP)`, which predicting it less raises. The macro average
    that skips absent classes (the multiclass default) instead weighs such a class by
    `FP / (FP + t)`, the others by 1, and scores it as predicted (0): predicting it less
    lowers its weight, which it has only while it is predicted."""
    t = 0.7
    g = torch.Generator().manual_seed(4)
    x = torch.randn(12, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)  # class 3 absent
    kw = dict(task="multiclass", num_classes=4, temperature=t)
    s = F.soft_stat_scores(x, y, **kw)
    present = s.tp + s.fn > 0
    score = torch.where(present, s.tp / (s.tp + 0.5 * s.fp + 0.5 * s.fn),
                        zero_division * t / (t + s.fp))
    if average == "none":
        want = score
    elif absent_classes == "include":
        want = score.mean()
    else:
        weight = torch.where(present, 1.0, s.fp / (s.fp + t))
        want = (weight * torch.where(present, score, 0.0)).sum() / weight.sum()
    got = F.soft_f1_score(x, y, **kw, average=average, absent_classes=absent_classes,
                          zero_division=zero_division)
    torch.testing.assert_close(got, want)


def test_never_present_label_reaches_zero_division_by_predicting_nothing():
    """Multilabel, zero_division=1: a label that never occurs scores 1 when nothing
    predicts it; the soft loss gets there along a gradient instead of sitting on a floor."""
    target = torch.tensor([[1, 0], [1, 0], [0, 0]])
    loss_fn = softmetrics.SoftF1Loss(task="multilabel", num_classes=2, zero_division=1.0)
    values = []
    for bias in (0.0, -3.0, -6.0, -12.0):
        logits = torch.tensor([[6.0, bias], [6.0, bias], [-6.0, bias]], dtype=torch.float64,
                              requires_grad=True)
        loss = loss_fn(logits, target)
        (grad,) = torch.autograd.grad(loss, logits)
        values.append(loss.item())
        if bias == 0.0:
            assert (grad[:, 1] > 0).all()  # descent lowers the label's logits
    assert values == sorted(values, reverse=True)
    assert values[-1] < 1e-3
    assert loss_fn.metric(logits, target).item() == 1.0


def test_samplewise_skips_per_sample():
    """Each sample averages over its own classes, as torchmetrics' samplewise does."""
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 0]])
    logits = torch.nn.functional.one_hot(pred, 4).permute(0, 2, 1).double() * 10
    got = F.soft_f1_score(logits, target, task="multiclass", num_classes=4, temperature=0,
                          multidim_average="samplewise")
    tm = tmf.multiclass_f1_score(pred, target, num_classes=4, average="macro",
                                 multidim_average="samplewise")
    torch.testing.assert_close(got.float(), tm)
    assert np.all(got.numpy() > 0.5)


def test_absent_classes_option_checked_at_construction():
    with pytest.raises(ValueError, match=r"SoftF1Loss.*absent_classes"):
        softmetrics.SoftF1Loss(task="multiclass", num_classes=3, absent_classes="drop")
    with pytest.raises(ValueError, match="absent_classes"):
        softmetrics.SoftF1Loss(task="binary", absent_classes="skip")
    loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=3, absent_classes="include")
    assert "absent_classes='include'" in repr(loss_fn)


@pytest.mark.parametrize("temperature", [0.5, "tensor"])
@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("case", ["multiclass", "multiclass-ignored", "multiclass-soft",
                                  "multilabel", "multilabel-ignored", "multilabel-soft"])
def test_a_class_without_a_target_has_exactly_zero_true_positives(case, samplewise,
                                                                   temperature):
    """The macro average that skips absent classes weighs a class without a target by its
    predicted mass, which it reads as that class's FP (`class_average`): that holds only
    while the class's TP is exactly 0, a sum over no entries (labels) or of `min(p, 0)`
    (soft targets). So it is in every counting path: the fused Functions (a number as the
    temperature) and autograd's (a tensor), global and per sample, with ignored entries."""
    g = torch.Generator().manual_seed(11)
    task = case.split("-")[0]
    n, c, absent = 9, 4, 2
    x = torch.randn(n, c, generator=g).requires_grad_()
    kw: dict = dict(task=task, num_classes=c,
                    multidim_average="samplewise" if samplewise else "global",
                    ignore_index=-1 if case.endswith("ignored") else None)
    if task == "multiclass" and case.endswith("soft"):
        y = torch.rand(n, c, generator=g)
        y[:, absent] = 0.0
        y = y / y.sum(1, keepdim=True)
    elif task == "multiclass":
        y = torch.tensor([0, 1, 3] * 3)
        if case.endswith("ignored"):
            y[::4] = -1
    else:
        y = torch.rand(n, c, generator=g)
        if not case.endswith("soft"):
            y = (y > 0.5).long()
            if case.endswith("ignored"):
                y[::3, 0] = -1
        y[:, absent] = 0
    t = torch.tensor(0.5) if temperature == "tensor" else temperature
    s = F.soft_stat_scores(x, y, temperature=t, **kw)
    assert (s.tp[..., absent] == 0).all(), s.tp
    assert (s.fp[..., absent] > 0).any()  # predicted: the weight reads a positive mass
