"""The sigmoid (SigLIP) contrastive loss per query: full matrix or tiles, one process or many.

Every (query, key) pair is a binary problem: with logits `l_ij = t <q_i, k_j> + b` (cosine
similarities when normalised), the pair of a query and its own key is a positive and every
other pair a negative, and the loss of query `i` is

    sum_j softplus(l_ij) - softplus(l_ii) + softplus(-l_ii)

(`softplus(l) = -log sigmoid(-l)`, `softplus(-l) = -log sigmoid(l)`). Unlike InfoNCE there
is no normalising sum across a row: the loss is a plain sum over pairs, so tiles add up
without a running log-sum-exp, and its gradient `dL/dl_ij = g_i (sigmoid(l_ij) - [j = i])`
is recomputed tile by tile in the backward pass of `_TiledSigmoid` (inside `torch.compile`
the same code as one operator, `softmetrics::siglip_tiles`). The tiles of one block
of keys (`add_block_terms_`, `add_block_grads_`) are shared with the ring across processes
of `_siglip_ring`. `sigmoid_per_query` chooses between the full matrix (plain autograd) and
the tiles with the tile sizes of InfoNCE (`auto_chunk`, `tile_rows`); `gather_keys` takes
the keys of every process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import distributed
from .._operators import custom_op
from .._relax import full_precision
from .._transforms import is_compiling, plain_backward
from ._infonce_tiles import (
    auto_chunk,
    diagonal_entries,
    inverse_norms,
    normalize_grad_,
    normalize_rows,
    partial_derivatives,
    tile_bounds,
    tile_rows,
)

__all__ = [
    "Grads",
    "Keys",
    "Tiles",
    "add_block_grads_",
    "add_block_terms_",
    "embedding_grad",
    "gather_keys",
    "new_grads",
    "sigmoid_per_query",
    "untiled_per_query",
]


class Tiles(NamedTuple):
    """Keys per tile, queries per tile and the dtype of the tiles' arithmetic."""

    chunk: int
    rows: int
    dtype: torch.dtype


class Keys(NamedTuple):
    """The keys of every process (rank order, with gradient), the row `start` of this
    process's first key among them and the global batch size `total`."""

    keys: Tensor
    start: int
    total: int


def gather_keys(key: Tensor, *, gather_distributed: bool,
                process_group: torch.distributed.ProcessGroup | None) -> Keys | None:
    """The `Keys` of every process when `gather_distributed` asks for them inside a process
    group; None otherwise. Batches may differ in size across processes."""
    if not (gather_distributed and distributed.is_distributed()):
        return None
    (keys,), sizes = distributed.all_gather_rows(key, process_group=process_group)
    return Keys(keys, sum(sizes[:distributed.get_rank(process_group)]), sum(sizes))


def untiled_per_query(scale: Tensor, bias: Tensor, normalize: bool, dtype: torch.dtype,
                      offset: int, query: Tensor, key: Tensor) -> Tensor:
    """The loss of each query with the whole `N x P` logit matrix and autograd ops: the
    untiled path and the differentiable reference of `_TiledSigmoid`. Key `i + offset` is
    the positive of query `i`."""
    q, k = query.to(dtype), key.to(dtype)
    if normalize:
        q, k = normalize_rows(q), normalize_rows(k)
    logits = (q * scale.to(dtype)) @ k.T + bias.to(dtype)
    # softplus(l) of a negative, softplus(-l) of the positive, each entry its own term (the
    # positive's added into the row and taken out again lost the terms below its rounding)
    signs = torch.ones_like(logits)
    signs.diagonal(offset).fill_(-1.0)
    return _softplus(logits * signs).sum(dim=1)


def _softplus(x: Tensor) -> Tensor:
    """`log(1 + exp(x))` as `-log sigmoid(-x)`, exact at any `x` with its gradient
    `sigmoid(x)` (`F.softplus` returns `x` above 20, off by up to `exp(-20)`)."""
    return F.logsigmoid(-x).neg_()


def _key_tiles(key: Tensor, v: Tensor, chunk: int, dtype: torch.dtype
               ) -> Iterator[tuple[int, int, Tensor]]:
    """`(start, stop, v * k)` per tile of `chunk` keys, in `dtype`."""
    for start, stop in tile_bounds(key.shape[0], chunk):
        yield start, stop, key[start:stop].to(dtype) * v[start:stop, None]


