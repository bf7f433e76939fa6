r"""Retrieval surrogates: NDCG, recall@k, precision@k, reciprocal rank and AP per query.

Each of $Q$ queries ranks a gallery of $G$ items by the scores `input[q]` (similarities,
logits); `target[q]` says which items are relevant (binary) or how relevant (graded, for
NDCG). Every metric here is a formula over the **rank** of each relevant item,

$$
R_i = 1 + \#\{j \text{ of the same relevance above } i\}
      + \sum_{j \text{ of another relevance}} \operatorname{step}_\tau(s_j - s_i),
$$

with the pairwise decision of the ranking family: $\sigma((s_j - s_i)/\tau)$ at
$\tau > 0$ (Smooth-AP's smooth rank; Qin et al.'s approximation framework). Only pairs
whose order changes the metric are relaxed: the order among items of equal relevance is
kept exact (it changes no metric), as the ranking family keeps the order among positives.
A cut at $k$ is the smooth top-$k$ indicator $\sigma((k + \tfrac12 - R_i) / \tau_k)$.

At `temperature=0` every function returns the exact metric, ties averaged over every order
of the tied items (scikit-learn's rule for NDCG, and `retrieval_accuracy`'s): one sort per
query, no pairs. At `temperature > 0` the soft ranks are computed in tiles of `chunk_size`
items by the ranking family's autograd Function, which recomputes each tile in backward:
the extra memory is $O(Q \cdot G \cdot \text{chunk})$, never the $Q \times G \times G$
tensor. Only the relevant items' ranks are read, and on the CPU only their rows of the
tiles are computed ($Q \cdot R \cdot G$ pairs for at most $R$ relevant items per query;
other devices compute all $Q \cdot G^2$). The machinery is in `_retrieval_core`.
"""

from __future__ import annotations

from torch import Tensor

from .._options import Reduction
from ._retrieval_core import Gain, Metric, check_retrieval_options, per_query, reduce_metric


def _retrieval(fn: str, metric: Metric, input: Tensor, target: Tensor, *,
               temperature: float | Tensor, k: int | None, ignore_index: int | None,
               reduction: Reduction, chunk_size: int | None, validate_args: bool,
               cutoff_temperature: float | None = None, gain: Gain = "linear") -> Tensor:
    """Check the options, compute per query, reduce: every function of this module."""
    check_retrieval_options(fn, temperature=temperature, k=k, ignore_index=ignore_index,
                            chunk_size=chunk_size, reduction=reduction,
                            cutoff_temperature=cutoff_temperature, gain=gain)
    values, out_dtype = per_query(metric, input, target, fn=fn, temperature=temperature,
                                  k=k, ignore_index=ignore_index, chunk_size=chunk_size,
                                  validate_args=validate_args,
                                  cutoff_temperature=cutoff_temperature, gain=gain)
    return reduce_metric(values.value, values.defined, reduction).to(out_dtype)


