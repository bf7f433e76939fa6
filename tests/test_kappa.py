"""Cohen's kappa: exact against scikit-learn (and its own table of literal values), soft
against an explicit loop over the confusion matrix; range, permutation invariance,
convergence as the temperature falls, finite gradients, gradcheck, the Module."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from sklearn.metrics import cohen_kappa_score

import softmetrics
from softmetrics import functional as F

from .test_robustness import fuzz_case

WEIGHTS = [None, "linear", "quadratic"]


def _sklearn(target, pred, num_classes, weights, zero_division=0.0):
    """scikit-learn's kappa over every class index (`labels=range(C)`), 0/0 (and no
    entries, which scikit-learn refuses) replaced."""
    if len(target) == 0:
        return zero_division
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(np.asarray(target), np.asarray(pred), weights=weights,
                                  labels=list(range(num_classes)))
    return zero_division if np.isnan(value) else float(value)


def _loop_reference(p, y, num_classes, weights, keep=None):
    """Soft kappa by explicit loops: O_ij = sum over samples of class i of p_nj."""
    c = num_classes
    o = [[0.0] * c for _ in range(c)]
    for n in range(len(y)):
        if keep is not None and not keep[n]:
            continue
        for j in range(c):
            o[y[n]][j] += float(p[n][j])
    t = [sum(o[i]) for i in range(c)]
    q = [sum(o[i][j] for i in range(c)) for j in range(c)]
    total = sum(t)

    def w(i, j):
        if weights is None:
            return float(i != j)
        return abs(i - j) if weights == "linear" else (i - j) ** 2

    observed = sum(w(i, j) * o[i][j] for i in range(c) for j in range(c))
    chance = sum(w(i, j) * t[i] * q[j] for i in range(c) for j in range(c)) / total
    return 1.0 - observed / chance


def _logits(g, n, c, ties):
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * 2
    return x.round() if ties else x  # rounded scores tie often: the first maximum wins


# ---------------------------------------------------------------------------------------
# exact value


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 30), c=st.integers(2, 6),
       weights=st.sampled_from(WEIGHTS), ties=st.booleans(),
       present=st.integers(1, 6), ignore=st.sampled_from([None, 0, 255]),
       zero_division=st.sampled_from([0.0, 1.0]))
def test_multiclass_equals_sklearn(seed, n, c, weights, ties, present, ignore, zero_division):
    g = torch.Generator().manual_seed(seed)
    x = _logits(g, n, c, ties)
    y = torch.randint(0, min(present, c), (n,), generator=g)  # classes may be absent
    if ignore is not None:
        y[torch.rand(n, generator=g) < 0.3] = ignore
    value = F.soft_cohen_kappa(x, y, task="multiclass", num_classes=c, weights=weights,
                               ignore_index=ignore, zero_division=zero_division,
                               temperature=0)
    keep = (y != ignore).numpy() if ignore is not None else np.ones(n, dtype=bool)
    expected = _sklearn(y.numpy()[keep], x.argmax(1).numpy()[keep], c, weights,
                        zero_division)
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 30),
       threshold=st.sampled_from([0.5, 0.3, 0.8]), ignore=st.sampled_from([None, -1]))
def test_binary_equals_sklearn_for_every_weighting(seed, n, threshold, ignore):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (n,), generator=g)
    if ignore is not None:
        y[torch.rand(n, generator=g) < 0.3] = ignore
    keep = (y != ignore).numpy() if ignore is not None else np.ones(n, dtype=bool)
    pred = (torch.sigmoid(x) > threshold).long().numpy()
    expected = _sklearn(y.numpy()[keep], pred[keep], 2, None)
    for weights in WEIGHTS:  # two classes: W = [[0, 1], [1, 0]] for every weighting
        value = F.soft_cohen_kappa(x, y, task="binary", weights=weights, threshold=threshold,
                                   ignore_index=ignore, temperature=0)
        assert value.item() == pytest.approx(expected, abs=1e-12)
        assert _sklearn(y.numpy()[keep], pred[keep], 2, weights) == pytest.approx(expected)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_segmentation_maps_pool_positions(weights):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 5, 6), generator=g)
    y[0, 0] = 255
    value = F.soft_cohen_kappa(x, y, task="multiclass", num_classes=4, weights=weights,
                               ignore_index=255, temperature=0)
    keep = (y != 255).flatten().numpy()
    expected = _sklearn(y.flatten().numpy()[keep], x.argmax(1).flatten().numpy()[keep], 4,
                        weights)
    assert value.item() == pytest.approx(expected, abs=1e-12)
    binary = F.soft_cohen_kappa(x[:, :1], (y == 1).long(), task="binary", temperature=0)
    pred = (x[:, 0] > 0).flatten().long().numpy()
    assert binary.item() == pytest.approx(_sklearn((y == 1).flatten().long().numpy(), pred,
                                                   2, None), abs=1e-12)


def _onehot_logits(labels):
    return torch.nn.functional.one_hot(torch.as_tensor(labels), 3).double() * 4.0


def test_replays_sklearn_literal_values():
    """scikit-learn's `test_cohen_kappa` (from Artstein and Poesio 2008, Tables 1 and 4)."""
    y1 = torch.tensor([0] * 40 + [1] * 60)
    y2 = torch.tensor([0] * 20 + [1] * 20 + [0] * 10 + [1] * 50)
    binary = F.soft_cohen_kappa(y2.double() - 0.5, y1, task="binary", temperature=0)
    assert binary.item() == pytest.approx(0.348, abs=5e-4)
    # closed form: p_o = 0.7, p_e = (40 * 30 + 60 * 70) / 100^2 = 0.54
    assert binary.item() == pytest.approx((0.7 - 0.54) / (1 - 0.54), abs=1e-12)
    y1 = torch.tensor([0] * 46 + [1] * 44 + [2] * 10)
    y2 = torch.tensor([0] * 52 + [1] * 32 + [2] * 16)
    value = F.soft_cohen_kappa(_onehot_logits(y2), y1, task="multiclass", num_classes=3,
                               temperature=0)
    assert value.item() == pytest.approx(0.8013, abs=5e-5)
    y2 = torch.tensor([0] * 50 + [1] * 40 + [2] * 10)
    for weights, expected in ((None, 0.9315), ("linear", 0.9412), ("quadratic", 0.9541)):
        value = F.soft_cohen_kappa(_onehot_logits(y2), y1, task="multiclass", num_classes=3,
                                   weights=weights, temperature=0)
        assert value.item() == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("zero_division", [0.0, 0.5])