def add_block_terms_(out: Tensor, query: Tensor, u: Tensor, t: Tensor, b: Tensor, key: Tensor,
                     v: Tensor, tiles: Tiles, offset: int | None) -> None:
    """Add to `out[i]` the terms `softplus(z_ij l_ij)` of query `i` against every key of
    `key` (one block of keys), over tiles; the positive of query `i` is key `i + offset`,
    none when `offset` is None. `u`, `v` are the inverse norms (ones without
    normalisation), `t`, `b` the scale and bias in `tiles.dtype`."""
    chunk, rows, dtype = tiles
    for r0, r1 in tile_bounds(query.shape[0], rows):
        a = query[r0:r1].to(dtype) * (u[r0:r1, None] * t)  # t u q: rows x D
        for c0, c1, cand in _key_tiles(key, v, chunk, dtype):
            logits = torch.mm(a, cand.T).add_(b)
            d = None if offset is None else diagonal_entries(logits, offset + r0, c0, c1)
            positive = None if d is None else d[1].clone()
            # every pair a negative: softplus(l) = log1p(exp(-|l|)) + max(l, 0), in
            # place, exact at any l
            terms = logits.abs().neg_().exp_().log1p_().add_(logits.clamp_min_(0.0))
            if d is not None and positive is not None and offset is not None:
                # the positive: softplus(-l)
                _, entries = diagonal_entries(terms, offset + r0, c0, c1) or d
                entries.copy_(_softplus(-positive))
            out[r0:r1] += terms.sum(dim=1)
            del logits, terms


class Grads(NamedTuple):
    """Gradient accumulators of `add_block_grads_`, each None when not wanted:
    `query` `dL/d(u q)` and `key` `dL/d(v k)` (`N x D` and `P x D`, in the tiles' dtype),
    `scale` `dL/dt` and `bias` `dL/db` (0-d)."""

    query: Tensor | None
    key: Tensor | None
    scale: Tensor | None
    bias: Tensor | None


def add_block_grads_(g: Tensor, query: Tensor, u: Tensor, t: Tensor, b: Tensor, key: Tensor,
                     v: Tensor, tiles: Tiles, offset: int | None, acc: Grads) -> None:
    """Add to `acc` the gradients of `sum_i g_i loss_i` over the pairs of `query` and one
    block `key` of keys (positives as in `add_block_terms_`), recomputing each tile:
    `W = dL/dl = g_i (sigmoid(l_ij) - [j = i + offset])`, then `dL/dt += sum W s`,
    `dL/db += sum W`, `dL/d(u q) += t W (v K)` and `dL/d(v k) += t W^T (u Q)`. Each
    contribution carries this call's `t`, so a key block's accumulator can collect the
    contributions of several processes."""
    chunk, rows, dtype = tiles
    for r0, r1 in tile_bounds(query.shape[0], rows):
        a = query[r0:r1].to(dtype) * u[r0:r1, None]  # u q: rows x D
        g_rows = g[r0:r1, None]
        for c0, c1, cand in _key_tiles(key, v, chunk, dtype):
            s = torch.mm(a, cand.T)
            weight = s.mul(t).add_(b).sigmoid_()  # d softplus(l) / dl
            d = None if offset is None else diagonal_entries(weight, offset + r0, c0, c1)
            if d is not None and offset is not None:
                _, s_pos = diagonal_entries(s, offset + r0, c0, c1) or d
                # d softplus(-l) / dl = -sigmoid(-l), not sigmoid(l) - 1 (rounds to 0)
                d[1].copy_(torch.sigmoid(-(s_pos * t + b)).neg_())
            weight.mul_(g_rows)  # W = dL/dl
            if acc.scale is not None:
                acc.scale.add_(torch.dot(weight.view(-1), s.view(-1)))
            if acc.bias is not None:
                acc.bias.add_(weight.sum())
            if acc.query is not None or acc.key is not None:
                weight.mul_(t)  # dL/ds
            if acc.query is not None:  # dL/d(u q) = t W (v K)
                acc.query[r0:r1].addmm_(weight, cand)
            if acc.key is not None:  # dL/d(v k) = t W^T (u Q)
                acc.key[c0:c1].addmm_(weight.T, a)
            del s, weight


def new_grads(query: Tensor, key_rows: int, dtype: torch.dtype, need: tuple[bool, ...]
              ) -> Grads:
    """Zero accumulators for `need = (scale, bias, query, key)`: the key's of `key_rows`
    rows, all on the device of `query`."""
    need_t, need_b, need_q, need_k = need
    dev, dim = query.device, query.shape[1]
    return Grads(torch.zeros(query.shape, dtype=dtype, device=dev) if need_q else None,
                 torch.zeros((key_rows, dim), dtype=dtype, device=dev) if need_k else None,
                 torch.zeros((), dtype=dtype, device=dev) if need_t else None,
                 torch.zeros((), dtype=dtype, device=dev) if need_b else None)