def soft_ndcg(input: Tensor, target: Tensor, *, k: int | None = None,
              temperature: float | Tensor = 1.0, cutoff_temperature: float | None = None,
              gain: Gain = "linear", ignore_index: int | None = None,
              reduction: Reduction = "mean", chunk_size: int | None = None,
              validate_args: bool = True) -> Tensor:
    r"""Soft normalised discounted cumulative gain (NDCG@k) of each query's ranking.

    $$
    \mathrm{NDCG@k} = \frac{1}{\mathrm{IDCG@k}} \sum_{i} \frac{g_i}{\log_2(1 + R_i)}\,
    \sigma\Bigl(\frac{k + \tfrac12 - R_i}{\tau_k}\Bigr),
    $$

    with $R_i$ the soft rank of item $i$ (see the module docs: pairs of items of different
    relevance relaxed, $\sigma((s_j - s_i)/\tau)$), the gain $g_i$ its relevance
    (`gain="linear"`, as scikit-learn) or $2^{\mathrm{rel}_i} - 1$ (`"exponential"`,
    Burges et al.), and IDCG@k the DCG@k of the ideal order (exact: it depends on the
    relevance only). Without `k` there is no cut.

    Hard limit: at `temperature=0` this equals scikit-learn's `ndcg_score(target, input,
    k=k)` per query, ties included: both average the gain of tied items over the
    positions they share (the mean over every order of the tied items). For distinct
    scores the soft value converges to it as the temperatures fall; at tied scores the soft
    rank counts each tied pair of different relevance as half (mid-ranks). At high
    temperatures the soft ranks and the soft cut can give more items high positions than
    any order can (every item a share of the top `k`), and the soft DCG can exceed the
    ideal one: the value is capped at 1, as `soft_precision_at_k`'s.

    Queries without a relevant item (all grades 0 or ignored) have no NDCG: they are left
    out of the mean (scikit-learn counts them as 0; torchmetrics' default counts them as
    0 too). A batch without any defined query gives 0.

    Args:
        input: (Q, G) scores: query $q$ ranks the G gallery items by `input[q]`, highest
            first (e.g. cosine similarities of embeddings).
        target: (Q, G) relevance grades, non-negative (int, bool or float).
        k: the cut-off: only the top `k` positions count; `None` (default) for all.
        temperature: $\tau \ge 0$ of the pairwise comparisons, on the scale of score
            differences; 0 gives the exact metric (no gradient). A one-element tensor
            (e.g. a learnable temperature, > 0: checked with `validate_args`) is allowed.
        cutoff_temperature: $\tau_k$ of the cut at `k`, on the scale of rank positions;
            `None` (default) uses `temperature`, so that temperature 0 is exact
            everywhere. Patel et al. use $\tau = 0.01$ for cosine similarities with
            $\tau_k = 1$: a cut as sharp as $\tau$ leaves little gradient.
        gain: "linear" ($g_i = \mathrm{rel}_i$) or "exponential" ($2^{\mathrm{rel}_i} - 1$).
        ignore_index: target value of entries that take no part (e.g. each query itself
            in a gallery of the same embeddings: put `ignore_index` on the diagonal).
        reduction: "mean" over the defined queries, "sum" over them, or "none" for the
            (Q,) values (0 for undefined queries).
        chunk_size: gallery items per tile of the pairwise comparisons at `temperature > 0`;
            extra memory is a few tiles of `Q * G * chunk_size` values. Default: tiles of
            about $2^{20}$ pairs on a CPU and $2^{24}$ on other devices.
        validate_args: check that `input` is finite and the grades are non-negative
            (reads data, one host synchronisation).

    Returns:
        NDCG in [0, 1]: a scalar, or (Q,) for `reduction="none"`; float32 for
            half-precision inputs.

    Raises:
        ValueError: on shapes (`input` must be 2-D, `target` of its shape), option values
            (`k < 1`, a negative temperature, an unknown `gain` or `reduction`) or, with
            `validate_args`, non-finite scores or negative grades.
        TypeError: on a non-floating `input` or a non-integer `k`.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_ndcg
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> grades = torch.tensor([[3, 0, 1, 2], [0, 1, 0, 2]])
        >>> soft_ndcg(scores, grades, temperature=0, reduction="none")
        tensor([0.9725, 0.8597])
        >>> x = scores.clone().requires_grad_(True)
        >>> value = soft_ndcg(x, grades, k=2, temperature=0.1)
        >>> value.backward()
        >>> value
        tensor(0.8273, grad_fn=<ToCopyBackward0>)

    ??? cite "References"
        Järvelin and Kekäläinen, *Cumulated gain-based evaluation of IR techniques*, ACM
        TOIS 20(4), 2002. Qin, Liu and Li, *A general approximation framework for direct
        optimization of information retrieval measures*, Information Retrieval 13, 2010.
        Burges et al., *Learning to rank using gradient descent*, ICML 2005 (exponential
        gain).
    """
    return _retrieval("soft_ndcg", "ndcg", input, target, temperature=temperature, k=k,
                      ignore_index=ignore_index, reduction=reduction, chunk_size=chunk_size,
                      validate_args=validate_args, cutoff_temperature=cutoff_temperature,
                      gain=gain)


