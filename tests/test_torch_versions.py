"""The code paths for older torch releases, run on the current one.

`pyproject.toml` admits torch 2.1 and later. Where torch lacks a function the library asks
it for a capability and falls back (`_transforms`, `_operators`, `_relax`); these tests
run each fallback here and compare it with the function newer releases have, so that a
fallback is not code that only the oldest release ever runs. `.ci/run` also runs the
whole default suite on the oldest release admitted.
"""

from __future__ import annotations

import itertools
import typing

import pytest
import torch
from torch import Tensor
from torch.func import grad, jacfwd, vmap

from softmetrics import _operators, _relax, _transforms

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("a, b", list(itertools.product(FLOATS, FLOATS)))
def test_promote_floats_is_promote_types(a, b):
    assert _relax.promote_floats(a, b) == torch.promote_types(a, b)


class _Seen(torch.autograd.Function):
    """Records what `batched_grads` and the dispatch-key fallback say in its backward."""

    answers: typing.ClassVar[list[tuple[bool, bool]]] = []

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        _Seen.answers.append((_transforms.batched_grads(g),
                              _transforms._legacy_batched_by_key(g)))
        return 2 * g


def test_batched_gradients_are_told_by_dispatch_key_as_by_torch():
    """torch 2.1 has no `is_legacy_batchedtensor`: the fallback reads the `Batched`
    dispatch key of the gradient, and agrees with torch's function on plain and batched
    gradients (`is_grads_batched=True`)."""
    x = torch.randn(3, requires_grad=True)
    _Seen.answers.clear()
    torch.autograd.grad(_Seen.apply(x), x, torch.ones(3))
    torch.autograd.grad(_Seen.apply(x), x, torch.eye(3), is_grads_batched=True)
    assert _Seen.answers == [(False, False), (True, True)]


def _stacks(monkeypatch) -> tuple[list[typing.Any], list[typing.Any]]:
    """The transform stack read with torch's `get_interpreter_stack` and without it
    (torch 2.1's walk: take the innermost off, read the rest, put it back)."""
    with_it = _transforms._transform_stack()
    with monkeypatch.context() as m:
        m.delattr(torch._C._functorch, "get_interpreter_stack", raising=False)
        without = _transforms._transform_stack()
        batching = _transforms.is_batching()
    assert batching == _transforms.is_batching()
    return with_it, without


def test_the_transform_stack_is_read_alike_with_and_without_torchs_function(monkeypatch):
    """`is_batching` (whether `vmap` is active, which leaves out the data checks) reads
    the stack of active transforms; both ways of reading it agree under nested transforms
    and leave the stack as it was (the values still come out right)."""
    seen = []

    def f(x: Tensor) -> Tensor:
        seen.append(_stacks(monkeypatch))
        return (x.sin() * x).sum()

    x = torch.randn(2, 3, dtype=torch.float64)
    f(x[0])
    torch.testing.assert_close(grad(f)(x[0]), x[0].cos() * x[0] + x[0].sin())
    vmap(grad(f))(x)
    grad(lambda t: vmap(f)(t).sum())(x)
    jacfwd(f)(x[0])
    kinds = [[k.name for k in without] for _, without in seen]
    assert kinds == [[], ["Grad"], ["Grad", "Vmap"], ["Vmap", "Grad"], ["Jvp", "Vmap"]]
    assert all(with_it == without for with_it, without in seen)


def test_host_values_reads_inside_a_transform():
    """Inside a transform the values come one `item` each (torch 2.1 cannot list a
    tensor a transform wraps); outside, in one `tolist`: the same numbers."""
    values = torch.tensor([3, 0, 7])
    got = []

    def f(x: Tensor) -> Tensor:
        got.append(_transforms.host_values(values + 0))
        return x.sum()

    grad(f)(torch.randn(2))
    assert got == [[3, 0, 7]] == [_transforms.host_values(values)]


def test_operator_signatures_are_types_torch_2_4_reads():
    """torch 2.4 makes an operator's schema from the annotations as written: strings under
    `from __future__ import annotations` (which it rejects: `import softmetrics` failed),
    and it knows `typing.List[Tensor]` but not `list[Tensor]`. `custom_op` hands it the
    annotations as such types, throughout nested ones."""

    def prototype(a: Tensor, b: list[Tensor], c: Tensor | None, d: list[int], e: bool,
                  dtype: torch.dtype) -> tuple[Tensor, list[Tensor]]:
        raise AssertionError  # pragma: no cover - never called

    signature = _operators._typed_signature(prototype)
    annotations = [p.annotation for p in signature.parameters.values()]
    assert annotations == [Tensor, typing.List[Tensor], Tensor | None,  # noqa: UP006
                           typing.List[int], bool, torch.dtype]  # noqa: UP006
    assert signature.return_annotation == typing.Tuple[Tensor, typing.List[Tensor]]  # noqa: UP006
    assert not any(isinstance(a, str) for a in annotations)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_rounding_a_threshold_in_python_is_torchs_rounding(dtype):
    """`above` rounds the threshold's logit to the logits' dtype in Python arithmetic (a
    constant to every compiler; torch 2.6's cannot trace a tensor's `item`): the same
    number as torch's conversion, for ties (to even), subnormals and ordinary values."""
    info = torch.finfo(dtype)
    g = torch.Generator().manual_seed(0)
    ordinary = (torch.randn(2000, generator=g, dtype=torch.float64)
                * 10.0 ** torch.randint(-8, 3, (2000,), generator=g)).tolist()
    spacing = info.eps  # of 1.0; halfway between 1 and its neighbours, below and above
    ties = [1.0 + spacing / 2, 1.0 + 3 * spacing / 2, -(1.0 + spacing / 2), 1.0 - spacing / 4]
    subnormal = [info.tiny * f for f in (0.3, 0.5, 0.75, 1e-3, 0.999)]
    for x in [*ordinary, *ties, *subnormal, *(-v for v in subnormal), 0.0, 36.7, -36.7]:
        assert _relax._rounded(x, dtype) == float(torch.tensor(x, dtype=dtype)), x
