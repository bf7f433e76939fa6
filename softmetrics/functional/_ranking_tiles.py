r"""The soft statistics of the ranking family in tiles: `F_i`, the negatives ranked above
each sample, as a sum of sigmoids over pairs that is never held whole.

`NegativesAbove` computes it for every sample, `PositivesAbove` for listed entries only
(the positives of multiclass targets); both are autograd Functions whose backward
recomputes each tile. Inside `torch.compile` they run as operators of their own
(`softmetrics::negatives_above`, `softmetrics::positives_above`), opaque to the compiler,
so that the tile loops are not unrolled into its graph. `tile_rows` chooses the tile size.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, cast

import torch
from torch import Tensor

from .. import _tuning
from .._operators import custom_op
from .._transforms import (
    batched_grads,
    is_compiling,
    is_transformed,
    plain_backward,
    recompute_grad,
)

__all__ = [
    "NegativesAbove",
    "PositivesAbove",
    "negatives_above_tiles",
    "positives_above_tiles",
    "tile_rows",
]


def _pair_weight(neg: Tensor, level: Tensor | None, start: int, stop: int,
                 skip: int = 0) -> Tensor | None:
    """The weights of the pairs of tile rows `start:stop` and of the columns from `skip`
    on (`neg`: those columns), (K, rows, M - skip): `neg_j` where the levels of `i` and `j`
    differ; None without levels (the weight is then `neg_j` alone, applied by a matrix
    product)."""
    if level is None:
        return None
    differ = level[:, skip:].unsqueeze(1) != level[:, start:stop].unsqueeze(2)
    return neg.unsqueeze(1) * differ.to(neg.dtype)


class NegativesAbove(torch.autograd.Function):
    """`F_i = sum_j neg_j sigmoid(u_j - u_i)` for every row `i`, in tiles of `rows` rows.

    `u` (K, M) are the scores divided by the temperature. Forward keeps only the (K, M)
    result (and the listing below, (K, M) indices, where it lists the positives);
    backward recomputes each tile: with upstream gradient $g$ and
    $D_{ij} = \\sigma'(u_j - u_i)$, $\\partial / \\partial u_j = \\sum_i g_i\\, neg_j D_{ij}$
    and $\\partial / \\partial u_i = -g_i \\sum_j neg_j D_{ij}$. Extra memory is two tiles,
    $O(K \\cdot rows \\cdot M)$. When a graph is being built (`create_graph=True`) the
    same tiles are computed with out-of-place ops, which autograd differentiates again
    (keeping every tile for the second backward).

    With `level` (K, M) a pair counts only where the levels of `i` and `j` differ (graded
    relevance: the pairs whose order changes a retrieval metric); `neg_j` then weighs `j`
    as before.

    With `pos` (K, M), nonzero at the entries whose `F_i` is read (the positives), the
    other entries are 0, and on the CPU, where reading `pos` and `neg` costs no
    synchronisation, only the pairs of such an entry and a negative are computed: each
    row is put in the order positives, ignored entries, negatives (`_Listing`), the rows
    in the order of their numbers of positives, most first, and each tile covers the rows
    with a positive among its entries and, of those, the columns from the earliest first
    negative on. For one row of 8192 samples that is a quarter of the pairs when half are
    positives, about a twentieth when 5% are; rows of unequal numbers of positives (the
    labels of a multilabel task, the queries of a retrieval batch) each cost about their
    own positives times their negatives, not the most positives of any row.
    Elsewhere every row is computed and the others masked, unless
    `_tuning.RANKING_DEVICE_LISTS_POSITIVES` accepts the synchronisation of a listing
    there (`_tuning.RANKING_CPU_LISTS_POSITIVES` off puts the CPU on the masked path).
    """

    apply: ClassVar[Callable[..., Tensor]]

    @staticmethod
    def forward(ctx: Any, u: Tensor, neg: Tensor, rows: int, level: Tensor | None = None,
                pos: Tensor | None = None) -> Tensor:
        ctx.save_for_backward(u, neg, level, pos)
        ctx.rows = rows
        # the backward pass reads the same listing (off the CPU: no second synchronisation)
        ctx.listing = listing = _listing_for(u, neg, pos)
        return _negatives_forward(u, neg, rows, level, pos, listing)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None, None, None]:
        u, neg, level, pos = ctx.saved_tensors
        grad = _negatives_backward(grad_out, u, neg, level, ctx.rows, pos, ctx.listing)
        return grad, None, None, None, None


class _Listing:
    """The order that puts each row's positives first and its negatives last: positives
    that are no negative, positives that are (graded relevance weighs every item), entries
    that are neither (ignored), then the other negatives; stable, so ties keep their
    places. The rows themselves are put in the order of their numbers of positives, most
    first (stable), so that the tiles past a row's positives can leave it out: `extent`.
    `count` is the most positives of a row (`is_pos` marks the positives among the first
    `count` entries). Reads `pos` and `neg` on the host: free on the CPU, a
    synchronisation elsewhere."""

    def __init__(self, pos: Tensor, neg: Tensor) -> None:
        is_pos, is_neg = pos != 0, neg != 0
        key = 2 * is_pos.to(torch.int8) - is_neg.to(torch.int8)
        order = key.argsort(dim=-1, descending=True, stable=True)
        k, m = pos.shape
        # the rows, most positives first, where that is not their order (else None)
        self.by_count: Tensor | None = None
        self.count, self._counts, self._skips = 0, [0] * k, [m] * k
        if pos.numel():
            # each row's first negative in this order (none: m)
            listed_neg = is_neg.gather(-1, order)
            first = torch.where(listed_neg.any(-1), listed_neg.to(torch.uint8).argmax(-1),
                                torch.full_like(listed_neg[:, 0], m, dtype=torch.long))
            # read in one transfer: off the CPU, one synchronisation
            counts, firsts = torch.stack([is_pos.sum(-1), first]).tolist()
            rows = sorted(range(k), key=lambda row: -counts[row])  # stable
            if rows != list(range(k)):
                self.by_count = torch.tensor(rows, device=pos.device)
                order, is_pos = order[self.by_count], is_pos[self.by_count]
            self._counts = [counts[row] for row in rows]
            self.count = self._counts[0]
            # the earliest first negative of the rows up to each one
            self._skips = list(itertools.accumulate((firsts[row] for row in rows), min))
        self.order = order
        # which of the first `count` entries are positives (a row with fewer has others)
        self.is_pos = is_pos.gather(-1, order[:, :self.count])

    def extent(self, start: int) -> tuple[int, int]:
        """The rows that a tile from entry `start` on needs, the first ones (those with a
        positive there), and the entry from which on their negatives lie."""
        rows = bisect.bisect_left(self._counts, -start, key=operator.neg)
        return rows, self._skips[rows - 1]

    def take(self, t: Tensor | None) -> Tensor | None:
        """`t` (K, M) in the listing's order."""
        if t is None:
            return None
        return (t if self.by_count is None else t[self.by_count]).gather(-1, self.order)

    def put(self, values: Tensor, m: int) -> Tensor:
        """(K, count) or (K, M) values in the listing's order, back in place in a (K, M)
        tensor (0 beyond `count`), by out-of-place ops that autograd can follow."""
        index = self.order[:, :values.shape[-1]]
        listed = values.new_zeros(values.shape[0], m).scatter(-1, index, values)
        if self.by_count is None:
            return listed
        return torch.zeros_like(listed).index_copy(0, self.by_count, listed)


