"""Machinery of the contrastive family: argument checks, the candidate sets, the batch
across processes, and the per-query InfoNCE and retrieval accuracy terms (NCE's are in
`_nce_core`).

Each public function of `functional/contrastive.py` checks its arguments, gathers the
batch of every process where asked (`gather_pairs`), computes one value per query
(`info_nce_per_query`, `retrieval_per_query`) and reduces them (`reduce_queries`). Where
tiles are asked for, InfoNCE runs in the tiled autograd Function of `_infonce_tiles`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from .. import _tuning, distributed
from .._checks import (
    DataChecks,
    check_floating,
    check_ndim,
    check_same_device,
    checks_data,
    fail,
)
from .._operators import operator
from .._relax import (
    bounded,
    compute_dtype,
    full_precision,
    promote_floats,
    reduce_per_sample,
    tie_averaged,
)
from .._transforms import is_compiling
from ._infonce_tiles import (
    auto_chunk,
    mask_self,
    normalize_rows,
    rowdot,
    tile_bounds,
    tile_rows,
    tiled_info_nce,
)

__all__ = [
    "Pairs",
    "check_pairs",
    "gather_pairs",
    "info_nce_per_query",
    "reduce_queries",
    "retrieval_per_query",
]

# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------


def check_pairs(fn: str, query: Tensor, key: Tensor, negatives: Tensor | None,
                validate_args: bool, checks: DataChecks) -> torch.dtype:
    """Check the embeddings of `info_nce` and `retrieval_accuracy`: `(N, D)` queries and
    keys of one shape, `(M, D)` shared or `(N, K, D)` per-query `negatives`, floating
    dtypes, and (added to `checks`, which the caller settles) finite values under
    `checks_data(validate_args)`. Returns the dtype to compute in."""
    check_floating(fn, "query", query, "embeddings")
    check_floating(fn, "key", key, "embeddings")
    check_ndim(fn, "query", query, 2, "a 2-D tensor (N, D)")
    check_ndim(fn, "key", key, 2, "a 2-D tensor (N, D)")
    if query.shape[0] == 0:
        fail(fn, "query", "a non-empty batch (N >= 1)", f"shape {tuple(query.shape)}", raw=True)
    if key.shape != query.shape:
        fail(fn, "key", f"of shape {tuple(query.shape)} (the shape of `query`, key i being "
             "the positive of query i)", f"shape {tuple(key.shape)}", raw=True)
    n, d = query.shape
    dtype = promote_floats(query.dtype, key.dtype)
    if negatives is not None:
        check_floating(fn, "negatives", negatives, "embeddings")
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
        dtype = promote_floats(dtype, negatives.dtype)
    check_same_device(fn, ("query", query), ("key", key), ("negatives", negatives))
    if checks_data(validate_args):
        checks.finite(fn, "query", query)
        checks.finite(fn, "key", key)
        if negatives is not None:
            checks.finite(fn, "negatives", negatives)
    return compute_dtype(dtype)


def check_candidates(fn: str, negatives: Tensor | None, in_batch: bool,
                     query_negatives: bool) -> None:
    """InfoNCE needs a candidate besides the positive: in-batch keys, other queries or
    `negatives` with at least one row (else the loss is 0 whatever the embeddings)."""
    if not in_batch and not query_negatives and (negatives is None
                                                 or negatives.shape[-2] == 0):
        fail(fn, "negatives", "given when in_batch_negatives=False and query_negatives=False "
             "(the positive would be the only candidate)", negatives)


# --------------------------------------------------------------------------------------
# candidates, and the batch across processes
# --------------------------------------------------------------------------------------


def _embed(x: Tensor, dtype: torch.dtype, normalize: bool) -> Tensor:
    x = x.to(dtype)
    return normalize_rows(x) if normalize else x


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


class Pairs(NamedTuple):
    """The queries and keys of every process (rank order, with gradient), the row `start`
    of this process's first query in them, and the global batch size `total`."""

    queries: Tensor
    keys: Tensor
    start: int
    total: int


