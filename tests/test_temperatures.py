"""Temperatures near 0 and temperatures that are tensors, in every family that relaxes a
decision: a positive temperature of any size gives a finite value that tends to the exact
metric, and with `validate_args` a tensor temperature must be finite and > 0, as a number must."""

from __future__ import annotations

import functools

import pytest
import torch

import softmetrics
from softmetrics import _relax, functional as F


def _data(seed: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(24, 4, generator=g, dtype=torch.float64)).to(dtype)
    return x, g


def _labelled(task: str, fn, **options):
    """A call of `fn` on (24, 4) logits and multiclass labels or multilabel 0/1 targets."""
    def call(dtype, temperature, **extra):
        x, g = _data(0 if task == "multiclass" else 1, dtype)
        y = (torch.randint(0, 4, (24,), generator=g) if task == "multiclass"
             else torch.randint(0, 2, (24, 4), generator=g))
        return x, lambda z: fn(z, y, task=task, num_classes=4, temperature=temperature,
                               **options, **extra)
    return call


_multiclass = functools.partial(_labelled, "multiclass")
_multilabel = functools.partial(_labelled, "multilabel")


def _binary(fn, **options):
    def call(dtype, temperature, **extra):
        x, g = _data(2, dtype)
        y = torch.randint(0, 2, (24,), generator=g)
        return x, lambda z: fn(z[:, 0], y, task="binary", temperature=temperature,
                               **options, **extra)
    return call


def _retrieval(fn, **options):
    def call(dtype, temperature, **extra):
        x, g = _data(3, dtype)
        y = torch.randint(0, 2, (24, 4), generator=g)
        y[:, 0] = 1  # every query has a relevant item
        return x, lambda z: fn(z, y, temperature=temperature, **options, **extra)
    return call


def _soft_bleu(dtype, temperature, **extra):
    g = torch.Generator().manual_seed(4)
    x = (3 * torch.randn(3, 6, 9, generator=g, dtype=torch.float64)).to(dtype)
    ref = torch.randint(1, 9, (3, 7), generator=g)
    ref[:, :4] = x.argmax(-1)[:, :4]  # some n-grams match
    return x, lambda z: F.soft_bleu_score(z, ref, temperature=temperature, **extra)


CALLS = {
    "accuracy, multiclass": _multiclass(F.soft_accuracy),
    "accuracy, multilabel": _multilabel(F.soft_accuracy),
    "precision, multiclass macro": _multiclass(F.soft_precision, average="macro"),
    "recall, multilabel": _multilabel(F.soft_recall, average="macro"),
    "F1, multiclass macro": _multiclass(F.soft_f1_score, average="macro"),
    "F1, binary": _binary(F.soft_f1_score),
    "F-beta, multiclass micro": _multiclass(F.soft_fbeta_score, beta=2.0, average="micro"),
    "Jaccard, multiclass": _multiclass(F.soft_jaccard_index, average="macro"),
    "Jaccard, Lovasz": _multiclass(F.soft_jaccard_index, average="macro",
                                   relaxation="lovasz"),
    "Tversky, multilabel": _multilabel(F.soft_tversky_index, alpha=0.3, beta=0.7),
    "MCC, multiclass": _multiclass(F.soft_matthews_corrcoef),
    "MCC, binary": _binary(F.soft_matthews_corrcoef),
    "kappa, multiclass": _multiclass(F.soft_cohen_kappa),
    "stat scores, multiclass": _multiclass(F.soft_stat_scores),
    "exact match, multilabel": _multilabel(F.soft_exact_match),
    "top-2 accuracy": _multiclass(F.soft_top_k_accuracy, k=2),
    "AUROC, binary": _binary(F.soft_auroc),
    "AP, multiclass": _multiclass(F.soft_average_precision),
    "calibrated AP, multilabel": _multilabel(F.soft_calibrated_average_precision),
    "NDCG": _retrieval(F.soft_ndcg),
    "precision@2": _retrieval(F.soft_precision_at_k, k=2),
    "recall@2": _retrieval(F.soft_recall_at_k, k=2),
    "reciprocal rank": _retrieval(F.soft_reciprocal_rank),
    "retrieval AP": _retrieval(F.soft_retrieval_average_precision),
    "soft BLEU": _soft_bleu,
}

TINY = [1e-30, 2.0**-70, 1e-40, 1e-300, 5e-324]


def _value(out) -> torch.Tensor:
    return torch.stack(list(out)).double() if isinstance(out, tuple) else out.double()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_tiny_temperature_gives_the_exact_value_and_finite_gradients(name, dtype):
    """z / tau overflows to inf for a small enough tau, and inf - inf in the softmax or
    0 * inf in a backward pass is NaN: every positive temperature below
    `MIN_TEMPERATURE` acts as it, where the decisions of untied logits are exact."""
    x, call = CALLS[name](dtype, 0)
    exact = _value(call(x))
    for tau in [*TINY, torch.tensor(1e-40), torch.tensor(1e-300, dtype=torch.float64),
                torch.tensor(1e-30, requires_grad=True)]:
        x, call = CALLS[name](dtype, tau)
        z = x.clone().requires_grad_()
        value = call(z)
        torch.testing.assert_close(_value(value), exact, atol=1e-6, rtol=0,
                                   msg=lambda m, tau=tau: f"{name}, temperature {tau}: {m}")
        total = _value(value).sum()
        grads = torch.autograd.grad(total, [z] + ([tau] if isinstance(tau, torch.Tensor)
                                                  and tau.requires_grad else []),
                                    allow_unused=True)
        for grad in grads:
            assert grad is None or bool(torch.isfinite(grad).all()), (name, tau)


