"""The sigmoid (SigLIP) loss across processes with the keys passed around a ring.

The chunked implementation of Zhai et al. (2023, Sec. 3.3): instead of gathering the keys
of every process, each process holds its own block of keys and the block in flight. At
step `s` of `world_size` steps, process `r` holds the block of process `(r - s) mod W`,
scores its own queries against it in the tiles of `_siglip_tiles` (the positives only at
step 0, in its own block) and meanwhile passes the block on to process `r + 1` and
receives the next from process `r - 1`.

The backward pass keeps none of the other processes' blocks: it passes the key blocks
around the ring again, each together with an accumulator of its gradient. Every process
adds its queries' contribution to the accumulator of the block it holds before passing
both on; after `world_size` steps each block has met the queries of every process and its
accumulator, one exchange later, is back at its owner. The query gradient and the scale
and bias gradients accumulate locally, as in `_TiledSigmoid`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from .. import distributed
from .._relax import full_precision
from .._transforms import plain_backward
from ._infonce_tiles import auto_chunk, inverse_norms, partial_derivatives, tile_rows
from ._siglip_tiles import (
    Tiles,
    add_block_grads_,
    add_block_terms_,
    embedding_grad,
    new_grads,
    untiled_per_query,
)

__all__ = ["ring_sigmoid_per_query"]


class _RingSigmoid(torch.autograd.Function):
    """The sigmoid loss of this process's queries against the keys of every process of
    `ring`, whose key blocks have `sizes` rows (rank order); this process's own keys are
    `key`, key `i` the positive of query `i`. Memory: two key blocks (held and in flight)
    in the forward pass; in the backward pass two key blocks, two key-gradient
    accumulators (held and in flight) and the query gradient. When a graph is being built
    (`create_graph=True`) the backward pass gathers the keys with gradient and
    differentiates `untiled_per_query` instead: the exact second derivative, at the memory
    of the gather and of the full matrix."""

    apply: ClassVar[Callable[..., Tensor]]

    @staticmethod
    def forward(ctx: Any, scale: Tensor, bias: Tensor, normalize: bool, tiles: Tiles,
                ring: distributed.Ring, sizes: list[int], query: Tensor, key: Tensor
                ) -> Tensor:
        dtype, rows = tiles.dtype, tiles.rows
        t, b = scale.to(dtype), bias.to(dtype)
        u = inverse_norms(query, dtype, normalize, rows)
        out = torch.zeros(query.shape[0], dtype=dtype, device=query.device)
        held, dim = key, key.shape[1]
        for step in range(ring.world):
            pending = None
            if step < ring.world - 1:  # the next block travels while this one is scored
                incoming = sizes[(ring.rank - step - 1) % ring.world]
                pending = ring.shift([held], [((incoming, dim), key.dtype)])
            v = inverse_norms(held, dtype, normalize, rows)
            add_block_terms_(out, query, u, t, b, held, v, tiles, 0 if step == 0 else None)
            if pending is not None:
                (held,) = pending()
        ctx.save_for_backward(scale, bias, query, key, u)
        ctx.options = (normalize, tiles, ring, sizes)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        normalize, tiles, ring, sizes = ctx.options
        scale, bias, query, key, u = ctx.saved_tensors
        need = ctx.needs_input_grad
        wants = (need[0], need[1], need[6], need[7])  # scale, bias, query, key
        nothing = (None,) * 4  # normalize, tiles, ring, sizes
        if plain_backward(grad):  # differentiable
            g_t, g_b, g_q, g_k = _gathered_grads(scale, bias, query, key, grad, wants,
                                                 normalize, tiles.dtype, ring)
            return (g_t, g_b, *nothing, g_q, g_k)
        dtype, rows = tiles.dtype, tiles.rows
        t, b, g = scale.to(dtype), bias.to(dtype), grad.to(dtype)
        dim = key.shape[1]
        own = new_grads(query, key.shape[0], dtype, wants)
        held, held_acc = key, own.key
        for step in range(ring.world):
            src = (ring.rank - step) % ring.world
            incoming = sizes[(src - 1) % ring.world]
            pending = None
            if step < ring.world - 1:  # the next key block travels during the tiles
                pending = ring.shift([held], [((incoming, dim), key.dtype)])
            v = inverse_norms(held, dtype, normalize, rows)
            acc = own._replace(key=held_acc)
            add_block_grads_(g, query, u, t, b, held, v, tiles, 0 if step == 0 else None, acc)
            if held_acc is not None and ring.world > 1:  # on, with this process's share
                (held_acc,) = ring.shift([held_acc], [((incoming, dim), dtype)], tag=1)()
            if pending is not None:
                (held,) = pending()
        # after world_size steps the accumulator held is this process's own block's
        g_q = embedding_grad(own.query, query, u, normalize, rows)
        g_k = None if held_acc is None else embedding_grad(
            held_acc, key, inverse_norms(key, dtype, normalize, rows), normalize, rows)
        g_t = None if own.scale is None else own.scale.to(scale.dtype)
        g_b = None if own.bias is None else own.bias.to(bias.dtype)
        return (g_t, g_b, *nothing, g_q, g_k)


def _gathered_grads(scale: Tensor, bias: Tensor, query: Tensor, key: Tensor, grad: Tensor,
                    wants: tuple[bool, ...], normalize: bool, dtype: torch.dtype,
                    ring: distributed.Ring) -> tuple[Tensor | None, ...]:
    """The gradients `wants` asks for (scale, bias, query, key) as differentiable
    functions: the keys of every process gathered with gradient and the full `N x P`
    matrix of `untiled_per_query`, whose gradient of the gathered keys is summed back at their
    owners by the gather's backward pass."""
    def per_query(t: Tensor, b: Tensor, q: Tensor, k: Tensor) -> Tensor:
        (keys,), sizes = distributed.all_gather_rows(k, process_group=ring.group)
        return untiled_per_query(t, b, normalize, dtype, sum(sizes[:ring.rank]), q, keys)

    return tuple(partial_derivatives(per_query, grad, (scale, bias, query, key), wants))


def ring_sigmoid_per_query(query: Tensor, key: Tensor, *, scale: Tensor, bias: Tensor,
                           normalize: bool, chunk_size: int | None, dtype: torch.dtype,
                           process_group: torch.distributed.ProcessGroup | None
                           ) -> tuple[Tensor, int]:
    """The sigmoid loss of each of this process's queries against the keys of every
    process of `process_group` (its own key `i` the positive of query `i`), the key blocks
    passed around the ring, and the global batch size. Tiles of `chunk_size` keys (None:
    as `auto_chunk` chooses for the largest block, at most one tile per block); batches
    may differ in size across processes. `scale` and `bias` are 0-d tensors."""
    sizes = distributed.gather_sizes(key.shape[0], device=key.device,
                                     process_group=process_group)
    ring = distributed.Ring(query.device, process_group)
    largest = max(sizes)
    chunk = auto_chunk(query.shape[0], largest, chunk_size, query.device) or largest
    tiles = Tiles(chunk, tile_rows(chunk, query.shape[1], query.device), dtype)
    with full_precision(query.device):  # float32 logits and sums, also under autocast
        loss = _RingSigmoid.apply(scale, bias, normalize, tiles, ring, sizes, query, key)
    return loss, sum(sizes)