def test_one_class_everywhere_is_zero_division(weights, zero_division):
    """0/0: target and decision all in one class (scikit-learn: NaN with a warning)."""
    x = torch.tensor([[3.0, 0.0, -1.0]] * 4)
    y = torch.zeros(4, dtype=torch.long)
    kw = dict(task="multiclass", num_classes=3, weights=weights, zero_division=zero_division)
    assert F.soft_cohen_kappa(x, y, temperature=0, **kw).item() == zero_division
    # soft: the other classes keep some mass, and a one-class target gives 0
    assert F.soft_cohen_kappa(x, y, **kw).item() == pytest.approx(0.0, abs=1e-6)
    empty = F.soft_cohen_kappa(x[:0], y[:0], temperature=0, **kw)
    assert empty.item() == zero_division
    ignored = F.soft_cohen_kappa(x, torch.full((4,), -1), ignore_index=-1, **kw)
    assert ignored.item() == zero_division


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_chance_within_rounding_of_zero_is_zero_division(weights):
    """A one-class target and a decision that leaves the other classes e^-38, about
    3e-17, per entry: the weighted chance term E is about 1e-15 to 3e-15, above the
    machine epsilon but below eps N^2 (3.6e-15 for N = 4), the rounding of its scale, so
    the value is `zero_division`, not the ratio of two rounding-sized numbers."""
    x = torch.tensor([[38.0, 0.0, 0.0]] * 4, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)
    value = F.soft_cohen_kappa(x, y, task="multiclass", num_classes=3, weights=weights,
                               temperature=1.0, zero_division=0.5)
    assert value.item() == 0.5


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("extra", [(), (2,)])
def test_empty_batch_has_a_zero_gradient(weights, extra):
    """No samples: the soft value is `zero_division` and the backward pass runs, with
    a gradient of the input's (empty) shape."""
    x = torch.zeros(0, 4, *extra, requires_grad=True)
    y = torch.zeros(0, *extra, dtype=torch.long)
    value = F.soft_cohen_kappa(x, y, task="multiclass", num_classes=4, weights=weights,
                               temperature=0.5, zero_division=0.5)
    assert value.item() == 0.5
    (grad,) = torch.autograd.grad(value, x)
    assert grad.shape == x.shape