def gather_pairs(query: Tensor, key: Tensor, *, gather_distributed: bool, in_batch: bool,
                 query_negatives: bool, process_group: torch.distributed.ProcessGroup | None
                 ) -> Pairs | None:
    """The `Pairs` of every process when `gather_distributed` asks for them inside a
    process group and in-batch candidates (keys or queries) use them; None otherwise."""
    if not (gather_distributed and distributed.is_distributed()
            and (in_batch or query_negatives)):
        return None
    (query, key), sizes = distributed.all_gather_rows(query, key, process_group=process_group)
    return Pairs(query, key, sum(sizes[:distributed.get_rank(process_group)]), sum(sizes))


def reduce_queries(values: Tensor, reduction: str, pairs: Pairs | None,
                   process_group: torch.distributed.ProcessGroup | None,
                   gather_distributed: bool = False) -> Tensor:
    """Reduce per-query values over this process's queries, or, with `gather_distributed`
    inside a process group, over the queries of every process (a sum with gradient):
    also without in-batch candidates (`pairs` None), whose queries' number is then summed
    too."""
    if not (gather_distributed and distributed.is_distributed()):
        return reduce_per_sample(values, reduction)
    if reduction == "none":
        return values
    if reduction == "sum" or pairs is not None:
        value = distributed.all_reduce_sum(values.sum(), process_group)
        return value if pairs is None or reduction == "sum" else value / max(pairs.total, 1)
    # the global number of queries too, in the same collective
    value, count = distributed.all_reduce_sums(
        (values.sum(), values.new_full((), values.shape[0])), process_group)
    return value / count.clamp_min(1)


# --------------------------------------------------------------------------------------
# InfoNCE per query
# --------------------------------------------------------------------------------------


def _candidate_lse(scaled: Tensor, cand: Tensor, offset: int, chunk_size: int | None) -> Tensor:
    """Log-sum-exp of `scaled @ cand.T` per row, leaving out column `i + offset` of row `i`
    when `offset >= 0`; tiled when `chunk_size` asks for it."""
    chunk = auto_chunk(scaled.shape[0], cand.shape[0], chunk_size, scaled.device)
    if chunk is not None:
        one = torch.ones((), dtype=scaled.dtype, device=scaled.device)
        rows_per_tile = tile_rows(chunk, scaled.shape[1], scaled.device)
        return tiled_info_nce(one, False, chunk, rows_per_tile, scaled.dtype,
                              ((0, (1,), offset, -1),), scaled, cand)
    logits = scaled @ cand.T
    rows = torch.arange(scaled.shape[0], device=scaled.device)
    if offset >= 0:
        logits = logits.index_put((rows, rows + offset), logits.new_full((), float("-inf")))
    # lse = z_c - log_softmax(z)_c at the row maximum c: autograd then keeps one N x P
    # buffer (the log-softmax), as F.cross_entropy does, instead of the logits and more
    top = logits.detach().argmax(dim=1)
    return logits[rows, top] - torch.log_softmax(logits, dim=1)[rows, top]


def _direction_loss(anchor: Tensor, other: Tensor, negatives: Tensor | None,
                    temperature: float | Tensor, in_batch: bool, query_negatives: bool,
                    chunk_size: int | None, normalize: bool, dtype: torch.dtype,
                    gathered: tuple[Tensor, Tensor, int] | None = None) -> Tensor:
    """Per-anchor InfoNCE: `-log softmax` of the positive `other[i]` among the candidates.

    This is the general path (per-query negatives, no in-batch negatives, untiled);
    `_tiled_directions` is the tiled one. `anchor`, `other` and `negatives` are the
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
        positive = rowdot(scaled, o)
        if cand is not None:
            terms.append(_candidate_lse(scaled, cand, offset, chunk_size))
        if not in_batch:
            terms.append(positive)
        if negatives is not None and negatives.ndim == 3 and negatives.shape[1] > 0:
            logits = torch.einsum("nd,nkd->nk", scaled, negatives)
            terms.append(torch.logsumexp(logits, dim=1))
    lse = terms[0] if len(terms) == 1 else torch.logsumexp(torch.stack(terms), dim=0)
    # the positive is one of the candidates, so lse >= positive up to rounding
    return bounded(lse - positive, 0.0)


def _tiled_directions(query: Tensor, key: Tensor, negatives: Tensor | None,
                      temperature: float | Tensor, symmetric: bool, query_negatives: bool,
                      chunk: int, normalize: bool, dtype: torch.dtype,
                      gathered: tuple[Tensor, Tensor, int] | None) -> Tensor:
    """Per-query InfoNCE with in-batch negatives (and shared `negatives`), both directions
    of a symmetric loss in one `tiled_info_nce` call over the embeddings as given.

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
        rows = tile_rows(chunk, query.shape[1], query.device)
        out = tiled_info_nce(tau, normalize, chunk, rows, dtype, tuple(passes), *tensors)
    # the positive is one of the candidates, so each loss is >= 0 up to rounding
    out = bounded(out, 0.0)
    n = query.shape[0]
    return out if len(passes) == 1 else 0.5 * (out[:n] + out[n:])