def test_the_floor_is_where_float32_logits_stay_finite():
    """`MIN_TEMPERATURE` = 2^-63 is the square root of float32's smallest normal number:
    logits up to 3.7e19 in magnitude stay finite when divided by it."""
    assert _relax.MIN_TEMPERATURE == 2.0**-63 == torch.finfo(torch.float32).tiny ** 0.5
    assert _relax.temperature_scale(1e-40) == 2.0**-63
    assert _relax.temperature_scale(0.25) == 0.25
    assert float(_relax.temperature_scale(torch.tensor([1e-40]))) == 2.0**-63
    big = torch.tensor([3.6e19, -3.6e19])
    assert bool(torch.isfinite(big / _relax.MIN_TEMPERATURE).all())


@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan"), float("inf")])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_tensor_temperature_must_be_positive(name, bad):
    """A number temperature < 0 is refused when the call is made; a tensor one (a learned
    temperature) by the data checks of `validate_args`, in the same host
    synchronisation as the other checks. Only the number 0 selects the exact metric."""
    x, call = CALLS[name](torch.float32, torch.tensor(bad))
    with pytest.raises(ValueError, match=r"expected `temperature` to be finite and > 0 when "
                                         r"a tensor \(only the number 0 is exact\), got "
                                         r"tensor"):
        call(x)
    x, call = CALLS[name](torch.float32, torch.tensor(bad), validate_args=False)
    call(x)  # not checked: no host synchronisation


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_infinite_temperature_is_refused(name):
    """At an infinite temperature every relaxed decision is a coin flip and no gradient
    flows: a number temperature of inf is refused with the options, as NaN is."""
    x, call = CALLS[name](torch.float32, float("inf"))
    with pytest.raises(ValueError, match=r"expected `temperature` to be finite, got inf"):
        call(x)


@pytest.mark.parametrize("make", [
    lambda: softmetrics.SoftF1Loss(task="binary", temperature=float("inf")),
    lambda: softmetrics.SoftNDCGLoss(temperature=float("inf")),
    lambda: softmetrics.SoftRecallAtKLoss(k=2, cutoff_temperature=float("inf")),
    lambda: softmetrics.SoftBLEULoss(temperature=float("inf")),
    lambda: softmetrics.InfoNCELoss(temperature=float("inf"))])
def test_a_loss_module_refuses_an_infinite_temperature(make):
    with pytest.raises(ValueError, match=r"to be finite, got inf"):
        make()


def test_an_infinite_number_scale_is_refused():
    """SigLIP's logit scale multiplies the similarities: inf makes every logit inf."""
    q = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1)
    with pytest.raises(ValueError, match=r"`logit_scale` to be finite, got inf"):
        F.sigmoid_contrastive_loss(q, q, logit_scale=float("inf"))
    for learnable in (False, True):  # the Module refuses it when built, naming itself
        with pytest.raises(ValueError, match=r"^SigLIPLoss: expected `logit_scale` to be "
                                             r"finite, got inf"):
            softmetrics.SigLIPLoss(logit_scale=float("inf"), learnable=learnable,
                                   max_logit_scale=float("inf"))


@pytest.mark.parametrize("loss", [
    functools.partial(softmetrics.SoftF1Loss, task="multiclass", num_classes=4),
    functools.partial(softmetrics.SoftAUROCLoss, task="multiclass", num_classes=4),
    functools.partial(softmetrics.LovaszLoss, task="multiclass", num_classes=4)])
def test_a_loss_module_with_a_tiny_temperature_trains(loss):
    x, g = _data(6, torch.float32)
    y = torch.randint(0, 4, (24,), generator=g)
    z = x.clone().requires_grad_()
    value = loss(temperature=1e-40)(z, y)
    value.backward()
    assert bool(torch.isfinite(value)) and bool(torch.isfinite(z.grad).all())


@pytest.mark.parametrize("loss", [
    functools.partial(softmetrics.SoftAUROCLoss, task="binary"),
    functools.partial(softmetrics.SoftNDCGLoss),
    functools.partial(softmetrics.SoftBLEULoss)])
def test_a_module_keeps_a_tensor_temperature_it_can_use_at_every_step(loss):
    """A tensor temperature is kept as a buffer (it moves and saves with the Module), an
    `nn.Parameter` as a parameter (learned). A tensor computed from a parameter
    (`log_t.exp()`) would keep the graph of the step that made it, so the second step's
    backward would fail: refused, with what to pass instead."""
    assert "temperature" in dict(loss(temperature=torch.tensor(0.5)).named_buffers())
    learned = torch.nn.Parameter(torch.tensor(0.5))
    assert dict(loss(temperature=learned).named_parameters())["temperature"] is learned
    log_t = torch.nn.Parameter(torch.tensor(-1.0))
    with pytest.raises(TypeError, match=r"expected `temperature` to be a number, an "
                                        r"nn.Parameter or a tensor that does not require"):
        loss(temperature=log_t.exp())
