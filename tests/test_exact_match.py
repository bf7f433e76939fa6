"""Exact match (subset accuracy): against scikit-learn, torchmetrics and an explicit loop at
temperature 0; the soft value converges to it, is finite, and passes gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from sklearn.metrics import accuracy_score
from torchmetrics.functional.classification import multiclass_exact_match, multilabel_exact_match

import softmetrics
from softmetrics import functional as F

from .test_robustness import fuzz_case


def _loop_reference(x, y, *, task, threshold=0.5, ignore_index=None, samplewise=False):
    """Per unit, with Python loops: multilabel units are (sample, position), multiclass
    units are samples; ignored entries always match."""
    values = []
    for n in range(x.shape[0]):
        if task == "multiclass":
            pred = x[n].argmax(0).flatten().tolist()
            true = y[n].flatten().tolist()
            ok = all(t == ignore_index or p == t for p, t in zip(pred, true, strict=True))
            values.append([float(ok)])
        else:
            prob = torch.sigmoid(x[n].double()).reshape(x.shape[1], -1)
            true = y[n].reshape(x.shape[1], -1)
            row = []
            for pos in range(prob.shape[1]):
                ok = all(int(t) == ignore_index or int(p > threshold) == int(t)
                         for p, t in zip(prob[:, pos].tolist(), true[:, pos].tolist(),
                                         strict=True))
                row.append(float(ok))
            values.append(row)
    if samplewise:
        return torch.tensor([sum(v) / len(v) for v in values], dtype=torch.float64)
    flat = [u for v in values for u in v]
    return torch.tensor(sum(flat) / len(flat), dtype=torch.float64)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 12), c=st.integers(1, 5),
       threshold=st.sampled_from([0.5, 0.2, 0.8]))
def test_multilabel_equals_sklearn_accuracy_score(seed, n, c, threshold):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (n, c), generator=g)
    # scikit-learn: subset accuracy of the indicator arrays
    pred = (torch.sigmoid(x) > threshold).long()
    expected = accuracy_score(y.numpy(), pred.numpy())
    value = F.soft_exact_match(x, y, task="multilabel", num_classes=c, threshold=threshold,
                               temperature=0)
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 6), c=st.integers(2, 4),
       extra=st.sampled_from([(), (3,), (2, 2)]),
       ignore=st.sampled_from([None, -1]),
       samplewise=st.booleans())
def test_multilabel_equals_torchmetrics_and_loop(seed, n, c, extra, ignore, samplewise):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *extra, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (n, c, *extra), generator=g)
    if ignore is not None:
        y = torch.where(torch.rand(y.shape, generator=g) < 0.3, ignore, y)
    mode = "samplewise" if samplewise else "global"
    value = F.soft_exact_match(x, y, task="multilabel", num_classes=c, ignore_index=ignore,
                               multidim_average=mode, temperature=0)
    if extra or not samplewise:  # torchmetrics' samplewise wants extra axes
        tm = multilabel_exact_match(torch.sigmoid(x), y, num_labels=c, ignore_index=ignore,
                                    multidim_average=mode)
        torch.testing.assert_close(value, tm.double())
    loop = _loop_reference(x, y, task="multilabel", ignore_index=ignore, samplewise=samplewise)
    torch.testing.assert_close(value, loop)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 6), c=st.integers(2, 4),
       extra=st.sampled_from([(), (3,), (2, 2)]),
       ignore=st.sampled_from([None, -1, 255, 0]),
       samplewise=st.booleans())
def test_multiclass_equals_torchmetrics_and_loop(seed, n, c, extra, ignore, samplewise):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *extra, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n, *extra), generator=g)
    if ignore is not None:
        y = torch.where(torch.rand(y.shape, generator=g) < 0.3, ignore, y)
    mode = "samplewise" if samplewise else "global"
    value = F.soft_exact_match(x, y, task="multiclass", num_classes=c, ignore_index=ignore,
                               multidim_average=mode, temperature=0)
    if extra:  # torchmetrics' exact match wants extra axes
        tm = multiclass_exact_match(x, y, num_classes=c, ignore_index=ignore,
                                    multidim_average=mode)
        torch.testing.assert_close(value, tm.double())
    loop = _loop_reference(x, y, task="multiclass", ignore_index=ignore, samplewise=samplewise)
    torch.testing.assert_close(value, loop)


def test_multiclass_without_extra_axes_is_accuracy():
    x, y = torch.randn(20, 4, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 4
    for t in (0, 0.5):
        torch.testing.assert_close(
            F.soft_exact_match(x, y, task="multiclass", num_classes=4, temperature=t),
            F.soft_accuracy(x, y, task="multiclass", num_classes=4, temperature=t))


@pytest.mark.parametrize("t", [0.7, 1.0, "tensor"])
def test_soft_value_is_the_product_of_per_label_probabilities(t):
    """The closed form: the mean over samples of prod_c (sigma(z/t) if y = 1 else
    1 - sigma(z/t)); at the temperature 1 (no scaling pass) and for a tensor
    temperature, whose gradient is the closed form's."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(7, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (7, 4), generator=g)
    if t == "tensor":
        t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        p = torch.sigmoid(x / t)
        expected = torch.where(y == 1, p, 1 - p).prod(1).mean()
        value = F.soft_exact_match(x, y, task="multilabel", num_classes=4, temperature=t)
        torch.testing.assert_close(torch.autograd.grad(value, t),
                                   torch.autograd.grad(expected, t))
        t = 0.7
    p = torch.sigmoid(x / t)
    expected = torch.where(y == 1, p, 1 - p).prod(1).mean()
    value = F.soft_exact_match(x, y, task="multilabel", num_classes=4, temperature=t)
    torch.testing.assert_close(value, expected)
    # a threshold other than 1/2 shifts the logits by its logit
    p = torch.sigmoid((x - math.log(0.3 / 0.7)) / t)
    expected = torch.where(y == 1, p, 1 - p).prod(1).mean()
    value = F.soft_exact_match(x, y, task="multilabel", num_classes=4, temperature=t,
                               threshold=0.3)
    torch.testing.assert_close(value, expected)
    # multiclass: the probability of the true class at every position of a sample
    xm = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    ym = torch.randint(0, 4, (3, 5), generator=g)
    q = torch.softmax(xm / t, 1).gather(1, ym.unsqueeze(1)).squeeze(1)
    value = F.soft_exact_match(xm, ym, task="multiclass", num_classes=4, temperature=t,
                               multidim_average="samplewise")
    torch.testing.assert_close(value, q.prod(1))


