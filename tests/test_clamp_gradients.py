"""Gradients at a bound, the same in every torch release.

Up to 2.13 the gradient of torch's `clamp`, `clamp_min` and `clamp_max` passes at the bound
itself; from 2.14 it is 0 there when the bound is a number (the minimum-norm subgradient;
with a tensor as the bound each side gets half), and `F.normalize`, which clamps the norm,
changed with it. The library reaches such bounds: a learned temperature started at its
floor (`InfoNCELoss(temperature=0.01, learn_temperature=True)` would never learn on 2.14),
a soft score of exactly 1 under the focal Tversky power, a row of norm exactly at the
normalisation's floor. Its differentiable bounds go through `_relax.bounded`, which passes
the gradient at the bound in every release, as the library has documented and tested.

Here no loss of the package clamps a tensor that requires a gradient (nor calls
`F.normalize` on one), and the gradients at the bounds are the documented ones, on the
installed torch and under `MinimumNormClamps`, which gives the clamps of an older torch the
gradients of 2.14, so that the check does not depend on the release that runs it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import softmetrics
from softmetrics import _relax
from softmetrics.functional import info_nce, sigmoid_contrastive_loss
from softmetrics.functional._classification_formulas import focal
from softmetrics.functional._infonce_tiles import NORM_EPS, normalize_rows, normalized

from .test_func_transforms import NAMES, _cases

CLAMPS = {torch.clamp, torch.clip, torch.clamp_min, torch.clamp_max, torch.Tensor.clamp,
          torch.Tensor.clip, torch.Tensor.clamp_min, torch.Tensor.clamp_max,
          torch.Tensor.clamp_, torch.Tensor.clip_, torch.Tensor.clamp_min_,
          torch.Tensor.clamp_max_}


def _bounds(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    rest = [*args[1:], None, None]
    if func in (torch.clamp_max, torch.Tensor.clamp_max, torch.Tensor.clamp_max_):
        return None, kwargs.get("max", rest[0])
    return kwargs.get("min", rest[0]), kwargs.get("max", rest[1])


def _min_norm_clamp(x: torch.Tensor, low: Any, high: Any) -> torch.Tensor:
    """torch 2.14's clamp with numbers as bounds: no gradient at a bound itself."""
    inside = torch.ones_like(x, dtype=torch.bool)
    if low is not None:
        inside &= x > low
    if high is not None:
        inside &= x < high
    return torch.where(inside, x, x.detach().clamp(low, high))


class MinimumNormClamps(TorchFunctionMode):
    """Records every clamp (and `F.normalize`) of a tensor that requires a gradient in
    `seen`; with `emulate`, computes them with torch 2.14's gradient at the bound."""

    def __init__(self, emulate: bool = False) -> None:
        super().__init__()
        self.emulate = emulate
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        x = args[0] if args else kwargs.get("input")
        differentiable = isinstance(x, torch.Tensor) and x.requires_grad
        if differentiable and func in CLAMPS:
            self.seen.append(getattr(func, "__name__", str(func)))
            low, high = _bounds(func, args, kwargs)
            if self.emulate and not isinstance(low, torch.Tensor) \
                    and not isinstance(high, torch.Tensor) and not func.__name__.endswith("_"):
                return _min_norm_clamp(x, low, high)
        if differentiable and func is F.normalize:
            self.seen.append("normalize")
            if self.emulate:
                dim, eps = kwargs.get("dim", 1), kwargs.get("eps", 1e-12)
                norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
                return x / _min_norm_clamp(norm, eps, None)
        return func(*args, **kwargs)