def embedding_grad(acc: Tensor | None, x: Tensor, scales: Tensor, normalize: bool, rows: int
                   ) -> Tensor | None:
    """`dL/dx` from `acc = dL/d(u x)` (the normalisation's Jacobian applied in place), in
    the dtype of `x`; None for None."""
    if acc is None:
        return None
    if normalize:
        normalize_grad_(acc, x, scales, rows)
    return acc.to(x.dtype)


class _TiledSigmoid(torch.autograd.Function):
    """The sigmoid loss per query over tiles of `rows` queries x `chunk` keys.

    With `u_i = 1 / |q_i|`, `v_j = 1 / |k_j|` (ones without `normalize`), similarities
    `s_ij = u_i v_j <q_i, k_j>` and logits `l_ij = t s_ij + b`, it returns per query
    `sum_j softplus(z_ij l_ij)` with `z = -1` except at the positive `j = i + offset`
    (`z = 1`, the term being `softplus(-l_ii)`). Nothing of size `N x P` is kept: the
    forward pass sums each tile's terms (`add_block_terms_`); the backward pass recomputes
    the tiles (`add_block_grads_`) and applies the normalisation's Jacobian to the two
    gradient buffers in place at the end. When a graph is being built
    (`create_graph=True`) the backward differentiates `untiled_per_query` instead: the exact
    second derivative, at the memory of the full matrix.
    """

    apply: ClassVar[Callable[..., Tensor]]

    @staticmethod
    def forward(ctx: Any, scale: Tensor, bias: Tensor, normalize: bool, chunk: int, rows: int,
                dtype: torch.dtype, offset: int, query: Tensor, key: Tensor) -> Tensor:
        tiles = Tiles(chunk, rows, dtype)
        out, u, v = _forward(scale, bias, query, key, normalize, tiles, offset)
        ctx.save_for_backward(scale, bias, query, key, u, v)
        ctx.options = (normalize, tiles, offset)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        normalize, tiles, offset = ctx.options
        need = ctx.needs_input_grad
        wants = (need[0], need[1], need[7], need[8])  # scale, bias, query, key
        scale, bias, query, key, u, v = ctx.saved_tensors
        g_t, g_b, g_q, g_k = _backward(grad, scale, bias, query, key, u, v, wants, normalize,
                                       tiles, offset)
        return (g_t, g_b, None, None, None, None, None, g_q, g_k)


def _forward(scale: Tensor, bias: Tensor, query: Tensor, key: Tensor, normalize: bool,
             tiles: Tiles, offset: int) -> tuple[Tensor, Tensor, Tensor]:
    """`_TiledSigmoid`'s forward pass: the losses and the inverse norms `u`, `v` of the
    queries and keys (which the backward pass needs)."""
    dtype, rows = tiles.dtype, tiles.rows
    u = inverse_norms(query, dtype, normalize, rows)
    v = inverse_norms(key, dtype, normalize, rows)
    out = torch.zeros(query.shape[0], dtype=dtype, device=query.device)
    add_block_terms_(out, query, u, scale.to(dtype), bias.to(dtype), key, v, tiles, offset)
    return out, u, v


def _backward(grad: Tensor, scale: Tensor, bias: Tensor, query: Tensor, key: Tensor,
              u: Tensor, v: Tensor, wants: tuple[bool, ...], normalize: bool, tiles: Tiles,
              offset: int) -> tuple[Tensor | None, ...]:
    """`_TiledSigmoid`'s backward pass: the gradients of the scale, bias, queries and keys
    where `wants` asks for them, None for the others."""
    if plain_backward(grad):  # differentiable
        return tuple(partial_derivatives(
            lambda t, b, q, k: untiled_per_query(t, b, normalize, tiles.dtype, offset, q, k),
            grad, (scale, bias, query, key), wants))
    dtype = tiles.dtype
    # on the device of the embeddings: scale and bias may be 0-d tensors elsewhere
    acc = new_grads(query, key.shape[0], dtype, wants)
    add_block_grads_(grad.to(dtype), query, u, scale.to(dtype), bias.to(dtype), key, v,
                     tiles, offset, acc)
    g_q = embedding_grad(acc.query, query, u, normalize, tiles.rows)
    g_k = embedding_grad(acc.key, key, v, normalize, tiles.rows)
    g_t = None if acc.scale is None else acc.scale.to(scale.dtype)
    g_b = None if acc.bias is None else acc.bias.to(bias.dtype)
    return g_t, g_b, g_q, g_k