# ---------------------------------------------------------------------------------------
# soft value


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 20), c=st.integers(2, 5),
       weights=st.sampled_from(WEIGHTS), temperature=st.sampled_from([0.3, 1.0, 4.0]),
       ignore=st.booleans())
def test_soft_value_equals_loop_reference(seed, n, c, weights, temperature, ignore):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    y[0], y[1] = 0, 1  # two classes in the target: the value is defined
    keep = None
    if ignore:
        keep = (torch.rand(n, generator=g) > 0.3).tolist()
        keep[0] = keep[1] = True
        y = torch.where(torch.tensor(keep), y, torch.tensor(-1))
    value = F.soft_cohen_kappa(x, y, task="multiclass", num_classes=c, weights=weights,
                               temperature=temperature,
                               ignore_index=-1 if ignore else None)
    p = torch.softmax(x / temperature, 1).tolist()
    expected = _loop_reference(p, y.clamp_min(0).tolist(), c, weights, keep)
    assert value.item() == pytest.approx(expected, abs=1e-12)


def test_binary_soft_value_is_the_two_class_table():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (12,), generator=g)
    y[0], y[1] = 0, 1
    p1 = torch.sigmoid((x - np.log(0.3 / 0.7)) / 0.5)
    p = torch.stack([1 - p1, p1], 1).tolist()
    value = F.soft_cohen_kappa(x, y, task="binary", threshold=0.3, temperature=0.5)
    assert value.item() == pytest.approx(_loop_reference(p, y.tolist(), 2, None), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 20), c=st.integers(2, 5),
       weights=st.sampled_from(WEIGHTS), temperature=st.sampled_from([0.0, 0.1, 1.0, 10.0]),
       scale=st.sampled_from([1.0, 10.0, 1e4]))
def test_range_and_permutation_invariance(seed, n, c, weights, temperature, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g) * scale
    y = torch.randint(0, c, (n,), generator=g)
    kw = dict(task="multiclass", num_classes=c, weights=weights, temperature=temperature)
    value = F.soft_cohen_kappa(x, y, **kw)
    assert -1.0 <= value.item() <= 1.0
    perm = torch.randperm(n, generator=g)
    torch.testing.assert_close(F.soft_cohen_kappa(x[perm], y[perm], **kw), value,
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_perfect_and_reversed_decisions(weights):
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    exact = torch.nn.functional.one_hot(y, 3).double() * 5
    kw = dict(task="multiclass", num_classes=3, weights=weights)
    assert F.soft_cohen_kappa(exact, y, temperature=0, **kw).item() == 1.0
    assert F.soft_cohen_kappa(exact, y, temperature=0.05, **kw).item() == pytest.approx(1.0)
    reversed_ = F.soft_cohen_kappa(exact.flip(1), y, temperature=0, **kw).item()
    if weights is None:  # the middle class still agrees: p_o = p_e = 1/3
        assert reversed_ == pytest.approx(0.0, abs=1e-15)
    else:  # grades turned upside down disagree more than chance
        assert reversed_ < 0


@pytest.mark.parametrize("weights", WEIGHTS)
def test_converges_to_the_exact_value(weights):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (40,), generator=g)
    kw = dict(task="multiclass", num_classes=5, weights=weights)
    exact = F.soft_cohen_kappa(x, y, temperature=0, **kw).item()
    gaps = [abs(F.soft_cohen_kappa(x, y, temperature=t, **kw).item() - exact)
            for t in (1.0, 0.1, 0.01, 0.001)]
    # not monotone in the temperature (neither is kappa in a decision's mass), but close
    # once the softmax is nearly one-hot
    assert gaps[-1] < 1e-6 and gaps[-2] < 0.01
    xb = x[:, 0]
    exact_b = F.soft_cohen_kappa(xb, (y > 2).long(), task="binary", temperature=0).item()
    soft_b = F.soft_cohen_kappa(xb, (y > 2).long(), task="binary", temperature=1e-4).item()
    assert soft_b == pytest.approx(exact_b, abs=1e-6)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("constant", [False, True])
