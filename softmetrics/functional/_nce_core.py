"""Machinery of noise-contrastive estimation (`nce_loss`, `NCELoss`): the checks of the
output layer and of the noise distribution, the noise draws, the loss per example and its
exact counterpart, the full-softmax negative log-likelihood.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    DataChecks,
    check_floating,
    check_index_tensor,
    check_ndim,
    check_same_device,
    checks_data,
    fail,
)
from .._relax import compute_dtype, full_precision, promote_floats

__all__ = ["check_generator", "check_noise_distribution", "check_output_layer",
           "nce_per_example", "softmax_nll"]


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------


def check_noise_distribution(fn: str, noise: Tensor, v: int, target: Tensor,
                             validate_args: bool, checks: DataChecks) -> None:
    """Check the `(V,)` noise distribution of `nce_loss`; under `checks_data(validate_args)`
    also, in `checks` (after the target's own check), that it is finite, non-negative,
    sums to 1 and is positive at every `target` class."""
    check_floating(fn, "noise_distribution", noise, "class probabilities")
    if tuple(noise.shape) != (v,):
        fail(fn, "noise_distribution", f"of shape ({v},) (one probability per class)",
             f"shape {tuple(noise.shape)}", raw=True)
    if not checks_data(validate_args):
        return
    q = noise.detach()
    checks.finite(fn, "noise_distribution", q)

    def non_negative() -> None:
        if bool((q < 0).any()):
            fail(fn, "noise_distribution", "non-negative", f"a minimum of {q.min().item():g}",
                 raw=True)

    # half-precision probabilities sum to 1 only up to their rounding
    tol = max(1e-4, torch.finfo(q.dtype).eps)

    def sums_to_one() -> None:
        total = q.double().sum().item()
        if abs(total - 1.0) > tol:
            fail(fn, "noise_distribution", "a distribution summing to 1",
                 f"a sum of {total:g}", raw=True)

    ids = target.long()  # any integer dtype (uint8 would index as a mask)

    def positive_at_targets() -> None:
        at_target = q[ids]
        if bool((at_target <= 0).any()):
            bad = ids[at_target <= 0][0].item()
            fail(fn, "noise_distribution", "> 0 at every target class (NCE scores "
                 "log(num_noise * q(target)))", f"q({bad}) = 0", raw=True)

    checks.add(q.amin() >= 0, non_negative)
    checks.add((q.sum(dtype=torch.float64) - 1.0).abs() <= tol, sums_to_one)
    if target.numel():
        # clamped: a target out of range fails its own check, which comes first
        checks.add((q[ids.clamp(0, v - 1)] > 0).all(), positive_at_targets)


def check_generator(fn: str, generator: torch.Generator | None, input: Tensor) -> None:
    """A noise `generator` must draw on the device type of `input` (torch samples on the
    generator's device; drawing elsewhere and copying would wait for the copy)."""
    if (generator is not None and isinstance(input, Tensor)
            and generator.device.type != input.device.type):
        fail(fn, "generator", f"a torch.Generator on {input.device.type} (the device of "
             f"`input`), e.g. torch.Generator(device={input.device.type!r})",
             f"a generator on {generator.device.type}", raw=True)


def check_output_layer(fn: str, input: Tensor, target: Tensor, weight: Tensor,
                       bias: Tensor | None, validate_args: bool, checks: DataChecks) -> None:
    """Check the hidden states, class ids and output layer of `nce_loss` (and of the exact
    full-softmax counterpart): dtypes, shapes, and (added to `checks`, which the caller
    settles) under `checks_data(validate_args)` the ids and that the tensors are finite."""
    check_floating(fn, "input", input, "hidden states")
    check_index_tensor(fn, "target", target)
    check_floating(fn, "weight", weight, "the output layer's weights")
    check_ndim(fn, "input", input, 2, "a 2-D tensor (N, H)")
    check_ndim(fn, "weight", weight, 2, "a 2-D tensor (V, H)")
    n, h = input.shape
    v = weight.shape[0]
    if weight.shape[1] != h:
        fail(fn, "weight", f"of shape (V, {h}) (H = input.shape[1])",
             f"shape {tuple(weight.shape)}", raw=True)
    if tuple(target.shape) != (n,):
        fail(fn, "target", f"of shape ({n},) (one class id per row of `input`)",
             f"shape {tuple(target.shape)}", raw=True)
    if bias is not None:
        check_floating(fn, "bias", bias, "the output layer's biases")
        if tuple(bias.shape) != (v,):
            fail(fn, "bias", f"of shape ({v},) (V = weight.shape[0])",
                 f"shape {tuple(bias.shape)}", raw=True)
    if v == 0:
        fail(fn, "weight", "at least one class (V >= 1)", f"shape {tuple(weight.shape)}",
             raw=True)
    check_same_device(fn, ("input", input), ("target", target), ("weight", weight),
                      ("bias", bias))
    if checks_data(validate_args):
        checks.values_in(fn, "target", target, 0, weight.shape[0])
        checks.finite(fn, "input", input)
        checks.finite(fn, "weight", weight)
        if bias is not None:
            checks.finite(fn, "bias", bias)


# --------------------------------------------------------------------------------------
# NCE per example
# --------------------------------------------------------------------------------------


# Noise probabilities become integer weights at this scale to be drawn by inversion: their
# running sum is then exact in int64 (classes with less than 2^-53 of the mass are never
# drawn).
_NOISE_WEIGHT_SCALE = 2.0**52


def _draw_by_inversion(q: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    """`count` draws with replacement from the probabilities `q` (V,): the inverse of their
    cumulative distribution, summed in integers, at uniform float64 points."""
    cdf = (q.double() * _NOISE_WEIGHT_SCALE).round_().long().cumsum(0)
    total = cdf[-1:]
    u = torch.rand(count, dtype=torch.float64, device=q.device, generator=generator)
    draws = torch.minimum((u * total).long(), total - 1)
    return torch.searchsorted(cdf, draws, right=True)


def _draw_noise(q: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    """`count` draws with replacement from `q`: `torch.multinomial`, except on CUDA, where
    it sums the probabilities with a floating-point cumsum, which has no deterministic
    kernel there (it raises under `torch.use_deterministic_algorithms(True)`)."""
    if q.device.type == "cuda":
        return _draw_by_inversion(q, count, generator)
    return torch.multinomial(q, count, replacement=True, generator=generator)


def nce_per_example(input: Tensor, target: Tensor, weight: Tensor, bias: Tensor | None, *,
                    num_noise: int, noise_distribution: Tensor | None, shared_noise: bool,
                    generator: torch.Generator | None) -> Tensor:
    """The NCE loss of each example against `num_noise` classes drawn from the noise
    distribution (uniform when None), per example or (`shared_noise`) per batch."""
    target = target.long()  # class ids of any integer dtype (uint8 would index as a mask)
    n, v = input.shape[0], weight.shape[0]
    dtype = compute_dtype(promote_floats(input.dtype, weight.dtype))
    device = input.device
    shape = (num_noise,) if shared_noise else (n, num_noise)
    count = math.prod(shape)
    if noise_distribution is None:
        noise = torch.randint(v, shape, generator=generator, device=device)
        log_q_noise = torch.full(shape, -math.log(v), dtype=dtype, device=device)
        log_q_target = torch.full((n,), -math.log(v), dtype=dtype, device=device)
    else:
        q = noise_distribution.to(device=device, dtype=torch.float32 if
                                  noise_distribution.dtype in (torch.float16, torch.bfloat16)
                                  else noise_distribution.dtype)
        if count:
            noise = _draw_noise(q, count, generator)
        else:  # an empty batch draws nothing (multinomial cannot draw 0 samples)
            noise = torch.zeros(0, dtype=torch.long, device=device)
        noise = noise.view(shape)
        log_q = torch.log(q).to(dtype)
        log_q_noise, log_q_target = log_q[noise], log_q[target]
    log_k = math.log(num_noise)

    x = input.to(dtype)
    w = weight.to(dtype)
    b = None if bias is None else bias.to(dtype)
    score_target = (x * w[target]).sum(dim=1)
    with full_precision(device):  # float32 scores, also under autocast
        if shared_noise:
            score_noise = x @ w[noise].T
        else:
            score_noise = torch.einsum("nh,nkh->nk", x, w[noise])
    if b is not None:
        score_target = score_target + b[target]
        score_noise = score_noise + b[noise]
    delta_target = score_target - log_k - log_q_target
    delta_noise = score_noise - log_k - log_q_noise
    # -log sigma(x) = softplus(-x); -log(1 - sigma(x)) = softplus(x)
    return F.softplus(-delta_target) + F.softplus(delta_noise).sum(dim=-1)


def softmax_nll(input: Tensor, target: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The exact counterpart of NCE per example: the full-softmax negative log-likelihood
    `cross_entropy(input @ weight.T + bias, target)`, float32 for half-precision input."""
    dtype = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    with full_precision(input.device):  # float32 logits, also under autocast
        logits = F.linear(input.to(dtype), weight.to(dtype),
                          None if bias is None else bias.to(dtype))
        return F.cross_entropy(logits, target.long(), reduction="none")
