"""Soft (probabilistic) targets: a floating target of the input's shape holds probabilities.

The counts are Wang and Blaschko's L1 form, TP = (sum x + sum y - sum |x - y|) / 2, which
equals the label counts for one-hot targets and makes the Tversky family, accuracy and MCC
best exactly where the decision equals the target.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import softmetrics
from softmetrics import functional as F
from softmetrics.functional._classification_counts import decision_counts

from .allocations import Allocations

METRICS = [F.soft_accuracy, F.soft_precision, F.soft_recall, F.soft_f1_score,
           F.soft_jaccard_index, F.soft_matthews_corrcoef]
AVERAGES = ["micro", "macro", "weighted", "none"]


def _probabilities(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> torch.Tensor:
    """Random class probabilities along `axis`, every entry in (0, 1)."""
    g = rng.gamma(0.7, size=shape) + 1e-3
    return torch.from_numpy(g / g.sum(axis, keepdims=True))


@st.composite
def label_cases(draw):
    task = draw(st.sampled_from(["binary", "multiclass", "multilabel"]))
    c = draw(st.sampled_from([2, 3, 5]))
    n = draw(st.integers(1, 12))
    extra = draw(st.sampled_from([(), (3,)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    shape = (n, *extra) if task == "binary" else (n, c, *extra)
    x = torch.from_numpy(rng.integers(-8, 9, size=shape) / 4).float()
    if task == "multiclass":
        y = torch.from_numpy(rng.integers(0, c, size=(n, *extra)))
        soft = torch.nn.functional.one_hot(y, c).movedim(-1, 1).float()
    else:
        y = torch.from_numpy(rng.integers(0, 2, size=shape))
        soft = y.float()
    kw = dict(task=task) if task == "binary" else dict(task=task, num_classes=c)
    return x, y, soft, kw


@settings(max_examples=40, deadline=None)
@given(case=label_cases(), temperature=st.sampled_from([0, 0.3, 1.0, 4.0]),
       samplewise=st.booleans())
def test_one_hot_soft_targets_equal_labels(case, temperature, samplewise):
    """One-hot probabilities give the label metric at every temperature: bit for bit at
    temperature 0 (and, for binary/multilabel, at every temperature), to rounding else
    (multiclass soft targets sum the counts in another order)."""
    x, y, soft, kw = case
    kw = dict(kw, multidim_average="samplewise" if samplewise else "global")
    for fn in METRICS:
        for average in AVERAGES:
            a = fn(x, y, temperature=temperature, average=average, **kw)
            b = fn(x, soft, temperature=temperature, average=average, **kw)
            if temperature == 0 or kw["task"] != "multiclass":
                assert torch.equal(a, b), (fn.__name__, average)
            else:
                torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("extra", [(), (3,)])
def test_one_hot_soft_targets_equal_labels_in_gradient(task, extra):
    """Through the fused Functions (a graph being built) too: float 0/1 targets give the
    labels' value (bit for bit for binary and multilabel) and, to rounding, their
    gradient, also where the sigmoid saturates to exactly 0 or 1 (a tie of the minimum)."""
    g = torch.Generator().manual_seed(0)
    shape = (16, *extra) if task == "binary" else (16, 4, *extra)
    x = torch.randn(*shape, generator=g)
    x.view(-1)[:4] = torch.tensor([40.0, -40.0, 200.0, -200.0])  # p = 1 or 0 exactly
    if task == "multiclass":
        y = torch.randint(0, 4, (16, *extra), generator=g)
        soft = torch.nn.functional.one_hot(y, 4).movedim(-1, 1).float()
    else:
        y = torch.randint(0, 2, shape, generator=g)
        y.view(-1)[:4] = torch.tensor([1, 0, 0, 1])
        soft = y.float()
    kw = dict(task=task) if task == "binary" else dict(task=task, num_classes=4)
    for fn in (F.soft_f1_score, F.soft_matthews_corrcoef, F.soft_accuracy):
        values, grads = [], []
        for target in (y, soft):
            z = x.clone().requires_grad_()
            value = fn(z, target, temperature=0.5, **kw)
            value.backward()
            values.append(value.detach())
            grads.append(z.grad)
        if task == "multiclass":
            torch.testing.assert_close(values[0], values[1], atol=1e-6, rtol=0)
        else:
            assert torch.equal(values[0], values[1]), fn.__name__
        torch.testing.assert_close(grads[0], grads[1], atol=1e-7, rtol=1e-5)


def _direct_counts(p: torch.Tensor, y: torch.Tensor, dims: tuple[int, ...]):
    """Wang and Blaschko's L1 form of the counts, written out."""
    tp = (p.sum(dims) + y.sum(dims) - (p - y).abs().sum(dims)) / 2
    return tp, p.sum(dims) - tp, y.sum(dims) - tp


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_counts_are_the_l1_form(task):
    rng = np.random.default_rng(3)
    if task == "multiclass":
        x = torch.randn(7, 4, 5, generator=torch.Generator().manual_seed(0))
        y = _probabilities(rng, (7, 4, 5), 1).float()
        p = torch.softmax(x / 0.7, 1)
        kw = dict(task=task, num_classes=4)
    else:
        shape = (7, 5) if task == "binary" else (7, 4, 5)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        y = torch.from_numpy(rng.uniform(size=shape)).float()
        p = torch.sigmoid((x - math.log(0.3 / 0.7)) / 0.7)
        kw = dict(task=task) if task == "binary" else dict(task=task, num_classes=4)
    dims = (0, 1) if task == "binary" else (0, 2)
    tp, fp, fn = _direct_counts(p, y, dims)
    s = F.soft_stat_scores(x, y, temperature=0.7, threshold=0.3, **kw)
    for got, want in ((s.tp, tp), (s.fp, fp), (s.fn, fn)):
        torch.testing.assert_close(got.reshape(-1), want.reshape(-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s.support.reshape(-1), y.sum(dims).reshape(-1))
    total = y.numel() // (1 if task == "binary" else 4)
    torch.testing.assert_close((s.tp + s.fp + s.fn + s.tn).reshape(-1),
                               torch.full_like(s.tp.reshape(-1), float(total)))
    # the same by hand through the formulas: Dice, Jaccard and the binary accuracy
    dice = F.soft_f1_score(x, y, temperature=0.7, threshold=0.3, average="none", **kw)
    torch.testing.assert_close(dice.reshape(-1), (2 * tp / (2 * tp + fp + fn)).reshape(-1))
    if task == "binary":
        acc = F.soft_accuracy(x, y, temperature=0.7, threshold=0.3, **kw)
        torch.testing.assert_close(acc, 1 - (p - y).abs().mean())


@st.composite
def soft_cases(draw):
    """A soft target with every entry in (0, 1), the logits whose decision equals it, and
    a perturbation of those logits."""
    task = draw(st.sampled_from(["binary", "multiclass", "multilabel"]))
    c = draw(st.sampled_from([2, 3, 5]))
    n = draw(st.integers(1, 8))
    extra = draw(st.sampled_from([(), (2,)]))
    temperature = draw(st.sampled_from([0.5, 1.0, 2.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    # the target is the decision itself, computed as the library computes it, so that
    # decision and target tie exactly (not only to rounding)
    if task == "multiclass":
        z = temperature * _probabilities(rng, (n, c, *extra), 1).log()
        y = torch.softmax(z / temperature, dim=1)
        kw = dict(task=task, num_classes=c)
    else:
        shape = (n, *extra) if task == "binary" else (n, c, *extra)
        shift = math.log(0.4) - math.log1p(-0.4)
        z = temperature * torch.logit(torch.from_numpy(rng.uniform(0.02, 0.98, size=shape)))
        z = z + shift
        y = torch.sigmoid((z - shift) * (1 / temperature))
        kw = dict(task=task, threshold=0.4)
        if task == "multilabel":
            kw["num_classes"] = c
    delta = torch.from_numpy(rng.normal(size=z.shape)) * draw(st.sampled_from([0.05, 0.5, 2]))
    return z, y, delta, dict(kw, temperature=temperature)


LOSSES_AT_TARGET = [
    (softmetrics.SoftDiceLoss, {}, True),
    (softmetrics.SoftJaccardLoss, {}, True),
    (softmetrics.SoftTverskyLoss, dict(alpha=0.7, beta=0.7), True),
    (softmetrics.SoftTverskyLoss, dict(alpha=0.3, beta=0.7), False),
    (softmetrics.SoftFBetaLoss, dict(beta=2.0), False),
    (softmetrics.SoftAccuracyLoss, {}, False),
    (softmetrics.SoftMCCLoss, {}, False),
]


@settings(max_examples=60, deadline=None)
@given(case=soft_cases(), which=st.integers(0, len(LOSSES_AT_TARGET) - 1),
       average=st.sampled_from(["micro", "macro"]))
def test_loss_is_minimal_where_the_decision_equals_the_target(case, which, average):
    """Minimum at the target: the loss is 0 (MCC: 0 too, a correlation of 1) where the
    soft decision equals the target, larger at any other decision, and (Dice, Jaccard,
    any Tversky index with alpha = beta) its gradient there vanishes: `min(x, y)` takes
    slope 1/2 at a tie, which makes both one-sided slopes cancel. The minimum is a kink:
    a decision a rounding error away from the target has a one-sided gradient, of the
    size of the loss's slope, not ~0."""
    z, y, delta, kw = case
    cls, extra, flat = LOSSES_AT_TARGET[which]
    if cls is softmetrics.SoftMCCLoss and kw["task"] == "binary" and y.numel() < 2:
        return  # one entry: the marginals are constant, the correlation is undefined
    options = dict(kw, **extra)
    if kw["task"] != "binary":
        options["average"] = average
    loss_fn = cls(**options)
    at = z.clone().requires_grad_()
    loss = loss_fn(at, y)
    loss.backward()
    assert abs(loss.item()) < 1e-9
    if flat:
        assert at.grad.abs().max() < 1e-9
    moved = loss_fn(z + delta, y)
    assert moved.item() >= loss.item() - 1e-12
    if delta.abs().max() > 0.1:  # the decision moved away from the target
        assert moved.item() > 0


def _monai_dice(p: torch.Tensor, y: torch.Tensor, jaccard: bool) -> torch.Tensor:
    from monai.losses import DiceLoss

    loss = DiceLoss(softmax=False, sigmoid=False, soft_label=True, jaccard=jaccard,
                    batch=True, reduction="none", smooth_nr=0.0, smooth_dr=0.0)
    return 1 - loss(p, y).reshape(-1)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("jaccard", [False, True])
def test_agrees_with_monai_soft_label_dice(task, jaccard):
    """MONAI's DiceLoss(soft_label=True) (MONAI PR #8138) on the same probabilities, per
    class over the batch (`batch=True`, no smoothing): MONAI takes probabilities, not
    logits, and averages the per-class losses itself; `average="none"` compares the
    per-class values."""
    monai = pytest.importorskip("monai")
    from monai.losses import DiceLoss

    if "soft_label" not in inspect.signature(DiceLoss).parameters:
        pytest.skip(f"MONAI {monai.__version__} has no soft_label (the newest for torch 2.1)")
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 8, 8, generator=g, dtype=torch.float64)
    if task == "multiclass":
        y = _probabilities(rng, (6, 4, 8, 8), 1)
        p = torch.softmax(x, 1)
    else:
        y = torch.from_numpy(rng.uniform(size=(6, 4, 8, 8)))
        p = torch.sigmoid(x)
    ours = (F.soft_jaccard_index if jaccard else F.soft_f1_score)(
        x, y, task=task, num_classes=4, average="none")
    torch.testing.assert_close(ours, _monai_dice(p, y, jaccard), atol=1e-12, rtol=1e-10)
    # the hard decision against soft masks too: MONAI on the one-hot argmax
    hard = (F.soft_jaccard_index if jaccard else F.soft_f1_score)(
        x, y, task=task, num_classes=4, average="none", temperature=0)
    onehot = (torch.nn.functional.one_hot(x.argmax(1), 4).movedim(-1, 1).double()
              if task == "multiclass" else (x > 0).double())
    torch.testing.assert_close(hard, _monai_dice(onehot, y, jaccard), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("samplewise", [False, True])
def test_gradcheck(task, samplewise):
    rng = np.random.default_rng(1)
    g = torch.Generator().manual_seed(2)
    shape = (5, 3) if task == "binary" else (5, 3, 3)
    x = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    if task == "multiclass":
        y = _probabilities(rng, shape, 1)
        kw = dict(task=task, num_classes=3)
    else:
        y = torch.from_numpy(rng.uniform(size=shape))
        kw = dict(task=task) if task == "binary" else dict(task=task, num_classes=3)
    kw["multidim_average"] = "samplewise" if samplewise else "global"
    for fn in (F.soft_f1_score, F.soft_jaccard_index, F.soft_matthews_corrcoef,
               F.soft_accuracy):
        assert torch.autograd.gradcheck(lambda z, fn=fn: fn(z, y, temperature=0.7, **kw), (x,))
        assert torch.autograd.gradgradcheck(lambda z, fn=fn: fn(z, y, temperature=0.7, **kw),
                                            (x,))


@pytest.mark.parametrize("task", ["binary", "multilabel"])
def test_fused_backward_equals_autograd(task):
    """The fused sigmoid counts with soft targets against the same code under autograd
    (a tensor temperature takes that path), ties between decision and target included."""
    g = torch.Generator().manual_seed(4)
    shape = (9, 4) if task == "binary" else (9, 3, 4)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = torch.rand(*shape, generator=g, dtype=torch.float64)
    y[0] = torch.sigmoid(x[0])  # exact ties: the slope 1/2
    w = (torch.rand(*shape, generator=g) > 0.2).double()
    if task == "binary":
        x, y, w = x.unsqueeze(1), y.unsqueeze(1), w.unsqueeze(1)
    up = torch.randn(2, 1, x.shape[1], generator=g, dtype=torch.float64)
    for samplewise in (False, True):
        out = []
        for temperature in (1.0, torch.tensor(1.0, dtype=torch.float64)):
            z = x.clone().requires_grad_()
            tp, pred = decision_counts(z, y, w, task=task, temperature=temperature,
                                       threshold=0.5, samplewise=samplewise, soft=True)
            (tp * up[0]).sum().add((pred * up[1]).sum()).backward()
            out.append((tp.detach(), pred.detach(), z.grad))
        for a, b in zip(*out, strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("c, extra", [(3, ()), (20, ()), (4, (3,))])
@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("block", [None, 0, 1, 70])
def test_fused_multiclass_equals_autograd(c, extra, samplewise, block, monkeypatch):
    """The fused softmax counts against soft targets (`_SoftmaxSoftCounts`) against the same
    code under autograd: padded narrow rows (C = 3 on the CPU), wide rows, extra axes;
    `block` sets the entries per block of the forward sums and of the in-place backward
    (0: one block; 70 leaves a short last block) with the small-input path off (None: the
    defaults, under which these inputs take it); ignored entries and exact ties between
    decision and target (the slope 1/2) included."""
    from softmetrics import _tuning

    if block is not None:
        monkeypatch.setattr(_tuning, "CPU_BLOCK_ENTRIES", block)
        monkeypatch.setattr(_tuning, "DEVICE_BLOCK_ENTRIES", block)
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 0)
    g = torch.Generator().manual_seed(c)
    shape = (9, c, *extra)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = torch.softmax(torch.randn(*shape, generator=g, dtype=torch.float64), 1)
    y[0] = torch.softmax(x[0] / 0.5, 0)  # exact ties at temperature 0.5
    w = (torch.rand(*shape, generator=g) > 0.2).double()
    up = torch.randn(2, 9 if samplewise else 1, c, generator=g, dtype=torch.float64)
    for temperature in (0.5, 2.0):
        out = []
        for t in (temperature, torch.tensor(temperature, dtype=torch.float64)):
            for weights in (None, w):
                z = x.clone().requires_grad_()
                tp, pred = decision_counts(z, y, weights, task="multiclass", temperature=t,
                                           threshold=0.5, samplewise=samplewise, soft=True)
                (grad,) = torch.autograd.grad((tp * up[0]).sum() + (pred * up[1]).sum(), z)
                out.append((tp, pred, grad))
        for a, b in zip(out[:2], out[2:], strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("samplewise, extra", [(False, ()), (False, (4,)), (True, (4,))])
def test_fused_multiclass_backward_needs_no_second_full_buffer(samplewise, extra):
    """On devices other than the CPU (meta: shapes without data) the backward writes the
    gradient over the probabilities: besides gradients of the size of the counts it
    allocates only its two temporaries of one block (2^24 entries each)."""
    n, c = 1 << 14, 1 << 12  # 2^26 logits (2^28 with the extra axis)
    x = torch.zeros(n, c, *extra, device="meta", requires_grad=True)
    y = torch.zeros(n, c, *extra, device="meta")
    tp, pred = decision_counts(x, y, None, task="multiclass", temperature=0.5,
                               threshold=0.5, samplewise=samplewise, soft=True)
    loss = tp.sum() - pred.pow(2).sum()
    with Allocations() as allocations:
        (grad,) = torch.autograd.grad(loss, x)
    assert grad.shape == x.shape
    assert max(allocations.sizes) <= max(2 << 24, tp.numel()) < x.numel()


def test_soft_supports_in_averages_and_generalized_weights():
    """The support is the target mass: with label smoothing no class is absent, and the
    generalized Dice weights are 1 / (sum y)^2."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(10, 3, generator=g)
    y = torch.zeros(10, dtype=torch.long)  # classes 1 and 2 never the label
    smooth = torch.nn.functional.one_hot(y, 3).double() * 0.9 + 0.1 / 3
    kw = dict(task="multiclass", num_classes=3, temperature=0)
    per_class = F.soft_precision(x, smooth, average="none", **kw)
    # hard decisions: every class whose argmax occurs counts, and none is absent
    assert F.soft_precision(x, smooth, **kw) == pytest.approx(per_class.mean().item())
    s = F.soft_stat_scores(x, smooth, task="multiclass", num_classes=3, temperature=0.5)
    weights = 1 / s.support**2
    want = (2 * (weights * s.tp).sum()) / (weights * (2 * s.tp + s.fp + s.fn)).sum()
    got = F.soft_f1_score(x, smooth, task="multiclass", num_classes=3, temperature=0.5,
                          class_weights="generalized")
    torch.testing.assert_close(got, want.float())


def test_module_equals_function():
    rng = np.random.default_rng(6)
    x = torch.randn(8, 3, 4, generator=torch.Generator().manual_seed(6))
    y = _probabilities(rng, (8, 3, 4), 1).float()
    loss_fn = softmetrics.SoftJaccardLoss(task="multiclass", num_classes=3, temperature=0.5)
    want = 1 - F.soft_jaccard_index(x, y, task="multiclass", num_classes=3, temperature=0.5)
    torch.testing.assert_close(loss_fn(x, y), want)
    torch.testing.assert_close(
        loss_fn.metric(x, y),
        F.soft_jaccard_index(x, y, task="multiclass", num_classes=3, temperature=0))


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.soft_f1_score(torch.randn(4, 3), torch.full((4, 3), 0.5), task="multiclass",
                             num_classes=3), ValueError,
     r"soft_f1_score: expected `target` to be class probabilities summing to 1 over axis 1 "
     r"\(within 0\.001\), got a sum of 1\.5\."),
    (lambda: F.soft_f1_score(torch.randn(4, 2), torch.tensor([[1.5, -0.5]] * 4),
                             task="multiclass", num_classes=2), ValueError,
     r"soft_f1_score: expected `target` to be probabilities in \[0, 1\], got a value 1\.5\."),
    (lambda: F.soft_recall(torch.randn(4), torch.tensor([0.2, 0.5, 1.2, 0.0]), task="binary"),
     ValueError, r"soft_recall: expected `target` to be probabilities in \[0, 1\], got a "
     r"value 1\.2"),
    (lambda: F.soft_recall(torch.randn(4), torch.tensor([0.2, float("nan"), 1.0, 0.0]),
                           task="binary"), ValueError,
     r"probabilities in \[0, 1\], got a value nan"),
    (lambda: F.soft_jaccard_index(torch.randn(4, 3), torch.full((4, 3), 1 / 3),
                                  task="multiclass", num_classes=3, ignore_index=255),
     ValueError, r"soft_jaccard_index: expected `ignore_index` to be None with class "
     r"probabilities as the target"),
    (lambda: F.soft_f1_score(torch.randn(4, 3), torch.zeros(4), task="multiclass",
                             num_classes=3), TypeError,
     r"soft_f1_score: expected `target` to be an integer tensor, got torch\.float32\."),
    (lambda: F.soft_top_k_accuracy(torch.randn(4, 3), torch.full((4, 3), 1 / 3),
                                   num_classes=3, k=2), TypeError,
     r"soft_top_k_accuracy: expected `target` to be class indices of shape \(N, \.\.\.\) "
     r"\(the top-k decision takes no class probabilities as the target\)"),
    (lambda: softmetrics.SoftDiceLoss(task="multiclass", num_classes=3, ignore_index=0)(
        torch.randn(4, 3), torch.full((4, 3), 1 / 3)), ValueError,
     r"SoftDiceLoss: expected `ignore_index` to be None"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_values_unchecked_without_validate_args():
    """Without validate_args nothing reads the target's values (no host synchronisation):
    a target off the simplex is counted as given."""
    x = torch.randn(4, 3)
    y = torch.full((4, 3), 0.5)
    value = F.soft_f1_score(x, y, task="multiclass", num_classes=3, validate_args=False)
    assert torch.isfinite(value)


def test_binary_soft_targets_keep_ignore_index():
    """Binary and multilabel soft targets keep `ignore_index`: entries equal to it leave
    every count, as for labels."""
    x = torch.randn(6, generator=torch.Generator().manual_seed(7))
    y = torch.tensor([0.2, 0.9, -1.0, 0.5, -1.0, 1.0])
    keep = y != -1
    a = F.soft_f1_score(x, y, task="binary", ignore_index=-1, temperature=0.5)
    b = F.soft_f1_score(x[keep], y[keep], task="binary", temperature=0.5)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("call", [
    lambda z, y: F.soft_jaccard_index(z, y, task="multiclass", num_classes=3,
                                      relaxation="lovasz"),
    lambda z, y: F.soft_exact_match(z, y, task="multiclass", num_classes=3),
    lambda z, y: F.soft_cohen_kappa(z, y, task="multiclass", num_classes=3),
    lambda z, y: F.soft_top_k_accuracy(z, y, num_classes=3, k=2),
], ids=["lovasz", "exact match", "kappa", "top-k"])
def test_functions_without_soft_targets_say_so(call):
    """The few functions that take labels only name that in their error, rather than
    asking for an integer tensor as if the probabilities were a mistake of dtype."""
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(4, 3, generator=g), torch.softmax(torch.randn(4, 3, generator=g), 1)
    with pytest.raises(TypeError, match="takes no class probabilities"):
        call(z, y)