def _whole(u: Tensor) -> Callable[[int], tuple[int, int]]:
    """The extent of every tile without a listing: every row, every entry."""
    rows = u.shape[0]
    return lambda start: (rows, 0)


def _lists_positives(u: Tensor, pos: Tensor | None) -> bool:
    """Whether `NegativesAbove` lists the positives: run eagerly (as the operator's body
    inside `torch.compile`; traced, the listing's sizes would be data), on the CPU by
    default, on other devices where `_tuning.RANKING_DEVICE_LISTS_POSITIVES` allows its
    synchronisation."""
    if pos is None or is_compiling():
        return False
    if u.device.type == "cpu":
        return _tuning.RANKING_CPU_LISTS_POSITIVES
    return _tuning.RANKING_DEVICE_LISTS_POSITIVES


def _listing_for(u: Tensor, neg: Tensor, pos: Tensor | None) -> _Listing | None:
    """The listing of the positives where `NegativesAbove` lists them, else None."""
    return _Listing(cast(Tensor, pos), neg) if _lists_positives(u, pos) else None


def _only(t: Tensor, keep: Tensor) -> Tensor:
    """`t` where `keep`, else 0: selected, not a product with 0, which would keep a NaN
    that an ignored entry's score spreads over the rows that read it."""
    return torch.where(keep, t, 0.0)


