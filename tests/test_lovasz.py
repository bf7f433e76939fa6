"""The Lovász relaxation of the Jaccard index (`relaxation="lovasz"`, `LovaszLoss`).

References: a direct, loop-based transcription of Algorithm 1 of Berman, Rannen Triki and
Blaschko (CVPR 2018) with the library's averaging rules written out class by class;
segmentation_models_pytorch's `LovaszLoss` (values and gradients); scikit-learn at
temperature 0, where the extension equals the Jaccard index.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import softmetrics
from softmetrics import functional as F

from .test_classification import AVERAGES, _call, _reference_value, problems
from .test_cuda_sync import _FlagDataReads


def smp_lovasz():
    """smp's `lovasz` module, or a skip when smp is not installed."""
    peers = pytest.importorskip("benchmarks._peers")
    try:
        return peers.smp_losses().lovasz
    except ImportError as error:  # pragma: no cover - depends on the environment
        pytest.skip(str(error))


# --------------------------------------------------------------------------------------
# the reference: Algorithm 1, one class and one group at a time


def lovasz_gradient_loop(gt_sorted: list[int]) -> list[float]:
    """The paper's Algorithm 1: the Jaccard loss J_k of the first k sorted entries, and
    its differences g_1 = J_1, g_k = J_k - J_{k-1}."""
    positives = sum(gt_sorted)
    grad, previous, hits, misses = [], 0.0, 0, 0
    for label in gt_sorted:
        hits += label
        misses += 1 - label
        jaccard = 1.0 - (positives - hits) / (positives + misses)
        grad.append(jaccard - previous)
        previous = jaccard
    return grad


