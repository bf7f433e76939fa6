"""The decision step, hard and soft, in one place.

Every metric in softmetrics is `formula(statistics(decision(scores), target))`. Only the
decision is discrete. This module holds the three decisions the library knows and their
relaxations by a temperature `tau`:

| decision | hard (`tau == 0`) | soft (`tau > 0`) |
|---|---|---|
| argmax over an axis | one-hot of the argmax (first index at ties) | `softmax(z / tau)` |
| threshold at probability `t` | `z > logit(t)` | `sigmoid((z - logit(t)) / tau)` |
| comparison `d = s_i - s_j` | `1` if `d > 0`, `1/2` if `d == 0`, else `0` | `sigmoid(d / tau)` |

At ties, a hard decision that places items (retrieval's top k, a discounted position)
takes the mean over every order of the tied items (`tie_averaged`). Classification's
top-k hit is instead the step of its rank, which counts each tied class as 1/2: the limit
of its soft rank, and a multiple of 1/2, as the exact formulas assume.

A temperature may be a Python number or a one-element tensor (a learnable temperature);
only the number `0` selects the hard decision, so no branch here reads tensor data.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["MIN_TEMPERATURE", "above", "as_tensor_on", "bounded", "compute_dtype",
           "full_precision",
           "is_hard", "logit", "promote_floats", "reduce_per_sample", "running_sums",
           "soft_argmax", "soft_positive", "soft_step", "soft_threshold", "sum_dtype",
           "temperature_scale", "tie_averaged"]


def is_hard(temperature: float | Tensor) -> bool:
    """True when `temperature` selects the exact (hard) decision: the number 0."""
    return not isinstance(temperature, Tensor) and temperature == 0


# The smallest temperature a relaxation divides by: the square root of float32's smallest
# normal number. `z / tau` overflows to inf for a small enough `tau` (float32 logits of
# magnitude 40 at `tau = 1e-37`), and then `inf - inf` in a softmax or `0 * inf` in a
# backward pass is NaN; at `tau = 2^-63` float32 logits up to 3.7e19 stay finite. Below
# it the decisions are exact already: a softmax factor `exp(-d / tau)` is 0 in float32 for
# any gap `d` above `104 tau`, 1.1e-17, which two different float32 logits above 1e-9 in
# magnitude always have.
MIN_TEMPERATURE = 2.0 ** -63


def bounded(x: Tensor, low: float | None = None, high: float | None = None) -> Tensor:
    """`x.clamp(low, high)` of a floating `x` whose gradient passes at the bounds
    themselves, in every torch release: torch's clamp passed it there up to 2.13, and from
    2.14 gives it 0 (the minimum-norm subgradient), which would change the library's
    gradients at values it does reach (a soft score of exactly 1, a learned temperature
    started at its floor). Outside the bounds no gradient, as a clamp; a NaN stays NaN
    (it compares false)."""
    if low is not None:
        x = torch.where(x < low, low, x)
    if high is not None:
        x = torch.where(x > high, high, x)
    return x


def temperature_scale(temperature: float | Tensor) -> float | Tensor:
    """What a relaxation divides by, for a temperature > 0: a number floored at
    `MIN_TEMPERATURE`, or a tensor as a 0-d tensor clamped at it (one operation on the
    device, no host synchronisation; a learned temperature below the floor gets no
    gradient). A 0-d tensor takes part in arithmetic as a number: no dtype promotion,
    and a CPU temperature works with inputs on any device."""
    if isinstance(temperature, Tensor):
        return bounded(temperature.reshape(()), MIN_TEMPERATURE)
    return max(temperature, MIN_TEMPERATURE)


def as_tensor_on(value: float | Tensor, like: Tensor) -> Tensor:
    """`value` as a tensor with `like`'s dtype and device. A number becomes a 0-d tensor
    filled on the device: `torch.tensor(x, device="cuda")` copies from host memory and
    waits for the copy, a host synchronisation on every call."""
    if isinstance(value, Tensor):
        return value.to(dtype=like.dtype, device=like.device)
    return torch.full((), value, dtype=like.dtype, device=like.device)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are accumulated in: float32 for half types, else `dtype`."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


_FLOAT_BITS = {torch.float16: 16, torch.bfloat16: 16, torch.float32: 32, torch.float64: 64}


def promote_floats(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    """`torch.promote_types(a, b)` of floating dtypes, in Python: torch 2.4's compiler
    cannot call `promote_types`, but reads this (float16 with bfloat16 gives float32)."""
    if a == b:
        return a
    if a not in _FLOAT_BITS or b not in _FLOAT_BITS:
        return torch.promote_types(a, b)
    if _FLOAT_BITS[a] == _FLOAT_BITS[b]:
        return torch.float32
    return a if _FLOAT_BITS[a] > _FLOAT_BITS[b] else b


def sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of counts over many entries and of the formulas that subtract them:
    float64 (float32 on MPS, which has no float64). A float32 running sum stops growing
    at 2^24 = 16,777,216 when its terms are about 1 (a 3-D scan has that many voxels of
    one class), float32 holds no odd integer above 2^24, and differences of large counts
    keep few of its digits."""
    return torch.float32 if device.type == "mps" else torch.float64