def info_nce_per_query(query: Tensor, key: Tensor, negatives: Tensor | None,
                       pairs: Pairs | None, *, temperature: float | Tensor, in_batch: bool,
                       query_negatives: bool, symmetric: bool, normalize: bool,
                       chunk_size: int | None, dtype: torch.dtype) -> Tensor:
    """The InfoNCE loss of each of this process's queries (averaged with the key-to-query
    loss when `symmetric`), its in-batch candidates taken from `pairs` when given; tiled
    (`tiled_info_nce`) where `auto_chunk` asks for tiles and the candidates allow it."""
    forward = backward = None
    if pairs is not None:
        forward = (pairs.queries, pairs.keys, pairs.start)
        backward = (pairs.keys, pairs.queries, pairs.start)
    n_all = query.shape[0] if pairs is None else pairs.queries.shape[0]
    shared = negatives.shape[0] if negatives is not None and negatives.ndim == 2 else 0
    candidates = n_all * (int(in_batch) + int(query_negatives)) + shared
    chunk = auto_chunk(query.shape[0], candidates, chunk_size, query.device)
    if chunk is not None and in_batch and (negatives is None or shared):
        return _tiled_directions(query, key, negatives, temperature, symmetric,
                                 query_negatives, chunk, normalize, dtype, forward)
    options: dict[str, Any]  # keyword arguments of _direction_loss, of several types
    options = dict(temperature=temperature, in_batch=in_batch,
                   query_negatives=query_negatives, chunk_size=chunk_size,
                   normalize=normalize, dtype=dtype)
    loss = _direction_loss(query, key, negatives, gathered=forward, **options)
    if symmetric:
        back = _direction_loss(key, query, None, gathered=backward, **options)
        loss = 0.5 * (loss + back)
    return loss


# --------------------------------------------------------------------------------------
# retrieval accuracy per query (the exact metric)
# --------------------------------------------------------------------------------------


