"""Contrastive family: InfoNCE and the sigmoid (SigLIP) loss (tiled, O(N * D) memory), NCE,
retrieval accuracy, MI bound.

The decision of a contrastive model is *which candidate is the positive*: the argmax of the
similarity logits over the candidates of a query. Its exact metric is retrieval accuracy;
its relaxation is the softmax over the candidates, whose negative log-probability at the
positive is InfoNCE.

InfoNCE over `N` queries and `P` candidates needs the `N x P` logits only one tile at a
time: the forward pass keeps a running log-sum-exp over tiles of candidates, and the
backward pass recomputes each tile, so the extra memory is the gradients of the
embeddings plus one tile instead of `O(N * P)`. This module holds the public functions;
the machinery is in `_contrastive_core` and the tiled autograd Function in
`_infonce_tiles`. The sigmoid loss scores every pair on its own, so its tiles need no running
normaliser; they are in `_siglip_tiles`, and its keys passed around the ring of processes in
`_siglip_ring`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import distributed
from .._checks import (
    DataChecks,
    check_floating,
    check_index_tensor,
    check_int,
    check_number,
    check_option,
    check_temperature,
    checks_data,
    fail,
)
from .._options import GATHERS, REDUCTIONS, Gather, Reduction
from .._relax import reduce_per_sample
from ._contrastive_core import (
    check_candidates,
    check_pairs,
    gather_pairs,
    info_nce_per_query,
    reduce_queries,
    retrieval_per_query,
)
from ._nce_core import (
    check_generator,
    check_noise_distribution,
    check_output_layer,
    nce_per_example,
)
from ._siglip_ring import ring_sigmoid_per_query
from ._siglip_tiles import gather_keys, sigmoid_per_query


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
    process_group: torch.distributed.ProcessGroup | None = None,
    validate_args: bool = True,
) -> Tensor:
    r"""InfoNCE: cross-entropy of picking each query's positive key among its candidates.

    With similarities $s(q, c) = \langle q, c\rangle / \tau$ (cosine similarities when
    `normalize`), key $k_i$ the positive of query $q_i$ and $\mathcal{C}_i$ the candidates
    of query $i$,

    $$
    \ell_i = -\log \frac{\exp s(q_i, k_i)}{\sum_{c \in \mathcal{C}_i} \exp s(q_i, c)},
    $$

    $$
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
        validate_args: also check that the embeddings are finite (reads the data). Without
            it, a NaN embedding gives NaN (in the loss of every query it is a candidate
            of; also in `retrieval_accuracy`, where it leaves no rank).

    Returns:
        The loss in nats, $\ge 0$: a scalar, or `(N,)` for `reduction="none"`. float32 for
        half-precision inputs, else the promoted input dtype. With `gather_distributed`,
        "mean" and "sum" are over the queries of every process (the same value on each),
        "none" gives this process's queries.

    Raises:
        ValueError: for shapes that do not match, an empty batch, a temperature $\le 0$,
            `negatives` with `symmetric=True`, no candidate besides the positive
            (`in_batch_negatives=False` and `query_negatives=False` without `negatives`
            or with none in them), an unknown `reduction`, `chunk_size < 1`, or
            (with `validate_args`) non-finite embeddings.
        TypeError: for non-floating inputs or a non-numeric temperature.

    Examples:
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
    checks = DataChecks()  # the data of every argument, read with one synchronisation
    dtype = check_pairs(fn, query, key, negatives, validate_args, checks)
    temperature = check_temperature(fn, temperature, allow_zero=False)
    check_option(fn, "reduction", reduction, REDUCTIONS)
    if chunk_size is not None:
        check_int(fn, "chunk_size", chunk_size, low=1)
    if symmetric and negatives is not None:
        fail(fn, "negatives", "None when `symmetric=True` (extra negatives belong to one "
             "direction)", negatives)
    check_candidates(fn, negatives, in_batch_negatives, query_negatives)
    if isinstance(temperature, Tensor) and checks_data(validate_args):
        checks.positive(fn, "temperature", temperature)
    checks.settle()
    if isinstance(temperature, Tensor):
        temperature = temperature.to(dtype).reshape(())
    pairs = gather_pairs(query, key, gather_distributed=gather_distributed,
                         in_batch=in_batch_negatives, query_negatives=query_negatives,
                         process_group=process_group)
    loss = info_nce_per_query(query, key, negatives, pairs, temperature=temperature,
                              in_batch=in_batch_negatives, query_negatives=query_negatives,
                              symmetric=symmetric, normalize=normalize,
                              chunk_size=chunk_size, dtype=dtype)
    return reduce_queries(loss, reduction, pairs, process_group, gather_distributed)