def lovasz_loss_loop(errors: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """<errors sorted decreasingly, Algorithm 1's gradient> for one column (1-D)."""
    if errors.numel() == 0:
        return errors.sum()
    ordered, perm = torch.sort(errors, descending=True)
    grad = lovasz_gradient_loop([int(v) for v in gt[perm].tolist()])
    return torch.dot(ordered, torch.tensor(grad, dtype=errors.dtype))


def reference(z: torch.Tensor, y: torch.Tensor, *, task: str, num_classes: int = 1,
              average: str = "macro", temperature: float = 1.0, threshold: float = 0.5,
              ignore_index: int | None = None, samplewise: bool = False,
              zero_division: float = 0.0, absent_classes: str | None = None,
              class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The Lovász Jaccard index written out: errors per entry, one loop per group and
    class, the averaging rules of the Classification page class by class."""
    absent = absent_classes or ("skip" if task == "multiclass" else "include")
    if task == "binary":
        z, y = z.unsqueeze(1), y.unsqueeze(1)
    c = z.shape[1]
    keep = torch.ones_like(y, dtype=torch.bool) if ignore_index is None else y != ignore_index
    if task == "multiclass":
        p = (torch.softmax(z / temperature, 1) if temperature else
             torch.nn.functional.one_hot(z.argmax(1), c).movedim(-1, 1).to(z.dtype))
        gt = torch.stack([y == k for k in range(c)], 1) & keep.unsqueeze(1)
        errors = torch.where(gt, 1 - p, p)
        keep = keep.unsqueeze(1).expand_as(gt)
    else:
        gt = (y == 1) & keep
        x = z - (np.log(threshold) - np.log1p(-threshold))
        if temperature:
            errors = torch.relu(1 - (2 * gt.to(z.dtype) - 1) * x / temperature)
        else:
            errors = ((x > 0) != gt).to(z.dtype)
    groups = [[i] for i in range(z.shape[0])] if samplewise else [list(range(z.shape[0]))]
    ignored_class = (ignore_index if task == "multiclass" and ignore_index is not None
                     and 0 <= ignore_index < c else None)
    out = []
    for members in groups:
        def column(k, members=members):
            e = torch.cat([errors[i, k][keep[i, k]] for i in members])
            t = torch.cat([gt[i, k][keep[i, k]] for i in members])
            return e, t

        if average == "micro" and task != "binary":
            classes = [k for k in range(c) if k != ignored_class]
            pairs = [column(k) for k in classes]
            e = torch.cat([a for a, _ in pairs]) if pairs else errors.new_zeros(0)
            t = torch.cat([b for _, b in pairs]) if pairs else gt.new_zeros(0)
            loss = lovasz_loss_loop(e, t)
            out.append(1 - loss if t.sum() > 0 else zero_division * (1 - loss))
            continue
        values, weights, supports = [], [], []
        for k in range(c):
            e, t = column(k)
            loss = lovasz_loss_loop(e, t)
            present = bool(t.sum() > 0)
            values.append(1 - loss if present else zero_division * (1 - loss))
            supports.append(float(t.sum()))
            if k == ignored_class:
                weight = loss * 0
            elif present or absent == "include":
                weight = loss * 0 + 1
            else:  # absent and skipped: weighted by "is it predicted?"
                weight = loss.clamp(0, 1) if not temperature else loss / (loss + temperature)
            if class_weights is not None:
                weight = weight * class_weights[k]
            weights.append(weight)
        values_t, weights_t = torch.stack(values), torch.stack(weights)
        if task == "binary" or average == "none":
            out.append(values_t if average == "none" and task != "binary" else values_t[0])
        elif average == "weighted":  # no support at all: the plain mean (scikit-learn)
            s = torch.tensor(supports, dtype=z.dtype)
            counted = [v for k, v in enumerate(values) if k != ignored_class]
            out.append((values_t * s).sum() / s.sum() if s.sum() > 0
                       else torch.stack(counted).mean() if counted
                       else values_t.sum() * 0 + zero_division)
        else:
            total = weights_t.sum()
            out.append((values_t * weights_t).sum() / total if total > 0
                       else values_t.sum() * 0 + zero_division)
    result = torch.stack(out)
    return result if samplewise else result[0]


# --------------------------------------------------------------------------------------
# against the loop reference: values and gradients


@st.composite
def lovasz_cases(draw):
    """Continuous logits (no ties), targets with absent classes, ignored entries, options."""
    task = draw(st.sampled_from(["binary", "multiclass", "multilabel"]))
    c = 1 if task == "binary" else draw(st.integers(2, 5))
    n = draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (3,), (2, 3)]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    shape = (n, *spatial) if task == "binary" else (n, c, *spatial)
    z = (torch.randn(shape, generator=g, dtype=torch.float64) * 2)
    if task == "multiclass":
        y = torch.randint(0, max(1, c - 1), (n, *spatial), generator=g)  # class c-1 absent
    else:
        y = (torch.rand(shape, generator=g) < draw(st.sampled_from([0.1, 0.5]))).long()
    options = dict(task=task, average=draw(st.sampled_from(AVERAGES)),
                   temperature=draw(st.sampled_from([1.0, 0.5, 0])),
                   samplewise=draw(st.booleans()),
                   zero_division=draw(st.sampled_from([0.0, 1.0])))
    if task != "binary":
        options.update(num_classes=c,
                       absent_classes=draw(st.sampled_from([None, "skip", "include"])))
    if draw(st.booleans()):
        ignore = 255 if task != "multiclass" or draw(st.booleans()) else 0
        options["ignore_index"] = ignore
        if ignore == 255:
            y = torch.where(torch.rand(y.shape, generator=g) < 0.25, 255, y)
    if task != "binary" and options["average"] == "macro" and draw(st.booleans()):
        options["class_weights"] = torch.rand(c, generator=g, dtype=torch.float64) + 0.1
    return z, y, options


def _ours(z, y, options, **extra):
    kw = {k: v for k, v in options.items() if k != "samplewise"}
    kw["multidim_average"] = "samplewise" if options["samplewise"] else "global"
    return F.soft_jaccard_index(z, y, relaxation="lovasz", **kw, **extra)


@given(case=lovasz_cases())
def test_values_and_gradients_equal_the_loop_reference(case):
    z, y, options = case
    a = z.clone().requires_grad_()
    b = z.clone().requires_grad_()
    got = _ours(a, y, options)
    want = reference(b, y, **options)
    torch.testing.assert_close(got, want.to(got.dtype), rtol=1e-10, atol=1e-12)
    if options["temperature"]:
        (ga,) = torch.autograd.grad(got.sum(), a)
        (gb,) = torch.autograd.grad(want.sum(), b, allow_unused=True)
        gb = torch.zeros_like(z) if gb is None else gb
        torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_every_option_equals_the_loop_reference(task):
    """The hypothesis test above draws a few dozen cases; this walks every combination of
    average, samplewise, absent classes, ignore_index (inside and outside the classes),
    zero_division and an exact or soft temperature on one fixed problem, values and
    gradients, so that none is left to chance (a pooled column that kept an ignored class
    passed the drawn cases)."""
    g = torch.Generator().manual_seed(5)
    c = 1 if task == "binary" else 3
    shape = (2, 3) if task == "binary" else (2, c, 3)
    z = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    if task == "multiclass":
        base = torch.randint(0, c, (2, 3), generator=g)
    else:
        base = (torch.rand(shape, generator=g) < 0.5).long()
    ignores = [None, 255] + ([0] if task == "multiclass" else [])
    absents = [None] if task == "binary" else [None, "skip", "include"]
    for average, samplewise, absent, ignore, zd, temperature in itertools.product(
            AVERAGES, [False, True], absents, ignores, [0.0, 1.0], [0, 0.5]):
        y = base if ignore != 255 else base.masked_fill(torch.rand(base.shape, generator=g)
                                                        < 0.3, 255)
        options = dict(task=task, average=average, temperature=temperature,
                       samplewise=samplewise, zero_division=zd)
        if task != "binary":
            options.update(num_classes=c, absent_classes=absent)
        if ignore is not None:
            options["ignore_index"] = ignore
        a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
        got, want = _ours(a, y, options), reference(b, y, **options)
        torch.testing.assert_close(got, want.to(got.dtype), rtol=1e-10, atol=1e-12,
                                   msg=lambda m, o=options: f"{o}: {m}")
        if temperature:
            (ga,) = torch.autograd.grad(got.sum(), a)
            (gb,) = torch.autograd.grad(want.sum(), b, allow_unused=True)
            gb = torch.zeros_like(z) if gb is None else gb
            torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)


def test_a_hand_derived_case():
    """Three pixels of one class, errors 0.9 (positive), 0.5 (negative), 0.2 (positive):
    J = 1 - 1/2, 1 - 1/3, 1 - 0/3 -> g = (1/2, 1/6, 1/3), loss 0.45 + 1/12 + 1/15."""
    errors = torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64)
    gt = torch.tensor([1, 0, 1])
    assert lovasz_gradient_loop([1, 0, 1]) == pytest.approx([1 / 2, 1 / 6, 1 / 3])
    want = 0.9 / 2 + 0.5 / 6 + 0.2 / 3
    assert float(lovasz_loss_loop(errors, gt)) == pytest.approx(want)
    # binary logits whose hinge errors are those: 1 - z for positives, 1 + z for negatives
    z = torch.tensor([0.1, -0.5, 0.8], dtype=torch.float64)
    value = F.soft_jaccard_index(z, gt, task="binary", relaxation="lovasz")
    assert float(value) == pytest.approx(1 - want)


# --------------------------------------------------------------------------------------
# exact on hard predictions


@given(prob=problems(), average=st.sampled_from(AVERAGES), samplewise=st.booleans())
def test_hard_equals_sklearn(prob, average, samplewise, device):
    """At temperature 0 the errors are 0/1 and the extension is the Jaccard index."""
    got = _call(F.soft_jaccard_index, prob, device, temperature=0, average=average,
                relaxation="lovasz", multidim_average="samplewise" if samplewise else "global")
    want = _reference_value("jaccard", prob, average, samplewise)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)
    same = _call(F.soft_jaccard_index, prob, device, temperature=0, average=average,
                 multidim_average="samplewise" if samplewise else "global")
    torch.testing.assert_close(got, same, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_hard_float32_is_the_exact_index_to_the_last_bit(device, average):
    """The exact decision's Jaccard differences are summed in float64: over 65536 entries
    per class a float32 sum of the telescoping differences is a few units in the last
    place off the exact index, and the result would differ from the counts' index."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, 128, 128, generator=g).to(device)
    mask = torch.randint(0, 5, (4, 128, 128), generator=g).to(device)
    kw = dict(task="multiclass", num_classes=5, temperature=0, average=average)
    got = F.soft_jaccard_index(logits, mask, relaxation="lovasz", **kw)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, F.soft_jaccard_index(logits, mask, **kw), rtol=0, atol=0)


def test_metric_of_the_module_is_the_exact_index():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 6, generator=g)
    mask = torch.randint(0, 4, (2, 6, 6), generator=g)
    mask[0, :2] = 255
    loss_fn = softmetrics.LovaszLoss(task="multiclass", num_classes=4, ignore_index=255)
    exact = softmetrics.SoftJaccardLoss(task="multiclass", num_classes=4, ignore_index=255)
    torch.testing.assert_close(loss_fn.metric(logits, mask), exact.metric(logits, mask))
    one_hot = torch.nn.functional.one_hot(logits.argmax(1), 4).movedim(-1, 1).double() * 50
    # saturated logits: the soft errors are (nearly) the hard ones
    torch.testing.assert_close(1 - loss_fn(one_hot, mask),
                               exact.metric(logits, mask).double(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("task", "average", "multidim_average"), [
    ("binary", "macro", "global"), ("binary", "macro", "samplewise"),
    ("multiclass", "none", "global"), ("multiclass", "macro", "samplewise"),
    ("multiclass", "micro", "global"), ("multilabel", "none", "global"),
    ("multilabel", "weighted", "samplewise")])
def test_the_exact_index_is_the_ratio_of_counts_to_the_last_digit(task, average,
                                                                  multidim_average, dtype):
    """At temperature 0 the Lovász relaxation returns the Jaccard index TP / (TP + FP +
    FN) itself, bit for bit the softmax relaxation's (scikit-learn's `jaccard_score`): a
    sum of rounded steps along the sorted errors (J_k - J_{k-1}) telescopes only in
    exact arithmetic (a true 0 came back as 1.1e-16, 1/7 as 0.1428571428571428)."""
    g = torch.Generator().manual_seed(3)
    shape = {"binary": (40, 5), "multiclass": (40, 3, 5), "multilabel": (40, 3, 5)}[task]
    logits = torch.randn(shape, generator=g, dtype=dtype)
    target = (torch.randint(0, 3, (40, 5), generator=g) if task == "multiclass"
              else torch.randint(0, 2, shape, generator=g))
    kw = dict(task=task, num_classes=None if task == "binary" else 3, average=average,
              multidim_average=multidim_average, temperature=0)
    lovasz = F.soft_jaccard_index(logits, target, relaxation="lovasz", **kw)
    assert torch.equal(lovasz, F.soft_jaccard_index(logits, target, **kw))
    y = torch.tensor([0, 1, 0, 0, 1])
    wrong = (1 - y).to(dtype) * 4 - 2
    assert float(softmetrics.LovaszLoss(task="binary").metric(wrong, y)) == 0.0


# --------------------------------------------------------------------------------------
# against segmentation_models_pytorch


def _segmentation(seed: int, n: int = 3, c: int = 4, size: int = 8, every_class=True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, size, size, generator=g) * 2
    mask = torch.randint(0, c, (n, size, size), generator=g)
    if every_class:  # each image holds each class: smp's "present" is then every class
        mask[:, 0, :c] = torch.arange(c)
    mask[:, -2:, :3] = 255
    return logits, mask


def _values_and_grads(fn_a, fn_b, logits, target):
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    va, vb = fn_a(a, target), fn_b(b, target)
    va.backward()
    vb.backward()
    return (va, vb), (a.grad, b.grad)


@pytest.mark.parametrize("per_image", [False, True])
def test_multiclass_equals_smp(per_image):
    lovasz = smp_lovasz()
    logits, mask = _segmentation(0)
    theirs = lovasz.LovaszLoss("multiclass", per_image=per_image, ignore_index=255)
    ours = softmetrics.LovaszLoss(task="multiclass", num_classes=4, ignore_index=255,
                                  multidim_average="samplewise" if per_image else "global")
    (va, vb), (ga, gb) = _values_and_grads(ours, theirs, logits, mask)
    torch.testing.assert_close(va, vb, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ga, gb, atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize("per_image", [False, True])
def test_multiclass_all_classes_equals_smp(per_image):
    """smp's `classes="all"` scores an absent class by its largest error: our
    `absent_classes="include"` with `zero_division=1` (Jaccard 1 for nothing predicted)."""
    lovasz = smp_lovasz()
    logits, mask = _segmentation(1, c=5, every_class=False)
    mask = torch.where(mask == 4, 0, mask)  # class 4 absent

    def theirs(x, y):
        return lovasz._lovasz_softmax(x.softmax(1), y, classes="all", per_image=per_image,
                                      ignore=255)

    ours = softmetrics.LovaszLoss(task="multiclass", num_classes=5, ignore_index=255,
                                  absent_classes="include", zero_division=1.0,
                                  multidim_average="samplewise" if per_image else "global")
    (va, vb), (ga, gb) = _values_and_grads(ours, theirs, logits, mask)
    torch.testing.assert_close(va, vb, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ga, gb, atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [None, 255])
def test_binary_hinge_equals_smp(per_image, ignore):
    """smp's binary mode is the Lovász hinge on the logits (it ignores `from_logits`); an
    empty mask scores its largest error there, our `zero_division=1`."""
    lovasz = smp_lovasz()
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 8, 8, generator=g) * 2
    mask = (torch.rand(3, 8, 8, generator=g) < 0.3).long()
    mask[1] = 0  # an image with no foreground
    if ignore is not None:
        mask[:, :2, :2] = ignore
    theirs = lovasz.LovaszLoss("binary", per_image=per_image, ignore_index=ignore)
    ours = softmetrics.LovaszLoss(task="binary", ignore_index=ignore, zero_division=1.0,
                                  multidim_average="samplewise" if per_image else "global")
    (va, vb), (ga, gb) = _values_and_grads(ours, theirs, logits, mask)
    torch.testing.assert_close(va, vb, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ga, gb, atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize("per_image", [False, True])
def test_multilabel_micro_equals_smp(per_image):
    """smp's multilabel mode runs one hinge over every (label, pixel) pair: our
    `average="micro"`."""
    lovasz = smp_lovasz()
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 6, 6, generator=g) * 2
    labels = (torch.rand(2, 3, 6, 6, generator=g) < 0.4).long()
    theirs = lovasz.LovaszLoss("multilabel", per_image=per_image)
    ours = softmetrics.LovaszLoss(task="multilabel", num_classes=3, average="micro",
                                  zero_division=1.0,
                                  multidim_average="samplewise" if per_image else "global")
    (va, vb), (ga, gb) = _values_and_grads(ours, theirs, logits, labels)
    torch.testing.assert_close(va, vb, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ga, gb, atol=1e-7, rtol=1e-4)


# --------------------------------------------------------------------------------------
# properties


@given(case=lovasz_cases())
def test_range_and_finite_gradients(case):
    """Softmax errors lie in [0, 1], so the Lovász-softmax index does too; hinge errors
    are unbounded above, so the hinge index is at most 1."""
    z, y, options = case
    options = {k: v for k, v in options.items() if k != "class_weights"}
    x = (z * 1e3).float().requires_grad_()  # far into saturation
    value = _ours(x, y, options)
    assert torch.isfinite(value).all()
    assert (value <= 1 + 1e-6).all()
    if options["task"] == "multiclass":
        assert (value >= -1e-6).all()
    if options["temperature"]:
        (grad,) = torch.autograd.grad(value.sum(), x)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("samplewise", [False, True])
def test_gradcheck_and_gradgradcheck(task, samplewise):
    """The extension is piecewise linear in the errors: away from ties (random logits)
    gradcheck holds, and its second derivative in the errors is 0. gradgradcheck then
    checks the softmax's curvature (multiclass) or zeros (the hinge is linear too)."""
    g = torch.Generator().manual_seed(4)
    if task == "binary":
        z = torch.randn(2, 5, generator=g, dtype=torch.float64)
        y = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 0, 1, 0]])
        kw = {}
    elif task == "multiclass":
        z = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
        y = torch.tensor([[0, 1, 1, 2, 0], [2, 2, 0, 1, 255]])
        kw = dict(num_classes=3, ignore_index=255)
    else:
        z = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
        y = (torch.rand(2, 3, 4, generator=g) < 0.5).long()
        kw = dict(num_classes=3)
    z.requires_grad_()

    def fn(x):
        return F.soft_jaccard_index(x, y, task=task, relaxation="lovasz", temperature=0.7,
                                    multidim_average="samplewise" if samplewise else "global",
                                    **kw)

    assert torch.autograd.gradcheck(fn, (z,))
    assert torch.autograd.gradgradcheck(fn, (z,))
    if task != "multiclass":
        (grad,) = torch.autograd.grad(fn(z).sum(), z, create_graph=True)
        (second,) = torch.autograd.grad(grad.sum(), z, allow_unused=True,
                                        materialize_grads=True)
        assert (second == 0).all()