def _positives_only(t: Tensor, pos: Tensor) -> Tensor:
    """`_only(t, pos != 0)` in one operation fewer each way."""
    return t.masked_fill(pos == 0, 0.0)


def _negatives_forward(u: Tensor, neg: Tensor, rows: int, level: Tensor | None,
                       pos: Tensor | None, listing: _Listing | None) -> Tensor:
    """`NegativesAbove`'s forward pass, over the positives of `listing` where there is
    one (`_listing_for`)."""
    m = u.shape[-1]
    if listing is None:
        out = _tiles_forward(u, neg, rows, level, m, _whole(u))
        return out if pos is None else _positives_only(out, pos)
    part = _tiles_forward(cast(Tensor, listing.take(u)), cast(Tensor, listing.take(neg)), rows,
                          listing.take(level), listing.count, listing.extent)
    return listing.put(_only(part, listing.is_pos), m)


def _tiles(u: Tensor, neg: Tensor, level: Tensor | None, rows: int, count: int,
           extent: Callable[[int], tuple[int, int]]
           ) -> Iterator[tuple[int, int, int, int, Tensor, Tensor, Tensor | None]]:
    """The tiles of the first `count` entries, `rows` at a time: for each, `(start, stop,
    k, skip, cols, neg, pair)`: its entries `start:stop` of the first `k` rows, against
    the columns from `skip` on (`cols`, and their weights `neg`), and the weights of its
    pairs where there are levels (`_pair_weight`; None without)."""
    last = None
    for start in range(0, count, rows):
        stop = min(start + rows, count)
        k, skip = extent(start)
        if (k, skip) != last:  # the same for most tiles: copied once
            last = (k, skip)
            cols, weight = u[:k, skip:].contiguous(), neg[:k, skip:].contiguous()
            lv = None if level is None else level[:k]
        yield start, stop, k, skip, cols, weight, _pair_weight(weight, lv, start, stop, skip)


def _tiles_forward(u: Tensor, neg: Tensor, rows: int, level: Tensor | None, count: int,
                   extent: Callable[[int], tuple[int, int]]) -> Tensor:
    """`F_i` of the first `count` entries over the tiles of `_tiles`, (K, count); unset
    where no tile reaches (past a row's positives: the listing's `is_pos` drops them)."""
    out = u.new_empty(u.shape[0], count)
    for start, stop, k, _, cols, weight, pair in _tiles(u, neg, level, rows, count, extent):
        tile = (cols.unsqueeze(1) - u[:k, start:stop].unsqueeze(2)).sigmoid_()
        if pair is None:
            out[:k, start:stop] = torch.matmul(tile, weight.unsqueeze(-1)).squeeze(-1)
        else:
            out[:k, start:stop] = (tile * pair).sum(-1)
    return out