def test_the_emulation_is_torch_2_14s_clamp():
    """`MinimumNormClamps(emulate=True)` gives a clamp with a number as its bound no
    gradient at the bound, the same values, and elsewhere the gradient of a clamp."""
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    for call in (lambda t: t.clamp(0.0, 1.0), lambda t: torch.clamp_min(t, 0.0),
                 lambda t: t.clamp_max(1.0), lambda t: torch.clamp(t, max=1.0)):
        with MinimumNormClamps(emulate=True) as mode:
            y = call(x)
            (g,) = torch.autograd.grad(y.sum(), x)
        assert len(mode.seen) == 1
        assert torch.equal(y, call(x.detach()))
        lo = 0.0 if call(torch.tensor(-1.0)) == 0 else -math.inf
        hi = 1.0 if call(torch.tensor(2.0)) == 1 else math.inf
        assert g.tolist() == [float(lo < v < hi) for v in x.tolist()]
    with MinimumNormClamps(emulate=True):
        (g,) = torch.autograd.grad(F.normalize(x[None, 3:4], dim=1, eps=1.0).sum(), x)
    assert g[3] == 1.0  # |x| == eps: x / eps, nothing through the norm (x / |x| has 0)


@pytest.mark.parametrize("name", NAMES)
def test_no_loss_clamps_a_tensor_that_requires_a_gradient(name):
    """Every loss of the package (tiled paths forced where it has them) computes its
    value without torch's clamps or `F.normalize` on a differentiable tensor."""
    loss, x = _cases(torch.device("cpu"))[name]
    x = x.clone().requires_grad_()
    with MinimumNormClamps() as mode:
        loss(x).backward()
    assert mode.seen == []


def _learned() -> dict[str, tuple[torch.nn.Module, torch.Tensor, float]]:
    """Loss Modules whose learned temperature or scale starts at its bound, with the
    parameter and the value of the bound."""
    info = softmetrics.InfoNCELoss(temperature=0.01, learn_temperature=True, min_temperature=0.01)
    siglip = softmetrics.SigLIPLoss(logit_scale=100.0, max_logit_scale=100.0)
    return {"InfoNCELoss": (info, info.log_temperature, math.log(0.01)),
            "SigLIPLoss": (siglip, siglip.log_logit_scale, math.log(100.0))}


@pytest.mark.parametrize("emulate", [False, True], ids=["installed", "2.14-clamp"])
@pytest.mark.parametrize("name", ["InfoNCELoss", "SigLIPLoss"])
def test_a_learned_temperature_started_at_its_bound_learns(name, emulate):
    """A temperature (scale) started at its bound gets the gradient the loss has at that
    temperature, the unbounded parameter's: it can move back inside; beyond the bound
    none. The constructor allows starting there."""
    loss_fn, param, bound = _learned()[name]
    assert param.item() == torch.tensor(bound, dtype=param.dtype).item()  # at the bound
    g = torch.Generator().manual_seed(0)
    q = torch.randn(8, 4, generator=g)
    k = q + 0.5 * torch.randn(8, 4, generator=g)
    with MinimumNormClamps(emulate=emulate):
        (ours,) = torch.autograd.grad(loss_fn(q, k), param)
    free = param.detach().clone().requires_grad_()
    if name == "InfoNCELoss":
        value = info_nce(q, k, temperature=free.exp())
    else:
        value = sigmoid_contrastive_loss(q, k, logit_scale=free.exp(),
                                         logit_bias=loss_fn.logit_bias)
    (expected,) = torch.autograd.grad(value, free)
    assert expected != 0
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=0)
    with torch.no_grad():  # beyond the bound the value stays at it and no gradient flows
        param.add_(-0.5 if name == "InfoNCELoss" else 0.5)
    (beyond,) = torch.autograd.grad(loss_fn(q, k), param)
    assert beyond == 0


@pytest.mark.parametrize("emulate", [False, True], ids=["installed", "2.14-clamp"])
def test_focal_power_at_a_score_of_one_has_the_chords_slope(emulate):
    """At a soft score of exactly 1 (`1 - T = 0`) the focal power's slope is its chord's,
    `eps^(gamma - 1)`, as just below; above 1 (rounding) none."""
    eps = torch.finfo(torch.float64).eps
    t = torch.tensor([1.0, 1.0 - eps / 2, 1.0 + eps], dtype=torch.float64, requires_grad=True)
    with MinimumNormClamps(emulate=emulate):
        (slope,) = torch.autograd.grad(focal(t, 0.5).sum(), t)
    assert slope.tolist() == [eps ** -0.5, eps ** -0.5, 0.0]