def test_ignore_index_255_segmentation():
    """(N, C, H, W) logits with void pixels: the value and the gradient ignore them, and
    the void pixels get no gradient."""
    logits, mask = _segmentation(5, every_class=False)
    x = logits.clone().requires_grad_()
    value = F.soft_jaccard_index(x, mask, task="multiclass", num_classes=4, ignore_index=255,
                                 relaxation="lovasz")
    value.backward()
    void = (mask == 255).unsqueeze(1).expand_as(x)
    assert (x.grad[void] == 0).all() and (x.grad[~void] != 0).any()
    other = logits.clone()
    other[void] = torch.randn(int(void.sum()))  # what a void pixel holds does not matter
    torch.testing.assert_close(
        F.soft_jaccard_index(other, mask, task="multiclass", num_classes=4, ignore_index=255,
                             relaxation="lovasz"), value.detach())


def test_empty_and_all_ignored_batches():
    x = torch.randn(0, 3, 4, requires_grad=True)
    y = torch.zeros(0, 4, dtype=torch.long)
    value = F.soft_jaccard_index(x, y, task="multiclass", num_classes=3, relaxation="lovasz",
                                 zero_division=1.0)
    assert value.item() == 1.0
    x = torch.randn(2, 3, 4, requires_grad=True)
    y = torch.full((2, 4), 255)
    loss = softmetrics.LovaszLoss(task="multiclass", num_classes=3, ignore_index=255)(x, y)
    loss.backward()
    assert loss.item() == 1.0 and (x.grad == 0).all()