def _negatives_backward(grad_out: Tensor, u: Tensor, neg: Tensor, level: Tensor | None,
                        rows: int, pos: Tensor | None, listing: _Listing | None) -> Tensor:
    """`NegativesAbove`'s backward pass (over the forward pass's `listing`): the gradient
    of `u`, in place over tiles, or by out-of-place ops that autograd differentiates
    again where `plain_backward` asks for them (batched gradients: the whole pair
    matrix, whose operations autograd's vmap batches where the tiles' slices it cannot)."""
    m = u.shape[-1]
    if batched_grads(grad_out):
        return recompute_grad(lambda: _negatives_above_pairs(u, neg, level, pos), (u,),
                              grad_out)[0]
    differentiable = plain_backward()  # the gradients are not batched: asked above
    backward = _differentiable_tiles_grad if differentiable else _tiles_backward
    if listing is None:
        if pos is not None:
            grad_out = _positives_only(grad_out, pos)
        return backward(grad_out, u, neg, level, rows, m, _whole(u))
    g = _only(cast(Tensor, listing.take(grad_out))[:, :listing.count], listing.is_pos)
    grad = backward(g, cast(Tensor, listing.take(u)), cast(Tensor, listing.take(neg)),
                    listing.take(level), rows, listing.count, listing.extent)
    return listing.put(grad, m)


def _tiles_backward(grad_out: Tensor, u: Tensor, neg: Tensor, level: Tensor | None,
                    rows: int, count: int, extent: Callable[[int], tuple[int, int]]
                    ) -> Tensor:
    """The gradient of `u` (K, M) from that of `_tiles_forward`'s (K, count) result, in
    place over the same tiles."""
    grad = u.new_zeros(u.shape)
    for start, stop, k, skip, cols, weight, pair in _tiles(u, neg, level, rows, count,
                                                           extent):
        tile = (cols.unsqueeze(1) - u[:k, start:stop].unsqueeze(2)).sigmoid_()
        tile.sub_(tile * tile)
        g = grad_out[:k, start:stop]
        if pair is None:
            grad[:k, skip:].addcmul_(torch.matmul(g.unsqueeze(1), tile).squeeze(1), weight)
            grad[:k, start:stop].sub_(g * torch.matmul(tile, weight.unsqueeze(-1)).squeeze(-1))
        else:
            tile.mul_(pair)
            grad[:k, skip:].add_(torch.matmul(g.unsqueeze(1), tile).squeeze(1))
            grad[:k, start:stop].sub_(g * tile.sum(-1))
    return grad


def _differentiable_tiles_grad(grad_out: Tensor, u: Tensor, neg: Tensor,
                               level: Tensor | None, rows: int, count: int,
                               extent: Callable[[int], tuple[int, int]]) -> Tensor:
    """`_tiles_backward` by out-of-place ops, tile by tile."""
    pad = torch.nn.functional.pad
    k_all, m = u.shape
    to_j, to_i = torch.zeros_like(u), []
    for start, stop, k, skip, cols, weight, pair in _tiles(u, neg, level, rows, count,
                                                           extent):
        tile = (cols.unsqueeze(1) - u[:k, start:stop].unsqueeze(2)).sigmoid()
        tile = tile - tile * tile
        tile = tile * (weight.unsqueeze(1) if pair is None else pair)
        g = grad_out[:k, start:stop]
        # each tile's part padded to the rows it left out and the columns before `skip`
        to_j = to_j + pad(torch.matmul(g.unsqueeze(1), tile).squeeze(1),
                          (skip, 0, 0, k_all - k))
        to_i.append(pad(g * tile.sum(-1), (0, 0, 0, k_all - k)))
    # entries up to `count`: padded to the (K, M) gradient
    to_i.append(u.new_zeros(k_all, m - count))
    return to_j - torch.cat(to_i, dim=-1)


class PositivesAbove(torch.autograd.Function):
    """`F_p = sum_j neg[c_p, j] sigmoid(u[c_p, j] - u[c_p, i_p])` for listed entries only.

    The entries are `(cols[p], idx[p])` of `u` (K, M'), P of them, in tiles of `rows`
    entries. Multiclass targets give exactly one positive per sample, at known places, so
    the statistic of the positives alone costs P x M' pairs where `NegativesAbove` costs
    K x M' x M' (a C-fold saving for C classes; without a host synchronisation, since P is
    the number of samples). Forward keeps only the (P,) result; backward recomputes each
    tile and adds its rows into the rows `cols` of the gradient. With one row (`K == 1`,
    micro averaging) the row is broadcast and the sums are matrix products. Under
    `create_graph=True` the tiles are computed out of place, which autograd
    differentiates again.
    """

    apply: ClassVar[Callable[..., Tensor]]

    @staticmethod
    def forward(ctx: Any, u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor,
                rows: int) -> Tensor:
        ctx.save_for_backward(u, neg, cols, idx)
        ctx.rows = rows
        return _positives_forward(u, neg, cols, idx, rows)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None, None, None]:
        u, neg, cols, idx = ctx.saved_tensors
        return _positives_backward(grad_out, u, neg, cols, idx, ctx.rows), None, None, None, None