def _define_operator() -> Callable[..., tuple[Tensor, Tensor, Tensor]] | None:
    """`softmetrics::siglip_tiles` (`_forward`) and `softmetrics::siglip_tiles_backward`
    (`_backward`), defined as InfoNCE's operators are; None before torch 2.4, where the
    compiler traces `_TiledSigmoid`."""
    if not hasattr(torch.library, "custom_op"):
        return None

    @custom_op("softmetrics::siglip_tiles", mutates_args=())
    def forward(scale: Tensor, bias: Tensor, query: Tensor, key: Tensor, normalize: bool,
                chunk: int, rows: int, dtype: torch.dtype, offset: int
                ) -> tuple[Tensor, Tensor, Tensor]:
        return _forward(scale, bias, query, key, normalize, Tiles(chunk, rows, dtype), offset)

    @forward.register_fake
    def _(scale: Tensor, bias: Tensor, query: Tensor, key: Tensor, normalize: bool,
          chunk: int, rows: int, dtype: torch.dtype, offset: int
          ) -> tuple[Tensor, Tensor, Tensor]:
        return (query.new_empty(query.shape[0], dtype=dtype),
                query.new_empty(query.shape[0], dtype=dtype),
                key.new_empty(key.shape[0], dtype=dtype))

    @custom_op("softmetrics::siglip_tiles_backward", mutates_args=())
    def backward(grad: Tensor, scale: Tensor, bias: Tensor, query: Tensor, key: Tensor,
                 u: Tensor, v: Tensor, wants: list[bool], normalize: bool, chunk: int,
                 rows: int, dtype: torch.dtype, offset: int) -> list[Tensor]:
        with torch.no_grad():  # the tiles (a graph being built does not come here)
            found = _backward(grad, scale, bias, query, key, u, v, tuple(wants), normalize,
                              Tiles(chunk, rows, dtype), offset)
        # an operator returns a tensor for every output: empty where no gradient is wanted
        # (left out again below), each on the device of its input
        return [x.new_empty(0) if g is None else g.to(x.device)
                for x, g in zip((scale, bias, query, key), found, strict=True)]

    @backward.register_fake
    def _(grad: Tensor, scale: Tensor, bias: Tensor, query: Tensor, key: Tensor, u: Tensor,
          v: Tensor, wants: list[bool], normalize: bool, chunk: int, rows: int,
          dtype: torch.dtype, offset: int) -> list[Tensor]:
        return [torch.empty_like(x) if want else x.new_empty(0)
                for x, want in zip((scale, bias, query, key), wants, strict=True)]

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
        scale, bias, query, key, normalize, chunk, rows, dtype, offset = inputs
        ctx.save_for_backward(scale, bias, query, key, *output[1:])
        ctx.options = (normalize, chunk, rows, dtype, offset)
        ctx.wants = [x.requires_grad for x in (scale, bias, query, key)]

    def differentiate(ctx: Any, grad: Tensor, *_: Any) -> tuple[Any, ...]:
        normalize, chunk, rows, dtype, offset = ctx.options
        scale, bias, query, key, u, v = ctx.saved_tensors
        if torch.is_grad_enabled():  # a graph being built: the untiled reference
            found = _backward(grad, scale, bias, query, key, u, v, tuple(ctx.wants),
                              normalize, Tiles(chunk, rows, dtype), offset)
        else:
            found = tuple(g if want else None for g, want in zip(
                backward(grad, scale, bias, query, key, u, v, ctx.wants, normalize, chunk,
                         rows, dtype, offset), ctx.wants, strict=True))
        return (*found, None, None, None, None, None)

    forward.register_autograd(differentiate, setup_context=setup_context)
    return cast(Callable[..., tuple[Tensor, Tensor, Tensor]], forward)


_OPERATOR = _define_operator()


def sigmoid_per_query(query: Tensor, key: Tensor, keys: Keys | None, *, scale: Tensor,
                      bias: Tensor, normalize: bool, chunk_size: int | None,
                      dtype: torch.dtype) -> Tensor:
    """The sigmoid loss of each of this process's queries against every key (of every
    process when `keys` are given, its own key at row `keys.start + i`): the full matrix
    or, where `auto_chunk` asks for them, tiles. `scale` and `bias` are 0-d tensors."""
    offset = 0 if keys is None else keys.start
    every_key = key if keys is None else keys.keys
    chunk = auto_chunk(query.shape[0], every_key.shape[0], chunk_size, query.device)
    with full_precision(query.device):  # float32 logits and sums, also under autocast
        if chunk is None:
            return untiled_per_query(scale, bias, normalize, dtype, offset, query, every_key)
        rows = tile_rows(chunk, query.shape[1], query.device)
        if is_compiling() and _OPERATOR is not None:  # one operator, not unrolled tiles
            return _OPERATOR(scale, bias, query, every_key, normalize, chunk, rows, dtype,
                             offset)[0]
        return _TiledSigmoid.apply(scale, bias, normalize, chunk, rows, dtype, offset, query,
                                   every_key)