def sigmoid_contrastive_loss(
    query: Tensor,
    key: Tensor,
    *,
    logit_scale: float | Tensor = 10.0,
    logit_bias: float | Tensor = -10.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    gather_distributed: Gather = False,
    process_group: torch.distributed.ProcessGroup | None = None,
    validate_args: bool = True,
) -> Tensor:
    r"""The sigmoid contrastive loss of SigLIP: every (query, key) pair a binary problem.

    With logits $l_{ij} = t \langle q_i, k_j\rangle + b$ (cosine similarities when
    `normalize`), $t$ = `logit_scale` and $b$ = `logit_bias`, the pair $(q_i, k_i)$ a
    positive ($z_{ii} = 1$) and every other pair a negative ($z_{ij} = -1$),

    $$
    \ell_i = -\sum_{j=1}^{N} \log \sigma\big(z_{ij}\, l_{ij}\big), \qquad
    \mathcal{L} = \frac{1}{N} \sum_{i=1}^{N} \ell_i,
    $$

    normalised by the batch size $N$, not by the $N^2$ pairs, as in Zhai et al. (2023),
    Eq. 1 and Algorithm 1. There is no softmax across candidates: each pair is scored on
    its own, and $b$ (initialised at $-10$ in the paper, with $t = 10$) offsets the
    imbalance of $N - 1$ negatives per positive. $t$ multiplies the similarities: it is
    $1 / \tau$ of [`info_nce`][softmetrics.functional.info_nce].

    **Hard limit:** as $t \to \infty$ with $-b / t = \theta$ fixed, $\sigma(z_{ij} l_{ij})$
    tends to the decision $[z_{ij}(s_{ij} - \theta) > 0]$ of whether pair $(i, j)$ is
    matched; [`SigLIPLoss.metric`][softmetrics.SigLIPLoss.metric] reports the retrieval
    accuracy of the same embeddings, the family's exact metric.

    **Memory:** with `chunk_size` (or `None` above $2^{24}$ pairs, as for `info_nce`) the
    $N \times N$ logits are never stored: the forward pass sums the terms of tiles of
    `chunk_size` keys and the backward pass recomputes each tile, with
    $\partial \mathcal{L} / \partial l_{ij} = g_i\,(\sigma(l_{ij}) - [i = j])$. The extra
    memory is two $N \times D$ float32 gradient buffers plus one tile. The embeddings are
    used as given (normalisation and $t$ are applied per tile).

    **Data parallelism:** with `gather_distributed=True` every process gathers the keys of
    all processes with gradient (batches may differ in size) and scores its own queries
    against all of them, its own key at its global row; "mean" and "sum" are summed over
    processes with gradient and "mean" divides by the global batch size, so every process
    returns the loss of one process on the whole batch, and the gradient of its
    embeddings is `world_size` times the single-process one (which
    `DistributedDataParallel` divides out). "none" gives this process's queries. With
    `gather_distributed="ring"` the same loss and gradients come from the chunked scheme
    of Zhai et al. (2023, Sec. 3.3): the blocks of keys are passed around the ring of
    processes (each process holds its own block and the one in flight, never all keys),
    in `world_size` steps forward and again, with their gradients, backward.

    Args:
        query: `(N, D)` embeddings, e.g. images, floating point.
        key: `(N, D)` embeddings, e.g. texts; `key[i]` is the positive of `query[i]`.
        logit_scale: $t > 0$, a number or a one-element tensor (learnable: see
            [`SigLIPLoss`][softmetrics.SigLIPLoss]).
        logit_bias: $b$, a number or a one-element tensor.
        normalize: L2-normalize the embeddings (cosine similarity); else the dot product.
        reduction: `"mean"` ($\mathcal{L}$), `"sum"` ($N \mathcal{L}$) or `"none"`
            ($\ell_i$ per query, shape `(N,)`).
        chunk_size: keys per tile; None chooses (the full matrix up to $2^{24}$ pairs).
        gather_distributed: inside an initialised `torch.distributed` process group, score
            this process's queries against the keys of every process of `process_group`:
            `True` all-gathers the keys, `"ring"` passes blocks of keys around the ring
            of processes (see Data-parallel training). No effect outside a process group.
        process_group: the processes to gather from (default: the whole world).
        validate_args: also check that the embeddings are finite and a tensor
            `logit_scale` is positive (reads the data).

    Returns:
        The loss in nats, $\ge 0$: a scalar, or `(N,)` for `reduction="none"`. float32 for
        half-precision inputs, else the promoted input dtype.

    Raises:
        ValueError: for shapes that do not match, an empty batch, `logit_scale` $\le 0$, a
            NaN `logit_bias`, an unknown `reduction`, `chunk_size < 1`, a
            `gather_distributed` other than `False`, `True` or `"ring"`, or (with
            `validate_args`) non-finite embeddings.
        TypeError: for non-floating inputs or a non-numeric `logit_scale`/`logit_bias`.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import sigmoid_contrastive_loss
        >>> image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> text = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.6]])
        >>> sigmoid_contrastive_loss(image, text)
        tensor(0.8318)
        >>> sigmoid_contrastive_loss(image, text, logit_bias=-5.0, reduction="none",
        ...                          chunk_size=2)
        tensor([1.6492, 2.7756, 5.7414])

    ??? cite "References"
        - X. Zhai, B. Mustafa, A. Kolesnikov, L. Beyer. *Sigmoid Loss for Language Image
          Pre-Training* (SigLIP). ICCV 2023, arXiv:2303.15343.
    """
    fn = "sigmoid_contrastive_loss"
    checks = DataChecks()  # the data of every argument, read with one synchronisation
    dtype = check_pairs(fn, query, key, None, validate_args, checks)
    logit_scale = check_temperature(fn, logit_scale, allow_zero=False, arg="logit_scale")
    if isinstance(logit_bias, Tensor):
        check_temperature(fn, logit_bias, arg="logit_bias")
    else:
        logit_bias = check_number(fn, "logit_bias", logit_bias)
    check_option(fn, "reduction", reduction, REDUCTIONS)
    check_option(fn, "gather_distributed", gather_distributed, GATHERS)
    if chunk_size is not None:
        check_int(fn, "chunk_size", chunk_size, low=1)
    if isinstance(logit_scale, Tensor) and checks_data(validate_args):
        checks.positive(fn, "logit_scale", logit_scale)
    if isinstance(logit_bias, Tensor) and checks_data(validate_args):
        bias_value = logit_bias.detach()

        def not_nan() -> None:
            if bool(bias_value.isnan().any()):
                fail(fn, "logit_bias", "a number, not NaN", logit_bias)

        checks.add(~bias_value.isnan().any(), not_nan)
    checks.settle()
    scale, bias = (x.reshape(()) if isinstance(x, Tensor)
                   else torch.full((), x, dtype=dtype, device=query.device)
                   for x in (logit_scale, logit_bias))
    if gather_distributed == "ring" and distributed.is_distributed():
        loss, total = ring_sigmoid_per_query(query, key, scale=scale, bias=bias,
                                             normalize=normalize, chunk_size=chunk_size,
                                             dtype=dtype, process_group=process_group)
    else:
        keys = gather_keys(key, gather_distributed=bool(gather_distributed),
                           process_group=process_group)
        loss = sigmoid_per_query(query, key, keys, scale=scale, bias=bias,
                                 normalize=normalize, chunk_size=chunk_size, dtype=dtype)
        if keys is None:  # one process
            return reduce_per_sample(loss, reduction)
        total = keys.total
    if reduction == "none":  # this process's queries
        return loss
    summed = distributed.all_reduce_sum(loss.sum(), process_group)
    return summed if reduction == "sum" else summed / total


