"""The focal exponent `gamma` of the Tversky-family losses: the loss is the average, with
the weights of `average`, of the per-class `(1 - T_c)^gamma` (Abraham and Khan 2019)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

import softmetrics
from softmetrics import functional as F
from softmetrics.functional._classification_formulas import focal

TVERSKY_LOSSES = [softmetrics.SoftTverskyLoss, softmetrics.SoftDiceLoss,
                  softmetrics.SoftF1Loss, softmetrics.SoftJaccardLoss,
                  softmetrics.SoftIoULoss, softmetrics.SoftFBetaLoss,
                  softmetrics.SoftPrecisionLoss, softmetrics.SoftRecallLoss]


def _case(task: str, n: int = 12, c: int = 4, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    if task == "binary":
        return torch.randn(n, generator=g, dtype=dtype), torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, c, generator=g, dtype=dtype)
    if task == "multiclass":
        return x, torch.randint(0, c, (n,), generator=g)
    return x, torch.randint(0, 2, (n, c), generator=g)


def _index(x, y, *, average, **options):
    return F.soft_tversky_index(x, y, alpha=0.3, beta=0.7, average=average, **options)


@pytest.mark.parametrize("temperature", [0, 0.5, 1.0])
@pytest.mark.parametrize("gamma", [0.5, 0.75, 1.0, 2.0])
@pytest.mark.parametrize("task, average", [
    ("binary", "macro"), ("multiclass", "macro"), ("multiclass", "weighted"),
    ("multiclass", "micro"), ("multiclass", "none"), ("multilabel", "macro"),
    ("multilabel", "weighted"), ("multilabel", "micro")])
def test_loss_is_the_average_of_per_class_powers(task, average, gamma, temperature):
    """Every class present: macro is the plain mean of (1 - T_c)^gamma, weighted the
    support-weighted mean, micro the power of the pooled index, none the per-class
    powers."""
    x, y = _case(task)
    options = dict(task=task, temperature=temperature)
    if task != "binary":
        options["num_classes"] = 4
    loss_fn = softmetrics.SoftTverskyLoss(alpha=0.3, beta=0.7, gamma=gamma, average=average,
                                          **options)
    loss = loss_fn(x, y)
    if task == "binary" or average == "micro":
        expected = (1 - _index(x, y, average=average, **options)) ** gamma
    else:
        per_class = (1 - _index(x, y, average="none", **options)) ** gamma
        support = F.soft_stat_scores(x, y, **options).support.to(per_class.dtype)
        assert (support > 0).all()  # every class counts with weight 1 in "macro"
        if average == "macro":
            expected = per_class.mean()
        elif average == "weighted":
            expected = (per_class * support).sum() / support.sum()
        else:
            expected = per_class
    torch.testing.assert_close(loss, expected.float(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("temperature", [0, 0.3])
def test_absent_classes_keep_the_macro_weights(temperature):
    """A class absent from the target enters the macro mean with the weight the plain
    loss gives it (1 if predicted at temperature 0; FP / (FP + t) at t > 0), and the
    ignored class with weight 0: the focal loss is the same weighted mean of
    (1 - T_c)^gamma."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 5, generator=g)
    y = torch.randint(0, 3, (10,), generator=g)  # classes 3 and 4 absent
    y[0] = 0
    y[1] = 1
    x[0, 3] = 5.0  # class 3 is predicted by the argmax, class 4 perhaps not
    options = dict(task="multiclass", num_classes=5, temperature=temperature, ignore_index=1)
    gamma = 0.6
    loss = softmetrics.SoftTverskyLoss(alpha=0.3, beta=0.7, gamma=gamma, **options)(x, y)
    index = _index(x, y, average="none", **options).double()
    stats = F.soft_stat_scores(x, y, **{k: v for k, v in options.items()})
    fp = stats.fp.double()
    present = stats.support > 0
    if temperature == 0:
        seen = (fp > 0).double()
    else:
        seen = fp / (fp + temperature)
    weight = torch.where(present, 1.0, seen)
    weight[1] = 0.0  # ignore_index inside [0, C) leaves every average
    # the same weights reproduce the plain (non-focal) loss
    plain = softmetrics.SoftTverskyLoss(alpha=0.3, beta=0.7, **options)(x, y)
    torch.testing.assert_close(plain.double(), 1 - (weight * index).sum() / weight.sum(),
                               atol=1e-6, rtol=1e-6)
    expected = (weight * (1 - index) ** gamma).sum() / weight.sum()
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cls", TVERSKY_LOSSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_gamma_one_is_the_plain_loss(cls, task):
    x, y = _case(task)
    options = dict(task=task) if task == "binary" else dict(task=task, num_classes=4)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    plain, focal = cls(**options)(x1, y), cls(gamma=1.0, **options)(x2, y)
    assert torch.equal(plain, focal)
    plain.backward()
    focal.backward()
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("cls", TVERSKY_LOSSES, ids=lambda c: c.__name__)
def test_metric_is_the_exact_index_not_the_focal_loss(cls):
    x, y = _case("multiclass")
    focal = cls(task="multiclass", num_classes=4, gamma=0.5)
    plain = cls(task="multiclass", num_classes=4)
    assert torch.equal(focal.metric(x, y), plain.metric(x, y))
    assert not torch.allclose(focal(x, y), plain(x, y))


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.75])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_finite_gradients_at_a_perfect_index(task, gamma):
    """Saturated right logits give T = 1 exactly in floating point, where the slope of
    (1 - T)^gamma with gamma < 1 is infinite: the gradient stays finite."""
    _, y = _case(task)
    if task == "multiclass":
        x = torch.nn.functional.one_hot(y, 4).float() * 2e4 - 1e4
    else:
        x = y.float() * 2e4 - 1e4
    options = dict(task=task) if task == "binary" else dict(task=task, num_classes=4)
    for temperature in (1e-3, 1.0):
        xr = x.clone().requires_grad_()
        loss = softmetrics.SoftTverskyLoss(gamma=gamma, temperature=temperature,
                                           **options)(xr, y)
        assert loss.item() == 0.0  # the index is exactly 1
        loss.backward()
        assert torch.isfinite(xr.grad).all()


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.75])
def test_power_below_machine_epsilon_is_its_chord(gamma):
    """Below the machine epsilon `eps` of `1 - T` the power `(1 - T)^gamma` (gamma < 1) is
    replaced by its chord from 0 to `eps`, `(1 - T) eps^(gamma - 1)`: the same values at 0
    and at `eps`, and the chord's finite slope instead of an infinite one; from `eps` on,
    the power itself and its slope."""
    eps = torch.finfo(torch.float64).eps
    miss = torch.arange(6, dtype=torch.float64) * eps / 2  # 1 - T exact just below 1
    t = (1.0 - miss).requires_grad_()
    value = focal(t, gamma)
    (slope,) = torch.autograd.grad(value.sum(), t)
    below = miss < eps
    chord = eps ** (gamma - 1.0)
    expected = torch.where(below, 1.0 - miss * chord, 1.0 - miss ** gamma)
    expected_slope = torch.where(below, chord, gamma * miss.clamp_min(eps) ** (gamma - 1.0))
    torch.testing.assert_close(value, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(slope, expected_slope, rtol=1e-12, atol=0)
    # the chord meets the power at eps
    assert 1.0 - eps * chord == pytest.approx(1.0 - eps ** gamma, abs=1e-15)


def test_finite_gradients_near_a_perfect_index():
    """Just below T = 1 the slope is large but finite, also in float32."""
    y = torch.tensor([0, 1, 1, 0, 1])
    for margin in (10.0, 20.0, 40.0, 80.0):
        x = ((2 * y - 1) * margin).float().requires_grad_()
        loss = softmetrics.SoftDiceLoss(task="binary", gamma=0.25)(x, y)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("gamma", [0.5, 0.75, 2.0, 3.0])
@pytest.mark.parametrize("task, average", [("multiclass", "macro"), ("multilabel", "weighted"),
                                           ("multilabel", "micro"), ("binary", "macro")])
def test_gradcheck(task, average, gamma):
    x, y = _case(task, n=6, c=3, dtype=torch.float64)
    options = dict(task=task) if task == "binary" else dict(task=task, num_classes=3)
    loss_fn = softmetrics.SoftTverskyLoss(alpha=0.3, beta=0.7, gamma=gamma, average=average,
                                          temperature=0.7, **options)
    assert torch.autograd.gradcheck(lambda t: loss_fn(t, y), (x.requires_grad_(),))


def test_samplewise_reduction_of_focal_losses():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 4, 4, generator=g)
    y = torch.randint(0, 3, (3, 4, 4), generator=g)
    options = dict(task="multiclass", num_classes=3, multidim_average="samplewise",
                   average="none")
    per_sample = softmetrics.SoftDiceLoss(gamma=1.5, reduction="none", **options)(x, y)
    dice = F.soft_f1_score(x, y, **options)
    torch.testing.assert_close(per_sample, (1 - dice) ** 1.5)
    options["average"] = "micro"
    summed = softmetrics.SoftDiceLoss(gamma=1.5, reduction="sum", **options)(x, y)
    torch.testing.assert_close(summed, ((1 - F.soft_f1_score(x, y, **options)) ** 1.5).sum())