def soft_recall_at_k(input: Tensor, target: Tensor, *, k: int,
                     temperature: float | Tensor = 1.0, cutoff_temperature: float | None = None,
                     ignore_index: int | None = None, reduction: Reduction = "mean",
                     chunk_size: int | None = None, validate_args: bool = True) -> Tensor:
    r"""Soft recall@k: the share of each query's relevant items ranked in its top k.

    $$
    \mathrm{recall@k} = \frac{1}{|P|} \sum_{i \in P}
    \sigma\Bigl(\frac{k + \tfrac12 - R_i}{\tau_k}\Bigr),\qquad
    R_i = k_i + \sum_{j \in N} \sigma\bigl((s_j - s_i)/\tau\bigr),
    $$

    with $P$ and $N$ the relevant and non-relevant items of the query and $k_i$ the exact
    rank of $i$ among the relevant ones (the soft rank of the module docs). The two
    sigmoids, on score differences and on the rank at the cut, are those of Patel et
    al.'s recall@k surrogate (which normalises by $\min(k, |P|)$ instead of $|P|$).

    Hard limit: at `temperature=0` this is the textbook recall@k, $|\{i \in P : r_i \le
    k\}| / |P|$, with each relevant item's chance of making the top k under a random order
    of the items tied with it (`retrieval_accuracy`'s rule, the same code). torchmetrics'
    `retrieval_recall` counts only items with a score > 0 as retrieved, so it agrees for
    positive scores only (see the Retrieval page).

    Queries without a relevant item are left out of the mean (torchmetrics' default
    counts them as 0).

    The other arguments, the result and the errors are those of
    [`soft_ndcg`][softmetrics.functional.soft_ndcg], except that `target` is binary.

    Args:
        target: (Q, G) 0/1 relevance (int, bool or float), or `ignore_index`.
        k: the cut-off, `k >= 1` (required).

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_recall_at_k
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 1]])
        >>> soft_recall_at_k(scores, relevant, k=2, temperature=0, reduction="none")
        tensor([0.5000, 1.0000])
        >>> soft_recall_at_k(scores, relevant, k=2, temperature=0.05, cutoff_temperature=0.5)
        tensor(0.7245)

    ??? cite "References"
        Patel, Tolias and Matas, *Recall@k Surrogate Loss with Large Batches and Similarity
        Mixup*, CVPR 2022, arXiv:2108.11179.
    """
    return _retrieval("soft_recall_at_k", "recall", input, target, temperature=temperature,
                      k=k, ignore_index=ignore_index, reduction=reduction,
                      chunk_size=chunk_size, validate_args=validate_args,
                      cutoff_temperature=cutoff_temperature)


def soft_precision_at_k(input: Tensor, target: Tensor, *, k: int,
                        temperature: float | Tensor = 1.0,
                        cutoff_temperature: float | None = None,
                        ignore_index: int | None = None, reduction: Reduction = "mean",
                        chunk_size: int | None = None, validate_args: bool = True) -> Tensor:
    r"""Soft precision@k: the share of each query's top k that is relevant.

    $$
    \mathrm{precision@k} = \frac{1}{k} \sum_{i \in P}
    \sigma\Bigl(\frac{k + \tfrac12 - R_i}{\tau_k}\Bigr),
    $$

    the numerator of [`soft_recall_at_k`][softmetrics.functional.soft_recall_at_k] over
    $k$ instead of $|P|$ (also when the gallery holds fewer than $k$ items, as
    torchmetrics' default).

    Hard limit: at `temperature=0`, the textbook precision@k, ties as in recall@k.

    Arguments, result and errors: those of
    [`soft_recall_at_k`][softmetrics.functional.soft_recall_at_k].

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_precision_at_k
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 1]])
        >>> soft_precision_at_k(scores, relevant, k=2, temperature=0, reduction="none")
        tensor([0.5000, 1.0000])
    """
    return _retrieval("soft_precision_at_k", "precision", input, target,
                      temperature=temperature, k=k, ignore_index=ignore_index,
                      reduction=reduction, chunk_size=chunk_size,
                      validate_args=validate_args, cutoff_temperature=cutoff_temperature)