def retrieval_accuracy(
    query: Tensor,
    key: Tensor,
    *,
    k: int = 1,
    negatives: Tensor | None = None,
    in_batch_negatives: bool = True,
    query_negatives: bool = False,
    normalize: bool = True,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
    process_group: torch.distributed.ProcessGroup | None = None,
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

    Every argument but `k` has the meaning it has for
    [`info_nce`][softmetrics.functional.info_nce] (see its parameters): `query`, `key`,
    `negatives`, `in_batch_negatives`, `query_negatives`, `normalize`, `reduction`,
    `gather_distributed` (this process's queries ranked among the candidates of every
    process; "mean" and "sum" over the queries of every process), `process_group` and
    `validate_args`. There is no temperature: the ranking is the same for any $\tau > 0$.

    Args:
        k: the positive must be among the `k` most similar candidates, `k >= 1`.

    Returns:
        Accuracy in $[0, 1]$: a scalar, or `(N,)` for `reduction="none"`.

    Raises:
        ValueError: for shapes that do not match, `k < 1`, an unknown `reduction` or
            (with `validate_args`) non-finite embeddings.
        TypeError: for non-floating inputs or a non-integer `k`.

    Examples:
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
    checks = DataChecks()
    dtype = check_pairs(fn, query, key, negatives, validate_args, checks)
    checks.settle()
    check_int(fn, "k", k, low=1)
    check_option(fn, "reduction", reduction, REDUCTIONS)
    with torch.no_grad():
        pairs = gather_pairs(query, key, gather_distributed=gather_distributed,
                             in_batch=in_batch_negatives, query_negatives=query_negatives,
                             process_group=process_group)
        acc = retrieval_per_query(query, key, negatives, pairs, in_batch=in_batch_negatives,
                                  query_negatives=query_negatives, normalize=normalize, k=k,
                                  dtype=dtype)
        return reduce_queries(acc, reduction, pairs, process_group, gather_distributed)


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
        ValueError: for `num_candidates < 1` (a tensor is read for it: one host
            synchronisation, left out under `torch.compile`).
        TypeError: for a non-integer `num_candidates` or a non-numeric `loss`.

    Examples:
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
    log_n: Tensor | float
    if isinstance(num_candidates, Tensor):
        check_index_tensor(fn, "num_candidates", num_candidates)
        if checks_data(True) and num_candidates.numel() and bool((num_candidates < 1).any()):
            fail(fn, "num_candidates", ">= 1", num_candidates)
        log_n = torch.log(num_candidates.to(torch.float64))
    else:
        log_n = math.log(check_int(fn, "num_candidates", num_candidates, low=1))
    if isinstance(loss, Tensor):
        check_floating(fn, "loss", loss, "the InfoNCE loss in nats")
        return (log_n - loss).to(loss.dtype) if isinstance(log_n, Tensor) else log_n - loss
    if isinstance(loss, bool) or not isinstance(loss, (int, float)):
        fail(fn, "loss", "a tensor or a real number", type(loss).__name__, error=TypeError,
             raw=True)
    out = log_n - float(loss)
    return out.to(torch.get_default_dtype()) if isinstance(out, Tensor) else torch.tensor(out)


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
    $$

    $$
    \Delta_n(w) = s_n(w) - \log\big(K q(w)\big),
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
        validate_args: also check target ids, that `input`, `weight` and `bias` are
            finite and that `noise_distribution` is non-negative, sums to 1 and is
            positive at every target (reads the data). Without it, a NaN reaches the loss
            of every example whose hidden state, target or noise class row holds it.

    Returns:
        The loss in nats, $\ge 0$: a scalar, or `(N,)` for `reduction="none"`.

    Raises:
        ValueError: for mismatched shapes, `num_noise < 1`, an unknown `reduction`, or
            (with `validate_args`) target ids outside `[0, V)`, NaN or infinite
            `input`/`weight`/`bias`, and a noise distribution
            that is negative, does not sum to 1, or is 0 at a target; for a `generator`
            on another device type than `input`.
        TypeError: for non-floating `input`/`weight`/`bias`/`noise_distribution` or a
            non-integer `target`.

    Examples:
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
    checks = DataChecks()  # the data of every argument, read with one synchronisation
    check_output_layer(fn, input, target, weight, bias, validate_args, checks)
    check_int(fn, "num_noise", num_noise, low=1)
    check_option(fn, "reduction", reduction, REDUCTIONS)
    check_generator(fn, generator, input)
    if noise_distribution is not None:
        check_noise_distribution(fn, noise_distribution, weight.shape[0], target,
                                 validate_args, checks)
    checks.settle()
    loss = nce_per_example(input, target, weight, bias, num_noise=num_noise,
                           noise_distribution=noise_distribution,
                           shared_noise=shared_noise, generator=generator)
    return reduce_per_sample(loss, reduction)
