"""Contrastive losses: InfoNCE and the sigmoid loss of SigLIP (tiled), and noise-contrastive
estimation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .._checks import (
    DataChecks,
    check_floating,
    check_int,
    check_number,
    check_option,
    check_temperature,
    fail,
)
from .._options import GATHERS, REDUCTIONS, Gather, Reduction
from .._relax import bounded, reduce_per_sample
from ..functional._contrastive_core import check_candidates
from ..functional._nce_core import check_generator, check_output_layer, softmax_nll
from ..functional.contrastive import (
    info_nce,
    nce_loss,
    retrieval_accuracy,
    sigmoid_contrastive_loss,
)
from ._base import Float32Buffers


class InfoNCELoss(nn.Module):
    r"""InfoNCE ([`info_nce`][softmetrics.functional.info_nce]) with its options fixed.

    `learn_temperature=True` makes the temperature a parameter, stored on a log scale
    (`log_temperature`, as CLIP's logit scale) so that it stays positive; otherwise it is
    a constant. A learned temperature is bounded below by `min_temperature` (default
    0.01): the forward pass uses $\max(\tau, \tau_\text{min})$, so beyond the bound the
    gradient into `log_temperature` is 0 and the logits are never scaled by more than
    $1 / \tau_\text{min}$. This is CLIP's bound (its logit scale $1/\tau$ is clipped at
    100, as unbounded it grows until the loss overflows); a fixed temperature is used as
    given. `forward(query, key, negatives=None)` returns the loss,
    `.metric(query, key, negatives=None)` the top-`k` retrieval accuracy with the same
    candidates ([`retrieval_accuracy`][softmetrics.functional.retrieval_accuracy]).

    `gather_distributed=True` scores each process's queries against the keys (and, with
    `symmetric`, its keys against the queries) of every process of `process_group`
    (default: the whole world), with gradient: the loss, and `.metric`, are those of one
    process on the global batch (see the Data-parallel training page).

    `temperature` is a number (the initial value when learned) and `k` the rank the
    positive must reach for `.metric`, `min_temperature` > 0 the lower bound of a learned
    temperature (at most its initial value); the other options (`in_batch_negatives`,
    `query_negatives`, `symmetric`, `normalize`, `reduction`, `chunk_size`,
    `gather_distributed`, `process_group`, `validate_args`) are those of
    [`info_nce`][softmetrics.functional.info_nce].

    Examples:
        >>> import torch
        >>> from softmetrics import InfoNCELoss
        >>> loss_fn = InfoNCELoss(temperature=0.5, learn_temperature=True)
        >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> key = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.6]])
        >>> loss_fn(query, key)
        tensor(0.6448, grad_fn=<MeanBackward0>)
        >>> loss_fn.temperature
        tensor(0.5000, grad_fn=<ExpBackward0>)
        >>> loss_fn.metric(query, key)
        tensor(1.)
    """

    def __init__(self, *, temperature: float = 0.07, learn_temperature: bool = False,
                 in_batch_negatives: bool = True, query_negatives: bool = False,
                 symmetric: bool = False, normalize: bool = True, reduction: Reduction = "mean",
                 chunk_size: int | None = None, k: int = 1, min_temperature: float = 0.01,
                 gather_distributed: bool = False,
                 process_group: torch.distributed.ProcessGroup | None = None,
                 validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        temperature = check_temperature(name, temperature, allow_zero=False)
        if isinstance(temperature, Tensor):
            fail(name, "temperature", "a number (the initial value)", temperature,
                 error=TypeError)
        min_temperature = check_number(name, "min_temperature", min_temperature, low=0.0,
                                       low_open=True)
        if learn_temperature and temperature < min_temperature:
            fail(name, "temperature", f">= min_temperature = {min_temperature:g} (the initial "
                 "value of a learned temperature)", temperature)
        check_option(name, "reduction", reduction, REDUCTIONS)
        if chunk_size is not None:
            check_int(name, "chunk_size", chunk_size, low=1)
        check_int(name, "k", k, low=1)
        self.options: dict[str, Any] = dict(
            in_batch_negatives=in_batch_negatives, query_negatives=query_negatives,
            normalize=normalize, gather_distributed=bool(gather_distributed),
            process_group=process_group, validate_args=validate_args)
        self.symmetric, self.reduction, self.chunk_size, self.k = (
            symmetric, reduction, chunk_size, k)
        self.learn_temperature, self.min_temperature = learn_temperature, min_temperature
        self._temperature = temperature
        if learn_temperature:
            self.log_temperature = nn.Parameter(torch.tensor(temperature).log())

    @property
    def temperature(self) -> float | Tensor:
        """The temperature: a number, or `exp(max(log_temperature, log(min_temperature)))`
        when learned (clamped as CLIP's logit scale: no gradient below the bound, a
        gradient at it, so that a temperature started there can learn)."""
        if self.learn_temperature:
            return bounded(self.log_temperature, math.log(self.min_temperature)).exp()
        return self._temperature

    def forward(self, query: Tensor, key: Tensor, negatives: Tensor | None = None) -> Tensor:
        """The InfoNCE loss of `query` against `key` (and `negatives`)."""
        check_candidates(type(self).__name__, negatives, self.options["in_batch_negatives"],
                         self.options["query_negatives"])
        return info_nce(query, key, negatives=negatives, temperature=self.temperature,
                        symmetric=self.symmetric, reduction=self.reduction,
                        chunk_size=self.chunk_size, **self.options)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, query: Tensor, key: Tensor, negatives: Tensor | None = None) -> Tensor:
        """Top-`k` retrieval accuracy with the same candidates; no gradient."""
        return retrieval_accuracy(query, key, negatives=negatives, k=self.k,
                                  reduction=self.reduction, **self.options)

    def extra_repr(self) -> str:
        options = {k: v for k, v in self.options.items()
                   if k != "process_group" and (k != "gather_distributed" or v)}
        temperature = self.temperature
        if isinstance(temperature, Tensor):  # learned
            # the current value at the precision it is stored in (float32: 0.07, not
            # 0.07000000029802322)
            temperature = float(f"{float(temperature.detach()):.7g}")
        shown = {"temperature": temperature, **options,
                 "symmetric": self.symmetric, "reduction": self.reduction}
        if self.learn_temperature:
            shown.update(learn_temperature=True, min_temperature=self.min_temperature)
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class SigLIPLoss(nn.Module):
    r"""The sigmoid loss of SigLIP
    ([`sigmoid_contrastive_loss`][softmetrics.functional.sigmoid_contrastive_loss]) with
    a learnable logit scale $t$ and bias $b$.

    With `learnable=True` (the default, as in the paper) $t$ is a parameter stored on a
    log scale (`log_logit_scale`, initialised at $\log 10$ by default) and $b$ a parameter
    (`logit_bias`, initialised at $-10$), the initialisation of Zhai et al. (2023). The
    learned scale is bounded above by `max_logit_scale` (default 100): the forward pass
    uses $t = \exp(\min(\log t_\text{learned}, \log t_\text{max}))$, so beyond the bound
    the parameter gets no gradient and the logits are never scaled by more than
    $t_\text{max}$. This is CLIP's bound on its logit scale, as for the temperature of
    [`InfoNCELoss`][softmetrics.InfoNCELoss]; the bias needs none (the loss is linear in
    it for large $|b|$, never overflowing). With `learnable=False` both are constants,
    used as given. `forward(query, key)` returns the loss, `.metric(query, key)` the
    top-`k` retrieval accuracy of each query among the keys
    ([`retrieval_accuracy`][softmetrics.functional.retrieval_accuracy]).

    `gather_distributed=True` scores each process's queries against the keys of every
    process of `process_group`, with gradient: the loss, and `.metric`, are those of one
    process on the global batch (see the Data-parallel training page).
    `gather_distributed="ring"` gives the same loss and gradients with the keys passed
    around the ring of processes instead of gathered; `.metric` then gathers the keys
    (without gradient) to rank them.

    `logit_scale` and `logit_bias` are numbers (the initial values when learned),
    `max_logit_scale` the bound of a learned scale (at least its initial value), `k` the
    rank the positive must reach for `.metric`; the other options (`normalize`,
    `reduction`, `chunk_size`, `gather_distributed`, `process_group`, `validate_args`) are
    those of [`sigmoid_contrastive_loss`][softmetrics.functional.sigmoid_contrastive_loss].

    Examples:
        >>> import torch
        >>> from softmetrics import SigLIPLoss
        >>> loss_fn = SigLIPLoss()
        >>> image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> text = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.6]])
        >>> loss_fn(image, text)
        tensor(0.8318, grad_fn=<MeanBackward0>)
        >>> loss_fn.logit_scale, loss_fn.logit_bias
        (tensor(10., grad_fn=<ExpBackward0>), Parameter containing:
        tensor(-10., requires_grad=True))
        >>> loss_fn.metric(image, text)
        tensor(1.)
    """

    logit_bias: float | Tensor  # b: a Parameter when learned, else a number

    def __init__(self, *, logit_scale: float = 10.0, logit_bias: float = -10.0,
                 learnable: bool = True, max_logit_scale: float = 100.0,
                 normalize: bool = True, reduction: Reduction = "mean",
                 chunk_size: int | None = None, k: int = 1, gather_distributed: Gather = False,
                 process_group: torch.distributed.ProcessGroup | None = None,
                 validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("logit_scale", logit_scale), ("logit_bias", logit_bias)):
            if isinstance(value, Tensor):
                fail(name, arg, "a number (the initial value)", value, error=TypeError)
        scale = float(check_temperature(name, logit_scale, allow_zero=False, arg="logit_scale"))
        bias = check_number(name, "logit_bias", logit_bias)
        max_scale = check_number(name, "max_logit_scale", max_logit_scale, low=0.0,
                                 low_open=True)
        if learnable and scale > max_scale:
            fail(name, "logit_scale", f"<= max_logit_scale = {max_scale:g} (the initial "
                 "value of a learned scale)", scale)
        check_option(name, "reduction", reduction, REDUCTIONS)
        if chunk_size is not None:
            check_int(name, "chunk_size", chunk_size, low=1)
        check_int(name, "k", k, low=1)
        check_option(name, "gather_distributed", gather_distributed, GATHERS)
        self.options: dict[str, Any] = dict(
            normalize=normalize, reduction=reduction, gather_distributed=gather_distributed,
            process_group=process_group, validate_args=validate_args)
        self.chunk_size, self.k = chunk_size, k
        self.learnable, self.max_logit_scale = learnable, max_scale
        self._scale = scale
        if learnable:
            self.log_logit_scale = nn.Parameter(torch.tensor(scale).log())
            self.logit_bias = nn.Parameter(torch.tensor(bias))
        else:
            self.logit_bias = bias

    @property
    def logit_scale(self) -> float | Tensor:
        """$t$: a number, or `exp(min(log_logit_scale, log(max_logit_scale)))` when
        learned (clamped as CLIP's logit scale: no gradient above the bound, a gradient at
        it, so that a scale started there can learn)."""
        if self.learnable:
            return bounded(self.log_logit_scale, high=math.log(self.max_logit_scale)).exp()
        return self._scale

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        """The sigmoid loss of every (query, key) pair."""
        return sigmoid_contrastive_loss(query, key, logit_scale=self.logit_scale,
                                        logit_bias=self.logit_bias,
                                        chunk_size=self.chunk_size, **self.options)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, query: Tensor, key: Tensor) -> Tensor:
        """Top-`k` retrieval accuracy of each query among the keys; no gradient."""
        # the ring too ranks among the gathered keys: without gradient, N_global x D once
        options = dict(self.options, gather_distributed=bool(self.options["gather_distributed"]))
        return retrieval_accuracy(query, key, k=self.k, **options)

    def extra_repr(self) -> str:
        def shown(value: float | Tensor) -> float:
            # the current value at the precision it is stored in
            return (float(f"{float(value.detach()):.7g}") if isinstance(value, Tensor)
                    else value)

        options = {k: v for k, v in self.options.items()
                   if k != "process_group" and (k != "gather_distributed" or v)}
        values = {"logit_scale": shown(self.logit_scale),
                  "logit_bias": shown(self.logit_bias), **options}
        if self.learnable:
            values.update(learnable=True, max_logit_scale=self.max_logit_scale)
        return ", ".join(f"{k}={v!r}" for k, v in values.items())


class NCELoss(Float32Buffers):
    r"""Noise-contrastive estimation ([`nce_loss`][softmetrics.functional.nce_loss]).

    Holds the number of classes `num_classes` (the rows of the output layer's `weight`),
    the noise count and the noise distribution (a buffer; uniform when None).
    `forward(input, target, weight, bias, generator=None)` returns the NCE loss;
    `.metric(input, target, weight, bias)` the exact counterpart, the full-softmax negative
    log-likelihood `cross_entropy(input @ weight.T + bias, target)`. The options
    `num_noise`, `noise_distribution`, `shared_noise`, `reduction` and `validate_args` are
    those of [`nce_loss`][softmetrics.functional.nce_loss].

    Examples:
        >>> import torch
        >>> from softmetrics import NCELoss
        >>> loss_fn = NCELoss(num_classes=3, num_noise=4)
        >>> hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> weight = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
        >>> bias = torch.zeros(3)
        >>> loss_fn(hidden, torch.tensor([0, 1]), weight, bias,
        ...         generator=torch.Generator().manual_seed(0))
        tensor(5.3849)
        >>> loss_fn.metric(hidden, torch.tensor([0, 1]), weight, bias)
        tensor(0.1698)
    """

    noise_distribution: Tensor | None
    _float32_buffers = ("noise_distribution",)

    def __init__(self, num_classes: int, num_noise: int,
                 noise_distribution: Tensor | None = None, *, shared_noise: bool = False,
                 reduction: Reduction = "mean", validate_args: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        check_int(name, "num_classes", num_classes, low=1)
        check_int(name, "num_noise", num_noise, low=1)
        check_option(name, "reduction", reduction, REDUCTIONS)
        if noise_distribution is not None:
            check_floating(name, "noise_distribution", noise_distribution,
                           "class probabilities")
            if tuple(noise_distribution.shape) != (num_classes,):
                fail(name, "noise_distribution", f"of shape ({num_classes},) (num_classes)",
                     f"shape {tuple(noise_distribution.shape)}", raw=True)
        self.num_classes, self.num_noise = num_classes, num_noise
        self.shared_noise, self.reduction, self.validate_args = (
            shared_noise, reduction, validate_args)
        self.register_buffer("noise_distribution", noise_distribution)

    def forward(self, input: Tensor, target: Tensor, weight: Tensor, bias: Tensor | None,
                generator: torch.Generator | None = None) -> Tensor:
        """The NCE loss with `num_noise` draws per example from the noise distribution."""
        if weight.shape[0] != self.num_classes:
            fail(type(self).__name__, "weight", f"{self.num_classes} rows (num_classes)",
                 f"shape {tuple(weight.shape)}", raw=True)
        check_generator(type(self).__name__, generator, input)
        return nce_loss(input, target, weight, bias, num_noise=self.num_noise,
                        noise_distribution=self.noise_distribution,
                        shared_noise=self.shared_noise, generator=generator,
                        reduction=self.reduction, validate_args=self.validate_args)

    if TYPE_CHECKING:  # calling the Module runs `forward`: its signature for type checkers
        __call__ = forward

    @torch.no_grad()
    def metric(self, input: Tensor, target: Tensor, weight: Tensor,
               bias: Tensor | None) -> Tensor:
        """The full-softmax negative log-likelihood (the exact counterpart); no gradient."""
        checks = DataChecks()
        check_output_layer(type(self).__name__, input, target, weight, bias,
                           self.validate_args, checks)
        checks.settle()
        return reduce_per_sample(softmax_nll(input, target, weight, bias), self.reduction)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, num_noise={self.num_noise}, "
                f"shared_noise={self.shared_noise}, reduction={self.reduction!r}")
