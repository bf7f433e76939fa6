"""Second derivatives through the hand-written backwards: with `create_graph=True` every
custom autograd Function falls back to a differentiable formula, so `gradgradcheck`
holds and a gradient penalty gets the true second derivative."""

import pytest
import torch

import softmetrics.functional as F
from softmetrics import SoftF1Loss
from softmetrics.functional._classification_counts import decision_counts


def _logits(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()


def _labels(high, *shape, seed=1):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("samplewise", [False, True])
def test_soft_f1_gradgradcheck(task, samplewise):
    shape = (5, 3, 2) if task != "binary" else (5, 2)
    x = _logits(*shape)
    y = _labels(3 if task == "multiclass" else 2, *(shape if task != "multiclass"
                                                     else (5, 2)))
    kw = dict(task=task, multidim_average="samplewise" if samplewise else "global")
    if task != "binary":
        kw["num_classes"] = 3
    assert torch.autograd.gradgradcheck(
        lambda z: F.soft_f1_score(z, y, temperature=0.7, threshold=0.4, **kw), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("task", "average"), [("binary", "micro"), ("multiclass", "micro"),
                                               ("multilabel", "macro")])
def test_mcc_where_its_denominator_is_zero_has_zero_second_derivatives(task, average, dtype):
    """Where MCC's denominator is 0 (a constant target) the value is the constant
    `zero_division`: first and second derivatives 0. The branch `where` drops divided by
    the rsqrt of the smallest normal number, whose backward cubes it (inf in float64
    too), and 0 * inf made the second derivative NaN: a gradient penalty was NaN."""
    shape = (6,) if task == "binary" else (6, 3)
    z = _logits(*shape).to(dtype).detach().requires_grad_()
    y = torch.ones(shape, dtype=torch.long) if task != "multiclass" else torch.ones(6).long()
    num_classes = None if task == "binary" else 3
    value = F.soft_matthews_corrcoef(z, y, task=task, num_classes=num_classes,
                                     average=average, temperature=0.5)
    (grad,) = torch.autograd.grad(value, z, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum() + (grad**2).sum(), z)
    assert not grad.any() and not second.any(), (grad, second)


def test_weighted_counts_gradgradcheck():
    """Sample weights (the ignored entries) take part in the differentiable backward."""
    x = _logits(6, 3)
    y = _labels(3, 6)
    y[0] = -1
    assert torch.autograd.gradgradcheck(
        lambda z: F.soft_f1_score(z, y, task="multiclass", num_classes=3, ignore_index=-1,
                                  temperature=0.5), (x,))


@pytest.mark.parametrize("k", [1, 2])
def test_soft_top_k_accuracy_gradgradcheck(k):
    x = _logits(6, 4)
    y = _labels(4, 6)
    assert torch.autograd.gradgradcheck(
        lambda z: F.soft_top_k_accuracy(z, y, num_classes=4, k=k, temperature=0.6), (x,))


@pytest.mark.parametrize("samplewise", [False, True])
def test_softmax_counts_create_graph_then_retained_backwards(samplewise):
    """A differentiable backward leaves the saved probabilities intact: ordinary
    backwards through the retained graph afterwards give the same first derivative."""
    x = _logits(7, 3)
    y = _labels(3, 7)
    tp, pred = decision_counts(x, y, None, task="multiclass", temperature=0.5,
                               threshold=0.5, samplewise=samplewise)
    loss = (tp * torch.arange(1.0, tp.numel() + 1, dtype=x.dtype).view_as(tp)).sum() \
        - pred.pow(2).sum()
    (graph,) = torch.autograd.grad(loss, x, create_graph=True, retain_graph=True)
    assert graph.requires_grad
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(graph.detach(), first)
    torch.testing.assert_close(first, second)


RETAINED = {
    "soft-targets": lambda x: 1 - F.soft_f1_score(
        x, torch.softmax(_logits(7, 5, seed=2).detach(), 1), task="multiclass",
        num_classes=5, temperature=0.5),
    "kappa-quadratic": lambda x: 1 - F.soft_cohen_kappa(
        x, _labels(5, 7), task="multiclass", num_classes=5, weights="quadratic",
        temperature=0.5),
}


@pytest.mark.parametrize("small", [True, False])
@pytest.mark.parametrize("case", sorted(RETAINED))
def test_fused_softmax_functions_through_retained_graph(case, small, monkeypatch):
    """The first ordinary backward writes the gradient over the saved probabilities; a
    differentiable backward before it leaves them intact, and a second ordinary backward
    through the retained graph recomputes them: all three give the same gradient, on the
    small inputs' plain path and on the padded, blocked one."""
    from softmetrics import _tuning

    if not small:
        monkeypatch.setattr(_tuning, "SMALL_COUNTS_ENTRIES", 0)
    x = _logits(7, 5)
    loss = RETAINED[case](x)
    (graph,) = torch.autograd.grad(loss, x, create_graph=True, retain_graph=True)
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(graph.detach(), first)
    torch.testing.assert_close(first, second)


def test_info_nce_tiled_gradgradcheck():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

    def loss(q, k, neg, tau):
        return F.info_nce(q, k, negatives=neg, temperature=tau, chunk_size=2,
                          query_negatives=True)

    def symmetric(q, k, tau):
        return F.info_nce(q, k, temperature=tau, chunk_size=2, symmetric=True,
                          query_negatives=True, reduction="sum")

    assert torch.autograd.gradgradcheck(loss, (q, k, neg, tau))
    assert torch.autograd.gradgradcheck(symmetric, (q, k, tau))
    # a number as the temperature, without normalisation
    assert torch.autograd.gradgradcheck(
        lambda q, k: F.info_nce(q, k, temperature=0.5, chunk_size=2, normalize=False),
        (q, k))


@pytest.mark.parametrize("fn", [F.soft_average_precision, F.soft_auroc])
def test_ranking_tiled_gradgradcheck(fn):
    x = _logits(7, 3)
    y = _labels(2, 7, 3)
    assert torch.autograd.gradgradcheck(
        lambda z: fn(z, y, task="multilabel", num_classes=3, temperature=0.4, chunk_size=2),
        (x,))


def test_soft_bleu_gradgradcheck():
    x = _logits(2, 4, 6)
    ref = torch.tensor([[1, 2, 3, 4], [2, 2, 5, 0]])
    assert torch.autograd.gradgradcheck(
        lambda z: F.soft_bleu_score(z, ref, temperature=0.8, max_order=2), (x,))


def test_soft_f1_loss_gradient_penalty_matches_finite_differences():
    """A gradient penalty through `SoftF1Loss` on the logits of a linear model: the
    second derivative is the finite difference of the first (a first-order backward
    would miss the terms through the softmax Jacobian)."""
    g = torch.Generator().manual_seed(3)
    inputs = torch.randn(8, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    loss_fn = SoftF1Loss(task="multiclass", num_classes=3, temperature=0.5)

    def penalty(scale: torch.Tensor) -> torch.Tensor:
        # the squared norm of the loss's gradient in the inputs, at weights `scale * W`
        (grad,) = torch.autograd.grad(loss_fn(inputs @ (scale * weight), y), inputs,
                                      create_graph=True)
        return grad.pow(2).sum()

    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (second,) = torch.autograd.grad(penalty(scale), scale)
    h = 1e-5
    finite = (penalty(torch.tensor(1.0 + h, dtype=torch.float64)).detach()
              - penalty(torch.tensor(1.0 - h, dtype=torch.float64)).detach()) / (2 * h)
    torch.testing.assert_close(second, finite, rtol=1e-6, atol=1e-10)


def _graph_cases():
    """(name, function, inputs): a loss through each hand-written backward, on inputs
    that take it (tiles, fused counts) and have every pass of it (self masks, positives,
    negatives, a learnable temperature, scale and bias)."""
    q, k, neg = _logits(5, 3, seed=0), _logits(5, 3, seed=1), _logits(3, 3, seed=2)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    mix = _logits(3, 3, seed=5)
    x, y = _logits(7, 3, seed=3), _labels(2, 7, 3)
    yc = _labels(3, 7)
    ref = torch.tensor([[1, 2, 3, 4], [2, 2, 5, 0]])
    return [
        ("info_nce negatives", lambda q, k, n, t: F.info_nce(
            q, k, negatives=n, temperature=t, chunk_size=2, query_negatives=True),
         (q, k, neg, tau)),
        ("info_nce symmetric", lambda q, k, t: F.info_nce(
            q, k, temperature=t, chunk_size=2, symmetric=True, query_negatives=True,
            reduction="sum"), (q, k, tau)),
        ("info_nce own block first", lambda q, k, t: F.info_nce(
            q, k, temperature=t, chunk_size=2, in_batch_negatives=False,
            query_negatives=True), (q, k, tau)),
        ("info_nce unnormalized", lambda q, k: F.info_nce(
            q, k, temperature=0.5, chunk_size=2, normalize=False), (q, k)),
        ("siglip", lambda q, k, s, b: F.sigmoid_contrastive_loss(
            q, k, logit_scale=s, logit_bias=b, chunk_size=2, reduction="none"),
         (q, k, scale, bias)),
        # keys computed from the queries: each input's own partial derivative counts
        ("info_nce keys from queries", lambda q, m, t: F.info_nce(
            q, q @ m, temperature=t, chunk_size=2, symmetric=True), (q, mix, tau)),
        ("siglip keys from queries", lambda q, m, s: F.sigmoid_contrastive_loss(
            q, q @ m, logit_scale=s, logit_bias=-1.0, chunk_size=2), (q, mix, scale)),
        ("soft AP tiles", lambda z: F.soft_average_precision(
            z, y, task="multilabel", num_classes=3, temperature=0.4, chunk_size=2), (x,)),
        ("multiclass soft AP tiles", lambda z: F.soft_average_precision(
            z, yc, task="multiclass", num_classes=3, temperature=0.4, chunk_size=2), (x,)),
        ("multiclass soft AP one row", lambda z: F.soft_average_precision(
            z, yc, task="multiclass", num_classes=3, temperature=0.4, chunk_size=2,
            average="micro"), (x,)),
        ("soft AUROC tiles", lambda z: F.soft_auroc(
            z, y, task="multilabel", num_classes=3, temperature=0.4, chunk_size=2), (x,)),
        ("soft BLEU", lambda z: F.soft_bleu_score(z, ref, temperature=0.8, max_order=2),
         (_logits(2, 4, 6, seed=4),)),
        ("soft F1 counts", lambda z: F.soft_f1_score(
            z, yc, task="multiclass", num_classes=3, temperature=0.5, average="macro"), (x,)),
        ("soft MCC multilabel", lambda z: F.soft_matthews_corrcoef(
            z, y, task="multilabel", num_classes=3, temperature=0.5, threshold=0.3), (x,)),
        ("soft F1 soft targets", lambda z: F.soft_f1_score(
            z, torch.softmax(_logits(7, 3, seed=6).detach(), 1), task="multiclass",
            num_classes=3, temperature=0.5, average="macro"), (x,)),
        ("soft kappa", lambda z: F.soft_cohen_kappa(
            z, yc, task="multiclass", num_classes=3, temperature=0.5, weights="quadratic"),
         (x,)),
        ("soft top-2 accuracy", lambda z: F.soft_top_k_accuracy(
            z, yc, k=2, num_classes=3, temperature=0.5), (x,)),
    ]


@pytest.mark.parametrize("case", range(len(_graph_cases())),
                         ids=[name for name, _, _ in _graph_cases()])
def test_building_a_graph_gives_the_same_first_derivative(case):
    """With `create_graph=True` a hand-written backward differentiates a reference formula
    instead of running its own code: that first derivative must be the same one.
    `gradgradcheck` alone would not see a wrong reference, only that its second derivative
    is consistent with it."""
    _, fn, inputs = _graph_cases()[case]
    g = torch.Generator().manual_seed(case)
    out = fn(*inputs)
    weights = torch.rand(out.shape, generator=g, dtype=out.dtype) + 0.5
    plain = torch.autograd.grad((out * weights).sum(), inputs)
    built = torch.autograd.grad((fn(*inputs) * weights).sum(), inputs, create_graph=True)
    assert all(b.requires_grad for b in built)
    for a, b in zip(plain, built, strict=True):
        torch.testing.assert_close(a, b.detach(), atol=1e-12, rtol=1e-10)
