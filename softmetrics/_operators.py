"""Functions registered as custom operators, for `torch.compile` to call as one opaque step.

An operator whose implementation loops over tiles, or reads a buffer the step then writes,
runs as one call inside a compiled graph instead of being traced (the loop unrolled, the
read recomputed). The operators that take a gradient define their backward operators
beside their autograd code; `operator` serves those without one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch

__all__ = ["operator"]

F = TypeVar("F", bound=Callable[..., Any])


def operator(name: str, fn: F, fake: Callable[..., Any]) -> F | None:
    """`fn` as the custom operator `softmetrics::<name>` (it mutates no argument and has
    no gradient), with `fake` giving the compiler its outputs' shapes and dtypes from its
    arguments' (the types of `fn`'s annotations make its schema); None before torch 2.4,
    which has no `torch.library.custom_op`."""
    if not hasattr(torch.library, "custom_op"):
        return None
    op = torch.library.custom_op(f"softmetrics::{name}", fn, mutates_args=())
    op.register_fake(fake)
    return cast(F, op)