def _count_ties(logits: Tensor, positive: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per row: the candidates above the positive, those equal to it, and whether any
    logit is NaN (then the rank is undefined)."""
    p = positive.unsqueeze(1)
    # counted in int32 (exact below 2^31 candidates): the default int64 sum of a bool
    # tensor along rows took 2.6x as long on the CPU
    return ((logits > p).sum(dim=1, dtype=torch.int32),
            (logits == p).sum(dim=1, dtype=torch.int32), logits.isnan().any(dim=1))


def _retrieval_tiles(q: Tensor, cand: Tensor | None, keys: Tensor, offset: int, base: int,
                     in_batch: bool, rows: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per query, over tiles of `rows` queries x every candidate: the candidates above its
    positive, those equal to it and whether any logit is NaN, and the positive itself.

    The positive comes out of the tile's own matrix product, so that a candidate equal
    to the key scores as the key to the last bit (a separate product may round the same
    dot product otherwise): with in-batch candidates it is their diagonal; else the keys
    of the tile follow the candidates in the product. No candidates: no tiles, counts of
    0, and the row dot products of the queries and keys."""
    n = q.shape[0]
    if cand is None:
        zeros = torch.zeros(n, dtype=torch.long, device=q.device)
        return zeros, zeros.clone(), zeros.bool(), (q * keys).sum(dim=1)
    p = cand.shape[0]
    both = cand if in_batch else torch.cat([cand, keys.new_empty(min(rows, n), q.shape[1])])
    # each tile's rows against every candidate: its counts are whole, and are collected
    # (not added into buffers, a write that `torch.func.vmap` cannot batch)
    parts: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    for start, stop in tile_bounds(n, rows):
        if in_batch:
            logits = q[start:stop] @ cand.T
            own = logits[:, base + start:base + stop].diagonal()
        else:
            both[p:p + stop - start] = keys[start:stop]
            product = q[start:stop] @ both[:p + stop - start].T
            logits, own = product[:, :p], product[:, p:].diagonal()
        mask_self(logits, offset, start, 0, p)
        positive = own.clone() if in_batch else own
        if in_batch:
            own.fill_(float("-inf"))
        g, t, u = _count_ties(logits, positive)
        parts.append((g.long(), t.long(), u, positive))
    if not parts:  # no queries
        zeros = torch.zeros(0, dtype=torch.long, device=q.device)
        return zeros, zeros.clone(), zeros.bool(), q.new_empty(0)
    greater, equal, unordered, positive = (torch.cat(column)
                                           for column in zip(*parts, strict=True))
    return greater, equal, unordered, positive


def _fake_retrieval_tiles(q: Tensor, cand: Tensor | None, keys: Tensor, offset: int,
                          base: int, in_batch: bool, rows: int
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The shapes and dtypes of `_retrieval_tiles`' results, for the compiler."""
    n = q.shape[0]
    return (q.new_empty(n, dtype=torch.long), q.new_empty(n, dtype=torch.long),
            q.new_empty(n, dtype=torch.bool), q.new_empty(n))


# `softmetrics::retrieval_tiles`: `_retrieval_tiles` as an operator (no gradient: the metric
# is exact), so that inside `torch.compile` its tile loop is one call rather than unrolled
# into the graph
_RETRIEVAL_OPERATOR = operator("retrieval_tiles", _retrieval_tiles, _fake_retrieval_tiles)


def retrieval_per_query(query: Tensor, key: Tensor, negatives: Tensor | None,
                        pairs: Pairs | None, *, in_batch: bool, query_negatives: bool,
                        normalize: bool, k: int, dtype: torch.dtype) -> Tensor:
    """The top-`k` retrieval accuracy of each of this process's queries, ties shared, its
    in-batch candidates taken from `pairs` when given; in tiles of queries. No gradient."""
    with full_precision(query.device):  # float32 scores, also under autocast
        return _retrieval_per_query(query, key, negatives, pairs, in_batch=in_batch,
                                    query_negatives=query_negatives, normalize=normalize,
                                    k=k, dtype=dtype)


def _retrieval_per_query(query: Tensor, key: Tensor, negatives: Tensor | None,
                         pairs: Pairs | None, *, in_batch: bool, query_negatives: bool,
                         normalize: bool, k: int, dtype: torch.dtype) -> Tensor:
    q = _embed(query, dtype, normalize)
    keys = _embed(key, dtype, normalize)
    neg = None if negatives is None else _embed(negatives, dtype, normalize)
    n = q.shape[0]
    shared = neg if neg is not None and neg.ndim == 2 else None
    base = 0  # the column of this process's first own key among the candidates
    if pairs is not None:
        base = pairs.start
        cand, offset = _candidates(_embed(pairs.queries, dtype, normalize),
                                   _embed(pairs.keys, dtype, normalize), shared, in_batch,
                                   query_negatives, base)
    else:
        cand, offset = _candidates(q, keys, shared, in_batch, query_negatives)
    p = 0 if cand is None else cand.shape[0] + (0 if in_batch else 1)
    rows = max(1, min(n, _tuning.infonce_tile_elements(q.device) // max(p, 1)))
    if cand is not None and not in_batch:  # the tile's keys join its product
        rows = max(1, min(rows, _tuning.infonce_tile_elements(q.device) // (p - 1 + rows)))
    tiles = (_RETRIEVAL_OPERATOR if is_compiling() and _RETRIEVAL_OPERATOR is not None
             else _retrieval_tiles)
    greater, equal, unordered, positive = tiles(q, cand, keys, offset, base, in_batch, rows)
    if neg is not None and neg.ndim == 3:
        # the key in the same product as the negatives (column 0): a copy of it ties
        own = torch.einsum("nd,nkd->nk", q, torch.cat([keys.unsqueeze(1), neg], 1))
        g, t, u = _count_ties(own[:, 1:], own[:, 0])
        greater += g
        equal += t
        unordered |= u | own[:, 0].isnan()
    acc = tie_averaged(lambda n: n.clamp(max=k), greater.to(dtype), (equal + 1).to(dtype))
    # a NaN embedding leaves no rank: NaN, not an accuracy from comparisons that all fail
    return torch.where(unordered | positive.isnan(), float("nan"), acc)