def _positives_forward(u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor, rows: int) -> Tensor:
    """`PositivesAbove`'s forward pass."""
    p = cols.shape[0]
    out = u.new_empty(p)
    tiles = _Tiles(u, neg, min(rows, p), buffered=True)
    for start in range(0, p, rows):
        tile, weight = tiles.tile(cols, idx, start, min(start + rows, p))
        tile.sigmoid_()
        if u.shape[0] == 1:
            out[start:start + tile.shape[0]] = torch.mv(tile, weight[0])
        else:
            out[start:start + tile.shape[0]] = tile.mul_(weight).sum(-1)
    return out


def _positives_backward(grad_out: Tensor, u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor,
                        rows: int) -> Tensor:
    """`PositivesAbove`'s backward pass: the gradient of `u`, in place over buffered
    tiles, or by out-of-place ops that autograd differentiates again where
    `plain_backward` asks for them (batched gradients: the listed entries' pairs at once,
    as in `_negatives_backward`)."""
    p = cols.shape[0]
    if batched_grads(grad_out):
        return recompute_grad(lambda: _positives_above_pairs(u, neg, cols, idx), (u,),
                              grad_out)[0]
    differentiable = plain_backward()  # the gradients are not batched: asked above
    # a new contiguous buffer (`zeros_like` would copy the strides of `u`, which a
    # compiled graph may choose freely)
    grad = u.new_zeros(u.shape)
    own = []  # the gradient through u[c_p, i_p], one value per listed entry
    tiles = _Tiles(u, neg, min(rows, p), buffered=not differentiable)
    for start in range(0, p, rows):
        stop = min(start + rows, p)
        tile, weight = tiles.tile(cols, idx, start, stop)
        if differentiable:
            tile = tile.sigmoid()
            tile = tile - tile * tile
        else:
            tile.sigmoid_()
            tile.sub_(torch.mul(tile, tile, out=tiles.spare(tile)))
        g = grad_out[start:stop]
        if u.shape[0] == 1:
            to_j = torch.mv(tile.t(), g) * weight[0]
            to_i = g * torch.mv(tile, weight[0])
            grad = grad + to_j if differentiable else grad.add_(to_j)
        else:
            tile = tile * weight * g.unsqueeze(1) if differentiable else (
                tile.mul_(weight).mul_(g.unsqueeze(1)))
            to_i = tile.sum(-1)
            # into the rows of the entries' columns (a scatter, not `index_add_`, whose
            # compiled CPU kernel in torch 2.13 writes outside the rows it adds to)
            rows_of = cols[start:stop].unsqueeze(1).expand_as(tile)
            grad = (grad.scatter_add(0, rows_of, tile) if differentiable
                    else grad.scatter_add_(0, rows_of, tile))
        own.append(to_i)
    # the entries are distinct: written, not accumulated (deterministic on every device)
    values = torch.cat(own) if own else u.new_zeros(0)  # no entries: no tiles
    own_entries = u.new_zeros(u.shape).index_put((cols, idx), values)
    return grad - own_entries