@pytest.mark.parametrize("samplewise", [False, True])
def test_soft_multilabel_value_and_gradient_hold_at_large_logits(samplewise):
    """The log-probability of being right is minus the elementwise binary cross-entropy of
    the logits: in float32, the value and gradient equal the float64 log-sigmoid form's
    to float32 rounding, also where the logits reach 80 in magnitude (a label right with
    a probability within 1e-35 of 1, or wrong with one of 1e-35), with ignored entries."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64) * 4
    x[:4] = torch.tensor([80.0, -80.0, 40.0, -40.0, 17.0], dtype=torch.float64)
    y = torch.randint(0, 2, (16, 5), generator=g)
    y[0], y[1] = torch.tensor([1, 0, 1, 0, 1]), torch.tensor([0, 1, 0, 1, 0])
    y[5, 2] = -1
    mode = "samplewise" if samplewise else "global"
    kw = dict(task="multilabel", num_classes=5, ignore_index=-1, multidim_average=mode,
              temperature=0.8, threshold=0.4)
    x32 = x.float().requires_grad_()
    value = F.soft_exact_match(x32, y, **kw)
    (grad,) = torch.autograd.grad(value.sum(), x32)
    ref = x.clone().requires_grad_()
    keep = (y != -1).double()
    sign = torch.where(y == 1, 1.0, -1.0).double()
    log_right = torch.nn.functional.logsigmoid(sign * (ref - math.log(0.4 / 0.6)) / 0.8)
    unit = (log_right * keep).sum(1).exp()
    expected = unit if samplewise else unit.mean()
    (expected_grad,) = torch.autograd.grad(expected.sum(), ref)
    torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-5, atol=1e-7)


# Operations (views left out) of one forward + backward step of the multilabel loss on
# (64, 10) logits at threshold 1/2 and temperature 1, torch 2.13: no pass over the logits
# for a shift of 0 or a scale of 1 (19 when both were made), and the log-probability of
# being right one fused binary cross-entropy each way (17 when it was a sign, a product
# and a log-sigmoid).
SMALL_STEP_OPERATIONS = 16


def test_a_step_makes_no_pass_for_a_unit_scale_or_a_zero_shift():
    from .allocations import Operations

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=g).requires_grad_()
    y = torch.randint(0, 2, (64, 10), generator=g)
    loss_fn = softmetrics.SoftExactMatchLoss(task="multilabel", num_classes=10,
                                             validate_args=False)
    with Operations() as ops:
        loss_fn(x, y).backward()
    assert len(ops.names) <= SMALL_STEP_OPERATIONS
    assert "div" not in ops.names[:ops.names.index("binary_cross_entropy_with_logits")]


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_soft_converges_to_exact(task):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, 5, 3, generator=g, dtype=torch.float64)
    y = (torch.randint(0, 2, (40, 5, 3), generator=g) if task == "multilabel"
         else torch.randint(0, 5, (40, 3), generator=g))
    options = dict(task=task, num_classes=5, ignore_index=-1)
    y = torch.where(torch.rand(y.shape, generator=g) < 0.1, -1, y)
    exact = F.soft_exact_match(x, y, temperature=0, **options)
    gaps = [(F.soft_exact_match(x, y, temperature=t, **options) - exact).abs().item()
            for t in (1.0, 0.1, 0.01, 1e-3)]
    assert gaps[-1] < 1e-6
    assert gaps[-1] <= gaps[-2] < gaps[0]


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
@pytest.mark.parametrize("mode", ["global", "samplewise"])
def test_gradcheck(task, mode):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = (torch.randint(0, 2, (4, 3, 2), generator=g) if task == "multilabel"
         else torch.randint(0, 3, (4, 2), generator=g))
    y[0, 0] = 7

    def fn(t):
        return F.soft_exact_match(t, y, task=task, num_classes=3, temperature=0.8,
                                  ignore_index=7, multidim_average=mode)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_extreme_logits_give_finite_values_and_gradients(task, dtype):
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(16, 6, 4, generator=g) * 1e4).to(dtype).requires_grad_()
    y = (torch.randint(0, 2, (16, 6, 4), generator=g) if task == "multilabel"
         else torch.randint(0, 6, (16, 4), generator=g))
    for t in (1e-3, 1.0):
        value = F.soft_exact_match(x, y, task=task, num_classes=6, temperature=t)
        assert value.dtype == torch.float32 and torch.isfinite(value)
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("multidim_average", ["global", "samplewise"])
def test_the_loss_of_an_empty_batch_backpropagates(multidim_average):
    """No entries: the loss is `1 - zero_division` (global; samplewise the mean of no
    values, 0) with a zero gradient, as every classification loss's, so a training loop
    that meets an empty batch does not stop at `backward`."""
    x = torch.zeros(0, 3, requires_grad=True)
    loss = softmetrics.SoftExactMatchLoss(task="multilabel", num_classes=3,
                                          multidim_average=multidim_average)(
        x, torch.zeros(0, 3, dtype=torch.long))
    loss.backward()
    assert float(loss.detach()) == (1.0 if multidim_average == "global" else 0.0)
    assert x.grad is not None and x.grad.shape == (0, 3)


def test_empty_batch_and_nan():
    x, y = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)
    for t in (0, 1.0):
        assert F.soft_exact_match(x, y, task="multilabel", num_classes=3, temperature=t,
                                  zero_division=1.0).item() == 1.0
        assert F.soft_exact_match(x, y, task="multilabel", num_classes=3, temperature=t,
                                  multidim_average="samplewise").shape == (0,)
    x = torch.randn(3, 3)
    x[1, 2] = torch.nan
    y = torch.randint(0, 2, (3, 3))
    with pytest.raises(ValueError, match="soft_exact_match: expected `input`"):
        F.soft_exact_match(x, y, task="multilabel", num_classes=3)
    for t in (0, 1.0):
        value = F.soft_exact_match(x, y, task="multilabel", num_classes=3, temperature=t,
                                   validate_args=False, multidim_average="samplewise")
        assert value[1].isnan() and not value[[0, 2]].isnan().any()
    # multiclass with extra axes: one NaN logit at one position of a sample
    xm = torch.randn(3, 4, 5)
    xm[1, 2, 3] = torch.nan
    ym = torch.randint(0, 4, (3, 5))
    for t in (0, 1.0):
        value = F.soft_exact_match(xm, ym, task="multiclass", num_classes=4, temperature=t,
                                   validate_args=False, multidim_average="samplewise")
        assert value[1].isnan() and not value[[0, 2]].isnan().any()


def test_errors():
    x, y = torch.randn(4, 3), torch.randint(0, 2, (4, 3))
    with pytest.raises(ValueError, match="soft_exact_match: expected `task`"):
        F.soft_exact_match(x[:, 0], y[:, 0], task="binary")
    with pytest.raises(ValueError, match="soft_exact_match: expected `temperature`"):
        F.soft_exact_match(x, y, task="multilabel", num_classes=3, temperature=-1.0)
    with pytest.raises(ValueError, match="SoftExactMatchLoss: expected `reduction`"):
        softmetrics.SoftExactMatchLoss(task="multilabel", num_classes=3, reduction="sum")
    with pytest.raises(TypeError, match="SoftExactMatchLoss"):
        softmetrics.SoftExactMatchLoss(task="multilabel", num_classes=3, average="macro")


def test_module_equals_function():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 3, 4, generator=g)
    y = torch.randint(0, 3, (5, 4), generator=g)
    options = dict(task="multiclass", num_classes=3, multidim_average="samplewise")
    soft = F.soft_exact_match(x, y, temperature=0.5, **options)
    loss_fn = softmetrics.SoftExactMatchLoss(temperature=0.5, reduction="none", **options)
    torch.testing.assert_close(loss_fn(x, y), 1 - soft)
    summed = softmetrics.SoftExactMatchLoss(temperature=0.5, reduction="sum", **options)
    torch.testing.assert_close(summed(x, y), (1 - soft).sum())
    torch.testing.assert_close(loss_fn.metric(x, y),
                               F.soft_exact_match(x, y, temperature=0, **options))
    assert "temperature=0.5" in repr(loss_fn)


@settings(max_examples=150, deadline=None)
@given(case=fuzz_case())
def test_fuzz(case):
    """The classification fuzz cases: only documented errors; accepted calls give finite
    values in [0, 1] and finite gradients."""
    x, y, options = case
    options = {k: v for k, v in options.items() if k != "average"}
    if x.is_floating_point():
        x.requires_grad_()
    try:
        value = F.soft_exact_match(x, y, **options)
    except (ValueError, TypeError):
        return
    assert torch.isfinite(value).all() and ((value >= 0) & (value <= 1)).all()
    if value.requires_grad and value.numel():
        (grad,) = torch.autograd.grad(value.sum(), x)
        assert torch.isfinite(grad).all()