def test_finite_gradients_for_extreme_logits(weights, constant):
    g = torch.Generator().manual_seed(2)
    if constant:  # a one-class target decided right, with a float32 denormal elsewhere
        base = torch.tensor([[1e4, 1e4, -1e4, -1e4]]).repeat(16, 1)
        base[:, 1] -= 0.095  # a mass exp(-95) = 5e-42 per entry at temperature 1e-3
        y = torch.zeros(16, dtype=torch.long)
    else:
        base = torch.randint(-1, 2, (16, 4), generator=g).float() * 1e4
        base[:, 1] = base[:, 0] - torch.linspace(0.0, 0.12, 16)
        y = torch.randint(0, 4, (16,), generator=g)
    for temperature in (1e-3, 1.0):
        x = base.clone().requires_grad_()
        value = F.soft_cohen_kappa(x, y, task="multiclass", num_classes=4, weights=weights,
                                   temperature=temperature)
        value.backward()
        assert torch.isfinite(value) and -1.0 <= value.item() <= 1.0
        assert torch.isfinite(x.grad).all()
        if constant:  # kappa is 0 for every decision against a one-class target
            assert value.item() == pytest.approx(0.0, abs=1e-6)
    xb = (base[:, 0] - 0.05).requires_grad_()
    F.soft_cohen_kappa(xb, (y > 0).long(), task="binary", temperature=1e-3).backward()
    assert torch.isfinite(xb.grad).all()


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("ignore", [False, True])
def test_gradcheck_and_gradgradcheck(weights, ignore):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 2])
    if ignore:
        y[3] = -1

    def fn(t):
        return F.soft_cohen_kappa(t, y, task="multiclass", num_classes=3, weights=weights,
                                  temperature=0.7, ignore_index=-1 if ignore else None)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    xb = torch.randn(7, generator=g, dtype=torch.float64, requires_grad=True)

    def binary(t):
        return F.soft_cohen_kappa(t, (y == 2).long(), task="binary", temperature=0.7,
                                  threshold=0.4)

    assert torch.autograd.gradcheck(binary, (xb,))
    assert torch.autograd.gradgradcheck(binary, (xb,))