class _Tiles:
    """The tiles of one pass of `PositivesAbove`: the differences `u[c_p, j] - u[c_p, i_p]`
    of a run of entries, (rows, M'), and their weights `neg[c_p, j]` ((rows, M'); `neg`
    itself, (1, M'), for one row). `buffered` writes every tile into the same buffers
    (and offers a spare one), one allocation per pass rather than per tile: on the CPU,
    fresh tiles left the allocator's heap ragged (a peak of about 100 MiB against 14 MiB
    at 4000 samples and 10 classes). Unbuffered tiles are new tensors, for autograd to
    differentiate."""

    def __init__(self, u: Tensor, neg: Tensor, rows: int, buffered: bool) -> None:
        self.u, self.neg = u, neg
        shape = (rows, u.shape[1])
        self.diff = u.new_empty(shape) if buffered else None
        self.weight = neg.new_empty(shape) if buffered and u.shape[0] > 1 else None
        self.extra = u.new_empty(shape) if buffered else None

    def tile(self, cols: Tensor, idx: Tensor, start: int, stop: int) -> tuple[Tensor, Tensor]:
        c, i = cols[start:stop], idx[start:stop]
        own, n = self.u[c, i].unsqueeze(1), c.shape[0]
        if self.u.shape[0] == 1:
            return torch.sub(self.u, own, out=_rows(self.diff, n)), self.neg
        diff = torch.index_select(self.u, 0, c, out=_rows(self.diff, n)).sub_(own)
        return diff, torch.index_select(self.neg, 0, c, out=_rows(self.weight, n))

    def spare(self, like: Tensor) -> Tensor | None:
        """A buffer shaped like a tile (buffered passes), else None."""
        return _rows(self.extra, like.shape[0])


def _rows(buffer: Tensor | None, n: int) -> Tensor | None:
    return None if buffer is None else buffer[:n]


