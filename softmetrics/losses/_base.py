"""What the Modules of every family share: float32 statistical buffers, running
statistics (momentum) and the repr of set-level options."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._checks import check_number, fail
from .._operators import operator
from .._transforms import is_compiling, is_transformed

__all__ = ["Float32Buffers", "RunningStatistics", "check_number_temperature", "keep_temperature",
           "name_inherited_init", "set_level_repr"]


def name_inherited_init(cls: type) -> type:
    """Give a public class that inherits its `__init__` a copy of it named after the class.

    Python's errors for a missing or unexpected argument name the function: without the
    copy, `SoftF1Loss()` says `_TverskyLoss.__init__() missing 1 required keyword-only
    argument: 'task'`, naming a base the user never called. The copy runs the same code
    (the same defaults, and the same `__class__` cell for `super()`).
    """
    if "__init__" in cls.__dict__:
        return cls
    init = getattr(cls, "__init__")  # noqa: B009 (an instance's __init__ is unsound to mypy)
    if not isinstance(init, types.FunctionType):
        return cls
    qualname = f"{cls.__qualname__}.__init__"
    code = init.__code__
    if sys.version_info >= (3, 11):  # the messages read the code's qualified name
        code = code.replace(co_qualname=qualname)
    copy = types.FunctionType(code, init.__globals__, init.__name__, init.__defaults__,
                              init.__closure__)
    copy.__kwdefaults__ = init.__kwdefaults__
    copy.__qualname__ = qualname
    copy.__doc__, copy.__module__ = init.__doc__, init.__module__
    copy.__annotations__ = dict(init.__annotations__)
    setattr(cls, "__init__", copy)  # noqa: B010 (mypy refuses assigning to a method)
    return cls


def set_level_repr(module: nn.Module, options: dict[str, Any]) -> str:
    """`extra_repr` of a set-level loss: its options, temperature, sync and momentum."""
    shown = {k: v for k, v in options.items() if v is not None}
    shown["temperature"] = module.temperature
    if module.sync_dist:
        shown["sync_dist"] = True
    if module.momentum is not None:
        shown["momentum"] = module.momentum
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class Float32Buffers(nn.Module):
    """A loss whose statistical buffers (`_float32_buffers`: names, or prefixes ending in
    "_") stay in float32 or wider under `.half()`, `.bfloat16()` and `.to(dtype)`. Running
    counts pass float16's largest value, 65504, in one segmentation batch; a noise
    distribution over a large vocabulary has probabilities below float16's smallest; and
    bfloat16 keeps 3 significant digits. Device moves apply as usual, and `.double()`
    widens them."""

    _float32_buffers: ClassVar[tuple[str, ...]] = ("running_",)

    def _kept(self, name: str) -> bool:
        return any(name.startswith(p) if p.endswith("_") else name == p
                   for p in self._float32_buffers)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Float32Buffers:
        kept = {name: buf for name, buf in self._buffers.items()
                if self._kept(name) and buf is not None and buf.is_floating_point()}
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]  # not annotated in torch
        for name, old in kept.items():
            new = self._buffers[name]
            if new is not None and new.dtype in (torch.float16, torch.bfloat16):
                self._buffers[name] = old.to(device=new.device)
        return self


def keep_temperature(module: nn.Module, temperature: float | Tensor) -> None:
    """Keep a Module's temperature: a number as it is, an `nn.Parameter` as a parameter
    (learned), any other tensor as a buffer (it moves and saves with the Module). A tensor
    that requires grad but is not a Parameter (`log_t.exp()`) would hold the graph of the
    step that made it, whose second backward fails: refused."""
    if isinstance(temperature, Tensor) and not isinstance(temperature, nn.Parameter):
        if temperature.requires_grad:
            fail(type(module).__name__, "temperature", "a number, an nn.Parameter or a "
                 "tensor that does not require grad (a learned temperature is a Parameter: "
                 "the Module computes nothing from it before the step)", temperature,
                 error=TypeError)
        module.register_buffer("temperature", temperature)
    else:
        setattr(module, "temperature", temperature)  # noqa: B010  (a Parameter registers)


def check_number_temperature(name: str, temperature: object) -> None:
    """The losses whose fused Functions take the temperature as a number refuse a tensor
    (the functional API takes one)."""
    if isinstance(temperature, Tensor):
        fail(name, "temperature", "a number (use the functional API for a tensor "
             "temperature)", temperature, error=TypeError)


def _copy(x: Tensor, dtype: torch.dtype) -> Tensor:
    return x.to(dtype, copy=True)


def _fake_copy(x: Tensor, dtype: torch.dtype) -> Tensor:
    return torch.empty_like(x, dtype=dtype)


# `softmetrics::snapshot`, a copy in a given dtype as an operator of its own
_SNAPSHOT = operator("snapshot", _copy, _fake_copy)


def snapshot(x: Tensor, dtype: torch.dtype) -> Tensor:
    """A copy of `x` in `dtype` as it is now, for a value the backward pass may need after
    the step has written `x` in place. Inside `torch.compile` the copy is `softmetrics::snapshot`:
    AOTAutograd's partitioner recomputes cheap operations such as `clone` in the backward
    pass instead of saving their results, and a recomputed read of a buffer sees what the
    forward pass wrote into it afterwards (a copy reads the value it had); an operator
    outside its allowlist of recomputable operations is saved."""
    if is_compiling() and _SNAPSHOT is not None:
        return _SNAPSHOT(x, dtype)
    return _copy(x, dtype)


class RunningStatistics(Float32Buffers):
    """A loss that can mix its batch statistics with running ones (`momentum`).

    `register_running(fields, shape)` creates one float32 buffer `running_<field>` per
    statistic and a `running_initialized` flag; `mix_running(batch, entries)` returns
    `momentum * running + (1 - momentum) * batch` for each statistic (the batch itself
    until the first update) and, in training mode, stores the mixed values, detached, as
    the new running ones. A batch without entries (`entries` false: no samples, or every
    entry ignored) holds no statistics: it is not mixed in and changes no buffer (the
    running statistics themselves are the value once there are any). Buffers follow the
    module (`.to(device)`, `state_dict`).
    """

    momentum: float | None
    running_initialized: Tensor
    _running_fields: tuple[str, ...] = ()

    def keep_set_level_options(self, sync_dist: bool,
                               process_group: torch.distributed.ProcessGroup | None,
                               momentum: float | None) -> None:
        """Keep the set-level options: `sync_dist`, `process_group` and `momentum`
        (checked to lie in [0, 1); the Module registers its running statistics)."""
        self.sync_dist = bool(sync_dist)
        self.process_group = process_group
        self.momentum = momentum
        if momentum is not None:
            check_number(type(self).__name__, "momentum", momentum, low=0.0, high=1.0,
                         high_open=True)

    def register_running(self, fields: Sequence[str], shape: tuple[int, ...]) -> None:
        self._running_fields = tuple(fields)
        for key in self._running_fields:
            self.register_buffer(f"running_{key}", torch.zeros(shape))
        self.register_buffer("running_initialized", torch.zeros((), dtype=torch.bool))

    def check_running_device(self, input: Tensor) -> None:
        """Running statistics stay on the Module's device: `input` must be there too
        (moving them to the input on every step would copy them back and forth, and wait
        for it)."""
        device = self.running_initialized.device
        if isinstance(input, Tensor) and input.device != device:
            fail(type(self).__name__, "input", f"on {device}, the device of the running "
                 "statistics (move the loss there with `.to(device)`)",
                 f"a tensor on {input.device}", raw=True)

    def mix_running(self, batch: Sequence[Tensor], entries: Tensor | bool) -> list[Tensor]:
        """The mixed statistics; `entries`: whether the batch has any (a 0-d bool tensor,
        read on the device: no host synchronisation)."""
        m = float(self.momentum or 0.0)  # set whenever running buffers are registered
        # copies of what is read here and written below: under torch.compile a read of
        # the buffers recomputed in the backward pass would see the new values
        init = snapshot(self.running_initialized, torch.bool)
        mixed = []
        for key, value in zip(self._running_fields, batch, strict=True):
            running = snapshot(getattr(self, f"running_{key}"), value.dtype)
            if entries is False:  # nothing to mix in: the running statistics as they are
                both = running
            else:
                both = m * running + (1.0 - m) * value
                if isinstance(entries, Tensor):
                    both = torch.where(entries, both, running)
            mixed.append(torch.where(init, both, value))
        if self.training and entries is not False:
            if is_transformed():
                fail(type(self).__name__, "momentum", "None in training mode inside a "
                     "torch.func transform, which cannot update the running statistics in "
                     "place (in eval mode they are read, not updated)", self.momentum)
            with torch.no_grad():
                for key, value in zip(self._running_fields, mixed, strict=True):
                    buffer = getattr(self, f"running_{key}")
                    new = value.detach().expand_as(buffer)
                    if isinstance(entries, Tensor):
                        new = torch.where(entries, new, buffer)
                    buffer.copy_(new)
                if isinstance(entries, Tensor):
                    self.running_initialized.logical_or_(entries)
                else:
                    self.running_initialized.fill_(True)
        return mixed