@pytest.mark.parametrize("c, extra", [(5, ()), (20, ()), (4, (3,))])
@pytest.mark.parametrize("block", [None, 0, 1, 70])
@pytest.mark.parametrize("pad", [False, True])
def test_fused_disagreement_equals_autograd(c, extra, block, pad, device, monkeypatch):
    """The weighted path's fused statistics (`_SoftmaxDisagreement`: the disagreement and
    the predicted mass) against the same code under autograd (a tensor temperature), in
    value and gradient, for both weightings: narrow rows, with `pad` padded to 16 columns
    on the CPU (forced here, on float64 rows of any number), wide rows, extra axes laid
    out as rows, ignored entries; `block` sets the entries per block of the forward sums
    and of the in-place backward with the small-input path off (0: one block; 70 leaves
    a short last block), None keeps the defaults."""
    from softmetrics import _tuning
    from softmetrics.functional._classification_counts import softmax_width
    from softmetrics.functional._kappa_disagreement import weighted_disagreement

    if pad:
        monkeypatch.setattr(_tuning, "CPU_SOFTMAX_MIN_WIDTH", 16)
        monkeypatch.setattr(_tuning, "CPU_SOFTMAX_PAD_ROWS", 0)
        rows = torch.zeros(23, c, dtype=torch.float64, device=device)
        assert softmax_width(rows) == (16 if device.type == "cpu" and c < 16 else c)
    if block is not None:
        monkeypatch.setattr(_tuning, "CPU_BLOCK_ENTRIES", block)
        monkeypatch.setattr(_tuning, "DEVICE_BLOCK_ENTRIES", block)
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 0)
    g = torch.Generator().manual_seed(c)
    x = torch.randn(23, c, *extra, generator=g, dtype=torch.float64).to(device)
    y = torch.randint(0, c, (23, *extra), generator=g).to(device)
    w = (torch.rand(y.shape, generator=g) > 0.2).double().to(device)
    up_d = torch.randn(1, 1, generator=g, dtype=torch.float64).to(device)
    up_q = torch.randn(1, c, generator=g, dtype=torch.float64).to(device)
    for weights in ("linear", "quadratic"):
        for temperature in (0.5, 2.0):
            for sample_weights in (None, w):
                out = []
                for t in (temperature,
                          torch.tensor(temperature, dtype=torch.float64, device=device)):
                    z = x.clone().requires_grad_()
                    d, q = weighted_disagreement(z, y, sample_weights, c, weights, t)
                    (grad,) = torch.autograd.grad((d * up_d).sum() + (q * up_q).sum(), z)
                    out.append((d, q, grad))
                torch.testing.assert_close(out[0], out[1])
        assert torch.autograd.gradgradcheck(
            lambda z, weights=weights: weighted_disagreement(z, y, w, c, weights, 0.5),
            (x.clone().requires_grad_(),))


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_disagreement_is_the_confusion_matrix_weighted(weights, temperature):
    """$D = \\sum_{ij} W_{ij} O_{ij}$ and $q_j = \\sum_i O_{ij}$ of the confusion matrix $O$
    built by a loop over the samples, with the weights as a (C, C) matrix; at temperature
    0 exact integers (ties: the first maximum wins)."""
    from softmetrics.functional._kappa_disagreement import weighted_disagreement

    g = torch.Generator().manual_seed(21)
    c = 7
    x = torch.randn(50, c, generator=g, dtype=torch.float64).round()
    y = torch.randint(0, c, (50,), generator=g)
    w = (torch.rand(50, generator=g) > 0.3).double()
    p = (torch.nn.functional.one_hot(x.argmax(1), c).double() if temperature == 0
         else torch.softmax(x / temperature, 1))
    o = torch.zeros(c, c, dtype=torch.float64)
    for n in range(50):
        o[y[n]] += w[n] * p[n]
    gap = torch.arange(c).unsqueeze(1) - torch.arange(c)
    matrix = (gap.abs() if weights == "linear" else gap * gap).double()
    d, q = weighted_disagreement(x, y, w, c, weights, temperature)
    if temperature == 0:
        assert d.item() == (matrix * o).sum().item()
        assert q.squeeze(0).tolist() == o.sum(0).tolist()
    else:
        assert d.item() == pytest.approx((matrix * o).sum().item(), rel=1e-13)
        torch.testing.assert_close(q.squeeze(0), o.sum(0), rtol=1e-13, atol=0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), groups=st.integers(1, 3), c=st.integers(1, 40),
       weights=st.sampled_from(["linear", "quadratic"]), integers=st.booleans())