def soft_reciprocal_rank(input: Tensor, target: Tensor, *, k: int | None = None,
                         temperature: float | Tensor = 1.0,
                         cutoff_temperature: float | None = None,
                         ignore_index: int | None = None, reduction: Reduction = "mean",
                         chunk_size: int | None = None, validate_args: bool = True) -> Tensor:
    r"""Soft reciprocal rank of each query's first relevant item; the mean is MRR.

    $$
    \mathrm{RR} = \frac{1}{R_1},\qquad
    R_1 = \min_{i \in P} R_i = 1 + \min_{i \in P} \sum_{j \in N}
    \sigma\bigl((s_j - s_i)/\tau\bigr),
    $$

    the soft rank of the best relevant item (one plus the soft number of non-relevant items
    above it); with `k`, times the cut $\sigma((k + \frac12 - R_1)/\tau_k)$ (MRR@k).
    The minimum is continuous in the scores (the best relevant item has the fewest
    non-relevant items above it), so the value is too.

    Hard limit: at `temperature=0` the textbook reciprocal rank $1 / r_1$ (0 when
    $r_1 > k$), averaged over every order of the items tied with the first relevant one.
    torchmetrics' `retrieval_reciprocal_rank` counts only items with a score > 0 as
    retrieved (see the Retrieval page).

    Arguments, result and errors: those of
    [`soft_recall_at_k`][softmetrics.functional.soft_recall_at_k], with `k` optional
    (`None`: no cut).

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_reciprocal_rank
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[0, 0, 0, 1], [1, 0, 0, 0]])
        >>> soft_reciprocal_rank(scores, relevant, temperature=0, reduction="none")
        tensor([0.3333, 0.2500])
    """
    return _retrieval("soft_reciprocal_rank", "rr", input, target, temperature=temperature,
                      k=k, ignore_index=ignore_index, reduction=reduction,
                      chunk_size=chunk_size, validate_args=validate_args,
                      cutoff_temperature=cutoff_temperature)


def soft_retrieval_average_precision(input: Tensor, target: Tensor, *,
                                     temperature: float | Tensor = 1.0,
                                     ignore_index: int | None = None,
                                     reduction: Reduction = "mean",
                                     chunk_size: int | None = None,
                                     validate_args: bool = True) -> Tensor:
    r"""Soft average precision of each query's ranking; the mean is mAP (Smooth-AP's setting).

    $$
    \mathrm{AP} = \frac{1}{|P|} \sum_{i \in P} \frac{k_i}{k_i + F_i},\qquad
    F_i = \sum_{j \in N} \sigma\bigl((s_j - s_i)/\tau\bigr),
    $$

    per query, with the statistics and the tiled autograd Function of
    [`soft_average_precision`][softmetrics.functional.soft_average_precision] (this is
    that function with one column per query: `soft_average_precision(input.T, target.T,
    task="multilabel", num_classes=Q, average=...)`, without the transposes). Smooth-AP
    (Brown et al.) relaxes the order among relevant items too; here it stays exact.

    Hard limit: at `temperature=0` this equals scikit-learn's `average_precision_score`
    per query for distinct scores; at ties, the ranking family's rule (a non-relevant item
    tied with a relevant one counts as half an item above it).

    Arguments, result and errors: those of
    [`soft_recall_at_k`][softmetrics.functional.soft_recall_at_k], without `k`.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_retrieval_average_precision
        >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
        >>> relevant = torch.tensor([[1, 0, 0, 1], [1, 0, 0, 1]])
        >>> soft_retrieval_average_precision(scores, relevant, temperature=0,
        ...                                  reduction="none")
        tensor([0.8333, 0.5000])

    ??? cite "References"
        Brown, Xie, Kalogeiton and Zisserman, *Smooth-AP: Smoothing the Path Towards
        Large-Scale Image Retrieval*, ECCV 2020, arXiv:2007.12163.
    """
    return _retrieval("soft_retrieval_average_precision", "ap", input, target,
                      temperature=temperature, k=None, ignore_index=ignore_index,
                      reduction=reduction, chunk_size=chunk_size,
                      validate_args=validate_args)