def _define_operators() -> tuple[Callable[..., Tensor], Callable[..., Tensor]] | None:
    """`softmetrics::negatives_above` and `softmetrics::positives_above`: the forward
    passes of `NegativesAbove` and `PositivesAbove` as operators, each differentiated by
    an operator of its backward pass. Inside `torch.compile` they run eagerly, opaque to
    the compiler, whatever the number of tiles: traced, the tile loops were unrolled into
    the graph (256 tiles of 64 rows for a binary column of 16384 samples on the CPU).
    None before torch 2.4 (no `torch.library.custom_op`): there the compiler traces the
    autograd Functions."""
    if not hasattr(torch.library, "custom_op"):
        return None

    @custom_op("softmetrics::negatives_above", mutates_args=())
    def negatives(u: Tensor, neg: Tensor, rows: int, level: Tensor | None,
                  pos: Tensor | None) -> Tensor:
        return _negatives_forward(u, neg, rows, level, pos, _listing_for(u, neg, pos))

    @negatives.register_fake
    def _(u: Tensor, neg: Tensor, rows: int, level: Tensor | None,
          pos: Tensor | None) -> Tensor:
        return u.new_empty(u.shape)

    @custom_op("softmetrics::negatives_above_backward", mutates_args=())
    def negatives_backward(grad: Tensor, u: Tensor, neg: Tensor, level: Tensor | None,
                           rows: int, pos: Tensor | None) -> Tensor:
        with torch.no_grad():  # the tiles in place (a graph being built does not come here)
            return _negatives_backward(grad, u, neg, level, rows, pos,
                                       _listing_for(u, neg, pos))

    @negatives_backward.register_fake
    def _(grad: Tensor, u: Tensor, neg: Tensor, level: Tensor | None, rows: int,
          pos: Tensor | None) -> Tensor:
        return u.new_empty(u.shape)

    def setup_negatives(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        u, neg, rows, level, pos = inputs
        ctx.save_for_backward(u, neg, level, pos)
        ctx.rows = rows

    def differentiate_negatives(ctx: Any, grad: Tensor
                                ) -> tuple[Tensor, None, None, None, None]:
        u, neg, level, pos = ctx.saved_tensors
        if torch.is_grad_enabled():
            # a graph being built: the out-of-place tiles, which autograd differentiates
            # again (each operator lists anew: its passes are separate calls)
            return (_negatives_backward(grad, u, neg, level, ctx.rows, pos,
                                        _listing_for(u, neg, pos)), None, None, None, None)
        return negatives_backward(grad, u, neg, level, ctx.rows, pos), None, None, None, None

    negatives.register_autograd(differentiate_negatives, setup_context=setup_negatives)

    @custom_op("softmetrics::positives_above", mutates_args=())
    def positives(u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor, rows: int) -> Tensor:
        return _positives_forward(u, neg, cols, idx, rows)

    @positives.register_fake
    def _(u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor, rows: int) -> Tensor:
        return u.new_empty(cols.shape[0])

    @custom_op("softmetrics::positives_above_backward", mutates_args=())
    def positives_backward(grad: Tensor, u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor,
                           rows: int) -> Tensor:
        with torch.no_grad():
            return _positives_backward(grad, u, neg, cols, idx, rows)

    @positives_backward.register_fake
    def _(grad: Tensor, u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor,
          rows: int) -> Tensor:
        return u.new_empty(u.shape)

    def setup_positives(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        u, neg, cols, idx, rows = inputs
        ctx.save_for_backward(u, neg, cols, idx)
        ctx.rows = rows

    def differentiate_positives(ctx: Any, grad: Tensor
                                ) -> tuple[Tensor, None, None, None, None]:
        u, neg, cols, idx = ctx.saved_tensors
        backward = _positives_backward if torch.is_grad_enabled() else positives_backward
        return backward(grad, u, neg, cols, idx, ctx.rows), None, None, None, None

    positives.register_autograd(differentiate_positives, setup_context=setup_positives)
    return (cast(Callable[..., Tensor], negatives), cast(Callable[..., Tensor], positives))


_OPERATORS = _define_operators()


def negatives_above_tiles(u: Tensor, neg: Tensor, rows: int, level: Tensor | None,
                          pos: Tensor | None = None) -> Tensor:
    """`NegativesAbove`, as its operator inside `torch.compile` where there is one, and
    as plain operations on every pair at once inside `torch.func` transforms."""
    if is_transformed():
        return _negatives_above_pairs(u, neg, level, pos)
    if is_compiling() and _OPERATORS is not None:
        return _OPERATORS[0](u, neg, rows, level, pos)
    return NegativesAbove.apply(u, neg, rows, level, pos)


def positives_above_tiles(u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor,
                           rows: int) -> Tensor:
    """`PositivesAbove`, as its operator inside `torch.compile` where there is one, and
    as plain operations on every pair at once inside `torch.func` transforms."""
    if is_transformed():
        return _positives_above_pairs(u, neg, cols, idx)
    if is_compiling() and _OPERATORS is not None:
        return _OPERATORS[1](u, neg, cols, idx, rows)
    return PositivesAbove.apply(u, neg, cols, idx, rows)


def _negatives_above_pairs(u: Tensor, neg: Tensor, level: Tensor | None,
                           pos: Tensor | None) -> Tensor:
    """`NegativesAbove`'s result from the whole (K, M, M) pair matrix by operations that
    `torch.func` transforms differentiate and batch themselves (the tiles' Function runs
    outside them only)."""
    pairs = torch.sigmoid(u.unsqueeze(1) - u.unsqueeze(2))  # [k, i, j]: sigmoid(u_j - u_i)
    if level is None:
        out = torch.matmul(pairs, neg.unsqueeze(-1)).squeeze(-1)
    else:
        differ = level.unsqueeze(1) != level.unsqueeze(2)
        out = (pairs * (neg.unsqueeze(1) * differ.to(neg.dtype))).sum(-1)
    return out if pos is None else _positives_only(out, pos)


def _positives_above_pairs(u: Tensor, neg: Tensor, cols: Tensor, idx: Tensor) -> Tensor:
    """`PositivesAbove`'s result from the (P, M') pairs of the listed entries at once, by
    operations that `torch.func` transforms differentiate and batch themselves."""
    own = u[cols, idx].unsqueeze(1)
    return (torch.sigmoid(u[cols] - own) * neg[cols]).sum(-1)


def tile_rows(k: int, m: int, chunk_size: int | None, device: torch.device) -> int:
    """Rows per tile: `chunk_size`, else about `_tuning.ranking_tile_elements(device)`
    pairs."""
    if chunk_size is not None:
        return chunk_size
    return max(1, _tuning.ranking_tile_elements(device) // max(k * m, 1))