def test_chance_rows_are_the_weight_matrix_times_the_support(seed, groups, c, weights,
                                                             integers):
    """`chance_rows` (moments, or running sums in log2(C) steps, with no (C, C) matrix)
    against the product with the (C, C) weight matrix: bit for bit for integer supports
    (counts), to rounding for fractional ones (running statistics)."""
    from softmetrics.functional._agreement_core import chance_rows

    g = torch.Generator().manual_seed(seed)
    support = torch.rand(groups, c, generator=g, dtype=torch.float64)
    if integers:
        support = (support * 6).floor() * (torch.rand(groups, c, generator=g) > 0.4)
    gap = torch.arange(c).unsqueeze(1) - torch.arange(c)
    matrix = (gap.abs() if weights == "linear" else gap * gap).double()
    expected = support @ matrix
    rows = chance_rows(support, weights)
    if integers and weights == "linear":
        assert torch.equal(rows, expected)
    else:
        torch.testing.assert_close(rows, expected, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_chance_rows_of_a_one_class_target_are_exact(weights):
    """A target of one class $i$: $a_j = T W_{ij}$ exactly, whatever $T$, so that the
    chance term and the disagreement of an exact decision are the same integers."""
    from softmetrics.functional._agreement_core import chance_rows

    for c, i, total in ((5, 0, 3.0), (5, 4, 7.0), (13, 6, 2.0**40), (1, 0, 5.0)):
        support = torch.zeros(1, c, dtype=torch.float64)
        support[0, i] = total
        gap = (torch.arange(c) - i).double().abs()
        expected = total * (gap if weights == "linear" else gap * gap)
        assert chance_rows(support, weights).squeeze(0).tolist() == expected.tolist()


def _meta_softmax_backward_out() -> bool:
    """Whether torch's meta kernel of `_softmax_backward_data.out` runs (torch 2.1's
    raises a TypeError: its decomposition takes no `grad_input`)."""
    g = torch.empty(2, 3, device="meta")
    try:
        torch.ops.aten._softmax_backward_data.out(g, g, 1, g.dtype, grad_input=g.clone())
    except TypeError:
        return False
    return True


needs_meta_softmax_backward = pytest.mark.skipif(
    not _meta_softmax_backward_out(),
    reason="this torch's meta _softmax_backward_data.out fails (torch 2.1)")


@needs_meta_softmax_backward
@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_fused_disagreement_needs_no_second_full_buffer(weights):
    """On devices other than the CPU (meta: shapes without data) the weighted path's
    forward pass keeps the probabilities and forms the rows of weights in parts, and its
    backward writes the gradient over the probabilities: besides the probabilities, each
    pass allocates at most two temporaries of one part (2^24 entries each)."""
    from softmetrics.functional._kappa_disagreement import weighted_disagreement

    from .allocations import Allocations

    n, c = 1 << 15, 1 << 11  # 2^26 logits
    x = torch.zeros(n, c, device="meta", requires_grad=True)
    y = torch.zeros(n, dtype=torch.long, device="meta")
    w = torch.ones(n, device="meta")
    with Allocations() as forward:  # temperature 1: no scaled copy of the logits
        d, q = weighted_disagreement(x, y, w, c, weights, 1.0)
    assert sorted(forward.sizes)[-2:] == [1 << 24, x.numel()]  # a part; the probabilities
    with Allocations() as backward:
        (grad,) = torch.autograd.grad(d.sum() + q.pow(2).sum(), x)
    assert grad.shape == x.shape
    assert max(backward.sizes) <= 2 << 24 < x.numel()


@needs_meta_softmax_backward
def test_no_class_by_class_matrix_at_a_thousand_classes():
    """Weighted kappa at C = 1000 forms no (C, C) matrix, forward or backward: the
    largest allocation is the backward's two temporaries of one block (here the whole
    64 x 1000 logits), a seventh of the million entries such a matrix would hold."""
    from .allocations import Allocations

    n, c = 64, 1000
    x = torch.zeros(n, c, device="meta", requires_grad=True)
    y = torch.zeros(n, dtype=torch.long, device="meta")
    for weights in ("linear", "quadratic"):
        with Allocations() as allocations:
            value = F.soft_cohen_kappa(x, y, task="multiclass", num_classes=c,
                                       weights=weights, validate_args=False)
            torch.autograd.grad(value, x)
        assert max(allocations.sizes) <= 2 * n * c < c * c


def test_tensor_temperature_and_half_precision():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(10, 4, generator=g)
    y = torch.randint(0, 4, (10,), generator=g)
    kw = dict(task="multiclass", num_classes=4, weights="quadratic")
    tau = torch.tensor(0.5, requires_grad=True)
    value = F.soft_cohen_kappa(x, y, temperature=tau, **kw)
    value.backward()
    assert tau.grad is not None and torch.isfinite(tau.grad)
    torch.testing.assert_close(value.detach(), F.soft_cohen_kappa(x, y, temperature=0.5, **kw))
    half = F.soft_cohen_kappa(x.half(), y, temperature=0.5, **kw)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, F.soft_cohen_kappa(x, y, temperature=0.5, **kw),
                               atol=2e-3, rtol=0)


def test_nan_logits():
    x = torch.randn(6, 3)
    x[2, 1] = float("nan")
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    for weights in WEIGHTS:
        kw = dict(task="multiclass", num_classes=3, weights=weights)
        with pytest.raises(ValueError, match=r"^soft_cohen_kappa: expected `input` to be "
                                             r"finite"):
            F.soft_cohen_kappa(x, y, **kw)
        for t in (0.0, 1.0):
            value = F.soft_cohen_kappa(x, y, temperature=t, validate_args=False,
                                       zero_division=1.0, **kw)
            assert value.isnan()