def test_module_equals_function_and_options():
    logits, mask = _segmentation(6)
    kw = dict(task="multiclass", num_classes=4, ignore_index=255, average="weighted")
    loss = softmetrics.LovaszLoss(**kw)(logits, mask)
    alias = softmetrics.SoftJaccardLoss(relaxation="lovasz", **kw)(logits, mask)
    value = F.soft_jaccard_index(logits, mask, relaxation="lovasz", **kw)
    torch.testing.assert_close(loss, 1 - value)
    torch.testing.assert_close(alias, loss)
    focal = softmetrics.LovaszLoss(gamma=2.0, average="none", **{
        k: v for k, v in kw.items() if k != "average"})(logits, mask)
    per_class = F.soft_jaccard_index(logits, mask, relaxation="lovasz", average="none",
                                     **{k: v for k, v in kw.items() if k != "average"})
    torch.testing.assert_close(focal, (1 - per_class) ** 2)
    per_sample = softmetrics.LovaszLoss(task="binary", multidim_average="samplewise",
                                        reduction="none")(logits[:, 0], (mask == 1).long())
    assert per_sample.shape == (3,)


@pytest.mark.parametrize("make, message", [
    (lambda: softmetrics.LovaszLoss(task="multiclass", num_classes=3, momentum=0.9),
     r"LovaszLoss: expected `momentum` to be None with relaxation='lovasz'"),
    (lambda: softmetrics.LovaszLoss(task="multiclass", num_classes=3, sync_dist=True),
     r"LovaszLoss: expected `sync_dist` to be False with relaxation='lovasz'"),
    (lambda: softmetrics.LovaszLoss(task="multiclass", num_classes=3,
                                    class_weights="generalized"),
     r"LovaszLoss: expected `class_weights` to be a \(C,\) tensor with relaxation='lovasz'"),
    (lambda: softmetrics.SoftJaccardLoss(task="multiclass", num_classes=3, average="micro",
                                         class_weights=torch.ones(3), relaxation="lovasz"),
     r"SoftJaccardLoss: expected `average` to be 'macro' with class_weights"),
    (lambda: F.soft_jaccard_index(torch.randn(4, 3), torch.zeros(4, dtype=torch.long),
                                  task="multiclass", num_classes=3, relaxation="lovaz"),
     r"soft_jaccard_index: expected `relaxation` to be one of 'softmax', 'lovasz', got "
     r"'lovaz'"),
])
def test_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_lovasz_loss_fixes_its_relaxation():
    with pytest.raises(TypeError, match=r"LovaszLoss: expected `relaxation` to be unset"):
        softmetrics.LovaszLoss(task="binary", relaxation="softmax")


