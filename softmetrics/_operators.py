"""Functions registered as custom operators, for `torch.compile` to call as one opaque step.

An operator whose implementation loops over tiles, or reads a buffer the step then writes,
runs as one call inside a compiled graph instead of being traced (the loop unrolled, the
read recomputed). The operators that take a gradient define their backward operators
beside their autograd code; `operator` serves those without one.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch

if TYPE_CHECKING:
    from torch._library.custom_ops import CustomOpDef

__all__ = ["custom_op", "operator"]

F = TypeVar("F", bound=Callable[..., Any])


def operator(name: str, fn: F, fake: Callable[..., Any]) -> F | None:
    """`fn` as the custom operator `softmetrics::<name>` (it mutates no argument and has
    no gradient), with `fake` giving the compiler its outputs' shapes and dtypes from its
    arguments' (the types of `fn`'s annotations make its schema); None before torch 2.4,
    which has no `torch.library.custom_op`."""
    if not hasattr(torch.library, "custom_op"):
        return None
    op = custom_op(f"softmetrics::{name}", mutates_args=())(fn)
    op.register_fake(fake)
    return cast(F, op)


def custom_op(name: str, *, mutates_args: Iterable[str]
              ) -> Callable[[Callable[..., Any]], CustomOpDef]:
    """`torch.library.custom_op(name, mutates_args=...)` as a decorator, the schema made
    from the function's annotations read as types: under `from __future__ import
    annotations` they are strings, which torch 2.4 reads as written (and fails on), and
    torch 2.4 knows `typing.List[Tensor]` but not `list[Tensor]`."""

    def define(fn: Callable[..., Any]) -> CustomOpDef:
        fn.__signature__ = _typed_signature(fn)  # type: ignore[attr-defined]
        return torch.library.custom_op(name, fn, mutates_args=mutates_args)

    return define


def _typed_signature(fn: Callable[..., Any]) -> inspect.Signature:
    hints = typing.get_type_hints(fn)
    signature = inspect.signature(fn)
    return signature.replace(
        parameters=[p.replace(annotation=_typing_generic(hints[p.name]))
                    for p in signature.parameters.values()],
        return_annotation=_typing_generic(hints["return"]))


def _typing_generic(annotation: Any) -> Any:
    """`list[X]` as `typing.List[X]` and `tuple[...]` as `typing.Tuple[...]`, throughout."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return cast(Any, typing.List)[_typing_generic(args[0])]  # noqa: UP006
    if origin is tuple:
        return cast(Any, typing.Tuple)[tuple(_typing_generic(a) for a in args)]  # noqa: UP006
    return annotation