@settings(max_examples=150, deadline=None)
@given(case=fuzz_case(), weights=st.sampled_from([*WEIGHTS, "cubic"]))
def test_fuzz(case, weights):
    """Every shape and dtype: a documented error, or finite values and gradients."""
    x, y, options = case
    keep = ("task", "num_classes", "temperature", "threshold", "ignore_index", "zero_division")
    options = {k: v for k, v in options.items() if k in keep} | {"weights": weights}
    if x.is_floating_point():
        x.requires_grad_()
    try:
        value = F.soft_cohen_kappa(x, y, **options)
    except (ValueError, TypeError):
        return
    assert torch.isfinite(value) and -1.0 <= value.item() <= 1.0
    if value.requires_grad:
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.compile
def test_compiles_without_graph_breaks(weights, task):
    """Forward and backward trace as one graph (dynamo, the eager backend), with the
    default `validate_args=True`, and give the eager values."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    if task == "binary":
        x, y, kw = torch.randn(32, generator=g), torch.randint(0, 2, (32,), generator=g), {}
    else:
        x, y = torch.randn(2, 4, 3, 3, generator=g), torch.randint(0, 4, (2, 3, 3), generator=g)
        kw = dict(num_classes=4, ignore_index=0)
    loss_fn = softmetrics.SoftCohenKappaLoss(task=task, weights=weights, **kw)
    compiled = torch.compile(loss_fn, backend="eager", fullgraph=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = compiled(xa, y), loss_fn(xb, y)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(xa.grad, xb.grad)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_autocast_bfloat16_on_cpu(weights):
    """Under CPU autocast a bf16 matmul feeds the loss: the statistics stay in float32."""
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(16, 5)
    x = torch.randn(256, 16, generator=g)
    y = torch.randint(0, 5, (256,), generator=g)
    y[::7] = -1
    loss_fn = softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=5, weights=weights,
                                             ignore_index=-1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        loss = loss_fn(logits, y)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, loss_fn(logits.detach().float(), y), atol=1e-6, rtol=0)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("weights", WEIGHTS)
def test_runs_on_the_device_under_test(weights, device):
    """`pytest --device cuda`: the values and gradients of the CPU, on the device."""
    g = torch.Generator().manual_seed(12)
    x = torch.randn(3, 4, 6, 6, generator=g)
    y = torch.randint(0, 4, (3, 6, 6), generator=g)
    y[0, :2] = 255
    kw = dict(task="multiclass", num_classes=4, weights=weights, ignore_index=255)
    grads = []
    for dev in (torch.device("cpu"), device):
        xd = x.to(dev).requires_grad_()
        value = F.soft_cohen_kappa(xd, y.to(dev), temperature=0.5, **kw)
        value.backward()
        exact = F.soft_cohen_kappa(xd, y.to(dev), temperature=0, **kw)
        assert value.device == exact.device == xd.device
        grads.append((value.detach().cpu(), exact.cpu(), xd.grad.cpu()))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------
# the Module


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_module_equals_function(weights, task):
    g = torch.Generator().manual_seed(9)
    c = 4 if task == "multiclass" else None
    x = torch.randn(20, 4, generator=g) if c else torch.randn(20, generator=g)
    y = torch.randint(0, c or 2, (20,), generator=g)
    kw = dict(task=task, num_classes=c, weights=weights, ignore_index=-1)
    y[0] = -1
    loss_fn = softmetrics.SoftCohenKappaLoss(temperature=0.5, **kw)
    xg = x.clone().requires_grad_()
    loss = loss_fn(xg, y)
    torch.testing.assert_close(loss, 1 - F.soft_cohen_kappa(x, y, temperature=0.5, **kw))
    loss.backward()
    assert torch.isfinite(xg.grad).all()
    torch.testing.assert_close(loss_fn.metric(x, y),
                               F.soft_cohen_kappa(x, y, temperature=0, **kw))
    assert "weights" in repr(loss_fn) or weights is None


@pytest.mark.parametrize("weights", WEIGHTS)
def test_momentum_half_pools_two_batches(weights):
    """Kappa is a ratio of sums that scale alike, so mixing the statistics of two batches
    half and half gives the kappa of both batches together."""
    g = torch.Generator().manual_seed(10)
    x = torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (30,), generator=g)
    kw = dict(task="multiclass", num_classes=4, weights=weights, temperature=0.5)
    loss_fn = softmetrics.SoftCohenKappaLoss(momentum=0.5, **kw).double()
    first = loss_fn(x[:15], y[:15])
    torch.testing.assert_close(first, 1 - F.soft_cohen_kappa(x[:15], y[:15], **kw))
    second = loss_fn(x[15:], y[15:])
    torch.testing.assert_close(second, 1 - F.soft_cohen_kappa(x, y, **kw))
    assert loss_fn.running_pred.dtype == torch.float64  # .double() widens the buffers
    state = loss_fn.state_dict()
    assert {"running_disagreement", "running_pred", "running_support",
            "running_total"} <= set(state)


def test_module_options_are_checked_at_construction():
    with pytest.raises(TypeError, match=r"^SoftCohenKappaLoss: expected `average` to be a "
                                        r"known option"):
        softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=3, average="macro")
    with pytest.raises(TypeError, match=r"^SoftCohenKappaLoss: expected `multidim_average`"):
        softmetrics.SoftCohenKappaLoss(task="binary", multidim_average="samplewise")
    with pytest.raises(ValueError, match=r"^SoftCohenKappaLoss: expected `weights` to be "
                                         r"one of None, 'linear', 'quadratic', got 'cubic'"):
        softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=3, weights="cubic")
    with pytest.raises(ValueError, match=r"^SoftCohenKappaLoss: expected `task`"):
        softmetrics.SoftCohenKappaLoss(task="multilabel", num_classes=3)
    with pytest.raises(ValueError, match=r"^SoftCohenKappaLoss: expected `momentum`"):
        softmetrics.SoftCohenKappaLoss(task="binary", momentum=1.0)
    with pytest.raises(TypeError, match=r"^SoftCohenKappaLoss: expected `temperature`"):
        softmetrics.SoftCohenKappaLoss(task="binary", temperature=torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"^SoftCohenKappaLoss: expected `input`"):
        softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=3)(
            torch.randn(4, 2), torch.zeros(4, dtype=torch.long))


def test_function_errors():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"^soft_cohen_kappa: expected `task` to be one of "
                                         r"'binary', 'multiclass', got 'multilabel'\.$"):
        F.soft_cohen_kappa(x, (x > 0).long(), task="multilabel", num_classes=3)
    with pytest.raises(ValueError, match=r"^soft_cohen_kappa: expected `weights` to be one "
                                         r"of None, 'linear', 'quadratic', got 'Quadratic'"):
        F.soft_cohen_kappa(x, y, task="multiclass", num_classes=3, weights="Quadratic")
    with pytest.raises(TypeError, match=r"^soft_cohen_kappa: expected `target` to be class "
                                        r"indices"):
        F.soft_cohen_kappa(x, x.softmax(1), task="multiclass", num_classes=3)
    with pytest.raises(ValueError, match=r"^soft_cohen_kappa: expected `target` to be "
                                         r"integer values in \{0, 1\}"):
        F.soft_cohen_kappa(x[:, 0], x[:, 0].sigmoid(), task="binary")
    with pytest.raises(ValueError, match=r"^soft_cohen_kappa: expected `temperature`"):
        F.soft_cohen_kappa(x, y, task="multiclass", num_classes=3, temperature=-1.0)
    with pytest.raises(ValueError, match=r"^soft_cohen_kappa: expected `zero_division`"):
        F.soft_cohen_kappa(x, y, task="multiclass", num_classes=3, zero_division=2.0)
    with pytest.raises(ValueError, match=r"^soft_cohen_kappa: expected `target` to be "
                                         r"integer values in \[0, 3\)"):
        F.soft_cohen_kappa(x, y + 1, task="multiclass", num_classes=3)
    with pytest.raises(TypeError, match=r"soft_cohen_kappa\(\) got an unexpected keyword "
                                        r"argument 'multidim_average'"):
        F.soft_cohen_kappa(x, y, task="multiclass", num_classes=3,
                           multidim_average="samplewise")
