"""Robustness of the classification surrogates: fuzzing, autocast, torch.compile."""

from __future__ import annotations

import functools
import os

import pytest
import torch
from hypothesis import event, given, settings, strategies as st

import softmetrics
from softmetrics import functional as F

FUZZ_EXAMPLES = int(os.environ.get("SOFTMETRICS_FUZZ_EXAMPLES", "300"))

FUNCTIONS = [F.soft_accuracy, F.soft_precision, F.soft_recall, F.soft_f1_score,
             F.soft_fbeta_score, F.soft_jaccard_index, F.soft_tversky_index,
             F.soft_matthews_corrcoef, F.soft_top_k_accuracy, F.soft_stat_scores,
             functools.partial(F.soft_jaccard_index, relaxation="lovasz")]
MODULES = [softmetrics.SoftAccuracyLoss, softmetrics.SoftPrecisionLoss,
           softmetrics.SoftRecallLoss, softmetrics.SoftF1Loss, softmetrics.SoftFBetaLoss,
           softmetrics.SoftJaccardLoss, softmetrics.SoftTverskyLoss, softmetrics.SoftMCCLoss,
           softmetrics.SoftTopKAccuracyLoss, softmetrics.LovaszLoss]


@st.composite
def fuzz_case(draw):
    """Arguments that are usually valid and sometimes not, in every shape and dtype."""
    task = draw(st.sampled_from(["binary", "multiclass", "multilabel"] * 3 + ["ternary"]))
    c = draw(st.integers(1, 6))
    n = draw(st.integers(0, 9))
    extra = draw(st.sampled_from([(), (2,), (2, 3)]))
    dtype = draw(st.sampled_from([torch.float16, torch.bfloat16, torch.float32,
                                  torch.float64] * 3 + [torch.int64]))
    scale = draw(st.sampled_from([1.0, 30.0, 1e4]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    in_shape = (n, *extra) if task == "binary" else (n, c, *extra)
    if draw(st.integers(0, 9)) == 0:  # a wrong shape now and then
        in_shape = (*in_shape, 2)
    x = torch.randn(in_shape, generator=g) * scale
    x = x.to(dtype) if dtype != torch.int64 else x.round().long()
    t_shape = (n, *extra) if task in ("multiclass", "binary") else (n, c, *extra)
    high = c + draw(st.integers(0, 1)) if task == "multiclass" else 2
    y = torch.randint(0, max(high, 1), t_shape, generator=g)
    if draw(st.integers(0, 3)) == 0:
        y = y.float()
    if draw(st.integers(0, 3)) == 0:  # soft targets: probabilities of the input's shape
        y = torch.rand(in_shape, generator=g) * draw(st.sampled_from([1.0, 1.0, 2.0]))
        if task == "multiclass" and len(in_shape) > 1 and draw(st.booleans()):
            y = y / y.sum(1, keepdim=True).clamp_min(1e-6)
    def pick(valid, bad):
        """Mostly valid values, a bad one about one time in ten."""
        return draw(st.sampled_from(list(valid) * (3 * len(bad)) + list(bad)))

    options = dict(
        task=task,
        num_classes=pick([c], [None, c + 1, 0]),
        average=pick(["micro", "macro", "weighted", "none"], ["mean"]),
        temperature=pick([0, 1e-3, 0.5, 1.0, 10.0], [-1.0]),
        threshold=pick([0.5, 0.01, 0.99], [1.0]),
        ignore_index=draw(st.sampled_from([None, 255, -1, 0])),
        multidim_average=draw(st.sampled_from(["global", "samplewise"])),
        zero_division=pick([0.0, 1.0], [2.0]),
        absent_classes=pick([None, None, "skip", "include"], ["drop"]),
        class_weights=pick([None, None, None, "generalized", torch.rand(c, generator=g) + 0.1,
                            torch.rand(c, generator=g).double()],
                           [torch.ones(c + 1), -torch.ones(c)]),
    )
    return x, y, options


def _finite(value) -> bool:
    tensors = value if isinstance(value, tuple) else (value,)
    return all(bool(torch.isfinite(t).all()) for t in tensors)


@settings(max_examples=FUZZ_EXAMPLES)
@given(case=fuzz_case(), index=st.integers(0, len(FUNCTIONS) - 1),
       top_k=st.sampled_from([1, 1, 2, 3]))
def test_fuzz_functions(case, index, top_k):
    x, y, options = case
    fn = FUNCTIONS[index]
    if fn in (F.soft_precision, F.soft_recall, F.soft_f1_score, F.soft_fbeta_score):
        options = options | {"top_k": top_k}
    if fn is F.soft_top_k_accuracy:
        options = {k: v for k, v in options.items() if k != "threshold"} | {"k": 2}
    if fn in (F.soft_stat_scores,):
        options = {k: v for k, v in options.items()
                   if k not in ("average", "zero_division", "absent_classes", "class_weights")}
    if x.is_floating_point():
        x.requires_grad_()
    try:
        value = fn(x, y, **options)
    except (ValueError, TypeError):
        event("rejected with a documented error")
        return
    event("accepted")
    assert _finite(value)
    out = value if isinstance(value, torch.Tensor) else value.tp
    if out.requires_grad and out.numel():
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(grad).all()


@settings(max_examples=FUZZ_EXAMPLES // 3)
@given(case=fuzz_case(), index=st.integers(0, len(MODULES) - 1))
def test_fuzz_modules(case, index):
    x, y, options = case
    cls = MODULES[index]
    if cls is softmetrics.SoftTopKAccuracyLoss:
        options = {k: v for k, v in options.items() if k not in ("threshold", "task")}
    try:
        loss_fn = cls(**options)
    except (ValueError, TypeError):
        return
    if x.is_floating_point():
        x.requires_grad_()
    try:
        loss = loss_fn(x, y)
    except (ValueError, TypeError):
        return
    assert _finite(loss)
    if loss.requires_grad and loss.numel():
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert torch.isfinite(grad).all()
    assert _finite(loss_fn.metric(x, y))


@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
def test_autocast_bfloat16_on_cpu(cls):
    """Under CPU autocast a bf16 matmul feeds the loss: the statistics stay in float32."""
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(16, 5)
    x = torch.randn(256, 16, generator=g)
    y = torch.randint(0, 5, (256,), generator=g)
    kw = dict(num_classes=5) if cls is softmetrics.SoftTopKAccuracyLoss else dict(
        task="multiclass", num_classes=5)
    y[::7] = -1  # ignored entries: the weighted sums are matrix products
    loss_fn = cls(ignore_index=-1, **kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        assert logits.dtype == torch.bfloat16
        loss = loss_fn(logits, y)
    assert loss.dtype == torch.float32
    reference = loss_fn(layer(x), y)
    torch.testing.assert_close(loss, reference, atol=2e-2, rtol=0)
    # the same bf16 logits without autocast: the statistics are not rounded again
    torch.testing.assert_close(loss, loss_fn(logits.detach().float(), y), atol=1e-6, rtol=0)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.compile
@pytest.mark.slow
@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_compile_fullgraph(cls, task):
    """Forward and backward compile with no graph break, with the default
    `validate_args=True` (the checks that read data are skipped while compiling)."""
    if cls is softmetrics.SoftTopKAccuracyLoss and task != "multiclass":
        pytest.skip("top-k is multiclass only")
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    if task == "binary":
        x, y = torch.randn(64, 3, generator=g), torch.randint(0, 2, (64, 3), generator=g)
        kw = dict(task=task)
    elif task == "multiclass":
        x, y = torch.randn(64, 5, generator=g), torch.randint(0, 5, (64,), generator=g)
        kw = dict(num_classes=5) if cls is softmetrics.SoftTopKAccuracyLoss else dict(
            task=task, num_classes=5)
    else:
        x, y = torch.randn(64, 5, generator=g), torch.randint(0, 2, (64, 5), generator=g)
        kw = dict(task=task, num_classes=5)
    loss_fn = cls(**kw)
    compiled = torch.compile(loss_fn, fullgraph=True)
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    a, b = compiled(xa, y), loss_fn(xb, y)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fn", [F.soft_precision, F.soft_f1_score, F.soft_jaccard_index])
def test_subnormal_predicted_mass_has_finite_gradients(fn, dtype):
    """At temperature 1e-3 a class can keep a subnormal predicted mass (here e^-89 in
    float32, e^-710 in float64); a ratio over it had a slope of order 1 / tiny, which the
    softmax backward's factor 1 / tau took to inf (found by the random-example run, soft
    precision on label-smoothed targets). Ratios over denominators below the square root
    of `tiny` now go continuously to 0 as the denominator does."""
    shift = 0.0893 if dtype == torch.float32 else 0.71
    x = torch.tensor([[0.0, -shift], [0.0, -2.4]], dtype=dtype, requires_grad=True)
    for y in (torch.tensor([0, 0]), torch.tensor([[0.9, 0.1], [0.8, 0.2]], dtype=dtype)):
        value = fn(x, y, task="multiclass", num_classes=2, temperature=1e-3)
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(value) and torch.isfinite(grad).all()
