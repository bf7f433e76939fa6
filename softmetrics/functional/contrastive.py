"""Contrastive family: InfoNCE (tiled, O(N * D) memory), NCE, retrieval accuracy, MI bound.

The decision of a contrastive model is *which candidate is the positive*: the argmax of the
similarity logits over the candidates of a query. Its exact metric is retrieval accuracy;
its relaxation is the softmax over the candidates, whose negative log-probability at the
positive is InfoNCE.

InfoNCE over `N` queries and `P` candidates needs the `N x P` logits only one tile at a
time: the forward pass keeps a running log-sum-exp over tiles of candidates, and the
backward pass recomputes each tile (`_TiledInfoNCE`), so the extra memory is the gradients
of the embeddings plus one tile instead of `O(N * P)`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import distributed
from .._checks import (
    check_finite,
    check_floating,
    check_index_tensor,
    check_int,
    check_ndim,
    check_option,
    check_temperature,
    check_values_in,
    fail,
)
from .._relax import compute_dtype, full_precision, reduce_per_sample

__all__ = ["info_nce", "mutual_information_bound", "nce_loss", "retrieval_accuracy"]

Reduction = Literal["mean", "sum", "none"]

_REDUCTIONS = ("mean", "sum", "none")
# Above this many logits (N * P) `chunk_size=None` tiles: 2**24 float32 logits are 64 MiB.
_AUTO_TILE_ELEMENTS = 1 << 24
# Automatic tiles hold about this many logits (16 MiB in float32), and at least _MIN_CHUNK
# candidates so that each matrix product stays efficient.
_TILE_ELEMENTS = 1 << 22
_MIN_CHUNK = 64
# On a GPU each tile costs a dozen kernel launches whatever its size, so tiles there hold
# 2^24 logits (64 MiB in float32; 4096 x 4096 when square).
_DEVICE_TILE_ELEMENTS = 1 << 24


def _tile_elements(device: torch.device) -> int:
    return _TILE_ELEMENTS if device.type == "cpu" else _DEVICE_TILE_ELEMENTS


# --------------------------------------------------------------------------------------
# the tiled InfoNCE: a running log-sum-exp over tiles of (anchors x candidates)
# --------------------------------------------------------------------------------------


def _diagonal(logits: Tensor, offset: int, start: int, stop: int
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


def _mask_self(logits: Tensor, self_col: int, row: int, start: int, stop: int) -> None:
    """Leave candidate `i + self_col` out of row `i` (the tile's rows are anchors `row,
    row + 1, ...`, its columns candidates `[start, stop)`); nothing when `self_col < 0`."""
    if self_col >= 0 and (d := _diagonal(logits, self_col + row, start, stop)) is not None:
        d[1].fill_(float("-inf"))


def _bounds(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def _logsumexp_(logits: Tensor) -> Tensor:
    """Row log-sum-exp that overwrites `logits` (no second buffer); -inf for empty rows."""
    top = logits.amax(dim=1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return logits.sub_(top).exp_().sum(dim=1).log_().add_(top.squeeze(1))


# F.normalize's floor on the norm: x / max(|x|, eps)
_NORM_EPS = 1e-12


def _inverse_norms(x: Tensor, dtype: torch.dtype, normalize: bool, rows: int) -> Tensor:
    """`1 / max(|x_i|, eps)` per row in `dtype` (ones without `normalize`), computed over
    blocks of rows so that a half-precision `x` is never converted whole."""
    if not normalize:
        return torch.ones(x.shape[0], dtype=dtype, device=x.device)
    out = torch.empty(x.shape[0], dtype=dtype, device=x.device)
    for start, stop in _bounds(x.shape[0], rows):
        torch.linalg.vector_norm(x[start:stop].to(dtype), dim=1, out=out[start:stop])
    return out.clamp_min_(_NORM_EPS).reciprocal_()


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
    """

    @staticmethod
    def forward(ctx, temperature: Tensor, normalize: bool, chunk: int,  # type: ignore[override]
                rows: int, dtype: torch.dtype, passes: tuple, *tensors: Tensor) -> Tensor:
        inv_tau = temperature.to(dtype).reciprocal()
        scales = [_inverse_norms(t, dtype, normalize, rows) for t in tensors]
        out, lses = [], []
        for a_idx, blocks, self_col, pos in passes:
            anchor = tensors[a_idx]
            r = scales[a_idx] * inv_tau
            n = anchor.shape[0]
            lse = torch.full((n,), float("-inf"), dtype=dtype, device=anchor.device)
            positive = torch.zeros(n, dtype=dtype, device=anchor.device)
            for r0, r1 in _bounds(n, rows):
                a = anchor[r0:r1].to(dtype) * r[r0:r1, None]  # u a / tau: rows x D
                for c0, c1, _, _, cand in _tiles(tensors, scales, blocks, chunk, dtype):
                    logits = torch.mm(a, cand.T)
                    if pos >= 0 and (d := _diagonal(logits, pos + r0, c0, c1)) is not None:
                        first, entries = d
                        positive[r0 + first:r0 + first + entries.shape[0]] = entries
                    _mask_self(logits, self_col, r0, c0, c1)
                    lse[r0:r1] = torch.logaddexp(lse[r0:r1], _logsumexp_(logits))
                    del logits
            lses.append(lse)
            out.append(lse - positive if pos >= 0 else lse.clone())
        ctx.save_for_backward(temperature, *tensors, *scales, *lses)
        ctx.options = (normalize, chunk, rows, dtype, passes, len(tensors))
        return torch.cat(out)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        normalize, chunk, rows, dtype, passes, count = ctx.options
        temperature, *saved = ctx.saved_tensors
        tensors, scales, lses = saved[:count], saved[count:2 * count], saved[2 * count:]
        need_tau, need = ctx.needs_input_grad[0], ctx.needs_input_grad[6:]
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
            for r0, r1 in _bounds(anchor.shape[0], rows):
                a = anchor[r0:r1].to(dtype) * r[r0:r1, None]  # u a / tau: rows x D
                g = g_pass[r0:r1, None]
                for c0, c1, b, start, cand in _tiles(tensors, scales, blocks, chunk, dtype):
                    logits = torch.mm(a, cand.T)
                    plain = logits.clone() if need_tau else None  # before the mask: finite
                    _mask_self(logits, self_col, r0, c0, c1)
                    weight = logits.sub_(lse[r0:r1, None]).exp_().mul_(g)  # W = dL/ds
                    if pos >= 0 and (d := _diagonal(weight, pos + r0, c0, c1)) is not None:
                        first, entries = d
                        entries.sub_(g_pass[r0 + first:r0 + first + entries.shape[0]])
                    if plain is not None:
                        tau_sum += torch.mul(weight, plain).sum()
                    if acc_a is not None:  # dL/d(u a) = W (v C) / tau
                        acc_a[r0:r1].addmm_(weight, cand * inv_tau)
                    if acc[b] is not None:  # dL/d(v c) = W^T (u A / tau)
                        acc[b][start:start + (c1 - c0)].addmm_(weight.T, a)
                    del logits, weight, plain
        grads = []
        for i, (t, u) in enumerate(zip(tensors, scales, strict=True)):
            buf, acc[i] = acc[i], None  # a half-precision copy replaces, not joins, it
            if buf is not None and normalize:
                _normalize_grad_(buf, t, u, rows)
            grads.append(None if buf is None else buf.to(t.dtype))
            del buf
        grad_tau = (-tau_sum * inv_tau).to(temperature.dtype) if need_tau else None
        return (grad_tau, None, None, None, None, None, *grads)


def _tiles(tensors, scales, blocks, chunk: int, dtype: torch.dtype):
    """`(start, stop, index, row, v * c)` per tile of the candidates `tensors[b] for b in
    blocks`: its columns `[start, stop)` in their concatenation, the tensor's `index` and
    the tile's first `row` in that tensor."""
    base = 0
    for b in blocks:
        block, v = tensors[b], scales[b]
        for start, stop in _bounds(block.shape[0], chunk):
            yield (base + start, base + stop, b, start,
                   block[start:stop].to(dtype) * v[start:stop, None])
        base += block.shape[0]


def _rowdot(x: Tensor, y: Tensor) -> Tensor:
    """`<x_i, y_i>` per row without an elementwise product buffer (a batched matmul)."""
    return torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).view(-1)


def _normalize_grad_(acc: Tensor, x: Tensor, u: Tensor, rows: int) -> None:
    """Turn `acc = dL/d(u * x)`, `u = 1 / max(|x|, eps)`, into `dL/dx` in place:
    `u (acc - <x, acc> u^2 x)`, without the second term where the norm was floored."""
    for start, stop in _bounds(x.shape[0], rows):
        xs, out, us = x[start:stop].to(acc.dtype), acc[start:stop], u[start:stop, None]
        floored = _rowdot(xs, xs).unsqueeze(1) <= _NORM_EPS * _NORM_EPS
        coef = torch.where(floored, 0.0, _rowdot(xs, out).unsqueeze(1) * us * us)
        out.addcmul_(xs, coef, value=-1.0).mul_(us)


def _auto_chunk(n: int, p: int, chunk_size: int | None, device: torch.device
                ) -> int | None:
    """Candidates per tile, or None for the full matrix (plain autograd).

    Automatic tiles hold about `_tile_elements(device)` similarities: all `n` anchors at
    once while `n` is small, else square tiles (each anchor block is then read once per
    `chunk` candidates, not once per `_MIN_CHUNK`)."""
    if chunk_size is None:
        if n * p <= _AUTO_TILE_ELEMENTS:
            return None
        tile = _tile_elements(device)
        chunk_size = max(_MIN_CHUNK, tile // max(n, 1), math.isqrt(tile))
    return None if chunk_size >= p else chunk_size


def _tile_rows(chunk: int, dim: int, device: torch.device) -> int:
    """Anchors per tile for tiles of `chunk` candidates: the tile's logits and its scaled
    anchors (`rows x dim`) each hold at most about `_tile_elements(device)` numbers."""
    tile = _tile_elements(device)
    return max(1, min(tile // chunk, tile // max(dim, 1)))


def _candidate_lse(scaled: Tensor, cand: Tensor, offset: int, chunk_size: int | None) -> Tensor:
    """Log-sum-exp of `scaled @ cand.T` per row, leaving out column `i + offset` of row `i`
    when `offset >= 0`; tiled when `chunk_size` asks for it."""
    chunk = _auto_chunk(scaled.shape[0], cand.shape[0], chunk_size, scaled.device)
    if chunk is not None:
        one = torch.ones((), dtype=scaled.dtype, device=scaled.device)
        rows = _tile_rows(chunk, scaled.shape[1], scaled.device)
        return _TiledInfoNCE.apply(one, False, chunk, rows, scaled.dtype,
                                   ((0, (1,), offset, -1),), scaled, cand)
    logits = scaled @ cand.T
    rows = torch.arange(scaled.shape[0], device=scaled.device)
    if offset >= 0:
        logits = logits.index_put((rows, rows + offset), logits.new_full((), float("-inf")))
    # lse = z_c - log_softmax(z)_c at the row maximum c: autograd then keeps one N x P
    # buffer (the log-softmax), as F.cross_entropy does, instead of the logits and more
    top = logits.detach().argmax(dim=1)
    return logits[rows, top] - torch.log_softmax(logits, dim=1)[rows, top]


# --------------------------------------------------------------------------------------
# argument handling shared by info_nce and retrieval_accuracy
# --------------------------------------------------------------------------------------


def _check_pairs(fn: str, query: Tensor, key: Tensor, negatives: Tensor | None,
                 validate_args: bool) -> torch.dtype:
    check_floating(fn, "query", query)
    check_floating(fn, "key", key)
    check_ndim(fn, "query", query, 2, "a 2-D tensor (N, D)")
    check_ndim(fn, "key", key, 2, "a 2-D tensor (N, D)")
    if query.shape[0] == 0:
        fail(fn, "query", "a non-empty batch (N >= 1)", f"shape {tuple(query.shape)}", raw=True)
    if key.shape != query.shape:
        fail(fn, "key", f"of shape {tuple(query.shape)} (the shape of `query`, key i being "
             "the positive of query i)", f"shape {tuple(key.shape)}", raw=True)
    n, d = query.shape
    dtype = torch.promote_types(query.dtype, key.dtype)
    if negatives is not None:
        check_floating(fn, "negatives", negatives)
        if negatives.ndim == 2:
            if negatives.shape[1] != d:
                fail(fn, "negatives", f"of shape (M, {d}) (shared) or ({n}, K, {d}) (per query)",
                     f"shape {tuple(negatives.shape)}", raw=True)
        elif negatives.ndim == 3:
            if negatives.shape[0] != n or negatives.shape[2] != d:
                fail(fn, "negatives", f"of shape ({n}, K, {d}) (per query) or (M, {d}) (shared)",
                     f"shape {tuple(negatives.shape)}", raw=True)
        else:
            fail(fn, "negatives", f"a 2-D (M, {d}) or 3-D ({n}, K, {d}) tensor",
                 f"shape {tuple(negatives.shape)}", raw=True)
        dtype = torch.promote_types(dtype, negatives.dtype)
    if validate_args:
        check_finite(fn, "query", query)
        check_finite(fn, "key", key)
        if negatives is not None:
            check_finite(fn, "negatives", negatives)
    return compute_dtype(dtype)


def _embed(x: Tensor, dtype: torch.dtype, normalize: bool) -> Tensor:
    x = x.to(dtype)
    return F.normalize(x, dim=-1) if normalize else x


def _candidates(anchor: Tensor, other: Tensor, shared: Tensor | None, in_batch: bool,
                query_negatives: bool, start: int = 0) -> tuple[Tensor | None, int]:
    """The candidate matrix `[other | anchor | shared]` (blocks as requested) and the
    column of anchor row 0 in it (-1 when the anchor block is absent).

    `anchor` and `other` may be gathered from every process; this process's rows then
    start at row `start` of them.
    """
    blocks, offset = [], -1
    if in_batch:
        blocks.append(other)
    if query_negatives:
        offset = (other.shape[0] if in_batch else 0) + start
        blocks.append(anchor)
    if shared is not None and shared.shape[0] > 0:
        blocks.append(shared)
    if not blocks:
        return None, -1
    usable = sum(b.shape[0] for b in blocks) - (1 if offset >= 0 else 0)
    if usable == 0:  # a single query, its own block only: no candidate left
        return None, -1
    return (blocks[0] if len(blocks) == 1 else torch.cat(blocks)), offset


def _direction_loss(anchor: Tensor, other: Tensor, negatives: Tensor | None,
                    temperature: float | Tensor, in_batch: bool, query_negatives: bool,
                    chunk_size: int | None, normalize: bool, dtype: torch.dtype,
                    gathered: tuple[Tensor, Tensor, int] | None = None) -> Tensor:
    """Per-anchor InfoNCE: `-log softmax` of the positive `other[i]` among the candidates.

    This is the general path (per-query negatives, no in-batch negatives, untiled);
    `_tiled_info_nce` is the tiled one. `anchor`, `other` and `negatives` are the
    embeddings as given (not yet normalised). `gathered = (all anchors, all others,
    start)` takes the in-batch candidates from every process, this process's rows
    starting at row `start` of them.
    """
    start = gathered[2] if gathered is not None else 0
    a, o = _embed(anchor, dtype, normalize), _embed(other, dtype, normalize)
    if gathered is not None:
        anchors = _embed(gathered[0], dtype, normalize)
        others = _embed(gathered[1], dtype, normalize)
    else:
        anchors, others = a, o
    negatives = None if negatives is None else _embed(negatives, dtype, normalize)
    shared = negatives if negatives is not None and negatives.ndim == 2 else None
    scaled = a / temperature
    cand, offset = _candidates(anchors, others, shared, in_batch, query_negatives, start)
    terms = []
    with full_precision(scaled.device):  # float32 logits and sums, also under autocast
        positive = _rowdot(scaled, o)
        if cand is not None:
            terms.append(_candidate_lse(scaled, cand, offset, chunk_size))
        if not in_batch:
            terms.append(positive)
        if negatives is not None and negatives.ndim == 3 and negatives.shape[1] > 0:
            logits = torch.einsum("nd,nkd->nk", scaled, negatives)
            terms.append(torch.logsumexp(logits, dim=1))
    lse = terms[0] if len(terms) == 1 else torch.logsumexp(torch.stack(terms), dim=0)
    # the positive is one of the candidates, so lse >= positive up to rounding
    return (lse - positive).clamp_min(0.0)


def _tiled_info_nce(query: Tensor, key: Tensor, negatives: Tensor | None,
                    temperature: float | Tensor, symmetric: bool, query_negatives: bool,
                    chunk: int, normalize: bool, dtype: torch.dtype,
                    gathered: tuple[Tensor, Tensor, int] | None) -> Tensor:
    """Per-query InfoNCE with in-batch negatives (and shared `negatives`), both directions
    of a symmetric loss in one `_TiledInfoNCE` call over the embeddings as given.

    `gathered = (all queries, all keys, start)` are the embeddings of every process, this
    process's rows starting at row `start` of them."""
    tensors = [query, key]
    if gathered is None:
        q_all, k_all, start = 0, 1, 0
    else:
        tensors += gathered[:2]
        q_all, k_all, start = 2, 3, gathered[2]
    shared: tuple[int, ...] = ()
    if negatives is not None and negatives.shape[0] > 0:
        tensors.append(negatives)
        shared = (len(tensors) - 1,)
    others = tensors[k_all].shape[0]
    self_col = others + start if query_negatives else -1
    passes = [(0, (k_all, *((q_all,) if query_negatives else ()), *shared), self_col, start)]
    if symmetric:
        passes.append((1, (q_all, *((k_all,) if query_negatives else ())), self_col, start))
    tau = (temperature if isinstance(temperature, Tensor)
           else torch.full((), temperature, dtype=dtype, device=query.device))
    with full_precision(query.device):
        rows = _tile_rows(chunk, query.shape[1], query.device)
        out = _TiledInfoNCE.apply(tau, normalize, chunk, rows, dtype, tuple(passes), *tensors)
    # the positive is one of the candidates, so each loss is >= 0 up to rounding
    out = out.clamp_min(0.0)
    n = query.shape[0]
    return out if len(passes) == 1 else 0.5 * (out[:n] + out[n:])


def _gather_pairs(query: Tensor, key: Tensor, process_group
                  ) -> tuple[Tensor, Tensor, int, int]:
    """Queries and keys of every process (rank order, with gradient), the row of this
    process's first query in them, and the global batch size."""
    sizes = distributed.gather_sizes(query.shape[0], device=query.device,
                                     process_group=process_group)
    start = sum(sizes[:distributed.get_rank(process_group)])
    return (distributed.all_gather_cat_uneven(query, sizes, process_group),
            distributed.all_gather_cat_uneven(key, sizes, process_group), start, sum(sizes))


def _reduce_global(values: Tensor, reduction: str, total: int, process_group) -> Tensor:
    """Reduce per-query values over the queries of every process (sum with gradient)."""
    if reduction == "none":
        return values
    value = distributed.all_reduce_sum(values.sum(), process_group)
    return value if reduction == "sum" else value / max(total, 1)


# --------------------------------------------------------------------------------------
# InfoNCE
# --------------------------------------------------------------------------------------


def info_nce(
    query: Tensor,
    key: Tensor,
    *,
    negatives: Tensor | None = None,
    in_batch_negatives: bool = True,
    query_negatives: bool = False,
    temperature: float | Tensor = 0.07,
    symmetric: bool = False,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    gather_distributed: bool = False,
    process_group: Any = None,
    validate_args: bool = True,
) -> Tensor:
    r"""InfoNCE: cross-entropy of picking each query's positive key among its candidates.

    With similarities $s(q, c) = \langle q, c\rangle / \tau$ (cosine similarities when
    `normalize`), key $k_i$ the positive of query $q_i$ and $\mathcal{C}_i$ the candidates
    of query $i$,

    $$
    \ell_i = -\log \frac{\exp s(q_i, k_i)}{\sum_{c \in \mathcal{C}_i} \exp s(q_i, c)},
    \qquad
    \mathcal{C}_i = \underbrace{\{k_1, \dots, k_N\}}_{\texttt{in\_batch\_negatives}}
    \cup \underbrace{\{q_j : j \ne i\}}_{\texttt{query\_negatives}}
    \cup \underbrace{\{n_1, \dots, n_M\}}_{\texttt{negatives}}
    $$

    (the positive $k_i$ is always a candidate). `symmetric=True` averages $\ell_i$ with the
    same loss with the roles of queries and keys swapped (CLIP). With
    `query_negatives=True, symmetric=True` and the two views of $N$ images as `query` and
    `key` this is SimCLR's NT-Xent over $2N$ views.

    $\exp(-\ell_i)$ is the softmax probability of the positive, a smooth retrieval
    accuracy of query $i$, and $\log |\mathcal{C}_i| - \ell_i$ estimates a lower bound of
    the mutual information
    ([`mutual_information_bound`][softmetrics.functional.mutual_information_bound]).

    **Hard limit:** as $\tau \to 0$, $\exp(-\ell_i)$ tends to the retrieval accuracy of
    query $i$ at $k = 1$ ([`retrieval_accuracy`][softmetrics.functional.retrieval_accuracy],
    ties shared). The loss itself needs $\tau > 0$.

    **Memory:** the $N \times |\mathcal{C}|$ logits are never stored when tiled: the
    forward pass keeps a running log-sum-exp over tiles of `chunk_size` candidates and up
    to $\max(1, T / \texttt{chunk\_size})$ queries, with $T = 2^{22}$ on a CPU and
    $2^{24}$ on a GPU (where each tile costs kernel launches), and the backward pass
    recomputes the tiles. With in-batch negatives and no per-query `negatives`, the
    embeddings are used as given — normalisation and temperature are applied to each
    tile, never to whole copies — and the gradients are accumulated in float32 buffers of
    the embeddings' size, so the extra memory is those gradients plus one tile: two
    $N \times D$ float32 buffers for a query and a key batch, also with `symmetric=True`,
    whose two directions share them. With `chunk_size=None` the full matrix is used up to
    $2^{24}$ logits, and above that tiles of about $T$ logits: all queries against
    $T / N$ candidates while that is at least $\sqrt{T}$, else $\sqrt{T} \times
    \sqrt{T}$ tiles. A `chunk_size` at least the number of candidates uses the full
    matrix.

    **Data parallelism:** with `gather_distributed=True` every process gathers the
    embeddings of all processes (batches may differ in size; one small extra all-gather
    learns the sizes, in host memory where the backend allows, else with one host
    synchronisation: see `softmetrics.distributed.gather_sizes`) and computes the loss of
    its own queries against the global candidates, in tiles as above ($O(N_\text{local} \cdot
    \texttt{chunk\_size})$ extra memory for $N_\text{global}$ candidates). "mean" and
    "sum" are then summed over processes with gradient, so every process returns the loss
    of one process on the concatenated batch, and the gradient of its embeddings is
    `world_size` times the single-process one, which `DistributedDataParallel`'s gradient
    averaging divides out. With `reduction="none"` each process gets its own queries'
    losses, and backpropagating their sum on every process adds up to the gradient of the
    global sum. `negatives` are not gathered: each process uses its own (a MoCo queue is
    usually the same on all processes).

    Args:
        query: `(N, D)` query embeddings, floating point.
        key: `(N, D)` key embeddings; `key[i]` is the positive of `query[i]`.
        negatives: extra negative keys, `(M, D)` shared by all queries (a MoCo-style
            queue) or `(N, K, D)` per query. Not allowed with `symmetric=True`.
        in_batch_negatives: use all `N` keys as candidates (else only the own key).
        query_negatives: also use the other queries as candidates (a query is never its
            own candidate), as in SimCLR.
        temperature: $\tau > 0$, a number or a one-element tensor (a learnable
            temperature; see [`InfoNCELoss`][softmetrics.InfoNCELoss]).
        symmetric: average the query-to-key and key-to-query losses.
        normalize: L2-normalize the embeddings (cosine similarity); else the plain dot
            product.
        reduction: `"mean"`, `"sum"` or `"none"` (per query, shape `(N,)`).
        chunk_size: candidates per tile (see **Memory** above); None chooses.
        gather_distributed: inside an initialised `torch.distributed` process group, score
            this process's queries against the keys (and with `query_negatives` the
            queries) of every process of `process_group`, gathered with gradient; with
            `symmetric`, this process's keys against every process's queries too. See
            **Data parallelism** above. No effect outside a process group.
        process_group: the processes to gather from (default: the whole world).
        validate_args: also check that the embeddings are finite (reads the data).

    Returns:
        The loss in nats, $\ge 0$: a scalar, or `(N,)` for `reduction="none"`. float32 for
        half-precision inputs, else the promoted input dtype. With `gather_distributed`,
        "mean" and "sum" are over the queries of every process (the same value on each),
        "none" gives this process's queries.

    Raises:
        ValueError: for shapes that do not match, an empty batch, a temperature $\le 0$,
            `negatives` with `symmetric=True`, an unknown `reduction`, `chunk_size < 1`, or
            (with `validate_args`) non-finite embeddings.
        TypeError: for non-floating inputs or a non-numeric temperature.

    Example:
        >>> import torch
        >>> from softmetrics.functional import info_nce
        >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> key = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.6]])
        >>> info_nce(query, key, temperature=0.5)
        tensor(0.6448)
        >>> info_nce(query, key, temperature=0.5, reduction="none", chunk_size=2)
        tensor([0.5091, 0.5920, 0.8333])

    ??? cite "References"
        - A. van den Oord, Y. Li, O. Vinyals. *Representation Learning with Contrastive
          Predictive Coding*. arXiv:1807.03748, 2018.
        - T. Chen, S. Kornblith, M. Norouzi, G. Hinton. *A Simple Framework for
          Contrastive Learning of Visual Representations* (SimCLR). ICML 2020,
          arXiv:2002.05709.
        - A. Radford et al. *Learning Transferable Visual Models From Natural Language
          Supervision* (CLIP). ICML 2021, arXiv:2103.00020.
        - Z. Cheng et al. *Breaking the Memory Barrier: Near Infinite Batch Size Scaling
          for Contrastive Loss* (Inf-CL). arXiv:2410.17243, 2024.
    """
    fn = "info_nce"
    dtype = _check_pairs(fn, query, key, negatives, validate_args)
    temperature = check_temperature(fn, temperature, allow_zero=False)
    check_option(fn, "reduction", reduction, _REDUCTIONS)
    if chunk_size is not None:
        check_int(fn, "chunk_size", chunk_size, low=1)
    if symmetric and negatives is not None:
        fail(fn, "negatives", "None when `symmetric=True` (extra negatives belong to one "
             "direction)", negatives)
    if isinstance(temperature, Tensor):
        if validate_args and not bool((temperature > 0).all()):
            fail(fn, "temperature", "> 0", temperature)
        temperature = temperature.to(dtype).reshape(())
    gather = (gather_distributed and distributed.is_distributed()
              and (in_batch_negatives or query_negatives))
    forward = backward = None
    if gather:
        q_all, k_all, start, total = _gather_pairs(query, key, process_group)
        forward, backward = (q_all, k_all, start), (k_all, q_all, start)
    n_all = query.shape[0] if forward is None else forward[0].shape[0]
    shared = negatives.shape[0] if negatives is not None and negatives.ndim == 2 else 0
    candidates = n_all * (int(in_batch_negatives) + int(query_negatives)) + shared
    chunk = _auto_chunk(query.shape[0], candidates, chunk_size, query.device)
    if chunk is not None and in_batch_negatives and (negatives is None or shared):
        loss = _tiled_info_nce(query, key, negatives, temperature, symmetric,
                               query_negatives, chunk, normalize, dtype, forward)
    else:
        options = dict(temperature=temperature, in_batch=in_batch_negatives,
                       query_negatives=query_negatives, chunk_size=chunk_size,
                       normalize=normalize, dtype=dtype)
        loss = _direction_loss(query, key, negatives, gathered=forward, **options)
        if symmetric:
            back = _direction_loss(key, query, None, gathered=backward, **options)
            loss = 0.5 * (loss + back)
    if gather:
        return _reduce_global(loss, reduction, total, process_group)
    return reduce_per_sample(loss, reduction)


# --------------------------------------------------------------------------------------
# retrieval accuracy (the exact metric)
# --------------------------------------------------------------------------------------


def _count_ties(logits: Tensor, positive: Tensor) -> tuple[Tensor, Tensor]:
    p = positive.unsqueeze(1)
    return (logits > p).sum(dim=1), (logits == p).sum(dim=1)


def retrieval_accuracy(
    query: Tensor,
    key: Tensor,
    *,
    negatives: Tensor | None = None,
    in_batch_negatives: bool = True,
    query_negatives: bool = False,
    normalize: bool = True,
    k: int = 1,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
    process_group: Any = None,
    validate_args: bool = True,
) -> Tensor:
    r"""Top-$k$ retrieval accuracy: is the positive key among the $k$ most similar candidates?

    With the candidates $\mathcal{C}_i$ of [`info_nce`][softmetrics.functional.info_nce],
    $g_i$ the number of candidates more similar to $q_i$ than its positive $k_i$ and $t_i$
    the number of candidates (the positive included) exactly as similar,

    $$
    \mathrm{acc}_i = \frac{\min(\max(k - g_i, 0), t_i)}{t_i},
    $$

    which is 1 when the positive is ranked in the top $k$, 0 when it is not, and at ties
    the probability of making the top $k$ under a uniformly random order of the tied
    candidates (so duplicate keys share the credit).

    **Hard limit:** this is the exact metric; at $k = 1$ it equals the
    $\tau \to 0$ limit of $\exp(-\ell_i)$ for the InfoNCE loss $\ell_i$.
    Computed without gradient, in tiles of queries: no $N \times N$ matrix is stored for
    large batches.

    Args:
        query: `(N, D)` query embeddings.
        key: `(N, D)` key embeddings; `key[i]` is the positive of `query[i]`.
        negatives: `(M, D)` shared or `(N, K, D)` per-query extra negatives.
        in_batch_negatives: use all `N` keys as candidates (else only the own key).
        query_negatives: also use the other queries as candidates.
        normalize: cosine similarity (else the dot product); the ranking is the same for
            any positive temperature.
        k: the positive must be among the `k` most similar candidates, `k >= 1`.
        reduction: `"mean"`, `"sum"` or `"none"` (per query, shape `(N,)`).
        gather_distributed: inside a `torch.distributed` process group, rank this
            process's queries among the candidates of every process of `process_group`, as
            in [`info_nce`][softmetrics.functional.info_nce]; "mean" and "sum" are then
            over the queries of every process.
        process_group: the processes to gather from (default: the whole world).
        validate_args: also check that the embeddings are finite (reads the data).

    Returns:
        Accuracy in $[0, 1]$: a scalar, or `(N,)` for `reduction="none"`.

    Raises:
        ValueError: for shapes that do not match, `k < 1`, an unknown `reduction` or
            (with `validate_args`) non-finite embeddings.
        TypeError: for non-floating inputs or a non-integer `k`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import retrieval_accuracy
        >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> key = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.6]])
        >>> retrieval_accuracy(query, key, reduction="none")
        tensor([1., 1., 1.])
        >>> retrieval_accuracy(query, key.flip(0), k=2, reduction="none")  # a tie in row 3
        tensor([1.0000, 1.0000, 0.5000])
    """
    fn = "retrieval_accuracy"
    dtype = _check_pairs(fn, query, key, negatives, validate_args)
    check_int(fn, "k", k, low=1)
    check_option(fn, "reduction", reduction, _REDUCTIONS)
    with torch.no_grad():
        q = _embed(query, dtype, normalize)
        keys = _embed(key, dtype, normalize)
        neg = None if negatives is None else _embed(negatives, dtype, normalize)
        n = q.shape[0]
        shared = neg if neg is not None and neg.ndim == 2 else None
        gather = (gather_distributed and distributed.is_distributed()
                  and (in_batch_negatives or query_negatives))
        base = 0  # the column of this process's first own key among the candidates
        if gather:
            q_all, k_all, base, total = _gather_pairs(q, keys, process_group)
            cand, offset = _candidates(q_all, k_all, shared, in_batch_negatives,
                                       query_negatives, base)
        else:
            cand, offset = _candidates(q, keys, shared, in_batch_negatives, query_negatives)
        p = 0 if cand is None else cand.shape[0]
        rows = max(1, min(n, _tile_elements(q.device) // max(p, 1)))
        greater = torch.zeros(n, dtype=torch.long, device=q.device)
        equal = torch.zeros(n, dtype=torch.long, device=q.device)
        positive = (q * keys).sum(dim=1)
        for start, stop in _bounds(n, rows) if cand is not None else []:
            logits = q[start:stop] @ cand.T
            _mask_self(logits, offset, start, 0, p)
            if in_batch_negatives:
                # the positive as computed in this very product: exact ties stay ties
                own = logits[:, base + start:base + stop].diagonal()
                pos = own.clone()
                own.fill_(float("-inf"))
                positive[start:stop] = pos
            g, t = _count_ties(logits, positive[start:stop])
            greater[start:stop] += g
            equal[start:stop] += t
        if neg is not None and neg.ndim == 3:
            g, t = _count_ties(torch.einsum("nd,nkd->nk", q, neg), positive)
            greater += g
            equal += t
        ties = (equal + 1).to(dtype)
        acc = (k - greater).clamp(min=0).to(dtype).minimum(ties) / ties
        if gather:
            return _reduce_global(acc, reduction, total, process_group)
    return reduce_per_sample(acc, reduction)


# --------------------------------------------------------------------------------------
# mutual-information bound
# --------------------------------------------------------------------------------------


def mutual_information_bound(loss: Tensor | float, num_candidates: int | Tensor) -> Tensor:
    r"""The InfoNCE lower bound on mutual information: $\log N - \mathcal{L}$, in nats.

    For the InfoNCE loss $\mathcal{L}$ with $N$ candidates per query (the positive
    included), $I(X; Y) \ge \log N - \mathcal{L}$ in expectation; the bound can never
    exceed $\log N$ (since $\mathcal{L} \ge 0$), so it saturates once the true mutual
    information is above $\log N$.

    **Hard limit:** not a relaxation; an identity on the loss value (no temperature).

    Args:
        loss: the InfoNCE loss in nats (mean over queries), a tensor or a number.
        num_candidates: candidates per query, $N \ge 1$ (e.g. the batch size for
            in-batch negatives, plus `M` for `M` shared negatives).

    Returns:
        $\log N - \mathcal{L}$, a tensor of the shape of `loss`.

    Raises:
        ValueError: for `num_candidates < 1`.
        TypeError: for a non-integer `num_candidates` or a non-numeric `loss`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import mutual_information_bound
        >>> mutual_information_bound(torch.tensor(1.5), 128)
        tensor(3.3520)

    ??? cite "References"
        - A. van den Oord, Y. Li, O. Vinyals. *Representation Learning with Contrastive
          Predictive Coding*. arXiv:1807.03748, 2018.
        - B. Poole, S. Ozair, A. van den Oord, A. Alemi, G. Tucker. *On Variational Bounds
          of Mutual Information*. ICML 2019, arXiv:1905.06922.
    """
    fn = "mutual_information_bound"
    if isinstance(num_candidates, Tensor):
        check_index_tensor(fn, "num_candidates", num_candidates)
        log_n = torch.log(num_candidates.to(torch.float64))
    else:
        log_n = math.log(check_int(fn, "num_candidates", num_candidates, low=1))
    if isinstance(loss, Tensor):
        check_floating(fn, "loss", loss)
        return (log_n - loss).to(loss.dtype) if isinstance(log_n, Tensor) else log_n - loss
    if isinstance(loss, bool) or not isinstance(loss, (int, float)):
        fail(fn, "loss", "a tensor or a real number", type(loss).__name__, error=TypeError,
             raw=True)
    out = log_n - float(loss)
    return out.to(torch.get_default_dtype()) if isinstance(out, Tensor) else torch.tensor(out)


# --------------------------------------------------------------------------------------
# NCE
# --------------------------------------------------------------------------------------


def _check_noise(fn: str, noise: Tensor, v: int, target: Tensor, validate_args: bool) -> None:
    check_floating(fn, "noise_distribution", noise)
    if tuple(noise.shape) != (v,):
        fail(fn, "noise_distribution", f"of shape ({v},) (one probability per class)",
             f"shape {tuple(noise.shape)}", raw=True)
    if validate_args:
        check_finite(fn, "noise_distribution", noise)
        if bool((noise < 0).any()):
            fail(fn, "noise_distribution", "non-negative",
                 f"a minimum of {noise.min().item():g}", raw=True)
        total = noise.double().sum().item()
        if abs(total - 1.0) > 1e-4:
            fail(fn, "noise_distribution", "a distribution summing to 1",
                 f"a sum of {total:g}", raw=True)
        at_target = noise[target]
        if target.numel() and bool((at_target <= 0).any()):
            bad = target[at_target <= 0][0].item()
            fail(fn, "noise_distribution", "> 0 at every target class (NCE scores "
                 "log(num_noise * q(target)))", f"q({bad}) = 0", raw=True)


def check_output_layer(fn: str, input: Tensor, target: Tensor, weight: Tensor,
                       bias: Tensor | None, validate_args: bool) -> None:
    """Check the hidden states, class ids and output layer of `nce_loss` (and of the exact
    full-softmax counterpart): dtypes, shapes, and the ids under `validate_args`."""
    check_floating(fn, "input", input)
    check_index_tensor(fn, "target", target)
    check_floating(fn, "weight", weight)
    check_ndim(fn, "input", input, 2, "a 2-D tensor (N, H)")
    check_ndim(fn, "weight", weight, 2, "a 2-D tensor (V, H)")
    n, h = input.shape
    v = weight.shape[0]
    if weight.shape[1] != h:
        fail(fn, "weight", f"of shape (V, {h}) (H = input.shape[1])",
             f"shape {tuple(weight.shape)}", raw=True)
    if tuple(target.shape) != (n,):
        fail(fn, "target", f"of shape ({n},) (one class id per row of `input`)",
             f"shape {tuple(target.shape)}", raw=True)
    if bias is not None:
        check_floating(fn, "bias", bias)
        if tuple(bias.shape) != (v,):
            fail(fn, "bias", f"of shape ({v},) (V = weight.shape[0])",
                 f"shape {tuple(bias.shape)}", raw=True)
    if v == 0:
        fail(fn, "weight", "at least one class (V >= 1)", f"shape {tuple(weight.shape)}",
             raw=True)
    if validate_args:
        check_values_in(fn, "target", target, 0, weight.shape[0])


# Noise probabilities become integer weights at this scale to be drawn by inversion: their
# running sum is then exact in int64 (classes with less than 2^-53 of the mass are never
# drawn).
_NOISE_WEIGHT_SCALE = 2.0**52


def _draw_by_inversion(q: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    """`count` draws with replacement from the probabilities `q` (V,): the inverse of their
    cumulative distribution, summed in integers, at uniform float64 points."""
    cdf = (q.double() * _NOISE_WEIGHT_SCALE).round_().long().cumsum(0)
    total = cdf[-1:]
    u = torch.rand(count, dtype=torch.float64, device=q.device, generator=generator)
    draws = torch.minimum((u * total).long(), total - 1)
    return torch.searchsorted(cdf, draws, right=True)


def _draw_noise(q: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    """`count` draws with replacement from `q`: `torch.multinomial`, except on CUDA, where
    it sums the probabilities with a floating-point cumsum, which has no deterministic
    kernel there (it raises under `torch.use_deterministic_algorithms(True)`)."""
    if q.device.type == "cuda":
        return _draw_by_inversion(q, count, generator)
    return torch.multinomial(q, count, replacement=True, generator=generator)


def check_generator(fn: str, generator: torch.Generator | None, input: Tensor) -> None:
    """A noise `generator` must draw on the device type of `input` (torch samples on the
    generator's device; drawing elsewhere and copying would wait for the copy)."""
    if (generator is not None and isinstance(input, Tensor)
            and generator.device.type != input.device.type):
        fail(fn, "generator", f"a torch.Generator on {input.device.type} (the device of "
             f"`input`), e.g. torch.Generator(device={input.device.type!r})",
             f"a generator on {generator.device.type}", raw=True)


def nce_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    *,
    num_noise: int,
    noise_distribution: Tensor | None = None,
    shared_noise: bool = False,
    generator: torch.Generator | None = None,
    reduction: Reduction = "mean",
    validate_args: bool = True,
) -> Tensor:
    r"""Noise-contrastive estimation of a softmax output layer (as `tf.nn.nce_loss`).

    The output layer scores class $w$ for hidden state $h_n$ by
    $s_n(w) = \langle h_n, W_w\rangle + b_w$. NCE trains it, without the normalising sum
    over all $V$ classes, as a logistic classifier of the data class $y_n$ against
    $K$ = `num_noise` classes $w_{n1}, \dots, w_{nK}$ drawn from the noise distribution
    $q$:

    $$
    \ell_n = -\log \sigma\big(\Delta_n(y_n)\big)
             - \sum_{j=1}^{K} \log\big(1 - \sigma(\Delta_n(w_{nj}))\big),
    \qquad \Delta_n(w) = s_n(w) - \log\big(K q(w)\big),
    $$

    i.e. $P(D = 1 \mid w) = \sigma(s(w) - \log(K q(w)))$. At its optimum the scores are
    self-normalised log-probabilities, $s_n(w) = \log p(w \mid h_n)$, and as $K$ grows its
    gradient approaches that of the full-softmax negative log-likelihood for such scores.

    **Hard limit:** NCE has no temperature; its exact counterpart is the full-softmax
    negative log-likelihood $-\log \operatorname{softmax}(s_n)_{y_n}$, returned by
    [`NCELoss.metric`][softmetrics.NCELoss.metric].

    Args:
        input: `(N, H)` hidden states.
        target: `(N,)` integer class ids in `[0, V)`.
        weight: `(V, H)` weights of the output layer.
        bias: `(V,)` biases of the output layer, or None.
        num_noise: noise samples $K \ge 1$ per example (per batch with `shared_noise`).
        noise_distribution: `(V,)` probabilities $q$ summing to 1 (sampled with
            replacement: `torch.multinomial`, on CUDA the inverse of the cumulative
            distribution summed in integers, which is deterministic); None for uniform.
        shared_noise: draw one set of $K$ noise classes for the whole batch (TensorFlow's
            sampling; one `(N, K)` matrix product) instead of $K$ per example.
        generator: a `torch.Generator` for reproducible noise draws, on the device of
            `input` (e.g. `torch.Generator(device="cuda")` for CUDA inputs).
        reduction: `"mean"`, `"sum"` or `"none"` (per example, shape `(N,)`).
        validate_args: also check target ids, and that `noise_distribution` is
            non-negative, sums to 1 and is positive at every target (reads the data).

    Returns:
        The loss in nats, $\ge 0$: a scalar, or `(N,)` for `reduction="none"`.

    Raises:
        ValueError: for mismatched shapes, `num_noise < 1`, an unknown `reduction`, or
            (with `validate_args`) target ids outside `[0, V)` and a noise distribution
            that is negative, does not sum to 1, or is 0 at a target; for a `generator`
            on another device type than `input`.
        TypeError: for non-floating `input`/`weight`/`bias`/`noise_distribution` or a
            non-integer `target`.

    Example:
        >>> import torch
        >>> from softmetrics.functional import nce_loss
        >>> generator = torch.Generator().manual_seed(0)
        >>> hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> weight = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
        >>> bias = torch.zeros(3)
        >>> nce_loss(hidden, torch.tensor([0, 1]), weight, bias, num_noise=4,
        ...          generator=generator)
        tensor(5.3849)

    ??? cite "References"
        - M. Gutmann, A. Hyvärinen. *Noise-contrastive estimation: A new estimation
          principle for unnormalized statistical models*. AISTATS 2010.
        - A. Mnih, Y. W. Teh. *A fast and simple algorithm for training neural
          probabilistic language models*. ICML 2012, arXiv:1206.6426.
        - TensorFlow, `tf.nn.nce_loss`.
    """
    fn = "nce_loss"
    check_output_layer(fn, input, target, weight, bias, validate_args)
    n, v = input.shape[0], weight.shape[0]
    check_int(fn, "num_noise", num_noise, low=1)
    check_option(fn, "reduction", reduction, _REDUCTIONS)
    check_generator(fn, generator, input)
    if noise_distribution is not None:
        _check_noise(fn, noise_distribution, v, target, validate_args)

    dtype = compute_dtype(torch.promote_types(input.dtype, weight.dtype))
    device = input.device
    shape = (num_noise,) if shared_noise else (n, num_noise)
    count = math.prod(shape)
    if noise_distribution is None:
        noise = torch.randint(v, shape, generator=generator, device=device)
        log_q_noise = torch.full(shape, -math.log(v), dtype=dtype, device=device)
        log_q_target = torch.full((n,), -math.log(v), dtype=dtype, device=device)
    else:
        q = noise_distribution.to(device=device, dtype=torch.float32 if
                                  noise_distribution.dtype in (torch.float16, torch.bfloat16)
                                  else noise_distribution.dtype)
        if count:
            noise = _draw_noise(q, count, generator)
        else:  # an empty batch draws nothing (multinomial cannot draw 0 samples)
            noise = torch.zeros(0, dtype=torch.long, device=device)
        noise = noise.view(shape)
        log_q = torch.log(q).to(dtype)
        log_q_noise, log_q_target = log_q[noise], log_q[target]
    log_k = math.log(num_noise)

    x = input.to(dtype)
    w = weight.to(dtype)
    b = None if bias is None else bias.to(dtype)
    score_target = (x * w[target]).sum(dim=1)
    with full_precision(device):  # float32 scores, also under autocast
        if shared_noise:
            score_noise = x @ w[noise].T
        else:
            score_noise = torch.einsum("nh,nkh->nk", x, w[noise])
    if b is not None:
        score_target = score_target + b[target]
        score_noise = score_noise + b[noise]
    delta_target = score_target - log_k - log_q_target
    delta_noise = score_noise - log_k - log_q_noise
    # -log sigma(x) = softplus(-x); -log(1 - sigma(x)) = softplus(x)
    loss = F.softplus(-delta_target) + F.softplus(delta_noise).sum(dim=-1)
    return reduce_per_sample(loss, reduction)