def test_reads_no_tensor_data_on_the_host():
    """No `.item()`, boolean mask or `nonzero` in a training step: on CUDA each would wait
    for the device (the CUDA check is in test_cuda_sync)."""
    logits, mask = _segmentation(7)
    x = logits.requires_grad_()
    for kw in (dict(task="multiclass", num_classes=4, ignore_index=255),
               dict(task="multiclass", num_classes=4, ignore_index=255, average="micro",
                    multidim_average="samplewise"),
               dict(task="multilabel", num_classes=4)):
        target = mask if kw["task"] == "multiclass" else (x.detach() > 0).long()
        loss_fn = softmetrics.LovaszLoss(validate_args=False, **kw)
        with _FlagDataReads():
            loss_fn(x, target).backward()


def test_deterministic_cumsum():
    """The cumulative sums run over integers: a floating-point cumsum has no deterministic
    CUDA kernel (test_deterministic flags one on any device)."""
    from .test_deterministic import _FlagNondeterministicOnCuda

    logits, mask = _segmentation(8)
    x = logits.requires_grad_()
    with _FlagNondeterministicOnCuda():
        softmetrics.LovaszLoss(task="multiclass", num_classes=4, ignore_index=255)(
            x, mask).backward()
        softmetrics.LovaszLoss(task="binary")(x[:, 0], (mask == 1).long()).backward()


def test_half_precision_and_tensor_temperature():
    logits, mask = _segmentation(9)
    kw = dict(task="multiclass", num_classes=4, ignore_index=255, relaxation="lovasz")
    half = F.soft_jaccard_index(logits.half(), mask, **kw)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, F.soft_jaccard_index(logits.half().float(), mask, **kw))
    t = torch.tensor(0.5, requires_grad=True)
    F.soft_jaccard_index(logits, mask, temperature=t, **kw).backward()
    assert torch.isfinite(t.grad)
    torch.testing.assert_close(F.soft_jaccard_index(logits, mask, temperature=t.detach(), **kw),
                               F.soft_jaccard_index(logits, mask, temperature=0.5, **kw))


def test_nan_reaches_the_result_without_validation():
    logits, mask = _segmentation(10)
    logits[1, 2, 3, 3] = float("nan")
    kw = dict(task="multiclass", num_classes=4, ignore_index=255, relaxation="lovasz",
              validate_args=False, multidim_average="samplewise")
    for temperature in (0, 1.0):
        value = F.soft_jaccard_index(logits, mask, temperature=temperature, **kw)
        assert torch.isnan(value[1]) and torch.isfinite(value[[0, 2]]).all()
