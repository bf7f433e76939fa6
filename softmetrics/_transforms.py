"""Where the library's code runs: traced by `torch.compile`, inside a `torch.func`
transform, under forward-mode AD, or in a backward pass that must stay differentiable.

The fused autograd Functions (hand-written backwards, tiles recomputed in the backward
pass) run only in plain eager autograd; `is_transformed` tells the forward passes to take
the plain operations those Functions are tested against, and `plain_backward` tells a
backward to recompute and differentiate them (`recompute_grad`) instead of running its
in-place kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor

try:
    from torch.compiler import assume_constant_result, is_compiling
except ImportError:  # torch < 2.3
    from torch._dynamo import assume_constant_result, is_compiling

__all__ = [
    "batched_grads",
    "host_values",
    "is_batching",
    "is_compiling",  # torch.compiler's, or torch._dynamo's before torch 2.3
    "is_transformed",
    "plain_backward",
    "recompute_grad",
]


def is_transformed() -> bool:
    """Whether a `torch.func` transform (`grad`, `vjp`, `jacrev`, `jvp`, `jacfwd`,
    `hessian`, `vmap`, ...) or forward-mode AD (`torch.autograd.forward_ad`) is active.

    The library's autograd Functions (hand-written backwards, tiles recomputed in the
    backward pass) define no `setup_context`, no batching rule and no forward-mode
    derivative, so a transform cannot run them: there the same values come from the
    plain operations those Functions are tested against, which every transform
    differentiates and batches by itself (at their memory: the full similarity or pair
    matrices where the Functions tile)."""
    return _functorch_active() or _forward_ad_level() >= 0


def _read_functorch_active() -> bool:
    return bool(torch._C._are_functorch_transforms_active())


# Whether a `torch.func` transform is active: a constant to the compiler, which reads it
# while tracing (torch 2.4's cannot put the C function in a graph).
_functorch_active: Callable[[], bool] = assume_constant_result(  # type: ignore[no-untyped-call]
    _read_functorch_active)


def plain_backward(*grads: Tensor) -> bool:
    """Whether a hand-written backward, given its incoming `grads`, runs as
    differentiable, out-of-place operations recomputed from its saved inputs rather than
    its in-place kernels: while a graph is being built (`create_graph=True`), inside a
    `torch.func` transform, and for gradients batched by autograd's own vmap
    (`torch.autograd.grad(..., is_grads_batched=True)`, which
    `torch.autograd.functional.jacobian(..., vectorize=True)` uses): neither can batch
    writes into the saved buffers."""
    return torch.is_grad_enabled() or is_transformed() or batched_grads(*grads)


def batched_grads(*grads: Tensor) -> bool:
    """Whether gradients come batched by autograd's own vmap (`is_grads_batched=True`);
    never inside `torch.compile`, which cannot trace the question (and batches nothing
    that way)."""
    if is_compiling():
        return False
    return any(_is_legacy_batched(g) for g in grads)


def _legacy_batched_by_key(grad: Tensor) -> bool:
    """Where torch has no `is_legacy_batchedtensor` (2.1 has none): autograd's batched
    gradients carry the `Batched` dispatch key (functorch's carry `FuncTorchBatched`)."""
    keys = str(torch._C._dispatch_keys(grad))  # "DispatchKeySet(..., Batched)"
    return "Batched" in keys.partition("(")[2].rstrip(")").replace(" ", "").split(",")


_is_legacy_batched: Callable[[Tensor], bool] = getattr(
    torch._C._functorch, "is_legacy_batchedtensor", _legacy_batched_by_key)


def recompute_grad(recompute: Callable[[], Any], inputs: Sequence[Tensor],
                   grads: Any) -> tuple[Tensor, ...]:
    """The plain path of a hand-written backward (`plain_backward`): `recompute()`
    (outputs computed again from the saved `inputs` by operations autograd records)
    differentiated in `inputs` against `grads`, with a graph of its own where one is being
    built (`create_graph=True`: second derivatives), else without one (batched
    gradients); grad mode is on for the recomputation either way."""
    create = torch.is_grad_enabled()
    with torch.enable_grad():
        return torch.autograd.grad(recompute(), inputs, grads, create_graph=create)


def host_values(values: Tensor) -> list[Any]:
    """The entries of a 1-D tensor as Python numbers, in one read (`tolist`); inside a
    `torch.func` transform one `item` each, as torch 2.1 cannot list a tensor a transform
    wraps (it reads the wrapped scalars)."""
    if _functorch_active():
        return [v.item() for v in values.unbind()]
    return values.tolist()


def _forward_ad_level() -> int:
    return cast(int, getattr(torch.autograd.forward_ad, "_current_level", -1))


def is_batching() -> bool:
    """Whether `torch.func.vmap` is active: its batched tensors cannot decide a Python
    `if`, so the checks that read data cannot run inside it."""
    if not _functorch_active():
        return False
    from torch._C._functorch import TransformType

    return TransformType.Vmap in _transform_stack()


def _transform_stack() -> list[Any]:
    """The kinds (`TransformType`) of the active `torch.func` transforms, innermost first."""
    functorch = torch._C._functorch
    if hasattr(functorch, "get_interpreter_stack"):
        return [i.key() for i in reversed(functorch.get_interpreter_stack() or [])]
    # torch 2.1 reads only the innermost: take it off, read the rest, put it back
    top = functorch.peek_interpreter_stack()
    if top is None:
        return []
    layer = functorch.pop_dynamic_layer_stack()
    try:
        return [top.key(), *_transform_stack()]
    finally:
        functorch.push_dynamic_layer_stack(layer)