def running_sums(x: Tensor) -> Tensor:
    """Inclusive running sums along the last axis, in about log2(L) vector additions
    (Hillis and Steele's scan; L the length of the axis): a floating-point `cumsum` has no
    deterministic CUDA kernel (it raises under `torch.use_deterministic_algorithms`), and
    these sums take the same order on every device. For short axes: tables over classes
    or positions, not data."""
    shift = 1
    while shift < x.shape[-1]:
        x = torch.cat([x[..., :shift], x[..., shift:] + x[..., :-shift]], -1)
        shift *= 2
    return x


def full_precision(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """A context with autocast off on `device`, so that matrix products of statistics run
    in the dtype chosen by `compute_dtype` (under autocast they would be cast back to half
    precision and round counts and sums)."""
    if device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def logit(probability: float) -> float:
    """`log(p / (1 - p))` for a threshold given as a probability in (0, 1)."""
    return math.log(probability) - math.log1p(-probability)


def soft_argmax(z: Tensor, temperature: float | Tensor, dim: int = 1) -> Tensor:
    """One-hot of `argmax(z)` along `dim` at temperature 0, else `softmax(z / tau)`."""
    if is_hard(temperature):
        index = z.argmax(dim=dim, keepdim=True)
        return torch.zeros_like(z).scatter_(dim, index, 1.0)
    return torch.softmax(z / temperature_scale(temperature), dim=dim)


def above(z: Tensor, shift: float) -> Tensor:
    """`z > shift` for the real number `shift`, in every dtype of `z`. A tensor compares
    with a Python number in its own dtype, so the number is rounded to it first, and the
    one value of `z` equal to that rounding would be decided by the rounding's side of
    `shift` (float32(logit(0.3)) lies above logit(0.3): `z > shift` would class it
    negative, though sigmoid(z) > 0.3). With `r` the rounding: `z > shift` is `z >= r`
    when `r > shift`, else `z > r`; `r` is exact in `z`'s dtype, so no further rounding."""
    if z.dtype == torch.float64:
        return z > shift
    rounded = _rounded(shift, z.dtype)
    return z >= rounded if rounded > shift else z > rounded


# the precision (significand bits) of each half/single floating dtype, and the frexp
# exponent of its smallest normal number, below which its spacing stays that number's
_SIGNIFICANDS = {torch.float32: (24, -125), torch.float16: (11, -13),
                 torch.bfloat16: (8, -125)}


def _rounded(x: float, dtype: torch.dtype) -> float:
    """`float(torch.tensor(x, dtype=dtype))` for a finite `x` within the dtype's range, in
    Python arithmetic, which the compiler folds to a constant (torch 2.6's cannot trace
    a tensor's `item`): the nearest multiple of the dtype's spacing at `x`, ties to even
    (Python's `round`); the scaling by a power of two is exact."""
    if x == 0.0 or not math.isfinite(x):
        return x
    if dtype not in _SIGNIFICANDS:  # pragma: no cover - logits of no other dtype reach here
        return float(torch.tensor(x, dtype=dtype))
    bits, lowest = _SIGNIFICANDS[dtype]
    scale = 2.0 ** (bits - max(math.frexp(x)[1], lowest))
    return round(x * scale) / scale


def soft_threshold(z: Tensor, temperature: float | Tensor, threshold: float = 0.5) -> Tensor:
    """`z > logit(threshold)` (as real numbers: `above`) at temperature 0, else
    `sigmoid((z - logit(threshold)) / tau)`."""
    shift = logit(threshold)
    if is_hard(temperature):
        return above(z, shift).to(z.dtype)
    return torch.sigmoid((z - shift) / temperature_scale(temperature))


def soft_step(d: Tensor, temperature: float | Tensor) -> Tensor:
    """Heaviside step with `step(0) = 1/2` at temperature 0, else `sigmoid(d / tau)`."""
    if is_hard(temperature):
        return (d > 0).to(d.dtype) + 0.5 * (d == 0).to(d.dtype)
    return torch.sigmoid(d / temperature_scale(temperature))


def tie_averaged(cumulative: Callable[[Tensor], Tensor], greater: Tensor,
                 ties: Tensor) -> Tensor:
    """The hard decision of a position-based metric at ties: the mean over every order of
    the tied items.

    An item with `greater` items strictly above it and `ties` items of equal score (itself
    included) takes each of the positions `greater + 1 .. greater + ties` with equal
    chance under a random order of the tied items, so a per-position value `v(p)` has the
    mean `(C(greater + ties) - C(greater)) / ties`, where `cumulative` is
    `C(n) = v(1) + ... + v(n)` (a function of a count tensor). With `C(n) = min(n, k)`
    this is the chance of making the top k (retrieval accuracy, recall@k); with a
    cumulative discount it is scikit-learn's tie-averaged DCG.
    """
    ties = ties.clamp_min(1)
    return (cumulative(greater + ties) - cumulative(greater)) / ties


def soft_positive(count: Tensor, temperature: float | Tensor) -> Tensor:
    """Whether a count (>= 0) is positive: `count / (count + temperature)`, which tends to
    `[count > 0]` as the temperature falls and has a gradient at every count; at
    temperature 0 the exact indicator of integer counts, `count` clamped to [0, 1] (a NaN
    count stays NaN)."""
    if is_hard(temperature):
        return count.clamp(0.0, 1.0)
    return count / (count + temperature_scale(temperature))


def reduce_per_sample(values: Tensor, reduction: str) -> Tensor:
    """"mean", "sum" or "none" of per-sample loss values; the mean of an empty batch is 0,
    not 0/0."""
    if reduction == "mean":
        return values.mean() if values.numel() else values.sum()
    if reduction == "sum":
        return values.sum()
    return values