def _rows_at_the_floor(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, generator=g, dtype=dtype)
    x[1] = torch.tensor([NORM_EPS, 0.0, 0.0], dtype=dtype)  # exactly at the floor
    x[2] = 0.0
    x[3] *= 1e-14 / x[3].norm()  # below it
    assert torch.linalg.vector_norm(x[1]) == NORM_EPS
    return x


@pytest.mark.parametrize("emulate", [False, True], ids=["installed", "2.14-clamp"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalisation_at_its_floor_passes_the_gradient_through_the_norm(dtype, emulate):
    """`normalized` has F.normalize's values bit for bit; at the floor itself its gradient
    goes through the norm (`(g - y <g, y>) / eps`), below it not (`g / eps`), and the
    hand-written backward of `normalize_rows` agrees with it."""
    x = _rows_at_the_floor(dtype)
    g = torch.randn(6, 3, generator=torch.Generator().manual_seed(2), dtype=dtype)
    with MinimumNormClamps(emulate=emulate):
        plain, fused = x.clone().requires_grad_(), x.clone().requires_grad_()
        y = normalized(plain)
        (want,) = torch.autograd.grad(y, plain, g)
        (got,) = torch.autograd.grad(normalize_rows(fused), fused, g)
    assert torch.equal(y, F.normalize(x, dim=1, eps=NORM_EPS))
    y = y.detach()
    projected = (g - y * (g * y).sum(1, keepdim=True)) / NORM_EPS
    tol = 1e-13 if dtype == torch.float64 else 1e-6  # of each row's largest entry
    scale = projected.abs().amax(1, keepdim=True).clamp_min(1.0)
    assert ((want[1] - projected[1]).abs() / scale[1]).max() <= tol
    assert torch.equal(want[2:4], g[2:4] / NORM_EPS)
    assert ((got - want).abs() / scale).max() <= tol


@pytest.mark.parametrize("emulate", [False, True], ids=["installed", "2.14-clamp"])
@pytest.mark.parametrize("loss", ["info_nce", "siglip"])
def test_tiles_and_the_full_matrix_agree_at_the_normalisations_floor(loss, emulate):
    """The tiled losses' own normalisation backward treats a row exactly at the floor as
    the full matrix's autograd does (the gradient through the norm), and one below it
    alike (none)."""
    x = _rows_at_the_floor(torch.float64)
    q, k = x[:3].clone(), torch.randn(3, 3, dtype=torch.float64,
                                      generator=torch.Generator().manual_seed(3))
    q[0] = x[3]  # below the floor

    def run(chunk: int | None) -> torch.Tensor:
        qq = q.clone().requires_grad_()
        with MinimumNormClamps(emulate=emulate):
            if loss == "info_nce":
                value = info_nce(qq, k, temperature=0.5, chunk_size=chunk, symmetric=True)
            else:
                value = sigmoid_contrastive_loss(qq, k, chunk_size=chunk)
            (grad,) = torch.autograd.grad(value, qq)
        return grad

    full, tiled = run(None), run(1)
    assert full[1].abs().max() > 1e6  # the floor row's gradient is of size 1 / eps
    torch.testing.assert_close(tiled, full, rtol=1e-9, atol=1e-9 * full.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64])
def test_bounded_is_a_clamp_with_the_gradient_at_its_bounds(dtype):
    """`bounded(x, low, high)` has `clamp`'s values in `x`'s dtype (NaN stays NaN, an
    infinity is bounded) and the gradient 1 inside and at the bounds, 0 outside."""
    x = torch.tensor([-math.inf, -2.0, -1.0, 0.0, 0.25, 1.0, 3.0, math.inf, math.nan],
                     dtype=dtype, requires_grad=True)
    for low, high in ((-1.0, 1.0), (-1.0, None), (None, 1.0)):
        y = _relax.bounded(x, low, high)
        assert y.dtype == dtype
        torch.testing.assert_close(y, x.detach().clamp(low, high), rtol=0, atol=0,
                                   equal_nan=True)
        (g,) = torch.autograd.grad(y.sum(), x)
        lo = -math.inf if low is None else low
        hi = math.inf if high is None else high
        expected = [1.0 if (lo <= v <= hi or math.isnan(v)) else 0.0 for v in x.tolist()]
        assert g.tolist() == expected