@pytest.mark.parametrize("cls", TVERSKY_LOSSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("gamma, error", [(0.0, ValueError), (-1.0, ValueError),
                                          (math.inf, ValueError), (math.nan, ValueError),
                                          ("2", TypeError)])
def test_gamma_is_checked_at_construction(cls, gamma, error):
    with pytest.raises(error, match=rf"^{cls.__name__}: expected `gamma` to be"):
        cls(task="binary", gamma=gamma)


@pytest.mark.parametrize("cls", [softmetrics.SoftAccuracyLoss, softmetrics.SoftMCCLoss])
def test_only_the_tversky_family_is_focal(cls):
    with pytest.raises(TypeError, match="gamma"):
        cls(task="binary", gamma=2.0)


def test_repr_shows_gamma():
    assert "gamma=0.75" in repr(softmetrics.SoftJaccardLoss(task="binary", gamma=0.75))
    assert "gamma" not in repr(softmetrics.SoftJaccardLoss(task="binary"))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), gamma=st.floats(0.05, 4.0),
       temperature=st.sampled_from([0, 1e-3, 0.1, 1.0, 10.0]),
       scale=st.sampled_from([1.0, 30.0, 1e4]))
def test_property_multilabel_macro_against_per_class_formula(seed, gamma, temperature, scale):
    """Multilabel macro counts every label with weight 1 (its default "include"): the
    loss is the plain mean of the per-label (1 - T_c)^gamma, finite with finite gradients
    at every scale and temperature."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(8, 3, generator=g, dtype=torch.float64) * scale).requires_grad_()
    y = torch.randint(0, 2, (8, 3), generator=g)
    options = dict(task="multilabel", num_classes=3, temperature=temperature,
                   zero_division=1.0)
    loss = softmetrics.SoftTverskyLoss(alpha=0.4, beta=0.6, gamma=gamma, **options)(x, y)
    index = F.soft_tversky_index(x, y, alpha=0.4, beta=0.6, average="none", **options)
    expected = ((1 - index).clamp_min(0) ** gamma).mean()
    torch.testing.assert_close(loss, expected, atol=1e-9 + 2 * 2.2e-16 ** gamma, rtol=1e-7)
    if loss.requires_grad:
        loss.backward()
        assert torch.isfinite(x.grad).all()
