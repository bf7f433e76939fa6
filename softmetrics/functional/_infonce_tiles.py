"""The tiled InfoNCE: a running log-sum-exp over tiles of (anchors x candidates).

InfoNCE over `N` anchors and `P` candidates needs the `N x P` logits only one tile at a
time: the forward pass of `tiled_info_nce` keeps a running log-sum-exp over tiles of
candidates, and its backward pass recomputes each tile, so the extra memory is the
gradients of the embeddings plus one tile instead of `O(N * P)`. `auto_chunk` and
`tile_rows` choose the tile sizes. Inside `torch.compile` the same code runs as one
operator of its own (`softmetrics::info_nce_tiles`), so the compiler does not unroll the
tile loops. The tile helpers (`tile_bounds`, `mask_self`, `rowdot`) also serve the
untiled InfoNCE and the retrieval accuracy in `_contrastive_core`, and with the
normalisation helpers (`inverse_norms`, `normalize_grad_`, `diagonal_entries`) the tiled
sigmoid loss in `_siglip_tiles`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, cast

import torch
from torch import Tensor

from .. import _tuning
from .._operators import custom_op
from .._relax import bounded
from .._transforms import is_compiling, is_transformed, plain_backward, recompute_grad

__all__ = [
    "NORM_EPS",
    "auto_chunk",
    "diagonal_entries",
    "flat_passes",
    "inverse_norms",
    "mask_self",
    "normalize_grad_",
    "normalize_rows",
    "normalized",
    "partial_derivatives",
    "rowdot",
    "tile_bounds",
    "tile_rows",
    "tiled_info_nce",
    "unflat_passes",
]


def diagonal_entries(logits: Tensor, offset: int, start: int, stop: int
              ) -> tuple[int, Tensor] | None:
    """The entries `logits[i, i + offset - start]` of the rows whose column `i + offset` (in
    the full candidate matrix) lies in the tile `[start, stop)`: `(first, entries)`, the
    first such row and a writable view of the entries (of rows `first, first + 1, ...`);
    None if there are none."""
    n = logits.shape[0]
    first = max(0, start - offset)
    last = min(n, stop - offset)
    if last <= first:
        return None
    column = first + offset - start
    return first, logits[first:last, column:column + (last - first)].diagonal()


def mask_self(logits: Tensor, self_col: int, row: int, start: int, stop: int) -> None:
    """Leave candidate `i + self_col` out of row `i` (the tile's rows are anchors `row,
    row + 1, ...`, its columns candidates `[start, stop)`); nothing when `self_col < 0`."""
    if self_col >= 0 and (d := diagonal_entries(logits, self_col + row, start, stop)) is not None:
        d[1].fill_(float("-inf"))


def tile_bounds(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def _logsumexp_(logits: Tensor) -> Tensor:
    """Row log-sum-exp that overwrites `logits` (no second buffer); -inf for empty rows."""
    top = logits.amax(dim=1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return logits.sub_(top).exp_().sum(dim=1).log_().add_(top.squeeze(1))


# F.normalize's floor on the norm: x / max(|x|, eps)
NORM_EPS = 1e-12


def normalized(x: Tensor) -> Tensor:
    """`F.normalize(x, dim=-1, eps=NORM_EPS)`, the same values, with the gradient at the
    floor itself (`|x| == eps`) taken through the norm in every torch release, as torch's
    own up to 2.13 (from 2.14 its clamp gives none there; see `_relax.bounded`)."""
    return x / bounded(torch.linalg.vector_norm(x, dim=-1, keepdim=True), NORM_EPS)


def inverse_norms(x: Tensor, dtype: torch.dtype, normalize: bool, rows: int) -> Tensor:
    """`1 / max(|x_i|, eps)` per row in `dtype` (ones without `normalize`), computed over
    blocks of rows so that a half-precision `x` is never converted whole."""
    if not normalize:
        return torch.ones(x.shape[0], dtype=dtype, device=x.device)
    out = torch.empty(x.shape[0], dtype=dtype, device=x.device)
    for start, stop in tile_bounds(x.shape[0], rows):
        torch.linalg.vector_norm(x[start:stop].to(dtype), dim=1, out=out[start:stop])
    return out.clamp_min_(NORM_EPS).reciprocal_()


# a pass (a, blocks, self_col, pos) of `_TiledInfoNCE`
Pass = tuple[int, tuple[int, ...], int, int]


class _TiledInfoNCE(torch.autograd.Function):
    """InfoNCE over tiles, for one or more *passes* over shared embeddings.

    `tensors` are embeddings as given (any floating dtype, converted per tile to
    `dtype`); a pass `(a, blocks, self_col, pos)` takes `tensors[a]` as anchors and the
    concatenation `C` of `tensors[b] for b in blocks` as candidates, with similarities

        s_ij = <a_i, c_j> u_i v_j / tau,   u_i = 1 / |a_i|,   v_j = 1 / |c_j|

    (`u = v = 1` without `normalize`), and returns `lse_i - s_{i, pos + i}` per anchor
    (`lse_i` alone when `pos < 0`), with `lse_i = logsumexp_j s_ij` leaving out candidate
    `i + self_col` when `self_col >= 0`. The output concatenates the passes.

    No normalised, scaled or concatenated copies are made. The forward pass keeps a
    running log-sum-exp over tiles of `rows x chunk` similarities; the backward pass
    recomputes each tile and accumulates, for every embedding tensor, `acc_t =
    dL/d(u_t * t)` in one float32 buffer of its size shared by all its roles (anchor in
    one pass, candidate in another: CLIP's two directions cost two buffers, not four),
    then applies the normalisation in place, `dL/dt_i = u_i (acc_i - <t_i, acc_i> u_i^2
    t_i)`. The temperature's gradient is `-sum_ij W_ij s_ij / tau` over the tiles, with
    `W = dL/ds`.

    When a graph is being built (`create_graph=True`), the backward instead
    differentiates the same losses recomputed untiled with autograd (`_untiled`): the
    exact second derivative, at the memory of the full similarity matrices.
    """

    apply: ClassVar[Callable[..., Tensor]]

    @staticmethod
    def forward(ctx: Any, temperature: Tensor, normalize: bool, chunk: int,
                rows: int, dtype: torch.dtype, passes: tuple[Pass, ...], *tensors: Tensor
                ) -> Tensor:
        out, scales, lses = _forward(temperature, normalize, chunk, rows, dtype, passes,
                                     tensors)
        ctx.save_for_backward(temperature, *tensors, *scales, *lses)
        ctx.options = (normalize, chunk, rows, dtype, passes, len(tensors))
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        normalize, chunk, rows, dtype, passes, count = ctx.options
        temperature, *saved = ctx.saved_tensors
        tensors, scales, lses = saved[:count], saved[count:2 * count], saved[2 * count:]
        need_tau, need = ctx.needs_input_grad[0], ctx.needs_input_grad[6:]
        grad_tau, grads = _backward(grad, temperature, tensors, scales, lses, need_tau, need,
                                    normalize, chunk, rows, dtype, passes)
        return (grad_tau, None, None, None, None, None, *grads)


def _forward(temperature: Tensor, normalize: bool, chunk: int, rows: int, dtype: torch.dtype,
             passes: tuple[Pass, ...], tensors: Sequence[Tensor]
             ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """`_TiledInfoNCE`'s forward pass: the losses, the inverse norms of the tensors and
    the log-sum-exp of each pass (which the backward pass needs)."""
    inv_tau = temperature.to(dtype).reciprocal()
    scales = [inverse_norms(t, dtype, normalize, rows) for t in tensors]
    out, lses = [], []
    for a_idx, blocks, self_col, pos in passes:
        anchor = tensors[a_idx]
        r = scales[a_idx] * inv_tau
        n = anchor.shape[0]
        lse = torch.full((n,), float("-inf"), dtype=dtype, device=anchor.device)
        positive = torch.zeros(n, dtype=dtype, device=anchor.device)
        for r0, r1 in tile_bounds(n, rows):
            a = anchor[r0:r1].to(dtype) * r[r0:r1, None]  # u a / tau: rows x D
            for c0, c1, _, _, cand in _tiles(tensors, scales, blocks, chunk, dtype):
                logits = torch.mm(a, cand.T)
                if pos >= 0 and (d := diagonal_entries(logits, pos + r0, c0, c1)) is not None:
                    first, entries = d
                    positive[r0 + first:r0 + first + entries.shape[0]] = entries
                mask_self(logits, self_col, r0, c0, c1)
                lse[r0:r1] = torch.logaddexp(lse[r0:r1], _logsumexp_(logits))
                del logits
        lses.append(lse)
        out.append(lse - positive if pos >= 0 else lse.clone())
    return torch.cat(out), scales, lses


def _backward(grad: Tensor, temperature: Tensor, tensors: Sequence[Tensor],
              scales: Sequence[Tensor], lses: Sequence[Tensor], need_tau: bool,
              need: Sequence[bool], normalize: bool, chunk: int, rows: int,
              dtype: torch.dtype, passes: tuple[Pass, ...]
              ) -> tuple[Tensor | None, list[Tensor | None]]:
    """`_TiledInfoNCE`'s backward pass: the gradients of the temperature (with
    `need_tau`) and of the tensors (where `need`), None for the others."""
    if plain_backward(grad):  # differentiable
        grad_tau, *second = partial_derivatives(
            lambda t, *xs: _untiled(t, normalize, dtype, passes, xs), grad,
            (temperature, *tensors), (need_tau, *need))
        return grad_tau, second
    inv_tau = temperature.to(dtype).reciprocal()
    acc = [torch.zeros(t.shape, dtype=dtype, device=t.device) if want else None
           for t, want in zip(tensors, need, strict=True)]
    # on the device of the embeddings: a temperature may live elsewhere (a 0-d CPU
    # tensor takes part in device kernels as a number; autograd moves its gradient)
    tau_sum = torch.zeros((), dtype=dtype, device=grad.device)
    grad = grad.to(dtype).split([lse.shape[0] for lse in lses])
    for (a_idx, blocks, self_col, pos), lse, g_pass in zip(passes, lses, grad, strict=True):
        anchor, u_a, acc_a = tensors[a_idx], scales[a_idx], acc[a_idx]
        r = u_a * inv_tau
        # a row without any candidate has lse = -inf and no gradient; keep exp() finite
        lse = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
        for r0, r1 in tile_bounds(anchor.shape[0], rows):
            a = anchor[r0:r1].to(dtype) * r[r0:r1, None]  # u a / tau: rows x D
            g = g_pass[r0:r1, None]
            for c0, c1, b, start, cand in _tiles(tensors, scales, blocks, chunk, dtype):
                logits = torch.mm(a, cand.T)
                plain = logits.clone() if need_tau else None  # before the mask: finite
                mask_self(logits, self_col, r0, c0, c1)
                weight = logits.sub_(lse[r0:r1, None]).exp_().mul_(g)  # W = dL/ds
                if pos >= 0 and (d := diagonal_entries(weight, pos + r0, c0, c1)) is not None:
                    first, entries = d
                    entries.sub_(g_pass[r0 + first:r0 + first + entries.shape[0]])
                if plain is not None:
                    tau_sum += torch.mul(weight, plain).sum()
                if acc_a is not None:  # dL/d(u a) = W (v C) / tau
                    acc_a[r0:r1].addmm_(weight, cand * inv_tau)
                if (acc_b := acc[b]) is not None:  # dL/d(v c) = W^T (u A / tau)
                    acc_b[start:start + (c1 - c0)].addmm_(weight.T, a)
                del logits, weight, plain
    grads: list[Tensor | None] = []
    for i, (t, u) in enumerate(zip(tensors, scales, strict=True)):
        buf, acc[i] = acc[i], None  # a half-precision copy replaces, not joins, it
        if buf is not None and normalize:
            normalize_grad_(buf, t, u, rows)
        grads.append(None if buf is None else buf.to(t.dtype))
        del buf
    grad_tau = (-tau_sum * inv_tau).to(temperature.dtype) if need_tau else None
    return grad_tau, grads


def partial_derivatives(fn: Callable[..., Tensor], grad: Tensor, inputs: Sequence[Tensor],
                        wants: Sequence[bool]) -> list[Tensor | None]:
    """The partial derivatives of `<fn(*inputs), grad>` in the inputs where `wants` asks,
    None for the others (`recompute_grad`: differentiable functions while a graph is being
    built): the plain backward of a tiled Function (`plain_backward`).

    Each input enters `fn` through an alias of its own: `torch.autograd.grad` in an input
    would otherwise give its total derivative, through every other input computed from it
    (keys computed from the queries, scaled anchors and their own block of candidates),
    and autograd would then add those paths a second time on its way back to it."""
    with torch.enable_grad():  # the aliases are recorded (batched gradients: grad mode off)
        aliases = [x.view_as(x) if want else x for x, want in zip(inputs, wants, strict=True)]
    wanted = [a for a, want in zip(aliases, wants, strict=True) if want]
    found = iter(recompute_grad(lambda: fn(*aliases), wanted, grad))
    return [next(found) if want else None for want in wants]


def _untiled(temperature: Tensor, normalize: bool, dtype: torch.dtype, passes: tuple[Pass, ...],
             tensors: tuple[Tensor, ...]) -> Tensor:
    """The losses of `_TiledInfoNCE` computed at once with autograd ops (the full
    similarity matrix of each pass): its differentiable reference."""
    embedded = [t.to(dtype) for t in tensors]
    if normalize:
        embedded = [normalized(t) for t in embedded]
    out = []
    for a_idx, blocks, self_col, pos in passes:
        anchor = embedded[a_idx]
        cand = torch.cat([embedded[b] for b in blocks])
        logits = (anchor / temperature.to(dtype)) @ cand.T
        rows = torch.arange(anchor.shape[0], device=anchor.device)
        if self_col >= 0:
            columns = torch.arange(cand.shape[0], device=anchor.device)
            masked = columns.unsqueeze(0) == (rows + self_col).unsqueeze(1)
            logits = logits.masked_fill(masked, float("-inf"))
        lse = torch.logsumexp(logits, dim=1)
        if pos >= 0:
            column = (rows + pos).clamp_max(cand.shape[0] - 1)
            positive = logits.gather(1, column.unsqueeze(1)).squeeze(1)
            lse = lse - torch.where(rows + pos < cand.shape[0], positive, 0.0)
        out.append(lse)
    return torch.cat(out)


def tiled_info_nce(temperature: Tensor, normalize: bool, chunk: int, rows: int,
                   dtype: torch.dtype, passes: tuple[Pass, ...], *tensors: Tensor) -> Tensor:
    """InfoNCE of one or more passes over `tensors` in tiles of `rows` anchors x `chunk`
    candidates (`_TiledInfoNCE`, which documents `passes`): the per-anchor losses of the
    passes, concatenated, differentiable in `temperature` and every tensor. Inside
    `torch.compile` the same passes run as one operator of their own
    (`softmetrics::info_nce_tiles`, where torch has `torch.library.custom_op`), so the
    compiler does not unroll the tile loops into its graph."""
    if is_compiling() and _OPERATOR is not None:
        return _OPERATOR(temperature, list(tensors), normalize, chunk, rows, dtype,
                         flat_passes(passes))[0]
    return _TiledInfoNCE.apply(temperature, normalize, chunk, rows, dtype, passes, *tensors)


def flat_passes(passes: tuple[Pass, ...]) -> list[int]:
    """`passes` as one list of ints, an operator's argument: `a, self_col, pos,
    len(blocks), *blocks` per pass."""
    out: list[int] = []
    for a, blocks, self_col, pos in passes:
        out += [a, self_col, pos, len(blocks), *blocks]
    return out


def unflat_passes(flat: Sequence[int]) -> tuple[Pass, ...]:
    """The passes of `flat_passes(passes)`."""
    passes, i = [], 0
    while i < len(flat):
        a, self_col, pos, k = flat[i:i + 4]
        passes.append((a, tuple(flat[i + 4:i + 4 + k]), self_col, pos))
        i += 4 + k
    return tuple(passes)


def _define_operator() -> Callable[..., tuple[Tensor, list[Tensor], list[Tensor]]] | None:
    """`softmetrics::info_nce_tiles`: `_forward` as an operator, differentiated by
    `softmetrics::info_nce_tiles_backward` (`_backward`); both run eagerly, opaque to the
    compiler, whatever the number of tiles. None before torch 2.4 (no
    `torch.library.custom_op`): there the compiler traces `_TiledInfoNCE`."""
    if not hasattr(torch.library, "custom_op"):
        return None

    @custom_op("softmetrics::info_nce_tiles", mutates_args=())
    def forward(temperature: Tensor, tensors: list[Tensor], normalize: bool, chunk: int,
                rows: int, dtype: torch.dtype, passes: list[int]
                ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        return _forward(temperature, normalize, chunk, rows, dtype, unflat_passes(passes),
                        tensors)

    @forward.register_fake
    def _(temperature: Tensor, tensors: list[Tensor], normalize: bool, chunk: int,
          rows: int, dtype: torch.dtype, passes: list[int]
          ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        anchors = [tensors[p[0]] for p in unflat_passes(passes)]
        return (tensors[0].new_empty(sum(a.shape[0] for a in anchors), dtype=dtype),
                [t.new_empty(t.shape[0], dtype=dtype) for t in tensors],
                [a.new_empty(a.shape[0], dtype=dtype) for a in anchors])

    @custom_op("softmetrics::info_nce_tiles_backward", mutates_args=())
    def backward(grad: Tensor, temperature: Tensor, tensors: list[Tensor],
                 scales: list[Tensor], lses: list[Tensor], need: list[bool],
                 normalize: bool, chunk: int, rows: int, dtype: torch.dtype,
                 passes: list[int]) -> tuple[Tensor, list[Tensor]]:
        with torch.no_grad():  # the tiles (a graph being built does not come here)
            grad_tau, grads = _backward(grad, temperature, tensors, scales, lses, need[0],
                                        need[1:], normalize, chunk, rows, dtype,
                                        unflat_passes(passes))
        # an operator returns a tensor for every output: zeros and empty tensors where
        # no gradient is wanted (left out again below)
        return (torch.zeros_like(temperature) if grad_tau is None
                else grad_tau.to(temperature.device),
                [t.new_empty(0) if g is None else g for t, g in zip(tensors, grads, strict=True)])

    @backward.register_fake
    def _(grad: Tensor, temperature: Tensor, tensors: list[Tensor], scales: list[Tensor],
          lses: list[Tensor], need: list[bool], normalize: bool, chunk: int, rows: int,
          dtype: torch.dtype, passes: list[int]) -> tuple[Tensor, list[Tensor]]:
        return (torch.empty_like(temperature),
                [torch.empty_like(t) if want else t.new_empty(0)
                 for t, want in zip(tensors, need[1:], strict=True)])

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
        temperature, tensors, normalize, chunk, rows, dtype, passes = inputs
        _, scales, lses = output
        ctx.save_for_backward(temperature, *tensors, *scales, *lses)
        ctx.options = (normalize, chunk, rows, dtype, passes, len(tensors))
        ctx.need = [temperature.requires_grad, *(t.requires_grad for t in tensors)]

    def differentiate(ctx: Any, grad: Tensor, *_: Any) -> tuple[Any, ...]:
        normalize, chunk, rows, dtype, passes, count = ctx.options
        temperature, *saved = ctx.saved_tensors
        tensors, scales, lses = saved[:count], saved[count:2 * count], saved[2 * count:]
        need = ctx.need
        if torch.is_grad_enabled():  # a graph being built: the untiled reference
            grad_tau, grads = _backward(grad, temperature, tensors, scales, lses, need[0],
                                        need[1:], normalize, chunk, rows, dtype,
                                        unflat_passes(passes))
        else:
            tau, found = backward(grad, temperature, tensors, scales, lses, need, normalize,
                                  chunk, rows, dtype, passes)
            grad_tau = tau if need[0] else None
            grads = [g if want else None for g, want in zip(found, need[1:], strict=True)]
        return grad_tau, grads, None, None, None, None, None

    forward.register_autograd(differentiate, setup_context=setup_context)
    return cast(Callable[..., tuple[Tensor, list[Tensor], list[Tensor]]], forward)


_OPERATOR = _define_operator()


def _tiles(tensors: Sequence[Tensor], scales: Sequence[Tensor], blocks: tuple[int, ...],
           chunk: int, dtype: torch.dtype) -> Iterator[tuple[int, int, int, int, Tensor]]:
    """`(start, stop, index, row, v * c)` per tile of the candidates `tensors[b] for b in
    blocks`: its columns `[start, stop)` in their concatenation, the tensor's `index` and
    the tile's first `row` in that tensor."""
    base = 0
    for b in blocks:
        block, v = tensors[b], scales[b]
        for start, stop in tile_bounds(block.shape[0], chunk):
            yield (base + start, base + stop, b, start,
                   block[start:stop].to(dtype) * v[start:stop, None])
        base += block.shape[0]


def rowdot(x: Tensor, y: Tensor) -> Tensor:
    """`<x_i, y_i>` per row without an elementwise product buffer (a batched matmul)."""
    return torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).view(-1)


class _NormalizeRows(torch.autograd.Function):
    """`F.normalize(x, dim=1, eps=NORM_EPS)` of rows (N, D) with a hand-written backward,
    `dL/dx = (g - y <g, y>) / max(|x|, eps)` without the projection where the norm was
    floored: five operations and two (N, D) passes, where autograd's backward of
    `F.normalize` takes more than twice as many and several more passes. When a graph is being
    built the backward differentiates `normalized` (second derivatives)."""

    apply: ClassVar[Callable[[Tensor], Tensor]]

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        scale = norm.clamp_min(NORM_EPS)
        y: Tensor = x / scale
        ctx.save_for_backward(x, y, norm, scale)
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Tensor:
        x, y, norm, scale = ctx.saved_tensors
        if plain_backward(g):  # differentiable
            return recompute_grad(lambda: normalized(x), (x,), g)[0]
        # the gradient passes through the norm at the floor itself (`norm == eps`)
        dot = rowdot(g, y).unsqueeze(1).masked_fill_(norm < NORM_EPS, 0.0)
        return torch.addcmul(g, y, dot, value=-1.0).div_(scale)


def normalize_rows(x: Tensor) -> Tensor:
    """`F.normalize(x, dim=-1, eps=NORM_EPS)`: for rows (N, D) through `_NormalizeRows`
    when a gradient to `x` is being recorded (also inside `torch.compile`, so that a
    compiled step computes what the eager one does), else, and inside `torch.func`
    transforms, `normalized`."""
    if x.ndim == 2 and x.requires_grad and torch.is_grad_enabled() and not is_transformed():
        return _NormalizeRows.apply(x)
    return normalized(x)


def normalize_grad_(acc: Tensor, x: Tensor, u: Tensor, rows: int) -> None:
    """Turn `acc = dL/d(u * x)`, `u = 1 / max(|x|, eps)`, into `dL/dx` in place:
    `u (acc - <x, acc> u^2 x)`, without the second term where the norm was floored (below
    `eps`; at it, the term stays, as in `normalized`)."""
    for start, stop in tile_bounds(x.shape[0], rows):
        xs, out, us = x[start:stop].to(acc.dtype), acc[start:stop], u[start:stop, None]
        floored = rowdot(xs, xs).unsqueeze(1) < NORM_EPS * NORM_EPS
        coef = torch.where(floored, 0.0, rowdot(xs, out).unsqueeze(1) * us * us)
        out.addcmul_(xs, coef, value=-1.0).mul_(us)


def auto_chunk(n: int, p: int, chunk_size: int | None, device: torch.device) -> int | None:
    """Candidates per tile for `n` anchors and `p` candidates, or None for the full matrix
    (plain autograd): `chunk_size` when given and below `p`. With `chunk_size=None`, the
    full matrix up to `_tuning.INFONCE_AUTO_TILE_ELEMENTS` logits, above that tiles of
    about `_tuning.infonce_tile_elements(device)` similarities: all `n` anchors at once
    while `n` is small, else square tiles (each anchor block is then read once per
    `chunk` candidates, not once per `INFONCE_MIN_CHUNK`). Always the full matrix inside
    `torch.func` transforms, which cannot run the tiles' autograd Functions."""
    if is_transformed():
        return None
    if chunk_size is None:
        if n * p <= _tuning.INFONCE_AUTO_TILE_ELEMENTS:
            return None
        tile = _tuning.infonce_tile_elements(device)
        chunk_size = max(_tuning.INFONCE_MIN_CHUNK, tile // max(n, 1), math.isqrt(tile))
    return None if chunk_size >= p else chunk_size


def tile_rows(chunk: int, dim: int, device: torch.device) -> int:
    """Anchors per tile for tiles of `chunk` candidates: the tile's logits and its scaled
    anchors (`rows x dim`) each hold at most about `infonce_tile_elements(device)` numbers."""
    tile = _tuning.infonce_tile_elements(device)
    return max(1, min(tile // chunk, tile // max(dim, 1)))
